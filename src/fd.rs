//! The raw-descriptor traits every socket type has, derived from its `AsFd` and `OwnedFd`
//! conversions so that the one `unsafe` step (adopting a raw fd) is written once; and the one
//! way every message type's `recv_with_fds` is made of its `recv_into_with_fds`.

use std::os::fd::OwnedFd;

use crate::error::Result;

/// A message and its descriptors in new buffers, from `recv_into`, a receive into given ones
/// that returns `None` at a clean close: the body of every blocking `recv_with_fds`.
pub(crate) fn recv_new_with_fds(
    recv_into: impl FnOnce(&mut Vec<u8>, &mut Vec<OwnedFd>) -> Result<Option<usize>>,
) -> Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    let (mut buf, mut fds) = (Vec::new(), Vec::new());
    Ok(recv_into(&mut buf, &mut fds)?.map(|_| (buf, fds)))
}

/// As [`recv_new_with_fds`], for an async `recv_into`: the body of every async
/// `recv_with_fds`.
#[cfg(feature = "tokio")]
pub(crate) async fn recv_new_with_fds_async(
    recv_into: impl AsyncFnOnce(&mut Vec<u8>, &mut Vec<OwnedFd>) -> Result<Option<usize>>,
) -> Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    let (mut buf, mut fds) = (Vec::new(), Vec::new());
    Ok(recv_into(&mut buf, &mut fds).await?.map(|_| (buf, fds)))
}

/// Implements `AsRawFd`, `IntoRawFd` and `FromRawFd` for a type that has `AsFd`,
/// `From<OwnedFd>` and `From<Type> for OwnedFd`: each goes through those, so a raw fd means the
/// same as an `OwnedFd` (for Unix sockets: no socket file to remove).
macro_rules! raw_fd_traits {
    ($t:ty) => {
        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(self))
            }
        }

        impl std::os::fd::IntoRawFd for $t {
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                std::os::fd::IntoRawFd::into_raw_fd(std::os::fd::OwnedFd::from(self))
            }
        }

        #[allow(unsafe_code)]
        impl std::os::fd::FromRawFd for $t {
            /// Adopts `fd` as [`From<OwnedFd>`](std::os::fd::OwnedFd) does.
            ///
            /// # Safety
            ///
            /// `fd` must be an open socket of this type's family that nothing else owns: it is
            /// closed when the value is dropped.
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> Self {
                // SAFETY: the caller promises `fd` is open and owned by no one else, which is
                // `OwnedFd::from_raw_fd`'s precondition.
                Self::from(unsafe {
                    <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd)
                })
            }
        }
    };
}
pub(crate) use raw_fd_traits;
