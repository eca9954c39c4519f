//! Connecting to an [`Endpoint`]: names resolved, a time limit, waiting for a server to come up.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::ControlFlow;
use std::os::fd::AsFd;
use std::thread;
use std::time::{Duration, Instant};

use crate::any::{wrong_type, AnyConnection, AnyDatagram, AnyStream};
use crate::auth::Authenticator;
use crate::conn::Connection;
use crate::endpoint::{Endpoint, HostPort};
use crate::error::{Error, Result, SocketType};
use crate::inet::TcpStream;
use crate::sys;
use crate::transport::{DatagramTransport, UdpTransport, UnixDatagramTransport};
use crate::unix::UnixStream;

/// The first pause between attempts while waiting for a server; it doubles up to
/// [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(10);
/// The longest pause between attempts: a server that comes up is found within this.
const MAX_RETRY_DELAY: Duration = Duration::from_millis(500);

/// Pauses that start at `first` and double up to `max`, cut to what is left of a time limit:
/// the one retry schedule of every connect loop, blocking and async.
#[derive(Debug)]
pub(crate) struct Backoff {
    delay: Duration,
    max: Duration,
    /// `None`: no limit, or one too far off to represent.
    deadline: Option<Instant>,
}

impl Backoff {
    /// A schedule that ends once `limit` has passed from now; `None` never ends.
    pub(crate) fn new(first: Duration, max: Duration, limit: Option<Duration>) -> Backoff {
        Backoff {
            delay: first,
            max,
            deadline: limit.and_then(|l| Instant::now().checked_add(l)),
        }
    }

    /// The pause before the next attempt, or `None` once the time is up.
    pub(crate) fn next_pause(&mut self) -> Option<Duration> {
        let pause = match self.deadline {
            Some(deadline) => match deadline.saturating_duration_since(Instant::now()) {
                left if left.is_zero() => return None,
                left => self.delay.min(left),
            },
            None => self.delay,
        };
        self.delay = (self.delay * 2).min(self.max);
        Some(pause)
    }
}

/// The wait-for-server policy of [`ConnectOptions::with_wait_for_server`], for the blocking and
/// the async connect loops: which errors waiting may cure, and for how long.
#[derive(Debug)]
pub(crate) struct ServerWait(Option<Backoff>);

impl ServerWait {
    /// Starts the wait of `options` now.
    pub(crate) fn new(options: &ConnectOptions) -> ServerWait {
        ServerWait(
            options
                .wait
                .map(|w| Backoff::new(FIRST_RETRY_DELAY, MAX_RETRY_DELAY, Some(w))),
        )
    }

    /// After an attempt: `Continue` with the pause before the next, or `Break` with what to
    /// return (success, an error waiting does not cure, or the last error once the wait is
    /// over).
    pub(crate) fn after<T>(&mut self, attempt: Result<T>) -> ControlFlow<Result<T>, Duration> {
        let err = match attempt {
            Err(e @ (Error::ConnectionRefused { .. } | Error::NotFound { .. })) => e,
            other => return ControlFlow::Break(other),
        };
        match self.0.as_mut().and_then(Backoff::next_pause) {
            Some(pause) => ControlFlow::Continue(pause),
            None => ControlFlow::Break(Err(err)),
        }
    }
}

/// `Ok` unless `timeout` is zero, which is [`Error::Connect`] with `InvalidInput` naming
/// `endpoint`, as std's `TcpStream::connect_timeout` refuses it.
pub(crate) fn check_timeout(endpoint: &Endpoint, timeout: Option<Duration>) -> Result<()> {
    if timeout.is_some_and(|t| t.is_zero()) {
        let zero = io::Error::new(io::ErrorKind::InvalidInput, "a connect timeout of zero");
        return Err(Error::connect(endpoint.clone(), zero));
    }
    Ok(())
}

/// How [`connect`](Self::connect) reaches an endpoint: a time limit for each connect, and how
/// long to wait for a server that is not up yet. [`msgsock::connect`](crate::connect) is
/// `ConnectOptions::new().connect(endpoint)`.
///
/// # Examples
///
/// A client started before its server waits for it:
///
/// ```
/// use std::time::Duration;
/// use msgsock::{ConnectOptions, Endpoint};
///
/// let dir = tempfile::tempdir()?;
/// let endpoint = Endpoint::Unix(dir.path().join("later.sock"));
/// # let (ready_tx, ready) = std::sync::mpsc::channel::<()>();
/// # let server = std::thread::spawn({ let endpoint = endpoint.clone(); move || -> msgsock::Result<()> {
/// #     ready.recv().unwrap();
/// #     let mut conn = msgsock::bind(&endpoint)?.accept()?;
/// #     conn.send(b"up")
/// # }});
/// # ready_tx.send(()).unwrap();
/// let mut client = ConnectOptions::new()
///     .with_timeout(Some(Duration::from_secs(1)))
///     .with_wait_for_server(Some(Duration::from_secs(30)))
///     .connect(&endpoint)?;
/// assert_eq!(client.recv()?.as_deref(), Some(&b"up"[..]));
/// # server.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    timeout: Option<Duration>,
    wait: Option<Duration>,
}

