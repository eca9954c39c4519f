//! No heap allocation per message (`send`, `send_batch` and `recv_into` with a reused buffer), and
//! no memory kept after a large message, counted by a global allocator that only this test binary
//! uses.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::mpsc;
use std::thread;

use msgsock::{Connection, Stream, Transport, DEFAULT_SPIN};

/// Counts the allocations of the thread that asked for counting; forwards everything to
/// [`System`].
struct CountingAlloc;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    /// Bytes this thread allocated minus bytes it freed while counting.
    static NET_BYTES: Cell<i64> = const { Cell::new(0) };
    /// The most [`NET_BYTES`] reached while counting.
    static PEAK_BYTES: Cell<i64> = const { Cell::new(0) };
}

/// Notes an allocation of `grown` bytes (negative: freed), counted as one allocation if `new`.
fn note(grown: i64, new: bool) {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            ALLOCATIONS.with(|n| n.set(n.get() + u64::from(new)));
            let net = NET_BYTES.with(|n| {
                n.set(n.get() + grown);
                n.get()
            });
            PEAK_BYTES.with(|p| p.set(p.get().max(net)));
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments, so `System`'s guarantees
// hold; the counting touches only const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as i64, true);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as i64, true);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as i64 - layout.size() as i64, true);
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as i64), false);
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Runs `f` and returns how many allocations this thread made meanwhile.
fn allocations_in(f: impl FnOnce()) -> u64 {
    counting(f).0
}

/// Runs `f` and returns how many allocations this thread made meanwhile, and how many bytes of
/// what it allocated meanwhile it still holds.
fn counting(f: impl FnOnce()) -> (u64, i64) {
    ALLOCATIONS.with(|n| n.set(0));
    NET_BYTES.with(|n| n.set(0));
    PEAK_BYTES.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    (ALLOCATIONS.with(Cell::get), NET_BYTES.with(Cell::get))
}

const SIZES: [usize; 6] = [0, 1, 64, 4096, 100_000, 1 << 20];

/// A connected pair of the transport, the server end echoing every message on its own thread
/// (whose allocations are not counted).
fn echo_pair<T: Transport>() -> (Connection<T::Stream>, thread::JoinHandle<()>) {
    let listener = T::bind_ephemeral().unwrap();
    let client = T::connect(&T::local_addr(&listener).unwrap()).unwrap();
    let mut server = T::accept(&listener).unwrap();
    let echo = thread::spawn(move || {
        let mut buf = Vec::new();
        while let Some(n) = server.recv_into(&mut buf).unwrap() {
            server.send(&buf[..n]).unwrap();
        }
    });
    (client, echo)
}

fn round_trips<S: Stream>(conn: &mut Connection<S>, msgs: &[Vec<u8>], buf: &mut Vec<u8>) {
    for m in msgs {
        conn.send(m).unwrap();
        assert_eq!(conn.recv_into(buf).unwrap(), Some(m.len()));
        assert_eq!(buf[..].first(), m.first());
    }
}

fn send_and_recv_into_allocate_nothing<T: Transport>(spin: bool) {
    let (mut conn, echo) = echo_pair::<T>();
    if spin {
        conn.set_spin(Some(DEFAULT_SPIN));
    }
    let msgs: Vec<Vec<u8>> = SIZES.iter().map(|&n| vec![n as u8; n]).collect();
    let mut buf = Vec::new();
    // Warm-up: the buffer grows to the largest message once.
    round_trips(&mut conn, &msgs, &mut buf);
    let n = allocations_in(|| {
        for _ in 0..20 {
            round_trips(&mut conn, &msgs, &mut buf);
        }
    });
    assert_eq!(n, 0, "allocations in 120 round trips");
    drop(conn);
    echo.join().unwrap();
}

