//! Two-process benchmark: msgsock against hand-written std socket code, on every transport, and
//! (feature `tokio`) msgsock's async connection against tokio-util's `LengthDelimitedCodec`.
//!
//! ```text
//! cargo bench --bench ipc               # the full run, about 3 minutes
//! cargo bench --bench ipc -- --quick    # a smoke run of a few seconds (or MSGSOCK_BENCH_QUICK=1)
//! cargo bench --bench ipc -- unix "1 MiB"  # only the cases whose names contain every word
//! cargo bench --bench ipc -- echo       # only echo streaming (`rt`, `stream`, `echo`)
//! cargo bench --bench ipc --features tokio            # adds the async rows, about 5 minutes
//! cargo bench --bench ipc --features tokio -- async   # only the async rows (`blocking`: the others)
//! ```
//!
//! The binary re-executes itself as the serving child ([`child`]); the two processes are pinned
//! to different cores when there are two. For each case the parent connects over one family
//! ([`transports`]) and drives one pattern ([`patterns`]): ping-pong round trips, one-way
//! streaming, or echo streaming (the parent streams while the child replies to every message).
//! Every repetition runs all the cases once, those of a group (family, pattern, size) back to back
//! in an order that rotates from one repetition to the next, so that drift in the machine's load
//! hits every implementation alike; the table quotes medians over the repetitions, and each ratio
//! is the median of the ratios taken within a repetition against the baseline with the better
//! overall median ([`stats`]). The summary ([`report`]) gives each of the issue's targets with a
//! distribution-free 95% confidence interval, and says when a ratio is within noise of its limit.
//!
//! Every stream implementation ([`impls`]) speaks the same wire format (4-byte big-endian length,
//! then the payload):
//! - `msgsock`: `Connection::send` and `Connection::recv_into` with a reused buffer, through
//!   `msgsock::Channel`;
//! - `msgsock batch`: `Connection::send_batch` of many messages per call;
//! - `msgsock spin`: `msgsock` with `Connection::set_spin(Some(DEFAULT_SPIN))` on both sides;
//! - `std writev`: blocking std socket, header and payload in one `write_vectored`, receive
//!   through a `BufReader` for small frames and straight into the reused destination for large;
//! - `std 2 writes`: the same, with the header and the payload written separately;
//! - `std spin`: the `std writev` framing on a non-blocking socket read in a loop with no budget,
//!   the plainest spinning code (small round trips only).
//!
//! With the `tokio` feature, three async implementations join the `unix` and `tcp` rows, every
//! pattern and size, compared with each other (their ratios are against `tokio codec`):
//! - `tokio codec`: tokio-util's `Framed<_, LengthDelimitedCodec>`, `SinkExt::send` per message
//!   and `StreamExt::next` per receive, what a tokio user would pick instead;
//! - `msgsock async`: `msgsock::tokio::AsyncConnection`, `send` per message and `recv_into` with
//!   a reused buffer;
//! - `msgsock async feed`: the same connection with `feed` per message and one `flush` per batch
//!   of `msgsock batch`'s size (or sooner, when the high-water mark makes `feed` wait); its
//!   server feeds its replies, which go out together while its next receive waits.
//!
//! Each process runs them on one current-thread tokio runtime, the fastest shape for one
//! connection and the same for all three, a case being one task (`async_patterns.rs`). The
//! summary also sets `msgsock async` 64 B streaming against the best blocking hand-written
//! per-message rate.
//!
//! On the datagram transports (`udp`, `unixgram`) a message is one datagram, with no header:
//! `msgsock` is the connected `msgsock::UdpSocket` or `msgsock::UnixDatagram`, `std` the
//! connected std socket receiving into a reused fixed 64 KiB buffer. UDP is not streamed: it
//! drops datagrams when the receiver falls behind, so a one-way rate would count losses. Echo
//! streaming runs on the stream transports, and the issue's targets are for those.
//!
//! Beside the two-process cases, the parent times the four system calls of a 64 B round trip
//! made back to back in itself ([`syscalls`]): what a round trip costs in system calls alone,
//! which busy polling cannot remove. It also times a 64 B message sent and received on one
//! thread by msgsock and by the baselines: the CPU time of the framing code and its calls; and
//! a 64 B write and read by each receive call (`recv`, `readv`, `recvmsg`), what the kernel alone
//! charges for each.

