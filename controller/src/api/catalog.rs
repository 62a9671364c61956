//! `pld.v1.Catalog`: put, get, list, delete, status reports and lease renewals.

use std::time::{SystemTime, UNIX_EPOCH};

use pld_core::catalog::{kind_name, object_key, object_kind, parse_kind, validate_object};
use pld_core::command::{Command, DeleteOp, KeepAliveOp, Op, PutOp, Scope};
use pld_core::{access, validate, Outcome};
use pld_proto::v1::catalog_server::Catalog;
use pld_proto::v1::{
    report_status_request, DeleteRequest, DeleteResponse, GetRequest, GetResponse,
    KeepAliveRequest, KeepAliveResponse, ListRequest, ListResponse, PutRequest, PutResponse,
    ReportStatusRequest, ReportStatusResponse,
};
use tonic::{Request, Response, Status};
use tracing::instrument;

use super::{invalid, node_status};
use crate::authz::Authz;
use crate::node::NodeHandle;

/// Serves the catalog from a node.
pub struct CatalogService {
    node: NodeHandle,
    authz: Authz,
}

impl CatalogService {
    /// A service over `node`, telling callers apart with `authz`.
    pub fn new(node: NodeHandle, authz: Authz) -> Self {
        CatalogService { node, authz }
    }

    /// Proposes `op`, confined to `scope` when an agent sent it.
    async fn propose(&self, op: Op, scope: Option<Scope>) -> Result<Outcome, Status> {
        self.node
            .propose(Command::new(op).within(scope))
            .await
            .map_err(node_status)
    }

