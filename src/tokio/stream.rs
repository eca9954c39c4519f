//! [`AsyncStream`]: the tokio sockets an [`AsyncConnection`](super::AsyncConnection) runs over.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, BorrowedFd};
use std::task::{Context, Poll};

use ::tokio::io::Interest;
use ::tokio::net::{TcpStream, UnixStream};

use crate::error::{Error, Family, Result};
use crate::sys::{self, Control, ReadBufs};

mod sealed {
    use super::*;

    /// Keeps [`AsyncStream`](super::AsyncStream) implementable only here, and holds the calls
    /// that only the crate makes.
    pub trait Sealed {
        /// Whether the stream is a Unix-domain socket, which carries descriptors: known from its
        /// type (or, for `AsyncAnyStream`, its variant), with no system call.
        fn carries_fds(&self) -> bool;

        /// One non-blocking read into `bufs`, filled in order; on a Unix stream with `take_fds`
        /// a `recvmsg(2)` that takes the control data too (`sys::recv_bufs_with_fds`), so
        /// descriptors reach the decoder whichever receive call reads them, else a read with
        /// none (`sys::recv_bufs`). `WouldBlock` clears the readiness.
        fn try_read_bufs(
            &self,
            bufs: &mut ReadBufs<'_, '_>,
            take_fds: bool,
        ) -> io::Result<(usize, Control)>;

        /// One non-blocking `sendmsg(2)` of `bufs` with `fds` attached (`SCM_RIGHTS`), on a
        /// stream that [carries descriptors](Self::carries_fds). `WouldBlock` clears the
        /// readiness.
        fn try_send_with_fds(
            &self,
            bufs: &[IoSlice<'_>],
            fds: &[BorrowedFd<'_>],
        ) -> io::Result<usize>;
    }
}

/// [`Error::FdsUnsupported`] unless `stream` carries descriptors: checked before anything is
/// sent or read.
pub(super) fn check_carries_fds<S: AsyncStream>(stream: &S) -> Result<()> {
    if !stream.carries_fds() {
        return Err(Error::FdsUnsupported {
            family: Family::Inet,
        });
    }
    Ok(())
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

/// The tokio stream types, which differ only in name: the readiness calls and the writes.
macro_rules! impl_async_stream {
    ($($ty:ty),*) => {$(
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
                // tokio's own `try_write_vectored` is `writev(2)`, which can raise SIGPIPE. One
                // buffer needs no gathering: `send(2)`, lighter in the kernel than `sendmsg(2)`.
                self.try_io(Interest::WRITABLE, || match bufs {
                    [one] => sys::send(self.as_fd(), one),
                    _ => sys::send_vectored(self.as_fd(), bufs),
                })
            }
        }
    )*};
}
impl_async_stream!(UnixStream, TcpStream);

impl sealed::Sealed for UnixStream {
    fn carries_fds(&self) -> bool {
        true
    }
    fn try_read_bufs(
        &self,
        bufs: &mut ReadBufs<'_, '_>,
        take_fds: bool,
    ) -> io::Result<(usize, Control)> {
        if !take_fds {
            let n = self.try_io(Interest::READABLE, || {
                sys::recv_bufs(self.as_fd(), bufs, false)
            })?;
            return Ok((n, Control::default()));
        }
        self.try_io(Interest::READABLE, || {
            sys::recv_bufs_with_fds(self.as_fd(), bufs, true)
        })
    }
    fn try_send_with_fds(&self, bufs: &[IoSlice<'_>], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        self.try_io(Interest::WRITABLE, || {
            sys::send_with_fds(self.as_fd(), bufs, fds, None, true)
        })
    }
}

