use super::*;
use crate::frame::Header;

/// The frames of `msgs`, back to back.
fn wire(msgs: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        out.extend_from_slice(&Header::new(m.len() as u64));
        out.extend_from_slice(m);
    }
    out
}

/// Feeds `input` in chunks of at most `chunk` bytes and collects every message, then the result
/// of `eof`.
fn run(
    decoder: &mut Decoder,
    input: &[u8],
    chunk: usize,
) -> (Vec<Vec<u8>>, Result<(), FrameError>) {
    let mut msgs = Vec::new();
    let mut buf = Vec::new();
    let mut pos = 0;
    loop {
        match decoder.decode(&mut buf) {
            Ok(Decode::Message(n)) => {
                assert_eq!(n, buf.len());
                msgs.push(buf.clone());
            }
            Ok(Decode::NeedRead) if pos == input.len() => return (msgs, decoder.eof()),
            Ok(Decode::NeedRead) => {
                let end = (pos + chunk).min(input.len());
                let n = decoder.feed(&input[pos..end]);
                assert!(n > 0, "read_bufs offered no room");
                pos += n;
            }
            Err(e) => return (msgs, Err(e)),
        }
    }
}

#[test]
fn every_split_gives_the_messages_sent() {
    let big = vec![7u8; RECV_BUF_LEN + 100];
    let msgs: Vec<&[u8]> = vec![b"", b"hello", &big, b"x", b"", &big[..3000]];
    let input = wire(&msgs);
    for chunk in [
        1,
        2,
        3,
        4,
        5,
        11,
        12,
        13,
        100,
        4096,
        RECV_BUF_LEN,
        input.len(),
    ] {
        let mut d = Decoder::new(u64::MAX);
        let (got, end) = run(&mut d, &input, chunk);
        assert_eq!(end, Ok(()), "chunk {chunk}");
        assert_eq!(got, msgs, "chunk {chunk}");
        assert_eq!(d.buffered_len(), 0);
    }
}

#[test]
fn a_partial_header_at_close_is_unexpected_eof() {
    for (input, read, expected) in [
        (&b"\x00\x00"[..], 2, 4),
        (&b"\xff\xff\xff\xff\x00"[..], 5, 12),
    ] {
        let mut d = Decoder::new(u64::MAX);
        let (got, end) = run(&mut d, input, 1);
        assert!(got.is_empty());
        assert_eq!(end, Err(FrameError::UnexpectedEof { read, expected }));
        assert!(d.is_broken());
        assert_eq!(d.decode(&mut Vec::new()), Err(FrameError::Broken));
    }
}

#[test]
fn a_close_mid_payload_counts_the_header() {
    let mut input = wire(&[b"abcdef"]);
    input.truncate(4 + 3);
    let mut d = Decoder::new(u64::MAX);
    let (_, end) = run(&mut d, &input, 2);
    assert_eq!(
        end,
        Err(FrameError::UnexpectedEof {
            read: 7,
            expected: 10
        })
    );
}

#[test]
fn the_limit_is_checked_before_anything_is_reserved() {
    let mut d = Decoder::new(64);
    let mut buf = Vec::new();
    assert_eq!(d.decode(&mut buf), Ok(Decode::NeedRead));
    d.feed(&Header::new(65));
    assert_eq!(
        d.decode(&mut buf),
        Err(FrameError::TooLarge { len: 65, max: 64 })
    );
    assert_eq!(buf.capacity(), 0);
    assert_eq!(d.decode(&mut buf), Err(FrameError::Broken));
}

#[test]
fn memory_follows_the_bytes_not_the_claim() {
    let mut d = Decoder::new(u64::MAX);
    let mut buf = Vec::new();
    assert_eq!(d.decode(&mut buf), Ok(Decode::NeedRead));
    d.feed(&Header::new(1 << 40));
    d.feed(b"0123456789");
    assert_eq!(d.decode(&mut buf), Ok(Decode::NeedRead));
    // The room offered for the payload's rest, and the 10 payload bytes already in.
    let reserved = d.read_bufs()[0].len() + 10;
    assert!(reserved <= GROW_STEP, "{reserved} bytes for 10 received");
}

#[test]
fn a_non_canonical_prefix_is_malformed() {
    let mut d = Decoder::new(u64::MAX);
    let (_, end) = run(&mut d, &0x8000_0000u32.to_be_bytes(), 4);
    assert_eq!(
        end,
        Err(FrameError::Malformed {
            header: 0x8000_0000
        })
    );
}

