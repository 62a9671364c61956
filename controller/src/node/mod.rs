//! The raft node: one OS thread owns the raft-rs `RawNode`, the store and the catalog state
//! machine, and drives them in the order raft-rs documents:
//!
//! 1. send the Ready's messages (a leader may send appends before persisting its own copy);
//! 2. install a received snapshot;
//! 3. apply committed entries (already durable on a quorum);
//! 4. persist new entries and the HardState in one atomic, fsynced write;
//! 5. only then send the messages that depend on them (votes, append responses);
//! 6. advance, and handle the LightReady the same way.
//!
//! Step 3 may come anywhere before the advance, and where it comes depends on who waits: a
//! leader applies before it persists, so that its clients' answers do not wait for its own
//! fsync of the next batch; a follower applies after it has persisted and answered, so that the
//! leader's commit does not wait for the follower's apply of the previous batch.
//!
//! Everything that reaches the thread arrives on one channel, and the thread drains all queued
//! proposals before it builds a Ready; while the leader's previous batch is still on its way to
//! a quorum, new proposals wait for it (at most [`MAX_BATCH_WAIT`]) and go out together, so
//! many writes share one log entry, one append per follower and one fsync per node (group
//! commit). Callers
//! hold a [`NodeHandle`]: they propose commands, ask for linearizable read barriers (ReadIndex)
//! and read the applied catalog.
//!
//! The thread runs its loop on a runtime of its own ([`RaftRuntime`]), which also drives the
//! connections to the peers: on the way to a peer a message crosses no thread. The store's
//! writes block that thread; before one, the runtime gets a few turns to put the messages just
//! queued (a leader's appends) on the wire, so they travel while the leader writes its own copy.
//!
//! A leader does not send an append for a new commit index alone the moment it commits, as
//! raft-rs would: the next write's append carries it, and only when no append has within
//! [`COMMIT_BROADCAST_DELAY`] does the leader send one for it. Per write that spares each
//! follower a second wake-up, apply and answer, at the moment the client's reply goes out.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::FutureExt as _;
use pld_core::command::{Command, Envelope, ExpireLeasesOp, Op};
use pld_core::{Catalog, CatalogError, Outcome};
use prost::Message as _;
use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeType, ConfState, Entry, EntryType, HardState, Message, MessageType,
    Snapshot,
};
use raft::{RawNode, SnapshotStatus, StateRole};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::{oneshot, watch};
use tracing::{debug, error, info, warn};

use crate::crash_points::crash_point;
use crate::metrics::ControllerMetrics;
use crate::storage::{LogStore, RaftStorage, StoreError};
use crate::transport::Transport;

/// Tuning of a node. The defaults suit a LAN cluster.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Raft id, non-zero.
    pub id: u64,
    /// Length of one raft tick.
    pub tick: Duration,
    /// Ticks without a leader before an election (randomised up to twice this).
    pub election_ticks: usize,
    /// Ticks between leader heartbeats.
    pub heartbeat_ticks: usize,
    /// Applied entries between state-machine snapshots (and log compactions).
    pub snapshot_every: u64,
    /// Change events kept for watches.
    pub history_limit: usize,
    /// How long a write or read barrier may wait for the cluster before failing as unavailable.
    pub request_timeout: Duration,
}

/// Default number of applied entries between snapshots.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 10_000;

impl NodeConfig {
    /// Defaults for node `id`.
    pub fn new(id: u64) -> Self {
        NodeConfig {
            id,
            tick: Duration::from_millis(100),
            election_ticks: 10,
            heartbeat_ticks: 2,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            history_limit: pld_core::catalog::DEFAULT_HISTORY_LIMIT,
            request_timeout: Duration::from_secs(3),
        }
    }
}

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
struct ConfChangeContext {
    #[prost(string, tag = "1")]
    address: String,
    #[prost(uint64, tag = "2")]
    proposer: u64,
    #[prost(uint64, tag = "3")]
    nonce: u64,
}

