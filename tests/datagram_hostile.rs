//! Datagram sockets against peers and settings that used to stall or kill a server: a peer that
//! stops reading (its full queue must not hold up replies to others) and receive limits up to
//! `usize::MAX` (memory must follow the datagram, not the limit).

mod common;

use std::io;
use std::os::unix::net::UnixDatagram as StdUnixDatagram;
use std::time::Duration;

use msgsock::{
    Channel, DatagramTransport, Error, UdpSocket, UdpTransport, UnixDatagram, UnixDatagramTransport,
};

use nix::sys::socket::{setsockopt, sockopt};

use crate::common::{tempdir, GUARD_TIMEOUT};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// More datagrams than any receive queue here holds (Linux's default is 10).
const FLOOD: usize = 100_000;

fn is_would_block(result: &msgsock::Result<()>) -> bool {
    matches!(result, Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock)
}

/// A peer that binds its own address and never reads: `try_send_to` it until its queue is full,
/// which must come as `WouldBlock` at once; a second peer still gets its datagram.
#[test]
fn unixgram_try_send_to_a_full_peer_would_block_and_others_still_get_theirs() -> TestResult {
    let dir = tempdir();
    let server = UnixDatagram::bind(dir.path().join("server.sock"))?;
    // A blocking send would wait for the stalled peer: bound it, so a regression fails here.
    server.set_write_timeout(Some(GUARD_TIMEOUT))?;
    let stalled_path = dir.path().join("stalled.sock");
    let _stalled = StdUnixDatagram::bind(&stalled_path)?;
    let queued = (0..FLOOD)
        .take_while(|_| {
            let sent = server.try_send_to(b"never read", &stalled_path);
            assert!(sent.is_ok() || is_would_block(&sent), "{sent:?}");
            sent.is_ok()
        })
        .count();
    assert!(queued < FLOOD, "the stalled peer's queue never filled");
    assert!(is_would_block(&server.try_send_to(b"again", &stalled_path)));

    // Waiting for room in the server's own buffer does not wait for the peer's full queue: the
    // bound is far above the microseconds this takes, and far below the wait offered.
    let started = std::time::Instant::now();
    let waited = server.try_send_to_within(b"again", &stalled_path, GUARD_TIMEOUT);
    assert!(is_would_block(&waited), "{waited:?}");
    assert!(
        started.elapsed() < GUARD_TIMEOUT / 4,
        "waited {:?}",
        started.elapsed()
    );

    let other = UnixDatagram::bind_temp()?;
    other.set_read_timeout(Some(GUARD_TIMEOUT))?;
    server.try_send_to_within(b"for you", other.path().unwrap(), GUARD_TIMEOUT)?;
    assert_eq!(other.recv()?, b"for you");
    Ok(())
}

#[test]
fn udp_try_send_to_delivers() -> TestResult {
    let server = UdpSocket::bind("127.0.0.1:0".parse()?)?;
    let client = UdpSocket::bind("127.0.0.1:0".parse()?)?;
    client.set_read_timeout(Some(GUARD_TIMEOUT))?;
    server.try_send_to(b"hello", client.local_addr()?)?;
    assert_eq!(client.recv()?, b"hello");
    let too_long = vec![0; server.send_limit() + 1];
    assert!(matches!(
        server.try_send_to(&too_long, client.local_addr()?),
        Err(Error::MessageTooLarge { .. })
    ));
    Ok(())
}

#[test]
fn any_datagram_try_send_to_refuses_another_transport() -> TestResult {
    let server = msgsock::bind_datagram(&"udp:127.0.0.1:0".parse()?)?;
    let err = server
        .try_send_to(b"x", &"unixgram:/nonexistent".parse()?)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongFamily {
                expected: msgsock::Family::Inet,
                ..
            }
        ),
        "{err:?}"
    );
    let err = server
        .try_send_to(b"x", &"tcp:127.0.0.1:9".parse()?)
        .unwrap_err();
    assert!(matches!(err, Error::WrongSocketType { .. }), "{err:?}");
    Ok(())
}

/// A 5-byte datagram under each huge limit: received whole, in a buffer sized by the family's
/// largest datagram (what a receive with the default limit reserves), never by the limit; and
/// both receive paths (`recv_from` on the server, `recv_into` on a connected client). `set`
/// sets the limit and returns the socket's `send_limit`.
fn huge_limits_cost_what_the_datagram_costs<T: DatagramTransport>(
    set: impl Fn(&mut T::Socket, usize) -> usize,
) -> TestResult {
    for limit in [1 << 40, usize::MAX, usize::MAX - 1] {
        let mut server = T::bind_ephemeral()?;
        let most = set(&mut server, limit).max(1 << 17);
        let mut client = T::connect(&T::local_addr(&server)?)?;
        set(&mut client, limit);
        client.set_read_timeout(Some(GUARD_TIMEOUT))?;

        client.send(b"hello")?;
        let mut buf = Vec::new();
        let (n, from) = T::recv_from(&server, &mut buf)?;
        assert_eq!((n, &buf[..]), (5, &b"hello"[..]), "limit {limit}");
        assert!(
            buf.capacity() <= most,
            "limit {limit}: {} reserved",
            buf.capacity()
        );

        T::send_to(&server, b"world", &from.expect("the client has an address"))?;
        let mut reply = Vec::new();
        assert_eq!(client.recv_into(&mut reply)?, Some(5), "limit {limit}");
        assert_eq!(reply, b"world");
        assert!(
            reply.capacity() <= most,
            "limit {limit}: {} reserved",
            reply.capacity()
        );
    }
    Ok(())
}

