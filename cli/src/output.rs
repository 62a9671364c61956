//! Output for people (aligned tables) and scripts (JSON with a stable schema: field names as in
//! the .proto, snake_case, enums as lowercase words).

use pld_proto::v1::{
    object, Acceptance, Agent, AgentState, Approval, Binding, BindingMigration, Event, EventType,
    Kind, Meta, NodeStatus, Object, PlannedStep, Service, VpcFacts,
};
use serde_json::{json, Value};

/// Prints a line of results to stdout. When stdout is closed (`pld services list | head -1`)
/// the command has nothing left to say: it exits quietly with success, where `println!` would
/// panic.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*), true)
    };
}

/// Prints a line to stdout for a long-running command (`pld dev`), which keeps running when
/// nobody reads its stdout any more.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*), false)
    };
}

pub(crate) use {out, say};

/// Writes one line to stdout; see [`out!`] and [`say!`].
pub fn line(args: std::fmt::Arguments<'_>, exit_when_closed: bool) {
    use std::io::Write as _;
    let written = writeln!(std::io::stdout().lock(), "{args}");
    if let Err(e) = written {
        if exit_when_closed && e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Prints rows as a table with a header, columns padded to the widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Prints a JSON value, pretty.
pub fn print_json(v: &Value) {
    out!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

pub fn acceptance_name(a: i32) -> &'static str {
    match Acceptance::try_from(a) {
        Ok(Acceptance::Manual) => "manual",
        _ => "auto",
    }
}

pub fn kind_name(k: i32) -> &'static str {
    match Kind::try_from(k) {
        Ok(k) => pld_core::catalog::kind_name(k),
        Err(_) => "object",
    }
}

fn meta_json(m: &Option<Meta>) -> Value {
    let m = m.unwrap_or_default();
    json!({"create_revision": m.create_revision, "mod_revision": m.mod_revision, "version": m.version})
}

pub fn service_json(s: &Service) -> Value {
    let status = s.status.clone().unwrap_or_default();
    json!({
        "name": s.name,
        "vpc_id": s.vpc_id,
        "load_balancer_arn": s.load_balancer_arn,
        "ports": s.ports,
        "acceptance": acceptance_name(s.acceptance),
        "allowed_principals": s.allowed_principals,
        "description": s.description,
        "regions": s.regions,
        "health_check": s.health_check.as_ref().map(|h| json!({
            "protocol": match pld_proto::v1::HealthCheckProtocol::try_from(h.protocol) {
                Ok(pld_proto::v1::HealthCheckProtocol::Http) => "HTTP",
                Ok(pld_proto::v1::HealthCheckProtocol::Https) => "HTTPS",
                _ => "",
            },
            "path": h.path,
            "matcher": h.matcher,
        })),
        "meta": meta_json(&s.meta),
        "status": {
            "state": status.state,
            "endpoint_service_name": status.endpoint_service_name,
            "az_ids": status.az_ids,
            "message": status.message,
            "pending": pending_json(&status.pending),
            "load_balancer_arns": status.load_balancer_arns,
            "regions": status.regions.iter().map(|r| json!({
                "region": r.region,
                "state": r.state,
            })).collect::<Vec<_>>(),
            "retiring": status.retiring.iter().map(|r| json!({
                "endpoint_service_name": r.endpoint_service_name,
                "load_balancer_arns": r.load_balancer_arns,
                "connections": r.connections,
                "grace_ends_unix_ms": r.grace_ends_unix_ms,
            })).collect::<Vec<_>>(),
            "alb_front": status.alb_front.as_ref().map(|f| json!({
                "load_balancer_arn": f.load_balancer_arn,
                "state": f.state,
                "ports": f.ports.iter().map(|p| json!({
                    "port": p.port,
                    "listener_arn": p.listener_arn,
                    "target_group_arn": p.target_group_arn,
                    "alb_health": p.alb_health,
                    "alb_health_reason": p.alb_health_reason,
                    "alb_targets_healthy": p.alb_targets_healthy,
                    "alb_targets": p.alb_targets,
                })).collect::<Vec<_>>(),
            })),
        },
    })
}

/// Pending steps as `{action, target, reason}` objects.
fn pending_json(steps: &[PlannedStep]) -> Value {
    Value::Array(
        steps
            .iter()
            .map(|s| json!({"action": s.action, "target": s.target, "reason": s.reason}))
            .collect(),
    )
}

/// Prints pending steps under a `get`'s details, the first line labelled `pending:` in a
/// column `width` wide.
pub fn print_pending(steps: &[PlannedStep], width: usize) {
    for (i, step) in steps.iter().enumerate() {
        let label = if i == 0 { "pending:" } else { "" };
        out!(
            "{label:<width$}{} {}: {}",
            step.action,
            step.target,
            step.reason
        );
    }
}

pub fn approval_name(a: i32) -> &'static str {
    match Approval::try_from(a) {
        Ok(Approval::Accepted) => "accepted",
        Ok(Approval::Rejected) => "rejected",
        _ => "undecided",
    }
}

