//! The server process seen from the parent: started, its address read from its first line,
//! measured through `/proc`, and stopped. Killed and reaped however the parent leaves.

use std::error::Error;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use msgsock::Endpoint;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::server::Server;

/// Set in the child's environment: the in-bench server to run ([`Server::name`]).
pub(crate) const SERVER_ENV: &str = "MSGSOCK_SCALE_SERVER";
/// Set in the child's environment: the endpoint to bind.
pub(crate) const ENDPOINT_ENV: &str = "MSGSOCK_SCALE_ENDPOINT";
/// Set in the child's environment: how many connections to raise the open-file limit for.
pub(crate) const CONNECTIONS_ENV: &str = "MSGSOCK_SCALE_CONNECTIONS";

/// How long a server may take to print its `listening on` line, and to exit when stopped.
const START_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often `/proc` is read while waiting for the server's descriptors to follow the clients.
const POLL: Duration = Duration::from_millis(10);

/// How a server is told to exit.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// The in-bench child exits when its stdin closes.
    CloseStdin,
    /// An `echo`-style server exits 0 on SIGTERM, its socket file removed.
    Sigterm,
}

/// A running echo server.
pub(crate) struct ServerProcess {
    name: String,
    process: Child,
    stdin: Option<ChildStdin>,
    endpoint: Endpoint,
    stop: Stop,
}

impl ServerProcess {
    /// Re-executes this binary as the child running `server` on `endpoint`.
    pub(crate) fn spawn_self(
        server: Server,
        endpoint: &Endpoint,
        connections: usize,
    ) -> Result<ServerProcess, Box<dyn Error>> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.env(SERVER_ENV, server.name())
            .env(ENDPOINT_ENV, endpoint.to_string())
            .env(CONNECTIONS_ENV, connections.to_string());
        ServerProcess::start(server.name().to_owned(), cmd, Stop::CloseStdin)
    }

    /// Runs an external server such as `echo_async ENDPOINT`, with `{dir}` in its arguments
    /// replaced by `dir`; it inherits this process's raised open-file limit.
    pub(crate) fn spawn_cmd(argv: &[String], dir: &Path) -> Result<ServerProcess, Box<dyn Error>> {
        let [program, args @ ..] = argv else {
            return Err("--server-cmd needs a command".into());
        };
        let dir = dir.to_str().ok_or("the temporary directory is not UTF-8")?;
        let mut cmd = Command::new(program);
        cmd.args(args.iter().map(|a| a.replace("{dir}", dir)));
        let name = Path::new(program)
            .file_name()
            .map_or_else(|| program.clone(), |n| n.to_string_lossy().into_owned());
        ServerProcess::start(name, cmd, Stop::Sigterm)
    }

    fn start(name: String, mut cmd: Command, stop: Stop) -> Result<ServerProcess, Box<dyn Error>> {
        let mut process = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{name}: cannot start: {e}"))?;
        let stdin = process.stdin.take();
        let stdout = process.stdout.take().ok_or("no child stdout")?;
        // A thread reads the first line, then drains the rest so the server never blocks on a
        // full pipe; the channel bounds the wait for the first line.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let mut server = ServerProcess {
            name,
            process,
            stdin,
            endpoint: Endpoint::Tcp(([0, 0, 0, 0], 0).into()),
            stop,
        };
        let line = match rx.recv_timeout(START_STOP_TIMEOUT) {
            Ok(Some(line)) => line?,
            Ok(None) => return Err(format!("{}: exited before listening", server.name).into()),
            Err(_) => return Err(format!("{}: no `listening on` line", server.name).into()),
        };
        let endpoint = line
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("{}: unexpected first line {line:?}", server.name))?;
        server.endpoint = endpoint
            .parse()
            .map_err(|e| format!("{}: {endpoint:?}: {e}", server.name))?;
        Ok(server)
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Where the server listens, from its `listening on` line.
    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The server's resident set (`VmRSS` in `/proc/PID/status`), in KiB.
    pub(crate) fn rss_kib(&self) -> io::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| io::Error::other("no VmRSS in /proc/PID/status"))
    }

    /// How many descriptors the server has open (entries of `/proc/PID/fd`).
    pub(crate) fn fd_count(&self) -> io::Result<usize> {
        Ok(std::fs::read_dir(format!("/proc/{}/fd", self.process.id()))?.count())
    }

    /// Waits until the server holds at least (`at_least`) or at most (`!at_least`) `target`
    /// descriptors: an accepted connection is a descriptor, whoever wrote the server. Fails at
    /// `deadline`, or if the server exits.
    pub(crate) fn wait_fds(
        &mut self,
        target: usize,
        at_least: bool,
        deadline: Instant,
    ) -> Result<(), Box<dyn Error>> {
        loop {
            if let Some(status) = self.process.try_wait()? {
                return Err(format!("{}: exited early: {status}", self.name).into());
            }
            let n = self.fd_count()?;
            if (at_least && n >= target) || (!at_least && n <= target) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let want = if at_least { "at least" } else { "at most" };
                return Err(format!(
                    "{}: holds {n} descriptors at its deadline, expected {want} {target}",
                    self.name
                )
                .into());
            }
            std::thread::sleep(POLL);
        }
    }

    /// Tells the server to exit and checks that it does, with status 0, within a bound.
    pub(crate) fn stop(mut self) -> Result<(), Box<dyn Error>> {
        match self.stop {
            Stop::CloseStdin => drop(self.stdin.take()),
            Stop::Sigterm => kill(Pid::from_raw(self.process.id() as i32), Signal::SIGTERM)?,
        }
        let deadline = Instant::now() + START_STOP_TIMEOUT;
        loop {
            if let Some(status) = self.process.try_wait()? {
                if !status.success() {
                    return Err(format!("{}: exited with {status}", self.name).into());
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{}: still running {START_STOP_TIMEOUT:?} after stop",
                    self.name
                )
                .into());
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // After `stop` both are no-ops on the reaped child's remembered status.
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
