//! The simulated region's ELBv2 rules for a network load balancer in front of an ALB, each as
//! AWS states it (the ELBv2 API reference and "Use Application Load Balancers as targets" in
//! the Network Load Balancers guide). moto enforces none of them, so they are tested here.

use std::time::Duration;

use pld_cloud::sim::{Latency, NewLoadBalancer, SimConfig, SimRegion, AZ_IDS};
use pld_cloud::*;

const ACCOUNT: &str = "123456789012";

struct World {
    region: std::sync::Arc<SimRegion>,
    cloud: pld_cloud::sim::SimCloud,
    vpc: String,
    subnets: Vec<String>,
    alb: LoadBalancer,
}

/// An ALB of this account in `vpc_id`, listening on `ports`, in front of nothing.
fn add_alb(region: &SimRegion, vpc_id: &str, name: &str, ports: &[u16]) -> LoadBalancer {
    region.add_load_balancer(NewLoadBalancer {
        account: ACCOUNT,
        vpc_id,
        kind: LoadBalancerKind::Application,
        name,
        az_ids: &AZ_IDS[..2],
        ports,
        targets: &[],
    })
}

fn world(config: SimConfig) -> World {
    let region = SimRegion::new(config);
    let vpc = region.add_vpc(ACCOUNT, "10.0.0.0/16");
    let alb = add_alb(&region, &vpc.id, "web", &[80, 443]);
    World {
        cloud: region.client(ACCOUNT),
        region,
        vpc: vpc.id,
        subnets: alb.subnet_ids.clone(),
        alb,
    }
}

fn instant() -> World {
    world(SimConfig::instant("us-east-1"))
}

fn http_check() -> HealthCheck {
    HealthCheck {
        protocol: Protocol::Http,
        path: "/".into(),
        matcher: "200-399".into(),
    }
}

fn group_req(w: &World, name: &str, port: u16) -> CreateTargetGroup {
    CreateTargetGroup {
        name: name.into(),
        target_type: TargetType::Alb,
        protocol: Protocol::Tcp,
        port,
        vpc_id: w.vpc.clone(),
        health_check: http_check(),
        tags: Tags::new(),
    }
}

fn nlb_req(w: &World, name: &str) -> CreateLoadBalancer {
    CreateLoadBalancer {
        name: name.into(),
        kind: LoadBalancerKind::Network,
        internal: true,
        subnet_ids: w.subnets.clone(),
        tags: Tags::new(),
    }
}

fn listener_req(nlb: &str, group: &str, port: u16) -> CreateListener {
    CreateListener {
        load_balancer_arn: nlb.into(),
        protocol: Protocol::Tcp,
        port,
        target_group_arn: group.into(),
        tags: Tags::new(),
    }
}

fn refused(result: CloudResult<impl std::fmt::Debug>, code: &str) {
    match result {
        Err(e) => assert!(e.to_string().contains(code), "{code} expected, got {e}"),
        Ok(v) => panic!("{code} expected, got {v:?}"),
    }
}

/// An NLB forwarding `port` to a group holding the ALB; returns (NLB, group) ARNs.
async fn front(w: &World, name: &str, port: u16) -> (String, String) {
    let nlb = w
        .cloud
        .create_load_balancer(&nlb_req(w, name))
        .await
        .unwrap();
    let group = w
        .cloud
        .create_target_group(&group_req(w, name, port))
        .await
        .unwrap();
    w.cloud
        .register_targets(&group.arn, std::slice::from_ref(&w.alb.arn))
        .await
        .unwrap();
    w.cloud
        .create_listener(&listener_req(&nlb.arn, &group.arn, port))
        .await
        .unwrap();
    (nlb.arn, group.arn)
}

