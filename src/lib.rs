//! Whole messages between processes over Unix-domain sockets, TCP, UDP and Unix datagrams, with
//! one API for all four. Code written against the [`Transport`] trait (streams) or
//! [`DatagramTransport`], or against an [`Endpoint`] string such as `unix:/run/app.sock` or
//! `tcp:127.0.0.1:8008` chosen at run time, runs unchanged on each transport it names.
//!
//! # Examples
//!
//! Generic over the transport:
//!
//! ```
//! use msgsock::{Transport, UnixTransport, TcpTransport};
//!
//! fn ping<T: Transport>() -> msgsock::Result<()> {
//!     let listener = T::bind_ephemeral()?;
//!     let mut client = T::connect(&T::local_addr(&listener)?)?;
//!     let mut server = T::accept(&listener)?;
//!     client.send(b"ping")?;
//!     assert_eq!(server.recv()?.as_deref(), Some(&b"ping"[..]));
//!     Ok(())
//! }
//! ping::<UnixTransport>()?;
//! ping::<TcpTransport>()?;
//! # Ok::<(), msgsock::Error>(())
//! ```
//!
//! From an endpoint string chosen at run time:
//!
//! ```
//! use msgsock::Endpoint;
//!
//! let dir = tempfile::tempdir()?;
//! let endpoint: Endpoint = format!("unix:{}", dir.path().join("app.sock").display()).parse()?;
//! let listener = msgsock::bind(&endpoint)?;
//! let mut client = msgsock::connect(&listener.local_endpoint()?)?;
//! let mut server = listener.accept()?;
//! server.send("hello, 世界".as_bytes())?;
//! assert_eq!(client.recv()?.as_deref(), Some("hello, 世界".as_bytes()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Wire format
//!
//! On a stream, each message is a 4-byte big-endian length and then the payload; a length above
//! `0x7FFF_FFFF` is the 4 bytes `0xFFFF_FFFF` and an 8-byte big-endian length. This is the framing
//! of Python's `multiprocessing.connection` and of tokio-util's `LengthDelimitedCodec` with its
//! defaults, so peers in other languages need only their standard library. See [`frame`].
//!
//! ```text
//! +---- len: u32 BE ----+---- payload ----+
//! | \x00\x00\x00\x0b    |  hello world    |
//! +---------------------+-----------------+
//! ```
//!
//! # Layers
//!
//! - [`proto`]: the wire protocol as a state machine with no I/O: bytes in, whole messages (or
//!   "need more", or a typed error) out. It owns no socket, so tests and the fuzz target drive it
//!   at any split of the input.
//! - Drivers of that core: the blocking [`Connection`] (with [`split`](Connection::split) halves)
//!   and, with the `tokio` feature, the async `tokio::AsyncConnection` and a codec for `Framed`.
//! - Socket types below them, std-shaped and knowing nothing of framing: [`UnixStream`],
//!   [`UnixListener`], [`UnixDatagram`], [`TcpStream`], [`TcpListener`], [`UdpSocket`], and for
//!   `unixpacket:` [`UnixSeqpacketListener`] and [`UnixSeqpacket`] (one message per packet, so
//!   the socket is a [`Channel`] as it is). A listener's `accept` gives the socket, as std's
//!   does, and [`Connection::new`] is the one place a stream becomes a message connection
//!   ([`Transport::accept`] and [`AnyListener::accept`] call it):
//!
//!   ```
//!   # let listener = msgsock::TcpListener::bind("127.0.0.1:0".parse()?)?;
//!   # let mut client = msgsock::Connection::new(msgsock::TcpStream::connect(listener.local_addr()?)?);
//!   let (stream, _peer) = listener.accept()?;
//!   let mut conn = msgsock::Connection::new(stream);
//!   # client.send(b"hi")?;
//!   assert_eq!(conn.recv()?.as_deref(), Some(&b"hi"[..]));
//!   # Ok::<(), Box<dyn std::error::Error>>(())
//!   ```
//!
//!   The system calls std lacks live in one private module, with one `EINTR` policy (retry).
//! - For endpoints chosen at run time, [`bind`], [`bind_datagram`] and [`connect`] give the
//!   `Any*` enums ([`AnyListener`], [`AnyConnection`], ...), which forward to the concrete types.
//!
//! # Platform-specific behavior
//!
//! msgsock builds for Unix-like targets only (Linux, Android, the BSDs, illumos, Solaris and
//! Apple targets); elsewhere it is a compile error. Writes to a peer that has gone fail with
//! `BrokenPipe` and never raise `SIGPIPE`: every write carries `MSG_NOSIGNAL`, except on Apple
//! targets, which lack it and where the socket option `SO_NOSIGPIPE` is set instead: on the Unix
//! sockets msgsock creates itself (bound listeners and datagram sockets, connects with a
//! timeout), on every stream that a connect ([`UnixStream::connect`], [`TcpStream::connect`],
//! [`connect`], [`ConnectOptions`]), an accept ([`UnixListener::accept`],
//! [`TcpListener::accept`], [`AnyListener::accept`], the async listeners) or
//! [`UnixStream::pair`] gives, and on sockets adopted from an `fd:N` or `systemd:` endpoint. A
//! socket converted as it is (`From<OwnedFd>`, `From` a std socket) keeps the options it came
//! with, and writes through a std socket taken back with `into_inner` carry no flag.
//!
//! # Socket files
//!
//! [`UnixListener::bind`] replaces a stale socket file (one this user owns that refuses
//! connections), fails with [`Error::AddrInUse`] when a live server listens there, and never
//! removes anything that is not a socket. Two servers racing for one path are serialised by a lock
//! file beside it (`PATH.lock`). The socket is created with mode 0600 and no window with wider
//! permissions, and dropping the listener removes the file only if it is still the one it bound.

