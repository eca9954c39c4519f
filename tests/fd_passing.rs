//! Descriptor passing (`SCM_RIGHTS`) on Unix streams and Unix datagrams: each descriptor arrives
//! with the message it was sent with, whatever the reads bring together and after a timeout;
//! received descriptors are close-on-exec; a receive at the descriptor limit is a typed error
//! that leaks nothing and keeps the connection in step; a plain receive leaks nothing; TCP and
//! UDP refuse with a typed error; more than 253 descriptors are refused before anything is sent.
//!
//! A descriptor's identity is its open file's `(dev, ino)`, as same-file compares handles. The
//! descriptor-limit tests lower `RLIMIT_NOFILE` in a child process (this test binary run again,
//! its role in an environment variable), so the test process's own limit is untouched.

mod common;

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::time::Duration;

use msgsock::{Connection, Endpoint, Error, UnixDatagram, UnixStream};

use crate::common::{borrowed, files, frame, identities, reaches_eof, send_raw_with_fds};

fn stream_pair() -> (Connection<UnixStream>, Connection<UnixStream>) {
    let (a, b) = UnixStream::pair().unwrap();
    (Connection::new(a), Connection::new(b))
}

/// Messages with 0 to 4 descriptors each, some of them long, all sent before the receiver
/// reads: reads then bring several messages at once, and each descriptor must come out with its
/// own message.
#[test]
fn stream_descriptors_arrive_with_their_own_message() {
    let (mut tx, mut rx) = stream_pair();
    let plan: Vec<(Vec<u8>, usize)> = (0..40)
        .map(|i| {
            let len = if i % 7 == 3 { 100_000 } else { i * 13 };
            (common::pattern(len, i as u8), i % 5)
        })
        .collect();
    let sent: Vec<Vec<OwnedFd>> = plan.iter().map(|(_, n)| files(*n)).collect();
    let want: Vec<_> = sent.iter().map(|f| identities(f)).collect();
    let sender = std::thread::spawn(move || {
        for ((msg, _), fds) in plan.iter().zip(&sent) {
            tx.send_with_fds(msg, &borrowed(fds)).unwrap();
        }
        (tx, plan)
    });
    let mut got = Vec::new();
    for _ in 0..40 {
        let (msg, fds) = rx.recv_with_fds().unwrap().expect("a message");
        got.push((msg, identities(&fds)));
    }
    let (_tx, plan) = sender.join().unwrap();
    for (i, ((msg, fds), (want_msg, _))) in got.iter().zip(&plan).enumerate() {
        assert!(msg == want_msg, "message {i}: {} bytes", msg.len());
        assert_eq!(fds, &want[i], "descriptors of message {i}");
    }
}

/// A sender in another language may write a frame however it likes as long as the descriptors
/// ride on the frame's first bytes: here the header and part of the payload with them, then,
/// after the receiver's read timeout expired mid-frame, the rest and a plain frame in one write.
#[test]
fn stream_descriptors_survive_a_receive_that_times_out_mid_frame() {
    let (a, raw) = StdUnixStream::pair().unwrap();
    let mut rx = Connection::new(UnixStream::from(a));
    rx.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let fds = files(2);
    let first = frame(b"with two descriptors");
    let (head, rest) = first.split_at(7);
    send_raw_with_fds(&raw, head, &fds);
    let err = rx.recv_with_fds().unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let mut tail = rest.to_vec();
    tail.extend_from_slice(&frame(b"plain"));
    (&raw).write_all(&tail).unwrap();
    let (msg, got) = rx.recv_with_fds().unwrap().unwrap();
    assert_eq!(msg, b"with two descriptors");
    assert_eq!(identities(&got), identities(&fds));
    let (msg, got) = rx.recv_with_fds().unwrap().unwrap();
    assert_eq!((msg.as_slice(), got.len()), (&b"plain"[..], 0));
}

