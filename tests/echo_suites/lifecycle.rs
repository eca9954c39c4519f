// Included by `tests/echo_lifecycle.rs` (the blocking `echo`) and `tests/echo_lifecycle_async.rs` (`echo_async`):
// see `tests/procs` for how each picks its binary.

use std::fs;
use std::os::unix::net::UnixDatagram as StdUnixDatagram;
use std::path::Path;
use std::time::Duration;

use msgsock::Endpoint;
use nix::sys::signal::Signal;

use crate::common::tempdir;
use crate::procs::{assert_echoes, client, echo, files_in, Finished, Proc, TestResult, PATIENCE};

/// How long a signalled server may take to exit before the test calls it hung.
const EXIT_BOUND: Duration = Duration::from_secs(5);

/// `echo ENDPOINT ARGS...`, started and listening.
fn serve(endpoint: &str, args: &[&str]) -> (Proc, Endpoint) {
    let mut all = vec![endpoint];
    all.extend_from_slice(args);
    let server = Proc::spawn(&mut echo(&all));
    let local = server.listening_on();
    (server, local)
}

/// Sends `signal` and asserts the server exits 0 within `EXIT_BOUND`.
fn stop_on(server: Proc, signal: Signal) -> Finished {
    server.signal(signal);
    let out = server.finish_within(EXIT_BOUND);
    out.assert_clean_exit();
    out
}

/// The endpoint of `scheme` for a server in `dir`.
fn endpoint_in(scheme: &str, dir: &Path) -> String {
    match scheme {
        "tcp" | "udp" => format!("{scheme}:127.0.0.1:0"),
        _ => format!("{scheme}:{}", dir.join("echo.sock").display()),
    }
}

/// Stops a server that has a client in the middle of things (a stream client half-way through a
/// frame, so its connection thread is blocked reading) on `signal`; its files go with it.
fn stops_promptly_with_a_client_attached(scheme: &str, signal: Signal) -> TestResult {
    let dir = tempdir();
    let (server, endpoint) = serve(&endpoint_in(scheme, dir.path()), &[]);
    let mut conn = client(&endpoint)?;
    assert_echoes(&mut conn, b"before the signal")?;
    let _attached = match conn.into_stream() {
        Some(stream) => {
            use std::io::Write;
            // A frame header promising 100 bytes, and only 3 of them.
            let mut raw = stream.into_inner();
            raw.write_all(&[0, 0, 0, 100, 1, 2, 3])?;
            Some(raw)
        }
        None => None,
    };
    stop_on(server, signal);
    assert_eq!(files_in(dir.path()), Vec::<String>::new(), "files left");
    Ok(())
}

macro_rules! stop_tests {
    ($($name:ident => $scheme:literal, $signal:ident;)+) => {$(
        #[test]
        fn $name() -> TestResult {
            stops_promptly_with_a_client_attached($scheme, Signal::$signal)
        }
    )+};
}

stop_tests! {
    unix_stops_on_sigterm_with_a_client_attached => "unix", SIGTERM;
    unix_stops_on_sigint_with_a_client_attached => "unix", SIGINT;
    tcp_stops_on_sigterm_with_a_client_attached => "tcp", SIGTERM;
    tcp_stops_on_sigint_with_a_client_attached => "tcp", SIGINT;
    udp_stops_on_sigterm_with_a_client_attached => "udp", SIGTERM;
    udp_stops_on_sigint_with_a_client_attached => "udp", SIGINT;
    unixgram_stops_on_sigterm_with_a_client_attached => "unixgram", SIGTERM;
    unixgram_stops_on_sigint_with_a_client_attached => "unixgram", SIGINT;
    unixpacket_stops_on_sigterm_with_a_client_attached => "unixpacket", SIGTERM;
    unixpacket_stops_on_sigint_with_a_client_attached => "unixpacket", SIGINT;
}

/// How many datagrams a Unix datagram socket's receive queue holds on this machine (Linux's
/// `net.unix.max_dgram_qlen`, 10 by default; the kernel lets one more in).
fn unix_dgram_queue_len() -> usize {
    fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(10)
        + 1
}

