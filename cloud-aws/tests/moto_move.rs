//! A live service moved to another NLB against moto: the provider's agent makes a second
//! endpoint service, the consumer's agent a second endpoint, flips the name and deletes the old
//! endpoint; the calls each agent made, the tags, and what is left.
//!
//! moto cannot list endpoint connections (AWS-NOTES.md), so nothing tells the provider when
//! consumers have left the old endpoint service: it keeps it, says why in the service's
//! status, and deletes it with the service. Waiting for connections to drain is covered by the
//! simulated-region tests (`tests/tests/service_move.rs`).

use std::time::Duration;

use aws_sdk_ec2::types::Filter;
use pld_cloud::{Cloud, Tags};
use pld_cloud_aws::testing::{nlb, sdk, start_moto, vpc, ACCOUNT};
use pld_proto::v1::{object, Acceptance, Approval, Kind, Object, Service};
use pld_tests::wait_until;

mod common;
use common::{agent_cloud, agent_config, aws, one_controller, start_agent};

/// `pld_aws_calls_total` of one action that succeeded, from an agent's metrics.
fn calls(metrics: &str, action: &str) -> f64 {
    pld_tests::metric(
        metrics,
        &format!("pld_aws_calls_total{{action=\"{action}\",outcome=\"ok\"}}"),
    )
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_moved_to_another_nlb_in_moto_moves_its_consumer_and_leaves_nothing_behind(
) -> anyhow::Result<()> {
    let Some(moto) = start_moto()? else {
        return Ok(());
    };
    let config = sdk(&moto.url).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let (provider_vpc, provider_subnets) =
        vpc(&ec2, "10.0.0.0/16", ["10.0.1.0/24", "10.0.2.0/24"]).await?;
    let (consumer_vpc, _) = vpc(&ec2, "10.1.0.0/16", ["10.1.1.0/24", "10.1.2.0/24"]).await?;
    let first_nlb = nlb(&elb, "demo", provider_subnets.clone()).await?;
    let second_nlb = nlb(&elb, "demo-b", provider_subnets).await?;

    let (cluster, controller) = one_controller().await?;
    // `demo` goes through the catalog, as `pld services register` and `move` put it.
    let provider = start_agent(
        agent_config(&controller, &provider_vpc, Vec::new(), &moto.url),
        agent_cloud(&moto.url).await?,
    )
    .await?;
    let mut consumer_cfg = agent_config(&controller, &consumer_vpc, Vec::new(), &moto.url);
    consumer_cfg.dns.ttl_seconds = 1;
    let consumer = start_agent(consumer_cfg, agent_cloud(&moto.url).await?).await?;
    let client = cluster.client();
    let demo = |arn: &str| Object {
        object: Some(object::Object::Service(Service {
            name: "demo".into(),
            vpc_id: provider_vpc.clone(),
            load_balancer_arn: arn.into(),
            ports: vec![443],
            acceptance: Acceptance::Auto as i32,
            allowed_principals: vec![format!("arn:aws:iam::{ACCOUNT}:root")],
            ..Default::default()
        })),
    };
    client.put(demo(&first_nlb), None).await?;
    pld_tests::objects::put_binding(&client, "demo", &consumer_vpc, Approval::Unspecified).await?;
    let first = wait_until(
        Duration::from_secs(60),
        "the binding to be ready",
        || async {
            pld_tests::objects::binding_status(&client, "demo", &consumer_vpc)
                .await
                .filter(|s| s.phase == "ready")
        },
    )
    .await?;
    let before = pld_tests::objects::service_status(&client, "demo")
        .await
        .ok_or_else(|| anyhow::anyhow!("no service status"))?;

    client.put(demo(&second_nlb), None).await?;
    let moved = wait_until(
        Duration::from_secs(60),
        "the binding to be ready on a new endpoint",
        || async {
            pld_tests::objects::binding_status(&client, "demo", &consumer_vpc)
                .await
                .filter(|s| {
                    s.phase == "ready"
                        && s.endpoint_id != first.endpoint_id
                        && s.migration.is_none()
                })
        },
    )
    .await?;
    let after = pld_tests::objects::service_status(&client, "demo")
        .await
        .ok_or_else(|| anyhow::anyhow!("no service status"))?;
    assert_eq!(after.load_balancer_arns, vec![second_nlb.clone()]);
    assert_ne!(after.endpoint_service_name, before.endpoint_service_name);
    assert_eq!(after.retiring.len(), 1, "{after:?}");
    assert_eq!(
        after.retiring[0].endpoint_service_name,
        before.endpoint_service_name
    );
    assert!(after.message.contains("cannot list"), "{}", after.message);

    // In the consumer's VPC: only the new endpoint, to the new endpoint service, tagged as the
    // binding's.
    let cluster_id = client
        .cluster_id()
        .await?
        .ok_or_else(|| anyhow::anyhow!("a serving cluster has no id"))?;
    let live = ec2
        .describe_vpc_endpoints()
        .filters(
            Filter::builder()
                .name("vpc-id")
                .values(&consumer_vpc)
                .build(),
        )
        .send()
        .await?;
    let live: Vec<_> = live
        .vpc_endpoints()
        .iter()
        .filter(|e| {
            e.state()
                .is_none_or(|s| !s.as_str().eq_ignore_ascii_case("deleted"))
        })
        .collect();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0].vpc_endpoint_id(), Some(moved.endpoint_id.as_str()));
    assert_eq!(
        live[0].service_name(),
        Some(after.endpoint_service_name.as_str())
    );
    let tags: Tags = live[0]
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect();
    let key = pld_core::catalog::binding_key("demo", &consumer_vpc);
    assert_eq!(
        tags.get("pld:owner").map(String::as_str),
        Some(format!("{cluster_id}/binding/{key}").as_str())
    );

    // The calls: one more endpoint service and one more endpoint, the old endpoint deleted,
    // the name written twice (published, then flipped).
    provider.probe().refresh_metrics();
    consumer.probe().refresh_metrics();
    let provider_calls = provider.metrics().render();
    let consumer_calls = consumer.metrics().render();
    assert_eq!(
        calls(&provider_calls, "CreateVpcEndpointServiceConfiguration"),
        2.0,
        "{provider_calls}"
    );
    assert_eq!(
        calls(&provider_calls, "DeleteVpcEndpointServiceConfigurations"),
        0.0
    );
    assert_eq!(
        calls(&consumer_calls, "CreateVpcEndpoint"),
        2.0,
        "{consumer_calls}"
    );
    assert_eq!(calls(&consumer_calls, "DeleteVpcEndpoints"), 1.0);
    assert!(calls(&consumer_calls, "ChangeResourceRecordSets") >= 2.0);
    assert_eq!(calls(&consumer_calls, "CreateHostedZone"), 1.0);

    // Disconnect and deregister: both endpoint services and everything else go.
    pld_tests::objects::delete(&client, Kind::Binding, &key).await?;
    pld_tests::objects::delete(&client, Kind::Service, "demo").await?;
    let aws = aws(&moto.url).await?;
    wait_until(Duration::from_secs(60), "everything to be gone", || async {
        let services = aws
            .describe_endpoint_services(&Tags::from([("pld:cluster".into(), cluster_id.clone())]))
            .await
            .ok()?;
        let endpoints = aws
            .describe_endpoints(
                &consumer_vpc,
                &Tags::from([("pld:cluster".into(), cluster_id.clone())]),
            )
            .await
            .ok()?;
        let zones = aws.hosted_zones_of_vpc(&consumer_vpc).await.ok()?;
        (services.is_empty() && endpoints.is_empty() && zones.is_empty()).then_some(())
    })
    .await?;
    provider.shutdown().await;
    consumer.shutdown().await;
    cluster.shutdown().await;
    Ok(())
}
