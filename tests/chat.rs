//! The chat example as real processes: a server and clients with piped stdin and stdout, on all
//! four transports, plus participants written here with msgsock that send what the example never
//! would (invalid UTF-8, control characters, unknown message types) or fall silent.
//!
//! `cargo test` builds the example first; `cargo test --test chat` alone does not, so run
//! `cargo build --example chat` before it (the tests fail, saying so, on a missing or stale one).

mod procs;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use msgsock::{AnyConnection, Endpoint, UnixDatagram};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

/// A failure guard only: a line that never comes fails the test instead of hanging it.
const GUARD: Duration = Duration::from_secs(30);

/// The example binary, beside this test binary's directory: `target/<profile>/deps/chat-HASH`
/// runs, `target/<profile>/examples/chat` is the program. Fails if it is missing, or older than
/// a source it was built from (`cargo test --test chat` does not rebuild examples).
fn chat_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let bin = profile_dir.join("examples").join("chat");
    let rebuild = "run `cargo test` (which builds examples) or `cargo build --example chat` first";
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| {
            panic!(
                "the chat example is not built at {} ({e}): {rebuild}",
                bin.display()
            )
        });
    for source in sources_of(&bin) {
        // A source that is gone was renamed or removed since: the binary is stale too.
        let modified = std::fs::metadata(&source).and_then(|m| m.modified());
        assert!(
            modified.as_ref().is_ok_and(|m| *m <= built),
            "{} is newer than {} or gone: {rebuild}",
            source.display(),
            bin.display()
        );
    }
    bin
}

/// The files `bin` was built from, as the dep-info file Cargo writes beside it (`bin.d`, a
/// Makefile rule `bin: source source ...`, spaces in names escaped) lists them: the example's
/// own files and the library's, for the features it was built with.
fn sources_of(bin: &Path) -> Vec<PathBuf> {
    let dep_info = bin.with_extension("d");
    let rule = std::fs::read_to_string(&dep_info)
        .unwrap_or_else(|e| panic!("Cargo's dep-info {}: {e}", dep_info.display()));
    let (_, deps) = rule
        .split_once(": ")
        .unwrap_or_else(|| panic!("no rule in {}", dep_info.display()));
    let line = deps.lines().next().unwrap_or_default();
    let mut sources = Vec::new();
    let mut name = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => name.extend(chars.next()),
            ' ' => {
                sources.extend((!name.is_empty()).then(|| PathBuf::from(std::mem::take(&mut name))))
            }
            c => name.push(c),
        }
    }
    sources.extend((!name.is_empty()).then(|| PathBuf::from(name)));
    assert!(
        sources.iter().any(|s| s.ends_with("examples/chat/main.rs")),
        "{} does not list the chat program",
        dep_info.display()
    );
    sources
}

/// One chat process with piped stdin, stdout and stderr; killed and reaped on drop.
struct Chat {
    who: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Option<thread::JoinHandle<String>>,
    /// Every stdout line so far, for failure messages.
    seen: Vec<String>,
    /// The process's TMPDIR: a datagram client's private socket directory lands here, so it is
    /// removed even when the test kills the client before it can remove it itself.
    _tmp: TempDir,
}

impl Chat {
    fn spawn(who: &'static str, args: &[&str]) -> Chat {
        Chat::spawn_with_env(who, args, &[])
    }

    fn spawn_with_env(who: &'static str, args: &[&str], env: &[(&str, &str)]) -> Chat {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let mut child = Command::new(chat_binary())
            .args(args)
            .env("TMPDIR", tmp.path())
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{who}: cannot start the chat example: {e}"));
        let lines = procs::lines_of(child.stdout.take().expect("piped stdout"));
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Chat {
            who,
            stdin: child.stdin.take(),
            child,
            lines,
            stderr: Some(stderr),
            seen: Vec::new(),
            _tmp: tmp,
        }
    }

    /// The next line of stdout.
    fn line(&mut self) -> String {
        match self.lines.recv_timeout(GUARD) {
            Ok(line) => {
                self.seen.push(line.clone());
                line
            }
            Err(e) => panic!(
                "{}: no line within {GUARD:?} ({e}); its stdout so far: {:?}",
                self.who, self.seen
            ),
        }
    }

    /// Asserts that the next line of stdout is `want`.
    fn expect(&mut self, want: &str) {
        let got = self.line();
        assert_eq!(
            got, want,
            "{}: unexpected line; its stdout so far: {:?}",
            self.who, self.seen
        );
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("write to the chat process");
        stdin.flush().expect("flush to the chat process");
    }

    /// Ctrl-D: the end of its input.
    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("kill(2)");
    }

    /// Waits for the process to end; returns its status, the stdout lines it printed that were not
    /// read yet, and its stderr.
    fn finish(&mut self) -> (ExitStatus, Vec<String>, String) {
        let mut rest = Vec::new();
        loop {
            match self.lines.recv_timeout(GUARD) {
                Ok(line) => rest.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{}: still running after {GUARD:?}", self.who)
                }
            }
        }
        let status = self.child.wait().expect("wait(2)");
        let stderr = self
            .stderr
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        (status, rest, stderr)
    }

    /// Waits for the process to end and asserts it printed nothing more and exited with `code`.
    fn expect_exit(&mut self, code: i32) -> String {
        let (status, rest, stderr) = self.finish();
        assert!(
            rest.is_empty(),
            "{}: unexpected lines at the end: {rest:?}",
            self.who
        );
        assert_eq!(
            status.code(),
            Some(code),
            "{}: exit status {status}; stderr: {stderr}",
            self.who
        );
        assert!(!stderr.contains("panicked"), "{}: {stderr}", self.who);
        stderr
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Unix,
    Tcp,
    Unixgram,
    Udp,
}

/// A private directory for socket files, and the endpoint to serve on in it (or on a free port).
struct Place {
    dir: TempDir,
    kind: Kind,
}

impl Place {
    fn new(kind: Kind) -> Place {
        Place {
            dir: tempfile::tempdir().expect("temporary directory"),
            kind,
        }
    }

    fn socket_path(&self) -> Option<PathBuf> {
        match self.kind {
            Kind::Unix | Kind::Unixgram => Some(self.dir.path().join("chat.sock")),
            Kind::Tcp | Kind::Udp => None,
        }
    }

    fn endpoint(&self) -> String {
        let path = self.socket_path().map(|p| p.display().to_string());
        match self.kind {
            Kind::Unix => format!("unix:{}", path.unwrap()),
            Kind::Unixgram => format!("unixgram:{}", path.unwrap()),
            Kind::Tcp => "tcp:127.0.0.1:0".into(),
            Kind::Udp => "udp:127.0.0.1:0".into(),
        }
    }

