//! The async listeners, endpoints, datagrams and authkey handshake (feature `tokio`): the sync
//! side's promises, kept on tokio.
#![cfg(feature = "tokio")]

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::process::Stdio;
use std::time::Duration;

use msgsock::tokio::{AsyncConnection, AsyncUnixListener};
use msgsock::{AuthFailure, AuthKey, Authenticator, ConnectOptions, Endpoint, Error};
use tokio::time::timeout;

use crate::common::{tempdir, GUARD_TIMEOUT};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn auth(key: &[u8]) -> Authenticator {
    Authenticator::new(AuthKey::new(key.to_vec()))
}

/// The async listeners are socket-level, as the blocking ones: `accept` gives tokio's bare
/// stream (raw bytes both ways, no header), which `AsyncConnection::new` wraps; the TCP one sets
/// `TCP_NODELAY` on it.
#[tokio::test]
async fn async_listeners_accept_bare_tokio_streams() -> TestResult {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let unix = AsyncUnixListener::bind_temp()?;
    let mut client = tokio::net::UnixStream::connect(unix.path()).await?;
    let (mut server, _): (tokio::net::UnixStream, _) =
        timeout(GUARD_TIMEOUT, unix.accept()).await??;
    client.write_all(b"raw").await?;
    let mut got = [0; 3];
    server.read_exact(&mut got).await?;
    assert_eq!(&got, b"raw");

    let tcp = msgsock::tokio::AsyncTcpListener::bind("127.0.0.1:0".parse()?)?;
    let client = tokio::net::TcpStream::connect(tcp.local_addr()?).await?;
    let (server, peer): (tokio::net::TcpStream, _) = timeout(GUARD_TIMEOUT, tcp.accept()).await??;
    assert_eq!(peer, client.local_addr()?);
    assert!(server.nodelay()?);
    let (mut client, mut server) = (AsyncConnection::new(client), AsyncConnection::new(server));
    client.send(b"framed").await?;
    assert_eq!(server.recv().await?.as_deref(), Some(&b"framed"[..]));
    Ok(())
}

/// Binding replaces a stale socket, refuses a live one and never touches a regular file; the
/// file is created 0600 and removed on drop, while a successor bound at the path is left alone.
#[tokio::test]
async fn unix_listener_keeps_the_socket_file_rules() -> TestResult {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    // Stale: std leaves its file behind.
    drop(std::os::unix::net::UnixListener::bind(&path)?);
    let first = AsyncUnixListener::bind(&path)?;
    let meta = std::fs::symlink_metadata(&path)?;
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let err = AsyncUnixListener::bind(&path).unwrap_err();
    assert!(matches!(err, Error::AddrInUse { .. }), "{err:?}");
    drop(first);
    assert!(!path.exists(), "the listener's file is removed on drop");

    let file = dir.path().join("data");
    std::fs::write(&file, b"precious")?;
    let err = AsyncUnixListener::bind(&file).unwrap_err();
    assert!(matches!(err, Error::NotASocket { .. }), "{err:?}");
    assert_eq!(std::fs::read(&file)?, b"precious");

    // Removal by identity: a successor at the path survives the old listener's drop.
    let old = AsyncUnixListener::bind(&path)?;
    std::fs::remove_file(&path)?;
    std::fs::remove_file(dir.path().join("app.sock.lock"))?;
    let successor = msgsock::UnixListener::bind(&path)?;
    drop(old);
    assert!(path.exists(), "the successor's socket was removed");
    drop(successor);
    Ok(())
}

