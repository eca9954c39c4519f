//! Hostile and awkward peers on the stream transports: huge length claims cost only the bytes
//! really sent and leave the server's other connections working; a half-closed peer still gets
//! its replies; a tiny send buffer still carries 1 MiB messages intact.

mod common;

use std::error::Error as StdError;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use msgsock::frame::Header;
use msgsock::{Connection, Error, Stream, Transport, DEFAULT_MAX_MESSAGE_LEN};
use nix::sys::socket::{getsockopt, setsockopt, sockopt};

use crate::common::pattern;

type TestResult = Result<(), Box<dyn StdError>>;

/// A failure guard only: a lost message fails the test instead of hanging it.
const GUARD: Duration = Duration::from_secs(30);

/// The bound on a receive buffer after a peer sent `sent` bytes of a frame it claimed was huge.
/// A payload buffer grows by at least 64 KiB and otherwise doubles with the bytes received, so
/// four times the larger of the two leaves room for that and is still tiny next to the claims.
fn memory_bound(sent: usize) -> usize {
    4 * sent.max(64 * 1024)
}

/// How one served connection ended, and how large its receive buffer had grown.
#[derive(Debug)]
struct Served {
    result: msgsock::Result<()>,
    capacity: usize,
}

/// An echo server on `T` that accepts `n` connections, serves each on its own thread with
/// receive limit `limit`, and reports each one's end. Dropping it unblocks and joins everything.
struct EchoServer<T: Transport> {
    addr: T::Addr,
    ends: Receiver<Served>,
    thread: Option<JoinHandle<()>>,
}

impl<T: Transport> EchoServer<T> {
    fn start(n: usize, limit: u64) -> msgsock::Result<Self> {
        let listener = T::bind_ephemeral()?;
        let addr = T::local_addr(&listener)?;
        let (tx, ends) = mpsc::channel();
        let thread = thread::spawn(move || {
            let mut served = Vec::new();
            for _ in 0..n {
                let Ok(conn) = T::accept(&listener) else {
                    break;
                };
                let tx = tx.clone();
                served.push(thread::spawn(move || {
                    let _ = tx.send(serve(conn.with_max_message_len(limit)));
                }));
            }
            for s in served {
                let _ = s.join();
            }
        });
        Ok(EchoServer {
            addr,
            ends,
            thread: Some(thread),
        })
    }

    /// The next connection's end, in the order they ended.
    fn next_end(&self) -> Served {
        self.ends.recv_timeout(GUARD).expect("a connection ended")
    }
}

impl<T: Transport> Drop for EchoServer<T> {
    fn drop(&mut self) {
        // If the test failed before making all its connections, the accept loop is still
        // waiting: feed it empty connections, which end at once, until it is done.
        if let Some(thread) = self.thread.take() {
            while !thread.is_finished() {
                if T::connect(&self.addr).is_err() {
                    break;
                }
                thread::yield_now();
            }
            let _ = thread.join();
        }
    }
}

/// Echoes every message back until the peer closes or errs.
fn serve<S: Stream>(mut conn: Connection<S>) -> Served {
    let mut buf = Vec::new();
    let result = (|| {
        conn.set_read_timeout(Some(GUARD))?;
        conn.set_write_timeout(Some(GUARD))?;
        while conn.recv_into(&mut buf)?.is_some() {
            conn.send(&buf)?;
        }
        Ok(())
    })();
    Served {
        result,
        capacity: buf.capacity(),
    }
}

fn connect<T: Transport>(addr: &T::Addr) -> msgsock::Result<Connection<T::Stream>> {
    let conn = T::connect(addr)?;
    conn.set_read_timeout(Some(GUARD))?;
    conn.set_write_timeout(Some(GUARD))?;
    Ok(conn)
}

fn assert_echo<S: Stream>(conn: &mut Connection<S>, msg: &[u8]) -> TestResult {
    conn.send(msg)?;
    assert_eq!(conn.recv()?.as_deref(), Some(msg));
    Ok(())
}

/// What the server must report for the hostile connection.
#[derive(Debug, Clone, Copy)]
enum Expect {
    TooLarge { len: u64, max: u64 },
    Eof { read: u64, expected: u64 },
}

