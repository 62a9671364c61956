//! The consumer's private hosted zone against the simulated region: pld tags the zones it makes,
//! never takes a zone of its name that is not its own, and makes its zone again under a fresh
//! caller reference when one was deleted behind its back.

use std::time::Duration;

use pld_agent::config::AcceptanceConfig;
use pld_cloud::{ChangeAction, Cloud, RecordChange, Tags};
use pld_proto::v1::Approval;
use pld_tests::region::{Env, CONSUMER, ZONE};
use pld_tests::wait_until;
use tracing::info;

fn consumer_root() -> String {
    format!("arn:aws:iam::{CONSUMER}:root")
}

/// The tags that make a zone the test consumer agent's own: the id the cluster made itself at
/// bootstrap, and the VPC.
async fn consumer_tags(env: &Env) -> anyhow::Result<Tags> {
    Ok(Tags::from([
        ("pld:cluster".to_string(), env.cluster_id().await?),
        ("pld:vpc".to_string(), env.consumer_vpc.id.clone()),
    ]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_zone_pld_makes_carries_its_ownership_tags() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()])],
            None,
        )
        .await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    wait_until(
        Duration::from_secs(20),
        "the binding to be ready",
        || async {
            env.binding_status("demo")
                .await
                .filter(|s| s.phase == "ready")
        },
    )
    .await?;
    let zones = env.region.inventory().hosted_zones;
    assert_eq!(zones.len(), 1);
    let cloud = env.region.client(CONSUMER);
    assert_eq!(
        cloud.hosted_zone_tags(&zones[0]).await?,
        consumer_tags(&env).await?
    );
    let zone = cloud.get_hosted_zone(&zones[0]).await?;
    assert!(
        zone.caller_reference.starts_with(&format!(
            "pld/{}/{}/",
            env.cluster_id().await?,
            env.consumer_vpc.id
        )),
        "{zone:?}"
    );
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_zone_of_our_name_that_is_not_plds_is_named_and_left_alone_until_tagged(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let cloud = env.region.client(CONSUMER);
    // Someone else's zone of the same name, in the consumer's VPC.
    let theirs = cloud
        .create_hosted_zone(ZONE, &env.consumer_vpc.id, "terraform-1", "made by hand")
        .await?;
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()])],
            None,
        )
        .await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    let failed = wait_until(
        Duration::from_secs(20),
        "the binding to fail naming the zone",
        || async {
            env.binding_status("demo")
                .await
                .filter(|s| s.phase == "failed")
        },
    )
    .await?;
    assert!(
        failed.message.contains(&theirs.id) && failed.message.contains("hosted_zone_id"),
        "{}",
        failed.message
    );
    let inventory = env.region.inventory();
    assert_eq!(inventory.hosted_zones, vec![theirs.id.clone()]);
    assert!(inventory.records.is_empty(), "{inventory:?}");
    assert!(cloud.hosted_zone_tags(&theirs.id).await?.is_empty());

    info!("tagged as this agent's, the zone is used");
    cloud
        .tag_hosted_zone(&theirs.id, &consumer_tags(&env).await?)
        .await?;
    wait_until(
        Duration::from_secs(20),
        "the binding to be ready",
        || async {
            env.binding_status("demo")
                .await
                .filter(|s| s.phase == "ready")
        },
    )
    .await?;
    let inventory = env.region.inventory();
    assert_eq!(inventory.hosted_zones, vec![theirs.id.clone()]);
    assert!(!inventory.records.is_empty());
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_zone_deleted_behind_the_agents_back_is_made_again_under_the_next_caller_reference(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()])],
            None,
        )
        .await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    wait_until(
        Duration::from_secs(20),
        "the binding to be ready",
        || async {
            env.binding_status("demo")
                .await
                .filter(|s| s.phase == "ready")
        },
    )
    .await?;
    let cloud = env.region.client(CONSUMER);
    let first = env.region.inventory().hosted_zones[0].clone();
    let first_reference = cloud.get_hosted_zone(&first).await?.caller_reference;

    info!("with the consumer agent stopped, someone empties and deletes the zone");
    consumer.shutdown().await;
    let changes: Vec<RecordChange> = cloud
        .list_records(&first)
        .await?
        .into_iter()
        .filter(|r| r.kind != "SOA" && r.kind != "NS")
        .map(|record| RecordChange {
            action: ChangeAction::Delete,
            record,
        })
        .collect();
    cloud.change_records(&first, &changes).await?;
    cloud.delete_hosted_zone(&first).await?;

    info!("the restarted agent's first reference is spent: it moves to the next");
    let (consumer, _) = env
        .start_agent(
            env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new()),
            None,
        )
        .await?;
    let second = wait_until(
        Duration::from_secs(20),
        "a new zone with the record published",
        || async {
            let inventory = env.region.inventory();
            (inventory.hosted_zones.len() == 1
                && inventory.hosted_zones[0] != first
                && inventory.records.iter().any(|r| r.ends_with(" A")))
            .then(|| inventory.hosted_zones[0].clone())
        },
    )
    .await?;
    let second_reference = cloud.get_hosted_zone(&second).await?.caller_reference;
    assert_eq!(second_reference, format!("{first_reference}/2"));
    assert_eq!(
        cloud.hosted_zone_tags(&second).await?,
        consumer_tags(&env).await?
    );
    wait_until(
        Duration::from_secs(20),
        "the binding to be ready",
        || async {
            env.binding_status("demo")
                .await
                .filter(|s| s.phase == "ready")
        },
    )
    .await?;
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}
