//! The calls a std user makes on every socket type work as std's do, as inherent methods (this
//! file imports no msgsock trait), and descriptors round-trip through `OwnedFd`, raw fds and the
//! std types with the socket still usable.
//!
//! Each behaviour is written once as a macro body over the concrete types, because the point is
//! that the *inherent* methods exist: a generic function would call the `Stream` trait instead.

mod common;

use std::error::Error;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::time::Duration;

use msgsock::{
    Endpoint, TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream,
};

use crate::common::{exists_nofollow, tempdir};

type TestResult = Result<(), Box<dyn Error>>;

/// A connected pair of each stream type, through its listener.
fn unix_pair() -> Result<(UnixStream, UnixStream), Box<dyn Error>> {
    let listener = UnixListener::bind_temp()?;
    let client = UnixStream::connect(listener.path())?;
    let (server, _) = listener.accept()?;
    Ok((client, server))
}

fn tcp_pair() -> Result<(TcpStream, TcpStream), Box<dyn Error>> {
    let listener = TcpListener::bind("127.0.0.1:0".parse()?)?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    Ok((client, server))
}

/// Writes `msg` on `a` and reads exactly it back on `b`.
fn carries<A: Write, B: Read>(a: &mut A, b: &mut B, msg: &[u8]) -> io::Result<()> {
    a.write_all(msg)?;
    let mut got = vec![0; msg.len()];
    b.read_exact(&mut got)?;
    assert_eq!(got, msg);
    Ok(())
}

