//! Plan and apply agree: what `pld plan connect`, `pld plan disconnect` and `pld plan services
//! register` say each account's agent will do (action kinds and counts) is what the agents then
//! do, for an interface endpoint with its zone and name, a service accepting by hand, a gateway
//! endpoint to S3, a GWLB endpoint, a service on an ALB and a live service moved to another
//! load balancer. The plans that fail are in `plan_findings.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use pld_agent::config::AcceptanceConfig;
use pld_cloud::sim::AZ_IDS;
use pld_proto::v1::{plan_request, Approval, Kind, PlanDisconnect, PlanProblemKind, PlanSeverity};
use pld_tests::objects::agent_facts;
use pld_tests::plan::{
    ask, connect, made, planned, problems, put_until_available, register, world_ready,
};
use pld_tests::region::{Env, CONSUMER, PROVIDER};
use pld_tests::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_the_plan_says_is_what_the_agents_do() -> anyhow::Result<()> {
    pld_tests::init_tracing();
    let env = Env::instant().await?;
    let principal = format!("arn:aws:iam::{CONSUMER}:root");
    let ((provider, provider_calls), (consumer, consumer_calls)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Auto, &[&principal])],
            Some(1000.0),
        )
        .await?;
    world_ready(&env, Some("demo")).await?;
    let plan = connect(&env.client(), "demo", &env.consumer_vpc.id).await?;
    assert!(
        plan.problems
            .iter()
            .all(|p| p.severity != PlanSeverity::Error as i32),
        "{:?}",
        plan.problems
    );
    let before_consumer = consumer_calls.stats().calls;
    let before_provider = provider_calls.stats().calls;
    env.put_binding("demo", Approval::Unspecified).await?;
    env.wait_phase("demo", "ready", Duration::from_secs(30))
        .await?;
    let consumer_made = made(&consumer_calls, &before_consumer);
    let provider_made = made(&provider_calls, &before_provider);
    assert_eq!(
        planned(&plan, CONSUMER),
        consumer_made,
        "the consumer's agent did what the plan said"
    );
    assert_eq!(
        planned(&plan, PROVIDER),
        provider_made,
        "the provider's agent did what the plan said"
    );
    assert!(consumer_made.contains_key("CreateVpcEndpoint"));

    // Removing it: the plan's steps are what the consumer's agent then does. Its private zone
    // goes too, as the plan's note says, when this was the VPC's last binding.
    let off = ask(
        &env.client(),
        plan_request::Change::Disconnect(PlanDisconnect {
            service: "demo".into(),
            vpc_ids: vec![env.consumer_vpc.id.clone()],
        }),
    )
    .await?;
    let want = planned(&off, CONSUMER);
    assert_eq!(
        want.keys().map(String::as_str).collect::<Vec<_>>(),
        ["ChangeResourceRecordSets", "DeleteVpcEndpoints"],
        "{off:?}"
    );
    let last = off
        .problems
        .iter()
        .any(|p| p.message.contains("last binding"));
    assert!(last, "the consumer had one binding: {:?}", off.problems);
    let before_consumer = consumer_calls.stats().calls;
    pld_tests::objects::delete(
        &env.client(),
        Kind::Binding,
        &pld_core::catalog::binding_key("demo", &env.consumer_vpc.id),
    )
    .await?;
    let (made_off, zone) = wait_until(
        Duration::from_secs(30),
        "the consumer's agent to take the binding down",
        || async {
            let mut made = made(&consumer_calls, &before_consumer);
            let zone = made.remove("DeleteHostedZone");
            (want.keys().all(|k| made.contains_key(k)) && zone.is_some()).then_some((made, zone))
        },
    )
    .await?;
    assert_eq!(
        made_off, want,
        "the consumer's agent did what the disconnect plan said"
    );
    assert_eq!(zone, Some(1));
    assert!(
        planned(&off, PROVIDER).is_empty(),
        "the provider's agent has nothing to do"
    );
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_a_register_plan_says_is_what_the_provider_does() -> anyhow::Result<()> {
    pld_tests::init_tracing();
    let env = Env::instant().await?;
    // No service in the provider's config: it is registered through the catalog, as
    // `pld services register` does.
    let ((provider, provider_calls), (consumer, _)) =
        env.start_pair(Vec::new(), Some(1000.0)).await?;
    let client = env.client();
    wait_until(Duration::from_secs(20), "the provider's facts", || async {
        agent_facts(&client, &env.provider_vpc.id).await
    })
    .await?;
    let service = pld_proto::v1::Service {
        name: "demo".into(),
        vpc_id: env.provider_vpc.id.clone(),
        load_balancer_arn: env.nlb.arn.clone(),
        ports: vec![u32::from(pld_tests::region::DEMO_PORT)],
        allowed_principals: vec![format!("arn:aws:iam::{CONSUMER}:root")],
        ..pld_proto::v1::Service::default()
    };
    let plan = register(&client, &service).await?;
    let want = planned(&plan, PROVIDER);
    assert_eq!(
        want.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "CreateVpcEndpointServiceConfiguration",
            "ModifyVpcEndpointServicePermissions"
        ],
        "{plan:?}"
    );
    let before = provider_calls.stats().calls;
    put_until_available(&client, service).await?;
    assert_eq!(
        made(&provider_calls, &before),
        want,
        "the provider's agent did what the register plan said"
    );
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manual_service_waits_for_the_accept_the_plan_warned_of() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let principal = format!("arn:aws:iam::{CONSUMER}:root");
    let ((provider, provider_calls), (consumer, consumer_calls)) = env
        .start_pair(
            vec![env.demo_service(AcceptanceConfig::Manual, &[&principal])],
            Some(1000.0),
        )
        .await?;
    world_ready(&env, Some("demo")).await?;
    let plan = connect(&env.client(), "demo", &env.consumer_vpc.id).await?;
    assert!(problems(&plan, PlanSeverity::Error).is_empty(), "{plan:?}");
    let manual: Vec<_> = problems(&plan, PlanSeverity::Warning)
        .into_iter()
        .filter(|p| p.kind == PlanProblemKind::AcceptanceManual as i32)
        .collect();
    assert_eq!(manual.len(), 1, "{:?}", plan.problems);
    assert!(
        manual[0].message.contains("pld bindings accept demo"),
        "{}",
        manual[0].message
    );
    assert!(
        planned(&plan, PROVIDER).is_empty(),
        "the provider decides nothing by itself: {plan:?}"
    );
    let before_consumer = consumer_calls.stats().calls;
    let before_provider = provider_calls.stats().calls;
    env.put_binding("demo", Approval::Unspecified).await?;
    env.wait_phase("demo", "pendingAcceptance", Duration::from_secs(30))
        .await?;
    for _ in 0..2 {
        provider.reconciler().pass().await;
    }
    assert!(
        made(&provider_calls, &before_provider).is_empty(),
        "nothing accepted the connection before the operator did"
    );
    env.put_binding("demo", Approval::Accepted).await?;
    env.wait_phase("demo", "ready", Duration::from_secs(30))
        .await?;
    assert_eq!(
        planned(&plan, CONSUMER),
        made(&consumer_calls, &before_consumer),
        "the consumer's agent did what the plan said"
    );
    assert_eq!(
        made(&provider_calls, &before_provider),
        BTreeMap::from([("AcceptVpcEndpointConnections".to_string(), 1)]),
        "the operator's accept is the provider's one call"
    );
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_endpoint_to_s3_is_planned_as_it_is_made() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let ((provider, _), (consumer, consumer_calls)) =
        env.start_pair(Vec::new(), Some(1000.0)).await?;
    world_ready(&env, None).await?;
    let plan = connect(&env.client(), "s3", &env.consumer_vpc.id).await?;
    assert!(problems(&plan, PlanSeverity::Error).is_empty(), "{plan:?}");
    let want = planned(&plan, CONSUMER);
    assert_eq!(
        want,
        BTreeMap::from([("CreateVpcEndpoint".to_string(), 1)]),
        "a gateway endpoint, its routes made with it, and no name: {plan:?}"
    );
    let before = consumer_calls.stats().calls;
    env.put_binding("s3", Approval::Unspecified).await?;
    env.wait_phase("s3", "ready", Duration::from_secs(30))
        .await?;
    assert_eq!(made(&consumer_calls, &before), want);
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gwlb_endpoint_is_planned_as_it_is_made() -> anyhow::Result<()> {
    use pld_cloud::sim::NewLoadBalancer;
    use pld_cloud::LoadBalancerKind;
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
    let mut firewall = env.demo_service(
        AcceptanceConfig::Auto,
        &[&format!("arn:aws:iam::{CONSUMER}:root")],
    );
    firewall.name = "firewall".into();
    firewall.load_balancer_arn = gwlb.arn;
    firewall.ports = vec![6081];
    let ((provider, provider_calls), (consumer, consumer_calls)) =
        env.start_pair(vec![firewall], Some(1000.0)).await?;
    world_ready(&env, Some("firewall")).await?;
    let plan = connect(&env.client(), "firewall", &env.consumer_vpc.id).await?;
    assert!(problems(&plan, PlanSeverity::Error).is_empty(), "{plan:?}");
    assert_eq!(
        planned(&plan, CONSUMER),
        BTreeMap::from([("CreateVpcEndpoint".to_string(), 1)]),
        "a GWLB endpoint has no name to publish: {plan:?}"
    );
    let before_consumer = consumer_calls.stats().calls;
    let before_provider = provider_calls.stats().calls;
    env.put_binding("firewall", Approval::Unspecified).await?;
    env.wait_phase("firewall", "ready", Duration::from_secs(30))
        .await?;
    assert_eq!(
        made(&consumer_calls, &before_consumer),
        planned(&plan, CONSUMER)
    );
    assert_eq!(
        made(&provider_calls, &before_provider),
        planned(&plan, PROVIDER)
    );
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_register_plan_on_an_alb_shows_the_front_the_provider_then_builds() -> anyhow::Result<()>
{
    use pld_cloud::sim::{echo_server, NewLoadBalancer};
    use pld_cloud::LoadBalancerKind;
    let env = Env::instant().await?;
    let echo = echo_server().await?;
    let web = env.region.add_load_balancer(NewLoadBalancer {
        account: PROVIDER,
        vpc_id: &env.provider_vpc.id,
        kind: LoadBalancerKind::Application,
        name: "web",
        az_ids: &AZ_IDS,
        ports: &[80, 443],
        targets: &[echo],
    });
    let ((provider, provider_calls), (consumer, _)) =
        env.start_pair(Vec::new(), Some(1000.0)).await?;
    let client = env.client();
    let facts = wait_until(
        Duration::from_secs(20),
        "the provider's facts to list the ALB",
        || async {
            agent_facts(&client, &env.provider_vpc.id)
                .await
                .filter(|f| f.load_balancers.iter().any(|l| l.arn == web.arn))
        },
    )
    .await?;
    let reported = facts
        .load_balancers
        .iter()
        .find(|l| l.arn == web.arn)
        .ok_or_else(|| anyhow::anyhow!("no ALB"))?;
    assert_eq!(reported.kind, "application");
    let ports: Vec<u32> = reported.listeners.iter().map(|l| l.port).collect();
    assert_eq!(ports, [80, 443]);
    let service = pld_proto::v1::Service {
        name: "web".into(),
        vpc_id: env.provider_vpc.id.clone(),
        load_balancer_arn: web.arn.clone(),
        ports: vec![443],
        allowed_principals: vec![format!("arn:aws:iam::{CONSUMER}:root")],
        ..pld_proto::v1::Service::default()
    };
    let plan = register(&client, &service).await?;
    assert!(problems(&plan, PlanSeverity::Error).is_empty(), "{plan:?}");
    let want = planned(&plan, PROVIDER);
    assert!(want.contains_key("CreateLoadBalancer"), "{plan:?}");
    let before = provider_calls.stats().calls;
    put_until_available(&client, service).await?;
    assert_eq!(
        made(&provider_calls, &before),
        want,
        "the provider's agent built the front and the endpoint service the plan showed"
    );
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_is_planned_as_each_side_then_makes_it() -> anyhow::Result<()> {
    use pld_cloud::sim::{echo_server, NewLoadBalancer};
    use pld_cloud::LoadBalancerKind;
    pld_tests::init_tracing();
    let env = Env::instant().await?;
    let echo = echo_server().await?;
    let second = env.region.add_load_balancer(NewLoadBalancer {
        account: PROVIDER,
        vpc_id: &env.provider_vpc.id,
        kind: LoadBalancerKind::Network,
        name: "demo-b",
        az_ids: &AZ_IDS,
        ports: &[pld_tests::region::DEMO_PORT],
        targets: &[echo],
    });
    let (provider, provider_calls) = env
        .start_agent(
            env.agent_config(PROVIDER, &env.provider_vpc, Vec::new()),
            Some(1000.0),
        )
        .await?;
    // A record TTL of 1 s keeps the move's drain short; the move waits it out all the same.
    let mut cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
    cfg.dns.ttl_seconds = 1;
    let (consumer, consumer_calls) = env.start_agent(cfg, Some(1000.0)).await?;
    let client = env.client();
    let mut service = pld_proto::v1::Service {
        name: "demo".into(),
        vpc_id: env.provider_vpc.id.clone(),
        load_balancer_arn: env.nlb.arn.clone(),
        ports: vec![u32::from(pld_tests::region::DEMO_PORT)],
        allowed_principals: vec![format!("arn:aws:iam::{CONSUMER}:root")],
        ..pld_proto::v1::Service::default()
    };
    put_until_available(&client, service.clone()).await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    let first = env
        .wait_phase("demo", "ready", Duration::from_secs(30))
        .await?;
    world_ready(&env, Some("demo")).await?;

    service.load_balancer_arn = second.arn.clone();
    let plan = register(&client, &service).await?;
    assert!(problems(&plan, PlanSeverity::Error).is_empty(), "{plan:?}");
    let want_consumer = planned(&plan, CONSUMER);
    let want_provider = planned(&plan, PROVIDER);
    assert_eq!(
        want_consumer.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "ChangeResourceRecordSets",
            "CreateVpcEndpoint",
            "DeleteVpcEndpoints"
        ],
        "{plan:?}"
    );
    assert!(
        want_provider.contains_key("DeleteVpcEndpointServiceConfigurations"),
        "{plan:?}"
    );
    let before_consumer = consumer_calls.stats().calls;
    let before_provider = provider_calls.stats().calls;
    client
        .put(
            pld_proto::v1::Object {
                object: Some(pld_proto::v1::object::Object::Service(service)),
            },
            None,
        )
        .await?;
    env.moved_off("demo", &first.endpoint_id).await?;
    wait_until(
        Duration::from_secs(30),
        "the old endpoint service to be deleted",
        || async {
            pld_tests::objects::service_status(&client, "demo")
                .await
                .filter(|s| s.retiring.is_empty() && s.load_balancer_arns == [second.arn.clone()])
        },
    )
    .await?;
    assert_eq!(
        made(&consumer_calls, &before_consumer),
        want_consumer,
        "the consumer's agent moved as the plan said"
    );
    assert_eq!(
        made(&provider_calls, &before_provider),
        want_provider,
        "the provider's agent made, accepted and retired as the plan said"
    );
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}