/// A batch of 1000 small messages each way: the server echoes each batch with `send_batch` and
/// says so, and the client receives it once all of it waits in its socket.
fn send_batch_allocates_nothing<T: Transport>() {
    const BATCHES: u64 = 10;
    let listener = T::bind_ephemeral().unwrap();
    let mut conn = T::connect(&T::local_addr(&listener).unwrap()).unwrap();
    let mut server = T::accept(&listener).unwrap();
    let (echoed_tx, echoed) = mpsc::channel();
    let echo = thread::spawn(move || {
        let mut msgs = Vec::new();
        loop {
            msgs.clear();
            for _ in 0..1000 {
                match server.recv().unwrap() {
                    Some(m) => msgs.push(m),
                    None => return,
                }
            }
            server.send_batch(&msgs).unwrap();
            echoed_tx.send(()).unwrap();
        }
    });
    let small = [7u8; 64];
    let batch = vec![&small[..]; 1000];
    let mut buf = Vec::new();
    let mut batch_round = |conn: &mut Connection<T::Stream>| {
        conn.send_batch(&batch).unwrap();
        echoed.recv().unwrap();
        wait_until_queued(conn, batch.len() * (4 + small.len()));
        for _ in 0..batch.len() {
            assert_eq!(conn.recv_into(&mut buf).unwrap(), Some(64));
        }
    };
    batch_round(&mut conn);
    let n = allocations_in(|| {
        for _ in 0..BATCHES {
            batch_round(&mut conn);
        }
    });
    // The receive buffer goes back when a read drains the socket (so that a connection waiting
    // for its peer holds none) and is taken again by the next batch's first read: one
    // allocation a batch, and perhaps the one growth step (8 KiB to 64 KiB, see `Decoder`).
    // A read that comes back short is taken for one that drained the socket, and TCP can
    // return short with more queued (a CI run under load counted 12 here), so each batch may
    // take its buffer a second time. Any per-message allocation would count in the thousands.
    assert!(
        n <= 2 * BATCHES + 1,
        "{n} allocations in {BATCHES} batches of 1000 messages"
    );
    drop(conn);
    echo.join().unwrap();
}

/// Waits until `len` bytes wait in `conn`'s receive queue (`FIONREAD`): TCP hands bytes to the
/// peer after `send` returns, and a read that found only some would drain the socket early.
#[allow(unsafe_code)]
fn wait_until_queued(conn: &impl std::os::fd::AsFd, len: usize) {
    use std::os::fd::AsRawFd;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut queued: nix::libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through the pointer, which points at one.
        let rc =
            unsafe { nix::libc::ioctl(conn.as_fd().as_raw_fd(), nix::libc::FIONREAD, &mut queued) };
        assert_eq!(rc, 0, "FIONREAD: {}", std::io::Error::last_os_error());
        if queued as usize >= len {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{queued} of {len} bytes arrived"
        );
        thread::yield_now();
    }
}

/// A connection that waits in `recv` for its peer, with no timeout, holds no receive buffer:
/// not after a burst that grew the buffer, nor for the message the wait brings.
fn a_connection_waiting_in_recv_holds_no_receive_buffer<T: Transport>() {
    let listener = T::bind_ephemeral().unwrap();
    let mut conn = T::connect(&T::local_addr(&listener).unwrap()).unwrap();
    let mut peer = T::accept(&listener).unwrap();
    let (go, wait) = mpsc::channel();
    let peer = thread::spawn(move || {
        let burst: Vec<[u8; 64]> = (0..1000).map(|i| [i as u8; 64]).collect();
        peer.send_batch(&burst).unwrap();
        wait.recv().unwrap();
        peer.send(b"after the wait").unwrap();
        peer
    });
    let mut buf = Vec::new();
    let (_, held) = counting(|| {
        for i in 0..1000 {
            assert_eq!(conn.recv_into(&mut buf).unwrap(), Some(64));
            assert_eq!(buf[0], i as u8);
        }
        drop(std::mem::take(&mut buf));
        // The burst is in: the next receive waits until the peer sends again.
        go.send(()).unwrap();
        assert_eq!(
            conn.recv().unwrap().as_deref(),
            Some(&b"after the wait"[..])
        );
    });
    assert!(
        held <= 256,
        "a connection waiting in recv holds {held} bytes"
    );
    drop((conn, peer.join().unwrap()));
}

