//! Sockets a child process inherits: a connected pair from `CommandExt::spawn_connected`, `fd:N`
//! endpoints, and systemd socket activation. Each test re-runs this test binary as the child
//! (`--exact child_process --include-ignored`), naming the child's role in an environment
//! variable; the child plays its part and prints `CHILD DONE`.

mod common;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Command, Output, Stdio};

use msgsock::{CommandExt, Endpoint, Error, InheritError, TcpListener, UnixDatagram};

use crate::common::{describe, guard_timeouts, tempdir, ChildGuard};

const ROLE_VAR: &str = "MSGSOCK_TEST_CHILD_ROLE";
/// Printed by the child when it has done its part, so a filter that ran no test is caught.
const DONE: &str = "CHILD DONE";

/// The child half of the tests below; ignored in a normal run, started by them.
#[test]
#[ignore = "the child process of the inherited-socket tests; they run it"]
fn child_process() {
    let role = std::env::var(ROLE_VAR).unwrap_or_else(|_| {
        panic!("{ROLE_VAR} is not set: this test is run by the inherited-socket tests")
    });
    match role.as_str() {
        "pair-echo" => {
            let mut conn = msgsock::child::connection().expect("the inherited pair");
            assert!(
                std::env::var_os(msgsock::child::FD_VAR).is_none(),
                "MSGSOCK_FD is cleared once taken"
            );
            assert_close_on_exec(conn.as_fd());
            guard_timeouts(&conn);
            // Until "bye" (then exit, closing the child's end) or the parent's close.
            while let Some(msg) = conn.recv().unwrap() {
                if msg == b"bye" {
                    break;
                }
                conn.send(&reversed(&msg)).unwrap();
            }
        }
        "pair-errors" => pair_errors(),
        "fd-listener" => {
            let endpoint: Endpoint = "fd:3".parse().unwrap();
            let listener = msgsock::bind(&endpoint).expect("adopt the listener on fd 3");
            assert_close_on_exec(listener.as_fd());
            // The same number cannot be adopted twice: a second owner would close it under us.
            let again = msgsock::connect(&endpoint).unwrap_err();
            assert!(
                matches!(again, Error::Inherit(InheritError::AlreadyTaken { fd: 3 })),
                "{again:?}"
            );
            let mut conn = listener.accept().unwrap();
            guard_timeouts(&conn);
            let msg = conn.recv().unwrap().expect("a message");
            conn.send(&reversed(&msg)).unwrap();
            assert_eq!(conn.recv().unwrap(), None);
        }
        "fd-datagram" => {
            let mut conn = msgsock::connect(&"fd:3".parse().unwrap()).expect("adopt fd 3");
            assert!(conn.is_datagram());
            guard_timeouts(&conn);
            let msg = conn.recv().unwrap().expect("a datagram");
            conn.send(&reversed(&msg)).unwrap();
        }
        "fd-not-listening" => {
            // A connected stream is not a listener; nothing else changes hands.
            let err = msgsock::bind(&"fd:3".parse().unwrap()).unwrap_err();
            assert!(
                matches!(err, Error::Inherit(InheritError::NotListening { fd: 3 })),
                "{err:?}"
            );
        }
        "systemd" => {
            let listener =
                msgsock::bind(&"systemd:control".parse().unwrap()).expect("systemd:control");
            for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
                assert!(std::env::var_os(var).is_none(), "{var} is cleared");
            }
            assert_close_on_exec(listener.as_fd());
            // The first passed socket is `systemd:`; fd 3 is `web`, fd 4 `control`.
            let first = msgsock::bind(&"systemd:".parse().unwrap()).expect("systemd:");
            assert_eq!(first.as_raw_fd(), 3);
            assert_eq!(listener.as_raw_fd(), 4);
            let missing = msgsock::bind(&"systemd:nope".parse().unwrap()).unwrap_err();
            assert!(
                matches!(&missing, Error::Inherit(InheritError::NoSuchName { name, .. }) if name == "nope"),
                "{missing:?}"
            );
            let mut conn = listener.accept().unwrap();
            guard_timeouts(&conn);
            let msg = conn.recv().unwrap().expect("a message");
            conn.send(&reversed(&msg)).unwrap();
        }
        "systemd-other-pid" => {
            let err = msgsock::bind(&"systemd:".parse().unwrap()).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Inherit(InheritError::OtherProcess { listen_pid: 1, .. })
                ),
                "{err:?}"
            );
        }
        other => panic!("unknown role {other:?}"),
    }
    println!("{DONE}");
}

