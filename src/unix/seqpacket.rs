//! Unix-domain `SOCK_SEQPACKET` sockets (`unixpacket:`): connections, as streams are, that keep
//! message boundaries, as datagrams do. One message is one packet, with no length prefix.
//!
//! The connected socket sends and receives through the datagram core ([`Datagram`]): the same
//! limits, `EMSGSIZE` as [`Error::MessageTooLarge`] and truncation detection (`MSG_TRUNC`). What
//! SEQPACKET adds is end of file, and there a 0-byte `recvmsg(2)` means either an empty packet or
//! a peer that closed. Linux sets no `MSG_EOR` to tell them apart, so every socket here asks for
//! `SO_TIMESTAMP`: each packet then brings a timestamp control message and end of file brings
//! none. (`SO_PASSCRED` would tell them apart too, but it autobinds an unbound client to an
//! abstract name on its first send.)

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{SocketAddr, UnixListener as StdUnixListener, UnixStream as StdSocket};
use std::path::Path;
use std::time::Duration;

use crate::dgram::{Datagram, Room};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::shutdown::ShutdownHandle;
use crate::sys::{self, SocketType};
use crate::unix::abstract_name;
use crate::unix::datagram::{FALLBACK_SEND_LIMIT, SNDBUF_OVERHEAD};
use crate::unix::socket_file::{check_len, private_temp_dir, SocketFile};
use crate::unix::{UnixListener, DEFAULT_SOCKET_MODE};

/// A listening Unix-domain `SOCK_SEQPACKET` socket (`unixpacket:`), whose
/// [`accept`](Self::accept) gives [`UnixSeqpacket`] connections.
///
/// Bound to a path, it follows the socket-file rules of [`UnixListener`]:
/// a stale socket is replaced, a live one (of any type) is [`Error::AddrInUse`], anything that
/// is not a socket is never touched, the file is created owner-only (mode 0600) unless
/// [`bind_with_mode`](Self::bind_with_mode) asks otherwise, a lock file serialises racing
/// servers, and the last handle to be dropped removes the file while it is still its own.
///
/// # Examples
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// use msgsock::{UnixSeqpacket, UnixSeqpacketListener};
///
/// let dir = tempfile::tempdir()?;
/// let listener = UnixSeqpacketListener::bind(dir.path().join("app.sock"))?;
/// let client = UnixSeqpacket::connect(listener.path())?;
/// let (server, _) = listener.accept()?;
/// client.send(b"one packet")?;
/// assert_eq!(server.recv()?.as_deref(), Some(&b"one packet"[..]));
/// drop(client);
/// assert_eq!(server.recv()?, None); // the peer closed
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct UnixSeqpacketListener {
    // A `UnixListener` over a SEQPACKET socket: accept(2), the uid check, the shutdown handle
    // and the socket file's life do not depend on the socket type, so they exist once.
    inner: UnixListener,
}

impl UnixSeqpacketListener {
    /// Binds a listening `SOCK_SEQPACKET` socket at `path` with mode 0600 (`socket(2)`,
    /// `bind(2)`, `listen(2)`).
    ///
    /// # Errors
    ///
    /// As [`UnixListener::bind`], with errors naming the endpoint `unixpacket:PATH`.
    pub fn bind<P: AsRef<Path>>(path: P) -> Result<UnixSeqpacketListener> {
        UnixSeqpacketListener::bind_with_mode(path, DEFAULT_SOCKET_MODE)
    }

    /// Binds at `path` with permission bits `mode`. Clients need write permission on the file.
    ///
    /// # Errors
    ///
    /// As [`UnixListener::bind_with_mode`].
    pub fn bind_with_mode<P: AsRef<Path>>(path: P, mode: u32) -> Result<UnixSeqpacketListener> {
        let (socket, file) = SocketFile::bind(path.as_ref(), mode, SocketType::SeqPacket)
            .map_err(|e| e.for_unix_type(Endpoint::UnixSeqpacket))?;
        UnixListener::listen(socket, file, None).map(UnixSeqpacketListener::from)
    }

