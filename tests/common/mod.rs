//! Helpers shared by the integration tests: temp dirs, trait assertions, an echo server, a raw
//! (unframed) peer, and a guard that kills child processes.

// Each test crate compiles this module and uses only part of it.
#![allow(dead_code)]

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use msgsock::{Connection, Endpoint, TcpTransport, Transport, UnixTransport};

/// How long a blocking step may take before the test fails instead of hanging. A guard against a
/// broken build, never what a test measures.
pub const GUARD_TIMEOUT: Duration = Duration::from_secs(60);

/// A Unix listener of type `ty` at `addr` (a path or an abstract name) with `listen(0)` and
/// its backlog full: a blocking connect waits, a non-blocking one fails with `EAGAIN`. Returns
/// the listener and the pending connections, to keep them open.
pub fn full_unix_listener(
    ty: nix::sys::socket::SockType,
    addr: &nix::sys::socket::UnixAddr,
) -> (std::os::fd::OwnedFd, Vec<std::os::fd::OwnedFd>) {
    use nix::sys::socket::{self, AddressFamily, SockFlag};
    use std::os::fd::AsRawFd;
    let listener = socket::socket(AddressFamily::Unix, ty, SockFlag::empty(), None).unwrap();
    socket::bind(listener.as_raw_fd(), addr).unwrap();
    socket::listen(&listener, socket::Backlog::new(0).unwrap()).unwrap();
    let mut pending = Vec::new();
    for _ in 0..64 {
        let c = socket::socket(AddressFamily::Unix, ty, SockFlag::SOCK_NONBLOCK, None).unwrap();
        match socket::connect(c.as_raw_fd(), addr) {
            Ok(()) => pending.push(c),
            Err(nix::errno::Errno::EAGAIN) => return (listener, pending),
            Err(e) => panic!("filling the backlog: {e}"),
        }
    }
    panic!("the backlog never filled");
}

/// A fresh private (0700) temporary directory, removed on drop. (tempfile's default mode is
/// 0777 minus the umask.)
pub fn tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix("msgsock-test-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .expect("create a temporary directory")
}

/// A `python3` command, or a loud failure naming `why`: where Python is the reference peer, a
/// missing interpreter must fail the test, never skip it.
pub fn python3(why: &str) -> std::process::Command {
    use std::process::{Command, Stdio};
    let ok = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "python3 is required: {why}");
    Command::new("python3")
}

/// `python3` as the reference peer for the wire format and the authkey handshake.
pub fn reference_python3() -> std::process::Command {
    python3("Python's multiprocessing is the reference peer")
}

/// Whether this process may run `test`, which needs root (to `chown` files to another user, or
/// to run a peer as one). Not root: the test fails, unless `MSGSOCK_SKIP_ROOT_TESTS=1` asks for
/// a skip, which is said loudly. CI runs as root.
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var_os("MSGSOCK_SKIP_ROOT_TESTS").is_some_and(|v| v == "1") {
        eprintln!("SKIPPED: {test} needs root (MSGSOCK_SKIP_ROOT_TESTS=1)");
        return false;
    }
    panic!("{test} must run as root; set MSGSOCK_SKIP_ROOT_TESTS=1 to skip it");
}

/// Asserts that `got` holds exactly the messages of `want`, in order, naming the first that
/// differs by its index and lengths rather than printing megabytes.
pub fn assert_same_messages(got: &[Vec<u8>], want: &[Vec<u8>]) {
    assert_eq!(got.len(), want.len(), "message count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g == w,
            "message {i}: got {} bytes, want {}",
            g.len(),
            w.len()
        );
    }
}

/// Fails to compile unless `T: Send`.
pub fn assert_send<T: Send>() {}

/// Fails to compile unless `T: Sync`.
pub fn assert_sync<T: Sync>() {}

/// `len` bytes that differ with `seed` and along the message (xorshift), so a reordered, shifted,
/// dropped or mixed-up chunk does not compare equal. A prefix of a longer pattern of the same seed
/// is the shorter one.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    pattern64(len, u64::from(seed))
}

