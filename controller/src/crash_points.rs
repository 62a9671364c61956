//! Crash points: named places in the write path where a test can make the process die on the
//! spot, to prove that a node crashing there restarts without losing or duplicating anything.
//!
//! The points are `fail` crate failpoints (`fail_point!`), compiled in only with the
//! `failpoints` feature — the test build turns it on, release builds do not have it. A process
//! built with it reads `PLD_CRASH_AT=POINT[:N]` and aborts (SIGABRT: no destructors, no flushes,
//! like a power cut for everything not yet fsynced) the N-th time (default 1st) it reaches POINT.
//!
//! The points, in the order a write meets them:
//!
//! | point | where |
//! |---|---|
//! | `persist-before` | a Ready's entries and HardState are about to be written |
//! | `store-batch-applied` | sled has the batch in memory, not yet fsynced |
//! | `persist-after` | fsynced, before the messages that depend on it are sent |
//! | `apply-entry` | a committed entry is about to be applied to the catalog |
//! | `conf-change-persisted` | a membership change is on disk, not yet in the catalog |
//! | `snapshot-create` | a snapshot is encoded, the log not yet compacted |
//! | `snapshot-stored` | a new snapshot is durable, the log's start not yet moved past it nor the entries it covers removed |
//! | `snapshot-compacted` | the log was compacted to a new snapshot |
//! | `snapshot-install-before` | a leader's snapshot arrived, not yet stored |
//! | `snapshot-install-after` | it is stored, the catalog not yet replaced |
//!
//! One point fails instead of crashing: `store-flush-error` makes the N-th fsync of the log
//! report an I/O error, as a dying disk would.

/// Every crash point, for tests that go through them all.
pub const POINTS: &[&str] = &[
    "persist-before",
    "store-batch-applied",
    "persist-after",
    "apply-entry",
    "conf-change-persisted",
    "snapshot-create",
    "snapshot-stored",
    "snapshot-compacted",
    "snapshot-install-before",
    "snapshot-install-after",
    FLUSH_ERROR,
];

/// The point where an fsync fails (returns an error) rather than the process crashing.
pub const FLUSH_ERROR: &str = "store-flush-error";

/// The environment variable that arms a crash point.
pub const ENV: &str = "PLD_CRASH_AT";

/// Arms the crash point named by `PLD_CRASH_AT`, if set.
///
/// # Errors
/// When the value names no crash point or its count is not a positive number, or when this
/// build has no crash points (it was built without the `failpoints` feature).
pub fn arm_from_env() -> Result<(), String> {
    let Ok(value) = std::env::var(ENV) else {
        return Ok(());
    };
    let (point, count) = parse(&value)?;
    arm(point, count).map_err(|e| format!("{ENV}={value:?}: {e}"))
}

/// `POINT[:N]` → the point and N (default 1).
fn parse(value: &str) -> Result<(&str, u64), String> {
    let (point, count) = match value.split_once(':') {
        Some((p, n)) => (
            p,
            n.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{ENV}={value:?}: the count after ':' must be 1 or more"))?,
        ),
        None => (value, 1),
    };
    if !POINTS.contains(&point) {
        return Err(format!(
            "{ENV}={value:?}: no crash point {point:?}; the points are {}",
            POINTS.join(", ")
        ));
    }
    Ok((point, count))
}

#[cfg(feature = "failpoints")]
fn arm(point: &str, count: u64) -> Result<(), String> {
    use std::sync::atomic::{AtomicU64, Ordering};
    if point == FLUSH_ERROR {
        // Pass the first count - 1 times, then fail every time (a dead disk stays dead).
        let actions = match count {
            1 => "return".to_string(),
            n => format!("{}*off->return", n - 1),
        };
        return fail::cfg(point, &actions);
    }
    let reached = AtomicU64::new(0);
    let name = point.to_string();
    fail::cfg_callback(point, move || {
        if reached.fetch_add(1, Ordering::SeqCst) + 1 == count {
            eprintln!("crash point {name} reached {count} time(s): aborting");
            std::process::abort();
        }
    })
}

#[cfg(not(feature = "failpoints"))]
fn arm(_point: &str, _count: u64) -> Result<(), String> {
    Err("this build has no crash points (build with the `failpoints` feature)".into())
}

/// Marks a crash point; nothing at all without the `failpoints` feature.
macro_rules! crash_point {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        fail::fail_point!($name);
    };
}
pub(crate) use crash_point;

/// Marks a point where an I/O step can be made to fail: returns the error from the enclosing
/// function when armed; nothing at all without the `failpoints` feature.
macro_rules! io_fault_point {
    ($name:expr) => {
        #[cfg(feature = "failpoints")]
        fail::fail_point!($name, |_| Err(crate::storage::StoreError::Io(format!(
            "fsync failed: Input/output error (injected at {})",
            $name
        ))));
    };
}
pub(crate) use io_fault_point;

#[cfg(test)]
mod tests {
    #[test]
    fn a_crash_point_setting_is_parsed_or_refused_by_name() {
        assert_eq!(super::parse("apply-entry"), Ok(("apply-entry", 1)));
        assert_eq!(super::parse("apply-entry:7"), Ok(("apply-entry", 7)));
        let e = super::parse("apply").unwrap_err();
        assert!(
            e.contains("no crash point \"apply\"") && e.contains("persist-before"),
            "{e}"
        );
        let e = super::parse("apply-entry:0").unwrap_err();
        assert!(e.contains("must be 1 or more"), "{e}");
    }

    #[test]
    fn every_point_is_marked_in_the_code() {
        // Every file of the node, read from the source tree so a file added later is covered.
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut sources = String::from(include_str!("storage/sled_store.rs"));
        for entry in std::fs::read_dir(src.join("node")).expect("the node's sources") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                continue;
            }
            sources += &std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        }
        for point in super::POINTS.iter().filter(|p| **p != super::FLUSH_ERROR) {
            assert!(
                sources.contains(&format!("crash_point!(\"{point}\")")),
                "{point} is listed but not marked"
            );
        }
    }
}