#[test]
fn after_a_long_message_a_read_brings_one_header_into_the_buffer() {
    let big = vec![1u8; RECV_BUF_LEN];
    let input = wire(&[&big]);
    // `None`: the whole receive buffer, which may have grown while the frame came in.
    for (max_len, room) in [
        (RECV_BUF_LEN - 1, None),
        (RECV_BUF_LEN, Some(MAX_HEADER_LEN)),
    ] {
        let mut d = Decoder::new(u64::MAX);
        let mut buf = Vec::new();
        let (msg_len, frame) = (max_len, &input[..4 + max_len]);
        let mut frame = frame.to_vec();
        frame[..4].copy_from_slice(&Header::new(msg_len as u64));
        let mut pos = 0;
        loop {
            match d.decode(&mut buf).unwrap() {
                Decode::Message(n) => {
                    assert_eq!(n, msg_len);
                    break;
                }
                Decode::NeedRead => pos += d.feed(&frame[pos..]),
            }
        }
        assert_eq!(d.decode(&mut buf).unwrap(), Decode::NeedRead);
        let [first, second] = d.read_bufs();
        let (first, second) = (first.len(), second.len());
        let room = room.unwrap_or(d.buf.len());
        assert!(room >= RECV_BUF_LEN || room == MAX_HEADER_LEN);
        assert_eq!((first, second), (0, room), "after {msg_len} B");
    }
}

#[test]
fn a_message_survives_an_interrupted_read_with_another_buffer() {
    let input = wire(&[&[9u8; 100_000]]);
    let mut d = Decoder::new(u64::MAX);
    let mut first = Vec::new();
    assert_eq!(d.decode(&mut first).unwrap(), Decode::NeedRead);
    let half = d.feed(&input[..50_000]);
    assert_eq!(d.decode(&mut first).unwrap(), Decode::NeedRead);
    // The driver gave up (a timeout, a dropped future) and comes back with a new buffer.
    let mut second = Vec::new();
    let mut pos = half;
    loop {
        match d.decode(&mut second).unwrap() {
            Decode::Message(n) => {
                assert_eq!(n, 100_000);
                assert!(second.iter().all(|&b| b == 9));
                break;
            }
            Decode::NeedRead => pos += d.feed(&input[pos..]),
        }
    }
}

#[test]
fn a_failed_read_mid_payload_breaks_but_between_frames_does_not() {
    let mut d = Decoder::new(u64::MAX);
    let mut buf = Vec::new();
    d.decode(&mut buf).unwrap();
    d.read_failed();
    assert!(!d.is_broken());
    d.feed(&wire(&[b"abc"])[..5]);
    assert_eq!(d.decode(&mut buf).unwrap(), Decode::NeedRead);
    d.read_failed();
    assert!(d.is_broken());
}

/// `buffered_len` counts every byte `take_buffered` hands back, a whole length prefix of a
/// partly received message too, at every point of the stream.
#[test]
fn buffered_len_is_what_take_buffered_returns() {
    let input = wire(&[b"one", &[5u8; 20_000], b"", b"two"]);
    for upto in 0..=input.len() {
        let mut d = Decoder::new(u64::MAX);
        let mut buf = Vec::new();
        let mut fed = 0;
        while fed < upto {
            match d.decode(&mut buf).unwrap() {
                Decode::Message(_) => {}
                Decode::NeedRead => fed += d.feed(&input[fed..upto]),
            }
        }
        while let Decode::Message(_) = d.decode(&mut buf).unwrap() {}
        let counted = d.buffered_len();
        assert_eq!(counted, d.take_buffered().len(), "after {upto} bytes");
    }
}

#[test]
fn take_buffered_returns_the_unread_bytes_as_they_came() {
    let input = wire(&[b"one", b"two", &[5u8; 20_000]]);
    let mut d = Decoder::new(u64::MAX);
    let mut buf = Vec::new();
    assert_eq!(d.decode(&mut buf).unwrap(), Decode::NeedRead);
    let n = d.feed(&input);
    assert_eq!(d.decode(&mut buf).unwrap(), Decode::Message(3));
    let n = n + {
        // Into the payload of the third message, part way.
        assert_eq!(d.decode(&mut buf).unwrap(), Decode::Message(3));
        assert_eq!(d.decode(&mut buf).unwrap(), Decode::NeedRead);
        d.feed(&input[n..n + 100])
    };
    assert_eq!(d.take_buffered(), &input[14..n]);
    assert_eq!(d.buffered_len(), 0);
}