impl sealed::Sealed for TcpStream {
    fn carries_fds(&self) -> bool {
        false
    }
    fn try_read_bufs(
        &self,
        bufs: &mut ReadBufs<'_, '_>,
        _take_fds: bool,
    ) -> io::Result<(usize, Control)> {
        // `recv(2)` into one buffer, `readv(2)` into two: the socket is non-blocking, so either
        // fails with `WouldBlock` instead of waiting, and `try_io` clears the readiness then.
        let n = self.try_io(Interest::READABLE, || {
            sys::recv_bufs(self.as_fd(), bufs, false)
        })?;
        Ok((n, Control::default()))
    }
    fn try_send_with_fds(
        &self,
        _bufs: &[IoSlice<'_>],
        _fds: &[BorrowedFd<'_>],
    ) -> io::Result<usize> {
        // Callers check `carries_fds` first; sending the bytes without the descriptors would
        // lose them silently.
        Err(io::ErrorKind::Unsupported.into())
    }
}

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

impl sealed::Sealed for AsyncAnyStream {
    fn carries_fds(&self) -> bool {
        matches!(self, AsyncAnyStream::Unix(_))
    }
    fn try_read_bufs(
        &self,
        bufs: &mut ReadBufs<'_, '_>,
        take_fds: bool,
    ) -> io::Result<(usize, Control)> {
        each!(self, s => sealed::Sealed::try_read_bufs(s, bufs, take_fds))
    }
    fn try_send_with_fds(&self, bufs: &[IoSlice<'_>], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        each!(self, s => sealed::Sealed::try_send_with_fds(s, bufs, fds))
    }
}

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
    fn as_fd(&self) -> BorrowedFd<'_> {
        each!(self, s => s.as_fd())
    }
}

impl std::os::fd::AsRawFd for AsyncAnyStream {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        each!(self, s => s.as_raw_fd())
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::task::{Context, Poll, Waker};

    use super::sealed::Sealed;
    use super::*;
    use crate::frame::Header;
    use crate::proto::{Room, SMALL_FRAME_MAX};
    use crate::tokio::AsyncConnection;

    /// Whether tokio still holds the socket readable: `Ready` without waiting.
    fn still_readable(s: &impl AsyncStream) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        matches!(s.poll_read_ready(&mut cx), Poll::Ready(Ok(())))
    }

    fn runtime() -> ::tokio::runtime::Runtime {
        ::tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap()
    }

    /// A Unix stream read stops after the bytes that came with descriptors, so a read that is
    /// short has not always drained the socket: the next message is still there, and the
    /// socket must stay readable for it (a receive loop that cleared the readiness after every
    /// short read would leave it waiting for an event that never comes).
    #[test]
    fn a_short_read_with_descriptors_keeps_readiness() {
        runtime().block_on(async {
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            let a = UnixStream::from_std(a).unwrap();
            let (pipe, _w) = std::io::pipe().unwrap();
            let fds = [pipe.as_fd()];
            sys::send_with_fds(b.as_fd(), &[IoSlice::new(b"first")], &fds, None, false).unwrap();
            sys::send_with_fds(b.as_fd(), &[IoSlice::new(b"second")], &fds, None, false).unwrap();
            std::future::poll_fn(|cx| a.poll_read_ready(cx))
                .await
                .unwrap();
            let mut buf = [0u8; 64];
            let mut read = || {
                let mut bufs = ReadBufs::new(&mut [], Room::Own(&mut buf));
                let (n, control) = a.try_read_bufs(&mut bufs, true).unwrap();
                (buf[..n].to_vec(), control.fds.len())
            };
            assert_eq!(read(), (b"first".to_vec(), 1));
            assert!(still_readable(&a), "the second message is still there");
            assert_eq!(read(), (b"second".to_vec(), 1));
        });
    }

