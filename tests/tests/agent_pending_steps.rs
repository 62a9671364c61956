//! A binding or service that is not settled carries the steps still pending and why, from its
//! agent's last plan; once settled it carries none. `pld bindings get` and `pld services get`
//! show them.

use std::time::Duration;

use pld_agent::config::AcceptanceConfig;
use pld_cloud::sim::{Latency, SimConfig, AZ_IDS};
use pld_cloud::Action;
use pld_proto::v1::Approval;
use pld_tests::objects::service_status;
use pld_tests::region::{Env, CONSUMER, PROVIDER};
use pld_tests::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_publishing_binding_lists_its_pending_record_change_and_why() -> anyhow::Result<()> {
    let mut config = SimConfig::instant("us-east-1");
    // Long enough to see the change PENDING; the wait below is for the condition, not a sleep.
    config.latency = Latency {
        service_available: Duration::ZERO,
        endpoint_available: Duration::ZERO,
        change_insync: Duration::from_secs(3),
        ..Latency::default()
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
    let publishing = env
        .wait_phase("demo", "publishing", Duration::from_secs(20))
        .await?;
    assert_eq!(publishing.pending.len(), 1, "{publishing:?}");
    let step = &publishing.pending[0];
    assert_eq!(step.action, "ChangeResourceRecordSets");
    assert_eq!(step.target, "demo.pld.test.");
    assert_eq!(step.reason, "missing");

    let ready = env
        .wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;
    assert!(ready.pending.is_empty(), "{ready:?}");
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_the_agents_role_may_not_make_stays_pending_with_why_until_it_may(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let consumer_root = format!("arn:aws:iam::{CONSUMER}:root");
    // The provider's policy lacks the endpoint service create, the consumer's the endpoint's.
    env.region.deny(
        PROVIDER,
        Action::CreateVpcEndpointServiceConfiguration,
        true,
    );
    env.region.deny(CONSUMER, Action::CreateVpcEndpoint, true);
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root])],
            None,
        )
        .await?;
    let client = env.client();
    let failed = wait_until(Duration::from_secs(20), "the service to fail", || async {
        service_status(&client, "demo")
            .await
            .filter(|s| s.state == "failed")
    })
    .await?;
    assert!(
        failed
            .message
            .contains("ec2:CreateVpcEndpointServiceConfiguration"),
        "{failed:?}"
    );
    assert_eq!(failed.pending.len(), 1, "{failed:?}");
    assert_eq!(
        failed.pending[0].action,
        "CreateVpcEndpointServiceConfiguration"
    );
    assert_eq!(
        failed.pending[0].target,
        format!("endpoint service on {}", env.nlb.arn)
    );
    assert_eq!(failed.pending[0].reason, "missing");

    // Allowed again: the agent makes what was pending on a later pass, and nothing is left.
    env.region.deny(
        PROVIDER,
        Action::CreateVpcEndpointServiceConfiguration,
        false,
    );
    let available = wait_until(
        Duration::from_secs(20),
        "the service to be available",
        || async {
            service_status(&client, "demo")
                .await
                .filter(|s| s.state == "available")
        },
    )
    .await?;
    assert!(available.pending.is_empty(), "{available:?}");
    assert!(available.message.is_empty(), "{available:?}");

    env.put_binding("demo", Approval::Unspecified).await?;
    let failed = env
        .wait_phase("demo", "failed", Duration::from_secs(20))
        .await?;
    assert!(
        failed.message.contains("ec2:CreateVpcEndpoint"),
        "{failed:?}"
    );
    assert_eq!(failed.pending.len(), 1, "{failed:?}");
    assert_eq!(failed.pending[0].action, "CreateVpcEndpoint");
    assert_eq!(
        failed.pending[0].target,
        format!("endpoint for {}", available.endpoint_service_name)
    );
    env.region.deny(CONSUMER, Action::CreateVpcEndpoint, false);
    let ready = env
        .wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;
    assert!(ready.pending.is_empty(), "{ready:?}");
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}
