//! The socket calls: making Unix sockets and pairs, connecting (also within a time), binding,
//! listening, the socket options and the queries of a socket's type, family and peer, and the
//! one way writes are kept from raising `SIGPIPE`. nix's `SockType` stays here; the callers see
//! [`SocketType`].

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::socket::{self, MsgFlags, SockFlag, SockType};

use super::addr::UnixAddr;
use super::retry;
use crate::error::Family;

/// `MSG_NOSIGNAL` makes a write to a vanished peer fail with `EPIPE` instead of raising `SIGPIPE`,
/// which would kill a process that has not ignored it. Apple targets have no such flag: there
/// [`no_sigpipe`] sets the socket option `SO_NOSIGPIPE` instead.
#[cfg(not(target_vendor = "apple"))]
pub(super) const NO_SIGPIPE: MsgFlags = MsgFlags::MSG_NOSIGNAL;
#[cfg(target_vendor = "apple")]
pub(super) const NO_SIGPIPE: MsgFlags = MsgFlags::empty();
// The targets with `MSG_NOSIGNAL`, listed once. Other targets have neither way, so the promise
// could not hold and the crate does not build for them.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "illumos",
    target_os = "solaris",
    target_vendor = "apple"
)))]
compile_error!(
    "msgsock keeps writes from raising SIGPIPE with MSG_NOSIGNAL or SO_NOSIGPIPE, and this \
     target has neither"
);

/// Whether `fd` is in non-blocking mode (`O_NONBLOCK`, `fcntl(2)` `F_GETFL`).
pub(crate) fn is_nonblocking(fd: BorrowedFd<'_>) -> io::Result<bool> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = retry(|| fcntl(fd, FcntlArg::F_GETFL))?;
    Ok(OFlag::from_bits_truncate(flags).contains(OFlag::O_NONBLOCK))
}

/// Takes `fd` out of non-blocking mode (`fcntl(2)` `F_SETFL` without `O_NONBLOCK`), if it is in it.
pub(crate) fn set_blocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(retry(|| fcntl(fd, FcntlArg::F_GETFL))?);
    if flags.contains(OFlag::O_NONBLOCK) {
        retry(|| fcntl(fd, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK)))?;
    }
    Ok(())
}

/// Where writes carry `MSG_NOSIGNAL`, a socket needs nothing more.
#[cfg(not(target_vendor = "apple"))]
pub(crate) fn no_sigpipe(_fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(())
}

/// `setsockopt(2)` of `SO_NOSIGPIPE`: on Apple targets, which have no `MSG_NOSIGNAL`, a write to
/// a vanished peer on this socket fails with `EPIPE` instead of raising `SIGPIPE`. nix has no
/// wrapper for this option.
#[cfg(target_vendor = "apple")]
#[allow(unsafe_code)]
pub(crate) fn no_sigpipe(fd: BorrowedFd<'_>) -> io::Result<()> {
    use nix::libc;
    let on: libc::c_int = 1;
    retry(|| {
        // SAFETY: the option value points at a live `c_int` and the length is its size.
        Errno::result(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_NOSIGPIPE,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        })
    })
    .map(drop)
}

/// `socket` once [`no_sigpipe`] holds for it: for the constructors that wrap a socket std made.
pub(crate) fn without_sigpipe<S: std::os::fd::AsFd>(socket: S) -> io::Result<S> {
    no_sigpipe(socket.as_fd())?;
    Ok(socket)
}

/// The socket types the crate makes and adopts: the socket types choose one by this name, and
/// nix's `SockType` stays here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SocketType {
    Stream,
    Datagram,
    SeqPacket,
}

impl From<SocketType> for SockType {
    fn from(ty: SocketType) -> SockType {
        match ty {
            SocketType::Stream => SockType::Stream,
            SocketType::Datagram => SockType::Datagram,
            SocketType::SeqPacket => SockType::SeqPacket,
        }
    }
}

