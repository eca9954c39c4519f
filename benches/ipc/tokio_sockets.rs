//! The async side's machinery (feature `tokio`): the process's one tokio runtime, and
//! [`TokioStream`], what the async implementations need of tokio's stream types.
//!
//! The runtime is a current-thread one with I/O and timers enabled, one per process: for one
//! connection at a time it is the fastest shape tokio has (no cross-thread wake-ups, no work
//! stealing), and it is the same for every async implementation, so none is favoured. Each
//! case runs inside it as one `block_on` of the whole pattern, never one per call.

use std::future::Future;
use std::io;
use std::net::TcpStream as StdTcpStream;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::OnceLock;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{tcp, unix, TcpStream, UnixStream};
use tokio::runtime::{Builder, Runtime};

use crate::transports::IO_TIMEOUT;

/// A tokio stream socket, as the async implementations use it: msgsock's `AsyncConnection`
/// runs over it, tokio-util's `Framed` too, and its owned halves carry a `FramedRead` and a
/// `FramedWrite`.
pub(crate) trait TokioStream:
    msgsock::tokio::AsyncStream + AsyncRead + AsyncWrite + Sized
{
    type ReadHalf: AsyncRead + Unpin;
    type WriteHalf: AsyncWrite + Unpin;
    /// The connected socket `fd`, made non-blocking and registered with the current runtime.
    fn from_fd(fd: OwnedFd) -> io::Result<Self>;
    /// tokio's `into_split`: owned halves, no lock between them.
    fn into_halves(self) -> (Self::ReadHalf, Self::WriteHalf);
}

/// The two tokio stream types, which differ only in names.
macro_rules! tokio_stream {
    ($($ty:ident: $std:ident, $halves:ident;)+) => {$(
        impl TokioStream for $ty {
            type ReadHalf = $halves::OwnedReadHalf;
            type WriteHalf = $halves::OwnedWriteHalf;
            fn from_fd(fd: OwnedFd) -> io::Result<Self> {
                let s = $std::from(fd);
                s.set_nonblocking(true)?;
                $ty::from_std(s)
            }
            fn into_halves(self) -> (Self::ReadHalf, Self::WriteHalf) {
                $ty::into_split(self)
            }
        }
    )+};
}
tokio_stream! {
    UnixStream: StdUnixStream, unix;
    TcpStream: StdTcpStream, tcp;
}

/// This process's runtime, built on first use.
fn runtime() -> io::Result<&'static Runtime> {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = Builder::new_current_thread().enable_all().build()?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// Runs one case's future to its end in this process's runtime, failing it after
/// [`IO_TIMEOUT`], as the blocking sockets' timeouts guard the blocking cases against a stuck
/// peer.
pub(crate) fn run_case<T>(case: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    runtime()?.block_on(async {
        tokio::time::timeout(IO_TIMEOUT, case)
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
    })
}
