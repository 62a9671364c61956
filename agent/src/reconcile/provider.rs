//! The provider side: an endpoint service per service this VPC offers, its allowed principals
//! in step with the catalog, pending connections accepted or rejected by policy (or left for
//! `pld bindings accept|reject`), the service's status written back, and endpoint services
//! whose service is gone deleted.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use pld_cloud::{state_is, CloudError, Connection, EndpointService, OWNER_TAG};
use pld_core::plan::connections::{decide, Claim, Policy};
use pld_core::plan::regions::{plan_regions, settling};
use pld_core::plan::report::RetiringFound;
use pld_core::plan::service::{
    live_connections, plan_drained, plan_endpoint_service, plan_grace_over, plan_permissions,
    plan_retire, sides, ServiceWant,
};
use pld_core::plan::Planned;
use pld_proto::v1::{Acceptance, Approval, Service};
use tracing::warn;

use super::execute::Executed;
use super::front::{on_alb, FrontOutcome, Fronts};
use super::ownership::{generation, Owner};
use super::{PassResult, Reconciler};

impl Reconciler {
    pub(super) async fn provider_pass(&self) -> Result<PassResult, CloudError> {
        let mut result = PassResult::default();
        let owned = self
            .cloud
            .describe_endpoint_services(&self.own.mine())
            .await?;
        let desired = self.view.services_of(&self.cfg.vpc_id);
        // What pld built in front of ALBs: looked at while a service is on an ALB, and after
        // start and while fronts are left, so none is forgotten.
        let alb_services = desired.iter().any(on_alb);
        let mut fronts = if alb_services || self.memory().fronts_exist != Some(false) {
            match self.observe_fronts().await {
                Ok(fronts) => fronts,
                Err(e) if e.is_retryable() => return Err(e),
                // A consumer-only agent's policy has no ELBv2 statements, and an agent that
                // cannot read load balancers never built one: its services on NLBs go on; a
                // service on an ALB is refused with why.
                Err(e) => Fronts::unreadable(e),
            }
        } else {
            Fronts::default()
        };
        self.memory().fronts_exist = Some(!fronts.is_empty());
        self.memory()
            .alb_fronts
            .retain(|name, _| desired.iter().any(|s| &s.name == name && on_alb(s)));
        // Grace periods of endpoint services that are gone are nobody's any more.
        self.memory()
            .retiring_since
            .retain(|id, _| owned.iter().any(|es| &es.id == id));
        // What was pending for a service that is gone is nobody's any more.
        self.memory()
            .service_pending
            .retain(|name, _| desired.iter().any(|s| &s.name == name));
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
        // A service has one endpoint service, and more while it moves to another load
        // balancer: the old ones serve the consumers that have not moved yet.
        let mut by_owner: BTreeMap<String, Vec<EndpointService>> = BTreeMap::new();
        for es in owned {
            if let Some(owner) = es.tags.get(OWNER_TAG).cloned() {
                by_owner.entry(owner).or_default().push(es);
            }
        }
        for service in desired {
            let owner = self.own.service(&service.name);
            let owned = by_owner.remove(&owner.to_string()).unwrap_or_default();
            let r = self
                .reconcile_service(&service, &owner, &owned, &connections, &mut fronts)
                .await;
            if let Err(e) = &r {
                if !e.is_retryable() {
                    self.report_service(&service, "failed", None, &[], &e.to_string())
                        .await;
                }
            }
            result.absorb(r);
        }
        for (owner, orphans) in by_owner {
            // A service registered in another VPC since: its consumers move to the endpoint
            // service that VPC's agent makes, so this one serves them until none is left, as
            // when a service moves to another load balancer in this VPC.
            let moved_away = owner
                .parse::<Owner>()
                .ok()
                .and_then(|o| self.view.service(o.service()))
                .filter(|s| s.vpc_id != self.cfg.vpc_id);
            for orphan in orphans {
                let r = match &moved_away {
                    Some(service) => self.drain_moved(service, &orphan, &connections).await,
                    None => self.delete_service(&owner, &orphan, &connections).await,
                };
                result.absorb(r);
            }
        }
        if !fronts.is_empty() {
            // Endpoint services deleted in this pass no longer hold their fronts.
            let owned = self
                .cloud
                .describe_endpoint_services(&self.own.mine())
                .await?;
            result.absorb(self.retire_fronts(fronts, &owned).await);
        }
        Ok(result)
    }

