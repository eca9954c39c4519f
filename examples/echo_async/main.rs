//! The echo server and client of `examples/echo/main.rs` on tokio: the same command line, output
//! and behaviour (the command line and the policy pieces are one module, `examples/echo/cli.rs`),
//! so the same process-level tests drive both.
//!
//! ```text
//! cargo run --features tokio --example echo_async -- unix:/tmp/echo.sock
//! cargo run --features tokio --example echo_async -- --connect unix:/tmp/echo.sock
//! ```
//!
//! Each stream connection is a task (the authkey handshake included, so a slow client holds up
//! no one); `--idle-timeout` is one timer per connection, re-armed before each receive and
//! reply; SIGINT or SIGTERM (`tokio::signal::unix`) end the accept loop, so the listener is
//! dropped, its socket file and lock removed (only if still its own), and the process exits 0.
//! Log lines start `echo:` as echo's do. See `examples/echo/main.rs` for the options. On `unix:`,
//! `unixgram:` and `unixpacket:` endpoints a message comes back with the descriptors that came
//! with it, as echo's do. The client stops on SIGINT or SIGTERM as the server does, whatever it
//! waits for: its connection is dropped (a `unixgram:` client's own socket file with it) and it
//! exits 0.
//!
//! An idle connection costs its task, so the task is kept small: the handshake's state is boxed
//! (only `--authkey-file` servers need it, and only while it runs), and a server without an idle
//! timeout spawns a task type with no timer in it.

#[path = "../echo/cli.rs"]
mod cli;

use std::future::Future;
use std::io::{self, BufRead, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use msgsock::tokio::{AsyncAnyConnection, AsyncAnyStream, AsyncConnection, AsyncDatagram};
use msgsock::{AnyDatagram, Authenticator, Endpoint};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::cli::{borrowed, chain, exchange_error, BoxError, Command, Options, Places, Slot};

/// A served connection.
type StreamConn = AsyncConnection<AsyncAnyStream>;

fn main() -> ExitCode {
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(BoxError::from)
        .and_then(|rt| rt.block_on(run()));
    cli::exit(result)
}

async fn run() -> Result<(), BoxError> {
    let (endpoint, opts) = match cli::parse_args()? {
        Command::Help => return Ok(()),
        Command::Connect {
            endpoint,
            auth,
            reply,
        } => return client(&endpoint, auth.as_deref(), reply).await,
        Command::Serve { endpoint, opts } => (endpoint, opts),
    };
    // Installed before the ready line, so a signal right after it is never missed.
    let stop = Stop::new()?;
    if endpoint.is_datagram() {
        let socket = msgsock::tokio::bind_datagram(&endpoint)
            .await
            .map_err(|e| format!("cannot bind {endpoint}: {}", chain(&e)))?;
        cli::announce(&socket.local_endpoint()?)?;
        serve_datagrams(&socket, stop).await;
        return Ok(());
    }
    let listener = msgsock::tokio::bind(&endpoint)
        .await
        .map_err(|e| format!("cannot listen on {endpoint}: {}", chain(&e)))?;
    let seqpacket = matches!(listener, msgsock::tokio::AsyncAnyListener::Seqpacket(_));
    cli::check_auth(&opts, seqpacket, &endpoint)?;
    cli::announce(&listener.local_endpoint()?)?;
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
    fn new() -> Result<Stop, BoxError> {
        Ok(Stop {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    async fn wait(&mut self) {
        let name = tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        };
        eprintln!("echo: {name}, shutting down");
    }
}

/// Returns once `places` has a free place, or after [`cli::PLACE_GRACE`] at most; `freed` is
/// notified as each comes free.
async fn wait_for_place(places: &Places, freed: &Notify) {
    let deadline = Instant::now() + cli::PLACE_GRACE;
    loop {
        // Registered before the check, so that a place freed between the two is not missed.
        let notified = freed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !places.full() {
            return;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return;
        }
    }
}

/// Accepts until a signal, each connection served by a task of its own.
async fn serve(listener: &msgsock::tokio::AsyncAnyListener, opts: &Options, mut stop: Stop) {
    let freed = Arc::new(Notify::new());
    let places = Places::new(opts.max_connections, {
        let freed = Arc::clone(&freed);
        move || freed.notify_waiters()
    });
    let mut backoff = cli::Backoff::new("echo");
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.wait() => return,
        };
        let conn = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("echo: accept failed: {}", chain(&e));
                if let Some(delay) = backoff.after_failure(&e) {
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stop.wait() => return,
                    }
                }
                continue;
            }
        };
        backoff.reset();
        tokio::select! {
            () = wait_for_place(&places, &freed) => {}
            () = stop.wait() => return,
        }
        let Some(slot) = cli::admit(&places, opts, || same_user(&conn)) else {
            continue;
        };
        if conn.as_seqpacket().is_some() {
            tokio::spawn(echo_packets(slot, conn, opts.idle));
            continue;
        }
        // The other connections are streams; the tasks hold the stream connection itself,
        // whose futures are smaller than the any-transport wrapper's.
        let Some(conn) = conn.into_stream() else {
            eprintln!("echo: closed a connection: not a stream");
            continue;
        };
        let auth = opts.auth.clone();
        // Two task types, so that one without a timeout carries no timer.
        match opts.idle {
            Some(idle) => tokio::spawn(echo_within(slot, conn, auth, idle)),
            None => tokio::spawn(echo_forever(slot, conn, auth)),
        };
    }
}

