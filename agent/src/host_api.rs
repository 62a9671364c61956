//! `pld.v1.HostQuery` on the agent: hosts ask how to reach a service; the binding is created on
//! first use and the call waits (bounded) until it is ready.

use std::sync::Arc;
use std::time::Duration;

use pld_client::Client;
use pld_proto::v1::host_query_server::HostQuery;
use pld_proto::v1::{object, Binding, Object, ResolveRequest, ResolveResponse};
use tonic::{Code, Request, Response, Status};
use tracing::{info, instrument};

use crate::builtin;
use crate::host_access::OnDemand;
use crate::view::CatalogView;
use ::metrics::Counter;
use pld_core::Phase;

/// Longest wait a caller may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

/// Serves host queries for one VPC.
pub struct HostQueryService {
    vpc_id: String,
    region: String,
    client: Client,
    view: Arc<CatalogView>,
    on_demand: OnDemand,
    /// Counts on-demand bindings refused.
    refused: Counter,
}

impl HostQueryService {
    /// A service for hosts in `vpc_id`.
    pub fn new(vpc_id: String, region: String, client: Client, view: Arc<CatalogView>) -> Self {
        HostQueryService {
            vpc_id,
            region,
            client,
            view,
            on_demand: OnDemand::Any,
            refused: Counter::noop(),
        }
    }

    /// Limits the bindings hosts may create on demand, counting refusals in `refused`.
    pub fn on_demand(mut self, on_demand: OnDemand, refused: Counter) -> Self {
        self.on_demand = on_demand;
        self.refused = refused;
        self
    }

    /// Whether the catalog has `service`: the local view first, then (the view may lag a
    /// registration that just happened) the controller itself.
    async fn in_catalog(&self, service: &str) -> Result<bool, Status> {
        if self.view.service(service).is_some() {
            return Ok(true);
        }
        match self.client.get(pld_proto::v1::Kind::Service, service).await {
            Ok(found) => Ok(found.is_some()),
            Err(e) => Err(Status::unavailable(format!("cannot read the catalog: {e}"))),
        }
    }

    fn answer(&self, service: &str) -> ResolveResponse {
        let binding = self.view.binding(service, &self.vpc_id);
        let status = binding.and_then(|b| b.status).unwrap_or_default();
        let ports = match builtin::lookup(service, &self.region) {
            Some(_) => vec![443],
            None => self
                .view
                .service(service)
                .map(|s| s.ports)
                .unwrap_or_default(),
        };
        ResolveResponse {
            service: service.to_string(),
            dns_name: status.dns_name,
            addresses: status.addresses,
            ports,
            phase: if status.phase.is_empty() {
                "pending".into()
            } else {
                status.phase
            },
            message: status.message,
            endpoint_id: status.endpoint_id,
        }
    }
}

/// An answer worth returning at once: settled, or serving while the binding moves.
fn settled(phase: &str) -> bool {
    Phase::of(phase).is_some_and(|p| p.is_settled() || p.serves())
}

#[tonic::async_trait]
impl HostQuery for HostQueryService {
    #[instrument(skip_all, fields(vpc = %self.vpc_id))]
    async fn resolve(
        &self,
        req: Request<ResolveRequest>,
    ) -> Result<Response<ResolveResponse>, Status> {
        let req = req.into_inner();
        pld_core::validate::dns_label("service", &req.service)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let wait = Duration::from_secs(u64::from(req.wait_seconds));
        if wait > MAX_WAIT {
            return Err(Status::invalid_argument(format!(
                "invalid wait_seconds: {} is more than {}",
                req.wait_seconds,
                MAX_WAIT.as_secs()
            )));
        }
        let mut changes = self.view.subscribe();
        if self.view.binding(&req.service, &self.vpc_id).is_none() {
            if !self.on_demand.allows(&req.service) {
                self.refused.increment(1);
                return Err(Status::permission_denied(format!(
                    "this agent creates bindings on demand only to the services \
                     host_api.on_demand_services lists ({}), not {:?}; an operator can bind it: \
                     `pld connect {} --vpc {}`",
                    self.on_demand.listed(),
                    req.service,
                    req.service,
                    self.vpc_id
                )));
            }
            if builtin::lookup(&req.service, &self.region).is_none()
                && !self.in_catalog(&req.service).await?
            {
                return Err(Status::not_found(format!(
                    "service {:?} is not in the catalog (list them with `pld services list`)",
                    req.service
                )));
            }
            info!(service = %req.service, "binding created on demand");
            let object = Object {
                object: Some(object::Object::Binding(Binding {
                    service: req.service.clone(),
                    consumer_vpc_id: self.vpc_id.clone(),
                    ..Default::default()
                })),
            };
            let put = self.client.put(object, Some(0)).await;
            match put {
                // Another caller created it first: fine.
                Ok(_) => {}
                Err(e) if e.code() == Code::FailedPrecondition => {}
                Err(e) => {
                    let why = format!("cannot create the binding: {e}");
                    // The catalog's refusal (the service does not allow this VPC's account) is
                    // the answer, not an outage.
                    return Err(if e.code() == Code::PermissionDenied {
                        Status::permission_denied(why)
                    } else {
                        Status::unavailable(why)
                    });
                }
            }
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            changes.borrow_and_update();
            let answer = self.answer(&req.service);
            if settled(&answer.phase) || tokio::time::Instant::now() >= deadline {
                return Ok(Response::new(answer));
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                return Ok(Response::new(self.answer(&req.service)));
            }
        }
    }
}
