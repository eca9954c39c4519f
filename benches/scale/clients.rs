//! The clients, all in the parent: connect in waves, then every connection does its round trips
//! at once, each reply checked byte for byte, and the connections stay open until closed.

use std::future::Future;
use std::io;
use std::time::Duration;

use msgsock::tokio::{AsyncConnection, AsyncStream};
use tokio::task::JoinSet;
use tokio::time::timeout;

/// Connections opened at once, each wave once the server has accepted the one before. Well below
/// the listen backlog (capped at `somaxconn`, 4096 by default): a full Unix backlog fails a
/// non-blocking `connect(2)` with `EAGAIN`, and a full TCP one drops the SYN, which is retried
/// only after a second. A connect returns before the server accepts, so waves alone do not keep
/// the backlog short on a busy machine.
const WAVE: usize = 256;

/// Bounds of each phase, generous against the milliseconds to seconds they take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
const ROUND_TRIPS_TIMEOUT: Duration = Duration::from_secs(120);

/// Message sizes, in turn: a round trip `r` sends `SIZES[r % SIZES.len()]` bytes.
pub(crate) const SIZES: [usize; 3] = [64, 1024, 4096];

/// The open client connections.
pub(crate) struct Clients<S> {
    conns: Vec<AsyncConnection<S>>,
}

impl<S: AsyncStream> Clients<S> {
    /// Opens `n` connections with `connect`, `WAVE` at a time; `accepted(k)` returns once the
    /// server has accepted the `k` connections open so far.
    ///
    /// # Errors
    ///
    /// The first failed connect, with how many were open, an error of `accepted`, or a timeout.
    pub(crate) async fn connect<F, Fut>(
        n: usize,
        connect: F,
        mut accepted: impl FnMut(usize) -> Result<(), String>,
    ) -> Result<Clients<S>, String>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = io::Result<S>> + Send + 'static,
    {
        let mut conns = Vec::with_capacity(n);
        let opened = async {
            while conns.len() < n {
                accepted(conns.len())?;
                let mut wave = JoinSet::new();
                for _ in conns.len()..n.min(conns.len() + WAVE) {
                    wave.spawn(connect());
                }
                while let Some(stream) = wave.join_next().await {
                    let stream = stream.map_err(|e| e.to_string())?;
                    let stream = stream
                        .map_err(|e| format!("connect failed with {} open: {e}", conns.len()))?;
                    conns.push(AsyncConnection::new(stream));
                }
            }
            accepted(conns.len())
        };
        timeout(CONNECT_TIMEOUT, opened)
            .await
            .map_err(|_| format!("connecting {n} clients took over {CONNECT_TIMEOUT:?}"))??;
        Ok(Clients { conns })
    }

    /// Every connection does `rounds` round trips at once, each reply compared with what was
    /// sent; the connections stay open.
    ///
    /// # Errors
    ///
    /// How many connections failed and the first failure, or a timeout.
    pub(crate) async fn round_trips(&mut self, rounds: usize) -> Result<(), String> {
        let n = self.conns.len();
        let mut tasks = JoinSet::new();
        for (id, mut conn) in self.conns.drain(..).enumerate() {
            tasks.spawn(async move {
                let done = echo_checked(&mut conn, id, rounds).await;
                (conn, done)
            });
        }
        let (mut failed, mut first) = (0, None);
        let joined = async {
            while let Some(joined) = tasks.join_next().await {
                let (conn, done) = joined.map_err(|e| e.to_string())?;
                if let Err(e) = done {
                    failed += 1;
                    first.get_or_insert(e);
                }
                self.conns.push(conn);
            }
            Ok::<_, String>(())
        };
        timeout(ROUND_TRIPS_TIMEOUT, joined).await.map_err(|_| {
            format!("round trips on {n} clients took over {ROUND_TRIPS_TIMEOUT:?}")
        })??;
        match first {
            None => Ok(()),
            Some(e) => Err(format!(
                "{failed} of {n} connections failed; the first: {e}"
            )),
        }
    }

    /// Closes every connection.
    pub(crate) fn close(self) {
        drop(self.conns);
    }
}

/// `rounds` round trips on one connection; each reply must be the message sent.
async fn echo_checked<S: AsyncStream>(
    conn: &mut AsyncConnection<S>,
    id: usize,
    rounds: usize,
) -> Result<(), String> {
    let (mut sent, mut reply) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        fill(&mut sent, id, round, SIZES[round % SIZES.len()]);
        conn.send(&sent)
            .await
            .map_err(|e| format!("client {id} round {round}: send: {e}"))?;
        match conn.recv_into(&mut reply).await {
            Ok(Some(_)) if reply == sent => {}
            Ok(Some(len)) => {
                let at = sent.iter().zip(&reply).position(|(a, b)| a != b);
                return Err(format!(
                    "client {id} round {round}: sent {} bytes, got {len} back, first difference \
                     at {at:?}",
                    sent.len()
                ));
            }
            Ok(None) => return Err(format!("client {id} round {round}: the server closed")),
            Err(e) => return Err(format!("client {id} round {round}: recv: {e}")),
        }
    }
    Ok(())
}

/// A message that differs with the client, the round and the position, so that a reply sent to
/// the wrong client, a stale one, or shifted bytes all fail the comparison.
fn fill(buf: &mut Vec<u8>, id: usize, round: usize, len: usize) {
    let seed = (id as u32).wrapping_mul(0x9E37_79B9) ^ (round as u32).wrapping_mul(0x85EB_CA6B);
    buf.clear();
    buf.extend(
        (0..len as u32).map(|i| (seed.wrapping_add(i).wrapping_mul(0x2545_F491) >> 24) as u8),
    );
}
