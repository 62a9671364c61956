//! `pld.v1.RaftTransport`: receives raft messages from peers and hands them to the node.

use pld_proto::v1::raft_transport_server::RaftTransport;
use pld_proto::v1::{RaftAck, RaftBatch};
use protobuf::Message as _;
use raft::eraftpb::Message;
use tokio::sync::watch;
use tonic::{Request, Response, Status, Streaming};
use tracing::debug;

use std::sync::Arc;

use crate::authz::{Authz, Identity};
use crate::metrics::ControllerMetrics;
use crate::node::{NodeHandle, NodeMsg};
use crate::transport::Transport;

/// Receives raft batches for one node.
pub struct RaftService {
    node: NodeHandle,
    transport: Arc<Transport>,
    stopping: watch::Receiver<bool>,
    authz: Authz,
    metrics: Arc<ControllerMetrics>,
}

impl RaftService {
    /// A service feeding `node`; senders we have no address for are learned into `transport`.
    /// Peer streams end when `stopping` turns true, so they do not hold a draining server open.
    /// Only controllers may send (`authz`): a raft message can rewrite the log. Refusals are
    /// counted in `metrics`.
    pub fn new(
        node: NodeHandle,
        transport: Arc<Transport>,
        stopping: watch::Receiver<bool>,
        authz: Authz,
        metrics: Arc<ControllerMetrics>,
    ) -> Self {
        RaftService {
            node,
            transport,
            stopping,
            authz,
            metrics,
        }
    }
}

/// Why a raft batch was refused before any of its messages reached the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchRefusal {
    /// The caller is not a controller (or shows no valid identity).
    NotAController,
    /// A controller certificate naming node `certificate` sent a batch as node `from`.
    Impersonation { certificate: u64, from: u64 },
    /// For another node.
    Misaddressed { to: u64, me: u64 },
    /// Message `index` does not decode.
    Undecodable { index: usize, error: String },
    /// Message `index` names other ends than its batch.
    MismatchedEnds {
        index: usize,
        from: u64,
        to: u64,
        batch_from: u64,
        batch_to: u64,
    },
}

impl BatchRefusal {
    /// The `reason` labels of `pld_raft_messages_refused_total` these add.
    pub const LABELS: [&'static str; 5] = [
        "not_a_controller",
        "impersonation",
        "misaddressed",
        "undecodable",
        "mismatched_ends",
    ];

    /// Its `reason` label.
    pub fn label(&self) -> &'static str {
        match self {
            BatchRefusal::NotAController => "not_a_controller",
            BatchRefusal::Impersonation { .. } => "impersonation",
            BatchRefusal::Misaddressed { .. } => "misaddressed",
            BatchRefusal::Undecodable { .. } => "undecodable",
            BatchRefusal::MismatchedEnds { .. } => "mismatched_ends",
        }
    }

    /// The answer the sender gets.
    fn status(&self) -> Status {
        match self {
            BatchRefusal::NotAController => {
                Status::permission_denied("only a controller certificate may send raft messages")
            }
            BatchRefusal::Impersonation { certificate, from } => {
                Status::permission_denied(format!(
                    "the certificate names controller {certificate}; it may not send raft \
                     messages as node {from}"
                ))
            }
            BatchRefusal::Misaddressed { to, me } => Status::failed_precondition(format!(
                "raft batch for node {to} reached node {me}; check the member addresses"
            )),
            BatchRefusal::Undecodable { index, error } => {
                Status::invalid_argument(format!("raft message {index} does not decode: {error}"))
            }
            BatchRefusal::MismatchedEnds {
                index,
                from,
                to,
                batch_from,
                batch_to,
            } => Status::invalid_argument(format!(
                "raft message {index} is from {from} to {to}, the batch from {batch_from} to \
                 {batch_to}"
            )),
        }
    }
}

/// Decodes the raft messages of a batch sent to node `me`, refusing the whole batch when it is
/// for another node, a message does not decode, or a message's ends differ from the batch's.
/// Pure, so the fuzz target `raft_batch` reaches exactly what a peer's bytes reach.
///
/// # Errors
/// The first thing wrong with the batch.
pub fn decode_batch(batch: &RaftBatch, me: u64) -> Result<Vec<Message>, BatchRefusal> {
    if batch.to != me {
        return Err(BatchRefusal::Misaddressed { to: batch.to, me });
    }
    let mut msgs = Vec::with_capacity(batch.messages.len());
    for (index, bytes) in batch.messages.iter().enumerate() {
        let m = Message::parse_from_bytes(bytes).map_err(|e| BatchRefusal::Undecodable {
            index,
            error: e.to_string(),
        })?;
        if m.from != batch.from || m.to != batch.to {
            return Err(BatchRefusal::MismatchedEnds {
                index,
                from: m.from,
                to: m.to,
                batch_from: batch.from,
                batch_to: batch.to,
            });
        }
        msgs.push(m);
    }
    Ok(msgs)
}

impl RaftService {
    /// Counts a refusal and turns it into the sender's answer.
    fn refuse(&self, refusal: BatchRefusal) -> Status {
        self.metrics.raft_refused.count(refusal.label());
        debug!(node = self.node.id(), ?refusal, "raft batch refused");
        refusal.status()
    }

    /// Who may send raft messages here: a controller, or anyone when TLS is off.
    fn peer<T>(&self, req: &Request<T>) -> Result<Identity, Status> {
        let not_a_controller = |_: &Status| {
            self.metrics
                .raft_refused
                .count(BatchRefusal::NotAController.label())
        };
        let caller = self.authz.caller(req).inspect_err(not_a_controller)?;
        caller.raft_peer().inspect_err(not_a_controller)?;
        Ok(caller)
    }

    fn deliver(&self, caller: &Identity, batch: RaftBatch) -> Result<(), Status> {
        if let Some(certificate) = caller.controller_id().filter(|id| *id != batch.from) {
            return Err(self.refuse(BatchRefusal::Impersonation {
                certificate,
                from: batch.from,
            }));
        }
        // Decode everything first, so a malformed batch is refused whole.
        let msgs = decode_batch(&batch, self.node.id()).map_err(|r| self.refuse(r))?;
        self.transport.learn(batch.from, &batch.from_address);
        for m in msgs {
            self.node
                .send(NodeMsg::Raft(Box::new(m)))
                .map_err(|e| Status::unavailable(e.to_string()))?;
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl RaftTransport for RaftService {
    async fn send(&self, req: Request<RaftBatch>) -> Result<Response<RaftAck>, Status> {
        let caller = self.peer(&req)?;
        self.deliver(&caller, req.into_inner())?;
        Ok(Response::new(RaftAck {}))
    }

    async fn stream(
        &self,
        req: Request<Streaming<RaftBatch>>,
    ) -> Result<Response<RaftAck>, Status> {
        let caller = self.peer(&req)?;
        let mut stream = req.into_inner();
        let mut stopping = self.stopping.clone();
        loop {
            let batch = tokio::select! {
                batch = stream.message() => batch?,
                _ = stopping.wait_for(|s| *s) => None,
            };
            match batch {
                Some(batch) => self.deliver(&caller, batch)?,
                None => return Ok(Response::new(RaftAck {})),
            }
        }
    }
}
