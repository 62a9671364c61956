//! The provider's fronts: for a service on an application load balancer, the network load
//! balancer pld builds in front of it ([`pld_core::plan::front`]) before the endpoint service
//! goes on that NLB. One round of writes per pass (a listener needs the ARNs of the NLB and
//! group made the round before); the pass after observes again. Fronts no service wants any
//! more are taken down once no endpoint service is on them. Only what carries this agent's
//! tags is read as pld's, and only that is ever changed; the ALB never is.
//!
//! ELBv2's describes have a bucket of their own (40, 10/s) and no tag filter, so what a pass
//! learnt is kept: a resource's owner tag, and a front found built with the ALB's facts, are
//! looked at again only once the resync interval has passed ([`CheckedFront`]). A front being
//! built is looked at in full every pass.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use pld_cloud::{
    has_tags, state_is, CloudError, EndpointService, Listener, LoadBalancer, LoadBalancerKind,
    TargetGroup, TargetHealth, TargetType, OWNER_TAG,
};
use pld_core::plan::front::{
    foreign_account, front_names, may_be_pld_built, needs_creating, plan_front, plan_teardown,
    same_load_balancer, Front, FrontBuilt, FrontSeen, FrontWant, HealthWanted,
};
use pld_core::plan::{Reason, Seen};
use pld_proto::v1::{AlbFront, AlbFrontPort, Service};
use tracing::warn;

use super::ownership::Owner;
use super::Reconciler;

/// DescribeTags takes at most this many ARNs.
const TAGS_PER_CALL: usize = 20;

/// What this agent built in front of ALBs, as one pass observed it.
#[derive(Debug, Default)]
pub(super) struct Fronts {
    /// By front name (its NLB's name): the owner its tags name, and what is built.
    built: BTreeMap<String, (String, FrontBuilt)>,
    /// The health of the targets of each of pld's groups.
    health: BTreeMap<String, Vec<TargetHealth>>,
    /// Every target group of the account: which NLBs reach an ALB.
    all_groups: Vec<TargetGroup>,
}

impl Fronts {
    /// Whether anything pld built in front of an ALB exists.
    pub(super) fn is_empty(&self) -> bool {
        self.built.is_empty()
    }
}

/// A front last found built, and when: its listeners, its groups' targets and the ALB's facts,
/// reused until the resync interval has passed.
#[derive(Debug, Clone)]
pub(super) struct CheckedFront {
    at: Instant,
    load_balancer_arn: String,
    listeners: Vec<(Listener, bool)>,
    health: BTreeMap<String, Vec<TargetHealth>>,
    alb: LoadBalancer,
    alb_listeners: Vec<Listener>,
}

/// Where a service's front stands after this pass's round.
pub(super) enum FrontOutcome {
    /// Built: the endpoint service goes on this NLB.
    Ready { load_balancer_arn: String },
    /// Writes were made or AWS is still working: look again soon.
    Building(String),
    /// Refused: the message says what is wrong and what to do.
    Refused(String),
}

/// Whether `service` is offered through an ALB.
pub(super) fn on_alb(service: &Service) -> bool {
    service.load_balancer_arn.contains(":loadbalancer/app/")
}

impl Reconciler {
    /// The ELBv2 tags of `arns`, in calls of at most 20.
    async fn elb_tags(
        &self,
        arns: Vec<String>,
    ) -> Result<BTreeMap<String, pld_cloud::Tags>, CloudError> {
        let mut tags = BTreeMap::new();
        for chunk in arns.chunks(TAGS_PER_CALL) {
            tags.extend(self.cloud.describe_elb_tags(chunk).await?);
        }
        Ok(tags)
    }

