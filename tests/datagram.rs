//! Datagram transports: limits, truncation, many senders, peers that know nothing of msgsock.

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixDatagram as StdUnixDatagram;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use msgsock::{
    Bind, Channel, DatagramTransport, Endpoint, Error, Family, SocketType, UdpSocket, UdpTransport,
    UnixDatagram, UnixDatagramTransport, UDP_V4_MAX_MESSAGE_LEN,
};

use crate::common::pattern;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A failure guard only: a lost datagram fails the test instead of hanging it.
const GUARD: Duration = Duration::from_secs(20);

/// Serves `T` on a thread: echoes every datagram to its sender until it receives `b"stop"`.
fn echo_server<T: DatagramTransport>() -> (T::Addr, thread::JoinHandle<msgsock::Result<()>>) {
    let socket = T::bind_ephemeral().unwrap();
    let addr = T::local_addr(&socket).unwrap();
    let handle = thread::spawn(move || {
        let mut buf = Vec::new();
        loop {
            let (_, from) = T::recv_from(&socket, &mut buf)?;
            if buf == b"stop" {
                return Ok(());
            }
            T::send_to(&socket, &buf, &from.expect("sender has an address"))?;
        }
    });
    (addr, handle)
}

fn stop<T: DatagramTransport>(addr: &T::Addr, server: thread::JoinHandle<msgsock::Result<()>>) {
    let mut c = T::connect(addr).unwrap();
    c.send(b"stop").unwrap();
    server.join().unwrap().unwrap();
}

fn at_the_size_limit<T: DatagramTransport>() -> TestResult {
    let (addr, server) = echo_server::<T>();
    let mut client = T::connect(&addr)?;
    client.set_read_timeout(Some(GUARD))?;
    let limit = send_limit::<T>(&client);
    for len in [0, 1, limit - 1, limit] {
        let msg = pattern(len, 3);
        client.send(&msg)?;
        assert_eq!(client.recv()?.as_deref(), Some(&msg[..]), "len {len}");
    }
    let err = client.send(&pattern(limit + 1, 0)).unwrap_err();
    assert!(
        matches!(err, Error::MessageTooLarge { len, max } if len == limit as u64 + 1 && max == limit as u64),
        "{err:?}"
    );
    // The socket still works after the refusal.
    client.send(b"after")?;
    assert_eq!(client.recv()?.as_deref(), Some(&b"after"[..]));
    stop::<T>(&addr, server);
    Ok(())
}

fn send_limit<T: DatagramTransport>(s: &T::Socket) -> usize {
    let any: &dyn std::any::Any = s;
    if let Some(u) = any.downcast_ref::<UdpSocket>() {
        u.send_limit()
    } else {
        any.downcast_ref::<UnixDatagram>().unwrap().send_limit()
    }
}

#[test]
fn udp_size_limit() -> TestResult {
    at_the_size_limit::<UdpTransport>()
}

#[test]
fn unixgram_size_limit() -> TestResult {
    at_the_size_limit::<UnixDatagramTransport>()
}

#[test]
fn udp_v4_limit_is_65507() -> TestResult {
    let s = UdpSocket::bind("127.0.0.1:0".parse()?)?;
    assert_eq!(s.send_limit(), UDP_V4_MAX_MESSAGE_LEN);
    assert_eq!(UDP_V4_MAX_MESSAGE_LEN, 65_507);
    Ok(())
}

#[test]
fn udp_too_large_for_the_kernel_is_typed() -> TestResult {
    // A socket built from std on IPv6 would allow 65,527; to IPv4 the kernel says EMSGSIZE.
    let server = UdpSocket::bind("127.0.0.1:0".parse()?)?;
    let client = UdpSocket::bind("127.0.0.1:0".parse()?)?;
    let err = client
        .send_to(&vec![0; 70_000], server.local_addr()?)
        .unwrap_err();
    assert!(
        matches!(err, Error::MessageTooLarge { len: 70_000, .. }),
        "{err:?}"
    );
    Ok(())
}

