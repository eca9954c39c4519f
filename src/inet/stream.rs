use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream as StdTcpStream};
use std::time::{Duration, Instant};

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::stream::stream_traits;

/// A connected TCP socket whose writes never raise `SIGPIPE`, with `TCP_NODELAY` set (by
/// [`connect`](Self::connect) and by accepting) so that each message leaves at once.
///
/// It has std's calls (`try_clone`, timeouts, `shutdown`, addresses, `set_nodelay`) as inherent
/// methods, and converts from and to std's `TcpStream` and `OwnedFd` as it is. Wrap it in a
/// [`Connection`](crate::Connection) to exchange messages.
pub struct TcpStream(pub(crate) StdTcpStream);

stream_traits!(TcpStream(StdTcpStream), carries_fds: false);

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
        crate::connect::check_timeout(endpoint, timeout)?;
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut last = None;
        for addr in addrs {
            let attempt = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    // The first address is tried however little time is left, as on tokio.
                    if left.is_zero() && last.is_some() {
                        return Err(timed_out());
                    }
                    StdTcpStream::connect_timeout(&addr, left.max(Duration::from_nanos(1)))
                }
                None => StdTcpStream::connect(addr),
            };
            match attempt {
                Ok(stream) => return TcpStream::with_nodelay(stream),
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

    /// Wraps a freshly connected or accepted stream, setting `TCP_NODELAY` (and, on Apple
    /// targets, `SO_NOSIGPIPE`).
    pub(crate) fn with_nodelay(stream: StdTcpStream) -> Result<TcpStream> {
        let stream = crate::sys::without_sigpipe(stream)?;
        // Messages are whole units: Nagle's delay would only hold a finished message back.
        stream.set_nodelay(true)?;
        Ok(TcpStream(stream))
    }

    /// The wrapped std stream.
    pub fn get_ref(&self) -> &StdTcpStream {
        &self.0
    }

    /// The wrapped std stream. Writing through it directly can raise `SIGPIPE`.
    pub fn into_inner(self) -> StdTcpStream {
        self.0
    }

    /// A second handle to the same socket (`dup(2)`), sharing its options and mode.
    ///
    /// # Errors
    ///
    /// From `dup(2)`, for example `EMFILE`.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        self.0.try_clone().map(TcpStream)
    }

    /// Shuts down the read, write, or both halves (`shutdown(2)`): after `Shutdown::Write` the
    /// peer reads end of stream (a TCP FIN).
    ///
    /// # Errors
    ///
    /// From `shutdown(2)`, for example `NotConnected`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.shutdown(how)
    }

    /// Sets the read timeout (`SO_RCVTIMEO`); `None` blocks forever. A read that times out is
    /// `WouldBlock` or `TimedOut`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as std's.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.set_read_timeout(timeout)
    }

    /// Sets the write timeout (`SO_SNDTIMEO`); `None` blocks forever.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as std's.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.set_write_timeout(timeout)
    }

    /// The read timeout (`SO_RCVTIMEO`); `None` for none.
    ///
    /// # Errors
    ///
    /// From `getsockopt(2)`.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.0.read_timeout()
    }

    /// The write timeout (`SO_SNDTIMEO`); `None` for none.
    ///
    /// # Errors
    ///
    /// From `getsockopt(2)`.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.0.write_timeout()
    }

    /// Moves the socket into or out of non-blocking mode (`O_NONBLOCK`, shared with every
    /// clone): reads and writes then fail with `WouldBlock` instead of waiting.
    ///
    /// # Errors
    ///
    /// From `fcntl(2)`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.0.set_nonblocking(nonblocking)
    }

    /// Sets `TCP_NODELAY`: `true` (msgsock's default) sends each write at once, `false` lets
    /// Nagle's algorithm hold small writes back to coalesce them.
    ///
    /// # Errors
    ///
    /// From `setsockopt(2)`.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.0.set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    ///
    /// From `getsockopt(2)`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.0.nodelay()
    }

    /// Takes the pending socket error (`SO_ERROR`), clearing it.
    ///
    /// # Errors
    ///
    /// From `getsockopt(2)`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.0.take_error()
    }

    /// This end's address (`getsockname(2)`).
    ///
    /// # Errors
    ///
    /// From `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    /// The peer's address (`getpeername(2)`).
    ///
    /// # Errors
    ///
    /// From `getpeername(2)`, for example `NotConnected`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }
}
