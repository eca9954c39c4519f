//! The server's network side: binding, accepting, and one reader thread per stream participant
//! (or one for the datagram socket) turning what arrives into events for the room.
//!
//! Closing the room never waits long for anyone: `C` goes to each stream participant through its
//! writer, waited for briefly, and the accepting thread is stopped with its listener's
//! `ShutdownHandle`, never by a connection through the socket's path (which a successor may own).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use msgsock::{AnyDatagram, AnyListener, AnyStream, Connection, Endpoint, ShutdownHandle};

use crate::backoff::Backoff;
use crate::chain;
use crate::console::Console;
use crate::event::{Event, Peer, Window};
use crate::link::Link;
use crate::protocol::{clean_name, heartbeat, MAX_MESSAGE, PEER_TIMEOUT};
use crate::room::Room;
use crate::signals::{block_signals, wait_for_signals};

/// Participants let in at once unless `--max-connections` says otherwise. Each stream one holds
/// two threads, and what it has sent waiting for the room is bounded too, so this bounds the
/// server's threads and memory.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Events of one stream participant waiting for the room at most (see [`Window`]): few, so a
/// flood gets little ahead of anyone else's line; each holds at most `MAX_MESSAGE` bytes, so the
/// queue holds at most 8 × 8 KiB per connection, 16 MiB at the default cap.
const STREAM_WINDOW: usize = 8;
/// Events from the datagram socket waiting for the room at most, everyone's together.
const DATAGRAM_WINDOW: usize = 64;

