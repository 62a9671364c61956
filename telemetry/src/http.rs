//! `/metrics`, `/healthz` and `/readyz` as an axum router. The daemons merge it into their tonic
//! server (which accepts HTTP/1.1 next to gRPC), so one port serves gRPC, Prometheus scrapes and
//! load-balancer or systemd health checks — as etcd does on its client port.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::Metrics;

/// What a daemon says about its own health.
pub trait Probe: Send + Sync + 'static {
    /// Whether the process does its work at all (e.g. the raft thread or reconciler still turns).
    /// A failing liveness check means "restart me"; the watchdog stops pinging.
    ///
    /// # Errors
    /// Why it is not live, in words for an operator.
    fn live(&self) -> Result<(), String>;

    /// Whether it should take traffic (caught up with the leader, registered and reconciling).
    ///
    /// # Errors
    /// Why it is not ready.
    fn ready(&self) -> Result<(), String>;

    /// Sets the gauges that are read off state rather than counted, just before a scrape.
    fn refresh_metrics(&self) {}
}

struct Shared {
    metrics: Metrics,
    probe: Arc<dyn Probe>,
}

/// The router serving `/metrics`, `/healthz` and `/readyz`.
pub fn routes(metrics: Metrics, probe: Arc<dyn Probe>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(Shared { metrics, probe }))
}

async fn scrape(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    s.probe.refresh_metrics();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

fn answer(result: Result<(), String>) -> (StatusCode, String) {
    match result {
        Ok(()) => (StatusCode::OK, "ok\n".to_string()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

async fn healthz(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    answer(s.probe.live())
}

async fn readyz(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    answer(s.probe.live().and_then(|()| s.probe.ready()))
}
