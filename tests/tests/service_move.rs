//! A live service moved to another load balancer, make-before-break: the provider's agent
//! makes a second endpoint service, each consumer's agent a second endpoint; the name flips to
//! the new endpoint once it is available, the old endpoint goes only after the flip has been
//! in sync for the record's TTL, and the old endpoint service once no consumer is left on it.
//! A client opening a fresh connection through the consumer agent's DNS answer every 20 ms
//! never fails, there and back.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pld_cloud::sim::{echo_server, NewLoadBalancer, AZ_IDS};
use pld_cloud::LoadBalancerKind;
use pld_proto::v1::{object, Acceptance, Approval, BindingStatus, Object, Service};
use pld_tests::objects::service_status;
use pld_tests::region::{dns_a, dns_a_ttl, echo_through, Env, CONSUMER, DEMO_PORT, PROVIDER, ZONE};
use pld_tests::wait_until;

/// `demo` on `load_balancer_arn`, as `pld services register` writes it.
fn demo(env: &Env, load_balancer_arn: &str) -> Service {
    Service {
        name: "demo".into(),
        vpc_id: env.provider_vpc.id.clone(),
        load_balancer_arn: load_balancer_arn.into(),
        ports: vec![u32::from(DEMO_PORT)],
        acceptance: Acceptance::Auto as i32,
        allowed_principals: vec![format!("arn:aws:iam::{CONSUMER}:root")],
        ..Default::default()
    }
}

async fn register(env: &Env, service: Service) -> anyhow::Result<()> {
    let object = Object {
        object: Some(object::Object::Service(service)),
    };
    env.client().put(object, None).await?;
    Ok(())
}

/// What a client sees: a fresh connection every 20 ms to the address the consumer agent's DNS
/// answered, kept for the answer's TTL as a caching resolver keeps it, until `stop`.
struct Client {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Client {
    fn start(dns: std::net::SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let task = {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                let mut failures = Vec::new();
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                let mut cached: Option<(std::net::Ipv4Addr, tokio::time::Instant)> = None;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let r = async {
                        let now = tokio::time::Instant::now();
                        let addr = match cached.filter(|(_, until)| *until > now) {
                            Some((addr, _)) => addr,
                            None => {
                                let (_, addrs, ttl) =
                                    dns_a_ttl(dns, &format!("demo.{ZONE}.")).await?;
                                let addr = *addrs
                                    .first()
                                    .ok_or_else(|| anyhow::anyhow!("no address in the answer"))?;
                                cached = Some((addr, now + Duration::from_secs(u64::from(ttl))));
                                addr
                            }
                        };
                        let back = echo_through(addr, DEMO_PORT, "still here").await?;
                        anyhow::ensure!(back == "still here", "echoed {back:?}");
                        anyhow::Ok(())
                    }
                    .await;
                    match r {
                        Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            failures.push(e.to_string());
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
                failures
            })
        };
        Client {
            stop,
            ok,
            failed,
            task,
        }
    }

    /// Stops; (connections that worked, the failures).
    async fn stop(self) -> anyhow::Result<(u64, Vec<String>)> {
        self.stop.store(true, Ordering::Relaxed);
        let failures = self.task.await?;
        assert_eq!(failures.len() as u64, self.failed.load(Ordering::Relaxed));
        Ok((self.ok.load(Ordering::Relaxed), failures))
    }
}

