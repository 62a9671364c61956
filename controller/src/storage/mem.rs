//! An in-memory [`LogStore`] for tests: the same semantics as the sled store, no durability.

use std::sync::Mutex;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::RaftState;

use super::{limit_size, LogStore, StoreError, StoreResult};

#[derive(Default)]
struct Inner {
    hard_state: HardState,
    conf_state: ConfState,
    snapshot: Snapshot,
    /// Entries after the snapshot: `entries[i].index == snapshot index + 1 + i`.
    entries: Vec<Entry>,
}

impl Inner {
    fn snap_index(&self) -> u64 {
        self.snapshot.get_metadata().index
    }

    fn last_index(&self) -> u64 {
        self.entries.last().map_or(self.snap_index(), |e| e.index)
    }
}

/// In-memory raft state.
#[derive(Default)]
pub struct MemStore {
    inner: Mutex<Inner>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> StoreResult<std::sync::MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Io("memory store lock poisoned".into()))
    }
}

impl LogStore for MemStore {
    fn initial_state(&self) -> StoreResult<RaftState> {
        let inner = self.lock()?;
        Ok(RaftState::new(
            inner.hard_state.clone(),
            inner.conf_state.clone(),
        ))
    }

    fn entries(&self, low: u64, high: u64, max_size: Option<u64>) -> StoreResult<Vec<Entry>> {
        let inner = self.lock()?;
        if low <= inner.snap_index() {
            return Err(StoreError::Compacted);
        }
        if high > inner.last_index() + 1 || low > high {
            return Err(StoreError::Unavailable);
        }
        let offset = inner.snap_index() + 1;
        let mut out = inner.entries[(low - offset) as usize..(high - offset) as usize].to_vec();
        limit_size(&mut out, max_size);
        Ok(out)
    }

    fn term(&self, idx: u64) -> StoreResult<u64> {
        let inner = self.lock()?;
        let snap_index = inner.snap_index();
        if idx == snap_index {
            return Ok(inner.snapshot.get_metadata().term);
        }
        if idx < snap_index {
            return Err(StoreError::Compacted);
        }
        if idx > inner.last_index() {
            return Err(StoreError::Unavailable);
        }
        Ok(inner.entries[(idx - snap_index - 1) as usize].term)
    }

    fn first_index(&self) -> StoreResult<u64> {
        Ok(self.lock()?.snap_index() + 1)
    }

    fn last_index(&self) -> StoreResult<u64> {
        Ok(self.lock()?.last_index())
    }

    fn snapshot(&self) -> StoreResult<Snapshot> {
        Ok(self.lock()?.snapshot.clone())
    }

    fn persist(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        conf_state: Option<&ConfState>,
        _sync: bool,
    ) -> StoreResult<()> {
        let mut inner = self.lock()?;
        if let Some(first) = entries.first() {
            if first.index <= inner.snap_index() || first.index > inner.last_index() + 1 {
                return Err(StoreError::Io(format!(
                    "append at {} does not fit a log of ({}, {}]",
                    first.index,
                    inner.snap_index(),
                    inner.last_index()
                )));
            }
            let keep = (first.index - inner.snap_index() - 1) as usize;
            inner.entries.truncate(keep);
            inner.entries.extend_from_slice(entries);
        }
        if let Some(hs) = hard_state {
            inner.hard_state = hs.clone();
        }
        if let Some(cs) = conf_state {
            inner.conf_state = cs.clone();
        }
        Ok(())
    }

    fn apply_snapshot(&self, snapshot: &Snapshot) -> StoreResult<()> {
        let mut inner = self.lock()?;
        let meta = snapshot.get_metadata();
        inner.entries.clear();
        inner.hard_state.commit = inner.hard_state.commit.max(meta.index);
        inner.hard_state.term = inner.hard_state.term.max(meta.term);
        inner.conf_state = meta.get_conf_state().clone();
        inner.snapshot = snapshot.clone();
        Ok(())
    }

    fn compact(&self, snapshot: &Snapshot) -> StoreResult<()> {
        let mut inner = self.lock()?;
        let index = snapshot.get_metadata().index;
        if index <= inner.snap_index() {
            return Ok(());
        }
        if index > inner.last_index() {
            return Err(StoreError::Unavailable);
        }
        let drop = (index - inner.snap_index()) as usize;
        inner.entries.drain(..drop);
        inner.hard_state.commit = inner.hard_state.commit.max(index);
        inner.snapshot = snapshot.clone();
        Ok(())
    }
}
