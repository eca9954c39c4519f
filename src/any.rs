//! The runtime-chosen form: a listener or connection for an [`Endpoint`] parsed at run time.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

use crate::auth::Authenticator;
use crate::channel::Channel;
use crate::conn::Connection;
use crate::connect::ConnectOptions;
use crate::endpoint::Endpoint;
use crate::error::{Error, Family, Result, SocketType};
use crate::inet::{TcpListener, TcpStream, UdpSocket};
use crate::shutdown::ShutdownHandle;
use crate::stream::{sealed, Stream};
use crate::unix::{UnixDatagram, UnixListener, UnixStream};

/// Binds a listener for a stream `endpoint` (`unix:` or `tcp:`).
///
/// # Errors
///
/// As [`UnixListener::bind`] or [`TcpListener::bind`]; [`Error::WrongSocketType`] for a datagram
/// endpoint (use [`bind_datagram`]); [`Error::Bind`] with `InvalidInput` for a host name (a
/// listener binds an IP address exactly, see [`Endpoint`]).
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
        Endpoint::TcpHost(_) => return Err(host_name_bind(endpoint)),
        Endpoint::Fd(_) | Endpoint::Systemd(_) => crate::activation::bind(endpoint)?,
        Endpoint::Udp(_) | Endpoint::UdpHost(_) | Endpoint::UnixDatagram(_) => {
            return Err(wrong_type(endpoint, SocketType::Stream))
        }
    })
}

/// Binds a datagram socket for a datagram `endpoint` (`udp:` or `unixgram:`).
///
/// # Errors
///
/// As [`UdpSocket::bind`] or [`UnixDatagram::bind`]; [`Error::WrongSocketType`] for a stream
/// endpoint (use [`bind`]); [`Error::Bind`] with `InvalidInput` for a host name.
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
        Endpoint::UdpHost(_) => return Err(host_name_bind(endpoint)),
        Endpoint::Fd(_) | Endpoint::Systemd(_) => crate::activation::bind_datagram(endpoint)?,
        Endpoint::Unix(_) | Endpoint::Tcp(_) | Endpoint::TcpHost(_) => {
            return Err(wrong_type(endpoint, SocketType::Datagram))
        }
    })
}

/// [`Error::WrongSocketType`]: `endpoint` given where a `expected` one is needed.
pub(crate) fn wrong_type(endpoint: &Endpoint, expected: SocketType) -> Error {
    Error::WrongSocketType {
        endpoint: endpoint.clone(),
        expected,
        actual: endpoint.socket_type(),
    }
}

/// Binding stays exact: a name may stand for several addresses, or for one that is not
/// loopback, so a listener is given the address itself.
fn host_name_bind(endpoint: &Endpoint) -> Error {
    let why = "a listener binds an IP address, not a host name (for this machine only, \
               127.0.0.1 or [::1])";
    Error::Bind {
        endpoint: endpoint.clone(),
        source: io::Error::new(io::ErrorKind::InvalidInput, why),
    }
}

