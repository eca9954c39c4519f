//! A participant: joins a room, sends what the person types, shows what the server relays, and
//! notices when the server is gone.

use std::io;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use msgsock::{AnyConnection, Endpoint};

use crate::chain;
use crate::console::Console;
use crate::event::Event;
use crate::protocol::{
    heartbeat, printable, too_long, JOIN_RETRY, JOIN_TRIES, MAX_LINE, MISSED_BEATS, PEER_TIMEOUT,
};
use crate::signals::{block_signals, wait_for_signals};

/// How long, once a send found the stream server gone, what it sent before is read for: the reads
/// reach the end of the connection at once, so this only bounds the exit if they did not; past it
/// the connection counts as lost.
const UNREAD_WAIT: Duration = Duration::from_secs(1);

/// What ends the session: the line to show, or how it ended badly.
type Ending = Result<&'static str, Lost>;

/// How a session ended badly.
enum Lost {
    /// The connection to the server was lost, and why.
    Connection(String),
    /// The server refused the join (`E`), saying why.
    Refused(String),
}

impl From<String> for Lost {
    fn from(why: String) -> Lost {
        Lost::Connection(why)
    }
}

/// Joins the room at `endpoint` as `name`, until the person leaves or the room closes.
///
/// # Errors
///
/// The server cannot be reached, or the connection to it was lost, as one line.
pub(crate) fn join(endpoint: &Endpoint, name: String) -> Result<(), String> {
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
    wait_for_signals(signals, tx.clone(), None);
    let mut console = Console::start(tx);

    let mut last_heard = Instant::now();
    let mut next_beat = last_heard + beat.unwrap_or_default();
    let mut pending = first.map(Event::FromServer);
    let mut welcomed = false;
    let ending: Ending = loop {
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
            Some(Event::Input(line)) => match conn.send(&[b"M", line.as_bytes()].concat()) {
                Ok(()) => {}
                // A datagram server has no hanging up, and its own close handling.
                Err(e) if beat.is_none() && hung_up(&e) => {
                    break after_hang_up(&rx, &mut console, &mut welcomed, chain(&e));
                }
                Err(e) => break Err(chain(&e).into()),
            },
            Some(Event::InputEnd | Event::Signal) => break leave(&mut conn),
            Some(Event::FromServer(msg)) => {
                last_heard = Instant::now();
                if let Some(ending) = from_server(&msg, &mut console, &mut welcomed) {
                    break ending;
                }
            }
            Some(Event::Failed(why)) => break Err(why.into()),
            Some(_) | None => {}
        }
        if let Some(beat) = beat {
            if last_heard.elapsed() > beat * MISSED_BEATS {
                break Err(Lost::Connection("no word from the server".into()));
            }
            if Instant::now() >= next_beat {
                if let Err(e) = conn.send(b"H") {
                    break Err(chain(&e).into());
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
        Err(Lost::Connection(why)) => {
            console.finish("* connection to server lost");
            Err(format!("connection to {endpoint} lost: {why}"))
        }
        Err(Lost::Refused(why)) => {
            console.finish("");
            Err(format!("cannot join {endpoint}: {why}"))
        }
    }
}

/// Shows a message from the server, or says how the session ends: `C`, the room closed, `X`, or
/// `E`, the join refused.
fn from_server(msg: &[u8], console: &mut Console, welcomed: &mut bool) -> Option<Ending> {
    match msg.split_first() {
        // A join resent before the answer came is answered twice.
        Some((b'W', line)) if !*welcomed => {
            *welcomed = true;
            console.show(&printable(line));
        }
        Some((b'T', line)) => console.show(&printable(line)),
        Some((b'C', _)) => return Some(Ok("* room closed")),
        Some((b'X', _)) => {
            return Some(Err(Lost::Connection(
                "the server dropped this participant".into(),
            )))
        }
        Some((b'E', why)) => return Some(Err(Lost::Refused(printable(why)))),
        _ => {}
    }
    None
}

/// Whether a send failed because the stream server hung up (`EPIPE`, `ECONNRESET`).
fn hung_up(e: &msgsock::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

/// How the session ends once a send found the stream server gone (`why`): a server closing the
/// room sends `C` and then hangs up, so a line typed just then meets the closed connection while
/// `C` is still unread. What the server sent is read to the end of the connection (within
/// `UNREAD_WAIT`) and handled as ever, so `C` ends the session as the room closing; without it,
/// the connection was lost.
fn after_hang_up(
    rx: &Receiver<Event>,
    console: &mut Console,
    welcomed: &mut bool,
    why: String,
) -> Ending {
    let deadline = Instant::now() + UNREAD_WAIT;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Event::FromServer(msg)) => {
                if let Some(ending) = from_server(&msg, console, welcomed) {
                    return ending;
                }
            }
            // The end of the connection (or no end in time) and no `C` before it.
            Ok(Event::Failed(_)) | Err(_) => return Err(why.into()),
            // Typed lines and signals: the server is gone, nothing more is sent.
            Ok(_) => {}
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

fn leave(conn: &mut AnyConnection) -> Ending {
    let _ = conn.send(b"L");
    Ok("")
}
