//! A binding's consumer endpoint: create it where the service's AZs and the configured subnets
//! meet, follow it through acceptance, move it when the configured subnets change, take it
//! down when its service goes, and say in the binding's status where it stands.
//!
//! The agent asks AWS only for the facts this planner needs ([`next_fact`], one at a time, in
//! the order it needs them), then calls [`plan_endpoint`]. A crash after any write is just
//! another observed state: an endpoint created but not yet reported is found by its tags and
//! followed from where it is, never created twice.

use crate::aws::types::{state_is, CreateEndpoint, Endpoint, EndpointKind, ServiceDetail, Subnet};
use crate::aws::types::{RouteTable, Tags};
use crate::aws::Call;
use crate::Phase;

use super::moves::{plan_move, Flip, Migration, MoveSeen};
use super::ownership::{client_token, token_params, Owner, TOKEN_ATTEMPTS};
use super::placement::{choose_subnets, needs_move, subnet_move, Placement};
use super::{Planned, Reason, Seen};
use crate::aws::types::service_region;

/// Where a binding's endpoint connects, or why it cannot connect anywhere yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The AWS service name, and the endpoint kind when it is known without asking AWS (the
    /// built-ins); custom services say theirs (interface or GWLB) when described.
    Service {
        name: String,
        kind: Option<EndpointKind>,
    },
    /// The provider has not created its endpoint service yet: worth looking again soon.
    Waiting(String),
    /// The service is not in the catalog (yet, or any more): a catalog change brings it.
    Missing(String),
    /// The catalog does not let the binding connect (the service no longer allows its
    /// account, or an operator rejected it): its endpoint comes down, since a rejected
    /// endpoint still bills, and the binding stays rejected until a catalog change lifts it.
    Refused(String),
    /// The service is in another region and not offered to the consumer's: the binding fails
    /// at once (no endpoint can connect), and a catalog change (the provider adding the
    /// region) brings it back.
    NotOffered(String),
}

/// What a binding wants of its endpoint: from the catalog and the agent's config.
#[derive(Debug, Clone, Copy)]
pub struct Want<'a> {
    /// The catalog service the binding uses.
    pub service: &'a str,
    pub target: &'a Target,
    pub vpc_id: &'a str,
    /// The consumer's region: a service in another is reached with `ServiceRegion`.
    pub region: &'a str,
    /// The subnets the config allows (empty: any of the VPC's).
    pub configured_subnets: &'a [String],
    pub security_group_ids: &'a [String],
    pub owner: &'a Owner,
    /// Every tag the endpoint is created with (ownership included).
    pub tags: &'a Tags,
    /// The binding's generation, part of the create's client token.
    pub generation: u64,
    /// Whether the service's principals let the binding's account connect.
    pub access: Access<'a>,
}

/// Whether a service lets a binding's account connect, as far as the catalog tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access<'a> {
    /// Its allowed principals name the account (or `*`), or it is an AWS service.
    Listed,
    /// Its allowed principals do not name `account`. The provider's own account connects all
    /// the same, and only AWS's description of the service (its owner) tells whether that is
    /// this one; otherwise the binding is refused with `why`. The catalog refuses such a
    /// binding when it is made, so this is a service that stopped allowing the account since.
    Unlisted { account: &'a str, why: &'a str },
}

/// What the agent observed. `None` is a fact not asked for (not needed so far); a fact AWS
/// would not give is `Some(Seen::Unknown(why))`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The endpoint tagged as this binding's, to its target service.
    pub endpoint: Option<Endpoint>,
    /// The endpoints tagged as this binding's to other services: those of a service that
    /// moved to another endpoint service ([`super::moves`]).
    pub previous: Vec<Endpoint>,
    /// The addresses the binding's name has now (empty when it is not published).
    pub published: Vec<String>,
    /// Whether the name's flip to `endpoint` is confirmed (asked only while moving).
    pub flip: Flip,
    /// The target service as this account sees it: its endpoint kind and AZ IDs.
    pub detail: Option<Seen<ServiceDetail>>,
    pub subnets: Option<Seen<Vec<Subnet>>>,
    pub route_tables: Option<Seen<Vec<RouteTable>>>,
    /// How many client tokens this pass found spent: AWS answered the create with the
    /// endpoint the token made before, deleted since (the binding's endpoint was taken down
    /// while the binding stayed). The next create uses the next token.
    pub spent_tokens: u32,
}

