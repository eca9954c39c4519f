//! The crate's error types.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::endpoint::Endpoint;

/// A `Result` whose error is [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in msgsock.
///
/// Variants carry the numbers and paths needed to act on them, and their `Display` names the
/// cause and the endpoint or file the caller gave (the cause is also the
/// [`source`](std::error::Error::source), for code that walks the chain). One condition is one
/// variant on every family: a Unix path in use and a TCP port in use are both
/// [`AddrInUse`](Error::AddrInUse), nobody listening is
/// [`ConnectionRefused`](Error::ConnectionRefused) on both. [`Error::kind`] gives the
/// [`io::ErrorKind`] of any variant.
///
/// Framing errors ([`FrameTooLarge`](Error::FrameTooLarge),
/// [`MalformedHeader`](Error::MalformedHeader), [`UnexpectedEof`](Error::UnexpectedEof)) leave
/// the connection unusable: later calls return [`Broken`](Error::Broken). A timeout
/// ([`Error::is_timeout`]: [`Error::Io`] with [`io::ErrorKind::WouldBlock`] or
/// [`io::ErrorKind::TimedOut`]) does not: the next `recv` resumes where the last one stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An endpoint string could not be parsed.
    #[error("invalid endpoint: {0}")]
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
    #[error("malformed length prefix: value {header:#x}, which no sender writes (a 4-byte prefix over 0x7fffffff other than the escape 0xffffffff, or an 8-byte one that would fit in 4)")]
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
        /// The endpoint, as given.
        endpoint: Endpoint,
        /// What the call needs.
        expected: SocketType,
        /// What the endpoint is.
        actual: SocketType,
    },

    /// A destination of the other address family than the socket's: a `unixgram:` endpoint
    /// given to a UDP socket, or a `udp:` one to a Unix datagram socket.
    #[error("{endpoint} is not an endpoint of this {expected} socket")]
    WrongFamily {
        /// The endpoint, as given.
        endpoint: Endpoint,
        /// The socket's family.
        expected: Family,
    },

    /// An earlier receive failed in a way that lost the frame boundaries (a framing error, a close
    /// mid-frame, or an I/O error in the middle of a payload): the connection can no longer receive.
    #[error("connection is unusable after an earlier receive error")]
    Broken,

    /// A Unix socket path does not fit in `sun_path`.
    #[error("socket path {} of {len} bytes exceeds the limit of {max}", path.display())]
    PathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
        /// The longest path this platform's `sockaddr_un` holds (without the NUL).
        max: usize,
    },

    /// The endpoint is taken: a live server listens on the socket path (or is binding it right
    /// now), or another socket is bound to the port. The same variant on every family.
    #[error("address in use: another server holds {endpoint}")]
    AddrInUse {
        /// The endpoint, as given to `bind`.
        endpoint: Endpoint,
    },

    /// Binding an endpoint failed for another reason than [`AddrInUse`](Error::AddrInUse): for
    /// example an IP address that is not this machine's (`AddrNotAvailable`), or a host name
    /// where a listener needs an address (`InvalidInput`).
    #[error("cannot bind {endpoint}: {source}")]
    Bind {
        /// The endpoint, as given to `bind`.
        endpoint: Endpoint,
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// Nobody accepts connections at the endpoint: a TCP port nobody listens on, or a Unix
    /// socket file whose server has gone (stale). The same variant on every family.
    #[error("connection refused: nothing is listening on {endpoint}")]
    ConnectionRefused {
        /// The endpoint, as given to `connect`.
        endpoint: Endpoint,
    },

    /// The endpoint to connect to does not exist: no socket file at the Unix path (or a
    /// missing directory on the way), or a host name that does not resolve.
    #[error("{endpoint} not found: {source}")]
    NotFound {
        /// The endpoint, as given to `connect`.
        endpoint: Endpoint,
        /// The cause: `ENOENT`, or the resolver's error.
        #[source]
        source: io::Error,
    },

    /// Connecting failed for another reason than [`ConnectionRefused`](Error::ConnectionRefused),
    /// [`NotFound`](Error::NotFound) or [`ConnectTimeout`](Error::ConnectTimeout): for example
    /// `PermissionDenied` on a socket file, or a socket of the other type at the path.
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        /// The endpoint, as given to `connect`.
        endpoint: Endpoint,
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// A connect did not finish within its time limit
    /// ([`ConnectOptions::with_timeout`](crate::ConnectOptions::with_timeout)): a listener
    /// whose backlog is full, or a host that does not answer. Nothing is left half open, so
    /// connecting again is safe; [`Error::is_timeout`] is true for it.
    #[error("connecting to {endpoint} timed out after {timeout:?}")]
    ConnectTimeout {
        /// The endpoint, as given to `connect`.
        endpoint: Endpoint,
        /// The time limit that expired.
        timeout: Duration,
    },

    /// The path exists and is not a socket, so msgsock will not replace it.
    #[error("{} exists and is not a socket; refusing to replace it", path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
    },

    /// The lock file beside a socket path (`PATH.lock`) exists and is not this user's own
    /// msgsock lock file (another user's, even one msgsock made, or a file that is no lock
    /// file), so msgsock will not use or remove it. A live server at the path is
    /// [`AddrInUse`](Error::AddrInUse) and another user's stale socket
    /// [`NotOwner`](Error::NotOwner) instead, whatever its lock file.
    #[error("{} exists and is not this user's msgsock lock file; refusing to use it", path.display())]
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

    /// An I/O error on a socket file, its lock, or another file the call was given.
    #[error("I/O error on {}: {source}", path.display())]
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

    /// An inherited socket (`fd:N`, `systemd:`, [`child::connection`](crate::child::connection))
    /// could not be taken: see [`InheritError`](crate::InheritError).
    #[error(transparent)]
    Inherit(#[from] crate::InheritError),

    /// An I/O error from the operating system. A read or write timeout says so
    /// ("timed out: ..."), whatever text the system gives `EAGAIN`.
    #[error("{}", IoMessage(.0))]
    Io(#[from] io::Error),

    /// An earlier send failed, for a reason other than a timeout, after part of its frame was
    /// written: the peer would lose step on any later frame, so this connection sends no more.
    #[error("cannot send: an earlier send failed part-way through a frame ({kind})")]
    SendBroken {
        /// The kind of the error that earlier send returned.
        kind: io::ErrorKind,
    },

    /// The listener was stopped with a [`ShutdownHandle`](crate::ShutdownHandle): `accept`
    /// returns this from then on, and `incoming()` ends.
    #[error("the listener was shut down")]
    Shutdown,

    /// A message was given more descriptors to carry than one message can (Linux's
    /// `SCM_MAX_FD`); nothing was sent.
    #[error("{count} descriptors exceed the limit of {max} per message")]
    TooManyFds {
        /// How many were given.
        count: usize,
        /// The most one message carries.
        max: usize,
    },

    /// Descriptor passing on a socket that cannot carry descriptors: only Unix-domain sockets
    /// can (`SCM_RIGHTS`), not TCP or UDP. Nothing was sent or received.
    #[error("descriptor passing needs a Unix-domain socket, and this is an {family} socket")]
    FdsUnsupported {
        /// The socket's family.
        family: Family,
    },

    /// A receive with descriptors on a connection set not to take them
    /// ([`Connection::set_receive_fds`](crate::Connection::set_receive_fds)), whose reads leave
    /// descriptors to the kernel to close. Nothing was read.
    #[error("this connection does not receive descriptors (set_receive_fds(false))")]
    FdsRefused,

    /// A message arrived without all of its descriptors: the kernel truncated the control data
    /// (`MSG_CTRUNC`), for example because this process was at its descriptor limit
    /// (`RLIMIT_NOFILE`), or a stream peer attached more than the 253 one message carries
    /// (spread over its bytes), which a connection does not hold, so that no peer can fill this
    /// process's descriptor table. The descriptors that did arrive were closed and the message
    /// was dropped; the connection stays usable and the next receive returns the next message.
    #[error("a message lost its descriptors (control data truncated, for example at the descriptor limit, or more than 253); {closed} that arrived were closed")]
    FdsTruncated {
        /// How many of its descriptors did arrive (and were closed).
        closed: usize,
    },
}

/// `Error::Io`'s text: the system's, after "timed out" for a timeout, which the system calls
/// "Resource temporarily unavailable" (`EAGAIN`, also what a non-blocking socket gives).
struct IoMessage<'a>(&'a io::Error);

