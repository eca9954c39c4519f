//! System-call budgets, counted rather than timed, and the batching and spinning paths.

use std::io::{IoSlice, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::thread;

use super::*;
use crate::frame::{Header, MAX_HEADER_LEN};
use crate::proto::RECV_BUF_LEN as READ_BUF_LEN;
use crate::stream::sealed;
use crate::unix::UnixStream;

/// A stream that counts the calls a connection makes on it; each is one system call.
#[derive(Debug)]
struct Counting<S = UnixStream> {
    inner: S,
    reads: usize,
    /// The reads that took control data (`recvmsg(2)` with room for descriptors).
    control_reads: usize,
    writes: usize,
    /// Bytes read into the receive buffer, which get copied a second time on their way out: the
    /// connection reads into the message, then the receive buffer, always as two slices.
    staged: usize,
}

impl<S> Counting<S> {
    fn new(inner: S) -> Self {
        Counting {
            inner,
            reads: 0,
            control_reads: 0,
            writes: 0,
            staged: 0,
        }
    }
}

impl<S: Stream> Read for Counting<S> {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        unreachable!("the connection reads into two slices")
    }
    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        self.reads += 1;
        let n = self.inner.read_vectored(bufs)?;
        let [msg, _] = bufs else {
            unreachable!("the message, then the receive buffer")
        };
        // The kernel fills the buffers in order.
        self.staged += n.saturating_sub(msg.len());
        Ok(n)
    }
}

impl<S: Stream> Write for Counting<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes += 1;
        self.inner.write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.writes += 1;
        self.inner.write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<S: Stream> sealed::Sealed for Counting<S> {
    fn carries_fds(&self) -> bool {
        self.inner.carries_fds()
    }
    fn recv_vectored_with_fds(
        &mut self,
        bufs: &mut crate::sys::ReadBufs<'_, '_>,
        nowait: bool,
    ) -> io::Result<(usize, crate::sys::Control)> {
        self.reads += 1;
        self.control_reads += 1;
        let got = self.inner.recv_vectored_with_fds(bufs, nowait)?;
        // The kernel fills the buffers in order.
        self.staged += got.0.saturating_sub(bufs.first_len());
        Ok(got)
    }
    fn recv_bufs(
        &mut self,
        bufs: &mut crate::sys::ReadBufs<'_, '_>,
        nowait: bool,
    ) -> io::Result<usize> {
        self.reads += 1;
        let n = self.inner.recv_bufs(bufs, nowait)?;
        self.staged += n.saturating_sub(bufs.first_len());
        Ok(n)
    }
}

impl<S: Stream> Stream for Counting<S> {
    fn try_clone(&self) -> io::Result<Self> {
        Ok(Counting::new(self.inner.try_clone()?))
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.inner.set_write_timeout(t)
    }
    fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.inner.read_timeout()
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.inner.write_timeout()
    }
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.set_nonblocking(nonblocking)
    }
}

impl<S: Stream> AsFd for Counting<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

/// A counting connection and the raw peer socket.
fn counting_pair() -> (Connection<Counting>, std::os::unix::net::UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    (Connection::new(Counting::new(a)), b.into_inner())
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = Header::new(payload.len() as u64).to_vec();
    v.extend_from_slice(payload);
    v
}

/// Reads `len` bytes from `raw` on a thread, so that a writer never waits for buffer space.
fn drain(mut raw: std::os::unix::net::UnixStream, len: usize) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut got = vec![0; len];
        raw.read_exact(&mut got).unwrap();
        got
    })
}

#[test]
fn a_small_message_is_one_write() {
    let (mut conn, raw) = counting_pair();
    let sizes = [0, 1, 64, 4095, 4096];
    let msgs: Vec<Vec<u8>> = sizes.iter().map(|&n| vec![n as u8; n]).collect();
    let wire: Vec<u8> = msgs.iter().flat_map(|m| frame(m)).collect();
    let reader = drain(raw, wire.len());
    for (i, m) in msgs.iter().enumerate() {
        conn.send(m).unwrap();
        assert_eq!(conn.get_ref().writes, i + 1, "{} bytes", m.len());
    }
    assert_eq!(reader.join().unwrap(), wire);
}

