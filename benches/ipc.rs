//! Two-process benchmark: msgsock against hand-written std socket code, on every transport.
//!
//! ```text
//! cargo bench --bench ipc               # the full run, about 2 minutes
//! cargo bench --bench ipc -- --quick    # a smoke run of a few seconds (or MSGSOCK_BENCH_QUICK=1)
//! cargo bench --bench ipc -- unix "1 MiB"  # only the cases whose names contain every word
//! ```
//!
//! The binary re-executes itself as the serving child (the `MSGSOCK_BENCH_CHILD` variable names
//! the role and the core to pin to). The child binds one listener per transport and prints the
//! addresses; for each case the parent writes a command line on the child's stdin, connects, and
//! drives: ping-pong round trips (the child echoes), or one-way streaming (the child reads all and
//! acknowledges the end). The child answers each case with its CPU time. The two processes are
//! pinned to different cores when there are two. Every repetition runs all the cases once, those
//! of a group (transport, test, size) back to back in an order that rotates from one repetition
//! to the next, so that drift in the machine's load hits every implementation alike; the table
//! quotes medians over the repetitions, and each ratio is the median of the ratios taken within a
//! repetition against the baseline with the better overall median.
//!
//! Every implementation speaks the same wire format (4-byte big-endian length, then the payload):
//! - `msgsock`: [`Connection::send`] and [`Connection::recv_into`] with a reused buffer;
//! - `msgsock batch`: [`Connection::send_batch`] of many messages per call;
//! - `msgsock spin`: `msgsock` with [`Connection::set_spin`]`(Some(DEFAULT_SPIN))` on both sides;
//! - `std writev`: blocking std socket, header and payload in one `write_vectored`, receive
//!   through a `BufReader` for small frames and straight into the reused destination for large;
//! - `std 2 writes`: the same, with the header and the payload written separately;
//! - `std spin`: the `std writev` framing on a non-blocking socket read in a loop with no budget,
//!   the plainest spinning code (small round trips only).
//!
//! Beside the two-process cases, the parent times the four system calls of a 64 B round trip
//! made back to back in itself (a write and a read on each end of a connection), with no wake-up
//! in them: what a round trip costs in system calls alone, which busy polling cannot remove. The
//! summary at the end gives
//! each of the issue's targets as the median of the per-repetition ratios with a distribution-free
//! 95% confidence interval, and says when a ratio is within noise of its limit.
//!
//! On the datagram transports (`udp`, `unixgram`) a message is one datagram, with no header:
//! - `msgsock`: a connected [`msgsock::UdpSocket`] or [`msgsock::UnixDatagram`], `send` and
//!   `recv_into` with a reused buffer;
//! - `std`: the connected std socket, `send` and `recv` into a reused fixed 64 KiB buffer.
//!
//! UDP is not streamed: it drops datagrams when the receiver falls behind, so a one-way rate
//! would count losses. The issue's targets (the summary at the end) are for the stream transports.

use std::cell::Cell;
use std::collections::HashMap;
use std::error::Error;
use std::io::{self, BufRead, BufReader, IoSlice, Read, Write};
use std::net::{
    Ipv4Addr, TcpListener as StdTcpListener, TcpStream as StdTcpStream, UdpSocket as StdUdpSocket,
};
use std::os::fd::OwnedFd;
use std::os::unix::net::{
    UnixDatagram as StdUnixDatagram, UnixListener as StdUnixListener, UnixStream as StdUnixStream,
};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use msgsock::{Channel, Connection, Stream, DEFAULT_SPIN};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::sys::resource::{getrusage, UsageWho};
use nix::unistd::Pid;

/// Set in the child's environment: the core to pin to, or `-`.
const CHILD_ENV: &str = "MSGSOCK_BENCH_CHILD";
/// `1` selects the quick mode, as `--quick` does.
const QUICK_ENV: &str = "MSGSOCK_BENCH_QUICK";

/// Guards every data socket against a stuck peer; no case comes near it.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Spin pays off for small messages, where the wake-up is most of the cost.
const SPIN_MAX_SIZE: usize = 4 << 10;
/// Batches are only measured where one message does not already fill a system call.
const BATCH_MAX_SIZE: usize = 64 << 10;
/// Bytes per `send_batch` call in the batch cases (at most 1024 messages).
const BATCH_BYTES: usize = 256 << 10;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// The std datagram baseline's receive buffer: room for every datagram size measured.
const DGRAM_BUF: usize = 64 * KIB;
/// The largest datagram measured: fits UDP's 65,507 bytes.
const DGRAM_MAX: usize = 60 * KIB;

/// The implementations compared on a stream transport: `$raw` is the std socket type, `$stream`
/// msgsock's.
macro_rules! stream_impls {
    ($raw:ty, $stream:ty) => {
        &[
            Impl {
                name: "msgsock",
                role: Role::Subject,
                wrap: msgsock_peer::<$raw, $stream, false>,
            },
            Impl {
                name: "msgsock batch",
                role: Role::Batch,
                wrap: msgsock_peer::<$raw, $stream, false>,
            },
            Impl {
                name: "msgsock spin",
                role: Role::Spin,
                wrap: msgsock_peer::<$raw, $stream, true>,
            },
            Impl {
                name: "std writev",
                role: Role::Baseline,
                wrap: std_peer::<$raw, false>,
            },
            Impl {
                name: "std 2 writes",
                role: Role::Baseline,
                wrap: std_peer::<$raw, true>,
            },
            Impl {
                name: "std spin",
                role: Role::SpinBaseline,
                wrap: std_spin_peer::<$raw>,
            },
        ]
    };
}

/// The implementations compared on a datagram transport: `$raw` is the std socket type, `$socket`
/// msgsock's.
macro_rules! datagram_impls {
    ($raw:ty, $socket:ty) => {
        &[
            Impl {
                name: "msgsock",
                role: Role::Subject,
                wrap: msgsock_dgram_peer::<$raw, $socket>,
            },
            Impl {
                name: "std",
                role: Role::Baseline,
                wrap: std_dgram_peer::<$raw>,
            },
        ]
    };
}