#[test]
fn the_receive_buffer_is_taken_when_needed_grows_while_streaming_and_goes_back_when_quiet() {
    let mut d = Decoder::new(u64::MAX);
    assert_eq!(d.buf.len(), 0, "a new decoder holds no buffer");
    let small = [7u8; 100];
    let input = wire(&[&small[..]; 500]);
    // Every read but the last fills the buffer offered.
    let (msgs, end) = run(&mut d, &input, input.len());
    assert_eq!((msgs.len(), end), (500, Ok(())));
    assert_eq!(d.size, RECV_BUF_MAX, "reads that filled it grew it");
    assert_eq!(
        d.buf.len(),
        0,
        "the last read drained the input: the buffer went back"
    );
    d.quiet();
    assert_eq!(d.size, RECV_BUF_LEN, "a quiet decoder starts small again");
    // A long message filling the buffer is not streaming: no growth.
    let big = vec![1u8; 3 * RECV_BUF_LEN];
    let input = wire(&[&big]);
    let (msgs, _) = run(&mut d, &input, input.len());
    assert_eq!(msgs, [big]);
    assert_eq!(d.size, RECV_BUF_LEN);
    // Mid-frame, neither a drained read nor quiet gives back what arrived.
    d.feed(&wire(&[b"abc"])[..5]);
    assert_eq!(d.decode(&mut Vec::new()), Ok(Decode::NeedRead));
    d.quiet();
    let (msgs, _) = run(&mut d, b"bc", 2);
    assert_eq!(msgs, [b"abc"]);
}

/// Reads into memory the driver lends while the decoder holds no buffer: a frame wholly in them
/// goes straight to the message and nothing is allocated; the bytes behind it are kept, in a
/// buffer of their length when they are whole frames, and every split of the input gives the
/// messages sent.
#[test]
fn a_read_into_lent_memory_decodes_straight_from_it() {
    let mut d = Decoder::new(u64::MAX);
    let mut buf = Vec::with_capacity(100);
    let mut spare = [0u8; RECV_BUF_LEN];
    let mut lend = |d: &mut Decoder, bytes: &[u8], buf: &mut Vec<u8>| {
        assert!(d.wants_buffer());
        let [msg, second] = d.read_bufs_lent(&mut spare);
        assert!(msg.is_empty());
        second[..bytes.len()].copy_from_slice(bytes);
        d.advance(bytes.len());
        d.decode_lent(&spare, buf, None)
    };
    assert_eq!(d.decode(&mut buf), Ok(Decode::NeedRead));
    assert_eq!(
        lend(&mut d, &wire(&[b"one"]), &mut buf),
        Ok(Decode::Message(3))
    );
    assert_eq!(buf, b"one");
    assert_eq!(d.buf.len(), 0, "one whole frame: no buffer taken");
    assert_eq!(d.decode(&mut buf), Ok(Decode::NeedRead));
    let two = wire(&[b"two", b"three"]);
    assert_eq!(lend(&mut d, &two, &mut buf), Ok(Decode::Message(3)));
    assert_eq!(
        d.buf.len(),
        wire(&[b"three"]).len(),
        "the whole frame behind, no more"
    );
    assert_eq!(d.decode(&mut buf), Ok(Decode::Message(5)));
    assert_eq!(buf, b"three");
    assert_eq!(d.decode(&mut buf), Ok(Decode::NeedRead));
    assert_eq!(
        d.buf.len(),
        0,
        "the drained read's frames are out: the buffer went back"
    );

    let big = vec![9u8; 3 * RECV_BUF_LEN];
    let msgs: Vec<&[u8]> = vec![b"a", &big, b"", b"bc", &big[..5000]];
    let input = wire(&msgs);
    for chunk in [1, 3, 4, 5, 13, 100, 4096, RECV_BUF_LEN] {
        let mut d = Decoder::new(u64::MAX);
        let (mut got, mut pos) = (Vec::new(), 0);
        let mut msg = Vec::new();
        loop {
            match d.decode(&mut msg).unwrap() {
                Decode::Message(_) => got.push(msg.clone()),
                Decode::NeedRead if pos == input.len() => break,
                Decode::NeedRead if d.wants_buffer() => {
                    // As the blocking driver lends: no more than the decoder would use.
                    let mut spare = vec![0u8; d.lent_len()];
                    let [first, second] = d.read_bufs_lent(&mut spare);
                    let mut n = 0;
                    for dst in [first, second] {
                        let take = dst.len().min(chunk - n).min(input.len() - pos - n);
                        dst[..take].copy_from_slice(&input[pos + n..pos + n + take]);
                        n += take;
                    }
                    d.advance(n);
                    pos += n;
                    if let Decode::Message(_) = d.decode_lent(&spare, &mut msg, None).unwrap() {
                        got.push(msg.clone());
                    }
                }
                Decode::NeedRead => pos += d.feed(&input[pos..(pos + chunk).min(input.len())]),
            }
        }
        assert_eq!(d.eof(), Ok(()), "chunk {chunk}");
        assert_eq!(got, msgs, "chunk {chunk}");
    }
}