/// A reply is one write like any send: header and payload in two writes (the split-reply rule)
/// lost on echo streams and is gone (README, performance section).
#[test]
fn a_large_reply_on_a_unix_socket_is_one_write() {
    let (mut conn, mut raw) = counting_pair();
    let msg: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    raw.write_all(&frame(b"request")).unwrap();
    conn.recv().unwrap();
    let reader = drain(raw, 3 * (msg.len() + 4));
    conn.send(&msg).unwrap();
    // A blocking stream socket takes the whole frame in one call, however long.
    assert_eq!(conn.get_ref().writes, 1);
    conn.send(&msg).unwrap();
    conn.send(&msg).unwrap();
    assert_eq!(conn.get_ref().writes, 3);
    assert_eq!(reader.join().unwrap(), frame(&msg).repeat(3));
}

#[test]
fn a_large_message_on_tcp_is_one_write() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut raw, _) = listener.accept().unwrap();
    let mut conn = Connection::new(Counting::new(crate::TcpStream::from(client)));
    let msg = vec![3; 1 << 20];
    raw.write_all(&frame(b"request")).unwrap();
    conn.recv().unwrap();
    let len = msg.len() + 4;
    let reader = thread::spawn(move || {
        let mut got = vec![0; len];
        raw.read_exact(&mut got).unwrap();
        got
    });
    // A reply, yet one call: on TCP the header alone would be a segment of its own.
    conn.send(&msg).unwrap();
    assert_eq!(conn.get_ref().writes, 1);
    assert_eq!(reader.join().unwrap(), frame(&msg));
}

#[test]
fn a_batch_is_one_write_per_512_messages() {
    let (mut conn, raw) = counting_pair();
    let msgs: Vec<Vec<u8>> = (0..1000u32).map(|i| i.to_be_bytes().repeat(16)).collect();
    let wire: Vec<u8> = msgs.iter().flat_map(|m| frame(m)).collect();
    let reader = drain(raw, wire.len());
    conn.send_batch(&msgs).unwrap();
    assert_eq!(conn.get_ref().writes, 2);
    assert_eq!(reader.join().unwrap(), wire);
}

#[test]
fn an_empty_batch_writes_nothing() {
    let (mut conn, _raw) = counting_pair();
    conn.send_batch::<&[u8]>(&[]).unwrap();
    assert_eq!(conn.get_ref().writes, 0);
}

#[test]
fn a_batch_arrives_as_separate_messages() {
    let (a, b) = UnixStream::pair().unwrap();
    let (mut a, mut b) = (Connection::new(a), Connection::new(b));
    let msgs: Vec<Vec<u8>> = (0..1500usize)
        .map(|i| vec![i as u8; [0, 1, 64, 9000, 70_000][i % 5]])
        .collect();
    let expected = msgs.clone();
    let sender = thread::spawn(move || a.send_batch(&msgs).unwrap());
    let mut buf = Vec::new();
    for m in &expected {
        assert_eq!(b.recv_into(&mut buf).unwrap(), Some(m.len()));
        assert_eq!(&buf, m);
    }
    sender.join().unwrap();
    assert_eq!(b.recv().unwrap(), None);
}

/// A batch is accepted whole or not at all: stopped part-way (nobody reads, so the first chunk
/// fills the socket buffer and a write times out), its unwritten rest, later chunks included, is
/// queued; a batch or send while that cannot go out is refused whole.
#[test]
fn a_batch_stopped_part_way_is_accepted_whole() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut conn = Connection::new(Counting::new(a));
    conn.set_write_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let msgs: Vec<Vec<u8>> = (0..600u32).map(|i| i.to_be_bytes().repeat(4096)).collect();
    let wire: Vec<u8> = msgs.iter().flat_map(|m| frame(m)).collect();
    conn.send_batch(&msgs).unwrap();
    let queued = conn.pending_len();
    assert!(queued > wire.len() / 2, "{queued} of {} queued", wire.len());
    let writes = conn.get_ref().writes;
    let err = conn.send_batch(&[b"refused"]).unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(conn.pending_len(), queued);
    let reader = drain(b.into_inner(), wire.len() + frame(b"x").len());
    conn.set_write_timeout(None).unwrap();
    conn.send_batch(&[b"x"]).unwrap();
    // The rest went out in one call (and any calls the socket asked for), then the new batch.
    assert!(conn.get_ref().writes > writes + 1);
    let mut want = wire;
    want.extend(frame(b"x"));
    assert_eq!(reader.join().unwrap(), want);
}

