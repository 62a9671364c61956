//! `pld plan services register`: the endpoint service and principals, a move, and the front
//! on an ALB, from the catalog alone.

use super::*;

pub(super) fn registered(name: &str, vpc: &str, arn: &str, principals: &[&str]) -> Service {
    Service {
        name: name.into(),
        vpc_id: vpc.into(),
        load_balancer_arn: arn.into(),
        ports: vec![443],
        acceptance: Acceptance::Auto as i32,
        allowed_principals: principals.iter().map(|p| p.to_string()).collect(),
        ..Service::default()
    }
}

#[test]
fn registering_a_service_plans_its_endpoint_service_and_principals() {
    let c = world(&["use1-az1"]);
    let other = NLB.replace("/demo/", "/billing/");
    let allowed = format!("arn:aws:iam::{CONSUMER}:root");
    let p = register(
        &c,
        &registered("billing", PROVIDER_VPC, &other, &[&allowed]),
    )
    .expect("a plan");
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert_eq!(
        actions(&p, PROVIDER),
        [
            "CreateVpcEndpointServiceConfiguration",
            "ModifyVpcEndpointServicePermissions"
        ]
    );
    // Without principals there is nothing to allow.
    let p = register(&c, &registered("billing", PROVIDER_VPC, &other, &[])).unwrap();
    assert_eq!(
        actions(&p, PROVIDER),
        ["CreateVpcEndpointServiceConfiguration"]
    );
}

#[test]
fn a_load_balancer_of_another_account_or_region_is_refused_before_any_call() {
    let c = world(&["use1-az1"]);
    let foreign = NLB.replace(PROVIDER, "333333333333");
    let p = register(&c, &registered("billing", PROVIDER_VPC, &foreign, &[])).unwrap();
    assert!(!p.is_clean());
    assert!(
        p.problems[0].message.contains("333333333333"),
        "{:?}",
        p.problems
    );
    let west = NLB.replace("us-east-1", "us-west-2");
    let p = register(&c, &registered("billing", PROVIDER_VPC, &west, &[])).unwrap();
    assert_eq!(kinds(&p), [(Severity::Error, ProblemKind::Refused)]);
    assert!(p.problems[0].message.contains("us-west-2"));
}

#[test]
fn changing_principals_syncs_them_and_names_the_consumers_left_out() {
    let mut c = world(&["use1-az1"]);
    put(
        &mut c,
        object::Object::Binding(pld_proto::v1::Binding {
            service: "demo".into(),
            consumer_vpc_id: CONSUMER_VPC.into(),
            ..pld_proto::v1::Binding::default()
        }),
    );
    let allowed = format!("arn:aws:iam::{CONSUMER}:root");
    let extra = "arn:aws:iam::444444444444:root";
    // Same load balancer, one more principal: only the permission change.
    let p = register(
        &c,
        &registered("demo", PROVIDER_VPC, NLB, &[&allowed, extra]),
    )
    .unwrap();
    assert!(p.is_clean(), "{:?}", p.problems);
    assert_eq!(
        actions(&p, PROVIDER),
        ["ModifyVpcEndpointServicePermissions"]
    );
    // Dropping the consumer's account: its binding fails, and the plan says so.
    let p = register(&c, &registered("demo", PROVIDER_VPC, NLB, &[extra])).unwrap();
    assert_eq!(
        kinds(&p),
        [(Severity::Error, ProblemKind::PrincipalNotAllowed)]
    );
    assert!(p.problems[0].message.contains(CONSUMER_VPC));
    // Nothing changed: nothing to do.
    let p = register(&c, &registered("demo", PROVIDER_VPC, NLB, &[&allowed])).unwrap();
    assert!(actions(&p, PROVIDER).is_empty());
    assert_eq!(kinds(&p), [(Severity::Note, ProblemKind::NoChange)]);
}

#[test]
fn registering_in_a_vpc_without_an_agent_or_invalidly() {
    let c = world(&["use1-az1"]);
    let p = register(&c, &registered("billing", "vpc-0f0f0f0f", NLB, &[])).unwrap();
    assert_eq!(kinds(&p), [(Severity::Warning, ProblemKind::UnknownVpc)]);
    assert!(p.accounts.is_empty());
    assert!(matches!(
        register(&c, &registered("Bad!", PROVIDER_VPC, NLB, &[])),
        Err(PreviewError::Invalid(_))
    ));
}

fn with_provider_facts(c: &mut Catalog, edit: impl FnOnce(&mut VpcFacts)) {
    let mut f = provider_facts();
    edit(&mut f);
    agent(c, PROVIDER_VPC, PROVIDER, "us-east-1", f);
}

#[test]
fn a_service_on_an_alb_plans_the_front_its_agent_builds_then_the_endpoint_service_on_it() {
    let c = world(&["use1-az1"]);
    let allowed = format!("arn:aws:iam::{CONSUMER}:root");
    let mut web = registered("web", PROVIDER_VPC, ALB, &[&allowed]);
    web.ports = vec![443, 80];
    let p = register(&c, &web).expect("a plan");
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert_eq!(
        actions(&p, PROVIDER),
        [
            // Round 1: the NLB and a group per port; round 2: the ALB in each group and a
            // listener per port on the NLB; then the endpoint service on the NLB.
            "CreateLoadBalancer",
            "CreateTargetGroup",
            "CreateTargetGroup",
            "RegisterTargets",
            "CreateListener",
            "RegisterTargets",
            "CreateListener",
            "CreateVpcEndpointServiceConfiguration",
            "ModifyVpcEndpointServicePermissions"
        ]
    );
    let steps = &p.accounts[&(PROVIDER.to_string(), "us-east-1".to_string())][0].steps;
    let nlb = &steps[0].target;
    assert!(nlb.contains("pld-"), "{nlb}");
    let service = steps
        .iter()
        .find(|s| s.action.name() == "CreateVpcEndpointServiceConfiguration")
        .map(|s| s.target.as_str())
        .unwrap_or_default();
    assert!(
        service.contains("loadbalancer/net/pld-") && !service.contains("/app/"),
        "the endpoint service goes on the NLB, not the ALB: {service}"
    );
}

