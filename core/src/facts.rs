//! What an agent reports of its VPC ([`VpcFacts`]): built from what it observed, bounded in
//! size, and compared with what the catalog holds so it is sent only when it changed.
//!
//! Plans made without calling AWS (`pld plan`, `pld network`, `pld cost`) read these facts
//! from the catalog; the agent's own planners read the same kinds of value straight from AWS.

use pld_proto::v1::{RouteTableFacts, SubnetFacts, VpcFacts};

use crate::aws::types::{Endpoint, Quota, RouteTable, Subnet, Vpc};
use crate::validate::FieldError;

pub mod load_balancers;
pub use load_balancers::LoadBalancerReading;

/// Most CIDR blocks of each family kept (AWS allows 5 IPv4 blocks per VPC by default, up to
/// 50 on request, and 5 IPv6 blocks).
pub const MAX_CIDRS: usize = 64;
/// Most subnets kept (AWS's default quota is 200 per VPC).
pub const MAX_SUBNETS: usize = 256;
/// Most route tables kept (AWS's default quota is 200 per VPC), and most subnet associations
/// across them (a subnet is associated with one route table at most).
pub const MAX_ROUTE_TABLES: usize = 256;
/// Longest note on the quota, in bytes.
pub const MAX_QUOTA_NOTE: usize = 512;
/// Most names kept of those in the zone that pld does not own.
pub const MAX_FOREIGN_NAMES: usize = 256;
/// Longest reason the zone of the agent's name may not be used, in bytes.
pub const MAX_ZONE_REFUSED: usize = 512;

/// The endpoint quota as the agent could learn it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaReading {
    /// The account's applied value, from Service Quotas.
    Read(u32),
    /// Service Quotas could not tell (not allowed, not offered): AWS's published default is
    /// assumed, and `why` says so to whoever reads the plan.
    Default { why: String },
}

/// What one look at the VPC found.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub vpc: &'a Vpc,
    pub subnets: &'a [Subnet],
    pub route_tables: &'a [RouteTable],
    /// Every endpoint in the VPC, pld's or not.
    pub endpoints: &'a [Endpoint],
    pub quota: &'a QuotaReading,
    /// The private zone the agent publishes in, once found or made.
    pub zone_id: Option<&'a str>,
    /// Names in that zone holding records pld does not own.
    pub zone_names_not_ours: &'a [String],
    /// Why the zone of the agent's name in the VPC may not be used, when it is not pld's.
    pub zone_refused: Option<&'a str>,
    pub load_balancers: LoadBalancerReading<'a>,
}

/// The facts to report for `seen`, read at `now_unix_ms`: lists in a stable order (by id), cut
/// to the bounds above with `truncated` set when anything was left out.
pub fn vpc_facts(seen: Observed<'_>, now_unix_ms: u64) -> VpcFacts {
    let mut truncated = false;
    let mut ipv4_cidrs = vec![seen.vpc.cidr.clone()];
    ipv4_cidrs.extend(
        seen.vpc
            .secondary_cidrs
            .iter()
            .filter(|c| **c != seen.vpc.cidr)
            .cloned(),
    );
    truncated |= cut(&mut ipv4_cidrs, MAX_CIDRS);
    let mut ipv6_cidrs = seen.vpc.ipv6_cidrs.clone();
    truncated |= cut(&mut ipv6_cidrs, MAX_CIDRS);

    let mut subnets: Vec<SubnetFacts> = seen
        .subnets
        .iter()
        .map(|s| SubnetFacts {
            id: s.id.clone(),
            cidr: s.cidr.clone(),
            az_id: s.az_id.clone(),
            az_name: s.az_name.clone(),
            ipv6_cidr: s.ipv6_cidr.clone().unwrap_or_default(),
        })
        .collect();
    subnets.sort_by(|a, b| a.id.cmp(&b.id));
    truncated |= cut(&mut subnets, MAX_SUBNETS);

    let mut route_tables: Vec<RouteTableFacts> = seen
        .route_tables
        .iter()
        .map(|t| {
            let mut subnet_ids = t.subnet_ids.clone();
            subnet_ids.sort();
            RouteTableFacts {
                id: t.id.clone(),
                main: t.main,
                subnet_ids,
                routes: u32::try_from(t.routes.len()).unwrap_or(u32::MAX),
            }
        })
        .collect();
    route_tables.sort_by(|a, b| a.id.cmp(&b.id));
    truncated |= cut(&mut route_tables, MAX_ROUTE_TABLES);
    let mut associations_left = MAX_ROUTE_TABLES;
    for table in &mut route_tables {
        truncated |= cut(&mut table.subnet_ids, associations_left);
        associations_left -= table.subnet_ids.len();
    }

    let (endpoint_quota, quota_note) = match seen.quota {
        QuotaReading::Read(n) => (*n, String::new()),
        QuotaReading::Default { why } => (
            Quota::InterfaceEndpointsPerVpc.aws_default(),
            clip(
                &format!(
                    "AWS's default of {} assumed: {why}",
                    Quota::InterfaceEndpointsPerVpc.aws_default()
                ),
                MAX_QUOTA_NOTE,
            ),
        ),
    };
    let mut zone_names_not_ours = seen.zone_names_not_ours.to_vec();
    zone_names_not_ours.sort();
    zone_names_not_ours.dedup();
    truncated |= cut(&mut zone_names_not_ours, MAX_FOREIGN_NAMES);
    let endpoints = seen
        .endpoints
        .iter()
        .filter(|e| e.counts_against_quota())
        .count();
    let (load_balancers, load_balancers_note, cut_load_balancers) =
        load_balancers::facts(&seen.load_balancers);
    truncated |= cut_load_balancers;
    VpcFacts {
        ipv4_cidrs,
        ipv6_cidrs,
        subnets,
        route_tables,
        endpoints: u32::try_from(endpoints).unwrap_or(u32::MAX),
        endpoint_quota,
        quota_note,
        truncated,
        observed_unix_ms: now_unix_ms,
        zone_id: seen.zone_id.unwrap_or_default().to_string(),
        zone_names_not_ours,
        zone_refused: clip(seen.zone_refused.unwrap_or_default(), MAX_ZONE_REFUSED),
        load_balancers,
        load_balancers_note,
    }
}

