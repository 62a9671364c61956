//! The network load balancer pld builds in front of an application load balancer, so that a
//! service an ALB already serves (its internet clients untouched) is offered over PrivateLink,
//! which takes only network and gateway load balancers. pld builds and owns, tagged, in the
//! ALB's VPC: an internal NLB in the ALB's subnets (so in its AZs), one `alb` target group per
//! port with the ALB registered and health checks over HTTP or HTTPS to the ALB's listener, and
//! a TCP listener per port forwarding to it; the endpoint service then goes on the NLB
//! (`service.rs`). The ALB itself is never modified.
//!
//! - [`front_names`]: the NLB's and groups' names, the same for the same service and ALB.
//!   ELBv2's creates are idempotent by name, so a create retried after a crash finds what the
//!   first made.
//! - [`plan_front`]: the next round of writes towards the front a service wants (creates
//!   before deletes), or why it is refused (checked before anything is created), or that it
//!   is built. The agent observes again after each round: a listener needs the ARNs of the
//!   NLB and the group made in the round before.
//! - [`plan_teardown`]: what pld built, removed in reverse order (listeners, groups, the NLB),
//!   never a listener pld did not create.

use std::collections::{BTreeMap, BTreeSet};

use super::ownership::{fnv, Owner};
use super::{Planned, Reason, Seen};
use crate::aws::types::{
    state_is, CreateListener, CreateLoadBalancer, CreateTargetGroup, HealthCheck, Listener,
    LoadBalancer, LoadBalancerKind, Protocol, Tags, TargetGroup, TargetType,
};
use crate::aws::Call;

/// How many network load balancers may reach one ALB ("Use Application Load Balancers as
/// targets", Network Load Balancers guide).
pub const MAX_NLBS_PER_ALB: usize = 2;

/// The health check matcher when the catalog names none: what ELBv2 uses for `alb` groups.
pub const DEFAULT_MATCHER: &str = "200-399";

/// The names of what pld builds for one service in front of one ALB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontNames {
    /// The NLB: `pld-` and 16 hex digits (20 characters, ELBv2 allows 32).
    pub load_balancer: String,
}

impl FrontNames {
    /// The target group of `port`: the NLB's name and the port (at most 26 characters).
    pub fn group(&self, port: u16) -> String {
        format!("{}-{port}", self.load_balancer)
    }

    /// Whether `name` is one of this front's groups, and of which port.
    pub fn port_of_group(&self, name: &str) -> Option<u16> {
        name.strip_prefix(&self.load_balancer)?
            .strip_prefix('-')?
            .parse()
            .ok()
    }
}

/// The names for `owner`'s front of `alb_arn`. A service moved to another ALB gets another
/// NLB, made before the old one is taken down.
pub fn front_names(owner: &Owner, alb_arn: &str) -> FrontNames {
    FrontNames {
        load_balancer: format!("pld-{:016x}", fnv(&format!("{owner}|{alb_arn}"))),
    }
}

/// Whether a load balancer or target group name can be one pld built: the agent asks ELBv2
/// for the tags of these only.
pub fn may_be_pld_built(name: &str) -> bool {
    name.strip_prefix("pld-")
        .is_some_and(|rest| rest.len() >= 16 && rest[..16].bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The health check a service asks for; `protocol: None` follows the ALB's listener on each
/// port (HTTPS checks for an HTTPS listener).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthWanted {
    pub protocol: Option<Protocol>,
    pub path: String,
    pub matcher: String,
}

impl Default for HealthWanted {
    fn default() -> Self {
        HealthWanted {
            protocol: None,
            path: "/".into(),
            matcher: DEFAULT_MATCHER.into(),
        }
    }
}

impl HealthWanted {
    /// From the catalog's `Service.health_check`, defaults for what it leaves empty.
    pub fn from_proto(h: Option<&pld_proto::v1::HealthCheck>) -> Self {
        use pld_proto::v1::HealthCheckProtocol as P;
        let Some(h) = h else {
            return HealthWanted::default();
        };
        HealthWanted {
            protocol: match P::try_from(h.protocol).unwrap_or(P::Unspecified) {
                P::Unspecified => None,
                P::Http => Some(Protocol::Http),
                P::Https => Some(Protocol::Https),
            },
            path: if h.path.is_empty() {
                "/".into()
            } else {
                h.path.clone()
            },
            matcher: if h.matcher.is_empty() {
                DEFAULT_MATCHER.into()
            } else {
                h.matcher.clone()
            },
        }
    }

    /// The check of the group for `port`, given the ALB's listener there.
    fn check(&self, alb_listener: &Listener) -> HealthCheck {
        HealthCheck {
            protocol: self
                .protocol
                .clone()
                .unwrap_or(match alb_listener.protocol {
                    Protocol::Https => Protocol::Https,
                    _ => Protocol::Http,
                }),
            path: self.path.clone(),
            matcher: self.matcher.clone(),
        }
    }
}

/// The front a service wants.
#[derive(Debug, Clone, Copy)]
pub struct FrontWant<'a> {
    pub owner: &'a Owner,
    /// Every tag what pld builds carries.
    pub tags: &'a Tags,
    /// The account and VPC the service is offered from.
    pub account: &'a str,
    pub vpc_id: &'a str,
    pub alb_arn: &'a str,
    pub ports: &'a [u16],
    pub health: &'a HealthWanted,
}