    /// Binds at a fresh path in a new private temporary directory, removed when the listener is
    /// dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the directory cannot be made; [`Error::PathTooLong`] if the temporary
    /// directory's path is too long for a socket.
    pub fn bind_temp() -> Result<UnixSeqpacketListener> {
        let dir = private_temp_dir()?;
        let (socket, file) = SocketFile::bind_private(
            &dir.path().join("sock"),
            DEFAULT_SOCKET_MODE,
            SocketType::SeqPacket,
        )?;
        UnixListener::listen(socket, file, Some(dir)).map(UnixSeqpacketListener::from)
    }

    /// Binds a listening socket to the abstract name `name` (`unixpacket:@NAME`, Linux's
    /// abstract namespace). No file is made or removed.
    ///
    /// An abstract socket has no file mode, so any process in the network namespace could
    /// connect: as [`UnixListener::bind_abstract`]'s, this listener admits only peers running as
    /// its own effective uid, checked with `SO_PEERCRED` before [`accept`](Self::accept) hands a
    /// connection out, unless [`allow_any_uid`](Self::allow_any_uid) opens it.
    ///
    /// # Errors
    ///
    /// As [`UnixListener::bind_abstract`], naming the endpoint `unixpacket:@NAME`.
    ///
    /// # Platform-specific behavior
    ///
    /// Linux and Android only; elsewhere [`Error::Io`] with `Unsupported`.
    pub fn bind_abstract<N: AsRef<[u8]>>(name: N) -> Result<UnixSeqpacketListener> {
        let name = name.as_ref();
        let addr = abstract_name::unix_addr(name)?;
        let endpoint = || Endpoint::UnixSeqpacketAbstract(name.into());
        let socket = sys::unix_socket(SocketType::SeqPacket, false)?;
        sys::bind_unix_addr(socket.as_fd(), &addr).map_err(|e| Error::bind(endpoint(), e))?;
        sys::listen(socket.as_fd()).map_err(|e| Error::bind(endpoint(), e))?;
        let inner = UnixListener::from(StdUnixListener::from(socket)).only_own_uid();
        Ok(UnixSeqpacketListener { inner })
    }

    /// Lets [`accept`](Self::accept) hand out connections from every uid: the explicit choice to
    /// open an abstract listener to all local users (who can be told apart with
    /// [`UnixSeqpacket::peer_cred`]). It changes nothing on a listener bound to a file.
    pub fn allow_any_uid(self) -> UnixSeqpacketListener {
        UnixSeqpacketListener {
            inner: self.inner.allow_any_uid(),
        }
    }

    /// Accepts a connection (`accept(2)`), returning it and the peer's address.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `accept(2)`, for example `EMFILE` when out of file descriptors;
    /// [`Error::Shutdown`] once a [`ShutdownHandle`] of this listener was used.
    ///
    /// On a listener from [`bind_abstract`](Self::bind_abstract), a peer of another uid is
    /// closed unseen and `accept` goes on with the next.
    pub fn accept(&self) -> Result<(UnixSeqpacket, SocketAddr)> {
        let (socket, addr) = self.inner.accept()?;
        let socket = StdSocket::from(OwnedFd::from(socket));
        Ok((UnixSeqpacket::new(socket)?, addr))
    }

    /// Whether a connection accepted on this socket (by the async driver too) may be handed
    /// out: see [`UnixListener::bind_abstract`].
    #[cfg(feature = "tokio")]
    pub(crate) fn admits(&self, socket: &impl AsFd) -> bool {
        self.inner.admits(socket)
    }

    /// A handle that stops this listener from another thread: see [`ShutdownHandle`] and
    /// [`UnixListener::shutdown_handle`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the socket pair cannot be made or the mode set.
    pub fn shutdown_handle(&self) -> Result<ShutdownHandle> {
        self.inner.shutdown_handle()
    }