impl ConnectOptions {
    /// Options that connect once, with no time limit: what std's `connect` does.
    pub fn new() -> ConnectOptions {
        ConnectOptions::default()
    }

    /// Sets the time limit of each connect, or `None` to wait as long as the system does.
    ///
    /// It bounds the `connect(2)` itself, across every address a host name resolves to: a TCP
    /// host that does not answer, or a listener whose backlog is full (for Unix sockets that is
    /// the only time a connect waits). Resolving a host name is not bounded by it. Datagram
    /// endpoints never wait to connect. Takes effect from the next `connect`.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how long to wait for a server that is not up yet, or `None` to try once.
    ///
    /// While the endpoint is [`Error::ConnectionRefused`] or [`Error::NotFound`] (nobody
    /// listens, no socket file yet, a name that does not resolve yet), `connect` tries again
    /// after a pause that starts at 10 ms and doubles up to 500 ms, until `wait` has passed;
    /// then it returns the last error. Any other error is returned at once. Takes effect from
    /// the next `connect`.
    pub fn with_wait_for_server(mut self, wait: Option<Duration>) -> Self {
        self.wait = wait;
        self
    }

    /// The time limit of each connect.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// How long to wait for a server that is not up yet.
    pub fn wait_for_server(&self) -> Option<Duration> {
        self.wait
    }

    /// Connects to `endpoint`, whichever of the four transports it names.
    ///
    /// A host name (`tcp:localhost:8008`) is resolved and each of its addresses tried in order,
    /// as std's `TcpStream::connect` does; for `udp:` the first address a socket can be
    /// connected to is used. For a datagram endpoint the socket is bound to a fresh address of
    /// its own (a private temporary path for `unixgram:`) so that replies reach it, and
    /// connected to the endpoint.
    ///
    /// # Errors
    ///
    /// Each names `endpoint` as given:
    /// - [`Error::ConnectionRefused`] when nobody listens (a closed port, a stale socket file).
    /// - [`Error::NotFound`] for no socket file at the path, or a host name that does not
    ///   resolve.
    /// - [`Error::ConnectTimeout`] when the [`timeout`](Self::with_timeout) ran out.
    /// - [`Error::Connect`] for any other failure, and with `InvalidInput` for a zero timeout.
    ///
    /// And [`Error::PathTooLong`] for a path that does not fit in `sun_path`.
    pub fn connect(&self, endpoint: &Endpoint) -> Result<AnyConnection> {
        self.retrying(|| self.connect_once(endpoint))
    }

    /// Connects to a stream `endpoint` and runs the connecting side of the shared-key handshake
    /// ([`Connection::authenticate_client`]): the runtime form of Python's
    /// `Client(address, authkey=key)`.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect) and [`Connection::authenticate_client`];
    /// [`Error::WrongSocketType`] for a datagram endpoint (the handshake needs a stream).
    pub fn connect_authenticated(
        &self,
        endpoint: &Endpoint,
        auth: &Authenticator,
    ) -> Result<AnyConnection> {
        let mut conn = self.retrying(|| self.connect_stream(endpoint))?;
        conn.authenticate_client(auth)?;
        Ok(conn.into())
    }

    /// Runs `attempt` until it succeeds, fails for a reason waiting does not cure, or the wait
    /// is over.
    fn retrying<T>(&self, mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
        let mut wait = ServerWait::new(self);
        loop {
            match wait.after(attempt()) {
                ControlFlow::Break(done) => return done,
                ControlFlow::Continue(pause) => thread::sleep(pause),
            }
        }
    }

    pub(crate) fn connect_once(&self, endpoint: &Endpoint) -> Result<AnyConnection> {
        Ok(match endpoint {
            Endpoint::Unix(_)
            | Endpoint::UnixAbstract(_)
            | Endpoint::Tcp(_)
            | Endpoint::TcpHost(_) => self.connect_stream(endpoint)?.into(),
            Endpoint::Udp(addr) => udp(endpoint, [*addr])?,
            Endpoint::UdpHost(host) => udp(endpoint, resolve(endpoint, host)?)?,
            Endpoint::UnixDatagram(path) => {
                AnyDatagram::Unix(UnixDatagramTransport::connect(path)?).into()
            }
            Endpoint::UnixDatagramAbstract(name) => {
                // Bound in a private directory, as for a path, so that the server can reply.
                let socket = crate::UnixDatagram::bind_temp()?;
                socket.connect_abstract(name)?;
                AnyDatagram::Unix(socket).into()
            }
            Endpoint::UnixSeqpacket(path) => match self.timeout {
                Some(t) => crate::UnixSeqpacket::connect_timeout(path, t)?.into(),
                None => crate::UnixSeqpacket::connect(path)?.into(),
            },
            Endpoint::UnixSeqpacketAbstract(name) => match self.timeout {
                Some(t) => crate::UnixSeqpacket::connect_abstract_timeout(name, t)?.into(),
                None => crate::UnixSeqpacket::connect_abstract(name)?.into(),
            },
            Endpoint::Fd(_) | Endpoint::Systemd(_) => crate::activation::connect(endpoint)?,
        })
    }