#[cfg(feature = "tokio")]
mod async_patterns;
mod cases;
mod child;
mod cpu;
mod impls;
mod patterns;
mod report;
mod stats;
mod std_sockets;
mod syscalls;
#[cfg(feature = "tokio")]
mod tokio_sockets;
mod transports;

use std::collections::HashMap;
use std::error::Error;
use std::time::{Duration, Instant};

use crate::cases::Case;
use crate::child::ChildLink;
use crate::patterns::{Config, Sample};
use crate::stats::Results;

/// `1` selects the quick mode, as `--quick` does.
const QUICK_ENV: &str = "MSGSOCK_BENCH_QUICK";

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

fn main() -> Result<(), Box<dyn Error>> {
    if let Some(cpu) = child::child_role() {
        return child::serve(&cpu);
    }
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var(QUICK_ENV).is_ok_and(|v| v == "1");
    let cfg = if quick {
        Config {
            reps: 1,
            time: Duration::from_millis(10),
            warmup: Duration::from_millis(2),
        }
    } else {
        // Many short repetitions rather than few long ones: the load of a shared machine drifts
        // over seconds, and every repetition measures all the cases of a group side by side.
        Config {
            reps: 21,
            time: Duration::from_millis(60),
            warmup: Duration::from_millis(15),
        }
    };

    let cpus = cpu::allowed_cpus()?;
    let child_cpu = if cpus.len() >= 2 {
        cpu::pin(cpus[0])?;
        Some(cpus[1])
    } else {
        None
    };
    let mut child = ChildLink::spawn(child_cpu)?;

    // Words that are not flags select cases, such as `unix`, `stream`, `1 MiB` or `std`.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let started = Instant::now();
    let all: Vec<Case> = cases::all()
        .into_iter()
        .filter(|&c| filters.iter().all(|f| c.describe().contains(f.as_str())))
        .collect();
    let mut samples: HashMap<Case, Vec<Sample>> = HashMap::new();
    let groups: Vec<&[Case]> = all
        .chunk_by(|a, b| (a.family, a.pattern, a.size) == (b.family, b.pattern, b.size))
        .collect();
    for rep in 0..cfg.reps {
        for group in &groups {
            // Rotate the order within a group, so that no implementation always runs first.
            for i in 0..group.len() {
                let case = group[(i + rep) % group.len()];
                let s = run_case(&mut child, case, &cfg)
                    .map_err(|e| format!("{}: {e}", case.describe()))?;
                samples.entry(case).or_default().push(s);
            }
        }
    }
    child.close()?;

    let results = Results(samples);
    println!(
        "msgsock ipc bench: {} cores, Linux {}, {}; {} repetition(s) of {} ms per case, medians; {:.0} s",
        cpus.len(),
        cpu::kernel(),
        if cpus.len() >= 2 {
            format!("parent pinned to cpu {}, child to cpu {}", cpus[0], cpus[1])
        } else {
            "not pinned (one core)".to_owned()
        },
        cfg.reps,
        cfg.time.as_millis(),
        started.elapsed().as_secs_f64()
    );
    report::print_table(&all, &results);
    if all.iter().any(|c| c.family().targets) {
        let syscall_costs = syscalls::syscall_costs(&all, quick)?;
        let one_thread = syscalls::one_thread_costs(&all, quick)?;
        let read_calls = syscalls::read_call_costs(&all, quick)?;
        report::print_checks(&results, &syscall_costs, &one_thread, &read_calls);
    }
    Ok(())
}

/// One case, once: the child serves while this process drives, and the sample's CPU time is
/// both processes'.
fn run_case(child: &mut ChildLink, case: Case, cfg: &Config) -> Result<Sample, Box<dyn Error>> {
    child.start(case)?;
    let fd = (case.family().connect)(child.addr(case.family))?;
    let sample = case
        .imp()
        .drive(fd, case.pattern, case.size, case.batch(), cfg)?;
    let child_cpu_per_op = child.finish()?;
    Ok(Sample {
        cpu_per_op: sample.cpu_per_op + child_cpu_per_op,
        ..sample
    })
}
