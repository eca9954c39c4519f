//! The cross-transport suite: every behaviour of a message connection, written once as generic
//! functions in [`suite`] and instantiated per transport by [`conformance!`], so each failure
//! names its transport (`unix::round_trip_sizes`, `tcp::round_trip_sizes`, ...).
//!
//! To add a transport, implement [`Fixture`] (and `common::RawConnect`) for it and add it to the
//! `conformance!` line at the bottom.

mod common;

use std::net::{Ipv6Addr, SocketAddr};
use std::path::Path;

use msgsock::{Endpoint, TcpTransport, UnixTransport};

use crate::common::RawConnect;

/// What the suite needs from a transport beyond [`msgsock::Transport`].
pub trait Fixture: RawConnect {
    /// An endpoint string that binds a fresh endpoint of this transport; `dir` is a private
    /// temporary directory for transports that live in the filesystem.
    fn bind_string(dir: &Path) -> String;
}

impl Fixture for UnixTransport {
    fn bind_string(dir: &Path) -> String {
        format!("unix:{}", dir.join("runtime.sock").display())
    }
}

impl Fixture for TcpTransport {
    fn bind_string(_dir: &Path) -> String {
        "tcp:127.0.0.1:0".into()
    }
}

/// Asserts two byte strings are equal, reporting lengths and the first difference instead of
/// printing megabytes.
#[track_caller]
fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, want {}; first difference at {at:?}",
            got.len(),
            want.len()
        );
    }
}

pub mod suite {
    use std::io::Write;
    use std::sync::{Arc, Barrier};
    use std::thread;
    use std::time::Duration;

    use msgsock::{Connection, Endpoint, Error, Transport};

    use super::{assert_bytes, Fixture};
    use crate::common::{
        self, assert_send, assert_sync, connected_pair, frame, pattern, EchoServer, GUARD_TIMEOUT,
    };

    /// Sizes around the interesting boundaries: empty, one byte, a page and one short of it, the
    /// old 64 KiB socket buffer, and past a mebibyte.
    const SIZES: [usize; 6] = [0, 1, 4095, 4096, 65536, (1 << 20) + 1];

    pub fn types_are_send_and_sync<T: Transport>() {
        assert_send::<Connection<T::Stream>>();
        assert_send::<T::Listener>();
        assert_sync::<T::Listener>();
        assert_send::<T::Addr>();
        assert_send::<Error>();
        assert_sync::<Error>();
        assert_send::<Endpoint>();
        assert_sync::<Endpoint>();
    }

    pub fn round_trip_sizes<T: Transport>() {
        round_trip_sizes_with(&EchoServer::<T>::start());
    }

    /// Each size through an echo server and back, byte for byte.
    pub fn round_trip_sizes_with<T: Transport>(server: &EchoServer<T>) {
        let mut client = server.connect();
        for (i, len) in SIZES.into_iter().enumerate() {
            let msg = pattern(len, i as u8 + 1);
            client.send(&msg).unwrap();
            let echo = client.recv().unwrap().expect("an echo, not a close");
            assert_bytes(&echo, &msg, &format!("echo of {len} bytes"));
        }
    }

    pub fn many_messages_in_order<T: Transport>() {
        const COUNT: usize = 2000;
        let (mut client, mut server) = connected_pair::<T>();
        let sender = thread::spawn(move || {
            for i in 0..COUNT {
                client.send(&message(i)).unwrap();
            }
        });
        for i in 0..COUNT {
            let got = server.recv().unwrap().expect("a message, not a close");
            assert_bytes(&got, &message(i), &format!("message {i}"));
        }
        sender.join().unwrap();
        assert_eq!(server.recv().unwrap(), None, "clean close after the last");
    }

    /// Message `i` of a sequence: its number, then a pattern of a length that varies with it.
    fn message(i: usize) -> Vec<u8> {
        let mut msg = format!("message {i}:").into_bytes();
        msg.extend(pattern(i % 97, i as u8));
        msg
    }