/// A new Unix-domain socket of type `ty` (`socket(2)`), close-on-exec, non-blocking if asked,
/// and never raising `SIGPIPE` ([`no_sigpipe`]).
#[cfg(not(target_vendor = "apple"))]
pub(crate) fn unix_socket(ty: SocketType, nonblocking: bool) -> io::Result<OwnedFd> {
    let mut flags = SockFlag::SOCK_CLOEXEC;
    if nonblocking {
        flags |= SockFlag::SOCK_NONBLOCK;
    }
    retry(|| socket::socket(socket::AddressFamily::Unix, ty.into(), flags, None))
}

/// A new Unix-domain socket of type `ty` (`socket(2)`), close-on-exec, non-blocking if asked,
/// and never raising `SIGPIPE` ([`no_sigpipe`]). Apple targets have no `SOCK_CLOEXEC` or
/// `SOCK_NONBLOCK`, so both are set with `fcntl(2)` afterwards, as std does there.
#[cfg(target_vendor = "apple")]
pub(crate) fn unix_socket(ty: SocketType, nonblocking: bool) -> io::Result<OwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let fd = retry(|| {
        socket::socket(
            socket::AddressFamily::Unix,
            ty.into(),
            SockFlag::empty(),
            None,
        )
    })?;
    retry(|| fcntl(&fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)))?;
    if nonblocking {
        retry(|| fcntl(&fd, FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)))?;
    }
    no_sigpipe(std::os::fd::AsFd::as_fd(&fd))?;
    Ok(fd)
}

/// `connect(2)` to the Unix socket at `path`. A Unix connect interrupted while it waits for
/// room in the backlog has not connected (`unix_stream_connect`), so it is made again.
pub(crate) fn connect_unix(fd: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    connect_unix_addr(fd, &UnixAddr::from_path(path)?)
}

/// `connect(2)` to the Unix socket address `addr`, a path or an abstract name, as
/// [`connect_unix`].
pub(crate) fn connect_unix_addr(fd: BorrowedFd<'_>, addr: &UnixAddr) -> io::Result<()> {
    retry(|| socket::connect(fd.as_raw_fd(), addr.as_nix()))
}

/// `bind(2)` to the Unix socket address `path`.
pub(crate) fn bind_unix(fd: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    bind_unix_addr(fd, &UnixAddr::from_path(path)?)
}

/// `bind(2)` to the Unix socket address `addr`, a path or an abstract name.
pub(crate) fn bind_unix_addr(fd: BorrowedFd<'_>, addr: &UnixAddr) -> io::Result<()> {
    retry(|| socket::bind(fd.as_raw_fd(), addr.as_nix()))
}

/// A connected pair of Unix sockets of type `ty` (`socketpair(2)`), close-on-exec.
pub(crate) fn unix_pair(ty: SocketType) -> io::Result<(OwnedFd, OwnedFd)> {
    #[cfg(not(target_vendor = "apple"))]
    let flags = SockFlag::SOCK_CLOEXEC;
    // Apple targets have no SOCK_CLOEXEC, nor SOCK_SEQPACKET for Unix sockets.
    #[cfg(target_vendor = "apple")]
    let flags = SockFlag::empty();
    retry(|| socket::socketpair(socket::AddressFamily::Unix, ty.into(), None, flags))
}

/// `listen(2)` with the largest backlog the system allows, as std's `UnixListener::bind` asks; on
/// a socket that listens already, it raises the backlog (std's `TcpListener::bind` asks 128).
pub(crate) fn listen(fd: BorrowedFd<'_>) -> io::Result<()> {
    retry(|| socket::listen(&fd, socket::Backlog::MAXCONN))
}

/// The socket's send buffer size as the kernel accounts it (`SO_SNDBUF`, already doubled).
pub(crate) fn send_buffer_len(fd: BorrowedFd<'_>) -> io::Result<usize> {
    retry(|| socket::getsockopt(&fd, socket::sockopt::SndBuf))
}

/// The connected peer's `(pid, uid, gid)` (`SO_PEERCRED`), as they were at `connect(2)`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<(i32, u32, u32)> {
    let cred = retry(|| socket::getsockopt(&fd, socket::sockopt::PeerCredentials))?;
    Ok((cred.pid(), cred.uid(), cred.gid()))
}

