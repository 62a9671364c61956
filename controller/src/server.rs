//! Starts a controller node: opens the data dir, starts raft, serves gRPC, and stops cleanly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pld_proto::v1::catalog_server::CatalogServer;
use pld_proto::v1::cluster_client::ClusterClient;
use pld_proto::v1::cluster_server::ClusterServer;
use pld_proto::v1::planner_server::PlannerServer;
use pld_proto::v1::raft_transport_server::RaftTransportServer;
use pld_proto::v1::watch_server::WatchServer;
use pld_proto::v1::{AddMemberRequest, Member};
use pld_telemetry::{Metrics, Probe};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::api::catalog::CatalogService;
use crate::api::cluster::ClusterService;
use crate::api::plan::PlanService;
use crate::api::raft::RaftService;
use crate::api::watch::WatchService;
use crate::authz::Authz;
use crate::config::{ConfigError, ControllerConfig};
use crate::metrics::ControllerMetrics;
use crate::node::{self, NodeHandle, Start, StartError};
use crate::storage::{LogStore, OpenError, SledStore};
use crate::transport::{Faults, Transport, MAX_RAFT_MESSAGE};

/// Largest client request the catalog accepts.
pub const MAX_REQUEST: usize = 1024 * 1024;
/// How long a joining node keeps asking to be added.
const JOIN_DEADLINE: Duration = Duration::from_secs(60);

