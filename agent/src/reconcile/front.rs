//! The provider's fronts: for a service on an application load balancer, the network load
//! balancer pld builds in front of it ([`pld_core::plan::front`]) before the endpoint service
//! goes on that NLB. The writes go in rounds (a listener needs the ARNs of the NLB and group
//! the round before made), each planned from what AWS answered to the one before, all in one
//! pass. Fronts no service wants any more are taken down once no endpoint service is on them. Only what carries this agent's
//! tags is read as pld's, and only that is ever changed; the ALB never is.
//!
//! ELBv2's describes have a bucket of their own (40, 10/s) and no tag filter, and a burst of
//! services waits on its create bucket (10, 2/s) for many passes: re-reading every front each
//! pass would spend the describe bucket faster than the creates can go. So what a pass learns
//! is kept until the resync interval has passed: an ARN's owner tag (tags never change on
//! what pld made), an ALB's facts, and a front's listeners and targets — the last dropped as
//! soon as this agent writes to that front, so the next pass reads what the writes made.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use pld_cloud::{
    has_tags, same_load_balancer, state_is, CloudError, EndpointService, Listener, LoadBalancer,
    LoadBalancerKind, TargetGroup, TargetHealth, TargetType, OWNER_TAG,
};
use pld_core::plan::front::{
    foreign_account, front_names, may_be_pld_built, needs_creating, plan_front, plan_teardown,
    Front, FrontBuilt, FrontSeen, FrontWant, HealthWanted,
};
use pld_core::plan::{Reason, Seen};
use pld_proto::v1::{AlbFront, AlbFrontPort, Service};
use tracing::warn;

use super::ownership::Owner;
use super::Reconciler;

/// DescribeTags takes at most this many ARNs.
const TAGS_PER_CALL: usize = 20;

/// Rounds of one front in one pass: three of writes, a second look at a provisioning NLB, and
/// the plan that finds it built.
const MAX_ROUNDS: usize = 6;

/// What this agent built in front of ALBs, as one pass observed it.
#[derive(Debug, Default)]
pub(super) struct Fronts {
    /// By front name (its NLB's name): the owner its tags name, and what is built.
    built: BTreeMap<String, (String, FrontBuilt)>,
    /// The health of the targets of each of pld's groups.
    health: BTreeMap<String, Vec<TargetHealth>>,
    /// Every target group of the account: which NLBs reach an ALB.
    all_groups: Vec<TargetGroup>,
    /// Why they could not be read, when they could not (no ELBv2 permissions).
    unreadable: Option<CloudError>,
}

impl Fronts {
    /// Fronts that could not be read, and why: none is taken down, none is built.
    pub(super) fn unreadable(e: CloudError) -> Self {
        Fronts {
            unreadable: Some(e),
            ..Fronts::default()
        }
    }

    /// Whether anything pld built in front of an ALB exists.
    pub(super) fn is_empty(&self) -> bool {
        self.built.is_empty()
    }
}

/// What this agent learnt of one of its fronts, and when: kept until the resync interval has
/// passed, or until the agent writes to the front.
#[derive(Debug, Clone)]
pub(super) struct SeenFront {
    at: Instant,
    load_balancer_arn: Option<String>,
    /// The NLB's listeners, with whether each is pld's.
    listeners: Option<Vec<(Listener, bool)>>,
    /// By group ARN.
    health: BTreeMap<String, Vec<TargetHealth>>,
    /// Its status was reported built, with the ALB's own targets.
    reported: bool,
}

impl SeenFront {
    fn new() -> Self {
        SeenFront {
            at: Instant::now(),
            load_balancer_arn: None,
            listeners: None,
            health: BTreeMap::new(),
            reported: false,
        }
    }
}

