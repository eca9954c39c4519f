//! The runtime-chosen form: a listener or connection for an [`Endpoint`] parsed at run time.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

use crate::auth::Authenticator;
use crate::channel::Channel;
use crate::conn::{Connection, RecvHalf, SendHalf};
use crate::connect::ConnectOptions;
use crate::endpoint::Endpoint;
use crate::error::{Error, Family, Result, SocketType};
use crate::inet::{TcpListener, TcpStream, UdpSocket};
use crate::shutdown::ShutdownHandle;
use crate::stream::{sealed, Stream};
use crate::unix::{UnixDatagram, UnixListener, UnixSeqpacket, UnixSeqpacketListener, UnixStream};

/// Binds a listener for a connection-oriented `endpoint` (`unix:`, `tcp:` or `unixpacket:`).
///
/// # Errors
///
/// As [`UnixListener::bind`], [`TcpListener::bind`] or [`UnixSeqpacketListener::bind`];
/// [`Error::WrongSocketType`] for a datagram
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
        Endpoint::UnixAbstract(name) => AnyListener::Unix(UnixListener::bind_abstract(name)?),
        Endpoint::Tcp(addr) => AnyListener::Tcp(TcpListener::bind(*addr)?),
        Endpoint::UnixSeqpacket(path) => AnyListener::Seqpacket(UnixSeqpacketListener::bind(path)?),
        Endpoint::UnixSeqpacketAbstract(name) => {
            AnyListener::Seqpacket(UnixSeqpacketListener::bind_abstract(name)?)
        }
        Endpoint::TcpHost(_) => return Err(host_name_bind(endpoint)),
        Endpoint::Fd(_) | Endpoint::Systemd(_) => crate::activation::bind(endpoint)?,
        Endpoint::Udp(_)
        | Endpoint::UdpHost(_)
        | Endpoint::UnixDatagram(_)
        | Endpoint::UnixDatagramAbstract(_) => {
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
        Endpoint::UnixDatagramAbstract(name) => {
            AnyDatagram::Unix(UnixDatagram::bind_abstract(name)?)
        }
        Endpoint::UdpHost(_) => return Err(host_name_bind(endpoint)),
        Endpoint::Fd(_) | Endpoint::Systemd(_) => crate::activation::bind_datagram(endpoint)?,
        Endpoint::Unix(_)
        | Endpoint::UnixAbstract(_)
        | Endpoint::Tcp(_)
        | Endpoint::TcpHost(_)
        | Endpoint::UnixSeqpacket(_)
        | Endpoint::UnixSeqpacketAbstract(_) => {
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

/// Runs `$e` with `$v` bound to the socket or connection inside `$this`, whichever variant of
/// the enum named holds it. Each enum's variants are listed here once, so a method body says
/// only what it forwards.
macro_rules! each {
    ($this:expr, AnyListener($v:ident) => $e:expr) => {
        each!(@match $this, $v => $e; AnyListener::Unix, AnyListener::Tcp, AnyListener::Seqpacket)
    };
    ($this:expr, AnyStream($v:ident) => $e:expr) => {
        each!(@match $this, $v => $e; AnyStream::Unix, AnyStream::Tcp)
    };
    ($this:expr, AnyDatagram($v:ident) => $e:expr) => {
        each!(@match $this, $v => $e; AnyDatagram::Udp, AnyDatagram::Unix)
    };
    ($this:expr, Inner($v:ident) => $e:expr) => {
        each!(@match $this, $v => $e; Inner::Stream, Inner::Datagram, Inner::Packet)
    };
    ($this:expr, RecvInner($v:ident) => $e:expr) => {
        each!(@match $this, $v => $e; RecvInner::Stream, RecvInner::Datagram, RecvInner::Packet)
    };
    ($this:expr, SendInner($v:ident) => $e:expr) => {
        each!(@match $this, $v => $e; SendInner::Stream, SendInner::Datagram, SendInner::Packet)
    };
    (@match $this:expr, $v:ident => $e:expr; $($variant:path),+) => {
        match $this {
            $($variant($v) => $e,)+
        }
    };
}

/// A listener of the transport an [`Endpoint`] named.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyListener {
    /// A Unix-domain stream listener.
    Unix(UnixListener),
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix-domain `SOCK_SEQPACKET` listener (`unixpacket:`).
    Seqpacket(UnixSeqpacketListener),
}

impl AnyListener {
    /// Accepts a connection: the same [`AnyConnection`] that [`connect`] gives a client.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `accept(2)`; [`Error::Shutdown`] once a
    /// [`ShutdownHandle`] of this listener was used.
    pub fn accept(&self) -> Result<AnyConnection> {
        let stream = match self {
            AnyListener::Unix(l) => AnyStream::from(l.accept()?.0),
            AnyListener::Tcp(l) => AnyStream::from(l.accept()?.0),
            // A packet socket is a message channel as it is.
            AnyListener::Seqpacket(l) => return Ok(l.accept()?.0.into()),
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
        each!(self, AnyListener(l) => l.shutdown_handle())
    }

    /// The bound endpoint, with the real port when bound to port 0.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `getsockname(2)`.
    pub fn local_endpoint(&self) -> Result<Endpoint> {
        match self {
            AnyListener::Unix(l) => l.local_endpoint(),
            AnyListener::Tcp(l) => l.local_endpoint(),
            AnyListener::Seqpacket(l) => l.local_endpoint(),
        }
    }

    /// Moves the listener into or out of non-blocking mode.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `fcntl(2)`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        each!(self, AnyListener(l) => l.set_nonblocking(nonblocking))
    }
}

impl From<UnixListener> for AnyListener {
    fn from(listener: UnixListener) -> Self {
        AnyListener::Unix(listener)
    }
}

impl From<TcpListener> for AnyListener {
    fn from(listener: TcpListener) -> Self {
        AnyListener::Tcp(listener)
    }
}

impl From<UnixSeqpacketListener> for AnyListener {
    fn from(listener: UnixSeqpacketListener) -> Self {
        AnyListener::Seqpacket(listener)
    }
}

impl AsFd for AnyListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        each!(self, AnyListener(l) => l.as_fd())
    }
}

