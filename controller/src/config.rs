//! Controller configuration: a TOML file (`--config`) whose keys the command-line flags override.
//!
//! ```toml
//! id = 1
//! data_dir = "/var/lib/pld"
//! listen = "0.0.0.0:7400"
//! advertise = "10.0.1.5:7400"
//! peers = ["1=10.0.1.5:7400", "2=10.0.2.5:7400", "3=10.0.3.5:7400"]
//! # or, for a node added to a running cluster:
//! # join = "10.0.1.5:7400"
//!
//! [raft]
//! tick_ms = 100
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use pld_core::cost::{CostFile, Prices, Traffic};
use serde::Deserialize;

use crate::authz::TrustDomain;
use crate::node::{NodeConfig, DEFAULT_SNAPSHOT_EVERY};

/// Default gRPC listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7400";

/// A controller node's settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerConfig {
    /// Raft id of this node, non-zero and unique in the cluster.
    pub id: u64,
    /// Folder for raft state (created if missing; must be empty or a pld data dir).
    pub data_dir: PathBuf,
    /// gRPC listen address for clients and peers.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// host:port that peers and clients use to reach this node; defaults to `listen`.
    #[serde(default)]
    pub advertise: Option<String>,
    /// Members to bootstrap a new cluster with, `ID=HOST:PORT`, identical on every member.
    /// Ignored once the data dir holds state, except that a contradiction is refused.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Address of a running member to join through (the node asks to be added).
    #[serde(default)]
    pub join: Option<String>,
    /// Pins the cluster id: the name in the `pld:cluster` tag of everything the agents create.
    /// Unset, the first leader of a new cluster makes a unique one; either way it is kept in
    /// the catalog and never changes, and a node whose pin differs from the catalog's refuses
    /// to serve.
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// Raft tuning.
    #[serde(default)]
    pub raft: RaftTuning,
    /// Log filter, as `PLD_LOG` takes it (`info`, `pld_controller=debug,info`). `PLD_LOG` wins
    /// at start; on SIGHUP this key is applied.
    #[serde(default)]
    pub log: Option<String>,
    /// Mutual TLS for every connection to and from this node (clients, agents, peers): PEM
    /// files `ca`, `cert`, `key`. The certificate must name (SAN) the address peers and clients
    /// dial (`advertise`); every client and peer must present a certificate the CA signed.
    #[serde(default)]
    pub tls: Option<pld_client::tls::TlsFiles>,
    /// Serve without TLS: nobody can be told apart, so every caller may do everything,
    /// membership changes, restores and raft messages included. Required to start without a
    /// `[tls]` table, so that an open cluster is always a choice someone wrote down; the node
    /// then says so at every start and in `pld_insecure`.
    #[serde(default)]
    pub insecure: bool,
    /// The SPIFFE trust domain of the identities in client and peer certificates
    /// (`spiffe://DOMAIN/admin/NAME`); `pld` unless set. Certificates naming another domain
    /// are refused, so clusters sharing a CA stay apart.
    #[serde(default)]
    pub trust_domain: TrustDomain,
    /// What `pld_estimated_cost_usd_per_hour{account}` estimates with.
    #[serde(default)]
    pub cost: CostSettings,
}

/// The `[cost]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostSettings {
    /// A cost file (`pld cost --prices` takes the same): prices replacing those shipped in
    /// prices/aws.toml entry by entry, and the traffic to assume ([traffic] gb_per_month,
    /// [traffic.services]). Unset: the shipped prices and no data, so the metric counts
    /// endpoint and load balancer hours only.
    pub prices: Option<PathBuf>,
}

/// Raft timing and retention.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftTuning {
    /// Length of a raft tick in milliseconds.
    pub tick_ms: u64,
    /// Ticks before a follower without a leader starts an election.
    pub election_ticks: usize,
    /// Ticks between leader heartbeats.
    pub heartbeat_ticks: usize,
    /// Applied entries between snapshots.
    pub snapshot_every: u64,
    /// Change events kept for watches.
    pub history_limit: usize,
    /// How long a request waits for the cluster, in milliseconds.
    pub request_timeout_ms: u64,
}

