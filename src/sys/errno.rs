//! The error numbers policy code tells apart, as predicates on `io::Error`: callers compare no
//! `libc` constants. And the one `EINTR` policy, [`retry`] and [`retry_io`].

use std::io;

use nix::libc;

/// Whether `e` is `EBADF`: the descriptor number is not open.
pub(crate) fn is_bad_fd(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EBADF)
}

/// `EBADF`: the descriptor number is not open. Made from the errno, so it does not allocate.
pub(crate) fn bad_fd() -> io::Error {
    io::Error::from_raw_os_error(libc::EBADF)
}

/// Whether `e` is `EMSGSIZE`: the datagram is longer than the kernel lets the socket send.
pub(crate) fn is_message_too_long(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EMSGSIZE)
}

/// Whether `e` is `EINPROGRESS`: a non-blocking connect was started, not refused.
pub(crate) fn is_in_progress(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINPROGRESS)
}

/// Whether `e` is `EPROTOTYPE`: the socket connected to is of another type.
pub(crate) fn is_wrong_socket_type(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EPROTOTYPE)
}

/// Makes the call `f` until a signal does not interrupt it (`EINTR`), and returns its result.
#[inline]
pub(super) fn retry<T>(mut f: impl FnMut() -> nix::Result<T>) -> io::Result<T> {
    retry_io(|| f().map_err(io::Error::from))
}

/// The crate's one `EINTR` policy, for calls made through std or tokio as well as through
/// [`retry`]: an interrupted call is made again, since nothing happened and a signal handler
/// that wants the caller to stop has its own way to say so (see `ShutdownHandle`).
#[inline]
pub(crate) fn retry_io<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            done => return done,
        }
    }
}