impl AsRawFd for AnyListener {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl From<AnyListener> for OwnedFd {
    fn from(l: AnyListener) -> OwnedFd {
        each!(l, AnyListener(l) => l.into())
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

impl From<UnixStream> for AnyStream {
    fn from(stream: UnixStream) -> Self {
        AnyStream::Unix(stream)
    }
}

impl From<TcpStream> for AnyStream {
    fn from(stream: TcpStream) -> Self {
        AnyStream::Tcp(stream)
    }
}

impl Read for AnyStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, AnyStream(s) => s.read(buf))
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        each!(self, AnyStream(s) => s.read_vectored(bufs))
    }
}

impl Write for AnyStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each!(self, AnyStream(s) => s.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        each!(self, AnyStream(s) => s.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        each!(self, AnyStream(s) => s.flush())
    }
}

impl sealed::Sealed for AnyStream {
    fn carries_fds(&self) -> bool {
        matches!(self, AnyStream::Unix(_))
    }
}

impl Stream for AnyStream {
    fn try_clone(&self) -> io::Result<Self> {
        Ok(each!(self, AnyStream(s) => Stream::try_clone(s)?.into()))
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        each!(self, AnyStream(s) => s.shutdown(how))
    }
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        each!(self, AnyStream(s) => s.set_read_timeout(t))
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        each!(self, AnyStream(s) => s.set_write_timeout(t))
    }
    fn read_timeout(&self) -> io::Result<Option<Duration>> {
        each!(self, AnyStream(s) => s.read_timeout())
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        each!(self, AnyStream(s) => s.write_timeout())
    }
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        each!(self, AnyStream(s) => s.set_nonblocking(nonblocking))
    }
}

impl AsFd for AnyStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        each!(self, AnyStream(s) => s.as_fd())
    }
}

