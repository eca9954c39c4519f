//! Shared-key authentication: the challenge-response handshake of Python's
//! `multiprocessing.connection`, so a msgsock server can require a key from Python clients and a
//! msgsock client can log in to a Python `Listener(..., authkey=...)`.
//!
//! Each side proves it holds the key by MACing a fresh random challenge from the other; the key
//! itself never crosses the wire. Every step is one framed message:
//!
//! ```text
//! accepting side                              connecting side
//! --------------                              ---------------
//! #CHALLENGE# + M1                  ------->
//!                                   <-------  response to M1
//! #WELCOME# or #FAILURE#            ------->
//!                                   <-------  #CHALLENGE# + M2
//! response to M2                    ------->
//!                                   <-------  #WELCOME# or #FAILURE#
//! ```
//!
//! Two forms exist, told apart by length as Python 3.12 does:
//!
//! - Modern (Python 3.12 and later): `M = {sha256}` + 40 random bytes, and the response is
//!   `{sha256}` + HMAC-SHA256(key, M), the MAC taken over all of M, prefix included.
//! - Legacy (Python 3.11 and older): M = 20 random bytes (any length works for them), and the
//!   response is the 16 raw bytes of HMAC-MD5(key, M).
//!
//! A challenge of exactly 20 bytes is answered in the legacy form, and a 16-byte response is
//! taken as legacy HMAC-MD5; see [`Dialect`] for what msgsock sends and accepts.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha2::Sha256;

use crate::any::AnyConnection;
use crate::conn::Connection;
use crate::endpoint::Endpoint;
use crate::error::{AuthFailure, Error, Result};
use crate::stream::Stream;

/// The default for [`Authenticator::with_timeout`]: 10 seconds for the whole handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest handshake message read: Python reads each with `recv_bytes(256)`.
pub(crate) const MAX_HANDSHAKE_MESSAGE_LEN: u64 = 256;

pub(crate) const CHALLENGE: &[u8] = b"#CHALLENGE#";
pub(crate) const WELCOME: &[u8] = b"#WELCOME#";
pub(crate) const FAILURE: &[u8] = b"#FAILURE#";

/// Random bytes after the `{sha256}` prefix of a modern challenge (Python's `MESSAGE_LENGTH`).
const MODERN_NONCE_LEN: usize = 40;
/// Length of a legacy challenge; a modern one is always longer, which is how they are told apart.
const LEGACY_CHALLENGE_LEN: usize = 20;
/// Length of a raw HMAC-MD5, the legacy response.
const MD5_LEN: usize = 16;
const SHA256_PREFIX: &[u8] = b"{sha256}";
const MD5_PREFIX: &[u8] = b"{md5}";
/// Longest digest name Python accepts (`sha3_384`): the closing brace is looked for no further.
const MAX_DIGEST_NAME_LEN: usize = 8;

/// A shared secret key for [`Authenticator`].
///
/// `Debug` does not show the key. Use a long random key (32 bytes from a secure source, say):
/// anyone who records one handshake can test guesses of the key offline.
///
/// # Examples
///
/// ```
/// use msgsock::AuthKey;
///
/// let key = AuthKey::new(b"correct horse battery staple".to_vec());
/// assert_eq!(format!("{key:?}"), "AuthKey(<redacted>)");
/// ```
#[derive(Clone)]
pub struct AuthKey(Box<[u8]>);

/// The longest key [`AuthKey::from_file`] reads: far beyond any real key (HMAC hashes a key
/// longer than its block first), and a bound on the memory a wrong path can take.
pub const MAX_KEY_FILE_LEN: usize = 64 * 1024;

impl AuthKey {
    /// A key of these exact bytes, as Python's `authkey=` takes them.
    pub fn new(key: impl Into<Vec<u8>>) -> AuthKey {
        AuthKey(key.into().into_boxed_slice())
    }

