//! msgsock's async connection (feature `tokio`): [`AsyncConnection`] over a tokio stream, `send`
//! per message and `recv_into` a reused buffer (`msgsock async`), or `feed` per message and one
//! `flush` per batch (`msgsock async feed`), or a [`QueuedSender`] whose writer task writes
//! whatever has queued (`msgsock async queued`); on Unix also `send` and `recv_into` with the
//! connection set not to receive descriptors (`msgsock async no fds`).

use std::io;
use std::os::fd::OwnedFd;

use bytes::Bytes;
use msgsock::tokio::{AsyncConnection, AsyncRecvHalf, QueuedSender};

use super::{Api, AsyncPeer, Impl, Role, Run};
use crate::async_patterns::{self, echoed};
use crate::patterns::{Config, Sample, BATCH_BYTES};
use crate::tokio_sockets::TokioStream;

/// An [`AsyncConnection`] and the buffer its messages are received into. With `FEED`, messages
/// are fed and the batch flushed, and the server's replies are fed, to go out together while
/// its next receive waits (or when the high-water mark makes `feed` wait). Without `FDS`, the
/// connection is set not to receive descriptors.
struct MsgsockAsync<S, const FEED: bool, const FDS: bool = true> {
    conn: AsyncConnection<S>,
    buf: Vec<u8>,
}

impl<S: TokioStream, const FEED: bool, const FDS: bool> AsyncPeer for MsgsockAsync<S, FEED, FDS> {
    fn wrap(fd: OwnedFd) -> io::Result<Self> {
        let mut conn = AsyncConnection::new(S::from_fd(fd)?);
        conn.set_receive_fds(FDS);
        Ok(MsgsockAsync {
            conn,
            buf: Vec::new(),
        })
    }

    fn batch(size: usize) -> usize {
        if FEED {
            (BATCH_BYTES / size.max(1)).clamp(1, 1024)
        } else {
            1
        }
    }

    async fn send(&mut self, msgs: &[Bytes]) -> io::Result<()> {
        if FEED {
            for msg in msgs {
                self.conn.feed(msg).await?;
            }
            return Ok(self.conn.flush().await?);
        }
        for msg in msgs {
            self.conn.send(msg).await?;
        }
        Ok(())
    }

    async fn recv(&mut self) -> io::Result<Option<&[u8]>> {
        let n = self.conn.recv_into(&mut self.buf).await?;
        Ok(n.map(|n| &self.buf[..n]))
    }

    async fn reply(&mut self) -> io::Result<()> {
        if FEED {
            // Written by the next `recv` while it waits for the socket, with whatever else
            // was fed meanwhile.
            return Ok(self.conn.feed(&self.buf).await?);
        }
        Ok(self.conn.send(&self.buf).await?)
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(self.conn.flush().await?)
    }

    async fn echo_stream(self, msg: &Bytes, cfg: &Config) -> io::Result<Sample> {
        let (mut rx, mut tx) = self.conn.into_split();
        let mut buf = self.buf;
        let send = async |msgs: &[Bytes]| -> io::Result<()> {
            for m in msgs {
                if FEED {
                    tx.feed(m).await?;
                } else {
                    tx.send(m).await?;
                }
            }
            if FEED {
                tx.flush().await?;
            }
            Ok(())
        };
        let recv_echo = async || {
            let n = rx.recv_into(&mut buf).await?;
            echoed(n.map(|n| &buf[..n]), msg)
        };
        async_patterns::echo_stream(send, recv_echo, msg, Self::batch(msg.len()), cfg).await
    }
}

/// `msgsock async`, `msgsock async feed` and `msgsock async queued`; with `carries_fds`, also
/// `msgsock async no fds`.
pub(super) fn stream<S: TokioStream>(carries_fds: bool) -> Vec<Impl> {
    let mut impls = vec![
        Impl {
            name: "msgsock async",
            role: Role::Subject,
            api: Api::Async,
            run: Run::Async(async_patterns::run::<MsgsockAsync<S, false>>()),
        },
        Impl {
            name: "msgsock async feed",
            role: Role::Feed,
            api: Api::Async,
            run: Run::Async(async_patterns::run::<MsgsockAsync<S, true>>()),
        },
        Impl {
            name: "msgsock async queued",
            role: Role::Queued,
            api: Api::Async,
            run: Run::Async(async_patterns::run::<MsgsockQueued<S>>()),
        },
    ];
    if carries_fds {
        impls.push(Impl {
            name: "msgsock async no fds",
            role: Role::NoFds,
            api: Api::Async,
            run: Run::Async(async_patterns::run::<MsgsockAsync<S, false, false>>()),
        });
    }
    impls
}

/// A receive half and a [`QueuedSender`]: `send` per message queues and returns, and the
/// connection's writer task writes whatever has queued in one call (`msgsock async queued`).
struct MsgsockQueued<S: msgsock::tokio::AsyncStream> {
    rx: AsyncRecvHalf<S>,
    tx: QueuedSender,
    buf: Vec<u8>,
}

impl<S: TokioStream> AsyncPeer for MsgsockQueued<S> {
    fn wrap(fd: OwnedFd) -> io::Result<Self> {
        let (rx, tx) = AsyncConnection::new(S::from_fd(fd)?).into_split_queued();
        Ok(MsgsockQueued {
            rx,
            tx,
            buf: Vec::new(),
        })
    }

    /// Queued, not waited for: the writer task writes them while this task goes on (one `send`
    /// per message, no flush: what the 64 B target measures).
    async fn send(&mut self, msgs: &[Bytes]) -> io::Result<()> {
        for msg in msgs {
            self.tx.send(msg).await?;
        }
        Ok(())
    }

    async fn recv(&mut self) -> io::Result<Option<&[u8]>> {
        let n = self.rx.recv_into(&mut self.buf).await?;
        Ok(n.map(|n| &self.buf[..n]))
    }

    async fn reply(&mut self) -> io::Result<()> {
        Ok(self.tx.send(&self.buf).await?)
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(self.tx.flush().await?)
    }

    async fn echo_stream(self, msg: &Bytes, cfg: &Config) -> io::Result<Sample> {
        let (mut rx, tx) = (self.rx, self.tx);
        let mut buf = self.buf;
        let send = async |msgs: &[Bytes]| -> io::Result<()> {
            for m in msgs {
                tx.send(m).await?;
            }
            Ok(())
        };
        let recv_echo = async || {
            let n = rx.recv_into(&mut buf).await?;
            echoed(n.map(|n| &buf[..n]), msg)
        };
        async_patterns::echo_stream(send, recv_echo, msg, 1, cfg).await
    }
}