impl AsRawFd for AnyStream {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl From<AnyStream> for OwnedFd {
    fn from(s: AnyStream) -> OwnedFd {
        each!(s, AnyStream(s) => s.into())
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
    /// [`Error::MessageTooLarge`], [`Error::Io`]; [`Error::WrongSocketType`] for a stream
    /// endpoint, [`Error::WrongFamily`] for a datagram endpoint of the other family;
    /// [`Error::NotFound`] for a host name (`udp:NAME:PORT`, sent to its first address) that
    /// does not resolve.
    pub fn send_to(&self, msg: &[u8], to: &Endpoint) -> Result<()> {
        self.to(
            to,
            |s, addr| s.send_to(msg, addr),
            |s, path| s.send_to(msg, path),
            |s, addr| s.send_to_addr(msg, addr),
        )
    }

    /// Sends one message as one datagram to `to` if it can be queued now, and never waits: a
    /// destination whose queue is full is `WouldBlock` at once, and others are unaffected. See
    /// [`UnixDatagram::try_send_to`] for the per-destination policy and its Linux caveat.
    ///
    /// # Errors
    ///
    /// As [`send_to`](Self::send_to), plus [`Error::Io`] with `WouldBlock`.
    pub fn try_send_to(&self, msg: &[u8], to: &Endpoint) -> Result<()> {
        self.to(
            to,
            |s, addr| s.try_send_to(msg, addr),
            |s, path| s.try_send_to(msg, path),
            |s, addr| s.try_send_to_addr(msg, addr),
        )
    }

    /// As [`try_send_to`](Self::try_send_to), but waits up to `wait` for room in this socket's
    /// own send buffer (never for a destination's queue); see
    /// [`UnixDatagram::try_send_to_within`].
    ///
    /// # Errors
    ///
    /// As [`try_send_to`](Self::try_send_to).
    pub fn try_send_to_within(&self, msg: &[u8], to: &Endpoint, wait: Duration) -> Result<()> {
        self.to(
            to,
            |s, addr| s.try_send_to_within(msg, addr, wait),
            |s, path| s.try_send_to_within(msg, path, wait),
            |s, addr| s.try_send_to_addr_within(msg, addr, wait),
        )
    }

    /// Sends one message as one datagram to the connected peer with the descriptors `fds`
    /// attached, as [`UnixDatagram::send_with_fds`].
    ///
    /// # Errors
    ///
    /// [`Error::FdsUnsupported`] on a UDP socket, before any system call; otherwise as
    /// [`UnixDatagram::send_with_fds`].
    pub fn send_with_fds(&self, msg: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        self.unix()?.send_with_fds(msg, fds)
    }

    /// As [`try_send_to_within`](Self::try_send_to_within), with the descriptors `fds` attached:
    /// see [`UnixDatagram::try_send_to_addr_with_fds_within`].
    ///
    /// # Errors
    ///
    /// [`Error::FdsUnsupported`] on a UDP socket, before any system call; otherwise as
    /// [`try_send_to_within`](Self::try_send_to_within) and
    /// [`UnixDatagram::send_with_fds`].
    pub fn try_send_to_with_fds_within(
        &self,
        msg: &[u8],
        fds: &[BorrowedFd<'_>],
        to: &Endpoint,
        wait: Duration,
    ) -> Result<()> {
        self.unix()?;
        self.to(
            to,
            // Refused above; this keeps that answer for the UDP arm.
            |_, _| self.unix().map(drop),
            |s, path| {
                let addr = std::os::unix::net::SocketAddr::from_pathname(path)
                    .map_err(|e| Error::path(path, e))?;
                s.try_send_to_addr_with_fds_within(msg, fds, &addr, wait)
            },
            |s, addr| s.try_send_to_addr_with_fds_within(msg, fds, addr, wait),
        )
    }

    /// Receives one datagram into `buf` and the descriptors sent with it into `fds`, as
    /// [`UnixDatagram::recv_into_with_fds`].
    ///
    /// # Errors
    ///
    /// [`Error::FdsUnsupported`] on a UDP socket, before any system call; otherwise as
    /// [`UnixDatagram::recv_into_with_fds`].
    pub fn recv_into_with_fds(&self, buf: &mut Vec<u8>, fds: &mut Vec<OwnedFd>) -> Result<usize> {
        self.unix()?.recv_into_with_fds(buf, fds)
    }

    /// As [`recv_into_with_fds`](Self::recv_into_with_fds), and the sender as
    /// [`recv_from`](Self::recv_from) gives it.
    ///
    /// # Errors
    ///
    /// As [`recv_into_with_fds`](Self::recv_into_with_fds).
    pub fn recv_from_with_fds(
        &self,
        buf: &mut Vec<u8>,
        fds: &mut Vec<OwnedFd>,
    ) -> Result<(usize, Option<Endpoint>)> {
        self.unix()?.recv_from_with_fds(buf, fds)
    }

    /// The Unix datagram socket, or [`Error::FdsUnsupported`]: only it carries descriptors.
    pub(crate) fn unix(&self) -> Result<&UnixDatagram> {
        match self {
            AnyDatagram::Unix(s) => Ok(s),
            AnyDatagram::Udp(_) => Err(Error::FdsUnsupported {
                family: Family::Inet,
            }),
        }
    }

    /// Runs `udp` or `unix` with this socket and the address of `to`, checked against its
    /// family; a host name is resolved to its first address.
    fn to(
        &self,
        to: &Endpoint,
        udp: impl FnOnce(&UdpSocket, SocketAddr) -> Result<()>,
        unix: impl FnOnce(&UnixDatagram, &Path) -> Result<()>,
        unix_abstract: impl FnOnce(&UnixDatagram, &std::os::unix::net::SocketAddr) -> Result<()>,
    ) -> Result<()> {
        match (self, to) {
            (AnyDatagram::Udp(s), Endpoint::Udp(addr)) => udp(s, *addr),
            (AnyDatagram::Udp(s), Endpoint::UdpHost(host)) => {
                udp(s, crate::connect::resolve(to, host)?[0])
            }
            (AnyDatagram::Unix(s), Endpoint::UnixDatagram(path)) => unix(s, path),
            (AnyDatagram::Unix(s), Endpoint::UnixDatagramAbstract(name)) => {
                unix_abstract(s, &crate::unix::abstract_name::socket_addr(name)?)
            }
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

    /// Sends one message as one datagram to the connected peer (`send(2)`).
    ///
    /// # Errors
    ///
    /// As [`UdpSocket::send`] and [`UnixDatagram::send`]: [`Error::MessageTooLarge`] above
    /// [`send_limit`](Self::send_limit), [`Error::Io`] otherwise (`NotConnected` on a socket
    /// that is not connected).
    pub fn send(&self, msg: &[u8]) -> Result<()> {
        each!(self, AnyDatagram(s) => s.send(msg))
    }

    /// Receives one datagram into `buf`, replacing its contents, and returns its length.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] for a datagram above [`max_message_len`](Self::max_message_len);
    /// [`Error::Io`] otherwise.
    pub fn recv_into(&self, buf: &mut Vec<u8>) -> Result<usize> {
        each!(self, AnyDatagram(s) => s.recv_into(buf))
    }

    /// Receives one datagram into `buf`, replacing its contents; returns its length and the
    /// sender's endpoint: `unixgram:@NAME` for a Unix sender with an abstract name, `None` for
    /// an unnamed Unix sender, which has no address to answer (see
    /// [`UnixDatagram::recv_from_endpoint`]).
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
            AnyDatagram::Unix(s) => s.recv_from_endpoint(buf),
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
            AnyDatagram::Unix(s) => s.local_endpoint(),
        }
    }

    /// The largest message one datagram of this socket can carry.
    pub fn send_limit(&self) -> usize {
        each!(self, AnyDatagram(s) => s.send_limit())
    }

    /// The largest datagram a receive accepts; a longer one is [`Error::Truncated`].
    pub fn max_message_len(&self) -> usize {
        each!(self, AnyDatagram(s) => s.max_message_len())
    }

    /// Sets the largest datagram a receive accepts, as [`UdpSocket::set_max_message_len`] and
    /// [`UnixDatagram::set_max_message_len`]. Takes effect from the next receive.
    pub fn set_max_message_len(&mut self, max: usize) -> &mut Self {
        each!(&mut *self, AnyDatagram(s) => {
            s.set_max_message_len(max);
        });
        self
    }

    /// Sets the read timeout; `None` blocks forever.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], for example `InvalidInput` for a zero duration.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        each!(self, AnyDatagram(s) => s.set_read_timeout(timeout))
    }

    /// Sets the write timeout; `None` blocks forever. A Unix datagram send waits while the
    /// receiver's queue is full, so a server that must not stall on one slow client sets this.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], for example `InvalidInput` for a zero duration.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        each!(self, AnyDatagram(s) => s.set_write_timeout(timeout))
    }

