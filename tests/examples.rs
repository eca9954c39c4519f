//! The examples, run as real processes.
//!
//! Cargo gives tests no `CARGO_BIN_EXE_` path for examples, so they are found in Cargo's layout:
//! this test runs from `target/<profile>/deps/`, and examples are built to
//! `target/<profile>/examples/`. A plain `cargo test` builds the examples before it runs any test;
//! `cargo test --test examples` alone does not, so run `cargo build --examples` first (as
//! `.ci/run` does), or these tests fail and say so.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use msgsock::Endpoint;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long a process may take before the test gives up on it: a guard against hanging, far
/// above what any step needs even on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(120);

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The path of a built example, or a panic saying how to build it.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.is_file(),
        "example binary {} not found: run `cargo build --examples` first (a plain `cargo test` \
         builds it too)",
        path.display()
    );
    path
}

/// A running example with piped stdout and stderr; killed and reaped when dropped.
struct Proc {
    child: Child,
    stdout_lines: Receiver<String>,
    stderr: Receiver<String>,
}

impl Proc {
    fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the example");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (line_tx, stdout_lines) = mpsc::channel();
        thread::spawn(move || send_lines(stdout, line_tx));
        let (err_tx, stderr_rx) = mpsc::channel();
        thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            let _ = err_tx.send(text);
        });
        Proc {
            child,
            stdout_lines,
            stderr: stderr_rx,
        }
    }

    /// The next line of stdout; `None` once stdout is closed.
    fn next_line(&self) -> Option<String> {
        match self.stdout_lines.recv_timeout(PATIENCE) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => panic!("no output within {PATIENCE:?}"),
        }
    }

    /// The `listening on ENDPOINT` line an echo server prints when ready.
    fn listening_on(&self) -> Endpoint {
        let line = self.next_line().unwrap_or_else(|| {
            panic!(
                "echo exited before listening; stderr: {}",
                self.stderr_now()
            )
        });
        let endpoint = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line is {line:?}, not `listening on ENDPOINT`"));
        endpoint.parse().expect("a parsable endpoint")
    }

    fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(self.child.id().try_into().expect("pid fits i32"));
        // The child is ours and not yet reaped, so the pid is still its.
        kill(pid, signal).expect("kill(2)");
    }

    /// Waits for the process to end: exit status, the rest of stdout, all of stderr.
    fn finish(mut self) -> Finished {
        let deadline = Instant::now() + PATIENCE;
        let mut stdout = String::new();
        loop {
            match self.stdout_lines.recv_timeout(remaining(deadline)) {
                Ok(line) => stdout += &(line + "\n"),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("still running after {PATIENCE:?}"),
            }
        }
        let stderr = self
            .stderr
            .recv_timeout(remaining(deadline))
            .expect("stderr closes when the process ends");
        // Both pipes are closed, so the process is exiting.
        let status = self.child.wait().expect("wait(2)");
        Finished {
            status,
            stdout,
            stderr,
        }
    }

    /// Whatever stderr holds, if the process has already ended, for a failure message.
    fn stderr_now(&self) -> String {
        self.stderr
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Does nothing for a process already reaped by `finish`.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn send_lines(stdout: ChildStdout, tx: mpsc::Sender<String>) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { return };
        if tx.send(line).is_err() {
            return;
        }
    }
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Finished {
    /// Asserts the process failed with exactly one line on stderr, `echo: error: ...`, and
    /// returns that line.
    fn assert_one_line_error(&self) -> &str {
        assert!(
            !self.status.success(),
            "expected failure; stdout: {}",
            self.stdout
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "stderr: {:?}", self.stderr);
        assert!(lines[0].starts_with("echo: error: "), "{}", lines[0]);
        lines[0]
    }
}

fn echo(args: &[&str]) -> Command {
    let mut cmd = Command::new(example("echo"));
    cmd.args(args).stdin(Stdio::null());
    cmd
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn demo_talks_over_both_transports_and_leaves_nothing() {
    // The demo's private directory goes in TMPDIR, so an empty TMPDIR afterwards means it
    // cleaned up.
    let tmp = tempfile::tempdir().unwrap();
    let demo = Proc::spawn(
        Command::new(example("demo"))
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::null()),
    );
    let out = demo.finish();
    assert!(
        out.status.success(),
        "demo failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    for transport in ["unix", "tcp"] {
        let summary = format!("  {transport}:");
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&summary) && l.contains("median") && l.contains("MB/s")),
            "no {transport} summary in:\n{}",
            out.stdout
        );
        assert!(
            out.stdout.contains(&format!(
                "{transport}: parent got a 1 MiB reply: the request reversed, verified"
            )),
            "{}",
            out.stdout
        );
    }
    assert_eq!(files_in(tmp.path()), Vec::<String>::new());
}

