//! Signals interrupting blocking calls. With a handler installed without `SA_RESTART`, a signal
//! makes a blocked `read(2)`/`recvmsg(2)` fail with `EINTR` and a blocked `sendmsg(2)` return
//! short; msgsock retries both, so the caller sees the message intact and never an error.
//!
//! Each test waits until the target thread is really blocked in the system call (its
//! `/proc/self/task/TID/syscall`), signals that thread alone (`pthread_kill`), waits for the
//! handler to run and for the thread to block in the same call again, and only then lets the
//! data through.

mod common;

use std::io::Write;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use msgsock::frame::Header;
use msgsock::{
    Channel, Connection, DatagramTransport, TcpTransport, Transport, UdpTransport,
    UnixDatagramTransport, UnixTransport,
};
use nix::libc;
use nix::sys::pthread::{pthread_kill, pthread_self, Pthread};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::socket::{setsockopt, sockopt};
use nix::unistd::{gettid, Pid};
use serial_test::serial;

use crate::common::{blocked_in, pattern};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A failure guard only: how long to wait for a thread to reach a state before failing.
const GUARD: Duration = Duration::from_secs(30);

/// How many times each blocked call is interrupted.
const SIGNALS: usize = 3;

/// The system calls msgsock may be blocked in while receiving or sending.
const READS: [libc::c_long; 4] = [
    libc::SYS_read,
    libc::SYS_readv,
    libc::SYS_recvfrom,
    libc::SYS_recvmsg,
];
const WRITES: [libc::c_long; 4] = [
    libc::SYS_write,
    libc::SYS_writev,
    libc::SYS_sendto,
    libc::SYS_sendmsg,
];

static HITS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    HITS.fetch_add(1, Ordering::SeqCst);
}

/// `SIGUSR1` handled by `count_signal` without `SA_RESTART`; the old disposition comes back on
/// drop. Tests holding one are `#[serial]`: the disposition is process-wide.
struct Handler {
    old: SigAction,
}

impl Handler {
    fn install() -> Handler {
        let action = SigAction::new(
            SigHandler::Handler(count_signal),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler only increments an atomic, which is async-signal-safe; nothing
        // else in this process uses SIGUSR1, and tests that change it run one at a time.
        let old = unsafe { sigaction(Signal::SIGUSR1, &action) }.expect("sigaction");
        Handler { old }
    }
}

impl Drop for Handler {
    fn drop(&mut self) {
        // SAFETY: puts back the disposition `install` replaced; every signal sent was handled
        // (each test waits for the handler), so none is pending to meet the old one.
        unsafe { sigaction(Signal::SIGUSR1, &self.old) }.expect("restore sigaction");
    }
}

/// A thread that says who it is (for `pthread_kill` and `/proc`) before running its work.
struct Marked<T> {
    handle: JoinHandle<T>,
    pthread: Pthread,
    tid: Pid,
}

fn spawn_marked<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Marked<T> {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        tx.send((pthread_self(), gettid())).unwrap();
        f()
    });
    let (pthread, tid) = rx.recv().expect("the thread started");
    Marked {
        handle,
        pthread,
        tid,
    }
}

fn wait_for<T>(thread: &Marked<T>, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + GUARD;
    while !done() {
        assert!(
            !thread.handle.is_finished(),
            "the thread returned while {what}"
        );
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        thread::yield_now();
    }
}

/// Interrupts `thread`, blocked in one of `calls`, `SIGNALS` times; checks each time that the
/// handler ran and that the thread went back into the call rather than returning.
fn interrupt<T>(thread: &Marked<T>, calls: &[libc::c_long]) {
    let in_call = || blocked_in(thread.tid).is_some_and(|nr| calls.contains(&nr));
    wait_for(thread, "waiting for it to block", in_call);
    for _ in 0..SIGNALS {
        let before = HITS.load(Ordering::SeqCst);
        pthread_kill(thread.pthread, Signal::SIGUSR1).expect("pthread_kill");
        wait_for(thread, "waiting for the handler", || {
            HITS.load(Ordering::SeqCst) > before
        });
        wait_for(thread, "waiting for it to block again", in_call);
    }
}

/// A connected client and server of `T`, with guard timeouts.
type Pair<T> = (
    Connection<<T as Transport>::Stream>,
    Connection<<T as Transport>::Stream>,
);

fn stream_pair<T: Transport>() -> msgsock::Result<Pair<T>> {
    let listener = T::bind_ephemeral()?;
    let client = T::connect(&T::local_addr(&listener)?)?;
    let server = T::accept(&listener)?;
    for c in [&client, &server] {
        c.set_read_timeout(Some(GUARD))?;
        c.set_write_timeout(Some(GUARD))?;
    }
    Ok((client, server))
}

/// A `recv` blocked before any byte of a frame, interrupted, then given the frame.
fn recv_interrupted_between_frames<T: Transport>() -> TestResult {
    let _handler = Handler::install();
    let (mut tx, mut rx) = stream_pair::<T>()?;
    let receiver = spawn_marked(move || rx.recv());
    interrupt(&receiver, &READS);
    let msg = pattern(5000, 1);
    tx.send(&msg)?;
    let got = receiver.handle.join().expect("receiver thread");
    assert_eq!(got?, Some(msg));
    Ok(())
}

