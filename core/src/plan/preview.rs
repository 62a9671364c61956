//! `pld plan`: what the agents would do for a change to the catalog, and every reason it would
//! fail or be slow, from the catalog alone — services and their status, bindings, and the
//! facts each agent reported of its VPC ([`crate::facts`]) — without any AWS call.
//!
//! It is not a second model of the agents: each change runs the agents' own planners
//! ([`super::endpoint`], [`super::connections`], [`super::zone`], [`super::records`]) on an
//! observed state built from the reported facts, and the problems are the planners' refusals,
//! named by kind, plus what only the whole catalog shows (an account's rate buckets, the
//! provider's side, AZ names per account).

mod connect;
mod disconnect;
mod front;
mod moving;
mod register;
pub mod seen;

use std::collections::BTreeMap;

use pld_proto::v1::{
    AccountPlan, PlanProblem, PlanProblemKind, PlanResponse, PlanSeverity, PlanSide, VpcPlan,
};

use super::Step;
use crate::aws::{Action, ApiClass};

pub use connect::connect;
pub use disconnect::disconnect;
pub use register::register;

/// Most VPCs one plan takes.
pub const MAX_PLAN_VPCS: usize = 1000;

/// Which side of a service a VPC is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Provider,
    Consumer,
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Applying the change leaves a failed binding or service.
    Error,
    /// It works, slowly or only after someone acts.
    Warning,
    /// Worth knowing.
    Note,
}

/// What kind of problem: the proto's [`PlanProblemKind`], as a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    AzFit,
    PrincipalNotAllowed,
    AcceptanceManual,
    QuotaReached,
    RegionNotOffered,
    NameClash,
    Rate,
    UnknownVpc,
    ProviderNotReady,
    NoChange,
    Refused,
}

/// One reason the change would fail or be slow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub kind: ProblemKind,
    /// The account it concerns, when one.
    pub account: String,
    pub message: String,
}

/// The steps of one VPC's agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcSteps {
    pub vpc_id: String,
    pub side: Side,
    pub steps: Vec<Step>,
}

/// A plan: per account and region, each VPC's steps; and the problems.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preview {
    /// (account, region) → its VPCs' steps, in the order they were planned.
    pub accounts: BTreeMap<(String, String), Vec<VpcSteps>>,
    pub problems: Vec<Problem>,
}

/// A change the plan cannot be made for at all: bad input, not a finding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreviewError {
    /// Neither in the catalog nor an AWS service pld knows.
    #[error("service {0:?} is neither in the catalog nor an AWS service pld knows (s3, dynamodb, aws-NAME)")]
    UnknownService(String),
    #[error("invalid plan request: {0}")]
    Invalid(String),
}

impl Preview {
    fn problem(&mut self, severity: Severity, kind: ProblemKind, account: &str, message: String) {
        self.problems.push(Problem {
            severity,
            kind,
            account: account.to_string(),
            message,
        });
    }

    fn steps(&mut self, account: &str, region: &str, vpc_id: &str, side: Side, steps: Vec<Step>) {
        let vpcs = self
            .accounts
            .entry((account.to_string(), region.to_string()))
            .or_default();
        match vpcs
            .iter_mut()
            .find(|v| v.vpc_id == vpc_id && v.side == side)
        {
            Some(v) => v.steps.extend(steps),
            None => vpcs.push(VpcSteps {
                vpc_id: vpc_id.to_string(),
                side,
                steps,
            }),
        }
    }

    /// Whether applying the change would work: no problem is an error.
    pub fn is_clean(&self) -> bool {
        self.problems.iter().all(|p| p.severity != Severity::Error)
    }

    /// How long `account`'s steps in `region` wait on AWS's rate buckets.
    pub fn rate_wait(&self, account: &str, region: &str) -> f64 {
        self.accounts
            .get(&(account.to_string(), region.to_string()))
            .map_or(0.0, |vpcs| {
                rate_wait(vpcs.iter().flat_map(|v| v.steps.iter().map(|s| s.action)))
            })
    }

    /// Adds a [`ProblemKind::Rate`] warning for each account whose steps outrun a bucket.
    fn check_rates(&mut self) {
        let mut slow = Vec::new();
        for ((account, region), vpcs) in &self.accounts {
            let mut calls: BTreeMap<ApiClass, Vec<Action>> = BTreeMap::new();
            for step in vpcs.iter().flat_map(|v| &v.steps) {
                calls
                    .entry(step.action.bucket())
                    .or_default()
                    .push(step.action);
            }
            for (class, actions) in calls {
                let n = actions.len();
                let wait = bucket_wait(class, n);
                if wait > 0.0 {
                    let (burst, rate) = class.aws_rate();
                    let mut names: Vec<&str> = actions.iter().map(|a| a.name()).collect();
                    names.dedup();
                    slow.push((
                        account.clone(),
                        format!(
                            "{n} {} calls in {region} wait {wait:.0} s for AWS's {} bucket \
                             (a burst of {burst}, then {rate}/s)",
                            names.join("/"),
                            class.name()
                        ),
                    ));
                }
            }
        }
        for (account, message) in slow {
            self.problem(Severity::Warning, ProblemKind::Rate, &account, message);
        }
    }

