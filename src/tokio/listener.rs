//! Async listeners: [`AsyncUnixListener`], [`AsyncTcpListener`] and the run-time chosen
//! [`AsyncAnyListener`].
//!
//! Each is bound by the blocking listener, so the socket-file rules (stale, live, not a socket,
//! lock, mode) exist once; the async listener then accepts on a tokio copy of the socket and keeps
//! the blocking one as the guard that removes the file, by identity, when dropped.

use std::fmt;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use ::tokio::net::{
    TcpListener as TokioTcpListener, TcpStream, UnixListener as TokioUnixListener, UnixStream,
};

use super::any::AsyncAnyConnection;
use super::conn::AsyncConnection;
use super::seqpacket::AsyncSeqpacketListener;
use super::stream::AsyncAnyStream;
use crate::any::AnyListener;
use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::inet::TcpListener;
use crate::unix::UnixListener;

/// Binds an async listener for a connection-oriented `endpoint` (`unix:`, `tcp:` or
/// `unixpacket:`), or adopts the inherited listening socket an `fd:N` or `systemd:` endpoint
/// names, as [`msgsock::bind`](crate::bind) does; the socket is then made non-blocking and
/// registered with tokio. Call it inside a tokio runtime.
///
/// # Errors
///
/// As [`msgsock::bind`](crate::bind); [`Error::Io`](crate::Error::Io) if there is no runtime
/// to register the socket with.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> msgsock::Result<()> {
/// let listener = msgsock::tokio::bind(&"tcp:127.0.0.1:0".parse()?).await?;
/// let mut client = msgsock::tokio::connect(&listener.local_endpoint()?).await?;
/// let mut server = listener.accept().await?;
/// client.send(b"hello").await?;
/// assert_eq!(server.recv().await?.as_deref(), Some(&b"hello"[..]));
/// # Ok(())
/// # }
/// ```
pub async fn bind(endpoint: &Endpoint) -> Result<AsyncAnyListener> {
    // Binding makes a few quick system calls on a local path or port, so it runs here rather
    // than on the blocking pool; `async` keeps callers inside the runtime `from_std` needs.
    Ok(match crate::any::bind(endpoint)? {
        AnyListener::Unix(l) => AsyncAnyListener::Unix(AsyncUnixListener::from_blocking(l)?),
        AnyListener::Tcp(l) => AsyncAnyListener::Tcp(AsyncTcpListener::from_blocking(l)?),
        AnyListener::Seqpacket(l) => {
            AsyncAnyListener::Seqpacket(AsyncSeqpacketListener::from_blocking(l)?)
        }
    })
}

/// An async Unix-domain listener bound to a file, which it removes when dropped.
///
/// The socket-file rules are those of [`UnixListener::bind`]. Like the blocking listener it
/// knows nothing of framing: `accept` gives tokio's stream, which [`AsyncConnection::new`]
/// wraps ([`AsyncAnyListener::accept`] gives message connections directly). `accept` is
/// cancel-safe: a dropped `accept` future loses no connection.
pub struct AsyncUnixListener {
    // Field order is drop order: the tokio copy closes first, then the guard removes the file.
    inner: TokioUnixListener,
    guard: UnixListener,
}

impl AsyncUnixListener {
    /// Binds at `path` with mode 0600, as [`UnixListener::bind`]. Call it inside a tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// As [`UnixListener::bind`]; [`Error::Io`](crate::Error::Io) without a runtime.
    pub fn bind<P: AsRef<Path>>(path: P) -> Result<AsyncUnixListener> {
        AsyncUnixListener::from_blocking(UnixListener::bind(path)?)
    }

    /// Binds at `path` with permission bits `mode`, as [`UnixListener::bind_with_mode`].
    ///
    /// # Errors
    ///
    /// As [`UnixListener::bind_with_mode`]; [`Error::Io`](crate::Error::Io) without a runtime.
    pub fn bind_with_mode<P: AsRef<Path>>(path: P, mode: u32) -> Result<AsyncUnixListener> {
        AsyncUnixListener::from_blocking(UnixListener::bind_with_mode(path, mode)?)
    }

    /// Binds in a new private temporary directory, as [`UnixListener::bind_temp`].
    ///
    /// # Errors
    ///
    /// As [`UnixListener::bind_temp`]; [`Error::Io`](crate::Error::Io) without a runtime.
    pub fn bind_temp() -> Result<AsyncUnixListener> {
        AsyncUnixListener::from_blocking(UnixListener::bind_temp()?)
    }

    /// Serves a bound blocking listener on tokio. The blocking listener is kept, unused, so that
    /// its file is removed (if still its own) when this one is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `dup(2)` or `fcntl(2)`, or without a runtime.
    pub fn from_blocking(listener: UnixListener) -> Result<AsyncUnixListener> {
        super::in_runtime()?;
        // A second descriptor of the same socket: the guard keeps its own, so none of the
        // file's bookkeeping has to move. The shared O_NONBLOCK does not matter to the guard,
        // which never accepts.
        let std = std::os::unix::net::UnixListener::from(listener.as_fd().try_clone_to_owned()?);
        std.set_nonblocking(true)?;
        Ok(AsyncUnixListener {
            inner: TokioUnixListener::from_std(std)?,
            guard: listener,
        })
    }