/// Opens a room on `endpoint`, hosted by `host`, for at most `max` participants at once, until
/// the operator quits or a signal comes.
///
/// # Errors
///
/// The endpoint cannot be bound, a thread cannot be started, or the server's socket failed, as
/// one line.
pub(crate) fn serve(endpoint: &Endpoint, host: String, max: usize) -> Result<(), String> {
    let signals = block_signals()?;
    let (tx, rx) = mpsc::channel();
    let bind_error = |e: msgsock::Error| format!("cannot listen on {endpoint}: {}", chain(&e));
    let network = if endpoint.is_datagram() {
        let owner = msgsock::bind_datagram(endpoint).map_err(bind_error)?;
        let local = owner.local_endpoint().map_err(bind_error)?;
        let shared = Arc::new(owner.try_clone().map_err(bind_error)?);
        crate::console::say(&format!("listening on {local}"));
        let (socket, tx) = (Arc::clone(&shared), tx.clone());
        thread::Builder::new()
            .spawn(move || receive_datagrams(&socket, &tx))
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        Network::Datagram(owner, shared)
    } else {
        let listener = msgsock::bind(endpoint).map_err(bind_error)?;
        let local = listener.local_endpoint().map_err(bind_error)?;
        // An inherited listener (`fd:`, `systemd:`) shows its type only now; the room has no
        // reader for SEQPACKET connections.
        if let AnyListener::Seqpacket(_) = listener {
            return Err(format!(
                "cannot listen on {endpoint}: it is a {local} listener; the {} transport is not \
                 supported by chat",
                local.scheme()
            ));
        }
        let stop = listener.shutdown_handle().map_err(bind_error)?;
        crate::console::say(&format!("listening on {local}"));
        let tx = tx.clone();
        let places = Arc::new(Places {
            max,
            taken: AtomicUsize::new(0),
        });
        // Not `thread::spawn`, which panics: here the listener (and its socket file) goes too.
        let acceptor = thread::Builder::new()
            .spawn(move || accept_participants(listener, &places, &tx))
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        Network::Stream { acceptor, stop }
    };
    let stop = Arc::new(AtomicBool::new(false));
    wait_for_signals(signals, tx.clone(), Some(Arc::clone(&stop)));
    let socket = match &network {
        Network::Datagram(_, shared) => Some(Arc::clone(shared)),
        Network::Stream { .. } => None,
    };
    let mut room = Room::new(host, Console::start(tx), socket, heartbeat(), max);
    let outcome = room.run(&rx, &stop);
    let console = room.close();
    network.stop();
    console.finish("* room closed");
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

/// How many stream connections are served, of at most `max`.
struct Places {
    max: usize,
    taken: AtomicUsize,
}

/// A place among the `--max-connections`, given back when dropped.
struct Slot(Arc<Places>);

impl Slot {
    /// A place, or `None` if all are taken.
    fn take(places: &Arc<Places>) -> Option<Slot> {
        places
            .taken
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < places.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(Arc::clone(places)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.taken.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Tells a connection why it is not let in, if its socket takes that at once (a new
/// connection's does), and closes it: the acceptor never waits for a peer.
fn refuse(mut conn: Connection<AnyStream>, why: &str) {
    conn.set_message_timeout(Some(Duration::ZERO));
    let _ = conn.send(&[b"E", why.as_bytes()].concat());
}

fn accept_participants(listener: AnyListener, places: &Arc<Places>, tx: &Sender<Event>) {
    let mut backoff = Backoff::new("chat");
    // Ends when the room closes and shuts the listener down.
    for (id, conn) in (1..).zip(listener.incoming()) {
        match conn {
            // A stream listener's connections are streams.
            Ok(conn) => {
                backoff.reset();
                let Some(mut conn) = conn.into_stream() else {
                    continue;
                };
                let Some(slot) = Slot::take(places) else {
                    let max = places.max;
                    eprintln!(
                        "chat: closed a connection: {max} already open (--max-connections {max})"
                    );
                    refuse(conn, &format!("the room is full: {max} connections"));
                    continue;
                };
                conn.set_max_message_len(MAX_MESSAGE);
                let tx = tx.clone();
                // A failed spawn drops the closure, and so the connection and its place.
                let spawned =
                    thread::Builder::new().spawn(move || read_participant(id, conn, &tx, slot));
                if let Err(e) = spawned {
                    eprintln!("chat: closed a connection: cannot start a thread for it: {e}");
                }
            }
            Err(e) => {
                eprintln!("chat: accept failed: {}", chain(&e));
                // Out of descriptors, the next accept fails at once too. The room's close
                // waits for the delay, at most a second.
                if let Some(delay) = backoff.after_failure(&e) {
                    thread::sleep(delay);
                }
            }
        }
    }
}

/// Reads one stream participant, holding `slot` meanwhile: its join, its lines, and its leaving,
/// however it ends.
fn read_participant(id: u64, mut conn: Connection<AnyStream>, tx: &Sender<Event>, slot: Slot) {
    // Whatever connects and says nothing, or not a join, gets no thread kept for it. The
    // deadline bounds the whole join, not each read, so trickling it a byte at a time does not
    // dodge it.
    conn.set_message_timeout(Some(PEER_TIMEOUT));
    let name = match conn.recv() {
        Ok(Some(msg)) if msg.first() == Some(&b'J') => clean_name(&msg[1..]),
        _ => return,
    };
    // Lifted once in the room: a participant may be silent for as long as it likes, and its
    // writer (cloned from this handle below) must not give up on a line half sent.
    conn.set_message_timeout(None);
    let link = match conn.try_clone().and_then(Link::stream) {
        Ok(link) => link,
        Err(e) => {
            eprintln!("chat: closed a connection: {}", chain(&e));
            return;
        }
    };
    let peer = Peer::Stream(id);
    let window = Window::new(STREAM_WINDOW);
    let joined = Event::Joined {
        peer: peer.clone(),
        name,
        link: Box::new(link),
        permit: window.permit(),
    };
    if tx.send(joined).is_err() {
        return;
    }
    // Until `L`, a clean close, or an error: all mean the participant is gone.
    while let Ok(Some(msg)) = conn.recv() {
        match msg.split_first() {
            Some((b'M', text)) => {
                // Waits while the room has this reader's share of its queue to handle.
                let said = Event::Said {
                    peer: peer.clone(),
                    text: text.to_vec(),
                    permit: window.permit(),
                };
                if tx.send(said).is_err() {
                    return;
                }
            }
            Some((b'L', _)) => break,
            _ => {}
        }
    }
    // Given back first, so that once the room shows the leaving, a newcomer finds the place.
    drop(slot);
    let _ = tx.send(Event::Left(peer, window.permit()));
}

/// Turns each datagram into an event; the sender's address is who it is.
fn receive_datagrams(socket: &Arc<AnyDatagram>, tx: &Sender<Event>) {
    let mut buf = Vec::new();
    // While it waits, what arrives waits in the socket's buffer, and past that the kernel drops
    // it, whoever it is from.
    let window = Window::new(DATAGRAM_WINDOW);
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
                link: Box::new(Link::Datagram(Arc::clone(socket), from)),
                permit: window.permit(),
            },
            Some((b'M', text)) => Event::Said {
                peer,
                text: text.to_vec(),
                permit: window.permit(),
            },
            Some((b'H', _)) => Event::Beat(peer, window.permit()),
            Some((b'L', _)) => Event::Left(peer, window.permit()),
            _ => continue,
        };
        if tx.send(event).is_err() {
            return;
        }
    }
}