/// [`pattern`] with a wide seed, for tests that need more than 256 distinct messages of one
/// length.
pub fn pattern64(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The frame msgsock writes for `payload` (see `msgsock::frame`).
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let header = msgsock::frame::Header::new(payload.len() as u64);
    let mut out = header.to_vec();
    out.extend_from_slice(payload);
    out
}

/// The open file a descriptor refers to, `(dev, ino)`: how the descriptor-passing tests tell
/// that a received descriptor is the one sent.
pub fn identity(fd: std::os::fd::BorrowedFd<'_>) -> (u64, u64) {
    let st = nix::sys::stat::fstat(fd).expect("fstat");
    (st.st_dev as u64, st.st_ino as u64)
}

/// The [`identity`] of each descriptor, in order.
pub fn identities<F: std::os::fd::AsFd>(fds: &[F]) -> Vec<(u64, u64)> {
    fds.iter().map(|f| identity(f.as_fd())).collect()
}

/// `n` distinct open files to send (pipes' write ends; the read ends are dropped).
pub fn files(n: usize) -> Vec<std::os::fd::OwnedFd> {
    (0..n)
        .map(|_| std::os::fd::OwnedFd::from(std::io::pipe().expect("pipe").1))
        .collect()
}

/// The descriptors of `fds`, borrowed to be sent.
pub fn borrowed(fds: &[std::os::fd::OwnedFd]) -> Vec<std::os::fd::BorrowedFd<'_>> {
    fds.iter().map(std::os::fd::AsFd::as_fd).collect()
}

/// Whether the read end of a pipe reaches end of file (every write end closed) within a
/// generous bound: a leaked write end keeps it open, and the bound says so instead of hanging.
pub fn reaches_eof(reader: &std::io::PipeReader) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(
        std::os::fd::AsFd::as_fd(reader),
        PollFlags::POLLIN,
    )];
    let ready = poll(&mut fds, PollTimeout::from(5000u16)).expect("poll");
    let mut byte = [0u8; 1];
    ready == 1 && (&*reader).read(&mut byte).expect("read") == 0
}

/// How many of the pipes whose read ends are `readers` still have a write end open anywhere
/// (a closed one reports `POLLHUP` at once).
pub fn open_writers(readers: &[std::io::PipeReader]) -> usize {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut polls: Vec<_> = readers
        .iter()
        .map(|r| PollFd::new(std::os::fd::AsFd::as_fd(r), PollFlags::POLLIN))
        .collect();
    poll(&mut polls, PollTimeout::ZERO).expect("poll");
    let hung_up = |p: &PollFd<'_>| p.revents().is_some_and(|r| r.contains(PollFlags::POLLHUP));
    polls.iter().filter(|p| !hung_up(p)).count()
}

/// A peer's frame of `len` bytes whose payload it sends on `raw` a byte at a time, each byte
/// with a new descriptor of its own (a pipe's write end, whose read end is returned), all but
/// the last byte: the drip a hostile peer can use to make a receiver hold descriptors.
pub fn drip_descriptors(
    raw: &std::os::unix::net::UnixStream,
    len: usize,
) -> Vec<std::io::PipeReader> {
    use std::io::Write;
    let frame = frame(&vec![1u8; len]);
    let header = frame.len() - len;
    (&*raw).write_all(&frame[..header]).expect("write");
    let mut readers = Vec::new();
    for byte in &frame[header..frame.len() - 1] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        send_raw_with_fds(raw, std::slice::from_ref(byte), &[writer.into()]);
        readers.push(reader);
    }
    readers
}

