//! [`Connection`]: whole messages over a stream socket.

use std::fmt;
use std::io;
use std::mem::MaybeUninit;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use self::write::Link;
use crate::error::{Error, Result};
use crate::proto::{is_retryable, lend, Decoder, FrameError};
use crate::stream::Stream;
use crate::sys::{self, ReadBufs};

mod split;
mod write;

pub use self::split::{RecvHalf, SendHalf};

/// The default for [`Connection::max_message_len`]: 64 MiB.
pub const DEFAULT_MAX_MESSAGE_LEN: u64 = 64 * 1024 * 1024;

/// A suggested budget for [`Connection::set_spin`]: 50 µs, a little more than a round trip between
/// two spinning processes on separate cores (5-10 µs) takes, and far less than a blocking wake-up.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// A message connection over a stream: [`send`](Self::send) and [`recv`](Self::recv) whole
/// messages, framed as the [wire format](crate::frame) describes.
///
/// Receiving is driven by the protocol core's [`Decoder`](crate::proto::Decoder): several small
/// messages that arrive together cost one read, a long payload is read straight into the
/// caller's buffer, and a receive buffer is held only while messages flow (none while the
/// connection waits for its peer, up to 64 KiB while the peer streams). Sending a message is
/// one `sendmsg(2)` of header and payload together, and [`send_batch`](Self::send_batch) sends up
/// to 512 messages in one. Nothing is allocated per message. For full-duplex use,
/// [`split`](Self::split) the connection into a receiving and a sending half for two threads.
/// Every handle of one connection (halves, [`try_clone`](Self::try_clone)s) sends under one lock,
/// so frames from several threads go out whole, one after another. For the lowest latency at the
/// price of CPU time, see [`set_spin`](Self::set_spin).
///
/// # Examples
///
/// ```
/// use msgsock::{Connection, UnixListener, UnixStream};
///
/// let listener = UnixListener::bind_temp()?;
/// let mut client = Connection::new(UnixStream::connect(listener.path())?);
/// let (stream, _) = listener.accept()?;
/// let mut server = Connection::new(stream);
///
/// client.send(b"hello world")?;
/// assert_eq!(server.recv()?.as_deref(), Some(&b"hello world"[..]));
///
/// // Receive into a reused buffer: no allocation once it is large enough.
/// let mut buf = Vec::new();
/// server.send(b"pong")?;
/// assert_eq!(client.recv_into(&mut buf)?, Some(4));
/// assert_eq!(buf, b"pong");
///
/// drop(client);
/// assert_eq!(server.recv()?, None); // a clean close between frames
/// # Ok::<(), msgsock::Error>(())
/// ```
pub struct Connection<S> {
    /// The stream, and the sending side shared with every other handle of this connection.
    link: Link<S>,
    /// The receive state machine: this type only reads for it.
    decoder: Decoder,
    /// While set, no read waits past this instant: bounds a whole exchange (the authentication
    /// handshake) where `SO_RCVTIMEO` alone would bound each `read(2)` and let a peer trickle.
    read_deadline: Option<Instant>,
    /// Busy-poll budget before each blocking read, if enabled.
    spin: Option<Duration>,
    /// Whether reads of a Unix stream take descriptors (`recvmsg(2)` with control data) or
    /// leave them to the kernel to close (`recv(2)`, cheaper). Meaningless on TCP.
    receive_fds: bool,
}

impl<S: Stream> Connection<S> {
    /// Wraps a connected stream.
    pub fn new(stream: S) -> Connection<S> {
        Connection::from_link(Link::new(stream))
    }

    /// A connection over `link`, whose send state may be shared with other handles already.
    fn from_link(link: Link<S>) -> Connection<S> {
        Connection {
            link,
            decoder: Decoder::new(DEFAULT_MAX_MESSAGE_LEN),
            read_deadline: None,
            spin: None,
            receive_fds: true,
        }
    }

