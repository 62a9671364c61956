//! `pld network`: every VPC in the catalog with its CIDRs, the pairs whose ranges overlap,
//! whether VPC peering or a transit gateway could have carried each binding (and why not), and
//! what a peering mesh would need for the catalog's bindings against what PrivateLink uses.
//! Read from the catalog (the facts agents report); no AWS call.

use pld_core::network::{view, NetworkView, PEERING_PER_VPC, ROUTES_PER_TABLE};
use pld_proto::v1::Kind;
use serde_json::{json, Value};

use super::Context;
use crate::catalog;
use crate::output::{out, print_json, table, Format};

pub async fn run(ctx: &Context) -> anyhow::Result<()> {
    let agents = catalog::agents(catalog::list_all(ctx, Kind::Agent).await?);
    let services = catalog::services(catalog::list_all(ctx, Kind::Service).await?);
    let bindings = catalog::bindings(catalog::list_all(ctx, Kind::Binding).await?);
    let net = view(&agents, &services, &bindings);
    match ctx.format {
        Format::Json => print_json(&network_json(&net)),
        Format::Table => print_table(&net),
    }
    Ok(())
}

fn verdict(r: &Result<(), String>) -> Value {
    match r {
        Ok(()) => json!({"possible": true, "why_not": ""}),
        Err(why) => json!({"possible": false, "why_not": why}),
    }
}

pub fn network_json(net: &NetworkView) -> Value {
    let c = &net.comparison;
    json!({
        "vpcs": net.vpcs.iter().map(|v| json!({
            "vpc_id": v.vpc_id,
            "account_id": v.account,
            "region": v.region,
            "cidrs": v.cidrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "route_tables": v.route_tables,
        })).collect::<Vec<_>>(),
        "without_facts": net.without_facts,
        "overlaps": net.overlaps.iter().map(|o| json!({
            "a": o.a,
            "b": o.b,
            "ranges": o.ranges.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "bindings": net.bindings.iter().map(|b| json!({
            "service": b.service,
            "consumer_vpc_id": b.consumer_vpc,
            "provider_vpc_id": b.provider_vpc,
            "peering": b.paths.as_ref().map(|p| verdict(&p.peering)),
            "transit_gateway": b.paths.as_ref().map(|p| verdict(&p.transit_gateway)),
        })).collect::<Vec<_>>(),
        "comparison": {
            "peering": {
                "connections": c.peering_connections,
                "impossible_pairs": c.peering_impossible,
                "routes_per_vpc": c.routes_per_vpc,
                "over_peering_quota": c.over_peering_quota,
                "over_route_quota": c.over_route_quota,
                "full_mesh_connections": c.full_mesh_connections,
            },
            "privatelink": {
                "endpoints": c.endpoints,
                "endpoint_services": c.endpoint_services,
                "routes_added": 0,
            },
        },
    })
}

fn print_table(net: &NetworkView) {
    table(
        &["VPC", "ACCOUNT", "REGION", "CIDRS"],
        &net.vpcs
            .iter()
            .map(|v| {
                vec![
                    v.vpc_id.clone(),
                    v.account.clone(),
                    v.region.clone(),
                    v.cidrs
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect::<Vec<_>>(),
    );
    if !net.without_facts.is_empty() {
        out!(
            "(no facts reported yet, left out: {})",
            net.without_facts.join(", ")
        );
    }
    out!("");
    if net.overlaps.is_empty() {
        out!("overlapping CIDRs: none");
    } else {
        out!("overlapping CIDRs:");
        table(
            &["VPC", "VPC", "SHARED RANGES"],
            &net.overlaps
                .iter()
                .map(|o| {
                    vec![
                        o.a.clone(),
                        o.b.clone(),
                        o.ranges
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                    ]
                })
                .collect::<Vec<_>>(),
        );
    }
    if !net.bindings.is_empty() {
        out!("");
        out!("bindings, and whether another way could have carried them:");
        let yes_no = |r: &Result<(), String>| match r {
            Ok(()) => "yes".to_string(),
            Err(why) => format!("no: {why}"),
        };
        table(
            &[
                "SERVICE",
                "CONSUMER",
                "PROVIDER",
                "PEERING",
                "TRANSIT GATEWAY",
            ],
            &net.bindings
                .iter()
                .map(|b| {
                    let (peering, tgw) = match &b.paths {
                        Some(p) => (yes_no(&p.peering), yes_no(&p.transit_gateway)),
                        None if b.provider_vpc.is_none() => {
                            ("an AWS service".to_string(), String::new())
                        }
                        None => (
                            "unknown: a VPC's facts are missing".to_string(),
                            String::new(),
                        ),
                    };
                    vec![
                        b.service.clone(),
                        b.consumer_vpc.clone(),
                        b.provider_vpc.clone().unwrap_or_else(|| "-".into()),
                        peering,
                        tgw,
                    ]
                })
                .collect::<Vec<_>>(),
        );
    }
    let c = &net.comparison;
    out!("");
    out!("the catalog's bindings, connected by peering instead of PrivateLink:");
    out!(
        "  peering:     {} connection(s), {} pair(s) impossible (overlap), {} route(s) added \
         across route tables; a full mesh of these {} VPCs is {} connections",
        c.peering_connections,
        c.peering_impossible,
        c.routes_per_vpc.values().sum::<usize>(),
        net.vpcs.len(),
        c.full_mesh_connections
    );
    if !c.over_peering_quota.is_empty() {
        out!(
            "               over {PEERING_PER_VPC} peering connections (AWS's default quota): {}",
            c.over_peering_quota.join(", ")
        );
    }
    if !c.over_route_quota.is_empty() {
        out!(
            "               over {ROUTES_PER_TABLE} routes per route table (AWS's default quota): {}",
            c.over_route_quota.join(", ")
        );
    }
    out!(
        "  privatelink: {} endpoint(s), {} endpoint service(s), no route added, overlaps \
         no obstacle",
        c.endpoints,
        c.endpoint_services
    );
}
