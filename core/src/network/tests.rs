use proptest::prelude::*;

use super::*;

fn vpc(id: &str, cidrs: &[&str]) -> VpcNet {
    VpcNet {
        vpc_id: id.into(),
        account: "111111111111".into(),
        region: "us-east-1".into(),
        cidrs: cidrs.iter().map(|c| c.parse().expect("a CIDR")).collect(),
        route_tables: 2,
    }
}

fn net(s: &str) -> IpNet {
    s.parse().expect("a CIDR")
}

#[test]
fn overlapping_pairs_are_found_with_the_ranges_they_share() {
    let vpcs = [
        vpc("vpc-a", &["10.0.0.0/16"]),
        vpc("vpc-b", &["10.0.128.0/17"]),
        vpc("vpc-c", &["10.1.0.0/16", "2600:1f18::/56"]),
        vpc("vpc-d", &["192.168.0.0/16", "10.1.5.0/24"]),
        vpc("vpc-e", &["172.16.0.0/12", "2600:1f18:0:10::/64"]),
        vpc("vpc-f", &["10.2.0.0/16", "10.3.0.0/16"]),
    ];
    assert_eq!(
        overlaps(&vpcs),
        [
            Overlap {
                a: "vpc-a".into(),
                b: "vpc-b".into(),
                ranges: vec![net("10.0.128.0/17")],
            },
            Overlap {
                a: "vpc-c".into(),
                b: "vpc-d".into(),
                ranges: vec![net("10.1.5.0/24")],
            },
            Overlap {
                a: "vpc-c".into(),
                b: "vpc-e".into(),
                ranges: vec![net("2600:1f18:0:10::/64")],
            },
        ]
    );
}

#[test]
fn peering_and_a_transit_gateway_need_ranges_apart() {
    let a = vpc("vpc-a", &["10.0.0.0/16"]);
    let b = vpc("vpc-b", &["10.0.0.0/16"]);
    let c = vpc("vpc-c", &["10.9.0.0/16"]);
    let found = overlaps(&[a.clone(), b.clone(), c.clone()]);
    let ab = paths(&a, &b, found.first());
    assert!(ab.peering.unwrap_err().contains("10.0.0.0/16"));
    assert!(ab.transit_gateway.is_err());
    let ac = paths(&a, &c, None);
    assert_eq!(ac.peering, Ok(()));
    assert_eq!(ac.transit_gateway, Ok(()));
}

#[test]
fn a_peering_mesh_costs_connections_and_routes_privatelink_does_not() {
    // One provider, three consumers, one of which overlaps the provider.
    let vpcs = [
        vpc("vpc-p", &["10.0.0.0/16"]),
        vpc("vpc-1", &["10.1.0.0/16", "100.64.0.0/16"]),
        vpc("vpc-2", &["10.2.0.0/16"]),
        vpc("vpc-3", &["10.0.0.0/16"]),
    ];
    let pairs: Vec<(String, String)> = ["vpc-1", "vpc-2", "vpc-3"]
        .iter()
        .map(|c| (c.to_string(), "vpc-p".to_string()))
        .collect();
    let found = overlaps(&vpcs);
    let c = compare(&vpcs, &pairs, 1, &found);
    assert_eq!(c.peering_connections, 2);
    assert_eq!(c.peering_impossible, 1);
    // The provider gets vpc-1's two blocks and vpc-2's one in each of its two tables.
    assert_eq!(c.routes_per_vpc["vpc-p"], (2 + 1) * 2);
    assert_eq!(c.routes_per_vpc["vpc-1"], 2);
    assert_eq!(c.full_mesh_connections, 6);
    assert_eq!((c.endpoints, c.endpoint_services), (3, 1));
    assert!(c.over_peering_quota.is_empty() && c.over_route_quota.is_empty());
}

#[test]
fn a_provider_with_more_consumers_than_the_quota_is_named() {
    let mut vpcs = vec![vpc("vpc-p", &["10.0.0.0/16"])];
    let mut pairs = Vec::new();
    for i in 0..60 {
        let id = format!("vpc-{i:03}");
        vpcs.push(vpc(&id, &[&format!("10.{}.0.0/16", i + 1)]));
        pairs.push((id, "vpc-p".to_string()));
    }
    let c = compare(&vpcs, &pairs, 1, &overlaps(&vpcs));
    assert_eq!(c.over_peering_quota, ["vpc-p"]);
    assert_eq!(c.over_route_quota, ["vpc-p"]);
}