    /// Frames written 1 to 7 bytes at a time by a foreign peer; after each write the receiver
    /// takes whatever has arrived without blocking, so a `recv` stops at nearly every split point
    /// (every one on Unix sockets) and must resume where it stopped.
    pub fn frames_split_across_tiny_writes<T: Fixture>() {
        let listener = T::bind_ephemeral().unwrap();
        let mut raw = T::raw_connect(&T::local_addr(&listener).unwrap());
        let mut server = T::accept(&listener).unwrap();
        // 9000 bytes is longer than the receive buffer, so the payload is read straight into the
        // caller's buffer across the splits as well.
        let msgs: Vec<Vec<u8>> = [0, 1, 5, 300, 0, 9000, 2]
            .into_iter()
            .enumerate()
            .map(|(i, len)| pattern(len, i as u8 + 7))
            .collect();
        let bytes: Vec<u8> = msgs.iter().flat_map(|m| frame(m)).collect();

        server.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        let mut pos = 0;
        let mut step = 1;
        while pos < bytes.len() {
            let end = (pos + step).min(bytes.len());
            raw.write_all(&bytes[pos..end]).unwrap();
            pos = end;
            step = step % 7 + 1;
            loop {
                match server.recv() {
                    Ok(Some(m)) => got.push(m),
                    Ok(None) => panic!("clean close reported while the peer is connected"),
                    Err(e) if e.is_timeout() => break,
                    Err(e) => panic!("recv after {pos} bytes: {e:?}"),
                }
            }
        }
        T::raw_shutdown_write(&raw);
        server.set_nonblocking(false).unwrap();
        common::guard_timeouts(&server);
        while let Some(m) = server.recv().unwrap() {
            got.push(m);
        }
        assert_eq!(got.len(), msgs.len(), "message count");
        for (i, (g, w)) in got.iter().zip(&msgs).enumerate() {
            assert_bytes(g, w, &format!("message {i}"));
        }
    }

    /// Many frames in a single write come out one by one, in order.
    pub fn many_frames_in_one_write<T: Fixture>() {
        let listener = T::bind_ephemeral().unwrap();
        let mut raw = T::raw_connect(&T::local_addr(&listener).unwrap());
        let mut server = T::accept(&listener).unwrap();
        common::guard_timeouts(&server);
        let msgs: Vec<Vec<u8>> = (0..200).map(message).collect();
        let bytes: Vec<u8> = msgs.iter().flat_map(|m| frame(m)).collect();
        raw.write_all(&bytes).unwrap();
        T::raw_shutdown_write(&raw);
        for (i, want) in msgs.iter().enumerate() {
            let got = server.recv().unwrap().expect("a message, not a close");
            assert_bytes(&got, want, &format!("message {i}"));
        }
        assert_eq!(server.recv().unwrap(), None);
    }

    /// A close between frames is `Ok(None)`, every time it is asked.
    pub fn clean_close_is_none<T: Transport>() {
        let (mut client, mut server) = connected_pair::<T>();
        client.send(b"one").unwrap();
        client.send(b"").unwrap();
        client.send(b"three").unwrap();
        drop(client);
        assert_eq!(server.recv().unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(server.recv().unwrap().as_deref(), Some(&b""[..]));
        assert_eq!(server.recv().unwrap().as_deref(), Some(&b"three"[..]));
        assert_eq!(server.recv().unwrap(), None);
        assert_eq!(server.recv().unwrap(), None, "still closed");
    }

    /// A close in the middle of a frame (in the prefix, the long prefix, a short or a long
    /// payload) is `UnexpectedEof` with the bytes read and expected; the connection is then
    /// `Broken`. A complete message before it is still delivered.
    pub fn close_mid_frame_is_unexpected_eof<T: Fixture>() {
        let listener = T::bind_ephemeral().unwrap();
        let addr = T::local_addr(&listener).unwrap();
        let long_frame = frame(&pattern(100_000, 3));
        let cases: [(&str, Vec<u8>, u64, u64); 4] = [
            ("mid prefix", vec![0, 0], 2, 4),
            (
                "mid long prefix",
                vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0],
                7,
                12,
            ),
            ("mid payload", frame(b"0123456789")[..7].to_vec(), 7, 14),
            (
                "mid long payload",
                long_frame[..50_004].to_vec(),
                50_004,
                100_004,
            ),
        ];
        for (what, partial, read, expected) in cases {
            let mut raw = T::raw_connect(&addr);
            let mut server = T::accept(&listener).unwrap();
            common::guard_timeouts(&server);
            raw.write_all(&frame(b"complete")).unwrap();
            raw.write_all(&partial).unwrap();
            drop(raw);
            assert_eq!(
                server.recv().unwrap().as_deref(),
                Some(&b"complete"[..]),
                "{what}"
            );
            match server.recv() {
                Err(Error::UnexpectedEof {
                    read: r,
                    expected: e,
                }) => {
                    assert_eq!((r, e), (read, expected), "{what}")
                }
                other => panic!("{what}: want UnexpectedEof, got {other:?}"),
            }
            assert!(
                matches!(server.recv(), Err(Error::Broken)),
                "{what}: broken after"
            );
        }
    }

