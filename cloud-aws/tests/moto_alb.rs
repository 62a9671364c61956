//! A service on an application load balancer, against moto: the provider's agent builds the
//! NLB in front (CreateLoadBalancer, CreateTargetGroup `alb`, RegisterTargets, CreateListener,
//! all tagged), puts the endpoint service on it, the consumer connects; deregistered, all of it
//! goes and the ALB stays as it was.
//!
//! moto runs these calls but enforces none of AWS's rules for `alb` target groups (one ALB per
//! group, on a port it listens on, TCP only, at most two NLBs per ALB, a registered ALB cannot
//! be deleted) and reports every target healthy: the rules and the refusals are tested on the
//! simulated region (`cloud/tests/sim_elb.rs`, `tests/tests/alb_front.rs`).

use std::time::Duration;

use pld_cloud::{Cloud, LoadBalancerKind, Tags, TargetType, OWNER_TAG};
use pld_cloud_aws::testing::{alb, sdk, start_moto, vpc, ACCOUNT};
use pld_proto::v1::{object, Acceptance, Approval, Kind, Object, Service};
use pld_tests::wait_until;

mod common;
use common::{agent_cloud, agent_config, aws, one_controller, start_agent};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_on_an_alb_gets_an_nlb_in_front_in_moto_and_leaves_nothing_behind(
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
    let alb_arn = alb(&elb, "web", &provider_vpc, provider_subnets, 443).await?;

    let (cluster, controller) = one_controller().await?;
    let aws = aws(&moto.url).await?;
    let alb_listeners = aws.describe_listeners(&alb_arn).await?;
    let _provider = start_agent(
        agent_config(&controller, &provider_vpc, Vec::new(), &moto.url),
        agent_cloud(&moto.url).await?,
    )
    .await?;
    let _consumer = start_agent(
        agent_config(&controller, &consumer_vpc, Vec::new(), &moto.url),
        agent_cloud(&moto.url).await?,
    )
    .await?;
    let client = cluster.client();
    let web = Object {
        object: Some(object::Object::Service(Service {
            name: "web".into(),
            vpc_id: provider_vpc.clone(),
            load_balancer_arn: alb_arn.clone(),
            ports: vec![443],
            acceptance: Acceptance::Auto as i32,
            allowed_principals: vec![format!("arn:aws:iam::{ACCOUNT}:root")],
            ..Default::default()
        })),
    };
    client.put(web, None).await?;
    pld_tests::objects::put_binding(&client, "web", &consumer_vpc, Approval::Unspecified).await?;
    wait_until(
        Duration::from_secs(60),
        "the binding to be ready",
        || async {
            pld_tests::objects::binding_status(&client, "web", &consumer_vpc)
                .await
                .filter(|s| s.phase == "ready")
        },
    )
    .await?;
    let status = pld_tests::objects::service_status(&client, "web")
        .await
        .ok_or_else(|| anyhow::anyhow!("no service status"))?;
    let front = status
        .alb_front
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no front in {status:?}"))?;

    // In moto: pld's NLB, its group of type alb holding the ALB, its listener, all tagged as
    // the service's; the endpoint service on that NLB.
    let cluster_id = client
        .cluster_id()
        .await?
        .ok_or_else(|| anyhow::anyhow!("a serving cluster has no id"))?;
    let owner = format!("{cluster_id}/service/web");
    let nlb = aws.describe_load_balancer(&front.load_balancer_arn).await?;
    assert_eq!(nlb.kind, LoadBalancerKind::Network);
    assert!(nlb.name.starts_with("pld-"), "{nlb:?}");
    let groups = aws.describe_target_groups(Some(&nlb.arn)).await?;
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0].target_type, TargetType::Alb);
    assert_eq!(groups[0].port, 443);
    let targets = aws.describe_target_health(&groups[0].arn).await?;
    assert_eq!(
        targets
            .iter()
            .map(|t| t.target_id.as_str())
            .collect::<Vec<_>>(),
        vec![alb_arn.as_str()]
    );
    let listeners = aws.describe_listeners(&nlb.arn).await?;
    assert_eq!(listeners.len(), 1);
    assert_eq!(
        listeners[0].target_group_arn.as_deref(),
        Some(groups[0].arn.as_str())
    );
    let tags = aws
        .describe_elb_tags(&[
            nlb.arn.clone(),
            groups[0].arn.clone(),
            listeners[0].arn.clone(),
        ])
        .await?;
    assert_eq!(tags.len(), 3);
    for (arn, t) in &tags {
        assert_eq!(t.get(OWNER_TAG), Some(&owner), "{arn}: {t:?}");
    }
    let services = aws
        .describe_endpoint_services(&Tags::from([(OWNER_TAG.into(), owner.clone())]))
        .await?;
    assert_eq!(services.len(), 1);
    assert!(
        services[0]
            .load_balancer_arns
            .iter()
            .any(|a| pld_cloud::same_load_balancer(a, &nlb.arn)),
        "{services:?}"
    );

    // Disconnect and deregister: the endpoint service, listener, group and NLB go; the ALB
    // stays as it was.
    let key = pld_core::catalog::binding_key("web", &consumer_vpc);
    pld_tests::objects::delete(&client, Kind::Binding, &key).await?;
    pld_tests::objects::delete(&client, Kind::Service, "web").await?;
    wait_until(Duration::from_secs(60), "everything to be gone", || async {
        let services = aws
            .describe_endpoint_services(&Tags::from([(OWNER_TAG.into(), owner.clone())]))
            .await
            .ok()?;
        let lbs = aws.describe_load_balancers().await.ok()?;
        let groups = aws.describe_target_groups(None).await.ok()?;
        let ours = lbs.iter().any(|l| l.name.starts_with("pld-"))
            || groups.iter().any(|g| g.name.starts_with("pld-"));
        (services.is_empty() && !ours).then_some(())
    })
    .await?;
    assert_eq!(aws.describe_listeners(&alb_arn).await?, alb_listeners);
    Ok(())
}
