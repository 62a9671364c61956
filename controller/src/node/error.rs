//! Why a request to the node, or the node's start, failed.

use std::time::Duration;

use pld_core::CatalogError;

use crate::storage::StoreError;

/// Why a request to the node failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NodeError {
    /// No leader is known (election in progress, or this node is cut off).
    #[error("no raft leader is known; the cluster may be electing or this node is partitioned")]
    NoLeader,
    /// The request was not completed in time; for a write its outcome is unknown.
    #[error("not committed within {0:?}; the outcome is unknown")]
    Timeout(Duration),
    /// The catalog refused the command.
    #[error(transparent)]
    Rejected(#[from] CatalogError),
    /// The node stopped (shutdown or a fatal storage error).
    #[error("node stopped: {0}")]
    Stopped(String),
    /// raft-rs refused the request.
    #[error("raft: {0}")]
    Raft(String),
}

/// Fatal errors while starting a node.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("reading raft state: {0}")]
    Store(#[from] StoreError),
    #[error("the stored snapshot is unreadable: {0}")]
    Snapshot(CatalogError),
    #[error("raft refused the stored state: {0}")]
    Raft(#[from] raft::Error),
    /// The raft thread or its runtime could not be started.
    #[error("starting the raft thread: {0}")]
    Thread(std::io::Error),
}
