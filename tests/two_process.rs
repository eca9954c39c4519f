//! Messages between two real processes. The parent test binds, then re-runs this test binary
//! with `--exact child_process --include-ignored`, naming the child's role and the endpoint in
//! environment variables; the child connects and plays its part.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use msgsock::{Connection, Endpoint, Error, TcpTransport, Transport, UnixTransport};

use crate::common::{
    assert_child_done, describe, frame, guard_timeouts, pattern, ChildGuard, DONE,
};

const ROLE_VAR: &str = "MSGSOCK_TEST_CHILD_ROLE";
const ENDPOINT_VAR: &str = "MSGSOCK_TEST_CHILD_ENDPOINT";
/// Printed by the half-frame child once its half frame is written.
const HALF_WRITTEN: &str = "CHILD HALF FRAME WRITTEN";

/// The child half of the tests below; ignored in a normal run, started by them.
#[test]
#[ignore = "the child process of the two_process tests; they run it"]
fn child_process() {
    let role = std::env::var(ROLE_VAR).unwrap_or_else(|_| {
        panic!("{ROLE_VAR} is not set: this test is run by the two_process tests")
    });
    let endpoint: Endpoint = std::env::var(ENDPOINT_VAR)
        .expect(ENDPOINT_VAR)
        .parse()
        .expect("endpoint");
    let mut conn = msgsock::connect(&endpoint).expect("child connect");
    guard_timeouts(&conn);
    match role.as_str() {
        "echo-client" => {
            conn.send(format!("hello from pid {}", std::process::id()).as_bytes())
                .unwrap();
            for i in 0..100 {
                let msg = pattern(i * 1000, i as u8);
                conn.send(&msg).unwrap();
                assert_eq!(conn.recv().unwrap(), Some(reverse(&msg)), "reply {i}");
            }
            let big = conn.recv().unwrap().expect("the parent's big message");
            conn.send(&reverse(&big)).unwrap();
            println!("{DONE}");
        }
        "half-frame" => {
            conn.send(b"before").unwrap();
            let mut raw = conn.into_stream().expect("a stream endpoint").into_inner();
            raw.write_all(&frame(&pattern(1000, 1))[..500]).unwrap();
            println!("{HALF_WRITTEN}");
            std::io::stdout().flush().unwrap();
            // Wait here for SIGKILL.
            loop {
                thread::park();
            }
        }
        other => panic!("unknown role {other:?}"),
    }
}

fn reverse(msg: &[u8]) -> Vec<u8> {
    msg.iter().rev().copied().collect()
}

/// Starts this test binary as the child with `role`, connecting to `endpoint`.
fn spawn_child(role: &str, endpoint: &Endpoint) -> ChildGuard {
    let child = common::this_test_as_child("child_process")
        .env(ROLE_VAR, role)
        .env(ENDPOINT_VAR, endpoint.to_string())
        .spawn()
        .expect("spawn the child test process");
    ChildGuard::new(child)
}

/// Accepts the child's connection, failing at once if the child exits first.
fn accept_from_child<T: Transport>(
    listener: T::Listener,
    child: &mut ChildGuard,
) -> Connection<T::Stream> {
    let addr = T::local_addr(&listener).unwrap();
    let (tx, rx) = mpsc::channel();
    let acceptor = thread::spawn(move || {
        let _ = tx.send(T::accept(&listener));
    });
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(conn) => {
                acceptor.join().unwrap();
                let conn = conn.expect("accept");
                guard_timeouts(&conn);
                return conn;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(status) = child.try_wait() {
                    // Wake the acceptor so the listener (and its temp dir) is dropped.
                    let _ = T::connect(&addr);
                    let _ = acceptor.join();
                    panic!("the child exited ({status}) before connecting");
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("acceptor thread died"),
        }
    }
}

/// A child connects, sends its pid, gets 100 messages of up to 99 KB reversed, and reverses a
/// 2 MiB message from the parent; both sides check every byte and the child exits 0.
fn echo_across_processes<T: Transport>() {
    let listener = T::bind_ephemeral().unwrap();
    let endpoint = T::endpoint(&T::local_addr(&listener).unwrap());
    let mut child = spawn_child("echo-client", &endpoint);
    let mut conn = accept_from_child::<T>(listener, &mut child);

    let hello = conn.recv().unwrap().expect("hello");
    assert_eq!(
        String::from_utf8(hello).unwrap(),
        format!("hello from pid {}", child.child().id()),
        "the peer is the child process"
    );
    for i in 0..100 {
        let msg = conn.recv().unwrap().expect("a message");
        assert_eq!(msg, pattern(i * 1000, i as u8), "message {i}");
        conn.send(&reverse(&msg)).unwrap();
    }
    let big = pattern(2 << 20, 42);
    conn.send(&big).unwrap();
    assert_eq!(conn.recv().unwrap(), Some(reverse(&big)), "big reply");
    assert_eq!(
        conn.recv().unwrap(),
        None,
        "clean close when the child exits"
    );

    assert_child_done(child);
}

/// A child writes half a frame and is killed with SIGKILL: the parent gets the complete message
/// before it, then `UnexpectedEof` with the byte counts.
fn killed_mid_frame<T: Transport>() {
    let listener = T::bind_ephemeral().unwrap();
    let endpoint = T::endpoint(&T::local_addr(&listener).unwrap());
    let mut child = spawn_child("half-frame", &endpoint);
    let mut conn = accept_from_child::<T>(listener, &mut child);

    let stdout = child.child().stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            // libtest may print "test child_process ... " on the same line first.
            Some(Ok(line)) if line.contains(HALF_WRITTEN) => break,
            Some(Ok(_)) => {}
            _ => {
                let output = child.wait_with_output();
                panic!("the child ended before writing:\n{}", describe(&output));
            }
        }
    }
    let status = child.kill();
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status}");

    assert_eq!(conn.recv().unwrap().as_deref(), Some(&b"before"[..]));
    match conn.recv() {
        Err(Error::UnexpectedEof { read, expected }) => assert_eq!((read, expected), (500, 1004)),
        other => panic!("want UnexpectedEof, got {other:?}"),
    }
}

#[test]
fn unix_echo_across_processes() {
    echo_across_processes::<UnixTransport>();
}

#[test]
fn tcp_echo_across_processes() {
    echo_across_processes::<TcpTransport>();
}

#[test]
fn unix_killed_mid_frame() {
    killed_mid_frame::<UnixTransport>();
}

#[test]
fn tcp_killed_mid_frame() {
    killed_mid_frame::<TcpTransport>();
}
