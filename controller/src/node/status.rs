//! What the raft thread publishes after a Ready or a tick: its [`RaftInfo`] for status calls,
//! and the metrics that mirror it.

use std::collections::BTreeMap;
use std::time::Instant;

use raft::StateRole;

use super::{Node, RaftInfo};

impl Node {
    pub(super) fn publish_info(&mut self) {
        let leader = self.raw.raft.leader_id;
        if leader != 0 && leader != self.last_leader {
            self.metrics.leader_changes.increment(1);
        }
        if leader != 0 {
            self.last_leader = leader;
        }
        let raft = &self.raw.raft;
        let role = match raft.state {
            StateRole::Leader => "leader",
            StateRole::Follower => "follower",
            StateRole::Candidate => "candidate",
            StateRole::PreCandidate => "pre-candidate",
        };
        let matched = if raft.state == StateRole::Leader {
            raft.prs().iter().map(|(id, p)| (*id, p.matched)).collect()
        } else {
            BTreeMap::new()
        };
        let info = RaftInfo {
            role,
            term: raft.term,
            leader_id: raft.leader_id,
            commit_index: raft.raft_log.committed,
            applied_index: self.applied_index,
            last_index: raft.raft_log.last_index(),
            snapshot_index: self.store.first_index().map(|i| i - 1).unwrap_or(0),
            matched,
            voters: self.conf_state.voters.clone(),
            published_at: Some(Instant::now()),
        };
        self.metrics.record_raft(&info, self.id);
        *self.info.lock().unwrap_or_else(|p| p.into_inner()) = info;
    }
}
