//! The family traits generic code is written against: [`Bind`], what every socket family has
//! (an address type, binding, its bound address and endpoint), and on top of it [`Transport`]
//! for stream families and [`DatagramTransport`] for datagram families.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::path::PathBuf;

use crate::channel::Channel;
use crate::conn::Connection;
use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::inet::{TcpListener, TcpStream, UdpSocket};
use crate::stream::Stream;
use crate::unix::{UnixDatagram, UnixListener, UnixStream};

mod sealed {
    pub trait Sealed {}
}

/// A socket family: its address type, how to bind a socket to an address, and the address and
/// [`Endpoint`] of a bound socket.
///
/// It is what [`Transport`] (stream families: the bound socket is a listener) and
/// [`DatagramTransport`] (datagram families: the bound socket sends and receives) have in common,
/// so code that only binds and reports addresses is written once for all four. The trait is
/// sealed, so methods can be added without breaking anyone.
///
/// # Examples
///
/// ```
/// use msgsock::{Bind, Endpoint, TcpTransport, UdpTransport, UnixDatagramTransport, UnixTransport};
///
/// fn fresh_endpoint<T: Bind>() -> msgsock::Result<(T::Bound, Endpoint)> {
///     let socket = T::bind_ephemeral()?;
///     let endpoint = T::endpoint(&T::local_addr(&socket)?);
///     Ok((socket, endpoint))
/// }
///
/// assert!(fresh_endpoint::<UnixTransport>()?.1.to_string().starts_with("unix:"));
/// assert!(fresh_endpoint::<TcpTransport>()?.1.to_string().starts_with("tcp:127.0.0.1:"));
/// assert!(fresh_endpoint::<UdpTransport>()?.1.to_string().starts_with("udp:127.0.0.1:"));
/// assert!(fresh_endpoint::<UnixDatagramTransport>()?.1.is_datagram());
/// # Ok::<(), msgsock::Error>(())
/// ```
pub trait Bind: sealed::Sealed + Send + Sync + 'static {
    /// What a socket binds, and a client connects or sends to.
    type Addr: Clone + fmt::Debug + Send + Sync + 'static;
    /// A bound socket: [`Transport::Listener`] or [`DatagramTransport::Socket`].
    type Bound: fmt::Debug + AsFd + Send + Sync + 'static;

    /// Binds a socket at `addr` (and, for a stream family, listens).
    ///
    /// # Errors
    ///
    /// As the family's `bind`: [`Error::AddrInUse`](crate::Error::AddrInUse) if the address is
    /// taken, and so on.
    fn bind(addr: &Self::Addr) -> Result<Self::Bound>;

    /// Binds a fresh address that only this machine can reach: a socket in a new private
    /// temporary directory, or `127.0.0.1` on a free port.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) if no such address can be made.
    fn bind_ephemeral() -> Result<Self::Bound>;

    /// The address a socket is bound to, with the real port for port 0.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `getsockname(2)`; with `NotFound` for a Unix socket
    /// that has no path.
    fn local_addr(socket: &Self::Bound) -> Result<Self::Addr>;

    /// `addr` as an [`Endpoint`].
    fn endpoint(addr: &Self::Addr) -> Endpoint;
}

/// A stream socket family: on top of [`Bind`] (whose bound socket is the listener), how to
/// accept and connect, with its stream type.
///
/// Code generic over `T: Transport` runs a server and a client without knowing the family. The
/// trait is sealed, so methods can be added without breaking anyone; it is implemented by
/// [`UnixTransport`] and [`TcpTransport`].
///
/// # Examples
///
/// ```
/// use msgsock::{Transport, UnixTransport, TcpTransport};
///
/// fn round_trip<T: Transport>() -> msgsock::Result<Vec<u8>> {
///     let listener = T::bind_ephemeral()?;
///     let addr = T::local_addr(&listener)?;
///     let server = std::thread::spawn(move || -> msgsock::Result<()> {
///         let mut conn = T::accept(&listener)?;
///         while let Some(msg) = conn.recv()? {
///             conn.send(&msg)?;
///         }
///         Ok(())
///     });
///     let mut client = T::connect(&addr)?;
///     client.send(b"echo me")?;
///     let reply = client.recv()?.expect("a reply");
///     drop(client);
///     server.join().unwrap()?;
///     Ok(reply)
/// }
///
/// assert_eq!(round_trip::<UnixTransport>()?, b"echo me");
/// assert_eq!(round_trip::<TcpTransport>()?, b"echo me");
/// # Ok::<(), msgsock::Error>(())
/// ```
pub trait Transport: Bind<Bound = <Self as Transport>::Listener> {
    /// A listening socket: what [`Bind::bind`] gives.
    type Listener: fmt::Debug + AsFd + Send + Sync + 'static;
    /// A connected socket.
    type Stream: Stream + 'static;