impl Default for RaftTuning {
    fn default() -> Self {
        let d = NodeConfig::new(1);
        RaftTuning {
            tick_ms: d.tick.as_millis() as u64,
            election_ticks: d.election_ticks,
            heartbeat_ticks: d.heartbeat_ticks,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            history_limit: d.history_limit,
            request_timeout_ms: d.request_timeout.as_millis() as u64,
        }
    }
}

fn default_listen() -> SocketAddr {
    // A constant that parses.
    DEFAULT_LISTEN
        .parse()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 7400)))
}

impl ControllerConfig {
    /// The prices and traffic the cost metric estimates with, read from `[cost] prices`.
    ///
    /// # Errors
    /// The file cannot be read, or a price or volume in it is wrong.
    pub fn cost_inputs(&self) -> Result<(Prices, Traffic), ConfigError> {
        let (file, what) = match &self.cost.prices {
            Some(path) => {
                let what = path.display().to_string();
                let text = std::fs::read_to_string(path)
                    .map_err(|e| cfg_err("cost.prices", format!("cannot read {what}: {e}")))?;
                let file = CostFile::parse(&text, &what)
                    .map_err(|e| cfg_err("cost.prices", e.to_string()))?;
                (file, what)
            }
            None => (CostFile::default(), String::new()),
        };
        let prices = file
            .prices(&what)
            .map_err(|e| cfg_err("cost.prices", e.to_string()))?;
        Ok((prices, file.traffic))
    }
}

/// Why a node without `[tls]` does not start.
const NO_TLS: &str = "missing: a controller requires mutual TLS, a [tls] table with ca, cert and \
     key (deploy/INSTALL.md#tls). To serve without it, where every caller may do everything \
     (membership changes, restores and raft messages included), set insecure = true or pass \
     --insecure";

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid controller config: {key}: {reason}")]
pub struct ConfigError {
    /// The key or flag.
    pub key: &'static str,
    /// What is wrong.
    pub reason: String,
}

fn cfg_err(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key,
        reason: reason.into(),
    }
}

/// Checks a `host:port` address.
pub fn check_address(key: &'static str, address: &str) -> Result<(), ConfigError> {
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(())
        }
        _ => Err(cfg_err(key, format!("{address:?} is not host:port"))),
    }
}

/// Parses `ID=HOST:PORT` entries.
///
/// # Errors
/// Names the malformed entry.
pub fn parse_peers(entries: &[String]) -> Result<BTreeMap<u64, String>, ConfigError> {
    let mut peers = BTreeMap::new();
    for entry in entries
        .iter()
        .flat_map(|e| e.split(','))
        .filter(|e| !e.is_empty())
    {
        let (id, address) = entry
            .split_once('=')
            .ok_or_else(|| cfg_err("peers", format!("{entry:?} is not ID=HOST:PORT")))?;
        let id: u64 =
            id.trim().parse().ok().filter(|i| *i > 0).ok_or_else(|| {
                cfg_err("peers", format!("{id:?} in {entry:?} is not a non-zero id"))
            })?;
        let address = address.trim();
        check_address("peers", address)?;
        if peers.insert(id, address.to_string()).is_some() {
            return Err(cfg_err("peers", format!("id {id} is listed twice")));
        }
    }
    Ok(peers)
}

impl ControllerConfig {
    /// A config with defaults for node `id` in `data_dir`.
    pub fn new(id: u64, data_dir: PathBuf) -> Self {
        ControllerConfig {
            id,
            data_dir,
            listen: default_listen(),
            advertise: None,
            peers: Vec::new(),
            join: None,
            cluster_id: None,
            raft: RaftTuning::default(),
            log: None,
            tls: None,
            insecure: false,
            trust_domain: TrustDomain::default(),
            cost: CostSettings::default(),
        }
    }