    /// A prefix above the limit is `FrameTooLarge` naming both numbers, the peer is cut off, and
    /// the server goes on serving other connections.
    pub fn oversized_prefix_is_refused<T: Fixture>() {
        const MAX: u64 = 100;
        let server = EchoServer::<T>::with_max_message_len(MAX);
        let mut raw = T::raw_connect(server.addr());
        raw.write_all(&msgsock::frame::Header::new(1000)).unwrap();
        match server.next_error() {
            Error::FrameTooLarge { len, max } => assert_eq!((len, max), (1000, MAX)),
            other => panic!("want FrameTooLarge, got {other:?}"),
        }
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut raw, &mut rest).expect("the server shut the socket");
        assert!(rest.is_empty(), "no reply to a refused frame");

        // The limit is inclusive, and other connections are still served.
        let mut client = server.connect();
        let msg = pattern(MAX as usize, 9);
        client.send(&msg).unwrap();
        assert_bytes(&client.recv().unwrap().unwrap(), &msg, "echo at the limit");

        // The same refusal seen directly on a connection, followed by Broken.
        let (mut client, server) = connected_pair::<T>();
        let mut server = server.with_max_message_len(MAX);
        assert_eq!(server.max_message_len(), MAX);
        client.send(&pattern(MAX as usize + 1, 1)).unwrap();
        match server.recv() {
            Err(Error::FrameTooLarge { len, max }) => assert_eq!((len, max), (MAX + 1, MAX)),
            other => panic!("want FrameTooLarge, got {other:?}"),
        }
        assert!(matches!(server.recv(), Err(Error::Broken)));
    }

    /// A 4-byte prefix with the top bit set is `MalformedHeader`; the peer is cut off.
    pub fn malformed_prefix_is_refused<T: Fixture>() {
        let listener = T::bind_ephemeral().unwrap();
        let mut raw = T::raw_connect(&T::local_addr(&listener).unwrap());
        let mut server = T::accept(&listener).unwrap();
        common::guard_timeouts(&server);
        raw.write_all(&0x8000_0000u32.to_be_bytes()).unwrap();
        match server.recv() {
            Err(Error::MalformedHeader { header }) => assert_eq!(header, 0x8000_0000),
            other => panic!("want MalformedHeader, got {other:?}"),
        }
        assert!(matches!(server.recv(), Err(Error::Broken)));
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut raw, &mut rest).expect("the server shut the socket");
        assert!(rest.is_empty());
    }

    /// Eight clients at once, each getting back exactly its own messages.
    pub fn concurrent_clients<T: Transport>() {
        const CLIENTS: usize = 8;
        const MESSAGES: usize = 200;
        let server = EchoServer::<T>::start();
        let barrier = Arc::new(Barrier::new(CLIENTS));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let mut conn = server.connect();
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    barrier.wait();
                    for i in 0..MESSAGES {
                        let mut msg = format!("client {c} message {i}").into_bytes();
                        msg.extend(pattern(i * 37 % 5000, c as u8));
                        conn.send(&msg).unwrap();
                        let echo = conn.recv().unwrap().expect("an echo");
                        assert_bytes(&echo, &msg, &format!("client {c} message {i}"));
                    }
                })
            })
            .collect();
        for client in clients {
            client.join().expect("client thread");
        }
    }

    /// One thread sends 10k messages on a `try_clone`d handle while another receives 10k echoes.
    pub fn full_duplex_with_try_clone<T: Transport>() {
        const COUNT: usize = 10_000;
        let server = EchoServer::<T>::start();
        let mut receiver = server.connect();
        let mut sender = receiver.try_clone().unwrap();
        assert_eq!(sender.max_message_len(), receiver.max_message_len());
        let sending = thread::spawn(move || {
            for i in 0..COUNT {
                sender.send(&message(i)).unwrap();
            }
        });
        for i in 0..COUNT {
            let echo = receiver.recv().unwrap().expect("an echo");
            assert_bytes(&echo, &message(i), &format!("echo {i}"));
        }
        sending.join().expect("sender thread");
    }

    /// `recv_into` replaces the buffer's contents and, once the buffer is large enough, keeps
    /// using the same allocation.
    pub fn recv_into_reuses_the_buffer<T: Transport>() {
        let sizes = [10, 100_000, 5, 50_000, 0, 100_000, 1];
        let (mut client, mut server) = connected_pair::<T>();
        let sender = thread::spawn(move || {
            for (i, len) in sizes.into_iter().enumerate() {
                client.send(&pattern(len, i as u8)).unwrap();
            }
        });
        let mut buf = b"old contents".to_vec();
        let mut alloc = None;
        for (i, len) in sizes.into_iter().enumerate() {
            assert_eq!(
                server.recv_into(&mut buf).unwrap(),
                Some(len),
                "message {i}"
            );
            assert_bytes(&buf, &pattern(len, i as u8), &format!("message {i}"));
            match alloc {
                None if len == 100_000 => alloc = Some((buf.as_ptr(), buf.capacity())),
                None => {}
                Some(a) => assert_eq!(
                    (buf.as_ptr(), buf.capacity()),
                    a,
                    "message {i} reallocated the buffer"
                ),
            }
        }
        sender.join().unwrap();
        assert_eq!(server.recv_into(&mut buf).unwrap(), None);
    }

    /// A read timeout is an error with `is_timeout()`, between frames or in the middle of one,
    /// and the next `recv` still gets the whole message.
    pub fn read_timeout_loses_nothing<T: Transport>() {
        let short = Some(Duration::from_millis(100));
        let (client, mut server) = connected_pair::<T>();
        let mut raw = client.into_inner();

        server.set_read_timeout(short).unwrap();
        // The kernel rounds the timeout up to its clock tick.
        let set = server.read_timeout().unwrap();
        assert!(set >= short, "read_timeout {set:?}");
        let err = server.recv().expect_err("nothing was sent");
        assert!(err.is_timeout(), "between frames: {err:?}");
        raw.write_all(&frame(b"late")).unwrap();
        server.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
        assert_eq!(server.recv().unwrap().as_deref(), Some(&b"late"[..]));

        // Half a prefix, then half a payload, each followed by a timeout.
        let msg = pattern(20_000, 5);
        let bytes = frame(&msg);
        server.set_read_timeout(short).unwrap();
        raw.write_all(&bytes[..2]).unwrap();
        let err = server.recv().expect_err("half a prefix");
        assert!(err.is_timeout(), "mid prefix: {err:?}");
        raw.write_all(&bytes[2..10_000]).unwrap();
        let err = server.recv().expect_err("half a payload");
        assert!(err.is_timeout(), "mid payload: {err:?}");
        raw.write_all(&bytes[10_000..]).unwrap();
        server.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
        assert_bytes(&server.recv().unwrap().unwrap(), &msg, "resumed message");
    }

    /// The runtime form: bind an endpoint string with `msgsock::bind`, read back the real
    /// endpoint, connect with `msgsock::connect`, and talk both ways; also reach a server of the
    /// concrete transport through its endpoint.
    pub fn runtime_form_via_endpoints<T: Fixture>() {
        let dir = common::tempdir();
        runtime_form_on::<T>(&T::bind_string(dir.path()));

        let server = EchoServer::<T>::start();
        let mut client = msgsock::connect(&server.endpoint()).unwrap();
        common::guard_timeouts(&client);
        client.send(b"via AnyStream").unwrap();
        assert_eq!(
            client.recv().unwrap().as_deref(),
            Some(&b"via AnyStream"[..])
        );
    }

    /// Binds `spec`, checks the reported endpoint, and exchanges messages both ways.
    pub fn runtime_form_on<T: Transport>(spec: &str) {
        let requested: Endpoint = spec.parse().unwrap();
        let listener = msgsock::bind(&requested).unwrap();
        let local = listener.local_endpoint().unwrap();
        assert_eq!(local.scheme(), requested.scheme());
        assert_eq!(local.to_string().parse::<Endpoint>().unwrap(), local);
        if let Some(path) = requested.as_unix_path() {
            assert_eq!(local.as_unix_path(), Some(path));
        }
        if let Some(addr) = requested.as_inet() {
            let bound = local.as_inet().unwrap();
            assert_eq!(bound.ip(), addr.ip());
            assert_ne!(bound.port(), 0, "the real port, not 0");
        }

        let mut client = msgsock::connect(&local).unwrap();
        let mut server = listener.accept().unwrap();
        common::guard_timeouts(&client);
        common::guard_timeouts(&server);
        client.send("hello, 世界".as_bytes()).unwrap();
        assert_eq!(
            server.recv().unwrap().as_deref(),
            Some("hello, 世界".as_bytes())
        );
        let big = pattern(300_000, 4);
        let sending = thread::spawn(move || {
            server.send(&big).unwrap();
            server
        });
        assert_bytes(
            &client.recv().unwrap().unwrap(),
            &pattern(300_000, 4),
            "reply",
        );
        let server = sending.join().unwrap();
        drop(client);
        let mut server = server;
        assert_eq!(server.recv().unwrap(), None);
    }
}

