//! The patterns of [`patterns`](crate::patterns), driven as async code runs (feature `tokio`):
//! the same traffic, sizes, end markers, checks and timed windows, on an [`AsyncPeer`] in this
//! process's tokio runtime ([`tokio_sockets`](crate::tokio_sockets)).
//!
//! A case is one task: the pattern is one future, run to its end by one `block_on`. The echo
//! stream's writer and reader are two futures on the split halves of the connection, joined, as
//! a relay or a pipelining client on tokio runs them; the child serves with the
//! implementation's own server loop ([`serve`]) in its own runtime.

use std::io;
use std::os::fd::OwnedFd;
use std::slice;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::cpu::cpu_time;
use crate::impls::AsyncPeer;
use crate::patterns::{
    check_echo, latencies, message, per_clock_read, throughput, Config, Pattern, Replies, Sample,
};
use crate::tokio_sockets::run_case;

/// An async implementation's two sides of a case, each a whole case in the process's runtime.
#[derive(Clone, Copy)]
pub(crate) struct AsyncRun {
    pub(crate) drive: fn(OwnedFd, Pattern, usize, &Config) -> io::Result<Sample>,
    pub(crate) serve: fn(OwnedFd, Pattern) -> io::Result<u64>,
}

/// How the bench runs the async implementation `P`.
pub(crate) fn run<P: AsyncPeer>() -> AsyncRun {
    AsyncRun {
        drive: |fd, pattern, size, cfg| run_case(drive::<P>(fd, pattern, size, cfg)),
        serve: |fd, pattern| run_case(serve::<P>(fd, pattern)),
    }
}

/// The parent's side of a case.
async fn drive<P: AsyncPeer>(
    fd: OwnedFd,
    pattern: Pattern,
    size: usize,
    cfg: &Config,
) -> io::Result<Sample> {
    let mut peer = P::wrap(fd)?;
    let msg = Bytes::from(message(size));
    let sample = match pattern {
        Pattern::RoundTrip => round_trips(&mut peer, &msg, cfg).await?,
        Pattern::Stream => stream(&mut peer, &msg, cfg).await?,
        Pattern::EchoStream => return peer.echo_stream(&msg, cfg).await,
    };
    // The end marker may only be queued (a queued sender): out before the runtime stops.
    peer.flush().await?;
    Ok(sample)
}

/// The child's side of a case: receives until the end marker, replying unless streamed to,
/// and returns how many messages came.
async fn serve<P: AsyncPeer>(fd: OwnedFd, pattern: Pattern) -> io::Result<u64> {
    let mut peer = P::wrap(fd)?;
    let mut ops = 0;
    while peer.recv().await?.is_some_and(|m| !m.is_empty()) {
        if pattern != Pattern::Stream {
            peer.reply().await?;
        }
        ops += 1;
    }
    match pattern {
        Pattern::RoundTrip => {}
        Pattern::Stream => peer.send(&[Bytes::from_static(b"k")]).await?,
        // The end marker's echo tells the parent's reader that every reply is in.
        Pattern::EchoStream => peer.send(&[Bytes::new()]).await?,
    }
    peer.flush().await?;
    Ok(ops)
}

/// An error unless `got` is `msg`.
fn check(got: Option<&[u8]>, msg: &[u8]) -> io::Result<()> {
    check_echo(got.map(<[u8]>::len), got.unwrap_or_default(), msg)
}

/// For an echo stream's reader: `false` at the end marker's echo, `true` for an echo of `msg`,
/// an error for anything else.
pub(crate) fn echoed(got: Option<&[u8]>, msg: &[u8]) -> io::Result<bool> {
    if got.is_some_and(<[u8]>::is_empty) {
        return Ok(false);
    }
    check(got, msg)?;
    Ok(true)
}

async fn round_trip<P: AsyncPeer>(peer: &mut P, msg: &Bytes) -> io::Result<()> {
    peer.send(slice::from_ref(msg)).await?;
    check(peer.recv().await?, msg)
}

