//! Where an interface or GWLB endpoint goes: one subnet per AZ the service supports, among the
//! configured subnets (or all of the VPC's), matched by AZ ID — AZ names differ per account.

use std::collections::BTreeMap;

use pld_cloud::{Endpoint, EndpointKind, ServiceDetail, Subnet};
use tracing::info;

use super::Reconciler;

/// Why an endpoint could not be placed, in words for the binding's status.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Placement(pub(super) String);

/// The subnets an endpoint of `kind` belongs in: the first of `configured` (all of `subnets`
/// when empty) in each AZ ID the service supports.
pub(super) fn choose_subnets(
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

impl Reconciler {
    /// The subnets an interface or GWLB endpoint belongs in ([`choose_subnets`]), with the
    /// service's AZs from `detail` or, when not given, from AWS.
    pub(super) async fn placement(
        &self,
        service_name: &str,
        kind: EndpointKind,
        detail: Option<ServiceDetail>,
    ) -> Result<Vec<String>, Placement> {
        let detail = match detail {
            Some(d) => d,
            // Built-in interface services: their AZs still come from AWS.
            None => self
                .cloud
                .describe_service(service_name)
                .await
                .map_err(|e| {
                    Placement(format!("this VPC's account cannot use {service_name}: {e}"))
                })?,
        };
        let subnets = self
            .cloud
            .describe_subnets(&self.cfg.vpc_id)
            .await
            .map_err(|e| Placement(e.to_string()))?;
        choose_subnets(&subnets, &self.cfg.subnet_ids, &detail.az_ids, kind)
    }

    /// Moves an endpoint out of subnets the config no longer lists (ModifyVpcEndpoint).
    /// Returns whether it changed anything.
    pub(super) async fn fix_subnets(&self, ep: &Endpoint) -> Result<bool, Placement> {
        if self.cfg.subnet_ids.is_empty() || ep.kind == EndpointKind::Gateway {
            return Ok(false);
        }
        let remove: Vec<String> = ep
            .subnet_ids
            .iter()
            .filter(|s| !self.cfg.subnet_ids.contains(s))
            .cloned()
            .collect();
        if remove.is_empty() {
            return Ok(false);
        }
        let desired = self.placement(&ep.service_name, ep.kind, None).await?;
        let add: Vec<String> = desired
            .into_iter()
            .filter(|s| !ep.subnet_ids.contains(s))
            .collect();
        info!(id = %ep.id, ?add, ?remove, "moving endpoint to the configured subnets");
        self.cloud
            .modify_endpoint_subnets(&ep.id, &add, &remove)
            .await
            .map_err(|e| Placement(e.to_string()))?;
        Ok(true)
    }
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
}
