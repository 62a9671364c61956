use pld_proto::v1::{
    object, report_status_request, Acceptance, Agent, Kind, ListenerFacts, LoadBalancerFacts,
    Object, ReportStatusRequest, RouteTableFacts, Service, ServiceStatus, SubnetFacts, VpcFacts,
};

use super::*;
use crate::catalog::Catalog;
use crate::command::{Command, Op, PutOp};

const PROVIDER: &str = "111111111111";
const CONSUMER: &str = "222222222222";
const PROVIDER_VPC: &str = "vpc-0a000001";
const CONSUMER_VPC: &str = "vpc-0b000001";
const NLB: &str =
    "arn:aws:elasticloadbalancing:us-east-1:111111111111:loadbalancer/net/demo/50dc6c495c0c9188";
const ALB: &str =
    "arn:aws:elasticloadbalancing:us-east-1:111111111111:loadbalancer/app/web/7ab1e0000c0c9188";

fn apply(c: &mut Catalog, op: Op) {
    c.apply(&Command::new(op)).expect("applies");
}

fn put(c: &mut Catalog, object: object::Object) {
    apply(
        c,
        Op::Put(PutOp {
            object: Some(Object {
                object: Some(object),
            }),
            expected_mod_revision: None,
            now_unix_ms: 1_000,
        }),
    );
}

/// Subnets in `azs`, named by AZ letter as `account` would (the letters rotate per account).
fn facts(vpc: &str, account: &str, azs: &[&str]) -> VpcFacts {
    let shift = if account == PROVIDER { 3 } else { 0 };
    VpcFacts {
        ipv4_cidrs: vec!["10.1.0.0/16".into()],
        subnets: azs
            .iter()
            .enumerate()
            .map(|(i, az)| {
                let n: usize = az.trim_start_matches("use1-az").parse().unwrap_or(0);
                SubnetFacts {
                    id: format!("subnet-{vpc}-{i}"),
                    cidr: format!("10.1.{i}.0/24"),
                    az_id: az.to_string(),
                    az_name: format!("us-east-1{}", (b'a' + ((n + shift) % 6) as u8) as char),
                    ipv6_cidr: String::new(),
                }
            })
            .collect(),
        route_tables: vec![RouteTableFacts {
            id: format!("rtb-{vpc}"),
            main: true,
            subnet_ids: Vec::new(),
            routes: 1,
        }],
        endpoints: 0,
        endpoint_quota: 50,
        ..VpcFacts::default()
    }
}

fn agent(c: &mut Catalog, vpc: &str, account: &str, region: &str, facts: VpcFacts) {
    put(
        c,
        object::Object::Agent(Agent {
            vpc_id: vpc.into(),
            account_id: account.into(),
            region: region.into(),
            lease_ttl_seconds: 60,
            dns_zone: "pld.test".into(),
            ..Agent::default()
        }),
    );
    apply(
        c,
        Op::ReportStatus(ReportStatusRequest {
            kind: Kind::Agent as i32,
            key: vpc.into(),
            status: Some(report_status_request::Status::Agent(facts)),
        }),
    );
}

fn service(c: &mut Catalog, acceptance: Acceptance, principals: &[&str], az_ids: &[&str]) {
    put(
        c,
        object::Object::Service(Service {
            name: "demo".into(),
            vpc_id: PROVIDER_VPC.into(),
            load_balancer_arn: NLB.into(),
            ports: vec![443],
            acceptance: acceptance as i32,
            allowed_principals: principals.iter().map(|p| p.to_string()).collect(),
            ..Service::default()
        }),
    );
    apply(
        c,
        Op::ReportStatus(ReportStatusRequest {
            kind: Kind::Service as i32,
            key: "demo".into(),
            status: Some(report_status_request::Status::Service(ServiceStatus {
                state: "available".into(),
                endpoint_service_name: "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0"
                    .into(),
                az_ids: az_ids.iter().map(|a| a.to_string()).collect(),
                ..ServiceStatus::default()
            })),
        }),
    );
}

