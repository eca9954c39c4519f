// Included by `tests/liveness.rs` (the blocking `echo`) and `tests/liveness_async.rs` (`echo_async`):
// see `tests/procs` for how each picks its binary.

use std::io::{self, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use echo_process::EchoProcess;
use msgsock::{AnyStream, Connection, Endpoint, Stream, TcpTransport, Transport, UnixTransport};

use crate::common::pattern64 as pattern;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A failure guard only: a client blocked this long fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(60);

/// Round trips the active client makes while the others are stalled.
const ROUND_TRIPS: usize = 200;

/// What the stalled peer that announces a large message claims it will send.
const ANNOUNCED_LEN: usize = 1 << 20;

/// The size of the messages the flooding peer sends without reading the echoes.
const FLOOD_MESSAGE_LEN: usize = 64 * 1024;

/// More than any loopback socket buffers hold: reaching it means the flood never filled them.
const MAX_FLOOD_MESSAGES: usize = 4096;

#[test]
fn echo_example_on_unix_serves_others_while_peers_stall() -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = EchoProcess::start(&format!("unix:{}", dir.path().join("echo.sock").display()));
    stalled_peers_with_echo_example(server)
}

#[test]
fn echo_example_on_tcp_serves_others_while_peers_stall() -> TestResult {
    stalled_peers_with_echo_example(EchoProcess::start("tcp:127.0.0.1:0"))
}

#[test]
fn thread_per_connection_unix_server_serves_others_while_peers_stall() -> TestResult {
    stalled_peers_with_threaded_server::<UnixTransport>()
}

#[test]
fn thread_per_connection_tcp_server_serves_others_while_peers_stall() -> TestResult {
    stalled_peers_with_threaded_server::<TcpTransport>()
}

#[test]
fn read_timeout_drops_silent_unix_peers() -> TestResult {
    read_timeout_drops_silent_peers::<UnixTransport>()
}

#[test]
fn read_timeout_drops_silent_tcp_peers() -> TestResult {
    read_timeout_drops_silent_peers::<TcpTransport>()
}

fn stalled_peers_with_echo_example(mut server: EchoProcess) -> TestResult {
    let endpoint = server.endpoint().clone();
    let stalled = Stalled::open(&endpoint)?;
    let active = active_round_trips(&endpoint);
    server.assert_running();
    active.map_err(|e| format!("{e}; server stderr:\n{}", server.stderr()))?;
    stalled.complete()?;
    server.assert_running();
    Ok(())
}

/// The same attack on a server written only against [`Transport`]; every connection's handler
/// must end cleanly once its peer completed and closed.
fn stalled_peers_with_threaded_server<T: Transport>() -> TestResult {
    let server = ThreadedEcho::<T>::start(None)?;
    let endpoint = server.endpoint();
    let stalled = Stalled::open(&endpoint)?;
    active_round_trips(&endpoint)?;
    stalled.complete()?;
    let outcomes = server.stop();
    assert_eq!(outcomes.len(), 5, "four stalled peers and the active one");
    for outcome in outcomes {
        outcome.map_err(|e| format!("a connection ended with an error: {e}"))?;
    }
    Ok(())
}

/// A server that sets a read timeout drops each silent peer, whether it never sent a byte or
/// stopped inside a header or a payload, with an error that says it was a timeout.
fn read_timeout_drops_silent_peers<T: Transport>() -> TestResult {
    let listener = T::bind_ephemeral()?;
    let endpoint = T::endpoint(&T::local_addr(&listener)?);
    // Every byte is in place before the server accepts, so its timeout cannot expire before a
    // peer has sent what it means to send, however slowly this test runs.
    let mut silent = RawPeer::connect(&endpoint)?;
    let mut mid_header = RawPeer::connect(&endpoint)?;
    mid_header.writer.write_all(&frame_header(100)[..2])?;
    let mut mid_payload = RawPeer::connect(&endpoint)?;
    mid_payload.writer.write_all(&frame_header(100))?;
    mid_payload.writer.write_all(&[7; 10])?;
    // Short, so the test is quick; how short does not matter to what it checks.
    let server = ThreadedEcho::<T>::serve(listener, Some(Duration::from_millis(200)))?;

    for (name, peer) in [
        ("silent", &mut silent),
        ("mid-header", &mut mid_header),
        ("mid-payload", &mut mid_payload),
    ] {
        match peer.reader.recv() {
            Ok(None) => {}
            other => panic!("{name} peer: expected the server to close, got {other:?}"),
        }
    }
    let outcomes = server.stop();
    assert_eq!(outcomes.len(), 3);
    for outcome in outcomes {
        match outcome {
            Err(e) if e.is_timeout() => {}
            other => panic!("expected a timeout error, got {other:?}"),
        }
    }
    Ok(())
}