/// Instantiates every function of [`suite`] as a test in one module per transport.
macro_rules! conformance {
    ($($m:ident => $t:ty),+ $(,)?) => {
        $(mod $m {
            #[test] fn types_are_send_and_sync() { crate::suite::types_are_send_and_sync::<$t>() }
            #[test] fn round_trip_sizes() { crate::suite::round_trip_sizes::<$t>() }
            #[test] fn many_messages_in_order() { crate::suite::many_messages_in_order::<$t>() }
            #[test] fn frames_split_across_tiny_writes() { crate::suite::frames_split_across_tiny_writes::<$t>() }
            #[test] fn many_frames_in_one_write() { crate::suite::many_frames_in_one_write::<$t>() }
            #[test] fn clean_close_is_none() { crate::suite::clean_close_is_none::<$t>() }
            #[test] fn close_mid_frame_is_unexpected_eof() { crate::suite::close_mid_frame_is_unexpected_eof::<$t>() }
            #[test] fn oversized_prefix_is_refused() { crate::suite::oversized_prefix_is_refused::<$t>() }
            #[test] fn malformed_prefix_is_refused() { crate::suite::malformed_prefix_is_refused::<$t>() }
            #[test] fn concurrent_clients() { crate::suite::concurrent_clients::<$t>() }
            #[test] fn full_duplex_with_try_clone() { crate::suite::full_duplex_with_try_clone::<$t>() }
            #[test] fn recv_into_reuses_the_buffer() { crate::suite::recv_into_reuses_the_buffer::<$t>() }
            #[test] fn read_timeout_loses_nothing() { crate::suite::read_timeout_loses_nothing::<$t>() }
            #[test] fn runtime_form_via_endpoints() { crate::suite::runtime_form_via_endpoints::<$t>() }
        })+
    };
}

