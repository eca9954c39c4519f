//! Liveness: a slow or stalled peer never delays the other peers of the same server, and a
//! server can drop a silent peer with a read timeout.
//!
//! Stalled peers are opened first and left stalled; then an active client makes its round trips
//! and must finish. The only failure guard is a generous read timeout on the active client:
//! nothing here measures how long anything took. Afterwards each stalled peer completes its
//! message and gets it back, proving the server kept it rather than dropping it.
//!
//! Run against the blocking `echo`; `liveness_async` runs the same suite against `echo_async`.

mod common;
mod echo_process;
mod procs;

include!("echo_suites/liveness.rs");
