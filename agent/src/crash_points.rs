//! Crash points in reconciliation: named places between the AWS calls of one step, where a
//! test makes the agent stop dead (the reconcile task panics there and the test aborts the rest,
//! as a kill would), to prove that a restarted agent converges with no duplicate and no leaked
//! resource. `fail` crate failpoints, compiled in only with the `failpoints` feature.
//!
//! Tags are not a separate step: they are part of every create call (TagSpecifications), so a
//! resource never exists untagged.

/// Every crash point.
pub const POINTS: &[&str] = &[
    // Provider.
    "provider-service-created",
    "provider-connections-accepted",
    "provider-service-deleting",
    // Provider: the network load balancer in front of an ALB.
    "provider-front-load-balancer-created",
    "provider-front-target-group-created",
    "provider-front-targets-registered",
    "provider-front-listener-created",
    "provider-front-listener-deleted",
    "provider-front-target-group-deleted",
    // Consumer.
    "consumer-endpoint-created",
    "consumer-zone-created",
    "consumer-dns-submitted",
    "consumer-endpoint-deleted",
];

/// Arms `point`: the first time any agent in this process reaches it, its reconcile task
/// panics there. Returns a flag set when that happened. Later passes go through.
///
/// # Errors
/// When `point` is not one of [`POINTS`].
#[cfg(feature = "failpoints")]
pub fn crash_once_at(
    point: &'static str,
) -> Result<std::sync::Arc<std::sync::atomic::AtomicBool>, String> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    if !POINTS.contains(&point) {
        return Err(format!("no crash point {point:?}"));
    }
    let crashed = Arc::new(AtomicBool::new(false));
    let flag = crashed.clone();
    fail::cfg_callback(point, move || {
        if !flag.swap(true, Ordering::SeqCst) {
            panic!("crash point {point}: the agent stops here");
        }
    })?;
    Ok(crashed)
}

/// Disarms `point`.
#[cfg(feature = "failpoints")]
pub fn disarm(point: &str) {
    fail::remove(point);
}

/// Marks a crash point; nothing at all without the `failpoints` feature.
macro_rules! crash_point {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        fail::fail_point!($name);
    };
}
pub(crate) use crash_point;

#[cfg(test)]
mod tests {
    /// Every file of the reconciler, read from the source tree so a file added later is
    /// covered without listing it here.
    fn reconciler_sources() -> Vec<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/reconcile");
        let mut sources: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|entry| {
                let path = entry.expect("a directory entry").path();
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                (path.display().to_string(), text)
            })
            .collect();
        sources.sort();
        assert!(
            sources.len() > 1,
            "no reconciler sources in {}",
            dir.display()
        );
        sources
    }

    #[test]
    fn every_point_is_marked_in_the_code() {
        let sources = reconciler_sources();
        for point in super::POINTS {
            let mark = format!("crash_point!(\"{point}\")");
            assert!(
                sources.iter().any(|(_, text)| text.contains(&mark)),
                "{point} is listed but not marked"
            );
        }
    }

    #[test]
    fn every_mark_in_the_code_is_listed() {
        for (path, text) in reconciler_sources() {
            for mark in text.split("crash_point!(\"").skip(1) {
                let point = mark.split('"').next().unwrap_or_default();
                assert!(
                    super::POINTS.contains(&point),
                    "{path} marks {point:?}, which POINTS does not list"
                );
            }
        }
    }
}