/// What pld built for one front, as observed: only what carries its tags.
#[derive(Debug, Clone, Default)]
pub struct FrontBuilt {
    pub load_balancer: Option<LoadBalancer>,
    /// Every listener of that load balancer, with whether pld made it (its tags).
    pub listeners: Vec<(Listener, bool)>,
    pub groups: Vec<TargetGroup>,
    /// The targets registered in each group, by group ARN.
    pub registered: BTreeMap<String, Vec<String>>,
}

/// What one of a front's writes made, as AWS answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Made {
    LoadBalancer(LoadBalancer),
    Group(TargetGroup),
    /// A group's health check as modified.
    HealthChanged(TargetGroup),
    Registered {
        target_group_arn: String,
        target_ids: Vec<String>,
    },
    Listener(Listener),
    ListenerDeleted(String),
    GroupDeleted(String),
}

impl FrontBuilt {
    /// What a write made, as AWS answered it: the next round is planned from it without
    /// reading the front again.
    pub fn record(&mut self, made: Made) {
        match made {
            Made::LoadBalancer(lb) => self.load_balancer = Some(lb),
            Made::Group(group) | Made::HealthChanged(group) => {
                self.groups.retain(|g| g.arn != group.arn);
                self.groups.push(group);
            }
            Made::Registered {
                target_group_arn,
                target_ids,
            } => {
                let registered = self.registered.entry(target_group_arn).or_default();
                for id in target_ids {
                    if !registered.contains(&id) {
                        registered.push(id);
                    }
                }
            }
            Made::Listener(listener) => {
                self.listeners.retain(|(l, _)| l.arn != listener.arn);
                self.listeners.push((listener, true));
            }
            Made::ListenerDeleted(arn) => self.listeners.retain(|(l, _)| l.arn != arn),
            Made::GroupDeleted(arn) => {
                self.groups.retain(|g| g.arn != arn);
                self.registered.remove(&arn);
            }
        }
    }
}

/// What the agent observed for a front.
#[derive(Debug, Clone, Copy)]
pub struct FrontSeen<'a> {
    pub alb: &'a LoadBalancer,
    pub alb_listeners: &'a [Listener],
    pub built: &'a FrontBuilt,
    /// The network load balancers that reach the ALB through `alb` target groups, pld's
    /// included. The agent looks only when something is to be created ([`needs_creating`]).
    pub reaching: &'a Seen<BTreeSet<String>>,
}

/// Where a front stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Front {
    /// Writes to make (creates before deletes), then observe again.
    Build(Vec<Planned>),
    /// Nothing to write; AWS has still to finish (the NLB is provisioning).
    Waiting(String),
    /// Built: the endpoint service goes on this NLB.
    Ready { load_balancer_arn: String },
    /// Refused, with what is wrong and what to do; nothing was created for it.
    Refused(String),
}

/// The ALB listener on each wanted port, or the refusal naming those it lacks.
fn alb_listeners_for<'a>(
    want: &FrontWant<'_>,
    seen: &FrontSeen<'a>,
) -> Result<BTreeMap<u16, &'a Listener>, String> {
    let mut by_port = BTreeMap::new();
    let mut missing = Vec::new();
    for port in want.ports {
        match seen.alb_listeners.iter().find(|l| l.port == *port) {
            Some(l) => {
                by_port.insert(*port, l);
            }
            None => missing.push(port.to_string()),
        }
    }
    if missing.is_empty() {
        return Ok(by_port);
    }
    let has: Vec<String> = seen
        .alb_listeners
        .iter()
        .map(|l| l.port.to_string())
        .collect();
    Err(format!(
        "the application load balancer {} has no listener on port {} (it listens on {}): add \
         the listener to the ALB, or register the service with the ports it listens on",
        want.alb_arn,
        missing.join(", "),
        if has.is_empty() {
            "no port".to_string()
        } else {
            has.join(", ")
        }
    ))
}

/// The refusal of an ALB in another account than the service's VPC, which its ARN tells
/// before anything is asked of AWS (another account's ALB is not even visible).
pub fn foreign_account(want: &FrontWant<'_>) -> Option<String> {
    let alb_account = want.alb_arn.split(':').nth(4).unwrap_or_default();
    (alb_account != want.account).then(|| {
        format!(
            "the application load balancer {} is in account {alb_account}, the service's VPC \
             {} in account {}: pld builds the network load balancer beside the ALB, so \
             register the service from the ALB's account and VPC",
            want.alb_arn, want.vpc_id, want.account
        )
    })
}

