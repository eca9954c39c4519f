//! Peer credentials of async Unix connections (`SO_PEERCRED`), as [`PeerCred`].

use std::io;
use std::os::fd::AsFd;

use ::tokio::net::UnixStream;

use super::conn::AsyncConnection;
use super::seqpacket::AsyncSeqpacket;
use super::stream::AsyncAnyStream;
use crate::error::Result;
use crate::unix::PeerCred;

#[cfg(any(target_os = "linux", target_os = "android"))]
impl AsyncConnection<UnixStream> {
    /// The process at the other end, as it was at `connect(2)`: as
    /// [`UnixStream::peer_cred`](crate::UnixStream::peer_cred).
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `getsockopt(2)`.
    pub fn peer_cred(&self) -> Result<PeerCred> {
        cred(self.get_ref())
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl AsyncConnection<AsyncAnyStream> {
    /// The process at the other end of a Unix connection, as
    /// [`UnixStream::peer_cred`](crate::UnixStream::peer_cred).
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `getsockopt(2)`, and with `Unsupported` on TCP,
    /// which carries no credentials.
    pub fn peer_cred(&self) -> Result<PeerCred> {
        match self.get_ref() {
            AsyncAnyStream::Unix(s) => cred(s),
            AsyncAnyStream::Tcp(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "peer credentials exist only for Unix sockets",
            )
            .into()),
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl AsyncSeqpacket {
    /// The process at the other end, as it was at `connect(2)`: as
    /// [`UnixSeqpacket::peer_cred`](crate::UnixSeqpacket::peer_cred).
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) from `getsockopt(2)`.
    pub fn peer_cred(&self) -> Result<PeerCred> {
        cred(self)
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn cred(socket: &impl AsFd) -> Result<PeerCred> {
    let (pid, uid, gid) = crate::sys::peer_cred(socket.as_fd())?;
    Ok(PeerCred { pid, uid, gid })
}