/// A client binds its own address, sends more datagrams than its receive queue holds and never
/// reads the replies. Another client must still get its reply, the server must say it dropped
/// some, and SIGTERM must still stop it, removing its socket file.
#[test]
fn unixgram_client_that_stops_reading_delays_no_one() -> TestResult {
    let dir = tempdir();
    let path = dir.path().join("echo.sock");
    let (mut server, endpoint) = serve(&format!("unixgram:{}", path.display()), &[]);
    let stalled = StdUnixDatagram::bind(dir.path().join("stalled.sock"))?;
    // Bounded so that a stuck server (whose queue then fills too) fails the test, not hangs it.
    stalled.set_write_timeout(Some(Duration::from_secs(2)))?;
    for _ in 0..unix_dgram_queue_len() + 15 {
        let _ = stalled.send_to(b"never read", &path);
    }

    let mut other = client(&endpoint)?;
    // A stuck server would leave this client waiting to send or to hear back: fail, not hang.
    other.set_read_timeout(Some(Duration::from_secs(10)))?;
    other.set_write_timeout(Some(Duration::from_secs(10)))?;
    assert_echoes(&mut other, b"am I answered?")?;
    let line = server.stderr_line_with("dropped");
    assert!(
        line.contains("stalled.sock"),
        "names the destination: {line}"
    );
    assert!(server.is_running());

    stop_on(server, Signal::SIGTERM);
    assert_eq!(
        files_in(dir.path()),
        ["stalled.sock"],
        "the server's file removed"
    );
    Ok(())
}

/// The running total of dropped replies in a `(N dropped so far)` line.
fn dropped_so_far(line: &str) -> u64 {
    line.rsplit_once(" (")
        .and_then(|(_, tail)| tail.strip_suffix(" dropped so far)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no running total in {line:?}"))
}

/// A client that never reads fills the server's own send buffer (on Linux the replies it has not
/// read stay charged there): long replies to an unconnected socket, fewer than its queue holds.
/// From then on every reply is dropped, but the server must keep reading at full speed, not
/// spend `SEND_ROOM_WAIT` (200 ms) waiting for room before each: thousands of datagrams from
/// another client are all read and counted. (Waiting 200 ms on each, the count would take over
/// ten minutes, far past `PATIENCE`: the test fails on the guard, it measures nothing.)
#[test]
fn unixgram_full_send_buffer_does_not_stall_the_server() -> TestResult {
    const N: u64 = 3000;
    let dir = tempdir();
    let path = dir.path().join("echo.sock");
    let (server, _) = serve(&format!("unixgram:{}", path.display()), &[]);
    let hog = StdUnixDatagram::bind(dir.path().join("hog.sock"))?;
    hog.set_write_timeout(Some(PATIENCE))?;
    // Four 100 KB replies are more than the default SO_SNDBUF (208 KiB) holds.
    let long = vec![7; 100_000];
    for _ in 0..4 {
        hog.send_to(&long, &path)?;
    }
    let line = server.stderr_line_with("dropped");
    assert!(line.contains("hog.sock"), "the hog's reply is dropped: {line}");

    let flooder = StdUnixDatagram::bind(dir.path().join("flood.sock"))?;
    flooder.set_write_timeout(Some(PATIENCE))?;
    let path_for_flood = path.clone();
    let flood = std::thread::spawn(move || -> std::io::Result<()> {
        for _ in 0..N {
            flooder.send_to(b"answer me", &path_for_flood)?;
        }
        Ok(())
    });
    // The summaries come at most once a second, the last one within a second of the flood.
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let line = server.stderr_line_with("dropped so far");
        if dropped_so_far(&line) >= N {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server is still reading after {PATIENCE:?}: {line}"
        );
    }
    flood.join().expect("the flood thread")?;

    stop_on(server, Signal::SIGTERM);
    assert_eq!(
        files_in(dir.path()),
        ["flood.sock", "hog.sock"],
        "the server's file removed"
    );
    Ok(())
}

/// The socket file is deleted under a running server: SIGTERM still exits 0 and removes the lock.
fn stops_after_its_file_was_deleted(scheme: &str) -> TestResult {
    let dir = tempdir();
    let path = dir.path().join("echo.sock");
    let (server, _) = serve(&format!("{scheme}:{}", path.display()), &[]);
    fs::remove_file(&path)?;
    stop_on(server, Signal::SIGTERM);
    assert_eq!(files_in(dir.path()), Vec::<String>::new(), "lock file left");
    Ok(())
}

#[test]
fn unix_sigterm_after_the_socket_file_was_deleted_exits_zero_and_removes_the_lock() -> TestResult {
    stops_after_its_file_was_deleted("unix")
}

#[test]
fn unixgram_sigterm_after_the_socket_file_was_deleted_exits_zero_and_removes_the_lock() -> TestResult
{
    stops_after_its_file_was_deleted("unixgram")
}

/// Both files are deleted and a second server binds the path: SIGTERM stops the first without
/// its wake-up reaching the second, whose files stay and who goes on serving.
fn stops_without_touching_a_successor(scheme: &str) -> TestResult {
    let dir = tempdir();
    let path = dir.path().join("echo.sock");
    let endpoint = format!("{scheme}:{}", path.display());
    let (first, _) = serve(&endpoint, &[]);
    fs::remove_file(&path)?;
    fs::remove_file(dir.path().join("echo.sock.lock"))?;
    let (mut second, local) = serve(&endpoint, &[]);

    stop_on(first, Signal::SIGTERM);
    assert_eq!(files_in(dir.path()), ["echo.sock", "echo.sock.lock"]);
    assert!(second.is_running());
    let mut conn = client(&local)?;
    assert_echoes(&mut conn, b"still here")?;
    drop(conn);
    let out = stop_on(second, Signal::SIGTERM);
    assert!(
        !out.stderr.contains("unbound sender") && !out.stderr.contains("failed"),
        "the second server saw the first's wake-up: {}",
        out.stderr
    );
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
    Ok(())
}

