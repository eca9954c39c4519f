use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{SocketAddr, UnixListener as StdUnixListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tempfile::TempDir;

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::shutdown::{ShutdownHandle, Stopper};
use crate::sys::{self, SocketType};
use crate::unix::abstract_name;
use crate::unix::bound::Bound;
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
/// The file belongs to the socket, not to one handle: [`try_clone`](Self::try_clone)s share it,
/// and the last of them to be dropped removes it. A listener made from a descriptor
/// (`From<OwnedFd>`, `FromRawFd`, `From<std::os::unix::net::UnixListener>`) has no file of ours
/// and removes nothing; one handed over as a descriptor leaves its file in place.
///
/// As std's, it knows nothing of framing: [`accept`](Self::accept) and
/// [`incoming`](Self::incoming) give [`UnixStream`]s, which [`Connection::new`](crate::Connection::new) wraps to
/// exchange messages ([`UnixTransport`](crate::UnixTransport) and [`AnyListener`](crate::AnyListener)
/// accept message connections directly).
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
/// for stream in listener.incoming().take(1) {
///     let mut conn = Connection::new(stream?);
///     assert_eq!(conn.recv()?.as_deref(), Some(&b"hi"[..]));
/// }
/// # client.join().unwrap()?;
/// drop(listener);
/// assert!(!path.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct UnixListener {
    // Field order is drop order: the last handle removes the files, then the socket closes.
    bound: Bound,
    inner: StdUnixListener,
    path: PathBuf,
    // Shared by clones, as the socket's O_NONBLOCK is: a handle stops them all.
    stopper: Arc<Stopper>,
    // The only uid `accept` hands out connections from (abstract names, which have no mode).
    only_uid: Option<u32>,
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
    ///   lock file (a regular file it owns, with one link, that starts with msgsock's marker;
    ///   an empty file is the user's); it is left as it is.
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
    /// after bind, and [`Error::Path`] with `InvalidInput`, before anything is made, for a
    /// `mode` with bits beyond the permission bits (`0o777`). A mode the umask narrows is widened before the socket listens (on Linux).
    pub fn bind_with_mode<P: AsRef<Path>>(path: P, mode: u32) -> Result<UnixListener> {
        let (socket, file) = SocketFile::bind(path.as_ref(), mode, SocketType::Stream)?;
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
            SocketType::Stream,
        )?;
        UnixListener::listen(socket, file, Some(dir))
    }

    /// Binds a listening socket to the abstract name `name` (Linux's abstract namespace:
    /// `sun_path` starts with a 0 byte), the endpoint `unix:@NAME`. No file is made or removed.
    ///
    /// An abstract socket has no file mode, so any process in the network namespace could
    /// connect: this listener therefore admits only peers running as its own effective uid.
    /// [`accept`](Self::accept) checks each connection's `SO_PEERCRED` before handing it out,
    /// closes one from another uid and waits for the next. [`allow_any_uid`](Self::allow_any_uid)
    /// opens it to every local user.
    ///
    /// # Errors
    ///
    /// - [`Error::Endpoint`] with [`AbstractNameTooLong`](crate::ParseEndpointError::AbstractNameTooLong)
    ///   for a name over [`MAX_ABSTRACT_NAME_LEN`](crate::MAX_ABSTRACT_NAME_LEN) bytes, or
    ///   `EmptyPath`/`NulInPath` for an empty one or one with a NUL, before any system call.
    /// - [`Error::AddrInUse`] if another socket has the name.
    /// - [`Error::Bind`] for other errors.
    ///
    /// # Platform-specific behavior
    ///
    /// Linux and Android only; elsewhere [`Error::Io`] with `Unsupported`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use msgsock::{Connection, UnixListener, UnixStream};
    ///
    /// let name = format!("msgsock-doc-{}", std::process::id());
    /// let listener = UnixListener::bind_abstract(&name)?;
    /// let mut client = Connection::new(UnixStream::connect_abstract(&name)?);
    /// let (stream, _) = listener.accept()?; // the same uid: admitted
    /// let mut server = Connection::new(stream);
    /// client.send(b"hi")?;
    /// assert_eq!(server.recv()?.as_deref(), Some(&b"hi"[..]));
    /// assert_eq!(listener.local_endpoint()?.to_string(), format!("unix:@{name}"));
    /// # }
    /// # Ok::<(), msgsock::Error>(())
    /// ```
    pub fn bind_abstract<N: AsRef<[u8]>>(name: N) -> Result<UnixListener> {
        let name = name.as_ref();
        let addr = abstract_name::socket_addr(name)?;
        let inner = StdUnixListener::bind_addr(&addr)
            .map_err(|e| Error::bind(Endpoint::UnixAbstract(name.into()), e))?;
        Ok(UnixListener {
            only_uid: Some(sys::euid()),
            ..UnixListener::from(inner)
        })
    }

    /// Lets [`accept`](Self::accept) hand out connections from every uid, not only this
    /// process's own: the explicit choice to open an abstract listener to all local users (who
    /// can then tell apart with [`UnixStream::peer_cred`]). A listener bound to a file already
    /// accepts all whom its mode lets in, so this changes nothing there.
    pub fn allow_any_uid(mut self) -> UnixListener {
        self.only_uid = None;
        self
    }

    /// Admits only this process's own effective uid, as an abstract listener does.
    pub(crate) fn only_own_uid(mut self) -> UnixListener {
        self.only_uid = Some(sys::euid());
        self
    }

    /// `listen(2)` on a socket bound at `file`, which has its final mode: nobody could connect
    /// before this. Any connection-oriented type: the seqpacket listener is one of these too.
    pub(crate) fn listen(
        socket: OwnedFd,
        file: SocketFile,
        dir: Option<TempDir>,
    ) -> Result<UnixListener> {
        // On an error `file` drops and removes the socket file.
        sys::listen(socket.as_fd()).map_err(|e| Error::path(file.path(), e))?;
        Ok(UnixListener {
            path: file.path().into(),
            bound: Bound::new(file, dir),
            inner: StdUnixListener::from(socket),
            stopper: Arc::default(),
            only_uid: None,
        })
    }

    /// Accepts a connection (`accept(2)`), returning its stream and the peer's address; wrap
    /// the stream in a [`Connection`](crate::Connection) to exchange messages. The socket is
    /// blocking and never raises `SIGPIPE` (on Apple targets, `SO_NOSIGPIPE` is set on it).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `accept(2)`, for example `EMFILE` when out of file descriptors;
    /// [`Error::Shutdown`] once a [`ShutdownHandle`] of this listener was used.
    ///
    /// On a listener from [`bind_abstract`](Self::bind_abstract), a peer of another uid is
    /// closed unseen and `accept` goes on with the next.
    pub fn accept(&self) -> Result<(UnixStream, SocketAddr)> {
        let (stream, addr) = loop {
            let (stream, addr) = self
                .stopper
                .accept(self.inner.as_fd(), || self.inner.accept())?;
            if self.admits(&stream) {
                break (stream, addr);
            }
            // Dropping `stream` closes it: the peer reads end of file.
        };
        // Where accepted sockets inherit the listener's mode, undo the one a handle set.
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        stream.set_nonblocking(false)?;
        // std's accept made this socket: on Apple targets it could still raise SIGPIPE.
        sys::no_sigpipe(stream.as_fd())?;
        Ok((UnixStream::from(stream), addr))
    }

    /// Whether a just-accepted connection may be handed out: any, unless only one uid is; then
    /// the peer's `SO_PEERCRED` uid must be that one (a peer whose credentials cannot be read is
    /// refused too). Every driver that accepts on this socket asks this, the async one too.
    pub(crate) fn admits(&self, stream: &impl AsFd) -> bool {
        abstract_name::admits(self.only_uid, stream.as_fd())
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

    /// An iterator over accepted streams, as [`accept`](Self::accept) gives them without the
    /// peer's address; it ends once the listener is shut down with a [`ShutdownHandle`].
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The path the socket is bound at, as given to `bind`. For a listener made from a
    /// descriptor, the path `getsockname(2)` reported then: empty if it has none (an unnamed or
    /// abstract socket).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bound address (`getsockname(2)`).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `getsockname(2)`.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.inner.local_addr()?)
    }

    /// The bound endpoint, `unix:PATH`, or `unix:@NAME` for an abstract name.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with `NotFound` for a listener made from a descriptor with neither.
    pub fn local_endpoint(&self) -> Result<Endpoint> {
        if self.path.as_os_str().is_empty() {
            if let Some(name) = abstract_name::name_of(&self.inner.local_addr()?) {
                return Ok(Endpoint::UnixAbstract(name.into()));
            }
        }
        self.local_path().map(Endpoint::Unix)
    }

    /// [`path`](Self::path), or `NotFound` if it is empty.
    pub(crate) fn local_path(&self) -> Result<PathBuf> {
        if self.path.as_os_str().is_empty() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "socket has no path").into());
        }
        Ok(self.path.clone())
    }

    /// Moves the listener into or out of non-blocking mode: `accept` then returns `WouldBlock`
    /// instead of waiting. Clones share the mode, as they share `O_NONBLOCK`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `fcntl(2)`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        self.stopper
            .set_nonblocking(nonblocking, |on| self.inner.set_nonblocking(on))
    }

    /// A second handle to the same listening socket (`dup(2)`): connections go to whichever
    /// handle accepts first. Clones share the socket file (removed with the last of them, never
    /// twice), the non-blocking mode and the [`ShutdownHandle`]: a handle taken from any of them
    /// stops `accept` on all.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `dup(2)`, for example `EMFILE`.
    pub fn try_clone(&self) -> Result<UnixListener> {
        Ok(UnixListener {
            bound: self.bound.clone(),
            inner: self.inner.try_clone()?,
            path: self.path.clone(),
            stopper: Arc::clone(&self.stopper),
            only_uid: self.only_uid,
        })
    }

    /// Takes the pending socket error (`SO_ERROR`), clearing it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `getsockopt(2)`.
    pub fn take_error(&self) -> Result<Option<io::Error>> {
        Ok(self.inner.take_error()?)
    }

    /// The wrapped std listener.
    pub fn get_ref(&self) -> &StdUnixListener {
        &self.inner
    }

    /// The wrapped std listener, in the blocking mode last asked for. Its socket file (and
    /// private directory) stay in place for good, since the socket still listens there.
    pub fn into_inner(self) -> StdUnixListener {
        let UnixListener {
            bound,
            inner,
            stopper,
            ..
        } = self;
        // The last clone gives the socket back in the mode its user asked for.
        if let Some(stopper) = Arc::into_inner(stopper) {
            stopper.release(|on| inner.set_nonblocking(on));
        }
        bound.keep();
        inner
    }
}

