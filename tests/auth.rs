//! The shared-key handshake against real Python (`multiprocessing.connection`, standard library
//! only) on both families, against Python's `hmac` module for the modern form, and between
//! msgsock peers of different dialects.
//!
//! Python and server threads are bounded by failure guards (Python's `signal.alarm`, channel
//! timeouts), never by timing assertions.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::reference_python3 as python3;
use msgsock::{
    AnyListener, AnyStream, AuthFailure, AuthKey, Authenticator, Connection, Dialect, Endpoint,
    Error,
};

/// How long any step may take before a test gives up: a failure guard only.
const GUARD: Duration = Duration::from_secs(60);

const CHALLENGE: &[u8] = b"#CHALLENGE#";
const WELCOME: &[u8] = b"#WELCOME#";
const FAILURE: &[u8] = b"#FAILURE#";

/// The Python side. `client ENDPOINT` connects with `Client`; `listen ENDPOINT` serves one
/// connection with `Listener` and prints the endpoint it listens on. The key, if any, comes in
/// hex in `AUTHKEY_HEX`. It prints one line per event, for the test to assert on.
const PY_PEER: &str = r#"
import os, signal, sys
from multiprocessing.connection import Client, Listener

signal.alarm(60)  # failure guard: a stuck peer ends instead of hanging the test
mode, endpoint = sys.argv[1], sys.argv[2]
key = bytes.fromhex(os.environ["AUTHKEY_HEX"]) if "AUTHKEY_HEX" in os.environ else None

def address(ep):
    scheme, rest = ep.split(":", 1)
    if scheme == "unix":
        return rest
    host, port = rest.rsplit(":", 1)
    return (host, int(port))

def report(*words):
    print(*words, flush=True)

if mode == "client":
    try:
        conn = Client(address(endpoint), authkey=key)
    except Exception as e:
        report("error", type(e).__name__)
        sys.exit(0)
    conn.send_bytes(b"ping")
    try:
        report("got", conn.recv_bytes().hex())
    except EOFError:
        report("eof")
elif mode == "listen":
    family = "AF_UNIX" if endpoint.startswith("unix:") else "AF_INET"
    listener = Listener(address(endpoint), family=family, authkey=key)
    if family == "AF_UNIX":
        report("listening", endpoint)
    else:
        report("listening", "tcp:%s:%d" % listener.address)
    try:
        conn = listener.accept()
    except Exception as e:
        report("error", type(e).__name__)
        sys.exit(0)
    if key is None:
        conn.send_bytes(b"hello")
    try:
        report("got", conn.recv_bytes().hex())
        conn.send_bytes(b"pong")
    except EOFError:
        report("eof")
"#;

/// Whether `python3` speaks the modern form (3.12+) rather than only the legacy one.
fn python_is_modern() -> bool {
    let out = python3()
        .args(["-c", "import sys; print(sys.version_info >= (3, 12))"])
        .output()
        .expect("run python3");
    String::from_utf8_lossy(&out.stdout).trim() == "True"
}

/// A running Python peer, killed and reaped on drop whatever happened.
struct PyPeer {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl PyPeer {
    fn start(mode: &str, endpoint: &str, key: Option<&[u8]>) -> PyPeer {
        let mut cmd = python3();
        cmd.args(["-c", PY_PEER, mode, endpoint])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .env_remove("AUTHKEY_HEX");
        if let Some(key) = key {
            cmd.env("AUTHKEY_HEX", hex(key));
        }
        let mut child = cmd.spawn().expect("start python3");
        let out = BufReader::new(child.stdout.take().unwrap());
        PyPeer { child, out }
    }

    /// The next line the peer printed (its alarm bounds the wait).
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.out.read_line(&mut line).expect("read python output");
        assert!(!line.is_empty(), "python exited without reporting");
        line.trim_end().to_owned()
    }

    /// Waits for a clean exit.
    fn finish(mut self) {
        let mut rest = String::new();
        self.out.read_to_string(&mut rest).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "python failed: {status}; output: {rest}");
    }
}

