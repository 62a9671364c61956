//! The terms of the log's entries, kept in memory as runs.
//!
//! raft-rs asks the store for an entry's term many times per append (matching a follower's log,
//! deciding what commits, answering appends). Reading it from sled means decoding the whole
//! entry, which under load is a batch of dozens of commands: in a profile under load that was a
//! fifth of the raft threads' time (BENCHMARKS.md). Terms change only at elections, so the
//! whole log's terms fit in a handful of `(first index, term)` runs.

/// Terms of a contiguous run of log indexes, as `(first index, term)` runs in index order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct TermRuns {
    runs: Vec<(u64, u64)>,
}

impl TermRuns {
    /// The term of the entry at `index`, if some run covers it. The caller knows the log's bounds;
    /// an index before the first run has none.
    pub(crate) fn term(&self, index: u64) -> Option<u64> {
        let after = self.runs.partition_point(|&(first, _)| first <= index);
        after.checked_sub(1).map(|i| self.runs[i].1)
    }

    /// Records the entry at `index` with `term`: the entry after the last one recorded, or one
    /// that replaces it and everything after it.
    pub(crate) fn append(&mut self, index: u64, term: u64) {
        self.truncate_from(index);
        match self.runs.last() {
            Some(&(_, last)) if last == term => {}
            _ => self.runs.push((index, term)),
        }
    }

    /// Forgets the entries from `index` on.
    pub(crate) fn truncate_from(&mut self, index: u64) {
        let keep = self.runs.partition_point(|&(first, _)| first < index);
        self.runs.truncate(keep);
    }

    /// Forgets the entries up to and including `index` (compacted into a snapshot). A run that
    /// starts before it and goes on after it now starts at `index + 1`.
    pub(crate) fn compact_through(&mut self, index: u64) {
        let covering = self.runs.partition_point(|&(first, _)| first <= index + 1);
        if covering > 0 {
            self.runs.drain(..covering - 1);
            let first = &mut self.runs[0].0;
            *first = (*first).max(index + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::TermRuns;

    fn runs(entries: &[(u64, u64)]) -> TermRuns {
        let mut t = TermRuns::default();
        for &(index, term) in entries {
            t.append(index, term);
        }
        t
    }

    #[test]
    fn one_run_per_term() {
        let t = runs(&[(5, 1), (6, 1), (7, 2), (8, 2), (9, 4)]);
        assert_eq!(t.runs, vec![(5, 1), (7, 2), (9, 4)]);
        assert_eq!(t.term(4), None);
        assert_eq!(t.term(5), Some(1));
        assert_eq!(t.term(6), Some(1));
        assert_eq!(t.term(7), Some(2));
        assert_eq!(t.term(8), Some(2));
        assert_eq!(t.term(9), Some(4));
    }

    #[test]
    fn a_conflicting_append_replaces_the_suffix() {
        let mut t = runs(&[(1, 1), (2, 1), (3, 2), (4, 2), (5, 3)]);
        t.append(3, 4);
        assert_eq!(t.runs, vec![(1, 1), (3, 4)]);
        t.append(2, 1);
        assert_eq!(t.runs, vec![(1, 1)]);
        t.append(3, 1);
        assert_eq!(t.runs, vec![(1, 1)]);
        t.truncate_from(1);
        assert_eq!(t.runs, vec![]);
    }

    #[test]
    fn compaction_keeps_the_run_that_goes_on() {
        let mut t = runs(&[(1, 1), (2, 1), (3, 2), (4, 2), (5, 2), (6, 3)]);
        t.compact_through(3);
        assert_eq!(t.runs, vec![(4, 2), (6, 3)]);
        t.compact_through(5);
        assert_eq!(t.runs, vec![(6, 3)]);
        t.compact_through(6);
        assert_eq!(
            t.runs,
            vec![(7, 3)],
            "the next entry, if any, may go on with term 3"
        );
        assert_eq!(t.term(6), None);
        t.append(7, 3);
        assert_eq!(t.runs, vec![(7, 3)]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Append at this many entries back from the end (0: after the last), with a term step.
        Append {
            back: u64,
            term_step: u64,
        },
        Compact {
            keep: u64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..3, 0u64..2).prop_map(|(back, term_step)| Op::Append { back, term_step }),
            1 => (0u64..6).prop_map(|keep| Op::Compact { keep }),
        ]
    }

    proptest! {
        /// Against a plain list of every entry's term, as a log store would change it.
        #[test]
        fn agrees_with_a_term_per_entry(ops in prop::collection::vec(op(), 1..80)) {
            let mut runs = TermRuns::default();
            // The model: first index and the term of each entry from there on.
            let mut first = 1u64;
            let mut model: Vec<u64> = Vec::new();
            let mut term = 1u64;
            for op in ops {
                match op {
                    Op::Append { back, term_step } => {
                        let back = back.min(model.len() as u64);
                        let index = first + model.len() as u64 - back;
                        term += term_step;
                        model.truncate((index - first) as usize);
                        model.push(term);
                        runs.append(index, term);
                    }
                    Op::Compact { keep } => {
                        let keep = keep.min(model.len() as u64) as usize;
                        let drop = model.len() - keep;
                        model.drain(..drop);
                        first += drop as u64;
                        if drop > 0 {
                            runs.compact_through(first - 1);
                        }
                    }
                }
                for (i, t) in model.iter().enumerate() {
                    prop_assert_eq!(runs.term(first + i as u64), Some(*t));
                }
                prop_assert!(first == 1 || runs.term(first - 1).is_none());
            }
        }
    }
}
