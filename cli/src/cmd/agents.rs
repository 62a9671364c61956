//! `pld agents list|get`.

use pld_proto::v1::{object, Agent, Kind, ListRequest};

use super::Context;
use crate::catalog;
use crate::output::{agent_json, agent_state_name, out, print_json, table, Format};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StateArg {
    Alive,
    Expired,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// List agents with their lease state and when they were last heard from.
    List {
        /// Only agents in this state.
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// Only agents of this AWS account.
        #[arg(long)]
        account: Option<String>,
    },
    /// Show the agent of one VPC.
    Get {
        /// The agent's VPC.
        vpc: String,
    },
}

pub fn print_agents(ctx: &Context, agents: &[Agent]) {
    match ctx.format {
        Format::Json => print_json(&serde_json::Value::Array(
            agents.iter().map(agent_json).collect(),
        )),
        Format::Table => table(
            &["VPC", "ACCOUNT", "REGION", "STATE", "LAST SEEN", "ADDRESS"],
            &agents
                .iter()
                .map(|a| {
                    vec![
                        a.vpc_id.clone(),
                        a.account_id.clone(),
                        a.region.clone(),
                        agent_state_name(a.state).to_string(),
                        catalog::ago(a.last_seen_unix_ms),
                        a.address.clone(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    }
}

pub async fn run(ctx: &Context, cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::List { state, account } => {
            let req = ListRequest {
                kind: Kind::Agent as i32,
                ..Default::default()
            };
            let agents: Vec<Agent> = catalog::agents(catalog::list(ctx, req).await?)
                .into_iter()
                .filter(|a| {
                    state.is_none_or(|s| {
                        agent_state_name(a.state)
                            == if s == StateArg::Alive {
                                "alive"
                            } else {
                                "expired"
                            }
                    })
                })
                .filter(|a| account.as_ref().is_none_or(|acc| &a.account_id == acc))
                .collect();
            print_agents(ctx, &agents);
        }
        Command::Get { vpc } => {
            pld_core::validate::vpc_id("vpc", &vpc)?;
            let agent = match catalog::get(ctx, Kind::Agent, &vpc).await?.object {
                Some(object::Object::Agent(a)) => a,
                _ => anyhow::bail!("the controller returned no agent"),
            };
            print_agents(ctx, std::slice::from_ref(&agent));
            if ctx.format == Format::Table {
                out!("");
                out!("lease ttl:     {}s", agent.lease_ttl_seconds);
                out!(
                    "lease expires: {}",
                    catalog::ago(agent.lease_expires_unix_ms)
                );
            }
        }
    }
    Ok(())
}