conformance!(unix => msgsock::UnixTransport, tcp => msgsock::TcpTransport);

/// TCP over the IPv6 loopback, where the machine has one.
mod tcp_ipv6 {
    use msgsock::{Bind, TcpTransport};

    use super::*;
    use crate::common::EchoServer;

    /// `[::1]:0`, or `None` (said loudly) if this machine has no IPv6 loopback.
    fn ipv6_loopback() -> Option<SocketAddr> {
        let addr = SocketAddr::from((Ipv6Addr::LOCALHOST, 0));
        match std::net::TcpListener::bind(addr) {
            Ok(_) => Some(addr),
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
                eprintln!(
                    "\n!!!!!!!!\n!!! NO IPv6 LOOPBACK: cannot bind [::1]:0 ({e}); \
                     the IPv6 TCP test did not run\n!!!!!!!!\n"
                );
                None
            }
            Err(e) => panic!("binding [::1]:0 failed unexpectedly: {e}"),
        }
    }

    #[test]
    fn round_trip_and_runtime_form() {
        let Some(addr) = ipv6_loopback() else {
            return;
        };
        let listener = TcpTransport::bind(&addr).unwrap();
        let server = EchoServer::<TcpTransport>::on(listener, msgsock::DEFAULT_MAX_MESSAGE_LEN);
        assert_eq!(server.endpoint().to_string().get(..9), Some("tcp:[::1]"));
        crate::suite::round_trip_sizes_with(&server);
        crate::suite::runtime_form_on::<TcpTransport>("tcp:[::1]:0");
        let parsed: Endpoint = "tcp:[::1]:0".parse().unwrap();
        assert_eq!(parsed.as_inet(), Some(addr));
    }
}

/// A transport as message code sees it: a server that echoes and a client that is a
/// [`msgsock::Channel`]. Implemented for stream and datagram transports alike, so [`messages`]
/// runs the behaviour all four share.
pub trait Kind {
    /// What a client holds.
    type Client: msgsock::Channel + Send + 'static;
    /// Keeps an echo server alive while held.
    type Server;
    /// The largest message the transport carries in one piece.
    const MAX: usize;
    fn start() -> Self::Server;
    fn connect(server: &Self::Server) -> Self::Client;
}

/// A stream transport as a [`Kind`].
pub struct StreamKind<T>(std::marker::PhantomData<T>);

impl<T: msgsock::Transport> Kind for StreamKind<T> {
    type Client = msgsock::Connection<T::Stream>;
    type Server = common::EchoServer<T>;
    const MAX: usize = (1 << 20) + 1;
    fn start() -> Self::Server {
        common::EchoServer::<T>::start()
    }
    fn connect(server: &Self::Server) -> Self::Client {
        server.connect()
    }
}

/// A datagram transport as a [`Kind`]: a thread echoes each datagram to its sender.
pub struct DatagramKind<T>(std::marker::PhantomData<T>);

