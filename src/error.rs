//! The crate's error types.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// A `Result` whose error is [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in msgsock.
///
/// Variants carry the numbers and paths needed to act on them. Framing errors
/// ([`FrameTooLarge`](Error::FrameTooLarge), [`MalformedHeader`](Error::MalformedHeader),
/// [`UnexpectedEof`](Error::UnexpectedEof)) leave the connection unusable: later calls return
/// [`Broken`](Error::Broken). A timeout ([`Error::Io`] with [`io::ErrorKind::WouldBlock`] or
/// [`io::ErrorKind::TimedOut`]) does not: the next `recv` resumes where the last one stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An endpoint string could not be parsed.
    #[error("invalid endpoint")]
    Endpoint(#[from] ParseEndpointError),

    /// A length prefix announced a message larger than the connection accepts.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// The length the peer announced.
        len: u64,
        /// The connection's limit ([`Connection::max_message_len`](crate::Connection::max_message_len)).
        max: u64,
    },

    /// A length prefix that no conforming sender writes.
    ///
    /// A 4-byte prefix in `0x8000_0000..=0xFFFF_FFFE`, or an 8-byte prefix whose value would fit in
    /// 4 bytes: each length has exactly one encoding.
    #[error("malformed length prefix {header:#x}")]
    MalformedHeader {
        /// The offending prefix value.
        header: u64,
    },

    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed mid-frame after {read} of {expected} bytes")]
    UnexpectedEof {
        /// Bytes of the frame (length prefix included) that arrived.
        read: u64,
        /// Bytes the frame should have had, or the prefix length while it was still incomplete.
        expected: u64,
    },

    /// A message is larger than one datagram of the transport can carry; nothing was sent.
    #[error("message of {len} bytes exceeds the datagram limit of {max}")]
    MessageTooLarge {
        /// The message length.
        len: u64,
        /// The largest message the socket can send in one datagram.
        max: u64,
    },

    /// A datagram arrived that was larger than the receive limit; it was discarded, never
    /// returned cut short.
    #[error("datagram of {len} bytes exceeds the receive limit of {max}")]
    Truncated {
        /// The datagram's real length on Linux; elsewhere, `max + 1` (at least that long).
        len: u64,
        /// The receive limit ([`UdpSocket::max_message_len`](crate::UdpSocket::max_message_len)).
        max: u64,
    },

    /// An endpoint of the wrong socket type for the call: a datagram endpoint given to a
    /// stream-only function, or the reverse.
    #[error("{endpoint} is a {actual} endpoint; this call needs a {expected} endpoint")]
    WrongSocketType {
        /// The endpoint, as written.
        endpoint: String,
        /// `"stream"` or `"datagram"`: what the call needs.
        expected: &'static str,
        /// What the endpoint is.
        actual: &'static str,
    },

    /// The connection failed earlier with a framing error and can no longer be used.
    #[error("connection is unusable after an earlier framing error")]
    Broken,

    /// A Unix socket path does not fit in `sun_path`.
    #[error("socket path of {len} bytes exceeds the limit of {max}")]
    PathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
        /// The longest path this platform's `sockaddr_un` holds (without the NUL).
        max: usize,
    },

    /// Another server is listening on the socket path, or is binding it right now.
    #[error("address in use: a live server is listening on {}", path.display())]
    AddrInUse {
        /// The socket path.
        path: PathBuf,
    },

    /// The path exists and is not a socket, so msgsock will not replace it.
    #[error("{} exists and is not a socket; refusing to replace it", path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
    },

    /// The lock file beside a socket path (`PATH.lock`) exists and is not msgsock's, so msgsock
    /// will not use or remove it.
    #[error("{} exists and is not a msgsock lock file; refusing to use it", path.display())]
    ForeignLockFile {
        /// The lock file's path.
        path: PathBuf,
    },

    /// A stale socket file at the path belongs to another user, so msgsock will not remove it.
    #[error("stale socket {} belongs to uid {owner}; refusing to remove it", path.display())]
    NotOwner {
        /// The path.
        path: PathBuf,
        /// The owner of the file.
        owner: u32,
    },

    /// After bind, the socket file's permissions were not the ones asked for.
    #[error("socket file {} has mode {actual:o}, expected {expected:o}", path.display())]
    ModeMismatch {
        /// The path.
        path: PathBuf,
        /// The permission bits requested.
        expected: u32,
        /// The permission bits found.
        actual: u32,
    },

    /// An I/O error on a socket file or its lock.
    #[error("I/O error on {}", path.display())]
    Path {
        /// The file the operation was on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The shared-key handshake failed: the peer does not hold the same key, does not speak the
    /// handshake, or went away during it. See [`Connection::authenticate_server`](crate::Connection::authenticate_server).
    #[error("authentication failed: {reason}")]
    AuthenticationFailed {
        /// What went wrong.
        reason: AuthFailure,
    },

    /// The shared-key handshake did not finish within its time limit
    /// ([`Authenticator::with_timeout`](crate::Authenticator::with_timeout)): the peer is silent or
    /// too slow. Unlike a plain read timeout this is not resumable, so [`Error::is_timeout`] is
    /// false for it; drop the connection.
    #[error("authentication handshake timed out after {timeout:?}")]
    HandshakeTimeout {
        /// The time limit that expired.
        timeout: Duration,
    },

    /// An I/O error from the operating system.
    #[error(transparent)]
    Io(#[from] io::Error),

    /// The listener was stopped with a [`ShutdownHandle`](crate::ShutdownHandle): `accept`
    /// returns this from then on, and `incoming()` ends.
    #[error("the listener was shut down")]
    Shutdown,
}

impl Error {
    pub(crate) fn path(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Path {
            path: path.into(),
            source,
        }
    }

    /// Whether this error is a read or write timeout (the operation may be retried).
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            _ => false,
        }
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        use io::ErrorKind as K;
        let kind = match &err {
            Error::Io(e) => return io::Error::new(e.kind(), err),
            Error::Path { source, .. } => source.kind(),
            Error::Endpoint(_) | Error::PathTooLong { .. } => K::InvalidInput,
            Error::FrameTooLarge { .. }
            | Error::MalformedHeader { .. }
            | Error::Broken
            | Error::Truncated { .. } => K::InvalidData,
            Error::MessageTooLarge { .. } | Error::WrongSocketType { .. } => K::InvalidInput,
            Error::UnexpectedEof { .. } => K::UnexpectedEof,
            Error::AddrInUse { .. } => K::AddrInUse,
            Error::NotASocket { .. } | Error::ForeignLockFile { .. } => K::AlreadyExists,
            Error::NotOwner { .. }
            | Error::ModeMismatch { .. }
            | Error::AuthenticationFailed { .. } => K::PermissionDenied,
            Error::HandshakeTimeout { .. } => K::TimedOut,
            Error::Shutdown => K::ConnectionAborted,
        };
        io::Error::new(kind, err)
    }
}

