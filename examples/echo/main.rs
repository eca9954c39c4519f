//! An echo server for any endpoint, and a line-based client for it.
//!
//! ```text
//! cargo run --example echo -- unix:/tmp/echo.sock     # or tcp:, udp:, unixgram:, unixpacket:
//! cargo run --example echo -- --connect unix:/tmp/echo.sock
//! ```
//!
//! The server binds the endpoint, prints `listening on ENDPOINT` (with the real port when asked
//! for port 0), and sends every message back unchanged: on a stream endpoint it serves each
//! connection on its own thread; on a datagram endpoint it replies to each datagram's sender. On
//! `unix:` and `unixgram:` endpoints a message comes back with the descriptors that came with it
//! (`SCM_RIGHTS`), so a peer in any language can test descriptor passing (Python has
//! `socket.send_fds`/`recv_fds`); a message that lost its descriptors at the server's descriptor
//! limit is logged and not answered. An
//! error on one connection or datagram is logged and the server carries on; when `accept` fails
//! for lack of file descriptors it backs off (10 ms doubling to 1 s) instead of spinning. SIGINT or
//! SIGTERM stop it within moments whatever it is doing: the socket file and its lock are removed
//! (only if still its own) and it exits 0. The wake-up never goes through the socket's path.
//!
//! A datagram reply to a client whose queue is full (a Unix client that stopped reading) is
//! dropped and counted, never waited for, so such a client delays no one else. Each kind of
//! per-datagram log line (a dropped reply, a failed reply, a sender with no address, a failed
//! receive) is written at once the first time, then at most once a second standing for those
//! since ("(N like this since the last report)"; dropped replies give their running total), and
//! what is still uncounted is written as the server stops. A reply waits only for room in the
//! server's own send buffer, at most 200 ms, and once such a wait has failed no reply waits
//! again until one has gone out, so a full buffer never slows the server's reading: it drops
//! instead. On Linux the replies a Unix client has not read are charged to that buffer (about
//! 208 KiB): clients that stop reading can fill it, one connected to the server or a few sent
//! long replies, and then replies to everyone are dropped (and logged as dropped because "the
//! server's send buffer is full") until they read or leave. The server cannot tell which peer
//! holds the buffer, so it does not protect other clients from that.
//!
//! Server options:
//! - `--idle-timeout SECS`: close a stream connection that sends nothing for this long, or takes
//!   longer than this over one message or to read one reply (default 120; 0 waits forever), so
//!   stalled and trickling peers cannot pile up.
//! - `--max-connections N`: serve at most N stream connections at once (default 256); one more
//!   is accepted and closed at once, and logged. Each connection holds at most one message of up
//!   to 64 MiB (msgsock's default limit) and the unsent rest of one reply (a reply whose write
//!   timed out is kept to finish) besides small buffers, so the server's memory stays under
//!   about N × 128 MiB: 32 GiB at the default, 2 GiB with `--max-connections 16`.
//! - `--same-uid`: on a `unix:` or `unixpacket:` endpoint, accept only peers running as this
//!   user (`SO_PEERCRED`).
//! - `--authkey-file PATH`: on a stream endpoint, require Python `multiprocessing`'s authkey
//!   handshake with the key in that file (never on the command line, where `ps` shows it). A
//!   client that fails it is logged and dropped; the server keeps accepting.
//!
//! The client sends each line of stdin as one message and prints each reply on its own line;
//! `echo --authkey-file PATH --connect ENDPOINT` logs in first. Once connected, SIGINT or SIGTERM
//! stop it as they stop the server, whether it waits for stdin or for a reply: its connection is
//! dropped (a `unixgram:` client's own socket file with it) and it exits 0. With
//! `--reply-timeout SECS` (default 5 on `udp:` and `unixgram:`, where a datagram may be lost or
//! dropped, and 0, no limit, elsewhere) a reply that has not come in that long ends it with an
//! error and exit 1.

mod cli;

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::process::ExitCode;
use std::sync::{mpsc, Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use msgsock::{AnyConnection, AnyDatagram, AnyStream, Authenticator, Connection, Endpoint};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};

use crate::cli::{borrowed, chain, exchange_error, BoxError, Command, Options, Places};

fn main() -> ExitCode {
    cli::exit(run())
}

fn run() -> Result<(), BoxError> {
    match cli::parse_args()? {
        Command::Help => Ok(()),
        Command::Connect {
            endpoint,
            auth,
            reply,
        } => client(&endpoint, auth.as_deref(), reply),
        Command::Serve { endpoint, opts } => serve(&endpoint, &opts),
    }
}

