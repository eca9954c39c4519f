//! The [`Transport`] trait: one interface over every stream socket family.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::path::PathBuf;

use crate::conn::Connection;
use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::inet::{TcpListener, TcpStream};
use crate::stream::Stream;
use crate::unix::{UnixListener, UnixStream};

mod sealed {
    pub trait Sealed {}
}

/// A stream socket family: how to bind, accept and connect, with its address, listener and
/// stream types.
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
pub trait Transport: sealed::Sealed + Send + Sync + 'static {
    /// What a listener binds and a client connects to.
    type Addr: Clone + fmt::Debug + Send + Sync + 'static;
    /// A listening socket.
    type Listener: fmt::Debug + AsFd + Send + Sync + 'static;
    /// A connected socket.
    type Stream: Stream + 'static;

    /// Binds and listens on `addr`.
    ///
    /// # Errors
    ///
    /// As the family's listener `bind`.
    fn bind(addr: &Self::Addr) -> Result<Self::Listener>;

    /// Binds a fresh endpoint that only this machine can reach: a socket in a new private
    /// temporary directory, or `127.0.0.1` on a free port.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) if no such endpoint can be made.
    fn bind_ephemeral() -> Result<Self::Listener>;

    /// The address a listener is bound to, with the real port for port 0.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `getsockname(2)`.
    fn local_addr(listener: &Self::Listener) -> Result<Self::Addr>;

    /// Accepts one connection.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `accept(2)`.
    fn accept(listener: &Self::Listener) -> Result<Connection<Self::Stream>>;

    /// Connects to `addr`.
    ///
    /// # Errors
    ///
    /// As the family's stream `connect`.
    fn connect(addr: &Self::Addr) -> Result<Connection<Self::Stream>>;

    /// `addr` as an [`Endpoint`].
    fn endpoint(addr: &Self::Addr) -> Endpoint;
}

/// The Unix-domain stream transport: [`UnixListener`] and [`UnixStream`], addressed by path.
#[derive(Debug)]
pub enum UnixTransport {}

/// The TCP transport: [`TcpListener`] and [`TcpStream`], addressed by IP socket address.
#[derive(Debug)]
pub enum TcpTransport {}

impl sealed::Sealed for UnixTransport {}
impl sealed::Sealed for TcpTransport {}

impl Transport for UnixTransport {
    type Addr = PathBuf;
    type Listener = UnixListener;
    type Stream = UnixStream;

    fn bind(addr: &PathBuf) -> Result<UnixListener> {
        UnixListener::bind(addr)
    }
    fn bind_ephemeral() -> Result<UnixListener> {
        UnixListener::bind_temp()
    }
    fn local_addr(listener: &UnixListener) -> Result<PathBuf> {
        Ok(listener.path().into())
    }
    fn accept(listener: &UnixListener) -> Result<Connection<UnixStream>> {
        listener.accept().map(|(c, _)| c)
    }
    fn connect(addr: &PathBuf) -> Result<Connection<UnixStream>> {
        UnixStream::connect(addr).map(Connection::new)
    }
    fn endpoint(addr: &PathBuf) -> Endpoint {
        Endpoint::Unix(addr.clone())
    }
}

impl Transport for TcpTransport {
    type Addr = SocketAddr;
    type Listener = TcpListener;
    type Stream = TcpStream;

    fn bind(addr: &SocketAddr) -> Result<TcpListener> {
        TcpListener::bind(*addr)
    }
    fn bind_ephemeral() -> Result<TcpListener> {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0).into())
    }
    fn local_addr(listener: &TcpListener) -> Result<SocketAddr> {
        listener.local_addr()
    }
    fn accept(listener: &TcpListener) -> Result<Connection<TcpStream>> {
        listener.accept().map(|(c, _)| c)
    }
    fn connect(addr: &SocketAddr) -> Result<Connection<TcpStream>> {
        TcpStream::connect(*addr).map(Connection::new)
    }
    fn endpoint(addr: &SocketAddr) -> Endpoint {
        Endpoint::Tcp(*addr)
    }
}
