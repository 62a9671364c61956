use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::aws::types::{EndpointKind, Listener, LoadBalancer, LoadBalancerKind, Protocol, Route};

fn vpc() -> Vpc {
    Vpc {
        id: "vpc-0a".into(),
        account: "111111111111".into(),
        cidr: "10.1.0.0/16".into(),
        secondary_cidrs: vec!["100.64.0.0/16".into()],
        ipv6_cidrs: vec!["2600:1f18:abcd:1200::/56".into()],
    }
}

fn subnet(id: &str, az: usize) -> Subnet {
    Subnet {
        id: id.into(),
        vpc_id: "vpc-0a".into(),
        az_id: format!("use1-az{az}"),
        az_name: format!("us-east-1{}", ['a', 'b', 'c', 'd'][az % 4]),
        cidr: format!("10.1.{az}.0/24"),
        ipv6_cidr: None,
    }
}

fn endpoint(kind: EndpointKind, state: &str) -> Endpoint {
    Endpoint {
        id: "vpce-1".into(),
        vpc_id: "vpc-0a".into(),
        service_name: "com.amazonaws.vpce.us-east-1.vpce-svc-1".into(),
        kind,
        state: state.into(),
        subnet_ids: vec![],
        route_table_ids: vec![],
        dns_names: vec![],
        addresses: vec![],
        tags: Default::default(),
    }
}

fn facts(
    subnets: &[Subnet],
    tables: &[RouteTable],
    endpoints: &[Endpoint],
    quota: &QuotaReading,
) -> VpcFacts {
    vpc_facts(
        Observed {
            vpc: &vpc(),
            subnets,
            route_tables: tables,
            endpoints,
            quota,
            zone_id: Some("Z0PLD"),
            zone_names_not_ours: &["www.pld.test.".to_string()],
            zone_refused: None,
            load_balancers: LoadBalancerReading::Unreadable { why: "" },
        },
        1_000,
    )
}

#[test]
fn the_facts_say_what_was_seen_in_a_stable_order() {
    let table = RouteTable {
        id: "rtb-1".into(),
        vpc_id: "vpc-0a".into(),
        routes: vec![Route {
            destination: "10.1.0.0/16".into(),
            target: "local".into(),
        }],
        main: true,
        subnet_ids: vec!["subnet-b".into(), "subnet-a".into()],
    };
    let f = facts(
        &[subnet("subnet-b", 2), subnet("subnet-a", 1)],
        &[table],
        &[],
        &QuotaReading::Read(80),
    );
    assert_eq!(f.ipv4_cidrs, ["10.1.0.0/16", "100.64.0.0/16"]);
    assert_eq!(f.ipv6_cidrs, ["2600:1f18:abcd:1200::/56"]);
    let ids: Vec<_> = f.subnets.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["subnet-a", "subnet-b"]);
    assert_eq!(f.subnets[0].az_name, "us-east-1b");
    assert_eq!(f.subnets[0].az_id, "use1-az1");
    assert_eq!(f.route_tables[0].subnet_ids, ["subnet-a", "subnet-b"]);
    assert_eq!(f.route_tables[0].routes, 1);
    assert!(f.route_tables[0].main);
    assert_eq!((f.endpoint_quota, f.quota_note.as_str()), (80, ""));
    assert_eq!(f.zone_id, "Z0PLD");
    assert_eq!(f.zone_names_not_ours, ["www.pld.test."]);
    assert_eq!(f.zone_refused, "");
    assert!(!f.truncated);
    assert_eq!(validate(&f), Ok(()));
}

#[test]
fn only_interface_and_gwlb_endpoints_not_deleted_count_against_the_quota() {
    let f = facts(
        &[],
        &[],
        &[
            endpoint(EndpointKind::Interface, "available"),
            endpoint(EndpointKind::Interface, "rejected"),
            endpoint(EndpointKind::GatewayLoadBalancer, "pendingAcceptance"),
            endpoint(EndpointKind::Interface, "Deleted"),
            endpoint(EndpointKind::Gateway, "available"),
        ],
        &QuotaReading::Read(50),
    );
    assert_eq!(f.endpoints, 3);
}

#[test]
fn a_quota_that_could_not_be_read_is_the_default_with_a_note() {
    let f = facts(
        &[],
        &[],
        &[],
        &QuotaReading::Default {
            why: "servicequotas:GetServiceQuota is not allowed".into(),
        },
    );
    assert_eq!(f.endpoint_quota, 50);
    assert!(
        f.quota_note.contains("default of 50") && f.quota_note.contains("not allowed"),
        "{}",
        f.quota_note
    );
}

