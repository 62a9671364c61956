//! `pld agents list|get`.

use pld_proto::v1::{object, Agent, Kind, ListRequest, VpcFacts};

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
    /// Show the agent of one VPC, with what it reported of the VPC: CIDRs, subnets by AZ ID
    /// and this account's AZ name, route tables, endpoints against the quota.
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

/// The VPC's facts as its agent reported them, for `agents get`.
fn print_facts(facts: Option<&VpcFacts>) {
    let Some(f) = facts else {
        out!("facts:         not reported yet");
        return;
    };
    out!("");
    out!("cidrs:         {}", f.ipv4_cidrs.join(", "));
    if !f.ipv6_cidrs.is_empty() {
        out!("ipv6 cidrs:    {}", f.ipv6_cidrs.join(", "));
    }
    let quota = if f.quota_note.is_empty() {
        String::new()
    } else {
        format!(" ({})", f.quota_note)
    };
    out!(
        "endpoints:     {} of {}{quota}",
        f.endpoints,
        f.endpoint_quota
    );
    out!("observed:      {}", catalog::ago(f.observed_unix_ms));
    if f.truncated {
        out!("(the VPC has more subnets or route tables than the catalog keeps: the first are shown)");
    }
    out!("");
    table(
        &["SUBNET", "CIDR", "AZ ID", "AZ NAME", "ROUTE TABLE"],
        &f.subnets
            .iter()
            .map(|s| {
                let table = f
                    .route_tables
                    .iter()
                    .find(|t| t.subnet_ids.contains(&s.id))
                    .or_else(|| f.route_tables.iter().find(|t| t.main))
                    .map_or_else(String::new, |t| t.id.clone());
                vec![
                    s.id.clone(),
                    s.cidr.clone(),
                    s.az_id.clone(),
                    s.az_name.clone(),
                    table,
                ]
            })
            .collect::<Vec<_>>(),
    );
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
                print_facts(agent.facts.as_ref());
            }
        }
    }
    Ok(())
}
