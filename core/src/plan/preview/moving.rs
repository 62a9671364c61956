//! What a register that moves a live service (to another load balancer, or another VPC) means
//! for the consumers bound to it: each consumer's agent runs [`endpoint::plan_endpoint`] (with
//! its move planner, [`crate::plan::moves`]) round after round as the move goes — the endpoint
//! to the new endpoint service, the name flipped to it once it is available, the old endpoint
//! deleted once the flip has been in sync for the record's TTL — each round's create taken as
//! made and available; the provider's agent accepts the movers ([`super::connect`]'s provider
//! side) and deletes the endpoint service the service moved off once no consumer connects
//! ([`service::plan_drained`]), then the front it built on an ALB ([`front::plan_teardown`]).

use pld_proto::v1::{object, Agent, Binding, Kind, Service};

use super::connect::{az_fit, provider_side, quota, Connecting};
use super::seen::{self, endpoint_kind};
use super::{Preview, ProblemKind, Severity, Side};
use crate::access::principals_allow;
use crate::aws::types::{
    fqdn, same_load_balancer, Endpoint, EndpointKind, EndpointService, Listener, LoadBalancer,
    LoadBalancerKind, Protocol, ServiceDetail, Tags, TargetGroup, TargetType,
};
use crate::aws::Call;
use crate::catalog::{binding_key, Catalog};
use crate::plan::endpoint::{self, Access, Observed, Outcome, Target};
use crate::plan::front::{front_names, plan_teardown, FrontBuilt};
use crate::plan::moves::{Flip, MoveStep};
use crate::plan::ownership::Ownership;
use crate::plan::placement::choose_subnets;
use crate::plan::records::DnsBatch;
use crate::plan::service;
use crate::plan::{Planned, Reason, Seen, Step};
use crate::validate::{self, LoadBalancerType};

/// The id a plan gives the endpoint a mover's agent would create, where a later step names it.
const NEW_ENDPOINT: &str = "(the new endpoint)";
/// The addresses that endpoint would get.
const NEW_ADDRESSES: &str = "(the new endpoint's addresses)";

/// What a register plan knows of a move: the service as the catalog holds it, and where its
/// new endpoint service goes.
pub(super) struct Move<'a> {
    /// The service as the catalog holds it now (on the load balancer it moves off).
    pub existing: &'a Service,
    /// The service as it is put.
    pub service: &'a Service,
    /// The agent of the VPC the service is offered from after the move.
    pub provider: &'a Agent,
    /// The new endpoint service's name, or the id a plan gives it.
    pub endpoint_service: &'a str,
    /// The AZ IDs the new endpoint service spans: its load balancer's, as its agent last read
    /// them (an ALB's front NLB spans the ALB's subnets); `None` when they were not read.
    pub az_ids: Option<Vec<String>>,
}

/// Plans each bound consumer's move and the provider's part in them.
pub(super) fn plan(preview: &mut Preview, catalog: &Catalog, m: &Move) {
    let bound = catalog.list(Kind::Binding, "", "", &m.service.name);
    let mut connecting = Vec::new();
    for o in &bound {
        let Some(object::Object::Binding(b)) = &o.object else {
            continue;
        };
        if let Some(c) = consumer(preview, catalog, m, b) {
            connecting.push(c);
        }
    }
    provider_side(
        preview,
        m.service,
        m.provider,
        endpoint_service_id(m.endpoint_service),
        &connecting,
    );
    retire(preview, catalog, m);
}

