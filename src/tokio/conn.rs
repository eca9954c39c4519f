//! [`AsyncConnection`]: whole messages over a tokio stream, and its owned halves.

use std::cell::Cell;
use std::fmt;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use super::queued::QueuedSender;
use super::stream::{check_carries_fds, AsyncStream};
use crate::conn::DEFAULT_MAX_MESSAGE_LEN;
use crate::error::{Error, Result};
use crate::frame::Header;
use crate::proto::{check_fds, lend, Decoder, Scratch};
use crate::sys::{self, ReadBufs};

/// The default for [`AsyncConnection::set_high_water`]: 1 MiB. [`feed`](AsyncConnection::feed)
/// queues frames until this many bytes wait to be written, then waits for the socket.
pub const DEFAULT_HIGH_WATER: usize = 1 << 20;

/// [`feed`](AsyncConnection::feed) writes a message at least this long at once when nothing is
/// queued, instead of copying it: it fills a write of its own, so queueing would batch nothing.
pub(super) const WRITE_THROUGH_LEN: usize = 64 * 1024;

/// An emptied queue keeps at least this much memory for the next frames.
const KEEP_QUEUE_CAPACITY: usize = 64 * 1024;

/// Whether an emptied send queue of `capacity` bytes keeps its memory for the next frames: up to
/// what a queue at the high-water mark grows to (its `Vec` doubles), so that a sender feeding
/// steadily reuses one buffer (fresh memory for every batch cut a 64 KiB echo stream's rate
/// fivefold), while a message far beyond the mark gives its memory back once written.
pub(super) fn keeps_queue_memory(capacity: usize, high_water: usize) -> bool {
    capacity <= KEEP_QUEUE_CAPACITY.max(high_water.saturating_mul(2))
}

/// A message connection over a tokio stream: `send` and `recv` whole messages, framed as the
/// [wire format](crate::frame) describes, with the cancel-safety the [module](super) states.
///
/// Receiving uses the protocol core's [`Decoder`]: several small messages that arrive together
/// cost one read, a long payload is read straight into the message, and memory follows the
/// bytes that arrive. [`send`](Self::send) writes header and payload in one gathering write from
/// where they are, without copying, unless the socket takes only part of them; frames queued with
/// [`feed`](Self::feed) go out together in one write.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> msgsock::Result<()> {
/// use msgsock::tokio::AsyncConnection;
///
/// let (a, b) = tokio::net::UnixStream::pair()?;
/// let (mut a, mut b) = (AsyncConnection::new(a), AsyncConnection::new(b));
/// // Three messages, one system call.
/// for msg in [&b"one"[..], b"two", b"three"] {
///     a.feed(msg).await?;
/// }
/// a.flush().await?;
/// let mut buf = Vec::new();
/// for want in [&b"one"[..], b"two", b"three"] {
///     b.recv_into(&mut buf).await?;
///     assert_eq!(buf, want);
/// }
/// # Ok(())
/// # }
/// ```
pub struct AsyncConnection<S> {
    stream: S,
    reader: Reader,
    writer: Writer,
}

/// The receiving half of an [`AsyncConnection`], from [`into_split`](AsyncConnection::into_split).
pub struct AsyncRecvHalf<S> {
    stream: Arc<S>,
    reader: Reader,
}

/// The sending half of an [`AsyncConnection`], from [`into_split`](AsyncConnection::into_split).
pub struct AsyncSendHalf<S> {
    stream: Arc<S>,
    writer: Writer,
}

/// The receive side: the protocol core and the reads that feed it.
struct Reader {
    decoder: Decoder,
    /// Whether reads of a Unix stream take descriptors; see `Connection::set_receive_fds`.
    receive_fds: bool,
}

/// The send side: frames queued and not yet written.
struct Writer {
    /// Queued bytes are `queue[pos..]`.
    queue: Vec<u8>,
    pos: usize,
    high_water: usize,
    /// A write that failed while `recv` was pushing the queue out; reported by the next send.
    error: Option<io::Error>,
}

impl<S: AsyncStream> AsyncConnection<S> {
    /// Wraps a connected tokio stream.
    pub fn new(stream: S) -> AsyncConnection<S> {
        AsyncConnection {
            stream,
            reader: Reader::new(),
            writer: Writer::new(),
        }
    }

