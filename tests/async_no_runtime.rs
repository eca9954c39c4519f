//! The tokio side's synchronous constructors, and its `async` ones polled by another executor,
//! outside a tokio runtime: each returns `Error::Io` as documented, instead of the panic that
//! tokio's `from_std` raises there.

#![cfg(feature = "tokio")]

use futures_util::FutureExt;
use msgsock::tokio::{
    AsyncDatagram, AsyncSeqpacket, AsyncSeqpacketListener, AsyncTcpListener, AsyncUnixListener,
};
use msgsock::{Endpoint, Error};

/// Asserts that `got` is the error for a missing runtime, naming `what` otherwise.
fn no_runtime<T: std::fmt::Debug>(what: &str, got: msgsock::Result<T>) {
    match got {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::Other, "{what}: {e}"),
        other => panic!("{what}: want Error::Io, got {other:?}"),
    }
}

#[test]
fn constructors_outside_a_runtime_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    no_runtime(
        "AsyncUnixListener::bind_temp",
        AsyncUnixListener::bind_temp(),
    );
    no_runtime(
        "AsyncUnixListener::bind",
        AsyncUnixListener::bind(dir.path().join("s.sock")),
    );
    assert!(
        !dir.path().join("s.sock").exists(),
        "a failed bind leaves no file"
    );
    no_runtime(
        "AsyncTcpListener::bind",
        AsyncTcpListener::bind("127.0.0.1:0".parse().unwrap()),
    );
    no_runtime(
        "AsyncSeqpacketListener::bind",
        AsyncSeqpacketListener::bind(dir.path().join("p.sock")),
    );
    no_runtime("AsyncSeqpacket::pair", AsyncSeqpacket::pair());
    let udp = msgsock::bind_datagram(&"udp:127.0.0.1:0".parse().unwrap()).unwrap();
    no_runtime(
        "AsyncDatagram::from_blocking",
        AsyncDatagram::from_blocking(udp),
    );
}

#[test]
fn async_constructors_polled_outside_a_runtime_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = Endpoint::Unix(dir.path().join("s.sock"));
    let bound = msgsock::tokio::bind(&endpoint).now_or_never();
    no_runtime("tokio::bind", bound.expect("no wait"));
    let listener = msgsock::bind(&endpoint).unwrap();
    let connected = msgsock::tokio::connect(&endpoint).now_or_never();
    no_runtime("tokio::connect", connected.expect("no wait"));
    drop(listener);
}
