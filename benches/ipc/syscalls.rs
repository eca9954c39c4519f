//! What a round trip costs without its wake-ups, timed in this one process so that nobody ever
//! waits for the other:
//! - the floor: the four system calls of a 64 B round trip (a write and a read on each end of a
//!   connection) made back to back. Spinning removes the wake-ups from a round trip, not these;
//! - the framing: one 64 B message sent and received on one thread by msgsock and by each
//!   hand-written baseline, the CPU time an implementation adds to those calls;
//! - the receive calls: a 64 B write and read on one thread by `recv(2)`, `readv(2)` and
//!   `recvmsg(2)`, what the kernel alone charges for each way of reading (the ratio printed is
//!   `recvmsg` over `recv`: every msgsock read of a Unix stream is a `recvmsg`, for descriptors).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use crate::cases::Case;
use crate::impls::{Role, Run};
use crate::patterns::{check_echo, message};
use crate::stats::mid;
use crate::transports::{families, Family};

/// What those calls cost on each stream family among `all`'s cases, by family index.
pub(crate) fn syscall_costs(all: &[Case], quick: bool) -> io::Result<HashMap<usize, Duration>> {
    per_family(all, "system calls", |family| {
        syscall_cost(family, quick).map(Some)
    })
}

/// `cost` of each stream family with 64 B cases among `all`, by family index. A timing that
/// fails (`what` says which) fails the run, as a failed case does: a row left out quietly would
/// hide a broken implementation.
fn per_family<T>(
    all: &[Case],
    what: &str,
    cost: impl Fn(&Family) -> io::Result<Option<T>>,
) -> io::Result<HashMap<usize, T>> {
    let mut out = HashMap::new();
    for (f, family) in families().iter().enumerate() {
        if !family.targets || !all.iter().any(|c| c.family == f && c.size == 64) {
            continue;
        }
        let cost = cost(family)
            .map_err(|e| io::Error::other(format!("{}: {what} not timed: {e}", family.name)))?;
        if let Some(c) = cost {
            out.insert(f, c);
        }
    }
    Ok(out)
}

fn syscall_cost(family: &Family, quick: bool) -> io::Result<Duration> {
    let (listener, addr) = (family.bind)()?;
    // Plain read(2) and write(2) on the descriptors, as the least any framing code can do.
    let mut a = std::fs::File::from((family.connect)(&addr)?);
    let mut b = std::fs::File::from(listener.accept()?);
    let mut frame = message(68);
    frame[..4].copy_from_slice(&64u32.to_be_bytes());
    let mut buf = [0; 68];
    let (batches, per_batch) = if quick { (3, 1_000) } else { (11, 20_000) };
    let mut times = Vec::with_capacity(batches);
    for _ in 0..batches {
        let start = Instant::now();
        for _ in 0..per_batch {
            a.write_all(&frame)?;
            b.read_exact(&mut buf)?;
            b.write_all(&buf)?;
            a.read_exact(&mut buf)?;
        }
        times.push(start.elapsed() / per_batch);
    }
    if buf != frame[..] {
        return Err(io::Error::other("the timed frame came back changed"));
    }
    mid(times).ok_or_else(|| io::Error::other("no batches"))
}

/// A 64 B message sent and received back to back on one thread, on each stream family among
/// `all`'s cases: msgsock's time and the best hand-written baseline's, by family index. With no
/// wake-up in it, this is the CPU time of the framing code plus its system calls, the part of a
/// round trip an implementation can change.
pub(crate) fn one_thread_costs(all: &[Case], quick: bool) -> io::Result<HashMap<usize, OneThread>> {
    per_family(all, "one-thread send and receive", |family| {
        one_thread_cost(family, quick)
    })
}

/// msgsock's and the best baseline's median time for one send and one receive on one thread,
/// and msgsock's set not to receive descriptors where the family has that.
#[derive(Clone, Copy)]
pub(crate) struct OneThread {
    pub(crate) subject: Duration,
    pub(crate) best_std: Duration,
    pub(crate) no_fds: Option<Duration>,
}

