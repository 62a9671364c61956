//! Group commit: commands that arrive while the node's previous batch is on its way to a
//! quorum wait (at most [`MAX_BATCH_WAIT`]) and are proposed together as one log entry, so
//! many writes share one append per follower and one fsync per node.

use std::time::{Duration, Instant};

use pld_core::command::{Command, Envelope};
use prost::Message as _;

use super::message::Reply;
use super::{Node, NodeError};

/// Largest batch of commands in one log entry: a bound on entry size, so one append stays far
/// below the transport's message limit and a follower's apply stays short.
pub(super) const MAX_ENTRY_BYTES: usize = 512 * 1024;
/// Batches a node keeps in flight (proposed, not yet applied; a follower's go to the leader)
/// before new commands wait to form the next one: group commit across the whole round trip,
/// not only one loop turn. Every
/// batch costs a persist and an fsync on each node and an append per follower whatever its
/// size, so under load fewer, larger batches carry more writes on the same CPU; a command that
/// arrives when none is in flight (a lone client) is proposed at once. One measured best of
/// 1, 2 and unlimited (BENCHMARKS.md).
pub(super) const MAX_INFLIGHT_BATCHES: usize = 1;
/// Longest a command waits for the batches in flight before it is proposed anyway.
pub(super) const MAX_BATCH_WAIT: Duration = Duration::from_millis(2);

impl Node {
    /// Adds a proposal to the batch being gathered; proposes the batch at once when it is as
    /// large as one entry may be.
    pub(super) fn queue_proposal(&mut self, cmd: Command, reply: Reply) {
        if !self.leader_known() {
            let _ = reply.send(Err(NodeError::NoLeader));
            return;
        }
        self.batch_bytes += cmd.encoded_len();
        self.batch_since.get_or_insert_with(Instant::now);
        self.batch.push((cmd, reply));
        if self.batch_bytes >= MAX_ENTRY_BYTES {
            self.propose_batch();
        }
    }

    /// Whether the gathered commands should be proposed now: fewer than
    /// [`MAX_INFLIGHT_BATCHES`] are in flight, or the oldest has waited [`MAX_BATCH_WAIT`].
    pub(super) fn batch_due(&self) -> bool {
        match self.batch_since {
            None => false,
            Some(since) => {
                self.inflight.len() < MAX_INFLIGHT_BATCHES || since.elapsed() >= MAX_BATCH_WAIT
            }
        }
    }

    /// Proposes the gathered commands as one log entry: one append, one persist and one
    /// replication message for all of them instead of one each.
    pub(super) fn propose_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        self.batch_bytes = 0;
        self.batch_since = None;
        let (mut commands, replies): (Vec<Command>, Vec<Reply>) = self.batch.drain(..).unzip();
        let nonce = self.nonce();
        let envelope = if commands.len() == 1 {
            Envelope {
                proposer: self.id,
                nonce,
                command: commands.pop(),
                commands: Vec::new(),
            }
        } else {
            Envelope {
                proposer: self.id,
                nonce,
                command: None,
                commands,
            }
        };
        let failed = match self.raw.propose(vec![], envelope.encode_to_bytes()) {
            Ok(()) => {
                self.metrics.proposed_entries.increment(1);
                self.metrics
                    .proposed_commands
                    .increment(replies.len() as u64);
                self.pending.insert(nonce, replies);
                self.inflight.insert(nonce, Instant::now());
                return;
            }
            Err(raft::Error::ProposalDropped) => NodeError::NoLeader,
            Err(e) => NodeError::Raft(e.to_string()),
        };
        for reply in replies {
            let _ = reply.send(Err(failed.clone()));
        }
    }
}
