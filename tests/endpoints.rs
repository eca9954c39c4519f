//! Endpoints as a new user types them, connecting with a deadline, and errors that say what
//! happened and where (issue 11, points 7, 11, 12 and 13).

mod common;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use msgsock::{
    AnyConnection, AuthKey, Authenticator, ConnectOptions, Endpoint, Error, ParseEndpointError,
    SocketType,
};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrIn, UnixAddr};

use crate::common::{full_unix_listener, tempdir, GUARD_TIMEOUT};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// "Does not hang": what should take milliseconds must finish well within this.
const HANG_BOUND: Duration = Duration::from_secs(5);

/// A TCP port on 127.0.0.1 nobody listens on (bound, then closed).
fn refused_port() -> u16 {
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// A stale Unix socket file at `path`: std leaves the file behind, and nobody accepts there.
fn make_stale(path: &Path) {
    drop(std::os::unix::net::UnixListener::bind(path).unwrap());
    assert!(path.exists());
}

// ---- point 7: errors carry their cause and the endpoint -------------------------------------

#[test]
fn connect_errors_name_the_endpoint_and_the_cause() {
    let dir = tempdir();
    let missing = dir.path().join("missing.sock");
    let stale = dir.path().join("stale.sock");
    make_stale(&stale);

    let ep = Endpoint::Unix(missing.clone());
    let err = msgsock::connect(&ep).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, Error::NotFound { endpoint, .. } if *endpoint == ep),
        "{err:?}"
    );
    assert!(text.contains(&ep.to_string()), "{text}");
    assert!(text.contains("No such file"), "the cause: {text}");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(
        std::error::Error::source(&err).is_some(),
        "the cause as source too"
    );

    let ep = Endpoint::Unix(stale.clone());
    let refused = msgsock::connect(&ep).unwrap_err().to_string();
    assert!(refused.contains(&ep.to_string()), "{refused}");
    assert!(refused.contains("refused"), "{refused}");
    assert_ne!(refused, text, "not found and refused print differently");

    let ep = Endpoint::Tcp((Ipv4Addr::LOCALHOST, refused_port()).into());
    let err = msgsock::connect(&ep).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&ep.to_string()),
        "TCP errors name the address: {text}"
    );
    assert!(text.contains("refused"), "{text}");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

#[test]
fn bind_errors_name_the_endpoint_and_the_cause() {
    let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let ep = Endpoint::Tcp(taken.local_addr().unwrap());
    let err = msgsock::bind(&ep).unwrap_err();
    assert!(err.to_string().contains(&ep.to_string()), "{err}");
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);

    // 192.0.2.1 (TEST-NET-1) is no address of this machine: nothing is sent anywhere.
    let ep: Endpoint = "tcp:192.0.2.1:0".parse().unwrap();
    let err = msgsock::bind(&ep).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("tcp:192.0.2.1:0"), "{text}");
    assert!(
        text.contains("ddress not available") || text.contains("assign"),
        "{text}"
    );
    assert_eq!(err.kind(), io::ErrorKind::AddrNotAvailable);
}

#[test]
fn parse_errors_say_what_is_wrong() {
    let err: Error = "tcp:127.0.0.1:65536"
        .parse::<Endpoint>()
        .map_err(Error::from)
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("invalid endpoint"), "{text}");
    assert!(text.contains("65536"), "the cause: {text}");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn io_errors_on_paths_carry_their_cause() {
    let dir = tempdir();
    let err = AuthKey::from_file(dir.path().join("no-key")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("no-key"), "{text}");
    assert!(text.contains("No such file"), "{text}");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

#[test]
fn a_receive_timeout_says_it_timed_out_and_stays_resumable() -> TestResult {
    let listener = msgsock::bind(&"tcp:127.0.0.1:0".parse()?)?;
    let mut client = msgsock::connect(&listener.local_endpoint()?)?;
    let mut server = listener.accept()?;
    client.set_read_timeout(Some(Duration::from_millis(20)))?;
    let err = client.recv().unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    ));
    client.set_read_timeout(Some(GUARD_TIMEOUT))?;
    server.send(b"after the timeout")?;
    assert_eq!(client.recv()?.as_deref(), Some(&b"after the timeout"[..]));
    Ok(())
}

