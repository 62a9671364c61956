//! A node's tuning.

use std::time::Duration;

/// Tuning of a node. The defaults suit a LAN cluster.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Raft id, non-zero.
    pub id: u64,
    /// Length of one raft tick.
    pub tick: Duration,
    /// Ticks without a leader before an election (randomised up to twice this).
    pub election_ticks: usize,
    /// Ticks between leader heartbeats.
    pub heartbeat_ticks: usize,
    /// Applied entries between state-machine snapshots (and log compactions).
    pub snapshot_every: u64,
    /// Change events kept for watches.
    pub history_limit: usize,
    /// How long a write or read barrier may wait for the cluster before failing as unavailable.
    pub request_timeout: Duration,
    /// The cluster id the config pins; `None` lets the first leader make one (see
    /// [`pld_core::catalog::cluster_id`]).
    pub cluster_id: Option<String>,
}

/// Default number of applied entries between snapshots.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 10_000;

impl NodeConfig {
    /// Defaults for node `id`.
    pub fn new(id: u64) -> Self {
        NodeConfig {
            id,
            tick: Duration::from_millis(100),
            election_ticks: 10,
            heartbeat_ticks: 2,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            history_limit: pld_core::catalog::DEFAULT_HISTORY_LIMIT,
            request_timeout: Duration::from_secs(3),
            cluster_id: None,
        }
    }
}
