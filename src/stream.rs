//! The byte streams a [`Connection`](crate::Connection) runs over.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::time::Duration;
use std::{fmt, io};

pub(crate) mod sealed {
    /// Keeps [`Stream`](super::Stream) implementable only here, so methods can be added.
    pub trait Sealed {}
}

/// A connected stream socket: what a [`Connection`](crate::Connection) frames messages over.
///
/// Implemented by [`UnixStream`](crate::UnixStream), [`TcpStream`](crate::TcpStream) and
/// [`AnyStream`](crate::AnyStream). Their `Write` never raises `SIGPIPE`: a write to a vanished
/// peer is an `EPIPE` error. This trait is sealed.
pub trait Stream: Read + Write + AsFd + Send + Sized + fmt::Debug + sealed::Sealed {
    /// A second handle to the same socket (`dup(2)`).
    fn try_clone(&self) -> io::Result<Self>;
    /// Shuts down the read, write, or both halves (`shutdown(2)`).
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
    /// Sets the read timeout (`SO_RCVTIMEO`); `None` blocks forever.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Sets the write timeout (`SO_SNDTIMEO`); `None` blocks forever.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// The read timeout.
    fn read_timeout(&self) -> io::Result<Option<Duration>>;
    /// The write timeout.
    fn write_timeout(&self) -> io::Result<Option<Duration>>;
    /// Moves the socket into or out of non-blocking mode (`O_NONBLOCK`).
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()>;
}

/// Defines a newtype over a std stream whose writes go through `send(2)` with `MSG_NOSIGNAL`, with
/// the fd traits and [`Stream`]. Unix and TCP streams differ only in the wrapped type.
macro_rules! socket_stream {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(pub(crate) $inner);

        impl $name {
            /// The wrapped std stream.
            pub fn get_ref(&self) -> &$inner {
                &self.0
            }

            /// The wrapped std stream. Writing through it directly can raise `SIGPIPE`.
            pub fn into_inner(self) -> $inner {
                self.0
            }
        }

        impl From<$inner> for $name {
            fn from(s: $inner) -> Self {
                $name(s)
            }
        }

        impl std::io::Read for $name {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0.read(buf)
            }
            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                self.0.read_vectored(bufs)
            }
        }

        impl std::io::Write for $name {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                crate::sys::send(std::os::fd::AsFd::as_fd(&self.0), buf)
            }
            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                crate::sys::send_vectored(std::os::fd::AsFd::as_fd(&self.0), bufs)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl crate::stream::sealed::Sealed for $name {}

        impl crate::stream::Stream for $name {
            fn try_clone(&self) -> std::io::Result<Self> {
                self.0.try_clone().map($name)
            }
            fn shutdown(&self, how: std::net::Shutdown) -> std::io::Result<()> {
                self.0.shutdown(how)
            }
            fn set_read_timeout(&self, t: Option<std::time::Duration>) -> std::io::Result<()> {
                self.0.set_read_timeout(t)
            }
            fn set_write_timeout(&self, t: Option<std::time::Duration>) -> std::io::Result<()> {
                self.0.set_write_timeout(t)
            }
            fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                self.0.read_timeout()
            }
            fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                self.0.write_timeout()
            }
            fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
                self.0.set_nonblocking(nonblocking)
            }
        }

        impl std::os::fd::AsFd for $name {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.0.as_fd()
            }
        }

        impl std::os::fd::AsRawFd for $name {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.0.as_raw_fd()
            }
        }

        impl From<$name> for std::os::fd::OwnedFd {
            fn from(s: $name) -> std::os::fd::OwnedFd {
                s.0.into()
            }
        }
    };
}
pub(crate) use socket_stream;
