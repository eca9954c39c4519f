// Included by `tests/echo_features.rs` (the blocking `echo`) and `tests/echo_features_async.rs` (`echo_async`):
// see `tests/procs` for how each picks its binary.

use std::io::{Read, Write};
use std::net::UdpSocket as StdUdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram as StdUnixDatagram, UnixStream as StdUnixStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use msgsock::Endpoint;
use nix::sys::signal::Signal;

use crate::common::{reference_python3 as python3, root_or_skip};
use crate::procs::{assert_echoes, client, echo, files_in, Finished, Proc, TestResult, PATIENCE};

/// Runs `echo ARGS` with `input` on stdin (and `TMPDIR` set to `tmp`), to its end.
fn echo_with_stdin(args: &[&str], input: &str, tmp: &Path) -> Finished {
    let mut cmd = echo(args);
    cmd.stdin(Stdio::piped()).env("TMPDIR", tmp);
    let mut client = Proc::spawn(&mut cmd);
    let mut stdin = client.child.stdin.take().expect("piped stdin");
    // A client that fails (a wrong key) may exit before it reads: its exit status tells.
    match stdin.write_all(input.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            panic!("write the client's stdin: {e}")
        }
        _ => drop(stdin),
    }
    client.finish()
}

/// Sends SIGTERM and asserts a clean exit.
fn stop(server: Proc) -> Finished {
    server.signal(Signal::SIGTERM);
    let out = server.finish();
    out.assert_clean_exit();
    out
}

/// `unix:` and `tcp:` endpoints for a server: a socket in `dir`, or loopback on port 0.
fn stream_endpoint(family: &str, dir: &Path) -> String {
    match family {
        "unix" => format!("unix:{}", dir.join("echo.sock").display()),
        "tcp" => "tcp:127.0.0.1:0".to_owned(),
        _ => unreachable!("no such family {family}"),
    }
}

// --- Datagram endpoints ---

#[test]
fn udp_reports_the_port_and_echoes_msgsock_and_plain_datagrams() -> TestResult {
    let server = Proc::spawn(&mut echo(&["udp:127.0.0.1:0"]));
    let endpoint = server.listening_on();
    let Endpoint::Udp(addr) = endpoint else {
        panic!("listening on {endpoint}, not a udp: endpoint");
    };
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0, "the real port, not 0");

    let mut conn = client(&endpoint)?;
    for len in [0, 1, 11, 1500, msgsock::UDP_V4_MAX_MESSAGE_LEN] {
        assert_echoes(&mut conn, &common::pattern(len, 0))?;
    }

    // A peer with nothing but the standard library: one message is one datagram, no framing.
    let plain = StdUdpSocket::bind("127.0.0.1:0")?;
    plain.set_read_timeout(Some(PATIENCE))?;
    plain.send_to(b"plain datagram", addr)?;
    let mut buf = [0; 64];
    let (n, from) = plain.recv_from(&mut buf)?;
    assert_eq!(&buf[..n], b"plain datagram");
    assert_eq!(from, addr, "the reply comes from the server's address");

    stop(server);
    Ok(())
}

/// A unixgram server echoes msgsock and plain clients, then stops on `signal` and removes its
/// socket file.
fn unixgram_echoes_and_stops_cleanly_on(signal: Signal) -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("e.sock");
    let server = Proc::spawn(&mut echo(&[&format!("unixgram:{}", path.display())]));
    assert_eq!(server.listening_on(), Endpoint::UnixDatagram(path.clone()));
    assert!(path.exists());

    // msgsock's client binds a private temporary address of its own, for the replies.
    let mut conn = client(&Endpoint::UnixDatagram(path.clone()))?;
    for len in [0, 1, 11, 4096, 60_000] {
        assert_echoes(&mut conn, &common::pattern(len, 0))?;
    }

    let client_dir = tempfile::tempdir()?;
    let plain = StdUnixDatagram::bind(client_dir.path().join("client.sock"))?;
    plain.set_read_timeout(Some(PATIENCE))?;
    plain.send_to(b"plain datagram", &path)?;
    let mut buf = [0; 64];
    let n = plain.recv(&mut buf)?;
    assert_eq!(&buf[..n], b"plain datagram");

    server.signal(signal);
    let out = server.finish();
    out.assert_clean_exit();
    assert!(!path.exists(), "socket file left behind");
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
    Ok(())
}

