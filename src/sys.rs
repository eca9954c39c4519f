//! Every system call std does not offer, in one place. The public types hold policy; this holds
//! the calls.

use std::io::{self, IoSlice, IoSliceMut};
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

/// `recvmsg(2)` with `MSG_DONTWAIT` into several buffers, filled in order. With no control
/// message buffer nix allocates nothing.
pub(crate) fn recv_vectored_nowait(
    fd: BorrowedFd<'_>,
    bufs: &mut [IoSliceMut<'_>],
) -> io::Result<usize> {
    socket::recvmsg::<()>(fd.as_raw_fd(), bufs, None, MsgFlags::MSG_DONTWAIT)
        .map(|msg| msg.bytes)
        .map_err(io::Error::from)
}

/// Whether `fd` is a Unix-domain socket (`getsockname(2)`).
pub(crate) fn is_unix(fd: BorrowedFd<'_>) -> bool {
    socket::getsockname::<UnixAddr>(fd.as_raw_fd()).is_ok()
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

/// Receives one datagram of at most `max` bytes into `buf` with `recvmsg(2)`, retrying `EINTR`;
/// with `peek` (`MSG_PEEK`) it stays queued.
///
/// `buf` is cleared and the datagram lands in its spare capacity, which is never zeroed: a
/// receive limit of 200 KiB would otherwise cost a 200 KiB memset per message, whatever its size.
/// `buf` holds the datagram afterwards, or nothing if it was truncated. The sender's address is
/// asked of the kernel only `with_sender`: a connected socket knows its peer.
#[allow(unsafe_code)]
pub(crate) fn recv_datagram<A: socket::SockaddrLike>(
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    max: usize,
    with_sender: bool,
    peek: bool,
) -> io::Result<Datagram<A>> {
    use nix::libc;
    use std::mem::{size_of, MaybeUninit};

    buf.clear();
    buf.reserve(max);
    let mut addr = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    loop {
        let mut iov = libc::iovec {
            iov_base: buf.spare_capacity_mut().as_mut_ptr().cast(),
            iov_len: max,
        };
        // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths); zeroing also fills
        // the private padding fields some platforms have.
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        if with_sender {
            hdr.msg_name = addr.as_mut_ptr().cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        let flags = if peek {
            REAL_LEN | MsgFlags::MSG_PEEK
        } else {
            REAL_LEN
        };
        // SAFETY: `iov` points at `max` writable bytes of `buf`'s spare capacity (reserved above)
        // and `msg_name` at a whole sockaddr_storage; both outlive the call.
        let ret = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut hdr, flags.bits()) };
        if ret < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        let got = ret as usize;
        let truncated = hdr.msg_flags & libc::MSG_TRUNC != 0 || got > max;
        if !truncated {
            // SAFETY: the kernel wrote `got` bytes at the start of the spare capacity, and
            // `got <= max <= capacity`.
            unsafe { buf.set_len(got) };
        }
        // An unnamed sender (or none asked for) has `msg_namelen` 0, for which `from_raw` returns
        // `None`.
        // SAFETY: the kernel filled `msg_namelen` bytes of the sockaddr_storage.
        let from = unsafe { A::from_raw(addr.as_ptr().cast(), Some(hdr.msg_namelen)) };
        return Ok(Datagram {
            len: if truncated {
                got.max(max.saturating_add(1))
            } else {
                got
            },
            truncated,
            from,
        });
    }
}

/// `sendto(2)` with `MSG_DONTWAIT` and `MSG_NOSIGNAL`: a send that never waits for room, on a
/// socket that stays blocking for everyone else.
pub(crate) fn send_to_nowait(
    fd: BorrowedFd<'_>,
    buf: &[u8],
    addr: &dyn socket::SockaddrLike,
) -> io::Result<usize> {
    socket::sendto(
        fd.as_raw_fd(),
        buf,
        addr,
        NO_SIGPIPE | MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)
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

/// Waits in `poll(2)` up to `timeout` for `fd` to be writable; whether it is. `EINTR` counts as
/// not yet: the caller's retry is bounded anyway.
pub(crate) fn wait_writable(fd: BorrowedFd<'_>, timeout: std::time::Duration) -> io::Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
    match poll(&mut fds, ms) {
        Ok(n) => Ok(n > 0),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Waits in `poll(2)` until `a` or `b` is readable (or hung up), retrying `EINTR`.
pub(crate) fn wait_readable(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> io::Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [
        PollFd::new(a, PollFlags::POLLIN),
        PollFd::new(b, PollFlags::POLLIN),
    ];
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
