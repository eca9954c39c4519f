//! Async message connections on tokio (feature `tokio`), driven by the same protocol core as the
//! blocking [`Connection`](crate::Connection).
//!
//! [`AsyncConnection`] frames messages over a tokio [`UnixStream`](::tokio::net::UnixStream) or
//! [`TcpStream`](::tokio::net::TcpStream) with the [`Decoder`](crate::proto::Decoder) the blocking
//! connection uses, so the wire format, the limits and the memory policy exist once.
//! [`MessageCodec`] is the same framing as a tokio-util codec, for users of `Framed`.
//!
//! Whatever registers a socket with tokio (the listeners' `bind` and `from_blocking`,
//! [`AsyncSeqpacket::pair`], [`connect`], ...) needs a tokio runtime with I/O enabled: outside
//! a runtime it returns [`Error::Io`](crate::Error::Io) (kind `Other`); in a runtime built
//! without [`enable_io`](::tokio::runtime::Builder::enable_io), tokio itself panics, as its own
//! sockets do. Calls with a time limit (connect retries, the handshake's timeout,
//! `try_send_to_within`) need the runtime's timer too ([`enable_time`](::tokio::runtime::Builder::enable_time)).
//!
//! # Cancel safety
//!
//! [`recv`](AsyncConnection::recv) is cancel-safe: dropping it at any await point (a
//! `tokio::select!` branch that lost, a `timeout`) loses nothing, and the next `recv` returns the
//! same message. A dropped [`send`](AsyncConnection::send) has queued either the whole frame or
//! none of it, so the peer never sees half a frame followed by another; what it queued goes out
//! with the next `send`, `flush` or `recv`. Descriptors (`recv_with_fds`, `send_with_fds`) follow
//! the same rules: a dropped receive leaves them in the connection with the bytes they came with,
//! and a dropped send sent them with its frame's first bytes or not at all.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> msgsock::Result<()> {
//! use msgsock::tokio::AsyncConnection;
//!
//! let (a, b) = tokio::net::UnixStream::pair()?;
//! let (mut a, mut b) = (AsyncConnection::new(a), AsyncConnection::new(b));
//! a.send(b"hello").await?;
//! assert_eq!(b.recv().await?.as_deref(), Some(&b"hello"[..]));
//! drop(a);
//! assert_eq!(b.recv().await?, None); // a clean close between messages
//! # Ok(())
//! # }
//! ```

mod any;
mod auth;
mod channel;
mod codec;
mod conn;
mod connect;
mod cred;
mod datagram;
mod listener;
mod queued;
mod ready;
mod seqpacket;
mod stream;

pub use self::any::{child_connection, AsyncAnyConnection};
pub use self::channel::AsyncChannel;
pub use self::codec::MessageCodec;
pub use self::conn::{AsyncConnection, AsyncRecvHalf, AsyncSendHalf, DEFAULT_HIGH_WATER};
pub use self::connect::{connect, connect_authenticated, connect_authenticated_with, connect_with};
pub use self::datagram::{bind_datagram, AsyncDatagram};
pub use self::listener::{bind, AsyncAnyListener, AsyncTcpListener, AsyncUnixListener};
pub use self::queued::QueuedSender;
pub use self::seqpacket::{AsyncSeqpacket, AsyncSeqpacketListener};
pub use self::stream::{AsyncAnyStream, AsyncStream};

/// `Error::Io` (kind `Other`) unless this thread runs in a tokio runtime: every call that
/// registers a socket with the runtime's I/O driver (tokio's `from_std`) checks first, since
/// tokio panics there without one.
fn in_runtime() -> std::io::Result<()> {
    ::tokio::runtime::Handle::try_current()
        .map(drop)
        .map_err(std::io::Error::other)
}