    /// Accepts one connection, as a message connection over the listener's stream.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `accept(2)`; [`Error::Shutdown`](crate::Error::Shutdown)
    /// once a [`ShutdownHandle`](crate::ShutdownHandle) of the listener was used.
    fn accept(listener: &Self::Listener) -> Result<Connection<Self::Stream>>;

    /// Connects to `addr`.
    ///
    /// # Errors
    ///
    /// As the family's stream `connect`.
    fn connect(addr: &Self::Addr) -> Result<Connection<Self::Stream>>;
}

/// The Unix-domain stream transport: [`UnixListener`] and [`UnixStream`], addressed by path.
#[derive(Debug)]
pub enum UnixTransport {}

/// The TCP transport: [`TcpListener`] and [`TcpStream`], addressed by IP socket address.
#[derive(Debug)]
pub enum TcpTransport {}

impl sealed::Sealed for UnixTransport {}
impl sealed::Sealed for TcpTransport {}

impl Bind for UnixTransport {
    type Addr = PathBuf;
    type Bound = UnixListener;

    fn bind(addr: &PathBuf) -> Result<UnixListener> {
        UnixListener::bind(addr)
    }
    fn bind_ephemeral() -> Result<UnixListener> {
        UnixListener::bind_temp()
    }
    fn local_addr(listener: &UnixListener) -> Result<PathBuf> {
        listener.local_path()
    }
    fn endpoint(addr: &PathBuf) -> Endpoint {
        Endpoint::Unix(addr.clone())
    }
}

impl Transport for UnixTransport {
    type Listener = UnixListener;
    type Stream = UnixStream;

    fn accept(listener: &UnixListener) -> Result<Connection<UnixStream>> {
        listener.accept().map(|(s, _)| Connection::new(s))
    }
    fn connect(addr: &PathBuf) -> Result<Connection<UnixStream>> {
        UnixStream::connect(addr).map(Connection::new)
    }
}

impl Bind for TcpTransport {
    type Addr = SocketAddr;
    type Bound = TcpListener;

    fn bind(addr: &SocketAddr) -> Result<TcpListener> {
        TcpListener::bind(*addr)
    }
    fn bind_ephemeral() -> Result<TcpListener> {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0).into())
    }
    fn local_addr(listener: &TcpListener) -> Result<SocketAddr> {
        listener.local_addr()
    }
    fn endpoint(addr: &SocketAddr) -> Endpoint {
        Endpoint::Tcp(*addr)
    }
}

impl Transport for TcpTransport {
    type Listener = TcpListener;
    type Stream = TcpStream;

    fn accept(listener: &TcpListener) -> Result<Connection<TcpStream>> {
        listener.accept().map(|(s, _)| Connection::new(s))
    }
    fn connect(addr: &SocketAddr) -> Result<Connection<TcpStream>> {
        TcpStream::connect(*addr).map(Connection::new)
    }
}

/// A datagram socket family: on top of [`Bind`] (whose bound socket is the datagram socket),
/// send to and receive from addresses, or connect to one peer.
///
/// Code generic over `T: DatagramTransport` runs on UDP and Unix datagram sockets alike. There is
/// no accept: a server binds, receives each datagram with the sender's address, and replies to
/// it. The trait is sealed.
///
/// # Examples
///
/// ```
/// use msgsock::{Channel, DatagramTransport, UdpTransport, UnixDatagramTransport};
///
/// fn echo_once<T: DatagramTransport>() -> msgsock::Result<Option<Vec<u8>>> {
///     let server = T::bind_ephemeral()?;
///     let mut client = T::connect(&T::local_addr(&server)?)?;
///     client.send(b"one datagram")?;
///     let mut buf = Vec::new();
///     let (_, from) = T::recv_from(&server, &mut buf)?;
///     T::send_to(&server, &buf, &from.expect("the client has an address"))?;
///     client.recv()
/// }
///
/// assert_eq!(echo_once::<UdpTransport>()?.as_deref(), Some(&b"one datagram"[..]));
/// assert_eq!(echo_once::<UnixDatagramTransport>()?.as_deref(), Some(&b"one datagram"[..]));
/// # Ok::<(), msgsock::Error>(())
/// ```
pub trait DatagramTransport: Bind<Bound = <Self as DatagramTransport>::Socket> {
    /// A datagram socket: what [`Bind::bind`] gives; connected, it is a [`Channel`].
    type Socket: Channel + fmt::Debug + AsFd + Send + Sync + 'static;

