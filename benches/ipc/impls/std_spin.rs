//! `std spin`: hand-written busy polling, a non-blocking std socket read in a loop until the
//! bytes are there, with no budget and no fallback to blocking: the plainest spinning code, the
//! reference for `msgsock spin`. Small round trips only.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Instant;

use super::std_framed::write_frame;
use super::{Api, Impl, Peer, Role, Run};
use crate::std_sockets::StdStream;
use crate::transports::IO_TIMEOUT;
use crate::KIB;

/// Room for every message spun on (`SPIN_MAX_SIZE`) and its header.
const RBUF_LEN: usize = 8 * KIB;

struct StdSpin<R> {
    sock: R,
    rbuf: Box<[u8]>,
    pos: usize,
    end: usize,
}

fn std_spin_peer<R: StdStream>(fd: OwnedFd) -> io::Result<Box<dyn Peer>> {
    let sock = R::from(fd);
    sock.set_nonblocking(true)?;
    Ok(Box::new(StdSpin::new(sock)))
}

/// Bounds a spin loop by `IO_TIMEOUT`, as the socket timeouts bound the blocking
/// implementations, so that a peer that hangs fails the run instead of spinning forever. The
/// clock is read once every 1024 polls, so that the bound costs the loop next to nothing.
#[derive(Default)]
struct Patience {
    polls: u32,
    since: Option<Instant>,
}

impl Patience {
    fn wait(&mut self) -> io::Result<()> {
        self.polls = self.polls.wrapping_add(1);
        if self.polls.is_multiple_of(1024)
            && self.since.get_or_insert_with(Instant::now).elapsed() > IO_TIMEOUT
        {
            return Err(io::ErrorKind::TimedOut.into());
        }
        std::hint::spin_loop();
        Ok(())
    }
}

impl<R: StdStream> StdSpin<R> {
    fn new(sock: R) -> StdSpin<R> {
        StdSpin {
            sock,
            rbuf: vec![0; RBUF_LEN].into_boxed_slice(),
            pos: 0,
            end: 0,
        }
    }

    /// Reads until at least `want` bytes are buffered; `false` at a clean close.
    fn fill_to(&mut self, want: usize) -> io::Result<bool> {
        if self.rbuf.len() - self.pos < want {
            self.rbuf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        let mut patience = Patience::default();
        while self.end - self.pos < want {
            match self.sock.read(&mut self.rbuf[self.end..]) {
                Ok(0) => return Ok(false),
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => patience.wait()?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

impl<R: StdStream> Peer for StdSpin<R> {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let mut patience = Patience::default();
        write_frame(&mut self.sock, msg, |_| patience.wait())
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
        if !self.fill_to(4)? {
            return Ok(None);
        }
        let header: [u8; 4] = self.rbuf[self.pos..self.pos + 4]
            .try_into()
            .expect("4 bytes");
        let len = u32::from_be_bytes(header) as usize;
        self.pos += 4;
        // Only small messages are spun on (SPIN_MAX_SIZE), which fit the buffer whole.
        if len > self.rbuf.len() {
            return Err(io::Error::other(
                "message too long for the spinning baseline",
            ));
        }
        if !self.fill_to(len)? {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.clear();
        buf.extend_from_slice(&self.rbuf[self.pos..self.pos + len]);
        self.pos += len;
        Ok(Some(len))
    }

    fn try_clone(&self) -> io::Result<Box<dyn Peer>> {
        // The clone shares the open file, and so its non-blocking mode.
        Ok(Box::new(StdSpin::new(self.sock.try_clone()?)))
    }
}

/// `std spin`.
pub(super) fn stream<R: StdStream>() -> Vec<Impl> {
    vec![Impl {
        name: "std spin",
        role: Role::SpinBaseline,
        api: Api::Blocking,
        run: Run::Blocking(std_spin_peer::<R>),
    }]
}