/// In the child: each way `MSGSOCK_FD` can be wrong is its own typed error. The parent passed
/// a regular file on fd 3.
fn pair_errors() {
    use msgsock::child::{connection, FD_VAR};
    let err_of = |value: Option<&str>| {
        match value {
            Some(v) => std::env::set_var(FD_VAR, v),
            None => std::env::remove_var(FD_VAR),
        }
        let err = connection().unwrap_err();
        assert!(std::env::var_os(FD_VAR).is_none(), "cleared even on error");
        match err {
            Error::Inherit(e) => e,
            other => panic!("want an inherit error, got {other:?}"),
        }
    };
    assert_eq!(err_of(None), InheritError::MissingVar { var: FD_VAR });
    for garbled in ["", "x3", "+3", "-1", "99999999999"] {
        assert!(
            matches!(err_of(Some(garbled)), InheritError::InvalidVar { value, .. } if value == garbled),
            "{garbled:?}"
        );
    }
    assert_eq!(err_of(Some("900")), InheritError::NotOpen { fd: 900 });
    assert_eq!(err_of(Some("3")), InheritError::NotASocket { fd: 3 });
    // A socket this process made itself is close-on-exec: it was not inherited, and something
    // here owns it.
    let (own, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let own_fd = own.as_raw_fd().to_string();
    assert_eq!(
        err_of(Some(&own_fd)),
        InheritError::NotInherited {
            fd: own.as_raw_fd()
        }
    );
    // fd:N checks the same way.
    let err = msgsock::connect(&format!("fd:{own_fd}").parse().unwrap()).unwrap_err();
    assert!(
        matches!(err, Error::Inherit(InheritError::NotInherited { .. })),
        "{err:?}"
    );
    let err = msgsock::connect(&"fd:900".parse().unwrap()).unwrap_err();
    assert!(
        matches!(err, Error::Inherit(InheritError::NotOpen { fd: 900 })),
        "{err:?}"
    );
}

fn reversed(msg: &[u8]) -> Vec<u8> {
    msg.iter().rev().copied().collect()
}

fn assert_close_on_exec(fd: std::os::fd::BorrowedFd<'_>) {
    let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).unwrap();
    assert_ne!(
        flags & nix::libc::FD_CLOEXEC,
        0,
        "an adopted fd is close-on-exec"
    );
}

/// This test binary as the child with `role`, its output piped.
fn child_command(role: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args([
        "--exact",
        "child_process",
        "--include-ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ROLE_VAR, role)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

/// Waits for the child and checks that it ran its role and passed.
fn assert_child_done(child: ChildGuard) -> Output {
    let output = child.wait_with_output();
    assert!(
        output.status.success(),
        "child failed:\n{}",
        describe(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(DONE),
        "the child test did not run:\n{}",
        describe(&output)
    );
    output
}

/// The inode of a socket, as `/proc/PID/fd` shows it (`socket:[INODE]`).
fn socket_inode(fd: std::os::fd::BorrowedFd<'_>) -> u64 {
    nix::sys::stat::fstat(fd).unwrap().st_ino
}

#[test]
fn a_spawned_child_talks_over_the_inherited_pair() {
    let mut cmd = child_command("pair-echo");
    let (child, mut conn) = cmd.spawn_connected().expect("spawn with a socket pair");
    let mut child = ChildGuard::new(child);
    guard_timeouts(&conn);
    for msg in [&b"hello"[..], b"", &[7u8; 100_000]] {
        conn.send(msg).unwrap();
        assert_eq!(conn.recv().unwrap(), Some(reversed(msg)));
    }
    // The parent holds no copy of the child's end: the child exiting is our end of stream
    // (with a copy left here, this recv would time out instead).
    conn.send(b"bye").unwrap();
    assert_eq!(conn.recv().unwrap(), None);
    assert!(child.child().wait().unwrap().success());
}

#[test]
fn the_passed_socket_reaches_only_its_own_child() {
    // While a command holding a socket is being spawned, other threads spawn plain children:
    // none of them may see the socket (it is close-on-exec in the parent throughout).
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let inode = socket_inode(theirs.as_fd());
    let mut cmd = child_command("pair-echo");
    cmd.pass_socket(OwnedFd::from(theirs)).unwrap();
    let others: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                Command::new("sh")
                    .args([
                        "-c",
                        "for f in /proc/$$/fd/*; do stat -L -c %i \"$f\"; done; exit 0",
                    ])
                    .stderr(Stdio::null())
                    .output()
                    .unwrap()
            })
        })
        .collect();
    let child = ChildGuard::new(cmd.spawn().unwrap());
    drop(cmd);
    let mut conn = msgsock::Connection::new(msgsock::UnixStream::from(ours));
    guard_timeouts(&conn);
    conn.send(b"ping").unwrap();
    assert_eq!(conn.recv().unwrap().as_deref(), Some(&b"gnip"[..]));
    drop(conn);
    assert_child_done(child);
    for other in others {
        let out = other.join().unwrap();
        let listed = String::from_utf8_lossy(&out.stdout);
        assert!(
            listed.lines().count() >= 3,
            "the lister saw its stdio: {listed}"
        );
        assert!(
            !listed.lines().any(|l| l.trim() == inode.to_string()),
            "another child inherited the socket:\n{listed}"
        );
    }
}

