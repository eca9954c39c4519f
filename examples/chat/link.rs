//! How the server reaches one participant, without ever waiting for it.
//!
//! A stream participant has a writer thread of its own and a bounded queue in front of it: the
//! room only puts a line in the queue, so a participant that stops reading (a client suspended
//! with Ctrl-Z) stalls its own writer and nobody else. When its queue is full it is dropped and
//! its leaving announced. A datagram participant's line is queued in the kernel with
//! `try_send_to_within`, which never waits for a peer: a full peer is `WouldBlock` at once, and it
//! is dropped the same way.
//!
//! On `unixgram:`, what a participant has not read stays charged to the server's send buffer until
//! it reads or exits, because Linux exempts a receiver connected to the sender from its queue
//! limit: while that buffer is full, lines to others are dropped too, and so are they.

use std::net::Shutdown;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use msgsock::{AnyDatagram, AnyStream, Connection, Endpoint};

/// Lines waiting for one stream participant beyond what its socket buffer holds. Lines are
/// shared between the queues, so a full queue costs a pointer per line, and the room at most
/// this many distinct lines of `MAX_LINE` bytes: enough for a burst of the whole room talking
/// while a slow terminal catches up.
const QUEUE_LEN: usize = 256;
/// How long a datagram may wait for room in the server's own send buffer (lines in flight to
/// participants that do read); a participant whose queue is full is never waited for.
const SEND_ROOM_WAIT: Duration = Duration::from_millis(200);

/// One message for any number of participants, copied once.
pub(crate) type Msg = Arc<[u8]>;

/// The participant cannot be reached: its queue is full or its connection ended.
pub(crate) struct Unreachable;

/// How the server reaches one participant.
pub(crate) enum Link {
    Stream(Writer),
    Datagram(Arc<AnyDatagram>, Endpoint),
}

/// A stream participant's queue and the thread that writes it out.
pub(crate) struct Writer {
    /// `None` once closing: the writer sends what is queued and ends.
    queue: Option<SyncSender<Msg>>,
    /// A handle on the connection, to hang up on it.
    conn: Connection<AnyStream>,
    /// Disconnected when the writer thread has ended.
    done: Receiver<()>,
}

impl Link {
    /// A link over `conn` (the server's sending handle), with its writer thread started.
    ///
    /// # Errors
    ///
    /// `dup(2)` failed, or the thread could not be started.
    pub(crate) fn stream(conn: Connection<AnyStream>) -> msgsock::Result<Link> {
        let (queue, lines) = mpsc::sync_channel::<Msg>(QUEUE_LEN);
        let (ended, done) = mpsc::channel();
        let mut sender = conn.try_clone()?;
        // Not `thread::spawn`, which panics: the participant is turned away instead.
        thread::Builder::new().spawn(move || {
            // Dropped when this thread ends, which is what `done` waits for.
            let _ended: mpsc::Sender<()> = ended;
            for msg in lines {
                // The peer is gone or was hung up on: the next line for it finds the queue closed.
                if sender.send(&msg).is_err() {
                    return;
                }
            }
            // Closed: the last line (`C`, or why a join was refused) is out, so hang up, which
            // ends the participant's reader too.
            let _ = sender.shutdown(Shutdown::Both);
        })?;
        Ok(Link::Stream(Writer {
            queue: Some(queue),
            conn,
            done,
        }))
    }

    /// Queues `msg` for the participant without waiting.
    ///
    /// # Errors
    ///
    /// [`Unreachable`] if its queue is full or its connection ended: the caller drops it.
    pub(crate) fn send(&mut self, msg: &Msg) -> Result<(), Unreachable> {
        match self {
            Link::Stream(writer) => match &writer.queue {
                Some(queue) => queue.try_send(Arc::clone(msg)).map_err(|_| Unreachable),
                None => Err(Unreachable),
            },
            // Never waits for the peer: a full queue is `WouldBlock` at once.
            Link::Datagram(socket, to) => socket
                .try_send_to_within(msg, to, SEND_ROOM_WAIT)
                .map_err(|_| Unreachable),
        }
    }

    /// Lets a stream participant's writer send what is queued, hang up and end; later sends
    /// fail.
    pub(crate) fn close(&mut self) {
        if let Link::Stream(writer) = self {
            writer.queue = None;
        }
    }

    /// Waits until `deadline` at most for the writer to finish, for closing the room.
    pub(crate) fn wait_written(&self, deadline: Instant) {
        if let Link::Stream(writer) = self {
            let left = deadline.saturating_duration_since(Instant::now());
            // Only `Disconnected` (the writer ended) or `Timeout` can come.
            let _: Result<(), RecvTimeoutError> = writer.done.recv_timeout(left);
        }
    }

    /// Ends a dropped participant's connection, which also ends its reader and writer threads.
    pub(crate) fn hang_up(&self) {
        if let Link::Stream(writer) = self {
            let _ = writer.conn.shutdown(Shutdown::Both);
        }
    }
}