    /// Moves the socket into or out of non-blocking mode.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `fcntl(2)`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        each!(self, AnyDatagram(s) => s.set_nonblocking(nonblocking))
    }

    /// A second handle to the same socket.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `dup(2)` fails.
    pub fn try_clone(&self) -> Result<AnyDatagram> {
        Ok(each!(self, AnyDatagram(s) => s.try_clone()?.into()))
    }
}

impl From<UdpSocket> for AnyDatagram {
    fn from(socket: UdpSocket) -> Self {
        AnyDatagram::Udp(socket)
    }
}

impl From<UnixDatagram> for AnyDatagram {
    fn from(socket: UnixDatagram) -> Self {
        AnyDatagram::Unix(socket)
    }
}

impl AsFd for AnyDatagram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        each!(self, AnyDatagram(s) => s.as_fd())
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

pub(crate) type Inner = Kind<Connection<AnyStream>, AnyDatagram, UnixSeqpacket>;

/// A stream connection, a datagram socket or a packet socket: what [`AnyConnection`] and its
/// async twin hold. The calls that do not depend on the socket type are written here once, for
/// all.
#[derive(Debug)]
pub(crate) enum Kind<S, D, P> {
    Stream(S),
    Datagram(D),
    /// A `SOCK_SEQPACKET` connection: a close event as a stream has, boundaries as a datagram.
    Packet(P),
}