#[tokio::test]
async fn names_follow_elbv2_rules_and_creates_are_idempotent_by_name() {
    let w = instant();
    for bad in [
        "",
        "-edge",
        "edge-",
        "internal-x",
        "has_underscore",
        &"x".repeat(33),
    ] {
        refused(
            w.cloud.create_load_balancer(&nlb_req(&w, bad)).await,
            "ValidationError",
        );
    }
    refused(
        w.cloud
            .create_target_group(&group_req(&w, "bad_name", 80))
            .await,
        "ValidationError",
    );
    let first = w
        .cloud
        .create_load_balancer(&nlb_req(&w, "pld-a"))
        .await
        .unwrap();
    let again = w
        .cloud
        .create_load_balancer(&nlb_req(&w, "pld-a"))
        .await
        .unwrap();
    assert_eq!(
        first.arn, again.arn,
        "the same settings answer the same load balancer"
    );
    let mut other = nlb_req(&w, "pld-a");
    other.subnet_ids.truncate(1);
    refused(
        w.cloud.create_load_balancer(&other).await,
        "DuplicateLoadBalancerName",
    );
    let group = w
        .cloud
        .create_target_group(&group_req(&w, "pld-a", 80))
        .await
        .unwrap();
    let same = w
        .cloud
        .create_target_group(&group_req(&w, "pld-a", 80))
        .await
        .unwrap();
    assert_eq!(group.arn, same.arn);
    refused(
        w.cloud
            .create_target_group(&group_req(&w, "pld-a", 443))
            .await,
        "DuplicateTargetGroupName",
    );
}

#[tokio::test]
async fn subnets_of_a_new_load_balancer_are_one_per_zone_in_one_vpc() {
    let w = instant();
    let mut req = nlb_req(&w, "pld-a");
    req.subnet_ids = vec!["subnet-00000000".into()];
    refused(w.cloud.create_load_balancer(&req).await, "SubnetNotFound");
    let other_vpc = w.region.add_vpc(ACCOUNT, "10.9.0.0/16");
    let theirs = w.cloud.describe_subnets(&other_vpc.id).await.unwrap();
    let mut req = nlb_req(&w, "pld-a");
    req.subnet_ids.push(theirs[2].id.clone());
    refused(
        w.cloud.create_load_balancer(&req).await,
        "InvalidConfigurationRequest",
    );
}

#[tokio::test]
async fn an_alb_target_group_is_tcp_with_http_or_https_health_checks() {
    let w = instant();
    let mut req = group_req(&w, "pld-a", 80);
    req.protocol = Protocol::Tls;
    refused(
        w.cloud.create_target_group(&req).await,
        "must use protocol TCP",
    );
    let mut req = group_req(&w, "pld-a", 80);
    req.health_check.protocol = Protocol::Tcp;
    refused(w.cloud.create_target_group(&req).await, "HTTP or HTTPS");
    let mut req = group_req(&w, "pld-a", 80);
    req.health_check.protocol = Protocol::Https;
    let group = w.cloud.create_target_group(&req).await.unwrap();
    let mut tcp = http_check();
    tcp.protocol = Protocol::Tcp;
    refused(
        w.cloud.modify_target_group_health(&group.arn, &tcp).await,
        "HTTP or HTTPS",
    );
    let mut changed = http_check();
    changed.matcher = "204".into();
    let modified = w
        .cloud
        .modify_target_group_health(&group.arn, &changed)
        .await
        .unwrap();
    assert_eq!(modified.health_check, changed);
}

