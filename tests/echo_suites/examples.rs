// Included by `tests/examples.rs` (the blocking `echo`) and `tests/examples_async.rs` (`echo_async`):
// see `tests/procs` for how each picks its binary.

use std::io::Write;
use std::process::{Command, Stdio};

use msgsock::Endpoint;
use nix::sys::signal::Signal;

use crate::procs::{echo, example, files_in, Proc, TestResult};

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
    out.assert_clean_exit();
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
        "tcp:local host:80",
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

#[test]
fn echo_help_indents_every_option_line_alike() {
    let out = Proc::spawn(&mut echo(&["--help"])).finish();
    out.assert_clean_exit();
    let options: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("--"))
        .collect();
    assert!(options.len() >= 5, "too few option lines:\n{}", out.stdout);
    let indent = |l: &str| l.len() - l.trim_start().len();
    for line in &options {
        assert_eq!(
            indent(line),
            indent(options[0]),
            "option line {line:?} is indented unlike {:?}:\n{}",
            options[0],
            out.stdout
        );
    }
    assert!(indent(options[0]) > 0, "options not indented:\n{}", out.stdout);
}

#[test]
fn demo_child_names_a_missing_socket_file_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("unix:{}", dir.path().join("none.sock").display());
    let out = Proc::spawn(
        Command::new(example("demo"))
            .args(["--child", &endpoint])
            .stdin(Stdio::null()),
    )
    .finish();
    assert!(!out.status.success(), "{}: {}", out.status, out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(out.stderr.contains(&endpoint), "{}", out.stderr);
    // "No such file or directory (os error 2)", in the system's words.
    let cause = std::io::Error::from_raw_os_error(nix::libc::ENOENT).to_string();
    assert_eq!(
        out.stderr.matches(&cause).count(),
        1,
        "the cause {cause:?} should appear once: {}",
        out.stderr
    );
}

/// An echo client of `endpoint`, with TMPDIR at `tmp` and its stdin piped (returned, held
/// open), once its first line has gone out and come back: its socket exists and is connected.
fn client_past_its_first_line(
    endpoint: &str,
    tmp: &std::path::Path,
) -> Result<(Proc, std::process::ChildStdin), Box<dyn std::error::Error>> {
    let mut cmd = echo(&["--connect", endpoint]);
    cmd.env("TMPDIR", tmp).stdin(Stdio::piped());
    let mut client = Proc::spawn(&mut cmd);
    let mut stdin = client.child.stdin.take().expect("piped stdin");
    stdin.write_all(b"first line\n")?;
    stdin.flush()?;
    assert_eq!(client.next_line().as_deref(), Some("first line"));
    Ok((client, stdin))
}

/// A `unixgram:` client (whose reply address is a private socket file the library makes under
/// TMPDIR), stopped by `signal` while it waits for more of stdin: it exits 0 and its files go.
fn unixgram_client_stops_cleanly_on(signal: Signal) -> TestResult {
    let server_dir = tempfile::tempdir()?;
    let path = server_dir.path().join("echo.sock");
    let server = Proc::spawn(&mut echo(&[&format!("unixgram:{}", path.display())]));
    let endpoint = server.listening_on().to_string();

    let tmp = tempfile::tempdir()?;
    // Its stdin held open, so the client waits for more input when the signal comes.
    let (client, stdin) = client_past_its_first_line(&endpoint, tmp.path())?;
    assert_ne!(files_in(tmp.path()), Vec::<String>::new(), "no client socket");

    client.signal(signal);
    let out = client.finish();
    drop(stdin);
    out.assert_clean_exit();
    assert_eq!(files_in(tmp.path()), Vec::<String>::new(), "files left");

    server.signal(Signal::SIGTERM);
    server.finish().assert_clean_exit();
    Ok(())
}

#[test]
fn unixgram_client_exits_zero_and_removes_its_socket_on_sigint() -> TestResult {
    unixgram_client_stops_cleanly_on(Signal::SIGINT)
}

#[test]
fn unixgram_client_exits_zero_and_removes_its_socket_on_sigterm() -> TestResult {
    unixgram_client_stops_cleanly_on(Signal::SIGTERM)
}

/// A datagram client whose server went away (an ICMP port-unreachable on `udp:`, a dead peer on
/// `unixgram:`) ends with one line that names the endpoint, exit 1, and its files removed.
fn datagram_client_names_a_gone_server(scheme: &str) -> TestResult {
    let server_dir = tempfile::tempdir()?;
    let bind = match scheme {
        "udp" => "udp:127.0.0.1:0".to_string(),
        _ => format!("unixgram:{}", server_dir.path().join("echo.sock").display()),
    };
    let server = Proc::spawn(&mut echo(&[&bind]));
    let endpoint = server.listening_on().to_string();

    let tmp = tempfile::tempdir()?;
    let (client, mut stdin) = client_past_its_first_line(&endpoint, tmp.path())?;

    server.signal(Signal::SIGTERM);
    server.finish().assert_clean_exit();
    stdin.write_all(b"second line\n")?;
    stdin.flush()?;
    let out = client.finish();
    drop(stdin);
    let line = out.assert_one_line_error();
    assert!(
        line.contains(&format!("nothing is bound at {endpoint}")),
        "{line}"
    );
    assert_eq!(files_in(tmp.path()), Vec::<String>::new(), "files left");
    Ok(())
}

#[test]
fn udp_client_names_a_gone_server() -> TestResult {
    datagram_client_names_a_gone_server("udp")
}

#[test]
fn unixgram_client_names_a_gone_server() -> TestResult {
    datagram_client_names_a_gone_server("unixgram")
}