    /// Reads a key from a file: all of its bytes, a trailing newline included, exactly as Python's
    /// `open(path, "rb").read()` gives them, so both sides can share one key file.
    ///
    /// # Errors
    ///
    /// [`Error::Path`] if the file cannot be read, or with `InvalidData` if it is empty (an empty
    /// key would authenticate anyone who also has none) or longer than [`MAX_KEY_FILE_LEN`]
    /// (such as `/dev/zero`, which would otherwise be read until memory ran out).
    pub fn from_file(path: impl AsRef<Path>) -> Result<AuthKey> {
        let path = path.as_ref();
        let mut bytes = Vec::new();
        fs::File::open(path)
            .and_then(|file| {
                file.take(MAX_KEY_FILE_LEN as u64 + 1)
                    .read_to_end(&mut bytes)
            })
            .map_err(|e| Error::path(path, e))?;
        let refused = if bytes.is_empty() {
            "key file is empty".to_owned()
        } else if bytes.len() > MAX_KEY_FILE_LEN {
            format!("key file is longer than {MAX_KEY_FILE_LEN} bytes")
        } else {
            return Ok(AuthKey::new(bytes));
        };
        let e = io::Error::new(io::ErrorKind::InvalidData, refused);
        Err(Error::path(path, e))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthKey(<redacted>)")
    }
}

/// Which forms of the handshake an [`Authenticator`] sends and accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Dialect {
    /// Challenge in the modern form; answer a legacy challenge in kind and accept a legacy
    /// HMAC-MD5 response. This is what Python 3.12 and later do, and it lets Python 3.11 and older
    /// peers in on both sides.
    ///
    /// Accepting HMAC-MD5 is the default because it is defensible: MD5's collision attacks do not
    /// carry over to HMAC-MD5 used as a MAC (RFC 6151, section 2.3), each challenge is fresh and
    /// random, and a MAC forged without the key is still out of reach. What it costs: a recorded
    /// handshake lets an attacker test key guesses offline a little faster than with SHA-256
    /// (a weak key falls either way), and MD5 is unavailable in FIPS environments. Choose
    /// [`ModernOnly`](Self::ModernOnly) when every peer runs Python 3.12+ or msgsock.
    #[default]
    Negotiate,
    /// Modern form only: a legacy challenge is not answered and a legacy response is refused with
    /// [`AuthFailure::LegacyRefused`]. Python 3.11 and older cannot connect.
    ModernOnly,
    /// Speak as Python 3.11 and older do: challenge with 20 random bytes and answer every
    /// challenge with raw HMAC-MD5, for peers that understand nothing else. Responses are checked
    /// as in [`Negotiate`](Self::Negotiate).
    LegacyOnly,
}

/// The shared-key handshake: a key plus options, used on each connection after `accept` or
/// `connect` through [`Connection::authenticate_server`] and
/// [`Connection::authenticate_client`], or [`connect_authenticated`].
///
/// The handshake is wire-compatible with `multiprocessing.connection`'s `authkey` in Python 3.11
/// and later (see [`Dialect`]). It is per connection: a failure leaves the listener as it was,
/// so a server logs it, drops that connection and goes on accepting. Run the handshake on the
/// thread that serves the connection rather than the one that accepts, so a slow peer delays
/// nobody else; its [timeout](Self::with_timeout) bounds how long a silent peer can hold it.
///
/// The handshake proves who is at the other end; it neither encrypts nor protects the messages
/// that follow. Across an untrusted network, run msgsock inside a tunnel (SSH, TLS, WireGuard).
///
/// # Examples
///
/// ```
/// use msgsock::{AuthKey, Authenticator, Connection, UnixListener, UnixStream};
///
/// let auth = Authenticator::new(AuthKey::new(b"secret".to_vec()));
/// let listener = UnixListener::bind_temp()?;
/// # let path = listener.path().to_owned();
/// # let client_auth = auth.clone();
/// # let client = std::thread::spawn(move || -> msgsock::Result<()> {
/// #     let mut conn = Connection::new(UnixStream::connect(&path)?);
/// #     conn.authenticate_client(&client_auth)?;
/// #     conn.send(b"hello")?;
/// #     Ok(())
/// # });
/// for stream in listener.incoming().take(1) {
///     let mut conn = Connection::new(stream?);
///     if let Err(e) = conn.authenticate_server(&auth) {
///         eprintln!("rejected a client: {e}");
///         continue; // the listener keeps accepting
///     }
///     assert_eq!(conn.recv()?.as_deref(), Some(&b"hello"[..]));
/// }
/// # client.join().unwrap()?;
/// # Ok::<(), msgsock::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Authenticator {
    key: AuthKey,
    dialect: Dialect,
    timeout: Option<Duration>,
}

