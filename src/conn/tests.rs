use std::io::{Read, Write};
use std::thread;

use super::*;
use crate::frame::Header;
use crate::proto::recv::GROW_STEP;
use crate::proto::RECV_BUF_LEN as READ_BUF_LEN;
use crate::unix::UnixStream;

/// A connection and the raw peer socket, to write exact bytes at it.
fn pair() -> (Connection<UnixStream>, std::os::unix::net::UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    (Connection::new(a), b.into_inner())
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = Header::new(payload.len() as u64).to_vec();
    v.extend_from_slice(payload);
    v
}

#[test]
fn send_writes_the_documented_bytes() {
    let (mut conn, mut raw) = pair();
    conn.send(b"hello world").unwrap();
    drop(conn);
    let mut got = Vec::new();
    raw.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"\x00\x00\x00\x0bhello world");
}

#[test]
fn many_frames_in_one_write_come_out_one_by_one() {
    let (mut conn, mut raw) = pair();
    let msgs: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; usize::from(i) * 7]).collect();
    let wire: Vec<u8> = msgs.iter().flat_map(|m| frame(m)).collect();
    raw.write_all(&wire).unwrap();
    drop(raw);
    for m in &msgs {
        assert_eq!(conn.recv().unwrap().as_ref(), Some(m));
    }
    assert_eq!(conn.recv().unwrap(), None);
}

#[test]
fn frames_split_into_single_bytes_reassemble() {
    let (mut conn, mut raw) = pair();
    let big: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
    let msgs = [b"a".to_vec(), Vec::new(), big, b"tail".to_vec()];
    let wire: Vec<u8> = msgs.iter().flat_map(|m| frame(m)).collect();
    let writer = thread::spawn(move || {
        for b in wire {
            raw.write_all(&[b]).unwrap();
        }
    });
    for m in &msgs {
        assert_eq!(conn.recv().unwrap().as_ref(), Some(m));
    }
    writer.join().unwrap();
    assert_eq!(conn.recv().unwrap(), None);
}

#[test]
fn close_mid_header_is_unexpected_eof() {
    let (mut conn, mut raw) = pair();
    raw.write_all(&[0, 0]).unwrap();
    drop(raw);
    let err = conn.recv().unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnexpectedEof {
                read: 2,
                expected: 4
            }
        ),
        "{err:?}"
    );
    assert!(matches!(conn.recv().unwrap_err(), Error::Broken));
}

/// Also while spinning, and after a long message (when the next header is read on its own).
#[test]
fn close_mid_payload_is_unexpected_eof() {
    for spin in [None, Some(crate::DEFAULT_SPIN)] {
        for after_long in [false, true] {
            let (mut conn, mut raw) = pair();
            conn.set_spin(spin);
            let long = vec![5; 3 * READ_BUF_LEN];
            let writer = thread::spawn(move || {
                if after_long {
                    raw.write_all(&Header::new(long.len() as u64)).unwrap();
                    raw.write_all(&long).unwrap();
                }
                raw.write_all(&[0, 0, 0, 10, 1, 2, 3]).unwrap();
            });
            if after_long {
                assert_eq!(
                    conn.recv().unwrap().map(|m| m.len()),
                    Some(3 * READ_BUF_LEN)
                );
            }
            let err = conn.recv().unwrap_err();
            writer.join().unwrap();
            let case = format!("spin {spin:?}, after a long message: {after_long}");
            assert!(
                matches!(
                    err,
                    Error::UnexpectedEof {
                        read: 7,
                        expected: 14
                    }
                ),
                "{case}: {err:?}"
            );
            assert!(matches!(conn.recv().unwrap_err(), Error::Broken), "{case}");
        }
    }
}

#[test]
fn close_mid_large_payload_is_unexpected_eof() {
    let (mut conn, mut raw) = pair();
    let writer = thread::spawn(move || {
        raw.write_all(&Header::new(1 << 20)).unwrap();
        raw.write_all(&vec![7; 100_000]).unwrap();
    });
    let err = conn.recv().unwrap_err();
    writer.join().unwrap();
    assert!(
        matches!(err, Error::UnexpectedEof { read: 100_004, expected } if expected == 4 + (1 << 20)),
        "{err:?}"
    );
}

#[test]
fn oversized_prefix_is_refused_and_the_socket_shut() {
    let (mut conn, mut raw) = pair();
    conn.set_max_message_len(1000);
    raw.write_all(&Header::new(1001)).unwrap();
    let err = conn.recv().unwrap_err();
    assert!(
        matches!(
            err,
            Error::FrameTooLarge {
                len: 1001,
                max: 1000
            }
        ),
        "{err:?}"
    );
    // The peer sees the close at once.
    let mut rest = Vec::new();
    raw.read_to_end(&mut rest).unwrap();
    assert!(matches!(conn.recv().unwrap_err(), Error::Broken));
}

