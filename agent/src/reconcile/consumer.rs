//! The consumer side: an endpoint per binding of this VPC, followed through acceptance, then
//! `SERVICE.ZONE` published in the private hosted zone and the binding marked ready only once
//! Route 53 reports the change INSYNC; endpoints and names whose binding is gone are taken
//! down, names first. When a binding's service moves to another endpoint service, its old
//! endpoint keeps serving while the new one is made, the name flips once the new one is
//! available, and the old one goes once the flip has been in sync for the record's TTL
//! ([`pld_core::plan::moves`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pld_cloud::{fqdn, state_is, ChangeStatus, CloudError, Endpoint, RecordSet, OWNER_TAG};
use pld_core::aws::Call;
use pld_core::plan::endpoint::{
    keep_while_waiting, next_fact, plan_endpoint, plan_orphan, Access, EndpointPlan, Fact,
    Observed, Outcome, Target, Want,
};
use pld_core::plan::moves::{flip, Flip, Migration, MoveStep, Serving};
use pld_core::plan::target::{target, unlisted};
use pld_core::plan::Seen;
use pld_core::Phase;
use pld_proto::v1::{Binding, BindingMigration};
use tracing::warn;

use super::ownership::{generation, Owner};
use super::records::DnsBatch;
use super::{PassResult, Reconciler};