/// Connects to `endpoint`, whichever of the four transports it names: a host name is resolved
/// and each of its addresses tried in order. This is
/// [`ConnectOptions::new().connect(endpoint)`](ConnectOptions::connect), with no time limit and
/// no waiting for a server; see [`ConnectOptions`] for both.
///
/// For a datagram endpoint the socket is bound to a fresh address of its own (a private temporary
/// path for `unixgram:`) so that replies reach it, and connected to the endpoint.
///
/// # Errors
///
/// As [`ConnectOptions::connect`]: [`Error::ConnectionRefused`], [`Error::NotFound`] or
/// [`Error::Connect`], each naming `endpoint`.
pub fn connect(endpoint: &Endpoint) -> Result<AnyConnection> {
    ConnectOptions::new().connect(endpoint)
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
    /// Accepts a connection: the same [`AnyConnection`] that [`connect`] gives a client.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `accept(2)`; [`Error::Shutdown`] once a
    /// [`ShutdownHandle`] of this listener was used.
    pub fn accept(&self) -> Result<AnyConnection> {
        // The bare stream: a Connection made for it first would cost a second receive buffer
        // and a second getsockname(2) when re-wrapped.
        let stream = match self {
            AnyListener::Unix(l) => AnyStream::Unix(l.accept_stream()?.0),
            AnyListener::Tcp(l) => AnyStream::Tcp(l.accept_stream()?.0),
        };
        Ok(Connection::new(stream).into())
    }

    /// An iterator over accepted connections, which ends once the listener is shut down with a
    /// [`ShutdownHandle`].
    pub fn incoming(&self) -> impl Iterator<Item = Result<AnyConnection>> + '_ {
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

/// A datagram destination of a known family.
enum Destination<'a> {
    Inet(SocketAddr),
    Unix(&'a Path),
}

impl AnyDatagram {
    /// Sends one message as one datagram to `to`, which must be of the socket's transport.
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`], [`Error::Io`]; [`Error::WrongSocketType`] for a stream
    /// endpoint, [`Error::WrongFamily`] for a datagram endpoint of the other family;
    /// [`Error::NotFound`] for a host name (`udp:NAME:PORT`, sent to its first address) that
    /// does not resolve.
    pub fn send_to(&self, msg: &[u8], to: &Endpoint) -> Result<()> {
        match (self, self.destination(to)?) {
            (AnyDatagram::Udp(s), Destination::Inet(addr)) => s.send_to(msg, addr),
            (AnyDatagram::Unix(s), Destination::Unix(path)) => s.send_to(msg, path),
            _ => unreachable!("destination() checks the family"),
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
        match (self, self.destination(to)?) {
            (AnyDatagram::Udp(s), Destination::Inet(addr)) => s.try_send_to(msg, addr),
            (AnyDatagram::Unix(s), Destination::Unix(path)) => s.try_send_to(msg, path),
            _ => unreachable!("destination() checks the family"),
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
        match (self, self.destination(to)?) {
            (AnyDatagram::Udp(s), Destination::Inet(a)) => s.try_send_to_within(msg, a, wait),
            (AnyDatagram::Unix(s), Destination::Unix(p)) => s.try_send_to_within(msg, p, wait),
            _ => unreachable!("destination() checks the family"),
        }
    }

    /// Where a datagram to `to` goes, checked against this socket's family; a host name is
    /// resolved to its first address.
    fn destination<'a>(&self, to: &'a Endpoint) -> Result<Destination<'a>> {
        match (self, to) {
            (AnyDatagram::Udp(_), Endpoint::Udp(addr)) => Ok(Destination::Inet(*addr)),
            (AnyDatagram::Udp(_), Endpoint::UdpHost(host)) => {
                Ok(Destination::Inet(crate::connect::resolve(to, host)?[0]))
            }
            (AnyDatagram::Unix(_), Endpoint::UnixDatagram(path)) => Ok(Destination::Unix(path)),
            _ if !to.is_datagram() => Err(wrong_type(to, SocketType::Datagram)),
            _ => Err(Error::WrongFamily {
                endpoint: to.clone(),
                expected: match self {
                    AnyDatagram::Udp(_) => Family::Inet,
                    AnyDatagram::Unix(_) => Family::Unix,
                },
            }),
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

/// A message connection to an [`Endpoint`] of any of the four transports: what [`connect`],
/// [`ConnectOptions::connect`], [`connect_authenticated`](crate::connect_authenticated) and
/// [`AnyListener::accept`] give, client and server alike.
///
/// The same calls work on every transport; see [`Channel`] for what differs between streams and
/// datagrams. The stream connection inside is at [`as_stream`](Self::as_stream) and
/// [`into_stream`](Self::into_stream), for calls only streams have (such as the socket's
/// [`peer_cred`](crate::UnixStream::peer_cred) through [`Connection::get_ref`]).
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

    /// The largest message [`recv`](Self::recv) accepts, as
    /// [`Connection::max_message_len`] or a datagram socket's `max_message_len`.
    pub fn max_message_len(&self) -> u64 {
        match &self.0 {
            Inner::Stream(c) => c.max_message_len(),
            Inner::Datagram(AnyDatagram::Udp(s)) => s.max_message_len() as u64,
            Inner::Datagram(AnyDatagram::Unix(s)) => s.max_message_len() as u64,
        }
    }

    /// Sets the largest message [`recv`](Self::recv) accepts, as
    /// [`Connection::set_max_message_len`] or a datagram socket's `set_max_message_len` (a
    /// limit above what a `usize` holds is `usize::MAX`). Takes effect from the next message.
    pub fn set_max_message_len(&mut self, max: u64) -> &mut Self {
        let dgram_max = usize::try_from(max).unwrap_or(usize::MAX);
        match &mut self.0 {
            Inner::Stream(c) => {
                c.set_max_message_len(max);
            }
            Inner::Datagram(AnyDatagram::Udp(s)) => {
                s.set_max_message_len(dgram_max);
            }
            Inner::Datagram(AnyDatagram::Unix(s)) => {
                s.set_max_message_len(dgram_max);
            }
        }
        self
    }

    /// Runs the accepting side of the shared-key handshake, as
    /// [`Connection::authenticate_server`].
    ///
    /// # Errors
    ///
    /// As [`Connection::authenticate_server`]; [`Error::WrongSocketType`] on a datagram
    /// transport, naming the socket's own endpoint.
    pub fn authenticate_server(&mut self, auth: &Authenticator) -> Result<()> {
        self.stream_for_handshake()?.authenticate_server(auth)
    }

    /// Runs the connecting side of the shared-key handshake, as
    /// [`Connection::authenticate_client`].
    ///
    /// # Errors
    ///
    /// As [`Connection::authenticate_client`]; [`Error::WrongSocketType`] on a datagram
    /// transport, naming the socket's own endpoint.
    pub fn authenticate_client(&mut self, auth: &Authenticator) -> Result<()> {
        self.stream_for_handshake()?.authenticate_client(auth)
    }

    fn stream_for_handshake(&mut self) -> Result<&mut Connection<AnyStream>> {
        match &mut self.0 {
            Inner::Stream(c) => Ok(c),
            Inner::Datagram(d) => Err(wrong_type(&d.local_endpoint()?, SocketType::Stream)),
        }
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
    pub fn as_stream_mut(&mut self) -> Option<&mut Connection<AnyStream>> {
        match &mut self.0 {
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
