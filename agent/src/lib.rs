//! pld's per-VPC agent.
//!
//! - [`config`]: the agent's TOML configuration.
//! - [`view`]: the local copy of the catalog, kept current by a watch.
//! - [`reconcile`]: makes AWS match the catalog (provider, consumer, DNS), idempotently.
//! - [`host_api`]: `pld.v1.HostQuery` for hosts in the VPC.
//! - [`dns`]: a DNS responder for ready bindings.
//! - [`metrics`]: Prometheus metrics and health; `/metrics`, `/healthz` and `/readyz` are served
//!   over HTTP/1.1 on the host API port.
//!
//! [`Agent::start`] registers the agent (with a lease it keeps renewing) and the services its
//! config provides, then runs everything until [`Agent::shutdown`].

/// Catalog entries for AWS services (S3, DynamoDB, interface services), from pld-core, where
/// the planners `pld plan` runs in the controller read them too.
pub use pld_core::plan::builtin;
pub mod config;
pub mod crash_points;
pub mod dns;
pub mod host_access;
pub mod host_api;
pub mod metrics;
pub mod reconcile;
pub mod view;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pld_client::{Client, ClientError};
use pld_cloud::{Cloud, CloudError};
use pld_proto::v1::host_query_server::HostQueryServer;
use pld_proto::v1::{object, Agent as AgentObject, KeepAliveRequest, Kind, Object};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tracing::{debug, info, warn};

pub use config::AgentConfig;
use config::ProvidedService;
use metrics::{AgentMetrics, AgentProbe};
use pld_telemetry::{Metrics, Probe};
use reconcile::Reconciler;
use view::CatalogView;

/// Why an agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("controller: {0}")]
    Controller(#[from] ClientError),
    #[error("cloud: VPC {vpc} is not visible to account {account}: {source}")]
    Vpc {
        vpc: String,
        account: String,
        #[source]
        source: CloudError,
    },
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Tls(#[from] pld_client::tls::TlsError),
    /// The installation's cluster id is unknown, or the config pins another.
    #[error("cluster_id: {0}")]
    ClusterId(String),
}

/// Listeners an agent serves on, bound by the caller (so tests can use port 0).
pub struct Listeners {
    pub host_api: TcpListener,
    pub dns_udp: UdpSocket,
    pub dns_tcp: TcpListener,
}

impl Listeners {
    /// Binds the addresses in `cfg`.
    ///
    /// # Errors
    /// When an address cannot be bound.
    pub async fn bind(cfg: &AgentConfig) -> std::io::Result<Self> {
        Ok(Listeners {
            host_api: TcpListener::bind(cfg.listen).await?,
            dns_udp: UdpSocket::bind(cfg.dns_listen).await?,
            dns_tcp: TcpListener::bind(cfg.dns_listen).await?,
        })
    }
}

/// A running agent.
pub struct Agent {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    host_api: SocketAddr,
    dns: SocketAddr,
    reconciler: Arc<Reconciler>,
    view: Arc<CatalogView>,
    client: Client,
    cfg: Arc<AgentConfig>,
    /// The services the config provides now (a SIGHUP may change them).
    provided: Arc<Mutex<Vec<ProvidedService>>>,
    probe: Arc<AgentProbe>,
    metrics: Arc<AgentMetrics>,
}

/// What a reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Services registered or updated in the catalog.
    pub registered: Vec<String>,
    /// Services removed from the config, and so deregistered.
    pub deregistered: Vec<String>,
    /// Keys that changed but need a restart to take effect (left as they were).
    pub restart_needed: Vec<&'static str>,
}

