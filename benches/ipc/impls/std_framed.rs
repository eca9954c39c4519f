//! The hand-written stream baselines: what careful blocking std code does, `std writev` (header
//! and payload in one `write_vectored`) and `std 2 writes` (the header, then the payload).

use std::io::{self, BufRead, BufReader, IoSlice, Read, Write};
use std::os::fd::OwnedFd;

use super::{Api, Impl, Peer, Role, Run};
use crate::std_sockets::StdStream;

/// Receives through a `BufReader` for small frames and straight into the reused destination for
/// large ones.
struct StdFramed<R> {
    reader: BufReader<R>,
    two_writes: bool,
}

fn std_peer<R: StdStream, const TWO_WRITES: bool>(fd: OwnedFd) -> io::Result<Box<dyn Peer>> {
    Ok(Box::new(StdFramed {
        reader: BufReader::new(R::from(fd)),
        two_writes: TWO_WRITES,
    }))
}

/// Writes the 4-byte big-endian length and `msg` with `write_vectored` until all is out;
/// `would_block` decides what a `WouldBlock` error means (a timeout, or a reason to poll again).
pub(super) fn write_frame<W: Write>(
    w: &mut W,
    msg: &[u8],
    mut would_block: impl FnMut(io::Error) -> io::Result<()>,
) -> io::Result<()> {
    let header = header(msg)?;
    let mut bufs = [IoSlice::new(&header), IoSlice::new(msg)];
    let mut bufs = &mut bufs[..];
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => would_block(e)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The 4-byte big-endian length of `msg`.
fn header(msg: &[u8]) -> io::Result<[u8; 4]> {
    let len = u32::try_from(msg.len())
        .map_err(|_| io::Error::other("message too long for the baseline"))?;
    Ok(len.to_be_bytes())
}

impl<R: StdStream> Peer for StdFramed<R> {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let w = self.reader.get_mut();
        if self.two_writes {
            w.write_all(&header(msg)?)?;
            return w.write_all(msg);
        }
        // A blocking socket reports `WouldBlock` only when its write timeout expired.
        write_frame(w, msg, Err)
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
        if self.reader.fill_buf()?.is_empty() {
            return Ok(None);
        }
        let mut header = [0; 4];
        self.reader.read_exact(&mut header)?;
        let len = u32::from_be_bytes(header) as usize;
        // A reused buffer: no allocation and no zeroing once it has held a message this long.
        buf.resize(len, 0);
        let buffered = self.reader.buffer();
        let have = buffered.len().min(len);
        buf[..have].copy_from_slice(&buffered[..have]);
        self.reader.consume(have);
        let rest = &mut buf[have..];
        if rest.len() < self.reader.capacity() {
            self.reader.read_exact(rest)?;
        } else {
            self.reader.get_mut().read_exact(rest)?;
        }
        Ok(Some(len))
    }

    fn try_clone(&self) -> io::Result<Box<dyn Peer>> {
        Ok(Box::new(StdFramed {
            reader: BufReader::new(self.reader.get_ref().try_clone()?),
            two_writes: self.two_writes,
        }))
    }
}

/// `std writev` and `std 2 writes`.
pub(super) fn stream<R: StdStream>() -> Vec<Impl> {
    vec![
        Impl {
            name: "std writev",
            role: Role::Baseline,
            api: Api::Blocking,
            run: Run::Blocking(std_peer::<R, false>),
        },
        Impl {
            name: "std 2 writes",
            role: Role::Baseline,
            api: Api::Blocking,
            run: Run::Blocking(std_peer::<R, true>),
        },
    ]
}