    /// Starts a server named `host`; returns it and the endpoint it announced.
    fn serve(&self, env: &[(&str, &str)]) -> (Chat, String) {
        let endpoint = self.endpoint();
        let mut server =
            Chat::spawn_with_env("server", &["serve", &endpoint, "--name", "host"], env);
        let first = server.line();
        let real = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("server: first line {first:?}, not `listening on ...`"))
            .to_owned();
        if let Some(path) = self.socket_path() {
            assert_eq!(real, endpoint);
            assert!(path.exists(), "{} missing while serving", path.display());
        }
        (server, real)
    }

    /// Asserts that the socket file, and the lock file beside it, are gone.
    fn assert_socket_removed(&self) {
        if self.socket_path().is_some() {
            let left: Vec<_> = std::fs::read_dir(self.dir.path())
                .expect("read the temporary directory")
                .map(|entry| entry.expect("directory entry").file_name())
                .collect();
            assert!(left.is_empty(), "left behind: {left:?}");
        }
    }
}

/// Starts a client and waits for its welcome, which says it is in the room.
fn join(endpoint: &str, who: &'static str, welcome: &str) -> Chat {
    let mut client = Chat::spawn(who, &[endpoint, "--name", who]);
    client.expect(welcome);
    client
}

/// A server with alice and bob in the room, each having seen the others arrive.
fn room(place: &Place) -> (Chat, String, Chat, Chat) {
    let (mut server, endpoint) = place.serve(&[]);
    let mut alice = join(&endpoint, "alice", "* welcome, alice; here: host");
    server.expect("* alice joined");
    let bob = join(&endpoint, "bob", "* welcome, bob; here: host, alice");
    alice.expect("* bob joined");
    server.expect("* bob joined");
    (server, endpoint, alice, bob)
}

fn relays_to_everyone_but_the_sender(kind: Kind) {
    let place = Place::new(kind);
    let (mut server, _, mut alice, mut bob) = room(&place);

    alice.type_line("hello 世界 🎉");
    bob.expect("alice: hello 世界 🎉");
    server.expect("alice: hello 世界 🎉");

    // Alice's next line is bob's: her own line did not come back to her.
    bob.type_line("你好, ünïcødé 👋🏽");
    alice.expect("bob: 你好, ünïcødé 👋🏽");
    server.expect("bob: 你好, ünïcødé 👋🏽");

    server.type_line("the host speaks ☕");
    alice.expect("host: the host speaks ☕");
    bob.expect("host: the host speaks ☕");

    // Empty lines are not sent: alice's next line is bob's leaving.
    bob.type_line("");
    bob.type_line("/quit");
    bob.expect_exit(0);
    alice.expect("* bob left");
    server.expect("* bob left");

    alice.close_stdin();
    alice.expect_exit(0);
    server.expect("* alice left");

    // The server's next line is its closing: its own line was not shown back to it.
    server.signal(Signal::SIGTERM);
    server.expect("* room closed");
    server.expect_exit(0);
    place.assert_socket_removed();
}

fn server_closing_tells_everyone(kind: Kind, signal: Signal) {
    let place = Place::new(kind);
    let (mut server, _, mut alice, mut bob) = room(&place);
    server.signal(signal);
    alice.expect("* room closed");
    bob.expect("* room closed");
    server.expect("* room closed");
    alice.expect_exit(0);
    bob.expect_exit(0);
    server.expect_exit(0);
    place.assert_socket_removed();
}

fn operator_quitting_closes_the_room(kind: Kind) {
    let place = Place::new(kind);
    let (mut server, endpoint) = place.serve(&[]);
    let mut alice = join(&endpoint, "alice", "* welcome, alice; here: host");
    server.expect("* alice joined");
    server.type_line("/quit");
    alice.expect("* room closed");
    server.expect("* room closed");
    alice.expect_exit(0);
    server.expect_exit(0);
    place.assert_socket_removed();
}

fn server_death_is_noticed(kind: Kind) {
    let place = Place::new(kind);
    let (mut server, _, mut alice, mut bob) = room(&place);
    server.child.kill().expect("SIGKILL the server");
    for client in [&mut alice, &mut bob] {
        client.expect("* connection to server lost");
        let stderr = client.expect_exit(1);
        assert_eq!(stderr.lines().count(), 1, "{}: {stderr}", client.who);
    }
}

/// A participant written here sends bytes the example never would; the others see them made
/// safe, and the room goes on.
fn hostile_bytes_are_shown_safely(kind: Kind) {
    let place = Place::new(kind);
    let (mut server, endpoint) = place.serve(&[]);
    let mut alice = join(&endpoint, "alice", "* welcome, alice; here: host");
    server.expect("* alice joined");

    let mut raw = connect(&endpoint);
    raw.send(b"Jr\xffw\n").unwrap();
    assert_eq!(
        text(&recv(&mut raw)),
        "W* welcome, r\u{FFFD}w; here: host, alice"
    );
    alice.expect("* r\u{FFFD}w joined");
    server.expect("* r\u{FFFD}w joined");

    // Invalid UTF-8, a terminal escape, a newline that would forge a line of its own.
    raw.send(b"Mbad \xff\xfe bytes, \x1b[31mred\n* room closed")
        .unwrap();
    let shown = "r\u{FFFD}w: bad \u{FFFD}\u{FFFD} bytes, \\u{1b}[31mred\\n* room closed";
    alice.expect(shown);
    server.expect(shown);

    // An empty message, an unknown type, an empty line: ignored.
    raw.send(b"").unwrap();
    raw.send(b"Zwhat is this").unwrap();
    raw.send(b"M").unwrap();
    alice.type_line("still here");
    assert_eq!(text(&recv(&mut raw)), "Talice: still here");
    server.expect("alice: still here");

    raw.send(b"L").unwrap();
    alice.expect("* r\u{FFFD}w left");
    server.expect("* r\u{FFFD}w left");
    alice.close_stdin();
    alice.expect_exit(0);
    server.expect("* alice left");
}

