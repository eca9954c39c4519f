//! The in-bench echo servers, run in the child: msgsock's `AsyncConnection` and tokio-util's
//! `LengthDelimitedCodec` in `Framed`, on the same listener and the same runtime.

use std::error::Error;
use std::io::{self, Write};
use std::os::fd::OwnedFd;

use futures_util::{SinkExt, StreamExt};
use msgsock::tokio::{AsyncConnection, AsyncStream};
use msgsock::Endpoint;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, UnixListener};
use tokio::sync::oneshot;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::limits;

/// The setting: one server process whose runtime has 2 worker threads.
pub(crate) const WORKERS: usize = 2;

/// Asked of `listen(2)` for TCP; Linux caps it at `net.core.somaxconn` (4096 by default). The
/// clients connect in waves well below that, so no SYN is dropped and retried a second later.
const TCP_BACKLOG: u32 = 65535;

/// Which echo server the child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Server {
    /// `msgsock::tokio::AsyncConnection`: `recv_into` a reused buffer, then `send` it back.
    Msgsock,
    /// tokio-util `Framed<_, LengthDelimitedCodec>`: `next()`, then `SinkExt::send` of the frame.
    Tokio,
}

impl Server {
    /// The name in the child's environment and in the report.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Server::Msgsock => "msgsock async",
            Server::Tokio => "tokio Framed",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Server> {
        [Server::Msgsock, Server::Tokio]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// The child: raises its open-file limit, binds `endpoint`, prints `listening on ENDPOINT` (as
/// the `echo` examples do), and echoes every message on every connection until its stdin closes.
///
/// # Errors
///
/// A bind or accept failure (`EMFILE` included), or a limit too low for `connections`.
pub(crate) fn serve(
    server: Server,
    endpoint: &Endpoint,
    connections: usize,
) -> Result<(), Box<dyn Error>> {
    limits::raise_nofile(connections)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_io()
        .build()?;
    // The parent closes our stdin to stop us, and closes it too by dying.
    let (closed_tx, closed_rx) = oneshot::channel();
    std::thread::spawn(move || {
        let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
        let _ = closed_tx.send(());
    });
    runtime.block_on(async {
        let listener = Listener::bind(endpoint)?;
        let mut out = io::stdout().lock();
        writeln!(out, "listening on {}", listener.endpoint()?)?;
        out.flush()?;
        drop(out);
        tokio::select! {
            accepted = listener.serve(server) => accepted,
            _ = closed_rx => Ok(()),
        }
    })
}

/// The listening socket, the same for both servers.
enum Listener {
    Unix(UnixListener, Endpoint),
    Tcp(TcpListener),
}

impl Listener {
    fn bind(endpoint: &Endpoint) -> Result<Listener, Box<dyn Error>> {
        match endpoint {
            Endpoint::Unix(path) => {
                // msgsock's listener asks for the largest backlog the system allows.
                let fd = OwnedFd::from(msgsock::UnixListener::bind(path)?);
                let std = std::os::unix::net::UnixListener::from(fd);
                std.set_nonblocking(true)?;
                Ok(Listener::Unix(
                    UnixListener::from_std(std)?,
                    endpoint.clone(),
                ))
            }
            Endpoint::Tcp(addr) => {
                let socket = if addr.is_ipv4() {
                    TcpSocket::new_v4()?
                } else {
                    TcpSocket::new_v6()?
                };
                socket.bind(*addr)?;
                Ok(Listener::Tcp(socket.listen(TCP_BACKLOG)?))
            }
            other => Err(format!("{other}: the scale bench serves unix: and tcp: only").into()),
        }
    }

    fn endpoint(&self) -> io::Result<Endpoint> {
        match self {
            Listener::Unix(_, endpoint) => Ok(endpoint.clone()),
            Listener::Tcp(listener) => Ok(Endpoint::Tcp(listener.local_addr()?)),
        }
    }

    /// Accepts forever, one task per connection.
    async fn serve(&self, server: Server) -> Result<(), Box<dyn Error>> {
        loop {
            match self {
                Listener::Unix(listener, _) => spawn_echo(server, listener.accept().await?.0),
                Listener::Tcp(listener) => {
                    let (stream, _) = listener.accept().await?;
                    stream.set_nodelay(true)?;
                    spawn_echo(server, stream);
                }
            }
        }
    }
}

fn spawn_echo<S>(server: Server, stream: S)
where
    S: AsyncStream + AsyncRead + AsyncWrite,
{
    tokio::spawn(async move {
        let served = match server {
            Server::Msgsock => echo_msgsock(stream).await,
            Server::Tokio => echo_framed(stream).await,
        };
        // The clients check every reply; this says why one went missing.
        if let Err(e) = served {
            eprintln!("{}: connection failed: {e}", server.name());
        }
    });
}

async fn echo_msgsock<S: AsyncStream>(stream: S) -> Result<(), Box<dyn Error + Send + Sync>> {
    let mut conn = AsyncConnection::new(stream);
    let mut buf = Vec::new();
    while conn.recv_into(&mut buf).await?.is_some() {
        conn.send(&buf).await?;
    }
    Ok(())
}

async fn echo_framed<S>(stream: S) -> Result<(), Box<dyn Error + Send + Sync>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut framed = Framed::new(stream, LengthDelimitedCodec::new());
    while let Some(frame) = framed.next().await {
        framed.send(frame?.freeze()).await?;
    }
    Ok(())
}
