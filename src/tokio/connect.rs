//! [`connect`], [`connect_with`] and their authenticated forms: the async connect to an [`Endpoint`], made on the task that
//! awaits it, with the blocking [`ConnectOptions::connect`]'s errors, time limit and waiting.

use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use ::tokio::time::{sleep, timeout_at, Instant};

use super::any::AsyncAnyConnection;
use super::conn::AsyncConnection;
use super::seqpacket::AsyncSeqpacket;
use super::stream::AsyncAnyStream;
use crate::any::wrong_type;
use crate::auth::Authenticator;
use crate::connect::{check_timeout, resolved, udp, Backoff, ConnectOptions, ServerWait};
use crate::endpoint::{Endpoint, HostPort};
use crate::error::{Error, Result, SocketType};
use crate::sys::{self, UnixAddr};
use crate::unix::abstract_name;
use crate::unix::socket_file::check_len;

/// The first pause before a Unix connect tries a full backlog again; it doubles up to
/// [`MAX_BACKLOG_PAUSE`]. Linux fails a non-blocking Unix connect to a full backlog with
/// `EAGAIN` and has no readiness event for "the backlog has room", so the connect is retried
/// on a timer; a short first pause keeps a briefly busy server's connect quick.
const FIRST_BACKLOG_PAUSE: Duration = Duration::from_millis(1);
/// The longest pause between tries of a full backlog: an accept is noticed within this.
const MAX_BACKLOG_PAUSE: Duration = Duration::from_millis(50);

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
/// server as [`ConnectOptions::connect`] does, with the same errors, but as async I/O on the
/// awaiting task, so no runtime thread waits and tokio's blocking pool is not needed.
///
/// - TCP: a non-blocking `connect(2)` to each address in turn (tokio's `TcpStream::connect`),
///   with one deadline over all of them; `TCP_NODELAY` is set. A host name is resolved first
///   with tokio's `lookup_host`, which, as every name lookup on tokio, runs the system resolver
///   on the blocking pool (an address such as `tcp:127.0.0.1:PORT` needs no lookup).
/// - Unix streams and SEQPACKET (a path or an abstract name): a non-blocking `connect(2)`. A
///   listener whose backlog is full refuses it with `EAGAIN` and gives no readiness event when
///   room appears, so the connect is tried again after a pause (1 ms, doubling up to 50 ms)
///   until the [timeout](ConnectOptions::with_timeout), or for as long as it takes without one.
/// - Datagram endpoints (`udp:`, `unixgram:`): their connect never waits, so it is made on the
///   calling thread (a `udp:` host name resolved with `lookup_host`), then the socket is
///   registered with tokio.
/// - An inherited socket (`fd:N`, `systemd:`, `systemd:NAME`) is adopted as the blocking
///   connect adopts it, on the calling thread (nothing waits, and `systemd:` clears its
///   environment variables there), then made non-blocking and registered with tokio.
///
/// While waiting for a server, the pauses between attempts are tokio timers.
///
/// # Cancel safety
///
/// Dropping the future (a `timeout`, a lost `select!` branch) stops the connect: nothing goes on
/// in the background, and a socket it had made is closed. Only a host name lookup already
/// handed to the blocking pool finishes there, and its answer is dropped.
///
/// # Errors
///
/// As [`ConnectOptions::connect`], each naming `endpoint` as given; [`Error::Io`] without a
/// runtime to register the socket with.
///
/// # Platform-specific behavior
///
/// The retried full backlog is Linux's. Where a full backlog refuses a Unix connect at once
/// (the BSDs, macOS), the result is [`Error::ConnectionRefused`] without waiting, as for
/// [`UnixStream::connect_timeout`](crate::UnixStream::connect_timeout).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> msgsock::Result<()> {
/// use std::time::Duration;
/// use msgsock::ConnectOptions;
///
/// let listener = msgsock::tokio::bind(&"tcp:127.0.0.1:0".parse()?).await?;
/// let options = ConnectOptions::new().with_timeout(Some(Duration::from_secs(5)));
/// let endpoint = listener.local_endpoint()?;
/// let (client, server) = tokio::join!(
///     msgsock::tokio::connect_with(&options, &endpoint),
///     listener.accept(),
/// );
/// client?.send(b"hello").await?;
/// assert_eq!(server?.recv().await?.as_deref(), Some(&b"hello"[..]));
/// # Ok(())
/// # }
/// ```
pub async fn connect_with(
    options: &ConnectOptions,
    endpoint: &Endpoint,
) -> Result<AsyncAnyConnection> {
    // Before any socket, name lookup or timer, which all need the runtime.
    super::in_runtime()?;
    let mut wait = ServerWait::new(options);
    loop {
        match wait.after(connect_once(options, endpoint).await) {
            ControlFlow::Break(done) => return done,
            ControlFlow::Continue(pause) => sleep(pause).await,
        }
    }
}

