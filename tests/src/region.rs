//! A controller, a simulated AWS region and agents, in this process: the tier-3 setup for agent
//! tests. Two accounts: a provider with one VPC and an NLB in front of a TCP echo service, a
//! consumer with one VPC.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pld_agent::config::{AcceptanceConfig, AgentConfig, ProvidedService};
use pld_agent::{Agent, Listeners};
use pld_client::Client;
use pld_cloud::limiter::{Limited, Limiter};
use pld_cloud::sim::{echo_server, NewLoadBalancer, SimConfig, SimRegion, AZ_IDS};
use pld_cloud::{LoadBalancer, LoadBalancerKind, Vpc};
use pld_proto::v1::host_query_client::HostQueryClient;
use pld_proto::v1::{Approval, BindingStatus, ResolveRequest, ResolveResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use crate::cluster::{fast_tuning, TestCluster};

pub const PROVIDER: &str = "111111111111";
pub const CONSUMER: &str = "222222222222";
pub const ZONE: &str = "pld.test";
pub const DEMO_PORT: u16 = 7007;

/// The environment.
pub struct Env {
    pub cluster: TestCluster,
    pub region: Arc<SimRegion>,
    pub provider_vpc: Vpc,
    pub consumer_vpc: Vpc,
    pub nlb: LoadBalancer,
}

impl Env {
    /// Starts a 1-node controller and a region with `config`; the NLB spans `nlb_azs`.
    ///
    /// # Errors
    /// When something cannot start.
    pub async fn start(config: SimConfig, nlb_azs: &[&str]) -> anyhow::Result<Env> {
        let cluster = TestCluster::start(1, fast_tuning()).await?;
        cluster.wait_leader(&[1]).await?;
        let region = SimRegion::new(config);
        let provider_vpc = region.add_vpc(PROVIDER, "10.0.0.0/16");
        let consumer_vpc = region.add_vpc(CONSUMER, "10.1.0.0/16");
        let echo = echo_server().await?;
        let nlb = region.add_load_balancer(NewLoadBalancer {
            account: PROVIDER,
            vpc_id: &provider_vpc.id,
            kind: LoadBalancerKind::Network,
            name: "demo",
            az_ids: nlb_azs,
            ports: &[DEMO_PORT],
            targets: &[echo],
        });
        Ok(Env {
            cluster,
            region,
            provider_vpc,
            consumer_vpc,
            nlb,
        })
    }

    /// Starts with instant transitions, a loopback data plane and an NLB in every AZ.
    ///
    /// # Errors
    /// When something cannot start.
    pub async fn instant() -> anyhow::Result<Env> {
        let mut config = SimConfig::instant("us-east-1");
        config.loopback_data_plane = true;
        Env::start(config, &AZ_IDS).await
    }

    /// The controller's address.
    pub fn controller(&self) -> String {
        self.cluster
            .controller(1)
            .map(|c| c.local_addr().to_string())
            .unwrap_or_default()
    }

    /// A catalog client.
    pub fn client(&self) -> Client {
        self.cluster.client()
    }

    /// The `demo` service as a provider's config declares it.
    pub fn demo_service(
        &self,
        acceptance: AcceptanceConfig,
        principals: &[&str],
    ) -> ProvidedService {
        ProvidedService {
            name: "demo".into(),
            load_balancer_arn: self.nlb.arn.clone(),
            ports: vec![u32::from(DEMO_PORT)],
            acceptance,
            principals: principals.iter().map(|p| p.to_string()).collect(),
            description: String::new(),
            health_check: None,
            regions: Vec::new(),
        }
    }

    /// An agent config for `vpc` of `account`, on ephemeral ports.
    pub fn agent_config(
        &self,
        account: &str,
        vpc: &Vpc,
        services: Vec<ProvidedService>,
    ) -> AgentConfig {
        let mut cfg =
            AgentConfig::simulated(account, "us-east-1", &vpc.id, vec![self.controller()], ZONE);
        cfg.services = services;
        cfg.listen = "127.0.0.1:0".parse().expect("literal address");
        cfg.dns_listen = "127.0.0.1:0".parse().expect("literal address");
        cfg.lease_ttl_seconds = 10;
        cfg.resync_seconds = 5;
        cfg
    }

    /// Starts an agent with client-side limiting at AWS rates × `scale` (None: no limiting).
    ///
    /// # Errors
    /// When it cannot start.
    pub async fn start_agent(
        &self,
        cfg: AgentConfig,
        scale: Option<f64>,
    ) -> anyhow::Result<(Agent, Arc<Limiter>)> {
        let limiter = Limiter::new(scale);
        let cloud = Arc::new(Limited::new(
            self.region.client(&cfg.account_id),
            limiter.clone(),
        ));
        let agent = Agent::start(cfg, cloud, agent_listeners().await?).await?;
        Ok((agent, limiter))
    }
}

/// Listeners for an agent on free loopback ports.
///
/// # Errors
/// When no ports can be bound.
pub async fn agent_listeners() -> anyhow::Result<Listeners> {
    let host_api = TcpListener::bind("127.0.0.1:0").await?;
    let (dns_udp, dns_tcp) = dns_sockets().await?;
    Ok(Listeners {
        host_api,
        dns_udp,
        dns_tcp,
    })
}

/// A UDP socket and a TCP listener on the same free loopback port (the OS picks the UDP port;
/// the same TCP port can be taken, so a few tries).
async fn dns_sockets() -> anyhow::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind("127.0.0.1:0").await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(|| anyhow::anyhow!("no DNS port"), anyhow::Error::from))
}

