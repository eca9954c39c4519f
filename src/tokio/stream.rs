//! [`AsyncStream`]: the tokio sockets an [`AsyncConnection`](super::AsyncConnection) runs over.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::AsFd;
use std::task::{Context, Poll};

use ::tokio::io::Interest;
use ::tokio::net::{TcpStream, UnixStream};

use crate::sys;

mod sealed {
    pub trait Sealed {}
}

/// A connected tokio stream socket, used through readiness: wait until it is readable or
/// writable, then read or write without blocking.
///
/// Implemented by tokio's [`UnixStream`] and [`TcpStream`]. Writes go through `sendmsg(2)` with
/// `MSG_NOSIGNAL` where the platform has it, so a vanished peer is an `EPIPE` error, never a
/// `SIGPIPE`. This trait is sealed.
pub trait AsyncStream: AsFd + Send + Sync + Unpin + fmt::Debug + sealed::Sealed + 'static {
    /// Polls until the socket may be readable.
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Polls until the socket may be writable.
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// One non-blocking `readv(2)`; `WouldBlock` clears the readiness.
    fn try_read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize>;
    /// One non-blocking gathering write; `WouldBlock` clears the readiness.
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
}

/// The tokio stream types, which differ only in name.
macro_rules! impl_async_stream {
    ($($ty:ty),*) => {$(
        impl sealed::Sealed for $ty {}

        impl AsyncStream for $ty {
            fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                <$ty>::poll_read_ready(self, cx)
            }
            fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                <$ty>::poll_write_ready(self, cx)
            }
            fn try_read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
                <$ty>::try_read_vectored(self, bufs)
            }
            fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                // tokio's own `try_write_vectored` is `writev(2)`, which can raise SIGPIPE.
                self.try_io(Interest::WRITABLE, || sys::send_vectored(self.as_fd(), bufs))
            }
        }
    )*};
}
impl_async_stream!(UnixStream, TcpStream);

/// A connected tokio stream of the transport an [`Endpoint`](crate::Endpoint) named: what
/// [`connect`](super::connect) and [`AsyncAnyListener::accept`](super::AsyncAnyListener::accept)
/// put inside an [`AsyncAnyConnection`](super::AsyncAnyConnection).
#[derive(Debug)]
#[non_exhaustive]
pub enum AsyncAnyStream {
    /// A Unix-domain stream socket.
    Unix(UnixStream),
    /// A TCP socket.
    Tcp(TcpStream),
}

/// Forwards a call to whichever stream is inside.
macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            AsyncAnyStream::Unix($s) => $e,
            AsyncAnyStream::Tcp($s) => $e,
        }
    };
}

impl sealed::Sealed for AsyncAnyStream {}

impl AsyncStream for AsyncAnyStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => AsyncStream::poll_read_ready(s, cx))
    }
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => AsyncStream::poll_write_ready(s, cx))
    }
    fn try_read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        each!(self, s => AsyncStream::try_read_vectored(s, bufs))
    }
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        each!(self, s => AsyncStream::try_write_vectored(s, bufs))
    }
}

impl AsFd for AsyncAnyStream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        each!(self, s => s.as_fd())
    }
}

impl std::os::fd::AsRawFd for AsyncAnyStream {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        each!(self, s => s.as_raw_fd())
    }
}