    /// Sends one message.
    ///
    /// Header and payload go out in one system call (more only if the socket takes part of them),
    /// with `MSG_NOSIGNAL`: a peer that has gone away is an error, never a `SIGPIPE`. A frame of up
    /// to 2 KiB is copied into a stack buffer and sent with `send(2)`, which is cheaper than a
    /// gathering `sendmsg(2)`; a longer one is sent from where it is with `sendmsg(2)`.
    ///
    /// `Ok(())` means that the message was accepted whole. When the socket stops taking bytes
    /// part-way through its frame (in non-blocking mode, or when the write timeout expires), the
    /// rest is copied into the connection and goes out first on the next send, or with
    /// [`flush`](Self::flush); [`pending_len`](Self::pending_len) says how much waits. Only that
    /// case copies or allocates. Dropping the connection drops what waits, and the peer then
    /// sees a close in the middle of a frame.
    ///
    /// Frames of sends on several handles of this connection at once never interleave: each send
    /// holds the connection's send lock while it writes.
    ///
    /// # Errors
    ///
    /// - A timeout ([`Error::is_timeout`]: `WouldBlock` in non-blocking mode, or the write timeout
    ///   expired) means that not one byte of this message was accepted: send it again as it is
    ///   once the socket can take more. A send also returns a timeout, without accepting its
    ///   message, while a rest queued by an earlier send still cannot go out.
    /// - [`Error::Io`] otherwise is the socket's error, `BrokenPipe` when the peer has gone. When
    ///   it came after part of a frame was written, later sends return [`Error::SendBroken`].
    /// - [`Error::SendBroken`] after such an error: the peer would lose step on any later frame.
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.link.send(msg)
    }

    /// Sends several messages with as few system calls as possible: one `sendmsg(2)` for up to
    /// 512 messages (the kernel takes at most 1024 buffers per call), without copying them or
    /// allocating.
    ///
    /// The peer receives them as if each had been [`send`](Self::send) in order. Many small
    /// messages cost far less this way: the system call, not the copy, is most of their price.
    ///
    /// A batch is accepted all or nothing, as one message is by `send`: `Ok(())` means that every
    /// message of it was accepted. When the socket stops taking bytes part-way, the unwritten rest
    /// of the batch is copied into the connection (as much memory as that rest of the batch) and
    /// goes out before anything else, as after a `send`.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send): a timeout means that no message of the batch was accepted.
    ///
    /// # Examples
    ///
    /// ```
    /// use msgsock::{Connection, UnixStream};
    ///
    /// let (a, b) = UnixStream::pair()?;
    /// let (mut a, mut b) = (Connection::new(a), Connection::new(b));
    /// a.send_batch(&[&b"one"[..], b"two", b"three"])?;
    /// let mut buf = Vec::new();
    /// for want in [&b"one"[..], b"two", b"three"] {
    ///     b.recv_into(&mut buf)?;
    ///     assert_eq!(buf, want);
    /// }
    /// # Ok::<(), msgsock::Error>(())
    /// ```
    pub fn send_batch<M: AsRef<[u8]>>(&mut self, msgs: &[M]) -> Result<()> {
        self.link.send_batch(msgs)
    }

    /// Sends one message with the descriptors `fds` attached (`sendmsg(2)` with `SCM_RIGHTS`):
    /// the peer's [`recv_with_fds`](Self::recv_with_fds) gets them with this message and no
    /// other, as new descriptors of the same open files. On a Unix stream an empty `fds` is a
    /// plain [`send`](Self::send).
    ///
    /// The frame goes out in a `sendmsg(2)` of its own that starts with its header, after any
    /// queued rest of an earlier frame; that is what lets the receiver tell which message the
    /// descriptors belong to, however the bytes are split into reads. Otherwise as `send`: a
    /// part the socket does not take is queued, and goes out without the descriptors, which the
    /// kernel took with the first bytes.
    ///
    /// # Errors
    ///
    /// - [`Error::TooManyFds`] for more than 253 descriptors (Linux's `SCM_MAX_FD`), and
    ///   [`Error::FdsUnsupported`] on a TCP stream: both before anything is sent.
    /// - As [`send`](Self::send) otherwise; a timeout accepted nothing, descriptors included.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::os::fd::AsFd;
    /// use msgsock::{Connection, UnixStream};
    ///
    /// let (a, b) = UnixStream::pair()?;
    /// let (mut a, mut b) = (Connection::new(a), Connection::new(b));
    /// let (reader, writer) = std::io::pipe()?;
    /// a.send_with_fds(b"the write end", &[writer.as_fd()])?;
    /// drop(writer);
    /// let (msg, fds) = b.recv_with_fds()?.expect("a message");
    /// assert_eq!(msg, b"the write end");
    /// let mut writer = std::fs::File::from(fds.into_iter().next().unwrap());
    /// writer.write_all(b"through the passed descriptor")?;
    /// drop(writer);
    /// let mut got = String::new();
    /// (&reader).read_to_string(&mut got)?;
    /// assert_eq!(got, "through the passed descriptor");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_with_fds(&mut self, msg: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        self.link.send_with_fds(msg, fds)
    }

    /// Writes the rest of a frame that an earlier [`send`](Self::send) or
    /// [`send_batch`](Self::send_batch) left queued, if any; `Ok(())` once nothing waits.
    ///
    /// # Errors
    ///
    /// A timeout while some still waits: call again once the socket can take more. Otherwise as
    /// [`send`](Self::send).
    ///
    /// # Examples
    ///
    /// ```
    /// use msgsock::{Connection, UnixStream};
    ///
    /// let (a, b) = UnixStream::pair()?;
    /// let (mut a, mut b) = (Connection::new(a), Connection::new(b));
    /// a.set_nonblocking(true)?;
    /// // More than the socket buffer holds, with nobody reading yet: the rest waits.
    /// let big = vec![7; 4 << 20];
    /// a.send(&big)?;
    /// assert!(a.pending_len() > 0);
    /// assert!(a.send(b"next").unwrap_err().is_timeout()); // not accepted: retry it later
    /// let reader = std::thread::spawn(move || (b.recv(), b.recv()));
    /// a.set_nonblocking(false)?;
    /// a.flush()?;
    /// assert_eq!(a.pending_len(), 0);
    /// a.send(b"next")?;
    /// let (first, second) = reader.join().unwrap();
    /// assert_eq!(first?, Some(big));
    /// assert_eq!(second?.as_deref(), Some(&b"next"[..]));
    /// # Ok::<(), msgsock::Error>(())
    /// ```
    pub fn flush(&mut self) -> Result<()> {
        self.link.flush()
    }

    /// Bytes of an accepted frame that wait in the connection to be written (see
    /// [`send`](Self::send)); 0 when everything accepted is with the socket.
    pub fn pending_len(&self) -> usize {
        self.link.pending_len()
    }

    /// Splits the connection into a receiving half and a sending half, to be moved to two
    /// threads, as tokio's `into_split` does. The send half can be
    /// [`try_clone`](SendHalf::try_clone)d for more senders, which share its send lock.
    ///
    /// The halves are two handles (`dup(2)`) of one socket: its blocking mode
    /// ([`set_nonblocking`](Self::set_nonblocking)) and timeouts are the socket's, so set them
    /// before splitting. Bytes already received stay with the receiving half.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `dup(2)` fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use msgsock::{Connection, UnixStream};
    ///
    /// let (a, b) = UnixStream::pair()?;
    /// let (mut rx, mut tx) = Connection::new(a).split()?;
    /// let mut peer = Connection::new(b);
    /// let sender = std::thread::spawn(move || tx.send(b"from the send half"));
    /// peer.send(b"to the receive half")?;
    /// assert_eq!(rx.recv()?.as_deref(), Some(&b"to the receive half"[..]));
    /// assert_eq!(peer.recv()?.as_deref(), Some(&b"from the send half"[..]));
    /// sender.join().unwrap()?;
    /// # Ok::<(), msgsock::Error>(())
    /// ```
    pub fn split(self) -> Result<(RecvHalf<S>, SendHalf<S>)> {
        let send = SendHalf::new(self.link.try_clone()?);
        Ok((RecvHalf::new(self), send))
    }

    /// Receives one message into a new `Vec`; `Ok(None)` when the peer closed cleanly between
    /// messages.
    ///
    /// # Errors
    ///
    /// As [`recv_into`](Self::recv_into).
    pub fn recv(&mut self) -> Result<Option<Vec<u8>>> {
        let mut buf = Vec::new();
        Ok(self.recv_into(&mut buf)?.map(|_| buf))
    }

    /// Receives one message into `buf`, replacing its contents, and returns the message length;
    /// `Ok(None)` when the peer closed cleanly between messages.
    ///
    /// `buf` is reused: once its capacity fits the messages, receiving allocates nothing. Memory
    /// for a message grows with the bytes that arrive, never with what a header claims.
    ///
    /// On a Unix stream every read takes the control data too, so descriptors sent with a later
    /// message are kept for it; those sent with this message are closed (see
    /// [`recv_into_with_fds`](Self::recv_into_with_fds) to keep them, and
    /// [`set_receive_fds`](Self::set_receive_fds) to read without control data).
    ///
    /// # Errors
    ///
    /// - [`Error::FrameTooLarge`] when a length prefix exceeds [`max_message_len`](Self::max_message_len),
    ///   [`Error::MalformedHeader`] for a non-canonical prefix: the socket is shut down.
    /// - [`Error::UnexpectedEof`] when the peer closed in the middle of a frame.
    /// - [`Error::Broken`] on any call after one of those.
    /// - [`Error::Io`] from the socket. A timeout (`WouldBlock`/`TimedOut`, see
    ///   [`Error::is_timeout`]) loses nothing: the next call resumes the same message.
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        self.recv_frame(buf, None)
    }

    /// Receives one message into a new `Vec`, with the descriptors that were sent with it
    /// (close-on-exec), in the order they were sent; `Ok(None)` when the peer closed cleanly
    /// between messages.
    ///
    /// # Errors
    ///
    /// As [`recv_into_with_fds`](Self::recv_into_with_fds).
    pub fn recv_with_fds(&mut self) -> Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
        crate::fd::recv_new_with_fds(|buf, fds| self.recv_into_with_fds(buf, fds))
    }

    /// As [`recv_into`](Self::recv_into), and `fds` (its contents replaced) gets the descriptors
    /// sent with this message, close-on-exec (`MSG_CMSG_CLOEXEC`): exactly those its sender
    /// gave [`send_with_fds`](Self::send_with_fds) (or that a peer in another language sent
    /// with the message's first bytes in one `sendmsg(2)`), never another message's, however
    /// the reads split the stream and after a timeout too. Plain receives and this one may be
    /// mixed: a plain one closes only its own message's descriptors.
    ///
    /// # Errors
    ///
    /// - [`Error::FdsTruncated`] in place of a message that lost descriptors: the kernel cut
    ///   the control data short (`MSG_CTRUNC`), for example at this process's descriptor limit,
    ///   or the peer attached more than 253 to it, which the connection closes once it holds more.
    ///   Its descriptors that did arrive are closed and its bytes dropped; the connection stays
    ///   in step, and the next call returns the next message.
    /// - [`Error::FdsUnsupported`] on a TCP stream, and [`Error::FdsRefused`] on a connection
    ///   [set not to receive descriptors](Self::set_receive_fds), before any read.
    /// - As [`recv_into`](Self::recv_into) otherwise.
    pub fn recv_into_with_fds(
        &mut self,
        buf: &mut Vec<u8>,
        fds: &mut Vec<OwnedFd>,
    ) -> Result<Option<usize>> {
        self.link.check_unix()?;
        if !self.receive_fds {
            return Err(Error::FdsRefused);
        }
        self.recv_frame(buf, Some(fds))
    }

    /// A receive, within the message timeout if one is set (and any deadline already set).
    fn recv_frame(
        &mut self,
        buf: &mut Vec<u8>,
        fds: Option<&mut Vec<OwnedFd>>,
    ) -> Result<Option<usize>> {
        match self.link.message_timeout.as_deref() {
            None => self.recv_loop(buf, fds),
            Some(&timeout) => self.recv_within(timeout, buf, fds),
        }
    }

    /// A receive bounded by `timeout` as a whole (see `set_message_timeout`). Out of line, so
    /// that the common receive stays small.
    #[inline(never)]
    fn recv_within(
        &mut self,
        timeout: Duration,
        buf: &mut Vec<u8>,
        fds: Option<&mut Vec<OwnedFd>>,
    ) -> Result<Option<usize>> {
        let mut fds = fds;
        // A message already buffered needs no read, so no timeout either.
        if let Some(n) = self.decode(&[], buf, fds.as_deref_mut())? {
            return Ok(Some(n));
        }
        // The reads set `SO_RCVTIMEO` to the time left; the user's read timeout goes back after.
        let read_timeout = self.link.stream.read_timeout()?;
        let outer = self.read_deadline;
        // A timeout too far ahead to name an instant bounds nothing.
        if let Some(mine) = Instant::now().checked_add(timeout) {
            self.read_deadline = Some(outer.map_or(mine, |outer| outer.min(mine)));
        }
        let got = self.recv_loop(buf, fds);
        self.read_deadline = outer;
        // Not reported: the error would hide a message received whole, and setting a valid
        // socket's option back fails only on a bad descriptor, which the next call reports.
        let _ = self.link.stream.set_read_timeout(read_timeout);
        got
    }

    /// The receive loop: decode, read, repeat; the message's descriptors into `fds` if given.
    fn recv_loop(
        &mut self,
        buf: &mut Vec<u8>,
        mut fds: Option<&mut Vec<OwnedFd>>,
    ) -> Result<Option<usize>> {
        loop {
            if let Some(n) = self.decode(&[], buf, fds.as_deref_mut())? {
                return Ok(Some(n));
            }
            if self.decoder.wants_buffer() {
                // The read that may wait goes into the stack while the decoder holds no buffer,
                // so that a connection waiting for its peer holds no memory for it; left
                // uninitialised, since zeroing it cost a small message more than its copy.
                let received = lend(self.decoder.lent_len(), |spare| {
                    self.read_lent(spare, buf, fds.as_deref_mut())
                });
                match received? {
                    Lent::Closed => return self.closed(),
                    Lent::Message(n) => return Ok(Some(n)),
                    Lent::NeedRead => {}
                }
            } else if self.read(None)?.is_none() {
                return self.closed();
            }
        }
    }

    /// One read into `spare`, lent in place of the decoder's receive buffer, and its decode.
    fn read_lent(
        &mut self,
        spare: &mut [MaybeUninit<u8>],
        buf: &mut Vec<u8>,
        fds: Option<&mut Vec<OwnedFd>>,
    ) -> Result<Lent> {
        let Some(lent) = self.read(Some(spare))? else {
            return Ok(Lent::Closed);
        };
        Ok(match self.decode(lent, buf, fds)? {
            Some(n) => Lent::Message(n),
            None => Lent::NeedRead,
        })
    }

    /// The decode step, with the bytes of a read into `lent` if there was one.
    fn decode(
        &mut self,
        lent: &[u8],
        buf: &mut Vec<u8>,
        fds: Option<&mut Vec<OwnedFd>>,
    ) -> Result<Option<usize>> {
        self.decoder
            .decode_into(lent, buf, fds)
            .map_err(|e| self.fail(e))
    }

    /// The peer closed: `None` between messages, an error mid-frame.
    fn closed(&mut self) -> Result<Option<usize>> {
        match self.decoder.eof() {
            Ok(()) => Ok(None),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// One read (into `spare` in place of the decoder's receive buffer, if given), and the
    /// bytes it put into `spare`; `None` at the peer's close. A failed read tells the decoder
    /// what it lost.
    fn read<'l>(&mut self, spare: Option<&'l mut [MaybeUninit<u8>]>) -> Result<Option<&'l [u8]>> {
        match self.read_once(spare) {
            Ok((0, _)) => Ok(None),
            Ok((_, lent)) => Ok(Some(lent)),
            Err(e) => {
                if is_retryable(&e) {
                    // Nothing lost; with nothing buffered, the receive buffer goes back.
                    self.decoder.quiet();
                } else {
                    // Mid-payload the failed read's bytes are gone: the stream lost sync.
                    self.decoder.read_failed();
                }
                Err(e.into())
            }
        }
    }

    /// One read into where the decoder wants its bytes (`spare` lent in place of its receive
    /// buffer, if given), within the read deadline, spinning first if a budget is set; reports
    /// what arrived to the decoder, and returns it with the bytes it put into `spare`.
    fn read_once<'l>(
        &mut self,
        spare: Option<&'l mut [MaybeUninit<u8>]>,
    ) -> io::Result<(usize, &'l [u8])> {
        self.apply_read_deadline()?;
        let (msg, room) = self.decoder.read_bufs_uninit(spare);
        let mut bufs = ReadBufs::new(msg, room);
        // No spin past the read deadline, and the wait after a spin gets only the time left.
        let deadline = self.read_deadline;
        let spin = match (self.spin, deadline) {
            (Some(budget), Some(deadline)) => {
                Some(budget.min(deadline.saturating_duration_since(Instant::now())))
            }
            (spin, _) => spin,
        };
        let after_spin = spin.is_some() && deadline.is_some();
        let plain = !self.link.is_unix() || !self.receive_fds;
        let stream = &mut self.link.stream;
        if plain {
            let n = read_some(spin, stream, |stream, nowait| {
                if !nowait && after_spin {
                    apply_deadline(stream, deadline)?;
                }
                stream.recv_bufs(&mut bufs, nowait)
            })?;
            let lent = bufs.lent();
            self.decoder.advance(n);
            return Ok((n, lent));
        }
        // With the control data, so that descriptors reach the decoder and the message they
        // came with, whichever receive call reads them.
        let (n, control) = read_some(spin, stream, |stream, nowait| {
            if !nowait && after_spin {
                apply_deadline(stream, deadline)?;
            }
            stream.recv_vectored_with_fds(&mut bufs, nowait)
        })?;
        let lent = bufs.lent();
        self.decoder.advance(n);
        if control.truncated || !control.fds.is_empty() {
            self.decoder.attach_fds(control.fds, control.truncated);
        }
        Ok((n, lent))
    }

    /// A framing error or a close mid-frame, after which the decoder reports itself broken;
    /// framing errors also shut the socket down, so the peer learns at once and no more of its
    /// bytes are read.
    fn fail(&mut self, err: FrameError) -> Error {
        if matches!(
            err,
            FrameError::TooLarge { .. } | FrameError::Malformed { .. }
        ) {
            // The peer may already be gone; the error to report is the framing one.
            let _ = self.link.stream.shutdown(Shutdown::Both);
        }
        err.into()
    }

    /// Bounds every later read by `deadline`, or lifts the bound. The read timeout is left at
    /// whatever the last read set: the caller restores it.
    pub(crate) fn set_read_deadline(&mut self, deadline: Option<Instant>) {
        self.read_deadline = deadline;
    }

    /// Sets `SO_RCVTIMEO` to the time left before the read deadline; `TimedOut` once it passed.
    fn apply_read_deadline(&self) -> io::Result<()> {
        apply_deadline(&self.link.stream, self.read_deadline)
    }

    /// The largest message [`recv`](Self::recv) accepts; larger length prefixes are
    /// [`Error::FrameTooLarge`]. Defaults to [`DEFAULT_MAX_MESSAGE_LEN`].
    pub fn max_message_len(&self) -> u64 {
        self.decoder.max_message_len()
    }

    /// Sets the largest message [`recv`](Self::recv) accepts. Takes effect from the next length
    /// prefix read; a message already being received is not affected. Sending is not limited.
    pub fn set_max_message_len(&mut self, max: u64) -> &mut Self {
        self.decoder.set_max_message_len(max);
        self
    }

    /// Consuming form of [`set_max_message_len`](Self::set_max_message_len).
    pub fn with_max_message_len(mut self, max: u64) -> Self {
        self.decoder.set_max_message_len(max);
        self
    }

    /// Turns on busy-polling receives: before each read that would block, poll the socket with
    /// non-blocking `recv(2)` calls for up to `budget`, and only then block. `None` (the default)
    /// blocks at once.
    ///
    /// A blocked receiver pays a scheduler wake-up when data arrives, which is most of a small
    /// round trip's time; a spinning one sees the data at once, at the price of a busy CPU while
    /// it waits. The budget bounds that: an idle connection spins for at most `budget` per
    /// receive, then sleeps as usual. It pays off when each process has a core of its own and
    /// replies come quickly; [`DEFAULT_SPIN`] suits round trips on one machine. The polls use
    /// `MSG_DONTWAIT`, so the socket itself stays in blocking mode; a read timeout starts when the
    /// spin ends. A time limit of msgsock's own, such as a handshake's
    /// ([`Authenticator::with_timeout`](crate::Authenticator::with_timeout)), bounds the spin and
    /// the wait after it together. A socket in non-blocking mode
    /// ([`set_nonblocking`](Self::set_nonblocking), or set on the stream itself) does not spin:
    /// its receive returns `WouldBlock` at once, as without a budget. Takes effect from the next
    /// read.
    ///
    /// # Examples
    ///
    /// ```
    /// use msgsock::{Connection, UnixStream, DEFAULT_SPIN};
    ///
    /// let (a, b) = UnixStream::pair()?;
    /// let (mut a, mut b) = (Connection::new(a), Connection::new(b));
    /// b.set_spin(Some(DEFAULT_SPIN));
    /// a.send(b"ping")?;
    /// assert_eq!(b.recv()?.as_deref(), Some(&b"ping"[..]));
    /// # Ok::<(), msgsock::Error>(())
    /// ```
    pub fn set_spin(&mut self, budget: Option<Duration>) -> &mut Self {
        self.spin = budget;
        self
    }

    /// The busy-poll budget set by [`set_spin`](Self::set_spin); `None` when receives block at
    /// once.
    pub fn spin(&self) -> Option<Duration> {
        self.spin
    }

    /// Bounds each receive and each send as a whole, so that a peer that trickles a message a
    /// byte at a time, or takes one a little at a time, cannot hold a call (and a thread) for
    /// longer than `timeout`, however it spreads its bytes or its reads. `None` (the default)
    /// leaves calls to the read and write timeouts, which bound each wait instead.
    ///
    /// - A receive that has not returned a message `timeout` after it began returns a timeout
    ///   error ([`Error::is_timeout`]); as after any timeout, the next receive resumes the same
    ///   message. A message already received comes out whatever the timeout
    ///   (`Some(Duration::ZERO)` allows only those). A receive that reads sets the socket's read
    ///   timeout (`SO_RCVTIMEO`) to the time left before each read, and gives back the one
    ///   [`set_read_timeout`](Self::set_read_timeout) set when it returns: two more system calls
    ///   per receive, the price of the bound.
    /// - A send (or [`flush`](Self::flush), or [`send_batch`](Self::send_batch)) that has not
    ///   finished `timeout` after it began returns as one whose write timed out (see
    ///   [`send`](Self::send)): its message accepted and the rest queued if part of it went out,
    ///   else a timeout error with nothing accepted. Its writes do not block (`MSG_DONTWAIT`),
    ///   and it waits for room in `poll(2)`, each wait within the time left and the
    ///   [write timeout](Self::set_write_timeout), which stays the socket's.
    ///
    /// The setting is this handle's: a [`split`](Self::split) or [`try_clone`](Self::try_clone)
    /// copies it, and each copy can change its own.
    ///
    /// ```
    /// use msgsock::{Connection, UnixStream};
    /// use std::io::Write;
    /// use std::time::Duration;
    /// let (a, mut raw) = std::os::unix::net::UnixStream::pair()?;
    /// let mut conn = Connection::new(UnixStream::from(a));
    /// conn.set_message_timeout(Some(Duration::from_millis(50)));
    /// raw.write_all(&[0, 0, 0, 5, b'h'])?; // a header and the first of five bytes
    /// assert!(conn.recv().unwrap_err().is_timeout());
    /// raw.write_all(b"ello")?;
    /// assert_eq!(conn.recv()?.as_deref(), Some(&b"hello"[..]));
    /// // A peer that reads nothing: what fits in the socket goes out, the rest waits.
    /// conn.send(&vec![0; 1 << 20])?;
    /// assert!(conn.pending_len() > 0);
    /// assert!(conn.send(b"more").unwrap_err().is_timeout());
    /// # Ok::<(), msgsock::Error>(())
    /// ```
    pub fn set_message_timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        self.link.message_timeout = timeout.map(Box::new);
        self
    }

    /// The bound set by [`set_message_timeout`](Self::set_message_timeout).
    pub fn message_timeout(&self) -> Option<Duration> {
        self.link.message_timeout.as_deref().copied()
    }

    /// Sets whether this connection receives descriptors (the default), on a Unix stream.
    ///
    /// A connection that receives them reads with `recvmsg(2)` and room for control data, so
    /// that descriptors sent with any message reach that message, whichever receive call reads
    /// its bytes. One set not to reads with `recv(2)`, as std's `read` does and a little
    /// faster; the kernel closes descriptors a peer sends with those reads, so none enter this
    /// process, and [`recv_with_fds`](Self::recv_with_fds) returns [`Error::FdsRefused`].
    /// Messages stay whole and in order either way. Set it before the peer sends descriptors:
    /// bytes already read keep the descriptors that came with them. No effect on TCP, and on
    /// sending.
    ///
    /// ```
    /// use msgsock::{Connection, UnixStream};
    /// use std::os::fd::AsFd;
    /// let (a, b) = UnixStream::pair()?;
    /// let (mut a, mut b) = (Connection::new(a), Connection::new(b));
    /// b.set_receive_fds(false);
    /// let file = std::fs::File::open("/dev/null")?;
    /// a.send_with_fds(b"hello", &[file.as_fd()])?;
    /// assert_eq!(b.recv()?.as_deref(), Some(&b"hello"[..]));
    /// assert!(matches!(b.recv_with_fds(), Err(msgsock::Error::FdsRefused)));
    /// # Ok::<(), msgsock::Error>(())
    /// ```
    pub fn set_receive_fds(&mut self, receive: bool) -> &mut Self {
        self.receive_fds = receive;
        self
    }

    /// Whether reads take descriptors: on a Unix stream as set by
    /// [`set_receive_fds`](Self::set_receive_fds), `true` by default; never on TCP.
    pub fn receives_fds(&self) -> bool {
        self.receive_fds && self.link.is_unix()
    }

    /// A second handle to the same connection, to send on one thread while another receives.
    ///
    /// The clone starts with an empty receive buffer and the original's message limit, spin
    /// budget, [message timeout](Self::set_message_timeout) and
    /// [descriptor setting](Self::set_receive_fds). Bytes the original has already
    /// read stay with it, so receive on one handle only ([`split`](Self::split) says so in the
    /// types). Sending on both is safe: they share one send lock and one queue.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `dup(2)` fails.
    pub fn try_clone(&self) -> Result<Connection<S>> {
        let mut clone = Connection::from_link(self.link.try_clone()?)
            .with_max_message_len(self.max_message_len());
        clone.spin = self.spin;
        clone.receive_fds = self.receive_fds;
        Ok(clone)
    }

    /// Sets the read timeout (`SO_RCVTIMEO`); `None` blocks forever. A receive that times out
    /// returns an error for which [`Error::is_timeout`] is true and can be retried.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], for example `InvalidInput` for a zero duration.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        Ok(self.link.stream.set_read_timeout(timeout)?)
    }

    /// Sets the write timeout (`SO_SNDTIMEO`); `None` blocks forever.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], for example `InvalidInput` for a zero duration.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        self.link.set_write_timeout(timeout)
    }

    /// The read timeout.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `getsockopt(2)`.
    pub fn read_timeout(&self) -> Result<Option<Duration>> {
        Ok(self.link.stream.read_timeout()?)
    }

    /// The write timeout.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `getsockopt(2)`.
    pub fn write_timeout(&self) -> Result<Option<Duration>> {
        self.link.write_timeout()
    }

    /// Moves the socket into or out of non-blocking mode. In non-blocking mode `send` and `recv`
    /// return a `WouldBlock` error instead of waiting; a `recv` resumes where it stopped, and a
    /// `send` that returns it accepted nothing (see [`send`](Self::send)).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `fcntl(2)`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        Ok(self.link.stream.set_nonblocking(nonblocking)?)
    }

    /// Shuts down the read, write or both halves (`shutdown(2)`); the peer's `recv` then sees a
    /// clean close after the messages already sent. A rest of a frame still queued
    /// ([`pending_len`](Self::pending_len)) is not written: [`flush`](Self::flush) first.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `shutdown(2)`.
    pub fn shutdown(&self, how: Shutdown) -> Result<()> {
        Ok(self.link.stream.shutdown(how)?)
    }
}

