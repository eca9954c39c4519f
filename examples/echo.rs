//! An echo server for any endpoint, and a line-based client for it.
//!
//! ```text
//! cargo run --example echo -- unix:/tmp/echo.sock     # or tcp:127.0.0.1:0, udp:..., unixgram:...
//! cargo run --example echo -- --connect unix:/tmp/echo.sock
//! ```
//!
//! The server binds the endpoint, prints `listening on ENDPOINT` (with the real port when asked
//! for port 0), and sends every message back unchanged: on a stream endpoint it serves each
//! connection on its own thread; on a datagram endpoint it replies to each datagram's sender. An
//! error on one connection or datagram is logged and the server carries on; when `accept` fails
//! for lack of file descriptors it backs off (10 ms doubling to 1 s) instead of spinning. SIGINT or
//! SIGTERM stop it within moments whatever it is doing: the socket file and its lock are removed
//! (only if still its own) and it exits 0. The wake-up never goes through the socket's path.
//!
//! A datagram reply to a client whose queue is full (a Unix client that stopped reading) is
//! dropped and counted, never waited for, so one such client delays no one else; the drops are
//! logged to stderr at most once a second. A reply waits only for room in the server's own send
//! buffer, at most 200 ms (on Linux, the unread replies to a client connected to the server are
//! charged there, so such a client can cost others that wait).
//!
//! Server options:
//! - `--idle-timeout SECS`: close a stream connection that sends nothing for this long (default
//!   120; 0 waits forever), so stalled peers cannot pile up.
//! - `--max-connections N`: serve at most N stream connections at once (default 256); one more
//!   is accepted and closed at once, and logged. Each connection holds at most one message of up
//!   to 64 MiB (msgsock's default limit) besides small buffers, so the server's memory stays
//!   under about N × 64 MiB: 16 GiB at the default, 1 GiB with `--max-connections 16`.
//! - `--same-uid`: on a `unix:` endpoint, accept only peers running as this user (`SO_PEERCRED`).
//! - `--authkey-file PATH`: on a stream endpoint, require Python `multiprocessing`'s authkey
//!   handshake with the key in that file (never on the command line, where `ps` shows it). A
//!   client that fails it is logged and dropped; the server keeps accepting.
//!
//! The client sends each line of stdin as one message and prints each reply on its own line;
//! `echo --authkey-file PATH --connect ENDPOINT` logs in first.

use std::error::Error;
use std::io::{self, BufRead, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use msgsock::{
    AnyConnection, AnyDatagram, AnyStream, AuthKey, Authenticator, Connection, Endpoint,
};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};

type BoxError = Box<dyn Error + Send + Sync>;

const USAGE: &str =
    "usage: echo [--idle-timeout SECS] [--same-uid] [--authkey-file PATH] [--max-connections N] \
                     ENDPOINT | echo [--authkey-file PATH] --connect ENDPOINT, \
                     where ENDPOINT is unix:PATH, tcp:HOST:PORT, udp:HOST:PORT or unixgram:PATH";

/// What `--help` adds to the usage line.
const HELP: &str = "\
  --idle-timeout SECS    close a stream connection silent this long (default 120, 0: never)
  --same-uid             on unix:, accept only peers running as this user
  --authkey-file PATH    on a stream endpoint, require the multiprocessing authkey handshake
  --max-connections N    serve at most N stream connections at once (default 256); one more is
                         closed at once and logged. Each holds at most one message of up to
                         64 MiB, so memory stays under about N x 64 MiB (16 GiB at the default)
  --connect ENDPOINT     be a client: send each line of stdin, print each reply";

/// How long a stream connection may stay silent before the server closes it, unless told.
const DEFAULT_IDLE: Duration = Duration::from_secs(120);

/// How many stream connections are served at once, unless told: enough for a busy test or
/// development server; lower it where the worst case (64 MiB each) matters.
const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// How long a datagram reply may wait for room in the server's own send buffer (replies in
/// flight to clients that do read); a client whose queue is full is never waited for.
const SEND_ROOM_WAIT: Duration = Duration::from_millis(200);

/// A connection's message buffer is given back after a message larger than this, so that one
/// large message does not stay charged to an idle connection.
const KEEP_BUFFER: usize = 64 * 1024;

/// Server settings from the command line.
struct Options {
    idle: Option<Duration>,
    same_uid: bool,
    auth: Option<Arc<Authenticator>>,
    max_connections: usize,
}