impl Drop for PyPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// HMAC of `message` under `key` as Python's `hmac` module computes it: the independent vector.
fn python_hmac(key: &[u8], message: &[u8], digest: &str) -> Vec<u8> {
    let out = python3()
        .args([
            "-c",
            "import hmac, sys; print(hmac.new(bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2]), sys.argv[3]).hexdigest())",
            &hex(key),
            &hex(message),
            digest,
        ])
        .output()
        .expect("run python3");
    assert!(out.status.success(), "python hmac failed: {out:?}");
    unhex(String::from_utf8(out.stdout).unwrap().trim())
}

fn auth(key: &[u8]) -> Authenticator {
    Authenticator::new(AuthKey::new(key.to_vec()))
}

fn reason(result: msgsock::Result<()>) -> AuthFailure {
    match result {
        Err(Error::AuthenticationFailed { reason }) => reason,
        other => panic!("expected an authentication failure, got {other:?}"),
    }
}

/// The socket families, each test running on both.
#[derive(Clone, Copy)]
enum Family {
    Unix,
    Tcp,
}

impl Family {
    /// An endpoint to bind: a socket file in `dir`, or an ephemeral loopback port.
    fn endpoint(self, dir: &Path) -> String {
        match self {
            Family::Unix => format!("unix:{}", dir.join("auth.sock").display()),
            Family::Tcp => "tcp:127.0.0.1:0".to_owned(),
        }
    }

    fn bind(self, dir: &Path) -> AnyListener {
        msgsock::bind(&self.endpoint(dir).parse().unwrap()).unwrap()
    }
}

/// What the one-connection msgsock server saw.
type Served = msgsock::Result<Option<Vec<u8>>>;

/// Serves one connection on a thread: with `auth`, authenticates, then answers one message with
/// `pong`; without, greets with `hello` and reports what comes back (`None` on a clean close).
fn serve_one(listener: AnyListener, auth: Option<Authenticator>) -> mpsc::Receiver<Served> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let result = (|| {
            let mut conn = listener.accept()?;
            conn.set_read_timeout(Some(GUARD))?;
            match auth {
                Some(auth) => {
                    conn.authenticate_server(&auth)?;
                    let msg = conn.recv()?;
                    conn.send(b"pong")?;
                    Ok(msg)
                }
                None => {
                    conn.send(b"hello")?;
                    conn.recv()
                }
            }
        })();
        let _ = tx.send(result);
    });
    rx
}

fn served(rx: &mpsc::Receiver<Served>) -> Served {
    rx.recv_timeout(GUARD).expect("server thread finished")
}

/// Starts a Python `Listener` and returns it with the endpoint it really listens on.
fn python_listener(fam: Family, dir: &Path, key: Option<&[u8]>) -> (PyPeer, Endpoint) {
    let mut py = PyPeer::start("listen", &fam.endpoint(dir), key);
    let line = py.line();
    let endpoint = line
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("unexpected python output {line:?}"))
        .parse()
        .unwrap();
    (py, endpoint)
}

fn connect(endpoint: &Endpoint) -> Connection<AnyStream> {
    let conn = msgsock::connect(endpoint).unwrap().into_stream().unwrap();
    conn.set_read_timeout(Some(GUARD)).unwrap();
    conn
}

mod suite {
    use super::*;

    pub(crate) fn python_client_with_right_key_is_served(fam: Family) {
        let dir = tempfile::tempdir().unwrap();
        let listener = fam.bind(dir.path());
        let endpoint = listener.local_endpoint().unwrap().to_string();
        let rx = serve_one(listener, Some(auth(b"right key")));
        let mut py = PyPeer::start("client", &endpoint, Some(b"right key"));
        assert_eq!(py.line(), format!("got {}", hex(b"pong")));
        assert_eq!(served(&rx).unwrap().as_deref(), Some(&b"ping"[..]));
        py.finish();
    }

    pub(crate) fn python_client_with_wrong_key_fails_on_both_sides(fam: Family) {
        let dir = tempfile::tempdir().unwrap();
        let listener = fam.bind(dir.path());
        let endpoint = listener.local_endpoint().unwrap().to_string();
        let rx = serve_one(listener, Some(auth(b"right key")));
        let mut py = PyPeer::start("client", &endpoint, Some(b"wrong key"));
        assert_eq!(py.line(), "error AuthenticationError");
        assert_eq!(reason(served(&rx).map(drop)), AuthFailure::WrongDigest);
        py.finish();
    }

