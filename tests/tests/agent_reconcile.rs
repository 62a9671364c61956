//! Agents against the simulated region, over real gRPC on loopback: the PrivateLink flow end to
//! end, policies, placement errors, crashes, faults and cleanup.

use std::time::Duration;

use pld_agent::config::AcceptanceConfig;
use pld_cloud::sim::{Faults, Latency, SimConfig, AZ_IDS};
use pld_proto::v1::{object, Approval, GetRequest, Kind};
use pld_tests::region::{
    dns_a, dns_a_until, echo_through, resolve, Env, CONSUMER, DEMO_PORT, PROVIDER, ZONE,
};
use pld_tests::wait_until;
use tracing::info;

fn consumer_root() -> String {
    format!("arn:aws:iam::{CONSUMER}:root")
}

async fn delete(env: &Env, kind: Kind, key: &str) -> anyhow::Result<()> {
    Ok(pld_tests::objects::delete(&env.client(), kind, key).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_resolves_a_service_and_bytes_flow_through_the_endpoint() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let provider_cfg = env.agent_config(
        PROVIDER,
        &env.provider_vpc,
        vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()])],
    );
    let (provider, _) = env.start_agent(provider_cfg, None).await?;
    let (consumer, _) = env
        .start_agent(
            env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new()),
            None,
        )
        .await?;

    info!("a host asks the consumer's agent: the binding is created on demand and becomes ready");
    let answer = resolve(&consumer, "demo", Duration::from_secs(20)).await?;
    assert_eq!(answer.phase, "ready", "{answer:?}");
    assert_eq!(answer.dns_name, format!("demo.{ZONE}"));
    assert_eq!(answer.ports, vec![u32::from(DEMO_PORT)]);
    assert_eq!(
        answer.addresses.len(),
        AZ_IDS.len(),
        "one ENI per supported AZ"
    );

    info!("the agent's DNS answers with the endpoint's addresses, and the echo service answers through it");
    let (rcode, addrs) = dns_a(consumer.dns_addr(), &format!("demo.{ZONE}.")).await?;
    assert_eq!(rcode, 0);
    assert_eq!(addrs.len(), AZ_IDS.len());
    assert_eq!(
        echo_through(addrs[0], DEMO_PORT, "hello privatelink").await?,
        "hello privatelink"
    );
    let (nx, _) = dns_a(consumer.dns_addr(), &format!("nothing.{ZONE}.")).await?;
    assert_eq!(nx, 3, "NXDOMAIN for names without a ready binding");

    info!("the record was published in the zone only once the endpoint was available");
    let inventory = env.region.inventory();
    assert_eq!(inventory.hosted_zones.len(), 1);
    assert!(inventory
        .records
        .iter()
        .any(|r| r.starts_with(&format!("demo.{ZONE}. A"))));

    info!("the provider's service status names its endpoint service");
    let service = env
        .client()
        .call(|mut s| async move {
            s.catalog()
                .get(GetRequest {
                    kind: Kind::Service as i32,
                    key: "demo".into(),
                    stale: false,
                })
                .await
        })
        .await?;
    let Some(object::Object::Service(svc)) = service.object.and_then(|o| o.object) else {
        anyhow::bail!("no service")
    };
    let status = svc.status.unwrap_or_default();
    assert_eq!(status.state, "available");
    assert!(status
        .endpoint_service_name
        .starts_with("com.amazonaws.vpce.us-east-1.vpce-svc-"));
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_account_the_service_does_not_allow_is_refused_with_the_reason() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let other = "arn:aws:iam::333333333333:root";
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[other])],
            None,
        )
        .await?;
    // The catalog knows the consumer's account from its registered agent and refuses the binding.
    let refused = env.put_binding("demo", Approval::Unspecified).await;
    let message = format!(
        "{:#}",
        refused.expect_err("a binding the service does not allow")
    );
    assert!(
        message.contains(&format!(
            "account {CONSUMER} is not among its allowed principals"
        )) && message.contains(other),
        "{message}"
    );
    // Through the consumer's host API (what `pld connect` asks): the same reason, as a refusal.
    let asked = resolve(&consumer, "demo", Duration::from_secs(1)).await;
    let status = asked
        .expect_err("refused")
        .downcast::<tonic::Status>()
        .map_err(|e| anyhow::anyhow!("not a gRPC status: {e}"))?;
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(
        status
            .message()
            .contains("not among its allowed principals"),
        "{status:?}"
    );
    assert!(
        env.region.inventory().endpoints.is_empty(),
        "no endpoint was made"
    );
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn manual_acceptance_waits_for_the_operator_and_a_rejection_sticks() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Manual, &[&consumer_root()])],
            None,
        )
        .await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    env.wait_phase("demo", "pendingAcceptance", Duration::from_secs(20))
        .await?;

    info!("after several passes the connection is still pending: nobody decided");
    for _ in 0..3 {
        provider.reconciler().pass().await;
        consumer.reconciler().pass().await;
    }
    assert_eq!(
        env.binding_status("demo").await.map(|s| s.phase),
        Some("pendingAcceptance".into())
    );

    info!("the operator accepts (pld bindings accept): the binding becomes ready");
    env.put_binding("demo", Approval::Accepted).await?;
    env.wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;

    info!("a second consumer binding rejected by the operator ends rejected");
    delete(
        &env,
        Kind::Binding,
        &pld_core::catalog::binding_key("demo", &env.consumer_vpc.id),
    )
    .await?;
    wait_until(
        Duration::from_secs(20),
        "the old endpoint to be gone",
        || async { env.region.inventory().endpoints.is_empty().then_some(()) },
    )
    .await?;
    env.put_binding("demo", Approval::Rejected).await?;
    env.wait_phase("demo", "rejected", Duration::from_secs(20))
        .await?;
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subnets_outside_the_services_azs_give_a_placement_error() -> anyhow::Result<()> {
    let mut config = SimConfig::instant("us-east-1");
    config.loopback_data_plane = false;
    let env = Env::start(config, &["use1-az4"]).await?;
    let (provider, _) = env
        .start_agent(
            env.agent_config(
                PROVIDER,
                &env.provider_vpc,
                vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()])],
            ),
            None,
        )
        .await?;
    let mut cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
    // Only the consumer's subnet in use1-az1.
    let subnets =
        pld_cloud::Cloud::describe_subnets(&env.region.client(CONSUMER), &env.consumer_vpc.id)
            .await?;
    cfg.subnet_ids = subnets
        .iter()
        .filter(|s| s.az_id == "use1-az1")
        .map(|s| s.id.clone())
        .collect();
    let (consumer, _) = env.start_agent(cfg, None).await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    let status = env
        .wait_phase("demo", "failed", Duration::from_secs(20))
        .await?;
    assert!(
        status.message.contains("supports AZs use1-az4"),
        "{}",
        status.message
    );
    assert!(status.message.contains("use1-az1"), "{}", status.message);
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_killed_mid_creation_converges_without_a_duplicate() -> anyhow::Result<()> {
    let mut config = SimConfig::instant("us-east-1");
    config.latency = Latency {
        service_available: Duration::ZERO,
        endpoint_available: Duration::from_millis(800),
        change_insync: Duration::from_millis(300),
        ..Latency::default()
    };
    let env = Env::start(config, &AZ_IDS).await?;
    let (provider, _) = env
        .start_agent(
            env.agent_config(
                PROVIDER,
                &env.provider_vpc,
                vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()])],
            ),
            None,
        )
        .await?;
    let consumer_cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
    let (consumer, _) = env.start_agent(consumer_cfg.clone(), None).await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    wait_until(
        Duration::from_secs(20),
        "the endpoint to be created",
        || async { (!env.region.inventory().endpoints.is_empty()).then_some(()) },
    )
    .await?;
    info!("kill the consumer's agent while its endpoint is still pending, then start a new one");
    consumer.abort();
    let (consumer, _) = env.start_agent(consumer_cfg, None).await?;
    env.wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;
    assert_eq!(
        env.region.inventory().endpoints.len(),
        1,
        "no duplicate endpoint"
    );
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_agent_keeps_what_it_made_and_changes_nothing() -> anyhow::Result<()> {
    // Before its first listing of the catalog, an agent knows of no binding; acting on that
    // deleted every endpoint and record at each restart (and made them again a moment later).
    let env = Env::instant().await?;
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()])],
            None,
        )
        .await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    env.wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;
    let before = env.region.inventory();

    info!("restart both agents");
    provider.shutdown().await;
    consumer.shutdown().await;
    let ((provider, provider_calls), (consumer, consumer_calls)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()])],
            None,
        )
        .await?;
    wait_until(
        Duration::from_secs(20),
        "both restarted agents to finish a pass",
        || async {
            (provider_calls.stats().total_calls() > 0 && consumer_calls.stats().total_calls() > 0)
                .then_some(())
        },
    )
    .await?;
    env.wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;
    // One more pass each, awaited: whatever a pass would do wrong is done by now.
    provider.reconciler().pass().await;
    consumer.reconciler().pass().await;
    assert_eq!(env.region.inventory(), before, "the same resources, by id");
    for (who, stats) in [("provider", &provider_calls), ("consumer", &consumer_calls)] {
        let stats = stats.stats();
        assert_eq!(
            stats.mutating_calls(),
            0,
            "the restarted {who} changed AWS: {:?}",
            stats.calls
        );
    }
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttling_and_server_errors_are_retried_until_ready() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    env.region.set_faults(Faults {
        throttle: 0.25,
        server_error: 0.15,
        stale_describe: Duration::from_millis(100),
    });
    let ((provider, provider_stats), (consumer, consumer_stats)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()])],
            Some(1.0),
        )
        .await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    env.wait_phase("demo", "ready", Duration::from_secs(60))
        .await?;
    let throttled = provider_stats.stats().throttled + consumer_stats.stats().throttled;
    assert!(
        throttled > 0,
        "faults were injected: some calls must have been throttled"
    );
    env.region.set_faults(Faults::default());
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disconnect_and_deregister_leave_nothing_but_what_pld_does_not_own() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let foreign = env.region.add_foreign_endpoint(
        CONSUMER,
        &env.consumer_vpc.id,
        "com.amazonaws.us-east-1.sts",
    );
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()])],
            None,
        )
        .await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    env.wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;

    info!("disconnect, then deregister: the endpoint, records, zone and endpoint service go");
    delete(
        &env,
        Kind::Binding,
        &pld_core::catalog::binding_key("demo", &env.consumer_vpc.id),
    )
    .await?;
    delete(&env, Kind::Service, "demo").await?;
    let inventory = wait_until(
        Duration::from_secs(20),
        "everything pld made to be gone",
        || async {
            let inv = env.region.inventory();
            (inv.endpoint_services.is_empty()
                && inv.endpoints == vec![foreign.clone()]
                && inv.hosted_zones.is_empty()
                && inv.records.is_empty())
            .then_some(inv)
        },
    )
    .await?;
    assert_eq!(
        inventory.endpoints,
        vec![foreign],
        "the hand-made endpoint is untouched"
    );
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_endpoint_to_s3_adds_and_removes_its_route() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let (consumer, _) = env
        .start_agent(
            env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new()),
            None,
        )
        .await?;
    let answer = resolve(&consumer, "s3", Duration::from_secs(20)).await?;
    assert_eq!(answer.phase, "ready", "{answer:?}");
    let tables =
        pld_cloud::Cloud::describe_route_tables(&env.region.client(CONSUMER), &env.consumer_vpc.id)
            .await?;
    let routes = env.region.routes(&tables[0].id);
    assert!(
        routes
            .iter()
            .any(|r| r.destination.starts_with("pl-") && r.target == answer.endpoint_id),
        "{routes:?}"
    );
    delete(
        &env,
        Kind::Binding,
        &pld_core::catalog::binding_key("s3", &env.consumer_vpc.id),
    )
    .await?;
    wait_until(
        Duration::from_secs(20),
        "the S3 route to be removed",
        || async {
            (!env
                .region
                .routes(&tables[0].id)
                .iter()
                .any(|r| r.destination.starts_with("pl-")))
            .then_some(())
        },
    )
    .await?;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_agent_makes_no_mutating_call_and_one_describe_per_resource_type(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let ((provider, provider_stats), (consumer, consumer_stats)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()])],
            Some(100.0),
        )
        .await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    env.wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;
    // Let any in-flight pass finish, then count two explicit passes per agent.
    for agent in [&provider, &consumer] {
        agent.reconciler().pass().await;
    }
    let before = (provider_stats.stats(), consumer_stats.stats());
    for _ in 0..2 {
        provider.reconciler().pass().await;
        consumer.reconciler().pass().await;
    }
    let after = (provider_stats.stats(), consumer_stats.stats());
    for (b, a) in [(&before.0, &after.0), (&before.1, &after.1)] {
        // Background passes may run too; compare per action against the passes we counted.
        let mutating = a.mutating_calls() - b.mutating_calls();
        assert_eq!(mutating, 0, "an idle agent mutated: {:?}", a.calls);
        for (action, (ok, err)) in &a.calls {
            let (b_ok, b_err) = b.calls.get(action).copied().unwrap_or((0, 0));
            let calls = ok + err - b_ok - b_err;
            assert!(
                calls <= 4,
                "{action}: {calls} calls in two passes (plus background resyncs)"
            );
        }
    }
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gwlb_backed_service_gets_a_gateway_load_balancer_endpoint_and_no_dns_name(
) -> anyhow::Result<()> {
    use pld_cloud::sim::NewLoadBalancer;
    use pld_cloud::{EndpointKind, LoadBalancerKind, Tags};
    let env = Env::instant().await?;
    let gwlb = env.region.add_load_balancer(NewLoadBalancer {
        account: PROVIDER,
        vpc_id: &env.provider_vpc.id,
        kind: LoadBalancerKind::Gateway,
        name: "firewall",
        az_ids: &AZ_IDS,
        ports: &[6081],
        targets: &[],
    });
    let mut firewall = env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()]);
    firewall.name = "firewall".into();
    firewall.load_balancer_arn = gwlb.arn;
    firewall.ports = vec![6081];
    let ((provider, _), (consumer, _)) = env.start_pair(vec![firewall], None).await?;
    env.put_binding("firewall", Approval::Unspecified).await?;
    let status = env
        .wait_phase("firewall", "ready", Duration::from_secs(20))
        .await?;
    assert!(
        status.dns_name.is_empty(),
        "GWLB endpoints are not reached by name"
    );
    let endpoints = pld_cloud::Cloud::describe_endpoints(
        &env.region.client(CONSUMER),
        &env.consumer_vpc.id,
        &Tags::new(),
    )
    .await?;
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0].kind, EndpointKind::GatewayLoadBalancer);
    assert_eq!(endpoints[0].id, status.endpoint_id);
    assert!(env.region.inventory().records.is_empty());
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_binding_removed_while_its_agent_was_down_is_cleaned_up_after_restart(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()])],
            None,
        )
        .await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    env.wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;
    info!("stop the consumer's agent, remove the binding, start a fresh agent");
    consumer.shutdown().await;
    delete(
        &env,
        Kind::Binding,
        &pld_core::catalog::binding_key("demo", &env.consumer_vpc.id),
    )
    .await?;
    let (consumer, _) = env
        .start_agent(
            env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new()),
            None,
        )
        .await?;
    wait_until(
        Duration::from_secs(20),
        "endpoint, records and zone to be gone",
        || async {
            let inv = env.region.inventory();
            (inv.endpoints.is_empty() && inv.records.is_empty() && inv.hosted_zones.is_empty())
                .then_some(())
        },
    )
    .await?;
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_endpoint_follows_the_subnets_its_config_lists() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()])],
            None,
        )
        .await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    let status = env
        .wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;
    assert_eq!(status.addresses.len(), AZ_IDS.len());

    info!("restart the consumer's agent limited to its use1-az2 subnet: the endpoint moves");
    consumer.shutdown().await;
    let subnets =
        pld_cloud::Cloud::describe_subnets(&env.region.client(CONSUMER), &env.consumer_vpc.id)
            .await?;
    let az2: Vec<String> = subnets
        .iter()
        .filter(|s| s.az_id == "use1-az2")
        .map(|s| s.id.clone())
        .collect();
    let mut cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
    cfg.subnet_ids = az2.clone();
    let (consumer, _) = env.start_agent(cfg, None).await?;
    wait_until(
        Duration::from_secs(20),
        "one address in the published record",
        || async {
            env.binding_status("demo")
                .await
                .filter(|s| s.phase == "ready" && s.addresses.len() == 1)
        },
    )
    .await?;
    let eps = pld_cloud::Cloud::describe_endpoints(
        &env.region.client(CONSUMER),
        &env.consumer_vpc.id,
        &pld_cloud::Tags::new(),
    )
    .await?;
    assert_eq!(eps[0].subnet_ids, az2);
    dns_a_until(
        consumer.dns_addr(),
        &format!("demo.{ZONE}."),
        "DNS to follow the endpoint to its one subnet",
        |a| a.len() == 1,
    )
    .await?;
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reload_registers_new_services_deregisters_dropped_ones_and_names_the_rest(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let demo = env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()]);
    let cfg = env.agent_config(PROVIDER, &env.provider_vpc, vec![demo.clone()]);
    let (agent, _) = env.start_agent(cfg.clone(), None).await?;
    let client = env.client();
    assert!(pld_tests::objects::get_service(&client, "demo", false)
        .await?
        .is_some());

    let mut reports = demo.clone();
    reports.name = "reports".into();
    let mut new = cfg.clone();
    new.services = vec![reports];
    new.resync_seconds = 60;
    let reloaded = agent.reload(new).await?;
    assert_eq!(reloaded.registered, vec!["reports".to_string()]);
    assert_eq!(reloaded.deregistered, vec!["demo".to_string()]);
    assert_eq!(reloaded.restart_needed, vec!["resync_seconds"]);
    assert!(pld_tests::objects::get_service(&client, "reports", false)
        .await?
        .is_some());
    assert!(pld_tests::objects::get_service(&client, "demo", false)
        .await?
        .is_none());

    info!("an invalid config changes nothing");
    let mut bad = cfg.clone();
    bad.services[0].ports = Vec::new();
    let err = agent.reload(bad).await.expect_err("no ports is invalid");
    assert!(err.to_string().contains("services[0]"), "{err}");
    assert!(pld_tests::objects::get_service(&client, "reports", false)
        .await?
        .is_some());
    assert!(pld_tests::objects::get_service(&client, "demo", false)
        .await?
        .is_none());
    agent.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_controller_outage_leaves_endpoints_and_dns_serving_and_the_agent_resumes(
) -> anyhow::Result<()> {
    let mut env = Env::instant().await?;
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()])],
            None,
        )
        .await?;
    let ready = resolve(&consumer, "demo", Duration::from_secs(20)).await?;
    assert_eq!(ready.phase, "ready", "{ready:?}");
    let endpoints_before = env.region.inventory().endpoints.len();

    info!("the controller goes away");
    env.cluster.stop(1).await;
    // Hosts keep resolving and reaching the service from the agent's copy of the catalog.
    let during = resolve(&consumer, "demo", Duration::ZERO).await?;
    assert_eq!(during.phase, "ready");
    assert_eq!(during.addresses, ready.addresses);
    let (rcode, addrs) = dns_a(consumer.dns_addr(), &format!("demo.{ZONE}.")).await?;
    assert_eq!(rcode, 0);
    assert!(!addrs.is_empty());
    assert_eq!(
        echo_through(addrs[0], DEMO_PORT, "still here").await?,
        "still here"
    );
    // The agents keep reconciling against AWS on their own and remove nothing.
    assert_eq!(env.region.inventory().endpoints.len(), endpoints_before);

    info!("the controller comes back: the agents resume from their watch and act on new changes");
    env.cluster.restart(1).await?;
    env.cluster.wait_leader(&[1]).await?;
    delete(
        &env,
        Kind::Binding,
        &format!("demo/{}", env.consumer_vpc.id),
    )
    .await?;
    wait_until(
        Duration::from_secs(30),
        "the endpoint to be removed",
        || async { (env.region.inventory().endpoints.len() < endpoints_before).then_some(()) },
    )
    .await?;
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_binding_to_a_service_not_registered_yet_waits_for_it() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let (consumer, _) = env
        .start_agent(
            env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new()),
            None,
        )
        .await?;

    info!("a binding to a service nobody registered waits, saying why, and is not settled");
    env.put_binding("demo", Approval::Unspecified).await?;
    let status = env
        .wait_phase("demo", "waiting", Duration::from_secs(20))
        .await?;
    assert!(
        status.message.contains("demo") && status.message.contains("not in the catalog"),
        "{}",
        status.message
    );
    assert!(
        status.endpoint_id.is_empty(),
        "no endpoint for a missing service"
    );

    info!("once the provider registers the service, the binding goes on to ready");
    let provider_cfg = env.agent_config(
        PROVIDER,
        &env.provider_vpc,
        vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()])],
    );
    let (provider, _) = env.start_agent(provider_cfg, None).await?;
    env.wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_binding_created_again_after_its_delete_gets_a_new_endpoint() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let ((provider, _), (consumer, _)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()])],
            None,
        )
        .await?;
    let key = pld_core::catalog::binding_key("demo", &env.consumer_vpc.id);

    info!("a binding becomes ready, then is deleted: its endpoint goes");
    env.put_binding("demo", Approval::Unspecified).await?;
    let first = env
        .wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;
    delete(&env, Kind::Binding, &key).await?;
    wait_until(
        Duration::from_secs(20),
        "the endpoint to be deleted",
        || async { env.region.inventory().endpoints.is_empty().then_some(()) },
    )
    .await?;

    info!("the same binding again: a new endpoint, not the deleted one back from AWS's idempotency window");
    env.put_binding("demo", Approval::Unspecified).await?;
    let second = env
        .wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;
    assert_ne!(second.endpoint_id, first.endpoint_id);
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_registered_again_after_its_delete_gets_a_new_endpoint_service(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let provider_cfg = env.agent_config(
        PROVIDER,
        &env.provider_vpc,
        vec![env.demo_service(AcceptanceConfig::Auto, &[&consumer_root()])],
    );
    let spec = provider_cfg.service_spec(&provider_cfg.services[0]);
    let (provider, _) = env.start_agent(provider_cfg, None).await?;
    let available = || async {
        pld_tests::objects::service_status(&env.client(), "demo")
            .await
            .filter(|s| s.state == "available")
    };

    info!("the service's endpoint service is made, then deleted with the service");
    let first = wait_until(Duration::from_secs(20), "demo to be available", available).await?;
    delete(&env, Kind::Service, "demo").await?;
    wait_until(
        Duration::from_secs(20),
        "the endpoint service to be deleted",
        || async {
            env.region
                .inventory()
                .endpoint_services
                .is_empty()
                .then_some(())
        },
    )
    .await?;

    info!("registered again: a new endpoint service, not the deleted one back");
    env.client()
        .put(
            pld_proto::v1::Object {
                object: Some(object::Object::Service(spec)),
            },
            None,
        )
        .await?;
    let second = wait_until(
        Duration::from_secs(20),
        "demo to be available again",
        available,
    )
    .await?;
    assert_ne!(second.endpoint_service_name, first.endpoint_service_name);
    provider.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}
