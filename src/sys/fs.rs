//! The file calls of the socket-file logic: directories opened to work in by name, status
//! without following a symlink, removal by name, modes, and the effective user id that owns
//! what this process creates. nix's `OFlag` and `FileStat` stay here; the callers see
//! [`OpenFlags`] and [`FileInfo`].

use std::ffi::OsStr;
use std::io;
use std::ops::BitOr;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::libc;
use nix::sys::stat::{FileStat, Mode};

use super::retry;

/// The effective user id, owner of the socket files this process creates.
pub(crate) fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// The flags of an [`open_at`], named as `open(2)` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenFlags(OFlag);

impl OpenFlags {
    /// `O_RDWR`.
    pub(crate) const READ_WRITE: OpenFlags = OpenFlags(OFlag::O_RDWR);
    /// `O_NOFOLLOW`: a final symlink is not followed (`ELOOP`).
    pub(crate) const NO_FOLLOW: OpenFlags = OpenFlags(OFlag::O_NOFOLLOW);
    /// `O_NOCTTY`: a terminal never becomes the controlling one.
    pub(crate) const NO_CTTY: OpenFlags = OpenFlags(OFlag::O_NOCTTY);
    /// `O_NONBLOCK`: a FIFO opens without waiting for its other end.
    pub(crate) const NONBLOCK: OpenFlags = OpenFlags(OFlag::O_NONBLOCK);
    /// `O_CREAT | O_EXCL`: a new file, or `EEXIST`.
    pub(crate) const CREATE_NEW: OpenFlags = OpenFlags(OFlag::O_CREAT.union(OFlag::O_EXCL));
    /// `O_PATH`: a handle to the file itself, which reads nothing (Linux).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) const PATH: OpenFlags = OpenFlags(OFlag::O_PATH);

    /// Both sets of flags, for constants.
    pub(crate) const fn union(self, other: OpenFlags) -> OpenFlags {
        OpenFlags(self.0.union(other.0))
    }
}

impl BitOr for OpenFlags {
    type Output = OpenFlags;

    fn bitor(self, other: OpenFlags) -> OpenFlags {
        self.union(other)
    }
}

/// What kind of file a [`FileInfo`] describes, as far as the crate tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// `S_IFSOCK`.
    Socket,
    /// `S_IFREG`.
    Regular,
    /// Anything else: a directory, a symlink, a FIFO, a device.
    Other,
}

/// The status of a file (`stat(2)`) that the socket-file logic looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileInfo {
    /// With `ino`, the file's identity.
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    /// The owner.
    pub(crate) uid: u32,
    /// The permission bits, as `chmod(2)` takes them.
    pub(crate) mode: u32,
    /// The number of names (hard links).
    pub(crate) nlink: u64,
    pub(crate) kind: FileKind,
}

impl From<FileStat> for FileInfo {
    // The field types of `stat` differ between platforms (`mode_t` is `u16` on some).
    #[allow(clippy::unnecessary_cast)]
    fn from(stat: FileStat) -> FileInfo {
        let kind = match stat.st_mode & libc::S_IFMT {
            libc::S_IFSOCK => FileKind::Socket,
            libc::S_IFREG => FileKind::Regular,
            _ => FileKind::Other,
        };
        FileInfo {
            dev: stat.st_dev as u64,
            ino: stat.st_ino as u64,
            uid: stat.st_uid,
            mode: (stat.st_mode & 0o7777) as u32,
            nlink: stat.st_nlink as u64,
            kind,
        }
    }
}

/// `fchmod(2)`: on a socket not yet bound, the mode its file will be created with (less the
/// umask) on Linux.
pub(crate) fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    retry(|| nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(mode)))
}

/// How a directory is opened to work in it: `O_PATH` where there is one, which needs only
/// search permission and reads nothing.
#[cfg(any(target_os = "linux", target_os = "android"))]
const DIR_FLAGS: OFlag = OFlag::O_PATH
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_CLOEXEC);
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_CLOEXEC);

