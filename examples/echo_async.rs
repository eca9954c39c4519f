//! The echo server and client of `examples/echo.rs` on tokio: the same command line, output
//! and behaviour, so the same process-level tests drive both.
//!
//! ```text
//! cargo run --features tokio --example echo_async -- unix:/tmp/echo.sock
//! cargo run --features tokio --example echo_async -- --connect unix:/tmp/echo.sock
//! ```
//!
//! Each stream connection is a task (the authkey handshake included, so a slow client holds up
//! no one); `--idle-timeout` is a timer around each receive and reply; SIGINT or SIGTERM
//! (`tokio::signal::unix`) end the accept loop, so the listener is dropped, its socket file and
//! lock removed (only if still its own), and the process exits 0. Log lines start `echo:` as
//! echo's do. See `examples/echo.rs` for the options.

use std::error::Error;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use msgsock::tokio::{AsyncAnyConnection, AsyncDatagram};
use msgsock::{AuthKey, Authenticator, Endpoint};
use tokio::io::AsyncBufReadExt;
use tokio::signal::unix::{signal, Signal, SignalKind};

type BoxError = Box<dyn Error + Send + Sync>;

const USAGE: &str =
    "usage: echo [--idle-timeout SECS] [--same-uid] [--authkey-file PATH] [--max-connections N] \
                     ENDPOINT | echo [--authkey-file PATH] --connect ENDPOINT, \
                     where ENDPOINT is unix:PATH, tcp:HOST:PORT, udp:HOST:PORT or unixgram:PATH";

const HELP: &str = "\
  --idle-timeout SECS    close a stream connection silent this long (default 120, 0: never)
  --same-uid             on unix:, accept only peers running as this user
  --authkey-file PATH    on a stream endpoint, require the multiprocessing authkey handshake
  --max-connections N    serve at most N stream connections at once (default 256); one more is
                         closed at once and logged. Each holds at most one message of up to
                         64 MiB, so memory stays under about N x 64 MiB (16 GiB at the default)
  --connect ENDPOINT     be a client: send each line of stdin, print each reply";

const DEFAULT_IDLE: Duration = Duration::from_secs(120);
const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// How long a datagram reply may wait for room in the server's own send buffer.
const SEND_ROOM_WAIT: Duration = Duration::from_millis(200);
/// A connection's message buffer is given back after a message larger than this.
const KEEP_BUFFER: usize = 64 * 1024;

struct Options {
    idle: Option<Duration>,
    same_uid: bool,
    auth: Option<Arc<Authenticator>>,
    max_connections: usize,
}

fn main() -> ExitCode {
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(BoxError::from)
        .and_then(|rt| rt.block_on(run()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo: error: {}", chain(&*e));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
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
    let endpoint: Endpoint = endpoint
        .parse()
        .map_err(|e| format!("invalid endpoint {endpoint:?}: {e}"))?;
    if connect {
        return client(&endpoint, opts.auth.as_deref()).await;
    }
    if opts.auth.is_some() && endpoint.is_datagram() {
        return Err("--authkey-file needs a stream endpoint (unix: or tcp:)".into());
    }
    if opts.same_uid && !matches!(endpoint, Endpoint::Unix(_)) {
        return Err("--same-uid needs a unix: endpoint (peer credentials exist only there)".into());
    }
    // Installed before the ready line, so a signal right after it is never missed.
    let stop = Stop {
        int: signal(SignalKind::interrupt())?,
        term: signal(SignalKind::terminate())?,
    };
    if endpoint.is_datagram() {
        let socket = msgsock::tokio::bind_datagram(&endpoint)
            .await
            .map_err(|e| format!("cannot bind {endpoint}: {}", chain(&e)))?;
        announce(&socket.local_endpoint()?)?;
        serve_datagrams(&socket, stop).await;
        return Ok(());
    }
    let listener = msgsock::tokio::bind(&endpoint)
        .await
        .map_err(|e| format!("cannot listen on {endpoint}: {}", chain(&e)))?;
    announce(&listener.local_endpoint()?)?;
    serve(&listener, &opts, stop).await;
    // The listener drops here: its file goes, and the runtime drops the connection tasks.
    Ok(())
}

/// SIGINT and SIGTERM, as one future.
struct Stop {
    int: Signal,
    term: Signal,
}

impl Stop {
    async fn wait(&mut self) {
        let name = tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        };
        eprintln!("echo: {name}, shutting down");
    }
}

fn announce(local: &Endpoint) -> Result<(), BoxError> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on {local}")?;
    stdout.flush()?;
    Ok(())
}

