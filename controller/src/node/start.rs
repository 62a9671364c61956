//! Start-up: a new cluster's bootstrap (the same snapshot on every founding member), the
//! node's state read back from its store, and the raft thread with its own runtime.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use pld_core::Catalog;
use raft::eraftpb::ConfState;
use raft::RawNode;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;
use tracing::info;

use super::apply::snapshot;
use super::{Applied, Node, NodeConfig, NodeHandle, NodeMsg, RaftInfo, StartError};
use crate::metrics::ControllerMetrics;
use crate::storage::{LogStore, RaftStorage};
use crate::transport::Transport;

/// How a node's raft state begins when its store is empty.
pub enum Start {
    /// The store holds state already, or this node waits to be added by a leader (`--join`).
    Existing,
    /// Bootstrap a new cluster of these members (id → address), identically on each of them.
    Bootstrap(BTreeMap<u64, String>),
}

/// The raft thread's own single-threaded runtime. It runs the node's loop and the node's
/// connections to its peers (the [`Transport`] spawns them on it), so a message the raft loop
/// sends a peer reaches the socket on the same thread, without waking another one; messages
/// and requests from other threads arrive on the node's channel. Dropped without waiting for
/// its tasks, which is safe anywhere, also inside another runtime when a start fails.
pub(crate) struct RaftRuntime {
    /// Taken only by `drop`.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl RaftRuntime {
    /// A new runtime, with I/O and timers.
    ///
    /// # Errors
    /// [`StartError::Thread`] when the OS refuses its resources.
    pub(crate) fn new() -> Result<Self, StartError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| RaftRuntime {
                handle: rt.handle().clone(),
                runtime: Some(rt),
            })
            .map_err(StartError::Thread)
    }

    /// Where the transport spawns the tasks that talk to peers.
    pub(crate) fn handle(&self) -> tokio::runtime::Handle {
        self.handle.clone()
    }

    /// Runs the node's loop until it returns.
    fn block_on(&self, node: impl std::future::Future<Output = ()>) {
        if let Some(rt) = &self.runtime {
            rt.block_on(node);
        }
    }
}

impl Drop for RaftRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Starts the raft thread.
///
/// # Errors
/// [`StartError`] when the stored state cannot be read or raft refuses it.
pub(crate) fn start(
    cfg: NodeConfig,
    store: Arc<dyn LogStore>,
    start: Start,
    transport: Arc<Transport>,
    channel: (UnboundedSender<NodeMsg>, UnboundedReceiver<NodeMsg>),
    metrics: Arc<ControllerMetrics>,
    runtime: RaftRuntime,
) -> Result<(NodeHandle, std::thread::JoinHandle<()>), StartError> {
    let (tx, rx) = channel;
    let initial = store.initial_state()?;
    if let (false, Start::Bootstrap(peers)) = (initial.initialized(), &start) {
        // Every bootstrapping member writes the same snapshot at index 1, term 1.
        let mut catalog = Catalog::new_cluster(cfg.history_limit);
        for (id, address) in peers {
            catalog.set_member(*id, address.clone());
        }
        let conf_state = ConfState {
            voters: peers.keys().copied().collect(),
            ..Default::default()
        };
        store.apply_snapshot(&snapshot(catalog.encode_snapshot(), 1, 1, conf_state))?;
        info!(node = cfg.id, members = ?peers.keys().collect::<Vec<_>>(), "bootstrapped a new cluster");
    }
    let snap = store.snapshot()?;
    let (catalog, applied) = if snap.is_empty() {
        (Catalog::new(cfg.history_limit), 0)
    } else {
        let catalog = Catalog::decode_snapshot(&snap.data, cfg.history_limit)
            .map_err(StartError::Snapshot)?;
        (catalog, snap.get_metadata().index)
    };
    let initial = store.initial_state()?;
    let raft_cfg = raft::Config {
        id: cfg.id,
        election_tick: cfg.election_ticks,
        heartbeat_tick: cfg.heartbeat_ticks,
        applied,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        check_quorum: true,
        pre_vote: true,
        // Proposals drained in one loop turn go out as one append per follower, not one each.
        batch_append: true,
        // Followers learn a new commit index from the next append; the node sends one of its
        // own only when none went out within COMMIT_BROADCAST_DELAY (see `commit_due`).
        skip_bcast_commit: true,
        ..Default::default()
    };
    raft_cfg.validate()?;
    let mut raw = RawNode::new(
        &raft_cfg,
        RaftStorage::new(store.clone()),
        &crate::raft_log::logger(),
    )?;
    if initial.conf_state.voters == [cfg.id] {
        // A single-node cluster need not wait an election timeout to lead.
        raw.campaign()?;
    }
    transport.set_peers(catalog.members());
    let revision = catalog.revision();
    let catalog = Arc::new(RwLock::new(catalog));
    let (applied_tx, applied_rx) = watch::channel(Applied {
        index: applied,
        revision,
    });
    let info = Arc::new(Mutex::new(RaftInfo::default()));
    let (fatal_tx, fatal_rx) = watch::channel(None);
    let handle = NodeHandle {
        id: cfg.id,
        tx,
        catalog: catalog.clone(),
        applied: applied_rx,
        info: info.clone(),
        request_timeout: cfg.request_timeout,
        metrics: metrics.clone(),
        fatal: fatal_rx,
    };
    let compactor = super::compactor::Compactor::start(
        cfg.id,
        store.clone(),
        metrics.clone(),
        cfg.snapshot_every,
    )
    .map_err(StartError::Thread)?;
    let node = Node {
        compactor,
        id: cfg.id,
        raw,
        store,
        transport,
        catalog,
        applied_tx,
        info,
        applied_index: applied,
        persisted_vote: (initial.hard_state.term, initial.hard_state.vote),
        conf_state: initial.conf_state,
        nonce_base: rand::random::<u64>() >> 1,
        next_nonce: 0,
        pending: HashMap::new(),
        batch: Vec::new(),
        batch_bytes: 0,
        batch_since: None,
        inflight: HashMap::new(),
        pending_conf: HashMap::new(),
        pending_reads: HashMap::new(),
        waiting_reads: Vec::new(),
        leader_since: None,
        last_expiry_proposal: Instant::now(),
        last_cluster_id_proposal: None,
        commit_sent: HashMap::new(),
        commit_due: None,
        refusals_logged: HashMap::new(),
        metrics,
        fatal: fatal_tx,
        last_leader: 0,
        cfg,
    };
    let thread = std::thread::Builder::new()
        .name(format!("raft-{}", handle.id))
        .spawn(move || runtime.block_on(node.run(rx)))
        .map_err(StartError::Thread)?;
    Ok((handle, thread))
}