/// Writes `bytes` on the raw Unix stream `raw` in one `sendmsg(2)` with `fds` attached, as a
/// sender in another language might: the descriptors ride on exactly those bytes.
pub fn send_raw_with_fds(
    raw: &std::os::unix::net::UnixStream,
    bytes: &[u8],
    fds: &[std::os::fd::OwnedFd],
) {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
    use std::os::fd::AsRawFd;
    let raw_fds: Vec<_> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let sent = sendmsg::<UnixAddr>(
        raw.as_raw_fd(),
        &[io::IoSlice::new(bytes)],
        &[ControlMessage::ScmRights(&raw_fds)],
        MsgFlags::empty(),
        None,
    )
    .expect("sendmsg");
    assert_eq!(sent, bytes.len(), "a short sendmsg");
}

/// A connection on each side of a fresh listener: `(client, server)`.
pub fn connected_pair<T: Transport>() -> (Connection<T::Stream>, Connection<T::Stream>) {
    let listener = T::bind_ephemeral().expect("bind");
    let client = T::connect(&T::local_addr(&listener).expect("local_addr")).expect("connect");
    let server = T::accept(&listener).expect("accept");
    guard_timeouts(&client);
    guard_timeouts(&server);
    (client, server)
}

/// Sets [`GUARD_TIMEOUT`] as read and write timeout, so a lost message fails the test.
pub fn guard_timeouts<C: msgsock::Channel>(conn: &C) {
    conn.set_read_timeout(Some(GUARD_TIMEOUT))
        .expect("set_read_timeout");
    conn.set_write_timeout(Some(GUARD_TIMEOUT))
        .expect("set_write_timeout");
}

/// A transport's plain std socket, for writing and reading unframed bytes as a foreign peer would.
pub trait RawConnect: Transport {
    /// The std stream type.
    type Raw: Read + Write + Send + fmt::Debug + 'static;

    /// Connects a std socket to `addr`, with [`GUARD_TIMEOUT`] on reads and writes.
    fn raw_connect(addr: &Self::Addr) -> Self::Raw;

    /// Shuts down the write half: the peer sees end of stream.
    fn raw_shutdown_write(raw: &Self::Raw);
}

impl RawConnect for UnixTransport {
    type Raw = std::os::unix::net::UnixStream;

    fn raw_connect(addr: &PathBuf) -> Self::Raw {
        let s = std::os::unix::net::UnixStream::connect(addr).expect("raw unix connect");
        s.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(GUARD_TIMEOUT)).unwrap();
        s
    }

    fn raw_shutdown_write(raw: &Self::Raw) {
        raw.shutdown(std::net::Shutdown::Write).unwrap();
    }
}

impl RawConnect for TcpTransport {
    type Raw = std::net::TcpStream;

    fn raw_connect(addr: &SocketAddr) -> Self::Raw {
        let s = std::net::TcpStream::connect(addr).expect("raw tcp connect");
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(GUARD_TIMEOUT)).unwrap();
        s
    }

    fn raw_shutdown_write(raw: &Self::Raw) {
        raw.shutdown(std::net::Shutdown::Write).unwrap();
    }
}

/// A server on a fresh endpoint of `T` that echoes every message on every connection, each on its
/// own thread. Dropping it stops accepting and removes its endpoint.
pub struct EchoServer<T: Transport> {
    addr: T::Addr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    errors: mpsc::Receiver<msgsock::Error>,
}

impl<T: Transport> EchoServer<T> {
    /// Starts a server with the default message limit.
    pub fn start() -> Self {
        Self::with_max_message_len(msgsock::DEFAULT_MAX_MESSAGE_LEN)
    }

    /// Starts a server whose connections accept messages of at most `max` bytes.
    pub fn with_max_message_len(max: u64) -> Self {
        Self::on(T::bind_ephemeral().expect("bind_ephemeral"), max)
    }

