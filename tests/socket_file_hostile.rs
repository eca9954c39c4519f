//! Socket files against a hostile local user: a live listener with a full backlog is
//! `AddrInUse` at once (the stale-socket probe never blocks), and a lock file that is not this
//! user's own regular file (another user's file, a second link, a symlink, a socket, a FIFO) is
//! `ForeignLockFile`, never written or removed, unless another user's server is at the path:
//! live, `AddrInUse`; dead, `NotOwner`. The other-user tests run as root and make their
//! files with uid 65534 (`nobody`) in a sticky, world-writable directory, as in `/tmp`.

mod common;
mod socket_files;

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{chown, lchown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use msgsock::{Error, UnixDatagram, UnixListener};
use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};

use crate::common::{exists_nofollow, root_or_skip, tempdir};
use crate::socket_files::{lock_path, make_fifo, make_stale, snapshot};

/// `nobody`.
const OTHER_UID: u32 = 65534;

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
            Err(Error::AddrInUse { endpoint }) => {
                assert_eq!(endpoint.as_unix_path(), Some(path.as_path()))
            }
            other => panic!("want AddrInUse, got {other:?}"),
        }
    }
    assert_eq!(snapshot(&path), before, "the live socket file is untouched");
    assert!(
        !exists_nofollow(&lock_path(&path)),
        "the lock is released and removed"
    );
}

/// A sticky, world-writable directory (mode 1777, like `/tmp`) inside the private `dir`.
fn sticky_dir(dir: &Path) -> PathBuf {
    let shared = dir.join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    shared
}

/// Binding at `path` refuses the lock file beside it, for both socket types: `ForeignLockFile`
/// naming it, the lock file unchanged (not written, not removed), no socket created.
fn assert_lock_refused(path: &Path) {
    let lock = lock_path(path);
    let before = snapshot(&lock);
    let results = [
        UnixListener::bind(path).map(drop),
        UnixDatagram::bind(path).map(drop),
    ];
    for result in results {
        match result {
            Err(Error::ForeignLockFile { path: p }) => assert_eq!(p, lock),
            other => panic!("{}: want ForeignLockFile, got {other:?}", lock.display()),
        }
        assert_eq!(snapshot(&lock), before, "the lock file is untouched");
        assert!(!exists_nofollow(path), "no socket is created");
    }
}

