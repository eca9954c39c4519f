// Included by `tests/load.rs` (the blocking `echo`) and `tests/load_async.rs` (`echo_async`):
// see `tests/procs` for how each picks its binary.

use std::collections::HashMap;
use std::net::Shutdown;
use std::sync::mpsc;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use echo_process::EchoProcess;
use msgsock::{AnyConnection, Endpoint, UDP_V4_MAX_MESSAGE_LEN};
use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Concurrent clients on a stream transport.
const STREAM_CLIENTS: usize = 200;
/// Messages each stream client sends.
const STREAM_MESSAGES: u32 = 200;
/// Messages a stream client may have sent and not yet seen echoed.
const IN_FLIGHT: usize = 4;

/// Concurrent clients and messages per client on a Unix datagram socket: strict request and
/// reply. More senders than the server's receive queue holds (`net.unix.max_dgram_qlen`, 10 by
/// default) wait in the kernel, and no request is lost. A reply can be: every reply still unread
/// counts against the server's own send buffer, and `echo` waits at most 200 ms for room there
/// before it drops a reply and says so (so that a client that stops reading delays no one), which
/// a client descheduled for that long on a loaded machine causes. Such a client sends again after
/// [`UNIXGRAM_RETRY_AFTER`], long enough that a reply merely late is never the cause.
const UNIXGRAM_CLIENTS: usize = 50;
const UNIXGRAM_MESSAGES: u32 = 60;
const UNIXGRAM_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The same for UDP, where a full receive queue drops datagrams instead. The echo server's
/// default receive buffer (`net.core.rmem_default`, 208 KiB) holds about three 64 KiB datagrams,
/// so fewer clients than on unixgram keep the rate to what loopback carries; the drops that
/// still happen are retried.
const UDP_CLIENTS: usize = 16;
const UDP_MESSAGES: u32 = 250;

/// The largest message: 64 KiB, or less where one datagram cannot carry that much.
const MAX_MESSAGE: usize = 64 * 1024;

/// A failure guard only: a lost reply fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(60);
/// How long a UDP client waits for a reply before sending the request again. UDP may drop a
/// datagram when the server's receive queue is full, even on loopback.
const UDP_RETRY_AFTER: Duration = Duration::from_millis(500);
/// Resends of one UDP request before the test fails: 20 s of silence is not a dropped datagram.
const UDP_MAX_RETRIES: u32 = 40;

#[test]
fn unix_stream_clients_get_every_message_back_intact_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = EchoProcess::start(&format!("unix:{}", dir.path().join("echo.sock").display()));
    stream_load(server);
}

#[test]
fn tcp_clients_get_every_message_back_intact_and_in_order() {
    stream_load(EchoProcess::start("tcp:127.0.0.1:0"));
}

#[test]
fn unix_datagram_clients_get_every_message_back_intact() {
    let dir = tempfile::tempdir().unwrap();
    let server = EchoProcess::start(&format!(
        "unixgram:{}",
        dir.path().join("echo.sock").display()
    ));
    let (stats, stderr) = datagram_load(
        server,
        UNIXGRAM_CLIENTS,
        UNIXGRAM_MESSAGES,
        Some(UNIXGRAM_RETRY_AFTER),
    );
    // A request is never lost on a Unix socket: a resend answers a reply the server dropped,
    // which it reports.
    if stats.retries > 0 {
        assert!(
            stderr.contains("dropped"),
            "{} resends with no reply dropped by the server:\n{stderr}",
            stats.retries
        );
    }
    assert_eq!(stats.max_len, MAX_MESSAGE, "the largest size was sent");
}

#[test]
fn udp_clients_get_every_message_back_intact() {
    let (stats, _) = datagram_load(
        EchoProcess::start("udp:127.0.0.1:0"),
        UDP_CLIENTS,
        UDP_MESSAGES,
        Some(UDP_RETRY_AFTER),
    );
    assert_eq!(
        stats.max_len, UDP_V4_MAX_MESSAGE_LEN,
        "the largest size was sent"
    );
    // Dropped datagrams are allowed and retried; what the test proves is that every message
    // came back intact in the end. The counts are printed to show how often that was needed.
    println!(
        "udp: {} requests resent, {} late duplicate replies discarded",
        stats.retries, stats.duplicates
    );
}

/// What the clients of one transport did, summed.
#[derive(Default)]
struct Stats {
    messages: u64,
    bytes: u64,
    max_len: usize,
    retries: u64,
    duplicates: u64,
}

impl Stats {
    fn add(&mut self, other: Stats) {
        self.messages += other.messages;
        self.bytes += other.bytes;
        self.max_len = self.max_len.max(other.max_len);
        self.retries += other.retries;
        self.duplicates += other.duplicates;
    }

