//! Descriptor passing (`SCM_RIGHTS`) on the tokio side: `AsyncConnection` over a Unix stream,
//! `AsyncDatagram` on `unixgram:` and `AsyncSeqpacket`, each descriptor with the message it was
//! sent with, when one read brings several messages and when a receive is cancelled part-way
//! through a frame; a cancelled send leaves no descriptor with the wrong message; received
//! descriptors are close-on-exec; TCP and UDP refuse with a typed error before anything is sent.
//!
//! The same protocol core as the blocking side (`tests/fd_passing.rs`): these tests prove the
//! async drivers hand it the control data of every read and send descriptors with a frame's
//! first bytes.
#![cfg(feature = "tokio")]

mod common;

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::time::Duration;

use msgsock::tokio::{AsyncConnection, AsyncDatagram, AsyncSeqpacket};
use msgsock::{AnyDatagram, Error, UnixDatagram};
use tokio::net::UnixStream;

use crate::common::{borrowed, files, frame, identities, reaches_eof, send_raw_with_fds};

/// How long a receive is given before it is cancelled, while the rest of its frame has not
/// been sent: it cannot finish in that time whatever the machine's speed, so the cancellation
/// is certain, and nothing waits on it to be short.
const CANCEL_AFTER: Duration = Duration::from_millis(50);

fn stream_pair() -> (AsyncConnection<UnixStream>, AsyncConnection<UnixStream>) {
    let (a, b) = UnixStream::pair().unwrap();
    (AsyncConnection::new(a), AsyncConnection::new(b))
}

/// Messages with 0 to 4 descriptors each, some of them long, sent by a task while the receiver
/// reads: each descriptor must come out with its own message.
#[tokio::test]
async fn stream_descriptors_arrive_with_their_own_message() {
    let (mut tx, mut rx) = stream_pair();
    let plan: Vec<(Vec<u8>, usize)> = (0..40)
        .map(|i| {
            let len = if i % 7 == 3 { 100_000 } else { i * 13 };
            (common::pattern(len, i as u8), i % 5)
        })
        .collect();
    let sent: Vec<Vec<OwnedFd>> = plan.iter().map(|(_, n)| files(*n)).collect();
    let want: Vec<_> = sent.iter().map(|f| identities(f)).collect();
    let sender = tokio::spawn(async move {
        for ((msg, _), fds) in plan.iter().zip(&sent) {
            tx.send_with_fds(msg, &borrowed(fds)).await.unwrap();
        }
        (tx, plan)
    });
    let mut got = Vec::new();
    for _ in 0..40 {
        let (msg, fds) = rx.recv_with_fds().await.unwrap().expect("a message");
        got.push((msg, identities(&fds)));
    }
    let (_tx, plan) = sender.await.unwrap();
    for (i, ((msg, fds), (want_msg, _))) in got.iter().zip(&plan).enumerate() {
        assert!(msg == want_msg, "message {i}: {} bytes", msg.len());
        assert_eq!(fds, &want[i], "descriptors of message {i}");
    }
}

/// All sent before the first receive: the first read (into the stack, the connection holding
/// no buffer yet) brings the first message and its descriptors; the next read brings two plain
/// messages and the one with descriptors behind them (the kernel reads on past buffers without
/// descriptors into one with them), and each message gets only its own.
#[tokio::test]
async fn several_messages_in_one_read_keep_their_own_descriptors() {
    let (mut tx, mut rx) = stream_pair();
    let (first, second) = (files(1), files(2));
    tx.send_with_fds(b"first", &borrowed(&first)).await.unwrap();
    tx.send(b"plain").await.unwrap();
    tx.send(b"plain too").await.unwrap();
    tx.send_with_fds(b"second", &borrowed(&second))
        .await
        .unwrap();
    let (msg, fds) = rx.recv_with_fds().await.unwrap().unwrap();
    assert_eq!(
        (msg.as_slice(), identities(&fds)),
        (&b"first"[..], identities(&first))
    );
    let (msg, fds) = rx.recv_with_fds().await.unwrap().unwrap();
    assert_eq!((msg.as_slice(), fds.len()), (&b"plain"[..], 0));
    assert!(
        rx.buffered_len() > 0,
        "the read of `plain` should have brought the messages behind it"
    );
    let (msg, fds) = rx.recv_with_fds().await.unwrap().unwrap();
    assert_eq!((msg.as_slice(), fds.len()), (&b"plain too"[..], 0));
    let (msg, fds) = rx.recv_with_fds().await.unwrap().unwrap();
    assert_eq!(
        (msg.as_slice(), identities(&fds)),
        (&b"second"[..], identities(&second))
    );
}

