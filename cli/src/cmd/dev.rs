//! `pld dev`: the whole system in one process on a simulated region, for a first try.
//!
//! A controller (1 node, or `--nodes 3`), a simulated region with two accounts and three VPCs
//! (provider 10.0.0.0/16; consumer 10.1.0.0/16; a third that overlaps the provider's CIDR, which
//! peering could not connect), an agent per VPC, a TCP echo service `demo` behind the
//! provider's NLB, and a small HTTP service `web` behind an internet-facing ALB, registered by
//! the ALB's ARN (the provider's agent builds an NLB in front of it). Simulated interface
//! endpoints listen on loopback addresses and forward to the services, and the ALB answers at
//! an address of its own, so traffic really flows through them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::output::say;
use anyhow::Context as _;
use pld_agent::config::{AcceptanceConfig, AgentConfig, ProvidedService};
use pld_agent::{Agent, Listeners};
use pld_cloud::sim::{
    echo_server, http_server, Latency, NewLoadBalancer, SimConfig, SimRegion, AZ_IDS,
};
use pld_cloud::{Cloud, LoadBalancerKind};
use pld_controller::{Controller, ControllerConfig, Faults};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tracing::info;

const PROVIDER_ACCOUNT: &str = "111111111111";
const CONSUMER_ACCOUNT: &str = "222222222222";
const REGION: &str = "us-east-1";
const ZONE: &str = "pld.internal";
/// The port the demo service listens on behind its NLB.
const DEMO_PORT: u16 = 7007;
/// The port `web`'s ALB listens on (not 80: `pld dev` runs unprivileged).
const WEB_PORT: u16 = 8080;
/// What `web` answers.
const WEB_BODY: &str = "hello from web, behind its ALB\n";
/// The TTL of the names the agents publish: short, so a move's drain (which waits it out after
/// pointing a name at the new endpoint) takes seconds to watch, not the default 30.
const RECORD_TTL: u32 = 5;

