//! A parent and its child over a socket pair, with no socket file and no `unsafe` in user code.
//!
//! The parent spawns the child with [`CommandExt::spawn_connected`], which makes a connected
//! pair, hands one end to the child as descriptor 3 and names it in `MSGSOCK_FD`; the child
//! calls [`connection`]. Any other socket (a listener, say) goes to a child with
//! [`CommandExt::pass_socket`], and the child takes it with [`connection`] or the endpoint
//! `fd:3`. On tokio, the child calls `msgsock::tokio::child_connection` (feature `tokio`)
//! instead.
//!
//! # Examples
//!
//! ```no_run
//! use std::process::Command;
//! use msgsock::CommandExt;
//!
//! if std::env::var_os(msgsock::child::FD_VAR).is_some() {
//!     // The child: echo one message.
//!     let mut conn = msgsock::child::connection()?;
//!     let msg = conn.recv()?.unwrap_or_default();
//!     conn.send(&msg)?;
//! } else {
//!     // The parent: spawn ourselves as the child.
//!     let (mut child, mut conn) = Command::new(std::env::current_exe()?).spawn_connected()?;
//!     conn.send(b"hello")?;
//!     assert_eq!(conn.recv()?.as_deref(), Some(&b"hello"[..]));
//!     child.wait()?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use crate::activation::{self, InheritError};
use crate::conn::Connection;
use crate::error::{Error, Result};
use crate::sys;
use crate::unix::UnixStream;

/// The environment variable naming the descriptor a child inherited its socket on.
pub const FD_VAR: &str = "MSGSOCK_FD";

/// The descriptor number [`CommandExt::pass_socket`] gives the child's socket: the first after
/// stdin, stdout and stderr, as systemd's passed sockets start.
pub const CHILD_FD: RawFd = 3;

/// The highest descriptor number [`CommandExt::pass_socket_as`] places a socket at. The
/// parent's copies are moved above it, so that placing one socket never overwrites the source
/// of another in the child.
pub const MAX_CHILD_FD: RawFd = 255;

mod sealed {
    pub trait Sealed {}
    impl Sealed for std::process::Command {}
}

/// Hands sockets to a child process: an extension of [`std::process::Command`].
///
/// The socket reaches only the child this command spawns, never a child that another thread
/// spawns at the same time: the parent's copy stays close-on-exec throughout, and it is
/// `dup2(2)`'d onto the child's descriptor number (which clears close-on-exec there alone) in
/// the forked child, between `fork` and `exec`. (Clearing close-on-exec in the parent for the
/// spawn would leak it to every child started meanwhile; passing it as a stdio descriptor
/// would cost the child its stdin.) This trait is sealed.
pub trait CommandExt: sealed::Sealed {
    /// Spawns the command with one end of a new connected Unix stream pair on descriptor 3 and
    /// `MSGSOCK_FD=3` in its environment, and returns the child and the parent's end.
    ///
    /// The parent keeps no copy of the child's end: when the child exits the parent's `recv`
    /// returns `None`. Spawning the command again fails with an [`Error::Io`] (`EBADF`): the
    /// child's end went to the first child.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `socketpair(2)` or from spawning.
    fn spawn_connected(&mut self) -> Result<(Child, Connection<UnixStream>)>;

    /// Hands `socket` to the child on descriptor 3 and sets `MSGSOCK_FD=3`: the child takes it
    /// with [`connection`] or the endpoint `fd:3`. Any socket will do: connected or listening,
    /// of any family.
    ///
    /// The command holds the parent's copy until it is dropped, and every child it spawns gets
    /// one: drop the command after spawning, or the peer sees no close when the child exits.
    /// A second call replaces the socket.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the descriptor cannot be duplicated.
    fn pass_socket(&mut self, socket: impl Into<OwnedFd>) -> Result<&mut Command>;

    /// Hands `socket` to the child on descriptor `child_fd` (3 to [`MAX_CHILD_FD`]), without
    /// setting any variable: for protocols of their own, such as systemd's `LISTEN_FDS`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with `InvalidInput` for a `child_fd` out of range, or if the descriptor
    /// cannot be duplicated.
    fn pass_socket_as(
        &mut self,
        socket: impl Into<OwnedFd>,
        child_fd: RawFd,
    ) -> Result<&mut Command>;
}

