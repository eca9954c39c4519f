//! The open-file limit: 10,000 connections need 10,000 descriptors in each process.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Descriptors beyond the connections: std streams, the runtime's epoll and wakers, the
/// listener, `/proc` files, the child's pipes.
const MARGIN: u64 = 256;

/// Raises the soft `RLIMIT_NOFILE` of this process (and so of the children it starts from now
/// on) to `connections` plus a margin.
///
/// # Errors
///
/// A message naming the need and the hard limit when the hard limit is too low, or the failing
/// call.
pub(crate) fn raise_nofile(connections: usize) -> Result<(), String> {
    let need = connections as u64 + MARGIN;
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit(RLIMIT_NOFILE): {e}"))?;
    if soft >= need {
        return Ok(());
    }
    if hard < need {
        return Err(format!(
            "{connections} connections need {need} open files per process, but the hard \
             RLIMIT_NOFILE is {hard}: raise it (ulimit -Hn) or pass --connections {}",
            hard.saturating_sub(MARGIN)
        ));
    }
    setrlimit(Resource::RLIMIT_NOFILE, need, hard)
        .map_err(|e| format!("setrlimit(RLIMIT_NOFILE, {need}, {hard}): {e}"))
}
