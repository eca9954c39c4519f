//! The echo example's lifecycle, run as a real process: SIGINT/SIGTERM stop it promptly on every
//! transport whatever it is doing, its own files go and a successor's stay, a datagram client that
//! stops reading delays no one, and `--max-connections` bounds what it serves at once.
//!
//! Ready signals are the `listening on` line and stderr lines. `EXIT_BOUND` is a generous upper
//! bound on an exit that takes milliseconds: it proves "does not hang", nothing finer.
//!
//! Run against the blocking `echo`; `echo_lifecycle_async` runs the same suite against `echo_async`.

mod common;
mod procs;

include!("echo_suites/lifecycle.rs");