impl Authenticator {
    /// An authenticator for `key` speaking [`Dialect::Negotiate`] with a
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub fn new(key: AuthKey) -> Authenticator {
        Authenticator {
            key,
            dialect: Dialect::default(),
            timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }

    /// Sets which forms of the handshake are sent and accepted. Takes effect from the next
    /// handshake.
    pub fn with_dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// Sets the time limit for a whole handshake (all six messages, however the peer splits
    /// them), or `None` for the connection's own timeouts. Takes effect from the next handshake.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The handshake time limit.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The key.
    pub fn key(&self) -> &AuthKey {
        &self.key
    }

    fn run<S: Stream>(&self, conn: &mut Connection<S>, accepting: bool) -> Result<()> {
        let read_timeout = conn.read_timeout()?;
        let write_timeout = conn.write_timeout()?;
        let max_len = conn.max_message_len();
        // A limit too far off to represent is no limit.
        let deadline = self.timeout.and_then(|t| Instant::now().checked_add(t));
        conn.set_max_message_len(MAX_HANDSHAKE_MESSAGE_LEN);
        conn.set_read_deadline(deadline);

        let mut hs = Handshake {
            conn,
            auth: self,
            deadline,
        };
        // Python's order: `Listener.accept` delivers then answers, `Client` the reverse.
        let result = if accepting {
            hs.deliver_challenge().and_then(|()| hs.answer_challenge())
        } else {
            hs.answer_challenge().and_then(|()| hs.deliver_challenge())
        };

        conn.set_read_deadline(None);
        conn.set_max_message_len(max_len);
        let restored = conn
            .set_read_timeout(read_timeout)
            .and_then(|()| conn.set_write_timeout(write_timeout));
        result.map_err(|e| self.classify(e, read_timeout))?;
        restored
    }

    /// Says what an error from the socket means for the handshake.
    pub(crate) fn classify(&self, err: Error, read_timeout: Option<Duration>) -> Error {
        match err {
            Error::Io(e) => match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::HandshakeTimeout {
                    timeout: self.timeout.or(read_timeout).unwrap_or_default(),
                },
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
                    failed(AuthFailure::PeerClosed)
                }
                _ => Error::Io(e),
            },
            Error::UnexpectedEof { .. } => failed(AuthFailure::PeerClosed),
            Error::FrameTooLarge { len, .. } => failed(AuthFailure::OversizedMessage { len }),
            other => other,
        }
    }
}

impl From<AuthKey> for Authenticator {
    fn from(key: AuthKey) -> Authenticator {
        Authenticator::new(key)
    }
}

impl<S: Stream> Connection<S> {
    /// Runs the accepting side of the shared-key handshake: challenges the peer, then answers
    /// its challenge. Call it right after `accept`, before any other message.
    ///
    /// For the handshake's duration the connection reads messages of at most 256 bytes and its
    /// read and write timeouts follow [`Authenticator::timeout`]; both are restored afterwards,
    /// whatever the outcome. The socket must be in blocking mode.
    ///
    /// # Errors
    ///
    /// - [`Error::AuthenticationFailed`] when the peer's key differs, it has none, it speaks
    ///   something else, or it closed during the handshake; the `reason` says which. A peer whose
    ///   response was wrong has been sent `#FAILURE#`.
    /// - [`Error::HandshakeTimeout`] when the handshake did not finish in time.
    /// - [`Error::Io`] and framing errors from the socket.
    ///
    /// After an error, drop the connection: it is not authenticated and may be mid-message.
    pub fn authenticate_server(&mut self, auth: &Authenticator) -> Result<()> {
        auth.run(self, true)
    }

    /// Runs the connecting side of the shared-key handshake: answers the peer's challenge, then
    /// challenges it. Call it right after `connect`, before any other message.
    ///
    /// Limits and timeouts are as for [`authenticate_server`](Self::authenticate_server).
    ///
    /// # Errors
    ///
    /// As [`authenticate_server`](Self::authenticate_server).
    ///
    /// # Examples
    ///
    /// ```
    /// use msgsock::{AuthKey, Authenticator, Connection, Error, TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0".parse()?)?;
    /// let addr = listener.local_addr()?;
    /// let server = std::thread::spawn(move || -> msgsock::Result<()> {
    ///     let mut conn = Connection::new(listener.accept()?.0);
    ///     conn.authenticate_server(&Authenticator::new(AuthKey::new(b"right".to_vec())))
    /// });
    ///
    /// let mut conn = Connection::new(TcpStream::connect(addr)?);
    /// let err = conn
    ///     .authenticate_client(&Authenticator::new(AuthKey::new(b"wrong".to_vec())))
    ///     .unwrap_err();
    /// assert!(matches!(err, Error::AuthenticationFailed { .. }));
    /// assert!(matches!(server.join().unwrap(), Err(Error::AuthenticationFailed { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn authenticate_client(&mut self, auth: &Authenticator) -> Result<()> {
        auth.run(self, false)
    }
}

