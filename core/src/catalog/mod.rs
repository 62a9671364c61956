//! The catalog state machine: services, bindings and agents, their revisions, leases, and the
//! window of recent change events that watches are served from.
//!
//! It is pure: [`Catalog::apply`] takes a [`Command`] and returns an [`Outcome`] or a
//! [`CatalogError`], with no I/O and no clock (time arrives inside commands, stamped by the node
//! that proposed them). Every replica that applies the same log reaches the same state, including
//! the same watch window, so a watch can resume on any node.

use std::collections::{BTreeMap, VecDeque};

use pld_proto::v1::{
    object, report_status_request, Agent, AgentState, Binding, Event, EventType, Kind, Member,
    Meta, Object, ReportStatusRequest, Service,
};
use prost::Message;

use crate::command::{Command, DeleteOp, ExpireLeasesOp, KeepAliveOp, Op, PutOp, RestoreOp};
use crate::validate::{self, FieldError};

/// How many recent change events every replica keeps for watches, unless configured otherwise.
pub const DEFAULT_HISTORY_LIMIT: usize = 10_000;

/// Why a command changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// A field is malformed.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The object does not exist.
    #[error("{kind} {key:?} not found")]
    NotFound {
        /// Kind name, e.g. `service`.
        kind: &'static str,
        /// The key looked up.
        key: String,
    },
    /// Compare-and-set failed.
    #[error("revision mismatch on {kind} {key:?}: expected mod revision {expected}, current is {current}")]
    RevisionMismatch {
        /// Kind name.
        kind: &'static str,
        /// Object key.
        key: String,
        /// What the caller expected.
        expected: u64,
        /// The object's current mod revision, 0 when it does not exist.
        current: u64,
    },
    /// A watch asked for history that is no longer kept.
    #[error("revision {requested} is compacted; the oldest revision available is {oldest}")]
    Compacted {
        /// The revision asked for.
        requested: u64,
        /// The oldest revision that can still be watched from.
        oldest: u64,
    },
    /// A backup or snapshot could not be decoded.
    #[error("corrupt catalog data: {0}")]
    Corrupt(String),
    /// The sender may not do this (see [`crate::access`]).
    #[error("permission denied: {0}")]
    Forbidden(String),
}

/// What an applied command did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The object as stored after a put.
    Put { object: Object, revision: u64 },
    /// The object as it was before a delete.
    Deleted { object: Object, revision: u64 },
    /// A status report was stored.
    StatusReported { revision: u64 },
    /// An agent's lease was renewed until this time.
    LeaseRenewed { expires_unix_ms: u64 },
    /// This many leases expired.
    LeasesExpired { count: usize },
    /// A backup replaced the catalog.
    Restored { revision: u64 },
}

/// The replicated catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    revision: u64,
    services: BTreeMap<String, Service>,
    bindings: BTreeMap<String, Binding>,
    agents: BTreeMap<String, Agent>,
    members: BTreeMap<u64, String>,
    history: VecDeque<Event>,
    /// Every revision at or below this is gone from `history`.
    compacted_through: u64,
    history_limit: usize,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog::new(DEFAULT_HISTORY_LIMIT)
    }
}

/// The name of a kind in messages.
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Service => "service",
        Kind::Binding => "binding",
        Kind::Agent => "agent",
        Kind::Unspecified => "object",
    }
}

/// The key of a binding: `service/consumer_vpc_id`.
pub fn binding_key(service: &str, consumer_vpc_id: &str) -> String {
    format!("{service}/{consumer_vpc_id}")
}

/// The kind of an object, without building its key.
///
/// # Errors
/// When the object is empty.
pub fn object_kind(obj: &Object) -> Result<Kind, FieldError> {
    match &obj.object {
        Some(object::Object::Service(_)) => Ok(Kind::Service),
        Some(object::Object::Binding(_)) => Ok(Kind::Binding),
        Some(object::Object::Agent(_)) => Ok(Kind::Agent),
        None => Err(empty_object()),
    }
}