/// A hostile peer sends `header` and `body_len` bytes of payload, then closes (or, for a refused
/// frame, waits to be cut off). Its error must be typed, cost at most `memory_bound(body_len)`,
/// and leave an earlier and a later client of the same server served.
fn hostile_claim<T: Transport>(
    header: &[u8],
    body_len: usize,
    limit: u64,
    expect: Expect,
) -> TestResult {
    let server = EchoServer::<T>::start(3, limit)?;
    let mut before = connect::<T>(&server.addr)?;
    assert_echo(&mut before, b"before")?;

    let mut hostile = connect::<T>(&server.addr)?.into_inner();
    let mut wire = header.to_vec();
    wire.extend_from_slice(&pattern(body_len, 7));
    let wrote = hostile.write_all(&wire);
    if let Expect::Eof { .. } = expect {
        wrote?;
        hostile.shutdown(Shutdown::Write)?;
    }

    let end = server.next_end();
    let err = end.result.expect_err("the hostile frame is refused");
    match (expect, &err) {
        (Expect::TooLarge { len, max }, Error::FrameTooLarge { len: l, max: m }) => {
            assert_eq!((*l, *m), (len, max));
        }
        (
            Expect::Eof { read, expected },
            Error::UnexpectedEof {
                read: r,
                expected: e,
            },
        ) => assert_eq!((*r, *e), (read, expected)),
        _ => panic!("expected {expect:?}, got {err:?}"),
    }
    assert!(
        end.capacity <= memory_bound(body_len),
        "{} bytes sent cost a {} byte buffer",
        body_len,
        end.capacity
    );
    if let Expect::TooLarge { .. } = expect {
        // The server shut the socket down: the hostile peer learns at once, with no timeout.
        let mut rest = Vec::new();
        match hostile.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
    }

    assert_echo(&mut before, b"still served")?;
    let mut after = connect::<T>(&server.addr)?;
    assert_echo(&mut after, b"after")?;
    drop((before, after));
    for _ in 0..2 {
        let end = server.next_end();
        assert!(end.result.is_ok(), "{:?}", end.result);
    }
    Ok(())
}

const MAX: u64 = DEFAULT_MAX_MESSAGE_LEN;
const TIB: u64 = 1 << 40;

fn claim_just_under_the_limit<T: Transport>() -> TestResult {
    let body = 1000;
    let expect = Expect::Eof {
        read: 4 + body,
        expected: 4 + MAX - 1,
    };
    hostile_claim::<T>(&Header::new(MAX - 1), body as usize, MAX, expect)
}

fn claim_at_the_limit_with_a_larger_body<T: Transport>() -> TestResult {
    // 300 KiB arrive of 64 MiB announced: the buffer follows the 300 KiB.
    let body = 300 * 1024;
    let expect = Expect::Eof {
        read: 4 + body,
        expected: 4 + MAX,
    };
    hostile_claim::<T>(&Header::new(MAX), body as usize, MAX, expect)
}

fn claim_just_over_the_limit<T: Transport>() -> TestResult {
    let expect = Expect::TooLarge {
        len: MAX + 1,
        max: MAX,
    };
    hostile_claim::<T>(&Header::new(MAX + 1), 1000, MAX, expect)
}

fn eight_byte_claim_of_a_terabyte<T: Transport>() -> TestResult {
    let header = Header::new(TIB);
    assert_eq!(header.len(), 12, "the 8-byte form");
    let expect = Expect::TooLarge { len: TIB, max: MAX };
    hostile_claim::<T>(&header, 1000, MAX, expect)
}

fn eight_byte_claim_of_a_terabyte_with_no_limit<T: Transport>() -> TestResult {
    // With the limit lifted the claim is accepted, and still only the bytes sent cost memory.
    let body = 1000;
    let expect = Expect::Eof {
        read: 12 + body,
        expected: 12 + TIB,
    };
    hostile_claim::<T>(&Header::new(TIB), body as usize, u64::MAX, expect)
}

