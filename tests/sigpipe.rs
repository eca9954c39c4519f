//! Writing to a peer that has gone is an error, never a `SIGPIPE`: with the default disposition
//! restored (which terminates the process), msgsock's sends must still return `Err`. Were a
//! signal raised, this test process would die and the run would fail.

mod common;

use std::io::{self, Write};
use std::time::Instant;

use nix::sys::signal::{signal, SigHandler, Signal};
use serial_test::serial;

use msgsock::{TcpTransport, Transport, UnixTransport};

use crate::common::{connected_pair, GUARD_TIMEOUT};

/// Sets `SIGPIPE` to its default action for the guard's life, then back to ignored (what the
/// Rust runtime sets at start-up). The disposition is process-wide, so these tests are serial.
struct DefaultSigpipe;

impl DefaultSigpipe {
    fn set() -> DefaultSigpipe {
        // SAFETY: SIG_DFL installs no handler, so no code runs in signal context; the only
        // effect is process-wide, and every test that depends on it is #[serial].
        let previous = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.unwrap();
        assert!(
            matches!(previous, SigHandler::SigIgn),
            "the Rust runtime ignores SIGPIPE"
        );
        DefaultSigpipe
    }
}

impl Drop for DefaultSigpipe {
    fn drop(&mut self) {
        // SAFETY: SIG_IGN installs no handler; it restores what the runtime had set.
        unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }.unwrap();
    }
}

/// Calls `write` until it fails with `BrokenPipe` (the error that comes with `SIGPIPE`),
/// accepting `ConnectionReset` on the way (TCP reports the peer's reset once first).
fn write_until_broken_pipe(mut write: impl FnMut() -> io::Result<()>) {
    let start = Instant::now();
    loop {
        match write() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("want BrokenPipe or ConnectionReset, got {e:?}"),
        }
        // A failure guard only: on loopback the reset comes back at once.
        assert!(
            start.elapsed() < GUARD_TIMEOUT,
            "writes to a closed peer kept succeeding"
        );
    }
}

fn send_to_closed_peer<T: Transport>() {
    let _sigpipe = DefaultSigpipe::set();

    // Connection::send: sendmsg(2).
    let (mut client, server) = connected_pair::<T>();
    drop(server);
    let mut first = None;
    write_until_broken_pipe(|| {
        let result = client.send(b"are you there?").map_err(io::Error::from);
        if let Err(e) = &result {
            first.get_or_insert(e.kind());
        }
        result
    });
    assert!(
        matches!(
            first,
            Some(io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset)
        ),
        "{first:?}"
    );

    // The stream's own Write: send(2).
    let (client, server) = connected_pair::<T>();
    drop(server);
    let mut raw: T::Stream = client.into_inner();
    write_until_broken_pipe(|| raw.write_all(b"x"));
}

#[test]
#[serial]
fn unix_send_to_closed_peer_is_an_error() {
    send_to_closed_peer::<UnixTransport>();
}

#[test]
#[serial]
fn tcp_send_to_closed_peer_is_an_error() {
    send_to_closed_peer::<TcpTransport>();
}

/// A SEQPACKET send to a closed peer: `send(2)` with `MSG_NOSIGNAL`, one packet. (Linux raises
/// no `SIGPIPE` for SEQPACKET even without the flag, `unix_dgram_sendmsg` has no `send_sig`; the
/// BSDs' `sosend` does, and there the flag is what keeps this test alive.)
#[test]
#[serial]
#[cfg(any(target_os = "linux", target_os = "android"))]
fn unixpacket_send_to_closed_peer_is_an_error() {
    let _sigpipe = DefaultSigpipe::set();
    let (a, b) = msgsock::UnixSeqpacket::pair().unwrap();
    drop(b);
    write_until_broken_pipe(|| a.send(b"are you there?").map_err(io::Error::from));
    let mut conn = msgsock::AnyConnection::from(a);
    write_until_broken_pipe(|| conn.send(b"and now?").map_err(io::Error::from));
}