/// Whether `conn` may be served: it passed the authkey handshake, or none is asked for. A
/// client that fails is logged.
async fn login(conn: &mut StreamConn, auth: Option<Arc<Authenticator>>) -> bool {
    let Some(auth) = auth else {
        return true;
    };
    match handshake(conn, &auth).await {
        Ok(()) => true,
        Err(e) => {
            eprintln!("echo: rejected a client: {}", chain(&e));
            false
        }
    }
}

/// The server's side of the authkey handshake, boxed, so its state is not part of every task
/// and is freed once it is done.
fn handshake<'a>(
    conn: &'a mut StreamConn,
    auth: &'a Authenticator,
) -> Pin<Box<dyn Future<Output = msgsock::Result<()>> + Send + 'a>> {
    Box::pin(conn.authenticate_server(auth))
}

/// Refuses a Unix peer running as another user.
fn same_user(conn: &AsyncAnyConnection) -> Result<(), String> {
    if let Some(socket) = conn.as_seqpacket() {
        return cli::same_user(socket.peer_cred());
    }
    let stream = conn.as_stream().ok_or("not a Unix socket")?;
    cli::same_user(stream.peer_cred())
}

/// One connection's task without an idle timeout: after [`login`], sends every message back
/// unchanged until the peer closes, holding `slot` throughout.
async fn echo_forever(slot: Slot, mut conn: StreamConn, auth: Option<Arc<Authenticator>>) {
    let _slot = slot;
    if !login(&mut conn, auth).await {
        return;
    }
    let (mut msg, mut fds) = (Vec::new(), Vec::new());
    loop {
        // Not `match recv_message(..).await`: the receive future, a temporary of the
        // scrutinee, would live on through the reply, and take room in every task.
        let received = recv_message(&mut conn, &mut msg, &mut fds).await;
        match received {
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(e @ msgsock::Error::FdsTruncated { .. }) => {
                dropped(&e);
                continue;
            }
            Err(e) => return failed(e.into()),
        }
        let sent = reply(&mut conn, &msg, &mut fds).await;
        if let Err(e) = sent {
            return failed(e.into());
        }
        if msg.capacity() > cli::KEEP_BUFFER {
            msg = Vec::new();
        }
    }
}

/// The instant `d` from now; one that `Instant` cannot hold (`--idle-timeout` takes any number
/// of seconds) is 30 years away, as `tokio::time::sleep` takes it.
fn from_now(d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(d).unwrap_or(now + FAR)
}