    /// The keyless client reads the challenge as data; the server finds its `ping` no response.
    pub(crate) fn python_client_without_key_fails_cleanly(fam: Family) {
        let dir = tempfile::tempdir().unwrap();
        let listener = fam.bind(dir.path());
        let endpoint = listener.local_endpoint().unwrap().to_string();
        let rx = serve_one(listener, Some(auth(b"right key")));
        let mut py = PyPeer::start("client", &endpoint, None);
        let line = py.line();
        let got = unhex(line.strip_prefix("got ").expect("python got a message"));
        assert!(got.starts_with(CHALLENGE), "{got:?}");
        assert_eq!(
            reason(served(&rx).map(drop)),
            AuthFailure::MalformedResponse
        );
        py.finish();
    }

    /// The keyed client expects a challenge and gets a greeting: Python 3.11 fails an `assert`,
    /// 3.12 raises `AuthenticationError`. The server sees a clean close.
    pub(crate) fn python_client_with_key_vs_keyless_server_fails_cleanly(fam: Family) {
        let dir = tempfile::tempdir().unwrap();
        let listener = fam.bind(dir.path());
        let endpoint = listener.local_endpoint().unwrap().to_string();
        let rx = serve_one(listener, None);
        let mut py = PyPeer::start("client", &endpoint, Some(b"right key"));
        let line = py.line();
        assert!(
            line == "error AssertionError" || line == "error AuthenticationError",
            "{line}"
        );
        assert_eq!(served(&rx).unwrap(), None);
        py.finish();
    }

    pub(crate) fn client_with_right_key_logs_in_to_python_listener(fam: Family) {
        let dir = tempfile::tempdir().unwrap();
        let (mut py, endpoint) = python_listener(fam, dir.path(), Some(b"right key"));
        let mut conn = msgsock::connect_authenticated(&endpoint, &auth(b"right key")).unwrap();
        conn.set_read_timeout(Some(GUARD)).unwrap();
        conn.send(b"ping").unwrap();
        assert_eq!(conn.recv().unwrap().as_deref(), Some(&b"pong"[..]));
        assert_eq!(py.line(), format!("got {}", hex(b"ping")));
        py.finish();
    }

    pub(crate) fn client_with_wrong_key_is_refused_by_python_listener(fam: Family) {
        let dir = tempfile::tempdir().unwrap();
        let (mut py, endpoint) = python_listener(fam, dir.path(), Some(b"right key"));
        let result = msgsock::connect_authenticated(&endpoint, &auth(b"wrong key"));
        assert_eq!(reason(result.map(drop)), AuthFailure::Rejected);
        assert_eq!(py.line(), "error AuthenticationError");
        py.finish();
    }

    /// The keyless client reads the challenge, then the verdict on its `ping`, as data.
    pub(crate) fn client_without_key_vs_keyed_python_listener_fails_cleanly(fam: Family) {
        let dir = tempfile::tempdir().unwrap();
        let (mut py, endpoint) = python_listener(fam, dir.path(), Some(b"right key"));
        let mut conn = connect(&endpoint);
        conn.send(b"ping").unwrap();
        let first = conn.recv().unwrap().unwrap();
        assert!(first.starts_with(CHALLENGE), "{first:?}");
        assert_eq!(conn.recv().unwrap().as_deref(), Some(FAILURE));
        assert_eq!(py.line(), "error AuthenticationError");
        py.finish();
    }

    pub(crate) fn client_with_key_vs_keyless_python_listener_fails_cleanly(fam: Family) {
        let dir = tempfile::tempdir().unwrap();
        let (mut py, endpoint) = python_listener(fam, dir.path(), None);
        let result = msgsock::connect_authenticated(&endpoint, &auth(b"right key"));
        assert_eq!(reason(result.map(drop)), AuthFailure::NotAChallenge);
        assert_eq!(py.line(), "eof");
        py.finish();
    }

