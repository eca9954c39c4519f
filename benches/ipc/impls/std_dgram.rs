//! `std`, the hand-written datagram baseline: a connected std socket, `send`, and `recv` into a
//! reused fixed buffer.

use std::io;
use std::os::fd::OwnedFd;

use super::{Api, Impl, Peer, Role, Run};
use crate::std_sockets::StdDatagram;
use crate::KIB;

/// The receive buffer: room for every datagram size measured.
const DGRAM_BUF: usize = 64 * KIB;

struct StdDgram<D>(D);

fn std_dgram_peer<D: StdDatagram>(fd: OwnedFd) -> io::Result<Box<dyn Peer>> {
    Ok(Box::new(StdDgram(D::from(fd))))
}

impl<D: StdDatagram> Peer for StdDgram<D> {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        if self.0.send(msg)? != msg.len() {
            return Err(io::Error::other("datagram sent short"));
        }
        Ok(())
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
        // Zeroed once; the buffer keeps this length from then on.
        if buf.len() < DGRAM_BUF {
            buf.resize(DGRAM_BUF, 0);
        }
        Ok(Some(self.0.recv(buf)?))
    }
    fn try_clone(&self) -> io::Result<Box<dyn Peer>> {
        Ok(Box::new(StdDgram(self.0.try_clone()?)))
    }
}

/// `std`.
pub(super) fn datagram<D: StdDatagram>() -> Vec<Impl> {
    vec![Impl {
        name: "std",
        role: Role::Baseline,
        api: Api::Blocking,
        run: Run::Blocking(std_dgram_peer::<D>),
    }]
}
