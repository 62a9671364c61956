//! Commands that change the catalog: puts, deletes, status reports and restores, each
//! checked against the sender's rights ([`crate::access`]) before anything changes.

use pld_proto::v1::{
    object, report_status_request, AgentState, EventType, Kind, Object, ReportStatusRequest,
};

use super::object::{
    binding_key, empty_object, kind_name, object_key, parse_kind, validate_object,
};
use super::snapshot::decode_backup;
use super::{Catalog, CatalogError, Outcome};
use crate::command::{Command, DeleteOp, Op, PutOp, RestoreOp};
use crate::validate::{self, FieldError};

impl Catalog {
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
            Some(Op::SetClusterId(op)) => self.set_cluster_id(&op.cluster_id),
            None => Err(CatalogError::Corrupt("command without an operation".into())),
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
                // The facts are reported, like a status: a registration keeps them, so plans
                // still see the VPC while its agent restarts.
                a.facts = old.and_then(|o| o.facts.clone());
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
            (Kind::Agent, Some(report_status_request::Status::Agent(facts))) => {
                crate::facts::validate(facts)?;
                let mut a = self.agents.get(&op.key).cloned().ok_or_else(not_found)?;
                a.facts = Some(facts.clone());
                a.meta = Some(self.next_meta(a.meta));
                self.agents.insert(op.key.clone(), a.clone());
                object::Object::Agent(a)
            }
            (_, Some(report_status_request::Status::Service(_))) => {
                return Err(mismatch("service"))
            }
            (_, Some(report_status_request::Status::Binding(_))) => {
                return Err(mismatch("binding"))
            }
            (_, Some(report_status_request::Status::Agent(_))) => {
                return Err(mismatch("VPC facts (agent)"))
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

    fn restore(&mut self, op: &RestoreOp) -> Result<Outcome, CatalogError> {
        let backup = decode_backup(&op.backup)?;
        self.revision = self.revision.max(backup.revision) + 1;
        // The backup's resources at AWS carry its cluster id: a catalog restored into a new
        // cluster must keep claiming them. A backup from before cluster ids keeps ours.
        if !backup.cluster_id.is_empty() {
            self.cluster_id = backup.cluster_id;
        }
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
}