/// A server written here sends a client invalid UTF-8, control characters and a bidirectional
/// control, then closes.
fn client_shows_hostile_bytes_safely(kind: Kind) {
    let place = Place::new(kind);
    let endpoint: Endpoint = place.endpoint().parse().unwrap();
    let (tx, rx) = mpsc::channel();
    let fake = if endpoint.is_datagram() {
        let socket = msgsock::bind_datagram(&endpoint).unwrap();
        socket.set_read_timeout(Some(GUARD)).unwrap();
        tx.send(socket.local_endpoint().unwrap()).unwrap();
        thread::spawn(move || {
            let mut buf = Vec::new();
            let (_, from) = socket.recv_from(&mut buf).unwrap();
            let from = from.unwrap();
            assert_eq!(buf, b"Jalice");
            socket
                .send_to(b"Tbad \xff bytes \x07 \xe2\x80\xae", &from)
                .unwrap();
            // The client has these queued even once this socket is gone.
            socket.send_to(b"C", &from).unwrap();
        })
    } else {
        let listener = msgsock::bind(&endpoint).unwrap();
        tx.send(listener.local_endpoint().unwrap()).unwrap();
        thread::spawn(move || {
            let mut conn = listener.accept().unwrap();
            conn.set_read_timeout(Some(GUARD)).unwrap();
            assert_eq!(conn.recv().unwrap().unwrap(), b"Jalice");
            conn.send(b"Tbad \xff bytes \x07 \xe2\x80\xae").unwrap();
            conn.send(b"C").unwrap();
            let _ = conn.recv();
        })
    };
    let endpoint = rx.recv().unwrap().to_string();
    let mut alice = Chat::spawn("alice", &[&endpoint, "--name", "alice"]);
    // U+202E, right-to-left override, as UTF-8.
    alice.expect("bad \u{FFFD} bytes \\u{7} \\u{202e}");
    alice.expect("* room closed");
    alice.expect_exit(0);
    fake.join().unwrap();
}

/// A datagram participant that falls silent is dropped after the heartbeat timeout.
fn silent_datagram_participant_is_dropped(kind: Kind) {
    let place = Place::new(kind);
    let (mut server, endpoint) = place.serve(&[("CHAT_HEARTBEAT_MS", "100")]);
    let mut raw = connect(&endpoint);
    raw.send(b"Jraw").unwrap();
    assert_eq!(text(&recv(&mut raw)), "W* welcome, raw; here: host");
    server.expect("* raw joined");
    server.expect("* raw left");
    assert_eq!(recv(&mut raw), b"X", "the dropped participant is told");
    // It is not in the room any more, whatever it says.
    raw.send(b"H").unwrap();
    assert_eq!(recv(&mut raw), b"X");
}

/// The largest heartbeat `CHAT_HEARTBEAT_MS` takes runs a room like any other: the timeouts
/// reckoned from it overflow nothing, on the server or the client.
fn the_largest_heartbeat_runs_a_room(kind: Kind) {
    let place = Place::new(kind);
    let most = u64::MAX.to_string();
    let env = [("CHAT_HEARTBEAT_MS", most.as_str())];
    let (mut server, endpoint) = place.serve(&env);
    let mut alice = Chat::spawn_with_env("alice", &[&endpoint, "--name", "alice"], &env);
    alice.expect("* welcome, alice; here: host");
    server.expect("* alice joined");
    alice.type_line("still here");
    server.expect("alice: still here");
    server.signal(Signal::SIGTERM);
    alice.expect("* room closed");
    alice.expect_exit(0);
    server.expect("* room closed");
    server.expect_exit(0);
}

#[test]
fn the_largest_heartbeat_runs_a_room_on_both_datagram_transports() {
    for kind in [Kind::Unixgram, Kind::Udp] {
        the_largest_heartbeat_runs_a_room(kind);
    }
}

/// A Unix datagram participant that stops reading fills its queue (10 datagrams by default on
/// Linux); the server's sends to it then time out, and it is dropped instead of blocking the room.
/// It sends from an address it has not connected, as a program in another language might.
#[test]
fn unixgram_participant_that_stops_reading_is_dropped() {
    let place = Place::new(Kind::Unixgram);
    let (mut server, endpoint) = place.serve(&[]);
    let mut alice = join(&endpoint, "alice", "* welcome, alice; here: host");
    server.expect("* alice joined");
    let raw = UnixDatagram::bind_temp().unwrap();
    raw.send_to(b"Jraw", place.socket_path().unwrap()).unwrap();
    alice.expect("* raw joined");
    server.expect("* raw joined");
    let mut said = 0;
    loop {
        said += 1;
        alice.type_line(&format!("line {said}"));
        match server.line() {
            line if line == format!("alice: line {said}") => {}
            line if line == "* raw left" => break,
            line => panic!("server: unexpected line {line:?}"),
        }
        assert!(said < 100, "raw was never dropped");
    }
    alice.expect("* raw left");
    server.type_line("the room goes on");
    alice.expect("host: the room goes on");
}

/// A stream participant that never reads: once the server's socket buffer to it is full, the
/// room goes on relaying to everyone else without waiting for it (its lines queue), and drops it,
/// announced, when its queue overflows. It joins with a connection that reads only its welcome.
#[test]
fn unix_participant_that_never_reads_does_not_delay_the_room() {
    let place = Place::new(Kind::Unix);
    let (mut server, endpoint) = place.serve(&[]);
    let mut bob = join(&endpoint, "bob", "* welcome, bob; here: host");
    server.expect("* bob joined");
    let mut raw = connect(&endpoint);
    raw.send(b"Jraw").unwrap();
    assert_eq!(text(&recv(&mut raw)), "W* welcome, raw; here: host, bob");
    bob.expect("* raw joined");
    server.expect("* raw joined");

    // 150 lines of 4 KB are far more than the socket buffer to raw holds (212992 bytes by
    // default on Linux, about 45 such lines), so a send to raw is stuck within the first lines,
    // and fewer than the server queues for it on top: each line reaches bob before the next is
    // typed, and raw is still in the room after all of them. (A room that waited for raw stalled
    // here, then dropped it.)
    let long = "x".repeat(4000);
    let mut typed = 0;
    while typed < 150 {
        server.type_line(&format!("{typed} {long}"));
        let got = bob.line();
        assert!(
            got == format!("host: {typed} {long}"),
            "bob: line {typed} is {got:.80?}"
        );
        typed += 1;
    }
    // Raw's queue overflows, and it is dropped: announced after the line that found it full.
    let mut dropped = false;
    while !dropped {
        server.type_line(&format!("{typed} {long}"));
        let mut got = bob.line();
        if got == "* raw left" {
            dropped = true;
            got = bob.line();
        }
        assert!(
            got == format!("host: {typed} {long}"),
            "bob: line {typed} is {got:.80?}"
        );
        typed += 1;
        assert!(typed < 5000, "raw was never dropped");
    }
    server.expect("* raw left");
    server.type_line("the room goes on");
    bob.expect("host: the room goes on");
    // The server hung up on raw: what it had buffered, then the end.
    loop {
        match raw.recv() {
            Ok(Some(_)) => {}
            Ok(None) | Err(msgsock::Error::UnexpectedEof { .. }) => break,
            Err(e) => panic!("raw: {e}"),
        }
    }
    bob.close_stdin();
    bob.expect_exit(0);
    server.expect("* bob left");
}

