//! `pld plan disconnect SERVICE --vpc VPC...`: for each consumer VPC, what its agent does once
//! the binding is gone — the same decisions its pass makes for an endpoint whose binding is
//! gone: take the name down ([`DnsBatch::remove`] on the records it published) and delete the
//! endpoint ([`endpoint::plan_orphan`]).

use std::collections::BTreeSet;

use pld_proto::v1::{AgentState, Binding, Service};

use super::{seen, Preview, PreviewError, ProblemKind, Severity, Side};
use crate::aws::types::{fqdn, Endpoint, EndpointKind, Tags};
use crate::catalog::{binding_key, Catalog};
use crate::plan::endpoint;
use crate::plan::ownership::Ownership;
use crate::plan::records::DnsBatch;
use crate::plan::{builtin, Planned};

/// Plans removing `service`'s binding from each of `vpc_ids`.
///
/// # Errors
/// An unknown service, or a VPC list that is empty, too long or not VPC ids.
pub fn disconnect(
    catalog: &Catalog,
    service: &str,
    vpc_ids: &[String],
) -> Result<Preview, PreviewError> {
    let svc = super::service_for(catalog, service, vpc_ids)?;
    let mut preview = Preview::default();
    let mut seen_vpcs = BTreeSet::new();
    for vpc in vpc_ids {
        if seen_vpcs.insert(vpc.as_str()) {
            consumer(&mut preview, catalog, service, svc, vpc);
        }
    }
    preview.check_rates();
    Ok(preview)
}

fn consumer(
    preview: &mut Preview,
    catalog: &Catalog,
    service: &str,
    svc: Option<&Service>,
    vpc: &str,
) {
    let key = binding_key(service, vpc);
    let Some(binding) = catalog.binding(&key) else {
        preview.problem(
            Severity::Note,
            ProblemKind::NoChange,
            "",
            format!("{vpc} is not bound to {service}: nothing to remove"),
        );
        return;
    };
    let Some(agent) = catalog.agent(vpc) else {
        preview.problem(
            Severity::Warning,
            ProblemKind::UnknownVpc,
            "",
            format!(
                "no agent has registered {vpc}: the binding goes from the catalog, and whatever \
                 was made for it stays in AWS until an agent of that VPC runs"
            ),
        );
        return;
    };
    let account = agent.account_id.as_str();
    if agent.state == AgentState::Expired as i32 {
        preview.problem(
            Severity::Warning,
            ProblemKind::UnknownVpc,
            account,
            format!(
                "the agent of {vpc} stopped renewing its lease: its endpoint keeps billing until \
                 the agent is back to delete it"
            ),
        );
    }
    let status = binding.status.clone().unwrap_or_default();
    if status.endpoint_id.is_empty() {
        preview.problem(
            Severity::Note,
            ProblemKind::NoChange,
            account,
            format!(
                "{vpc} has no endpoint for {service} (phase {}): only the binding goes",
                if status.phase.is_empty() {
                    "not reported yet"
                } else {
                    status.phase.as_str()
                }
            ),
        );
        return;
    }
    let kind = kind_of(binding, svc, &agent.region);
    let own = Ownership::new(catalog.cluster_id().unwrap_or("pld"), vpc);
    let owner = own.binding(&key);
    let mut steps = Vec::new();
    // The name first: its agent unpublishes before it deletes, so no resolver is handed an
    // address that is going away.
    if kind == EndpointKind::Interface && !status.dns_name.is_empty() {
        let name = fqdn(&format!("{service}.{}", agent.dns_zone));
        let mut dns = DnsBatch::default();
        let published = dns.records_for(&name, &status.addresses, &owner);
        dns.remove(&name, &published, &owner);
        steps.extend(dns.steps);
    }
    let endpoints = std::iter::once(status.endpoint_id.clone()).chain(
        status
            .migration
            .iter()
            .flat_map(|m| [m.from_endpoint_id.clone(), m.to_endpoint_id.clone()]),
    );
    let mut deleted = BTreeSet::new();
    for id in endpoints.filter(|id| !id.is_empty()) {
        if !deleted.insert(id.clone()) {
            continue;
        }
        let ep = Endpoint {
            id,
            vpc_id: vpc.to_string(),
            service_name: String::new(),
            kind,
            state: status.phase.clone(),
            subnet_ids: Vec::new(),
            route_table_ids: Vec::new(),
            dns_names: Vec::new(),
            addresses: status.addresses.clone(),
            tags: Tags::new(),
        };
        match endpoint::plan_orphan(&ep) {
            Ok(delete) => steps.push(Planned::step(&delete)),
            Err(why) => preview.problem(Severity::Warning, ProblemKind::Refused, account, why),
        }
    }
    let others = catalog
        .list(pld_proto::v1::Kind::Binding, "", vpc, "")
        .len();
    if others <= 1 && kind == EndpointKind::Interface {
        preview.problem(
            Severity::Note,
            ProblemKind::NoChange,
            account,
            format!(
                "{service} is {vpc}'s last binding: its agent then deletes the private zone \
                 {} if pld made it and nothing else is in it (a zone configured by id stays)",
                agent.dns_zone
            ),
        );
    }
    preview.steps(account, &agent.region, vpc, Side::Consumer, steps);
}

/// The kind of endpoint a binding has: its service's, or the built-in AWS service's.
fn kind_of(binding: &Binding, svc: Option<&Service>, region: &str) -> EndpointKind {
    match svc {
        Some(s) => seen::endpoint_kind(s),
        None => builtin::lookup(&binding.service, region)
            .map_or(EndpointKind::Interface, |(_, kind)| kind),
    }
}