    /// One write call a connection made: each is one system call, `send(2)` for one buffer
    /// without descriptors, `sendmsg(2)` otherwise.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Write {
        bufs: usize,
        fds: usize,
        sent: std::result::Result<usize, io::ErrorKind>,
    }

    /// A Unix stream that records every write a connection makes on it, as the blocking
    /// connection's perf tests count theirs (`src/conn/perf_tests.rs`), and whether each read
    /// took control data.
    #[derive(Debug)]
    struct Counting {
        inner: UnixStream,
        writes: std::sync::Mutex<Vec<Write>>,
        reads: std::sync::Mutex<Vec<bool>>,
    }

    impl Counting {
        fn new(inner: UnixStream) -> Self {
            Counting {
                inner,
                writes: std::sync::Mutex::default(),
                reads: std::sync::Mutex::default(),
            }
        }

        fn record(&self, bufs: usize, fds: usize, sent: io::Result<usize>) -> io::Result<usize> {
            let write = Write {
                bufs,
                fds,
                sent: sent.as_ref().copied().map_err(io::Error::kind),
            };
            self.writes.lock().unwrap().push(write);
            sent
        }

        fn take_writes(&self) -> Vec<Write> {
            std::mem::take(&mut self.writes.lock().unwrap())
        }
    }

    impl AsFd for Counting {
        fn as_fd(&self) -> BorrowedFd<'_> {
            self.inner.as_fd()
        }
    }

    impl Sealed for Counting {
        fn carries_fds(&self) -> bool {
            true
        }
        fn try_read_bufs(
            &self,
            bufs: &mut ReadBufs<'_, '_>,
            take_fds: bool,
        ) -> io::Result<(usize, Control)> {
            self.reads.lock().unwrap().push(take_fds);
            self.inner.try_read_bufs(bufs, take_fds)
        }
        fn try_send_with_fds(
            &self,
            bufs: &[IoSlice<'_>],
            fds: &[BorrowedFd<'_>],
        ) -> io::Result<usize> {
            let sent = self.inner.try_send_with_fds(bufs, fds);
            self.record(bufs.len(), fds.len(), sent)
        }
    }

    impl AsyncStream for Counting {
        fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            AsyncStream::poll_read_ready(&self.inner, cx)
        }
        fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            AsyncStream::poll_write_ready(&self.inner, cx)
        }
        fn try_read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
            AsyncStream::try_read_vectored(&self.inner, bufs)
        }
        fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let sent = AsyncStream::try_write_vectored(&self.inner, bufs);
            self.record(bufs.len(), 0, sent)
        }
    }

    /// A frame of up to `SMALL_FRAME_MAX` bytes, header included, leaves an async `send` (or
    /// `send_with_fds`) as one write of one buffer, `send(2)` (with descriptors the one
    /// `sendmsg(2)` they need), as the blocking connection sends it
    /// (`a_small_message_is_one_write`); a longer one is one `sendmsg(2)` of header and payload
    /// where they are. Every frame arrives intact.
    #[test]
    fn a_small_async_frame_is_one_send() {
        let header = Header::new(0).len();
        let small = SMALL_FRAME_MAX - header;
        // Payload lengths, and the buffers their one write takes: frames of 4, 5, 68, 2047
        // and 2048 bytes are small; 2049 bytes and payloads of 2047 and 2048 are not.
        let cases = [
            (0, 1),
            (1, 1),
            (64, 1),
            (small - 1, 1),
            (small, 1),
            (small + 1, 2),
            (2047, 2),
            (2048, 2),
        ];
        runtime().block_on(async {
            let (pipe, _w) = std::io::pipe().unwrap();
            for (len, bufs) in cases {
                for fds in [&[][..], &[pipe.as_fd()][..]] {
                    let (a, b) = UnixStream::pair().unwrap();
                    let mut a = AsyncConnection::new(Counting::new(a));
                    let mut b = AsyncConnection::new(b);
                    let msg: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                    if fds.is_empty() {
                        a.send(&msg).await.unwrap();
                    } else {
                        a.send_with_fds(&msg, fds).await.unwrap();
                    }
                    let one = Write {
                        bufs,
                        fds: fds.len(),
                        sent: Ok(header + len),
                    };
                    assert_eq!(
                        a.get_ref().take_writes(),
                        [one],
                        "a {len}-byte message with {} descriptors",
                        fds.len()
                    );
                    let (got, got_fds) = b.recv_with_fds().await.unwrap().unwrap();
                    assert!(got == msg, "a {len}-byte message arrives intact");
                    assert_eq!(got_fds.len(), fds.len());
                }
            }
        });
    }

    /// An async Unix connection reads with control data unless it is set not to receive
    /// descriptors, as the blocking one (`reads_take_control_data_unless_descriptors_are_refused`).
    #[test]
    fn async_reads_take_control_data_unless_descriptors_are_refused() {
        runtime().block_on(async {
            for receive in [true, false] {
                let (a, b) = UnixStream::pair().unwrap();
                let mut a = AsyncConnection::new(a);
                let mut b = AsyncConnection::new(Counting::new(b));
                b.set_receive_fds(receive);
                for i in 0..10u8 {
                    a.send(&[i; 64]).await.unwrap();
                    assert_eq!(b.recv().await.unwrap(), Some(vec![i; 64]));
                }
                let reads = std::mem::take(&mut *b.get_ref().reads.lock().unwrap());
                // A read per message, and those that found nothing (`WouldBlock`).
                assert!(reads.len() >= 10, "{} reads", reads.len());
                assert!(reads.iter().all(|&fds| fds == receive), "{reads:?}");
            }
        });
    }
}
