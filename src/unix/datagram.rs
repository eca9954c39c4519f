use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{SocketAddr, UnixDatagram as StdUnixDatagram};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::dgram::{Datagram, Room};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::sys::{self, Destination, SocketType, UnixAddr};
use crate::unix::abstract_name;
use crate::unix::bound::Bound;
use crate::unix::socket_file::{check_len, private_temp_dir, SocketFile};
use crate::unix::DEFAULT_SOCKET_MODE;

/// Linux refuses a Unix datagram longer than the sender's `SO_SNDBUF` less 32 bytes
/// (`unix_dgram_sendmsg` in `net/unix/af_unix.c`).
pub(crate) const SNDBUF_OVERHEAD: usize = 32;

/// The send limit of an adopted descriptor whose `SO_SNDBUF` cannot be read (it is not a
/// socket, so every call on it fails anyway): Linux's default `net.core.wmem_default`, less the
/// overhead.
pub(crate) const FALLBACK_SEND_LIMIT: usize = 212_992 - SNDBUF_OVERHEAD;

/// A Unix-domain datagram socket that sends and receives whole messages, one per datagram.
///
/// Bound to a path, it follows the same socket-file rules as [`UnixListener`](crate::UnixListener)
/// (stale file replaced, live one refused, non-socket never removed, owner-only mode, removed on
/// drop while still its own), and the path is its address: peers see datagrams come from it and
/// reply to it. A client that wants replies needs an address of its own:
/// [`bind_temp`](Self::bind_temp) gives it one in a private temporary directory, removed on drop.
/// Unix datagrams are reliable and ordered on one machine; a full receive queue makes the sender
/// wait. There is no "connection closed" event. std's calls (timeouts, `set_nonblocking`,
/// addresses, [`pair`](Self::pair)) are inherent methods.
///
/// The socket file belongs to the handle that bound it: dropping that handle removes the file
/// even while [`try_clone`](Self::try_clone)s still receive (a server stops being reachable by
/// path while a reader thread finishes), and clones never remove it. A socket made from a
/// descriptor (`From<OwnedFd>`, `FromRawFd`, `From<std::os::unix::net::UnixDatagram>`) has no
/// file of ours and removes nothing; one handed over as a descriptor leaves its file in place.
///
/// # Examples
///
/// ```
/// use msgsock::UnixDatagram;
///
/// let dir = tempfile::tempdir()?;
/// let server = UnixDatagram::bind(dir.path().join("srv.sock"))?;
/// let client = UnixDatagram::bind_temp()?;
/// client.connect(server.path().unwrap())?;
/// client.send(b"hello")?;
///
/// let mut buf = Vec::new();
/// let (_, from) = server.recv_from(&mut buf)?;
/// server.send_to(b"world", &from.unwrap())?;
/// assert_eq!(client.recv()?, b"world");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct UnixDatagram {
    // Field order is drop order: the last handle removes the files, then the socket closes.
    bound: Bound,
    inner: Datagram<StdUnixDatagram>,
    path: Option<PathBuf>,
}

impl UnixDatagram {
    /// Binds a datagram socket at `path` with mode 0600.
    ///
    /// # Errors
    ///
    /// As [`UnixListener::bind`](crate::UnixListener::bind).
    pub fn bind<P: AsRef<Path>>(path: P) -> Result<UnixDatagram> {
        UnixDatagram::bind_with_mode(path, DEFAULT_SOCKET_MODE)
    }

    /// Binds at `path` with permission bits `mode`. Senders need write permission on the file.
    ///
    /// # Errors
    ///
    /// As [`UnixListener::bind_with_mode`](crate::UnixListener::bind_with_mode).
    pub fn bind_with_mode<P: AsRef<Path>>(path: P, mode: u32) -> Result<UnixDatagram> {
        let (socket, file) = SocketFile::bind(path.as_ref(), mode, SocketType::Datagram)
            .map_err(Error::for_datagram)?;
        UnixDatagram::new(StdUnixDatagram::from(socket), file, None)
    }

    /// Binds at a fresh path in a new private temporary directory, removed on drop: the address a
    /// client needs to get replies.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the directory cannot be made; [`Error::PathTooLong`] if the temporary
    /// directory's path is too long for a socket.
    pub fn bind_temp() -> Result<UnixDatagram> {
        let dir = private_temp_dir()?;
        let (socket, file) = SocketFile::bind_private(
            &dir.path().join("sock"),
            DEFAULT_SOCKET_MODE,
            SocketType::Datagram,
        )?;
        UnixDatagram::new(StdUnixDatagram::from(socket), file, Some(dir))
    }

