//! The front a register plan shows for a service on an application load balancer: the provider
//! agent's own [`front::plan_front`], round after round, on the ALB and listeners its agent
//! reported ([`crate::facts::load_balancers`]) with nothing built yet, each round's creates taken
//! as made (as the agent observes them before its next round), until the front is ready for
//! the endpoint service — or the planner's refusal (a port the ALB does not listen on, an ALB
//! already reached by two NLBs, one in another VPC).

use std::collections::BTreeSet;

use pld_proto::v1::{Agent, Service};

use super::{Preview, ProblemKind, Severity};
use crate::aws::types::{Listener, LoadBalancer, Tags, TargetGroup};
use crate::aws::Call;
use crate::facts::load_balancers;
use crate::plan::front::{self, Front, FrontBuilt, FrontSeen, FrontWant, HealthWanted, Made};
use crate::plan::ownership::Owner;
use crate::plan::{Planned, Seen, Step};

/// Rounds the agent takes from nothing to a built front: the NLB and groups, then the
/// registrations and listeners, then ready. One more is a planner that does not settle.
const ROUNDS: usize = 4;

/// What a register plan knows of the front: the steps, and the NLB the endpoint service goes
/// on; `None` when the front is refused or cannot be planned (the problem says why).
pub(super) struct FrontPlan {
    pub steps: Vec<Step>,
    pub load_balancer_arn: String,
}

/// Plans `service`'s front on its ALB in `provider`'s VPC.
pub(super) fn plan(
    preview: &mut Preview,
    provider: &Agent,
    service: &Service,
    owner: &Owner,
    tags: &Tags,
) -> Option<FrontPlan> {
    let account = provider.account_id.as_str();
    let facts = provider.facts.as_ref();
    let reported = facts.and_then(|f| {
        f.load_balancers
            .iter()
            .find(|lb| lb.arn == service.load_balancer_arn)
    });
    let Some(reported) = reported else {
        let (severity, why) = match facts {
            None => (
                Severity::Warning,
                "its agent has not reported its VPC's facts yet".to_string(),
            ),
            Some(f) if !f.load_balancers_note.is_empty() => {
                (Severity::Warning, f.load_balancers_note.clone())
            }
            Some(_) => (
                Severity::Error,
                "it is not among the load balancers its agent last read in the VPC (one made \
                 since is read on the agent's next resync)"
                    .to_string(),
            ),
        };
        preview.problem(
            severity,
            if severity == Severity::Error {
                ProblemKind::Refused
            } else {
                ProblemKind::NoChange
            },
            account,
            format!(
                "the application load balancer {} of {}: {why}; the plan cannot show the \
                 network load balancer its agent builds in front",
                service.load_balancer_arn, service.vpc_id
            ),
        );
        return None;
    };
    let (alb, alb_listeners) = load_balancers::seen(reported, &service.vpc_id)?;
    let ports: Vec<u16> = service
        .ports
        .iter()
        .filter_map(|p| u16::try_from(*p).ok())
        .collect();
    let health = HealthWanted::from_proto(service.health_check.as_deref());
    let want = FrontWant {
        owner,
        tags,
        account,
        vpc_id: &service.vpc_id,
        alb_arn: &service.load_balancer_arn,
        ports: &ports,
        health: &health,
    };
    let reaching = Seen::Known(reported.reached_by.iter().cloned().collect::<BTreeSet<_>>());
    let mut built = FrontBuilt::default();
    let mut steps = Vec::new();
    for _ in 0..ROUNDS {
        let seen = FrontSeen {
            alb: &alb,
            alb_listeners: &alb_listeners,
            built: &built,
            reaching: &reaching,
        };
        match front::plan_front(&want, &seen) {
            Front::Build(writes) => {
                steps.extend(writes.iter().map(Planned::step));
                for write in &writes {
                    if let Some(made) = assumed(&write.call, &alb) {
                        built.record(made);
                    }
                }
            }
            Front::Ready { load_balancer_arn } => {
                return Some(FrontPlan {
                    steps,
                    load_balancer_arn,
                })
            }
            Front::Refused(why) => {
                preview.problem(Severity::Error, ProblemKind::Refused, account, why);
                return None;
            }
            Front::Waiting(why) => {
                preview.problem(Severity::Warning, ProblemKind::NoChange, account, why);
                return None;
            }
        }
    }
    preview.problem(
        Severity::Warning,
        ProblemKind::NoChange,
        account,
        format!("the front's planner did not settle in {ROUNDS} rounds"),
    );
    None
}

/// What a create of the front makes, as AWS would answer it (an NLB active at once: the plan
/// shows steps, not the minutes an NLB provisions).
fn assumed(call: &Call, alb: &LoadBalancer) -> Option<Made> {
    let arn = |kind: &str, name: &str| {
        let prefix = alb.arn.split(":loadbalancer/").next().unwrap_or_default();
        format!("{prefix}:{kind}/{name}/(new)")
    };
    Some(match call {
        Call::CreateLoadBalancer(r) => Made::LoadBalancer(LoadBalancer {
            arn: arn("loadbalancer/net", &r.name),
            name: r.name.clone(),
            kind: r.kind,
            internal: r.internal,
            vpc_id: alb.vpc_id.clone(),
            az_ids: alb.az_ids.clone(),
            subnet_ids: r.subnet_ids.clone(),
            state: "active".into(),
        }),
        Call::CreateTargetGroup(r) => Made::Group(TargetGroup {
            arn: arn("targetgroup", &r.name),
            name: r.name.clone(),
            target_type: r.target_type,
            protocol: r.protocol.clone(),
            port: r.port,
            vpc_id: r.vpc_id.clone(),
            health_check: r.health_check.clone(),
            load_balancer_arns: Vec::new(),
        }),
        Call::RegisterTargets {
            target_group_arn,
            target_ids,
        } => Made::Registered {
            target_group_arn: target_group_arn.clone(),
            target_ids: target_ids.clone(),
        },
        Call::CreateListener(r) => Made::Listener(Listener {
            arn: format!("{}:listener/{}", r.load_balancer_arn, r.port),
            load_balancer_arn: r.load_balancer_arn.clone(),
            port: r.port,
            protocol: r.protocol.clone(),
            target_group_arn: Some(r.target_group_arn.clone()),
        }),
        _ => return None,
    })
}
