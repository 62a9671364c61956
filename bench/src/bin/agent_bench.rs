//! `pld-agent-bench`: the agent against the simulated region (issue 3's benchmark).
//!
//! 1. connect → ready latency with zero simulated latency, one binding at a time;
//! 2. 100 bindings at once with AWS's rate limits on (server side in the region and client side
//!    in the agent), compared with the time the token buckets allow;
//! 3. AWS calls per binding, and what an idle agent calls in one resync pass.

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

    if args.burst == 0 {
        return Ok(());
    }
    // 2. A burst of bindings under AWS's rate limits.
    let mut config = SimConfig::instant("us-east-1");
    config.rate_limit_scale = Some(1.0);
    let env = Env::start(config, &AZ_IDS).await?;
    let provided = services(&env, args.burst, "svc");
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