#[test]
fn demo_rejects_arguments() {
    let out = Proc::spawn(Command::new(example("demo")).arg("--bogus")).finish();
    assert!(!out.status.success());
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("usage"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[test]
fn echo_on_tcp_port_zero_reports_the_port_and_echoes() -> TestResult {
    let server = Proc::spawn(&mut echo(&["tcp:127.0.0.1:0"]));
    let endpoint = server.listening_on();
    let addr = endpoint.as_inet().expect("a tcp endpoint");
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0, "the real port, not 0");

    // Two clients at once: the second is served while the first stays connected.
    let mut first = msgsock::connect(&endpoint)?;
    let mut second = msgsock::connect(&endpoint)?;
    for len in [0, 1, 11, 4096, 1 << 20] {
        let msg: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        second.send(&msg)?;
        assert_eq!(second.recv()?, Some(msg), "{len} bytes");
    }
    first.send(b"hello world")?;
    assert_eq!(first.recv()?.as_deref(), Some(&b"hello world"[..]));

    server.signal(Signal::SIGTERM);
    let out = server.finish();
    assert!(out.status.success(), "{}: {}", out.status, out.stderr);
    Ok(())
}

fn stops_cleanly_on(signal: Signal) -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("echo.sock");
    let server = Proc::spawn(&mut echo(&[&format!("unix:{}", path.display())]));
    assert_eq!(server.listening_on(), Endpoint::Unix(path.clone()));
    assert!(path.exists());

    // A client still connected must not keep the server from stopping.
    let mut client = msgsock::connect(&Endpoint::Unix(path.clone()))?;
    client.send(b"ping")?;
    assert_eq!(client.recv()?.as_deref(), Some(&b"ping"[..]));

    server.signal(signal);
    let out = server.finish();
    assert!(out.status.success(), "{}: {}", out.status, out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(!path.exists(), "socket file left behind");
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
    Ok(())
}

#[test]
fn echo_on_unix_exits_zero_and_removes_its_socket_on_sigterm() -> TestResult {
    stops_cleanly_on(Signal::SIGTERM)
}

#[test]
fn echo_on_unix_exits_zero_and_removes_its_socket_on_sigint() -> TestResult {
    stops_cleanly_on(Signal::SIGINT)
}

#[test]
fn echo_rejects_bad_endpoints_in_one_line() {
    for bad in [
        "tcp:127.0.0.1:99999",
        "bogus:x",
        "unix:",
        "tcp:localhost:80",
    ] {
        let out = Proc::spawn(&mut echo(&[bad])).finish();
        let line = out.assert_one_line_error();
        assert!(line.contains("invalid endpoint"), "{bad}: {line}");
        assert!(out.stdout.is_empty(), "{bad}: {}", out.stdout);
    }
}

#[test]
fn echo_rejects_bad_arguments_in_one_line() {
    for args in [&[][..], &["--connect"], &["-x"], &["a", "b", "c"]] {
        let out = Proc::spawn(&mut echo(args)).finish();
        let line = out.assert_one_line_error();
        assert!(line.contains("usage"), "{args:?}: {line}");
    }
}

#[test]
fn echo_never_replaces_a_regular_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("precious");
    std::fs::write(&path, "keep me")?;
    let out = Proc::spawn(&mut echo(&[&format!("unix:{}", path.display())])).finish();
    let line = out.assert_one_line_error();
    assert!(line.contains("not a socket"), "{line}");
    assert_eq!(std::fs::read_to_string(&path)?, "keep me");
    assert_eq!(
        files_in(dir.path()),
        ["precious"],
        "nothing else left behind"
    );
    Ok(())
}

#[test]
fn second_echo_on_a_live_path_fails_and_leaves_the_first_alone() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("echo.sock");
    let endpoint = format!("unix:{}", path.display());
    let first = Proc::spawn(&mut echo(&[&endpoint]));
    first.listening_on();

    let out = Proc::spawn(&mut echo(&[&endpoint])).finish();
    let line = out.assert_one_line_error();
    assert!(line.contains("address in use"), "{line}");

    let mut client = msgsock::connect(&Endpoint::Unix(path.clone()))?;
    client.send(b"still there?")?;
    assert_eq!(client.recv()?.as_deref(), Some(&b"still there?"[..]));

    first.signal(Signal::SIGTERM);
    assert!(first.finish().status.success());
    assert!(!path.exists());
    Ok(())
}

#[test]
fn echo_connect_echoes_stdin_lines() {
    let server = Proc::spawn(&mut echo(&["tcp:127.0.0.1:0"]));
    let endpoint = server.listening_on().to_string();

    let input = "hello\n\n  spaced out  \nünïcödé\nlast line without newline";
    let mut cmd = echo(&["--connect", &endpoint]);
    cmd.stdin(Stdio::piped());
    let mut client = Proc::spawn(&mut cmd);
    let mut stdin = client.child.stdin.take().expect("piped stdin");
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let out = client.finish();
    assert!(out.status.success(), "{}: {}", out.status, out.stderr);
    assert_eq!(out.stdout, format!("{input}\n"));
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}
