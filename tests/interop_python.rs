//! Wire compatibility with Python's `multiprocessing.connection` (standard library, no authkey):
//! a Python client talks to a msgsock server, and a msgsock client to a Python listener, over
//! AF_UNIX and AF_INET, from the blocking API and (feature `tokio`) the async one.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::thread;

use msgsock::{Bind, Channel, Endpoint, TcpTransport, Transport, UnixTransport};

use crate::common::{describe, guard_timeouts, ChildGuard};

/// The messages both sides expect, in order: empty, one byte, UTF-8 text, 1 MiB, and a last one.
/// Python builds the same list from the same recipe.
fn messages() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        b"x".to_vec(),
        "héllo, 世界 🦀".as_bytes().to_vec(),
        (0..1usize << 20).map(|i| (i % 251) as u8).collect(),
        b"last".to_vec(),
    ]
}

const PY_MESSAGES: &str = r#"
MESSAGES = [b"", b"x", "héllo, 世界 🦀".encode(), bytes(i % 251 for i in range(1 << 20)), b"last"]
"#;

/// Connects to the address in argv, sends every message, and expects each back with the
/// server's reply prefix.
const PY_CLIENT: &str = r#"
import sys
from multiprocessing.connection import Client
family, where = sys.argv[1], sys.argv[2]
address = where if family == "unix" else ("127.0.0.1", int(where))
ok = True
with Client(address) as conn:
    for i, msg in enumerate(MESSAGES):
        conn.send_bytes(msg)
        reply = conn.recv_bytes()
        if reply != b"re:" + msg:
            print(f"reply {i}: got {len(reply)} bytes, want {len(msg) + 3}", file=sys.stderr)
            ok = False
sys.exit(0 if ok else 1)
"#;

/// Listens on the address in argv (port 0 for TCP), prints it, then answers every message with
/// its reverse until the client closes, checking each against the expected list.
const PY_LISTENER: &str = r#"
import sys
from multiprocessing.connection import Listener
family, where = sys.argv[1], sys.argv[2]
address = where if family == "unix" else ("127.0.0.1", 0)
ok = True
with Listener(address) as listener:
    addr = listener.address
    print("LISTENING", addr if family == "unix" else addr[1], flush=True)
    with listener.accept() as conn:
        count = 0
        while True:
            try:
                msg = conn.recv_bytes()
            except EOFError:
                break
            if count >= len(MESSAGES) or msg != MESSAGES[count]:
                print(f"message {count}: unexpected {len(msg)} bytes", file=sys.stderr)
                ok = False
            conn.send_bytes(msg[::-1])
            count += 1
if count != len(MESSAGES):
    print(f"got {count} messages, want {len(MESSAGES)}", file=sys.stderr)
    ok = False
sys.exit(0 if ok else 1)
"#;

