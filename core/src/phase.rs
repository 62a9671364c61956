//! The phases a binding goes through, as one type shared by the agent (which reports them), the
//! host API and DNS responder (which answer by them) and the CLI (which filters and waits on
//! them). On the wire a phase is its name (`BindingStatus.phase`), so readers that predate this
//! type keep working, and serde writes the same name.

use std::fmt;
use std::str::FromStr;

/// Where a binding is on its way to a usable endpoint.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// The service is not registered yet, or its provider has not created its endpoint
    /// service yet.
    Waiting,
    /// The endpoint is being created.
    Creating,
    /// The provider has not accepted the connection yet.
    PendingAcceptance,
    /// AWS is bringing the accepted endpoint up (also the CLI's name for a binding whose agent
    /// has not reported yet).
    Pending,
    /// The name is submitted to Route 53 and not yet in sync everywhere.
    Publishing,
    /// The name resolves to an available endpoint.
    Ready,
    /// The service moved to another endpoint service: the name keeps resolving to an available
    /// endpoint (the old one until the new one is available, then the new one) while the
    /// binding's agent makes the new endpoint, points the name at it and, once resolvers can
    /// no longer hold the old answer, deletes the old one. `BindingStatus.migration` says
    /// which step.
    Migrating,
    /// The provider rejected the connection.
    Rejected,
    /// Something needs an operator: the status message says what.
    Failed,
}

impl Phase {
    /// Every phase, in the order a binding normally goes through them.
    pub const ALL: [Phase; 9] = [
        Phase::Waiting,
        Phase::Creating,
        Phase::PendingAcceptance,
        Phase::Pending,
        Phase::Publishing,
        Phase::Ready,
        Phase::Migrating,
        Phase::Rejected,
        Phase::Failed,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Creating => "creating",
            Phase::PendingAcceptance => "pendingAcceptance",
            Phase::Pending => "pending",
            Phase::Publishing => "publishing",
            Phase::Ready => "ready",
            Phase::Migrating => "migrating",
            Phase::Rejected => "rejected",
            Phase::Failed => "failed",
        }
    }

    /// The phase a status reports; `None` for an empty or unknown name (an agent newer than
    /// this reader).
    pub fn of(name: &str) -> Option<Phase> {
        name.parse().ok()
    }

    /// Waiting longer will not change it without an operator or a catalog change.
    pub fn is_settled(self) -> bool {
        matches!(self, Phase::Ready | Phase::Rejected | Phase::Failed)
    }

    /// The binding's name answers with an available endpoint: what the DNS responder and the
    /// host API answer with, and what `pld connect` waits for.
    pub fn serves(self) -> bool {
        matches!(self, Phase::Ready | Phase::Migrating)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A phase name that is not one of [`Phase::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown phase {0:?}; phases are waiting, creating, pendingAcceptance, pending, publishing, ready, migrating, rejected, failed")]
pub struct UnknownPhase(pub String);

impl FromStr for Phase {
    type Err = UnknownPhase;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Phase::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPhase(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_display_parse_and_serde() {
        for p in Phase::ALL {
            assert_eq!(p.to_string().parse::<Phase>(), Ok(p));
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{p}\""));
            assert_eq!(serde_json::from_str::<Phase>(&json).unwrap(), p);
        }
    }

    #[test]
    fn unknown_and_empty_names_are_refused() {
        assert!("Ready".parse::<Phase>().is_err());
        assert_eq!(Phase::of(""), None);
        assert!(serde_json::from_str::<Phase>("\"ready \"").is_err());
    }

    #[test]
    fn only_ready_rejected_and_failed_are_settled() {
        let settled: Vec<Phase> = Phase::ALL.into_iter().filter(|p| p.is_settled()).collect();
        assert_eq!(settled, [Phase::Ready, Phase::Rejected, Phase::Failed]);
    }

    #[test]
    fn only_ready_and_migrating_serve() {
        let serving: Vec<Phase> = Phase::ALL.into_iter().filter(|p| p.serves()).collect();
        assert_eq!(serving, [Phase::Ready, Phase::Migrating]);
    }
}
