//! The datagram side: [`DatagramTransport`] and what UDP and Unix datagram sockets share.
//!
//! One message is exactly one datagram, with no framing bytes, so a plain socket in any language
//! can talk to these sockets.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

use nix::sys::socket::SockaddrLike;

use crate::channel::Channel;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::inet::UdpSocket;
use crate::sys;
use crate::unix::UnixDatagram;

mod sealed {
    pub trait Sealed {}
}

/// A datagram socket family: bind, send to and receive from addresses, or connect to one peer.
///
/// Code generic over `T: DatagramTransport` runs on UDP and Unix datagram sockets alike. There is
/// no accept: a server binds, receives each datagram with the sender's address, and replies to
/// it. The trait is sealed.
///
/// # Examples
///
/// ```
/// use msgsock::{Channel, DatagramTransport, UdpTransport, UnixDatagramTransport};
///
/// fn echo_once<T: DatagramTransport>() -> msgsock::Result<Option<Vec<u8>>> {
///     let server = T::bind_ephemeral()?;
///     let mut client = T::connect(&T::local_addr(&server)?)?;
///     client.send(b"one datagram")?;
///     let mut buf = Vec::new();
///     let (_, from) = T::recv_from(&server, &mut buf)?;
///     T::send_to(&server, &buf, &from.expect("the client has an address"))?;
///     client.recv()
/// }
///
/// assert_eq!(echo_once::<UdpTransport>()?.as_deref(), Some(&b"one datagram"[..]));
/// assert_eq!(echo_once::<UnixDatagramTransport>()?.as_deref(), Some(&b"one datagram"[..]));
/// # Ok::<(), msgsock::Error>(())
/// ```
pub trait DatagramTransport: sealed::Sealed + Send + Sync + 'static {
    /// What a socket binds, sends to and receives from.
    type Addr: Clone + fmt::Debug + Send + Sync + 'static;
    /// A datagram socket; connected, it is a [`Channel`].
    type Socket: Channel + fmt::Debug + AsFd + Send + Sync + 'static;

    /// Binds a socket at `addr`.
    ///
    /// # Errors
    ///
    /// As the family's socket `bind`.
    fn bind(addr: &Self::Addr) -> Result<Self::Socket>;

    /// Binds a fresh address only this machine can reach: a socket in a new private temporary
    /// directory, or `127.0.0.1` on a free port.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if no such address can be made.
    fn bind_ephemeral() -> Result<Self::Socket>;

    /// The address a socket is bound to.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `getsockname(2)`; [`Error::Io`] with `NotFound` for an unbound Unix
    /// socket.
    fn local_addr(socket: &Self::Socket) -> Result<Self::Addr>;

    /// A socket bound to a fresh address of its own (so that replies reach it) and connected to
    /// `addr`, ready for [`Channel::send`] and [`Channel::recv`].
    ///
    /// # Errors
    ///
    /// As [`bind_ephemeral`](Self::bind_ephemeral), or the family's `connect`.
    fn connect(addr: &Self::Addr) -> Result<Self::Socket>;

    /// Sends one message as one datagram to `addr`.
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`] if it does not fit in a datagram; [`Error::Io`] otherwise.
    fn send_to(socket: &Self::Socket, msg: &[u8], addr: &Self::Addr) -> Result<()>;

    /// Receives one datagram into `buf`, replacing its contents; returns its length and the
    /// sender's address (`None` for an unbound Unix sender, which cannot be answered).
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] for a datagram above the receive limit; [`Error::Io`] otherwise.
    fn recv_from(socket: &Self::Socket, buf: &mut Vec<u8>) -> Result<(usize, Option<Self::Addr>)>;

    /// `addr` as an [`Endpoint`].
    fn endpoint(addr: &Self::Addr) -> Endpoint;
}

/// UDP: [`UdpSocket`], addressed by IP socket address.
#[derive(Debug)]
pub enum UdpTransport {}

/// Unix-domain datagrams: [`UnixDatagram`], addressed by path.
#[derive(Debug)]
pub enum UnixDatagramTransport {}

impl sealed::Sealed for UdpTransport {}
impl sealed::Sealed for UnixDatagramTransport {}

impl DatagramTransport for UdpTransport {
    type Addr = SocketAddr;
    type Socket = UdpSocket;

    fn bind(addr: &SocketAddr) -> Result<UdpSocket> {
        UdpSocket::bind(*addr)
    }
    fn bind_ephemeral() -> Result<UdpSocket> {
        UdpSocket::bind((Ipv4Addr::LOCALHOST, 0).into())
    }
    fn local_addr(socket: &UdpSocket) -> Result<SocketAddr> {
        socket.local_addr()
    }
    fn connect(addr: &SocketAddr) -> Result<UdpSocket> {
        UdpSocket::connect_new(*addr)
    }
    fn send_to(socket: &UdpSocket, msg: &[u8], addr: &SocketAddr) -> Result<()> {
        socket.send_to(msg, *addr)
    }
    fn recv_from(socket: &UdpSocket, buf: &mut Vec<u8>) -> Result<(usize, Option<SocketAddr>)> {
        socket.recv_from(buf).map(|(n, a)| (n, Some(a)))
    }
    fn endpoint(addr: &SocketAddr) -> Endpoint {
        Endpoint::Udp(*addr)
    }
}

impl DatagramTransport for UnixDatagramTransport {
    type Addr = PathBuf;
    type Socket = UnixDatagram;

    fn bind(addr: &PathBuf) -> Result<UnixDatagram> {
        UnixDatagram::bind(addr)
    }
    fn bind_ephemeral() -> Result<UnixDatagram> {
        UnixDatagram::bind_temp()
    }
    fn local_addr(socket: &UnixDatagram) -> Result<PathBuf> {
        socket
            .path()
            .map(PathBuf::from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "socket is not bound").into())
    }
    fn connect(addr: &PathBuf) -> Result<UnixDatagram> {
        UnixDatagram::connect_new(addr)
    }
    fn send_to(socket: &UnixDatagram, msg: &[u8], addr: &PathBuf) -> Result<()> {
        socket.send_to(msg, addr)
    }
    fn recv_from(socket: &UnixDatagram, buf: &mut Vec<u8>) -> Result<(usize, Option<PathBuf>)> {
        socket.recv_from(buf)
    }
    fn endpoint(addr: &PathBuf) -> Endpoint {
        Endpoint::UnixDatagram(addr.clone())
    }
}

/// Refuses a message that one datagram cannot carry, before any system call.
pub(crate) fn check_send(len: usize, max: usize) -> Result<()> {
    if len > max {
        return Err(Error::MessageTooLarge {
            len: len as u64,
            max: max as u64,
        });
    }
    Ok(())
}

/// Maps the kernel's `EMSGSIZE` to [`Error::MessageTooLarge`], for limits it knows better.
pub(crate) fn send_error(e: io::Error, len: usize, max: usize) -> Error {
    if e.raw_os_error() == Some(nix::libc::EMSGSIZE) {
        Error::MessageTooLarge {
            len: len as u64,
            max: max as u64,
        }
    } else {
        Error::Io(e)
    }
}

/// Sends `msg` as one datagram with `send`, after checking it against `max`, retrying `EINTR`.
pub(crate) fn send_with(
    msg: &[u8],
    max: usize,
    mut send: impl FnMut(&[u8]) -> io::Result<usize>,
) -> Result<()> {
    check_send(msg.len(), max)?;
    loop {
        match send(msg) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(send_error(e, msg.len(), max)),
        }
    }
}

/// Sends `msg` on a connected socket as one datagram, retrying `EINTR`.
pub(crate) fn send_connected(fd: BorrowedFd<'_>, msg: &[u8], max: usize) -> Result<()> {
    send_with(msg, max, |m| sys::send(fd, m))
}

/// Sends `msg` to `addr` as one datagram without waiting for room (`MSG_DONTWAIT`). With `wait`,
/// a `WouldBlock` waits up to that long for this socket to be writable (its own send buffer to
/// drain) and tries once more: a destination whose queue is full fails again at once.
pub(crate) fn try_send_to(
    fd: BorrowedFd<'_>,
    msg: &[u8],
    addr: &dyn SockaddrLike,
    max: usize,
    wait: Option<std::time::Duration>,
) -> Result<()> {
    match send_with(msg, max, |m| sys::send_to_nowait(fd, m, addr)) {
        Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => match wait {
            Some(wait) if sys::wait_writable(fd, wait)? => {
                send_with(msg, max, |m| sys::send_to_nowait(fd, m, addr))
            }
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
/// Memory follows the datagram, never the limit: up to `room.direct` bytes are reserved at once
/// (the family's usual largest datagram); above that the datagram's length is peeked first
/// (`MSG_PEEK | MSG_TRUNC` on Linux; elsewhere a peek into a doubling buffer), so a limit of
/// `usize::MAX` costs what the datagram costs, and one more system call.
pub(crate) fn recv<A: SockaddrLike>(
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    max: usize,
    with_sender: bool,
    room: Room,
) -> Result<(usize, Option<A>)> {
    let limit = max.min(room.most);
    let reserve = if limit <= room.direct {
        limit
    } else {
        let len = peek_len(fd, buf, room.direct, limit)?;
        // Longer than the limit: take it out of the queue with no room at all and report it.
        if len > limit {
            0
        } else {
            len
        }
    };
    let dgram = sys::recv_datagram::<A>(fd, buf, reserve, with_sender, false)?;
    if dgram.truncated {
        return Err(Error::Truncated {
            // Longer than what was peeked only if another thread took that datagram meanwhile.
            len: dgram.len.max(max.saturating_add(1)) as u64,
            max: max as u64,
        });
    }
    Ok((dgram.len, dgram.from))
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
        let dgram = sys::recv_datagram::<()>(fd, buf, room.min(limit), false, true)?;
        let real_len_known = cfg!(any(target_os = "linux", target_os = "android"));
        if !dgram.truncated || real_len_known || room >= limit {
            buf.clear();
            return Ok(dgram.len);
        }
        room = room.saturating_mul(2);
    }
}

/// The inherent methods, [`Channel`] and fd traits that UDP and Unix datagram sockets share. The
/// type has fields `inner` (the std socket), `max_len` (receive limit) and `send_limit`.
macro_rules! datagram_common {
    ($name:ident, $addr:ty) => {
        impl $name {
            /// Sends one message as one datagram to the connected peer (`send(2)`).
            ///
            /// # Errors
            ///
            /// [`Error::MessageTooLarge`](crate::Error::MessageTooLarge) before any system call
            /// if the message exceeds [`send_limit`](Self::send_limit); [`Error::Io`](crate::Error::Io)
            /// otherwise (`NotConnected` if not connected, `ConnectionRefused` if nobody is bound
            /// at the peer's address).
            pub fn send(&self, msg: &[u8]) -> crate::Result<()> {
                crate::datagram::send_connected(
                    std::os::fd::AsFd::as_fd(&self.inner),
                    msg,
                    self.send_limit,
                )
            }

            /// Receives one datagram into `buf`, replacing its contents, and returns its length.
            ///
            /// # Errors
            ///
            /// [`Error::Truncated`](crate::Error::Truncated) if the datagram was longer than
            /// [`max_message_len`](Self::max_message_len) (it is discarded, never returned cut
            /// short); [`Error::Io`](crate::Error::Io) otherwise, with `WouldBlock` or `TimedOut`
            /// on a read timeout.
            pub fn recv_into(&self, buf: &mut Vec<u8>) -> crate::Result<usize> {
                crate::datagram::recv::<$addr>(
                    std::os::fd::AsFd::as_fd(&self.inner),
                    buf,
                    self.max_len,
                    false,
                    self.room(),
                )
                .map(|(n, _)| n)
            }

            /// Receives one datagram into a new `Vec`.
            ///
            /// # Errors
            ///
            /// As [`recv_into`](Self::recv_into).
            pub fn recv(&self) -> crate::Result<Vec<u8>> {
                let mut buf = Vec::new();
                self.recv_into(&mut buf)?;
                Ok(buf)
            }

            /// The largest message one datagram of this socket can carry.
            pub fn send_limit(&self) -> usize {
                self.send_limit
            }

            /// The largest datagram `recv` accepts; a longer one is
            /// [`Error::Truncated`](crate::Error::Truncated). Defaults to
            /// [`send_limit`](Self::send_limit), so peers of the same kind always fit.
            pub fn max_message_len(&self) -> usize {
                self.max_len
            }

            /// Sets the largest datagram `recv` accepts, from the next call on. Any value works,
            /// `usize::MAX` included: memory follows the datagram that arrives, never the limit.
            /// Up to [`send_limit`](Self::send_limit) bytes are reserved at once (never zeroed);
            /// above that, each receive first peeks at the datagram's length (`MSG_PEEK |
            /// MSG_TRUNC` on Linux), one more system call. With such a limit, two threads
            /// receiving on handles of one socket at once may see a datagram reported
            /// [`Truncated`](crate::Error::Truncated) that another took between the peek and
            /// the receive.
            pub fn set_max_message_len(&mut self, max: usize) -> &mut Self {
                self.max_len = max;
                self
            }

            /// Sets the read timeout (`SO_RCVTIMEO`); `None` blocks forever.
            ///
            /// # Errors
            ///
            /// [`Error::Io`](crate::Error::Io), for example `InvalidInput` for a zero duration.
            pub fn set_read_timeout(
                &self,
                timeout: Option<std::time::Duration>,
            ) -> crate::Result<()> {
                Ok(self.inner.set_read_timeout(timeout)?)
            }

            /// Sets the write timeout (`SO_SNDTIMEO`); `None` blocks forever.
            ///
            /// # Errors
            ///
            /// [`Error::Io`](crate::Error::Io), for example `InvalidInput` for a zero duration.
            pub fn set_write_timeout(
                &self,
                timeout: Option<std::time::Duration>,
            ) -> crate::Result<()> {
                Ok(self.inner.set_write_timeout(timeout)?)
            }

            /// Moves the socket into or out of non-blocking mode.
            ///
            /// # Errors
            ///
            /// [`Error::Io`](crate::Error::Io) from `fcntl(2)`.
            pub fn set_nonblocking(&self, nonblocking: bool) -> crate::Result<()> {
                Ok(self.inner.set_nonblocking(nonblocking)?)
            }
        }

        impl crate::channel::Channel for $name {
            fn send(&mut self, msg: &[u8]) -> crate::Result<()> {
                $name::send(self, msg)
            }
            fn recv_into(&mut self, buf: &mut Vec<u8>) -> crate::Result<Option<usize>> {
                $name::recv_into(self, buf).map(Some)
            }
            fn set_read_timeout(&self, timeout: Option<std::time::Duration>) -> crate::Result<()> {
                $name::set_read_timeout(self, timeout)
            }
            fn set_write_timeout(&self, timeout: Option<std::time::Duration>) -> crate::Result<()> {
                $name::set_write_timeout(self, timeout)
            }
            fn try_clone(&self) -> crate::Result<Self> {
                $name::try_clone(self)
            }
        }

        impl std::os::fd::AsFd for $name {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.inner.as_fd()
            }
        }

        impl std::os::fd::AsRawFd for $name {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.inner.as_raw_fd()
            }
        }
    };
}
pub(crate) use datagram_common;
