//! The datagram message layer UDP and Unix datagram sockets share: one message is exactly one
//! datagram, with no framing bytes, so a plain socket in any language can talk to these sockets.
//!
//! [`Datagram`] holds a socket and its limits and does every send and receive: the size check
//! before any system call, `EMSGSIZE` as [`Error::MessageTooLarge`], `EINTR` retried, and
//! receives whose memory follows the datagram with truncation detected (`MSG_TRUNC`).
//! [`UdpSocket`](crate::UdpSocket) and [`UnixDatagram`](crate::UnixDatagram) are thin
//! std-shaped types over it that add their addresses.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::proto::check_fds;
use crate::sys::{self, Destination, SenderAddr, UnixAddr};

/// A datagram socket `S` with its send and receive limits.
#[derive(Debug)]
pub(crate) struct Datagram<S> {
    socket: S,
    max_len: usize,
    send_limit: usize,
    room: Room,
}

impl<S: AsFd> Datagram<S> {
    /// `socket`, sending at most `send_limit` bytes a datagram, receiving as much by default,
    /// within `room`.
    pub(crate) fn new(socket: S, send_limit: usize, room: Room) -> Datagram<S> {
        Datagram {
            socket,
            max_len: send_limit,
            send_limit,
            room,
        }
    }

    /// Another handle of the same socket (`dup(2)`, close-on-exec, as std's `try_clone`), with
    /// the same limits.
    pub(crate) fn try_clone(&self) -> io::Result<Datagram<S>>
    where
        S: From<OwnedFd>,
    {
        Ok(Datagram {
            socket: S::from(self.socket.as_fd().try_clone_to_owned()?),
            max_len: self.max_len,
            send_limit: self.send_limit,
            room: self.room,
        })
    }

    pub(crate) fn socket(&self) -> &S {
        &self.socket
    }

    pub(crate) fn into_socket(self) -> S {
        self.socket
    }

    pub(crate) fn send_limit(&self) -> usize {
        self.send_limit
    }

    pub(crate) fn max_message_len(&self) -> usize {
        self.max_len
    }

    pub(crate) fn set_max_message_len(&mut self, max: usize) {
        self.max_len = max;
    }

    /// [`Error::MessageTooLarge`] if `len` bytes do not fit in one datagram of this socket.
    pub(crate) fn check_send(&self, len: usize) -> Result<()> {
        check_send(len, self.send_limit)
    }

    /// Sends `msg` as one datagram to the connected peer (`send(2)`).
    pub(crate) fn send(&self, msg: &[u8]) -> Result<()> {
        let fd = self.socket.as_fd();
        send_with(msg, self.send_limit, |m| sys::send(fd, m))
    }

    /// Sends `msg` as one datagram with `send_to`, the family's `sendto(2)`.
    pub(crate) fn send_to_with(
        &self,
        msg: &[u8],
        send_to: impl FnMut(&[u8]) -> io::Result<usize>,
    ) -> Result<()> {
        send_with(msg, self.send_limit, send_to)
    }

    /// Sends `msg` to `addr` without waiting for room, or after at most `wait` for this
    /// socket's own send buffer: see [`try_send_to`].
    pub(crate) fn try_send_to(
        &self,
        msg: &[u8],
        addr: Destination<'_>,
        wait: Option<Duration>,
    ) -> Result<()> {
        let fd = self.socket.as_fd();
        try_send_to(fd, msg, self.send_limit, wait, |m| {
            sys::send_to_nowait(fd, m, addr)
        })
    }

