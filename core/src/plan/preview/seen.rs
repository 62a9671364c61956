//! What a consumer's agent would observe, built from the catalog instead of AWS: its VPC's
//! subnets and route tables from the facts it reported, and the service as
//! DescribeVpcEndpointServices would show it. Plans ([`super::connect`]) and cost estimates
//! ([`crate::cost`]) place endpoints on these with the agent's own
//! [`crate::plan::placement::choose_subnets`].

use pld_proto::v1::{Agent, Service, VpcFacts};

use crate::aws::types::{service_region, EndpointKind, RouteTable, ServiceDetail, Subnet};
use crate::plan::builtin;
use crate::validate::{self, LoadBalancerType};

/// The VPC's subnets as DescribeSubnets would list them.
pub fn subnets(vpc: &str, facts: &VpcFacts) -> Vec<Subnet> {
    facts
        .subnets
        .iter()
        .map(|s| Subnet {
            id: s.id.clone(),
            vpc_id: vpc.to_string(),
            az_id: s.az_id.clone(),
            az_name: s.az_name.clone(),
            cidr: s.cidr.clone(),
            ipv6_cidr: (!s.ipv6_cidr.is_empty()).then(|| s.ipv6_cidr.clone()),
        })
        .collect()
}

/// The VPC's route tables as DescribeRouteTables would list them (without their routes).
pub fn route_tables(vpc: &str, facts: &VpcFacts) -> Vec<RouteTable> {
    facts
        .route_tables
        .iter()
        .map(|t| RouteTable {
            id: t.id.clone(),
            vpc_id: vpc.to_string(),
            routes: Vec::new(),
            main: t.main,
            subnet_ids: t.subnet_ids.clone(),
        })
        .collect()
}

/// `service` as the consumer `agent` would see it under `name`: the catalog's service `svc`
/// (offered by `provider`), or, without one, the built-in AWS service of that name.
pub fn consumer_detail(
    service: &str,
    svc: Option<&Service>,
    provider: Option<&Agent>,
    agent: &Agent,
    subnets: &[Subnet],
    name: &str,
) -> ServiceDetail {
    let every_az = || {
        let mut az_ids: Vec<String> = subnets.iter().map(|s| s.az_id.clone()).collect();
        az_ids.sort();
        az_ids.dedup();
        az_ids
    };
    match svc {
        // A service in another region is described for the consumer's region, in the AZs AWS
        // offers it there: as far as the catalog knows, every AZ of that region.
        Some(s) if service_region(name).is_some_and(|r| r != agent.region) => ServiceDetail {
            az_ids: every_az(),
            ..service_detail(s, name, provider)
        },
        Some(s) => service_detail(s, name, provider),
        // An AWS service: in every AZ of the region as far as the catalog knows.
        None => {
            let az_ids = every_az();
            let kind = builtin::lookup(service, &agent.region)
                .map_or(EndpointKind::Interface, |(_, kind)| kind);
            ServiceDetail {
                name: name.to_string(),
                kind,
                az_ids,
                owner: "amazon".into(),
                acceptance_required: false,
            }
        }
    }
}

/// The endpoint kind a service's load balancer calls for: GWLB endpoints for a Gateway Load
/// Balancer, interface endpoints otherwise.
pub fn endpoint_kind(s: &Service) -> EndpointKind {
    match validate::load_balancer_arn("service.load_balancer_arn", &s.load_balancer_arn) {
        Ok(LoadBalancerType::Gateway) => EndpointKind::GatewayLoadBalancer,
        _ => EndpointKind::Interface,
    }
}

/// The service as a consumer's DescribeVpcEndpointServices would show it, from its catalog
/// entry and status.
fn service_detail(s: &Service, name: &str, provider: Option<&Agent>) -> ServiceDetail {
    ServiceDetail {
        name: name.to_string(),
        kind: endpoint_kind(s),
        az_ids: s
            .status
            .as_ref()
            .map(|st| st.az_ids.clone())
            .unwrap_or_default(),
        owner: provider.map(|p| p.account_id.clone()).unwrap_or_default(),
        // pld's endpoint services always ask, so it can refuse what the catalog does not allow.
        acceptance_required: true,
    }
}