/// The provider VPC's load balancers as its agent reports them: demo's NLB, billing's NLB, and
/// an ALB `web` listening on 80 (HTTP) and 443 (HTTPS).
fn provider_load_balancers() -> Vec<LoadBalancerFacts> {
    let lb = |arn: &str, kind: &str, listeners: &[(u32, &str)]| LoadBalancerFacts {
        arn: arn.into(),
        kind: kind.into(),
        az_ids: vec!["use1-az1".into(), "use1-az2".into()],
        state: "active".into(),
        listeners: listeners
            .iter()
            .map(|(port, protocol)| ListenerFacts {
                port: *port,
                protocol: protocol.to_string(),
            })
            .collect(),
        reached_by: Vec::new(),
        subnet_ids: vec![
            format!("subnet-{PROVIDER_VPC}-0"),
            format!("subnet-{PROVIDER_VPC}-1"),
        ],
    };
    vec![
        lb(NLB, "network", &[]),
        lb(&NLB.replace("/demo/", "/billing/"), "network", &[]),
        lb(ALB, "application", &[(80, "HTTP"), (443, "HTTPS")]),
    ]
}

/// The provider VPC's facts: subnets in az1 and az2, and its load balancers.
fn provider_facts() -> VpcFacts {
    VpcFacts {
        load_balancers: provider_load_balancers(),
        ..facts(PROVIDER_VPC, PROVIDER, &["use1-az1", "use1-az2"])
    }
}

/// A provider offering demo in az1 and az2 to the consumer's account, automatically, and a
/// consumer VPC with subnets in `consumer_azs`.
fn world(consumer_azs: &[&str]) -> Catalog {
    let mut c = Catalog::default();
    agent(
        &mut c,
        PROVIDER_VPC,
        PROVIDER,
        "us-east-1",
        provider_facts(),
    );
    service(
        &mut c,
        Acceptance::Auto,
        &[&format!("arn:aws:iam::{CONSUMER}:root")],
        &["use1-az1", "use1-az2"],
    );
    agent(
        &mut c,
        CONSUMER_VPC,
        CONSUMER,
        "us-east-1",
        facts(CONSUMER_VPC, CONSUMER, consumer_azs),
    );
    c
}