/// An IPv6 socket sends to an IPv4-mapped address over IPv4: a datagram over the IPv4 limit
/// is `MessageTooLarge` with that limit, before anything is sent (it said the IPv6 limit,
/// 65,527, of a 65,520-byte message), from `send_to`, `try_send_to` and a connected `send`;
/// one at the IPv4 limit arrives.
#[test]
fn udp_to_an_ipv4_mapped_address_has_the_ipv4_limit() -> TestResult {
    let server = UdpSocket::bind("127.0.0.1:0".parse()?)?;
    server.set_read_timeout(Some(Duration::from_secs(30)))?;
    let port = server.local_addr()?.port();
    let mapped: std::net::SocketAddr = format!("[::ffff:127.0.0.1]:{port}").parse()?;
    let client = UdpSocket::bind("[::ffff:127.0.0.1]:0".parse()?)?;
    assert_eq!(client.send_limit(), msgsock::UDP_V6_MAX_MESSAGE_LEN);
    let too_large = |err: Error| {
        assert!(
            matches!(
                err,
                Error::MessageTooLarge {
                    len: 65_520,
                    max: 65_507
                }
            ),
            "{err:?}"
        );
    };
    too_large(client.send_to(&vec![0; 65_520], mapped).unwrap_err());
    too_large(client.try_send_to(&vec![0; 65_520], mapped).unwrap_err());
    client.connect(mapped)?;
    too_large(client.send(&vec![0; 65_520]).unwrap_err());
    client.send_to(&pattern(UDP_V4_MAX_MESSAGE_LEN, 3), mapped)?;
    let mut buf = Vec::new();
    server.recv_from(&mut buf)?;
    assert!(buf == pattern(UDP_V4_MAX_MESSAGE_LEN, 3));
    Ok(())
}

fn truncation_is_detected<T: DatagramTransport>(small: impl FnOnce(&mut T::Socket)) -> TestResult {
    let mut server = T::bind_ephemeral()?;
    small(&mut server);
    let mut client = T::connect(&T::local_addr(&server)?)?;
    client.send(&pattern(101, 1))?;
    client.send(&pattern(100, 2))?;
    let mut buf = Vec::new();
    let err = T::recv_from(&server, &mut buf).unwrap_err();
    assert!(
        matches!(err, Error::Truncated { len: 101, max: 100 }),
        "{err:?}"
    );
    assert!(buf.is_empty(), "a cut datagram must not be returned");
    // The next datagram is whole.
    let (n, _) = T::recv_from(&server, &mut buf)?;
    assert_eq!((n, buf), (100, pattern(100, 2)));
    Ok(())
}

#[test]
fn udp_truncation_is_detected() -> TestResult {
    truncation_is_detected::<UdpTransport>(|s| {
        s.set_max_message_len(100);
    })
}

#[test]
fn unixgram_truncation_is_detected() -> TestResult {
    truncation_is_detected::<UnixDatagramTransport>(|s| {
        s.set_max_message_len(100);
    })
}

