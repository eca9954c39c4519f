//! Helpers of the socket-file tests (`tests/socket_file*.rs`): the lock file's name, stale
//! sockets, directory listings, snapshots of files that must not change.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::{Path, PathBuf};

/// `PATH.lock`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    name.into()
}

/// Leaves a stale socket at `path`: std does not remove the file when its listener is dropped.
pub fn make_stale(path: &Path) {
    drop(StdUnixListener::bind(path).unwrap());
    assert!(fs::symlink_metadata(path).unwrap().file_type().is_socket());
}

/// Makes a FIFO at `path` with `mkfifo(1)`.
pub fn make_fifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo not found: install coreutils");
    assert!(status.success(), "mkfifo failed: {status}");
    assert!(fs::symlink_metadata(path).unwrap().file_type().is_fifo());
}

/// The names in `dir`.
pub fn entries(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// What must not change about a file msgsock refuses to touch.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    dev: u64,
    ino: u64,
    mode: u32,
    uid: u32,
    nlink: u64,
    len: u64,
    mtime: (i64, i64),
    contents: Option<Vec<u8>>,
    link: Option<PathBuf>,
}

/// The state of the file at `path`, without following a final symlink.
pub fn snapshot(path: &Path) -> Snapshot {
    let meta = fs::symlink_metadata(path).unwrap();
    Snapshot {
        dev: meta.dev(),
        ino: meta.ino(),
        mode: meta.mode(),
        uid: meta.uid(),
        nlink: meta.nlink(),
        len: meta.len(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        contents: meta.is_file().then(|| fs::read(path).unwrap()),
        link: meta.is_symlink().then(|| fs::read_link(path).unwrap()),
    }
}