    /// An iterator over accepted connections, which ends once the listener is shut down with a
    /// [`ShutdownHandle`].
    pub fn incoming(&self) -> SeqpacketIncoming<'_> {
        SeqpacketIncoming { listener: self }
    }

    /// The path the socket is bound at, as given to `bind`; empty for an abstract name or a
    /// listener made from a descriptor that has no path.
    pub fn path(&self) -> &Path {
        self.inner.path()
    }

    /// The bound address (`getsockname(2)`).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `getsockname(2)`.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The bound endpoint, `unixpacket:PATH`, or `unixpacket:@NAME` for an abstract name.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with `NotFound` for a listener made from a descriptor with neither.
    pub fn local_endpoint(&self) -> Result<Endpoint> {
        if self.path().as_os_str().is_empty() {
            return endpoint_of(&self.local_addr()?);
        }
        Ok(Endpoint::UnixSeqpacket(self.path().into()))
    }

    /// Moves the listener into or out of non-blocking mode: `accept` then returns `WouldBlock`
    /// instead of waiting. Clones share the mode.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `fcntl(2)`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        self.inner.set_nonblocking(nonblocking)
    }

    /// A second handle to the same listening socket (`dup(2)`), sharing the socket file (removed
    /// with the last of them), the non-blocking mode and the [`ShutdownHandle`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `dup(2)`, for example `EMFILE`.
    pub fn try_clone(&self) -> Result<UnixSeqpacketListener> {
        self.inner.try_clone().map(UnixSeqpacketListener::from)
    }

    /// Takes the pending socket error (`SO_ERROR`), clearing it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `getsockopt(2)`.
    pub fn take_error(&self) -> Result<Option<io::Error>> {
        self.inner.take_error()
    }
}

impl From<UnixListener> for UnixSeqpacketListener {
    fn from(inner: UnixListener) -> UnixSeqpacketListener {
        UnixSeqpacketListener { inner }
    }
}

impl From<OwnedFd> for UnixSeqpacketListener {
    /// Adopts a listening Unix `SOCK_SEQPACKET` socket as it is: there is no socket file of
    /// ours to remove, and it admits every uid (the descriptor's owner chose who may connect).
    fn from(fd: OwnedFd) -> UnixSeqpacketListener {
        UnixListener::from(fd).into()
    }
}

impl From<UnixSeqpacketListener> for OwnedFd {
    /// Hands the socket over, in the blocking mode last asked for; its file (and private
    /// directory) then stay in place, since the socket still listens there.
    fn from(listener: UnixSeqpacketListener) -> OwnedFd {
        listener.inner.into()
    }
}

impl fmt::Debug for UnixSeqpacketListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixSeqpacketListener")
            .field("fd", &self.as_raw_fd())
            .field("local", &self.local_addr().ok())
            .finish()
    }
}

impl AsFd for UnixSeqpacketListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

crate::fd::raw_fd_traits!(UnixSeqpacketListener);

/// An iterator over a [`UnixSeqpacketListener`]'s connections, from
/// [`UnixSeqpacketListener::incoming`].
#[derive(Debug)]
pub struct SeqpacketIncoming<'a> {
    listener: &'a UnixSeqpacketListener,
}

impl Iterator for SeqpacketIncoming<'_> {
    type Item = Result<UnixSeqpacket>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.listener.accept() {
            Err(Error::Shutdown) => None,
            accepted => Some(accepted.map(|(s, _)| s)),
        }
    }
}

impl<'a> IntoIterator for &'a UnixSeqpacketListener {
    type Item = Result<UnixSeqpacket>;
    type IntoIter = SeqpacketIncoming<'a>;

    fn into_iter(self) -> SeqpacketIncoming<'a> {
        self.incoming()
    }
}

