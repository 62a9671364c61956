//! A binding whose service moved to another endpoint service (another load balancer, another
//! VPC): its endpoint moves make-before-break. The agent keeps the old endpoint serving while
//! it creates one to the new endpoint service and waits for it to be accepted and available;
//! then points the name at the new one; then waits for Route 53 to report the change in sync
//! **and** for the record's TTL, so no resolver holds the old answer any more; only then
//! deletes the old endpoint. The name always points at an available endpoint.
//!
//! [`plan_move`] takes the endpoint planner's plan for the new endpoint and what was observed
//! of the old ones and of the name, and returns the plan for the binding as a whole. A crash
//! at any step is just another observed state: the old endpoint is found by its tags, and a
//! flip this process never saw in sync is written again to be confirmed before the wait.

use std::fmt;
use std::time::Duration;

use crate::aws::types::{state_is, Endpoint};
use crate::aws::Call;

use super::endpoint::{EndpointPlan, Outcome};
use super::{Planned, Reason};

/// Where a move stands; on the wire, `BindingMigration.step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MoveStep {
    /// The endpoint to the new endpoint service is being created.
    Creating,
    /// The new endpoint waits to be accepted and to become available.
    Connecting,
    /// The name is being pointed at the new endpoint (not yet seen in sync).
    Flipping,
    /// The name points at the new endpoint; resolvers may still hold the old answer for up to
    /// the record's TTL.
    Draining,
    /// The old endpoint is being deleted.
    Retiring,
}

impl MoveStep {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MoveStep::Creating => "creating",
            MoveStep::Connecting => "connecting",
            MoveStep::Flipping => "flipping",
            MoveStep::Draining => "draining",
            MoveStep::Retiring => "retiring",
        }
    }
}

impl fmt::Display for MoveStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is known of the name's flip to the new endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Flip {
    /// The name does not point at the new endpoint, or this process has not seen the change
    /// that pointed it there in sync (not made yet, in flight, or before a restart).
    #[default]
    Unconfirmed,
    /// In sync, for less than the record's TTL: resolvers may still answer the old endpoint
    /// for up to `remaining`.
    Draining { remaining: Duration },
    /// In sync for at least the record's TTL: no resolver holds the old answer.
    Drained,
}

/// Where the flip stands: the name's `published` addresses against the new endpoint's, and
/// how long ago this process saw the change that wrote them in sync (`None`: it has not).
pub fn flip(
    published: &[String],
    next: &Endpoint,
    in_sync_for: Option<Duration>,
    ttl: Duration,
) -> Flip {
    if !same_addresses(published, &next.addresses) {
        return Flip::Unconfirmed;
    }
    match in_sync_for {
        None => Flip::Unconfirmed,
        Some(d) if d >= ttl => Flip::Drained,
        Some(d) => Flip::Draining { remaining: ttl - d },
    }
}

/// Which endpoint the name points at while a binding moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serving {
    /// The old endpoint at this index of [`MoveSeen::previous`].
    Previous(usize),
    /// The new endpoint (the endpoint planner's `seen.endpoint`).
    Next,
}

/// A binding in the middle of a move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub step: MoveStep,
    /// The old endpoint it moves off, an index of [`MoveSeen::previous`].
    pub from: usize,
    /// The endpoint the name is to point at this pass.
    pub serving: Serving,
    /// Why the move waits, when the new endpoint is stuck (rejected, failed): the old one
    /// keeps serving meanwhile.
    pub message: String,
}

/// What was observed of a binding's endpoints to endpoint services other than its service's
/// current one, and of its name.
#[derive(Debug, Clone, Copy)]
pub struct MoveSeen<'a> {
    /// The binding's endpoints to other endpoint services (by its ownership tag).
    pub previous: &'a [Endpoint],
    /// The binding's endpoint to the current endpoint service, if one exists.
    pub next: Option<&'a Endpoint>,
    /// The addresses the binding's name has now (empty when it is not published).
    pub published: &'a [String],
    pub flip: Flip,
}

/// The binding's plan as a whole, from the plan for its new endpoint (`next`) and what was
/// seen of the old ones: with no old endpoint that serves, `next` as it is (plus deleting old
/// endpoints that serve no one); otherwise the move's step, with `Outcome::Migrate`.
pub fn plan_move(next: EndpointPlan, seen: &MoveSeen) -> EndpointPlan {
    let mut plan = next;
    // Old endpoints that are not available serve no one: nothing to make before breaking.
    for ep in seen.previous {
        if !state_is(&ep.state, "available") && !state_is(&ep.state, "deleting") {
            plan.writes.push(delete(
                ep,
                format!(
                    "it connects to {}, which its service moved off, and it is {}: it serves no one",
                    ep.service_name, ep.state
                ),
            ));
        }
    }
    let live: Vec<usize> = (0..seen.previous.len())
        .filter(|&i| state_is(&seen.previous[i].state, "available"))
        .collect();
    let Some(&first) = live.first() else {
        return plan;
    };
    // The old endpoint the name points at, if it points at one.
    let from = live
        .iter()
        .copied()
        .find(|&i| same_addresses(seen.published, &seen.previous[i].addresses))
        .unwrap_or(first);
    let next_ready = plan.outcome == Outcome::Publish;
    let (step, serving, message) = match (next_ready, seen.next) {
        (false, None) => (MoveStep::Creating, Serving::Previous(from), stuck(&plan)),
        (false, Some(_)) => (MoveStep::Connecting, Serving::Previous(from), stuck(&plan)),
        (true, _) => match seen.flip {
            Flip::Unconfirmed => (MoveStep::Flipping, Serving::Next, String::new()),
            Flip::Draining { .. } => (MoveStep::Draining, Serving::Next, String::new()),
            Flip::Drained => {
                let to = seen.next.map(|n| n.id.as_str()).unwrap_or_default();
                for &i in &live {
                    let ep = &seen.previous[i];
                    plan.writes.push(delete(
                        ep,
                        format!(
                            "replaced by {to}: the name has pointed there for the record's TTL \
                             since Route 53 reported it in sync"
                        ),
                    ));
                }
                (MoveStep::Retiring, Serving::Next, String::new())
            }
        },
    };
    // The new endpoint's own writes (its create) are made all the same; what it reports is
    // replaced by the move's step, since the old endpoint still serves.
    plan.outcome = Outcome::Migrate(Migration {
        step,
        from,
        serving,
        message,
    });
    plan.unpublish = false;
    plan
}

/// Why the new endpoint cannot serve yet, when its plan says more than "in progress".
fn stuck(plan: &EndpointPlan) -> String {
    match &plan.outcome {
        Outcome::Report { message, .. } if !message.is_empty() => {
            format!("the old endpoint serves until the new one can: {message}")
        }
        _ => String::new(),
    }
}

fn delete(ep: &Endpoint, why: String) -> Planned {
    Planned {
        call: Call::DeleteEndpoint { id: ep.id.clone() },
        reason: Reason::Unwanted(why),
    }
}

/// Whether two address lists hold the same addresses, in any order.
fn same_addresses(a: &[String], b: &[String]) -> bool {
    if a.len() != b.len() || a.is_empty() {
        return false;
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

#[cfg(test)]
mod tests;
