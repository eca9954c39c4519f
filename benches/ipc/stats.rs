//! The figures of a run: medians over the repetitions, ratios taken within each repetition, and
//! a distribution-free confidence interval for a median.

use std::collections::HashMap;
use std::time::Duration;

use crate::cases::Case;
use crate::patterns::{Pattern, Sample};

/// Every sample, by case, in repetition order.
pub(crate) struct Results(pub(crate) HashMap<Case, Vec<Sample>>);

/// The figure a ratio compares.
#[derive(Clone, Copy)]
pub(crate) enum Pick {
    /// Round-trip median; lower is better.
    Time,
    /// Messages per second; higher is better.
    Rate,
    /// CPU time per operation; lower is better.
    Cpu,
}

impl Pick {
    fn figure(self, s: &Sample) -> f64 {
        match self {
            Pick::Time => s.median.as_secs_f64(),
            Pick::Rate => s.msgs_per_s,
            Pick::Cpu => s.cpu_per_op.as_secs_f64(),
        }
    }

    /// What a pattern is judged by: the round-trip time, or the message rate of a stream.
    pub(crate) fn of(pattern: Pattern) -> Pick {
        match pattern {
            Pattern::RoundTrip => Pick::Time,
            Pattern::Stream | Pattern::EchoStream => Pick::Rate,
        }
    }
}

/// The median of `v`.
pub(crate) fn mid<T: Copy + PartialOrd>(mut v: Vec<T>) -> Option<T> {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v.get(v.len() / 2).copied()
}

impl Results {
    /// The median of each figure over the repetitions.
    pub(crate) fn median(&self, case: Case) -> Option<Sample> {
        let s = self.0.get(&case)?;
        Some(Sample {
            median: mid(s.iter().map(|s| s.median).collect())?,
            p99: mid(s.iter().map(|s| s.p99).collect())?,
            msgs_per_s: mid(s.iter().map(|s| s.msgs_per_s).collect())?,
            bytes_per_s: mid(s.iter().map(|s| s.bytes_per_s).collect())?,
            cpu_per_op: mid(s.iter().map(|s| s.cpu_per_op).collect())?,
        })
    }

    /// The median over the repetitions of `figure(case) / figure(best)`, each ratio taken
    /// within one repetition, so that slow drift in the machine's load cancels out. `best` is the
    /// one case of `other` with the best median over all repetitions: picking the better of
    /// several within each repetition would compare against the luckiest sample every time and
    /// bias every ratio against `case` by about the noise.
    pub(crate) fn ratio(&self, case: Case, other: &[Case], pick: Pick) -> Option<f64> {
        mid(self.ratios(case, other, pick)?)
    }

    /// The ratios behind [`ratio`](Self::ratio), one per repetition.
    pub(crate) fn ratios(&self, case: Case, other: &[Case], pick: Pick) -> Option<Vec<f64>> {
        let mine = self.0.get(&case)?;
        let median = |samples: &Vec<Sample>| mid(samples.iter().map(|s| pick.figure(s)).collect());
        let best = other
            .iter()
            .filter_map(|c| self.0.get(c))
            .filter_map(|samples| Some((median(samples)?, samples)))
            .reduce(|a, b| {
                let b_better = match pick {
                    Pick::Time | Pick::Cpu => b.0 < a.0,
                    Pick::Rate => b.0 > a.0,
                };
                if b_better {
                    b
                } else {
                    a
                }
            })?
            .1;
        let ratios = mine
            .iter()
            .zip(best)
            .map(|(s, theirs)| pick.figure(s) / pick.figure(theirs));
        Some(ratios.collect())
    }

    /// The round-trip median of the best baseline of `case`'s family, pattern and size.
    pub(crate) fn best_baseline_median(&self, case: Case) -> Option<Duration> {
        case.baselines()
            .into_iter()
            .filter_map(|c| self.median(c))
            .map(|s| s.median)
            .min()
    }

    /// [`ratio`](Self::ratio) against the best baseline of the same family, pattern and size:
    /// round-trip time for round trips, message rate for streams.
    pub(crate) fn vs_baseline(&self, case: Case) -> Option<f64> {
        mid(self.vs_baseline_all(case)?)
    }

    /// The ratios behind [`vs_baseline`](Self::vs_baseline), one per repetition.
    pub(crate) fn vs_baseline_all(&self, case: Case) -> Option<Vec<f64>> {
        self.ratios(case, &case.baselines(), Pick::of(case.pattern))
    }
}

/// A distribution-free 95% confidence interval for the median of `v`: the order statistics
/// `k` from each end, with `k` the largest such that fewer than `k` of `n` fair coin flips come
/// up heads with probability at most 2.5%. `None` with fewer than 6 values, which cannot give
/// 95%.
pub(crate) fn median_ci95(mut v: Vec<f64>) -> Option<(f64, f64)> {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len();
    // P(Binomial(n, 1/2) <= j), summed term by term.
    let mut term = 0.5f64.powi(n as i32);
    let mut cdf = 0.0;
    let mut k = 0;
    for j in 0..n {
        cdf += term;
        if cdf > 0.025 {
            break;
        }
        k = j + 1;
        term *= (n - j) as f64 / (j + 1) as f64;
    }
    (k >= 1).then(|| (v[k - 1], v[n - k]))
}
