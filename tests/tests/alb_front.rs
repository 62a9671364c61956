//! A service on an application load balancer: the provider's agent builds an internal NLB of
//! its own in front of the ALB (an `alb` target group per port with the ALB registered, a TCP
//! listener per port) and puts the endpoint service on it; consumers reach the ALB's targets
//! through their endpoints, while the ALB is never changed. What pld cannot build is refused
//! before anything is created; what it built goes, in reverse order, with the service; and a
//! service moves between its ALB and an NLB of the team's own, there and back, without a
//! failed connection.

use std::sync::Arc;
use std::time::Duration;

use pld_agent::Agent;
use pld_cloud::limiter::Limiter;
use pld_cloud::sim::{echo_server, Inventory, NewLoadBalancer, AZ_IDS};
use pld_cloud::*;
use pld_proto::v1::{Acceptance, Approval, Kind, Service, ServiceStatus};
use pld_tests::objects::{delete, service_status};
use pld_tests::region::{dns_a_until, echo_through, Env, CONSUMER, DEMO_PORT, PROVIDER, ZONE};
use pld_tests::traffic::Prober;
use pld_tests::wait_until;

/// `web` on `load_balancer_arn` in the provider's VPC.
fn web(env: &Env, load_balancer_arn: &str, ports: &[u16]) -> Service {
    Service {
        name: "web".into(),
        vpc_id: env.provider_vpc.id.clone(),
        load_balancer_arn: load_balancer_arn.into(),
        ports: ports.iter().map(|p| u32::from(*p)).collect(),
        acceptance: Acceptance::Auto as i32,
        allowed_principals: vec![format!("arn:aws:iam::{CONSUMER}:root")],
        ..Default::default()
    }
}

/// An ALB of the provider's account in `vpc_id`, listening on `ports`, in front of an echo
/// server: the team's existing internet-facing service.
async fn alb(env: &Env, vpc_id: &str, name: &str, ports: &[u16]) -> anyhow::Result<LoadBalancer> {
    let echo = echo_server().await?;
    Ok(env.region.add_load_balancer(NewLoadBalancer {
        account: PROVIDER,
        vpc_id,
        kind: LoadBalancerKind::Application,
        name,
        az_ids: &AZ_IDS,
        ports,
        targets: &[echo],
    }))
}

/// The provider's and the consumer's agents (record TTL 1 s, so moves drain quickly), and the
/// provider's call counts.
async fn agents(env: &Env) -> anyhow::Result<(Agent, Agent, Arc<Limiter>)> {
    let (provider, calls) = env
        .start_agent(
            env.agent_config(PROVIDER, &env.provider_vpc, Vec::new()),
            None,
        )
        .await?;
    let mut cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
    cfg.dns.ttl_seconds = 1;
    let (consumer, _) = env.start_agent(cfg, None).await?;
    Ok((provider, consumer, calls))
}

/// What pld built in front of ALBs: load balancers, groups and listeners other than those
/// the test added.
fn built(env: &Env, added: &Inventory) -> (Vec<String>, Vec<String>, Vec<String>) {
    let now = env.region.inventory();
    let new = |now: Vec<String>, before: &[String]| -> Vec<String> {
        now.into_iter().filter(|x| !before.contains(x)).collect()
    };
    (
        new(now.load_balancers, &added.load_balancers),
        new(now.target_groups, &added.target_groups),
        new(now.listeners, &added.listeners),
    )
}