#[test]
fn udp_huge_receive_limits_work_and_reserve_little() -> TestResult {
    huge_limits_cost_what_the_datagram_costs::<UdpTransport>(|s, max| {
        s.set_max_message_len(max);
        s.send_limit()
    })
}

#[test]
fn unixgram_huge_receive_limits_work_and_reserve_little() -> TestResult {
    huge_limits_cost_what_the_datagram_costs::<UnixDatagramTransport>(|s, max| {
        s.set_max_message_len(max);
        s.send_limit()
    })
}

/// Above the default limit the length is peeked first: a datagram over the (raised) limit is
/// still `Truncated` with its real length, one under it arrives whole, and so does the next.
/// The sender's buffer is raised so it can send more than the receiver's default limit.
#[test]
fn unixgram_truncation_is_still_reported_above_the_default_limit() -> TestResult {
    let mut server = UnixDatagram::bind_temp()?;
    let raw = StdUnixDatagram::unbound()?;
    setsockopt(&raw, sockopt::SndBuf, &(1 << 20))?;
    let sender = UnixDatagram::from(raw);
    sender.connect(server.path().unwrap())?;
    let default = server.max_message_len();
    let big = sender.send_limit();
    assert!(
        big > default,
        "the sender can send {big}, the default limit is {default}"
    );
    let mut buf = Vec::new();
    let expect_truncated = |server: &UnixDatagram, max: usize| {
        sender.send(&vec![8; big]).unwrap();
        match server.recv_into(&mut Vec::new()) {
            Err(Error::Truncated { len, max: m }) => assert_eq!((len, m), (big as u64, max as u64)),
            other => panic!("limit {max}: expected Truncated, got {other:?}"),
        }
    };

    expect_truncated(&server, default);
    server.set_max_message_len(default + (big - default) / 2);
    expect_truncated(&server, server.max_message_len());

    server.set_max_message_len(big + 1_000_000);
    sender.send(&vec![7; big])?;
    assert_eq!(server.recv_into(&mut buf)?, big);
    assert!(buf.iter().all(|&b| b == 7));
    sender.send(b"after")?;
    assert_eq!(server.recv_into(&mut buf)?, 5);
    assert_eq!(buf, b"after");
    Ok(())
}

/// Below the default, nothing changed: `Truncated` with the real length (Linux), then the next.
#[test]
fn udp_truncation_under_a_huge_limit_cannot_happen_and_under_a_small_one_is_reported() -> TestResult
{
    let mut server = UdpSocket::bind("127.0.0.1:0".parse()?)?;
    let client = UdpSocket::bind("127.0.0.1:0".parse()?)?;
    client.connect(server.local_addr()?)?;
    server.set_read_timeout(Some(Duration::from_secs(20)))?;
    server.set_max_message_len(100);
    client.send(&[1; 200])?;
    let mut buf = Vec::new();
    match server.recv_from(&mut buf) {
        Err(Error::Truncated { len: 200, max: 100 }) => {}
        other => panic!("expected Truncated, got {other:?}"),
    }
    server.set_max_message_len(usize::MAX);
    client.send(&vec![2; msgsock::UDP_V4_MAX_MESSAGE_LEN])?;
    assert_eq!(
        server.recv_from(&mut buf)?.0,
        msgsock::UDP_V4_MAX_MESSAGE_LEN
    );
    Ok(())
}

/// Receivers on handles of one socket, each with a receive limit above what is reserved at
/// once (so each receive peeks at the length first): every message reaches one of them whole.
/// Ends with one empty message per receiver; `GUARD_TIMEOUT` only turns a loss into a failure.
macro_rules! receivers_sharing_a_socket_get_every_message {
    ($name:ident, $pair:expr, $recv:expr) => {
        #[test]
        fn $name() {
            const RECEIVERS: usize = 4;
            const MESSAGES: usize = 200_000;
            let (tx, mut rx) = $pair.unwrap();
            rx.set_max_message_len(usize::MAX);
            rx.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
            let threads: Vec<_> = (0..RECEIVERS)
                .map(|_| {
                    let rx = rx.try_clone().unwrap();
                    std::thread::spawn(move || {
                        let (mut got, mut errors) = (0usize, Vec::new());
                        loop {
                            match $recv(&rx) {
                                Ok(m) if m.is_empty() => return (got, errors),
                                Ok(_) => got += 1,
                                Err(e) if e.is_timeout() => return (got, errors),
                                Err(e) => errors.push(e.to_string()),
                            }
                        }
                    })
                })
                .collect();
            let (short, long) = ([9u8; 1], [9u8; 100]);
            for i in 0..MESSAGES {
                tx.send(if i % 2 == 0 { &short[..] } else { &long[..] })
                    .unwrap();
            }
            for _ in 0..RECEIVERS {
                tx.send(&[]).unwrap();
            }
            let (mut got, mut errors) = (0, Vec::new());
            for t in threads {
                let (g, e) = t.join().unwrap();
                got += g;
                errors.extend(e);
            }
            errors.truncate(3);
            assert_eq!((got, errors), (MESSAGES, Vec::<String>::new()));
        }
    };
}

receivers_sharing_a_socket_get_every_message!(
    unixgram_receivers_sharing_a_socket_get_every_message,
    UnixDatagram::pair(),
    |rx: &UnixDatagram| rx.recv()
);
receivers_sharing_a_socket_get_every_message!(
    seqpacket_receivers_sharing_a_socket_get_every_message,
    msgsock::UnixSeqpacket::pair(),
    // The end of the stream, were the sender to close, reads as an empty message too.
    |rx: &msgsock::UnixSeqpacket| rx.recv().map(Option::unwrap_or_default)
);
