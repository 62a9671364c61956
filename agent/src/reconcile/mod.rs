//! Reconciliation: make AWS match the catalog for this VPC, idempotently.
//!
//! One pass at a time walks every object this agent is responsible for, so at most one
//! reconcile per object is ever in flight. A pass observes AWS once per resource type (owned
//! endpoint services, owned endpoints, the zone's records), then acts per object:
//! - provider: an endpoint service per service this VPC offers, principals in step, pending
//!   connections accepted or rejected by policy (or left for `pld bindings accept|reject`), the
//!   service's status written back;
//! - consumer: an endpoint per binding of this VPC, followed through acceptance, then
//!   `SERVICE.ZONE` published in the private hosted zone, and the binding marked ready only once
//!   Route 53 reports the change INSYNC;
//! - cleanup: owned resources with no catalog object are deleted (NotFound counts as done);
//!   resources without our ownership tag are never touched.
//!
//! Passes run on catalog changes, every resync interval, quickly while something is in
//! transition, and with jittered exponential backoff after retryable errors. Creates carry
//! deterministic client tokens, so a retry after a crash finds rather than duplicates.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pld_client::Client;
use pld_cloud::{
    fqdn, state_is, ChangeAction, ChangeStatus, Cloud, CloudError, Connection, CreateEndpoint,
    CreateEndpointService, Endpoint, EndpointKind, EndpointService, RecordChange, RecordSet, Tags,
    OWNER_TAG,
};
use pld_proto::v1::{
    report_status_request, Acceptance, Approval, Binding, BindingStatus, Kind, ReportStatusRequest,
    Service, ServiceStatus,
};
use tokio::sync::watch;
use tracing::{debug, info, instrument, warn};

use crate::builtin;
use crate::config::AgentConfig;
use crate::crash_points::crash_point;
use crate::metrics::{AgentMetrics, PassOutcome, Side};
use crate::view::CatalogView;

/// The tag naming the pld installation, on everything the agent creates.
pub const CLUSTER_TAG: &str = "pld:cluster";
/// The tag naming the VPC whose agent created the resource.
pub const VPC_TAG: &str = "pld:vpc";
/// TTL of published records.
const RECORD_TTL: u32 = 30;
/// Longest wait after a pass that hit retryable errors.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How soon to look again while something is in transition: starting fast (AWS transitions
/// that finish at once should not cost a fixed delay) and slowing down while they do not.
const BUSY_FIRST: Duration = Duration::from_millis(20);
const BUSY_MAX: Duration = Duration::from_secs(1);

/// Phases a binding goes through.
pub mod phase {
    pub const WAITING: &str = "waiting";
    pub const CREATING: &str = "creating";
    pub const PENDING_ACCEPTANCE: &str = "pendingAcceptance";
    pub const PENDING: &str = "pending";
    pub const PUBLISHING: &str = "publishing";
    pub const READY: &str = "ready";
    pub const REJECTED: &str = "rejected";
    pub const FAILED: &str = "failed";
}

/// What a pass found.
#[derive(Debug, Default)]
pub struct PassResult {
    /// Something is in transition: look again soon.
    pub busy: bool,
    /// The first retryable error (the pass went on with other objects).
    pub retry: Option<CloudError>,
}