/// Runs `large` on a connection to an echo server, then a few small round trips, and asserts that
/// afterwards the connection holds none of the memory allocated meanwhile.
fn nothing_kept_after<T: Transport>(large: impl FnOnce(&mut Connection<T::Stream>)) {
    let (mut conn, echo) = echo_pair::<T>();
    let small = [vec![5u8; 100]];
    round_trips(&mut conn, &small, &mut Vec::new());
    let (_, held) = counting(|| {
        large(&mut conn);
        for _ in 0..10 {
            conn.send(&small[0]).unwrap();
            assert_eq!(conn.recv().unwrap().as_ref(), Some(&small[0]));
        }
    });
    assert!(held <= 0, "the connection kept {held} bytes");
    drop(conn);
    echo.join().unwrap();
}

/// Large messages received with `recv` (which must keep nothing of them) and with `recv_into`
/// into a buffer that is then dropped.
fn nothing_is_kept_after_large_messages<T: Transport>() {
    nothing_kept_after::<T>(|conn| {
        for len in [1 << 20, 8 << 20, 3 << 20] {
            let big = vec![7u8; len];
            conn.send(&big).unwrap();
            assert_eq!(conn.recv().unwrap().map(|m| m.len()), Some(len));
            let mut buf = Vec::new();
            conn.send(&big).unwrap();
            assert_eq!(conn.recv_into(&mut buf).unwrap(), Some(len));
        }
    });
}

/// A large send that the socket takes only part of (non-blocking, with the peer not reading its
/// echoes yet) queues its rest in the connection, which must keep none of it once it is out.
fn a_queued_rest_is_freed_once_out<T: Transport>() {
    nothing_kept_after::<T>(|conn| {
        let big = vec![7u8; 8 << 20];
        conn.set_nonblocking(true).unwrap();
        conn.send(&big).unwrap();
        assert!(
            conn.pending_len() > 0,
            "the socket took it all: the test proves nothing"
        );
        // Flush and receive the echo in turns, since neither side can finish alone.
        let mut buf = Vec::new();
        let mut echoed = None;
        while echoed.is_none() || conn.pending_len() > 0 {
            match conn.flush() {
                Err(e) if !e.is_timeout() => panic!("flush: {e}"),
                _ => {}
            }
            match conn.recv_into(&mut buf) {
                Ok(n) => echoed = Some(n.expect("an echo")),
                Err(e) if e.is_timeout() => thread::yield_now(),
                Err(e) => panic!("recv: {e}"),
            }
        }
        assert_eq!(echoed, Some(big.len()));
        conn.set_nonblocking(false).unwrap();
    });
}

/// What an idle connection costs in memory beyond its socket: a new one, and one whose peer
/// streamed enough to grow its receive buffer and then went quiet, hold only a few hundred bytes
/// (the send state every handle shares), no receive buffer.
#[test]
fn a_quiet_connection_holds_no_receive_buffer() {
    use std::io::Write;

    let mut kept = None;
    let (_, held) = counting(|| {
        let (a, b) = msgsock::UnixStream::pair().unwrap();
        let mut conn = Connection::new(a);
        let mut raw = b.into_inner();
        let msgs = 1000;
        let mut wire = Vec::new();
        for i in 0..msgs {
            wire.extend_from_slice(&64u32.to_be_bytes());
            wire.extend_from_slice(&[i as u8; 64]);
        }
        raw.write_all(&wire).unwrap();
        drop(wire);
        let mut buf = Vec::new();
        for i in 0..msgs {
            assert_eq!(conn.recv_into(&mut buf).unwrap(), Some(64));
            assert_eq!(buf[0], i as u8);
        }
        drop(buf);
        // The receive that finds nothing to read is what tells the connection it is quiet.
        conn.set_nonblocking(true).unwrap();
        assert!(conn.recv().unwrap_err().is_timeout());
        kept = Some((conn, raw));
    });
    assert!(kept.is_some());
    assert!(held <= 256, "an idle connection holds {held} bytes");
}

/// An async connection that has never received holds no receive buffer, although tokio reports
/// an accepted socket readable at its first poll: the read that finds nothing allocates nothing.
#[cfg(feature = "tokio")]
#[test]
fn a_new_async_connection_holds_no_receive_buffer() {
    use std::task::Poll;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idle.sock");
    let (mut conn, b) = rt.block_on(async {
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let b = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let (a, _) = listener.accept().await.unwrap();
        // The premise: tokio reports an accepted socket readable before anything arrived.
        let ready = std::future::poll_fn(|cx| Poll::Ready(a.poll_read_ready(cx).is_ready())).await;
        assert!(ready, "an accepted socket is reported readable at once");
        (msgsock::tokio::AsyncConnection::new(a), b)
    });
    let mut buf = Vec::new();
    let (_, held) = counting(|| {
        rt.block_on(async {
            assert!(
                polls_pending(conn.recv_into(&mut buf)).await,
                "nothing was sent"
            );
        })
    });
    assert!(held <= 256, "an idle async connection holds {held} bytes");
    drop((conn, b));
}