    /// Receives one message into a new `Vec`; `Ok(None)` when the peer closed cleanly between
    /// messages. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`recv_into`](Self::recv_into).
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>> {
        let mut buf = Vec::new();
        Ok(self.recv_into(&mut buf).await?.map(|_| buf))
    }

    /// Receives one message into `buf`, replacing its contents, and returns its length;
    /// `Ok(None)` when the peer closed cleanly between messages. Frames still queued for sending
    /// are written meanwhile, so a request queued by a cancelled `send` cannot wait forever for
    /// its reply.
    ///
    /// Cancel-safe: if the future is dropped, the bytes received so far stay in the connection
    /// and the next call returns the same message (`buf` may then have lost its contents).
    ///
    /// # Errors
    ///
    /// [`Error::FrameTooLarge`], [`Error::MalformedHeader`] and [`Error::UnexpectedEof`] as the
    /// blocking [`Connection::recv_into`](crate::Connection::recv_into), after which the
    /// connection returns [`Error::Broken`]; [`Error::Io`] from the socket.
    pub async fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        let (stream, reader, writer) = (&self.stream, &mut self.reader, &mut self.writer);
        reader
            .recv_into(stream, buf, None, |cx| {
                writer.push_in_background(stream, cx)
            })
            .await
    }

    /// Receives one message into a new `Vec`, with the descriptors that were sent with it
    /// (close-on-exec), in the order they were sent; `Ok(None)` when the peer closed cleanly
    /// between messages. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`recv_into_with_fds`](Self::recv_into_with_fds).
    pub async fn recv_with_fds(&mut self) -> Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
        crate::fd::recv_new_with_fds_async(async |buf, fds| self.recv_into_with_fds(buf, fds).await)
            .await
    }

    /// As [`recv_into`](Self::recv_into), and `fds` (its contents replaced) gets the descriptors
    /// sent with this message, close-on-exec (`MSG_CMSG_CLOEXEC`), as the blocking
    /// [`Connection::recv_into_with_fds`](crate::Connection::recv_into_with_fds) gives them:
    /// exactly those sent with this message, never another's, however the reads split the
    /// stream.
    ///
    /// Cancel-safe: every read of a Unix stream takes its control data, plain receives
    /// included, and the descriptors stay in the connection with the bytes they came with; the
    /// next call returns the same message with them (`buf` and `fds` may have lost their
    /// contents).
    ///
    /// # Errors
    ///
    /// - [`Error::FdsTruncated`] in place of a message that lost descriptors (`MSG_CTRUNC`, or
    ///   more than 253 attached to it): those that arrived are closed and its bytes dropped; the
    ///   next call returns the next message.
    /// - [`Error::FdsUnsupported`] on a TCP stream, and [`Error::FdsRefused`] on a connection
    ///   [set not to receive descriptors](Self::set_receive_fds), before any read.
    /// - As [`recv_into`](Self::recv_into) otherwise.
    pub async fn recv_into_with_fds(
        &mut self,
        buf: &mut Vec<u8>,
        fds: &mut Vec<OwnedFd>,
    ) -> Result<Option<usize>> {
        let (stream, reader, writer) = (&self.stream, &mut self.reader, &mut self.writer);
        reader
            .recv_into(stream, buf, Some(fds), |cx| {
                writer.push_in_background(stream, cx)
            })
            .await
    }

    /// Sends one message and waits until it is written.
    ///
    /// Frames queued earlier go first. Header and payload are written from where they are in one
    /// gathering write; only when the socket takes part of them is the rest copied into the
    /// queue. Cancel-safe as the [module](super) says: a dropped `send` queued the whole frame or
    /// none of it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from the socket, for example `BrokenPipe` when the peer has gone.
    pub async fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.writer.send(&self.stream, msg).await
    }

    /// Sends one message with the descriptors `fds` attached (`sendmsg(2)` with `SCM_RIGHTS`)
    /// and waits until it is written: the peer's `recv_with_fds` gets them with this message
    /// and no other, as the blocking
    /// [`Connection::send_with_fds`](crate::Connection::send_with_fds) sends them.
    ///
    /// Frames queued earlier are written first, in writes of their own; this frame then starts
    /// a `sendmsg(2)` of its own at its header, with the descriptors, which is what lets the
    /// receiver tell which message they belong to. Cancel-safe as [`send`](Self::send): a
    /// dropped `send_with_fds` either sent nothing, descriptors included, or sent the
    /// descriptors with the frame's first bytes and queued the rest of the frame whole.
    ///
    /// # Errors
    ///
    /// - [`Error::TooManyFds`] for more than 253 descriptors (Linux's `SCM_MAX_FD`), and
    ///   [`Error::FdsUnsupported`] on a TCP stream: both before anything is sent.
    /// - As [`send`](Self::send) otherwise.
    pub async fn send_with_fds(&mut self, msg: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        self.writer.send_with_fds(&self.stream, msg, fds).await
    }

    /// Queues one message without waiting for it to be written, unless the queue is above the
    /// [high-water mark](Self::set_high_water): then it first waits until the socket has taken
    /// the queue below it. [`flush`](Self::flush) (or the next [`send`](Self::send) or
    /// [`recv`](Self::recv)) writes what is queued, all of it in one system call where the socket
    /// takes it. The message is copied into the queue, except a message of 64 KiB or more fed
    /// into an empty queue: that one fills a write of its own, so it is written at once as far
    /// as the socket takes it without waiting, and only the rest is copied. Cancel-safe: a
    /// dropped `feed` queued the whole frame or none of it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from a write of the queue.
    pub async fn feed(&mut self, msg: &[u8]) -> Result<()> {
        self.writer.feed(&self.stream, msg).await
    }

    /// Writes every queued frame; returns once the socket has taken them all. Cancel-safe.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from the socket.
    pub async fn flush(&mut self) -> Result<()> {
        self.writer.flush(&self.stream).await
    }

    /// Splits the connection into a receiving and a sending half that can move into separate
    /// tasks. Bytes already received and frames already queued stay with their half.
    pub fn into_split(self) -> (AsyncRecvHalf<S>, AsyncSendHalf<S>) {
        let stream = Arc::new(self.stream);
        (
            AsyncRecvHalf {
                stream: Arc::clone(&stream),
                reader: self.reader,
            },
            AsyncSendHalf {
                stream,
                writer: self.writer,
            },
        )
    }
}