    /// The plan as the Planner service answers it, against catalog `revision`.
    pub fn to_proto(&self, revision: u64) -> PlanResponse {
        PlanResponse {
            accounts: self
                .accounts
                .iter()
                .map(|((account, region), vpcs)| AccountPlan {
                    account_id: account.clone(),
                    region: region.clone(),
                    vpcs: vpcs
                        .iter()
                        .map(|v| VpcPlan {
                            vpc_id: v.vpc_id.clone(),
                            side: match v.side {
                                Side::Provider => PlanSide::Provider,
                                Side::Consumer => PlanSide::Consumer,
                            } as i32,
                            steps: v.steps.iter().map(Step::to_proto).collect(),
                        })
                        .collect(),
                    rate_wait_seconds: self.rate_wait(account, region),
                })
                .collect(),
            problems: self.problems.iter().map(problem_proto).collect(),
            revision,
        }
    }
}

fn problem_proto(p: &Problem) -> PlanProblem {
    PlanProblem {
        severity: match p.severity {
            Severity::Error => PlanSeverity::Error,
            Severity::Warning => PlanSeverity::Warning,
            Severity::Note => PlanSeverity::Note,
        } as i32,
        kind: match p.kind {
            ProblemKind::AzFit => PlanProblemKind::AzFit,
            ProblemKind::PrincipalNotAllowed => PlanProblemKind::PrincipalNotAllowed,
            ProblemKind::AcceptanceManual => PlanProblemKind::AcceptanceManual,
            ProblemKind::QuotaReached => PlanProblemKind::QuotaReached,
            ProblemKind::RegionNotOffered => PlanProblemKind::RegionNotOffered,
            ProblemKind::NameClash => PlanProblemKind::NameClash,
            ProblemKind::Rate => PlanProblemKind::Rate,
            ProblemKind::UnknownVpc => PlanProblemKind::UnknownVpc,
            ProblemKind::ProviderNotReady => PlanProblemKind::ProviderNotReady,
            ProblemKind::NoChange => PlanProblemKind::NoChange,
            ProblemKind::Refused => PlanProblemKind::Refused,
        } as i32,
        account_id: p.account.clone(),
        message: p.message.clone(),
    }
}

/// The catalog's service `service` (`None` for a built-in AWS service) for a plan of its
/// bindings in `vpc_ids`, once the request is checked.
///
/// # Errors
/// An unknown service, or a VPC list that is empty, too long or not VPC ids.
fn service_for<'a>(
    catalog: &'a crate::catalog::Catalog,
    service: &str,
    vpc_ids: &[String],
) -> Result<Option<&'a pld_proto::v1::Service>, PreviewError> {
    if vpc_ids.is_empty() || vpc_ids.len() > MAX_PLAN_VPCS {
        return Err(PreviewError::Invalid(format!(
            "between 1 and {MAX_PLAN_VPCS} VPCs, not {}",
            vpc_ids.len()
        )));
    }
    for vpc in vpc_ids {
        crate::validate::vpc_id("vpc_ids", vpc)
            .map_err(|e| PreviewError::Invalid(e.to_string()))?;
    }
    let svc = catalog.service(service);
    if svc.is_none() && !super::builtin::is_builtin(service) {
        return Err(PreviewError::UnknownService(service.to_string()));
    }
    Ok(svc)
}

/// Seconds `n` calls of `class` wait for tokens, starting from a full bucket: those beyond the
/// burst come at the refill rate.
pub fn bucket_wait(class: ApiClass, n: usize) -> f64 {
    let (burst, rate) = class.aws_rate();
    let beyond = (n as f64 - burst).max(0.0);
    beyond / rate
}

/// Seconds a sequence of calls waits on its buckets: one agent makes its calls one after
/// another, so each bucket's wait adds to the others'.
pub fn rate_wait(actions: impl IntoIterator<Item = Action>) -> f64 {
    let mut counts: BTreeMap<ApiClass, usize> = BTreeMap::new();
    for a in actions {
        *counts.entry(a.bucket()).or_default() += 1;
    }
    counts.into_iter().map(|(c, n)| bucket_wait(c, n)).sum()
}

#[cfg(test)]
mod tests;
