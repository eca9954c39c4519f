//! `tests/echo_suites/lifecycle.rs` (see `tests/echo_lifecycle.rs`) against `echo_async`, the tokio echo
//! server: the same command line, so the same process-level tests.
#![cfg(feature = "tokio")]

mod common;
mod procs;

include!("echo_suites/lifecycle.rs");
