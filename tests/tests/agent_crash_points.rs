//! An agent killed at every step of provider and consumer reconciliation — right after creating
//! the endpoint service, after accepting a connection, before deleting the service, after
//! creating the endpoint, after creating the hosted zone, after submitting the DNS change, after
//! deleting the endpoint — converges once restarted: one endpoint service, one endpoint, one
//! zone and one record while connected; nothing of pld's left after disconnecting and
//! deregistering. The same for a move to another load balancer, killed at each of its steps
//! (either agent): the binding ends on the new endpoint with nothing of the old side left, and
//! the name never points at an endpoint that is not available.
//!
//! Crash points are process-wide (`fail` crate), so these tests run one at a time, in a test
//! binary of their own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pld_agent::config::{AcceptanceConfig, AgentConfig};
use pld_agent::crash_points::{crash_once_at, disarm};
use pld_agent::Agent;
use pld_cloud::sim::Inventory;
use pld_cloud::Cloud;
use pld_proto::v1::{Approval, Kind};
use pld_tests::region::{Env, CONSUMER, PROVIDER};
use pld_tests::wait_until;
use tokio::sync::Mutex;
use tracing::info;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// Which agent a crash point stops, and whether it is met connecting or disconnecting.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Provider,
    Consumer,
}

struct Agents {
    provider: Agent,
    consumer: Agent,
    provider_cfg: AgentConfig,
    consumer_cfg: AgentConfig,
}

impl Agents {
    /// Starts a provider offering `demo` to the consumer's account, and a consumer.
    async fn start(env: &Env) -> anyhow::Result<Agents> {
        let principal = format!("arn:aws:iam::{CONSUMER}:root");
        let provider_cfg = env.agent_config(
            PROVIDER,
            &env.provider_vpc,
            vec![env.demo_service(AcceptanceConfig::Auto, &[&principal])],
        );
        let consumer_cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
        Agents::start_with(env, provider_cfg, consumer_cfg).await
    }

    async fn start_with(
        env: &Env,
        provider_cfg: AgentConfig,
        consumer_cfg: AgentConfig,
    ) -> anyhow::Result<Agents> {
        Ok(Agents {
            provider: env.start_agent(provider_cfg.clone(), None).await?.0,
            consumer: env.start_agent(consumer_cfg.clone(), None).await?.0,
            provider_cfg,
            consumer_cfg,
        })
    }

    async fn shutdown(self) {
        self.provider.shutdown().await;
        self.consumer.shutdown().await;
    }

    /// Waits for the crash, then kills what is left of that agent and starts a new one.
    async fn restart_after_crash(
        &mut self,
        env: &Env,
        point: &str,
        side: Side,
        crashed: &AtomicBool,
    ) -> anyhow::Result<()> {
        wait_until(
            Duration::from_secs(20),
            &format!("an agent to reach {point}"),
            || async { crashed.load(Ordering::SeqCst).then_some(()) },
        )
        .await?;
        info!(point, "crashed there; starting a new agent");
        match side {
            Side::Provider => {
                let (fresh, _) = env.start_agent(self.provider_cfg.clone(), None).await?;
                std::mem::replace(&mut self.provider, fresh).abort();
            }
            Side::Consumer => {
                let (fresh, _) = env.start_agent(self.consumer_cfg.clone(), None).await?;
                std::mem::replace(&mut self.consumer, fresh).abort();
            }
        }
        Ok(())
    }
}

/// Disarms the crash point and stops the cluster, whatever the test's outcome.
async fn tear_down(env: Env, point: &str, result: anyhow::Result<()>) -> anyhow::Result<()> {
    disarm(point);
    env.cluster.shutdown().await;
    result
}

/// Waits for the consumer's binding to `demo` to be ready.
async fn ready(env: &Env) -> anyhow::Result<()> {
    wait_until(
        Duration::from_secs(30),
        "the binding to be ready",
        || async {
            env.binding_status("demo")
                .await
                .filter(|s| s.phase == "ready")
                .map(|_| ())
        },
    )
    .await
}

