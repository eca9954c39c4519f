//! Unix `SOCK_SEQPACKET` sockets (`unixpacket:`): one message per packet with no length prefix,
//! end of file told from an empty message, the datagram types' limits and truncation, the
//! socket-file rules of `UnixListener`, abstract names that admit only their own uid, and the
//! runtime form.

#![cfg(any(target_os = "linux", target_os = "android"))]

mod common;
mod socket_files;

use std::fs;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use msgsock::{Endpoint, Error, SocketType, UnixListener, UnixSeqpacket, UnixSeqpacketListener};
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType};
use serial_test::serial;

use crate::common::{exists_nofollow, pattern, tempdir, GUARD_TIMEOUT};
use crate::socket_files::{lock_path, make_stale, snapshot};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A connected pair with guard timeouts, so a lost packet fails the test instead of hanging.
fn pair() -> (UnixSeqpacket, UnixSeqpacket) {
    let (a, b) = UnixSeqpacket::pair().unwrap();
    for s in [&a, &b] {
        s.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(GUARD_TIMEOUT)).unwrap();
    }
    (a, b)
}

/// A raw SEQPACKET pair that knows nothing of msgsock: the first end for msgsock, the second a
/// foreign peer.
fn raw_pair() -> (UnixSeqpacket, OwnedFd) {
    let (a, b) = socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    let ours = UnixSeqpacket::from(a);
    ours.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
    (ours, b)
}

#[test]
fn an_empty_message_and_a_closed_peer_differ() {
    let (a, b) = pair();
    a.send(b"").unwrap();
    a.send(b"between").unwrap();
    a.send(b"").unwrap();
    drop(a);
    assert_eq!(b.recv().unwrap(), Some(Vec::new()), "an empty message");
    assert_eq!(b.recv().unwrap().as_deref(), Some(&b"between"[..]));
    assert_eq!(
        b.recv().unwrap(),
        Some(Vec::new()),
        "the last, empty message"
    );
    assert_eq!(
        b.recv().unwrap(),
        None,
        "end of file after the last message"
    );
    assert_eq!(b.recv().unwrap(), None, "end of file stays");
}

/// A foreign peer's empty packet is a message too, and `shutdown(Write)` is end of file.
#[test]
fn a_foreign_empty_packet_is_a_message_and_shutdown_is_end_of_file() {
    let (ours, theirs) = raw_pair();
    socket::send(theirs.as_fd().as_raw(), b"", MsgFlags::empty()).unwrap();
    socket::shutdown(theirs.as_fd().as_raw(), socket::Shutdown::Write).unwrap();
    assert_eq!(ours.recv().unwrap(), Some(Vec::new()));
    assert_eq!(ours.recv().unwrap(), None);
}

/// Raw fd access for nix calls that take a `RawFd`.
trait AsRaw {
    fn as_raw(&self) -> std::os::fd::RawFd;
}

impl AsRaw for std::os::fd::BorrowedFd<'_> {
    fn as_raw(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(self)
    }
}

/// No length prefix: each message is exactly one packet, byte for byte, both ways.
#[test]
fn one_message_is_one_packet_with_no_prefix() {
    let (ours, theirs) = raw_pair();
    ours.send(b"hello").unwrap();
    ours.send(&pattern(5000, 3)).unwrap();
    let mut buf = [0u8; 8192];
    let n = socket::recv(theirs.as_fd().as_raw(), &mut buf, MsgFlags::empty()).unwrap();
    assert_eq!(&buf[..n], b"hello");
    let n = socket::recv(theirs.as_fd().as_raw(), &mut buf, MsgFlags::empty()).unwrap();
    assert_eq!(&buf[..n], &pattern(5000, 3)[..]);
    socket::send(theirs.as_fd().as_raw(), b"reply", MsgFlags::empty()).unwrap();
    assert_eq!(ours.recv().unwrap().as_deref(), Some(&b"reply"[..]));
}

