//! Real `pld controller` processes on loopback ports, with their own data dirs. Every process
//! is killed when the [`ProcessCluster`] is dropped, so a failing test leaves nothing running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pld_client::Client;
use pld_proto::v1::NodeStatusRequest;
use tempfile::TempDir;

use crate::{free_port, wait_until};

struct Proc {
    /// `host:port` it listens on and its peers reach it at.
    address: String,
    /// Runs the process elsewhere, e.g. `ip netns exec NS`; empty to run it directly.
    prefix: Vec<String>,
    dir: PathBuf,
    log: PathBuf,
    /// A TOML config file passed with `--config` (flags still set id, dir, address, peers).
    config: Option<PathBuf>,
    env: BTreeMap<String, String>,
    /// A member to join through instead of bootstrapping with the cluster's peers: a node added
    /// after the start.
    join: Option<String>,
    child: Option<Child>,
}

impl Proc {
    /// Node `id` at `placement`, with its data dir and log under `root`, not started; it
    /// joins through `join` when given, else bootstraps with the cluster's peers.
    fn new(root: &Path, placement: Placement, join: Option<String>) -> Proc {
        Proc {
            address: placement.address,
            prefix: placement.prefix,
            dir: root.join(format!("node{}", placement.id)),
            log: root.join(format!("node{}.log", placement.id)),
            config: None,
            env: BTreeMap::new(),
            join,
            child: None,
        }
    }
}

/// Where one node of a [`ProcessCluster`] runs.
pub struct Placement {
    pub id: u64,
    /// `host:port` to listen on, also the address its peers use.
    pub address: String,
    /// A command that runs the controller elsewhere (`ip netns exec NS`); empty for here.
    pub prefix: Vec<String>,
}

/// A cluster of controller processes.
pub struct ProcessCluster {
    binary: PathBuf,
    /// Keeps the data dirs and logs until the cluster is dropped.
    _root: TempDir,
    procs: BTreeMap<u64, Proc>,
    peers: String,
    /// What the cluster's clients present, when the nodes require mutual TLS.
    client_tls: Option<pld_client::tls::Tls>,
}

impl ProcessCluster {
    /// Starts `n` controllers from `binary`, bootstrapped together.
    ///
    /// # Errors
    /// When a process cannot be spawned.
    pub fn start(binary: &Path, n: u64) -> anyhow::Result<Self> {
        Self::unstarted(binary, n)?.spawn_all()
    }

    /// Starts one controller per placement, bootstrapped together.
    ///
    /// # Errors
    /// When a process cannot be spawned.
    pub fn start_placed(binary: &Path, placements: Vec<Placement>) -> anyhow::Result<Self> {
        Self::placed(binary, placements)?.spawn_all()
    }

    fn spawn_all(mut self) -> anyhow::Result<Self> {
        for id in self.ids() {
            self.spawn(id)?;
        }
        Ok(self)
    }

    /// `n` controllers on loopback, not started yet: set their config and environment, then
    /// [`ProcessCluster::spawn`] them.
    ///
    /// # Errors
    /// When no port is free or the temporary dir cannot be made.
    pub fn unstarted(binary: &Path, n: u64) -> anyhow::Result<Self> {
        let mut placements = Vec::new();
        for id in 1..=n {
            placements.push(Placement {
                id,
                address: format!("127.0.0.1:{}", free_port()?),
                prefix: Vec::new(),
            });
        }
        Self::placed(binary, placements)
    }

    fn placed(binary: &Path, placements: Vec<Placement>) -> anyhow::Result<Self> {
        let root = tempfile::tempdir()?;
        let mut procs = BTreeMap::new();
        for p in placements {
            procs.insert(p.id, Proc::new(root.path(), p, None));
        }
        let peers = procs
            .iter()
            .map(|(id, p)| format!("{id}={}", p.address))
            .collect::<Vec<_>>()
            .join(",");
        Ok(ProcessCluster {
            binary: binary.to_path_buf(),
            _root: root,
            procs,
            peers,
            client_tls: None,
        })
    }