fn main() -> ExitCode {
    // Not `main() -> Result`: std would print `Error: {:?}`, and a server's log line should name
    // the program and give the whole cause chain.
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo: error: {}", chain(&*e));
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), BoxError> {
    let args = std::env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument {a:?} is not UTF-8"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut opts = Options {
        idle: Some(DEFAULT_IDLE),
        same_uid: false,
        auth: None,
        max_connections: DEFAULT_MAX_CONNECTIONS,
    };
    let mut connect = false;
    let mut positional = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--idle-timeout" => {
                let secs = args.next().ok_or(USAGE)?;
                let secs: u64 = secs
                    .parse()
                    .map_err(|_| format!("invalid --idle-timeout {secs:?}: expected seconds"))?;
                opts.idle = (secs > 0).then(|| Duration::from_secs(secs));
            }
            "--max-connections" => {
                let n = args.next().ok_or(USAGE)?;
                opts.max_connections = n.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                    format!("invalid --max-connections {n:?}: expected a number above 0")
                })?;
            }
            "-h" | "--help" => {
                println!("{USAGE}\n{HELP}");
                return Ok(());
            }
            "--same-uid" => opts.same_uid = true,
            "--connect" => connect = true,
            "--authkey-file" => {
                let path = args.next().ok_or(USAGE)?;
                let key = AuthKey::from_file(path)
                    .map_err(|e| format!("cannot read the key in {path}: {}", chain(&e)))?;
                opts.auth = Some(Arc::new(Authenticator::new(key)));
            }
            a if a.starts_with('-') => return Err(USAGE.into()),
            a => positional.push(a),
        }
    }
    let [endpoint] = positional[..] else {
        return Err(USAGE.into());
    };
    let endpoint = parse(endpoint)?;
    if connect {
        return client(&endpoint, opts.auth.as_deref());
    }
    if opts.auth.is_some() && endpoint.is_datagram() {
        return Err("--authkey-file needs a stream endpoint (unix: or tcp:)".into());
    }
    if opts.same_uid && !matches!(endpoint, Endpoint::Unix(_)) {
        return Err("--same-uid needs a unix: endpoint (peer credentials exist only there)".into());
    }
    serve(&endpoint, &opts)
}

fn parse(arg: &str) -> Result<Endpoint, BoxError> {
    arg.parse()
        .map_err(|e| format!("invalid endpoint {arg:?}: {e}").into())
}

