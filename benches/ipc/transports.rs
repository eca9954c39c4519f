//! The socket families measured, and how each one's two processes get a connected socket: the
//! child binds once and accepts one socket per case; the parent connects.
//!
//! A datagram case starts with a handshake: the parent's fresh socket sends an empty datagram to
//! the child's bound one; the child answers from a fresh socket of its own, connected to the
//! sender, and the parent connects to where the answer came from. Each case so has its own pair
//! of connected sockets, and no datagram of one case can reach another.

use std::cell::Cell;
use std::io;
use std::net::{
    Ipv4Addr, TcpListener as StdTcpListener, TcpStream as StdTcpStream, UdpSocket as StdUdpSocket,
};
use std::os::fd::OwnedFd;
use std::os::unix::net::{
    UnixDatagram as StdUnixDatagram, UnixListener as StdUnixListener, UnixStream as StdUnixStream,
};
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use tempfile::TempDir;

use crate::impls::{self, Impl};
use crate::patterns::Pattern;
use crate::std_sockets::StdSocket;
use crate::{KIB, MIB};

/// Guards every data socket against a stuck peer; no case comes near it.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest datagram measured: fits UDP's 65,507 bytes.
pub(crate) const DGRAM_MAX: usize = 60 * KIB;

/// One socket family under test (named so as not to shadow the library's `Transport`).
pub(crate) struct Family {
    pub(crate) name: &'static str,
    /// Child side: a listener and the address the parent connects to, as text.
    pub(crate) bind: fn() -> io::Result<Bound>,
    /// Parent side: connects to the child's address.
    pub(crate) connect: fn(&str) -> io::Result<OwnedFd>,
    rt_sizes: &'static [usize],
    stream_sizes: &'static [usize],
    echo_sizes: &'static [usize],
    /// The implementations compared here, their baselines among them.
    pub(crate) impls: Vec<Impl>,
    /// Whether the targets apply (the stream families).
    pub(crate) targets: bool,
}

impl Family {
    /// The message sizes `pattern` is measured with.
    pub(crate) fn sizes(&self, pattern: Pattern) -> &'static [usize] {
        match pattern {
            Pattern::RoundTrip => self.rt_sizes,
            Pattern::Stream => self.stream_sizes,
            Pattern::EchoStream => self.echo_sizes,
        }
    }
}

/// The families measured. Adding one is one entry: how the child binds, how the parent connects,
/// the sizes, and the implementations compared there. For a datagram family, `connect` can send a
/// first datagram and the child's `accept` connect to its sender.
pub(crate) fn families() -> &'static [Family] {
    static FAMILIES: LazyLock<Vec<Family>> = LazyLock::new(|| {
        vec![
            Family {
                name: "unix",
                bind: unix_bind,
                connect: unix_connect,
                rt_sizes: &[64, 4 * KIB, 64 * KIB, MIB],
                stream_sizes: &[64, 4 * KIB, 64 * KIB, MIB],
                echo_sizes: &[64, 4 * KIB, 64 * KIB, MIB],
                impls: [
                    impls::stream::<StdUnixStream, msgsock::UnixStream>(true),
                    #[cfg(feature = "tokio")]
                    impls::async_stream::<tokio::net::UnixStream>(true),
                ]
                .into_iter()
                .flatten()
                .collect(),
                targets: true,
            },
            Family {
                name: "tcp",
                bind: tcp_bind,
                connect: tcp_connect,
                rt_sizes: &[64, 4 * KIB, 64 * KIB, MIB],
                stream_sizes: &[64, 4 * KIB, 64 * KIB, MIB],
                echo_sizes: &[64, 4 * KIB, 64 * KIB, MIB],
                impls: [
                    impls::stream::<StdTcpStream, msgsock::TcpStream>(false),
                    #[cfg(feature = "tokio")]
                    impls::async_stream::<tokio::net::TcpStream>(false),
                ]
                .into_iter()
                .flatten()
                .collect(),
                targets: true,
            },
            Family {
                name: "udp",
                bind: udp_bind,
                connect: udp_connect,
                rt_sizes: &[64, 4 * KIB, DGRAM_MAX],
                // UDP drops rather than blocks a sender that outruns its receiver.
                stream_sizes: &[],
                echo_sizes: &[],
                impls: impls::datagram::<StdUdpSocket, msgsock::UdpSocket>(),
                targets: false,
            },
            Family {
                name: "unixgram",
                bind: unixgram_bind,
                connect: unixgram_connect,
                rt_sizes: &[64, 4 * KIB, DGRAM_MAX],
                // A full receive queue makes the sender wait: nothing is lost.
                stream_sizes: &[64, DGRAM_MAX],
                // Echo streaming is a relay's pattern, measured where relays run: on streams.
                echo_sizes: &[],
                impls: impls::datagram::<StdUnixDatagram, msgsock::UnixDatagram>(),
                targets: false,
            },
        ]
    });
    &FAMILIES
}