    /// Sends `msg` with `fds` attached (`SCM_RIGHTS`) as one datagram: to the Unix socket
    /// `addr`, or to the connected peer if `None`. With `nowait` it never waits for room, or at
    /// most `wait` for this socket's own send buffer, as [`try_send_to`](Self::try_send_to).
    pub(crate) fn send_with_fds(
        &self,
        msg: &[u8],
        fds: &[BorrowedFd<'_>],
        addr: Option<&UnixAddr>,
        nowait: Option<Option<Duration>>,
    ) -> Result<()> {
        check_fds(fds.len())?;
        let fd = self.socket.as_fd();
        let send =
            |m: &[u8]| sys::send_with_fds(fd, &[IoSlice::new(m)], fds, addr, nowait.is_some());
        match nowait {
            Some(wait) => try_send_to(fd, msg, self.send_limit, wait, send),
            None => send_with(msg, self.send_limit, send),
        }
    }

    /// Receives one datagram into `buf`, replacing its contents; returns its length.
    pub(crate) fn recv_into(&self, buf: &mut Vec<u8>) -> Result<usize> {
        recv::<()>(
            self.socket.as_fd(),
            buf,
            self.max_len,
            false,
            self.room,
            None,
            false,
        )
        .map(|(n, _, _)| n)
    }

    /// Receives one packet of a connected `SOCK_SEQPACKET` socket that has `SO_TIMESTAMP` set
    /// into `buf`, replacing its contents; returns its length, or `None` at end of file. Both
    /// are 0 bytes, but a packet, even an empty one, brings its timestamp and end of file
    /// brings nothing.
    pub(crate) fn recv_packet_into(&self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        let fd = self.socket.as_fd();
        let (len, _, stamped) = recv::<()>(fd, buf, self.max_len, false, self.room, None, true)?;
        Ok((len > 0 || stamped).then_some(len))
    }

    /// As [`recv_packet_into`](Self::recv_packet_into), with the descriptors sent with the packet
    /// into `fds`, replacing its contents.
    pub(crate) fn recv_packet_with_fds(
        &self,
        buf: &mut Vec<u8>,
        fds: &mut Vec<OwnedFd>,
    ) -> Result<Option<usize>> {
        fds.clear();
        let fd = self.socket.as_fd();
        let (len, _, stamped) =
            recv::<()>(fd, buf, self.max_len, false, self.room, Some(fds), true)?;
        Ok((len > 0 || stamped).then_some(len))
    }

    /// Receives one datagram into `buf` and the descriptors sent with it into `fds`, replacing
    /// the contents of both; returns its length and, with `with_sender`, the sender.
    pub(crate) fn recv_with_fds<A: SenderAddr>(
        &self,
        buf: &mut Vec<u8>,
        fds: &mut Vec<OwnedFd>,
        with_sender: bool,
    ) -> Result<(usize, Option<A>)> {
        fds.clear();
        let fd = self.socket.as_fd();
        recv::<A>(
            fd,
            buf,
            self.max_len,
            with_sender,
            self.room,
            Some(fds),
            false,
        )
        .map(|(n, from, _)| (n, from))
    }

    /// Receives one datagram into a new `Vec`.
    pub(crate) fn recv(&self) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.recv_into(&mut buf)?;
        Ok(buf)
    }

    /// Receives one datagram into `buf`, replacing its contents; returns its length and the
    /// sender's address as the kernel gave it.
    pub(crate) fn recv_from<A: SenderAddr>(&self, buf: &mut Vec<u8>) -> Result<(usize, Option<A>)> {
        recv::<A>(
            self.socket.as_fd(),
            buf,
            self.max_len,
            true,
            self.room,
            None,
            false,
        )
        .map(|(n, from, _)| (n, from))
    }
}

/// Refuses a message that one datagram cannot carry, before any system call.
fn check_send(len: usize, max: usize) -> Result<()> {
    if len > max {
        return Err(Error::MessageTooLarge {
            len: len as u64,
            max: max as u64,
        });
    }
    Ok(())
}

/// Maps the kernel's `EMSGSIZE` to [`Error::MessageTooLarge`], for limits it knows better.
fn send_error(e: io::Error, len: usize, max: usize) -> Error {
    if sys::is_message_too_long(&e) {
        Error::MessageTooLarge {
            len: len as u64,
            max: max as u64,
        }
    } else {
        Error::Io(e)
    }
}

/// Sends `msg` as one datagram with `send`, after checking it against `max`, retrying `EINTR`.
fn send_with(
    msg: &[u8],
    max: usize,
    mut send: impl FnMut(&[u8]) -> io::Result<usize>,
) -> Result<()> {
    check_send(msg.len(), max)?;
    match sys::retry_io(|| send(msg)) {
        Ok(_) => Ok(()),
        Err(e) => Err(send_error(e, msg.len(), max)),
    }
}

/// Sends `msg` as one datagram on `fd` with `send`, a send that never waits for room
/// (`MSG_DONTWAIT`). With `wait`, a `WouldBlock` waits up to that long for this socket to be
/// writable (its own send buffer to drain) and tries once more: a destination whose queue is
/// full fails again at once.
fn try_send_to(
    fd: BorrowedFd<'_>,
    msg: &[u8],
    max: usize,
    wait: Option<Duration>,
    mut send: impl FnMut(&[u8]) -> io::Result<usize>,
) -> Result<()> {
    match send_with(msg, max, &mut send) {
        Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => match wait {
            Some(wait) if sys::wait_writable(fd, wait)? => send_with(msg, max, send),
            _ => Err(Error::Io(e)),
        },
        sent => sent,
    }
}