/// After a long message the next read is lent only room for a header, its payload going
/// straight to its destination; after a short one, room for many messages.
#[test]
fn lent_memory_follows_the_last_message() {
    let mut d = Decoder::new(u64::MAX);
    assert_eq!(d.lent_len(), RECV_BUF_LEN);
    let big = vec![3u8; RECV_BUF_LEN];
    let (got, end) = run(&mut d, &wire(&[&big]), RECV_BUF_LEN + MAX_HEADER_LEN);
    assert_eq!((got.len(), end), (1, Ok(())));
    assert_eq!(d.lent_len(), MAX_HEADER_LEN);
    let mut spare = [0u8; RECV_BUF_LEN];
    let [_, second] = d.read_bufs_lent(&mut spare);
    assert_eq!(second.len(), MAX_HEADER_LEN, "the room lent_len promised");
    let (got, end) = run(&mut d, &wire(&[b"small"]), 100);
    assert_eq!((got.len(), end), (1, Ok(())));
    assert_eq!(d.lent_len(), RECV_BUF_LEN);
}

/// One message of a descriptor-passing property run: its payload length, how many descriptors
/// it carries, how long the first buffer (`skb`) of its `sendmsg(2)` is (which the descriptors
/// ride on), whether its control data is truncated at the receiver, and whether the receiver
/// takes it with `decode_with_fds` or a plain `decode`.
#[derive(Debug, Clone)]
struct FdMsg {
    len: usize,
    fds: usize,
    skb: proptest::sample::Index,
    lost: bool,
    with_fds: bool,
}

fn fd_msg() -> impl proptest::strategy::Strategy<Value = FdMsg> {
    use proptest::prelude::*;
    (
        prop_oneof![0..40usize, 0..3 * RECV_BUF_LEN],
        0..4usize,
        any::<proptest::sample::Index>(),
        proptest::bool::weighted(0.15),
        any::<bool>(),
    )
        .prop_map(|(len, fds, skb, lost, with_fds)| FdMsg {
            len,
            fds,
            skb,
            lost,
            with_fds,
        })
}