/// A listener and the address the parent connects to, as text.
pub(crate) type Bound = (Box<dyn Accept>, String);

/// A listening socket in the child.
pub(crate) trait Accept {
    fn accept(&self) -> io::Result<OwnedFd>;
}

/// Sets both timeouts to [`IO_TIMEOUT`].
fn guard<S: StdSocket>(s: &S) -> io::Result<()> {
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))
}

/// A private directory for a socket file, the file's path in it, and that path as text.
fn private_path(file: &str) -> io::Result<(TempDir, PathBuf, String)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(file);
    let addr = path
        .to_str()
        .ok_or_else(|| io::Error::other("temp path is not UTF-8"))?
        .to_owned();
    Ok((dir, path, addr))
}

struct UnixAccept {
    listener: StdUnixListener,
    // Dropped after the listener: the private directory holding the socket file.
    _dir: TempDir,
}

impl Accept for UnixAccept {
    fn accept(&self) -> io::Result<OwnedFd> {
        let (s, _) = self.listener.accept()?;
        guard(&s)?;
        Ok(s.into())
    }
}

fn unix_bind() -> io::Result<Bound> {
    let (dir, path, addr) = private_path("bench.sock")?;
    let listener = StdUnixListener::bind(&path)?;
    Ok((
        Box::new(UnixAccept {
            listener,
            _dir: dir,
        }),
        addr,
    ))
}

fn unix_connect(addr: &str) -> io::Result<OwnedFd> {
    let s = StdUnixStream::connect(addr)?;
    guard(&s)?;
    Ok(s.into())
}

impl Accept for StdTcpListener {
    fn accept(&self) -> io::Result<OwnedFd> {
        let (s, _) = StdTcpListener::accept(self)?;
        s.set_nodelay(true)?;
        guard(&s)?;
        Ok(s.into())
    }
}

fn tcp_bind() -> io::Result<Bound> {
    let listener = StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = listener.local_addr()?.to_string();
    Ok((Box::new(listener), addr))
}

fn tcp_connect(addr: &str) -> io::Result<OwnedFd> {
    let s = StdTcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    guard(&s)?;
    Ok(s.into())
}

struct UdpAccept(StdUdpSocket);

impl Accept for UdpAccept {
    fn accept(&self) -> io::Result<OwnedFd> {
        let (_, from) = self.0.recv_from(&mut [0; 1])?;
        let s = StdUdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        guard(&s)?;
        s.connect(from)?;
        s.send(&[])?;
        Ok(s.into())
    }
}

fn udp_bind() -> io::Result<Bound> {
    let s = StdUdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = s.local_addr()?.to_string();
    Ok((Box::new(UdpAccept(s)), addr))
}

fn udp_connect(addr: &str) -> io::Result<OwnedFd> {
    let s = StdUdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    guard(&s)?;
    s.send_to(&[], addr)?;
    let (_, from) = s.recv_from(&mut [0; 1])?;
    s.connect(from)?;
    Ok(s.into())
}

struct UnixgramAccept {
    socket: StdUnixDatagram,
    // Dropped after the socket: the private directory holding its file.
    _dir: TempDir,
    // The last case's socket file, which the parent connects to after the handshake.
    case_dir: Cell<Option<TempDir>>,
}

impl Accept for UnixgramAccept {
    fn accept(&self) -> io::Result<OwnedFd> {
        let (_, from) = self.socket.recv_from(&mut [0; 1])?;
        let from = from
            .as_pathname()
            .ok_or_else(|| io::Error::other("handshake from an unbound socket"))?;
        let dir = tempfile::tempdir()?;
        let s = StdUnixDatagram::bind(dir.path().join("case.sock"))?;
        guard(&s)?;
        s.connect(from)?;
        s.send(&[])?;
        self.case_dir.set(Some(dir));
        Ok(s.into())
    }
}

fn unixgram_bind() -> io::Result<Bound> {
    let (dir, path, addr) = private_path("bench.sock")?;
    let socket = StdUnixDatagram::bind(&path)?;
    Ok((
        Box::new(UnixgramAccept {
            socket,
            _dir: dir,
            case_dir: Cell::new(None),
        }),
        addr,
    ))
}

fn unixgram_connect(addr: &str) -> io::Result<OwnedFd> {
    // Only needed until the child has connected to it, which it does before answering.
    let dir = tempfile::tempdir()?;
    let s = StdUnixDatagram::bind(dir.path().join("parent.sock"))?;
    guard(&s)?;
    s.send_to(&[], addr)?;
    let (_, from) = s.recv_from(&mut [0; 1])?;
    let from = from
        .as_pathname()
        .ok_or_else(|| io::Error::other("handshake answer from an unbound socket"))?;
    s.connect(from)?;
    Ok(s.into())
}
