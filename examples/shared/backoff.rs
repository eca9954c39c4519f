//! The wait between failed accepts, shared by `echo`, `echo_async` and `chat` (each includes
//! this file with `#[path]`).

use std::time::Duration;

/// The waits between failed accepts that will fail again at once (no file descriptors, no
/// memory), so a server out of descriptors neither dies nor spins: 10 ms, doubling up to 1 s.
pub struct Backoff {
    /// The program's name, which starts each line it logs.
    program: &'static str,
    delay: Option<Duration>,
}

impl Backoff {
    /// No delay yet; lines logged start with `program`.
    pub fn new(program: &'static str) -> Backoff {
        Backoff {
            program,
            delay: None,
        }
    }

    /// How long to wait (logged) after `err`, or `None` if it is not a shortage.
    pub fn after_failure(&mut self, err: &msgsock::Error) -> Option<Duration> {
        let msgsock::Error::Io(io) = err else {
            return None;
        };
        use nix::libc::{EMFILE, ENFILE, ENOBUFS, ENOMEM};
        if !matches!(io.raw_os_error(), Some(EMFILE | ENFILE | ENOBUFS | ENOMEM)) {
            return None;
        }
        let delay = self.delay.map_or(Duration::from_millis(10), |d| {
            (d * 2).min(Duration::from_secs(1))
        });
        self.delay = Some(delay);
        eprintln!("{}: backing off for {} ms", self.program, delay.as_millis());
        Some(delay)
    }

    /// After an accept that worked.
    pub fn reset(&mut self) {
        self.delay = None;
    }
}
