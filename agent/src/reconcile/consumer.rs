//! The consumer side: an endpoint per binding of this VPC, followed through acceptance, then
//! `SERVICE.ZONE` published in the private hosted zone and the binding marked ready only once
//! Route 53 reports the change INSYNC; endpoints and names whose binding is gone are taken
//! down, names first.

use std::collections::BTreeMap;

use pld_cloud::{
    fqdn, state_is, ChangeStatus, CloudError, CreateEndpoint, Endpoint, EndpointKind, RecordSet,
    OWNER_TAG,
};
use pld_core::Phase;
use pld_proto::v1::Binding;
use tracing::{info, warn};

use super::ownership::{client_token, generation, Owner};
use super::placement::Placement;
use super::records::DnsBatch;
use super::{PassResult, Reconciler};
use crate::builtin;
use crate::crash_points::crash_point;

impl Reconciler {
    pub(super) async fn consumer_pass(&self) -> Result<PassResult, CloudError> {
        let mut result = PassResult::default();
        self.memory().change_status.clear();
        let owned = self
            .cloud
            .describe_endpoints(&self.cfg.vpc_id, &self.own.mine())
            .await?;
        let mut by_owner: BTreeMap<String, Endpoint> = owned
            .into_iter()
            .filter_map(|e| Some((e.tags.get(OWNER_TAG)?.clone(), e)))
            .collect();
        let bindings = self.view.bindings_of(&self.cfg.vpc_id);
        if self.memory().zone_id.is_none() && !self.memory().zone_searched {
            // After a restart: find (never create) the zone, so records of endpoints that are
            // gone can be cleaned up too — even when no endpoint is left to hint at it.
            self.find_zone().await?;
            self.memory().zone_searched = true;
        }
        let zone_id = self.memory().zone_id.clone();
        let records = match &zone_id {
            Some(z) => match self.cloud.list_records(z).await {
                Ok(r) => r,
                Err(e) if e.is_not_found() => {
                    // Deleted behind our back (or by an earlier pass): find or make it anew.
                    warn!(zone = %z, "the hosted zone is gone; looking for it again");
                    self.memory().zone_id = None;
                    result.busy = true;
                    return Ok(result);
                }
                Err(e) => return Err(e),
            },
            None => Vec::new(),
        };
        let mut dns = DnsBatch::default();
        // The owners of this VPC's bindings: their names stay published.
        let mut live: Vec<Owner> = Vec::with_capacity(bindings.len());
        for b in &bindings {
            let key = pld_core::catalog::binding_key(&b.service, &b.consumer_vpc_id);
            let owner = self.own.binding(&key);
            let endpoint = by_owner.remove(&owner.to_string());
            let r = self
                .reconcile_binding(b, &key, &owner, endpoint, &records, &mut dns)
                .await;
            if let Err(e) = &r {
                if !e.is_retryable() {
                    self.report_binding(b, Phase::Failed, None, String::new(), e.to_string())
                        .await;
                }
            }
            result.absorb(r);
            live.push(owner);
        }
        // Endpoints whose binding is gone: unpublish, then delete — only of the kinds pld
        // manages; anything else carrying our tags is someone else's doing, left alone.
        for (tag, endpoint) in by_owner {
            if !endpoint.kind.is_managed() {
                warn!(id = %endpoint.id, kind = endpoint.kind.as_str(), "an endpoint of a type pld does not manage carries its tags: leaving it alone");
                continue;
            }
            match tag.parse::<Owner>() {
                Ok(owner) => dns.remove(&self.record_name(owner.service()), &records, &owner),
                // Tagged as ours but with an owner pld never writes: no name to take down.
                Err(e) => {
                    warn!(id = %endpoint.id, error = %e, "endpoint has a malformed owner tag")
                }
            }
            result.absorb(self.delete_endpoint(&endpoint).await);
        }
        // Names still published for bindings that are gone and whose endpoint is too (a pass
        // that deleted the endpoint stopped before it unpublished the name).
        for (name, owner) in DnsBatch::owners(&records) {
            if self.own.is_our_binding(&owner) && !live.contains(&owner) {
                dns.remove(&name, &records, &owner);
            }
        }
        result.absorb(self.submit_dns(dns, zone_id.as_deref()).await);
        if bindings.is_empty() {
            result.absorb(self.maybe_delete_zone(&records).await);
        }
        Ok(result)
    }

    fn record_name(&self, service: &str) -> String {
        fqdn(&format!("{service}.{}", self.cfg.zone_fqdn()))
    }

