use std::io;
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::os::unix::net::{SocketAddr, UnixStream as StdUnixStream};
use std::path::Path;
use std::time::Duration;

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::stream::stream_traits;
use crate::sys::SocketType;
use crate::unix::socket_file::check_len;

/// A connected Unix-domain stream socket whose writes never raise `SIGPIPE`.
///
/// It has std's calls (`try_clone`, timeouts, `shutdown`, addresses) as inherent methods, and
/// converts from and to std's `UnixStream` and `OwnedFd`. Wrap it in a
/// [`Connection`](crate::Connection) to exchange messages.
pub struct UnixStream(pub(crate) StdUnixStream);

stream_traits!(UnixStream(StdUnixStream), carries_fds: true);

impl UnixStream {
    /// Connects to the socket at `path` (`connect(2)`).
    ///
    /// # Errors
    ///
    /// - [`Error::PathTooLong`] before any system call if `path` does not fit in `sun_path`.
    /// - [`Error::ConnectionRefused`] for a stale socket file (its server has gone).
    /// - [`Error::NotFound`] when there is no socket file at `path`.
    /// - [`Error::Connect`] otherwise, for example `PermissionDenied`.
    ///
    /// Each names the endpoint `unix:PATH`.
    pub fn connect<P: AsRef<Path>>(path: P) -> Result<UnixStream> {
        let path = path.as_ref();
        check_len(path)?;
        StdUnixStream::connect(path)
            .and_then(crate::sys::without_sigpipe)
            .map(UnixStream)
            .map_err(|e| Error::connect(Endpoint::Unix(path.into()), e))
    }

    /// Connects to the socket with the abstract name `name` (`unix:@NAME`, Linux's abstract
    /// namespace), with `connect(2)`.
    ///
    /// # Errors
    ///
    /// [`Error::Endpoint`] for a name too long, empty or with a NUL, before any system call;
    /// [`Error::ConnectionRefused`] when no socket has the name; [`Error::Connect`] otherwise.
    /// Each names the endpoint `unix:@NAME`.
    ///
    /// # Platform-specific behavior
    ///
    /// Linux and Android only; elsewhere [`Error::Io`] with `Unsupported`.
    pub fn connect_abstract<N: AsRef<[u8]>>(name: N) -> Result<UnixStream> {
        let name = name.as_ref();
        let addr = crate::unix::abstract_name::socket_addr(name)?;
        StdUnixStream::connect_addr(&addr)
            .and_then(crate::sys::without_sigpipe)
            .map(UnixStream)
            .map_err(|e| Error::connect(Endpoint::UnixAbstract(name.into()), e))
    }

    /// Connects to the socket at `path`, waiting at most `timeout` (`connect(2)` bounded by
    /// `SO_SNDTIMEO`, then cleared). A Unix connect waits only while the listener's backlog is
    /// full: a server that is up but not accepting.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect); [`Error::ConnectTimeout`] if the time ran out;
    /// [`Error::Connect`] with `InvalidInput` for a zero `timeout`, as std's
    /// `TcpStream::connect_timeout`.
    ///
    /// # Platform-specific behavior
    ///
    /// Linux bounds the wait by the timeout. Where a full backlog refuses at once (the BSDs,
    /// macOS), the result is [`Error::ConnectionRefused`] without waiting.
    pub fn connect_timeout<P: AsRef<Path>>(path: P, timeout: Duration) -> Result<UnixStream> {
        let path = path.as_ref();
        connect_path_timeout(
            SocketType::Stream,
            path,
            timeout,
            Endpoint::Unix(path.into()),
        )
        .map(|fd| UnixStream(StdUnixStream::from(fd)))
    }

    /// Connects to the socket with the abstract name `name` (`unix:@NAME`), waiting at most
    /// `timeout` for room in its listener's backlog, as [`connect_timeout`](Self::connect_timeout)
    /// does for a path.
    ///
    /// # Errors
    ///
    /// As [`connect_abstract`](Self::connect_abstract); [`Error::ConnectTimeout`] if the time
    /// ran out; [`Error::Connect`] with `InvalidInput` for a zero `timeout`.
    ///
    /// # Platform-specific behavior
    ///
    /// Linux and Android only; elsewhere [`Error::Io`] with `Unsupported`.
    pub fn connect_abstract_timeout<N: AsRef<[u8]>>(
        name: N,
        timeout: Duration,
    ) -> Result<UnixStream> {
        let name = name.as_ref();
        let addr = crate::unix::abstract_name::socket_addr(name)?;
        let endpoint = Endpoint::UnixAbstract(name.into());
        connect_addr_timeout(SocketType::Stream, &addr, timeout, endpoint)
            .map(|fd| UnixStream(StdUnixStream::from(fd)))
    }

