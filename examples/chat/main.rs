//! A chat room over any msgsock transport: one server, any number of clients, everyone typing at a
//! `>>> ` prompt while the others' lines appear above it.
//!
//! ```text
//! cargo run --example chat -- serve unix:/tmp/chat.sock --name ann   # terminal 1: open a room
//! cargo run --example chat -- unix:/tmp/chat.sock --name bob         # terminal 2: join it
//! ```
//!
//! `ENDPOINT` is `unix:PATH`, `tcp:HOST:PORT`, `unixgram:PATH` or `udp:HOST:PORT`; port 0 picks a
//! free port, and the server's first line of output, `listening on ENDPOINT`, names the real one.
//! (`unixpacket:` is refused as a bad endpoint.)
//! A line typed by anyone, the server's operator included, reaches everyone else as `ann: hello`;
//! joins and leaves are announced as `* bob joined` and `* bob left`. A name already in the room
//! (the host's included, in any case) is refused. `/quit`, Ctrl-D (or the end
//! of piped input), Ctrl-C or SIGTERM leaves; on the server they close the room (`* room closed`
//! for everyone) and remove the socket file. With stdin not a terminal (a pipe, a script) the
//! program reads plain lines and prints no prompt.
//!
//! `--max-connections N` (serve only) lets at most N participants in at once (default 256): on a
//! stream endpoint, one connection more is accepted, told the room is full (`E`) and closed at
//! once, and logged; on a datagram endpoint, one join more is refused the same way.
//!
//! Sending never waits for anything: receive threads take what arrives, each stream participant
//! has a writer thread of its own, and one loop per process reacts to events from the prompt,
//! the network and signals in turn. A participant that stops reading is dropped, never waited
//! for. On the server each receive thread has a small share of the loop's queue (8 messages;
//! see [`event::Window`]) and stops reading while it is full, so a participant sending faster
//! than the room relays is held back by its own socket, the server's memory stays bounded, and
//! the others' lines still come in turn; a signal is seen before the next message, however many
//! wait.
//!
//! # Parts
//!
//! - [`protocol`]: the message types on top of msgsock messages, limits, heartbeats, safe text.
//! - [`event`]: what the one loop of a process reacts to.
//! - [`server`]: binding, accepting, and the threads reading participants.
//! - [`room`]: who is in the room, and relaying a line to everyone else.
//! - [`link`]: reaching one participant without waiting for it.
//! - [`client`]: a participant's session.
//! - [`console`]: the prompt, and showing lines above it.
//! - [`signals`]: SIGINT, SIGTERM and SIGHUP as events.
//!
//! # Exit status
//!
//! 0 after leaving or when the room closed; 1 when the connection to the server was lost, a
//! socket failed, or the server refused the join (its name is already in the room), with one
//! line on stderr; 2 for a bad command line or endpoint.

#[path = "../shared/backoff.rs"]
mod backoff;
mod client;
mod console;
#[path = "../shared/errors.rs"]
mod errors;
mod event;
mod link;
mod protocol;
mod room;
mod server;
mod signals;

use errors::chain;

use std::env;
use std::process::ExitCode;

use msgsock::{Endpoint, SocketType};

const USAGE: &str = "usage: chat [serve] ENDPOINT [--name NAME] [--max-connections N]";

/// Why the program ends early, and so its exit status.
enum Failure {
    /// A bad command line or endpoint: status 2.
    Usage(String),
    /// A socket failed or the connection was lost: status 1.
    Failed(String),
}

fn main() -> ExitCode {
    // Not `main() -> Result`: std would print `Error: {:?}` and always exit 1, where this program
    // names itself and tells a bad command line (2) from a lost connection (1).
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(why)) => {
            eprintln!("chat: {why}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(why)) => {
            eprintln!("chat: {why}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Failure> {
    // Not `env::args()`, which panics on an argument that is not UTF-8.
    let args = env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument {a:?} is not UTF-8"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(Failure::Usage)?;
    match parse_args(&args).map_err(Failure::Usage)? {
        Command::Help => {
            println!("{USAGE}");
            Ok(())
        }
        Command::Serve {
            endpoint,
            name,
            max_connections,
        } => server::serve(&endpoint, name, max_connections),
        Command::Join { endpoint, name } => client::join(&endpoint, name),
    }
    .map_err(Failure::Failed)
}

enum Command {
    Help,
    Serve {
        endpoint: Endpoint,
        name: String,
        max_connections: usize,
    },
    Join {
        endpoint: Endpoint,
        name: String,
    },
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    let (mut serve, mut endpoint, mut name, mut max) = (false, None, None, None);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--name" => name = Some(args.next().ok_or("--name needs a value")?.clone()),
            "--max-connections" => {
                let n = args.next().ok_or("--max-connections needs a value")?;
                max = Some(n.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                    format!("invalid --max-connections {n:?}: expected a number above 0")
                })?);
            }
            "serve" if !serve && endpoint.is_none() => serve = true,
            a if a.starts_with('-') => return Err(format!("unknown option {a}; {USAGE}")),
            a if endpoint.is_none() => {
                let parsed = a.parse::<Endpoint>();
                let parsed = parsed.map_err(|e| format!("invalid endpoint {a:?}: {e}"))?;
                endpoint = Some(supported(parsed)?);
            }
            a => return Err(format!("unexpected argument {a:?}; {USAGE}")),
        }
    }
    let endpoint = endpoint.ok_or(format!("missing ENDPOINT; {USAGE}"))?;
    Ok(if serve {
        let name = name.unwrap_or_else(|| "host".into());
        let max_connections = max.unwrap_or(server::DEFAULT_MAX_CONNECTIONS);
        Command::Serve {
            endpoint,
            name,
            max_connections,
        }
    } else if max.is_some() {
        return Err(format!("--max-connections is for serve only; {USAGE}"));
    } else {
        let name = name.unwrap_or_else(|| env::var("USER").unwrap_or_else(|_| "guest".into()));
        Command::Join { endpoint, name }
    })
}

/// `endpoint` if chat runs on its transport: not `unixpacket:`, whose connections the room has no
/// reader for (it would accept them and drop them unheard), refused here before anything is
/// bound or connected.
fn supported(endpoint: Endpoint) -> Result<Endpoint, String> {
    match endpoint.socket_type() {
        SocketType::Stream | SocketType::Datagram => Ok(endpoint),
        _ => Err(format!(
            "endpoint {endpoint}: the {} transport is not supported by chat; \
             it supports unix, tcp, unixgram and udp",
            endpoint.scheme()
        )),
    }
}