/// The kind and key of an object.
///
/// # Errors
/// When the object is empty.
pub fn object_key(obj: &Object) -> Result<(Kind, String), FieldError> {
    match &obj.object {
        Some(object::Object::Service(s)) => Ok((Kind::Service, s.name.clone())),
        Some(object::Object::Binding(b)) => {
            Ok((Kind::Binding, binding_key(&b.service, &b.consumer_vpc_id)))
        }
        Some(object::Object::Agent(a)) => Ok((Kind::Agent, a.vpc_id.clone())),
        None => Err(empty_object()),
    }
}

fn empty_object() -> FieldError {
    FieldError {
        field: "object".into(),
        reason: "must hold a service, binding or agent".into(),
    }
}

/// Validates an object's spec.
///
/// # Errors
/// The first field found wrong.
pub fn validate_object(obj: &Object) -> Result<(), FieldError> {
    match &obj.object {
        Some(object::Object::Service(s)) => validate::service(s),
        Some(object::Object::Binding(b)) => validate::binding(b),
        Some(object::Object::Agent(a)) => validate::agent(a),
        None => object_key(obj).map(|_| ()),
    }
}

/// Parses a wire kind, refusing unknown and unspecified values.
///
/// # Errors
/// Names the `kind` field.
pub fn parse_kind(kind: i32) -> Result<Kind, FieldError> {
    match Kind::try_from(kind) {
        Ok(Kind::Unspecified) | Err(_) => Err(FieldError {
            field: "kind".into(),
            reason: format!("{kind} is not a kind (service, binding or agent)"),
        }),
        Ok(k) => Ok(k),
    }
}

fn meta_of(obj: &Object) -> Option<&Meta> {
    match &obj.object {
        Some(object::Object::Service(s)) => s.meta.as_ref(),
        Some(object::Object::Binding(b)) => b.meta.as_ref(),
        Some(object::Object::Agent(a)) => a.meta.as_ref(),
        None => None,
    }
}

/// The mod revision of an object (0 when it has no meta).
pub fn mod_revision(obj: &Object) -> u64 {
    meta_of(obj).map_or(0, |m| m.mod_revision)
}

/// Serialized form of the whole state machine, for raft snapshots.
#[derive(Clone, PartialEq, Message)]
struct SnapshotData {
    #[prost(uint64, tag = "1")]
    revision: u64,
    #[prost(message, repeated, tag = "2")]
    services: Vec<Service>,
    #[prost(message, repeated, tag = "3")]
    bindings: Vec<Binding>,
    #[prost(message, repeated, tag = "4")]
    agents: Vec<Agent>,
    #[prost(message, repeated, tag = "5")]
    members: Vec<Member>,
    #[prost(message, repeated, tag = "6")]
    history: Vec<Event>,
    #[prost(uint64, tag = "7")]
    compacted_through: u64,
}

/// A backup: the objects and revision, without membership or watch history.
#[derive(Clone, PartialEq, Message)]
struct BackupData {
    /// Identifies the format, so a random file is refused rather than restored as empty.
    #[prost(string, tag = "1")]
    magic: String,
    #[prost(uint64, tag = "2")]
    revision: u64,
    #[prost(message, repeated, tag = "3")]
    services: Vec<Service>,
    #[prost(message, repeated, tag = "4")]
    bindings: Vec<Binding>,
    #[prost(message, repeated, tag = "5")]
    agents: Vec<Agent>,
}

const BACKUP_MAGIC: &str = "pld-catalog-backup-v1";

impl Catalog {
    /// An empty catalog keeping `history_limit` recent events for watches.
    pub fn new(history_limit: usize) -> Self {
        Catalog {
            revision: 0,
            services: BTreeMap::new(),
            bindings: BTreeMap::new(),
            agents: BTreeMap::new(),
            members: BTreeMap::new(),
            history: VecDeque::new(),
            compacted_through: 0,
            history_limit: history_limit.max(1),
        }
    }

    /// The current catalog revision: the revision of the last change.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Controller members, id → address.
    pub fn members(&self) -> &BTreeMap<u64, String> {
        &self.members
    }

    /// Records a member's address (applied from a committed raft configuration change). Not a
    /// catalog change: no revision, no event.
    pub fn set_member(&mut self, id: u64, address: String) {
        self.members.insert(id, address);
    }

    /// Forgets a member (applied from a committed raft configuration change).
    pub fn remove_member(&mut self, id: u64) {
        self.members.remove(&id);
    }