/// A `recv` blocked in the middle of a payload (past the read buffer, so it reads straight into
/// the message), interrupted, then given the rest.
fn recv_interrupted_mid_frame<T: Transport>() -> TestResult {
    let _handler = Handler::install();
    let (tx, mut rx) = stream_pair::<T>()?;
    let msg = pattern(100_000, 2);
    let mut wire = Header::new(msg.len() as u64).to_vec();
    wire.extend_from_slice(&msg);
    let mut raw = tx.into_inner();
    raw.write_all(&wire[..40_000])?;
    let receiver = spawn_marked(move || rx.recv());
    interrupt(&receiver, &READS);
    raw.write_all(&wire[40_000..])?;
    let got = receiver.handle.join().expect("receiver thread");
    assert_eq!(got?, Some(msg));
    Ok(())
}

/// A 1 MiB `send` through a minimal send buffer to a peer that is not reading yet: it blocks in
/// `sendmsg(2)` with part of the message taken, so each signal makes the call return short.
fn send_interrupted_with_a_full_buffer<T: Transport>() -> TestResult {
    let _handler = Handler::install();
    let (mut tx, mut rx) = stream_pair::<T>()?;
    setsockopt(&tx.as_fd(), sockopt::SndBuf, &4096)?;
    // Far below 1 MiB, so the sender must block, yet large enough for a TCP window that does not
    // crawl (a minimal one makes the transfer take seconds of delayed ACKs).
    setsockopt(&rx.as_fd(), sockopt::RcvBuf, &(64 * 1024))?;
    let msg = pattern(1 << 20, 3);
    let sent = msg.clone();
    let sender = spawn_marked(move || tx.send(&sent).map(|()| tx));
    interrupt(&sender, &WRITES);
    assert_eq!(rx.recv()?, Some(msg));
    let mut tx = sender.handle.join().expect("sender thread")?;
    // The frame ended where it should: the next one is read whole too.
    tx.send(b"next")?;
    assert_eq!(rx.recv()?.as_deref(), Some(&b"next"[..]));
    tx.shutdown(std::net::Shutdown::Write)?;
    assert_eq!(rx.recv()?, None);
    Ok(())
}

/// A datagram `recv` on a connected socket, interrupted, then given the datagram.
fn datagram_recv_interrupted<T: DatagramTransport>() -> TestResult {
    let _handler = Handler::install();
    let server = T::bind_ephemeral()?;
    let mut client = T::connect(&T::local_addr(&server)?)?;
    client.set_read_timeout(Some(GUARD))?;
    let client_addr = T::local_addr(&client)?;
    let receiver = spawn_marked(move || client.recv());
    interrupt(&receiver, &READS);
    let msg = pattern(1200, 4);
    T::send_to(&server, &msg, &client_addr)?;
    let got = receiver.handle.join().expect("receiver thread");
    assert_eq!(got?, Some(msg));
    Ok(())
}

/// A `try_send_to_within` waiting in `poll(2)` for room in its own send buffer, interrupted:
/// the signal must not cut the wait short, so the send goes out once the receiver drains.
fn try_send_to_within_interrupted_keeps_waiting() -> TestResult {
    let _handler = Handler::install();
    let receiver = msgsock::UnixDatagram::bind_temp()?;
    let to = receiver.path().expect("bound").to_owned();
    let sender = msgsock::UnixDatagram::bind_temp()?;
    // Queued datagrams are charged to the sender until received: a few fill so small a buffer,
    // well before the receiver's queue (net.unix.max_dgram_qlen, at least 10) is full.
    setsockopt(&sender.as_fd(), sockopt::SndBuf, &4096)?;
    let msg = pattern(1024, 5);
    let mut queued = 0;
    while sender.try_send_to(&msg, &to).is_ok() {
        queued += 1;
    }
    assert!((1..10).contains(&queued), "{queued} datagrams fit");
    let sent = msg.clone();
    let waiter = spawn_marked(move || sender.try_send_to_within(&sent, &to, GUARD));
    interrupt(&waiter, &[libc::SYS_poll, libc::SYS_ppoll]);
    receiver.set_read_timeout(Some(GUARD))?;
    for _ in 0..=queued {
        assert_eq!(receiver.recv()?, msg);
    }
    waiter.handle.join().expect("waiting thread")?;
    Ok(())
}

#[test]
#[serial]
fn handler_counts_signals_sent_to_this_thread() {
    // Guards the machinery the other tests rely on.
    let _handler = Handler::install();
    let before = HITS.load(Ordering::SeqCst);
    pthread_kill(pthread_self(), Signal::SIGUSR1).unwrap();
    assert!(HITS.load(Ordering::SeqCst) > before);
}

macro_rules! signal_tests {
    ($($name:ident => $body:expr),+ $(,)?) => {$(
        #[test]
        #[serial]
        fn $name() -> TestResult {
            $body
        }
    )+};
}

signal_tests! {
    unix_recv_interrupted_between_frames => recv_interrupted_between_frames::<UnixTransport>(),
    tcp_recv_interrupted_between_frames => recv_interrupted_between_frames::<TcpTransport>(),
    unix_recv_interrupted_mid_frame => recv_interrupted_mid_frame::<UnixTransport>(),
    tcp_recv_interrupted_mid_frame => recv_interrupted_mid_frame::<TcpTransport>(),
    unix_send_interrupted_with_a_full_buffer => send_interrupted_with_a_full_buffer::<UnixTransport>(),
    tcp_send_interrupted_with_a_full_buffer => send_interrupted_with_a_full_buffer::<TcpTransport>(),
    udp_recv_interrupted => datagram_recv_interrupted::<UdpTransport>(),
    unixgram_recv_interrupted => datagram_recv_interrupted::<UnixDatagramTransport>(),
    unixgram_try_send_to_within_interrupted_keeps_waiting => try_send_to_within_interrupted_keeps_waiting(),
}
