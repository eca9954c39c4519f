//! Property tests of the receive path, through the public API only: random byte strings never
//! panic the decoder and end in frames plus a typed error or a clean close, exactly as a reference
//! model of the wire format says; valid streams split at random points (every point, one byte at
//! a time) come out as exactly the messages sent, then `None`. Each property runs twice: on the
//! protocol core alone ([`Decoder`], no socket, every piece one feed) and through a `Connection`
//! over a socket pair (every piece one `read(2)`).

mod common;

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use msgsock::frame::Header;
use msgsock::proto::{Decode, Decoder, FrameError, RECV_BUF_LEN};
use msgsock::{Connection, Error, UnixStream, DEFAULT_MAX_MESSAGE_LEN};
use nix::errno::Errno;
use nix::sys::socket::{recv, MsgFlags};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use crate::common::{frame, pattern};

/// How a receive sequence ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    Clean,
    TooLarge { len: u64, max: u64 },
    Malformed { header: u64 },
    Eof { read: u64, expected: u64 },
}

/// The wire format as the `frame` module documents it, written independently of the library.
fn model(input: &[u8], max: u64) -> (Vec<Vec<u8>>, End) {
    let mut frames = Vec::new();
    let mut pos = 0;
    loop {
        let rest = &input[pos..];
        if rest.is_empty() {
            return (frames, End::Clean);
        }
        let eof = |need: usize| End::Eof {
            read: rest.len() as u64,
            expected: need as u64,
        };
        if rest.len() < 4 {
            return (frames, eof(4));
        }
        let short = u32::from_be_bytes(rest[..4].try_into().unwrap());
        let (header_len, len) = if short <= 0x7FFF_FFFF {
            (4, u64::from(short))
        } else if short != 0xFFFF_FFFF {
            let header = u64::from(short);
            return (frames, End::Malformed { header });
        } else if rest.len() < 12 {
            return (frames, eof(12));
        } else {
            let long = u64::from_be_bytes(rest[4..12].try_into().unwrap());
            if long <= 0x7FFF_FFFF {
                return (frames, End::Malformed { header: long });
            }
            (12, long)
        };
        if len > max {
            return (frames, End::TooLarge { len, max });
        }
        let have = (rest.len() - header_len) as u64;
        if have < len {
            let read = header_len as u64 + have;
            // A claim near u64::MAX has no exact total; it saturates.
            let expected = (header_len as u64).saturating_add(len);
            return (frames, End::Eof { read, expected });
        }
        let len = len as usize;
        frames.push(rest[header_len..header_len + len].to_vec());
        pos += header_len + len;
    }
}