    /// Where a binding points, or why it cannot point anywhere yet.
    fn target(&self, b: &Binding) -> Result<Target, NotYet> {
        if let Some((name, kind)) = builtin::lookup(&b.service, &self.cfg.region) {
            return Ok(Target {
                service_name: name,
                kind: Some(kind),
            });
        }
        let Some(s) = self.view.service(&b.service) else {
            return Err(NotYet::Missing(format!(
                "waiting for service {} to be registered (it is not in the catalog)",
                b.service
            )));
        };
        match s.status.map(|st| st.endpoint_service_name) {
            Some(name) if !name.is_empty() => Ok(Target {
                service_name: name,
                kind: None,
            }),
            _ => Err(NotYet::Waiting(format!(
                "waiting for the provider of {} to create its endpoint service",
                b.service
            ))),
        }
    }

    async fn reconcile_binding(
        &self,
        b: &Binding,
        key: &str,
        owner: &Owner,
        endpoint: Option<Endpoint>,
        records: &[RecordSet],
        dns: &mut DnsBatch,
    ) -> Result<bool, CloudError> {
        if let Some(ep) = endpoint.as_ref().filter(|ep| !ep.kind.is_managed()) {
            self.report_unmanaged(b, ep, "pld does not manage endpoints of that type")
                .await;
            return Ok(false);
        }
        let Target {
            service_name,
            kind: known_kind,
        } = match self.target(b) {
            Ok(t) => t,
            Err(not_yet) => {
                // Both wait: a provider about to create its endpoint service is polled soon;
                // a service not registered yet arrives as a catalog change, which starts a pass.
                let (poll, message) = match not_yet {
                    NotYet::Waiting(m) => (true, m),
                    NotYet::Missing(m) => (false, m),
                };
                if let Some(ep) = endpoint {
                    // The service is gone: take the endpoint and its name down.
                    dns.remove(&self.record_name(&b.service), records, owner);
                    self.delete_endpoint(&ep).await?;
                }
                self.report_binding(b, Phase::Waiting, None, String::new(), message)
                    .await;
                return Ok(poll);
            }
        };
        if let (Some(ep), Some(kind)) = (&endpoint, known_kind) {
            if ep.kind != kind {
                let why = format!("{} takes {} endpoints", b.service, kind.as_str());
                self.report_unmanaged(b, ep, &why).await;
                return Ok(false);
            }
        }
        let ep = match endpoint {
            Some(ep) => ep,
            None => {
                let ep = self
                    .create_endpoint(
                        owner,
                        generation(b.meta.as_ref()),
                        &service_name,
                        known_kind,
                    )
                    .await;
                match ep {
                    Ok(ep) => {
                        crash_point!("consumer-endpoint-created");
                        info!(service = %b.service, id = %ep.id, "created endpoint");
                        ep
                    }
                    Err(Placement(message)) => {
                        self.report_binding(b, Phase::Failed, None, String::new(), message)
                            .await;
                        return Ok(false);
                    }
                }
            }
        };
        let state = ep.state.clone();
        if state_is(&state, "pendingAcceptance") {
            self.report_binding(
                b,
                Phase::PendingAcceptance,
                Some(&ep),
                String::new(),
                "waiting for the provider to accept the connection".into(),
            )
            .await;
            return Ok(true);
        }
        if state_is(&state, "pending") {
            self.report_binding(b, Phase::Pending, Some(&ep), String::new(), String::new())
                .await;
            return Ok(true);
        }
        if state_is(&state, "rejected") {
            self.report_binding(
                b,
                Phase::Rejected,
                Some(&ep),
                String::new(),
                "the provider rejected the connection".into(),
            )
            .await;
            return Ok(false);
        }
        if !state_is(&state, "available") {
            self.report_binding(
                b,
                Phase::Failed,
                Some(&ep),
                String::new(),
                format!("endpoint is {state}"),
            )
            .await;
            return Ok(false);
        }
        match self.fix_subnets(&ep).await {
            Ok(false) => {}
            // The addresses change with the subnets: publish them on the next pass.
            Ok(true) => return Ok(true),
            Err(Placement(message)) => {
                self.report_binding(b, Phase::Failed, Some(&ep), String::new(), message)
                    .await;
                return Ok(false);
            }
        }
        if ep.kind != EndpointKind::Interface {
            // Gateway endpoints are route-table targets and GWLB endpoints are next hops that
            // route tables point at: neither is reached by name, so there is nothing to publish.
            self.report_binding(b, Phase::Ready, Some(&ep), String::new(), String::new())
                .await;
            return Ok(false);
        }
        // Publish only now that the endpoint is available.
        let name = self.record_name(&b.service);
        let in_flight = self.memory().changes.get(key).cloned();
        if let Some(change) = in_flight {
            let known = self.memory().change_status.get(&change).copied();
            let status = match known {
                Some(s) => s,
                None => {
                    let s = self.cloud.get_change(&change).await?;
                    self.memory().change_status.insert(change.clone(), s);
                    s
                }
            };
            match status {
                ChangeStatus::InSync => {
                    let mut memory = self.memory();
                    memory.changes.remove(key);
                    memory.pending.remove(key);
                    memory.in_sync.insert(key.to_string());
                }
                ChangeStatus::Pending => {
                    self.report_binding(b, Phase::Publishing, Some(&ep), name, String::new())
                        .await;
                    return Ok(true);
                }
            }
        }
        if self.memory().zone_id.is_none() {
            self.ensure_zone(generation(b.meta.as_ref())).await?;
            // The records of a new zone are listed on the next pass.
            return Ok(true);
        }
        // The catalog says a change was submitted, but this process never saw it in sync (it
        // restarted while the change was in flight): records already in place may not have
        // reached Route 53's servers yet. Submitting them again (an idempotent UPSERT) gives a
        // change id to wait on before calling the binding ready.
        let unconfirmed = !self.memory().in_sync.contains(key)
            && b.status
                .as_ref()
                .is_some_and(|s| Phase::of(&s.phase) == Some(Phase::Publishing));
        match dns.upsert(&name, &ep.addresses, records, owner, unconfirmed) {
            Err(conflict) => {
                self.report_binding(b, Phase::Failed, Some(&ep), String::new(), conflict)
                    .await;
                Ok(false)
            }
            Ok(true) => {
                dns.keys.push(key.to_string());
                if let Some(step) = dns.steps.last() {
                    self.memory()
                        .pending
                        .insert(key.to_string(), vec![step.clone()]);
                }
                self.report_binding(b, Phase::Publishing, Some(&ep), name, String::new())
                    .await;
                Ok(true)
            }
            Ok(false) => {
                self.report_binding(b, Phase::Ready, Some(&ep), name, String::new())
                    .await;
                Ok(false)
            }
        }
    }

