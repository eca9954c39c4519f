//! The blocking driver of [`SendState`]: the writes, under the lock that every handle of one
//! connection shares, so that frames from several handles go out whole, one after another.

use std::io::{self, IoSlice};
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{Error, Family, Result};
use crate::frame::Header;
use crate::proto::{check_fds, is_retryable, Scratch, SendState};
use crate::stream::Stream;
use crate::sys;

/// The most buffers one `sendmsg(2)` takes (`IOV_MAX`, `UIO_MAXIOV` on Linux).
const IOV_MAX: usize = 1024;

/// Messages per `sendmsg(2)` in a batch: each takes a header and a payload slot.
pub(crate) const BATCH_LEN: usize = IOV_MAX / 2;

/// What all the handles of one connection (clones, send halves) share: the send state, and
/// what kind of socket it is. Behind the one `Arc`, so that a connection stays as small as it was.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Whether the stream is a Unix-domain socket, which carries descriptors: its reads take
    /// control data, and [`Link::send_with_fds`] may attach some.
    pub(crate) unix: bool,
    pub(crate) state: Mutex<SendState>,
}

/// The send state of one connection, shared by all its handles.
pub(crate) type SharedSend = Arc<Shared>;

/// Takes the connection's send lock. A panic while it was held (none is expected: the writes do
/// not panic) leaves the state as consistent as after an error, so poisoning is ignored.
fn lock(tx: &Shared) -> MutexGuard<'_, SendState> {
    tx.state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A stream and the send state that every handle of its connection shares: what sending needs,
/// held by both a [`Connection`](super::Connection) and a [`SendHalf`](super::SendHalf).
#[derive(Debug)]
pub(crate) struct Link<S> {
    pub(crate) stream: S,
    pub(crate) tx: SharedSend,
    /// The most one send or receive of this handle may take in all, if bounded (see
    /// `Connection::set_message_timeout`). Boxed: rarely set, and a connection's size is paid
    /// by every enum that holds one.
    pub(crate) message_timeout: Option<Box<Duration>>,
}

impl<S: Stream> Link<S> {
    /// A stream whose connection has sent nothing yet.
    pub(crate) fn new(stream: S) -> Self {
        // The type says (no `getsockname(2)`): an `AnyStream` by its variant.
        let unix = stream.carries_fds();
        Link {
            stream,
            tx: Arc::new(Shared {
                unix,
                state: Mutex::default(),
            }),
            message_timeout: None,
        }
    }

    /// Another handle (`dup(2)`) of the stream, sharing this one's send state.
    pub(crate) fn try_clone(&self) -> io::Result<Self> {
        Ok(Link {
            stream: self.stream.try_clone()?,
            tx: Arc::clone(&self.tx),
            message_timeout: self.message_timeout.clone(),
        })
    }

    /// Whether the stream is a Unix-domain socket, which carries descriptors.
    pub(crate) fn is_unix(&self) -> bool {
        self.tx.unix
    }

    /// [`Error::FdsUnsupported`] unless the stream can carry descriptors.
    pub(crate) fn check_unix(&self) -> Result<()> {
        if !self.is_unix() {
            return Err(Error::FdsUnsupported {
                family: Family::Inet,
            });
        }
        Ok(())
    }

    /// How many queued bytes wait to be written before the next frame.
    pub(crate) fn pending_len(&self) -> usize {
        lock(&self.tx).pending_len()
    }

    /// Writes the queued rest of an earlier frame, if any.
    pub(crate) fn flush(&mut self) -> Result<()> {
        match self.deadline() {
            None => flush_locked(&mut self.stream, &mut lock(&self.tx)),
            Some(deadline) => flush_locked(
                &mut Within::new(&mut self.stream, deadline),
                &mut lock(&self.tx),
            ),
        }
    }