/// Writes `pieces` to a socket one after another, each only once the reader has drained the
/// previous one, so that every piece boundary is also a boundary between two `read(2)` calls.
struct Feeder {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Feeder {
    /// Feeds `reader`'s peer. Write errors are ignored: the reader shuts the socket down when it
    /// refuses a frame, and that is a result the caller checks.
    fn start(reader: &Connection<UnixStream>, mut raw: UnixStream, pieces: Vec<Vec<u8>>) -> Self {
        let peek: OwnedFd = reader.as_fd().try_clone_to_owned().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            for piece in pieces {
                if raw.write_all(&piece).is_err() || !wait_drained(&peek, &stop2) {
                    return;
                }
            }
        });
        Feeder {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        // A failed assertion must not leave the writer waiting for a reader that has gone.
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits until the socket has no unread bytes; false if told to stop first.
fn wait_drained(fd: &OwnedFd, stop: &AtomicBool) -> bool {
    let mut byte = [0u8; 1];
    loop {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        match recv(
            fd.as_raw_fd(),
            &mut byte,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
        ) {
            Err(Errno::EAGAIN) => return true,
            // The reader shut the socket down after refusing a frame.
            Ok(0) => return true,
            Ok(_) | Err(Errno::EINTR) => thread::yield_now(),
            Err(e) => panic!("peeking at the reader's socket: {e}"),
        }
    }
}

/// Receives everything `pieces` carry, with limit `max`, and says how it ended. `reuse` picks
/// `recv_into` with one buffer for the whole stream instead of `recv`.
fn receive(pieces: Vec<Vec<u8>>, max: u64, reuse: bool) -> (Vec<Vec<u8>>, End) {
    let total: usize = pieces.iter().map(Vec::len).sum();
    let (a, b) = UnixStream::pair().unwrap();
    let mut conn = Connection::new(a).with_max_message_len(max);
    let feeder = Feeder::start(&conn, b, pieces);
    let mut frames = Vec::new();
    let mut buf = Vec::new();
    // Each frame takes at least 4 bytes, so this bounds a decoder that fails to make progress.
    for _ in 0..=total / 4 + 1 {
        let got = if reuse {
            conn.recv_into(&mut buf)
                .map(|n| n.map(|n| buf[..n].to_vec()))
        } else {
            conn.recv()
        };
        let end = match got {
            Ok(Some(frame)) => {
                frames.push(frame);
                continue;
            }
            Ok(None) => {
                assert_eq!(conn.recv().unwrap(), None, "a closed stream stays closed");
                End::Clean
            }
            Err(e) => {
                let end = match e {
                    Error::FrameTooLarge { len, max } => End::TooLarge { len, max },
                    Error::MalformedHeader { header } => End::Malformed { header },
                    Error::UnexpectedEof { read, expected } => End::Eof { read, expected },
                    other => panic!("untyped or unexpected error: {other:?}"),
                };
                let again = conn.recv().unwrap_err();
                assert!(matches!(again, Error::Broken), "after {end:?}: {again:?}");
                end
            }
        };
        drop(feeder);
        return (frames, end);
    }
    panic!("no end after {total} bytes and {} frames", frames.len());
}

/// [`receive`] on the protocol core alone: each piece is fed whole before the next (the core
/// may take it in several feeds), with no socket. With `lend`, a read while the decoder holds no
/// buffer goes into memory of the driver's own, as the socket drivers read
/// ([`Decoder::read_bufs_lent`], then [`Decoder::decode_lent`]).
fn receive_pure(pieces: Vec<Vec<u8>>, max: u64, reuse: bool, lend: bool) -> (Vec<Vec<u8>>, End) {
    let mut decoder = Decoder::new(max);
    let mut frames = Vec::new();
    let mut buf = Vec::new();
    let mut pieces = pieces.into_iter();
    let mut piece = Vec::new();
    let mut pos = 0;
    // The decode after a read into lent memory, which takes the place of the next `decode`.
    let mut lent = None;
    loop {
        if !reuse && lent.is_none() {
            buf = Vec::new();
        }
        let decoded = lent.take().unwrap_or_else(|| decoder.decode(&mut buf));
        let end = match decoded {
            Ok(Decode::Message(n)) => {
                assert_eq!(n, buf.len());
                frames.push(buf.clone());
                continue;
            }
            Ok(Decode::NeedRead) => {
                while pos == piece.len() {
                    match pieces.next() {
                        Some(next) => (piece, pos) = (next, 0),
                        None => break,
                    }
                }
                if pos < piece.len() && lend && decoder.wants_buffer() {
                    let mut spare = [0u8; RECV_BUF_LEN];
                    let mut n = 0;
                    for dst in decoder.read_bufs_lent(&mut spare) {
                        let take = dst.len().min(piece.len() - pos - n);
                        dst[..take].copy_from_slice(&piece[pos + n..pos + n + take]);
                        n += take;
                    }
                    assert!(n > 0, "the decoder offered no room");
                    decoder.advance(n);
                    pos += n;
                    if !reuse {
                        buf = Vec::new();
                    }
                    lent = Some(decoder.decode_lent(&spare, &mut buf, None));
                    continue;
                }
                if pos < piece.len() {
                    let n = decoder.feed(&piece[pos..]);
                    assert!(n > 0, "the decoder offered no room");
                    pos += n;
                    continue;
                }
                match decoder.eof() {
                    Ok(()) => return (frames, End::Clean),
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        let end = match end {
            FrameError::TooLarge { len, max } => End::TooLarge { len, max },
            FrameError::Malformed { header } => End::Malformed { header },
            FrameError::UnexpectedEof { read, expected } => End::Eof { read, expected },
            other => panic!("untyped or unexpected error: {other:?}"),
        };
        assert_eq!(decoder.decode(&mut buf), Err(FrameError::Broken));
        return (frames, end);
    }
}

/// Cuts `wire` at `cuts` (positions `0..=len`, any order, repeats allowed) into pieces.
fn split(wire: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts = cuts.to_vec();
    cuts.push(0);
    cuts.push(wire.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2).map(|w| wire[w[0]..w[1]].to_vec()).collect()
}

/// Pieces of byte soup that reach every decoder path: noise, valid frames, prefixes announcing
/// any length (both forms), and the escape with 8 random bytes.
fn chunk() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..48),
        vec(any::<u8>(), 0..300).prop_map(|p| frame(&p)),
        // Long enough that the receiver then reads the next header on its own.
        (8190usize..=20_000, any::<u8>()).prop_map(|(len, seed)| frame(&pattern(len, seed))),
        (claim(), vec(any::<u8>(), 0..32)).prop_map(|(len, mut tail)| {
            let mut v = Header::new(len).to_vec();
            v.append(&mut tail);
            v
        }),
        (0u64..200_000).prop_map(|len| Header::new(len).to_vec()),
        any::<[u8; 8]>().prop_map(|b| [[0xff; 4].as_slice(), &b].concat()),
    ]
}

/// Announced lengths, with the edges of both prefix forms and of `u64` well represented.
fn claim() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0x7FFF_FFF0u64..=0x8000_0010,
        u64::MAX - 16..=u64::MAX,
        (0u32..64).prop_map(|shift| 1u64 << shift),
    ]
}

