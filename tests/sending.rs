//! Sending under pressure, on every stream transport: sends that would block or time out part-way
//! and are retried as `Connection::send` documents, and several threads sending at once.

mod common;

pub mod suite {
    use std::sync::{mpsc, Arc, Barrier};
    use std::thread;
    use std::time::Duration;

    use msgsock::{Connection, RecvHalf, SendHalf, Stream, Transport};
    use proptest::prelude::RngExt;
    use proptest::test_runner::{RngAlgorithm, TestRng};

    use crate::common::{assert_same_messages, assert_send, connected_pair, pattern};

    /// How a sender is kept from waiting for a reader that does not read.
    #[derive(Debug, Clone, Copy)]
    pub enum Stall {
        /// `set_nonblocking(true)`: a full socket buffer is `WouldBlock` at once.
        NonBlocking,
        /// A short write timeout: a full socket buffer is `WouldBlock` after it.
        WriteTimeout,
    }

    /// `count` messages of random lengths in `min..max`, each starting with its index so that a
    /// lost, repeated or reordered one shows.
    fn messages(count: usize, min: usize, max: usize, seed: u8) -> Vec<Vec<u8>> {
        let mut rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
        (0..count)
            .map(|i| {
                let mut msg = (i as u32).to_be_bytes().to_vec();
                msg.extend(pattern(rng.random_range(min..max), seed ^ i as u8));
                msg
            })
            .collect()
    }

    /// Sends `msg`, retrying a timed-out send as it is, as the contract of `send` allows: a
    /// timeout means the message was not accepted. Calls `stalled` whenever the socket was full:
    /// a send refused, or one accepted with part of it queued.
    fn send_retrying<S: Stream>(conn: &mut Connection<S>, msg: &[u8], stalled: &mut impl FnMut()) {
        loop {
            match conn.send(msg) {
                Ok(()) => {
                    if conn.pending_len() > 0 {
                        stalled();
                    }
                    return;
                }
                Err(e) if e.is_timeout() => {
                    stalled();
                    thread::yield_now();
                }
                Err(e) => panic!("send of {} bytes: {e}", msg.len()),
            }
        }
    }

    /// A sender that stalls, random message sizes from 100 B to 1 MiB, and a reader that starts
    /// only once the sender has found the socket full: every message arrives exactly once, in
    /// order, however many sends were retried.
    pub fn stalled_sends_retried_deliver_everything_once<T: Transport>(stall: Stall) {
        let msgs = messages(60, 100, 1 << 20, 3);
        let (mut client, mut server) = connected_pair::<T>();
        match stall {
            Stall::NonBlocking => client.set_nonblocking(true).unwrap(),
            Stall::WriteTimeout => client
                .set_write_timeout(Some(Duration::from_millis(20)))
                .unwrap(),
        }
        let (go, wait) = mpsc::channel();
        let count = msgs.len();
        let reader = thread::spawn(move || {
            wait.recv().expect("the sender stalled once");
            let got: Vec<Vec<u8>> = (0..count)
                .map(|i| {
                    server
                        .recv()
                        .unwrap()
                        .unwrap_or_else(|| panic!("close at {i}"))
                })
                .collect();
            assert_eq!(server.recv().unwrap(), None, "a clean close after the last");
            got
        });
        let mut stalls = 0;
        let mut stalled = || {
            if stalls == 0 {
                go.send(()).unwrap();
            }
            stalls += 1;
        };
        for msg in &msgs {
            send_retrying(&mut client, msg, &mut stalled);
        }
        assert!(
            stalls > 0,
            "the socket never filled: the test proves nothing"
        );
        client.set_nonblocking(false).unwrap();
        client.set_write_timeout(None).unwrap();
        client.flush().unwrap();
        assert_eq!(client.pending_len(), 0);
        drop(client);
        assert_same_messages(&reader.join().unwrap(), &msgs);
    }

    /// Which kind of handle each sending thread gets.
    #[derive(Debug, Clone, Copy)]
    pub enum Handles {
        /// `Connection::try_clone`.
        TryClone,
        /// `try_clone`s of the send half from `Connection::split`.
        SendHalves,
    }