/// Serves until SIGINT or SIGTERM, then returns so the socket is dropped (removing its file).
fn serve(endpoint: &Endpoint, opts: &Options) -> Result<(), BoxError> {
    // Block the signals before any thread starts: every thread inherits the mask, so the signals
    // stay pending until the signal thread takes them with sigwait(2), and no handler runs.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.thread_block()?;

    if endpoint.is_datagram() {
        let socket = msgsock::bind_datagram(endpoint)
            .map_err(|e| format!("cannot bind {endpoint}: {}", chain(&e)))?;
        let local = socket.local_endpoint()?;
        // The serving loop waits in poll(2) for a datagram or a byte on this pair.
        let (wake, stop) = StdUnixStream::pair()?;
        announce(&local)?;
        watch_signals(signals, move || {
            let _ = (&wake).write_all(&[1]);
        })?;
        serve_datagrams(&socket, &stop);
        return Ok(());
    }
    let listener = msgsock::bind(endpoint)
        .map_err(|e| format!("cannot listen on {endpoint}: {}", chain(&e)))?;
    let local = listener.local_endpoint()?;
    let handle = listener.shutdown_handle()?;
    // Dropped on a signal, which cuts a backoff short.
    let (stop_backoff, backoff_stopped) = mpsc::channel::<()>();
    announce(&local)?;
    watch_signals(signals, move || {
        handle.shutdown();
        drop(stop_backoff);
    })?;

    let active = Arc::new(AtomicUsize::new(0));
    let mut backoff = Backoff::default();
    // Ends when the signal thread shuts the listener down.
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("echo: accept failed: {}", chain(&e));
                backoff.after_failure(&e, &backoff_stopped);
                continue;
            }
        };
        backoff.reset();
        if opts.same_uid {
            if let Err(refusal) = same_user(&conn) {
                eprintln!("echo: refused connection: {refusal}");
                continue;
            }
        }
        let Some(slot) = Slot::take(&active, opts.max_connections) else {
            eprintln!(
                "echo: closed a connection: {0} already open (--max-connections {0})",
                opts.max_connections
            );
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

/// Prints the ready line.
fn announce(local: &Endpoint) -> Result<(), BoxError> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on {local}")?;
    stdout.flush()?;
    Ok(())
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

/// A place among the `--max-connections` served at once, given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(active: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        active
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(Arc::clone(active)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether a datagram (or an error) waits on `socket`, or `false` once `stop` is readable.
fn datagram_or_stop(socket: &AnyDatagram, stop: &StdUnixStream) -> Result<bool, BoxError> {
    let mut fds = [
        PollFd::new(socket.as_fd(), PollFlags::POLLIN),
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

/// Counts datagram replies dropped because they could not be queued, logging at most once a
/// second so that a flood of them cannot flood stderr too.
#[derive(Default)]
struct Drops {
    total: u64,
    logged: Option<Instant>,
}

impl Drops {
    fn dropped(&mut self, to: &Endpoint) {
        self.total += 1;
        if self
            .logged
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.logged = Some(Instant::now());
            eprintln!(
                "echo: reply to {to} dropped: its queue is full ({} dropped so far)",
                self.total
            );
        }
    }
}

/// Replies to each datagram's sender with the same bytes, until `stop` becomes readable. A reply
/// that cannot be queued now is dropped, never waited for.
fn serve_datagrams(socket: &AnyDatagram, stop: &StdUnixStream) {
    let mut msg = Vec::new();
    let mut drops = Drops::default();
    loop {
        match datagram_or_stop(socket, stop) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                eprintln!("echo: error: waiting for datagrams: {e}");
                return;
            }
        }
        let from = match socket.recv_from(&mut msg) {
            Ok((_, Some(from))) => from,
            Ok((_, None)) => {
                eprintln!("echo: datagram from an unbound sender: no address to reply to");
                continue;
            }
            Err(e) => {
                eprintln!("echo: receive failed: {}", chain(&e));
                continue;
            }
        };
        match socket.try_send_to_within(&msg, &from, SEND_ROOM_WAIT) {
            Ok(()) => {}
            Err(msgsock::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                drops.dropped(&from);
            }
            Err(e) => eprintln!("echo: reply to {from} failed: {}", chain(&e)),
        }
    }
}

/// Refuses a Unix peer running as another user.
fn same_user(conn: &AnyConnection) -> Result<(), String> {
    let Some(AnyStream::Unix(stream)) = conn.as_stream().map(Connection::get_ref) else {
        return Err("not a Unix socket".into());
    };
    let cred = stream
        .peer_cred()
        .map_err(|e| format!("no peer credentials: {}", chain(&e)))?;
    let me = nix::unistd::geteuid().as_raw();
    if cred.uid == me {
        Ok(())
    } else {
        Err(format!(
            "pid {} runs as uid {}, not {me}",
            cred.pid, cred.uid
        ))
    }
}

/// Waits between failed accepts that will fail again at once (no file descriptors, no memory),
/// so a server out of descriptors neither dies nor spins: 10 ms, doubling up to 1 s.
#[derive(Default)]
struct Backoff {
    delay: Option<Duration>,
}

impl Backoff {
    /// Waits after `err` if it is a shortage, unless `stop` is dropped meanwhile.
    fn after_failure(&mut self, err: &msgsock::Error, stop: &mpsc::Receiver<()>) {
        let msgsock::Error::Io(io) = err else { return };
        use nix::libc::{EMFILE, ENFILE, ENOBUFS, ENOMEM};
        if !matches!(io.raw_os_error(), Some(EMFILE | ENFILE | ENOBUFS | ENOMEM)) {
            return;
        }
        let delay = self.delay.map_or(Duration::from_millis(10), |d| {
            (d * 2).min(Duration::from_secs(1))
        });
        self.delay = Some(delay);
        eprintln!("echo: backing off for {} ms", delay.as_millis());
        let _ = stop.recv_timeout(delay);
    }

    fn reset(&mut self) {
        self.delay = None;
    }
}

/// Sends every message of one connection back unchanged, until the peer closes or stays silent
/// for `idle`.
fn echo(mut conn: AnyConnection, idle: Option<Duration>) -> Result<(), BoxError> {
    conn.set_read_timeout(idle)?;
    // A peer that never reads its replies must not hold this thread forever either.
    conn.set_write_timeout(idle)?;
    let mut msg = Vec::new();
    loop {
        match conn.recv_into(&mut msg) {
            Ok(Some(_)) => {
                conn.send(&msg)?;
                if msg.capacity() > KEEP_BUFFER {
                    msg = Vec::new();
                }
            }
            Ok(None) => return Ok(()),
            Err(e) if e.is_timeout() => {
                let secs = idle.map_or(0, |d| d.as_secs());
                return Err(format!("idle for {secs} s, closing").into());
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sends each line of stdin and prints the reply.
fn client(endpoint: &Endpoint, auth: Option<&Authenticator>) -> Result<(), BoxError> {
    let mut conn = match auth {
        Some(auth) => msgsock::connect_authenticated(endpoint, auth),
        None => msgsock::connect(endpoint),
    }
    .map_err(|e| format!("cannot connect to {endpoint}: {}", chain(&e)))?;
    let mut stdout = io::stdout().lock();
    let mut reply = Vec::new();
    for line in io::stdin().lock().split(b'\n') {
        conn.send(&line?)?;
        if conn.recv_into(&mut reply)?.is_none() {
            return Err("the server closed the connection".into());
        }
        stdout.write_all(&reply)?;
        stdout.write_all(b"\n")?;
        stdout.flush()?;
    }
    Ok(())
}

/// An error and its sources on one line: `outer: inner: innermost`.
fn chain(e: &(dyn Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        // msgsock's errors already end with their cause.
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
