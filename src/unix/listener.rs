use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::{SocketAddr, UnixListener as StdUnixListener};
use std::path::{Path, PathBuf};

use nix::sys::socket::SockType;
use tempfile::TempDir;

use crate::conn::Connection;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::shutdown::{ShutdownHandle, Stopper};
use crate::sys;
use crate::unix::socket_file::{private_temp_dir, SocketFile};
use crate::unix::UnixStream;

/// The socket file's default permission bits: owner read and write only.
pub const DEFAULT_SOCKET_MODE: u32 = 0o600;

/// A listening Unix-domain socket bound to a file, which it removes when dropped.
///
/// Binding follows the socket-file rules of the crate docs: a stale socket is replaced, a live
/// one is [`Error::AddrInUse`], anything that is not a socket is never touched, and the file is
/// created owner-only (mode 0600) unless [`bind_with_mode`](Self::bind_with_mode) asks otherwise.
///
/// # Examples
///
/// ```
/// use msgsock::{UnixListener, UnixStream, Connection};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("app.sock");
/// let listener = UnixListener::bind(&path)?;
/// # let client = std::thread::spawn({ let path = path.clone(); move || -> msgsock::Result<()> {
/// #     Connection::new(UnixStream::connect(&path)?).send(b"hi") }});
/// for conn in listener.incoming().take(1) {
///     let mut conn = conn?;
///     assert_eq!(conn.recv()?.as_deref(), Some(&b"hi"[..]));
/// }
/// # client.join().unwrap()?;
/// drop(listener);
/// assert!(!path.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct UnixListener {
    // Field order is drop order: remove the file, close the socket, then remove a private dir.
    /// `None` for an inherited socket (`fd:N`, `systemd:`): no file of ours to remove.
    file: Option<SocketFile>,
    inner: StdUnixListener,
    dir: Option<TempDir>,
    stopper: Stopper,
    /// An inherited socket's own path (`getsockname(2)`), empty if it has none.
    inherited_path: PathBuf,
}

impl UnixListener {
    /// Binds a listening socket at `path` with mode 0600 (`bind(2)`, `listen(2)`).
    ///
    /// # Errors
    ///
    /// - [`Error::PathTooLong`] before any system call if `path` does not fit in `sun_path`.
    /// - [`Error::AddrInUse`] if a live server listens at `path` or holds its lock.
    /// - [`Error::NotASocket`] if `path` is a regular file, directory, symlink or other non-socket.
    /// - [`Error::NotOwner`] for a stale socket owned by another user.
    /// - [`Error::ForeignLockFile`] if `PATH.lock` exists and is not this user's own msgsock
    ///   lock file (a regular file it owns, with one link); it is left as it is.
    /// - [`Error::Path`] for other I/O errors, naming `path` as given, with the cause: `NotFound`
    ///   for a missing directory, `InvalidInput` for a path ending in `/`.
    ///
    /// # Platform-specific behavior
    ///
    /// The socket is bound at `path` itself, so `path` is its address. The file's mode is set
    /// before `bind(2)` on Linux, which takes it from the socket: it never has wider permissions
    /// than asked for. Elsewhere the umask decides it at `bind(2)`.
    pub fn bind<P: AsRef<Path>>(path: P) -> Result<UnixListener> {
        UnixListener::bind_with_mode(path, DEFAULT_SOCKET_MODE)
    }

