//! The async transports as [`Kind`]s (feature `tokio`), so the cases of [`messages`](crate::messages)
//! run against them unchanged: the server is an async echo server on a runtime of its own, and
//! the client an async connection driven through [`BlockOn`], an adapter that makes it a
//! [`msgsock::Channel`] by blocking on each call (its read timeout a `tokio::time::timeout`, which
//! the async `recv` is cancel-safe under).

use std::io;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use msgsock::tokio::{AsyncAnyStream, AsyncChannel, AsyncDatagram, AsyncRecvHalf, AsyncSendHalf};
use msgsock::{Channel, Endpoint, Result};
use tokio::runtime::{Handle, Runtime};

use super::Kind;

/// The scheme of an async transport, as a type.
pub trait Scheme {
    const NAME: &'static str;
    /// The largest message the transport carries in one piece.
    const MAX: usize;
}

macro_rules! schemes {
    ($($ty:ident => $name:literal, $max:expr;)+) => {$(
        pub struct $ty;
        impl Scheme for $ty {
            const NAME: &'static str = $name;
            const MAX: usize = $max;
        }
    )+};
}

schemes! {
    Unix => "unix", (1 << 20) + 1;
    Tcp => "tcp", (1 << 20) + 1;
    Udp => "udp", msgsock::UDP_V4_MAX_MESSAGE_LEN;
    Unixgram => "unixgram", msgsock::UDP_V4_MAX_MESSAGE_LEN;
}

/// An async transport as a [`Kind`].
pub struct AsyncKind<S>(PhantomData<S>);

/// An async echo server, on a runtime of its own (2 worker threads), until dropped.
pub struct AsyncEcho {
    runtime: Runtime,
    endpoint: Endpoint,
    _dir: tempfile::TempDir,
}

impl<S: Scheme> Kind for AsyncKind<S> {
    type Client = BlockOn;
    type Server = AsyncEcho;
    const MAX: usize = S::MAX;

    fn start() -> AsyncEcho {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = crate::common::tempdir();
        let spec = match S::NAME {
            "tcp" | "udp" => format!("{}:127.0.0.1:0", S::NAME),
            _ => format!("{}:{}", S::NAME, dir.path().join("async.sock").display()),
        };
        let spec: Endpoint = spec.parse().unwrap();
        let endpoint = runtime.block_on(async {
            if spec.is_datagram() {
                let socket = msgsock::tokio::bind_datagram(&spec).await.unwrap();
                let endpoint = socket.local_endpoint().unwrap();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    while let Ok((_, Some(from))) = socket.recv_from(&mut buf).await {
                        socket.send_to(&buf, &from).await.expect("echo send_to");
                    }
                });
                endpoint
            } else {
                let listener = msgsock::tokio::bind(&spec).await.unwrap();
                let endpoint = listener.local_endpoint().unwrap();
                tokio::spawn(async move {
                    while let Ok(conn) = listener.accept().await {
                        tokio::spawn(echo(conn));
                    }
                });
                endpoint
            }
        });
        AsyncEcho {
            runtime,
            endpoint,
            _dir: dir,
        }
    }

    fn connect(server: &AsyncEcho) -> BlockOn {
        let handle = server.runtime.handle().clone();
        let conn = handle
            .block_on(msgsock::tokio::connect(&server.endpoint))
            .unwrap();
        let (recv, send) = if conn.is_datagram() {
            let socket = Arc::new(conn.into_datagram().unwrap());
            (Recv::Datagram(socket.clone()), Send::Datagram(socket))
        } else {
            let (recv, send) = conn.into_stream().unwrap().into_split();
            (Recv::Stream(recv), Send::Stream(send))
        };
        BlockOn {
            handle,
            recv: Arc::new(tokio::sync::Mutex::new(recv)),
            send: Arc::new(tokio::sync::Mutex::new(send)),
            timeouts: Arc::new(Mutex::new([None; 2])),
        }
    }
}

/// Generic echo: what a server written against the async trait looks like.
async fn echo<C: AsyncChannel>(mut chan: C) {
    let mut buf = Vec::new();
    while let Ok(Some(_)) = chan.recv_into(&mut buf).await {
        if chan.send(&buf).await.is_err() {
            return;
        }
    }
}

enum Recv {
    Stream(AsyncRecvHalf<AsyncAnyStream>),
    Datagram(Arc<AsyncDatagram>),
}

enum Send {
    Stream(AsyncSendHalf<AsyncAnyStream>),
    Datagram(Arc<AsyncDatagram>),
}

/// An async connection as a blocking [`Channel`]: the receiving and the sending half each behind
/// a lock of its own, so that clones (as `try_clone` gives) send on one thread while another
/// receives, as the blocking sockets allow.
pub struct BlockOn {
    handle: Handle,
    recv: Arc<tokio::sync::Mutex<Recv>>,
    send: Arc<tokio::sync::Mutex<Send>>,
    /// The read and the write timeout, shared by clones as a socket's options are.
    timeouts: Arc<Mutex<[Option<Duration>; 2]>>,
}

impl BlockOn {
    /// Runs `fut` to completion within the timeout in slot `which` (0 read, 1 write); running out
    /// is `TimedOut`, as a socket timeout is.
    fn run<T>(&self, which: usize, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let limit = self.timeouts.lock().unwrap()[which];
        self.handle.block_on(async {
            match limit {
                None => fut.await,
                Some(limit) => match tokio::time::timeout(limit, fut).await {
                    Ok(done) => done,
                    Err(_) => Err(io::Error::from(io::ErrorKind::TimedOut).into()),
                },
            }
        })
    }
}

impl Channel for BlockOn {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let send = self.send.clone();
        self.run(1, async move {
            match &mut *send.lock().await {
                Send::Stream(half) => half.send(msg).await,
                Send::Datagram(socket) => socket.send(msg).await,
            }
        })
    }

    fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        let recv = self.recv.clone();
        self.run(0, async move {
            match &mut *recv.lock().await {
                Recv::Stream(half) => half.recv_into(buf).await,
                Recv::Datagram(socket) => socket.recv_into(buf).await.map(Some),
            }
        })
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        self.timeouts.lock().unwrap()[0] = timeout;
        Ok(())
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        self.timeouts.lock().unwrap()[1] = timeout;
        Ok(())
    }

    fn try_clone(&self) -> Result<Self> {
        Ok(BlockOn {
            handle: self.handle.clone(),
            recv: self.recv.clone(),
            send: self.send.clone(),
            timeouts: self.timeouts.clone(),
        })
    }
}
