//! A plan's findings are what the agents then meet: each error `pld plan connect` reports from
//! the catalog alone (AZ fit, a principal not allowed, the endpoint quota, a zone or a name that
//! is not pld's) is the reason the binding then fails or is refused, and nothing is made at AWS.

use std::time::Duration;

use pld_agent::config::AcceptanceConfig;
use pld_cloud::sim::{echo_server, NewLoadBalancer, AZ_IDS};
use pld_cloud::{ChangeAction, Cloud, LoadBalancerKind, Quota, RecordChange, RecordSet};
use pld_proto::v1::{Approval, PlanProblemKind};
use pld_tests::objects::agent_facts;
use pld_tests::plan::{connect, only_error, world_ready};
use pld_tests::region::{Env, CONSUMER, DEMO_PORT, PROVIDER, ZONE};
use pld_tests::wait_until;

fn consumer_root() -> String {
    format!("arn:aws:iam::{CONSUMER}:root")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plan_that_fails_on_az_fit_is_a_binding_that_fails_on_it() -> anyhow::Result<()> {
    // The NLB spans the first two AZs; the consumer's agent may only use its third.
    let env = Env::start(
        pld_cloud::sim::SimConfig::instant("us-east-1"),
        &AZ_IDS[..2],
    )
    .await?;
    let (provider, _) = env
        .start_agent(
            env.agent_config(
                PROVIDER,
                &env.provider_vpc,
                vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()])],
            ),
            None,
        )
        .await?;
    let third = env.region.client(CONSUMER);
    let third = Cloud::describe_subnets(&third, &env.consumer_vpc.id)
        .await?
        .into_iter()
        .find(|s| s.az_id == AZ_IDS[2])
        .ok_or_else(|| anyhow::anyhow!("no subnet in {}", AZ_IDS[2]))?;
    let mut cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
    cfg.subnet_ids = vec![third.id.clone()];
    let (consumer, _) = env.start_agent(cfg, None).await?;
    world_ready(&env, Some("demo")).await?;

    let plan = connect(&env.client(), "demo", &env.consumer_vpc.id).await?;
    let fit = only_error(&plan, PlanProblemKind::AzFit)?;
    assert!(
        fit.message.contains(AZ_IDS[2]) && fit.message.contains("configured"),
        "{}",
        fit.message
    );
    env.put_binding("demo", Approval::Unspecified).await?;
    let failed = env
        .wait_phase("demo", "failed", Duration::from_secs(30))
        .await?;
    assert!(failed.message.contains(AZ_IDS[2]), "{failed:?}");
    assert!(env.region.inventory().endpoints.is_empty());
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plan_that_finds_the_account_not_allowed_is_a_binding_the_catalog_refuses(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let other = "arn:aws:iam::333333333333:root";
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[other])],
            None,
        )
        .await?;
    world_ready(&env, Some("demo")).await?;
    let plan = connect(&env.client(), "demo", &env.consumer_vpc.id).await?;
    let refused = only_error(&plan, PlanProblemKind::PrincipalNotAllowed)?;
    assert!(
        refused.message.contains(CONSUMER) && refused.message.contains(other),
        "{}",
        refused.message
    );
    assert_eq!(refused.account_id, CONSUMER);
    let put = env.put_binding("demo", Approval::Unspecified).await;
    let message = format!("{:#}", put.expect_err("the catalog refuses the binding"));
    assert!(
        message.contains(&format!(
            "account {CONSUMER} is not among its allowed principals"
        )),
        "{message}"
    );
    assert!(env.region.inventory().endpoints.is_empty());
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plan_that_finds_the_quota_reached_is_a_binding_aws_refuses() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    env.region
        .set_quota(CONSUMER, Quota::InterfaceEndpointsPerVpc, 0);
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()])],
            None,
        )
        .await?;
    world_ready(&env, Some("demo")).await?;
    let plan = connect(&env.client(), "demo", &env.consumer_vpc.id).await?;
    let quota = only_error(&plan, PlanProblemKind::QuotaReached)?;
    assert!(
        quota.message.contains("VpcEndpointLimitExceeded")
            && quota
                .message
                .contains("0 interface and GWLB endpoints of the 0"),
        "{}",
        quota.message
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plan_that_finds_a_zone_of_the_name_not_plds_is_a_binding_that_fails_on_it(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let cloud = env.region.client(CONSUMER);
    // Someone else's zone of the agent's name, in the consumer's VPC.
    let theirs = cloud
        .create_hosted_zone(ZONE, &env.consumer_vpc.id, "terraform-1", "made by hand")
        .await?;
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()])],
            None,
        )
        .await?;
    world_ready(&env, Some("demo")).await?;
    let facts = wait_until(
        Duration::from_secs(20),
        "the consumer's facts to name the zone it may not use",
        || async {
            agent_facts(&env.client(), &env.consumer_vpc.id)
                .await
                .filter(|f| !f.zone_refused.is_empty())
        },
    )
    .await?;
    assert!(facts.zone_id.is_empty(), "{facts:?}");
    let plan = connect(&env.client(), "demo", &env.consumer_vpc.id).await?;
    let clash = only_error(&plan, PlanProblemKind::NameClash)?;
    assert!(
        clash.message.contains(&theirs.id) && clash.message.contains("hosted_zone_id"),
        "{}",
        clash.message
    );
    env.put_binding("demo", Approval::Unspecified).await?;
    let failed = env
        .wait_phase("demo", "failed", Duration::from_secs(30))
        .await?;
    assert!(failed.message.contains(&theirs.id), "{failed:?}");
    let inventory = env.region.inventory();
    assert_eq!(inventory.hosted_zones, vec![theirs.id.clone()]);
    assert!(inventory.records.is_empty(), "{inventory:?}");
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plan_that_finds_the_name_held_by_a_record_not_plds_is_a_binding_that_fails_on_it(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    // A second service, `web`, on a second NLB of the provider.
    let echo = echo_server().await?;
    let second = env.region.add_load_balancer(NewLoadBalancer {
        account: PROVIDER,
        vpc_id: &env.provider_vpc.id,
        kind: LoadBalancerKind::Network,
        name: "web",
        az_ids: &AZ_IDS,
        ports: &[DEMO_PORT],
        targets: &[echo],
    });
    let mut web = env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()]);
    web.name = "web".into();
    web.load_balancer_arn = second.arn.clone();
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![
                env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()]),
                web,
            ],
            None,
        )
        .await?;
    // demo makes the consumer's zone; someone then writes web's name in it by hand.
    env.put_binding("demo", Approval::Unspecified).await?;
    env.wait_phase("demo", "ready", Duration::from_secs(30))
        .await?;
    world_ready(&env, Some("web")).await?;
    let name = format!("web.{ZONE}.");
    let facts = agent_facts(&env.client(), &env.consumer_vpc.id)
        .await
        .ok_or_else(|| anyhow::anyhow!("no facts"))?;
    env.region
        .client(CONSUMER)
        .change_records(
            &facts.zone_id,
            &[RecordChange {
                action: ChangeAction::Upsert,
                record: RecordSet {
                    name: name.clone(),
                    kind: "A".into(),
                    ttl: 60,
                    values: vec!["10.9.9.9".into()],
                },
            }],
        )
        .await?;
    wait_until(
        Duration::from_secs(30),
        "the consumer's facts to list the hand-written name",
        || async {
            agent_facts(&env.client(), &env.consumer_vpc.id)
                .await
                .filter(|f| f.zone_names_not_ours.contains(&name))
        },
    )
    .await?;
    let plan = connect(&env.client(), "web", &env.consumer_vpc.id).await?;
    let clash = only_error(&plan, PlanProblemKind::NameClash)?;
    assert!(clash.message.contains(&name), "{}", clash.message);
    env.put_binding("web", Approval::Unspecified).await?;
    let failed = env
        .wait_phase("web", "failed", Duration::from_secs(30))
        .await?;
    assert!(failed.message.contains(&name), "{failed:?}");
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}