/// The ALB's listener on each wanted port, or the refusal that holds whatever exists: the ALB
/// in another account or VPC, not an ALB, a wanted port the ALB does not listen on, or taken
/// on pld's NLB by a listener pld did not create.
fn checked<'a>(
    want: &FrontWant<'_>,
    seen: &FrontSeen<'a>,
) -> Result<BTreeMap<u16, &'a Listener>, String> {
    if let Some(why) = foreign_account(want) {
        return Err(why);
    }
    if seen.alb.kind != LoadBalancerKind::Application {
        return Err(format!(
            "{} is a {} load balancer, not an application load balancer",
            want.alb_arn,
            seen.alb.kind.as_str()
        ));
    }
    if seen.alb.vpc_id != want.vpc_id {
        return Err(format!(
            "the application load balancer {} is in VPC {}, not the service's VPC {}: register \
             the service with --vpc {}",
            want.alb_arn, seen.alb.vpc_id, want.vpc_id, seen.alb.vpc_id
        ));
    }
    let alb_listeners = alb_listeners_for(want, seen)?;
    for (listener, ours) in &seen.built.listeners {
        if !ours && want.ports.contains(&listener.port) {
            return Err(format!(
                "port {} of pld's network load balancer {} is taken by listener {}, which pld \
                 did not create: pld never changes it; remove it or register the service \
                 without that port",
                listener.port, listener.load_balancer_arn, listener.arn
            ));
        }
    }
    Ok(alb_listeners)
}

/// Whether a front has something to create (then the agent looks which NLBs reach the ALB
/// before planning, for the two-NLB limit).
pub fn needs_creating(want: &FrontWant<'_>, built: &FrontBuilt) -> bool {
    let names = front_names(want.owner, want.alb_arn);
    let Some(nlb) = &built.load_balancer else {
        return true;
    };
    want.ports.iter().any(|port| {
        let group = built.groups.iter().find(|g| g.name == names.group(*port));
        let Some(group) = group else {
            return true;
        };
        let registered = built
            .registered
            .get(&group.arn)
            .is_some_and(|t| t.iter().any(|t| t == want.alb_arn));
        let listening = built.listeners.iter().any(|(l, _)| {
            l.load_balancer_arn == nlb.arn
                && l.port == *port
                && l.target_group_arn.as_deref() == Some(&group.arn)
        });
        !registered || !listening
    })
}

