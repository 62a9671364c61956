//! The provider's agent killed at every step of building and taking down the NLB it puts in
//! front of a service's ALB — after creating the NLB, the target group, registering the ALB,
//! after creating the listener; after deleting the listener and the target group — converges
//! once restarted: one NLB, group and listener of pld's while the consumer is connected through
//! them, none once the service is deregistered, and the ALB as it was throughout.
//!
//! Crash points are process-wide (`fail` crate), so these tests run one at a time, in a test
//! binary of their own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pld_agent::config::{AcceptanceConfig, AgentConfig};
use pld_agent::crash_points::{crash_once_at, disarm};
use pld_agent::Agent;
use pld_cloud::sim::{echo_server, Inventory, NewLoadBalancer, AZ_IDS};
use pld_cloud::{Cloud, LoadBalancerKind};
use pld_proto::v1::{Approval, Kind};
use pld_tests::region::{dns_a_until, echo_through, Env, CONSUMER, DEMO_PORT, PROVIDER, ZONE};
use pld_tests::wait_until;
use tokio::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// What pld built beyond `added`: (load balancers, target groups, listeners).
fn built(now: &Inventory, added: &Inventory) -> (usize, usize, usize) {
    let new =
        |now: &[String], before: &[String]| now.iter().filter(|x| !before.contains(x)).count();
    (
        new(&now.load_balancers, &added.load_balancers),
        new(&now.target_groups, &added.target_groups),
        new(&now.listeners, &added.listeners),
    )
}

/// Waits for the crash, then kills what is left of the provider's agent and starts another.
async fn restart_provider(
    env: &Env,
    provider: &mut Agent,
    cfg: &AgentConfig,
    point: &str,
    crashed: &AtomicBool,
) -> anyhow::Result<()> {
    wait_until(
        Duration::from_secs(20),
        &format!("the provider's agent to reach {point}"),
        || async { crashed.load(Ordering::SeqCst).then_some(()) },
    )
    .await?;
    let (fresh, _) = env.start_agent(cfg.clone(), None).await?;
    std::mem::replace(provider, fresh).abort();
    Ok(())
}

async fn alb_front_converges_after_a_crash_at(
    point: &'static str,
    disconnecting: bool,
) -> anyhow::Result<()> {
    let _turn = ONE_AT_A_TIME.lock().await;
    pld_tests::init_tracing();
    let env = Env::instant().await?;
    let echo = echo_server().await?;
    let alb = env.region.add_load_balancer(NewLoadBalancer {
        account: PROVIDER,
        vpc_id: &env.provider_vpc.id,
        kind: LoadBalancerKind::Application,
        name: "web",
        az_ids: &AZ_IDS,
        ports: &[DEMO_PORT],
        targets: &[echo],
    });
    let cloud = env.region.client(PROVIDER);
    let alb_listeners = cloud.describe_listeners(&alb.arn).await?;
    let added = env.region.inventory();
    let crashed = crash_once_at(point).map_err(anyhow::Error::msg)?;
    let result = async {
        let principal = format!("arn:aws:iam::{CONSUMER}:root");
        let mut demo = env.demo_service(AcceptanceConfig::Auto, &[&principal]);
        demo.load_balancer_arn = alb.arn.clone();
        let mut provider_cfg = env.agent_config(PROVIDER, &env.provider_vpc, vec![demo]);
        let (mut provider, _) = env.start_agent(provider_cfg.clone(), None).await?;
        let (consumer, _) = env
            .start_agent(
                env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new()),
                None,
            )
            .await?;
        env.put_binding("demo", Approval::Unspecified).await?;
        if !disconnecting {
            restart_provider(&env, &mut provider, &provider_cfg, point, &crashed).await?;
        }
        env.wait_phase("demo", "ready", Duration::from_secs(30))
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "{e}: after a crash at {point}: {:?}",
                    env.region.inventory()
                )
            })?;
        wait_until(
            Duration::from_secs(20),
            "one NLB, group and listener",
            || async {
                let inv = env.region.inventory();
                (built(&inv, &added) == (1, 1, 1) && inv.endpoint_services.len() == 1).then_some(())
            },
        )
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{e}: after a crash at {point}: {:?}",
                env.region.inventory()
            )
        })?;
        let addrs = dns_a_until(
            consumer.dns_addr(),
            &format!("demo.{ZONE}."),
            "the consumer's DNS to answer demo",
            |a| !a.is_empty(),
        )
        .await?;
        let addr = addrs[0];
        assert_eq!(echo_through(addr, DEMO_PORT, "ping").await?, "ping");

        // Deregistered as an operator does: out of the provider's config and the catalog.
        provider_cfg.services.clear();
        pld_tests::objects::delete(
            &env.client(),
            Kind::Binding,
            &pld_core::catalog::binding_key("demo", &env.consumer_vpc.id),
        )
        .await?;
        pld_tests::objects::delete(&env.client(), Kind::Service, "demo").await?;
        if disconnecting {
            restart_provider(&env, &mut provider, &provider_cfg, point, &crashed).await?;
        }
        wait_until(
            Duration::from_secs(30),
            "everything pld built to be gone",
            || async {
                let inv = env.region.inventory();
                (built(&inv, &added) == (0, 0, 0) && inv.endpoint_services.is_empty()).then_some(())
            },
        )
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{e}: after a crash at {point}, left behind: {:?}",
                env.region.inventory()
            )
        })?;
        assert_eq!(
            cloud.describe_listeners(&alb.arn).await?,
            alb_listeners,
            "the ALB as it was"
        );
        provider.shutdown().await;
        consumer.shutdown().await;
        anyhow::Ok(())
    }
    .await;
    disarm(point);
    env.cluster.shutdown().await;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provider_killed_after_creating_the_nlb() -> anyhow::Result<()> {
    alb_front_converges_after_a_crash_at("provider-front-load-balancer-created", false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provider_killed_after_creating_the_target_group() -> anyhow::Result<()> {
    alb_front_converges_after_a_crash_at("provider-front-target-group-created", false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provider_killed_after_registering_the_alb() -> anyhow::Result<()> {
    alb_front_converges_after_a_crash_at("provider-front-targets-registered", false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provider_killed_after_creating_the_listener() -> anyhow::Result<()> {
    alb_front_converges_after_a_crash_at("provider-front-listener-created", false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provider_killed_after_deleting_the_listener() -> anyhow::Result<()> {
    alb_front_converges_after_a_crash_at("provider-front-listener-deleted", true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provider_killed_after_deleting_the_target_group() -> anyhow::Result<()> {
    alb_front_converges_after_a_crash_at("provider-front-target-group-deleted", true).await
}