#[test]
fn unixgram_echoes_and_exits_zero_removing_its_socket_on_sigterm() -> TestResult {
    unixgram_echoes_and_stops_cleanly_on(Signal::SIGTERM)
}

#[test]
fn unixgram_echoes_and_exits_zero_removing_its_socket_on_sigint() -> TestResult {
    unixgram_echoes_and_stops_cleanly_on(Signal::SIGINT)
}

/// How many events the stderr lines containing `text` stand for: a line written for several
/// ends "(N like this since the last report)", any other stands for one.
fn events_in(lines: &[&str], text: &str) -> (usize, usize) {
    let matching: Vec<&&str> = lines.iter().filter(|l| l.contains(text)).collect();
    let events = matching
        .iter()
        .map(|l| {
            l.rsplit_once(" (")
                .and_then(|(_, tail)| tail.strip_suffix(" like this since the last report)"))
                .map_or(1, |n| n.parse().expect("a count"))
        })
        .sum();
    (matching.len(), events)
}

/// Thousands of datagrams from an unbound sender, and from a sender whose socket file is gone,
/// write a few log lines each (not one per datagram, which a stderr pipe nobody reads would
/// turn into a server blocked in write(2)), and the lines still count every datagram.
#[test]
fn unixgram_per_datagram_log_lines_are_counted_not_repeated() -> TestResult {
    const N: usize = 3000;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("e.sock");
    let server = Proc::spawn(&mut echo(&[&format!("unixgram:{}", path.display())]));
    let endpoint = server.listening_on();
    let unbound = StdUnixDatagram::unbound()?;
    let gone_path = dir.path().join("gone.sock");
    let gone = StdUnixDatagram::bind(&gone_path)?;
    std::fs::remove_file(&gone_path)?;
    // Bounded, so that a stuck server fails the test rather than hanging it.
    unbound.set_write_timeout(Some(PATIENCE))?;
    gone.set_write_timeout(Some(PATIENCE))?;
    for _ in 0..N {
        unbound.send_to(b"no address", &path)?;
        gone.send_to(b"file removed", &path)?;
    }
    // Datagrams are read in order: once this one is answered, all of the above were read.
    let mut conn = client(&endpoint)?;
    assert_echoes(&mut conn, b"after the flood")?;

    let out = stop(server);
    let lines: Vec<&str> = out.stderr.lines().collect();
    for text in ["unbound sender", "gone.sock failed"] {
        let (written, events) = events_in(&lines, text);
        assert_eq!(events, N, "every {text:?} datagram counted:\n{}", out.stderr);
        // One at once, then at most one a second: far fewer than one per datagram.
        assert!(written < N / 10, "{written} lines for {N} {text:?} datagrams");
    }
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
    Ok(())
}

/// `echo --connect` over a datagram endpoint echoes stdin's lines and leaves no temporary socket.
fn connect_client_echoes_lines_over(server_endpoint: &str) -> TestResult {
    let server = Proc::spawn(&mut echo(&[server_endpoint]));
    let endpoint = server.listening_on().to_string();

    let input = "hello\n\n  spaced out  \nünïcödé\nlast line without newline";
    let client_tmp = tempfile::tempdir()?;
    let out = echo_with_stdin(&["--connect", &endpoint], input, client_tmp.path());
    out.assert_clean_exit();
    assert_eq!(out.stdout, format!("{input}\n"));
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    assert_eq!(
        files_in(client_tmp.path()),
        Vec::<String>::new(),
        "the client's temporary address is removed"
    );

    stop(server);
    Ok(())
}

#[test]
fn connect_client_echoes_lines_over_udp() -> TestResult {
    connect_client_echoes_lines_over("udp:127.0.0.1:0")
}

#[test]
fn connect_client_echoes_lines_over_unixgram() -> TestResult {
    let dir = tempfile::tempdir()?;
    connect_client_echoes_lines_over(&format!("unixgram:{}", dir.path().join("e.sock").display()))
}

