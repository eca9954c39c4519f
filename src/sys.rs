//! Every system call std does not offer, in one place. The public types hold policy; this holds
//! the calls.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::sys::socket::{self, MsgFlags, UnixAddr};

/// `MSG_NOSIGNAL` makes a write to a vanished peer fail with `EPIPE` instead of raising `SIGPIPE`,
/// which would kill a process that has not ignored it.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "illumos",
    target_os = "solaris"
))]
const NO_SIGPIPE: MsgFlags = MsgFlags::MSG_NOSIGNAL;
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "illumos",
    target_os = "solaris"
)))]
const NO_SIGPIPE: MsgFlags = MsgFlags::empty();

/// `send(2)` with `MSG_NOSIGNAL`.
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    socket::send(fd.as_raw_fd(), buf, NO_SIGPIPE).map_err(io::Error::from)
}

/// `sendmsg(2)` with `MSG_NOSIGNAL`: a gathering write. With no control messages nix allocates
/// nothing (`vec![0; 0]`).
pub(crate) fn send_vectored(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    socket::sendmsg::<UnixAddr>(fd.as_raw_fd(), bufs, &[], NO_SIGPIPE, None)
        .map_err(io::Error::from)
}

/// `recv(2)` with `MSG_DONTWAIT`: a read that never blocks, on a socket that stays blocking for
/// everyone else.
pub(crate) fn recv_nowait(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    socket::recv(fd.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT).map_err(io::Error::from)
}

/// Whether `fd` is a Unix-domain socket (`getsockname(2)`).
pub(crate) fn is_unix(fd: BorrowedFd<'_>) -> bool {
    socket::getsockname::<UnixAddr>(fd.as_raw_fd()).is_ok()
}

/// The effective user id, owner of the socket files this process creates.
pub(crate) fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}