    /// Python 3.11 answers in HMAC-MD5, which a modern-only server refuses; 3.12 gets in.
    pub(crate) fn modern_only_server_vs_python(fam: Family) {
        let dir = tempfile::tempdir().unwrap();
        let listener = fam.bind(dir.path());
        let endpoint = listener.local_endpoint().unwrap().to_string();
        let server_auth = auth(b"right key").with_dialect(Dialect::ModernOnly);
        let rx = serve_one(listener, Some(server_auth));
        let mut py = PyPeer::start("client", &endpoint, Some(b"right key"));
        if python_is_modern() {
            assert_eq!(py.line(), format!("got {}", hex(b"pong")));
            assert!(served(&rx).is_ok());
        } else {
            assert_eq!(py.line(), "error AuthenticationError");
            assert_eq!(reason(served(&rx).map(drop)), AuthFailure::LegacyRefused);
        }
        py.finish();
    }
}

/// Instantiates each suite test once per family, so a failure names its family.
macro_rules! families {
    ($($test:ident),+ $(,)?) => {
        mod unix {
            $(#[test] fn $test() { crate::suite::$test(crate::Family::Unix) })+
        }
        mod tcp {
            $(#[test] fn $test() { crate::suite::$test(crate::Family::Tcp) })+
        }
    };
}

families!(
    python_client_with_right_key_is_served,
    python_client_with_wrong_key_fails_on_both_sides,
    python_client_without_key_fails_cleanly,
    python_client_with_key_vs_keyless_server_fails_cleanly,
    client_with_right_key_logs_in_to_python_listener,
    client_with_wrong_key_is_refused_by_python_listener,
    client_without_key_vs_keyed_python_listener_fails_cleanly,
    client_with_key_vs_keyless_python_listener_fails_cleanly,
    modern_only_server_vs_python,
);

/// A connected pair over loopback TCP: (accepted, connected).
fn tcp_pair() -> (Connection<AnyStream>, Connection<AnyStream>) {
    let listener = msgsock::bind(&"tcp:127.0.0.1:0".parse().unwrap()).unwrap();
    let client = connect(&listener.local_endpoint().unwrap());
    let server = listener.accept().unwrap().into_stream().unwrap();
    server.set_read_timeout(Some(GUARD)).unwrap();
    (server, client)
}

/// Runs `f` on a thread and returns its result, bounded by the guard.
fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx
}

fn join<T>(rx: mpsc::Receiver<T>) -> T {
    rx.recv_timeout(GUARD).expect("thread finished")
}

/// A msgsock client answers a modern challenge with exactly `{sha256}` + HMAC-SHA256 over the
/// whole challenge as Python's `hmac` computes it, and accepts such an answer to its own.
#[test]
fn modern_form_matches_python_hmac_both_ways() {
    let key = b"modern key";
    let (mut raw, mut client) = tcp_pair();
    let rx = spawn(move || client.authenticate_client(&auth(key)));

    let m1 = [b"{sha256}".as_slice(), &[0x5a; 40]].concat();
    raw.send(&[CHALLENGE, &m1].concat()).unwrap();
    let response = raw.recv().unwrap().unwrap();
    let expected = [b"{sha256}".as_slice(), &python_hmac(key, &m1, "sha256")].concat();
    assert_eq!(response, expected);
    raw.send(WELCOME).unwrap();

    let challenge = raw.recv().unwrap().unwrap();
    let m2 = challenge.strip_prefix(CHALLENGE).expect("a challenge");
    assert_eq!(m2.len(), 48);
    assert!(m2.starts_with(b"{sha256}"));
    let answer = [b"{sha256}".as_slice(), &python_hmac(key, m2, "sha256")].concat();
    raw.send(&answer).unwrap();
    assert_eq!(raw.recv().unwrap().as_deref(), Some(WELCOME));
    join(rx).unwrap();
}

/// A msgsock server takes a legacy HMAC-MD5 over its modern challenge (Python 3.11's answer),
/// and answers a legacy 20-byte challenge with raw HMAC-MD5, as computed by Python's `hmac`.
#[test]
fn legacy_form_matches_python_hmac_both_ways() {
    let key = b"legacy key";
    let (mut server, mut raw) = tcp_pair();
    let rx = spawn(move || server.authenticate_server(&auth(key)));

    let challenge = raw.recv().unwrap().unwrap();
    let m1 = challenge.strip_prefix(CHALLENGE).expect("a challenge");
    raw.send(&python_hmac(key, m1, "md5")).unwrap();
    assert_eq!(raw.recv().unwrap().as_deref(), Some(WELCOME));

    let m2 = [0xa5; 20];
    raw.send(&[CHALLENGE, &m2].concat()).unwrap();
    assert_eq!(raw.recv().unwrap().unwrap(), python_hmac(key, &m2, "md5"));
    raw.send(WELCOME).unwrap();
    join(rx).unwrap();
}

#[test]
fn wrong_modern_response_gets_failure() {
    let (mut server, mut raw) = tcp_pair();
    let rx = spawn(move || server.authenticate_server(&auth(b"right key")));
    let challenge = raw.recv().unwrap().unwrap();
    let m1 = challenge.strip_prefix(CHALLENGE).expect("a challenge");
    let wrong = [
        b"{sha256}".as_slice(),
        &python_hmac(b"wrong key", m1, "sha256"),
    ]
    .concat();
    raw.send(&wrong).unwrap();
    assert_eq!(raw.recv().unwrap().as_deref(), Some(FAILURE));
    assert_eq!(reason(join(rx)), AuthFailure::WrongDigest);
}

#[test]
fn oversized_handshake_message_is_refused() {
    let (mut server, mut raw) = tcp_pair();
    let rx = spawn(move || server.authenticate_server(&auth(b"key")));
    raw.recv().unwrap().unwrap();
    raw.send(&[0; 300]).unwrap();
    assert_eq!(reason(join(rx)), AuthFailure::OversizedMessage { len: 300 });
}

/// Runs a handshake between two msgsock peers; returns (server's, client's) results, and checks
/// that an authenticated pair can talk.
fn handshake(
    server_auth: Authenticator,
    client_auth: Authenticator,
) -> (msgsock::Result<()>, msgsock::Result<()>) {
    let (mut server, mut client) = tcp_pair();
    let rx = spawn(move || {
        let result = server.authenticate_server(&server_auth);
        if result.is_ok() {
            server.send(b"after").unwrap();
        }
        result
    });
    let client_result = client.authenticate_client(&client_auth);
    if client_result.is_ok() {
        assert_eq!(client.recv().unwrap().as_deref(), Some(&b"after"[..]));
    }
    drop(client);
    (join(rx), client_result)
}

#[test]
fn negotiating_server_lets_legacy_only_client_in() {
    let (s, c) = handshake(auth(b"k"), auth(b"k").with_dialect(Dialect::LegacyOnly));
    s.unwrap();
    c.unwrap();
}

#[test]
fn legacy_only_server_lets_negotiating_client_in() {
    let (s, c) = handshake(auth(b"k").with_dialect(Dialect::LegacyOnly), auth(b"k"));
    s.unwrap();
    c.unwrap();
}

#[test]
fn modern_only_server_refuses_legacy_only_client() {
    let (s, c) = handshake(
        auth(b"k").with_dialect(Dialect::ModernOnly),
        auth(b"k").with_dialect(Dialect::LegacyOnly),
    );
    assert_eq!(reason(s), AuthFailure::LegacyRefused);
    assert_eq!(reason(c), AuthFailure::Rejected);
}

#[test]
fn modern_only_client_refuses_legacy_only_server() {
    let (s, c) = handshake(
        auth(b"k").with_dialect(Dialect::LegacyOnly),
        auth(b"k").with_dialect(Dialect::ModernOnly),
    );
    assert_eq!(reason(c), AuthFailure::LegacyRefused);
    assert_eq!(reason(s), AuthFailure::PeerClosed);
}

#[test]
fn modern_only_peers_agree() {
    let modern = auth(b"k").with_dialect(Dialect::ModernOnly);
    let (s, c) = handshake(modern.clone(), modern);
    s.unwrap();
    c.unwrap();
}

/// A silent peer cannot hold a handshake past its time limit, on either side.
#[test]
fn handshake_times_out_against_silent_peer() {
    let limit = Duration::from_millis(300);
    let short = auth(b"k").with_timeout(Some(limit));

    let (mut server, _silent_client) = tcp_pair();
    let server_auth = short.clone();
    let rx = spawn(move || server.authenticate_server(&server_auth));
    assert!(matches!(join(rx), Err(Error::HandshakeTimeout { timeout }) if timeout == limit));

    let (_silent_server, mut client) = tcp_pair();
    let rx = spawn(move || client.authenticate_client(&short));
    let err = join(rx).unwrap_err();
    assert!(matches!(err, Error::HandshakeTimeout { .. }), "{err:?}");
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::TimedOut
    );
}

