//! Which connections to a provided service to accept and which to reject, by the service's
//! policy: `auto` accepts an allowed principal once a binding names the endpoint, `manual`
//! waits for `pld bindings accept|reject`, and either rejects a principal the service does not
//! allow and a binding an operator rejected. The policy holds for connections already accepted
//! too: when the service stops allowing a principal, or an operator rejects a binding after the
//! fact, its live connection is rejected, which disconnects it. One accept and one reject call
//! per service, whatever the number of endpoints, because AWS counts each call against the
//! endpoint-service bucket.

use pld_proto::v1::{Acceptance, Approval};

use crate::access::principals_allow;
use crate::aws::types::{state_is, Connection};
use crate::aws::Call;

use super::{Planned, Reason};

/// A service's connection policy: from the catalog.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    pub acceptance: Acceptance,
    pub allowed_principals: &'a [String],
    /// The provider's own account (its principal is always allowed).
    pub provider_account: &'a str,
}

/// What the catalog says of an endpoint: the binding whose status names it, and what an
/// operator decided for that binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub endpoint_id: String,
    pub approval: Approval,
}

/// The decisions for one service's connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decisions {
    /// An accept, then a reject, each when there is something to decide.
    pub writes: Vec<Planned>,
    /// Something is in transition (a connection AWS is bringing up, one accepted now, or an
    /// allowed principal whose binding has not been seen yet): look again soon.
    pub busy: bool,
}

/// Decides `connections` (those of the endpoint service `service_id`) by `policy`.
pub fn decide(
    service_id: &str,
    policy: &Policy,
    claims: &[Claim],
    connections: &[&Connection],
) -> Decisions {
    let mut accept: Vec<(String, String)> = Vec::new();
    let mut reject: Vec<(String, String)> = Vec::new();
    let mut busy = false;
    for c in connections {
        if state_is(&c.state, "pending") {
            busy = true;
        }
        let approval = claims
            .iter()
            .find(|claim| claim.endpoint_id == c.endpoint_id)
            .map(|claim| claim.approval);
        let allowed = principals_allow(
            policy.allowed_principals,
            Some(policy.provider_account),
            &c.owner,
        );
        let id = c.endpoint_id.clone();
        // A live connection is decided too: AWS keeps it when a principal leaves the
        // permissions, so pld cuts it itself.
        let live = state_is(&c.state, "available");
        if !live && !state_is(&c.state, "pendingAcceptance") {
            continue;
        }
        if !allowed {
            let connected = if live { ": it is connected" } else { "" };
            reject.push((
                id,
                format!("account {} is not an allowed principal{connected}", c.owner),
            ));
        } else if approval == Some(Approval::Rejected) {
            // An operator's rejection holds whatever the policy.
            reject.push((id, "rejected by pld bindings reject".into()));
        } else if live {
            // Accepted once, and still allowed.
        } else if policy.acceptance == Acceptance::Manual {
            // Waiting for an operator until one accepts: nothing to poll for.
            if approval == Some(Approval::Accepted) {
                accept.push((id, "accepted by pld bindings accept".into()));
            }
        } else if approval.is_some() {
            accept.push((
                id,
                format!("account {} is allowed and a binding names it", c.owner),
            ));
        } else {
            // An allowed principal whose binding this agent has not seen yet.
            busy = true;
        }
    }
    let mut writes = Vec::new();
    if !accept.is_empty() {
        // Accepted connections come up as `pending`: look again soon.
        busy = true;
        writes.push(decision(service_id, accept, true));
    }
    if !reject.is_empty() {
        writes.push(decision(service_id, reject, false));
    }
    Decisions { writes, busy }
}