    /// Binds a datagram socket to the abstract name `name` (`unixgram:@NAME`, Linux's abstract
    /// namespace). No file is made or removed.
    ///
    /// An abstract name has no file mode: any process in the network namespace can send to
    /// it, so check who a datagram came from when that matters.
    ///
    /// # Errors
    ///
    /// As [`UnixListener::bind_abstract`](crate::UnixListener::bind_abstract).
    ///
    /// # Platform-specific behavior
    ///
    /// Linux and Android only; elsewhere [`Error::Io`] with `Unsupported`.
    pub fn bind_abstract<N: AsRef<[u8]>>(name: N) -> Result<UnixDatagram> {
        let name = name.as_ref();
        let addr = abstract_name::socket_addr(name)?;
        StdUnixDatagram::bind_addr(&addr)
            .map(UnixDatagram::from)
            .map_err(|e| Error::bind(Endpoint::UnixDatagramAbstract(name.into()), e))
    }

    /// A socket with no address: it can send, but nobody can reply to it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `socket(2)`.
    pub fn unbound() -> Result<UnixDatagram> {
        Ok(UnixDatagram::from(StdUnixDatagram::unbound()?))
    }

    /// A connected pair of unnamed sockets (`socketpair(2)`), for a parent and the child it
    /// forks or a thread it starts.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `socketpair(2)` fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = msgsock::UnixDatagram::pair()?;
    /// a.send(b"one datagram")?;
    /// assert_eq!(b.recv()?, b"one datagram");
    /// # Ok::<(), msgsock::Error>(())
    /// ```
    pub fn pair() -> Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = StdUnixDatagram::pair()?;
        Ok((UnixDatagram::from(a), UnixDatagram::from(b)))
    }

    /// A socket bound in a private temporary directory and connected to `path`.
    pub(crate) fn connect_new(path: &Path) -> Result<UnixDatagram> {
        let socket = UnixDatagram::bind_temp()?;
        socket.connect(path)?;
        Ok(socket)
    }

    /// A socket msgsock bound at `file`.
    fn new(socket: StdUnixDatagram, file: SocketFile, dir: Option<TempDir>) -> Result<Self> {
        let sndbuf = sys::send_buffer_len(socket.as_fd())?;
        Ok(UnixDatagram::with_limit(
            socket,
            sndbuf.saturating_sub(SNDBUF_OVERHEAD),
            Some(file.path().into()),
            Bound::new(file, dir),
        ))
    }

    fn with_limit(
        socket: StdUnixDatagram,
        send_limit: usize,
        path: Option<PathBuf>,
        bound: Bound,
    ) -> UnixDatagram {
        // A sender's `SO_SNDBUF` bounds a Unix datagram, and root may raise that without limit:
        // only the kernel knows the longest. Up to our own send limit is reserved at once.
        let room = Room {
            most: usize::MAX,
            direct: send_limit,
        };
        UnixDatagram {
            bound,
            inner: Datagram::new(socket, send_limit, room),
            path,
        }
    }

    /// Sets the peer for [`send`](Self::send) and [`recv`](Self::recv) (`connect(2)`).
    ///
    /// # Errors
    ///
    /// [`Error::PathTooLong`] before any system call; [`Error::ConnectionRefused`] when nobody
    /// is bound there, [`Error::NotFound`] for no socket file, [`Error::Connect`] otherwise.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> Result<()> {
        let path = path.as_ref();
        check_len(path)?;
        self.inner
            .socket()
            .connect(path)
            .map_err(|e| Error::connect(Endpoint::UnixDatagram(path.into()), e))
    }

    /// Sets the peer for [`send`](Self::send) and [`recv`](Self::recv) to the socket with the
    /// abstract name `name` (`connect(2)`).
    ///
    /// # Errors
    ///
    /// [`Error::Endpoint`] for a bad name, before any system call; [`Error::ConnectionRefused`]
    /// when no socket has the name, [`Error::Connect`] otherwise. On targets other than Linux
    /// and Android, [`Error::Io`] with `Unsupported`.
    pub fn connect_abstract<N: AsRef<[u8]>>(&self, name: N) -> Result<()> {
        let name = name.as_ref();
        let addr = abstract_name::socket_addr(name)?;
        self.inner
            .socket()
            .connect_addr(&addr)
            .map_err(|e| Error::connect(Endpoint::UnixDatagramAbstract(name.into()), e))
    }

    /// Sends one message as one datagram to the socket at `addr` (`sendto(2)`), a path or an
    /// abstract name (std's `SocketAddr::from_abstract_name` on Linux), as std's
    /// `UnixDatagram::send_to_addr`.
    ///
    /// # Errors
    ///
    /// As [`send_to`](Self::send_to).
    pub fn send_to_addr(&self, msg: &[u8], addr: &SocketAddr) -> Result<()> {
        self.inner.check_send(msg.len())?;
        let socket = self.inner.socket();
        self.inner
            .send_to_with(msg, |m| socket.send_to_addr(m, addr))
    }

    /// As [`try_send_to`](Self::try_send_to), to a path or abstract name `addr`.
    ///
    /// # Errors
    ///
    /// As [`try_send_to`](Self::try_send_to); `InvalidInput` for an unnamed `addr`.
    pub fn try_send_to_addr(&self, msg: &[u8], addr: &SocketAddr) -> Result<()> {
        self.inner
            .try_send_to(msg, Destination::Unix(&UnixAddr::from_std(addr)?), None)
    }

    /// As [`try_send_to_within`](Self::try_send_to_within), to a path or abstract name `addr`.
    ///
    /// # Errors
    ///
    /// As [`try_send_to_addr`](Self::try_send_to_addr).
    pub fn try_send_to_addr_within(
        &self,
        msg: &[u8],
        addr: &SocketAddr,
        wait: Duration,
    ) -> Result<()> {
        self.inner.try_send_to(
            msg,
            Destination::Unix(&UnixAddr::from_std(addr)?),
            Some(wait),
        )
    }

    /// Sends one message as one datagram to the socket at `path` (`sendto(2)`).
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`] before any system call if `msg` exceeds
    /// [`send_limit`](Self::send_limit); [`Error::PathTooLong`]; [`Error::Io`] otherwise.
    ///
    /// It waits while the receiver's queue is full, as long as the write timeout allows (forever
    /// by default): a server answering many peers uses [`try_send_to`](Self::try_send_to)
    /// instead, so that one peer that stops reading delays no one else.
    pub fn send_to<P: AsRef<Path>>(&self, msg: &[u8], path: P) -> Result<()> {
        let path = path.as_ref();
        self.inner.check_send(msg.len())?;
        check_len(path)?;
        let socket = self.inner.socket();
        self.inner.send_to_with(msg, |m| socket.send_to(m, path))
    }

    /// Sends one message as one datagram to the socket at `path` if it can be queued now, and
    /// never waits (`sendto(2)` with `MSG_DONTWAIT`; the socket stays blocking for other calls).
    ///
    /// The policy is per destination: a peer whose receive queue is full gets
    /// [`Error::Io`] with `WouldBlock` at once, and the caller decides what to do (drop the
    /// message and count it, retry later); other peers are unaffected.
    ///
    /// # Errors
    ///
    /// As [`send_to`](Self::send_to), plus `WouldBlock` when the datagram cannot be queued now.
    ///
    /// # Platform-specific behavior
    ///
    /// Linux limits the queue of a receiver connected to another socket to
    /// `net.unix.max_dgram_qlen` datagrams (10 by default). A receiver connected to *this* socket
    /// (as [`connect`](crate::connect)'s clients are) has no such limit. Either way, what a
    /// receiver has not read stays charged to this socket's send buffer (`SO_SNDBUF`, about
    /// 208 KiB by default), so peers that stop reading can fill it (one connected to this socket
    /// alone, or a few holding long datagrams), and then `WouldBlock` comes for every destination
    /// until they read or close. The per-destination policy holds while the buffer has room.
    pub fn try_send_to<P: AsRef<Path>>(&self, msg: &[u8], path: P) -> Result<()> {
        self.send_to_within(msg, path.as_ref(), None)
    }

    /// As [`try_send_to`](Self::try_send_to), but when this socket's *own* send buffer is what is
    /// full (many replies in flight to peers that do read), waits up to `wait` for it to drain
    /// and tries once more. It still never waits for a destination whose queue is full: that is
    /// `WouldBlock` after at most one short wait for nothing.
    ///
    /// # Errors
    ///
    /// As [`try_send_to`](Self::try_send_to).
    pub fn try_send_to_within<P: AsRef<Path>>(
        &self,
        msg: &[u8],
        path: P,
        wait: Duration,
    ) -> Result<()> {
        self.send_to_within(msg, path.as_ref(), Some(wait))
    }

    fn send_to_within(&self, msg: &[u8], path: &Path, wait: Option<Duration>) -> Result<()> {
        check_len(path)?;
        let addr = UnixAddr::from_path(path).map_err(|e| Error::path(path, e))?;
        self.inner.try_send_to(msg, Destination::Unix(&addr), wait)
    }

    /// Receives one datagram into `buf`, replacing its contents; returns its length and the
    /// sender's path (`None` for an unbound sender, and for one with an abstract name: see
    /// [`recv_from_endpoint`](Self::recv_from_endpoint)).
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] for a datagram longer than [`max_message_len`](Self::max_message_len);
    /// [`Error::Io`] otherwise.
    pub fn recv_from(&self, buf: &mut Vec<u8>) -> Result<(usize, Option<PathBuf>)> {
        let (n, from) = self.recv_from_endpoint(buf)?;
        Ok((n, from.and_then(|e| e.as_unix_path().map(PathBuf::from))))
    }

    /// Receives one datagram into `buf`, replacing its contents; returns its length and the
    /// sender as an endpoint to reply to: `unixgram:PATH`, or `unixgram:@NAME` for a sender
    /// with an abstract name.
    ///
    /// An unnamed sender (an unbound socket, or one end of a [`pair`](Self::pair)) is `None`:
    /// it has no address at all, so nothing can be sent back to it.
    ///
    /// # Errors
    ///
    /// As [`recv_from`](Self::recv_from).
    pub fn recv_from_endpoint(&self, buf: &mut Vec<u8>) -> Result<(usize, Option<Endpoint>)> {
        let (n, from) = self.inner.recv_from::<UnixAddr>(buf)?;
        Ok((n, from.and_then(sender_endpoint)))
    }

    /// Sends one message as one datagram to the connected peer with the descriptors `fds`
    /// attached (`sendmsg(2)` with `SCM_RIGHTS`); the receiver gets them with this datagram
    /// ([`recv_with_fds`](Self::recv_with_fds)), as new descriptors of the same open files.
    ///
    /// # Errors
    ///
    /// [`Error::TooManyFds`] for more than 253 descriptors and [`Error::MessageTooLarge`],
    /// both before any system call; otherwise as [`send`](Self::send).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsFd;
    ///
    /// let (a, b) = msgsock::UnixDatagram::pair()?;
    /// let file = tempfile::tempfile()?;
    /// a.send_with_fds(b"a file", &[file.as_fd()])?;
    /// let (msg, fds) = b.recv_with_fds()?;
    /// assert_eq!((msg.as_slice(), fds.len()), (&b"a file"[..], 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_with_fds(&self, msg: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        self.inner.send_with_fds(msg, fds, None, None)
    }

    /// Sends one message as one datagram to the socket at `path` with the descriptors `fds`
    /// attached (`sendmsg(2)` with `SCM_RIGHTS`). It waits as [`send_to`](Self::send_to) does.
    ///
    /// # Errors
    ///
    /// As [`send_with_fds`](Self::send_with_fds), and [`Error::PathTooLong`].
    pub fn send_to_with_fds<P: AsRef<Path>>(
        &self,
        msg: &[u8],
        fds: &[BorrowedFd<'_>],
        path: P,
    ) -> Result<()> {
        let path = path.as_ref();
        check_len(path)?;
        let addr = UnixAddr::from_path(path).map_err(|e| Error::path(path, e))?;
        self.inner.send_with_fds(msg, fds, Some(&addr), None)
    }

    /// As [`try_send_to_addr_within`](Self::try_send_to_addr_within) (never waits for the
    /// destination's queue, at most `wait` for this socket's own send buffer), with the
    /// descriptors `fds` attached: how a server answers with descriptors without letting one
    /// peer that stopped reading delay the others.
    ///
    /// # Errors
    ///
    /// As [`send_with_fds`](Self::send_with_fds), plus `WouldBlock` when the datagram cannot be
    /// queued now, and `InvalidInput` for an unnamed `addr`.
    pub fn try_send_to_addr_with_fds_within(
        &self,
        msg: &[u8],
        fds: &[BorrowedFd<'_>],
        addr: &SocketAddr,
        wait: Duration,
    ) -> Result<()> {
        let addr = UnixAddr::from_std(addr)?;
        self.inner
            .send_with_fds(msg, fds, Some(&addr), Some(Some(wait)))
    }

    /// Receives one datagram into a new `Vec`, with the descriptors that were sent with it
    /// (close-on-exec), in the order they were sent.
    ///
    /// # Errors
    ///
    /// As [`recv_into_with_fds`](Self::recv_into_with_fds).
    pub fn recv_with_fds(&self) -> Result<(Vec<u8>, Vec<OwnedFd>)> {
        let (mut buf, mut fds) = (Vec::new(), Vec::new());
        self.recv_into_with_fds(&mut buf, &mut fds)?;
        Ok((buf, fds))
    }

    /// Receives one datagram into `buf` and the descriptors sent with it into `fds`
    /// (close-on-exec, `MSG_CMSG_CLOEXEC`), replacing the contents of both; returns its length.
    /// A plain [`recv`](Self::recv) takes no descriptors: the kernel closes those of its
    /// datagram.
    ///
    /// # Errors
    ///
    /// [`Error::FdsTruncated`] when the datagram lost descriptors (the control data was
    /// truncated, for example at this process's descriptor limit): the datagram is dropped, the
    /// descriptors of it that arrived are closed, and the next call receives the next one.
    /// Otherwise as [`recv_into`](Self::recv_into); descriptors of a datagram refused as
    /// [`Error::Truncated`] are closed too.
    pub fn recv_into_with_fds(&self, buf: &mut Vec<u8>, fds: &mut Vec<OwnedFd>) -> Result<usize> {
        self.inner
            .recv_with_fds::<()>(buf, fds, false)
            .map(|(n, _)| n)
    }

    /// As [`recv_into_with_fds`](Self::recv_into_with_fds), and the sender as
    /// [`recv_from_endpoint`](Self::recv_from_endpoint) gives it.
    ///
    /// # Errors
    ///
    /// As [`recv_into_with_fds`](Self::recv_into_with_fds).
    pub fn recv_from_with_fds(
        &self,
        buf: &mut Vec<u8>,
        fds: &mut Vec<OwnedFd>,
    ) -> Result<(usize, Option<Endpoint>)> {
        let (n, from) = self.inner.recv_with_fds::<UnixAddr>(buf, fds, true)?;
        Ok((n, from.and_then(sender_endpoint)))
    }

    /// Sends one message as one datagram to the connected peer (`send(2)`).
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`] before any system call if the message exceeds
    /// [`send_limit`](Self::send_limit); [`Error::Io`] otherwise (`NotConnected` if not
    /// connected, `ConnectionRefused` once nobody is bound at the peer's path).
    pub fn send(&self, msg: &[u8]) -> Result<()> {
        self.inner.send(msg)
    }

    /// Receives one datagram into `buf`, replacing its contents, and returns its length.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the datagram was longer than
    /// [`max_message_len`](Self::max_message_len) (it is discarded, never returned cut short);
    /// [`Error::Io`] otherwise, with `WouldBlock` on a read timeout.
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

    /// The largest message one datagram of this socket can carry: its `SO_SNDBUF` less the
    /// kernel's overhead, read when the socket was made.
    pub fn send_limit(&self) -> usize {
        self.inner.send_limit()
    }

    /// The largest datagram `recv` accepts; a longer one is [`Error::Truncated`]. Defaults to
    /// [`send_limit`](Self::send_limit), so peers of the same kind always fit.
    pub fn max_message_len(&self) -> usize {
        self.inner.max_message_len()
    }

    /// Sets the largest datagram `recv` accepts, from the next call on. Any value works,
    /// `usize::MAX` included: memory follows the datagram that arrives, never the limit.
    /// [`send_limit`](Self::send_limit) bytes are reserved at once (never zeroed); above that
    /// limit, each receive first peeks at the datagram's length (`MSG_PEEK | MSG_TRUNC` on
    /// Linux), one more system call, and reserves the larger of the two. Handles of one socket
    /// receiving at once (`try_clone`) each get whole datagrams; but should one take the
    /// datagram another peeked, and the next be longer than `send_limit` (only a peer with a
    /// larger send buffer sends those), that next one is cut short, reported
    /// [`Truncated`](Error::Truncated), and lost.
    pub fn set_max_message_len(&mut self, max: usize) -> &mut Self {
        self.inner.set_max_message_len(max);
        self
    }

    /// Sets the read timeout (`SO_RCVTIMEO`); `None` blocks forever. A receive that waits
    /// longer for a datagram fails with `WouldBlock`, and consumes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], for example `InvalidInput` for a zero duration.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        Ok(self.inner.socket().set_read_timeout(timeout)?)
    }

    /// Sets the write timeout (`SO_SNDTIMEO`); `None` blocks forever. A send waits while the
    /// receiver's queue is full, so a server that must not stall on one slow client sets this.
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
    /// clone): receives, and sends to a full queue, then fail with `WouldBlock`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `fcntl(2)`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        Ok(self.inner.socket().set_nonblocking(nonblocking)?)
    }

    /// Takes the pending socket error (`SO_ERROR`), clearing it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `getsockopt(2)`.
    pub fn take_error(&self) -> Result<Option<io::Error>> {
        Ok(self.inner.socket().take_error()?)
    }

    /// The path this socket is bound at: as given to `bind`, or for a socket made from a
    /// descriptor, what `getsockname(2)` reported then; `None` if it has none.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The bound address (`getsockname(2)`); unnamed for an unbound socket.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `getsockname(2)`.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.inner.socket().local_addr()?)
    }

    /// The connected peer's address (`getpeername(2)`).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with `NotConnected` if not connected.
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        Ok(self.inner.socket().peer_addr()?)
    }

    /// The bound endpoint, `unixgram:PATH`, or `unixgram:@NAME` for an abstract name.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with `NotFound` for a socket with neither.
    pub fn local_endpoint(&self) -> Result<Endpoint> {
        if self.path.is_none() {
            if let Some(name) = abstract_name::name_of(&self.local_addr()?) {
                return Ok(Endpoint::UnixDatagramAbstract(name.into()));
            }
        }
        self.local_path().map(Endpoint::UnixDatagram)
    }

    /// [`path`](Self::path), or `NotFound`.
    pub(crate) fn local_path(&self) -> Result<PathBuf> {
        self.path
            .clone()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "socket is not bound").into())
    }

    /// A second handle to the same socket (`dup(2)`), with the same limits. The original keeps
    /// ownership of the socket file: it is removed when the original is dropped, and never by
    /// a clone.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `dup(2)` fails.
    pub fn try_clone(&self) -> Result<UnixDatagram> {
        Ok(UnixDatagram {
            bound: Bound::default(),
            inner: self.inner.try_clone()?,
            path: self.path.clone(),
        })
    }

    /// The wrapped std socket.
    pub fn get_ref(&self) -> &StdUnixDatagram {
        self.inner.socket()
    }

    /// The wrapped std socket. Its socket file (and private directory), if this handle owns
    /// them, stay in place for good, since the socket is still bound there.
    pub fn into_inner(self) -> StdUnixDatagram {
        let UnixDatagram { bound, inner, .. } = self;
        bound.keep();
        inner.into_socket()
    }
}

