//! What a round trip costs without its wake-ups, timed in this one process so that nobody ever
//! waits for the other:
//! - the floor: the four system calls of a 64 B round trip (a write and a read on each end of a
//!   connection) made back to back. Spinning removes the wake-ups from a round trip, not these;
//! - the framing: one 64 B message sent and received on one thread by msgsock and by each
//!   hand-written baseline, the CPU time an implementation adds to those calls.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use crate::cases::Case;
use crate::impls::{Role, Run};
use crate::patterns::{check_echo, message};
use crate::stats::mid;
use crate::transports::{families, Family};

/// What those calls cost on each stream family among `all`'s cases, by family index.
pub(crate) fn syscall_costs(all: &[Case], quick: bool) -> HashMap<usize, Duration> {
    per_family(all, "system calls", |family| {
        syscall_cost(family, quick).map(Some)
    })
}

/// `cost` of each stream family with 64 B cases among `all`, by family index; a family whose
/// timing failed (`what` says which) is reported and left out.
fn per_family<T>(
    all: &[Case],
    what: &str,
    cost: impl Fn(&Family) -> io::Result<Option<T>>,
) -> HashMap<usize, T> {
    let mut out = HashMap::new();
    for (f, family) in families().iter().enumerate() {
        if !family.targets || !all.iter().any(|c| c.family == f && c.size == 64) {
            continue;
        }
        match cost(family) {
            Ok(Some(c)) => {
                out.insert(f, c);
            }
            Ok(None) => {}
            Err(e) => eprintln!("{}: {what} not timed: {e}", family.name),
        }
    }
    out
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
pub(crate) fn one_thread_costs(all: &[Case], quick: bool) -> HashMap<usize, OneThread> {
    per_family(all, "one-thread send and receive", |family| {
        one_thread_cost(family, quick)
    })
}

/// msgsock's and the best baseline's median time for one send and one receive on one thread.
#[derive(Clone, Copy)]
pub(crate) struct OneThread {
    pub(crate) subject: Duration,
    pub(crate) best_std: Duration,
}

fn one_thread_cost(family: &Family, quick: bool) -> io::Result<Option<OneThread>> {
    let (listener, addr) = (family.bind)()?;
    let mut peers = Vec::new();
    for imp in &family.impls {
        let (Run::Blocking(wrap), Role::Subject | Role::Baseline) = (imp.run, imp.role) else {
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
        .map(|(subject, best_std)| OneThread { subject, best_std }))
}