/// A connected Unix-domain `SOCK_SEQPACKET` socket: whole messages, one per packet, in order,
/// with end of file when the peer closes.
///
/// It is a [`Channel`](crate::Channel) as it is: no [`Connection`](crate::Connection) and no
/// length prefix, since the kernel keeps the boundaries. A peer in another language sends each
/// message with one `send(2)` (Python: `socket.socket(AF_UNIX, SOCK_SEQPACKET)`).
///
/// - A message longer than [`send_limit`](Self::send_limit) is [`Error::MessageTooLarge`]
///   before any system call.
/// - A packet longer than [`max_message_len`](Self::max_message_len) is [`Error::Truncated`]:
///   it is discarded whole and the connection goes on with the next packet, as on the datagram
///   types, since the boundaries are intact.
/// - [`recv`](Self::recv) returns `Ok(None)` once the peer closed; an empty message is
///   `Some` of an empty `Vec`, never taken for end of file.
/// - A send never raises `SIGPIPE`: to a closed peer it is [`Error::Io`] with `BrokenPipe`.
/// - Descriptors a peer attaches are closed by the kernel, never installed here.
pub struct UnixSeqpacket {
    inner: Datagram<StdSocket>,
}

impl UnixSeqpacket {
    /// Connects to the `SOCK_SEQPACKET` listener at `path` (`socket(2)`, `connect(2)`).
    ///
    /// # Errors
    ///
    /// As [`UnixStream::connect`](crate::UnixStream::connect), naming the endpoint
    /// `unixpacket:PATH`; a socket of another type at `path` is [`Error::Connect`] with the
    /// OS error `EPROTOTYPE`.
    pub fn connect<P: AsRef<Path>>(path: P) -> Result<UnixSeqpacket> {
        let path = path.as_ref();
        check_len(path)?;
        let socket = sys::unix_socket(SocketType::SeqPacket, false)?;
        sys::connect_unix(socket.as_fd(), path)
            .map_err(|e| Error::connect(Endpoint::UnixSeqpacket(path.into()), e))?;
        UnixSeqpacket::new(StdSocket::from(socket))
    }

    /// Connects to the listener at `path` within `timeout`, as
    /// [`UnixStream::connect_timeout`](crate::UnixStream::connect_timeout) does for streams.
    ///
    /// # Errors
    ///
    /// As [`UnixStream::connect_timeout`](crate::UnixStream::connect_timeout), naming the
    /// endpoint `unixpacket:PATH`.
    pub fn connect_timeout<P: AsRef<Path>>(path: P, timeout: Duration) -> Result<UnixSeqpacket> {
        let path = path.as_ref();
        let endpoint = Endpoint::UnixSeqpacket(path.into());
        let fd = crate::unix::stream::connect_path_timeout(
            SocketType::SeqPacket,
            path,
            timeout,
            endpoint,
        )?;
        UnixSeqpacket::new(StdSocket::from(fd))
    }

    /// Connects to the listener with the abstract name `name` (`unixpacket:@NAME`).
    ///
    /// # Errors
    ///
    /// As [`UnixStream::connect_abstract`](crate::UnixStream::connect_abstract), naming the
    /// endpoint `unixpacket:@NAME`.
    ///
    /// # Platform-specific behavior
    ///
    /// Linux and Android only; elsewhere [`Error::Io`] with `Unsupported`.
    pub fn connect_abstract<N: AsRef<[u8]>>(name: N) -> Result<UnixSeqpacket> {
        let name = name.as_ref();
        let addr = abstract_name::unix_addr(name)?;
        let socket = sys::unix_socket(SocketType::SeqPacket, false)?;
        sys::connect_unix_addr(socket.as_fd(), &addr)
            .map_err(|e| Error::connect(Endpoint::UnixSeqpacketAbstract(name.into()), e))?;
        UnixSeqpacket::new(StdSocket::from(socket))
    }