#[test]
fn malformed_prefix_is_refused() {
    let (mut conn, mut raw) = pair();
    raw.write_all(&0x8000_0000u32.to_be_bytes()).unwrap();
    let err = conn.recv().unwrap_err();
    assert!(
        matches!(
            err,
            Error::MalformedHeader {
                header: 0x8000_0000
            }
        ),
        "{err:?}"
    );
}

#[test]
fn memory_follows_bytes_not_the_header_claim() {
    let (mut conn, mut raw) = pair();
    // Claims just under the default limit, sends 10 bytes, goes away.
    raw.write_all(&Header::new(DEFAULT_MAX_MESSAGE_LEN - 1))
        .unwrap();
    raw.write_all(&[1; 10]).unwrap();
    drop(raw);
    let mut buf = Vec::new();
    let err = conn.recv_into(&mut buf).unwrap_err();
    assert!(
        matches!(err, Error::UnexpectedEof { read: 14, .. }),
        "{err:?}"
    );
    assert!(
        buf.capacity() <= 2 * GROW_STEP,
        "capacity {}",
        buf.capacity()
    );
}

#[test]
fn a_timeout_mid_payload_loses_nothing() {
    let (mut conn, mut raw) = pair();
    conn.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let msg: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let wire = frame(&msg);
    raw.write_all(&wire[..30_000]).unwrap();
    let mut buf = Vec::new();
    let err = conn.recv_into(&mut buf).unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    raw.write_all(&wire[30_000..]).unwrap();
    assert_eq!(conn.recv_into(&mut buf).unwrap(), Some(msg.len()));
    assert_eq!(buf, msg);
}

#[test]
fn a_timeout_mid_header_loses_nothing() {
    let (mut conn, mut raw) = pair();
    conn.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    raw.write_all(&[0, 0]).unwrap();
    assert!(conn.recv().unwrap_err().is_timeout());
    raw.write_all(&[0, 3, b'a', b'b', b'c']).unwrap();
    assert_eq!(conn.recv().unwrap().as_deref(), Some(&b"abc"[..]));
}

#[test]
fn recv_into_reuses_a_larger_buffer() {
    let (mut conn, mut raw) = pair();
    raw.write_all(&frame(&[9; 100_000])).unwrap();
    raw.write_all(&frame(b"small")).unwrap();
    raw.write_all(&frame(&[8; 90_000])).unwrap();
    let mut buf = Vec::new();
    assert_eq!(conn.recv_into(&mut buf).unwrap(), Some(100_000));
    let ptr = buf.as_ptr();
    assert_eq!(conn.recv_into(&mut buf).unwrap(), Some(5));
    assert_eq!(buf, b"small");
    assert_eq!(conn.recv_into(&mut buf).unwrap(), Some(90_000));
    assert!(buf.iter().all(|&b| b == 8));
    assert_eq!(buf.as_ptr(), ptr, "the buffer was reallocated");
}

/// Reads `count` messages on a thread.
fn read_messages(
    mut peer: Connection<UnixStream>,
    count: usize,
) -> thread::JoinHandle<Vec<Vec<u8>>> {
    thread::spawn(move || (0..count).map(|_| peer.recv().unwrap().unwrap()).collect())
}

/// A send that stops part-way (here in non-blocking mode, with nobody reading) is accepted, its
/// rest queued; a send while the rest cannot go out is refused whole; once the rest is flushed the
/// peer gets every accepted message once, in order.
#[test]
fn a_send_stopped_part_way_is_accepted_and_its_rest_queued() {
    for stall in ["non-blocking", "write timeout"] {
        let (a, b) = UnixStream::pair().unwrap();
        let mut conn = Connection::new(a);
        if stall == "non-blocking" {
            conn.set_nonblocking(true).unwrap();
        } else {
            conn.set_write_timeout(Some(Duration::from_millis(20)))
                .unwrap();
        }
        let big: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
        conn.send(&big).unwrap();
        let queued = conn.pending_len();
        assert!(queued > 0 && queued < big.len(), "{stall}: {queued} queued");
        let err = conn.send(b"refused").unwrap_err();
        assert!(err.is_timeout(), "{stall}: {err:?}");
        assert!(conn.flush().unwrap_err().is_timeout(), "{stall}");
        assert_eq!(conn.pending_len(), queued, "{stall}: nothing more went out");
        let reader = read_messages(Connection::new(b), 2);
        conn.set_nonblocking(false).unwrap();
        conn.set_write_timeout(None).unwrap();
        conn.send(b"after").unwrap();
        assert_eq!(conn.pending_len(), 0);
        assert_eq!(reader.join().unwrap(), [big, b"after".to_vec()], "{stall}");
    }
}

