//! One conformance suite, run against every [`LogStore`].

use std::sync::Arc;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};

use super::sled_store::{
    log_key, open_sled, DB_DIR, K_SNAPSHOT, LEGACY_SEGMENT_SIZE, LOG_PREFIX, SEGMENT_SIZE,
    SNAPSHOT_TREE,
};
use super::{LogStore, MemStore, OpenError, SledStore, StoreError};

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: vec![index as u8; 16].into(),
        ..Default::default()
    }
}

fn snapshot(index: u64, term: u64, voters: Vec<u64>) -> Snapshot {
    let mut s = Snapshot {
        data: b"state".to_vec().into(),
        ..Default::default()
    };
    let meta = s.mut_metadata();
    meta.index = index;
    meta.term = term;
    meta.mut_conf_state().voters = voters;
    s
}

fn hs(term: u64, vote: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote,
        commit,
        ..Default::default()
    }
}

/// Creates a sled store in `dir` for node 1 holding entries 1 to `last` of term 1, closes it,
/// and returns the entries.
fn write_log(dir: &std::path::Path, last: u64) -> Vec<Entry> {
    let (store, fresh) = open_once_unlocked(dir, 1).unwrap();
    assert!(fresh);
    let es: Vec<Entry> = (1..=last).map(|i| entry(i, 1)).collect();
    store
        .persist(&es, Some(&hs(1, 1, last)), None, true)
        .unwrap();
    es
}

/// Opens the store of node `id` in `dir` once sled has let go of its file lock: a dropped sled
/// `Db` releases it only when its background flusher thread notices, a moment later.
fn open_once_unlocked(dir: &std::path::Path, id: u64) -> Result<(SledStore, bool), OpenError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match SledStore::open(dir, id) {
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn indexes(es: &[Entry]) -> Vec<u64> {
    es.iter().map(|e| e.index).collect()
}

/// The behaviour every store must have.
fn conformance(store: &dyn LogStore) {
    // Empty.
    assert_eq!(store.first_index().unwrap(), 1);
    assert_eq!(store.last_index().unwrap(), 0);
    assert_eq!(store.term(0).unwrap(), 0);
    assert!(!store.initial_state().unwrap().initialized());

    // Append with state, in one call.
    let cs = ConfState {
        voters: vec![1, 2, 3],
        ..Default::default()
    };
    let es: Vec<Entry> = (1..=5).map(|i| entry(i, 1)).collect();
    store
        .persist(&es, Some(&hs(1, 1, 2)), Some(&cs), true)
        .unwrap();
    assert_eq!(store.last_index().unwrap(), 5);
    assert_eq!(indexes(&store.entries(2, 4, None).unwrap()), vec![2, 3]);
    assert_eq!(store.entries(1, 6, None).unwrap(), es);
    assert_eq!(store.term(3).unwrap(), 1);
    assert!(matches!(store.term(6), Err(StoreError::Unavailable)));
    assert!(matches!(
        store.entries(4, 7, None),
        Err(StoreError::Unavailable)
    ));
    let state = store.initial_state().unwrap();
    assert_eq!(state.hard_state, hs(1, 1, 2));
    assert_eq!(state.conf_state.voters, vec![1, 2, 3]);

    // Size limit keeps at least one entry.
    assert_eq!(store.entries(1, 6, Some(0)).unwrap().len(), 1);

    // A conflicting append from a later term replaces the suffix.
    store
        .persist(&[entry(3, 2), entry(4, 2)], None, None, true)
        .unwrap();
    assert_eq!(store.last_index().unwrap(), 4);
    assert_eq!(store.term(3).unwrap(), 2);
    assert_eq!(store.term(2).unwrap(), 1);
    assert_eq!(
        store.entries(1, 5, None).unwrap(),
        vec![entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)],
        "the replaced entries are read back, not the old ones"
    );

    // A gap is refused and changes nothing.
    assert!(store.persist(&[entry(9, 2)], None, None, true).is_err());
    assert_eq!(store.last_index().unwrap(), 4);

    // Compaction keeps the term of the snapshot's index.
    store.compact(&snapshot(3, 2, vec![1, 2, 3])).unwrap();
    assert_eq!(store.first_index().unwrap(), 4);
    assert_eq!(store.last_index().unwrap(), 4);
    assert_eq!(store.term(3).unwrap(), 2);
    assert!(matches!(store.term(2), Err(StoreError::Compacted)));
    assert!(matches!(
        store.entries(3, 5, None),
        Err(StoreError::Compacted)
    ));
    assert_eq!(indexes(&store.entries(4, 5, None).unwrap()), vec![4]);
    assert_eq!(store.snapshot().unwrap().get_metadata().index, 3);
    assert!(store.initial_state().unwrap().hard_state.commit >= 3);
    // Compacting to an older point is a no-op.
    store.compact(&snapshot(2, 1, vec![1, 2, 3])).unwrap();
    assert_eq!(store.first_index().unwrap(), 4);

    // Appending right after the snapshot works.
    store
        .persist(&[entry(5, 2), entry(6, 3)], None, None, true)
        .unwrap();
    assert_eq!(store.last_index().unwrap(), 6);
    assert_eq!(
        [4, 5, 6].map(|i| store.term(i).unwrap()),
        [2, 2, 3],
        "terms across the compaction and a new term"
    );

    // Installing a leader's snapshot replaces the whole log.
    store
        .apply_snapshot(&snapshot(10, 4, vec![1, 2, 3, 4]))
        .unwrap();
    assert_eq!(store.first_index().unwrap(), 11);
    assert_eq!(store.last_index().unwrap(), 10);
    assert_eq!(store.term(10).unwrap(), 4);
    let state = store.initial_state().unwrap();
    assert_eq!(state.hard_state.commit, 10);
    assert_eq!(state.hard_state.term, 4);
    assert_eq!(state.conf_state.voters, vec![1, 2, 3, 4]);
    store.persist(&[entry(11, 4)], None, None, true).unwrap();
    assert_eq!(indexes(&store.entries(11, 12, None).unwrap()), vec![11]);
    assert_eq!(store.term(11).unwrap(), 4);
    assert!(matches!(store.term(12), Err(StoreError::Unavailable)));
}

