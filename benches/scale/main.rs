//! Scale benchmark: 10,000 concurrent connections to one echo server process whose tokio
//! runtime has 2 worker threads, and the server's memory per connection.
//!
//! ```text
//! cargo bench --bench scale --features tokio                 # 10,000 connections, unix and tcp
//! cargo bench --bench scale --features tokio -- --quick      # 1,000 connections, for CI
//! cargo bench --bench scale --features tokio -- tcp --connections 5000 --rounds 20
//! cargo bench --bench scale --features tokio -- \
//!     --server-cmd target/release/examples/echo_async unix:{dir}/echo.sock
//! ```
//!
//! Two echo servers are compared in the same run ([`server`]): msgsock's `AsyncConnection` and
//! tokio-util's `LengthDelimitedCodec` in `Framed`, on the same listener. For each transport
//! (`unix:` in a private temporary directory, `tcp:` on 127.0.0.1) and each server, the binary
//! re-executes itself as the server child ([`process`]), and reads the child's `VmRSS` from
//! `/proc/PID/status` three times: before any connection, with every connection accepted and
//! idle (the child's descriptors in `/proc/PID/fd` tell when), and after every connection has
//! done its round trips, still open and idle. Memory per connection is the growth over the
//! first figure divided by the connections; the target is msgsock's at or below tokio's.
//!
//! The clients ([`clients`]) run in this process on a runtime of 2 worker threads: they connect
//! in waves, then all do their round trips at once (64 B, 1 KiB and 4 KiB messages in turn),
//! every reply compared byte for byte with what was sent; any failure or a phase over its bound
//! fails the run. Both processes raise `RLIMIT_NOFILE` to what the run needs ([`limits`]).
//!
//! `--server-cmd CMD ARGS...` (the rest of the command line) drives an external server instead
//! of the in-bench msgsock one, such as the `echo_async` example; `{dir}` in its arguments is
//! the private temporary directory. It must print `listening on ENDPOINT` first and exit 0 on
//! SIGTERM, as the `echo` examples do; tokio's server then runs on the same transport for
//! comparison.

mod clients;
mod limits;
mod process;
mod server;

use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use msgsock::Endpoint;
use tokio::net::{TcpStream, UnixStream};

use crate::clients::{Clients, SIZES};
use crate::process::{ServerProcess, CONNECTIONS_ENV, ENDPOINT_ENV, SERVER_ENV};
use crate::server::{Server, WORKERS};

const USAGE: &str = "usage: scale [--quick] [--connections N] [--rounds N] [unix] [tcp] \
                     [--server-cmd CMD ARGS...]";

/// The issue's figure, and the quick mode's.
const CONNECTIONS: usize = 10_000;
const QUICK_CONNECTIONS: usize = 1_000;
/// Round trips per connection: every size of [`SIZES`] a few times.
const ROUNDS: usize = 6;

/// How long the server may take to accept every connection, or to close them all.
const SERVER_FDS_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Unix,
    Tcp,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Unix => "unix",
            Transport::Tcp => "tcp",
        }
    }
}

struct Options {
    connections: usize,
    rounds: usize,
    transports: Vec<Transport>,
    server_cmd: Option<Vec<String>>,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut opts = Options {
            connections: CONNECTIONS,
            rounds: ROUNDS,
            transports: Vec::new(),
            server_cmd: None,
        };
        let number = |flag: &str, v: Option<String>| {
            v.as_deref()
                .and_then(|v| v.parse().ok())
                .filter(|&n: &usize| n > 0)
                .ok_or_else(|| format!("{flag} needs a number above 0\n{USAGE}"))
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => opts.connections = QUICK_CONNECTIONS,
                "--connections" => opts.connections = number(&arg, args.next())?,
                "--rounds" => opts.rounds = number(&arg, args.next())?,
                "unix" => opts.transports.push(Transport::Unix),
                "tcp" => opts.transports.push(Transport::Tcp),
                "--server-cmd" => {
                    let mut cmd: Vec<String> = args.by_ref().collect();
                    // `cargo bench` appends its `--bench` after the user's arguments.
                    if cmd.last().is_some_and(|a| a == "--bench") {
                        cmd.pop();
                    }
                    opts.server_cmd = Some(cmd);
                }
                // `cargo bench` passes this to every bench binary.
                "--bench" => {}
                _ => return Err(format!("unexpected argument {arg:?}\n{USAGE}")),
            }
        }
        if opts.transports.is_empty() {
            opts.transports = vec![Transport::Unix, Transport::Tcp];
        }
        Ok(opts)
    }
}

