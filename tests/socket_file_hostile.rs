//! Socket files against a hostile local user: a live listener with a full backlog is
//! `AddrInUse` at once (the stale-socket probe never blocks), and a lock file that is not this
//! user's own regular file (another user's file, a second link, a symlink, a socket, a FIFO) is
//! `ForeignLockFile`, never written or removed. The other-user tests run as root and make their
//! files with uid 65534 (`nobody`) in a sticky, world-writable directory, as in `/tmp`.

mod common;
mod socket_files;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use msgsock::{Error, UnixDatagram, UnixListener};
use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};

use crate::common::{exists_nofollow, tempdir};
use crate::socket_files::{lock_path, snapshot};

/// A bind takes milliseconds; this only bounds the wait for one that hangs.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// Runs `f` on a thread and returns its result, failing the test if it takes longer than
/// [`ANSWER_WITHIN`] (the thread is then left blocked, and ends with the test process).
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(ANSWER_WITHIN)
        .unwrap_or_else(|_| panic!("{what} did not return within {ANSWER_WITHIN:?}"))
}

/// A Unix stream socket, non-blocking if asked.
fn stream_socket(nonblocking: bool) -> OwnedFd {
    let flags = if nonblocking {
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK
    } else {
        SockFlag::SOCK_CLOEXEC
    };
    socket::socket(AddressFamily::Unix, SockType::Stream, flags, None).unwrap()
}

/// A live listener at `path` whose backlog is full: `listen(0)` and one pending connection (Linux
/// queues one even with a backlog of 0). Returns both sockets, to keep them open.
fn full_backlog_listener(path: &Path) -> (OwnedFd, OwnedFd) {
    let addr = UnixAddr::new(path).unwrap();
    let listener = stream_socket(false);
    socket::bind(listener.as_raw_fd(), &addr).unwrap();
    socket::listen(&listener, Backlog::new(0).unwrap()).unwrap();
    let pending = stream_socket(true);
    socket::connect(pending.as_raw_fd(), &addr).unwrap();
    // The queue is full: a blocking connect would now wait for an accept that never comes.
    let probe = stream_socket(true);
    assert_eq!(
        socket::connect(probe.as_raw_fd(), &addr),
        Err(Errno::EAGAIN),
        "the backlog is full"
    );
    (listener, pending)
}

#[test]
fn live_listener_with_a_full_backlog_is_addr_in_use() {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    let _live = full_backlog_listener(&path);
    let before = snapshot(&path);
    let results = [
        bounded("UnixListener::bind", {
            let path = path.clone();
            move || UnixListener::bind(path).map(drop)
        }),
        bounded("UnixDatagram::bind", {
            let path = path.clone();
            move || UnixDatagram::bind(path).map(drop)
        }),
    ];
    for result in results {
        match result {
            Err(Error::AddrInUse { path: p }) => assert_eq!(p, path),
            other => panic!("want AddrInUse, got {other:?}"),
        }
    }
    assert_eq!(snapshot(&path), before, "the live socket file is untouched");
    assert!(
        !exists_nofollow(&lock_path(&path)),
        "the lock is released and removed"
    );
}