/// A plain `recv` closes its own message's descriptors (the pipe reaches EOF once the sender
/// closes its copy) and loses none meant for the next message, though its read brought that
/// message and its descriptors: every read of a Unix stream takes the control data.
#[tokio::test]
async fn a_plain_recv_closes_its_messages_descriptors_and_keeps_the_next_ones() {
    let (mut tx, mut rx) = stream_pair();
    let (first_reader, first_writer) = std::io::pipe().unwrap();
    let second = files(1);
    tx.send_with_fds(b"first", &[first_writer.as_fd()])
        .await
        .unwrap();
    tx.send(b"plain").await.unwrap();
    tx.send_with_fds(b"second", &borrowed(&second))
        .await
        .unwrap();
    drop(first_writer);
    assert_eq!(rx.recv().await.unwrap().as_deref(), Some(&b"first"[..]));
    assert!(
        reaches_eof(&first_reader),
        "the plain recv leaked the descriptor"
    );
    assert_eq!(rx.recv().await.unwrap().as_deref(), Some(&b"plain"[..]));
    assert!(
        rx.buffered_len() > 0,
        "the read of `plain` should have brought `second`"
    );
    let (msg, fds) = rx.recv_with_fds().await.unwrap().unwrap();
    assert_eq!(
        (msg.as_slice(), identities(&fds)),
        (&b"second"[..], identities(&second))
    );
}

/// A raw peer trickles a frame whose descriptors ride on its first 7 bytes; a `recv_with_fds`
/// cancelled by `timeout` after those, and again after one more byte, loses nothing: the next
/// receive returns the message with its descriptors, then the plain message behind it.
#[tokio::test]
async fn a_cancelled_recv_with_fds_loses_nothing() {
    let (a, raw) = StdUnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let mut rx = AsyncConnection::new(UnixStream::from_std(a).unwrap());
    let fds = files(2);
    let whole = frame(b"with two descriptors");
    let (head, rest) = whole.split_at(7);
    send_raw_with_fds(&raw, head, &fds);
    let cancelled = tokio::time::timeout(CANCEL_AFTER, rx.recv_with_fds()).await;
    assert!(cancelled.is_err(), "a receive of half a frame finished");
    // The frame's first bytes, its header included.
    let first = rx.buffered_len();
    assert!(first > 0, "the first part was not read");
    (&raw).write_all(&rest[..1]).unwrap();
    let cancelled = tokio::time::timeout(CANCEL_AFTER, rx.recv_with_fds()).await;
    assert!(cancelled.is_err(), "a receive of half a frame finished");
    assert_eq!(rx.buffered_len(), first + 1, "one more byte was read");
    let mut tail = rest[1..].to_vec();
    tail.extend_from_slice(&frame(b"plain"));
    (&raw).write_all(&tail).unwrap();
    let (msg, got) = rx.recv_with_fds().await.unwrap().unwrap();
    assert_eq!(msg, b"with two descriptors");
    assert_eq!(identities(&got), identities(&fds));
    let (msg, got) = rx.recv_with_fds().await.unwrap().unwrap();
    assert_eq!((msg.as_slice(), got.len()), (&b"plain"[..], 0));
}

