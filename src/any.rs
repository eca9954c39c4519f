//! The runtime-chosen form: a listener or connection for an [`Endpoint`] parsed at run time.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::channel::Channel;
use crate::conn::Connection;
use crate::datagram::{DatagramTransport, UdpTransport, UnixDatagramTransport};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::inet::{TcpListener, TcpStream, UdpSocket};
use crate::shutdown::ShutdownHandle;
use crate::stream::{sealed, Stream};
use crate::unix::{UnixDatagram, UnixListener, UnixStream};

/// Binds a listener for a stream `endpoint` (`unix:` or `tcp:`).
///
/// # Errors
///
/// As [`UnixListener::bind`] or [`TcpListener::bind`]; [`Error::WrongSocketType`] for a datagram
/// endpoint (use [`bind_datagram`]).
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
        Endpoint::Udp(_) | Endpoint::UnixDatagram(_) => return Err(wrong_type(endpoint, "stream")),
    })
}

/// Binds a datagram socket for a datagram `endpoint` (`udp:` or `unixgram:`).
///
/// # Errors
///
/// As [`UdpSocket::bind`] or [`UnixDatagram::bind`]; [`Error::WrongSocketType`] for a stream
/// endpoint (use [`bind`]).
///
/// # Examples
///
/// ```
/// let server = msgsock::bind_datagram(&"udp:127.0.0.1:0".parse()?)?;
/// let mut client = msgsock::connect(&server.local_endpoint()?)?;
/// client.send(b"hello")?;
/// let mut buf = Vec::new();
/// let (_, from) = server.recv_from(&mut buf)?;
/// server.send_to(&buf, &from.unwrap())?;
/// assert_eq!(client.recv()?.as_deref(), Some(&b"hello"[..]));
/// # Ok::<(), msgsock::Error>(())
/// ```
pub fn bind_datagram(endpoint: &Endpoint) -> Result<AnyDatagram> {
    Ok(match endpoint {
        Endpoint::Udp(addr) => AnyDatagram::Udp(UdpSocket::bind(*addr)?),
        Endpoint::UnixDatagram(path) => AnyDatagram::Unix(UnixDatagram::bind(path)?),
        Endpoint::Unix(_) | Endpoint::Tcp(_) => return Err(wrong_type(endpoint, "datagram")),
    })
}

fn wrong_type(endpoint: &Endpoint, expected: &'static str) -> Error {
    Error::WrongSocketType {
        endpoint: endpoint.to_string(),
        expected,
        actual: if endpoint.is_datagram() {
            "datagram"
        } else {
            "stream"
        },
    }
}

/// Connects to `endpoint`, whichever of the four transports it names.
///
/// For a datagram endpoint the socket is bound to a fresh address of its own (a private temporary
/// path for `unixgram:`) so that replies reach it, and connected to the endpoint.
///
/// # Errors
///
/// As [`UnixStream::connect`], [`TcpStream::connect`], or the datagram sockets' `bind` and
/// `connect`.
pub fn connect(endpoint: &Endpoint) -> Result<AnyConnection> {
    Ok(AnyConnection(match endpoint {
        Endpoint::Unix(_) | Endpoint::Tcp(_) => Inner::Stream(connect_stream(endpoint)?),
        Endpoint::Udp(addr) => Inner::Datagram(AnyDatagram::Udp(UdpTransport::connect(addr)?)),
        Endpoint::UnixDatagram(path) => {
            Inner::Datagram(AnyDatagram::Unix(UnixDatagramTransport::connect(path)?))
        }
    }))
}

