//! [`AsyncDatagram`]: UDP and Unix datagram sockets on tokio, with the blocking side's limits,
//! truncation reports and never-waiting sends.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use ::tokio::io::Interest;

use super::ready::Readiness;
use crate::any::AnyDatagram;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::sys;

/// Binds an async datagram socket for a datagram `endpoint` (`udp:` or `unixgram:`), as
/// [`msgsock::bind_datagram`](crate::bind_datagram). Call it inside a tokio runtime.
///
/// # Errors
///
/// As [`msgsock::bind_datagram`](crate::bind_datagram); [`Error::Io`] without a runtime.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> msgsock::Result<()> {
/// let server = msgsock::tokio::bind_datagram(&"udp:127.0.0.1:0".parse()?).await?;
/// let mut client = msgsock::tokio::connect(&server.local_endpoint()?).await?;
/// client.send(b"hello").await?;
/// let mut buf = Vec::new();
/// let (_, from) = server.recv_from(&mut buf).await?;
/// server.send_to(&buf, &from.unwrap()).await?;
/// assert_eq!(client.recv().await?.as_deref(), Some(&b"hello"[..]));
/// # Ok(())
/// # }
/// ```
pub async fn bind_datagram(endpoint: &Endpoint) -> Result<AsyncDatagram> {
    AsyncDatagram::from_blocking(crate::any::bind_datagram(endpoint)?)
}

/// A UDP or Unix datagram socket on tokio: one message is one datagram.
///
/// The receive limit, the truncation report ([`Error::Truncated`]) and the memory policy are
/// those of the blocking [`AnyDatagram`], whose calls this one makes once the socket is ready.
/// Every call is cancel-safe: a datagram is taken or sent whole, or not at all.
#[derive(Debug)]
pub struct AsyncDatagram {
    /// The blocking socket, whose calls do the work; it keeps a `unixgram:` socket's file.
    inner: AnyDatagram,
    /// A second descriptor of the same socket, registered with tokio for its readiness.
    ready: Readiness,
}

impl AsyncDatagram {
    /// Serves a blocking datagram socket on tokio; it is put into non-blocking mode.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `fcntl(2)`, or without a runtime.
    pub fn from_blocking(socket: AnyDatagram) -> Result<AsyncDatagram> {
        // The descriptors share one open file, so its O_NONBLOCK is both's.
        let fd = socket.as_fd().try_clone_to_owned()?;
        let ready = match &socket {
            AnyDatagram::Udp(_) => Readiness::udp(fd)?,
            AnyDatagram::Unix(_) => Readiness::unixgram(fd)?,
        };
        Ok(AsyncDatagram {
            inner: socket,
            ready,
        })
    }

    /// Runs `op` on the blocking socket once it is ready for `interest`, as
    /// [`Readiness::io`].
    async fn io<T>(
        &self,
        interest: Interest,
        mut op: impl FnMut(&AnyDatagram) -> Result<T>,
    ) -> Result<T> {
        self.ready.io(interest, || op(&self.inner)).await
    }

    /// Sends one message as one datagram to `to`, waiting while the socket has no room.
    ///
    /// A Unix destination whose queue is full is waited for too, and Linux wakes no async
    /// sender when it drains: a server answering many peers uses
    /// [`try_send_to`](Self::try_send_to) or [`try_send_to_within`](Self::try_send_to_within).
    ///
    /// # Errors
    ///
    /// As [`AnyDatagram::send_to`].
    pub async fn send_to(&self, msg: &[u8], to: &Endpoint) -> Result<()> {
        self.io(Interest::WRITABLE, |s| s.try_send_to(msg, to))
            .await
    }

    /// Sends one message as one datagram to `to` if it can be queued now, and never waits, as
    /// [`AnyDatagram::try_send_to`].
    ///
    /// # Errors
    ///
    /// As [`AnyDatagram::try_send_to`], `WouldBlock` included.
    pub fn try_send_to(&self, msg: &[u8], to: &Endpoint) -> Result<()> {
        self.inner.try_send_to(msg, to)
    }

    /// As [`try_send_to`](Self::try_send_to), but when this socket's own send buffer is full,
    /// waits up to `wait` for it to drain and tries once more; a destination whose queue is full
    /// is `WouldBlock` at once, as [`AnyDatagram::try_send_to_within`].
    ///
    /// # Errors
    ///
    /// As [`try_send_to`](Self::try_send_to).
    pub async fn try_send_to_within(
        &self,
        msg: &[u8],
        to: &Endpoint,
        wait: Duration,
    ) -> Result<()> {
        self.within(wait, || self.try_send_to(msg, to)).await
    }

