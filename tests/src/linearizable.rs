//! A linearizability checker for histories of single-key registers with compare-and-set, in
//! the manner of Wing & Gong, Lowe and Porcupine: find an order of the operations that respects
//! real time (an operation that returned before another was invoked comes first) and in which
//! every result is what a sequential register would have answered. Keys are independent, so each
//! key's history is checked on its own (P-compositionality), which keeps the search small.
//!
//! Values are unique per write, which lets a compare-and-set on a revision be checked as a
//! compare on the value that revision wrote.
//!
//! An operation whose outcome the client never learned (a timeout, a dropped connection) may
//! have taken effect at any moment after it was invoked, or never: the search may apply it where
//! it fits and need not apply it at all.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// A value written by one write, unique in the history.
pub type Value = u64;

/// What a client asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    Read,
    /// Unconditional put.
    Write(Value),
    /// Put only if the register holds `expect`.
    Cas {
        expect: Value,
        new: Value,
    },
    /// Put only if the register is empty.
    Create(Value),
    /// Unconditional delete.
    Delete,
}

/// What the client was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    /// A read's answer.
    Read(Option<Value>),
    /// The write took effect.
    Ok,
    /// The compare failed (CAS: another value; create: it existed); nothing changed.
    Mismatch,
    /// Delete of an empty register; nothing changed.
    NotFound,
    /// The outcome is unknown: it may or may not have taken effect.
    Unknown,
}

/// One operation as a client saw it. Times are any monotonic clock, e.g. nanoseconds since the
/// test started; `ret` is `None` when the outcome is unknown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Op {
    pub client: usize,
    pub key: String,
    pub input: Input,
    pub output: Output,
    pub call: u64,
    pub ret: Option<u64>,
}

/// Why a history is not linearizable, or could not be decided.
#[derive(Debug)]
pub enum Verdict {
    /// No order explains what the clients saw on this key.
    NotLinearizable {
        key: String,
        /// The longest prefix of an order that worked, then the operations none of which could
        /// go next.
        longest: Vec<Op>,
        stuck: Vec<Op>,
    },
    /// The search gave up after exploring `states` configurations.
    TooLarge { key: String, states: usize },
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::NotLinearizable {
                key,
                longest,
                stuck,
            } => {
                writeln!(f, "key {key}: not linearizable")?;
                writeln!(
                    f,
                    "  longest order that explains the history ({} ops), last 10:",
                    longest.len()
                )?;
                for op in longest.iter().rev().take(10).rev() {
                    writeln!(f, "    {op:?}")?;
                }
                writeln!(f, "  then none of these could go next:")?;
                for op in stuck {
                    writeln!(f, "    {op:?}")?;
                }
                Ok(())
            }
            Verdict::TooLarge { key, states } => {
                write!(f, "key {key}: gave up after {states} search states")
            }
        }
    }
}

/// What a sequential register does: the next state, or `None` when `output` is impossible from
/// `state`. Unknown outcomes are only ever applied with their effect (not applying them at all
/// is the other choice).
fn step(state: Option<Value>, input: Input, output: Output) -> Option<Option<Value>> {
    use Input::*;
    use Output as O;
    match (input, output) {
        (Read, O::Read(v)) => (v == state).then_some(state),
        (Write(v), O::Ok | O::Unknown) => Some(Some(v)),
        (Cas { expect, new }, O::Ok | O::Unknown) => (state == Some(expect)).then_some(Some(new)),
        (Cas { expect, .. }, O::Mismatch) => (state != Some(expect)).then_some(state),
        (Create(v), O::Ok | O::Unknown) => state.is_none().then_some(Some(v)),
        (Create(_), O::Mismatch) => state.is_some().then_some(state),
        (Delete, O::Ok | O::Unknown) => state.is_some().then_some(None),
        (Delete, O::NotFound) => state.is_none().then_some(None),
        _ => None,
    }
}

/// Search states explored per key before giving up.
const STATE_BUDGET: usize = 5_000_000;

/// Checks every key's history.
///
/// # Errors
/// The first key whose history no order explains (or that was too large to decide).
pub fn check(ops: &[Op]) -> Result<(), Verdict> {
    let mut by_key: BTreeMap<&str, Vec<Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(&op.key).or_default().push(op.clone());
    }
    for (key, ops) in by_key {
        check_key(key, ops)?;
    }
    Ok(())
}

