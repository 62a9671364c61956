//! The VPC's load balancers in its facts: what `pld plan services register` checks a service
//! against before its agent calls AWS — the AZs an NLB or GWLB spans (which an endpoint service
//! on it offers), and for an ALB its listeners and the network load balancers already reaching
//! it (the front pld would build, `plan::front`). Read by the agent on its resync; converted
//! back into the types the planners take with [`seen`].

use std::collections::{BTreeMap, BTreeSet};

use pld_proto::v1::{ListenerFacts, LoadBalancerFacts};

use super::{clip, cut, FieldError};
use crate::aws::types::{Listener, LoadBalancer, LoadBalancerKind, Protocol};

/// Most load balancers kept (ELBv2's default quota is 50 of each kind per region).
pub const MAX_LOAD_BALANCERS: usize = 64;
/// Most listeners kept per load balancer (ELBv2's default quota is 50 per ALB; a service
/// offers a handful of ports).
pub const MAX_LISTENERS: usize = 32;
/// Longest note on why the load balancers could not be read, in bytes.
pub const MAX_LOAD_BALANCERS_NOTE: usize = 512;

/// The VPC's load balancers as the agent could read them.
#[derive(Debug, Clone, Copy)]
pub enum LoadBalancerReading<'a> {
    Read {
        /// Those in the VPC.
        load_balancers: &'a [LoadBalancer],
        /// Each ALB's listeners, by its ARN.
        listeners: &'a BTreeMap<String, Vec<Listener>>,
        /// The NLBs reaching each ALB through `alb` target groups, by the ALB's ARN.
        reached_by: &'a BTreeMap<String, BTreeSet<String>>,
    },
    /// ELBv2 could not tell (not allowed, no ELBv2 at the endpoint): why, for the plan.
    Unreadable { why: &'a str },
}

/// The facts of `reading`, by ARN, and the note; true when any list was cut.
pub(super) fn facts(reading: &LoadBalancerReading<'_>) -> (Vec<LoadBalancerFacts>, String, bool) {
    let (load_balancers, listeners, reached_by) = match reading {
        LoadBalancerReading::Read {
            load_balancers,
            listeners,
            reached_by,
        } => (*load_balancers, *listeners, *reached_by),
        LoadBalancerReading::Unreadable { why } => {
            return (Vec::new(), clip(why, MAX_LOAD_BALANCERS_NOTE), false)
        }
    };
    let mut truncated = false;
    let mut out: Vec<LoadBalancerFacts> = load_balancers
        .iter()
        .map(|lb| {
            let mut ports: Vec<ListenerFacts> = listeners
                .get(&lb.arn)
                .into_iter()
                .flatten()
                .map(|l| ListenerFacts {
                    port: u32::from(l.port),
                    protocol: l.protocol.to_string(),
                })
                .collect();
            ports.sort_by_key(|l| l.port);
            truncated |= cut(&mut ports, MAX_LISTENERS);
            let mut az_ids = lb.az_ids.clone();
            az_ids.sort();
            LoadBalancerFacts {
                arn: lb.arn.clone(),
                kind: lb.kind.as_str().to_string(),
                az_ids,
                state: lb.state.clone(),
                listeners: ports,
                reached_by: reached_by
                    .get(&lb.arn)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default(),
                subnet_ids: lb.subnet_ids.clone(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.arn.cmp(&b.arn));
    truncated |= cut(&mut out, MAX_LOAD_BALANCERS);
    (out, String::new(), truncated)
}

/// Checks the load balancers of a facts report against the bounds.
pub(super) fn validate(
    load_balancers: &[LoadBalancerFacts],
    note: &str,
    err: impl Fn(&str, String) -> FieldError,
) -> Result<(), FieldError> {
    if load_balancers.len() > MAX_LOAD_BALANCERS {
        return Err(err(
            "load_balancers",
            format!(
                "{} entries, at most {MAX_LOAD_BALANCERS}",
                load_balancers.len()
            ),
        ));
    }
    if note.len() > MAX_LOAD_BALANCERS_NOTE {
        return Err(err(
            "load_balancers_note",
            format!("{} bytes, at most {MAX_LOAD_BALANCERS_NOTE}", note.len()),
        ));
    }
    for lb in load_balancers {
        crate::validate::load_balancer_arn("load_balancers.arn", &lb.arn)
            .map_err(|e| err("load_balancers.arn", e.reason))?;
        if LoadBalancerKind::parse(&lb.kind).is_none() {
            return Err(err(
                "load_balancers.kind",
                format!("{:?} is not network, gateway or application", lb.kind),
            ));
        }
        if lb.listeners.len() > MAX_LISTENERS {
            return Err(err(
                "load_balancers.listeners",
                format!("{} entries, at most {MAX_LISTENERS}", lb.listeners.len()),
            ));
        }
        if let Some(l) = lb.listeners.iter().find(|l| u16::try_from(l.port).is_err()) {
            return Err(err(
                "load_balancers.listeners.port",
                format!("{} is not a port", l.port),
            ));
        }
        let long =
            |list: &[String], max: usize| list.len() > max || list.iter().any(|s| s.len() > 2048);
        if long(&lb.az_ids, 32) || long(&lb.subnet_ids, 32) || long(&lb.reached_by, 8) {
            return Err(err(
                "load_balancers",
                format!(
                    "{}: more AZs, subnets or reaching NLBs than AWS allows",
                    lb.arn
                ),
            ));
        }
    }
    Ok(())
}

/// The load balancer `facts` describes and its listeners, in `vpc_id`, as the planners take
/// them; `None` when its kind is not one this build knows.
pub fn seen(facts: &LoadBalancerFacts, vpc_id: &str) -> Option<(LoadBalancer, Vec<Listener>)> {
    let kind = LoadBalancerKind::parse(&facts.kind)?;
    let lb = LoadBalancer {
        arn: facts.arn.clone(),
        name: facts.arn.rsplit('/').nth(1).unwrap_or_default().to_string(),
        kind,
        internal: true,
        vpc_id: vpc_id.to_string(),
        az_ids: facts.az_ids.clone(),
        subnet_ids: facts.subnet_ids.clone(),
        state: facts.state.clone(),
    };
    let listeners = facts
        .listeners
        .iter()
        .filter_map(|l| {
            Some(Listener {
                arn: format!("{}:listener/{}", facts.arn, l.port),
                load_balancer_arn: facts.arn.clone(),
                port: u16::try_from(l.port).ok()?,
                protocol: Protocol::parse(&l.protocol),
                target_group_arn: None,
            })
        })
        .collect();
    Some((lb, listeners))
}