fn limit() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        0u64..1024,
        Just(70_000),
        Just(DEFAULT_MAX_MESSAGE_LEN),
        Just(u64::MAX),
    ]
}

/// Sizes for valid messages: empty ones often, small ones, ones at the edge of the 8 KiB read
/// buffer (from which the receiver reads the next header on its own), and ones past it and the
/// 64 KiB growth step.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0), 0usize..=64, 8180usize..=8200, 0usize..=70_000]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_end_in_frames_and_a_typed_error_or_close(
        chunks in vec(chunk(), 0..8),
        max in limit(),
        cuts in vec(any::<Index>(), 0..4),
        reuse in any::<bool>(),
    ) {
        let input = chunks.concat();
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        let expected = model(&input, max);
        prop_assert_eq!(receive(split(&input, &cuts), max, reuse), expected);
    }

    #[test]
    fn random_bytes_through_the_core_alone(
        chunks in vec(chunk(), 0..8),
        max in limit(),
        cuts in vec(any::<Index>(), 0..16),
        reuse in any::<bool>(),
        lend in any::<bool>(),
    ) {
        let input = chunks.concat();
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        prop_assert_eq!(receive_pure(split(&input, &cuts), max, reuse, lend), model(&input, max));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn valid_streams_split_anywhere_give_back_exactly_the_messages(
        sizes in vec(size(), 0..6),
        cuts in vec(any::<Index>(), 0..12),
        seed in any::<u8>(),
        reuse in any::<bool>(),
        lend in any::<bool>(),
    ) {
        let msgs: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &len)| pattern(len, seed.wrapping_add(i as u8)))
            .collect();
        let wire: Vec<u8> = msgs.iter().flat_map(|m| frame(m)).collect();
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        let (got, end) = receive(split(&wire, &cuts), DEFAULT_MAX_MESSAGE_LEN, reuse);
        prop_assert_eq!(end, End::Clean);
        prop_assert!(got == msgs, "{} messages sent, {} received", msgs.len(), got.len());
        let pure = receive_pure(split(&wire, &cuts), DEFAULT_MAX_MESSAGE_LEN, reuse, lend);
        prop_assert!(pure == (msgs, End::Clean), "the core alone disagrees");
    }
}

/// A small stream with empty, one-byte and multi-read messages.
fn small_stream() -> (Vec<Vec<u8>>, Vec<u8>) {
    let msgs = vec![
        Vec::new(),
        b"a".to_vec(),
        pattern(300, 1),
        Vec::new(),
        pattern(20, 2),
    ];
    let wire = msgs.iter().flat_map(|m| frame(m)).collect();
    (msgs, wire)
}

#[test]
fn every_split_point_of_a_small_stream() {
    let (msgs, wire) = small_stream();
    for cut in 0..=wire.len() {
        let got = receive(split(&wire, &[cut]), DEFAULT_MAX_MESSAGE_LEN, cut % 2 == 0);
        assert_eq!(got, (msgs.clone(), End::Clean), "cut at {cut}");
    }
}

#[test]
fn every_split_point_of_a_stream_ending_in_a_terabyte_claim() {
    let (msgs, mut wire) = small_stream();
    let claim = 1u64 << 40;
    wire.extend_from_slice(&Header::new(claim));
    let max = DEFAULT_MAX_MESSAGE_LEN;
    for cut in 0..=wire.len() {
        let got = receive(split(&wire, &[cut]), max, cut % 2 == 1);
        let end = End::TooLarge { len: claim, max };
        assert_eq!(got, (msgs.clone(), end), "cut at {cut}");
    }
}

