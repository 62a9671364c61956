//! The newest log entries, kept in memory next to the durable log.
//!
//! Every entry is read back from the store at least once after it is written: each node reads
//! it to apply it once it commits, and a leader reads entries to send to a follower that is not
//! at the tip of the log. From sled such a read is a range scan that searches the tree for each
//! key and then decodes the entry: under sequential writes that was an eighth of a follower's
//! raft thread (BENCHMARKS.md). The entries read are almost always the ones just written, so
//! the store keeps the newest of them, up to a byte budget, and answers reads that fall inside
//! that window from here. Older ones come from disk as before.

use std::collections::VecDeque;

use raft::eraftpb::Entry;

use super::limit_size;

/// A contiguous run of the log's newest entries, at most a byte budget of them.
#[derive(Debug)]
pub(crate) struct EntryCache {
    entries: VecDeque<Entry>,
    /// [`weight`] of `entries`, summed.
    bytes: usize,
    budget: usize,
}

/// What an entry costs the cache: its payload and the struct that holds it.
fn weight(e: &Entry) -> usize {
    e.data.len() + e.context.len() + std::mem::size_of::<Entry>()
}

impl EntryCache {
    /// An empty cache that keeps at most `budget` bytes of entries.
    pub(crate) fn new(budget: usize) -> Self {
        EntryCache {
            entries: VecDeque::new(),
            bytes: 0,
            budget,
        }
    }

    /// Records entries just written to the log: contiguous, and the first one at most one past
    /// the last one cached. Cached entries from the first one's index on are replaced (a
    /// conflicting suffix); entries that do not join the cached run replace all of it.
    pub(crate) fn append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else {
            return;
        };
        let joins = match (self.entries.front(), self.entries.back()) {
            (Some(f), Some(b)) => f.index < first.index && first.index <= b.index + 1,
            _ => false,
        };
        if joins {
            while self.entries.back().is_some_and(|b| b.index >= first.index) {
                self.pop_back();
            }
        } else {
            self.clear();
        }
        for e in entries {
            self.bytes += weight(e);
            self.entries.push_back(e.clone());
        }
        while self.bytes > self.budget {
            self.pop_front();
        }
    }

    /// Forgets the entries up to and including `index` (compacted into a snapshot).
    pub(crate) fn compact_through(&mut self, index: u64) {
        while self.entries.front().is_some_and(|f| f.index <= index) {
            self.pop_front();
        }
    }

    /// Forgets everything (the log was replaced by a snapshot).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Entries `low..high`, trimmed to `max_size` as raft-rs trims them, when every one of them
    /// is cached; `None` when any is not. The caller has checked the range against the log.
    pub(crate) fn get(&self, low: u64, high: u64, max_size: Option<u64>) -> Option<Vec<Entry>> {
        let first = self.entries.front()?.index;
        let last = self.entries.back()?.index;
        if low < first || high > last + 1 || low > high {
            return None;
        }
        let mut out: Vec<Entry> = self
            .entries
            .range((low - first) as usize..(high - first) as usize)
            .cloned()
            .collect();
        limit_size(&mut out, max_size);
        Some(out)
    }

    fn pop_front(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.bytes -= weight(&e);
        }
    }

    fn pop_back(&mut self) {
        if let Some(e) = self.entries.pop_back() {
            self.bytes -= weight(&e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, len: usize) -> Entry {
        Entry {
            index,
            term,
            data: vec![term as u8; len].into(),
            ..Default::default()
        }
    }

    fn run(first: u64, last: u64, term: u64) -> Vec<Entry> {
        (first..=last).map(|i| entry(i, term, 10)).collect()
    }

    fn indexes_terms(es: &[Entry]) -> Vec<(u64, u64)> {
        es.iter().map(|e| (e.index, e.term)).collect()
    }

    #[test]
    fn serves_the_cached_window_and_nothing_outside_it() {
        let mut c = EntryCache::new(1 << 20);
        assert_eq!(c.get(1, 2, None), None, "empty");
        c.append(&run(5, 9, 1));
        assert_eq!(c.get(5, 10, None), Some(run(5, 9, 1)));
        assert_eq!(c.get(7, 8, None), Some(run(7, 7, 1)));
        assert_eq!(c.get(6, 6, None), Some(vec![]));
        assert_eq!(c.get(4, 6, None), None, "starts before the window");
        assert_eq!(c.get(8, 11, None), None, "ends after it");
        assert_eq!(c.get(5, 10, Some(0)).map(|v| v.len()), Some(1), "keeps one");
    }

    #[test]
    fn a_conflicting_suffix_is_replaced() {
        let mut c = EntryCache::new(1 << 20);
        c.append(&run(1, 6, 1));
        c.append(&run(4, 5, 2));
        let got = c.get(1, 6, None).expect("cached");
        assert_eq!(
            indexes_terms(&got),
            vec![(1, 1), (2, 1), (3, 1), (4, 2), (5, 2)]
        );
        assert_eq!(c.get(1, 7, None), None, "entry 6 was dropped");
        // Appending right after the last one extends the run.
        c.append(&run(6, 6, 2));
        assert_eq!(c.get(5, 7, None).map(|v| v.len()), Some(2));
    }

    #[test]
    fn entries_that_do_not_join_the_run_replace_it() {
        let mut c = EntryCache::new(1 << 20);
        c.append(&run(5, 9, 1));
        c.append(&run(3, 4, 2));
        assert_eq!(c.get(3, 5, None), Some(run(3, 4, 2)));
        assert_eq!(c.get(5, 6, None), None);
        c.append(&run(20, 21, 3));
        assert_eq!(c.get(20, 22, None), Some(run(20, 21, 3)));
        assert_eq!(c.get(3, 4, None), None);
    }

    #[test]
    fn keeps_the_newest_entries_within_its_budget() {
        let per = weight(&entry(1, 1, 100));
        let mut c = EntryCache::new(per * 3);
        for i in 1..=10 {
            c.append(&[entry(i, 1, 100)]);
        }
        assert_eq!(c.get(8, 11, None).map(|v| v.len()), Some(3));
        assert_eq!(c.get(7, 11, None), None, "evicted");
        assert_eq!(c.bytes, per * 3);
        // An entry larger than the whole budget is not kept, and takes the others with it.
        c.append(&[entry(11, 1, per * 4)]);
        assert_eq!(c.get(11, 12, None), None);
        assert_eq!(c.bytes, 0);
    }

    #[test]
    fn compaction_and_clear_forget_entries() {
        let mut c = EntryCache::new(1 << 20);
        c.append(&run(1, 10, 1));
        c.compact_through(4);
        assert_eq!(c.get(4, 6, None), None);
        assert_eq!(c.get(5, 11, None), Some(run(5, 10, 1)));
        c.compact_through(20);
        assert_eq!(c.get(10, 11, None), None);
        assert_eq!(c.bytes, 0);
        c.append(&run(21, 22, 1));
        c.clear();
        assert_eq!(c.get(21, 22, None), None);
        assert_eq!(c.bytes, 0);
    }
}
