//! Starts a controller node: opens the data dir, starts raft, serves gRPC, and stops cleanly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pld_proto::v1::catalog_server::CatalogServer;
use pld_proto::v1::cluster_client::ClusterClient;
use pld_proto::v1::cluster_server::ClusterServer;
use pld_proto::v1::raft_transport_server::RaftTransportServer;
use pld_proto::v1::watch_server::WatchServer;
use pld_proto::v1::{AddMemberRequest, Member};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::api::catalog::CatalogService;
use crate::api::cluster::ClusterService;
use crate::api::raft::RaftService;
use crate::api::watch::WatchService;
use crate::config::{ConfigError, ControllerConfig};
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
}

/// A running controller node.
pub struct Controller {
    node: NodeHandle,
    local_addr: SocketAddr,
    stopping: watch::Sender<bool>,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    raft_thread: std::thread::JoinHandle<()>,
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
        let local_addr = listener.local_addr()?;
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
        let (tx, rx) = node::channel();
        let transport = Arc::new(Transport::new(
            cfg.id,
            advertise.clone(),
            tx.clone(),
            faults,
            tokio::runtime::Handle::current(),
        ));
        let (node, raft_thread) =
            node::start(cfg.node_config(), store, start, transport.clone(), tx, rx)?;

        let (stopping, stopping_rx) = watch::channel(false);
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<CatalogServer<CatalogService>>().await;
        health.set_serving::<WatchServer<WatchService>>().await;
        health.set_serving::<ClusterServer<ClusterService>>().await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pld_proto::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| ControllerError::Serve(e.to_string()))?;
        let router = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(health_service)
            .add_service(reflection)
            .add_service(
                CatalogServer::new(CatalogService::new(node.clone()))
                    .max_decoding_message_size(MAX_REQUEST),
            )
            .add_service(
                WatchServer::new(WatchService::new(node.clone(), stopping_rx.clone()))
                    .max_decoding_message_size(MAX_REQUEST),
            )
            .add_service(
                ClusterServer::new(ClusterService::new(node.clone()))
                    .max_decoding_message_size(MAX_REQUEST),
            )
            .add_service(
                RaftTransportServer::new(RaftService::new(
                    node.clone(),
                    transport,
                    stopping_rx.clone(),
                ))
                .max_decoding_message_size(MAX_RAFT_MESSAGE),
            );
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
        };
        if let (true, Some(join)) = (fresh, &cfg.join) {
            if let Err(e) = join_cluster(join, cfg.id, &advertise).await {
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
async fn join_cluster(join: &str, id: u64, advertise: &str) -> Result<(), ControllerError> {
    let address = if join.starts_with("http://") {
        join.to_string()
    } else {
        format!("http://{join}")
    };
    let fail = |reason: String| ControllerError::Join {
        address: address.clone(),
        reason,
    };
    let deadline = tokio::time::Instant::now() + JOIN_DEADLINE;
    let mut last_error = String::new();
    while tokio::time::Instant::now() < deadline {
        let endpoint = tonic::transport::Endpoint::from_shared(address.clone())
            .map_err(|e| fail(e.to_string()))?
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