    /// Serves on `listener`, accepting messages of at most `max` bytes.
    pub fn on(listener: T::Listener, max: u64) -> Self {
        let addr = T::local_addr(&listener).expect("local_addr");
        let stop = Arc::new(AtomicBool::new(false));
        let (err_tx, errors) = mpsc::channel();
        let acceptor = thread::spawn({
            let stop = Arc::clone(&stop);
            move || loop {
                let accepted = T::accept(&listener);
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                match accepted {
                    Ok(conn) => {
                        let err_tx = err_tx.clone();
                        thread::spawn(move || {
                            if let Err(e) = echo(conn.with_max_message_len(max)) {
                                let _ = err_tx.send(e);
                            }
                        });
                    }
                    Err(e) => {
                        let _ = err_tx.send(e);
                        return;
                    }
                }
            }
        });
        EchoServer {
            addr,
            stop,
            acceptor: Some(acceptor),
            errors,
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> &T::Addr {
        &self.addr
    }

    /// The address as an endpoint.
    pub fn endpoint(&self) -> Endpoint {
        T::endpoint(&self.addr)
    }

    /// Connects a client with guard timeouts.
    pub fn connect(&self) -> Connection<T::Stream> {
        let conn = T::connect(&self.addr).expect("connect to echo server");
        guard_timeouts(&conn);
        conn
    }

    /// The next error a connection of the server ended with; fails the test if none comes.
    pub fn next_error(&self) -> msgsock::Error {
        self.errors
            .recv_timeout(GUARD_TIMEOUT)
            .expect("the echo server reported no error")
    }
}

impl<T: Transport> Drop for EchoServer<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag and drops the listener (and its temp dir).
        if T::connect(&self.addr).is_ok() {
            if let Some(acceptor) = self.acceptor.take() {
                let _ = acceptor.join();
            }
        }
    }
}

/// Echoes every message until a clean close.
fn echo<S: msgsock::Stream>(mut conn: Connection<S>) -> msgsock::Result<()> {
    let mut buf = Vec::new();
    while conn.recv_into(&mut buf)?.is_some() {
        conn.send(&buf)?;
    }
    Ok(())
}

/// A child process, killed and reaped when dropped so no test leaves one behind.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
}

impl ChildGuard {
    /// Guards `child`.
    pub fn new(child: Child) -> Self {
        ChildGuard { child: Some(child) }
    }

    /// The child, for its pid and pipes.
    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("child present until waited for")
    }

    /// The exit status if the child has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child().try_wait().expect("try_wait")
    }

    /// Waits for the child to exit, collecting whatever its piped outputs still hold.
    pub fn wait_with_output(mut self) -> Output {
        let child = self.child.take().expect("child present");
        child.wait_with_output().expect("wait for child")
    }

    /// Sends `SIGKILL` and waits for the child.
    pub fn kill(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("child present");
        child.kill().expect("kill child");
        child.wait().expect("wait for child")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Stdout and stderr of a finished child, for failure messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Whether `path` exists without following a final symlink.
pub fn exists_nofollow(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Reads exactly `len` bytes from `r`.
pub fn read_exact_vec<R: Read>(r: &mut R, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// The system call number thread `tid` of this process is blocked in, if any
/// (`/proc/self/task/TID/syscall`): how a test knows another thread really waits in the kernel.
pub fn blocked_in(tid: nix::unistd::Pid) -> Option<nix::libc::c_long> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    // "NR args... sp pc" while in a call; "running" or "-1 sp pc" otherwise.
    text.split_whitespace().next()?.parse().ok()
}

/// This test binary run again as a child that runs only its ignored test `test` (the child's
/// half of a two-process test, its role told in environment variables): stdin closed, stdout
/// and stderr piped, which the caller may change.
pub fn this_test_as_child(test: &str) -> std::process::Command {
    use std::process::Stdio;
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args([
        "--exact",
        test,
        "--include-ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

/// Printed by a child test process when it has done its part, so a filter that ran no test is
/// caught (see [`assert_child_done`]).
pub const DONE: &str = "CHILD DONE";

/// Waits for the child and checks that it ran its role and passed.
pub fn assert_child_done(child: ChildGuard) -> Output {
    let output = child.wait_with_output();
    assert!(
        output.status.success(),
        "child failed:\n{}",
        describe(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(DONE),
        "the child test did not run:\n{}",
        describe(&output)
    );
    output
}
