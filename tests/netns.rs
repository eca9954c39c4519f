//! Beyond one machine: TCP and UDP between two network namespaces joined by a veth pair.
//!
//! The test creates namespaces `msgsock-PID-srv` and `msgsock-PID-cli`, links them with a veth
//! pair of MTU 1500 addressed from 198.18.0.0/15 (RFC 2544's benchmarking range, so no real
//! network is ever named), and re-runs this test binary in each: a server in one, a client in the
//! other. They exchange messages both ways over TCP (up to 1 MiB) and UDP (up to 65,507 bytes,
//! which IP fragments at that MTU). The namespaces, and with them the veth pair, are deleted
//! however the test ends.
//!
//! It needs root and iproute2's `ip`. Without them it fails, saying what is missing, unless
//! `MSGSOCK_SKIP_NETNS=1` is set: then it prints a `SKIPPED:` line and passes. CI runs as root
//! and must not set it.

mod common;

use std::env;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::MetadataExt;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use msgsock::{AnyStream, Endpoint};

use crate::common::pattern;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SKIP_VAR: &str = "MSGSOCK_SKIP_NETNS";
const ROLE_VAR: &str = "MSGSOCK_NETNS_ROLE";
const TCP_VAR: &str = "MSGSOCK_NETNS_TCP";
const UDP_VAR: &str = "MSGSOCK_NETNS_UDP";
const SERVER_NS_VAR: &str = "MSGSOCK_NETNS_SERVER_INODE";

/// The child test this binary re-runs inside each namespace.
const CHILD_TEST: &str = "netns_child";

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const PREFIX_LEN: u8 = 30;
const SERVER_LINK: &str = "veth-srv";
const CLIENT_LINK: &str = "veth-cli";
const MTU: u32 = 1500;

/// A failure guard only: how long a child may take to say its next line or to answer.
const GUARD: Duration = Duration::from_secs(60);

/// TCP message sizes: empty, around the MTU, the largest UDP payload, and 1 MiB.
const TCP_SIZES: [usize; 7] = [0, 1, 1500, 4000, 65_507, 1 << 20, (1 << 20) + 7];
/// UDP message sizes: 1472 is the largest that fits one 1500-byte packet (less 20 for IPv4 and 8
/// for UDP); everything above travels as IP fragments, up to the 65,507-byte maximum.
const UDP_SIZES: [usize; 6] = [0, 1, 1472, 1473, 4000, 65_507];

#[test]
fn tcp_and_udp_between_two_network_namespaces() -> TestResult {
    let missing = missing_prerequisites();
    if !missing.is_empty() {
        let what = missing.join(" and ");
        if env::var(SKIP_VAR).as_deref() == Ok("1") {
            let line = format!(
                "SKIPPED: the network namespace test needs {what}; {SKIP_VAR}=1 is set, so it \
                 did not run"
            );
            println!("{line}");
            eprintln!("{line}");
            return Ok(());
        }
        panic!(
            "the network namespace test needs {what}. Run it as root with iproute2 installed \
             (CI does), or set {SKIP_VAR}=1 to skip it on a developer machine"
        );
    }

    let nets = Namespaces::create()?;
    let parent_ns = netns_inode()?;

    let mut server = Spawned::start(&nets.server, "server", &[])?;
    let server_ns = server.value("netns ")?;
    let tcp = server.value("listening on tcp:")?;
    let udp = server.value("listening on udp:")?;

    let mut client = Spawned::start(
        &nets.client,
        "client",
        &[
            (TCP_VAR, format!("tcp:{tcp}")),
            (UDP_VAR, format!("udp:{udp}")),
            (SERVER_NS_VAR, server_ns.clone()),
        ],
    )?;
    let client_ns = client.value("netns ")?;
    client.value("client done")?;
    let client_status = client.finish()?;
    let served = server.value("served ")?;
    let server_status = server.finish()?;

    assert!(client_status.success(), "client: {client_status}");
    assert!(server_status.success(), "server: {server_status}");
    let parent_ns = parent_ns.to_string();
    assert_ne!(server_ns, client_ns, "server and client share a namespace");
    assert_ne!(
        server_ns, parent_ns,
        "the server ran in the test's own namespace"
    );
    assert_ne!(
        client_ns, parent_ns,
        "the client ran in the test's own namespace"
    );
    assert_eq!(
        served,
        format!(
            "{} tcp and {} udp messages",
            TCP_SIZES.len(),
            UDP_SIZES.len()
        )
    );

    // The large datagrams really were cut into fragments and put back together, both ways.
    for ns in [&nets.server, &nets.client] {
        let stats = ip_snmp(ns)?;
        for counter in ["FragCreates", "ReasmOKs"] {
            let n = stats.iter().find(|(k, _)| k == counter).map(|(_, v)| *v);
            assert!(n.unwrap_or(0) > 0, "{ns}: {counter} is {n:?}");
        }
    }
    Ok(())
}

