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

/// The effective user id, owner of the socket files this process creates.
pub(crate) fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// `MSG_TRUNC` on input makes Linux return a datagram's real length even when it did not fit;
/// elsewhere only the output flag says that it was cut.
#[cfg(any(target_os = "linux", target_os = "android"))]
const REAL_LEN: MsgFlags = MsgFlags::MSG_TRUNC;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const REAL_LEN: MsgFlags = MsgFlags::empty();

/// One datagram from `recvmsg(2)`.
pub(crate) struct Datagram<A> {
    /// Bytes in the datagram (on Linux even when more than the buffer held).
    pub(crate) len: usize,
    /// Whether the datagram was longer than the buffer.
    pub(crate) truncated: bool,
    /// The sender, if it has an address.
    pub(crate) from: Option<A>,
}

/// Receives one datagram into `buf` with `recvmsg(2)`, retrying `EINTR`.
pub(crate) fn recv_datagram<A: socket::SockaddrLike>(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
) -> io::Result<Datagram<A>> {
    let cap = buf.len();
    loop {
        let mut iov = [io::IoSliceMut::new(buf)];
        match socket::recvmsg::<A>(fd.as_raw_fd(), &mut iov, None, REAL_LEN) {
            Ok(msg) => {
                let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC);
                return Ok(Datagram {
                    len: if truncated {
                        msg.bytes.max(cap + 1)
                    } else {
                        msg.bytes
                    },
                    truncated,
                    from: msg.address,
                });
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// The socket's send buffer size as the kernel accounts it (`SO_SNDBUF`, already doubled).
pub(crate) fn send_buffer_len(fd: BorrowedFd<'_>) -> io::Result<usize> {
    socket::getsockopt(&fd, socket::sockopt::SndBuf).map_err(io::Error::from)
}

/// The connected peer's `(pid, uid, gid)` (`SO_PEERCRED`), as they were at `connect(2)`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<(i32, u32, u32)> {
    let cred =
        socket::getsockopt(&fd, socket::sockopt::PeerCredentials).map_err(io::Error::from)?;
    Ok((cred.pid(), cred.uid(), cred.gid()))
}