/// Why a controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    DataDir(#[from] OpenError),
    #[error("starting raft: {0}")]
    Raft(#[from] StartError),
    #[error("{0}")]
    Membership(String),
    #[error("joining the cluster through {address}: {reason}")]
    Join { address: String, reason: String },
    #[error("gRPC server: {0}")]
    Serve(String),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Tls(#[from] pld_client::tls::TlsError),
}

/// A running controller node.
pub struct Controller {
    node: NodeHandle,
    local_addr: SocketAddr,
    stopping: watch::Sender<bool>,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    raft_thread: std::thread::JoinHandle<()>,
    probe: Arc<ControllerProbe>,
}

impl Controller {
    /// Starts a node serving on `listener`. Returns once the node serves requests (and, with
    /// `join`, once the cluster has added it).
    ///
    /// # Errors
    /// [`ControllerError`] naming the bad setting, data dir or peer.
    pub async fn start(
        cfg: ControllerConfig,
        listener: TcpListener,
        faults: Arc<Faults>,
    ) -> Result<Controller, ControllerError> {
        let peers = cfg.validate()?;
        let (prices, traffic) = cfg.cost_inputs()?;
        // Certificates are read before anything else starts, so a bad path fails fast.
        let tls = cfg
            .tls
            .as_ref()
            .map(|t| t.load().map(Arc::new))
            .transpose()?;
        // Callers can only be told apart by their client certificates.
        let authz = Authz::new(tls.is_some(), cfg.trust_domain.clone());
        let local_addr = listener.local_addr()?;
        if cfg.insecure {
            // validate() let this through only because the config says so: say it at every
            // start, wherever the node listens.
            warn!(
                listen = %local_addr,
                "insecure = true: TLS is off, so every client may do everything, membership \
                 changes, restores and raft messages included; set [tls] to require \
                 certificates and enforce their identities"
            );
        }
        let advertise = cfg
            .advertise
            .clone()
            .unwrap_or_else(|| local_addr.to_string());
        let data_dir = cfg.data_dir.clone();
        let id = cfg.id;
        let (store, fresh) = tokio::task::spawn_blocking(move || SledStore::open(&data_dir, id))
            .await
            .map_err(|e| ControllerError::Serve(e.to_string()))??;
        let start = if fresh {
            match (&cfg.join, peers.is_empty()) {
                (Some(_), _) => Start::Existing,
                (None, false) => Start::Bootstrap(peers),
                (None, true) => Start::Bootstrap([(cfg.id, advertise.clone())].into()),
            }
        } else {
            check_stored_membership(&store, cfg.id, &peers)?;
            if cfg.join.is_some() {
                info!("data dir holds state already; --join ignored");
            }
            Start::Existing
        };
        let store: Arc<dyn LogStore> = Arc::new(store);
        let metrics = Arc::new(ControllerMetrics::new(&Metrics::new()));
        metrics.insecure.set(if cfg.insecure { 1.0 } else { 0.0 });
        metrics.cost.estimate_with(prices, traffic);
        metrics.raft_refused.declare(
            node::guard::Refusal::LABELS
                .into_iter()
                .chain(crate::api::raft::BatchRefusal::LABELS),
        );
        let (tx, rx) = node::channel();
        let raft_runtime = node::RaftRuntime::new()?;
        let transport = Arc::new(Transport::new(
            cfg.id,
            advertise.clone(),
            tx.clone(),
            faults,
            raft_runtime.handle(),
            tls.clone(),
        ));
        let (node, raft_thread) = node::start(
            cfg.node_config(),
            store,
            start,
            transport.clone(),
            (tx, rx),
            metrics.clone(),
            raft_runtime,
        )?;
        let probe = Arc::new(ControllerProbe { node: node.clone() });

        let (stopping, stopping_rx) = watch::channel(false);
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<CatalogServer<CatalogService>>().await;
        health.set_serving::<WatchServer<WatchService>>().await;
        health.set_serving::<ClusterServer<ClusterService>>().await;
        health.set_serving::<PlannerServer<PlanService>>().await;
        let reflection = pld_telemetry::grpc::reflection(
            pld_proto::FILE_DESCRIPTOR_SET,
            &[
                "pld.v1.Catalog",
                "pld.v1.Watch",
                "pld.v1.Cluster",
                "pld.v1.Planner",
                "pld.v1.RaftTransport",
            ],
        )
        .map_err(|e| ControllerError::Serve(e.to_string()))?;
        tokio::spawn(report_grpc_health(
            health.clone(),
            probe.clone(),
            stopping_rx.clone(),
        ));
        let routes = tonic::service::Routes::builder()
            .routes()
            .add_service(health_service)
            .add_service(reflection)
            .add_service(
                CatalogServer::new(CatalogService::new(node.clone(), authz.clone()))
                    .max_decoding_message_size(MAX_REQUEST),
            )
            .add_service(
                WatchServer::new(WatchService::new(
                    node.clone(),
                    stopping_rx.clone(),
                    authz.clone(),
                ))
                .max_decoding_message_size(MAX_REQUEST),
            )
            .add_service(
                ClusterServer::new(ClusterService::new(
                    node.clone(),
                    tls.clone(),
                    authz.clone(),
                ))
                .max_decoding_message_size(MAX_REQUEST),
            )
            .add_service(
                PlannerServer::new(PlanService::new(node.clone(), authz.clone()))
                    .max_decoding_message_size(MAX_REQUEST),
            )
            .add_service(
                RaftTransportServer::new(RaftService::new(
                    node.clone(),
                    transport,
                    stopping_rx.clone(),
                    authz,
                    metrics.clone(),
                ))
                .max_decoding_message_size(MAX_RAFT_MESSAGE),
            );
        // /metrics, /healthz and /readyz over HTTP/1.1 on the same port.
        let routes = tonic::service::Routes::from(routes.into_axum_router().merge(
            pld_telemetry::routes(metrics.registry().clone(), probe.clone()),
        ));
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = &tls {
            builder = builder
                .tls_config(tls.server_config())
                .map_err(|e| pld_client::tls::TlsError::Config(e.to_string()))?;
        }
        let router = builder
            .tcp_nodelay(true)
            .accept_http1(true)
            .add_routes(routes);
        let mut stop = stopping_rx;
        // Accepted sockets need TCP_NODELAY set here: the builder's setting only applies to
        // listeners tonic binds itself, and Nagle's algorithm adds ~40 ms to small responses.
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let server = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async move {
            let _ = stop.wait_for(|s| *s).await;
        }));
        info!(node = cfg.id, %local_addr, %advertise, "controller serving");
        let controller = Controller {
            node,
            local_addr,
            stopping,
            server,
            raft_thread,
            probe,
        };
        if let (true, Some(join)) = (fresh, &cfg.join) {
            if let Err(e) = join_cluster(join, cfg.id, &advertise, tls.as_deref()).await {
                controller.shutdown().await;
                return Err(e);
            }
        }
        Ok(controller)
    }

    /// The address the gRPC server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The raft node.
    pub fn node(&self) -> &NodeHandle {
        &self.node
    }

    /// Resolves when a storage failure (a full disk, a failing fsync) stopped the node, with
    /// what failed. The node no longer acknowledges anything; the process should exit so that a
    /// restart (systemd's `Restart=on-failure`) reopens the data dir once the disk is fixed.
    pub async fn failed(&self) -> String {
        self.node.failed().await
    }

    /// Liveness and readiness, as `/healthz` and `/readyz` report them.
    pub fn probe(&self) -> Arc<dyn Probe> {
        self.probe.clone()
    }

    /// Stops accepting requests, lets in-flight ones finish, ends watch streams, then stops raft.
    pub async fn shutdown(self) {
        let _ = self.stopping.send(true);
        match tokio::time::timeout(Duration::from_secs(10), self.server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => warn!(error = %e, "gRPC server ended with an error"),
            Ok(Err(e)) => warn!(error = %e, "gRPC server task failed"),
            Err(_) => warn!("in-flight requests did not finish within 10s"),
        }
        self.node.shutdown();
        let thread = self.raft_thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        info!(node = self.node.id(), "controller stopped");
    }
}

