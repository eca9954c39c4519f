//! The traffic patterns, each with the parent's driving side and the child's serving side:
//!
//! - round trip: ping-pong, one message out and its echo back, timed one by one;
//! - stream: one-way streaming, then an end marker the child acknowledges;
//! - echo stream: the parent streams while the child replies to every message, as a relay or a
//!   pipelining client does. The parent sends from a second thread on a second handle of the
//!   connection ([`Peer::try_clone`], `Channel::try_clone` for msgsock) while its main thread
//!   reads every reply: one thread per direction is what a blocking relay runs, and it never
//!   deadlocks, whatever the message size, as a single thread with a window of messages in
//!   flight would once the window outgrew the socket buffers. Both of the parent's threads share
//!   its core, for every implementation alike.
//!
//! An empty message ends every case. The async implementations run the same patterns as async
//! code (`async_patterns.rs`, feature `tokio`), sharing the helpers here.

use std::io;
use std::thread;
use std::time::{Duration, Instant};

use crate::cpu::cpu_time;
use crate::impls::Peer;
use crate::KIB;

/// Bytes per `send_batch` call in the batch cases (at most 1024 messages).
pub(crate) const BATCH_BYTES: usize = 256 << 10;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Pattern {
    RoundTrip,
    Stream,
    EchoStream,
}

impl Pattern {
    /// Every pattern, in table order.
    pub(crate) const ALL: [Pattern; 3] = [Pattern::RoundTrip, Pattern::Stream, Pattern::EchoStream];

    /// The pattern's word in case names (for filters) and on the child's command line.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Pattern::RoundTrip => "rt",
            Pattern::Stream => "stream",
            Pattern::EchoStream => "echo",
        }
    }

    /// The pattern's name in the table.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Pattern::RoundTrip => "round trip",
            Pattern::Stream => "stream",
            Pattern::EchoStream => "echo stream",
        }
    }

    pub(crate) fn parse(word: &str) -> Option<Pattern> {
        Pattern::ALL.into_iter().find(|p| p.word() == word)
    }

    /// The parent's side of a case.
    pub(crate) fn drive(
        self,
        mut peer: Box<dyn Peer>,
        size: usize,
        batch: bool,
        cfg: &Config,
    ) -> io::Result<Sample> {
        match self {
            Pattern::RoundTrip => round_trips(&mut *peer, size, cfg),
            Pattern::Stream => stream(&mut *peer, size, batch, cfg),
            Pattern::EchoStream => echo_stream(peer, size, cfg),
        }
    }

    /// The child's side of a case: receives until the end marker, echoing unless streamed to,
    /// and returns how many messages came.
    pub(crate) fn serve(self, peer: &mut dyn Peer, size: usize) -> io::Result<u64> {
        let mut buf = Vec::with_capacity(size);
        let mut ops = 0;
        while let Some(n) = peer.recv(&mut buf)?.filter(|&n| n > 0) {
            if self != Pattern::Stream {
                peer.send(&buf[..n])?;
            }
            ops += 1;
        }
        match self {
            Pattern::RoundTrip => {}
            Pattern::Stream => peer.send(b"k")?,
            // The end marker's echo tells the parent's reader that every reply is in.
            Pattern::EchoStream => peer.send(&[])?,
        }
        Ok(ops)
    }
}

/// How long each case runs.
pub(crate) struct Config {
    pub(crate) reps: usize,
    /// Measured time per case and repetition.
    pub(crate) time: Duration,
    /// Unmeasured traffic before it.
    pub(crate) warmup: Duration,
}

/// One measurement of one case.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    /// Round trips only.
    pub(crate) median: Duration,
    pub(crate) p99: Duration,
    pub(crate) msgs_per_s: f64,
    pub(crate) bytes_per_s: f64,
    /// CPU time of both processes per message or round trip.
    pub(crate) cpu_per_op: Duration,
}