    /// Binds at `path` with permission bits `mode` (for example `0o660` to let a group connect).
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind), plus [`Error::ModeMismatch`] if the file does not have `mode`
    /// after bind. A mode the umask narrows is widened before the socket listens (on Linux).
    pub fn bind_with_mode<P: AsRef<Path>>(path: P, mode: u32) -> Result<UnixListener> {
        let (socket, file) = SocketFile::bind(path.as_ref(), mode, SockType::Stream)?;
        UnixListener::listen(socket, file, None)
    }

    /// Binds at a fresh path in a new private temporary directory (mode 0700, in
    /// [`std::env::temp_dir`]); the directory is removed when the listener is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the directory cannot be made; [`Error::PathTooLong`] if the temporary
    /// directory's path is too long for a socket.
    pub fn bind_temp() -> Result<UnixListener> {
        let dir = private_temp_dir()?;
        let (socket, file) = SocketFile::bind_private(
            &dir.path().join("sock"),
            DEFAULT_SOCKET_MODE,
            SockType::Stream,
        )?;
        UnixListener::listen(socket, file, Some(dir))
    }

    /// `listen(2)` on a socket bound at `file`, which has its final mode: nobody could connect
    /// before this.
    fn listen(socket: OwnedFd, file: SocketFile, dir: Option<TempDir>) -> Result<UnixListener> {
        // On an error `file` drops and removes the socket file.
        sys::listen(socket.as_fd()).map_err(|e| Error::path(file.path(), e))?;
        Ok(UnixListener {
            file: Some(file),
            inner: StdUnixListener::from(socket),
            dir,
            stopper: Stopper::default(),
            inherited_path: PathBuf::new(),
        })
    }

    /// An inherited listening socket, adopted as it is: no socket file is made or removed.
    pub(crate) fn adopted(inner: StdUnixListener) -> UnixListener {
        let addr = inner.local_addr().ok();
        let path = addr.and_then(|a| a.as_pathname().map(Path::to_path_buf));
        UnixListener {
            file: None,
            inner,
            dir: None,
            stopper: Stopper::default(),
            inherited_path: path.unwrap_or_default(),
        }
    }

    /// Accepts a connection (`accept(2)`), returning it and the peer's address.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `accept(2)`, for example `EMFILE` when out of file descriptors;
    /// [`Error::Shutdown`] once a [`ShutdownHandle`] of this listener was used.
    pub fn accept(&self) -> Result<(Connection<UnixStream>, SocketAddr)> {
        let (stream, addr) = self.accept_stream()?;
        Ok((Connection::new(stream), addr))
    }

    /// `accept(2)` alone, for callers that wrap the stream themselves.
    pub(crate) fn accept_stream(&self) -> Result<(UnixStream, SocketAddr)> {
        let (stream, addr) = self
            .stopper
            .accept(self.inner.as_fd(), || self.inner.accept())?;
        // Where accepted sockets inherit the listener's mode, undo the one a handle set.
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        stream.set_nonblocking(false)?;
        Ok((UnixStream(stream), addr))
    }

    /// A handle that stops this listener from another thread: see [`ShutdownHandle`].
    ///
    /// The first call makes a private socket pair and puts the socket into non-blocking mode
    /// (`accept` still waits unless [`set_nonblocking`](Self::set_nonblocking) asked otherwise,
    /// now in `poll(2)`); take the handle before another thread starts accepting, since an
    /// `accept` already blocked then is not woken by it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the socket pair cannot be made or the mode set.
    pub fn shutdown_handle(&self) -> Result<ShutdownHandle> {
        self.stopper.handle(|on| self.inner.set_nonblocking(on))
    }

    /// An iterator over accepted connections, which ends once the listener is shut down with a
    /// [`ShutdownHandle`].
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The path the socket is bound at; for an inherited socket, its own address's path
    /// (`getsockname(2)`), empty if it has none.
    pub fn path(&self) -> &Path {
        match &self.file {
            Some(file) => file.path(),
            None => &self.inherited_path,
        }
    }

    /// The bound endpoint, `unix:PATH`.
    pub fn local_endpoint(&self) -> Endpoint {
        Endpoint::Unix(self.path().into())
    }

    /// Moves the listener into or out of non-blocking mode: `accept` then returns `WouldBlock`
    /// instead of waiting.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `fcntl(2)`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        self.stopper
            .set_nonblocking(nonblocking, |on| self.inner.set_nonblocking(on))
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("fd", &self.inner.as_raw_fd())
            .field("path", &self.path())
            .finish()
    }
}

impl AsFd for UnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl From<UnixListener> for OwnedFd {
    /// Hands the socket over; its file (and private directory) then stay in place, since the
    /// socket still listens there.
    fn from(listener: UnixListener) -> OwnedFd {
        let UnixListener {
            mut file,
            inner,
            dir,
            stopper,
            ..
        } = listener;
        stopper.release(|on| inner.set_nonblocking(on));
        if let Some(file) = file.as_mut() {
            file.keep();
        }
        if let Some(dir) = dir {
            let _ = dir.keep();
        }
        inner.into()
    }
}

/// An iterator over a [`UnixListener`]'s connections, from [`UnixListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for Incoming<'_> {
    type Item = Result<Connection<UnixStream>>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.listener.accept() {
            Err(Error::Shutdown) => None,
            accepted => Some(accepted.map(|(c, _)| c)),
        }
    }
}

impl<'a> IntoIterator for &'a UnixListener {
    type Item = Result<Connection<UnixStream>>;
    type IntoIter = Incoming<'a>;

    fn into_iter(self) -> Incoming<'a> {
        self.incoming()
    }
}
