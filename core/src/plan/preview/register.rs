//! `pld plan services register …`: what the provider's agent does for a service put in the
//! catalog — its own decisions ([`service::plan_endpoint_service`] on what the catalog says
//! exists, [`service::plan_permissions`] against the principals allowed now) — and what the
//! change means for the consumers already bound to it.

use std::collections::BTreeSet;

use pld_proto::v1::{Acceptance, Agent, AgentState, Service};

use super::{Preview, PreviewError, ProblemKind, Severity, Side};
use crate::access::principals_allow;
use crate::aws::types::{same_load_balancer, EndpointService, SupportedRegion, Tags};
use crate::catalog::Catalog;
use crate::plan::ownership::Ownership;
use crate::plan::service::{self, ServiceWant};
use crate::plan::Planned;
use crate::validate::{self, LoadBalancerType};

/// The id a plan gives the endpoint service it would create, where a later step names it.
const NEW_ENDPOINT_SERVICE: &str = "(the new endpoint service)";

/// Plans putting `service` in the catalog (a new service, or a change to one).
///
/// # Errors
/// The service is not valid, as a put of it would be refused.
pub fn register(catalog: &Catalog, service: &Service) -> Result<Preview, PreviewError> {
    validate::service(service).map_err(|e| PreviewError::Invalid(e.to_string()))?;
    let mut preview = Preview::default();
    let Some(provider) = catalog.agent(&service.vpc_id) else {
        preview.problem(
            Severity::Warning,
            ProblemKind::UnknownVpc,
            "",
            format!(
                "no agent has registered {}: the service goes into the catalog, and nothing \
                 makes its endpoint service until `pld agent` runs in that VPC",
                service.vpc_id
            ),
        );
        return Ok(preview);
    };
    let account = provider.account_id.as_str();
    if provider.state == AgentState::Expired as i32 {
        preview.problem(
            Severity::Warning,
            ProblemKind::UnknownVpc,
            account,
            format!(
                "the agent of {} stopped renewing its lease: nothing is made until it is back",
                service.vpc_id
            ),
        );
    }
    // The ARN says where the load balancer is: an endpoint service is made in the load
    // balancer's own account and region (CreateVpcEndpointServiceConfiguration takes
    // only the caller's load balancers).
    let parts: Vec<&str> = service.load_balancer_arn.splitn(6, ':').collect();
    let field = |i: usize| parts.get(i).copied().unwrap_or_default();
    let (lb_region, lb_account) = (field(3), field(4));
    if lb_account != account {
        preview.problem(
            Severity::Error,
            ProblemKind::Refused,
            account,
            format!(
                "the load balancer is in account {lb_account}, and {}'s agent acts in {account}: \
                 an endpoint service is made on the caller's own load balancers only",
                service.vpc_id
            ),
        );
    }
    if lb_region != provider.region {
        preview.problem(
            Severity::Error,
            ProblemKind::Refused,
            account,
            format!(
                "the load balancer is in {lb_region}, and {}'s agent in {}",
                service.vpc_id, provider.region
            ),
        );
    }
    let existing = catalog.service(&service.name);
    let existing_es = existing.and_then(|e| endpoint_service(e, &service.load_balancer_arn));
    let own = Ownership::new(catalog.cluster_id().unwrap_or("pld"), &service.vpc_id);
    let owner = own.service(&service.name);
    let tags: Tags = own.tags(&owner);
    let mut steps = Vec::new();
    // On an ALB, the endpoint service goes on the NLB its agent builds in front.
    let mut load_balancer_arn = service.load_balancer_arn.clone();
    let on_alb = matches!(
        validate::load_balancer_arn("service.load_balancer_arn", &service.load_balancer_arn),
        Ok(LoadBalancerType::Application)
    );
    if on_alb && existing_es.is_none() && preview.is_clean() {
        match super::front::plan(&mut preview, provider, service, &owner, &tags) {
            Some(front) => {
                steps.extend(front.steps);
                load_balancer_arn = front.load_balancer_arn;
            }
            None => {
                preview.steps(
                    account,
                    &provider.region,
                    &service.vpc_id,
                    Side::Provider,
                    steps,
                );
                return Ok(preview);
            }
        }
    } else if !on_alb && preview.is_clean() {
        missing_load_balancer(&mut preview, provider, service);
    }
    let want = ServiceWant {
        load_balancer_arn: &load_balancer_arn,
        regions: &service.regions,
        owner: &owner,
        tags: &tags,
        generation: 0,
        spent_tokens: 0,
    };
    match service::plan_endpoint_service(&want, existing_es.as_ref()) {
        Ok(writes) => steps.extend(writes.iter().map(Planned::step)),
        Err(why) => preview.problem(Severity::Error, ProblemKind::Refused, account, why),
    }
    // Principals are synced on the endpoint service it made (none allowed at creation), or
    // from those the catalog held.
    let (id, current) = match (&existing_es, existing) {
        (Some(es), Some(e)) => (es.id.clone(), e.allowed_principals.clone()),
        _ => (NEW_ENDPOINT_SERVICE.to_string(), Vec::new()),
    };
    if let Some(change) = service::plan_permissions(&id, &service.allowed_principals, &current) {
        steps.push(Planned::step(&change));
    }
    // A new endpoint service is created offered to its regions; one there is changed.
    if let Some(change) = existing_es
        .as_ref()
        .and_then(|es| crate::plan::regions::plan_regions(es, &service.regions))
    {
        steps.push(Planned::step(&change));
    }
    if let Some(e) = existing {
        consumers(&mut preview, catalog, service, e);
    }
    let moving = existing.filter(|e| {
        existing_es.is_none()
            && e.status
                .as_ref()
                .is_some_and(|st| !st.endpoint_service_name.is_empty())
    });
    if steps.is_empty() {
        preview.problem(
            Severity::Note,
            ProblemKind::NoChange,
            account,
            format!(
                "{} is registered so already as far as AWS goes: the change is the catalog's",
                service.name
            ),
        );
    }
    preview.steps(
        account,
        &provider.region,
        &service.vpc_id,
        Side::Provider,
        steps,
    );
    // Once the new endpoint service is made, the consumers move to it.
    if let Some(existing) = moving {
        let m = super::moving::Move {
            existing,
            service,
            provider,
            endpoint_service: NEW_ENDPOINT_SERVICE,
            az_ids: az_ids(provider, &service.load_balancer_arn),
        };
        super::moving::plan(&mut preview, catalog, &m);
    }
    preview.check_rates();
    Ok(preview)
}

