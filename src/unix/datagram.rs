use std::fmt;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram as StdUnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::socket::{SockType, SockaddrLike, UnixAddr};
use tempfile::TempDir;

use crate::datagram::{check_send, datagram_common, send_with, try_send_to, Room};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::sys;
use crate::unix::socket_file::{check_len, private_temp_dir, SocketFile};
use crate::unix::DEFAULT_SOCKET_MODE;

/// Linux refuses a Unix datagram longer than the sender's `SO_SNDBUF` less 32 bytes
/// (`unix_dgram_sendmsg` in `net/unix/af_unix.c`).
const SNDBUF_OVERHEAD: usize = 32;

/// A Unix-domain datagram socket that sends and receives whole messages, one per datagram.
///
/// Bound to a path, it follows the same socket-file rules as [`UnixListener`](crate::UnixListener)
/// (stale file replaced, live one refused, non-socket never removed, owner-only mode, removed on
/// drop while still its own), and the path is its address: peers see datagrams come from it and
/// reply to it. A client that wants replies needs an address of its own:
/// [`bind_temp`](Self::bind_temp) gives it one in a private temporary directory, removed on drop.
/// Unix datagrams are reliable and ordered on one machine; a full receive queue makes the sender
/// wait. There is no "connection closed" event.
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
    // Field order is drop order: remove the file, close the socket, then remove a private dir.
    file: Option<SocketFile>,
    inner: StdUnixDatagram,
    dir: Option<TempDir>,
    max_len: usize,
    send_limit: usize,
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
        let (socket, file) = SocketFile::bind(path.as_ref(), mode, SockType::Datagram)
            .map_err(Error::for_datagram)?;
        UnixDatagram::new(StdUnixDatagram::from(socket), Some(file), None)
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
            SockType::Datagram,
        )?;
        UnixDatagram::new(StdUnixDatagram::from(socket), Some(file), Some(dir))
    }

    /// A socket with no address: it can send, but nobody can reply to it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `socket(2)`.
    pub fn unbound() -> Result<UnixDatagram> {
        UnixDatagram::new(StdUnixDatagram::unbound()?, None, None)
    }

    /// A socket bound in a private temporary directory and connected to `path`.
    pub(crate) fn connect_new(path: &Path) -> Result<UnixDatagram> {
        let socket = UnixDatagram::bind_temp()?;
        socket.connect(path)?;
        Ok(socket)
    }

    fn new(inner: StdUnixDatagram, file: Option<SocketFile>, dir: Option<TempDir>) -> Result<Self> {
        let sndbuf = sys::send_buffer_len(inner.as_fd())?;
        let send_limit = sndbuf.saturating_sub(SNDBUF_OVERHEAD);
        Ok(UnixDatagram {
            file,
            inner,
            dir,
            max_len: send_limit,
            send_limit,
        })
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
            .connect(path)
            .map_err(|e| Error::connect(Endpoint::UnixDatagram(path.into()), e))
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
        check_send(msg.len(), self.send_limit)?;
        check_len(path)?;
        send_with(msg, self.send_limit, |m| self.inner.send_to(m, path))
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
    /// `net.unix.max_dgram_qlen` datagrams. A receiver connected to *this* socket (as
    /// [`connect`](crate::connect)'s clients are) has no such limit: what it has not read stays
    /// charged to this socket's send buffer, and once that is full, `WouldBlock` comes for every
    /// destination until it reads or closes.
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
        let addr = UnixAddr::new(path).map_err(|e| Error::path(path, e.into()))?;
        try_send_to(self.inner.as_fd(), msg, &addr, self.send_limit, wait)
    }

    /// Receives one datagram into `buf`, replacing its contents; returns its length and the
    /// sender's path (`None` for an unbound sender).
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] for a datagram longer than [`max_message_len`](Self::max_message_len);
    /// [`Error::Io`] otherwise.
    pub fn recv_from(&self, buf: &mut Vec<u8>) -> Result<(usize, Option<PathBuf>)> {
        let (n, from) = crate::datagram::recv::<UnixAddr>(
            self.inner.as_fd(),
            buf,
            self.max_len,
            true,
            self.room(),
        )?;
        // An unnamed sender comes with an address of length 0, on which nix's `path()` asserts:
        // look at the length first.
        let named = |a: &UnixAddr| a.len() as usize > size_of::<nix::libc::sa_family_t>();
        Ok((
            n,
            from.filter(named).and_then(|a| a.path().map(PathBuf::from)),
        ))
    }

    /// The path this socket is bound at, if it was bound by msgsock.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(SocketFile::path)
    }

    /// The bound endpoint, `unixgram:PATH`, if bound.
    pub fn local_endpoint(&self) -> Option<Endpoint> {
        self.path().map(|p| Endpoint::UnixDatagram(p.into()))
    }

    /// A second handle to the same socket (`dup(2)`), with the same limits. The original keeps
    /// ownership of the socket file: it is removed when the original is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `dup(2)` fails.
    pub fn try_clone(&self) -> Result<UnixDatagram> {
        Ok(UnixDatagram {
            file: None,
            inner: self.inner.try_clone()?,
            dir: None,
            max_len: self.max_len,
            send_limit: self.send_limit,
        })
    }

    /// The wrapped std socket.
    pub fn get_ref(&self) -> &StdUnixDatagram {
        &self.inner
    }

    /// A sender's `SO_SNDBUF` bounds a Unix datagram, and root may raise that without limit: only
    /// the kernel knows the longest. Up to our own send limit is reserved at once.
    fn room(&self) -> Room {
        Room {
            most: usize::MAX,
            direct: self.send_limit,
        }
    }
}

datagram_common!(UnixDatagram, UnixAddr);

impl TryFrom<StdUnixDatagram> for UnixDatagram {
    type Error = Error;

    /// Wraps a std socket, bound or not, connected or not, with limits from its `SO_SNDBUF`. The
    /// socket-file rules do not apply: a file it is bound at stays in place on drop.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `getsockopt(2)` fails.
    fn try_from(inner: StdUnixDatagram) -> Result<UnixDatagram> {
        UnixDatagram::new(inner, None, None)
    }
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixDatagram")
            .field("fd", &self.inner.as_raw_fd())
            .field("path", &self.path())
            .finish()
    }
}

impl From<UnixDatagram> for OwnedFd {
    /// Hands the socket over; its file (and private directory) then stay in place.
    fn from(socket: UnixDatagram) -> OwnedFd {
        let UnixDatagram {
            file, inner, dir, ..
        } = socket;
        if let Some(mut file) = file {
            file.keep();
        }
        if let Some(dir) = dir {
            let _ = dir.keep();
        }
        inner.into()
    }
}
