//! Socket addresses as the calls in `sys` take and give them: [`UnixAddr`] for a Unix socket (a
//! path or an abstract name), std's `SocketAddr` for internet ones. nix's address types stay
//! here.

use std::io;
use std::os::unix::net::SocketAddr as StdUnixAddr;
use std::path::Path;

use nix::libc;
use nix::sys::socket::{self, SockaddrLike, SockaddrStorage};

/// A named Unix socket address: a path, or (Linux and Android) an abstract name. Never
/// unnamed: there is nothing to send to or connect to at an unnamed address.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UnixAddr(socket::UnixAddr);

impl UnixAddr {
    /// The address of the socket file at `path`: `ENAMETOOLONG` if it does not fit in
    /// `sun_path`, `EINVAL` for a path with a NUL byte.
    pub(crate) fn from_path(path: &Path) -> io::Result<UnixAddr> {
        Ok(UnixAddr(socket::UnixAddr::new(path)?))
    }

    /// The address of std's `addr`: a path, or an abstract name. An unnamed address has none
    /// (`InvalidInput`).
    pub(crate) fn from_std(addr: &StdUnixAddr) -> io::Result<UnixAddr> {
        if let Some(path) = addr.as_pathname() {
            return UnixAddr::from_path(path);
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use std::os::linux::net::SocketAddrExt;
            if let Some(name) = addr.as_abstract_name() {
                return Ok(UnixAddr(socket::UnixAddr::new_abstract(name)?));
            }
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an unnamed socket address cannot be sent to",
        ))
    }

    /// The path, if it is a socket file's address.
    pub(crate) fn path(&self) -> Option<&Path> {
        self.0.path()
    }

    /// The abstract name (without its leading 0 byte), if it has one.
    pub(crate) fn abstract_name(&self) -> Option<&[u8]> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            self.0.as_abstract()
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        None
    }

    /// The address as nix's calls take it.
    pub(super) fn as_nix(&self) -> &socket::UnixAddr {
        &self.0
    }
}

/// Where an unconnected datagram goes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Destination<'a> {
    /// An internet socket.
    Inet(std::net::SocketAddr),
    /// A Unix socket.
    Unix(&'a UnixAddr),
}

/// A sender's address as a receive gives it, made from the `sockaddr` the kernel filled:
/// `None` for a sender with no address of this kind. `()` for a receive that wants none.
pub(crate) trait SenderAddr: Sized {
    /// The address in the first `len` bytes of `storage`.
    fn from_sockaddr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<Self>;
}

impl SenderAddr for () {
    fn from_sockaddr(_: &libc::sockaddr_storage, _: libc::socklen_t) -> Option<()> {
        None
    }
}

impl SenderAddr for std::net::SocketAddr {
    #[allow(unsafe_code)]
    fn from_sockaddr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<Self> {
        // SAFETY: `storage` is a whole sockaddr_storage, of which the kernel filled `len` bytes.
        let addr = unsafe {
            SockaddrStorage::from_raw((storage as *const libc::sockaddr_storage).cast(), Some(len))
        }?;
        if let Some(v4) = addr.as_sockaddr_in() {
            Some(std::net::SocketAddr::V4((*v4).into()))
        } else {
            addr.as_sockaddr_in6()
                .map(|v6| std::net::SocketAddr::V6((*v6).into()))
        }
    }
}

impl SenderAddr for UnixAddr {
    #[allow(unsafe_code)]
    fn from_sockaddr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<Self> {
        // An unnamed sender comes with an address of length 0 (or only its family), on which
        // nix's `path()` asserts: look at the length first.
        if len as usize <= size_of::<libc::sa_family_t>() {
            return None;
        }
        // SAFETY: `storage` is a whole sockaddr_storage, of which the kernel filled `len` bytes.
        let addr = unsafe {
            socket::UnixAddr::from_raw((storage as *const libc::sockaddr_storage).cast(), Some(len))
        }?;
        Some(UnixAddr(addr))
    }
}