/// `echo --connect` over UDP to a socket that never answers (a lost datagram looks the same)
/// gives up on the reply: after `--reply-timeout SECS`, and by default on datagram endpoints
/// (5 s), with one error line and exit 1, rather than waiting until a signal.
#[test]
fn connect_client_gives_up_on_a_datagram_reply_that_never_comes() -> TestResult {
    let silent = StdUdpSocket::bind("127.0.0.1:0")?;
    let endpoint = format!("udp:{}", silent.local_addr()?);
    let client_tmp = tempfile::tempdir()?;
    for args in [&["--reply-timeout", "1", "--connect", &endpoint][..], &["--connect", &endpoint]] {
        let out = echo_with_stdin(args, "anyone there?\n", client_tmp.path());
        let line = out.assert_one_line_error();
        assert!(line.contains("no reply from"), "{args:?}: {line}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
    }
    let bad = echo_with_stdin(&["--reply-timeout", "x", "--connect", &endpoint], "", client_tmp.path());
    assert!(bad.assert_one_line_error().contains("invalid --reply-timeout"));
    Ok(())
}

// --- Idle timeout ---

/// Connects without msgsock, for bytes that are not a whole message; reads give up after
/// `guard`.
fn raw_connect(endpoint: &Endpoint, guard: Duration) -> std::io::Result<Box<dyn RawStream>> {
    Ok(match endpoint {
        Endpoint::Unix(path) => {
            let s = StdUnixStream::connect(path)?;
            s.set_read_timeout(Some(guard))?;
            Box::new(s)
        }
        Endpoint::Tcp(addr) => {
            let s = std::net::TcpStream::connect(addr)?;
            s.set_read_timeout(Some(guard))?;
            Box::new(s)
        }
        _ => unreachable!("a stream endpoint"),
    })
}

trait RawStream: Read + Write + Send {}
impl<T: Read + Write + Send> RawStream for T {}

/// How long an idle client waits to be closed before the test fails: a failure guard far above
/// the 1 s timeout, and below the 120 s default, so a server ignoring the option fails.
const IDLE_GUARD: Duration = Duration::from_secs(60);

/// With `--idle-timeout 1`, a client that sends nothing and one that stops halfway through a
/// header are both closed by the server, while a client that keeps talking keeps its echoes.
fn idle_clients_are_closed_and_active_ones_kept(family: &str) -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = Proc::spawn(&mut echo(&[
        "--idle-timeout",
        "1",
        &stream_endpoint(family, dir.path()),
    ]));
    let endpoint = server.listening_on();

    let mut active = client(&endpoint)?;
    assert_echoes(&mut active, b"first")?;

    let (ended_tx, ended) = mpsc::channel();
    let mut silent = client(&endpoint)?;
    silent.set_read_timeout(Some(IDLE_GUARD))?;
    let tx = ended_tx.clone();
    thread::spawn(move || {
        let outcome = match silent.recv() {
            Ok(None) => Ok("closed"),
            Err(e) if !e.is_timeout() => Ok("reset"),
            Err(e) => Err(format!("still open after {IDLE_GUARD:?}: {e}")),
            Ok(Some(msg)) => Err(format!("unexpected message {msg:?}")),
        };
        let _ = tx.send(("silent", outcome));
    });
    let mut half = raw_connect(&endpoint, IDLE_GUARD)?;
    // Two of the four bytes of a length header.
    half.write_all(&[0, 0])?;
    thread::spawn(move || {
        let outcome = match half.read(&mut [0; 16]) {
            Ok(0) => Ok("closed"),
            Ok(n) => Err(format!("unexpected {n} bytes")),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok("reset"),
            Err(e) => Err(format!("still open after {IDLE_GUARD:?}? {e}")),
        };
        let _ = ended_tx.send(("half header", outcome));
    });

    // The active client talks every 50 ms, far inside its 1 s allowance, until both idle
    // clients have been closed (each waiter gives up after IDLE_GUARD, so this loop ends).
    let mut closed = Vec::new();
    let mut round = 0_u64;
    while closed.len() < 2 {
        match ended.recv_timeout(Duration::from_millis(50)) {
            Ok((who, outcome)) => {
                let how = outcome.unwrap_or_else(|e| panic!("{who} client: {e}"));
                closed.push(format!("{who}: {how}"));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(e) => panic!("a waiter thread died: {e}"),
        }
        round += 1;
        assert_echoes(&mut active, format!("round {round}").as_bytes())?;
    }
    // Still served after the others were closed.
    assert_echoes(&mut active, b"still here")?;

    for _ in 0..2 {
        server.stderr_line_with("idle for 1 s, closing");
    }
    let out = stop(server);
    assert_eq!(
        out.stderr.matches("idle for 1 s, closing").count(),
        2,
        "only the two idle clients were closed ({closed:?}):\n{}",
        out.stderr
    );
    Ok(())
}

#[test]
fn idle_timeout_closes_silent_clients_but_not_active_ones_on_unix() -> TestResult {
    idle_clients_are_closed_and_active_ones_kept("unix")
}

#[test]
fn idle_timeout_closes_silent_clients_but_not_active_ones_on_tcp() -> TestResult {
    idle_clients_are_closed_and_active_ones_kept("tcp")
}

/// With `--idle-timeout 1`, a client that trickles a frame, a byte every 200 ms (each well
/// inside the timeout), is closed as an idle one is: the timeout bounds a whole message, so a
/// few such clients cannot hold every place of `--max-connections` for ever.
#[test]
fn idle_timeout_closes_a_client_that_trickles_a_message() -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = Proc::spawn(&mut echo(&[
        "--idle-timeout",
        "1",
        &stream_endpoint("unix", dir.path()),
    ]));
    let endpoint = server.listening_on();
    let mut trickler = raw_connect(&endpoint, IDLE_GUARD)?;
    // A header for 1000 bytes; the payload follows a byte at a time.
    trickler.write_all(&[0, 0, 3, 232])?;
    let start = std::time::Instant::now();
    // The fault being applied: a byte every 200 ms until the server closes the connection
    // (a write to a Unix stream whose peer is gone fails at once), or the guard passes.
    let mut sent = 0;
    while trickler.write_all(&[1]).is_ok() {
        sent += 1;
        assert!(
            start.elapsed() < IDLE_GUARD,
            "still open after {sent} bytes in {IDLE_GUARD:?}"
        );
        thread::sleep(Duration::from_millis(200));
    }
    server.stderr_line_with("idle for 1 s, closing");
    stop(server);
    Ok(())
}