/// The target a binding with `endpoints` (those tagged as its) plans against: its service's,
/// except while the provider has no endpoint service to offer (its last pass failed, or it is
/// making one): then the endpoint that exists is followed as it is, never taken down for a
/// provider's hiccup.
pub fn keep_while_waiting(target: Target, endpoints: &[Endpoint]) -> Target {
    match (target, endpoints.first()) {
        (Target::Waiting(_), Some(ep)) => Target::Service {
            name: ep.service_name.clone(),
            kind: None,
        },
        (target, _) => target,
    }
}

/// A fact [`plan_endpoint`] needs that has not been asked for yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// DescribeVpcEndpointServices of this service name.
    ServiceDetail(String),
    /// The VPC's subnets.
    Subnets,
    /// The VPC's route tables (a gateway endpoint goes on all of them).
    RouteTables,
}

/// The plan for one binding's endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPlan {
    /// Writes to make, in order.
    pub writes: Vec<Planned>,
    pub outcome: Outcome,
    /// The binding's name comes down: the endpoint it points at is going.
    pub unpublish: bool,
}

/// Where the binding stands once the plan's writes are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Report this phase and message (with the observed endpoint's id and addresses when
    /// `with_endpoint`); `requeue` when something is in transition and worth looking at soon.
    Report {
        phase: Phase,
        message: String,
        with_endpoint: bool,
        requeue: bool,
    },
    /// The endpoint is available where it belongs and is reached by name: publish it.
    Publish,
    /// The writes change what is observed (a new endpoint, other subnets and addresses):
    /// plan again from what they return or from the next pass's observation.
    Applying,
    /// The service moved: the binding is on its way from an old endpoint to the new one; the
    /// name points at the endpoint that serves, and the binding reports `migrating`.
    Migrate(Migration),
}

impl Outcome {
    fn report(phase: Phase, message: impl Into<String>, with_endpoint: bool) -> Self {
        Outcome::Report {
            phase,
            message: message.into(),
            with_endpoint,
            requeue: matches!(phase, Phase::PendingAcceptance | Phase::Pending),
        }
    }

    fn failed(message: impl Into<String>, with_endpoint: bool) -> Self {
        Outcome::report(Phase::Failed, message, with_endpoint)
    }
}

impl EndpointPlan {
    fn only(outcome: Outcome) -> Self {
        EndpointPlan {
            writes: Vec::new(),
            outcome,
            unpublish: false,
        }
    }
}

/// The next fact [`plan_endpoint`] needs, or `None` when it has all it needs.
pub fn next_fact(want: &Want, seen: &Observed) -> Option<Fact> {
    let Target::Service { name, kind } = want.target else {
        return None;
    };
    if seen
        .endpoint
        .iter()
        .chain(&seen.previous)
        .any(|ep| !ep.kind.is_managed())
    {
        // The binding fails naming it, whatever else is seen.
        return None;
    }
    if matches!(want.access, Access::Unlisted { .. }) && seen.detail.is_none() {
        // Whose service it is decides whether the binding may stay, before anything else.
        return Some(Fact::ServiceDetail(name.clone()));
    }
    if refusal(want, seen).is_some() {
        return None;
    }
    match &seen.endpoint {
        Some(ep) => {
            // An endpoint that may have to move needs the service's AZs and the subnets.
            let movable = ep.kind.is_managed()
                && kind.is_none_or(|k| k == ep.kind)
                && state_is(&ep.state, "available")
                && needs_move(ep, want.configured_subnets);
            if !movable {
                None
            } else if seen.detail.is_none() {
                Some(Fact::ServiceDetail(ep.service_name.clone()))
            } else if seen.subnets.is_none() {
                Some(Fact::Subnets)
            } else {
                None
            }
        }
        None => {
            let kind = match (kind, &seen.detail) {
                (Some(k), _) => *k,
                (None, None) => return Some(Fact::ServiceDetail(name.clone())),
                (None, Some(Seen::Known(d))) => d.kind,
                (None, Some(Seen::Unknown(_))) => return None,
            };
            if !kind.is_managed() {
                None
            } else if kind == EndpointKind::Gateway {
                seen.route_tables.is_none().then_some(Fact::RouteTables)
            } else if seen.detail.is_none() {
                // Built-in interface services: their AZs still come from AWS.
                Some(Fact::ServiceDetail(name.clone()))
            } else if matches!(seen.detail, Some(Seen::Known(_))) && seen.subnets.is_none() {
                Some(Fact::Subnets)
            } else {
                None
            }
        }
    }
}