    /// Applies one command.
    ///
    /// # Errors
    /// When the command is refused; the catalog is then unchanged.
    pub fn apply(&mut self, cmd: &Command) -> Result<Outcome, CatalogError> {
        if let Some(op) = &cmd.op {
            crate::access::check(self, op, cmd.scope.as_ref())?;
        }
        match &cmd.op {
            Some(Op::Put(op)) => self.put(op),
            Some(Op::Delete(op)) => self.delete(op),
            Some(Op::ReportStatus(op)) => self.report_status(op),
            Some(Op::KeepAlive(op)) => self.keep_alive(op),
            Some(Op::ExpireLeases(op)) => Ok(self.expire_leases(op)),
            Some(Op::Restore(op)) => self.restore(op),
            None => Err(CatalogError::Corrupt("command without an operation".into())),
        }
    }

    /// Looks up one object.
    pub fn get(&self, kind: Kind, key: &str) -> Option<Object> {
        let object = match kind {
            Kind::Service => object::Object::Service(self.services.get(key)?.clone()),
            Kind::Binding => object::Object::Binding(self.bindings.get(key)?.clone()),
            Kind::Agent => object::Object::Agent(self.agents.get(key)?.clone()),
            Kind::Unspecified => return None,
        };
        Some(Object {
            object: Some(object),
        })
    }

