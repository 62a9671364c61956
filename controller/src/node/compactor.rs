//! Snapshots stored and the log compacted on a thread of their own.
//!
//! A snapshot means encoding the whole catalog and its event window (25-35 ms for 10,000
//! services), an fsync of the result, and removing thousands of log entries: on the raft thread
//! that was a stall of 75-200 ms every 10,000 entries, during which no append was written and
//! no client answered. The raft thread now only copies the catalog at the applied index (it
//! owns it and applies on) and hands the copy here; the store lets appends go on meanwhile (see
//! `storage::sled_store`). One compaction at a time: the raft thread takes the next snapshot
//! only when this one is done.
//!
//! Every node reaches the same applied index at about the same moment, so with one interval
//! all of them would snapshot at once and slow the leader and both followers together. Each
//! snapshot's interval is stretched by a random [`Compactor::spread`] of up to a fifth, so
//! that most of the time a quorum is not compacting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use pld_core::Catalog;
use raft::eraftpb::ConfState;
use tracing::debug;

use crate::crash_points::crash_point;
use crate::metrics::ControllerMetrics;
use crate::storage::{LogStore, StoreError};

/// A copy of the catalog at `index` (of `term`), with the membership then, to store.
pub(super) struct Job {
    pub catalog: Catalog,
    pub index: u64,
    pub term: u64,
    pub conf_state: ConfState,
}

/// The compactor thread and what the raft thread knows of it.
pub(super) struct Compactor {
    jobs: Option<SyncSender<Job>>,
    /// Applied entries between snapshots, before the spread.
    every: u64,
    /// Entries past the interval before the next snapshot (see the module docs).
    spread: u64,
    /// A snapshot was handed over and is not stored yet.
    busy: Arc<AtomicBool>,
    /// Why the last compaction failed: the disk's error, fatal for the node as any other.
    failure: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Compactor {
    /// Starts the thread for node `id`, which snapshots about every `every` entries.
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn start(
        id: u64,
        store: Arc<dyn LogStore>,
        metrics: Arc<ControllerMetrics>,
        every: u64,
    ) -> std::io::Result<Compactor> {
        let (jobs, next) = sync_channel::<Job>(1);
        let busy = Arc::new(AtomicBool::new(false));
        let failure = Arc::new(Mutex::new(None));
        let thread = {
            let (busy, failure) = (busy.clone(), failure.clone());
            std::thread::Builder::new()
                .name(format!("compact-{id}"))
                .spawn(move || {
                    while let Ok(job) = next.recv() {
                        let started = std::time::Instant::now();
                        let index = job.index;
                        let data = job.catalog.encode_snapshot();
                        drop(job.catalog);
                        let snap = super::apply::snapshot(data, index, job.term, job.conf_state);
                        crash_point!("snapshot-create");
                        match store.compact(&snap) {
                            Ok(()) => {
                                crash_point!("snapshot-compacted");
                                metrics.snapshots_created.increment(1);
                                debug!(node = id, index, took = ?started.elapsed(), "snapshot stored, log compacted");
                            }
                            Err(e) => {
                                *failure.lock().unwrap_or_else(|p| p.into_inner()) =
                                    Some(e.to_string());
                            }
                        }
                        busy.store(false, Ordering::Release);
                    }
                })?
        };
        Ok(Compactor {
            jobs: Some(jobs),
            every,
            // From the first snapshot on: nodes started together reach each index together.
            spread: spread_of(every),
            busy,
            failure,
            thread: Some(thread),
        })
    }

    /// Whether a compaction is under way.
    pub fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// The error of a compaction that failed.
    ///
    /// # Errors
    /// The store's error, once; the node stops on it.
    pub fn check(&self) -> Result<(), StoreError> {
        match self
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            Some(e) => Err(StoreError::Io(format!("compacting the log: {e}"))),
            None => Ok(()),
        }
    }

    /// Whether a snapshot is due at `applied`, the last one being at `snapshot_index`: its
    /// interval, stretched by this node's spread, has passed.
    pub fn due(&self, applied: u64, snapshot_index: u64) -> bool {
        applied >= snapshot_index + self.every + self.spread
    }

    /// Hands `job` to the thread and draws the spread of the next interval. Call only when
    /// not [`Self::busy`].
    ///
    /// # Errors
    /// When the thread is gone (it panicked).
    pub fn submit(&mut self, job: Job) -> Result<(), StoreError> {
        self.spread = spread_of(self.every);
        self.busy.store(true, Ordering::Release);
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| StoreError::Io("the compactor thread stopped".into()))
    }
}

/// A random stretch of an interval of `every` entries, up to a fifth of it.
fn spread_of(every: u64) -> u64 {
    rand::random::<u64>() % (every / 5 + 1)
}

impl Drop for Compactor {
    /// Lets a compaction under way finish (it is short, and cut off it would only leave
    /// entries for the next open to remove), then ends the thread.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
