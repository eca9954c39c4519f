//! [`Readiness`]: the tokio registration that says when a blocking message socket can be called,
//! for the async types that make the blocking type's own calls ([`AsyncDatagram`] and
//! [`AsyncSeqpacket`]), and the one wait-and-try loop they share.
//!
//! [`AsyncDatagram`]: super::AsyncDatagram
//! [`AsyncSeqpacket`]: super::AsyncSeqpacket

use std::io;
use std::os::fd::OwnedFd;

use ::tokio::io::{Interest, Ready};
use ::tokio::net::{UdpSocket, UnixDatagram, UnixStream};

use crate::error::{Error, Result};

/// A second descriptor of a blocking socket, put into non-blocking mode (for both: they share
/// one open file) and registered with tokio as the tokio type of its family.
#[derive(Debug)]
pub(super) enum Readiness {
    Udp(UdpSocket),
    Unixgram(UnixDatagram),
    /// tokio has no SEQPACKET type; it asks a Unix stream nothing of its socket type, so one
    /// serves for readiness.
    Seqpacket(UnixStream),
}

impl Readiness {
    /// Registers a duplicate of a UDP socket's descriptor `fd`.
    pub(super) fn udp(fd: OwnedFd) -> io::Result<Readiness> {
        super::in_runtime()?;
        let std = std::net::UdpSocket::from(fd);
        std.set_nonblocking(true)?;
        Ok(Readiness::Udp(UdpSocket::from_std(std)?))
    }

    /// Registers a duplicate of a Unix datagram socket's descriptor `fd`.
    pub(super) fn unixgram(fd: OwnedFd) -> io::Result<Readiness> {
        super::in_runtime()?;
        let std = std::os::unix::net::UnixDatagram::from(fd);
        std.set_nonblocking(true)?;
        Ok(Readiness::Unixgram(UnixDatagram::from_std(std)?))
    }

    /// Registers a duplicate of a connected SEQPACKET socket's descriptor `fd`.
    pub(super) fn seqpacket(fd: OwnedFd) -> io::Result<Readiness> {
        super::in_runtime()?;
        let std = std::os::unix::net::UnixStream::from(fd);
        std.set_nonblocking(true)?;
        Ok(Readiness::Seqpacket(UnixStream::from_std(std)?))
    }

    /// Waits until tokio reports the socket ready for `interest`, and says for what.
    pub(super) async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        match self {
            Readiness::Udp(s) => s.ready(interest).await,
            Readiness::Unixgram(s) => s.ready(interest).await,
            Readiness::Seqpacket(s) => s.ready(interest).await,
        }
    }

    /// Runs `f`; a `WouldBlock` from it clears the readiness, so the next wait is for news.
    pub(super) fn try_io<T>(
        &self,
        interest: Interest,
        f: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        match self {
            Readiness::Udp(s) => s.try_io(interest, f),
            Readiness::Unixgram(s) => s.try_io(interest, f),
            Readiness::Seqpacket(s) => s.try_io(interest, f),
        }
    }

    /// Waits until the socket is ready for `interest`, then runs `op` (one non-blocking call of
    /// the blocking socket) once; again while it would block. `op` sends or takes a message
    /// whole or not at all, so dropping the future loses nothing: cancel-safe.
    ///
    /// A receive also wakes for a pending socket error (`SO_ERROR`), which `op` then returns: a
    /// connected UDP socket that an ICMP port-unreachable reached has the error and nothing to
    /// read, and a wait for `READABLE` alone would never end (tokio's own `UdpSocket::recv` did
    /// the same before 1.51.1).
    pub(super) async fn io<T>(
        &self,
        interest: Interest,
        mut op: impl FnMut() -> Result<T>,
    ) -> Result<T> {
        let wait = if interest.is_readable() {
            interest | Interest::ERROR
        } else {
            interest
        };
        loop {
            let ready = self.ready(wait).await?;
            // tokio's `try_io` takes one interest: the one that woke this wait, so that a
            // `WouldBlock` clears it and the next wait is for news, never a spin.
            let woke = if ready.is_error() && !(ready.is_readable() || ready.is_read_closed()) {
                Interest::ERROR
            } else {
                interest
            };
            match self.try_io(woke, || attempt(op())) {
                Ok(result) => return result,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// One non-blocking attempt for tokio's `try_io`: `WouldBlock` clears the readiness and waits
/// again; anything else, success or error, is the answer.
fn attempt<T>(result: Result<T>) -> io::Result<Result<T>> {
    match result {
        Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Err(e),
        other => Ok(other),
    }
}