/// Plain receives and receives with descriptors mixed on one connection: a plain `recv` closes
/// the descriptors of its own message (the pipe reaches EOF once the sender closes its copy)
/// and loses none meant for the next, even when its read brought the next message and its
/// descriptors (the kernel reads on past a buffer without descriptors into one with them).
#[test]
fn a_plain_recv_closes_its_messages_descriptors_and_keeps_the_next_ones() {
    let (mut tx, mut rx) = stream_pair();
    let (first_reader, first_writer) = std::io::pipe().unwrap();
    let second = files(1);
    tx.send_with_fds(b"first", &[first_writer.as_fd()]).unwrap();
    tx.send(b"plain").unwrap();
    tx.send_with_fds(b"second", &borrowed(&second)).unwrap();
    drop(first_writer);
    assert_eq!(rx.recv().unwrap().as_deref(), Some(&b"first"[..]));
    assert!(
        reaches_eof(&first_reader),
        "the plain recv leaked the descriptor"
    );
    assert_eq!(rx.recv().unwrap().as_deref(), Some(&b"plain"[..]));
    assert!(
        rx.buffered_len() > 0,
        "the read of `plain` should have brought `second`"
    );
    let (msg, fds) = rx.recv_with_fds().unwrap().unwrap();
    assert_eq!(msg, b"second");
    assert_eq!(identities(&fds), identities(&second));
}

/// A peer that only ever calls plain `recv` leaks nothing, on streams and on datagrams.
#[test]
fn descriptors_sent_to_a_plain_receiver_are_closed() {
    let (mut tx, mut rx) = stream_pair();
    let (reader, writer) = std::io::pipe().unwrap();
    tx.send_with_fds(b"stream", &[writer.as_fd()]).unwrap();
    drop(writer);
    assert_eq!(rx.recv().unwrap().as_deref(), Some(&b"stream"[..]));
    assert!(reaches_eof(&reader), "a stream recv leaked the descriptor");

    let (a, b) = UnixDatagram::pair().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    a.send_with_fds(b"datagram", &[writer.as_fd()]).unwrap();
    drop(writer);
    assert_eq!(b.recv().unwrap(), b"datagram");
    assert!(
        reaches_eof(&reader),
        "a datagram recv leaked the descriptor"
    );
}

/// A connection set not to receive descriptors gets every message whole and in order and none
/// of their descriptors: the kernel closes them (the pipe reaches EOF), `recv_with_fds` is
/// refused before any read, and once set back, descriptors arrive again from the next message.
#[test]
fn a_connection_set_not_to_receive_descriptors_gets_the_messages_only() {
    let (mut tx, mut rx) = stream_pair();
    assert!(rx.receives_fds());
    rx.set_receive_fds(false);
    assert!(!rx.receives_fds());
    let (reader, writer) = std::io::pipe().unwrap();
    tx.send_with_fds(b"first", &[writer.as_fd()]).unwrap();
    tx.send(b"plain").unwrap();
    drop(writer);
    assert!(matches!(rx.recv_with_fds(), Err(Error::FdsRefused)));
    assert_eq!(rx.recv().unwrap().as_deref(), Some(&b"first"[..]));
    assert!(reaches_eof(&reader), "the descriptor reached this process");
    assert_eq!(rx.recv().unwrap().as_deref(), Some(&b"plain"[..]));

    rx.set_receive_fds(true);
    let second = files(1);
    tx.send_with_fds(b"second", &borrowed(&second)).unwrap();
    let (msg, fds) = rx.recv_with_fds().unwrap().unwrap();
    assert_eq!(msg, b"second");
    assert_eq!(identities(&fds), identities(&second));

    // Through `AnyConnection` too.
    let dir = common::tempdir();
    let endpoint = Endpoint::Unix(dir.path().join("s.sock"));
    let listener = msgsock::bind(&endpoint).unwrap();
    let mut client = msgsock::connect(&endpoint).unwrap();
    let mut server = listener.accept().unwrap();
    server.set_receive_fds(false);
    let (reader, writer) = std::io::pipe().unwrap();
    client.send_with_fds(b"any", &[writer.as_fd()]).unwrap();
    drop(writer);
    assert!(matches!(server.recv_with_fds(), Err(Error::FdsRefused)));
    assert_eq!(server.recv().unwrap().as_deref(), Some(&b"any"[..]));
    assert!(reaches_eof(&reader), "the descriptor reached this process");
}

