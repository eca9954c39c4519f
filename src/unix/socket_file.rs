//! The socket file's life: stale probe, bind lock, owner-only mode, removal only of our own file.
//!
//! Binding `PATH`:
//! 1. The path must fit in `sun_path`, checked before any system call.
//! 2. An exclusive `flock(2)` on `PATH.lock` serialises servers racing for one path: the loser
//!    gets [`Error::AddrInUse`] at once.
//! 3. Whatever is at `PATH` is looked at with `lstat(2)`. A socket nobody accepts on (a connect
//!    probe is refused) and that this user owns is stale and removed; a live one is
//!    [`Error::AddrInUse`]; anything else (file, directory, symlink) is left alone.
//! 4. The socket is bound inside a fresh private (0700) directory next to `PATH`, given its mode,
//!    then hard-linked to `PATH` (which fails rather than replace anything), so it is never
//!    reachable with wider permissions than asked for.
//! 5. On drop, `PATH` is removed only while it still names the file bound here, by `(dev, ino)`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixDatagram as StdUnixDatagram;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sys;

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

/// A file's identity: `(dev, ino)`, as same-file compares handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(meta: &fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    /// Whether `path` still names this file (without following a final symlink).
    fn is_at(self, path: &Path) -> bool {
        fs::symlink_metadata(path).is_ok_and(|m| FileId::of(&m) == self)
    }
}

/// A bound socket file, removed on drop while it is still ours.
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    id: FileId,
    /// Held for the listener's life: a second server fails fast instead of probing.
    _lock: Option<LockFile>,
    remove_on_drop: bool,
}

impl SocketFile {
    /// Binds a socket at `path` with `bind_at` and gives it permission bits `mode`, following the
    /// rules above.
    pub(crate) fn bind<T>(
        path: &Path,
        mode: u32,
        bind_at: impl FnOnce(&Path) -> io::Result<T>,
    ) -> Result<(T, SocketFile)> {
        check_len(path)?;
        let lock = LockFile::acquire(path)?;
        clear_stale(path)?;

        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // Short names keep the staging path close to the final one's length.
        let staging = tempfile::Builder::new()
            .prefix(".")
            .rand_bytes(6)
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(parent)
            .map_err(|e| Error::path(parent, e))?;
        let staged = staging.path().join("s");
        let socket = if check_len(&staged).is_ok() {
            bind_at(&staged)
        } else {
            bind_via_dir_fd(staging.path(), "s", bind_at)
        }
        .map_err(|e| Error::path(path, e))?;
        fs::set_permissions(&staged, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::path(path, e))?;
        // link(2) never replaces: if something appeared at `path` meanwhile, it stays.
        fs::hard_link(&staged, path).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                match fs::symlink_metadata(path) {
                    Ok(m) if m.file_type().is_socket() => Error::unix_in_use(path),
                    _ => Error::NotASocket { path: path.into() },
                }
            } else {
                Error::path(path, e)
            }
        })?;
        let file = SocketFile::adopt(path, mode, Some(lock))?;
        Ok((socket, file))
    }

    /// Binds at `path` inside a directory only this user can enter, where no lock or staging is
    /// needed.
    pub(crate) fn bind_private<T>(
        path: &Path,
        mode: u32,
        bind_at: impl FnOnce(&Path) -> io::Result<T>,
    ) -> Result<(T, SocketFile)> {
        check_len(path)?;
        let socket = bind_at(path).map_err(|e| Error::path(path, e))?;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::path(path, e))?;
        let file = SocketFile::adopt(path, mode, None)?;
        Ok((socket, file))
    }

    /// Records the identity of the socket now at `path` and checks its mode.
    fn adopt(path: &Path, mode: u32, lock: Option<LockFile>) -> Result<SocketFile> {
        let meta = fs::symlink_metadata(path).map_err(|e| Error::path(path, e))?;
        let file = SocketFile {
            path: path.into(),
            id: FileId::of(&meta),
            _lock: lock,
            remove_on_drop: true,
        };
        let actual = meta.mode() & 0o7777;
        if !meta.file_type().is_socket() {
            return Err(Error::NotASocket { path: path.into() });
        }
        if actual != mode {
            // `file` drops here and removes the socket it just published.
            return Err(Error::ModeMismatch {
                path: path.into(),
                expected: mode,
                actual,
            });
        }
        Ok(file)
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
        if self.remove_on_drop && self.id.is_at(&self.path) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Binds `dir/name` where that path is too long for `sun_path` (a short file name near the limit:
/// the staging path is up to 9 bytes longer than the final one), through the short
/// `/proc/self/fd/N/name`, as systemd does for long socket paths.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn bind_via_dir_fd<T>(
    dir: &Path,
    name: &str,
    bind_at: impl FnOnce(&Path) -> io::Result<T>,
) -> io::Result<T> {
    use std::os::fd::AsRawFd;
    let handle = File::open(dir)?;
    bind_at(
        &Path::new("/proc/self/fd")
            .join(handle.as_raw_fd().to_string())
            .join(name),
    )
}

/// Elsewhere there is no short alias for the directory: the path is too long.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn bind_via_dir_fd<T>(
    dir: &Path,
    name: &str,
    _bind_at: impl FnOnce(&Path) -> io::Result<T>,
) -> io::Result<T> {
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "staging path {} is too long for a socket",
            dir.join(name).display()
        ),
    ))
}

