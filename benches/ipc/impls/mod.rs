//! The implementations compared, and the interfaces the patterns drive them through: [`Peer`]
//! for blocking code, `AsyncPeer` for async code (feature `tokio`).
//!
//! Each module is one implementation of whole-message I/O over a connected socket, and offers
//! its entries for a family's list, built by [`stream`] and [`datagram`] below (and
//! `async_stream` with the feature). Adding one is one more module and one more line in those
//! lists, nothing else: the module implements [`Peer`] or `AsyncPeer` and gives its entries
//! their [`Api`], so that its ratios are taken against the baselines of its own kind.
//!
//! A blocking implementation is driven call by call on the calling thread
//! ([`patterns`](crate::patterns)). An async one runs as async code really runs
//! (`async_patterns.rs`): each process owns one tokio runtime, and a pattern runs in it as one
//! task, the echo stream's writer and reader joined on the split halves; the child serves with
//! the implementation's own server loop in its runtime.

mod msgsock;
#[cfg(feature = "tokio")]
mod msgsock_async;
mod std_dgram;
mod std_framed;
mod std_spin;
#[cfg(feature = "tokio")]
mod tokio_codec;

use std::io;
use std::os::fd::OwnedFd;

#[cfg(feature = "tokio")]
use bytes::Bytes;

#[cfg(feature = "tokio")]
use crate::async_patterns::AsyncRun;
use crate::patterns::{Config, Pattern, Sample};
use crate::std_sockets::{StdDatagram, StdStream};
#[cfg(feature = "tokio")]
use crate::tokio_sockets::TokioStream;

/// One implementation of message passing over a family's sockets.
pub(crate) struct Impl {
    pub(crate) name: &'static str,
    pub(crate) role: Role,
    pub(crate) api: Api,
    /// How both processes run it.
    pub(crate) run: Run,
}

/// How an implementation runs a case.
#[derive(Clone, Copy)]
pub(crate) enum Run {
    /// Call by call, through the [`Peer`] it wraps a connected socket in; both processes use
    /// the same wrapper.
    Blocking(Wrap),
    /// In the process's tokio runtime, a case at a time.
    #[cfg(feature = "tokio")]
    Async(AsyncRun),
}

/// Makes a [`Peer`] of a connected socket.
pub(crate) type Wrap = fn(OwnedFd) -> io::Result<Box<dyn Peer>>;

impl Impl {
    /// The parent's side of a case on the connected socket `fd`.
    pub(crate) fn drive(
        &self,
        fd: OwnedFd,
        pattern: Pattern,
        size: usize,
        batch: bool,
        cfg: &Config,
    ) -> io::Result<Sample> {
        match self.run {
            Run::Blocking(wrap) => pattern.drive(wrap(fd)?, size, batch, cfg),
            #[cfg(feature = "tokio")]
            Run::Async(run) => (run.drive)(fd, pattern, size, cfg),
        }
    }

    /// The child's side of a case on the accepted socket `fd`: how many messages came.
    pub(crate) fn serve(&self, fd: OwnedFd, pattern: Pattern, size: usize) -> io::Result<u64> {
        match self.run {
            Run::Blocking(wrap) => pattern.serve(&mut *wrap(fd)?, size),
            #[cfg(feature = "tokio")]
            Run::Async(run) => (run.serve)(fd, pattern),
        }
    }
}

/// What an implementation is measured for, and against.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Role {
    /// msgsock's plain `send`/`recv_into`: every pattern.
    Subject,
    /// msgsock's batched send: streaming of small and middle sizes.
    Batch,
    /// msgsock with busy-polling receives: small round trips.
    Spin,
    /// Hand-written code: everything the subject runs; the best of these is the reference.
    Baseline,
    /// Hand-written code that spins on a non-blocking socket with no budget: the reference for
    /// `Spin`.
    SpinBaseline,
    /// msgsock set not to receive descriptors on both sides (`set_receive_fds(false)`), whose
    /// reads are `recv(2)` as std's are: Unix streams, messages up to 4 KiB.
    NoFds,
    /// msgsock async with `feed`, flushed at the end of each batch: every pattern.
    #[cfg(feature = "tokio")]
    Feed,
    /// msgsock async with a queued sender (one `send` per message, a writer task): every
    /// pattern.
    #[cfg(feature = "tokio")]
    Queued,
}