/// A batch refused before its first byte is not accepted: nothing of it ever goes out.
#[test]
fn a_batch_that_cannot_start_is_not_accepted() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut conn = Connection::new(a);
    conn.set_nonblocking(true).unwrap();
    let fill = vec![1; 4 << 20];
    conn.send(&fill).unwrap();
    assert!(conn.send_batch(&[b"one", b"two"]).unwrap_err().is_timeout());
    let mut raw = b.into_inner();
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        raw.read_to_end(&mut got).map(|_| got)
    });
    conn.set_nonblocking(false).unwrap();
    conn.flush().unwrap();
    drop(conn);
    assert_eq!(reader.join().unwrap().unwrap(), frame(&fill));
}

#[test]
fn each_small_message_costs_at_most_one_read() {
    let (mut conn, mut raw) = counting_pair();
    let mut buf = Vec::new();
    for (i, len) in [0, 1, 64, 4096, READ_BUF_LEN - 4]
        .into_iter()
        .cycle()
        .take(100)
        .enumerate()
    {
        let msg = vec![i as u8; len];
        raw.write_all(&frame(&msg)).unwrap();
        assert_eq!(conn.recv_into(&mut buf).unwrap(), Some(len));
        assert_eq!(buf, msg);
        assert_eq!(conn.get_ref().reads, i + 1, "message {i} of {len} bytes");
    }
}

/// A Unix connection reads with control data, so that descriptors reach their message, unless
/// it is set not to receive descriptors: then every read is the plain one TCP's are.
#[test]
fn reads_take_control_data_unless_descriptors_are_refused() {
    for receive in [true, false] {
        let (mut conn, mut raw) = counting_pair();
        conn.set_receive_fds(receive);
        for i in 0..10u8 {
            raw.write_all(&frame(&[i; 64])).unwrap();
            assert_eq!(conn.recv().unwrap(), Some(vec![i; 64]));
        }
        let counts = conn.get_ref();
        assert_eq!(counts.reads, 10, "receive_fds {receive}");
        let want = if receive { 10 } else { 0 };
        assert_eq!(counts.control_reads, want, "receive_fds {receive}");
    }
}

#[test]
fn long_messages_are_read_straight_into_the_destination() {
    let (mut conn, mut raw) = counting_pair();
    let mut buf = Vec::new();
    for len in [
        READ_BUF_LEN,
        3 * READ_BUF_LEN,
        64 << 10,
        (1 << 20) + 3,
        4 << 20,
    ] {
        let msg: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut wire = frame(&msg).repeat(3);
        wire.extend_from_slice(&frame(b"next"));
        let writer = thread::spawn(move || raw.write_all(&wire).map(|()| raw));
        // The first of a run: the read that brings its header may bring a receive buffer's worth
        // of payload along, and the last read as much of the next message.
        conn.link.stream.staged = 0;
        assert_eq!(conn.recv_into(&mut buf).unwrap(), Some(len));
        assert_eq!(buf, msg);
        let staged = conn.get_ref().staged;
        assert!(staged <= 2 * READ_BUF_LEN, "{staged} bytes staged");
        // The rest of the run: each read brings at most a header into the receive buffer, the
        // payload goes straight into `buf`.
        conn.link.stream.staged = 0;
        for _ in 0..2 {
            assert_eq!(conn.recv_into(&mut buf).unwrap(), Some(len));
            assert_eq!(buf, msg);
        }
        let staged = conn.get_ref().staged;
        assert!(staged <= 4 * MAX_HEADER_LEN, "{staged} bytes staged");
        assert_eq!(conn.recv_into(&mut buf).unwrap(), Some(4));
        assert_eq!(buf, b"next");
        raw = writer.join().unwrap().unwrap();
    }
}

#[test]
fn after_long_messages_small_ones_are_still_one_read_each() {
    let (mut conn, mut raw) = counting_pair();
    let long = vec![9; 64 << 10];
    let writer = {
        let wire = frame(&long);
        let mut raw = raw.try_clone().unwrap();
        thread::spawn(move || raw.write_all(&wire).unwrap())
    };
    assert_eq!(conn.recv().unwrap().unwrap(), long);
    writer.join().unwrap();
    let mut buf = Vec::new();
    for i in 0..10u8 {
        let reads = conn.get_ref().reads;
        raw.write_all(&frame(&[i; 100])).unwrap();
        assert_eq!(conn.recv_into(&mut buf).unwrap(), Some(100));
        assert_eq!(buf, [i; 100]);
        // The first, after the long one, reads its header on its own; then one read each.
        let most = if i == 0 { 2 } else { 1 };
        assert!(conn.get_ref().reads - reads <= most, "message {i}");
    }
}