    /// Service `name`, borrowed.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.get(name)
    }

    /// The binding with key `key` (`service/consumer_vpc_id`), borrowed.
    pub fn binding(&self, key: &str) -> Option<&Binding> {
        self.bindings.get(key)
    }

    /// The agent of `vpc_id`, borrowed.
    pub fn agent(&self, vpc_id: &str) -> Option<&Agent> {
        self.agents.get(vpc_id)
    }

    /// How many objects of `kind` the catalog holds.
    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Service => self.services.len(),
            Kind::Binding => self.bindings.len(),
            Kind::Agent => self.agents.len(),
            Kind::Unspecified => 0,
        }
    }

    /// Objects of a kind in key order, whose key starts with `prefix`, of `vpc_id` and (for
    /// bindings) of `service` when those are not empty.
    pub fn list(&self, kind: Kind, prefix: &str, vpc_id: &str, service: &str) -> Vec<Object> {
        fn range<'a, V>(
            map: &'a BTreeMap<String, V>,
            prefix: &'a str,
        ) -> impl Iterator<Item = &'a V> + 'a {
            map.range(prefix.to_string()..)
                .take_while(move |(k, _)| k.starts_with(prefix))
                .map(|(_, v)| v)
        }
        let wrap = |o| Object { object: Some(o) };
        match kind {
            Kind::Service => range(&self.services, prefix)
                .filter(|s| vpc_id.is_empty() || s.vpc_id == vpc_id)
                .map(|s| wrap(object::Object::Service(s.clone())))
                .collect(),
            Kind::Binding => range(&self.bindings, prefix)
                .filter(|b| vpc_id.is_empty() || b.consumer_vpc_id == vpc_id)
                .filter(|b| service.is_empty() || b.service == service)
                .map(|b| wrap(object::Object::Binding(b.clone())))
                .collect(),
            Kind::Agent => range(&self.agents, prefix)
                .filter(|a| vpc_id.is_empty() || a.vpc_id == vpc_id)
                .map(|a| wrap(object::Object::Agent(a.clone())))
                .collect(),
            Kind::Unspecified => Vec::new(),
        }
    }

    /// The oldest revision a watch can start from.
    pub fn oldest_watchable(&self) -> u64 {
        self.compacted_through + 1
    }

    /// Events with revision >= `from`, at most `limit` of them, in order.
    ///
    /// # Errors
    /// [`CatalogError::Compacted`] when `from` is older than the kept window.
    pub fn events_since(&self, from: u64, limit: usize) -> Result<Vec<Event>, CatalogError> {
        if from <= self.compacted_through {
            return Err(CatalogError::Compacted {
                requested: from,
                oldest: self.oldest_watchable(),
            });
        }
        // Revisions in the window are contiguous, so the position is arithmetic.
        let first = match self.history.front() {
            Some(e) => e.revision,
            None => return Ok(Vec::new()),
        };
        let skip = from.saturating_sub(first) as usize;
        Ok(self
            .history
            .iter()
            .skip(skip)
            .take(limit)
            .cloned()
            .collect())
    }

    /// The earliest lease expiry among alive agents, to let the leader know when to act.
    pub fn next_lease_expiry(&self) -> Option<u64> {
        self.agents
            .values()
            .filter(|a| a.state == AgentState::Alive as i32)
            .map(|a| a.lease_expires_unix_ms)
            .min()
    }

    fn record(&mut self, kind: Kind, key: String, typ: EventType, object: Object) {
        self.history.push_back(Event {
            revision: self.revision,
            r#type: typ as i32,
            kind: kind as i32,
            key,
            object: Some(object),
        });
        while self.history.len() > self.history_limit {
            if let Some(e) = self.history.pop_front() {
                self.compacted_through = e.revision;
            }
        }
    }

    fn current_mod_revision(&self, kind: Kind, key: &str) -> u64 {
        match kind {
            Kind::Service => self.services.get(key).and_then(|s| s.meta),
            Kind::Binding => self.bindings.get(key).and_then(|b| b.meta),
            Kind::Agent => self.agents.get(key).and_then(|a| a.meta),
            Kind::Unspecified => None,
        }
        .map_or(0, |m| m.mod_revision)
    }

    fn check_cas(&self, kind: Kind, key: &str, expected: Option<u64>) -> Result<(), CatalogError> {
        if let Some(expected) = expected {
            let current = self.current_mod_revision(kind, key);
            if current != expected {
                return Err(CatalogError::RevisionMismatch {
                    kind: kind_name(kind),
                    key: key.to_string(),
                    expected,
                    current,
                });
            }
        }
        Ok(())
    }

    fn next_meta(&self, old: Option<Meta>) -> Meta {
        let revision = self.revision + 1;
        match old {
            Some(m) => Meta {
                create_revision: m.create_revision,
                mod_revision: revision,
                version: m.version + 1,
            },
            None => Meta {
                create_revision: revision,
                mod_revision: revision,
                version: 1,
            },
        }
    }

    fn put(&mut self, op: &PutOp) -> Result<Outcome, CatalogError> {
        let obj = op.object.as_ref().ok_or_else(|| FieldError {
            field: "object".into(),
            reason: "is required".into(),
        })?;
        validate_object(obj)?;
        let (kind, key) = object_key(obj)?;
        self.check_cas(kind, &key, op.expected_mod_revision)?;
        let stored = match obj.object.clone() {
            Some(object::Object::Service(mut s)) => {
                let old = self.services.get(&key);
                s.meta = Some(self.next_meta(old.and_then(|o| o.meta)));
                // Status belongs to the agent; a spec put keeps it.
                s.status = old.and_then(|o| o.status.clone());
                self.services.insert(key.clone(), s.clone());
                object::Object::Service(s)
            }
            Some(object::Object::Binding(mut b)) => {
                let old = self.bindings.get(&key);
                b.meta = Some(self.next_meta(old.and_then(|o| o.meta)));
                b.status = old.and_then(|o| o.status.clone());
                self.bindings.insert(key.clone(), b.clone());
                object::Object::Binding(b)
            }
            Some(object::Object::Agent(mut a)) => {
                let old = self.agents.get(&key);
                a.meta = Some(self.next_meta(old.and_then(|o| o.meta)));
                a.state = AgentState::Alive as i32;
                a.last_seen_unix_ms = op.now_unix_ms;
                a.lease_expires_unix_ms = op.now_unix_ms + u64::from(a.lease_ttl_seconds) * 1000;
                self.agents.insert(key.clone(), a.clone());
                object::Object::Agent(a)
            }
            None => return Err(empty_object().into()),
        };
        self.revision += 1;
        let object = Object {
            object: Some(stored),
        };
        self.record(kind, key, EventType::Put, object.clone());
        Ok(Outcome::Put {
            object,
            revision: self.revision,
        })
    }

    fn delete(&mut self, op: &DeleteOp) -> Result<Outcome, CatalogError> {
        let kind = parse_kind(op.kind)?;
        self.check_cas(kind, &op.key, op.expected_mod_revision)?;
        let removed = match kind {
            Kind::Service => self.services.remove(&op.key).map(object::Object::Service),
            Kind::Binding => self.bindings.remove(&op.key).map(object::Object::Binding),
            Kind::Agent => self.agents.remove(&op.key).map(object::Object::Agent),
            Kind::Unspecified => None,
        };
        let Some(removed) = removed else {
            return Err(CatalogError::NotFound {
                kind: kind_name(kind),
                key: op.key.clone(),
            });
        };
        self.revision += 1;
        let object = Object {
            object: Some(removed),
        };
        self.record(kind, op.key.clone(), EventType::Delete, object.clone());
        Ok(Outcome::Deleted {
            object,
            revision: self.revision,
        })
    }

    fn report_status(&mut self, op: &ReportStatusRequest) -> Result<Outcome, CatalogError> {
        let kind = parse_kind(op.kind)?;
        let not_found = || CatalogError::NotFound {
            kind: kind_name(kind),
            key: op.key.clone(),
        };
        let mismatch = |what: &str| {
            CatalogError::Invalid(FieldError {
                field: "status".into(),
                reason: format!("a {what} status does not fit a {}", kind_name(kind)),
            })
        };
        let stored = match (kind, &op.status) {
            (Kind::Service, Some(report_status_request::Status::Service(st))) => {
                validate::service_status(st)?;
                let mut s = self.services.get(&op.key).cloned().ok_or_else(not_found)?;
                s.status = Some(st.clone());
                s.meta = Some(self.next_meta(s.meta));
                self.services.insert(op.key.clone(), s.clone());
                object::Object::Service(s)
            }
            (Kind::Binding, Some(report_status_request::Status::Binding(st))) => {
                validate::binding_status(st)?;
                let mut b = self.bindings.get(&op.key).cloned().ok_or_else(not_found)?;
                b.status = Some(st.clone());
                b.meta = Some(self.next_meta(b.meta));
                self.bindings.insert(op.key.clone(), b.clone());
                object::Object::Binding(b)
            }
            (_, Some(report_status_request::Status::Service(_))) => {
                return Err(mismatch("service"))
            }
            (_, Some(report_status_request::Status::Binding(_))) => {
                return Err(mismatch("binding"))
            }
            (_, None) => {
                return Err(CatalogError::Invalid(FieldError {
                    field: "status".into(),
                    reason: "is required".into(),
                }))
            }
        };
        self.revision += 1;
        self.record(
            kind,
            op.key.clone(),
            EventType::Put,
            Object {
                object: Some(stored),
            },
        );
        Ok(Outcome::StatusReported {
            revision: self.revision,
        })
    }

    fn keep_alive(&mut self, op: &KeepAliveOp) -> Result<Outcome, CatalogError> {
        let revision = self.revision + 1;
        let agent = self
            .agents
            .get_mut(&op.vpc_id)
            .ok_or_else(|| CatalogError::NotFound {
                kind: "agent",
                key: op.vpc_id.clone(),
            })?;
        agent.last_seen_unix_ms = op.now_unix_ms;
        agent.lease_expires_unix_ms = op.now_unix_ms + u64::from(agent.lease_ttl_seconds) * 1000;
        let expires_unix_ms = agent.lease_expires_unix_ms;
        if agent.state != AgentState::Alive as i32 {
            // Reviving an expired agent is a change watchers must see.
            agent.state = AgentState::Alive as i32;
            if let Some(m) = agent.meta.as_mut() {
                m.mod_revision = revision;
                m.version += 1;
            }
            let object = Object {
                object: Some(object::Object::Agent(agent.clone())),
            };
            self.revision = revision;
            self.record(Kind::Agent, op.vpc_id.clone(), EventType::Put, object);
        }
        Ok(Outcome::LeaseRenewed { expires_unix_ms })
    }

    fn expire_leases(&mut self, op: &ExpireLeasesOp) -> Outcome {
        let due: Vec<String> = self
            .agents
            .values()
            .filter(|a| {
                a.state == AgentState::Alive as i32 && a.lease_expires_unix_ms <= op.now_unix_ms
            })
            .map(|a| a.vpc_id.clone())
            .collect();
        for key in &due {
            self.revision += 1;
            let revision = self.revision;
            let Some(agent) = self.agents.get_mut(key) else {
                continue;
            };
            agent.state = AgentState::Expired as i32;
            if let Some(m) = agent.meta.as_mut() {
                m.mod_revision = revision;
                m.version += 1;
            }
            let object = Object {
                object: Some(object::Object::Agent(agent.clone())),
            };
            self.record(Kind::Agent, key.clone(), EventType::Put, object);
        }
        Outcome::LeasesExpired { count: due.len() }
    }

    fn restore(&mut self, op: &RestoreOp) -> Result<Outcome, CatalogError> {
        let backup = decode_backup(&op.backup)?;
        self.revision = self.revision.max(backup.revision) + 1;
        self.services = backup
            .services
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        self.bindings = backup
            .bindings
            .into_iter()
            .map(|b| (binding_key(&b.service, &b.consumer_vpc_id), b))
            .collect();
        self.agents = backup
            .agents
            .into_iter()
            .map(|a| (a.vpc_id.clone(), a))
            .collect();
        // Watchers cannot follow a wholesale replacement event by event: they must re-list.
        self.history.clear();
        self.compacted_through = self.revision;
        Ok(Outcome::Restored {
            revision: self.revision,
        })
    }

    /// Encodes the objects as a backup for `pld snapshot save`.
    pub fn encode_backup(&self) -> Vec<u8> {
        BackupData {
            magic: BACKUP_MAGIC.into(),
            revision: self.revision,
            services: self.services.values().cloned().collect(),
            bindings: self.bindings.values().cloned().collect(),
            agents: self.agents.values().cloned().collect(),
        }
        .encode_to_vec()
    }

    /// Encodes the whole state machine for a raft snapshot.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        SnapshotData {
            revision: self.revision,
            services: self.services.values().cloned().collect(),
            bindings: self.bindings.values().cloned().collect(),
            agents: self.agents.values().cloned().collect(),
            members: self
                .members
                .iter()
                .map(|(id, address)| Member {
                    id: *id,
                    address: address.clone(),
                })
                .collect(),
            history: self.history.iter().cloned().collect(),
            compacted_through: self.compacted_through,
        }
        .encode_to_vec()
    }

    /// Rebuilds a catalog from [`Catalog::encode_snapshot`] output.
    ///
    /// # Errors
    /// [`CatalogError::Corrupt`] when the bytes do not decode.
    pub fn decode_snapshot(data: &[u8], history_limit: usize) -> Result<Self, CatalogError> {
        let snap = SnapshotData::decode(data).map_err(|e| CatalogError::Corrupt(e.to_string()))?;
        let mut catalog = Catalog::new(history_limit);
        catalog.revision = snap.revision;
        catalog.services = snap
            .services
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        catalog.bindings = snap
            .bindings
            .into_iter()
            .map(|b| (binding_key(&b.service, &b.consumer_vpc_id), b))
            .collect();
        catalog.agents = snap
            .agents
            .into_iter()
            .map(|a| (a.vpc_id.clone(), a))
            .collect();
        catalog.members = snap
            .members
            .into_iter()
            .map(|m| (m.id, m.address))
            .collect();
        catalog.history = snap.history.into();
        catalog.compacted_through = snap.compacted_through;
        while catalog.history.len() > catalog.history_limit {
            if let Some(e) = catalog.history.pop_front() {
                catalog.compacted_through = e.revision;
            }
        }
        Ok(catalog)
    }
}

/// Checks that bytes are a backup made by [`Catalog::encode_backup`].
///
/// # Errors
/// [`CatalogError::Corrupt`] naming what is wrong.
pub fn check_backup(data: &[u8]) -> Result<(), CatalogError> {
    decode_backup(data).map(|_| ())
}

fn decode_backup(data: &[u8]) -> Result<BackupData, CatalogError> {
    let backup = BackupData::decode(data)
        .map_err(|e| CatalogError::Corrupt(format!("not a pld catalog backup: {e}")))?;
    if backup.magic != BACKUP_MAGIC {
        return Err(CatalogError::Corrupt(
            "not a pld catalog backup (wrong header)".into(),
        ));
    }
    for s in &backup.services {
        validate::service(s)?;
    }
    for b in &backup.bindings {
        validate::binding(b)?;
    }
    for a in &backup.agents {
        validate::agent(a)?;
    }
    Ok(backup)
}