/// Feeds the frames of `msgs` to a decoder the way Linux's `unix_stream_read_generic` hands out
/// a stream whose descriptor-carrying frames each start a `sendmsg(2)` of their own: reads of
/// the given sizes (capped by what `read_bufs` offers), except that a read touching the first
/// `skb` of such a frame takes its descriptors and stops at that skb's end. Between reads the
/// driver may find nothing and call `quiet` (a timeout). Returns what each message came out
/// with: its bytes and its descriptors' numbers, or the truncation error.
#[allow(clippy::type_complexity)]
fn run_with_fds(
    msgs: &[FdMsg],
    reads: &[(usize, bool)],
) -> (Vec<Result<(Vec<u8>, Vec<i32>), FrameError>>, Vec<Vec<i32>>) {
    use std::os::fd::AsRawFd;
    let mut input = Vec::new();
    // (start, end, descriptors, lost) of each descriptor-carrying skb, in stream order.
    let mut skbs = Vec::new();
    let mut sent = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let start = input.len();
        let payload = crate::frame::Header::new(m.len as u64);
        input.extend_from_slice(&payload);
        input.extend((0..m.len).map(|j| (i * 31 + j) as u8));
        let fds: Vec<OwnedFd> = (0..m.fds)
            .map(|_| std::fs::File::open("/dev/null").unwrap().into())
            .collect();
        sent.push(fds.iter().map(AsRawFd::as_raw_fd).collect::<Vec<_>>());
        if !fds.is_empty() {
            let frame_len = input.len() - start;
            let end = start + 1 + m.skb.index(frame_len);
            skbs.push((start, end, fds, m.lost));
        }
    }
    let mut skbs = skbs.into_iter().peekable();
    let mut d = Decoder::new(u64::MAX);
    let (mut buf, mut fds) = (Vec::new(), Vec::new());
    let mut out = Vec::new();
    let mut pos = 0;
    let mut reads = reads.iter().cycle();
    while out.len() < msgs.len() {
        let m = &msgs[out.len()];
        let decoded = if m.with_fds {
            d.decode_with_fds(&mut buf, &mut fds)
        } else {
            d.decode(&mut buf)
        };
        match decoded {
            Ok(Decode::Message(n)) => {
                assert_eq!(n, buf.len());
                out.push(Ok((
                    buf.clone(),
                    fds.iter().map(AsRawFd::as_raw_fd).collect(),
                )));
                fds.clear();
                continue;
            }
            Err(e @ FrameError::FdsTruncated { .. }) => {
                out.push(Err(e));
                continue;
            }
            Err(e) => panic!("decode: {e}"),
            Ok(Decode::NeedRead) => {}
        }
        let &(chunk, timeout) = reads.next().unwrap();
        if timeout {
            d.quiet();
        }
        let room: usize = d.read_bufs().iter().map(|b| b.len()).sum();
        let mut end = (pos + chunk.max(1).min(room)).min(input.len());
        let mut attached = None;
        if let Some(&(start, skb_end, _, _)) = skbs.peek() {
            if start < end {
                end = end.min(skb_end);
                attached = skbs.next();
            }
        }
        assert_eq!(d.feed(&input[pos..end]), end - pos);
        pos = end;
        if let Some((_, _, mut fds, lost)) = attached {
            if lost {
                // Some arrived before the kernel ran out of room for the rest.
                fds.truncate(fds.len() / 2);
            }
            d.attach_fds(fds, lost);
        }
    }
    (out, sent)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Every message comes out with exactly the descriptors sent with it (or, where its
    /// control data was truncated and it was asked for with descriptors, as `FdsTruncated`),
    /// at any split of the reads, with timeouts between them, and with plain and descriptor
    /// receives mixed.
    #[test]
    fn descriptors_come_out_with_the_message_they_were_sent_with(
        msgs in proptest::collection::vec(fd_msg(), 1..12),
        reads in proptest::collection::vec((1..20_000usize, proptest::bool::weighted(0.2)), 1..8),
    ) {
        let (out, sent) = run_with_fds(&msgs, &reads);
        for (i, (m, got)) in msgs.iter().zip(&out).enumerate() {
            let want: Vec<u8> = (0..m.len).map(|j| (i * 31 + j) as u8).collect();
            match got {
                Err(FrameError::FdsTruncated { closed }) => {
                    proptest::prop_assert!(m.with_fds && m.lost && m.fds > 0, "message {i}");
                    proptest::prop_assert_eq!(*closed, m.fds / 2, "message {}", i);
                }
                Err(e) => proptest::prop_assert!(false, "message {i}: {e}"),
                Ok((bytes, fds)) => {
                    proptest::prop_assert!(!(m.with_fds && m.lost && m.fds > 0), "message {i}");
                    proptest::prop_assert!(bytes == &want, "message {i}: {} bytes", bytes.len());
                    let want_fds = if m.with_fds { sent[i].clone() } else { Vec::new() };
                    proptest::prop_assert_eq!(fds, &want_fds, "message {}", i);
                }
            }
        }
    }
}

/// Bytes read into lent memory belong to `decode_lent`: a plain `decode` after such a read is a
/// driver bug, caught at once rather than losing the bytes.
#[test]
#[should_panic(expected = "decode without the memory lent to the read")]
fn a_decode_without_the_lent_memory_is_a_driver_bug() {
    let mut d = Decoder::new(u64::MAX);
    let mut spare = [0u8; RECV_BUF_LEN];
    let [_, second] = d.read_bufs_lent(&mut spare);
    let frame = wire(&[b"lost?"]);
    second[..frame.len()].copy_from_slice(&frame);
    d.advance(frame.len());
    let _ = d.decode(&mut Vec::new());
}

