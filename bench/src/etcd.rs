//! etcd side: start three `etcd`s, find the leader, put the same values, watch.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use pld_tests::free_port;
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};

use crate::spawn::Procs;
use crate::workload::{value_bytes, CONNECTIONS};

pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("etcdserverpb");
}

use pb::kv_client::KvClient;
use pb::maintenance_client::MaintenanceClient;
use pb::watch_client::WatchClient;
use pb::{
    watch_request, PutRequest, RangeRequest, StatusRequest, WatchCreateRequest, WatchRequest,
};

const PREFIX: &str = "/pld/services/";
const WATCH_PREFIX: &str = "/pld/watch/";

#[derive(Clone)]
pub struct Etcd {
    channels: Vec<Channel>,
}

async fn connect(address: &str) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(format!("http://{address}"))?
        .tcp_nodelay(true)
        .connect()
        .await?)
}

pub async fn start(
    binary: &Path,
    dir: &Path,
    snapshot_count: u64,
) -> anyhow::Result<(Procs, u32, Etcd)> {
    std::fs::create_dir_all(dir)?;
    let nodes: Vec<(u16, u16)> = (0..3)
        .map(|_| Ok((free_port()?, free_port()?)))
        .collect::<anyhow::Result<_>>()?;
    let cluster = nodes
        .iter()
        .enumerate()
        .map(|(i, (_, peer))| format!("n{}=http://127.0.0.1:{peer}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let mut procs = Procs {
        children: Vec::new(),
    };
    let mut pids = Vec::new();
    for (i, (client, peer)) in nodes.iter().enumerate() {
        let name = format!("n{}", i + 1);
        let args: Vec<String> = vec![
            format!("--name={name}"),
            format!("--data-dir={}", dir.join(&name).display()),
            format!("--listen-client-urls=http://127.0.0.1:{client}"),
            format!("--advertise-client-urls=http://127.0.0.1:{client}"),
            format!("--listen-peer-urls=http://127.0.0.1:{peer}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"),
            format!("--initial-cluster={cluster}"),
            "--initial-cluster-state=new".into(),
            "--initial-cluster-token=pld-bench".into(),
            format!("--snapshot-count={snapshot_count}"),
        ];
        pids.push(procs.spawn(binary, &args, &dir.join(format!("{name}.log")))?);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        anyhow::ensure!(Instant::now() < deadline, "no etcd leader within 30s");
        let mut found = None;
        for (i, (client, _)) in nodes.iter().enumerate() {
            if let Ok(ch) = connect(&format!("127.0.0.1:{client}")).await {
                if let Ok(s) = MaintenanceClient::new(ch).status(StatusRequest {}).await {
                    let s = s.into_inner();
                    if s.leader != 0 && s.header.is_some_and(|h| h.member_id == s.leader) {
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
    let address = format!("127.0.0.1:{}", nodes[leader].0);
    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        channels.push(connect(&address).await?);
    }
    Ok((procs, pids[leader], Etcd { channels }))
}

impl Etcd {
    pub async fn put(&self, conn: usize, name: &str) -> anyhow::Result<()> {
        let mut client = KvClient::new(self.channels[conn % self.channels.len()].clone());
        let prefix = if name.starts_with("w-") {
            WATCH_PREFIX
        } else {
            PREFIX
        };
        client
            .put(PutRequest {
                key: format!("{prefix}{name}").into_bytes(),
                value: value_bytes(name),
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// A read of one key that the leader answers from its own state (serializable).
    pub async fn get(&self, conn: usize, name: &str) -> anyhow::Result<()> {
        let mut client = KvClient::new(self.channels[conn % self.channels.len()].clone());
        let found = client
            .range(RangeRequest {
                key: format!("{PREFIX}{name}").into_bytes(),
                serializable: true,
            })
            .await?
            .into_inner();
        anyhow::ensure!(found.count == 1, "etcd has no key {PREFIX}{name}");
        Ok(())
    }

    pub async fn spawn_watchers(
        &self,
        n: usize,
        tx: mpsc::UnboundedSender<(usize, Instant)>,
        ready: Arc<AtomicUsize>,
    ) -> anyhow::Result<()> {
        // The end of the prefix range: the prefix with its last byte incremented.
        let mut range_end = WATCH_PREFIX.as_bytes().to_vec();
        if let Some(last) = range_end.last_mut() {
            *last += 1;
        }
        for w in 0..n {
            let mut client = WatchClient::new(self.channels[w % self.channels.len()].clone());
            let tx = tx.clone();
            let ready = ready.clone();
            let range_end = range_end.clone();
            tokio::spawn(async move {
                let create = WatchRequest {
                    request_union: Some(watch_request::RequestUnion::CreateRequest(
                        WatchCreateRequest {
                            key: WATCH_PREFIX.as_bytes().to_vec(),
                            range_end,
                            ..Default::default()
                        },
                    )),
                };
                // Keep the request stream open: etcd ends the watch when it closes.
                let requests =
                    futures::stream::once(async move { create }).chain(futures::stream::pending());
                let Ok(resp) = client.watch(requests).await else {
                    return;
                };
                let mut stream = resp.into_inner();
                while let Ok(Some(msg)) = stream.message().await {
                    let at = Instant::now();
                    if msg.created {
                        ready.fetch_add(1, Ordering::Relaxed);
                    }
                    for e in msg.events {
                        let key = e.kv.map(|kv| kv.key).unwrap_or_default();
                        let key = String::from_utf8_lossy(&key);
                        if let Some(u) = key
                            .strip_prefix(WATCH_PREFIX)
                            .and_then(|k| k.strip_prefix("w-"))
                            .and_then(|u| u.parse().ok())
                        {
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
