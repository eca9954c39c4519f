use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use crate::dgram::{Datagram, Room};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::sys::Destination;

/// The largest UDP payload over IPv4: 65,535 − 20 (IPv4 header) − 8 (UDP header).
pub const UDP_V4_MAX_MESSAGE_LEN: usize = 65_507;
/// The largest UDP payload over IPv6 without jumbograms: 65,535 − 8 (the IPv6 payload length
/// excludes the IPv6 header).
pub const UDP_V6_MAX_MESSAGE_LEN: usize = 65_527;

/// A UDP socket that sends and receives whole messages, one per datagram.
///
/// Bound, it talks to any address with [`send_to`](Self::send_to) and
/// [`recv_from`](Self::recv_from); [`connect`](Self::connect)ed, it is a
/// [`Channel`](crate::Channel) with [`send`](Self::send) and [`recv`](Self::recv). UDP promises
/// neither delivery nor order across a real network, and there is no "connection closed" event.
/// std's calls (timeouts, `set_nonblocking`, `try_clone`, addresses) are inherent methods.
///
/// # Examples
///
/// ```
/// use msgsock::UdpSocket;
///
/// let server = UdpSocket::bind("127.0.0.1:0".parse()?)?;
/// let client = UdpSocket::bind("127.0.0.1:0".parse()?)?;
/// client.connect(server.local_addr()?)?;
/// client.send(b"hello")?;
///
/// let mut buf = Vec::new();
/// let (len, from) = server.recv_from(&mut buf)?;
/// assert_eq!((len, &buf[..]), (5, &b"hello"[..]));
/// server.send_to(b"world", from)?;
/// assert_eq!(client.recv()?, b"world");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct UdpSocket {
    inner: Datagram<StdUdpSocket>,
}

impl UdpSocket {
    /// Binds a UDP socket at `addr` (`bind(2)`); port 0 picks a free port.
    ///
    /// # Errors
    ///
    /// [`Error::AddrInUse`] if the port is taken; [`Error::Bind`] otherwise, for example
    /// `AddrNotAvailable` if the host is not an address of this machine. Both name `udp:ADDR`.
    pub fn bind(addr: SocketAddr) -> Result<UdpSocket> {
        let inner = StdUdpSocket::bind(addr).map_err(|e| Error::bind(Endpoint::Udp(addr), e))?;
        Ok(UdpSocket::from(inner))
    }

    /// Binds a socket on a free port of the unspecified address of `addr`'s family and connects
    /// it to `addr`.
    pub(crate) fn connect_new(addr: SocketAddr) -> Result<UdpSocket> {
        let local: SocketAddr = match addr {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local)?;
        socket.connect(addr)?;
        Ok(socket)
    }

    /// Sets the peer for [`send`](Self::send) and [`recv`](Self::recv) and receives only from it
    /// (`connect(2)`).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `connect(2)`.
    pub fn connect(&self, addr: SocketAddr) -> Result<()> {
        Ok(self.inner.socket().connect(addr)?)
    }

