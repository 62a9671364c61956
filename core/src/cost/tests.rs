//! Figures checked against values worked out by hand from the prices in `prices/aws.toml`
//! (us-east-1): an interface endpoint $0.01 per AZ-hour and $0.01/GB (first PB), an NLB
//! $0.0225/hour and $0.006 per NLCU-hour, a NAT gateway $0.045/hour and $0.045/GB, a transit
//! gateway attachment $0.05/hour and $0.02/GB, data between AZs $0.01/GB each way; 730 hours a
//! month.

use pld_proto::v1::{AlbFront, BindingStatus, ServiceStatus, SubnetFacts, VpcFacts};

use super::*;

const PROVIDER: &str = "111111111111";
const CONSUMER: &str = "222222222222";

fn agent(vpc: &str, account: &str, cidr: &str, azs: &[&str]) -> Agent {
    Agent {
        vpc_id: vpc.into(),
        account_id: account.into(),
        region: "us-east-1".into(),
        facts: Some(VpcFacts {
            ipv4_cidrs: vec![cidr.into()],
            subnets: azs
                .iter()
                .enumerate()
                .map(|(i, az)| SubnetFacts {
                    id: format!("subnet-{vpc}-{i}"),
                    cidr: String::new(),
                    az_id: (*az).into(),
                    az_name: String::new(),
                    ipv6_cidr: String::new(),
                })
                .collect(),
            endpoint_quota: 50,
            ..VpcFacts::default()
        }),
        ..Agent::default()
    }
}

fn service(name: &str, arn_kind: &str, azs: &[&str], front: bool) -> Service {
    Service {
        name: name.into(),
        vpc_id: "vpc-p".into(),
        load_balancer_arn: format!(
            "arn:aws:elasticloadbalancing:us-east-1:{PROVIDER}:loadbalancer/{arn_kind}/lb-{name}/0123456789abcdef"
        ),
        ports: vec![443],
        allowed_principals: vec![format!("arn:aws:iam::{CONSUMER}:root")],
        status: Some(ServiceStatus {
            state: "available".into(),
            endpoint_service_name: format!("com.amazonaws.vpce.us-east-1.vpce-svc-{name}"),
            az_ids: azs.iter().map(|a| (*a).to_string()).collect(),
            alb_front: front.then(|| {
                Box::new(AlbFront {
                load_balancer_arn: format!(
                    "arn:aws:elasticloadbalancing:us-east-1:{PROVIDER}:loadbalancer/net/pld-{name}/0123456789abcdef"
                ),
                    state: "active".into(),
                    ports: Vec::new(),
                })
            }),
            ..ServiceStatus::default()
        }),
        ..Service::default()
    }
}

fn binding(service: &str, vpc: &str, endpoint: bool) -> Binding {
    Binding {
        service: service.into(),
        consumer_vpc_id: vpc.into(),
        status: endpoint.then(|| BindingStatus {
            phase: "ready".into(),
            endpoint_id: "vpce-0123456789abcdef0".into(),
            ..BindingStatus::default()
        }),
        ..Binding::default()
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn assert_cost(what: &str, got: &Priced, per_hour_fixed: f64, data_per_month: f64) {
    let c = got
        .as_ref()
        .unwrap_or_else(|e| panic!("{what}: not priced: {e}"));
    assert!(
        close(c.fixed_per_hour, per_hour_fixed) && close(c.data_per_month, data_per_month),
        "{what}: {c:?}, expected {per_hour_fixed}/hour and {data_per_month}/month of data"
    );
}

struct World {
    agents: Vec<Agent>,
    services: Vec<Service>,
    bindings: Vec<Binding>,
}

/// A provider with an NLB service (three AZs), an ALB service pld fronts (two AZs) and a GWLB
/// service (one AZ); consumer c1 in AZs 1-3, consumer c2 in AZ 4 whose range overlaps the
/// provider's, consumer c3 that has reported no facts.
fn world() -> World {
    let mut c3 = agent("vpc-c3", "333333333333", "10.3.0.0/16", &[]);
    c3.facts = None;
    World {
        agents: vec![
            agent(
                "vpc-p",
                PROVIDER,
                "10.0.0.0/16",
                &["use1-az1", "use1-az2", "use1-az4"],
            ),
            agent(
                "vpc-c1",
                CONSUMER,
                "10.1.0.0/16",
                &["use1-az1", "use1-az2", "use1-az3"],
            ),
            agent("vpc-c2", CONSUMER, "10.0.0.0/16", &["use1-az4"]),
            c3,
        ],
        services: vec![
            service(
                "billing",
                "net",
                &["use1-az1", "use1-az2", "use1-az4"],
                false,
            ),
            service("web", "app", &["use1-az1", "use1-az2"], true),
            service("fw", "gwy", &["use1-az1"], false),
        ],
        bindings: vec![
            binding("billing", "vpc-c1", true),
            binding("web", "vpc-c1", true),
            binding("s3", "vpc-c1", true),
            binding("fw", "vpc-c1", false),
            binding("billing", "vpc-c2", true),
            binding("billing", "vpc-c3", false),
        ],
    }
}

fn traffic() -> Traffic {
    Traffic {
        gb_per_month: 100.0,
        services: [("billing".to_string(), 500.0)].into_iter().collect(),
    }
}

fn run(w: &World, prices: &Prices) -> Estimate {
    estimate(&w.agents, &w.services, &w.bindings, prices, &traffic())
}

fn of<'a>(e: &'a Estimate, service: &str, vpc: &str) -> &'a BindingCost {
    e.bindings
        .iter()
        .find(|b| b.service == service && b.consumer_vpc == vpc)
        .expect("the binding is estimated")
}