/// The kind of code an implementation is: ratios compare implementations of one kind only.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Api {
    /// Blocking calls on the calling thread.
    Blocking,
    /// Async code on a tokio runtime; the reference is `tokio codec`.
    #[cfg(feature = "tokio")]
    Async,
}

impl Api {
    /// The kind's word in case names, for filters: `blocking` or `async`.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Api::Blocking => "blocking",
            #[cfg(feature = "tokio")]
            Api::Async => "async",
        }
    }
}

/// Whole-message I/O, as each implementation does it.
///
/// The msgsock entries go through the library's own [`msgsock::Channel`]; this smaller trait is
/// what the hand-written baselines implement too, with std's `io::Error`, so that the reference
/// code passes through no msgsock type.
pub(crate) trait Peer: Send {
    fn send(&mut self, msg: &[u8]) -> io::Result<()>;
    fn send_batch(&mut self, msgs: &[&[u8]]) -> io::Result<()> {
        msgs.iter().try_for_each(|m| self.send(m))
    }
    /// One message into the start of `buf`, returning its length; `None` at a clean close.
    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<usize>>;
    /// A second handle on the same socket, to send on another thread while this one receives.
    /// Made before any traffic: each handle keeps its own receive buffer.
    fn try_clone(&self) -> io::Result<Box<dyn Peer>>;
}

/// The implementations compared on a stream family: `R` is the std socket type, `S` msgsock's;
/// `carries_fds` for a family that passes descriptors, whose connections can be set not to.
pub(crate) fn stream<R, S>(carries_fds: bool) -> Vec<Impl>
where
    R: StdStream,
    S: ::msgsock::Stream + From<R> + 'static,
{
    [
        msgsock::stream::<R, S>(carries_fds),
        std_framed::stream::<R>(),
        std_spin::stream::<R>(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The implementations compared on a datagram family: `R` is the std socket type, `C` msgsock's.
pub(crate) fn datagram<R, C>() -> Vec<Impl>
where
    R: StdDatagram,
    C: ::msgsock::Channel + TryFrom<R> + Send + 'static,
    C::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    [msgsock::datagram::<R, C>(), std_dgram::datagram::<R>()]
        .into_iter()
        .flatten()
        .collect()
}

/// Whole-message I/O on a connection, as each async implementation does it. A pattern runs on
/// one such connection as one task ([`async_patterns`](crate::async_patterns)).
#[cfg(feature = "tokio")]
pub(crate) trait AsyncPeer: Sized {
    /// Wraps a connected socket; called inside the runtime.
    fn wrap(fd: OwnedFd) -> io::Result<Self>;
    /// How many messages of `size` bytes the stream patterns hand to one [`send`](Self::send).
    fn batch(_size: usize) -> usize {
        1
    }
    /// Sends `msgs` and waits until they are written, or, for a queued sender, until they are
    /// queued for its writer task ([`flush`](Self::flush) then waits for the writes).
    async fn send(&mut self, msgs: &[Bytes]) -> io::Result<()>;
    /// One message, borrowed until the next call; `None` at a clean close.
    async fn recv(&mut self) -> io::Result<Option<&[u8]>>;
    /// Sends back the message [`recv`](Self::recv) returned last, as an echo server does; it
    /// may stay queued until the next receive waits, or [`flush`](Self::flush).
    async fn reply(&mut self) -> io::Result<()>;
    /// Writes whatever [`reply`](Self::reply) left queued.
    async fn flush(&mut self) -> io::Result<()>;
    /// The echo stream's parent side: splits the connection, then runs
    /// [`echo_stream`](crate::async_patterns::echo_stream) on the halves.
    async fn echo_stream(self, msg: &Bytes, cfg: &Config) -> io::Result<Sample>;
}

/// The async implementations compared on a stream family whose tokio socket type is `T`;
/// `carries_fds` as for [`stream`].
#[cfg(feature = "tokio")]
pub(crate) fn async_stream<T: TokioStream>(carries_fds: bool) -> Vec<Impl> {
    [
        tokio_codec::stream::<T>(),
        msgsock_async::stream::<T>(carries_fds),
    ]
    .into_iter()
    .flatten()
    .collect()
}