pub fn binding_json(b: &Binding) -> Value {
    let status = b.status.clone().unwrap_or_default();
    json!({
        "service": b.service,
        "consumer_vpc_id": b.consumer_vpc_id,
        "approval": approval_name(b.approval),
        "meta": meta_json(&b.meta),
        "status": {
            "phase": status.phase,
            "endpoint_id": status.endpoint_id,
            "dns_name": status.dns_name,
            "addresses": status.addresses,
            "message": status.message,
            "pending": pending_json(&status.pending),
            "migration": status.migration.as_ref().map(migration_json).unwrap_or(Value::Null),
        },
    })
}

/// A binding's move to its service's new endpoint service; `null` when it is not moving.
pub fn migration_json(m: &BindingMigration) -> Value {
    json!({
        "from_endpoint_id": m.from_endpoint_id,
        "to_endpoint_id": m.to_endpoint_id,
        "step": m.step,
    })
}

/// A binding's move in words: `vpce-old -> vpce-new (flipping)`.
pub fn migration_line(m: &BindingMigration) -> String {
    let to = if m.to_endpoint_id.is_empty() {
        "(not created yet)"
    } else {
        &m.to_endpoint_id
    };
    format!("{} -> {to} ({})", m.from_endpoint_id, m.step)
}

pub fn agent_state_name(s: i32) -> &'static str {
    match AgentState::try_from(s) {
        Ok(AgentState::Alive) => "alive",
        Ok(AgentState::Expired) => "expired",
        _ => "unknown",
    }
}

pub fn agent_json(a: &Agent) -> Value {
    json!({
        "vpc_id": a.vpc_id,
        "account_id": a.account_id,
        "region": a.region,
        "address": a.address,
        "host_api_tls": a.host_api_tls,
        "lease_ttl_seconds": a.lease_ttl_seconds,
        "state": agent_state_name(a.state),
        "last_seen_unix_ms": a.last_seen_unix_ms,
        "lease_expires_unix_ms": a.lease_expires_unix_ms,
        "facts": a.facts.as_ref().map(facts_json),
        "meta": meta_json(&a.meta),
    })
}

/// What an agent reported of its VPC.
pub fn facts_json(f: &VpcFacts) -> Value {
    json!({
        "ipv4_cidrs": f.ipv4_cidrs,
        "ipv6_cidrs": f.ipv6_cidrs,
        "subnets": f.subnets.iter().map(|s| json!({
            "id": s.id,
            "cidr": s.cidr,
            "az_id": s.az_id,
            "az_name": s.az_name,
            "ipv6_cidr": s.ipv6_cidr,
        })).collect::<Vec<_>>(),
        "route_tables": f.route_tables.iter().map(|t| json!({
            "id": t.id,
            "main": t.main,
            "subnet_ids": t.subnet_ids,
            "routes": t.routes,
        })).collect::<Vec<_>>(),
        "endpoints": f.endpoints,
        "endpoint_quota": f.endpoint_quota,
        "quota_note": f.quota_note,
        "truncated": f.truncated,
        "observed_unix_ms": f.observed_unix_ms,
    })
}

pub fn object_json(o: &Object) -> Value {
    match &o.object {
        Some(object::Object::Service(s)) => service_json(s),
        Some(object::Object::Binding(b)) => binding_json(b),
        Some(object::Object::Agent(a)) => agent_json(a),
        None => Value::Null,
    }
}

pub fn event_type_name(t: i32) -> &'static str {
    match EventType::try_from(t) {
        Ok(EventType::Put) => "put",
        Ok(EventType::Delete) => "delete",
        _ => "unknown",
    }
}

pub fn event_json(e: &Event) -> Value {
    json!({
        "revision": e.revision,
        "type": event_type_name(e.r#type),
        "kind": kind_name(e.kind),
        "key": e.key,
        "object": e.object.as_ref().map(object_json).unwrap_or(Value::Null),
    })
}

pub fn node_status_json(n: &NodeStatus) -> Value {
    json!({
        "id": n.id,
        "address": n.address,
        "role": n.role,
        "term": n.term,
        "leader_id": n.leader_id,
        "commit_index": n.commit_index,
        "applied_index": n.applied_index,
        "last_index": n.last_index,
        "revision": n.revision,
        "snapshot_index": n.snapshot_index,
        "error": n.error,
    })
}