    async fn reconcile_service(
        &self,
        service: &Service,
        owner: &Owner,
        owned: &[EndpointService],
        connections: &[Connection],
        fronts: &mut Fronts,
    ) -> Result<bool, CloudError> {
        // A service on an ALB: its endpoint service goes on the NLB pld builds in front.
        let load_balancer_arn = if on_alb(service) {
            match self.front_round(service, owner, fronts).await? {
                FrontOutcome::Ready { load_balancer_arn } => load_balancer_arn,
                FrontOutcome::Building(why) => {
                    self.serve_meanwhile(service, owned, connections, "pending", &why)
                        .await?;
                    return Ok(true);
                }
                FrontOutcome::Refused(why) => {
                    self.serve_meanwhile(service, owned, connections, "failed", &why)
                        .await?;
                    return Ok(false);
                }
            }
        } else {
            service.load_balancer_arn.clone()
        };
        let tags = self.own.tags(owner);
        let mut want = ServiceWant {
            load_balancer_arn: &load_balancer_arn,
            regions: &service.regions,
            owner,
            tags: &tags,
            generation: generation(service.meta.as_ref()),
            spent_tokens: 0,
        };
        let split = sides(&load_balancer_arn, owned);
        // A create answered with an endpoint service deleted since (the service moved off
        // this load balancer and back) is made again under the next token.
        let created = loop {
            let writes = plan_endpoint_service(&want, split.current).map_err(CloudError::Client)?;
            match self.make(service, &writes).await?.created_service {
                Some(es) if state_is(&es.state, "deleted") => want.spent_tokens += 1,
                created => break created,
            }
        };
        let Some(es) = created.as_ref().or(split.current) else {
            // Nothing was created and nothing existed: cannot happen, as a missing service
            // plans its create; look again rather than report a guess.
            return Ok(true);
        };
        self.sync_principals(service, es).await?;
        // The regions it is offered to, as listed on this pass's describe (a new endpoint
        // service was created offered to them). A change AWS refuses (vpce:AllowMultiRegion
        // not granted) leaves the service serving its own region: said, not failed.
        let regions_refused = match plan_regions(es, &service.regions) {
            None => None,
            Some(change) => match self.make(service, &[change]).await {
                Ok(_) => None,
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => Some(format!("the regions it is offered to are unchanged: {e}")),
            },
        };
        // The same policy decides the connections to the endpoint services it moved off:
        // consumers that have not moved yet still connect there.
        let mut busy = false;
        for each in std::iter::once(es).chain(split.retiring.iter().copied()) {
            busy |= self.decide_connections(service, each, connections).await?;
        }
        let mut retiring = Vec::new();
        for old in split.retiring {
            if let Some(found) = self.retire_moved_off(old, connections).await? {
                retiring.push(found);
            }
        }
        let unknown = self.memory().connections_unsupported;
        let message = if unknown && !retiring.is_empty() {
            "the cloud cannot list endpoint connections here, so the endpoint services this \
             service moved off stay for the whole drain grace period (drain_grace_seconds)"
        } else {
            regions_refused.as_deref().unwrap_or_default()
        };
        if regions_refused.is_none() {
            // Every write of the pass was made: nothing is pending on this agent's side.
            self.memory().service_pending.remove(&service.name);
        }
        self.report_service(service, &es.state, Some(es), &retiring, message)
            .await;
        Ok(busy || !state_is(&es.state, "Available") || settling(es))
    }

    /// While a service's front is being built, or refused: the endpoint services it already
    /// has (the one on the load balancer it moves off) go on deciding connections, and the
    /// status goes on naming the one consumers use, so they stay where they are.
    async fn serve_meanwhile(
        &self,
        service: &Service,
        owned: &[EndpointService],
        connections: &[Connection],
        state: &str,
        why: &str,
    ) -> Result<(), CloudError> {
        for es in owned {
            self.decide_connections(service, es, connections).await?;
        }
        let named = service
            .status
            .as_ref()
            .map(|s| s.endpoint_service_name.as_str())
            .unwrap_or_default();
        let current = owned
            .iter()
            .find(|es| !named.is_empty() && es.name == named);
        self.report_service(service, state, current, &[], why).await;
        Ok(())
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
        if let Some(change) = plan_permissions(&es.id, &service.allowed_principals, &current) {
            self.make(service, &[change]).await?;
        }
        self.memory()
            .principals
            .insert(service.name.clone(), synced);
        Ok(())
    }