/// Waits until the binding has moved to an endpoint other than `from` and the move is over;
/// returns its status and every (phase, step) it was seen in on the way.
async fn moved_off(
    env: &Env,
    from: &str,
) -> anyhow::Result<(BindingStatus, BTreeSet<(String, String)>)> {
    let mut seen = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(st) = env.binding_status("demo").await {
            let step = st.migration.as_ref().map(|m| m.step.clone());
            if let Some(m) = &st.migration {
                assert_eq!(m.from_endpoint_id, from, "{st:?}");
                assert_eq!(st.phase, "migrating", "{st:?}");
            }
            seen.insert((st.phase.clone(), step.unwrap_or_default()));
            assert!(
                matches!(st.phase.as_str(), "ready" | "migrating"),
                "the binding stops serving during the move: {st:?}"
            );
            if st.phase == "ready" && st.endpoint_id != from && st.migration.is_none() {
                return Ok((st, seen));
            }
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the binding did not move off {from} in time; seen {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_moved_service_moves_its_consumer_there_and_back_without_a_failed_connection(
) -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let echo = echo_server().await?;
    let second = env.region.add_load_balancer(NewLoadBalancer {
        account: PROVIDER,
        vpc_id: &env.provider_vpc.id,
        kind: LoadBalancerKind::Network,
        name: "demo-b",
        az_ids: &AZ_IDS,
        ports: &[DEMO_PORT],
        targets: &[echo],
    });
    let (provider, _) = env
        .start_agent(
            env.agent_config(PROVIDER, &env.provider_vpc, Vec::new()),
            None,
        )
        .await?;
    // A short TTL keeps the drain short; the move waits it out all the same.
    let mut cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
    cfg.dns.ttl_seconds = 1;
    let (consumer, _) = env.start_agent(cfg, None).await?;
    register(&env, demo(&env, &env.nlb.arn)).await?;
    env.put_binding("demo", Approval::Unspecified).await?;
    let first = env
        .wait_phase("demo", "ready", Duration::from_secs(20))
        .await?;
    let client = Client::start(consumer.dns_addr());
    wait_until(Duration::from_secs(5), "the client to connect", || async {
        (client.ok.load(Ordering::Relaxed) > 3).then_some(())
    })
    .await?;

    // To the second load balancer.
    register(&env, demo(&env, &second.arn)).await?;
    let (there, steps) = moved_off(&env, &first.endpoint_id).await?;
    assert!(
        steps.contains(&("migrating".into(), "draining".into())),
        "the old endpoint outlives the flip by the TTL: {steps:?}"
    );
    let (_, addrs) = dns_a(consumer.dns_addr(), &format!("demo.{ZONE}.")).await?;
    let there_addrs: Vec<std::net::Ipv4Addr> = there
        .addresses
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    assert_eq!(addrs, there_addrs);
    let status = wait_until(
        Duration::from_secs(20),
        "the old endpoint service to be deleted",
        || async {
            service_status(&env.client(), "demo")
                .await
                .filter(|s| s.retiring.is_empty() && s.load_balancer_arns == [second.arn.clone()])
        },
    )
    .await?;
    let inventory = env.region.inventory();
    assert_eq!(inventory.endpoints.len(), 1, "{inventory:?}");
    assert_eq!(inventory.endpoint_services.len(), 1, "{inventory:?}");
    assert!(!status.endpoint_service_name.is_empty());

    // And back.
    register(&env, demo(&env, &env.nlb.arn)).await?;
    let (back, steps) = moved_off(&env, &there.endpoint_id).await?;
    assert!(
        steps.contains(&("migrating".into(), "draining".into())),
        "{steps:?}"
    );
    assert_ne!(back.endpoint_id, first.endpoint_id, "a new endpoint");
    wait_until(
        Duration::from_secs(20),
        "the second endpoint service to be deleted",
        || async {
            service_status(&env.client(), "demo")
                .await
                .filter(|s| s.retiring.is_empty() && s.load_balancer_arns == [env.nlb.arn.clone()])
        },
    )
    .await?;
    let (ok, failures) = client.stop().await?;
    assert!(
        failures.is_empty(),
        "{} of {} connections failed: {failures:?}",
        failures.len(),
        ok as usize + failures.len()
    );
    assert!(ok > 50, "only {ok} connections were tried");
    let inventory = env.region.inventory();
    assert_eq!(inventory.endpoints.len(), 1, "{inventory:?}");
    assert_eq!(inventory.endpoint_services.len(), 1, "{inventory:?}");
    provider.shutdown().await;
    consumer.shutdown().await;
    env.cluster.shutdown().await;
    Ok(())
}