    /// Parses a TOML config file's text.
    ///
    /// # Errors
    /// The TOML error, which names the line and key.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| cfg_err("config file", e.to_string()))
    }

    /// Checks the whole config and returns the bootstrap peers.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<BTreeMap<u64, String>, ConfigError> {
        if self.id == 0 {
            return Err(cfg_err("id", "must be a non-zero integer"));
        }
        match (&self.tls, self.insecure) {
            (None, false) => return Err(cfg_err("tls", NO_TLS)),
            (Some(_), true) => {
                return Err(cfg_err(
                    "insecure",
                    "set together with [tls]; keep [tls] and drop insecure (or --insecure)",
                ))
            }
            _ => {}
        }
        if let Some(a) = &self.advertise {
            check_address("advertise", a)?;
        }
        let peers = parse_peers(&self.peers)?;
        if !peers.is_empty() && !peers.contains_key(&self.id) {
            return Err(cfg_err(
                "peers",
                format!("this node's id {} is not among the peers", self.id),
            ));
        }
        if let Some(j) = &self.join {
            if !peers.is_empty() {
                return Err(cfg_err(
                    "join",
                    "give either peers (bootstrap) or join, not both",
                ));
            }
            check_address("join", j.trim_start_matches("http://"))?;
        }
        if let Some(id) = &self.cluster_id {
            pld_core::validate::dns_label("cluster_id", id)
                .map_err(|e| cfg_err("cluster_id", e.reason))?;
        }
        let r = &self.raft;
        if r.tick_ms == 0 || r.tick_ms > 10_000 {
            return Err(cfg_err("raft.tick_ms", "must be 1-10000"));
        }
        if r.heartbeat_ticks == 0 || r.election_ticks <= r.heartbeat_ticks {
            return Err(cfg_err(
                "raft.election_ticks",
                "must be greater than raft.heartbeat_ticks, which must be at least 1",
            ));
        }
        if r.snapshot_every == 0 {
            return Err(cfg_err("raft.snapshot_every", "must be at least 1"));
        }
        if r.history_limit == 0 {
            return Err(cfg_err("raft.history_limit", "must be at least 1"));
        }
        if r.request_timeout_ms == 0 {
            return Err(cfg_err("raft.request_timeout_ms", "must be at least 1"));
        }
        if let Some(log) = &self.log {
            pld_telemetry::logging::check("log", log).map_err(|e| cfg_err("log", e.to_string()))?;
        }
        Ok(peers)
    }

    /// Keys that differ between `self` and `new` and only take effect on a restart (all but
    /// `log`, which a SIGHUP applies).
    pub fn restart_needed(&self, new: &ControllerConfig) -> Vec<&'static str> {
        let pairs = [
            ("id", self.id == new.id),
            ("data_dir", self.data_dir == new.data_dir),
            ("listen", self.listen == new.listen),
            ("advertise", self.advertise == new.advertise),
            ("peers", self.peers == new.peers),
            ("join", self.join == new.join),
            ("raft", self.raft == new.raft),
            ("cluster_id", self.cluster_id == new.cluster_id),
            ("tls", self.tls == new.tls),
            ("insecure", self.insecure == new.insecure),
            ("trust_domain", self.trust_domain == new.trust_domain),
        ];
        pairs
            .into_iter()
            .filter(|(_, same)| !same)
            .map(|(key, _)| key)
            .collect()
    }

    pub(crate) fn node_config(&self) -> NodeConfig {
        NodeConfig {
            id: self.id,
            tick: Duration::from_millis(self.raft.tick_ms),
            election_ticks: self.raft.election_ticks,
            heartbeat_ticks: self.raft.heartbeat_ticks,
            snapshot_every: self.raft.snapshot_every,
            history_limit: self.raft.history_limit,
            request_timeout: Duration::from_millis(self.raft.request_timeout_ms),
            cluster_id: self.cluster_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_name_the_bad_entry() {
        let p = parse_peers(&["1=a:1,2=b:2".into(), "3=c:3".into()]).unwrap();
        assert_eq!(p.len(), 3);
        assert!(parse_peers(&["x=a:1".into()])
            .unwrap_err()
            .to_string()
            .contains("\"x\""));
        assert!(parse_peers(&["1=a".into()]).is_err());
        assert!(parse_peers(&["1=a:1".into(), "1=b:2".into()]).is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = ControllerConfig::from_toml("id = 1\ndata_dir = \"/x\"\nlisten_addr = \"a\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("listen_addr"), "{err}");
    }

    #[test]
    fn a_trust_domain_is_read_and_a_bad_one_named() {
        let base = "id = 1\ndata_dir = \"/x\"\n";
        let c = ControllerConfig::from_toml(base).expect("no trust_domain");
        assert_eq!(c.trust_domain.to_string(), "pld");
        let c =
            ControllerConfig::from_toml(&format!("{base}trust_domain = \"prod.example.org\"\n"))
                .expect("a valid domain");
        assert_eq!(c.trust_domain.prefix(), "spiffe://prod.example.org/");
        let err = ControllerConfig::from_toml(&format!("{base}trust_domain = \"Prod\"\n"))
            .expect_err("uppercase")
            .to_string();
        assert!(
            err.contains("trust_domain") && err.contains("trust domain \"Prod\" holds 'P'"),
            "{err}"
        );
    }

    #[test]
    fn a_cost_file_is_read_and_a_bad_one_named() {
        let dir = std::env::temp_dir().join(format!("pld-cost-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(&good, "[traffic]\ngb_per_month = 5\n").unwrap();
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "[regions.us-east-1.nlb_hour]\nusd = \"cheap\"\n").unwrap();
        let with = |path: &std::path::Path| {
            ControllerConfig::from_toml(&format!(
                "id = 1\ndata_dir = \"/x\"\n[cost]\nprices = {:?}\n",
                path.display().to_string()
            ))
            .unwrap()
        };
        let (prices, traffic) = with(&good).cost_inputs().expect("a valid cost file");
        assert_eq!(traffic.gb_per_month, 5.0);
        assert!(prices.regions.contains_key("us-east-1"));
        let err = with(&bad).cost_inputs().unwrap_err();
        assert_eq!(err.key, "cost.prices");
        assert!(err.to_string().contains("bad.toml"), "{err}");
        let err = with(&dir.join("missing.toml")).cost_inputs().unwrap_err();
        assert!(err.to_string().contains("missing.toml"), "{err}");
        let (prices, traffic) = ControllerConfig::new(1, "/x".into()).cost_inputs().unwrap();
        assert_eq!(
            (traffic.gb_per_month, !prices.regions.is_empty()),
            (0.0, true)
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn own_id_must_be_a_peer() {
        let mut c = ControllerConfig::new(4, "/x".into());
        c.insecure = true;
        c.peers = vec!["1=a:1".into()];
        assert_eq!(c.validate().unwrap_err().key, "peers");
    }

    #[test]
    fn tls_is_required_unless_insecure_is_written_down() {
        let mut c = ControllerConfig::from_toml("id = 1\ndata_dir = \"/x\"\n").unwrap();
        let err = c.validate().unwrap_err();
        assert_eq!(err.key, "tls");
        assert!(err.to_string().contains("insecure = true"), "{err}");
        c.insecure = true;
        assert!(c.validate().is_ok());
        let mut both = ControllerConfig::from_toml(
            "id = 1\ndata_dir = \"/x\"\ninsecure = true\n[tls]\nca = \"a\"\ncert = \"b\"\nkey = \"c\"\n",
        )
        .unwrap();
        assert_eq!(both.validate().unwrap_err().key, "insecure");
        both.insecure = false;
        assert!(both.validate().is_ok());
    }
}

#[cfg(test)]
mod deploy_example {
    use super::ControllerConfig;

    #[test]
    fn the_shipped_example_config_loads_and_validates() {
        let text = include_str!("../../deploy/controller.toml");
        let cfg = ControllerConfig::from_toml(text).expect("deploy/controller.toml parses");
        let peers = cfg.validate().expect("deploy/controller.toml is valid");
        assert_eq!(peers.len(), 3);
        assert_eq!(cfg.advertise.as_deref(), Some("10.0.1.10:7400"));
    }
}