/// One connection's task with an idle timeout: as [`echo_forever`], but the connection is closed
/// once the peer stays silent for `idle`, or does not take a reply within `idle`.
async fn echo_within(
    slot: Slot,
    mut conn: StreamConn,
    auth: Option<Arc<Authenticator>>,
    idle: Duration,
) {
    let _slot = slot;
    if !login(&mut conn, auth).await {
        return;
    }
    // One timer for the connection's life, re-armed before each step, rather than a new
    // `Timeout` around each: the same deadlines, in less memory per task.
    let deadline = tokio::time::sleep(idle);
    tokio::pin!(deadline);
    let (mut msg, mut fds) = (Vec::new(), Vec::new());
    loop {
        deadline.as_mut().reset(from_now(idle));
        // `biased`: the step before the timer, as `Timeout` polls them.
        let received = tokio::select! {
            biased;
            received = recv_message(&mut conn, &mut msg, &mut fds) => received,
            () = &mut deadline => return failed(cli::idle_error(Some(idle))),
        };
        match received {
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(e @ msgsock::Error::FdsTruncated { .. }) => {
                dropped(&e);
                continue;
            }
            Err(e) => return failed(e.into()),
        }
        deadline.as_mut().reset(from_now(idle));
        let sent = tokio::select! {
            biased;
            sent = reply(&mut conn, &msg, &mut fds) => sent,
            () = &mut deadline => return failed(cli::idle_error(Some(idle))),
        };
        if let Err(e) = sent {
            return failed(e.into());
        }
        if msg.capacity() > cli::KEEP_BUFFER {
            msg = Vec::new();
        }
    }
}

/// Receives the next message into `msg`, and on a Unix stream its descriptors into `fds` (TCP
/// carries none).
async fn recv_message(
    conn: &mut StreamConn,
    msg: &mut Vec<u8>,
    fds: &mut Vec<OwnedFd>,
) -> msgsock::Result<Option<usize>> {
    if matches!(conn.get_ref(), AsyncAnyStream::Unix(_)) {
        conn.recv_into_with_fds(msg, fds).await
    } else {
        conn.recv_into(msg).await
    }
}

/// Sends `msg` back with the descriptors `fds` that came with it, then closes ours: the reply
/// carried its own.
async fn reply(conn: &mut StreamConn, msg: &[u8], fds: &mut Vec<OwnedFd>) -> msgsock::Result<()> {
    if fds.is_empty() {
        return conn.send(msg).await;
    }
    let sent = conn.send_with_fds(msg, &borrowed(fds)).await;
    fds.clear();
    sent
}

/// Logs a message that lost its descriptors at the descriptor limit: it is not answered, and
/// the connection, still in step, goes on.
fn dropped(e: &msgsock::Error) {
    eprintln!("echo: dropped a message: {}", chain(e));
}

/// A `unixpacket:` connection's task: sends every packet back unchanged, with its descriptors,
/// until the peer closes, or stays silent (or does not take a reply) for `idle`.
async fn echo_packets(slot: Slot, mut conn: AsyncAnyConnection, idle: Option<Duration>) {
    let _slot = slot;
    let within = |idle: Option<Duration>| async move {
        match idle {
            Some(idle) => tokio::time::sleep(idle).await,
            None => std::future::pending().await,
        }
    };
    let (mut msg, mut fds) = (Vec::new(), Vec::new());
    loop {
        let received = tokio::select! {
            received = conn.recv_into_with_fds(&mut msg, &mut fds) => received,
            () = within(idle) => return failed(cli::idle_error(idle)),
        };
        match received {
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(e @ msgsock::Error::FdsTruncated { .. }) => {
                dropped(&e);
                continue;
            }
            Err(e) => return failed(e.into()),
        }
        let sent = tokio::select! {
            sent = async {
                if fds.is_empty() {
                    conn.send(&msg).await
                } else {
                    conn.send_with_fds(&msg, &borrowed(&fds)).await
                }
            } => sent,
            () = within(idle) => return failed(cli::idle_error(idle)),
        };
        // Our copies: the reply carried its own.
        fds.clear();
        if let Err(e) = sent {
            return failed(e.into());
        }
    }
}

/// Logs the error that ended a connection.
fn failed(e: BoxError) {
    eprintln!("echo: connection failed: {}", chain(&*e));
}

