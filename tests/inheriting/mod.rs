//! Starting this test binary again as a child that inherits sockets, shared by the blocking
//! (`tests/inherited.rs`) and async (`tests/async_inherited.rs`) tests: the child runs the
//! ignored `child_process` test with its role in an environment variable, plays its part and
//! prints `CHILD DONE`.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};

use msgsock::{CommandExt, Endpoint, TcpListener, UnixDatagram};

use crate::common::{guard_timeouts, tempdir, ChildGuard, GUARD_TIMEOUT};

pub const ROLE_VAR: &str = "MSGSOCK_TEST_CHILD_ROLE";
pub use crate::common::{assert_child_done, DONE};

/// `msg` backwards: what a child answers, so an echo of the untouched message fails.
pub fn reversed(msg: &[u8]) -> Vec<u8> {
    msg.iter().rev().copied().collect()
}

/// Asserts that an adopted descriptor is close-on-exec, so a child of the child does not inherit it.
pub fn assert_close_on_exec(fd: std::os::fd::BorrowedFd<'_>) {
    let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).unwrap();
    assert_ne!(
        flags & nix::libc::FD_CLOEXEC,
        0,
        "an adopted fd is close-on-exec"
    );
}

/// This test binary as the child with `role`, its output piped.
pub fn child_command(role: &str) -> Command {
    let mut cmd = crate::common::this_test_as_child("child_process");
    cmd.env(ROLE_VAR, role);
    cmd
}

/// Starts the child the way systemd does: the listening sockets on fds 3 and 4, `LISTEN_FDS`,
/// `LISTEN_FDNAMES`, and `LISTEN_PID` set to the child's own pid by a shell that then `exec`s
/// it (the parent cannot know the pid before the fork).
pub fn systemd_child(role: &str, sockets: [OwnedFd; 2], listen_pid: Option<&str>) -> ChildGuard {
    systemd_child_named(role, sockets, "web:control", listen_pid)
}

/// As [`systemd_child`], with the sockets named by `names` (`LISTEN_FDNAMES`).
pub fn systemd_child_named(
    role: &str,
    sockets: [OwnedFd; 2],
    names: &str,
    listen_pid: Option<&str>,
) -> ChildGuard {
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
        .env("LISTEN_FDNAMES", names)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(pid) = listen_pid {
        cmd.env("LISTEN_PID", pid);
    }
    let [first, second] = sockets;
    cmd.pass_socket_as(first, 3)
        .unwrap()
        .pass_socket_as(second, 4)
        .unwrap();
    // Only LISTEN_* tells this child about its sockets.
    cmd.env_remove(msgsock::child::FD_VAR);
    ChildGuard::new(cmd.spawn().unwrap())
}

/// The parent of `role`, spawned with [`CommandExt::spawn_connected`]: each message comes back
/// reversed, and after `bye` the child's exit is the parent's end of stream (the parent holds
/// no copy of the child's end).
pub fn talk_over_spawned_pair(role: &str) {
    let mut cmd = child_command(role);
    let (child, mut conn) = cmd.spawn_connected().expect("spawn with a socket pair");
    let child = ChildGuard::new(child);
    guard_timeouts(&conn);
    for msg in [&b"hello"[..], b"", &[7u8; 100_000]] {
        conn.send(msg).unwrap();
        assert_eq!(conn.recv().unwrap(), Some(reversed(msg)));
    }
    conn.send(b"bye").unwrap();
    assert_eq!(conn.recv().unwrap(), None);
    assert_child_done(child);
}

/// Runs `role` with `socket` on descriptor 3 (and `MSGSOCK_FD=3`), for a child that checks
/// what it is given by itself.
pub fn run_with_socket(role: &str, socket: OwnedFd) {
    let mut cmd = child_command(role);
    cmd.pass_socket(socket).unwrap();
    assert_child_done(ChildGuard::new(cmd.spawn().unwrap()));
}

/// The parent of `role`, which adopts a TCP listener passed on descriptor 3 and answers one
/// client's message reversed.
pub fn serve_through_passed_tcp_listener(role: &str) {
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cmd = child_command(role);
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

/// The parent of `role`, which adopts one end of a Unix datagram pair on descriptor 3 and
/// answers one datagram reversed.
pub fn datagram_through_passed_socket(role: &str) {
    let (ours, theirs) = std::os::unix::net::UnixDatagram::pair().unwrap();
    let mut cmd = child_command(role);
    cmd.pass_socket(OwnedFd::from(theirs)).unwrap();
    let child = ChildGuard::new(cmd.spawn().unwrap());
    drop(cmd);
    let ours = UnixDatagram::from(ours);
    ours.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
    ours.send(b"datagram").unwrap();
    assert_eq!(ours.recv().unwrap(), b"margatad", "{role}");
    assert_child_done(child);
}

/// The parent of `role`, started as systemd starts a service with the sockets `web` (fd 3) and
/// `control` (fd 4): the child answers a message to `control` reversed.
pub fn serve_through_systemd_sockets(role: &str) {
    let dir = tempdir();
    let web = msgsock::UnixListener::bind(dir.path().join("web.sock")).unwrap();
    let control_path = dir.path().join("control.sock");
    let control = msgsock::UnixListener::bind(&control_path).unwrap();
    let child = systemd_child(role, [web.into(), control.into()], None);
    let mut conn = msgsock::connect(&Endpoint::Unix(control_path)).unwrap();
    guard_timeouts(&conn);
    conn.send(b"activated").unwrap();
    assert_eq!(conn.recv().unwrap().as_deref(), Some(&b"detavitca"[..]));
    drop(conn);
    assert_child_done(child);
}

/// Whether descriptor `fd` of this process is in non-blocking mode, from the `flags` line of
/// `/proc/self/fdinfo` (`O_NONBLOCK` is 04000).
pub fn is_nonblocking(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    use std::os::fd::AsRawFd;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
    let flags = info
        .lines()
        .find_map(|line| line.strip_prefix("flags:"))
        .expect("a flags line");
    u32::from_str_radix(flags.trim(), 8).unwrap() & 0o4000 != 0
}
