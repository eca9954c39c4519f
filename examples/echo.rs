//! An echo server for any endpoint, and a line-based client for it.
//!
//! ```text
//! cargo run --example echo -- unix:/tmp/echo.sock          # or tcp:127.0.0.1:0
//! cargo run --example echo -- --connect unix:/tmp/echo.sock
//! ```
//!
//! The server binds the endpoint, prints `listening on ENDPOINT` (with the real port when asked
//! for port 0), and serves each connection on its own thread, sending every message back
//! unchanged. An error on one connection is logged and the server carries on. SIGINT or SIGTERM
//! stop it cleanly: the socket file is removed and it exits 0.
//!
//! The client sends each line of stdin as one message and prints each reply on its own line.

use std::error::Error;
use std::io::{self, BufRead, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use msgsock::{AnyStream, Connection, Endpoint};
use nix::sys::signal::{SigSet, Signal};

type BoxError = Box<dyn Error + Send + Sync>;

const USAGE: &str =
    "usage: echo ENDPOINT | echo --connect ENDPOINT, where ENDPOINT is unix:PATH or tcp:HOST:PORT";

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
    match args.as_slice() {
        [flag, endpoint] if flag == "--connect" => client(&parse(endpoint)?),
        [endpoint] if !endpoint.starts_with('-') => serve(&parse(endpoint)?),
        _ => Err(USAGE.into()),
    }
}

fn parse(arg: &str) -> Result<Endpoint, BoxError> {
    arg.parse()
        .map_err(|e| format!("invalid endpoint {arg:?}: {e}").into())
}

/// Serves until SIGINT or SIGTERM, then returns so the listener is dropped (removing its file).
fn serve(endpoint: &Endpoint) -> Result<(), BoxError> {
    // Block the signals before any thread starts: every thread inherits the mask, so the signals
    // stay pending until the signal thread takes them with sigwait(2), and no handler runs.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.thread_block()?;

    let listener = msgsock::bind(endpoint)
        .map_err(|e| format!("cannot listen on {endpoint}: {}", chain(&e)))?;
    let local = listener.local_endpoint()?;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on {local}")?;
    stdout.flush()?;
    drop(stdout);

    let stop = Arc::new(AtomicBool::new(false));
    let wake = wake_endpoint(local);
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
            // The accept loop blocks in accept(2): a connection of our own wakes it, and it then
            // sees `stop`. If even that fails, exiting now is all that is left.
            if let Err(e) = msgsock::connect(&wake) {
                eprintln!("echo: error: cannot wake the server: {}", chain(&e));
                std::process::exit(1);
            }
        })?;

    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let conn = match conn {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("echo: accept failed: {}", chain(&e));
                continue;
            }
        };
        let spawned = thread::Builder::new().spawn(move || {
            if let Err(e) = echo(conn) {
                eprintln!("echo: connection failed: {}", chain(&e));
            }
        });
        if let Err(e) = spawned {
            eprintln!("echo: cannot start a connection thread: {e}");
        }
    }
    Ok(())
}

/// Sends every message of one connection back unchanged, until the peer closes.
fn echo(mut conn: Connection<AnyStream>) -> msgsock::Result<()> {
    let mut msg = Vec::new();
    while conn.recv_into(&mut msg)?.is_some() {
        conn.send(&msg)?;
    }
    Ok(())
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
fn client(endpoint: &Endpoint) -> Result<(), BoxError> {
    let mut conn = msgsock::connect(endpoint)
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
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
