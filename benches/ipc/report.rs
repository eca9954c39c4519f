//! What a run prints: the table of every case, then the targets for the stream families,
//! each with the figure measured in this run. Informative only: timings vary with the machine and
//! are never a pass/fail criterion.

use std::collections::HashMap;
use std::time::Duration;

use crate::cases::{size_name, Case};
use crate::impls::{Api, Role};
use crate::patterns::Pattern;
use crate::stats::{median_ci95, mid, Pick, Results};
use crate::syscalls::{OneThread, READ_CALLS};
use crate::transports::families;
use crate::{KIB, MIB};

pub(crate) fn print_table(all: &[Case], results: &Results) {
    println!(
        "{:<8} {:<11} {:>7}  {:<18} {:>10} {:>10} {:>9} {:>11} {:>9} {:>9} {:>9}",
        "",
        "test",
        "size",
        "impl",
        "median",
        "p99",
        "MB/s",
        "msgs/s",
        "CPU/op",
        "time/std",
        "rate/std"
    );
    let mut last = None;
    for &case in all {
        let Some(s) = results.median(case) else {
            continue;
        };
        let imp = case.imp();
        let group = (case.family, case.pattern, case.size);
        let (name, test, size) = if last == Some(group) {
            ("", "", String::new())
        } else {
            (
                case.family().name,
                case.pattern.label(),
                size_name(case.size),
            )
        };
        last = Some(group);
        let vs = if imp.role == Role::Baseline {
            None
        } else {
            results.vs_baseline(case).map(ratio)
        };
        let (median, p99, time_ratio, rate_ratio) = match case.pattern {
            Pattern::RoundTrip => (micros(s.median), micros(s.p99), vs, None),
            Pattern::Stream | Pattern::EchoStream => (String::new(), String::new(), None, vs),
        };
        let line = format!(
            "{:<8} {:<11} {:>7}  {:<18} {:>10} {:>10} {:>9.1} {:>11.0} {:>9} {:>9} {:>9}",
            name,
            test,
            size,
            imp.name,
            median,
            p99,
            s.bytes_per_s / 1e6,
            s.msgs_per_s,
            micros(s.cpu_per_op),
            time_ratio.unwrap_or_default(),
            rate_ratio.unwrap_or_default()
        );
        println!("{}", line.trim_end());
    }
    println!(
        "CPU/op: CPU time of both processes per round trip or message. time/std: round-trip median \
         over the best std baseline's (lower is faster); rate/std: messages/s over the best std \
         baseline's (higher is faster); both ratios are taken within each repetition, then the \
         median of those is shown. echo stream: the client streams from one thread while another \
         reads the reply the server sends to every message; its rate counts replies."
    );
    if all.iter().any(|c| c.imp().api != Api::Blocking) {
        println!(
            "async rows (tokio codec, msgsock async, msgsock async feed): time/std and rate/std \
             are taken against tokio codec, not against std; each process runs one \
             current-thread tokio runtime."
        );
    }
    if all.iter().any(|c| c.family().name == "udp") {
        println!(
            "udp: no stream rows: UDP drops datagrams when the receiver falls behind, so a one-way \
             rate would count losses."
        );
    }
}

/// A target for a ratio.
#[derive(Clone, Copy)]
enum Limit {
    AtMost(f64),
    AtLeast(f64),
}

impl Limit {
    fn holds(self, v: f64) -> bool {
        match self {
            Limit::AtMost(l) => v <= l,
            Limit::AtLeast(l) => v >= l,
        }
    }

    /// As in `>= 3.00`.
    #[cfg(feature = "tokio")]
    fn describe(self) -> String {
        match self {
            Limit::AtMost(l) => format!("<= {l:.2}"),
            Limit::AtLeast(l) => format!(">= {l:.2}"),
        }
    }
}

