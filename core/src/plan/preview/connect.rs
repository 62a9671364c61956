//! `pld plan connect SERVICE --vpc VPC...`: for each consumer VPC, the endpoint its agent would
//! make ([`endpoint::plan_endpoint`] on the VPC's reported subnets and route tables and the
//! service's reported AZs), the zone and name it would publish ([`zone::plan_zone`],
//! [`DnsBatch::upsert`] against the names its zone holds that are not pld's), and the
//! provider's decision on the connection ([`connections::decide`]).

use std::collections::BTreeMap;

use pld_proto::v1::{Acceptance, Agent, AgentState, Approval, Binding, Service, VpcFacts};

use super::{seen, Preview, PreviewError, ProblemKind, Severity, Side};
use crate::access::principals_allow;
use crate::aws::types::{fqdn, Connection, EndpointKind, HostedZone, ServiceDetail, Tags};
use crate::aws::Call;
use crate::catalog::{binding_key, Catalog};
use crate::plan::endpoint::{self, Access, Observed, Outcome, Target, Want};
use crate::plan::ownership::Ownership;
use crate::plan::placement::{choose_subnets, Placement};
use crate::plan::records::DnsBatch;
use crate::plan::zone::{self, ZoneOutcome, ZoneSeen, ZoneWant};
use crate::plan::{connections, target, Planned, Seen, Step};
use crate::Phase;

/// The id a plan gives the endpoint it would create, where a later step names it.
const NEW_ENDPOINT: &str = "(the new endpoint)";

/// Plans binding `service` to each of `vpc_ids`.
///
/// # Errors
/// An unknown service, or a VPC list that is empty, too long or not VPC ids.
pub fn connect(
    catalog: &Catalog,
    service: &str,
    vpc_ids: &[String],
) -> Result<Preview, PreviewError> {
    let svc = super::service_for(catalog, service, vpc_ids)?;
    let provider = svc.and_then(|s| catalog.agent(&s.vpc_id));
    let mut preview = Preview::default();
    if let (Some(s), None) = (svc, provider) {
        preview.problem(
            Severity::Warning,
            ProblemKind::UnknownVpc,
            "",
            format!(
                "no agent has registered {}, the provider VPC of {}: nothing makes its endpoint \
                 service, and the plan cannot check AZs or regions against it",
                s.vpc_id, s.name
            ),
        );
    }
    let mut seen_vpcs = std::collections::BTreeSet::new();
    let mut connecting = Vec::new();
    for vpc in vpc_ids {
        if seen_vpcs.insert(vpc.as_str()) {
            connecting.extend(consumer(&mut preview, catalog, service, svc, provider, vpc));
        }
    }
    if let (Some(s), Some(p)) = (svc, provider) {
        let service_id = s
            .status
            .as_ref()
            .and_then(|st| st.endpoint_service_name.rsplit('.').next())
            .unwrap_or_default();
        provider_side(&mut preview, s, p, service_id, &connecting);
    }
    preview.check_rates();
    Ok(preview)
}

/// A consumer whose endpoint would ask the provider to connect: its account, its VPC, and
/// the binding's approval (a new binding's is unspecified).
pub(super) type Connecting = (String, String, Approval);