    /// Accepts a connection (`accept(2)`), returning its stream and the peer's address; wrap
    /// the stream in an [`AsyncConnection`] to exchange messages. Cancel-safe: nothing is held
    /// across the await but the listener.
    ///
    /// On an abstract name, a peer the blocking listener does not admit (one of another uid,
    /// unless opened with [`UnixListener::allow_any_uid`]) is closed at once, and `accept` goes
    /// on with the next.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `accept(2)`, for example `EMFILE`.
    pub async fn accept(&self) -> Result<(UnixStream, ::tokio::net::unix::SocketAddr)> {
        loop {
            let (stream, addr) = self.inner.accept().await?;
            if self.guard.admits(&stream) {
                // As the blocking accept: on Apple targets, no SIGPIPE from this socket.
                crate::sys::no_sigpipe(stream.as_fd())?;
                return Ok((stream, addr));
            }
        }
    }

    /// The path the socket is bound at.
    pub fn path(&self) -> &Path {
        self.guard.path()
    }

    /// The bound endpoint, `unix:PATH`.
    ///
    /// # Errors
    ///
    /// As [`UnixListener::local_endpoint`].
    pub fn local_endpoint(&self) -> Result<Endpoint> {
        self.guard.local_endpoint()
    }
}

/// An async TCP listener. `accept` gives tokio's stream, which [`AsyncConnection::new`] wraps,
/// and is cancel-safe.
pub struct AsyncTcpListener {
    inner: TokioTcpListener,
}

impl AsyncTcpListener {
    /// Binds `addr`, as [`TcpListener::bind`]. Call it inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// As [`TcpListener::bind`]; [`Error::Io`](crate::Error::Io) without a runtime.
    pub fn bind(addr: SocketAddr) -> Result<AsyncTcpListener> {
        AsyncTcpListener::from_blocking(TcpListener::bind(addr)?)
    }

    /// Serves a bound blocking listener on tokio.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `fcntl(2)`, or without a runtime.
    pub fn from_blocking(listener: TcpListener) -> Result<AsyncTcpListener> {
        super::in_runtime()?;
        let std = std::net::TcpListener::from(OwnedFd::from(listener));
        std.set_nonblocking(true)?;
        Ok(AsyncTcpListener {
            inner: TokioTcpListener::from_std(std)?,
        })
    }

    /// Accepts a connection (`accept(2)`), sets `TCP_NODELAY`, and returns its stream with the
    /// peer's address; wrap the stream in an [`AsyncConnection`] to exchange messages.
    /// Cancel-safe.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `accept(2)`, for example `EMFILE`.
    pub async fn accept(&self) -> Result<(TcpStream, SocketAddr)> {
        let (stream, addr) = self.inner.accept().await?;
        // As the blocking side does: messages go out whole, so Nagle's delay only hurts.
        stream.set_nodelay(true)?;
        crate::sys::no_sigpipe(stream.as_fd())?;
        Ok((stream, addr))
    }

    /// The bound address, with the real port when bound to port 0 (`getsockname(2)`).
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `getsockname(2)`.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.inner.local_addr()?)
    }

    /// The bound endpoint, `tcp:ADDR`.
    ///
    /// # Errors
    ///
    /// As [`local_addr`](Self::local_addr).
    pub fn local_endpoint(&self) -> Result<Endpoint> {
        Ok(Endpoint::Tcp(self.local_addr()?))
    }
}

/// An async listener of the transport an [`Endpoint`] named, from [`bind`].
#[derive(Debug)]
#[non_exhaustive]
pub enum AsyncAnyListener {
    /// A Unix-domain stream listener.
    Unix(AsyncUnixListener),
    /// A TCP listener.
    Tcp(AsyncTcpListener),
    /// A Unix-domain `SOCK_SEQPACKET` listener (`unixpacket:`).
    Seqpacket(AsyncSeqpacketListener),
}

impl AsyncAnyListener {
    /// Accepts a connection: the same [`AsyncAnyConnection`] that [`connect`](super::connect)
    /// gives a client. Cancel-safe.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `accept(2)`.
    pub async fn accept(&self) -> Result<AsyncAnyConnection> {
        let stream = match self {
            AsyncAnyListener::Unix(l) => AsyncAnyStream::Unix(l.accept().await?.0),
            AsyncAnyListener::Tcp(l) => AsyncAnyStream::Tcp(l.accept().await?.0),
            // A packet socket is a message channel as it is.
            AsyncAnyListener::Seqpacket(l) => return Ok(l.accept().await?.0.into()),
        };
        Ok(AsyncConnection::new(stream).into())
    }

    /// The bound endpoint, with the real port when bound to port 0.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `getsockname(2)`.
    pub fn local_endpoint(&self) -> Result<Endpoint> {
        match self {
            AsyncAnyListener::Unix(l) => l.local_endpoint(),
            AsyncAnyListener::Tcp(l) => l.local_endpoint(),
            AsyncAnyListener::Seqpacket(l) => l.local_endpoint(),
        }
    }
}

impl fmt::Debug for AsyncUnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncUnixListener")
            .field("fd", &self.inner.as_raw_fd())
            .field("path", &self.path())
            .finish()
    }
}

impl fmt::Debug for AsyncTcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncTcpListener")
            .field("fd", &self.inner.as_raw_fd())
            .field("addr", &self.inner.local_addr().ok())
            .finish()
    }
}

impl AsFd for AsyncUnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for AsyncUnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl AsFd for AsyncTcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for AsyncTcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl AsFd for AsyncAnyListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            AsyncAnyListener::Unix(l) => l.as_fd(),
            AsyncAnyListener::Tcp(l) => l.as_fd(),
            AsyncAnyListener::Seqpacket(l) => l.as_fd(),
        }
    }
}

impl AsRawFd for AsyncAnyListener {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}