/// The transports measured. Adding one is one entry: how the child binds, how the parent connects,
/// the sizes, and the implementations compared there (its baselines among them). For a datagram
/// transport, `connect` can send a first datagram and the child's `accept` connect to its sender.
const TRANSPORTS: &[Transport] = &[
    Transport {
        name: "unix",
        bind: unix_bind,
        connect: unix_connect,
        rt_sizes: &[64, 4 * KIB, 64 * KIB, MIB],
        stream_sizes: &[64, 64 * KIB, MIB],
        impls: stream_impls!(StdUnixStream, msgsock::UnixStream),
        targets: true,
    },
    Transport {
        name: "tcp",
        bind: tcp_bind,
        connect: tcp_connect,
        rt_sizes: &[64, 4 * KIB, 64 * KIB, MIB],
        stream_sizes: &[64, 64 * KIB, MIB],
        impls: stream_impls!(StdTcpStream, msgsock::TcpStream),
        targets: true,
    },
    Transport {
        name: "udp",
        bind: udp_bind,
        connect: udp_connect,
        rt_sizes: &[64, 4 * KIB, DGRAM_MAX],
        // UDP drops rather than blocks a sender that outruns its receiver.
        stream_sizes: &[],
        impls: datagram_impls!(StdUdpSocket, msgsock::UdpSocket),
        targets: false,
    },
    Transport {
        name: "unixgram",
        bind: unixgram_bind,
        connect: unixgram_connect,
        rt_sizes: &[64, 4 * KIB, DGRAM_MAX],
        // A full receive queue makes the sender wait: nothing is lost.
        stream_sizes: &[64, DGRAM_MAX],
        impls: datagram_impls!(StdUnixDatagram, msgsock::UnixDatagram),
        targets: false,
    },
];

/// One transport under test.
struct Transport {
    name: &'static str,
    /// Child side: a listener and the address the parent connects to, as text.
    bind: fn() -> io::Result<Bound>,
    /// Parent side: connects to the child's address.
    connect: fn(&str) -> io::Result<OwnedFd>,
    rt_sizes: &'static [usize],
    stream_sizes: &'static [usize],
    impls: &'static [Impl],
    /// Whether the issue's targets apply (the stream transports).
    targets: bool,
}

/// One implementation of message passing over a transport's sockets.
struct Impl {
    name: &'static str,
    role: Role,
    /// Wraps a connected socket; both processes use the same wrapper.
    wrap: fn(OwnedFd) -> io::Result<Box<dyn Peer>>,
}

/// What an implementation is measured for, and against.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    /// msgsock's plain `send`/`recv_into`: round trips and streaming.
    Subject,
    /// msgsock's batched send: streaming of small and middle sizes.
    Batch,
    /// msgsock with busy-polling receives: small round trips.
    Spin,
    /// Hand-written std code: everything the subject runs; the best of these is the reference.
    Baseline,
    /// Hand-written std code that spins on a non-blocking socket with no budget: the reference
    /// for `Spin`.
    SpinBaseline,
}

/// A listener and the address the parent connects to, as text.
type Bound = (Box<dyn Accept>, String);

/// A listening socket in the child.
trait Accept {
    fn accept(&self) -> io::Result<OwnedFd>;
}

/// Whole-message I/O, as each implementation does it.
trait Peer {
    fn send(&mut self, msg: &[u8]) -> io::Result<()>;
    fn send_batch(&mut self, msgs: &[&[u8]]) -> io::Result<()> {
        msgs.iter().try_for_each(|m| self.send(m))
    }
    /// One message into the start of `buf`, returning its length; `None` at a clean close.
    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<usize>>;
}

// ---- Transports -------------------------------------------------------------------------------

struct UnixAccept {
    listener: StdUnixListener,
    // Dropped after the listener: the private directory holding the socket file.
    _dir: tempfile::TempDir,
}

impl Accept for UnixAccept {
    fn accept(&self) -> io::Result<OwnedFd> {
        let (s, _) = self.listener.accept()?;
        guard_timeouts(&s)?;
        Ok(s.into())
    }
}

fn unix_bind() -> io::Result<Bound> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.sock");
    let listener = StdUnixListener::bind(&path)?;
    let addr = path
        .to_str()
        .ok_or_else(|| io::Error::other("temp path is not UTF-8"))?
        .to_owned();
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
    guard_timeouts(&s)?;
    Ok(s.into())
}

impl Accept for StdTcpListener {
    fn accept(&self) -> io::Result<OwnedFd> {
        let (s, _) = StdTcpListener::accept(self)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
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
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s.into())
}

fn guard_timeouts(s: &StdUnixStream) -> io::Result<()> {
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))
}

// A datagram case starts with a handshake: the parent's fresh socket sends an empty datagram to
// the child's bound one; the child answers from a fresh socket of its own, connected to the
// sender, and the parent connects to where the answer came from. Each case so has its own pair of
// connected sockets, and no datagram of one case can reach another.

struct UdpAccept(StdUdpSocket);

impl Accept for UdpAccept {
    fn accept(&self) -> io::Result<OwnedFd> {
        let (_, from) = self.0.recv_from(&mut [0; 1])?;
        let s = StdUdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
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
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.send_to(&[], addr)?;
    let (_, from) = s.recv_from(&mut [0; 1])?;
    s.connect(from)?;
    Ok(s.into())
}

struct UnixgramAccept {
    socket: StdUnixDatagram,
    // Dropped after the socket: the private directory holding its file.
    _dir: tempfile::TempDir,
    // The last case's socket file, which the parent connects to after the handshake.
    case_dir: Cell<Option<tempfile::TempDir>>,
}

impl Accept for UnixgramAccept {
    fn accept(&self) -> io::Result<OwnedFd> {
        let (_, from) = self.socket.recv_from(&mut [0; 1])?;
        let from = from
            .as_pathname()
            .ok_or_else(|| io::Error::other("handshake from an unbound socket"))?;
        let dir = tempfile::tempdir()?;
        let s = StdUnixDatagram::bind(dir.path().join("case.sock"))?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        s.connect(from)?;
        s.send(&[])?;
        self.case_dir.set(Some(dir));
        Ok(s.into())
    }
}

fn unixgram_bind() -> io::Result<Bound> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.sock");
    let socket = StdUnixDatagram::bind(&path)?;
    let addr = path
        .to_str()
        .ok_or_else(|| io::Error::other("temp path is not UTF-8"))?
        .to_owned();
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
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.send_to(&[], addr)?;
    let (_, from) = s.recv_from(&mut [0; 1])?;
    let from = from
        .as_pathname()
        .ok_or_else(|| io::Error::other("handshake answer from an unbound socket"))?;
    s.connect(from)?;
    Ok(s.into())
}