impl Agent {
    /// Registers and starts the agent.
    ///
    /// # Errors
    /// [`AgentError`] naming the bad setting, the unreachable controller or the missing VPC.
    pub async fn start(
        cfg: AgentConfig,
        cloud: Arc<dyn Cloud>,
        listeners: Listeners,
    ) -> Result<Agent, AgentError> {
        cfg.validate()?;
        let cfg = Arc::new(cfg);
        let tls = cfg.tls.as_ref().map(|t| t.load()).transpose()?;
        if cfg.insecure {
            // validate() let this through only because the config says so: say it every start
            // (quietly on the simulated region, which lives in one process on loopback).
            const OPEN: &str = "insecure = true: TLS to the controllers is off, so anyone on \
                 the path reads and can alter what this agent is told; set [tls] to use \
                 certificates";
            match cfg.cloud {
                config::CloudKind::Aws => warn!("{OPEN}"),
                config::CloudKind::Sim => info!("{OPEN}"),
            }
        }
        let client = Client::connect(&cfg.controllers, tls.as_ref())?;
        check_vpc(cloud.as_ref(), &cfg).await?;
        let host_api = listeners.host_api.local_addr()?;
        let dns = listeners.dns_udp.local_addr()?;
        let metrics = AgentMetrics::new(&Metrics::new(), cfg.pass_deadline(), cfg.insecure);
        let provided = Arc::new(Mutex::new(cfg.services.clone()));
        register(&client, &cfg, &cfg.services, host_api).await?;
        metrics.renewed();
        let cluster_id = cluster_id(&client, cfg.cluster_id.as_deref()).await?;
        info!(cluster = %cluster_id, "tagging resources as this cluster's");

        let (stop, stop_rx) = watch::channel(false);
        let view = CatalogView::new();
        let probe = Arc::new(AgentProbe {
            metrics: metrics.clone(),
            view: view.clone(),
            cloud: cloud.clone(),
            vpc_id: cfg.vpc_id.clone(),
            lease_ttl: Duration::from_secs(u64::from(cfg.lease_ttl_seconds)),
        });
        let reconciler = Arc::new(Reconciler::new(
            cfg.clone(),
            &cluster_id,
            cloud,
            client.clone(),
            view.clone(),
            metrics.clone(),
        ));
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(
            view.clone().follow(client.clone(), stop_rx.clone()),
        ));
        tasks.push(tokio::spawn(reconciler.clone().run(stop_rx.clone())));
        tasks.push(tokio::spawn(keep_alive(
            KeepAlive {
                client: client.clone(),
                cfg: cfg.clone(),
                provided: provided.clone(),
                address: host_api,
                metrics: metrics.clone(),
            },
            stop_rx.clone(),
        )));

        let refused = |reason| {
            metrics.registry().counter(
                "pld_agent_host_api_refused_total",
                "Host API requests refused: a connection from outside host_api.allowed_networks, \
                 or an on-demand binding to a service host_api.on_demand_services does not list.",
                &[("reason", reason)],
            )
        };
        let service = host_api::HostQueryService::new(
            cfg.vpc_id.clone(),
            cfg.region.clone(),
            client.clone(),
            view.clone(),
        )
        .on_demand(
            host_access::OnDemand::new(cfg.host_api.on_demand_services.as_deref()),
            refused("on_demand"),
        );
        let (health, health_service) = tonic_health_reporter().await;
        let _ = health;
        let mut stop_api = stop_rx.clone();
        let incoming = host_access::admit(
            tonic::transport::server::TcpIncoming::from(listeners.host_api)
                .with_nodelay(Some(true)),
            host_access::ClientNetworks::new(cfg.host_api.allowed_networks.clone()),
            refused("network"),
        );
        let mut server = tonic::transport::Server::builder().accept_http1(true);
        if let Some(files) = &cfg.host_api.tls {
            server = server
                .tls_config(files.load()?.server_config())
                .map_err(|e| AgentError::Io(std::io::Error::other(format!("host_api.tls: {e}"))))?;
        }
        let reflection =
            pld_telemetry::grpc::reflection(pld_proto::FILE_DESCRIPTOR_SET, &["pld.v1.HostQuery"])
                .map_err(|e| AgentError::Io(std::io::Error::other(e.to_string())))?;
        let routes = tonic::service::Routes::builder()
            .routes()
            .add_service(health_service)
            .add_service(reflection)
            .add_service(HostQueryServer::new(service));
        // /metrics, /healthz and /readyz over HTTP/1.1 on the same port.
        let routes = tonic::service::Routes::from(routes.into_axum_router().merge(
            pld_telemetry::routes(metrics.registry().clone(), probe.clone()),
        ));
        tasks.push(tokio::spawn(async move {
            let served = server
                .add_routes(routes)
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stop_api.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = served {
                warn!(error = %e, "host query API stopped");
            }
        }));

