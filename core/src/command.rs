//! The commands that travel through the raft log, and their encoding.
//!
//! A log entry holds an [`Envelope`]: the command (or a batch of commands) plus who proposed it,
//! so the proposing node can answer its waiting callers when the entry is applied. Everything is protobuf (prost) so the log
//! format is compact, versionable by field tags, and the same on every replica.

use pld_proto::v1::{Object, ReportStatusRequest};
use prost::Message;

/// A log entry's payload.
#[derive(Clone, PartialEq, Message)]
pub struct Envelope {
    /// Raft id of the node that proposed the entry.
    #[prost(uint64, tag = "1")]
    pub proposer: u64,
    /// Unique per proposal on the proposer (a per-process random base plus a counter), so a
    /// restarted node never mistakes an old entry for one of its new proposals.
    #[prost(uint64, tag = "2")]
    pub nonce: u64,
    #[prost(message, optional, tag = "3")]
    pub command: Option<Command>,
    /// Several commands proposed together (the leader batches what arrives while it persists):
    /// applied in order exactly as if proposed one by one — each gets its own revision and
    /// outcome. Used instead of `command` when there is more than one.
    #[prost(message, repeated, tag = "4")]
    pub commands: Vec<Command>,
}

/// A change to the catalog.
#[derive(Clone, PartialEq, Message)]
pub struct Command {
    #[prost(oneof = "Op", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub op: Option<Op>,
    /// Set when an agent sent the command: the state machine confines it to that agent's VPC
    /// (see [`crate::access`]). Checked when the entry is applied, not when it is proposed, so
    /// a concurrent change cannot slip between the check and the write.
    #[prost(message, optional, tag = "15")]
    pub scope: Option<Scope>,
}

/// The VPC, and its account, that an agent's certificate names.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct Scope {
    /// 12-digit AWS account id.
    #[prost(string, tag = "1")]
    pub account_id: String,
    #[prost(string, tag = "2")]
    pub vpc_id: String,
}

/// The operations a [`Command`] can carry.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Op {
    #[prost(message, tag = "1")]
    Put(PutOp),
    #[prost(message, tag = "2")]
    Delete(DeleteOp),
    #[prost(message, tag = "3")]
    ReportStatus(ReportStatusRequest),
    #[prost(message, tag = "4")]
    KeepAlive(KeepAliveOp),
    #[prost(message, tag = "5")]
    ExpireLeases(ExpireLeasesOp),
    #[prost(message, tag = "6")]
    Restore(RestoreOp),
    #[prost(message, tag = "7")]
    SetClusterId(SetClusterIdOp),
}

/// Create or replace an object's spec.
#[derive(Clone, PartialEq, Message)]
pub struct PutOp {
    #[prost(message, optional, tag = "1")]
    pub object: Option<Object>,
    #[prost(uint64, optional, tag = "2")]
    pub expected_mod_revision: Option<u64>,
    /// Wall-clock time stamped by the node that accepted the request; agent leases start here.
    #[prost(uint64, tag = "3")]
    pub now_unix_ms: u64,
}

/// Delete an object.
#[derive(Clone, PartialEq, Message)]
pub struct DeleteOp {
    #[prost(enumeration = "pld_proto::v1::Kind", tag = "1")]
    pub kind: i32,
    #[prost(string, tag = "2")]
    pub key: String,
    #[prost(uint64, optional, tag = "3")]
    pub expected_mod_revision: Option<u64>,
}

/// Renew an agent's lease from `now_unix_ms`.
#[derive(Clone, PartialEq, Message)]
pub struct KeepAliveOp {
    #[prost(string, tag = "1")]
    pub vpc_id: String,
    #[prost(uint64, tag = "2")]
    pub now_unix_ms: u64,
}

/// Expire every lease that ran out at `now_unix_ms` (the leader's clock, stamped when the leader
/// decided). Applying it is deterministic: every replica expires the same agents.
#[derive(Clone, PartialEq, Message)]
pub struct ExpireLeasesOp {
    #[prost(uint64, tag = "1")]
    pub now_unix_ms: u64,
}

/// Replace the catalog with a saved snapshot (see [`crate::Catalog::encode_backup`]).
#[derive(Clone, PartialEq, Message)]
pub struct RestoreOp {
    #[prost(bytes = "vec", tag = "1")]
    pub backup: Vec<u8>,
}

/// Name the installation, once (see [`crate::catalog::cluster_id`]).
#[derive(Clone, PartialEq, Message)]
pub struct SetClusterIdOp {
    #[prost(string, tag = "1")]
    pub cluster_id: String,
}

impl Command {
    /// Wraps an operation.
    pub fn new(op: Op) -> Self {
        Command {
            op: Some(op),
            scope: None,
        }
    }

    /// Confines the command to `scope`'s VPC (`None`: unconfined).
    #[must_use]
    pub fn within(mut self, scope: Option<Scope>) -> Self {
        self.scope = scope;
        self
    }
}

impl Envelope {
    /// Encodes for a log entry.
    pub fn encode_to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    /// Decodes a log entry's data.
    ///
    /// # Errors
    /// When the bytes are not an envelope (a corrupt or foreign log).
    pub fn decode_bytes(data: &[u8]) -> Result<Self, prost::DecodeError> {
        Envelope::decode(data)
    }
}
