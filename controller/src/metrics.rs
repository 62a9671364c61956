//! The controller's Prometheus metrics. Counters and histograms are updated where things
//! happen (the raft thread, proposals, watch streams); gauges that mirror state (catalog sizes)
//! are read off the node just before a scrape.

use std::collections::BTreeSet;
use std::sync::Mutex;

use metrics::{Counter, Gauge, Histogram};
use pld_core::cost::{self, Prices, Traffic};
use pld_core::Catalog;
use pld_proto::v1::object::Object as Obj;
use pld_proto::v1::Kind;
use pld_telemetry::Metrics;

use crate::node::info::RaftInfo;

/// `pld_raft_messages_refused_total{reason}`: raft messages from the network dropped before
/// raft-rs saw them, by why. The reasons belong to who refuses (`node::guard`, `api::raft`),
/// which sit above this module: the server declares them at start, so each series exists at 0.
pub struct RaftRefusals(Metrics);

impl RaftRefusals {
    const NAME: &'static str = "pld_raft_messages_refused_total";
    const HELP: &'static str = "Raft messages from the network refused before raft-rs saw them \
         (no honest peer sends them), by reason.";

    fn counter(&self, reason: &'static str) -> Counter {
        self.0
            .counter(Self::NAME, Self::HELP, &[("reason", reason)])
    }

    /// Makes each reason's series, at 0.
    pub(crate) fn declare(&self, reasons: impl IntoIterator<Item = &'static str>) {
        for reason in reasons {
            self.counter(reason).increment(0);
        }
    }

    /// Counts one refusal (rare: the registry lookup is no cost worth saving).
    pub(crate) fn count(&self, reason: &'static str) {
        self.counter(reason).increment(1);
    }
}

/// `pld_estimated_cost_usd_per_hour{account}`: what the catalog's endpoints and the load
/// balancers pld built cost each account an hour ([`pld_core::cost`]), worked out again only
/// when the catalog's revision moved since the last scrape.
pub struct CostGauge {
    registry: Metrics,
    state: Mutex<CostState>,
}

#[derive(Default)]
struct CostState {
    prices: Prices,
    traffic: Traffic,
    revision: Option<u64>,
    accounts: BTreeSet<String>,
}

impl CostGauge {
    const NAME: &'static str = "pld_estimated_cost_usd_per_hour";
    const HELP: &'static str = "Estimated cost of the catalog's PrivateLink endpoints and the \
         load balancers pld built, per account, in US dollars an hour (pld cost shows the \
         figures; [cost] prices sets the prices and traffic).";

    /// Sets the prices and traffic the estimate uses.
    pub(crate) fn estimate_with(&self, prices: Prices, traffic: Traffic) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.prices = prices;
        state.traffic = traffic;
        state.revision = None;
    }

    fn refresh(&self, catalog: &Catalog) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.revision == Some(catalog.revision()) {
            return;
        }
        let objects = |kind| catalog.list(kind, "", "", "");
        let mut agents = Vec::new();
        let mut services = Vec::new();
        let mut bindings = Vec::new();
        for o in objects(Kind::Agent)
            .into_iter()
            .chain(objects(Kind::Service))
            .chain(objects(Kind::Binding))
        {
            match o.object {
                Some(Obj::Agent(a)) => agents.push(a),
                Some(Obj::Service(s)) => services.push(s),
                Some(Obj::Binding(b)) => bindings.push(b),
                None => {}
            }
        }
        let estimate = cost::estimate(&agents, &services, &bindings, &state.prices, &state.traffic);
        let mut now = BTreeSet::new();
        for share in &estimate.accounts {
            self.registry
                .gauge(Self::NAME, Self::HELP, &[("account", share.id.as_str())])
                .set(share.cost.per_hour());
            now.insert(share.id.clone());
        }
        // An account whose last binding went costs nothing now.
        for gone in state.accounts.difference(&now) {
            self.registry
                .gauge(Self::NAME, Self::HELP, &[("account", gone.as_str())])
                .set(0.0);
        }
        state.accounts = now;
        state.revision = Some(catalog.revision());
    }
}

