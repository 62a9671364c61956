//! `pld controller`: runs one controller node until SIGTERM or Ctrl-C, then drains and exits 0.
//! SIGHUP re-reads `--config` and applies its `log` key; other changed keys are reported as
//! needing a restart. Under systemd (`Type=notify`) it reports READY once the node serves (and,
//! with `--join`, has been added), and pings the watchdog while its raft thread turns.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use pld_controller::{Controller, ControllerConfig, Faults};

use pld_telemetry::logging::LogControl;
use pld_telemetry::systemd;
use tracing::warn;

use super::daemon::{self, Signals, Wake};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// TOML config file; flags override its keys.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Raft id of this node (non-zero).
    #[arg(long)]
    id: Option<u64>,
    /// Folder for raft state.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:7400].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// host:port peers and clients reach this node at [default: the listen address].
    #[arg(long)]
    advertise: Option<String>,
    /// Bootstrap members, ID=HOST:PORT, comma-separated, the same on every member.
    #[arg(long, value_delimiter = ',')]
    peers: Vec<String>,
    /// Join a running cluster through this member's address.
    #[arg(long)]
    join: Option<String>,
    /// Pin the cluster id (the `pld:cluster` tag of everything the agents create) instead of
    /// letting the first leader make a unique one.
    #[arg(long)]
    cluster_id: Option<String>,
    /// Serve without TLS (the config's `insecure = true`): every caller may then do
    /// everything. Without it, the config must have a `[tls]` table.
    #[arg(long)]
    insecure: bool,
}

fn build_config(args: &Args) -> anyhow::Result<ControllerConfig> {
    let mut cfg = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            ControllerConfig::from_toml(&text)
                .with_context(|| format!("in config file {}", path.display()))?
        }
        None => {
            let id = args.id.context("--id is required (or give --config)")?;
            let data_dir = args
                .data_dir
                .clone()
                .context("--data-dir is required (or give --config)")?;
            ControllerConfig::new(id, data_dir)
        }
    };
    if let Some(id) = args.id {
        cfg.id = id;
    }
    if let Some(d) = args.data_dir.clone() {
        cfg.data_dir = d;
    }
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    if args.advertise.is_some() {
        cfg.advertise = args.advertise.clone();
    }
    if !args.peers.is_empty() {
        cfg.peers = args.peers.clone();
    }
    if args.join.is_some() {
        cfg.join = args.join.clone();
    }
    if args.cluster_id.is_some() {
        cfg.cluster_id = args.cluster_id.clone();
    }
    if args.insecure {
        cfg.insecure = true;
    }
    cfg.validate()?;
    Ok(cfg)
}

pub async fn run(args: Args, log: LogControl) -> anyhow::Result<()> {
    let mut cfg = build_config(&args)?;
    daemon::apply_start_log_level(&log, cfg.log.as_deref())?;
    pld_controller::crash_points::arm_from_env().map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let mut signals = Signals::install()?;
    let id = cfg.id;
    let controller = Controller::start(cfg.clone(), listener, Faults::new()).await?;
    let status = format!("node {id} serving on {}", controller.local_addr());
    systemd::ready(&status);
    let (stop_watchdog, watchdog_stop) = tokio::sync::watch::channel(false);
    systemd::spawn_watchdog(controller.probe(), watchdog_stop);
    let failure = loop {
        let wake = tokio::select! {
            wake = signals.next() => wake,
            why = controller.failed() => break Some(why),
        };
        if let Wake::Stop = wake {
            break None;
        }
        systemd::reloading();
        match build_config(&args) {
            Ok(new) => {
                daemon::apply_reloaded_log_level(&log, new.log.as_deref());
                daemon::warn_restart_needed(&cfg.restart_needed(&new));
                cfg.log = new.log;
            }
            Err(e) => {
                warn!(error = %format!("{e:#}"), "config not reloaded; the running one stays")
            }
        }
        systemd::ready(&status);
    };
    systemd::stopping();
    let _ = stop_watchdog.send(true);
    controller.shutdown().await;
    match failure {
        None => Ok(()),
        // Exit non-zero: systemd restarts the node, which reopens the data dir and catches up
        // once the disk is fixed. Everything acknowledged is on disk already. (A raft thread
        // that hangs instead of failing stops the watchdog pings, and systemd restarts it too.)
        Some(why) if why.contains(pld_controller::node::RAFT_PANIC) => anyhow::bail!(
            "{why}; start the node again (its data dir {} is intact: nothing unsynced was \
             acknowledged). A peer sending inconsistent raft messages causes this: check that \
             only controllers can reach the port",
            cfg.data_dir.display()
        ),
        Some(why) => anyhow::bail!(
            "{why} (data dir {}); free space or fix the disk, then start the node again",
            cfg.data_dir.display()
        ),
    }
}