#[test]
fn a_port_the_alb_does_not_listen_on_is_refused_with_the_ports_it_does() {
    let c = world(&["use1-az1"]);
    let mut web = registered("web", PROVIDER_VPC, ALB, &[]);
    web.ports = vec![8443];
    let p = register(&c, &web).unwrap();
    assert_eq!(kinds(&p), [(Severity::Error, ProblemKind::Refused)]);
    assert!(
        p.problems[0].message.contains("no listener on port 8443")
            && p.problems[0].message.contains("80, 443"),
        "{}",
        p.problems[0].message
    );
    assert!(actions(&p, PROVIDER).is_empty(), "nothing is made");
}

#[test]
fn an_alb_two_nlbs_reach_already_is_refused() {
    let mut c = world(&["use1-az1"]);
    with_provider_facts(&mut c, |f| {
        let alb = f.load_balancers.iter_mut().find(|l| l.arn == ALB).unwrap();
        alb.reached_by = vec![NLB.into(), NLB.replace("/demo/", "/billing/")];
    });
    let p = register(&c, &registered("web", PROVIDER_VPC, ALB, &[])).unwrap();
    assert_eq!(kinds(&p), [(Severity::Error, ProblemKind::Refused)]);
    assert!(p.problems[0].message.contains("2 network load balancers"));
}

#[test]
fn a_load_balancer_the_agent_did_not_find_in_the_vpc_is_refused_unless_it_could_not_look() {
    let mut c = world(&["use1-az1"]);
    let gone = NLB.replace("/demo/", "/gone/");
    let p = register(&c, &registered("billing", PROVIDER_VPC, &gone, &[])).unwrap();
    assert_eq!(kinds(&p), [(Severity::Error, ProblemKind::Refused)]);
    assert!(p.problems[0].message.contains("next resync"));
    let gone_alb = ALB.replace("/web/", "/gone/");
    let p = register(&c, &registered("web", PROVIDER_VPC, &gone_alb, &[])).unwrap();
    assert_eq!(kinds(&p), [(Severity::Error, ProblemKind::Refused)]);

    // An agent that may not read ELBv2: the plan says it cannot tell, and does not refuse.
    with_provider_facts(&mut c, |f| {
        f.load_balancers.clear();
        f.load_balancers_note =
            "this agent may not call elasticloadbalancing:DescribeLoadBalancers".into();
    });
    let p = register(&c, &registered("billing", PROVIDER_VPC, &gone, &[])).unwrap();
    assert!(p.is_clean(), "{:?}", p.problems);
    let p = register(&c, &registered("web", PROVIDER_VPC, ALB, &[])).unwrap();
    assert_eq!(kinds(&p), [(Severity::Warning, ProblemKind::NoChange)]);
    assert!(p.problems[0].message.contains("DescribeLoadBalancers"));
}

#[test]
fn changing_the_regions_of_a_service_plans_one_change_of_them() {
    let c = world(&["use1-az1"]);
    let allowed = format!("arn:aws:iam::{CONSUMER}:root");
    let mut demo = registered("demo", PROVIDER_VPC, NLB, &[&allowed]);
    demo.regions = vec!["us-west-2".into()];
    let p = register(&c, &demo).unwrap();
    assert!(p.is_clean(), "{:?}", p.problems);
    assert_eq!(
        actions(&p, PROVIDER),
        ["ModifyVpcEndpointServiceConfiguration"]
    );
    let step = &p.accounts[&(PROVIDER.to_string(), "us-east-1".to_string())][0].steps[0];
    assert!(step.reason.to_string().contains("us-west-2"), "{step:?}");
    // A region of another partition is bad input, as the put would be.
    demo.regions = vec!["cn-north-1".into()];
    assert!(matches!(register(&c, &demo), Err(PreviewError::Invalid(_))));
}

#[test]
fn withdrawing_a_region_names_the_bound_consumers_there() {
    let mut c = world(&["use1-az1"]);
    let west = "vpc-0b000002";
    agent(
        &mut c,
        west,
        CONSUMER,
        "us-west-2",
        facts(west, CONSUMER, &["usw2-az1"]),
    );
    put(
        &mut c,
        object::Object::Binding(pld_proto::v1::Binding {
            service: "demo".into(),
            consumer_vpc_id: west.into(),
            ..pld_proto::v1::Binding::default()
        }),
    );
    let allowed = format!("arn:aws:iam::{CONSUMER}:root");
    let mut demo = registered("demo", PROVIDER_VPC, NLB, &[&allowed]);
    demo.regions = vec!["us-west-2".into()];
    let p = register(&c, &demo).unwrap();
    assert!(p.is_clean(), "{:?}", p.problems);
    demo.regions.clear();
    let p = register(&c, &demo).unwrap();
    // (AWS offers it nowhere else yet, as far as this catalog says: nothing to change there.)
    assert_eq!(
        kinds(&p),
        [
            (Severity::Error, ProblemKind::RegionNotOffered),
            (Severity::Note, ProblemKind::NoChange)
        ]
    );
    assert!(
        p.problems[0].message.contains("vpc-0b000002 (us-west-2)"),
        "{}",
        p.problems[0].message
    );
}
