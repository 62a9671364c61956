//! The agent's Prometheus metrics and its liveness/readiness.
//!
//! Reconcile timings are recorded by the reconciler as passes finish; the rest (bindings by
//! phase, queue depth, AWS calls by action and outcome, token-bucket waits) is read off the
//! catalog view and the rate limiter's counts just before a scrape.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pld_cloud::Cloud;
use pld_telemetry::{Metrics, Probe};

use crate::view::CatalogView;
use pld_core::Phase;

/// The `phase` label of `pld_agent_bindings` for a binding the agent has not reported on yet
/// (or reported in a phase this build does not know).
const UNREPORTED: &str = "unreported";

/// Which half of a pass.
#[derive(Debug, Clone, Copy)]
pub enum Side {
    /// Endpoint services of this VPC's services.
    Provider,
    /// Endpoints and DNS of this VPC's bindings.
    Consumer,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Provider => "provider",
            Side::Consumer => "consumer",
        }
    }
}

/// How a half-pass ended.
#[derive(Debug, Clone, Copy)]
pub enum PassOutcome {
    /// Everything in step.
    Ok,
    /// Something is in transition at AWS.
    Busy,
    /// A retryable error (throttling, 5xx); the pass backs off.
    Retry,
    /// A non-retryable error (reported on the object).
    Error,
}

impl PassOutcome {
    fn name(self) -> &'static str {
        match self {
            PassOutcome::Ok => "ok",
            PassOutcome::Busy => "busy",
            PassOutcome::Retry => "retry",
            PassOutcome::Error => "error",
        }
    }
}

/// The agent's metrics and the facts its health checks read.
pub struct AgentMetrics {
    registry: Metrics,
    passes: AtomicU64,
    last_renewal: Mutex<Option<Instant>>,
    reconciler_running: AtomicBool,
}

impl AgentMetrics {
    /// Metrics in `registry`.
    pub fn new(registry: &Metrics) -> Arc<Self> {
        Arc::new(AgentMetrics {
            registry: registry.clone(),
            passes: AtomicU64::new(0),
            last_renewal: Mutex::new(None),
            reconciler_running: AtomicBool::new(false),
        })
    }

    /// The registry these metrics live in.
    pub fn registry(&self) -> &Metrics {
        &self.registry
    }

    /// Records one half of a reconcile pass.
    pub fn record_pass(&self, side: Side, outcome: PassOutcome, took: Duration) {
        let kind = side.name();
        self.registry
            .histogram(
                "pld_agent_reconcile_duration_seconds",
                "Duration of one reconcile pass over the provider or consumer side.",
                &[("kind", kind)],
            )
            .record(took);
        self.registry
            .counter(
                "pld_agent_reconcile_total",
                "Reconcile passes by side and result (ok, busy, retry, error).",
                &[("kind", kind), ("result", outcome.name())],
            )
            .increment(1);
    }

    /// A whole pass finished.
    pub fn pass_done(&self) {
        self.passes.fetch_add(1, Ordering::Relaxed);
    }

    /// Passes finished since start.
    pub fn passes(&self) -> u64 {
        self.passes.load(Ordering::Relaxed)
    }

    /// The lease was renewed (or the agent registered).
    pub fn renewed(&self) {
        *self.last_renewal.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    fn since_renewal(&self) -> Option<Duration> {
        self.last_renewal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|at| at.elapsed())
    }

    /// Marks the reconcile loop running until the returned guard drops (also on a panic).
    pub fn reconciler_started(self: &Arc<Self>) -> RunningGuard {
        self.reconciler_running.store(true, Ordering::Relaxed);
        RunningGuard(self.clone())
    }
}

/// Clears "the reconciler runs" when dropped.
pub struct RunningGuard(Arc<AgentMetrics>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.reconciler_running.store(false, Ordering::Relaxed);
    }
}

/// The agent's health checks and scrape-time gauges.
pub struct AgentProbe {
    pub(crate) metrics: Arc<AgentMetrics>,
    pub(crate) view: Arc<CatalogView>,
    pub(crate) cloud: Arc<dyn Cloud>,
    pub(crate) vpc_id: String,
    pub(crate) lease_ttl: Duration,
}

impl AgentProbe {
    fn refresh_bindings(&self) {
        let registry = &self.metrics.registry;
        let mut by_phase: BTreeMap<&str, u64> = std::iter::once(UNREPORTED)
            .chain(Phase::ALL.map(Phase::as_str))
            .map(|p| (p, 0))
            .collect();
        let mut in_flight = 0u64;
        for b in self.view.bindings_of(&self.vpc_id) {
            let phase = b.status.as_ref().and_then(|s| Phase::of(&s.phase));
            *by_phase
                .entry(phase.map_or(UNREPORTED, Phase::as_str))
                .or_default() += 1;
            if !matches!(phase, Some(Phase::Ready | Phase::Rejected)) {
                in_flight += 1;
            }
        }
        for s in self.view.services_of(&self.vpc_id) {
            let state = s.status.as_ref().map(|s| s.state.as_str()).unwrap_or("");
            if state != "available" {
                in_flight += 1;
            }
        }
        for (phase, n) in by_phase {
            registry
                .gauge(
                    "pld_agent_bindings",
                    "This VPC's bindings by phase.",
                    &[("phase", phase)],
                )
                .set(n as f64);
        }
        registry
            .gauge(
                "pld_agent_queue_depth",
                "Services and bindings of this VPC not yet in a settled state (work left).",
                &[],
            )
            .set(in_flight as f64);
    }

    fn refresh_cloud(&self) {
        let Some(stats) = self.cloud.call_stats() else {
            return;
        };
        let registry = &self.metrics.registry;
        for ((action, outcome), n) in &stats.outcomes {
            registry
                .counter(
                    "pld_aws_calls_total",
                    "AWS API calls by action and outcome (ok or the error kind).",
                    &[("action", action), ("outcome", outcome)],
                )
                .absolute(*n);
        }
        registry
            .counter(
                "pld_aws_throttles_total",
                "AWS calls refused with a throttling error.",
                &[],
            )
            .absolute(stats.throttled);
        for (class, waited) in &stats.waited_by_class {
            registry
                .counter(
                    "pld_aws_token_wait_milliseconds_total",
                    "Time AWS calls waited for a client-side rate-limit token, by API class.",
                    &[("class", class.name())],
                )
                .absolute(waited.as_millis() as u64);
        }
    }
}

impl Probe for AgentProbe {
    fn live(&self) -> Result<(), String> {
        if !self.metrics.reconciler_running.load(Ordering::Relaxed) {
            return Err("the reconcile loop is not running".into());
        }
        Ok(())
    }

    /// Ready = registered with a current lease, the catalog listed, and a reconcile pass done.
    fn ready(&self) -> Result<(), String> {
        match self.metrics.since_renewal() {
            None => return Err("not registered with the controller yet".into()),
            Some(d) if d > self.lease_ttl => {
                return Err(format!(
                    "the lease was last renewed {:.0}s ago (TTL {}s); is the controller reachable?",
                    d.as_secs_f64(),
                    self.lease_ttl.as_secs()
                ))
            }
            Some(_) => {}
        }
        if !self.view.synced() {
            return Err("the catalog has not been listed yet".into());
        }
        if self.metrics.passes() == 0 {
            return Err("the first reconcile pass has not finished".into());
        }
        Ok(())
    }

    fn refresh_metrics(&self) {
        self.refresh_bindings();
        self.refresh_cloud();
    }
}
