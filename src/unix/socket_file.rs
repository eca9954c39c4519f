//! The socket file's life: bound at its path, stale probe, bind lock, exact mode with no window
//! of wider permissions, removal only of our own files.
//!
//! Binding `PATH`:
//! 1. The path must fit in `sun_path` and name a file (no trailing `/`), checked before any
//!    system call.
//! 2. The directory `PATH` is in is opened and kept: every later step and the removal at drop
//!    work in it by name (`openat(2)`, `fstatat(2)`, `unlinkat(2)`), so a `chdir(2)` or a renamed
//!    parent never sends them to other files. (A stored absolute path would follow a rename or
//!    a swapped symlink in a parent to files that are not ours.) Errors name `PATH` as given.
//! 3. An exclusive `flock(2)` on `PATH.lock` serialises servers racing for one path: the loser
//!    gets [`Error::AddrInUse`] at once. The lock file must be this user's own regular file with
//!    one link and msgsock's marker, as `fstat(2)` says of the file opened (never through a
//!    symlink); anything else is [`Error::ForeignLockFile`], and is never written or removed. A
//!    lock file is made under a name of its own and then linked to `PATH.lock`; the one second
//!    link taken away is that making name, left by a maker that died between the two steps.
//! 4. Whatever is at `PATH` is looked at without following a symlink. A socket nobody accepts on
//!    (a non-blocking connect probe is refused) and that this user owns is stale and removed; a
//!    live one (the probe connects, or finds the backlog full) is [`Error::AddrInUse`]; anything
//!    else (file, directory, symlink) is left alone.
//! 5. The socket is bound at `PATH` itself, so `PATH` is its address: what `getsockname(2)` says
//!    and what peers see and reply to. Its mode is set with `fchmod(2)` before `bind(2)`: Linux
//!    creates the file with the socket's mode less the umask (`unix_mknod` in
//!    `net/unix/af_unix.c`), so it never appears with more permissions than asked for. A mode the
//!    umask narrowed is then widened on the file just bound, opened without following a symlink,
//!    before a listener listens. The umask itself is never changed: it is the whole process's.
//! 6. On drop, `PATH` and `PATH.lock` are removed only while they still name the files made here,
//!    by `(dev, ino)`.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::sys::{self, FileInfo, FileKind, OpenFlags, SocketType};

/// The longest socket path `sockaddr_un` holds, without its terminating NUL.
/// Linux: `sun_path[108]` (unix(7)); the BSDs and macOS: `sun_path[104]`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub const MAX_PATH_LEN: usize = 107;
/// The longest socket path `sockaddr_un` holds, without its terminating NUL.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub const MAX_PATH_LEN: usize = 103;

/// What a lock file starts with, so a user's own file of the same name is never taken over.
const LOCK_MAGIC: &[u8] = b"msgsock lock";

/// Checks that `path` fits in `sun_path`.
pub(crate) fn check_len(path: &Path) -> Result<()> {
    let len = path.as_os_str().len();
    if len > MAX_PATH_LEN {
        return Err(Error::PathTooLong {
            path: path.into(),
            len,
            max: MAX_PATH_LEN,
        });
    }
    Ok(())
}

/// A new directory in [`std::env::temp_dir`] that only this user can enter (mode 0700), removed
/// when dropped.
pub(crate) fn private_temp_dir() -> io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("msgsock-")
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir()
}

/// `path`'s directory and file name, as `bind(2)` reads them.
///
/// [`Path::file_name`] ignores a trailing `/` or `/.`, which `bind(2)` does not: `DIR/app.sock/`
/// names a directory, never a socket file, so it is refused rather than bound as `app.sock`.
fn split(path: &Path) -> Result<(&Path, &OsStr)> {
    let last = path.as_os_str().as_bytes().rsplit(|&b| b == b'/').next();
    match path.file_name() {
        Some(name) if last == Some(name.as_bytes()) => {
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            Ok((dir, name))
        }
        _ => Err(Error::path(
            path,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a socket path must end in a file name",
            ),
        )),
    }
}

/// A file's identity: `(dev, ino)`, as same-file compares handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(stat: &FileInfo) -> FileId {
        FileId {
            dev: stat.dev,
            ino: stat.ino,
        }
    }
}

