//! `pld.v1.Cluster`: membership, per-node and cluster status, catalog backups.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use pld_client::tls::Tls;
use pld_core::catalog::check_backup;
use pld_core::command::{Command, Op, RestoreOp};
use pld_core::Outcome;
use pld_proto::v1::cluster_client::ClusterClient;
use pld_proto::v1::cluster_server::Cluster;
use pld_proto::v1::{
    AddMemberRequest, AddMemberResponse, ListMembersRequest, ListMembersResponse, Member,
    NodeStatus, NodeStatusRequest, RemoveMemberRequest, RemoveMemberResponse, SnapshotChunk,
    SnapshotRestoreResponse, SnapshotSaveRequest, StatusRequest, StatusResponse,
};
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, instrument};

use super::{catalog_status, node_status};
use crate::authz::Authz;
use crate::node::NodeHandle;

/// Size of the chunks a backup is streamed in.
const CHUNK: usize = 64 * 1024;
/// Largest backup accepted by restore.
pub const MAX_BACKUP: usize = 256 * 1024 * 1024;
/// How long `Status` waits for each member.
const MEMBER_STATUS_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves cluster administration from a node.
pub struct ClusterService {
    node: NodeHandle,
    /// For asking other members their status.
    tls: Option<Arc<Tls>>,
    authz: Authz,
}

impl ClusterService {
    /// A service over `node`, telling callers apart with `authz`.
    pub fn new(node: NodeHandle, tls: Option<Arc<Tls>>, authz: Authz) -> Self {
        ClusterService { node, tls, authz }
    }

    fn members(&self) -> Vec<Member> {
        self.node
            .catalog()
            .members()
            .iter()
            .map(|(id, address)| Member {
                id: *id,
                address: address.clone(),
            })
            .collect()
    }

    /// The catalog's cluster id, empty before the first leader set it.
    fn cluster_id(&self) -> String {
        self.node
            .catalog()
            .cluster_id()
            .unwrap_or_default()
            .to_string()
    }

    fn local_status(&self) -> NodeStatus {
        let info = self.node.info();
        let catalog = self.node.catalog();
        NodeStatus {
            id: self.node.id(),
            address: catalog
                .members()
                .get(&self.node.id())
                .cloned()
                .unwrap_or_default(),
            role: info.role.to_string(),
            term: info.term,
            leader_id: info.leader_id,
            commit_index: info.commit_index,
            applied_index: info.applied_index,
            last_index: info.last_index,
            revision: catalog.revision(),
            snapshot_index: info.snapshot_index,
            error: String::new(),
        }
    }
}

fn valid_address(address: &str) -> bool {
    match address.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty() && address.len() <= 255 && port.parse::<u16>().is_ok_and(|p| p > 0)
        }
        None => false,
    }
}