/// The targets for the blocking subject on each stream family.
pub(crate) fn print_checks(
    results: &Results,
    syscall_costs: &HashMap<usize, Duration>,
    one_thread: &HashMap<usize, OneThread>,
    read_calls: &HashMap<usize, [Duration; 3]>,
) {
    println!("targets (stream transports):");
    for (f, family) in families().iter().enumerate() {
        if !family.targets {
            continue;
        }
        let case = |role: Role, pattern: Pattern, size: usize| {
            family_case(f, Api::Blocking, role, pattern, size)
        };
        let line = |what: &str, v: f64, rest: &str| target_line(family.name, what, v, rest);
        let bound = |what: &str, pattern: Pattern, size: usize, limit: Limit| {
            let ratios =
                case(Role::Subject, pattern, size).and_then(|c| results.vs_baseline_all(c));
            bound(family.name, what, ratios, limit);
        };
        let check = |what: &str, value: Option<f64>, ok: &dyn Fn(f64) -> bool| {
            if let Some(v) = value {
                line(what, v, if ok(v) { "  met" } else { "  missed" });
            }
        };
        for size in [64, 64 * KIB, MIB] {
            let limit = if size == 64 { 1.05 } else { 1.0 };
            let what = format!(
                "round trip {} time / best std (<= {limit:.2})",
                size_name(size)
            );
            bound(&what, Pattern::RoundTrip, size, Limit::AtMost(limit));
        }
        for size in [64, 64 * KIB, MIB] {
            let limit = if size == 64 { 0.95 } else { 1.0 };
            let what = format!("stream {} rate / best std (>= {limit:.2})", size_name(size));
            bound(&what, Pattern::Stream, size, Limit::AtLeast(limit));
        }
        for size in [64, 4 * KIB, 64 * KIB, MIB] {
            let what = format!("echo stream {} rate / best std (>= 1.00)", size_name(size));
            bound(&what, Pattern::EchoStream, size, Limit::AtLeast(1.0));
        }
        let pair = |role: Role, pattern: Pattern| {
            Some((case(role, pattern, 64)?, case(Role::Subject, pattern, 64)?))
        };
        check(
            "stream 64 B batch rate / per-message send (>= 5)",
            pair(Role::Batch, Pattern::Stream)
                .and_then(|(b, s)| results.ratio(b, &[s], Pick::Rate)),
            &|v| v >= 5.0,
        );
        check(
            "round trip 64 B spin time / best std (<= 0.20)",
            case(Role::Spin, Pattern::RoundTrip, 64).and_then(|c| results.vs_baseline(c)),
            &|v| v <= 0.2,
        );
        // The least any socket round trip costs here, over the blocking baseline's time.
        if let Some(cost) = syscall_costs.get(&f) {
            let blocking = case(Role::Subject, Pattern::RoundTrip, 64)
                .and_then(|c| results.best_baseline_median(c));
            if let Some(blocking) = blocking {
                let r = cost.as_secs_f64() / blocking.as_secs_f64();
                let what = format!(
                    "round trip 64 B: its 4 syscalls alone ({}) / best std",
                    micros(*cost)
                );
                let verdict = if r > 0.2 {
                    "  more than 0.20"
                } else {
                    "  less than 0.20"
                };
                line(&what, r, verdict);
            }
        }
        if let Some(cost) = one_thread.get(&f) {
            let what = format!(
                "send+recv 64 B one thread: msgsock {} / std {}",
                nanos(cost.subject),
                nanos(cost.best_std)
            );
            line(
                &what,
                cost.subject.as_secs_f64() / cost.best_std.as_secs_f64(),
                "",
            );
            if let Some(no_fds) = cost.no_fds {
                let what = format!(
                    "send+recv 64 B one thread: msgsock no fds {} / std",
                    nanos(no_fds)
                );
                line(
                    &what,
                    no_fds.as_secs_f64() / cost.best_std.as_secs_f64(),
                    "",
                );
            }
        }
        // What the kernel's receive calls cost apart: msgsock's Unix reads are `recvmsg(2)`.
        if let Some(costs) = read_calls.get(&f) {
            let each: Vec<String> = costs.iter().map(|c| c.as_nanos().to_string()).collect();
            let what = format!(
                "write+read 64 B by {}: {} ns",
                READ_CALLS.join(" / "),
                each.join(" / ")
            );
            line(&what, costs[2].as_secs_f64() / costs[0].as_secs_f64(), "");
        }
        let spin = pair(Role::Spin, Pattern::RoundTrip);
        let info = |what: &str, value: Option<f64>| {
            if let Some(v) = value {
                line(what, v, "");
            }
        };
        info(
            "round trip 64 B spin time / std spin (pure spinning)",
            spin.and_then(|(p, _)| {
                results.ratio(p, &[p.with_role(Role::SpinBaseline)?], Pick::Time)
            }),
        );
        info(
            "round trip 64 B spin CPU / blocking msgsock CPU (cost)",
            spin.and_then(|(p, s)| results.ratio(p, &[s], Pick::Cpu)),
        );
        // Reads without control data, where the family has descriptors to refuse.
        for pattern in Pattern::ALL {
            let what = match pattern {
                Pattern::RoundTrip => "round trip 64 B no fds time / best std",
                Pattern::Stream => "stream 64 B no fds rate / best std",
                Pattern::EchoStream => "echo stream 64 B no fds rate / best std",
            };
            info(
                what,
                case(Role::NoFds, pattern, 64).and_then(|c| results.vs_baseline(c)),
            );
        }
        #[cfg(feature = "tokio")]
        print_async_checks(f, results);
    }
}

