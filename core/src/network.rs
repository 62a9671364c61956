//! `pld network`: the catalog's VPCs with their CIDRs, every pair whose CIDRs overlap (found by
//! sorting, not by comparing all pairs), whether VPC peering or a transit gateway could have
//! connected each binding and why not, and what a peering mesh would need for the catalog's
//! bindings against what PrivateLink uses — the comparison the article makes, computed for the
//! user's own network. Prefix arithmetic is `ipnet`'s.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

/// AWS's default quota of active peering connections per VPC (Amazon VPC quotas, "VPC peering
/// connections"; adjustable to 125).
pub const PEERING_PER_VPC: usize = 50;
/// AWS's default quota of routes per route table (Amazon VPC quotas; adjustable to 1,000).
pub const ROUTES_PER_TABLE: usize = 50;

/// One VPC as the network view needs it: from its agent's record and reported facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcNet {
    pub vpc_id: String,
    pub account: String,
    pub region: String,
    /// IPv4 and IPv6 blocks.
    pub cidrs: Vec<IpNet>,
    /// Route tables each peering adds routes to.
    pub route_tables: usize,
}

/// Two VPCs whose address ranges overlap, and the ranges they share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    pub a: String,
    pub b: String,
    /// The shared ranges: where two blocks overlap, one contains the other, and the smaller
    /// is what they share.
    pub ranges: Vec<IpNet>,
}

/// A block as a closed range of addresses, for sorting both families in one pass.
fn span(net: &IpNet) -> (u8, u128, u128) {
    match (net.network(), net.broadcast()) {
        (IpAddr::V4(lo), IpAddr::V4(hi)) => {
            (4, u128::from(u32::from(lo)), u128::from(u32::from(hi)))
        }
        (IpAddr::V6(lo), IpAddr::V6(hi)) => (6, u128::from(lo), u128::from(hi)),
        // ipnet never mixes families within one block.
        _ => (0, 0, 0),
    }
}

/// Every pair of VPCs whose blocks overlap, with the shared ranges, ordered by VPC ids.
///
/// Blocks are sorted by family and first address and swept once, each compared only with the
/// blocks still open at its start: O(n log n) plus the overlaps found, not n² comparisons.
pub fn overlaps(vpcs: &[VpcNet]) -> Vec<Overlap> {
    let mut blocks: Vec<(u8, u128, u128, usize, IpNet)> = vpcs
        .iter()
        .enumerate()
        .flat_map(|(i, v)| {
            v.cidrs.iter().map(move |net| {
                let (family, lo, hi) = span(net);
                (family, lo, hi, i, *net)
            })
        })
        .collect();
    blocks.sort_by(|a, b| {
        (a.0, a.1, std::cmp::Reverse(a.2)).cmp(&(b.0, b.1, std::cmp::Reverse(b.2)))
    });
    let mut shared: BTreeMap<(usize, usize), BTreeSet<IpNet>> = BTreeMap::new();
    // Blocks that may still overlap what comes next: same family, ending at or after it.
    let mut open: Vec<(u8, u128, usize, IpNet)> = Vec::new();
    for (family, lo, hi, vpc, net) in blocks {
        open.retain(|(f, end, _, _)| *f == family && *end >= lo);
        for (_, _, other, other_net) in &open {
            if *other != vpc {
                // Sorted by first address, the open block starts at or before this one and
                // reaches it: aligned prefixes nest, so this one is the shared range unless
                // the open one is the smaller.
                let range = if other_net.prefix_len() >= net.prefix_len() {
                    *other_net
                } else {
                    net
                };
                let key = (vpc.min(*other), vpc.max(*other));
                shared.entry(key).or_default().insert(range);
            }
        }
        open.push((family, hi, vpc, net));
    }
    let mut found: Vec<Overlap> = shared
        .into_iter()
        .map(|((a, b), ranges)| {
            let (a, b) = (&vpcs[a].vpc_id, &vpcs[b].vpc_id);
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            Overlap {
                a: a.clone(),
                b: b.clone(),
                ranges: ranges.into_iter().collect(),
            }
        })
        .collect();
    found.sort_by(|x, y| (&x.a, &x.b).cmp(&(&y.a, &y.b)));
    found
}