// ---- Implementations --------------------------------------------------------------------------

struct Msgsock<S>(Connection<S>);

fn msgsock_peer<R, S, const SPIN: bool>(fd: OwnedFd) -> io::Result<Box<dyn Peer>>
where
    R: From<OwnedFd>,
    S: Stream + From<R> + 'static,
{
    let mut conn = Connection::new(S::from(R::from(fd)));
    if SPIN {
        conn.set_spin(Some(DEFAULT_SPIN));
    }
    Ok(Box::new(Msgsock(conn)))
}

impl<S: Stream> Peer for Msgsock<S> {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        Ok(self.0.send(msg)?)
    }
    fn send_batch(&mut self, msgs: &[&[u8]]) -> io::Result<()> {
        Ok(self.0.send_batch(msgs)?)
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
        Ok(self.0.recv_into(buf)?)
    }
}

/// The hand-written baseline: what careful blocking std code does.
struct StdFramed<R> {
    reader: BufReader<R>,
    two_writes: bool,
}

fn std_peer<R, const TWO_WRITES: bool>(fd: OwnedFd) -> io::Result<Box<dyn Peer>>
where
    R: Read + Write + From<OwnedFd> + 'static,
{
    Ok(Box::new(StdFramed {
        reader: BufReader::new(R::from(fd)),
        two_writes: TWO_WRITES,
    }))
}

impl<R: Read + Write> Peer for StdFramed<R> {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let header = u32::try_from(msg.len())
            .map_err(|_| io::Error::other("message too long for the baseline"))?
            .to_be_bytes();
        let w = self.reader.get_mut();
        if self.two_writes {
            w.write_all(&header)?;
            return w.write_all(msg);
        }
        let mut bufs = [IoSlice::new(&header), IoSlice::new(msg)];
        let mut bufs = &mut bufs[..];
        while !bufs.is_empty() {
            match w.write_vectored(bufs) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut bufs, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
        if self.reader.fill_buf()?.is_empty() {
            return Ok(None);
        }
        let mut header = [0; 4];
        self.reader.read_exact(&mut header)?;
        let len = u32::from_be_bytes(header) as usize;
        // A reused buffer: no allocation and no zeroing once it has held a message this long.
        buf.resize(len, 0);
        let buffered = self.reader.buffer();
        let have = buffered.len().min(len);
        buf[..have].copy_from_slice(&buffered[..have]);
        self.reader.consume(have);
        let rest = &mut buf[have..];
        if rest.len() < self.reader.capacity() {
            self.reader.read_exact(rest)?;
        } else {
            self.reader.get_mut().read_exact(rest)?;
        }
        Ok(Some(len))
    }
}

/// Hand-written busy polling: a non-blocking std socket, read in a loop until the bytes are
/// there, with no budget and no fallback to blocking: the plainest spinning code, the reference
/// for `msgsock spin`.
struct StdSpin<R> {
    sock: R,
    rbuf: Box<[u8]>,
    pos: usize,
    end: usize,
}

/// The std socket types, which each have their own `set_nonblocking`.
trait NonBlocking {
    fn set_nonblocking(&self, on: bool) -> io::Result<()>;
}

impl NonBlocking for StdUnixStream {
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        StdUnixStream::set_nonblocking(self, on)
    }
}

impl NonBlocking for StdTcpStream {
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        StdTcpStream::set_nonblocking(self, on)
    }
}

fn std_spin_peer<R>(fd: OwnedFd) -> io::Result<Box<dyn Peer>>
where
    R: Read + Write + NonBlocking + From<OwnedFd> + 'static,
{
    let sock = R::from(fd);
    sock.set_nonblocking(true)?;
    Ok(Box::new(StdSpin {
        sock,
        rbuf: vec![0; 8 * KIB].into_boxed_slice(),
        pos: 0,
        end: 0,
    }))
}

/// Bounds a spin loop by `IO_TIMEOUT`, as the socket timeouts bound the blocking
/// implementations, so that a peer that hangs fails the run instead of spinning forever. The
/// clock is read once every 1024 polls, so that the bound costs the loop next to nothing.
#[derive(Default)]
struct Patience {
    polls: u32,
    since: Option<Instant>,
}

impl Patience {
    fn wait(&mut self) -> io::Result<()> {
        self.polls = self.polls.wrapping_add(1);
        if self.polls.is_multiple_of(1024)
            && self.since.get_or_insert_with(Instant::now).elapsed() > IO_TIMEOUT
        {
            return Err(io::ErrorKind::TimedOut.into());
        }
        std::hint::spin_loop();
        Ok(())
    }
}