    /// Sends the frame of `msg`, after whatever is queued.
    pub(crate) fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.send_frame(msg, &[])
    }

    /// Sends the frame of `msg` with `fds` attached to its first bytes, after whatever is queued.
    ///
    /// The receiver can tell which message descriptors came with ([`Decoder`]'s rule) because
    /// this frame starts its own `sendmsg(2)` and no other frame starts in it: a queued rest of
    /// an earlier frame goes out first in calls of its own, the frame is never part of a batch,
    /// and the rest of it, if the socket takes only part, goes out alone too.
    ///
    /// [`Decoder`]: crate::proto::Decoder
    pub(crate) fn send_with_fds(&mut self, msg: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        // A transport that carries none refuses any number, as UDP does.
        self.check_unix()?;
        check_fds(fds.len())?;
        self.send_frame(msg, fds)
    }

    /// Sends the frame of `msg` after whatever is queued, `fds` (if any) with its first write.
    fn send_frame(&mut self, msg: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        if self.message_timeout.is_none() {
            return send_frame_to(&mut self.stream, &self.tx, msg, fds);
        }
        self.send_frame_within(msg, fds)
    }

    /// [`send_frame`](Self::send_frame) under a message timeout. Out of line, so that the
    /// common send stays small.
    #[inline(never)]
    fn send_frame_within(&mut self, msg: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        match self.deadline() {
            None => send_frame_to(&mut self.stream, &self.tx, msg, fds),
            Some(deadline) => {
                let out = &mut Within::new(&mut self.stream, deadline);
                send_frame_to(out, &self.tx, msg, fds)
            }
        }
    }

    /// Sends the frames of `msgs`, after whatever is queued, up to [`BATCH_LEN`] per
    /// `sendmsg(2)`, with no copy and no allocation unless the socket stops taking bytes part-way.
    pub(crate) fn send_batch<M: AsRef<[u8]>>(&mut self, msgs: &[M]) -> Result<()> {
        match self.deadline() {
            None => send_batch_to(&mut self.stream, &self.tx, msgs),
            Some(deadline) => {
                send_batch_to(&mut Within::new(&mut self.stream, deadline), &self.tx, msgs)
            }
        }
    }

    /// The instant by which a send that starts now must be done, under a message timeout. A
    /// timeout too far ahead to name an instant bounds nothing.
    fn deadline(&self) -> Option<Instant> {
        let timeout = *self.message_timeout.as_deref()?;
        Instant::now().checked_add(timeout)
    }

    /// Sets the socket's write timeout (`SO_SNDTIMEO`).
    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        Ok(self.stream.set_write_timeout(timeout)?)
    }

    /// The socket's write timeout.
    pub(crate) fn write_timeout(&self) -> Result<Option<Duration>> {
        Ok(self.stream.write_timeout()?)
    }
}

