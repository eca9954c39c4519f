//! What a chat process reacts to: one event type, sent by whichever thread noticed something to
//! the one loop that owns the state (the room, or the client's session).

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
pub(crate) enum Peer {
    Stream(u64),
    Datagram(Endpoint),
}