async fn remote_status(member: Member, tls: Option<Arc<Tls>>) -> NodeStatus {
    let failed = |error: String| NodeStatus {
        id: member.id,
        address: member.address.clone(),
        error,
        ..Default::default()
    };
    let endpoint = match crate::dial::endpoint(&member.address, tls.as_deref()) {
        Ok(e) => e
            .connect_timeout(MEMBER_STATUS_TIMEOUT)
            .timeout(MEMBER_STATUS_TIMEOUT),
        Err(e) => return failed(e),
    };
    let channel = match endpoint.connect().await {
        Ok(c) => c,
        Err(e) => return failed(format!("unreachable: {e}")),
    };
    match ClusterClient::new(channel)
        .get_node_status(NodeStatusRequest {})
        .await
    {
        Ok(r) => r.into_inner(),
        Err(e) => failed(e.message().to_string()),
    }
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<SnapshotChunk, Status>> + Send>>;

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn list_members(
        &self,
        req: Request<ListMembersRequest>,
    ) -> Result<Response<ListMembersResponse>, Status> {
        self.authz.caller(&req)?;
        Ok(Response::new(ListMembersResponse {
            members: self.members(),
            leader_id: self.node.info().leader_id,
            cluster_id: self.cluster_id(),
        }))
    }

    #[instrument(skip_all, fields(node = self.node.id()))]
    async fn add_member(
        &self,
        req: Request<AddMemberRequest>,
    ) -> Result<Response<AddMemberResponse>, Status> {
        self.authz.caller(&req)?.admin("add members")?;
        let member = req
            .into_inner()
            .member
            .ok_or_else(|| Status::invalid_argument("invalid member: is required"))?;
        if member.id == 0 {
            return Err(Status::invalid_argument("invalid member.id: must not be 0"));
        }
        if !valid_address(&member.address) {
            return Err(Status::invalid_argument(format!(
                "invalid member.address: {:?} is not host:port",
                member.address
            )));
        }
        // The members as of now, not as this (perhaps lagging) node last applied them.
        self.node.read_barrier().await.map_err(node_status)?;
        let existing = self.node.catalog().members().get(&member.id).cloned();
        match existing {
            Some(address) if address == member.address => {}
            Some(address) => {
                return Err(Status::already_exists(format!(
                "member {} exists with address {address}; remove it first to change its address",
                member.id
            )))
            }
            None => {
                info!(member = member.id, address = %member.address, "adding member");
                self.node
                    .add_member(member.id, member.address)
                    .await
                    .map_err(node_status)?;
            }
        }
        Ok(Response::new(AddMemberResponse {
            members: self.members(),
        }))
    }

    #[instrument(skip_all, fields(node = self.node.id()))]
    async fn remove_member(
        &self,
        req: Request<RemoveMemberRequest>,
    ) -> Result<Response<RemoveMemberResponse>, Status> {
        self.authz.caller(&req)?.admin("remove members")?;
        let id = req.into_inner().id;
        // A lagging node (a newcomer above all) may not have applied the member's addition
        // yet: NOT_FOUND must mean the cluster has no such member, not that this node lags.
        self.node.read_barrier().await.map_err(node_status)?;
        let members = self.node.catalog().members().clone();
        if !members.contains_key(&id) {
            return Err(Status::not_found(format!("member {id} not found")));
        }
        if members.len() == 1 {
            return Err(Status::failed_precondition(
                "cannot remove the last member of the cluster",
            ));
        }
        info!(member = id, "removing member");
        self.node.remove_member(id).await.map_err(node_status)?;
        Ok(Response::new(RemoveMemberResponse {
            members: self.members(),
        }))
    }

    async fn get_node_status(
        &self,
        req: Request<NodeStatusRequest>,
    ) -> Result<Response<NodeStatus>, Status> {
        self.authz.caller(&req)?;
        Ok(Response::new(self.local_status()))
    }

    async fn status(
        &self,
        req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        self.authz.caller(&req)?;
        let me = self.node.id();
        let others = self.members().into_iter().filter(|m| m.id != me);
        let mut members: Vec<NodeStatus> =
            futures::future::join_all(others.map(|m| remote_status(m, self.tls.clone()))).await;
        members.push(self.local_status());
        members.sort_by_key(|m| m.id);
        let leader_id = members
            .iter()
            .find(|m| m.role == "leader")
            .map_or(self.node.info().leader_id, |m| m.id);
        Ok(Response::new(StatusResponse {
            members,
            leader_id,
            cluster_id: self.cluster_id(),
        }))
    }

    type SnapshotSaveStream = ChunkStream;

    #[instrument(skip_all, fields(node = self.node.id()))]
    async fn snapshot_save(
        &self,
        req: Request<SnapshotSaveRequest>,
    ) -> Result<Response<Self::SnapshotSaveStream>, Status> {
        // A backup is the whole catalog, agent records included: an admin's to take.
        self.authz.caller(&req)?.admin("save snapshots")?;
        self.node.read_barrier().await.map_err(node_status)?;
        let backup = self.node.catalog().encode_backup();
        let chunks: Vec<Result<SnapshotChunk, Status>> = backup
            .chunks(CHUNK)
            .map(|c| Ok(SnapshotChunk { data: c.to_vec() }))
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }

    #[instrument(skip_all, fields(node = self.node.id()))]
    async fn snapshot_restore(
        &self,
        req: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<SnapshotRestoreResponse>, Status> {
        self.authz.caller(&req)?.admin("restore snapshots")?;
        let mut stream = req.into_inner();
        let mut backup = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if backup.len() + chunk.data.len() > MAX_BACKUP {
                return Err(Status::resource_exhausted(format!(
                    "backup larger than {MAX_BACKUP} bytes"
                )));
            }
            backup.extend_from_slice(&chunk.data);
        }
        check_backup(&backup).map_err(catalog_status)?;
        match self
            .node
            .propose(Command::new(Op::Restore(RestoreOp { backup })))
            .await
            .map_err(node_status)?
        {
            Outcome::Restored { revision } => {
                info!(revision, "catalog restored from a backup");
                Ok(Response::new(SnapshotRestoreResponse { revision }))
            }
            other => Err(Status::internal(format!("unexpected outcome {other:?}"))),
        }
    }
}
