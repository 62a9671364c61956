//! A live service changed with `pld services register` (a put of the whole spec): its ports,
//! its principals and its acceptance in place, and its load balancer by a second endpoint
//! service. Nothing at AWS is rebuilt for ports; a consumer the service stops allowing ends
//! `rejected` with its endpoint gone; a manual service turned `auto` accepts what was waiting;
//! a service on another load balancer keeps its old endpoint service while consumers use it.

use std::time::Duration;

use pld_cloud::sim::{echo_server, Faults, NewLoadBalancer, AZ_IDS};
use pld_cloud::LoadBalancerKind;
use pld_proto::v1::{Acceptance, Approval, BindingStatus, Service};
use pld_tests::objects::service_status;
use pld_tests::region::{dns_a_until, resolve, Env, CONSUMER, DEMO_PORT, PROVIDER, ZONE};
use pld_tests::wait_until;

/// `demo` on the provider VPC's NLB, as `pld services register` writes it.
fn demo(env: &Env, ports: &[u32], principals: &[&str], acceptance: Acceptance) -> Service {
    Service {
        name: "demo".into(),
        vpc_id: env.provider_vpc.id.clone(),
        load_balancer_arn: env.nlb.arn.clone(),
        ports: ports.to_vec(),
        acceptance: acceptance as i32,
        allowed_principals: principals.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    }
}

/// Registers `service` and binds the consumer VPC to it; the binding's status once ready.
async fn bind_ready(env: &Env, service: Service) -> anyhow::Result<BindingStatus> {
    env.register(service).await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    env.wait_phase("demo", "ready", Duration::from_secs(20))
        .await
}