/// Connects to `endpoint` and runs the connecting side of the shared-key handshake: the async
/// form of [`msgsock::connect_authenticated`](crate::connect_authenticated),
/// [`connect_authenticated_with(&ConnectOptions::new(), ..)`](connect_authenticated_with).
///
/// # Errors
///
/// As [`connect_authenticated_with`].
pub async fn connect_authenticated(
    endpoint: &Endpoint,
    auth: &Authenticator,
) -> Result<AsyncAnyConnection> {
    connect_authenticated_with(&ConnectOptions::new(), endpoint, auth).await
}

/// Connects to a stream `endpoint` with `options` as [`connect_with`] does, then runs the
/// connecting side of the shared-key handshake
/// ([`AsyncConnection::authenticate_client`]): the async form of
/// [`ConnectOptions::connect_authenticated`]. The wait for a server covers the connect, not the
/// handshake, which [`Authenticator::timeout`] bounds.
///
/// # Errors
///
/// As [`connect_with`] and [`AsyncConnection::authenticate_client`];
/// [`Error::WrongSocketType`] naming `endpoint` for a datagram or SEQPACKET endpoint, before
/// any connect (the handshake needs a stream).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> msgsock::Result<()> {
/// use msgsock::{AuthKey, Authenticator};
///
/// let auth = Authenticator::new(AuthKey::new(b"secret".to_vec()));
/// let listener = msgsock::tokio::bind(&"tcp:127.0.0.1:0".parse()?).await?;
/// let endpoint = listener.local_endpoint()?;
/// let server = async {
///     let mut conn = listener.accept().await?;
///     conn.authenticate_server(&auth).await?;
///     conn.send(b"welcome").await
/// };
/// let options = msgsock::ConnectOptions::new();
/// let client = msgsock::tokio::connect_authenticated_with(&options, &endpoint, &auth);
/// let (client, server) = tokio::join!(client, server);
/// server?;
/// assert_eq!(client?.recv().await?.as_deref(), Some(&b"welcome"[..]));
/// # Ok(())
/// # }
/// ```
pub async fn connect_authenticated_with(
    options: &ConnectOptions,
    endpoint: &Endpoint,
    auth: &Authenticator,
) -> Result<AsyncAnyConnection> {
    let mut conn = match endpoint {
        // Adopted only if it is a stream, as the blocking side does.
        Endpoint::Fd(_) | Endpoint::Systemd(_) => {
            AsyncAnyConnection::from_blocking(crate::activation::connect_stream(endpoint)?.into())?
        }
        _ if endpoint.socket_type() != SocketType::Stream => {
            return Err(wrong_type(endpoint, SocketType::Stream))
        }
        _ => connect_with(options, endpoint).await?,
    };
    conn.authenticate_client(auth).await?;
    Ok(conn)
}

/// One attempt of [`connect_with`], without waiting for a server.
async fn connect_once(options: &ConnectOptions, endpoint: &Endpoint) -> Result<AsyncAnyConnection> {
    let timeout = options.timeout();
    let unix = |ty, addr| unix(ty, addr, endpoint, timeout);
    Ok(match endpoint {
        Endpoint::Tcp(addr) => tcp(endpoint, vec![*addr], timeout).await?.into(),
        Endpoint::TcpHost(host) => {
            let addrs = lookup(endpoint, host).await?;
            tcp(endpoint, addrs, timeout).await?.into()
        }
        Endpoint::Unix(path) => {
            unix_stream(unix(sys::SocketType::Stream, path_addr(path, endpoint)?).await?)?
        }
        Endpoint::UnixAbstract(name) => {
            unix_stream(unix(sys::SocketType::Stream, abstract_addr(name)?).await?)?
        }
        Endpoint::UnixSeqpacket(path) => {
            seqpacket(unix(sys::SocketType::SeqPacket, path_addr(path, endpoint)?).await?)?
        }
        Endpoint::UnixSeqpacketAbstract(name) => {
            seqpacket(unix(sys::SocketType::SeqPacket, abstract_addr(name)?).await?)?
        }
        Endpoint::UdpHost(host) => {
            let addrs = lookup(endpoint, host).await?;
            AsyncAnyConnection::from_blocking(udp(endpoint, addrs)?)?
        }
        // These never wait: the blocking connect is the async one.
        Endpoint::Udp(_)
        | Endpoint::UnixDatagram(_)
        | Endpoint::UnixDatagramAbstract(_)
        | Endpoint::Fd(_)
        | Endpoint::Systemd(_) => {
            AsyncAnyConnection::from_blocking(options.connect_once(endpoint)?)?
        }
    })
}

