//! Handling a Ready in the order raft-rs documents (the module docs of [`super`]), persisting
//! entries and the HardState, installing a leader's snapshot, and sending messages — with a
//! leader's commit index carried by the next append rather than sent alone.

use std::time::{Duration, Instant};

use pld_core::Catalog;
use raft::eraftpb::{Entry, HardState, Message, MessageType, Snapshot};
use raft::StateRole;
use tracing::info;

use super::Node;
use crate::crash_points::crash_point;
use crate::storage::StoreError;

/// How long a leader waits for an append to carry a new commit index to a follower before it
/// sends one for that alone. raft-rs would send it at once, as an empty append to every
/// follower the moment a write commits: each follower wakes twice per write, answers twice,
/// and all of it competes for the CPU with the reply to the client that is just going out.
/// Under load the next write's append carries the commit index anyway; when the cluster goes
/// quiet, followers (their watchers, stale reads and forwarded writes) learn it this much later.
pub(super) const COMMIT_BROADCAST_DELAY: Duration = Duration::from_millis(1);
/// Turns the raft thread's runtime gets between queueing messages to peers and a blocking
/// write: a message passes the peer's sender task, the gRPC stream's body and the HTTP/2
/// connection task, one turn each, before it reaches the socket. One more for slack; a message
/// that needs more goes out after the write, which is correct, only later.
const SEND_YIELDS: usize = 4;

impl Node {
    pub(super) fn send_messages(&mut self, msgs: Vec<Message>) {
        if msgs.is_empty() {
            return;
        }
        for m in &msgs {
            if m.get_msg_type() == MessageType::MsgAppend {
                let sent = self.commit_sent.entry(m.to).or_default();
                *sent = (*sent).max(m.commit);
            }
        }
        self.transport.send(msgs);
    }

    /// On a leader, schedules telling the followers of a commit index that no append to them
    /// has carried ([`COMMIT_BROADCAST_DELAY`]). Followers that cannot be sent to now (paused,
    /// probing) are left to raft's own retries, so an unreachable one does not keep a timer.
    pub(super) fn schedule_commit_broadcast(&mut self) {
        if self.commit_due.is_none() && self.followers_lag_commit() {
            self.commit_due = Some(Instant::now() + COMMIT_BROADCAST_DELAY);
        }
    }

    /// Whether this node leads and a follower it can send to has not been sent the commit
    /// index in an append.
    pub(super) fn followers_lag_commit(&self) -> bool {
        if self.raw.raft.state != StateRole::Leader {
            return false;
        }
        let committed = self.raw.raft.raft_log.committed;
        self.raw.raft.prs().iter().any(|(id, pr)| {
            *id != self.id
                && !pr.is_paused()
                && self.commit_sent.get(id).copied().unwrap_or(0) < committed
        })
    }

    /// Handles one Ready; returns whether there was one.
    pub(super) async fn on_ready(&mut self) -> Result<bool, StoreError> {
        if !self.raw.has_ready() {
            return Ok(false);
        }
        let mut ready = self.raw.ready();
        if let Some(ss) = ready.ss() {
            let leader = ss.raft_state == StateRole::Leader;
            if leader && self.leader_since.is_none() {
                info!(node = self.id, term = self.raw.raft.term, "became leader");
                self.leader_since = Some(Instant::now());
            } else if !leader {
                self.leader_since = None;
            }
            // Batches of an earlier leadership may never be applied; none may hold up new ones.
            self.inflight.clear();
            self.commit_sent.clear();
            self.commit_due = None;
            self.fail_reads_of_old_leadership();
        }
        let messages = ready.take_messages();
        let messages_queued = !messages.is_empty();
        self.send_messages(messages);
        if !ready.snapshot().is_empty() {
            self.install_snapshot(ready.snapshot().clone())?;
        }
        // A leader applies now, a follower once it has answered (see the module docs).
        let mut committed = ready.take_committed_entries();
        if self.raw.raft.state == StateRole::Leader {
            self.apply_committed(std::mem::take(&mut committed))?;
        }
        self.read_indexes_known(ready.take_read_states());
        // Term and vote must be durable before we answer; a commit-only change need not be
        // (raft re-learns the commit index), so it is not written on every append.
        let hard_state = ready
            .hs()
            .filter(|hs| (hs.term, hs.vote) != (self.persisted_vote.0, self.persisted_vote.1));
        if let Some(hs) = hard_state {
            self.persisted_vote = (hs.term, hs.vote);
        }
        crash_point!("persist-before");
        self.persist(
            ready.entries(),
            hard_state,
            ready.must_sync() || !ready.entries().is_empty(),
            messages_queued,
        )
        .await?;
        crash_point!("persist-after");
        self.send_messages(ready.take_persisted_messages());
        self.apply_committed(committed)?;
        let mut light = self.raw.advance(ready);
        // A commit index from the LightReady is not persisted: raft re-learns it from the
        // leader, and compaction stores a commit at least as high as the snapshot.
        self.send_messages(light.take_messages());
        self.apply_committed(light.take_committed_entries())?;
        self.raw.advance_apply_to(self.applied_index);
        self.after_apply()?;
        self.schedule_commit_broadcast();
        Ok(true)
    }

    /// Persists a Ready's entries and HardState, on this thread: the write blocks it, and
    /// with it the peer connections its runtime drives. So when messages to peers were queued
    /// just before (a leader's appends, which the write must not hold up), the runtime first
    /// gets [`SEND_YIELDS`] turns to carry them to the sockets.
    pub(super) async fn persist(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        sync: bool,
        messages_queued: bool,
    ) -> Result<(), StoreError> {
        if messages_queued && sync {
            for _ in 0..SEND_YIELDS {
                tokio::task::yield_now().await;
            }
        }
        let started = Instant::now();
        self.store.persist(entries, hard_state, None, sync)?;
        if sync {
            self.metrics.persist_seconds.record(started.elapsed());
        }
        Ok(())
    }

    pub(super) fn install_snapshot(&mut self, snap: Snapshot) -> Result<(), StoreError> {
        let meta = snap.get_metadata();
        let catalog = Catalog::decode_snapshot(&snap.data, self.cfg.history_limit)
            .map_err(|e| StoreError::Io(format!("snapshot from the leader: {e}")))?;
        crash_point!("snapshot-install-before");
        self.store.apply_snapshot(&snap)?;
        crash_point!("snapshot-install-after");
        self.metrics.snapshots_installed.increment(1);
        info!(
            node = self.id,
            index = meta.index,
            "installed a snapshot from the leader"
        );
        self.applied_index = meta.index;
        self.conf_state = meta.get_conf_state().clone();
        self.transport.set_peers(catalog.members());
        *self.catalog.write().unwrap_or_else(|p| p.into_inner()) = catalog;
        Ok(())
    }
}
