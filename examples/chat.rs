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
//! A line typed by anyone, the server's operator included, reaches everyone else as `ann: hello`;
//! joins and leaves are announced as `* bob joined` and `* bob left`. `/quit`, Ctrl-D (or the end
//! of piped input), Ctrl-C or SIGTERM leaves; on the server they close the room (`* room closed`
//! for everyone) and remove the socket file. With stdin not a terminal (a pipe, a script) the
//! program reads plain lines and prints no prompt.
//!
//! Sending never waits for anything: a receive thread takes what arrives, and one loop per process
//! reacts to events from the prompt, the network and signals in turn. The prompt is a `rustyline`
//! editor, whose `ExternalPrinter` prints an incoming line above the prompt and redraws what the
//! user was typing.
//!
//! # Protocol
//!
//! Each msgsock message is one byte naming its type, then text (UTF-8 by convention):
//!
//! ```text
//! client -> server                    server -> client
//! J name  join (first message)        W line  joined: show this welcome (once)
//! M text  say a line                  T line  show this line: "ann: hi", "* bob joined"
//! L       leave                       C       the room closed
//! H       heartbeat (datagrams)       P       answer to a heartbeat (datagrams)
//!                                     X       you are not in the room (datagrams)
//! ```
//!
//! Text from a peer is untrusted: invalid UTF-8 is shown with U+FFFD and control characters are
//! escaped (`\u{1b}`), so a peer can neither crash a participant nor drive its terminal. The
//! server ignores unknown types and lines over 4096 bytes; names are cut to 32 characters.
//!
//! # One to many
//!
//! The room delivers each line to many receivers by relaying: the server receives it once and
//! sends a separate unicast copy to every other participant, over that participant's own
//! connection (or to its own address, for datagrams). That is neither IP broadcast (one UDP
//! datagram to every host on a link) nor IP multicast (one UDP datagram to a group address, copied
//! by the network to the hosts that joined the group). Those spare the sender the copies, but
//! exist only for UDP, on networks that carry them, and know nothing of who is listening. Relaying
//! works over every transport, Unix sockets and TCP included, costs the server one send per
//! participant, and lets it announce joins and leaves.
//!
//! # Datagram endpoints
//!
//! With no connection to accept or close, the server knows participants by the address their
//! datagrams come from (`msgsock::connect` binds each client an address of its own) and clients
//! send `J` and `L` explicitly. A client resends `J` every second until the server answers (at
//! most 10 times), then sends `H` every 2 seconds, which the server answers with `P`. The server
//! drops a participant it has not heard from for 10 seconds (`* bob left`); a client that has not
//! heard from the server for 10 seconds, or whose datagrams are refused (nothing bound at the
//! server's address any more: `ConnectionRefused` on `unixgram:`, ICMP port unreachable on `udp:`),
//! reports the connection lost. `CHAT_HEARTBEAT_MS` sets the heartbeat interval; the timeouts are
//! 5 times it.
//!
//! A participant that stops reading without leaving (a client suspended with Ctrl-Z) is dropped
//! on a datagram endpoint as soon as a line for it cannot be queued (`try_send_to`, which never
//! waits), or when its heartbeats stop; on a stream endpoint when a send to it has waited 5
//! seconds. On `unixgram:`, what it has not read stays charged to the server's send buffer until
//! it reads or exits, because Linux exempts a receiver connected to the sender from its queue
//! limit: while that buffer is full, lines to others are dropped too, and so are they.
//!
//! Closing the room never waits long for anyone: `C` goes to each stream participant with a
//! short write timeout, and the accepting thread is stopped with its listener's
//! `ShutdownHandle`, never by a connection through the socket's path (which a successor may own).
//!
//! # Exit status
//!
//! 0 after leaving or when the room closed; 1 when the connection to the server was lost or a
//! socket failed, with one line on stderr; 2 for a bad command line or endpoint.

use std::env;
use std::error::Error;
use std::io::{self, BufRead, IsTerminal, Write};
use std::net::Shutdown;
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use msgsock::{
    AnyConnection, AnyDatagram, AnyListener, AnyStream, Connection, Endpoint, ShutdownHandle,
};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::termios::{self, SetArg, Termios};
use rustyline::{Config, DefaultEditor, ExternalPrinter};

