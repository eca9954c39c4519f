//! `AnyConnection` forwards what its stream connection offers, on every transport (issue 12:
//! the `Any*` dispatch): `flush`, `pending_len` and `split`.

mod common;

use std::thread;

use msgsock::{AnyConnection, Endpoint};

use crate::common::{pattern, tempdir};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// More than a loopback socket's buffers hold, so a non-blocking send leaves a rest queued.
const BIG: usize = 32 << 20;

/// A listening stream endpoint of `scheme` and a connected client and server.
fn stream_pair(scheme: &str, dir: &tempfile::TempDir) -> msgsock::Result<[AnyConnection; 2]> {
    let endpoint: Endpoint = match scheme {
        "unix" => Endpoint::Unix(dir.path().join("s.sock")),
        _ => "tcp:127.0.0.1:0".parse()?,
    };
    let listener = msgsock::bind(&endpoint)?;
    let client = msgsock::connect(&listener.local_endpoint()?)?;
    Ok([client, listener.accept()?])
}

/// A bound datagram socket of `scheme` and a client connected to it.
fn datagram_pair(
    scheme: &str,
    dir: &tempfile::TempDir,
) -> msgsock::Result<(AnyConnection, msgsock::AnyDatagram)> {
    let endpoint: Endpoint = match scheme {
        "unixgram" => Endpoint::UnixDatagram(dir.path().join("d.sock")),
        _ => "udp:127.0.0.1:0".parse()?,
    };
    let server = msgsock::bind_datagram(&endpoint)?;
    Ok((msgsock::connect(&server.local_endpoint()?)?, server))
}

/// A send that the socket took only part of leaves its rest pending; `flush` writes it.
fn stream_flush_writes_what_a_send_left_pending(scheme: &str) -> TestResult {
    let dir = tempdir();
    let [mut client, mut server] = stream_pair(scheme, &dir)?;
    let big = pattern(BIG, 3);
    client.as_stream().unwrap().set_nonblocking(true)?;
    client.send(&big)?;
    assert!(client.pending_len() > 0, "a {BIG} B send went out whole");
    let reader = thread::spawn(move || server.recv());
    client.as_stream().unwrap().set_nonblocking(false)?;
    client.flush()?;
    assert_eq!(client.pending_len(), 0);
    assert!(
        reader.join().unwrap()? == Some(big),
        "the message arrived changed"
    );
    Ok(())
}

/// A datagram is with the kernel once sent: nothing pends, and `flush` has nothing to do.
fn datagram_flush_is_a_no_op(scheme: &str) -> TestResult {
    let dir = tempdir();
    let (mut client, server) = datagram_pair(scheme, &dir)?;
    client.send(b"one")?;
    assert_eq!(client.pending_len(), 0);
    client.flush()?;
    let mut buf = Vec::new();
    server.recv_from(&mut buf)?;
    assert_eq!(buf, b"one");
    Ok(())
}

/// The halves of a split stream connection send and receive on two threads at once.
fn stream_split_halves_work_on_two_threads(scheme: &str) -> TestResult {
    let dir = tempdir();
    let [client, mut server] = stream_pair(scheme, &dir)?;
    let (mut rx, mut tx) = client.split()?;
    let sender = thread::spawn(move || -> msgsock::Result<usize> {
        tx.send(b"from the send half")?;
        tx.flush()?;
        Ok(tx.pending_len())
    });
    server.send(b"to the receive half")?;
    assert_eq!(rx.recv()?.as_deref(), Some(&b"to the receive half"[..]));
    assert_eq!(server.recv()?.as_deref(), Some(&b"from the send half"[..]));
    assert_eq!(sender.join().unwrap()?, 0);
    Ok(())
}

/// The halves of a split datagram connection send and receive on two threads at once.
fn datagram_split_halves_work_on_two_threads(scheme: &str) -> TestResult {
    let dir = tempdir();
    let (client, server) = datagram_pair(scheme, &dir)?;
    let (mut rx, mut tx) = client.split()?;
    let sender = thread::spawn(move || tx.send(b"from the send half"));
    let mut buf = Vec::new();
    let (_, from) = server.recv_from(&mut buf)?;
    assert_eq!(buf, b"from the send half");
    server.send_to(b"to the receive half", &from.expect("a bound client"))?;
    assert_eq!(rx.recv()?.as_deref(), Some(&b"to the receive half"[..]));
    sender.join().unwrap()?;
    Ok(())
}

macro_rules! per_scheme {
    ($($test:ident => [$($scheme:ident),+]),+ $(,)?) => { $(mod $test { $(
        #[test]
        fn $scheme() -> crate::TestResult {
            crate::$test(stringify!($scheme))
        }
    )+ })+ };
}

per_scheme!(
    stream_flush_writes_what_a_send_left_pending => [unix, tcp],
    datagram_flush_is_a_no_op => [udp, unixgram],
    stream_split_halves_work_on_two_threads => [unix, tcp],
    datagram_split_halves_work_on_two_threads => [udp, unixgram],
);
