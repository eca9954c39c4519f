//! [`AsyncAnyConnection`]: the run-time chosen async connection for an
//! [`Endpoint`](crate::Endpoint); [`connect`](super::connect) makes one.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::conn::AsyncConnection;
use super::datagram::AsyncDatagram;
use super::seqpacket::AsyncSeqpacket;
use super::stream::AsyncAnyStream;
use crate::any::{packet_endpoint, AnyConnection, AnyStream, Kind};
use crate::auth::Authenticator;
use crate::error::Result;

/// The socket this process inherited from its parent (`MSGSOCK_FD`, set by
/// [`CommandExt::spawn_connected`](crate::CommandExt::spawn_connected) or
/// [`CommandExt::pass_socket`](crate::CommandExt::pass_socket)), as an async message
/// connection: the async form of [`child::connection`](crate::child::connection), which it
/// calls, then registers the socket with tokio in non-blocking mode. Call it early in `main`,
/// inside the runtime, before other threads start: it removes `MSGSOCK_FD` from the
/// environment.
///
/// # Errors
///
/// As [`child::connection`](crate::child::connection); [`Error::Io`](crate::Error::Io) without a
/// runtime to register the socket with.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> msgsock::Result<()> {
/// // In a child spawned with `Command::spawn_connected`:
/// let mut conn = msgsock::tokio::child_connection().await?;
/// while let Some(msg) = conn.recv().await? {
///     conn.send(&msg).await?;
/// }
/// # Ok(())
/// # }
/// ```
pub async fn child_connection() -> Result<AsyncAnyConnection> {
    // `async` as `bind` is: it keeps callers inside the runtime `from_std` needs.
    AsyncAnyConnection::from_blocking(crate::child::connection()?)
}

/// An async message connection to an [`Endpoint`](crate::Endpoint) of any of the four
/// transports: what [`connect`](super::connect) and
/// [`AsyncAnyListener::accept`](super::AsyncAnyListener::accept) give.
///
/// The same calls work on every transport, with the differences [`Channel`](crate::Channel)
/// lists between streams and datagrams.
#[derive(Debug)]
pub struct AsyncAnyConnection(Inner);

type Inner = Kind<AsyncConnection<AsyncAnyStream>, AsyncDatagram, AsyncSeqpacket>;

impl AsyncAnyConnection {
    /// The blocking connection's socket, made non-blocking and registered with tokio. Only
    /// for a connection that has received nothing yet: bytes it buffered would be lost.
    pub(super) fn from_blocking(conn: AnyConnection) -> Result<AsyncAnyConnection> {
        super::in_runtime()?;
        let stream = match conn.into_kind() {
            Kind::Stream(conn) => conn.into_inner(),
            Kind::Datagram(socket) => return Ok(AsyncDatagram::from_blocking(socket)?.into()),
            Kind::Packet(socket) => return Ok(AsyncSeqpacket::from_blocking(socket)?.into()),
        };
        Ok(AsyncConnection::new(match stream {
            AnyStream::Unix(s) => {
                let std = std::os::unix::net::UnixStream::from(OwnedFd::from(s));
                std.set_nonblocking(true)?;
                AsyncAnyStream::Unix(::tokio::net::UnixStream::from_std(std)?)
            }
            AnyStream::Tcp(s) => {
                let std = std::net::TcpStream::from(OwnedFd::from(s));
                std.set_nonblocking(true)?;
                AsyncAnyStream::Tcp(::tokio::net::TcpStream::from_std(std)?)
            }
        })
        .into())
    }

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

    /// Sends one message with the descriptors `fds` attached, as
    /// [`AsyncConnection::send_with_fds`] on a Unix stream, [`AsyncDatagram::send_with_fds`] on
    /// a Unix datagram socket and [`AsyncSeqpacket::send_with_fds`] on a SEQPACKET connection.
    /// Cancel-safe.
    ///
    /// # Errors
    ///
    /// [`Error::FdsUnsupported`](crate::Error::FdsUnsupported) on TCP and UDP, and
    /// [`Error::TooManyFds`](crate::Error::TooManyFds), before anything is sent; otherwise as
    /// [`send`](Self::send).
    pub async fn send_with_fds(&mut self, msg: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        match &mut self.0 {
            Inner::Stream(c) => c.send_with_fds(msg, fds).await,
            Inner::Datagram(d) => d.send_with_fds(msg, fds).await,
            Inner::Packet(p) => p.send_with_fds(msg, fds).await,
        }
    }

    /// Receives one message into a new `Vec`, with the descriptors sent with it; `Ok(None)`
    /// when a stream peer closed cleanly. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`recv_into_with_fds`](Self::recv_into_with_fds).
    pub async fn recv_with_fds(&mut self) -> Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
        crate::fd::recv_new_with_fds_async(async |buf, fds| self.recv_into_with_fds(buf, fds).await)
            .await
    }

    /// Receives one message into `buf` and the descriptors sent with it into `fds`, as
    /// [`AsyncConnection::recv_into_with_fds`], [`AsyncDatagram::recv_into_with_fds`] and
    /// [`AsyncSeqpacket::recv_into_with_fds`]. Cancel-safe.
    ///
    /// # Errors
    ///
    /// [`Error::FdsUnsupported`](crate::Error::FdsUnsupported) on TCP and UDP, before any read;
    /// [`Error::FdsTruncated`](crate::Error::FdsTruncated) in place of a message that lost
    /// descriptors; otherwise as [`recv_into`](Self::recv_into).
    pub async fn recv_into_with_fds(
        &mut self,
        buf: &mut Vec<u8>,
        fds: &mut Vec<OwnedFd>,
    ) -> Result<Option<usize>> {
        match &mut self.0 {
            Inner::Stream(c) => c.recv_into_with_fds(buf, fds).await,
            Inner::Datagram(d) => d.recv_into_with_fds(buf, fds).await.map(Some),
            Inner::Packet(p) => p.recv_into_with_fds(buf, fds).await,
        }
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

    /// Sets whether a stream connection receives descriptors, as
    /// [`AnyConnection::set_receive_fds`](crate::AnyConnection::set_receive_fds).
    pub fn set_receive_fds(&mut self, receive: bool) -> &mut Self {
        if let Some(conn) = self.0.stream_mut() {
            conn.set_receive_fds(receive);
        }
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

    /// The datagram socket inside, if this is a datagram transport: its `send` and `recv` take
    /// `&self`, so an `Arc` of it serves a sending and a receiving task at once.
    pub fn into_datagram(self) -> Option<AsyncDatagram> {
        self.0.into_datagram()
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