        let responder = dns::Responder::new(
            cfg.vpc_id.clone(),
            cfg.zone_fqdn(),
            view.clone(),
            cfg.dns.ttl_seconds,
        );
        let mut server = hickory_server::Server::new(responder);
        server.register_socket(listeners.dns_udp);
        server.register_listener(listeners.dns_tcp, Duration::from_secs(5), 4096);
        let mut stop_dns = stop_rx;
        tasks.push(tokio::spawn(async move {
            let _ = stop_dns.wait_for(|s| *s).await;
            let _ = server.shutdown_gracefully().await;
        }));
        info!(vpc = %cfg.vpc_id, %host_api, %dns, "agent running");
        Ok(Agent {
            stop,
            tasks,
            host_api,
            dns,
            reconciler,
            view,
            client,
            cfg,
            provided,
            probe,
            metrics,
        })
    }

    /// Liveness and readiness, as `/healthz` and `/readyz` report them.
    pub fn probe(&self) -> Arc<dyn Probe> {
        self.probe.clone()
    }

    /// The agent's metrics registry.
    pub fn metrics(&self) -> &Metrics {
        self.metrics.registry()
    }

    /// Applies a changed config (SIGHUP): registers new and changed provided services,
    /// deregisters the ones no longer listed, and reports keys that need a restart.
    ///
    /// # Errors
    /// The config is invalid (nothing is changed), or the controller refused a change (the
    /// ones before it are applied; a later reload retries the rest).
    pub async fn reload(&self, new: AgentConfig) -> Result<Reloaded, AgentError> {
        new.validate()?;
        let restart_needed = self.cfg.restart_needed(&new);
        let old = self
            .provided
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let registered = register(&self.client, &self.cfg, &new.services, self.host_api).await?;
        let mut deregistered = Vec::new();
        for gone in old
            .iter()
            .filter(|o| !new.services.iter().any(|n| n.name == o.name))
        {
            if deregister(&self.client, &self.cfg.vpc_id, &gone.name).await? {
                info!(service = %gone.name, "deregistered a service no longer in the config");
                deregistered.push(gone.name.clone());
            }
        }
        *self.provided.lock().unwrap_or_else(|p| p.into_inner()) = new.services;
        Ok(Reloaded {
            registered,
            deregistered,
            restart_needed,
        })
    }

    /// Where the host query API listens.
    pub fn host_api_addr(&self) -> SocketAddr {
        self.host_api
    }

    /// Where the DNS responder listens (UDP and TCP).
    pub fn dns_addr(&self) -> SocketAddr {
        self.dns
    }

    /// The reconciler (tests run passes directly).
    pub fn reconciler(&self) -> &Arc<Reconciler> {
        &self.reconciler
    }

    /// The local catalog view.
    pub fn view(&self) -> &Arc<CatalogView> {
        &self.view
    }

    /// Stops every task. The lease is left to expire, so a restarted agent takes over.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            if tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .is_err()
            {
                debug!("an agent task did not stop in 5s");
            }
        }
    }

    /// Stops at once, as a crash would (tests of restarts mid-creation).
    pub fn abort(self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn tonic_health_reporter() -> (
    tonic_health::server::HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<HostQueryServer<host_api::HostQueryService>>()
        .await;
    (reporter, service)
}

/// Checks that the VPC is visible, retrying throttling and 5xx for up to a minute.
async fn check_vpc(cloud: &dyn Cloud, cfg: &AgentConfig) -> Result<(), AgentError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut backoff = Duration::from_millis(100);
    loop {
        match cloud.describe_vpc(&cfg.vpc_id).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                debug!(error = %e, "describing the VPC; retrying");
                tokio::time::sleep(backoff.mul_f64(0.5 + rand::random::<f64>())).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(source) => {
                return Err(AgentError::Vpc {
                    vpc: cfg.vpc_id.clone(),
                    account: cfg.account_id.clone(),
                    source,
                })
            }
        }
    }
}

fn agent_object(cfg: &AgentConfig, address: SocketAddr) -> Object {
    Object {
        object: Some(object::Object::Agent(AgentObject {
            vpc_id: cfg.vpc_id.clone(),
            account_id: cfg.account_id.clone(),
            region: cfg.region.clone(),
            address: address.to_string(),
            host_api_tls: cfg.host_api.tls.is_some(),
            lease_ttl_seconds: cfg.lease_ttl_seconds,
            dns_zone: cfg.dns.zone.trim_end_matches('.').to_string(),
            endpoint_subnet_ids: cfg.subnet_ids.clone(),
            ..Default::default()
        })),
    }
}

/// How long a starting agent waits for a new cluster's first leader to name it.
const CLUSTER_ID_WAIT: Duration = Duration::from_secs(15);