/// The next round of writes for `want`'s front.
pub fn plan_front(want: &FrontWant<'_>, seen: &FrontSeen<'_>) -> Front {
    let alb_listeners = match checked(want, seen) {
        Ok(listeners) => listeners,
        Err(why) => return Front::Refused(why),
    };
    let names = front_names(want.owner, want.alb_arn);
    let built = seen.built;
    if needs_creating(want, built) {
        let ours = built.load_balancer.as_ref().map(|l| l.arn.as_str());
        match seen.reaching {
            Seen::Unknown(why) => {
                return Front::Waiting(format!(
                    "which network load balancers reach the ALB is not known yet: {why}"
                ))
            }
            Seen::Known(reaching) => {
                let others: Vec<&String> = reaching
                    .iter()
                    .filter(|a| Some(a.as_str()) != ours)
                    .collect();
                let ours_reaches = ours.is_some_and(|a| reaching.contains(a));
                if !ours_reaches && others.len() >= MAX_NLBS_PER_ALB {
                    return Front::Refused(format!(
                        "the application load balancer {} is already the target of {} network \
                         load balancers ({}); AWS allows {MAX_NLBS_PER_ALB}: remove one, or \
                         register the service on one of them",
                        want.alb_arn,
                        others.len(),
                        others
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
    }

    let mut creates = Vec::new();
    let mut deletes = Vec::new();
    let nlb = built.load_balancer.as_ref();
    if nlb.is_none() {
        creates.push(Planned {
            call: Call::CreateLoadBalancer(CreateLoadBalancer {
                name: names.load_balancer.clone(),
                kind: LoadBalancerKind::Network,
                internal: true,
                subnet_ids: seen.alb.subnet_ids.clone(),
                tags: want.tags.clone(),
            }),
            reason: Reason::Missing,
        });
    }
    for (port, alb_listener) in &alb_listeners {
        let check = want.health.check(alb_listener);
        let Some(group) = built.groups.iter().find(|g| g.name == names.group(*port)) else {
            creates.push(Planned {
                call: Call::CreateTargetGroup(CreateTargetGroup {
                    name: names.group(*port),
                    target_type: TargetType::Alb,
                    protocol: Protocol::Tcp,
                    port: *port,
                    vpc_id: seen.alb.vpc_id.clone(),
                    health_check: check,
                    tags: want.tags.clone(),
                }),
                reason: Reason::Missing,
            });
            continue;
        };
        if group.health_check != check {
            creates.push(Planned {
                call: Call::ModifyTargetGroupHealth {
                    arn: group.arn.clone(),
                    health_check: check.clone(),
                },
                reason: Reason::Drift(format!(
                    "health check {} {} {} instead of {} {} {}",
                    group.health_check.protocol,
                    group.health_check.path,
                    group.health_check.matcher,
                    check.protocol,
                    check.path,
                    check.matcher
                )),
            });
        }
        let registered = built
            .registered
            .get(&group.arn)
            .cloned()
            .unwrap_or_default();
        if !registered.iter().any(|t| t == want.alb_arn) {
            creates.push(Planned {
                call: Call::RegisterTargets {
                    target_group_arn: group.arn.clone(),
                    target_ids: vec![want.alb_arn.to_string()],
                },
                reason: Reason::Missing,
            });
        }
        let Some(nlb) = nlb else {
            continue;
        };
        let listener = built
            .listeners
            .iter()
            .find(|(l, _)| l.port == *port)
            .map(|(l, _)| l);
        match listener {
            None => creates.push(Planned {
                call: Call::CreateListener(CreateListener {
                    load_balancer_arn: nlb.arn.clone(),
                    protocol: Protocol::Tcp,
                    port: *port,
                    target_group_arn: group.arn.clone(),
                    tags: want.tags.clone(),
                }),
                reason: Reason::Missing,
            }),
            // pld's listener forwarding elsewhere (a crash between creates cannot make one;
            // a person can): made again, after the old one is gone.
            Some(l) if l.target_group_arn.as_deref() != Some(&group.arn) => {
                deletes.push(Planned {
                    call: Call::DeleteListener { arn: l.arn.clone() },
                    reason: Reason::Drift(format!(
                        "forwards to {} instead of {}",
                        l.target_group_arn.as_deref().unwrap_or("no target group"),
                        group.arn
                    )),
                });
            }
            Some(_) => {}
        }
    }
    // Ports no longer wanted: their listeners, then their groups.
    for (listener, ours) in &built.listeners {
        if *ours && !want.ports.contains(&listener.port) {
            deletes.push(Planned {
                call: Call::DeleteListener {
                    arn: listener.arn.clone(),
                },
                reason: Reason::Unwanted(format!("port {} is no longer offered", listener.port)),
            });
        }
    }
    for group in &built.groups {
        let wanted = names
            .port_of_group(&group.name)
            .is_some_and(|p| want.ports.contains(&p));
        if !wanted {
            deletes.push(Planned {
                call: Call::DeleteTargetGroup {
                    arn: group.arn.clone(),
                },
                reason: Reason::Unwanted(format!("{} is no longer offered", group.name)),
            });
        }
    }
    creates.extend(deletes);
    if !creates.is_empty() {
        return Front::Build(creates);
    }
    match nlb {
        Some(nlb) if state_is(&nlb.state, "active") => Front::Ready {
            load_balancer_arn: nlb.arn.clone(),
        },
        Some(nlb) if state_is(&nlb.state, "failed") => Front::Refused(format!(
            "pld's network load balancer {} failed to provision; AWS says no more",
            nlb.arn
        )),
        Some(nlb) => Front::Waiting(format!(
            "network load balancer {} is {}",
            nlb.arn, nlb.state
        )),
        None => Front::Waiting("the network load balancer is not created yet".into()),
    }
}

/// What pld built, removed in reverse order: its listeners, its target groups, then the NLB
/// (only when no listener pld did not create is left on it: deleting the NLB would take that
/// one too). The endpoint service on the NLB must be gone first; AWS refuses otherwise.
pub fn plan_teardown(built: &FrontBuilt, reason: &Reason) -> Vec<Planned> {
    let mut writes = Vec::new();
    for (listener, ours) in &built.listeners {
        if *ours {
            writes.push(Planned {
                call: Call::DeleteListener {
                    arn: listener.arn.clone(),
                },
                reason: reason.clone(),
            });
        }
    }
    for group in &built.groups {
        writes.push(Planned {
            call: Call::DeleteTargetGroup {
                arn: group.arn.clone(),
            },
            reason: reason.clone(),
        });
    }
    let foreign_left = built.listeners.iter().any(|(_, ours)| !ours);
    if let (Some(nlb), false) = (&built.load_balancer, foreign_left) {
        writes.push(Planned {
            call: Call::DeleteLoadBalancer {
                arn: nlb.arn.clone(),
            },
            reason: reason.clone(),
        });
    }
    writes
}

#[cfg(test)]
mod tests;
