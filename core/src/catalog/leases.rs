//! Agents' leases: renewal by keep-alive, expiry, and the policy by which the leader decides
//! when to expire them — catalog policy, decided here as a pure function of the catalog and the
//! times the raft node passes in, and carried out as a command through the log, so every
//! replica expires the same leases at the same revision.

use std::time::Duration;

use pld_proto::v1::{object, AgentState, EventType, Kind, Object};

use super::{Catalog, CatalogError, Outcome};
use crate::command::{Command, ExpireLeasesOp, KeepAliveOp, Op};

impl Catalog {
    /// The earliest lease expiry among alive agents, to let the leader know when to act.
    pub fn next_lease_expiry(&self) -> Option<u64> {
        self.agents
            .values()
            .filter(|a| a.state == AgentState::Alive as i32)
            .map(|a| a.lease_expires_unix_ms)
            .min()
    }

    pub(super) fn keep_alive(&mut self, op: &KeepAliveOp) -> Result<Outcome, CatalogError> {
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

    pub(super) fn expire_leases(&mut self, op: &ExpireLeasesOp) -> Outcome {
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
}

/// How eagerly a leader expires leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseExpiryPolicy {
    /// A new leader expires nothing for this long, so agents whose keep-alives failed during
    /// the election can renew first.
    pub grace: Duration,
    /// At most one expiry proposal per this interval: a proposal that is still on its way must
    /// not be followed by another for the same leases.
    pub interval: Duration,
}

impl LeaseExpiryPolicy {
    /// The command to propose now, if any: the leader has led for `led_for`, proposed expiry
    /// last `since_last` ago, and the time is `now_unix_ms`.
    pub fn due(
        &self,
        catalog: &Catalog,
        led_for: Duration,
        since_last: Duration,
        now_unix_ms: u64,
    ) -> Option<Command> {
        if led_for < self.grace || since_last < self.interval {
            return None;
        }
        catalog
            .next_lease_expiry()
            .filter(|expiry| *expiry <= now_unix_ms)?;
        Some(Command::new(Op::ExpireLeases(ExpireLeasesOp {
            now_unix_ms,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LeaseExpiryPolicy = LeaseExpiryPolicy {
        grace: Duration::from_secs(2),
        interval: Duration::from_millis(500),
    };
    const LONG: Duration = Duration::from_secs(60);

    #[test]
    fn nothing_is_due_without_leases() {
        let catalog = Catalog::new(16);
        assert_eq!(POLICY.due(&catalog, LONG, LONG, u64::MAX), None);
    }

    /// A catalog with one agent whose lease (10 s from 1 s) expires at 11 s.
    fn with_agent() -> Catalog {
        use crate::command::PutOp;
        use pld_proto::v1::{object, Agent, Object};
        let mut catalog = Catalog::new(16);
        let agent = Object {
            object: Some(object::Object::Agent(Agent {
                vpc_id: "vpc-0123abcd".into(),
                account_id: "123456789012".into(),
                region: "us-east-1".into(),
                lease_ttl_seconds: 10,
                ..Default::default()
            })),
        };
        catalog
            .apply(&Command::new(Op::Put(PutOp {
                object: Some(agent),
                expected_mod_revision: None,
                now_unix_ms: 1_000,
            })))
            .expect("an agent registers");
        catalog
    }

    #[test]
    fn a_lease_past_its_expiry_is_expired_at_the_given_time() {
        let catalog = with_agent();
        assert_eq!(POLICY.due(&catalog, LONG, LONG, 10_999), None);
        let due = POLICY
            .due(&catalog, LONG, LONG, 11_000)
            .expect("due at 11 s");
        assert_eq!(
            due.op,
            Some(Op::ExpireLeases(ExpireLeasesOp {
                now_unix_ms: 11_000
            }))
        );
    }

    #[test]
    fn a_new_leader_and_a_recent_proposal_wait() {
        let catalog = with_agent();
        assert_eq!(
            POLICY.due(&catalog, Duration::from_secs(1), LONG, u64::MAX),
            None
        );
        assert_eq!(
            POLICY.due(&catalog, LONG, Duration::from_millis(100), u64::MAX),
            None
        );
        assert!(POLICY
            .due(&catalog, POLICY.grace, POLICY.interval, u64::MAX)
            .is_some());
    }

    #[test]
    fn nothing_is_due_for_a_new_leader_whatever_the_catalog() {
        let catalog = Catalog::new(16);
        assert_eq!(POLICY.due(&catalog, Duration::ZERO, LONG, u64::MAX), None);
    }
}