#[derive(clap::Args)]
pub struct Args {
    /// Keep controller state here across restarts (default: a temporary folder).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Controller nodes to run (1 or 3).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=5))]
    nodes: u64,
    /// First controller port; nodes use consecutive ports.
    #[arg(long, default_value_t = 7400)]
    controller_port: u16,
    /// First agent host-API port (7500, 7501, 7502).
    #[arg(long, default_value_t = 7500)]
    agent_port: u16,
    /// First agent DNS port (8600, 8601, 8602).
    #[arg(long, default_value_t = 8600)]
    dns_port: u16,
    /// Simulated time for each AWS transition, in milliseconds.
    #[arg(long, default_value_t = 300)]
    latency_ms: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (data_dir, _temp) = match &args.data_dir {
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile::tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    // Controllers.
    let ports: Vec<u16> = (0..args.nodes as u16)
        .map(|i| args.controller_port + i)
        .collect();
    let peers: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1))
        .collect();
    let mut controllers = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let id = i as u64 + 1;
        let mut cfg = ControllerConfig::new(id, data_dir.join(format!("controller-{id}")));
        cfg.listen = format!("127.0.0.1:{port}").parse()?;
        // Everything of `pld dev` is one process on loopback: no certificates to make first.
        cfg.insecure = true;
        if args.nodes > 1 {
            cfg.peers = peers.clone();
        }
        let listener = TcpListener::bind(cfg.listen).await.with_context(|| {
            format!(
                "cannot listen on 127.0.0.1:{port}; is another pld running? (--controller-port)"
            )
        })?;
        controllers.push(Controller::start(cfg, listener, Faults::new()).await?);
    }
    let controller_addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();

    // The simulated region: same creation order every run, so VPC ids are stable.
    let latency = Duration::from_millis(args.latency_ms);
    let region = SimRegion::new(SimConfig {
        region: REGION.into(),
        latency: Latency {
            service_available: latency,
            endpoint_available: latency,
            change_insync: latency,
            load_balancer_active: latency,
        },
        rate_limit_scale: None,
        loopback_data_plane: true,
    });
    let provider = region.add_vpc(PROVIDER_ACCOUNT, "10.0.0.0/16");
    let consumer = region.add_vpc(CONSUMER_ACCOUNT, "10.1.0.0/16");
    let overlapping = region.add_vpc(CONSUMER_ACCOUNT, "10.0.0.0/16");
    let echo = echo_server().await?;
    let nlb = region.add_load_balancer(NewLoadBalancer {
        account: PROVIDER_ACCOUNT,
        vpc_id: &provider.id,
        kind: LoadBalancerKind::Network,
        name: "demo",
        az_ids: &AZ_IDS,
        ports: &[DEMO_PORT],
        targets: &[echo],
    });
    // A second NLB in front of the same echo service, for `pld services move`.
    let nlb_b = region.add_load_balancer(NewLoadBalancer {
        account: PROVIDER_ACCOUNT,
        vpc_id: &provider.id,
        kind: LoadBalancerKind::Network,
        name: "demo-b",
        az_ids: &AZ_IDS,
        ports: &[DEMO_PORT],
        targets: &[echo],
    });

    // `legacy`: the echo service again, on an NLB in one AZ only (AZ_IDS[2]). The overlapping
    // VPC's agent may use subnets in the other two only, so `pld plan connect legacy --vpc` it
    // shows a plan that fails on AZ fit, with each account's names of the AZs.
    let legacy_az = AZ_IDS[2];
    let nlb_legacy = region.add_load_balancer(NewLoadBalancer {
        account: PROVIDER_ACCOUNT,
        vpc_id: &provider.id,
        kind: LoadBalancerKind::Network,
        name: "legacy",
        az_ids: &[legacy_az],
        ports: &[DEMO_PORT],
        targets: &[echo],
    });
    let overlapping_subnets: Vec<String> = region
        .client(CONSUMER_ACCOUNT)
        .describe_subnets(&overlapping.id)
        .await
        .context("the simulated region lists no subnets for the overlapping VPC")?
        .into_iter()
        .filter(|s| s.az_id != legacy_az)
        .map(|s| s.id)
        .collect();

    // `web`: an HTTP service the team serves to the internet through an ALB.
    let web_backend = http_server(WEB_BODY).await?;
    let alb = region.add_load_balancer(NewLoadBalancer {
        account: PROVIDER_ACCOUNT,
        vpc_id: &provider.id,
        kind: LoadBalancerKind::Application,
        name: "web",
        az_ids: &AZ_IDS,
        ports: &[WEB_PORT],
        targets: &[web_backend],
    });
    let alb_address = region
        .internet_address(&alb.arn)
        .context("the simulated ALB has no address of its own")?;

    // One agent per VPC.
    let mut agents = Vec::new();
    for (i, (vpc, account)) in [
        (&provider, PROVIDER_ACCOUNT),
        (&consumer, CONSUMER_ACCOUNT),
        (&overlapping, CONSUMER_ACCOUNT),
    ]
    .into_iter()
    .enumerate()
    {
        let services = if i == 0 {
            vec![
                ProvidedService {
                    name: "demo".into(),
                    load_balancer_arn: nlb.arn.clone(),
                    ports: vec![u32::from(DEMO_PORT)],
                    acceptance: AcceptanceConfig::Auto,
                    principals: vec![format!("arn:aws:iam::{CONSUMER_ACCOUNT}:root")],
                    description: "TCP echo service behind the provider's NLB".into(),
                    health_check: None,
                    regions: Vec::new(),
                },
                ProvidedService {
                    name: "legacy".into(),
                    load_balancer_arn: nlb_legacy.arn.clone(),
                    ports: vec![u32::from(DEMO_PORT)],
                    acceptance: AcceptanceConfig::Auto,
                    principals: vec![format!("arn:aws:iam::{CONSUMER_ACCOUNT}:root")],
                    description: "the TCP echo service on an NLB in one AZ".into(),
                    health_check: None,
                    regions: Vec::new(),
                },
                ProvidedService {
                    name: "web".into(),
                    load_balancer_arn: alb.arn.clone(),
                    ports: vec![u32::from(WEB_PORT)],
                    acceptance: AcceptanceConfig::Auto,
                    principals: vec![format!("arn:aws:iam::{CONSUMER_ACCOUNT}:root")],
                    description: "HTTP service behind the provider's internet-facing ALB".into(),
                    health_check: None,
                    regions: Vec::new(),
                },
            ]
        } else {
            Vec::new()
        };
        let mut cfg =
            AgentConfig::simulated(account, REGION, &vpc.id, controller_addrs.clone(), ZONE);
        cfg.services = services;
        if vpc.id == overlapping.id {
            cfg.subnet_ids = overlapping_subnets.clone();
        }
        cfg.dns.ttl_seconds = RECORD_TTL;
        cfg.listen = format!("127.0.0.1:{}", args.agent_port + i as u16).parse()?;
        cfg.dns_listen = format!("127.0.0.1:{}", args.dns_port + i as u16).parse()?;
        let listeners = Listeners::bind(&cfg).await.with_context(|| {
            format!(
                "cannot bind the agent's ports {} / {}",
                cfg.listen, cfg.dns_listen
            )
        })?;
        // Counted like a real agent's calls (so /metrics shows them), but not rate limited:
        // the simulated region applies AWS's limits itself.
        let cloud = Arc::new(pld_cloud::limiter::Limited::new(
            region.client(account),
            pld_cloud::limiter::Limiter::new(None),
        ));
        agents.push(Agent::start(cfg, cloud, listeners).await?);
    }

    let exe = "pld";
    say!("pld dev is running (Ctrl-C to stop)\n");
    say!("  controller   {}", controller_addrs.join(", "));
    say!("  region       {REGION} (simulated), accounts {PROVIDER_ACCOUNT} (provider) and {CONSUMER_ACCOUNT} (consumer)");
    say!("  provider     {} 10.0.0.0/16  agent 127.0.0.1:{} dns 127.0.0.1:{}  offers `demo` (TCP echo on port {DEMO_PORT}), `legacy` (the same, in one AZ) and `web` (HTTP on port {WEB_PORT})", provider.id, args.agent_port, args.dns_port);
    say!(
        "  consumer     {} 10.1.0.0/16  agent 127.0.0.1:{} dns 127.0.0.1:{}",
        consumer.id,
        args.agent_port + 1,
        args.dns_port + 1
    );
    say!("  overlapping  {} 10.0.0.0/16  agent 127.0.0.1:{} dns 127.0.0.1:{}  (same CIDR as the provider: peering could not connect it; its agent uses subnets outside {legacy_az} only)", overlapping.id, args.agent_port + 2, args.dns_port + 2);
    say!("  nlb          {}  (demo is on it)", nlb.arn);
    say!(
        "  nlb-b        {}  (a second NLB in front of the same echo service)",
        nlb_b.arn
    );
    say!(
        "  alb          {}  (web is on it; its internet clients use http://{alb_address}:{WEB_PORT}/)",
        alb.arn
    );
    say!(
        "  data         {}{}",
        data_dir.display(),
        if args.data_dir.is_none() {
            " (temporary)"
        } else {
            ""
        }
    );
    say!("\nTry:");
    say!("  {exe} services list");
    say!("  {exe} connect demo --vpc {} --wait", consumer.id);
    say!("  {exe} resolve demo --vpc {}", consumer.id);
    say!(
        "  dig @127.0.0.1 -p {} demo.{ZONE} +short",
        args.dns_port + 1
    );
    say!(
        "  echo hello | nc -q1 $(dig @127.0.0.1 -p {} demo.{ZONE} +short | head -n1) {DEMO_PORT}",
        args.dns_port + 1
    );
    say!(
        "  {exe} connect demo --vpc {} --wait     # the overlapping VPC works too",
        overlapping.id
    );
    say!(
        "  {exe} plan connect legacy --vpc {}     # fails on AZ fit, and says why (exit 8)",
        overlapping.id
    );
    say!(
        "  {exe} connect web --vpc {} --wait; {exe} services get web     # the NLB pld built in front of the ALB",
        consumer.id
    );
    say!(
        "  curl -s http://$(dig @127.0.0.1 -p {} web.{ZONE} +short | head -n1):{WEB_PORT}/     # through PrivateLink",
        args.dns_port + 1
    );
    say!("  curl -s http://{alb_address}:{WEB_PORT}/     # the ALB's internet clients, unchanged");
    say!(
        "  {exe} services move demo --load-balancer {} --wait     # consumers follow, no connection dropped",
        nlb_b.arn
    );
    say!(
        "  {exe} status; {exe} bindings list; {exe} disconnect demo --vpc {}",
        consumer.id
    );
    say!(
        "  curl -s 127.0.0.1:{}/metrics | grep ^pld_     # the consumer agent's metrics; /readyz, /healthz too",
        args.agent_port + 1
    );

    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => info!("interrupted: stopping"),
    }
    for a in agents {
        a.shutdown().await;
    }
    for c in controllers {
        c.shutdown().await;
    }
    Ok(())
}
