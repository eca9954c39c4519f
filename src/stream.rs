//! The byte streams a [`Connection`](crate::Connection) runs over.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::time::Duration;
use std::{fmt, io};

pub(crate) mod sealed {
    /// Keeps [`Stream`](super::Stream) implementable only here, so methods can be added.
    pub trait Sealed {
        /// Whether the stream is a Unix-domain socket, which carries descriptors: known from its
        /// type (or, for `AnyStream`, its variant), with no system call.
        fn carries_fds(&self) -> bool;

        /// How a connection reads a Unix stream: `recvmsg(2)` into `bufs` with the control data
        /// (see `sys::recv_bufs_with_fds`). A method, so that a test's wrapper can count it.
        fn recv_vectored_with_fds(
            &mut self,
            bufs: &mut crate::sys::ReadBufs<'_, '_>,
            nowait: bool,
        ) -> std::io::Result<(usize, crate::sys::Control)>
        where
            Self: std::os::fd::AsFd,
        {
            crate::sys::recv_bufs_with_fds(self.as_fd(), bufs, nowait)
        }

        /// How a connection reads a TCP stream: one `recv(2)`, `readv(2)` or (`nowait`, into two
        /// buffers) `recvmsg(2)` into `bufs` (see `sys::recv_bufs`). A method for the same reason.
        fn recv_bufs(
            &mut self,
            bufs: &mut crate::sys::ReadBufs<'_, '_>,
            nowait: bool,
        ) -> std::io::Result<usize>
        where
            Self: std::os::fd::AsFd,
        {
            crate::sys::recv_bufs(self.as_fd(), bufs, nowait)
        }
    }
}

/// A connected stream socket: what a [`Connection`](crate::Connection) frames messages over.
///
/// Implemented by [`UnixStream`](crate::UnixStream), [`TcpStream`](crate::TcpStream) and
/// [`AnyStream`](crate::AnyStream), for code generic over them; each has the same calls as
/// inherent methods, so a user of one type needs no trait import. Their `Write` never raises
/// `SIGPIPE`: a write to a vanished peer is an `EPIPE` error. This trait is sealed.
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

/// The trait impls of a newtype `$name(std type)` over a std stream, identical for Unix and TCP:
/// `Read`; `Write` through `send(2)` with `MSG_NOSIGNAL`; [`Stream`] forwarding to the type's
/// inherent methods; the fd traits and conversions; std's `Debug` (fd and addresses). The
/// inherent methods are written in each type's own file.
macro_rules! stream_traits {
    ($name:ident($inner:ty), carries_fds: $fds:literal) => {
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

        impl crate::stream::sealed::Sealed for $name {
            fn carries_fds(&self) -> bool {
                $fds
            }
        }

        impl crate::stream::Stream for $name {
            fn try_clone(&self) -> std::io::Result<Self> {
                $name::try_clone(self)
            }
            fn shutdown(&self, how: std::net::Shutdown) -> std::io::Result<()> {
                $name::shutdown(self, how)
            }
            fn set_read_timeout(&self, t: Option<std::time::Duration>) -> std::io::Result<()> {
                $name::set_read_timeout(self, t)
            }
            fn set_write_timeout(&self, t: Option<std::time::Duration>) -> std::io::Result<()> {
                $name::set_write_timeout(self, t)
            }
            fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                $name::read_timeout(self)
            }
            fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                $name::write_timeout(self)
            }
            fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
                $name::set_nonblocking(self, nonblocking)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                // std's Debug shows the fd and both addresses, under the same type name.
                std::fmt::Debug::fmt(&self.0, f)
            }
        }

        impl From<$inner> for $name {
            /// Wraps a std stream as it is (options such as `TCP_NODELAY` untouched).
            fn from(s: $inner) -> Self {
                $name(s)
            }
        }

        impl std::os::fd::AsFd for $name {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.0.as_fd()
            }
        }

        impl From<std::os::fd::OwnedFd> for $name {
            /// Adopts a connected socket of this family, as it is.
            fn from(fd: std::os::fd::OwnedFd) -> Self {
                $name(<$inner>::from(fd))
            }
        }

        impl From<$name> for std::os::fd::OwnedFd {
            fn from(s: $name) -> std::os::fd::OwnedFd {
                s.0.into()
            }
        }

        crate::fd::raw_fd_traits!($name);
    };
}
pub(crate) use stream_traits;
