//! Raft messages between nodes over gRPC (`pld.v1.RaftTransport`), one sender task per peer.
//!
//! The sender tasks and their connections run on the raft thread's own runtime (the handle
//! given to [`Transport::new`]), so the raft loop's messages reach the sockets without waking
//! another thread. The raft thread hands messages to [`Transport::send`] without blocking. Each
//! peer's task takes everything queued for that peer and sends it as one batch, so a busy leader
//! sends few large RPCs rather than many small ones. Failures are reported back to raft
//! (`report_unreachable`, snapshot status) and raft retries; the transport itself never
//! retries.
//!
//! [`Faults`] lets tests drop, delay, cut and isolate links between nodes of a cluster.

use pld_client::tls::Tls;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use pld_proto::v1::raft_transport_client::RaftTransportClient;
use pld_proto::v1::RaftBatch;
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::debug;

use crate::node::message::NodeMsg;

/// Largest raft batch or snapshot we send or accept.
pub const MAX_RAFT_MESSAGE: usize = 256 * 1024 * 1024;
/// Most messages in one batch.
const MAX_BATCH: usize = 1024;
/// How long a snapshot may take to reach a peer.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(60);
/// Batches queued on a peer's stream before the sender waits.
const STREAM_BUFFER: usize = 64;

/// Network faults for tests, shared by every node of an in-process cluster.
#[derive(Default)]
pub struct Faults {
    blocked: RwLock<HashSet<(u64, u64)>>,
    delay: RwLock<Option<Duration>>,
    /// Probability in parts per million that a batch is dropped.
    drop_ppm: RwLock<u32>,
}

impl Faults {
    /// No faults.
    pub fn new() -> Arc<Self> {
        Arc::new(Faults::default())
    }

    fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
        lock.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Splits the nodes into two sides that cannot reach each other.
    pub fn partition(&self, a: &[u64], b: &[u64]) {
        let mut blocked = Self::write(&self.blocked);
        for x in a {
            for y in b {
                blocked.insert((*x, *y));
                blocked.insert((*y, *x));
            }
        }
    }

    /// Cuts `node` off from every one of `others`.
    pub fn isolate(&self, node: u64, others: &[u64]) {
        self.partition(&[node], others);
    }

    /// Delays every batch by `delay`.
    pub fn set_delay(&self, delay: Option<Duration>) {
        *Self::write(&self.delay) = delay;
    }

    /// Drops each batch with this probability (0.0 to 1.0).
    pub fn set_drop_rate(&self, rate: f64) {
        *Self::write(&self.drop_ppm) = (rate.clamp(0.0, 1.0) * 1_000_000.0) as u32;
    }

    /// Removes every fault.
    pub fn heal(&self) {
        Self::write(&self.blocked).clear();
        *Self::write(&self.delay) = None;
        *Self::write(&self.drop_ppm) = 0;
    }

    fn read<T: Clone>(lock: &RwLock<T>) -> T {
        lock.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn drops(&self, from: u64, to: u64) -> bool {
        if self
            .blocked
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&(from, to))
        {
            return true;
        }
        let ppm = Self::read(&self.drop_ppm);
        ppm > 0 && rand::random::<u32>() % 1_000_000 < ppm
    }
}

struct Peer {
    address: String,
    tx: mpsc::UnboundedSender<Message>,
    task: tokio::task::JoinHandle<()>,
}

/// Outbound raft messages of one node.
pub struct Transport {
    id: u64,
    /// Our own address, sent with every batch.
    address: String,
    peers: Mutex<HashMap<u64, Peer>>,
    node: mpsc::UnboundedSender<NodeMsg>,
    faults: Arc<Faults>,
    /// The raft thread's runtime, where the peer tasks run.
    runtime: tokio::runtime::Handle,
    /// Mutual TLS to peers, when the cluster has certificates.
    tls: Option<Arc<Tls>>,
}

