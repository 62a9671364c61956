//! `pld agent --config agent.toml`: the per-VPC daemon, until SIGTERM or Ctrl-C.
//! SIGHUP re-reads the config: provided services are registered, updated or deregistered and
//! the `log` key is applied; other changed keys are reported as needing a restart. Under
//! systemd it reports READY once registered and pings the watchdog while it reconciles.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use pld_agent::config::CloudKind;
use pld_agent::{Agent, AgentConfig, Listeners};
use pld_cloud::Cloud;
use pld_telemetry::logging::LogControl;
use pld_telemetry::systemd;
use tracing::{info, warn};

use super::daemon::{self, Signals, Wake};

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
    Ok(Arc::new(pld_cloud::limiter::Limited::new(
        cloud,
        pld_cloud::limiter::Limiter::new(Some(1.0)),
    )))
}

#[cfg(not(feature = "aws"))]
async fn aws_cloud(_cfg: &AgentConfig) -> anyhow::Result<Arc<dyn Cloud>> {
    anyhow::bail!("this pld was built without the AWS backend (cargo feature `aws`)")
}

fn load(path: &Path) -> anyhow::Result<AgentConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let cfg = AgentConfig::from_toml(&text).with_context(|| format!("in {}", path.display()))?;
    cfg.validate()
        .with_context(|| format!("in {}", path.display()))?;
    Ok(cfg)
}

pub async fn run(args: Args, log: LogControl) -> anyhow::Result<()> {
    let cfg = load(&args.config)?;
    daemon::apply_start_log_level(&log, cfg.log.as_deref())?;
    let cloud = match cfg.cloud {
        CloudKind::Aws => aws_cloud(&cfg).await?,
        CloudKind::Sim => anyhow::bail!(
            "cloud = \"sim\": the simulated region exists only inside `pld dev`; a standalone agent needs cloud = \"aws\""
        ),
    };
    let listeners = Listeners::bind(&cfg)
        .await
        .with_context(|| format!("cannot bind {} / {}", cfg.listen, cfg.dns_listen))?;
    let mut signals = Signals::install()?;
    let vpc = cfg.vpc_id.clone();
    let agent = Agent::start(cfg, cloud, listeners).await?;
    let status = format!("agent of {vpc} serving on {}", agent.host_api_addr());
    systemd::ready(&status);
    let (stop_watchdog, watchdog_stop) = tokio::sync::watch::channel(false);
    systemd::spawn_watchdog(agent.probe(), watchdog_stop);
    while let Wake::Reload = signals.next().await {
        systemd::reloading();
        match load(&args.config) {
            Ok(new) => {
                let level = new.log.clone();
                match agent.reload(new).await {
                    Ok(r) => {
                        daemon::apply_reloaded_log_level(&log, level.as_deref());
                        daemon::warn_restart_needed(&r.restart_needed);
                        info!(registered = ?r.registered, deregistered = ?r.deregistered, "config reloaded");
                    }
                    Err(e) => warn!(error = %e, "reload failed; send SIGHUP again to retry"),
                }
            }
            Err(e) => {
                warn!(error = %format!("{e:#}"), "config not reloaded; the running one stays")
            }
        }
        systemd::ready(&status);
    }
    systemd::stopping();
    let _ = stop_watchdog.send(true);
    agent.shutdown().await;
    Ok(())
}