impl Reconciler {
    pub(super) async fn consumer_pass(&self) -> Result<PassResult, CloudError> {
        let mut result = PassResult::default();
        self.memory().change_status.clear();
        let owned = self
            .cloud
            .describe_endpoints(&self.cfg.vpc_id, &self.own.mine())
            .await?;
        // A binding has one endpoint, and more while its service moves to another endpoint
        // service: the old one serves until the new one can.
        let mut by_owner: BTreeMap<String, Vec<Endpoint>> = BTreeMap::new();
        for e in owned {
            if let Some(owner) = e.tags.get(OWNER_TAG).cloned() {
                by_owner.entry(owner).or_default().push(e);
            }
        }
        let bindings = self.view.bindings_of(&self.cfg.vpc_id);
        // What was pending for a binding that is gone, or its move, is nobody's any more.
        {
            let wanted = |key: &String| {
                bindings
                    .iter()
                    .any(|b| &pld_core::catalog::binding_key(&b.service, &b.consumer_vpc_id) == key)
            };
            let mut memory = self.memory();
            memory.pending.retain(|key, _| wanted(key));
            memory.moving_since.retain(|key, _| wanted(key));
        }
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
        self.memory().zone_names_not_ours = DnsBatch::names_not_ours(&records, &self.own);
        let mut dns = DnsBatch::with_ttl(self.cfg.dns.ttl_seconds);
        // The owners of this VPC's bindings: their names stay published.
        let mut live: Vec<Owner> = Vec::with_capacity(bindings.len());
        for b in &bindings {
            let key = pld_core::catalog::binding_key(&b.service, &b.consumer_vpc_id);
            let owner = self.own.binding(&key);
            let endpoints = by_owner.remove(&owner.to_string()).unwrap_or_default();
            let r = self
                .reconcile_binding(b, &key, &owner, endpoints, &records, &mut dns)
                .await;
            if let Err(e) = &r {
                if !e.is_retryable() {
                    let why = e.to_string();
                    self.report_binding(b, Phase::Failed, None, String::new(), why, None)
                        .await;
                }
            }
            result.absorb(r);
            live.push(owner);
        }
        // Endpoints whose binding is gone: unpublish, then delete — only of the kinds pld
        // manages; anything else carrying our tags is someone else's doing, left alone.
        for (tag, endpoint) in by_owner
            .into_iter()
            .flat_map(|(tag, eps)| eps.into_iter().map(move |e| (tag.clone(), e)))
        {
            let delete = match plan_orphan(&endpoint) {
                Ok(delete) => delete,
                Err(why) => {
                    warn!(id = %endpoint.id, "{why}");
                    continue;
                }
            };
            match tag.parse::<Owner>() {
                Ok(owner) => dns.remove(&self.record_name(owner.service()), &records, &owner),
                // Tagged as ours but with an owner pld never writes: no name to take down.
                Err(e) => {
                    warn!(id = %endpoint.id, error = %e, "endpoint has a malformed owner tag")
                }
            }
            // Each orphan is a plan of its own: one that fails does not keep the others.
            if let Some((_, e)) = self.execute(std::slice::from_ref(&delete)).await.failed {
                result.absorb(Err(e));
            }
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
        fqdn(&format!("{service}.{}", self.zone_name))
    }

    /// Asks AWS for the facts the endpoint planner needs (only those), then plans. An error
    /// worth retrying ends the binding's turn; any other becomes an unknown fact, which the
    /// planner turns into the binding's failure message.
    async fn plan_endpoint(
        &self,
        want: &Want<'_>,
        seen: &mut Observed,
    ) -> Result<EndpointPlan, CloudError> {
        fn observed<T>(r: Result<T, CloudError>) -> Result<Seen<T>, CloudError> {
            match r {
                Ok(t) => Ok(Seen::Known(t)),
                Err(e) if e.is_retryable() => Err(e),
                Err(e) => Ok(Seen::Unknown(e.to_string())),
            }
        }
        while let Some(fact) = next_fact(want, seen) {
            match fact {
                Fact::ServiceDetail(name) => {
                    seen.detail = Some(observed(self.cloud.describe_service(&name).await)?);
                }
                Fact::Subnets => {
                    let vpc = &self.cfg.vpc_id;
                    seen.subnets = Some(observed(self.cloud.describe_subnets(vpc).await)?);
                }
                Fact::RouteTables => {
                    let vpc = &self.cfg.vpc_id;
                    seen.route_tables =
                        Some(observed(self.cloud.describe_route_tables(vpc).await)?);
                }
            }
        }
        Ok(plan_endpoint(want, seen))
    }

    async fn reconcile_binding(
        &self,
        b: &Binding,
        key: &str,
        owner: &Owner,
        endpoints: Vec<Endpoint>,
        records: &[RecordSet],
        dns: &mut DnsBatch,
    ) -> Result<bool, CloudError> {
        let service = self.view.service(&b.service);
        let target = keep_while_waiting(target(b, service.as_ref(), &self.cfg.region), &endpoints);
        let tags = self.own.tags(owner);
        let unlisted = unlisted(service.as_ref(), &self.cfg.account_id);
        let access = match &unlisted {
            Some(why) => Access::Unlisted {
                account: &self.cfg.account_id,
                why,
            },
            None => Access::Listed,
        };
        let want = Want {
            service: &b.service,
            target: &target,
            vpc_id: &self.cfg.vpc_id,
            region: &self.cfg.region,
            configured_subnets: &self.cfg.subnet_ids,
            security_group_ids: &self.cfg.security_group_ids,
            owner,
            tags: &tags,
            generation: generation(b.meta.as_ref()),
            access,
        };
        let name = self.record_name(&b.service);
        let (endpoint, previous) = split(endpoints, &target);
        // What the name holds matters only to a move (which old endpoint serves, whether the
        // flip is made): not read for every binding on every pass.
        let published = if previous.is_empty() {
            Vec::new()
        } else {
            DnsBatch::published(&name, records, owner)
        };
        let mut seen = Observed {
            endpoint,
            previous,
            published,
            ..Observed::default()
        };
        seen.flip = self.flip(key, &seen);
        let mut plan = self.plan_endpoint(&want, &mut seen).await?;
        if plan.unpublish {
            dns.remove(&name, records, owner);
        }
        // The writes, then what they return: a new endpoint is followed from the state it was
        // created in (its own writes wait for the next pass); one AWS answered deleted (the
        // create's token was spent on an endpoint taken down since) has the planner try the
        // next token, up to its limit.
        while !plan.writes.is_empty() {
            let done = self.execute(&plan.writes).await;
            if let Some((write, e)) = done.failed {
                // The binding says what failed and what is left to make; an error worth
                // retrying also retries soon.
                self.memory().pending.insert(key.to_string(), done.unmade);
                if let Outcome::Migrate(m) = &plan.outcome {
                    // The move stalls, but the endpoint the name points at still serves: the
                    // binding stays migrating, answered, with the error as its message.
                    let (serving, moving) = migration(&seen, m);
                    if let Some(serving) = serving {
                        let name = self.record_name(&b.service);
                        let why = e.to_string();
                        self.report_binding(
                            b,
                            Phase::Migrating,
                            Some(&serving),
                            name,
                            why,
                            Some(moving),
                        )
                        .await;
                        return if e.is_retryable() { Err(e) } else { Ok(false) };
                    }
                }
                let ep = match write.call {
                    Call::ModifyEndpointSubnets { .. } => seen.endpoint.as_ref(),
                    _ => None,
                };
                self.report_binding(b, Phase::Failed, ep, String::new(), e.to_string(), None)
                    .await;
                return if e.is_retryable() { Err(e) } else { Ok(false) };
            }
            let Some(created) = done.created else { break };
            if state_is(&created.state, "deleted") {
                seen.spent_tokens += 1;
                seen.endpoint = None;
            } else {
                seen.endpoint = Some(created);
            }
            plan = self.plan_endpoint(&want, &mut seen).await?;
            if seen.endpoint.is_some() {
                break;
            }
        }
        let (ep, migration) = match plan.outcome {
            Outcome::Report {
                phase,
                message,
                with_endpoint,
                requeue,
            } => {
                // Every write of this plan was made: the rest is AWS's or the provider's turn.
                self.memory().pending.remove(key);
                let ep = seen.endpoint.as_ref().filter(|_| with_endpoint);
                self.report_binding(b, phase, ep, String::new(), message, None)
                    .await;
                return Ok(requeue);
            }
            // A write under way changes what is observed: look again soon.
            Outcome::Applying => return Ok(true),
            Outcome::Publish => match seen.endpoint {
                Some(ep) => (ep, None),
                None => return Ok(true),
            },
            Outcome::Migrate(m) => {
                let (serving, report) = migration(&seen, &m);
                let Some(serving) = serving else {
                    return Ok(true);
                };
                if let Flip::Draining { remaining } = seen.flip {
                    // Nothing to do until the drain ends: look again exactly then.
                    let at = Instant::now() + remaining;
                    let mut memory = self.memory();
                    memory.wake_at = Some(memory.wake_at.map_or(at, |w| w.min(at)));
                }
                let confirm = m.serving == Serving::Next;
                (serving, Some((report, m.message, confirm)))
            }
        };
        self.publish(b, key, owner, &ep, records, dns, migration)
            .await
    }

    /// Where the flip of a moving binding's name to its new endpoint stands.
    fn flip(&self, key: &str, seen: &Observed) -> Flip {
        let Some(next) = seen.endpoint.as_ref().filter(|_| !seen.previous.is_empty()) else {
            return Flip::Unconfirmed;
        };
        let in_sync_for = self.memory().in_sync.get(key).map(|t| t.elapsed());
        // The agent's own DNS responder answers with at most this TTL too.
        let ttl = self.cfg.dns.ttl_seconds;
        flip(
            &seen.published,
            next,
            in_sync_for,
            Duration::from_secs(ttl.into()),
        )
    }

    /// Points the binding's name at `ep` (once it is available), then reports the binding
    /// ready once Route 53 has the change in sync. A moving binding (`migration`: its move,
    /// why it waits, and whether the name is to point at the new endpoint) reports
    /// `migrating` throughout; a flip this process has not seen in sync is written again to
    /// have a change to wait on.
    #[allow(clippy::too_many_arguments)]
    async fn publish(
        &self,
        b: &Binding,
        key: &str,
        owner: &Owner,
        ep: &Endpoint,
        records: &[RecordSet],
        dns: &mut DnsBatch,
        migration: Option<(BindingMigration, String, bool)>,
    ) -> Result<bool, CloudError> {
        let name = self.record_name(&b.service);
        let (moving, message, confirm) = match migration {
            Some((m, message, confirm)) => (Some(m), message, confirm),
            None => (None, String::new(), false),
        };
        let settled = if moving.is_some() {
            Phase::Migrating
        } else {
            Phase::Ready
        };
        let in_progress = if moving.is_some() {
            Phase::Migrating
        } else {
            Phase::Publishing
        };
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
                    memory.in_sync.insert(key.to_string(), Instant::now());
                }
                ChangeStatus::Pending => {
                    self.report_binding(b, in_progress, Some(ep), name, message, moving)
                        .await;
                    return Ok(true);
                }
            }
        }
        if self.memory().zone_id.is_none() {
            self.ensure_zone(key, generation(b.meta.as_ref())).await?;
            // The records of a new zone are listed on the next pass.
            return Ok(true);
        }
        // The catalog says a change was submitted, but this process never saw it in sync (it
        // restarted while the change was in flight): records already in place may not have
        // reached Route 53's servers yet. Submitting them again (an idempotent UPSERT) gives a
        // change id to wait on before calling the binding ready, or starting a move's drain.
        let unconfirmed = !self.memory().in_sync.contains_key(key)
            && (confirm
                || b.status
                    .as_ref()
                    .is_some_and(|s| Phase::of(&s.phase) == Some(Phase::Publishing)));
        match dns.upsert(&name, &ep.addresses, records, owner, unconfirmed) {
            Err(conflict) => {
                self.report_binding(b, Phase::Failed, Some(ep), String::new(), conflict, None)
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
                self.report_binding(b, in_progress, Some(ep), name, message, moving)
                    .await;
                Ok(true)
            }
            Ok(false) => {
                // A move goes on by itself (its drain ends, its old endpoint goes): soon, or
                // when it is due (`wake_at`), while draining.
                let requeue = moving
                    .as_ref()
                    .is_some_and(|m| m.step != MoveStep::Draining.as_str());
                self.report_binding(b, settled, Some(ep), name, message, moving)
                    .await;
                Ok(requeue)
            }
        }
    }
}