/// Uninitialised lent memory is offered and decoded as zeroed lent memory is: two decoders fed
/// the same bytes in the same reads, one through each, offer the same buffers at every read
/// (the message's rest, then lent memory, a header's room after a long message, or the
/// decoder's own buffer) and hand out the same messages.
#[test]
fn uninitialised_lent_memory_is_offered_as_zeroed_lent_memory_is() {
    let long = vec![7u8; 3 * RECV_BUF_LEN];
    let input = wire(&[b"one", &long, b"two", &[9; 100], b"", &long]);
    for chunk in [1, 5, 100, RECV_BUF_LEN - 1, RECV_BUF_LEN + 7] {
        let (mut zeroed, mut uninit) = (Decoder::new(u64::MAX), Decoder::new(u64::MAX));
        let (mut got_z, mut got_u) = (Vec::new(), Vec::new());
        let mut fed = 0;
        while fed < input.len() {
            let mut spare = [0u8; RECV_BUF_LEN];
            let mut mem = [MaybeUninit::<u8>::uninit(); RECV_BUF_LEN];
            let lending = zeroed.wants_buffer();
            assert_eq!(lending, uninit.wants_buffer());
            let [msg, second] = if lending {
                zeroed.read_bufs_lent(&mut spare)
            } else {
                zeroed.read_bufs()
            };
            let offered = (msg.len(), second.len());
            let n = chunk.min(input.len() - fed).min(msg.len() + second.len());
            let (msg_z, second_z) = input[fed..fed + n].split_at(n.min(msg.len()));
            msg[..msg_z.len()].copy_from_slice(msg_z);
            second[..second_z.len()].copy_from_slice(second_z);
            let (msg, room) = uninit.read_bufs_uninit(Some(&mut mem));
            let second_len = match &room {
                Room::Own(buf) => buf.len(),
                Room::Lent(mem) => mem.len(),
            };
            assert_eq!((msg.len(), second_len), offered, "chunk {chunk}, at {fed}");
            msg[..msg_z.len()].copy_from_slice(msg_z);
            let lent_len = match room {
                Room::Own(buf) => {
                    buf[..second_z.len()].copy_from_slice(second_z);
                    0
                }
                Room::Lent(mem) => {
                    for (m, b) in mem.iter_mut().zip(second_z) {
                        m.write(*b);
                    }
                    second_z.len()
                }
            };
            fed += n;
            zeroed.advance(n);
            uninit.advance(n);
            let lent = second_z.get(..lent_len).unwrap_or(&[]);
            loop {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let z = zeroed.decode_lent(if lending { &spare } else { &[] }, &mut a, None);
                let u = uninit.decode_lent(if lending { lent } else { &[] }, &mut b, None);
                assert_eq!(z, u, "chunk {chunk}, at {fed}");
                match z {
                    Ok(Decode::Message(_)) => {
                        got_z.push(a);
                        got_u.push(b);
                    }
                    _ => break,
                }
            }
        }
        assert_eq!(got_z.len(), 6, "chunk {chunk}");
        assert_eq!(got_z, got_u, "chunk {chunk}");
    }
}

