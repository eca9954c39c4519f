//! Unix `SOCK_SEQPACKET` on tokio: [`AsyncSeqpacketListener`] and [`AsyncSeqpacket`].
//!
//! tokio has no SEQPACKET type, so each holds the blocking socket, which makes every call, and a
//! second descriptor of it registered with tokio as a Unix stream (tokio asks the socket nothing
//! of its type) that says when it is ready, as [`AsyncDatagram`](super::AsyncDatagram) does. The
//! limits, the truncation report and the empty-message-or-end-of-file rule are the blocking
//! type's, and so are the socket-file rules and the abstract listener's uid check.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use ::tokio::io::Interest;
use ::tokio::net::unix::SocketAddr;
use ::tokio::net::UnixListener as TokioUnixListener;

use super::ready::Readiness;
use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::unix::{UnixSeqpacket, UnixSeqpacketListener};

/// An async listening Unix `SOCK_SEQPACKET` socket: the blocking [`UnixSeqpacketListener`] on
/// tokio. `accept` is cancel-safe.
pub struct AsyncSeqpacketListener {
    // Field order is drop order: the tokio copy closes first, then the guard removes the file.
    inner: TokioUnixListener,
    guard: UnixSeqpacketListener,
}

impl AsyncSeqpacketListener {
    /// Binds at `path`, as [`UnixSeqpacketListener::bind`]. Call it inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// As [`UnixSeqpacketListener::bind`]; [`Error::Io`](crate::Error::Io) without a runtime.
    pub fn bind<P: AsRef<Path>>(path: P) -> Result<AsyncSeqpacketListener> {
        AsyncSeqpacketListener::from_blocking(UnixSeqpacketListener::bind(path)?)
    }

    /// Serves a bound blocking listener on tokio. The blocking listener is kept, unused, for its
    /// uid check and so that its file is removed (if still its own) when this one is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `dup(2)` or `fcntl(2)`, or without a runtime.
    pub fn from_blocking(listener: UnixSeqpacketListener) -> Result<AsyncSeqpacketListener> {
        super::in_runtime()?;
        let std = std::os::unix::net::UnixListener::from(listener.as_fd().try_clone_to_owned()?);
        std.set_nonblocking(true)?;
        Ok(AsyncSeqpacketListener {
            inner: TokioUnixListener::from_std(std)?,
            guard: listener,
        })
    }

    /// Accepts a connection (`accept(2)`), returning it and the peer's address. A peer an
    /// abstract listener does not admit is closed unseen. Cancel-safe.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `accept(2)`, for example `EMFILE`.
    pub async fn accept(&self) -> Result<(AsyncSeqpacket, SocketAddr)> {
        loop {
            let (socket, addr) = self.inner.accept().await?;
            if self.guard.admits(&socket) {
                let socket = OwnedFd::from(socket.into_std()?);
                let socket = AsyncSeqpacket::from_blocking(UnixSeqpacket::from(socket))?;
                return Ok((socket, addr));
            }
        }
    }

    /// The path the socket is bound at; empty for an abstract name.
    pub fn path(&self) -> &Path {
        self.guard.path()
    }

    /// The bound endpoint, `unixpacket:PATH` or `unixpacket:@NAME`.
    ///
    /// # Errors
    ///
    /// As [`UnixSeqpacketListener::local_endpoint`].
    pub fn local_endpoint(&self) -> Result<Endpoint> {
        self.guard.local_endpoint()
    }
}

impl fmt::Debug for AsyncSeqpacketListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSeqpacketListener")
            .field("fd", &self.inner.as_raw_fd())
            .field("path", &self.path())
            .finish()
    }
}

impl AsFd for AsyncSeqpacketListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for AsyncSeqpacketListener {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// A connected Unix `SOCK_SEQPACKET` socket on tokio: one message per packet, `None` once the
/// peer closed, an empty message told from that.
///
/// Every call is the blocking [`UnixSeqpacket`]'s, made once the socket is ready, and
/// cancel-safe: a packet is sent or taken whole, or not at all.
///
/// # Examples
///
/// ```
/// # #[cfg(target_os = "linux")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> msgsock::Result<()> {
/// use msgsock::tokio::AsyncSeqpacket;
///
/// let (a, b) = AsyncSeqpacket::pair()?;
/// a.send(b"").await?;
/// assert_eq!(b.recv().await?, Some(Vec::new()));
/// drop(a);
/// assert_eq!(b.recv().await?, None);
/// # Ok(())
/// # }
/// # #[cfg(not(target_os = "linux"))] fn main() {}
/// ```
pub struct AsyncSeqpacket {
    /// The blocking socket, whose calls do the work.
    inner: UnixSeqpacket,
    /// A second descriptor of the same socket, registered with tokio for its readiness.
    ready: Readiness,
}

impl AsyncSeqpacket {
    /// Serves a connected blocking socket on tokio; it is put into non-blocking mode.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `dup(2)` or `fcntl(2)`, or without a runtime.
    pub fn from_blocking(socket: UnixSeqpacket) -> Result<AsyncSeqpacket> {
        // The descriptors share one open file, so its O_NONBLOCK is both's.
        let ready = Readiness::seqpacket(socket.as_fd().try_clone_to_owned()?)?;
        Ok(AsyncSeqpacket {
            inner: socket,
            ready,
        })
    }