macro_rules! stream_tests {
    ($($m:ident: $t:ty, $std:ty, $pair:ident;)+) => { $(mod $m {
        use super::*;

        #[test]
        fn timeouts_nonblocking_and_errors_are_inherent() -> TestResult {
            let (mut a, mut b) = $pair()?;
            let t = Duration::from_millis(1500);
            assert_eq!(a.read_timeout()?, None);
            a.set_read_timeout(Some(t))?;
            a.set_write_timeout(Some(t * 2))?;
            assert_eq!(a.read_timeout()?, Some(t));
            assert_eq!(a.write_timeout()?, Some(t * 2));
            a.set_read_timeout(None)?;
            assert_eq!(a.read_timeout()?, None);

            a.set_nonblocking(true)?;
            let err = a.read(&mut [0; 8]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
            a.set_nonblocking(false)?;

            assert!(a.take_error()?.is_none());
            carries(&mut b, &mut a, b"still works")?;
            Ok(())
        }

        #[test]
        fn try_clone_and_shutdown_are_inherent() -> TestResult {
            let (a, mut b) = $pair()?;
            let mut clone = a.try_clone()?;
            carries(&mut clone, &mut b, b"from the clone")?;
            a.shutdown(Shutdown::Write)?;
            assert_eq!(b.read(&mut [0; 8])?, 0, "end of stream after shutdown(Write)");
            Ok(())
        }

        #[test]
        fn addresses_are_inherent_and_match_the_peer() -> TestResult {
            let (a, b) = $pair()?;
            assert_eq!(format!("{:?}", a.local_addr()?), format!("{:?}", b.peer_addr()?));
            assert_eq!(format!("{:?}", a.peer_addr()?), format!("{:?}", b.local_addr()?));
            Ok(())
        }

        #[test]
        fn debug_shows_the_fd_and_local_address() -> TestResult {
            let (a, _b) = $pair()?;
            let debug = format!("{a:?}");
            assert!(debug.contains(&format!("fd: {}", a.as_raw_fd())), "{debug}");
            let local = format!("{:?}", a.local_addr()?);
            assert!(debug.contains(&local), "{debug} lacks {local}");
            Ok(())
        }

        #[test]
        fn fd_round_trips_keep_the_stream_usable() -> TestResult {
            let (a, mut b) = $pair()?;
            let raw = a.as_raw_fd();
            assert_eq!(a.as_fd().as_raw_fd(), raw);

            let owned: OwnedFd = a.into();
            assert_eq!(owned.as_raw_fd(), raw);
            let mut a = <$t>::from(owned);
            carries(&mut a, &mut b, b"after OwnedFd")?;

            let raw = a.into_raw_fd();
            // SAFETY: `raw` came from `into_raw_fd` just above and nothing else owns it.
            let mut a = unsafe { <$t>::from_raw_fd(raw) };
            carries(&mut b, &mut a, b"after a raw fd")?;

            let std: $std = a.into_inner();
            let mut a = <$t>::from(std);
            carries(&mut a, &mut b, b"after the std type")?;
            assert_eq!(a.get_ref().as_raw_fd(), raw);
            Ok(())
        }
    })+ };
}

stream_tests! {
    unix_stream: UnixStream, std::os::unix::net::UnixStream, unix_pair;
    tcp_stream: TcpStream, std::net::TcpStream, tcp_pair;
}

#[test]
fn tcp_nodelay_is_set_and_can_be_changed() -> TestResult {
    let (a, b) = tcp_pair()?;
    assert!(a.nodelay()? && b.nodelay()?, "msgsock sets TCP_NODELAY");
    a.set_nodelay(false)?;
    assert!(!a.nodelay()?);
    Ok(())
}

#[test]
fn unix_stream_local_addr_is_std_and_names_the_listener_path() -> TestResult {
    let listener = UnixListener::bind_temp()?;
    let client = UnixStream::connect(listener.path())?;
    let addr: std::os::unix::net::SocketAddr = client.peer_addr()?;
    assert_eq!(addr.as_pathname(), Some(listener.path()));
    assert!(client.local_addr()?.is_unnamed());
    Ok(())
}

macro_rules! listener_tests {
    ($($m:ident: $t:ty, $std:ty, $bind:expr, $connect:expr;)+) => { $(mod $m {
        use super::*;

        #[test]
        fn std_calls_are_inherent() -> TestResult {
            let dir = tempdir();
            let listener: $t = $bind(dir.path())?;
            let endpoint: Endpoint = listener.local_endpoint()?;
            assert_eq!(
                format!("{:?}", listener.local_addr()?),
                format!("{:?}", listener.get_ref().local_addr()?),
            );
            assert!(listener.take_error()?.is_none());
            let debug = format!("{listener:?}");
            assert!(debug.contains(&format!("fd: {}", listener.as_raw_fd())), "{debug}");

            let clone = listener.try_clone()?;
            assert_eq!(clone.local_endpoint()?, endpoint);
            let mut client = msgsock::connect(&endpoint)?;
            let mut server = msgsock::Connection::new(clone.accept()?.0);
            client.send(b"via a clone")?;
            assert_eq!(server.recv()?.as_deref(), Some(&b"via a clone"[..]));
            Ok(())
        }

        #[test]
        fn fd_round_trips_keep_the_listener_usable() -> TestResult {
            let dir = tempdir();
            let listener: $t = $bind(dir.path())?;
            let endpoint = listener.local_endpoint()?;

            let owned: OwnedFd = listener.into();
            let listener = <$t>::from(owned);
            assert_eq!(listener.local_endpoint()?, endpoint);
            let raw = listener.into_raw_fd();
            // SAFETY: `raw` came from `into_raw_fd` just above and nothing else owns it.
            let listener = unsafe { <$t>::from_raw_fd(raw) };
            let std: $std = listener.into_inner();
            let listener = <$t>::from(std);

            let mut client = msgsock::connect(&endpoint)?;
            let mut server = msgsock::Connection::new(listener.accept()?.0);
            client.send(b"after the round trips")?;
            assert_eq!(server.recv()?.as_deref(), Some(&b"after the round trips"[..]));
            $connect(&listener)?;
            Ok(())
        }
    })+ };
}

fn unix_listener_at(dir: &std::path::Path) -> msgsock::Result<UnixListener> {
    UnixListener::bind(dir.join("l.sock"))
}

fn tcp_listener_at(_dir: &std::path::Path) -> msgsock::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0".parse().unwrap())
}

listener_tests! {
    unix_listener: UnixListener, std::os::unix::net::UnixListener, unix_listener_at,
        |l: &UnixListener| UnixStream::connect(l.path()).map(drop);
    tcp_listener: TcpListener, std::net::TcpListener, tcp_listener_at,
        |l: &TcpListener| TcpStream::connect(l.local_addr()?).map(drop);
}

/// Listeners know nothing of framing, as std's: `accept` and `incoming` give the bare stream,
/// which carries exactly the peer's bytes (no header added or expected) in both directions.
#[test]
fn unix_listener_accept_and_incoming_give_bare_streams() -> TestResult {
    let listener = UnixListener::bind_temp()?;
    let mut a = std::os::unix::net::UnixStream::connect(listener.path())?;
    let mut b = std::os::unix::net::UnixStream::connect(listener.path())?;
    let (mut first, _peer): (UnixStream, _) = listener.accept()?;
    let mut second: UnixStream = listener.incoming().next().expect("a stream")?;
    carries(&mut a, &mut first, b"raw bytes")?;
    carries(&mut second, &mut b, b"no header")?;
    let mut c = std::os::unix::net::UnixStream::connect(listener.path())?;
    let mut third: UnixStream = (&listener).into_iter().next().expect("a stream")?;
    carries(&mut third, &mut c, b"via IntoIterator")?;
    Ok(())
}

