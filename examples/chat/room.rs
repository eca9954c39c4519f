//! The room: who is in it, and relaying each line to everyone else. Owned by the server's event
//! loop alone, so it needs no lock.
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
//! A relay never waits for a participant (see [`crate::link`]): one that cannot take a line is
//! dropped, and everyone else sees `* bob left`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use msgsock::AnyDatagram;

use crate::console::Console;
use crate::event::{Event, Peer};
use crate::link::{Link, Msg};
use crate::protocol::{printable, same_name, too_long, MAX_LINE, MISSED_BEATS};

/// How long closing the room waits to tell the stream participants.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(200);

struct Member {
    peer: Peer,
    name: String,
    link: Link,
    last_heard: Instant,
}

/// The server's state.
pub(crate) struct Room {
    host: String,
    /// In order of joining.
    members: Vec<Member>,
    console: Console,
    /// The datagram socket, to answer addresses that are not members; `None` for streams.
    socket: Option<Arc<AnyDatagram>>,
    beat: Duration,
    /// The most members at once (`--max-connections`).
    max: usize,
}

/// A message of the server's that has no text.
fn bare(kind: u8) -> Msg {
    Arc::from([kind])
}

impl Room {
    /// An empty room hosted by `host`, for at most `max` members; `socket` is the datagram socket,
    /// if that is the transport.
    pub(crate) fn new(
        host: String,
        console: Console,
        socket: Option<Arc<AnyDatagram>>,
        beat: Duration,
        max: usize,
    ) -> Room {
        Room {
            host,
            members: Vec::new(),
            console,
            socket,
            beat,
            max,
        }
    }

    /// Handles events until the room closes (or `stop` is set, by a signal); fails if the
    /// network did.
    pub(crate) fn run(
        &mut self,
        rx: &mpsc::Receiver<Event>,
        stop: &AtomicBool,
    ) -> Result<(), String> {
        loop {
            // Checked before each event, not queued behind what the network sent: a signal
            // is handled at once however busy the room.
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
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
                // Each permit is given back once its event is handled, letting its reader on.
                Event::Joined {
                    peer,
                    name,
                    link,
                    permit,
                } => {
                    self.join(peer, name, *link);
                    drop(permit);
                }
                Event::Said { peer, text, permit } => {
                    self.said(&peer, &text);
                    drop(permit);
                }
                Event::Beat(peer, permit) => {
                    self.beat(&peer);
                    drop(permit);
                }
                Event::Left(peer, permit) => {
                    self.left(&peer);
                    drop(permit);
                }
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
        let welcome: Msg = format!("W* welcome, {name}; here: {}", others.join(", "))
            .into_bytes()
            .into();
        // A datagram client resends its join until answered; answer again, announce once.
        if let Some(member) = self.members.iter_mut().find(|m| m.peer == peer) {
            member.last_heard = Instant::now();
            let _ = member.link.send(&welcome);
            return;
        }
        // A second alice (or host) could speak as the first: refused, and nobody told.
        let taken = std::iter::once(self.host.as_str())
            .chain(self.members.iter().map(|m| m.name.as_str()))
            .any(|other| same_name(other, &name));
        // The acceptor caps stream connections; datagram joins are capped here.
        let full = self.members.len() >= self.max;
        if taken || full {
            let why = if taken {
                format!("Ethe name {name} is already in the room; choose another with --name")
            } else {
                format!("Ethe room is full: {} participants", self.max)
            };
            let _ = link.send(&why.into_bytes().into());
            // A stream participant's writer sends it, then hangs up.
            link.close();
            return;
        }
        if link.send(&welcome).is_err() {
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
                let _ = member.link.send(&bare(b'P'));
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
            let _ = m.link.send(&bare(b'X'));
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
    /// cannot take it is dropped, and its leaving announced in turn.
    fn relay(&mut self, except: Option<&Peer>, line: &str) {
        let msg: Msg = [b"T", line.as_bytes()].concat().into();
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

    /// Tells everyone the room closed, waiting at most `CLOSE_TIMEOUT` for the stream
    /// participants' writers, all at once. Returns the console, to finish once the listener is
    /// gone too.
    pub(crate) fn close(mut self) -> Console {
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        let closed = bare(b'C');
        for member in &mut self.members {
            let _ = member.link.send(&closed);
            member.link.close();
        }
        for member in self.members.drain(..) {
            member.link.wait_written(deadline);
            member.link.hang_up();
        }
        self.console
    }
}
