//! `tests/echo_suites/examples.rs` (see `tests/examples.rs`) against `echo_async`, the tokio echo
//! server: the same command line, so the same process-level tests.
#![cfg(feature = "tokio")]

mod procs;

include!("echo_suites/examples.rs");
