//! The socket-file rules of `UnixListener::bind`: stale sockets are replaced, live ones are
//! `AddrInUse`, nothing that is not a socket is touched, racing servers are serialised, only the
//! listener's own file is removed, modes are exact, long paths are refused before anything is
//! created, the lock file is msgsock's alone, errors name the path the user gave, and a socket
//! bound to PATH has PATH as its address (what a peer sees, and can reply to).

mod common;
mod socket_files;

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram as StdUnixDatagram, UnixListener as StdUnixListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Barrier};
use std::thread;

use msgsock::{Connection, Endpoint, Error, UnixDatagram, UnixListener, UnixStream, MAX_PATH_LEN};
use nix::sys::socket::{getsockname, UnixAddr};

use crate::common::{
    describe, exists_nofollow, guard_timeouts, python3, root_or_skip, tempdir, ChildGuard,
    GUARD_TIMEOUT,
};
use crate::socket_files::{entries, lock_path, make_fifo, make_stale, snapshot};

/// Connects to `path` on a thread and exchanges a ping and a pong with `listener`, proving that
/// `listener` is the one serving `path`.
fn check_answers(listener: &UnixListener, path: &Path) {
    let client = thread::spawn({
        let path = path.to_owned();
        move || {
            let mut conn = Connection::new(UnixStream::connect(&path).unwrap());
            guard_timeouts(&conn);
            conn.send(b"ping").unwrap();
            assert_eq!(conn.recv().unwrap().as_deref(), Some(&b"pong"[..]));
        }
    });
    let mut conn = msgsock::Connection::new(listener.accept().unwrap().0);
    guard_timeouts(&conn);
    assert_eq!(conn.recv().unwrap().as_deref(), Some(&b"ping"[..]));
    conn.send(b"pong").unwrap();
    client.join().unwrap();
}

#[test]
fn stale_socket_is_replaced() {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    make_stale(&path);
    let listener = UnixListener::bind(&path).unwrap();
    assert_eq!(listener.path(), path);
    check_answers(&listener, &path);
}

/// A bind on `path`, where a live server listens, fails with `AddrInUse` and leaves the socket
/// file as it was.
fn bind_is_addr_in_use_and_leaves_the_file(path: &Path) {
    let before = snapshot(path);
    match UnixListener::bind(path) {
        Err(Error::AddrInUse { endpoint }) => assert_eq!(endpoint.as_unix_path(), Some(path)),
        other => panic!("want AddrInUse, got {other:?}"),
    }
    assert_eq!(snapshot(path), before, "the live socket file is untouched");
}

#[test]
fn live_msgsock_server_is_addr_in_use_and_keeps_serving() {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    let live = UnixListener::bind(&path).unwrap();
    bind_is_addr_in_use_and_leaves_the_file(&path);
    assert!(
        exists_nofollow(&lock_path(&path)),
        "the live server keeps its lock"
    );
    check_answers(&live, &path);
}

#[test]
fn live_foreign_server_is_addr_in_use_and_keeps_serving() {
    // A server that knows nothing of msgsock's lock file: the connect probe finds it alive.
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    let live = StdUnixListener::bind(&path).unwrap();
    bind_is_addr_in_use_and_leaves_the_file(&path);
    assert!(
        !exists_nofollow(&lock_path(&path)),
        "the failed bind left no lock file"
    );

    let client = thread::spawn({
        let path = path.clone();
        move || {
            let mut conn = Connection::new(UnixStream::connect(&path).unwrap());
            guard_timeouts(&conn);
            conn.send(b"ping").unwrap();
            assert_eq!(conn.recv().unwrap().as_deref(), Some(&b"pong"[..]));
        }
    });
    // The probe's connection is in the backlog first and closes without a message.
    loop {
        let (stream, _) = live.accept().unwrap();
        let mut conn = Connection::new(UnixStream::from(stream));
        guard_timeouts(&conn);
        if let Some(msg) = conn.recv().unwrap() {
            assert_eq!(msg, b"ping");
            conn.send(b"pong").unwrap();
            break;
        }
    }
    client.join().unwrap();
}