/// A datagram echo thread, stopped (by a datagram of its own) when dropped.
pub struct DatagramEcho<T: msgsock::DatagramTransport> {
    addr: T::Addr,
    thread: Option<std::thread::JoinHandle<()>>,
}

const STOP: &[u8] = b"\xffstop";

impl<T: msgsock::DatagramTransport> Drop for DatagramEcho<T> {
    fn drop(&mut self) {
        use msgsock::Channel;
        if let Ok(mut c) = T::connect(&self.addr) {
            let _ = c.send(STOP);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl<T: msgsock::DatagramTransport> Kind for DatagramKind<T> {
    type Client = T::Socket;
    type Server = DatagramEcho<T>;
    // The smaller of UDP/IPv4's 65,507 and Unix datagrams' default limit.
    const MAX: usize = msgsock::UDP_V4_MAX_MESSAGE_LEN;
    fn start() -> Self::Server {
        let socket = T::bind_ephemeral().unwrap();
        let addr = T::local_addr(&socket).unwrap();
        let thread = std::thread::spawn(move || {
            let mut buf = Vec::new();
            loop {
                let (_, from) = T::recv_from(&socket, &mut buf).expect("echo recv_from");
                if buf == STOP {
                    return;
                }
                T::send_to(&socket, &buf, &from.expect("sender address")).expect("echo send_to");
            }
        });
        DatagramEcho {
            addr,
            thread: Some(thread),
        }
    }
    fn connect(server: &Self::Server) -> Self::Client {
        let c = T::connect(&server.addr).unwrap();
        common::guard_timeouts(&c);
        c
    }
}

/// Unix SEQPACKET as a [`Kind`]: its listener accepts sockets that are channels as they are, so
/// it has no `Transport` impl; a thread per connection echoes each packet back.
pub struct PacketKind;

/// A SEQPACKET echo server, stopped with its [`msgsock::ShutdownHandle`] when dropped.
pub struct PacketEcho {
    path: std::path::PathBuf,
    stop: msgsock::ShutdownHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for PacketEcho {
    fn drop(&mut self) {
        self.stop.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Kind for PacketKind {
    type Client = msgsock::UnixSeqpacket;
    type Server = PacketEcho;
    // As for datagrams: well within a packet's limit of `SO_SNDBUF` (212,992 by default) less 32.
    const MAX: usize = msgsock::UDP_V4_MAX_MESSAGE_LEN;
    fn start() -> Self::Server {
        let listener = msgsock::UnixSeqpacketListener::bind_temp().unwrap();
        let path = listener.path().to_owned();
        let stop = listener.shutdown_handle().unwrap();
        let thread = std::thread::spawn(move || {
            for socket in &listener {
                let socket = socket.expect("accept");
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    while socket.recv_into(&mut buf).expect("echo recv").is_some() {
                        socket.send(&buf).expect("echo send");
                    }
                });
            }
        });
        PacketEcho {
            path,
            stop,
            thread: Some(thread),
        }
    }
    fn connect(server: &Self::Server) -> Self::Client {
        let c = msgsock::UnixSeqpacket::connect(&server.path).unwrap();
        common::guard_timeouts(&c);
        c
    }
}

/// The behaviour every transport shares, written once against [`msgsock::Channel`].
pub mod messages {
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    use msgsock::Channel;

    use super::{assert_bytes, Kind};
    use crate::common::{guard_timeouts, pattern};

    pub fn round_trip_sizes<K: Kind>() {
        let server = K::start();
        let mut c = K::connect(&server);
        guard_timeouts(&c);
        for len in [0, 1, 4095, 4096, K::MAX] {
            let msg = pattern(len, 7);
            c.send(&msg).unwrap();
            assert_bytes(
                &c.recv().unwrap().expect("a reply"),
                &msg,
                &format!("len {len}"),
            );
        }
    }

    /// Request and reply, so that no datagram transport's queue can overflow.
    pub fn many_messages_in_order<K: Kind>() {
        let server = K::start();
        let mut c = K::connect(&server);
        guard_timeouts(&c);
        let mut buf = Vec::new();
        for i in 0..1000u32 {
            let msg = [&i.to_be_bytes()[..], &pattern((i % 300) as usize, i as u8)].concat();
            c.send(&msg).unwrap();
            assert_eq!(c.recv_into(&mut buf).unwrap(), Some(msg.len()));
            assert_bytes(&buf, &msg, &format!("message {i}"));
        }
    }

    pub fn concurrent_clients<K: Kind>() {
        let server = K::start();
        // Connected here, used on their own threads.
        let clients: Vec<_> = (0..8u8).map(|id| (id, K::connect(&server))).collect();
        thread::scope(|s| {
            for (id, mut c) in clients {
                s.spawn(move || {
                    guard_timeouts(&c);
                    for i in 0..100 {
                        let msg = pattern(1 + (i * 37) % 2000, id);
                        c.send(&msg).unwrap();
                        assert_bytes(&c.recv().unwrap().unwrap(), &msg, "concurrent reply");
                    }
                });
            }
        });
    }

    /// One thread sends while another receives on a clone, at most `WINDOW` messages ahead so a
    /// datagram queue never overflows.
    pub fn full_duplex_with_try_clone<K: Kind>() {
        const N: usize = 2000;
        const WINDOW: usize = 16;
        let server = K::start();
        let mut rx = K::connect(&server);
        guard_timeouts(&rx);
        let mut tx = rx.try_clone().unwrap();
        let (credit_tx, credit_rx) = mpsc::sync_channel::<()>(WINDOW);
        for _ in 0..WINDOW {
            credit_tx.send(()).unwrap();
        }
        let sender = thread::spawn(move || {
            for i in 0..N {
                credit_rx
                    .recv_timeout(Duration::from_secs(30))
                    .expect("credit");
                tx.send(&(i as u64).to_be_bytes()).unwrap();
            }
        });
        for i in 0..N {
            let got = rx.recv().unwrap().unwrap();
            assert_eq!(got, (i as u64).to_be_bytes(), "message {i}");
            let _ = credit_tx.send(());
        }
        sender.join().unwrap();
    }

    pub fn recv_into_reuses_the_buffer<K: Kind>() {
        let server = K::start();
        let mut c = K::connect(&server);
        guard_timeouts(&c);
        // The first, largest receive sizes the buffer (a datagram socket makes room for its whole
        // receive limit); after that it is reused as it is.
        let mut buf = Vec::new();
        c.send(&pattern(K::MAX, 0)).unwrap();
        c.recv_into(&mut buf).unwrap();
        let ptr = buf.as_ptr();
        for len in [K::MAX, 3, 1000, 0, K::MAX - 1] {
            let msg = pattern(len, 1);
            c.send(&msg).unwrap();
            assert_eq!(c.recv_into(&mut buf).unwrap(), Some(len));
            assert_bytes(&buf, &msg, "reused buffer");
        }
        assert_eq!(buf.as_ptr(), ptr, "the buffer was reallocated");
    }

    /// A receive that times out returns a timeout error, and the connection still works.
    pub fn read_timeout_then_a_message<K: Kind>() {
        let server = K::start();
        let mut c = K::connect(&server);
        guard_timeouts(&c);
        c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let err = c.recv().unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        guard_timeouts(&c);
        c.send(b"after the timeout").unwrap();
        assert_eq!(
            c.recv().unwrap().as_deref(),
            Some(&b"after the timeout"[..])
        );
    }
}

/// Instantiates [`messages`] for every transport, stream and datagram.
macro_rules! messages {
    ($($m:ident => $k:ty),+ $(,)?) => {
        $(mod $m {
            #[test] fn round_trip_sizes() { crate::messages::round_trip_sizes::<$k>() }
            #[test] fn many_messages_in_order() { crate::messages::many_messages_in_order::<$k>() }
            #[test] fn concurrent_clients() { crate::messages::concurrent_clients::<$k>() }
            #[test] fn full_duplex_with_try_clone() { crate::messages::full_duplex_with_try_clone::<$k>() }
            #[test] fn recv_into_reuses_the_buffer() { crate::messages::recv_into_reuses_the_buffer::<$k>() }
            #[test] fn read_timeout_then_a_message() { crate::messages::read_timeout_then_a_message::<$k>() }
        })+
    };
}

mod all_transports {
    messages!(
        unix => crate::StreamKind<msgsock::UnixTransport>,
        tcp => crate::StreamKind<msgsock::TcpTransport>,
        udp => crate::DatagramKind<msgsock::UdpTransport>,
        unixgram => crate::DatagramKind<msgsock::UnixDatagramTransport>,
        unixpacket => crate::PacketKind,
    );
}

#[cfg(feature = "tokio")]
#[path = "conformance/async_kinds.rs"]
mod async_kinds;

/// The same cases against the async transports: an async echo server, and an async client
/// driven through a blocking adapter.
#[cfg(feature = "tokio")]
mod all_async_transports {
    messages!(
        unix => crate::async_kinds::AsyncKind<crate::async_kinds::Unix>,
        tcp => crate::async_kinds::AsyncKind<crate::async_kinds::Tcp>,
        udp => crate::async_kinds::AsyncKind<crate::async_kinds::Udp>,
        unixgram => crate::async_kinds::AsyncKind<crate::async_kinds::Unixgram>,
    );
}

/// What the error suite needs beyond [`Fixture`].
pub trait ErrorFixture: Fixture {
    /// An address where nothing accepts connections: a stale socket file in `dir`, or a closed
    /// port.
    fn refused(dir: &Path) -> Self::Addr;
}

impl ErrorFixture for UnixTransport {
    fn refused(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("stale.sock");
        // std leaves the socket file behind, with nobody accepting on it.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        path
    }
}

impl ErrorFixture for TcpTransport {
    fn refused(_dir: &Path) -> SocketAddr {
        let l = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).unwrap();
        l.local_addr().unwrap()
    }
}

/// One error shape per condition on every family: the same variant, carrying the endpoint the
/// caller gave, whether reached through the endpoint form or the concrete transport.
pub mod errors {
    use std::io;

    use msgsock::{Endpoint, Error};

    use super::ErrorFixture;
    use crate::common;

    #[track_caller]
    fn assert_in_use(err: Error, want: &Endpoint) {
        match &err {
            Error::AddrInUse { endpoint } => assert_eq!(endpoint, want),
            other => panic!("want AddrInUse, got {other:?}"),
        }
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains(&want.to_string()), "{err}");
        assert_eq!(io::Error::from(err).kind(), io::ErrorKind::AddrInUse);
    }

    #[track_caller]
    fn assert_refused(err: Error, want: &Endpoint) {
        match &err {
            Error::ConnectionRefused { endpoint } => assert_eq!(endpoint, want),
            other => panic!("want ConnectionRefused, got {other:?}"),
        }
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        let text = err.to_string();
        assert!(
            text.contains(&want.to_string()) && text.contains("refused"),
            "{text}"
        );
        assert_eq!(
            io::Error::from(err).kind(),
            io::ErrorKind::ConnectionRefused
        );
    }

    pub fn in_use_is_addr_in_use<T: ErrorFixture>() {
        let dir = common::tempdir();
        let listener = msgsock::bind(&T::bind_string(dir.path()).parse().unwrap()).unwrap();
        let local = listener.local_endpoint().unwrap();
        assert_in_use(msgsock::bind(&local).unwrap_err(), &local);

        let listener = T::bind_ephemeral().unwrap();
        let addr = T::local_addr(&listener).unwrap();
        assert_in_use(T::bind(&addr).unwrap_err(), &T::endpoint(&addr));
    }

    /// SEQPACKET has no `Transport` impl, so its shapes are checked through the endpoint form
    /// and its concrete types.
    pub fn unixpacket_in_use_and_refused() {
        let dir = common::tempdir();
        let path = dir.path().join("packet.sock");
        let endpoint = Endpoint::UnixSeqpacket(path.clone());
        let _listener = msgsock::bind(&endpoint).unwrap();
        assert_in_use(msgsock::bind(&endpoint).unwrap_err(), &endpoint);
        let err = msgsock::UnixSeqpacketListener::bind(&path).unwrap_err();
        assert_in_use(err, &endpoint);

        let stale = dir.path().join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        let endpoint = Endpoint::UnixSeqpacket(stale.clone());
        assert_refused(msgsock::connect(&endpoint).unwrap_err(), &endpoint);
        let err = msgsock::UnixSeqpacket::connect(&stale).unwrap_err();
        assert_refused(err, &endpoint);
    }

    pub fn refused_is_connection_refused<T: ErrorFixture>() {
        let dir = common::tempdir();
        let addr = T::refused(dir.path());
        let endpoint = T::endpoint(&addr);
        assert_refused(msgsock::connect(&endpoint).unwrap_err(), &endpoint);
        assert_refused(T::connect(&addr).unwrap_err(), &endpoint);
    }
}

/// Instantiates [`errors`] for every stream family.
macro_rules! errors {
    ($($m:ident => $t:ty),+ $(,)?) => {
        $(mod $m {
            #[test] fn in_use_is_addr_in_use() { crate::errors::in_use_is_addr_in_use::<$t>() }
            #[test] fn refused_is_connection_refused() { crate::errors::refused_is_connection_refused::<$t>() }
        })+
    };
}

mod same_error_everywhere {
    errors!(unix => msgsock::UnixTransport, tcp => msgsock::TcpTransport);

    mod unixpacket {
        #[test]
        fn in_use_and_refused() {
            crate::errors::unixpacket_in_use_and_refused()
        }
    }
}