fn records(inv: &Inventory) -> Vec<String> {
    let mut r = inv.records.clone();
    r.sort();
    r
}

async fn converges_after_a_crash_at(
    point: &'static str,
    side: Side,
    disconnecting: bool,
) -> anyhow::Result<()> {
    let _turn = ONE_AT_A_TIME.lock().await;
    pld_tests::init_tracing();
    let env = Env::instant().await?;
    let crashed = crash_once_at(point).map_err(anyhow::Error::msg)?;
    let result = async {
        let mut agents = Agents::start(&env).await?;
        env.put_binding("demo", Approval::Unspecified).await?;
        if !disconnecting {
            agents
                .restart_after_crash(&env, point, side, &crashed)
                .await?;
        }
        ready(&env).await.map_err(|e| {
            anyhow::anyhow!(
                "{e}: after a crash at {point}; inventory {:?}",
                env.region.inventory()
            )
        })?;
        let connected = wait_until(
            Duration::from_secs(20),
            "exactly one of each resource",
            || async {
                let inv = env.region.inventory();
                (inv.endpoint_services.len() == 1
                    && inv.endpoints.len() == 1
                    && inv.hosted_zones.len() == 1
                    // The A record and the TXT record that says it is pld's.
                    && records(&inv) == ["demo.pld.test. A", "demo.pld.test. TXT"])
                .then_some(inv)
            },
        )
        .await;
        let connected = connected.map_err(|e| {
            anyhow::anyhow!(
                "{e}: after a crash at {point}: {:?}",
                env.region.inventory()
            )
        })?;
        info!(?connected, "connected");
        // A crash between CreateHostedZone and ChangeTagsForResource leaves a zone that the
        // restarted agent knows by its caller reference, and tags.
        let consumer_cloud = env.region.client(CONSUMER);
        let cluster_id = env.cluster_id().await?;
        for zone in &connected.hosted_zones {
            let tags = consumer_cloud.hosted_zone_tags(zone).await?;
            assert_eq!(
                tags.get("pld:cluster"),
                Some(&cluster_id),
                "zone {zone} after a crash at {point}: {tags:?}"
            );
        }

        // Disconnect, and deregister as an operator does: the service leaves the provider's
        // config (so a restarted provider does not register it again) and the catalog.
        agents.provider_cfg.services.clear();
        pld_tests::objects::delete(
            &env.client(),
            Kind::Binding,
            &pld_core::catalog::binding_key("demo", &env.consumer_vpc.id),
        )
        .await?;
        pld_tests::objects::delete(&env.client(), Kind::Service, "demo").await?;
        if disconnecting {
            agents
                .restart_after_crash(&env, point, side, &crashed)
                .await?;
        }
        wait_until(
            Duration::from_secs(30),
            "everything pld made to be gone",
            || async {
                let inv = env.region.inventory();
                (inv.endpoint_services.is_empty()
                    && inv.endpoints.is_empty()
                    && inv.hosted_zones.is_empty()
                    && inv.records.is_empty())
                .then_some(())
            },
        )
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{e}: after a crash at {point}, left behind: {:?}",
                env.region.inventory()
            )
        })?;
        agents.shutdown().await;
        anyhow::Ok(())
    }
    .await;
    tear_down(env, point, result).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provider_killed_after_creating_the_endpoint_service() -> anyhow::Result<()> {
    converges_after_a_crash_at("provider-service-created", Side::Provider, false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provider_killed_after_accepting_the_connection() -> anyhow::Result<()> {
    converges_after_a_crash_at("provider-connections-accepted", Side::Provider, false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provider_killed_before_deleting_the_endpoint_service() -> anyhow::Result<()> {
    converges_after_a_crash_at("provider-service-deleting", Side::Provider, true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumer_killed_after_creating_the_endpoint() -> anyhow::Result<()> {
    converges_after_a_crash_at("consumer-endpoint-created", Side::Consumer, false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumer_killed_after_creating_the_hosted_zone() -> anyhow::Result<()> {
    converges_after_a_crash_at("consumer-zone-created", Side::Consumer, false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumer_killed_after_submitting_the_dns_change() -> anyhow::Result<()> {
    converges_after_a_crash_at("consumer-dns-submitted", Side::Consumer, false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumer_killed_after_deleting_the_endpoint() -> anyhow::Result<()> {
    converges_after_a_crash_at("consumer-endpoint-deleted", Side::Consumer, true).await
}

#[test]
fn every_crash_point_has_a_test() {
    // The points of the NLB pld builds in front of an ALB are crashed at in their own binary.
    let source = [
        include_str!("agent_crash_points.rs"),
        include_str!("alb_front_crash_points.rs"),
    ]
    .concat();
    for point in pld_agent::crash_points::POINTS {
        assert!(
            source.contains(&format!("converges_after_a_crash_at(\"{point}\"")),
            "no test crashes at {point}"
        );
    }
}

/// An agent that restarts while its DNS change is in flight has no change id to wait on; the
/// records it finds in place may not have reached Route 53's servers. It must submit them again
/// and wait for that change, not call the binding ready on sight.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumer_restarted_mid_publish_waits_for_route53_before_ready() -> anyhow::Result<()> {
    const INSYNC: Duration = Duration::from_secs(2);
    let _turn = ONE_AT_A_TIME.lock().await;
    pld_tests::init_tracing();
    let mut config = pld_cloud::sim::SimConfig::instant("us-east-1");
    config.latency.change_insync = INSYNC;
    let env = Env::start(config, &pld_cloud::sim::AZ_IDS).await?;
    let point = "consumer-dns-submitted";
    let crashed = crash_once_at(point).map_err(anyhow::Error::msg)?;
    let result = async {
        let mut agents = Agents::start(&env).await?;
        env.put_binding("demo", Approval::Unspecified).await?;
        agents
            .restart_after_crash(&env, point, Side::Consumer, &crashed)
            .await?;
        // The change submitted before the crash is in sync INSYNC after its submission, which
        // came before this instant; one the new agent submits is in sync INSYNC after it.
        let restarted = std::time::Instant::now();
        ready(&env).await?;
        let waited = restarted.elapsed();
        assert!(
            waited >= INSYNC,
            "ready {waited:?} after the restart: sooner than any change the new agent submitted \
             could be in sync ({INSYNC:?})"
        );
        agents.shutdown().await;
        anyhow::Ok(())
    }
    .await;
    tear_down(env, point, result).await
}

/// The move of `demo` to a second load balancer, with the agent on `side` killed the first time
/// it reaches `point` after the binding was ready: once restarted, the binding ends ready on a
/// new endpoint, with one endpoint service, one endpoint, one zone and its two records left;
/// and the name never pointed at an endpoint that was not available.
async fn a_move_converges_after_a_crash_at(point: &'static str, side: Side) -> anyhow::Result<()> {
    let _turn = ONE_AT_A_TIME.lock().await;
    pld_tests::init_tracing();
    let env = Env::instant().await?;
    let result = async {
        let echo = pld_cloud::sim::echo_server().await?;
        let second = env
            .region
            .add_load_balancer(pld_cloud::sim::NewLoadBalancer {
                account: PROVIDER,
                vpc_id: &env.provider_vpc.id,
                kind: pld_cloud::LoadBalancerKind::Network,
                name: "demo-b",
                az_ids: &pld_cloud::sim::AZ_IDS,
                ports: &[pld_tests::region::DEMO_PORT],
                targets: &[echo],
            });
        // `demo` is registered through the catalog, not the provider's config: a restarted
        // provider would register its config's spec again, undoing the move. A short TTL
        // keeps the drain short.
        let provider_cfg = env.agent_config(PROVIDER, &env.provider_vpc, Vec::new());
        let mut consumer_cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
        consumer_cfg.dns.ttl_seconds = 1;
        let mut agents = Agents::start_with(&env, provider_cfg, consumer_cfg).await?;
        let principal = format!("arn:aws:iam::{CONSUMER}:root");
        let mut demo = pld_proto::v1::Service {
            name: "demo".into(),
            vpc_id: env.provider_vpc.id.clone(),
            load_balancer_arn: env.nlb.arn.clone(),
            ports: vec![u32::from(pld_tests::region::DEMO_PORT)],
            acceptance: pld_proto::v1::Acceptance::Auto as i32,
            allowed_principals: vec![principal],
            ..Default::default()
        };
        put_service(&env, demo.clone()).await?;
        env.put_binding("demo", Approval::Unspecified).await?;
        ready(&env).await?;
        let first = env
            .binding_status("demo")
            .await
            .ok_or_else(|| anyhow::anyhow!("no status"))?;

        // The name is watched from here on.
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let watcher = {
            let (region, stop) = (env.region.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    seen.extend(region.dangling_records());
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                seen
            })
        };
        let crashed = crash_once_at(point).map_err(anyhow::Error::msg)?;
        demo.load_balancer_arn = second.arn.clone();
        put_service(&env, demo).await?;
        agents
            .restart_after_crash(&env, point, side, &crashed)
            .await?;
        let moved = wait_until(
            Duration::from_secs(30),
            "the binding to be ready on a new endpoint, and one of each resource",
            || async {
                let st = env.binding_status("demo").await?;
                let inv = env.region.inventory();
                (st.phase == "ready"
                    && st.endpoint_id != first.endpoint_id
                    && inv.endpoint_services.len() == 1
                    && inv.endpoints.len() == 1
                    && inv.hosted_zones.len() == 1
                    && records(&inv) == ["demo.pld.test. A", "demo.pld.test. TXT"])
                .then_some(inv)
            },
        )
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{e}: after a crash at {point} during a move: {:?}",
                env.region.inventory()
            )
        })?;
        info!(?moved, "moved");
        stop.store(true, Ordering::Relaxed);
        let dangling = watcher.await?;
        assert!(
            dangling.is_empty(),
            "after a crash at {point}, the name pointed at an endpoint that was not available: \
             {dangling:?}"
        );
        agents.shutdown().await;
        anyhow::Ok(())
    }
    .await;
    tear_down(env, point, result).await
}

async fn put_service(env: &Env, service: pld_proto::v1::Service) -> anyhow::Result<()> {
    let object = pld_proto::v1::Object {
        object: Some(pld_proto::v1::object::Object::Service(service)),
    };
    env.client().put(object, None).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_survives_the_provider_killed_after_creating_the_new_endpoint_service(
) -> anyhow::Result<()> {
    a_move_converges_after_a_crash_at("provider-service-created", Side::Provider).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_survives_the_provider_killed_after_accepting_the_new_endpoint() -> anyhow::Result<()>
{
    a_move_converges_after_a_crash_at("provider-connections-accepted", Side::Provider).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_survives_the_provider_killed_before_deleting_the_old_endpoint_service(
) -> anyhow::Result<()> {
    a_move_converges_after_a_crash_at("provider-service-deleting", Side::Provider).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_survives_the_consumer_killed_after_creating_the_new_endpoint() -> anyhow::Result<()>
{
    a_move_converges_after_a_crash_at("consumer-endpoint-created", Side::Consumer).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_survives_the_consumer_killed_after_flipping_the_name() -> anyhow::Result<()> {
    a_move_converges_after_a_crash_at("consumer-dns-submitted", Side::Consumer).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_survives_the_consumer_killed_after_deleting_the_old_endpoint() -> anyhow::Result<()>
{
    a_move_converges_after_a_crash_at("consumer-endpoint-deleted", Side::Consumer).await
}