    /// As [`try_send_to_within`](Self::try_send_to_within), with the descriptors `fds` attached
    /// (`sendmsg(2)` with `SCM_RIGHTS`), as [`AnyDatagram::try_send_to_with_fds_within`]: how a
    /// server answers with descriptors without letting one peer that stopped reading delay
    /// the others.
    ///
    /// # Errors
    ///
    /// [`Error::FdsUnsupported`] on a UDP socket and [`Error::TooManyFds`], before any system
    /// call; otherwise as [`try_send_to_within`](Self::try_send_to_within).
    pub async fn try_send_to_with_fds_within(
        &self,
        msg: &[u8],
        fds: &[BorrowedFd<'_>],
        to: &Endpoint,
        wait: Duration,
    ) -> Result<()> {
        // No wait inside the blocking call: the waiting is `within`'s, on tokio. Its first try
        // refuses a UDP socket before any system call.
        self.within(wait, || {
            self.inner
                .try_send_to_with_fds_within(msg, fds, to, Duration::ZERO)
        })
        .await
    }

    /// Runs `send`, a send that never waits; when it finds this socket's own send buffer full,
    /// waits up to `wait` for it to drain and runs it once more. A destination whose queue is
    /// full is `WouldBlock` at once.
    async fn within(&self, wait: Duration, send: impl Fn() -> Result<()>) -> Result<()> {
        let full = match send() {
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => e,
            sent => return sent,
        };
        // Writable now means the socket's own buffer has room: the destination is what is full.
        if sys::wait_writable(self.as_fd(), Duration::ZERO)? {
            return Err(full.into());
        }
        // Clear the readiness tokio may still hold, then wait for the buffer to drain.
        let _ = self.ready.try_io(Interest::WRITABLE, || {
            Err::<(), _>(io::Error::from(full.kind()))
        });
        match ::tokio::time::timeout(wait, self.ready.ready(Interest::WRITABLE)).await {
            Ok(ready) => {
                ready?;
            }
            Err(_elapsed) => return Err(full.into()),
        }
        send()
    }

    /// Receives one datagram into `buf`, replacing its contents; returns its length and the
    /// sender's endpoint (`None` for an unbound Unix sender). Cancel-safe.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] for a datagram above the receive limit (it is consumed);
    /// [`Error::Io`] otherwise.
    pub async fn recv_from(&self, buf: &mut Vec<u8>) -> Result<(usize, Option<Endpoint>)> {
        self.io(Interest::READABLE, |s| s.recv_from(buf)).await
    }

    /// Sends one message to the connected peer.
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`], [`Error::Io`] (`NotConnected` if not connected).
    pub async fn send(&self, msg: &[u8]) -> Result<()> {
        self.io(Interest::WRITABLE, |s| match s {
            AnyDatagram::Udp(s) => s.send(msg),
            AnyDatagram::Unix(s) => s.send(msg),
        })
        .await
    }

    /// Sends one message as one datagram to the connected peer with the descriptors `fds`
    /// attached (`sendmsg(2)` with `SCM_RIGHTS`), waiting while the socket has no room, as
    /// [`AnyDatagram::send_with_fds`]. Cancel-safe: the datagram and its descriptors go
    /// together or not at all.
    ///
    /// # Errors
    ///
    /// As [`AnyDatagram::send_with_fds`]: [`Error::FdsUnsupported`] on a UDP socket and
    /// [`Error::TooManyFds`] before any system call.
    pub async fn send_with_fds(&self, msg: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        self.check_unix()?;
        self.io(Interest::WRITABLE, |s| s.send_with_fds(msg, fds))
            .await
    }

    /// Receives one datagram from the connected peer into `buf` and the descriptors sent with
    /// it into `fds` (close-on-exec), replacing the contents of both, as
    /// [`AnyDatagram::recv_into_with_fds`]; returns its length. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`AnyDatagram::recv_into_with_fds`]: [`Error::FdsUnsupported`] on a UDP socket,
    /// before any system call; [`Error::FdsTruncated`] in place of a datagram that lost
    /// descriptors.
    pub async fn recv_into_with_fds(
        &self,
        buf: &mut Vec<u8>,
        fds: &mut Vec<OwnedFd>,
    ) -> Result<usize> {
        self.check_unix()?;
        self.io(Interest::READABLE, |s| s.recv_into_with_fds(buf, fds))
            .await
    }

    /// As [`recv_into_with_fds`](Self::recv_into_with_fds), and the sender as
    /// [`recv_from`](Self::recv_from) gives it. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`recv_into_with_fds`](Self::recv_into_with_fds).
    pub async fn recv_from_with_fds(
        &self,
        buf: &mut Vec<u8>,
        fds: &mut Vec<OwnedFd>,
    ) -> Result<(usize, Option<Endpoint>)> {
        self.check_unix()?;
        self.io(Interest::READABLE, |s| s.recv_from_with_fds(buf, fds))
            .await
    }

    /// Receives one datagram from the connected peer into `buf`, replacing its contents, and
    /// returns its length. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`recv_from`](Self::recv_from).
    pub async fn recv_into(&self, buf: &mut Vec<u8>) -> Result<usize> {
        self.io(Interest::READABLE, |s| match s {
            AnyDatagram::Udp(s) => s.recv_into(buf),
            AnyDatagram::Unix(s) => s.recv_into(buf),
        })
        .await
    }

    /// [`Error::FdsUnsupported`] on a UDP socket: checked before waiting for readiness, which
    /// a receive might wait for forever.
    fn check_unix(&self) -> Result<()> {
        self.inner.unix().map(drop)
    }

    /// The bound endpoint.
    ///
    /// # Errors
    ///
    /// As [`AnyDatagram::local_endpoint`].
    pub fn local_endpoint(&self) -> Result<Endpoint> {
        self.inner.local_endpoint()
    }

    /// The largest message one datagram of this socket can carry.
    pub fn send_limit(&self) -> usize {
        self.inner.send_limit()
    }

    /// The largest datagram a receive accepts; a longer one is [`Error::Truncated`].
    pub fn max_message_len(&self) -> usize {
        match &self.inner {
            AnyDatagram::Udp(s) => s.max_message_len(),
            AnyDatagram::Unix(s) => s.max_message_len(),
        }
    }

    /// Sets the largest datagram a receive accepts, from the next receive on.
    pub fn set_max_message_len(&mut self, max: usize) -> &mut Self {
        match &mut self.inner {
            AnyDatagram::Udp(s) => {
                s.set_max_message_len(max);
            }
            AnyDatagram::Unix(s) => {
                s.set_max_message_len(max);
            }
        }
        self
    }

    /// The blocking socket inside (in non-blocking mode).
    pub fn get_ref(&self) -> &AnyDatagram {
        &self.inner
    }
}

impl AsFd for AsyncDatagram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for AsyncDatagram {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}
