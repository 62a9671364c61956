//! `pld-agent-bench`: the agent against the simulated region (issue 3's benchmark).
//!
//! 1. connect → ready latency with zero simulated latency, one binding at a time;
//! 2. 100 bindings at once with AWS's rate limits on (server side in the region and client side
//!    in the agent), compared with the time the token buckets allow;
//! 3. AWS calls per binding, and what an idle agent calls in one resync pass;
//! 4. a live service moved to another load balancer with N bound consumers (each its own VPC,
//!    account and agent, AWS's rate limits on): the time until every consumer is on the new
//!    endpoint, make-before-break, and until the old endpoint service is gone;
//! 5. services on an ALB (the provider's agent builds an NLB in front of each): registered →
//!    first consumer ready at zero simulated latency, one at a time; and a burst of them
//!    registered at once under AWS's rate limits, compared with the time the slowest token
//!    bucket allows for the calls they took.

use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use pld_agent::config::{AcceptanceConfig, ProvidedService};
use pld_cloud::limiter::{ApiClass, CallStats};
use pld_cloud::sim::{NewLoadBalancer, SimConfig, AZ_IDS};
use pld_cloud::LoadBalancerKind;
use pld_proto::v1::Approval;
use pld_tests::region::{Env, CONSUMER, PROVIDER};

#[derive(Parser)]
struct Args {
    /// Sequential connects measured for latency.
    #[arg(long, default_value_t = 50)]
    connects: usize,
    /// Bindings created at once under rate limits.
    #[arg(long, default_value_t = 100)]
    burst: usize,
    /// Consumers of the service moved in scenario 4 (0: skip it).
    #[arg(long, default_value_t = 100)]
    move_consumers: usize,
    /// The record TTL of the consumers in scenario 4: each waits it out after its flip.
    #[arg(long, default_value_t = 1)]
    move_ttl_seconds: u32,
    /// Services on an ALB registered one at a time in scenario 5 (0: skip it).
    #[arg(long, default_value_t = 20)]
    alb_services: usize,
    /// Services on an ALB registered at once under rate limits in scenario 5 (0: skip it).
    #[arg(long, default_value_t = 20)]
    alb_burst: usize,
}

fn services(env: &Env, n: usize, tag: &str) -> Vec<ProvidedService> {
    (0..n)
        .map(|i| {
            let lb = env.region.add_load_balancer(NewLoadBalancer {
                account: PROVIDER,
                vpc_id: &env.provider_vpc.id,
                kind: LoadBalancerKind::Network,
                name: &format!("{tag}{i}"),
                az_ids: &AZ_IDS,
                ports: &[443],
                targets: &[],
            });
            ProvidedService {
                name: format!("{tag}{i}"),
                load_balancer_arn: lb.arn,
                ports: vec![443],
                acceptance: AcceptanceConfig::Auto,
                principals: vec![format!("arn:aws:iam::{CONSUMER}:root")],
                description: String::new(),
                health_check: None,
                regions: Vec::new(),
            }
        })
        .collect()
}