impl<S: AsyncStream> AsyncConnection<S> {
    /// Splits the connection into a receiving half and a [`QueuedSender`], whose `send` queues
    /// and returns while a writer task, spawned now on the current tokio runtime, writes
    /// whatever has queued in one system call. See [`QueuedSender`] for when that pays. Frames
    /// already queued go out first; the high-water mark carries over.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::spawn` does.
    pub fn into_split_queued(self) -> (AsyncRecvHalf<S>, QueuedSender) {
        let stream = Arc::new(self.stream);
        let queued = self.writer.queue[self.writer.pos..].to_vec();
        let sender = QueuedSender::spawn(Arc::clone(&stream), queued, self.writer.high_water);
        (
            AsyncRecvHalf {
                stream,
                reader: self.reader,
            },
            sender,
        )
    }
}

impl<S> AsyncConnection<S> {
    /// The largest message [`recv`](Self::recv) accepts; defaults to
    /// [`DEFAULT_MAX_MESSAGE_LEN`](crate::DEFAULT_MAX_MESSAGE_LEN).
    pub fn max_message_len(&self) -> u64 {
        self.reader.decoder.max_message_len()
    }

    /// Sets the largest message [`recv`](Self::recv) accepts, from the next length prefix on.
    pub fn set_max_message_len(&mut self, max: u64) -> &mut Self {
        self.reader.decoder.set_max_message_len(max);
        self
    }

    /// Sets whether this connection receives descriptors (the default), on a Unix stream: as
    /// [`Connection::set_receive_fds`](crate::Connection::set_receive_fds), reads without
    /// control data (`recv(2)`, as tokio's own reads) leave descriptors a peer sends to the
    /// kernel to close, and [`recv_with_fds`](Self::recv_with_fds) returns
    /// [`Error::FdsRefused`]. Set it before the peer sends descriptors.
    pub fn set_receive_fds(&mut self, receive: bool) -> &mut Self {
        self.reader.receive_fds = receive;
        self
    }

    /// Whether reads take descriptors: on a Unix stream as set by
    /// [`set_receive_fds`](Self::set_receive_fds), `true` by default; never on TCP.
    pub fn receives_fds(&self) -> bool
    where
        S: AsyncStream,
    {
        self.reader.receive_fds && self.stream.carries_fds()
    }

