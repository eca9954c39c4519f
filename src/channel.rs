//! [`Channel`]: the message calls every transport offers, stream or datagram.

use std::time::Duration;

use crate::conn::Connection;
use crate::error::Result;
use crate::stream::Stream;

/// Sending and receiving whole messages, whatever carries them.
///
/// Implemented by stream [`Connection`]s, connected datagram sockets ([`UdpSocket`],
/// [`UnixDatagram`]) and [`AnyConnection`], so message code generic over `C: Channel` runs on all
/// four transports. What differs:
///
/// - Streams deliver every message, in order, or fail; `recv` returns `Ok(None)` when the peer
///   closes. Datagrams have no connection: `recv` never returns `None`, and a UDP datagram may be
///   lost, duplicated or reordered on a real network (on loopback and Unix sockets the kernel
///   drops none once sent, but a full receive queue makes the sender wait or fail).
/// - A datagram message is limited to what one datagram carries
///   ([`Error::MessageTooLarge`](crate::Error::MessageTooLarge)).
///
/// [`UdpSocket`]: crate::UdpSocket
/// [`UnixDatagram`]: crate::UnixDatagram
/// [`AnyConnection`]: crate::AnyConnection
///
/// # Examples
///
/// ```
/// use msgsock::Channel;
///
/// fn ask<C: Channel>(chan: &mut C, question: &[u8]) -> msgsock::Result<Option<Vec<u8>>> {
///     chan.send(question)?;
///     chan.recv()
/// }
/// # let server = msgsock::UdpSocket::bind("127.0.0.1:0".parse()?)?;
/// # let mut client = msgsock::UdpSocket::bind("127.0.0.1:0".parse()?)?;
/// # client.connect(server.local_addr()?)?;
/// # let t = std::thread::spawn(move || -> msgsock::Result<()> {
/// #     let mut buf = Vec::new();
/// #     let (_, from) = server.recv_from(&mut buf)?;
/// #     server.send_to(&buf, from)
/// # });
/// assert_eq!(ask(&mut client, b"hi")?.as_deref(), Some(&b"hi"[..]));
/// # t.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Channel {
    /// Sends one message.
    ///
    /// # Errors
    ///
    /// As the implementing type's `send`.
    fn send(&mut self, msg: &[u8]) -> Result<()>;

    /// Receives one message into `buf`, replacing its contents; `Ok(None)` when a stream peer
    /// closed cleanly.
    ///
    /// # Errors
    ///
    /// As the implementing type's `recv_into`.
    fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>>;

    /// Receives one message into a new `Vec`; `Ok(None)` when a stream peer closed cleanly.
    ///
    /// # Errors
    ///
    /// As [`recv_into`](Self::recv_into).
    fn recv(&mut self) -> Result<Option<Vec<u8>>> {
        let mut buf = Vec::new();
        Ok(self.recv_into(&mut buf)?.map(|_| buf))
    }

    /// Sets the receive timeout; `None` blocks forever.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io), for example `InvalidInput` for a zero duration.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<()>;

    /// Sets the send timeout; `None` blocks forever.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io), for example `InvalidInput` for a zero duration.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> Result<()>;

    /// A second handle, to send on one thread while another receives.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) if `dup(2)` fails.
    fn try_clone(&self) -> Result<Self>
    where
        Self: Sized;
}

impl<S: Stream> Channel for Connection<S> {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        Connection::send(self, msg)
    }
    fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        Connection::recv_into(self, buf)
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        Connection::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        Connection::set_write_timeout(self, timeout)
    }
    fn try_clone(&self) -> Result<Self> {
        Connection::try_clone(self)
    }
}

/// [`Channel`] for a connected datagram socket type, forwarding to its inherent methods of the
/// same names; `recv_into` never returns `None`, since datagrams have no close.
macro_rules! datagram_channel {
    ($name:ident) => {
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
    };
}
pub(crate) use datagram_channel;