impl PassResult {
    fn merge(&mut self, other: PassResult) {
        self.busy |= other.busy;
        if let Some(e) = other.retry {
            self.retry.get_or_insert(e);
        }
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
    /// change for them is submitted).
    in_sync: HashSet<String>,
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
}

/// Reconciles one VPC.
pub struct Reconciler {
    cfg: Arc<AgentConfig>,
    cloud: Arc<dyn Cloud>,
    client: Client,
    view: Arc<CatalogView>,
    metrics: Arc<AgentMetrics>,
    memory: Mutex<Memory>,
    /// Held for the length of a pass: a pass called directly (tests, benchmarks) waits for the
    /// background one, so at most one reconcile per object is ever in flight.
    pass_lock: tokio::sync::Mutex<()>,
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl Reconciler {
    /// A reconciler for the VPC in `cfg`.
    pub fn new(
        cfg: Arc<AgentConfig>,
        cloud: Arc<dyn Cloud>,
        client: Client,
        view: Arc<CatalogView>,
        metrics: Arc<AgentMetrics>,
    ) -> Self {
        Reconciler {
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

    fn owner(&self, kind: &str, key: &str) -> String {
        format!("{}/{kind}/{key}", self.cfg.cluster_id)
    }

    fn tags(&self, owner: &str) -> Tags {
        let mut tags = self.mine();
        tags.insert(OWNER_TAG.to_string(), owner.to_string());
        tags
    }

    /// The tags that make a resource this agent's: its installation and its VPC. Several VPCs
    /// of one account each have an agent, and none may take another's resources for orphans.
    fn mine(&self) -> Tags {
        Tags::from([
            (CLUSTER_TAG.to_string(), self.cfg.cluster_id.clone()),
            (VPC_TAG.to_string(), self.cfg.vpc_id.clone()),
        ])
    }

    /// A client token that is the same for the same owner and parameters.
    fn token(owner: &str, params: &str) -> String {
        format!("pld-{:016x}-{:016x}", fnv(owner), fnv(params))
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

    // ---------------------------------------------------------------- provider side

    async fn provider_pass(&self) -> Result<PassResult, CloudError> {
        let mut result = PassResult::default();
        let owned = self.cloud.describe_endpoint_services(&self.mine()).await?;
        let desired = self.view.services_of(&self.cfg.vpc_id);
        // One call for the connections of every service this account owns.
        let connections = if owned.is_empty() {
            Vec::new()
        } else {
            match self.cloud.describe_connections(None).await {
                Ok(c) => c,
                // An endpoint that cannot list connections (an emulator): run without
                // acceptance management rather than not at all.
                Err(CloudError::Unsupported(op)) => {
                    if !std::mem::replace(&mut self.memory().connections_unsupported, true) {
                        warn!(%op, "connections cannot be listed here; accepting and rejecting is skipped");
                    }
                    Vec::new()
                }
                Err(e) => return Err(e),
            }
        };
        let mut by_owner: BTreeMap<String, EndpointService> = owned
            .into_iter()
            .filter_map(|s| Some((s.tags.get(OWNER_TAG)?.clone(), s)))
            .collect();
        for service in desired {
            let owner = self.owner("service", &service.name);
            let existing = by_owner.remove(&owner);
            let r = self
                .reconcile_service(&service, &owner, existing, &connections)
                .await;
            if let Err(e) = &r {
                if !e.is_retryable() {
                    self.report_service(&service, "failed", None, e.to_string())
                        .await;
                }
            }
            result.absorb(r);
        }
        for (owner, orphan) in by_owner {
            result.absorb(self.delete_service(&owner, &orphan, &connections).await);
        }
        Ok(result)
    }

    async fn reconcile_service(
        &self,
        service: &Service,
        owner: &str,
        existing: Option<EndpointService>,
        connections: &[Connection],
    ) -> Result<bool, CloudError> {
        let es = match existing {
            Some(es) => es,
            None => {
                // Acceptance is always required at AWS: the agent decides, so `auto` can still
                // reject principals the service does not allow.
                let req = CreateEndpointService {
                    load_balancer_arn: service.load_balancer_arn.clone(),
                    acceptance_required: true,
                    supported_regions: Vec::new(),
                    private_dns_name: None,
                    client_token: Self::token(owner, &service.load_balancer_arn),
                    tags: self.tags(owner),
                };
                let es = self.cloud.create_endpoint_service(&req).await?;
                crash_point!("provider-service-created");
                info!(service = %service.name, id = %es.id, "created endpoint service");
                es
            }
        };
        if !es.acceptance_required {
            self.cloud.set_acceptance_required(&es.id, true).await?;
        }
        self.sync_principals(service, &es).await?;
        let connections: Vec<&Connection> = connections
            .iter()
            .filter(|c| c.service_id == es.id)
            .collect();
        let busy = self.decide_connections(service, &es, &connections).await?;
        let state = es.state.to_ascii_lowercase();
        self.report_service(service, &state, Some(&es), String::new())
            .await;
        Ok(busy || !state_is(&es.state, "Available"))
    }

    /// Makes the allowed principals at AWS those of the catalog. There is no bulk describe of
    /// permissions, so a service's are read once per spec revision, not every pass.
    async fn sync_principals(
        &self,
        service: &Service,
        es: &EndpointService,
    ) -> Result<(), CloudError> {
        // Keyed by the principals themselves: status reports bump the service's revision too.
        let synced = (es.id.clone(), service.allowed_principals.join(","));
        if self.memory().principals.get(&service.name) == Some(&synced) {
            return Ok(());
        }
        let current = self.cloud.allowed_principals(&es.id).await?;
        let add: Vec<String> = service
            .allowed_principals
            .iter()
            .filter(|p| !current.contains(p))
            .cloned()
            .collect();
        let remove: Vec<String> = current
            .iter()
            .filter(|p| !service.allowed_principals.contains(p))
            .cloned()
            .collect();
        if !add.is_empty() || !remove.is_empty() {
            self.cloud
                .modify_allowed_principals(&es.id, &add, &remove)
                .await?;
        }
        self.memory()
            .principals
            .insert(service.name.clone(), synced);
        Ok(())
    }

    /// Accepts or rejects pending connections; returns whether any is in transition.
    async fn decide_connections(
        &self,
        service: &Service,
        es: &EndpointService,
        connections: &[&Connection],
    ) -> Result<bool, CloudError> {
        let bindings = self.view.bindings_to(&service.name);
        let mut accept = Vec::new();
        let mut reject = Vec::new();
        let mut busy = false;
        for c in connections {
            if state_is(&c.state, "pending") {
                busy = true;
            }
            if !state_is(&c.state, "pendingAcceptance") {
                continue;
            }
            let binding = bindings.iter().find(|b| {
                b.status
                    .as_ref()
                    .is_some_and(|s| s.endpoint_id == c.endpoint_id)
            });
            let allowed = pld_core::access::principals_allow(
                &service.allowed_principals,
                Some(&self.cfg.account_id),
                &c.owner,
            );
            if service.acceptance == Acceptance::Manual as i32 {
                match binding.map(|b| b.approval) {
                    Some(a) if a == Approval::Accepted as i32 && allowed => {
                        accept.push(c.endpoint_id.clone())
                    }
                    Some(a) if a == Approval::Rejected as i32 => reject.push(c.endpoint_id.clone()),
                    _ if !allowed => reject.push(c.endpoint_id.clone()),
                    _ => {}
                }
            } else if allowed && binding.is_some() {
                accept.push(c.endpoint_id.clone());
            } else if !allowed {
                reject.push(c.endpoint_id.clone());
            } else {
                // An allowed principal whose binding we have not seen yet: look again soon.
                busy = true;
            }
        }
        if !accept.is_empty() {
            info!(service = %service.name, endpoints = ?accept, "accepting connections");
            self.cloud.accept_connections(&es.id, &accept).await?;
            crash_point!("provider-connections-accepted");
            busy = true;
        }
        if !reject.is_empty() {
            info!(service = %service.name, endpoints = ?reject, "rejecting connections");
            self.cloud.reject_connections(&es.id, &reject).await?;
        }
        Ok(busy)
    }

    async fn report_service(
        &self,
        service: &Service,
        state: &str,
        es: Option<&EndpointService>,
        message: String,
    ) {
        let status = ServiceStatus {
            state: state.to_string(),
            endpoint_service_name: es.map(|e| e.name.clone()).unwrap_or_default(),
            az_ids: es.map(|e| e.az_ids.clone()).unwrap_or_default(),
            message,
        };
        if service.status.as_ref() == Some(&status) {
            return;
        }
        self.report(
            Kind::Service,
            &service.name,
            report_status_request::Status::Service(status),
        )
        .await;
    }

    async fn delete_service(
        &self,
        owner: &str,
        es: &EndpointService,
        connections: &[Connection],
    ) -> Result<bool, CloudError> {
        let live: Vec<String> = connections
            .iter()
            .filter(|c| c.service_id == es.id)
            .filter(|c| {
                state_is(&c.state, "available")
                    || state_is(&c.state, "pendingAcceptance")
                    || state_is(&c.state, "pending")
            })
            .map(|c| c.endpoint_id.clone())
            .collect();
        if !live.is_empty() {
            self.cloud.reject_connections(&es.id, &live).await?;
        }
        crash_point!("provider-service-deleting");
        match self.cloud.delete_endpoint_service(&es.id).await {
            Ok(()) => {
                info!(%owner, id = %es.id, "deleted endpoint service");
                Ok(false)
            }
            Err(e) if e.is_not_found() => Ok(false),
            Err(CloudError::DependencyViolation(_)) => Ok(true),
            Err(e) => Err(e),
        }
    }

    // ---------------------------------------------------------------- consumer side

    async fn consumer_pass(&self) -> Result<PassResult, CloudError> {
        let mut result = PassResult::default();
        self.memory().change_status.clear();
        let owned = self
            .cloud
            .describe_endpoints(&self.cfg.vpc_id, &self.mine())
            .await?;
        let mut by_owner: BTreeMap<String, Endpoint> = owned
            .into_iter()
            .filter_map(|e| Some((e.tags.get(OWNER_TAG)?.clone(), e)))
            .collect();
        let bindings = self.view.bindings_of(&self.cfg.vpc_id);
        if self.memory().zone_id.is_none() && !self.memory().zone_searched {
            // After a restart: find (never create) the zone, so records of endpoints that are
            // gone can be cleaned up too — even when no endpoint is left to hint at it.
            self.find_zone().await?;
            self.memory().zone_searched = true;
        }
        let zone_id = self.memory().zone_id.clone();
        let records = match &zone_id {
            Some(z) => match self.cloud.list_records(z).await {
                Ok(r) => r,
                Err(e) if e.is_not_found() => {
                    // Deleted behind our back (or by an earlier pass): find or make it anew.
                    warn!(zone = %z, "the hosted zone is gone; looking for it again");
                    self.memory().zone_id = None;
                    result.busy = true;
                    return Ok(result);
                }
                Err(e) => return Err(e),
            },
            None => Vec::new(),
        };
        let mut dns = DnsBatch::default();
        for b in &bindings {
            let key = pld_core::catalog::binding_key(&b.service, &b.consumer_vpc_id);
            let owner = self.owner("binding", &key);
            let endpoint = by_owner.remove(&owner);
            let r = self
                .reconcile_binding(b, &key, &owner, endpoint, &records, &mut dns)
                .await;
            if let Err(e) = &r {
                if !e.is_retryable() {
                    self.report_binding(b, phase::FAILED, None, String::new(), e.to_string())
                        .await;
                }
            }
            result.absorb(r);
        }
        // Endpoints whose binding is gone: unpublish, then delete.
        for (owner, endpoint) in by_owner {
            let service = owner.rsplit('/').nth(1).unwrap_or_default().to_string();
            dns.remove(&self.record_name(&service), &records, &owner);
            result.absorb(self.delete_endpoint(&endpoint).await);
        }
        // Names still published for bindings that are gone and whose endpoint is too (a pass
        // that deleted the endpoint stopped before it unpublished the name).
        let live: Vec<String> = bindings
            .iter()
            .map(|b| {
                let key = pld_core::catalog::binding_key(&b.service, &b.consumer_vpc_id);
                self.owner("binding", &key)
            })
            .collect();
        let binding_owners = self.owner("binding", "");
        let vpc_suffix = format!("/{}", self.cfg.vpc_id);
        for (name, owner) in DnsBatch::owners(&records) {
            if owner.starts_with(&binding_owners)
                && owner.ends_with(&vpc_suffix)
                && !live.contains(&owner)
            {
                dns.remove(&name, &records, &owner);
            }
        }
        result.absorb(self.submit_dns(dns, zone_id.as_deref()).await);
        if bindings.is_empty() {
            result.absorb(self.maybe_delete_zone(&records).await);
        }
        Ok(result)
    }

    fn record_name(&self, service: &str) -> String {
        fqdn(&format!("{service}.{}", self.cfg.zone_fqdn()))
    }

    /// Where a binding points, or why it cannot point anywhere yet.
    fn target(&self, b: &Binding) -> Result<Target, NotYet> {
        if let Some((name, kind)) = builtin::lookup(&b.service, &self.cfg.region) {
            return Ok(Target {
                service_name: name,
                kind: Some(kind),
            });
        }
        let Some(s) = self.view.service(&b.service) else {
            return Err(NotYet::Missing(format!(
                "service {} is not in the catalog",
                b.service
            )));
        };
        match s.status.map(|st| st.endpoint_service_name) {
            Some(name) if !name.is_empty() => Ok(Target {
                service_name: name,
                kind: None,
            }),
            _ => Err(NotYet::Waiting(format!(
                "waiting for the provider of {} to create its endpoint service",
                b.service
            ))),
        }
    }

    async fn reconcile_binding(
        &self,
        b: &Binding,
        key: &str,
        owner: &str,
        endpoint: Option<Endpoint>,
        records: &[RecordSet],
        dns: &mut DnsBatch,
    ) -> Result<bool, CloudError> {
        let Target {
            service_name,
            kind: known_kind,
        } = match self.target(b) {
            Ok(t) => t,
            Err(not_yet) => {
                let (waiting, message) = match not_yet {
                    NotYet::Waiting(m) => (true, m),
                    NotYet::Missing(m) => (false, m),
                };
                if let Some(ep) = endpoint {
                    // The service is gone: take the endpoint and its name down.
                    dns.remove(&self.record_name(&b.service), records, owner);
                    self.delete_endpoint(&ep).await?;
                }
                let p = if waiting {
                    phase::WAITING
                } else {
                    phase::FAILED
                };
                self.report_binding(b, p, None, String::new(), message)
                    .await;
                return Ok(waiting);
            }
        };
        let ep = match endpoint {
            Some(ep) => ep,
            None => {
                let ep = self.create_endpoint(owner, &service_name, known_kind).await;
                match ep {
                    Ok(ep) => {
                        crash_point!("consumer-endpoint-created");
                        info!(service = %b.service, id = %ep.id, "created endpoint");
                        ep
                    }
                    Err(Placement(message)) => {
                        self.report_binding(b, phase::FAILED, None, String::new(), message)
                            .await;
                        return Ok(false);
                    }
                }
            }
        };
        let state = ep.state.clone();
        if state_is(&state, "pendingAcceptance") {
            self.report_binding(
                b,
                phase::PENDING_ACCEPTANCE,
                Some(&ep),
                String::new(),
                "waiting for the provider to accept the connection".into(),
            )
            .await;
            return Ok(true);
        }
        if state_is(&state, "pending") {
            self.report_binding(b, phase::PENDING, Some(&ep), String::new(), String::new())
                .await;
            return Ok(true);
        }
        if state_is(&state, "rejected") {
            self.report_binding(
                b,
                phase::REJECTED,
                Some(&ep),
                String::new(),
                "the provider rejected the connection".into(),
            )
            .await;
            return Ok(false);
        }
        if !state_is(&state, "available") {
            self.report_binding(
                b,
                phase::FAILED,
                Some(&ep),
                String::new(),
                format!("endpoint is {state}"),
            )
            .await;
            return Ok(false);
        }
        match self.fix_subnets(&ep).await {
            Ok(false) => {}
            // The addresses change with the subnets: publish them on the next pass.
            Ok(true) => return Ok(true),
            Err(Placement(message)) => {
                self.report_binding(b, phase::FAILED, Some(&ep), String::new(), message)
                    .await;
                return Ok(false);
            }
        }
        if ep.kind != EndpointKind::Interface {
            // Gateway endpoints are route-table targets and GWLB endpoints are next hops that
            // route tables point at: neither is reached by name, so there is nothing to publish.
            self.report_binding(b, phase::READY, Some(&ep), String::new(), String::new())
                .await;
            return Ok(false);
        }
        // Publish only now that the endpoint is available.
        let name = self.record_name(&b.service);
        let in_flight = self.memory().changes.get(key).cloned();
        if let Some(change) = in_flight {
            let known = self.memory().change_status.get(&change).copied();
            let status = match known {
                Some(s) => s,
                None => {
                    let s = self.cloud.get_change(&change).await?;
                    self.memory().change_status.insert(change.clone(), s);
                    s
                }
            };
            match status {
                ChangeStatus::InSync => {
                    let mut memory = self.memory();
                    memory.changes.remove(key);
                    memory.in_sync.insert(key.to_string());
                }
                ChangeStatus::Pending => {
                    self.report_binding(b, phase::PUBLISHING, Some(&ep), name, String::new())
                        .await;
                    return Ok(true);
                }
            }
        }
        if self.memory().zone_id.is_none() {
            self.ensure_zone().await?;
            // The records of a new zone are listed on the next pass.
            return Ok(true);
        }
        // The catalog says a change was submitted, but this process never saw it in sync (it
        // restarted while the change was in flight): records already in place may not have
        // reached Route 53's servers yet. Submitting them again (an idempotent UPSERT) gives a
        // change id to wait on before calling the binding ready.
        let unconfirmed = !self.memory().in_sync.contains(key)
            && b.status
                .as_ref()
                .is_some_and(|s| s.phase == phase::PUBLISHING);
        match dns.upsert(&name, &ep.addresses, records, owner, unconfirmed) {
            Err(conflict) => {
                self.report_binding(b, phase::FAILED, Some(&ep), String::new(), conflict)
                    .await;
                Ok(false)
            }
            Ok(true) => {
                dns.keys.push(key.to_string());
                self.report_binding(b, phase::PUBLISHING, Some(&ep), name, String::new())
                    .await;
                Ok(true)
            }
            Ok(false) => {
                self.report_binding(b, phase::READY, Some(&ep), name, String::new())
                    .await;
                Ok(false)
            }
        }
    }

    async fn create_endpoint(
        &self,
        owner: &str,
        service_name: &str,
        known_kind: Option<EndpointKind>,
    ) -> Result<Endpoint, Placement> {
        // Custom services: one describe gives both the endpoint kind and the supported AZs.
        let detail = match known_kind {
            Some(_) => None,
            None => match self.cloud.describe_service(service_name).await {
                Ok(d) => Some(d),
                Err(e) if e.is_retryable() => return Err(Placement(e.to_string())),
                Err(e) => {
                    return Err(Placement(format!(
                        "this VPC's account cannot use {service_name}: {e}"
                    )))
                }
            },
        };
        let kind = known_kind
            .or(detail.as_ref().map(|d| d.kind))
            .unwrap_or(EndpointKind::Interface);
        let mut req = CreateEndpoint {
            kind,
            vpc_id: self.cfg.vpc_id.clone(),
            service_name: service_name.to_string(),
            subnet_ids: Vec::new(),
            security_group_ids: self.cfg.security_group_ids.clone(),
            route_table_ids: Vec::new(),
            client_token: String::new(),
            tags: self.tags(owner),
        };
        if kind == EndpointKind::Gateway {
            let tables = self
                .cloud
                .describe_route_tables(&self.cfg.vpc_id)
                .await
                .map_err(|e| Placement(e.to_string()))?;
            req.route_table_ids = tables.into_iter().map(|t| t.id).collect();
        } else {
            req.subnet_ids = self.placement(service_name, kind, detail).await?;
        }
        req.client_token = Self::token(
            owner,
            &format!(
                "{service_name}|{:?}|{:?}",
                req.subnet_ids, req.route_table_ids
            ),
        );
        self.cloud
            .create_endpoint(&req)
            .await
            .map_err(|e| Placement(e.to_string()))
    }

    /// The subnets an interface or GWLB endpoint belongs in: one per AZ the service supports,
    /// among the configured subnets (or all of the VPC's).
    async fn placement(
        &self,
        service_name: &str,
        kind: EndpointKind,
        detail: Option<pld_cloud::ServiceDetail>,
    ) -> Result<Vec<String>, Placement> {
        let detail = match detail {
            Some(d) => d,
            // Built-in interface services: their AZs still come from AWS.
            None => self
                .cloud
                .describe_service(service_name)
                .await
                .map_err(|e| {
                    Placement(format!("this VPC's account cannot use {service_name}: {e}"))
                })?,
        };
        let subnets = self
            .cloud
            .describe_subnets(&self.cfg.vpc_id)
            .await
            .map_err(|e| Placement(e.to_string()))?;
        let mut chosen: BTreeMap<String, String> = BTreeMap::new();
        for s in subnets
            .iter()
            .filter(|s| self.cfg.subnet_ids.is_empty() || self.cfg.subnet_ids.contains(&s.id))
        {
            if detail.az_ids.contains(&s.az_id) {
                chosen
                    .entry(s.az_id.clone())
                    .or_insert_with(|| s.id.clone());
            }
        }
        if chosen.is_empty() {
            let ours: Vec<String> = subnets
                .iter()
                .map(|s| format!("{} ({})", s.id, s.az_id))
                .collect();
            return Err(Placement(format!(
                "the service supports AZs {} but this VPC's subnets are in {}; add a subnet in a supported AZ",
                detail.az_ids.join(", "),
                ours.join(", ")
            )));
        }
        let mut ids: Vec<String> = chosen.into_values().collect();
        if kind == EndpointKind::GatewayLoadBalancer {
            // A GWLB endpoint lives in exactly one subnet; add more bindings for more AZs.
            ids.truncate(1);
        }
        Ok(ids)
    }

    /// Moves an endpoint out of subnets the config no longer lists (ModifyVpcEndpoint).
    /// Returns whether it changed anything.
    async fn fix_subnets(&self, ep: &Endpoint) -> Result<bool, Placement> {
        if self.cfg.subnet_ids.is_empty() || ep.kind == EndpointKind::Gateway {
            return Ok(false);
        }
        let remove: Vec<String> = ep
            .subnet_ids
            .iter()
            .filter(|s| !self.cfg.subnet_ids.contains(s))
            .cloned()
            .collect();
        if remove.is_empty() {
            return Ok(false);
        }
        let desired = self.placement(&ep.service_name, ep.kind, None).await?;
        let add: Vec<String> = desired
            .into_iter()
            .filter(|s| !ep.subnet_ids.contains(s))
            .collect();
        info!(id = %ep.id, ?add, ?remove, "moving endpoint to the configured subnets");
        self.cloud
            .modify_endpoint_subnets(&ep.id, &add, &remove)
            .await
            .map_err(|e| Placement(e.to_string()))?;
        Ok(true)
    }

    async fn delete_endpoint(&self, ep: &Endpoint) -> Result<bool, CloudError> {
        match self.cloud.delete_endpoint(&ep.id).await {
            Ok(()) => {
                crash_point!("consumer-endpoint-deleted");
                info!(id = %ep.id, "deleted endpoint");
                Ok(false)
            }
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Remembers the zone if it exists already.
    async fn find_zone(&self) -> Result<(), CloudError> {
        let id = match &self.cfg.dns.hosted_zone_id {
            Some(id) => Some(id.clone()),
            None => {
                let zone_name = self.cfg.zone_fqdn();
                self.cloud
                    .hosted_zones_of_vpc(&self.cfg.vpc_id)
                    .await?
                    .into_iter()
                    .find(|z| z.name == zone_name)
                    .map(|z| z.id)
            }
        };
        self.memory().zone_id = id;
        Ok(())
    }

    /// Finds or creates the private hosted zone and associates this VPC with it.
    async fn ensure_zone(&self) -> Result<(), CloudError> {
        let zone_name = self.cfg.zone_fqdn();
        let id = if let Some(id) = &self.cfg.dns.hosted_zone_id {
            let zone = self.cloud.get_hosted_zone(id).await?;
            if zone.name != zone_name {
                return Err(CloudError::InvalidParameter(format!(
                    "pinned hosted zone {id} is {}, not {zone_name}",
                    zone.name
                )));
            }
            if !zone.vpc_ids.contains(&self.cfg.vpc_id) {
                self.cloud.associate_vpc(id, &self.cfg.vpc_id).await?;
            }
            id.clone()
        } else {
            let existing = self.cloud.hosted_zones_of_vpc(&self.cfg.vpc_id).await?;
            match existing.into_iter().find(|z| z.name == zone_name) {
                Some(z) => z.id,
                None => {
                    // Route 53 refuses a caller reference used before, even for a zone since
                    // deleted, so each attempt has its own. A retry after a crash does not need
                    // the same one: it finds the zone by name first (above).
                    // (At most 128 characters: the VPC and the time are enough.)
                    let reference = format!(
                        "pld-{}-{}",
                        self.cfg.vpc_id,
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_millis())
                    );
                    match self
                        .cloud
                        .create_hosted_zone(
                            &zone_name,
                            &self.cfg.vpc_id,
                            &reference,
                            &self.zone_comment(),
                        )
                        .await
                    {
                        Ok(z) => {
                            crash_point!("consumer-zone-created");
                            info!(zone = %z.name, id = %z.id, "created private hosted zone");
                            z.id
                        }
                        Err(CloudError::AlreadyExists { id, .. }) => id,
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        self.memory().zone_id = Some(id);
        Ok(())
    }

    fn zone_comment(&self) -> String {
        format!(
            "managed by pld cluster {} for {}",
            self.cfg.cluster_id, self.cfg.vpc_id
        )
    }

    /// Deletes the zone when this agent created it and nothing of ours is left in it.
    async fn maybe_delete_zone(&self, records: &[RecordSet]) -> Result<bool, CloudError> {
        let Some(zone_id) = self.memory().zone_id.clone() else {
            return Ok(false);
        };
        if self.cfg.dns.hosted_zone_id.is_some()
            || records.iter().any(|r| r.kind != "SOA" && r.kind != "NS")
        {
            return Ok(false);
        }
        let zone = self.cloud.get_hosted_zone(&zone_id).await?;
        if zone.comment != self.zone_comment() {
            return Ok(false);
        }
        match self.cloud.delete_hosted_zone(&zone_id).await {
            Ok(()) | Err(CloudError::NotFound { .. }) => {
                info!(zone = %zone.name, "deleted private hosted zone");
                self.memory().zone_id = None;
                Ok(false)
            }
            Err(CloudError::DependencyViolation(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn submit_dns(&self, dns: DnsBatch, zone_id: Option<&str>) -> Result<bool, CloudError> {
        let Some(zone_id) = zone_id else {
            return Ok(false);
        };
        if dns.changes.is_empty() {
            return Ok(false);
        }
        let change = self.cloud.change_records(zone_id, &dns.changes).await?;
        crash_point!("consumer-dns-submitted");
        let mut memory = self.memory();
        for key in dns.keys {
            memory.in_sync.remove(&key);
            memory.changes.insert(key, change.clone());
        }
        Ok(true)
    }

    async fn report_binding(
        &self,
        b: &Binding,
        phase: &str,
        ep: Option<&Endpoint>,
        dns_name: String,
        message: String,
    ) {
        let status = BindingStatus {
            phase: phase.to_string(),
            endpoint_id: ep.map(|e| e.id.clone()).unwrap_or_default(),
            dns_name: dns_name.trim_end_matches('.').to_string(),
            addresses: ep.map(|e| e.addresses.clone()).unwrap_or_default(),
            message,
        };
        if b.status.as_ref() == Some(&status) {
            return;
        }
        let key = pld_core::catalog::binding_key(&b.service, &b.consumer_vpc_id);
        self.report(
            Kind::Binding,
            &key,
            report_status_request::Status::Binding(status),
        )
        .await;
    }

    async fn report(&self, kind: Kind, key: &str, status: report_status_request::Status) {
        let r = self
            .client
            .call(|mut s| {
                let req = ReportStatusRequest {
                    kind: kind as i32,
                    key: key.to_string(),
                    status: Some(status.clone()),
                };
                async move { s.catalog().report_status(req).await }
            })
            .await;
        if let Err(e) = r {
            debug!(%key, error = %e, "status not reported");
        }
    }
}

/// The AWS service a binding's endpoint connects to.
struct Target {
    service_name: String,
    /// Known for built-ins; custom services are asked (interface or GWLB).
    kind: Option<EndpointKind>,
}

/// Why a binding has no target yet.
enum NotYet {
    /// The provider has not created its endpoint service yet.
    Waiting(String),
    /// The service is not in the catalog.
    Missing(String),
}

/// Why an endpoint could not be placed, in words for the binding's status.
struct Placement(String);

/// Record changes of one pass, sent as one Route 53 batch (a zone takes one change at a time).
#[derive(Default)]
struct DnsBatch {
    changes: Vec<RecordChange>,
    keys: Vec<String>,
    /// Names already queued for deletion, so a name is never deleted twice in one batch.
    removed: std::collections::BTreeSet<String>,
}

impl DnsBatch {
    fn owner_value(owner: &str) -> String {
        format!("\"pld-owner={owner}\"")
    }

    /// (name, owner) of every record pld marked as its own.
    fn owners(records: &[RecordSet]) -> Vec<(String, String)> {
        records
            .iter()
            .filter(|r| r.kind == "TXT")
            .flat_map(|r| {
                r.values.iter().filter_map(|v| {
                    let owner = v.strip_prefix("\"pld-owner=")?.strip_suffix('"')?;
                    Some((r.name.clone(), owner.to_string()))
                })
            })
            .collect()
    }

    /// Queues A and ownership TXT records for `name`; Ok(false) when they are already right
    /// (unless `again`: then they are queued anyway), Err when the name holds records pld does
    /// not own.
    fn upsert(
        &mut self,
        name: &str,
        addresses: &[String],
        records: &[RecordSet],
        owner: &str,
        again: bool,
    ) -> Result<bool, String> {
        let txt = records.iter().find(|r| r.name == name && r.kind == "TXT");
        let a = records.iter().find(|r| r.name == name && r.kind == "A");
        let ours = txt.is_some_and(|t| t.values.contains(&Self::owner_value(owner)));
        if !ours
            && (a.is_some()
                || txt.is_some()
                || records.iter().any(|r| r.name == name && r.kind == "CNAME"))
        {
            return Err(format!("{name} already has records that pld does not own; remove them or pick another zone"));
        }
        let mut wanted: Vec<String> = addresses.to_vec();
        wanted.sort();
        if !again
            && ours
            && a.is_some_and(|a| {
                let mut have = a.values.clone();
                have.sort();
                have == wanted
            })
        {
            return Ok(false);
        }
        self.changes.push(RecordChange {
            action: ChangeAction::Upsert,
            record: RecordSet {
                name: name.to_string(),
                kind: "A".into(),
                ttl: RECORD_TTL,
                values: wanted,
            },
        });
        self.changes.push(RecordChange {
            action: ChangeAction::Upsert,
            record: RecordSet {
                name: name.to_string(),
                kind: "TXT".into(),
                ttl: RECORD_TTL,
                values: vec![Self::owner_value(owner)],
            },
        });
        Ok(true)
    }

    /// Queues deletion of `name`'s records when pld owns them.
    fn remove(&mut self, name: &str, records: &[RecordSet], owner: &str) {
        let ours = records.iter().any(|r| {
            r.name == name && r.kind == "TXT" && r.values.contains(&Self::owner_value(owner))
        });
        if !ours || !self.removed.insert(name.to_string()) {
            return;
        }
        for r in records
            .iter()
            .filter(|r| r.name == name && (r.kind == "A" || r.kind == "TXT"))
        {
            self.changes.push(RecordChange {
                action: ChangeAction::Delete,
                record: r.clone(),
            });
        }
    }
}