impl<S> Connection<S> {
    /// The underlying stream, for its addresses and options.
    pub fn get_ref(&self) -> &S {
        &self.link.stream
    }

    /// Bytes received but not yet handed out as messages, a partly received one included with
    /// its length prefix: as many as [`into_parts`](Self::into_parts) hands back.
    pub fn buffered_len(&self) -> usize {
        self.decoder.buffered_len()
    }

    /// The underlying stream. Bytes already received and not yet handed out
    /// ([`buffered_len`](Self::buffered_len)) are lost, and so is a queued rest of a frame
    /// ([`pending_len`](Self::pending_len)) unless another handle of the connection is left to
    /// send it. [`into_parts`](Self::into_parts) keeps the received bytes.
    pub fn into_inner(self) -> S {
        self.link.stream
    }

    /// The underlying stream and the bytes already received from it but not yet handed out as
    /// messages ([`buffered_len`](Self::buffered_len) of them), as they came on the wire: a
    /// caller that goes on reading the stream itself, or hands it to another framing, reads
    /// them first. A partly received message comes back as its length prefix and the part of
    /// its payload that arrived. A queued rest of a frame ([`pending_len`](Self::pending_len))
    /// is lost, as with [`into_inner`](Self::into_inner).
    ///
    /// # Examples
    ///
    /// ```
    /// use msgsock::{Connection, UnixStream};
    ///
    /// let (a, b) = UnixStream::pair()?;
    /// let (mut a, mut b) = (Connection::new(a), Connection::new(b));
    /// a.send_batch(&[&b"one"[..], b"two"])?;
    /// assert_eq!(b.recv()?.as_deref(), Some(&b"one"[..])); // the same read brought "two"
    /// let (_stream, rest) = b.into_parts();
    /// assert_eq!(rest, b"\0\0\0\x03two");
    /// # Ok::<(), msgsock::Error>(())
    /// ```
    pub fn into_parts(mut self) -> (S, Vec<u8>) {
        let buffered = self.decoder.take_buffered();
        (self.link.stream, buffered)
    }
}