fn many_senders_one_receiver<T: DatagramTransport>() -> TestResult {
    const SENDERS: usize = 8;
    const EACH: usize = 200;
    let (addr, server) = echo_server::<T>();
    let barrier = Arc::new(Barrier::new(SENDERS));
    let clients: Vec<_> = (0..SENDERS)
        .map(|id| {
            let addr = addr.clone();
            let barrier = barrier.clone();
            thread::spawn(move || -> msgsock::Result<()> {
                let mut c = T::connect(&addr)?;
                c.set_read_timeout(Some(GUARD))?;
                barrier.wait();
                let mut buf = Vec::new();
                for i in 0..EACH {
                    // Request and reply: the receiver's queue never overflows, so nothing is lost.
                    let msg = format!("{id}:{i}:{}", "x".repeat(i % 97));
                    c.send(msg.as_bytes())?;
                    assert_eq!(c.recv_into(&mut buf)?, Some(msg.len()));
                    assert_eq!(buf, msg.as_bytes());
                }
                Ok(())
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap()?;
    }
    stop::<T>(&addr, server);
    Ok(())
}

#[test]
fn udp_many_senders_one_receiver() -> TestResult {
    many_senders_one_receiver::<UdpTransport>()
}

#[test]
fn unixgram_many_senders_one_receiver() -> TestResult {
    many_senders_one_receiver::<UnixDatagramTransport>()
}

#[test]
fn plain_std_udp_peer() -> TestResult {
    let (addr, server) = echo_server::<UdpTransport>();
    let peer = std::net::UdpSocket::bind("127.0.0.1:0")?;
    peer.set_read_timeout(Some(GUARD))?;
    peer.connect(addr)?;
    let mut buf = [0u8; 2048];
    for msg in [&b"plain"[..], b"", &pattern(1500, 9)] {
        peer.send(msg)?;
        let n = peer.recv(&mut buf)?;
        // No framing bytes: exactly the message, one per datagram.
        assert_eq!(&buf[..n], msg);
    }
    stop::<UdpTransport>(&addr, server);

    // And msgsock as the client of a plain server.
    let plain = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let mut client = msgsock::connect(&Endpoint::Udp(plain.local_addr()?))?;
    client.send(b"to plain")?;
    let (n, from) = plain.recv_from(&mut buf)?;
    assert_eq!(&buf[..n], b"to plain");
    plain.send_to(b"from plain", from)?;
    assert_eq!(client.recv()?.as_deref(), Some(&b"from plain"[..]));
    Ok(())
}

#[test]
fn plain_std_unix_datagram_peer() -> TestResult {
    let (addr, server) = echo_server::<UnixDatagramTransport>();
    let dir = tempfile::tempdir()?;
    let peer = StdUnixDatagram::bind(dir.path().join("peer.sock"))?;
    peer.set_read_timeout(Some(GUARD))?;
    peer.connect(&addr)?;
    let mut buf = [0u8; 4096];
    for msg in [&b"plain"[..], b"", &pattern(4000, 4)] {
        peer.send(msg)?;
        let n = peer.recv(&mut buf)?;
        assert_eq!(&buf[..n], msg);
    }
    stop::<UnixDatagramTransport>(&addr, server);
    Ok(())
}

#[test]
fn wraps_a_std_unix_datagram_pair() -> TestResult {
    let (a, b) = StdUnixDatagram::pair()?;
    let (a, b) = (UnixDatagram::from(a), UnixDatagram::from(b));
    assert!(a.send_limit() > 64 << 10);
    assert_eq!(a.path(), None);
    a.send(&pattern(64 << 10, 2))?;
    assert_eq!(b.recv()?, pattern(64 << 10, 2));
    Ok(())
}

#[test]
fn unbound_unix_sender_has_no_address() -> TestResult {
    let server = UnixDatagram::bind_temp()?;
    let sender = UnixDatagram::unbound()?;
    sender.send_to(b"anonymous", server.path().unwrap())?;
    let mut buf = Vec::new();
    let (n, from) = server.recv_from(&mut buf)?;
    assert_eq!((n, from), (9, None));
    Ok(())
}

#[test]
fn unixgram_socket_file_rules() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("d.sock");

    // A stale datagram socket file (std leaves it behind) is replaced.
    drop(StdUnixDatagram::bind(&path)?);
    assert!(path.exists());
    let live = UnixDatagram::bind(&path)?;
    let meta = std::fs::symlink_metadata(&path)?;
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // A live one is refused, and keeps working.
    let err = UnixDatagram::bind(&path).unwrap_err();
    assert!(matches!(err, Error::AddrInUse { .. }), "{err:?}");
    let client = UnixDatagram::unbound()?;
    client.send_to(b"still here", &path)?;
    assert_eq!(live.recv()?, b"still here");

    // A live stream listener at the path is in use for datagrams too.
    let spath = dir.path().join("s.sock");
    let _stream = msgsock::UnixListener::bind(&spath)?;
    let err = UnixDatagram::bind(&spath).unwrap_err();
    assert!(matches!(err, Error::AddrInUse { .. }), "{err:?}");

    // A regular file is never removed.
    let fpath = dir.path().join("f.sock");
    std::fs::write(&fpath, b"mine")?;
    let err = UnixDatagram::bind(&fpath).unwrap_err();
    assert!(matches!(err, Error::NotASocket { .. }), "{err:?}");
    assert_eq!(std::fs::read(&fpath)?, b"mine");

    drop(live);
    assert!(!path.exists(), "the socket file is removed on drop");
    Ok(())
}

#[test]
fn client_address_is_private_and_removed() -> TestResult {
    let server = UnixDatagram::bind_temp()?;
    let client = UnixDatagramTransport::connect(&server.path().unwrap().to_path_buf())?;
    let cpath = client.path().unwrap().to_path_buf();
    let dir = cpath.parent().unwrap().to_path_buf();
    assert_eq!(std::fs::metadata(&dir)?.permissions().mode() & 0o777, 0o700);
    client.send(b"hi")?;
    let mut buf = Vec::new();
    let (_, from) = server.recv_from(&mut buf)?;
    assert_eq!(from.as_deref(), Some(cpath.as_path()));
    drop(client);
    assert!(
        !dir.exists(),
        "the client's private directory is removed on drop"
    );
    Ok(())
}

#[test]
fn endpoint_type_mismatch_is_typed() -> TestResult {
    let err = msgsock::bind(&"udp:127.0.0.1:0".parse()?).unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongSocketType {
                expected: SocketType::Stream,
                actual: SocketType::Datagram,
                ..
            }
        ),
        "{err:?}"
    );
    let err = msgsock::bind_datagram(&"tcp:127.0.0.1:0".parse()?).unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongSocketType {
                expected: SocketType::Datagram,
                actual: SocketType::Stream,
                ..
            }
        ),
        "{err:?}"
    );
    // The authkey handshake needs a stream.
    let auth = msgsock::Authenticator::new(msgsock::AuthKey::new(b"key".to_vec()));
    let err = msgsock::connect_authenticated(&"udp:127.0.0.1:9".parse()?, &auth).unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongSocketType {
                expected: SocketType::Stream,
                ..
            }
        ),
        "{err:?}"
    );
    let udp = msgsock::bind_datagram(&"udp:127.0.0.1:0".parse()?)?;
    let err = udp.send_to(b"x", &"unixgram:/x".parse()?).unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongFamily {
                expected: Family::Inet,
                ..
            }
        ),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn runtime_form_on_both_datagram_endpoints() -> TestResult {
    let dir = tempfile::tempdir()?;
    for ep in [
        "udp:127.0.0.1:0".to_string(),
        format!("unixgram:{}", dir.path().join("rt.sock").display()),
    ] {
        let server = msgsock::bind_datagram(&ep.parse()?)?;
        let local = server.local_endpoint()?;
        assert_eq!(local.scheme(), ep.parse::<Endpoint>()?.scheme());
        let mut client = msgsock::connect(&local)?;
        assert!(client.is_datagram());
        client.set_read_timeout(Some(GUARD))?;
        let mut buf = Vec::new();
        for msg in [&b"a"[..], &pattern(60_000, 5)] {
            client.send(msg)?;
            let (_, from) = server.recv_from(&mut buf)?;
            server.send_to(&buf, &from.unwrap())?;
            assert_eq!(client.recv()?.as_deref(), Some(msg), "{ep}");
        }
    }
    Ok(())
}