/// Whether another way of connecting two VPCs could carry one binding, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// VPC peering: `Err` says why it could not.
    pub peering: Result<(), String>,
    /// A transit gateway: `Err` says why it could not.
    pub transit_gateway: Result<(), String>,
}

/// Whether peering or a transit gateway could connect `consumer` to `provider`. Both need
/// address ranges that do not overlap: AWS refuses a peering connection between VPCs with
/// overlapping CIDR blocks (VPC peering guide, "VPC peering limitations"), and a transit
/// gateway route table holds one route per destination, so overlapping attachments cannot
/// both be reached ("Transit gateway design best practices"). Regions and accounts are no
/// obstacle to either (inter-region peering; transit gateway peering).
pub fn paths(consumer: &VpcNet, provider: &VpcNet, overlap: Option<&Overlap>) -> Paths {
    if consumer.vpc_id == provider.vpc_id {
        let same = "the consumer is the provider's own VPC: nothing to connect".to_string();
        return Paths {
            peering: Err(same.clone()),
            transit_gateway: Err(same),
        };
    }
    match overlap {
        Some(o) => {
            let ranges = o
                .ranges
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            Paths {
                peering: Err(format!(
                    "{} and {} overlap in {ranges}: AWS refuses to peer them",
                    consumer.vpc_id, provider.vpc_id
                )),
                transit_gateway: Err(format!(
                    "{} and {} overlap in {ranges}: a transit gateway route table cannot send \
                     one range to two attachments",
                    consumer.vpc_id, provider.vpc_id
                )),
            }
        }
        None => Paths {
            peering: Ok(()),
            transit_gateway: Ok(()),
        },
    }
}

/// What connecting the catalog's bindings would take with peering instead of PrivateLink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Distinct consumer–provider VPC pairs: one peering connection each.
    pub peering_connections: usize,
    /// Pairs peering cannot connect because their ranges overlap.
    pub peering_impossible: usize,
    /// VPC → the routes peering adds to its route tables (each peer's blocks, in each table).
    pub routes_per_vpc: BTreeMap<String, usize>,
    /// VPCs that would need more peering connections than AWS's default quota.
    pub over_peering_quota: Vec<String>,
    /// VPCs whose route tables would need more routes than AWS's default quota (counting
    /// only peering's).
    pub over_route_quota: Vec<String>,
    /// A full mesh of every VPC in the catalog: n(n-1)/2 connections.
    pub full_mesh_connections: usize,
    /// What PrivateLink uses: an interface endpoint per binding…
    pub endpoints: usize,
    /// …and an endpoint service per service; no route added anywhere.
    pub endpoint_services: usize,
}

/// The comparison for `pairs` (consumer VPC, provider VPC), one per binding, among `vpcs`;
/// `services` is the number of services in the catalog. A pair whose VPC is unknown counts
/// for PrivateLink but not for peering.
pub fn compare(
    vpcs: &[VpcNet],
    pairs: &[(String, String)],
    services: usize,
    overlapping: &[Overlap],
) -> Comparison {
    let by_id: BTreeMap<&str, &VpcNet> = vpcs.iter().map(|v| (v.vpc_id.as_str(), v)).collect();
    let overlap: BTreeSet<(&str, &str)> = overlapping
        .iter()
        .map(|o| (o.a.as_str(), o.b.as_str()))
        .collect();
    let distinct: BTreeSet<(&str, &str)> = pairs
        .iter()
        .filter(|(c, p)| c != p)
        .map(|(c, p)| {
            if c <= p {
                (c.as_str(), p.as_str())
            } else {
                (p.as_str(), c.as_str())
            }
        })
        .filter(|(a, b)| by_id.contains_key(a) && by_id.contains_key(b))
        .collect();
    let mut comparison = Comparison {
        endpoints: pairs.len(),
        endpoint_services: services,
        full_mesh_connections: vpcs.len() * vpcs.len().saturating_sub(1) / 2,
        ..Comparison::default()
    };
    let mut peers: BTreeMap<&str, usize> = BTreeMap::new();
    for (a, b) in &distinct {
        if overlap.contains(&(*a, *b)) {
            comparison.peering_impossible += 1;
            continue;
        }
        comparison.peering_connections += 1;
        for (me, other) in [(a, b), (b, a)] {
            *peers.entry(me).or_default() += 1;
            let routes = by_id[other].cidrs.len() * by_id[me].route_tables.max(1);
            *comparison.routes_per_vpc.entry(me.to_string()).or_default() += routes;
        }
    }
    for (vpc, n) in &peers {
        if *n > PEERING_PER_VPC {
            comparison.over_peering_quota.push(vpc.to_string());
        }
    }
    for (vpc, routes) in &comparison.routes_per_vpc {
        let tables = by_id.get(vpc.as_str()).map_or(1, |v| v.route_tables.max(1));
        if routes / tables > ROUTES_PER_TABLE {
            comparison.over_route_quota.push(vpc.clone());
        }
    }
    comparison
}

