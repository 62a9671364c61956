//! `pld agent --config agent.toml`: the per-VPC daemon, until SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use pld_agent::config::CloudKind;
use pld_agent::{Agent, AgentConfig, Listeners};
use pld_cloud::limiter::{Limited, Limiter};
use pld_cloud::Cloud;
use tokio::signal::unix::{signal, SignalKind};
use tracing::info;

#[derive(clap::Args)]
pub struct Args {
    /// The agent's TOML config (see deploy/agent.toml).
    #[arg(long)]
    config: PathBuf,
}

#[cfg(feature = "aws")]
async fn aws_cloud(cfg: &AgentConfig) -> anyhow::Result<Arc<dyn Cloud>> {
    let settings = pld_cloud_aws::AwsSettings {
        region: cfg.region.clone(),
        endpoint_url: cfg.aws.endpoint_url.clone(),
        assume_role_arn: cfg.aws.assume_role_arn.clone(),
    };
    let cloud = pld_cloud_aws::AwsCloud::connect(&cfg.account_id, &settings).await?;
    // Client-side buckets at AWS's published rates, shared by every call of this agent.
    Ok(Arc::new(Limited::new(cloud, Limiter::new(Some(1.0)))))
}

#[cfg(not(feature = "aws"))]
async fn aws_cloud(_cfg: &AgentConfig) -> anyhow::Result<Arc<dyn Cloud>> {
    anyhow::bail!("this pld was built without the AWS backend (cargo feature `aws`)")
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let cfg =
        AgentConfig::from_toml(&text).with_context(|| format!("in {}", args.config.display()))?;
    cfg.validate()
        .with_context(|| format!("in {}", args.config.display()))?;
    let cloud = match cfg.cloud {
        CloudKind::Aws => aws_cloud(&cfg).await?,
        CloudKind::Sim => anyhow::bail!(
            "cloud = \"sim\": the simulated region exists only inside `pld dev`; a standalone agent needs cloud = \"aws\""
        ),
    };
    let listeners = Listeners::bind(&cfg)
        .await
        .with_context(|| format!("cannot bind {} / {}", cfg.listen, cfg.dns_listen))?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let agent = Agent::start(cfg, cloud, listeners).await?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => info!("interrupted: stopping"),
    }
    agent.shutdown().await;
    Ok(())
}
