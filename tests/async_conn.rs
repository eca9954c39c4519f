//! The async connection (feature `tokio`): messages both ways on unix and tcp, cancel safety of
//! `recv` and `send` under random cancellation while a peer trickles bytes, backpressure, the
//! tokio-util codec against `LengthDelimitedCodec`, and the typed framing errors.

#![cfg(feature = "tokio")]

mod common;

use std::os::fd::AsFd;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use msgsock::frame::Header;
use msgsock::tokio::{AsyncConnection, AsyncStream, MessageCodec};
use msgsock::Error;
use nix::sys::socket::{setsockopt, sockopt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::time::timeout;
use tokio_util::codec::{Decoder, Encoder, Framed, LengthDelimitedCodec};

use crate::common::{frame, pattern};

/// A bound for every wait in these tests: far above what any of them needs, so a hang fails.
const GUARD: Duration = Duration::from_secs(30);

/// A small deterministic generator (xorshift64*), so a failure can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// Two connected tokio streams of one family.
trait Pair: AsyncStream + tokio::io::AsyncRead + tokio::io::AsyncWrite + Sized {
    async fn pair() -> (Self, Self);
}

impl Pair for UnixStream {
    async fn pair() -> (Self, Self) {
        UnixStream::pair().unwrap()
    }
}

impl Pair for TcpStream {
    async fn pair() -> (Self, Self) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (client.unwrap(), accepted.unwrap().0)
    }
}

/// Sets small kernel buffers on both ends.
fn shrink_buffers(a: &impl AsFd, b: &impl AsFd) {
    for fd in [a.as_fd(), b.as_fd()] {
        setsockopt(&fd, sockopt::SndBuf, &16_384).unwrap();
        setsockopt(&fd, sockopt::RcvBuf, &16_384).unwrap();
    }
}

/// Messages whose content names their sequence number, so a lost, repeated or torn one shows.
fn message(seq: u32, len: usize) -> Vec<u8> {
    let mut m = pattern(len.max(4), seq as u8);
    m[..4].copy_from_slice(&seq.to_be_bytes());
    m
}

fn sizes(rng: &mut Rng, n: usize) -> Vec<usize> {
    (0..n)
        .map(|_| match rng.below(4) {
            0 => rng.below(16) as usize,
            1 => rng.below(3000) as usize,
            2 => 8000 + rng.below(400) as usize,
            _ => rng.below(300_000) as usize,
        })
        .collect()
}

