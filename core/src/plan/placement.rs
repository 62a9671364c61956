//! Where an interface or GWLB endpoint goes: one subnet per AZ the service supports, among the
//! configured subnets (or all of the VPC's), matched by AZ ID — AZ names differ per account.

use std::collections::BTreeMap;

use crate::aws::types::{Endpoint, EndpointKind, Subnet};

/// Why an endpoint could not be placed, in words for the binding's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement(pub String);

/// The subnets an endpoint of `kind` belongs in: the first of `configured` (all of `subnets`
/// when empty) in each AZ ID the service supports.
pub fn choose_subnets(
    subnets: &[Subnet],
    configured: &[String],
    service_az_ids: &[String],
    kind: EndpointKind,
) -> Result<Vec<String>, Placement> {
    let mut chosen: BTreeMap<String, String> = BTreeMap::new();
    for s in subnets
        .iter()
        .filter(|s| configured.is_empty() || configured.contains(&s.id))
    {
        if service_az_ids.contains(&s.az_id) {
            chosen
                .entry(s.az_id.clone())
                .or_insert_with(|| s.id.clone());
        }
    }
    if chosen.is_empty() {
        let ours: Vec<String> = subnets
            .iter()
            .map(|s| format!("{} ({})", s.id, s.az_id))
            .collect();
        return Err(Placement(format!(
            "the service supports AZs {} but this VPC's subnets are in {}; add a subnet in a supported AZ",
            service_az_ids.join(", "),
            ours.join(", ")
        )));
    }
    let mut ids: Vec<String> = chosen.into_values().collect();
    if kind == EndpointKind::GatewayLoadBalancer {
        // A GWLB endpoint lives in exactly one subnet; add more bindings for more AZs.
        ids.truncate(1);
    }
    Ok(ids)
}

/// How an endpoint placed outside the configured subnets moves into them: the subnets it
/// gains (the placement's choice it is not in yet) and those it leaves. `None` when it is
/// placed well: no subnets configured (any of the VPC's will do), a gateway endpoint (placed
/// on route tables, not subnets), or none of its subnets outside the configured ones.
pub fn subnet_move(
    endpoint: &Endpoint,
    configured: &[String],
    chosen: &[String],
) -> Option<SubnetMove> {
    if !needs_move(endpoint, configured) {
        return None;
    }
    let remove = endpoint
        .subnet_ids
        .iter()
        .filter(|s| !configured.contains(s))
        .cloned()
        .collect();
    let add = chosen
        .iter()
        .filter(|s| !endpoint.subnet_ids.contains(s))
        .cloned()
        .collect();
    Some(SubnetMove { add, remove })
}

/// Whether `endpoint` sits in a subnet the config does not list (and so has to move).
pub fn needs_move(endpoint: &Endpoint, configured: &[String]) -> bool {
    !configured.is_empty()
        && endpoint.kind != EndpointKind::Gateway
        && endpoint.subnet_ids.iter().any(|s| !configured.contains(s))
}

/// Subnets an endpoint gains and leaves (ModifyVpcEndpoint's two lists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetMove {
    pub add: Vec<String>,
    pub remove: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(id: &str, az_id: &str) -> Subnet {
        Subnet {
            id: id.into(),
            vpc_id: "vpc-1".into(),
            az_id: az_id.into(),
            cidr: "10.0.0.0/24".into(),
            ..Default::default()
        }
    }

    fn azs(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn one_subnet_per_supported_az_id() {
        let subnets = [
            subnet("subnet-a", "use1-az1"),
            subnet("subnet-b", "use1-az1"),
            subnet("subnet-c", "use1-az2"),
            subnet("subnet-d", "use1-az3"),
        ];
        let chosen = choose_subnets(
            &subnets,
            &[],
            &azs(&["use1-az1", "use1-az2"]),
            EndpointKind::Interface,
        );
        assert_eq!(chosen, Ok(azs(&["subnet-a", "subnet-c"])));
    }

    #[test]
    fn configured_subnets_limit_the_choice_and_gwlb_takes_one() {
        let subnets = [
            subnet("subnet-a", "use1-az1"),
            subnet("subnet-c", "use1-az2"),
        ];
        let supported = azs(&["use1-az1", "use1-az2"]);
        let configured = azs(&["subnet-c"]);
        let chosen = choose_subnets(&subnets, &configured, &supported, EndpointKind::Interface);
        assert_eq!(chosen, Ok(configured));
        let gwlb = choose_subnets(&subnets, &[], &supported, EndpointKind::GatewayLoadBalancer);
        assert_eq!(gwlb, Ok(azs(&["subnet-a"])));
    }

    #[test]
    fn no_subnet_in_a_supported_az_says_which_azs_are_which() {
        let subnets = [subnet("subnet-a", "use1-az1")];
        let Err(Placement(message)) =
            choose_subnets(&subnets, &[], &azs(&["use1-az4"]), EndpointKind::Interface)
        else {
            panic!("placed in an unsupported AZ");
        };
        assert!(
            message.contains("use1-az4") && message.contains("subnet-a (use1-az1)"),
            "{message}"
        );
    }

    #[test]
    fn an_endpoint_moves_only_out_of_subnets_the_config_does_not_list() {
        let ep = |kind, subnets: &[&str]| Endpoint {
            id: "vpce-1".into(),
            vpc_id: "vpc-1".into(),
            service_name: "svc".into(),
            kind,
            state: "available".into(),
            subnet_ids: azs(subnets),
            route_table_ids: vec![],
            dns_names: vec![],
            addresses: vec![],
            tags: Default::default(),
        };
        let interface = ep(EndpointKind::Interface, &["subnet-a", "subnet-c"]);
        // Nothing configured: any subnet will do.
        assert_eq!(subnet_move(&interface, &[], &azs(&["subnet-c"])), None);
        // Inside the configured subnets: stays.
        let configured = azs(&["subnet-a", "subnet-c"]);
        assert_eq!(subnet_move(&interface, &configured, &configured), None);
        // One subnet dropped from the config: it leaves that one and gains the choice.
        let configured = azs(&["subnet-c", "subnet-d"]);
        assert_eq!(
            subnet_move(&interface, &configured, &configured),
            Some(SubnetMove {
                add: azs(&["subnet-d"]),
                remove: azs(&["subnet-a"]),
            })
        );
        // Gateway endpoints sit on route tables.
        let gateway = ep(EndpointKind::Gateway, &["subnet-a"]);
        assert_eq!(subnet_move(&gateway, &configured, &configured), None);
    }
}