/// Whether `fut`'s first poll leaves it pending.
#[cfg(feature = "tokio")]
async fn polls_pending(fut: impl std::future::Future) -> bool {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx).is_pending())).await
}

/// Async connections that each received a burst (which grew their receive buffers) and then
/// wait for more hold no receive buffer: the read that found nothing handed each buffer to the
/// thread's one spare, kept for the next read of any of them.
#[cfg(feature = "tokio")]
#[test]
fn async_connections_waiting_after_a_burst_hold_no_receive_buffer() {
    use std::io::Write;

    const CONNS: usize = 8;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let mut wire = Vec::new();
    for i in 0..1000u32 {
        wire.extend_from_slice(&64u32.to_be_bytes());
        wire.extend_from_slice(&[i as u8; 64]);
    }
    let mut pairs: Vec<_> = (0..CONNS)
        .map(|_| {
            let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            b.write_all(&wire).unwrap();
            let a = rt.block_on(async { tokio::net::UnixStream::from_std(a).unwrap() });
            (msgsock::tokio::AsyncConnection::new(a), b)
        })
        .collect();
    let mut buf = Vec::with_capacity(64);
    let (_, held) = counting(|| {
        rt.block_on(async {
            for (conn, _) in &mut pairs {
                for i in 0..1000 {
                    assert_eq!(conn.recv_into(&mut buf).await.unwrap(), Some(64));
                    assert_eq!(buf[0], i as u8);
                }
                let recv = conn.recv_into(&mut buf);
                assert!(polls_pending(recv).await, "nothing more was sent");
            }
        })
    });
    let bound = (CONNS * 256 + msgsock::proto::RECV_BUF_MAX) as i64;
    assert!(
        held <= bound,
        "{CONNS} waiting async connections hold {held} bytes (bound {bound})"
    );
    drop(pairs);
}

/// The most bytes this thread held at once during the last [`counting`].
#[cfg(feature = "tokio")]
fn peak_bytes() -> i64 {
    PEAK_BYTES.with(Cell::get)
}

/// A current-thread runtime, the non-blocking end of a Unix pair for a feeding connection, and a
/// thread (whose allocations are not counted) reading the other end `piece` bytes at a time
/// until it closes, returning how many bytes came.
#[cfg(feature = "tokio")]
fn feeder_and_reader(
    piece: usize,
) -> (
    tokio::runtime::Runtime,
    std::os::unix::net::UnixStream,
    thread::JoinHandle<usize>,
) {
    use std::io::Read;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let reader = thread::spawn(move || {
        let (mut b, mut buf, mut total) = (b, vec![0u8; piece], 0);
        loop {
            match b.read(&mut buf).unwrap() {
                0 => return total,
                n => total += n,
            }
        }
    });
    (rt, a, reader)
}

/// `feed` waits at the high-water mark until the socket has taken enough, and the memory it
/// holds meanwhile stays near the mark: the bytes already written do not stay in the queue
/// while a reader that keeps up only part of the way never lets it empty.
#[cfg(feature = "tokio")]
#[test]
fn feeding_a_slow_reader_holds_memory_near_the_high_water_mark() {
    const HIGH_WATER: usize = 64 * 1024;
    const MSG: usize = 16 * 1024;
    const MSGS: usize = 256;
    let (rt, a, reader) = feeder_and_reader(1024);
    // A small send buffer: every write takes a few KiB of a queue that holds tens.
    nix::sys::socket::setsockopt(&a, nix::sys::socket::sockopt::SndBuf, &4096).unwrap();
    let msg = vec![7u8; MSG];
    counting(|| {
        rt.block_on(async {
            let a = tokio::net::UnixStream::from_std(a).unwrap();
            let mut conn = msgsock::tokio::AsyncConnection::new(a);
            conn.set_high_water(HIGH_WATER);
            for _ in 0..MSGS {
                conn.feed(&msg).await.unwrap();
            }
            conn.flush().await.unwrap();
        })
    });
    assert_eq!(reader.join().unwrap(), MSGS * (MSG + 4));
    let peak = peak_bytes();
    // The queue: up to the mark plus one message, and as much again while a `Vec` grows.
    let bound = 4 * (HIGH_WATER + MSG) as i64;
    assert!(
        peak <= bound,
        "feeding {} bytes held {peak} bytes at once (bound {bound})",
        MSGS * MSG
    );
}