#[test]
fn tcp_listener_accept_and_incoming_give_bare_streams() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0".parse()?)?;
    let mut a = std::net::TcpStream::connect(listener.local_addr()?)?;
    let mut b = std::net::TcpStream::connect(listener.local_addr()?)?;
    let (mut first, peer): (TcpStream, _) = listener.accept()?;
    assert_eq!(peer, a.local_addr()?);
    assert!(first.nodelay()?, "an accepted stream has TCP_NODELAY");
    let mut second: TcpStream = listener.incoming().next().expect("a stream")?;
    carries(&mut a, &mut first, b"raw bytes")?;
    carries(&mut second, &mut b, b"no header")?;
    let mut c = std::net::TcpStream::connect(listener.local_addr()?)?;
    let mut third: TcpStream = (&listener).into_iter().next().expect("a stream")?;
    carries(&mut third, &mut c, b"via IntoIterator")?;
    Ok(())
}

/// A TCP listener queues a burst of connections up to the largest backlog the system allows, as
/// a Unix listener does, not std's 128: past its backlog the kernel drops a client's SYN, and
/// that client's `connect` waits a second or more for its retry. Here every connect of a burst
/// larger than 128 completes before the server accepts any (the bound only ends a failing run).
#[test]
fn tcp_listener_queues_a_burst_of_connections_past_128() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0".parse()?)?;
    let addr = listener.local_addr()?;
    // The system's bound on any backlog; a burst past it would prove nothing about ours.
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096);
    let burst = somaxconn.min(512);
    assert!(burst > 129, "somaxconn {somaxconn} leaves nothing to prove");
    let clients = (0..burst)
        .map(|i| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))
                .map_err(|e| format!("connect {i} of {burst} before any accept: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for _ in 0..burst {
        listener.accept()?;
    }
    drop(clients);
    Ok(())
}

/// The socket file belongs to all clones together: it stays while any clone listens and goes
/// with the last one, whichever that is.
#[test]
fn unix_listener_clones_remove_the_file_once_with_the_last() -> TestResult {
    let dir = tempdir();
    let path = dir.path().join("clones.sock");
    let first = UnixListener::bind(&path)?;
    let second = first.try_clone()?;
    drop(first);
    assert!(exists_nofollow(&path), "the clone still listens there");
    let _client = UnixStream::connect(&path)?;
    second.accept()?;
    drop(second);
    assert!(!exists_nofollow(&path), "removed with the last clone");
    Ok(())
}

/// Handing one clone over as an fd keeps the file for good: that fd still listens there.
#[test]
fn unix_listener_handed_over_keeps_the_file_after_its_clones() -> TestResult {
    let dir = tempdir();
    let path = dir.path().join("kept.sock");
    let first = UnixListener::bind(&path)?;
    let second = first.try_clone()?;
    let fd: OwnedFd = first.into();
    drop(second);
    assert!(
        exists_nofollow(&path),
        "the handed-over fd still listens there"
    );
    let adopted = UnixListener::from(fd);
    let _client = UnixStream::connect(&path)?;
    adopted.accept()?;
    drop(adopted);
    assert!(
        exists_nofollow(&path),
        "an adopted fd has no socket file to remove"
    );
    Ok(())
}

/// A listener from a descriptor knows its path from `getsockname(2)`, and leaves the file.
#[test]
fn unix_listener_from_std_reports_its_path_and_leaves_the_file() -> TestResult {
    let dir = tempdir();
    let path = dir.path().join("std.sock");
    let listener = UnixListener::from(std::os::unix::net::UnixListener::bind(&path)?);
    assert_eq!(listener.path(), path);
    assert_eq!(listener.local_endpoint()?, Endpoint::Unix(path.clone()));
    assert_eq!(listener.local_addr()?.as_pathname(), Some(path.as_path()));
    drop(listener);
    assert!(exists_nofollow(&path));
    Ok(())
}

