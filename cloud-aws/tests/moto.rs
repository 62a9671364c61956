//! The AWS backend against a real AWS API peer: a moto server on loopback.
//!
//! The test starts `moto_server` itself (from `PLD_MOTO_SERVER`, or `moto_server` on PATH) and
//! kills it at the end. Without moto installed it says so and passes, so `cargo test` works on a
//! fresh machine; `.ci/run` installs moto and sets `PLD_REQUIRE_MOTO=1`, which makes a missing
//! moto a failure.
//!
//! moto's gaps (AWS-NOTES.md) and what the test expects instead of AWS's behaviour:
//! - DescribeVpcEndpointConnections / Accept / Reject answer HTTP 500 with HTML: the backend maps
//!   that to `Unsupported` and the provider agent runs without acceptance management; acceptance
//!   is covered by the simulated-region tests.
//! - endpoints are `available` at once, and ClientToken is ignored: "nothing duplicated" after a
//!   restart is then the agent's tag-based lookup at work.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ec2::types::Filter;
use pld_agent::config::{AcceptanceConfig, ProvidedService};
use pld_cloud::{Cloud, Tags};
use pld_cloud_aws::testing::{nlb, sdk, start_moto, vpc, ACCOUNT, REGION};
use pld_cloud_aws::{AwsCloud, SdkClients};
use pld_proto::v1::{Approval, Kind};
use pld_tests::wait_until;

