//! The error numbers policy code tells apart, as predicates on `io::Error`: callers compare no
//! `libc` constants.

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