impl CommandExt for Command {
    fn spawn_connected(&mut self) -> Result<(Child, Connection<UnixStream>)> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let theirs = above_child_fds(theirs.into())?;
        // The forked child reads the number from here; it is -1 once the parent closed its
        // copy, so a later spawn fails instead of passing a number since reused.
        let source = Arc::new(AtomicI32::new(theirs.as_raw_fd()));
        let seen = Arc::clone(&source);
        place(self, CHILD_FD, move || seen.load(Ordering::SeqCst));
        self.env(FD_VAR, CHILD_FD.to_string());
        let spawned = self.spawn();
        source.store(-1, Ordering::SeqCst);
        drop(theirs);
        Ok((spawned?, Connection::new(UnixStream::from(ours))))
    }

    fn pass_socket(&mut self, socket: impl Into<OwnedFd>) -> Result<&mut Command> {
        self.pass_socket_as(socket, CHILD_FD)?;
        Ok(self.env(FD_VAR, CHILD_FD.to_string()))
    }

    fn pass_socket_as(
        &mut self,
        socket: impl Into<OwnedFd>,
        child_fd: RawFd,
    ) -> Result<&mut Command> {
        if !(CHILD_FD..=MAX_CHILD_FD).contains(&child_fd) {
            let why =
                format!("a child's socket goes on descriptor 3 to {MAX_CHILD_FD}, not {child_fd}");
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, why).into());
        }
        let socket = above_child_fds(socket.into())?;
        // The closure owns the parent's copy, so its number stays valid as long as the
        // command can spawn.
        place(self, child_fd, move || socket.as_raw_fd());
        Ok(self)
    }
}

/// A close-on-exec copy of `fd` numbered above every descriptor a child's socket is placed
/// at, so that no placement in the child overwrites another's source (nor std's stdio setup,
/// which runs first, a source below 3).
fn above_child_fds(fd: OwnedFd) -> Result<OwnedFd> {
    Ok(sys::dup_cloexec_from(fd.as_fd(), MAX_CHILD_FD + 1)?)
}

/// Places the descriptor `source()` gives at `child_fd` in the forked child.
#[allow(unsafe_code)]
fn place(cmd: &mut Command, child_fd: RawFd, source: impl Fn() -> RawFd + Send + Sync + 'static) {
    let hook = move || {
        let fd = source();
        if fd < 0 {
            return Err(sys::bad_fd());
        }
        // `source` is above MAX_CHILD_FD, so never `child_fd` itself; dup2 also clears
        // close-on-exec on `child_fd`, in this child only.
        debug_assert_ne!(fd, child_fd);
        sys::dup2_raw(fd, child_fd)
    };
    // SAFETY: the hook runs in the forked child before exec, where only async-signal-safe
    // calls are allowed: it loads an atomic (or reads an integer its closure owns) and calls
    // dup2(2), with no allocation (an io::Error from an errno does not allocate) and no lock.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// The socket this process inherited from its parent: the descriptor `MSGSOCK_FD` names
/// (set by [`CommandExt::spawn_connected`] or [`CommandExt::pass_socket`]), as a message
/// connection. `MSGSOCK_FD` is removed from the environment, even on error, so that a child
/// of ours does not look for a socket that is not there.
///
/// A stream socket gives a framed connection, a datagram socket a datagram connection; the
/// descriptor becomes close-on-exec, and blocking if the parent left it non-blocking. Call it early in `main`, before starting threads:
/// removing an environment variable is not safe while another thread calls C's `getenv(3)`.
///
/// # Errors
///
/// [`Error::Inherit`] with [`InheritError::MissingVar`] when `MSGSOCK_FD` is not set,
/// [`InheritError::InvalidVar`] when it is not a descriptor number,
/// [`InheritError::NotOpen`], [`InheritError::NotASocket`], [`InheritError::NotInherited`] or
/// [`InheritError::AlreadyTaken`] for a descriptor that is not an inherited socket, and
/// [`InheritError::Listening`] for a listening one (bind `fd:N` instead) and
/// [`InheritError::NotConnected`] for one with no peer.
pub fn connection() -> Result<crate::AnyConnection> {
    let value = activation::take_var(FD_VAR).ok_or(InheritError::MissingVar { var: FD_VAR })?;
    let fd: RawFd = activation::parse_number(FD_VAR, &value, "expected a descriptor number")
        .map_err(Error::Inherit)?;
    activation::connect(&crate::Endpoint::Fd(fd))
}