/// Connects to `endpoint` and runs the connecting side of the handshake
/// ([`Connection::authenticate_client`]): the runtime form of Python's
/// `Client(address, authkey=key)`. This is
/// [`ConnectOptions::new().connect_authenticated(..)`](crate::ConnectOptions::connect_authenticated),
/// which also takes a connect timeout and can wait for the server.
///
/// # Errors
///
/// As [`connect`](crate::connect) and [`Connection::authenticate_client`];
/// [`Error::WrongSocketType`] for a datagram endpoint (the handshake needs a stream).
pub fn connect_authenticated(endpoint: &Endpoint, auth: &Authenticator) -> Result<AnyConnection> {
    crate::ConnectOptions::new().connect_authenticated(endpoint, auth)
}

pub(crate) fn failed(reason: AuthFailure) -> Error {
    Error::AuthenticationFailed { reason }
}

/// One run of the handshake over one connection.
struct Handshake<'a, S> {
    conn: &'a mut Connection<S>,
    auth: &'a Authenticator,
    deadline: Option<Instant>,
}

impl<S: Stream> Handshake<'_, S> {
    /// Python's `deliver_challenge`: challenge, check the response, give the verdict.
    fn deliver_challenge(&mut self) -> Result<()> {
        let message = new_challenge(self.auth.dialect)?;
        self.send(&[CHALLENGE, &message].concat())?;
        let response = self.recv()?;
        match verify_response(
            self.auth.key.as_bytes(),
            &message,
            &response,
            self.auth.dialect,
        ) {
            Ok(()) => self.send(WELCOME),
            Err(reason) => {
                // The verdict is a courtesy: the peer may have gone, and the error to report is
                // the authentication one.
                let _ = self.send(FAILURE);
                Err(failed(reason))
            }
        }
    }

    /// Python's `answer_challenge`: answer the challenge, then expect `#WELCOME#`.
    fn answer_challenge(&mut self) -> Result<()> {
        let message = self.recv()?;
        let challenge = message
            .strip_prefix(CHALLENGE)
            .ok_or_else(|| failed(AuthFailure::NotAChallenge))?;
        let response =
            respond(self.auth.key.as_bytes(), challenge, self.auth.dialect).map_err(failed)?;
        self.send(&response)?;
        if self.recv()? == WELCOME {
            Ok(())
        } else {
            Err(failed(AuthFailure::Rejected))
        }
    }

    fn send(&mut self, msg: &[u8]) -> Result<()> {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::from(io::ErrorKind::TimedOut).into());
            }
            self.conn.set_write_timeout(Some(left))?;
        }
        self.conn.send(msg)
    }

    fn recv(&mut self) -> Result<Vec<u8>> {
        self.conn
            .recv()?
            .ok_or_else(|| failed(AuthFailure::PeerClosed))
    }
}

/// A fresh challenge M (without the `#CHALLENGE#` tag) from the OS's secure random source.
pub(crate) fn new_challenge(dialect: Dialect) -> Result<Vec<u8>> {
    let (prefix, nonce_len) = match dialect {
        Dialect::LegacyOnly => (&b""[..], LEGACY_CHALLENGE_LEN),
        Dialect::Negotiate | Dialect::ModernOnly => (SHA256_PREFIX, MODERN_NONCE_LEN),
    };
    let mut message = vec![0; prefix.len() + nonce_len];
    message[..prefix.len()].copy_from_slice(prefix);
    getrandom::fill(&mut message[prefix.len()..]).map_err(io::Error::from)?;
    Ok(message)
}

