//! The traffic patterns, each with the parent's driving side and the child's serving side:
//!
//! - round trip: ping-pong, one message out and its echo back, timed one by one;
//! - stream: one-way streaming, then an end marker the child acknowledges.
//!
//! An empty message ends every case.

use std::io;
use std::time::{Duration, Instant};

use crate::cpu::cpu_time;
use crate::impls::Peer;
use crate::KIB;

/// Bytes per `send_batch` call in the batch cases (at most 1024 messages).
const BATCH_BYTES: usize = 256 << 10;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Pattern {
    RoundTrip,
    Stream,
}

impl Pattern {
    /// Every pattern, in table order.
    pub(crate) const ALL: [Pattern; 2] = [Pattern::RoundTrip, Pattern::Stream];

    /// The pattern's word in case names (for filters) and on the child's command line.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Pattern::RoundTrip => "rt",
            Pattern::Stream => "stream",
        }
    }

    /// The pattern's name in the table.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Pattern::RoundTrip => "round trip",
            Pattern::Stream => "stream",
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
fn check_echo(n: Option<usize>, buf: &[u8], msg: &[u8]) -> io::Result<()> {
    let size = msg.len();
    if n != Some(size) || buf[size / 2] != msg[size / 2] {
        return Err(io::Error::other(format!("bad echo: {n:?}")));
    }
    Ok(())
}

/// How many sends (or receives) of `bytes` each go between two clock reads: small ones cost
/// little more than the clock read.
fn per_clock_read(bytes: usize) -> usize {
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
    times.sort_unstable();
    let n = times.len();
    Ok(Sample {
        median: times[n / 2],
        p99: times[(n * 99 / 100).min(n - 1)],
        msgs_per_s: n as f64 / elapsed.as_secs_f64(),
        bytes_per_s: (n * size) as f64 / elapsed.as_secs_f64(),
        cpu_per_op: cpu / n as u32,
    })
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
fn throughput(msgs: usize, size: usize, elapsed: Duration, cpu: Duration) -> Sample {
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