/// Removes a stale socket at `path`, or says why it cannot be bound.
fn clear_stale(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::path(path, e)),
    };
    if !meta.file_type().is_socket() {
        return Err(Error::NotASocket { path: path.into() });
    }
    match probe(path) {
        Ok(()) => Err(Error::unix_in_use(path)),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            let owner = meta.uid();
            if owner != sys::euid() {
                return Err(Error::NotOwner {
                    path: path.into(),
                    owner,
                });
            }
            // Only the file that was probed: the lock keeps lock-aware servers away meanwhile.
            if FileId::of(&meta).is_at(path) {
                match fs::remove_file(path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::path(path, e)),
                    _ => Ok(()),
                }
            } else {
                Err(Error::unix_in_use(path))
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::path(path, e)),
    }
}

/// Connects to the socket at `path` to see whether anyone is bound there: a stream connect, or a
/// datagram one if the socket is of the other type (`EPROTOTYPE`).
fn probe(path: &Path) -> io::Result<()> {
    match StdUnixStream::connect(path) {
        Err(e) if e.raw_os_error() == Some(nix::libc::EPROTOTYPE) => {
            StdUnixDatagram::unbound()?.connect(path)
        }
        other => other.map(drop),
    }
}

/// An exclusive `flock(2)` on `SOCKET.lock`, released and removed on drop.
#[derive(Debug)]
struct LockFile {
    path: PathBuf,
    id: FileId,
    _file: File,
}

impl LockFile {
    fn acquire(socket: &Path) -> Result<LockFile> {
        let mut name = socket.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        // The previous holder unlinks the file before unlocking it, so a lock won on an unlinked
        // file is worthless: retry until the locked file is the one at `path`.
        for _ in 0..8 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&path)
                .map_err(|e| lock_open_error(&path, e))?;
            let meta = file.metadata().map_err(|e| Error::path(&path, e))?;
            if !meta.file_type().is_file() {
                return Err(Error::ForeignLockFile { path });
            }
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => return Err(Error::unix_in_use(socket)),
                Err(fs::TryLockError::Error(e)) => return Err(Error::path(&path, e)),
            }
            let id = FileId::of(&meta);
            if !id.is_at(&path) {
                continue;
            }
            let mut head = Vec::with_capacity(LOCK_MAGIC.len());
            (&file)
                .take(LOCK_MAGIC.len() as u64)
                .read_to_end(&mut head)
                .map_err(|e| Error::path(&path, e))?;
            if !head.is_empty() && head != LOCK_MAGIC {
                return Err(Error::ForeignLockFile { path });
            }
            // Who holds it, for a person looking at the file.
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(LOCK_MAGIC))
                .and_then(|()| writeln!(file, " pid {}", std::process::id()))
                .map_err(|e| Error::path(&path, e))?;
            return Ok(LockFile {
                path,
                id,
                _file: file,
            });
        }
        Err(Error::unix_in_use(socket))
    }
}

fn lock_open_error(path: &Path, e: io::Error) -> Error {
    // O_NOFOLLOW on a symlink gives ELOOP; a directory gives EISDIR.
    match e.raw_os_error() {
        Some(nix::libc::ELOOP) | Some(nix::libc::EISDIR) => {
            Error::ForeignLockFile { path: path.into() }
        }
        _ => Error::path(path, e),
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        // Unlink while still locked; the file closes (and unlocks) after this.
        if self.id.is_at(&self.path) {
            let _ = fs::remove_file(&self.path);
        }
    }
}
