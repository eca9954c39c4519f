use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::socket::SockaddrStorage;

use crate::datagram::{datagram_common, send_with, try_send_to, Room};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};

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
    inner: StdUdpSocket,
    max_len: usize,
    send_limit: usize,
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
        Ok(self.inner.connect(addr)?)
    }

    /// Sends one message as one datagram to `addr` (`sendto(2)`).
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`] before any system call if `msg` exceeds
    /// [`send_limit`](Self::send_limit); [`Error::Io`] otherwise.
    pub fn send_to(&self, msg: &[u8], addr: SocketAddr) -> Result<()> {
        send_with(msg, self.send_limit, |m| self.inner.send_to(m, addr))
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
        let addr = SockaddrStorage::from(addr);
        let fd = std::os::fd::AsFd::as_fd(&self.inner);
        try_send_to(fd, msg, &addr, self.send_limit, wait)
    }

    /// Receives one datagram into `buf`, replacing its contents; returns its length and sender.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] for a datagram longer than [`max_message_len`](Self::max_message_len);
    /// [`Error::Io`] otherwise.
    pub fn recv_from(&self, buf: &mut Vec<u8>) -> Result<(usize, SocketAddr)> {
        let (n, from) = crate::datagram::recv::<SockaddrStorage>(
            std::os::fd::AsFd::as_fd(&self.inner),
            buf,
            self.max_len,
            true,
            self.room(),
        )?;
        let from = from
            .and_then(|a| to_std(&a))
            .ok_or_else(|| Error::Io(io::Error::other("datagram from a non-IP address")))?;
        Ok((n, from))
    }

    /// The bound address, with the real port when bound to port 0.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `getsockname(2)`.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.inner.local_addr()?)
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
        Ok(self.inner.peer_addr()?)
    }

    /// A second handle to the same socket (`dup(2)`), with the same limits.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `dup(2)` fails.
    pub fn try_clone(&self) -> Result<UdpSocket> {
        Ok(UdpSocket {
            inner: self.inner.try_clone()?,
            max_len: self.max_len,
            send_limit: self.send_limit,
        })
    }

    /// The wrapped std socket.
    pub fn get_ref(&self) -> &StdUdpSocket {
        &self.inner
    }
}

impl UdpSocket {
    /// Nothing longer than a UDP length field (65,535) arrives, so that is all ever reserved.
    fn room(&self) -> Room {
        Room {
            most: usize::from(u16::MAX),
            direct: usize::from(u16::MAX),
        }
    }
}

fn to_std(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        Some(SocketAddr::V4((*v4).into()))
    } else {
        addr.as_sockaddr_in6()
            .map(|v6| SocketAddr::V6((*v6).into()))
    }
}

impl From<StdUdpSocket> for UdpSocket {
    fn from(inner: StdUdpSocket) -> UdpSocket {
        let send_limit = match inner.local_addr() {
            Ok(SocketAddr::V6(_)) => UDP_V6_MAX_MESSAGE_LEN,
            _ => UDP_V4_MAX_MESSAGE_LEN,
        };
        UdpSocket {
            inner,
            max_len: send_limit,
            send_limit,
        }
    }
}

datagram_common!(UdpSocket, SockaddrStorage);

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("fd", &self.inner.as_raw_fd())
            .field("local", &self.inner.local_addr().ok())
            .field("peer", &self.inner.peer_addr().ok())
            .finish()
    }
}

impl From<UdpSocket> for OwnedFd {
    fn from(s: UdpSocket) -> OwnedFd {
        s.inner.into()
    }
}
