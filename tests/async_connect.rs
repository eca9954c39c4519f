//! The async connect (feature `tokio`) is native async I/O: it needs no blocking pool, a dropped
//! connect leaves nothing running, and its time limit and errors are the blocking connect's.
#![cfg(feature = "tokio")]

mod common;

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use msgsock::{ConnectOptions, Endpoint, Error};
use nix::sys::socket::{SockType, UnixAddr};
use tokio::time::timeout;

use crate::common::{full_unix_listener, tempdir, GUARD_TIMEOUT};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// An abstract name no other test (or run) uses.
fn unique_name(what: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("msgsock-async-connect-{}-{what}-{n}", std::process::id())
}

/// A stale Unix socket file at `path`: std leaves the file behind, and nobody accepts there.
fn make_stale(path: &Path) {
    drop(std::os::unix::net::UnixListener::bind(path).unwrap());
    assert!(path.exists());
}

/// `connect` to `endpoint`, failing the test instead of hanging.
async fn guarded<T>(connect: impl Future<Output = T>) -> T {
    timeout(GUARD_TIMEOUT, connect)
        .await
        .expect("the connect did not finish within the guard timeout")
}

/// One endpoint of each connection family that a connect timeout bounds, to bind (a free path,
/// name or port in `dir`) or to connect to.
fn stream_endpoints(dir: &Path) -> [Endpoint; 4] {
    [
        Endpoint::Unix(dir.join("s.sock")),
        Endpoint::UnixSeqpacket(dir.join("p.sock")),
        Endpoint::UnixAbstract(unique_name("stream").into_bytes()),
        Endpoint::Tcp((std::net::Ipv4Addr::LOCALHOST, 0).into()),
    ]
}

/// `connect_with`, or an error saying that it hung (rather than the test hanging).
async fn connect_in_time(
    options: &ConnectOptions,
    endpoint: &Endpoint,
) -> Result<msgsock::tokio::AsyncAnyConnection, Box<dyn std::error::Error>> {
    let connect = msgsock::tokio::connect_with(options, endpoint);
    let connected = timeout(GUARD_TIMEOUT, connect).await;
    Ok(connected.map_err(|_| format!("{endpoint}: the connect hung"))??)
}

/// With the runtime's only blocking thread taken, every transport still connects: nothing of
/// the connect runs on the blocking pool.
#[test]
fn connect_needs_no_blocking_pool() -> TestResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(1)
        .build()?;
    let (started_tx, started) = std::sync::mpsc::channel::<()>();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let busy = runtime.spawn_blocking(move || {
        started_tx.send(()).unwrap();
        released.recv().unwrap();
    });
    started.recv()?;
    let result = runtime.block_on(async {
        let dir = tempdir();
        let options = ConnectOptions::new().with_timeout(Some(GUARD_TIMEOUT));
        for endpoint in &stream_endpoints(dir.path()) {
            let listener = msgsock::tokio::bind(endpoint).await?;
            let endpoint = listener.local_endpoint()?;
            // The connect lands in the backlog: no accept needs to run alongside.
            let mut client = connect_in_time(&options, &endpoint).await?;
            let mut server = guarded(listener.accept()).await?;
            client.send(b"stream").await?;
            assert_eq!(
                server.recv().await?.as_deref(),
                Some(&b"stream"[..]),
                "{endpoint}"
            );
        }
        let datagrams: [Endpoint; 2] = [
            "udp:127.0.0.1:0".parse()?,
            Endpoint::UnixDatagram(dir.path().join("d.sock")),
        ];
        for endpoint in &datagrams {
            let server = msgsock::tokio::bind_datagram(endpoint).await?;
            let endpoint = server.local_endpoint()?;
            let mut client = connect_in_time(&options, &endpoint).await?;
            client.send(b"datagram").await?;
            let mut buf = Vec::new();
            guarded(server.recv_from(&mut buf)).await?;
            assert_eq!(buf, b"datagram", "{endpoint}");
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    });
    release.send(())?;
    runtime.block_on(busy)?;
    result
}