/// Calls an agent's Resolve.
///
/// # Errors
/// The gRPC error.
pub async fn resolve(
    agent: &Agent,
    service: &str,
    wait: Duration,
) -> anyhow::Result<ResolveResponse> {
    let mut client = HostQueryClient::connect(format!("http://{}", agent.host_api_addr())).await?;
    Ok(client
        .resolve(ResolveRequest {
            service: service.into(),
            wait_seconds: wait.as_secs() as u32,
        })
        .await?
        .into_inner())
}

/// Asks a DNS server on loopback for A records of `name`: (response code, addresses).
///
/// # Errors
/// When no answer arrives within 2 s or it does not parse.
pub async fn dns_a(
    server: SocketAddr,
    name: &str,
) -> anyhow::Result<(u16, Vec<std::net::Ipv4Addr>)> {
    let (rcode, addrs, _) = dns_a_ttl(server, name).await?;
    Ok((rcode, addrs))
}

/// As [`dns_a`], with the lowest TTL of the answers (0 when there are none): how long a
/// caching resolver would keep them.
///
/// # Errors
/// When no answer arrives within 2 s or it does not parse.
pub async fn dns_a_ttl(
    server: SocketAddr,
    name: &str,
) -> anyhow::Result<(u16, Vec<std::net::Ipv4Addr>, u32)> {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RData, RecordType};
    anyhow::ensure!(server.ip().is_loopback(), "DNS tests only talk to loopback");
    let mut msg = Message::query();
    msg.add_query(Query::query(Name::from_ascii(name)?, RecordType::A));
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    socket.send_to(&msg.to_vec()?, server).await?;
    let mut buf = [0u8; 1500];
    let n = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf)).await??;
    let reply = Message::from_vec(&buf[..n])?;
    let addrs = reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    let ttl = reply.answers.iter().map(|r| r.ttl).min().unwrap_or(0);
    Ok((u16::from(reply.metadata.response_code), addrs, ttl))
}

/// Asks the agent's DNS responder at `server` for `name` until its addresses satisfy `expected`,
/// and returns them. The responder answers from the agent's own copy of the catalog, which
/// follows the controller's watch a moment behind it: a test that waited on the controller (a
/// phase, an endpoint) asks here rather than once.
///
/// # Errors
/// When no answer satisfies `expected` within 10 s; the error names the last answer.
pub async fn dns_a_until(
    server: SocketAddr,
    name: &str,
    what: &str,
    expected: impl Fn(&[std::net::Ipv4Addr]) -> bool,
) -> anyhow::Result<Vec<std::net::Ipv4Addr>> {
    let last = std::cell::RefCell::new(String::new());
    let found = crate::wait_until(Duration::from_secs(10), what, || {
        let (last, expected) = (&last, &expected);
        async move {
            match dns_a(server, name).await {
                Ok((_, addrs)) if expected(&addrs) => Some(addrs),
                answer => {
                    *last.borrow_mut() = format!("{answer:?}");
                    None
                }
            }
        }
    })
    .await;
    found.map_err(|e| anyhow::anyhow!("{e}: {name} last answered {}", last.borrow()))
}