struct Search {
    ops: Vec<Op>,
    done: Vec<bool>,
    /// Operations with a known outcome still to place.
    known_left: usize,
    /// Return times of the known operations still to place (time → how many).
    pending_returns: BTreeMap<u64, usize>,
    /// The first operation not yet placed (all before it are).
    first_open: usize,
    /// A random 128-bit tag per operation; the xor of the placed ones identifies the set.
    tags: Vec<u128>,
    placed: u128,
    order: Vec<usize>,
    longest: Vec<usize>,
    seen: HashSet<(u128, Option<Value>)>,
}

fn check_key(key: &str, mut ops: Vec<Op>) -> Result<(), Verdict> {
    ops.sort_by_key(|o| o.call);
    let known_left = ops.iter().filter(|o| o.ret.is_some()).count();
    let mut pending_returns = BTreeMap::new();
    for ret in ops.iter().filter_map(|o| o.ret) {
        *pending_returns.entry(ret).or_insert(0) += 1;
    }
    // Deterministic tags (splitmix64), so a run explores the same way every time.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let tags = (0..ops.len())
        .map(|_| (u128::from(next()) << 64) | u128::from(next()))
        .collect();
    let n = ops.len();
    let mut search = Search {
        ops,
        done: vec![false; n],
        known_left,
        pending_returns,
        first_open: 0,
        tags,
        placed: 0,
        order: Vec::new(),
        longest: Vec::new(),
        seen: HashSet::new(),
    };
    match search.run(None) {
        Some(true) => Ok(()),
        Some(false) => {
            let longest: Vec<Op> = search
                .longest
                .iter()
                .map(|&i| search.ops[i].clone())
                .collect();
            let placed: HashSet<usize> = search.longest.iter().copied().collect();
            let min_ret = search
                .ops
                .iter()
                .enumerate()
                .filter(|(i, _)| !placed.contains(i))
                .filter_map(|(_, o)| o.ret)
                .min()
                .unwrap_or(u64::MAX);
            let stuck = search
                .ops
                .iter()
                .enumerate()
                .filter(|(i, o)| !placed.contains(i) && o.call < min_ret)
                .map(|(_, o)| o.clone())
                .collect();
            Err(Verdict::NotLinearizable {
                key: key.to_string(),
                longest,
                stuck,
            })
        }
        None => Err(Verdict::TooLarge {
            key: key.to_string(),
            states: search.seen.len(),
        }),
    }
}

impl Search {
    fn place(&mut self, i: usize) {
        self.done[i] = true;
        self.placed ^= self.tags[i];
        self.order.push(i);
        if let Some(ret) = self.ops[i].ret {
            self.known_left -= 1;
            if let Some(n) = self.pending_returns.get_mut(&ret) {
                *n -= 1;
                if *n == 0 {
                    self.pending_returns.remove(&ret);
                }
            }
        }
        while self.first_open < self.done.len() && self.done[self.first_open] {
            self.first_open += 1;
        }
    }

    fn unplace(&mut self, i: usize, first_open: usize) {
        self.done[i] = false;
        self.placed ^= self.tags[i];
        self.order.pop();
        if let Some(ret) = self.ops[i].ret {
            self.known_left += 1;
            *self.pending_returns.entry(ret).or_insert(0) += 1;
        }
        self.first_open = first_open;
    }

    /// Depth-first: `Some(true)` when the rest can be ordered from `state`, `None` when over
    /// budget.
    fn run(&mut self, state: Option<Value>) -> Option<bool> {
        if self.known_left == 0 {
            return Some(true);
        }
        if !self.seen.insert((self.placed, state)) {
            return Some(false);
        }
        if self.seen.len() > STATE_BUDGET {
            return None;
        }
        if self.order.len() > self.longest.len() {
            self.longest = self.order.clone();
        }
        // Only an operation invoked before every unplaced operation's return can go next.
        let min_ret = self
            .pending_returns
            .keys()
            .next()
            .copied()
            .unwrap_or(u64::MAX);
        let first_open = self.first_open;
        for i in first_open..self.ops.len() {
            if self.ops[i].call >= min_ret {
                break;
            }
            if self.done[i] {
                continue;
            }
            let op = &self.ops[i];
            let Some(next) = step(state, op.input, op.output) else {
                continue;
            };
            self.place(i);
            let result = self.run(next);
            self.unplace(i, first_open);
            match result {
                Some(false) => {}
                other => return other,
            }
        }
        Some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: usize, input: Input, output: Output, call: u64, ret: Option<u64>) -> Op {
        Op {
            client,
            key: "k".into(),
            input,
            output,
            call,
            ret,
        }
    }