    /// Fails a binding whose tagged endpoint is not one pld may change, naming it; the
    /// endpoint is left as it is.
    async fn report_unmanaged(&self, b: &Binding, ep: &Endpoint, why: &str) {
        let message = format!(
            "endpoint {} carries this binding's tags but is a {} endpoint ({why}): pld leaves \
             it alone; delete it or remove its pld tags",
            ep.id,
            ep.kind.as_str()
        );
        self.report_binding(b, Phase::Failed, None, String::new(), message)
            .await;
    }

    async fn create_endpoint(
        &self,
        owner: &Owner,
        generation: u64,
        service_name: &str,
        known_kind: Option<EndpointKind>,
    ) -> Result<Endpoint, Placement> {
        // Custom services: one describe gives both the endpoint kind and the supported AZs.
        let detail = match known_kind {
            Some(_) => None,
            None => match self.cloud.describe_service(service_name).await {
                Ok(d) => Some(d),
                Err(e) if e.is_retryable() => return Err(Placement(e.to_string())),
                Err(e) => {
                    return Err(Placement(format!(
                        "this VPC's account cannot use {service_name}: {e}"
                    )))
                }
            },
        };
        let kind = known_kind
            .or(detail.as_ref().map(|d| d.kind))
            .unwrap_or(EndpointKind::Interface);
        if !kind.is_managed() {
            return Err(Placement(format!(
                "{service_name} offers {} endpoints, which pld does not create",
                kind.as_str()
            )));
        }
        let mut req = CreateEndpoint {
            kind,
            vpc_id: self.cfg.vpc_id.clone(),
            service_name: service_name.to_string(),
            subnet_ids: Vec::new(),
            security_group_ids: self.cfg.security_group_ids.clone(),
            route_table_ids: Vec::new(),
            client_token: String::new(),
            tags: self.own.tags(owner),
        };
        if kind == EndpointKind::Gateway {
            let tables = self
                .cloud
                .describe_route_tables(&self.cfg.vpc_id)
                .await
                .map_err(|e| Placement(e.to_string()))?;
            req.route_table_ids = tables.into_iter().map(|t| t.id).collect();
        } else {
            req.subnet_ids = self.placement(service_name, kind, detail).await?;
        }
        req.client_token = client_token(
            owner,
            generation,
            &format!(
                "{service_name}|{:?}|{:?}",
                req.subnet_ids, req.route_table_ids
            ),
        );
        self.cloud
            .create_endpoint(&req)
            .await
            .map_err(|e| Placement(e.to_string()))
    }

    pub(super) async fn delete_endpoint(&self, ep: &Endpoint) -> Result<bool, CloudError> {
        match self.cloud.delete_endpoint(&ep.id).await {
            Ok(()) => {
                crash_point!("consumer-endpoint-deleted");
                info!(id = %ep.id, "deleted endpoint");
                Ok(false)
            }
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The AWS service a binding's endpoint connects to.
struct Target {
    service_name: String,
    /// Known for built-ins; custom services are asked (interface or GWLB).
    kind: Option<EndpointKind>,
}

/// Why a binding has no target yet.
enum NotYet {
    /// The provider has not created its endpoint service yet.
    Waiting(String),
    /// The service is not in the catalog (yet, or any more).
    Missing(String),
}
