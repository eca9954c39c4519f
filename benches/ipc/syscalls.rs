//! The floor under a round trip: the four system calls of a 64 B round trip (a write and a read
//! on each end of a connection) made back to back in this one process, so that nobody ever waits
//! for the other. Spinning removes the wake-ups from a round trip, not these.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use crate::cases::Case;
use crate::patterns::message;
use crate::stats::mid;
use crate::transports::{families, Family};

/// What those calls cost on each stream family among `all`'s cases, by family index.
pub(crate) fn syscall_costs(all: &[Case], quick: bool) -> HashMap<usize, Duration> {
    let mut out = HashMap::new();
    for (f, family) in families().iter().enumerate() {
        if !family.targets || !all.iter().any(|c| c.family == f && c.size == 64) {
            continue;
        }
        match syscall_cost(family, quick) {
            Ok(d) => {
                out.insert(f, d);
            }
            Err(e) => eprintln!("{}: system calls not timed: {e}", family.name),
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
