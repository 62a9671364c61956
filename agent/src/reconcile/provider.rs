//! The provider side: an endpoint service per service this VPC offers, its allowed principals
//! in step with the catalog, pending connections accepted or rejected by policy (or left for
//! `pld bindings accept|reject`), the service's status written back, and endpoint services
//! whose service is gone deleted.

use std::collections::BTreeMap;

use pld_cloud::{
    state_is, CloudError, Connection, CreateEndpointService, EndpointService, OWNER_TAG,
};
use pld_proto::v1::{Acceptance, Approval, Service};
use tracing::{info, warn};

use super::ownership::{client_token, generation, Owner};
use super::{PassResult, Reconciler};
use crate::crash_points::crash_point;

impl Reconciler {
    pub(super) async fn provider_pass(&self) -> Result<PassResult, CloudError> {
        let mut result = PassResult::default();
        let owned = self
            .cloud
            .describe_endpoint_services(&self.own.mine())
            .await?;
        let desired = self.view.services_of(&self.cfg.vpc_id);
        // One call for the connections of every service this account owns.
        let connections = if owned.is_empty() {
            Vec::new()
        } else {
            match self.cloud.describe_connections(None).await {
                Ok(c) => c,
                // An endpoint that cannot list connections (an emulator): run without
                // acceptance management rather than not at all.
                Err(CloudError::Unsupported(op)) => {
                    if !std::mem::replace(&mut self.memory().connections_unsupported, true) {
                        warn!(%op, "connections cannot be listed here; accepting and rejecting is skipped");
                    }
                    Vec::new()
                }
                Err(e) => return Err(e),
            }
        };
        let mut by_owner: BTreeMap<String, EndpointService> = owned
            .into_iter()
            .filter_map(|s| Some((s.tags.get(OWNER_TAG)?.clone(), s)))
            .collect();
        for service in desired {
            let owner = self.own.service(&service.name);
            let existing = by_owner.remove(&owner.to_string());
            let r = self
                .reconcile_service(&service, &owner, existing, &connections)
                .await;
            if let Err(e) = &r {
                if !e.is_retryable() {
                    self.report_service(&service, "failed", None, e.to_string())
                        .await;
                }
            }
            result.absorb(r);
        }
        for (owner, orphan) in by_owner {
            result.absorb(self.delete_service(&owner, &orphan, &connections).await);
        }
        Ok(result)
    }

    async fn reconcile_service(
        &self,
        service: &Service,
        owner: &Owner,
        existing: Option<EndpointService>,
        connections: &[Connection],
    ) -> Result<bool, CloudError> {
        let es = match existing {
            Some(es) => es,
            None => {
                // Acceptance is always required at AWS: the agent decides, so `auto` can still
                // reject principals the service does not allow.
                let req = CreateEndpointService {
                    load_balancer_arn: service.load_balancer_arn.clone(),
                    acceptance_required: true,
                    supported_regions: Vec::new(),
                    private_dns_name: None,
                    client_token: client_token(
                        owner,
                        generation(service.meta.as_ref()),
                        &service.load_balancer_arn,
                    ),
                    tags: self.own.tags(owner),
                };
                let es = self.cloud.create_endpoint_service(&req).await?;
                crash_point!("provider-service-created");
                info!(service = %service.name, id = %es.id, "created endpoint service");
                es
            }
        };
        if !es.acceptance_required {
            self.cloud.set_acceptance_required(&es.id, true).await?;
        }
        self.sync_principals(service, &es).await?;
        let connections: Vec<&Connection> = connections
            .iter()
            .filter(|c| c.service_id == es.id)
            .collect();
        let busy = self.decide_connections(service, &es, &connections).await?;
        let state = es.state.to_ascii_lowercase();
        self.report_service(service, &state, Some(&es), String::new())
            .await;
        Ok(busy || !state_is(&es.state, "Available"))
    }