#[tokio::test]
async fn an_alb_target_must_be_an_alb_of_the_vpc_listening_on_the_port() {
    let w = instant();
    let group = w
        .cloud
        .create_target_group(&group_req(&w, "pld-a", 80))
        .await
        .unwrap();
    let nlb = w
        .cloud
        .create_load_balancer(&nlb_req(&w, "pld-a"))
        .await
        .unwrap();
    refused(
        w.cloud
            .register_targets(&group.arn, std::slice::from_ref(&nlb.arn))
            .await,
        "InvalidTarget",
    );
    let far = w.region.add_vpc(ACCOUNT, "10.8.0.0/16");
    let far_alb = add_alb(&w.region, &far.id, "far", &[80]);
    refused(
        w.cloud.register_targets(&group.arn, &[far_alb.arn]).await,
        "InvalidTarget",
    );
    let odd_port = w
        .cloud
        .create_target_group(&group_req(&w, "pld-b", 8080))
        .await
        .unwrap();
    refused(
        w.cloud
            .register_targets(&odd_port.arn, std::slice::from_ref(&w.alb.arn))
            .await,
        "no listener on the target group's port 8080",
    );
    // Another account's ALB is no target of this account's group.
    let other = w.region.client("210987654321");
    let their_vpc = w.region.add_vpc("210987654321", "10.7.0.0/16");
    refused(
        other.create_target_group(&group_req(&w, "pld-c", 80)).await,
        "is not found",
    );
    let mut theirs = group_req(&w, "pld-c", 80);
    theirs.vpc_id = their_vpc.id;
    let theirs = other.create_target_group(&theirs).await.unwrap();
    refused(
        other
            .register_targets(&theirs.arn, std::slice::from_ref(&w.alb.arn))
            .await,
        "InvalidTarget",
    );
    // One ALB per group.
    w.cloud
        .register_targets(&group.arn, std::slice::from_ref(&w.alb.arn))
        .await
        .unwrap();
    let second = add_alb(&w.region, &w.vpc, "second", &[80]);
    refused(
        w.cloud.register_targets(&group.arn, &[second.arn]).await,
        "TooManyTargets",
    );
}

#[tokio::test]
async fn only_a_tcp_listener_of_a_network_load_balancer_forwards_to_an_alb() {
    let w = instant();
    let nlb = w
        .cloud
        .create_load_balancer(&nlb_req(&w, "pld-a"))
        .await
        .unwrap();
    let group = w
        .cloud
        .create_target_group(&group_req(&w, "pld-a", 80))
        .await
        .unwrap();
    let mut tls = listener_req(&nlb.arn, &group.arn, 80);
    tls.protocol = Protocol::Tls;
    refused(w.cloud.create_listener(&tls).await, "IncompatibleProtocols");
    let listener = w
        .cloud
        .create_listener(&listener_req(&nlb.arn, &group.arn, 80))
        .await
        .unwrap();
    let again = w
        .cloud
        .create_listener(&listener_req(&nlb.arn, &group.arn, 80))
        .await
        .unwrap();
    assert_eq!(
        listener.arn, again.arn,
        "the same listener again is the same"
    );
    let other = w
        .cloud
        .create_target_group(&group_req(&w, "pld-b", 80))
        .await
        .unwrap();
    refused(
        w.cloud
            .create_listener(&listener_req(&nlb.arn, &other.arn, 80))
            .await,
        "DuplicateListener",
    );
    // A group of type alb belongs to one load balancer.
    let second = w
        .cloud
        .create_load_balancer(&nlb_req(&w, "pld-b"))
        .await
        .unwrap();
    refused(
        w.cloud
            .create_listener(&listener_req(&second.arn, &group.arn, 80))
            .await,
        "TargetGroupAssociationLimit",
    );
}

#[tokio::test]
async fn an_alb_is_the_target_of_at_most_two_network_load_balancers() {
    let w = instant();
    front(&w, "pld-a", 80).await;
    front(&w, "pld-b", 443).await;
    let nlb = w
        .cloud
        .create_load_balancer(&nlb_req(&w, "pld-c"))
        .await
        .unwrap();
    let group = w
        .cloud
        .create_target_group(&group_req(&w, "pld-c", 80))
        .await
        .unwrap();
    w.cloud
        .register_targets(&group.arn, std::slice::from_ref(&w.alb.arn))
        .await
        .unwrap();
    refused(
        w.cloud
            .create_listener(&listener_req(&nlb.arn, &group.arn, 80))
            .await,
        "TargetGroupAssociationLimit",
    );
}