impl<R: Read + Write> StdSpin<R> {
    /// Reads until at least `want` bytes are buffered; `false` at a clean close.
    fn fill_to(&mut self, want: usize) -> io::Result<bool> {
        if self.rbuf.len() - self.pos < want {
            self.rbuf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        let mut patience = Patience::default();
        while self.end - self.pos < want {
            match self.sock.read(&mut self.rbuf[self.end..]) {
                Ok(0) => return Ok(false),
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => patience.wait()?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

impl<R: Read + Write> Peer for StdSpin<R> {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let header = u32::try_from(msg.len())
            .map_err(|_| io::Error::other("message too long for the baseline"))?
            .to_be_bytes();
        let mut bufs = [IoSlice::new(&header), IoSlice::new(msg)];
        let mut bufs = &mut bufs[..];
        let mut patience = Patience::default();
        while !bufs.is_empty() {
            match self.sock.write_vectored(bufs) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut bufs, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => patience.wait()?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
        if !self.fill_to(4)? {
            return Ok(None);
        }
        let header: [u8; 4] = self.rbuf[self.pos..self.pos + 4]
            .try_into()
            .expect("4 bytes");
        let len = u32::from_be_bytes(header) as usize;
        self.pos += 4;
        // Only small messages are spun on (SPIN_MAX_SIZE), which fit the buffer whole.
        if len > self.rbuf.len() {
            return Err(io::Error::other(
                "message too long for the spinning baseline",
            ));
        }
        if !self.fill_to(len)? {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.clear();
        buf.extend_from_slice(&self.rbuf[self.pos..self.pos + len]);
        self.pos += len;
        Ok(Some(len))
    }
}

/// msgsock's connected datagram socket: `send` and `recv_into`, through [`Channel`].
struct MsgsockDgram<C>(C);

fn msgsock_dgram_peer<R, C>(fd: OwnedFd) -> io::Result<Box<dyn Peer>>
where
    R: From<OwnedFd>,
    C: Channel + TryFrom<R> + 'static,
    C::Error: Into<Box<dyn Error + Send + Sync>>,
{
    let socket = C::try_from(R::from(fd)).map_err(io::Error::other)?;
    Ok(Box::new(MsgsockDgram(socket)))
}

impl<C: Channel> Peer for MsgsockDgram<C> {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        Ok(self.0.send(msg)?)
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
        Ok(self.0.recv_into(buf)?)
    }
}

/// The std datagram sockets' shared calls.
trait StdDatagram {
    fn send(&self, msg: &[u8]) -> io::Result<usize>;
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
}

impl StdDatagram for StdUdpSocket {
    fn send(&self, msg: &[u8]) -> io::Result<usize> {
        StdUdpSocket::send(self, msg)
    }
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        StdUdpSocket::recv(self, buf)
    }
}

impl StdDatagram for StdUnixDatagram {
    fn send(&self, msg: &[u8]) -> io::Result<usize> {
        StdUnixDatagram::send(self, msg)
    }
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        StdUnixDatagram::recv(self, buf)
    }
}

/// The hand-written datagram baseline: a connected std socket and a fixed receive buffer.
struct StdDgram<D>(D);

fn std_dgram_peer<D>(fd: OwnedFd) -> io::Result<Box<dyn Peer>>
where
    D: StdDatagram + From<OwnedFd> + 'static,
{
    Ok(Box::new(StdDgram(D::from(fd))))
}

impl<D: StdDatagram> Peer for StdDgram<D> {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        if self.0.send(msg)? != msg.len() {
            return Err(io::Error::other("datagram sent short"));
        }
        Ok(())
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
        // Zeroed once; the buffer keeps this length from then on.
        if buf.len() < DGRAM_BUF {
            buf.resize(DGRAM_BUF, 0);
        }
        Ok(Some(self.0.recv(buf)?))
    }
}

// ---- The cases --------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Test {
    RoundTrip,
    Stream,
}

impl Test {
    fn word(self) -> &'static str {
        match self {
            Test::RoundTrip => "rt",
            Test::Stream => "stream",
        }
    }
    fn parse(s: &str) -> Option<Test> {
        [Test::RoundTrip, Test::Stream]
            .into_iter()
            .find(|t| t.word() == s)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Case {
    transport: usize,
    test: Test,
    size: usize,
    imp: usize,
}

impl Case {
    fn batch(self) -> bool {
        TRANSPORTS[self.transport].impls[self.imp].role == Role::Batch
    }
}

/// Every case, in table order.
fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (t, transport) in TRANSPORTS.iter().enumerate() {
        for (test, sizes) in [
            (Test::RoundTrip, transport.rt_sizes),
            (Test::Stream, transport.stream_sizes),
        ] {
            for &size in sizes {
                for (i, imp) in transport.impls.iter().enumerate() {
                    let wanted = match (imp.role, test) {
                        (Role::Subject | Role::Baseline, _) => true,
                        (Role::Spin | Role::SpinBaseline, Test::RoundTrip) => size <= SPIN_MAX_SIZE,
                        (Role::Batch, Test::Stream) => size <= BATCH_MAX_SIZE,
                        _ => false,
                    };
                    if wanted {
                        out.push(Case {
                            transport: t,
                            test,
                            size,
                            imp: i,
                        });
                    }
                }
            }
        }
    }
    out
}

struct Config {
    reps: usize,
    /// Measured time per case and repetition.
    time: Duration,
    /// Unmeasured traffic before it.
    warmup: Duration,
}

/// One measurement of one case.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// Round trips only.
    median: Duration,
    p99: Duration,
    msgs_per_s: f64,
    bytes_per_s: f64,
    /// CPU time of both processes per message or round trip.
    cpu_per_op: Duration,
}

// ---- Parent -----------------------------------------------------------------------------------

/// Kills and reaps the child however the parent leaves.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct ChildLink {
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    addrs: Vec<String>,
}