/// The wake-up of the accept loop while it waits for a place to come free.
#[derive(Default)]
struct Freed {
    lock: Mutex<()>,
    cv: Condvar,
}

impl Freed {
    /// A place came free. Under the lock, so that a waiter between its check and its wait
    /// cannot miss it.
    fn notify(&self) {
        let _held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.cv.notify_all();
    }

    /// Returns once `places` has a free place, or after [`cli::PLACE_GRACE`] at most.
    fn wait_for_place(&self, places: &Places) {
        let deadline = Instant::now() + cli::PLACE_GRACE;
        let mut held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        while places.full() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            held = self
                .cv
                .wait_timeout(held, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Serves until SIGINT or SIGTERM, then returns so the socket is dropped (removing its file).
fn serve(endpoint: &Endpoint, opts: &Options) -> Result<(), BoxError> {
    let signals = block_stop_signals()?;
    if endpoint.is_datagram() {
        let socket = msgsock::bind_datagram(endpoint)
            .map_err(|e| format!("cannot bind {endpoint}: {}", chain(&e)))?;
        let local = socket.local_endpoint()?;
        // The serving loop waits in poll(2) for a datagram or a byte on this pair.
        let (wake, stop) = StdUnixStream::pair()?;
        cli::announce(&local)?;
        watch_signals(signals, move || {
            let _ = (&wake).write_all(&[1]);
        })?;
        serve_datagrams(&socket, &stop);
        return Ok(());
    }
    let listener = msgsock::bind(endpoint)
        .map_err(|e| format!("cannot listen on {endpoint}: {}", chain(&e)))?;
    let seqpacket = matches!(listener, msgsock::AnyListener::Seqpacket(_));
    cli::check_auth(opts, seqpacket, endpoint)?;
    let local = listener.local_endpoint()?;
    let handle = listener.shutdown_handle()?;
    // Dropped on a signal, which cuts a backoff short.
    let (stop_backoff, backoff_stopped) = mpsc::channel::<()>();
    cli::announce(&local)?;
    watch_signals(signals, move || {
        handle.shutdown();
        drop(stop_backoff);
    })?;

    let freed = Arc::new(Freed::default());
    let places = Places::new(opts.max_connections, {
        let freed = Arc::clone(&freed);
        move || freed.notify()
    });
    let mut backoff = cli::Backoff::new("echo");
    // Ends when the signal thread shuts the listener down.
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("echo: accept failed: {}", chain(&e));
                if let Some(delay) = backoff.after_failure(&e) {
                    let _ = backoff_stopped.recv_timeout(delay);
                }
                continue;
            }
        };
        backoff.reset();
        freed.wait_for_place(&places);
        let Some(slot) = cli::admit(&places, opts, || same_user(&conn)) else {
            continue;
        };
        let idle = opts.idle;
        let auth = opts.auth.clone();
        // The handshake runs on the connection's thread: a slow or failing client holds up no
        // one else.
        let mut conn = conn;
        // The slot moves into the thread (or is dropped with it if it cannot start).
        let spawned = thread::Builder::new().spawn(move || {
            let _slot = slot;
            if let Some(auth) = auth {
                if let Err(e) = conn.authenticate_server(&auth) {
                    eprintln!("echo: rejected a client: {}", chain(&e));
                    return;
                }
            }
            if let Err(e) = echo(conn, idle) {
                eprintln!("echo: connection failed: {}", chain(&*e));
            }
        });
        if let Err(e) = spawned {
            eprintln!("echo: cannot start a connection thread: {e}");
        }
    }
    Ok(())
}

/// Blocks SIGINT and SIGTERM, before any thread starts: every thread inherits the mask, so the
/// signals stay pending until the signal thread ([`watch_signals`]) takes them with sigwait(2),
/// and no handler runs.
fn block_stop_signals() -> Result<SigSet, BoxError> {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.thread_block()?;
    Ok(signals)
}

/// Starts the thread that waits for SIGINT/SIGTERM and then calls `wake`, which stops the serving
/// loop whatever it waits in. Nothing goes through the socket's path or port: a successor bound
/// there is never reached.
fn watch_signals(signals: SigSet, wake: impl FnOnce() + Send + 'static) -> Result<(), BoxError> {
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let signal = match signals.wait() {
                Ok(signal) => signal,
                Err(e) => {
                    eprintln!("echo: error: waiting for signals: {e}");
                    return;
                }
            };
            eprintln!("echo: {signal}, shutting down");
            wake();
        })?;
    Ok(())
}

