use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener, TcpStream as StdTcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::conn::Connection;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::shutdown::{ShutdownHandle, Stopper};
use crate::stream::socket_stream;

socket_stream! {
    /// A connected TCP socket whose writes never raise `SIGPIPE`, with `TCP_NODELAY` set so that
    /// each message leaves at once.
    ///
    /// Wrap it in a [`Connection`] to exchange messages.
    TcpStream(StdTcpStream)
}

impl TcpStream {
    /// Connects to `addr` (`connect(2)`) and sets `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// [`Error::ConnectionRefused`] when nobody listens; [`Error::Connect`] for other failures
    /// (for example `NetworkUnreachable`). Each names the endpoint `tcp:ADDR`.
    pub fn connect(addr: SocketAddr) -> Result<TcpStream> {
        TcpStream::connect_each(&Endpoint::Tcp(addr), [addr], None)
    }

    /// Connects to `addr`, giving up after `timeout` (a non-blocking `connect(2)` and `poll(2)`,
    /// through std's `TcpStream::connect_timeout`), and sets `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect); [`Error::ConnectTimeout`] if the time ran out, for example
    /// against a listener whose accept queue is full; [`Error::Connect`] with `InvalidInput` for
    /// a zero `timeout`.
    pub fn connect_timeout(addr: SocketAddr, timeout: Duration) -> Result<TcpStream> {
        TcpStream::connect_each(&Endpoint::Tcp(addr), [addr], Some(timeout))
    }

    /// Tries each of `addrs` in order, as std's `TcpStream::connect` does, until one connects;
    /// else the last error, naming `endpoint`. `timeout` bounds all attempts together.
    pub(crate) fn connect_each(
        endpoint: &Endpoint,
        addrs: impl IntoIterator<Item = SocketAddr>,
        timeout: Option<Duration>,
    ) -> Result<TcpStream> {
        let timed_out = || Error::ConnectTimeout {
            endpoint: endpoint.clone(),
            timeout: timeout.unwrap_or_default(),
        };
        if timeout.is_some_and(|t| t.is_zero()) {
            let zero = io::Error::new(io::ErrorKind::InvalidInput, "a connect timeout of zero");
            return Err(Error::connect(endpoint.clone(), zero));
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut last = None;
        for addr in addrs {
            let attempt = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(timed_out());
                    }
                    StdTcpStream::connect_timeout(&addr, left)
                }
                None => StdTcpStream::connect(addr),
            };
            match attempt {
                Ok(stream) => return TcpStream::nodelay(stream),
                Err(e) if deadline.is_some() && e.kind() == io::ErrorKind::TimedOut => {
                    last = Some(timed_out());
                }
                Err(e) => last = Some(Error::connect(endpoint.clone(), e)),
            }
        }
        Err(last.unwrap_or_else(|| {
            let none = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
            Error::connect(endpoint.clone(), none)
        }))
    }

    fn nodelay(stream: StdTcpStream) -> Result<TcpStream> {
        // Messages are whole units: Nagle's delay would only hold a finished message back.
        stream.set_nodelay(true)?;
        Ok(TcpStream(stream))
    }
}

/// A listening TCP socket.
///
/// It binds exactly the address it is given: `127.0.0.1` for this machine only.
///
/// # Examples
///
/// ```
/// use msgsock::{Connection, TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0".parse()?)?;
/// let addr = listener.local_addr()?;
/// let mut client = Connection::new(TcpStream::connect(addr)?);
/// let (mut server, _peer) = listener.accept()?;
/// client.send(b"ping")?;
/// assert_eq!(server.recv()?.as_deref(), Some(&b"ping"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TcpListener {
    inner: StdTcpListener,
    stopper: Stopper,
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
        let inner = StdTcpListener::bind(addr).map_err(|e| Error::bind(Endpoint::Tcp(addr), e))?;
        Ok(TcpListener::from(inner))
    }

    /// Accepts a connection (`accept(2)`), sets `TCP_NODELAY`, and returns it with the peer's
    /// address.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `accept(2)`, for example `EMFILE`; [`Error::Shutdown`] once a
    /// [`ShutdownHandle`] of this listener was used.
    pub fn accept(&self) -> Result<(Connection<TcpStream>, SocketAddr)> {
        let (stream, addr) = self.accept_stream()?;
        Ok((Connection::new(stream), addr))
    }

    /// `accept(2)` and `TCP_NODELAY` alone, for callers that wrap the stream themselves.
    pub(crate) fn accept_stream(&self) -> Result<(TcpStream, SocketAddr)> {
        let (stream, addr) = self
            .stopper
            .accept(self.inner.as_fd(), || self.inner.accept())?;
        // Where accepted sockets inherit the listener's mode, undo the one a handle set.
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        stream.set_nonblocking(false)?;
        Ok((TcpStream::nodelay(stream)?, addr))
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

    /// An iterator over accepted connections, which ends once the listener is shut down with a
    /// [`ShutdownHandle`].
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

    /// Moves the listener into or out of non-blocking mode.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `fcntl(2)`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        self.stopper
            .set_nonblocking(nonblocking, |on| self.inner.set_nonblocking(on))
    }
}

impl From<StdTcpListener> for TcpListener {
    fn from(inner: StdTcpListener) -> Self {
        TcpListener {
            inner,
            stopper: Stopper::default(),
        }
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

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl From<TcpListener> for OwnedFd {
    fn from(listener: TcpListener) -> OwnedFd {
        let TcpListener { inner, stopper } = listener;
        stopper.release(|on| inner.set_nonblocking(on));
        inner.into()
    }
}

/// An iterator over a [`TcpListener`]'s connections, from [`TcpListener::incoming`].
#[derive(Debug)]
pub struct TcpIncoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for TcpIncoming<'_> {
    type Item = Result<Connection<TcpStream>>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.listener.accept() {
            Err(Error::Shutdown) => None,
            accepted => Some(accepted.map(|(c, _)| c)),
        }
    }
}

impl<'a> IntoIterator for &'a TcpListener {
    type Item = Result<Connection<TcpStream>>;
    type IntoIter = TcpIncoming<'a>;

    fn into_iter(self) -> TcpIncoming<'a> {
        self.incoming()
    }
}