/// The bench's message of `size` bytes.
pub(crate) fn message(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// An error unless `buf` holds `msg` (compared at its middle byte, which costs nothing).
pub(crate) fn check_echo(n: Option<usize>, buf: &[u8], msg: &[u8]) -> io::Result<()> {
    let size = msg.len();
    if n != Some(size) || buf[size / 2] != msg[size / 2] {
        return Err(io::Error::other(format!("bad echo: {n:?}")));
    }
    Ok(())
}

/// How many sends (or receives) of `bytes` each go between two clock reads: small ones cost
/// little more than the clock read.
pub(crate) fn per_clock_read(bytes: usize) -> usize {
    (64 * KIB / bytes.max(1)).clamp(1, 64)
}

/// Ping-pong for `cfg.time`: one message out, the echo back, timed one by one.
fn round_trips(peer: &mut dyn Peer, size: usize, cfg: &Config) -> io::Result<Sample> {
    let msg = message(size);
    let mut buf = Vec::with_capacity(size);
    let mut one = |peer: &mut dyn Peer| -> io::Result<()> {
        peer.send(&msg)?;
        let n = peer.recv(&mut buf)?;
        check_echo(n, &buf, &msg)
    };
    let warm = Instant::now();
    while warm.elapsed() < cfg.warmup {
        one(peer)?;
    }
    // Enough room that pushing never reallocates inside the timed loop.
    let mut times: Vec<Duration> = Vec::with_capacity(1 << 20);
    let cpu0 = cpu_time()?;
    let start = Instant::now();
    while start.elapsed() < cfg.time || times.len() < 3 {
        let t = Instant::now();
        one(peer)?;
        times.push(t.elapsed());
    }
    let elapsed = start.elapsed();
    let cpu = cpu_time()? - cpu0;
    peer.send(&[])?;
    Ok(latencies(times, size, elapsed, cpu))
}

/// A sample of the round trips timed one by one in `times`, of `size` bytes each, made in
/// `elapsed`, the parent's CPU time being `cpu`.
pub(crate) fn latencies(
    mut times: Vec<Duration>,
    size: usize,
    elapsed: Duration,
    cpu: Duration,
) -> Sample {
    times.sort_unstable();
    let n = times.len();
    Sample {
        median: times[n / 2],
        p99: times[(n * 99 / 100).min(n - 1)],
        msgs_per_s: n as f64 / elapsed.as_secs_f64(),
        bytes_per_s: (n * size) as f64 / elapsed.as_secs_f64(),
        cpu_per_op: cpu / n as u32,
    }
}

/// Sends `msgs` for `time`, with one `send_batch` when there are several, and returns how many
/// messages went.
fn send_for(peer: &mut dyn Peer, msgs: &[&[u8]], time: Duration) -> io::Result<usize> {
    let calls_per_check = per_clock_read(msgs.iter().map(|m| m.len()).sum());
    let start = Instant::now();
    let mut sent = 0;
    while start.elapsed() < time {
        for _ in 0..calls_per_check {
            match msgs {
                [msg] => peer.send(msg)?,
                _ => peer.send_batch(msgs)?,
            }
            sent += msgs.len();
        }
    }
    Ok(sent)
}

/// A sample of `msgs` messages of `size` bytes moved in `elapsed`, the parent's CPU time
/// being `cpu`; no per-message latency.
pub(crate) fn throughput(msgs: usize, size: usize, elapsed: Duration, cpu: Duration) -> Sample {
    Sample {
        median: Duration::ZERO,
        p99: Duration::ZERO,
        msgs_per_s: msgs as f64 / elapsed.as_secs_f64(),
        bytes_per_s: (msgs * size) as f64 / elapsed.as_secs_f64(),
        cpu_per_op: cpu / msgs.max(1) as u32,
    }
}

/// One-way streaming for `cfg.time`, then the end marker and the child's acknowledgement, which
/// closes the timed window only once everything sent has been read.
fn stream(peer: &mut dyn Peer, size: usize, batch: bool, cfg: &Config) -> io::Result<Sample> {
    let msg = message(size);
    let per_call = if batch {
        (BATCH_BYTES / size).clamp(1, 1024)
    } else {
        1
    };
    let msgs: Vec<&[u8]> = vec![&msg; per_call];
    send_for(peer, &msgs, cfg.warmup)?;
    let cpu0 = cpu_time()?;
    let start = Instant::now();
    let sent = send_for(peer, &msgs, cfg.time)?;
    peer.send(&[])?;
    let mut ack = Vec::new();
    if peer.recv(&mut ack)? != Some(1) {
        return Err(io::Error::other("no acknowledgement"));
    }
    Ok(throughput(sent, size, start.elapsed(), cpu_time()? - cpu0))
}

/// Echo streaming: a writer thread sends for `cfg.warmup + cfg.time` on a second handle, then
/// the end marker, while this thread reads and checks every reply. The timed window opens at the
/// first reply after the warm-up and closes at the end marker's echo, once every reply is in.
/// The CPU time is the whole process's, both threads.
fn echo_stream(mut peer: Box<dyn Peer>, size: usize, cfg: &Config) -> io::Result<Sample> {
    let msg = message(size);
    let mut writer = peer.try_clone()?;
    thread::scope(|scope| {
        let sending = scope.spawn(|| -> io::Result<()> {
            send_for(&mut *writer, &[&msg], cfg.warmup + cfg.time)?;
            writer.send(&[])
        });
        let received = read_replies(&mut *peer, &msg, cfg.warmup);
        // Joined first: the writer's error, if any, is why the reader failed.
        sending
            .join()
            .map_err(|_| io::Error::other("the writer thread panicked"))??;
        let (replies, elapsed, cpu) = received?;
        Ok(throughput(replies, size, elapsed, cpu))
    })
}

/// Reads replies to `msg` until the end marker: how many came after `warmup`, in how long, and
/// the process's CPU time meanwhile.
fn read_replies(
    peer: &mut dyn Peer,
    msg: &[u8],
    warmup: Duration,
) -> io::Result<(usize, Duration, Duration)> {
    let mut buf = Vec::with_capacity(msg.len());
    let mut replies = Replies::new(msg.len(), warmup);
    loop {
        let n = peer.recv(&mut buf)?;
        if n == Some(0) {
            break;
        }
        check_echo(n, &buf, msg)?;
        replies.count()?;
    }
    replies.end()
}

/// The echo stream reader's count of replies and its timed window, which opens at the first
/// reply counted after the warm-up.
pub(crate) struct Replies {
    check_every: usize,
    warmup: Duration,
    started: Instant,
    /// Replies before the window, when it opened, and the process's CPU time then.
    window: Option<(usize, Instant, Duration)>,
    replies: usize,
}

impl Replies {
    /// Starts counting replies of `size` bytes, with a warm-up of `warmup`.
    pub(crate) fn new(size: usize, warmup: Duration) -> Replies {
        Replies {
            check_every: per_clock_read(size),
            warmup,
            started: Instant::now(),
            window: None,
            replies: 0,
        }
    }

    /// Counts one checked reply.
    pub(crate) fn count(&mut self) -> io::Result<()> {
        self.replies += 1;
        if self.window.is_none()
            && self.replies.is_multiple_of(self.check_every)
            && self.started.elapsed() >= self.warmup
        {
            self.window = Some((self.replies, Instant::now(), cpu_time()?));
        }
        Ok(())
    }

    /// At the end marker's echo: how many replies came in the window, in how long, and the
    /// process's CPU time meanwhile.
    pub(crate) fn end(self) -> io::Result<(usize, Duration, Duration)> {
        let (before, start, cpu0) = self
            .window
            .ok_or_else(|| io::Error::other("no reply after the warm-up"))?;
        Ok((self.replies - before, start.elapsed(), cpu_time()? - cpu0))
    }
}