async fn both_ways<S: Pair>() {
    let (a, b) = S::pair().await;
    let (mut a, mut b) = (AsyncConnection::new(a), AsyncConnection::new(b));
    let msgs: Vec<Vec<u8>> = [0, 1, 100, 8192, 70_000, 1 << 20]
        .iter()
        .enumerate()
        .map(|(i, &len)| pattern(len, i as u8))
        .collect();
    let sent = msgs.clone();
    let writer = tokio::spawn(async move {
        for m in &sent {
            a.send(m).await.unwrap();
        }
        // And the other way, on the same connection.
        let got = a.recv().await.unwrap();
        (a, got)
    });
    let mut buf = Vec::new();
    for want in &msgs {
        let n = timeout(GUARD, b.recv_into(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, Some(want.len()));
        assert!(&buf == want, "a message of {} bytes differs", want.len());
    }
    b.send(b"back").await.unwrap();
    let (a, got) = timeout(GUARD, writer).await.unwrap().unwrap();
    assert_eq!(got.as_deref(), Some(&b"back"[..]));
    drop(a);
    assert_eq!(b.recv().await.unwrap(), None, "a clean close");
}

/// The receiver gives up on `recv` at random moments while the peer trickles the frames in random
/// pieces with pauses: every message still arrives once, whole, in order.
async fn recv_is_cancel_safe<S: Pair>(seed: u64) {
    let mut rng = Rng(seed);
    let (raw, b) = S::pair().await;
    let mut b = AsyncConnection::new(b);
    let lens = sizes(&mut rng, 40);
    let msgs: Vec<Vec<u8>> = lens
        .iter()
        .enumerate()
        .map(|(i, &len)| message(i as u32, len))
        .collect();
    let wire: Vec<u8> = msgs.iter().flat_map(|m| frame(m)).collect();
    let mut wrng = Rng(seed ^ 0x9E37_79B9);
    let writer = tokio::spawn(async move {
        let mut raw = raw;
        let mut pos = 0;
        while pos < wire.len() {
            let n = (1 + wrng.below(20_000) as usize).min(wire.len() - pos);
            raw.write_all(&wire[pos..pos + n]).await.unwrap();
            pos += n;
            if wrng.below(3) == 0 {
                tokio::time::sleep(Duration::from_micros(wrng.below(300))).await;
            }
        }
        raw
    });
    let mut cancelled = 0;
    let mut buf = Vec::new();
    for want in &msgs {
        let got = loop {
            let wait = Duration::from_micros(rng.below(200));
            match timeout(wait, b.recv_into(&mut buf)).await {
                Ok(got) => break got.unwrap(),
                Err(_) => cancelled += 1,
            }
        };
        assert_eq!(got, Some(want.len()));
        assert!(
            &buf == want,
            "message {:?} torn or out of order",
            &want[..4]
        );
    }
    let raw = writer.await.unwrap();
    drop(raw);
    assert_eq!(b.recv().await.unwrap(), None);
    assert!(
        cancelled > 0,
        "seed {seed}: no receive was cancelled, so nothing was tested"
    );
}

/// The sender gives up on `send` at random moments while the peer reads slowly: each cancelled
/// message went out whole or not at all, and every message whose `send` returned arrived.
async fn send_is_cancel_safe<S: Pair>(seed: u64) {
    let mut rng = Rng(seed);
    let (a, raw) = S::pair().await;
    // Small buffers, so that sends stop part-way on either family (loopback TCP's are megabytes).
    shrink_buffers(&a, &raw);
    let mut a = AsyncConnection::new(a);
    let lens = sizes(&mut rng, 60);
    let mut rrng = Rng(seed ^ 0x5151);
    let reader = tokio::spawn(async move {
        let mut raw = raw;
        let mut wire = Vec::new();
        let mut chunk = vec![0; 50_000];
        loop {
            let n = 1 + rrng.below(chunk.len() as u64) as usize;
            match raw.read(&mut chunk[..n]).await.unwrap() {
                0 => return wire,
                n => wire.extend_from_slice(&chunk[..n]),
            }
            if rrng.below(2) == 0 {
                tokio::time::sleep(Duration::from_micros(rrng.below(200))).await;
            }
        }
    });
    let mut completed = Vec::new();
    let mut cancelled = 0;
    for (i, &len) in lens.iter().enumerate() {
        let msg = message(i as u32, len);
        let wait = Duration::from_micros(rng.below(400));
        match timeout(wait, a.send(&msg)).await {
            Ok(r) => {
                r.unwrap();
                completed.push(i as u32);
            }
            Err(_) => cancelled += 1,
        }
    }
    timeout(GUARD, a.flush()).await.unwrap().unwrap();
    drop(a);
    let wire = timeout(GUARD, reader).await.unwrap().unwrap();
    // Decode what arrived: whole frames only, each an intact message, in increasing order.
    let mut codec = MessageCodec::new();
    codec.set_max_message_len(u64::MAX);
    let mut buf = BytesMut::from(&wire[..]);
    let mut seen = Vec::new();
    while let Some(m) = codec.decode_eof(&mut buf).unwrap() {
        let seq = u32::from_be_bytes(m[..4].try_into().unwrap());
        assert!(
            m[..] == message(seq, lens[seq as usize])[..],
            "message {seq} arrived torn"
        );
        seen.push(seq);
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    for seq in &completed {
        assert!(
            seen.contains(seq),
            "message {seq} was sent but never arrived"
        );
    }
    assert!(
        cancelled > 0,
        "seed {seed}: no send was cancelled, so nothing was tested"
    );
}

/// Four tasks send through clones of one queued sender at once, with cancellations: exactly the
/// messages whose `send` returned arrive, whole, each task's in order; after the senders
/// and the receive half are dropped, the writer task still writes what was queued, then closes.
async fn queued_senders_share_one_queue<S: Pair>(seed: u64) {
    let (a, raw) = S::pair().await;
    shrink_buffers(&a, &raw);
    let (rx, tx) = AsyncConnection::new(a).into_split_queued();
    let reader = tokio::spawn(async move {
        let mut raw = raw;
        let mut wire = Vec::new();
        raw.read_to_end(&mut wire).await.unwrap();
        wire
    });
    let mut tasks = Vec::new();
    for task in 0..4u32 {
        let tx = tx.clone();
        let mut rng = Rng(seed * 31 + u64::from(task));
        tasks.push(tokio::spawn(async move {
            let mut completed = Vec::new();
            for i in 0..200u32 {
                let seq = task << 16 | i;
                let len = rng.below(20_000) as usize;
                let wait = Duration::from_micros(rng.below(300));
                if let Ok(r) = timeout(wait, tx.send(&message(seq, len))).await {
                    r.unwrap();
                    completed.push((seq, len));
                }
            }
            completed
        }));
    }
    let mut completed = Vec::new();
    for t in tasks {
        completed.extend(t.await.unwrap());
    }
    drop((tx, rx));
    let wire = timeout(GUARD, reader).await.unwrap().unwrap();
    let mut codec = MessageCodec::new();
    let mut buf = BytesMut::from(&wire[..]);
    let mut last = [None::<u32>; 4];
    let mut seen = 0;
    while let Some(m) = codec.decode_eof(&mut buf).unwrap() {
        let seq = u32::from_be_bytes(m[..4].try_into().unwrap());
        let (task, i) = ((seq >> 16) as usize, seq & 0xffff);
        // A cancelled queued send took nothing: only completed sends arrive.
        let &(_, len) = completed
            .iter()
            .find(|(s, _)| *s == seq)
            .unwrap_or_else(|| panic!("message {seq:#x} arrived but its send was cancelled"));
        assert!(
            m[..] == message(seq, len)[..],
            "message {seq:#x} arrived torn"
        );
        assert!(last[task].is_none_or(|l| l < i), "task {task} out of order");
        last[task] = Some(i);
        seen += 1;
    }
    assert_eq!(seen, completed.len(), "every completed send arrives once");
}

/// A queued sender never holds more than the high-water mark plus one message for a peer that
/// does not read.
async fn queued_send_waits_at_the_high_water_mark<S: Pair>() {
    let (a, _peer) = S::pair().await;
    let mut conn = AsyncConnection::new(a);
    conn.set_high_water(100_000);
    let (_rx, tx) = conn.into_split_queued();
    let msg = vec![7u8; 10_000];
    let mut sent = 0;
    while timeout(Duration::from_millis(200), tx.send(&msg))
        .await
        .is_ok()
    {
        sent += 1;
        assert!(sent < 100_000, "send never waited");
    }
    assert!(
        tx.queued_len() <= 100_000 + msg.len() + 4,
        "{} bytes queued",
        tx.queued_len()
    );
}

/// A sender running ahead of a peer that does not read holds at most the high-water mark plus one
/// message.
async fn feed_waits_at_the_high_water_mark<S: Pair>() {
    let (a, _peer) = S::pair().await;
    let mut a = AsyncConnection::new(a);
    a.set_high_water(100_000);
    let msg = vec![7u8; 10_000];
    let mut fed = 0;
    loop {
        match timeout(Duration::from_millis(200), a.feed(&msg)).await {
            Ok(r) => {
                r.unwrap();
                fed += 1;
                assert!(fed < 100_000, "feed never waited");
            }
            Err(_) => break,
        }
        // Push out what the socket takes, without waiting for a peer that never reads.
        let _ = timeout(Duration::from_millis(1), a.flush()).await;
    }
    assert!(
        a.queued_len() <= 100_000 + msg.len() + 4,
        "{} bytes queued",
        a.queued_len()
    );
}

/// A fed message of 64 KiB or more with nothing queued goes out at once, as far as the socket
/// takes it, and is not copied; a shorter one waits in the queue for a flush. Either way the
/// peer gets every frame whole and in order.
async fn a_long_fed_message_is_written_at_once<S: Pair>() {
    let (a, b) = S::pair().await;
    let (mut a, mut b) = (AsyncConnection::new(a), AsyncConnection::new(b));
    // A first send waits for the socket, so tokio knows it writable from then on.
    a.send(b"first").await.unwrap();
    let long = pattern(64 * 1024, 3);
    a.feed(&long).await.unwrap();
    // Whatever the socket's buffer size, a fresh socket takes some of it at once.
    let rest = a.queued_len();
    assert!(rest < 4 + long.len(), "the long message was queued whole");
    a.feed(b"short").await.unwrap();
    assert_eq!(
        a.queued_len(),
        rest + 4 + 5,
        "a short message waits for a flush"
    );
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(timeout(GUARD, b.recv()).await.unwrap().unwrap().unwrap());
        }
        got
    });
    // Behind a queued short one, a long message is queued too, so the order holds.
    a.feed(&long).await.unwrap();
    assert_eq!(a.queued_len(), rest + 4 + 5 + 4 + long.len());
    a.flush().await.unwrap();
    let got = reader.await.unwrap();
    common::assert_same_messages(
        &got,
        &[b"first".to_vec(), long.clone(), b"short".to_vec(), long],
    );
}