const USAGE: &str = "usage: chat [serve] ENDPOINT [--name NAME]";
const PROMPT: &str = ">>> ";
/// The longest line anyone may say, in bytes: it fits one datagram of every transport, name and
/// all.
const MAX_LINE: usize = 4096;
/// The longest name, in characters.
const MAX_NAME: usize = 32;
/// The largest stream message the server reads, so a rogue peer cannot make it buffer 64 MiB.
const MAX_MESSAGE: u64 = 2 * MAX_LINE as u64;
/// A stream participant that stops reading stalls the room for at most this long, then is
/// dropped; a connection that does not say `J` within it is closed.
const PEER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a datagram may wait for room in the server's own send buffer (lines in flight to
/// participants that do read); a participant whose queue is full is never waited for.
const SEND_ROOM_WAIT: Duration = Duration::from_millis(200);
/// How long closing the room waits to tell each stream participant.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(200);
/// The datagram heartbeat interval unless `CHAT_HEARTBEAT_MS` sets it.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// Heartbeat intervals without a word before a datagram peer counts as gone.
const MISSED_BEATS: u32 = 5;
/// A datagram client sends its join this often, this many times, until the server answers.
const JOIN_RETRY: Duration = Duration::from_secs(1);
const JOIN_TRIES: u32 = 10;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let outcome = match parse_args(&args) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Serve { endpoint, name }) => serve(&endpoint, name),
        Ok(Command::Join { endpoint, name }) => join(&endpoint, name),
        Err(usage) => {
            eprintln!("chat: {usage}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("chat: {err}");
            ExitCode::FAILURE
        }
    }
}

enum Command {
    Help,
    Serve { endpoint: Endpoint, name: String },
    Join { endpoint: Endpoint, name: String },
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    let (mut serve, mut endpoint, mut name) = (false, None, None);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--name" => name = Some(args.next().ok_or("--name needs a value")?.clone()),
            "serve" if !serve && endpoint.is_none() => serve = true,
            a if a.starts_with('-') => return Err(format!("unknown option {a}; {USAGE}")),
            a if endpoint.is_none() => {
                let parsed = a.parse::<Endpoint>();
                endpoint = Some(parsed.map_err(|e| format!("invalid endpoint {a:?}: {e}"))?);
            }
            a => return Err(format!("unexpected argument {a:?}; {USAGE}")),
        }
    }
    let endpoint = endpoint.ok_or(format!("missing ENDPOINT; {USAGE}"))?;
    Ok(if serve {
        let name = name.unwrap_or_else(|| "host".into());
        Command::Serve { endpoint, name }
    } else {
        let name = name.unwrap_or_else(|| env::var("USER").unwrap_or_else(|_| "guest".into()));
        Command::Join { endpoint, name }
    })
}

/// Everything a process reacts to, from whichever thread noticed it.
enum Event {
    /// A line from the prompt (or from piped stdin).
    Input(String),
    /// Ctrl-D or the end of piped stdin.
    InputEnd,
    /// SIGINT, SIGTERM or SIGHUP.
    Signal,
    /// Server: a participant asked to join.
    Joined {
        peer: Peer,
        name: String,
        link: Link,
    },
    /// Server: a participant said a line.
    Said { peer: Peer, text: Vec<u8> },
    /// Server: a datagram participant's heartbeat.
    Beat(Peer),
    /// Server: a participant left, or its connection ended.
    Left(Peer),
    /// Client: a message from the server.
    FromServer(Vec<u8>),
    /// The network failed: the server's socket, or the client's connection to the server.
    Failed(String),
}

/// Who sent something: a stream connection (numbered as accepted), or a datagram address.
#[derive(Clone, PartialEq)]
enum Peer {
    Stream(u64),
    Datagram(Endpoint),
}

/// How the server reaches one participant.
enum Link {
    Stream(Connection<AnyStream>),
    Datagram(Arc<AnyDatagram>, Endpoint),
}