/// Sends the frame of `msg` to `out` after whatever `tx` has queued, `fds` (if any) with its
/// first write.
fn send_frame_to<W: Sink>(
    out: &mut W,
    tx: &Shared,
    msg: &[u8],
    fds: &[BorrowedFd<'_>],
) -> Result<()> {
    let header = Header::new(msg.len() as u64);
    let mut tx = lock(tx);
    flush_locked(out, &mut tx)?;
    let mut written = 0;
    let mut scratch = Scratch::default();
    let (mut one, mut two);
    let mut bufs: &mut [IoSlice<'_>] = match scratch.frame(&header, msg) {
        Some(frame) => {
            one = [IoSlice::new(frame)];
            &mut one
        }
        None => {
            two = [IoSlice::new(&header), IoSlice::new(msg)];
            &mut two
        }
    };
    match write_all(out, &mut bufs, &mut written, fds) {
        Ok(()) => Ok(()),
        Err(e) => Ok(tx.stopped::<&[u8]>(e, written, bufs, &[])?),
    }
}

/// Sends the frames of `msgs` to `out` after whatever `tx` has queued, up to [`BATCH_LEN`] per
/// `sendmsg(2)`.
fn send_batch_to<W: Sink, M: AsRef<[u8]>>(out: &mut W, tx: &Shared, msgs: &[M]) -> Result<()> {
    let mut tx = lock(tx);
    flush_locked(out, &mut tx)?;
    let mut written = 0;
    for (i, chunk) in msgs.chunks(BATCH_LEN).enumerate() {
        // On the stack: a batch allocates nothing.
        let mut headers = [Header::new(0); BATCH_LEN];
        for (header, msg) in headers.iter_mut().zip(chunk) {
            *header = Header::new(msg.as_ref().len() as u64);
        }
        let mut slots = [IoSlice::new(&[]); IOV_MAX];
        for (i, (header, msg)) in headers.iter().zip(chunk).enumerate() {
            slots[2 * i] = IoSlice::new(header);
            slots[2 * i + 1] = IoSlice::new(msg.as_ref());
        }
        let mut bufs = &mut slots[..2 * chunk.len()];
        if let Err(e) = write_all(out, &mut bufs, &mut written, &[]) {
            let more = msgs.get((i + 1) * BATCH_LEN..).unwrap_or(&[]);
            return Ok(tx.stopped(e, written, bufs, more)?);
        }
    }
    Ok(())
}

/// Where a send writes: a stream as it is (blocking writes, each bounded by the write timeout
/// only), or [`Within`] a deadline.
trait Sink {
    /// One write of `bufs`, `fds` attached if there are any.
    fn write(&mut self, bufs: &[IoSlice<'_>], fds: &[BorrowedFd<'_>]) -> io::Result<usize>;
}

impl<S: Stream> Sink for S {
    #[inline]
    fn write(&mut self, bufs: &[IoSlice<'_>], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        write_once(self, bufs, fds)
    }
}

/// A stream written within a deadline: a send under a message timeout.
struct Within<'s, S> {
    stream: &'s mut S,
    deadline: Instant,
}

impl<'s, S: Stream> Within<'s, S> {
    fn new(stream: &'s mut S, deadline: Instant) -> Self {
        Within { stream, deadline }
    }
}

impl<S: Stream> Sink for Within<'_, S> {
    /// One write of `bufs` that waits for room until the deadline at most. The write itself
    /// does not block (`MSG_DONTWAIT`): a blocking one returns only once it has taken all it
    /// can, so a peer that reads a little at a time could hold it for ever, each wait for room
    /// well inside any `SO_SNDTIMEO`. The waits are `poll(2)`, each also within the write
    /// timeout, which ends one as `SO_SNDTIMEO` would, with `WouldBlock`; the deadline ends one
    /// with `TimedOut`.
    fn write(&mut self, bufs: &[IoSlice<'_>], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        let fd = self.stream.as_fd();
        // Asked for at the first wait: a write that finds room needs no more calls.
        let mut write_timeout = None;
        loop {
            match sys::send_with_fds(fd, bufs, fds, None, true) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            // A socket in non-blocking mode, whose user asked not to wait.
            if sys::is_nonblocking(fd)? {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            let limit = match write_timeout {
                Some(limit) => limit,
                None => *write_timeout.insert(self.stream.write_timeout()?),
            };
            let wait = limit.map_or(left, |limit: Duration| limit.min(left));
            if !sys::wait_writable(fd, wait)? && wait < left {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
    }
}

/// Writes what `tx` has queued. A timeout leaves the rest queued; any other error ends sending.
fn flush_locked<W: Sink>(out: &mut W, tx: &mut SendState) -> Result<()> {
    if let Some(kind) = tx.failed() {
        return Err(Error::SendBroken { kind });
    }
    while tx.pending_len() > 0 {
        match out.write(&[IoSlice::new(tx.pending())], &[]) {
            Ok(n) => tx.advance(n),
            Err(e) => {
                if !is_retryable(&e) {
                    tx.fail(e.kind());
                }
                return Err(e.into());
            }
        }
    }
    Ok(())
}

/// Writes all of `bufs`, counting the bytes in `written`, `fds` with the first write that
/// takes any bytes; on error `bufs` is what is left.
fn write_all<W: Sink>(
    out: &mut W,
    bufs: &mut &mut [IoSlice<'_>],
    written: &mut usize,
    mut fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    while !bufs.is_empty() {
        let n = out.write(bufs, fds)?;
        // The kernel took them with those bytes.
        fds = &[];
        *written += n;
        IoSlice::advance_slices(bufs, n);
    }
    Ok(())
}

/// One write of `bufs`, retrying `EINTR`, with `fds` attached if there are any
/// (`sendmsg(2)` with `SCM_RIGHTS`). Otherwise one buffer needs no gathering: `send(2)` rather
/// than `sendmsg(2)`. A write of nothing is `WriteZero`.
fn write_once<S: Stream>(
    stream: &mut S,
    bufs: &[IoSlice<'_>],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    let n = sys::retry_io(|| match bufs {
        _ if !fds.is_empty() => sys::send_with_fds(stream.as_fd(), bufs, fds, None, false),
        [one] => stream.write(one),
        _ => stream.write_vectored(bufs),
    })?;
    if n == 0 {
        return Err(io::ErrorKind::WriteZero.into());
    }
    Ok(n)
}