/// What to do about a binding's endpoints, given what was observed ([`next_fact`] says what
/// that must include): the one to its target service, and, when the service moved to another
/// endpoint service, the move off the old ones ([`plan_move`]).
pub fn plan_endpoint(want: &Want, seen: &Observed) -> EndpointPlan {
    // Whatever the target, an endpoint of a kind pld does not manage carrying the binding's
    // tags is someone else's doing: the binding fails naming it and nothing is made beside it.
    let tagged = seen.endpoint.iter().chain(&seen.previous);
    if let Some(ep) = tagged.into_iter().find(|ep| !ep.kind.is_managed()) {
        return EndpointPlan::only(unmanaged(ep, "pld does not manage endpoints of that type"));
    }
    let next = plan_next(want, seen);
    match want.target {
        Target::Service { .. } if refusal(want, seen).is_none() => plan_move(
            next,
            &MoveSeen {
                previous: &seen.previous,
                next: seen.endpoint.as_ref(),
                published: &seen.published,
                flip: seen.flip,
            },
        ),
        // Taken down: the old endpoints with the rest ([`take_down`]).
        _ => next,
    }
}

/// The plan for the endpoint to the binding's target service.
fn plan_next(want: &Want, seen: &Observed) -> EndpointPlan {
    if let (Target::Service { .. }, Some(why)) = (want.target, refusal(want, seen)) {
        return take_down(seen, Phase::Rejected, why, false);
    }
    let (name, known_kind) = match want.target {
        Target::Service { name, kind } => (name, *kind),
        Target::Refused(why) => return take_down(seen, Phase::Rejected, why.clone(), false),
        // A provider about to create its endpoint service is polled soon; a service not
        // registered yet arrives as a catalog change, which starts a pass.
        Target::Waiting(why) => return take_down(seen, Phase::Waiting, why.clone(), true),
        Target::Missing(why) => return take_down(seen, Phase::Waiting, why.clone(), false),
        Target::NotOffered(why) => return take_down(seen, Phase::Failed, why.clone(), false),
    };
    let Some(ep) = &seen.endpoint else {
        return create(want, seen, name, known_kind);
    };
    if let Some(kind) = known_kind.filter(|k| *k != ep.kind) {
        let why = format!("{} takes {} endpoints", want.service, kind.as_str());
        return EndpointPlan::only(unmanaged(ep, &why));
    }
    let state = ep.state.as_str();
    if state_is(state, "pendingAcceptance") {
        return EndpointPlan::only(Outcome::report(
            Phase::PendingAcceptance,
            "waiting for the provider to accept the connection",
            true,
        ));
    }
    if state_is(state, "pending") {
        return EndpointPlan::only(Outcome::report(Phase::Pending, "", true));
    }
    if state_is(state, "rejected") {
        return EndpointPlan::only(Outcome::report(
            Phase::Rejected,
            "the provider rejected the connection",
            true,
        ));
    }
    if !state_is(state, "available") {
        return EndpointPlan::only(Outcome::failed(format!("endpoint is {state}"), true));
    }
    if needs_move(ep, want.configured_subnets) {
        let chosen = placement(want, seen, &ep.service_name, ep.kind);
        return match chosen.map(|c| subnet_move(ep, want.configured_subnets, &c)) {
            Err(Placement(why)) => EndpointPlan::only(Outcome::failed(why, true)),
            Ok(None) => EndpointPlan::only(Outcome::Publish),
            Ok(Some(m)) => {
                let reason = Reason::Drift(format!(
                    "endpoint {} is in {}, which the config does not list; it moves to {}",
                    ep.id,
                    m.remove.join(", "),
                    if m.add.is_empty() {
                        "the configured subnets it is already in".to_string()
                    } else {
                        m.add.join(", ")
                    }
                ));
                EndpointPlan {
                    writes: vec![Planned {
                        call: Call::ModifyEndpointSubnets {
                            id: ep.id.clone(),
                            add: m.add,
                            remove: m.remove,
                        },
                        reason,
                    }],
                    // Its addresses change with its subnets: published on the next pass.
                    outcome: Outcome::Applying,
                    unpublish: false,
                }
            }
        };
    }
    if ep.kind != EndpointKind::Interface {
        // Gateway endpoints are route-table targets and GWLB endpoints are next hops that
        // route tables point at: neither is reached by name, so there is nothing to publish.
        return EndpointPlan::only(Outcome::report(Phase::Ready, "", true));
    }
    EndpointPlan::only(Outcome::Publish)
}

