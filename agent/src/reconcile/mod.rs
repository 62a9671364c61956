//! Reconciliation: make AWS match the catalog for this VPC, idempotently.
//!
//! One pass at a time walks every object this agent is responsible for, so at most one
//! reconcile per object is ever in flight. A pass observes AWS once per resource type (owned
//! endpoint services, owned endpoints, the zone's records), then acts per object:
//! - [`provider`]: an endpoint service per service this VPC offers, principals in step, pending
//!   connections accepted or rejected by policy (or left for `pld bindings accept|reject`), the
//!   service's status written back;
//! - [`consumer`]: an endpoint per binding of this VPC (planned by
//!   [`pld_core::plan::endpoint`], made by [`execute`]),
//!   followed through acceptance, then `SERVICE.ZONE` published ([`records`]) in the private
//!   hosted zone ([`zone`]), and the binding marked ready only once Route 53 reports the change
//!   INSYNC;
//! - cleanup: owned resources with no catalog object are deleted (NotFound counts as done);
//!   resources without our ownership tags ([`ownership`]) are never touched;
//! - [`report`]: what was found goes back to the catalog, only when it changed;
//! - [`facts`]: the VPC's CIDRs, subnets, route tables and endpoints against their quota,
//!   for plans made from the catalog, reported on the resync and after endpoints change.
//!
//! Passes run on catalog changes, every resync interval, quickly while something is in
//! transition, and with jittered exponential backoff after retryable errors. Creates carry
//! deterministic client tokens, so a retry after a crash finds rather than duplicates.

mod consumer;
mod execute;
mod facts;
mod front;
pub use pld_core::plan::ownership;
mod provider;
pub use pld_core::plan::records;
mod report;
mod zone;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pld_client::Client;
use pld_cloud::{ChangeStatus, Cloud, CloudError};
use tokio::sync::watch;
use tracing::{debug, instrument, warn};

use crate::config::AgentConfig;
use crate::metrics::{AgentMetrics, PassOutcome, Side};
use crate::view::CatalogView;
use ownership::Ownership;
pub use ownership::{CLUSTER_TAG, VPC_TAG};

/// Longest wait after a pass that hit retryable errors.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How soon to look again while something is in transition: starting fast (AWS transitions
/// that finish at once should not cost a fixed delay) and slowing down while they do not.
const BUSY_FIRST: Duration = Duration::from_millis(20);
const BUSY_MAX: Duration = Duration::from_secs(1);

/// What a pass found.
#[derive(Debug, Default)]
pub struct PassResult {
    /// Something is in transition: look again soon.
    pub busy: bool,
    /// The first retryable error (the pass went on with other objects).
    pub retry: Option<CloudError>,
    /// When something waited on is due (a move's drain ends): look again then, not sooner.
    pub wake_at: Option<Instant>,
}

impl PassResult {
    fn merge(&mut self, other: PassResult) {
        self.busy |= other.busy;
        if let Some(e) = other.retry {
            self.retry.get_or_insert(e);
        }
        self.wake(other.wake_at);
    }