    fn count(&mut self, msg: &[u8]) {
        self.messages += 1;
        self.bytes += msg.len() as u64;
        self.max_len = self.max_len.max(msg.len());
    }
}

/// Connects all clients first, so that the server holds every connection at once, then lets them
/// send together; each client pipelines up to [`IN_FLIGHT`] messages and checks every reply.
fn stream_load(mut server: EchoProcess) {
    ensure_fd_limit();
    let endpoint = server.endpoint();
    let seed = base_seed();
    let conns: Vec<AnyConnection> = (0..STREAM_CLIENTS)
        .map(|id| {
            msgsock::connect(endpoint)
                .unwrap_or_else(|e| panic!("client {id}: cannot connect to {endpoint}: {e}"))
        })
        .collect();
    let start = Barrier::new(STREAM_CLIENTS);
    let results: Vec<Result<Stats, String>> = thread::scope(|s| {
        let start = &start;
        let clients: Vec<_> = conns
            .into_iter()
            .enumerate()
            .map(|(id, conn)| {
                s.spawn(move || {
                    start.wait();
                    stream_client(conn, id as u32, seed)
                })
            })
            .collect();
        clients
            .into_iter()
            .map(|c| c.join().expect("client thread panicked"))
            .collect()
    });
    let stats = summarize(endpoint, seed, results, &server);
    server.assert_running();
    assert_eq!(
        stats.messages,
        STREAM_CLIENTS as u64 * u64::from(STREAM_MESSAGES)
    );
    assert_eq!(stats.max_len, MAX_MESSAGE, "the largest size was sent");
}

/// Sends [`STREAM_MESSAGES`] messages while a second thread receives and checks the echoes.
fn stream_client(mut conn: AnyConnection, id: u32, seed: u64) -> Result<Stats, String> {
    let mut reader = conn.try_clone().map_err(|e| format!("try_clone: {e}"))?;
    reader
        .set_read_timeout(Some(PATIENCE))
        .and_then(|()| conn.set_write_timeout(Some(PATIENCE)))
        .map_err(|e| e.to_string())?;
    // The reader takes each sent message from this queue and waits for its echo, so a full queue
    // holds the sender back: at most IN_FLIGHT messages are unanswered.
    let (sent, expected) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT - 1);
    thread::scope(|s| {
        let receiving = s.spawn(move || {
            let received = receive_echoes(&mut reader, id, &expected);
            if received.is_err() {
                // Wakes the sender, which may be blocked on a server that is blocked on us.
                let _ = reader.as_stream().map(|c| c.shutdown(Shutdown::Both));
            }
            received
        });
        let mut rng = Rng::new(seed, id);
        let mut sending = Ok(());
        for seq in 0..STREAM_MESSAGES {
            let msg = message(id, seq, body_len(&mut rng, seq, MAX_MESSAGE), &mut rng);
            if sent.send(msg.clone()).is_err() {
                break; // The reader failed and says why.
            }
            if let Err(e) = conn.send(&msg) {
                sending = Err(format!("client {id}: send {seq}: {e}"));
                break;
            }
        }
        drop(sent);
        // All sent (or failed): the server sees a clean close after the last message and closes
        // its side once it has echoed everything, which the reader checks.
        let stream = conn.as_stream().expect("a stream connection");
        let how = if sending.is_ok() {
            Shutdown::Write
        } else {
            Shutdown::Both // Wakes the reader at once.
        };
        let _ = stream.shutdown(how);
        let received = receiving.join().expect("reader thread panicked");
        match (received, sending) {
            (Ok(stats), Ok(())) => Ok(stats),
            (Err(e), Ok(())) | (Ok(_), Err(e)) => Err(e),
            (Err(recv), Err(send)) => Err(format!("{recv} (and then {send})")),
        }
    })
}

/// Receives one echo per message in `expected`, in order, then the server's clean close.
fn receive_echoes(
    conn: &mut AnyConnection,
    id: u32,
    expected: &mpsc::Receiver<Vec<u8>>,
) -> Result<Stats, String> {
    let mut stats = Stats::default();
    let mut reply = Vec::new();
    for (seq, sent) in expected.iter().enumerate() {
        match conn.recv_into(&mut reply) {
            Ok(Some(_)) => check_reply(id, seq as u32, &sent, &reply)?,
            Ok(None) => return Err(format!("client {id}: closed before reply {seq}")),
            Err(e) => return Err(format!("client {id}: reply {seq}: {e}")),
        }
        stats.count(&reply);
    }
    match conn.recv_into(&mut reply) {
        Ok(None) => Ok(stats),
        Ok(Some(len)) => Err(format!("client {id}: an extra reply of {len} bytes")),
        Err(e) => Err(format!("client {id}: waiting for the close: {e}")),
    }
}