impl Transport {
    /// A transport for node `id` that reports delivery failures to `node`.
    pub(crate) fn new(
        id: u64,
        address: String,
        node: mpsc::UnboundedSender<NodeMsg>,
        faults: Arc<Faults>,
        runtime: tokio::runtime::Handle,
        tls: Option<Arc<Tls>>,
    ) -> Self {
        Transport {
            id,
            address,
            peers: Mutex::new(HashMap::new()),
            node,
            faults,
            runtime,
            tls,
        }
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Peer>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues messages for their peers. Messages to unknown peers are dropped (raft retries).
    pub fn send(&self, msgs: Vec<Message>) {
        let peers = self.peers();
        for m in msgs {
            match peers.get(&m.to) {
                Some(p) => {
                    let _ = p.tx.send(m);
                }
                None => debug!(to = m.to, "no address for raft peer; message dropped"),
            }
        }
    }

    /// Makes the peer set match `members` (id → address), excluding this node.
    pub fn set_peers(&self, members: &BTreeMap<u64, String>) {
        let mut peers = self.peers();
        peers.retain(|id, p| {
            let keep = members.get(id) == Some(&p.address);
            if !keep {
                p.task.abort();
            }
            keep
        });
        for (id, address) in members {
            if *id != self.id && !peers.contains_key(id) {
                let peer = self.connect(*id, address);
                peers.insert(*id, peer);
            }
        }
    }

    /// Learns a peer's address from a batch it sent, when we know none: a joining node hears
    /// from the leader before it receives the membership.
    pub fn learn(&self, id: u64, address: &str) {
        if id == self.id || address.is_empty() {
            return;
        }
        let mut peers = self.peers();
        if let std::collections::hash_map::Entry::Vacant(slot) = peers.entry(id) {
            debug!(peer = id, %address, "learned a peer address from its message");
            slot.insert(self.connect(id, address));
        }
    }

    fn connect(&self, id: u64, address: &str) -> Peer {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = self.runtime.spawn(peer_loop(
            (self.id, self.address.clone()),
            id,
            address.to_string(),
            rx,
            self.node.clone(),
            self.faults.clone(),
            self.tls.clone(),
        ));
        Peer {
            address: address.to_string(),
            tx,
            task,
        }
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        for p in self.peers().values() {
            p.task.abort();
        }
    }
}

async fn peer_loop(
    (from, from_address): (u64, String),
    to: u64,
    address: String,
    mut rx: mpsc::UnboundedReceiver<Message>,
    node: mpsc::UnboundedSender<NodeMsg>,
    faults: Arc<Faults>,
    tls: Option<Arc<Tls>>,
) {
    let endpoint = match crate::dial::endpoint(&address, tls.as_deref()) {
        Ok(e) => e
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            // Notice a dead peer on an idle stream.
            .http2_keep_alive_interval(Duration::from_secs(1))
            .keep_alive_timeout(Duration::from_secs(3))
            .keep_alive_while_idle(true),
        Err(e) => {
            tracing::error!(peer = to, %address, error = %e, "bad peer address; no messages will reach it");
            return;
        }
    };
    let mut client = RaftTransportClient::new(endpoint.connect_lazy())
        .max_encoding_message_size(MAX_RAFT_MESSAGE)
        .max_decoding_message_size(MAX_RAFT_MESSAGE);
    // Appends and heartbeats go down one long-lived stream; it is reopened after a failure.
    let mut stream: Option<mpsc::Sender<RaftBatch>> = None;
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.clear();
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        if faults.drops(from, to) {
            continue;
        }
        if let Some(d) = Faults::read(&faults.delay) {
            tokio::time::sleep(d).await;
        }
        let snapshot = batch
            .iter()
            .any(|m| m.get_msg_type() == MessageType::MsgSnapshot);
        let request = RaftBatch {
            from,
            to,
            messages: batch
                .iter()
                .filter_map(|m| m.write_to_bytes().ok())
                .collect(),
            from_address: from_address.clone(),
        };
        let delivered = if snapshot {
            // The leader must learn whether the snapshot arrived: use the acknowledged call.
            let result = tokio::time::timeout(SNAPSHOT_TIMEOUT, client.send(request)).await;
            if !matches!(result, Ok(Ok(_))) {
                debug!(peer = to, %address, ?result, "raft snapshot not delivered");
            }
            let result = result.ok().and_then(Result::ok).ok_or(());
            let _ = node.send(NodeMsg::SnapshotReport {
                to,
                failed: result.is_err(),
            });
            result.is_ok()
        } else {
            let tx = stream.get_or_insert_with(|| open_stream(&client, to, &address));
            tx.send(request).await.is_ok()
        };
        if !delivered {
            stream = None;
            let _ = node.send(NodeMsg::Unreachable(to));
        }
    }
}

/// Opens the batch stream to a peer. The returned sender fails once the stream breaks.
fn open_stream(
    client: &RaftTransportClient<tonic::transport::Channel>,
    to: u64,
    address: &str,
) -> mpsc::Sender<RaftBatch> {
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    let mut client = client.clone();
    let address = address.to_string();
    tokio::spawn(async move {
        if let Err(e) = client.stream(ReceiverStream::new(rx)).await {
            debug!(peer = to, %address, error = %e, "raft stream to peer ended");
        }
    });
    tx
}