#[test]
fn each_binding_costs_its_endpoints_az_hours_and_its_data() {
    let e = run(
        &world(),
        &Prices::built_in().expect("the shipped prices parse"),
    );
    // c1 → billing: AZs 1 and 2 are both offered and present: 2 × $0.01/hour; 500 GB × $0.01.
    let b = of(&e, "billing", "vpc-c1");
    assert_eq!(
        (b.kind, b.azs, b.billing_now),
        (EndpointKind::Interface, 2, true)
    );
    assert_cost("c1 billing", &b.privatelink, 0.02, 5.0);
    assert!(close(
        b.privatelink.as_ref().unwrap().per_month(),
        0.02 * 730.0 + 5.0
    ));
    // c1 → web: 2 AZs, the default 100 GB.
    assert_cost("c1 web", &of(&e, "web", "vpc-c1").privatelink, 0.02, 1.0);
    // c2 → billing: only AZ 4: 1 × $0.01/hour; 500 GB.
    let c2 = of(&e, "billing", "vpc-c2");
    assert_eq!(c2.azs, 1);
    assert_cost("c2 billing", &c2.privatelink, 0.01, 5.0);
    // s3 is a gateway endpoint: free.
    let s3 = of(&e, "s3", "vpc-c1");
    assert_eq!(s3.kind, EndpointKind::Gateway);
    assert_cost("c1 s3", &s3.privatelink, 0.0, 0.0);
    // The GWLB endpoint has no shipped price: named, not guessed.
    let fw = of(&e, "fw", "vpc-c1");
    assert_eq!((fw.kind, fw.azs), (EndpointKind::GatewayLoadBalancer, 1));
    assert!(fw
        .privatelink
        .as_ref()
        .unwrap_err()
        .contains("gwlb_endpoint_az_hour"));
    // c3 reported no facts: its AZ count is unknown.
    assert!(of(&e, "billing", "vpc-c3")
        .privatelink
        .as_ref()
        .unwrap_err()
        .contains("facts"));
    assert!(e
        .unpriced
        .iter()
        .any(|u| u.contains("gwlb_endpoint_az_hour")));
    assert!(e.unpriced.iter().any(|u| u.contains("vpc-c3")));
}

