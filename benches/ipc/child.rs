//! The serving child, and the parent's end of the line protocol between the two.
//!
//! The bench re-executes itself with `MSGSOCK_BENCH_CHILD` naming the core to pin to (or `-`).
//! The child binds one listener per family and prints `addr ADDRESS` for each. Then, for each
//! case, the parent writes `FAMILY IMPL PATTERN SIZE` on the child's stdin and connects; the child
//! accepts, serves the pattern until its end marker, and answers `done CPU_NS OPS` with its CPU
//! time and the number of messages it received. The child exits when its stdin closes.

use std::error::Error;
use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use crate::cases::Case;
use crate::cpu::{cpu_time, pin};
use crate::patterns::Pattern;
use crate::transports::families;

/// Set in the child's environment: the core to pin to, or `-`.
const CHILD_ENV: &str = "MSGSOCK_BENCH_CHILD";

/// The core to pin to (`-` for none) when this process is the child.
pub(crate) fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// The child, seen from the parent. Killed and reaped however the parent leaves.
pub(crate) struct ChildLink {
    process: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    addrs: Vec<String>,
}

impl ChildLink {
    /// Starts the child, pinned to `cpu` if given, and reads the address of each family.
    pub(crate) fn spawn(cpu: Option<usize>) -> Result<ChildLink, Box<dyn Error>> {
        let cpu = cpu.map_or_else(|| "-".to_owned(), |c| c.to_string());
        let mut process = Command::new(std::env::current_exe()?)
            .env(CHILD_ENV, cpu)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = process.stdin.take();
        let stdout = process.stdout.take().ok_or("no child stdout");
        let mut link = ChildLink {
            process,
            stdin,
            stdout: BufReader::new(stdout?),
            addrs: Vec::new(),
        };
        for _ in families() {
            let line = link.line()?;
            let addr = line
                .strip_prefix("addr ")
                .ok_or_else(|| format!("unexpected child line {line:?}"))?;
            link.addrs.push(addr.to_owned());
        }
        Ok(link)
    }

    /// The address the child listens on for `family`.
    pub(crate) fn addr(&self, family: usize) -> &str {
        &self.addrs[family]
    }

    /// Tells the child which case to serve next; the parent connects after this.
    pub(crate) fn start(&mut self, case: Case) -> io::Result<()> {
        let stdin = self.stdin.as_mut().ok_or(io::ErrorKind::BrokenPipe)?;
        writeln!(
            stdin,
            "{} {} {} {}",
            case.family,
            case.imp,
            case.pattern.word(),
            case.size
        )?;
        stdin.flush()
    }

    /// Waits for the end of the case: the child's CPU time per message it received.
    pub(crate) fn finish(&mut self) -> Result<Duration, Box<dyn Error>> {
        let line = self.line()?;
        let mut words = line.split(' ');
        let (Some("done"), Some(cpu), Some(ops)) = (words.next(), words.next(), words.next())
        else {
            return Err(format!("unexpected child line {line:?}").into());
        };
        let per_op = cpu.parse::<u64>()? / ops.parse::<u64>()?.max(1);
        Ok(Duration::from_nanos(per_op))
    }

    /// Closes the child's stdin and waits for it to exit cleanly.
    pub(crate) fn close(mut self) -> Result<(), Box<dyn Error>> {
        drop(self.stdin.take());
        let status = self.process.wait()?;
        if !status.success() {
            return Err(format!("the child failed: {status}").into());
        }
        Ok(())
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err(io::Error::other("the child exited early"));
        }
        Ok(line.trim_end().to_owned())
    }
}

impl Drop for ChildLink {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The serving side: binds every family, prints the addresses, then serves one case per
/// command line on stdin until stdin closes.
pub(crate) fn serve(cpu: &str) -> Result<(), Box<dyn Error>> {
    if let Ok(cpu) = cpu.parse() {
        pin(cpu)?;
    }
    let mut listeners = Vec::new();
    let mut out = io::stdout().lock();
    for family in families() {
        let (listener, addr) = (family.bind)()?;
        writeln!(out, "addr {addr}")?;
        listeners.push(listener);
    }
    out.flush()?;
    let mut lines = io::stdin().lock().lines();
    while let Some(line) = lines.next().transpose()? {
        let words: Vec<&str> = line.split(' ').collect();
        let [f, imp, pattern, size] = words[..] else {
            return Err(format!("bad command {line:?}").into());
        };
        let (f, imp, size): (usize, usize, usize) = (f.parse()?, imp.parse()?, size.parse()?);
        let pattern = Pattern::parse(pattern).ok_or("bad pattern")?;
        let fd = listeners[f].accept()?;
        let cpu0 = cpu_time()?;
        let ops = families()[f].impls[imp].serve(fd, pattern, size)?;
        let cpu = cpu_time()? - cpu0;
        writeln!(out, "done {} {ops}", cpu.as_nanos())?;
        out.flush()?;
    }
    Ok(())
}
