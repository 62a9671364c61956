//! `pld.v1.Planner`: `pld plan`, answered from this node's catalog after a read barrier, with
//! the agents' own planners ([`pld_core::plan::preview`]) and no write.

use pld_core::plan::preview::{self, PreviewError};
use pld_proto::v1::planner_server::Planner;
use pld_proto::v1::{plan_request, PlanRequest, PlanResponse};
use tonic::{Request, Response, Status};
use tracing::instrument;

use super::node_status;
use crate::authz::Authz;
use crate::node::NodeHandle;

/// Plans changes against a node's catalog.
pub struct PlanService {
    node: NodeHandle,
    authz: Authz,
}

impl PlanService {
    /// A service over `node`, telling callers apart with `authz`.
    pub fn new(node: NodeHandle, authz: Authz) -> Self {
        PlanService { node, authz }
    }
}

fn preview_status(e: PreviewError) -> Status {
    match e {
        PreviewError::UnknownService(_) => Status::not_found(e.to_string()),
        PreviewError::Invalid(_) => Status::invalid_argument(e.to_string()),
    }
}

#[tonic::async_trait]
impl Planner for PlanService {
    #[instrument(level = "debug", skip_all, fields(node = self.node.id()))]
    async fn plan(&self, req: Request<PlanRequest>) -> Result<Response<PlanResponse>, Status> {
        let caller = self.authz.caller(&req)?;
        // A plan reads every VPC's facts, which an agent may not.
        caller.reader_of_everything("make plans")?;
        let change = req
            .into_inner()
            .change
            .ok_or_else(|| Status::invalid_argument("invalid change: is required"))?;
        self.node.read_barrier().await.map_err(node_status)?;
        let catalog = self.node.catalog();
        let planned = match change {
            plan_request::Change::Connect(c) => preview::connect(&catalog, &c.service, &c.vpc_ids),
            plan_request::Change::Disconnect(d) => {
                preview::disconnect(&catalog, &d.service, &d.vpc_ids)
            }
            plan_request::Change::Register(r) => {
                let service = r.service.ok_or_else(|| {
                    Status::invalid_argument("invalid register.service: is required")
                })?;
                preview::register(&catalog, &service)
            }
        }
        .map_err(preview_status)?;
        Ok(Response::new(planned.to_proto(catalog.revision())))
    }
}