/// The id of endpoint service `name` (its name ends in it).
fn endpoint_service_id(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// One bound consumer's move: its agent's steps; the connection its new endpoint asks for.
fn consumer(preview: &mut Preview, catalog: &Catalog, m: &Move, b: &Binding) -> Option<Connecting> {
    let vpc = b.consumer_vpc_id.as_str();
    let Some(agent) = catalog.agent(vpc) else {
        preview.problem(
            Severity::Warning,
            ProblemKind::UnknownVpc,
            "",
            format!(
                "no agent has registered {vpc}, bound to {}: nothing moves it, and the old \
                 endpoint service cuts it when the provider's drain grace period is over",
                m.service.name
            ),
        );
        return None;
    };
    let account = agent.account_id.as_str();
    // One the new principals leave out is rejected, not moved (the register plan says so).
    if !principals_allow(
        &m.service.allowed_principals,
        Some(&m.provider.account_id),
        account,
    ) {
        return None;
    }
    let Some(facts) = &agent.facts else {
        preview.problem(
            Severity::Warning,
            ProblemKind::UnknownVpc,
            account,
            format!(
                "the agent of {vpc} has not reported its VPC's facts yet: the plan cannot show \
                 its move"
            ),
        );
        return None;
    };
    let subnets = seen::subnets(vpc, facts);
    let kind = endpoint_kind(m.service);
    let detail = ServiceDetail {
        name: m.endpoint_service.to_string(),
        kind,
        // Not read: as far as the plan knows, wherever the consumer is.
        az_ids: m.az_ids.clone().unwrap_or_else(|| {
            let mut azs: Vec<String> = subnets.iter().map(|s| s.az_id.clone()).collect();
            azs.sort();
            azs.dedup();
            azs
        }),
        owner: m.provider.account_id.clone(),
        acceptance_required: true,
    };
    if choose_subnets(&subnets, &agent.endpoint_subnet_ids, &detail.az_ids, kind).is_err() {
        let why = az_fit(
            &m.service.name,
            vpc,
            agent,
            facts,
            &detail,
            Some(m.provider),
        );
        preview.problem(
            Severity::Error,
            ProblemKind::AzFit,
            account,
            format!(
                "the move stalls with {vpc} on its old endpoint, which the provider cuts when \
                 its drain grace period is over: {why}"
            ),
        );
    }
    let key = binding_key(&m.service.name, vpc);
    let own = Ownership::new(catalog.cluster_id().unwrap_or("pld"), vpc);
    let owner = own.binding(&key);
    let target = Target::Service {
        name: m.endpoint_service.to_string(),
        kind: None,
    };
    let want = endpoint::Want {
        service: &m.service.name,
        target: &target,
        vpc_id: vpc,
        region: &agent.region,
        configured_subnets: &agent.endpoint_subnet_ids,
        security_group_ids: &[],
        owner: &owner,
        tags: &Tags::new(),
        generation: 0,
        access: Access::Listed,
    };
    let old = old_endpoint(b, vpc, kind);
    let name = fqdn(&format!("{}.{}", m.service.name, agent.dns_zone));
    let records = match &old {
        Some(ep) if kind == EndpointKind::Interface => {
            DnsBatch::default().records_for(&name, &ep.addresses, &owner)
        }
        _ => Vec::new(),
    };
    let mut seen = Observed {
        previous: old.into_iter().collect(),
        published: DnsBatch::published(&name, &records, &owner),
        detail: Some(Seen::Known(detail)),
        subnets: Some(Seen::Known(subnets)),
        route_tables: Some(Seen::Known(seen::route_tables(vpc, facts))),
        ..Observed::default()
    };
    let mut steps: Vec<Step> = Vec::new();
    let mut created = None;
    // Creating, then (the new endpoint available) the flip, then (the flip in sync for the
    // TTL) retiring: one round each, as the agent's passes go.
    for _ in 0..3 {
        let plan = endpoint::plan_endpoint(&want, &seen);
        steps.extend(plan.writes.iter().map(Planned::step));
        let made = plan.writes.iter().find_map(|w| match &w.call {
            Call::CreateEndpoint(r) => Some(Endpoint {
                id: NEW_ENDPOINT.into(),
                vpc_id: r.vpc_id.clone(),
                service_name: r.service_name.clone(),
                kind: r.kind,
                state: "available".into(),
                subnet_ids: r.subnet_ids.clone(),
                route_table_ids: r.route_table_ids.clone(),
                dns_names: Vec::new(),
                addresses: vec![NEW_ADDRESSES.into()],
                tags: r.tags.clone(),
            }),
            _ => None,
        });
        if let Some(made) = made {
            created = Some(made.clone());
            seen.endpoint = Some(made);
            continue;
        }
        let flips = match &plan.outcome {
            Outcome::Publish => true,
            Outcome::Migrate(mv) => mv.step == MoveStep::Flipping,
            _ => false,
        };
        let Some(next) = seen.endpoint.clone().filter(|_| flips) else {
            break;
        };
        let mut dns = DnsBatch::default();
        match dns.upsert(&name, &next.addresses, &records, &owner, false) {
            Ok(_) => steps.extend(dns.steps),
            Err(why) => {
                preview.problem(Severity::Error, ProblemKind::NameClash, account, why);
                break;
            }
        }
        seen.published = next.addresses.clone();
        seen.flip = Flip::Drained;
    }
    if created.is_some() {
        quota(preview, vpc, account, facts, 1);
    }
    preview.steps(account, &agent.region, vpc, Side::Consumer, steps);
    (created.is_some() && kind != EndpointKind::Gateway)
        .then(|| (account.to_string(), vpc.to_string(), approval(b)))
}

/// The binding's approval as the catalog holds it.
fn approval(b: &Binding) -> pld_proto::v1::Approval {
    pld_proto::v1::Approval::try_from(b.approval).unwrap_or_default()
}

/// The endpoint a bound consumer has now, as its agent last reported it; `None` before it
/// has one.
fn old_endpoint(b: &Binding, vpc: &str, kind: EndpointKind) -> Option<Endpoint> {
    let status = b.status.as_ref()?;
    if status.endpoint_id.is_empty() {
        return None;
    }
    // What is not available serves no one, whatever it is (the planner deletes it at once).
    let serving = matches!(status.phase.as_str(), "ready" | "migrating" | "publishing");
    Some(Endpoint {
        id: status.endpoint_id.clone(),
        vpc_id: vpc.to_string(),
        service_name: String::new(),
        kind,
        state: if serving { "available" } else { "failed" }.into(),
        subnet_ids: Vec::new(),
        route_table_ids: Vec::new(),
        dns_names: Vec::new(),
        addresses: status.addresses.clone(),
        tags: Tags::new(),
    })
}

/// The provider's side once the consumers have moved: the old endpoint service deleted by the
/// agent of the VPC it is in, then the front that agent built when it was on an ALB.
fn retire(preview: &mut Preview, catalog: &Catalog, m: &Move) {
    let Some(status) = m.existing.status.as_ref() else {
        return;
    };
    if status.endpoint_service_name.is_empty() {
        return;
    }
    let Some(agent) = catalog.agent(&m.existing.vpc_id) else {
        return;
    };
    let es = super::register::reported(status);
    // Once drained: the endpoint connections are those of the consumers that moved.
    let mut writes: Vec<Planned> = service::plan_drained(&es, &[]).into_iter().collect();
    writes.extend(old_front(catalog, m, &es));
    let steps = writes.iter().map(Planned::step).collect();
    preview.steps(
        &agent.account_id,
        &agent.region,
        &agent.vpc_id,
        Side::Provider,
        steps,
    );
}

/// The teardown of the front the provider built for the service on its ALB, which it moves
/// off: a listener and a target group per port the service had, then the NLB.
fn old_front(catalog: &Catalog, m: &Move, es: &EndpointService) -> Vec<Planned> {
    let on_alb = matches!(
        validate::load_balancer_arn("service.load_balancer_arn", &m.existing.load_balancer_arn),
        Ok(LoadBalancerType::Application)
    );
    let Some(nlb_arn) = es
        .load_balancer_arns
        .iter()
        .find(|a| !same_load_balancer(a, &m.existing.load_balancer_arn))
    else {
        return Vec::new();
    };
    // Moving to another port set on the same ALB keeps its front.
    if !on_alb || same_load_balancer(&m.existing.load_balancer_arn, &m.service.load_balancer_arn) {
        return Vec::new();
    }
    let own = Ownership::new(catalog.cluster_id().unwrap_or("pld"), &m.existing.vpc_id);
    let names = front_names(
        &own.service(&m.existing.name),
        &m.existing.load_balancer_arn,
    );
    let mut built = FrontBuilt {
        load_balancer: Some(LoadBalancer {
            arn: nlb_arn.clone(),
            name: names.load_balancer.clone(),
            kind: LoadBalancerKind::Network,
            internal: true,
            vpc_id: m.existing.vpc_id.clone(),
            az_ids: es.az_ids.clone(),
            subnet_ids: Vec::new(),
            state: "active".into(),
        }),
        ..FrontBuilt::default()
    };
    for port in m
        .existing
        .ports
        .iter()
        .filter_map(|p| u16::try_from(*p).ok())
    {
        let group = names.group(port);
        built.groups.push(TargetGroup {
            arn: format!("(the target group {group})"),
            name: group.clone(),
            target_type: TargetType::Alb,
            protocol: Protocol::Tcp,
            port,
            vpc_id: m.existing.vpc_id.clone(),
            health_check: crate::aws::types::HealthCheck {
                protocol: Protocol::Http,
                path: String::new(),
                matcher: String::new(),
            },
            load_balancer_arns: vec![nlb_arn.clone()],
        });
        built.listeners.push((
            Listener {
                arn: format!("(the listener on port {port} of {})", names.load_balancer),
                load_balancer_arn: nlb_arn.clone(),
                port,
                protocol: Protocol::Tcp,
                target_group_arn: Some(format!("(the target group {group})")),
            },
            true,
        ));
    }
    plan_teardown(&built, &Reason::Orphan)
}