/// The bound is per message: a long message with 200 descriptors, whose frame a read cuts, and
/// the next with 100, which may come with the read that finishes the first, keep all of theirs.
#[test]
fn two_messages_with_many_descriptors_each_keep_all_of_them() {
    let (mut tx, mut rx) = stream_pair();
    let (first, second) = (files(200), files(100));
    tx.send_with_fds(&[7; 50_000], &borrowed(&first)).unwrap();
    tx.send_with_fds(b"second", &borrowed(&second)).unwrap();
    let (msg, got) = rx.recv_with_fds().unwrap().unwrap();
    assert_eq!((msg.len(), identities(&got)), (50_000, identities(&first)));
    let (msg, got) = rx.recv_with_fds().unwrap().unwrap();
    assert_eq!(
        (msg.as_slice(), identities(&got)),
        (&b"second"[..], identities(&second))
    );
}

/// A TCP connection never receives descriptors, whatever it is set to.
#[test]
fn a_tcp_connection_never_receives_descriptors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let mut conn = Connection::new(msgsock::TcpStream::from(stream));
    assert!(!conn.receives_fds());
    conn.set_receive_fds(true);
    assert!(!conn.receives_fds());
}

/// A hostile peer that drips a long frame a byte at a time, a descriptor on each byte, cannot
/// fill the receiver's descriptor table: the connection holds at most 253 for the message (the
/// most one carries) and closes them once there are more; the message then is `FdsTruncated`,
/// and the next one is whole.
#[test]
fn a_peer_dripping_descriptors_on_every_byte_gets_at_most_253_held() {
    let (a, raw) = StdUnixStream::pair().unwrap();
    let mut rx = Connection::new(UnixStream::from(a));
    rx.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    // The socket holds only so many one-byte sends: the peer drips while the receiver reads,
    // and each receive times out once it has read all that came.
    let sender = std::thread::spawn(move || {
        let readers = common::drip_descriptors(&raw, 300);
        (raw, readers)
    });
    while !sender.is_finished() {
        assert!(rx.recv_with_fds().unwrap_err().is_timeout());
    }
    let (raw, readers) = sender.join().unwrap();
    assert!(rx.recv_with_fds().unwrap_err().is_timeout());
    let held = common::open_writers(&readers);
    assert!(held <= 253, "{held} descriptors held for one message");
    let mut rest = vec![1u8];
    rest.extend_from_slice(&frame(b"next"));
    (&raw).write_all(&rest).unwrap();
    let err = rx.recv_with_fds().unwrap_err();
    assert!(
        matches!(err, Error::FdsTruncated { closed: 299 }),
        "{err:?}"
    );
    assert_eq!(common::open_writers(&readers), 0);
    assert_eq!(rx.recv().unwrap().as_deref(), Some(&b"next"[..]));
}

#[test]
fn received_descriptors_are_close_on_exec() {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let cloexec = |fd: &OwnedFd| {
        FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD).unwrap())
            .contains(FdFlag::FD_CLOEXEC)
    };
    let sent = files(1);
    // The sender's copy is not close-on-exec: the flag must come from the receive.
    nix::fcntl::fcntl(&sent[0], FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
    let (mut tx, mut rx) = stream_pair();
    tx.send_with_fds(b"s", &borrowed(&sent)).unwrap();
    let (_, fds) = rx.recv_with_fds().unwrap().unwrap();
    assert!(cloexec(&fds[0]), "stream");
    let (a, b) = UnixDatagram::pair().unwrap();
    a.send_with_fds(b"d", &borrowed(&sent)).unwrap();
    let (_, fds) = b.recv_with_fds().unwrap();
    assert!(cloexec(&fds[0]), "datagram");
}

