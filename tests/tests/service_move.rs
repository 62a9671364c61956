//! A live service moved to another load balancer, make-before-break: the provider's agent
//! makes a second endpoint service, each consumer's agent a second endpoint; the name flips to
//! the new endpoint once it is available, the old endpoint goes only after the flip has been
//! in sync for the record's TTL, and the old endpoint service once no consumer is left on it.
//! A client opening a fresh connection through the consumer agent's DNS answer every 20 ms
//! never fails, there and back; and when the service moves to another VPC, whose agent makes
//! the new endpoint service while the old VPC's agent keeps its own until no consumer is left.

use std::time::Duration;

use pld_agent::Agent;
use pld_cloud::sim::{echo_server, NewLoadBalancer, AZ_IDS};
use pld_cloud::{LoadBalancer, LoadBalancerKind};
use pld_proto::v1::{Acceptance, Approval, BindingStatus, Service};
use pld_tests::objects::service_status;
use pld_tests::region::{dns_a_until, Env, CONSUMER, DEMO_PORT, PROVIDER, ZONE};
use pld_tests::traffic::Prober;
use pld_tests::wait_until;

/// `demo` on `load_balancer_arn`, as `pld services register` writes it.
fn demo(env: &Env, load_balancer_arn: &str) -> Service {
    Service {
        name: "demo".into(),
        vpc_id: env.provider_vpc.id.clone(),
        load_balancer_arn: load_balancer_arn.into(),
        ports: vec![u32::from(DEMO_PORT)],
        acceptance: Acceptance::Auto as i32,
        allowed_principals: vec![format!("arn:aws:iam::{CONSUMER}:root")],
        ..Default::default()
    }
}

/// Another NLB of the provider's account, in `vpc_id`, in front of an echo service like the
/// first one's.
async fn second_nlb(env: &Env, vpc_id: &str, name: &str) -> anyhow::Result<LoadBalancer> {
    let echo = echo_server().await?;
    Ok(env.region.add_load_balancer(NewLoadBalancer {
        account: PROVIDER,
        vpc_id,
        kind: LoadBalancerKind::Network,
        name,
        az_ids: &AZ_IDS,
        ports: &[DEMO_PORT],
        targets: &[echo],
    }))
}