#[test]
fn a_long_message_then_shorter_ones_split_near_every_boundary() {
    // After a message of 8 KiB or more the receiver reads the next header on its own; cut the
    // stream at and around every frame boundary, where that mode starts and ends.
    let msgs: Vec<Vec<u8>> = [8192, 8189, 1, 0, 20_000]
        .iter()
        .enumerate()
        .map(|(i, &len)| pattern(len, i as u8))
        .collect();
    let wire: Vec<u8> = msgs.iter().flat_map(|m| frame(m)).collect();
    let mut boundary = 0usize;
    for m in &msgs {
        for cut in boundary.saturating_sub(3)..(boundary + 14).min(wire.len() + 1) {
            let got = receive(split(&wire, &[cut]), DEFAULT_MAX_MESSAGE_LEN, cut % 2 == 0);
            assert_eq!(got, (msgs.clone(), End::Clean), "cut at {cut}");
        }
        boundary += 4 + m.len();
    }
}

#[test]
fn one_byte_writes_of_a_small_stream() {
    let (msgs, wire) = small_stream();
    for reuse in [false, true] {
        let pieces = wire.iter().map(|&b| vec![b]).collect();
        let got = receive(pieces, DEFAULT_MAX_MESSAGE_LEN, reuse);
        assert_eq!(got, (msgs.clone(), End::Clean), "reuse: {reuse}");
    }
}

#[test]
fn one_byte_writes_of_a_cut_off_frame() {
    // The peer stops 10 bytes into a 300-byte payload: the error says exactly how far it got.
    let (_, wire) = small_stream();
    let stop = 4 + 4 + 1 + 4 + 10;
    let pieces = wire[..stop].iter().map(|&b| vec![b]).collect();
    let got = receive(pieces, DEFAULT_MAX_MESSAGE_LEN, false);
    let end = End::Eof {
        read: 14,
        expected: 304,
    };
    assert_eq!(got, (vec![Vec::new(), b"a".to_vec()], end));
}

#[test]
fn claims_at_the_top_of_u64_with_no_limit() {
    for claim in [u64::MAX, u64::MAX - 11, u64::MAX - 12, 1 << 63] {
        let mut wire = Header::new(claim).to_vec();
        wire.extend_from_slice(b"only this");
        let expected = model(&wire, u64::MAX);
        assert_eq!(
            receive(vec![wire], u64::MAX, true),
            expected,
            "claim {claim:#x}"
        );
    }
}

#[test]
fn the_model_agrees_with_the_documented_examples() {
    // Guards the oracle itself: the diagram's bytes, and each malformed form.
    let hello = b"\x00\x00\x00\x0bhello world";
    assert_eq!(
        model(hello, 64),
        (vec![b"hello world".to_vec()], End::Clean)
    );
    assert_eq!(
        model(&0x8000_0000u32.to_be_bytes(), u64::MAX).1,
        End::Malformed {
            header: 0x8000_0000
        }
    );
    let mut long = vec![0xff; 4];
    long.extend_from_slice(&5u64.to_be_bytes());
    assert_eq!(model(&long, u64::MAX).1, End::Malformed { header: 5 });
    assert_eq!(
        model(&hello[..3], 64).1,
        End::Eof {
            read: 3,
            expected: 4
        }
    );
}

#[test]
fn the_core_alone_at_every_split_and_every_pair_of_splits() {
    // No socket, so every cut and every pair of cuts of a stream with a long message is cheap.
    let msgs: Vec<Vec<u8>> = [0, 1, 300, 8192, 2, 0]
        .iter()
        .enumerate()
        .map(|(i, &len)| pattern(len, i as u8))
        .collect();
    let wire: Vec<u8> = msgs.iter().flat_map(|m| frame(m)).collect();
    for a in 0..=wire.len() {
        for lend in [false, true] {
            let got = receive_pure(
                split(&wire, &[a]),
                DEFAULT_MAX_MESSAGE_LEN,
                a % 2 == 0,
                lend,
            );
            assert_eq!(got, (msgs.clone(), End::Clean), "cut at {a}, lend {lend}");
        }
    }
    let (_, small) = small_stream();
    for a in 0..=small.len() {
        for b in a..=small.len() {
            let got = receive_pure(
                split(&small, &[a, b]),
                DEFAULT_MAX_MESSAGE_LEN,
                true,
                b % 2 == 0,
            );
            assert_eq!(
                got,
                model(&small, DEFAULT_MAX_MESSAGE_LEN),
                "cuts at {a}, {b}"
            );
        }
    }
    let pieces = wire.iter().map(|&b| vec![b]).collect();
    assert_eq!(
        receive_pure(pieces, DEFAULT_MAX_MESSAGE_LEN, false, true),
        (msgs, End::Clean)
    );
}