#[test]
fn mem_store_conforms() {
    conformance(&MemStore::new());
}

#[test]
fn sled_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let (store, fresh) = open_once_unlocked(dir.path(), 1).unwrap();
    assert!(fresh);
    conformance(&store);
}

#[test]
fn sled_store_keeps_everything_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let (store, _) = open_once_unlocked(dir.path(), 7).unwrap();
        let es: Vec<Entry> = (1..=20).map(|i| entry(i, 1 + i / 12)).collect();
        store.persist(&es, Some(&hs(2, 7, 20)), None, true).unwrap();
        store.compact(&snapshot(8, 1, vec![7])).unwrap();
        let store: Arc<dyn LogStore> = Arc::new(store);
        (
            store.entries(9, 21, None).unwrap(),
            store.initial_state().unwrap().hard_state,
        )
    };
    let (store, fresh) = open_once_unlocked(dir.path(), 7).unwrap();
    assert!(!fresh);
    assert_eq!(store.first_index().unwrap(), 9);
    assert_eq!(store.last_index().unwrap(), 20);
    assert_eq!(store.entries(9, 21, None).unwrap(), before.0);
    assert_eq!(store.initial_state().unwrap().hard_state, before.1);
    assert_eq!(store.snapshot().unwrap().get_metadata().index, 8);
    let terms: Vec<u64> = (8..=20).map(|i| store.term(i).unwrap()).collect();
    assert_eq!(terms, [1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
}

/// The newest entries are read back from memory, older ones from disk: a read across both
/// gets every entry as written, and so does one after a reopen, when nothing is cached.
#[test]
fn sled_store_reads_back_entries_older_than_those_it_keeps_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let big = |index: u64| Entry {
        index,
        term: 1,
        data: vec![index as u8; 16 * 1024].into(),
        ..Default::default()
    };
    // Three times the cache's budget.
    let es: Vec<Entry> = (1..=400).map(big).collect();
    {
        let (store, _) = open_once_unlocked(dir.path(), 1).unwrap();
        for chunk in es.chunks(50) {
            store.persist(chunk, None, None, true).unwrap();
        }
        assert_eq!(store.entries(1, 401, None).unwrap(), es);
        assert_eq!(store.entries(390, 401, None).unwrap(), es[389..]);
        // A conflicting append replaces entries both on disk and in memory.
        let replaced: Vec<Entry> = (350..=351).map(|i| entry(i, 2)).collect();
        store.persist(&replaced, None, None, true).unwrap();
        assert_eq!(store.last_index().unwrap(), 351);
        assert_eq!(store.entries(349, 352, None).unwrap()[1..], replaced);
    }
    let (store, _) = open_once_unlocked(dir.path(), 1).unwrap();
    assert_eq!(store.entries(1, 350, None).unwrap(), es[..349]);
    assert_eq!(store.entries(350, 352, None).unwrap().len(), 2);
}