impl ChildLink {
    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err(io::Error::other("the child exited early"));
        }
        Ok(line.trim_end().to_owned())
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    if let Ok(cpu) = std::env::var(CHILD_ENV) {
        return child(&cpu);
    }
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var(QUICK_ENV).is_ok_and(|v| v == "1");
    let cfg = if quick {
        Config {
            reps: 1,
            time: Duration::from_millis(10),
            warmup: Duration::from_millis(2),
        }
    } else {
        // Many short repetitions rather than few long ones: the load of a shared machine drifts
        // over seconds, and every repetition measures all the cases of a group side by side.
        Config {
            reps: 21,
            time: Duration::from_millis(60),
            warmup: Duration::from_millis(15),
        }
    };

    let cpus = allowed_cpus()?;
    let child_cpu = if cpus.len() >= 2 {
        pin(cpus[0])?;
        cpus[1].to_string()
    } else {
        "-".to_owned()
    };
    let mut guard = ChildGuard(
        Command::new(std::env::current_exe()?)
            .env(CHILD_ENV, &child_cpu)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?,
    );
    let mut link = ChildLink {
        stdin: guard.0.stdin.take().ok_or("no child stdin")?,
        stdout: BufReader::new(guard.0.stdout.take().ok_or("no child stdout")?),
        addrs: Vec::new(),
    };
    for _ in TRANSPORTS {
        let line = link.line()?;
        let addr = line
            .strip_prefix("addr ")
            .ok_or_else(|| format!("unexpected child line {line:?}"))?;
        link.addrs.push(addr.to_owned());
    }

    // Words that are not flags select cases, such as `unix`, `stream`, `1 MiB` or `std`.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let started = Instant::now();
    let all: Vec<Case> = cases()
        .into_iter()
        .filter(|&c| filters.iter().all(|f| describe(c).contains(f.as_str())))
        .collect();
    let mut samples: HashMap<Case, Vec<Sample>> = HashMap::new();
    let groups: Vec<&[Case]> = all
        .chunk_by(|a, b| (a.transport, a.test, a.size) == (b.transport, b.test, b.size))
        .collect();
    for rep in 0..cfg.reps {
        for group in &groups {
            // Rotate the order within a group, so that no implementation always runs first.
            for i in 0..group.len() {
                let case = group[(i + rep) % group.len()];
                let s = run_case(&mut link, case, &cfg)
                    .map_err(|e| format!("{}: {e}", describe(case)))?;
                samples.entry(case).or_default().push(s);
            }
        }
    }
    drop(link);
    let status = guard.0.wait()?;
    if !status.success() {
        return Err(format!("the child failed: {status}").into());
    }

    let results = Results(samples);
    println!(
        "msgsock ipc bench: {} cores, Linux {}, {}; {} repetition(s) of {} ms per case, medians; {:.0} s",
        cpus.len(),
        kernel(),
        if cpus.len() >= 2 {
            format!("parent pinned to cpu {}, child to cpu {}", cpus[0], cpus[1])
        } else {
            "not pinned (one core)".to_owned()
        },
        cfg.reps,
        cfg.time.as_millis(),
        started.elapsed().as_secs_f64()
    );
    print_table(&all, &results);
    if all.iter().any(|c| TRANSPORTS[c.transport].targets) {
        let syscall_costs = syscall_costs(&all, quick);
        print_checks(&results, &syscall_costs);
    }
    Ok(())
}

/// The case's transport, test and size, as in `unix stream 1 MiB`.
fn group_name(case: Case) -> String {
    format!(
        "{} {} {}",
        TRANSPORTS[case.transport].name,
        case.test.word(),
        size_name(case.size)
    )
}

fn describe(case: Case) -> String {
    let imp = TRANSPORTS[case.transport].impls[case.imp].name;
    format!("{} {imp}", group_name(case))
}

fn run_case(link: &mut ChildLink, case: Case, cfg: &Config) -> Result<Sample, Box<dyn Error>> {
    let transport = &TRANSPORTS[case.transport];
    writeln!(
        link.stdin,
        "{} {} {} {}",
        case.transport,
        case.imp,
        case.test.word(),
        case.size
    )?;
    link.stdin.flush()?;
    let fd = (transport.connect)(&link.addrs[case.transport])?;
    let mut peer = (transport.impls[case.imp].wrap)(fd)?;
    let parent = match case.test {
        Test::RoundTrip => round_trips(&mut *peer, case.size, cfg)?,
        Test::Stream => stream(&mut *peer, case.size, case.batch(), cfg)?,
    };
    let line = link.line()?;
    let mut words = line.split(' ');
    let (Some("done"), Some(cpu), Some(ops)) = (words.next(), words.next(), words.next()) else {
        return Err(format!("unexpected child line {line:?}").into());
    };
    let child_cpu_per_op = cpu.parse::<u64>()? / ops.parse::<u64>()?.max(1);
    Ok(Sample {
        cpu_per_op: parent.cpu_per_op + Duration::from_nanos(child_cpu_per_op),
        ..parent
    })
}

/// Ping-pong for `cfg.time`: one message out, the echo back, timed one by one.
fn round_trips(peer: &mut dyn Peer, size: usize, cfg: &Config) -> io::Result<Sample> {
    let msg = pattern(size);
    let mut buf = Vec::with_capacity(size);
    let mut one = |peer: &mut dyn Peer| -> io::Result<()> {
        peer.send(&msg)?;
        let n = peer.recv(&mut buf)?;
        if n != Some(size) || buf[size / 2] != msg[size / 2] {
            return Err(io::Error::other(format!("bad echo: {n:?}")));
        }
        Ok(())
    };
    let warm = Instant::now();
    while warm.elapsed() < cfg.warmup {
        one(peer)?;
    }
    // Enough room that pushing never reallocates inside the timed loop.
    let mut times: Vec<Duration> = Vec::with_capacity(1 << 20);
    let cpu0 = cpu_time()?;
    let start = Instant::now();
    while start.elapsed() < cfg.time || times.len() < 3 {
        let t = Instant::now();
        one(peer)?;
        times.push(t.elapsed());
    }
    let elapsed = start.elapsed();
    let cpu = cpu_time()? - cpu0;
    peer.send(&[])?;
    times.sort_unstable();
    let n = times.len();
    Ok(Sample {
        median: times[n / 2],
        p99: times[(n * 99 / 100).min(n - 1)],
        msgs_per_s: n as f64 / elapsed.as_secs_f64(),
        bytes_per_s: (n * size) as f64 / elapsed.as_secs_f64(),
        cpu_per_op: cpu / n as u32,
    })
}

