//! A socket bound at a relative path is removed with its lock file when it is dropped, even after
//! the process has changed its working directory; files of the same names in the new working
//! directory are left alone. The working directory is process-wide: these tests are `#[serial]`,
//! alone in this test binary, and restore it.

mod common;
mod socket_files;

use std::collections::BTreeSet;
use std::env;
use std::fs;
use std::path::{Path, PathBuf};

use msgsock::{UnixDatagram, UnixListener};
use serial_test::serial;

use crate::common::tempdir;
use crate::socket_files::{entries, lock_path, make_stale, snapshot};

/// Moves the process into a directory, and back to where it was when dropped, so that a failing
/// test leaves the working directory as it found it.
struct Cwd {
    was: PathBuf,
}

impl Cwd {
    fn enter(dir: &Path) -> Cwd {
        let was = env::current_dir().unwrap();
        env::set_current_dir(dir).unwrap();
        Cwd { was }
    }
}

impl Drop for Cwd {
    fn drop(&mut self) {
        env::set_current_dir(&self.was).unwrap();
    }
}

/// Binds `app.sock` (relative) with `bind` in one directory, moves to a second that holds a stale
/// socket and a lock file of the same names, and drops the socket there: the first directory is
/// empty afterwards and the second's files are untouched.
fn relative_socket_removed_after_chdir<T>(bind: impl FnOnce(&Path) -> msgsock::Result<T>) {
    let first = tempdir();
    let second = tempdir();
    let name = Path::new("app.sock");
    make_stale(&second.path().join(name));
    fs::write(lock_path(&second.path().join(name)), b"").unwrap();
    let decoys = [
        snapshot(&second.path().join(name)),
        snapshot(&lock_path(&second.path().join(name))),
    ];

    let cwd = Cwd::enter(first.path());
    let socket = bind(name).unwrap();
    assert_eq!(
        entries(first.path()),
        BTreeSet::from(["app.sock".to_string(), "app.sock.lock".to_string()])
    );
    env::set_current_dir(second.path()).unwrap();
    drop(socket);
    drop(cwd);

    assert_eq!(
        entries(first.path()),
        BTreeSet::new(),
        "the socket and lock files are removed from where they were bound"
    );
    assert_eq!(
        [
            snapshot(&second.path().join(name)),
            snapshot(&lock_path(&second.path().join(name))),
        ],
        decoys,
        "the new working directory's files of the same names are untouched"
    );
}

#[test]
#[serial]
fn relative_listener_is_removed_after_chdir() {
    relative_socket_removed_after_chdir(|p| UnixListener::bind(p));
}

#[test]
#[serial]
fn relative_datagram_socket_is_removed_after_chdir() {
    relative_socket_removed_after_chdir(|p| UnixDatagram::bind(p));
}