/// `msgsock::tokio::bind` and `connect` work from endpoint strings on both stream families, the
/// listener reports the real port, and the server sees the client's credentials on unix.
#[tokio::test]
async fn bind_and_connect_endpoints_with_peer_credentials() -> TestResult {
    let dir = tempdir();
    for endpoint in [
        format!("unix:{}", dir.path().join("e.sock").display()),
        "tcp:127.0.0.1:0".to_string(),
    ] {
        let listener = msgsock::tokio::bind(&endpoint.parse()?).await?;
        let local = listener.local_endpoint()?;
        let mut client = msgsock::tokio::connect(&local).await?;
        let mut server = listener.accept().await?;
        client.send(b"ping").await?;
        assert_eq!(server.recv().await?.as_deref(), Some(&b"ping"[..]));
        let stream = server.as_stream().expect("a stream");
        match local {
            Endpoint::Unix(_) => {
                let cred = stream.peer_cred()?;
                assert_eq!(cred.pid, std::process::id() as i32);
                assert_eq!(cred.uid, nix::unistd::geteuid().as_raw());
            }
            _ => assert!(stream.peer_cred().is_err(), "tcp has no credentials"),
        }
    }
    Ok(())
}

/// A host name resolves; a server that comes up later is waited for; a refused endpoint is
/// `ConnectionRefused` naming it, as the blocking connect says.
#[tokio::test]
async fn connect_resolves_names_and_waits_for_a_server() -> TestResult {
    let listener = msgsock::tokio::bind(&"tcp:127.0.0.1:0".parse()?).await?;
    let Endpoint::Tcp(addr) = listener.local_endpoint()? else {
        unreachable!()
    };
    let named: Endpoint = format!("tcp:localhost:{}", addr.port()).parse()?;
    let (client, server) = tokio::join!(msgsock::tokio::connect(&named), listener.accept());
    let (mut client, mut server) = (client?, server?);
    client.send(b"by name").await?;
    assert_eq!(server.recv().await?.as_deref(), Some(&b"by name"[..]));
    drop(listener);

    let refused = msgsock::tokio::connect(&Endpoint::Tcp(addr))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, Error::ConnectionRefused { endpoint } if *endpoint == Endpoint::Tcp(addr)),
        "{refused:?}"
    );

    let dir = tempdir();
    let later = Endpoint::Unix(dir.path().join("later.sock"));
    let options = ConnectOptions::new().with_wait_for_server(Some(GUARD_TIMEOUT));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    let waiting = tokio::spawn({
        let later = later.clone();
        async move {
            let _ = ready_tx.send(());
            msgsock::tokio::connect_with(&options, &later).await
        }
    });
    ready_rx.await?;
    let listener = msgsock::tokio::bind(&later).await?;
    let mut server = timeout(GUARD_TIMEOUT, listener.accept()).await??;
    let mut client = waiting.await??;
    server.send(b"up").await?;
    assert_eq!(client.recv().await?.as_deref(), Some(&b"up"[..]));
    Ok(())
}

/// A dropped `accept` (a lost `select!` branch) loses no connection: the next one returns it.
#[tokio::test]
async fn accept_is_cancel_safe() -> TestResult {
    let listener = msgsock::tokio::bind(&"tcp:127.0.0.1:0".parse()?).await?;
    tokio::select! {
        biased;
        _ = listener.accept() => panic!("nobody connected yet"),
        () = std::future::ready(()) => {}
    }
    let mut client = msgsock::tokio::connect(&listener.local_endpoint()?).await?;
    let mut server = timeout(GUARD_TIMEOUT, listener.accept()).await??;
    client.send(b"after a cancel").await?;
    assert_eq!(
        server.recv().await?.as_deref(),
        Some(&b"after a cancel"[..])
    );
    Ok(())
}

/// Datagrams: `send_to`/`recv_from` answer the sender on udp and unixgram; a datagram above the
/// receive limit is `Truncated` with its length, and the next one arrives intact.
#[tokio::test]
async fn datagrams_answer_senders_and_report_truncation() -> TestResult {
    let dir = tempdir();
    for endpoint in [
        "udp:127.0.0.1:0".to_string(),
        format!("unixgram:{}", dir.path().join("d.sock").display()),
    ] {
        let mut server = msgsock::tokio::bind_datagram(&endpoint.parse()?).await?;
        server.set_max_message_len(8);
        let mut client = msgsock::tokio::connect(&server.local_endpoint()?).await?;
        client.send(b"far too long for eight").await?;
        client.send(b"short").await?;
        let mut buf = Vec::new();
        let err = server.recv_from(&mut buf).await.unwrap_err();
        assert!(
            matches!(err, Error::Truncated { len, max: 8 } if len > 8),
            "{err:?}"
        );
        let (n, from) = server.recv_from(&mut buf).await?;
        assert_eq!(&buf[..n], b"short");
        server.send_to(&buf, &from.expect("a bound client")).await?;
        assert_eq!(client.recv().await?.as_deref(), Some(&b"short"[..]));
    }
    Ok(())
}

