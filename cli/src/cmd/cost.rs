//! `pld cost`: the catalog's PrivateLink bill, estimated per binding, service, VPC and account,
//! against a NAT gateway, peering and a transit gateway for the same traffic. Read from the
//! catalog (with the facts agents report) and `prices/aws.toml`, overridden by `--prices FILE`;
//! no AWS call.

use std::path::PathBuf;

use pld_core::cost::{self, CostFile, Estimate, Priced, Traffic};
use pld_core::validate::FieldError;
use pld_proto::v1::Kind;
use serde_json::{json, Value};

use super::Context;
use crate::catalog;
use crate::output::{out, print_json, table, Format};

#[derive(clap::Args)]
pub struct Args {
    /// GB each binding's endpoint processes a month, both directions (unless the prices file
    /// gives its service an estimate under [traffic.services]). Default: the file's
    /// [traffic] gb_per_month, else 0.
    #[arg(long)]
    pub gb_per_month: Option<f64>,
    /// A cost file: prices in the layout of prices/aws.toml replacing the shipped ones entry by
    /// entry, and [traffic] gb_per_month / [traffic.services] NAME = GB.
    #[arg(long)]
    pub prices: Option<PathBuf>,
}

/// The prices and traffic the command line asks for.
fn inputs(args: &Args) -> anyhow::Result<(cost::Prices, Traffic)> {
    let invalid = |field: &str, reason: String| FieldError {
        field: field.to_string(),
        reason,
    };
    let file = match &args.prices {
        Some(path) => {
            let what = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read the prices file {what}: {e}"))?;
            let file =
                CostFile::parse(&text, &what).map_err(|e| invalid("--prices", e.to_string()))?;
            (file, what)
        }
        None => (CostFile::default(), String::new()),
    };
    let prices = file
        .0
        .prices(&file.1)
        .map_err(|e| invalid("prices/aws.toml", e.to_string()))?;
    let mut traffic = file.0.traffic;
    if let Some(gb) = args.gb_per_month {
        if !(gb.is_finite() && gb >= 0.0) {
            return Err(
                invalid("--gb-per-month", format!("must be 0 or more GB, not {gb}")).into(),
            );
        }
        traffic.gb_per_month = gb;
    }
    Ok((prices, traffic))
}

pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let (prices, traffic) = inputs(&args)?;
    let agents = catalog::agents(catalog::list_all(ctx, Kind::Agent).await?);
    let services = catalog::services(catalog::list_all(ctx, Kind::Service).await?);
    let bindings = catalog::bindings(catalog::list_all(ctx, Kind::Binding).await?);
    let estimate = cost::estimate(&agents, &services, &bindings, &prices, &traffic);
    match ctx.format {
        Format::Json => print_json(&cost_json(&estimate, &traffic)),
        Format::Table => print_table(&estimate, &traffic),
    }
    Ok(())
}

fn money(c: &cost::Cost) -> Value {
    json!({
        "fixed_usd_per_hour": round(c.fixed_per_hour),
        "data_usd_per_month": round(c.data_per_month),
        "usd_per_hour": round(c.per_hour()),
        "usd_per_month": round(c.per_month()),
    })
}

fn priced(p: &Priced) -> Value {
    match p {
        Ok(c) => money(c),
        Err(why) => json!({"unpriced": why}),
    }
}

/// Dollars to a hundredth of a cent: the figures are estimates, not invoices.
fn round(usd: f64) -> f64 {
    (usd * 10_000.0).round() / 10_000.0
}

pub fn cost_json(e: &Estimate, traffic: &Traffic) -> Value {
    json!({
        "hours_per_month": cost::HOURS_PER_MONTH,
        "gb_per_month": traffic.gb_per_month,
        "gb_per_month_by_service": traffic.services,
        "bindings": e.bindings.iter().map(|b| json!({
            "service": b.service,
            "consumer_vpc_id": b.consumer_vpc,
            "account_id": b.account,
            "region": b.region,
            "endpoint_kind": format!("{:?}", b.kind),
            "azs": b.azs,
            "gb_per_month": b.gb_per_month,
            "billing_now": b.billing_now,
            "privatelink": priced(&b.privatelink),
            "nat_gateway": priced(&b.nat_gateway),
            "peering": priced(&b.peering),
            "transit_gateway": priced(&b.transit_gateway),
            "note": b.note,
        })).collect::<Vec<_>>(),
        "services": e.services.iter().map(|s| json!({
            "name": s.name,
            "provider_vpc_id": s.provider_vpc,
            "account_id": s.account,
            "nlb": s.nlb.as_ref().map(priced),
            "bindings": s.bindings,
            "total": money(&s.total),
        })).collect::<Vec<_>>(),
        "vpcs": e.vpcs.iter().map(|v| json!({
            "vpc_id": v.id, "account_id": v.account, "cost": money(&v.cost),
        })).collect::<Vec<_>>(),
        "accounts": e.accounts.iter().map(|a| json!({
            "account_id": a.id, "cost": money(&a.cost),
        })).collect::<Vec<_>>(),
        "total": money(&e.total),
        "alternatives": {
            "nat_gateway": money(&e.alternatives.nat_gateway),
            "peering": money(&e.alternatives.peering),
            "transit_gateway": money(&e.alternatives.transit_gateway),
            "not_routable_bindings": e.alternatives.not_routable,
        },
        "unpriced": e.unpriced,
    })
}