/// One-way streaming for `cfg.time`, then the end marker and the child's acknowledgement, which
/// closes the timed window only once everything sent has been read.
fn stream(peer: &mut dyn Peer, size: usize, batch: bool, cfg: &Config) -> io::Result<Sample> {
    let msg = pattern(size);
    let per_call = if batch {
        (BATCH_BYTES / size).clamp(1, 1024)
    } else {
        1
    };
    let msgs: Vec<&[u8]> = vec![&msg; per_call];
    // Read the clock every few calls only: small sends cost little more than the clock read.
    let calls_per_check = (64 * KIB / (size * per_call)).clamp(1, 64);
    let send_for = |peer: &mut dyn Peer, time: Duration| -> io::Result<usize> {
        let start = Instant::now();
        let mut sent = 0;
        while start.elapsed() < time {
            for _ in 0..calls_per_check {
                if batch {
                    peer.send_batch(&msgs)?;
                } else {
                    peer.send(&msg)?;
                }
                sent += per_call;
            }
        }
        Ok(sent)
    };
    send_for(peer, cfg.warmup)?;
    let cpu0 = cpu_time()?;
    let start = Instant::now();
    let sent = send_for(peer, cfg.time)?;
    peer.send(&[])?;
    let mut ack = Vec::new();
    if peer.recv(&mut ack)? != Some(1) {
        return Err(io::Error::other("no acknowledgement"));
    }
    let elapsed = start.elapsed();
    let cpu = cpu_time()? - cpu0;
    Ok(Sample {
        median: Duration::ZERO,
        p99: Duration::ZERO,
        msgs_per_s: sent as f64 / elapsed.as_secs_f64(),
        bytes_per_s: (sent * size) as f64 / elapsed.as_secs_f64(),
        cpu_per_op: cpu / sent.max(1) as u32,
    })
}