/// Replies to each datagram's sender with the same bytes (and on a Unix socket the same
/// descriptors), until a signal. A reply that cannot be queued now is dropped, never waited for.
async fn serve_datagrams(socket: &AsyncDatagram, mut stop: Stop) {
    let (mut msg, mut fds) = (Vec::new(), Vec::new());
    let unix = matches!(socket.get_ref(), AnyDatagram::Unix(_));
    let mut log = cli::DatagramLog::default();
    let mut room = cli::SendRoom::default();
    loop {
        let due = log.next_due();
        let received = tokio::select! {
            received = async {
                if unix {
                    socket.recv_from_with_fds(&mut msg, &mut fds).await
                } else {
                    socket.recv_from(&mut msg).await
                }
            } => received,
            () = until(due) => {
                log.write_due(false);
                continue;
            }
            () = stop.wait() => break,
        };
        let Some(from) = log.sender(received) else {
            continue;
        };
        let sent = if fds.is_empty() {
            socket.try_send_to_within(&msg, &from, room.wait()).await
        } else {
            socket
                .try_send_to_with_fds_within(&msg, &borrowed(&fds), &from, room.wait())
                .await
        };
        // Our copies: the reply carried its own.
        fds.clear();
        room.after(&sent, socket.as_fd());
        log.reply(sent, &from, &room);
    }
    // What was counted and not yet written.
    log.write_due(true);
}

/// Returns at `due`, or never without one.
async fn until(due: Option<std::time::Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

/// Sends each line of stdin and prints the reply, until stdin ends or SIGINT/SIGTERM; either way
/// the connection is dropped on return, so a `unixgram:` client's own socket file goes.
async fn client(
    endpoint: &Endpoint,
    auth: Option<&Authenticator>,
    reply_timeout: Option<Duration>,
) -> Result<(), BoxError> {
    // Installed first, so a signal stops the client whatever it waits for, the connect included.
    let mut stop = Stop::new()?;
    let connected = async {
        let mut conn = msgsock::tokio::connect(endpoint).await?;
        if let Some(auth) = auth {
            conn.authenticate_client(auth).await?;
        }
        Ok::<_, msgsock::Error>(conn)
    };
    let connected = tokio::select! {
        connected = connected => connected,
        () = stop.wait() => return Ok(()),
    };
    let mut conn = connected.map_err(|e| format!("cannot connect to {endpoint}: {}", chain(&e)))?;
    let mut lines = stdin_lines()?;
    let mut reply = Vec::new();
    loop {
        let line = tokio::select! {
            line = lines.recv() => line,
            () = stop.wait() => return Ok(()),
        };
        // `None`: stdin ended.
        let Some(line) = line else {
            return Ok(());
        };
        let line = line?;
        let exchange = async {
            conn.send(&line).await?;
            let recv = conn.recv_into(&mut reply);
            // `None`: no reply within the timeout.
            Ok::<_, msgsock::Error>(match reply_timeout {
                None => Some(recv.await?),
                Some(limit) => tokio::time::timeout(limit, recv).await.ok().transpose()?,
            })
        };
        let received = tokio::select! {
            received = exchange => received.map_err(|e| exchange_error(endpoint, e))?,
            () = stop.wait() => return Ok(()),
        };
        let Some(received) = received else {
            return Err(cli::no_reply(endpoint, reply_timeout.unwrap_or_default()));
        };
        if received.is_none() {
            return Err("the server closed the connection".into());
        }
        let mut stdout = io::stdout().lock();
        stdout.write_all(&reply)?;
        stdout.write_all(b"\n")?;
        stdout.flush()?;
    }
}

/// The lines of stdin (each a `BufRead::split` segment), read on a thread of their own: tokio's
/// stdin reads on the runtime's blocking pool, and the runtime's shutdown after a signal would
/// wait for a read that waits for the next line. The thread ends with the process.
fn stdin_lines() -> io::Result<tokio::sync::mpsc::Receiver<io::Result<Vec<u8>>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            for line in io::stdin().lock().split(b'\n') {
                let failed = line.is_err();
                if tx.blocking_send(line).is_err() || failed {
                    return;
                }
            }
        })?;
    Ok(rx)
}
