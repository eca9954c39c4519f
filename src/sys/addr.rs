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

#[cfg(test)]
mod tests {
    use std::os::unix::net::{UnixDatagram, UnixListener};

    use nix::libc;

    use super::{SenderAddr, UnixAddr};

    /// A `sockaddr_storage` holding an `AF_UNIX` family and nothing else.
    fn unix_storage() -> libc::sockaddr_storage {
        // SAFETY: an all-zero sockaddr_storage is valid.
        #[allow(unsafe_code)]
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        storage.ss_family = libc::AF_UNIX as libc::sa_family_t;
        storage
    }

    #[test]
    fn an_unnamed_sender_has_no_address() {
        let storage = unix_storage();
        let family_only = size_of::<libc::sa_family_t>() as libc::socklen_t;
        assert!(UnixAddr::from_sockaddr(&storage, 0).is_none());
        assert!(UnixAddr::from_sockaddr(&storage, family_only).is_none());
    }

    #[test]
    fn a_unix_sender_is_no_internet_address() {
        let len = size_of::<libc::sockaddr_un>() as libc::socklen_t;
        assert!(std::net::SocketAddr::from_sockaddr(&unix_storage(), len).is_none());
    }

    #[test]
    fn an_unnamed_std_address_cannot_be_sent_to() {
        let (a, _b) = UnixDatagram::pair().unwrap();
        let err = UnixAddr::from_std(&a.local_addr().unwrap()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_std_path_address_keeps_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let addr = UnixAddr::from_std(&listener.local_addr().unwrap()).unwrap();
        assert_eq!(addr.path(), Some(path.as_path()));
        assert_eq!(addr.abstract_name(), None);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_std_abstract_address_keeps_its_name() {
        use std::os::linux::net::SocketAddrExt;
        let std = std::os::unix::net::SocketAddr::from_abstract_name(b"msgsock-test").unwrap();
        let addr = UnixAddr::from_std(&std).unwrap();
        assert_eq!(addr.abstract_name(), Some(&b"msgsock-test"[..]));
        assert_eq!(addr.path(), None);
    }
}