/// Datagrams: connected `send`/`recv` and `send_to`/`recv_from` carry descriptors, each
/// datagram its own.
#[test]
fn datagram_descriptors_arrive_with_their_datagram() {
    let (a, b) = UnixDatagram::pair().unwrap();
    let one = files(1);
    let three = files(3);
    a.send_with_fds(b"one", &borrowed(&one)).unwrap();
    a.send(b"none").unwrap();
    a.send_with_fds(b"three", &borrowed(&three)).unwrap();
    let (mut buf, mut fds) = (Vec::new(), Vec::new());
    for (msg, want) in [
        (&b"one"[..], identities(&one)),
        (b"none", vec![]),
        (b"three", identities(&three)),
    ] {
        b.recv_into_with_fds(&mut buf, &mut fds).unwrap();
        assert_eq!((buf.as_slice(), identities(&fds)), (msg, want));
    }

    let dir = common::tempdir();
    let server = UnixDatagram::bind(dir.path().join("srv.sock")).unwrap();
    let client = UnixDatagram::bind_temp().unwrap();
    client
        .send_to_with_fds(b"to", &borrowed(&one), server.path().unwrap())
        .unwrap();
    let (_, from) = server.recv_from_with_fds(&mut buf, &mut fds).unwrap();
    assert_eq!(
        (buf.as_slice(), identities(&fds)),
        (&b"to"[..], identities(&one))
    );
    assert_eq!(
        from,
        Some(Endpoint::UnixDatagram(client.path().unwrap().into()))
    );
}

/// More than Linux's `SCM_MAX_FD` (253) is a typed error, and nothing reaches the peer: the
/// next message is the first it sees. 253 go through.
#[test]
fn more_than_253_descriptors_are_refused_before_sending() {
    let many = files(254);
    let (mut tx, mut rx) = stream_pair();
    let err = tx.send_with_fds(b"too many", &borrowed(&many)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooManyFds {
                count: 254,
                max: 253
            }
        ),
        "{err:?}"
    );
    tx.send_with_fds(b"most", &borrowed(&many[..253])).unwrap();
    let (msg, fds) = rx.recv_with_fds().unwrap().unwrap();
    assert_eq!((msg.as_slice(), fds.len()), (&b"most"[..], 253));

    let (a, b) = UnixDatagram::pair().unwrap();
    let err = a.send_with_fds(b"too many", &borrowed(&many)).unwrap_err();
    assert!(
        matches!(err, Error::TooManyFds { count: 254, .. }),
        "{err:?}"
    );
    a.send(b"next").unwrap();
    assert_eq!(b.recv().unwrap(), b"next");
}

/// TCP and UDP carry no descriptors: a typed error before anything is sent or read.
#[test]
fn tcp_and_udp_refuse_descriptor_passing() {
    let fds = files(1);
    let unsupported = |r: Result<(), Error>, what: &str| {
        let err = r.unwrap_err();
        assert!(
            matches!(err, Error::FdsUnsupported { .. }),
            "{what}: {err:?}"
        );
        assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    };
    let listener = msgsock::bind(&"tcp:127.0.0.1:0".parse().unwrap()).unwrap();
    let mut client = msgsock::connect(&listener.local_endpoint().unwrap()).unwrap();
    let mut server = listener.accept().unwrap();
    unsupported(client.send_with_fds(b"x", &borrowed(&fds)), "tcp send");
    // However many are given: the transport refuses any, as UDP does.
    let many = files(254);
    unsupported(
        client.send_with_fds(b"x", &borrowed(&many)),
        "tcp send of 254",
    );
    unsupported(server.recv_with_fds().map(drop), "tcp recv");
    // Nothing was sent: the first message the server sees is the next one.
    client.send(b"after").unwrap();
    assert_eq!(server.recv().unwrap().as_deref(), Some(&b"after"[..]));

    let socket = msgsock::bind_datagram(&"udp:127.0.0.1:0".parse().unwrap()).unwrap();
    let mut udp = msgsock::connect(&socket.local_endpoint().unwrap()).unwrap();
    unsupported(udp.send_with_fds(b"x", &borrowed(&fds)), "udp send");
    unsupported(udp.send_with_fds(b"x", &borrowed(&many)), "udp send of 254");
    unsupported(udp.recv_with_fds().map(drop), "udp recv");
    let to = socket.local_endpoint().unwrap();
    unsupported(
        socket.try_send_to_with_fds_within(b"x", &borrowed(&fds), &to, Duration::ZERO),
        "udp try_send_to_with_fds_within",
    );
}