/// A connect waiting for a server that is dropped stops: a server that comes up afterwards sees
/// no connection from it.
#[tokio::test]
async fn a_dropped_connect_leaves_no_attempt_behind() -> TestResult {
    let dir = tempdir();
    let endpoint = Endpoint::Unix(dir.path().join("later.sock"));
    let options = ConnectOptions::new().with_wait_for_server(Some(Duration::from_secs(30)));
    let dropped = timeout(
        Duration::from_millis(50),
        msgsock::tokio::connect_with(&options, &endpoint),
    )
    .await;
    assert!(dropped.is_err(), "connected to nothing: {dropped:?}");
    let listener = msgsock::tokio::bind(&endpoint).await?;
    // Longer than the longest pause between attempts (500 ms): an attempt left running would
    // have connected by then.
    let arrived = timeout(Duration::from_secs(2), listener.accept()).await;
    assert!(arrived.is_err(), "a dropped connect connected: {arrived:?}");
    Ok(())
}

/// The connect timeout bounds an async Unix connect to a full backlog, of both socket types,
/// by path and by abstract name: `ConnectTimeout` naming the endpoint and the limit.
#[tokio::test]
async fn connect_timeout_bounds_a_unix_connect_to_a_full_backlog() -> TestResult {
    let dir = tempdir();
    let limit = Duration::from_millis(100);
    let options = ConnectOptions::new().with_timeout(Some(limit));
    for (ty, endpoint) in full_backlog_endpoints(dir.path()) {
        let _full = full_unix_listener(ty, &unix_addr(&endpoint));
        let err = guarded(msgsock::tokio::connect_with(&options, &endpoint))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::ConnectTimeout { endpoint: e, timeout } if *e == endpoint && *timeout == limit),
            "{endpoint}: {err:?}"
        );
        assert!(err.is_timeout(), "{err:?}");
    }
    Ok(())
}

/// Without a timeout, a connect to a full backlog waits, as the blocking one does, and connects
/// once the server accepts and the backlog has room.
#[tokio::test]
async fn a_full_backlog_is_tried_again_until_it_has_room() -> TestResult {
    let dir = tempdir();
    for (ty, endpoint) in full_backlog_endpoints(dir.path()) {
        let (listener, pending) = full_unix_listener(ty, &unix_addr(&endpoint));
        let mut connect = pin!(msgsock::tokio::connect(&endpoint));
        // One poll makes the first attempt, which the full backlog refuses.
        tokio::select! {
            biased;
            done = &mut connect => panic!("{endpoint}: a full backlog took a connection: {done:?}"),
            () = std::future::ready(()) => {}
        }
        let accepted = nix::sys::socket::accept(&listener)?;
        let mut client = guarded(connect).await?;
        client.send(b"in").await?;
        drop((accepted, pending));
    }
    Ok(())
}

/// The full-backlog cases: both socket types, by path and by abstract name.
fn full_backlog_endpoints(dir: &Path) -> [(SockType, Endpoint); 4] {
    [
        (SockType::Stream, Endpoint::Unix(dir.join("full.sock"))),
        (
            SockType::SeqPacket,
            Endpoint::UnixSeqpacket(dir.join("full-p.sock")),
        ),
        (
            SockType::Stream,
            Endpoint::UnixAbstract(unique_name("full").into_bytes()),
        ),
        (
            SockType::SeqPacket,
            Endpoint::UnixSeqpacketAbstract(unique_name("fullp").into_bytes()),
        ),
    ]
}

/// The socket address of a Unix `endpoint`.
fn unix_addr(endpoint: &Endpoint) -> UnixAddr {
    match endpoint {
        Endpoint::Unix(p) | Endpoint::UnixSeqpacket(p) => UnixAddr::new(p).unwrap(),
        Endpoint::UnixAbstract(n) | Endpoint::UnixSeqpacketAbstract(n) => {
            UnixAddr::new_abstract(n).unwrap()
        }
        other => panic!("not a Unix stream endpoint: {other}"),
    }
}

/// A zero connect timeout is `Connect` with `InvalidInput` on every family it bounds, before
/// any connect is tried.
#[tokio::test]
async fn a_zero_timeout_is_invalid_input() -> TestResult {
    let dir = tempdir();
    let options = ConnectOptions::new().with_timeout(Some(Duration::ZERO));
    for endpoint in &stream_endpoints(dir.path()) {
        let err = guarded(msgsock::tokio::connect_with(&options, endpoint))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Connect { endpoint: e, source } if e == endpoint && source.kind() == io::ErrorKind::InvalidInput),
            "{endpoint}: {err:?}"
        );
    }
    Ok(())
}