mod common;
use common::{agent_cloud, agent_config, aws, one_controller, start_agent};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agents_on_the_aws_backend_create_find_and_remove_everything_in_moto() -> anyhow::Result<()>
{
    let Some(moto) = start_moto()? else {
        return Ok(());
    };
    let config = sdk(&moto.url).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let (provider_vpc, provider_subnets) =
        vpc(&ec2, "10.0.0.0/16", ["10.0.1.0/24", "10.0.2.0/24"]).await?;
    let (consumer_vpc, _) = vpc(&ec2, "10.1.0.0/16", ["10.1.1.0/24", "10.1.2.0/24"]).await?;
    let nlb_arn_catalog = nlb(&elb, "demo", provider_subnets).await?;

    let (cluster, controller) = one_controller().await?;
    let demo = ProvidedService {
        name: "demo".into(),
        load_balancer_arn: nlb_arn_catalog.clone(),
        ports: vec![443],
        acceptance: AcceptanceConfig::Auto,
        principals: vec![format!("arn:aws:iam::{ACCOUNT}:root")],
        description: String::new(),
        health_check: None,
        // Created offered to another region: moto keeps SupportedRegions as given, each
        // Available, without checking them (it has no partition rules and ignores a
        // consumer's ServiceRegion: those are tested on the sim, cloud/tests/sim_regions.rs).
        regions: vec!["us-west-2".into()],
    };
    let provider = start_agent(
        agent_config(&controller, &provider_vpc, vec![demo], &moto.url),
        agent_cloud(&moto.url).await?,
    )
    .await?;
    let consumer_cfg = agent_config(&controller, &consumer_vpc, Vec::new(), &moto.url);
    let consumer = start_agent(consumer_cfg.clone(), agent_cloud(&moto.url).await?).await?;

    // The provider's endpoint service, with its status in the catalog.
    let client = cluster.client();
    let service_name = wait_until(
        Duration::from_secs(30),
        "the endpoint service in the catalog",
        || async {
            pld_tests::objects::service_status(&client, "demo")
                .await
                .map(|st| st.endpoint_service_name)
                .filter(|n| !n.is_empty())
        },
    )
    .await?;
    assert!(service_name.contains("vpce-svc-"), "{service_name}");
    let offered = wait_until(
        Duration::from_secs(30),
        "the service's regions in the catalog",
        || async {
            pld_tests::objects::service_status(&client, "demo")
                .await
                .map(|st| st.regions)
                .filter(|r| !r.is_empty())
        },
    )
    .await?;
    assert_eq!(offered.len(), 1, "{offered:?}");
    assert_eq!(offered[0].region, "us-west-2");
    assert!(offered[0].state.eq_ignore_ascii_case("available"));

    // Connect the consumer: endpoint (tagged), record, ready.
    pld_tests::objects::put_binding(&client, "demo", &consumer_vpc, Approval::Unspecified).await?;
    let key = pld_core::catalog::binding_key("demo", &consumer_vpc);
    let status = wait_until(
        Duration::from_secs(60),
        "the binding to be ready",
        || async {
            pld_tests::objects::binding_status(&client, "demo", &consumer_vpc)
                .await
                .filter(|s| s.phase == "ready")
        },
    )
    .await?;
    assert_eq!(status.dns_name, "demo.pld.moto");
    // Everything is tagged with the id the cluster made itself.
    let cluster_id = client
        .cluster_id()
        .await?
        .ok_or_else(|| anyhow::anyhow!("a serving cluster has no id"))?;

    let owned = |vpc: String| {
        let ec2 = ec2.clone();
        async move {
            let out = ec2
                .describe_vpc_endpoints()
                .filters(Filter::builder().name("vpc-id").values(vpc).build())
                .send()
                .await?;
            Ok::<Vec<aws_sdk_ec2::types::VpcEndpoint>, anyhow::Error>(
                out.vpc_endpoints()
                    .iter()
                    .filter(|e| {
                        e.state()
                            .is_none_or(|s| !s.as_str().eq_ignore_ascii_case("deleted"))
                    })
                    .cloned()
                    .collect(),
            )
        }
    };
    let endpoints = owned(consumer_vpc.clone()).await?;
    assert_eq!(endpoints.len(), 1);
    let tags: Tags = endpoints[0]
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect();
    assert_eq!(
        tags.get("pld:owner").map(String::as_str),
        Some(format!("{cluster_id}/binding/{key}").as_str())
    );

    // One endpoint service, found again by its load balancer on every pass (not made anew).
    for _ in 0..3 {
        provider.reconciler().pass().await;
    }
    let mine = Tags::from([("pld:cluster".into(), cluster_id.clone())]);
    let services = aws(&moto.url)
        .await?
        .describe_endpoint_services(&mine)
        .await?;
    assert_eq!(services.len(), 1, "{services:?}");
    assert_eq!(
        services[0].load_balancer_arns,
        vec![nlb_arn_catalog.clone()]
    );

    // A restarted agent finds its endpoint by tag: nothing duplicated.
    consumer.shutdown().await;
    let consumer = start_agent(consumer_cfg, agent_cloud(&moto.url).await?).await?;
    consumer.reconciler().pass().await;
    consumer.reconciler().pass().await;
    assert_eq!(
        owned(consumer_vpc.clone()).await?.len(),
        1,
        "no duplicate endpoint after a restart"
    );

    // Disconnect and deregister: everything the agents made goes.
    for (kind, k) in [
        (Kind::Binding, key.clone()),
        (Kind::Service, "demo".to_string()),
    ] {
        pld_tests::objects::delete(&client, kind, &k).await?;
    }
    let aws = aws(&moto.url).await?;
    wait_until(Duration::from_secs(60), "everything to be gone", || async {
        let eps = owned(consumer_vpc.clone()).await.ok()?;
        let services = aws
            .describe_endpoint_services(&Tags::from([("pld:cluster".into(), cluster_id.clone())]))
            .await
            .ok()?;
        let zones = aws.hosted_zones_of_vpc(&consumer_vpc).await.ok()?;
        (eps.is_empty() && services.is_empty() && zones.is_empty()).then_some(())
    })
    .await?;
    provider.shutdown().await;
    consumer.shutdown().await;
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_backend_passes_the_conformance_suite_against_moto() -> anyhow::Result<()> {
    let Some(moto) = start_moto()? else {
        return Ok(());
    };
    let config = sdk(&moto.url).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let (provider_vpc, provider_subnets) =
        vpc(&ec2, "10.0.0.0/16", ["10.0.1.0/24", "10.0.2.0/24"]).await?;
    let (consumer_vpc, _) = vpc(&ec2, "10.1.0.0/16", ["10.1.1.0/24", "10.1.2.0/24"]).await?;
    let arn = nlb(&elb, "conformance", provider_subnets).await?;
    let cloud = aws(&moto.url).await?;
    let fixture = pld_cloud::conformance::Fixture {
        provider_vpc,
        consumer_vpc,
        nlb_arn: arn,
    };
    pld_cloud::conformance::run(&cloud, &fixture).await;
    Ok(())
}

/// The calls that build and remove the network load balancer in front of an ALB, against
/// moto. moto runs them but enforces none of AWS's rules for `alb` target groups (one ALB per
/// group, the port an ALB listens on, TCP only, at most two NLBs per ALB, no deleting a
/// registered ALB) and reports every target healthy: those rules are the simulated region's,
/// tested in `cloud/tests/sim_elb.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_backend_builds_and_removes_an_alb_front_in_moto() -> anyhow::Result<()> {
    let Some(moto) = start_moto()? else {
        return Ok(());
    };
    let config = sdk(&moto.url).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let (vpc_id, subnet_ids) = vpc(&ec2, "10.0.0.0/16", ["10.0.1.0/24", "10.0.2.0/24"]).await?;
    let alb_arn = pld_cloud_aws::testing::alb(&elb, "web", &vpc_id, subnet_ids.clone(), 80).await?;
    let cloud = aws(&moto.url).await?;
    let fixture = pld_cloud::conformance::FrontFixture {
        vpc_id,
        subnet_ids,
        alb_arn,
        alb_port: 80,
    };
    pld_cloud::conformance::run_alb_front(&cloud, &fixture).await;
    Ok(())
}