fn actions(p: &Preview, account: &str) -> Vec<String> {
    p.accounts
        .get(&(account.to_string(), "us-east-1".to_string()))
        .map(|vpcs| {
            vpcs.iter()
                .flat_map(|v| v.steps.iter().map(|s| s.action.name().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn kinds(p: &Preview) -> Vec<(Severity, ProblemKind)> {
    p.problems.iter().map(|p| (p.severity, p.kind)).collect()
}

fn plan(c: &Catalog, vpcs: &[&str]) -> Preview {
    let vpcs: Vec<String> = vpcs.iter().map(|v| v.to_string()).collect();
    connect(c, "demo", &vpcs).expect("a plan")
}

#[test]
fn a_clean_connect_plans_the_endpoint_zone_name_and_acceptance() {
    let c = world(&["use1-az1", "use1-az2", "use1-az4"]);
    let p = plan(&c, &[CONSUMER_VPC]);
    assert!(p.is_clean(), "{:?}", p.problems);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert_eq!(
        actions(&p, CONSUMER),
        [
            "CreateVpcEndpoint",
            "CreateHostedZone",
            "ChangeTagsForResource",
            "ChangeResourceRecordSets"
        ]
    );
    assert_eq!(actions(&p, PROVIDER), ["AcceptVpcEndpointConnections"]);
    let response = p.to_proto(7);
    assert_eq!(response.revision, 7);
    assert_eq!(response.accounts.len(), 2);
    assert_eq!(response.accounts[0].rate_wait_seconds, 0.0);
}

#[test]
fn subnets_outside_the_service_s_azs_fail_with_each_account_s_az_names() {
    let c = world(&["use1-az4", "use1-az6"]);
    let p = plan(&c, &[CONSUMER_VPC]);
    assert!(!p.is_clean());
    assert_eq!(kinds(&p), [(Severity::Error, ProblemKind::AzFit)]);
    let message = &p.problems[0].message;
    // The provider calls use1-az1 us-east-1e, the consumer calls use1-az4 us-east-1e too:
    // only the IDs tell them apart, so both are shown.
    assert!(
        message.contains("use1-az1 (us-east-1e to 111111111111)")
            && message.contains("use1-az4 (us-east-1e to 222222222222)"),
        "{message}"
    );
    assert!(actions(&p, CONSUMER).is_empty(), "nothing is created");
}

#[test]
fn an_account_the_service_does_not_allow_is_an_error() {
    let mut c = world(&["use1-az1"]);
    service(&mut c, Acceptance::Auto, &[], &["use1-az1", "use1-az2"]);
    let p = plan(&c, &[CONSUMER_VPC]);
    // One finding, in words that say what the provider adds; not the planner's refusal too.
    assert_eq!(
        kinds(&p),
        [(Severity::Error, ProblemKind::PrincipalNotAllowed)]
    );
    assert!(p.problems[0].message.contains("arn:aws:iam::"));
}

#[test]
fn manual_acceptance_is_a_warning_and_the_provider_waits() {
    let mut c = world(&["use1-az1"]);
    service(
        &mut c,
        Acceptance::Manual,
        &[&format!("arn:aws:iam::{CONSUMER}:root")],
        &["use1-az1", "use1-az2"],
    );
    let p = plan(&c, &[CONSUMER_VPC]);
    assert!(p.is_clean());
    assert_eq!(
        kinds(&p),
        [(Severity::Warning, ProblemKind::AcceptanceManual)]
    );
    assert!(actions(&p, PROVIDER).is_empty());
}

#[test]
fn a_vpc_at_its_endpoint_quota_cannot_take_another() {
    let mut c = world(&["use1-az1"]);
    let mut full = facts(CONSUMER_VPC, CONSUMER, &["use1-az1"]);
    full.endpoints = 50;
    full.quota_note = "AWS's default of 50 assumed: not allowed".into();
    agent(&mut c, CONSUMER_VPC, CONSUMER, "us-east-1", full);
    let p = plan(&c, &[CONSUMER_VPC]);
    assert_eq!(kinds(&p), [(Severity::Error, ProblemKind::QuotaReached)]);
    assert!(p.problems[0].message.contains("default of 50 assumed"));
}

#[test]
fn a_name_held_by_records_pld_does_not_own_clashes() {
    let mut c = world(&["use1-az1"]);
    let mut f = facts(CONSUMER_VPC, CONSUMER, &["use1-az1"]);
    f.zone_id = "Z0EXISTING".into();
    f.zone_names_not_ours = vec!["demo.pld.test.".into()];
    agent(&mut c, CONSUMER_VPC, CONSUMER, "us-east-1", f);
    let p = plan(&c, &[CONSUMER_VPC]);
    assert_eq!(kinds(&p), [(Severity::Error, ProblemKind::NameClash)]);
    // The zone exists: no zone steps.
    assert_eq!(actions(&p, CONSUMER), ["CreateVpcEndpoint"]);
}

#[test]
fn a_zone_of_the_name_that_is_not_plds_clashes_and_no_zone_is_planned() {
    let mut c = world(&["use1-az1"]);
    let mut f = facts(CONSUMER_VPC, CONSUMER, &["use1-az1"]);
    f.zone_refused = "the hosted zone Z0THEIRS (pld.test.) is not pld's".into();
    agent(&mut c, CONSUMER_VPC, CONSUMER, "us-east-1", f);
    let p = plan(&c, &[CONSUMER_VPC]);
    assert_eq!(kinds(&p), [(Severity::Error, ProblemKind::NameClash)]);
    assert!(p.problems[0].message.contains("Z0THEIRS"));
    assert_eq!(actions(&p, CONSUMER), ["CreateVpcEndpoint"]);
}

#[test]
fn another_region_is_not_offered() {
    let mut c = world(&["use1-az1"]);
    agent(
        &mut c,
        CONSUMER_VPC,
        CONSUMER,
        "us-west-2",
        facts(CONSUMER_VPC, CONSUMER, &["use1-az1"]),
    );
    let p = plan(&c, &[CONSUMER_VPC]);
    assert_eq!(
        kinds(&p),
        [(Severity::Error, ProblemKind::RegionNotOffered)]
    );
    assert!(
        p.problems[0]
            .message
            .contains("pld services offer demo --region us-west-2"),
        "{}",
        p.problems[0].message
    );
    assert!(actions(&p, CONSUMER).is_empty());

    // Offered there: the consumer's agent makes an interface endpoint to the service in
    // us-east-1 (ServiceRegion), in its own region's AZs, once AWS offers it there.
    let offered = |state: &str| -> Catalog {
        let mut c = c.clone();
        let mut demo = match c.service("demo") {
            Some(s) => s.clone(),
            None => panic!("demo is registered"),
        };
        demo.regions = vec!["us-west-2".into()];
        let mut status = demo.status.take().unwrap_or_default();
        demo.meta = None;
        put(&mut c, object::Object::Service(demo));
        status.regions = vec![pld_proto::v1::ServiceRegionState {
            region: "us-west-2".into(),
            state: state.into(),
        }];
        apply(
            &mut c,
            Op::ReportStatus(ReportStatusRequest {
                kind: Kind::Service as i32,
                key: "demo".into(),
                status: Some(report_status_request::Status::Service(status)),
            }),
        );
        agent(
            &mut c,
            CONSUMER_VPC,
            CONSUMER,
            "us-west-2",
            facts(CONSUMER_VPC, CONSUMER, &["usw2-az1", "usw2-az2"]),
        );
        c
    };
    let c = offered("Available");
    let p = plan(&c, &[CONSUMER_VPC]);
    assert!(p.is_clean(), "{:?}", p.problems);
    let steps = &p.accounts[&(CONSUMER.to_string(), "us-west-2".to_string())][0].steps;
    assert_eq!(steps[0].action.name(), "CreateVpcEndpoint");
    let c = offered("Pending");
    let p = plan(&c, &[CONSUMER_VPC]);
    assert_eq!(
        kinds(&p),
        [(Severity::Warning, ProblemKind::ProviderNotReady)]
    );
    assert!(
        p.problems[0].message.contains("Pending"),
        "{:?}",
        p.problems
    );
}

#[test]
fn twenty_endpoints_in_one_account_wait_on_create_vpc_endpoint_s_bucket() {
    let mut c = world(&["use1-az1"]);
    let vpcs: Vec<String> = (0..20).map(|i| format!("vpc-0c{i:06}")).collect();
    for vpc in &vpcs {
        agent(
            &mut c,
            vpc,
            CONSUMER,
            "us-east-1",
            facts(vpc, CONSUMER, &["use1-az1"]),
        );
    }
    let p = connect(&c, "demo", &vpcs).expect("a plan");
    assert!(p.is_clean(), "{:?}", p.problems);
    // CreateVpcEndpoint's bucket: a burst of 4, then 0.3 a second, so the other 16 take
    // 16 / 0.3 s. Route 53's: each VPC makes its zone, tags it and publishes its name, 60
    // calls against a burst of 50, then 10 a second.
    let wait = p.rate_wait(CONSUMER, "us-east-1");
    assert!((wait - (16.0 / 0.3 + 10.0 / 10.0)).abs() < 1e-9, "{wait}");
    let rate: Vec<&str> = p
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::Rate)
        .map(|p| p.message.as_str())
        .collect();
    assert_eq!(rate.len(), 2, "{:?}", p.problems);
    assert!(
        rate.iter()
            .any(|m| m.contains("20 CreateVpcEndpoint calls") && m.contains("wait 53 s")),
        "{rate:?}"
    );
    // The provider accepts them all in one call, as its agent does.
    assert_eq!(actions(&p, PROVIDER), ["AcceptVpcEndpointConnections"]);
}

#[test]
fn bad_input_is_an_error_and_unknown_vpcs_are_problems() {
    let c = world(&["use1-az1"]);
    assert_eq!(
        connect(&c, "nope", &[CONSUMER_VPC.to_string()]),
        Err(PreviewError::UnknownService("nope".into()))
    );
    assert!(matches!(
        connect(&c, "demo", &["vpc-zz".to_string()]),
        Err(PreviewError::Invalid(_))
    ));
    assert!(matches!(
        connect(&c, "demo", &[]),
        Err(PreviewError::Invalid(_))
    ));
    let p = plan(&c, &["vpc-0d000001"]);
    assert_eq!(kinds(&p), [(Severity::Error, ProblemKind::UnknownVpc)]);
}

#[test]
fn an_existing_binding_is_no_change() {
    let mut c = world(&["use1-az1"]);
    put(
        &mut c,
        object::Object::Binding(pld_proto::v1::Binding {
            service: "demo".into(),
            consumer_vpc_id: CONSUMER_VPC.into(),
            ..Default::default()
        }),
    );
    let p = plan(&c, &[CONSUMER_VPC]);
    assert_eq!(kinds(&p), [(Severity::Note, ProblemKind::NoChange)]);
    assert!(p.accounts.is_empty());
}

#[test]
fn disconnecting_takes_the_name_down_then_deletes_the_endpoint() {
    let mut c = world(&["use1-az1"]);
    put(
        &mut c,
        object::Object::Binding(pld_proto::v1::Binding {
            service: "demo".into(),
            consumer_vpc_id: CONSUMER_VPC.into(),
            ..pld_proto::v1::Binding::default()
        }),
    );
    let vpcs = [CONSUMER_VPC.to_string()];
    // No endpoint yet: only the binding goes.
    let p = disconnect(&c, "demo", &vpcs).unwrap();
    assert!(actions(&p, CONSUMER).is_empty());
    assert_eq!(kinds(&p), [(Severity::Note, ProblemKind::NoChange)]);
    apply(
        &mut c,
        Op::ReportStatus(ReportStatusRequest {
            kind: Kind::Binding as i32,
            key: crate::catalog::binding_key("demo", CONSUMER_VPC),
            status: Some(report_status_request::Status::Binding(
                pld_proto::v1::BindingStatus {
                    phase: "ready".into(),
                    endpoint_id: "vpce-0123456789abcdef0".into(),
                    dns_name: "demo.pld.test".into(),
                    addresses: vec!["10.1.0.5".into()],
                    ..pld_proto::v1::BindingStatus::default()
                },
            )),
        }),
    );
    let p = disconnect(&c, "demo", &vpcs).unwrap();
    assert_eq!(
        actions(&p, CONSUMER),
        ["ChangeResourceRecordSets", "DeleteVpcEndpoints"]
    );
    assert!(actions(&p, PROVIDER).is_empty());
    // Its last binding: the zone's retirement is noted.
    assert!(p
        .problems
        .iter()
        .any(|p| p.message.contains("last binding")));
    // Not bound, or an unknown service.
    let p = disconnect(&c, "demo", &["vpc-0e0e0e0e".to_string()]).unwrap();
    assert_eq!(kinds(&p), [(Severity::Note, ProblemKind::NoChange)]);
    assert!(matches!(
        disconnect(&c, "nope", &vpcs),
        Err(PreviewError::UnknownService(_))
    ));
}

mod moving;
mod register;
