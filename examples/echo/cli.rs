//! What `echo` and `echo_async` share: the command line, the limits, and the small pieces of
//! policy around serving (connection slots, dropped-reply counts, log text), so
//! the two servers cannot drift apart. `echo_async` includes this file with
//! `#[path = "../echo/cli.rs"] mod cli;`.

use std::error::Error;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../shared/backoff.rs"]
mod backoff;
#[path = "../shared/errors.rs"]
mod errors;
pub use backoff::Backoff;
pub use errors::chain;

use msgsock::{AuthKey, Authenticator, Endpoint, PeerCred};

pub type BoxError = Box<dyn Error + Send + Sync>;

const USAGE: &str =
    "usage: echo [--idle-timeout SECS] [--same-uid] [--authkey-file PATH] [--max-connections N] \
                     ENDPOINT | echo [--authkey-file PATH] [--reply-timeout SECS] --connect ENDPOINT, \
                     where ENDPOINT is unix:PATH, tcp:HOST:PORT, udp:HOST:PORT, unixgram:PATH or \
                     unixpacket:PATH";

/// What `--help` adds to the usage line, from the newline that ends it. Not a `"\` line
/// continuation, which would strip the first option's indent.
const HELP: &str = "
  --idle-timeout SECS    close a stream connection silent this long, or this long over one
                         message or reply (default 120, 0: never)
  --same-uid             on unix: and unixpacket:, accept only peers running as this user
  --authkey-file PATH    on a stream endpoint, require the multiprocessing authkey handshake
  --max-connections N    serve at most N stream connections at once (default 256); one more is
                         closed and logged if no place comes free within 0.1 s. Each holds at
                         most one message of up to 64 MiB and the unsent rest of one reply, so
                         memory stays under about N x 128 MiB (32 GiB at the default)
  --connect ENDPOINT     be a client: send each line of stdin, print each reply
  --reply-timeout SECS   as a client, give up (exit 1) on a reply not received in this long
                         (default 5 on udp: and unixgram:, where a datagram may be lost or
                         dropped; 0 on other endpoints: wait until it comes)";

/// How long a client waits for each reply over a datagram endpoint, unless told: a datagram may
/// be lost (UDP) or dropped by a server whose send buffer is full, and no close will say so.
const DEFAULT_DATAGRAM_REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a stream connection may stay silent before the server closes it, unless told.
const DEFAULT_IDLE: Duration = Duration::from_secs(120);

/// How many stream connections are served at once, unless told: enough for a busy test or
/// development server; lower it where the worst case (64 MiB each) matters.
const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// How long a datagram reply may wait for room in the server's own send buffer (replies in
/// flight to clients that do read); a client whose queue is full is never waited for.
pub const SEND_ROOM_WAIT: Duration = Duration::from_millis(200);

/// A connection's message buffer is given back after a message larger than this, so that one
/// large message does not stay charged to an idle connection.
pub const KEEP_BUFFER: usize = 64 * 1024;

/// The descriptors of `fds`, borrowed to be sent back with their message.
pub fn borrowed(fds: &[OwnedFd]) -> Vec<BorrowedFd<'_>> {
    fds.iter().map(AsFd::as_fd).collect()
}

/// Server settings from the command line.
pub struct Options {
    pub idle: Option<Duration>,
    pub same_uid: bool,
    pub auth: Option<Arc<Authenticator>>,
    pub max_connections: usize,
}

/// Refuses `--authkey-file` on a SEQPACKET listener, which an inherited endpoint (`fd:N`,
/// `systemd:`) turns out to be only once adopted: the handshake is framed for a byte stream, and
/// a packet connection would be served without it.
pub fn check_auth(opts: &Options, seqpacket: bool, endpoint: &Endpoint) -> Result<(), String> {
    if opts.auth.is_some() && seqpacket {
        return Err(format!(
            "cannot listen on {endpoint}: --authkey-file needs a stream endpoint, and this is a \
             seqpacket socket"
        ));
    }
    Ok(())
}