    /// Keeps the earliest time something is due.
    fn wake(&mut self, at: Option<Instant>) {
        self.wake_at = match (self.wake_at, at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    fn absorb(&mut self, r: Result<bool, CloudError>) {
        match r {
            Ok(busy) => self.busy |= busy,
            Err(e) if e.is_retryable() => {
                self.retry.get_or_insert(e);
            }
            Err(e) => warn!(error = %e, "reconcile step failed"),
        }
    }
}

#[derive(Default)]
struct Memory {
    /// Route 53 change in flight per binding key.
    changes: HashMap<String, String>,
    /// Binding keys whose records this process has seen in sync at Route 53 (until a new
    /// change for them is submitted), and when: a move deletes the old endpoint only once the
    /// flip has been in sync for the record's TTL.
    in_sync: HashMap<String, Instant>,
    /// Service name → (endpoint service id, principals) known to be in step at AWS.
    principals: HashMap<String, (String, String)>,
    /// The cloud cannot list endpoint connections (said once in the log).
    connections_unsupported: bool,
    /// Route 53 change statuses seen in this pass (several bindings share a change).
    change_status: HashMap<String, ChangeStatus>,
    /// The zone, once found or created.
    zone_id: Option<String>,
    /// Whether this process has looked for an existing zone yet.
    zone_searched: bool,
    /// Binding key → the steps its last plan has still to make (a failure stopped them) or
    /// to see confirmed (a Route 53 change not yet in sync), reported with its status until
    /// it is ready or rejected.
    pending: HashMap<String, Vec<pld_core::plan::Step>>,
    /// Endpoint service id → when this process first saw it retiring (a service moved off
    /// it), on the monotonic and the wall clock: its drain grace period runs from there.
    retiring_since: HashMap<String, (Instant, std::time::SystemTime)>,
    /// The earliest time a binding's wait ends (a move's drain), taken by the pass.
    wake_at: Option<Instant>,
    /// Binding key → when this process first reported it migrating: the move's duration,
    /// recorded once it is ready on the new endpoint.
    moving_since: HashMap<String, Instant>,
    /// Service name → the steps a failure stopped in its last pass, reported with its status
    /// until it is available.
    service_pending: HashMap<String, Vec<pld_core::plan::Step>>,
    /// Whether the last look found anything pld built in front of an ALB (`None`: not looked
    /// since start).
    fronts_exist: Option<bool>,
    /// Service name → its front as last observed, reported with its status.
    alb_fronts: HashMap<String, pld_proto::v1::AlbFront>,
    /// Front name → what this agent learnt of it, until the resync interval passes or it
    /// writes to the front.
    seen_fronts: HashMap<String, front::SeenFront>,
    /// ALB ARN → the ALB and its listeners as last described.
    alb_facts: HashMap<String, front::AlbFacts>,
    /// ELBv2 ARN → when its tags were read and the owner they name, if this agent's.
    elb_owners: HashMap<String, (Instant, Option<String>)>,
    /// When the VPC's facts were last read (`None`: not since start).
    facts_read_at: Option<Instant>,
    /// This process created or deleted an endpoint since: read the facts on the next pass.
    facts_stale: bool,
    /// The facts this process last reported.
    facts_reported: Option<pld_proto::v1::VpcFacts>,
    /// Names in the zone holding records no binding of this VPC owns, as last listed.
    zone_names_not_ours: Vec<String>,
    /// Why the zone of our name in the VPC may not be used (it is not pld's), as last looked
    /// at: reported with the facts, so a plan names it before a binding fails on it.
    zone_refused: Option<String>,
}

/// Reconciles one VPC.
pub struct Reconciler {
    cfg: Arc<AgentConfig>,
    cloud: Arc<dyn Cloud>,
    client: Client,
    view: Arc<CatalogView>,
    metrics: Arc<AgentMetrics>,
    /// The tags that mark this agent's resources, and the owners they name.
    own: Ownership,
    /// The private zone's name, with the trailing dot.
    zone_name: String,
    memory: Mutex<Memory>,
    /// Held for the length of a pass: a pass called directly (tests, benchmarks) waits for the
    /// background one, so at most one reconcile per object is ever in flight.
    pass_lock: tokio::sync::Mutex<()>,
}

impl Reconciler {
    /// A reconciler of `cfg`'s VPC, tagging what it creates as `cluster_id`'s.
    pub fn new(
        cfg: Arc<AgentConfig>,
        cluster_id: &str,
        cloud: Arc<dyn Cloud>,
        client: Client,
        view: Arc<CatalogView>,
        metrics: Arc<AgentMetrics>,
    ) -> Self {
        Reconciler {
            own: Ownership::new(cluster_id, &cfg.vpc_id),
            zone_name: cfg.zone_fqdn(),
            cfg,
            cloud,
            client,
            view,
            metrics,
            memory: Mutex::new(Memory::default()),
            pass_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs passes until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let _running = self.metrics.reconciler_started();
        let mut changes = self.view.subscribe();
        // An empty view means "nothing is wanted": acting on it before the catalog is listed
        // would delete every endpoint and record this agent owns, as after each restart.
        while !self.view.synced() {
            tokio::select! {
                r = changes.changed() => if r.is_err() { return },
                _ = stop.wait_for(|s| *s) => return,
            }
        }
        let mut backoff = Duration::from_millis(200);
        let mut busy_wait = BUSY_FIRST;
        loop {
            changes.borrow_and_update();
            let result = self.pass().await;
            let wait = match &result.retry {
                Some(e) => {
                    let jitter = rand::random::<f64>() * 0.5 + 0.75;
                    let wait = backoff.mul_f64(jitter);
                    debug!(error = %e, ?wait, "retryable cloud error; backing off");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    wait
                }
                None => {
                    backoff = Duration::from_millis(200);
                    if result.busy {
                        let wait = busy_wait;
                        busy_wait = (busy_wait * 2).min(BUSY_MAX);
                        wait
                    } else {
                        busy_wait = BUSY_FIRST;
                        self.cfg.resync()
                    }
                }
            };
            // Something due sooner (a drain ending) is looked at exactly then.
            let wait = result.wake_at.map_or(wait, |at| {
                wait.min(at.saturating_duration_since(Instant::now()))
            });
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = changes.changed(), if result.retry.is_none() => busy_wait = BUSY_FIRST,
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// One pass over everything.
    #[instrument(skip_all, fields(vpc = %self.cfg.vpc_id))]
    pub async fn pass(&self) -> PassResult {
        let _one_at_a_time = self.pass_lock.lock().await;
        let _in_progress = self.metrics.pass_started();
        let mut result = PassResult::default();
        if !self.view.synced() {
            debug!("the catalog is not listed yet; nothing to compare AWS with");
            result.busy = true;
            return result;
        }
        let started = Instant::now();
        let provider = self.provider_pass().await;
        self.record(Side::Provider, &provider, started);
        match provider {
            Ok(r) => result.merge(r),
            Err(e) => result.absorb(Err(e)),
        }
        let started = Instant::now();
        let consumer = self.consumer_pass().await;
        self.record(Side::Consumer, &consumer, started);
        match consumer {
            Ok(r) => result.merge(r),
            Err(e) => result.absorb(Err(e)),
        }
        let started = Instant::now();
        let facts = self.facts_pass().await.map(|()| PassResult::default());
        self.record(Side::Facts, &facts, started);
        if let Err(e) = facts {
            result.absorb(Err(e));
        }
        let due = self.memory().wake_at.take();
        result.wake(due);
        self.metrics.pass_done();
        result
    }

    fn record(&self, side: Side, r: &Result<PassResult, CloudError>, started: Instant) {
        let outcome = match r {
            Ok(PassResult { retry: Some(_), .. }) => PassOutcome::Retry,
            Ok(PassResult { busy: true, .. }) => PassOutcome::Busy,
            Ok(_) => PassOutcome::Ok,
            Err(e) if e.is_retryable() => PassOutcome::Retry,
            Err(_) => PassOutcome::Error,
        };
        self.metrics.record_pass(side, outcome, started.elapsed());
    }
}