/// A UDP send never waits for its receiver, whatever the write timeout: a receiver with no
/// room drops the datagram.
#[test]
fn a_udp_send_never_waits_for_a_receiver_that_does_not_read() -> TestResult {
    let receiver = UdpSocket::bind("127.0.0.1:0".parse()?)?;
    // The smallest receive buffer the kernel allows, so that it overflows soon.
    nix::sys::socket::setsockopt(&receiver, nix::sys::socket::sockopt::RcvBuf, &1)?;
    let sender = UdpSocket::bind("127.0.0.1:0".parse()?)?;
    sender.connect(receiver.local_addr()?)?;
    // A wait for the receiver would end in this timeout's error.
    sender.set_write_timeout(Some(GUARD))?;
    let sent = 1000;
    for _ in 0..sent {
        sender.send(&[7; 1024])?;
    }
    receiver.set_nonblocking(true)?;
    let mut received = 0;
    while receiver.recv().is_ok() {
        received += 1;
    }
    assert!(
        received < sent,
        "{received} of {sent} fit: none was dropped"
    );
    Ok(())
}

#[test]
fn send_to_a_vanished_unix_peer_is_an_error() -> TestResult {
    let server = UnixDatagram::bind_temp()?;
    let client = UnixDatagram::bind_temp()?;
    client.connect(server.path().unwrap())?;
    drop(server);
    let err = client.send(b"anyone?").unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    Ok(())
}

#[test]
fn too_long_unix_datagram_paths_are_refused_before_any_syscall() -> TestResult {
    let long = std::path::PathBuf::from(format!("/{}", "d".repeat(msgsock::MAX_PATH_LEN)));
    let socket = UnixDatagram::unbound()?;
    for err in [
        socket.connect(&long).unwrap_err(),
        socket.send_to(b"x", &long).unwrap_err(),
        UnixDatagram::bind(&long).unwrap_err(),
    ] {
        assert!(
            matches!(err, Error::PathTooLong { len, max, .. }
                if len == msgsock::MAX_PATH_LEN + 1 && max == msgsock::MAX_PATH_LEN),
            "{err:?}"
        );
    }
    Ok(())
}

#[test]
fn an_unbound_unix_datagram_socket_has_no_local_address() -> TestResult {
    let socket = UnixDatagram::unbound()?;
    assert_eq!(socket.path(), None);
    for err in [
        socket.local_endpoint().unwrap_err(),
        UnixDatagramTransport::local_addr(&socket).unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound),
            "{err:?}"
        );
    }
    Ok(())
}