#[test]
fn wrong_socket_type_is_an_enum_and_names_the_endpoint() {
    let ep: Endpoint = "udp:127.0.0.1:0".parse().unwrap();
    let err = msgsock::bind(&ep).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::WrongSocketType {
                endpoint,
                expected: SocketType::Stream,
                actual: SocketType::Datagram,
            } if *endpoint == ep
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("udp:127.0.0.1:0"), "{err}");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let io_err = io::Error::from(err);
    assert_eq!(io_err.kind(), io::ErrorKind::InvalidInput);
}

// ---- point 11: host names ------------------------------------------------------------------

#[test]
fn host_names_round_trip_and_port_errors_name_the_port() {
    for s in [
        "tcp:localhost:8008",
        "udp:localhost:53",
        "tcp:my-host.example:1",
    ] {
        let ep: Endpoint = s.parse().unwrap();
        assert_eq!(ep.to_string(), s);
        assert_eq!(ep.as_inet(), None, "a name is not an IP address: {s}");
        assert_eq!(ep.as_host().map(|h| h.host()), s.split(':').nth(1));
    }
    assert_eq!(
        "tcp:localhost:65536".parse::<Endpoint>(),
        Err(ParseEndpointError::InvalidPort {
            port: "65536".into()
        })
    );
}

#[test]
fn tcp_and_udp_connect_resolve_localhost() -> TestResult {
    let listener = msgsock::bind(&"tcp:127.0.0.1:0".parse()?)?;
    let port = listener.local_endpoint()?.as_inet().unwrap().port();
    let by_name: Endpoint = format!("tcp:localhost:{port}").parse()?;
    let mut client = msgsock::connect(&by_name)?;
    let mut server = listener.accept()?;
    client.send(b"by name")?;
    server.set_read_timeout(Some(GUARD_TIMEOUT))?;
    assert_eq!(server.recv()?.as_deref(), Some(&b"by name"[..]));

    let socket = msgsock::bind_datagram(&"udp:127.0.0.1:0".parse()?)?;
    socket.set_read_timeout(Some(GUARD_TIMEOUT))?;
    let port = socket.local_endpoint()?.as_inet().unwrap().port();
    let mut client = msgsock::connect(&format!("udp:localhost:{port}").parse()?)?;
    client.set_read_timeout(Some(GUARD_TIMEOUT))?;
    client.send(b"datagram by name")?;
    let mut buf = Vec::new();
    let (_, from) = socket.recv_from(&mut buf)?;
    assert_eq!(buf, b"datagram by name");
    socket.send_to(b"reply", &from.unwrap())?;
    assert_eq!(client.recv()?.as_deref(), Some(&b"reply"[..]));
    Ok(())
}

