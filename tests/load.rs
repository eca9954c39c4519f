//! No data loss under load: many concurrent clients of a real `echo` server process, every
//! message checksummed and compared byte for byte with what was sent, in order.
//!
//! The message contents come from a seed printed at the start (set `MSGSOCK_TEST_SEED` to repeat
//! a run). Counts are bounded so the whole file runs in seconds, even in a debug build on two
//! cores.
//!
//! Run against the blocking `echo`; `load_async` runs the same suite against `echo_async`.

mod echo_process;
mod procs;

include!("echo_suites/load.rs");