/// A `send_with_fds` cancelled while an earlier frame's rest still waits for the socket queues
/// nothing and sends no descriptor; sent again, its descriptors arrive with it, not with the
/// long message whose rest went out first.
#[tokio::test]
async fn a_cancelled_send_with_fds_sends_nothing_and_later_ones_stay_with_their_message() {
    let (mut tx, mut rx) = stream_pair();
    let big = common::pattern(4 << 20, 9);
    let cancelled = tokio::time::timeout(CANCEL_AFTER, tx.send(&big)).await;
    assert!(
        cancelled.is_err(),
        "4 MiB fit the socket with nobody reading"
    );
    let queued = tx.queued_len();
    assert!(queued > 0, "the rest of the long frame is queued");
    let fds = files(2);
    let cancelled =
        tokio::time::timeout(CANCEL_AFTER, tx.send_with_fds(b"small", &borrowed(&fds))).await;
    assert!(cancelled.is_err(), "the queue went out with nobody reading");
    assert_eq!(tx.queued_len(), queued, "the cancelled send queued nothing");
    let reader = tokio::spawn(async move {
        let first = rx.recv_with_fds().await.unwrap().unwrap();
        let second = rx.recv_with_fds().await.unwrap().unwrap();
        (first, second)
    });
    tx.send_with_fds(b"small", &borrowed(&fds)).await.unwrap();
    let ((msg, first_fds), (small, small_fds)) = reader.await.unwrap();
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

/// `unixgram:`: each datagram gets its own descriptors, connected and through `recv_from`, and
/// a reply with descriptors through `try_send_to_with_fds_within`.
#[tokio::test]
async fn datagram_descriptors_arrive_with_their_datagram() {
    let (a, b) = UnixDatagram::pair().unwrap();
    let a = AsyncDatagram::from_blocking(AnyDatagram::Unix(a)).unwrap();
    let b = AsyncDatagram::from_blocking(AnyDatagram::Unix(b)).unwrap();
    let (one, two) = (files(1), files(3));
    a.send_with_fds(b"one", &borrowed(&one)).await.unwrap();
    a.send(b"none").await.unwrap();
    a.send_with_fds(b"two", &borrowed(&two)).await.unwrap();
    let (mut buf, mut fds) = (Vec::new(), Vec::new());
    let n = b.recv_into_with_fds(&mut buf, &mut fds).await.unwrap();
    assert_eq!(
        (&buf[..n], identities(&fds)),
        (&b"one"[..], identities(&one))
    );
    b.recv_into_with_fds(&mut buf, &mut fds).await.unwrap();
    assert_eq!((buf.as_slice(), fds.len()), (&b"none"[..], 0));
    b.recv_from_with_fds(&mut buf, &mut fds).await.unwrap();
    assert_eq!(
        (buf.as_slice(), identities(&fds)),
        (&b"two"[..], identities(&two))
    );

    let dir = common::tempdir();
    let server = msgsock::tokio::bind_datagram(&msgsock::Endpoint::UnixDatagram(
        dir.path().join("server.sock"),
    ))
    .await
    .unwrap();
    let client = UnixDatagram::bind(dir.path().join("client.sock")).unwrap();
    client.connect(dir.path().join("server.sock")).unwrap();
    client
        .set_read_timeout(Some(common::GUARD_TIMEOUT))
        .unwrap();
    client.send_with_fds(b"ask", &borrowed(&one)).unwrap();
    let (_, from) = server.recv_from_with_fds(&mut buf, &mut fds).await.unwrap();
    let from = from.expect("a bound sender");
    server
        .try_send_to_with_fds_within(b"answer", &borrowed(&fds), &from, common::GUARD_TIMEOUT)
        .await
        .unwrap();
    let (msg, got) = client.recv_with_fds().unwrap();
    assert_eq!(
        (msg.as_slice(), identities(&got)),
        (&b"answer"[..], identities(&one))
    );
}

/// SEQPACKET: each packet gets its own descriptors.
#[tokio::test]
async fn seqpacket_descriptors_arrive_with_their_packet() {
    let (a, b) = AsyncSeqpacket::pair().unwrap();
    let fds = files(2);
    a.send_with_fds(b"with", &borrowed(&fds)).await.unwrap();
    a.send(b"without").await.unwrap();
    let (msg, got) = b.recv_with_fds().await.unwrap().unwrap();
    assert_eq!(
        (msg.as_slice(), identities(&got)),
        (&b"with"[..], identities(&fds))
    );
    let (msg, got) = b.recv_with_fds().await.unwrap().unwrap();
    assert_eq!((msg.as_slice(), got.len()), (&b"without"[..], 0));
    drop(a);
    assert!(b.recv_with_fds().await.unwrap().is_none());
}

/// Through `AsyncAnyConnection` and the split halves of a Unix stream.
#[tokio::test]
async fn any_connection_and_halves_pass_descriptors() {
    let dir = common::tempdir();
    let endpoint = msgsock::Endpoint::Unix(dir.path().join("s.sock"));
    let listener = msgsock::tokio::bind(&endpoint).await.unwrap();
    let mut client = msgsock::tokio::connect(&endpoint).await.unwrap();
    let mut server = listener.accept().await.unwrap();
    let fds = files(2);
    client.send_with_fds(b"any", &borrowed(&fds)).await.unwrap();
    let (msg, got) = server.recv_with_fds().await.unwrap().unwrap();
    assert_eq!(
        (msg.as_slice(), identities(&got)),
        (&b"any"[..], identities(&fds))
    );

    let (mut rx, _) = server.into_stream().unwrap().into_split();
    let (_, mut tx) = client.into_stream().unwrap().into_split();
    tx.send_with_fds(b"halves", &borrowed(&fds)).await.unwrap();
    let (msg, got) = rx.recv_with_fds().await.unwrap().unwrap();
    assert_eq!(
        (msg.as_slice(), identities(&got)),
        (&b"halves"[..], identities(&fds))
    );
}

/// TCP and UDP carry no descriptors: a typed error before anything is sent or read; more than
/// 253 descriptors are refused before anything is sent.
#[tokio::test]
async fn tcp_udp_and_too_many_descriptors_are_refused_before_sending() {
    let fds = files(1);
    let unsupported = |r: Result<(), Error>, what: &str| {
        let err = r.unwrap_err();
        assert!(
            matches!(err, Error::FdsUnsupported { .. }),
            "{what}: {err:?}"
        );
        assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    };
    let listener = msgsock::tokio::bind(&"tcp:127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut client = msgsock::tokio::connect(&listener.local_endpoint().unwrap())
        .await
        .unwrap();
    let mut server = listener.accept().await.unwrap();
    unsupported(
        client.send_with_fds(b"x", &borrowed(&fds)).await,
        "tcp send",
    );
    // However many are given: the transport refuses any, as UDP does.
    unsupported(
        client.send_with_fds(b"x", &borrowed(&files(254))).await,
        "tcp send of 254",
    );
    unsupported(server.recv_with_fds().await.map(drop), "tcp recv");
    // Nothing was sent: the first message the server sees is the next one.
    client.send(b"after").await.unwrap();
    assert_eq!(server.recv().await.unwrap().as_deref(), Some(&b"after"[..]));

    let socket = msgsock::tokio::bind_datagram(&"udp:127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut udp = msgsock::tokio::connect(&socket.local_endpoint().unwrap())
        .await
        .unwrap();
    unsupported(udp.send_with_fds(b"x", &borrowed(&fds)).await, "udp send");
    unsupported(udp.recv_with_fds().await.map(drop), "udp recv");
    let to = socket.local_endpoint().unwrap();
    unsupported(
        socket
            .try_send_to_with_fds_within(b"x", &borrowed(&fds), &to, Duration::ZERO)
            .await,
        "udp try_send_to_with_fds_within",
    );

    let (mut tx, mut rx) = stream_pair();
    let many = files(254);
    let err = tx.send_with_fds(b"x", &borrowed(&many)).await.unwrap_err();
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
    tx.send(b"after").await.unwrap();
    assert_eq!(rx.recv().await.unwrap().as_deref(), Some(&b"after"[..]));
}

/// As the blocking test of the same name: a connection (or receiving half) set not to receive
/// descriptors gets every message and none of their descriptors, and refuses `recv_with_fds`.
#[tokio::test]
async fn a_connection_set_not_to_receive_descriptors_gets_the_messages_only() {
    let (mut tx, rx) = stream_pair();
    let (mut rx, _rx_send) = rx.into_split();
    assert!(rx.receives_fds());
    rx.set_receive_fds(false);
    assert!(!rx.receives_fds());
    let (reader, writer) = std::io::pipe().unwrap();
    tx.send_with_fds(b"first", &[writer.as_fd()]).await.unwrap();
    tx.send(b"plain").await.unwrap();
    drop(writer);
    assert!(matches!(rx.recv_with_fds().await, Err(Error::FdsRefused)));
    assert_eq!(rx.recv().await.unwrap().as_deref(), Some(&b"first"[..]));
    assert!(reaches_eof(&reader), "the descriptor reached this process");
    assert_eq!(rx.recv().await.unwrap().as_deref(), Some(&b"plain"[..]));

    rx.set_receive_fds(true);
    let second = files(1);
    tx.send_with_fds(b"second", &borrowed(&second))
        .await
        .unwrap();
    let (msg, fds) = rx.recv_with_fds().await.unwrap().unwrap();
    assert_eq!(msg, b"second");
    assert_eq!(identities(&fds), identities(&second));
}

/// As the blocking test of the same name: a peer that drips descriptors on every byte of a
/// long frame gets at most 253 held, the message is `FdsTruncated`, and the next one is whole.
#[tokio::test]
async fn a_peer_dripping_descriptors_on_every_byte_gets_at_most_253_held() {
    let (a, raw) = StdUnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let mut rx = AsyncConnection::new(UnixStream::from_std(a).unwrap());
    // The socket holds only so many one-byte sends: the peer drips while the receiver reads,
    // and each receive is cancelled once it has read all that came.
    let sender = std::thread::spawn(move || {
        let readers = common::drip_descriptors(&raw, 300);
        (raw, readers)
    });
    let wait = Duration::from_millis(50);
    while !sender.is_finished() {
        let got = tokio::time::timeout(wait, rx.recv_with_fds()).await;
        assert!(got.is_err(), "the frame is not whole yet");
    }
    let (raw, readers) = sender.join().unwrap();
    let got = tokio::time::timeout(wait, rx.recv_with_fds()).await;
    assert!(got.is_err(), "the frame is not whole yet");
    let held = common::open_writers(&readers);
    assert!(held <= 253, "{held} descriptors held for one message");
    let mut rest = vec![1u8];
    rest.extend_from_slice(&frame(b"next"));
    (&raw).write_all(&rest).unwrap();
    let err = rx.recv_with_fds().await.unwrap_err();
    assert!(
        matches!(err, Error::FdsTruncated { closed: 299 }),
        "{err:?}"
    );
    assert_eq!(common::open_writers(&readers), 0);
    assert_eq!(rx.recv().await.unwrap().as_deref(), Some(&b"next"[..]));
}

/// A TCP connection never receives descriptors, whatever it is set to.
#[tokio::test]
async fn a_tcp_connection_never_receives_descriptors() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut conn = AsyncConnection::new(stream);
    assert!(!conn.receives_fds());
    conn.set_receive_fds(true);
    assert!(!conn.receives_fds());
}

#[tokio::test]
async fn received_descriptors_are_close_on_exec() {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let cloexec = |fd: &OwnedFd| {
        FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD).unwrap())
            .contains(FdFlag::FD_CLOEXEC)
    };
    let sent = files(1);
    // The sender's copy is not close-on-exec: the flag must come from the receive.
    fcntl(&sent[0], FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
    assert!(!cloexec(&sent[0]));
    let (mut tx, mut rx) = stream_pair();
    tx.send_with_fds(b"s", &borrowed(&sent)).await.unwrap();
    let (_, fds) = rx.recv_with_fds().await.unwrap().unwrap();
    assert!(cloexec(&fds[0]), "stream");
    let (a, b) = AsyncSeqpacket::pair().unwrap();
    a.send_with_fds(b"p", &borrowed(&sent)).await.unwrap();
    let (_, fds) = b.recv_with_fds().await.unwrap().unwrap();
    assert!(cloexec(&fds[0]), "seqpacket");
    let (a, b) = UnixDatagram::pair().unwrap();
    let b = AsyncDatagram::from_blocking(AnyDatagram::Unix(b)).unwrap();
    a.send_with_fds(b"d", &[sent[0].as_fd()]).unwrap();
    let (mut buf, mut fds) = (Vec::new(), Vec::new());
    b.recv_into_with_fds(&mut buf, &mut fds).await.unwrap();
    assert!(cloexec(&fds[0]), "datagram");
}
