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
//! SIGTERM stop it cleanly: the socket file is removed and it exits 0.
//!
//! Server options:
//! - `--idle-timeout SECS`: close a stream connection that sends nothing for this long (default
//!   120; 0 waits forever), so stalled peers cannot pile up.
//! - `--same-uid`: on a `unix:` endpoint, accept only peers running as this user (`SO_PEERCRED`).
//! - `--authkey-file PATH`: on a stream endpoint, require Python `multiprocessing`'s authkey
//!   handshake with the key in that file (never on the command line, where `ps` shows it). A
//!   client that fails it is logged and dropped; the server keeps accepting.
//!
//! The client sends each line of stdin as one message and prints each reply on its own line;
//! `echo --authkey-file PATH --connect ENDPOINT` logs in first.

use std::error::Error;
use std::io::{self, BufRead, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use msgsock::{
    AnyConnection, AnyDatagram, AnyStream, AuthKey, Authenticator, Connection, Endpoint,
};
use nix::sys::signal::{SigSet, Signal};

type BoxError = Box<dyn Error + Send + Sync>;

const USAGE: &str =
    "usage: echo [--idle-timeout SECS] [--same-uid] [--authkey-file PATH] ENDPOINT | \
                     echo [--authkey-file PATH] --connect ENDPOINT, \
                     where ENDPOINT is unix:PATH, tcp:HOST:PORT, udp:HOST:PORT or unixgram:PATH";

/// How long a stream connection may stay silent before the server closes it, unless told.
const DEFAULT_IDLE: Duration = Duration::from_secs(120);

/// Server settings from the command line.
struct Options {
    idle: Option<Duration>,
    same_uid: bool,
    auth: Option<Arc<Authenticator>>,
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
        let stop = announce_and_watch(&local, signals)?;
        serve_datagrams(&socket, &stop);
        return Ok(());
    }
    let listener = msgsock::bind(endpoint)
        .map_err(|e| format!("cannot listen on {endpoint}: {}", chain(&e)))?;
    let local = listener.local_endpoint()?;
    let stop = announce_and_watch(&local, signals)?;

    let mut backoff = Backoff::default();
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let conn = match conn {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("echo: accept failed: {}", chain(&e));
                backoff.after_failure(&e);
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
        let idle = opts.idle;
        let auth = opts.auth.clone();
        // The handshake runs on the connection's thread: a slow or failing client holds up no
        // one else.
        let mut conn = conn;
        let spawned = thread::Builder::new().spawn(move || {
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

/// Prints the ready line, then starts the thread that waits for SIGINT/SIGTERM, sets the returned
/// flag and wakes the serving loop with a connection (or datagram) of its own.
fn announce_and_watch(local: &Endpoint, signals: SigSet) -> Result<Arc<AtomicBool>, BoxError> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on {local}")?;
    stdout.flush()?;
    drop(stdout);

    let stop = Arc::new(AtomicBool::new(false));
    let wake = wake_endpoint(local.clone());
    let stopper = Arc::clone(&stop);
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
            stopper.store(true, Ordering::SeqCst);
            // The serving loop blocks in accept(2) or recvmsg(2): a connection or datagram of our
            // own wakes it, and it then sees `stop`. If even that fails, exiting now is all that
            // is left.
            let woken = msgsock::connect(&wake).and_then(|mut c| {
                if wake.is_datagram() {
                    c.send(b"")?;
                }
                Ok(())
            });
            if let Err(e) = woken {
                eprintln!("echo: error: cannot wake the server: {}", chain(&e));
                std::process::exit(1);
            }
        })?;
    Ok(stop)
}

/// Replies to each datagram's sender with the same bytes, until `stop` is set.
fn serve_datagrams(socket: &AnyDatagram, stop: &AtomicBool) {
    let mut msg = Vec::new();
    while !stop.load(Ordering::SeqCst) {
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
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if let Err(e) = socket.send_to(&msg, &from) {
            eprintln!("echo: reply to {from} failed: {}", chain(&e));
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
    fn after_failure(&mut self, err: &msgsock::Error) {
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
        thread::sleep(delay);
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
            Ok(Some(_)) => conn.send(&msg)?,
            Ok(None) => return Ok(()),
            Err(e) if e.is_timeout() => {
                let secs = idle.map_or(0, |d| d.as_secs());
                return Err(format!("idle for {secs} s, closing").into());
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Where the server itself can connect: a wildcard address is not portable as a destination.
fn wake_endpoint(local: Endpoint) -> Endpoint {
    match local.as_inet() {
        Some(mut addr) if addr.ip().is_unspecified() => {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
            Endpoint::from(addr)
        }
        _ => local,
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
