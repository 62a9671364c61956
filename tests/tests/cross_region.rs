//! A consumer in another region than its service's provider (cross-region PrivateLink), on the
//! consumer's side: a service that does not list the consumer's region fails the binding at
//! once, naming the region and the command that offers it there, with no call to AWS and no
//! retry loop; `pld plan connect` says the same before anything is put.

use std::sync::Arc;
use std::time::Duration;

use pld_agent::config::AcceptanceConfig;
use pld_agent::{Agent, AgentConfig};
use pld_cloud::limiter::{Limited, Limiter};
use pld_cloud::sim::{SimConfig, SimRegion};
use pld_proto::v1::{Approval, PlanProblemKind};
use pld_tests::plan::{connect, only_error};
use pld_tests::region::{agent_listeners, Env, CONSUMER, PROVIDER, ZONE};

/// A consumer VPC and its agent in `us-west-2`, a region of its own, with the controller of
/// `env`: (its agent, its VPC id, its calls).
async fn west_consumer(env: &Env) -> anyhow::Result<(Agent, String, Arc<Limiter>)> {
    let west = SimRegion::new(SimConfig::instant("us-west-2"));
    let vpc = west.add_vpc(CONSUMER, "10.9.0.0/16");
    let mut cfg =
        AgentConfig::simulated(CONSUMER, "us-west-2", &vpc.id, vec![env.controller()], ZONE);
    cfg.listen = "127.0.0.1:0".parse()?;
    cfg.dns_listen = "127.0.0.1:0".parse()?;
    cfg.lease_ttl_seconds = 10;
    let calls = Limiter::new(None);
    let cloud = Arc::new(Limited::new(west.client(CONSUMER), calls.clone()));
    let agent = Agent::start(cfg, cloud, agent_listeners().await?).await?;
    Ok((agent, vpc.id, calls))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_not_offered_in_the_consumer_s_region_fails_the_binding_at_once(
) -> anyhow::Result<()> {
    pld_tests::init_tracing();
    let env = Env::instant().await?;
    let root = format!("arn:aws:iam::{CONSUMER}:root");
    let (provider, _) = env
        .start_agent(
            env.agent_config(
                PROVIDER,
                &env.provider_vpc,
                vec![env.demo_service(AcceptanceConfig::Auto, &[&root])],
            ),
            None,
        )
        .await?;
    let (consumer, west_vpc, calls) = west_consumer(&env).await?;
    pld_tests::plan::world_ready_vpc(&env, &west_vpc, Some("demo")).await?;

    // The plan says it before anything is put.
    let plan = connect(&env.client(), "demo", &west_vpc).await?;
    let problem = only_error(&plan, PlanProblemKind::RegionNotOffered)?;
    assert!(
        problem
            .message
            .contains("pld services offer demo --region us-west-2"),
        "{problem:?}"
    );

    let client = env.client();
    pld_tests::objects::put_binding(&client, "demo", &west_vpc, Approval::Unspecified).await?;
    let status = pld_tests::wait_until(Duration::from_secs(20), "the binding to fail", || async {
        pld_tests::objects::binding_status(&client, "demo", &west_vpc)
            .await
            .filter(|s| s.phase == "failed")
    })
    .await?;
    assert!(
        status.message.contains("not in us-west-2")
            && status
                .message
                .contains("pld services offer demo --region us-west-2"),
        "{status:?}"
    );
    // No call tried to reach the service, and a pass more changes nothing.
    consumer.reconciler().pass().await;
    let made = calls.stats().calls;
    for action in ["DescribeVpcEndpointServices", "CreateVpcEndpoint"] {
        assert!(!made.contains_key(action), "{action}: {made:?}");
    }
    let again = pld_tests::objects::binding_status(&client, "demo", &west_vpc).await;
    assert_eq!(again.map(|s| s.phase), Some("failed".to_string()));
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}
