//! The server's network side: binding, accepting, and one reader thread per stream participant
//! (or one for the datagram socket) turning what arrives into events for the room.
//!
//! Closing the room never waits long for anyone: `C` goes to each stream participant through its
//! writer, waited for briefly, and the accepting thread is stopped with its listener's
//! `ShutdownHandle`, never by a connection through the socket's path (which a successor may own).

use std::io;
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread;

use msgsock::{AnyDatagram, AnyListener, AnyStream, Connection, Endpoint, ShutdownHandle};

use crate::backoff::Backoff;
use crate::chain;
use crate::console::Console;
use crate::event::{Event, Peer};
use crate::link::Link;
use crate::protocol::{clean_name, heartbeat, MAX_MESSAGE, PEER_TIMEOUT};
use crate::room::Room;
use crate::signals::{block_signals, wait_for_signals};

/// Opens a room on `endpoint`, hosted by `host`, until the operator quits or a signal comes.
///
/// # Errors
///
/// The endpoint cannot be bound, or the server's socket failed, as one line.
pub(crate) fn serve(endpoint: &Endpoint, host: String) -> Result<(), String> {
    let signals = block_signals()?;
    let (tx, rx) = mpsc::channel();
    let bind_error = |e: msgsock::Error| format!("cannot listen on {endpoint}: {}", chain(&e));
    let network = if endpoint.is_datagram() {
        let owner = msgsock::bind_datagram(endpoint).map_err(bind_error)?;
        let local = owner.local_endpoint().map_err(bind_error)?;
        let shared = Arc::new(owner.try_clone().map_err(bind_error)?);
        crate::console::say(&format!("listening on {local}"));
        let (socket, tx) = (Arc::clone(&shared), tx.clone());
        thread::spawn(move || receive_datagrams(&socket, &tx));
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
        let acceptor = thread::spawn(move || accept_participants(listener, &tx));
        Network::Stream { acceptor, stop }
    };
    wait_for_signals(signals, tx.clone());
    let socket = match &network {
        Network::Datagram(_, shared) => Some(Arc::clone(shared)),
        Network::Stream { .. } => None,
    };
    let mut room = Room::new(host, Console::start(tx), socket, heartbeat());
    let outcome = room.run(&rx);
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

fn accept_participants(listener: AnyListener, tx: &Sender<Event>) {
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
                conn.set_max_message_len(MAX_MESSAGE);
                let tx = tx.clone();
                thread::spawn(move || read_participant(id, conn, &tx));
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

/// Reads one stream participant: its join, its lines, and its leaving, however it ends.
fn read_participant(id: u64, mut conn: Connection<AnyStream>, tx: &Sender<Event>) {
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
    let Ok(link) = conn.try_clone().and_then(Link::stream) else {
        return;
    };
    let peer = Peer::Stream(id);
    let joined = Event::Joined {
        peer: peer.clone(),
        name,
        link: Box::new(link),
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
                link: Box::new(Link::Datagram(Arc::clone(socket), from)),
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
