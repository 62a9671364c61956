//! The endpoint planner over desired × observed, the states a crash leaves included: an
//! endpoint created but never reported (found by its tags, followed, not created again), one
//! half-way through acceptance, one moved by a pass that stopped before it published.

use super::*;
use crate::aws::types::Subnet;
use crate::plan::ownership::{Ownership, TOKEN_ATTEMPTS};

const SVC: &str = "com.amazonaws.vpce.us-east-1.vpce-svc-1";

fn subnet(id: &str, az_id: &str) -> Subnet {
    Subnet {
        id: id.into(),
        vpc_id: "vpc-c".into(),
        az_id: az_id.into(),
        cidr: "10.0.0.0/24".into(),
        ..Default::default()
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn detail(kind: EndpointKind, azs: &[&str]) -> ServiceDetail {
    ServiceDetail {
        name: SVC.into(),
        kind,
        az_ids: strings(azs),
        owner: "111111111111".into(),
        acceptance_required: true,
    }
}

fn endpoint(kind: EndpointKind, state: &str, subnets: &[&str]) -> Endpoint {
    Endpoint {
        id: "vpce-1".into(),
        vpc_id: "vpc-c".into(),
        service_name: SVC.into(),
        kind,
        state: state.into(),
        subnet_ids: strings(subnets),
        route_table_ids: vec![],
        dns_names: vec![],
        addresses: vec!["10.0.0.5".into()],
        tags: Tags::new(),
    }
}

/// The parts of a [`Want`] a case varies.
struct Case {
    target: Target,
    configured: Vec<String>,
    access: Access<'static>,
}

fn custom() -> Target {
    Target::Service {
        name: SVC.into(),
        kind: None,
    }
}

fn with_want<R>(case: &Case, f: impl FnOnce(&Want) -> R) -> R {
    let own = Ownership::new("pld-test", "vpc-c");
    let owner = own.binding("billing/vpc-c");
    let tags = own.tags(&owner);
    let want = Want {
        service: "billing",
        target: &case.target,
        vpc_id: "vpc-c",
        region: "us-east-1",
        configured_subnets: &case.configured,
        security_group_ids: &[],
        owner: &owner,
        tags: &tags,
        generation: 7,
        access: case.access,
    };
    f(&want)
}

fn case(target: Target) -> Case {
    Case {
        target,
        configured: vec![],
        access: Access::Listed,
    }
}

fn plan(case: &Case, seen: &Observed) -> EndpointPlan {
    with_want(case, |w| plan_endpoint(w, seen))
}

fn facts(case: &Case, seen: &Observed) -> Option<Fact> {
    with_want(case, |w| next_fact(w, seen))
}

fn actions(plan: &EndpointPlan) -> Vec<String> {
    plan.writes.iter().map(|p| p.step().to_string()).collect()
}

fn reported(plan: &EndpointPlan) -> (Phase, String, bool) {
    match &plan.outcome {
        Outcome::Report {
            phase,
            message,
            requeue,
            ..
        } => (*phase, message.clone(), *requeue),
        other => panic!("expected a report, planned {other:?}"),
    }
}

/// Only the binding's tagged endpoint observed.
fn found(ep: Endpoint) -> Observed {
    Observed {
        endpoint: Some(ep),
        ..Observed::default()
    }
}

fn observed_everything(kind: EndpointKind) -> Observed {
    Observed {
        endpoint: None,
        detail: Some(Seen::Known(detail(kind, &["use1-az1", "use1-az2"]))),
        subnets: Some(Seen::Known(vec![
            subnet("subnet-a", "use1-az1"),
            subnet("subnet-b", "use1-az2"),
            subnet("subnet-x", "use1-az3"),
        ])),
        route_tables: None,
        spent_tokens: 0,
        ..Observed::default()
    }
}

#[test]
fn a_missing_endpoint_is_created_in_one_subnet_per_offered_az() {
    let c = case(custom());
    // The facts come one at a time: the service first (its kind decides what else is needed).
    let mut seen = Observed::default();
    assert_eq!(facts(&c, &seen), Some(Fact::ServiceDetail(SVC.into())));
    seen.detail = observed_everything(EndpointKind::Interface).detail;
    assert_eq!(facts(&c, &seen), Some(Fact::Subnets));
    seen = observed_everything(EndpointKind::Interface);
    assert_eq!(facts(&c, &seen), None);

    let p = plan(&c, &seen);
    assert_eq!(p.outcome, Outcome::Applying);
    assert_eq!(
        actions(&p),
        [format!("CreateVpcEndpoint endpoint for {SVC}: missing")]
    );
    let Call::CreateEndpoint(req) = &p.writes[0].call else {
        panic!("not a create: {:?}", p.writes[0]);
    };
    assert_eq!(req.subnet_ids, strings(&["subnet-a", "subnet-b"]));
    assert_eq!(req.kind, EndpointKind::Interface);
    assert!(req.tags.contains_key(crate::aws::types::OWNER_TAG));
    // The same binding and placement give the same token, so a create retried after a crash
    // finds the endpoint the first attempt made.
    assert_eq!(p, plan(&c, &seen));
}

#[test]
fn gateways_go_on_every_route_table_and_gwlb_endpoints_in_one_subnet() {
    let gateway = case(Target::Service {
        name: "com.amazonaws.us-east-1.s3".into(),
        kind: Some(EndpointKind::Gateway),
    });
    let mut seen = Observed::default();
    assert_eq!(facts(&gateway, &seen), Some(Fact::RouteTables));
    seen.route_tables = Some(Seen::Known(vec![RouteTable {
        id: "rtb-1".into(),
        vpc_id: "vpc-c".into(),
        routes: vec![],
        ..Default::default()
    }]));
    assert_eq!(facts(&gateway, &seen), None);
    let Call::CreateEndpoint(req) = &plan(&gateway, &seen).writes[0].call else {
        panic!("not a create");
    };
    assert_eq!(req.route_table_ids, strings(&["rtb-1"]));
    assert!(req.subnet_ids.is_empty());

    let gwlb = plan(
        &case(custom()),
        &observed_everything(EndpointKind::GatewayLoadBalancer),
    );
    let Call::CreateEndpoint(req) = &gwlb.writes[0].call else {
        panic!("not a create");
    };
    assert_eq!(req.subnet_ids, strings(&["subnet-a"]));
}

#[test]
fn what_stops_a_create_is_said_and_nothing_is_written() {
    let rows: Vec<(&str, Case, Observed, &str)> = vec![
        (
            "the account may not use the service",
            case(custom()),
            Observed {
                detail: Some(Seen::Unknown("InvalidServiceName: no such service".into())),
                ..Observed::default()
            },
            "this VPC's account cannot use com.amazonaws.vpce.us-east-1.vpce-svc-1: InvalidServiceName",
        ),
        (
            "no subnet in an offered AZ",
            Case {
                configured: strings(&["subnet-x"]),
                ..case(custom())
            },
            observed_everything(EndpointKind::Interface),
            "the service supports AZs use1-az1, use1-az2 but this VPC's subnets are in",
        ),
        (
            "a kind pld does not create",
            case(custom()),
            Observed {
                detail: Some(Seen::Known(detail(EndpointKind::Resource, &["use1-az1"]))),
                ..Observed::default()
            },
            "offers Resource endpoints, which pld does not create",
        ),
        (
            "the subnets could not be listed",
            case(custom()),
            Observed {
                subnets: Some(Seen::Unknown("UnauthorizedOperation".into())),
                ..observed_everything(EndpointKind::Interface)
            },
            "UnauthorizedOperation",
        ),
    ];
    for (what, c, seen, expected) in rows {
        assert_eq!(facts(&c, &seen), None, "{what}: asks for more");
        let p = plan(&c, &seen);
        assert!(p.writes.is_empty(), "{what}: writes {:?}", p.writes);
        let (phase, message, requeue) = reported(&p);
        assert_eq!(phase, Phase::Failed, "{what}");
        assert!(message.contains(expected), "{what}: {message}");
        assert!(!requeue, "{what}");
    }
}

#[test]
fn an_existing_endpoint_is_followed_from_the_state_it_is_in() {
    // After a crash between create and report, the tagged endpoint is all there is: it is
    // followed from its state, never created again.
    let rows = [
        ("pendingAcceptance", Phase::PendingAcceptance, true),
        ("pending", Phase::Pending, true),
        ("rejected", Phase::Rejected, false),
        ("failed", Phase::Failed, false),
        ("expired", Phase::Failed, false),
    ];
    let c = case(custom());
    for (state, expected, expected_requeue) in rows {
        let seen = found(endpoint(EndpointKind::Interface, state, &["subnet-a"]));
        assert_eq!(facts(&c, &seen), None, "{state}: asks AWS for more");
        let p = plan(&c, &seen);
        assert!(p.writes.is_empty(), "{state}: writes {:?}", p.writes);
        let (phase, _, requeue) = reported(&p);
        assert_eq!((phase, requeue), (expected, expected_requeue), "{state}");
    }
    let available = found(endpoint(
        EndpointKind::Interface,
        "available",
        &["subnet-a"],
    ));
    assert_eq!(plan(&c, &available).outcome, Outcome::Publish);
    let gateway = found(endpoint(EndpointKind::Gateway, "available", &[]));
    let (phase, _, requeue) = reported(&plan(&c, &gateway));
    assert_eq!((phase, requeue), (Phase::Ready, false));
}

#[test]
fn an_endpoint_outside_the_configured_subnets_moves_before_it_is_published() {
    let c = Case {
        configured: strings(&["subnet-b"]),
        ..case(custom())
    };
    let mut seen = found(endpoint(
        EndpointKind::Interface,
        "available",
        &["subnet-a"],
    ));
    assert_eq!(facts(&c, &seen), Some(Fact::ServiceDetail(SVC.into())));
    let all = observed_everything(EndpointKind::Interface);
    seen.detail = all.detail;
    seen.subnets = all.subnets;
    assert_eq!(facts(&c, &seen), None);
    let p = plan(&c, &seen);
    assert_eq!(p.outcome, Outcome::Applying);
    assert_eq!(
        p.writes[0].call,
        Call::ModifyEndpointSubnets {
            id: "vpce-1".into(),
            add: strings(&["subnet-b"]),
            remove: strings(&["subnet-a"]),
        }
    );
    assert_eq!(
        p.writes[0].step().to_string(),
        "ModifyVpcEndpoint vpce-1: differs: endpoint vpce-1 is in subnet-a, which the config \
         does not list; it moves to subnet-b"
    );
    // The pass after the move (which stopped before publishing) sees it placed: publish.
    seen.endpoint = Some(endpoint(
        EndpointKind::Interface,
        "available",
        &["subnet-b"],
    ));
    assert_eq!(facts(&c, &seen), None);
    assert_eq!(plan(&c, &seen).outcome, Outcome::Publish);
}

#[test]
fn a_service_gone_or_refusing_takes_its_endpoint_and_name_down() {
    for (target, phase, requeue) in [
        (
            Target::Missing("service billing is not in the catalog".into()),
            Phase::Waiting,
            false,
        ),
        (
            Target::Waiting("waiting for the provider".into()),
            Phase::Waiting,
            true,
        ),
        // The service stopped allowing the account: rejected, with no endpoint billing on, and
        // not created again until the catalog lets it connect.
        (
            Target::Refused("account 222222222222 is no longer allowed".into()),
            Phase::Rejected,
            false,
        ),
    ] {
        let c = case(target);
        let seen = found(endpoint(
            EndpointKind::Interface,
            "available",
            &["subnet-a"],
        ));
        assert_eq!(facts(&c, &seen), None);
        let p = plan(&c, &seen);
        assert!(p.unpublish);
        assert_eq!(p.writes.len(), 1);
        assert_eq!(
            p.writes[0].call,
            Call::DeleteEndpoint {
                id: "vpce-1".into()
            }
        );
        assert!(matches!(p.writes[0].reason, Reason::Unwanted(_)));
        let (reported_phase, _, r) = reported(&p);
        assert_eq!((reported_phase, r), (phase, requeue));
        // Nothing there: nothing to delete, unpublish or create.
        let p = plan(&c, &Observed::default());
        assert!(p.writes.is_empty() && !p.unpublish);
        assert_eq!(reported(&p).0, phase);
    }
}

#[test]
fn endpoints_pld_does_not_manage_are_never_written() {
    let mut resource = endpoint(EndpointKind::Resource, "available", &["subnet-a"]);
    resource.id = "vpce-res".into();
    for c in [case(custom()), case(Target::Missing("gone".into()))] {
        let seen = found(resource.clone());
        let p = plan(&c, &seen);
        assert!(p.writes.is_empty() && !p.unpublish, "{:?}", p.writes);
        let (phase, message, _) = reported(&p);
        assert_eq!(phase, Phase::Failed);
        assert!(message.contains("vpce-res"), "{message}");
    }
    // A built-in's endpoint of another kind than the service takes.
    let s3 = case(Target::Service {
        name: "com.amazonaws.us-east-1.s3".into(),
        kind: Some(EndpointKind::Gateway),
    });
    let seen = found(endpoint(
        EndpointKind::Interface,
        "available",
        &["subnet-a"],
    ));
    let p = plan(&s3, &seen);
    assert!(p.writes.is_empty());
    assert!(reported(&p).1.contains("billing takes Gateway endpoints"));
    assert!(plan_orphan(&resource).is_err());
    assert_eq!(
        plan_orphan(&endpoint(EndpointKind::Interface, "available", &[]))
            .map(|p| p.step().to_string()),
        Ok("DeleteVpcEndpoints vpce-1: its catalog object is gone".to_string())
    );
}

#[test]
fn a_service_that_stopped_allowing_the_account_takes_its_endpoint_down_unless_it_is_its_own() {
    let c = Case {
        access: Access::Unlisted {
            account: "222222222222",
            why: "service billing does not allow account 222222222222",
        },
        ..case(custom())
    };
    let live = endpoint(EndpointKind::Interface, "available", &["subnet-a"]);
    // Whose the service is, is asked first.
    assert_eq!(
        facts(&c, &found(live.clone())),
        Some(Fact::ServiceDetail(SVC.into()))
    );
    // Not visible any more (AWS hides a service from accounts it does not allow), or another
    // account's: the endpoint is deleted, the name unpublished, the binding rejected.
    let mut other = detail(EndpointKind::Interface, &["use1-az1"]);
    other.owner = "111111111111".into();
    for seen_detail in [
        Seen::Unknown("InvalidServiceName".into()),
        Seen::Known(other),
    ] {
        let seen = Observed {
            detail: Some(seen_detail),
            ..found(live.clone())
        };
        assert_eq!(facts(&c, &seen), None);
        let p = plan(&c, &seen);
        assert!(p.unpublish);
        assert_eq!(
            p.writes.iter().map(|w| w.call.clone()).collect::<Vec<_>>(),
            vec![Call::DeleteEndpoint {
                id: "vpce-1".into()
            }]
        );
        let (phase, message, _) = reported(&p);
        assert_eq!(phase, Phase::Rejected);
        assert!(message.contains("does not allow account"), "{message}");
        // Gone already: nothing created again while the refusal holds.
        let none = Observed {
            endpoint: None,
            ..seen
        };
        let p = plan(&c, &none);
        assert!(p.writes.is_empty() && !p.unpublish);
        assert_eq!(reported(&p).0, Phase::Rejected);
    }
    // The provider's own account needs no principal: it stays connected.
    let mut own = detail(EndpointKind::Interface, &["use1-az1"]);
    own.owner = "222222222222".into();
    let seen = Observed {
        detail: Some(Seen::Known(own)),
        ..found(live)
    };
    assert_eq!(plan(&c, &seen).outcome, Outcome::Publish);
}

#[test]
fn a_token_spent_on_an_endpoint_deleted_since_moves_the_create_to_the_next_one() {
    let c = case(custom());
    let token = |spent| {
        let seen = Observed {
            spent_tokens: spent,
            ..observed_everything(EndpointKind::Interface)
        };
        let p = plan(&c, &seen);
        match p.writes.first().map(|w| &w.call) {
            Some(Call::CreateEndpoint(req)) => Ok(req.client_token.clone()),
            _ => Err(reported(&p)),
        }
    };
    let first = token(0).expect("a create");
    let second = token(1).expect("a create");
    assert_ne!(first, second);
    // The same attempt, the same token: a retry after a crash finds its endpoint.
    assert_eq!(token(1).expect("a create"), second);
    let (phase, message, _) = token(TOKEN_ATTEMPTS).expect_err("no create");
    assert_eq!(phase, Phase::Failed);
    assert!(message.contains("client tokens"), "{message}");
}

#[test]
fn a_service_of_another_region_is_reached_with_service_region_by_interface_endpoints_only() {
    let remote = "com.amazonaws.vpce.eu-west-1.vpce-svc-0123456789abcdef0";
    let c = case(Target::Service {
        name: remote.into(),
        kind: None,
    });
    let mut seen = observed_everything(EndpointKind::Interface);
    let p = plan(&c, &seen);
    let create = p.writes.iter().find_map(|w| match &w.call {
        Call::CreateEndpoint(r) => Some(r.clone()),
        _ => None,
    });
    let create = create.unwrap_or_else(|| panic!("a create: {p:?}"));
    assert_eq!(create.service_region.as_deref(), Some("eu-west-1"));
    // Its own region's service needs none, and its token differs from a remote one's.
    let local = plan(&case(custom()), &seen);
    let token = |p: &EndpointPlan| {
        p.writes.iter().find_map(|w| match &w.call {
            Call::CreateEndpoint(r) => Some((r.service_region.clone(), r.client_token.clone())),
            _ => None,
        })
    };
    let (region, local_token) = token(&local).unwrap_or_default();
    assert_eq!(region, None);
    assert_ne!(local_token, create.client_token);
    // A GWLB endpoint does not cross regions.
    seen.detail = Some(Seen::Known(detail(
        EndpointKind::GatewayLoadBalancer,
        &["use1-az1"],
    )));
    let (phase, message, _) = reported(&plan(&c, &seen));
    assert_eq!(phase, Phase::Failed);
    assert!(message.contains("only interface endpoints"), "{message}");
}