/// The targets for the async implementations on the stream family `f`: against
/// `tokio codec` on every row, and `msgsock async` 64 B streaming against the best blocking
/// hand-written per-message rate.
#[cfg(feature = "tokio")]
fn print_async_checks(f: usize, results: &Results) {
    let family = &families()[f];
    let case = |role, pattern, size| family_case(f, Api::Async, role, pattern, size);
    for (role, name) in [
        (Role::Subject, "msgsock async"),
        (Role::Feed, "msgsock async feed"),
        (Role::Queued, "msgsock async queued"),
    ] {
        for pattern in Pattern::ALL {
            for &size in family.sizes(pattern) {
                let (figure, limit) = match pattern {
                    Pattern::RoundTrip => ("time", Limit::AtMost(1.0)),
                    Pattern::Stream | Pattern::EchoStream => ("rate", Limit::AtLeast(1.0)),
                };
                let what = format!(
                    "{name} {} {} {figure} / tokio ({})",
                    pattern.label(),
                    size_name(size),
                    limit.describe()
                );
                let ratios = case(role, pattern, size).and_then(|c| results.vs_baseline_all(c));
                bound(family.name, &what, ratios, limit);
            }
        }
    }
    // Reads without control data, where the family has descriptors to refuse.
    for pattern in Pattern::ALL {
        let figure = match pattern {
            Pattern::RoundTrip => "time",
            Pattern::Stream | Pattern::EchoStream => "rate",
        };
        let ratio = case(Role::NoFds, pattern, 64).and_then(|c| results.vs_baseline(c));
        if let Some(v) = ratio {
            let what = format!(
                "msgsock async no fds {} 64 B {figure} / tokio",
                pattern.label()
            );
            target_line(family.name, &what, v, "");
        }
    }
    // Against the blocking hand-written code: what queueing the sends would have to win.
    let blocking = family_case(f, Api::Blocking, Role::Subject, Pattern::Stream, 64);
    for (role, name, limit) in [
        (Role::Subject, "msgsock async", None),
        (Role::Feed, "msgsock async feed", None),
        (
            Role::Queued,
            "msgsock async queued",
            Some(Limit::AtLeast(3.0)),
        ),
    ] {
        let ratios = case(role, Pattern::Stream, 64)
            .zip(blocking)
            .and_then(|(a, b)| results.ratios(a, &b.baselines(), Pick::Rate));
        match limit {
            Some(limit) => {
                let what = format!("{name} stream 64 B rate / best std ({})", limit.describe());
                bound(family.name, &what, ratios, limit);
            }
            None => {
                if let Some(v) = ratios.and_then(mid) {
                    target_line(
                        family.name,
                        &format!("{name} stream 64 B rate / best std"),
                        v,
                        "",
                    );
                }
            }
        }
    }
}

/// The case of family `f` run by its first implementation of `api` and `role`.
fn family_case(f: usize, api: Api, role: Role, pattern: Pattern, size: usize) -> Option<Case> {
    let imp = families()[f]
        .impls
        .iter()
        .position(|i| i.role == role && i.api == api)?;
    Some(Case {
        family: f,
        pattern,
        size,
        imp,
    })
}

fn target_line(family: &str, what: &str, v: f64, rest: &str) {
    println!("  {family:<5} {what:<64} {v:>6.3}x{rest}");
}

/// A target on per-repetition ratios: their median, with the 95% confidence interval of that
/// median, so that a ratio within noise of its limit reads as such.
fn bound(family: &str, what: &str, ratios: Option<Vec<f64>>, limit: Limit) {
    let Some(ratios) = ratios else {
        return;
    };
    let Some(median) = mid(ratios.clone()) else {
        return;
    };
    let line = |rest: &str| target_line(family, what, median, rest);
    let Some((lo, hi)) = median_ci95(ratios) else {
        line("  (too few repetitions for a verdict)");
        return;
    };
    let verdict = match (limit.holds(median), limit.holds(lo) && limit.holds(hi)) {
        (true, true) => "met",
        (true, false) => "met, within noise",
        (false, _) if limit.holds(lo) || limit.holds(hi) => "missed, within noise",
        (false, _) => "missed",
    };
    line(&format!("  [{lo:.3}, {hi:.3}]  {verdict}"));
}

fn micros(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

fn nanos(d: Duration) -> String {
    format!("{} ns", d.as_nanos())
}

fn ratio(r: f64) -> String {
    format!("{r:.2}x")
}