/// `connect(2)` of a new Unix stream socket to `path` that waits at most `timeout` for room in
/// the listener's backlog. Linux bounds that wait (`unix_wait_for_peer`) by the socket's
/// `SO_SNDTIMEO` and then fails with `EAGAIN`; a non-blocking connect would fail with `EAGAIN`
/// at once and leave nothing to poll. `SO_SNDTIMEO` is cleared again before returning, so it is
/// no write timeout. `EINTR` is retried with the time left.
pub(crate) fn unix_connect_timeout(
    ty: SocketType,
    addr: &UnixAddr,
    timeout: std::time::Duration,
) -> io::Result<OwnedFd> {
    use nix::sys::time::TimeVal;
    use std::time::Instant;

    let to_timeval = |d: std::time::Duration| {
        // A zero timeval means "no timeout": round up to the smallest one.
        let micros = d.as_micros().clamp(1, i64::MAX as u128) as i64;
        TimeVal::new(
            (micros / 1_000_000) as nix::libc::time_t,
            (micros % 1_000_000) as nix::libc::suseconds_t,
        )
    };
    let fd = unix_socket(ty, false)?;
    let deadline = Instant::now().checked_add(timeout);
    // The first attempt is made however little time is left: a connect to a listener with
    // room does not wait, so even a nanosecond is enough for it (as on tokio).
    let mut first = true;
    retry(|| {
        let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
        if left.is_zero() && !first {
            return Err(Errno::EAGAIN);
        }
        first = false;
        socket::setsockopt(&fd, socket::sockopt::SendTimeout, &to_timeval(left))?;
        socket::connect(fd.as_raw_fd(), addr.as_nix())
    })?;
    retry(|| socket::setsockopt(&fd, socket::sockopt::SendTimeout, &TimeVal::new(0, 0)))?;
    Ok(fd)
}

/// The socket's type (`getsockopt(2)` `SO_TYPE`): one the crate serves, or the name of
/// another for an error message.
pub(crate) fn socket_type(fd: BorrowedFd<'_>) -> io::Result<Result<SocketType, String>> {
    Ok(match socket::getsockopt(&fd, socket::sockopt::SockType)? {
        SockType::Stream => Ok(SocketType::Stream),
        SockType::Datagram => Ok(SocketType::Datagram),
        SockType::SeqPacket => Ok(SocketType::SeqPacket),
        other => Err(format!("{other:?}")),
    })
}

/// Whether the socket listens (`getsockopt(2)` `SO_ACCEPTCONN`).
pub(crate) fn is_listening(fd: BorrowedFd<'_>) -> io::Result<bool> {
    socket::getsockopt(&fd, socket::sockopt::AcceptConn).map_err(io::Error::from)
}

/// Whether the socket has a peer (`getpeername(2)` succeeds; `ENOTCONN` is no).
pub(crate) fn is_connected(fd: BorrowedFd<'_>) -> io::Result<bool> {
    match socket::getpeername::<socket::SockaddrStorage>(fd.as_raw_fd()) {
        Ok(_) => Ok(true),
        Err(nix::errno::Errno::ENOTCONN) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The socket's address family, from its own address (`getsockname(2)`: portable, where
/// `SO_DOMAIN` is Linux's): Unix or internet, or the name of another for an error message.
pub(crate) fn socket_family(fd: BorrowedFd<'_>) -> io::Result<Result<Family, String>> {
    use socket::AddressFamily;
    let addr = socket::getsockname::<socket::SockaddrStorage>(fd.as_raw_fd())?;
    Ok(match socket::SockaddrLike::family(&addr) {
        Some(AddressFamily::Unix) => Ok(Family::Unix),
        Some(AddressFamily::Inet | AddressFamily::Inet6) => Ok(Family::Inet),
        other => Err(other.map_or("unknown".into(), |f| format!("{f:?}"))),
    })
}