impl From<StdUnixListener> for UnixListener {
    /// Wraps a std listener as it is. There is no socket file of ours to remove: a file it is
    /// bound at stays in place on drop. [`path`](UnixListener::path) is what `getsockname(2)`
    /// reports now. It admits every uid: the descriptor's owner chose who may connect.
    fn from(inner: StdUnixListener) -> UnixListener {
        let path = inner
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(PathBuf::from))
            .unwrap_or_default();
        UnixListener {
            bound: Bound::default(),
            inner,
            path,
            stopper: Arc::default(),
            only_uid: None,
        }
    }
}

impl From<OwnedFd> for UnixListener {
    /// Adopts a listening Unix stream socket, as `From<std::os::unix::net::UnixListener>` does:
    /// no socket file is removed on drop.
    fn from(fd: OwnedFd) -> UnixListener {
        UnixListener::from(StdUnixListener::from(fd))
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As std's: the fd and the local address.
        f.debug_struct("UnixListener")
            .field("fd", &self.inner.as_raw_fd())
            .field("local", &self.inner.local_addr().ok())
            .finish()
    }
}

impl AsFd for UnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl From<UnixListener> for OwnedFd {
    /// Hands the socket over; its file (and private directory) then stay in place, since the
    /// socket still listens there, whichever clone is dropped last.
    fn from(listener: UnixListener) -> OwnedFd {
        listener.into_inner().into()
    }
}

crate::fd::raw_fd_traits!(UnixListener);

/// An iterator over a [`UnixListener`]'s accepted streams, from [`UnixListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for Incoming<'_> {
    type Item = Result<UnixStream>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.listener.accept() {
            Err(Error::Shutdown) => None,
            accepted => Some(accepted.map(|(s, _)| s)),
        }
    }
}

impl<'a> IntoIterator for &'a UnixListener {
    type Item = Result<UnixStream>;
    type IntoIter = Incoming<'a>;

    fn into_iter(self) -> Incoming<'a> {
        self.incoming()
    }
}