/// An endpoint pld made whose binding is gone: deleted, unless it is of a kind pld does not
/// manage (then something else carries pld's tags, and it is left alone: the `Err` says why).
pub fn plan_orphan(ep: &Endpoint) -> Result<Planned, String> {
    if !ep.kind.is_managed() {
        return Err(format!(
            "{} is a {} endpoint, which pld does not manage, yet carries its tags: left alone",
            ep.id,
            ep.kind.as_str()
        ));
    }
    Ok(Planned {
        call: Call::DeleteEndpoint { id: ep.id.clone() },
        reason: Reason::Orphan,
    })
}

/// Why the binding may not connect though its service is there: the service's principals do
/// not name its account, and AWS does not say the service is that account's own (a service
/// that stopped allowing the account is no longer visible to it either).
fn refusal(want: &Want, seen: &Observed) -> Option<String> {
    let Access::Unlisted { account, why } = want.access else {
        return None;
    };
    match &seen.detail {
        Some(Seen::Known(d)) if d.owner == account => None,
        Some(_) => Some(why.to_string()),
        // Not asked yet: [`next_fact`] asks first.
        None => None,
    }
}

/// The binding cannot use its endpoints (`phase`, `why`): each (old ones of a move included)
/// is deleted and the name unpublished, and nothing is created.
fn take_down(seen: &Observed, phase: Phase, why: String, requeue: bool) -> EndpointPlan {
    let mut plan = EndpointPlan::only(Outcome::Report {
        phase,
        message: why.clone(),
        with_endpoint: false,
        requeue,
    });
    for ep in seen.endpoint.iter().chain(&seen.previous) {
        plan.unpublish = true;
        if seen.endpoint.as_ref() != Some(ep) && state_is(&ep.state, "deleting") {
            // An old endpoint already on its way out.
            continue;
        }
        plan.writes.push(Planned {
            call: Call::DeleteEndpoint { id: ep.id.clone() },
            reason: Reason::Unwanted(why.clone()),
        });
    }
    plan
}

/// Fails a binding whose tagged endpoint is not one pld may change, naming it; the endpoint
/// is left as it is.
fn unmanaged(ep: &Endpoint, why: &str) -> Outcome {
    Outcome::failed(
        format!(
            "endpoint {} carries this binding's tags but is a {} endpoint ({why}): pld leaves \
             it alone; delete it or remove its pld tags",
            ep.id,
            ep.kind.as_str()
        ),
        false,
    )
}

