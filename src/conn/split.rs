//! [`RecvHalf`] and [`SendHalf`]: a connection split so that its types say who receives and who
//! sends.

use std::fmt;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use super::write::Link;
use super::Connection;
use crate::error::Result;
use crate::stream::Stream;

/// The receiving half of a [`Connection`], from [`Connection::split`]: it can only receive.
#[derive(Debug)]
pub struct RecvHalf<S> {
    conn: Connection<S>,
}

impl<S: Stream> RecvHalf<S> {
    pub(super) fn new(conn: Connection<S>) -> Self {
        RecvHalf { conn }
    }

    /// As [`Connection::recv`].
    ///
    /// # Errors
    ///
    /// As [`Connection::recv_into`].
    pub fn recv(&mut self) -> Result<Option<Vec<u8>>> {
        self.conn.recv()
    }

    /// As [`Connection::recv_into`].
    ///
    /// # Errors
    ///
    /// As [`Connection::recv_into`].
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        self.conn.recv_into(buf)
    }

    /// As [`Connection::recv_with_fds`].
    ///
    /// # Errors
    ///
    /// As [`Connection::recv_into_with_fds`].
    pub fn recv_with_fds(&mut self) -> Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
        self.conn.recv_with_fds()
    }

    /// As [`Connection::recv_into_with_fds`].
    ///
    /// # Errors
    ///
    /// As [`Connection::recv_into_with_fds`].
    pub fn recv_into_with_fds(
        &mut self,
        buf: &mut Vec<u8>,
        fds: &mut Vec<OwnedFd>,
    ) -> Result<Option<usize>> {
        self.conn.recv_into_with_fds(buf, fds)
    }

    /// As [`Connection::max_message_len`].
    pub fn max_message_len(&self) -> u64 {
        self.conn.max_message_len()
    }

    /// As [`Connection::set_max_message_len`].
    pub fn set_max_message_len(&mut self, max: u64) -> &mut Self {
        self.conn.set_max_message_len(max);
        self
    }

    /// As [`Connection::set_spin`].
    pub fn set_spin(&mut self, budget: Option<Duration>) -> &mut Self {
        self.conn.set_spin(budget);
        self
    }

    /// As [`Connection::set_message_timeout`], for this half's receives.
    pub fn set_message_timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        self.conn.set_message_timeout(timeout);
        self
    }

    /// As [`Connection::message_timeout`].
    pub fn message_timeout(&self) -> Option<Duration> {
        self.conn.message_timeout()
    }

    /// As [`Connection::set_receive_fds`].
    pub fn set_receive_fds(&mut self, receive: bool) -> &mut Self {
        self.conn.set_receive_fds(receive);
        self
    }

    /// As [`Connection::receives_fds`].
    pub fn receives_fds(&self) -> bool {
        self.conn.receives_fds()
    }

    /// As [`Connection::set_read_timeout`].
    ///
    /// # Errors
    ///
    /// As [`Connection::set_read_timeout`].
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        self.conn.set_read_timeout(timeout)
    }

    /// As [`Connection::read_timeout`].
    ///
    /// # Errors
    ///
    /// As [`Connection::read_timeout`].
    pub fn read_timeout(&self) -> Result<Option<Duration>> {
        self.conn.read_timeout()
    }

    /// Shuts down the reading direction (`shutdown(2)` with `SHUT_RD`).
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `shutdown(2)`.
    pub fn shutdown(&self) -> Result<()> {
        self.conn.shutdown(Shutdown::Read)
    }
}

impl<S> RecvHalf<S> {
    /// The underlying stream, for its addresses and options.
    pub fn get_ref(&self) -> &S {
        self.conn.get_ref()
    }

    /// As [`Connection::buffered_len`].
    pub fn buffered_len(&self) -> usize {
        self.conn.buffered_len()
    }
}

/// The sending half of a [`Connection`], from [`Connection::split`]: it can only send.
///
/// [`try_clone`](Self::try_clone) gives more senders for other threads. All of them, and any
/// [`Connection::try_clone`] made before the split, share one send lock and one queue, so their
/// frames go out whole, one after another.
pub struct SendHalf<S> {
    link: Link<S>,
}

impl<S: Stream> SendHalf<S> {
    pub(super) fn new(link: Link<S>) -> Self {
        SendHalf { link }
    }

    /// As [`Connection::send`].
    ///
    /// # Errors
    ///
    /// As [`Connection::send`].
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.link.send(msg)
    }

    /// As [`Connection::send_batch`].
    ///
    /// # Errors
    ///
    /// As [`Connection::send_batch`].
    pub fn send_batch<M: AsRef<[u8]>>(&mut self, msgs: &[M]) -> Result<()> {
        self.link.send_batch(msgs)
    }

    /// As [`Connection::send_with_fds`].
    ///
    /// # Errors
    ///
    /// As [`Connection::send_with_fds`].
    pub fn send_with_fds(&mut self, msg: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        self.link.send_with_fds(msg, fds)
    }

    /// As [`Connection::flush`].
    ///
    /// # Errors
    ///
    /// As [`Connection::flush`].
    pub fn flush(&mut self) -> Result<()> {
        self.link.flush()
    }

    /// As [`Connection::set_message_timeout`], for this half's sends.
    pub fn set_message_timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        self.link.message_timeout = timeout.map(Box::new);
        self
    }

    /// As [`Connection::message_timeout`].
    pub fn message_timeout(&self) -> Option<Duration> {
        self.link.message_timeout.as_deref().copied()
    }

    /// As [`Connection::pending_len`].
    pub fn pending_len(&self) -> usize {
        self.link.pending_len()
    }

    /// Another sender on the same connection (`dup(2)`), sharing this one's send lock and queue.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) if `dup(2)` fails.
    pub fn try_clone(&self) -> Result<SendHalf<S>> {
        Ok(SendHalf::new(self.link.try_clone()?))
    }

    /// As [`Connection::set_write_timeout`].
    ///
    /// # Errors
    ///
    /// As [`Connection::set_write_timeout`].
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        self.link.set_write_timeout(timeout)
    }

    /// As [`Connection::write_timeout`].
    ///
    /// # Errors
    ///
    /// As [`Connection::write_timeout`].
    pub fn write_timeout(&self) -> Result<Option<Duration>> {
        self.link.write_timeout()
    }

    /// Shuts down the writing direction (`shutdown(2)` with `SHUT_WR`): the peer's `recv` sees a
    /// clean close after the messages already sent. A queued rest of a frame
    /// ([`pending_len`](Self::pending_len)) is not written: [`flush`](Self::flush) first.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `shutdown(2)`.
    pub fn shutdown(&self) -> Result<()> {
        Ok(self.link.stream.shutdown(Shutdown::Write)?)
    }
}

impl<S> SendHalf<S> {
    /// The underlying stream, for its addresses and options.
    pub fn get_ref(&self) -> &S {
        &self.link.stream
    }
}

// By hand: it shows the stream and the send state, not the `Link` that holds them.
impl<S: fmt::Debug> fmt::Debug for SendHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendHalf")
            .field("stream", &self.link.stream)
            .field("tx", &self.link.tx)
            .finish()
    }
}

impl<S: AsFd> AsFd for RecvHalf<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.conn.as_fd()
    }
}

impl<S: AsRawFd> AsRawFd for RecvHalf<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.conn.as_raw_fd()
    }
}

impl<S: AsFd> AsFd for SendHalf<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.link.stream.as_fd()
    }
}

impl<S: AsRawFd> AsRawFd for SendHalf<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.link.stream.as_raw_fd()
    }
}
