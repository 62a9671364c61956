//! `pld plan`: what a change would do and every reason it would fail or be slow, answered by
//! the controller from the catalog (the facts agents reported), with no AWS call and no
//! change. Exit 0 when the plan is clean, 8 when it has errors.

use pld_proto::v1::{
    plan_request, PlanConnect, PlanDisconnect, PlanProblemKind, PlanRegister, PlanRequest,
    PlanResponse, PlanSeverity, PlanSide,
};
use serde_json::{json, Value};

use super::Context;
use crate::exit::PlanHasErrors;
use crate::output::{out, print_json, table, Format};

#[derive(clap::Subcommand)]
pub enum Command {
    /// What connecting VPCs to a service would do: the endpoint, zone and name each consumer's
    /// agent would make, the provider's acceptance, and why any of it would fail (AZ fit,
    /// principals, quota, region, a name clash) or be slow (AWS's rate buckets).
    Connect {
        /// The service, as `pld connect` takes it.
        service: String,
        /// A consumer VPC; repeat for several (their steps share each account's buckets).
        #[arg(long = "vpc", required = true)]
        vpcs: Vec<String>,
    },
    /// What registering or changing a service would do at the provider's agent, and what it
    /// means for the consumers bound to it.
    #[command(subcommand)]
    Services(ServicesPlan),
    /// What removing VPCs' bindings to a service would do: the name each consumer's agent
    /// takes down and the endpoint it deletes (which then stops billing).
    Disconnect {
        /// The service, as `pld disconnect` takes it.
        service: String,
        /// A consumer VPC; repeat for several.
        #[arg(long = "vpc", required = true)]
        vpcs: Vec<String>,
    },
}

#[derive(clap::Subcommand)]
pub enum ServicesPlan {
    /// Takes what `pld services register` takes (flags or `-f FILE`).
    Register(Box<super::services::RegisterArgs>),
    /// Takes what `pld services move` takes: each bound consumer's move (its new endpoint,
    /// checked against the new load balancer's AZs; the flip; the old endpoint's delete), and
    /// the provider's new endpoint service, accepts and retirement of the old one.
    Move(super::services::MoveTo),
}

pub async fn run(ctx: &Context, cmd: Command) -> anyhow::Result<()> {
    let change = match cmd {
        Command::Connect { service, vpcs } => {
            check_vpcs(&vpcs)?;
            plan_request::Change::Connect(PlanConnect {
                service,
                vpc_ids: vpcs,
            })
        }
        Command::Services(ServicesPlan::Register(args)) => {
            let (service, _) = super::services::service_from_args(*args)?;
            plan_request::Change::Register(PlanRegister {
                service: Some(service),
            })
        }
        Command::Services(ServicesPlan::Move(to)) => {
            let (service, _, _) = super::services::move_spec(ctx, &to).await?;
            plan_request::Change::Register(PlanRegister {
                service: Some(service),
            })
        }
        Command::Disconnect { service, vpcs } => {
            check_vpcs(&vpcs)?;
            plan_request::Change::Disconnect(PlanDisconnect {
                service,
                vpc_ids: vpcs,
            })
        }
    };
    let request = PlanRequest {
        change: Some(change),
    };
    let client = ctx.client()?;
    let plan = client
        .call(|mut s| {
            let request = request.clone();
            async move { s.planner().plan(request).await }
        })
        .await?;
    match ctx.format {
        Format::Json => print_json(&plan_json(&plan)),
        Format::Table => print_table(&plan),
    }
    let errors = plan
        .problems
        .iter()
        .filter(|p| p.severity == PlanSeverity::Error as i32)
        .count();
    if errors > 0 {
        return Err(PlanHasErrors(errors).into());
    }
    Ok(())
}

fn check_vpcs(vpcs: &[String]) -> Result<(), pld_core::validate::FieldError> {
    for vpc in vpcs {
        pld_core::validate::vpc_id("--vpc", vpc)?;
    }
    Ok(())
}

/// `PLAN_PROBLEM_KIND_AZ_FIT` → `az_fit`.
fn kind_name(kind: i32) -> String {
    PlanProblemKind::try_from(kind)
        .unwrap_or(PlanProblemKind::Unspecified)
        .as_str_name()
        .trim_start_matches("PLAN_PROBLEM_KIND_")
        .to_ascii_lowercase()
}

fn severity_name(severity: i32) -> &'static str {
    match PlanSeverity::try_from(severity) {
        Ok(PlanSeverity::Error) => "error",
        Ok(PlanSeverity::Warning) => "warning",
        _ => "note",
    }
}

fn side_name(side: i32) -> &'static str {
    match PlanSide::try_from(side) {
        Ok(PlanSide::Provider) => "provider",
        _ => "consumer",
    }
}

pub fn plan_json(plan: &PlanResponse) -> Value {
    let clean = !plan
        .problems
        .iter()
        .any(|p| p.severity == PlanSeverity::Error as i32);
    json!({
        "revision": plan.revision,
        "clean": clean,
        "accounts": plan.accounts.iter().map(|a| json!({
            "account_id": a.account_id,
            "region": a.region,
            "rate_wait_seconds": a.rate_wait_seconds,
            "vpcs": a.vpcs.iter().map(|v| json!({
                "vpc_id": v.vpc_id,
                "side": side_name(v.side),
                "steps": v.steps.iter().map(|s| json!({
                    "action": s.action,
                    "target": s.target,
                    "reason": s.reason,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "problems": plan.problems.iter().map(|p| json!({
            "severity": severity_name(p.severity),
            "kind": kind_name(p.kind),
            "account_id": p.account_id,
            "message": p.message,
        })).collect::<Vec<_>>(),
    })
}

fn print_table(plan: &PlanResponse) {
    out!("plan against catalog revision {}", plan.revision);
    for account in &plan.accounts {
        out!("");
        let wait = if account.rate_wait_seconds > 0.0 {
            format!(
                ", {:.0} s waiting on AWS's rate buckets",
                account.rate_wait_seconds
            )
        } else {
            String::new()
        };
        out!("account {} ({}){wait}", account.account_id, account.region);
        let rows: Vec<Vec<String>> = account
            .vpcs
            .iter()
            .flat_map(|v| {
                let vpc = format!("{} ({})", v.vpc_id, side_name(v.side));
                let steps: Vec<Vec<String>> = if v.steps.is_empty() {
                    vec![vec![
                        vpc.clone(),
                        "-".into(),
                        "nothing to do".into(),
                        String::new(),
                    ]]
                } else {
                    v.steps
                        .iter()
                        .map(|s| {
                            vec![
                                vpc.clone(),
                                s.action.clone(),
                                s.target.clone(),
                                s.reason.clone(),
                            ]
                        })
                        .collect()
                };
                steps
            })
            .collect();
        table(&["VPC", "ACTION", "ON", "WHY"], &rows);
    }
    out!("");
    if plan.problems.is_empty() {
        out!("no problems: the plan is clean");
        return;
    }
    table(
        &["SEVERITY", "KIND", "ACCOUNT", "PROBLEM"],
        &plan
            .problems
            .iter()
            .map(|p| {
                vec![
                    severity_name(p.severity).to_string(),
                    kind_name(p.kind),
                    p.account_id.clone(),
                    p.message.clone(),
                ]
            })
            .collect::<Vec<_>>(),
    );
}
