//! The catalog's history: revisions and object metadata, compare-and-set, and the window of
//! recent change events that watches are served from.

use pld_proto::v1::{Event, EventType, Kind, Meta, Object};

use super::object::kind_name;
use super::{Catalog, CatalogError};

impl Catalog {
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

    pub(super) fn record(&mut self, kind: Kind, key: String, typ: EventType, object: Object) {
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

    pub(super) fn current_mod_revision(&self, kind: Kind, key: &str) -> u64 {
        match kind {
            Kind::Service => self.services.get(key).and_then(|s| s.meta),
            Kind::Binding => self.bindings.get(key).and_then(|b| b.meta),
            Kind::Agent => self.agents.get(key).and_then(|a| a.meta),
            Kind::Unspecified => None,
        }
        .map_or(0, |m| m.mod_revision)
    }

    pub(super) fn check_cas(
        &self,
        kind: Kind,
        key: &str,
        expected: Option<u64>,
    ) -> Result<(), CatalogError> {
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

    pub(super) fn next_meta(&self, old: Option<Meta>) -> Meta {
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
}
