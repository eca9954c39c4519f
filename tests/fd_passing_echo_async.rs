//! `tests/echo_suites/fd_passing.rs` (see `tests/fd_passing_echo.rs`) against `echo_async`, the
//! tokio echo server: the same command line, so the same process-level tests.
#![cfg(feature = "tokio")]

mod common;
// Each test file uses its own subset of these helpers.
#[allow(dead_code)]
mod echo_process;
mod procs;

include!("echo_suites/fd_passing.rs");
