use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::inet::TcpStream;
use crate::shutdown::{ShutdownHandle, Stopper};
use crate::sys;

/// A listening TCP socket.
///
/// It binds exactly the address it is given: `127.0.0.1` for this machine only. As std's, it
/// knows nothing of framing: [`accept`](Self::accept) gives a [`TcpStream`], which
/// [`Connection::new`](crate::Connection::new) wraps to exchange messages.
///
/// # Examples
///
/// ```
/// use msgsock::{Connection, TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0".parse()?)?;
/// let addr = listener.local_addr()?;
/// let mut client = Connection::new(TcpStream::connect(addr)?);
/// let (stream, _peer) = listener.accept()?;
/// let mut server = Connection::new(stream);
/// client.send(b"ping")?;
/// assert_eq!(server.recv()?.as_deref(), Some(&b"ping"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TcpListener {
    inner: StdTcpListener,
    // Shared by clones, as the socket's O_NONBLOCK is: a handle stops them all.
    stopper: Arc<Stopper>,
}

impl TcpListener {
    /// Binds and listens on `addr` (`bind(2)`, `listen(2)`); port 0 picks a free port, which
    /// [`local_addr`](Self::local_addr) reports.
    ///
    /// # Errors
    ///
    /// [`Error::AddrInUse`] if the port is taken; [`Error::Bind`] otherwise, for example
    /// `AddrNotAvailable` if the host is not an address of this machine. Both name `tcp:ADDR`.
    pub fn bind(addr: SocketAddr) -> Result<TcpListener> {
        let bind_error = |e| Error::bind(Endpoint::Tcp(addr), e);
        let inner = StdTcpListener::bind(addr).map_err(bind_error)?;
        // std listens with a backlog of 128; past it the kernel drops a client's SYN and that
        // client waits a second or more to retry. Listening again only raises the backlog.
        sys::listen(inner.as_fd()).map_err(bind_error)?;
        Ok(TcpListener::from(inner))
    }

    /// Accepts a connection (`accept(2)`), sets `TCP_NODELAY`, and returns its stream with the
    /// peer's address; wrap the stream in a [`Connection`](crate::Connection) to exchange
    /// messages. The socket is blocking and never raises `SIGPIPE` (on Apple targets,
    /// `SO_NOSIGPIPE` is set on it).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `accept(2)`, for example `EMFILE`; [`Error::Shutdown`] once a
    /// [`ShutdownHandle`] of this listener was used.
    pub fn accept(&self) -> Result<(TcpStream, SocketAddr)> {
        let (stream, addr) = self
            .stopper
            .accept(self.inner.as_fd(), || self.inner.accept())?;
        // Where accepted sockets inherit the listener's mode, undo the one a handle set.
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        stream.set_nonblocking(false)?;
        Ok((TcpStream::with_nodelay(stream)?, addr))
    }

    /// A handle that stops this listener from another thread: see [`ShutdownHandle`].
    ///
    /// As [`UnixListener::shutdown_handle`](crate::UnixListener::shutdown_handle): take it
    /// before another thread starts accepting.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the socket pair cannot be made or the mode set.
    pub fn shutdown_handle(&self) -> Result<ShutdownHandle> {
        self.stopper.handle(|on| self.inner.set_nonblocking(on))
    }

    /// An iterator over accepted streams, as [`accept`](Self::accept) gives them without the
    /// peer's address; it ends once the listener is shut down with a [`ShutdownHandle`].
    pub fn incoming(&self) -> TcpIncoming<'_> {
        TcpIncoming { listener: self }
    }

    /// The bound address, with the real port when bound to port 0.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `getsockname(2)`.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.inner.local_addr()?)
    }

    /// The bound endpoint, `tcp:HOST:PORT`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `getsockname(2)`.
    pub fn local_endpoint(&self) -> Result<Endpoint> {
        Ok(Endpoint::Tcp(self.local_addr()?))
    }

    /// Moves the listener into or out of non-blocking mode: `accept` then returns `WouldBlock`
    /// instead of waiting. Clones share the mode, as they share `O_NONBLOCK`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `fcntl(2)`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        self.stopper
            .set_nonblocking(nonblocking, |on| self.inner.set_nonblocking(on))
    }

    /// A second handle to the same listening socket (`dup(2)`): connections go to whichever
    /// handle accepts first. Clones share the non-blocking mode and the [`ShutdownHandle`]: a
    /// handle taken from any of them stops `accept` on all.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `dup(2)`, for example `EMFILE`.
    pub fn try_clone(&self) -> Result<TcpListener> {
        Ok(TcpListener {
            inner: self.inner.try_clone()?,
            stopper: Arc::clone(&self.stopper),
        })
    }

    /// Takes the pending socket error (`SO_ERROR`), clearing it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `getsockopt(2)`.
    pub fn take_error(&self) -> Result<Option<io::Error>> {
        Ok(self.inner.take_error()?)
    }

    /// The wrapped std listener.
    pub fn get_ref(&self) -> &StdTcpListener {
        &self.inner
    }

    /// The wrapped std listener, in the blocking mode last asked for (a [`ShutdownHandle`]
    /// stops working on it).
    pub fn into_inner(self) -> StdTcpListener {
        let TcpListener { inner, stopper } = self;
        // The last clone gives the socket back in the mode its user asked for.
        if let Some(stopper) = Arc::into_inner(stopper) {
            stopper.release(|on| inner.set_nonblocking(on));
        }
        inner
    }
}

impl From<StdTcpListener> for TcpListener {
    /// Wraps a std listener as it is.
    fn from(inner: StdTcpListener) -> Self {
        TcpListener {
            inner,
            stopper: Arc::default(),
        }
    }
}

impl From<OwnedFd> for TcpListener {
    /// Adopts a listening TCP socket, as it is.
    fn from(fd: OwnedFd) -> Self {
        TcpListener::from(StdTcpListener::from(fd))
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // std's Debug shows the fd and the local address.
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl From<TcpListener> for OwnedFd {
    fn from(listener: TcpListener) -> OwnedFd {
        listener.into_inner().into()
    }
}

crate::fd::raw_fd_traits!(TcpListener);

/// An iterator over a [`TcpListener`]'s accepted streams, from [`TcpListener::incoming`].
#[derive(Debug)]
pub struct TcpIncoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for TcpIncoming<'_> {
    type Item = Result<TcpStream>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.listener.accept() {
            Err(Error::Shutdown) => None,
            accepted => Some(accepted.map(|(s, _)| s)),
        }
    }
}

impl<'a> IntoIterator for &'a TcpListener {
    type Item = Result<TcpStream>;
    type IntoIter = TcpIncoming<'a>;

    fn into_iter(self) -> TcpIncoming<'a> {
        self.incoming()
    }
}