/// With `--idle-timeout 1`, a client that takes its reply a little at a time (64 KiB every
/// 200 ms, so that each write of the reply finishes well inside the timeout) is closed as a
/// trickling sender is: the timeout bounds a whole reply too, so such readers cannot hold every
/// place of `--max-connections` for ever. The reply of 8 MiB would take about 26 s to read.
#[test]
fn idle_timeout_closes_a_client_that_takes_its_reply_slowly() -> TestResult {
    const LEN: usize = 8 << 20;
    let dir = tempfile::tempdir()?;
    let server = Proc::spawn(&mut echo(&[
        "--idle-timeout",
        "1",
        &stream_endpoint("unix", dir.path()),
    ]));
    let Endpoint::Unix(path) = server.listening_on() else {
        unreachable!("a unix: endpoint")
    };
    let mut slow = StdUnixStream::connect(path)?;
    slow.set_read_timeout(Some(IDLE_GUARD))?;
    // The message goes out whole from another thread, while the server reads it.
    let mut writer = slow.try_clone()?;
    let sender = thread::spawn(move || {
        writer.write_all(&u32::try_from(LEN).unwrap_or(0).to_be_bytes())?;
        writer.write_all(&vec![7; LEN])
    });
    let start = std::time::Instant::now();
    let mut got = 0;
    let mut chunk = vec![0; 64 << 10];
    // The fault being applied: a slow reader, until the server closes the connection.
    loop {
        match slow.read(&mut chunk)? {
            0 => break,
            n => got += n,
        }
        assert!(
            start.elapsed() < IDLE_GUARD,
            "still open after {got} bytes in {IDLE_GUARD:?}"
        );
        thread::sleep(Duration::from_millis(200));
    }
    assert!(got < 4 + LEN, "the whole reply came: {got} bytes");
    sender.join().map_err(|_| "the sender panicked")??;
    server.stderr_line_with("idle for 1 s, closing");
    stop(server);
    Ok(())
}

