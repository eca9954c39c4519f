//! [`AsyncAnyConnection`] and [`connect`]: the run-time chosen async connection for an
//! [`Endpoint`].

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use super::conn::AsyncConnection;
use super::datagram::AsyncDatagram;
use super::seqpacket::AsyncSeqpacket;
use super::stream::AsyncAnyStream;
use crate::any::{packet_endpoint, wrong_type, AnyDatagram, AnyStream, Kind};
use crate::auth::Authenticator;
use crate::connect::ConnectOptions;
use crate::endpoint::Endpoint;
use crate::error::{Result, SocketType};

/// Connects to `endpoint`, whichever of the four transports it names:
/// [`connect_with(&ConnectOptions::new(), endpoint)`](connect_with), with no time limit and no
/// waiting for a server.
///
/// # Errors
///
/// As [`connect_with`].
pub async fn connect(endpoint: &Endpoint) -> Result<AsyncAnyConnection> {
    connect_with(&ConnectOptions::new(), endpoint).await
}

/// Connects to `endpoint` with `options`: host names, the connect timeout and waiting for a
/// server exactly as [`ConnectOptions::connect`] does, because that is what runs, on tokio's
/// blocking pool (as tokio's own name lookups do), so the runtime's threads never wait in it.
///
/// If the future is dropped, an attempt already running goes on in the background until it
/// ends, and its connection is then closed.
///
/// # Errors
///
/// As [`ConnectOptions::connect`]; [`Error::Io`](crate::Error::Io) if the blocking pool is shut down.
pub async fn connect_with(
    options: &ConnectOptions,
    endpoint: &Endpoint,
) -> Result<AsyncAnyConnection> {
    let (options, target) = (options.clone(), endpoint.clone());
    let blocking = ::tokio::task::spawn_blocking(move || -> Result<Connected> {
        if target.is_datagram() {
            return connect_datagram(&options, &target).map(Connected::Datagram);
        }
        if target.socket_type() == SocketType::SeqPacket {
            let conn = options.connect(&target)?;
            let packet = conn.into_seqpacket();
            return packet
                .map(Connected::Packet)
                .ok_or_else(|| wrong_type(&target, SocketType::SeqPacket));
        }
        let conn = options.connect(&target)?;
        let stream = conn
            .into_stream()
            .ok_or_else(|| wrong_type(&target, SocketType::Datagram))?;
        // Freshly connected: nothing received or queued is lost with the wrapper.
        Ok(Connected::Stream(stream.into_inner()))
    });
    let connected = blocking.await.map_err(std::io::Error::other)??;
    Ok(match connected {
        Connected::Stream(AnyStream::Unix(s)) => {
            let std = std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(s));
            std.set_nonblocking(true)?;
            AsyncConnection::new(AsyncAnyStream::Unix(::tokio::net::UnixStream::from_std(
                std,
            )?))
            .into()
        }
        Connected::Stream(AnyStream::Tcp(s)) => {
            let std = std::net::TcpStream::from(std::os::fd::OwnedFd::from(s));
            std.set_nonblocking(true)?;
            AsyncConnection::new(AsyncAnyStream::Tcp(::tokio::net::TcpStream::from_std(std)?))
                .into()
        }
        Connected::Datagram(d) => AsyncDatagram::from_blocking(d)?.into(),
        Connected::Packet(p) => AsyncSeqpacket::from_blocking(p)?.into(),
    })
}

/// What the blocking connect gives back to the runtime.
enum Connected {
    Stream(AnyStream),
    Datagram(AnyDatagram),
    Packet(crate::UnixSeqpacket),
}

/// A datagram socket connected to `endpoint`, as [`ConnectOptions::connect`] makes one; built
/// from the transport so the socket (and its bound file, for `unixgram:`) is owned here.
fn connect_datagram(options: &ConnectOptions, endpoint: &Endpoint) -> Result<AnyDatagram> {
    // The blocking connect's socket itself: its waiting, its errors and every datagram endpoint
    // form (host names, abstract names) exist once.
    options
        .connect(endpoint)?
        .into_datagram()
        .ok_or_else(|| wrong_type(endpoint, SocketType::Datagram))
}

/// An async message connection to an [`Endpoint`] of any of the four transports: what
/// [`connect`] and [`AsyncAnyListener::accept`](super::AsyncAnyListener::accept) give.
///
/// The same calls work on every transport, with the differences [`Channel`](crate::Channel)
/// lists between streams and datagrams.
#[derive(Debug)]
pub struct AsyncAnyConnection(Inner);

type Inner = Kind<AsyncConnection<AsyncAnyStream>, AsyncDatagram, AsyncSeqpacket>;