/// A hostile peer's packet over the limit is `Truncated` with its length, discarded whole, and
/// the connection goes on with the next packet intact, as on the datagram types: the kernel keeps
/// the boundaries, so nothing is out of step.
#[test]
fn a_packet_over_the_limit_is_truncated_and_the_connection_goes_on() {
    let (a, mut b) = pair();
    b.set_max_message_len(10);
    a.send(&pattern(11, 1)).unwrap();
    a.send(b"next").unwrap();
    match b.recv() {
        Err(Error::Truncated { len: 11, max: 10 }) => {}
        other => panic!("want Truncated of 11 over 10, got {other:?}"),
    }
    assert_eq!(b.recv().unwrap().as_deref(), Some(&b"next"[..]));
    // Exactly the limit fits.
    a.send(&pattern(10, 2)).unwrap();
    assert_eq!(b.recv().unwrap(), Some(pattern(10, 2)));
}

/// A limit above the send limit peeks at each packet's length: memory follows the packet.
#[test]
fn a_limit_above_the_send_limit_receives_the_largest_packet() {
    let (a, mut b) = pair();
    b.set_max_message_len(usize::MAX);
    let big = pattern(a.send_limit(), 9);
    // One at a time: a packet this large takes the sender's whole send buffer until read.
    a.send(&big).unwrap();
    let mut buf = Vec::new();
    assert_eq!(b.recv_into(&mut buf).unwrap(), Some(big.len()));
    assert!(buf == big, "the largest packet arrives whole");
    a.send(b"").unwrap();
    assert_eq!(b.recv_into(&mut buf).unwrap(), Some(0));
    drop(a);
    assert_eq!(b.recv_into(&mut buf).unwrap(), None);
}

#[test]
fn a_message_over_the_send_limit_is_refused_before_sending() {
    let (a, b) = pair();
    let limit = a.send_limit();
    assert!(limit > 60_000, "a send limit of {limit}");
    assert_eq!(b.max_message_len(), b.send_limit(), "peers of one kind fit");
    match a.send(&vec![0; limit + 1]) {
        Err(Error::MessageTooLarge { len, max }) => {
            assert_eq!((len, max), (limit as u64 + 1, limit as u64))
        }
        other => panic!("want MessageTooLarge, got {other:?}"),
    }
    a.send(b"still fine").unwrap();
    assert_eq!(b.recv().unwrap().as_deref(), Some(&b"still fine"[..]));
}