/// An open directory that files are made, checked and removed in by name.
#[derive(Debug)]
struct Dir(OwnedFd);

impl Dir {
    fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// Whether `name` still names the file `id` (without following a symlink).
    fn holds(&self, name: &OsStr, id: FileId) -> bool {
        sys::stat_at(self.fd(), name).is_ok_and(|st| FileId::of(&st) == id)
    }

    /// Removes `name` if it is still the file `id`.
    fn remove_if(&self, name: &OsStr, id: FileId) {
        if self.holds(name, id) {
            let _ = sys::unlink_at(self.fd(), name);
        }
    }
}

/// A bound socket file, removed on drop while it is still ours.
#[derive(Debug)]
pub(crate) struct SocketFile {
    /// As the user gave it: for errors, `path()`, and the address peers see.
    path: PathBuf,
    dir: Arc<Dir>,
    name: OsString,
    id: FileId,
    /// Held for the listener's life: a second server fails fast instead of probing. Dropped
    /// (and removed) after the socket file.
    _lock: Option<LockFile>,
    remove_on_drop: bool,
}

impl SocketFile {
    /// Binds a new Unix socket of type `ty` at `path` with permission bits `mode`, following the
    /// rules above. A stream socket is returned bound, not yet listening.
    pub(crate) fn bind(path: &Path, mode: u32, ty: SocketType) -> Result<(OwnedFd, SocketFile)> {
        SocketFile::bind_in(path, mode, ty, true)
    }

    /// Binds at `path` inside a directory only this user can enter, where no lock or stale
    /// probe is needed.
    pub(crate) fn bind_private(
        path: &Path,
        mode: u32,
        ty: SocketType,
    ) -> Result<(OwnedFd, SocketFile)> {
        SocketFile::bind_in(path, mode, ty, false)
    }

    fn bind_in(
        path: &Path,
        mode: u32,
        ty: SocketType,
        shared: bool,
    ) -> Result<(OwnedFd, SocketFile)> {
        check_len(path)?;
        // Only permission bits mean anything on a socket; others are a caller's mistake (a
        // file type, or set-id bits), refused before anything is made.
        if mode & !0o777 != 0 {
            let why =
                format!("a socket file's mode is permission bits (0o777 at most), not {mode:#o}");
            return Err(Error::path(
                path,
                io::Error::new(io::ErrorKind::InvalidInput, why),
            ));
        }
        let (dir, name) = split(path)?;
        let dir = Arc::new(Dir(sys::open_dir(dir).map_err(|e| Error::path(path, e))?));
        let lock = if shared {
            let lock = LockFile::acquire(&dir, name, path)
                .map_err(|e| foreign_lock_reason(e, &dir, name, path))?;
            clear_stale(&dir, name, path)?;
            Some(lock)
        } else {
            None
        };

        let socket = sys::unix_socket(ty, false)?;
        // The file bind(2) creates takes this mode, less the umask: never more than `mode`.
        sys::fchmod(socket.as_fd(), mode)?;
        sys::bind_unix(socket.as_fd(), path).map_err(|e| bind_error(&dir, name, path, e))?;
        let stat = sys::stat_at(dir.fd(), name).map_err(|e| Error::path(path, e))?;
        if stat.kind != FileKind::Socket || stat.uid != sys::euid() {
            // Replaced between bind(2) and now by someone who may write the directory.
            return Err(Error::unix_in_use(path));
        }
        let file = SocketFile {
            path: path.into(),
            dir,
            name: name.into(),
            id: FileId::of(&stat),
            _lock: lock,
            remove_on_drop: true,
        };
        // On an error `file` drops here and removes the socket file it just made.
        file.set_mode(stat.mode, mode)?;
        Ok((socket, file))
    }

    /// Gives the bound file exactly `mode`, widening what the umask narrowed.
    fn set_mode(&self, actual: u32, mode: u32) -> Result<()> {
        let mismatch = |actual| Error::ModeMismatch {
            path: self.path.clone(),
            expected: mode,
            actual,
        };
        if actual == mode {
            return Ok(());
        }
        if actual & !mode != 0 {
            return Err(mismatch(actual));
        }
        let actual = self.widen(mode).map_err(|e| Error::path(&self.path, e))?;
        if actual == mode {
            Ok(())
        } else {
            Err(mismatch(actual))
        }
    }