/// Sends `text` to `addr:port` (loopback only) and returns what comes back.
///
/// # Errors
/// When the connection fails.
pub async fn echo_through(
    addr: std::net::Ipv4Addr,
    port: u16,
    text: &str,
) -> anyhow::Result<String> {
    anyhow::ensure!(addr.is_loopback(), "traffic tests only talk to loopback");
    let mut conn = tokio::net::TcpStream::connect((addr, port)).await?;
    conn.write_all(text.as_bytes()).await?;
    let mut buf = vec![0u8; text.len()];
    tokio::time::timeout(Duration::from_secs(2), conn.read_exact(&mut buf)).await??;
    Ok(String::from_utf8_lossy(&buf).to_string())
}

impl Env {
    /// The cluster id the controller made at bootstrap, once it has.
    ///
    /// # Errors
    /// When the controller has not named the cluster within a few seconds.
    pub async fn cluster_id(&self) -> anyhow::Result<String> {
        crate::wait_until(Duration::from_secs(10), "the cluster id", || async {
            self.client().cluster_id().await.ok().flatten()
        })
        .await
    }

    /// Puts a binding of the consumer VPC to `service`.
    ///
    /// # Errors
    /// The controller's error.
    pub async fn put_binding(&self, service: &str, approval: Approval) -> anyhow::Result<()> {
        Ok(
            crate::objects::put_binding(&self.client(), service, &self.consumer_vpc.id, approval)
                .await?,
        )
    }

    /// Puts `service` in the catalog, as `pld services register` does (the whole spec).
    ///
    /// # Errors
    /// The controller's refusal.
    pub async fn register(&self, service: pld_proto::v1::Service) -> anyhow::Result<()> {
        let object = pld_proto::v1::Object {
            object: Some(pld_proto::v1::object::Object::Service(service)),
        };
        self.client().put(object, None).await?;
        Ok(())
    }

    /// The status of the consumer VPC's binding to `service`, if it exists.
    pub async fn binding_status(&self, service: &str) -> Option<BindingStatus> {
        crate::objects::binding_status(&self.client(), service, &self.consumer_vpc.id).await
    }

    /// Waits until the consumer VPC's binding to `service` has moved to an endpoint other
    /// than `from` and the move is over, checking on the way that it never stops serving;
    /// returns its status and every (phase, step) it was seen in.
    ///
    /// # Errors
    /// When the binding stops serving, or has not moved within a minute.
    pub async fn moved_off(
        &self,
        service: &str,
        from: &str,
    ) -> anyhow::Result<(BindingStatus, std::collections::BTreeSet<(String, String)>)> {
        let mut seen = std::collections::BTreeSet::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = self.binding_status(service).await {
                let step = st.migration.as_ref().map(|m| m.step.clone());
                if let Some(m) = &st.migration {
                    anyhow::ensure!(m.from_endpoint_id == from, "moving from elsewhere: {st:?}");
                    anyhow::ensure!(st.phase == "migrating", "moving but not migrating: {st:?}");
                }
                seen.insert((st.phase.clone(), step.unwrap_or_default()));
                anyhow::ensure!(
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

    /// Waits until the consumer VPC's binding to `service` is in `phase`, and returns its status.
    ///
    /// # Errors
    /// When it is not by `deadline`.
    pub async fn wait_phase(
        &self,
        service: &str,
        phase: &str,
        deadline: Duration,
    ) -> anyhow::Result<BindingStatus> {
        crate::wait_until(
            deadline,
            &format!("binding to {service} to be {phase}"),
            || async {
                self.binding_status(service)
                    .await
                    .filter(|s| s.phase == phase)
            },
        )
        .await
    }

    /// Starts the provider's agent offering `services` and the consumer's agent.
    ///
    /// # Errors
    /// When either cannot start.
    pub async fn start_pair(
        &self,
        services: Vec<ProvidedService>,
        scale: Option<f64>,
    ) -> anyhow::Result<((Agent, Arc<Limiter>), (Agent, Arc<Limiter>))> {
        let provider = self
            .start_agent(
                self.agent_config(PROVIDER, &self.provider_vpc, services),
                scale,
            )
            .await?;
        let consumer = self
            .start_agent(
                self.agent_config(CONSUMER, &self.consumer_vpc, Vec::new()),
                scale,
            )
            .await?;
        Ok((provider, consumer))
    }
}
