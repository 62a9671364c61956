//! Controllers in this process: real raft on real sled dirs, real gRPC over loopback, and one
//! [`Faults`] shared by every node so a test can cut, delay and drop links between them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pld_client::Client;
use pld_controller::config::RaftTuning;
use pld_controller::{Controller, ControllerConfig, Faults};
use tempfile::TempDir;
use tokio::net::TcpListener;

use crate::wait_until;

/// Raft timing for tests: 20 ms ticks, so elections take a few hundred milliseconds.
pub fn fast_tuning() -> RaftTuning {
    RaftTuning {
        tick_ms: 20,
        election_ticks: 10,
        heartbeat_ticks: 2,
        request_timeout_ms: 2000,
        ..RaftTuning::default()
    }
}

struct Slot {
    addr: SocketAddr,
    dir: TempDir,
    controller: Option<Controller>,
}

/// A cluster of in-process controllers.
pub struct TestCluster {
    slots: BTreeMap<u64, Slot>,
    faults: Arc<Faults>,
    tuning: RaftTuning,
}

impl TestCluster {
    /// Starts nodes `1..=n` bootstrapped together.
    ///
    /// # Errors
    /// When a node cannot start.
    pub async fn start(n: u64, tuning: RaftTuning) -> anyhow::Result<Self> {
        crate::init_tracing();
        let mut listeners = BTreeMap::new();
        for id in 1..=n {
            listeners.insert(id, TcpListener::bind("127.0.0.1:0").await?);
        }
        let peers: Vec<String> = listeners
            .iter()
            .map(|(id, l)| Ok(format!("{id}={}", l.local_addr()?)))
            .collect::<std::io::Result<_>>()?;
        let mut cluster = TestCluster {
            slots: BTreeMap::new(),
            faults: Faults::new(),
            tuning,
        };
        for (id, listener) in listeners {
            let addr = listener.local_addr()?;
            let dir = tempfile::tempdir()?;
            let mut cfg = cluster.config(id, &dir);
            cfg.peers = peers.clone();
            let controller = Controller::start(cfg, listener, cluster.faults.clone()).await?;
            cluster.slots.insert(
                id,
                Slot {
                    addr,
                    dir,
                    controller: Some(controller),
                },
            );
        }
        Ok(cluster)
    }

    fn config(&self, id: u64, dir: &TempDir) -> ControllerConfig {
        let mut cfg = ControllerConfig::new(id, dir.path().to_path_buf());
        cfg.raft = self.tuning.clone();
        cfg.insecure = true;
        cfg
    }

    /// The shared network faults.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Ids of every node, running or not.
    pub fn ids(&self) -> Vec<u64> {
        self.slots.keys().copied().collect()
    }

    /// A node's controller, if running.
    pub fn controller(&self, id: u64) -> Option<&Controller> {
        self.slots.get(&id).and_then(|s| s.controller.as_ref())
    }

    /// A client that talks to node `id` only.
    ///
    /// # Panics
    /// When `id` is not a node of this cluster (a test bug).
    pub fn client_of(&self, id: u64) -> Client {
        let addr = self.slots[&id].addr;
        Client::new(&[addr.to_string()])
            .expect("loopback address parses")
            .with_deadline(Duration::from_secs(5))
    }

    /// A client over every node.
    pub fn client(&self) -> Client {
        let addrs: Vec<String> = self.slots.values().map(|s| s.addr.to_string()).collect();
        Client::new(&addrs)
            .expect("loopback addresses parse")
            .with_deadline(Duration::from_secs(10))
    }

    /// Waits until the running nodes among `among` agree on one leader that is among them.
    ///
    /// # Errors
    /// When they do not agree within 10 s.
    pub async fn wait_leader(&self, among: &[u64]) -> anyhow::Result<u64> {
        wait_until(
            Duration::from_secs(10),
            "a leader everyone agrees on",
            || async {
                let leaders: Vec<u64> = among
                    .iter()
                    .filter_map(|id| self.controller(*id))
                    .map(|c| c.node().info().leader_id)
                    .collect();
                let first = *leaders.first()?;
                let agreed =
                    first != 0 && leaders.iter().all(|l| *l == first) && among.contains(&first);
                let leads = self
                    .controller(first)
                    .is_some_and(|c| c.node().info().role == "leader");
                (agreed && leads).then_some(first)
            },
        )
        .await
    }

    /// Waits until every running node has applied at least `index`.
    ///
    /// # Errors
    /// When some node does not within 10 s.
    pub async fn wait_applied(&self, ids: &[u64], index: u64) -> anyhow::Result<()> {
        wait_until(Duration::from_secs(10), "nodes to apply", || async {
            ids.iter()
                .filter_map(|id| self.controller(*id))
                .all(|c| c.node().info().applied_index >= index)
                .then_some(())
        })
        .await
    }

    /// Stops node `id` (its data dir stays).
    pub async fn stop(&mut self, id: u64) {
        if let Some(c) = self.slots.get_mut(&id).and_then(|s| s.controller.take()) {
            c.shutdown().await;
        }
    }

    /// Restarts a stopped node on its data dir and address.
    ///
    /// # Errors
    /// When it cannot start.
    pub async fn restart(&mut self, id: u64) -> anyhow::Result<()> {
        self.restart_with(id, |_| {}).await
    }

    /// Restarts a stopped node on its data dir and address, its config changed by `edit`.
    ///
    /// # Errors
    /// When it cannot start.
    pub async fn restart_with(
        &mut self,
        id: u64,
        edit: impl FnOnce(&mut ControllerConfig),
    ) -> anyhow::Result<()> {
        let mut cfg = {
            let slot = &self.slots[&id];
            self.config(id, &slot.dir)
        };
        edit(&mut cfg);
        let addr = self.slots[&id].addr;
        let listener = TcpListener::bind(addr).await?;
        let controller = Controller::start(cfg, listener, self.faults.clone()).await?;
        if let Some(slot) = self.slots.get_mut(&id) {
            slot.controller = Some(controller);
        }
        Ok(())
    }

    /// Starts a new node `id` that joins through node `via`.
    ///
    /// # Errors
    /// When it cannot start or join.
    pub async fn join(&mut self, id: u64, via: u64) -> anyhow::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let dir = tempfile::tempdir()?;
        let mut cfg = self.config(id, &dir);
        cfg.join = Some(self.slots[&via].addr.to_string());
        let controller = Controller::start(cfg, listener, self.faults.clone()).await?;
        self.slots.insert(
            id,
            Slot {
                addr,
                dir,
                controller: Some(controller),
            },
        );
        Ok(())
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        for id in self.ids() {
            self.stop(id).await;
        }
    }
}