    /// Sets `mode` on the file bound here, opened without following a symlink and checked to be
    /// it, so that whatever may have replaced the name is never changed; returns the mode found
    /// afterwards.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn widen(&self, mode: u32) -> io::Result<u32> {
        let flags = OpenFlags::PATH | OpenFlags::NO_FOLLOW;
        let file = sys::open_at(self.dir.fd(), &self.name, flags, 0)?;
        if FileId::of(&sys::stat(file.as_fd())?) != self.id {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the socket file was replaced during bind",
            ));
        }
        sys::chmod_opened(file.as_fd(), mode)?;
        Ok(sys::stat(file.as_fd())?.mode)
    }

    /// Elsewhere a socket file cannot be opened: a narrowed mode stays a mismatch.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn widen(&self, _mode: u32) -> io::Result<u32> {
        Ok(sys::stat_at(self.dir.fd(), &self.name)?.mode)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Leaves the socket file in place when dropped.
    pub(crate) fn keep(&mut self) {
        self.remove_on_drop = false;
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        // A successor may have replaced the file since: only ours is removed.
        if self.remove_on_drop {
            self.dir.remove_if(&self.name, self.id);
        }
    }
}

/// The error for a failed `bind(2)` at `path`: something appeared there since it was looked at
/// (by a server that knows nothing of the lock), or the call failed for its own reasons.
fn bind_error(dir: &Dir, name: &OsStr, path: &Path, e: io::Error) -> Error {
    if e.kind() != io::ErrorKind::AddrInUse {
        return Error::path(path, e);
    }
    match sys::stat_at(dir.fd(), name) {
        Ok(stat) if stat.kind == FileKind::Socket => Error::unix_in_use(path),
        _ => Error::NotASocket { path: path.into() },
    }
}

/// A foreign lock file (`err`) stops a bind; when a socket at `name` in `dir` says more, that
/// is the error: a live server there (another user's, whose lock file is foreign to this one)
/// is [`Error::AddrInUse`], and another user's stale socket [`Error::NotOwner`], as they would
/// be without the lock file. Nothing is changed either way.
fn foreign_lock_reason(err: Error, dir: &Dir, name: &OsStr, path: &Path) -> Error {
    let Error::ForeignLockFile { .. } = err else {
        return err;
    };
    let Ok(stat) = sys::stat_at(dir.fd(), name) else {
        return err;
    };
    if stat.kind != FileKind::Socket {
        return err;
    }
    match probe(path) {
        Ok(()) => Error::unix_in_use(path),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && stat.uid != sys::euid() => {
            Error::NotOwner {
                path: path.into(),
                owner: stat.uid,
            }
        }
        Err(_) => err,
    }
}

/// Removes a stale socket at `name` in `dir`, or says why `path` cannot be bound.
fn clear_stale(dir: &Dir, name: &OsStr, path: &Path) -> Result<()> {
    let stat = match sys::stat_at(dir.fd(), name) {
        Ok(stat) => stat,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::path(path, e)),
    };
    if stat.kind != FileKind::Socket {
        return Err(Error::NotASocket { path: path.into() });
    }
    match probe(path) {
        Ok(()) => Err(Error::unix_in_use(path)),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            let owner = stat.uid;
            if owner != sys::euid() {
                return Err(Error::NotOwner {
                    path: path.into(),
                    owner,
                });
            }
            // Only the file that was probed: the lock keeps lock-aware servers away meanwhile.
            if !dir.holds(name, FileId::of(&stat)) {
                return Err(Error::unix_in_use(path));
            }
            match sys::unlink_at(dir.fd(), name) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::path(path, e)),
                _ => Ok(()),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::path(path, e)),
    }
}

