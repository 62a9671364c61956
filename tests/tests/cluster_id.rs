//! The installation's cluster id: made once by a new cluster's first leader, the same on every
//! node and across restarts, refused by a node or agent whose config pins another, and the tag
//! agents put on what they create.

use std::time::Duration;

use pld_agent::config::AcceptanceConfig;
use pld_cloud::{Cloud, Tags};
use pld_tests::cluster::{fast_tuning, TestCluster};
use pld_tests::region::{Env, CONSUMER, PROVIDER};
use pld_tests::wait_until;

async fn id_on(cluster: &TestCluster, node: u64) -> Option<String> {
    cluster.client_of(node).cluster_id().await.ok().flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_cluster_names_itself_once_and_every_node_keeps_the_name() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(3, fast_tuning()).await?;
    cluster.wait_leader(&[1, 2, 3]).await?;
    let id = wait_until(Duration::from_secs(10), "node 1 to know the id", || {
        id_on(&cluster, 1)
    })
    .await?;
    assert!(
        id.starts_with("pld-") && id.len() == 14,
        "{id} is not a made id"
    );
    for node in [2, 3] {
        let theirs = wait_until(Duration::from_secs(10), "every node to know it", || {
            id_on(&cluster, node)
        })
        .await?;
        assert_eq!(theirs, id, "node {node}");
    }
    // Restarted, every node keeps it; a new election does not make another.
    for node in [1, 2, 3] {
        cluster.stop(node).await;
    }
    for node in [1, 2, 3] {
        cluster.restart(node).await?;
    }
    cluster.wait_leader(&[1, 2, 3]).await?;
    for node in [1, 2, 3] {
        let after = wait_until(Duration::from_secs(10), "the id after a restart", || {
            id_on(&cluster, node)
        })
        .await?;
        assert_eq!(after, id, "node {node} after a restart");
    }
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_whose_config_pins_another_cluster_id_refuses_to_serve() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(1, fast_tuning()).await?;
    cluster.wait_leader(&[1]).await?;
    let id = wait_until(Duration::from_secs(10), "the cluster id", || {
        id_on(&cluster, 1)
    })
    .await?;
    cluster.stop(1).await;
    // The same id pinned is fine.
    let same = id.clone();
    cluster
        .restart_with(1, move |cfg| cfg.cluster_id = Some(same))
        .await?;
    cluster.wait_leader(&[1]).await?;
    cluster.stop(1).await;
    cluster
        .restart_with(1, |cfg| cfg.cluster_id = Some("other".into()))
        .await?;
    let controller = cluster.controller(1).expect("restarted");
    let why = tokio::time::timeout(Duration::from_secs(10), controller.failed()).await?;
    assert!(
        why.contains(&format!("{id:?}")) && why.contains("\"other\""),
        "{why}"
    );
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agents_tag_with_the_catalogs_id_and_refuse_a_contradicting_pin() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let id = env.cluster_id().await?;

    let mut pinned = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
    pinned.cluster_id = Some("someone-else".into());
    let refused = match env.start_agent(pinned, None).await {
        Ok(_) => anyhow::bail!("an agent pinned to another cluster id started"),
        Err(e) => e.to_string(),
    };
    assert!(
        refused.contains("someone-else") && refused.contains(&id),
        "{refused}"
    );

    let consumer_root = format!("arn:aws:iam::{CONSUMER}:root");
    let (provider, _) = env
        .start_agent(
            env.agent_config(
                PROVIDER,
                &env.provider_vpc,
                vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root])],
            ),
            None,
        )
        .await?;
    let mine = Tags::from([("pld:cluster".to_string(), id.clone())]);
    let services = wait_until(
        Duration::from_secs(20),
        "the endpoint service tagged with the cluster id",
        || async {
            let found = env
                .region
                .client(PROVIDER)
                .describe_endpoint_services(&mine)
                .await
                .ok()?;
            (!found.is_empty()).then_some(found)
        },
    )
    .await?;
    assert_eq!(services.len(), 1);
    provider.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}