    async fn barrier(&self, stale: bool) -> Result<(), Status> {
        if stale {
            Ok(())
        } else {
            self.node.read_barrier().await.map_err(node_status)
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn key_required(key: &str) -> Result<(), Status> {
    if key.is_empty() {
        Err(Status::invalid_argument("invalid key: must not be empty"))
    } else if key.len() > 256 {
        Err(Status::invalid_argument(
            "invalid key: longer than 256 bytes",
        ))
    } else {
        Ok(())
    }
}

fn unexpected(outcome: Outcome) -> Status {
    Status::internal(format!("unexpected outcome {outcome:?}"))
}

#[tonic::async_trait]
impl Catalog for CatalogService {
    #[instrument(level = "debug", skip_all, fields(node = self.node.id()))]
    async fn put(&self, req: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let caller = self.authz.caller(&req)?;
        let req = req.into_inner();
        let object = req
            .object
            .ok_or_else(|| Status::invalid_argument("invalid object: is required"))?;
        validate_object(&object).map_err(invalid)?;
        let kind = object_kind(&object).map_err(invalid)?;
        let scope = caller.write(kind, || {
            let key = object_key(&object).map(|(_, key)| key).unwrap_or_default();
            format!("put {} {key:?}", kind_name(kind))
        })?;
        match self
            .propose(
                Op::Put(PutOp {
                    object: Some(object),
                    expected_mod_revision: req.expected_mod_revision,
                    now_unix_ms: unix_ms(),
                }),
                scope,
            )
            .await?
        {
            Outcome::Put { object, revision } => Ok(Response::new(PutResponse {
                object: Some(object),
                revision,
            })),
            other => Err(unexpected(other)),
        }
    }

    #[instrument(level = "debug", skip_all, fields(node = self.node.id()))]
    async fn get(&self, req: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let caller = self.authz.caller(&req)?;
        let req = req.into_inner();
        let kind = parse_kind(req.kind).map_err(invalid)?;
        key_required(&req.key)?;
        self.barrier(req.stale).await?;
        let catalog = self.node.catalog();
        caller.read(&catalog, kind, &req.key)?;
        let object = catalog.get(kind, &req.key).ok_or_else(|| {
            Status::not_found(format!(
                "{} {:?} not found",
                pld_core::catalog::kind_name(kind),
                req.key
            ))
        })?;
        Ok(Response::new(GetResponse {
            object: Some(object),
            revision: catalog.revision(),
        }))
    }

    #[instrument(level = "debug", skip_all, fields(node = self.node.id()))]
    async fn list(&self, req: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        let caller = self.authz.caller(&req)?;
        let req = req.into_inner();
        let kind = parse_kind(req.kind).map_err(invalid)?;
        if !req.vpc_id.is_empty() {
            validate::vpc_id("vpc_id", &req.vpc_id).map_err(invalid)?;
        }
        self.barrier(req.stale).await?;
        let catalog = self.node.catalog();
        let mut objects = catalog.list(kind, &req.prefix, &req.vpc_id, &req.service);
        // An agent lists what it may read, as etcd and Consul filter a list by the caller's
        // permissions rather than refuse it.
        if let Some(scope) = caller.read_scope() {
            objects.retain(|o| {
                object_key(o).is_ok_and(|(kind, key)| access::may_read(&catalog, scope, kind, &key))
            });
        }
        Ok(Response::new(ListResponse {
            objects,
            revision: catalog.revision(),
        }))
    }

    #[instrument(level = "debug", skip_all, fields(node = self.node.id()))]
    async fn delete(
        &self,
        req: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let caller = self.authz.caller(&req)?;
        let req = req.into_inner();
        let kind = parse_kind(req.kind).map_err(invalid)?;
        key_required(&req.key)?;
        let scope = caller.write(kind, || format!("delete {} {:?}", kind_name(kind), req.key))?;
        match self
            .propose(
                Op::Delete(DeleteOp {
                    kind: req.kind,
                    key: req.key,
                    expected_mod_revision: req.expected_mod_revision,
                }),
                scope,
            )
            .await?
        {
            Outcome::Deleted { object, revision } => Ok(Response::new(DeleteResponse {
                object: Some(object),
                revision,
            })),
            other => Err(unexpected(other)),
        }
    }

    #[instrument(level = "debug", skip_all, fields(node = self.node.id()))]
    async fn report_status(
        &self,
        req: Request<ReportStatusRequest>,
    ) -> Result<Response<ReportStatusResponse>, Status> {
        let caller = self.authz.caller(&req)?;
        let req = req.into_inner();
        parse_kind(req.kind).map_err(invalid)?;
        key_required(&req.key)?;
        match &req.status {
            Some(report_status_request::Status::Service(s)) => validate::service_status(s),
            Some(report_status_request::Status::Binding(b)) => validate::binding_status(b),
            Some(report_status_request::Status::Agent(f)) => pld_core::facts::validate(f),
            None => Ok(()),
        }
        .map_err(invalid)?;
        let scope = caller.report("report status")?;
        match self.propose(Op::ReportStatus(req), scope).await? {
            Outcome::StatusReported { revision } => {
                Ok(Response::new(ReportStatusResponse { revision }))
            }
            other => Err(unexpected(other)),
        }
    }

    #[instrument(level = "debug", skip_all, fields(node = self.node.id()))]
    async fn keep_alive(
        &self,
        req: Request<KeepAliveRequest>,
    ) -> Result<Response<KeepAliveResponse>, Status> {
        let caller = self.authz.caller(&req)?;
        let req = req.into_inner();
        validate::vpc_id("vpc_id", &req.vpc_id).map_err(invalid)?;
        let scope = caller.report("renew agent leases")?;
        match self
            .propose(
                Op::KeepAlive(KeepAliveOp {
                    vpc_id: req.vpc_id,
                    now_unix_ms: unix_ms(),
                }),
                scope,
            )
            .await?
        {
            Outcome::LeaseRenewed { expires_unix_ms } => Ok(Response::new(KeepAliveResponse {
                lease_expires_unix_ms: expires_unix_ms,
            })),
            other => Err(unexpected(other)),
        }
    }
}
