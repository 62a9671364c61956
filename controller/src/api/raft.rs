//! `pld.v1.RaftTransport`: receives raft messages from peers and hands them to the node.

use pld_proto::v1::raft_transport_server::RaftTransport;
use pld_proto::v1::{RaftAck, RaftBatch};
use protobuf::Message as _;
use raft::eraftpb::Message;
use tokio::sync::watch;
use tonic::{Request, Response, Status, Streaming};

use std::sync::Arc;

use crate::authz::Authz;
use crate::node::{NodeHandle, NodeMsg};
use crate::transport::Transport;

/// Receives raft batches for one node.
pub struct RaftService {
    node: NodeHandle,
    transport: Arc<Transport>,
    stopping: watch::Receiver<bool>,
    authz: Authz,
}

impl RaftService {
    /// A service feeding `node`; senders we have no address for are learned into `transport`.
    /// Peer streams end when `stopping` turns true, so they do not hold a draining server open.
    /// Only controllers may send (`authz`): a raft message can rewrite the log.
    pub fn new(
        node: NodeHandle,
        transport: Arc<Transport>,
        stopping: watch::Receiver<bool>,
        authz: Authz,
    ) -> Self {
        RaftService {
            node,
            transport,
            stopping,
            authz,
        }
    }
}

/// Decodes the raft messages of a batch sent to node `me`, refusing the whole batch when it is
/// for another node, a message does not decode, or a message's ends differ from the batch's.
/// Pure, so the fuzz target `raft_batch` reaches exactly what a peer's bytes reach.
///
/// # Errors
/// FAILED_PRECONDITION for a misaddressed batch, INVALID_ARGUMENT naming the bad message.
pub fn decode_batch(batch: &RaftBatch, me: u64) -> Result<Vec<Message>, Status> {
    if batch.to != me {
        return Err(Status::failed_precondition(format!(
            "raft batch for node {} reached node {me}; check the member addresses",
            batch.to
        )));
    }
    let mut msgs = Vec::with_capacity(batch.messages.len());
    for (i, bytes) in batch.messages.iter().enumerate() {
        let m = Message::parse_from_bytes(bytes).map_err(|e| {
            Status::invalid_argument(format!("raft message {i} does not decode: {e}"))
        })?;
        if m.from != batch.from || m.to != batch.to {
            return Err(Status::invalid_argument(format!(
                "raft message {i} is from {} to {}, the batch from {} to {}",
                m.from, m.to, batch.from, batch.to
            )));
        }
        msgs.push(m);
    }
    Ok(msgs)
}

impl RaftService {
    fn deliver(&self, batch: RaftBatch) -> Result<(), Status> {
        // Decode everything first, so a malformed batch is refused whole.
        let msgs = decode_batch(&batch, self.node.id())?;
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
        self.authz.caller(&req)?.raft_peer()?;
        self.deliver(req.into_inner())?;
        Ok(Response::new(RaftAck {}))
    }

    async fn stream(
        &self,
        req: Request<Streaming<RaftBatch>>,
    ) -> Result<Response<RaftAck>, Status> {
        self.authz.caller(&req)?.raft_peer()?;
        let mut stream = req.into_inner();
        let mut stopping = self.stopping.clone();
        loop {
            let batch = tokio::select! {
                batch = stream.message() => batch?,
                _ = stopping.wait_for(|s| *s) => None,
            };
            match batch {
                Some(batch) => self.deliver(batch)?,
                None => return Ok(Response::new(RaftAck {})),
            }
        }
    }
}