    /// Connects to the listener with the abstract name `name` within `timeout`, as
    /// [`UnixStream::connect_abstract_timeout`](crate::UnixStream::connect_abstract_timeout)
    /// does for streams.
    ///
    /// # Errors
    ///
    /// As [`UnixStream::connect_abstract_timeout`](crate::UnixStream::connect_abstract_timeout),
    /// naming the endpoint `unixpacket:@NAME`.
    ///
    /// # Platform-specific behavior
    ///
    /// Linux and Android only; elsewhere [`Error::Io`] with `Unsupported`.
    pub fn connect_abstract_timeout<N: AsRef<[u8]>>(
        name: N,
        timeout: Duration,
    ) -> Result<UnixSeqpacket> {
        let name = name.as_ref();
        let addr = abstract_name::socket_addr(name)?;
        let endpoint = Endpoint::UnixSeqpacketAbstract(name.into());
        let fd = crate::unix::stream::connect_addr_timeout(
            SocketType::SeqPacket,
            &addr,
            timeout,
            endpoint,
        )?;
        UnixSeqpacket::new(StdSocket::from(fd))
    }

    /// A connected pair of sockets (`socketpair(2)`), for a parent and its child or two threads.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `socketpair(2)` fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// let (a, b) = msgsock::UnixSeqpacket::pair()?;
    /// a.send(b"")?;
    /// assert_eq!(b.recv()?, Some(Vec::new())); // an empty message, not end of file
    /// # }
    /// # Ok::<(), msgsock::Error>(())
    /// ```
    pub fn pair() -> Result<(UnixSeqpacket, UnixSeqpacket)> {
        let (a, b) = sys::unix_pair(SocketType::SeqPacket)?;
        Ok((
            UnixSeqpacket::new(StdSocket::from(a))?,
            UnixSeqpacket::new(StdSocket::from(b))?,
        ))
    }

    /// A socket msgsock made or accepted: `SO_TIMESTAMP` set, `SIGPIPE` off.
    fn new(socket: StdSocket) -> Result<UnixSeqpacket> {
        sys::set_timestamp(socket.as_fd())?;
        sys::no_sigpipe(socket.as_fd())?;
        let sndbuf = sys::send_buffer_len(socket.as_fd())?;
        Ok(UnixSeqpacket::with_limit(
            socket,
            sndbuf.saturating_sub(SNDBUF_OVERHEAD),
        ))
    }

    fn with_limit(socket: StdSocket, send_limit: usize) -> UnixSeqpacket {
        // Linux bounds a packet by the sender's `SO_SNDBUF`, as a Unix datagram: only the
        // kernel knows the longest, and up to our own send limit is reserved at once.
        let room = Room {
            most: usize::MAX,
            direct: send_limit,
        };
        UnixSeqpacket {
            inner: Datagram::new(socket, send_limit, room),
        }
    }

