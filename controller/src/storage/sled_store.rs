//! The durable [`LogStore`], on sled.
//!
//! Layout: two sled trees.
//!
//! | tree       | key                     | value                                   |
//! |------------|-------------------------|-----------------------------------------|
//! | default    | `meta/format`           | `pld-raft-v1`                           |
//! | default    | `meta/node_id`          | the raft id this dir belongs to, u64 BE |
//! | default    | `meta/hard_state`       | raft `HardState` (protobuf)             |
//! | default    | `meta/conf_state`       | raft `ConfState` (protobuf)             |
//! | default    | `log/` + index (u64 BE) | raft `Entry` (protobuf)                 |
//! | `snapshot` | `current`               | raft `Snapshot`, metadata + catalog     |
//!
//! The snapshot lives in its own tree because sled rewrites a whole leaf when a key in it
//! changes: next to the HardState, a multi-megabyte snapshot would be copied on every append.
//! Appends are one `sled::Batch` on the default tree; a leader's snapshot, installed, replaces
//! the log in one sled transaction over both trees. Either is followed by `Db::flush` and then
//! by [`SledSync::after_flush`], which fsyncs what sled's flush does not (its log file's size
//! and the disk cache, and the files it writes large pages to); sled's own background flush is
//! not relied on for durability.
//!
//! A compaction runs beside the raft thread's appends (the node's compactor thread), so it
//! holds the lock they take only to move the log's start: it stores the snapshot and fsyncs,
//! moves the start past it, then removes the entries it covers a slice at a time without an
//! fsync of its own. A crash in between leaves entries at or below the snapshot, which opening
//! skips and removes; and the HardState's commit index, which is not written on every append,
//! is raised to the snapshot's index when read ([`LogStore::initial_state`]), as the snapshot
//! holds only committed entries.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::RaftState;

use super::entry_cache::EntryCache;
use super::sled_sync::SledSync;
use super::terms::TermRuns;
use super::{limit_size, LogStore, StoreError, StoreResult};
use crate::crash_points::{crash_point, io_fault_point};

const FORMAT: &[u8] = b"pld-raft-v1";
const K_FORMAT: &[u8] = b"meta/format";
const K_NODE_ID: &[u8] = b"meta/node_id";
const K_HARD_STATE: &[u8] = b"meta/hard_state";
const K_CONF_STATE: &[u8] = b"meta/conf_state";
pub(super) const SNAPSHOT_TREE: &[u8] = b"snapshot";
pub(super) const K_SNAPSHOT: &[u8] = b"current";
pub(super) const LOG_PREFIX: &[u8] = b"log/";
/// sled's log segment size (its default, set here so that a change of default in sled cannot
/// make our data dirs unreadable). sled writes any page larger than a quarter of a segment to a
/// file of its own, which the store must then create, fsync and name durably in its folder;
/// under load a leaf of batched raft entries is 50-100 KiB, so with smaller segments most of
/// them went that way (a new file every third append at 64 KiB). Fixed at creation of a data dir.
pub(super) const SEGMENT_SIZE: usize = 512 * 1024;
/// The segment size of data dirs created before [`SEGMENT_SIZE`] was raised; sled refuses to
/// open a database with another size than it was created with, so those keep theirs.
pub(super) const LEGACY_SEGMENT_SIZE: usize = 64 * 1024;
/// Bytes of the newest log entries kept in memory for reading back ([`EntryCache`]): a few
/// thousand single writes, or some hundred batches under load.
const ENTRY_CACHE_BYTES: usize = 2 << 20;
/// The sled database's folder inside the data dir.
pub(super) const DB_DIR: &str = "raft.sled";

/// Why a data dir could not be opened. Each names the path and what to do.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The dir holds files that are not a pld controller's.
    #[error("data dir {path} is not empty and is not a pld controller data dir ({detail}); point --data-dir at an empty or pld-owned folder")]
    Foreign { path: PathBuf, detail: String },
    /// The dir was written by another node.
    #[error("data dir {path} belongs to node {stored}, not node {given}; use --id {stored} or another data dir")]
    WrongNode {
        path: PathBuf,
        stored: u64,
        given: u64,
    },
    /// The files are damaged.
    #[error("data dir {path} is corrupt: {detail}; restore it from a backup or remove it and re-join the node")]
    Corrupt { path: PathBuf, detail: String },
    /// The disk refused.
    #[error("cannot open data dir {path}: {detail}")]
    Io { path: PathBuf, detail: String },
}

