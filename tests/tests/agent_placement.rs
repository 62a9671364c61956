//! A consumer endpoint's subnets follow the agent's configured subnets: when the config stops
//! listing a subnet the endpoint is in, the endpoint moves (ModifyVpcEndpoint) rather than
//! being replaced, and the binding's name follows its new addresses before it is ready again.

use std::collections::BTreeSet;
use std::time::Duration;

use pld_agent::config::AcceptanceConfig;
use pld_cloud::sim::AZ_IDS;
use pld_cloud::{Cloud, Tags};
use pld_proto::v1::Approval;
use pld_tests::region::{dns_a_until, Env, CONSUMER, ZONE};
use pld_tests::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_endpoint_moves_into_the_configured_subnets_and_its_name_follows() -> anyhow::Result<()>
{
    let env = Env::instant().await?;
    let consumer_root = format!("arn:aws:iam::{CONSUMER}:root");
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root])],
            None,
        )
        .await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    let first = env
        .wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;
    assert_eq!(
        first.addresses.len(),
        AZ_IDS.len(),
        "one ENI per AZ: {first:?}"
    );
    consumer.shutdown().await;

    // The config now leaves out the subnet in the first AZ.
    let cloud = env.region.client(CONSUMER);
    let kept: BTreeSet<String> = cloud
        .describe_subnets(&env.consumer_vpc.id)
        .await?
        .into_iter()
        .filter(|s| s.az_id != AZ_IDS[0])
        .map(|s| s.id)
        .collect();
    assert_eq!(kept.len(), AZ_IDS.len() - 1);
    let mut cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
    cfg.subnet_ids = kept.iter().cloned().collect();
    let (consumer, _) = env.start_agent(cfg, None).await?;

    let moved = wait_until(
        Duration::from_secs(20),
        "the binding to be ready on the configured subnets",
        || async {
            env.binding_status("demo")
                .await
                .filter(|s| s.phase == "ready" && s.addresses.len() == kept.len())
        },
    )
    .await?;
    assert_eq!(moved.endpoint_id, first.endpoint_id, "moved, not replaced");
    let endpoints = cloud
        .describe_endpoints(&env.consumer_vpc.id, &Tags::new())
        .await?;
    assert_eq!(endpoints.len(), 1, "{endpoints:?}");
    let placed: BTreeSet<String> = endpoints[0].subnet_ids.iter().cloned().collect();
    assert_eq!(placed, kept);

    // The name answers the moved endpoint's addresses, not the ENI it left.
    let expected: BTreeSet<String> = moved.addresses.iter().cloned().collect();
    dns_a_until(
        consumer.dns_addr(),
        &format!("demo.{ZONE}."),
        "DNS to answer the moved endpoint's addresses",
        |a| a.iter().map(ToString::to_string).collect::<BTreeSet<_>>() == expected,
    )
    .await?;
    let zones = env.region.inventory().hosted_zones;
    assert_eq!(zones.len(), 1, "{zones:?}");
    let published: BTreeSet<String> = cloud
        .list_records(&zones[0])
        .await?
        .into_iter()
        .filter(|r| r.kind == "A" && r.name == format!("demo.{ZONE}."))
        .flat_map(|r| r.values)
        .collect();
    assert_eq!(published, expected, "the zone's A record");

    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}