/// A connected `udp:` socket whose peer is gone hears of it (the ICMP port-unreachable reply
/// sets `SO_ERROR`, with nothing to read): the next receive is `ConnectionRefused` on tokio as
/// on the blocking side, never a wait for a datagram that cannot come; after it, the socket
/// works on.
#[tokio::test]
async fn udp_receive_from_a_gone_peer_is_refused_as_on_the_blocking_side() -> TestResult {
    let gone = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?;
    let endpoint: Endpoint = format!("udp:{gone}").parse()?;

    let mut blocking = msgsock::connect(&endpoint)?;
    blocking.set_read_timeout(Some(GUARD_TIMEOUT))?;
    blocking.send(b"anyone?")?;
    match blocking.recv() {
        Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
        other => panic!("blocking: want ConnectionRefused, got {other:?}"),
    }

    let mut client = msgsock::tokio::connect(&endpoint).await?;
    client.send(b"anyone?").await?;
    match timeout(GUARD_TIMEOUT, client.recv()).await {
        Ok(Err(Error::Io(e))) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
        Ok(other) => panic!("async: want ConnectionRefused, got {other:?}"),
        Err(_) => panic!("async: no answer within {GUARD_TIMEOUT:?}"),
    }

    // The error is taken once; a peer bound there now is heard, on both sides.
    let server = std::net::UdpSocket::bind(gone)?;
    server.set_read_timeout(Some(GUARD_TIMEOUT))?;
    let mut buf = [0; 16];
    blocking.send(b"again")?;
    let (n, from) = server.recv_from(&mut buf)?;
    server.send_to(&buf[..n], from)?;
    assert_eq!(blocking.recv()?.as_deref(), Some(&b"again"[..]));
    client.send(b"again").await?;
    let (n, from) = server.recv_from(&mut buf)?;
    server.send_to(&buf[..n], from)?;
    let reply = timeout(GUARD_TIMEOUT, client.recv()).await?;
    assert_eq!(reply?.as_deref(), Some(&b"again"[..]));
    Ok(())
}

