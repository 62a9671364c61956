//! The simulated region passes the cloud conformance suite (the AWS backend runs the same suite
//! against moto in cloud-aws/tests/moto.rs).

use pld_cloud::conformance::{run, run_alb_front, Fixture, FrontFixture};
use pld_cloud::sim::{NewLoadBalancer, SimConfig, SimRegion, AZ_IDS};
use pld_cloud::LoadBalancerKind;

#[tokio::test]
async fn the_simulated_region_conforms() {
    let region = SimRegion::new(SimConfig::instant("us-east-1"));
    let provider = region.add_vpc("123456789012", "10.0.0.0/16");
    let consumer = region.add_vpc("123456789012", "10.1.0.0/16");
    let nlb = region.add_load_balancer(NewLoadBalancer {
        account: "123456789012",
        vpc_id: &provider.id,
        kind: LoadBalancerKind::Network,
        name: "conformance",
        az_ids: &AZ_IDS,
        ports: &[443],
        targets: &[],
    });
    let fixture = Fixture {
        provider_vpc: provider.id,
        consumer_vpc: consumer.id,
        nlb_arn: nlb.arn,
    };
    run(&region.client("123456789012"), &fixture).await;
}

#[tokio::test]
async fn the_simulated_region_builds_and_removes_an_alb_front() {
    let region = SimRegion::new(SimConfig::instant("us-east-1"));
    let vpc = region.add_vpc("123456789012", "10.0.0.0/16");
    let alb = region.add_load_balancer(NewLoadBalancer {
        account: "123456789012",
        vpc_id: &vpc.id,
        kind: LoadBalancerKind::Application,
        name: "web",
        az_ids: &AZ_IDS[..2],
        ports: &[80],
        targets: &[],
    });
    let fixture = FrontFixture {
        vpc_id: vpc.id,
        subnet_ids: alb.subnet_ids.clone(),
        alb_arn: alb.arn,
        alb_port: 80,
    };
    run_alb_front(&region.client("123456789012"), &fixture).await;
}