impl<S, D, P> Kind<S, D, P> {
    pub(crate) fn is_datagram(&self) -> bool {
        matches!(self, Kind::Datagram(_))
    }

    pub(crate) fn stream(&self) -> Option<&S> {
        match self {
            Kind::Stream(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn stream_mut(&mut self) -> Option<&mut S> {
        match self {
            Kind::Stream(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn into_stream(self) -> Option<S> {
        match self {
            Kind::Stream(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn into_datagram(self) -> Option<D> {
        match self {
            Kind::Datagram(d) => Some(d),
            _ => None,
        }
    }

    pub(crate) fn datagram(&self) -> Option<&D> {
        match self {
            Kind::Datagram(d) => Some(d),
            _ => None,
        }
    }

    pub(crate) fn packet(&self) -> Option<&P> {
        match self {
            Kind::Packet(p) => Some(p),
            _ => None,
        }
    }

    pub(crate) fn into_packet(self) -> Option<P> {
        match self {
            Kind::Packet(p) => Some(p),
            _ => None,
        }
    }

    /// The stream to run the handshake over; on a datagram or packet socket
    /// [`Error::WrongSocketType`] naming the socket's own endpoint, which `local` reads, or for
    /// a packet socket the endpoint of whichever end has one (`packet_endpoint`).
    pub(crate) fn handshake_stream(
        &mut self,
        local: impl FnOnce(&D) -> Result<Endpoint>,
        packet_endpoint: impl FnOnce(&P) -> Result<Endpoint>,
    ) -> Result<&mut S> {
        match self {
            Kind::Stream(s) => Ok(s),
            Kind::Datagram(d) => Err(wrong_type(&local(d)?, SocketType::Stream)),
            Kind::Packet(p) => Err(wrong_type(&packet_endpoint(p)?, SocketType::Stream)),
        }
    }

    /// The result of `stream`, `datagram` or `packet`, whichever kind this is.
    pub(crate) fn either<R>(
        &self,
        stream: impl FnOnce(&S) -> R,
        datagram: impl FnOnce(&D) -> R,
        packet: impl FnOnce(&P) -> R,
    ) -> R {
        match self {
            Kind::Stream(s) => stream(s),
            Kind::Datagram(d) => datagram(d),
            Kind::Packet(p) => packet(p),
        }
    }

    /// Sets the largest message a receive accepts: `max` for a stream, and for a datagram or
    /// packet socket `max` or, above what a `usize` holds, `usize::MAX`.
    pub(crate) fn set_max_message_len(
        &mut self,
        max: u64,
        stream: impl FnOnce(&mut S, u64) -> &mut S,
        datagram: impl FnOnce(&mut D, usize) -> &mut D,
        packet: impl FnOnce(&mut P, usize) -> &mut P,
    ) {
        let max_usize = usize::try_from(max).unwrap_or(usize::MAX);
        match self {
            Kind::Stream(s) => {
                stream(s, max);
            }
            Kind::Datagram(d) => {
                datagram(d, max_usize);
            }
            Kind::Packet(p) => {
                packet(p, max_usize);
            }
        }
    }
}

impl AnyConnection {
    /// Sends one message.
    ///
    /// # Errors
    ///
    /// As [`Connection::send`], or for datagrams and packets [`Error::MessageTooLarge`] and
    /// [`Error::Io`] (`ConnectionRefused` once a datagram peer is known to be gone,
    /// `BrokenPipe` once a packet peer closed).
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        each!(&mut self.0, Inner(c) => c.send(msg))
    }

    /// Writes the rest of a frame that an earlier [`send`](Self::send) left queued, as
    /// [`Connection::flush`]; a datagram is with the kernel once sent, so there it does nothing.
    ///
    /// # Errors
    ///
    /// As [`Connection::flush`].
    pub fn flush(&mut self) -> Result<()> {
        match &mut self.0 {
            Inner::Stream(c) => c.flush(),
            Inner::Datagram(_) | Inner::Packet(_) => Ok(()),
        }
    }

    /// Bytes of an accepted frame that wait in the connection to be written, as
    /// [`Connection::pending_len`]; always 0 for datagrams.
    pub fn pending_len(&self) -> usize {
        match &self.0 {
            Inner::Stream(c) => c.pending_len(),
            Inner::Datagram(_) | Inner::Packet(_) => 0,
        }
    }

    /// Receives one message into `buf`; `Ok(None)` when a stream or packet peer closed
    /// cleanly.
    ///
    /// # Errors
    ///
    /// As [`Connection::recv_into`], or for datagrams and packets [`Error::Truncated`] and
    /// [`Error::Io`].
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        match &mut self.0 {
            Inner::Stream(c) => c.recv_into(buf),
            Inner::Datagram(d) => d.recv_into(buf).map(Some),
            Inner::Packet(p) => p.recv_into(buf),
        }
    }

    /// Receives one message into a new `Vec`; `Ok(None)` when a stream peer closed cleanly.
    ///
    /// # Errors
    ///
    /// As [`recv_into`](Self::recv_into).
    pub fn recv(&mut self) -> Result<Option<Vec<u8>>> {
        let mut buf = Vec::new();
        Ok(self.recv_into(&mut buf)?.map(|_| buf))
    }

    /// Sends one message with the descriptors `fds` attached, as [`Connection::send_with_fds`]
    /// on a Unix stream and [`UnixDatagram::send_with_fds`] on a Unix datagram socket.
    ///
    /// # Errors
    ///
    /// [`Error::FdsUnsupported`] on TCP and UDP, and [`Error::TooManyFds`], before anything is
    /// sent; otherwise as [`send`](Self::send).
    pub fn send_with_fds(&mut self, msg: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        each!(&mut self.0, Inner(c) => c.send_with_fds(msg, fds))
    }

    /// Receives one message into a new `Vec`, with the descriptors sent with it; `Ok(None)`
    /// when a stream peer closed cleanly.
    ///
    /// # Errors
    ///
    /// As [`recv_into_with_fds`](Self::recv_into_with_fds).
    pub fn recv_with_fds(&mut self) -> Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
        crate::fd::recv_new_with_fds(|buf, fds| self.recv_into_with_fds(buf, fds))
    }

    /// Receives one message into `buf` and the descriptors sent with it into `fds`, as
    /// [`Connection::recv_into_with_fds`] and [`UnixDatagram::recv_into_with_fds`].
    ///
    /// # Errors
    ///
    /// [`Error::FdsUnsupported`] on TCP and UDP, before any read; [`Error::FdsTruncated`] in
    /// place of a message that lost descriptors; otherwise as [`recv_into`](Self::recv_into).
    pub fn recv_into_with_fds(
        &mut self,
        buf: &mut Vec<u8>,
        fds: &mut Vec<OwnedFd>,
    ) -> Result<Option<usize>> {
        match &mut self.0 {
            Inner::Stream(c) => c.recv_into_with_fds(buf, fds),
            Inner::Datagram(d) => d.recv_into_with_fds(buf, fds).map(Some),
            Inner::Packet(p) => p.recv_into_with_fds(buf, fds),
        }
    }

    /// Splits the connection into a receiving half and a sending half, to be moved to two
    /// threads, as [`Connection::split`] does; a datagram or packet socket is split into two
    /// handles of it (`dup(2)`).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `dup(2)` fails.
    pub fn split(self) -> Result<(AnyRecvHalf, AnySendHalf)> {
        Ok(match self.0 {
            Inner::Stream(c) => {
                let (rx, tx) = c.split()?;
                (
                    AnyRecvHalf(RecvInner::Stream(rx)),
                    AnySendHalf(SendInner::Stream(tx)),
                )
            }
            Inner::Datagram(d) => {
                let tx = d.try_clone()?;
                (
                    AnyRecvHalf(RecvInner::Datagram(d)),
                    AnySendHalf(SendInner::Datagram(tx)),
                )
            }
            Inner::Packet(p) => {
                let tx = p.try_clone()?;
                (
                    AnyRecvHalf(RecvInner::Packet(p)),
                    AnySendHalf(SendInner::Packet(tx)),
                )
            }
        })
    }

    /// Sets the read timeout; `None` blocks forever.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], for example `InvalidInput` for a zero duration.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        each!(&self.0, Inner(c) => c.set_read_timeout(timeout))
    }

    /// Sets the write timeout; `None` blocks forever.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], for example `InvalidInput` for a zero duration.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        each!(&self.0, Inner(c) => c.set_write_timeout(timeout))
    }

    /// A second handle, to send on one thread while another receives.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `dup(2)` fails.
    pub fn try_clone(&self) -> Result<AnyConnection> {
        Ok(each!(&self.0, Inner(c) => c.try_clone()?.into()))
    }

    /// The largest message [`recv`](Self::recv) accepts, as
    /// [`Connection::max_message_len`], [`AnyDatagram::max_message_len`] or
    /// [`UnixSeqpacket::max_message_len`].
    pub fn max_message_len(&self) -> u64 {
        self.0.either(
            Connection::max_message_len,
            |d| d.max_message_len() as u64,
            |p| p.max_message_len() as u64,
        )
    }

    /// Sets the largest message [`recv`](Self::recv) accepts, as
    /// [`Connection::set_max_message_len`], [`AnyDatagram::set_max_message_len`] or
    /// [`UnixSeqpacket::set_max_message_len`] (a limit above what a `usize` holds is
    /// `usize::MAX`). Takes effect from the next message.
    pub fn set_max_message_len(&mut self, max: u64) -> &mut Self {
        self.0.set_max_message_len(
            max,
            Connection::set_max_message_len,
            AnyDatagram::set_max_message_len,
            UnixSeqpacket::set_max_message_len,
        );
        self
    }

    /// Bounds each receive and each send of a stream connection as a whole, as
    /// [`Connection::set_message_timeout`], so that a peer trickling a message, or reading one
    /// a little at a time, cannot hold a call longer. Datagram and packet sockets are left as
    /// they are: each message arrives whole in one read and goes out in one write, which their
    /// read and write timeouts bound already.
    pub fn set_message_timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        if let Some(conn) = self.0.stream_mut() {
            conn.set_message_timeout(timeout);
        }
        self
    }

    /// Sets whether a stream connection receives descriptors, as
    /// [`Connection::set_receive_fds`]: set not to, a `unix:` connection reads with `recv(2)`,
    /// the kernel closes descriptors a peer sends, and `recv_with_fds` is
    /// [`Error::FdsRefused`]. Datagram and packet sockets are left as they are: their plain
    /// receives take no descriptors already, at no cost.
    pub fn set_receive_fds(&mut self, receive: bool) -> &mut Self {
        if let Some(conn) = self.0.stream_mut() {
            conn.set_receive_fds(receive);
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
        self.0
            .handshake_stream(AnyDatagram::local_endpoint, packet_endpoint)
    }

    /// Whether messages travel as datagrams (no delivery promise over UDP, no close event).
    pub fn is_datagram(&self) -> bool {
        self.0.is_datagram()
    }

    /// The stream connection inside, if this is a stream transport.
    pub fn as_stream(&self) -> Option<&Connection<AnyStream>> {
        self.0.stream()
    }

    /// The stream connection inside, if this is a stream transport.
    pub fn as_stream_mut(&mut self) -> Option<&mut Connection<AnyStream>> {
        self.0.stream_mut()
    }

    /// The stream connection inside, if this is a stream transport.
    pub fn into_stream(self) -> Option<Connection<AnyStream>> {
        self.0.into_stream()
    }

    /// The datagram socket inside, if this is a datagram transport.
    pub fn as_datagram(&self) -> Option<&AnyDatagram> {
        self.0.datagram()
    }

    /// The datagram socket inside, if this is a datagram transport.
    pub fn into_datagram(self) -> Option<AnyDatagram> {
        self.0.into_datagram()
    }

    /// The packet socket inside, if this is a `unixpacket:` connection.
    pub fn as_seqpacket(&self) -> Option<&UnixSeqpacket> {
        self.0.packet()
    }

    /// The packet socket inside, if this is a `unixpacket:` connection.
    pub fn into_seqpacket(self) -> Option<UnixSeqpacket> {
        self.0.into_packet()
    }

    /// The connection inside, whichever kind it is: for the async side's conversion.
    #[cfg(feature = "tokio")]
    pub(crate) fn into_kind(self) -> Inner {
        self.0
    }
}

/// The endpoint a packet connection names in an error: its own end's (a server's), else its
/// peer's (a client's, whose own end is unnamed).
pub(crate) fn packet_endpoint(p: &UnixSeqpacket) -> Result<Endpoint> {
    p.local_endpoint().or_else(|_| p.peer_endpoint())
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

impl From<UnixSeqpacket> for AnyConnection {
    fn from(socket: UnixSeqpacket) -> Self {
        AnyConnection(Inner::Packet(socket))
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
        each!(&self.0, Inner(c) => c.as_fd())
    }
}

impl AsRawFd for AnyConnection {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// The receiving half of an [`AnyConnection`], from [`AnyConnection::split`]: it can only
/// receive.
#[derive(Debug)]
pub struct AnyRecvHalf(RecvInner);

#[derive(Debug)]
enum RecvInner {
    Stream(RecvHalf<AnyStream>),
    Datagram(AnyDatagram),
    Packet(UnixSeqpacket),
}

impl AnyRecvHalf {
    /// As [`AnyConnection::recv_into`].
    ///
    /// # Errors
    ///
    /// As [`AnyConnection::recv_into`].
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        match &mut self.0 {
            RecvInner::Stream(rx) => rx.recv_into(buf),
            RecvInner::Datagram(d) => d.recv_into(buf).map(Some),
            RecvInner::Packet(p) => p.recv_into(buf),
        }
    }

    /// As [`AnyConnection::recv`].
    ///
    /// # Errors
    ///
    /// As [`AnyConnection::recv_into`].
    pub fn recv(&mut self) -> Result<Option<Vec<u8>>> {
        let mut buf = Vec::new();
        Ok(self.recv_into(&mut buf)?.map(|_| buf))
    }

    /// Sets the read timeout; `None` blocks forever.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], for example `InvalidInput` for a zero duration.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        each!(&self.0, RecvInner(rx) => rx.set_read_timeout(timeout))
    }
}

impl AsFd for AnyRecvHalf {
    fn as_fd(&self) -> BorrowedFd<'_> {
        each!(&self.0, RecvInner(rx) => rx.as_fd())
    }
}

impl AsRawFd for AnyRecvHalf {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// The sending half of an [`AnyConnection`], from [`AnyConnection::split`]: it can only send.
#[derive(Debug)]
pub struct AnySendHalf(SendInner);

#[derive(Debug)]
enum SendInner {
    Stream(SendHalf<AnyStream>),
    Datagram(AnyDatagram),
    Packet(UnixSeqpacket),
}

impl AnySendHalf {
    /// As [`AnyConnection::send`].
    ///
    /// # Errors
    ///
    /// As [`AnyConnection::send`].
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        each!(&mut self.0, SendInner(tx) => tx.send(msg))
    }

    /// As [`AnyConnection::flush`].
    ///
    /// # Errors
    ///
    /// As [`AnyConnection::flush`].
    pub fn flush(&mut self) -> Result<()> {
        match &mut self.0 {
            SendInner::Stream(tx) => tx.flush(),
            SendInner::Datagram(_) | SendInner::Packet(_) => Ok(()),
        }
    }

    /// As [`AnyConnection::pending_len`].
    pub fn pending_len(&self) -> usize {
        match &self.0 {
            SendInner::Stream(tx) => tx.pending_len(),
            SendInner::Datagram(_) | SendInner::Packet(_) => 0,
        }
    }

    /// Sets the write timeout; `None` blocks forever.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], for example `InvalidInput` for a zero duration.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        each!(&self.0, SendInner(tx) => tx.set_write_timeout(timeout))
    }

    /// A second sending half, sharing the send lock (streams) so that frames never interleave.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `dup(2)` fails.
    pub fn try_clone(&self) -> Result<AnySendHalf> {
        Ok(AnySendHalf(match &self.0 {
            SendInner::Stream(tx) => SendInner::Stream(tx.try_clone()?),
            SendInner::Datagram(d) => SendInner::Datagram(d.try_clone()?),
            SendInner::Packet(p) => SendInner::Packet(p.try_clone()?),
        }))
    }
}

impl AsFd for AnySendHalf {
    fn as_fd(&self) -> BorrowedFd<'_> {
        each!(&self.0, SendInner(tx) => tx.as_fd())
    }
}

impl AsRawFd for AnySendHalf {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}