#[test]
fn a_host_name_in_a_bind_endpoint_is_a_clear_error() {
    for s in ["tcp:localhost:0", "udp:localhost:0"] {
        let ep: Endpoint = s.parse().unwrap();
        let err = if ep.is_datagram() {
            msgsock::bind_datagram(&ep).unwrap_err()
        } else {
            msgsock::bind(&ep).unwrap_err()
        };
        assert!(
            matches!(&err, Error::Bind { endpoint, .. } if *endpoint == ep),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(s) && text.contains("host name"), "{text}");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}

#[test]
fn a_refused_host_name_says_refused_with_the_name() {
    let ep: Endpoint = format!("tcp:localhost:{}", refused_port()).parse().unwrap();
    let err = msgsock::connect(&ep).unwrap_err();
    assert!(
        matches!(&err, Error::ConnectionRefused { endpoint } if *endpoint == ep),
        "{err:?}"
    );
    assert!(err.to_string().contains(&ep.to_string()), "{err}");
}

// ---- point 12: connect timeout and waiting for the server ----------------------------------

/// A TCP listener on 127.0.0.1 with `listen(0)` and its accept queue full: SYNs are dropped.
fn full_tcp_listener() -> (OwnedFd, SocketAddr, Vec<std::net::TcpStream>) {
    let listener = socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    let any = SockaddrIn::new(127, 0, 0, 1, 0);
    socket::bind(std::os::fd::AsRawFd::as_raw_fd(&listener), &any).unwrap();
    socket::listen(&listener, socket::Backlog::new(0).unwrap()).unwrap();
    let bound: SockaddrIn =
        socket::getsockname(std::os::fd::AsRawFd::as_raw_fd(&listener)).unwrap();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, bound.port()));
    let mut pending = Vec::new();
    for _ in 0..64 {
        // A loopback connect to a listener with room takes microseconds; the first one that
        // does not finish in a second is the one the full queue dropped.
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(s) => pending.push(s),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return (listener, addr, pending),
            Err(e) => panic!("filling the accept queue: {e}"),
        }
    }
    panic!("the accept queue never filled");
}

/// A connect with a 200 ms limit to `ep`, whose listener cannot take it, gives up in time with
/// a timeout error that says so and names `ep`. The connect runs on a thread of its own, so a
/// connect that ignores its limit fails the test instead of hanging it.
fn assert_connect_times_out(ep: &Endpoint) {
    let limit = Duration::from_millis(200);
    let (done, result) = mpsc::channel();
    let target = ep.clone();
    thread::spawn(move || {
        let connected = ConnectOptions::new()
            .with_timeout(Some(limit))
            .connect(&target);
        let _ = done.send(connected.map(drop));
    });
    let err = match result.recv_timeout(HANG_BOUND) {
        Ok(connected) => connected.unwrap_err(),
        Err(_) => panic!(
            "a connect to {ep} with a {limit:?} limit was still waiting after {HANG_BOUND:?}"
        ),
    };
    assert!(
        matches!(&err, Error::ConnectTimeout { endpoint, timeout } if endpoint == ep && *timeout == limit),
        "{err:?}"
    );
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(err.is_timeout());
    assert!(err.to_string().contains("timed out"), "{err}");
}

/// An abstract name no other test (or run) uses.
fn unique_abstract_name(what: &str) -> Vec<u8> {
    format!("msgsock-endpoints-{}-{what}", std::process::id()).into_bytes()
}

#[test]
fn connect_timeout_bounds_an_abstract_unix_connect_to_a_full_backlog() {
    let name = unique_abstract_name("full-stream");
    let _full = full_unix_listener(SockType::Stream, &UnixAddr::new_abstract(&name).unwrap());
    assert_connect_times_out(&Endpoint::UnixAbstract(name));
}

#[test]
fn connect_timeout_bounds_an_abstract_unixpacket_connect_to_a_full_backlog() {
    let name = unique_abstract_name("full-packet");
    let _full = full_unix_listener(SockType::SeqPacket, &UnixAddr::new_abstract(&name).unwrap());
    assert_connect_times_out(&Endpoint::UnixSeqpacketAbstract(name));
}

#[test]
fn connect_timeout_bounds_a_unix_connect_to_a_full_backlog() {
    let dir = tempdir();
    let path = dir.path().join("full.sock");
    let _full = full_unix_listener(SockType::Stream, &UnixAddr::new(&path).unwrap());
    assert_connect_times_out(&Endpoint::Unix(path));
}

#[test]
fn connect_timeout_bounds_a_unixpacket_connect_to_a_full_backlog() {
    let dir = tempdir();
    let path = dir.path().join("full.sock");
    let _full = full_unix_listener(SockType::SeqPacket, &UnixAddr::new(&path).unwrap());
    assert_connect_times_out(&Endpoint::UnixSeqpacket(path));
}