/// A spin budget longer than the handshake's time limit does not stretch it: the spin stops at
/// the limit. (On a spin that ran its budget, `join` would give up at its guard.)
#[test]
fn handshake_time_limit_holds_while_spinning() {
    let limit = Duration::from_millis(200);
    let short = auth(b"k").with_timeout(Some(limit));
    for server_side in [true, false] {
        let (mut ours, _silent) = tcp_pair();
        ours.set_spin(Some(GUARD * 4));
        let ours_auth = short.clone();
        let rx = spawn(move || {
            if server_side {
                ours.authenticate_server(&ours_auth)
            } else {
                ours.authenticate_client(&ours_auth)
            }
        });
        let err = join(rx).unwrap_err();
        assert!(
            matches!(err, Error::HandshakeTimeout { timeout } if timeout == limit),
            "{err:?}"
        );
    }
}

/// The handshake's own limits do not leak into the connection, on success or failure.
#[test]
fn timeouts_and_message_limit_are_restored() {
    for client_key in [&b"k"[..], b"other"] {
        let (mut server, mut client) = tcp_pair();
        server
            .set_read_timeout(Some(Duration::from_secs(7)))
            .unwrap();
        server
            .set_write_timeout(Some(Duration::from_secs(8)))
            .unwrap();
        server.set_max_message_len(1000);
        let rx = spawn(move || {
            let result = server.authenticate_server(&auth(b"k"));
            (result, server)
        });
        let client_result = client.authenticate_client(&auth(client_key));
        let (server_result, server) = join(rx);
        assert_eq!(server_result.is_ok(), client_key == b"k");
        assert_eq!(client_result.is_ok(), client_key == b"k");
        assert_eq!(server.read_timeout().unwrap(), Some(Duration::from_secs(7)));
        assert_eq!(
            server.write_timeout().unwrap(),
            Some(Duration::from_secs(8))
        );
        assert_eq!(server.max_message_len(), 1000);
        assert_eq!(client.read_timeout().unwrap(), Some(GUARD));
        assert_eq!(client.write_timeout().unwrap(), None);
        assert_eq!(client.max_message_len(), msgsock::DEFAULT_MAX_MESSAGE_LEN);
    }
}