    /// Bytes queued by [`feed`](Self::feed) or a cancelled [`send`](Self::send) and not yet
    /// written.
    pub fn queued_len(&self) -> usize {
        self.writer.queued_len()
    }

    /// The queue length from which [`feed`](Self::feed) waits for the socket; defaults to
    /// [`DEFAULT_HIGH_WATER`].
    pub fn high_water(&self) -> usize {
        self.writer.high_water
    }

    /// Sets the queue length from which [`feed`](Self::feed) waits for the socket. A sender
    /// running ahead of its peer holds at most this much plus one message. Once written, the
    /// queue keeps up to twice this much memory (at least 64 KiB) for the next frames, so that
    /// steady feeding reuses one buffer; a longer one goes back. Takes effect at the next `feed`.
    pub fn set_high_water(&mut self, bytes: usize) -> &mut Self {
        self.writer.high_water = bytes;
        self
    }

    /// Bytes received but not yet handed out as messages, a partly received one included with
    /// its length prefix.
    pub fn buffered_len(&self) -> usize {
        self.reader.decoder.buffered_len()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }
}

impl<S: AsyncStream> AsyncRecvHalf<S> {
    /// As [`AsyncConnection::recv`]. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`AsyncConnection::recv_into`].
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>> {
        let mut buf = Vec::new();
        Ok(self.recv_into(&mut buf).await?.map(|_| buf))
    }

    /// As [`AsyncConnection::recv_into`]; the send half's queue is its own to write. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`AsyncConnection::recv_into`].
    pub async fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        self.reader
            .recv_into(&*self.stream, buf, None, |_| Poll::Ready(()))
            .await
    }

    /// As [`AsyncConnection::recv_with_fds`]. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`AsyncConnection::recv_into_with_fds`].
    pub async fn recv_with_fds(&mut self) -> Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
        crate::fd::recv_new_with_fds_async(async |buf, fds| self.recv_into_with_fds(buf, fds).await)
            .await
    }

    /// As [`AsyncConnection::recv_into_with_fds`]. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`AsyncConnection::recv_into_with_fds`].
    pub async fn recv_into_with_fds(
        &mut self,
        buf: &mut Vec<u8>,
        fds: &mut Vec<OwnedFd>,
    ) -> Result<Option<usize>> {
        self.reader
            .recv_into(&*self.stream, buf, Some(fds), |_| Poll::Ready(()))
            .await
    }

    /// Sets the largest message accepted, from the next length prefix on.
    pub fn set_max_message_len(&mut self, max: u64) -> &mut Self {
        self.reader.decoder.set_max_message_len(max);
        self
    }

    /// As [`AsyncConnection::set_receive_fds`].
    pub fn set_receive_fds(&mut self, receive: bool) -> &mut Self {
        self.reader.receive_fds = receive;
        self
    }

    /// As [`AsyncConnection::receives_fds`].
    pub fn receives_fds(&self) -> bool {
        self.reader.receive_fds && self.stream.carries_fds()
    }
}

impl<S: AsyncStream> AsyncSendHalf<S> {
    /// As [`AsyncConnection::send`]. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`AsyncConnection::send`].
    pub async fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.writer.send(&*self.stream, msg).await
    }

    /// As [`AsyncConnection::send_with_fds`]. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`AsyncConnection::send_with_fds`].
    pub async fn send_with_fds(&mut self, msg: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        self.writer.send_with_fds(&*self.stream, msg, fds).await
    }

    /// As [`AsyncConnection::feed`]. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`AsyncConnection::feed`].
    pub async fn feed(&mut self, msg: &[u8]) -> Result<()> {
        self.writer.feed(&*self.stream, msg).await
    }

    /// As [`AsyncConnection::flush`]. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`AsyncConnection::flush`].
    pub async fn flush(&mut self) -> Result<()> {
        self.writer.flush(&*self.stream).await
    }
}

thread_local! {
    /// The receive buffer of a connection that waits, for the next read of any connection on
    /// this thread: so that a waiting connection holds no buffer, and the next read of a
    /// streaming one neither allocates nor zeroes one. One per thread (the largest offered),
    /// whatever the number of connections.
    static SPARE: Cell<Option<Box<[u8]>>> = const { Cell::new(None) };
}