/// Refuses bootstrap flags that contradict what the data dir says about membership.
fn check_stored_membership(
    store: &SledStore,
    id: u64,
    peers: &std::collections::BTreeMap<u64, String>,
) -> Result<(), ControllerError> {
    if peers.is_empty() {
        return Ok(());
    }
    let snap = store.snapshot().map_err(|e| {
        ControllerError::DataDir(OpenError::Corrupt {
            path: store.path().to_path_buf(),
            detail: e.to_string(),
        })
    })?;
    let catalog = pld_core::Catalog::decode_snapshot(&snap.data, 1).map_err(|e| {
        ControllerError::DataDir(OpenError::Corrupt {
            path: store.path().to_path_buf(),
            detail: e.to_string(),
        })
    })?;
    for (peer, address) in peers {
        if let Some(stored) = catalog.members().get(peer) {
            if stored != address {
                return Err(ControllerError::Membership(format!(
                    "--peers says node {peer} is at {address}, but the data dir in {} records {stored}; fix --peers or change membership with `pld members`",
                    store.path().display()
                )));
            }
        }
    }
    if !catalog.members().is_empty() && !catalog.members().contains_key(&id) {
        warn!(
            node = id,
            "this node is not a member in its last snapshot; it may have been removed"
        );
    }
    Ok(())
}

/// Asks a running member to add this node, retrying until it answers or the deadline passes.
async fn join_cluster(
    join: &str,
    id: u64,
    advertise: &str,
    tls: Option<&pld_client::tls::Tls>,
) -> Result<(), ControllerError> {
    let address = join.to_string();
    let fail = |reason: String| ControllerError::Join {
        address: address.clone(),
        reason,
    };
    let deadline = tokio::time::Instant::now() + JOIN_DEADLINE;
    let mut last_error = String::new();
    while tokio::time::Instant::now() < deadline {
        let endpoint = crate::dial::endpoint(&address, tls)
            .map_err(fail)?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10));
        match endpoint.connect().await {
            Ok(channel) => {
                let req = AddMemberRequest {
                    member: Some(Member {
                        id,
                        address: advertise.to_string(),
                    }),
                };
                match ClusterClient::new(channel).add_member(req).await {
                    Ok(_) => {
                        info!(node = id, via = %address, "joined the cluster");
                        return Ok(());
                    }
                    Err(s) if s.code() == tonic::Code::Unavailable => {
                        last_error = s.message().to_string()
                    }
                    Err(s) => return Err(fail(s.message().to_string())),
                }
            }
            Err(e) => last_error = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(fail(format!(
        "no answer within {JOIN_DEADLINE:?}: {last_error}"
    )))
}

/// How long the raft thread may go without publishing its state before the node counts as
/// stuck (it publishes after every tick, 100 ms by default).
const STUCK_AFTER: Duration = Duration::from_secs(5);

/// A controller's liveness and readiness.
struct ControllerProbe {
    node: NodeHandle,
}

impl Probe for ControllerProbe {
    fn live(&self) -> Result<(), String> {
        if let Some(why) = self.node.fatal() {
            return Err(why);
        }
        match self.node.info().published_at {
            Some(at) if at.elapsed() > STUCK_AFTER => Err(format!(
                "the raft thread has not turned for {:.1}s",
                at.elapsed().as_secs_f64()
            )),
            None => Err("the raft thread has not started".into()),
            Some(_) => Ok(()),
        }
    }

    /// Ready = a voting member that knows a leader and has applied everything the leader told
    /// it is committed: its linearizable reads and watches are current.
    fn ready(&self) -> Result<(), String> {
        let info = self.node.info();
        if !info.voters.contains(&self.node.id()) {
            return Err(format!(
                "node {} is not a voting member (yet)",
                self.node.id()
            ));
        }
        if info.leader_id == 0 {
            return Err(
                "no leader is known (election in progress, or cut off from a majority)".into(),
            );
        }
        if info.applied_index < info.commit_index {
            return Err(format!(
                "catching up: applied {} of {} committed entries",
                info.applied_index, info.commit_index
            ));
        }
        Ok(())
    }

    fn refresh_metrics(&self) {
        self.node.metrics().refresh(&self.node.catalog());
    }
}

/// Keeps gRPC health's overall status ("") in step with readiness, so gRPC health checks and
/// `/readyz` agree.
async fn report_grpc_health(
    health: tonic_health::server::HealthReporter,
    probe: Arc<ControllerProbe>,
    mut stopping: watch::Receiver<bool>,
) {
    use tonic_health::ServingStatus;
    let mut last = None;
    loop {
        let ready = probe.live().and_then(|()| probe.ready()).is_ok();
        if last != Some(ready) {
            let status = if ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            health.set_service_status("", status).await;
            last = Some(ready);
        }
        // Decide inside select, act outside: the borrow `wait_for` returns is not Send.
        let stop = tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => false,
            _ = stopping.wait_for(|s| *s) => true,
        };
        if stop {
            health
                .set_service_status("", ServingStatus::NotServing)
                .await;
            return;
        }
    }
}
