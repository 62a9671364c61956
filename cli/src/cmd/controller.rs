//! `pld controller`: runs one controller node until SIGTERM or Ctrl-C, then drains and exits 0.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use pld_controller::{Controller, ControllerConfig, Faults};
use tokio::signal::unix::{signal, SignalKind};
use tracing::info;

#[derive(clap::Args)]
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
}

fn build_config(args: Args) -> anyhow::Result<ControllerConfig> {
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
    if let Some(d) = args.data_dir {
        cfg.data_dir = d;
    }
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    if args.advertise.is_some() {
        cfg.advertise = args.advertise;
    }
    if !args.peers.is_empty() {
        cfg.peers = args.peers;
    }
    if args.join.is_some() {
        cfg.join = args.join;
    }
    cfg.validate()?;
    Ok(cfg)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let cfg = build_config(args)?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let controller = Controller::start(cfg, listener, Faults::new()).await?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: draining"),
        _ = tokio::signal::ctrl_c() => info!("interrupted: draining"),
    }
    controller.shutdown().await;
    Ok(())
}
