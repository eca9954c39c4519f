//! `tests/echo_suites/liveness.rs` (see `tests/liveness.rs`) against `echo_async`, the tokio echo
//! server: the same command line, so the same process-level tests.
#![cfg(feature = "tokio")]

mod common;
mod echo_process;
mod procs;

include!("echo_suites/liveness.rs");
