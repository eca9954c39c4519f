//! A socket file never has wider permissions than asked for, not even for an instant: another
//! user (uid 65534, `nobody`) connecting and sending in a tight loop while this process binds
//! and drops a mode-0600 socket thousands of times is always refused. The process umask is 0
//! meanwhile, so a socket file given its mode only after `bind(2)` would appear as 0777 first and
//! let it in. The mode is also exact when the umask would narrow it.
//!
//! The umask is process-wide: these tests are `#[serial]`, alone in this test binary, and restore
//! it.

mod common;
mod socket_files;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram as StdUnixDatagram, UnixStream as StdUnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::{fs, io, thread};

use msgsock::{UnixDatagram, UnixListener, UnixStream};
use nix::sys::stat::{umask, Mode};
use serial_test::serial;

use crate::common::{root_or_skip, tempdir, ChildGuard, GUARD_TIMEOUT};
use crate::socket_files::entries;

/// The racer's user.
const OTHER_UID: u32 = 65534;
const ROLE_VAR: &str = "MSGSOCK_TEST_RACER";
const PATH_VAR: &str = "MSGSOCK_TEST_RACER_PATH";
/// The racer says this once it has been refused by the socket file's mode this many times: it
/// has seen the file often enough for a window to show.
const SEEN: &str = "RACER SEEN";
const SEEN_AFTER: u64 = 200;
/// Binds without the racer having seen the file, before the test says it proves nothing.
const MAX_BINDS: usize = 200_000;
/// Binds once the racer has seen the file, to give it many more chances.
const MORE_BINDS: usize = 2_000;

/// Sets the umask, and puts the old one back when dropped.
struct Umask(Mode);

impl Umask {
    fn set(mask: u32) -> Umask {
        Umask(umask(Mode::from_bits_truncate(mask)))
    }
}

impl Drop for Umask {
    fn drop(&mut self) {
        umask(self.0);
    }
}

/// The racer: runs as another user, connects (`stream`) or sends (`datagram`) to the path in a
/// loop until its stdin closes, then prints how each attempt ended. Ignored in a normal run; the
/// test below starts it.
#[test]
#[ignore = "the other-user process of no_instant_with_wider_permissions_*; they run it"]
fn racer_process() {
    let role = std::env::var(ROLE_VAR).expect("run by the socket mode tests");
    let path = std::env::var_os(PATH_VAR).expect(PATH_VAR);
    println!("RACER UID {}", nix::unistd::geteuid());
    let stop = Arc::new(AtomicBool::new(false));
    thread::spawn({
        let stop = Arc::clone(&stop);
        move || {
            let _ = io::stdin().read_to_end(&mut Vec::new());
            stop.store(true, Ordering::SeqCst);
        }
    });
    let sender = StdUnixDatagram::unbound().unwrap();
    let (mut admitted, mut denied, mut other) = (0u64, 0u64, 0u64);
    while !stop.load(Ordering::SeqCst) {
        let result = match role.as_str() {
            "stream" => StdUnixStream::connect(&path).map(drop),
            "datagram" => sender.send_to(b"x", &path).map(drop),
            _ => panic!("unknown role {role:?}"),
        };
        match result {
            Ok(()) => admitted += 1,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                denied += 1;
                if denied == SEEN_AFTER {
                    println!("{SEEN}");
                }
            }
            // Not there, or there but not yet listening: no permission was granted.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) => {}
            Err(_) => other += 1,
        }
    }
    println!("RACER RESULT admitted={admitted} denied={denied} other={other}");
}

