//! The simulated region's cross-region rules for an endpoint service (EC2 API reference:
//! SupportedRegions, Add/RemoveSupportedRegions, SupportedRegionDetail; Service Authorization
//! Reference: vpce:AllowMultiRegion). moto stores regions without checking them, so the rules
//! are tested here; the conformance suite covers what both answer alike.

use std::time::Duration;

use pld_cloud::sim::{Latency, NewLoadBalancer, SimConfig, SimRegion, AZ_IDS};
use pld_cloud::*;

const ACCOUNT: &str = "123456789012";

struct World {
    region: std::sync::Arc<SimRegion>,
    cloud: pld_cloud::sim::SimCloud,
    nlbs: Vec<String>,
}

fn world(config: SimConfig) -> World {
    let region = SimRegion::new(config);
    let vpc = region.add_vpc(ACCOUNT, "10.0.0.0/16");
    let nlbs = ["a", "b"]
        .iter()
        .map(|name| {
            region
                .add_load_balancer(NewLoadBalancer {
                    account: ACCOUNT,
                    vpc_id: &vpc.id,
                    kind: LoadBalancerKind::Network,
                    name,
                    az_ids: &AZ_IDS,
                    ports: &[443],
                    targets: &[],
                })
                .arn
        })
        .collect();
    World {
        cloud: region.client(ACCOUNT),
        region,
        nlbs,
    }
}

fn create(nlb: &str, regions: &[&str]) -> CreateEndpointService {
    CreateEndpointService {
        load_balancer_arn: nlb.into(),
        acceptance_required: true,
        supported_regions: regions.iter().map(|r| r.to_string()).collect(),
        private_dns_name: None,
        client_token: format!("t-{nlb}"),
        tags: Tags::new(),
    }
}

fn regions(es: &EndpointService) -> Vec<(String, String)> {
    es.supported_regions
        .iter()
        .map(|r| (r.region.clone(), r.state.clone()))
        .collect()
}

fn pair(region: &str, state: &str) -> (String, String) {
    (region.to_string(), state.to_string())
}

/// Waits (2 s at most) until `id` lists exactly `want`.
async fn until(w: &World, id: &str, want: &[(String, String)]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let now = regions(&listed(w, id).await);
        if now == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} lists {now:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn listed(w: &World, id: &str) -> EndpointService {
    w.cloud
        .describe_endpoint_services(&Tags::new())
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.id == id)
        .unwrap()
}

#[tokio::test]
async fn regions_are_pending_then_available_and_the_own_region_is_always_listed() {
    let mut config = SimConfig::instant("us-east-1");
    config.latency = Latency {
        service_available: Duration::from_millis(400),
        ..Latency::default()
    };
    let w = world(config);
    let es = w
        .cloud
        .create_endpoint_service(&create(&w.nlbs[0], &["us-west-2"]))
        .await
        .unwrap();
    assert_eq!(es.region(), "us-east-1");
    assert_eq!(
        regions(&es),
        [pair("us-east-1", "Available"), pair("us-west-2", "Pending")]
    );
    until(
        &w,
        &es.id,
        &[
            pair("us-east-1", "Available"),
            pair("us-west-2", "Available"),
        ],
    )
    .await;
    // Removed: Deleting for a while, then gone; added: Pending, then Available.
    let r = |names: &[&str]| -> Vec<String> { names.iter().map(|n| n.to_string()).collect() };
    w.cloud
        .modify_supported_regions(&es.id, &r(&["eu-west-1"]), &r(&["us-west-2"]))
        .await
        .unwrap();
    assert_eq!(
        regions(&listed(&w, &es.id).await),
        [
            pair("us-east-1", "Available"),
            pair("us-west-2", "Deleting"),
            pair("eu-west-1", "Pending")
        ]
    );
    until(
        &w,
        &es.id,
        &[
            pair("us-east-1", "Available"),
            pair("eu-west-1", "Available"),
        ],
    )
    .await;
}

#[tokio::test]
async fn unknown_regions_other_partitions_and_the_own_region_are_refused() {
    let w = world(SimConfig::instant("us-east-1"));
    let refused = |r: CloudResult<EndpointService>, says: &str| match r {
        Err(CloudError::InvalidParameter(m)) => assert!(m.contains(says), "{m}"),
        other => panic!("want InvalidParameter naming {says}, got {other:?}"),
    };
    refused(
        w.cloud
            .create_endpoint_service(&create(&w.nlbs[0], &["us-west-9"]))
            .await,
        "us-west-9",
    );
    refused(
        w.cloud
            .create_endpoint_service(&create(&w.nlbs[0], &["cn-north-1"]))
            .await,
        "partition aws-cn",
    );
    assert!(w.region.inventory().endpoint_services.is_empty());
    let es = w
        .cloud
        .create_endpoint_service(&create(&w.nlbs[0], &[]))
        .await
        .unwrap();
    let own = w
        .cloud
        .modify_supported_regions(&es.id, &[], &["us-east-1".to_string()])
        .await;
    assert!(
        matches!(&own, Err(CloudError::InvalidParameter(m)) if m.contains("own region")),
        "{own:?}"
    );
}

#[tokio::test]
async fn naming_other_regions_takes_vpce_allow_multi_region() {
    let w = world(SimConfig::instant("us-east-1"));
    w.region.deny(ACCOUNT, Action::AllowMultiRegion, true);
    let denied = w
        .cloud
        .create_endpoint_service(&create(&w.nlbs[0], &["us-west-2"]))
        .await;
    assert!(
        matches!(&denied, Err(CloudError::Unauthorized(m)) if m.contains("vpce:AllowMultiRegion")),
        "{denied:?}"
    );
    // Without other regions the permission is not needed.
    let es = w
        .cloud
        .create_endpoint_service(&create(&w.nlbs[1], &[]))
        .await
        .unwrap();
    let denied = w
        .cloud
        .modify_supported_regions(&es.id, &["us-west-2".to_string()], &[])
        .await;
    assert!(
        matches!(&denied, Err(CloudError::Unauthorized(m))
            if m.contains("ModifyVpcEndpointServiceConfiguration")
                && m.contains("vpce:AllowMultiRegion")),
        "{denied:?}"
    );
    w.region.deny(ACCOUNT, Action::AllowMultiRegion, false);
    w.cloud
        .modify_supported_regions(&es.id, &["us-west-2".to_string()], &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn each_region_s_vpcs_span_its_own_az_ids() {
    assert_eq!(
        pld_cloud::sim::region_az_ids("us-west-2"),
        ["usw2-az1", "usw2-az2", "usw2-az3"]
    );
    assert_eq!(
        pld_cloud::sim::region_az_ids("ap-northeast-1"),
        ["apne1-az1", "apne1-az2", "apne1-az3"]
    );
    assert_eq!(pld_cloud::sim::region_az_ids("us-east-1"), AZ_IDS);
    let west = SimRegion::new(SimConfig::instant("us-west-2"));
    let vpc = west.add_vpc(ACCOUNT, "10.9.0.0/16");
    let subnets = west
        .client(ACCOUNT)
        .describe_subnets(&vpc.id)
        .await
        .unwrap();
    let azs: Vec<(&str, &str)> = subnets
        .iter()
        .map(|s| (s.az_id.as_str(), s.az_name.as_str()))
        .collect();
    assert_eq!(azs.len(), 3);
    assert!(
        azs.iter()
            .all(|(id, name)| id.starts_with("usw2-az") && name.starts_with("us-west-2")),
        "{azs:?}"
    );
}