/// However short, a connect timeout lets the connect be tried once, as the tokio connect does:
/// a Unix connect to a listener with room does not wait, so it succeeds even in 1 ns, and one
/// to a path nobody listens on is refused, not timed out.
#[test]
fn the_shortest_connect_timeout_still_tries_once() {
    let dir = tempdir();
    let path = dir.path().join("up.sock");
    let listener = msgsock::UnixListener::bind(&path).unwrap();
    let shortest = ConnectOptions::new().with_timeout(Some(Duration::from_nanos(1)));
    for endpoint in [
        Endpoint::Unix(path.clone()),
        Endpoint::Unix(dir.path().join("none")),
    ] {
        let got = shortest.connect(&endpoint);
        if endpoint == Endpoint::Unix(path.clone()) {
            assert!(got.is_ok(), "{got:?}");
        } else {
            let err = got.unwrap_err();
            assert!(!err.is_timeout(), "{err:?}");
            assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err:?}");
        }
    }
    drop(listener);
}

#[test]
fn connect_timeout_bounds_a_tcp_connect_to_a_full_accept_queue() {
    let (_listener, addr, _pending) = full_tcp_listener();
    assert_connect_times_out(&Endpoint::Tcp(addr));
}

/// A zero connect timeout is refused as std refuses it (`InvalidInput`), naming the endpoint,
/// on every family a timeout bounds, with a listener up so that only the zero can fail it.
#[test]
fn a_zero_connect_timeout_is_invalid_input_on_every_family() -> TestResult {
    let dir = tempdir();
    let unix = msgsock::bind(&Endpoint::Unix(dir.path().join("zero.sock")))?;
    let packet = msgsock::bind(&Endpoint::UnixSeqpacket(
        dir.path().join("zero-packet.sock"),
    ))?;
    let tcp = msgsock::bind(&"tcp:127.0.0.1:0".parse()?)?;
    let named = msgsock::bind(&Endpoint::UnixAbstract(unique_abstract_name("zero")))?;
    let named_packet = msgsock::bind(&Endpoint::UnixSeqpacketAbstract(unique_abstract_name(
        "zero-packet",
    )))?;
    for ep in [
        unix.local_endpoint()?,
        packet.local_endpoint()?,
        tcp.local_endpoint()?,
        named.local_endpoint()?,
        named_packet.local_endpoint()?,
    ] {
        let err = ConnectOptions::new()
            .with_timeout(Some(Duration::ZERO))
            .connect(&ep)
            .unwrap_err();
        assert!(
            matches!(&err, Error::Connect { endpoint, source }
                if *endpoint == ep && source.kind() == io::ErrorKind::InvalidInput),
            "{ep}: {err:?}"
        );
    }
    Ok(())
}

#[test]
fn a_timeout_that_is_not_needed_changes_nothing() -> TestResult {
    let listener = msgsock::bind(&"tcp:127.0.0.1:0".parse()?)?;
    let mut client = ConnectOptions::new()
        .with_timeout(Some(GUARD_TIMEOUT))
        .connect(&listener.local_endpoint()?)?;
    let mut server = listener.accept()?;
    server.send(b"hi")?;
    // The connect timeout is not left behind as a read or write timeout.
    assert_eq!(client.as_stream().unwrap().read_timeout()?, None);
    assert_eq!(client.as_stream().unwrap().write_timeout()?, None);
    assert_eq!(client.recv()?.as_deref(), Some(&b"hi"[..]));
    Ok(())
}

/// A client started before its server: it signals that it is about to connect, the server
/// binds only then, and the client's connect succeeds.
fn client_before_server(ep: Endpoint, bind: impl FnOnce() -> msgsock::AnyListener) {
    let (started_tx, started) = mpsc::channel();
    let client = thread::spawn(move || {
        started_tx.send(()).unwrap();
        let mut conn = ConnectOptions::new()
            .with_wait_for_server(Some(GUARD_TIMEOUT))
            .connect(&ep)?;
        conn.send(b"was early")?;
        Ok::<_, Error>(())
    });
    started.recv().unwrap();
    let listener = bind();
    let mut server = listener.accept().unwrap();
    server.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
    assert_eq!(server.recv().unwrap().as_deref(), Some(&b"was early"[..]));
    client.join().unwrap().unwrap();
}