/// An ALB as last described, and when.
pub(super) type AlbFacts = (Instant, LoadBalancer, Vec<Listener>);

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
    /// The owner tag of each of `arns` when it carries this agent's tags: from what was read
    /// within the resync interval, the rest by DescribeTags in calls of at most 20.
    async fn owners_of(
        &self,
        arns: Vec<String>,
    ) -> Result<BTreeMap<String, Option<String>>, CloudError> {
        let resync = self.cfg.resync();
        let mine = self.own.mine();
        let mut owners = BTreeMap::new();
        let mut unknown = Vec::new();
        {
            let mut memory = self.memory();
            memory.elb_owners.retain(|_, (at, _)| at.elapsed() < resync);
            for arn in arns {
                match memory.elb_owners.get(&arn) {
                    Some((_, owner)) => {
                        owners.insert(arn, owner.clone());
                    }
                    None => unknown.push(arn),
                }
            }
        }
        for chunk in unknown.chunks(TAGS_PER_CALL) {
            let tags = self.cloud.describe_elb_tags(chunk).await?;
            let now = Instant::now();
            let mut memory = self.memory();
            for arn in chunk {
                let owner = tags
                    .get(arn)
                    .filter(|t| has_tags(t, &mine))
                    .and_then(|t| t.get(OWNER_TAG).cloned());
                memory.elb_owners.insert(arn.clone(), (now, owner.clone()));
                owners.insert(arn.clone(), owner);
            }
        }
        Ok(owners)
    }

    /// Observes every front this agent built: its NLBs and target groups (by name, then by
    /// tags), their listeners and the health of their targets — the last two as kept from
    /// earlier passes where still fresh ([`SeenFront`]).
    pub(super) async fn observe_fronts(&self) -> Result<Fronts, CloudError> {
        let resync = self.cfg.resync();
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
        let owners = self.owners_of(candidates).await?;
        let owner_of = |arn: &str| owners.get(arn).cloned().flatten();
        let mut seen: BTreeMap<String, SeenFront> = {
            let mut memory = self.memory();
            memory.seen_fronts.retain(|_, f| f.at.elapsed() < resync);
            memory.seen_fronts.clone().into_iter().collect()
        };
        let mut fronts = Fronts::default();
        // Listeners: those seen, and the rest described, their owners read in one batch.
        let mut described = Vec::new();
        for lb in lbs {
            let Some(owner) = owner_of(&lb.arn) else {
                continue;
            };
            let entry = seen.entry(lb.name.clone()).or_insert_with(SeenFront::new);
            if entry.load_balancer_arn.as_deref() != Some(lb.arn.as_str()) {
                *entry = SeenFront::new();
                entry.load_balancer_arn = Some(lb.arn.clone());
            }
            if entry.listeners.is_none() {
                described.push((
                    lb.name.clone(),
                    self.cloud.describe_listeners(&lb.arn).await?,
                ));
            }
            let built = &mut fronts.built.entry(lb.name.clone()).or_default();
            built.0 = owner;
            built.1.load_balancer = Some(lb);
        }
        let listener_arns = described
            .iter()
            .flat_map(|(_, ls)| ls.iter().map(|l| l.arn.clone()))
            .collect();
        let listener_owners = self.owners_of(listener_arns).await?;
        for (name, listeners) in described {
            let listeners = listeners
                .into_iter()
                .map(|l| {
                    let ours = listener_owners.get(&l.arn).is_some_and(Option::is_some);
                    (l, ours)
                })
                .collect();
            if let Some(entry) = seen.get_mut(&name) {
                entry.listeners = Some(listeners);
            }
        }
        for (name, (_, built)) in fronts.built.iter_mut() {
            built.listeners = seen
                .get(name)
                .and_then(|f| f.listeners.clone())
                .unwrap_or_default();
        }
        for group in &all_groups {
            let Some(owner) = owner_of(&group.arn) else {
                continue;
            };
            // `NLBNAME-PORT`: the group belongs to the front of that NLB name.
            let Some((front, _)) = group.name.rsplit_once('-') else {
                continue;
            };
            let entry = seen.entry(front.to_string()).or_insert_with(SeenFront::new);
            let health = match entry.health.get(&group.arn) {
                Some(health) => health.clone(),
                None => {
                    let health = self.cloud.describe_target_health(&group.arn).await?;
                    entry.health.insert(group.arn.clone(), health.clone());
                    health
                }
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
        // Only what exists stays known.
        seen.retain(|name, _| fronts.built.contains_key(name));
        self.memory().seen_fronts = seen.into_iter().collect();
        fronts.all_groups = all_groups;
        Ok(fronts)
    }

    /// The ALB and its listeners, as described within the resync interval or now.
    async fn alb_facts(
        &self,
        alb_arn: &str,
    ) -> Result<Option<(LoadBalancer, Vec<Listener>)>, CloudError> {
        let fresh = self
            .memory()
            .alb_facts
            .get(alb_arn)
            .filter(|(at, _, _)| at.elapsed() < self.cfg.resync())
            .map(|(_, alb, listeners)| (alb.clone(), listeners.clone()));
        if let Some(facts) = fresh {
            return Ok(Some(facts));
        }
        let alb = match self.cloud.describe_load_balancer(alb_arn).await {
            Ok(alb) => alb,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let listeners = self.cloud.describe_listeners(alb_arn).await?;
        self.memory().alb_facts.insert(
            alb_arn.to_string(),
            (Instant::now(), alb.clone(), listeners.clone()),
        );
        Ok(Some((alb, listeners)))
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

    /// Plans and makes the rounds of `service`'s front until it is built, waits on AWS or is
    /// refused, taking it out of `fronts` (what is left there is no service's), and keeps its
    /// status for the service's report.
    pub(super) async fn front_round(
        &self,
        service: &Service,
        owner: &Owner,
        fronts: &mut Fronts,
    ) -> Result<FrontOutcome, CloudError> {
        let alb_arn = service.load_balancer_arn.as_str();
        if let Some(e) = &fronts.unreadable {
            return Ok(FrontOutcome::Refused(format!(
                "the load balancers pld builds in front of ALBs cannot be read ({e}): a service \
                 on an ALB needs the ELBv2 statements of deploy/iam/pld-agent-provider.json"
            )));
        }
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
        let Some((alb, alb_listeners)) = self.alb_facts(alb_arn).await? else {
            return Ok(FrontOutcome::Refused(format!(
                "the application load balancer {alb_arn} does not exist in account {} (region \
                 {})",
                self.cfg.account_id,
                self.cloud.region()
            )));
        };
        // Round after round, each planned from what the one before made as AWS answered it,
        // so one service's front is built (and its endpoint service made) before the next
        // service's: under the ELBv2 create bucket, services become available one by one
        // rather than all at the end.
        let mut built = built;
        let mut reaching: Option<BTreeSet<String>> = None;
        let mut looked_again = false;
        let mut outcome = FrontOutcome::Building(String::new());
        for _ in 0..MAX_ROUNDS {
            let known = if needs_creating(&want, &built) && alb.vpc_id == service.vpc_id {
                if reaching.is_none() {
                    reaching = Some(self.reaching(alb_arn, &alb.vpc_id, fronts).await?);
                }
                Seen::Known(reaching.clone().unwrap_or_default())
            } else {
                Seen::Unknown("nothing to create".into())
            };
            let seen = FrontSeen {
                alb: &alb,
                alb_listeners: &alb_listeners,
                built: &built,
                reaching: &known,
            };
            match plan_front(&want, &seen) {
                Front::Build(writes) => {
                    // What the writes make is read again by the next pass that needs it.
                    self.memory().seen_fronts.remove(&names.load_balancer);
                    let done = self.make(service, &writes).await?;
                    for made in done.front_made {
                        built.record(made);
                    }
                    outcome = FrontOutcome::Building(
                        "building the network load balancer in front of the application load \
                         balancer"
                            .into(),
                    );
                }
                Front::Waiting(why) => {
                    // A new NLB provisions: looked at once more before the next pass.
                    let provisioning = built
                        .load_balancer
                        .as_ref()
                        .filter(|l| state_is(&l.state, "provisioning"))
                        .map(|l| l.arn.clone());
                    match provisioning {
                        Some(arn) if !looked_again => {
                            looked_again = true;
                            built.load_balancer =
                                Some(self.cloud.describe_load_balancer(&arn).await?);
                        }
                        _ => {
                            outcome = FrontOutcome::Building(why);
                            break;
                        }
                    }
                }
                Front::Ready { load_balancer_arn } => {
                    outcome = FrontOutcome::Ready { load_balancer_arn };
                    break;
                }
                Front::Refused(why) => {
                    // A refusal is looked at again with the ALB as it is then.
                    self.memory().alb_facts.remove(alb_arn);
                    outcome = FrontOutcome::Refused(why);
                    break;
                }
            }
        }
        let ready = matches!(outcome, FrontOutcome::Ready { .. });
        let reported = self
            .memory()
            .seen_fronts
            .get(&names.load_balancer)
            .is_some_and(|f| f.reported);
        if ready && reported {
            // Reported built, with the ALB's targets, within the resync interval.
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
        if let (true, Some(front)) = (ready, memory.seen_fronts.get_mut(&names.load_balancer)) {
            front.reported = true;
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
            self.memory().seen_fronts.remove(&name);
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
