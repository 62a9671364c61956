//! `pld status`: the whole installation at a glance — the cluster (leader, term, members with
//! their lag), agents (alive, expired, last seen), services by state, bindings by phase with the
//! last error of the failing ones.
//!
//! Catalog objects are read with `stale` reads from whichever member answers, so the command
//! still shows what it can while the cluster has no leader (and says so).

use std::collections::BTreeMap;

use pld_proto::v1::{Agent, Binding, Kind, ListRequest, Service, StatusRequest, StatusResponse};
use serde_json::{json, Value};

use super::Context;
use crate::catalog;
use crate::output::{
    agent_state_name, binding_json, node_status_json, out, print_json, table, Format,
};

struct Picture {
    cluster: StatusResponse,
    agents: Vec<Agent>,
    services: Vec<Service>,
    bindings: Vec<Binding>,
}

async fn stale_list(ctx: &Context, kind: Kind) -> anyhow::Result<Vec<pld_proto::v1::Object>> {
    catalog::list(
        ctx,
        ListRequest {
            kind: kind as i32,
            stale: true,
            ..Default::default()
        },
    )
    .await
}

fn count<'a>(items: impl Iterator<Item = String> + 'a) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for item in items {
        *by.entry(item).or_default() += 1;
    }
    by
}

fn summary(by: &BTreeMap<String, usize>) -> String {
    if by.is_empty() {
        return "none".into();
    }
    by.iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn run(ctx: &Context) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let cluster = client
        .call(|mut s| async move { s.cluster().status(StatusRequest {}).await })
        .await?;
    let picture = Picture {
        cluster,
        agents: catalog::agents(stale_list(ctx, Kind::Agent).await?),
        services: catalog::services(stale_list(ctx, Kind::Service).await?),
        bindings: catalog::bindings(stale_list(ctx, Kind::Binding).await?),
    };
    match ctx.format {
        Format::Json => print_json(&to_json(&picture)),
        Format::Table => print_tables(&picture),
    }
    Ok(())
}

fn leader_commit(c: &StatusResponse) -> Option<u64> {
    c.members
        .iter()
        .find(|m| m.id == c.leader_id && m.error.is_empty())
        .map(|m| m.commit_index)
}

fn to_json(p: &Picture) -> Value {
    let commit = leader_commit(&p.cluster);
    let members: Vec<Value> = p
        .cluster
        .members
        .iter()
        .map(|m| {
            let mut v = node_status_json(m);
            v["lag"] = match (commit, m.error.is_empty()) {
                (Some(c), true) => json!(c.saturating_sub(m.applied_index)),
                _ => Value::Null,
            };
            v
        })
        .collect();
    let states = count(
        p.agents
            .iter()
            .map(|a| agent_state_name(a.state).to_string()),
    );
    json!({
        "cluster": {
            "id": p.cluster.cluster_id,
            "leader_id": p.cluster.leader_id,
            "term": p.cluster.members.iter().map(|m| m.term).max().unwrap_or(0),
            "members": members,
        },
        "agents": {
            "alive": states.get("alive").copied().unwrap_or(0),
            "expired": states.get("expired").copied().unwrap_or(0),
            "items": p.agents.iter().map(|a| json!({
                "vpc_id": a.vpc_id,
                "account_id": a.account_id,
                "state": agent_state_name(a.state),
                "last_seen_unix_ms": a.last_seen_unix_ms,
            })).collect::<Vec<_>>(),
        },
        "services": {
            "total": p.services.len(),
            "by_state": count(p.services.iter().map(catalog::service_state)),
        },
        "bindings": {
            "total": p.bindings.len(),
            "by_phase": count(p.bindings.iter().map(catalog::binding_phase)),
            "failing": p.bindings.iter().filter(|b| catalog::binding_failing(b)).map(binding_json).collect::<Vec<_>>(),
        },
    })
}

fn print_tables(p: &Picture) {
    let c = &p.cluster;
    let term = c.members.iter().map(|m| m.term).max().unwrap_or(0);
    if c.leader_id == 0 {
        out!("CLUSTER   no leader (term {term}): writes and linearizable reads fail until a majority is back");
    } else {
        out!(
            "CLUSTER   {} · leader {} · term {term} · {} members",
            if c.cluster_id.is_empty() {
                "(no id yet)"
            } else {
                c.cluster_id.as_str()
            },
            c.leader_id,
            c.members.len()
        );
    }
    let commit = leader_commit(c);
    let rows: Vec<Vec<String>> = c
        .members
        .iter()
        .map(|m| {
            if !m.error.is_empty() {
                let mut row = vec![m.id.to_string(), m.address.clone(), "unreachable".into()];
                row.extend(std::iter::repeat_n(String::new(), 4));
                row.push(m.error.clone());
                return row;
            }
            vec![
                m.id.to_string(),
                m.address.clone(),
                m.role.clone(),
                m.term.to_string(),
                m.commit_index.to_string(),
                m.applied_index.to_string(),
                commit
                    .map(|c| c.saturating_sub(m.applied_index).to_string())
                    .unwrap_or_default(),
                format!("revision {}", m.revision),
            ]
        })
        .collect();
    table(
        &[
            "ID", "ADDRESS", "ROLE", "TERM", "COMMIT", "APPLIED", "LAG", "NOTE",
        ],
        &rows,
    );

    out!("");
    let states = count(
        p.agents
            .iter()
            .map(|a| agent_state_name(a.state).to_string()),
    );
    out!("AGENTS    {}", summary(&states));
    if !p.agents.is_empty() {
        table(
            &["VPC", "ACCOUNT", "STATE", "LAST SEEN"],
            &p.agents
                .iter()
                .map(|a| {
                    vec![
                        a.vpc_id.clone(),
                        a.account_id.clone(),
                        agent_state_name(a.state).to_string(),
                        catalog::ago(a.last_seen_unix_ms),
                    ]
                })
                .collect::<Vec<_>>(),
        );
    }

    out!("");
    out!(
        "SERVICES  {}",
        summary(&count(p.services.iter().map(catalog::service_state)))
    );
    out!(
        "BINDINGS  {}",
        summary(&count(p.bindings.iter().map(catalog::binding_phase)))
    );
    let failing: Vec<&Binding> = p
        .bindings
        .iter()
        .filter(|b| catalog::binding_failing(b))
        .collect();
    if !failing.is_empty() {
        out!("");
        out!("FAILING BINDINGS (see `pld bindings get SERVICE --vpc VPC`)");
        table(
            &["SERVICE", "VPC", "PHASE", "LAST ERROR"],
            &failing
                .iter()
                .map(|b| {
                    vec![
                        b.service.clone(),
                        b.consumer_vpc_id.clone(),
                        catalog::binding_phase(b),
                        b.status
                            .as_ref()
                            .map(|s| s.message.clone())
                            .unwrap_or_default(),
                    ]
                })
                .collect::<Vec<_>>(),
        );
    }
}
