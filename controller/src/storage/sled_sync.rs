//! What `sled::Db::flush` leaves undone, done after it.
//!
//! sled 0.34 makes its log stable on Linux with `sync_file_range(WAIT_BEFORE | WRITE |
//! WAIT_AFTER)`, which, as its man page says, flushes neither the disk's volatile write cache
//! nor the metadata a grown file needs; and it writes every page fragment larger than a quarter
//! of a segment (128 KiB with our 512 KiB segments: a large leaf of batched raft entries, every
//! snapshot) to a file of its own under `blobs/`, which it never fsyncs, nor the directory that
//! names it. A SIGKILL keeps the page cache, so no crash test sees this; a power cut would lose
//! acknowledged writes, or leave a log that points at missing blobs. So after every flush the
//! store calls [`SledSync::after_flush`]: it fsyncs the blob files written since the last call
//! and then their directory, and `fdatasync`s the log file, which also commits its size.
//!
//! New blob files are found by inotify, so a flush that wrote none (the common case) costs one
//! non-blocking read, not a directory listing. If the kernel's event queue overflowed, every
//! blob file present is synced instead.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

/// sled's folder of large pages, inside its database folder.
const BLOBS_DIR: &str = "blobs";
/// sled's log file, inside its database folder.
const LOG_FILE: &str = "db";
/// sled's own settings file, written when the database is created.
const CONF_FILE: &str = "conf";

/// Makes what `Db::flush` wrote durable.
pub(crate) struct SledSync {
    log: File,
    blobs_dir: PathBuf,
    blobs: NewFiles,
    /// Held through each [`SledSync::after_flush`]. Flushes come from two threads (the raft
    /// thread's appends, the compactor's snapshot), and a blob written by one flush may be
    /// taken from the queue by the other's `after_flush`: the second must not return before
    /// the first has synced it.
    syncing: Mutex<()>,
    /// Blob files synced since open (tests and `pld-store-bench` read it).
    blobs_synced: AtomicU64,
}

impl SledSync {
    /// Starts watching `db_dir` (sled's database folder, already opened by sled) and makes
    /// everything in it durable once: the files sled wrote while opening, and the folder
    /// entries that name them up to `data_dir`.
    ///
    /// # Errors
    /// The disk refused a sync, or inotify is unavailable.
    pub(crate) fn open(db_dir: &Path, data_dir: &Path) -> io::Result<Self> {
        let blobs_dir = db_dir.join(BLOBS_DIR);
        // Watch before the first scan, so a blob written in between is in one or the other.
        let blobs = NewFiles::watch(&blobs_dir)?;
        let log = File::open(db_dir.join(LOG_FILE))?;
        let sync = SledSync {
            log,
            blobs_dir,
            blobs,
            syncing: Mutex::new(()),
            blobs_synced: AtomicU64::new(0),
        };
        sync.sync_blobs(&all_files(&sync.blobs_dir)?)?;
        match File::open(db_dir.join(CONF_FILE)) {
            Ok(conf) => conf.sync_all()?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        sync.log.sync_all()?;
        sync_dir(db_dir)?;
        sync_dir(data_dir)?;
        Ok(sync)
    }

    /// Call after every `Db::flush`: fsyncs the blob files written since the last call and
    /// their folder, then the log file.
    ///
    /// # Errors
    /// The disk refused a sync. The caller must treat the flush as failed.
    pub(crate) fn after_flush(&self) -> io::Result<()> {
        let _one_at_a_time = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
        let new = match self.blobs.take()? {
            Changes::Named(names) => names,
            Changes::Overflowed => all_files(&self.blobs_dir)?,
        };
        self.sync_blobs(&new)?;
        self.log.sync_data()
    }

    /// Blob files synced since open.
    pub(crate) fn blobs_synced(&self) -> u64 {
        self.blobs_synced.load(Ordering::Relaxed)
    }

    fn sync_blobs(&self, names: &BTreeSet<OsString>) -> io::Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let mut synced = 0;
        for name in names {
            match File::open(self.blobs_dir.join(name)) {
                Ok(f) => {
                    f.sync_data()?;
                    synced += 1;
                }
                // sled removes blobs it no longer needs; one gone already needs no sync.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        sync_dir(&self.blobs_dir)?;
        self.blobs_synced.fetch_add(synced, Ordering::Relaxed);
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn all_files(dir: &Path) -> io::Result<BTreeSet<OsString>> {
    std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect()
}

/// Files created or written in one folder since the last look.
pub(crate) struct NewFiles {
    inotify: Inotify,
}

/// What [`NewFiles::take`] found.
pub(crate) enum Changes {
    /// These files (possibly none) were created or written.
    Named(BTreeSet<OsString>),
    /// The kernel dropped events: anything may have changed.
    Overflowed,
}

impl NewFiles {
    /// Watches `dir` from now on.
    pub(crate) fn watch(dir: &Path) -> io::Result<Self> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        inotify.add_watch(
            dir,
            AddWatchFlags::IN_CREATE | AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_MOVED_TO,
        )?;
        Ok(NewFiles { inotify })
    }

    /// The files created or written since the last call.
    pub(crate) fn take(&self) -> io::Result<Changes> {
        let mut names = BTreeSet::new();
        loop {
            match self.inotify.read_events() {
                Ok(events) => {
                    for event in events {
                        if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                            // Drain what is left, then report that names are not enough.
                            while self.inotify.read_events().is_ok() {}
                            return Ok(Changes::Overflowed);
                        }
                        if let Some(name) = event.name {
                            names.insert(name);
                        }
                    }
                }
                Err(Errno::EAGAIN) => return Ok(Changes::Named(names)),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(changes: Changes) -> Vec<String> {
        match changes {
            Changes::Named(names) => names
                .into_iter()
                .map(|n| n.to_string_lossy().into_owned())
                .collect(),
            Changes::Overflowed => panic!("unexpected overflow"),
        }
    }

    #[test]
    fn new_files_names_each_file_written_since_the_last_look_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("before"), b"x").unwrap();
        let files = NewFiles::watch(dir.path()).unwrap();
        assert!(named(files.take().unwrap()).is_empty());
        std::fs::write(dir.path().join("1"), b"a").unwrap();
        std::fs::write(dir.path().join("2"), b"b").unwrap();
        assert_eq!(named(files.take().unwrap()), ["1", "2"]);
        assert!(named(files.take().unwrap()).is_empty());
        std::fs::write(dir.path().join("3"), b"c").unwrap();
        std::fs::remove_file(dir.path().join("1")).unwrap();
        assert_eq!(named(files.take().unwrap()), ["3"]);
    }

    #[test]
    fn a_blob_that_is_gone_before_its_sync_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sled");
        std::fs::create_dir_all(db.join(BLOBS_DIR)).unwrap();
        std::fs::write(db.join(LOG_FILE), b"log").unwrap();
        let sync = SledSync::open(&db, dir.path()).unwrap();
        std::fs::write(db.join(BLOBS_DIR).join("7"), b"page").unwrap();
        std::fs::write(db.join(BLOBS_DIR).join("8"), b"page").unwrap();
        std::fs::remove_file(db.join(BLOBS_DIR).join("7")).unwrap();
        sync.after_flush().unwrap();
        assert_eq!(sync.blobs_synced(), 1);
        sync.after_flush().unwrap();
        assert_eq!(sync.blobs_synced(), 1, "nothing new, nothing synced");
    }
}