/// Whether `fd` is readable (or has an error to report), or `false` once `stop` is readable.
fn readable_or_stop(fd: BorrowedFd<'_>, stop: &StdUnixStream) -> Result<bool, BoxError> {
    let mut fds = [
        PollFd::new(fd, PollFlags::POLLIN),
        PollFd::new(stop.as_fd(), PollFlags::POLLIN),
    ];
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => return Ok(!fds[1].any().unwrap_or(true)),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// What [`readable_until_or_stop`] found.
enum Woken {
    /// The socket is readable (or has an error to report).
    Readable,
    Stop,
    /// `until` came first.
    Due,
}

/// Waits in poll(2) until `fd` is readable (or has an error to report), `stop` is readable, or
/// `until` (if any) has passed.
fn readable_until_or_stop(
    fd: BorrowedFd<'_>,
    stop: &StdUnixStream,
    until: Option<Instant>,
) -> Result<Woken, BoxError> {
    let mut fds = [
        PollFd::new(fd, PollFlags::POLLIN),
        PollFd::new(stop.as_fd(), PollFlags::POLLIN),
    ];
    loop {
        let timeout = until.map_or(PollTimeout::NONE, |t| {
            let ms = t.saturating_duration_since(Instant::now()).as_millis();
            // Rounded up, so the wait never ends just before `until`.
            PollTimeout::try_from(ms + 1).unwrap_or(PollTimeout::MAX)
        });
        match poll(&mut fds, timeout) {
            Ok(0) => return Ok(Woken::Due),
            Ok(_) if fds[1].any().unwrap_or(true) => return Ok(Woken::Stop),
            Ok(_) => return Ok(Woken::Readable),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Replies to each datagram's sender with the same bytes (and on a Unix socket the same
/// descriptors), until `stop` becomes readable. A reply that cannot be queued now is dropped,
/// never waited for.
fn serve_datagrams(socket: &AnyDatagram, stop: &StdUnixStream) {
    let mut msg = Vec::new();
    let mut fds = Vec::new();
    let unix = matches!(socket, AnyDatagram::Unix(_));
    let mut log = cli::DatagramLog::default();
    let mut room = cli::SendRoom::default();
    loop {
        match readable_until_or_stop(socket.as_fd(), stop, log.next_due()) {
            Ok(Woken::Readable) => {}
            Ok(Woken::Due) => {
                log.write_due(false);
                continue;
            }
            Ok(Woken::Stop) => break,
            Err(e) => {
                eprintln!("echo: error: waiting for datagrams: {e}");
                break;
            }
        }
        let received = if unix {
            socket.recv_from_with_fds(&mut msg, &mut fds)
        } else {
            socket.recv_from(&mut msg)
        };
        let Some(from) = log.sender(received) else {
            continue;
        };
        let sent = if fds.is_empty() {
            socket.try_send_to_within(&msg, &from, room.wait())
        } else {
            socket.try_send_to_with_fds_within(&msg, &borrowed(&fds), &from, room.wait())
        };
        // Our copies: the reply carried its own.
        fds.clear();
        room.after(&sent, socket.as_fd());
        log.reply(sent, &from, &room);
    }
    // What was counted and not yet written.
    log.write_due(true);
}

/// Refuses a Unix peer running as another user.
fn same_user(conn: &AnyConnection) -> Result<(), String> {
    if let Some(socket) = conn.as_seqpacket() {
        return cli::same_user(socket.peer_cred());
    }
    let Some(AnyStream::Unix(stream)) = conn.as_stream().map(Connection::get_ref) else {
        return Err("not a Unix socket".into());
    };
    cli::same_user(stream.peer_cred())
}

/// Sends every message of one connection back unchanged, with the descriptors that came with
/// it on a Unix stream or SEQPACKET connection, until the peer closes or stays silent for `idle`.
fn echo(mut conn: AnyConnection, idle: Option<Duration>) -> Result<(), BoxError> {
    conn.set_read_timeout(idle)?;
    // A peer that trickles a message, a byte now and then, or takes its reply a little at a
    // time, is as idle as a silent one: the timeout bounds each whole message and reply, as
    // echo_async's does.
    conn.set_message_timeout(idle);
    // A peer that never reads its replies must not hold this thread forever either.
    conn.set_write_timeout(idle)?;
    // Unix streams and SEQPACKET carry descriptors; TCP refuses them.
    let unix = conn.as_seqpacket().is_some()
        || matches!(
            conn.as_stream().map(Connection::get_ref),
            Some(AnyStream::Unix(_))
        );
    let mut msg = Vec::new();
    let mut fds = Vec::new();
    loop {
        let received = if unix {
            conn.recv_into_with_fds(&mut msg, &mut fds)
        } else {
            conn.recv_into(&mut msg)
        };
        match received {
            Ok(Some(_)) => {
                if fds.is_empty() {
                    conn.send(&msg)?;
                } else {
                    conn.send_with_fds(&msg, &borrowed(&fds))?;
                    // Our copies: the reply carried its own.
                    fds.clear();
                }
                if msg.capacity() > cli::KEEP_BUFFER {
                    msg = Vec::new();
                }
            }
            Ok(None) => return Ok(()),
            Err(e) if e.is_timeout() => return Err(cli::idle_error(idle)),
            // The connection is still in step: the next message follows.
            Err(e @ msgsock::Error::FdsTruncated { .. }) => {
                eprintln!("echo: dropped a message: {}", chain(&e));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sends each line of stdin and prints the reply, until stdin ends or SIGINT/SIGTERM; either way
/// the connection is dropped on return, so a `unixgram:` client's own socket file goes.
fn client(
    endpoint: &Endpoint,
    auth: Option<&Authenticator>,
    reply_timeout: Option<Duration>,
) -> Result<(), BoxError> {
    let mut conn = match auth {
        Some(auth) => msgsock::connect_authenticated(endpoint, auth),
        None => msgsock::connect(endpoint),
    }
    .map_err(|e| format!("cannot connect to {endpoint}: {}", chain(&e)))?;
    // A stream's reply that has begun to arrive is bounded as a whole, as the wait for it is.
    conn.set_message_timeout(reply_timeout);
    // Only now, as the server does once bound: a connect that hangs is still ended by a signal.
    let signals = block_stop_signals()?;
    // Each wait below, for stdin or for a reply, is a poll(2) that a byte on this pair ends.
    let (wake, stop) = StdUnixStream::pair()?;
    watch_signals(signals, move || {
        let _ = (&wake).write_all(&[1]);
    })?;
    let mut stdout = io::stdout().lock();
    let mut lines = StdinLines::default();
    let mut reply = Vec::new();
    while let Some(line) = lines.next(&stop)? {
        conn.send(&line).map_err(|e| exchange_error(endpoint, e))?;
        // A reply already (partly) received is not waited for in poll(2).
        let buffered = conn.as_stream().map_or(0, Connection::buffered_len);
        let until = reply_timeout.and_then(|t| Instant::now().checked_add(t));
        if buffered == 0 {
            match readable_until_or_stop(conn.as_fd(), &stop, until)? {
                Woken::Readable => {}
                Woken::Stop => return Ok(()),
                Woken::Due => {
                    return Err(cli::no_reply(endpoint, reply_timeout.unwrap_or_default()))
                }
            }
        }
        let received = match conn.recv_into(&mut reply) {
            Err(e) if e.is_timeout() => {
                return Err(cli::no_reply(endpoint, reply_timeout.unwrap_or_default()))
            }
            received => received,
        };
        if received.map_err(|e| exchange_error(endpoint, e))?.is_none() {
            return Err("the server closed the connection".into());
        }
        stdout.write_all(&reply)?;
        stdout.write_all(b"\n")?;
        stdout.flush()?;
    }
    Ok(())
}

/// The lines of stdin, split at `\n` as `BufRead::split` splits them, read only once poll(2)
/// says stdin is readable, so that a stop signal ends the wait for the next one.
#[derive(Default)]
struct StdinLines {
    /// Read and not yet handed out.
    buf: Vec<u8>,
    eof: bool,
}

impl StdinLines {
    /// The next line, without its `\n`; `None` at the end of stdin or once `stop` is readable.
    fn next(&mut self, stop: &StdUnixStream) -> Result<Option<Vec<u8>>, BoxError> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                return Ok(Some(line));
            }
            if self.eof {
                // A last line without a newline.
                return Ok((!self.buf.is_empty()).then(|| std::mem::take(&mut self.buf)));
            }
            let stdin = io::stdin();
            if !readable_or_stop(stdin.as_fd(), stop)? {
                return Ok(None);
            }
            let mut chunk = [0; 8192];
            match nix::unistd::read(stdin.as_fd(), &mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(io::Error::from(e).into()),
            }
        }
    }
}