/// `try_send_to` to a unixgram peer that stopped reading is `WouldBlock` at once, never a wait,
/// and another peer is still served.
#[tokio::test]
async fn try_send_to_never_waits_for_a_full_peer() -> TestResult {
    let dir = tempdir();
    let server = msgsock::tokio::bind_datagram(
        &format!("unixgram:{}", dir.path().join("s.sock").display()).parse()?,
    )
    .await?;
    let stalled = msgsock::UnixDatagram::bind(dir.path().join("stalled.sock"))?;
    let reader = msgsock::UnixDatagram::bind(dir.path().join("reader.sock"))?;
    let stalled_at = stalled.local_endpoint().expect("bound");
    let mut full = false;
    for _ in 0..100_000 {
        match server.try_send_to(b"x", &stalled_at) {
            Ok(()) => {}
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                full = true;
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    assert!(full, "the stalled peer's queue never filled");
    let reader_at = reader.local_endpoint().expect("bound");
    timeout(
        Duration::from_secs(5),
        server.try_send_to_within(b"for the reader", &reader_at, Duration::from_millis(200)),
    )
    .await??;
    let mut buf = Vec::new();
    reader.recv_from(&mut buf)?;
    assert_eq!(buf, b"for the reader");
    Ok(())
}

/// The async handshake admits the right key against the blocking side in both directions and
/// refuses a wrong one on both ends.
#[tokio::test]
async fn handshake_interoperates_with_the_blocking_side() -> TestResult {
    for right in [true, false] {
        let listener = msgsock::UnixListener::bind_temp()?;
        let path = listener.path().to_owned();
        let sync_server = std::thread::spawn(move || -> msgsock::Result<Vec<u8>> {
            let mut conn = msgsock::Connection::new(listener.accept()?.0);
            conn.authenticate_server(&auth(b"key"))?;
            Ok(conn.recv()?.unwrap_or_default())
        });
        let mut client = AsyncConnection::new(tokio::net::UnixStream::connect(&path).await?);
        let key: &[u8] = if right { b"key" } else { b"other" };
        let result = client.authenticate_client(&auth(key)).await;
        if right {
            result?;
            client.send(b"in").await?;
            assert_eq!(sync_server.join().unwrap()?, b"in");
        } else {
            assert!(
                matches!(result, Err(Error::AuthenticationFailed { .. })),
                "{result:?}"
            );
            let server = sync_server.join().unwrap();
            assert!(
                matches!(server, Err(Error::AuthenticationFailed { .. })),
                "{server:?}"
            );
        }
    }
    // And an async server with a blocking client.
    let listener = AsyncUnixListener::bind_temp()?;
    let path = listener.path().to_owned();
    let sync_client = std::thread::spawn(move || -> msgsock::Result<()> {
        let mut conn = msgsock::Connection::new(msgsock::UnixStream::connect(&path)?);
        conn.authenticate_client(&auth(b"key"))?;
        conn.send(b"hello")
    });
    let mut server = AsyncConnection::new(listener.accept().await?.0);
    server.authenticate_server(&auth(b"key")).await?;
    assert_eq!(server.recv().await?.as_deref(), Some(&b"hello"[..]));
    sync_client.join().unwrap()?;
    Ok(())
}

/// A peer that connects and says nothing costs the server the handshake's deadline, then
/// `HandshakeTimeout`; a peer that hangs up is `PeerClosed`.
#[tokio::test]
async fn handshake_deadline_and_peer_close() -> TestResult {
    let (a, b) = tokio::net::UnixStream::pair()?;
    let mut server = AsyncConnection::new(a);
    let limit = Duration::from_millis(100);
    let result = timeout(
        Duration::from_secs(5),
        server.authenticate_server(&auth(b"k").with_timeout(Some(limit))),
    )
    .await?;
    assert!(
        matches!(result, Err(Error::HandshakeTimeout { timeout }) if timeout == limit),
        "{result:?}"
    );
    drop(b);

    let (a, b) = tokio::net::UnixStream::pair()?;
    drop(b);
    let result = AsyncConnection::new(a)
        .authenticate_client(&auth(b"k"))
        .await;
    assert!(
        matches!(
            result,
            Err(Error::AuthenticationFailed {
                reason: AuthFailure::PeerClosed
            })
        ),
        "{result:?}"
    );
    Ok(())
}

/// Python's `Client(address, authkey=...)` logs in to the async server and is echoed; a wrong
/// key is refused on both sides.
#[tokio::test]
async fn python_client_authenticates_with_the_async_server() -> TestResult {
    const PY: &str = r#"
import sys
from multiprocessing.connection import Client
try:
    with Client(sys.argv[1], authkey=sys.argv[2].encode()) as c:
        c.send_bytes(b"from python")
        print(c.recv_bytes().decode(), flush=True)
except Exception as e:
    print(type(e).__name__, flush=True)
"#;
    for (key, want) in [("key", "from python"), ("nope", "AuthenticationError")] {
        let listener = AsyncUnixListener::bind_temp()?;
        let child = common::python3("the reference authkey client")
            .args(["-c", PY])
            .arg(listener.path())
            .arg(key)
            .stdout(Stdio::piped())
            .spawn()?;
        let mut server = AsyncConnection::new(timeout(GUARD_TIMEOUT, listener.accept()).await??.0);
        let served = server.authenticate_server(&auth(b"key")).await;
        if key == "key" {
            served?;
            let msg = server.recv().await?.expect("a message");
            server.send(&msg).await?;
        } else {
            assert!(
                matches!(served, Err(Error::AuthenticationFailed { .. })),
                "{served:?}"
            );
        }
        drop(server);
        let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want);
    }
    Ok(())
}