/// Starts `python3 -c SCRIPT ARGS...`, failing clearly if there is no python3.
fn python(script: &str, args: &[&str]) -> ChildGuard {
    let child = common::reference_python3()
        .arg("-c")
        .arg(format!("{PY_MESSAGES}{script}"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start python3: {e}"));
    ChildGuard::new(child)
}

/// A Python client against a msgsock server on `listener`; the server replies `re:` + message
/// and records what it got.
fn python_client_to_msgsock<T: Transport>(listener: T::Listener, family: &str, arg: &str) {
    let server = thread::spawn(move || {
        let mut conn = T::accept(&listener).unwrap();
        guard_timeouts(&conn);
        let mut got = Vec::new();
        while let Some(msg) = conn.recv().unwrap() {
            let mut reply = b"re:".to_vec();
            reply.extend_from_slice(&msg);
            conn.send(&reply).unwrap();
            got.push(msg);
        }
        got
    });
    let child = python(PY_CLIENT, &[family, arg]);
    let output = child.wait_with_output();
    assert!(
        output.status.success(),
        "python client:\n{}",
        describe(&output)
    );
    let got = server.join().expect("server thread");
    common::assert_same_messages(&got, &messages());
}

/// A msgsock client against a Python listener started with `family` and `arg`.
fn msgsock_client_to_python(family: &str, arg: &str) {
    let mut child = python(PY_LISTENER, &[family, arg]);
    let stdout = child.child().stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let Some(addr) = line.trim_end().strip_prefix("LISTENING ") else {
        let output = child.wait_with_output();
        panic!(
            "python listener did not start:\n{line}\n{}",
            describe(&output)
        );
    };
    let endpoint: Endpoint = match family {
        "unix" => Endpoint::Unix(addr.into()),
        _ => format!("tcp:127.0.0.1:{addr}").parse().unwrap(),
    };
    let mut conn = msgsock::connect(&endpoint).unwrap();
    guard_timeouts(&conn);
    exchange_reversed(&mut conn);
    drop(conn);
    let output = child.wait_with_output();
    assert!(
        output.status.success(),
        "python listener:\n{}",
        describe(&output)
    );
}

fn exchange_reversed<C: Channel>(conn: &mut C) {
    for (i, msg) in messages().into_iter().enumerate() {
        conn.send(&msg).unwrap();
        let reply = conn.recv().unwrap().expect("a reply");
        let want: Vec<u8> = msg.iter().rev().copied().collect();
        assert!(reply == want, "reply {i}: got {} bytes", reply.len());
    }
}

#[test]
fn python_client_to_msgsock_unix() {
    let dir = common::tempdir();
    let path = dir.path().join("py.sock");
    let listener = UnixTransport::bind(&path).unwrap();
    python_client_to_msgsock::<UnixTransport>(listener, "unix", path_str(&path));
}

#[test]
fn python_client_to_msgsock_tcp() {
    let listener = TcpTransport::bind_ephemeral().unwrap();
    let port = TcpTransport::local_addr(&listener)
        .unwrap()
        .port()
        .to_string();
    python_client_to_msgsock::<TcpTransport>(listener, "tcp", &port);
}

#[test]
fn msgsock_client_to_python_unix() {
    let dir = common::tempdir();
    let path = dir.path().join("py.sock");
    msgsock_client_to_python("unix", path_str(&path));
}

#[test]
fn msgsock_client_to_python_tcp() {
    msgsock_client_to_python("tcp", "0");
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// The same exchanges with msgsock's async side (feature `tokio`): a Python client against an
/// async server, and an async client against a Python listener.
#[cfg(feature = "tokio")]
mod with_tokio {
    use super::*;

    /// A Python client against an async msgsock server bound at `endpoint`; the server replies
    /// `re:` + message and the messages it got are checked.
    async fn python_client_to_async_msgsock(endpoint: &str) {
        let listener = msgsock::tokio::bind(&endpoint.parse().unwrap())
            .await
            .unwrap();
        let (family, arg) = match listener.local_endpoint().unwrap() {
            Endpoint::Unix(path) => ("unix", path.display().to_string()),
            Endpoint::Tcp(addr) => ("tcp", addr.port().to_string()),
            other => panic!("unexpected endpoint {other}"),
        };
        let child = python(PY_CLIENT, &[family, &arg]);
        let mut conn = tokio::time::timeout(common::GUARD_TIMEOUT, listener.accept())
            .await
            .expect("python connects")
            .unwrap();
        let mut got = Vec::new();
        while let Some(msg) = tokio::time::timeout(common::GUARD_TIMEOUT, conn.recv())
            .await
            .expect("python sends or closes")
            .unwrap()
        {
            let mut reply = b"re:".to_vec();
            reply.extend_from_slice(&msg);
            conn.send(&reply).await.unwrap();
            got.push(msg);
        }
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "python client:\n{}",
            describe(&output)
        );
        common::assert_same_messages(&got, &messages());
    }

    #[tokio::test]
    async fn python_client_to_async_msgsock_unix() {
        let dir = common::tempdir();
        let spec = format!("unix:{}", dir.path().join("py.sock").display());
        python_client_to_async_msgsock(&spec).await;
    }

    #[tokio::test]
    async fn python_client_to_async_msgsock_tcp() {
        python_client_to_async_msgsock("tcp:127.0.0.1:0").await;
    }

    /// An async msgsock client against a Python listener started with `family` and `arg`.
    async fn async_msgsock_client_to_python(family: &str, arg: &str) {
        let mut child = python(PY_LISTENER, &[family, arg]);
        let stdout = child.child().stdout.take().unwrap();
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        })
        .await
        .unwrap()
        .unwrap();
        let Some(addr) = line.trim_end().strip_prefix("LISTENING ") else {
            let output = child.wait_with_output();
            panic!(
                "python listener did not start:\n{line}\n{}",
                describe(&output)
            );
        };
        let endpoint: Endpoint = match family {
            "unix" => Endpoint::Unix(addr.into()),
            _ => format!("tcp:127.0.0.1:{addr}").parse().unwrap(),
        };
        let mut conn = msgsock::tokio::connect(&endpoint).await.unwrap();
        for (i, msg) in messages().into_iter().enumerate() {
            conn.send(&msg).await.unwrap();
            let reply = tokio::time::timeout(common::GUARD_TIMEOUT, conn.recv())
                .await
                .expect("python replies")
                .unwrap()
                .expect("a reply");
            let want: Vec<u8> = msg.iter().rev().copied().collect();
            assert!(reply == want, "reply {i}: got {} bytes", reply.len());
        }
        drop(conn);
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "python listener:\n{}",
            describe(&output)
        );
    }

    #[tokio::test]
    async fn async_msgsock_client_to_python_unix() {
        let dir = common::tempdir();
        let path = dir.path().join("py.sock");
        async_msgsock_client_to_python("unix", path_str(&path)).await;
    }

    #[tokio::test]
    async fn async_msgsock_client_to_python_tcp() {
        async_msgsock_client_to_python("tcp", "0").await;
    }
}
