//! Durable raft state: the log, the HardState, the ConfState and the latest state-machine
//! snapshot, behind the [`LogStore`] trait so the raft code does not know what stores it.
//!
//! Two implementations pass one conformance suite (`tests` below): [`MemStore`] for in-memory
//! tests and [`SledStore`] for real nodes. [`RaftStorage`] adapts any of them to raft-rs's
//! `Storage` trait.
//!
//! The model both follow: the log holds the entries after the snapshot, so
//! `first_index = snapshot.index + 1`, and `term(snapshot.index)` is the snapshot's term.

mod entry_cache;
mod mem;
mod sled_store;
mod sled_sync;
mod terms;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};

pub use mem::MemStore;
pub use sled_store::{OpenError, SledStore};

/// Errors from a store. Reading past either end of the log is not an error of the store but of
/// the caller, reported as raft's own `Compacted` / `Unavailable`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The requested index is before the snapshot.
    #[error("log compacted")]
    Compacted,
    /// The requested index is past the end of the log.
    #[error("log entry unavailable")]
    Unavailable,
    /// The disk failed or holds something we cannot read. Fatal for the node.
    #[error("storage failure: {0}")]
    Io(String),
}

impl From<StoreError> for raft::Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Compacted => raft::Error::Store(StorageError::Compacted),
            StoreError::Unavailable => raft::Error::Store(StorageError::Unavailable),
            StoreError::Io(msg) => raft::Error::Store(StorageError::Other(msg.into())),
        }
    }
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Persistent raft state.
///
/// Every mutating method is atomic: after a crash either all of its changes are there or none.
/// With `sync` (or always, for `apply_snapshot` and `compact`) the changes are on disk (fsync)
/// when the method returns.
pub trait LogStore: Send + Sync + 'static {
    /// HardState and ConfState as last persisted.
    fn initial_state(&self) -> StoreResult<RaftState>;
    /// Entries in `[low, high)`, at most `max_size` bytes but always at least one.
    fn entries(&self, low: u64, high: u64, max_size: Option<u64>) -> StoreResult<Vec<Entry>>;
    /// Term of the entry at `idx`, which may be the snapshot's index.
    fn term(&self, idx: u64) -> StoreResult<u64>;
    /// The first index in the log (snapshot index + 1).
    fn first_index(&self) -> StoreResult<u64>;
    /// The last index in the log (the snapshot's index when the log is empty).
    fn last_index(&self) -> StoreResult<u64>;
    /// The latest snapshot (empty data and index 0 before the first).
    fn snapshot(&self) -> StoreResult<Snapshot>;
    /// Appends `entries`, replacing any existing entries from the first one's index on, and
    /// stores `hard_state` and `conf_state` when given, all in one atomic write.
    fn persist(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        conf_state: Option<&ConfState>,
        sync: bool,
    ) -> StoreResult<()>;
    /// Installs a snapshot received from the leader: drops the whole log, sets the ConfState
    /// from the snapshot and moves the HardState's commit (and term) up to it.
    fn apply_snapshot(&self, snapshot: &Snapshot) -> StoreResult<()>;
    /// Stores a snapshot the node made of its own state machine and drops the entries it covers.
    fn compact(&self, snapshot: &Snapshot) -> StoreResult<()>;
}

/// Adapts a [`LogStore`] to raft-rs's `Storage`.
#[derive(Clone)]
pub struct RaftStorage {
    inner: Arc<dyn LogStore>,
    snapshot_wanted: Arc<AtomicBool>,
}

impl RaftStorage {
    /// Wraps a store.
    pub fn new(inner: Arc<dyn LogStore>) -> Self {
        RaftStorage {
            inner,
            snapshot_wanted: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether raft asked for a snapshot the store could not give (too old, or made before the
    /// receiving peer was a member); clears the request. The node then takes a fresh one.
    pub fn take_snapshot_request(&self) -> bool {
        self.snapshot_wanted.swap(false, Ordering::Relaxed)
    }
}

impl raft::Storage for RaftStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(self.inner.initial_state()?)
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        Ok(self.inner.entries(low, high, max_size.into())?)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        Ok(self.inner.term(idx)?)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.inner.first_index()?)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.inner.last_index()?)
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let snap = self.inner.snapshot()?;
        let conf = snap.get_metadata().get_conf_state();
        // A peer refuses a snapshot whose configuration does not contain it (a node added after
        // the snapshot was taken), so such a snapshot is useless to it.
        let knows_peer = conf.voters.contains(&to) || conf.learners.contains(&to);
        if snap.get_metadata().index < request_index || !knows_peer {
            self.snapshot_wanted.store(true, Ordering::Relaxed);
            // raft retries once the node has taken a fresh snapshot.
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(snap)
    }
}

/// Trims `entries` to at most `max_size` encoded bytes, keeping at least one.
pub(crate) fn limit_size(entries: &mut Vec<Entry>, max_size: Option<u64>) {
    raft::util::limit_size(entries, max_size);
}

#[cfg(test)]
mod tests;
