//! `/metrics`, `/healthz` and `/readyz` of controllers and agents: the names are there, the
//! values move with what happens, and health means what it says.

use std::time::Duration;

use pld_agent::config::AcceptanceConfig;
use pld_proto::v1::{Kind, WatchRequest};
use pld_tests::cluster::{fast_tuning, TestCluster};
use pld_tests::objects::put_service;
use pld_tests::region::{Env, CONSUMER};
use pld_tests::{http_get, metric, reflected_services, scrape, wait_until};
use tokio_stream::StreamExt;

fn value(text: &str, series: &str) -> f64 {
    metric(text, series).unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_metrics_follow_raft_and_the_catalog() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(3, fast_tuning()).await?;
    let leader = cluster.wait_leader(&[1, 2, 3]).await?;
    let addr = |c: &TestCluster, id| c.controller(id).expect("running").local_addr();

    let before = scrape(addr(&cluster, leader)).await?;
    for name in [
        "pld_raft_term",
        "pld_raft_leader_id",
        "pld_raft_commit_index",
        "pld_raft_applied_index",
        "pld_raft_leader_changes_total",
        "pld_raft_snapshots_created_total",
        "pld_raft_snapshots_installed_total",
        "pld_catalog_watchers",
        "pld_catalog_revision",
        "pld_raft_proposed_entries_total",
        "pld_raft_proposed_commands_total",
    ] {
        assert!(metric(&before, name).is_some(), "{name} missing:\n{before}");
    }
    assert_eq!(value(&before, "pld_raft_is_leader"), 1.0);
    // The test cluster runs without TLS, which it had to say (insecure = true).
    assert_eq!(value(&before, "pld_insecure"), 1.0);
    let services = reflected_services(addr(&cluster, leader)).await?;
    for s in [
        "pld.v1.Catalog",
        "pld.v1.Watch",
        "pld.v1.Cluster",
        "grpc.health.v1.Health",
    ] {
        assert!(
            services.iter().any(|x| x == s),
            "{s} not reflected: {services:?}"
        );
    }
    assert_eq!(value(&before, "pld_raft_leader_id"), leader as f64);
    assert_eq!(value(&before, "pld_catalog_objects{kind=\"service\"}"), 0.0);

    let client = cluster.client_of(leader);
    for i in 0..5 {
        put_service(&client, &format!("svc-{i}")).await?;
    }
    let mut watch = Box::pin(client.watch(WatchRequest {
        start_revision: 0,
        kinds: vec![Kind::Service as i32],
        prefix: String::new(),
    }));
    put_service(&client, "svc-5").await?;
    watch.next().await.expect("an event")?;

    let after = scrape(addr(&cluster, leader)).await?;
    assert_eq!(value(&after, "pld_catalog_objects{kind=\"service\"}"), 6.0);
    assert_eq!(value(&after, "pld_catalog_watchers"), 1.0);
    assert!(
        value(&after, "pld_raft_commit_index") >= value(&before, "pld_raft_commit_index") + 6.0
    );
    assert!(value(&after, "pld_catalog_revision") >= 6.0);
    assert!(
        value(&after, "pld_raft_proposal_duration_seconds_count") >= 6.0,
        "{after}"
    );
    // Each of those writes was synced to the leader's disk before it was acknowledged.
    assert!(
        value(&after, "pld_raft_persist_duration_seconds_count") >= 6.0,
        "{after}"
    );
    assert!(value(&after, "pld_raft_persist_duration_seconds_sum") > 0.0);
    // Six writes one after another: six commands, each its own entry (nothing to batch with).
    let delta = |name| value(&after, name) - value(&before, name);
    assert_eq!(delta("pld_raft_proposed_commands_total"), 6.0, "{after}");
    assert_eq!(delta("pld_raft_proposed_entries_total"), 6.0, "{after}");
    drop(watch);
    wait_until(
        Duration::from_secs(5),
        "the watcher gauge to drop",
        || async {
            let text = scrape(addr(&cluster, leader)).await.ok()?;
            (metric(&text, "pld_catalog_watchers")? == 0.0).then_some(())
        },
    )
    .await?;

    // A follower's readiness and its view of leadership changes.
    let follower = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    assert_eq!(http_get(addr(&cluster, follower), "/readyz").await?.0, 200);
    let changes = value(
        &scrape(addr(&cluster, follower)).await?,
        "pld_raft_leader_changes_total",
    );
    cluster.stop(leader).await;
    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    let new_leader = cluster.wait_leader(&rest).await?;
    let text = scrape(addr(&cluster, follower)).await?;
    assert!(
        value(&text, "pld_raft_leader_changes_total") > changes,
        "{text}"
    );
    assert_eq!(value(&text, "pld_raft_leader_id"), new_leader as f64);
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_the_majority_is_live_but_not_ready() -> anyhow::Result<()> {
    let cluster = TestCluster::start(3, fast_tuning()).await?;
    let leader = cluster.wait_leader(&[1, 2, 3]).await?;
    let follower = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    let addr = cluster.controller(follower).expect("running").local_addr();
    assert_eq!(http_get(addr, "/readyz").await?, (200, "ok\n".into()));

    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != follower).collect();
    cluster.faults().isolate(follower, &others);
    let (status, why) = wait_until(
        Duration::from_secs(10),
        "the isolated node to be unready",
        || async {
            let answer = http_get(addr, "/readyz").await.ok()?;
            (answer.0 == 503).then_some(answer)
        },
    )
    .await?;
    assert_eq!(status, 503);
    assert!(why.contains("no leader"), "{why}");
    assert_eq!(
        http_get(addr, "/healthz").await?.0,
        200,
        "isolated is not dead"
    );

    cluster.faults().heal();
    wait_until(
        Duration::from_secs(10),
        "the node to be ready again",
        || async { (http_get(addr, "/readyz").await.ok()?.0 == 200).then_some(()) },
    )
    .await?;
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agent_metrics_follow_reconciling_and_aws_calls() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let principal = format!("arn:aws:iam::{CONSUMER}:root");
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&principal])],
            None,
        )
        .await?;
    let addr = consumer.host_api_addr();
    wait_until(
        Duration::from_secs(10),
        "the consumer agent to be ready",
        || async { (http_get(addr, "/readyz").await.ok()?.0 == 200).then_some(()) },
    )
    .await?;
    assert_eq!(http_get(addr, "/healthz").await?.0, 200);
    let services = reflected_services(addr).await?;
    assert!(
        services.iter().any(|s| s == "pld.v1.HostQuery"),
        "{services:?}"
    );

    let before = scrape(addr).await?;
    // The simulated region's agents talk plaintext to the test cluster, as they must say.
    assert_eq!(value(&before, "pld_insecure"), 1.0);
    assert_eq!(value(&before, "pld_agent_bindings{phase=\"ready\"}"), 0.0);
    assert_eq!(value(&before, "pld_agent_queue_depth"), 0.0);
    assert!(
        value(
            &before,
            "pld_agent_reconcile_total{kind=\"consumer\",result=\"ok\"}"
        ) >= 1.0
    );

    env.put_binding("demo", pld_proto::v1::Approval::Unspecified)
        .await?;
    wait_until(
        Duration::from_secs(20),
        "the binding to be ready",
        || async { (env.binding_status("demo").await?.phase == "ready").then_some(()) },
    )
    .await?;
    let after = wait_until(
        Duration::from_secs(10),
        "the view to show the ready binding",
        || async {
            let text = scrape(addr).await.ok()?;
            (metric(&text, "pld_agent_bindings{phase=\"ready\"}")? == 1.0).then_some(text)
        },
    )
    .await?;
    assert!(
        value(
            &after,
            "pld_aws_calls_total{action=\"CreateVpcEndpoint\",outcome=\"ok\"}"
        ) >= 1.0,
        "{after}"
    );
    assert!(
        value(
            &after,
            "pld_aws_calls_total{action=\"ChangeResourceRecordSets\",outcome=\"ok\"}"
        ) >= 1.0
    );
    assert!(metric(&after, "pld_aws_throttles_total").is_some());
    assert!(
        value(
            &after,
            "pld_agent_reconcile_duration_seconds_count{kind=\"consumer\"}"
        ) > value(
            &before,
            "pld_agent_reconcile_duration_seconds_count{kind=\"consumer\"}"
        )
    );
    let provider_text = scrape(provider.host_api_addr()).await?;
    assert!(
        value(
            &provider_text,
            "pld_aws_calls_total{action=\"CreateVpcEndpointServiceConfiguration\",outcome=\"ok\"}"
        ) >= 1.0,
        "{provider_text}"
    );
    consumer.shutdown().await;
    provider.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_without_its_controller_is_live_but_not_ready() -> anyhow::Result<()> {
    let mut env = Env::instant().await?;
    let mut cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
    cfg.lease_ttl_seconds = 1;
    let (agent, _) = env.start_agent(cfg, None).await?;
    let addr = agent.host_api_addr();
    wait_until(Duration::from_secs(10), "the agent to be ready", || async {
        (http_get(addr, "/readyz").await.ok()?.0 == 200).then_some(())
    })
    .await?;
    env.cluster.stop(1).await;
    let (_, why) = wait_until(
        Duration::from_secs(10),
        "the agent to be unready",
        || async {
            let answer = http_get(addr, "/readyz").await.ok()?;
            (answer.0 == 503).then_some(answer)
        },
    )
    .await?;
    assert!(why.contains("lease"), "{why}");
    assert_eq!(http_get(addr, "/healthz").await?.0, 200);
    agent.shutdown().await;
    Ok(())
}