    /// Observes every front this agent built: its NLBs and target groups (by name, then by
    /// tags: ELBv2 has no tag filter), their listeners and the health of their targets.
    pub(super) async fn observe_fronts(&self) -> Result<Fronts, CloudError> {
        let mine = self.own.mine();
        let lbs: Vec<_> = self
            .cloud
            .describe_load_balancers()
            .await?
            .into_iter()
            .filter(|l| l.kind == LoadBalancerKind::Network && may_be_pld_built(&l.name))
            .collect();
        let all_groups = self.cloud.describe_target_groups(None).await?;
        let candidates: Vec<String> = lbs
            .iter()
            .map(|l| l.arn.clone())
            .chain(
                all_groups
                    .iter()
                    .filter(|g| may_be_pld_built(&g.name))
                    .map(|g| g.arn.clone()),
            )
            .collect();
        // Owners by ARN: a resource's tags are read once per resync interval.
        let resync = self.cfg.resync();
        let (mut owners, unknown): (BTreeMap<String, Option<String>>, Vec<String>) = {
            let mut memory = self.memory();
            memory.elb_owners.retain(|_, (at, _)| at.elapsed() < resync);
            let mut owners = BTreeMap::new();
            let mut unknown = Vec::new();
            for arn in candidates {
                match memory.elb_owners.get(&arn) {
                    Some((_, owner)) => {
                        owners.insert(arn, owner.clone());
                    }
                    None => unknown.push(arn),
                }
            }
            (owners, unknown)
        };
        let tags = self.elb_tags(unknown).await?;
        {
            let now = Instant::now();
            let mut memory = self.memory();
            for (arn, t) in tags {
                let owner = Some(&t)
                    .filter(|t| has_tags(t, &mine))
                    .and_then(|t| t.get(OWNER_TAG).cloned());
                memory.elb_owners.insert(arn.clone(), (now, owner.clone()));
                owners.insert(arn, owner);
            }
        }
        let owner_of = |arn: &str| owners.get(arn).cloned().flatten();
        let checked: BTreeMap<String, CheckedFront> = self
            .memory()
            .checked_fronts
            .iter()
            .filter(|(_, c)| c.at.elapsed() < resync)
            .map(|(name, c)| (name.clone(), c.clone()))
            .collect();
        let mut fronts = Fronts::default();
        for lb in lbs {
            let Some(owner) = owner_of(&lb.arn) else {
                continue;
            };
            let cached = checked
                .get(&lb.name)
                .filter(|c| c.load_balancer_arn == lb.arn);
            let listeners = match cached {
                Some(c) => c.listeners.clone(),
                None => {
                    let listeners = self.cloud.describe_listeners(&lb.arn).await?;
                    let listener_tags = self
                        .elb_tags(listeners.iter().map(|l| l.arn.clone()).collect())
                        .await?;
                    listeners
                        .into_iter()
                        .map(|l| {
                            let ours = listener_tags
                                .get(&l.arn)
                                .is_some_and(|t| has_tags(t, &mine));
                            (l, ours)
                        })
                        .collect()
                }
            };
            let built = &mut fronts.built.entry(lb.name.clone()).or_default();
            built.0 = owner;
            built.1.listeners = listeners;
            built.1.load_balancer = Some(lb);
        }
        for group in &all_groups {
            let Some(owner) = owner_of(&group.arn) else {
                continue;
            };
            // `NLBNAME-PORT`: the group belongs to the front of that NLB name.
            let Some((front, _)) = group.name.rsplit_once('-') else {
                continue;
            };
            let cached = checked
                .get(front)
                .and_then(|c| c.health.get(&group.arn))
                .cloned();
            let health = match cached {
                Some(health) => health,
                None => self.cloud.describe_target_health(&group.arn).await?,
            };
            let built = fronts.built.entry(front.to_string()).or_default();
            built.0 = owner;
            built.1.registered.insert(
                group.arn.clone(),
                health.iter().map(|h| h.target_id.clone()).collect(),
            );
            built.1.groups.push(group.clone());
            fronts.health.insert(group.arn.clone(), health);
        }
        fronts.all_groups = all_groups;
        Ok(fronts)
    }