/// `flush` alone finishes a queued rest; it frees the copy once it is out.
#[test]
fn flush_writes_the_queued_rest() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut conn = Connection::new(a);
    conn.set_nonblocking(true).unwrap();
    conn.flush().unwrap();
    let big = vec![3; 4 << 20];
    conn.send(&big).unwrap();
    assert!(conn.pending_len() > 0);
    let reader = read_messages(Connection::new(b), 1);
    conn.set_nonblocking(false).unwrap();
    conn.flush().unwrap();
    assert_eq!(conn.pending_len(), 0);
    assert_eq!(lock_state(&conn).pending().len(), 0);
    assert_eq!(reader.join().unwrap(), [big]);
}

fn lock_state<S>(conn: &Connection<S>) -> std::sync::MutexGuard<'_, crate::proto::SendState> {
    conn.link.tx.state.lock().unwrap()
}

/// A peer that goes away while a frame is half written: the send that saw it fails with the
/// socket's error, and later sends say that an earlier send failed, not that framing did.
#[test]
fn a_send_after_a_failure_mid_frame_names_that_failure() {
    let (mut conn, mut raw) = pair();
    let sender = thread::spawn(move || {
        let first = conn.send(&vec![1; 8 << 20]).unwrap_err();
        (first, conn.send(b"next").unwrap_err())
    });
    // The first byte has arrived, so the frame is under way when the peer goes.
    raw.read_exact(&mut [0]).unwrap();
    drop(raw);
    let (first, next) = sender.join().unwrap();
    assert!(
        matches!(&first, Error::Io(e) if e.kind() == io::ErrorKind::BrokenPipe),
        "{first:?}"
    );
    let text = next.to_string();
    assert!(!text.contains("framing"), "{text}");
    assert!(text.contains("earlier send"), "{text}");
    assert_eq!(io::Error::from(next).kind(), io::ErrorKind::BrokenPipe);
}

#[test]
fn send_to_a_closed_peer_is_an_error() {
    let (mut conn, raw) = pair();
    drop(raw);
    let err = conn.send(b"anyone?").unwrap_err();
    assert!(
        matches!(&err, Error::Io(e) if e.kind() == io::ErrorKind::BrokenPipe),
        "{err:?}"
    );
}

/// A clone made before a send stopped part-way sees the queue: its own send goes after the rest.
#[test]
fn clones_share_the_queue() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut conn = Connection::new(a);
    let mut clone = conn.try_clone().unwrap();
    conn.set_nonblocking(true).unwrap();
    let big = vec![4; 4 << 20];
    conn.send(&big).unwrap();
    assert_eq!(clone.pending_len(), conn.pending_len());
    assert!(clone.send(b"x").unwrap_err().is_timeout());
    let reader = read_messages(Connection::new(b), 2);
    clone.set_nonblocking(false).unwrap();
    clone.send(b"x").unwrap();
    assert_eq!(reader.join().unwrap(), [big, b"x".to_vec()]);
}

#[test]
fn try_clone_sends_while_the_original_receives() {
    let (mut conn, raw) = pair();
    let mut peer = Connection::new(UnixStream::from(raw));
    let mut sender = conn.try_clone().unwrap();
    assert_eq!(sender.max_message_len(), conn.max_message_len());
    let t = thread::spawn(move || {
        for i in 0..1000u32 {
            sender.send(&i.to_be_bytes()).unwrap();
        }
    });
    for i in 0..1000u32 {
        assert_eq!(peer.recv().unwrap().unwrap(), i.to_be_bytes());
        peer.send(&i.to_le_bytes()).unwrap();
        assert_eq!(conn.recv().unwrap().unwrap(), i.to_le_bytes());
    }
    t.join().unwrap();
}

#[test]
fn errors_convert_to_io_errors_of_a_fitting_kind() {
    let e: io::Error = Error::FrameTooLarge { len: 2, max: 1 }.into();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert_eq!(e.to_string(), "frame of 2 bytes exceeds the limit of 1");
    let e: io::Error = Error::UnexpectedEof {
        read: 1,
        expected: 4,
    }
    .into();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    let e: io::Error = Error::Io(io::ErrorKind::BrokenPipe.into()).into();
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
}

