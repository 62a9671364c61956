//! Plan and apply agree: what `pld plan connect` and `pld plan disconnect` say each account's
//! agent will do (action kinds and counts) is what the agents then do when the binding is made
//! and removed, and a plan that fails on AZ fit is the binding that fails on it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use pld_agent::config::AcceptanceConfig;
use pld_client::Client;
use pld_cloud::limiter::Limiter;
use pld_cloud::sim::AZ_IDS;
use pld_cloud::Action;
use pld_proto::v1::{
    plan_request, Approval, Kind, PlanConnect, PlanDisconnect, PlanRegister, PlanRequest,
    PlanResponse, PlanSeverity,
};
use pld_tests::objects::agent_facts;
use pld_tests::region::{Env, CONSUMER, PROVIDER};
use pld_tests::wait_until;

async fn plan(client: &Client, service: &str, vpc: &str) -> anyhow::Result<PlanResponse> {
    ask(
        client,
        plan_request::Change::Connect(PlanConnect {
            service: service.into(),
            vpc_ids: vec![vpc.into()],
        }),
    )
    .await
}

async fn ask(client: &Client, change: plan_request::Change) -> anyhow::Result<PlanResponse> {
    let request = PlanRequest {
        change: Some(change),
    };
    Ok(client
        .call(|mut s| {
            let request = request.clone();
            async move { s.planner().plan(request).await }
        })
        .await?)
}

/// The plan's writes for `account`, by action.
fn planned(plan: &PlanResponse, account: &str) -> BTreeMap<String, u64> {
    let mut by = BTreeMap::new();
    for a in plan.accounts.iter().filter(|a| a.account_id == account) {
        for step in a.vpcs.iter().flat_map(|v| &v.steps) {
            *by.entry(step.action.clone()).or_default() += 1;
        }
    }
    by
}

/// The writes `limiter`'s agent made successfully since `before`, by action.
fn made(
    limiter: &Arc<Limiter>,
    before: &BTreeMap<&'static str, (u64, u64)>,
) -> BTreeMap<String, u64> {
    limiter
        .stats()
        .calls
        .into_iter()
        .filter(|(a, _)| Action::named(a).is_some_and(Action::is_mutating))
        .filter_map(|(a, (ok, _))| {
            let n = ok - before.get(a).map_or(0, |(ok, _)| *ok);
            (n > 0).then(|| (a.to_string(), n))
        })
        .collect()
}

/// Both agents' facts are in the catalog and the provider's endpoint service is available.
async fn planned_world(env: &Env) -> anyhow::Result<()> {
    let client = env.client();
    for vpc in [&env.provider_vpc.id, &env.consumer_vpc.id] {
        wait_until(Duration::from_secs(20), "an agent's facts", || async {
            agent_facts(&client, vpc).await
        })
        .await?;
    }
    wait_until(Duration::from_secs(20), "the endpoint service", || async {
        pld_tests::objects::service_status(&client, "demo")
            .await
            .filter(|s| s.state.eq_ignore_ascii_case("available"))
    })
    .await?;
    Ok(())
}

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
    planned_world(&env).await?;
    let plan = plan(&env.client(), "demo", &env.consumer_vpc.id).await?;
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
async fn a_plan_that_fails_on_az_fit_is_a_binding_that_fails_on_it() -> anyhow::Result<()> {
    // The NLB spans the first two AZs; the consumer's agent may only use its third.
    let env = Env::start(
        pld_cloud::sim::SimConfig::instant("us-east-1"),
        &AZ_IDS[..2],
    )
    .await?;
    let principal = format!("arn:aws:iam::{CONSUMER}:root");
    let (provider, _) = env
        .start_agent(
            env.agent_config(
                PROVIDER,
                &env.provider_vpc,
                vec![env.demo_service(AcceptanceConfig::Auto, &[&principal])],
            ),
            None,
        )
        .await?;
    let third = env.region.client(CONSUMER);
    let third = pld_cloud::Cloud::describe_subnets(&third, &env.consumer_vpc.id)
        .await?
        .into_iter()
        .find(|s| s.az_id == AZ_IDS[2])
        .ok_or_else(|| anyhow::anyhow!("no subnet in {}", AZ_IDS[2]))?;
    let mut cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
    cfg.subnet_ids = vec![third.id.clone()];
    let (consumer, _) = env.start_agent(cfg, None).await?;
    planned_world(&env).await?;

    let plan = plan(&env.client(), "demo", &env.consumer_vpc.id).await?;
    let fit: Vec<_> = plan
        .problems
        .iter()
        .filter(|p| p.severity == PlanSeverity::Error as i32)
        .collect();
    assert_eq!(fit.len(), 1, "{:?}", plan.problems);
    assert!(
        fit[0].message.contains(AZ_IDS[2]) && fit[0].message.contains("configured"),
        "{}",
        fit[0].message
    );
    env.put_binding("demo", Approval::Unspecified).await?;
    let failed = env
        .wait_phase("demo", "failed", Duration::from_secs(30))
        .await?;
    assert!(failed.message.contains(AZ_IDS[2]), "{failed:?}");
    assert!(env.region.inventory().endpoints.is_empty());
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
    let plan = ask(
        &client,
        plan_request::Change::Register(PlanRegister {
            service: Some(service.clone()),
        }),
    )
    .await?;
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
    client
        .put(
            pld_proto::v1::Object {
                object: Some(pld_proto::v1::object::Object::Service(service)),
            },
            None,
        )
        .await?;
    wait_until(Duration::from_secs(20), "the endpoint service", || async {
        pld_tests::objects::service_status(&client, "demo")
            .await
            .filter(|s| s.state.eq_ignore_ascii_case("available"))
    })
    .await?;
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
