//! The echo example's server features, run as real processes: datagram endpoints, the idle
//! timeout, `--same-uid`, `--authkey-file` (against Python's `multiprocessing.connection`) and the
//! accept backoff when descriptors run out.
//!
//! The ready signals are the `listening on` line and the server's stderr lines. Every wait is
//! bounded by `PATIENCE`, a failure guard only; the one fixed duration is the length of the
//! descriptor shortage in the backoff test, which is the fault being applied, not a wait for it.
//!
//! Run against the blocking `echo`; `echo_features_async` runs the same suite against `echo_async`.

mod common;
mod procs;

include!("echo_suites/features.rs");