/// One change to the default tree: the key and its new value, or `None` to remove it.
type Write = (Vec<u8>, Option<Vec<u8>>);

/// Cached bounds, terms and newest entries, so the hot path neither scans sled nor decodes
/// entries.
struct Bounds {
    snap_index: u64,
    snap_term: u64,
    last_index: u64,
    /// Terms of the entries in `(snap_index, last_index]`.
    terms: TermRuns,
    /// The newest entries of `(snap_index, last_index]`.
    recent: EntryCache,
}

/// Raft state in a sled database.
pub struct SledStore {
    db: sled::Db,
    sync: SledSync,
    snapshots: sled::Tree,
    bounds: Mutex<Bounds>,
    /// Held while a snapshot is stored (a compaction's or a leader's), so an older one never
    /// replaces a newer; taken before `bounds`, never while holding it.
    snapshot_write: Mutex<()>,
    path: PathBuf,
}

/// Log entries removed per sled batch after a compaction: small enough that the raft thread's
/// next append and flush never wait long behind one.
const REMOVE_SLICE: u64 = 256;

/// The key of the log entry at `index` in the default tree.
pub(super) fn log_key(index: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(LOG_PREFIX);
    k[4..].copy_from_slice(&index.to_be_bytes());
    k
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

fn decode<M: protobuf::Message>(what: &str, bytes: &[u8]) -> StoreResult<M> {
    M::parse_from_bytes(bytes).map_err(|e| StoreError::Io(format!("cannot decode {what}: {e}")))
}

fn encode<M: protobuf::Message>(m: &M) -> StoreResult<Vec<u8>> {
    m.write_to_bytes().map_err(io)
}

/// Opens the sled database at `db_path`. sled can panic on some damaged files; a damaged dir
/// must be an error, not a crash, so a panic comes back as `Err(None)`.
pub(super) fn open_sled(
    db_path: &Path,
    segment_size: usize,
) -> Result<sled::Db, Option<sled::Error>> {
    std::panic::catch_unwind(|| {
        sled::Config::new()
            .path(db_path)
            .segment_size(segment_size)
            // Durability comes from our explicit flush after every write batch.
            .flush_every_ms(None)
            .open()
    })
    .map_err(|_| None)?
    .map_err(Some)
}

impl SledStore {
    /// Opens (or creates) the store in `data_dir` for node `node_id`. Returns the store and
    /// whether it is new (holds no raft state yet).
    ///
    /// # Errors
    /// [`OpenError`] when the dir is foreign, another node's, corrupt or unreadable; nothing in
    /// it is changed then.
    pub fn open(data_dir: &Path, node_id: u64) -> Result<(Self, bool), OpenError> {
        let path = data_dir.to_path_buf();
        let db_path = data_dir.join(DB_DIR);
        let io_err = |e: &dyn std::fmt::Display| OpenError::Io {
            path: path.clone(),
            detail: e.to_string(),
        };
        if data_dir.exists() {
            let meta = std::fs::metadata(data_dir).map_err(|e| io_err(&e))?;
            if !meta.is_dir() {
                return Err(OpenError::Foreign {
                    path,
                    detail: "it is a file".into(),
                });
            }
            let others: Vec<String> = std::fs::read_dir(data_dir)
                .map_err(|e| io_err(&e))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != DB_DIR)
                .collect();
            if !db_path.exists() && !others.is_empty() {
                return Err(OpenError::Foreign {
                    path,
                    detail: format!("found {}", others.join(", ")),
                });
            }
        }
        std::fs::create_dir_all(data_dir).map_err(|e| io_err(&e))?;
        let opened = open_sled(&db_path, SEGMENT_SIZE).or_else(|e| match e {
            // sled refuses a database made with another segment size: one of ours from before.
            Some(sled::Error::Unsupported(_)) => open_sled(&db_path, LEGACY_SEGMENT_SIZE),
            e => Err(e),
        });
        let db = match opened {
            Ok(db) => db,
            Err(Some(sled::Error::Corruption { .. }) | None) => {
                return Err(OpenError::Corrupt {
                    path,
                    detail: "the sled database cannot be read".into(),
                })
            }
            Err(Some(e)) => return Err(io_err(&e)),
        };
        let corrupt = |detail: String| OpenError::Corrupt {
            path: path.clone(),
            detail,
        };
        let sync = SledSync::open(&db_path, data_dir).map_err(|e| {
            io_err(&format_args!(
                "making {} durable (fsync, inotify): {e}",
                db_path.display()
            ))
        })?;
        let format = db.get(K_FORMAT).map_err(|e| io_err(&e))?;
        let fresh = match format {
            None if db.is_empty() => {
                let mut batch = sled::Batch::default();
                batch.insert(K_FORMAT, FORMAT);
                batch.insert(K_NODE_ID, &node_id.to_be_bytes());
                db.apply_batch(batch).map_err(|e| io_err(&e))?;
                db.flush().map_err(|e| io_err(&e))?;
                sync.after_flush().map_err(|e| io_err(&e))?;
                true
            }
            None => {
                return Err(corrupt(
                    "no format marker but the database is not empty".into(),
                ))
            }
            Some(f) if f.as_ref() != FORMAT => {
                return Err(corrupt(format!(
                    "unknown format {:?}",
                    String::from_utf8_lossy(&f)
                )))
            }
            Some(_) => {
                let stored = db
                    .get(K_NODE_ID)
                    .map_err(|e| io_err(&e))?
                    .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| corrupt("node id missing".into()))?;
                if stored != node_id {
                    return Err(OpenError::WrongNode {
                        path,
                        stored,
                        given: node_id,
                    });
                }
                db.get(K_HARD_STATE).map_err(|e| io_err(&e))?.is_none()
            }
        };
        let snapshots = db.open_tree(SNAPSHOT_TREE).map_err(|e| io_err(&e))?;
        let store = SledStore {
            db,
            sync,
            snapshots,
            bounds: Mutex::new(Bounds {
                snap_index: 0,
                snap_term: 0,
                last_index: 0,
                terms: TermRuns::default(),
                recent: EntryCache::new(ENTRY_CACHE_BYTES),
            }),
            snapshot_write: Mutex::new(()),
            path: path.clone(),
        };
        store.load_bounds().map_err(|e| corrupt(e.to_string()))?;
        Ok((store, fresh))
    }

    /// The data dir this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the bounds and every entry's term; the log must hold every index from the
    /// snapshot's on, without a gap. Entries the snapshot covers, left by a compaction that
    /// stopped before removing them, are removed.
    fn load_bounds(&self) -> StoreResult<()> {
        let snap = self.snapshot()?;
        let meta = snap.get_metadata();
        let mut terms = TermRuns::default();
        let mut last_index = meta.index;
        let mut covered = 0u64;
        for kv in self.db.scan_prefix(LOG_PREFIX) {
            let (_, v) = kv.map_err(io)?;
            let entry = decode::<Entry>("log entry", &v)?;
            if entry.index <= meta.index {
                covered += 1;
                continue;
            }
            let expected = last_index + 1;
            if entry.index != expected {
                return Err(StoreError::Io(format!(
                    "log entry {expected} is missing (the snapshot ends at {}, found entry {})",
                    meta.index, entry.index
                )));
            }
            terms.append(entry.index, entry.term);
            last_index = entry.index;
        }
        *self.bounds.lock().map_err(io)? = Bounds {
            snap_index: meta.index,
            snap_term: meta.term,
            last_index,
            terms,
            recent: EntryCache::new(ENTRY_CACHE_BYTES),
        };
        if covered > 0 {
            tracing::info!(
                entries = covered,
                snapshot = meta.index,
                "removing log entries the snapshot covers (a compaction was interrupted)"
            );
            self.remove_covered(meta.index)?;
        }
        Ok(())
    }

    /// Removes the log entries at or below `through` that are still stored, a slice at a time
    /// and without an fsync: they are never read again, and any left by a crash are removed at
    /// the next open.
    fn remove_covered(&self, through: u64) -> StoreResult<()> {
        loop {
            let mut batch = sled::Batch::default();
            let mut n = 0u64;
            for key in self
                .db
                .range(log_key(0)..=log_key(through))
                .keys()
                .take(REMOVE_SLICE as usize)
            {
                batch.remove(key.map_err(io)?);
                n += 1;
            }
            if n == 0 {
                return Ok(());
            }
            self.db.apply_batch(batch).map_err(io)?;
        }
    }

    fn bounds(&self) -> StoreResult<std::sync::MutexGuard<'_, Bounds>> {
        self.bounds
            .lock()
            .map_err(|_| StoreError::Io("sled store lock poisoned".into()))
    }

    /// Makes `writes` to the default tree, atomically, then fsyncs when `sync`. sled logs a
    /// manifest for every batch, which the flush then syncs as a write of its own; so no writes
    /// (a Ready that only commits or sends) touch nothing, and one write (the common append of
    /// one entry) is a plain insert or remove, atomic by itself. Only more go in a batch.
    fn commit(&self, mut writes: Vec<Write>, sync: bool) -> StoreResult<()> {
        if writes.len() > 1 {
            let mut batch = sled::Batch::default();
            for (key, value) in writes {
                match value {
                    Some(value) => batch.insert(key, value),
                    None => batch.remove(key),
                }
            }
            self.db.apply_batch(batch).map_err(io)?;
            crash_point!("store-batch-applied");
        } else if let Some((key, value)) = writes.pop() {
            match value {
                Some(value) => self.db.insert(key, value).map(drop),
                None => self.db.remove(key).map(drop),
            }
            .map_err(io)?;
            crash_point!("store-batch-applied");
        }
        if sync {
            self.flush()?;
        }
        Ok(())
    }

    /// Applies `batch` to the default tree and stores `snapshot`, atomically, then fsyncs.
    fn commit_with_snapshot(&self, batch: sled::Batch, snapshot: Vec<u8>) -> StoreResult<()> {
        use sled::transaction::{ConflictableTransactionError, TransactionError};
        use sled::Transactional;
        let result: Result<(), TransactionError<()>> =
            (&*self.db, &self.snapshots).transaction(|(main, snaps)| {
                main.apply_batch(&batch)?;
                snaps.insert(K_SNAPSHOT, snapshot.as_slice())?;
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        result.map_err(|e| StoreError::Io(format!("snapshot transaction: {e:?}")))?;
        self.flush()
    }

    /// Makes everything written so far durable: sled's flush, then what it leaves undone.
    fn flush(&self) -> StoreResult<()> {
        io_fault_point!(crate::crash_points::FLUSH_ERROR);
        self.db.flush().map_err(io)?;
        self.sync
            .after_flush()
            .map_err(|e| StoreError::Io(format!("fsync of {}: {e}", self.path.display())))
    }

    /// Files of large pages that sled wrote and this store fsynced since it was opened: each
    /// one a file created, fsynced and named durably in its folder, which is why the segment
    /// size keeps them rare.
    pub fn blobs_synced(&self) -> u64 {
        self.sync.blobs_synced()
    }

    fn hard_state(&self) -> StoreResult<HardState> {
        match self.db.get(K_HARD_STATE).map_err(io)? {
            Some(v) => decode("hard state", &v),
            None => Ok(HardState::default()),
        }
    }
}

impl LogStore for SledStore {
    fn initial_state(&self) -> StoreResult<RaftState> {
        let conf_state = match self.db.get(K_CONF_STATE).map_err(io)? {
            Some(v) => decode("conf state", &v)?,
            None => ConfState::default(),
        };
        // The commit index is written only with a term or vote change, and a compaction does
        // not write it (it runs beside the appends that do): the snapshot holds only committed
        // entries, so its index is committed, and raft refuses to start with a commit below it.
        let mut hard_state = self.hard_state()?;
        hard_state.commit = hard_state.commit.max(self.bounds()?.snap_index);
        Ok(RaftState::new(hard_state, conf_state))
    }

    fn entries(&self, low: u64, high: u64, max_size: Option<u64>) -> StoreResult<Vec<Entry>> {
        {
            let b = self.bounds()?;
            if low <= b.snap_index {
                return Err(StoreError::Compacted);
            }
            if high > b.last_index + 1 || low > high {
                return Err(StoreError::Unavailable);
            }
            if let Some(cached) = b.recent.get(low, high, max_size) {
                return Ok(cached);
            }
        }
        let mut out = Vec::with_capacity((high - low) as usize);
        let mut size = 0u64;
        for kv in self.db.range(log_key(low)..log_key(high)) {
            let (_, v) = kv.map_err(io)?;
            size += v.len() as u64;
            out.push(decode::<Entry>("log entry", &v)?);
            if max_size.is_some_and(|m| size > m) {
                break;
            }
        }
        if out.len() as u64 != high - low && max_size.is_none() {
            return Err(StoreError::Io(format!(
                "log entries {low}..{high} are missing from the store"
            )));
        }
        limit_size(&mut out, max_size);
        Ok(out)
    }

    fn term(&self, idx: u64) -> StoreResult<u64> {
        let b = self.bounds()?;
        if idx == b.snap_index {
            return Ok(b.snap_term);
        }
        if idx < b.snap_index {
            return Err(StoreError::Compacted);
        }
        if idx > b.last_index {
            return Err(StoreError::Unavailable);
        }
        // Every persist, compaction and snapshot install keeps the runs covering the log.
        b.terms
            .term(idx)
            .ok_or_else(|| StoreError::Io(format!("no term recorded for log entry {idx}")))
    }

    fn first_index(&self) -> StoreResult<u64> {
        Ok(self.bounds()?.snap_index + 1)
    }

    fn last_index(&self) -> StoreResult<u64> {
        Ok(self.bounds()?.last_index)
    }

    fn snapshot(&self) -> StoreResult<Snapshot> {
        match self.snapshots.get(K_SNAPSHOT).map_err(io)? {
            Some(v) => decode("snapshot", &v),
            None => Ok(Snapshot::default()),
        }
    }

    fn persist(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        conf_state: Option<&ConfState>,
        sync: bool,
    ) -> StoreResult<()> {
        let mut bounds = self.bounds()?;
        let mut writes: Vec<Write> = Vec::with_capacity(entries.len() + 2);
        let mut new_last = bounds.last_index;
        if let (Some(first), Some(last)) = (entries.first(), entries.last()) {
            if first.index <= bounds.snap_index || first.index > bounds.last_index + 1 {
                return Err(StoreError::Io(format!(
                    "append at {} does not fit a log of ({}, {}]",
                    first.index, bounds.snap_index, bounds.last_index
                )));
            }
            // A conflicting suffix from an old term is replaced.
            for idx in last.index + 1..=bounds.last_index {
                writes.push((log_key(idx).to_vec(), None));
            }
            for e in entries {
                writes.push((log_key(e.index).to_vec(), Some(encode(e)?)));
            }
            new_last = last.index;
        }
        if let Some(hs) = hard_state {
            writes.push((K_HARD_STATE.to_vec(), Some(encode(hs)?)));
        }
        if let Some(cs) = conf_state {
            writes.push((K_CONF_STATE.to_vec(), Some(encode(cs)?)));
        }
        self.commit(writes, sync)?;
        bounds.last_index = new_last;
        for e in entries {
            bounds.terms.append(e.index, e.term);
        }
        bounds.recent.append(entries);
        Ok(())
    }

    fn apply_snapshot(&self, snapshot: &Snapshot) -> StoreResult<()> {
        let _writing = self
            .snapshot_write
            .lock()
            .map_err(|_| StoreError::Io("sled store snapshot lock poisoned".into()))?;
        let mut bounds = self.bounds()?;
        let meta = snapshot.get_metadata();
        let mut batch = sled::Batch::default();
        for key in self.db.scan_prefix(LOG_PREFIX).keys() {
            batch.remove(key.map_err(io)?);
        }
        let mut hs = self.hard_state()?;
        hs.commit = hs.commit.max(meta.index);
        hs.term = hs.term.max(meta.term);
        batch.insert(K_HARD_STATE, encode(&hs)?);
        batch.insert(K_CONF_STATE, encode(meta.get_conf_state())?);
        self.commit_with_snapshot(batch, encode(snapshot)?)?;
        bounds.snap_index = meta.index;
        bounds.snap_term = meta.term;
        bounds.last_index = meta.index;
        bounds.terms = TermRuns::default();
        bounds.recent.clear();
        Ok(())
    }

    fn compact(&self, snapshot: &Snapshot) -> StoreResult<()> {
        let meta = snapshot.get_metadata();
        let writing = self
            .snapshot_write
            .lock()
            .map_err(|_| StoreError::Io("sled store snapshot lock poisoned".into()))?;
        {
            let bounds = self.bounds()?;
            if meta.index <= bounds.snap_index {
                return Ok(());
            }
            if meta.index > bounds.last_index {
                return Err(StoreError::Unavailable);
            }
        }
        // The snapshot, durable, while appends go on: they touch only the default tree.
        self.snapshots
            .insert(K_SNAPSHOT, encode(snapshot)?)
            .map_err(io)?;
        self.flush()?;
        crash_point!("snapshot-stored");
        // The log starts after it; the entries it covers are read no more.
        {
            let mut bounds = self.bounds()?;
            bounds.snap_index = meta.index;
            bounds.snap_term = meta.term;
            bounds.terms.compact_through(meta.index);
            bounds.recent.compact_through(meta.index);
        }
        drop(writing);
        self.remove_covered(meta.index)
    }
}
