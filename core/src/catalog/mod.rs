//! The catalog state machine: services, bindings and agents, their revisions, leases, and the
//! window of recent change events that watches are served from.
//!
//! It is pure: [`Catalog::apply`] takes a [`Command`] and returns an [`Outcome`] or a
//! [`CatalogError`], with no I/O and no clock (time arrives inside commands, stamped by the node
//! that proposed them). Every replica that applies the same log reaches the same state, including
//! the same watch window, so a watch can resume on any node.

//!
//! The files: reads here; [`writes`] (puts, deletes, status reports, restores), [`leases`]
//! (keep-alives, expiry and its policy), [`history`] (revisions, compare-and-set, the watch
//! window), [`object`] (kinds, keys, validation) and [`snapshot`] (snapshot and backup encoding).

pub mod cluster_id;
mod history;
pub mod leases;
pub mod object;
mod snapshot;
mod writes;

use std::collections::BTreeMap;

use imbl::{OrdMap, Vector};

use pld_proto::v1::{object as wire, Agent, Binding, Event, Kind, Object, Service};

use crate::validate::FieldError;
pub use leases::LeaseExpiryPolicy;
pub use object::{
    binding_key, kind_name, mod_revision, object_key, object_kind, parse_kind, validate_object,
};
pub use snapshot::check_backup;

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
    /// The cluster already has another id: it is set once and never changes, because every
    /// resource the agents made is tagged with it.
    #[error("the cluster id is {current:?}; it cannot become {requested:?}")]
    ClusterIdMismatch {
        /// The id the catalog holds.
        current: String,
        /// The id asked for.
        requested: String,
    },
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
    /// The cluster id is (now, or already was) this.
    ClusterIdSet { cluster_id: String },
}

/// The replicated catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    revision: u64,
    // Persistent collections: cloning the catalog for a snapshot shares them instead of
    // copying 10,000s of objects on the raft thread (see `pld_controller`'s compactor).
    services: OrdMap<String, Service>,
    bindings: OrdMap<String, Binding>,
    agents: OrdMap<String, Agent>,
    members: BTreeMap<u64, String>,
    history: Vector<Event>,
    /// Every revision at or below this is gone from `history`.
    compacted_through: u64,
    history_limit: usize,
    /// The installation's name in the ownership tags of everything its agents create; empty
    /// until the first leader sets it (see [`cluster_id`]).
    cluster_id: String,
    /// Set in the snapshot a new cluster is bootstrapped from: its first leader makes a fresh
    /// id. A catalog without an id and without this is from before ids (see [`cluster_id`]).
    new_cluster: bool,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog::new(DEFAULT_HISTORY_LIMIT)
    }
}

impl Catalog {
    /// An empty catalog keeping `history_limit` recent events for watches.
    pub fn new(history_limit: usize) -> Self {
        Catalog {
            revision: 0,
            services: OrdMap::new(),
            bindings: OrdMap::new(),
            agents: OrdMap::new(),
            members: BTreeMap::new(),
            history: Vector::new(),
            compacted_through: 0,
            history_limit: history_limit.max(1),
            cluster_id: String::new(),
            new_cluster: false,
        }
    }

    /// The current catalog revision: the revision of the last change.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The installation's cluster id, once set.
    pub fn cluster_id(&self) -> Option<&str> {
        (!self.cluster_id.is_empty()).then_some(self.cluster_id.as_str())
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

    /// Looks up one object.
    pub fn get(&self, kind: Kind, key: &str) -> Option<Object> {
        let object = match kind {
            Kind::Service => wire::Object::Service(self.services.get(key)?.clone()),
            Kind::Binding => wire::Object::Binding(self.bindings.get(key)?.clone()),
            Kind::Agent => wire::Object::Agent(self.agents.get(key)?.clone()),
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
            map: &'a OrdMap<String, V>,
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
                .map(|s| wrap(wire::Object::Service(s.clone())))
                .collect(),
            Kind::Binding => range(&self.bindings, prefix)
                .filter(|b| vpc_id.is_empty() || b.consumer_vpc_id == vpc_id)
                .filter(|b| service.is_empty() || b.service == service)
                .map(|b| wrap(wire::Object::Binding(b.clone())))
                .collect(),
            Kind::Agent => range(&self.agents, prefix)
                .filter(|a| vpc_id.is_empty() || a.vpc_id == vpc_id)
                .map(|a| wrap(wire::Object::Agent(a.clone())))
                .collect(),
            Kind::Unspecified => Vec::new(),
        }
    }
}