    /// Makes the allowed principals at AWS those of the catalog. There is no bulk describe of
    /// permissions, so a service's are read once per spec revision, not every pass.
    async fn sync_principals(
        &self,
        service: &Service,
        es: &EndpointService,
    ) -> Result<(), CloudError> {
        // Keyed by the principals themselves: status reports bump the service's revision too.
        let synced = (es.id.clone(), service.allowed_principals.join(","));
        if self.memory().principals.get(&service.name) == Some(&synced) {
            return Ok(());
        }
        let current = self.cloud.allowed_principals(&es.id).await?;
        let add: Vec<String> = service
            .allowed_principals
            .iter()
            .filter(|p| !current.contains(p))
            .cloned()
            .collect();
        let remove: Vec<String> = current
            .iter()
            .filter(|p| !service.allowed_principals.contains(p))
            .cloned()
            .collect();
        if !add.is_empty() || !remove.is_empty() {
            self.cloud
                .modify_allowed_principals(&es.id, &add, &remove)
                .await?;
        }
        self.memory()
            .principals
            .insert(service.name.clone(), synced);
        Ok(())
    }

    /// Accepts or rejects pending connections; returns whether any is in transition.
    async fn decide_connections(
        &self,
        service: &Service,
        es: &EndpointService,
        connections: &[&Connection],
    ) -> Result<bool, CloudError> {
        let bindings = self.view.bindings_to(&service.name);
        let mut accept = Vec::new();
        let mut reject = Vec::new();
        let mut busy = false;
        for c in connections {
            if state_is(&c.state, "pending") {
                busy = true;
            }
            if !state_is(&c.state, "pendingAcceptance") {
                continue;
            }
            let binding = bindings.iter().find(|b| {
                b.status
                    .as_ref()
                    .is_some_and(|s| s.endpoint_id == c.endpoint_id)
            });
            let allowed = pld_core::access::principals_allow(
                &service.allowed_principals,
                Some(&self.cfg.account_id),
                &c.owner,
            );
            if service.acceptance == Acceptance::Manual as i32 {
                match binding.map(|b| b.approval) {
                    Some(a) if a == Approval::Accepted as i32 && allowed => {
                        accept.push(c.endpoint_id.clone())
                    }
                    Some(a) if a == Approval::Rejected as i32 => reject.push(c.endpoint_id.clone()),
                    _ if !allowed => reject.push(c.endpoint_id.clone()),
                    _ => {}
                }
            } else if allowed && binding.is_some() {
                accept.push(c.endpoint_id.clone());
            } else if !allowed {
                reject.push(c.endpoint_id.clone());
            } else {
                // An allowed principal whose binding we have not seen yet: look again soon.
                busy = true;
            }
        }
        if !accept.is_empty() {
            info!(service = %service.name, endpoints = ?accept, "accepting connections");
            self.cloud.accept_connections(&es.id, &accept).await?;
            crash_point!("provider-connections-accepted");
            busy = true;
        }
        if !reject.is_empty() {
            info!(service = %service.name, endpoints = ?reject, "rejecting connections");
            self.cloud.reject_connections(&es.id, &reject).await?;
        }
        Ok(busy)
    }

    async fn delete_service(
        &self,
        owner: &str,
        es: &EndpointService,
        connections: &[Connection],
    ) -> Result<bool, CloudError> {
        let live: Vec<String> = connections
            .iter()
            .filter(|c| c.service_id == es.id)
            .filter(|c| {
                state_is(&c.state, "available")
                    || state_is(&c.state, "pendingAcceptance")
                    || state_is(&c.state, "pending")
            })
            .map(|c| c.endpoint_id.clone())
            .collect();
        if !live.is_empty() {
            self.cloud.reject_connections(&es.id, &live).await?;
        }
        crash_point!("provider-service-deleting");
        match self.cloud.delete_endpoint_service(&es.id).await {
            Ok(()) => {
                info!(%owner, id = %es.id, "deleted endpoint service");
                Ok(false)
            }
            Err(e) if e.is_not_found() => Ok(false),
            Err(CloudError::DependencyViolation(_)) => Ok(true),
            Err(e) => Err(e),
        }
    }
}