    /// A socket bound to a fresh address of its own (so that replies reach it) and connected to
    /// `addr`, ready for [`Channel::send`] and [`Channel::recv`].
    ///
    /// # Errors
    ///
    /// As [`bind_ephemeral`](Bind::bind_ephemeral), or the family's `connect`.
    fn connect(addr: &Self::Addr) -> Result<Self::Socket>;

    /// Sends one message as one datagram to `addr`.
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`](crate::Error::MessageTooLarge) if it does not fit in a
    /// datagram; [`Error::Io`](crate::Error::Io) otherwise.
    fn send_to(socket: &Self::Socket, msg: &[u8], addr: &Self::Addr) -> Result<()>;

    /// Receives one datagram into `buf`, replacing its contents; returns its length and the
    /// sender's address (`None` for an unbound Unix sender, which cannot be answered).
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`](crate::Error::Truncated) for a datagram above the receive limit;
    /// [`Error::Io`](crate::Error::Io) otherwise.
    fn recv_from(socket: &Self::Socket, buf: &mut Vec<u8>) -> Result<(usize, Option<Self::Addr>)>;
}

/// UDP: [`UdpSocket`], addressed by IP socket address.
#[derive(Debug)]
pub enum UdpTransport {}

/// Unix-domain datagrams: [`UnixDatagram`], addressed by path.
#[derive(Debug)]
pub enum UnixDatagramTransport {}

impl sealed::Sealed for UdpTransport {}
impl sealed::Sealed for UnixDatagramTransport {}

impl Bind for UdpTransport {
    type Addr = SocketAddr;
    type Bound = UdpSocket;

    fn bind(addr: &SocketAddr) -> Result<UdpSocket> {
        UdpSocket::bind(*addr)
    }
    fn bind_ephemeral() -> Result<UdpSocket> {
        UdpSocket::bind((Ipv4Addr::LOCALHOST, 0).into())
    }
    fn local_addr(socket: &UdpSocket) -> Result<SocketAddr> {
        socket.local_addr()
    }
    fn endpoint(addr: &SocketAddr) -> Endpoint {
        Endpoint::Udp(*addr)
    }
}

impl DatagramTransport for UdpTransport {
    type Socket = UdpSocket;

    fn connect(addr: &SocketAddr) -> Result<UdpSocket> {
        UdpSocket::connect_new(*addr)
    }
    fn send_to(socket: &UdpSocket, msg: &[u8], addr: &SocketAddr) -> Result<()> {
        socket.send_to(msg, *addr)
    }
    fn recv_from(socket: &UdpSocket, buf: &mut Vec<u8>) -> Result<(usize, Option<SocketAddr>)> {
        socket.recv_from(buf).map(|(n, a)| (n, Some(a)))
    }
}

impl Bind for UnixDatagramTransport {
    type Addr = PathBuf;
    type Bound = UnixDatagram;

    fn bind(addr: &PathBuf) -> Result<UnixDatagram> {
        UnixDatagram::bind(addr)
    }
    fn bind_ephemeral() -> Result<UnixDatagram> {
        UnixDatagram::bind_temp()
    }
    fn local_addr(socket: &UnixDatagram) -> Result<PathBuf> {
        socket.local_path()
    }
    fn endpoint(addr: &PathBuf) -> Endpoint {
        Endpoint::UnixDatagram(addr.clone())
    }
}

impl DatagramTransport for UnixDatagramTransport {
    type Socket = UnixDatagram;

    fn connect(addr: &PathBuf) -> Result<UnixDatagram> {
        UnixDatagram::connect_new(addr)
    }
    fn send_to(socket: &UnixDatagram, msg: &[u8], addr: &PathBuf) -> Result<()> {
        socket.send_to(msg, addr)
    }
    fn recv_from(socket: &UnixDatagram, buf: &mut Vec<u8>) -> Result<(usize, Option<PathBuf>)> {
        socket.recv_from(buf)
    }
}