#[test]
fn idle_timeout_rejects_bad_values_in_one_line() {
    for bad in ["abc", "-1", "1.5", "", "99999999999999999999"] {
        let out = Proc::spawn(&mut echo(&["--idle-timeout", bad, "tcp:127.0.0.1:0"])).finish();
        let line = out.assert_one_line_error();
        assert!(line.contains("invalid --idle-timeout"), "{bad:?}: {line}");
        assert!(out.stdout.is_empty(), "{bad:?}: {}", out.stdout);
    }
    let out = Proc::spawn(&mut echo(&["tcp:127.0.0.1:0", "--idle-timeout"])).finish();
    let line = out.assert_one_line_error();
    assert!(line.contains("usage"), "{line}");
}

/// The largest `--idle-timeout` the command line takes serves like any other: re-arming the
/// timer before each receive overflows no deadline.
#[test]
fn the_largest_idle_timeout_serves_every_message() -> TestResult {
    for family in ["unix", "tcp"] {
        let dir = tempfile::tempdir()?;
        let endpoint = stream_endpoint(family, dir.path());
        let server = Proc::spawn(&mut echo(&["--idle-timeout", &u64::MAX.to_string(), &endpoint]));
        let mut conn = client(&server.listening_on())?;
        for msg in [&b"first"[..], b"second", b"third"] {
            assert_echoes(&mut conn, msg)?;
        }
        drop(conn);
        stop(server);
    }
    Ok(())
}

// --- --same-uid ---

/// This user's peers are served on every endpoint with peer credentials: a socket file, an
/// abstract name, SEQPACKET.
#[test]
fn same_uid_serves_this_user() -> TestResult {
    let dir = tempfile::tempdir()?;
    let endpoints = [
        format!("unix:{}", dir.path().join("echo.sock").display()),
        format!("unix:@msgsock-same-uid-{}", std::process::id()),
        format!("unixpacket:{}", dir.path().join("echo-packet.sock").display()),
    ];
    for endpoint in &endpoints {
        let server = Proc::spawn(&mut echo(&["--same-uid", endpoint]));
        let endpoint = server.listening_on();
        let mut conn = client(&endpoint)?;
        assert_echoes(&mut conn, b"same user")?;
        let out = stop(server);
        assert!(!out.stderr.contains("refused"), "{endpoint}: {}", out.stderr);
    }
    Ok(())
}

#[test]
fn same_uid_needs_a_unix_endpoint() -> TestResult {
    let dir = tempfile::tempdir()?;
    let unixgram = format!("unixgram:{}", dir.path().join("e.sock").display());
    for endpoint in ["tcp:127.0.0.1:0", "udp:127.0.0.1:0", &unixgram] {
        let out = Proc::spawn(&mut echo(&["--same-uid", endpoint])).finish();
        let line = out.assert_one_line_error();
        assert!(
            line.contains("--same-uid needs a unix: or unixpacket: endpoint"),
            "{line}"
        );
        assert!(out.stdout.is_empty(), "{endpoint}: {}", out.stdout);
    }
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
    Ok(())
}

/// Python switching to uid/gid 65534 (`nobody`), then connecting to the socket at `argv[1]`
/// (a stream, or SEQPACKET if `argv[2]` says `seqpacket`), sending one message (framed on a
/// stream, one packet on SEQPACKET) and reading. It prints its pid, then how the connection went.
const PY_OTHER_USER: &str = r#"
import os, signal, socket, struct, sys
signal.alarm(60)  # failure guard: a stuck peer ends instead of hanging the test
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
print("pid", os.getpid(), "uid", os.getuid(), flush=True)
packet = sys.argv[2] == "seqpacket"
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET if packet else socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect failed:", repr(e), flush=True)
    sys.exit(0)
try:
    s.sendall(b"ping" if packet else struct.pack(">I", 4) + b"ping")
    data = s.recv(4096)
    print("closed" if data == b"" else "got " + data.hex(), flush=True)
except (ConnectionResetError, BrokenPipeError) as e:
    print("closed", type(e).__name__, flush=True)
"#;

#[test]
fn same_uid_refuses_another_user() -> TestResult {
    if !root_or_skip("same_uid_refuses_another_user") {
        return Ok(());
    }
    same_uid_refuses_another_user_on("unix", "stream")
}

#[test]
fn same_uid_refuses_another_user_on_seqpacket() -> TestResult {
    if !root_or_skip("same_uid_refuses_another_user_on_seqpacket") {
        return Ok(());
    }
    same_uid_refuses_another_user_on("unixpacket", "seqpacket")
}