#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![doc(test(attr(deny(warnings))))]

// Unix-domain sockets and the fd traits are the crate's ground, as socket2 gates its targets.
#[cfg(not(unix))]
compile_error!("msgsock supports only Unix-like targets: it is built on Unix-domain sockets");

mod activation;
mod any;
mod auth;
mod channel;
pub mod child;
mod conn;
mod connect;
mod dgram;
mod endpoint;
mod error;
mod fd;
pub mod frame;
mod inet;
pub mod proto;
mod shutdown;
mod stream;
mod sys;
#[cfg(feature = "tokio")]
pub mod tokio;
mod transport;
mod unix;

pub use crate::activation::InheritError;
pub use crate::any::{
    bind, bind_datagram, connect, AnyConnection, AnyDatagram, AnyListener, AnyRecvHalf,
    AnySendHalf, AnyStream,
};
pub use crate::auth::{
    connect_authenticated, AuthKey, Authenticator, Dialect, DEFAULT_HANDSHAKE_TIMEOUT,
    MAX_KEY_FILE_LEN,
};
pub use crate::channel::Channel;
pub use crate::child::CommandExt;
pub use crate::conn::{Connection, RecvHalf, SendHalf, DEFAULT_MAX_MESSAGE_LEN, DEFAULT_SPIN};
pub use crate::connect::ConnectOptions;
pub use crate::endpoint::{Endpoint, HostPort, MAX_ABSTRACT_NAME_LEN};
pub use crate::error::{AuthFailure, Error, Family, ParseEndpointError, Result, SocketType};
pub use crate::inet::{
    TcpIncoming, TcpListener, TcpStream, UdpSocket, UDP_V4_MAX_MESSAGE_LEN, UDP_V6_MAX_MESSAGE_LEN,
};
pub use crate::shutdown::ShutdownHandle;
pub use crate::stream::Stream;
pub use crate::transport::{
    Bind, DatagramTransport, TcpTransport, Transport, UdpTransport, UnixDatagramTransport,
    UnixTransport,
};
pub use crate::unix::{
    Incoming, PeerCred, SeqpacketIncoming, UnixDatagram, UnixListener, UnixSeqpacket,
    UnixSeqpacketListener, UnixStream, DEFAULT_SOCKET_MODE, MAX_PATH_LEN,
};

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