impl Link {
    fn send(&mut self, msg: &[u8]) -> msgsock::Result<()> {
        match self {
            Link::Stream(conn) => conn.send(msg),
            // Never waits: a full queue is `WouldBlock` at once, and the caller drops the peer.
            Link::Datagram(socket, to) => socket.try_send_to_within(msg, to, SEND_ROOM_WAIT),
        }
    }

    /// Makes the next sends give up quickly, for closing the room.
    fn hurry(&self) {
        if let Link::Stream(conn) = self {
            let _ = conn.set_write_timeout(Some(CLOSE_TIMEOUT));
        }
    }

    /// Ends a dropped participant's connection, which also ends its reader thread.
    fn hang_up(&self) {
        if let Link::Stream(conn) = self {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Server

fn serve(endpoint: &Endpoint, host: String) -> Result<(), String> {
    let signals = block_signals()?;
    let (tx, rx) = mpsc::channel();
    let bind_error = |e: msgsock::Error| format!("cannot listen on {endpoint}: {}", chain(&e));
    let network = if endpoint.is_datagram() {
        let owner = msgsock::bind_datagram(endpoint).map_err(bind_error)?;
        let local = owner.local_endpoint().map_err(bind_error)?;
        let shared = Arc::new(owner.try_clone().map_err(bind_error)?);
        say(&format!("listening on {local}"));
        let (socket, tx) = (Arc::clone(&shared), tx.clone());
        thread::spawn(move || receive_datagrams(&socket, &tx));
        Network::Datagram(owner, shared)
    } else {
        let listener = msgsock::bind(endpoint).map_err(bind_error)?;
        let local = listener.local_endpoint().map_err(bind_error)?;
        let stop = listener.shutdown_handle().map_err(bind_error)?;
        say(&format!("listening on {local}"));
        let tx = tx.clone();
        let acceptor = thread::spawn(move || accept_participants(listener, &tx));
        Network::Stream { acceptor, stop }
    };
    wait_for_signals(signals, tx.clone());
    let socket = match &network {
        Network::Datagram(_, shared) => Some(Arc::clone(shared)),
        Network::Stream { .. } => None,
    };
    let mut room = Room {
        host,
        members: Vec::new(),
        console: Console::start(tx),
        socket,
        beat: heartbeat(),
    };
    let outcome = room.run(&rx);
    room.close();
    network.stop();
    room.console.finish("* room closed");
    outcome
}

/// The server's listening side, kept to the end so that stopping it removes the socket file.
enum Network {
    Stream {
        acceptor: thread::JoinHandle<()>,
        stop: ShutdownHandle,
    },
    /// The bound socket, which removes a `unixgram:` file when dropped, and a second handle to
    /// it that the threads share.
    Datagram(AnyDatagram, Arc<AnyDatagram>),
}

impl Network {
    fn stop(self) {
        match self {
            Network::Stream { acceptor, stop } => {
                // The acceptor's incoming() ends, and it drops the listener, which removes the
                // socket file.
                stop.shutdown();
                let _ = acceptor.join();
            }
            Network::Datagram(owner, _) => drop(owner),
        }
    }
}

fn accept_participants(listener: AnyListener, tx: &Sender<Event>) {
    // Ends when the room closes and shuts the listener down.
    for (id, conn) in (1..).zip(listener.incoming()) {
        match conn {
            // A stream listener's connections are streams.
            Ok(conn) => {
                let Some(mut conn) = conn.into_stream() else {
                    continue;
                };
                conn.set_max_message_len(MAX_MESSAGE);
                let tx = tx.clone();
                thread::spawn(move || read_participant(id, conn, &tx));
            }
            Err(e) => eprintln!("chat: accept failed: {}", chain(&e)),
        }
    }
}

/// Reads one stream participant: its join, its lines, and its leaving, however it ends.
fn read_participant(id: u64, mut conn: Connection<AnyStream>, tx: &Sender<Event>) {
    // Whatever connects and says nothing, or not a join, gets no thread kept for it.
    let join = conn
        .set_read_timeout(Some(PEER_TIMEOUT))
        .and_then(|()| conn.recv());
    let name = match join {
        Ok(Some(msg)) if msg.first() == Some(&b'J') => clean_name(&msg[1..]),
        _ => return,
    };
    if conn.set_read_timeout(None).is_err() {
        return;
    }
    let Ok(sender) = conn
        .try_clone()
        .and_then(|c| c.set_write_timeout(Some(PEER_TIMEOUT)).map(|()| c))
    else {
        return;
    };
    let peer = Peer::Stream(id);
    let link = Link::Stream(sender);
    let joined = Event::Joined {
        peer: peer.clone(),
        name,
        link,
    };
    if tx.send(joined).is_err() {
        return;
    }
    // Until `L`, a clean close, or an error: all mean the participant is gone.
    while let Ok(Some(msg)) = conn.recv() {
        match msg.split_first() {
            Some((b'M', text)) => {
                let said = Event::Said {
                    peer: peer.clone(),
                    text: text.to_vec(),
                };
                if tx.send(said).is_err() {
                    return;
                }
            }
            Some((b'L', _)) => break,
            _ => {}
        }
    }
    let _ = tx.send(Event::Left(peer));
}

/// Turns each datagram into an event; the sender's address is who it is.
fn receive_datagrams(socket: &Arc<AnyDatagram>, tx: &Sender<Event>) {
    let mut buf = Vec::new();
    loop {
        let from = match socket.recv_from(&mut buf) {
            Ok((_, Some(from))) => from,
            // An unbound Unix sender cannot be answered.
            Ok((_, None)) => continue,
            // Too long for any chat message, or an error report from an earlier send.
            Err(msgsock::Error::Truncated { .. }) => continue,
            Err(msgsock::Error::Io(e)) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(e) => {
                let _ = tx.send(Event::Failed(chain(&e)));
                return;
            }
        };
        let peer = Peer::Datagram(from.clone());
        let event = match buf.split_first() {
            Some((b'J', name)) => Event::Joined {
                peer,
                name: clean_name(name),
                link: Link::Datagram(Arc::clone(socket), from),
            },
            Some((b'M', text)) => Event::Said {
                peer,
                text: text.to_vec(),
            },
            Some((b'H', _)) => Event::Beat(peer),
            Some((b'L', _)) => Event::Left(peer),
            _ => continue,
        };
        if tx.send(event).is_err() {
            return;
        }
    }
}

struct Member {
    peer: Peer,
    name: String,
    link: Link,
    last_heard: Instant,
}

/// The server's state, owned by its event loop alone.
struct Room {
    host: String,
    /// In order of joining.
    members: Vec<Member>,
    console: Console,
    /// The datagram socket, to answer addresses that are not members; `None` for streams.
    socket: Option<Arc<AnyDatagram>>,
    beat: Duration,
}

impl Room {
    /// Handles events until the room closes; fails if the network did.
    fn run(&mut self, rx: &mpsc::Receiver<Event>) -> Result<(), String> {
        loop {
            let event = if self.socket.is_some() {
                let event = rx.recv_timeout(self.beat);
                self.expire();
                match event {
                    Ok(event) => event,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return Ok(()),
                }
            } else {
                match rx.recv() {
                    Ok(event) => event,
                    Err(_) => return Ok(()),
                }
            };
            match event {
                Event::Input(line) if line == "/quit" => return Ok(()),
                Event::Input(line) => self.host_says(&line),
                Event::InputEnd | Event::Signal => return Ok(()),
                Event::Joined { peer, name, link } => self.join(peer, name, link),
                Event::Said { peer, text } => self.said(&peer, &text),
                Event::Beat(peer) => self.beat(&peer),
                Event::Left(peer) => self.left(&peer),
                Event::Failed(why) => return Err(why),
                Event::FromServer(_) => {}
            }
        }
    }

    fn host_says(&mut self, line: &str) {
        if line.is_empty() {
            return;
        }
        if line.len() > MAX_LINE {
            self.console.show(&too_long(line));
            return;
        }
        self.relay(None, &format!("{}: {line}", self.host));
    }

    fn join(&mut self, peer: Peer, name: String, mut link: Link) {
        let others: Vec<&str> = std::iter::once(self.host.as_str())
            .chain(
                self.members
                    .iter()
                    .filter(|m| m.peer != peer)
                    .map(|m| m.name.as_str()),
            )
            .collect();
        let welcome = format!("W* welcome, {name}; here: {}", others.join(", "));
        // A datagram client resends its join until answered; answer again, announce once.
        if let Some(member) = self.members.iter_mut().find(|m| m.peer == peer) {
            member.last_heard = Instant::now();
            let _ = member.link.send(welcome.as_bytes());
            return;
        }
        if link.send(welcome.as_bytes()).is_err() {
            return;
        }
        let line = format!("* {name} joined");
        self.members.push(Member {
            peer: peer.clone(),
            name,
            link,
            last_heard: Instant::now(),
        });
        self.announce(Some(&peer), &line);
    }

    fn said(&mut self, peer: &Peer, text: &[u8]) {
        let Some(member) = self.heard(peer) else {
            return self.not_a_member(peer);
        };
        if text.is_empty() || text.len() > MAX_LINE {
            return;
        }
        let line = format!("{}: {}", member.name, printable(text));
        self.announce(Some(peer), &line);
    }

    fn beat(&mut self, peer: &Peer) {
        match self.heard(peer) {
            Some(member) => {
                let _ = member.link.send(b"P");
            }
            None => self.not_a_member(peer),
        }
    }

    fn left(&mut self, peer: &Peer) {
        if let Some(i) = self.members.iter().position(|m| &m.peer == peer) {
            let gone = self.members.remove(i);
            gone.link.hang_up();
            self.announce(None, &format!("* {} left", gone.name));
        }
    }

    /// Drops datagram participants not heard from for `MISSED_BEATS` heartbeats.
    fn expire(&mut self) {
        let limit = self.beat * MISSED_BEATS;
        let mut gone = Vec::new();
        self.members.retain_mut(|m| {
            if m.last_heard.elapsed() <= limit {
                return true;
            }
            // It may only be stuck: tell it, in case it ever reads again.
            let _ = m.link.send(b"X");
            gone.push(format!("* {} left", m.name));
            false
        });
        for line in gone {
            self.announce(None, &line);
        }
    }

    /// The member `peer`, now known to be alive, if it is one.
    fn heard(&mut self, peer: &Peer) -> Option<&mut Member> {
        let member = self.members.iter_mut().find(|m| &m.peer == peer)?;
        member.last_heard = Instant::now();
        Some(member)
    }

    /// Tells a datagram sender that it is not in the room (dropped, or the server restarted).
    fn not_a_member(&self, peer: &Peer) {
        if let (Some(socket), Peer::Datagram(to)) = (&self.socket, peer) {
            let _ = socket.try_send_to(b"X", to);
        }
    }

    /// Shows `line` to the operator and sends it to every participant but `except`.
    fn announce(&mut self, except: Option<&Peer>, line: &str) {
        self.console.show(line);
        self.relay(except, line);
    }

    /// Sends `line` to every participant but `except`, one unicast copy each. A participant that
    /// cannot be reached is dropped, and its leaving announced in turn.
    fn relay(&mut self, except: Option<&Peer>, line: &str) {
        let msg = [b"T", line.as_bytes()].concat();
        let mut gone = Vec::new();
        self.members.retain_mut(|m| {
            if Some(&m.peer) == except || m.link.send(&msg).is_ok() {
                return true;
            }
            m.link.hang_up();
            gone.push(format!("* {} left", m.name));
            false
        });
        for line in gone {
            self.announce(None, &line);
        }
    }

    /// Tells everyone the room closed.
    fn close(&mut self) {
        for member in &mut self.members {
            member.link.hurry();
            let _ = member.link.send(b"C");
            member.link.hang_up();
        }
        self.members.clear();
    }
}

// ---------------------------------------------------------------------------------------------
// Client

fn join(endpoint: &Endpoint, name: String) -> Result<(), String> {
    let signals = block_signals()?;
    let failed = |e: msgsock::Error| format!("cannot join {endpoint}: {}", chain(&e));
    let mut conn = msgsock::connect(endpoint).map_err(failed)?;
    conn.set_write_timeout(Some(PEER_TIMEOUT)).map_err(failed)?;
    let hello = [b"J", name.as_bytes()].concat();
    let beat = conn.is_datagram().then(heartbeat);
    let first = match beat {
        Some(_) => Some(handshake(&mut conn, &hello).map_err(failed)?),
        None => {
            conn.send(&hello).map_err(failed)?;
            None
        }
    };

    let (tx, rx) = mpsc::channel();
    let reader = conn.try_clone().map_err(failed)?;
    let to_main = tx.clone();
    thread::spawn(move || receive_from_server(reader, &to_main));
    wait_for_signals(signals, tx.clone());
    let mut console = Console::start(tx);

    let mut last_heard = Instant::now();
    let mut next_beat = last_heard + beat.unwrap_or_default();
    let mut pending = first.map(Event::FromServer);
    let mut welcomed = false;
    // What ends the session: the line to show, or why the connection was lost.
    let ending: Result<&str, String> = loop {
        let event = match (pending.take(), beat) {
            (Some(event), _) => Ok(event),
            (None, Some(_)) => rx.recv_timeout(next_beat.saturating_duration_since(Instant::now())),
            (None, None) => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let event = match event {
            Ok(event) => Some(event),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break Ok(""),
        };
        match event {
            Some(Event::Input(line)) if line == "/quit" => break leave(&mut conn),
            Some(Event::Input(line)) if line.is_empty() => {}
            Some(Event::Input(line)) if line.len() > MAX_LINE => console.show(&too_long(&line)),
            Some(Event::Input(line)) => {
                if let Err(e) = conn.send(&[b"M", line.as_bytes()].concat()) {
                    break Err(chain(&e));
                }
            }
            Some(Event::InputEnd | Event::Signal) => break leave(&mut conn),
            Some(Event::FromServer(msg)) => {
                last_heard = Instant::now();
                match msg.split_first() {
                    // A join resent before the answer came is answered twice.
                    Some((b'W', line)) if !welcomed => {
                        welcomed = true;
                        console.show(&printable(line));
                    }
                    Some((b'T', line)) => console.show(&printable(line)),
                    Some((b'C', _)) => break Ok("* room closed"),
                    Some((b'X', _)) => break Err("the server dropped this participant".into()),
                    _ => {}
                }
            }
            Some(Event::Failed(why)) => break Err(why),
            Some(_) | None => {}
        }
        if let Some(beat) = beat {
            if last_heard.elapsed() > beat * MISSED_BEATS {
                break Err("no word from the server".into());
            }
            if Instant::now() >= next_beat {
                if let Err(e) = conn.send(b"H") {
                    break Err(chain(&e));
                }
                next_beat = Instant::now() + beat;
            }
        }
    };
    match ending {
        Ok(last_line) => {
            console.finish(last_line);
            Ok(())
        }
        Err(why) => {
            console.finish("* connection to server lost");
            Err(format!("connection to {endpoint} lost: {why}"))
        }
    }
}

/// Sends a datagram client's join until the server answers; returns the answer.
fn handshake(conn: &mut AnyConnection, hello: &[u8]) -> msgsock::Result<Vec<u8>> {
    conn.set_read_timeout(Some(JOIN_RETRY))?;
    for _ in 0..JOIN_TRIES {
        conn.send(hello)?;
        match conn.recv() {
            Ok(Some(reply)) => {
                conn.set_read_timeout(None)?;
                return Ok(reply);
            }
            Ok(None) => {}
            Err(e) if e.is_timeout() => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::TimedOut, "no answer from the server").into())
}

fn receive_from_server(mut conn: AnyConnection, tx: &Sender<Event>) {
    loop {
        let event = match conn.recv() {
            Ok(Some(msg)) => Event::FromServer(msg),
            Ok(None) => Event::Failed("the server closed the connection".into()),
            // A datagram too long for any chat message: not from a chat server.
            Err(msgsock::Error::Truncated { .. }) => continue,
            Err(e) => Event::Failed(chain(&e)),
        };
        let last = matches!(event, Event::Failed(_));
        if tx.send(event).is_err() || last {
            return;
        }
    }
}

fn leave(conn: &mut AnyConnection) -> Result<&'static str, String> {
    let _ = conn.send(b"L");
    Ok("")
}

// ---------------------------------------------------------------------------------------------
// Terminal, signals, text

/// The person's side: a thread reading lines, and a way to show lines without garbling the
/// prompt.
struct Console {
    /// Prints above the prompt and redraws it; `None` when stdin or stdout is not a terminal.
    printer: Option<Box<dyn ExternalPrinter>>,
    /// The terminal mode to restore on exit, since the prompt may be mid-line in raw mode.
    saved: Option<Termios>,
}

impl Console {
    fn start(tx: Sender<Event>) -> Console {
        if io::stdin().is_terminal() && io::stdout().is_terminal() {
            if let Some(console) = Console::start_editor(&tx) {
                return console;
            }
        }
        thread::spawn(move || read_plain_lines(&tx));
        Console {
            printer: None,
            saved: None,
        }
    }

    fn start_editor(tx: &Sender<Event>) -> Option<Console> {
        let saved = termios::tcgetattr(io::stdin()).ok()?;
        let config = Config::builder()
            .auto_add_history(true)
            // Ctrl-C stays SIGINT, handled like SIGTERM; a pasted block is one message per line.
            .enable_signals(true)
            .bracketed_paste(false)
            .build();
        let mut editor = DefaultEditor::with_config(config).ok()?;
        let printer = editor.create_external_printer().ok()?;
        let tx = tx.clone();
        thread::spawn(move || {
            while let Ok(line) = editor.readline(PROMPT) {
                if tx.send(Event::Input(line)).is_err() {
                    return;
                }
            }
            let _ = tx.send(Event::InputEnd);
        });
        Some(Console {
            printer: Some(Box::new(printer)),
            saved: Some(saved),
        })
    }

    fn show(&mut self, line: &str) {
        match &mut self.printer {
            Some(printer) => {
                let _ = printer.print(format!("{line}\n"));
            }
            None => say(line),
        }
    }

    /// Puts the terminal back and prints the last line, if any.
    fn finish(self, last: &str) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(io::stdin(), SetArg::TCSADRAIN, saved);
            // Erase the prompt and whatever was typed after it.
            print!("\r\x1b[K");
        }
        if !last.is_empty() {
            say(last);
        }
        let _ = io::stdout().flush();
    }
}

fn read_plain_lines(tx: &Sender<Event>) {
    let mut stdin = io::stdin().lock();
    let mut line = Vec::new();
    while let Ok(1..) = stdin.read_until(b'\n', &mut line) {
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']).to_owned();
        line.clear();
        if tx.send(Event::Input(text)).is_err() {
            return;
        }
    }
    let _ = tx.send(Event::InputEnd);
}

/// Prints a line to stdout and flushes it. A closed stdout is no reason to leave the room.
fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread and every thread it spawns afterwards, so they
/// stay pending until [`wait_for_signals`] takes them: no handler, so no async-signal-safety rules.
fn block_signals() -> Result<SigSet, String> {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    set.thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
    Ok(set)
}

fn wait_for_signals(set: SigSet, tx: Sender<Event>) {
    thread::spawn(move || {
        if set.wait().is_ok() {
            let _ = tx.send(Event::Signal);
        }
    });
}

fn heartbeat() -> Duration {
    env::var("CHAT_HEARTBEAT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .filter(|&ms| ms > 0)
        .map_or(HEARTBEAT, Duration::from_millis)
}

/// Text from a peer, safe to print: invalid UTF-8 replaced with U+FFFD, and control characters
/// escaped so they can neither break the line nor move the cursor or recolour the terminal.
fn printable(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for c in String::from_utf8_lossy(bytes).chars() {
        if c.is_control() {
            text.extend(c.escape_default());
        } else {
            text.push(c);
        }
    }
    text
}

fn clean_name(raw: &[u8]) -> String {
    let name = printable(String::from_utf8_lossy(raw).trim().as_bytes());
    let name: String = name.chars().take(MAX_NAME).collect();
    if name.is_empty() {
        "guest".into()
    } else {
        name
    }
}

fn too_long(line: &str) -> String {
    format!(
        "* not sent: {} bytes, over the limit of {MAX_LINE}",
        line.len()
    )
}

/// An error and its sources on one line.
fn chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        // msgsock's errors already end with their cause.
        if !text.ends_with(&s.to_string()) {
            text = format!("{text}: {s}");
        }
        source = s.source();
    }
    text
}