fn pattern(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// Every sample, by case, in repetition order.
struct Results(HashMap<Case, Vec<Sample>>);

/// The median of `v`.
fn mid<T: Copy + PartialOrd>(mut v: Vec<T>) -> Option<T> {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v.get(v.len() / 2).copied()
}

impl Results {
    /// The median of each figure over the repetitions.
    fn median(&self, case: Case) -> Option<Sample> {
        let s = self.0.get(&case)?;
        Some(Sample {
            median: mid(s.iter().map(|s| s.median).collect())?,
            p99: mid(s.iter().map(|s| s.p99).collect())?,
            msgs_per_s: mid(s.iter().map(|s| s.msgs_per_s).collect())?,
            bytes_per_s: mid(s.iter().map(|s| s.bytes_per_s).collect())?,
            cpu_per_op: mid(s.iter().map(|s| s.cpu_per_op).collect())?,
        })
    }

    /// The median over the repetitions of `figure(case) / figure(best)`, each ratio taken
    /// within one repetition, so that slow drift in the machine's load cancels out. `best` is the
    /// one case of `other` with the best median over all repetitions: picking the better of
    /// several within each repetition would compare against the luckiest sample every time and
    /// bias every ratio against `case` by about the noise.
    fn ratio(&self, case: Case, other: &[Case], pick: Pick) -> Option<f64> {
        mid(self.ratios(case, other, pick)?)
    }

    /// The ratios behind [`ratio`](Self::ratio), one per repetition.
    fn ratios(&self, case: Case, other: &[Case], pick: Pick) -> Option<Vec<f64>> {
        let mine = self.0.get(&case)?;
        let median = |samples: &Vec<Sample>| mid(samples.iter().map(|s| pick.figure(s)).collect());
        let best = other
            .iter()
            .filter_map(|c| self.0.get(c))
            .filter_map(|samples| Some((median(samples)?, samples)))
            .reduce(|a, b| {
                let b_better = match pick {
                    Pick::Time | Pick::Cpu => b.0 < a.0,
                    Pick::Rate => b.0 > a.0,
                };
                if b_better {
                    b
                } else {
                    a
                }
            })?
            .1;
        let ratios = mine
            .iter()
            .zip(best)
            .map(|(s, theirs)| pick.figure(s) / pick.figure(theirs));
        Some(ratios.collect())
    }

    /// The round-trip median of the best std baseline of `case`'s transport, test and size.
    fn best_baseline_median(&self, case: Case) -> Option<Duration> {
        baselines(case)
            .into_iter()
            .filter_map(|c| self.median(c))
            .map(|s| s.median)
            .min()
    }

    /// [`ratio`](Self::ratio) against the best std baseline of the same transport, test and size:
    /// round-trip time for round trips, message rate for streams.
    fn vs_baseline(&self, case: Case) -> Option<f64> {
        mid(self.vs_baseline_all(case)?)
    }

    /// The ratios behind [`vs_baseline`](Self::vs_baseline), one per repetition.
    fn vs_baseline_all(&self, case: Case) -> Option<Vec<f64>> {
        let pick = match case.test {
            Test::RoundTrip => Pick::Time,
            Test::Stream => Pick::Rate,
        };
        self.ratios(case, &baselines(case), pick)
    }
}

/// The std baselines of `case`'s transport, test and size.
fn baselines(case: Case) -> Vec<Case> {
    TRANSPORTS[case.transport]
        .impls
        .iter()
        .enumerate()
        .filter(|(_, imp)| imp.role == Role::Baseline)
        .map(|(imp, _)| Case { imp, ..case })
        .collect()
}

/// The figure a ratio compares.
#[derive(Clone, Copy)]
enum Pick {
    /// Round-trip median; lower is better.
    Time,
    /// Messages per second; higher is better.
    Rate,
    /// CPU time per operation; lower is better.
    Cpu,
}

impl Pick {
    fn figure(self, s: &Sample) -> f64 {
        match self {
            Pick::Time => s.median.as_secs_f64(),
            Pick::Rate => s.msgs_per_s,
            Pick::Cpu => s.cpu_per_op.as_secs_f64(),
        }
    }
}

fn print_table(all: &[Case], results: &Results) {
    println!(
        "{:<8} {:<10} {:>7}  {:<14} {:>10} {:>10} {:>9} {:>11} {:>9} {:>9} {:>9}",
        "",
        "test",
        "size",
        "impl",
        "median",
        "p99",
        "MB/s",
        "msgs/s",
        "CPU/op",
        "time/std",
        "rate/std"
    );
    let mut last = None;
    for &case in all {
        let Some(s) = results.median(case) else {
            continue;
        };
        let transport = &TRANSPORTS[case.transport];
        let imp = &transport.impls[case.imp];
        let group = (case.transport, case.test, case.size);
        let (name, test, size) = if last == Some(group) {
            ("", "", String::new())
        } else {
            let test = match case.test {
                Test::RoundTrip => "round trip",
                Test::Stream => "stream",
            };
            (transport.name, test, size_name(case.size))
        };
        last = Some(group);
        let vs = if imp.role == Role::Baseline {
            None
        } else {
            results.vs_baseline(case).map(ratio)
        };
        let (median, p99, time_ratio, rate_ratio) = match case.test {
            Test::RoundTrip => (micros(s.median), micros(s.p99), vs, None),
            Test::Stream => (String::new(), String::new(), None, vs),
        };
        let line = format!(
            "{:<8} {:<10} {:>7}  {:<14} {:>10} {:>10} {:>9.1} {:>11.0} {:>9} {:>9} {:>9}",
            name,
            test,
            size,
            imp.name,
            median,
            p99,
            s.bytes_per_s / 1e6,
            s.msgs_per_s,
            micros(s.cpu_per_op),
            time_ratio.unwrap_or_default(),
            rate_ratio.unwrap_or_default()
        );
        println!("{}", line.trim_end());
    }
    println!(
        "CPU/op: CPU time of both processes per round trip or message. time/std: round-trip median \
         over the best std baseline's (lower is faster); rate/std: messages/s over the best std \
         baseline's (higher is faster); both ratios are taken within each repetition, then the \
         median of those is shown."
    );
    if all.iter().any(|c| TRANSPORTS[c.transport].name == "udp") {
        println!(
            "udp: no stream rows: UDP drops datagrams when the receiver falls behind, so a one-way \
             rate would count losses."
        );
    }
}

/// The issue's targets for the stream transports, each with the figure measured in this run.
/// Informative only: timings vary with the machine and are never a pass/fail criterion.
fn print_checks(results: &Results, syscall_costs: &HashMap<usize, Duration>) {
    println!("targets (stream transports):");
    for (t, transport) in TRANSPORTS.iter().enumerate() {
        if !transport.targets {
            continue;
        }
        let case = |role: Role, test: Test, size: usize| {
            let imp = transport.impls.iter().position(|i| i.role == role)?;
            Some(Case {
                transport: t,
                test,
                size,
                imp,
            })
        };
        let info = |what: &str, value: Option<f64>| {
            if let Some(v) = value {
                println!("  {:<5} {what:<58} {v:>6.3}x", transport.name);
            }
        };
        // A target on the per-repetition ratios: their median, with the 95% confidence interval
        // of that median, so that a ratio within noise of its limit reads as such.
        let bound = |what: &str, ratios: Option<Vec<f64>>, limit: Limit| {
            let Some(ratios) = ratios else { return };
            let Some(median) = mid(ratios.clone()) else {
                return;
            };
            let Some((lo, hi)) = median_ci95(ratios) else {
                println!(
                    "  {:<5} {what:<58} {median:>6.3}x  (too few repetitions for a verdict)",
                    transport.name
                );
                return;
            };
            let verdict = match (limit.holds(median), limit.holds(lo) && limit.holds(hi)) {
                (true, true) => "met",
                (true, false) => "met, within noise",
                (false, _) if limit.holds(lo) || limit.holds(hi) => "missed, within noise",
                (false, _) => "missed",
            };
            println!(
                "  {:<5} {what:<58} {median:>6.3}x  [{lo:.3}, {hi:.3}]  {verdict}",
                transport.name
            );
        };
        let check = |what: &str, value: Option<f64>, ok: &dyn Fn(f64) -> bool| {
            if let Some(v) = value {
                let verdict = if ok(v) { "met" } else { "missed" };
                println!("  {:<5} {what:<58} {v:>6.3}x  {verdict}", transport.name);
            }
        };
        for size in [64, 64 * KIB, MIB] {
            let limit = if size == 64 { 1.05 } else { 1.0 };
            bound(
                &format!(
                    "round trip {} time / best std (<= {limit:.2})",
                    size_name(size)
                ),
                case(Role::Subject, Test::RoundTrip, size).and_then(|c| results.vs_baseline_all(c)),
                Limit::AtMost(limit),
            );
        }
        for size in [64, 64 * KIB, MIB] {
            let limit = if size == 64 { 0.95 } else { 1.0 };
            bound(
                &format!("stream {} rate / best std (>= {limit:.2})", size_name(size)),
                case(Role::Subject, Test::Stream, size).and_then(|c| results.vs_baseline_all(c)),
                Limit::AtLeast(limit),
            );
        }
        let pair =
            |role: Role, test: Test| Some((case(role, test, 64)?, case(Role::Subject, test, 64)?));
        check(
            "stream 64 B batch rate / per-message send (>= 5)",
            pair(Role::Batch, Test::Stream).and_then(|(b, s)| results.ratio(b, &[s], Pick::Rate)),
            &|v| v >= 5.0,
        );
        let spin_ratio = case(Role::Spin, Test::RoundTrip, 64).and_then(|c| results.vs_baseline(c));
        // The least any socket round trip costs here, over the blocking baseline's time.
        let syscalls_ratio = syscall_costs.get(&t).and_then(|cost| {
            let blocking = case(Role::Subject, Test::RoundTrip, 64)
                .and_then(|c| results.best_baseline_median(c))?;
            Some(cost.as_secs_f64() / blocking.as_secs_f64())
        });
        check(
            "round trip 64 B spin time / best std (<= 0.20)",
            spin_ratio,
            &|v| v <= 0.2,
        );
        if let (Some(cost), Some(r)) = (syscall_costs.get(&t), syscalls_ratio) {
            println!(
                "  {:<5} {:<58} {r:>6.3}x  {}",
                transport.name,
                format!(
                    "round trip 64 B: its 4 syscalls alone ({}) / best std",
                    micros(*cost)
                ),
                if r > 0.2 {
                    "more than 0.20"
                } else {
                    "less than 0.20"
                }
            );
        }
        info(
            "round trip 64 B spin time / std spin (pure spinning)",
            pair(Role::Spin, Test::RoundTrip).and_then(|(p, _)| {
                results.ratio(
                    p,
                    &[Case {
                        imp: spin_base(t)?,
                        ..p
                    }],
                    Pick::Time,
                )
            }),
        );
        info(
            "round trip 64 B spin CPU / blocking msgsock CPU (cost)",
            pair(Role::Spin, Test::RoundTrip).and_then(|(p, s)| results.ratio(p, &[s], Pick::Cpu)),
        );
    }
}

/// What the four system calls of a 64 B round trip (a write and a read on each side) cost over
/// each stream transport among `all`'s cases, made back to back in this one process, so that
/// nobody ever waits for the other. Spinning removes the wake-ups from a round trip, not these.
fn syscall_costs(all: &[Case], quick: bool) -> HashMap<usize, Duration> {
    let mut out = HashMap::new();
    for (t, transport) in TRANSPORTS.iter().enumerate() {
        if !transport.targets || !all.iter().any(|c| c.transport == t && c.size == 64) {
            continue;
        }
        match syscall_cost(transport, quick) {
            Ok(d) => {
                out.insert(t, d);
            }
            Err(e) => eprintln!("{}: system calls not timed: {e}", transport.name),
        }
    }
    out
}

fn syscall_cost(transport: &Transport, quick: bool) -> io::Result<Duration> {
    let (listener, addr) = (transport.bind)()?;
    // Plain read(2) and write(2) on the descriptors, as the least any framing code can do.
    let mut a = std::fs::File::from((transport.connect)(&addr)?);
    let mut b = std::fs::File::from(listener.accept()?);
    let mut frame = pattern(68);
    frame[..4].copy_from_slice(&64u32.to_be_bytes());
    let mut buf = [0; 68];
    let (batches, per_batch) = if quick { (3, 1_000) } else { (11, 20_000) };
    let mut times = Vec::with_capacity(batches);
    for _ in 0..batches {
        let start = Instant::now();
        for _ in 0..per_batch {
            a.write_all(&frame)?;
            b.read_exact(&mut buf)?;
            b.write_all(&buf)?;
            a.read_exact(&mut buf)?;
        }
        times.push(start.elapsed() / per_batch);
    }
    if buf != frame[..] {
        return Err(io::Error::other("the timed frame came back changed"));
    }
    mid(times).ok_or_else(|| io::Error::other("no batches"))
}

/// A target for a ratio.
#[derive(Clone, Copy)]
enum Limit {
    AtMost(f64),
    AtLeast(f64),
}

impl Limit {
    fn holds(self, v: f64) -> bool {
        match self {
            Limit::AtMost(l) => v <= l,
            Limit::AtLeast(l) => v >= l,
        }
    }
}

/// A distribution-free 95% confidence interval for the median of `v`: the order statistics
/// `k` from each end, with `k` the largest such that fewer than `k` of `n` fair coin flips come
/// up heads with probability at most 2.5%. `None` with fewer than 6 values, which cannot give
/// 95%.
fn median_ci95(mut v: Vec<f64>) -> Option<(f64, f64)> {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len();
    // P(Binomial(n, 1/2) <= j), summed term by term.
    let mut term = 0.5f64.powi(n as i32);
    let mut cdf = 0.0;
    let mut k = 0;
    for j in 0..n {
        cdf += term;
        if cdf > 0.025 {
            break;
        }
        k = j + 1;
        term *= (n - j) as f64 / (j + 1) as f64;
    }
    (k >= 1).then(|| (v[k - 1], v[n - k]))
}

/// The index of the transport's hand-written spinning implementation.
fn spin_base(t: usize) -> Option<usize> {
    TRANSPORTS[t]
        .impls
        .iter()
        .position(|i| i.role == Role::SpinBaseline)
}

fn size_name(size: usize) -> String {
    match size {
        s if s >= MIB && s % MIB == 0 => format!("{} MiB", s / MIB),
        s if s >= KIB && s % KIB == 0 => format!("{} KiB", s / KIB),
        s => format!("{s} B"),
    }
}

fn micros(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

fn ratio(r: f64) -> String {
    format!("{r:.2}x")
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn allowed_cpus() -> nix::Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0))?;
    Ok((0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect())
}

fn pin(cpu: usize) -> nix::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)?;
    sched_setaffinity(Pid::from_raw(0), &set)
}