    /// The network load balancers that reach `alb_arn` through `alb` target groups of its
    /// VPC (pld's known from the observation, others asked for).
    async fn reaching(
        &self,
        alb_arn: &str,
        vpc_id: &str,
        fronts: &Fronts,
    ) -> Result<BTreeSet<String>, CloudError> {
        let mut reaching = BTreeSet::new();
        for group in &fronts.all_groups {
            if group.target_type != TargetType::Alb
                || group.vpc_id != vpc_id
                || group.load_balancer_arns.is_empty()
            {
                continue;
            }
            let targets: Vec<String> = match fronts.health.get(&group.arn) {
                Some(h) => h.iter().map(|t| t.target_id.clone()).collect(),
                None => self
                    .cloud
                    .describe_target_health(&group.arn)
                    .await?
                    .into_iter()
                    .map(|t| t.target_id)
                    .collect(),
            };
            if targets.iter().any(|t| t == alb_arn) {
                reaching.extend(group.load_balancer_arns.iter().cloned());
            }
        }
        Ok(reaching)
    }

    /// Plans and makes one round of `service`'s front, taking it out of `fronts` (what is
    /// left there is no service's), and keeps its status for the service's report.
    pub(super) async fn front_round(
        &self,
        service: &Service,
        owner: &Owner,
        fronts: &mut Fronts,
    ) -> Result<FrontOutcome, CloudError> {
        let alb_arn = service.load_balancer_arn.as_str();
        let names = front_names(owner, alb_arn);
        let built = fronts
            .built
            .remove(&names.load_balancer)
            .map(|(_, b)| b)
            .unwrap_or_default();
        let tags = self.own.tags(owner);
        let health = HealthWanted::from_proto(service.health_check.as_deref());
        let ports: Vec<u16> = service
            .ports
            .iter()
            .filter_map(|p| u16::try_from(*p).ok())
            .collect();
        let want = FrontWant {
            owner,
            tags: &tags,
            account: &self.cfg.account_id,
            vpc_id: &service.vpc_id,
            alb_arn,
            ports: &ports,
            health: &health,
        };
        if let Some(why) = foreign_account(&want) {
            return Ok(FrontOutcome::Refused(why));
        }
        let checked = self
            .memory()
            .checked_fronts
            .get(&names.load_balancer)
            .filter(|c| c.at.elapsed() < self.cfg.resync())
            .cloned();
        let (alb, alb_listeners) = match &checked {
            Some(c) => (c.alb.clone(), c.alb_listeners.clone()),
            None => {
                let alb = match self.cloud.describe_load_balancer(alb_arn).await {
                    Ok(alb) => alb,
                    Err(e) if e.is_not_found() => {
                        return Ok(FrontOutcome::Refused(format!(
                            "the application load balancer {alb_arn} does not exist in account \
                             {} (region {})",
                            self.cfg.account_id,
                            self.cloud.region()
                        )))
                    }
                    Err(e) => return Err(e),
                };
                let listeners = self.cloud.describe_listeners(alb_arn).await?;
                (alb, listeners)
            }
        };
        let reaching = if needs_creating(&want, &built) && alb.vpc_id == service.vpc_id {
            Seen::Known(self.reaching(alb_arn, &alb.vpc_id, fronts).await?)
        } else {
            Seen::Unknown("nothing to create".into())
        };
        let seen = FrontSeen {
            alb: &alb,
            alb_listeners: &alb_listeners,
            built: &built,
            reaching: &reaching,
        };
        let outcome = match plan_front(&want, &seen) {
            Front::Build(writes) => {
                self.make(service, &writes).await?;
                FrontOutcome::Building(
                    "building the network load balancer in front of the application load \
                     balancer"
                        .into(),
                )
            }
            Front::Waiting(why) => FrontOutcome::Building(why),
            Front::Ready { load_balancer_arn } => FrontOutcome::Ready { load_balancer_arn },
            Front::Refused(why) => FrontOutcome::Refused(why),
        };
        let ready = matches!(outcome, FrontOutcome::Ready { .. });
        if ready && checked.is_some() {
            // Built and looked at in full within the resync interval: the status stands.
            return Ok(outcome);
        }
        let status = self
            .front_status(&built, fronts, &alb_listeners, ready)
            .await?;
        let mut memory = self.memory();
        match status {
            Some(status) => memory.alb_fronts.insert(service.name.clone(), status),
            None => memory.alb_fronts.remove(&service.name),
        };
        match (ready, &built.load_balancer) {
            (true, Some(nlb)) => {
                let health = built
                    .groups
                    .iter()
                    .filter_map(|g| Some((g.arn.clone(), fronts.health.get(&g.arn)?.clone())))
                    .collect();
                memory.checked_fronts.insert(
                    names.load_balancer.clone(),
                    CheckedFront {
                        at: Instant::now(),
                        load_balancer_arn: nlb.arn.clone(),
                        listeners: built.listeners.clone(),
                        health,
                        alb,
                        alb_listeners,
                    },
                );
            }
            _ => {
                memory.checked_fronts.remove(&names.load_balancer);
            }
        }
        Ok(outcome)
    }