fn create(
    want: &Want,
    seen: &Observed,
    name: &str,
    known_kind: Option<EndpointKind>,
) -> EndpointPlan {
    let kind = match (known_kind, &seen.detail) {
        (Some(k), _) => k,
        (None, Some(Seen::Known(d))) => d.kind,
        (None, Some(Seen::Unknown(why))) => {
            return EndpointPlan::only(cannot_use(name, why));
        }
        (None, None) => return EndpointPlan::only(not_observed("the service's endpoint kind")),
    };
    if !kind.is_managed() {
        return EndpointPlan::only(Outcome::failed(
            format!(
                "{name} offers {} endpoints, which pld does not create",
                kind.as_str()
            ),
            false,
        ));
    }
    if seen.spent_tokens >= TOKEN_ATTEMPTS {
        return EndpointPlan::only(Outcome::failed(
            format!(
                "the first {TOKEN_ATTEMPTS} client tokens of this binding were each answered \
                 with an endpoint deleted since; deleting and creating the binding again starts \
                 a new series"
            ),
            false,
        ));
    }
    // A service in another region is reached with ServiceRegion (interface endpoints only:
    // EC2 API reference, CreateVpcEndpoint; AWS-NOTES "Cross-region").
    let service_region = service_region(name)
        .filter(|r| *r != want.region)
        .map(str::to_string);
    if let (Some(r), false) = (&service_region, kind == EndpointKind::Interface) {
        return EndpointPlan::only(Outcome::failed(
            format!(
                "{name} is in {r} and takes {} endpoints, which connect within their own \
                 region only (only interface endpoints reach another region)",
                kind.as_str()
            ),
            false,
        ));
    }
    let mut req = CreateEndpoint {
        kind,
        vpc_id: want.vpc_id.to_string(),
        service_name: name.to_string(),
        service_region: service_region.clone(),
        subnet_ids: Vec::new(),
        security_group_ids: want.security_group_ids.to_vec(),
        route_table_ids: Vec::new(),
        client_token: String::new(),
        tags: want.tags.clone(),
    };
    if kind == EndpointKind::Gateway {
        match &seen.route_tables {
            Some(Seen::Known(tables)) => {
                req.route_table_ids = tables.iter().map(|t| t.id.clone()).collect();
            }
            Some(Seen::Unknown(why)) => {
                return EndpointPlan::only(Outcome::failed(why.clone(), false))
            }
            None => return EndpointPlan::only(not_observed("the VPC's route tables")),
        }
    } else {
        match placement(want, seen, name, kind) {
            Ok(subnets) => req.subnet_ids = subnets,
            Err(Placement(why)) => return EndpointPlan::only(Outcome::failed(why, false)),
        }
    }
    let mut params = format!("{name}|{:?}|{:?}", req.subnet_ids, req.route_table_ids);
    if let Some(r) = &service_region {
        params.push_str(&format!("|{r}"));
    }
    req.client_token = client_token(
        want.owner,
        want.generation,
        &token_params(&params, seen.spent_tokens),
    );
    EndpointPlan {
        writes: vec![Planned {
            call: Call::CreateEndpoint(req),
            reason: Reason::Missing,
        }],
        outcome: Outcome::Applying,
        unpublish: false,
    }
}

/// The subnets an interface or GWLB endpoint of `service_name` belongs in.
fn placement(
    want: &Want,
    seen: &Observed,
    service_name: &str,
    kind: EndpointKind,
) -> Result<Vec<String>, Placement> {
    let detail = match &seen.detail {
        Some(Seen::Known(d)) => d,
        Some(Seen::Unknown(why)) => {
            return Err(Placement(format!(
                "this VPC's account cannot use {service_name}: {why}"
            )))
        }
        None => return Err(Placement(format!("{service_name}'s AZs were not observed"))),
    };
    let subnets = match &seen.subnets {
        Some(Seen::Known(s)) => s,
        Some(Seen::Unknown(why)) => return Err(Placement(why.clone())),
        None => return Err(Placement("the VPC's subnets were not observed".into())),
    };
    choose_subnets(subnets, want.configured_subnets, &detail.az_ids, kind)
}

fn cannot_use(service_name: &str, why: &str) -> Outcome {
    Outcome::failed(
        format!("this VPC's account cannot use {service_name}: {why}"),
        false,
    )
}

/// A fact [`next_fact`] would have asked for is missing: the caller did not observe it.
fn not_observed(what: &str) -> Outcome {
    Outcome::failed(format!("{what} was not observed"), false)
}

#[cfg(test)]
mod tests;
