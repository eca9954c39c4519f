//! [`AsyncChannel`]: the async message calls every transport offers, stream or datagram.

use std::future::Future;

use super::any::AsyncAnyConnection;
use super::conn::AsyncConnection;
use super::datagram::AsyncDatagram;
use super::seqpacket::AsyncSeqpacket;
use super::stream::AsyncStream;
use crate::error::Result;

mod sealed {
    pub trait Sealed {}
}

/// Sending and receiving whole messages on tokio, whatever carries them: the async
/// [`Channel`](crate::Channel).
///
/// Implemented by [`AsyncConnection`] over every [`AsyncStream`], by a connected
/// [`AsyncDatagram`] and by [`AsyncAnyConnection`], so message code generic over
/// `C: AsyncChannel` runs on all four transports, with the differences `Channel` lists. The
/// futures are `Send`, so generic code can be spawned. The trait is sealed.
///
/// # Examples
///
/// ```
/// use msgsock::tokio::AsyncChannel;
///
/// async fn ask<C: AsyncChannel>(chan: &mut C, q: &[u8]) -> msgsock::Result<Option<Vec<u8>>> {
///     chan.send(q).await?;
///     chan.recv().await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> msgsock::Result<()> {
/// # let (a, b) = tokio::net::UnixStream::pair()?;
/// # let (mut a, mut b) = (msgsock::tokio::AsyncConnection::new(a), msgsock::tokio::AsyncConnection::new(b));
/// # let echo = tokio::spawn(async move { let m = b.recv().await?.unwrap(); b.send(&m).await });
/// assert_eq!(ask(&mut a, b"hi").await?.as_deref(), Some(&b"hi"[..]));
/// # echo.await.unwrap()?;
/// # Ok(())
/// # }
/// ```
pub trait AsyncChannel: Send + sealed::Sealed {
    /// Sends one message.
    ///
    /// # Errors
    ///
    /// As the implementing type's `send`.
    fn send(&mut self, msg: &[u8]) -> impl Future<Output = Result<()>> + Send;

    /// Receives one message into `buf`, replacing its contents; `Ok(None)` when a stream peer
    /// closed cleanly. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As the implementing type's `recv_into`.
    fn recv_into(
        &mut self,
        buf: &mut Vec<u8>,
    ) -> impl Future<Output = Result<Option<usize>>> + Send;

    /// Receives one message into a new `Vec`. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`recv_into`](Self::recv_into).
    fn recv(&mut self) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send {
        async move {
            let mut buf = Vec::new();
            Ok(self.recv_into(&mut buf).await?.map(|_| buf))
        }
    }
}

impl<S: AsyncStream> sealed::Sealed for AsyncConnection<S> {}

impl<S: AsyncStream> AsyncChannel for AsyncConnection<S> {
    async fn send(&mut self, msg: &[u8]) -> Result<()> {
        AsyncConnection::send(self, msg).await
    }
    async fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        AsyncConnection::recv_into(self, buf).await
    }
}

impl sealed::Sealed for AsyncDatagram {}

impl AsyncChannel for AsyncDatagram {
    async fn send(&mut self, msg: &[u8]) -> Result<()> {
        AsyncDatagram::send(self, msg).await
    }
    async fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        AsyncDatagram::recv_into(self, buf).await.map(Some)
    }
}

impl sealed::Sealed for AsyncSeqpacket {}

impl AsyncChannel for AsyncSeqpacket {
    async fn send(&mut self, msg: &[u8]) -> Result<()> {
        AsyncSeqpacket::send(self, msg).await
    }
    async fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        AsyncSeqpacket::recv_into(self, buf).await
    }
}

impl sealed::Sealed for AsyncAnyConnection {}

impl AsyncChannel for AsyncAnyConnection {
    async fn send(&mut self, msg: &[u8]) -> Result<()> {
        AsyncAnyConnection::send(self, msg).await
    }
    async fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        AsyncAnyConnection::recv_into(self, buf).await
    }
}
