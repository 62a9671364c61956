//! Typed catalog reads shared by the subcommands.

use pld_core::Phase;
use pld_proto::v1::{object, Agent, Binding, Kind, ListRequest, Object, Service};

use crate::cmd::Context;

/// Lists objects matching `req` (linearizable unless `req.stale`).
pub async fn list(ctx: &Context, req: ListRequest) -> anyhow::Result<Vec<Object>> {
    Ok(ctx.client()?.list(req).await?.objects)
}

/// Every object of `kind` (linearizable).
pub async fn list_all(ctx: &Context, kind: Kind) -> anyhow::Result<Vec<Object>> {
    list(
        ctx,
        ListRequest {
            kind: kind as i32,
            ..Default::default()
        },
    )
    .await
}

/// Reads one object; a missing one is an error that names it (exit code 3).
pub async fn get(ctx: &Context, kind: Kind, key: &str) -> anyhow::Result<Object> {
    ctx.client()?.get(kind, key).await?.ok_or_else(|| {
        anyhow::Error::new(pld_client::ClientError::Status(tonic::Status::not_found(
            format!("{} {key:?} not found", pld_core::catalog::kind_name(kind)),
        )))
    })
}

pub fn services(objects: Vec<Object>) -> Vec<Service> {
    objects
        .into_iter()
        .filter_map(|o| match o.object? {
            object::Object::Service(s) => Some(s),
            _ => None,
        })
        .collect()
}

pub fn bindings(objects: Vec<Object>) -> Vec<Binding> {
    objects
        .into_iter()
        .filter_map(|o| match o.object? {
            object::Object::Binding(b) => Some(b),
            _ => None,
        })
        .collect()
}

pub fn agents(objects: Vec<Object>) -> Vec<Agent> {
    objects
        .into_iter()
        .filter_map(|o| match o.object? {
            object::Object::Agent(a) => Some(a),
            _ => None,
        })
        .collect()
}

/// A service's state as people read it: its reported state, or `registered` before its agent
/// has reported.
pub fn service_state(s: &Service) -> String {
    s.status
        .as_ref()
        .map(|st| st.state.clone())
        .filter(|st| !st.is_empty())
        .unwrap_or_else(|| "registered".into())
}

/// A binding's phase, `pending` before its agent has reported.
pub fn binding_phase(b: &Binding) -> String {
    b.status
        .as_ref()
        .map(|st| st.phase.clone())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "pending".into())
}

/// Whether a binding is failing: failed, or held up with an error message.
pub fn binding_failing(b: &Binding) -> bool {
    let phase = Phase::of(&binding_phase(b));
    let message = b.status.as_ref().map_or("", |s| s.message.as_str());
    phase == Some(Phase::Failed)
        || (!message.is_empty() && !matches!(phase, Some(Phase::Ready | Phase::Rejected)))
}

/// A unix-milliseconds time relative to now: "4s ago", "3m ago", "in 12s"; "never" for 0.
pub fn ago(unix_ms: u64) -> String {
    if unix_ms == 0 {
        return "never".into();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let span = |secs: u64| match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    };
    if unix_ms > now {
        format!("in {}", span((unix_ms - now) / 1000))
    } else {
        format!("{} ago", span((now - unix_ms) / 1000))
    }
}