/// A hard I/O error in the middle of a payload loses that read's bytes, so the connection is
/// unusable afterwards; the error that says so names what happened, a receive error, not a
/// framing error that never was.
#[test]
fn after_a_receive_error_mid_payload_broken_names_a_receive_error() {
    let (mut conn, mut raw) = pair();
    // Unread bytes in the peer's receive queue make its close a reset (ECONNRESET) on this end.
    conn.send(b"never read").unwrap();
    raw.write_all(&frame(&[7; 1000])[..500]).unwrap();
    conn.set_nonblocking(true).unwrap();
    assert!(conn.recv().unwrap_err().is_timeout());
    drop(raw);
    let err = conn.recv().unwrap_err();
    assert!(
        matches!(&err, Error::Io(e) if e.kind() == io::ErrorKind::ConnectionReset),
        "{err:?}"
    );
    let err = conn.recv().unwrap_err();
    assert!(matches!(err, Error::Broken), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("receive error"), "{text}");
    assert!(!text.contains("framing"), "{text}");
}

/// `into_parts` gives back what was received and not handed out, as it came on the wire, where
/// `into_inner` would drop it: whole frames behind the last message and a partial one.
#[test]
fn into_parts_keeps_the_bytes_received_but_not_handed_out() {
    let (mut conn, mut raw) = pair();
    let mut wire = frame(b"first");
    wire.extend(frame(b"second"));
    let third = frame(&[3; 5000]);
    wire.extend_from_slice(&third[..1000]);
    raw.write_all(&wire).unwrap();
    assert_eq!(conn.recv().unwrap().as_deref(), Some(&b"first"[..]));
    // Into the third frame, part way, so that it is mid-payload.
    conn.set_nonblocking(true).unwrap();
    assert_eq!(conn.recv().unwrap().as_deref(), Some(&b"second"[..]));
    assert!(conn.recv().unwrap_err().is_timeout());
    assert_eq!(conn.buffered_len(), 1000);
    let (stream, rest) = conn.into_parts();
    assert_eq!(rest, &third[..1000]);
    // The stream goes on where the bytes handed back end.
    raw.write_all(&third[1000..]).unwrap();
    let conn = Connection::new(stream);
    let mut tail = vec![0; third.len() - 1000];
    conn.set_nonblocking(false).unwrap();
    conn.get_ref().get_ref().read_exact(&mut tail).unwrap();
    assert_eq!(tail, &third[1000..]);
}

/// A message timeout bounds a whole receive: a peer that trickles a frame, a byte every 5 ms
/// (each well inside any read timeout), still gets the receive ended by it; the next receive
/// resumes the message. The read timeout the user set is the socket's again after each receive,
/// one set meanwhile too, so the stream handed back by `into_inner` has it.
#[test]
fn a_message_timeout_ends_a_receive_that_a_peer_trickles() {
    let (a, mut raw) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut conn = Connection::new(UnixStream::from(a));
    let read_timeout = Some(Duration::from_secs(30));
    conn.set_read_timeout(read_timeout).unwrap();
    conn.set_message_timeout(Some(Duration::from_millis(50)));
    assert_eq!(conn.message_timeout(), Some(Duration::from_millis(50)));
    raw.write_all(&Header::new(1000)).unwrap();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let trickler = std::thread::spawn(move || {
        // The fault being applied: one byte every 5 ms until told to stop, or all of them.
        let mut sent = 0;
        while sent < 1000 && stopped.recv_timeout(Duration::from_millis(5)).is_err() {
            raw.write_all(&[7]).unwrap();
            sent += 1;
        }
        (raw, sent)
    });
    let err = conn.recv().unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(conn.read_timeout().unwrap(), read_timeout);
    let read_timeout = Some(Duration::from_secs(7));
    conn.set_read_timeout(read_timeout).unwrap();
    stop.send(()).unwrap();
    let (mut raw, sent) = trickler.join().unwrap();
    assert!(sent < 1000, "the receive outlived the whole trickle");
    raw.write_all(&vec![7; 1000 - sent]).unwrap();
    assert_eq!(conn.recv().unwrap(), Some(vec![7; 1000]));
    let stream = conn.into_inner();
    assert_eq!(stream.read_timeout().unwrap(), read_timeout);
}

