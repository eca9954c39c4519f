//! The descriptor calls: waits in `poll(2)`, the close-on-exec flag, and duplicates.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use super::retry;

/// Waits in `poll(2)` up to `timeout` for `fd` to be writable; whether it is. The wait is
/// rounded up to whole milliseconds, so that a caller that waits again until a deadline does
/// not spin through its last fraction of one.
pub(crate) fn wait_writable(fd: BorrowedFd<'_>, timeout: std::time::Duration) -> io::Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::time::Instant;

    let deadline = Instant::now().checked_add(timeout);
    let ready = retry(|| {
        let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
        let ms =
            PollTimeout::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(PollTimeout::MAX);
        poll(&mut [PollFd::new(fd, PollFlags::POLLOUT)], ms)
    })?;
    Ok(ready > 0)
}

/// Waits in `poll(2)` until `a` or `b` is readable (or hung up).
pub(crate) fn wait_readable(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> io::Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [
        PollFd::new(a, PollFlags::POLLIN),
        PollFd::new(b, PollFlags::POLLIN),
    ];
    retry(|| poll(&mut fds, PollTimeout::NONE)).map(drop)
}

/// The descriptor flags (`fcntl(2)` `F_GETFD`): whether it is close-on-exec.
pub(crate) fn is_cloexec(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD)?;
    Ok(nix::fcntl::FdFlag::from_bits_truncate(flags).contains(nix::fcntl::FdFlag::FD_CLOEXEC))
}

/// Makes `fd` close-on-exec (`fcntl(2)` `F_SETFD`).
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC);
    nix::fcntl::fcntl(fd, flags)
        .map(drop)
        .map_err(io::Error::from)
}

/// A close-on-exec duplicate of `fd` numbered `min` or above (`fcntl(2)` `F_DUPFD_CLOEXEC`).
#[allow(unsafe_code)]
pub(crate) fn dup_cloexec_from(fd: BorrowedFd<'_>, min: std::os::fd::RawFd) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    let new = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(min))?;
    // SAFETY: fcntl just made `new`, a descriptor nothing else in the process owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// `dup2(2)` of the raw descriptor `src` onto `dst`, which clears close-on-exec on `dst`. For a
/// forked child before `exec`, so it only makes the call: no allocation, no lock.
#[allow(unsafe_code)]
pub(crate) fn dup2_raw(src: std::os::fd::RawFd, dst: std::os::fd::RawFd) -> io::Result<()> {
    // SAFETY: dup2 takes two integers and touches no memory of ours; a bad number is EBADF.
    if unsafe { nix::libc::dup2(src, dst) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
