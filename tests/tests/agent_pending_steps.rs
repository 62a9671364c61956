//! A binding that is not settled carries the steps still pending and why, from the agent's last
//! plan; once settled it carries none. `pld bindings get` shows them.

use std::time::Duration;

use pld_agent::config::AcceptanceConfig;
use pld_cloud::sim::{Latency, SimConfig, AZ_IDS};
use pld_proto::v1::Approval;
use pld_tests::region::{Env, CONSUMER};
use pld_tests::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_publishing_binding_lists_its_pending_record_change_and_why() -> anyhow::Result<()> {
    let mut config = SimConfig::instant("us-east-1");
    // Long enough to see the change PENDING; the wait below is for the condition, not a sleep.
    config.latency = Latency {
        service_available: Duration::ZERO,
        endpoint_available: Duration::ZERO,
        change_insync: Duration::from_secs(3),
    };
    let env = Env::start(config, &AZ_IDS).await?;
    let consumer_root = format!("arn:aws:iam::{CONSUMER}:root");
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root])],
            None,
        )
        .await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    let publishing = wait_until(
        Duration::from_secs(20),
        "the binding to be publishing",
        || async {
            env.binding_status("demo")
                .await
                .filter(|s| s.phase == "publishing")
        },
    )
    .await?;
    assert_eq!(publishing.pending.len(), 1, "{publishing:?}");
    let step = &publishing.pending[0];
    assert_eq!(step.action, "ChangeResourceRecordSets");
    assert_eq!(step.target, "demo.pld.test.");
    assert_eq!(step.reason, "missing");

    let ready = wait_until(
        Duration::from_secs(20),
        "the binding to be ready",
        || async {
            env.binding_status("demo")
                .await
                .filter(|s| s.phase == "ready")
        },
    )
    .await?;
    assert!(ready.pending.is_empty(), "{ready:?}");
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}