    /// Runs `op` on the blocking socket once it is ready for `interest`, as
    /// [`Readiness::io`]: one call sends or takes a packet whole, or nothing.
    async fn io<T>(
        &self,
        interest: Interest,
        mut op: impl FnMut(&UnixSeqpacket) -> Result<T>,
    ) -> Result<T> {
        self.ready.io(interest, || op(&self.inner)).await
    }

    /// A connected pair (`socketpair(2)`). Call it inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// As [`UnixSeqpacket::pair`]; [`Error::Io`](crate::Error::Io) without a runtime.
    pub fn pair() -> Result<(AsyncSeqpacket, AsyncSeqpacket)> {
        let (a, b) = UnixSeqpacket::pair()?;
        Ok((
            AsyncSeqpacket::from_blocking(a)?,
            AsyncSeqpacket::from_blocking(b)?,
        ))
    }

    /// Sends one message as one packet, waiting while the socket has no room. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`UnixSeqpacket::send`].
    pub async fn send(&self, msg: &[u8]) -> Result<()> {
        self.io(Interest::WRITABLE, |s| s.send(msg)).await
    }

    /// Receives one packet into `buf`, replacing its contents; `None` once the peer closed.
    /// Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`UnixSeqpacket::recv_into`].
    pub async fn recv_into(&self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        self.io(Interest::READABLE, |s| s.recv_into(buf)).await
    }

    /// Sends one message as one packet with the descriptors `fds` attached (`sendmsg(2)` with
    /// `SCM_RIGHTS`), waiting while the socket has no room, as
    /// [`UnixSeqpacket::send_with_fds`]. Cancel-safe: the packet and its descriptors go
    /// together or not at all.
    ///
    /// # Errors
    ///
    /// As [`UnixSeqpacket::send_with_fds`].
    pub async fn send_with_fds(&self, msg: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        self.io(Interest::WRITABLE, |s| s.send_with_fds(msg, fds))
            .await
    }

    /// Receives one packet into `buf` and the descriptors sent with it into `fds`
    /// (close-on-exec), replacing the contents of both, as
    /// [`UnixSeqpacket::recv_into_with_fds`]; `None` once the peer closed. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`UnixSeqpacket::recv_into_with_fds`].
    pub async fn recv_into_with_fds(
        &self,
        buf: &mut Vec<u8>,
        fds: &mut Vec<OwnedFd>,
    ) -> Result<Option<usize>> {
        self.io(Interest::READABLE, |s| s.recv_into_with_fds(buf, fds))
            .await
    }

    /// Receives one packet into a new `Vec`, with the descriptors sent with it; `None` once
    /// the peer closed. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`recv_into_with_fds`](Self::recv_into_with_fds).
    pub async fn recv_with_fds(&self) -> Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
        crate::fd::recv_new_with_fds_async(async |buf, fds| self.recv_into_with_fds(buf, fds).await)
            .await
    }

    /// Receives one packet into a new `Vec`; `None` once the peer closed. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`recv_into`](Self::recv_into).
    pub async fn recv(&self) -> Result<Option<Vec<u8>>> {
        let mut buf = Vec::new();
        Ok(self.recv_into(&mut buf).await?.map(|_| buf))
    }

    /// As [`UnixSeqpacket::send_limit`].
    pub fn send_limit(&self) -> usize {
        self.inner.send_limit()
    }

    /// As [`UnixSeqpacket::max_message_len`].
    pub fn max_message_len(&self) -> usize {
        self.inner.max_message_len()
    }

    /// As [`UnixSeqpacket::set_max_message_len`]: from the next receive on.
    pub fn set_max_message_len(&mut self, max: usize) -> &mut Self {
        self.inner.set_max_message_len(max);
        self
    }

    /// This end's endpoint, as [`UnixSeqpacket::local_endpoint`].
    ///
    /// # Errors
    ///
    /// As [`UnixSeqpacket::local_endpoint`].
    pub fn local_endpoint(&self) -> Result<Endpoint> {
        self.inner.local_endpoint()
    }

    /// The peer's endpoint, as [`UnixSeqpacket::peer_endpoint`].
    ///
    /// # Errors
    ///
    /// As [`UnixSeqpacket::peer_endpoint`].
    pub fn peer_endpoint(&self) -> Result<Endpoint> {
        self.inner.peer_endpoint()
    }

    /// The blocking socket, for its other calls (`peer_cred`, `shutdown`, ...).
    pub fn get_ref(&self) -> &UnixSeqpacket {
        &self.inner
    }

    /// The blocking socket, in blocking mode again.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `fcntl(2)`.
    pub fn into_blocking(self) -> Result<UnixSeqpacket> {
        let AsyncSeqpacket { inner, ready } = self;
        drop(ready);
        inner.set_nonblocking(false)?;
        Ok(inner)
    }
}

impl fmt::Debug for AsyncSeqpacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl AsFd for AsyncSeqpacket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for AsyncSeqpacket {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}