/// The endpoint a moving binding's name is to point at, and the move as its status reports it.
fn migration(seen: &Observed, m: &Migration) -> (Option<Endpoint>, BindingMigration) {
    let serving = match m.serving {
        Serving::Previous(i) => seen.previous.get(i).cloned(),
        Serving::Next => seen.endpoint.clone(),
    };
    let report = BindingMigration {
        from_endpoint_id: seen
            .previous
            .get(m.from)
            .map(|e| e.id.clone())
            .unwrap_or_default(),
        to_endpoint_id: seen
            .endpoint
            .as_ref()
            .map(|e| e.id.clone())
            .unwrap_or_default(),
        step: m.step.to_string(),
    };
    (serving, report)
}

/// A binding's endpoints (found by its ownership tag): the one to its target service, and the
/// others (those to endpoint services its service moved off). A binding that cannot connect
/// anywhere keeps the first as its own, so it is taken down with the rest.
fn split(mut endpoints: Vec<Endpoint>, target: &Target) -> (Option<Endpoint>, Vec<Endpoint>) {
    let at = match target {
        Target::Service { name, .. } => endpoints.iter().position(|e| &e.service_name == name),
        _ => (!endpoints.is_empty()).then_some(0),
    };
    let endpoint = at.map(|i| endpoints.remove(i));
    (endpoint, endpoints)
}
