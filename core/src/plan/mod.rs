//! The pure half of reconciling: what makes a resource pld's ([`ownership`]: tags, owners,
//! client tokens, hosted zone claims) and the planners, which take what should be and what was
//! observed and return the writes that close the gap as [`Step`]s, each with a [`Reason`] a
//! person can read ([`records`]: the record changes that publish names without taking one pld
//! does not own). No I/O: the agent observes and calls AWS around these, and the controller can
//! run them too (for `pld plan`), since it depends on core and never on the agent.

pub mod ownership;
pub mod records;

use std::fmt;

use crate::aws::Action;

/// Why a step is planned. It explains; what a step does is its [`Action`], and nothing that
/// runs steps branches on the reason (Terraform keeps the same rule for its action reasons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// It should exist and does not.
    Missing,
    /// It exists and differs from what should be: what differs, in words.
    Drift(String),
    /// pld made it for a catalog object that is gone.
    Orphan,
    /// It looks right, but a restart lost the proof that AWS finished applying it (a Route 53
    /// change not seen INSYNC): written again to get something to wait on.
    Unconfirmed,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Missing => f.write_str("missing"),
            Reason::Drift(what) => write!(f, "differs: {what}"),
            Reason::Orphan => f.write_str("its catalog object is gone"),
            Reason::Unconfirmed => {
                f.write_str("not seen in sync since the agent started: written again to confirm")
            }
        }
    }
}

/// One planned write: which AWS operation, on what, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    /// What the operation acts on, as a person would name it (a DNS name, an endpoint id).
    pub target: String,
    pub reason: Reason,
}

impl Step {
    /// The step as a status report and `pld plan` carry it.
    pub fn to_proto(&self) -> pld_proto::v1::PlannedStep {
        pld_proto::v1::PlannedStep {
            action: self.action.to_string(),
            target: self.target.clone(),
            reason: self.reason.to_string(),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.action, self.target, self.reason)
    }
}
