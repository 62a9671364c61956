//! The pure half of reconciling: what makes a resource pld's ([`ownership`]: tags, owners,
//! client tokens, hosted zone claims) and the planners, which take what should be and what was
//! observed and return the writes that close the gap as [`Step`]s, each with a [`Reason`] a
//! person can read ([`records`]: the record changes that publish names without taking one pld
//! does not own). No I/O: the agent observes and calls AWS around these, and the controller can
//! run them too (for `pld plan`), since it depends on core and never on the agent.

pub mod builtin;
pub mod connections;
pub mod endpoint;
pub mod front;
pub mod moves;
pub mod ownership;
pub mod placement;
pub mod preview;
pub mod records;
pub mod regions;
pub mod report;
pub mod service;
pub mod target;
pub mod zone;

use std::fmt;

use crate::aws::{Action, Call};

/// A fact a planner needs, as far as the caller knows it. The agent knows what it asked AWS;
/// `pld plan` in the controller knows only what agents reported, and a planner given an
/// unknown fact says so rather than guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen<T> {
    Known(T),
    /// Not known, and why (the error AWS gave, or "checked by the agent").
    Unknown(String),
}

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
    /// Its catalog object is still there but no longer wants it: why, in words.
    Unwanted(String),
    /// A decision by the service's policy or an operator (accepting or rejecting a
    /// connection): which and why, in words.
    Decided(String),
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
            Reason::Unwanted(why) => write!(f, "no longer wanted: {why}"),
            Reason::Decided(why) => write!(f, "decided: {why}"),
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

/// A write a planner decided on: the call to make and why. Its [`Step`] is how it is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub call: Call,
    pub reason: Reason,
}

impl Planned {
    /// The call as a step a person reads (and a status report carries).
    pub fn step(&self) -> Step {
        Step {
            action: self.call.action(),
            target: self.call.target(),
            reason: self.reason.clone(),
        }
    }
}