    /// One more sender on the connection.
    enum Sender<S> {
        Conn(Connection<S>),
        Half(SendHalf<S>),
    }

    impl<S: Stream> Sender<S> {
        fn try_clone(&self) -> Sender<S> {
            match self {
                Sender::Conn(c) => Sender::Conn(c.try_clone().unwrap()),
                Sender::Half(h) => Sender::Half(h.try_clone().unwrap()),
            }
        }
        fn send(&mut self, msg: &[u8]) -> msgsock::Result<()> {
            match self {
                Sender::Conn(c) => c.send(msg),
                Sender::Half(h) => h.send(msg),
            }
        }
    }

    /// `threads` threads send large messages of random sizes (64 KiB to 1 MiB) at once on
    /// handles of one connection; the receiver gets every message whole, and each thread's in the
    /// order it sent them.
    pub fn concurrent_senders_never_interleave<T: Transport>(threads: usize, handles: Handles) {
        let each = 48 / threads;
        let (client, server) = connected_pair::<T>();
        let (mut server, _server_tx) = server.split().unwrap();
        let first = match handles {
            Handles::TryClone => Sender::Conn(client),
            Handles::SendHalves => Sender::Half(client.split().unwrap().1),
        };
        let barrier = Arc::new(Barrier::new(threads));
        let senders: Vec<_> = (0..threads)
            .map(|t| {
                let mut conn = first.try_clone();
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    barrier.wait();
                    for msg in thread_messages(t, each) {
                        conn.send(&msg).unwrap();
                    }
                })
            })
            .collect();
        drop(first);
        let mut got = vec![Vec::new(); threads];
        for _ in 0..threads * each {
            let msg = server.recv().unwrap().expect("a message, not a close");
            let t = usize::from(msg[0]);
            assert!(t < threads, "a message from no thread: {:?}", &msg[..8]);
            got[t].push(msg);
        }
        for sender in senders {
            sender.join().unwrap();
        }
        assert_eq!(server.recv().unwrap(), None);
        for (t, got) in got.iter().enumerate() {
            assert_same_messages(got, &thread_messages(t, each));
        }

        fn thread_messages(t: usize, each: usize) -> Vec<Vec<u8>> {
            messages(each, 64 << 10, 1 << 20, t as u8)
                .into_iter()
                .map(|mut m| {
                    m.insert(0, t as u8);
                    m
                })
                .collect()
        }
    }

    /// The halves can go to other threads.
    pub fn halves_are_send<T: Transport>() {
        assert_send::<RecvHalf<T::Stream>>();
        assert_send::<SendHalf<T::Stream>>();
    }
}

/// Instantiates [`suite`] for each stream transport.
macro_rules! sending {
    ($($m:ident => $t:ty),+ $(,)?) => {
        $(mod $m {
            use crate::suite::{self, Handles, Stall};
            #[test] fn nonblocking_sends_retried_deliver_everything_once() {
                suite::stalled_sends_retried_deliver_everything_once::<$t>(Stall::NonBlocking)
            }
            #[test] fn timed_out_sends_retried_deliver_everything_once() {
                suite::stalled_sends_retried_deliver_everything_once::<$t>(Stall::WriteTimeout)
            }
            #[test] fn two_senders_never_interleave() {
                suite::concurrent_senders_never_interleave::<$t>(2, Handles::TryClone)
            }
            #[test] fn eight_senders_never_interleave() {
                suite::concurrent_senders_never_interleave::<$t>(8, Handles::TryClone)
            }
            #[test] fn two_send_halves_never_interleave() {
                suite::concurrent_senders_never_interleave::<$t>(2, Handles::SendHalves)
            }
            #[test] fn eight_send_halves_never_interleave() {
                suite::concurrent_senders_never_interleave::<$t>(8, Handles::SendHalves)
            }
            #[test] fn halves_are_send() { suite::halves_are_send::<$t>() }
        })+
    };
}

sending!(unix => msgsock::UnixTransport, tcp => msgsock::TcpTransport);