    /// Gives node `id` these extra config file lines (e.g. a `[raft]` table) from its next start.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn set_config(&mut self, id: u64, toml: &str) -> anyhow::Result<()> {
        let p = self
            .procs
            .get_mut(&id)
            .ok_or_else(|| anyhow::anyhow!("no node {id}"))?;
        let path = p.dir.with_extension("toml");
        // A node without a [tls] table must say it serves insecurely, or it does not start.
        let insecure = if toml.contains("[tls]") {
            ""
        } else {
            "insecure = true\n"
        };
        let text = format!("id = {id}\ndata_dir = {:?}\n{insecure}{toml}\n", p.dir);
        std::fs::write(&path, text)?;
        p.config = Some(path);
        Ok(())
    }

    /// Sets (or with `None` removes) an environment variable for node `id`'s next start.
    pub fn set_env(&mut self, id: u64, key: &str, value: Option<&str>) {
        if let Some(p) = self.procs.get_mut(&id) {
            match value {
                Some(v) => p.env.insert(key.into(), v.into()),
                None => p.env.remove(key),
            };
        }
    }

    /// How node `id` ended, once it has (the process is then reaped); `None` while it runs or
    /// when it was not started.
    pub fn exited(&mut self, id: u64) -> Option<std::process::ExitStatus> {
        let p = self.procs.get_mut(&id)?;
        let status = p.child.as_mut()?.try_wait().ok()??;
        p.child = None;
        Some(status)
    }

    /// Node ids.
    pub fn ids(&self) -> Vec<u64> {
        self.procs.keys().copied().collect()
    }

    /// `host:port` of node `id`.
    ///
    /// # Panics
    /// When `id` is unknown (a test bug).
    pub fn address(&self, id: u64) -> String {
        self.procs[&id].address.clone()
    }

    /// The data dir of node `id`.
    ///
    /// # Panics
    /// When `id` is unknown (a test bug).
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.procs[&id].dir.clone()
    }

    /// The whole log of node `id` so far.
    pub fn log(&self, id: u64) -> String {
        self.procs
            .get(&id)
            .and_then(|p| std::fs::read_to_string(&p.log).ok())
            .unwrap_or_default()
    }

    /// Starts (or restarts) node `id` on its data dir and port.
    ///
    /// # Errors
    /// When the process cannot be spawned.
    pub fn spawn(&mut self, id: u64) -> anyhow::Result<()> {
        let binary = self.binary.clone();
        let peers = self.peers.clone();
        let p = self
            .procs
            .get_mut(&id)
            .ok_or_else(|| anyhow::anyhow!("no node {id}"))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p.log)?;
        let mut command = match p.prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        command.arg("controller");
        match &p.config {
            Some(config) => command.arg("--config").arg(config),
            None => command.arg("--insecure"),
        };
        match &p.join {
            Some(member) => command.args(["--join", member]),
            None => command.args(["--peers", &peers]),
        };
        let child = command
            .envs(&p.env)
            .args(["--id", &id.to_string(), "--data-dir"])
            .arg(&p.dir)
            .args(["--listen", &p.address])
            .env("PLD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        p.child = Some(child);
        Ok(())
    }

    /// Starts a new node at `placement` on a fresh data dir, asking the member at `via` to add
    /// it (`--join`); restarts keep joining that way, which a node with state ignores.
    ///
    /// # Errors
    /// When the id is taken or the process cannot be spawned.
    pub fn add_joining(&mut self, placement: Placement, via: &str) -> anyhow::Result<()> {
        let id = placement.id;
        anyhow::ensure!(!self.procs.contains_key(&id), "node {id} exists already");
        let proc = Proc::new(self._root.path(), placement, Some(via.to_string()));
        self.procs.insert(id, proc);
        self.spawn(id)
    }

    /// Kills node `id` and forgets it: a member removed from the cluster. Its log stays on disk
    /// until the cluster is dropped.
    pub fn forget(&mut self, id: u64) {
        self.kill(id);
        self.procs.remove(&id);
    }

    /// SIGKILLs node `id` and reaps it.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.procs.get_mut(&id).and_then(|p| p.child.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes node `id` (SIGSTOP): it holds its connections and answers nothing.
    pub fn pause(&self, id: u64) {
        self.signal(id, "-STOP");
    }

    /// Thaws node `id` (SIGCONT).
    pub fn resume(&self, id: u64) {
        self.signal(id, "-CONT");
    }

    fn signal(&self, id: u64, signal: &str) {
        if let Some(child) = self.procs.get(&id).and_then(|p| p.child.as_ref()) {
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
        }
    }

    /// Sends SIGTERM to node `id` and waits for it to exit; returns its exit code.
    ///
    /// # Errors
    /// When it does not exit within 15 s (it is then killed).
    pub async fn terminate(&mut self, id: u64) -> anyhow::Result<Option<i32>> {
        let Some(mut child) = self.procs.get_mut(&id).and_then(|p| p.child.take()) else {
            return Ok(None);
        };
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        let end = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status.code());
            }
            if tokio::time::Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!("node {id} did not exit within 15s of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether node `id` is running.
    pub fn running(&self, id: u64) -> bool {
        self.procs.get(&id).is_some_and(|p| p.child.is_some())
    }

    /// Makes [`ProcessCluster::client`] and the waiting helpers use mutual TLS.
    pub fn set_client_tls(&mut self, tls: Option<pld_client::tls::Tls>) {
        self.client_tls = tls;
    }

    /// A client over every node.
    pub fn client(&self) -> Client {
        let addrs: Vec<String> = self.ids().into_iter().map(|id| self.address(id)).collect();
        Client::connect(&addrs, self.client_tls.as_ref())
            .expect("loopback addresses parse")
            .with_deadline(Duration::from_secs(10))
    }

    /// A client over node `id` only.
    pub fn client_of(&self, id: u64) -> Client {
        Client::connect(&[self.address(id)], self.client_tls.as_ref())
            .expect("loopback address parses")
            .with_deadline(Duration::from_secs(10))
    }

    /// Asks node `id` for its raft state; `None` when it does not answer.
    pub async fn node_status(&self, id: u64) -> Option<pld_proto::v1::NodeStatus> {
        let client = self.client_of(id).with_deadline(Duration::from_millis(200));
        // A frozen (SIGSTOP) node accepts the request and never answers.
        let call = client
            .call(|mut s| async move { s.cluster().get_node_status(NodeStatusRequest {}).await });
        tokio::time::timeout(Duration::from_millis(500), call)
            .await
            .ok()?
            .ok()
    }

    /// Waits until the running nodes agree on a running leader.
    ///
    /// # Errors
    /// When they do not within `deadline`.
    pub async fn wait_leader(&self, deadline: Duration) -> anyhow::Result<u64> {
        wait_until(
            deadline,
            "the running nodes to agree on a leader",
            || async {
                let mut leader = None;
                for id in self.ids().into_iter().filter(|id| self.running(*id)) {
                    let s = self.node_status(id).await?;
                    if s.leader_id == 0 || leader.is_some_and(|l| l != s.leader_id) {
                        return None;
                    }
                    leader = Some(s.leader_id);
                }
                leader.filter(|l| self.running(*l))
            },
        )
        .await
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for id in self.ids() {
            self.kill(id);
        }
    }
}
