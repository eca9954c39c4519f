//! Running the examples as real processes: finding their binaries, driving them, reading their
//! output as it comes. Shared by the tests that run examples.
//!
//! Cargo gives tests no `CARGO_BIN_EXE_` path for examples, so they are found in Cargo's layout:
//! a test runs from `target/<profile>/deps/`, and examples are built to
//! `target/<profile>/examples/`. A plain `cargo test` builds the examples before it runs any test;
//! `cargo test --test NAME` alone does not, so run `cargo build --examples` first (as `.ci/run`
//! does), or these tests fail and say so.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use msgsock::Endpoint;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long a process may take before the test gives up on it: a guard against hanging, far
/// above what any step needs even on a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(120);

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The echo server these tests drive: `echo`, or `echo_async` in the `_async` test targets,
/// which include the same suites (`tests/echo_suites/`).
pub fn echo_name() -> &'static str {
    if env!("CARGO_CRATE_NAME").ends_with("_async") {
        "echo_async"
    } else {
        "echo"
    }
}

/// The path of a built example, or a panic saying how to build it.
pub fn example(name: &str) -> PathBuf {
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

/// A running process with piped stdout and stderr, both read line by line as they come; killed
/// and reaped when dropped.
pub struct Proc {
    pub child: Child,
    stdout_lines: Receiver<String>,
    stderr_lines: Receiver<String>,
    /// The stderr lines taken so far, so that `finish` still returns all of stderr.
    stderr_seen: RefCell<Vec<String>>,
}

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the example");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        Proc {
            child,
            stdout_lines: lines_of(stdout),
            stderr_lines: lines_of(stderr),
            stderr_seen: RefCell::new(Vec::new()),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line of stdout; `None` once stdout is closed.
    pub fn next_line(&self) -> Option<String> {
        match self.stdout_lines.recv_timeout(PATIENCE) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => panic!("no output within {PATIENCE:?}"),
        }
    }

    /// The `listening on ENDPOINT` line an echo server prints when ready.
    pub fn listening_on(&self) -> Endpoint {
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

    /// The next stderr line containing `text`, waiting for it as long as `PATIENCE`; the lines
    /// before it are kept for `finish`.
    pub fn stderr_line_with(&self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.stderr_lines.recv_timeout(remaining(deadline)) {
                Ok(line) => {
                    self.stderr_seen.borrow_mut().push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no stderr line with {text:?} ({}); stderr so far:\n{}",
                    match e {
                        RecvTimeoutError::Timeout => "still waiting after the guard",
                        RecvTimeoutError::Disconnected => "stderr closed",
                    },
                    self.stderr_seen.borrow().join("\n")
                ),
            }
        }
    }

    /// The stderr lines that arrive within `window` from now (kept for `finish` too).
    pub fn stderr_lines_for(&self, window: Duration) -> Vec<String> {
        let deadline = Instant::now() + window;
        let mut lines = Vec::new();
        while let Ok(line) = self.stderr_lines.recv_timeout(remaining(deadline)) {
            self.stderr_seen.borrow_mut().push(line.clone());
            lines.push(line);
        }
        lines
    }

    /// The stderr lines of the next second, asserting that fewer than 50 of them report a failed
    /// accept: a server that retried at once, out of descriptors, would log thousands.
    pub fn assert_no_accept_spin(&self) -> Vec<String> {
        let window = self.stderr_lines_for(Duration::from_secs(1));
        let failures = window
            .iter()
            .filter(|l| l.contains("accept failed"))
            .count();
        assert!(
            failures < 50,
            "{failures} failed accepts in one second:\n{}",
            window.join("\n")
        );
        window
    }

    /// Whether the process is still running (it has not exited).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("waitpid(2)").is_none()
    }

    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(self.pid().try_into().expect("pid fits i32"));
        // The child is ours and not yet reaped, so the pid is still its.
        kill(pid, signal).expect("kill(2)");
    }

    /// Waits for the process to end: exit status, the rest of stdout, all of stderr.
    pub fn finish(self) -> Finished {
        self.finish_within(PATIENCE)
    }

    /// As [`finish`](Self::finish), failing the test if the process has not ended (closed its
    /// stdout) within `limit`.
    pub fn finish_within(mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        let mut stdout = String::new();
        loop {
            match self.stdout_lines.recv_timeout(remaining(deadline)) {
                Ok(line) => stdout += &(line + "\n"),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "still running after {limit:?}; stderr:\n{}",
                    self.stderr_seen.borrow().join("\n")
                ),
            }
        }
        let stderr = self.rest_of_stderr(deadline);
        // Both pipes are closed, so the process is exiting.
        let status = self.child.wait().expect("wait(2)");
        Finished {
            status,
            stdout,
            stderr,
        }
    }

    /// All of stderr, if the process has already ended, for a failure message; what there is
    /// so far if it has not ended within a few seconds.
    pub fn stderr_now(&self) -> String {
        self.rest_of_stderr(Instant::now() + Duration::from_secs(5))
    }

    /// The stderr lines seen so far and those that come until stderr closes or `deadline`, each
    /// with its newline.
    fn rest_of_stderr(&self, deadline: Instant) -> String {
        let mut seen = self.stderr_seen.borrow_mut();
        while let Ok(line) = self.stderr_lines.recv_timeout(remaining(deadline)) {
            seen.push(line);
        }
        seen.iter().map(|l| format!("{l}\n")).collect()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Does nothing for a process already reaped by `finish`.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines of `pipe`, read on a thread of their own so the child never blocks on a full pipe.
pub fn lines_of(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

pub fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Asserts the process failed with exactly one line on stderr, `echo: error: ...`, and
    /// returns that line.
    pub fn assert_one_line_error(&self) -> &str {
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

    /// Asserts the process exited 0 without panicking.
    pub fn assert_clean_exit(&self) {
        assert!(
            self.status.success(),
            "{}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
    }
}

/// The echo example with `args` and stdin from /dev/null.
pub fn echo(args: &[&str]) -> Command {
    let mut cmd = Command::new(example(echo_name()));
    cmd.args(args).stdin(Stdio::null());
    cmd
}

/// A client of `endpoint` whose receives give up after `PATIENCE` instead of hanging.
pub fn client(endpoint: &Endpoint) -> msgsock::Result<msgsock::AnyConnection> {
    let conn = msgsock::connect(endpoint)?;
    conn.set_read_timeout(Some(PATIENCE))?;
    Ok(conn)
}

/// Sends `msg` and asserts it comes back unchanged.
pub fn assert_echoes(conn: &mut msgsock::AnyConnection, msg: &[u8]) -> TestResult {
    conn.send(msg)?;
    let reply = conn.recv()?;
    assert_eq!(reply.as_deref(), Some(msg), "{} bytes", msg.len());
    Ok(())
}

/// The names in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
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
