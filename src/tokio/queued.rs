//! [`QueuedSender`]: sends that queue and return, with a writer task that writes whatever has
//! queued in one system call.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::{fmt, mem};

use ::tokio::sync::Notify;

use super::conn::{frame_rest, keeps_queue_memory, WRITE_THROUGH_LEN};
use super::stream::AsyncStream;
use crate::error::Result;
use crate::frame::Header;
use crate::sys;

/// The sending side of a connection in queued mode, from
/// [`AsyncConnection::into_split_queued`](super::AsyncConnection::into_split_queued).
///
/// [`send`](Self::send) copies the frame into a queue and returns at once while the queue is
/// below the high-water mark; a writer task spawned for the connection writes everything queued
/// in one system call whenever the socket takes it. A task sending many small messages thus gets
/// the rate of batched sends with one `send` per message, as ZeroMQ's sockets do. The price is a
/// hop to the writer task before a message reaches the socket, which a round trip pays in
/// latency: the [plain `send`](super::AsyncConnection::send) writes at once instead. A message
/// of 64 KiB or more fills a write of its own, so it is not copied behind other frames if that
/// can be helped: `send` first waits for one batch the writer task has (if any) to go out, then
/// writes the message at once, as far as the socket takes it without waiting, and queues only
/// the rest.
///
/// Clones share the queue, so several tasks can send; each frame is queued whole, so frames
/// never interleave. `send` is cancel-safe: a dropped `send` queued the whole frame or none of
/// it. When the last clone is dropped the writer task still writes what was queued, then closes
/// its handle of the socket. A write error ends the writer task; later sends return it. So does
/// the shutdown of the runtime the task runs on, which drops it: what was queued and not
/// written is lost, and later sends and flushes return `BrokenPipe`.
#[derive(Clone)]
pub struct QueuedSender {
    owner: Arc<Owner>,
}

/// Marks the queue closed when the last sender goes, so the writer task can finish.
struct Owner {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// The connection's socket, for a long message that finds nothing queued or being
    /// written: it is written at once instead of being copied.
    stream: Arc<dyn AsyncStream>,
    /// Wakes the writer task: frames were queued, or the senders are gone.
    wake_writer: Notify,
    /// Wakes senders and flushers: the writer took or wrote a batch, or failed.
    progress: Notify,
    high_water: usize,
}

#[derive(Default)]
struct State {
    queue: Vec<u8>,
    /// Bytes the writer task took and has not finished writing.
    writing: usize,
    /// Why the writer task ended, if it failed or is gone.
    failed: Option<Failure>,
    closed: bool,
}

/// Why queued frames can no longer be written.
#[derive(Clone, Copy)]
enum Failure {
    /// A write failed, with this kind.
    Write(io::ErrorKind),
    /// The writer task was dropped (its runtime shut down) or has finished.
    WriterGone,
}

impl Failure {
    fn error(self) -> crate::Error {
        match self {
            Failure::Write(kind) => io::Error::from(kind).into(),
            Failure::WriterGone => io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the queued sender's writer task is gone (its tokio runtime shut down)",
            )
            .into(),
        }
    }
}

