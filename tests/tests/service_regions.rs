//! A service offered to other regions (cross-region PrivateLink), on the provider's side: its
//! agent creates the endpoint service offered to the regions the service lists, keeps them in
//! step as the list changes (one ModifyVpcEndpointServiceConfiguration each time), and reports
//! each region's state in the catalog and its metrics; the catalog refuses a region that is
//! not one, or is of another partition, before anything is made; an agent that may not name
//! other regions (no vpce:AllowMultiRegion) goes on serving its own region and says why.

use std::time::Duration;

use pld_cloud::Action;
use pld_proto::v1::{Service, ServiceStatus};
use pld_tests::objects::service_status;
use pld_tests::plan::made;
use pld_tests::region::{Env, CONSUMER, DEMO_PORT, PROVIDER};
use pld_tests::wait_until;

fn demo(env: &Env, regions: &[&str]) -> Service {
    Service {
        name: "demo".into(),
        vpc_id: env.provider_vpc.id.clone(),
        load_balancer_arn: env.nlb.arn.clone(),
        ports: vec![u32::from(DEMO_PORT)],
        allowed_principals: vec![format!("arn:aws:iam::{CONSUMER}:root")],
        regions: regions.iter().map(|r| r.to_string()).collect(),
        ..Default::default()
    }
}

/// The service's regions and their states, as its status reports them.
fn regions(status: &ServiceStatus) -> Vec<(String, String)> {
    status
        .regions
        .iter()
        .map(|r| (r.region.clone(), r.state.to_ascii_lowercase()))
        .collect()
}

/// Waits until demo's status reports exactly `want`.
async fn reported(env: &Env, want: &[(&str, &str)]) -> anyhow::Result<ServiceStatus> {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(r, s)| (r.to_string(), s.to_string()))
        .collect();
    wait_until(
        Duration::from_secs(20),
        &format!("demo's regions to be {want:?}"),
        || async {
            service_status(&env.client(), "demo")
                .await
                .filter(|s| regions(s) == want)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_provider_keeps_the_regions_it_offers_in_step_with_the_catalog() -> anyhow::Result<()> {
    pld_tests::init_tracing();
    let env = Env::instant().await?;
    let (provider, calls) = env
        .start_agent(
            env.agent_config(PROVIDER, &env.provider_vpc, Vec::new()),
            Some(1000.0),
        )
        .await?;
    env.register(demo(&env, &["us-west-2"])).await?;
    let status = reported(&env, &[("us-west-2", "available")]).await?;
    assert_eq!(status.state, "available");

    // Another list: one change, adding and removing.
    let before = calls.stats().calls;
    env.register(demo(&env, &["eu-west-1", "ap-northeast-1"]))
        .await?;
    reported(
        &env,
        &[("eu-west-1", "available"), ("ap-northeast-1", "available")],
    )
    .await?;
    assert_eq!(
        made(&calls, &before)
            .get("ModifyVpcEndpointServiceConfiguration")
            .copied(),
        Some(1)
    );
    let inventory = env.region.inventory();
    assert_eq!(inventory.endpoint_services.len(), 1, "changed in place");

    provider.probe().refresh_metrics();
    let metrics = provider.metrics().render();
    let series = |region: &str, state: &str| {
        format!(
            "pld_agent_service_region_state{{service=\"demo\",region=\"{region}\",state=\"{state}\"}}"
        )
    };
    assert_eq!(
        pld_tests::metric(&metrics, &series("eu-west-1", "available")),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        pld_tests::metric(&metrics, &series("eu-west-1", "pending")),
        Some(0.0)
    );

    // None: offered in its own region only.
    env.register(demo(&env, &[])).await?;
    reported(&env, &[]).await?;
    provider.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_region_that_is_not_one_or_of_another_partition_is_refused_before_anything_is_made(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    for (region, says) in [
        ("us-west-9", "not an AWS region"),
        ("cn-north-1", "partition aws-cn"),
        ("us-east-1", "own region"),
    ] {
        let refused = env.register(demo(&env, &[region])).await;
        let message = format!("{:#}", refused.expect_err("refused"));
        assert!(
            message.contains("service.regions") && message.contains(says),
            "{message}"
        );
    }
    assert!(pld_tests::objects::get_service(&env.client(), "demo", true)
        .await?
        .is_none());
    env.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_vpce_allow_multi_region_the_service_serves_its_own_region_and_says_why(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    env.region.deny(PROVIDER, Action::AllowMultiRegion, true);
    let (provider, _) = env
        .start_agent(
            env.agent_config(PROVIDER, &env.provider_vpc, Vec::new()),
            None,
        )
        .await?;
    // Created for its own region: that needs no permission.
    env.register(demo(&env, &[])).await?;
    wait_until(Duration::from_secs(20), "demo available", || async {
        service_status(&env.client(), "demo")
            .await
            .filter(|s| s.state == "available")
    })
    .await?;
    env.register(demo(&env, &["us-west-2"])).await?;
    let status = wait_until(
        Duration::from_secs(20),
        "demo to say why its regions are unchanged",
        || async {
            service_status(&env.client(), "demo")
                .await
                .filter(|s| s.message.contains("vpce:AllowMultiRegion"))
        },
    )
    .await?;
    assert_eq!(status.state, "available", "it still serves: {status:?}");
    assert!(!status.endpoint_service_name.is_empty());
    assert_eq!(
        status.pending.first().map(|p| p.action.as_str()),
        Some("ModifyVpcEndpointServiceConfiguration"),
        "{status:?}"
    );
    // Granted: the next pass offers it.
    env.region.deny(PROVIDER, Action::AllowMultiRegion, false);
    provider.reconciler().pass().await;
    let status = reported(&env, &[("us-west-2", "available")]).await?;
    assert!(status.message.is_empty(), "{status:?}");
    provider.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}
