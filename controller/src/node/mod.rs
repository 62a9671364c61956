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
//! a quorum, new proposals wait for it (at most [`batch::MAX_BATCH_WAIT`]) and go out together, so
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
//! [`ready::COMMIT_BROADCAST_DELAY`] does the leader send one for it. Per write that spares each
//! follower a second wake-up, apply and answer, at the moment the client's reply goes out.
//!
//! The files: [`message`] (what arrives), [`handle`] (the callers' side), [`start`] (start-up
//! and bootstrap), [`batch`] (group commit), [`ready`] (Ready handling and persistence),
//! [`apply`] (committed entries and membership changes), [`compactor`] (snapshots stored and
//! the log compacted on a thread of their own), [`reads`] (ReadIndex barriers),
//! [`status`] (what the node publishes), and here the node and its loop.

mod apply;
mod batch;
mod compactor;
mod config;
mod error;
pub mod guard;
mod handle;
pub(crate) mod info;
pub(crate) mod message;
mod reads;
mod ready;
mod start;
mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures::FutureExt as _;
use pld_core::catalog::{cluster_id, LeaseExpiryPolicy};
use pld_core::command::{Command, Envelope};
use pld_core::Catalog;
use raft::eraftpb::ConfState;
use raft::{RawNode, SnapshotStatus};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::{oneshot, watch};
use tracing::{debug, error, info, warn};

use crate::metrics::ControllerMetrics;
use crate::storage::{LogStore, RaftStorage};
use crate::transport::Transport;
use batch::MAX_BATCH_WAIT;
pub use config::{NodeConfig, DEFAULT_SNAPSHOT_EVERY};
pub use error::{NodeError, StartError};
pub use handle::NodeHandle;
pub use info::{Applied, RaftInfo};
use message::Reply;
pub(crate) use message::{channel, NodeMsg};
use reads::ReadReply;
pub(crate) use start::{start, RaftRuntime, Start};

pub(crate) struct Node {
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
    pending_reads: HashMap<u64, ReadReply>,
    /// Read requests with a read index, waiting for apply to reach it.
    waiting_reads: Vec<(u64, ReadReply)>,
    leader_since: Option<Instant>,
    last_expiry_proposal: Instant,
    last_cluster_id_proposal: Option<Instant>,
    /// The highest commit index an append to each peer carried, this leadership. Not raft-rs's
    /// `Progress::committed_index`, which moves only when the follower answers: under load the
    /// answer to an append that carried the commit is often still on its way when
    /// [`ready::COMMIT_BROADCAST_DELAY`] runs out, and a broadcast then would be one append too many.
    commit_sent: HashMap<u64, u64>,
    /// When the leader tells its followers of a commit index no append has carried yet.
    commit_due: Option<Instant>,
    /// When each kind of refused raft message was last logged.
    refusals_logged: HashMap<&'static str, Instant>,
    /// Stores snapshots and compacts the log beside this thread.
    compactor: compactor::Compactor,
}

/// How often each kind of refused raft message is logged at most (all are counted).
const REFUSAL_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Most messages taken from the queue before building a Ready.
const MAX_BATCH: usize = 4096;

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
                if let Some(why) = self.pin_contradiction() {
                    error!(node = self.id, error = %why, "the node stops serving");
                    self.fail_all(&why);
                    self.fatal.send_replace(Some(why));
                    break;
                }
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

    /// Checks a peer's message against what this node knows, before raft-rs sees it.
    fn admit(&self, m: &raft::eraftpb::Message) -> Result<(), guard::Refusal> {
        let raft = &self.raw.raft;
        guard::check_peer_message(
            m,
            &guard::Facts {
                id: self.id,
                conf: &self.conf_state,
                term: raft.term,
                leader_id: raft.leader_id,
                last_index: raft.raft_log.last_index(),
            },
        )
    }

    /// Counts a refused message, and says so at most once a minute for each reason.
    fn refused(&mut self, from: u64, refusal: &guard::Refusal) {
        let reason = refusal.label();
        self.metrics.raft_refused.count(reason);
        let now = Instant::now();
        let quiet = self
            .refusals_logged
            .get(reason)
            .is_some_and(|at| now.duration_since(*at) < REFUSAL_LOG_EVERY);
        if quiet {
            debug!(node = self.id, from, %refusal, "raft message refused");
        } else {
            self.refusals_logged.insert(reason, now);
            warn!(
                node = self.id,
                from,
                %refusal,
                "raft message refused: no honest peer sends this; a peer on other code, or \
                 someone who reaches the raft port (counted in pld_raft_messages_refused_total)"
            );
        }
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
                if let Err(refusal) = self.admit(&m) {
                    self.refused(m.from, &refusal);
                    return;
                }
                if let Err(e) = self.raw.step(*m) {
                    debug!(node = self.id, error = %e, "raft message ignored");
                }
            }
            NodeMsg::Propose { cmd, reply } => self.queue_proposal(*cmd, reply),
            NodeMsg::ReadIndex { reply } => self.read_index(reply),
            NodeMsg::ConfChange {
                change,
                node_id,
                address,
                reply,
            } => self.propose_conf_change(change, node_id, address, reply),
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
        self.maybe_name_cluster();
    }

    /// The leader of a cluster without an id proposes one (at most one proposal per election
    /// timeout, so a lost one is tried again).
    fn maybe_name_cluster(&mut self) {
        let retry_after = self.cfg.tick * (self.cfg.election_ticks as u32);
        if self.leader_since.is_none()
            || self
                .last_cluster_id_proposal
                .is_some_and(|at| at.elapsed() < retry_after)
        {
            return;
        }
        let command = self.catalog.read().ok().and_then(|c| {
            cluster_id::proposal(&c, self.cfg.cluster_id.as_deref(), || {
                cluster_id::fresh_id(rand::random())
            })
        });
        let Some(command) = command else {
            return;
        };
        self.last_cluster_id_proposal = Some(Instant::now());
        self.propose_internal(command, "cluster id");
    }

    /// Why this node must not serve: its config pins a cluster id other than the catalog's.
    fn pin_contradiction(&self) -> Option<String> {
        let catalog = self.catalog.read().ok()?;
        cluster_id::check_pin(&catalog, self.cfg.cluster_id.as_deref())
            .err()
            .map(|e| {
                format!("the node stopped: cluster_id in its config contradicts the catalog: {e}")
            })
    }

    /// Proposes a command of the leader's own (no caller waits for it).
    fn propose_internal(&mut self, command: Command, what: &str) {
        let nonce = self.nonce();
        let data = Envelope {
            proposer: self.id,
            nonce,
            command: Some(command),
            commands: Vec::new(),
        }
        .encode_to_bytes();
        if let Err(e) = self.raw.propose(vec![], data) {
            debug!(node = self.id, error = %e, "{what} not proposed");
        }
    }

    /// The leader proposes lease expiry when the catalog's policy says it is due
    /// ([`LeaseExpiryPolicy`]): grace of two election timeouts after an election, and at most one
    /// proposal every five ticks.
    fn maybe_expire_leases(&mut self) {
        let Some(since) = self.leader_since else {
            return;
        };
        let policy = LeaseExpiryPolicy {
            grace: self.cfg.tick * (self.cfg.election_ticks as u32) * 2,
            interval: self.cfg.tick * 5,
        };
        let command = self.catalog.read().ok().and_then(|c| {
            policy.due(
                &c,
                since.elapsed(),
                self.last_expiry_proposal.elapsed(),
                unix_ms(),
            )
        });
        let Some(command) = command else {
            return;
        };
        self.last_expiry_proposal = Instant::now();
        self.propose_internal(command, "lease expiry");
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