/// The active client: [`ROUND_TRIPS`] messages of varied sizes, each echo checked byte for byte.
fn active_round_trips(endpoint: &Endpoint) -> Result<(), String> {
    let mut client = msgsock::connect(endpoint).map_err(|e| format!("connect: {e}"))?;
    client
        .set_read_timeout(Some(PATIENCE))
        .and_then(|()| client.set_write_timeout(Some(PATIENCE)))
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    for i in 0..ROUND_TRIPS {
        let msg = pattern(i * 997 % (100 * 1024), i as u64);
        client
            .send(&msg)
            .map_err(|e| format!("active client, send {i}: {e}"))?;
        match client.recv_into(&mut reply) {
            Ok(Some(_)) if reply == msg => {}
            Ok(Some(len)) => {
                return Err(format!(
                    "active client: reply {i} is {len} bytes, not the {} sent",
                    msg.len()
                ))
            }
            Ok(None) => return Err(format!("active client: closed before reply {i}")),
            Err(e) => return Err(format!("active client, reply {i}: {e}")),
        }
    }
    Ok(())
}

/// The four stalled peers, opened in order and left as they are.
struct Stalled {
    /// Connected, never sent a byte.
    silent: RawPeer,
    /// Sent 2 bytes of a header.
    mid_header: RawPeer,
    /// Announced [`ANNOUNCED_LEN`] bytes and sent 10 of them.
    announced: RawPeer,
    /// Sent messages without reading the echoes until its send buffer filled.
    flooder: Flooder,
}

impl Stalled {
    fn open(endpoint: &Endpoint) -> io::Result<Stalled> {
        let silent = RawPeer::connect(endpoint)?;
        let mut mid_header = RawPeer::connect(endpoint)?;
        mid_header.writer.write_all(&frame_header(1000)[..2])?;
        let mut announced = RawPeer::connect(endpoint)?;
        announced
            .writer
            .write_all(&frame_header(ANNOUNCED_LEN as u32))?;
        announced
            .writer
            .write_all(&pattern(ANNOUNCED_LEN, 3)[..10])?;
        let flooder = Flooder::flood(endpoint)?;
        Ok(Stalled {
            silent,
            mid_header,
            announced,
            flooder,
        })
    }

    /// Each peer finishes the message it started and must get it back intact, then closes and
    /// must see the server close cleanly in turn.
    fn complete(self) -> io::Result<()> {
        let Stalled {
            mut silent,
            mut mid_header,
            mut announced,
            flooder,
        } = self;
        flooder.complete()?;

        let msg = pattern(1000, 2);
        mid_header.writer.write_all(&frame_header(1000)[2..])?;
        mid_header.writer.write_all(&msg)?;
        mid_header.expect_echo("mid-header peer", &msg)?;
        mid_header.expect_close("mid-header peer")?;

        let msg = pattern(ANNOUNCED_LEN, 3);
        announced.writer.write_all(&msg[10..])?;
        announced.expect_echo("announcing peer", &msg)?;
        announced.expect_close("announcing peer")?;

        let msg = pattern(500, 1);
        silent.writer.write_all(&frame_header(500))?;
        silent.writer.write_all(&msg)?;
        silent.expect_echo("silent peer", &msg)?;
        silent.expect_close("silent peer")
    }
}

/// A peer that writes raw bytes, whole frames or not, and reads echoes as messages.
struct RawPeer {
    writer: AnyStream,
    reader: Connection<AnyStream>,
}

impl RawPeer {
    fn connect(endpoint: &Endpoint) -> io::Result<RawPeer> {
        let conn = msgsock::connect(endpoint)?
            .into_stream()
            .expect("a stream endpoint");
        conn.set_read_timeout(Some(PATIENCE))?;
        conn.set_write_timeout(Some(PATIENCE))?;
        let writer = conn.get_ref().try_clone()?;
        Ok(RawPeer {
            writer,
            reader: conn,
        })
    }

    fn expect_echo(&mut self, who: &str, msg: &[u8]) -> io::Result<()> {
        match self.reader.recv()? {
            Some(reply) if reply == msg => Ok(()),
            Some(reply) => Err(io::Error::other(format!(
                "{who}: got {} bytes back, not the {} sent",
                reply.len(),
                msg.len()
            ))),
            None => Err(io::Error::other(format!(
                "{who}: the server closed the connection instead of echoing"
            ))),
        }
    }

    fn expect_close(&mut self, who: &str) -> io::Result<()> {
        self.writer.shutdown(Shutdown::Write)?;
        match self.reader.recv()? {
            None => Ok(()),
            Some(reply) => Err(io::Error::other(format!(
                "{who}: an unexpected {}-byte message instead of a close",
                reply.len()
            ))),
        }
    }
}

/// A peer that sends messages and reads none of the echoes, until its own send buffer is full:
/// by then the server's send buffer towards it is full too and its handler is blocked sending.
struct Flooder {
    peer: RawPeer,
    /// Whole messages written.
    sent: usize,
    /// Bytes of the next message (header included) already written.
    partial: usize,
}