impl fmt::Display for IoMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.kind() {
            io::ErrorKind::WouldBlock => write!(f, "timed out (or would block): {}", self.0),
            io::ErrorKind::TimedOut => write!(f, "timed out: {}", self.0),
            _ => write!(f, "{}", self.0),
        }
    }
}

/// A socket type, as `socket(2)` has them: what [`Error::WrongSocketType`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SocketType {
    /// A connected byte stream of framed messages: `unix:` and `tcp:`.
    Stream,
    /// One message per datagram: `udp:` and `unixgram:`.
    Datagram,
    /// A connection that keeps message boundaries, one message per packet: `unixpacket:`.
    SeqPacket,
}

impl fmt::Display for SocketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SocketType::Stream => "stream",
            SocketType::Datagram => "datagram",
            SocketType::SeqPacket => "seqpacket",
        })
    }
}

/// An address family: what [`Error::WrongFamily`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Family {
    /// Unix-domain sockets, addressed by path.
    Unix,
    /// Internet sockets (IPv4 and IPv6), addressed by host and port.
    Inet,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Unix => "Unix-domain",
            Family::Inet => "internet",
        })
    }
}

impl Error {
    pub(crate) fn path(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Path {
            path: path.into(),
            source,
        }
    }

    /// [`AddrInUse`](Error::AddrInUse) for the Unix socket path `path`.
    pub(crate) fn unix_in_use(path: &std::path::Path) -> Self {
        Error::AddrInUse {
            endpoint: Endpoint::Unix(path.into()),
        }
    }

