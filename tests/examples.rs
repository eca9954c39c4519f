//! The examples, run as real processes (see `procs` for how their binaries are found: build
//! them first with `cargo build --examples`, or run a plain `cargo test`).
//!
//! Run against the blocking `echo`; `examples_async` runs the same suite against `echo_async`.

mod procs;

include!("echo_suites/examples.rs");