    /// Sends one message as one packet (`send(2)` with `MSG_NOSIGNAL`).
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`] before any system call if the message exceeds
    /// [`send_limit`](Self::send_limit); [`Error::Io`] otherwise, with `BrokenPipe` once the
    /// peer has closed and `WouldBlock` on a write timeout.
    pub fn send(&self, msg: &[u8]) -> Result<()> {
        self.inner.send(msg)
    }

    /// Receives one packet into `buf`, replacing its contents, and returns its length; `None`
    /// once the peer has closed (`recvmsg(2)`).
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the packet was longer than
    /// [`max_message_len`](Self::max_message_len) (it is discarded, never returned cut short,
    /// and the next receive gets the next packet); [`Error::Io`] otherwise, with `WouldBlock`
    /// on a read timeout.
    pub fn recv_into(&self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        self.inner.recv_packet_into(buf)
    }

    /// Receives one packet into a new `Vec`; `None` once the peer has closed.
    ///
    /// # Errors
    ///
    /// As [`recv_into`](Self::recv_into).
    pub fn recv(&self) -> Result<Option<Vec<u8>>> {
        let mut buf = Vec::new();
        Ok(self.recv_into(&mut buf)?.map(|_| buf))
    }

    /// Sends one message as one packet with the descriptors `fds` attached (`SCM_RIGHTS`): the
    /// peer receives them with this message and no other.
    ///
    /// # Errors
    ///
    /// [`Error::TooManyFds`] for more than 253 descriptors (Linux's `SCM_MAX_FD`), before
    /// anything is sent; otherwise as [`send`](Self::send).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsFd;
    ///
    /// let (a, b) = msgsock::UnixSeqpacket::pair()?;
    /// let file = tempfile::tempfile()?;
    /// a.send_with_fds(b"a file", &[file.as_fd()])?;
    /// let (msg, fds) = b.recv_with_fds()?.expect("a packet");
    /// assert_eq!((msg.as_slice(), fds.len()), (&b"a file"[..], 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_with_fds(&self, msg: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        self.inner.send_with_fds(msg, fds, None, None)
    }

    /// Receives one packet into a new `Vec`, with the descriptors sent with it; `None` once the
    /// peer has closed.
    ///
    /// # Errors
    ///
    /// As [`recv_into_with_fds`](Self::recv_into_with_fds).
    pub fn recv_with_fds(&self) -> Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
        crate::fd::recv_new_with_fds(|buf, fds| self.recv_into_with_fds(buf, fds))
    }

    /// Receives one packet into `buf` and the descriptors sent with it into `fds`
    /// (close-on-exec, `MSG_CMSG_CLOEXEC`), replacing the contents of both; returns its length,
    /// or `None` once the peer has closed. A plain [`recv`](Self::recv) takes no descriptors: the
    /// kernel closes those of its packet.
    ///
    /// # Errors
    ///
    /// [`Error::FdsTruncated`] when the packet lost descriptors (the control data was truncated,
    /// for example at this process's descriptor limit): the packet is dropped, the descriptors of
    /// it that arrived are closed, and the next call receives the next one. Otherwise as
    /// [`recv_into`](Self::recv_into).
    pub fn recv_into_with_fds(
        &self,
        buf: &mut Vec<u8>,
        fds: &mut Vec<OwnedFd>,
    ) -> Result<Option<usize>> {
        self.inner.recv_packet_with_fds(buf, fds)
    }

    /// The largest message one packet of this socket can carry: its `SO_SNDBUF` less the
    /// kernel's overhead, read when the socket was made.
    pub fn send_limit(&self) -> usize {
        self.inner.send_limit()
    }

    /// The largest packet `recv` accepts; a longer one is [`Error::Truncated`]. Defaults to
    /// [`send_limit`](Self::send_limit), so peers of the same kind always fit.
    pub fn max_message_len(&self) -> usize {
        self.inner.max_message_len()
    }

    /// Sets the largest packet `recv` accepts, from the next call on. Any value works,
    /// `usize::MAX` included: memory follows the packet that arrives, as on
    /// [`UnixDatagram::set_max_message_len`](crate::UnixDatagram::set_max_message_len).
    pub fn set_max_message_len(&mut self, max: usize) -> &mut Self {
        self.inner.set_max_message_len(max);
        self
    }

    /// Sets the read timeout (`SO_RCVTIMEO`); `None` blocks forever. A receive that waits
    /// longer for a packet fails with `WouldBlock`; the peer's close is `None` at once, whatever
    /// the timeout.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], for example `InvalidInput` for a zero duration.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        Ok(self.inner.socket().set_read_timeout(timeout)?)
    }

    /// Sets the write timeout (`SO_SNDTIMEO`); `None` blocks forever. A send waits while the
    /// peer is behind (what it has not read yet still counts against this socket's send
    /// buffer), so a sender that must not stall on a slow peer sets this; a send that times out
    /// sent nothing of its packet.
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
    /// clone): receives and sends then fail with `WouldBlock` instead of waiting.
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

    /// Shuts down the read, write, or both halves (`shutdown(2)`): after `Shutdown::Write` the
    /// peer's `recv` returns `None`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `shutdown(2)`, for example `NotConnected`.
    pub fn shutdown(&self, how: Shutdown) -> Result<()> {
        Ok(self.inner.socket().shutdown(how)?)
    }

    /// The credentials of the process at the other end, as they were when it connected
    /// (`SO_PEERCRED`).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `getsockopt(2)`.
    ///
    /// # Platform-specific behavior
    ///
    /// Linux and Android only.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn peer_cred(&self) -> Result<crate::PeerCred> {
        let (pid, uid, gid) = sys::peer_cred(self.as_fd())?;
        Ok(crate::PeerCred { pid, uid, gid })
    }

    /// This end's address (`getsockname(2)`): unnamed for a client.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `getsockname(2)`.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.inner.socket().local_addr()?)
    }

    /// The peer's address (`getpeername(2)`): a listener's path or abstract name for a client.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `getpeername(2)`, for example `NotConnected`.
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        Ok(self.inner.socket().peer_addr()?)
    }

    /// This end's endpoint, `unixpacket:PATH` or `unixpacket:@NAME`: on the server side of an
    /// accepted connection, the listener's.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with `NotFound` for an unnamed socket (a client, one end of a
    /// [`pair`](Self::pair)).
    pub fn local_endpoint(&self) -> Result<Endpoint> {
        endpoint_of(&self.local_addr()?)
    }

    /// The peer's endpoint, `unixpacket:PATH` or `unixpacket:@NAME`: for a client, the
    /// listener's.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with `NotFound` for an unnamed peer (a client, as its server sees it).
    pub fn peer_endpoint(&self) -> Result<Endpoint> {
        endpoint_of(&self.peer_addr()?)
    }

    /// A second handle to the same socket (`dup(2)`), with the same limits: one thread sends
    /// while another receives, and each packet goes to one receive whole.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `dup(2)` fails.
    pub fn try_clone(&self) -> Result<UnixSeqpacket> {
        Ok(UnixSeqpacket {
            inner: self.inner.try_clone()?,
        })
    }
}

impl crate::channel::Channel for UnixSeqpacket {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        UnixSeqpacket::send(self, msg)
    }
    fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        UnixSeqpacket::recv_into(self, buf)
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        UnixSeqpacket::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        UnixSeqpacket::set_write_timeout(self, timeout)
    }
    fn try_clone(&self) -> Result<Self> {
        UnixSeqpacket::try_clone(self)
    }
}

/// The endpoint of a `SOCK_SEQPACKET` socket's address; `NotFound` for an unnamed one.
fn endpoint_of(addr: &SocketAddr) -> Result<Endpoint> {
    if let Some(path) = addr.as_pathname() {
        return Ok(Endpoint::UnixSeqpacket(path.into()));
    }
    match abstract_name::name_of(addr) {
        Some(name) => Ok(Endpoint::UnixSeqpacketAbstract(name.into())),
        None => Err(io::Error::new(io::ErrorKind::NotFound, "socket has no address").into()),
    }
}

impl From<OwnedFd> for UnixSeqpacket {
    /// Adopts a connected Unix `SOCK_SEQPACKET` socket, with limits from its `SO_SNDBUF`, and
    /// sets `SO_TIMESTAMP` on it (which the peer does not see) so that an empty packet is told
    /// from end of file.
    fn from(fd: OwnedFd) -> UnixSeqpacket {
        // Failing only for what is not a socket, on which every later call fails too.
        let _ = sys::set_timestamp(fd.as_fd());
        let _ = sys::no_sigpipe(fd.as_fd());
        let send_limit = sys::send_buffer_len(fd.as_fd())
            .map_or(FALLBACK_SEND_LIMIT, |b| b.saturating_sub(SNDBUF_OVERHEAD));
        UnixSeqpacket::with_limit(StdSocket::from(fd), send_limit)
    }
}

impl From<UnixSeqpacket> for OwnedFd {
    fn from(socket: UnixSeqpacket) -> OwnedFd {
        socket.inner.into_socket().into()
    }
}

impl fmt::Debug for UnixSeqpacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let socket = self.inner.socket();
        f.debug_struct("UnixSeqpacket")
            .field("fd", &socket.as_raw_fd())
            .field("local", &socket.local_addr().ok())
            .field("peer", &socket.peer_addr().ok())
            .finish()
    }
}

impl AsFd for UnixSeqpacket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.socket().as_fd()
    }
}

crate::fd::raw_fd_traits!(UnixSeqpacket);
