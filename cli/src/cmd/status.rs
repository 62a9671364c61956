//! `pld status`: every member's raft state at a glance.

use pld_proto::v1::StatusRequest;
use serde_json::json;

use super::Context;
use crate::output::{node_status_json, print_json, table, Format};

pub async fn run(ctx: &Context) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let status = client
        .call(|mut s| async move { s.cluster().status(StatusRequest {}).await })
        .await?;
    match ctx.format {
        Format::Json => print_json(&json!({
            "leader_id": status.leader_id,
            "members": status.members.iter().map(node_status_json).collect::<Vec<_>>(),
        })),
        Format::Table => {
            let leader_commit = status
                .members
                .iter()
                .find(|m| m.id == status.leader_id)
                .map(|m| m.commit_index);
            let rows: Vec<Vec<String>> = status
                .members
                .iter()
                .map(|m| {
                    if !m.error.is_empty() {
                        return vec![
                            m.id.to_string(),
                            m.address.clone(),
                            "unreachable".into(),
                            String::new(),
                            String::new(),
                            String::new(),
                            String::new(),
                            m.error.clone(),
                        ];
                    }
                    let lag = leader_commit
                        .map(|c| c.saturating_sub(m.applied_index).to_string())
                        .unwrap_or_default();
                    vec![
                        m.id.to_string(),
                        m.address.clone(),
                        m.role.clone(),
                        m.term.to_string(),
                        m.commit_index.to_string(),
                        m.applied_index.to_string(),
                        lag,
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
        }
    }
    Ok(())
}
