//! Endpoints of types pld does not manage (VPC Lattice's `Resource` and `ServiceNetwork`, or a
//! kind other than the service takes) are read as what they are and never changed or deleted,
//! even when they carry pld's tags.

use std::time::Duration;

use pld_agent::config::AcceptanceConfig;
use pld_cloud::{EndpointKind, Tags};
use pld_proto::v1::Approval;
use pld_tests::region::{Env, CONSUMER};
use pld_tests::wait_until;

/// The tags the consumer agent puts on the endpoint of its binding to `service`.
fn binding_tags(cluster: &str, vpc: &str, service: &str) -> Tags {
    Tags::from([
        ("pld:cluster".to_string(), cluster.to_string()),
        ("pld:vpc".to_string(), vpc.to_string()),
        (
            "pld:owner".to_string(),
            format!("{cluster}/binding/{service}/{vpc}"),
        ),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn endpoints_of_types_pld_does_not_manage_are_left_alone_even_when_tagged_as_ours(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let cluster = env.cluster_id().await?;
    let vpc = env.consumer_vpc.id.clone();
    // Tagged as a binding's endpoint, for a binding that does not exist: an orphan to a
    // reader that took every endpoint for an interface endpoint.
    let lattice_resource = env.region.add_endpoint_made_elsewhere(
        CONSUMER,
        &vpc,
        "arn:aws:vpc-lattice:us-east-1:222222222222:resourceconfiguration/rcfg-0a1b",
        EndpointKind::Resource,
        binding_tags(&cluster, &vpc, "ghost"),
    );
    // Tagged as the endpoint of the binding to `demo`, which is about to be made.
    let service_network = env.region.add_endpoint_made_elsewhere(
        CONSUMER,
        &vpc,
        "arn:aws:vpc-lattice:us-east-1:222222222222:servicenetwork/sn-0a1b",
        EndpointKind::ServiceNetwork,
        binding_tags(&cluster, &vpc, "demo"),
    );
    let consumer_root = format!("arn:aws:iam::{CONSUMER}:root");
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root])],
            None,
        )
        .await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    let failed = wait_until(
        Duration::from_secs(20),
        "the binding to fail naming the endpoint",
        || async {
            env.binding_status("demo")
                .await
                .filter(|s| s.phase == "failed")
        },
    )
    .await?;
    assert!(
        failed.message.contains(&service_network) && failed.message.contains("ServiceNetwork"),
        "{}",
        failed.message
    );
    // Another whole pass, orphan handling included, and still neither is touched nor is a
    // second endpoint made beside them.
    consumer.reconciler().pass().await;
    let mut endpoints = env.region.inventory().endpoints;
    endpoints.sort();
    let mut expected = vec![lattice_resource, service_network];
    expected.sort();
    assert_eq!(endpoints, expected);
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}