/// `--same-uid` on a `scheme:` socket file closes another user's connection (a Python peer of
/// socket type `kind`) unanswered, logs who it refused, and serves its own user on.
fn same_uid_refuses_another_user_on(scheme: &str, kind: &str) -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("echo.sock");
    let server = Proc::spawn(&mut echo(&[
        "--same-uid",
        &format!("{scheme}:{}", path.display()),
    ]));
    let endpoint = server.listening_on();
    // Let the other user reach the socket: only --same-uid stands in its way.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;

    let peer = python3()
        .args(["-c", PY_OTHER_USER, &path.display().to_string(), kind])
        .stdin(Stdio::null())
        .output()?;
    let report = String::from_utf8_lossy(&peer.stdout);
    assert!(
        peer.status.success(),
        "python failed: {}\n{report}\n{}",
        peer.status,
        String::from_utf8_lossy(&peer.stderr)
    );
    let lines: Vec<&str> = report.lines().collect();
    let [pid_line, outcome] = lines[..] else {
        panic!("python reported {report:?}");
    };
    let pid = pid_line
        .strip_prefix("pid ")
        .and_then(|rest| rest.strip_suffix(" uid 65534"))
        .unwrap_or_else(|| panic!("python reported {pid_line:?}"));
    assert!(
        outcome.starts_with("closed"),
        "the other user's connection should be closed unanswered: {outcome} (if it could not \
         connect, the temporary directory's parents may not be searchable by uid 65534)"
    );

    let refusal = server.stderr_line_with("refused connection");
    assert!(
        refusal.contains(&format!("pid {pid} runs as uid 65534")),
        "{refusal}"
    );

    // The server carries on for its own user.
    let mut conn = client(&endpoint)?;
    assert_echoes(&mut conn, b"same user")?;
    stop(server);
    Ok(())
}

// --- --authkey-file ---

/// Python's `Client(address, authkey=key)` with the key read from the file `argv[2]`, sending one
/// message and printing the reply, or `auth-error` if the handshake fails.
const PY_AUTH_CLIENT: &str = r#"
import signal, sys
from multiprocessing.connection import AuthenticationError, Client
signal.alarm(60)  # failure guard: a stuck peer ends instead of hanging the test
scheme, rest = sys.argv[1].split(":", 1)
if scheme == "unix":
    address = rest
else:
    host, port = rest.rsplit(":", 1)
    address = (host, int(port))
key = open(sys.argv[2], "rb").read()
try:
    conn = Client(address, authkey=key)
except AuthenticationError as e:
    print("auth-error", e, flush=True)
    sys.exit(0)
conn.send_bytes(b"hello from python")
print("got", conn.recv_bytes().decode(), flush=True)
"#;