/// Through `AnyConnection` on `unix:` and `unixgram:` endpoints.
#[test]
fn any_connection_passes_descriptors_on_unix_endpoints() {
    let dir = common::tempdir();
    let fds = files(2);
    let endpoint = Endpoint::Unix(dir.path().join("s.sock"));
    let listener = msgsock::bind(&endpoint).unwrap();
    let mut client = msgsock::connect(&endpoint).unwrap();
    let mut server = listener.accept().unwrap();
    client.send_with_fds(b"stream", &borrowed(&fds)).unwrap();
    let (msg, got) = server.recv_with_fds().unwrap().unwrap();
    assert_eq!(
        (msg.as_slice(), identities(&got)),
        (&b"stream"[..], identities(&fds))
    );

    let endpoint = Endpoint::UnixDatagram(dir.path().join("d.sock"));
    let socket = msgsock::bind_datagram(&endpoint).unwrap();
    let mut client = msgsock::connect(&endpoint).unwrap();
    client.send_with_fds(b"datagram", &borrowed(&fds)).unwrap();
    let (mut buf, mut got) = (Vec::new(), Vec::new());
    let (_, from) = socket.recv_from_with_fds(&mut buf, &mut got).unwrap();
    assert_eq!(
        (buf.as_slice(), identities(&got)),
        (&b"datagram"[..], identities(&fds))
    );
    socket
        .try_send_to_with_fds_within(
            b"back",
            &borrowed(&fds[..1]),
            &from.unwrap(),
            Duration::ZERO,
        )
        .unwrap();
    let (msg, got) = client.recv_with_fds().unwrap().unwrap();
    assert_eq!(
        (msg.as_slice(), identities(&got)),
        (&b"back"[..], identities(&fds[..1]))
    );
}

/// A frame with descriptors never shares a `sendmsg(2)` with another frame's bytes: after a
/// send left the rest of a long frame queued, the descriptors still arrive with their own
/// message, not with the long one whose rest goes out first.
#[test]
fn descriptors_sent_behind_a_queued_rest_stay_with_their_message() {
    let (mut tx, mut rx) = stream_pair();
    tx.set_nonblocking(true).unwrap();
    let big = common::pattern(4 << 20, 9);
    tx.send(&big).unwrap();
    assert!(tx.pending_len() > 0, "the socket took all of it");
    let fds = files(2);
    let err = tx.send_with_fds(b"small", &borrowed(&fds)).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let reader = std::thread::spawn(move || {
        let first = rx.recv_with_fds().unwrap().unwrap();
        let second = rx.recv_with_fds().unwrap().unwrap();
        (first, second)
    });
    tx.set_nonblocking(false).unwrap();
    tx.send_with_fds(b"small", &borrowed(&fds)).unwrap();
    let ((msg, first_fds), (small, small_fds)) = reader.join().unwrap();
    assert!(
        msg == big && first_fds.is_empty(),
        "{} bytes, {} descriptors",
        msg.len(),
        first_fds.len()
    );
    assert_eq!(
        (small.as_slice(), identities(&small_fds)),
        (&b"small"[..], identities(&fds))
    );
}
