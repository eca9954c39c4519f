//! `tokio codec`, the async reference (feature `tokio`): tokio-util's `LengthDelimitedCodec`
//! under `Framed`, with its defaults (4-byte big-endian length, the wire format of every stream
//! implementation here), `SinkExt::send` per message and `StreamExt::next` per receive, as a
//! tokio user would write it. The echo stream splits the socket with tokio's `into_split` and
//! frames each half (`FramedRead`, `FramedWrite`), the lock-free way to split, rather than
//! `StreamExt::split` on the `Framed`, which puts a lock between the halves.

use std::io;
use std::os::fd::OwnedFd;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio_util::codec::{Framed, FramedRead, FramedWrite, LengthDelimitedCodec};

use super::{Api, AsyncPeer, Impl, Role, Run};
use crate::async_patterns::{self, echoed};
use crate::patterns::{Config, Sample};
use crate::tokio_sockets::TokioStream;

/// A `Framed` stream and the last message it yielded.
struct TokioCodec<S> {
    framed: Framed<S, LengthDelimitedCodec>,
    last: BytesMut,
}

impl<S: TokioStream> AsyncPeer for TokioCodec<S> {
    fn wrap(fd: OwnedFd) -> io::Result<Self> {
        Ok(TokioCodec {
            framed: Framed::new(S::from_fd(fd)?, LengthDelimitedCodec::new()),
            last: BytesMut::new(),
        })
    }

    async fn send(&mut self, msgs: &[Bytes]) -> io::Result<()> {
        for msg in msgs {
            // A clone of `Bytes` is a reference count, not a copy.
            self.framed.send(msg.clone()).await?;
        }
        Ok(())
    }

    async fn recv(&mut self) -> io::Result<Option<&[u8]>> {
        match self.framed.next().await.transpose()? {
            Some(msg) => {
                self.last = msg;
                Ok(Some(&self.last))
            }
            None => Ok(None),
        }
    }

    async fn reply(&mut self) -> io::Result<()> {
        // The received buffer itself goes back, uncopied, as a tokio echo server sends it.
        let msg = std::mem::take(&mut self.last).freeze();
        self.framed.send(msg).await
    }

    async fn flush(&mut self) -> io::Result<()> {
        SinkExt::<Bytes>::flush(&mut self.framed).await
    }

    async fn echo_stream(self, msg: &Bytes, cfg: &Config) -> io::Result<Sample> {
        let (r, w) = self.framed.into_inner().into_halves();
        let mut rx = FramedRead::new(r, LengthDelimitedCodec::new());
        let mut tx = FramedWrite::new(w, LengthDelimitedCodec::new());
        let send = async |msgs: &[Bytes]| -> io::Result<()> {
            for m in msgs {
                tx.send(m.clone()).await?;
            }
            Ok(())
        };
        let recv_echo = async || echoed(rx.next().await.transpose()?.as_deref(), msg);
        async_patterns::echo_stream(send, recv_echo, msg, 1, cfg).await
    }
}

/// `tokio codec`.
pub(super) fn stream<S: TokioStream>() -> Vec<Impl> {
    vec![Impl {
        name: "tokio codec",
        role: Role::Baseline,
        api: Api::Async,
        run: Run::Async(async_patterns::run::<TokioCodec<S>>()),
    }]
}