async fn status_where(
    env: &Env,
    what: &str,
    ok: impl Fn(&ServiceStatus) -> bool,
) -> anyhow::Result<ServiceStatus> {
    wait_until(Duration::from_secs(30), what, || async {
        service_status(&env.client(), "web").await.filter(|s| ok(s))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_on_an_alb_is_offered_through_an_nlb_pld_builds_and_removes() -> anyhow::Result<()>
{
    let env = Env::instant().await?;
    let alb = alb(&env, &env.provider_vpc.id, "web", &[DEMO_PORT]).await?;
    let cloud = env.region.client(PROVIDER);
    let alb_listeners = cloud.describe_listeners(&alb.arn).await?;
    let added = env.region.inventory();
    let (provider, consumer, calls) = agents(&env).await?;
    env.register(web(&env, &alb.arn, &[DEMO_PORT])).await?;
    env.put_binding("web", Approval::Unspecified).await?;
    env.wait_phase("web", "ready", Duration::from_secs(30))
        .await?;
    status_where(&env, "the front's status", |s| s.alb_front.is_some()).await?;

    // Through the consumer's endpoint, the NLB pld built and the ALB, to the ALB's target.
    let addrs = dns_a_until(
        consumer.dns_addr(),
        &format!("web.{ZONE}."),
        "the consumer's DNS to answer web",
        |a| !a.is_empty(),
    )
    .await?;
    let addr = addrs[0];
    assert_eq!(
        echo_through(addr, DEMO_PORT, "through the ALB").await?,
        "through the ALB"
    );

    // Once built, a front costs two ELBv2 describes a pass (the account's load balancers and
    // target groups) until the resync interval has passed; no listener, tag or health reads.
    let stats = || calls.stats();
    let before = stats();
    provider.reconciler().pass().await;
    provider.reconciler().pass().await;
    let after = stats();
    for (action, most) in [
        ("DescribeLoadBalancers", 2),
        ("DescribeTargetGroups", 2),
        ("DescribeListeners", 0),
        ("DescribeTags", 0),
        ("DescribeTargetHealth", 0),
    ] {
        let calls =
            |s: &pld_cloud::limiter::CallStats| s.calls.get(action).map_or(0, |(ok, err)| ok + err);
        assert!(
            calls(&after) - calls(&before) <= most,
            "{action}: {} calls in two idle passes",
            calls(&after) - calls(&before)
        );
    }

    let (lbs, groups, listeners) = built(&env, &added);
    assert_eq!(
        (lbs.len(), groups.len(), listeners.len()),
        (1, 1, 1),
        "one NLB, group, listener"
    );
    let front = cloud.describe_load_balancer(&lbs[0]).await?;
    assert_eq!(front.kind, LoadBalancerKind::Network);
    assert!(front.internal, "internal: {front:?}");
    assert_eq!(front.subnet_ids, alb.subnet_ids, "in the ALB's subnets");
    let tags = cloud
        .describe_elb_tags(&[front.arn.clone(), groups[0].clone(), listeners[0].clone()])
        .await?;
    assert!(
        tags.values().all(|t| t
            .get(OWNER_TAG)
            .is_some_and(|o| o.ends_with("/service/web"))),
        "{tags:?}"
    );
    let status = status_where(&env, "the front's status with the ALB's health", |s| {
        s.alb_front
            .as_ref()
            .is_some_and(|f| f.ports.first().is_some_and(|p| p.alb_targets == 1))
    })
    .await?;
    assert_eq!(status.state, "available");
    assert_eq!(
        status.load_balancer_arns,
        vec![front.arn.clone()],
        "the endpoint service is on the NLB"
    );
    let f = status.alb_front.clone().unwrap_or_default();
    assert_eq!(f.load_balancer_arn, front.arn);
    assert_eq!(f.state, "active");
    let port = &f.ports[0];
    assert_eq!(
        (port.port, port.alb_health.as_str()),
        (u32::from(DEMO_PORT), "healthy")
    );
    assert_eq!((port.alb_targets_healthy, port.alb_targets), (1, 1));
    let group = cloud.describe_target_groups(Some(&front.arn)).await?;
    assert_eq!(group[0].target_type, TargetType::Alb);
    assert_eq!(
        group[0].health_check.protocol,
        Protocol::Http,
        "the ALB listener's protocol"
    );

    // The ALB is never changed.
    assert_eq!(cloud.describe_listeners(&alb.arn).await?, alb_listeners);

    // Gone with the service and its binding: nothing pld built is left; the ALB stays.
    delete(
        &env.client(),
        Kind::Binding,
        &format!("web/{}", env.consumer_vpc.id),
    )
    .await?;
    delete(&env.client(), Kind::Service, "web").await?;
    wait_until(
        Duration::from_secs(30),
        "what pld built to be gone",
        || async {
            let inv = env.region.inventory();
            (built(&env, &added) == (vec![], vec![], vec![]) && inv.endpoint_services.is_empty())
                .then_some(())
        },
    )
    .await?;
    assert_eq!(cloud.describe_listeners(&alb.arn).await?, alb_listeners);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_pld_cannot_build_is_refused_before_anything_is_created() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let alb = alb(&env, &env.provider_vpc.id, "web", &[DEMO_PORT]).await?;
    let other_vpc = env.region.add_vpc(PROVIDER, "10.5.0.0/16");
    let far = self::alb(&env, &other_vpc.id, "far", &[DEMO_PORT]).await?;
    let theirs = env.region.add_load_balancer(NewLoadBalancer {
        account: CONSUMER,
        vpc_id: &env.consumer_vpc.id,
        kind: LoadBalancerKind::Application,
        name: "theirs",
        az_ids: &AZ_IDS,
        ports: &[DEMO_PORT],
        targets: &[],
    });
    let added = env.region.inventory();
    let (_provider, _consumer, _) = agents(&env).await?;
    let cases = [
        (
            web(&env, &alb.arn, &[DEMO_PORT, 9443]),
            "no listener on port 9443",
        ),
        (
            web(&env, &far.arn, &[DEMO_PORT]),
            &format!("is in VPC {}", other_vpc.id) as &str,
        ),
        (
            web(&env, &theirs.arn, &[DEMO_PORT]),
            &format!("is in account {CONSUMER}") as &str,
        ),
    ];
    for (service, words) in cases {
        env.register(service).await?;
        let status = status_where(&env, words, |s| {
            s.state == "failed" && s.message.contains(words)
        })
        .await?;
        assert!(status.endpoint_service_name.is_empty(), "{status:?}");
        assert_eq!(
            built(&env, &added),
            (vec![], vec![], vec![]),
            "nothing created for {words}"
        );
    }

    // The ALB already reached by two NLBs of someone else's.
    let cloud = env.region.client(PROVIDER);
    for name in ["team-a", "team-b"] {
        let nlb = cloud
            .create_load_balancer(&CreateLoadBalancer {
                name: name.into(),
                kind: LoadBalancerKind::Network,
                internal: true,
                subnet_ids: alb.subnet_ids.clone(),
                tags: Tags::new(),
            })
            .await?;
        let group = cloud
            .create_target_group(&CreateTargetGroup {
                name: name.into(),
                target_type: TargetType::Alb,
                protocol: Protocol::Tcp,
                port: DEMO_PORT,
                vpc_id: env.provider_vpc.id.clone(),
                health_check: HealthCheck {
                    protocol: Protocol::Http,
                    path: "/".into(),
                    matcher: "200".into(),
                },
                tags: Tags::new(),
            })
            .await?;
        cloud
            .register_targets(&group.arn, std::slice::from_ref(&alb.arn))
            .await?;
        cloud
            .create_listener(&CreateListener {
                load_balancer_arn: nlb.arn.clone(),
                protocol: Protocol::Tcp,
                port: DEMO_PORT,
                target_group_arn: group.arn.clone(),
                tags: Tags::new(),
            })
            .await?;
    }
    let added = env.region.inventory();
    env.register(web(&env, &alb.arn, &[DEMO_PORT])).await?;
    status_where(&env, "the two-NLB refusal", |s| {
        s.state == "failed"
            && s.message
                .contains("already the target of 2 network load balancers")
    })
    .await?;
    assert_eq!(
        built(&env, &added),
        (vec![], vec![], vec![]),
        "nothing created"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_moves_from_its_alb_to_an_nlb_and_back_without_a_failed_connection(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let alb = alb(&env, &env.provider_vpc.id, "web", &[DEMO_PORT]).await?;
    let added = env.region.inventory();
    let (_provider, consumer, _) = agents(&env).await?;
    env.register(web(&env, &alb.arn, &[DEMO_PORT])).await?;
    env.put_binding("web", Approval::Unspecified).await?;
    let first = env
        .wait_phase("web", "ready", Duration::from_secs(30))
        .await?;
    let client = Prober::start(consumer.dns_addr(), &format!("web.{ZONE}."), DEMO_PORT);
    // The ALB's own clients, at its internet-facing address, throughout.
    let internet: std::net::Ipv4Addr = env
        .region
        .internet_address(&alb.arn)
        .ok_or_else(|| anyhow::anyhow!("the ALB has no address of its own"))?
        .parse()?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let internet_client = tokio::spawn({
        let stop = stop.clone();
        async move {
            let (mut ok, mut failed) = (0u64, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match echo_through(internet, DEMO_PORT, "internet").await {
                    Ok(answer) if answer == "internet" => ok += 1,
                    other => failed.push(format!("{other:?}")),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (ok, failed)
        }
    });

    // To the team's own NLB: the front goes once no consumer is left on its endpoint service.
    env.register(web(&env, &env.nlb.arn, &[DEMO_PORT])).await?;
    let (there, _) = env.moved_off("web", &first.endpoint_id).await?;
    wait_until(
        Duration::from_secs(30),
        "the front to be taken down",
        || async { (built(&env, &added) == (vec![], vec![], vec![])).then_some(()) },
    )
    .await?;
    // And back to the ALB: a front again, the consumer moved onto it.
    env.register(web(&env, &alb.arn, &[DEMO_PORT])).await?;
    let (back, _) = env.moved_off("web", &there.endpoint_id).await?;
    let (ok, failures) = client.stop().await?;
    assert!(failures.is_empty(), "failed connections: {failures:?}");
    assert!(ok > 20, "the prober ran: {ok} connections");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (ok, failures) = internet_client.await?;
    assert!(
        failures.is_empty(),
        "the ALB's own clients failed: {failures:?}"
    );
    assert!(ok > 20, "the ALB's own clients connected {ok} times");
    let status = status_where(&env, "the service on its new front", |s| {
        s.alb_front.is_some() && s.retiring.is_empty()
    })
    .await?;
    let front = status.alb_front.unwrap_or_default().load_balancer_arn;
    assert_eq!(status.load_balancer_arns, [front]);
    assert_ne!(back.endpoint_id, first.endpoint_id);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_port_change_adds_and_removes_listeners_on_the_same_nlb() -> anyhow::Result<()> {
    const OTHER_PORT: u16 = 9090;
    let env = Env::instant().await?;
    let alb = alb(&env, &env.provider_vpc.id, "web", &[DEMO_PORT, OTHER_PORT]).await?;
    let added = env.region.inventory();
    let (_provider, _consumer, _) = agents(&env).await?;
    env.register(web(&env, &alb.arn, &[DEMO_PORT])).await?;
    env.put_binding("web", Approval::Unspecified).await?;
    env.wait_phase("web", "ready", Duration::from_secs(30))
        .await?;
    let first = status_where(&env, "the front", |s| s.state == "available").await?;
    let ports = |s: &ServiceStatus| -> Vec<u32> {
        s.alb_front
            .as_ref()
            .map(|f| f.ports.iter().map(|p| p.port).collect())
            .unwrap_or_default()
    };

    env.register(web(&env, &alb.arn, &[DEMO_PORT, OTHER_PORT]))
        .await?;
    let both = status_where(&env, "a listener on each port", |s| {
        ports(s) == [u32::from(DEMO_PORT), u32::from(OTHER_PORT)]
    })
    .await?;
    assert_eq!(built(&env, &added).1.len(), 2, "a group per port");
    env.register(web(&env, &alb.arn, &[OTHER_PORT])).await?;
    let last = status_where(&env, "the old port's listener gone", |s| {
        ports(s) == [u32::from(OTHER_PORT)]
    })
    .await?;
    wait_until(
        Duration::from_secs(10),
        "the old port's group gone",
        || async { (built(&env, &added).1.len() == 1).then_some(()) },
    )
    .await?;
    // The same NLB and endpoint service throughout: ports live on listeners.
    for s in [&both, &last] {
        assert_eq!(s.endpoint_service_name, first.endpoint_service_name);
        assert_eq!(s.load_balancer_arns, first.load_balancer_arns);
    }
    assert_eq!(built(&env, &added).0.len(), 1, "one NLB");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_that_may_not_read_load_balancers_serves_its_other_services() -> anyhow::Result<()>
{
    let env = Env::instant().await?;
    let alb = alb(&env, &env.provider_vpc.id, "web", &[DEMO_PORT]).await?;
    // The consumer's policy has no ELBv2 statement (deploy/iam/pld-agent-consumer.json); here
    // the provider's lacks it too.
    for account in [PROVIDER, CONSUMER] {
        env.region
            .deny(account, Action::DescribeLoadBalancers, true);
    }
    let (_provider, _consumer, _) = agents(&env).await?;
    let mut demo = web(&env, &env.nlb.arn, &[DEMO_PORT]);
    demo.name = "demo".into();
    env.register(demo).await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    env.wait_phase("demo", "ready", Duration::from_secs(30))
        .await?;
    env.register(web(&env, &alb.arn, &[DEMO_PORT])).await?;
    status_where(&env, "the ALB service refused with why", |s| {
        s.state == "failed" && s.message.contains("pld-agent-provider.json")
    })
    .await?;
    assert_eq!(
        env.binding_status("demo").await.map(|s| s.phase),
        Some("ready".into()),
        "the other service is untouched"
    );
    Ok(())
}
