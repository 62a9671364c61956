//! What reaches the raft thread: every request, peer message and report arrives on one
//! channel as a [`NodeMsg`]. The transport and the API put messages on it, so this module
//! depends on nothing of the node's but its errors.

use pld_core::command::Command;
use pld_core::Outcome;
use raft::eraftpb::{ConfChangeType, Message};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;

use super::error::NodeError;

/// What callers send to the raft thread.
pub(crate) enum NodeMsg {
    Raft(Box<Message>),
    Propose {
        cmd: Box<Command>,
        reply: oneshot::Sender<Result<Outcome, NodeError>>,
    },
    ReadIndex {
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    ConfChange {
        change: ConfChangeType,
        node_id: u64,
        address: String,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    Unreachable(u64),
    SnapshotReport {
        to: u64,
        failed: bool,
    },
    Shutdown,
}

/// Rides in a raft ConfChange's context: the member's address and who waits for the change.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct ConfChangeContext {
    #[prost(string, tag = "1")]
    pub(super) address: String,
    #[prost(uint64, tag = "2")]
    pub(super) proposer: u64,
    #[prost(uint64, tag = "3")]
    pub(super) nonce: u64,
}

/// Where a proposal's outcome goes.
pub(super) type Reply = oneshot::Sender<Result<Outcome, NodeError>>;

/// The channel callers and the transport use to reach a node that is about to start.
pub(crate) fn channel() -> (UnboundedSender<NodeMsg>, UnboundedReceiver<NodeMsg>) {
    mpsc::unbounded_channel()
}
