//! pld side: start three `pld controller`s, find the leader, put services, watch.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pld_proto::v1::catalog_client::CatalogClient;
use pld_proto::v1::cluster_client::ClusterClient;
use pld_proto::v1::watch_client::WatchClient;
use pld_proto::v1::{
    object, GetRequest, Kind, NodeStatusRequest, Object, PutRequest, WatchRequest,
};
use pld_tests::free_port;
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};

use crate::spawn::Procs;
use crate::workload::{service, CONNECTIONS};

#[derive(Clone)]
pub struct Pld {
    channels: Vec<Channel>,
}

async fn connect(address: &str) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(format!("http://{address}"))?
        .tcp_nodelay(true)
        .connect()
        .await?)
}

pub async fn start(binary: &Path, dir: &Path) -> anyhow::Result<(Procs, u32, Pld)> {
    std::fs::create_dir_all(dir)?;
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect::<anyhow::Result<_>>()?;
    let peers = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let mut procs = Procs {
        children: Vec::new(),
    };
    let mut pids = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let id = i + 1;
        let args: Vec<String> = vec![
            "controller".into(),
            // etcd, the peer, runs without TLS too.
            "--insecure".into(),
            "--id".into(),
            id.to_string(),
            "--data-dir".into(),
            dir.join(format!("node{id}")).display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{p}"),
            "--peers".into(),
            peers.clone(),
        ];
        pids.push(procs.spawn(binary, &args, &dir.join(format!("node{id}.log")))?);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        anyhow::ensure!(Instant::now() < deadline, "no pld leader within 30s");
        let mut found = None;
        for (i, p) in ports.iter().enumerate() {
            if let Ok(ch) = connect(&format!("127.0.0.1:{p}")).await {
                if let Ok(s) = ClusterClient::new(ch)
                    .get_node_status(NodeStatusRequest {})
                    .await
                {
                    if s.get_ref().role == "leader" {
                        found = Some(i);
                    }
                }
            }
        }
        if let Some(i) = found {
            break i;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let address = format!("127.0.0.1:{}", ports[leader]);
    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        channels.push(connect(&address).await?);
    }
    Ok((procs, pids[leader], Pld { channels }))
}

impl Pld {
    pub async fn put(&self, conn: usize, name: &str) -> anyhow::Result<()> {
        let mut client = CatalogClient::new(self.channels[conn % self.channels.len()].clone());
        client
            .put(PutRequest {
                object: Some(Object {
                    object: Some(object::Object::Service(service(name))),
                }),
                expected_mod_revision: None,
            })
            .await?;
        Ok(())
    }

    /// A read of one service that the leader answers from its own state (`stale`).
    pub async fn get(&self, conn: usize, name: &str) -> anyhow::Result<()> {
        let mut client = CatalogClient::new(self.channels[conn % self.channels.len()].clone());
        client
            .get(GetRequest {
                kind: Kind::Service as i32,
                key: name.into(),
                stale: true,
            })
            .await?;
        Ok(())
    }

    pub async fn spawn_watchers(
        &self,
        n: usize,
        tx: mpsc::UnboundedSender<(usize, Instant)>,
        ready: Arc<AtomicUsize>,
    ) -> anyhow::Result<()> {
        for w in 0..n {
            let mut client = WatchClient::new(self.channels[w % self.channels.len()].clone());
            let tx = tx.clone();
            let ready = ready.clone();
            tokio::spawn(async move {
                let Ok(resp) = client
                    .watch(WatchRequest {
                        start_revision: 0,
                        prefix: "w-".into(),
                        ..Default::default()
                    })
                    .await
                else {
                    return;
                };
                let mut stream = resp.into_inner();
                while let Ok(Some(msg)) = stream.message().await {
                    let at = Instant::now();
                    if msg.events.is_empty() {
                        ready.fetch_add(1, Ordering::Relaxed);
                    }
                    for e in msg.events {
                        if let Some(u) = e.key.strip_prefix("w-").and_then(|u| u.parse().ok()) {
                            if tx.send((u, at)).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
        Ok(())
    }
}
