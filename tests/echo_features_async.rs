//! `tests/echo_suites/features.rs` (see `tests/echo_features.rs`) against `echo_async`, the tokio echo
//! server: the same command line, so the same process-level tests.
#![cfg(feature = "tokio")]

mod common;
mod procs;

include!("echo_suites/features.rs");