/// Binds at `path`, expecting `NotASocket` and nothing changed.
fn assert_not_a_socket(path: &Path) {
    let before = snapshot(path);
    match UnixListener::bind(path) {
        Err(Error::NotASocket { path: p }) => assert_eq!(p, path),
        other => panic!("{}: want NotASocket, got {other:?}", path.display()),
    }
    assert_eq!(snapshot(path), before, "{} was touched", path.display());
    assert!(
        !exists_nofollow(&lock_path(path)),
        "the failed bind left its lock file"
    );
}

#[test]
fn regular_file_is_not_a_socket() {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    fs::write(&path, b"precious data").unwrap();
    assert_not_a_socket(&path);
    assert_eq!(fs::read(&path).unwrap(), b"precious data");
}

#[test]
fn empty_regular_file_is_not_a_socket() {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    fs::write(&path, b"").unwrap();
    assert_not_a_socket(&path);
}

#[test]
fn directory_is_not_a_socket() {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    fs::create_dir(&path).unwrap();
    fs::write(path.join("inside"), b"x").unwrap();
    assert_not_a_socket(&path);
    assert_eq!(entries(&path), BTreeSet::from(["inside".to_string()]));
}

#[test]
fn symlink_to_a_stale_socket_is_not_a_socket() {
    let dir = tempdir();
    let target = dir.path().join("target.sock");
    make_stale(&target);
    let target_before = snapshot(&target);
    let path = dir.path().join("app.sock");
    std::os::unix::fs::symlink(&target, &path).unwrap();
    assert_not_a_socket(&path);
    assert_eq!(
        snapshot(&target),
        target_before,
        "the link's target was touched"
    );
}

#[test]
fn symlink_to_a_live_socket_is_not_a_socket() {
    let dir = tempdir();
    let target = dir.path().join("target.sock");
    let live = UnixListener::bind(&target).unwrap();
    let path = dir.path().join("app.sock");
    std::os::unix::fs::symlink(&target, &path).unwrap();
    assert_not_a_socket(&path);
    check_answers(&live, &target);
}

#[test]
fn symlink_to_a_file_is_not_a_socket() {
    let dir = tempdir();
    let target = dir.path().join("target.txt");
    fs::write(&target, b"precious data").unwrap();
    let path = dir.path().join("app.sock");
    std::os::unix::fs::symlink(&target, &path).unwrap();
    assert_not_a_socket(&path);
    assert_eq!(fs::read(&target).unwrap(), b"precious data");
}

#[test]
fn dangling_symlink_is_not_a_socket() {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &path).unwrap();
    assert_not_a_socket(&path);
    assert!(!exists_nofollow(&dir.path().join("nowhere")));
}

#[test]
fn fifo_is_not_a_socket() {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    make_fifo(&path);
    assert_not_a_socket(&path);
}

