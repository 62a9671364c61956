//! systemd's notify protocol (`Type=notify`): `READY=1` once the daemon serves, `RELOADING=1`
//! around a SIGHUP reload, `STOPPING=1` on drain, and `WATCHDOG=1` pings while the daemon's
//! [`Probe`] says it is live. Outside systemd (`NOTIFY_SOCKET` unset) every call does nothing.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::Probe;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!(error = %e, "cannot notify systemd");
    }
}

/// Tells systemd the daemon is up, with a one-line status for `systemctl status`.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd a reload has begun; call [`ready`] when it is done.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// Tells systemd the daemon is draining.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Pings systemd's watchdog at half its interval for as long as `probe` is live and `stop` is
/// false. Does nothing when the unit sets no `WatchdogSec=`.
pub fn spawn_watchdog(probe: Arc<dyn Probe>, mut stop: watch::Receiver<bool>) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = (interval / 2).max(Duration::from_millis(50));
    tokio::spawn(async move {
        loop {
            match probe.live() {
                Ok(()) => send(&[NotifyState::Watchdog]),
                // Not pinging lets systemd restart us after WatchdogSec, which is the point.
                Err(why) => warn!(%why, "not live; withholding the watchdog ping"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.wait_for(|s| *s) => {
                    debug!("watchdog pings stop");
                    return;
                }
            }
        }
    });
}