/// Sends every request as `account` (moto's `x-moto-account-id`).
#[derive(Debug)]
struct MotoAccount(&'static str);

impl aws_smithy_runtime_api::client::interceptors::Intercept for MotoAccount {
    fn name(&self) -> &'static str {
        "MotoAccount"
    }

    fn modify_before_signing(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        context
            .request_mut()
            .headers_mut()
            .insert("x-moto-account-id", self.0);
        Ok(())
    }
}

/// The backend acting as `account` of moto.
fn cloud_as(config: &aws_config::SdkConfig, account: &'static str) -> AwsCloud {
    let ec2 = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(config)
            .interceptor(MotoAccount(account))
            .build(),
    );
    let elb = aws_sdk_elasticloadbalancingv2::Client::from_conf(
        aws_sdk_elasticloadbalancingv2::config::Builder::from(config)
            .interceptor(MotoAccount(account))
            .build(),
    );
    let r53 = aws_sdk_route53::Client::from_conf(
        aws_sdk_route53::config::Builder::from(config)
            .interceptor(MotoAccount(account))
            .build(),
    );
    let quotas = aws_sdk_servicequotas::Client::from_conf(
        aws_sdk_servicequotas::config::Builder::from(config)
            .interceptor(MotoAccount(account))
            .build(),
    );
    AwsCloud::with_clients(
        account,
        REGION,
        SdkClients {
            ec2,
            elb,
            r53,
            quotas,
        },
    )
}

/// moto keeps each account's resources apart, so another account cannot see a provider's
/// endpoint service there (AWS shows it to allowed principals; the simulated-region tests cover
/// that). What moto can show: two accounts side by side, and a consumer that cannot use a
/// service ending in a clear failure rather than a retry loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_account_that_cannot_see_the_service_gets_a_clear_failure() -> anyhow::Result<()> {
    const OTHER: &str = "210987654321";
    let Some(moto) = start_moto()? else {
        return Ok(());
    };
    let config = sdk(&moto.url).await;
    let provider_cloud = cloud_as(&config, ACCOUNT);
    let consumer_cloud = cloud_as(&config, OTHER);
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let (provider_vpc, provider_subnets) =
        vpc(&ec2, "10.0.0.0/16", ["10.0.1.0/24", "10.0.2.0/24"]).await?;
    let other_ec2 = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&config)
            .interceptor(MotoAccount(OTHER))
            .build(),
    );
    let (consumer_vpc, _) = vpc(&other_ec2, "10.1.0.0/16", ["10.1.1.0/24", "10.1.2.0/24"]).await?;
    assert!(
        provider_cloud.describe_vpc(&consumer_vpc).await.is_err(),
        "accounts are apart"
    );
    let arn = nlb(&elb, "cross", provider_subnets).await?;

    let (cluster, controller) = one_controller().await?;
    let demo = ProvidedService {
        name: "demo".into(),
        load_balancer_arn: arn,
        ports: vec![443],
        acceptance: AcceptanceConfig::Auto,
        principals: vec![format!("arn:aws:iam::{OTHER}:root")],
        description: String::new(),
        health_check: None,
        regions: Vec::new(),
    };
    let provider = start_agent(
        agent_config(&controller, &provider_vpc, vec![demo], &moto.url),
        Arc::new(provider_cloud),
    )
    .await?;
    let mut consumer_cfg = agent_config(&controller, &consumer_vpc, Vec::new(), &moto.url);
    consumer_cfg.account_id = OTHER.into();
    let consumer = start_agent(consumer_cfg, Arc::new(consumer_cloud)).await?;
    let client = cluster.client();
    pld_tests::objects::put_binding(&client, "demo", &consumer_vpc, Approval::Unspecified).await?;
    wait_until(
        Duration::from_secs(30),
        "the binding to fail clearly",
        || async {
            pld_tests::objects::binding_status(&client, "demo", &consumer_vpc)
                .await
                .filter(|s| s.phase == "failed" && s.message.contains("cannot use"))
        },
    )
    .await?;
    let endpoints = other_ec2.describe_vpc_endpoints().send().await?;
    assert!(
        endpoints.vpc_endpoints().is_empty(),
        "nothing was created in the consumer's account"
    );
    provider.shutdown().await;
    consumer.shutdown().await;
    cluster.shutdown().await;
    Ok(())
}