#[test]
fn unix_sigterm_with_a_successor_at_the_path_stops_and_leaves_it_alone() -> TestResult {
    stops_without_touching_a_successor("unix")
}

#[test]
fn unixgram_sigterm_with_a_successor_at_the_path_stops_and_leaves_it_alone() -> TestResult {
    stops_without_touching_a_successor("unixgram")
}

/// With `--max-connections 2`, a third connection is closed and logged (after the 0.1 s it
/// waits for a place); once one of the two leaves, a new one is served again.
fn max_connections_closes_the_one_over(scheme: &str) -> TestResult {
    let dir = tempdir();
    let (mut server, endpoint) = serve(
        &endpoint_in(scheme, dir.path()),
        &["--max-connections", "2"],
    );
    let mut first = client(&endpoint)?;
    let mut second = client(&endpoint)?;
    assert_echoes(&mut first, b"one")?;
    assert_echoes(&mut second, b"two")?;

    let mut third = client(&endpoint)?;
    // The server closes it without reading: the send may land or fail, the receive sees the end.
    let _ = third.send(b"three");
    assert!(
        !matches!(third.recv(), Ok(Some(_))),
        "the third connection was served"
    );
    let line = server.stderr_line_with("--max-connections");
    assert!(line.contains("closed"), "{line}");

    drop(first);
    // The server notices the close on the connection's own thread; until then a newcomer is
    // still one too many. Bounded by PATIENCE, and each refusal is logged, never a hang.
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let mut next = client(&endpoint)?;
        if next.send(b"four").is_ok() && matches!(next.recv(), Ok(Some(ref m)) if m == b"four") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never admitted again");
        std::thread::yield_now();
    }
    assert_echoes(&mut second, b"still served")?;
    assert!(server.is_running());
    stop_on(server, Signal::SIGTERM);
    Ok(())
}

/// Clients that connect and close at once, in a burst many times `--max-connections` long,
/// have gone before they are served: their places come free as their handlers see the close,
/// and the server waits for that rather than refusing the next client for connections that are
/// already gone. Nothing is refused, and a client after the burst is served.
fn a_burst_of_gone_clients_refuses_no_one(scheme: &str) -> TestResult {
    let dir = tempdir();
    let (server, endpoint) = serve(
        &endpoint_in(scheme, dir.path()),
        &["--max-connections", "4"],
    );
    for _ in 0..500 {
        drop(client(&endpoint)?);
    }
    let mut last = client(&endpoint)?;
    assert_echoes(&mut last, b"after the burst")?;
    drop(last);
    let out = stop_on(server, Signal::SIGTERM);
    let refused: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("--max-connections"))
        .collect();
    assert!(
        refused.is_empty(),
        "{} of 500 gone clients refused, as {:?}",
        refused.len(),
        refused.first()
    );
    Ok(())
}

#[test]
fn unix_a_burst_of_gone_clients_refuses_no_one() -> TestResult {
    a_burst_of_gone_clients_refuses_no_one("unix")
}

#[test]
fn tcp_a_burst_of_gone_clients_refuses_no_one() -> TestResult {
    a_burst_of_gone_clients_refuses_no_one("tcp")
}

#[test]
fn unix_max_connections_closes_the_one_over_the_limit() -> TestResult {
    max_connections_closes_the_one_over("unix")
}

#[test]
fn tcp_max_connections_closes_the_one_over_the_limit() -> TestResult {
    max_connections_closes_the_one_over("tcp")
}

#[test]
fn max_connections_rejects_bad_values_in_one_line() {
    for bad in ["0", "-1", "many", ""] {
        let out = Proc::spawn(&mut echo(&["--max-connections", bad, "tcp:127.0.0.1:0"])).finish();
        let line = out.assert_one_line_error();
        assert!(line.contains("--max-connections"), "{bad:?}: {line}");
    }
}

#[test]
fn help_states_the_connection_limit_and_the_memory_it_allows() {
    let out = Proc::spawn(&mut echo(&["--help"])).finish();
    out.assert_clean_exit();
    assert!(out.stdout.contains("--max-connections"), "{}", out.stdout);
    assert!(
        out.stdout.contains("MiB"),
        "states the worst case: {}",
        out.stdout
    );
}
