//! `pld plan services register` of a live service on another load balancer: each bound
//! consumer's move as its agent makes it (the endpoint to the new endpoint service, the flip,
//! the old endpoint deleted), the provider accepting the movers, and the old endpoint service
//! (and the front on an ALB) going once drained.

use pld_proto::v1::{Binding, BindingStatus};

use super::register::registered;
use super::*;

/// The other NLB of the provider's VPC (`billing`'s, as its agent reported it).
fn second() -> String {
    NLB.replace("/demo/", "/billing/")
}

/// The consumer bound to demo, ready on `vpce-old` at 10.1.0.5.
fn bound(c: &mut Catalog) {
    put(
        c,
        object::Object::Binding(Binding {
            service: "demo".into(),
            consumer_vpc_id: CONSUMER_VPC.into(),
            ..Binding::default()
        }),
    );
    apply(
        c,
        Op::ReportStatus(ReportStatusRequest {
            kind: Kind::Binding as i32,
            key: crate::catalog::binding_key("demo", CONSUMER_VPC),
            status: Some(report_status_request::Status::Binding(BindingStatus {
                phase: "ready".into(),
                endpoint_id: "vpce-old".into(),
                addresses: vec!["10.1.0.5".into()],
                ..BindingStatus::default()
            })),
        }),
    );
}

fn allowed() -> String {
    format!("arn:aws:iam::{CONSUMER}:root")
}

#[test]
fn a_move_plans_each_consumer_s_endpoint_flip_and_retirement_and_the_old_service_s_delete() {
    let mut c = world(&["use1-az1"]);
    bound(&mut c);
    let p = register(
        &c,
        &registered("demo", PROVIDER_VPC, &second(), &[&allowed()]),
    )
    .expect("a plan");
    assert!(p.is_clean(), "{:?}", p.problems);
    assert_eq!(
        actions(&p, CONSUMER),
        [
            "CreateVpcEndpoint",
            "ChangeResourceRecordSets",
            "DeleteVpcEndpoints"
        ],
        "make, flip, then break"
    );
    assert_eq!(
        actions(&p, PROVIDER),
        [
            "CreateVpcEndpointServiceConfiguration",
            "ModifyVpcEndpointServicePermissions",
            "AcceptVpcEndpointConnections",
            "DeleteVpcEndpointServiceConfigurations"
        ]
    );
    let consumer = &p.accounts[&(CONSUMER.to_string(), "us-east-1".to_string())][0];
    assert_eq!(consumer.steps[2].target, "vpce-old", "{:?}", consumer.steps);
    let provider = &p.accounts[&(PROVIDER.to_string(), "us-east-1".to_string())][0];
    assert!(
        provider.steps[3]
            .target
            .contains("vpce-svc-0123456789abcdef0"),
        "the old endpoint service goes: {:?}",
        provider.steps
    );
}

#[test]
fn a_move_to_a_load_balancer_outside_the_consumer_s_azs_stalls_on_az_fit() {
    let mut c = world(&["use1-az1"]);
    bound(&mut c);
    let mut f = provider_facts();
    for lb in &mut f.load_balancers {
        if lb.arn == second() {
            lb.az_ids = vec!["use1-az4".into()];
        }
    }
    agent(&mut c, PROVIDER_VPC, PROVIDER, "us-east-1", f);
    let p = register(
        &c,
        &registered("demo", PROVIDER_VPC, &second(), &[&allowed()]),
    )
    .unwrap();
    assert_eq!(kinds(&p), [(Severity::Error, ProblemKind::AzFit)]);
    let message = &p.problems[0].message;
    assert!(
        message.contains("old endpoint") && message.contains("use1-az4"),
        "{message}"
    );
    assert!(
        !actions(&p, CONSUMER).contains(&"DeleteVpcEndpoints".to_string()),
        "the old endpoint stays: {:?}",
        actions(&p, CONSUMER)
    );
}