fn decision(service_id: &str, decided: Vec<(String, String)>, accept: bool) -> Planned {
    let why = decided
        .iter()
        .map(|(id, why)| format!("{id}: {why}"))
        .collect::<Vec<_>>()
        .join("; ");
    let service_id = service_id.to_string();
    let endpoint_ids = decided.into_iter().map(|(id, _)| id).collect();
    let call = if accept {
        Call::AcceptConnections {
            service_id,
            endpoint_ids,
        }
    } else {
        Call::RejectConnections {
            service_id,
            endpoint_ids,
        }
    };
    Planned {
        call,
        reason: Reason::Decided(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOWED: &str = "222222222222";
    const STRANGER: &str = "999999999999";

    fn conn(endpoint: &str, owner: &str, state: &str) -> Connection {
        Connection {
            service_id: "vpce-svc-1".into(),
            endpoint_id: endpoint.into(),
            owner: owner.into(),
            state: state.into(),
        }
    }

    /// The service allows the ALLOWED account.
    fn allowed() -> Vec<String> {
        vec![format!("arn:aws:iam::{ALLOWED}:root")]
    }

    fn policy(acceptance: Acceptance, principals: &[String]) -> Policy<'_> {
        Policy {
            acceptance,
            allowed_principals: principals,
            provider_account: "111111111111",
        }
    }

    fn claim(endpoint: &str, approval: Approval) -> Claim {
        Claim {
            endpoint_id: endpoint.into(),
            approval,
        }
    }

    /// Endpoints accepted, endpoints rejected, and whether to look again soon.
    type Decided = (Vec<String>, Vec<String>, bool);
    /// What, under which policy, which connection, the claims on it, and the decision.
    type Row = (&'static str, Acceptance, Connection, Vec<Claim>, Decided);

    /// (accepted, rejected, busy) for one connection under `acceptance`.
    fn one(acceptance: Acceptance, c: Connection, claims: &[Claim]) -> Decided {
        let principals = allowed();
        let d = decide(
            "vpce-svc-1",
            &policy(acceptance, &principals),
            claims,
            &[&c],
        );
        let mut accepted = Vec::new();
        let mut rejected = Vec::new();
        for w in &d.writes {
            match &w.call {
                Call::AcceptConnections { endpoint_ids, .. } => {
                    accepted.extend(endpoint_ids.clone())
                }
                Call::RejectConnections { endpoint_ids, .. } => {
                    rejected.extend(endpoint_ids.clone())
                }
                other => panic!("not a decision: {other:?}"),
            }
        }
        (accepted, rejected, d.busy)
    }

    #[test]
    fn each_policy_decides_each_kind_of_connection() {
        use Acceptance::{Auto, Manual};
        let e = || vec!["vpce-1".to_string()];
        let none: Vec<String> = Vec::new();
        let bound = [claim("vpce-1", Approval::Unspecified)];
        let rows: Vec<Row> = vec![
            (
                "auto, allowed, bound",
                Auto,
                conn("vpce-1", ALLOWED, "pendingAcceptance"),
                bound.to_vec(),
                (e(), none.clone(), true),
            ),
            (
                "auto, allowed, binding not seen yet",
                Auto,
                conn("vpce-1", ALLOWED, "pendingAcceptance"),
                vec![],
                (none.clone(), none.clone(), true),
            ),
            (
                "auto, not allowed",
                Auto,
                conn("vpce-1", STRANGER, "pendingAcceptance"),
                bound.to_vec(),
                (none.clone(), e(), false),
            ),
            (
                "manual, undecided",
                Manual,
                conn("vpce-1", ALLOWED, "pendingAcceptance"),
                bound.to_vec(),
                (none.clone(), none.clone(), false),
            ),
            (
                "manual, accepted",
                Manual,
                conn("vpce-1", ALLOWED, "pendingAcceptance"),
                vec![claim("vpce-1", Approval::Accepted)],
                (e(), none.clone(), true),
            ),
            (
                "manual, accepted but not allowed",
                Manual,
                conn("vpce-1", STRANGER, "pendingAcceptance"),
                vec![claim("vpce-1", Approval::Accepted)],
                (none.clone(), e(), false),
            ),
            (
                "manual, rejected",
                Manual,
                conn("vpce-1", ALLOWED, "pendingAcceptance"),
                vec![claim("vpce-1", Approval::Rejected)],
                (none.clone(), e(), false),
            ),
            // A connection accepted before a crash, not yet recorded: AWS brings it up.
            (
                "already accepted, coming up",
                Auto,
                conn("vpce-1", ALLOWED, "pending"),
                bound.to_vec(),
                (none.clone(), none.clone(), true),
            ),
            (
                "available",
                Auto,
                conn("vpce-1", ALLOWED, "available"),
                bound.to_vec(),
                (none.clone(), none.clone(), false),
            ),
            (
                "auto, rejected by an operator",
                Auto,
                conn("vpce-1", ALLOWED, "pendingAcceptance"),
                vec![claim("vpce-1", Approval::Rejected)],
                (none.clone(), e(), false),
            ),
            // The service stopped allowing the account after it connected: cut.
            (
                "available, no longer allowed",
                Auto,
                conn("vpce-1", STRANGER, "available"),
                bound.to_vec(),
                (none.clone(), e(), false),
            ),
            (
                "available, rejected by an operator since",
                Manual,
                conn("vpce-1", ALLOWED, "available"),
                vec![claim("vpce-1", Approval::Rejected)],
                (none.clone(), e(), false),
            ),
            // Rejected already (by a pass that stopped before it reported): nothing again.
            (
                "rejected",
                Auto,
                conn("vpce-1", STRANGER, "rejected"),
                bound.to_vec(),
                (none.clone(), none.clone(), false),
            ),
        ];
        for (what, acceptance, c, claims, expected) in rows {
            assert_eq!(one(acceptance, c, &claims), expected, "{what}");
        }
    }

    #[test]
    fn one_call_per_decision_with_each_endpoints_reason() {
        let principals = allowed();
        let policy = policy(Acceptance::Auto, &principals);
        let connections = [
            conn("vpce-1", ALLOWED, "pendingAcceptance"),
            conn("vpce-2", ALLOWED, "pendingAcceptance"),
            conn("vpce-3", STRANGER, "pendingAcceptance"),
        ];
        let claims = [
            claim("vpce-1", Approval::Unspecified),
            claim("vpce-2", Approval::Unspecified),
        ];
        let refs: Vec<&Connection> = connections.iter().collect();
        let d = decide("vpce-svc-1", &policy, &claims, &refs);
        let steps: Vec<String> = d.writes.iter().map(|w| w.step().to_string()).collect();
        assert_eq!(
            steps,
            [
                "AcceptVpcEndpointConnections vpce-1, vpce-2 to vpce-svc-1: decided: vpce-1: \
                 account 222222222222 is allowed and a binding names it; vpce-2: account \
                 222222222222 is allowed and a binding names it",
                "RejectVpcEndpointConnections vpce-3 to vpce-svc-1: decided: vpce-3: account \
                 999999999999 is not an allowed principal",
            ]
        );
    }
}
