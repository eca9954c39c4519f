//! Every system call std does not offer, in one place. The public types hold policy; this holds
//! the calls.
//!
//! One `EINTR` policy for all of them, in [`retry`]: a call a signal interrupted is made again
//! (with the time left, where the call waits for a time), so a signal the process handles is
//! never an error and never cuts a wait short. std's `accept` and `connect` retry the same way;
//! its `read` and `write` do not, which is why a blocking read of std's sockets is retried by
//! its caller.

mod addr;
mod errno;
mod fd;
mod fs;
mod msg;
mod socket;

pub(crate) use self::addr::{Destination, SenderAddr, UnixAddr};
use self::errno::retry;
pub(crate) use self::errno::{
    bad_fd, is_bad_fd, is_in_progress, is_message_too_long, is_wrong_socket_type, retry_io,
};
pub(crate) use self::fd::{
    dup2_raw, dup_cloexec_from, is_cloexec, set_cloexec, wait_readable, wait_writable,
};
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use self::fs::chmod_opened;
pub(crate) use self::fs::{
    euid, fchmod, is_socket, link_at, open_at, open_dir, stat, stat_at, unlink_at, FileInfo,
    FileKind, OpenFlags,
};
pub(crate) use self::msg::{
    recv_bufs, recv_bufs_with_fds, recv_datagram, send, send_to_nowait, send_vectored,
    send_with_fds, set_timestamp, Control, ReadBufs,
};
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use self::socket::peer_cred;
pub(crate) use self::socket::{
    bind_unix, bind_unix_addr, connect_unix, connect_unix_addr, is_connected, is_listening,
    is_nonblocking, listen, no_sigpipe, send_buffer_len, set_blocking, socket_family, socket_type,
    unix_connect_timeout, unix_pair, unix_socket, without_sigpipe, SocketType,
};
