//! The `echo` example as a separate process: a real server for tests that attack one, shared
//! between threads (its stderr is collected behind a mutex). The binary is found by
//! [`crate::procs::example`].

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use msgsock::Endpoint;

/// How long the server may take to say it is listening: a guard against hanging only.
const READY_PATIENCE: Duration = Duration::from_secs(60);

/// A running `echo` server; killed and reaped when dropped, whatever happened in the test.
pub struct EchoProcess {
    child: Child,
    endpoint: Endpoint,
    stderr: Arc<Mutex<String>>,
}

impl EchoProcess {
    /// Starts `echo ENDPOINT` and waits for its `listening on ENDPOINT` line.
    ///
    /// # Panics
    ///
    /// If the example is not built, cannot start, or exits or stays silent instead of listening.
    pub fn start(endpoint: &str) -> EchoProcess {
        let mut child = Command::new(crate::procs::example(crate::procs::echo_name()))
            .arg(endpoint)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the echo example");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");

        // Drained on threads so that a chatty server never blocks on a full pipe.
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            let mut chunk = [0; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut chunk) {
                let text = String::from_utf8_lossy(&chunk[..n]);
                sink.lock().unwrap().push_str(&text);
            }
        });
        let (first_line, ready) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = first_line.send(line);
            }
            lines.for_each(drop);
        });

        let endpoint = ready
            .recv_timeout(READY_PATIENCE)
            .map_err(|e| match e {
                RecvTimeoutError::Disconnected => "echo exited before listening".to_string(),
                RecvTimeoutError::Timeout => format!("echo not listening after {READY_PATIENCE:?}"),
            })
            .and_then(|line| {
                line.strip_prefix("listening on ")
                    .and_then(|e| e.parse().ok())
                    .ok_or_else(|| format!("first line is {line:?}, not `listening on ENDPOINT`"))
            });
        match endpoint {
            Ok(endpoint) => EchoProcess {
                child,
                endpoint,
                stderr: log,
            },
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{why}; stderr: {}", log.lock().unwrap());
            }
        }
    }

    /// The endpoint the server listens on, with the real port for port 0.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// What the server has written to stderr so far, for failure messages.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Panics if the server has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("waitpid(2)") {
            panic!("echo exited ({status}); stderr: {}", self.stderr());
        }
    }
}

impl Drop for EchoProcess {
    fn drop(&mut self) {
        // Errors mean it already exited: there is nothing left to clean up.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