fn consumer_root() -> String {
    format!("arn:aws:iam::{CONSUMER}:root")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ports_change_at_once_and_nothing_at_aws_is_rebuilt() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let root = consumer_root();
    let ((provider, provider_calls), (consumer, consumer_calls)) =
        env.start_pair(Vec::new(), Some(100.0)).await?;
    let port = u32::from(DEMO_PORT);
    let ready = bind_ready(&env, demo(&env, &[port], &[&root], Acceptance::Auto)).await?;
    for agent in [&provider, &consumer] {
        agent.reconciler().pass().await;
    }
    let before = (provider_calls.stats(), consumer_calls.stats());

    env.register(demo(&env, &[port, 8443], &[&root], Acceptance::Auto))
        .await?;
    let answered = wait_until(
        Duration::from_secs(10),
        "resolve to give the new ports",
        || async {
            resolve(&consumer, "demo", Duration::ZERO)
                .await
                .ok()
                .filter(|r| r.ports == [port, 8443])
        },
    )
    .await?;
    assert_eq!(answered.endpoint_id, ready.endpoint_id, "the same endpoint");
    for agent in [&provider, &consumer] {
        agent.reconciler().pass().await;
    }
    let after = (provider_calls.stats(), consumer_calls.stats());
    assert_eq!(
        after.0.mutating_calls() - before.0.mutating_calls(),
        0,
        "the provider rebuilt something: {:?}",
        after.0.calls
    );
    assert_eq!(
        after.1.mutating_calls() - before.1.mutating_calls(),
        0,
        "the consumer rebuilt something: {:?}",
        after.1.calls
    );
    let status = env.binding_status("demo").await;
    assert_eq!(status.map(|s| s.phase), Some("ready".into()));
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumer_the_service_stops_allowing_is_rejected_and_its_endpoint_removed(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let root = consumer_root();
    let other = "arn:aws:iam::333333333333:root";
    let ((provider, _), (consumer, _)) = env.start_pair(Vec::new(), None).await?;
    let port = u32::from(DEMO_PORT);
    let ready = bind_ready(&env, demo(&env, &[port], &[&root, other], Acceptance::Auto)).await?;
    let name = format!("demo.{ZONE}.");

    // The consumer's account leaves the principals.
    env.register(demo(&env, &[port], &[other], Acceptance::Auto))
        .await?;
    let rejected = env
        .wait_phase("demo", "rejected", Duration::from_secs(20))
        .await?;
    assert!(
        rejected
            .message
            .contains(&format!("does not allow account {CONSUMER}"))
            && rejected.message.contains(other),
        "{rejected:?}"
    );
    assert!(rejected.endpoint_id.is_empty(), "{rejected:?}");
    wait_until(
        Duration::from_secs(20),
        "the endpoint and its name to be gone",
        || async {
            let inventory = env.region.inventory();
            (inventory.endpoints.is_empty()
                && !inventory.records.iter().any(|r| r.starts_with(&name)))
            .then_some(())
        },
    )
    .await?;
    dns_a_until(
        consumer.dns_addr(),
        &name,
        "DNS to stop answering the removed binding",
        <[_]>::is_empty,
    )
    .await?;
    // The endpoint service's permissions follow the catalog: the account is no longer listed.
    let services = env.region.inventory().endpoint_services;
    let provider_cloud = env.region.client(PROVIDER);
    let principals = pld_cloud::Cloud::allowed_principals(&provider_cloud, &services[0]).await?;
    assert_eq!(principals, vec![other.to_string()]);
    // It stays rejected: no endpoint is made again while the service does not allow it.
    for _ in 0..3 {
        consumer.reconciler().pass().await;
    }
    assert!(env.region.inventory().endpoints.is_empty());

    // Allowed again: a new endpoint, ready.
    env.register(demo(&env, &[port], &[&root, other], Acceptance::Auto))
        .await?;
    let again = env
        .wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;
    assert_ne!(again.endpoint_id, ready.endpoint_id);
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_provider_cuts_a_connection_its_service_no_longer_allows_while_the_consumer_is_down(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let root = consumer_root();
    let other = "arn:aws:iam::333333333333:root";
    let ((provider, _), (consumer, _)) = env.start_pair(Vec::new(), None).await?;
    let port = u32::from(DEMO_PORT);
    let ready = bind_ready(&env, demo(&env, &[port], &[&root, other], Acceptance::Auto)).await?;
    consumer.shutdown().await;

    env.register(demo(&env, &[port], &[other], Acceptance::Auto))
        .await?;
    // The consumer cannot take its endpoint down; the provider rejects the live connection.
    let consumer_cloud = env.region.client(CONSUMER);
    wait_until(
        Duration::from_secs(20),
        "the connection to be rejected",
        || async {
            let endpoints = pld_cloud::Cloud::describe_endpoints(
                &consumer_cloud,
                &env.consumer_vpc.id,
                &Default::default(),
            )
            .await
            .ok()?;
            endpoints
                .iter()
                .any(|e| e.id == ready.endpoint_id && e.state.eq_ignore_ascii_case("rejected"))
                .then_some(())
        },
    )
    .await?;
    provider.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manual_service_turned_auto_accepts_what_was_waiting() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    // Describes may lag, as AWS's do; the decision must not depend on them being fresh.
    env.region.set_faults(Faults {
        stale_describe: Duration::from_millis(200),
        ..Faults::default()
    });
    let root = consumer_root();
    let ((provider, _), (consumer, _)) = env.start_pair(Vec::new(), None).await?;
    let port = u32::from(DEMO_PORT);
    env.register(demo(&env, &[port], &[&root], Acceptance::Manual))
        .await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    env.wait_phase("demo", "pendingAcceptance", Duration::from_secs(20))
        .await?;

    env.register(demo(&env, &[port], &[&root], Acceptance::Auto))
        .await?;
    env.wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;

    // Back to manual: the live connection stays; only new ones wait for an operator.
    env.register(demo(&env, &[port], &[&root], Acceptance::Manual))
        .await?;
    for _ in 0..3 {
        provider.reconciler().pass().await;
        consumer.reconciler().pass().await;
    }
    assert_eq!(
        env.binding_status("demo").await.map(|s| s.phase),
        Some("ready".into())
    );
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_on_another_load_balancer_keeps_its_old_endpoint_service_until_it_drains(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let root = consumer_root();
    let echo = echo_server().await?;
    let second = env.region.add_load_balancer(NewLoadBalancer {
        account: PROVIDER,
        vpc_id: &env.provider_vpc.id,
        kind: LoadBalancerKind::Network,
        name: "demo-b",
        az_ids: &AZ_IDS,
        ports: &[DEMO_PORT],
        targets: &[echo],
    });
    let ((provider, _), (consumer, _)) = env.start_pair(Vec::new(), None).await?;
    let port = u32::from(DEMO_PORT);
    let bound = bind_ready(&env, demo(&env, &[port], &[&root], Acceptance::Auto)).await?;
    let client = env.client();
    let first = service_status(&client, "demo")
        .await
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    assert_eq!(first.load_balancer_arns, vec![env.nlb.arn.clone()]);

    // The consumer's agent is down while the service moves: its endpoint stays on the old
    // endpoint service, which stays for it.
    consumer.shutdown().await;
    let mut moved = demo(&env, &[port], &[&root], Acceptance::Auto);
    moved.load_balancer_arn = second.arn.clone();
    env.register(moved).await?;
    let status = wait_until(
        Duration::from_secs(20),
        "a second endpoint service on the new load balancer",
        || async {
            service_status(&client, "demo")
                .await
                .filter(|s| s.load_balancer_arns == [second.arn.clone()] && s.state == "available")
        },
    )
    .await?;
    assert_ne!(status.endpoint_service_name, first.endpoint_service_name);
    assert_eq!(status.retiring.len(), 1, "{status:?}");
    let old = &status.retiring[0];
    assert_eq!(old.endpoint_service_name, first.endpoint_service_name);
    assert_eq!(old.load_balancer_arns, vec![env.nlb.arn.clone()]);
    assert_eq!(old.connections, 1, "the consumer is still on it");
    assert_eq!(env.region.inventory().endpoint_services.len(), 2);
    for _ in 0..3 {
        provider.reconciler().pass().await;
    }
    assert_eq!(env.region.inventory().endpoint_services.len(), 2);
    assert_eq!(
        env.binding_status("demo").await.map(|s| s.endpoint_id),
        Some(bound.endpoint_id.clone())
    );

    // Its agent back, the consumer moves; its old endpoint gone, so is the old endpoint
    // service.
    let mut cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
    cfg.dns.ttl_seconds = 1;
    let (consumer, _) = env.start_agent(cfg, None).await?;
    let drained = wait_until(
        Duration::from_secs(30),
        "the old endpoint service to be deleted",
        || async {
            service_status(&client, "demo")
                .await
                .filter(|s| s.retiring.is_empty())
        },
    )
    .await?;
    assert_eq!(drained.endpoint_service_name, status.endpoint_service_name);
    assert_eq!(env.region.inventory().endpoint_services.len(), 1);
    let on_new = env
        .wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;
    assert_ne!(on_new.endpoint_id, bound.endpoint_id);

    // And back to the first load balancer, whose endpoint service is deleted: AWS answers its
    // client token with that one, so a new one is made under the next token.
    env.register(demo(&env, &[port], &[&root], Acceptance::Auto))
        .await?;
    let back = wait_until(
        Duration::from_secs(30),
        "a new endpoint service on the first load balancer",
        || async {
            service_status(&client, "demo").await.filter(|s| {
                s.load_balancer_arns == [env.nlb.arn.clone()]
                    && s.state == "available"
                    && s.retiring.is_empty()
            })
        },
    )
    .await?;
    assert_ne!(back.endpoint_service_name, first.endpoint_service_name);
    assert_eq!(env.region.inventory().endpoint_services.len(), 1);
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}