/// A failed handshake is per connection: the server goes on to serve the next client.
#[test]
fn server_keeps_accepting_after_a_failed_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let listener = Family::Unix.bind(dir.path());
    let endpoint = listener.local_endpoint().unwrap();
    let rx = spawn(move || {
        let server_auth = auth(b"right key");
        let mut outcomes = Vec::new();
        for conn in listener.incoming().take(2) {
            let mut conn = conn.unwrap();
            match conn.authenticate_server(&server_auth) {
                Ok(()) => {
                    conn.send(b"welcome").unwrap();
                    outcomes.push(Ok(()));
                }
                Err(e) => outcomes.push(Err(e)),
            }
        }
        outcomes
    });
    let wrong = msgsock::connect_authenticated(&endpoint, &auth(b"wrong key"));
    assert_eq!(reason(wrong.map(drop)), AuthFailure::Rejected);
    let mut conn = msgsock::connect_authenticated(&endpoint, &auth(b"right key")).unwrap();
    assert_eq!(conn.recv().unwrap().as_deref(), Some(&b"welcome"[..]));
    let outcomes = join(rx);
    assert_eq!(outcomes.len(), 2);
    assert!(matches!(
        outcomes[0],
        Err(Error::AuthenticationFailed {
            reason: AuthFailure::WrongDigest
        })
    ));
    assert!(outcomes[1].is_ok());
}

/// An authentication failure converts to `PermissionDenied` for `io::Result` code.
#[test]
fn authentication_failure_is_permission_denied() {
    let err = Error::AuthenticationFailed {
        reason: AuthFailure::WrongDigest,
    };
    assert_eq!(
        err.to_string(),
        "authentication failed: the peer's response does not match the key"
    );
    assert!(!err.is_timeout());
    let io = std::io::Error::from(err);
    assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
}
