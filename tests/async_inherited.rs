//! Inherited sockets on tokio (feature `tokio`): `fd:N` and `systemd:` endpoints through
//! `msgsock::tokio::{bind, bind_datagram, connect}`, and the async child side of
//! `CommandExt::spawn_connected`, `msgsock::tokio::child_connection`. As in `tests/inherited.rs`,
//! each test re-runs this binary as the child, which plays its role on a tokio runtime.

mod common;
mod inheriting;

use std::future::Future;
use std::os::fd::{AsFd, OwnedFd};

use msgsock::tokio::AsyncAnyConnection;
use msgsock::{CommandExt, Endpoint, Error, InheritError};
use tokio::time::timeout;

use crate::common::{guard_timeouts, tempdir, ChildGuard, GUARD_TIMEOUT};
use crate::inheriting::*;

/// The child half of the tests below; ignored in a normal run, started by them.
#[test]
#[ignore = "the child process of the async inherited-socket tests; they run it"]
fn child_process() {
    let role = std::env::var(ROLE_VAR).unwrap_or_else(|_| {
        panic!("{ROLE_VAR} is not set: this test is run by the async inherited-socket tests")
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(play(&role));
    println!("{DONE}");
}

/// `step`, failing the child instead of hanging if it never finishes.
async fn guarded<T>(step: impl Future<Output = T>) -> T {
    timeout(GUARD_TIMEOUT, step)
        .await
        .expect("a step timed out")
}

/// Answers each message with it reversed, until `bye` or the peer's close.
async fn echo_reversed(conn: &mut AsyncAnyConnection) {
    while let Some(msg) = guarded(conn.recv()).await.unwrap() {
        if msg == b"bye" {
            break;
        }
        guarded(conn.send(&reversed(&msg))).await.unwrap();
    }
}

/// Non-blocking, as tokio needs its sockets to be: a blocking one would stall the runtime.
fn assert_nonblocking(fd: std::os::fd::BorrowedFd<'_>) {
    let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).unwrap();
    assert_ne!(
        flags & nix::libc::O_NONBLOCK,
        0,
        "an async socket is non-blocking"
    );
}

async fn play(role: &str) {
    match role {
        "pair-echo" => {
            let mut conn = msgsock::tokio::child_connection()
                .await
                .expect("the inherited pair");
            assert!(
                std::env::var_os(msgsock::child::FD_VAR).is_none(),
                "MSGSOCK_FD is cleared once taken"
            );
            assert_close_on_exec(conn.as_fd());
            assert_nonblocking(conn.as_fd());
            assert!(!conn.is_datagram());
            echo_reversed(&mut conn).await;
        }
        "pair-errors" => {
            // Each way MSGSOCK_FD can be wrong is the blocking side's typed error; fd 3 is a
            // regular file.
            use msgsock::child::FD_VAR;
            for (value, want) in [
                (None, InheritError::MissingVar { var: FD_VAR }),
                (Some("3"), InheritError::NotASocket { fd: 3 }),
                (Some("900"), InheritError::NotOpen { fd: 900 }),
            ] {
                match value {
                    Some(v) => std::env::set_var(FD_VAR, v),
                    None => std::env::remove_var(FD_VAR),
                }
                let err = msgsock::tokio::child_connection().await.unwrap_err();
                assert!(std::env::var_os(FD_VAR).is_none(), "cleared even on error");
                match err {
                    Error::Inherit(e) => assert_eq!(e, want),
                    other => panic!("want {want:?}, got {other:?}"),
                }
            }
        }
        "fd-listener" => {
            let endpoint: Endpoint = "fd:3".parse().unwrap();
            let listener = msgsock::tokio::bind(&endpoint)
                .await
                .expect("adopt the listener on fd 3");
            assert_close_on_exec(listener.as_fd());
            assert_nonblocking(listener.as_fd());
            let again = msgsock::tokio::connect(&endpoint).await.unwrap_err();
            assert!(
                matches!(again, Error::Inherit(InheritError::AlreadyTaken { fd: 3 })),
                "{again:?}"
            );
            let mut conn = guarded(listener.accept()).await.unwrap();
            echo_reversed(&mut conn).await;
        }
        "fd-stream" => {
            let mut conn = msgsock::tokio::connect(&"fd:3".parse().unwrap())
                .await
                .expect("adopt the stream on fd 3");
            assert_close_on_exec(conn.as_fd());
            assert_nonblocking(conn.as_fd());
            assert!(!conn.is_datagram());
            echo_reversed(&mut conn).await;
        }
        "fd-datagram" => {
            let mut conn = msgsock::tokio::connect(&"fd:3".parse().unwrap())
                .await
                .expect("adopt the datagram socket on fd 3");
            assert!(conn.is_datagram());
            assert_nonblocking(conn.as_fd());
            let msg = guarded(conn.recv()).await.unwrap().expect("a datagram");
            guarded(conn.send(&reversed(&msg))).await.unwrap();
        }
        "fd-bind-datagram" => {
            let socket = msgsock::tokio::bind_datagram(&"fd:3".parse().unwrap())
                .await
                .expect("adopt the datagram socket on fd 3");
            assert_close_on_exec(socket.as_fd());
            let mut conn = AsyncAnyConnection::from(socket);
            let msg = guarded(conn.recv()).await.unwrap().expect("a datagram");
            guarded(conn.send(&reversed(&msg))).await.unwrap();
        }
        "fd-wrong-kind" => {
            // fd 3 is a connected stream: not a listener, and not a datagram socket.
            let err = msgsock::tokio::bind(&"fd:3".parse().unwrap())
                .await
                .unwrap_err();
            assert!(
                matches!(err, Error::Inherit(InheritError::NotListening { fd: 3 })),
                "{err:?}"
            );
            let err = msgsock::tokio::bind_datagram(&"fd:3".parse().unwrap())
                .await
                .unwrap_err();
            assert!(
                matches!(err, Error::Inherit(InheritError::NotDatagram { fd: 3 })),
                "{err:?}"
            );
        }
        "systemd" => {
            let listener = msgsock::tokio::bind(&"systemd:control".parse().unwrap())
                .await
                .expect("systemd:control");
            for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
                assert!(std::env::var_os(var).is_none(), "{var} is cleared");
            }
            assert_close_on_exec(listener.as_fd());
            assert_nonblocking(listener.as_fd());
            // The first passed socket is `systemd:` (fd 3, `web`); the async listener serves
            // its own descriptor of the socket, so compare the sockets, not the numbers.
            let first = msgsock::tokio::bind(&"systemd:".parse().unwrap())
                .await
                .expect("systemd:");
            assert!(same_socket(first.as_fd(), 3), "systemd: is fd 3");
            assert!(same_socket(listener.as_fd(), 4), "systemd:control is fd 4");
            let missing = msgsock::tokio::bind(&"systemd:nope".parse().unwrap())
                .await
                .unwrap_err();
            assert!(
                matches!(&missing, Error::Inherit(InheritError::NoSuchName { name, .. }) if name == "nope"),
                "{missing:?}"
            );
            let mut conn = guarded(listener.accept()).await.unwrap();
            echo_reversed(&mut conn).await;
        }
        other => panic!("unknown role {other:?}"),
    }
}