#[test]
fn a_move_of_a_vpc_at_its_quota_needs_room_for_the_second_endpoint() {
    let mut c = world(&["use1-az1"]);
    let mut f = facts(CONSUMER_VPC, CONSUMER, &["use1-az1"]);
    f.endpoints = 50;
    agent(&mut c, CONSUMER_VPC, CONSUMER, "us-east-1", f);
    bound(&mut c);
    let p = register(
        &c,
        &registered("demo", PROVIDER_VPC, &second(), &[&allowed()]),
    )
    .unwrap();
    assert_eq!(kinds(&p), [(Severity::Error, ProblemKind::QuotaReached)]);
}

#[test]
fn a_move_off_an_alb_takes_its_front_down_after_the_old_endpoint_service() {
    let mut c = world(&["use1-az1"]);
    let front_nlb =
        "arn:aws:elasticloadbalancing:us-east-1:111111111111:loadbalancer/net/pld-0123/1";
    let mut web = registered("demo", PROVIDER_VPC, ALB, &[&allowed()]);
    web.ports = vec![80, 443];
    put(&mut c, object::Object::Service(web));
    apply(
        &mut c,
        Op::ReportStatus(ReportStatusRequest {
            kind: Kind::Service as i32,
            key: "demo".into(),
            status: Some(report_status_request::Status::Service(ServiceStatus {
                state: "available".into(),
                endpoint_service_name: "com.amazonaws.vpce.us-east-1.vpce-svc-0fa0fa0fa0fa0fa0f"
                    .into(),
                load_balancer_arns: vec![front_nlb.into()],
                az_ids: vec!["use1-az1".into()],
                ..ServiceStatus::default()
            })),
        }),
    );
    bound(&mut c);
    let p = register(
        &c,
        &registered("demo", PROVIDER_VPC, &second(), &[&allowed()]),
    )
    .unwrap();
    assert!(p.is_clean(), "{:?}", p.problems);
    assert_eq!(
        actions(&p, PROVIDER),
        [
            "CreateVpcEndpointServiceConfiguration",
            "ModifyVpcEndpointServicePermissions",
            "AcceptVpcEndpointConnections",
            "DeleteVpcEndpointServiceConfigurations",
            "DeleteListener",
            "DeleteListener",
            "DeleteTargetGroup",
            "DeleteTargetGroup",
            "DeleteLoadBalancer"
        ]
    );
    let steps = &p.accounts[&(PROVIDER.to_string(), "us-east-1".to_string())][0].steps;
    assert_eq!(steps.last().unwrap().target, front_nlb);
}

#[test]
fn a_move_to_another_vpc_has_that_vpc_s_agent_make_and_the_old_one_delete() {
    let mut c = world(&["use1-az1"]);
    let new_vpc = "vpc-0a000002";
    let nlb = NLB.replace("/demo/", "/moved/");
    let mut f = facts(new_vpc, PROVIDER, &["use1-az1", "use1-az2"]);
    f.load_balancers = provider_load_balancers();
    f.load_balancers[0].arn = nlb.clone();
    agent(&mut c, new_vpc, PROVIDER, "us-east-1", f);
    bound(&mut c);
    let p = register(&c, &registered("demo", new_vpc, &nlb, &[&allowed()])).unwrap();
    assert!(p.is_clean(), "{:?}", p.problems);
    let vpcs = &p.accounts[&(PROVIDER.to_string(), "us-east-1".to_string())];
    let of = |vpc: &str| -> Vec<&str> {
        vpcs.iter()
            .filter(|v| v.vpc_id == vpc)
            .flat_map(|v| v.steps.iter().map(|s| s.action.name()))
            .collect()
    };
    assert_eq!(
        of(new_vpc),
        [
            "CreateVpcEndpointServiceConfiguration",
            "ModifyVpcEndpointServicePermissions",
            "AcceptVpcEndpointConnections"
        ]
    );
    assert_eq!(of(PROVIDER_VPC), ["DeleteVpcEndpointServiceConfigurations"]);
    assert_eq!(actions(&p, CONSUMER).len(), 3);
}