/// Descriptors a peer attaches find no room and are closed by the kernel: none is installed in
/// this process. The pipe's read end sees end of file only if no write end is open anywhere.
// Serial with the test that starts a child, which would hold the pipe's write end until it
// execs.
#[test]
#[serial]
fn descriptors_a_peer_attaches_are_not_installed() {
    let (ours, theirs) = raw_pair();
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let fds = [std::os::fd::AsRawFd::as_raw_fd(&write_end)];
    let cmsg = [socket::ControlMessage::ScmRights(&fds)];
    let iov = [io::IoSlice::new(b"with a descriptor")];
    socket::sendmsg::<()>(
        theirs.as_fd().as_raw(),
        &iov,
        &cmsg,
        MsgFlags::empty(),
        None,
    )
    .unwrap();
    drop(write_end);
    assert_eq!(
        ours.recv().unwrap().as_deref(),
        Some(&b"with a descriptor"[..])
    );
    nix::fcntl::fcntl(
        &read_end,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let mut byte = [0u8; 1];
    // EAGAIN would mean a write end is still open: installed here and leaked.
    assert_eq!(nix::unistd::read(&read_end, &mut byte), Ok(0));
}

/// Descriptors sent with a packet come out with that packet and no other, close-on-exec, next
/// to packets with none and an empty one; end of file stays `None` for a descriptor receive;
/// more than 253 is refused before sending; and through `AnyConnection` on `unixpacket:`.
#[test]
fn descriptors_arrive_with_their_own_packet() {
    let (a, b) = pair();
    let files: Vec<fs::File> = (0..3).map(|_| tempfile::tempfile().unwrap()).collect();
    let ino = |fd: &dyn AsFd| nix::sys::stat::fstat(fd.as_fd()).unwrap().st_ino;
    a.send_with_fds(b"two", &[files[0].as_fd(), files[1].as_fd()])
        .unwrap();
    a.send(b"none").unwrap();
    a.send_with_fds(b"", &[files[2].as_fd()]).unwrap();
    let (msg, fds) = b.recv_with_fds().unwrap().expect("a packet");
    assert_eq!(msg, b"two");
    assert_eq!(fds.len(), 2);
    assert_eq!(
        (ino(&fds[0]), ino(&fds[1])),
        (ino(&files[0]), ino(&files[1]))
    );
    for fd in &fds {
        let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & nix::libc::FD_CLOEXEC, 0, "close-on-exec");
    }
    let (msg, fds) = b.recv_with_fds().unwrap().expect("a packet");
    assert_eq!((msg.as_slice(), fds.len()), (&b"none"[..], 0));
    let (msg, fds) = b
        .recv_with_fds()
        .unwrap()
        .expect("an empty packet is a message");
    assert_eq!((msg.len(), fds.len()), (0, 1));
    assert_eq!(ino(&fds[0]), ino(&files[2]));

    let many: Vec<_> = (0..254).map(|_| files[0].as_fd()).collect();
    let err = a.send_with_fds(b"too many", &many).unwrap_err();
    assert!(matches!(err, Error::TooManyFds { .. }), "{err:?}");
    drop(a);
    assert!(
        b.recv_with_fds().unwrap().is_none(),
        "end of file, nothing sent"
    );

    let dir = tempdir();
    let endpoint: Endpoint = format!("unixpacket:{}", dir.path().join("p.sock").display())
        .parse()
        .unwrap();
    let listener = msgsock::bind(&endpoint).unwrap();
    let mut client = msgsock::connect(&endpoint).unwrap();
    let mut server = listener.accept().unwrap();
    client.send_with_fds(b"any", &[files[1].as_fd()]).unwrap();
    let (msg, fds) = server.recv_with_fds().unwrap().expect("a packet");
    assert_eq!((msg.as_slice(), fds.len()), (&b"any"[..], 1));
    assert_eq!(ino(&fds[0]), ino(&files[1]));
}

/// A sender waits while its peer is behind, and a send whose write timeout expires sent none
/// of its packet: the peer receives exactly the packets whose sends succeeded, each whole.
#[test]
fn a_send_that_times_out_sent_nothing() -> TestResult {
    let (a, b) = pair();
    a.set_write_timeout(Some(Duration::from_millis(20)))?;
    let len = a.send_limit().min(16 * 1024);
    let packet = |i: usize| vec![(i % 251) as u8; len];
    let mut sent = 0;
    loop {
        match a.send(&packet(sent)) {
            Ok(()) => sent += 1,
            Err(e) if e.is_timeout() => break,
            Err(e) => return Err(e.into()),
        }
    }
    assert!(sent > 0, "the first packets fit in the send buffer");
    for i in 0..sent {
        assert_eq!(b.recv()?, Some(packet(i)), "packet {i}");
    }
    b.set_nonblocking(true)?;
    assert!(
        b.recv().unwrap_err().is_timeout(),
        "nothing of the send that timed out"
    );
    Ok(())
}