fn one_thread_cost(family: &Family, quick: bool) -> io::Result<Option<OneThread>> {
    let (listener, addr) = (family.bind)()?;
    let mut peers = Vec::new();
    for imp in &family.impls {
        let (Run::Blocking(wrap), Role::Subject | Role::Baseline | Role::NoFds) =
            (imp.run, imp.role)
        else {
            continue;
        };
        let a = wrap((family.connect)(&addr)?)?;
        let b = wrap(listener.accept()?)?;
        peers.push((imp.role, a, b, Vec::new()));
    }
    let msg = message(64);
    let mut buf = Vec::with_capacity(64);
    let (batches, per_batch) = if quick { (3, 1_000) } else { (21, 20_000) };
    for _ in 0..batches {
        // Batch by batch in turn, so that drift in the machine's load hits every one alike.
        for (_, a, b, times) in &mut peers {
            let start = Instant::now();
            for _ in 0..per_batch {
                a.send(&msg)?;
                check_echo(b.recv(&mut buf)?, &buf, &msg)?;
            }
            times.push(start.elapsed() / per_batch);
        }
    }
    let median = |role: Role| {
        peers
            .iter()
            .filter(|p| p.0 == role)
            .filter_map(|p| mid(p.3.clone()))
            .min()
    };
    Ok(median(Role::Subject)
        .zip(median(Role::Baseline))
        .map(|(subject, best_std)| OneThread {
            subject,
            best_std,
            no_fds: median(Role::NoFds),
        }))
}

/// The receive calls [`read_call_costs`] compares, in its order: `recv(2)` (what std's `read`
/// makes, and msgsock's TCP read into one buffer), `readv(2)` into two buffers (msgsock's read of
/// a payload's rest and the next header) and `recvmsg(2)` with room for control data (every read
/// of a Unix stream by msgsock, which must see descriptors).
pub(crate) const READ_CALLS: [&str; 3] = ["recv", "readv", "recvmsg"];

/// One 64 B write and read back to back on one thread, by each of the [`READ_CALLS`], on each
/// stream family among `all`'s cases, by family index. Only the receive call differs, so the
/// differences are the kernel's, which no framing code can change.
pub(crate) fn read_call_costs(
    all: &[Case],
    quick: bool,
) -> io::Result<HashMap<usize, [Duration; 3]>> {
    per_family(all, "read calls", |family| {
        read_call_cost(family, quick).map(Some)
    })
}

fn read_call_cost(family: &Family, quick: bool) -> io::Result<[Duration; 3]> {
    use nix::sys::socket::{recv, recvmsg, MsgFlags};
    use std::io::IoSliceMut;
    use std::os::fd::{AsFd, AsRawFd};

    let (listener, addr) = (family.bind)()?;
    let mut a = std::fs::File::from((family.connect)(&addr)?);
    let b = listener.accept()?;
    let frame = message(68);
    let mut buf = [0; 8192];
    let mut control = nix::cmsg_space!([std::os::fd::RawFd; 16]);
    let mut read = |call: usize, buf: &mut [u8]| -> io::Result<usize> {
        let fd = b.as_fd();
        Ok(match call {
            0 => recv(fd.as_raw_fd(), buf, MsgFlags::empty())?,
            1 => {
                let (head, rest) = buf.split_at_mut(4);
                nix::sys::uio::readv(fd, &mut [IoSliceMut::new(head), IoSliceMut::new(rest)])?
            }
            _ => {
                let mut iov = [IoSliceMut::new(buf)];
                let flags = MsgFlags::MSG_CMSG_CLOEXEC;
                recvmsg::<()>(fd.as_raw_fd(), &mut iov, Some(&mut control), flags)?.bytes
            }
        })
    };
    let (batches, per_batch) = if quick { (3, 1_000) } else { (21, 20_000) };
    let mut times: [Vec<Duration>; 3] = Default::default();
    for _ in 0..batches {
        // Call by call in turn, so that drift in the machine's load hits every one alike.
        for (call, times) in times.iter_mut().enumerate() {
            let start = Instant::now();
            for _ in 0..per_batch {
                a.write_all(&frame)?;
                let mut got = 0;
                while got < frame.len() {
                    got += read(call, &mut buf[got..])?;
                }
                if buf[..got] != frame[..] {
                    return Err(io::Error::other("the timed frame came back changed"));
                }
            }
            times.push(start.elapsed() / per_batch);
        }
    }
    let [recv, readv, recvmsg] = times.map(mid);
    recv.zip(readv)
        .zip(recvmsg)
        .map(|((a, b), c)| [a, b, c])
        .ok_or_else(|| io::Error::other("no batches"))
}
