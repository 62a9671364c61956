//! Each agent keeps its VPC's facts in the catalog, for plans made without calling AWS: CIDRs,
//! subnets by AZ ID with the account's AZ names, route tables, and endpoints against the
//! Service Quotas quota, read on the resync and after the agent changes the VPC's endpoints.
//! The simulated region refuses an endpoint beyond the quota, as AWS does.

use std::time::Duration;

use pld_agent::config::AcceptanceConfig;
use pld_cloud::sim::{az_name, AZ_IDS};
use pld_cloud::{Action, Quota};
use pld_proto::v1::{Approval, VpcFacts};
use pld_tests::objects::agent_facts;
use pld_tests::region::{Env, CONSUMER, PROVIDER};
use pld_tests::wait_until;

/// Waits until the catalog holds facts of `vpc` that `check` accepts.
async fn facts_where(
    env: &Env,
    vpc: &str,
    what: &str,
    check: impl Fn(&VpcFacts) -> bool,
) -> anyhow::Result<VpcFacts> {
    let client = env.client();
    wait_until(Duration::from_secs(20), what, || async {
        agent_facts(&client, vpc).await.filter(|f| check(f))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_reports_its_vpc_and_follows_its_endpoints() -> anyhow::Result<()> {
    pld_tests::init_tracing();
    let env = Env::instant().await?;
    env.region
        .set_quota(CONSUMER, Quota::InterfaceEndpointsPerVpc, 80);
    let principal = format!("arn:aws:iam::{CONSUMER}:root");
    let (provider, _) = env
        .start_agent(
            env.agent_config(
                PROVIDER,
                &env.provider_vpc,
                vec![env.demo_service(AcceptanceConfig::Auto, &[&principal])],
            ),
            None,
        )
        .await?;
    // A resync far away: what follows the endpoint can only come from the change itself.
    let mut consumer_cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
    consumer_cfg.resync_seconds = 3600;
    let (consumer, _) = env.start_agent(consumer_cfg, None).await?;

    let vpc = &env.consumer_vpc.id;
    let facts = facts_where(&env, vpc, "the consumer's first facts", |_| true).await?;
    // The consumer's VPC has no load balancer; the provider's has demo's NLB, in its AZs.
    assert!(facts.load_balancers.is_empty() && facts.load_balancers_note.is_empty());
    let provided =
        facts_where(&env, &env.provider_vpc.id, "the provider's facts", |_| true).await?;
    let nlbs: Vec<(&str, &str, &[String])> = provided
        .load_balancers
        .iter()
        .map(|l| (l.arn.as_str(), l.kind.as_str(), l.az_ids.as_slice()))
        .collect();
    assert_eq!(
        nlbs,
        [(env.nlb.arn.as_str(), "network", env.nlb.az_ids.as_slice())]
    );
    assert_eq!(
        facts.ipv4_cidrs,
        std::slice::from_ref(&env.consumer_vpc.cidr)
    );
    assert!(facts.ipv6_cidrs.is_empty());
    let azs: Vec<(&str, &str)> = facts
        .subnets
        .iter()
        .map(|s| (s.az_id.as_str(), s.az_name.as_str()))
        .collect();
    let expected: Vec<(String, String)> = AZ_IDS
        .iter()
        .map(|az| (az.to_string(), az_name("us-east-1", CONSUMER, az)))
        .collect();
    let mut sorted = azs.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        expected
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect::<Vec<_>>(),
        "every subnet with its AZ ID and this account's name of it"
    );
    assert_ne!(
        az_name("us-east-1", CONSUMER, AZ_IDS[0]),
        az_name("us-east-1", PROVIDER, AZ_IDS[0]),
        "the sim names zones per account, as AWS does"
    );
    assert_eq!(facts.route_tables.len(), 1);
    assert!(facts.route_tables[0].main);
    assert_eq!(
        (
            facts.endpoints,
            facts.endpoint_quota,
            facts.quota_note.as_str()
        ),
        (0, 80, ""),
        "the account's quota as Service Quotas tells it"
    );

    env.put_binding("demo", Approval::Unspecified).await?;
    env.wait_phase("demo", "ready", Duration::from_secs(30))
        .await?;
    facts_where(&env, vpc, "the endpoint to be counted", |f| {
        f.endpoints == 1
    })
    .await?;

    // The provider's agent resyncs every 5 s: a CIDR its VPC gains shows on the next one.
    env.region
        .add_vpc_cidr(&env.provider_vpc.id, "100.64.0.0/16")
        .ok_or_else(|| anyhow::anyhow!("no provider VPC"))?;
    let provider_facts = facts_where(&env, &env.provider_vpc.id, "the new CIDR", |f| {
        f.ipv4_cidrs.len() == 2
    })
    .await?;
    assert_eq!(
        provider_facts.ipv4_cidrs,
        [env.provider_vpc.cidr.clone(), "100.64.0.0/16".to_string()]
    );
    assert_eq!(
        provider_facts.route_tables[0].routes, 2,
        "a local route each"
    );
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quota_and_load_balancers_the_agent_may_not_read_are_notes_saying_why(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    env.region.deny(CONSUMER, Action::GetServiceQuota, true);
    env.region
        .deny(CONSUMER, Action::DescribeLoadBalancers, true);
    let (consumer, _) = env
        .start_agent(
            env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new()),
            None,
        )
        .await?;
    let facts = facts_where(&env, &env.consumer_vpc.id, "the consumer's facts", |_| true).await?;
    assert_eq!(facts.endpoint_quota, 50);
    assert!(
        facts.quota_note.contains("servicequotas:GetServiceQuota"),
        "{}",
        facts.quota_note
    );
    assert!(facts.load_balancers.is_empty());
    assert!(
        facts
            .load_balancers_note
            .contains("elasticloadbalancing:DescribeLoadBalancers"),
        "{}",
        facts.load_balancers_note
    );
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_endpoint_beyond_the_quota_is_refused_as_aws_refuses_it() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    env.region
        .set_quota(CONSUMER, Quota::InterfaceEndpointsPerVpc, 0);
    let principal = format!("arn:aws:iam::{CONSUMER}:root");
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&principal])],
            None,
        )
        .await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    let failed = env
        .wait_phase("demo", "failed", Duration::from_secs(30))
        .await?;
    assert!(
        failed.message.contains("VpcEndpointLimitExceeded"),
        "{failed:?}"
    );
    assert!(env.region.inventory().endpoints.is_empty());
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}
