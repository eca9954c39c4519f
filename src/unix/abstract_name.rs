//! Linux's abstract socket namespace: names that start with a 0 byte, bound to no file.
//!
//! An abstract socket has no file and so no file mode: any process in the same network
//! namespace can reach it, which is why [`UnixListener::bind_abstract`](crate::UnixListener::bind_abstract)
//! admits only its own uid by default (CPython's CVE-2022-42919 was a multiprocessing server on
//! an abstract name that let any local user in).

use std::os::fd::BorrowedFd;
use std::os::unix::net::SocketAddr;

use crate::endpoint::parse_abstract_name;
use crate::error::Result;
use crate::sys::UnixAddr;

/// The std address of the abstract name `name`, checked first so that a bad name is a
/// [`ParseEndpointError`](crate::ParseEndpointError) (too long, empty, NUL inside).
///
/// # Errors
///
/// [`Error::Endpoint`](crate::Error::Endpoint) for a bad name; [`Error::Io`](crate::Error::Io)
/// with `Unsupported` where there is no abstract namespace (every target but Linux and Android).
pub(crate) fn socket_addr(name: &[u8]) -> Result<SocketAddr> {
    parse_abstract_name(name)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::linux::net::SocketAddrExt;
        Ok(SocketAddr::from_abstract_name(name)?)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    Err(unsupported().into())
}

/// The abstract name of `addr`, if it has one.
pub(crate) fn name_of(addr: &SocketAddr) -> Option<&[u8]> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::linux::net::SocketAddrExt;
        addr.as_abstract_name()
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = addr;
        None
    }
}

/// The address the calls in `sys` take for the abstract name `name`, with the errors of
/// [`socket_addr`].
pub(crate) fn unix_addr(name: &[u8]) -> Result<UnixAddr> {
    Ok(UnixAddr::from_std(&socket_addr(name)?)?)
}

/// Whether a just-accepted connection `fd` may be handed out by a listener that admits only
/// `only_uid` (an abstract listener, whose name has no file mode): any when that is `None`;
/// else the peer's `SO_PEERCRED` uid must be it, and a peer whose credentials cannot be read is
/// refused too.
pub(crate) fn admits(only_uid: Option<u32>, fd: BorrowedFd<'_>) -> bool {
    let Some(uid) = only_uid else {
        return true;
    };
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return crate::sys::peer_cred(fd).is_ok_and(|(_, peer, _)| peer == uid);
    // Only abstract binds set `only_uid`, and only where they can bind.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (fd, uid);
        false
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn unsupported() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "abstract socket names exist only on Linux and Android",
    )
}
