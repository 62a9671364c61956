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
    #[test]
    fn every_point_is_marked_in_the_code() {
        let source = include_str!("reconcile/mod.rs");
        for point in super::POINTS {
            assert!(
                source.contains(&format!("crash_point!(\"{point}\")")),
                "{point} is listed but not marked"
            );
        }
    }
}