async fn wait_ready(env: &Env, service: &str, limit: Duration) -> anyhow::Result<()> {
    let end = Instant::now() + limit;
    while env
        .binding_status(service)
        .await
        .is_none_or(|s| s.phase != "ready")
    {
        anyhow::ensure!(Instant::now() < end, "{service} not ready within {limit:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

async fn wait_services_available(env: &Env, names: &[String]) -> anyhow::Result<()> {
    let end = Instant::now() + Duration::from_secs(600);
    loop {
        let inv = env.region.inventory();
        if inv.endpoint_services.len() >= names.len() {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < end,
            "provider services not created in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn diff(a: &CallStats, b: &CallStats) -> Vec<(&'static str, u64)> {
    a.calls
        .iter()
        .map(|(k, (ok, err))| {
            let (bo, be) = b.calls.get(k).copied().unwrap_or((0, 0));
            (*k, ok + err - bo - be)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();

    // 1. Latency at zero simulated latency.
    let env = Env::start(SimConfig::instant("us-east-1"), &AZ_IDS).await?;
    let provided = services(&env, args.connects, "lat");
    let names: Vec<String> = provided.iter().map(|s| s.name.clone()).collect();
    let ((provider, _), (consumer, _)) = env.start_pair(provided, None).await?;
    wait_services_available(&env, &names).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut latency = Histogram::<u64>::new(3)?;
    for name in &names {
        let start = Instant::now();
        env.put_binding(name, Approval::Unspecified).await?;
        wait_ready(&env, name, Duration::from_secs(30)).await?;
        latency.record(start.elapsed().as_micros() as u64)?;
    }
    println!(
        "connect → ready, zero simulated latency, {} connects: p50 {:.1} ms, p99 {:.1} ms",
        names.len(),
        latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0
    );
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;

    if args.burst > 0 {
        burst(args.burst).await?;
    }
    if args.move_consumers > 0 {
        move_with_consumers(args.move_consumers, args.move_ttl_seconds).await?;
    }
    if args.alb_services > 0 {
        alb_latency(args.alb_services).await?;
    }
    if args.alb_burst > 0 {
        alb_burst(args.alb_burst).await?;
    }
    Ok(())
}

/// `n` load balancers of `kind` (in front of nothing: the data plane is not measured here)
/// and the services on them, as the catalog takes them.
fn services_on(
    env: &Env,
    n: usize,
    tag: &str,
    kind: LoadBalancerKind,
) -> Vec<pld_proto::v1::Service> {
    (0..n)
        .map(|i| {
            let lb = env.region.add_load_balancer(NewLoadBalancer {
                account: PROVIDER,
                vpc_id: &env.provider_vpc.id,
                kind,
                name: &format!("{tag}{i}"),
                az_ids: &AZ_IDS,
                ports: &[443],
                targets: &[],
            });
            pld_proto::v1::Service {
                name: format!("{tag}{i}"),
                vpc_id: env.provider_vpc.id.clone(),
                load_balancer_arn: lb.arn,
                ports: vec![443],
                acceptance: pld_proto::v1::Acceptance::Auto as i32,
                allowed_principals: vec![format!("arn:aws:iam::{CONSUMER}:root")],
                ..Default::default()
            }
        })
        .collect()
}

async fn put_service(env: &Env, service: pld_proto::v1::Service) -> anyhow::Result<()> {
    use pld_proto::v1::{object, Object};
    let object = Object {
        object: Some(object::Object::Service(service)),
    };
    env.client().put(object, None).await?;
    Ok(())
}

/// Scenario 5a: a service on an ALB registered while a consumer's binding waits for it, until
/// that binding is ready: the provider builds the NLB in front (three rounds of ELBv2 calls),
/// the endpoint service on it, the consumer its endpoint and name. The peer, in the same run:
/// services on NLBs of their own, registered the same way.
async fn alb_latency(n: usize) -> anyhow::Result<()> {
    registered_to_ready(n, LoadBalancerKind::Network, "NLB").await?;
    registered_to_ready(n, LoadBalancerKind::Application, "ALB-fronted").await
}

async fn registered_to_ready(n: usize, kind: LoadBalancerKind, what: &str) -> anyhow::Result<()> {
    let env = Env::start(SimConfig::instant("us-east-1"), &AZ_IDS).await?;
    let services = services_on(&env, n, "reg", kind);
    let ((provider, _), (consumer, _)) = env.start_pair(Vec::new(), None).await?;
    let mut latency = Histogram::<u64>::new(3)?;
    for service in services {
        let name = service.name.clone();
        env.put_binding(&name, Approval::Unspecified).await?;
        let start = Instant::now();
        put_service(&env, service).await?;
        wait_ready(&env, &name, Duration::from_secs(60)).await?;
        latency.record(start.elapsed().as_micros() as u64)?;
    }
    println!(
        "{what} service registered → first consumer ready, zero simulated latency, {n} \
         services: p50 {:.1} ms, p99 {:.1} ms",
        latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0
    );
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

/// The shortest time one account's calls can take under AWS's token buckets: for each bucket,
/// the calls beyond its burst at its refill rate; the slowest bucket bounds the whole.
fn bucket_bound(calls: &[(&'static str, u64)]) -> (f64, Option<ApiClass>) {
    let mut per_class: std::collections::BTreeMap<ApiClass, u64> = Default::default();
    for (action, n) in calls {
        if let Some(action) = pld_cloud::Action::named(action) {
            *per_class.entry(action.bucket()).or_default() += n;
        }
    }
    per_class
        .into_iter()
        .map(|(class, n)| {
            let (burst, rate) = class.aws_rate();
            ((n as f64 - burst).max(0.0) / rate, Some(class))
        })
        .filter(|(seconds, _)| *seconds > 0.0)
        .fold((0.0, None), |a, b| if b.0 > a.0 { b } else { a })
}

/// Scenario 5b: `n` services on ALBs registered at once, each with a consumer's binding
/// waiting, under AWS's rate limits (in the region and in the agents): until every binding is
/// ready, against the time the calls made need at AWS's rates.
async fn alb_burst(n: usize) -> anyhow::Result<()> {
    let mut config = SimConfig::instant("us-east-1");
    config.rate_limit_scale = Some(1.0);
    let env = Env::start(config, &AZ_IDS).await?;
    let services = services_on(&env, n, "front", LoadBalancerKind::Application);
    // The agents' default resync interval (30 s), not the tests' 5 s: what an agent learnt
    // of its fronts is kept that long, and a pass under throttling can take longer than 5 s.
    let mut provider_cfg = env.agent_config(PROVIDER, &env.provider_vpc, Vec::new());
    provider_cfg.resync_seconds = 30;
    let mut consumer_cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
    consumer_cfg.resync_seconds = 30;
    let (provider, provider_limiter) = env.start_agent(provider_cfg, Some(1.0)).await?;
    let (consumer, consumer_limiter) = env.start_agent(consumer_cfg, Some(1.0)).await?;
    for service in &services {
        env.put_binding(&service.name, Approval::Unspecified)
            .await?;
    }
    let before = (provider_limiter.stats(), consumer_limiter.stats());
    eprintln!("registering {n} services on ALBs at once");
    let start = Instant::now();
    for service in &services {
        put_service(&env, service.clone()).await?;
    }
    for service in &services {
        wait_ready(&env, &service.name, Duration::from_secs(1800)).await?;
    }
    let took = start.elapsed().as_secs_f64();
    let after = (provider_limiter.stats(), consumer_limiter.stats());
    let provider_calls = diff(&after.0, &before.0);
    let consumer_calls = diff(&after.1, &before.1);
    // Provider and consumer are separate accounts, with buckets of their own.
    let (bound, class) = [bucket_bound(&provider_calls), bucket_bound(&consumer_calls)]
        .into_iter()
        .fold((0.0, None), |a, b| if b.0 > a.0 { b } else { a });
    // Calls within every bucket's burst have no rate to compare against.
    let against = match class {
        Some(class) => format!(
            "the slowest bucket ({}) allows {bound:.1} s for the calls made: {:.2} ×",
            class.name(),
            took / bound
        ),
        None => "every call fitted in its bucket's burst".to_string(),
    };
    println!(
        "{n} ALB-fronted services registered at once under AWS rate limits: every consumer \
         ready in {took:.1} s; {against}"
    );
    println!("  provider: {provider_calls:?}");
    println!("  consumer: {consumer_calls:?}");
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

async fn burst(n: usize) -> anyhow::Result<()> {
    // 2. A burst of bindings under AWS's rate limits.
    let mut config = SimConfig::instant("us-east-1");
    config.rate_limit_scale = Some(1.0);
    let env = Env::start(config, &AZ_IDS).await?;
    let provided = services(&env, n, "svc");
    let names: Vec<String> = provided.iter().map(|s| s.name.clone()).collect();
    let ((provider, provider_limiter), (consumer, consumer_limiter)) =
        env.start_pair(provided, Some(1.0)).await?;
    eprintln!(
        "waiting for {} endpoint services (provider side, rate limited)",
        names.len()
    );
    wait_services_available(&env, &names).await?;
    for name in &names {
        while pld_tests::objects::service_status(&env.client(), name)
            .await
            .is_none_or(|st| st.state != "available")
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let before = (provider_limiter.stats(), consumer_limiter.stats());
    eprintln!("creating {} bindings at once", names.len());
    let start = Instant::now();
    for name in &names {
        env.put_binding(name, Approval::Unspecified).await?;
    }
    for name in &names {
        wait_ready(&env, name, Duration::from_secs(1800)).await?;
    }
    let took = start.elapsed();
    let after = (provider_limiter.stats(), consumer_limiter.stats());
    let (burst, rate) = ApiClass::EndpointMutation.aws_rate();
    let allowed = (names.len() as f64 - burst).max(0.0) / rate;
    println!(
        "{} bindings at once under AWS rate limits: all ready in {:.1} s; CreateVpcEndpoint's bucket (4, 0.3/s) allows {:.1} s: {:.2} ×",
        names.len(),
        took.as_secs_f64(),
        allowed,
        took.as_secs_f64() / allowed
    );
    let consumer_calls = diff(&after.1, &before.1);
    let provider_calls = diff(&after.0, &before.0);
    let total: u64 = consumer_calls
        .iter()
        .chain(&provider_calls)
        .map(|(_, n)| n)
        .sum();
    println!(
        "AWS calls per binding: {:.2} ({} in all)",
        total as f64 / names.len() as f64,
        total
    );
    println!("  consumer: {consumer_calls:?}");
    println!("  provider: {provider_calls:?}");

    // 3. Idle.
    let idle_before = (provider_limiter.stats(), consumer_limiter.stats());
    provider.reconciler().pass().await;
    consumer.reconciler().pass().await;
    let idle_after = (provider_limiter.stats(), consumer_limiter.stats());
    println!(
        "one idle resync pass, provider: {:?}",
        diff(&idle_after.0, &idle_before.0)
    );
    println!(
        "one idle resync pass, consumer: {:?}",
        diff(&idle_after.1, &idle_before.1)
    );
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}

/// Scenario 4: `demo` moved from the first NLB to a second with `n` consumers bound, each in its
/// own VPC and account (so each has its own API buckets, as separate consumer accounts do).
async fn move_with_consumers(n: usize, ttl_seconds: u32) -> anyhow::Result<()> {
    use pld_proto::v1::{object, Acceptance, Kind, ListRequest, Object, Service};
    let mut config = SimConfig::instant("us-east-1");
    config.rate_limit_scale = Some(1.0);
    let env = Env::start(config, &AZ_IDS).await?;
    let second = env.region.add_load_balancer(NewLoadBalancer {
        account: PROVIDER,
        vpc_id: &env.provider_vpc.id,
        kind: LoadBalancerKind::Network,
        name: "moved",
        az_ids: &AZ_IDS,
        ports: &[443],
        targets: &[],
    });
    let (provider, provider_limiter) = env
        .start_agent(
            env.agent_config(PROVIDER, &env.provider_vpc, Vec::new()),
            Some(1.0),
        )
        .await?;
    let client = env.client();
    let demo = |arn: &str| Object {
        object: Some(object::Object::Service(Service {
            name: "demo".into(),
            vpc_id: env.provider_vpc.id.clone(),
            load_balancer_arn: arn.into(),
            ports: vec![443],
            acceptance: Acceptance::Auto as i32,
            allowed_principals: vec!["*".into()],
            ..Default::default()
        })),
    };
    client.put(demo(&env.nlb.arn), None).await?;
    eprintln!("binding {n} consumers, each its own VPC, account and agent");
    let mut consumers = Vec::new();
    for i in 0..n {
        let account = format!("{:012}", 300_000_000_000u64 + i as u64);
        // CIDRs may overlap: PrivateLink does not care.
        let vpc = env
            .region
            .add_vpc(&account, &format!("10.{}.0.0/16", 10 + i % 240));
        let mut cfg = env.agent_config(&account, &vpc, Vec::new());
        cfg.dns.ttl_seconds = ttl_seconds;
        let (agent, _) = env.start_agent(cfg, Some(1.0)).await?;
        pld_tests::objects::put_binding(&client, "demo", &vpc.id, Approval::Unspecified).await?;
        consumers.push(agent);
    }
    let bindings = || async {
        let listed = client
            .list(ListRequest {
                kind: Kind::Binding as i32,
                service: "demo".into(),
                ..Default::default()
            })
            .await?;
        Ok::<Vec<pld_proto::v1::Binding>, anyhow::Error>(
            listed
                .objects
                .into_iter()
                .filter_map(|o| match o.object? {
                    object::Object::Binding(b) => Some(b),
                    _ => None,
                })
                .collect(),
        )
    };
    let end = Instant::now() + Duration::from_secs(1800);
    let before = loop {
        let all = bindings().await?;
        let ready: Vec<(String, String)> = all
            .iter()
            .filter_map(|b| {
                let st = b.status.as_ref().filter(|s| s.phase == "ready")?;
                Some((b.consumer_vpc_id.clone(), st.endpoint_id.clone()))
            })
            .collect();
        if ready.len() == n {
            break ready
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>();
        }
        anyhow::ensure!(Instant::now() < end, "consumers not ready in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let calls_before = provider_limiter.stats();

    eprintln!("moving demo to the second NLB");
    let start = Instant::now();
    client.put(demo(&second.arn), None).await?;
    let mut moved: std::collections::BTreeMap<String, Duration> = Default::default();
    while moved.len() < n {
        for b in bindings().await? {
            let done = b.status.as_ref().is_some_and(|st| {
                st.phase == "ready"
                    && st.migration.is_none()
                    && before.get(&b.consumer_vpc_id) != Some(&st.endpoint_id)
            });
            if done {
                moved
                    .entry(b.consumer_vpc_id.clone())
                    .or_insert_with(|| start.elapsed());
            }
        }
        anyhow::ensure!(
            Instant::now() < end,
            "{} of {n} consumers moved in time",
            moved.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_moved = start.elapsed();
    while pld_tests::objects::service_status(&client, "demo")
        .await
        .is_none_or(|st| !st.retiring.is_empty())
    {
        anyhow::ensure!(
            Instant::now() < end,
            "old endpoint service not deleted in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let old_gone = start.elapsed();
    let mut each: Vec<Duration> = moved.into_values().collect();
    each.sort();
    let at = |q: f64| each[((each.len() - 1) as f64 * q).round() as usize].as_secs_f64();
    println!(
        "move of a service with {n} bound consumers (own VPC and account each, AWS rate limits \
         on, record TTL {ttl_seconds} s): every consumer on the new endpoint in {:.1} s \
         (per consumer p50 {:.1} s, p99 {:.1} s); old endpoint service deleted at {:.1} s",
        all_moved.as_secs_f64(),
        at(0.5),
        at(0.99),
        old_gone.as_secs_f64()
    );
    println!(
        "  provider calls during the move: {:?}",
        diff(&provider_limiter.stats(), &calls_before)
    );
    provider.shutdown().await;
    for c in consumers {
        c.shutdown().await;
    }
    env.cluster.shutdown().await;
    Ok(())
}