    #[test]
    fn sequential_register_history_passes() {
        let h = vec![
            op(0, Input::Create(1), Output::Ok, 0, Some(1)),
            op(0, Input::Read, Output::Read(Some(1)), 2, Some(3)),
            op(0, Input::Cas { expect: 1, new: 2 }, Output::Ok, 4, Some(5)),
            op(
                0,
                Input::Cas { expect: 1, new: 3 },
                Output::Mismatch,
                6,
                Some(7),
            ),
            op(0, Input::Delete, Output::Ok, 8, Some(9)),
            op(0, Input::Delete, Output::NotFound, 10, Some(11)),
            op(0, Input::Read, Output::Read(None), 12, Some(13)),
        ];
        check(&h).unwrap();
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        // Two overlapping writes; a later read sees the one invoked first.
        let h = vec![
            op(0, Input::Write(1), Output::Ok, 0, Some(10)),
            op(1, Input::Write(2), Output::Ok, 1, Some(9)),
            op(2, Input::Read, Output::Read(Some(1)), 11, Some(12)),
        ];
        check(&h).unwrap();
    }

    #[test]
    fn a_stale_read_is_caught() {
        // The write of 2 finished before the read began, yet the read saw 1.
        let h = vec![
            op(0, Input::Write(1), Output::Ok, 0, Some(1)),
            op(0, Input::Write(2), Output::Ok, 2, Some(3)),
            op(1, Input::Read, Output::Read(Some(1)), 4, Some(5)),
        ];
        let err = check(&h).unwrap_err();
        assert!(matches!(err, Verdict::NotLinearizable { .. }), "{err}");
    }

    #[test]
    fn a_lost_acknowledged_write_is_caught() {
        let h = vec![
            op(0, Input::Create(1), Output::Ok, 0, Some(1)),
            op(1, Input::Read, Output::Read(None), 2, Some(3)),
        ];
        assert!(check(&h).is_err());
    }

    #[test]
    fn a_cas_that_succeeded_twice_on_one_value_is_caught() {
        let h = vec![
            op(0, Input::Write(1), Output::Ok, 0, Some(1)),
            op(1, Input::Cas { expect: 1, new: 2 }, Output::Ok, 2, Some(5)),
            op(2, Input::Cas { expect: 1, new: 3 }, Output::Ok, 3, Some(6)),
        ];
        assert!(check(&h).is_err());
    }

    #[test]
    fn an_unknown_outcome_may_apply_or_not() {
        // Applied: a later read sees it.
        let applied = vec![
            op(0, Input::Write(1), Output::Unknown, 0, None),
            op(1, Input::Read, Output::Read(Some(1)), 5, Some(6)),
        ];
        check(&applied).unwrap();
        // Not applied: a later read does not.
        let lost = vec![
            op(0, Input::Write(1), Output::Unknown, 0, None),
            op(1, Input::Read, Output::Read(None), 5, Some(6)),
        ];
        check(&lost).unwrap();
        // But it cannot take effect before it was invoked.
        let early = vec![
            op(1, Input::Read, Output::Read(Some(1)), 0, Some(1)),
            op(0, Input::Write(1), Output::Unknown, 2, None),
        ];
        assert!(check(&early).is_err());
    }

    #[test]
    fn a_value_that_comes_back_after_being_overwritten_is_caught() {
        let h = vec![
            op(0, Input::Write(1), Output::Ok, 0, Some(1)),
            op(0, Input::Write(2), Output::Ok, 2, Some(3)),
            op(1, Input::Read, Output::Read(Some(2)), 4, Some(5)),
            op(2, Input::Read, Output::Read(Some(1)), 6, Some(7)),
        ];
        assert!(check(&h).is_err());
    }

    #[test]
    fn a_long_concurrent_history_is_decided_quickly() {
        // 6 clients, 400 ops: each writes its own values then reads them back, overlapping.
        let mut h = Vec::new();
        let mut t = 0;
        for round in 0..66u64 {
            for c in 0..6u64 {
                let v = round * 10 + c;
                h.push(op(c as usize, Input::Write(v), Output::Ok, t, Some(t + 3)));
                t += 1;
            }
            let last = round * 10 + 5;
            h.push(op(
                9,
                Input::Read,
                Output::Read(Some(last)),
                t + 3,
                Some(t + 4),
            ));
            t += 5;
        }
        check(&h).unwrap();
    }
}
