//! Two processes talking over a Unix socket and over TCP, with the same code for both.
//!
//! ```text
//! cargo run --example demo
//! ```
//!
//! The parent binds a Unix socket in a private temporary directory and a TCP port on
//! `127.0.0.1`, then starts itself again as the child, naming both endpoints on the command line.
//! Over each transport the two exchange requests of 16 B to 1 MiB (each reply is the request
//! reversed, checked by the parent), time round trips of small messages, and stream 1 MiB
//! messages. The parent's side is generic over [`Transport`]; the child connects from the
//! endpoint strings with [`msgsock::connect`]. Both sides run this file, so the constants below
//! are the protocol. At the end the temporary directory is gone, and a failed child makes the
//! parent fail too.

use std::error::Error;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};
use std::{env, fmt, io, thread};

use msgsock::{Bind, Endpoint, TcpTransport, Transport, UnixTransport};

#[path = "shared/errors.rs"]
mod errors;

/// The request sizes of the conversation, in order.
const SIZES: &[usize] = &[16, 4 << 10, 64 << 10, 1 << 20];
/// Round trips timed for latency, and the size of each message.
const ROUND_TRIPS: usize = 1000;
const PING_LEN: usize = 64;
/// Messages streamed one way for throughput, and the size of each; the child answers once, with
/// the total byte count as a `u64` in big-endian.
const STREAM_COUNT: usize = 64;
const STREAM_LEN: usize = 1 << 20;

const USAGE: &str = "usage: cargo run --example demo (no arguments)";

fn main() -> Result<(), Report> {
    let args = env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument {a:?} is not UTF-8"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    match args.as_slice() {
        [] => parent(),
        [flag, endpoints @ ..] if flag == "--child" && !endpoints.is_empty() => child(endpoints),
        [arg, ..] => Err(format!("unexpected argument {arg:?}; {USAGE}").into()),
    }
}

/// Binds both endpoints, runs the child and talks to it over each in turn.
fn parent() -> Result<(), Report> {
    let unix = UnixTransport::bind_ephemeral()?;
    let tcp = TcpTransport::bind_ephemeral()?;
    // `bind_ephemeral` put the socket in a fresh private directory, removed with the listener.
    let dir = PathBuf::from(unix.path().parent().ok_or("socket path has no parent")?);
    let endpoints = [unix.local_endpoint()?, tcp.local_endpoint()?];
    println!(
        "parent (pid {}): listening on {} and {}",
        std::process::id(),
        endpoints[0],
        endpoints[1]
    );

    let mut child = Command::new(env::current_exe()?)
        .arg("--child")
        .args(endpoints.iter().map(ToString::to_string))
        .spawn()?;
    println!("parent: started the child, pid {}", child.id());
    // A child that dies before connecting would leave `accept` waiting forever: once it has
    // exited, connect to each endpoint so any waiting `accept` returns (harmless if none is).
    let watcher = thread::spawn(move || -> io::Result<ExitStatus> {
        let status = child.wait()?;
        for endpoint in &endpoints {
            let _ = msgsock::connect(endpoint);
        }
        Ok(status)
    });

    let talked = talk::<UnixTransport>(&unix).and_then(|u| Ok([u, talk::<TcpTransport>(&tcp)?]));
    // Closing the listeners also ends a child still queued on one after a failure here.
    drop((unix, tcp));
    let status = watcher
        .join()
        .map_err(|_| "the thread waiting for the child panicked")??;
    println!("parent: the child exited with {status}");
    let summaries = match (talked, status.success()) {
        (Ok(summaries), true) => summaries,
        (Ok(_), false) => return Err(format!("the child failed ({status})").into()),
        (Err(e), true) => return Err(e),
        (Err(e), false) => return Err(format!("the child failed ({status}); parent: {e:?}").into()),
    };

    println!("summary:");
    for s in &summaries {
        println!("  {s}");
    }
    if dir.exists() {
        return Err(format!("{} was left behind", dir.display()).into());
    }
    println!("parent: {} is gone, nothing left behind", dir.display());
    Ok(())
}

/// What one transport measured.
struct Summary {
    name: &'static str,
    median_round_trip: Duration,
    stream_bytes_per_sec: f64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<5} {ROUND_TRIPS} round trips of {}: median {:.1} us; streaming {} messages: {:.0} MB/s",
            format!("{}:", self.name),
            human(PING_LEN),
            self.median_round_trip.as_secs_f64() * 1e6,
            human(STREAM_LEN),
            self.stream_bytes_per_sec / 1e6,
        )
    }
}