/// User plus system CPU time of this process.
fn cpu_time() -> io::Result<Duration> {
    let usage = getrusage(UsageWho::RUSAGE_SELF)?;
    let d = |t: nix::sys::time::TimeVal| {
        Duration::new(t.tv_sec() as u64, 0) + Duration::from_micros(t.tv_usec() as u64)
    };
    Ok(d(usage.user_time()) + d(usage.system_time()))
}

// ---- Child ------------------------------------------------------------------------------------

/// The serving side: binds every transport, prints the addresses, then serves one case per
/// command line on stdin until stdin closes.
fn child(cpu: &str) -> Result<(), Box<dyn Error>> {
    if let Ok(cpu) = cpu.parse() {
        pin(cpu)?;
    }
    let mut listeners = Vec::new();
    let mut out = io::stdout().lock();
    for transport in TRANSPORTS {
        let (listener, addr) = (transport.bind)()?;
        writeln!(out, "addr {addr}")?;
        listeners.push(listener);
    }
    out.flush()?;
    let mut lines = io::stdin().lock().lines();
    while let Some(line) = lines.next().transpose()? {
        let words: Vec<&str> = line.split(' ').collect();
        let [t, imp, test, size] = words[..] else {
            return Err(format!("bad command {line:?}").into());
        };
        let (t, imp, size): (usize, usize, usize) = (t.parse()?, imp.parse()?, size.parse()?);
        let test = Test::parse(test).ok_or("bad test")?;
        let fd = listeners[t].accept()?;
        let mut peer = (TRANSPORTS[t].impls[imp].wrap)(fd)?;
        let mut buf = Vec::with_capacity(size);
        let cpu0 = cpu_time()?;
        let mut ops = 0u64;
        // An empty message ends the case.
        while let Some(n) = peer.recv(&mut buf)?.filter(|&n| n > 0) {
            if test == Test::RoundTrip {
                peer.send(&buf[..n])?;
            }
            ops += 1;
        }
        let cpu = cpu_time()? - cpu0;
        if test == Test::Stream {
            peer.send(b"k")?;
        }
        writeln!(out, "done {} {ops}", cpu.as_nanos())?;
        out.flush()?;
    }
    Ok(())
}
