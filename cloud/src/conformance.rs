//! One conformance suite for every [`Cloud`]: the simulated region and the AWS backend (against
//! moto) must agree on everything both can serve.
//!
//! The caller prepares a [`Fixture`] (VPCs, subnets and a network load balancer made with the
//! backend's own tooling) and runs [`run`]; each step panics with a message naming the operation
//! that disagreed.

mod regions;

use std::time::Duration;

use crate::types::*;
use crate::{Cloud, CloudError};

/// What the suite needs to exist already.
pub struct Fixture {
    /// A VPC of the calling account with subnets in at least two AZs.
    pub provider_vpc: String,
    /// Another VPC of the calling account with subnets in at least two AZs.
    pub consumer_vpc: String,
    /// A network load balancer in the provider VPC, in the ARN shape the catalog uses.
    pub nlb_arn: String,
}

fn tags(suite: &str) -> Tags {
    Tags::from([
        ("pld:cluster".to_string(), "conformance".to_string()),
        ("pld:owner".to_string(), suite.to_string()),
    ])
}

/// Runs every check against `cloud`.
///
/// # Panics
/// On the first disagreement, naming it.
pub async fn run(cloud: &dyn Cloud, f: &Fixture) {
    // Network reads.
    let vpc = cloud
        .describe_vpc(&f.provider_vpc)
        .await
        .expect("DescribeVpcs");
    assert_eq!(
        vpc.id, f.provider_vpc,
        "DescribeVpcs returns the VPC asked for"
    );
    let missing = cloud.describe_vpc("vpc-0000dead").await;
    assert!(
        matches!(
            missing,
            Err(CloudError::NotFound { .. }) | Err(CloudError::InvalidParameter(_))
        ),
        "an unknown VPC is NotFound (or invalid), got {missing:?}"
    );
    let subnets = cloud
        .describe_subnets(&f.consumer_vpc)
        .await
        .expect("DescribeSubnets");
    assert!(subnets.len() >= 2, "fixture VPCs have two subnets");
    assert!(
        subnets
            .iter()
            .all(|s| s.vpc_id == f.consumer_vpc && !s.az_id.is_empty() && !s.az_name.is_empty()),
        "subnets carry their VPC, AZ ID and AZ name: {subnets:?}"
    );
    let tables = cloud
        .describe_route_tables(&f.consumer_vpc)
        .await
        .expect("DescribeRouteTables");
    assert_eq!(
        tables.iter().filter(|t| t.main).count(),
        1,
        "every VPC has one main route table: {tables:?}"
    );
    let quota = cloud
        .service_quota(Quota::InterfaceEndpointsPerVpc)
        .await
        .expect("GetServiceQuota");
    assert!(quota > 0, "a VPC may have endpoints: {quota}");

    // Endpoint service: create, find by tags, principals.
    let owned = tags("service");
    let created = cloud
        .create_endpoint_service(&CreateEndpointService {
            load_balancer_arn: f.nlb_arn.clone(),
            acceptance_required: false,
            supported_regions: Vec::new(),
            private_dns_name: None,
            client_token: "conformance-service".into(),
            tags: owned.clone(),
        })
        .await
        .expect("CreateVpcEndpointServiceConfiguration");
    assert!(
        created.id.starts_with("vpce-svc-"),
        "service id shape: {}",
        created.id
    );
    assert!(
        created.name.contains(&created.id),
        "service name carries its id: {}",
        created.name
    );
    let found = cloud
        .describe_endpoint_services(&owned)
        .await
        .expect("DescribeVpcEndpointServiceConfigurations");
    assert_eq!(
        found.iter().map(|s| &s.id).collect::<Vec<_>>(),
        vec![&created.id],
        "found by its tags"
    );
    // A service finds its endpoint service by its load balancer: the ARN comes back as given.
    for es in [&created, &found[0]] {
        assert_eq!(
            es.load_balancer_arns,
            vec![f.nlb_arn.clone()],
            "the load balancer as the catalog names it"
        );
    }
    assert!(
        cloud
            .describe_endpoint_services(&tags("nobody"))
            .await
            .expect("describe")
            .is_empty(),
        "tag filters exclude others"
    );
    let principal = format!("arn:aws:iam::{}:root", cloud.account());
    cloud
        .modify_allowed_principals(&created.id, std::slice::from_ref(&principal), &[])
        .await
        .expect("ModifyVpcEndpointServicePermissions");
    let principals = cloud
        .allowed_principals(&created.id)
        .await
        .expect("DescribeVpcEndpointServicePermissions");
    assert_eq!(principals, vec![principal.clone()]);
    regions::run(cloud, &created, &owned).await;

    // Endpoint: create into two subnets, find by tags, follow to available, delete.
    let detail = cloud
        .describe_service(&created.name)
        .await
        .expect("DescribeVpcEndpointServices");
    assert_eq!(detail.kind, EndpointKind::Interface);
    let mut by_az = std::collections::BTreeMap::new();
    for s in &subnets {
        by_az.entry(s.az_id.clone()).or_insert_with(|| s.id.clone());
    }
    let chosen: Vec<String> = by_az.into_values().take(2).collect();
    let ep_tags = tags("endpoint");
    let ep = cloud
        .create_endpoint(&CreateEndpoint {
            kind: EndpointKind::Interface,
            vpc_id: f.consumer_vpc.clone(),
            service_name: created.name.clone(),
            service_region: None,
            subnet_ids: chosen.clone(),
            security_group_ids: Vec::new(),
            route_table_ids: Vec::new(),
            client_token: "conformance-endpoint".into(),
            tags: ep_tags.clone(),
        })
        .await
        .expect("CreateVpcEndpoint");
    assert!(ep.id.starts_with("vpce-"), "endpoint id shape: {}", ep.id);
    assert!(
        ["pending", "available", "pendingAcceptance"]
            .iter()
            .any(|s| state_is(&ep.state, s)),
        "a new endpoint is pending or available, got {}",
        ep.state
    );
    let mut available = None;
    for _ in 0..50 {
        let eps = cloud
            .describe_endpoints(&f.consumer_vpc, &ep_tags)
            .await
            .expect("DescribeVpcEndpoints");
        assert_eq!(eps.len(), 1, "found by its tags: {eps:?}");
        if state_is(&eps[0].state, "available") {
            available = Some(eps[0].clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let available = available.expect("the endpoint becomes available without acceptance");
    assert_eq!(available.subnet_ids.len(), 2);
    assert_eq!(
        available.tags.get("pld:owner").map(String::as_str),
        Some("endpoint")
    );
    cloud
        .delete_endpoint(&ep.id)
        .await
        .expect("DeleteVpcEndpoints");
    let after = cloud
        .describe_endpoints(&f.consumer_vpc, &ep_tags)
        .await
        .expect("DescribeVpcEndpoints");
    assert!(
        after.is_empty(),
        "a deleted endpoint is not listed: {after:?}"
    );
    cloud
        .delete_endpoint_service(&created.id)
        .await
        .expect("DeleteVpcEndpointServiceConfigurations");
    assert!(
        cloud
            .describe_endpoint_services(&owned)
            .await
            .expect("describe")
            .is_empty(),
        "deleted service gone"
    );

    // Route 53: a private zone, a record, its change, and a zone that will not delete while full.
    let zone = cloud
        .create_hosted_zone(
            "conformance.internal",
            &f.consumer_vpc,
            "conformance-zone",
            "conformance",
        )
        .await
        .expect("CreateHostedZone");
    assert_eq!(zone.name, "conformance.internal.");
    let listed = cloud
        .hosted_zones_of_vpc(&f.consumer_vpc)
        .await
        .expect("ListHostedZonesByVPC");
    assert!(
        listed.iter().any(|z| z.id == zone.id),
        "the zone is listed for its VPC"
    );
    // Found by name with the caller reference it was made with; tagged after create.
    let named = cloud
        .hosted_zones_named("conformance.internal")
        .await
        .expect("ListHostedZonesByName");
    assert!(
        named
            .iter()
            .any(|z| z.id == zone.id && z.caller_reference == "conformance-zone"),
        "the zone is found by name with its caller reference: {named:?}"
    );
    assert_eq!(
        cloud
            .get_hosted_zone(&zone.id)
            .await
            .expect("GetHostedZone")
            .caller_reference,
        "conformance-zone"
    );
    assert!(cloud
        .hosted_zone_tags(&zone.id)
        .await
        .expect("ListTagsForResource")
        .is_empty());
    let tags = Tags::from([
        ("pld:cluster".to_string(), "conformance".to_string()),
        ("pld:vpc".to_string(), f.consumer_vpc.clone()),
    ]);
    cloud
        .tag_hosted_zone(&zone.id, &tags)
        .await
        .expect("ChangeTagsForResource");
    assert_eq!(
        cloud
            .hosted_zone_tags(&zone.id)
            .await
            .expect("ListTagsForResource"),
        tags
    );
    let record = RecordSet {
        name: "svc.conformance.internal.".into(),
        kind: "A".into(),
        ttl: 30,
        values: vec!["10.1.1.10".into()],
    };
    let change = cloud
        .change_records(
            &zone.id,
            &[RecordChange {
                action: ChangeAction::Create,
                record: record.clone(),
            }],
        )
        .await
        .expect("ChangeResourceRecordSets");
    let mut insync = false;
    for _ in 0..50 {
        if cloud.get_change(&change).await.expect("GetChange") == ChangeStatus::InSync {
            insync = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(insync, "the change reaches INSYNC");
    let records = cloud
        .list_records(&zone.id)
        .await
        .expect("ListResourceRecordSets");
    assert!(
        records
            .iter()
            .any(|r| r.name == record.name && r.kind == "A" && r.values == record.values),
        "{records:?}"
    );
    let full = cloud.delete_hosted_zone(&zone.id).await;
    assert!(
        matches!(full, Err(CloudError::DependencyViolation(_))),
        "a zone with records does not delete: {full:?}"
    );
    cloud
        .change_records(
            &zone.id,
            &[RecordChange {
                action: ChangeAction::Delete,
                record,
            }],
        )
        .await
        .expect("ChangeResourceRecordSets delete");
    // Let the deletion settle where changes take time.
    for _ in 0..50 {
        match cloud.delete_hosted_zone(&zone.id).await {
            Ok(()) => return,
            Err(CloudError::DependencyViolation(_))
            | Err(CloudError::PriorRequestNotComplete(_)) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("DeleteHostedZone: {e}"),
        }
    }
    panic!("the emptied zone did not delete");
}

/// What [`run_alb_front`] needs to exist already.
pub struct FrontFixture {
    /// The VPC of the ALB, of the calling account.
    pub vpc_id: String,
    /// Subnets of that VPC in two AZs, where the network load balancer goes.
    pub subnet_ids: Vec<String>,
    /// An application load balancer in the VPC with an HTTP listener on `alb_port`.
    pub alb_arn: String,
    pub alb_port: u16,
}

/// The calls pld makes to put a network load balancer of its own in front of an ALB, and to
/// take it down in reverse order: CreateLoadBalancer, CreateTargetGroup (`alb`),
/// RegisterTargets, CreateListener, the describes that find them by tags, then DeleteListener,
/// DeleteTargetGroup, DeleteLoadBalancer.
///
/// # Panics
/// On the first disagreement, naming it.
pub async fn run_alb_front(cloud: &dyn Cloud, f: &FrontFixture) {
    let alb = cloud
        .describe_load_balancer(&f.alb_arn)
        .await
        .expect("DescribeLoadBalancers of the ALB");
    assert_eq!(alb.kind, LoadBalancerKind::Application, "{alb:?}");
    assert_eq!(alb.vpc_id, f.vpc_id, "the ALB's VPC");
    let alb_listeners = cloud
        .describe_listeners(&f.alb_arn)
        .await
        .expect("DescribeListeners of the ALB");
    assert!(
        alb_listeners.iter().any(|l| l.port == f.alb_port),
        "the ALB listens on {}: {alb_listeners:?}",
        f.alb_port
    );

    let owned = tags("front");
    let nlb = cloud
        .create_load_balancer(&CreateLoadBalancer {
            name: "pld-conformance-front".into(),
            kind: LoadBalancerKind::Network,
            internal: true,
            subnet_ids: f.subnet_ids.clone(),
            tags: owned.clone(),
        })
        .await
        .expect("CreateLoadBalancer");
    assert_eq!(nlb.kind, LoadBalancerKind::Network);
    assert!(nlb.internal, "created internal: {nlb:?}");
    assert_eq!(nlb.vpc_id, f.vpc_id, "the subnets' VPC");
    let group = cloud
        .create_target_group(&CreateTargetGroup {
            name: "pld-conformance-front".into(),
            target_type: TargetType::Alb,
            protocol: Protocol::Tcp,
            port: f.alb_port,
            vpc_id: f.vpc_id.clone(),
            health_check: HealthCheck {
                protocol: Protocol::Http,
                path: "/healthz".into(),
                matcher: "200-399".into(),
            },
            tags: owned.clone(),
        })
        .await
        .expect("CreateTargetGroup");
    assert_eq!(group.target_type, TargetType::Alb);
    assert_eq!(group.port, f.alb_port);
    cloud
        .register_targets(&group.arn, std::slice::from_ref(&f.alb_arn))
        .await
        .expect("RegisterTargets");
    let listener = cloud
        .create_listener(&CreateListener {
            load_balancer_arn: nlb.arn.clone(),
            protocol: Protocol::Tcp,
            port: f.alb_port,
            target_group_arn: group.arn.clone(),
            tags: owned.clone(),
        })
        .await
        .expect("CreateListener");
    assert_eq!(listener.port, f.alb_port);
    assert_eq!(
        listener.target_group_arn.as_deref(),
        Some(group.arn.as_str())
    );

    // Found again the way the agent finds them: every load balancer and target group, their
    // tags, the listeners of its own load balancer, the health of its group's target.
    let all = cloud
        .describe_load_balancers()
        .await
        .expect("DescribeLoadBalancers");
    assert!(all.iter().any(|l| l.arn == nlb.arn), "the NLB is listed");
    let groups = cloud
        .describe_target_groups(None)
        .await
        .expect("DescribeTargetGroups");
    let listed = groups
        .iter()
        .find(|g| g.arn == group.arn)
        .expect("the target group is listed");
    assert_eq!(listed.health_check.path, "/healthz", "{listed:?}");
    assert_eq!(listed.health_check.protocol, Protocol::Http, "{listed:?}");
    assert_eq!(
        listed.load_balancer_arns,
        vec![nlb.arn.clone()],
        "the group is the NLB's"
    );
    let tagged = cloud
        .describe_elb_tags(&[nlb.arn.clone(), group.arn.clone()])
        .await
        .expect("DescribeTags");
    for arn in [&nlb.arn, &group.arn] {
        assert!(
            tagged.get(arn).is_some_and(|t| has_tags(t, &owned)),
            "{arn} carries the owner tags: {tagged:?}"
        );
    }
    let changed = HealthCheck {
        protocol: Protocol::Https,
        path: "/ready".into(),
        matcher: "200".into(),
    };
    let modified = cloud
        .modify_target_group_health(&group.arn, &changed)
        .await
        .expect("ModifyTargetGroup");
    // moto 5.2.5's ModifyTargetGroup keeps the old matcher (its gap; the simulated region's
    // own tests check the matcher changes), so only protocol and path are compared here.
    assert_eq!(
        (&modified.health_check.protocol, &modified.health_check.path),
        (&changed.protocol, &changed.path),
        "the health check as changed"
    );
    let listeners = cloud
        .describe_listeners(&nlb.arn)
        .await
        .expect("DescribeListeners");
    assert_eq!(
        listeners.iter().map(|l| &l.arn).collect::<Vec<_>>(),
        vec![&listener.arn]
    );
    let health = cloud
        .describe_target_health(&group.arn)
        .await
        .expect("DescribeTargetHealth");
    assert_eq!(
        health
            .iter()
            .map(|h| h.target_id.as_str())
            .collect::<Vec<_>>(),
        vec![f.alb_arn.as_str()],
        "the ALB is the group's one target"
    );

    // Taken down in reverse order.
    cloud
        .delete_listener(&listener.arn)
        .await
        .expect("DeleteListener");
    cloud
        .delete_target_group(&group.arn)
        .await
        .expect("DeleteTargetGroup");
    cloud
        .delete_load_balancer(&nlb.arn)
        .await
        .expect("DeleteLoadBalancer");
    let left = cloud
        .describe_load_balancers()
        .await
        .expect("DescribeLoadBalancers");
    assert!(
        left.iter().all(|l| l.arn != nlb.arn),
        "the NLB is gone: {left:?}"
    );
    let left = cloud
        .describe_target_groups(None)
        .await
        .expect("DescribeTargetGroups");
    assert!(
        left.iter().all(|g| g.arn != group.arn),
        "the target group is gone"
    );
    assert!(
        cloud.describe_load_balancer(&f.alb_arn).await.is_ok(),
        "the ALB itself is never touched"
    );
}