/// Races a `nobody` process against `bind` (which binds and drops a socket at `path`, mode 0600,
/// once per call) and returns the racer's result line.
fn race(role: &str, path: &Path, bind: impl Fn()) -> String {
    let mut child = ChildGuard::new(
        common::this_test_as_child("racer_process")
            .env(ROLE_VAR, role)
            .env(PATH_VAR, path)
            .uid(OTHER_UID)
            .gid(OTHER_UID)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the racer"),
    );
    let (tx, lines) = mpsc::channel();
    let stdout = child.child().stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = |what: &str| -> String {
        loop {
            let line = lines
                .recv_timeout(GUARD_TIMEOUT)
                .unwrap_or_else(|_| panic!("the racer said no {what}"));
            // The harness may print `test racer_process ... ` before it, on the same line.
            if let Some(at) = line.find(what) {
                return line[at..].to_string();
            }
        }
    };
    assert_eq!(next("RACER UID"), format!("RACER UID {OTHER_UID}"));

    let mut seen_at = None;
    for i in 0..MAX_BINDS {
        bind();
        if seen_at.is_none() && lines.try_recv().is_ok_and(|l| l.contains(SEEN)) {
            seen_at = Some(i);
        }
        if seen_at.is_some_and(|at| i >= at + MORE_BINDS) {
            break;
        }
    }
    assert!(
        seen_at.is_some(),
        "the racer was refused fewer than {SEEN_AFTER} times in {MAX_BINDS} binds: it never \
         saw the socket file, so this run proves nothing"
    );
    drop(child.child().stdin.take());
    let result = next("RACER RESULT");
    assert!(child.wait_with_output().status.success());
    result
}

/// Races a `nobody` process against `bind`, which binds and drops a mode-0600 socket at the
/// path it is given, in a directory the racer may search (so only the socket file's own mode
/// refuses it) and under a umask of 0: the racer is refused every time it finds the file.
fn never_admitted(role: &str, bind: impl Fn(&Path)) {
    let dir = tempdir();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("app.sock");
    let _umask = Umask::set(0);
    let result = race(role, &path, || bind(&path));
    assert!(result.contains(" admitted=0 "), "{result}");
    assert!(result.ends_with(" other=0"), "{result}");
    assert_eq!(entries(dir.path()), Default::default());
}

#[test]
#[serial]
fn no_instant_with_wider_permissions_for_a_listener() {
    if root_or_skip("no_instant_with_wider_permissions_for_a_listener") {
        never_admitted("stream", |path| drop(UnixListener::bind(path).unwrap()));
    }
}

#[test]
#[serial]
fn no_instant_with_wider_permissions_for_a_datagram_socket() {
    if root_or_skip("no_instant_with_wider_permissions_for_a_datagram_socket") {
        never_admitted("datagram", |path| drop(UnixDatagram::bind(path).unwrap()));
    }
}

/// A umask of 077 would make a socket bound with mode 0666 appear as 0600; it is widened to
/// exactly 0666 before `bind_with_mode` returns (for a listener, before it listens).
#[test]
#[serial]
fn mode_is_exact_under_a_narrowing_umask() {
    let dir = tempdir();
    let _umask = Umask::set(0o077);
    let path = dir.path().join("app.sock");
    let listener = UnixListener::bind_with_mode(&path, 0o666).unwrap();
    assert_eq!(mode_of(&path), 0o666);
    let client = thread::spawn({
        let path = path.clone();
        move || UnixStream::connect(path).map(drop)
    });
    listener.accept().unwrap();
    client.join().unwrap().unwrap();

    let dpath = dir.path().join("d.sock");
    let socket = UnixDatagram::bind_with_mode(&dpath, 0o620).unwrap();
    assert_eq!(mode_of(&dpath), 0o620);
    drop((listener, socket));
    assert_eq!(entries(dir.path()), Default::default());
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A mode with bits beyond the permission bits (a file type, set-id or sticky bits) is refused
/// as `InvalidInput` before anything is made, by every socket type; it once made the file and
/// then reported a mode mismatch, or bound a set-id, world-writable socket for `0o7777`.
#[test]
#[serial]
fn a_mode_beyond_the_permission_bits_is_refused_before_anything_is_made() {
    let dir = tempdir();
    let path = dir.path().join("m.sock");
    for mode in [u32::MAX, 0o100_600, 0o7777, 0o1000] {
        let errs = [
            UnixListener::bind_with_mode(&path, mode).map(drop),
            UnixDatagram::bind_with_mode(&path, mode).map(drop),
            msgsock::UnixSeqpacketListener::bind_with_mode(&path, mode).map(drop),
        ];
        for err in errs {
            let err = err.unwrap_err();
            assert_eq!(
                err.kind(),
                io::ErrorKind::InvalidInput,
                "{mode:#o}: {err:?}"
            );
            assert!(
                err.to_string().contains("permission bits"),
                "{mode:#o}: {err}"
            );
        }
        assert_eq!(entries(dir.path()), Default::default(), "{mode:#o}");
    }
}