/// The cluster id to tag resources with: the catalog's, which a pin in the config must match.
/// Never a default: two installations sharing one would take each other's resources for their
/// own orphans.
async fn cluster_id(client: &Client, pinned: Option<&str>) -> Result<String, AgentError> {
    let deadline = tokio::time::Instant::now() + CLUSTER_ID_WAIT;
    let known = loop {
        if let Some(id) = client.cluster_id().await? {
            break Some(id);
        }
        if tokio::time::Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    match (known, pinned) {
        (Some(id), Some(pin)) if id != pin => Err(AgentError::ClusterId(format!(
            "the config pins {pin:?} but the controllers' catalog says {id:?}: remove the pin \
             or correct it (resources are tagged pld:cluster={id})"
        ))),
        (Some(id), _) => Ok(id),
        // Controllers from before cluster ids: the pin is the only word there is.
        (None, Some(pin)) => {
            warn!(cluster = %pin, "the controllers report no cluster id; using the pinned one");
            Ok(pin.to_string())
        }
        (None, None) => Err(AgentError::ClusterId(format!(
            "the controllers reported no cluster id within {}s (a new cluster names itself \
             once it has a leader; older controllers never do): pin one with cluster_id",
            CLUSTER_ID_WAIT.as_secs()
        ))),
    }
}

/// Registers the agent and the services it provides (each only when it differs from the
/// catalog's). Returns the services it wrote.
async fn register(
    client: &Client,
    cfg: &AgentConfig,
    services: &[ProvidedService],
    address: SocketAddr,
) -> Result<Vec<String>, ClientError> {
    let mut written = Vec::new();
    client.put(agent_object(cfg, address), None).await?;
    for provided in services {
        let spec = cfg.service_spec(provided);
        // A read that fails is treated as "differs": writing the same spec again is harmless.
        let same = matches!(client.get(Kind::Service, &spec.name).await,
            Ok(Some(Object { object: Some(object::Object::Service(s)) }))
                if s.vpc_id == spec.vpc_id && s.load_balancer_arn == spec.load_balancer_arn
                    && s.ports == spec.ports && s.acceptance == spec.acceptance
                    && s.allowed_principals == spec.allowed_principals && s.description == spec.description);
        if !same {
            let object = Object {
                object: Some(object::Object::Service(spec.clone())),
            };
            client.put(object, None).await?;
            info!(service = %spec.name, "registered provided service");
            written.push(spec.name.clone());
        }
    }
    Ok(written)
}

/// Removes `name` from the catalog if it is still this VPC's service. Returns whether it did.
/// The delete is conditional on the revision read, so a service another VPC took over in the
/// meantime is left alone; a status report racing the delete only makes it read again.
async fn deregister(client: &Client, vpc_id: &str, name: &str) -> Result<bool, ClientError> {
    const ATTEMPTS: usize = 5;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let revision = match client.get(Kind::Service, name).await? {
            Some(Object {
                object: Some(object::Object::Service(s)),
            }) if s.vpc_id == vpc_id => s.meta.map(|m| m.mod_revision),
            // Gone, or someone else's service by now: not ours to remove.
            _ => return Ok(false),
        };
        match client.delete(Kind::Service, name, revision).await {
            Ok(_) => return Ok(true),
            Err(e) if e.code() == tonic::Code::NotFound => return Ok(false),
            Err(e) if e.code() == tonic::Code::FailedPrecondition && attempt < ATTEMPTS => {
                debug!(service = %name, "the service changed while deregistering; reading it again");
            }
            Err(e) => return Err(e),
        }
    }
}

/// What the lease renewal task needs.
struct KeepAlive {
    client: Client,
    cfg: Arc<AgentConfig>,
    provided: Arc<Mutex<Vec<ProvidedService>>>,
    address: SocketAddr,
    metrics: Arc<AgentMetrics>,
}

/// Renews the lease every third of its TTL; re-registers when the controller forgot the agent.
async fn keep_alive(k: KeepAlive, mut stop: watch::Receiver<bool>) {
    let KeepAlive {
        client,
        cfg,
        provided,
        address,
        metrics,
    } = k;
    let every = Duration::from_millis(u64::from(cfg.lease_ttl_seconds) * 1000 / 3)
        .max(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let vpc_id = cfg.vpc_id.clone();
        let r = client
            .call(|mut s| {
                let req = KeepAliveRequest {
                    vpc_id: vpc_id.clone(),
                };
                async move { s.catalog().keep_alive(req).await }
            })
            .await;
        match r {
            Ok(_) => metrics.renewed(),
            Err(e) if e.code() == tonic::Code::NotFound => {
                warn!("the controller does not know this agent; registering again");
                let services = provided.lock().unwrap_or_else(|p| p.into_inner()).clone();
                match register(&client, &cfg, &services, address).await {
                    Ok(_) => metrics.renewed(),
                    Err(e) => warn!(error = %e, "registration failed"),
                }
            }
            Err(e) => debug!(error = %e, "lease renewal failed; retrying"),
        }
    }
}