impl AsyncAnyConnection {
    /// Sends one message. Cancel-safe as [`AsyncConnection::send`].
    ///
    /// # Errors
    ///
    /// As [`AsyncConnection::send`] or [`AsyncDatagram::send`].
    pub async fn send(&mut self, msg: &[u8]) -> Result<()> {
        match &mut self.0 {
            Inner::Stream(c) => c.send(msg).await,
            Inner::Datagram(d) => d.send(msg).await,
            Inner::Packet(p) => p.send(msg).await,
        }
    }

    /// Receives one message into `buf`; `Ok(None)` when a stream peer closed cleanly.
    /// Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`AsyncConnection::recv_into`] or [`AsyncDatagram::recv_into`].
    pub async fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        match &mut self.0 {
            Inner::Stream(c) => c.recv_into(buf).await,
            Inner::Datagram(d) => d.recv_into(buf).await.map(Some),
            Inner::Packet(p) => p.recv_into(buf).await,
        }
    }

    /// Receives one message into a new `Vec`; `Ok(None)` when a stream peer closed cleanly.
    /// Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`recv_into`](Self::recv_into).
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>> {
        let mut buf = Vec::new();
        Ok(self.recv_into(&mut buf).await?.map(|_| buf))
    }

    /// The largest message a receive accepts.
    pub fn max_message_len(&self) -> u64 {
        self.0.either(
            AsyncConnection::max_message_len,
            |d| d.max_message_len() as u64,
            |p| p.max_message_len() as u64,
        )
    }

    /// Sets the largest message a receive accepts (for datagrams, a limit above what a `usize`
    /// holds is `usize::MAX`). Takes effect from the next message.
    pub fn set_max_message_len(&mut self, max: u64) -> &mut Self {
        self.0.set_max_message_len(
            max,
            AsyncConnection::set_max_message_len,
            AsyncDatagram::set_max_message_len,
            AsyncSeqpacket::set_max_message_len,
        );
        self
    }

    /// Runs the accepting side of the shared-key handshake, as
    /// [`AsyncConnection::authenticate_server`].
    ///
    /// # Errors
    ///
    /// As [`AsyncConnection::authenticate_server`]; [`Error::WrongSocketType`](crate::Error::WrongSocketType) on a datagram
    /// transport, naming the socket's own endpoint.
    pub async fn authenticate_server(&mut self, auth: &Authenticator) -> Result<()> {
        self.stream_for_handshake()?.authenticate_server(auth).await
    }

    /// Runs the connecting side of the shared-key handshake, as
    /// [`AsyncConnection::authenticate_client`].
    ///
    /// # Errors
    ///
    /// As [`authenticate_server`](Self::authenticate_server).
    pub async fn authenticate_client(&mut self, auth: &Authenticator) -> Result<()> {
        self.stream_for_handshake()?.authenticate_client(auth).await
    }

    fn stream_for_handshake(&mut self) -> Result<&mut AsyncConnection<AsyncAnyStream>> {
        self.0.handshake_stream(AsyncDatagram::local_endpoint, |p| {
            packet_endpoint(p.get_ref())
        })
    }

    /// Whether messages travel as datagrams.
    pub fn is_datagram(&self) -> bool {
        self.0.is_datagram()
    }

    /// The stream connection inside, if this is a stream transport.
    pub fn as_stream(&self) -> Option<&AsyncConnection<AsyncAnyStream>> {
        self.0.stream()
    }

    /// The stream connection inside, if this is a stream transport: for
    /// [`into_split`](AsyncConnection::into_split) and [`feed`](AsyncConnection::feed).
    pub fn into_stream(self) -> Option<AsyncConnection<AsyncAnyStream>> {
        self.0.into_stream()
    }

    /// The datagram socket inside, if this is a datagram transport.
    pub fn as_datagram(&self) -> Option<&AsyncDatagram> {
        self.0.datagram()
    }

    /// The packet socket inside, if this is a `unixpacket:` connection.
    pub fn as_seqpacket(&self) -> Option<&AsyncSeqpacket> {
        self.0.packet()
    }
}

impl From<AsyncSeqpacket> for AsyncAnyConnection {
    fn from(socket: AsyncSeqpacket) -> Self {
        AsyncAnyConnection(Inner::Packet(socket))
    }
}

impl From<AsyncConnection<AsyncAnyStream>> for AsyncAnyConnection {
    fn from(conn: AsyncConnection<AsyncAnyStream>) -> Self {
        AsyncAnyConnection(Inner::Stream(conn))
    }
}

impl From<AsyncDatagram> for AsyncAnyConnection {
    /// A connection over a datagram socket; connect it first for `send` and `recv`.
    fn from(socket: AsyncDatagram) -> Self {
        AsyncAnyConnection(Inner::Datagram(socket))
    }
}

impl AsFd for AsyncAnyConnection {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.0 {
            Inner::Stream(c) => c.as_fd(),
            Inner::Datagram(d) => d.as_fd(),
            Inner::Packet(p) => p.as_fd(),
        }
    }
}

impl AsRawFd for AsyncAnyConnection {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}