/// How a challenge or response says which MAC it uses (Python's `_get_digest_name_and_payload`).
#[derive(Debug, PartialEq, Eq)]
enum Form<'a> {
    /// No prefix, recognised by length: HMAC-MD5, raw.
    Legacy(&'a [u8]),
    /// `{sha256}` and the rest.
    Sha256(&'a [u8]),
    /// `{md5}` and the rest.
    Md5(&'a [u8]),
}

fn parse_form(message: &[u8]) -> std::result::Result<Form<'_>, AuthFailure> {
    if message.len() == LEGACY_CHALLENGE_LEN || message.len() == MD5_LEN {
        return Ok(Form::Legacy(message));
    }
    if let Some(rest) = message.strip_prefix(SHA256_PREFIX) {
        return Ok(Form::Sha256(rest));
    }
    if let Some(rest) = message.strip_prefix(MD5_PREFIX) {
        return Ok(Form::Md5(rest));
    }
    let name = message
        .strip_prefix(b"{")
        .map(|m| &m[..m.len().min(MAX_DIGEST_NAME_LEN + 1)])
        .and_then(|head| head.iter().position(|&b| b == b'}'))
        .filter(|&end| end > 0)
        .map(|end| &message[1..=end]);
    match name {
        Some(name) => Err(AuthFailure::UnsupportedDigest {
            name: String::from_utf8_lossy(name).into_owned(),
        }),
        None => Err(AuthFailure::MalformedResponse),
    }
}

/// The response to `challenge` (Python's `_create_response`).
pub(crate) fn respond(
    key: &[u8],
    challenge: &[u8],
    dialect: Dialect,
) -> std::result::Result<Vec<u8>, AuthFailure> {
    if challenge.len() < LEGACY_CHALLENGE_LEN {
        return Err(AuthFailure::ChallengeTooShort {
            len: challenge.len(),
        });
    }
    if dialect == Dialect::LegacyOnly {
        return Ok(hmac_md5(key, challenge).to_vec());
    }
    // A challenge's unknown prefix is the peer speaking something else, not a bad response.
    let form = parse_form(challenge).map_err(|e| match e {
        AuthFailure::MalformedResponse => AuthFailure::NotAChallenge,
        other => other,
    })?;
    let (prefix, mac) = match form {
        Form::Legacy(_) | Form::Md5(_) if dialect == Dialect::ModernOnly => {
            return Err(AuthFailure::LegacyRefused)
        }
        Form::Legacy(_) => return Ok(hmac_md5(key, challenge).to_vec()),
        Form::Md5(_) => (MD5_PREFIX, hmac_md5(key, challenge).to_vec()),
        Form::Sha256(_) => (SHA256_PREFIX, hmac_sha256(key, challenge).to_vec()),
    };
    // The MAC covers the whole challenge, prefix included, so a peer cannot be talked down to a
    // weaker digest by a rewritten prefix.
    Ok([prefix, &mac].concat())
}

/// Checks a response to our challenge `message` (Python's `_verify_challenge`), in constant time.
pub(crate) fn verify_response(
    key: &[u8],
    message: &[u8],
    response: &[u8],
    dialect: Dialect,
) -> std::result::Result<(), AuthFailure> {
    match parse_form(response)? {
        Form::Legacy(_) | Form::Md5(_) if dialect == Dialect::ModernOnly => {
            Err(AuthFailure::LegacyRefused)
        }
        Form::Legacy(tag) | Form::Md5(tag) => check(mac_md5(key).chain_update(message), tag),
        Form::Sha256(tag) => check(mac_sha256(key).chain_update(message), tag),
    }
}

/// Compares `tag` with the MAC in constant time (`verify_slice`); a wrong length is malformed.
fn check<M: Mac>(mac: M, tag: &[u8]) -> std::result::Result<(), AuthFailure> {
    if tag.len() != M::output_size() {
        return Err(AuthFailure::MalformedResponse);
    }
    mac.verify_slice(tag).map_err(|_| AuthFailure::WrongDigest)
}

fn mac_md5(key: &[u8]) -> Hmac<Md5> {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    <Hmac<Md5> as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

fn mac_sha256(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

fn hmac_md5(key: &[u8], message: &[u8]) -> [u8; MD5_LEN] {
    mac_md5(key)
        .chain_update(message)
        .finalize()
        .into_bytes()
        .into()
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    mac_sha256(key)
        .chain_update(message)
        .finalize()
        .into_bytes()
        .into()
}

#[cfg(test)]
mod tests;