macro_rules! datagram_tests {
    ($($m:ident: $t:ty, $std:ty, $pair:ident;)+) => { $(mod $m {
        use super::*;

        #[test]
        fn std_calls_are_inherent() -> TestResult {
            let (a, b) = $pair()?;
            let t = Duration::from_millis(1500);
            assert_eq!(a.read_timeout()?, None);
            a.set_read_timeout(Some(t))?;
            a.set_write_timeout(Some(t * 2))?;
            assert_eq!(a.read_timeout()?, Some(t));
            assert_eq!(a.write_timeout()?, Some(t * 2));
            assert!(a.take_error()?.is_none());
            assert_eq!(format!("{:?}", a.local_addr()?), format!("{:?}", b.peer_addr()?));
            assert_eq!(format!("{:?}", a.peer_addr()?), format!("{:?}", b.local_addr()?));

            a.set_nonblocking(true)?;
            match a.recv() {
                Err(msgsock::Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
                other => panic!("expected WouldBlock, got {other:?}"),
            }
            a.set_nonblocking(false)?;

            let debug = format!("{a:?}");
            assert!(debug.contains(&format!("fd: {}", a.as_raw_fd())), "{debug}");
            let clone = b.try_clone()?;
            clone.send(b"from the clone")?;
            assert_eq!(a.recv()?, b"from the clone");
            Ok(())
        }

        #[test]
        fn fd_round_trips_keep_the_socket_usable() -> TestResult {
            let (a, b) = $pair()?;
            let limit = a.send_limit();
            let owned: OwnedFd = a.into();
            let a = <$t>::from(owned);
            assert_eq!(a.send_limit(), limit);
            let raw = a.into_raw_fd();
            // SAFETY: `raw` came from `into_raw_fd` just above and nothing else owns it.
            let a = unsafe { <$t>::from_raw_fd(raw) };
            let std: $std = a.into_inner();
            let a = <$t>::from(std);
            a.send(b"after the round trips")?;
            assert_eq!(b.recv()?, b"after the round trips");
            b.send(b"and back")?;
            assert_eq!(a.recv()?, b"and back");
            Ok(())
        }
    })+ };
}

fn udp_pair() -> Result<(UdpSocket, UdpSocket), Box<dyn Error>> {
    let a = UdpSocket::bind("127.0.0.1:0".parse()?)?;
    let b = UdpSocket::bind("127.0.0.1:0".parse()?)?;
    a.connect(b.local_addr()?)?;
    b.connect(a.local_addr()?)?;
    Ok((a, b))
}

fn unixgram_pair() -> Result<(UnixDatagram, UnixDatagram), Box<dyn Error>> {
    let a = UnixDatagram::bind_temp()?;
    let b = UnixDatagram::bind_temp()?;
    a.connect(b.path().unwrap())?;
    b.connect(a.path().unwrap())?;
    Ok((a, b))
}

datagram_tests! {
    udp: UdpSocket, std::net::UdpSocket, udp_pair;
    unixgram: UnixDatagram, std::os::unix::net::UnixDatagram, unixgram_pair;
}

#[test]
fn unix_datagram_pair_carries_messages_both_ways() -> TestResult {
    let (a, b) = UnixDatagram::pair()?;
    a.send(b"ping")?;
    assert_eq!(b.recv()?, b"ping");
    b.send(b"pong")?;
    assert_eq!(a.recv()?, b"pong");
    assert!(a.local_addr()?.is_unnamed());
    assert!(
        a.local_endpoint().is_err(),
        "an unnamed socket has no endpoint"
    );
    Ok(())
}

#[test]
fn local_endpoint_is_a_result_on_every_bound_socket() -> TestResult {
    let dir = tempdir();
    let unix = UnixListener::bind(dir.path().join("s.sock"))?;
    let unixgram = UnixDatagram::bind(dir.path().join("g.sock"))?;
    let tcp = TcpListener::bind("127.0.0.1:0".parse()?)?;
    let udp = UdpSocket::bind("127.0.0.1:0".parse()?)?;
    let endpoints: [msgsock::Result<Endpoint>; 4] = [
        unix.local_endpoint(),
        unixgram.local_endpoint(),
        tcp.local_endpoint(),
        udp.local_endpoint(),
    ];
    let want = [
        Endpoint::Unix(dir.path().join("s.sock")),
        Endpoint::UnixDatagram(dir.path().join("g.sock")),
        Endpoint::Tcp(tcp.local_addr()?),
        Endpoint::Udp(udp.local_addr()?),
    ];
    for (got, want) in endpoints.into_iter().zip(want) {
        assert_eq!(got?, want);
    }
    Ok(())
}

/// Unlike a listener's, a datagram socket's file belongs to the handle that bound it: dropping
/// it unpublishes the path while a clone still receives (what `examples/chat.rs` relies on), and
/// a clone never removes the file, early or twice.
#[test]
fn unix_datagram_file_goes_with_the_binding_handle_never_with_a_clone() -> TestResult {
    let dir = tempdir();
    let path = dir.path().join("clones.sock");
    let first = UnixDatagram::bind(&path)?;
    let clone = first.try_clone()?;
    drop(first.try_clone()?);
    assert!(exists_nofollow(&path), "a clone's drop leaves the file");
    let client = UnixDatagram::unbound()?;
    client.send_to(b"to the clone", &path)?;
    drop(first);
    assert!(
        !exists_nofollow(&path),
        "removed with the handle that bound it"
    );
    assert_eq!(clone.recv()?, b"to the clone", "the clone still receives");
    Ok(())
}