    /// What the service's status says of its front: the NLB, each port's listener and group,
    /// the ALB's health in it, and once built the ALB's own targets behind each port.
    async fn front_status(
        &self,
        built: &FrontBuilt,
        fronts: &Fronts,
        alb_listeners: &[pld_cloud::Listener],
        ready: bool,
    ) -> Result<Option<AlbFront>, CloudError> {
        let Some(nlb) = &built.load_balancer else {
            return Ok(None);
        };
        let mut ports = Vec::new();
        for (listener, _) in &built.listeners {
            let group = listener.target_group_arn.clone().unwrap_or_default();
            let alb = fronts.health.get(&group).and_then(|h| h.first()).cloned();
            let (mut healthy, mut total) = (0, 0);
            let behind = alb_listeners
                .iter()
                .find(|l| l.port == listener.port)
                .and_then(|l| l.target_group_arn.clone());
            if let (true, Some(behind)) = (ready, behind) {
                match self.cloud.describe_target_health(&behind).await {
                    Ok(targets) => {
                        total = targets.len();
                        healthy = targets
                            .iter()
                            .filter(|t| state_is(&t.state, "healthy"))
                            .count();
                    }
                    // The ALB's own groups are the team's: not being able to read one is
                    // said in the log, not a failure of the service.
                    Err(e) if !e.is_retryable() => {
                        warn!(group = %behind, error = %e, "the ALB's own target health is not readable")
                    }
                    Err(e) => return Err(e),
                }
            }
            ports.push(AlbFrontPort {
                port: u32::from(listener.port),
                listener_arn: listener.arn.clone(),
                target_group_arn: group,
                alb_health: alb.as_ref().map(|h| h.state.clone()).unwrap_or_default(),
                alb_health_reason: alb.map(|h| h.reason).unwrap_or_default(),
                alb_targets_healthy: u32::try_from(healthy).unwrap_or(u32::MAX),
                alb_targets: u32::try_from(total).unwrap_or(u32::MAX),
            });
        }
        ports.sort_by_key(|p| p.port);
        Ok(Some(AlbFront {
            load_balancer_arn: nlb.arn.clone(),
            state: nlb.state.to_ascii_lowercase(),
            ports,
        }))
    }

    /// Takes down, in reverse order, the fronts no service claimed this pass, each once no
    /// endpoint service of `owned` is on its NLB any more (a service moving off an ALB keeps
    /// its old endpoint service, and so its front, until consumers have left). Returns
    /// whether any is still going away.
    pub(super) async fn retire_fronts(
        &self,
        fronts: Fronts,
        owned: &[EndpointService],
    ) -> Result<bool, CloudError> {
        let mut busy = false;
        for (name, (owner, built)) in fronts.built {
            let carrying = built.load_balancer.as_ref().is_some_and(|nlb| {
                owned.iter().any(|es| {
                    es.load_balancer_arns
                        .iter()
                        .any(|a| same_load_balancer(a, &nlb.arn))
                })
            });
            if carrying {
                busy = true;
                continue;
            }
            self.memory().checked_fronts.remove(&name);
            let writes = plan_teardown(&built, &Reason::Orphan);
            if writes.is_empty() {
                continue;
            }
            let done = self.execute(&writes).await;
            match done.failed {
                None => busy = true,
                Some((step, e)) => {
                    warn!(%name, %owner, step = %step.step(), error = %e,
                        "the network load balancer pld built in front of an ALB is not taken down yet");
                    if e.is_retryable() || matches!(e, CloudError::DependencyViolation(_)) {
                        busy = true;
                    } else {
                        return Err(e);
                    }
                }
            }
        }
        Ok(busy)
    }
}