/// What the command line asks for.
pub enum Command {
    /// `--help`: the usage and options are printed.
    Help,
    /// `--connect ENDPOINT`.
    Connect {
        endpoint: Endpoint,
        auth: Option<Arc<Authenticator>>,
        /// How long to wait for each reply; `None` until it comes.
        reply: Option<Duration>,
    },
    /// Serve ENDPOINT; the options have been checked against it.
    Serve { endpoint: Endpoint, opts: Options },
}

/// Runs `run`'s result to an exit status. Not `main() -> Result`: std would print `Error: {:?}`,
/// and a server's log line should name the program and give the whole cause chain.
pub fn exit(result: Result<(), BoxError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo: error: {}", chain(&*e));
            ExitCode::FAILURE
        }
    }
}

/// Parses the process's arguments (printing the help if asked), reading the key file if one is
/// named.
pub fn parse_args() -> Result<Command, BoxError> {
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
    let mut reply = None;
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
            "--reply-timeout" => {
                let secs = args.next().ok_or(USAGE)?;
                let secs: u64 = secs
                    .parse()
                    .map_err(|_| format!("invalid --reply-timeout {secs:?}: expected seconds"))?;
                reply = Some((secs > 0).then(|| Duration::from_secs(secs)));
            }
            "--max-connections" => {
                let n = args.next().ok_or(USAGE)?;
                opts.max_connections = n.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                    format!("invalid --max-connections {n:?}: expected a number above 0")
                })?;
            }
            "-h" | "--help" => {
                println!("{USAGE}{HELP}");
                return Ok(Command::Help);
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
        let auth = opts.auth;
        let datagram = endpoint.socket_type() == msgsock::SocketType::Datagram;
        let reply = reply.unwrap_or(datagram.then_some(DEFAULT_DATAGRAM_REPLY_TIMEOUT));
        return Ok(Command::Connect {
            endpoint,
            auth,
            reply,
        });
    }
    if reply.is_some() {
        return Err("--reply-timeout is a client's option: use it with --connect".into());
    }
    if opts.auth.is_some() && endpoint.socket_type() != msgsock::SocketType::Stream {
        return Err("--authkey-file needs a stream endpoint (unix: or tcp:)".into());
    }
    let credentials = matches!(
        endpoint,
        Endpoint::Unix(_)
            | Endpoint::UnixAbstract(_)
            | Endpoint::UnixSeqpacket(_)
            | Endpoint::UnixSeqpacketAbstract(_)
    );
    if opts.same_uid && !credentials {
        return Err(
            "--same-uid needs a unix: or unixpacket: endpoint (peer credentials exist only there)"
                .into(),
        );
    }
    Ok(Command::Serve { endpoint, opts })
}

/// Prints the ready line.
pub fn announce(local: &Endpoint) -> Result<(), BoxError> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on {local}")?;
    stdout.flush()?;
    Ok(())
}

/// How long a server at `--max-connections` waits for a place to come free before it closes
/// a new connection: connections whose peers have gone keep their places until their handlers
/// see the close, which after a burst of short-lived clients can take a moment.
pub const PLACE_GRACE: Duration = Duration::from_millis(100);

/// The `--max-connections` places: how many are taken, and the wake-up of an accept loop that
/// waits for one to come free.
pub struct Places {
    max: usize,
    taken: AtomicUsize,
    freed: Box<dyn Fn() + Send + Sync>,
}

impl Places {
    /// `max` places; `freed` runs after each one comes free.
    pub fn new(max: usize, freed: impl Fn() + Send + Sync + 'static) -> Arc<Places> {
        Arc::new(Places {
            max,
            taken: AtomicUsize::new(0),
            freed: Box::new(freed),
        })
    }

    /// Whether every place is taken.
    pub fn full(&self) -> bool {
        self.taken.load(Ordering::SeqCst) >= self.max
    }
}

/// A place among the `--max-connections` served at once, given back when dropped.
pub struct Slot(Arc<Places>);