/// Strict request and reply from `clients` clients at once, `messages` each. With `retry`, a
/// request unanswered after that long is sent again, and late duplicate replies are checked and
/// discarded. Returns the figures and the server's stderr.
fn datagram_load(
    mut server: EchoProcess,
    clients: usize,
    messages: u32,
    retry: Option<Duration>,
) -> (Stats, String) {
    let endpoint = server.endpoint();
    let seed = base_seed();
    let start = Barrier::new(clients);
    let results: Vec<Result<Stats, String>> = thread::scope(|s| {
        let start = &start;
        let clients: Vec<_> = (0..clients as u32)
            .map(|id| {
                s.spawn(move || {
                    let conn = msgsock::connect(endpoint)
                        .map_err(|e| format!("client {id}: cannot connect to {endpoint}: {e}"));
                    start.wait();
                    datagram_client(conn?, id, seed, messages, retry)
                })
            })
            .collect();
        clients
            .into_iter()
            .map(|c| c.join().expect("client thread panicked"))
            .collect()
    });
    let stats = summarize(endpoint, seed, results, &server);
    server.assert_running();
    assert_eq!(stats.messages, clients as u64 * u64::from(messages));
    let stderr = server.stderr();
    (stats, stderr)
}

fn datagram_client(
    mut conn: AnyConnection,
    id: u32,
    seed: u64,
    messages: u32,
    retry: Option<Duration>,
) -> Result<Stats, String> {
    let limit = conn.as_datagram().expect("a datagram socket").send_limit();
    let max_len = limit.min(MAX_MESSAGE);
    let wait = retry.unwrap_or(PATIENCE);
    conn.set_read_timeout(Some(wait))
        .map_err(|e| e.to_string())?;
    let mut rng = Rng::new(seed, id);
    let mut stats = Stats::default();
    // Requests sent more than once, by sequence number, to check late duplicates against.
    let mut resent: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut reply = Vec::new();
    for seq in 0..messages {
        let msg = message(id, seq, body_len(&mut rng, seq, max_len), &mut rng);
        conn.send(&msg)
            .map_err(|e| format!("client {id}: send {seq}: {e}"))?;
        let mut retries = 0;
        loop {
            match conn.recv_into(&mut reply) {
                Ok(Some(_)) => {}
                Ok(None) => return Err(format!("client {id}: a datagram socket reported a close")),
                Err(e) if e.is_timeout() && retry.is_some() && retries < UDP_MAX_RETRIES => {
                    retries += 1;
                    stats.retries += 1;
                    resent.insert(seq, msg.clone());
                    conn.send(&msg)
                        .map_err(|e| format!("client {id}: resend {seq}: {e}"))?;
                    continue;
                }
                Err(e) => {
                    return Err(format!(
                        "client {id}: reply {seq} after {retries} resends: {e}"
                    ))
                }
            }
            match header(&reply).map(|h| h.seq) {
                Some(earlier) if earlier < seq && resent.contains_key(&earlier) => {
                    // The echo of a request that was resent after all: the same bytes again.
                    check_reply(id, earlier, &resent[&earlier], &reply)?;
                    stats.duplicates += 1;
                }
                _ => {
                    check_reply(id, seq, &msg, &reply)?;
                    stats.count(&reply);
                    break;
                }
            }
        }
    }
    Ok(stats)
}

/// Raises the soft limit on open files if it is low: two stream tests may run at once, each with
/// two descriptors per client, and the limit is often 1024.
fn ensure_fd_limit() {
    const WANT: u64 = 4096;
    const NEED: u64 = 2048;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit(RLIMIT_NOFILE)");
    if soft < WANT {
        let raised = WANT.min(hard);
        setrlimit(Resource::RLIMIT_NOFILE, raised, hard).expect("setrlimit(RLIMIT_NOFILE)");
        assert!(
            raised >= NEED,
            "this test needs {NEED} open files, and the hard limit is {hard}"
        );
    }
}

/// Sums the clients' stats, or fails with every client's error and the server's stderr.
fn summarize(
    endpoint: &Endpoint,
    seed: u64,
    results: Vec<Result<Stats, String>>,
    server: &EchoProcess,
) -> Stats {
    let mut total = Stats::default();
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(stats) => total.add(stats),
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{endpoint}, seed {seed}: {} clients failed:\n{}\nserver stderr:\n{}",
        failures.len(),
        failures.join("\n"),
        server.stderr()
    );
    println!(
        "{endpoint}: {} messages, {} bytes echoed intact",
        total.messages, total.bytes
    );
    total
}

// The message format: a header naming the client, the message's place in its sequence, the body
// length and a checksum of the body; then the body, pseudo-random bytes.
//
// +- client: u32 BE -+- seq: u32 BE -+- body len: u32 BE -+- FNV-1a 64 of body: u64 BE -+- body -+

