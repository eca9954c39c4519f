//! The `echo` example returns every message with the descriptors that came with it, on `unix:`,
//! `unixgram:` and `unixpacket:` endpoints, to a peer in Rust and to one in Python
//! (`socket.send_fds` / `recv_fds` and plain `struct` framing, no msgsock). A returned descriptor
//! must be the same open file: the same `(dev, ino)`, and bytes written through it come out of
//! the pipe it was sent from.
//!
//! Run against the blocking `echo`; `fd_passing_echo_async` runs the same suite against
//! `echo_async`.

mod common;
// Each test file uses its own subset of these helpers.
#[allow(dead_code)]
mod echo_process;
mod procs;

include!("echo_suites/fd_passing.rs");