/// How much room a socket's receives may take: what its family can deliver at all, and what is
/// cheap enough to reserve without asking the length first.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Room {
    /// The longest datagram the family can deliver (`usize::MAX` when only the kernel knows).
    pub(crate) most: usize,
    /// Up to this much is reserved at once; a larger limit peeks at each datagram's length.
    pub(crate) direct: usize,
}

/// Receives one datagram of at most `max` bytes into `buf`, which ends up holding exactly it, and
/// its sender's address if `with_sender`.
///
/// Memory follows the datagram, never the limit: `room.direct` bytes (the family's usual
/// largest datagram) are reserved at once, never zeroed; above that the datagram's length is
/// peeked first (`MSG_PEEK | MSG_TRUNC` on Linux; elsewhere a peek into a doubling buffer), so
/// a limit of `usize::MAX` costs the larger of the datagram and `room.direct`, and one more
/// system call. Never less than `room.direct`: another handle of the socket may take the
/// datagram peeked, and the receive gets the next one, which then fits unless it is longer.
///
/// With `fds`, the descriptors sent with the datagram replace its contents (close-on-exec); a
/// datagram whose control data was truncated is [`Error::FdsTruncated`] and those that did
/// arrive are closed. Without, the kernel closes them. `stamped` makes room for a
/// `SO_TIMESTAMP` control message (see `sys::recv_datagram`), and the third value returned says
/// whether control data came.
fn recv<A: SenderAddr>(
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    max: usize,
    with_sender: bool,
    room: Room,
    fds: Option<&mut Vec<OwnedFd>>,
    stamped: bool,
) -> Result<(usize, Option<A>, bool)> {
    let limit = max.min(room.most);
    let reserve = if limit <= room.direct {
        limit
    } else {
        let len = peek_len(fd, buf, room.direct, limit)?;
        if len > limit {
            // Longer than the limit: take it out of the queue with no room at all and report it.
            0
        } else {
            // Never less than the usual room: another handle of this socket may take the
            // datagram peeked before this receive, which then gets the next one.
            len.max(room.direct)
        }
    };
    let with_fds = fds.is_some();
    let dgram = sys::recv_datagram::<A>(fd, buf, reserve, with_sender, false, with_fds, stamped)?;
    // Descriptors not handed out are dropped with `dgram`: closed, never leaked.
    if dgram.truncated {
        return Err(Error::Truncated {
            // Within the limit only if another handle took the datagram peeked, and the next
            // one was longer than the usual room; then it is cut short all the same.
            len: dgram.len.max(max.saturating_add(1)) as u64,
            max: max as u64,
        });
    }
    if let Some(fds) = fds {
        let control = dgram.control;
        if control.truncated {
            buf.clear();
            fds.clear();
            return Err(Error::FdsTruncated {
                closed: control.fds.len(),
            });
        }
        *fds = control.fds;
    }
    Ok((dgram.len, dgram.from, dgram.stamped))
}

/// The length of the next datagram, or `limit + 1` if it is longer than `limit`, without taking
/// it out of the queue. Linux gives the real length to a peek with no room; elsewhere the peek
/// room doubles from `start` until the datagram fits.
fn peek_len(fd: BorrowedFd<'_>, buf: &mut Vec<u8>, start: usize, limit: usize) -> Result<usize> {
    let mut room = if cfg!(any(target_os = "linux", target_os = "android")) {
        0
    } else {
        start.max(1)
    };
    loop {
        let dgram = sys::recv_datagram::<()>(fd, buf, room.min(limit), false, true, false, false)?;
        let real_len_known = cfg!(any(target_os = "linux", target_os = "android"));
        if !dgram.truncated || real_len_known || room >= limit {
            buf.clear();
            return Ok(dgram.len);
        }
        room = room.saturating_mul(2);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;

    use super::{Datagram, Room};

    #[test]
    fn try_clone_keeps_the_limits_and_the_socket() {
        let (a, b) = UnixDatagram::pair().unwrap();
        let mut socket = Datagram::new(
            a,
            50,
            Room {
                most: 100,
                direct: 10,
            },
        );
        socket.set_max_message_len(20);
        let clone = socket.try_clone().unwrap();
        assert_eq!((clone.send_limit(), clone.max_message_len()), (50, 20));
        b.send(b"to the clone").unwrap();
        assert_eq!(clone.recv().unwrap(), b"to the clone");
        drop(socket);
        b.send(b"still open").unwrap();
        assert_eq!(clone.recv().unwrap(), b"still open");
    }
}
