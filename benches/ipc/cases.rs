//! The cases of a run, one per family, pattern, size and implementation, in table order, and how
//! a case finds the cases it is compared with.

use crate::impls::{Impl, Role};
use crate::patterns::Pattern;
use crate::transports::{families, Family};
use crate::{KIB, MIB};

/// Spin pays off for small messages, where the wake-up is most of the cost.
const SPIN_MAX_SIZE: usize = 4 * KIB;
/// Batches are only measured where one message does not already fill a system call.
const BATCH_MAX_SIZE: usize = 64 * KIB;
/// A read without control data saves a fixed cost per read, which shows on small messages, and
/// on 64 KiB ones, which take two reads each.
const NO_FDS_MAX_SIZE: usize = 64 * KIB;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Case {
    /// An index into [`families`].
    pub(crate) family: usize,
    pub(crate) pattern: Pattern,
    pub(crate) size: usize,
    /// An index into the family's implementations.
    pub(crate) imp: usize,
}

impl Case {
    pub(crate) fn family(self) -> &'static Family {
        &families()[self.family]
    }

    pub(crate) fn imp(self) -> &'static Impl {
        &self.family().impls[self.imp]
    }

    /// Whether the case sends with `send_batch`.
    pub(crate) fn batch(self) -> bool {
        self.imp().role == Role::Batch
    }

    /// The case's family, pattern and size, as in `unix stream 1 MiB`.
    pub(crate) fn group_name(self) -> String {
        format!(
            "{} {} {}",
            self.family().name,
            self.pattern.word(),
            size_name(self.size)
        )
    }

    /// The group name, the implementation and its kind of code, as in
    /// `unix stream 1 MiB std writev blocking`: what the command line's words are matched
    /// against.
    pub(crate) fn describe(self) -> String {
        format!(
            "{} {} {}",
            self.group_name(),
            self.imp().name,
            self.imp().api.word()
        )
    }

    /// The same pattern and size run by the first implementation of the family with `role`
    /// and this case's kind of code.
    pub(crate) fn with_role(self, role: Role) -> Option<Case> {
        self.all_with_role(role).next()
    }

    /// The hand-written baselines of this case's family, pattern, size and kind of code.
    pub(crate) fn baselines(self) -> Vec<Case> {
        self.all_with_role(Role::Baseline).collect()
    }

    fn all_with_role(self, role: Role) -> impl Iterator<Item = Case> {
        let api = self.imp().api;
        self.family()
            .impls
            .iter()
            .enumerate()
            .filter(move |(_, i)| i.role == role && i.api == api)
            .map(move |(imp, _)| Case { imp, ..self })
    }
}

/// Every case, in table order.
pub(crate) fn all() -> Vec<Case> {
    let mut out = Vec::new();
    for (f, family) in families().iter().enumerate() {
        for pattern in Pattern::ALL {
            for &size in family.sizes(pattern) {
                for (imp, i) in family.impls.iter().enumerate() {
                    let wanted = match (i.role, pattern) {
                        (Role::Subject | Role::Baseline, _) => true,
                        (Role::Spin | Role::SpinBaseline, Pattern::RoundTrip) => {
                            size <= SPIN_MAX_SIZE
                        }
                        (Role::Batch, Pattern::Stream) => size <= BATCH_MAX_SIZE,
                        (Role::NoFds, _) => size <= NO_FDS_MAX_SIZE,
                        #[cfg(feature = "tokio")]
                        (Role::Feed | Role::Queued, _) => true,
                        _ => false,
                    };
                    if wanted {
                        out.push(Case {
                            family: f,
                            pattern,
                            size,
                            imp,
                        });
                    }
                }
            }
        }
    }
    out
}

/// `64 B`, `4 KiB`, `1 MiB`.
pub(crate) fn size_name(size: usize) -> String {
    match size {
        s if s >= MIB && s % MIB == 0 => format!("{} MiB", s / MIB),
        s if s >= KIB && s % KIB == 0 => format!("{} KiB", s / KIB),
        s => format!("{s} B"),
    }
}