/// A sender that feeds batches of long messages and flushes each reuses one queue: no
/// allocation per batch once the first has sized it.
#[cfg(feature = "tokio")]
#[test]
fn steady_feeding_reuses_its_queue() {
    const MSG: usize = 64 * 1024;
    const BATCH: usize = 4;
    const BATCHES: usize = 20;
    let (rt, a, reader) = feeder_and_reader(MSG);
    let msg = vec![7u8; MSG];
    let mut conn = rt.block_on(async {
        let a = tokio::net::UnixStream::from_std(a).unwrap();
        msgsock::tokio::AsyncConnection::new(a)
    });
    let feed_batch = |conn: &mut msgsock::tokio::AsyncConnection<tokio::net::UnixStream>| {
        rt.block_on(async {
            for _ in 0..BATCH {
                conn.feed(&msg).await.unwrap();
            }
            conn.flush().await.unwrap();
        })
    };
    feed_batch(&mut conn);
    let n = allocations_in(|| (0..BATCHES).for_each(|_| feed_batch(&mut conn)));
    drop(conn);
    assert_eq!(reader.join().unwrap(), (BATCHES + 1) * BATCH * (MSG + 4));
    assert_eq!(
        n, 0,
        "{BATCHES} batches of fed messages allocated {n} times"
    );
}

#[test]
fn the_counter_sees_allocations() {
    let (n, held) = counting(|| drop(std::hint::black_box(vec![1u8; 10])));
    assert_eq!((n, held), (1, 0));
    let kept = counting(|| std::mem::forget(std::hint::black_box(vec![1u8; 10]))).1;
    assert_eq!(kept, 10);
}

macro_rules! alloc_tests {
    ($($m:ident => $t:ty),+) => { $(mod $m {
        #[test]
        fn send_and_recv_into_allocate_nothing() {
            super::send_and_recv_into_allocate_nothing::<$t>(false)
        }
        #[test]
        fn spinning_receives_allocate_nothing() {
            super::send_and_recv_into_allocate_nothing::<$t>(true)
        }
        #[test]
        fn send_batch_allocates_nothing() {
            super::send_batch_allocates_nothing::<$t>()
        }
        #[test]
        fn a_connection_waiting_in_recv_holds_no_receive_buffer() {
            super::a_connection_waiting_in_recv_holds_no_receive_buffer::<$t>()
        }
        #[test]
        fn nothing_is_kept_after_large_messages() {
            super::nothing_is_kept_after_large_messages::<$t>()
        }
        #[test]
        fn a_queued_rest_is_freed_once_out() {
            super::a_queued_rest_is_freed_once_out::<$t>()
        }
    })+ }
}

alloc_tests!(unix => msgsock::UnixTransport, tcp => msgsock::TcpTransport);

/// A SEQPACKET receive (with its control buffer for the timestamp that tells an empty message
/// from end of file) and send allocate nothing once the buffer is sized.
#[test]
#[cfg(any(target_os = "linux", target_os = "android"))]
fn seqpacket_send_and_recv_into_allocate_nothing() {
    let (a, b) = msgsock::UnixSeqpacket::pair().unwrap();
    let msgs: Vec<Vec<u8>> = [0, 1, 64, 4096, 100_000]
        .iter()
        .map(|&n| vec![7u8; n])
        .collect();
    let mut buf = Vec::with_capacity(b.max_message_len());
    let n = allocations_in(|| {
        for msg in &msgs {
            a.send(msg).unwrap();
            assert_eq!(b.recv_into(&mut buf).unwrap(), Some(msg.len()));
        }
    });
    assert_eq!(n, 0, "allocations for {} packets", msgs.len());
}