/// Whether `new` says something `held` (what the catalog has) does not: everything but the
/// time of reading counts.
pub fn changed(held: Option<&VpcFacts>, new: &VpcFacts) -> bool {
    held.is_none_or(|held| {
        VpcFacts {
            observed_unix_ms: 0,
            ..held.clone()
        } != VpcFacts {
            observed_unix_ms: 0,
            ..new.clone()
        }
    })
}

/// Checks a facts report against the bounds, naming the first field out of them.
///
/// # Errors
/// The first field found wrong.
pub fn validate(f: &VpcFacts) -> Result<(), FieldError> {
    let err = |field: &str, reason: String| FieldError {
        field: format!("facts.{field}"),
        reason,
    };
    let count = |field: &str, n: usize, max: usize| {
        if n > max {
            Err(err(field, format!("{n} entries, at most {max}")))
        } else {
            Ok(())
        }
    };
    let text = |field: &str, value: &str, max: usize| {
        if value.len() > max {
            Err(err(field, format!("{} bytes, at most {max}", value.len())))
        } else {
            Ok(())
        }
    };
    count("ipv4_cidrs", f.ipv4_cidrs.len(), MAX_CIDRS)?;
    count("ipv6_cidrs", f.ipv6_cidrs.len(), MAX_CIDRS)?;
    for (field, cidrs) in [("ipv4_cidrs", &f.ipv4_cidrs), ("ipv6_cidrs", &f.ipv6_cidrs)] {
        for c in cidrs {
            cidr(field, c).map_err(|reason| err(field, reason))?;
        }
    }
    count("subnets", f.subnets.len(), MAX_SUBNETS)?;
    for s in &f.subnets {
        text("subnets.id", &s.id, 64)?;
        text("subnets.az_id", &s.az_id, 32)?;
        text("subnets.az_name", &s.az_name, 32)?;
        cidr("subnets.cidr", &s.cidr).map_err(|r| err("subnets.cidr", r))?;
        if !s.ipv6_cidr.is_empty() {
            cidr("subnets.ipv6_cidr", &s.ipv6_cidr).map_err(|r| err("subnets.ipv6_cidr", r))?;
        }
    }
    count("route_tables", f.route_tables.len(), MAX_ROUTE_TABLES)?;
    let associations: usize = f.route_tables.iter().map(|t| t.subnet_ids.len()).sum();
    count("route_tables.subnet_ids", associations, MAX_ROUTE_TABLES)?;
    for t in &f.route_tables {
        text("route_tables.id", &t.id, 64)?;
        for s in &t.subnet_ids {
            text("route_tables.subnet_ids", s, 64)?;
        }
    }
    text("quota_note", &f.quota_note, MAX_QUOTA_NOTE)?;
    text("zone_id", &f.zone_id, 64)?;
    count(
        "zone_names_not_ours",
        f.zone_names_not_ours.len(),
        MAX_FOREIGN_NAMES,
    )?;
    for name in &f.zone_names_not_ours {
        text("zone_names_not_ours", name, 255)?;
    }
    text("zone_refused", &f.zone_refused, MAX_ZONE_REFUSED)?;
    load_balancers::validate(&f.load_balancers, &f.load_balancers_note, err)?;
    Ok(())
}

fn cidr(field: &str, value: &str) -> Result<(), String> {
    value
        .parse::<ipnet::IpNet>()
        .map(|_| ())
        .map_err(|_| format!("{value:?} is not a CIDR block ({field})"))
}

/// Keeps the first `max` entries; true when any were dropped.
fn cut<T>(list: &mut Vec<T>, max: usize) -> bool {
    let over = list.len() > max;
    list.truncate(max);
    over
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn clip(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests;