#[test]
fn services_vpcs_and_accounts_add_up() {
    let e = run(&world(), &Prices::built_in().unwrap());
    // web's NLB, built by pld: $0.0225/hour, and its 100 GB as 100 NLCU-hours at $0.006.
    let web = e.services.iter().find(|s| s.name == "web").unwrap();
    assert_cost("web nlb", web.nlb.as_ref().unwrap(), 0.0225, 0.6);
    // The service's total is its NLB and its consumer's endpoint.
    assert!(close(web.total.fixed_per_hour, 0.0225 + 0.02));
    assert!(close(web.total.data_per_month, 0.6 + 1.0));
    assert!(e
        .services
        .iter()
        .find(|s| s.name == "billing")
        .unwrap()
        .nlb
        .is_none());
    // The consumer account pays its endpoints: 0.02 + 0.02 + 0.01 an hour, 5 + 1 + 5 of data:
    // 0.05 × 730 + 11 = 47.50 a month.
    let consumer = e.accounts.iter().find(|a| a.id == CONSUMER).unwrap();
    assert!(close(consumer.cost.per_month(), 47.5), "{consumer:?}");
    // The provider's account pays the NLB: 0.0225 × 730 + 0.6 = 17.025.
    let provider = e.accounts.iter().find(|a| a.id == PROVIDER).unwrap();
    assert!(close(provider.cost.per_month(), 17.025), "{provider:?}");
    assert!(close(e.total.per_month(), 47.5 + 17.025));
    assert!(close(
        e.total.per_hour(),
        0.05 + 0.0225 + (11.0 + 0.6) / 730.0
    ));
    let c1 = e.vpcs.iter().find(|v| v.id == "vpc-c1").unwrap();
    assert!(close(c1.cost.per_month(), 0.04 * 730.0 + 6.0));
}

#[test]
fn the_same_traffic_over_nat_peering_and_a_transit_gateway() {
    let e = run(&world(), &Prices::built_in().unwrap());
    let b = of(&e, "billing", "vpc-c1");
    // A NAT gateway in each of its 2 AZs: 2 × $0.045/hour; 500 GB × $0.045 = 22.50.
    assert_cost("nat", &b.nat_gateway, 0.09, 22.5);
    // Peering: no hourly charge; 500 GB between AZs, $0.01 out and $0.01 in: $10.
    assert_cost("peering", &b.peering, 0.0, 10.0);
    // A transit gateway: two attachments at $0.05/hour; 500 GB × $0.02 = $10.
    assert_cost("tgw", &b.transit_gateway, 0.1, 10.0);
    // c2 overlaps the provider: neither peering nor a transit gateway can carry it.
    let c2 = of(&e, "billing", "vpc-c2");
    assert!(c2.peering.as_ref().unwrap_err().contains("overlap"));
    assert!(c2.transit_gateway.is_err());
    // s3 is an AWS service: no peering.
    assert!(of(&e, "s3", "vpc-c1").peering.is_err());

    let alt = &e.alternatives;
    // NAT gateways: c1 in 2 AZs, c2 in 1, c3 (AZs unknown) in at least 1: 4 × $0.045; every
    // binding's data: c1 500 + 100 + 100 + 100, c2 500, c3 500 = 1,800 GB × $0.045 = $81.
    assert!(close(alt.nat_gateway.fixed_per_hour, 0.18), "{alt:?}");
    assert!(close(alt.nat_gateway.data_per_month, 81.0), "{alt:?}");
    // Peering carries c1's billing, web and fw: (500 + 100 + 100) × $0.02 = $14.
    assert!(close(alt.peering.data_per_month, 14.0));
    assert!(close(alt.peering.fixed_per_hour, 0.0));
    // A transit gateway attaches vpc-c1 and vpc-p once: 2 × $0.05; 700 GB × $0.02 = $14.
    assert!(close(alt.transit_gateway.fixed_per_hour, 0.1));
    assert!(close(alt.transit_gateway.data_per_month, 14.0));
    // s3 (an AWS service), c2 (overlap) and c3 (no facts) neither can carry.
    assert_eq!(alt.not_routable, 3);
}