/// sled writes large pages to files of their own and does not fsync them; the store must.
#[test]
fn sled_store_fsyncs_every_file_of_large_pages_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open_once_unlocked(dir.path(), 1).unwrap();
    assert_eq!(store.blobs_synced(), 0);
    // Entries like batches of commands under load, 20 KiB each: leaves of them grow past a
    // quarter of a segment, which sled writes to files of their own.
    let es: Vec<Entry> = (1..=40)
        .map(|i| Entry {
            data: vec![i as u8; 20 * 1024].into(),
            ..entry(i, 1)
        })
        .collect();
    for chunk in es.chunks(4) {
        store
            .persist(chunk, Some(&hs(1, 1, 0)), None, true)
            .unwrap();
    }
    store.compact(&snapshot(30, 1, vec![1])).unwrap();
    // A compaction's removals are not flushed by it (they need not be durable); the next
    // append's flush carries them and syncs the files they wrote.
    let next = entry(41, 1);
    store
        .persist(std::slice::from_ref(&next), None, None, true)
        .unwrap();
    let written = walk(&dir.path().join(DB_DIR).join("blobs")).len() as u64;
    assert!(written > 0, "the test must make sled write blob files");
    assert!(
        store.blobs_synced() >= written,
        "{} blob files on disk, {} synced",
        written,
        store.blobs_synced()
    );
    drop(store);
    let (store, _) = open_once_unlocked(dir.path(), 1).unwrap();
    assert_eq!(store.entries(31, 41, None).unwrap(), es[30..].to_vec());
    assert_eq!(store.entries(41, 42, None).unwrap(), [next]);
}

/// Data dirs made before the segment size was raised open with the size they were made with.
#[test]
fn sled_store_opens_a_dir_made_with_the_older_segment_size() {
    let dir = tempfile::tempdir().unwrap();
    drop(open_sled(&dir.path().join(DB_DIR), LEGACY_SEGMENT_SIZE).unwrap());
    let es = write_log(dir.path(), 5);
    let (store, fresh) = open_once_unlocked(dir.path(), 1).unwrap();
    assert!(!fresh);
    assert_eq!(store.entries(1, 6, None).unwrap(), es);
}

/// A compaction runs beside the appends and stores its snapshot before it removes the entries
/// it covers, without touching the HardState. A crash in between (`snapshot-stored`) leaves a
/// durable snapshot at 12 over a log that still starts at 1 and a commit index of 0 (raft does
/// not write it on every append): opening skips and removes the covered entries and reads the
/// commit as at least the snapshot's, which raft requires.
#[test]
fn sled_store_finishes_a_compaction_a_crash_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let es = {
        let (store, _) = open_once_unlocked(dir.path(), 1).unwrap();
        let es: Vec<Entry> = (1..=20).map(|i| entry(i, 1)).collect();
        store.persist(&es, Some(&hs(1, 1, 0)), None, true).unwrap();
        es
    };
    {
        let db = open_sled(&dir.path().join(DB_DIR), SEGMENT_SIZE).unwrap();
        let snap = protobuf::Message::write_to_bytes(&snapshot(12, 1, vec![1])).unwrap();
        db.open_tree(SNAPSHOT_TREE)
            .unwrap()
            .insert(K_SNAPSHOT, snap)
            .unwrap();
        db.flush().unwrap();
    }
    {
        let (store, _) = open_once_unlocked(dir.path(), 1).unwrap();
        assert_eq!(store.first_index().unwrap(), 13);
        assert_eq!(store.last_index().unwrap(), 20);
        assert_eq!(store.entries(13, 21, None).unwrap(), es[12..]);
        assert_eq!(store.initial_state().unwrap().hard_state.commit, 12);
        assert_eq!(store.term(12).unwrap(), 1);
    }
    let db = open_sled(&dir.path().join(DB_DIR), SEGMENT_SIZE).unwrap();
    let left: Vec<u64> = db
        .scan_prefix(LOG_PREFIX)
        .keys()
        .map(|k| u64::from_be_bytes(k.unwrap()[4..].try_into().unwrap()))
        .collect();
    assert_eq!(
        left,
        (13..=20).collect::<Vec<_>>(),
        "covered entries removed"
    );
}