#[tokio::test]
async fn what_is_in_use_cannot_be_deleted() {
    let w = instant();
    let (nlb, group) = front(&w, "pld-a", 80).await;
    refused(
        w.cloud.delete_load_balancer(&w.alb.arn).await,
        "ResourceInUse",
    );
    refused(w.cloud.delete_target_group(&group).await, "ResourceInUse");
    let es = w
        .cloud
        .create_endpoint_service(&CreateEndpointService {
            load_balancer_arn: nlb.clone(),
            acceptance_required: false,
            supported_regions: Vec::new(),
            private_dns_name: None,
            client_token: "t".into(),
            tags: Tags::new(),
        })
        .await
        .unwrap();
    refused(w.cloud.delete_load_balancer(&nlb).await, "ResourceInUse");
    w.cloud.delete_endpoint_service(&es.id).await.unwrap();
    // Deleting the NLB takes its listeners with it and frees the group.
    w.cloud.delete_load_balancer(&nlb).await.unwrap();
    assert!(w
        .region
        .inventory()
        .listeners
        .iter()
        .all(|l| !l.contains("pld-a")));
    w.cloud.delete_target_group(&group).await.unwrap();
    // Gone is done for a load balancer; a group or listener that is gone is NotFound.
    w.cloud.delete_load_balancer(&nlb).await.unwrap();
    assert!(w
        .cloud
        .delete_target_group(&group)
        .await
        .unwrap_err()
        .is_not_found());
    assert!(w
        .cloud
        .delete_listener("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/net/x/1/2")
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test]
async fn an_endpoint_service_takes_no_application_load_balancer() {
    let w = instant();
    refused(
        w.cloud
            .create_endpoint_service(&CreateEndpointService {
                load_balancer_arn: w.alb.arn.clone(),
                acceptance_required: false,
                supported_regions: Vec::new(),
                private_dns_name: None,
                client_token: "t".into(),
                tags: Tags::new(),
            })
            .await,
        "application load balancer",
    );
}

#[tokio::test]
async fn target_health_is_unused_until_a_listener_forwards_then_healthy() {
    let w = instant();
    let nlb = w
        .cloud
        .create_load_balancer(&nlb_req(&w, "pld-a"))
        .await
        .unwrap();
    let group = w
        .cloud
        .create_target_group(&group_req(&w, "pld-a", 80))
        .await
        .unwrap();
    w.cloud
        .register_targets(&group.arn, std::slice::from_ref(&w.alb.arn))
        .await
        .unwrap();
    let health = w.cloud.describe_target_health(&group.arn).await.unwrap();
    assert_eq!(health[0].state, "unused");
    assert_eq!(health[0].reason, "Target.NotInUse");
    w.cloud
        .create_listener(&listener_req(&nlb.arn, &group.arn, 80))
        .await
        .unwrap();
    let health = w.cloud.describe_target_health(&group.arn).await.unwrap();
    assert_eq!(health[0].state, "healthy", "{health:?}");
    // The ALB's own listeners forward to its own group of addresses.
    let own = w.cloud.describe_listeners(&w.alb.arn).await.unwrap();
    assert_eq!(own.len(), 2);
    assert!(own
        .iter()
        .all(|l| l.protocol == Protocol::Http && l.target_group_arn.is_some()));
}

#[tokio::test]
async fn a_new_load_balancer_provisions_before_it_is_active() {
    let mut config = SimConfig::instant("us-east-1");
    config.latency = Latency {
        load_balancer_active: Duration::from_millis(200),
        ..Latency::default()
    };
    let w = world(config);
    let nlb = w
        .cloud
        .create_load_balancer(&nlb_req(&w, "pld-a"))
        .await
        .unwrap();
    assert_eq!(nlb.state, "provisioning");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = w.cloud.describe_load_balancer(&nlb.arn).await.unwrap();
        if now.state == "active" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never active");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn describe_tags_takes_at_most_twenty_arns() {
    let w = instant();
    let many: Vec<String> = (0..21).map(|_| w.alb.arn.clone()).collect();
    refused(w.cloud.describe_elb_tags(&many).await, "at most 20");
    refused(
        w.cloud
            .describe_elb_tags(&[
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/x/1".into(),
            ])
            .await,
        "TargetGroupNotFound",
    );
}