/// A peer that sends a frame a byte at a time with a descriptor on each byte cannot make the
/// decoder hold more descriptors than one message may carry (253, Linux's `SCM_MAX_FD`, which
/// `send_with_fds` keeps to): later ones are closed as they arrive, so the process's descriptor
/// table does not fill up, and the message is `FdsTruncated`, counting all of them, when asked
/// for with descriptors, or whole when not; the next message is whole either way. (That the
/// descriptors are closed, not only counted, `tests/fd_passing.rs` checks through a socket.)
#[test]
fn the_descriptors_held_for_one_message_are_bounded() {
    const SENT: usize = 600;
    for with_fds in [true, false] {
        let payload = vec![7u8; SENT];
        let input = wire(&[&payload, b"next"]);
        let header = input.len() - SENT - wire(&[b"next"]).len();
        let mut d = Decoder::new(u64::MAX);
        let (mut buf, mut fds) = (Vec::new(), Vec::new());
        let mut decode = |d: &mut Decoder| {
            if with_fds {
                d.decode_with_fds(&mut buf, &mut fds)
            } else {
                d.decode(&mut buf)
            }
        };
        assert_eq!(d.feed(&input[..header]), header);
        let held = |d: &Decoder| d.fds.as_ref().map_or(0, |q| q.held);
        for i in 0..SENT {
            assert_eq!(decode(&mut d), Ok(Decode::NeedRead));
            assert!(held(&d) <= MAX_FDS, "after {i} descriptors");
            // Nor does the record of what was closed grow with each read.
            let entries = d.fds.as_ref().map_or(0, |q| q.attached.len());
            assert!(entries <= MAX_FDS + 1, "{entries} entries after {i} reads");
            assert_eq!(d.feed(&input[header + i..header + i + 1]), 1);
            let file = std::fs::File::open("/dev/null").unwrap();
            d.attach_fds(vec![file.into()], false);
        }
        let got = decode(&mut d);
        assert_eq!(held(&d), 0);
        if with_fds {
            assert_eq!(got, Err(FrameError::FdsTruncated { closed: SENT }));
        } else {
            assert_eq!(got, Ok(Decode::Message(SENT)));
        }
        let rest = &input[header + SENT..];
        assert_eq!(d.feed(rest), rest.len());
        assert_eq!(decode(&mut d), Ok(Decode::Message(4)));
    }
}

/// `n` open descriptors to attach (of `/dev/null`).
fn dev_null(n: usize) -> Vec<OwnedFd> {
    (0..n)
        .map(|_| std::fs::File::open("/dev/null").unwrap().into())
        .collect()
}

/// The bound is per message: a message that still holds its descriptors (its frame was cut by
/// a read) and the next one, whose descriptors came with the read that finished it, keep all of
/// theirs, together more than one message may carry.
#[test]
fn two_messages_keep_their_descriptors_together_past_the_bound() {
    let first = vec![1u8; 5000];
    let input = wire(&[&first, b"second"]);
    let cut = 1000;
    let mut d = Decoder::new(u64::MAX);
    let (mut buf, mut fds) = (Vec::new(), Vec::new());
    assert_eq!(d.decode_with_fds(&mut buf, &mut fds), Ok(Decode::NeedRead));
    assert_eq!(d.feed(&input[..cut]), cut);
    d.attach_fds(dev_null(200), false);
    assert_eq!(d.decode_with_fds(&mut buf, &mut fds), Ok(Decode::NeedRead));
    assert_eq!(d.feed(&input[cut..]), input.len() - cut);
    d.attach_fds(dev_null(100), false);
    assert_eq!(
        d.decode_with_fds(&mut buf, &mut fds),
        Ok(Decode::Message(5000))
    );
    assert_eq!(fds.len(), 200);
    assert_eq!(
        d.decode_with_fds(&mut buf, &mut fds),
        Ok(Decode::Message(6))
    );
    assert_eq!((buf.as_slice(), fds.len()), (&b"second"[..], 100));
}

/// A message whose descriptors come in two reads, 200 then 100, the second finishing its
/// frame, never sits incomplete with more than 253: it is `FdsTruncated` when handed out, all
/// 300 closed, and whole when asked for plainly.
#[test]
fn a_message_with_more_descriptors_than_one_carries_is_truncated_at_hand_out() {
    let input = wire(&[&[3u8; 2000]]);
    for with_fds in [true, false] {
        let mut d = Decoder::new(u64::MAX);
        let (mut buf, mut fds) = (Vec::new(), Vec::new());
        assert_eq!(d.feed(&input[..1000]), 1000);
        d.attach_fds(dev_null(200), false);
        assert_eq!(d.decode_with_fds(&mut buf, &mut fds), Ok(Decode::NeedRead));
        assert_eq!(d.feed(&input[1000..]), input.len() - 1000);
        d.attach_fds(dev_null(100), false);
        if with_fds {
            let got = d.decode_with_fds(&mut buf, &mut fds);
            assert_eq!(got, Err(FrameError::FdsTruncated { closed: 300 }));
            assert!(fds.is_empty());
        } else {
            assert_eq!(d.decode(&mut buf), Ok(Decode::Message(2000)));
        }
        assert_eq!(d.fds.as_ref().map_or(0, |q| q.held), 0);
    }
}