#[test]
fn interface_data_is_tiered_on_the_accounts_monthly_volume() {
    let mut w = world();
    w.bindings
        .retain(|b| b.service == "billing" && b.consumer_vpc_id == "vpc-c1");
    let traffic = Traffic {
        gb_per_month: 2_000_000.0,
        services: Default::default(),
    };
    let e = estimate(
        &w.agents,
        &w.services,
        &w.bindings,
        &Prices::built_in().unwrap(),
        &traffic,
    );
    // First PB (1,048,576 GB) at $0.01, the other 951,424 GB at $0.006.
    let expected = 1_048_576.0 * 0.01 + 951_424.0 * 0.006;
    assert_cost(
        "tiered",
        &of(&e, "billing", "vpc-c1").privatelink,
        0.02,
        expected,
    );
    let tiers = Prices::built_in().unwrap();
    let price = tiers.get("us-east-1", Item::InterfaceEndpointGb).unwrap();
    // Past 5 PB, $0.004.
    let six_pb = 6.0 * 1_048_576.0;
    assert!(close(
        price.for_volume(six_pb),
        1_048_576.0 * 0.01 + 4.0 * 1_048_576.0 * 0.006 + 1_048_576.0 * 0.004
    ));
}

#[test]
fn an_override_prices_what_the_shipped_file_does_not() {
    let file = CostFile::parse(
        r#"
[regions.us-east-1.gwlb_endpoint_az_hour]
usd = 0.02
[regions.us-east-1.gwlb_endpoint_gb]
usd = 0.004
[traffic]
gb_per_month = 100
"#,
        "cost.toml",
    )
    .expect("a valid cost file");
    let prices = file.prices("cost.toml").unwrap();
    let e = run(&world(), &prices);
    // One AZ × $0.02/hour; 100 GB × $0.004.
    assert_cost("fw", &of(&e, "fw", "vpc-c1").privatelink, 0.02, 0.4);
    let gwlb = prices.get("us-east-1", Item::GwlbEndpointAzHour).unwrap();
    assert_eq!(gwlb.source, "override in cost.toml");
    // The rest is still the shipped file's.
    assert_eq!(
        prices.get("us-east-1", Item::NlbHour).unwrap().source,
        "https://aws.amazon.com/elasticloadbalancing/pricing/"
    );
}

#[test]
fn an_unpriced_region_is_named_not_guessed() {
    let mut w = world();
    for a in &mut w.agents {
        a.region = "ap-south-2".into();
    }
    let e = run(&w, &Prices::built_in().unwrap());
    let why = of(&e, "billing", "vpc-c1").privatelink.clone().unwrap_err();
    assert!(
        why.contains("ap-south-2") && why.contains("--prices"),
        "{why}"
    );
    assert!(close(e.total.per_month(), 0.0));
}

#[test]
fn the_shipped_prices_name_their_source_and_date() {
    let prices = Prices::built_in().expect("prices/aws.toml parses");
    let east = &prices.regions["us-east-1"];
    assert!(east.len() >= 10);
    for (item, p) in east {
        assert!(p.source.starts_with("https://"), "{item}: {p:?}");
        assert!(is_date(&p.read), "{item}: {p:?}");
    }
}

#[test]
fn bad_cost_files_are_refused_naming_the_entry() {
    let bad = [
        ("[regions.us-east-1.nlb_hour]\nusd = -1\n", "regions.us-east-1.nlb_hour"),
        (
            "[regions.us-east-1.nlb_hour]\nusd = 1\ntiers = [{ usd = 1 }]\n",
            "either usd or tiers",
        ),
        ("[regions.us-east-1.nlb_hours]\nusd = 1\n", "nlb_hours"),
        (
            "[regions.us-east-1.interface_endpoint_gb]\ntiers = [{ up_to_gb = 10, usd = 1 }]\n",
            "last tier",
        ),
        (
            "[regions.us-east-1.interface_endpoint_gb]\ntiers = [{ up_to_gb = 10, usd = 1 }, { up_to_gb = 5, usd = 1 }, { usd = 1 }]\n",
            "tier 2",
        ),
        ("[regions.us-east-1.nlb_hour]\nusd = 1\nread = \"yesterday\"\n", "YYYY-MM-DD"),
        ("[traffic]\ngb_per_month = -5\n", "gb_per_month"),
        ("[traffic.services]\nbilling = nan\n", "traffic.services.billing"),
        ("[traffik]\n", "traffik"),
        ("not toml", "cost.toml"),
    ];
    for (text, names) in bad {
        let err = CostFile::parse(text, "cost.toml")
            .expect_err(text)
            .to_string();
        assert!(err.contains(names), "{text:?}: {err}");
    }
}

fn is_date(s: &str) -> bool {
    s.len() == 10 && s.chars().filter(|c| *c == '-').count() == 2
}