/// Why a shared-key handshake failed: the `reason` of [`Error::AuthenticationFailed`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The peer's response to our challenge does not match: it holds a different key.
    #[error("the peer's response does not match the key")]
    WrongDigest,
    /// The peer did not send `#WELCOME#` after our response: it holds a different key or refuses
    /// the digest we answered with.
    #[error("the peer rejected our response")]
    Rejected,
    /// A message that should have been a challenge does not start with `#CHALLENGE#`: the peer
    /// has no key, or does not speak the handshake.
    #[error("expected a challenge from the peer, got another message")]
    NotAChallenge,
    /// The peer's challenge is shorter than the 20 bytes of the legacy form.
    #[error("challenge of {len} bytes is too short")]
    ChallengeTooShort {
        /// Its length, without the `#CHALLENGE#` tag.
        len: usize,
    },
    /// The peer's response is neither a legacy HMAC-MD5 nor a `{digest}`-prefixed MAC of the right
    /// length: the peer has no key and sent data, or does not speak the handshake.
    #[error("malformed response to our challenge")]
    MalformedResponse,
    /// The peer named a digest msgsock does not implement (msgsock speaks `sha256` and `md5`).
    #[error("unsupported digest {name:?}")]
    UnsupportedDigest {
        /// The name between the braces, lossily decoded.
        name: String,
    },
    /// The peer answered or challenged in the legacy HMAC-MD5 form, which this side refuses
    /// ([`Dialect::ModernOnly`](crate::Dialect::ModernOnly)).
    #[error("the peer speaks legacy HMAC-MD5, which is refused")]
    LegacyRefused,
    /// A handshake message was larger than the 256 bytes any handshake message fits in.
    #[error("handshake message of {len} bytes exceeds the limit of 256")]
    OversizedMessage {
        /// The length the peer announced.
        len: u64,
    },
    /// The peer closed or reset the connection before the handshake finished.
    #[error("the peer closed the connection during the handshake")]
    PeerClosed,
}

/// An endpoint string could not be parsed; says which part is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseEndpointError {
    /// No `scheme:` prefix.
    #[error("missing scheme in {input:?}: expected unix:PATH, tcp:HOST:PORT, udp:HOST:PORT or unixgram:PATH")]
    MissingScheme {
        /// The whole input.
        input: String,
    },
    /// A scheme msgsock does not know.
    #[error("unknown scheme {scheme:?}: expected unix, tcp, udp or unixgram")]
    UnknownScheme {
        /// The scheme as written.
        scheme: String,
    },
    /// `unix:` with nothing after it.
    #[error("empty socket path")]
    EmptyPath,
    /// A socket path containing a NUL byte, which `sockaddr_un` cannot hold.
    #[error("socket path contains a NUL byte")]
    NulInPath,
    /// `tcp:` or `udp:` without a host.
    #[error("missing host in {input:?}")]
    MissingHost {
        /// The address part of the input.
        input: String,
    },
    /// The host is not an IPv4 address or a bracketed IPv6 address.
    #[error("invalid host {host:?}: expected an IPv4 address or a bracketed IPv6 address")]
    InvalidHost {
        /// The host as written.
        host: String,
    },
    /// `tcp:HOST` or `udp:HOST` without `:PORT`.
    #[error("missing port in {input:?}")]
    MissingPort {
        /// The address part of the input.
        input: String,
    },
    /// The port is not a number in 0-65535.
    #[error("invalid port {port:?}: expected a number from 0 to 65535")]
    InvalidPort {
        /// The port as written.
        port: String,
    },
}