/// Every pair the sweep reports, as the obvious comparison of all pairs finds them.
fn all_pairs(vpcs: &[VpcNet]) -> Vec<Overlap> {
    let mut found = Vec::new();
    for (i, a) in vpcs.iter().enumerate() {
        for b in &vpcs[i + 1..] {
            let mut ranges = BTreeSet::new();
            for x in &a.cidrs {
                for y in &b.cidrs {
                    if x.contains(y) {
                        ranges.insert(*y);
                    } else if y.contains(x) {
                        ranges.insert(*x);
                    }
                }
            }
            if !ranges.is_empty() {
                let (a, b) = if a.vpc_id <= b.vpc_id {
                    (&a.vpc_id, &b.vpc_id)
                } else {
                    (&b.vpc_id, &a.vpc_id)
                };
                found.push(Overlap {
                    a: a.clone(),
                    b: b.clone(),
                    ranges: ranges.into_iter().collect(),
                });
            }
        }
    }
    found.sort_by(|x, y| (&x.a, &x.b).cmp(&(&y.a, &y.b)));
    found
}

proptest! {
    #[test]
    fn the_sweep_finds_what_comparing_all_pairs_finds(
        blocks in proptest::collection::vec(
            proptest::collection::vec((0u8..4, 0u8..4, 8u8..25), 1..3),
            2..12,
        )
    ) {
        let vpcs: Vec<VpcNet> = blocks
            .iter()
            .enumerate()
            .map(|(i, cidrs)| VpcNet {
                vpc_id: format!("vpc-{i:02}"),
                account: "111111111111".into(),
                region: "us-east-1".into(),
                cidrs: cidrs
                    .iter()
                    .filter_map(|(a, b, len)| {
                        IpNet::new(IpAddr::from([10, *a, *b * 64, 0]), *len)
                            .ok()
                            .map(|n| n.trunc())
                    })
                    .collect(),
                route_tables: 1,
            })
            .collect();
        prop_assert_eq!(overlaps(&vpcs), all_pairs(&vpcs));
    }
}

#[test]
fn the_view_of_a_catalog_names_each_binding_s_way_and_the_vpcs_without_facts() {
    use pld_proto::v1::{Agent, Binding, RouteTableFacts, Service, VpcFacts};
    let agent = |vpc: &str, cidr: Option<&str>| Agent {
        vpc_id: vpc.into(),
        account_id: "111111111111".into(),
        region: "us-east-1".into(),
        facts: cidr.map(|c| VpcFacts {
            ipv4_cidrs: vec![c.into()],
            route_tables: vec![RouteTableFacts::default()],
            ..VpcFacts::default()
        }),
        ..Agent::default()
    };
    let agents = [
        agent("vpc-p", Some("10.0.0.0/16")),
        agent("vpc-c", Some("10.1.0.0/16")),
        agent("vpc-o", Some("10.0.0.0/16")),
        agent("vpc-silent", None),
    ];
    let services = [Service {
        name: "demo".into(),
        vpc_id: "vpc-p".into(),
        ..Service::default()
    }];
    let binding = |service: &str, vpc: &str| Binding {
        service: service.into(),
        consumer_vpc_id: vpc.into(),
        ..Binding::default()
    };
    let bindings = [
        binding("demo", "vpc-c"),
        binding("demo", "vpc-o"),
        binding("s3", "vpc-c"),
        binding("demo", "vpc-silent"),
    ];
    let v = view(&agents, &services, &bindings);
    assert_eq!(v.without_facts, ["vpc-silent"]);
    assert_eq!(v.overlaps.len(), 1);
    assert_eq!(
        (v.overlaps[0].a.as_str(), v.overlaps[0].b.as_str()),
        ("vpc-o", "vpc-p")
    );
    let way = |i: usize| v.bindings[i].paths.as_ref().map(|p| p.peering.is_ok());
    assert_eq!(way(0), Some(true), "vpc-c peers with the provider");
    assert_eq!(way(1), Some(false), "vpc-o overlaps it");
    assert_eq!(v.bindings[2].provider_vpc, None, "an AWS service");
    assert_eq!(way(3), None, "a VPC without facts is unknown");
    assert_eq!(v.comparison.peering_connections, 1);
    assert_eq!(v.comparison.peering_impossible, 1);
    assert_eq!(v.comparison.endpoints, 4);
    assert_eq!(v.comparison.endpoint_services, 1);
}