/// The endpoint to answer a datagram's sender at: `unixgram:PATH`, `unixgram:@NAME`, or `None`
/// for an unnamed sender.
fn sender_endpoint(addr: UnixAddr) -> Option<Endpoint> {
    match addr.path() {
        Some(path) => Some(Endpoint::UnixDatagram(path.into())),
        None => addr
            .abstract_name()
            .map(|n| Endpoint::UnixDatagramAbstract(n.into())),
    }
}

crate::channel::datagram_channel!(UnixDatagram);

impl From<StdUnixDatagram> for UnixDatagram {
    /// Wraps a std socket, bound or not, connected or not, with limits from its `SO_SNDBUF`.
    /// The socket-file rules do not apply: a file it is bound at stays in place on drop.
    fn from(socket: StdUnixDatagram) -> UnixDatagram {
        let send_limit = sys::send_buffer_len(socket.as_fd())
            .map_or(FALLBACK_SEND_LIMIT, |b| b.saturating_sub(SNDBUF_OVERHEAD));
        let path = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(PathBuf::from));
        UnixDatagram::with_limit(socket, send_limit, path, Bound::default())
    }
}

impl From<OwnedFd> for UnixDatagram {
    /// Adopts a Unix datagram socket as `From<std::os::unix::net::UnixDatagram>` does: no
    /// socket file is removed on drop.
    fn from(fd: OwnedFd) -> UnixDatagram {
        UnixDatagram::from(StdUnixDatagram::from(fd))
    }
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // std's Debug shows the fd and both addresses.
        fmt::Debug::fmt(self.inner.socket(), f)
    }
}

impl AsFd for UnixDatagram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.socket().as_fd()
    }
}

impl From<UnixDatagram> for OwnedFd {
    /// Hands the socket over; its file (and private directory), if this handle owns them, then
    /// stay in place.
    fn from(socket: UnixDatagram) -> OwnedFd {
        socket.into_inner().into()
    }
}

crate::fd::raw_fd_traits!(UnixDatagram);
