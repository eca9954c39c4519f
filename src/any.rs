//! The runtime-chosen form: a listener or connection for an [`Endpoint`] parsed at run time.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::conn::Connection;
use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::inet::{TcpListener, TcpStream};
use crate::stream::{sealed, Stream};
use crate::unix::{UnixListener, UnixStream};

/// Binds a listener for `endpoint`, whichever transport it names.
///
/// # Errors
///
/// As [`UnixListener::bind`] or [`TcpListener::bind`].
///
/// # Examples
///
/// ```
/// let listener = msgsock::bind(&"tcp:127.0.0.1:0".parse()?)?;
/// let endpoint = listener.local_endpoint()?; // the real port
/// let mut client = msgsock::connect(&endpoint)?;
/// let mut server = listener.accept()?;
/// client.send(b"hello")?;
/// assert_eq!(server.recv()?.as_deref(), Some(&b"hello"[..]));
/// # Ok::<(), msgsock::Error>(())
/// ```
pub fn bind(endpoint: &Endpoint) -> Result<AnyListener> {
    Ok(match endpoint {
        Endpoint::Unix(path) => AnyListener::Unix(UnixListener::bind(path)?),
        Endpoint::Tcp(addr) => AnyListener::Tcp(TcpListener::bind(*addr)?),
    })
}

/// Connects to `endpoint`, whichever transport it names.
///
/// # Errors
///
/// As [`UnixStream::connect`] or [`TcpStream::connect`].
pub fn connect(endpoint: &Endpoint) -> Result<Connection<AnyStream>> {
    let stream = match endpoint {
        Endpoint::Unix(path) => AnyStream::Unix(UnixStream::connect(path)?),
        Endpoint::Tcp(addr) => AnyStream::Tcp(TcpStream::connect(*addr)?),
    };
    Ok(Connection::new(stream))
}

/// A listener of the transport an [`Endpoint`] named.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyListener {
    /// A Unix-domain stream listener.
    Unix(UnixListener),
    /// A TCP listener.
    Tcp(TcpListener),
}

impl AnyListener {
    /// Accepts a connection.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `accept(2)`.
    pub fn accept(&self) -> Result<Connection<AnyStream>> {
        Ok(match self {
            AnyListener::Unix(l) => map_conn(l.accept()?.0, AnyStream::Unix),
            AnyListener::Tcp(l) => map_conn(l.accept()?.0, AnyStream::Tcp),
        })
    }

    /// An endless iterator over accepted connections.
    pub fn incoming(&self) -> impl Iterator<Item = Result<Connection<AnyStream>>> + '_ {
        std::iter::repeat_with(move || self.accept())
    }

    /// The bound endpoint, with the real port when bound to port 0.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `getsockname(2)`.
    pub fn local_endpoint(&self) -> Result<Endpoint> {
        match self {
            AnyListener::Unix(l) => Ok(l.local_endpoint()),
            AnyListener::Tcp(l) => l.local_endpoint(),
        }
    }

    /// Moves the listener into or out of non-blocking mode.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `fcntl(2)`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        match self {
            AnyListener::Unix(l) => l.set_nonblocking(nonblocking),
            AnyListener::Tcp(l) => l.set_nonblocking(nonblocking),
        }
    }
}

/// Re-wraps a fresh connection's stream; nothing has been buffered yet, so nothing is lost.
fn map_conn<S: Stream>(conn: Connection<S>, f: fn(S) -> AnyStream) -> Connection<AnyStream> {
    Connection::new(f(conn.into_inner()))
}

impl AsFd for AnyListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            AnyListener::Unix(l) => l.as_fd(),
            AnyListener::Tcp(l) => l.as_fd(),
        }
    }
}

impl AsRawFd for AnyListener {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl From<AnyListener> for OwnedFd {
    fn from(l: AnyListener) -> OwnedFd {
        match l {
            AnyListener::Unix(l) => l.into(),
            AnyListener::Tcp(l) => l.into(),
        }
    }
}

/// A connected stream of the transport an [`Endpoint`] named.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyStream {
    /// A Unix-domain stream socket.
    Unix(UnixStream),
    /// A TCP socket.
    Tcp(TcpStream),
}

/// Forwards a method to whichever stream is inside.
macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            AnyStream::Unix($s) => $e,
            AnyStream::Tcp($s) => $e,
        }
    };
}

impl Read for AnyStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, s => s.read(buf))
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        each!(self, s => s.read_vectored(bufs))
    }
}

impl Write for AnyStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each!(self, s => s.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        each!(self, s => s.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl sealed::Sealed for AnyStream {}

impl Stream for AnyStream {
    fn try_clone(&self) -> io::Result<Self> {
        Ok(match self {
            AnyStream::Unix(s) => AnyStream::Unix(s.try_clone()?),
            AnyStream::Tcp(s) => AnyStream::Tcp(s.try_clone()?),
        })
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        each!(self, s => s.shutdown(how))
    }
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        each!(self, s => s.set_read_timeout(t))
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        each!(self, s => s.set_write_timeout(t))
    }
    fn read_timeout(&self) -> io::Result<Option<Duration>> {
        each!(self, s => s.read_timeout())
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        each!(self, s => s.write_timeout())
    }
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        each!(self, s => s.set_nonblocking(nonblocking))
    }
}

impl AsFd for AnyStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        each!(self, s => s.as_fd())
    }
}

impl AsRawFd for AnyStream {
    fn as_raw_fd(&self) -> RawFd {
        each!(self, s => s.as_raw_fd())
    }
}

impl From<AnyStream> for OwnedFd {
    fn from(s: AnyStream) -> OwnedFd {
        each!(s, s => s.into())
    }
}