    /// The credentials of the process at the other end, as they were when it connected
    /// (`SO_PEERCRED`): a server can refuse other users.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `getsockopt(2)`.
    ///
    /// # Platform-specific behavior
    ///
    /// Linux and Android only.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = msgsock::UnixStream::pair()?;
    /// let cred = a.peer_cred()?;
    /// assert_eq!(cred.pid, std::process::id() as i32);
    /// # Ok::<(), msgsock::Error>(())
    /// ```
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn peer_cred(&self) -> Result<PeerCred> {
        let (pid, uid, gid) = crate::sys::peer_cred(std::os::fd::AsFd::as_fd(&self.0))?;
        Ok(PeerCred { pid, uid, gid })
    }

    /// A connected pair of sockets (`socketpair(2)`), for a parent and the child it forks or a
    /// thread it starts.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `socketpair(2)` fails.
    pub fn pair() -> Result<(UnixStream, UnixStream)> {
        let (a, b) = StdUnixStream::pair()?;
        let no_sigpipe = crate::sys::without_sigpipe;
        Ok((UnixStream(no_sigpipe(a)?), UnixStream(no_sigpipe(b)?)))
    }

    /// The wrapped std stream.
    pub fn get_ref(&self) -> &StdUnixStream {
        &self.0
    }

    /// The wrapped std stream. Writing through it directly can raise `SIGPIPE`.
    pub fn into_inner(self) -> StdUnixStream {
        self.0
    }

    /// A second handle to the same socket (`dup(2)`), sharing its options and mode.
    ///
    /// # Errors
    ///
    /// From `dup(2)`, for example `EMFILE`.
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        self.0.try_clone().map(UnixStream)
    }

    /// Shuts down the read, write, or both halves (`shutdown(2)`): after `Shutdown::Write` the
    /// peer reads end of stream.
    ///
    /// # Errors
    ///
    /// From `shutdown(2)`, for example `NotConnected`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.shutdown(how)
    }

    /// Sets the read timeout (`SO_RCVTIMEO`); `None` blocks forever. A read that times out is
    /// `WouldBlock` or `TimedOut`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as std's.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.set_read_timeout(timeout)
    }

    /// Sets the write timeout (`SO_SNDTIMEO`); `None` blocks forever.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as std's.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.set_write_timeout(timeout)
    }

    /// The read timeout (`SO_RCVTIMEO`); `None` for none.
    ///
    /// # Errors
    ///
    /// From `getsockopt(2)`.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.0.read_timeout()
    }

    /// The write timeout (`SO_SNDTIMEO`); `None` for none.
    ///
    /// # Errors
    ///
    /// From `getsockopt(2)`.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.0.write_timeout()
    }

    /// Moves the socket into or out of non-blocking mode (`O_NONBLOCK`, shared with every
    /// clone): reads and writes then fail with `WouldBlock` instead of waiting.
    ///
    /// # Errors
    ///
    /// From `fcntl(2)`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.0.set_nonblocking(nonblocking)
    }

    /// Takes the pending socket error (`SO_ERROR`), clearing it.
    ///
    /// # Errors
    ///
    /// From `getsockopt(2)`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.0.take_error()
    }

    /// This end's address (`getsockname(2)`): unnamed for a client, whose socket is not bound.
    ///
    /// # Errors
    ///
    /// From `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    /// The peer's address (`getpeername(2)`): a listener's path.
    ///
    /// # Errors
    ///
    /// From `getpeername(2)`, for example `NotConnected`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }
}

/// The process at the other end of a Unix socket, from [`UnixStream::peer_cred`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerCred {
    /// Its process id.
    pub pid: i32,
    /// Its effective user id.
    pub uid: u32,
    /// Its effective group id.
    pub gid: u32,
}

/// A socket of type `ty` connected to `addr` (a path or an abstract name) within `timeout`,
/// with the errors [`UnixStream::connect_timeout`] documents, naming `endpoint`: shared with
/// abstract names and SEQPACKET.
pub(crate) fn connect_addr_timeout(
    ty: SocketType,
    addr: &SocketAddr,
    timeout: Duration,
    endpoint: Endpoint,
) -> Result<OwnedFd> {
    crate::connect::check_timeout(&endpoint, Some(timeout))?;
    let connected = crate::sys::UnixAddr::from_std(addr)
        .and_then(|addr| crate::sys::unix_connect_timeout(ty, &addr, timeout));
    connected.map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock => Error::ConnectTimeout { endpoint, timeout },
        _ => Error::connect(endpoint, e),
    })
}

/// [`connect_addr_timeout`] to the socket file at `path`.
pub(crate) fn connect_path_timeout(
    ty: SocketType,
    path: &Path,
    timeout: Duration,
    endpoint: Endpoint,
) -> Result<OwnedFd> {
    check_len(path)?;
    let addr = SocketAddr::from_pathname(path).map_err(|e| Error::connect(endpoint.clone(), e))?;
    connect_addr_timeout(ty, &addr, timeout, endpoint)
}