    /// Accepts or rejects the pending connections to `es`, out of all those listed, by the
    /// service's policy ([`pld_core::plan::connections`]); returns whether any is in
    /// transition.
    async fn decide_connections(
        &self,
        service: &Service,
        es: &EndpointService,
        connections: &[Connection],
    ) -> Result<bool, CloudError> {
        let connections: Vec<&Connection> = connections
            .iter()
            .filter(|c| c.service_id == es.id)
            .collect();
        let claims: Vec<Claim> = self
            .view
            .bindings_to(&service.name)
            .iter()
            .flat_map(|b| {
                let approval = Approval::try_from(b.approval).unwrap_or(Approval::Unspecified);
                // A moving binding claims its new endpoint too, so it is accepted by the same
                // rules as the one it replaces.
                let status = b.status.clone().unwrap_or_default();
                let moving = status.migration.unwrap_or_default();
                [
                    status.endpoint_id,
                    moving.from_endpoint_id,
                    moving.to_endpoint_id,
                ]
                .into_iter()
                .filter(|id| !id.is_empty())
                .map(move |endpoint_id| Claim {
                    endpoint_id,
                    approval,
                })
            })
            .collect();
        let policy = Policy {
            acceptance: Acceptance::try_from(service.acceptance).unwrap_or(Acceptance::Auto),
            allowed_principals: &service.allowed_principals,
            provider_account: &self.cfg.account_id,
        };
        let decisions = decide(&es.id, &policy, &claims, &connections);
        self.make(service, &decisions.writes).await?;
        Ok(decisions.busy)
    }

    /// Makes a service's writes; the steps a failure stops are kept as the service's pending
    /// steps, which its status report lists.
    pub(super) async fn make(
        &self,
        service: &Service,
        writes: &[Planned],
    ) -> Result<Executed, CloudError> {
        let mut done = self.execute(writes).await;
        match done.failed.take() {
            None => Ok(done),
            Some((_, e)) => {
                let unmade = std::mem::take(&mut done.unmade);
                self.memory()
                    .service_pending
                    .insert(service.name.clone(), unmade);
                Err(e)
            }
        }
    }

    /// An endpoint service of a service now offered by another VPC: its connections decided
    /// by the service's policy while consumers move off it, deleted once none is left.
    async fn drain_moved(
        &self,
        service: &Service,
        es: &EndpointService,
        connections: &[Connection],
    ) -> Result<bool, CloudError> {
        let busy = self.decide_connections(service, es, connections).await?;
        self.retire_moved_off(es, connections).await?;
        Ok(busy)
    }

    /// An endpoint service a service moved off: deleted once no consumer connects to it, or
    /// once the drain grace period is over (the consumers left are cut); until then what its
    /// status reports of it. Where connections cannot be listed nothing tells when consumers
    /// have left, so it waits out the whole grace period.
    async fn retire_moved_off<'a>(
        &self,
        es: &'a EndpointService,
        connections: &[Connection],
    ) -> Result<Option<RetiringFound<'a>>, CloudError> {
        let (since, since_wall) = *self
            .memory()
            .retiring_since
            .entry(es.id.clone())
            .or_insert_with(|| (Instant::now(), SystemTime::now()));
        let grace = self.cfg.drain_grace();
        let unknown = self.memory().connections_unsupported;
        let writes = match plan_drained(es, connections).filter(|_| !unknown) {
            Some(delete) => vec![delete],
            None if since.elapsed() >= grace => {
                let left = live_connections(es, connections).len();
                warn!(id = %es.id, left, grace_seconds = grace.as_secs(),
                    "the drain grace period is over: the consumers left are cut");
                plan_grace_over(es, connections, grace)
            }
            None => Vec::new(),
        };
        if !writes.is_empty() {
            match self.execute(&writes).await.failed {
                None => return Ok(None),
                // A consumer connected since the listing: it stays.
                Some((_, CloudError::DependencyViolation(_))) => {}
                Some((_, e)) => return Err(e),
            }
        }
        let ends = since_wall + grace;
        Ok(Some(RetiringFound {
            endpoint_service: es,
            connections: live_connections(es, connections).len(),
            grace_ends_unix_ms: ends
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }))
    }

    async fn delete_service(
        &self,
        owner: &str,
        es: &EndpointService,
        connections: &[Connection],
    ) -> Result<bool, CloudError> {
        match self.execute(&plan_retire(es, connections)).await.failed {
            None => Ok(false),
            // Connections still going away: AWS deletes the service once they are gone.
            Some((_, CloudError::DependencyViolation(_))) => Ok(true),
            Some((_, e)) => {
                warn!(%owner, id = %es.id, error = %e, "endpoint service not deleted");
                Err(e)
            }
        }
    }
}