/// The endpoint service the catalog says `existing` has on `load_balancer_arn`, if any.
fn endpoint_service(existing: &Service, load_balancer_arn: &str) -> Option<EndpointService> {
    let status = existing.status.as_ref()?;
    // The service stays on its load balancer (an ALB's endpoint service is on the NLB pld
    // built in front, which the status names instead), or names one its endpoint service is on.
    let stays = same_load_balancer(&existing.load_balancer_arn, load_balancer_arn)
        || status
            .load_balancer_arns
            .iter()
            .any(|arn| same_load_balancer(arn, load_balancer_arn));
    if status.endpoint_service_name.is_empty() || !stays {
        return None;
    }
    Some(reported(status))
}

/// The endpoint service a service's status reports.
pub(super) fn reported(status: &pld_proto::v1::ServiceStatus) -> EndpointService {
    EndpointService {
        id: status
            .endpoint_service_name
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_string(),
        name: status.endpoint_service_name.clone(),
        state: status.state.clone(),
        load_balancer_arns: status.load_balancer_arns.clone(),
        // pld's endpoint services always ask (plan_endpoint_service turns it back on).
        acceptance_required: true,
        az_ids: status.az_ids.clone(),
        supported_regions: status
            .regions
            .iter()
            .map(|r| SupportedRegion {
                region: r.region.clone(),
                state: r.state.clone(),
            })
            .collect(),
        tags: Tags::new(),
    }
}

