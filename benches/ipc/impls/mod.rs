//! The implementations compared, and [`Peer`], the one interface the patterns drive them through.
//!
//! Each module is one implementation of whole-message I/O over a connected socket, and offers
//! its entries for a family's list, built by [`stream`] and [`datagram`] below. Adding one, such
//! as tokio-util's `LengthDelimitedCodec` under `Framed` or a msgsock async connection, is one
//! more module and one more line in those lists, nothing else: the module implements [`Peer`]
//! (an async one by owning a current-thread runtime and blocking on each call, so the patterns,
//! the child and the report stay as they are) and gives its entries their [`Api`], so that its
//! ratios are taken against the baselines of its own kind.

mod msgsock;
mod std_dgram;
mod std_framed;
mod std_spin;

use std::io;
use std::os::fd::OwnedFd;

use crate::std_sockets::{StdDatagram, StdStream};

/// One implementation of message passing over a family's sockets.
pub(crate) struct Impl {
    pub(crate) name: &'static str,
    pub(crate) role: Role,
    pub(crate) api: Api,
    /// Wraps a connected socket; both processes use the same wrapper.
    pub(crate) wrap: Wrap,
}

/// Makes a [`Peer`] of a connected socket.
pub(crate) type Wrap = fn(OwnedFd) -> io::Result<Box<dyn Peer>>;

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
}

/// The kind of code an implementation is: ratios compare implementations of one kind only.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Api {
    /// Blocking calls on the calling thread.
    Blocking,
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

/// The implementations compared on a stream family: `R` is the std socket type, `S` msgsock's.
pub(crate) fn stream<R, S>() -> Vec<Impl>
where
    R: StdStream,
    S: ::msgsock::Stream + From<R> + 'static,
{
    [
        msgsock::stream::<R, S>(),
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