/// Ping-pong for `cfg.time`, as the blocking [`round_trips`](crate::patterns) times it.
async fn round_trips<P: AsyncPeer>(peer: &mut P, msg: &Bytes, cfg: &Config) -> io::Result<Sample> {
    let warm = Instant::now();
    while warm.elapsed() < cfg.warmup {
        round_trip(peer, msg).await?;
    }
    // Enough room that pushing never reallocates inside the timed loop.
    let mut times: Vec<Duration> = Vec::with_capacity(1 << 20);
    let cpu0 = cpu_time()?;
    let start = Instant::now();
    while start.elapsed() < cfg.time || times.len() < 3 {
        let t = Instant::now();
        round_trip(peer, msg).await?;
        times.push(t.elapsed());
    }
    let elapsed = start.elapsed();
    let cpu = cpu_time()? - cpu0;
    peer.send(&[Bytes::new()]).await?;
    Ok(latencies(times, msg.len(), elapsed, cpu))
}

/// Hands `msgs` to `send` for `time`, and returns how many messages went.
async fn send_for(
    send: &mut impl AsyncFnMut(&[Bytes]) -> io::Result<()>,
    msgs: &[Bytes],
    time: Duration,
) -> io::Result<usize> {
    let calls_per_check = per_clock_read(msgs.iter().map(Bytes::len).sum());
    let start = Instant::now();
    let mut sent = 0;
    while start.elapsed() < time {
        for _ in 0..calls_per_check {
            send(msgs).await?;
            sent += msgs.len();
        }
    }
    Ok(sent)
}

/// One-way streaming for `cfg.time`, then the end marker and the child's acknowledgement,
/// which closes the timed window only once everything sent has been read.
async fn stream<P: AsyncPeer>(peer: &mut P, msg: &Bytes, cfg: &Config) -> io::Result<Sample> {
    let msgs = vec![msg.clone(); P::batch(msg.len())];
    let mut send = async |msgs: &[Bytes]| peer.send(msgs).await;
    send_for(&mut send, &msgs, cfg.warmup).await?;
    let cpu0 = cpu_time()?;
    let start = Instant::now();
    let sent = send_for(&mut send, &msgs, cfg.time).await?;
    peer.send(&[Bytes::new()]).await?;
    if peer.recv().await?.map(<[u8]>::len) != Some(1) {
        return Err(io::Error::other("no acknowledgement"));
    }
    Ok(throughput(
        sent,
        msg.len(),
        start.elapsed(),
        cpu_time()? - cpu0,
    ))
}

/// Echo streaming on a split connection: the writer hands batches of `batch` copies of `msg`
/// to `send` for `cfg.warmup + cfg.time`, then the end marker, while the reader calls
/// `recv_echo` (see [`echoed`]) until the end marker's echo. The timed window is the blocking
/// echo stream's; the CPU time is the whole process's.
pub(crate) async fn echo_stream(
    mut send: impl AsyncFnMut(&[Bytes]) -> io::Result<()>,
    mut recv_echo: impl AsyncFnMut() -> io::Result<bool>,
    msg: &Bytes,
    batch: usize,
    cfg: &Config,
) -> io::Result<Sample> {
    let msgs = vec![msg.clone(); batch];
    let writer = async {
        send_for(&mut send, &msgs, cfg.warmup + cfg.time).await?;
        send(&[Bytes::new()]).await
    };
    let reader = async {
        let mut replies = Replies::new(msg.len(), cfg.warmup);
        while recv_echo().await? {
            replies.count()?;
        }
        replies.end()
    };
    // Either side's error ends the case at once: the other would wait for the child forever.
    let ((), (replies, elapsed, cpu)) = tokio::try_join!(writer, reader)?;
    Ok(throughput(replies, msg.len(), elapsed, cpu))
}
