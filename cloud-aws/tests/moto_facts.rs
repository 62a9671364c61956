//! A VPC's facts read through the AWS backend from moto: secondary CIDR blocks, subnets with
//! their AZ names and IDs, route tables with their associations, endpoints, and the endpoint
//! quota from Service Quotas (moto answers GetServiceQuota for `vpc`); then an agent on the
//! backend puts them in the catalog.
//!
//! moto drops IPv6 fields, so IPv6 blocks are covered by the simulated-region test
//! (`tests/tests/vpc_facts.rs`), as are a refused quota read and the quota's enforcement.

use std::time::Duration;

use pld_cloud::{Cloud, Quota};
use pld_cloud_aws::testing::{sdk, start_moto, vpc};
use pld_tests::wait_until;

mod common;
use common::{agent_cloud, agent_config, aws, one_controller, start_agent};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_vpc_s_facts_are_read_from_moto_and_reported() -> anyhow::Result<()> {
    let Some(moto) = start_moto()? else {
        return Ok(());
    };
    let config = sdk(&moto.url).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let (vpc_id, subnets) = vpc(&ec2, "10.4.0.0/16", ["10.4.1.0/24", "10.4.2.0/24"]).await?;
    ec2.associate_vpc_cidr_block()
        .vpc_id(&vpc_id)
        .cidr_block("100.64.0.0/16")
        .send()
        .await?;
    let table = ec2.create_route_table().vpc_id(&vpc_id).send().await?;
    let table_id = table
        .route_table()
        .and_then(|t| t.route_table_id())
        .unwrap_or_default()
        .to_string();
    ec2.associate_route_table()
        .route_table_id(&table_id)
        .subnet_id(&subnets[0])
        .send()
        .await?;

    let cloud = aws(&moto.url).await?;
    let seen = cloud.describe_vpc(&vpc_id).await?;
    assert_eq!(seen.cidr, "10.4.0.0/16");
    assert_eq!(seen.secondary_cidrs, ["100.64.0.0/16"]);
    let mut azs: Vec<(String, String)> = cloud
        .describe_subnets(&vpc_id)
        .await?
        .into_iter()
        .map(|s| (s.az_name, s.cidr))
        .collect();
    azs.sort();
    assert_eq!(
        azs,
        [
            ("us-east-1a".to_string(), "10.4.1.0/24".to_string()),
            ("us-east-1b".to_string(), "10.4.2.0/24".to_string())
        ]
    );
    let tables = cloud.describe_route_tables(&vpc_id).await?;
    assert_eq!(tables.iter().filter(|t| t.main).count(), 1, "{tables:?}");
    let ours = tables
        .iter()
        .find(|t| t.id == table_id)
        .ok_or_else(|| anyhow::anyhow!("the route table made: {tables:?}"))?;
    assert!(!ours.main);
    assert_eq!(ours.subnet_ids, [subnets[0].clone()]);
    let quota = cloud.service_quota(Quota::InterfaceEndpointsPerVpc).await?;
    assert!(quota > 0, "moto's value of L-29B6F2EB: {quota}");

    // An agent on the backend reports them.
    let (cluster, controller) = one_controller().await?;
    let agent = start_agent(
        agent_config(&controller, &vpc_id, Vec::new(), &moto.url),
        agent_cloud(&moto.url).await?,
    )
    .await?;
    let client = cluster.client();
    let facts = wait_until(Duration::from_secs(30), "the VPC's facts", || async {
        pld_tests::objects::agent_facts(&client, &vpc_id).await
    })
    .await?;
    assert_eq!(facts.ipv4_cidrs, ["10.4.0.0/16", "100.64.0.0/16"]);
    assert_eq!(facts.subnets.len(), 2);
    assert_eq!(facts.route_tables.len(), 2);
    assert_eq!(
        (facts.endpoint_quota, facts.quota_note.as_str()),
        (quota, ""),
        "read, not assumed"
    );
    agent.shutdown().await;
    cluster.shutdown().await;
    Ok(())
}