impl QueuedSender {
    /// Spawns the writer task for `stream` on the current tokio runtime.
    pub(super) fn spawn<S: AsyncStream>(
        stream: Arc<S>,
        queued: Vec<u8>,
        high_water: usize,
    ) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: queued,
                ..State::default()
            }),
            stream: Arc::clone(&stream) as Arc<dyn AsyncStream>,
            wake_writer: Notify::new(),
            progress: Notify::new(),
            high_water,
        });
        let gone = WriterGone(Arc::clone(&shared));
        ::tokio::spawn(write_queued(stream, Arc::clone(&shared), gone));
        shared.wake_writer.notify_one();
        QueuedSender {
            owner: Arc::new(Owner { shared }),
        }
    }

    /// Queues one message; waits only while the queue is above the high-water mark (a message
    /// is always taken into an empty queue, however long), and a message of 64 KiB or more for
    /// one batch of the writer task's, as the [type](Self) says. Cancel-safe.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) with the kind of the write error that stopped the writer
    /// task, `BrokenPipe` once the task is gone with its runtime, or the error of writing this
    /// long message at once (nothing of it was sent).
    pub async fn send(&self, msg: &[u8]) -> Result<()> {
        let shared = &self.owner.shared;
        let long = msg.len() >= WRITE_THROUGH_LEN;
        // A long message waits for one batch to go out rather than be copied behind it, once:
        // a sender that others keep busy still gets queued after that.
        let mut may_wait = long;
        loop {
            let progress = pin!(shared.progress.notified());
            let mut progress = progress;
            progress.as_mut().enable();
            {
                let mut state = shared.lock();
                if let Some(failure) = state.failed {
                    return Err(failure.error());
                }
                let held = state.queue.len() + state.writing;
                let wait_for_writer = held > 0 && mem::take(&mut may_wait);
                if !wait_for_writer && (held == 0 || held <= shared.high_water) {
                    // Under the lock: the whole frame is queued, or (cancelled at the await
                    // below) none of it.
                    let header = Header::new(msg.len() as u64);
                    let mut written = 0;
                    if held == 0 && long {
                        // Nothing is queued or being written, so nothing can come between:
                        // what the socket takes now is not copied.
                        let bufs = [IoSlice::new(&header), IoSlice::new(msg)];
                        match sys::retry_io(|| shared.stream.try_write_vectored(&bufs)) {
                            Ok(n) => written = n,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                    let [a, b] = frame_rest(&header, msg, written);
                    if a.is_empty() && b.is_empty() {
                        return Ok(());
                    }
                    state.queue.extend_from_slice(a);
                    state.queue.extend_from_slice(b);
                    drop(state);
                    shared.wake_writer.notify_one();
                    return Ok(());
                }
            }
            progress.await;
        }
    }

    /// Waits until everything queued so far has been written to the socket. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub async fn flush(&self) -> Result<()> {
        let shared = &self.owner.shared;
        loop {
            let progress = pin!(shared.progress.notified());
            let mut progress = progress;
            progress.as_mut().enable();
            {
                let state = shared.lock();
                if let Some(failure) = state.failed {
                    return Err(failure.error());
                }
                if state.queue.is_empty() && state.writing == 0 {
                    return Ok(());
                }
            }
            progress.await;
        }
    }

    /// Bytes queued or being written.
    pub fn queued_len(&self) -> usize {
        let state = self.owner.shared.lock();
        state.queue.len() + state.writing
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock, but a poisoned queue is still a queue.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake_writer.notify_one();
    }
}

/// Marks the queue failed when the writer task ends, however it ends: a task that its
/// runtime's shutdown drops, polled or not, leaves its senders an error instead of a queue that
/// nobody writes and a flush that never returns. An argument of the task, so that it is dropped
/// with the task even before its first poll.
struct WriterGone(Arc<Shared>);

impl Drop for WriterGone {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.failed.get_or_insert(Failure::WriterGone);
        state.queue = Vec::new();
        state.writing = 0;
        drop(state);
        self.0.progress.notify_waiters();
    }
}

/// The writer task: takes the whole queue, writes it, repeats; ends once the senders are gone
/// and the queue is written, or at the first write error. `_gone` reports its end.
async fn write_queued<S: AsyncStream>(stream: Arc<S>, shared: Arc<Shared>, _gone: WriterGone) {
    let mut batch = Vec::new();
    loop {
        let wake = pin!(shared.wake_writer.notified());
        {
            let mut state = shared.lock();
            state.writing = 0;
            if state.queue.is_empty() {
                if state.closed {
                    shared.progress.notify_waiters();
                    return;
                }
            } else {
                // The senders go on filling a fresh queue while this batch is written.
                mem::swap(&mut batch, &mut state.queue);
                state.writing = batch.len();
            }
        }
        shared.progress.notify_waiters();
        if batch.is_empty() {
            wake.await;
            continue;
        }
        if let Err(e) = write_all(&*stream, &batch).await {
            let mut state = shared.lock();
            state.failed = Some(Failure::Write(e.kind()));
            state.queue = Vec::new();
            state.writing = 0;
            drop(state);
            shared.progress.notify_waiters();
            return;
        }
        if !keeps_queue_memory(batch.capacity(), shared.high_water) {
            batch = Vec::new();
        } else {
            batch.clear();
        }
    }
}

async fn write_all<S: AsyncStream>(stream: &S, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = poll_fn(|cx| loop {
            match stream.poll_write_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
            match sys::retry_io(|| stream.try_write_vectored(&[IoSlice::new(buf)])) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        })
        .await?;
        buf = &buf[n..];
    }
    Ok(())
}

impl fmt::Debug for QueuedSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueuedSender")
            .field("queued", &self.queued_len())
            .field("high_water", &self.owner.shared.high_water)
            .finish()
    }
}