/// What a read into lent memory came to: its bytes decoded (`Some` when they made a message),
/// or no bytes (the peer's close, `WouldBlock`, an error), for the caller to act on.
enum Lent {
    Decoded(Option<usize>),
    Read(io::Result<usize>),
}

/// Makes `buf` this thread's spare receive buffer, unless the spare is larger.
fn keep_spare(buf: Box<[u8]>) {
    let kept = match SPARE.take() {
        Some(old) if old.len() > buf.len() => old,
        _ => buf,
    };
    SPARE.set(Some(kept));
}

impl Reader {
    fn new() -> Reader {
        let mut decoder = Decoder::new(DEFAULT_MAX_MESSAGE_LEN);
        // A read that drains the socket is followed by one that finds nothing (`WouldBlock`),
        // which hands the buffer over to the thread's spare (see `SPARE`).
        decoder.keep_buffer_when_drained();
        Reader {
            decoder,
            receive_fds: true,
        }
    }

    /// The receive loop; the message's descriptors into `fds` if given (the decoder closes
    /// them otherwise), and then [`Error::FdsUnsupported`] on a TCP stream before any read.
    /// `background` is polled while waiting for the socket to become readable, so that queued
    /// output makes progress meanwhile.
    async fn recv_into<S: AsyncStream>(
        &mut self,
        stream: &S,
        buf: &mut Vec<u8>,
        mut fds: Option<&mut Vec<OwnedFd>>,
        mut background: impl FnMut(&mut Context<'_>) -> Poll<()>,
    ) -> Result<Option<usize>> {
        if fds.is_some() {
            check_carries_fds(stream)?;
            if !self.receive_fds {
                return Err(Error::FdsRefused);
            }
        }
        // A message already buffered costs no poll of the socket or of `background`.
        if let Some(n) = self.decoder.decode_into(&[], buf, fds.as_deref_mut())? {
            return Ok(Some(n));
        }
        poll_fn(|cx| {
            let _ = background(cx);
            self.poll_recv(stream, cx, buf, fds.as_deref_mut())
        })
        .await
    }

    /// Reads while the socket has bytes, decoding after each read, until a message is whole;
    /// called when the decoder needs a read.
    fn poll_recv<S: AsyncStream>(
        &mut self,
        stream: &S,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
        mut fds: Option<&mut Vec<OwnedFd>>,
    ) -> Poll<Result<Option<usize>>> {
        loop {
            ready!(stream.poll_read_ready(cx))?;
            if self.decoder.wants_buffer() {
                if let Some(spare) = SPARE.take() {
                    self.decoder.give_buffer(spare);
                }
            }
            let read = if self.decoder.wants_buffer() {
                // Into the stack while the decoder holds no buffer: an idle connection holds
                // none, although tokio reports a new socket readable at its first poll whether
                // or not anything arrived, and a read that finds nothing allocates nothing.
                // The memory is left uninitialised: the read only writes it.
                let lent = lend(self.decoder.lent_len(), |spare| {
                    match self.try_read(stream, Some(spare)) {
                        Ok((1.., lent)) => self
                            .decoder
                            .decode_into(lent, buf, fds.as_deref_mut())
                            .map(Lent::Decoded),
                        other => Ok(Lent::Read(other.map(|(n, _)| n))),
                    }
                });
                match lent? {
                    Lent::Decoded(Some(n)) => return Poll::Ready(Ok(Some(n))),
                    Lent::Decoded(None) => continue,
                    Lent::Read(read) => read,
                }
            } else {
                self.try_read(stream, None).map(|(n, _)| n)
            };
            match read {
                Ok(0) => {
                    return Poll::Ready(self.decoder.eof().map(|()| None).map_err(Error::from))
                }
                Ok(_) => {
                    if let Some(n) = self.decoder.decode_into(&[], buf, fds.as_deref_mut())? {
                        return Poll::Ready(Ok(Some(n)));
                    }
                }
                // Readiness was cleared: the next poll registers for the next edge. The
                // connection waits, so its empty buffer is the thread's spare meanwhile.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Some(buf) = self.decoder.take_idle_buffer() {
                        keep_spare(buf);
                    }
                }
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
    }

    /// One read into the decoder's buffers (`spare` lent in place of its receive buffer, if
    /// given), with the descriptors that came with it on a Unix stream, and the bytes it put
    /// into `spare`; `Ok(0)` at the peer's close, `WouldBlock` once the socket has nothing.
    fn try_read<'l, S: AsyncStream>(
        &mut self,
        stream: &S,
        spare: Option<&'l mut [MaybeUninit<u8>]>,
    ) -> io::Result<(usize, &'l [u8])> {
        let (msg, room) = self.decoder.read_bufs_uninit(spare);
        let mut bufs = ReadBufs::new(msg, room);
        match stream.try_read_bufs(&mut bufs, self.receive_fds) {
            Ok((n, control)) => {
                let lent = bufs.lent();
                self.decoder.advance(n);
                self.decoder.attach_fds(control.fds, control.truncated);
                Ok((n, lent))
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::WouldBlock {
                    self.decoder.read_failed();
                }
                Err(e)
            }
        }
    }
}

