//! The callers' side of the node: a cheap, cloneable handle that proposes commands, asks for
//! read barriers and membership changes, and reads the applied catalog and the node's state.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use pld_core::command::Command;
use pld_core::{Catalog, Outcome};
use raft::eraftpb::ConfChangeType;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{oneshot, watch};

use super::{Applied, NodeError, NodeMsg, RaftInfo};
use crate::metrics::ControllerMetrics;

/// A cheap, cloneable way to talk to the node.
#[derive(Clone)]
pub struct NodeHandle {
    pub(super) id: u64,
    pub(super) tx: UnboundedSender<NodeMsg>,
    pub(super) catalog: Arc<RwLock<Catalog>>,
    pub(super) applied: watch::Receiver<Applied>,
    pub(super) info: Arc<Mutex<RaftInfo>>,
    pub(super) request_timeout: Duration,
    pub(super) metrics: Arc<ControllerMetrics>,
    /// Set once, when the raft thread stops on a storage failure.
    pub(super) fatal: watch::Receiver<Option<String>>,
}

impl NodeHandle {
    /// This node's raft id.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn send(&self, msg: NodeMsg) -> Result<(), NodeError> {
        self.tx.send(msg).map_err(|_| {
            NodeError::Stopped(
                self.fatal
                    .borrow()
                    .clone()
                    .unwrap_or_else(|| "the raft thread has exited".into()),
            )
        })
    }

    async fn wait<T>(&self, rx: oneshot::Receiver<Result<T, NodeError>>) -> Result<T, NodeError> {
        match tokio::time::timeout(self.request_timeout, rx).await {
            Err(_) => Err(NodeError::Timeout(self.request_timeout)),
            Ok(Err(_)) => Err(NodeError::Stopped(
                "the raft thread dropped the request".into(),
            )),
            Ok(Ok(result)) => result,
        }
    }

    /// Proposes a command and waits until it is committed and applied on this node.
    ///
    /// # Errors
    /// [`NodeError::Rejected`] when the catalog refused it (nothing changed); `NoLeader` or
    /// `Timeout` when the cluster could not commit it in time.
    pub async fn propose(&self, cmd: Command) -> Result<Outcome, NodeError> {
        let started = Instant::now();
        let (reply, rx) = oneshot::channel();
        self.send(NodeMsg::Propose {
            cmd: Box::new(cmd),
            reply,
        })?;
        let outcome = self.wait(rx).await;
        if !matches!(
            outcome,
            Err(NodeError::NoLeader | NodeError::Timeout(_) | NodeError::Stopped(_))
        ) {
            self.metrics.proposal_seconds.record(started.elapsed());
        }
        outcome
    }

    /// Waits until this node has applied everything committed before the call (raft ReadIndex),
    /// so that a read of the catalog afterwards is linearizable.
    ///
    /// # Errors
    /// `NoLeader` or `Timeout` when leadership could not be confirmed in time.
    pub async fn read_barrier(&self) -> Result<(), NodeError> {
        let (reply, rx) = oneshot::channel();
        self.send(NodeMsg::ReadIndex { reply })?;
        self.wait(rx).await
    }

    /// Adds (or re-addresses) a voting member and waits until the change is applied here.
    ///
    /// # Errors
    /// As [`NodeHandle::propose`].
    pub async fn add_member(&self, node_id: u64, address: String) -> Result<(), NodeError> {
        let (reply, rx) = oneshot::channel();
        self.send(NodeMsg::ConfChange {
            change: ConfChangeType::AddNode,
            node_id,
            address,
            reply,
        })?;
        self.wait(rx).await
    }

    /// Removes a member and waits until the change is applied here.
    ///
    /// # Errors
    /// As [`NodeHandle::propose`].
    pub async fn remove_member(&self, node_id: u64) -> Result<(), NodeError> {
        let (reply, rx) = oneshot::channel();
        self.send(NodeMsg::ConfChange {
            change: ConfChangeType::RemoveNode,
            node_id,
            address: String::new(),
            reply,
        })?;
        self.wait(rx).await
    }

    /// The applied catalog. Hold the guard briefly: the raft thread waits for it to apply.
    pub fn catalog(&self) -> std::sync::RwLockReadGuard<'_, Catalog> {
        // A poisoned lock means the raft thread panicked mid-apply; the state it left is the
        // last consistent one we have, and the node is already failing, so reading it is fine.
        self.catalog.read().unwrap_or_else(|p| p.into_inner())
    }

    /// A receiver that changes whenever the node applies entries.
    pub fn applied(&self) -> watch::Receiver<Applied> {
        self.applied.clone()
    }

    /// The latest raft state.
    pub fn info(&self) -> RaftInfo {
        self.info.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Why the node stopped, if a storage failure stopped it.
    pub fn fatal(&self) -> Option<String> {
        self.fatal.borrow().clone()
    }

    /// Resolves when a storage failure stops the node, with what failed.
    pub async fn failed(&self) -> String {
        let mut fatal = self.fatal.clone();
        let why = match fatal.wait_for(Option::is_some).await {
            Ok(why) => why.clone(),
            Err(_) => None,
        };
        match why {
            Some(why) => why,
            // The raft thread is gone without a failure recorded (shutdown): never resolves.
            None => std::future::pending().await,
        }
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Arc<ControllerMetrics> {
        &self.metrics
    }

    /// Stops the raft thread.
    pub fn shutdown(&self) {
        let _ = self.tx.send(NodeMsg::Shutdown);
    }
}
