//! Stopping a listener from another thread: [`ShutdownHandle`], and the accept loop that honours
//! it.
//!
//! A blocked `accept(2)` cannot be woken portably except by a connection, and a connection made
//! through the socket's path or port may reach someone else (a successor bound at the same path).
//! So the first handle puts the listener into non-blocking mode and pairs it with a private
//! socket pair: `accept` then waits in `poll(2)` on both, and the handle writes one byte to wake
//! it. A listener that never gave out a handle accepts exactly as before.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::sys;

/// Stops a listener from another thread, for example a signal-handling one.
///
/// From [`UnixListener::shutdown_handle`](crate::UnixListener::shutdown_handle),
/// [`TcpListener::shutdown_handle`](crate::TcpListener::shutdown_handle) or
/// [`AnyListener::shutdown_handle`](crate::AnyListener::shutdown_handle). After
/// [`shutdown`](Self::shutdown), every `accept` of that listener, blocked or yet to come, returns
/// [`Error::Shutdown`] at once, and `incoming()` ends. The wake-up goes through a private socket
/// pair, never through the listener's path or port. Clones share one state; the handle may
/// outlive its listener.
///
/// # Examples
///
/// ```
/// use std::thread;
///
/// let listener = msgsock::bind(&"tcp:127.0.0.1:0".parse()?)?;
/// let handle = listener.shutdown_handle()?;
/// let server = thread::spawn(move || {
///     for conn in listener.incoming() {
///         let _ = conn; // serve it
///     }
///     // incoming() ended: dropping the listener here removes a Unix socket's files.
/// });
/// handle.shutdown(); // from a signal thread, say
/// server.join().unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    state: Arc<State>,
}

impl ShutdownHandle {
    /// Stops the listener: its `accept` returns [`Error::Shutdown`] from now on, and one blocked
    /// in another thread returns promptly. Calling it again does nothing.
    pub fn shutdown(&self) {
        if !self.state.stopped.swap(true, Ordering::SeqCst) {
            // One byte keeps the reading end readable forever (nobody reads it), which wakes
            // every waiter, now and later. The pair is non-blocking and holds far more than one
            // byte, so this never waits and cannot fail short of a closed socket.
            let _ = (&self.state.wake_tx).write(&[1]);
        }
    }

    /// Whether [`shutdown`](Self::shutdown) has been called.
    pub fn is_shutdown(&self) -> bool {
        self.state.stopped.load(Ordering::SeqCst)
    }
}

#[derive(Debug)]
struct State {
    stopped: AtomicBool,
    wake_tx: StdUnixStream,
    wake_rx: StdUnixStream,
}

/// A listener's side of its shutdown handles: nothing until the first handle is asked for.
#[derive(Debug, Default)]
pub(crate) struct Stopper {
    state: OnceLock<Arc<State>>,
    /// The mode the caller asked for with `set_nonblocking`, once the socket itself is always
    /// non-blocking.
    nonblocking: AtomicBool,
}

impl Stopper {
    /// A handle, made on the first call, which puts the listener into non-blocking mode with
    /// `set_nonblocking`; accepts already blocked at that moment are not woken by it.
    pub(crate) fn handle(
        &self,
        set_nonblocking: impl FnOnce(bool) -> io::Result<()>,
    ) -> Result<ShutdownHandle> {
        if let Some(state) = self.state.get() {
            return Ok(ShutdownHandle {
                state: Arc::clone(state),
            });
        }
        let (wake_tx, wake_rx) = StdUnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        let fresh = Arc::new(State {
            stopped: AtomicBool::new(false),
            wake_tx,
            wake_rx,
        });
        // Published before the mode changes, so that no accept sees a non-blocking socket
        // without knowing to wait in poll(2); a racing first call's pair is simply dropped.
        let state = Arc::clone(self.state.get_or_init(|| fresh));
        set_nonblocking(true)?;
        Ok(ShutdownHandle { state })
    }

    /// Records the caller's mode; the socket's own mode changes only while there is no handle.
    pub(crate) fn set_nonblocking(
        &self,
        on: bool,
        set_nonblocking: impl FnOnce(bool) -> io::Result<()>,
    ) -> Result<()> {
        self.nonblocking.store(on, Ordering::SeqCst);
        if self.state.get().is_none() {
            set_nonblocking(on)?;
        }
        Ok(())
    }

    /// Puts back the caller's mode when the socket leaves msgsock's hands.
    pub(crate) fn release(&self, set_nonblocking: impl FnOnce(bool) -> io::Result<()>) {
        if self.state.get().is_some() {
            let _ = set_nonblocking(self.nonblocking.load(Ordering::SeqCst));
        }
    }

    /// Runs `accept` as the caller's mode asks, until a connection, an error, or shutdown.
    ///
    /// Without a handle this is `accept` alone. With one, `accept` runs on the non-blocking
    /// socket first (a waiting connection costs nothing more), and only on `WouldBlock` does it
    /// wait in `poll(2)` for the listener or the wake-up.
    pub(crate) fn accept<T>(
        &self,
        listener: BorrowedFd<'_>,
        mut accept: impl FnMut() -> io::Result<T>,
    ) -> Result<T> {
        let Some(state) = self.state.get() else {
            return Ok(accept()?);
        };
        loop {
            if state.stopped.load(Ordering::SeqCst) {
                return Err(Error::Shutdown);
            }
            match sys::retry_io(&mut accept) {
                Ok(accepted) => return Ok(accepted),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        && !self.nonblocking.load(Ordering::SeqCst) =>
                {
                    sys::wait_readable(listener, state.wake_rx.as_fd())?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