impl Writer {
    fn new() -> Writer {
        Writer {
            queue: Vec::new(),
            pos: 0,
            high_water: DEFAULT_HIGH_WATER,
            error: None,
        }
    }

    fn queued_len(&self) -> usize {
        self.queue.len() - self.pos
    }

    /// An earlier write failure, once.
    fn take_error(&mut self) -> Result<()> {
        match self.error.take() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    async fn send<S: AsyncStream>(&mut self, stream: &S, msg: &[u8]) -> Result<()> {
        self.send_frame(stream, msg, &[]).await
    }

    async fn send_with_fds<S: AsyncStream>(
        &mut self,
        stream: &S,
        msg: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Result<()> {
        check_carries_fds(stream)?;
        check_fds(fds.len())?;
        self.send_frame(stream, msg, fds).await
    }

    /// Writes the queue, then the frame of `msg` from where it is, `fds` (if any) with its
    /// first write: so that write starts at the frame's header and holds no other frame's
    /// bytes, as the receiver's [`Decoder`] needs to give the descriptors to this message.
    async fn send_frame<S: AsyncStream>(
        &mut self,
        stream: &S,
        msg: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Result<()> {
        // Nothing of `msg` is queued until this is done: cancelling here sends none of it.
        self.flush(stream).await?;
        let header = Header::new(msg.len() as u64);
        let mut frame = PartFrame {
            writer: self,
            header,
            msg,
            fds,
            written: 0,
        };
        poll_fn(|cx| frame.poll_write(stream, cx)).await
    }

    async fn feed<S: AsyncStream>(&mut self, stream: &S, msg: &[u8]) -> Result<()> {
        self.take_error()?;
        if self.queued_len() > self.high_water {
            poll_fn(|cx| self.poll_flush_to(stream, cx, self.high_water)).await?;
        }
        // Synchronous from here: the whole frame is queued, or (cancelled above) none of it.
        let header = Header::new(msg.len() as u64);
        if self.queued_len() == 0 && msg.len() >= WRITE_THROUGH_LEN {
            // A frame this long is a write of its own anyway: what the socket takes now is not
            // copied, only the rest is queued.
            let bufs = [IoSlice::new(&header), IoSlice::new(msg)];
            match sys::retry_io(|| stream.try_write_vectored(&bufs)) {
                Ok(0) => {}
                Ok(written) => {
                    self.queue_rest(&header, msg, written);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
        if self.pos >= self.queued_len() {
            // Drop what is written once it outweighs the rest: a queue that never quite empties
            // would otherwise keep every byte ever fed. Copies at most what was written.
            self.queue.drain(..self.pos);
            self.pos = 0;
        }
        self.queue_rest(&header, msg, 0);
        Ok(())
    }

    /// Queues what is left of the frame of `msg` after `written` of its bytes went out.
    fn queue_rest(&mut self, header: &Header, msg: &[u8], written: usize) {
        let [a, b] = frame_rest(header, msg, written);
        self.queue.extend_from_slice(a);
        self.queue.extend_from_slice(b);
    }

    async fn flush<S: AsyncStream>(&mut self, stream: &S) -> Result<()> {
        self.take_error()?;
        poll_fn(|cx| self.poll_flush_to(stream, cx, 0)).await
    }

    /// Writes the queue until at most `target` bytes are left in it.
    fn poll_flush_to<S: AsyncStream>(
        &mut self,
        stream: &S,
        cx: &mut Context<'_>,
        target: usize,
    ) -> Poll<Result<()>> {
        while self.queued_len() > target {
            ready!(stream.poll_write_ready(cx))?;
            let queued = [IoSlice::new(&self.queue[self.pos..])];
            match sys::retry_io(|| stream.try_write_vectored(&queued)) {
                Ok(0) => return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into())),
                Ok(n) => self.pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
        if self.pos == self.queue.len() {
            self.pos = 0;
            if !keeps_queue_memory(self.queue.capacity(), self.high_water) {
                self.queue = Vec::new();
            } else {
                self.queue.clear();
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Pushes queued frames out while a receive waits; a failure is kept for the next send.
    fn push_in_background<S: AsyncStream>(&mut self, stream: &S, cx: &mut Context<'_>) -> Poll<()> {
        if self.queued_len() == 0 || self.error.is_some() {
            return Poll::Ready(());
        }
        match self.poll_flush_to(stream, cx, 0) {
            Poll::Ready(Err(Error::Io(e))) => {
                self.error = Some(e);
                Poll::Ready(())
            }
            Poll::Ready(_) => Poll::Ready(()),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The unwritten rest of the frame of `msg` after `written` of its bytes, as at most two buffers.
pub(super) fn frame_rest<'b>(header: &'b Header, msg: &'b [u8], written: usize) -> [&'b [u8]; 2] {
    if written < header.len() {
        [&header[written..], msg]
    } else {
        [&msg[written - header.len()..], &[]]
    }
}

/// A frame being written from the caller's buffers. If the `send` future is dropped after part
/// of it went out, the rest is copied into the queue, so the peer never sees half a frame
/// followed by another.
struct PartFrame<'a> {
    writer: &'a mut Writer,
    header: Header,
    msg: &'a [u8],
    /// Sent with the first write that takes any bytes (the kernel takes them with those
    /// bytes); the rest of the frame, queued or not, goes without them.
    fds: &'a [BorrowedFd<'a>],
    /// Bytes of header and payload written so far.
    written: usize,
}

impl PartFrame<'_> {
    fn total(&self) -> usize {
        self.header.len() + self.msg.len()
    }

    fn poll_write<S: AsyncStream>(&mut self, stream: &S, cx: &mut Context<'_>) -> Poll<Result<()>> {
        while self.written < self.total() {
            ready!(stream.poll_write_ready(cx))?;
            let [a, b] = frame_rest(&self.header, self.msg, self.written);
            let mut scratch = Scratch::default();
            // A small frame goes as one buffer, `send(2)` rather than a gathering write, as the
            // blocking connection sends it.
            let small = if b.is_empty() {
                None
            } else {
                scratch.frame(a, b)
            };
            let bufs = match small {
                Some(frame) => [IoSlice::new(frame), IoSlice::new(&[])],
                None => [IoSlice::new(a), IoSlice::new(b)],
            };
            let bufs = if bufs[1].is_empty() {
                &bufs[..1]
            } else {
                &bufs[..]
            };
            let sent = if self.written == 0 && !self.fds.is_empty() {
                stream.try_send_with_fds(bufs, self.fds)
            } else {
                sys::retry_io(|| stream.try_write_vectored(bufs))
            };
            match sent {
                Ok(0) => return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into())),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for PartFrame<'_> {
    fn drop(&mut self) {
        // Nothing written: none of the frame is queued. All written: nothing to do.
        if self.written == 0 || self.written == self.total() {
            return;
        }
        self.writer.queue_rest(&self.header, self.msg, self.written);
    }
}

impl<S: fmt::Debug> fmt::Debug for AsyncConnection<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncConnection")
            .field("stream", &self.stream)
            .field("buffered", &self.reader.decoder.buffered_len())
            .field("queued", &self.writer.queued_len())
            .finish()
    }
}

impl<S: fmt::Debug> fmt::Debug for AsyncRecvHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncRecvHalf")
            .field("stream", &self.stream)
            .field("buffered", &self.reader.decoder.buffered_len())
            .finish()
    }
}

impl<S: fmt::Debug> fmt::Debug for AsyncSendHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSendHalf")
            .field("stream", &self.stream)
            .field("queued", &self.writer.queued_len())
            .finish()
    }
}

impl<S: AsFd> AsFd for AsyncConnection<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

impl<S: AsRawFd> AsRawFd for AsyncConnection<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}