/// Refused, missing, too long and the wrong socket type: on every family the async connect
/// fails with the blocking connect's variant and message, naming the endpoint as given.
#[tokio::test]
async fn failures_are_the_blocking_connects() -> TestResult {
    let dir = tempdir();
    let stale = dir.path().join("stale.sock");
    make_stale(&stale);
    let missing = dir.path().join("missing.sock");
    let datagram = msgsock::UnixDatagram::bind(dir.path().join("dgram.sock"))?;
    let dgram_path = datagram.local_addr()?.as_pathname().unwrap().to_path_buf();
    let too_long = dir.path().join("x".repeat(200));
    let refused_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let endpoints = [
        Endpoint::Unix(stale.clone()),
        Endpoint::Unix(missing.clone()),
        Endpoint::Unix(dgram_path.clone()),
        Endpoint::Unix(too_long.clone()),
        Endpoint::UnixSeqpacket(stale),
        Endpoint::UnixSeqpacket(missing.clone()),
        Endpoint::UnixSeqpacket(dgram_path),
        Endpoint::UnixSeqpacket(too_long),
        Endpoint::UnixAbstract(unique_name("none").into_bytes()),
        Endpoint::UnixSeqpacketAbstract(unique_name("none").into_bytes()),
        Endpoint::UnixDatagram(missing),
        format!("tcp:127.0.0.1:{refused_port}").parse()?,
        format!("tcp:localhost:{refused_port}").parse()?,
    ];
    for endpoint in &endpoints {
        let blocking = msgsock::connect(endpoint).unwrap_err();
        let err = guarded(msgsock::tokio::connect(endpoint))
            .await
            .unwrap_err();
        assert_eq!(
            std::mem::discriminant(&err),
            std::mem::discriminant(&blocking),
            "{endpoint}: {err:?} but blocking {blocking:?}"
        );
        assert_eq!(err.to_string(), blocking.to_string(), "{endpoint}");
        assert_eq!(err.kind(), blocking.kind(), "{endpoint}");
        if !matches!(err, Error::PathTooLong { .. }) {
            assert!(err.to_string().contains(&endpoint.to_string()), "{err}");
        }
    }
    Ok(())
}

/// The authenticated connect runs the handshake after connecting: the right key gets through,
/// a wrong one is `AuthenticationFailed`, and an endpoint that is no stream is the blocking
/// connect's `WrongSocketType`, naming it.
#[tokio::test]
async fn connect_authenticated_checks_the_key_and_the_socket_type() -> TestResult {
    use msgsock::{AuthKey, Authenticator};
    let auth = |key: &[u8]| Authenticator::new(AuthKey::new(key.to_vec()));
    let (right, wrong) = (auth(b"right"), auth(b"wrong"));
    let dir = tempdir();
    let listener = msgsock::tokio::bind(&Endpoint::Unix(dir.path().join("auth.sock"))).await?;
    let endpoint = listener.local_endpoint()?;
    let server = async {
        let mut conn = guarded(listener.accept()).await?;
        conn.authenticate_server(&right).await?;
        conn.send(b"welcome").await
    };
    let options = ConnectOptions::new().with_timeout(Some(GUARD_TIMEOUT));
    let client = msgsock::tokio::connect_authenticated_with(&options, &endpoint, &right);
    let (client, server) = tokio::join!(client, server);
    server?;
    assert_eq!(client?.recv().await?.as_deref(), Some(&b"welcome"[..]));

    let server = async {
        let mut conn = guarded(listener.accept()).await?;
        conn.authenticate_server(&right).await
    };
    let client = msgsock::tokio::connect_authenticated(&endpoint, &wrong);
    let (client, server) = tokio::join!(client, server);
    assert!(
        matches!(server, Err(Error::AuthenticationFailed { .. })),
        "{server:?}"
    );
    let err = client.unwrap_err();
    assert!(matches!(err, Error::AuthenticationFailed { .. }), "{err:?}");

    let not_streams: [Endpoint; 2] = [
        "udp:127.0.0.1:9".parse()?,
        Endpoint::UnixSeqpacket(dir.path().join("p.sock")),
    ];
    for endpoint in &not_streams {
        let blocking = msgsock::connect_authenticated(endpoint, &right).unwrap_err();
        let err = guarded(msgsock::tokio::connect_authenticated(endpoint, &right))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::WrongSocketType { endpoint: e, .. } if e == endpoint),
            "{err:?}"
        );
        assert_eq!(err.to_string(), blocking.to_string());
    }
    Ok(())
}
