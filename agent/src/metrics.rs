//! The agent's Prometheus metrics and its liveness/readiness.
//!
//! Reconcile timings are recorded by the reconciler as passes finish; the rest (bindings by
//! phase, queue depth, AWS calls by action and outcome, token-bucket waits) is read off the
//! catalog view and the rate limiter's counts just before a scrape.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use pld_cloud::Cloud;
use pld_core::Phase;
use pld_telemetry::{Metrics, Probe};

use crate::view::CatalogView;

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
    /// The VPC's facts, read for plans.
    Facts,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Provider => "provider",
            Side::Consumer => "consumer",
            Side::Facts => "facts",
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
    /// The pass in progress, `None` between passes.
    pass_in_progress: Mutex<Option<PassInProgress>>,
    /// A pass running longer is stuck.
    pass_deadline: Duration,
}

/// A reconcile pass that has started and not ended.
#[derive(Debug, Clone, Copy)]
struct PassInProgress {
    /// 1 for the agent's first pass.
    number: u64,
    started: Instant,
    /// The same moment on the wall clock, for people reading `/healthz`.
    started_at: SystemTime,
}

impl AgentMetrics {
    /// Metrics in `registry`.
    pub fn new(registry: &Metrics, pass_deadline: Duration, insecure: bool) -> Arc<Self> {
        registry
            .gauge(
                "pld_insecure",
                "1 when the agent talks to the controllers without TLS (insecure = true).",
                &[],
            )
            .set(if insecure { 1.0 } else { 0.0 });
        Arc::new(AgentMetrics {
            registry: registry.clone(),
            passes: AtomicU64::new(0),
            last_renewal: Mutex::new(None),
            reconciler_running: AtomicBool::new(false),
            pass_in_progress: Mutex::new(None),
            pass_deadline,
        })
    }

    /// Marks a pass as in progress until the returned guard drops (also when the pass's future
    /// is dropped half way).
    pub fn pass_started(self: &Arc<Self>) -> PassGuard {
        let pass = PassInProgress {
            number: self.passes.load(Ordering::Relaxed) + 1,
            started: Instant::now(),
            started_at: SystemTime::now(),
        };
        *self
            .pass_in_progress
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(pass);
        PassGuard(self.clone())
    }

    /// Why the pass in progress counts as stuck, if it does.
    fn stuck_pass(&self) -> Option<String> {
        let pass = (*self
            .pass_in_progress
            .lock()
            .unwrap_or_else(|p| p.into_inner()))?;
        let running = pass.started.elapsed();
        (running > self.pass_deadline).then(|| {
            format!(
                "reconcile pass {} has run since {} ({:.0}s), past its deadline of {}s \
                 (pass_deadline_seconds); the watchdog is no longer fed",
                pass.number,
                httpdate::fmt_http_date(pass.started_at),
                running.as_secs_f64(),
                self.pass_deadline.as_secs()
            )
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
                "Duration of one reconcile pass over the provider or consumer side, or the VPC's facts.",
                &[("kind", kind)],
            )
            .record(took);
        self.registry
            .counter(
                "pld_agent_reconcile_total",
                "Reconcile passes by side (provider, consumer, facts) and result (ok, busy, retry, error).",
                &[("kind", kind), ("result", outcome.name())],
            )
            .increment(1);
    }

    /// A binding finished moving to its service's new endpoint service, `took` after this
    /// agent first reported it migrating.
    pub fn record_move(&self, took: Duration) {
        self.registry
            .histogram(
                "pld_agent_binding_move_duration_seconds",
                "Time from a binding's first migrating report to ready on its service's new \
                 endpoint service (counted from the agent's start when it restarted mid-move).",
                &[],
            )
            .record(took);
        self.registry
            .counter(
                "pld_agent_binding_moves_total",
                "Bindings moved to their service's new endpoint service, make-before-break.",
                &[],
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

/// Clears the pass in progress when dropped.
pub struct PassGuard(Arc<AgentMetrics>);

impl Drop for PassGuard {
    fn drop(&mut self) {
        *self
            .0
            .pass_in_progress
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }
}

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
            self.refresh_regions(&s);
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

    /// Each other region a service is offered to, one series per state AWS has for it (1 for
    /// the one it is in, 0 for the rest), as kube-state-metrics shows a phase: a region that
    /// changes state leaves no stale 1 behind.
    fn refresh_regions(&self, service: &pld_proto::v1::Service) {
        const STATES: [&str; 6] = [
            "pending",
            "available",
            "deleting",
            "deleted",
            "failed",
            "closed",
        ];
        let Some(status) = &service.status else {
            return;
        };
        for r in &status.regions {
            let now = r.state.to_ascii_lowercase();
            for state in STATES {
                self.metrics
                    .registry
                    .gauge(
                        "pld_agent_service_region_state",
                        "Each other region a provided service is offered to, by AWS's state of \
                         it there (1 for its state).",
                        &[
                            ("service", service.name.as_str()),
                            ("region", r.region.as_str()),
                            ("state", state),
                        ],
                    )
                    .set(if now == state { 1.0 } else { 0.0 });
            }
        }
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
        // A pass waiting forever (a hung AWS call, a lock) reconciles nothing: let the
        // supervisor restart the agent.
        if let Some(why) = self.metrics.stuck_pass() {
            return Err(why);
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

#[cfg(test)]
mod tests {
    use pld_cloud::sim::{SimConfig, SimRegion};

    use super::*;

    fn probe(deadline: Duration) -> AgentProbe {
        let region = SimRegion::new(SimConfig::instant("us-east-1"));
        AgentProbe {
            metrics: AgentMetrics::new(&Metrics::new(), deadline, false),
            view: CatalogView::new(),
            cloud: Arc::new(region.client("111111111111")),
            vpc_id: "vpc-0a1b2c3d".into(),
            lease_ttl: Duration::from_secs(10),
        }
    }

    #[test]
    fn a_pass_stuck_past_its_deadline_fails_liveness_naming_the_pass_and_when_it_began() {
        let p = probe(Duration::from_millis(1));
        let _running = p.metrics.reconciler_started();
        assert_eq!(p.live(), Ok(()), "no pass in progress");
        p.metrics.pass_done();
        let pass = p.metrics.pass_started();
        let end = Instant::now() + Duration::from_secs(5);
        let why = loop {
            match p.live() {
                Err(why) => break why,
                Ok(()) => assert!(Instant::now() < end, "liveness never failed"),
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        assert!(why.contains("reconcile pass 2 has run since"), "{why}");
        assert!(
            why.contains("GMT") && why.contains("past its deadline"),
            "{why}"
        );
        drop(pass);
        assert_eq!(p.live(), Ok(()), "the pass ended");
    }

    #[test]
    fn a_pass_within_its_deadline_is_live() {
        let p = probe(Duration::from_secs(600));
        let _running = p.metrics.reconciler_started();
        let _pass = p.metrics.pass_started();
        assert_eq!(p.live(), Ok(()));
    }
}