/// A queued sender writes a long message at once when nothing is queued or being written,
/// without the hop to its writer task (on a current-thread runtime that task cannot run before
/// `send` returns); shorter ones queue. Every frame arrives whole and in order.
async fn a_long_queued_message_is_written_at_once<S: Pair>() {
    let (a, b) = S::pair().await;
    let (_rx, tx) = AsyncConnection::new(a).into_split_queued();
    let mut b = AsyncConnection::new(b);
    tx.send(b"first").await.unwrap();
    tx.flush().await.unwrap();
    let long = pattern(64 * 1024, 5);
    tx.send(&long).await.unwrap();
    let rest = tx.queued_len();
    assert!(rest < 4 + long.len(), "the long message was queued whole");
    tx.send(b"short").await.unwrap();
    assert_eq!(tx.queued_len(), rest + 4 + 5);
    tx.flush().await.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(timeout(GUARD, b.recv()).await.unwrap().unwrap().unwrap());
    }
    common::assert_same_messages(&got, &[b"first".to_vec(), long, b"short".to_vec()]);
}

/// A long message that finds the writer task with frames to write waits for that batch to go
/// out, then is written from the caller's buffer instead of being copied behind it (on a
/// current-thread runtime the writer task runs only while `send` waits).
async fn a_long_queued_message_waits_for_the_writer_instead_of_being_copied<S: Pair>() {
    let (a, b) = S::pair().await;
    let (_rx, tx) = AsyncConnection::new(a).into_split_queued();
    let mut b = AsyncConnection::new(b);
    tx.send(b"first").await.unwrap();
    tx.flush().await.unwrap();
    tx.send(b"queued").await.unwrap();
    assert_eq!(
        tx.queued_len(),
        4 + 6,
        "the short one waits for the writer task"
    );
    let long = pattern(64 * 1024, 9);
    tx.send(&long).await.unwrap();
    assert!(
        tx.queued_len() < 4 + long.len(),
        "the long message was copied behind the short one: {} bytes queued",
        tx.queued_len()
    );
    tx.flush().await.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(timeout(GUARD, b.recv()).await.unwrap().unwrap().unwrap());
    }
    common::assert_same_messages(&got, &[b"first".to_vec(), b"queued".to_vec(), long]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_long_queued_message_waits_for_the_writer_instead_of_being_copied_unix() {
    a_long_queued_message_waits_for_the_writer_instead_of_being_copied::<UnixStream>().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_long_queued_message_waits_for_the_writer_instead_of_being_copied_tcp() {
    a_long_queued_message_waits_for_the_writer_instead_of_being_copied::<TcpStream>().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_long_queued_message_is_written_at_once_unix() {
    a_long_queued_message_is_written_at_once::<UnixStream>().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_long_queued_message_is_written_at_once_tcp() {
    a_long_queued_message_is_written_at_once::<TcpStream>().await;
}

/// A long message written at once to a peer that is gone is a typed error from that call, and
/// nothing of it stays queued; on `feed` and on a queued sender alike.
async fn a_long_message_to_a_vanished_peer_is_an_error<S: Pair>() {
    fn gone(e: Error) {
        assert!(
            matches!(&e, Error::Io(e) if matches!(e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset)),
            "{e:?}"
        );
    }
    let long = pattern(64 * 1024, 11);
    for queued in [false, true] {
        let (a, b) = S::pair().await;
        let mut a = AsyncConnection::new(a);
        // A first send waits for the socket, so tokio knows it writable from then on.
        a.send(b"first").await.unwrap();
        // A TCP close with a zero linger is a reset, after which every write fails.
        let linger = nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        setsockopt(&b, sockopt::Linger, &linger).unwrap();
        drop(b);
        // The peer's end (a reset, or the end of a Unix stream) is seen before the write.
        let end = timeout(GUARD, a.recv()).await.unwrap();
        assert!(!matches!(end, Ok(Some(_))), "{end:?}");
        if queued {
            let (_rx, tx) = a.into_split_queued();
            gone(timeout(GUARD, tx.send(&long)).await.unwrap().unwrap_err());
            assert_eq!(tx.queued_len(), 0, "nothing of the message was queued");
        } else {
            gone(timeout(GUARD, a.feed(&long)).await.unwrap().unwrap_err());
            assert_eq!(a.queued_len(), 0, "nothing of the message was queued");
        }
    }
}

/// Frames queued by a cancelled send reach the peer through `recv` alone: a request is never
/// left waiting in the queue while its sender waits for the reply.
async fn recv_pushes_the_queue_out<S: Pair>() {
    let (a, b) = S::pair().await;
    let (mut a, mut b) = (AsyncConnection::new(a), AsyncConnection::new(b));
    a.feed(b"request").await.unwrap();
    let server = tokio::spawn(async move {
        let req = b.recv().await.unwrap();
        b.send(b"reply").await.unwrap();
        (b, req)
    });
    let reply = timeout(GUARD, a.recv()).await.unwrap().unwrap();
    assert_eq!(reply.as_deref(), Some(&b"reply"[..]));
    let (_b, req) = server.await.unwrap();
    assert_eq!(req.as_deref(), Some(&b"request"[..]));
}

async fn hostile_headers_are_typed_errors<S: Pair>() {
    // A terabyte claim against the default limit, and a non-canonical prefix.
    for (wire, check) in [
        (
            Header::new(1 << 40).to_vec(),
            (|e: &Error| matches!(e, Error::FrameTooLarge { len, .. } if *len == 1 << 40))
                as fn(&Error) -> bool,
        ),
        (0x8000_0000u32.to_be_bytes().to_vec(), |e: &Error| {
            matches!(
                e,
                Error::MalformedHeader {
                    header: 0x8000_0000
                }
            )
        }),
        (frame(b"abcdef")[..7].to_vec(), |e: &Error| {
            matches!(
                e,
                Error::UnexpectedEof {
                    read: 7,
                    expected: 10
                }
            )
        }),
    ] {
        let (mut raw, b) = S::pair().await;
        let mut b = AsyncConnection::new(b);
        raw.write_all(&wire).await.unwrap();
        raw.shutdown().await.unwrap();
        let err = timeout(GUARD, b.recv()).await.unwrap().unwrap_err();
        assert!(check(&err), "{err:?}");
        assert!(matches!(b.recv().await.unwrap_err(), Error::Broken));
    }
}

/// msgsock's codec and tokio-util's `LengthDelimitedCodec` in `Framed`, each side once.
async fn codec_interop<S: Pair>() {
    let msgs: Vec<Vec<u8>> = [0, 1, 4096, 65_536, (1 << 20) + 1]
        .iter()
        .enumerate()
        .map(|(i, &len)| pattern(len, i as u8))
        .collect();
    let (a, b) = S::pair().await;
    let mut ours = Framed::new(a, MessageCodec::new());
    let mut theirs = Framed::new(b, LengthDelimitedCodec::new());
    // Each send runs beside the receive: a long message does not fit the socket's buffer.
    for m in &msgs {
        let (sent, got) = tokio::join!(ours.send(&m[..]), futures_next(&mut theirs));
        sent.unwrap();
        assert!(got[..] == m[..], "tokio got {} bytes", got.len());
        let (sent, got) =
            tokio::join!(theirs.send(Bytes::from(m.clone())), futures_next(&mut ours));
        sent.unwrap();
        assert!(got[..] == m[..], "msgsock got {} bytes", got.len());
    }
    // And the codec against an AsyncConnection.
    let (a, b) = S::pair().await;
    let mut conn = AsyncConnection::new(a);
    let mut framed = Framed::new(b, MessageCodec::new());
    for m in &msgs {
        let (sent, got) = tokio::join!(conn.send(m), futures_next(&mut framed));
        sent.unwrap();
        assert!(got[..] == m[..]);
    }
}

/// The next item of a `Framed` stream, which must be there and be a message.
async fn futures_next<T, C>(framed: &mut Framed<T, C>) -> BytesMut
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    C: Decoder<Item = BytesMut>,
    C::Error: std::fmt::Debug,
{
    framed.next().await.expect("a message").expect("no error")
}

#[test]
fn the_codec_reserves_nothing_on_a_header_claim() {
    let mut codec = MessageCodec::new();
    let mut buf = BytesMut::new();
    codec.encode(&[0u8; 0][..], &mut buf).unwrap();
    let mut buf = BytesMut::from(&Header::new(60 << 20)[..]);
    buf.extend_from_slice(b"0123456789");
    let before = buf.capacity();
    assert!(codec.decode(&mut buf).unwrap().is_none());
    // Taking the header moves the start, so the capacity left can only shrink.
    assert!(
        buf.capacity() <= before,
        "the codec reserved on a header's word"
    );
    let err = codec.decode_eof(&mut buf).unwrap_err();
    assert!(
        matches!(err, Error::UnexpectedEof { read: 14, expected } if expected == 4 + (60 << 20))
    );
    let mut codec = MessageCodec::new();
    let mut buf = BytesMut::from(&Header::new(1 << 40)[..]);
    assert!(matches!(
        codec.decode(&mut buf).unwrap_err(),
        Error::FrameTooLarge { len, .. } if len == 1 << 40
    ));
}

macro_rules! async_tests {
    ($($family:ident => $stream:ty),+) => {$(
        mod $family {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn messages_both_ways() {
                both_ways::<$stream>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn recv_is_cancel_safe() {
                for seed in 1..=6 {
                    super::recv_is_cancel_safe::<$stream>(seed).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn send_is_cancel_safe() {
                for seed in 1..=6 {
                    super::send_is_cancel_safe::<$stream>(seed).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn queued_senders_share_one_queue() {
                for seed in 1..=4 {
                    super::queued_senders_share_one_queue::<$stream>(seed).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn queued_send_waits_at_the_high_water_mark() {
                super::queued_send_waits_at_the_high_water_mark::<$stream>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn feed_waits_at_the_high_water_mark() {
                super::feed_waits_at_the_high_water_mark::<$stream>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_long_fed_message_is_written_at_once() {
                super::a_long_fed_message_is_written_at_once::<$stream>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_long_message_to_a_vanished_peer_is_an_error() {
                super::a_long_message_to_a_vanished_peer_is_an_error::<$stream>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn recv_pushes_the_queue_out() {
                super::recv_pushes_the_queue_out::<$stream>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn hostile_headers_are_typed_errors() {
                super::hostile_headers_are_typed_errors::<$stream>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn codec_interop() {
                super::codec_interop::<$stream>().await;
            }
        }
    )+};
}

async_tests!(unix => UnixStream, tcp => TcpStream);

/// A queued sender whose writer task's runtime shut down (which drops the task) does not take
/// messages it can never write, nor wait for them: `send` and `flush` return `BrokenPipe`.
#[test]
fn a_queued_sender_whose_writer_task_is_gone_fails_instead_of_hanging() {
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let (_rx, tx) = first.block_on(async {
        AsyncConnection::new(UnixStream::from_std(a).unwrap()).into_split_queued()
    });
    drop(first);
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    second.block_on(async {
        let sent = timeout(GUARD, tx.send(b"hello")).await.expect("send waits");
        let err = sent.expect_err("a send that can never be written");
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
        let flushed = timeout(GUARD, tx.flush()).await.expect("flush waits");
        assert_eq!(flushed.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
    });
}