impl Slot {
    /// A slot, or `None` (logged) if every place is taken.
    fn take(places: &Arc<Places>) -> Option<Slot> {
        let max = places.max;
        let taken = places
            .taken
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(Arc::clone(places)));
        if taken.is_none() {
            eprintln!("echo: closed a connection: {max} already open (--max-connections {max})");
        }
        taken
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.taken.fetch_sub(1, Ordering::SeqCst);
        (self.0.freed)();
    }
}

/// A slot for a connection just accepted, or `None` (logged) if it is refused: with
/// `--same-uid` when `same_user` refuses its peer, or when `--max-connections` are served.
/// The accept loops call it after waiting up to [`PLACE_GRACE`] for a place while all are
/// taken.
pub fn admit(
    places: &Arc<Places>,
    opts: &Options,
    same_user: impl FnOnce() -> Result<(), String>,
) -> Option<Slot> {
    if opts.same_uid {
        if let Err(refusal) = same_user() {
            eprintln!("echo: refused connection: {refusal}");
            return None;
        }
    }
    Slot::take(places)
}

/// Refuses a Unix peer running as another user, given what `peer_cred` returned.
pub fn same_user(cred: msgsock::Result<PeerCred>) -> Result<(), String> {
    let cred = cred.map_err(|e| format!("no peer credentials: {}", chain(&e)))?;
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

/// Whether a datagram reply may wait for room in the server's own send buffer. Once a wait has
/// failed (the buffer stayed full: on Linux, clients that stopped reading hold it), no reply
/// waits again until one has gone out: waiting 200 ms before dropping each would leave the
/// server answering at most five datagrams a second, none of them successfully.
#[derive(Default)]
pub struct SendRoom {
    full: bool,
}

impl SendRoom {
    /// How long the next reply may wait for room.
    pub fn wait(&self) -> Duration {
        if self.full {
            Duration::ZERO
        } else {
            SEND_ROOM_WAIT
        }
    }

    /// Learns from a reply's result on `socket`: one that went out means there is room again;
    /// a `WouldBlock` with the socket still not writable means its own buffer is what is full
    /// (not only the destination's queue).
    pub fn after(&mut self, sent: &msgsock::Result<()>, socket: BorrowedFd<'_>) {
        match sent {
            Ok(()) => self.full = false,
            Err(msgsock::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.full = !writable_now(socket);
            }
            Err(_) => {}
        }
    }

    /// Whether the last reply found the server's own send buffer full.
    pub fn is_full(&self) -> bool {
        self.full
    }
}

/// Whether poll(2) says `fd` is writable now.
fn writable_now(fd: BorrowedFd<'_>) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

/// How often each kind of per-datagram log line may be written: a flood of datagrams must not
/// flood stderr too (a server blocked writing to a pipe nobody reads serves no one).
pub const LOG_EVERY: Duration = Duration::from_secs(1);

/// The kinds of per-datagram log line, each throttled on its own.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A reply that could not be queued (`WouldBlock`).
    Dropped,
    /// A datagram from a sender with no address.
    Unbound,
    Receive,
    /// A reply that failed otherwise (the sender's file is gone, ...).
    Reply,
}

/// One kind's lines: when one was last written, and what came since.
struct Tally {
    kind: Kind,
    logged: Instant,
    /// Events since the last line written; `last` is the latest one's text.
    unlogged: u64,
    last: String,
}

/// The datagram server's log: each kind of line is written at once the first time, then at most
/// once every [`LOG_EVERY`], the latest text standing for those not written
/// ("(N like this since the last report)"; dropped replies keep their running total instead).
#[derive(Default)]
pub struct DatagramLog {
    tallies: Vec<Tally>,
    dropped: u64,
}

impl DatagramLog {
    fn note(&mut self, kind: Kind, line: String) {
        let now = Instant::now();
        if kind == Kind::Dropped {
            self.dropped += 1;
        }
        let Some(tally) = self.tallies.iter_mut().find(|t| t.kind == kind) else {
            let mut tally = Tally {
                kind,
                logged: now,
                unlogged: 1,
                last: line,
            };
            write(&mut tally, now, self.dropped);
            self.tallies.push(tally);
            return;
        };
        tally.unlogged += 1;
        tally.last = line;
        if now.duration_since(tally.logged) >= LOG_EVERY {
            write(tally, now, self.dropped);
        }
    }

    /// When the next summary of lines not yet written is due, if any is waiting.
    pub fn next_due(&self) -> Option<Instant> {
        self.tallies
            .iter()
            .filter(|t| t.unlogged > 0)
            .map(|t| t.logged + LOG_EVERY)
            .min()
    }

    /// Writes the summaries that are due (all of them with `all`, as the server stops).
    pub fn write_due(&mut self, all: bool) {
        let now = Instant::now();
        for tally in &mut self.tallies {
            if tally.unlogged > 0 && (all || now.duration_since(tally.logged) >= LOG_EVERY) {
                write(tally, now, self.dropped);
            }
        }
    }

    /// The sender of a datagram just received, or `None` (logged) if the receive failed or the
    /// sender has no address to reply to.
    pub fn sender(
        &mut self,
        received: msgsock::Result<(usize, Option<Endpoint>)>,
    ) -> Option<Endpoint> {
        match received {
            Ok((_, Some(from))) => Some(from),
            Ok((_, None)) => {
                let line = "echo: datagram from an unbound sender: no address to reply to";
                self.note(Kind::Unbound, line.into());
                None
            }
            Err(e) => {
                self.note(
                    Kind::Receive,
                    format!("echo: receive failed: {}", chain(&e)),
                );
                None
            }
        }
    }

    /// Logs a datagram reply that failed: one that could not be queued is counted, and said to
    /// have found the server's own send buffer full if `room` (updated with `result`) says so.
    pub fn reply(&mut self, result: msgsock::Result<()>, to: &Endpoint, room: &SendRoom) {
        match result {
            Ok(()) => {}
            Err(msgsock::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                let full = if room.is_full() {
                    "the server's send buffer is full (or nearly)"
                } else {
                    "its queue is full"
                };
                let line = format!("echo: reply to {to} dropped: {full}");
                self.note(Kind::Dropped, line);
            }
            Err(e) => self.note(
                Kind::Reply,
                format!("echo: reply to {to} failed: {}", chain(&e)),
            ),
        }
    }
}

/// Writes `tally`'s latest line, standing for its `unlogged` events.
fn write(tally: &mut Tally, now: Instant, dropped: u64) {
    let n = tally.unlogged;
    match tally.kind {
        Kind::Dropped => eprintln!("{} ({dropped} dropped so far)", tally.last),
        _ if n > 1 => eprintln!("{} ({n} like this since the last report)", tally.last),
        _ => eprintln!("{}", tally.last),
    }
    tally.unlogged = 0;
    tally.logged = now;
}

/// The error of a client whose reply did not come within `timeout`.
pub fn no_reply(endpoint: &Endpoint, timeout: Duration) -> BoxError {
    format!("no reply from {endpoint} within {} s", timeout.as_secs()).into()
}

/// A client's send or receive error, naming `endpoint` where the bare error would not say
/// where: a datagram peer known to be gone (`ConnectionRefused`, from an ICMP port-unreachable
/// on `udp:`, a closed socket on `unixgram:`).
pub fn exchange_error(endpoint: &Endpoint, e: msgsock::Error) -> BoxError {
    match &e {
        msgsock::Error::Io(io) if io.kind() == io::ErrorKind::ConnectionRefused => {
            format!("nothing is bound at {endpoint}: {}", chain(&e)).into()
        }
        _ => e.into(),
    }
}

/// The error that ends a connection silent for `idle`.
pub fn idle_error(idle: Option<Duration>) -> BoxError {
    let secs = idle.map_or(0, |d| d.as_secs());
    format!("idle for {secs} s, closing").into()
}