/// A cheap, cloneable way to talk to the node.
#[derive(Clone)]
pub struct NodeHandle {
    id: u64,
    tx: UnboundedSender<NodeMsg>,
    catalog: Arc<RwLock<Catalog>>,
    applied: watch::Receiver<Applied>,
    info: Arc<Mutex<RaftInfo>>,
    request_timeout: Duration,
    metrics: Arc<ControllerMetrics>,
    /// Set once, when the raft thread stops on a storage failure.
    fatal: watch::Receiver<Option<String>>,
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

/// How a node's raft state begins when its store is empty.
pub enum Start {
    /// The store holds state already, or this node waits to be added by a leader (`--join`).
    Existing,
    /// Bootstrap a new cluster of these members (id → address), identically on each of them.
    Bootstrap(BTreeMap<u64, String>),
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

/// A raft snapshot of catalog `data` at `index`/`term`.
fn snapshot(data: Vec<u8>, index: u64, term: u64, conf_state: ConfState) -> Snapshot {
    let mut snap = Snapshot {
        data: data.into(),
        ..Default::default()
    };
    let meta = snap.mut_metadata();
    meta.index = index;
    meta.term = term;
    meta.set_conf_state(conf_state);
    snap
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The channel callers and the transport use to reach a node that is about to start.
pub(crate) fn channel() -> (UnboundedSender<NodeMsg>, UnboundedReceiver<NodeMsg>) {
    mpsc::unbounded_channel()
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
        let mut catalog = Catalog::new(cfg.history_limit);
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
    let node = Node {
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
        commit_sent: HashMap::new(),
        commit_due: None,
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

struct Node {
    id: u64,
    cfg: NodeConfig,
    raw: RawNode<RaftStorage>,
    store: Arc<dyn LogStore>,
    transport: Arc<Transport>,
    catalog: Arc<RwLock<Catalog>>,
    applied_tx: watch::Sender<Applied>,
    /// Tells the handle why the node stopped (storage failure).
    fatal: watch::Sender<Option<String>>,
    info: Arc<Mutex<RaftInfo>>,
    metrics: Arc<ControllerMetrics>,
    /// The leader id last published, to count leader changes.
    last_leader: u64,
    applied_index: u64,
    /// (term, vote) as last written to the store.
    persisted_vote: (u64, u64),
    conf_state: ConfState,
    nonce_base: u64,
    next_nonce: u64,
    /// Callers waiting for their entry, by nonce; an entry carrying a batch has one per command.
    pending: HashMap<u64, Vec<Reply>>,
    /// Proposals taken from the queue in this loop turn, proposed together as one entry.
    batch: Vec<(Command, Reply)>,
    /// Encoded size of `batch`.
    batch_bytes: usize,
    /// When the oldest command in `batch` arrived.
    batch_since: Option<Instant>,
    /// This node's proposed batches not applied yet, by nonce, with when they were proposed.
    inflight: HashMap<u64, Instant>,
    pending_conf: HashMap<u64, oneshot::Sender<Result<(), NodeError>>>,
    /// Read requests waiting for their ReadIndex, by request context.
    pending_reads: HashMap<u64, oneshot::Sender<Result<(), NodeError>>>,
    /// Read requests with a read index, waiting for apply to reach it.
    waiting_reads: Vec<(u64, oneshot::Sender<Result<(), NodeError>>)>,
    leader_since: Option<Instant>,
    last_expiry_proposal: Instant,
    /// The highest commit index an append to each peer carried, this leadership. Not raft-rs's
    /// `Progress::committed_index`, which moves only when the follower answers: under load the
    /// answer to an append that carried the commit is often still on its way when
    /// [`COMMIT_BROADCAST_DELAY`] runs out, and a broadcast then would be one append too many.
    commit_sent: HashMap<u64, u64>,
    /// When the leader tells its followers of a commit index no append has carried yet.
    commit_due: Option<Instant>,
}

/// Most messages taken from the queue before building a Ready.
const MAX_BATCH: usize = 4096;
/// Largest batch of commands in one log entry: a bound on entry size, so one append stays far
/// below the transport's message limit and a follower's apply stays short.
const MAX_ENTRY_BYTES: usize = 512 * 1024;
/// Batches a node keeps in flight (proposed, not yet applied; a follower's go to the leader)
/// before new commands wait to form the next one: group commit across the whole round trip,
/// not only one loop turn. Every
/// batch costs a persist and an fsync on each node and an append per follower whatever its
/// size, so under load fewer, larger batches carry more writes on the same CPU; a command that
/// arrives when none is in flight (a lone client) is proposed at once. One measured best of
/// 1, 2 and unlimited (BENCHMARKS.md).
const MAX_INFLIGHT_BATCHES: usize = 1;
/// Longest a command waits for the batches in flight before it is proposed anyway.
const MAX_BATCH_WAIT: Duration = Duration::from_millis(2);
/// How long a leader waits for an append to carry a new commit index to a follower before it
/// sends one for that alone. raft-rs would send it at once, as an empty append to every
/// follower the moment a write commits: each follower wakes twice per write, answers twice,
/// and all of it competes for the CPU with the reply to the client that is just going out.
/// Under load the next write's append carries the commit index anyway; when the cluster goes
/// quiet, followers (their watchers, stale reads and forwarded writes) learn it this much later.
const COMMIT_BROADCAST_DELAY: Duration = Duration::from_millis(1);
/// Turns the raft thread's runtime gets between queueing messages to peers and a blocking
/// write: a message passes the peer's sender task, the gRPC stream's body and the HTTP/2
/// connection task, one turn each, before it reaches the socket. One more for slack; a message
/// that needs more goes out after the write, which is correct, only later.
const SEND_YIELDS: usize = 4;

/// Where a proposal's outcome goes.
type Reply = oneshot::Sender<Result<Outcome, NodeError>>;

/// The reason a node stopped that `pld controller` reports: the words callers and logs see.
pub const RAFT_PANIC: &str = "the raft thread panicked";

impl Node {
    /// Runs the node; a panic (raft-rs panics on some inconsistent messages, e.g. a heartbeat
    /// committing past the log, which any peer that can reach the port could send) stops the node
    /// like a storage failure does — waiting callers are failed and the process exits to be
    /// restarted — instead of leaving a server whose raft thread is gone.
    async fn run(mut self, mut rx: UnboundedReceiver<NodeMsg>) {
        let outcome = std::panic::AssertUnwindSafe(self.run_loop(&mut rx))
            .catch_unwind()
            .await;
        if let Err(panic) = outcome {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic without a message");
            let why = format!("the node stopped: {RAFT_PANIC}: {what}");
            error!(node = self.id, error = %why, "the node stops serving");
            self.fail_all(&why);
            self.fatal.send_replace(Some(why));
        }
    }

    async fn run_loop(&mut self, rx: &mut UnboundedReceiver<NodeMsg>) {
        let mut next_tick = Instant::now() + self.cfg.tick;
        info!(
            node = self.id,
            applied = self.applied_index,
            "raft node started"
        );
        'main: loop {
            let wake = match self.batch_since {
                _ if self.batch_due() => Instant::now(),
                Some(since) => next_tick.min(since + MAX_BATCH_WAIT),
                None => next_tick,
            };
            let wake = self.commit_due.map_or(wake, |due| wake.min(due));
            match tokio::time::timeout_at(wake.into(), rx.recv()).await {
                Ok(Some(NodeMsg::Shutdown) | None) => break,
                Ok(Some(msg)) => self.handle(msg),
                Err(_) => {}
            }
            for _ in 0..MAX_BATCH {
                match rx.try_recv() {
                    Ok(NodeMsg::Shutdown) => break 'main,
                    Ok(msg) => self.handle(msg),
                    Err(_) => break,
                }
            }
            if self.batch_due() {
                self.propose_batch();
            }
            if self.commit_due.is_some_and(|due| Instant::now() >= due) {
                self.commit_due = None;
                if self.followers_lag_commit() {
                    self.raw.raft.bcast_append();
                }
            }
            let ticked = Instant::now() >= next_tick;
            if ticked {
                self.raw.tick();
                next_tick = Instant::now() + self.cfg.tick;
                self.on_tick();
            }
            match self.on_ready().await {
                // Status readers see raft state as of the last Ready or tick, not every message.
                Ok(progressed) if progressed || ticked => self.publish_info(),
                Ok(_) => {}
                Err(e) => {
                    error!(node = self.id, error = %e, "fatal storage error; the node stops serving");
                    let why = format!("the node stopped acknowledging writes: {e}");
                    self.fail_all(&why);
                    self.fatal.send_replace(Some(why));
                    break;
                }
            }
        }
        self.fail_all("node shut down");
        info!(node = self.id, "raft node stopped");
    }

    fn fail_all(&mut self, why: &str) {
        let err = || NodeError::Stopped(why.to_string());
        for (_, txs) in self.pending.drain() {
            for tx in txs {
                let _ = tx.send(Err(err()));
            }
        }
        for (_, tx) in self.batch.drain(..) {
            let _ = tx.send(Err(err()));
        }
        for (_, tx) in self.pending_conf.drain() {
            let _ = tx.send(Err(err()));
        }
        for (_, tx) in self.pending_reads.drain() {
            let _ = tx.send(Err(err()));
        }
        for (_, tx) in self.waiting_reads.drain(..) {
            let _ = tx.send(Err(err()));
        }
    }

    fn nonce(&mut self) -> u64 {
        self.next_nonce += 1;
        self.nonce_base.wrapping_add(self.next_nonce)
    }

    fn leader_known(&self) -> bool {
        self.raw.raft.leader_id != raft::INVALID_ID
    }

    fn handle(&mut self, msg: NodeMsg) {
        match msg {
            NodeMsg::Raft(m) => {
                if let Err(e) = self.raw.step(*m) {
                    debug!(node = self.id, error = %e, "raft message ignored");
                }
            }
            NodeMsg::Propose { cmd, reply } => {
                if !self.leader_known() {
                    let _ = reply.send(Err(NodeError::NoLeader));
                    return;
                }
                self.batch_bytes += cmd.encoded_len();
                self.batch_since.get_or_insert_with(Instant::now);
                self.batch.push((*cmd, reply));
                if self.batch_bytes >= MAX_ENTRY_BYTES {
                    self.propose_batch();
                }
            }
            NodeMsg::ReadIndex { reply } => {
                if !self.leader_known() {
                    let _ = reply.send(Err(NodeError::NoLeader));
                    return;
                }
                let ctx = self.nonce();
                self.raw.read_index(ctx.to_be_bytes().to_vec());
                self.pending_reads.insert(ctx, reply);
            }
            NodeMsg::ConfChange {
                change,
                node_id,
                address,
                reply,
            } => {
                if !self.leader_known() {
                    let _ = reply.send(Err(NodeError::NoLeader));
                    return;
                }
                let nonce = self.nonce();
                let cc = ConfChange {
                    change_type: change,
                    node_id,
                    context: ConfChangeContext {
                        address,
                        proposer: self.id,
                        nonce,
                    }
                    .encode_to_vec()
                    .into(),
                    ..Default::default()
                };
                match self.raw.propose_conf_change(vec![], cc) {
                    Ok(()) => {
                        self.pending_conf.insert(nonce, reply);
                    }
                    Err(raft::Error::ProposalDropped) => {
                        let _ = reply.send(Err(NodeError::NoLeader));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NodeError::Raft(e.to_string())));
                    }
                }
            }
            NodeMsg::Unreachable(id) => self.raw.report_unreachable(id),
            NodeMsg::SnapshotReport { to, failed } => {
                let status = if failed {
                    SnapshotStatus::Failure
                } else {
                    SnapshotStatus::Finish
                };
                self.raw.report_snapshot(to, status);
            }
            NodeMsg::Shutdown => {}
        }
    }

    /// Whether the gathered commands should be proposed now: fewer than
    /// [`MAX_INFLIGHT_BATCHES`] are in flight, or the oldest has waited [`MAX_BATCH_WAIT`].
    fn batch_due(&self) -> bool {
        match self.batch_since {
            None => false,
            Some(since) => {
                self.inflight.len() < MAX_INFLIGHT_BATCHES || since.elapsed() >= MAX_BATCH_WAIT
            }
        }
    }

    /// Proposes the gathered commands as one log entry: one append, one persist and one
    /// replication message for all of them instead of one each.
    fn propose_batch(&mut self) {
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

    fn on_tick(&mut self) {
        // Callers that gave up (timed out) no longer need an answer.
        self.pending
            .retain(|_, txs| !txs.iter().all(oneshot::Sender::is_closed));
        // A batch the leader dropped (a follower forwards its proposals) is never applied; after
        // an election timeout it no longer holds up the next one.
        let lost = self.cfg.tick * (self.cfg.election_ticks as u32);
        self.inflight
            .retain(|_, proposed| proposed.elapsed() < lost);
        self.pending_conf.retain(|_, tx| !tx.is_closed());
        self.pending_reads.retain(|_, tx| !tx.is_closed());
        self.waiting_reads.retain(|(_, tx)| !tx.is_closed());
        self.maybe_expire_leases();
    }

    /// The leader decides lease expiry and commits it through the log. A new leader first waits
    /// two election timeouts, so agents whose keep-alives failed during the election can renew.
    fn maybe_expire_leases(&mut self) {
        let Some(since) = self.leader_since else {
            return;
        };
        let grace = self.cfg.tick * (self.cfg.election_ticks as u32) * 2;
        if since.elapsed() < grace || self.last_expiry_proposal.elapsed() < self.cfg.tick * 5 {
            return;
        }
        let now = unix_ms();
        let due = self
            .catalog
            .read()
            .map(|c| c.next_lease_expiry().is_some_and(|t| t <= now))
            .unwrap_or(false);
        if !due {
            return;
        }
        self.last_expiry_proposal = Instant::now();
        let nonce = self.nonce();
        let data = Envelope {
            proposer: self.id,
            nonce,
            command: Some(Command::new(Op::ExpireLeases(ExpireLeasesOp {
                now_unix_ms: now,
            }))),
            commands: Vec::new(),
        }
        .encode_to_bytes();
        if let Err(e) = self.raw.propose(vec![], data) {
            debug!(node = self.id, error = %e, "lease expiry not proposed");
        }
    }

    fn send_messages(&mut self, msgs: Vec<Message>) {
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
    fn schedule_commit_broadcast(&mut self) {
        if self.commit_due.is_none() && self.followers_lag_commit() {
            self.commit_due = Some(Instant::now() + COMMIT_BROADCAST_DELAY);
        }
    }

    /// Whether this node leads and a follower it can send to has not been sent the commit
    /// index in an append.
    fn followers_lag_commit(&self) -> bool {
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
    async fn on_ready(&mut self) -> Result<bool, StoreError> {
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
            // Reads waiting for a ReadIndex from a previous leadership may never be answered.
            for (_, tx) in self.pending_reads.drain() {
                let _ = tx.send(Err(NodeError::NoLeader));
            }
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
        for rs in ready.take_read_states() {
            let ctx = <[u8; 8]>::try_from(rs.request_ctx.as_slice())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if let Some(tx) = self.pending_reads.remove(&ctx) {
                self.waiting_reads.push((rs.index, tx));
            }
        }
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
    async fn persist(
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

    fn install_snapshot(&mut self, snap: Snapshot) -> Result<(), StoreError> {
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

    fn apply_committed(&mut self, entries: Vec<Entry>) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut catalog = self.catalog.write().unwrap_or_else(|p| p.into_inner());
        for entry in entries {
            self.applied_index = entry.index;
            if entry.data.is_empty() {
                // A new leader's empty entry.
                continue;
            }
            match entry.get_entry_type() {
                EntryType::EntryNormal => {
                    crash_point!("apply-entry");
                    let env = Envelope::decode_bytes(&entry.data).map_err(|e| {
                        StoreError::Io(format!(
                            "committed entry {} is not a command: {e}",
                            entry.index
                        ))
                    })?;
                    // Every replica applies every command; only the proposer has callers waiting.
                    let waiting = if env.proposer == self.id {
                        self.inflight.remove(&env.nonce);
                        self.pending.remove(&env.nonce).unwrap_or_default()
                    } else {
                        Vec::new()
                    };
                    let results: Vec<Result<Outcome, CatalogError>> = match &env.command {
                        Some(cmd) => vec![catalog.apply(cmd)],
                        None if !env.commands.is_empty() => {
                            env.commands.iter().map(|cmd| catalog.apply(cmd)).collect()
                        }
                        None => vec![Err(CatalogError::Corrupt("empty command".into()))],
                    };
                    for (tx, result) in waiting.into_iter().zip(results) {
                        let _ = tx.send(result.map_err(NodeError::Rejected));
                    }
                }
                EntryType::EntryConfChange => {
                    let cc = ConfChange::parse_from_bytes(&entry.data).map_err(|e| {
                        StoreError::Io(format!(
                            "committed entry {} is not a conf change: {e}",
                            entry.index
                        ))
                    })?;
                    let ctx = ConfChangeContext::decode(cc.context.as_ref()).unwrap_or_default();
                    let result = match self.raw.apply_conf_change(&cc) {
                        Ok(cs) => {
                            self.store.persist(&[], None, Some(&cs), true)?;
                            crash_point!("conf-change-persisted");
                            self.conf_state = cs;
                            match cc.get_change_type() {
                                ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                                    catalog.set_member(cc.node_id, ctx.address.clone());
                                }
                                ConfChangeType::RemoveNode => catalog.remove_member(cc.node_id),
                            }
                            self.transport.set_peers(catalog.members());
                            info!(node = self.id, change = ?cc.get_change_type(), member = cc.node_id, address = %ctx.address, "membership changed");
                            if cc.get_change_type() == ConfChangeType::RemoveNode
                                && cc.node_id == self.id
                            {
                                warn!(node = self.id, "this node was removed from the cluster");
                            }
                            Ok(())
                        }
                        Err(e) => {
                            warn!(node = self.id, error = %e, "configuration change refused");
                            Err(NodeError::Raft(e.to_string()))
                        }
                    };
                    if ctx.proposer == self.id {
                        if let Some(tx) = self.pending_conf.remove(&ctx.nonce) {
                            let _ = tx.send(result);
                        }
                    }
                }
                EntryType::EntryConfChangeV2 => {
                    warn!(
                        node = self.id,
                        index = entry.index,
                        "joint configuration changes are not used; entry skipped"
                    );
                }
            }
        }
        Ok(())
    }

    fn after_apply(&mut self) -> Result<(), StoreError> {
        let revision = self.catalog.read().map(|c| c.revision()).unwrap_or(0);
        let applied = Applied {
            index: self.applied_index,
            revision,
        };
        if *self.applied_tx.borrow() != applied {
            self.applied_tx.send_replace(applied);
        }
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
        let snap_index = self.store.first_index()? - 1;
        let requested = self.raw.store().take_snapshot_request();
        if applied_index >= snap_index + self.cfg.snapshot_every
            || (requested && applied_index > snap_index)
        {
            self.make_snapshot()?;
        }
        Ok(())
    }

    fn make_snapshot(&mut self) -> Result<(), StoreError> {
        let index = self.applied_index;
        let term = self.store.term(index)?;
        let data = self
            .catalog
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .encode_snapshot();
        let snap = snapshot(data, index, term, self.conf_state.clone());
        crash_point!("snapshot-create");
        self.store.compact(&snap)?;
        crash_point!("snapshot-compacted");
        self.metrics.snapshots_created.increment(1);
        debug!(node = self.id, index, "snapshot taken, log compacted");
        Ok(())
    }

    fn publish_info(&mut self) {
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