/// A message timeout bounds a whole send: a peer that reads a little at a time (64 KiB every
/// 20 ms, so that each wait for room is short) gets the send of 8 MiB, which it would take
/// about 2.6 s to read, ended by it, with the message accepted and its rest queued; the rest
/// and the next message then arrive whole. Without the bound, the send returned only once the
/// peer had nearly all of it.
#[test]
fn a_message_timeout_ends_a_send_that_a_peer_reads_slowly() {
    const LEN: usize = 8 << 20;
    let (a, mut raw) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut conn = Connection::new(UnixStream::from(a));
    conn.set_message_timeout(Some(Duration::from_millis(50)));
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut chunk = vec![0; 64 << 10];
        // The fault being applied: a slow reader until told to stop, then a fast one.
        let mut slow = true;
        while got.len() < 2 * 4 + LEN + 4 {
            slow = slow && stopped.recv_timeout(Duration::from_millis(20)).is_err();
            let n = raw.read(&mut chunk).unwrap();
            assert_ne!(n, 0, "a close after {} bytes", got.len());
            got.extend_from_slice(&chunk[..n]);
        }
        got
    });
    let msg: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
    conn.send(&msg).unwrap();
    let left = conn.pending_len();
    assert!(left > 0, "the send outlived the slow reader");
    stop.send(()).unwrap();
    conn.set_message_timeout(None);
    conn.send(b"next").unwrap();
    assert_eq!(conn.pending_len(), 0);
    let got = reader.join().unwrap();
    let mut want = frame(&msg);
    want.extend_from_slice(&frame(b"next"));
    assert!(got == want, "the frames came cut or changed");
}

/// Under a message timeout a send waits for room no longer than the write timeout when that is
/// shorter, and not at all on a socket in non-blocking mode; a queued rest that cannot go out
/// is a timeout for the next send, with nothing of it accepted.
#[test]
fn a_message_timeout_send_keeps_the_write_timeout_and_non_blocking_mode() {
    let (a, raw) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut conn = Connection::new(UnixStream::from(a));
    let long = Duration::from_secs(30);
    conn.set_message_timeout(Some(long));
    let write_timeout = Some(Duration::from_millis(20));
    conn.set_write_timeout(write_timeout).unwrap();
    let start = Instant::now();
    // Nobody reads: the socket fills, and the write timeout ends the wait.
    conn.send(&vec![1; 4 << 20]).unwrap();
    assert!(conn.pending_len() > 0);
    let err = conn.send(b"more").unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(start.elapsed() < long, "waited for the message timeout");
    assert_eq!(conn.write_timeout().unwrap(), write_timeout);
    conn.set_write_timeout(None).unwrap();
    conn.set_nonblocking(true).unwrap();
    let start = Instant::now();
    let err = conn.flush().unwrap_err();
    assert!(
        matches!(&err, Error::Io(e) if e.kind() == io::ErrorKind::WouldBlock),
        "{err:?}"
    );
    assert!(start.elapsed() < long, "a non-blocking socket waited");
    drop(raw);
}

/// Under a message timeout, descriptors go out with their message as they do otherwise.
#[test]
fn a_message_timeout_send_carries_descriptors() {
    let (a, b) = UnixStream::pair().unwrap();
    let (mut a, mut b) = (Connection::new(a), Connection::new(b));
    a.set_message_timeout(Some(Duration::from_secs(30)));
    let file = std::fs::File::open("/dev/null").unwrap();
    a.send_with_fds(b"with", &[file.as_fd()]).unwrap();
    a.send_batch(&[b"one", b"two"]).unwrap();
    let (msg, fds) = b.recv_with_fds().unwrap().unwrap();
    assert_eq!((&msg[..], fds.len()), (&b"with"[..], 1));
    assert_eq!(b.recv().unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(b.recv().unwrap().as_deref(), Some(&b"two"[..]));
}

/// A zero message timeout lets a receive return only what has already arrived: a message the
/// last read brought comes out, and one that needs a read is a timeout at once, with nothing
/// lost for the next receive.
#[test]
fn a_zero_message_timeout_returns_only_what_has_arrived() {
    let (a, mut raw) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut conn = Connection::new(UnixStream::from(a));
    let mut both = Header::new(3).to_vec();
    both.extend_from_slice(b"one");
    both.extend_from_slice(&Header::new(3));
    both.extend_from_slice(b"two");
    raw.write_all(&both).unwrap();
    assert_eq!(conn.recv().unwrap().as_deref(), Some(&b"one"[..]));
    conn.set_message_timeout(Some(Duration::ZERO));
    assert_eq!(
        conn.recv().unwrap().as_deref(),
        Some(&b"two"[..]),
        "buffered"
    );
    raw.write_all(&Header::new(5)).unwrap();
    raw.write_all(b"thr").unwrap();
    let err = conn.recv().unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    raw.write_all(b"ee").unwrap();
    conn.set_message_timeout(None);
    assert_eq!(conn.recv().unwrap().as_deref(), Some(&b"three"[..]));
}
