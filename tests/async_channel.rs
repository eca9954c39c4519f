//! The async message trait's conformance suite: written once, generic over `AsyncChannel`, and
//! run on unix, tcp, udp and unixgram (feature `tokio`).
#![cfg(feature = "tokio")]

mod common;

use msgsock::tokio::{AsyncAnyConnection, AsyncChannel};
use msgsock::Endpoint;

use crate::common::pattern;

/// The endpoint to serve, for a transport's scheme, and the directory that holds its file.
fn endpoint(scheme: &str) -> (Endpoint, tempfile::TempDir) {
    let dir = common::tempdir();
    let text = match scheme {
        "tcp" | "udp" => format!("{scheme}:127.0.0.1:0"),
        _ => format!("{scheme}:{}", dir.path().join("c.sock").display()),
    };
    (text.parse().expect("an endpoint"), dir)
}

/// A client connected to a server task that sends every message back, on `scheme`.
async fn echo_pair(scheme: &str) -> (AsyncAnyConnection, tempfile::TempDir) {
    let (endpoint, dir) = endpoint(scheme);
    if endpoint.is_datagram() {
        let server = msgsock::tokio::bind_datagram(&endpoint).await.unwrap();
        let client = msgsock::tokio::connect(&server.local_endpoint().unwrap())
            .await
            .unwrap();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Ok((_, Some(from))) = server.recv_from(&mut buf).await {
                server.send_to(&buf, &from).await.unwrap();
            }
        });
        return (client, dir);
    }
    let listener = msgsock::tokio::bind(&endpoint).await.unwrap();
    let client = msgsock::tokio::connect(&listener.local_endpoint().unwrap())
        .await
        .unwrap();
    let server = listener.accept().await.unwrap();
    tokio::spawn(async move {
        let _listener = listener;
        echo(server).await
    });
    (client, dir)
}

/// Generic echo: what a server written against the trait looks like.
async fn echo<C: AsyncChannel>(mut chan: C) {
    let mut buf = Vec::new();
    while let Ok(Some(_)) = chan.recv_into(&mut buf).await {
        if chan.send(&buf).await.is_err() {
            return;
        }
    }
}

/// Messages of every size a datagram carries come back whole.
async fn round_trip_sizes<C: AsyncChannel>(chan: &mut C) {
    for len in [0, 1, 100, 4096, 60_000] {
        let msg = pattern(len, len as u8);
        chan.send(&msg).await.unwrap();
        assert_eq!(chan.recv().await.unwrap(), Some(msg), "{len} bytes");
    }
}

/// Many messages sent ahead of their replies come back in order.
async fn many_in_order<C: AsyncChannel>(chan: &mut C) {
    let msgs: Vec<Vec<u8>> = (0..20).map(|i| pattern(10 + i, i as u8)).collect();
    for m in &msgs {
        chan.send(m).await.unwrap();
    }
    let mut buf = Vec::new();
    for m in &msgs {
        assert_eq!(chan.recv_into(&mut buf).await.unwrap(), Some(m.len()));
        assert_eq!(&buf, m);
    }
}

/// Generic code can be spawned: the trait's futures are `Send`.
async fn runs_in_a_spawned_task<C: AsyncChannel + 'static>(mut chan: C) {
    let task = tokio::spawn(async move {
        chan.send(b"spawned").await.unwrap();
        chan.recv().await.unwrap()
    });
    assert_eq!(task.await.unwrap().as_deref(), Some(&b"spawned"[..]));
}

macro_rules! conformance {
    ($($m:ident => $scheme:literal),+) => { $(mod $m {
        #[tokio::test]
        async fn round_trip_sizes() {
            let (mut c, _dir) = crate::echo_pair($scheme).await;
            crate::round_trip_sizes(&mut c).await
        }
        #[tokio::test]
        async fn many_in_order() {
            let (mut c, _dir) = crate::echo_pair($scheme).await;
            crate::many_in_order(&mut c).await
        }
        #[tokio::test]
        async fn runs_in_a_spawned_task() {
            let (c, _dir) = crate::echo_pair($scheme).await;
            crate::runs_in_a_spawned_task(c).await
        }
    })+ };
}

conformance!(unix => "unix", tcp => "tcp", udp => "udp", unixgram => "unixgram");