/// What a read into lent memory came to.
enum Lent {
    /// The peer closed.
    Closed,
    /// A message of this length is in the caller's buffer.
    Message(usize),
    /// More must be read.
    NeedRead,
}

/// Sets `stream`'s `SO_RCVTIMEO` to the time left before `deadline`, if there is one;
/// `TimedOut` once it passed.
fn apply_deadline<S: Stream>(stream: &S, deadline: Option<Instant>) -> io::Result<()> {
    if let Some(deadline) = deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
    }
    Ok(())
}

/// One read of `stream` with `read(stream, nowait)`, retrying `EINTR`, into one or two
/// buffers, filled in order. With a spin budget, first polls with non-blocking reads
/// (`nowait`) until one brings something or the budget is spent, and only then blocks; but a
/// socket in non-blocking mode, whose user asked not to wait, gets the first poll's
/// `WouldBlock`.
fn read_some<S: AsFd, T>(
    spin: Option<Duration>,
    stream: &mut S,
    mut read: impl FnMut(&mut S, bool) -> io::Result<T>,
) -> io::Result<T> {
    if let Some(budget) = spin {
        let mut start = None;
        loop {
            match sys::retry_io(|| read(stream, true)) {
                // Asked once, when the first poll finds nothing: a spin that finds data at
                // once pays nothing for it.
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        && start.is_none()
                        && sys::is_nonblocking(stream.as_fd())? =>
                {
                    return Err(e)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
            // Read the clock only once the first poll came back empty.
            if start.get_or_insert_with(Instant::now).elapsed() >= budget {
                break;
            }
            std::hint::spin_loop();
        }
    }
    sys::retry_io(|| read(stream, false))
}

impl<S: fmt::Debug> fmt::Debug for Connection<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("stream", &self.link.stream)
            .field("buffered", &self.decoder.buffered_len())
            .field("max_message_len", &self.decoder.max_message_len())
            .finish()
    }
}

impl<S: AsFd> AsFd for Connection<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.link.stream.as_fd()
    }
}

impl<S: AsRawFd> AsRawFd for Connection<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.link.stream.as_raw_fd()
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod perf_tests;