    /// Sends one message as one datagram to `addr` (`sendto(2)`).
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`] before any system call if `msg` exceeds
    /// [`send_limit`](Self::send_limit), or on an IPv6 socket [`UDP_V4_MAX_MESSAGE_LEN`] to an
    /// IPv4-mapped address (`::ffff:a.b.c.d`, sent over IPv4); [`Error::Io`] otherwise.
    pub fn send_to(&self, msg: &[u8], addr: SocketAddr) -> Result<()> {
        self.check_to(msg.len(), &addr)?;
        let socket = self.inner.socket();
        self.inner.send_to_with(msg, |m| socket.send_to(m, addr))
    }

    /// [`Error::MessageTooLarge`] if `len` bytes do not fit in one datagram to `addr`: an IPv6
    /// socket sends to an IPv4-mapped address over IPv4, whose limit is lower.
    fn check_to(&self, len: usize, addr: &SocketAddr) -> Result<()> {
        let max = match addr {
            SocketAddr::V6(a) if a.ip().to_ipv4_mapped().is_some() => {
                self.send_limit().min(UDP_V4_MAX_MESSAGE_LEN)
            }
            _ => self.send_limit(),
        };
        if len > max {
            return Err(Error::MessageTooLarge {
                len: len as u64,
                max: max as u64,
            });
        }
        Ok(())
    }

    /// Sends one message as one datagram to `addr` if it can be queued now, and never waits
    /// (`sendto(2)` with `MSG_DONTWAIT`; the socket stays blocking for other calls).
    ///
    /// UDP never waits for a receiver (a full receive queue drops the datagram there), so this
    /// differs from [`send_to`](Self::send_to) only when this socket's own send buffer is full.
    ///
    /// # Errors
    ///
    /// As [`send_to`](Self::send_to), plus [`Error::Io`] with `WouldBlock` when the datagram
    /// cannot be queued now.
    pub fn try_send_to(&self, msg: &[u8], addr: SocketAddr) -> Result<()> {
        self.send_to_within(msg, addr, None)
    }

    /// As [`try_send_to`](Self::try_send_to), but waits up to `wait` for room in this socket's
    /// send buffer and tries once more. See
    /// [`UnixDatagram::try_send_to_within`](crate::UnixDatagram::try_send_to_within).
    ///
    /// # Errors
    ///
    /// As [`try_send_to`](Self::try_send_to).
    pub fn try_send_to_within(&self, msg: &[u8], addr: SocketAddr, wait: Duration) -> Result<()> {
        self.send_to_within(msg, addr, Some(wait))
    }

    fn send_to_within(&self, msg: &[u8], addr: SocketAddr, wait: Option<Duration>) -> Result<()> {
        self.check_to(msg.len(), &addr)?;
        self.inner.try_send_to(msg, Destination::Inet(addr), wait)
    }

    /// Receives one datagram into `buf`, replacing its contents; returns its length and sender.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] for a datagram longer than [`max_message_len`](Self::max_message_len);
    /// [`Error::Io`] otherwise.
    pub fn recv_from(&self, buf: &mut Vec<u8>) -> Result<(usize, SocketAddr)> {
        let (n, from) = self.inner.recv_from::<SocketAddr>(buf)?;
        let from =
            from.ok_or_else(|| Error::Io(io::Error::other("datagram from a non-IP address")))?;
        Ok((n, from))
    }

    /// Sends one message as one datagram to the connected peer (`send(2)`).
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`] before any system call if the message exceeds
    /// [`send_limit`](Self::send_limit); [`Error::Io`] otherwise (`NotConnected` if not
    /// connected, `ConnectionRefused` once an ICMP message said nobody is bound at the peer).
    pub fn send(&self, msg: &[u8]) -> Result<()> {
        self.inner.send(msg).map_err(|e| match e {
            // The kernel knew a lower limit: the peer's, IPv4-mapped on an IPv6 socket.
            Error::MessageTooLarge { len, max } if len <= max => match self.peer_addr() {
                Ok(peer) => self.check_to(len as usize, &peer).err().unwrap_or(e),
                Err(_) => e,
            },
            e => e,
        })
    }

    /// Receives one datagram into `buf`, replacing its contents, and returns its length.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the datagram was longer than
    /// [`max_message_len`](Self::max_message_len) (it is discarded, never returned cut short);
    /// [`Error::Io`] otherwise, with `WouldBlock` or `TimedOut` on a read timeout.
    pub fn recv_into(&self, buf: &mut Vec<u8>) -> Result<usize> {
        self.inner.recv_into(buf)
    }

    /// Receives one datagram into a new `Vec`.
    ///
    /// # Errors
    ///
    /// As [`recv_into`](Self::recv_into).
    pub fn recv(&self) -> Result<Vec<u8>> {
        self.inner.recv()
    }

    /// The largest message one datagram of this socket can carry: [`UDP_V4_MAX_MESSAGE_LEN`]
    /// or [`UDP_V6_MAX_MESSAGE_LEN`].
    pub fn send_limit(&self) -> usize {
        self.inner.send_limit()
    }

    /// The largest datagram `recv` accepts; a longer one is [`Error::Truncated`]. Defaults to
    /// [`send_limit`](Self::send_limit), so peers of the same kind always fit.
    pub fn max_message_len(&self) -> usize {
        self.inner.max_message_len()
    }

    /// Sets the largest datagram `recv` accepts, from the next call on. Any value works,
    /// `usize::MAX` included: nothing longer than 65,535 bytes arrives over UDP, and that is the
    /// most ever reserved.
    pub fn set_max_message_len(&mut self, max: usize) -> &mut Self {
        self.inner.set_max_message_len(max);
        self
    }

    /// Sets the read timeout (`SO_RCVTIMEO`); `None` blocks forever. A receive that waits
    /// longer for a datagram fails with `WouldBlock` or `TimedOut`, and consumes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], for example `InvalidInput` for a zero duration.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        Ok(self.inner.socket().set_read_timeout(timeout)?)
    }

    /// Sets the write timeout (`SO_SNDTIMEO`); `None` blocks forever. A UDP send waits only for
    /// room in this socket's own send buffer, never for the receiver: UDP has no flow control,
    /// and a receiver with no room drops the datagram.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], for example `InvalidInput` for a zero duration.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        Ok(self.inner.socket().set_write_timeout(timeout)?)
    }

    /// The read timeout (`SO_RCVTIMEO`); `None` for none.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `getsockopt(2)`.
    pub fn read_timeout(&self) -> Result<Option<Duration>> {
        Ok(self.inner.socket().read_timeout()?)
    }

    /// The write timeout (`SO_SNDTIMEO`); `None` for none.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `getsockopt(2)`.
    pub fn write_timeout(&self) -> Result<Option<Duration>> {
        Ok(self.inner.socket().write_timeout()?)
    }

    /// Moves the socket into or out of non-blocking mode (`O_NONBLOCK`, shared with every
    /// clone): receives then fail with `WouldBlock` instead of waiting.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `fcntl(2)`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        Ok(self.inner.socket().set_nonblocking(nonblocking)?)
    }

    /// Takes the pending socket error (`SO_ERROR`), clearing it: for example
    /// `ConnectionRefused` from an ICMP message.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `getsockopt(2)`.
    pub fn take_error(&self) -> Result<Option<io::Error>> {
        Ok(self.inner.socket().take_error()?)
    }

    /// The bound address, with the real port when bound to port 0.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `getsockname(2)`.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.inner.socket().local_addr()?)
    }

    /// The bound endpoint, `udp:HOST:PORT`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `getsockname(2)`.
    pub fn local_endpoint(&self) -> Result<Endpoint> {
        Ok(Endpoint::Udp(self.local_addr()?))
    }

    /// The connected peer's address.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with `NotConnected` if not connected.
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        Ok(self.inner.socket().peer_addr()?)
    }

    /// A second handle to the same socket (`dup(2)`), with the same limits.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `dup(2)` fails.
    pub fn try_clone(&self) -> Result<UdpSocket> {
        Ok(UdpSocket {
            inner: self.inner.try_clone()?,
        })
    }

    /// The wrapped std socket.
    pub fn get_ref(&self) -> &StdUdpSocket {
        self.inner.socket()
    }

    /// The wrapped std socket.
    pub fn into_inner(self) -> StdUdpSocket {
        self.inner.into_socket()
    }
}