/// One binding, and whether the other ways could have carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingPaths {
    pub service: String,
    pub consumer_vpc: String,
    /// The provider's VPC; `None` for an AWS service.
    pub provider_vpc: Option<String>,
    /// `None` when either VPC's facts are unknown, or for an AWS service.
    pub paths: Option<Paths>,
}

/// The whole network view of a catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkView {
    pub vpcs: Vec<VpcNet>,
    /// VPCs with an agent that has not reported its facts: left out of everything else.
    pub without_facts: Vec<String>,
    pub overlaps: Vec<Overlap>,
    pub bindings: Vec<BindingPaths>,
    pub comparison: Comparison,
}

/// The network view of the catalog's `agents` (with their facts), `services` and `bindings`.
pub fn view(
    agents: &[pld_proto::v1::Agent],
    services: &[pld_proto::v1::Service],
    bindings: &[pld_proto::v1::Binding],
) -> NetworkView {
    let mut out = NetworkView::default();
    for a in agents {
        let Some(facts) = &a.facts else {
            out.without_facts.push(a.vpc_id.clone());
            continue;
        };
        out.vpcs.push(VpcNet {
            vpc_id: a.vpc_id.clone(),
            account: a.account_id.clone(),
            region: a.region.clone(),
            // Facts are validated as CIDRs when reported.
            cidrs: facts
                .ipv4_cidrs
                .iter()
                .chain(&facts.ipv6_cidrs)
                .filter_map(|c| c.parse().ok())
                .collect(),
            route_tables: facts.route_tables.len(),
        });
    }
    out.vpcs.sort_by(|a, b| a.vpc_id.cmp(&b.vpc_id));
    out.overlaps = overlaps(&out.vpcs);
    let by_id: BTreeMap<&str, &VpcNet> = out.vpcs.iter().map(|v| (v.vpc_id.as_str(), v)).collect();
    let overlapping: BTreeMap<(&str, &str), &Overlap> = out
        .overlaps
        .iter()
        .map(|o| ((o.a.as_str(), o.b.as_str()), o))
        .collect();
    let overlap_of = |a: &'_ str, b: &'_ str| {
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        overlapping.get(&(a, b)).copied()
    };
    let provider_of: BTreeMap<&str, &str> = services
        .iter()
        .map(|s| (s.name.as_str(), s.vpc_id.as_str()))
        .collect();
    let mut pairs = Vec::new();
    for b in bindings {
        let provider_vpc = provider_of
            .get(b.service.as_str())
            .map(|v| (*v).to_string());
        let paths = provider_vpc.as_deref().and_then(|p| {
            let (consumer, provider) = (by_id.get(b.consumer_vpc_id.as_str())?, by_id.get(p)?);
            Some(paths(consumer, provider, overlap_of(&consumer.vpc_id, p)))
        });
        if let Some(p) = &provider_vpc {
            pairs.push((b.consumer_vpc_id.clone(), p.clone()));
        }
        out.bindings.push(BindingPaths {
            service: b.service.clone(),
            consumer_vpc: b.consumer_vpc_id.clone(),
            provider_vpc,
            paths,
        });
    }
    out.comparison = compare(&out.vpcs, &pairs, services.len(), &out.overlaps);
    // Bindings to AWS services are endpoints too.
    out.comparison.endpoints = bindings.len();
    out
}

#[cfg(test)]
mod tests;
