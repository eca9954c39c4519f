//! Stopping a listener from another thread with its `ShutdownHandle`: a thread blocked in
//! `accept` returns, `incoming()` ends, and nothing connects through the socket's path or port
//! to wake it.

mod common;

use std::fs;
use std::io;
use std::sync::mpsc;
use std::thread;

use msgsock::{AnyListener, Error, ShutdownHandle, TcpListener, UnixListener, UnixStream};
use nix::libc;
use nix::unistd::gettid;

use crate::common::{assert_send, assert_sync, blocked_in, tempdir, GUARD_TIMEOUT};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The calls a thread waiting for a connection is blocked in.
#[cfg(target_arch = "x86_64")]
const WAITS: [libc::c_long; 4] = [
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_poll,
    libc::SYS_ppoll,
];
#[cfg(not(target_arch = "x86_64"))]
const WAITS: [libc::c_long; 3] = [libc::SYS_accept, libc::SYS_accept4, libc::SYS_ppoll];

/// Runs `accept_all` on a thread, uses `handle` once that thread waits in the kernel, and
/// returns what `accept_all` returned; fails the test if it does not return.
fn shut_down_while_blocked<R: Send + 'static>(
    handle: &ShutdownHandle,
    accept_all: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (tid_tx, tid_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    thread::spawn(move || {
        tid_tx.send(gettid()).unwrap();
        let _ = done_tx.send(accept_all());
    });
    let tid = tid_rx.recv().expect("the acceptor started");
    let deadline = std::time::Instant::now() + GUARD_TIMEOUT;
    while !blocked_in(tid).is_some_and(|nr| WAITS.contains(&nr)) {
        assert!(
            std::time::Instant::now() < deadline,
            "the acceptor never blocked"
        );
        thread::yield_now();
    }
    handle.shutdown();
    done_rx
        .recv_timeout(GUARD_TIMEOUT)
        .expect("accept returned after shutdown")
}

#[test]
fn the_handle_is_send_sync_and_clone() {
    assert_send::<ShutdownHandle>();
    assert_sync::<ShutdownHandle>();
    fn clone<T: Clone>() {}
    clone::<ShutdownHandle>();
}

/// The original's file is moved aside and a successor listens at the path: the wake-up must not
/// reach the successor, and dropping the original must leave the successor's file alone.
#[test]
fn unix_incoming_ends_without_anything_going_through_the_path() -> TestResult {
    let dir = tempdir();
    let path = dir.path().join("s.sock");
    let listener = UnixListener::bind(&path)?;
    let handle = listener.shutdown_handle()?;
    fs::rename(&path, dir.path().join("moved.sock"))?;
    fs::remove_file(dir.path().join("s.sock.lock"))?;
    let successor = UnixListener::bind(&path)?;

    let (accepted, listener) =
        shut_down_while_blocked(&handle, move || (listener.incoming().count(), listener));
    assert_eq!(accepted, 0, "incoming() ended without yielding anything");
    assert!(handle.is_shutdown());

    successor.set_nonblocking(true)?;
    match successor.accept() {
        Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
        other => panic!("the successor was reached: {other:?}"),
    }
    drop(listener);
    assert!(path.exists(), "the successor's file is still there");
    Ok(())
}

#[test]
fn unix_accept_after_shutdown_is_typed_even_with_a_client_waiting() -> TestResult {
    let dir = tempdir();
    let listener = UnixListener::bind(dir.path().join("s.sock"))?;
    let handle = listener.shutdown_handle()?;
    let _waiting = UnixStream::connect(listener.path())?;
    handle.clone().shutdown();
    assert!(matches!(listener.accept(), Err(Error::Shutdown)));
    assert!(listener.incoming().next().is_none());
    Ok(())
}

#[test]
fn tcp_incoming_ends_without_a_connection() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0".parse()?)?;
    let handle = listener.shutdown_handle()?;
    let (accepted, listener) =
        shut_down_while_blocked(&handle, move || (listener.incoming().count(), listener));
    assert_eq!(accepted, 0, "incoming() ended without yielding anything");
    assert!(matches!(listener.accept(), Err(Error::Shutdown)));
    Ok(())
}

#[test]
fn any_listener_accept_returns_shutdown_on_both_families() -> TestResult {
    let dir = tempdir();
    let unix = format!("unix:{}", dir.path().join("s.sock").display());
    for endpoint in ["tcp:127.0.0.1:0", unix.as_str()] {
        let listener = msgsock::bind(&endpoint.parse()?)?;
        let handle = listener.shutdown_handle()?;
        let (result, listener): (_, AnyListener) =
            shut_down_while_blocked(&handle, move || (listener.accept().map(drop), listener));
        assert!(
            matches!(result, Err(Error::Shutdown)),
            "{endpoint}: {result:?}"
        );
        assert_eq!(listener.incoming().count(), 0, "{endpoint}");
    }
    Ok(())
}

/// Taking a handle changes nothing a caller sees until it is used: connections are accepted,
/// blocking and usable, and non-blocking mode still means `WouldBlock` at once.
#[test]
fn a_listener_with_a_handle_serves_as_before() -> TestResult {
    let listener = msgsock::bind(&"tcp:127.0.0.1:0".parse()?)?;
    let handle = listener.shutdown_handle()?;
    let endpoint = listener.local_endpoint()?;
    let client = thread::spawn(move || -> msgsock::Result<()> {
        let mut conn = msgsock::connect(&endpoint)?;
        conn.send(b"hello")?;
        assert_eq!(conn.recv()?.as_deref(), Some(&b"back"[..]));
        Ok(())
    });
    let mut conn = listener.accept()?;
    conn.set_read_timeout(Some(GUARD_TIMEOUT))?;
    assert_eq!(conn.recv()?.as_deref(), Some(&b"hello"[..]));
    conn.send(b"back")?;
    client.join().unwrap()?;

    listener.set_nonblocking(true)?;
    match listener.accept() {
        Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
        other => panic!("expected WouldBlock, got {other:?}"),
    }
    listener.set_nonblocking(false)?;
    let (result, _listener) =
        shut_down_while_blocked(&handle, move || (listener.accept().map(drop), listener));
    assert!(matches!(result, Err(Error::Shutdown)), "{result:?}");
    Ok(())
}