/// The socket file and its lock are deleted under a running room and another server binds the
/// path: closing the room must not wake its acceptor through the path (that connection reaches
/// the successor, and the acceptor never returns), and must leave the successor's file alone.
#[test]
fn unix_room_closes_without_reaching_a_successor_at_its_path() {
    let place = Place::new(Kind::Unix);
    let (mut server, _) = place.serve(&[]);
    let path = place.socket_path().unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(path.with_extension("sock.lock")).unwrap();
    let successor = msgsock::UnixListener::bind(&path).unwrap();

    server.signal(Signal::SIGTERM);
    server.expect("* room closed");
    server.expect_exit(0);
    assert!(path.exists(), "the successor's socket file was removed");
    successor.set_nonblocking(true).unwrap();
    match successor.accept() {
        Err(msgsock::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the closing room connected to the successor: {other:?}"),
    }
}

fn connect(endpoint: &str) -> AnyConnection {
    let conn = msgsock::connect(&endpoint.parse().unwrap()).unwrap();
    conn.set_read_timeout(Some(GUARD)).unwrap();
    conn
}

fn recv(conn: &mut AnyConnection) -> Vec<u8> {
    conn.recv().unwrap().expect("a message, not the end")
}

fn text(msg: &[u8]) -> String {
    String::from_utf8(msg.to_vec()).expect("the server sends UTF-8")
}

macro_rules! chat_tests {
    ($($module:ident => $kind:ident),+) => {$(
        mod $module {
            use super::*;

            #[test]
            fn relays_lines_names_joins_and_leaves() {
                relays_to_everyone_but_the_sender(Kind::$kind);
            }
            #[test]
            fn sigterm_closes_the_room() {
                server_closing_tells_everyone(Kind::$kind, Signal::SIGTERM);
            }
            #[test]
            fn sigint_closes_the_room() {
                server_closing_tells_everyone(Kind::$kind, Signal::SIGINT);
            }
            #[test]
            fn operator_quit_closes_the_room() {
                operator_quitting_closes_the_room(Kind::$kind);
            }
            #[test]
            fn clients_notice_a_dead_server() {
                server_death_is_noticed(Kind::$kind);
            }
            #[test]
            fn server_survives_hostile_bytes() {
                hostile_bytes_are_shown_safely(Kind::$kind);
            }
            #[test]
            fn client_survives_hostile_bytes() {
                client_shows_hostile_bytes_safely(Kind::$kind);
            }
        }
    )+};
}

chat_tests!(unix => Unix, tcp => Tcp, unixgram => Unixgram, udp => Udp);

#[test]
fn unixgram_silent_participant_is_dropped() {
    silent_datagram_participant_is_dropped(Kind::Unixgram);
}

#[test]
fn udp_silent_participant_is_dropped() {
    silent_datagram_participant_is_dropped(Kind::Udp);
}

/// What a terminal shows: the bytes a chat process wrote to its pseudo-terminal.
struct Screen {
    output: Receiver<Vec<u8>>,
    seen: String,
}

impl Screen {
    /// Reads until `want` has been written since the last call; returns what was written up to
    /// and including it.
    fn wait_for(&mut self, want: &str) -> String {
        let deadline = std::time::Instant::now() + GUARD;
        loop {
            if let Some(at) = self.seen.find(want) {
                let upto: String = self.seen.drain(..at + want.len()).collect();
                return upto;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(e) => panic!("terminal: no {want:?} ({e}); it shows {:?}", self.seen),
            }
        }
    }
}

/// A chat client on a pseudo-terminal of its own, as a person runs it: what it writes is on
/// `screen`, what is typed goes through `master`. Killed and reaped on drop.
struct Terminal {
    child: Child,
    master: std::fs::File,
    screen: Screen,
    /// All of stderr, once the client has exited and so closed it.
    stderr: Receiver<String>,
    /// Kept open, so that the terminal's mode can be read after the client exits.
    slave: std::os::fd::OwnedFd,
    /// The client's TMPDIR, as in `Chat::spawn_with_env`.
    _tmp: TempDir,
}

impl Terminal {
    /// Starts a client named `name` on a new 80x24 terminal, joining the room at `endpoint`.
    fn join(endpoint: &str, name: &str) -> Terminal {
        use nix::pty::{openpty, Winsize};

        let size = Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(&size, None).expect("openpty(3)");
        let slave = |fd: &std::os::fd::OwnedFd| Stdio::from(fd.try_clone().expect("dup(2)"));
        let tmp = tempfile::tempdir().unwrap();
        let mut child = Command::new(chat_binary())
            .env("TMPDIR", tmp.path())
            .args([endpoint, "--name", name])
            .stdin(slave(&pty.slave))
            .stdout(slave(&pty.slave))
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the chat example on a terminal");
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let (to_test, stderr) = mpsc::channel();
        thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text);
            let _ = to_test.send(text);
        });
        let master = std::fs::File::from(pty.master);
        let mut reader = master.try_clone().unwrap();
        let (tx, output) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        Terminal {
            child,
            master,
            screen: Screen {
                output,
                seen: String::new(),
            },
            stderr,
            slave: pty.slave,
            _tmp: tmp,
        }
    }

    /// Types `bytes` at the terminal's keyboard.
    fn type_bytes(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("write to the terminal");
    }

    /// Waits for the client to exit (its stderr closes); returns its exit code and stderr.
    fn exit(&mut self) -> (Option<i32>, String) {
        let stderr = self
            .stderr
            .recv_timeout(GUARD)
            .unwrap_or_else(|e| panic!("terminal: the client still runs after {GUARD:?} ({e})"));
        (self.child.wait().expect("wait(2)").code(), stderr)
    }

    /// Asserts that the terminal is in its own (cooked) mode, line editing and echo on, as before
    /// the client started: to be called once it has exited.
    fn assert_cooked(&self, context: &str) {
        use nix::sys::termios::{tcgetattr, LocalFlags};
        use std::os::fd::AsFd;

        let mode = tcgetattr(self.slave.as_fd()).expect("tcgetattr(3)");
        assert!(
            mode.local_flags
                .contains(LocalFlags::ICANON | LocalFlags::ECHO),
            "{context}: terminal left in raw mode: {:?}",
            mode.local_flags
        );
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// On a terminal, an incoming line appears above the prompt and what the user was typing is
/// drawn again below it; a room closing mid-line gives the terminal back in its own mode.
#[test]
fn terminal_prompt_is_redrawn_around_incoming_lines() {
    let place = Place::new(Kind::Unix);
    let (mut server, endpoint) = place.serve(&[]);
    let mut bob = Terminal::join(&endpoint, "bob");
    bob.screen.wait_for("* welcome, bob; here: host");
    server.expect("* bob joined");
    bob.screen.wait_for(">>> ");
    bob.type_bytes("half typed 世界".as_bytes());
    bob.screen.wait_for("half typed 世界");

    server.type_line("hello bob");
    bob.screen.wait_for("host: hello bob");
    let redrawn = bob.screen.wait_for("half typed 世界");
    assert!(redrawn.contains(">>> "), "prompt not redrawn: {redrawn:?}");

    // Tab does nothing (no bell, no character); Enter sends the whole line, typed before and
    // after the interruption.
    bob.type_bytes(b"\t!");
    let typed = bob.screen.wait_for("!");
    assert!(!typed.contains('\x07'), "Tab rang the bell: {typed:?}");
    bob.type_bytes(b"\r");
    server.expect("bob: half typed 世界!");

    bob.type_bytes(b"unsent");
    bob.screen.wait_for("unsent");
    server.signal(Signal::SIGTERM);
    bob.screen.wait_for("* room closed");
    assert_eq!(bob.exit(), (Some(0), String::new()));
    bob.assert_cooked("bob");
    server.expect("* room closed");
    server.expect_exit(0);
}

/// The room closing just as Enter is pressed: the prompt is between two lines, out of raw mode
/// and about to enter it again for the next one, while the client puts the terminal back and
/// exits; and the line may be sent on the connection the server has just hung up, before its `C`
/// is read. However the two interleave, the terminal must end in its own mode and the person sees
/// the room closed, exit status 0, as when nothing was typed; so many rounds are run, each
/// pressing Enter and closing the room at once.
#[test]
fn terminal_is_given_back_when_the_room_closes_as_enter_is_pressed() {
    const ROUNDS: usize = 100;
    let place = Place::new(Kind::Unix);
    for round in 1..=ROUNDS {
        let (mut server, endpoint) = place.serve(&[]);
        let mut bob = Terminal::join(&endpoint, "bob");
        bob.screen.wait_for("* welcome, bob; here: host");
        server.expect("* bob joined");
        // The prompt is drawn once the editor is in raw mode.
        bob.screen.wait_for(">>> ");
        bob.type_bytes(b"hi\r");
        server.signal(Signal::SIGTERM);
        let context = format!("round {round} of {ROUNDS}");
        assert_eq!(bob.exit(), (Some(0), String::new()), "{context}");
        bob.screen.wait_for("* room closed");
        bob.assert_cooked(&context);
        drop(bob);
        let (status, _, _) = server.finish();
        assert_eq!(status.code(), Some(0));
        place.assert_socket_removed();
    }
}

/// Lines arriving just as the prompt starts, whether at the welcome or as `readline` is called
/// again after Enter: each must end up above a prompt, never after one drawn before it (the
/// person would then see no `>>> ` while typing). A server written here sends the welcome as bob
/// joins, then, many times, a line at the moment Enter is pressed; after each the screen must
/// show a prompt again.
#[test]
fn terminal_prompt_is_drawn_after_lines_arriving_as_it_starts() {
    const CLIENTS: usize = 10;
    const ENTERS: usize = 100;
    let place = Place::new(Kind::Unix);
    let listener = msgsock::bind(&place.endpoint().parse().unwrap()).unwrap();
    let endpoint = listener.local_endpoint().unwrap().to_string();
    let (accepted, joins) = mpsc::channel();
    thread::spawn(move || {
        while let Ok(conn) = listener.accept() {
            if accepted.send(conn).is_err() {
                return;
            }
        }
    });
    for client in 1..=CLIENTS {
        let mut bob = Terminal::join(&endpoint, "bob");
        let mut conn = joins.recv_timeout(GUARD).expect("bob connects");
        conn.set_read_timeout(Some(GUARD)).unwrap();
        assert_eq!(recv(&mut conn), b"Jbob");
        conn.send(b"W* welcome, bob; here: host").unwrap();
        bob.screen.wait_for("* welcome, bob; here: host");
        bob.screen.wait_for(">>> ");
        for enter in 1..=ENTERS {
            bob.type_bytes(b"\r");
            let line = format!("host: line {enter}");
            conn.send(format!("T{line}").as_bytes()).unwrap();
            bob.screen.wait_for(&line);
            bob.screen.wait_for(">>> ");
        }
        conn.send(b"C").unwrap();
        let context = format!("client {client} of {CLIENTS}");
        assert_eq!(bob.exit(), (Some(0), String::new()), "{context}");
        bob.screen.wait_for("* room closed");
        bob.assert_cooked(&context);
    }
}

/// Runs the example to its end with nothing on stdin (closed at once, so a server that did start
/// closes its room and ends); returns its exit code and stderr.
fn run_to_end(args: &[&str]) -> (Option<i32>, String) {
    let mut chat = Chat::spawn("chat", args);
    chat.close_stdin();
    let (status, rest, stderr) = chat.finish();
    assert!(rest.is_empty(), "stdout: {rest:?}");
    (status.code(), stderr)
}

fn assert_one_line_error(args: &[&str], code: i32, says: &str) {
    let (got, stderr) = run_to_end(args);
    assert_eq!(got, Some(code), "{args:?}: stderr {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.starts_with("chat: "), "{args:?}: {stderr}");
    assert!(stderr.contains(says), "{args:?}: {stderr}");
}

#[test]
fn bad_command_lines_are_one_line_errors() {
    assert_one_line_error(&[], 2, "missing ENDPOINT");
    assert_one_line_error(&["serve"], 2, "missing ENDPOINT");
    assert_one_line_error(&["bogus:thing"], 2, "invalid endpoint");
    assert_one_line_error(&["tcp:localhost:99999"], 2, "invalid endpoint");
    assert_one_line_error(&["unix:/x", "--name"], 2, "--name needs a value");
    assert_one_line_error(&["unix:/x", "--frobnicate"], 2, "unknown option");
}

/// `unixpacket:` is not one of chat's transports: refused as a bad endpoint, serving or joining,
/// before anything is bound or connected.
#[test]
fn unixpacket_endpoints_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("packet.sock");
    let endpoint = format!("unixpacket:{}", path.display());
    let says = "not supported by chat; it supports unix, tcp, unixgram and udp";
    assert_one_line_error(&["serve", &endpoint, "--name", "ann"], 2, says);
    assert!(!path.exists(), "serve left {}", path.display());
    assert_one_line_error(&[&endpoint, "--name", "bob"], 2, says);
    assert!(!path.exists(), "join left {}", path.display());
    assert_one_line_error(&["serve", "unixpacket:@msgsock-chat-packet"], 2, says);
    assert_one_line_error(&["unixpacket:@msgsock-chat-packet"], 2, says);
}

/// An inherited listener (`fd:3`) is only known to be SEQPACKET once adopted: the server refuses
/// it then, with one line, rather than accepting connections it has no reader for.
#[test]
fn inherited_seqpacket_listener_is_refused() {
    use msgsock::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let listener = msgsock::UnixSeqpacketListener::bind(dir.path().join("p.sock")).unwrap();
    let mut cmd = Command::new(chat_binary());
    cmd.args(["serve", "fd:3", "--name", "ann"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.pass_socket(listener.try_clone().unwrap()).unwrap();
    let child = cmd.spawn().expect("run the chat example");
    drop(cmd);
    let (tx, done) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = done
        .recv_timeout(GUARD)
        .expect("chat still runs: it took the SEQPACKET listener")
        .expect("wait for chat");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("unixpacket") && stderr.contains("not supported by chat"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "stdout {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// An argument that is not UTF-8 is a bad command line, named as the echo example names it.
#[test]
fn non_utf8_arguments_are_one_line_errors() {
    use std::os::unix::ffi::OsStringExt;
    let arg = std::ffi::OsString::from_vec(b"\xff".to_vec());
    let out = Command::new(chat_binary())
        .arg(arg)
        .stdin(Stdio::null())
        .output()
        .expect("run the chat example");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr {stderr}");
    assert_eq!(stderr, "chat: argument \"\\xFF\" is not UTF-8\n");
    assert!(out.stdout.is_empty(), "stdout {:?}", out.stdout);
}

#[test]
fn unreachable_servers_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nobody.sock").display().to_string();
    assert_one_line_error(&[&format!("unix:{missing}")], 1, "cannot join");
    assert_one_line_error(&[&format!("unixgram:{missing}")], 1, "cannot join");
    let no_dir = dir.path().join("no/such/dir.sock").display().to_string();
    assert_one_line_error(&["serve", &format!("unix:{no_dir}")], 1, "cannot listen");
}

/// A server out of descriptors backs off between failed accepts (10 ms, doubling to 1 s), as
/// `echo` does, instead of retrying at once and flooding stderr; once the clients that used up
/// its descriptors leave, it lets people in again.
#[test]
fn a_server_out_of_descriptors_backs_off_instead_of_spinning() {
    const FD_LIMIT: usize = 24;
    let mut cmd = Command::new("sh");
    // `$0` is the chat binary: the shell lowers the limit, then becomes chat. Its console
    // (stdin) stays open: at its end the room would close.
    cmd.args(["-c", &format!(r#"ulimit -n {FD_LIMIT} && exec "$0" "$@""#)])
        .arg(chat_binary())
        .args(["serve", "tcp:127.0.0.1:0", "--name", "host"])
        .stdin(Stdio::piped());
    let server = procs::Proc::spawn(&mut cmd);
    let endpoint = server.listening_on();

    // More silent clients than the server has descriptors for: the rest wait in the backlog,
    // and every accept of them fails while these stay connected.
    let clients: Vec<_> = (0..FD_LIMIT + 8)
        .map(|_| msgsock::connect(&endpoint).expect("connect"))
        .collect();
    let failure = server.stderr_line_with("accept failed");
    assert!(failure.contains("Too many open files"), "{failure}");
    server.stderr_line_with("chat: backing off for 10 ms");
    server.assert_no_accept_spin();

    drop(clients);
    let mut alice = join(
        &endpoint.to_string(),
        "alice",
        "* welcome, alice; here: host",
    );
    alice.close_stdin();
    alice.expect_exit(0);
}

/// A msgsock frame as it goes on a stream: a 4-byte big-endian length, then the payload.
fn frame(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a short payload");
    [&len.to_be_bytes()[..], payload].concat()
}

/// The join deadline bounds the whole `J` message, not each read: a connection trickling its
/// join a byte every 1.5 s (each read well within the 5 s) is closed at the deadline, never
/// let in. (It was let in after 7.5 s: the deadline was a per-read timeout.)
#[test]
fn unix_join_trickled_a_byte_at_a_time_is_closed_at_the_deadline() {
    let place = Place::new(Kind::Unix);
    let (mut server, endpoint) = place.serve(&[]);
    let mut raw = std::os::unix::net::UnixStream::connect(place.socket_path().unwrap()).unwrap();
    for byte in frame(b"Jt") {
        // The fault applied: each byte comes well within a per-read timeout.
        thread::sleep(Duration::from_millis(1500));
        // The server hung up at the deadline: nothing more can be sent.
        if raw.write_all(&[byte]).is_err() {
            break;
        }
    }
    raw.set_read_timeout(Some(GUARD)).unwrap();
    let mut buf = [0; 256];
    match raw.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(n) => panic!(
            "the trickled join was answered: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) => panic!("the trickled join was not closed: {e}"),
    }
    // The server's next line is alice's join: `t` never joined.
    let mut alice = join(&endpoint, "alice", "* welcome, alice; here: host");
    server.expect("* alice joined");
    alice.close_stdin();
    alice.expect_exit(0);
    server.expect("* alice left");
}

/// A join with a name already in the room, the host's included, whatever its case, is refused
/// with an `E` reply saying why, and nobody is told of it; the chat program, refused, exits 1
/// with one line. (Duplicates were let in, so anyone could speak as alice or as the host.)
fn names_in_the_room_are_refused(kind: Kind) {
    let place = Place::new(kind);
    let (mut server, endpoint) = place.serve(&[]);
    let mut alice = join(&endpoint, "alice", "* welcome, alice; here: host");
    server.expect("* alice joined");
    for name in ["alice", "host", "ALICE", " alice "] {
        let mut raw = connect(&endpoint);
        raw.send(format!("J{name}").as_bytes()).unwrap();
        let reply = text(&recv(&mut raw));
        assert!(
            reply.starts_with('E') && reply.contains("is already in the room"),
            "{kind:?} {name:?}: {reply:?}"
        );
        if !raw.is_datagram() {
            assert!(
                matches!(raw.recv(), Ok(None) | Err(_)),
                "{kind:?} {name:?}: the refused connection stays open"
            );
        }
    }
    let mut dup = Chat::spawn("dup", &[&endpoint, "--name", "alice"]);
    let stderr = dup.expect_exit(1);
    assert_eq!(stderr.lines().count(), 1, "{kind:?}: {stderr}");
    assert!(
        stderr.contains("is already in the room"),
        "{kind:?}: {stderr}"
    );
    // Nothing was announced: the server's next line is alice's.
    alice.type_line("still alone");
    server.expect("alice: still alone");
    alice.close_stdin();
    alice.expect_exit(0);
    server.expect("* alice left");
}

#[test]
fn unix_names_in_the_room_are_refused() {
    names_in_the_room_are_refused(Kind::Unix);
}

#[test]
fn unixgram_names_in_the_room_are_refused() {
    names_in_the_room_are_refused(Kind::Unixgram);
}

/// Bidirectional controls and invisible format characters in a name or a line are escaped as
/// control characters are, so that a peer can neither reverse what follows its name nor pass
/// for another name. (U+202E and its kin passed through as they were.)
fn bidi_and_invisible_characters_are_escaped(kind: Kind) {
    let place = Place::new(kind);
    let (mut server, endpoint) = place.serve(&[]);
    let mut alice = join(&endpoint, "alice", "* welcome, alice; here: host");
    server.expect("* alice joined");

    let mut raw = connect(&endpoint);
    raw.send("Jal\u{200B}ice\u{202E}".as_bytes()).unwrap();
    let name = "al\\u{200b}ice\\u{202e}";
    assert_eq!(
        text(&recv(&mut raw)),
        format!("W* welcome, {name}; here: host, alice")
    );
    alice.expect(&format!("* {name} joined"));
    server.expect(&format!("* {name} joined"));

    raw.send(
        "M\u{202E}olleh\u{202C} \u{2066}\u{2067}\u{2068}\u{2069} \u{200E}\u{200F}\u{061C} \
         \u{202A}\u{202B}\u{202D} \u{2060}\u{FEFF}\u{2028}"
            .as_bytes(),
    )
    .unwrap();
    let shown = format!(
        "{name}: \\u{{202e}}olleh\\u{{202c}} \\u{{2066}}\\u{{2067}}\\u{{2068}}\\u{{2069}} \
         \\u{{200e}}\\u{{200f}}\\u{{61c}} \\u{{202a}}\\u{{202b}}\\u{{202d}} \
         \\u{{2060}}\\u{{feff}}\\u{{2028}}"
    );
    alice.expect(&shown);
    server.expect(&shown);
    // What is not a format character is shown as it is: emoji joined with U+200D among them.
    raw.send("Mfamily 👨\u{200D}👩\u{200D}👧, שלום, ünï".as_bytes())
        .unwrap();
    alice.expect(&format!("{name}: family 👨\u{200D}👩\u{200D}👧, שלום, ünï"));
    server.expect(&format!("{name}: family 👨\u{200D}👩\u{200D}👧, שלום, ünï"));
}

#[test]
fn unix_bidi_and_invisible_characters_are_escaped() {
    bidi_and_invisible_characters_are_escaped(Kind::Unix);
}

#[test]
fn udp_bidi_and_invisible_characters_are_escaped() {
    bidi_and_invisible_characters_are_escaped(Kind::Udp);
}

/// `--max-connections N`: with N connections open, one more is accepted and closed at once,
/// told why with an `E` reply, and logged; once one leaves, another gets in. (There was no
/// bound: a thread per connection, however many.)
#[test]
fn unix_connections_past_the_cap_are_closed_and_logged() {
    let place = Place::new(Kind::Unix);
    let endpoint = place.endpoint();
    let args = [
        "serve",
        &endpoint,
        "--name",
        "host",
        "--max-connections",
        "2",
    ];
    let mut server = Chat::spawn("server", &args);
    assert_eq!(server.line(), format!("listening on {endpoint}"));
    let mut alice = join(&endpoint, "alice", "* welcome, alice; here: host");
    server.expect("* alice joined");
    let mut bob = join(&endpoint, "bob", "* welcome, bob; here: host, alice");
    server.expect("* bob joined");
    alice.expect("* bob joined");

    let mut third = connect(&endpoint);
    // It may be closed before its join is written.
    let _ = third.send(b"Jcarol");
    let reply = text(&recv(&mut third));
    assert!(
        reply.starts_with("E") && reply.contains("full"),
        "{reply:?}"
    );
    assert!(matches!(third.recv(), Ok(None) | Err(_)), "still open");

    bob.close_stdin();
    bob.expect_exit(0);
    server.expect("* bob left");
    alice.expect("* bob left");
    let mut carol = join(&endpoint, "carol", "* welcome, carol; here: host, alice");
    server.expect("* carol joined");
    alice.expect("* carol joined");
    carol.close_stdin();
    carol.expect_exit(0);

    server.signal(Signal::SIGTERM);
    server.expect("* carol left");
    server.expect("* room closed");
    let stderr = server.expect_exit(0);
    assert_eq!(
        stderr,
        "chat: closed a connection: 2 already open (--max-connections 2)\n"
    );
}

#[test]
fn a_bad_max_connections_is_a_one_line_error() {
    for bad in ["0", "-1", "many", ""] {
        assert_one_line_error(
            &["serve", "unix:/nonexistent/x", "--max-connections", bad],
            2,
            "invalid --max-connections",
        );
    }
    assert_one_line_error(
        &["serve", "unix:/x", "--max-connections"],
        2,
        "needs a value",
    );
}

/// Lowers the soft address-space limit (`RLIMIT_AS`) of process `pid`, or lifts it with `None`.
fn limit_address_space(pid: u32, bytes: Option<u64>) {
    use nix::libc;
    let limit = libc::rlimit {
        rlim_cur: bytes.unwrap_or(libc::RLIM_INFINITY),
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: `limit` is a valid rlimit, and a null old limit is allowed.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_AS,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit(2): {}", std::io::Error::last_os_error());
}

/// The `VmSize` of process `pid`, in bytes.
fn vm_size(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .expect("VmSize in /proc/PID/status");
    kb * 1024
}

/// A thread for a new connection that cannot be started (here: no address space left for its
/// stack) is logged and that connection dropped; the server keeps accepting. (The acceptor
/// panicked, which dropped the listener and removed the socket file while the process ran on.)
#[test]
fn unix_server_survives_failing_to_start_a_thread() {
    let place = Place::new(Kind::Unix);
    let endpoint = place.endpoint();
    let mut cmd = Command::new(chat_binary());
    // One malloc arena: a thread's first allocation takes no new 64 MiB of address space.
    cmd.args(["serve", &endpoint, "--name", "host"])
        .env("MALLOC_ARENA_MAX", "1")
        .stdin(Stdio::piped());
    let server = procs::Proc::spawn(&mut cmd);
    assert_eq!(server.listening_on().to_string(), endpoint);
    // Ready: a participant that joins and leaves has found every thread of the room started.
    let mut probe = connect(&endpoint);
    probe.send(b"Jprobe").unwrap();
    recv(&mut probe);
    probe.send(b"L").unwrap();
    assert!(matches!(probe.recv(), Ok(None) | Err(_)));
    drop(probe);

    // Room for a few more thread stacks (2 MiB each), not for dozens.
    limit_address_space(server.pid(), Some(vm_size(server.pid()) + (8 << 20)));
    let silent: Vec<_> = (0..48).map(|_| connect(&endpoint)).collect();
    let failure = server.stderr_line_with("thread");
    limit_address_space(server.pid(), None);
    assert!(
        failure.starts_with("chat: closed a connection: cannot start a thread"),
        "{failure}"
    );
    drop(silent);

    let mut alice = join(&endpoint, "alice", "* welcome, alice; here: host");
    alice.close_stdin();
    alice.expect_exit(0);
    server.signal(Signal::SIGTERM);
    let finished = server.finish();
    assert_eq!(finished.status.code(), Some(0), "{}", finished.stderr);
    assert!(!finished.stderr.contains("panicked"), "{}", finished.stderr);
    place.assert_socket_removed();
}

/// A chat server whose stdout the test reads only once it chooses to: until then the room
/// blocks on its console, as on a terminal that stopped taking output (Ctrl-S), and so stops
/// taking events. Killed and reaped on drop.
struct StalledServer {
    child: Child,
    stdout: Option<std::io::BufReader<std::process::ChildStdout>>,
    stderr: Option<thread::JoinHandle<String>>,
    _stdin: ChildStdin,
}

impl StalledServer {
    fn serve(endpoint: &str) -> StalledServer {
        use std::io::BufRead;
        let mut child = Command::new(chat_binary())
            .args(["serve", endpoint, "--name", "host"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the chat server");
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        assert_eq!(first, format!("listening on {endpoint}\n"));
        let mut stderr = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        StalledServer {
            _stdin: child.stdin.take().unwrap(),
            child,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// Starts reading stdout: the lines not from `noisy` come out of the receiver, the others
    /// are counted and dropped.
    fn read_lines_not_from(&mut self, noisy: &str) -> Receiver<String> {
        use std::io::BufRead;
        let stdout = self.stdout.take().expect("stdout not read yet");
        let noisy = format!("{noisy}: ");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { return };
                if !line.starts_with(&noisy) && tx.send(line).is_err() {
                    return;
                }
            }
        });
        rx
    }
}

impl Drop for StalledServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The next line from `lines` that is `want`, failing on the guard.
fn expect_among(lines: &Receiver<String>, want: &str) {
    loop {
        match lines.recv_timeout(GUARD) {
            Ok(line) if line == want => return,
            Ok(_) => {}
            Err(e) => panic!("no {want:?} ({e})"),
        }
    }
}

/// A participant flooding the room with 4000-byte lines as fast as it can: the room's queue is
/// bounded, so while the room cannot keep up the flooder's own sends block (its reader waits),
/// instead of the server buffering all it sends; another participant's lines still reach the
/// room amid the flood, and SIGTERM still closes it, exit 0. (The queue was unbounded: the
/// server took everything, to gigabytes, and a signal waited behind the backlog.)
#[test]
fn unix_flooding_participant_is_held_back_and_the_room_goes_on() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    // 64 MiB, several hundred times what the queue and the socket buffers between hold.
    const FLOOD_LINES: usize = 16 * 1024;
    let place = Place::new(Kind::Unix);
    let endpoint = place.endpoint();
    let mut server = StalledServer::serve(&endpoint);

    let mut bob = connect(&endpoint);
    bob.send(b"Jbob").unwrap();
    assert_eq!(text(&recv(&mut bob)), "W* welcome, bob; here: host");
    // Bob reads everything the room relays to him, so that he keeps up and stays in.
    let mut bob_reader = bob.try_clone().unwrap();
    bob_reader.set_read_timeout(None).unwrap();
    let (to_test, bob_saw) = mpsc::channel();
    thread::spawn(move || {
        while let Ok(Some(msg)) = bob_reader.recv() {
            if !msg.starts_with(b"Tflood: ") && to_test.send(text(&msg)).is_err() {
                return;
            }
        }
    });
    let mut flood = connect(&endpoint);
    flood.send(b"Jflood").unwrap();
    assert_eq!(
        text(&recv(&mut flood)),
        "W* welcome, flood; here: host, bob"
    );
    assert_eq!(bob_saw.recv_timeout(GUARD).unwrap(), "T* flood joined");

    // The room is stuck on its console: the flooder is held back within a few hundred KiB,
    // not let send all 64 MiB. A send blocked this long, with the server up, is held back.
    flood
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let line = [b"M".as_slice(), &[b'x'; 4000]].concat();
    let mut sent = 0;
    while sent < FLOOD_LINES {
        match flood.send(&line) {
            Ok(()) => sent += 1,
            Err(e) if e.is_timeout() => break,
            Err(e) => panic!("flood: {e}"),
        }
    }
    assert!(
        sent < FLOOD_LINES,
        "the server took all {sent} lines ({} MiB) while its room was stuck",
        (sent * 4000) >> 20
    );

    // The room goes on: the flood resumes, and bob's lines come through it.
    let lines = server.read_lines_not_from("flood");
    expect_among(&lines, "* flood joined");
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = thread::spawn({
        let stop = Arc::clone(&stop);
        move || {
            while !stop.load(Ordering::Relaxed) {
                match flood.send(&line) {
                    Ok(()) => {}
                    Err(e) if e.is_timeout() => {}
                    // The room closed.
                    Err(_) => return,
                }
            }
        }
    });
    for i in 0..3 {
        bob.send(format!("Mbob says {i}").as_bytes()).unwrap();
        expect_among(&lines, &format!("bob: bob says {i}"));
    }

    // SIGTERM under the flood closes the room.
    kill(Pid::from_raw(server.child.id() as i32), Signal::SIGTERM).unwrap();
    expect_among(&lines, "* room closed");
    // Its stdout closes as it exits.
    match lines.recv_timeout(GUARD) {
        Ok(line) => panic!("server: {line:?} after closing"),
        Err(RecvTimeoutError::Disconnected) => {}
        Err(RecvTimeoutError::Timeout) => panic!("the server still runs after SIGTERM"),
    }
    let status = server.child.wait().unwrap();
    let stderr = server.stderr.take().unwrap().join().unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stop.store(true, Ordering::Relaxed);
    flooder.join().unwrap();
    place.assert_socket_removed();
}
