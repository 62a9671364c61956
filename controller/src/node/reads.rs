//! Linearizable read barriers (ReadIndex): a read asks the leader for its commit index, then
//! waits until this node has applied that far. Reads of an earlier leadership are failed, as
//! their index may never be confirmed.

use raft::ReadState;
use tokio::sync::oneshot;

use super::{Node, NodeError};

/// Where a read barrier's answer goes.
pub(super) type ReadReply = oneshot::Sender<Result<(), NodeError>>;

impl Node {
    /// Asks raft for the index a linearizable read must wait for.
    pub(super) fn read_index(&mut self, reply: ReadReply) {
        if !self.leader_known() {
            let _ = reply.send(Err(NodeError::NoLeader));
            return;
        }
        let ctx = self.nonce();
        self.raw.read_index(ctx.to_be_bytes().to_vec());
        self.pending_reads.insert(ctx, reply);
    }

    /// Read indexes raft confirmed: their reads wait for apply to reach them.
    pub(super) fn read_indexes_known(&mut self, states: Vec<ReadState>) {
        for rs in states {
            let ctx = <[u8; 8]>::try_from(rs.request_ctx.as_slice())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if let Some(tx) = self.pending_reads.remove(&ctx) {
                self.waiting_reads.push((rs.index, tx));
            }
        }
    }

    /// Answers the reads whose index this node has applied.
    pub(super) fn release_reads(&mut self) {
        let applied_index = self.applied_index;
        let mut i = 0;
        while i < self.waiting_reads.len() {
            if self.waiting_reads[i].0 <= applied_index {
                let (_, tx) = self.waiting_reads.swap_remove(i);
                let _ = tx.send(Ok(()));
            } else {
                i += 1;
            }
        }
    }

    /// Reads waiting for a ReadIndex from a previous leadership may never be answered.
    pub(super) fn fail_reads_of_old_leadership(&mut self) {
        for (_, tx) in self.pending_reads.drain() {
            let _ = tx.send(Err(NodeError::NoLeader));
        }
    }
}