/// The client sends messages and shuts down its writing half: the server receives them all,
/// then `None`, and its replies still reach the client, which then sees `None` too.
fn half_close_still_gets_replies<T: Transport>() -> TestResult {
    let listener = T::bind_ephemeral()?;
    let mut client = connect::<T>(&T::local_addr(&listener)?)?;
    let mut server = T::accept(&listener)?;
    server.set_read_timeout(Some(GUARD))?;
    let msgs: Vec<Vec<u8>> = [0, 1, 5000, 100_000]
        .iter()
        .enumerate()
        .map(|(i, &len)| pattern(len, i as u8))
        .collect();

    let sent = msgs.clone();
    let sender = thread::spawn(move || -> msgsock::Result<Connection<_>> {
        for m in &sent {
            client.send(m)?;
        }
        client.shutdown(Shutdown::Write)?;
        Ok(client)
    });
    for m in &msgs {
        assert_eq!(server.recv()?.as_ref(), Some(m));
    }
    assert_eq!(server.recv()?, None);
    assert_eq!(server.recv()?, None, "a clean close stays clean");
    let mut client = sender.join().expect("sender thread")?;

    let replier = thread::spawn(move || -> msgsock::Result<()> {
        for m in msgs.iter().rev() {
            server.send(m)?;
        }
        server.send(b"done")
    });
    for (i, &len) in [0, 1, 5000, 100_000].iter().enumerate().rev() {
        assert_eq!(client.recv()?, Some(pattern(len, i as u8)));
    }
    assert_eq!(client.recv()?.as_deref(), Some(&b"done"[..]));
    replier.join().expect("replier thread")?;
    assert_eq!(client.recv()?, None);
    Ok(())
}

/// With `SO_SNDBUF` forced to its minimum on both ends, the kernel takes each 1 MiB message a few
/// KiB at a time; messages sent both ways at once still arrive intact and in order.
fn tiny_send_buffer_carries_large_messages<T: Transport>() -> TestResult {
    let listener = T::bind_ephemeral()?;
    let mut client = connect::<T>(&T::local_addr(&listener)?)?;
    let server = T::accept(&listener)?;
    for fd in [client.as_fd(), server.as_fd()] {
        setsockopt(&fd, sockopt::SndBuf, &4096)?;
        let got = getsockopt(&fd, sockopt::SndBuf)?;
        assert!(got < 64 * 1024, "SO_SNDBUF is {got}, not small");
    }
    let echo = thread::spawn(move || serve(server));

    let sizes = [1 << 20, 1, (1 << 20) + 3, 0, 1 << 20];
    let mut sender = client.try_clone()?;
    let send_all = thread::spawn(move || -> msgsock::Result<()> {
        for (i, &len) in sizes.iter().enumerate() {
            sender.send(&pattern(len, i as u8))?;
        }
        Ok(())
    });
    // Receive while the sender is still sending: the echo needs both directions moving.
    for (i, &len) in sizes.iter().enumerate() {
        let got = client.recv()?.expect("an echo");
        assert!(got == pattern(len, i as u8), "message {i} of {len} bytes");
    }
    send_all.join().expect("sender thread")?;
    client.shutdown(Shutdown::Write)?;
    assert_eq!(client.recv()?, None);
    let end = echo.join().expect("echo thread");
    assert!(end.result.is_ok(), "{:?}", end.result);
    Ok(())
}

macro_rules! per_transport {
    ($($m:ident => $t:ty),+ $(,)?) => {$(
        mod $m {
            use super::*;

            #[test]
            fn claim_just_under_the_limit() -> TestResult {
                super::claim_just_under_the_limit::<$t>()
            }
            #[test]
            fn claim_at_the_limit_with_a_larger_body() -> TestResult {
                super::claim_at_the_limit_with_a_larger_body::<$t>()
            }
            #[test]
            fn claim_just_over_the_limit() -> TestResult {
                super::claim_just_over_the_limit::<$t>()
            }
            #[test]
            fn eight_byte_claim_of_a_terabyte() -> TestResult {
                super::eight_byte_claim_of_a_terabyte::<$t>()
            }
            #[test]
            fn eight_byte_claim_of_a_terabyte_with_no_limit() -> TestResult {
                super::eight_byte_claim_of_a_terabyte_with_no_limit::<$t>()
            }
            #[test]
            fn half_close_still_gets_replies() -> TestResult {
                super::half_close_still_gets_replies::<$t>()
            }
            #[test]
            fn tiny_send_buffer_carries_large_messages() -> TestResult {
                super::tiny_send_buffer_carries_large_messages::<$t>()
            }
        }
    )+};
}

per_transport!(unix => msgsock::UnixTransport, tcp => msgsock::TcpTransport);