#[test]
fn std_shaped_calls() -> TestResult {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    let listener = UnixSeqpacketListener::bind(&path)?;
    let client = UnixSeqpacket::connect(&path)?;
    let (server, _) = listener.accept()?;

    let t = Some(Duration::from_secs(7));
    client.set_read_timeout(t)?;
    client.set_write_timeout(t)?;
    assert_eq!((client.read_timeout()?, client.write_timeout()?), (t, t));
    assert!(client.set_read_timeout(Some(Duration::ZERO)).is_err());
    assert_eq!(client.take_error()?.map(|e| e.kind()), None);

    server.set_nonblocking(true)?;
    assert!(server.recv().unwrap_err().is_timeout(), "WouldBlock");
    server.set_nonblocking(false)?;

    let endpoint = Endpoint::UnixSeqpacket(path.clone());
    assert_eq!(client.peer_endpoint()?, endpoint);
    assert_eq!(server.local_endpoint()?, endpoint);
    assert_eq!(listener.local_endpoint()?, endpoint);
    assert_eq!(
        client.local_endpoint().unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    let cred = server.peer_cred()?;
    assert_eq!(cred.pid, std::process::id() as i32);

    // A clone sends while the original receives.
    let clone = client.try_clone()?;
    clone.send(b"from the clone")?;
    server.set_read_timeout(Some(GUARD_TIMEOUT))?;
    assert_eq!(server.recv()?.as_deref(), Some(&b"from the clone"[..]));

    // Through a bare descriptor and back, with its limits read again.
    let fd = OwnedFd::from(server);
    let server = UnixSeqpacket::from(fd);
    client.send(b"")?;
    assert_eq!(
        server.recv()?,
        Some(Vec::new()),
        "still told from end of file"
    );

    client.shutdown(Shutdown::Write)?;
    assert_eq!(server.recv()?, None);
    assert!(format!("{client:?}").contains("UnixSeqpacket"));
    Ok(())
}

#[test]
fn a_shutdown_handle_stops_accept_and_incoming() -> TestResult {
    let listener = UnixSeqpacketListener::bind_temp()?;
    let handle = listener.shutdown_handle()?;
    let path = listener.path().to_owned();
    let client = UnixSeqpacket::connect(&path)?;
    let mut incoming = listener.incoming();
    let server = incoming.next().expect("one connection")?;
    client.send(b"hi")?;
    assert_eq!(server.recv()?.as_deref(), Some(&b"hi"[..]));
    handle.shutdown();
    assert!(incoming.next().is_none(), "incoming ends after shutdown");
    assert!(matches!(listener.accept(), Err(Error::Shutdown)));
    drop(listener);
    assert!(!exists_nofollow(&path), "bind_temp's file is removed");
    Ok(())
}

// The socket-file rules, as tests/socket_file.rs has them for `UnixListener`.

/// Connects to `path` and exchanges a packet with `listener`: `listener` serves `path`.
fn check_answers(listener: &UnixSeqpacketListener, path: &Path) {
    let client = UnixSeqpacket::connect(path).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.send(b"ping").unwrap();
    server.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
    assert_eq!(server.recv().unwrap().as_deref(), Some(&b"ping"[..]));
}

// Serial with the test that starts a child: a child forked while `make_stale` closes its
// listener holds it open until it execs, and the socket is not stale then.
#[test]
#[serial]
fn a_stale_socket_is_replaced() {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    make_stale(&path);
    let listener = UnixSeqpacketListener::bind(&path).unwrap();
    check_answers(&listener, &path);
}

fn assert_in_use(result: msgsock::Result<impl std::fmt::Debug>, want: Endpoint) {
    match result {
        Err(Error::AddrInUse { endpoint }) => assert_eq!(endpoint, want),
        other => panic!("want AddrInUse for {want}, got {other:?}"),
    }
}

/// A live SEQPACKET listener is `AddrInUse` to a second one, and to a stream or datagram bind at
/// its path: the stale probe tries every socket type, so it is never taken for stale or for an
/// error of its own.
#[test]
fn a_live_seqpacket_listener_is_addr_in_use_to_every_type() {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    let live = UnixSeqpacketListener::bind(&path).unwrap();
    let before = snapshot(&path);
    assert_in_use(
        UnixSeqpacketListener::bind(&path),
        Endpoint::UnixSeqpacket(path.clone()),
    );
    // Another msgsock server fails at the lock; one that knows nothing of the lock file is
    // stopped by the probe: take the lock away to reach it.
    // (Each failed bind removes the lock file it made.)
    fs::remove_file(lock_path(&path)).unwrap();
    assert_in_use(UnixListener::bind(&path), Endpoint::Unix(path.clone()));
    assert_in_use(
        msgsock::UnixDatagram::bind(&path),
        Endpoint::UnixDatagram(path.clone()),
    );
    assert_in_use(
        UnixSeqpacketListener::bind(&path),
        Endpoint::UnixSeqpacket(path.clone()),
    );
    assert_eq!(snapshot(&path), before, "the live socket file is untouched");
    // The three probes that found it live connected and closed at once.
    for _ in 0..3 {
        let (probe, _) = live.accept().unwrap();
        probe.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
        assert_eq!(probe.recv().unwrap(), None, "a probe sends nothing");
    }
    check_answers(&live, &path);
}

/// A live stream listener is `AddrInUse` to a SEQPACKET bind.
#[test]
fn a_live_stream_listener_is_addr_in_use_to_seqpacket() {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    let _live = UnixListener::bind(&path).unwrap();
    assert_in_use(
        UnixSeqpacketListener::bind(&path),
        Endpoint::UnixSeqpacket(path.clone()),
    );
}

#[test]
fn what_is_not_a_socket_is_refused_and_untouched() {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    fs::write(&path, b"precious").unwrap();
    let before = snapshot(&path);
    match UnixSeqpacketListener::bind(&path) {
        Err(Error::NotASocket { path: p }) => assert_eq!(p, path),
        other => panic!("want NotASocket, got {other:?}"),
    }
    assert_eq!(snapshot(&path), before);
}

#[test]
fn the_file_has_its_mode_a_lock_and_is_removed_on_drop() {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    let listener = UnixSeqpacketListener::bind(&path).unwrap();
    let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert!(exists_nofollow(&lock_path(&path)), "the bind lock is held");
    let clone = listener.try_clone().unwrap();
    drop(listener);
    assert!(exists_nofollow(&path), "a clone still listens there");
    drop(clone);
    assert!(!exists_nofollow(&path), "the last handle removes the file");
    assert!(!exists_nofollow(&lock_path(&path)), "and the lock file");

    let listener = UnixSeqpacketListener::bind_with_mode(&path, 0o660).unwrap();
    assert_eq!(mode(&path), 0o660);
    drop(listener);
}

/// A file that replaced ours at the path is another's: dropping the listener leaves it.
#[test]
fn only_its_own_file_is_removed() {
    let dir = tempdir();
    let path = dir.path().join("app.sock");
    let listener = UnixSeqpacketListener::bind(&path).unwrap();
    fs::remove_file(&path).unwrap();
    fs::write(&path, b"a successor's").unwrap();
    drop(listener);
    assert_eq!(fs::read(&path).unwrap(), b"a successor's");
}

// The runtime form.

#[test]
fn unixpacket_endpoints_bind_and_connect() -> TestResult {
    let dir = tempdir();
    let endpoint: Endpoint =
        format!("unixpacket:{}", dir.path().join("a.sock").display()).parse()?;
    assert_eq!(endpoint.socket_type(), SocketType::SeqPacket);
    let listener = msgsock::bind(&endpoint)?;
    assert_eq!(listener.local_endpoint()?, endpoint);
    let mut client = msgsock::connect(&endpoint)?;
    let mut server = listener.accept()?;
    assert!(!client.is_datagram());
    assert!(client.as_stream().is_none() && client.as_seqpacket().is_some());
    client.send(b"")?;
    client.send(b"over unixpacket")?;
    assert_eq!(server.recv()?, Some(Vec::new()));
    assert_eq!(server.recv()?.as_deref(), Some(&b"over unixpacket"[..]));
    server.set_max_message_len(4);
    assert_eq!(server.max_message_len(), 4);
    client.send(b"too long")?;
    assert!(matches!(
        server.recv(),
        Err(Error::Truncated { len: 8, max: 4 })
    ));
    server.set_max_message_len(1000);
    // The handshake needs a stream.
    let auth = msgsock::Authenticator::new(msgsock::AuthKey::new(b"key".to_vec()));
    assert!(matches!(
        client.authenticate_client(&auth),
        Err(Error::WrongSocketType {
            expected: SocketType::Stream,
            actual: SocketType::SeqPacket,
            ..
        })
    ));
    let (mut rx, mut tx) = client.split()?;
    server.send(b"to the receiving half")?;
    assert_eq!(rx.recv()?.as_deref(), Some(&b"to the receiving half"[..]));
    tx.send(b"from the sending half")?;
    assert_eq!(
        server.recv()?.as_deref(),
        Some(&b"from the sending half"[..])
    );
    drop((rx, tx));
    assert_eq!(server.recv()?, None);
    // Not a datagram endpoint.
    assert!(matches!(
        msgsock::bind_datagram(&endpoint),
        Err(Error::WrongSocketType { .. })
    ));
    Ok(())
}

/// A name no other test (or test run) uses.
fn unique(tag: &str) -> String {
    format!("msgsock-test-packet-{tag}-{}", std::process::id())
}

#[test]
fn unixpacket_at_name_is_abstract_not_a_file() -> TestResult {
    let name = unique("abstract");
    let endpoint: Endpoint = format!("unixpacket:@{name}").parse()?;
    let listener = msgsock::bind(&endpoint)?;
    assert!(!exists_nofollow(Path::new(&format!("@{name}"))));
    assert_eq!(listener.local_endpoint()?, endpoint);
    let mut client = msgsock::connect(&endpoint)?;
    let mut server = listener.accept()?;
    client.send(b"abstract")?;
    assert_eq!(server.recv()?.as_deref(), Some(&b"abstract"[..]));
    assert_eq!(client.as_seqpacket().unwrap().peer_endpoint()?, endpoint);
    Ok(())
}

/// The uid the other-user peer runs as (`nobody`).
const OTHER_UID: u32 = 65534;

/// A Python peer running as uid 65534: connects a SEQPACKET socket to the abstract `name`, says
/// `CONNECTED`, and then `GOT <n>` for the bytes of the first packet (0 at end of file).
fn other_uid_peer(
    name: &str,
) -> (
    common::ChildGuard,
    std::io::Lines<io::BufReader<std::process::ChildStdout>>,
) {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let script = "import socket, sys\n\
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n\
        s.connect('\\0' + sys.argv[1])\n\
        print('CONNECTED', flush=True)\n\
        print('GOT', len(s.recv(100)), flush=True)\n";
    let mut child = common::ChildGuard::new(
        common::python3("the other-uid SEQPACKET peer")
            .args(["-c", script, name])
            .uid(OTHER_UID)
            .gid(OTHER_UID)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the peer"),
    );
    let stdout = child.child().stdout.take().unwrap();
    (child, io::BufReader::new(stdout).lines())
}

#[test]
#[serial]
fn abstract_listener_refuses_another_uid_by_default_and_admits_it_when_opened() -> TestResult {
    if !common::root_or_skip("abstract seqpacket listener uid check") {
        return Ok(());
    }
    let name = unique("uid");
    let listener = UnixSeqpacketListener::bind_abstract(&name)?;
    let (child, mut lines) = other_uid_peer(&name);
    assert_eq!(lines.next().unwrap()?, "CONNECTED");
    // The other uid's connection is queued first; ours after it is the one handed out.
    let own = UnixSeqpacket::connect_abstract(&name)?;
    let (server, _) = listener.accept()?;
    assert_eq!(server.peer_cred()?.uid, nix::unistd::geteuid().as_raw());
    server.send(b"own")?;
    own.set_read_timeout(Some(GUARD_TIMEOUT))?;
    assert_eq!(own.recv()?.as_deref(), Some(&b"own"[..]));
    assert_eq!(
        lines.next().unwrap()?,
        "GOT 0",
        "the refused peer was closed unread"
    );
    assert!(child.wait_with_output().status.success());

    let listener = listener.allow_any_uid();
    let (child, mut lines) = other_uid_peer(&name);
    assert_eq!(lines.next().unwrap()?, "CONNECTED");
    let (server, _) = listener.accept()?;
    assert_eq!(server.peer_cred()?.uid, OTHER_UID);
    server.send(b"welcome")?;
    assert_eq!(lines.next().unwrap()?, "GOT 7");
    assert!(child.wait_with_output().status.success());
    Ok(())
}

// The async form: the blocking socket behind tokio's readiness, so the same rules.

#[cfg(feature = "tokio")]
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[cfg(feature = "tokio")]
#[test]
fn async_unixpacket_endpoints_keep_empty_messages_truncation_and_end_of_file() -> TestResult {
    block_on(async {
        let dir = tempdir();
        let endpoint: Endpoint =
            format!("unixpacket:{}", dir.path().join("a.sock").display()).parse()?;
        let listener = msgsock::tokio::bind(&endpoint).await?;
        assert_eq!(listener.local_endpoint()?, endpoint);
        let mut client = msgsock::tokio::connect(&endpoint).await?;
        let mut server = tokio::time::timeout(GUARD_TIMEOUT, listener.accept()).await??;
        assert!(!server.is_datagram() && server.as_seqpacket().is_some());
        client.send(b"").await?;
        client.send(b"async").await?;
        assert_eq!(server.recv().await?, Some(Vec::new()));
        assert_eq!(server.recv().await?.as_deref(), Some(&b"async"[..]));
        server.set_max_message_len(3);
        client.send(b"four").await?;
        client.send(b"ok").await?;
        assert!(matches!(
            server.recv().await,
            Err(Error::Truncated { len: 4, max: 3 })
        ));
        assert_eq!(server.recv().await?.as_deref(), Some(&b"ok"[..]));
        drop(client);
        assert_eq!(server.recv().await?, None);
        drop((server, listener));
        assert!(
            !exists_nofollow(&dir.path().join("a.sock")),
            "the file goes"
        );
        Ok(())
    })
}

/// Generic message code over `AsyncChannel` runs on the packet socket as it is.
#[cfg(feature = "tokio")]
#[test]
fn async_seqpacket_is_an_async_channel() -> TestResult {
    use msgsock::tokio::AsyncChannel;
    async fn ask<C: AsyncChannel>(c: &mut C, q: &[u8]) -> msgsock::Result<Option<Vec<u8>>> {
        c.send(q).await?;
        c.recv().await
    }
    block_on(async {
        let (mut a, b) = msgsock::tokio::AsyncSeqpacket::pair()?;
        let echo = async {
            let got = b.recv().await?.expect("a question");
            b.send(&got).await
        };
        let (reply, echoed) = tokio::join!(ask(&mut a, b"question"), echo);
        echoed?;
        assert_eq!(reply?.as_deref(), Some(&b"question"[..]));
        Ok(())
    })
}

/// A receive dropped before its packet came (a `select!` branch that lost) loses nothing.
#[cfg(feature = "tokio")]
#[test]
fn async_recv_is_cancel_safe() -> TestResult {
    block_on(async {
        let (a, b) = msgsock::tokio::AsyncSeqpacket::pair()?;
        tokio::select! {
            biased;
            // Nothing was sent: this branch cannot win, and its receive is dropped.
            got = b.recv() => panic!("received {got:?} before anything was sent"),
            () = std::future::ready(()) => {}
        }
        a.send(b"after the cancel").await?;
        // The dropped receive left the readiness as it was: this one is woken.
        let got = tokio::time::timeout(GUARD_TIMEOUT, b.recv()).await??;
        assert_eq!(got.as_deref(), Some(&b"after the cancel"[..]));
        Ok(())
    })
}

#[cfg(feature = "tokio")]
#[test]
#[serial]
fn async_abstract_listener_refuses_another_uid_by_default() -> TestResult {
    if !common::root_or_skip("async abstract seqpacket listener uid check") {
        return Ok(());
    }
    block_on(async {
        let name = unique("async-uid");
        let endpoint: Endpoint = format!("unixpacket:@{name}").parse()?;
        let listener = msgsock::tokio::bind(&endpoint).await?;
        let (child, mut lines) = other_uid_peer(&name);
        assert_eq!(lines.next().unwrap()?, "CONNECTED");
        let own = msgsock::tokio::connect(&endpoint).await?;
        let server = tokio::time::timeout(GUARD_TIMEOUT, listener.accept()).await??;
        let packet = server.as_seqpacket().expect("a packet socket");
        assert_eq!(packet.get_ref().peer_cred()?.pid, std::process::id() as i32);
        drop(own);
        assert_eq!(
            lines.next().unwrap()?,
            "GOT 0",
            "the refused peer was closed unread"
        );
        assert!(child.wait_with_output().status.success());
        Ok(())
    })
}