/// Accepts until a signal, each connection served by a task of its own.
async fn serve(listener: &msgsock::tokio::AsyncAnyListener, opts: &Options, mut stop: Stop) {
    let active = Arc::new(AtomicUsize::new(0));
    let mut backoff: Option<Duration> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.wait() => return,
        };
        let conn = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("echo: accept failed: {}", chain(&e));
                if let Some(delay) = shortage_delay(&e, &mut backoff) {
                    eprintln!("echo: backing off for {} ms", delay.as_millis());
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stop.wait() => return,
                    }
                }
                continue;
            }
        };
        backoff = None;
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
        let (idle, auth) = (opts.idle, opts.auth.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let mut conn = conn;
            if let Some(auth) = auth {
                if let Err(e) = conn.authenticate_server(&auth).await {
                    eprintln!("echo: rejected a client: {}", chain(&e));
                    return;
                }
            }
            if let Err(e) = echo(conn, idle).await {
                eprintln!("echo: connection failed: {}", chain(&*e));
            }
        });
    }
}

/// The wait after an accept that failed for lack of descriptors or memory, which would fail
/// again at once: 10 ms, doubling up to 1 s. `None` for other failures.
fn shortage_delay(err: &msgsock::Error, last: &mut Option<Duration>) -> Option<Duration> {
    use nix::libc::{EMFILE, ENFILE, ENOBUFS, ENOMEM};
    let msgsock::Error::Io(io) = err else {
        return None;
    };
    if !matches!(io.raw_os_error(), Some(EMFILE | ENFILE | ENOBUFS | ENOMEM)) {
        return None;
    }
    let delay = last.map_or(Duration::from_millis(10), |d| {
        (d * 2).min(Duration::from_secs(1))
    });
    *last = Some(delay);
    Some(delay)
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

/// Refuses a Unix peer running as another user.
fn same_user(conn: &AsyncAnyConnection) -> Result<(), String> {
    let stream = conn.as_stream().ok_or("not a Unix socket")?;
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

/// Sends every message of one connection back unchanged, until the peer closes or stays silent
/// for `idle`; a reply the peer does not take within `idle` ends the connection too.
async fn echo(mut conn: AsyncAnyConnection, idle: Option<Duration>) -> Result<(), BoxError> {
    let secs = idle.map_or(0, |d| d.as_secs());
    let idle_error = || -> BoxError { format!("idle for {secs} s, closing").into() };
    let mut msg = Vec::new();
    loop {
        match within(idle, conn.recv_into(&mut msg)).await {
            Some(Ok(Some(_))) => {}
            Some(Ok(None)) => return Ok(()),
            Some(Err(e)) => return Err(e.into()),
            None => return Err(idle_error()),
        }
        within(idle, conn.send(&msg))
            .await
            .ok_or_else(idle_error)??;
        if msg.capacity() > KEEP_BUFFER {
            msg = Vec::new();
        }
    }
}

/// `fut`, or `None` if `limit` passes first.
async fn within<T>(
    limit: Option<Duration>,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// Counts datagram replies dropped because they could not be queued, logging at most once a
/// second.
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

/// Replies to each datagram's sender with the same bytes, until a signal. A reply that cannot
/// be queued now is dropped, never waited for.
async fn serve_datagrams(socket: &AsyncDatagram, mut stop: Stop) {
    let mut msg = Vec::new();
    let mut drops = Drops::default();
    loop {
        let received = tokio::select! {
            received = socket.recv_from(&mut msg) => received,
            () = stop.wait() => return,
        };
        let from = match received {
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
        match socket.try_send_to_within(&msg, &from, SEND_ROOM_WAIT).await {
            Ok(()) => {}
            Err(msgsock::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                drops.dropped(&from);
            }
            Err(e) => eprintln!("echo: reply to {from} failed: {}", chain(&e)),
        }
    }
}

/// Sends each line of stdin and prints the reply.
async fn client(endpoint: &Endpoint, auth: Option<&Authenticator>) -> Result<(), BoxError> {
    let connected = async {
        let mut conn = msgsock::tokio::connect(endpoint).await?;
        if let Some(auth) = auth {
            conn.authenticate_client(auth).await?;
        }
        Ok::<_, msgsock::Error>(conn)
    };
    let mut conn = connected
        .await
        .map_err(|e| format!("cannot connect to {endpoint}: {}", chain(&e)))?;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).split(b'\n');
    let mut reply = Vec::new();
    while let Some(line) = lines.next_segment().await? {
        conn.send(&line).await?;
        if conn.recv_into(&mut reply).await?.is_none() {
            return Err("the server closed the connection".into());
        }
        let mut stdout = io::stdout().lock();
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
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