/// A provider's agent and a consumer's agent (record TTL 1 s, so a move's drain is short; the
/// move waits it out all the same), `demo` on the first NLB, and the consumer bound to it:
/// (provider, consumer, the binding's status once ready).
async fn bound(env: &Env) -> anyhow::Result<(Agent, Agent, BindingStatus)> {
    let (provider, _) = env
        .start_agent(
            env.agent_config(PROVIDER, &env.provider_vpc, Vec::new()),
            None,
        )
        .await?;
    let mut cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
    cfg.dns.ttl_seconds = 1;
    let (consumer, _) = env.start_agent(cfg, None).await?;
    env.register(demo(env, &env.nlb.arn)).await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    let first = env
        .wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;
    Ok((provider, consumer, first))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_moved_service_moves_its_consumer_there_and_back_without_a_failed_connection(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let second = second_nlb(&env, &env.provider_vpc.id, "demo-b").await?;
    let (provider, consumer, first) = bound(&env).await?;
    let client = Prober::start(consumer.dns_addr(), &format!("demo.{ZONE}."), DEMO_PORT);

    // To the second load balancer.
    env.register(demo(&env, &second.arn)).await?;
    let (there, steps) = env.moved_off("demo", &first.endpoint_id).await?;
    assert!(
        steps.contains(&("migrating".into(), "draining".into())),
        "the old endpoint outlives the flip by the TTL: {steps:?}"
    );
    let there_addrs: Vec<std::net::Ipv4Addr> = there
        .addresses
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    dns_a_until(
        consumer.dns_addr(),
        &format!("demo.{ZONE}."),
        "DNS to answer the new endpoint's addresses",
        |a| a == there_addrs.as_slice(),
    )
    .await?;
    let status = wait_until(
        Duration::from_secs(20),
        "the old endpoint service to be deleted",
        || async {
            service_status(&env.client(), "demo")
                .await
                .filter(|s| s.retiring.is_empty() && s.load_balancer_arns == [second.arn.clone()])
        },
    )
    .await?;
    let inventory = env.region.inventory();
    assert_eq!(inventory.endpoints.len(), 1, "{inventory:?}");
    assert_eq!(inventory.endpoint_services.len(), 1, "{inventory:?}");
    assert!(!status.endpoint_service_name.is_empty());

    // And back.
    env.register(demo(&env, &env.nlb.arn)).await?;
    let (back, steps) = env.moved_off("demo", &there.endpoint_id).await?;
    assert!(
        steps.contains(&("migrating".into(), "draining".into())),
        "{steps:?}"
    );
    assert_ne!(back.endpoint_id, first.endpoint_id, "a new endpoint");
    wait_until(
        Duration::from_secs(20),
        "the second endpoint service to be deleted",
        || async {
            service_status(&env.client(), "demo")
                .await
                .filter(|s| s.retiring.is_empty() && s.load_balancer_arns == [env.nlb.arn.clone()])
        },
    )
    .await?;
    let (ok, failures) = client.stop().await?;
    assert!(
        failures.is_empty(),
        "{} of {} connections failed: {failures:?}",
        failures.len(),
        ok as usize + failures.len()
    );
    assert!(ok > 50, "only {ok} connections were tried");
    let inventory = env.region.inventory();
    assert_eq!(inventory.endpoints.len(), 1, "{inventory:?}");
    assert_eq!(inventory.endpoint_services.len(), 1, "{inventory:?}");
    // Both moves are counted, each at least the TTL long.
    let metrics = consumer.metrics().render();
    let metric = |series: &str| pld_tests::metric(&metrics, series);
    assert_eq!(
        metric("pld_agent_binding_moves_total"),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        metric("pld_agent_binding_move_duration_seconds_count"),
        Some(2.0)
    );
    assert_eq!(
        metric("pld_agent_binding_move_duration_seconds_bucket{le=\"1\"}"),
        Some(0.0),
        "{metrics}"
    );
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_moved_to_another_vpc_is_served_from_there_and_the_old_vpc_lets_go(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let elsewhere = env.region.add_vpc(PROVIDER, "10.2.0.0/16");
    let there = second_nlb(&env, &elsewhere.id, "demo-elsewhere").await?;
    let (old_provider, _) = env
        .start_agent(
            env.agent_config(PROVIDER, &env.provider_vpc, Vec::new()),
            None,
        )
        .await?;
    let (new_provider, _) = env
        .start_agent(env.agent_config(PROVIDER, &elsewhere, Vec::new()), None)
        .await?;
    let mut cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
    cfg.dns.ttl_seconds = 1;
    let (consumer, _) = env.start_agent(cfg, None).await?;
    env.register(demo(&env, &env.nlb.arn)).await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    let first = env
        .wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;
    let before = env.region.inventory().endpoint_services;
    assert_eq!(before.len(), 1);
    let client = Prober::start(consumer.dns_addr(), &format!("demo.{ZONE}."), DEMO_PORT);

    let mut moved = demo(&env, &there.arn);
    moved.vpc_id = elsewhere.id.clone();
    env.register(moved).await?;
    let (now, steps) = env.moved_off("demo", &first.endpoint_id).await?;
    assert!(
        steps.contains(&("migrating".into(), "draining".into())),
        "{steps:?}"
    );
    // The old VPC's agent deletes its endpoint service once the consumer has left it.
    let left = wait_until(
        Duration::from_secs(20),
        "the old VPC's endpoint service to be deleted",
        || async {
            let services = env.region.inventory().endpoint_services;
            (services.len() == 1 && services != before).then_some(services)
        },
    )
    .await?;
    let status = service_status(&env.client(), "demo")
        .await
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    assert_eq!(status.load_balancer_arns, vec![there.arn.clone()]);
    assert!(status.retiring.is_empty(), "{status:?}");
    assert_eq!(left.len(), 1);
    let (ok, failures) = client.stop().await?;
    assert!(failures.is_empty(), "{failures:?} ({ok} worked)");
    assert_eq!(env.region.inventory().endpoints.len(), 1);
    assert_ne!(now.endpoint_id, first.endpoint_id);
    old_provider.shutdown().await;
    new_provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_the_consumer_may_not_make_stalls_with_the_old_endpoint_still_serving(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let second = second_nlb(&env, &env.provider_vpc.id, "demo-b").await?;
    let (provider, consumer, first) = bound(&env).await?;
    let client = Prober::start(consumer.dns_addr(), &format!("demo.{ZONE}."), DEMO_PORT);

    // The consumer's role may not create endpoints: the move cannot be made.
    env.region
        .deny(CONSUMER, pld_cloud::Action::CreateVpcEndpoint, true);
    env.register(demo(&env, &second.arn)).await?;
    let stalled = wait_until(
        Duration::from_secs(20),
        "the binding to say why its move stalls",
        || async {
            env.binding_status("demo")
                .await
                .filter(|s| s.phase == "migrating" && !s.message.is_empty())
        },
    )
    .await?;
    assert_eq!(stalled.endpoint_id, first.endpoint_id, "{stalled:?}");
    assert_eq!(stalled.addresses, first.addresses);
    assert!(
        stalled.message.contains("UnauthorizedOperation"),
        "{}",
        stalled.message
    );
    let m = stalled.migration.clone().unwrap_or_default();
    assert_eq!(
        (m.from_endpoint_id.as_str(), m.step.as_str()),
        (first.endpoint_id.as_str(), "creating")
    );
    assert_eq!(
        stalled.pending.first().map(|p| p.action.as_str()),
        Some("CreateVpcEndpoint")
    );
    // Resolve answers with the endpoint that serves, at once.
    let answer = pld_tests::region::resolve(&consumer, "demo", Duration::from_secs(0)).await?;
    assert_eq!(answer.phase, "migrating");
    assert_eq!(answer.addresses, first.addresses);

    // Allowed again, the move goes through.
    env.region
        .deny(CONSUMER, pld_cloud::Action::CreateVpcEndpoint, false);
    let (moved, _) = env.moved_off("demo", &first.endpoint_id).await?;
    assert!(moved.message.is_empty(), "{moved:?}");
    let (ok, failures) = client.stop().await?;
    assert!(failures.is_empty(), "{failures:?} ({ok} worked)");
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_the_provider_may_not_make_leaves_its_consumers_served_where_they_are(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let second = second_nlb(&env, &env.provider_vpc.id, "demo-b").await?;
    let (provider, consumer, first) = bound(&env).await?;
    let client = Prober::start(consumer.dns_addr(), &format!("demo.{ZONE}."), DEMO_PORT);

    // The provider's role may not create endpoint services: its status fails and names no
    // endpoint service, which must not take the consumer's working endpoint down.
    env.region.deny(
        PROVIDER,
        pld_cloud::Action::CreateVpcEndpointServiceConfiguration,
        true,
    );
    env.register(demo(&env, &second.arn)).await?;
    wait_until(
        Duration::from_secs(20),
        "the service to fail naming the denied call",
        || async {
            service_status(&env.client(), "demo")
                .await
                .filter(|s| s.state == "failed" && s.message.contains("UnauthorizedOperation"))
        },
    )
    .await?;
    for _ in 0..3 {
        consumer.reconciler().pass().await;
    }
    let still = env
        .binding_status("demo")
        .await
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    assert_eq!(
        (still.phase.as_str(), still.endpoint_id.as_str()),
        ("ready", first.endpoint_id.as_str()),
        "{still:?}"
    );
    assert_eq!(env.region.inventory().endpoints.len(), 1);
    let (ok, failures) = client.stop().await?;
    assert!(failures.is_empty(), "{failures:?} ({ok} worked)");
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumers_that_do_not_move_within_the_drain_grace_period_are_cut() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let second = second_nlb(&env, &env.provider_vpc.id, "demo-b").await?;
    let mut provider_cfg = env.agent_config(PROVIDER, &env.provider_vpc, Vec::new());
    provider_cfg.drain_grace_seconds = 2;
    let (provider, _) = env.start_agent(provider_cfg, None).await?;
    let consumer_cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
    let (consumer, _) = env.start_agent(consumer_cfg.clone(), None).await?;
    env.register(demo(&env, &env.nlb.arn)).await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    let first = env
        .wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;

    // The consumer's agent is down: nothing moves it.
    consumer.shutdown().await;
    env.register(demo(&env, &second.arn)).await?;
    let waiting = wait_until(
        Duration::from_secs(20),
        "the old endpoint service to wait, saying until when",
        || async {
            service_status(&env.client(), "demo")
                .await
                .filter(|s| s.retiring.len() == 1 && s.retiring[0].connections == 1)
        },
    )
    .await?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    let ends = waiting.retiring[0].grace_ends_unix_ms;
    assert!(
        ends > now_ms.saturating_sub(2_000) && ends <= now_ms + 2_000,
        "the grace period ends {ends}, about 2 s after it began (now {now_ms})"
    );
    // Over: the consumer left on it is cut and the old endpoint service deleted.
    wait_until(
        Duration::from_secs(20),
        "the old endpoint service to be deleted after its grace period",
        || async {
            service_status(&env.client(), "demo")
                .await
                .filter(|s| s.retiring.is_empty())
        },
    )
    .await?;
    assert_eq!(env.region.inventory().endpoint_services.len(), 1);

    // Back, the consumer's agent replaces its cut endpoint with one to the new service.
    let (consumer, _) = env.start_agent(consumer_cfg, None).await?;
    let back = wait_until(
        Duration::from_secs(20),
        "the consumer on the new endpoint service",
        || async {
            env.binding_status("demo")
                .await
                .filter(|s| s.phase == "ready" && s.endpoint_id != first.endpoint_id)
        },
    )
    .await?;
    assert!(back.migration.is_none());
    assert_eq!(env.region.inventory().endpoints.len(), 1);
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}