#[test]
fn a_missing_garbled_closed_or_non_socket_fd_is_a_typed_error() {
    let dir = tempdir();
    let file = std::fs::File::create(dir.path().join("not-a-socket")).unwrap();
    let mut cmd = child_command("pair-errors");
    cmd.pass_socket(OwnedFd::from(file)).unwrap();
    assert_child_done(ChildGuard::new(cmd.spawn().unwrap()));
}

#[test]
fn fd_endpoint_adopts_an_inherited_tcp_listener() {
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cmd = child_command("fd-listener");
    cmd.pass_socket(OwnedFd::from(listener)).unwrap();
    let child = ChildGuard::new(cmd.spawn().unwrap());
    // The parent's copy goes with the command: only the child accepts.
    drop(cmd);
    let mut conn = msgsock::connect(&Endpoint::Tcp(addr)).unwrap();
    guard_timeouts(&conn);
    conn.send(b"over tcp").unwrap();
    assert_eq!(conn.recv().unwrap().as_deref(), Some(&b"pct revo"[..]));
    drop(conn);
    assert_child_done(child);
}

#[test]
fn fd_endpoint_wraps_an_inherited_datagram_socket() {
    let (ours, theirs) = std::os::unix::net::UnixDatagram::pair().unwrap();
    let mut cmd = child_command("fd-datagram");
    cmd.pass_socket(OwnedFd::from(theirs)).unwrap();
    let child = ChildGuard::new(cmd.spawn().unwrap());
    drop(cmd);
    let ours = UnixDatagram::from(ours);
    ours.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    ours.send(b"datagram").unwrap();
    assert_eq!(ours.recv().unwrap(), b"margatad");
    assert_child_done(child);
}

#[test]
fn fd_endpoint_refuses_to_bind_a_connected_socket() {
    let (_ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut cmd = child_command("fd-not-listening");
    cmd.pass_socket(OwnedFd::from(theirs)).unwrap();
    assert_child_done(ChildGuard::new(cmd.spawn().unwrap()));
}

/// Starts the child the way systemd does: the listening sockets on fds 3 and 4, `LISTEN_FDS`,
/// `LISTEN_FDNAMES`, and `LISTEN_PID` set to the child's own pid by a shell that then `exec`s
/// it (the parent cannot know the pid before the fork).
fn systemd_child(role: &str, sockets: [OwnedFd; 2], listen_pid: Option<&str>) -> ChildGuard {
    let inner = child_command(role);
    let mut cmd = Command::new("sh");
    let script = match listen_pid {
        None => "LISTEN_PID=$$; export LISTEN_PID; exec \"$@\"",
        Some(_) => "exec \"$@\"",
    };
    cmd.arg("-c")
        .arg(script)
        .arg("sh")
        .arg(inner.get_program())
        .args(inner.get_args())
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("LISTEN_FDS", "2")
        .env("LISTEN_FDNAMES", "web:control")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(pid) = listen_pid {
        cmd.env("LISTEN_PID", pid);
    }
    let [web, control] = sockets;
    cmd.pass_socket_as(web, 3)
        .unwrap()
        .pass_socket_as(control, 4)
        .unwrap();
    // Only LISTEN_* tells this child about its sockets.
    cmd.env_remove(msgsock::child::FD_VAR);
    ChildGuard::new(cmd.spawn().unwrap())
}

#[test]
fn systemd_activation_hands_over_named_sockets() {
    let dir = tempdir();
    let web = msgsock::UnixListener::bind(dir.path().join("web.sock")).unwrap();
    let control_path = dir.path().join("control.sock");
    let control = msgsock::UnixListener::bind(&control_path).unwrap();
    let child = systemd_child("systemd", [web.into(), control.into()], None);
    let mut conn = msgsock::connect(&Endpoint::Unix(control_path)).unwrap();
    guard_timeouts(&conn);
    conn.send(b"activated").unwrap();
    assert_eq!(conn.recv().unwrap().as_deref(), Some(&b"detavitca"[..]));
    assert_child_done(child);
}

#[test]
fn systemd_sockets_for_another_pid_are_refused() {
    let dir = tempdir();
    let a = msgsock::UnixListener::bind(dir.path().join("a.sock")).unwrap();
    let b = msgsock::UnixListener::bind(dir.path().join("b.sock")).unwrap();
    assert_child_done(systemd_child(
        "systemd-other-pid",
        [a.into(), b.into()],
        Some("1"),
    ));
}
