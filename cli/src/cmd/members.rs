//! `pld members list|add|remove`.

use pld_proto::v1::{AddMemberRequest, ListMembersRequest, Member, RemoveMemberRequest};
use serde_json::json;

use super::Context;
use crate::output::{out, print_json, table, Format};

#[derive(clap::Subcommand)]
pub enum Command {
    /// List members and the leader.
    List,
    /// Add a voting member; then start it with `pld controller --join`.
    Add {
        /// Raft id of the new member.
        id: u64,
        /// host:port the new member will listen on.
        address: String,
    },
    /// Remove a member.
    Remove {
        /// Raft id of the member.
        id: u64,
    },
}

fn print_members(ctx: &Context, members: &[Member], leader: u64, cluster_id: &str) {
    match ctx.format {
        Format::Json => print_json(&json!({
            "cluster_id": cluster_id,
            "leader_id": leader,
            "members": members.iter().map(|m| json!({"id": m.id, "address": m.address})).collect::<Vec<_>>(),
        })),
        Format::Table => {
            if !cluster_id.is_empty() {
                out!("cluster {cluster_id}");
            }
            table(
                &["ID", "ADDRESS", "LEADER"],
                &members
                    .iter()
                    .map(|m| {
                        vec![
                            m.id.to_string(),
                            m.address.clone(),
                            if m.id == leader {
                                "*".into()
                            } else {
                                String::new()
                            },
                        ]
                    })
                    .collect::<Vec<_>>(),
            )
        }
    }
}

pub async fn run(ctx: &Context, cmd: Command) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let (members, leader, cluster_id) = match cmd {
        Command::List => {
            let r = client
                .call(|mut s| async move { s.cluster().list_members(ListMembersRequest {}).await })
                .await?;
            (r.members, r.leader_id, r.cluster_id)
        }
        Command::Add { id, address } => {
            let member = Member { id, address };
            let r = client
                .call_mutation(|mut s| {
                    let member = member.clone();
                    async move {
                        s.cluster()
                            .add_member(AddMemberRequest {
                                member: Some(member),
                            })
                            .await
                    }
                })
                .await?;
            (r.members, 0, String::new())
        }
        Command::Remove { id } => {
            let r = client
                .call_mutation(|mut s| async move {
                    s.cluster().remove_member(RemoveMemberRequest { id }).await
                })
                .await?;
            (r.members, 0, String::new())
        }
    };
    print_members(ctx, &members, leader, &cluster_id);
    Ok(())
}