/// Runs the Python client against `endpoint` with the key in `key_file`; its one line of output.
fn python_client(endpoint: &Endpoint, key_file: &Path) -> String {
    let out = python3()
        .args([
            "-c",
            PY_AUTH_CLIENT,
            &endpoint.to_string(),
            &key_file.display().to_string(),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
    assert!(
        out.status.success(),
        "python failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Python clients with the right key are echoed, one with the wrong key is rejected on both
/// sides without stopping the server, and `echo --authkey-file --connect` logs in.
fn authkey_server_on(family: &str) -> TestResult {
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("right.key");
    std::fs::write(&key, b"a shared secret, newline included\n")?;
    let wrong = dir.path().join("wrong.key");
    std::fs::write(&wrong, b"a shared secret, newline included")?;
    let key_arg = key.display().to_string();

    let server = Proc::spawn(&mut echo(&[
        "--authkey-file",
        &key_arg,
        &stream_endpoint(family, dir.path()),
    ]));
    let endpoint = server.listening_on();

    assert_eq!(
        python_client(&endpoint, &key),
        "got hello from python",
        "right key"
    );
    let refused = python_client(&endpoint, &wrong);
    assert!(
        refused.starts_with("auth-error"),
        "wrong key got: {refused}"
    );
    let log = server.stderr_line_with("rejected a client");
    assert!(log.contains("authentication failed"), "{log}");
    assert_eq!(
        python_client(&endpoint, &key),
        "got hello from python",
        "right key after a wrong one"
    );

    let input = "one\n\ntwo words\nthree";
    let client_tmp = tempfile::tempdir()?;
    let endpoint_arg = endpoint.to_string();
    let out = echo_with_stdin(
        &["--authkey-file", &key_arg, "--connect", &endpoint_arg],
        input,
        client_tmp.path(),
    );
    out.assert_clean_exit();
    assert_eq!(out.stdout, format!("{input}\n"));
    assert!(out.stderr.is_empty(), "{}", out.stderr);

    // A client that fails the handshake and carries on regardless gets nothing more.
    let mut intruder = client(&endpoint)?;
    let challenge = intruder.recv()?.expect("a challenge");
    assert!(challenge.starts_with(b"#CHALLENGE#"), "{challenge:?}");
    intruder.send(b"not the digest")?;
    assert_eq!(intruder.recv()?.as_deref(), Some(&b"#FAILURE#"[..]));
    // The server may already have closed, so this send may fail: the reply is what matters.
    let _ = intruder.send(b"let me in anyway");
    match intruder.recv() {
        Ok(None) => {}
        Err(e) if !e.is_timeout() => {}
        other => panic!("a rejected client got {other:?} instead of a closed connection"),
    }

    let wrong_arg = wrong.display().to_string();
    let out = echo_with_stdin(
        &["--authkey-file", &wrong_arg, "--connect", &endpoint_arg],
        input,
        client_tmp.path(),
    );
    let line = out.assert_one_line_error();
    assert!(line.contains("cannot connect"), "{line}");
    assert!(out.stdout.is_empty(), "{}", out.stdout);

    let out = stop(server);
    assert_eq!(
        out.stderr.matches("rejected a client").count(),
        3,
        "the wrong-key Python client, the intruder and the wrong-key echo client:\n{}",
        out.stderr
    );
    Ok(())
}

#[test]
fn authkey_server_on_unix_admits_the_right_key_only() -> TestResult {
    authkey_server_on("unix")
}

#[test]
fn authkey_server_on_tcp_admits_the_right_key_only() -> TestResult {
    authkey_server_on("tcp")
}

/// A key file `k` in `dir`, and its path as an argument.
fn key_file(dir: &Path) -> std::io::Result<String> {
    let key = dir.join("k");
    std::fs::write(&key, b"secret")?;
    Ok(key.display().to_string())
}

/// Asserts that a server given `--authkey-file` on `what` refused to start for want of a stream.
fn assert_needs_a_stream(out: &Finished, what: &str) {
    let line = out.assert_one_line_error();
    assert!(line.contains("needs a stream endpoint"), "{what}: {line}");
    assert!(out.stdout.is_empty(), "{what}: {}", out.stdout);
}

#[test]
fn authkey_needs_a_stream_endpoint() -> TestResult {
    let dir = tempfile::tempdir()?;
    let key_arg = key_file(dir.path())?;
    let unixgram = format!("unixgram:{}", dir.path().join("e.sock").display());
    // SEQPACKET is a connection, but the handshake is framed for a byte stream.
    let unixpacket = format!("unixpacket:{}", dir.path().join("p.sock").display());
    for endpoint in ["udp:127.0.0.1:0", &unixgram, &unixpacket] {
        let out = Proc::spawn(&mut echo(&["--authkey-file", &key_arg, endpoint])).finish();
        assert_needs_a_stream(&out, endpoint);
    }
    assert_eq!(files_in(dir.path()), ["k"]);
    Ok(())
}

/// An inherited socket (`fd:3`) is a stream endpoint by its name only: when it turns out to be
/// a SEQPACKET listener, `--authkey-file` is refused at start as on `unixpacket:`, so no client
/// is served without the handshake.
#[test]
fn authkey_on_an_inherited_seqpacket_listener_is_refused() -> TestResult {
    use msgsock::child::CommandExt;
    let dir = tempfile::tempdir()?;
    let key_arg = key_file(dir.path())?;
    let listener = msgsock::UnixSeqpacketListener::bind(dir.path().join("p.sock"))?;
    let mut cmd = echo(&["--authkey-file", &key_arg, "fd:3"]);
    cmd.pass_socket_as(listener.try_clone()?, 3)?;
    let out = Proc::spawn(&mut cmd).finish();
    assert_needs_a_stream(&out, "a SEQPACKET listener as fd:3");
    Ok(())
}

#[test]
fn authkey_file_missing_empty_or_endless_is_a_one_line_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("no such key");
    let empty = dir.path().join("empty.key");
    std::fs::write(&empty, b"")?;
    // Read to its end, `/dev/zero` would take memory until none was left.
    let endless = Path::new("/dev/zero").to_path_buf();
    for key in [&missing, &empty, &endless] {
        let key_arg = key.display().to_string();
        for args in [
            &["--authkey-file", &key_arg, "tcp:127.0.0.1:0"][..],
            &["--authkey-file", &key_arg, "--connect", "tcp:127.0.0.1:1"],
        ] {
            let out = Proc::spawn(&mut echo(args)).finish();
            let line = out.assert_one_line_error();
            assert!(line.contains("cannot read the key in"), "{args:?}: {line}");
            assert!(line.contains(&key_arg), "names the file: {line}");
            assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
        }
    }
    Ok(())
}

// --- Accept backoff when descriptors run out ---

/// `delays` cut where they start again at 10 ms, that is after an accept that worked.
fn backoff_runs(delays: &[u64]) -> Vec<&[u64]> {
    delays
        .chunk_by(|_, next| *next != 10)
        .collect()
}

/// The server's descriptor limit in the backoff test: stdin, stdout, stderr and the listener
/// leave it room for 20 connections.
const FD_LIMIT: usize = 24;

#[test]
fn accept_backs_off_when_out_of_descriptors_and_recovers() -> TestResult {
    let mut cmd = Command::new("sh");
    // `$0` is the echo binary: the shell lowers the limit, then becomes echo.
    cmd.args(["-c", &format!(r#"ulimit -n {FD_LIMIT} && exec "$0" "$@""#)])
        .arg(procs::example(procs::echo_name()))
        .arg("tcp:127.0.0.1:0")
        .stdin(Stdio::null());
    let mut server = Proc::spawn(&mut cmd);
    let endpoint = server.listening_on();

    // More clients than the server has descriptors for; the rest wait in the listen backlog,
    // and every accept of them fails for as long as these stay connected.
    let clients = (0..FD_LIMIT + 8)
        .map(|_| client(&endpoint))
        .collect::<msgsock::Result<Vec<_>>>()?;
    let failure = server.stderr_line_with("accept failed");
    assert!(failure.contains("Too many open files"), "{failure}");
    let first_backoff = server.stderr_line_with("backing off");

    // The fault lasts one second.
    let window = server.assert_no_accept_spin();

    // The delays double from 10 ms and stop at 1 s.
    let delays: Vec<u64> = std::iter::once(&first_backoff)
        .chain(window.iter().filter(|l| l.contains("backing off")))
        .map(|l| {
            l.strip_prefix("echo: backing off for ")
                .and_then(|ms| ms.strip_suffix(" ms"))
                .and_then(|ms| ms.parse().ok())
                .unwrap_or_else(|| panic!("unexpected backoff line {l:?}"))
        })
        .collect();
    // An accept that works resets the delay, and one can mid-fault: glibc opens and closes
    // a file (`/sys/devices/system/cpu/online`) when a new thread makes its malloc arena, so
    // an accept can fail while that file holds the last descriptor and the next one succeed.
    // Each run of delays from a reset must double; the last must show the doubling.
    let runs = backoff_runs(&delays);
    let shown = || {
        format!(
            "delays {delays:?}; the server's stderr in the second after {first_backoff:?}:\n{}",
            window.join("\n")
        )
    };
    assert!(runs.len() <= 3, "the delay restarted {} times: {}", runs.len() - 1, shown());
    for run in &runs {
        let expected: Vec<u64> = (0..run.len())
            .map(|i| (10 << i.min(7)).min(1000))
            .collect();
        assert_eq!(run, &expected, "{}", shown());
    }
    assert!(
        runs.last().is_some_and(|run| run.len() >= 5),
        "no five doublings in a row: {}",
        shown()
    );

    drop(clients);
    assert!(server.is_running(), "echo died: {}", server.stderr_now());
    // Once the closed clients' descriptors are free, a new client is served.
    let mut conn = client(&endpoint)?;
    assert_echoes(&mut conn, b"recovered")?;
    assert!(server.is_running(), "echo died: {}", server.stderr_now());
    drop(conn);

    stop(server);
    Ok(())
}
