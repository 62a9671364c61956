//! What the node publishes about itself: its raft state for status calls and metrics, and
//! the applied position for readers. Plain data, so the modules that read it (metrics, the
//! API) need nothing else of the node.

use std::collections::BTreeMap;
use std::time::Instant;

/// The node's latest raft state, for status calls.
#[derive(Debug, Clone, Default)]
pub struct RaftInfo {
    /// "leader", "follower", "candidate" or "pre-candidate".
    pub role: &'static str,
    pub term: u64,
    pub leader_id: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_index: u64,
    pub snapshot_index: u64,
    /// Matched log index per peer, known on the leader only.
    pub matched: BTreeMap<u64, u64>,
    /// Voters in the current configuration.
    pub voters: Vec<u64>,
    /// When the raft thread last published this (after a Ready or a tick): a raft thread that
    /// stops publishing is stuck.
    pub published_at: Option<Instant>,
}

/// Applied position, published after every apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub index: u64,
    pub revision: u64,
}