    /// `bind(2)` of `endpoint` failed with `source`: [`AddrInUse`](Error::AddrInUse) or
    /// [`Bind`](Error::Bind).
    pub(crate) fn bind(endpoint: Endpoint, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::AddrInUse => Error::AddrInUse { endpoint },
            _ => Error::Bind { endpoint, source },
        }
    }

    /// `connect(2)` to `endpoint` failed with `source`: one variant per condition, whatever
    /// the family.
    pub(crate) fn connect(endpoint: Endpoint, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::ConnectionRefused => Error::ConnectionRefused { endpoint },
            io::ErrorKind::NotFound => Error::NotFound { endpoint, source },
            _ => Error::Connect { endpoint, source },
        }
    }

    /// The same error with a Unix stream endpoint in it named as the datagram endpoint of the
    /// same path: the socket-file code serves both socket types.
    pub(crate) fn for_datagram(self) -> Self {
        self.for_unix_type(Endpoint::UnixDatagram)
    }

    /// The same error with a Unix stream endpoint in it named as the endpoint `endpoint` makes
    /// of the same path (`unixgram:`, `unixpacket:`).
    pub(crate) fn for_unix_type(self, endpoint: fn(std::path::PathBuf) -> Endpoint) -> Self {
        match self {
            Error::AddrInUse {
                endpoint: Endpoint::Unix(path),
            } => Error::AddrInUse {
                endpoint: endpoint(path),
            },
            other => other,
        }
    }

    /// Whether this error is a timeout after which the same call may simply be made again: a
    /// read or write timeout (a `recv` then resumes the same message), or a
    /// [`ConnectTimeout`](Error::ConnectTimeout). A [`HandshakeTimeout`](Error::HandshakeTimeout)
    /// is not: that connection is mid-handshake and must be dropped.
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            Error::ConnectTimeout { .. } => true,
            _ => false,
        }
    }

    /// The [`io::ErrorKind`] that fits this error, without consuming it: the kind of the
    /// underlying I/O error where there is one, else `InvalidData` for framing, `InvalidInput`
    /// for bad arguments, `AddrInUse`, `ConnectionRefused`, `NotFound`, `TimedOut`,
    /// `PermissionDenied` and so on. `From<Error> for io::Error` uses
    /// the same kind.
    pub fn kind(&self) -> io::ErrorKind {
        use io::ErrorKind as K;
        match self {
            Error::Io(e) => e.kind(),
            Error::Path { source, .. }
            | Error::Bind { source, .. }
            | Error::Connect { source, .. } => source.kind(),
            Error::Endpoint(_) | Error::PathTooLong { .. } => K::InvalidInput,
            Error::Inherit(e) => e.kind(),
            Error::FrameTooLarge { .. }
            | Error::MalformedHeader { .. }
            | Error::Broken
            | Error::Truncated { .. } => K::InvalidData,
            Error::MessageTooLarge { .. }
            | Error::WrongSocketType { .. }
            | Error::WrongFamily { .. } => K::InvalidInput,
            Error::UnexpectedEof { .. } => K::UnexpectedEof,
            Error::AddrInUse { .. } => K::AddrInUse,
            Error::ConnectionRefused { .. } => K::ConnectionRefused,
            // A name the resolver does not know has no ENOENT of its own.
            Error::NotFound { .. } => K::NotFound,
            Error::NotASocket { .. } | Error::ForeignLockFile { .. } => K::AlreadyExists,
            Error::NotOwner { .. }
            | Error::ModeMismatch { .. }
            | Error::AuthenticationFailed { .. } => K::PermissionDenied,
            Error::HandshakeTimeout { .. } | Error::ConnectTimeout { .. } => K::TimedOut,
            Error::SendBroken { kind } => *kind,
            Error::Shutdown => K::ConnectionAborted,
            Error::TooManyFds { .. } => K::InvalidInput,
            Error::FdsUnsupported { .. } => K::Unsupported,
            Error::FdsRefused => K::Unsupported,
            // Most often EMFILE/ENFILE, which std leaves uncategorised too.
            Error::FdsTruncated { .. } => K::Other,
        }
    }
}