/// One server's run.
struct Figures {
    transport: &'static str,
    server: String,
    /// `VmRSS` in KiB: before connecting, all connected and idle, after the round trips.
    rss: [u64; 3],
    connect: Duration,
    round_trips: Duration,
}

impl Figures {
    /// Growth over the first figure per connection, in bytes, for figure `i`.
    fn per_conn(&self, i: usize, connections: usize) -> f64 {
        (self.rss[i] as f64 - self.rss[0] as f64) * 1024.0 / connections as f64
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scale: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    if let Ok(name) = std::env::var(SERVER_ENV) {
        let server = Server::parse(&name).ok_or_else(|| format!("unknown server {name:?}"))?;
        let endpoint: Endpoint = std::env::var(ENDPOINT_ENV)?.parse()?;
        return server::serve(server, &endpoint, std::env::var(CONNECTIONS_ENV)?.parse()?);
    }
    let opts = Options::parse(std::env::args().skip(1))?;
    limits::raise_nofile(opts.connections)?;
    let dir = tempfile::Builder::new().prefix("msgsock-scale").tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let mut figures = Vec::new();
    if let Some(cmd) = &opts.server_cmd {
        let external = ServerProcess::spawn_cmd(cmd, dir.path())?;
        let transport = match external.endpoint() {
            Endpoint::Unix(_) => Transport::Unix,
            Endpoint::Tcp(_) => Transport::Tcp,
            other => return Err(format!("{}: {other}: not unix: or tcp:", external.name()).into()),
        };
        figures.push(measure(&runtime, external, transport, &opts)?);
        let tokio = ServerProcess::spawn_self(
            Server::Tokio,
            &endpoint(transport, dir.path(), 0),
            opts.connections,
        )?;
        figures.push(measure(&runtime, tokio, transport, &opts)?);
    } else {
        for (t, &transport) in opts.transports.iter().enumerate() {
            for (s, server) in [Server::Msgsock, Server::Tokio].into_iter().enumerate() {
                let at = endpoint(transport, dir.path(), t * 2 + s);
                let child = ServerProcess::spawn_self(server, &at, opts.connections)?;
                figures.push(measure(&runtime, child, transport, &opts)?);
            }
        }
    }
    drop(runtime);
    dir.close()?;
    report(&figures, &opts, started.elapsed());
    Ok(())
}

/// A fresh address for the `i`-th server of the run.
fn endpoint(transport: Transport, dir: &std::path::Path, i: usize) -> Endpoint {
    match transport {
        Transport::Unix => Endpoint::Unix(dir.join(format!("scale-{i}.sock"))),
        Transport::Tcp => Endpoint::Tcp(([127, 0, 0, 1], 0).into()),
    }
}

/// Runs the clients against `server`, reading its memory at each step, then stops it.
fn measure(
    runtime: &tokio::runtime::Runtime,
    mut server: ServerProcess,
    transport: Transport,
    opts: &Options,
) -> Result<Figures, Box<dyn Error>> {
    let endpoint = server.endpoint().clone();
    let figures = match endpoint {
        Endpoint::Unix(path) => runtime.block_on(drive(&mut server, transport, opts, move || {
            UnixStream::connect(path.clone())
        })),
        Endpoint::Tcp(addr) => {
            runtime.block_on(drive(&mut server, transport, opts, move || async move {
                let stream = TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                Ok(stream)
            }))
        }
        other => Err(format!("{other}: not unix: or tcp:").into()),
    }
    .map_err(|e| format!("{} {}: {e}", transport.name(), server.name()))?;
    server.stop()?;
    Ok(figures)
}

/// The phases of one run, with the server's figures in between.
async fn drive<S, F, Fut>(
    server: &mut ServerProcess,
    transport: Transport,
    opts: &Options,
    connect: F,
) -> Result<Figures, Box<dyn Error>>
where
    S: msgsock::tokio::AsyncStream,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<S>> + Send + 'static,
{
    let n = opts.connections;
    let (before, idle_fds) = (server.rss_kib()?, server.fd_count()?);
    let t0 = Instant::now();
    // One bound for all the waves: each wave's wait blocks this thread, out of reach of the
    // clients' own timeout.
    let accept_deadline = t0 + SERVER_FDS_TIMEOUT;
    let mut clients = Clients::connect(n, connect, |open| {
        server
            .wait_fds(idle_fds + open, true, accept_deadline)
            .map_err(|e| e.to_string())
    })
    .await?;
    let connect_time = t0.elapsed();
    let connected = server.rss_kib()?;
    let t1 = Instant::now();
    clients.round_trips(opts.rounds).await?;
    let round_trips = t1.elapsed();
    let after = server.rss_kib()?;
    clients.close();
    // Every connection closed on the server's side too: nothing left behind.
    server.wait_fds(idle_fds, false, Instant::now() + SERVER_FDS_TIMEOUT)?;
    Ok(Figures {
        transport: transport.name(),
        server: server.name().to_owned(),
        rss: [before, connected, after],
        connect: connect_time,
        round_trips,
    })
}

fn report(figures: &[Figures], opts: &Options, elapsed: Duration) {
    let n = opts.connections;
    let sizes: Vec<String> = SIZES.iter().map(|&s| size(s)).collect();
    println!(
        "msgsock scale bench: {n} connections per server, {} round trips each ({} in turn), every \
         byte checked; in-bench servers on a runtime of {WORKERS} worker threads; {} cores, Linux {}; {:.1} s",
        opts.rounds,
        sizes.join(", "),
        std::thread::available_parallelism().map_or(0, |p| p.get()),
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "?".into(), |s| s.trim().to_owned()),
        elapsed.as_secs_f64()
    );
    println!(
        "{:<5} {:<14} {:>10} {:>10} {:>10} {:>12} {:>12} {:>9} {:>12}",
        "",
        "server",
        "RSS before",
        "connected",
        "after RTs",
        "B/conn idle",
        "B/conn after",
        "connect",
        "round trips/s"
    );
    for f in figures {
        println!(
            "{:<5} {:<14} {:>10} {:>10} {:>10} {:>12.0} {:>12.0} {:>7.2} s {:>12.0}",
            f.transport,
            f.server,
            kib(f.rss[0]),
            kib(f.rss[1]),
            kib(f.rss[2]),
            f.per_conn(1, n),
            f.per_conn(2, n),
            f.connect.as_secs_f64(),
            (n * opts.rounds) as f64 / f.round_trips.as_secs_f64()
        );
    }
    println!("targets: server memory per connection, server / tokio Framed (<= 1.00)");
    for f in figures.iter().filter(|f| f.server != Server::Tokio.name()) {
        let Some(tokio) = figures
            .iter()
            .find(|t| t.transport == f.transport && t.server == Server::Tokio.name())
        else {
            continue;
        };
        for (i, when) in [(1, "connected, idle"), (2, "after round trips")] {
            let ratio = f.per_conn(i, n) / tokio.per_conn(i, n);
            println!(
                "  {:<5} {:<14} {:<18} {:>6.3}x  {}",
                f.transport,
                f.server,
                when,
                ratio,
                if ratio <= 1.0 { "met" } else { "missed" }
            );
        }
    }
}

fn kib(k: u64) -> String {
    format!("{:.1} MiB", k as f64 / 1024.0)
}

fn size(bytes: usize) -> String {
    if bytes >= 1024 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}