const HEADER_LEN: usize = 20;

struct Header {
    client: u32,
    seq: u32,
    body_len: u32,
    checksum: u64,
}

fn header(msg: &[u8]) -> Option<Header> {
    let h = msg.get(..HEADER_LEN)?;
    let u32_at = |i: usize| u32::from_be_bytes(h[i..i + 4].try_into().unwrap());
    Some(Header {
        client: u32_at(0),
        seq: u32_at(4),
        body_len: u32_at(8),
        checksum: u64::from_be_bytes(h[12..20].try_into().unwrap()),
    })
}

fn message(client: u32, seq: u32, body_len: usize, rng: &mut Rng) -> Vec<u8> {
    let mut msg = Vec::with_capacity(HEADER_LEN + body_len);
    msg.extend_from_slice(&client.to_be_bytes());
    msg.extend_from_slice(&seq.to_be_bytes());
    msg.extend_from_slice(&(body_len as u32).to_be_bytes());
    msg.extend_from_slice(&[0; 8]);
    msg.resize(HEADER_LEN + body_len, 0);
    rng.fill(&mut msg[HEADER_LEN..]);
    let sum = fnv1a64(&msg[HEADER_LEN..]);
    msg[12..20].copy_from_slice(&sum.to_be_bytes());
    msg
}

/// The body length of message `seq`: the first is empty and the second the largest allowed, so
/// both ends are always covered; the rest are spread evenly over the powers of two up to the
/// limit. An even spread over the bytes would make most messages 32–64 KiB and the test slow in
/// a debug build without covering more of the code.
fn body_len(rng: &mut Rng, seq: u32, max_message: usize) -> usize {
    let max_body = max_message - HEADER_LEN;
    match seq {
        0 => 0,
        1 => max_body,
        _ => {
            let scale = 1usize << rng.below(17);
            rng.below(scale.min(max_body) as u64 + 1) as usize
        }
    }
}

/// Checks one reply: the header's claims (client, place in sequence, length, checksum) and then
/// every byte against the message sent.
fn check_reply(id: u32, seq: u32, sent: &[u8], reply: &[u8]) -> Result<(), String> {
    let what = format!("client {id}, reply {seq} ({} bytes sent)", sent.len());
    let h = header(reply).ok_or_else(|| format!("{what}: only {} bytes", reply.len()))?;
    if (h.client, h.seq) != (id, seq) {
        return Err(format!(
            "{what}: header says client {}, message {}",
            h.client, h.seq
        ));
    }
    let body = &reply[HEADER_LEN..];
    if body.len() != h.body_len as usize {
        return Err(format!(
            "{what}: body of {} bytes, header says {}",
            body.len(),
            h.body_len
        ));
    }
    if fnv1a64(body) != h.checksum {
        return Err(format!("{what}: checksum mismatch"));
    }
    if reply != sent {
        let at = reply.iter().zip(sent).position(|(a, b)| a != b);
        return Err(format!(
            "{what}: differs from what was sent, first at {at:?}"
        ));
    }
    Ok(())
}

/// FNV-1a, 64-bit, taking the bytes eight at a time (one multiply per word rather than per byte
/// keeps a debug build fast), then any tail bytes one by one.
fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let words = bytes.chunks_exact(8);
    let tail = words.remainder();
    for word in words {
        hash = (hash ^ u64::from_le_bytes(word.try_into().unwrap())).wrapping_mul(PRIME);
    }
    for &b in tail {
        hash = (hash ^ u64::from(b)).wrapping_mul(PRIME);
    }
    hash
}

/// The seed for this run: `MSGSOCK_TEST_SEED` if set, else the clock. Printed either way.
fn base_seed() -> u64 {
    let seed = match std::env::var("MSGSOCK_TEST_SEED") {
        Ok(s) => s.parse().expect("MSGSOCK_TEST_SEED must be a u64"),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_nanos() as u64,
    };
    println!("seed {seed} (set MSGSOCK_TEST_SEED={seed} to repeat)");
    seed
}

/// xorshift64*: a small, fast generator; quality beyond "not periodic" is not needed here.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, client: u32) -> Rng {
        // Never zero, and different for every client.
        Rng((seed ^ (u64::from(client) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`; the slight bias of `%` does not matter here.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn fill(&mut self, buf: &mut [u8]) {
        let mut words = buf.chunks_exact_mut(8);
        for word in &mut words {
            word.copy_from_slice(&self.next().to_le_bytes());
        }
        let tail = words.into_remainder();
        let last = self.next().to_le_bytes();
        tail.copy_from_slice(&last[..tail.len()]);
    }
}