/// Connects to the socket at `path` to see whether anyone is bound there: a stream connect, then
/// a datagram and a seqpacket one while the socket is of another type (`EPROTOTYPE`).
///
/// The probe never blocks: a blocking connect to a live listener whose backlog is full waits for
/// an accept that may never come (anyone can make one in a shared directory). Non-blocking, Linux
/// says `EAGAIN` there, which is as live as a connection accepted; a datagram connect never waits.
fn probe(path: &Path) -> io::Result<()> {
    let mut result = Ok(());
    for ty in [
        SocketType::Stream,
        SocketType::Datagram,
        SocketType::SeqPacket,
    ] {
        let socket = match sys::unix_socket(ty, true) {
            Ok(socket) => socket,
            // A target without Unix SEQPACKET (Apple's) has none bound there either.
            Err(_) if ty == SocketType::SeqPacket => break,
            Err(e) => return Err(e),
        };
        result = match sys::connect_unix(socket.as_fd(), path) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || sys::is_in_progress(&e) => Ok(()),
            other => other,
        };
        if !matches!(&result, Err(e) if sys::is_wrong_socket_type(e)) {
            break;
        }
    }
    result
}

/// An exclusive `flock(2)` on `SOCKET.lock`, released and removed on drop.
#[derive(Debug)]
struct LockFile {
    dir: Arc<Dir>,
    name: OsString,
    id: FileId,
    /// Holds the lock while open.
    file: File,
}

/// How the lock file is opened: never through a symlink, never as a controlling terminal, and
/// without waiting for a writer if it is a FIFO.
const LOCK_FLAGS: OpenFlags = OpenFlags::READ_WRITE
    .union(OpenFlags::NO_FOLLOW)
    .union(OpenFlags::NO_CTTY)
    .union(OpenFlags::NONBLOCK);

/// Whether a lock file is this user's own: a regular file it owns with no other name, so that
/// writing and removing it changes nothing anyone else reaches.
fn is_own_lock(stat: &FileInfo) -> bool {
    is_own_file(stat) && stat.nlink == 1
}

/// Whether a file is a regular file this user owns.
fn is_own_file(stat: &FileInfo) -> bool {
    stat.kind == FileKind::Regular && stat.uid == sys::euid()
}

