//! `tests/echo_suites/load.rs` (see `tests/load.rs`) against `echo_async`, the tokio echo
//! server: the same command line, so the same process-level tests.
#![cfg(feature = "tokio")]

mod echo_process;
mod procs;

include!("echo_suites/load.rs");
