//! Where a binding points and whether its service lets it connect, decided from the catalog
//! alone: the consumer's agent plans its endpoint with these, and `pld plan` in the controller
//! runs the same decisions on the same catalog.

use pld_proto::v1::{Approval, Binding, Service};

use super::builtin;
use super::endpoint::Target;
use crate::access::principals_allow;
use crate::aws::types::service_region;
use crate::validate;

/// Where `binding` points: the endpoint service of `service` (its catalog service, `None` when
/// it is not registered), a built-in AWS service named for `region` (the consumer's), or why
/// it cannot point anywhere yet.
pub fn target(binding: &Binding, service: Option<&Service>, region: &str) -> Target {
    if binding.approval == Approval::Rejected as i32 {
        return Target::Refused(format!(
            "rejected by an operator (pld bindings reject); `pld bindings accept {} --vpc {}` \
             lets it connect",
            binding.service, binding.consumer_vpc_id
        ));
    }
    if let Some((name, kind)) = builtin::lookup(&binding.service, region) {
        return Target::Service {
            name,
            kind: Some(kind),
        };
    }
    let Some(s) = service else {
        return Target::Missing(format!(
            "waiting for service {} to be registered (it is not in the catalog)",
            binding.service
        ));
    };
    match s
        .status
        .as_ref()
        .map(|st| st.endpoint_service_name.as_str())
    {
        Some(name) if !name.is_empty() => {
            across_regions(binding, s, name, region).unwrap_or(Target::Service {
                name: name.to_string(),
                kind: None,
            })
        }
        _ => Target::Waiting(format!(
            "waiting for the provider of {} to create its endpoint service",
            binding.service
        )),
    }
}

/// For a consumer in another `region` than the endpoint service `name` of `s`: why it cannot
/// connect, or waits, when it does; `None` when it connects as in its own region. Across
/// regions only interface endpoints connect, and only from a region the service lists (its
/// SupportedRegions) once AWS offers it there.
fn across_regions(binding: &Binding, s: &Service, name: &str, region: &str) -> Option<Target> {
    let home = service_region(name).filter(|home| *home != region)?;
    if validate::load_balancer_arn("service.load_balancer_arn", &s.load_balancer_arn)
        == Ok(validate::LoadBalancerType::Gateway)
    {
        return Some(Target::NotOffered(format!(
            "{} is in {home} and {} is in {region}: GWLB endpoints connect within their own \
             region only",
            s.name, binding.consumer_vpc_id
        )));
    }
    if !s.regions.iter().any(|r| r == region) {
        let listed = if s.regions.is_empty() {
            String::new()
        } else {
            format!(" and {}", s.regions.join(", "))
        };
        return Some(Target::NotOffered(format!(
            "{} is offered in {home}{listed}, not in {region} where {} is: its provider adds \
             the region with `pld services offer {} --region {region}`",
            s.name, binding.consumer_vpc_id, s.name
        )));
    }
    let state = s
        .status
        .as_ref()
        .and_then(|st| st.regions.iter().find(|r| r.region == region))
        .map_or("not reported yet", |r| r.state.as_str());
    (!state.eq_ignore_ascii_case("available")).then(|| {
        Target::Waiting(format!(
            "waiting for {} to be offered in {region} (AWS's state of it there: {state})",
            s.name
        ))
    })
}

/// Why `service`'s allowed principals do not name `account`, if they do not. The provider's
/// own account is allowed whatever the list says, which only AWS's description of the service
/// tells: the endpoint planner asks before it refuses.
pub fn unlisted(service: Option<&Service>, account: &str) -> Option<String> {
    let s = service?;
    (!principals_allow(&s.allowed_principals, None, account)).then(|| {
        format!(
            "service {} does not allow account {account} (its allowed principals: {}); its \
             endpoint is removed until it does",
            s.name,
            if s.allowed_principals.is_empty() {
                "none".to_string()
            } else {
                s.allowed_principals.join(", ")
            }
        )
    })
}

#[cfg(test)]
mod tests {
    use pld_proto::v1::{ServiceRegionState, ServiceStatus};

    use super::*;

    const NAME: &str = "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0";

    fn service(lb: &str, regions: &[(&str, &str)]) -> Service {
        Service {
            name: "demo".into(),
            load_balancer_arn: format!(
                "arn:aws:elasticloadbalancing:us-east-1:111111111111:loadbalancer/{lb}/demo/0a"
            ),
            regions: regions.iter().map(|(r, _)| r.to_string()).collect(),
            status: Some(ServiceStatus {
                endpoint_service_name: NAME.into(),
                regions: regions
                    .iter()
                    .map(|(region, state)| ServiceRegionState {
                        region: region.to_string(),
                        state: state.to_string(),
                    })
                    .collect(),
                ..ServiceStatus::default()
            }),
            ..Service::default()
        }
    }

    fn binding() -> Binding {
        Binding {
            service: "demo".into(),
            consumer_vpc_id: "vpc-0c0c0c0c".into(),
            ..Binding::default()
        }
    }

    #[test]
    fn across_regions_a_consumer_connects_only_where_the_service_is_offered() {
        let at = |s: &Service, region: &str| target(&binding(), Some(s), region);
        let home = service("net", &[]);
        assert!(matches!(at(&home, "us-east-1"), Target::Service { .. }));
        match at(&home, "us-west-2") {
            Target::NotOffered(why) => assert!(
                why.contains("not in us-west-2")
                    && why.contains("pld services offer demo --region us-west-2"),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
        let pending = service("net", &[("us-west-2", "Pending")]);
        assert!(matches!(at(&pending, "us-west-2"), Target::Waiting(_)));
        let offered = service("net", &[("us-west-2", "Available")]);
        assert!(
            matches!(at(&offered, "us-west-2"), Target::Service { ref name, .. } if name == NAME)
        );
        // Another region it does not list still fails.
        assert!(matches!(at(&offered, "eu-west-1"), Target::NotOffered(_)));
        // A GWLB's endpoints stay in their region whatever the list says.
        let gwlb = service("gwy", &[("us-west-2", "Available")]);
        match at(&gwlb, "us-west-2") {
            Target::NotOffered(why) => assert!(why.contains("GWLB"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
