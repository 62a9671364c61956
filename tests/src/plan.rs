//! Asking the controller for a plan, and comparing what it says with what the agents then do:
//! the helpers of the plan-and-apply agreement tests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use pld_client::Client;
use pld_cloud::limiter::Limiter;
use pld_cloud::Action;
use pld_proto::v1::{
    object, plan_request, Object, PlanConnect, PlanProblem, PlanProblemKind, PlanRegister,
    PlanRequest, PlanResponse, PlanSeverity, Service,
};

use crate::objects::agent_facts;
use crate::region::Env;
use crate::wait_until;

/// The controller's plan for `change`.
///
/// # Errors
/// The controller's refusal.
pub async fn ask(client: &Client, change: plan_request::Change) -> anyhow::Result<PlanResponse> {
    let request = PlanRequest {
        change: Some(change),
    };
    Ok(client
        .call(|mut s| {
            let request = request.clone();
            async move { s.planner().plan(request).await }
        })
        .await?)
}

/// The controller's plan for binding `service` to `vpc`.
///
/// # Errors
/// The controller's refusal.
pub async fn connect(client: &Client, service: &str, vpc: &str) -> anyhow::Result<PlanResponse> {
    ask(
        client,
        plan_request::Change::Connect(PlanConnect {
            service: service.into(),
            vpc_ids: vec![vpc.into()],
        }),
    )
    .await
}

/// The controller's plan for registering `service`.
///
/// # Errors
/// The controller's refusal.
pub async fn register(client: &Client, service: &Service) -> anyhow::Result<PlanResponse> {
    ask(
        client,
        plan_request::Change::Register(PlanRegister {
            service: Some(service.clone()),
        }),
    )
    .await
}

/// Puts `service` in the catalog, as `pld services register` does, and waits until its
/// provider's agent reports the endpoint service available.
///
/// # Errors
/// The controller's refusal, or no available endpoint service within 30 s.
pub async fn put_until_available(client: &Client, service: Service) -> anyhow::Result<()> {
    let name = service.name.clone();
    client
        .put(
            Object {
                object: Some(object::Object::Service(service)),
            },
            None,
        )
        .await?;
    wait_until(Duration::from_secs(30), "the endpoint service", || async {
        crate::objects::service_status(client, &name)
            .await
            .filter(|s| s.state.eq_ignore_ascii_case("available"))
    })
    .await?;
    Ok(())
}

/// The plan's writes for `account`, by action.
pub fn planned(plan: &PlanResponse, account: &str) -> BTreeMap<String, u64> {
    let mut by = BTreeMap::new();
    for a in plan.accounts.iter().filter(|a| a.account_id == account) {
        for step in a.vpcs.iter().flat_map(|v| &v.steps) {
            *by.entry(step.action.clone()).or_default() += 1;
        }
    }
    by
}

/// The writes `limiter`'s agent made successfully since `before`, by action.
pub fn made(
    limiter: &Arc<Limiter>,
    before: &BTreeMap<&'static str, (u64, u64)>,
) -> BTreeMap<String, u64> {
    limiter
        .stats()
        .calls
        .into_iter()
        .filter(|(a, _)| Action::named(a).is_some_and(Action::is_mutating))
        .filter_map(|(a, (ok, _))| {
            let n = ok - before.get(a).map_or(0, |(ok, _)| *ok);
            (n > 0).then(|| (a.to_string(), n))
        })
        .collect()
}

/// The plan's problems of `severity`.
pub fn problems(plan: &PlanResponse, severity: PlanSeverity) -> Vec<&PlanProblem> {
    plan.problems
        .iter()
        .filter(|p| p.severity == severity as i32)
        .collect()
}

/// The plan's only error, which must be of `kind`.
///
/// # Errors
/// When the plan has no error, more than one, or one of another kind.
pub fn only_error(plan: &PlanResponse, kind: PlanProblemKind) -> anyhow::Result<&PlanProblem> {
    let errors = problems(plan, PlanSeverity::Error);
    anyhow::ensure!(errors.len() == 1, "one error, not {:?}", plan.problems);
    anyhow::ensure!(errors[0].kind == kind as i32, "a {kind:?}: {:?}", errors[0]);
    Ok(errors[0])
}

/// Waits until both agents' facts are in the catalog and, when `service` is named, the
/// provider's endpoint service for it is available.
///
/// # Errors
/// When they are not within 20 s.
pub async fn world_ready(env: &Env, service: Option<&str>) -> anyhow::Result<()> {
    world_ready_vpc(env, &env.consumer_vpc.id, service).await
}

/// As [`world_ready`], for the consumer VPC `consumer` (one of another region, say).
///
/// # Errors
/// When they are not within 20 s.
pub async fn world_ready_vpc(
    env: &Env,
    consumer: &str,
    service: Option<&str>,
) -> anyhow::Result<()> {
    let client = env.client();
    for vpc in [env.provider_vpc.id.as_str(), consumer] {
        wait_until(Duration::from_secs(20), "an agent's facts", || async {
            agent_facts(&client, vpc).await
        })
        .await?;
    }
    if let Some(service) = service {
        wait_until(Duration::from_secs(20), "the endpoint service", || async {
            crate::objects::service_status(&client, service)
                .await
                .filter(|s| s.state.eq_ignore_ascii_case("available"))
        })
        .await?;
    }
    Ok(())
}