/// One consumer VPC's part of the plan; the connection its endpoint would ask for, if any.
fn consumer(
    preview: &mut Preview,
    catalog: &Catalog,
    service: &str,
    svc: Option<&Service>,
    provider: Option<&Agent>,
    vpc: &str,
) -> Option<Connecting> {
    let Some(agent) = catalog.agent(vpc) else {
        preview.problem(
            Severity::Error,
            ProblemKind::UnknownVpc,
            "",
            format!(
                "no agent has registered {vpc}: nothing would connect it (run `pld agent` in \
                 that VPC)"
            ),
        );
        return None;
    };
    let account = agent.account_id.as_str();
    let Some(facts) = &agent.facts else {
        preview.problem(
            Severity::Error,
            ProblemKind::UnknownVpc,
            account,
            format!(
                "the agent of {vpc} has not reported its VPC's facts yet (an agent older than \
                 this controller, or one that cannot describe its VPC): the plan cannot see it"
            ),
        );
        return None;
    };
    if agent.state == AgentState::Expired as i32 {
        preview.problem(
            Severity::Warning,
            ProblemKind::UnknownVpc,
            account,
            format!(
                "the agent of {vpc} stopped renewing its lease: the plan uses the facts it last                  reported, and nothing is made until it is back"
            ),
        );
    }
    let key = binding_key(service, vpc);
    if let Some(existing) = catalog.binding(&key) {
        let phase = existing
            .status
            .as_ref()
            .map_or("not reported yet", |s| s.phase.as_str());
        preview.problem(
            Severity::Note,
            ProblemKind::NoChange,
            account,
            format!("{vpc} is already bound to {service} (phase {phase})"),
        );
        return None;
    }
    if let (Some(s), Some(p)) = (svc, provider) {
        if !principals_allow(&s.allowed_principals, Some(&p.account_id), account) {
            preview.problem(
                Severity::Error,
                ProblemKind::PrincipalNotAllowed,
                account,
                format!(
                    "{service} allows {}; account {account} of {vpc} is not among them: the \
                     catalog refuses the binding (the provider adds arn:aws:iam::{account}:root \
                     to the service's principals)",
                    if s.allowed_principals.is_empty() {
                        "no other account".to_string()
                    } else {
                        s.allowed_principals.join(", ")
                    }
                ),
            );
        }
    }
    let binding = Binding {
        service: service.to_string(),
        consumer_vpc_id: vpc.to_string(),
        approval: Approval::Unspecified as i32,
        ..Binding::default()
    };
    let target = target::target(&binding, svc, &agent.region);
    let name = match &target {
        Target::Service { name, .. } => name.clone(),
        Target::NotOffered(why) => {
            preview.problem(
                Severity::Error,
                ProblemKind::RegionNotOffered,
                account,
                format!("{vpc}: {why}"),
            );
            return None;
        }
        Target::Waiting(why) | Target::Missing(why) | Target::Refused(why) => {
            preview.problem(
                Severity::Warning,
                ProblemKind::ProviderNotReady,
                account,
                format!("{vpc}: {why}; the binding waits and its agent does nothing until then"),
            );
            return None;
        }
    };
    let subnets = seen::subnets(vpc, facts);
    let detail = seen::consumer_detail(service, svc, provider, agent, &subnets, &name);
    if detail.kind != EndpointKind::Gateway {
        if let Err(Placement(_)) = choose_subnets(
            &subnets,
            &agent.endpoint_subnet_ids,
            &detail.az_ids,
            detail.kind,
        ) {
            preview.problem(
                Severity::Error,
                ProblemKind::AzFit,
                account,
                az_fit(service, vpc, agent, facts, &detail, provider),
            );
        }
    }
    let own = Ownership::new(catalog.cluster_id().unwrap_or("pld"), vpc);
    let owner = own.binding(&key);
    let unlisted = target::unlisted(svc, account);
    let want = Want {
        service,
        target: &target,
        vpc_id: vpc,
        region: &agent.region,
        configured_subnets: &agent.endpoint_subnet_ids,
        security_group_ids: &[],
        owner: &owner,
        tags: &Tags::new(),
        generation: 0,
        access: match &unlisted {
            Some(why) => Access::Unlisted { account, why },
            None => Access::Listed,
        },
    };
    let seen = Observed {
        detail: Some(Seen::Known(detail.clone())),
        subnets: Some(Seen::Known(subnets)),
        route_tables: Some(Seen::Known(seen::route_tables(vpc, facts))),
        ..Observed::default()
    };
    let plan = endpoint::plan_endpoint(&want, &seen);
    let creates = plan
        .writes
        .iter()
        .filter(|w| matches!(&w.call, Call::CreateEndpoint(r) if r.kind != EndpointKind::Gateway))
        .count();
    let mut steps: Vec<Step> = plan.writes.iter().map(Planned::step).collect();
    // An AZ misfit and a principal not allowed are named above (with each account's AZ names,
    // with what the provider adds); any other refusal in the planner's words.
    let misfit = preview.problems.iter().any(|p| {
        matches!(
            p.kind,
            ProblemKind::AzFit | ProblemKind::PrincipalNotAllowed
        ) && p.account == account
    });
    if let Outcome::Report {
        phase: Phase::Failed | Phase::Rejected,
        message,
        ..
    } = plan.outcome
    {
        if !misfit {
            preview.problem(Severity::Error, ProblemKind::Refused, account, message);
        }
    }
    if creates > 0 {
        quota(preview, vpc, account, facts, creates);
        if detail.kind == EndpointKind::Interface {
            steps.extend(publish(preview, &own, &owner, agent, facts, service));
        }
    }
    preview.steps(account, &agent.region, vpc, Side::Consumer, steps);
    (creates > 0 && detail.kind != EndpointKind::Gateway)
        .then(|| (account.to_string(), vpc.to_string(), Approval::Unspecified))
}