impl From<Error> for io::Error {
    /// An `io::Error` of [`Error::kind`] wrapping the error, for `?` in `io::Result` code.
    fn from(err: Error) -> io::Error {
        io::Error::new(err.kind(), err)
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
    #[error("missing scheme in {input:?}: expected unix:PATH, unix:@NAME, tcp:HOST:PORT, udp:HOST:PORT, unixgram:PATH, unixpacket:PATH, fd:N or systemd:NAME")]
    MissingScheme {
        /// The whole input.
        input: String,
    },
    /// A scheme msgsock does not know.
    #[error(
        "unknown scheme {scheme:?}: expected unix, tcp, udp, unixgram, unixpacket, fd or systemd"
    )]
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
    /// The host is not an IPv4 address, a bracketed IPv6 address, or a host name.
    #[error(
        "invalid host {host:?}: expected an IPv4 address, a bracketed IPv6 address or a host name"
    )]
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
    /// `fd:N` where N is not a descriptor number (decimal digits, at most `i32::MAX`).
    #[error("invalid descriptor number {fd:?}: expected a number from 0 to 2147483647")]
    InvalidFd {
        /// The number as written.
        fd: String,
    },
    /// `systemd:NAME` where NAME is not a name systemd gives a socket (up to 255 printable
    /// ASCII characters, no `:`).
    #[error("invalid socket name {name:?}: expected up to 255 printable ASCII characters, no ':'")]
    InvalidName {
        /// The name as written.
        name: String,
    },
    /// `unix:@NAME` or `unixgram:@NAME` whose abstract name does not fit in `sun_path` (its
    /// first byte is the 0 that marks the abstract namespace).
    #[error("abstract socket name of {len} bytes exceeds the limit of {max}")]
    AbstractNameTooLong {
        /// Its length in bytes, without the `@`.
        len: usize,
        /// The longest abstract name: [`MAX_ABSTRACT_NAME_LEN`](crate::MAX_ABSTRACT_NAME_LEN).
        max: usize,
    },
}