#[test]
fn a_large_vpc_is_cut_to_the_bounds_and_says_so() {
    let subnets: Vec<Subnet> = (0..MAX_SUBNETS + 5)
        .map(|i| subnet(&format!("subnet-{i:05}"), i % 4))
        .collect();
    let tables = vec![RouteTable {
        id: "rtb-1".into(),
        vpc_id: "vpc-0a".into(),
        subnet_ids: subnets.iter().map(|s| s.id.clone()).collect(),
        ..Default::default()
    }];
    let f = facts(&subnets, &tables, &[], &QuotaReading::Read(50));
    assert!(f.truncated);
    assert_eq!(f.subnets.len(), MAX_SUBNETS);
    assert_eq!(f.route_tables[0].subnet_ids.len(), MAX_ROUTE_TABLES);
    assert_eq!(validate(&f), Ok(()));
}

#[test]
fn reports_beyond_the_bounds_or_not_cidrs_are_refused_by_field() {
    let good = facts(&[subnet("subnet-a", 1)], &[], &[], &QuotaReading::Read(50));
    let mut f = good.clone();
    f.subnets = vec![f.subnets[0].clone(); MAX_SUBNETS + 1];
    assert_eq!(validate(&f).unwrap_err().field, "facts.subnets");
    let mut f = good.clone();
    f.ipv4_cidrs.push("10.300.0.0/16".into());
    assert_eq!(validate(&f).unwrap_err().field, "facts.ipv4_cidrs");
    let mut f = good.clone();
    f.subnets[0].cidr = "subnet".into();
    assert_eq!(validate(&f).unwrap_err().field, "facts.subnets.cidr");
    let mut f = good;
    f.quota_note = "x".repeat(MAX_QUOTA_NOTE + 1);
    assert_eq!(validate(&f).unwrap_err().field, "facts.quota_note");
}

#[test]
fn facts_changed_only_when_more_than_the_time_of_reading_differs() {
    let a = facts(&[subnet("subnet-a", 1)], &[], &[], &QuotaReading::Read(50));
    let later = VpcFacts {
        observed_unix_ms: 9_000,
        ..a.clone()
    };
    assert!(changed(None, &a));
    assert!(!changed(Some(&a), &later));
    let more = VpcFacts {
        endpoints: 1,
        ..a.clone()
    };
    assert!(changed(Some(&a), &more));
}

#[test]
fn why_a_zone_of_the_name_is_refused_is_kept_and_bounded() {
    let why = format!("Z0THEIRS is not pld's: {}", "é".repeat(400));
    let f = vpc_facts(
        Observed {
            vpc: &vpc(),
            subnets: &[],
            route_tables: &[],
            endpoints: &[],
            quota: &QuotaReading::Read(50),
            zone_id: None,
            zone_names_not_ours: &[],
            zone_refused: Some(&why),
            load_balancers: LoadBalancerReading::Unreadable { why: "" },
        },
        1_000,
    );
    assert!(f.zone_refused.starts_with("Z0THEIRS is not pld's"));
    assert!(
        f.zone_refused.len() <= MAX_ZONE_REFUSED,
        "{}",
        f.zone_refused.len()
    );
    assert_eq!(validate(&f), Ok(()));
    let over = VpcFacts {
        zone_refused: "x".repeat(MAX_ZONE_REFUSED + 1),
        ..f
    };
    assert_eq!(
        validate(&over).map_err(|e| e.field),
        Err("facts.zone_refused".to_string())
    );
}

fn load_balancer(name: &str, kind: LoadBalancerKind) -> LoadBalancer {
    let short = match kind {
        LoadBalancerKind::Application => "app",
        LoadBalancerKind::Network => "net",
        LoadBalancerKind::Gateway => "gwy",
    };
    LoadBalancer {
        arn: format!(
            "arn:aws:elasticloadbalancing:us-east-1:111111111111:loadbalancer/{short}/{name}/0123"
        ),
        name: name.into(),
        kind,
        internal: false,
        vpc_id: "vpc-0a".into(),
        az_ids: vec!["use1-az2".into(), "use1-az1".into()],
        subnet_ids: vec!["subnet-a".into(), "subnet-b".into()],
        state: "active".into(),
    }
}

