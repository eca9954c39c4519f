//! What a chat process reacts to: one event type, sent by whichever thread noticed something to
//! the one loop that owns the state (the room, or the client's session).

use std::sync::{Arc, Condvar, Mutex, PoisonError};

use msgsock::Endpoint;

use crate::link::Link;

/// Everything a process reacts to, from whichever thread noticed it.
pub(crate) enum Event {
    /// A line from the prompt (or from piped stdin).
    Input(String),
    /// Ctrl-D or the end of piped stdin.
    InputEnd,
    /// SIGINT, SIGTERM or SIGHUP.
    Signal,
    /// Server: a participant asked to join. The link is boxed: a stream connection is the
    /// largest thing here, and every other event would pay its size.
    Joined {
        peer: Peer,
        name: String,
        link: Box<Link>,
        permit: Permit,
    },
    /// Server: a participant said a line.
    Said {
        peer: Peer,
        text: Vec<u8>,
        permit: Permit,
    },
    /// Server: a datagram participant's heartbeat.
    Beat(Peer, Permit),
    /// Server: a participant left, or its connection ended.
    Left(Peer, Permit),
    /// Client: a message from the server.
    FromServer(Vec<u8>),
    /// The network failed: the server's socket, or the client's connection to the server.
    Failed(String),
}

/// Who sent something: a stream connection (numbered as accepted), or a datagram address.
#[derive(Clone, PartialEq)]
pub(crate) enum Peer {
    Stream(u64),
    Datagram(Endpoint),
}

/// A network reader's share of the room's queue: at most `max` of its events wait there at
/// once, so the queue is bounded (by the readers, which `--max-connections` bounds) though the
/// channel is not. A reader that has all its share waiting blocks, and so stops reading its
/// socket: a flooding peer is held back by its own socket, and each other reader still has its
/// own share, so the room takes its lines in turn, behind a few of the flood's at most.
pub(crate) struct Window {
    max: usize,
    waiting: Mutex<usize>,
    freed: Condvar,
}

/// A place in a [`Window`], held by the event it came with until the room has handled it
/// (or dropped it, closing).
pub(crate) struct Permit(Arc<Window>);

impl Window {
    pub(crate) fn new(max: usize) -> Arc<Window> {
        Arc::new(Window {
            max,
            waiting: Mutex::new(0),
            freed: Condvar::new(),
        })
    }

    /// A place for one more event, waiting for the room to handle one while all are taken.
    pub(crate) fn permit(self: &Arc<Window>) -> Permit {
        let waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let mut waiting = self
            .freed
            .wait_while(waiting, |n| *n >= self.max)
            .unwrap_or_else(PoisonError::into_inner);
        *waiting += 1;
        Permit(Arc::clone(self))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let window = &self.0;
        *window
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner) -= 1;
        window.freed.notify_one();
    }
}