#[test]
fn wait_for_server_connects_once_a_unix_server_binds() {
    let dir = tempdir();
    let ep = Endpoint::Unix(dir.path().join("later.sock"));
    let bind_ep = ep.clone();
    client_before_server(ep, move || msgsock::bind(&bind_ep).unwrap());
}

#[test]
fn wait_for_server_connects_once_a_stale_socket_is_replaced() {
    let dir = tempdir();
    let path = dir.path().join("stale.sock");
    make_stale(&path);
    let ep = Endpoint::Unix(path);
    let bind_ep = ep.clone();
    client_before_server(ep, move || msgsock::bind(&bind_ep).unwrap());
}

#[test]
fn wait_for_server_connects_once_a_tcp_server_binds() {
    let ep = Endpoint::Tcp((Ipv4Addr::LOCALHOST, refused_port()).into());
    let bind_ep = ep.clone();
    client_before_server(ep, move || msgsock::bind(&bind_ep).unwrap());
}

#[test]
fn wait_for_server_gives_the_last_error_at_the_deadline() {
    let dir = tempdir();
    let wait = Duration::from_millis(300);
    let cases = [
        Endpoint::Unix(dir.path().join("never.sock")),
        Endpoint::Tcp((Ipv4Addr::LOCALHOST, refused_port()).into()),
    ];
    for ep in cases {
        let start = Instant::now();
        let err = ConnectOptions::new()
            .with_wait_for_server(Some(wait))
            .connect(&ep)
            .unwrap_err();
        let took = start.elapsed();
        assert!(
            took >= wait,
            "{ep}: gave up after {took:?}, before the deadline"
        );
        assert!(took < HANG_BOUND, "{ep}: took {took:?}");
        assert!(
            matches!(&err, Error::NotFound { endpoint, .. } | Error::ConnectionRefused { endpoint } if *endpoint == ep),
            "{ep}: {err:?}"
        );
    }
}

#[test]
fn wait_for_server_does_not_retry_other_errors() {
    let dir = tempdir();
    // A datagram socket at the path: a stream connect fails with EPROTOTYPE at once.
    let path = dir.path().join("dgram.sock");
    let _dgram = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    let start = Instant::now();
    let err = ConnectOptions::new()
        .with_wait_for_server(Some(GUARD_TIMEOUT))
        .connect(&Endpoint::Unix(path))
        .unwrap_err();
    assert!(start.elapsed() < HANG_BOUND, "took {:?}", start.elapsed());
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
}

// ---- point 13: one connection type for run-time chosen endpoints ---------------------------

#[test]
fn accept_connect_and_connect_authenticated_give_one_type() -> TestResult {
    let auth = Authenticator::new(AuthKey::new(b"k".to_vec()));
    let listener = msgsock::bind(&"tcp:127.0.0.1:0".parse()?)?;
    let endpoint = listener.local_endpoint()?;
    let server_auth = auth.clone();
    let server = thread::spawn(move || -> msgsock::Result<AnyConnection> {
        let mut conn: AnyConnection = listener.accept()?;
        conn.authenticate_server(&server_auth)?;
        let mut plain: AnyConnection = listener.incoming().next().unwrap()?;
        plain.send(b"plain")?;
        Ok(conn)
    });
    let mut client: AnyConnection = msgsock::connect_authenticated(&endpoint, &auth)?;
    let mut plain: AnyConnection = msgsock::connect(&endpoint)?;
    let mut server = server.join().unwrap()?;
    server.send(b"authenticated")?;
    assert_eq!(client.recv()?.as_deref(), Some(&b"authenticated"[..]));
    assert_eq!(plain.recv()?.as_deref(), Some(&b"plain"[..]));
    // The stream connection is still there for stream-only calls.
    assert!(client.as_stream().is_some());
    assert!(server.into_stream().is_some());
    Ok(())
}