impl Flooder {
    fn flood(endpoint: &Endpoint) -> io::Result<Flooder> {
        let mut peer = RawPeer::connect(endpoint)?;
        peer.writer.set_nonblocking(true)?;
        let mut sent = 0;
        let mut partial = 0;
        let mut frame = flood_frame(sent);
        loop {
            match peer.writer.write(&frame[partial..]) {
                Ok(n) => {
                    partial += n;
                    if partial == frame.len() {
                        sent += 1;
                        partial = 0;
                        assert!(
                            sent < MAX_FLOOD_MESSAGES,
                            "{sent} messages written and the socket never filled"
                        );
                        frame = flood_frame(sent);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        peer.writer.set_nonblocking(false)?;
        Ok(Flooder {
            peer,
            sent,
            partial,
        })
    }

    /// Reads every echo of the whole messages, in order; then writes the rest of the message it
    /// was cut off in and reads that echo too.
    fn complete(mut self) -> io::Result<()> {
        for i in 0..self.sent {
            self.peer
                .expect_echo(&format!("flooder, message {i}"), &flood_payload(i))?;
        }
        let next = self.sent;
        if self.partial > 0 {
            self.peer
                .writer
                .write_all(&flood_frame(next)[self.partial..])?;
            self.peer
                .expect_echo(&format!("flooder, message {next}"), &flood_payload(next))?;
        }
        self.peer.expect_close("flooder")
    }
}

fn flood_payload(i: usize) -> Vec<u8> {
    pattern(FLOOD_MESSAGE_LEN, i as u64)
}

fn flood_frame(i: usize) -> Vec<u8> {
    let mut frame = frame_header(FLOOD_MESSAGE_LEN as u32).to_vec();
    frame.extend_from_slice(&flood_payload(i));
    frame
}

/// The 4-byte length prefix of the wire format (lengths up to `0x7FFF_FFFF`).
fn frame_header(len: u32) -> [u8; 4] {
    len.to_be_bytes()
}

/// An echo server written only against [`Transport`]: one thread per connection, optionally with
/// a read timeout that drops a silent peer. Its handlers' outcomes are collected by
/// [`stop`](Self::stop).
struct ThreadedEcho<T: Transport> {
    addr: T::Addr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    handlers: Arc<Mutex<Vec<JoinHandle<msgsock::Result<()>>>>>,
}

impl<T: Transport> ThreadedEcho<T> {
    fn start(read_timeout: Option<Duration>) -> msgsock::Result<ThreadedEcho<T>> {
        ThreadedEcho::serve(T::bind_ephemeral()?, read_timeout)
    }

    fn serve(
        listener: T::Listener,
        read_timeout: Option<Duration>,
    ) -> msgsock::Result<ThreadedEcho<T>> {
        let addr = T::local_addr(&listener)?;
        let stop = Arc::new(AtomicBool::new(false));
        let handlers = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let stop = Arc::clone(&stop);
            let handlers = Arc::clone(&handlers);
            thread::spawn(move || loop {
                let accepted = T::accept(&listener);
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let conn = accepted.expect("accept");
                let handler = thread::spawn(move || echo(conn, read_timeout));
                handlers.lock().unwrap().push(handler);
            })
        };
        Ok(ThreadedEcho {
            addr,
            stop,
            acceptor: Some(acceptor),
            handlers,
        })
    }

    fn endpoint(&self) -> Endpoint {
        T::endpoint(&self.addr)
    }

    /// Stops accepting and waits for every handler, returning how each connection ended. Call
    /// it once all clients are done: a handler ends only when its peer closes or times out.
    fn stop(mut self) -> Vec<msgsock::Result<()>> {
        self.stop_accepting();
        let handlers = std::mem::take(&mut *self.handlers.lock().unwrap());
        handlers
            .into_iter()
            .map(|h| h.join().expect("handler panicked"))
            .collect()
    }

    /// Wakes the acceptor with a connection of our own, after which it sees the flag and returns.
    fn stop_accepting(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            self.stop.store(true, Ordering::SeqCst);
            let wake = T::connect(&self.addr);
            if acceptor.join().is_err() && !thread::panicking() {
                panic!("the acceptor panicked");
            }
            drop(wake);
        }
    }
}

impl<T: Transport> Drop for ThreadedEcho<T> {
    fn drop(&mut self) {
        self.stop_accepting();
    }
}

/// Echoes every message until the peer closes; any error, a timeout included, ends the
/// connection and is returned.
fn echo<S: Stream>(mut conn: Connection<S>, read_timeout: Option<Duration>) -> msgsock::Result<()> {
    conn.set_read_timeout(read_timeout)?;
    let mut msg = Vec::new();
    while conn.recv_into(&mut msg)?.is_some() {
        conn.send(&msg)?;
    }
    Ok(())
}
