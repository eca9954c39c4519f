//! Whole messages between processes over Unix-domain and TCP sockets, with one API for both.
//!
//! A server binds an endpoint and accepts; a client connects; then both [`send`](Connection::send)
//! and [`recv`](Connection::recv) framed messages. Code written against the [`Transport`] trait, or
//! against an [`Endpoint`] string such as `unix:/run/app.sock` or `tcp:127.0.0.1:8008`, runs
//! unchanged on either family.
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

mod activation;
mod any;
mod auth;
mod channel;
pub mod child;
mod conn;
mod connect;
mod datagram;
mod endpoint;
mod error;
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
    bind, bind_datagram, connect, AnyConnection, AnyDatagram, AnyListener, AnyStream,
};
pub use crate::auth::{
    connect_authenticated, AuthKey, Authenticator, Dialect, DEFAULT_HANDSHAKE_TIMEOUT,
};
pub use crate::channel::Channel;
pub use crate::child::CommandExt;
pub use crate::conn::{Connection, RecvHalf, SendHalf, DEFAULT_MAX_MESSAGE_LEN, DEFAULT_SPIN};
pub use crate::connect::ConnectOptions;
pub use crate::datagram::{DatagramTransport, UdpTransport, UnixDatagramTransport};
pub use crate::endpoint::{Endpoint, HostPort};
pub use crate::error::{AuthFailure, Error, Family, ParseEndpointError, Result, SocketType};
pub use crate::inet::{
    TcpIncoming, TcpListener, TcpStream, UdpSocket, UDP_V4_MAX_MESSAGE_LEN, UDP_V6_MAX_MESSAGE_LEN,
};
pub use crate::shutdown::ShutdownHandle;
pub use crate::stream::Stream;
pub use crate::transport::{TcpTransport, Transport, UnixTransport};
pub use crate::unix::{
    Incoming, PeerCred, UnixDatagram, UnixListener, UnixStream, DEFAULT_SOCKET_MODE, MAX_PATH_LEN,
};

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