impl LockFile {
    /// Locks `NAME.lock` in `dir`, for the socket at `socket` (`DIR/NAME` as the user gave it).
    fn acquire(dir: &Arc<Dir>, name: &OsStr, socket: &Path) -> Result<LockFile> {
        let mut lock_name = name.to_owned();
        lock_name.push(".lock");
        let mut lock_path = socket.as_os_str().to_owned();
        lock_path.push(".lock");
        let foreign = || Error::ForeignLockFile {
            path: lock_path.clone().into(),
        };
        // The previous holder unlinks the file before unlocking it, so a lock won on an unlinked
        // file is worthless: retry until the locked file is the one at the name.
        for _ in 0..8 {
            let fd = match sys::open_at(dir.fd(), &lock_name, LOCK_FLAGS, 0) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    match LockFile::create(dir, &lock_name).map_err(|e| Error::path(socket, e))? {
                        Some(lock) => return Ok(lock),
                        // Another process made one first.
                        None => continue,
                    }
                }
                // What cannot be opened (a symlink, a socket, a directory) may still be foreign.
                Err(e) => {
                    return Err(match sys::stat_at(dir.fd(), &lock_name) {
                        Ok(stat) if !is_own_lock(&stat) => foreign(),
                        _ => Error::path(socket, e),
                    })
                }
            };
            // Checked on the file opened, not the name, which may change meanwhile.
            let stat = sys::stat(fd.as_fd()).map_err(|e| Error::path(socket, e))?;
            if !is_own_file(&stat) {
                return Err(foreign());
            }
            let file = File::from(fd);
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => return Err(Error::unix_in_use(socket)),
                Err(fs::TryLockError::Error(e)) => return Err(Error::path(socket, e)),
            }
            let id = FileId::of(&stat);
            if !dir.holds(&lock_name, id) {
                continue;
            }
            let mut head = Vec::with_capacity(HOLDER_LINE_MAX);
            (&file)
                .take(HOLDER_LINE_MAX as u64)
                .read_to_end(&mut head)
                .map_err(|e| Error::path(socket, e))?;
            // A lock file is never seen at its name without its marker (see `create`), so a
            // file without it, an empty one too, is the user's own.
            if !head.starts_with(LOCK_MAGIC) {
                return Err(foreign());
            }
            // Only now, with the lock won: a lock file being made has two names until its
            // maker, which holds the lock, removes the one it made the file under. A maker that
            // died in between left that second name, which is removed here.
            if stat.nlink > 1 {
                if let Some(pid) = holder_pid(&head) {
                    for n in 0..=MAKING_NAMES {
                        dir.remove_if(&making_name(&lock_name, pid, n), id);
                    }
                }
            }
            let stat = sys::stat(file.as_fd()).map_err(|e| Error::path(socket, e))?;
            if !is_own_lock(&stat) {
                return Err(foreign());
            }
            // From here on it is ours, and removed on drop.
            let lock = LockFile {
                dir: Arc::clone(dir),
                name: lock_name,
                id,
                file,
            };
            lock.write_holder().map_err(|e| Error::path(socket, e))?;
            return Ok(lock);
        }
        Err(Error::unix_in_use(socket))
    }

    /// Makes the lock file `name` in `dir`, locked and marked before it appears at its name:
    /// it is made under a name of its own, then linked to `name` (`linkat(2)`, which fails if
    /// `name` exists). `None` if another process made one first.
    ///
    /// The file is opened without `O_CREAT` everywhere else: with it, Linux refuses (`EACCES`)
    /// another user's file in a sticky directory (`fs.protected_regular`), which would hide
    /// whose it is.
    fn create(dir: &Arc<Dir>, name: &OsStr) -> io::Result<Option<LockFile>> {
        let (fd, temp) = create_unique(dir, name)?;
        let made = (|| {
            let file = File::from(fd);
            file.try_lock().map_err(io::Error::from)?;
            let stat = sys::stat(file.as_fd())?;
            let lock = LockFile {
                dir: Arc::clone(dir),
                name: name.to_owned(),
                id: FileId::of(&stat),
                file,
            };
            lock.write_holder()?;
            Ok(lock)
        })();
        // Only a link of the finished file ever stands at `name`.
        // On failure the lock is dropped, which removes nothing: `name` is not its file.
        let linked = made.and_then(|lock| match sys::link_at(dir.fd(), &temp, name) {
            Ok(()) => Ok(Some(lock)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(e),
        });
        let _ = sys::unlink_at(dir.fd(), &temp);
        linked
    }

    /// Writes the marker and who holds the lock, for a person looking at the file; never leaves
    /// the marker missing, whatever was there before.
    fn write_holder(&self) -> io::Result<()> {
        let mut line = LOCK_MAGIC.to_vec();
        writeln!(line, " pid {}", std::process::id())?;
        let mut out = &self.file;
        out.rewind()?;
        out.write_all(&line)?;
        out.set_len(line.len() as u64)
    }
}

/// The most a holder line is read for: the marker, ` pid `, a pid and a newline.
const HOLDER_LINE_MAX: usize = 64;

/// The pid in a holder line (`msgsock lock pid PID\n`), which names the lock file's maker.
fn holder_pid(line: &[u8]) -> Option<u32> {
    let rest = line.strip_prefix(LOCK_MAGIC)?.strip_prefix(b" pid ")?;
    let digits = rest.strip_suffix(b"\n")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// How many making names past the first a maker tries (see [`create_unique`]).
const MAKING_NAMES: u32 = 64;

/// The name the lock file `name` is made under by process `pid`, at try `n`:
/// `.NAME.PID.N.tmp`.
fn making_name(name: &OsStr, pid: u32, n: u32) -> OsString {
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(format!(".{pid}.{n}.tmp"));
    temp
}

/// Creates a new file in `dir` for the lock file `name` to be made under, at the first making
/// name that names nothing (no file there is touched).
fn create_unique(dir: &Dir, name: &OsStr) -> io::Result<(OwnedFd, OsString)> {
    let create = LOCK_FLAGS | OpenFlags::CREATE_NEW;
    let mut n = 0u32;
    loop {
        let temp = making_name(name, std::process::id(), n);
        match sys::open_at(dir.fd(), &temp, create, 0o600) {
            Ok(fd) => return Ok((fd, temp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < MAKING_NAMES => n += 1,
            Err(e) => return Err(e),
        }
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        // Unlink while still locked; the file closes (and unlocks) after this.
        self.dir.remove_if(&self.name, self.id);
    }
}
