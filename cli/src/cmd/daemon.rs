//! What `pld controller` and `pld agent` share as daemons: the log level from their config, the
//! signals they handle, and telling systemd how they are.

use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing::{info, warn};

use pld_telemetry::logging::LogControl;

/// Applies a config file's `log` key unless `PLD_LOG` was given (the environment is the
/// operator's override at start).
pub fn apply_start_log_level(log: &LogControl, level: Option<&str>) -> anyhow::Result<()> {
    if std::env::var_os("PLD_LOG").is_some() {
        return Ok(());
    }
    if let Some(level) = level {
        log.set("log", level)?;
    }
    Ok(())
}

/// Applies a reloaded config's `log` key (SIGHUP: the file is what the operator just changed).
pub fn apply_reloaded_log_level(log: &LogControl, level: Option<&str>) {
    if let Some(level) = level {
        match log.set("log", level) {
            Ok(()) => info!(%level, "log filter changed"),
            Err(e) => warn!(error = %e, "log filter unchanged"),
        }
    }
}

/// Why the main loop woke.
pub enum Wake {
    Stop,
    Reload,
}

/// SIGTERM, SIGINT and SIGHUP.
pub struct Signals {
    term: Signal,
    hup: Signal,
}

impl Signals {
    /// Installs the handlers (before starting, so an early signal is not lost).
    pub fn install() -> anyhow::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate())
                .map_err(|e| anyhow::anyhow!("installing the SIGTERM handler: {e}"))?,
            hup: signal(SignalKind::hangup())
                .map_err(|e| anyhow::anyhow!("installing the SIGHUP handler: {e}"))?,
        })
    }

    /// Waits for the next signal.
    pub async fn next(&mut self) -> Wake {
        tokio::select! {
            _ = self.term.recv() => {
                info!("SIGTERM: stopping");
                Wake::Stop
            }
            _ = tokio::signal::ctrl_c() => {
                info!("interrupted: stopping");
                Wake::Stop
            }
            _ = self.hup.recv() => {
                info!("SIGHUP: reloading the config");
                Wake::Reload
            }
        }
    }
}

/// Logs the keys a reload could not apply.
pub fn warn_restart_needed(keys: &[&str]) {
    if !keys.is_empty() {
        warn!(
            keys = %keys.join(", "),
            "these settings changed in the config file but take effect only after a restart"
        );
    }
}