/// Resolves a host name with tokio's `lookup_host` (the system resolver on the blocking pool);
/// errors as the blocking connect's.
async fn lookup(endpoint: &Endpoint, host: &HostPort) -> Result<Vec<SocketAddr>> {
    resolved(
        endpoint,
        ::tokio::net::lookup_host((host.host(), host.port())).await,
    )
}

/// A TCP connection to the first of `addrs` that accepts, tried in order with `timeout`
/// bounding them all, as [`TcpStream::connect_each`](crate::TcpStream) does; `TCP_NODELAY` set.
async fn tcp(
    endpoint: &Endpoint,
    addrs: Vec<SocketAddr>,
    timeout: Option<Duration>,
) -> Result<AsyncConnection<AsyncAnyStream>> {
    check_timeout(endpoint, timeout)?;
    let each = async {
        let mut last = None;
        for addr in addrs {
            match ::tokio::net::TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(Error::connect(endpoint.clone(), e)),
            }
        }
        Err(last.unwrap_or_else(|| {
            let none = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
            Error::connect(endpoint.clone(), none)
        }))
    };
    let stream = match timeout.and_then(|t| Instant::now().checked_add(t)) {
        Some(deadline) => timeout_at(deadline, each).await.unwrap_or_else(|_| {
            Err(Error::ConnectTimeout {
                endpoint: endpoint.clone(),
                timeout: timeout.unwrap_or_default(),
            })
        })?,
        // No limit, or one too far off for the timer.
        None => each.await?,
    };
    // tokio made this socket: on Apple targets it may still raise SIGPIPE until told not to.
    sys::no_sigpipe(stream.as_fd())?;
    // Messages are whole units: Nagle's delay would only hold a finished message back.
    stream.set_nodelay(true)?;
    Ok(AsyncConnection::new(AsyncAnyStream::Tcp(stream)))
}

/// A connected Unix stream socket as an async message connection.
fn unix_stream(fd: OwnedFd) -> Result<AsyncAnyConnection> {
    let stream = ::tokio::net::UnixStream::from_std(std::os::unix::net::UnixStream::from(fd))?;
    Ok(AsyncConnection::new(AsyncAnyStream::Unix(stream)).into())
}

/// A connected SEQPACKET socket as an async message connection.
fn seqpacket(fd: OwnedFd) -> Result<AsyncAnyConnection> {
    Ok(AsyncSeqpacket::from_blocking(crate::UnixSeqpacket::from(fd))?.into())
}

/// The address of the socket file at `path`: [`Error::PathTooLong`] if it does not fit, and
/// (as a blocking connect fails for it) [`Error::Connect`] naming `endpoint` for a path with a
/// NUL byte.
fn path_addr(path: &Path, endpoint: &Endpoint) -> Result<UnixAddr> {
    check_len(path)?;
    UnixAddr::from_path(path).map_err(|e| Error::connect(endpoint.clone(), e))
}

/// The address of the abstract name `name`; [`Error::Endpoint`] for a bad name.
fn abstract_addr(name: &[u8]) -> Result<UnixAddr> {
    abstract_name::unix_addr(name)
}

/// A non-blocking Unix socket of type `ty` connected to `addr`, trying a full backlog again on
/// a timer until `timeout` (see [`FIRST_BACKLOG_PAUSE`]); errors as the blocking
/// `connect_timeout`'s, naming `endpoint`.
async fn unix(
    ty: sys::SocketType,
    addr: UnixAddr,
    endpoint: &Endpoint,
    timeout: Option<Duration>,
) -> Result<OwnedFd> {
    check_timeout(endpoint, timeout)?;
    let fd = sys::unix_socket(ty, true)?;
    let mut backlog = Backoff::new(FIRST_BACKLOG_PAUSE, MAX_BACKLOG_PAUSE, timeout);
    loop {
        match sys::connect_unix_addr(fd.as_fd(), &addr) {
            Ok(()) => return Ok(fd),
            // A connect refused for a full backlog leaves the socket unconnected: try it again.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => match backlog.next_pause() {
                Some(pause) => sleep(pause).await,
                None => {
                    return Err(Error::ConnectTimeout {
                        endpoint: endpoint.clone(),
                        timeout: timeout.unwrap_or_default(),
                    })
                }
            },
            Err(e) => return Err(Error::connect(endpoint.clone(), e)),
        }
    }
}