/// What the change means for the consumers already bound: those whose account the new
/// principals leave out lose their connection, and those in a region it is no longer
/// offered to. (A new load balancer moves them:
/// [`super::moving`].)
fn consumers(preview: &mut Preview, catalog: &Catalog, service: &Service, existing: &Service) {
    let provider_account = catalog.agent(&service.vpc_id).map(|a| a.account_id.clone());
    let bound = catalog.list(pld_proto::v1::Kind::Binding, "", "", &service.name);
    let mut losing = BTreeSet::new();
    let mut stranded = BTreeSet::new();
    // The region the service is offered in whatever it lists: its load balancer's.
    let home = service
        .load_balancer_arn
        .split(':')
        .nth(3)
        .unwrap_or_default();
    for o in &bound {
        let Some(pld_proto::v1::object::Object::Binding(b)) = &o.object else {
            continue;
        };
        let Some(agent) = catalog.agent(&b.consumer_vpc_id) else {
            continue;
        };
        if agent.region != home && !service.regions.contains(&agent.region) {
            stranded.insert(format!("{} ({})", b.consumer_vpc_id, agent.region));
        }
        if !principals_allow(
            &service.allowed_principals,
            provider_account.as_deref(),
            &agent.account_id,
        ) {
            losing.insert(format!("{} ({})", b.consumer_vpc_id, agent.account_id));
        }
    }
    if !losing.is_empty() {
        preview.problem(
            Severity::Error,
            ProblemKind::PrincipalNotAllowed,
            provider_account.as_deref().unwrap_or_default(),
            format!(
                "the new principals leave out bound consumers {}: the provider's agent rejects \
                 their connections and their bindings fail",
                losing.into_iter().collect::<Vec<_>>().join(", ")
            ),
        );
    }
    if !stranded.is_empty() {
        preview.problem(
            Severity::Error,
            ProblemKind::RegionNotOffered,
            provider_account.as_deref().unwrap_or_default(),
            format!(
                "{} would no longer be offered where bound consumers {} are: their bindings \
                 fail and their endpoints go (keep the regions listed, or `pld services offer {} \
                 --region REGION` after)",
                service.name,
                stranded.into_iter().collect::<Vec<_>>().join(", "),
                service.name
            ),
        );
    }
    if Acceptance::try_from(service.acceptance) != Acceptance::try_from(existing.acceptance) {
        preview.problem(
            Severity::Note,
            ProblemKind::AcceptanceManual,
            provider_account.as_deref().unwrap_or_default(),
            "acceptance changes for connections asked from now on; those accepted stay".into(),
        );
    }
}

/// An NLB or GWLB that is not among the load balancers the provider's agent last read in its
/// VPC: CreateVpcEndpointServiceConfiguration would not find it.
fn missing_load_balancer(preview: &mut Preview, provider: &Agent, service: &Service) {
    let Some(facts) = &provider.facts else {
        return;
    };
    let known = facts
        .load_balancers
        .iter()
        .any(|lb| same_load_balancer(&lb.arn, &service.load_balancer_arn));
    if known || !facts.load_balancers_note.is_empty() {
        return;
    }
    preview.problem(
        Severity::Error,
        ProblemKind::Refused,
        &provider.account_id,
        format!(
            "{} is not among the load balancers of {} its agent last read (one made since is \
             read on the agent's next resync): the endpoint service cannot be made on it",
            service.load_balancer_arn, service.vpc_id
        ),
    );
}

/// The AZ IDs of `load_balancer_arn` as `provider`'s agent last read it: those an endpoint
/// service on it spans (on an ALB, the front NLB built in the ALB's subnets spans the same).
fn az_ids(provider: &Agent, load_balancer_arn: &str) -> Option<Vec<String>> {
    provider
        .facts
        .as_ref()?
        .load_balancers
        .iter()
        .find(|lb| same_load_balancer(&lb.arn, load_balancer_arn))
        .map(|lb| lb.az_ids.clone())
}