#[test]
fn racing_servers_on_one_stale_path_exactly_one_wins() {
    const SERVERS: usize = 8;
    const ROUNDS: usize = 20;
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    for round in 0..ROUNDS {
        make_stale(&path);
        let barrier = Arc::new(Barrier::new(SERVERS));
        let racers: Vec<_> = (0..SERVERS)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                let path = path.clone();
                thread::spawn(move || {
                    barrier.wait();
                    UnixListener::bind(&path)
                })
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let mut winners = Vec::new();
        for result in results {
            match result {
                Ok(listener) => winners.push(listener),
                Err(Error::AddrInUse { endpoint }) => {
                    assert_eq!(endpoint.as_unix_path(), Some(&*path))
                }
                Err(e) => panic!("round {round}: want Ok or AddrInUse, got {e:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one server binds");
        check_answers(&winners[0], &path);
        drop(winners);
        assert_eq!(entries(dir.path()), BTreeSet::new(), "round {round}: clean");
    }
}

#[test]
fn drop_removes_only_its_own_file() {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    let moved = dir.path().join("moved.sock");
    let listener = UnixListener::bind(&path).unwrap();
    fs::rename(&path, &moved).unwrap();
    let successor = StdUnixListener::bind(&path).unwrap();
    let successor_file = snapshot(&path);
    drop(listener);
    assert_eq!(
        snapshot(&path),
        successor_file,
        "the successor's file remains"
    );
    let client = UnixStream::connect(&path).expect("the successor is reachable");
    drop(client);
    successor.accept().expect("the successor accepts");
}

#[test]
fn drop_removes_the_socket_and_lock_files() {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    let listener = UnixListener::bind(&path).unwrap();
    // Nothing else is left behind by the bind.
    assert_eq!(
        entries(dir.path()),
        BTreeSet::from(["app.sock".to_string(), "app.sock.lock".to_string()])
    );
    drop(listener);
    assert_eq!(entries(dir.path()), BTreeSet::new());
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn socket_mode_is_0600() {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    let listener = UnixListener::bind(&path).unwrap();
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(msgsock::DEFAULT_SOCKET_MODE, 0o600);
    check_answers(&listener, &path);
}

#[test]
fn bind_with_mode_sets_the_mode() {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    let listener = UnixListener::bind_with_mode(&path, 0o660).unwrap();
    assert_eq!(mode_of(&path), 0o660);
    check_answers(&listener, &path);
}

/// A path of exactly `len` bytes inside `dir`.
fn path_of_len(dir: &Path, len: usize) -> PathBuf {
    let base = dir.as_os_str().len() + 1;
    assert!(len > base + 1, "temp dir path too long for this test");
    dir.join("s".repeat(len - base))
}

#[test]
fn too_long_path_is_refused_and_nothing_created() {
    let dir = tempdir();
    for len in [MAX_PATH_LEN + 1, MAX_PATH_LEN + 50] {
        let path = path_of_len(dir.path(), len);
        assert_eq!(path.as_os_str().len(), len);
        match UnixListener::bind(&path) {
            Err(e) if matches!(e, Error::PathTooLong { .. }) => {
                let shown = e.to_string();
                let Error::PathTooLong {
                    path: p,
                    len: l,
                    max,
                } = e
                else {
                    unreachable!()
                };
                assert_eq!((p, l, max), (path.clone(), len, 107));
                // A path the user did not write (a temp socket under TMPDIR) must be named.
                assert!(shown.contains(&*path.to_string_lossy()), "{shown}");
            }
            other => panic!("want PathTooLong, got {other:?}"),
        }
        assert_eq!(entries(dir.path()), BTreeSet::new(), "nothing created");
    }
}

#[test]
fn connect_to_too_long_path_is_refused() {
    let dir = tempdir();
    let path = path_of_len(dir.path(), MAX_PATH_LEN + 1);
    match UnixStream::connect(&path) {
        Err(Error::PathTooLong { len, max, .. }) => assert_eq!((len, max), (108, 107)),
        other => panic!("want PathTooLong, got {other:?}"),
    }
    match msgsock::connect(&msgsock::Endpoint::Unix(path.clone())) {
        Err(Error::PathTooLong { len, max, .. }) => assert_eq!((len, max), (108, 107)),
        other => panic!("want PathTooLong, got {other:?}"),
    }
}

/// A file of the user's at `PATH.lock`, an empty one too: msgsock's lock file is never seen at
/// its name without its marker, so neither is a lock file.
#[test]
fn foreign_lock_file_is_refused_and_untouched() {
    for contents in [&b"someone else's file"[..], b""] {
        let dir = tempdir();
        let path = dir.path().join("app.sock");
        let lock = lock_path(&path);
        fs::write(&lock, contents).unwrap();
        let before = snapshot(&lock);
        match UnixListener::bind(&path) {
            Err(Error::ForeignLockFile { path: p }) => assert_eq!(p, lock),
            other => panic!("{contents:?}: want ForeignLockFile, got {other:?}"),
        }
        assert_eq!(
            snapshot(&lock),
            before,
            "{contents:?}: the lock file was touched"
        );
        assert_eq!(
            fs::read(&lock).unwrap(),
            contents,
            "the lock file was written"
        );
        assert_eq!(
            entries(dir.path()),
            BTreeSet::from(["app.sock.lock".to_string()]),
            "{contents:?}: no socket or other file was created"
        );
    }
}

/// The lock file is made under a name of its own before it is linked to `PATH.lock`; a file
/// already at that name is passed over, never written or removed.
#[test]
fn a_file_at_the_lock_files_making_name_is_untouched() {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    let making = dir
        .path()
        .join(format!(".app.sock.lock.{}.0.tmp", std::process::id()));
    fs::write(&making, b"the user's").unwrap();
    let before = snapshot(&making);
    let listener = UnixListener::bind(&path).unwrap();
    assert_eq!(snapshot(&making), before, "the file was touched");
    drop(listener);
    assert_eq!(fs::read(&making).unwrap(), b"the user's");
    let name = making.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        entries(dir.path()),
        BTreeSet::from([name]),
        "only the user's file is left"
    );
}

#[test]
fn lock_path_that_is_a_directory_or_symlink_is_foreign() {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    let lock = lock_path(&path);
    fs::create_dir(&lock).unwrap();
    match UnixListener::bind(&path) {
        Err(Error::ForeignLockFile { path: p }) => assert_eq!(p, lock),
        other => panic!("directory: want ForeignLockFile, got {other:?}"),
    }
    fs::remove_dir(&lock).unwrap();

    let target = dir.path().join("target");
    fs::write(&target, b"not a lock").unwrap();
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    match UnixListener::bind(&path) {
        Err(Error::ForeignLockFile { path: p }) => assert_eq!(p, lock),
        other => panic!("symlink: want ForeignLockFile, got {other:?}"),
    }
    assert_eq!(fs::read(&target).unwrap(), b"not a lock");
    assert!(!exists_nofollow(&path), "no socket was created");
}

#[test]
fn bind_temp_uses_a_private_dir_removed_on_drop() {
    let listener = UnixListener::bind_temp().unwrap();
    let path = listener.path().to_owned();
    let dir = path.parent().unwrap().to_owned();
    assert_eq!(mode_of(&dir), 0o700);
    assert_eq!(mode_of(&path), 0o600);
    check_answers(&listener, &path);
    drop(listener);
    assert!(!exists_nofollow(&dir), "{} was left behind", dir.display());
}

/// A path of the longest length `sun_path` holds binds, and is the socket's address.
#[test]
fn path_of_max_len_binds() {
    let dir = tempdir();
    let path = path_of_len(dir.path(), MAX_PATH_LEN);
    assert_listener_addressed_by(&path);
    assert_datagram_addressed_by(&path, &dir.path().join("peer"));
    assert_eq!(
        entries(dir.path()),
        BTreeSet::new(),
        "nothing is left behind"
    );
}

/// A stale socket of another user is never removed. Making one takes root (to `chown`), which CI
/// runs as; elsewhere the test fails unless `MSGSOCK_SKIP_ROOT_TESTS=1` asks for a loud skip.
#[test]
fn stale_socket_of_another_user_is_not_owner_and_untouched() {
    if !root_or_skip("stale_socket_of_another_user_is_not_owner_and_untouched") {
        return;
    }
    let dir = tempdir();
    let path = dir.path().join("theirs.sock");
    make_stale(&path);
    std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
    let before = fs::symlink_metadata(&path).unwrap();

    let err = UnixListener::bind(&path).unwrap_err();
    assert!(
        matches!(&err, Error::NotOwner { owner: 65534, path: p } if p == &path),
        "{err:?}"
    );
    let after = fs::symlink_metadata(&path).unwrap();
    assert_eq!((after.dev(), after.ino()), (before.dev(), before.ino()));
    assert!(
        !exists_nofollow(&lock_path(&path)),
        "the lock file is removed"
    );
}

/// A path that fits `sun_path` binds, as itself, even when its file name is short (so that a
/// sibling directory's path, `DIR/.XXXXXX/s`, would not fit).
#[test]
fn path_of_max_len_with_a_one_byte_name_binds() {
    let dir = tempdir();
    let base = dir.path().as_os_str().len();
    // DIR/aaa.../s: a deep directory, then a one-byte file name, 107 bytes in all.
    let sub = dir.path().join("a".repeat(MAX_PATH_LEN - base - 3));
    fs::create_dir(&sub).unwrap();
    let path = sub.join("s");
    assert_eq!(path.as_os_str().len(), MAX_PATH_LEN);
    let listener = UnixListener::bind(&path).unwrap();
    check_answers(&listener, &path);
    assert_eq!(
        fs::symlink_metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    drop(listener);
    assert_eq!(entries(&sub), BTreeSet::new(), "nothing is left behind");
    assert_listener_addressed_by(&path);
    assert_datagram_addressed_by(&path, &dir.path().join("peer"));
    assert_eq!(entries(&sub), BTreeSet::new(), "nothing is left behind");
}

/// What `getsockname(2)` says `fd` is bound to.
fn sockname(fd: &impl AsFd) -> PathBuf {
    let addr: UnixAddr = getsockname(fd.as_fd().as_raw_fd()).expect("getsockname");
    addr.path().expect("a path address").to_owned()
}

/// A listener bound to `path` has `path` as its address: its own, the one a client sees as its
/// peer, and the accepted connection's own. Its file is gone afterwards.
fn assert_listener_addressed_by(path: &Path) {
    let listener = UnixListener::bind(path).unwrap();
    assert_eq!(sockname(&listener), path, "the listener's getsockname");
    let client = UnixStream::connect(path).unwrap();
    let peer = client.get_ref().peer_addr().unwrap();
    assert_eq!(peer.as_pathname(), Some(path), "the client's peer_addr");
    let (accepted, _) = listener.accept().unwrap();
    assert_eq!(
        sockname(&accepted),
        path,
        "the accepted stream's getsockname"
    );
    drop((client, accepted));
    check_answers(&listener, path);
    drop(listener);
    assert!(!exists_nofollow(path), "{} is removed", path.display());
}

/// `peer` receives a `ping` from the socket bound at `path`: the sender address it sees is
/// `path`, and a `pong` sent back to that address is accepted.
fn reply_to_sender(peer: &StdUnixDatagram, path: &Path) {
    let mut buf = [0; 16];
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    let from = from
        .as_pathname()
        .expect("the sender has a path")
        .to_owned();
    assert_eq!(from, path, "the sender address a peer sees");
    peer.send_to(b"pong", &from)
        .expect("a reply to the sender address");
}

/// A peer bound at `peer_path` and a `UnixDatagram` bound at `path` exchange a ping and a pong,
/// the pong sent to the address the ping came from. Both files are gone afterwards.
fn assert_datagram_addressed_by(path: &Path, peer_path: &Path) {
    let server = UnixDatagram::bind(path).unwrap();
    server.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
    assert_eq!(sockname(server.get_ref()), path, "the socket's getsockname");
    let peer = StdUnixDatagram::bind(peer_path).unwrap();
    peer.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
    server.send_to(b"ping", peer_path).unwrap();
    reply_to_sender(&peer, path);
    assert_eq!(server.recv().unwrap(), b"pong");
    drop((server, peer));
    fs::remove_file(peer_path).unwrap();
    assert!(!exists_nofollow(path), "{} is removed", path.display());
}

#[test]
fn listener_is_addressed_by_its_path() {
    let dir = tempdir();
    assert_listener_addressed_by(&dir.path().join("app.sock"));
}

#[test]
fn datagram_socket_is_addressed_by_its_path() {
    let dir = tempdir();
    assert_datagram_addressed_by(&dir.path().join("d.sock"), &dir.path().join("peer"));
}

/// The endpoint form (`bind_datagram` of `unixgram:PATH`) too: replies reach it at PATH.
#[test]
fn bound_datagram_endpoint_is_addressed_by_its_path() {
    let dir = tempdir();
    let path = dir.path().join("d.sock");
    let peer_path = dir.path().join("peer");
    let server = msgsock::bind_datagram(&Endpoint::UnixDatagram(path.clone())).unwrap();
    server.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
    let peer = StdUnixDatagram::bind(&peer_path).unwrap();
    peer.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
    server
        .send_to(b"ping", &Endpoint::UnixDatagram(peer_path.clone()))
        .unwrap();
    reply_to_sender(&peer, &path);
    let mut buf = Vec::new();
    let (_, from) = server.recv_from(&mut buf).unwrap();
    assert_eq!(buf, b"pong");
    assert_eq!(from, Some(Endpoint::UnixDatagram(peer_path)));
}

/// A plain Python `AF_UNIX`/`SOCK_DGRAM` client of a `UnixDatagram` at PATH: the reply comes
/// from PATH, and a second datagram sent to that address arrives.
const PY_DGRAM_CLIENT: &str = r#"
import socket, sys
server, me = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(me)
s.settimeout(60)
s.sendto(b"ping", server)
data, addr = s.recvfrom(64)
assert data == b"pong", data
print(addr, flush=True)
s.sendto(b"again", addr)
"#;

#[test]
fn python_datagram_client_gets_replies_from_the_path() {
    let dir = tempdir();
    let path = dir.path().join("d.sock");
    let client_path = dir.path().join("py.sock");
    let server = UnixDatagram::bind(&path).unwrap();
    server.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
    let client = python3("a plain Python datagram client is the reference peer")
        .arg("-c")
        .arg(PY_DGRAM_CLIENT)
        .arg(&path)
        .arg(&client_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = ChildGuard::new(client);

    let mut buf = Vec::new();
    let (_, from) = server.recv_from(&mut buf).unwrap();
    assert_eq!(buf, b"ping");
    server.send_to(b"pong", from.unwrap()).unwrap();
    // Python sends "again" before it exits: it is queued by then.
    let out = client.wait_with_output();
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        path.to_str().unwrap(),
        "the sender address Python sees"
    );
    assert_eq!(server.recv().unwrap(), b"again");
}

/// The error of a bind at `path`: an I/O error naming `path` itself (never its lock file), with
/// the cause of kind `kind`.
fn assert_path_error(
    result: msgsock::Result<impl std::fmt::Debug>,
    path: &Path,
    kind: io::ErrorKind,
) {
    match result {
        Err(Error::Path { path: p, source }) => {
            assert_eq!(p, path, "the error names the path asked for");
            assert_eq!(source.kind(), kind, "the cause: {source}");
        }
        other => panic!("{}: want Path with {kind:?}, got {other:?}", path.display()),
    }
}

/// Binding at `path` fails with an I/O error naming `path` and of `kind`, for both socket types,
/// and creates nothing in `dir`.
fn assert_bind_path_error(dir: &Path, path: &Path, kind: io::ErrorKind) {
    let before = entries(dir);
    assert_path_error(UnixListener::bind(path), path, kind);
    assert_path_error(UnixDatagram::bind(path), path, kind);
    assert_eq!(entries(dir), before, "nothing is created");
}

#[test]
fn missing_parent_directory_is_not_found_on_the_path() {
    let dir = tempdir();
    let path = dir.path().join("missing").join("app.sock");
    assert_bind_path_error(dir.path(), &path, io::ErrorKind::NotFound);
}

#[test]
fn parent_that_is_a_file_is_not_a_directory_on_the_path() {
    let dir = tempdir();
    fs::write(dir.path().join("file"), b"").unwrap();
    let path = dir.path().join("file").join("app.sock");
    assert_bind_path_error(dir.path(), &path, io::ErrorKind::NotADirectory);
}

/// `DIR/app.sock/` names a directory, which a socket cannot be: refused before anything is made,
/// naming the path as given, slash and all.
#[test]
fn trailing_slash_is_refused_on_the_path() {
    let dir = tempdir();
    let mut path = dir.path().join("app.sock").into_os_string();
    path.push("/");
    let path = PathBuf::from(path);
    assert_bind_path_error(dir.path(), &path, io::ErrorKind::InvalidInput);
    // Even where a stale socket of that name exists: it is not what the path names.
    make_stale(&dir.path().join("app.sock"));
    assert_bind_path_error(dir.path(), &path, io::ErrorKind::InvalidInput);
}