/// The parent's side of the protocol, written once for every transport.
fn talk<T: Transport>(listener: &T::Listener) -> Result<Summary, Report> {
    let name = T::endpoint(&T::local_addr(listener)?).scheme();
    let mut conn = T::accept(listener)?;
    println!("{name}: parent accepted the child's connection");

    for &len in SIZES {
        let request = pattern(len);
        println!("{name}: parent sends a {} request", human(len));
        conn.send(&request)?;
        let reply = expect(conn.recv()?)?;
        if !reply.iter().eq(request.iter().rev()) {
            return Err(format!("{name}: the reply to the {} request is wrong", human(len)).into());
        }
        println!(
            "{name}: parent got a {} reply: the request reversed, verified",
            human(len)
        );
    }

    let ping = pattern(PING_LEN);
    let mut reply = Vec::new();
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let start = Instant::now();
        conn.send(&ping)?;
        expect(conn.recv_into(&mut reply)?)?;
        times.push(start.elapsed());
        if reply != ping {
            return Err(format!("{name}: a ping came back changed").into());
        }
    }
    times.sort();
    println!(
        "{name}: parent timed {ROUND_TRIPS} round trips of {}",
        human(PING_LEN)
    );

    let chunk = pattern(STREAM_LEN);
    let start = Instant::now();
    for _ in 0..STREAM_COUNT {
        conn.send(&chunk)?;
    }
    let total = expect(conn.recv()?)?;
    let elapsed = start.elapsed();
    let sent = (STREAM_COUNT * STREAM_LEN) as u64;
    if total != sent.to_be_bytes() {
        return Err(
            format!("{name}: the child counted {total:?} streamed bytes, not {sent}").into(),
        );
    }
    println!(
        "{name}: parent streamed {STREAM_COUNT} messages of {}; the child counted all {sent} bytes",
        human(STREAM_LEN)
    );

    Ok(Summary {
        name,
        median_round_trip: times[ROUND_TRIPS / 2],
        stream_bytes_per_sec: sent as f64 / elapsed.as_secs_f64(),
    })
}

/// The child's side: connect to each endpoint in turn and answer as the protocol says.
fn child(endpoints: &[String]) -> Result<(), Report> {
    for arg in endpoints {
        let endpoint: Endpoint = arg
            .parse()
            .map_err(|e| format!("invalid endpoint {arg:?}: {e}"))?;
        let name = endpoint.scheme();
        let mut conn = msgsock::connect(&endpoint)?;
        println!("{name}:   child connected to {endpoint}");

        for &len in SIZES {
            let mut request = expect(conn.recv()?)?;
            if request.len() != len {
                let got = request.len();
                return Err(format!("{name}: expected a {len} B request, got {got} B").into());
            }
            println!(
                "{name}:   child got a {} request, replies with it reversed",
                human(len)
            );
            request.reverse();
            conn.send(&request)?;
        }

        let mut buf = Vec::new();
        for _ in 0..ROUND_TRIPS {
            expect(conn.recv_into(&mut buf)?)?;
            conn.send(&buf)?;
        }

        let mut total = 0u64;
        for _ in 0..STREAM_COUNT {
            total += expect(conn.recv_into(&mut buf)?)? as u64;
        }
        conn.send(&total.to_be_bytes())?;

        // The parent closes when it has all it needs; anything else is a protocol error.
        if conn.recv()?.is_some() {
            return Err(format!("{name}: unexpected message after the stream").into());
        }
    }
    Ok(())
}

/// A message, or an error if the peer closed the connection instead.
fn expect<T>(msg: Option<T>) -> Result<T, Report> {
    msg.ok_or_else(|| "the peer closed the connection early".into())
}

/// `len` bytes that differ from their own reverse.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// `len` in the largest binary unit that divides it: `16 B`, `4 KiB`, `1 MiB`.
fn human(len: usize) -> String {
    match len {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

/// The error `main` returns. std prints it with `Debug`, so `Debug` gives the message and its
/// causes on one line, each once (`errors::chain`).
struct Report(Box<dyn Error + Send + Sync>);

impl<E: Into<Box<dyn Error + Send + Sync>>> From<E> for Report {
    fn from(e: E) -> Report {
        Report(e.into())
    }
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&errors::chain(&*self.0))
    }
}