/// A quota finding when `creates` more interface or GWLB endpoints would take `vpc` past the
/// quota its agent reported.
pub(super) fn quota(
    preview: &mut Preview,
    vpc: &str,
    account: &str,
    facts: &VpcFacts,
    creates: usize,
) {
    let after = facts.endpoints as usize + creates;
    if after <= facts.endpoint_quota as usize {
        return;
    }
    let note = if facts.quota_note.is_empty() {
        String::new()
    } else {
        format!(" ({})", facts.quota_note)
    };
    preview.problem(
        Severity::Error,
        ProblemKind::QuotaReached,
        account,
        format!(
            "{vpc} has {} interface and GWLB endpoints of the {} its quota allows{note}: \
             CreateVpcEndpoint is refused with VpcEndpointLimitExceeded (raise Service \
             Quotas vpc L-29B6F2EB, or remove endpoints)",
            facts.endpoints, facts.endpoint_quota
        ),
    );
}

/// Why the consumer's subnets miss the service's AZs, with each account's names of them: AZ
/// names differ per account, so people comparing consoles need both.
pub(super) fn az_fit(
    service: &str,
    vpc: &str,
    agent: &Agent,
    facts: &VpcFacts,
    detail: &ServiceDetail,
    provider: Option<&Agent>,
) -> String {
    let names = |facts: Option<&VpcFacts>| -> BTreeMap<String, String> {
        facts
            .map(|f| {
                f.subnets
                    .iter()
                    .map(|s| (s.az_id.clone(), s.az_name.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let theirs = names(provider.and_then(|p| p.facts.as_ref()));
    let ours = names(Some(facts));
    let named = |az: &str, map: &BTreeMap<String, String>, account: &str| match map.get(az) {
        Some(n) if !n.is_empty() => format!("{az} ({n} to {account})"),
        _ => az.to_string(),
    };
    let provider_account = provider.map_or("the provider", |p| p.account_id.as_str());
    let offered: Vec<String> = detail
        .az_ids
        .iter()
        .map(|az| named(az, &theirs, provider_account))
        .collect();
    let mut usable: Vec<String> = facts
        .subnets
        .iter()
        .filter(|s| {
            agent.endpoint_subnet_ids.is_empty() || agent.endpoint_subnet_ids.contains(&s.id)
        })
        .map(|s| named(&s.az_id, &ours, &agent.account_id))
        .collect();
    usable.sort();
    usable.dedup();
    let limited = if agent.endpoint_subnet_ids.is_empty() {
        ""
    } else {
        " configured"
    };
    format!(
        "{service} is offered in {}; {vpc}'s{limited} subnets are in {}: no AZ in common, so \
         CreateVpcEndpoint has no subnet to use (add a subnet in an offered AZ, or have the \
         provider's load balancer span one of these)",
        if offered.is_empty() {
            "no AZ yet".to_string()
        } else {
            offered.join(", ")
        },
        if usable.is_empty() {
            "no AZ".to_string()
        } else {
            usable.join(", ")
        }
    )
}

/// The zone and name the consumer's agent would publish once the endpoint is available.
fn publish(
    preview: &mut Preview,
    own: &Ownership,
    owner: &crate::plan::ownership::Owner,
    agent: &Agent,
    facts: &VpcFacts,
    service: &str,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let zone_name = fqdn(&agent.dns_zone);
    if facts.zone_id.is_empty() && !facts.zone_refused.is_empty() {
        // The agent found a zone of its name in the VPC that is not pld's: it will not publish
        // into it, nor can it make another (Route 53 refuses a second zone of one name in a VPC).
        preview.problem(
            Severity::Error,
            ProblemKind::NameClash,
            &agent.account_id,
            format!("{}: {}", agent.vpc_id, facts.zone_refused),
        );
        return steps;
    }
    if facts.zone_id.is_empty() {
        let want = ZoneWant {
            name: &zone_name,
            pinned: None,
            own,
            publish: true,
            generation: 0,
        };
        let first = zone::plan_zone(&want, &ZoneSeen::InVpc(None));
        steps.extend(first.writes.iter().map(Planned::step));
        if let ZoneOutcome::Creating { .. } = first.outcome {
            let made = HostedZone {
                id: "(the new zone)".into(),
                name: zone_name.clone(),
                vpc_ids: vec![agent.vpc_id.clone()],
                comment: own.zone_comment(),
                caller_reference: own.zone_reference(0, 1),
            };
            let then = zone::plan_zone(&want, &ZoneSeen::Created(made));
            steps.extend(then.writes.iter().map(Planned::step));
        }
    }
    let name = fqdn(&format!("{service}.{}", agent.dns_zone));
    // What the zone holds that is not pld's: enough for the records planner to refuse a clash.
    let foreign: Vec<crate::aws::types::RecordSet> = facts
        .zone_names_not_ours
        .iter()
        .map(|n| crate::aws::types::RecordSet {
            name: n.clone(),
            kind: "A".into(),
            ttl: 0,
            values: Vec::new(),
        })
        .collect();
    let mut dns = DnsBatch::default();
    match dns.upsert(&name, &[NEW_ENDPOINT.to_string()], &foreign, owner, false) {
        Ok(_) => steps.extend(dns.steps),
        Err(why) => preview.problem(
            Severity::Error,
            ProblemKind::NameClash,
            &agent.account_id,
            format!("{}: {why}", agent.vpc_id),
        ),
    }
    steps
}

/// The provider agent's decisions on the new connections to its endpoint service
/// `service_id`, by the service's policy: one accept call for all of them, as its agent makes
/// it when they arrive together.
pub(super) fn provider_side(
    preview: &mut Preview,
    s: &Service,
    provider: &Agent,
    service_id: &str,
    connecting: &[Connecting],
) {
    let acceptance = Acceptance::try_from(s.acceptance).unwrap_or(Acceptance::Auto);
    let policy = connections::Policy {
        acceptance,
        allowed_principals: &s.allowed_principals,
        provider_account: &provider.account_id,
    };
    let asked: Vec<Connection> = connecting
        .iter()
        .map(|(account, vpc, _)| Connection {
            service_id: service_id.to_string(),
            endpoint_id: format!("{NEW_ENDPOINT} of {vpc}"),
            owner: account.clone(),
            state: "pendingAcceptance".into(),
        })
        .collect();
    let claims: Vec<connections::Claim> = asked
        .iter()
        .zip(connecting)
        .map(|(c, (_, _, approval))| connections::Claim {
            endpoint_id: c.endpoint_id.clone(),
            approval: *approval,
        })
        .collect();
    let asked: Vec<&Connection> = asked.iter().collect();
    let decided = connections::decide(service_id, &policy, &claims, &asked);
    let steps: Vec<Step> = decided.writes.iter().map(Planned::step).collect();
    if acceptance == Acceptance::Manual {
        let waiting = connecting
            .iter()
            .filter(|(_, _, approval)| *approval != Approval::Accepted);
        for (_, vpc, _) in waiting {
            preview.problem(
                Severity::Warning,
                ProblemKind::AcceptanceManual,
                &provider.account_id,
                format!(
                    "{} accepts connections by hand: {vpc}'s endpoint waits in \
                     pendingAcceptance until someone runs `pld bindings accept {} --vpc {vpc}`",
                    s.name, s.name
                ),
            );
        }
    }
    if !connecting.is_empty() {
        preview.steps(
            &provider.account_id,
            &provider.region,
            &provider.vpc_id,
            Side::Provider,
            steps,
        );
    }
}