/// Handles to every controller metric.
pub struct ControllerMetrics {
    registry: Metrics,
    term: Gauge,
    leader_id: Gauge,
    is_leader: Gauge,
    commit_index: Gauge,
    applied_index: Gauge,
    last_index: Gauge,
    pub(crate) leader_changes: Counter,
    pub(crate) snapshots_created: Counter,
    pub(crate) snapshots_installed: Counter,
    pub(crate) proposal_seconds: Histogram,
    pub(crate) persist_seconds: Histogram,
    pub(crate) proposed_entries: Counter,
    pub(crate) proposed_commands: Counter,
    pub(crate) watchers: Gauge,
    pub(crate) insecure: Gauge,
    pub(crate) raft_refused: RaftRefusals,
    pub(crate) cost: CostGauge,
    revision: Gauge,
    objects: [(Kind, Gauge); 3],
}

impl ControllerMetrics {
    /// Registers the controller's metrics in `registry`.
    pub fn new(registry: &Metrics) -> Self {
        let objects = [Kind::Service, Kind::Binding, Kind::Agent].map(|kind| {
            let gauge = registry.gauge(
                "pld_catalog_objects",
                "Catalog objects by kind.",
                &[("kind", pld_core::catalog::kind_name(kind))],
            );
            (kind, gauge)
        });
        ControllerMetrics {
            registry: registry.clone(),
            term: registry.gauge("pld_raft_term", "Current raft term.", &[]),
            leader_id: registry.gauge(
                "pld_raft_leader_id",
                "Raft id of the known leader, 0 when none.",
                &[],
            ),
            is_leader: registry.gauge("pld_raft_is_leader", "1 while this node leads.", &[]),
            commit_index: registry.gauge(
                "pld_raft_commit_index",
                "Highest log index known committed.",
                &[],
            ),
            applied_index: registry.gauge(
                "pld_raft_applied_index",
                "Highest log index applied to the catalog.",
                &[],
            ),
            last_index: registry.gauge(
                "pld_raft_last_index",
                "Last index in this node's log.",
                &[],
            ),
            insecure: registry.gauge(
                "pld_insecure",
                "1 when the node serves without TLS (insecure = true): every caller may do \
                 everything.",
                &[],
            ),
            leader_changes: registry.counter(
                "pld_raft_leader_changes_total",
                "Times this node saw a new leader.",
                &[],
            ),
            snapshots_created: registry.counter(
                "pld_raft_snapshots_created_total",
                "State-machine snapshots taken (each compacts the log).",
                &[],
            ),
            snapshots_installed: registry.counter(
                "pld_raft_snapshots_installed_total",
                "Snapshots received from the leader and installed.",
                &[],
            ),
            proposal_seconds: registry.histogram(
                "pld_raft_proposal_duration_seconds",
                "From proposing a command to its being applied on this node.",
                &[],
            ),
            persist_seconds: registry.histogram(
                "pld_raft_persist_duration_seconds",
                "Writing a batch of log entries or a HardState to disk and syncing it (what every write waits for on a quorum of nodes).",
                &[],
            ),
            proposed_entries: registry.counter(
                "pld_raft_proposed_entries_total",
                "Log entries this node proposed carrying client commands (one per group commit).",
                &[],
            ),
            proposed_commands: registry.counter(
                "pld_raft_proposed_commands_total",
                "Client commands this node proposed; divided by entries, the mean group commit size.",
                &[],
            ),
            watchers: registry.gauge(
                "pld_catalog_watchers",
                "Open watch streams on this node.",
                &[],
            ),
            revision: registry.gauge(
                "pld_catalog_revision",
                "Catalog revision applied on this node.",
                &[],
            ),
            raft_refused: RaftRefusals(registry.clone()),
            cost: CostGauge {
                registry: registry.clone(),
                state: Mutex::new(CostState::default()),
            },
            objects,
        }
    }

    /// The registry these metrics live in.
    pub fn registry(&self) -> &Metrics {
        &self.registry
    }

    /// Mirrors the raft state the raft thread just published.
    pub(crate) fn record_raft(&self, info: &RaftInfo, id: u64) {
        self.term.set(info.term as f64);
        self.leader_id.set(info.leader_id as f64);
        self.is_leader
            .set(if info.leader_id == id { 1.0 } else { 0.0 });
        self.commit_index.set(info.commit_index as f64);
        self.applied_index.set(info.applied_index as f64);
        self.last_index.set(info.last_index as f64);
    }

    /// Reads catalog sizes off the applied catalog (called before a scrape).
    pub fn refresh(&self, catalog: &Catalog) {
        self.revision.set(catalog.revision() as f64);
        for (kind, gauge) in &self.objects {
            gauge.set(catalog.count(*kind) as f64);
        }
        self.cost.refresh(catalog);
    }
}