/// A file at `path` with `contents`, owned by [`OTHER_UID`].
fn file_of_other_user(path: &Path, contents: &[u8]) {
    fs::write(path, contents).unwrap();
    chown(path, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
}

#[test]
fn empty_lock_file_of_another_user_is_foreign() {
    if !root_or_skip("empty_lock_file_of_another_user_is_foreign") {
        return;
    }
    let dir = tempdir();
    let path = sticky_dir(dir.path()).join("app.sock");
    file_of_other_user(&lock_path(&path), b"");
    assert_lock_refused(&path);
}

/// Another user's msgsock server at `path`, with its lock file beside it (uid [`OTHER_UID`]),
/// live with `live`, else dead (its socket left behind, refusing connections). Returns the live
/// listener, to keep it live.
fn server_of_other_user(path: &Path, live: bool) -> Option<std::os::unix::net::UnixListener> {
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    lchown(path, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
    file_of_other_user(&lock_path(path), b"msgsock lock pid 1\n");
    live.then_some(listener)
}

/// Another user's server is what any server is, although its lock file is foreign to this
/// user: live, `AddrInUse`; dead (its socket left behind), `NotOwner`, naming the socket and its
/// owner. Its socket and lock file are untouched either way.
#[test]
fn server_of_another_user_is_in_use_or_not_owner() {
    if !root_or_skip("server_of_another_user_is_in_use_or_not_owner") {
        return;
    }
    for live in [true, false] {
        let dir = tempdir();
        let path = sticky_dir(dir.path()).join("app.sock");
        let _listener = server_of_other_user(&path, live);
        let before = (snapshot(&path), snapshot(&lock_path(&path)));
        match UnixListener::bind(&path) {
            Err(Error::AddrInUse { endpoint }) if live => {
                assert_eq!(endpoint.as_unix_path(), Some(&*path))
            }
            Err(Error::NotOwner { path: p, owner }) if !live => {
                assert_eq!((&*p, owner), (&*path, OTHER_UID))
            }
            other => panic!("live {live}: got {other:?}"),
        }
        assert_eq!((snapshot(&path), snapshot(&lock_path(&path))), before);
    }
}

/// The file's contents do not make it ours: msgsock's own text, written by someone else.
#[test]
fn msgsock_lock_file_of_another_user_is_foreign() {
    if !root_or_skip("msgsock_lock_file_of_another_user_is_foreign") {
        return;
    }
    let dir = tempdir();
    let path = sticky_dir(dir.path()).join("app.sock");
    file_of_other_user(&lock_path(&path), b"msgsock lock pid 1\n");
    assert_lock_refused(&path);
}

#[test]
fn lock_file_linked_to_another_users_file_is_foreign() {
    if !root_or_skip("lock_file_linked_to_another_users_file_is_foreign") {
        return;
    }
    let dir = tempdir();
    let shared = sticky_dir(dir.path());
    let theirs = shared.join("theirs");
    file_of_other_user(&theirs, b"");
    let path = shared.join("app.sock");
    fs::hard_link(&theirs, lock_path(&path)).unwrap();
    let before = snapshot(&theirs);
    assert_lock_refused(&path);
    assert_eq!(snapshot(&theirs), before, "their file is untouched");
}

/// Even this user's own file is not a lock file when it has a second name: writing or removing
/// it would change a file someone reaches by another path.
#[test]
fn own_file_with_a_second_link_is_foreign() {
    let dir = tempdir();
    let shared = sticky_dir(dir.path());
    let other_name = shared.join("notes.txt");
    fs::write(&other_name, b"").unwrap();
    let path = shared.join("app.sock");
    fs::hard_link(&other_name, lock_path(&path)).unwrap();
    assert_lock_refused(&path);
    assert_eq!(
        fs::read(&other_name).unwrap(),
        b"",
        "its other name is untouched"
    );
}

#[test]
fn symlink_lock_of_another_user_is_foreign() {
    if !root_or_skip("symlink_lock_of_another_user_is_foreign") {
        return;
    }
    let dir = tempdir();
    let shared = sticky_dir(dir.path());
    let target = shared.join("target");
    file_of_other_user(&target, b"");
    let path = shared.join("app.sock");
    let lock = lock_path(&path);
    symlink(&target, &lock).unwrap();
    lchown(&lock, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
    let before = snapshot(&target);
    assert_lock_refused(&path);
    assert_eq!(snapshot(&target), before, "the link's target is untouched");
}

#[test]
fn socket_lock_of_another_user_is_foreign() {
    if !root_or_skip("socket_lock_of_another_user_is_foreign") {
        return;
    }
    let dir = tempdir();
    let path = sticky_dir(dir.path()).join("app.sock");
    let lock = lock_path(&path);
    make_stale(&lock);
    chown(&lock, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
    assert_lock_refused(&path);
}

#[test]
fn fifo_lock_of_another_user_is_foreign() {
    if !root_or_skip("fifo_lock_of_another_user_is_foreign") {
        return;
    }
    let dir = tempdir();
    let path = sticky_dir(dir.path()).join("app.sock");
    let lock = lock_path(&path);
    make_fifo(&lock);
    chown(&lock, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
    assert_lock_refused(&path);
}

/// A lock file left by a server of this user that died is this user's own single-link regular
/// file: it is taken over, and removed with the socket.
#[test]
fn own_leftover_lock_file_is_taken_over() {
    let dir = tempdir();
    let path = sticky_dir(dir.path()).join("app.sock");
    let lock = lock_path(&path);
    fs::write(&lock, b"msgsock lock pid 1\n").unwrap();
    make_stale(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let contents = fs::read(&lock).unwrap();
    assert_eq!(
        contents,
        format!("msgsock lock pid {}\n", std::process::id()).as_bytes(),
        "the lock names its new holder"
    );
    drop(listener);
    assert!(!exists_nofollow(&lock), "the lock file is removed");
    assert!(!exists_nofollow(&path), "the socket file is removed");
}

/// What a server of this user leaves if it dies between linking its new lock file to
/// `PATH.lock` and removing the name it made the file under (`.NAME.lock.PID.N.tmp`): one
/// marked file with two names, locked by nobody. The next server takes it over and removes both
/// names, so such a crash never blocks a restart.
#[test]
fn lock_file_left_with_its_making_name_is_taken_over() {
    let dir = tempdir();
    let path = sticky_dir(dir.path()).join("app.sock");
    let lock = lock_path(&path);
    fs::write(&lock, b"msgsock lock pid 4242\n").unwrap();
    let making = path.with_file_name(".app.sock.lock.4242.3.tmp");
    fs::hard_link(&lock, &making).unwrap();
    make_stale(&path);
    for bind in [
        |p: &Path| UnixListener::bind(p).map(drop),
        |p: &Path| UnixDatagram::bind(p).map(drop),
    ] {
        bind(&path).unwrap_or_else(|e| panic!("the restart is refused: {e:?}"));
        assert!(!exists_nofollow(&making), "the making name is removed");
        assert!(!exists_nofollow(&lock), "the lock file is removed");
        assert!(!exists_nofollow(&path), "the socket file is removed");
        fs::write(&lock, b"msgsock lock pid 4242\n").unwrap();
        fs::hard_link(&lock, &making).unwrap();
    }
}

/// A second name for a marked lock file that is not the name its maker made it under (the
/// holder's pid is in the marker) is someone else's: the lock file is refused, and neither name
/// nor a file at the making name is touched.
#[test]
fn marked_lock_file_with_a_second_link_elsewhere_is_foreign() {
    let dir = tempdir();
    let shared = sticky_dir(dir.path());
    let path = shared.join("app.sock");
    let lock = lock_path(&path);
    fs::write(&lock, b"msgsock lock pid 4242\n").unwrap();
    let elsewhere = shared.join("kept.txt");
    fs::hard_link(&lock, &elsewhere).unwrap();
    let making = shared.join(".app.sock.lock.4242.0.tmp");
    fs::write(&making, b"msgsock lock pid 4242\n").unwrap();
    let before = snapshot(&making);
    assert_lock_refused(&path);
    assert_eq!(
        snapshot(&making),
        before,
        "the file at the making name is untouched"
    );
    assert!(exists_nofollow(&elsewhere), "the other name is untouched");
}

/// A marked lock file with a second name whose holder line names no pid cannot have a making
/// name to be matched against, so it is someone else's: refused, and both names are kept, even a
/// second name that looks like a making name.
#[test]
fn marked_lock_file_with_a_second_link_and_no_pid_is_foreign() {
    let dir = tempdir();
    let shared = sticky_dir(dir.path());
    let path = shared.join("app.sock");
    let lock = lock_path(&path);
    for holder in [
        &b"msgsock lock pid x\n"[..],
        b"msgsock lock pid 4242",
        b"msgsock lock pid 99999999999\n",
    ] {
        fs::write(&lock, holder).unwrap();
        let second = shared.join(".app.sock.lock.4242.0.tmp");
        fs::hard_link(&lock, &second).unwrap();
        assert_lock_refused(&path);
        assert!(exists_nofollow(&second), "the second name is untouched");
        assert_eq!(
            fs::read(&lock).unwrap(),
            holder,
            "the lock file is untouched"
        );
        fs::remove_file(&second).unwrap();
        fs::remove_file(&lock).unwrap();
    }
}