fn with_load_balancers(reading: LoadBalancerReading<'_>) -> VpcFacts {
    vpc_facts(
        Observed {
            vpc: &vpc(),
            subnets: &[],
            route_tables: &[],
            endpoints: &[],
            quota: &QuotaReading::Read(50),
            zone_id: None,
            zone_names_not_ours: &[],
            zone_refused: None,
            load_balancers: reading,
        },
        1_000,
    )
}

#[test]
fn load_balancers_are_kept_with_an_albs_listeners_and_the_nlbs_reaching_it() {
    let web = load_balancer("web", LoadBalancerKind::Application);
    let demo = load_balancer("demo", LoadBalancerKind::Network);
    let listener = |port: u16, protocol: Protocol| Listener {
        arn: format!("{}-listener-{port}", web.arn),
        load_balancer_arn: web.arn.clone(),
        port,
        protocol,
        target_group_arn: None,
    };
    let listeners = BTreeMap::from([(
        web.arn.clone(),
        vec![listener(443, Protocol::Https), listener(80, Protocol::Http)],
    )]);
    let reached_by = BTreeMap::from([(web.arn.clone(), BTreeSet::from([demo.arn.clone()]))]);
    let f = with_load_balancers(LoadBalancerReading::Read {
        load_balancers: &[web.clone(), demo.clone()],
        listeners: &listeners,
        reached_by: &reached_by,
    });
    assert_eq!(validate(&f), Ok(()));
    assert_eq!(f.load_balancers_note, "");
    let arns: Vec<_> = f.load_balancers.iter().map(|l| l.arn.as_str()).collect();
    assert_eq!(arns, [web.arn.as_str(), demo.arn.as_str()], "by ARN");
    let alb = &f.load_balancers[0];
    assert_eq!(alb.kind, "application");
    assert_eq!(alb.az_ids, ["use1-az1", "use1-az2"]);
    assert_eq!(alb.reached_by, std::slice::from_ref(&demo.arn));
    let ports: Vec<_> = alb
        .listeners
        .iter()
        .map(|l| (l.port, l.protocol.as_str()))
        .collect();
    assert_eq!(ports, [(80, "HTTP"), (443, "HTTPS")]);

    // What the planners take back is what was read.
    let (lb, back) = load_balancers::seen(alb, "vpc-0a").expect("a known kind");
    assert_eq!(
        (lb.kind, lb.name.as_str(), &lb.subnet_ids, lb.state.as_str()),
        (
            LoadBalancerKind::Application,
            "web",
            &web.subnet_ids,
            "active"
        )
    );
    let ports: Vec<_> = back.iter().map(|l| (l.port, l.protocol.clone())).collect();
    assert_eq!(ports, [(80, Protocol::Http), (443, Protocol::Https)]);
}

#[test]
fn load_balancers_the_agent_may_not_read_are_none_with_why() {
    let f = with_load_balancers(LoadBalancerReading::Unreadable {
        why: "this agent may not call elasticloadbalancing:DescribeLoadBalancers",
    });
    assert!(f.load_balancers.is_empty());
    assert!(f.load_balancers_note.contains("DescribeLoadBalancers"));
    assert_eq!(validate(&f), Ok(()));
}

#[test]
fn load_balancers_out_of_bounds_or_of_an_unknown_kind_are_refused() {
    let one = load_balancer("web", LoadBalancerKind::Network);
    let f = with_load_balancers(LoadBalancerReading::Read {
        load_balancers: &[one],
        listeners: &BTreeMap::new(),
        reached_by: &BTreeMap::new(),
    });
    let mut odd = f.clone();
    odd.load_balancers[0].kind = "classic".into();
    assert_eq!(
        validate(&odd).map_err(|e| e.field),
        Err("facts.load_balancers.kind".to_string())
    );
    let mut many = f.clone();
    many.load_balancers = vec![f.load_balancers[0].clone(); load_balancers::MAX_LOAD_BALANCERS + 1];
    assert_eq!(
        validate(&many).map_err(|e| e.field),
        Err("facts.load_balancers".to_string())
    );
    let mut port = f;
    port.load_balancers[0].listeners = vec![pld_proto::v1::ListenerFacts {
        port: 70_000,
        protocol: "TCP".into(),
    }];
    assert_eq!(
        validate(&port).map_err(|e| e.field),
        Err("facts.load_balancers.listeners.port".to_string())
    );
}