/// The child side, run only by the test above inside a namespace.
#[test]
#[ignore = "run by tcp_and_udp_between_two_network_namespaces inside a network namespace"]
fn netns_child() -> TestResult {
    match env::var(ROLE_VAR).as_deref() {
        Ok("server") => serve(),
        Ok("client") => talk(),
        other => panic!(
            "{CHILD_TEST} is a child of tcp_and_udp_between_two_network_namespaces; \
             {ROLE_VAR} is {other:?}"
        ),
    }
}

/// What is missing to run the test, in words.
fn missing_prerequisites() -> Vec<&'static str> {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root (to create network namespaces and a veth pair)");
    }
    let has_ip = Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_ip {
        missing.push("iproute2's `ip` command on PATH");
    }
    missing
}

/// Runs `ip ARGS`, failing with its message.
fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "ip {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Two namespaces joined by a veth pair; deleted on drop, which removes the pair too.
struct Namespaces {
    server: String,
    client: String,
    created: Vec<String>,
}

impl Namespaces {
    fn create() -> Result<Namespaces, String> {
        let pid = std::process::id();
        let mut nets = Namespaces {
            server: format!("msgsock-{pid}-srv"),
            client: format!("msgsock-{pid}-cli"),
            created: Vec::new(),
        };
        for ns in [nets.server.clone(), nets.client.clone()] {
            ip(&["netns", "add", &ns])?;
            nets.created.push(ns);
        }
        let (srv, cli) = (nets.server.as_str(), nets.client.as_str());
        let mtu = MTU.to_string();
        // Made inside the server namespace with its peer placed straight in the client's, so
        // no interface ever appears in the namespace the test runs in.
        ip(&[
            "-n",
            srv,
            "link",
            "add",
            SERVER_LINK,
            "type",
            "veth",
            "peer",
            "name",
            CLIENT_LINK,
            "netns",
            cli,
        ])?;
        for (ns, link, addr) in [(srv, SERVER_LINK, SERVER_IP), (cli, CLIENT_LINK, CLIENT_IP)] {
            ip(&["-n", ns, "link", "set", link, "mtu", &mtu])?;
            let cidr = format!("{addr}/{PREFIX_LEN}");
            ip(&["-n", ns, "addr", "add", &cidr, "dev", link])?;
            ip(&["-n", ns, "link", "set", link, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            let shown = ip(&["-n", ns, "-o", "link", "show", "dev", link])?;
            if !shown.contains(&format!(" mtu {MTU} ")) {
                return Err(format!("{ns}: {link} did not take MTU {MTU}: {shown}"));
            }
        }
        Ok(nets)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.created {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("cleanup failed: {e}");
            }
        }
    }
}

/// One line of a child's output, or its end.
enum Line {
    Text(String),
    Eof,
}

/// This test binary re-run as `role` inside namespace `ns`; killed and reaped on drop.
struct Spawned {
    role: &'static str,
    child: Child,
    lines: Receiver<Line>,
}

impl Spawned {
    fn start(ns: &str, role: &'static str, env: &[(&str, String)]) -> Result<Spawned, String> {
        let exe = env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .arg(exe)
            .args(["--exact", CHILD_TEST, "--ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(ROLE_VAR, role)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| format!("spawning {role}: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        Ok(Spawned {
            role,
            child,
            lines: forward_lines(role, stdout),
        })
    }

    /// Reads lines until one contains `marker`, and returns what follows it.
    fn value(&mut self, marker: &str) -> Result<String, String> {
        loop {
            match self.lines.recv_timeout(GUARD) {
                // libtest may print "test netns_child ... " before the child's own text.
                Ok(Line::Text(line)) => {
                    if let Some((_, rest)) = line.split_once(marker) {
                        return Ok(rest.trim().to_owned());
                    }
                }
                Ok(Line::Eof) | Err(_) => {
                    let _ = self.child.kill();
                    let status = self.child.wait().map_err(|e| e.to_string())?;
                    return Err(format!(
                        "{} ended ({status}) or went silent before saying {marker:?}",
                        self.role
                    ));
                }
            }
        }
    }

    /// Waits for the end of its output, then for its exit.
    fn finish(&mut self) -> Result<ExitStatus, String> {
        loop {
            match self.lines.recv_timeout(GUARD) {
                Ok(Line::Text(_)) => {}
                Ok(Line::Eof) => return self.child.wait().map_err(|e| e.to_string()),
                Err(_) => return Err(format!("{} did not finish", self.role)),
            }
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // `ip netns exec` execs the test binary, so this is the child itself. Killing one that
        // has exited already is harmless; waiting reaps it either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Passes a child's stdout on, line by line, and echoes it to stderr for failure reports.
fn forward_lines(role: &'static str, stdout: ChildStdout) -> Receiver<Line> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            eprintln!("[{role}] {line}");
            if tx.send(Line::Text(line)).is_err() {
                return;
            }
        }
        let _ = tx.send(Line::Eof);
    });
    rx
}

/// The `Ip:` counters of `/proc/net/snmp` inside namespace `ns`.
fn ip_snmp(ns: &str) -> Result<Vec<(String, u64)>, String> {
    let text = ip(&["netns", "exec", ns, "cat", "/proc/net/snmp"])?;
    let mut rows = text.lines().filter(|l| l.starts_with("Ip: "));
    let (Some(names), Some(values)) = (rows.next(), rows.next()) else {
        return Err(format!("{ns}: no Ip: rows in /proc/net/snmp"));
    };
    Ok(names
        .split_whitespace()
        .zip(values.split_whitespace())
        .skip(1)
        .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
        .collect())
}

/// The identity of the calling process's network namespace.
fn netns_inode() -> std::io::Result<u64> {
    Ok(std::fs::metadata("/proc/self/ns/net")?.ino())
}

/// The server's answer to a message: a transform the client can check, so an echo that never
/// reached the server could not pass.
fn reply(msg: &[u8]) -> Vec<u8> {
    msg.iter().rev().map(|b| b ^ 0xA5).collect()
}

fn say(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

/// Server role: one TCP connection (greeting, then a reply per message until the client
/// closes), then UDP datagrams until `stop`.
fn serve() -> TestResult {
    let inode = netns_inode()?;
    say(&format!("netns {inode}"))?;
    let tcp = msgsock::bind(&Endpoint::Tcp((SERVER_IP, 0).into()))?;
    let udp = msgsock::bind_datagram(&Endpoint::Udp((SERVER_IP, 0).into()))?;
    // The parent parses "listening on tcp:ADDR" and "listening on udp:ADDR".
    say(&format!("listening on {}", tcp.local_endpoint()?))?;
    say(&format!("listening on {}", udp.local_endpoint()?))?;

    let mut conn = tcp.accept()?;
    conn.set_read_timeout(Some(GUARD))?;
    conn.set_write_timeout(Some(GUARD))?;
    conn.send(format!("hello from netns {inode}").as_bytes())?;
    let mut tcp_count = 0;
    while let Some(msg) = conn.recv()? {
        conn.send(&reply(&msg))?;
        tcp_count += 1;
    }

    udp.set_read_timeout(Some(GUARD))?;
    let mut buf = Vec::new();
    let mut udp_count = 0;
    loop {
        let (_, from) = udp.recv_from(&mut buf)?;
        if buf == b"stop" {
            break;
        }
        udp.send_to(&reply(&buf), &from.expect("a UDP sender has an address"))?;
        udp_count += 1;
    }
    say(&format!(
        "served {tcp_count} tcp and {udp_count} udp messages"
    ))?;
    Ok(())
}

/// Client role: checks it is elsewhere, then talks TCP and UDP to the server.
fn talk() -> TestResult {
    say(&format!("netns {}", netns_inode()?))?;
    // The server's address is not one of this namespace's, so every byte crosses the veth.
    match std::net::UdpSocket::bind((SERVER_IP, 0)) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {}
        other => panic!("the server's address is local to the client: {other:?}"),
    }
    let tcp: Endpoint = env::var(TCP_VAR)?.parse()?;
    let udp: Endpoint = env::var(UDP_VAR)?.parse()?;
    let server_ns = env::var(SERVER_NS_VAR)?;

    let mut conn = msgsock::connect(&tcp)?;
    conn.set_read_timeout(Some(GUARD))?;
    conn.set_write_timeout(Some(GUARD))?;
    let local = match conn.as_stream().map(|c| c.get_ref()) {
        Some(AnyStream::Tcp(s)) => s.get_ref().local_addr()?,
        other => panic!("tcp endpoint gave {other:?}"),
    };
    assert_eq!(local.ip(), IpAddr::V4(CLIENT_IP), "left through the veth");
    let greeting = conn.recv()?.expect("a greeting");
    assert_eq!(greeting, format!("hello from netns {server_ns}").as_bytes());
    for (i, &len) in TCP_SIZES.iter().enumerate() {
        let msg = pattern(len, i as u8);
        conn.send(&msg)?;
        let got = conn.recv()?.expect("a reply");
        assert!(got == reply(&msg), "tcp reply {i} of {len} bytes");
    }
    drop(conn);

    // One datagram in flight at a time: the veth drops none, so a loss fails the test.
    let mut dgram = msgsock::connect(&udp)?;
    dgram.set_read_timeout(Some(GUARD))?;
    let local = dgram
        .as_datagram()
        .expect("a datagram socket")
        .local_endpoint()?;
    assert!(
        matches!(local, Endpoint::Udp(a) if a.ip() == IpAddr::V4(CLIENT_IP)),
        "udp left through {local}, not the veth"
    );
    for (i, &len) in UDP_SIZES.iter().enumerate() {
        let msg = pattern(len, i as u8);
        dgram.send(&msg)?;
        let got = dgram.recv()?.expect("a datagram");
        assert!(got == reply(&msg), "udp reply {i} of {len} bytes");
    }
    dgram.send(b"stop")?;
    say("client done")?;
    Ok(())
}