/// Connects to a stream `endpoint`; [`Error::WrongSocketType`] for a datagram one.
pub(crate) fn connect_stream(endpoint: &Endpoint) -> Result<Connection<AnyStream>> {
    let stream = match endpoint {
        Endpoint::Unix(path) => AnyStream::Unix(UnixStream::connect(path)?),
        Endpoint::Tcp(addr) => AnyStream::Tcp(TcpStream::connect(*addr)?),
        Endpoint::Udp(_) | Endpoint::UnixDatagram(_) => return Err(wrong_type(endpoint, "stream")),
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
    /// [`Error::Io`](crate::Error::Io) from `accept(2)`; [`Error::Shutdown`] once a
    /// [`ShutdownHandle`] of this listener was used.
    pub fn accept(&self) -> Result<Connection<AnyStream>> {
        // The bare stream: a Connection made for it first would cost a second receive buffer
        // and a second getsockname(2) when re-wrapped.
        let stream = match self {
            AnyListener::Unix(l) => AnyStream::Unix(l.accept_stream()?.0),
            AnyListener::Tcp(l) => AnyStream::Tcp(l.accept_stream()?.0),
        };
        Ok(Connection::new(stream))
    }

    /// An iterator over accepted connections, which ends once the listener is shut down with a
    /// [`ShutdownHandle`].
    pub fn incoming(&self) -> impl Iterator<Item = Result<Connection<AnyStream>>> + '_ {
        std::iter::from_fn(move || match self.accept() {
            Err(Error::Shutdown) => None,
            accepted => Some(accepted),
        })
    }

    /// A handle that stops this listener from another thread: see [`ShutdownHandle`] and
    /// [`UnixListener::shutdown_handle`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the handle's socket pair cannot be made.
    pub fn shutdown_handle(&self) -> Result<ShutdownHandle> {
        match self {
            AnyListener::Unix(l) => l.shutdown_handle(),
            AnyListener::Tcp(l) => l.shutdown_handle(),
        }
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

/// A datagram socket of the transport an [`Endpoint`] named, from [`bind_datagram`].
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyDatagram {
    /// A UDP socket.
    Udp(UdpSocket),
    /// A Unix-domain datagram socket.
    Unix(UnixDatagram),
}

impl AnyDatagram {
    /// Sends one message as one datagram to `to`, which must be of the socket's transport.
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`], [`Error::Io`]; [`Error::WrongSocketType`] if `to` is of
    /// another transport.
    pub fn send_to(&self, msg: &[u8], to: &Endpoint) -> Result<()> {
        match (self, to) {
            (AnyDatagram::Udp(s), Endpoint::Udp(addr)) => s.send_to(msg, *addr),
            (AnyDatagram::Unix(s), Endpoint::UnixDatagram(path)) => s.send_to(msg, path),
            _ => Err(self.wrong_destination(to)),
        }
    }

    /// Sends one message as one datagram to `to` if it can be queued now, and never waits: a
    /// destination whose queue is full is `WouldBlock` at once, and others are unaffected. See
    /// [`UnixDatagram::try_send_to`] for the per-destination policy and its Linux caveat.
    ///
    /// # Errors
    ///
    /// As [`send_to`](Self::send_to), plus [`Error::Io`] with `WouldBlock`.
    pub fn try_send_to(&self, msg: &[u8], to: &Endpoint) -> Result<()> {
        match (self, to) {
            (AnyDatagram::Udp(s), Endpoint::Udp(addr)) => s.try_send_to(msg, *addr),
            (AnyDatagram::Unix(s), Endpoint::UnixDatagram(path)) => s.try_send_to(msg, path),
            _ => Err(self.wrong_destination(to)),
        }
    }

    /// As [`try_send_to`](Self::try_send_to), but waits up to `wait` for room in this socket's
    /// own send buffer (never for a destination's queue); see
    /// [`UnixDatagram::try_send_to_within`].
    ///
    /// # Errors
    ///
    /// As [`try_send_to`](Self::try_send_to).
    pub fn try_send_to_within(&self, msg: &[u8], to: &Endpoint, wait: Duration) -> Result<()> {
        match (self, to) {
            (AnyDatagram::Udp(s), Endpoint::Udp(a)) => s.try_send_to_within(msg, *a, wait),
            (AnyDatagram::Unix(s), Endpoint::UnixDatagram(p)) => s.try_send_to_within(msg, p, wait),
            _ => Err(self.wrong_destination(to)),
        }
    }

    fn wrong_destination(&self, to: &Endpoint) -> Error {
        Error::WrongSocketType {
            endpoint: to.to_string(),
            expected: match self {
                AnyDatagram::Udp(_) => "udp",
                AnyDatagram::Unix(_) => "unixgram",
            },
            actual: to.scheme(),
        }
    }

    /// Receives one datagram into `buf`, replacing its contents; returns its length and the
    /// sender's endpoint (`None` for an unbound Unix sender, which cannot be answered).
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] for a datagram above the receive limit; [`Error::Io`] otherwise.
    pub fn recv_from(&self, buf: &mut Vec<u8>) -> Result<(usize, Option<Endpoint>)> {
        match self {
            AnyDatagram::Udp(s) => {
                let (n, from) = s.recv_from(buf)?;
                Ok((n, Some(Endpoint::Udp(from))))
            }
            AnyDatagram::Unix(s) => {
                let (n, from) = s.recv_from(buf)?;
                Ok((n, from.map(Endpoint::UnixDatagram)))
            }
        }
    }

    /// The bound endpoint.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `getsockname(2)`, or `NotFound` for an unbound Unix socket.
    pub fn local_endpoint(&self) -> Result<Endpoint> {
        match self {
            AnyDatagram::Udp(s) => s.local_endpoint(),
            AnyDatagram::Unix(s) => s.local_endpoint().ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "socket is not bound").into()
            }),
        }
    }

    /// The largest message one datagram of this socket can carry.
    pub fn send_limit(&self) -> usize {
        match self {
            AnyDatagram::Udp(s) => s.send_limit(),
            AnyDatagram::Unix(s) => s.send_limit(),
        }
    }

    /// Sets the read timeout; `None` blocks forever.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], for example `InvalidInput` for a zero duration.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        match self {
            AnyDatagram::Udp(s) => s.set_read_timeout(timeout),
            AnyDatagram::Unix(s) => s.set_read_timeout(timeout),
        }
    }

    /// Sets the write timeout; `None` blocks forever. A Unix datagram send waits while the
    /// receiver's queue is full, so a server that must not stall on one slow client sets this.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], for example `InvalidInput` for a zero duration.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        match self {
            AnyDatagram::Udp(s) => s.set_write_timeout(timeout),
            AnyDatagram::Unix(s) => s.set_write_timeout(timeout),
        }
    }

    /// A second handle to the same socket.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `dup(2)` fails.
    pub fn try_clone(&self) -> Result<AnyDatagram> {
        Ok(match self {
            AnyDatagram::Udp(s) => AnyDatagram::Udp(s.try_clone()?),
            AnyDatagram::Unix(s) => AnyDatagram::Unix(s.try_clone()?),
        })
    }

    fn channel(&mut self) -> &mut dyn Channel {
        match self {
            AnyDatagram::Udp(s) => s,
            AnyDatagram::Unix(s) => s,
        }
    }
}

impl AsFd for AnyDatagram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            AnyDatagram::Udp(s) => s.as_fd(),
            AnyDatagram::Unix(s) => s.as_fd(),
        }
    }
}

impl AsRawFd for AnyDatagram {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// A message connection to an [`Endpoint`] of any of the four transports, from [`connect`].
///
/// The same calls work on every transport; see [`Channel`] for what differs between streams and
/// datagrams.
#[derive(Debug)]
pub struct AnyConnection(Inner);

#[derive(Debug)]
enum Inner {
    Stream(Connection<AnyStream>),
    Datagram(AnyDatagram),
}

impl AnyConnection {
    /// Sends one message.
    ///
    /// # Errors
    ///
    /// As [`Connection::send`], or for datagrams [`Error::MessageTooLarge`] and
    /// [`Error::Io`] (`ConnectionRefused` once the peer is known to be gone).
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.channel().send(msg)
    }

    /// Receives one message into `buf`; `Ok(None)` when a stream peer closed cleanly.
    ///
    /// # Errors
    ///
    /// As [`Connection::recv_into`], or for datagrams [`Error::Truncated`] and [`Error::Io`].
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        self.channel().recv_into(buf)
    }

    /// Receives one message into a new `Vec`; `Ok(None)` when a stream peer closed cleanly.
    ///
    /// # Errors
    ///
    /// As [`recv_into`](Self::recv_into).
    pub fn recv(&mut self) -> Result<Option<Vec<u8>>> {
        self.channel().recv()
    }

    /// Sets the read timeout; `None` blocks forever.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], for example `InvalidInput` for a zero duration.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        match &self.0 {
            Inner::Stream(c) => c.set_read_timeout(timeout),
            Inner::Datagram(d) => d.set_read_timeout(timeout),
        }
    }

    /// Sets the write timeout; `None` blocks forever.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], for example `InvalidInput` for a zero duration.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        match &self.0 {
            Inner::Stream(c) => c.set_write_timeout(timeout),
            Inner::Datagram(d) => d.set_write_timeout(timeout),
        }
    }

    /// A second handle, to send on one thread while another receives.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `dup(2)` fails.
    pub fn try_clone(&self) -> Result<AnyConnection> {
        Ok(AnyConnection(match &self.0 {
            Inner::Stream(c) => Inner::Stream(c.try_clone()?),
            Inner::Datagram(d) => Inner::Datagram(d.try_clone()?),
        }))
    }

    /// Whether messages travel as datagrams (no delivery promise over UDP, no close event).
    pub fn is_datagram(&self) -> bool {
        matches!(self.0, Inner::Datagram(_))
    }

    /// The stream connection inside, if this is a stream transport.
    pub fn as_stream(&self) -> Option<&Connection<AnyStream>> {
        match &self.0 {
            Inner::Stream(c) => Some(c),
            Inner::Datagram(_) => None,
        }
    }

    /// The stream connection inside, if this is a stream transport.
    pub fn into_stream(self) -> Option<Connection<AnyStream>> {
        match self.0 {
            Inner::Stream(c) => Some(c),
            Inner::Datagram(_) => None,
        }
    }

    /// The datagram socket inside, if this is a datagram transport.
    pub fn as_datagram(&self) -> Option<&AnyDatagram> {
        match &self.0 {
            Inner::Stream(_) => None,
            Inner::Datagram(d) => Some(d),
        }
    }

    fn channel(&mut self) -> &mut dyn Channel {
        match &mut self.0 {
            Inner::Stream(c) => c,
            Inner::Datagram(d) => d.channel(),
        }
    }
}

impl From<Connection<AnyStream>> for AnyConnection {
    fn from(conn: Connection<AnyStream>) -> Self {
        AnyConnection(Inner::Stream(conn))
    }
}

impl From<AnyDatagram> for AnyConnection {
    /// A connection over a datagram socket; connect it first for `send` and `recv`.
    fn from(socket: AnyDatagram) -> Self {
        AnyConnection(Inner::Datagram(socket))
    }
}

impl Channel for AnyConnection {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        AnyConnection::send(self, msg)
    }
    fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        AnyConnection::recv_into(self, buf)
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        AnyConnection::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        AnyConnection::set_write_timeout(self, timeout)
    }
    fn try_clone(&self) -> Result<Self> {
        AnyConnection::try_clone(self)
    }
}

impl AsFd for AnyConnection {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.0 {
            Inner::Stream(c) => c.as_fd(),
            Inner::Datagram(d) => d.as_fd(),
        }
    }
}

impl AsRawFd for AnyConnection {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}