    /// Connects to a stream `endpoint`; [`Error::WrongSocketType`] for a datagram one.
    pub(crate) fn connect_stream(&self, endpoint: &Endpoint) -> Result<Connection<AnyStream>> {
        let stream = match endpoint {
            Endpoint::Unix(path) => AnyStream::Unix(match self.timeout {
                Some(t) => UnixStream::connect_timeout(path, t)?,
                None => UnixStream::connect(path)?,
            }),
            Endpoint::Tcp(addr) => {
                AnyStream::Tcp(TcpStream::connect_each(endpoint, [*addr], self.timeout)?)
            }
            Endpoint::TcpHost(host) => AnyStream::Tcp(TcpStream::connect_each(
                endpoint,
                resolve(endpoint, host)?,
                self.timeout,
            )?),
            Endpoint::Fd(_) | Endpoint::Systemd(_) => {
                return crate::activation::connect_stream(endpoint)
            }
            Endpoint::UnixAbstract(name) => AnyStream::Unix(match self.timeout {
                Some(t) => UnixStream::connect_abstract_timeout(name, t)?,
                None => UnixStream::connect_abstract(name)?,
            }),
            Endpoint::Udp(_)
            | Endpoint::UdpHost(_)
            | Endpoint::UnixDatagram(_)
            | Endpoint::UnixDatagramAbstract(_)
            | Endpoint::UnixSeqpacket(_)
            | Endpoint::UnixSeqpacketAbstract(_) => {
                return Err(wrong_type(endpoint, SocketType::Stream))
            }
        };
        // std made this socket: on Apple targets it may still raise SIGPIPE until told not to.
        sys::no_sigpipe(stream.as_fd())?;
        Ok(Connection::new(stream))
    }
}

/// Resolves a host name; a name the resolver does not know is [`Error::NotFound`].
pub(crate) fn resolve(endpoint: &Endpoint, host: &HostPort) -> Result<Vec<SocketAddr>> {
    resolved(endpoint, host.to_socket_addrs())
}

/// The addresses of a name lookup, blocking or async: a failed lookup, or one with no address,
/// is [`Error::NotFound`] naming `endpoint`.
pub(crate) fn resolved(
    endpoint: &Endpoint,
    lookup: io::Result<impl Iterator<Item = SocketAddr>>,
) -> Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = lookup
        .map_err(|source| Error::NotFound {
            endpoint: endpoint.clone(),
            source,
        })?
        .collect();
    if addrs.is_empty() {
        return Err(Error::NotFound {
            endpoint: endpoint.clone(),
            source: io::Error::new(io::ErrorKind::NotFound, "the name has no address"),
        });
    }
    Ok(addrs)
}

/// A UDP socket connected to the first of `addrs` that it can be; else the last error.
pub(crate) fn udp(
    endpoint: &Endpoint,
    addrs: impl IntoIterator<Item = SocketAddr>,
) -> Result<AnyConnection> {
    let mut last = None;
    for addr in addrs {
        match UdpTransport::connect(&addr) {
            Ok(socket) => return Ok(AnyDatagram::Udp(socket).into()),
            Err(Error::Io(e)) => last = Some(Error::connect(endpoint.clone(), e)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("resolve returns at least one address"))
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, TcpListener};

    use super::*;

    fn refused_addr() -> SocketAddr {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
    }

    /// Every address a name resolves to is tried in order: a refused first address does not
    /// stop the second from connecting.
    #[test]
    fn each_address_is_tried_in_order() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let good = listener.local_addr().unwrap();
        let endpoint: Endpoint = "tcp:localhost:1".parse().unwrap();
        let stream = TcpStream::connect_each(&endpoint, [refused_addr(), good], None).unwrap();
        let (_, peer) = listener.accept().unwrap();
        assert_eq!(stream.get_ref().local_addr().unwrap(), peer);
    }

    /// When every address fails, the error is the last one and names the endpoint as given.
    #[test]
    fn all_refused_is_refused_naming_the_endpoint() {
        let endpoint: Endpoint = "tcp:localhost:1".parse().unwrap();
        let err =
            TcpStream::connect_each(&endpoint, [refused_addr(), refused_addr()], None).unwrap_err();
        assert!(
            matches!(&err, Error::ConnectionRefused { endpoint: e } if *e == endpoint),
            "{err:?}"
        );
    }

    #[test]
    fn a_zero_timeout_is_invalid_input() {
        let err = TcpStream::connect_timeout(refused_addr(), Duration::ZERO).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err:?}");
        let err = UnixStream::connect_timeout("/nonexistent.sock", Duration::ZERO).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err:?}");
    }
}