/// `open(2)` of the directory `path`, for the `*at` calls below.
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    retry(|| nix::fcntl::open(path, DIR_FLAGS, Mode::empty()))
}

/// `openat(2)` of `name` in `dir`, close-on-exec, with `flags` and (when creating) `mode`.
pub(crate) fn open_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    flags: OpenFlags,
    mode: u32,
) -> io::Result<OwnedFd> {
    let mode = Mode::from_bits_truncate(mode);
    retry(|| nix::fcntl::openat(dir, name, flags.0 | OFlag::O_CLOEXEC, mode))
}

/// `fstatat(2)` of `name` in `dir`, not following a final symlink.
pub(crate) fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<FileInfo> {
    retry(|| nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW))
        .map(FileInfo::from)
}

/// `fstat(2)`.
pub(crate) fn stat(fd: BorrowedFd<'_>) -> io::Result<FileInfo> {
    retry(|| nix::sys::stat::fstat(fd)).map(FileInfo::from)
}

/// `linkat(2)`: a new name `new` in `dir` for the file `old` in `dir`, not following a
/// symlink; `AlreadyExists` if `new` names anything.
pub(crate) fn link_at(dir: BorrowedFd<'_>, old: &OsStr, new: &OsStr) -> io::Result<()> {
    retry(|| nix::unistd::linkat(dir, old, dir, new, nix::fcntl::AtFlags::empty()))
}

/// `unlinkat(2)` of the non-directory `name` in `dir`.
pub(crate) fn unlink_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    retry(|| nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir))
}

/// `chmod(2)` of the file `fd` was opened on with `O_PATH`, through `/proc/self/fd`:
/// `fchmod(2)` refuses `O_PATH` descriptors, and a name would follow whatever replaced the file.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn chmod_opened(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        format!("/proc/self/fd/{}", fd.as_raw_fd()),
        std::fs::Permissions::from_mode(mode),
    )
}

/// `fstat(2)`: whether `fd` is a socket.
pub(crate) fn is_socket(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(stat(fd)?.kind == FileKind::Socket)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::os::fd::AsFd;
    use std::os::unix::fs::PermissionsExt;

    use super::{open_at, open_dir, stat, stat_at, FileKind, OpenFlags};

    #[test]
    fn file_info_tells_regular_files_sockets_and_others_apart() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("s")).unwrap();
        std::os::unix::fs::symlink(&file, dir.path().join("l")).unwrap();
        let fd = open_dir(dir.path()).unwrap();

        let info = stat_at(fd.as_fd(), OsStr::new("f")).unwrap();
        assert_eq!(info.kind, FileKind::Regular);
        assert_eq!(
            (info.mode, info.nlink, info.uid),
            (0o640, 1, crate::sys::euid())
        );
        let kind = |name: &str| stat_at(fd.as_fd(), OsStr::new(name)).unwrap().kind;
        assert_eq!(kind("s"), FileKind::Socket);
        // Not followed: the symlink itself.
        assert_eq!(kind("l"), FileKind::Other);
        assert_eq!(stat(fd.as_fd()).unwrap().kind, FileKind::Other);
    }

    #[test]
    fn no_follow_refuses_a_symlink_and_create_new_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("f"), dir.path().join("l")).unwrap();
        let fd = open_dir(dir.path()).unwrap();
        let flags = OpenFlags::READ_WRITE | OpenFlags::NO_FOLLOW;
        assert!(open_at(fd.as_fd(), OsStr::new("l"), flags, 0).is_err());
        let opened = open_at(fd.as_fd(), OsStr::new("f"), flags, 0).unwrap();
        let id = |i: super::FileInfo| (i.dev, i.ino);
        assert_eq!(
            id(stat(opened.as_fd()).unwrap()),
            id(stat_at(fd.as_fd(), OsStr::new("f")).unwrap())
        );
        let err = open_at(
            fd.as_fd(),
            OsStr::new("f"),
            flags | OpenFlags::CREATE_NEW,
            0o600,
        )
        .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    }
}