fn dollars(c: &cost::Cost) -> (String, String) {
    (
        format!("${:.4}", c.per_hour()),
        format!("${:.2}", c.per_month()),
    )
}

fn cell(p: &Priced) -> String {
    match p {
        Ok(c) => format!("${:.2}", c.per_month()),
        Err(_) => "-".into(),
    }
}

fn print_table(e: &Estimate, traffic: &Traffic) {
    out!(
        "estimate at {} GB per binding a month{}; {} hours a month; prices from prices/aws.toml \
         (pld cost -o json names each one's source)",
        traffic.gb_per_month,
        if traffic.services.is_empty() {
            String::new()
        } else {
            format!(" (per service: {:?})", traffic.services)
        },
        cost::HOURS_PER_MONTH
    );
    out!("");
    table(
        &[
            "SERVICE",
            "CONSUMER",
            "ENDPOINT",
            "AZS",
            "GB/MONTH",
            "PER HOUR",
            "PER MONTH",
            "NAT GW",
            "PEERING",
            "TRANSIT GW",
        ],
        &e.bindings
            .iter()
            .map(|b| {
                let (hour, month) = match &b.privatelink {
                    Ok(c) => dollars(c),
                    Err(_) => ("unpriced".into(), "-".into()),
                };
                vec![
                    b.service.clone(),
                    b.consumer_vpc.clone(),
                    format!("{:?}", b.kind).to_lowercase(),
                    b.azs.to_string(),
                    b.gb_per_month.to_string(),
                    hour,
                    month,
                    cell(&b.nat_gateway),
                    cell(&b.peering),
                    cell(&b.transit_gateway),
                ]
            })
            .collect::<Vec<_>>(),
    );
    out!("");
    table(
        &[
            "SERVICE",
            "PROVIDER",
            "NLB BUILT BY PLD",
            "BINDINGS",
            "PER HOUR",
            "PER MONTH",
        ],
        &e.services
            .iter()
            .map(|s| {
                let (hour, month) = dollars(&s.total);
                let nlb = match &s.nlb {
                    None => "-".to_string(),
                    Some(Ok(c)) => format!("${:.2}/month", c.per_month()),
                    Some(Err(_)) => "unpriced".to_string(),
                };
                vec![
                    s.name.clone(),
                    s.provider_vpc.clone(),
                    nlb,
                    s.bindings.to_string(),
                    hour,
                    month,
                ]
            })
            .collect::<Vec<_>>(),
    );
    out!("");
    let mut rows: Vec<Vec<String>> = e
        .vpcs
        .iter()
        .map(|v| {
            let (hour, month) = dollars(&v.cost);
            vec![format!("vpc {}", v.id), v.account.clone(), hour, month]
        })
        .collect();
    rows.extend(e.accounts.iter().map(|a| {
        let (hour, month) = dollars(&a.cost);
        vec![format!("account {}", a.id), String::new(), hour, month]
    }));
    let (hour, month) = dollars(&e.total);
    rows.push(vec!["total".into(), String::new(), hour, month]);
    table(&["WHO PAYS", "ACCOUNT", "PER HOUR", "PER MONTH"], &rows);
    let alt = &e.alternatives;
    out!("");
    out!("the same traffic another way, for the whole catalog (a month):");
    out!("  privatelink      ${:.2}", e.total.per_month());
    out!(
        "  nat gateway      ${:.2}  (one per AZ of each consumer VPC; internet transfer and a public load balancer not counted)",
        alt.nat_gateway.per_month()
    );
    out!(
        "  peering          ${:.2}  (data between AZs, the most it can be; {} binding(s) it cannot carry)",
        alt.peering.per_month(),
        alt.not_routable
    );
    out!(
        "  transit gateway  ${:.2}  (an attachment per VPC; {} binding(s) it cannot carry)",
        alt.transit_gateway.per_month(),
        alt.not_routable
    );
    if !e.unpriced.is_empty() {
        out!("");
        out!("not priced, left out of the totals:");
        for why in &e.unpriced {
            out!("  {why}");
        }
    }
}