impl From<StdUdpSocket> for UdpSocket {
    /// Wraps a std socket as it is, with the limits of its address family.
    fn from(socket: StdUdpSocket) -> UdpSocket {
        let send_limit = match socket.local_addr() {
            Ok(SocketAddr::V6(_)) => UDP_V6_MAX_MESSAGE_LEN,
            _ => UDP_V4_MAX_MESSAGE_LEN,
        };
        // Nothing longer than a UDP length field (65,535) arrives, so that is all ever reserved.
        let room = Room {
            most: usize::from(u16::MAX),
            direct: usize::from(u16::MAX),
        };
        UdpSocket {
            inner: Datagram::new(socket, send_limit, room),
        }
    }
}

impl From<OwnedFd> for UdpSocket {
    /// Adopts a UDP socket, bound or not, as `From<std::net::UdpSocket>` does.
    fn from(fd: OwnedFd) -> UdpSocket {
        UdpSocket::from(StdUdpSocket::from(fd))
    }
}

crate::channel::datagram_channel!(UdpSocket);

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // std's Debug shows the fd and the local address.
        fmt::Debug::fmt(self.inner.socket(), f)
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.socket().as_fd()
    }
}

impl From<UdpSocket> for OwnedFd {
    fn from(s: UdpSocket) -> OwnedFd {
        s.into_inner().into()
    }
}

crate::fd::raw_fd_traits!(UdpSocket);