/// A compaction removes what it covers and keeps the rest, while appends go on beside it.
#[test]
fn sled_store_compacts_beside_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open_once_unlocked(dir.path(), 1).unwrap();
    let store: Arc<SledStore> = Arc::new(store);
    store
        .persist(
            &(1..=2000).map(|i| entry(i, 1)).collect::<Vec<_>>(),
            None,
            None,
            true,
        )
        .unwrap();
    let compacting = {
        let store = store.clone();
        std::thread::spawn(move || store.compact(&snapshot(1500, 1, vec![1])))
    };
    for i in 2001..=2300 {
        store.persist(&[entry(i, 1)], None, None, true).unwrap();
    }
    compacting.join().unwrap().unwrap();
    assert_eq!(store.first_index().unwrap(), 1501);
    assert_eq!(store.last_index().unwrap(), 2300);
    assert_eq!(store.entries(1501, 2301, None).unwrap().len(), 800);
    assert!(matches!(
        store.entries(1500, 1502, None),
        Err(StoreError::Compacted)
    ));
    drop(store);
    let (store, _) = open_once_unlocked(dir.path(), 1).unwrap();
    assert_eq!(store.first_index().unwrap(), 1501);
    assert_eq!(store.last_index().unwrap(), 2300);
}

/// A log with a hole (an entry lost from the middle) is refused on open, naming the entry.
#[test]
fn sled_store_refuses_a_log_with_a_missing_entry() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 5);
    {
        let db = open_sled(&dir.path().join(DB_DIR), SEGMENT_SIZE).unwrap();
        assert!(db.remove(log_key(3)).unwrap().is_some());
        db.flush().unwrap();
    }
    let err = open_once_unlocked(dir.path(), 1)
        .err()
        .expect("a hole must be refused");
    assert!(matches!(err, OpenError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("log entry 3 is missing"), "{err}");
}

#[test]
fn sled_store_refuses_another_nodes_dir() {
    let dir = tempfile::tempdir().unwrap();
    drop(open_once_unlocked(dir.path(), 1).unwrap());
    let err = open_once_unlocked(dir.path(), 2).err().unwrap();
    assert!(matches!(
        err,
        OpenError::WrongNode {
            stored: 1,
            given: 2,
            ..
        }
    ));
    assert!(err.to_string().contains("--id 1"));
}

#[test]
fn sled_store_refuses_a_foreign_dir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let err = open_once_unlocked(dir.path(), 1).err().unwrap();
    assert!(matches!(err, OpenError::Foreign { .. }), "{err}");
    assert!(err.to_string().contains("notes.txt"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "mine",
        "nothing of a foreign dir is touched"
    );
}

#[test]
fn sled_store_refuses_a_corrupt_dir() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 50);
    // Overwrite every sled file with garbage.
    for f in walk(&dir.path().join(DB_DIR)) {
        let len = std::fs::metadata(&f).unwrap().len().max(64) as usize;
        std::fs::write(&f, vec![0xA5; len]).unwrap();
    }
    let err = open_once_unlocked(dir.path(), 1)
        .err()
        .expect("corruption must be refused");
    assert!(
        matches!(err, OpenError::Corrupt { .. } | OpenError::Io { .. }),
        "{err}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