/// Whether `fd` is the socket on descriptor `number` (the same inode), while `number` is open.
fn same_socket(fd: std::os::fd::BorrowedFd<'_>, number: i32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ours = nix::sys::stat::fstat(fd).unwrap().st_ino;
    std::fs::metadata(format!("/proc/self/fd/{number}")).is_ok_and(|m| m.ino() == ours)
}

#[test]
fn an_async_child_talks_over_the_inherited_pair() {
    talk_over_spawned_pair("pair-echo");
}

#[test]
fn async_child_connection_reports_typed_errors() {
    let dir = tempdir();
    let file = std::fs::File::create(dir.path().join("not-a-socket")).unwrap();
    run_with_socket("pair-errors", OwnedFd::from(file));
}

#[test]
fn async_fd_endpoint_adopts_an_inherited_tcp_listener() {
    serve_through_passed_tcp_listener("fd-listener");
}

#[test]
fn async_fd_endpoint_connects_an_inherited_stream() {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut cmd = child_command("fd-stream");
    cmd.pass_socket(OwnedFd::from(theirs)).unwrap();
    let child = ChildGuard::new(cmd.spawn().unwrap());
    drop(cmd);
    let mut conn = msgsock::Connection::new(msgsock::UnixStream::from(ours));
    guard_timeouts(&conn);
    conn.send(b"stream").unwrap();
    assert_eq!(conn.recv().unwrap().as_deref(), Some(&b"maerts"[..]));
    drop(conn);
    assert_child_done(child);
}

#[test]
fn async_fd_endpoint_wraps_an_inherited_datagram_socket() {
    // Through `connect` (a connected socket) and `bind_datagram` alike.
    datagram_through_passed_socket("fd-datagram");
    datagram_through_passed_socket("fd-bind-datagram");
}

#[test]
fn async_fd_endpoint_refuses_the_wrong_kind_of_socket() {
    let (_ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    run_with_socket("fd-wrong-kind", OwnedFd::from(theirs));
}

#[test]
fn async_systemd_activation_hands_over_named_sockets() {
    serve_through_systemd_sockets("systemd");
}