#[test]
fn the_rest_of_a_short_frame_and_the_next_frames_cost_one_read() {
    for spin in [None, Some(DEFAULT_SPIN)] {
        let (mut conn, mut raw) = counting_pair();
        conn.set_spin(spin);
        conn.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let msg: Vec<u8> = (0..6000).map(|i| (i % 251) as u8).collect();
        let wire = frame(&msg);
        // Half a frame: the receive times out with it, and resumes.
        raw.write_all(&wire[..100]).unwrap();
        let mut buf = Vec::new();
        assert!(conn.recv_into(&mut buf).unwrap_err().is_timeout());
        let reads = conn.get_ref().reads;
        let mut rest = wire[100..].to_vec();
        rest.extend_from_slice(&frame(b"one"));
        rest.extend_from_slice(&frame(b"two"));
        raw.write_all(&rest).unwrap();
        assert_eq!(conn.recv_into(&mut buf).unwrap(), Some(msg.len()));
        assert_eq!(buf, msg);
        for want in [&b"one"[..], b"two"] {
            assert_eq!(conn.recv().unwrap().as_deref(), Some(want));
        }
        if spin.is_none() {
            // (Spinning polls with `recvmsg(2)` on the descriptor, which `Counting` cannot see.)
            let stream = conn.get_ref();
            assert_eq!(stream.reads, reads + 1);
            // The rest of the payload went straight into `buf`: only the next frames were
            // buffered.
            assert_eq!(stream.staged, 100 + 2 * frame(b"one").len());
        }
    }
}

#[test]
fn frames_already_waiting_cost_one_read_in_all() {
    let (mut conn, mut raw) = counting_pair();
    let msgs: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; 64]).collect();
    let wire: Vec<u8> = msgs.iter().flat_map(|m| frame(m)).collect();
    assert!(wire.len() <= READ_BUF_LEN);
    raw.write_all(&wire).unwrap();
    let mut buf = Vec::new();
    for m in &msgs {
        assert_eq!(conn.recv_into(&mut buf).unwrap(), Some(64));
        assert_eq!(&buf, m);
    }
    assert_eq!(conn.get_ref().reads, 1);
}

#[test]
fn spinning_receives_what_blocking_receives() {
    let (a, b) = UnixStream::pair().unwrap();
    let (mut a, mut b) = (Connection::new(a), Connection::new(b));
    a.set_spin(Some(DEFAULT_SPIN));
    b.set_spin(Some(Duration::from_micros(1)));
    assert_eq!(a.spin(), Some(DEFAULT_SPIN));
    assert_eq!(a.try_clone().unwrap().spin(), Some(DEFAULT_SPIN));
    let echo = thread::spawn(move || {
        let mut buf = Vec::new();
        while let Some(n) = b.recv_into(&mut buf).unwrap() {
            b.send(&buf[..n]).unwrap();
        }
    });
    let mut buf = Vec::new();
    for len in [0, 1, 64, 5000, 100_000, 1 << 20] {
        let msg: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        a.send(&msg).unwrap();
        assert_eq!(a.recv_into(&mut buf).unwrap(), Some(len));
        assert_eq!(buf, msg);
    }
    drop(a);
    echo.join().unwrap();
}

/// A non-blocking connection does not spin: its receive reports `WouldBlock` after one read
/// that finds nothing, as it would without a budget, instead of polling for the budget.
#[test]
fn a_non_blocking_receive_does_not_spin() {
    let (mut conn, _raw) = counting_pair();
    conn.set_spin(Some(Duration::from_millis(20)));
    conn.set_nonblocking(true).unwrap();
    let err = conn.recv().unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(conn.get_ref().reads, 1);
}

#[test]
fn an_idle_spinning_receive_falls_back_to_blocking() {
    let (a, _b) = UnixStream::pair().unwrap();
    let mut conn = Connection::new(a);
    conn.set_spin(Some(DEFAULT_SPIN));
    // Only the blocking read after the spin honours the timeout; a spin that never ended would
    // hang here.
    conn.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let err = conn.recv().unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

#[test]
fn spinning_sees_a_clean_close() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut conn = Connection::new(a);
    conn.set_spin(Some(DEFAULT_SPIN));
    drop(b);
    assert_eq!(conn.recv().unwrap(), None);
}
