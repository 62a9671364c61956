//! The move planner through the endpoint planner, step by step as a move goes, and the states
//! a crash leaves: a new endpoint made but not reported, a flip never seen in sync, an old
//! endpoint that serves no one.

use std::time::Duration;

use super::*;
use crate::aws::types::{EndpointKind, ServiceDetail, Subnet, Tags};
use crate::plan::endpoint::{plan_endpoint, Access, Observed, Target, Want};
use crate::plan::ownership::Ownership;
use crate::plan::Seen;
use crate::Phase;

const OLD: &str = "com.amazonaws.vpce.us-east-1.vpce-svc-old";
const NEW: &str = "com.amazonaws.vpce.us-east-1.vpce-svc-new";
const TTL: Duration = Duration::from_secs(30);

fn endpoint(id: &str, service: &str, state: &str, address: &str) -> Endpoint {
    Endpoint {
        id: id.into(),
        vpc_id: "vpc-c".into(),
        service_name: service.into(),
        kind: EndpointKind::Interface,
        state: state.into(),
        subnet_ids: vec!["subnet-a".into()],
        route_table_ids: vec![],
        dns_names: vec![],
        addresses: vec![address.into()],
        tags: Tags::new(),
    }
}

fn old(state: &str) -> Endpoint {
    endpoint("vpce-old", OLD, state, "10.0.0.5")
}

fn new(state: &str) -> Endpoint {
    endpoint("vpce-new", NEW, state, "10.0.0.9")
}

/// A binding whose service now offers `NEW`, its old endpoint `previous`, its name on
/// `published`; the facts a create needs observed.
fn seen(next: Option<Endpoint>, previous: Vec<Endpoint>, published: &str) -> Observed {
    Observed {
        endpoint: next,
        previous,
        published: if published.is_empty() {
            vec![]
        } else {
            vec![published.into()]
        },
        detail: Some(Seen::Known(ServiceDetail {
            name: NEW.into(),
            kind: EndpointKind::Interface,
            az_ids: vec!["use1-az1".into()],
            owner: "111111111111".into(),
            acceptance_required: true,
        })),
        subnets: Some(Seen::Known(vec![Subnet {
            id: "subnet-a".into(),
            vpc_id: "vpc-c".into(),
            az_id: "use1-az1".into(),
            cidr: "10.0.0.0/24".into(),
            ..Default::default()
        }])),
        ..Observed::default()
    }
}

fn plan(target: Target, seen: &Observed) -> EndpointPlan {
    let own = Ownership::new("pld-test", "vpc-c");
    let owner = own.binding("billing/vpc-c");
    let tags = own.tags(&owner);
    let want = Want {
        service: "billing",
        target: &target,
        vpc_id: "vpc-c",
        region: "us-east-1",
        configured_subnets: &[],
        security_group_ids: &[],
        owner: &owner,
        tags: &tags,
        generation: 3,
        access: Access::Listed,
    };
    plan_endpoint(&want, seen)
}

fn moved() -> Target {
    Target::Service {
        name: NEW.into(),
        kind: None,
    }
}

fn steps(plan: &EndpointPlan) -> Vec<String> {
    plan.writes
        .iter()
        .map(|p| format!("{} {}", p.call.action(), p.call.target()))
        .collect()
}

fn migration(plan: &EndpointPlan) -> &Migration {
    match &plan.outcome {
        Outcome::Migrate(m) => m,
        other => panic!("expected a move, planned {other:?}"),
    }
}

#[test]
fn a_move_makes_the_new_endpoint_while_the_old_one_serves() {
    let p = plan(moved(), &seen(None, vec![old("available")], "10.0.0.5"));
    assert_eq!(
        steps(&p),
        ["CreateVpcEndpoint endpoint for com.amazonaws.vpce.us-east-1.vpce-svc-new"]
    );
    let m = migration(&p);
    assert_eq!(
        (m.step, m.serving),
        (MoveStep::Creating, Serving::Previous(0))
    );
    assert!(!p.unpublish, "the old endpoint's name stays up");

    // Created, waiting for the provider: still the old endpoint.
    let p = plan(
        moved(),
        &seen(
            Some(new("pendingAcceptance")),
            vec![old("available")],
            "10.0.0.5",
        ),
    );
    assert!(p.writes.is_empty(), "{:?}", steps(&p));
    let m = migration(&p);
    assert_eq!(
        (m.step, m.serving),
        (MoveStep::Connecting, Serving::Previous(0))
    );
    assert!(m.message.contains("accept"), "{}", m.message);
}

#[test]
fn the_name_flips_once_the_new_endpoint_is_available_and_the_old_goes_after_the_ttl() {
    // Available: the name is pointed at it.
    let mut s = seen(Some(new("available")), vec![old("available")], "10.0.0.5");
    let p = plan(moved(), &s);
    assert!(p.writes.is_empty());
    let m = migration(&p);
    assert_eq!((m.step, m.serving), (MoveStep::Flipping, Serving::Next));

    // Pointed there, not yet seen in sync (in flight, or a restart lost the proof): written
    // again to be confirmed, the old endpoint kept.
    s.published = vec!["10.0.0.9".into()];
    let next = s.endpoint.clone().unwrap();
    s.flip = flip(&s.published, &next, None, TTL);
    assert_eq!(s.flip, Flip::Unconfirmed);
    assert_eq!(migration(&plan(moved(), &s)).step, MoveStep::Flipping);

    // In sync 10 s ago: resolvers may hold the old answer 20 s more.
    s.flip = flip(&s.published, &next, Some(Duration::from_secs(10)), TTL);
    assert_eq!(
        s.flip,
        Flip::Draining {
            remaining: Duration::from_secs(20)
        }
    );
    let p = plan(moved(), &s);
    assert!(p.writes.is_empty(), "{:?}", steps(&p));
    assert_eq!(migration(&p).step, MoveStep::Draining);

    // A TTL after: the old endpoint goes.
    s.flip = flip(&s.published, &next, Some(TTL), TTL);
    let p = plan(moved(), &s);
    assert_eq!(steps(&p), ["DeleteVpcEndpoints vpce-old"]);
    let m = migration(&p);
    assert_eq!((m.step, m.serving), (MoveStep::Retiring, Serving::Next));

    // Gone: an ordinary binding again.
    s.previous.clear();
    assert_eq!(plan(moved(), &s).outcome, Outcome::Publish);
}

#[test]
fn a_flip_in_sync_counts_only_for_the_new_endpoints_addresses() {
    let next = new("available");
    // The name still holds the old endpoint's address: whatever was seen in sync before was
    // not the flip.
    let old_name = vec!["10.0.0.5".to_string()];
    assert_eq!(
        flip(&old_name, &next, Some(TTL * 10), TTL),
        Flip::Unconfirmed
    );
    assert_eq!(flip(&[], &next, Some(TTL), TTL), Flip::Unconfirmed);
}

#[test]
fn an_old_endpoint_that_serves_no_one_is_deleted_at_once() {
    for state in ["pendingAcceptance", "pending", "rejected", "failed"] {
        let p = plan(moved(), &seen(None, vec![old(state)], ""));
        assert_eq!(
            steps(&p),
            [
                "CreateVpcEndpoint endpoint for com.amazonaws.vpce.us-east-1.vpce-svc-new",
                "DeleteVpcEndpoints vpce-old"
            ],
            "{state}"
        );
        assert!(
            !matches!(p.outcome, Outcome::Migrate(_)),
            "{state}: nothing serves, so there is no move to make: {:?}",
            p.outcome
        );
    }
    // One already being deleted is left to finish.
    let p = plan(moved(), &seen(None, vec![old("deleting")], ""));
    assert_eq!(
        steps(&p),
        ["CreateVpcEndpoint endpoint for com.amazonaws.vpce.us-east-1.vpce-svc-new"]
    );
}

#[test]
fn after_a_second_move_the_endpoint_the_name_points_at_serves_and_both_old_ones_go() {
    let older = endpoint(
        "vpce-older",
        "com.amazonaws.vpce.us-east-1.vpce-svc-0",
        "available",
        "10.0.0.3",
    );
    let s = seen(None, vec![older.clone(), old("available")], "10.0.0.5");
    let m = migration(&plan(moved(), &s)).clone();
    assert_eq!(m.serving, Serving::Previous(1), "the name is on vpce-old");
    assert_eq!(m.from, 1);

    let mut s = seen(
        Some(new("available")),
        vec![older, old("available")],
        "10.0.0.9",
    );
    s.flip = Flip::Drained;
    let p = plan(moved(), &s);
    assert_eq!(
        steps(&p),
        [
            "DeleteVpcEndpoints vpce-older",
            "DeleteVpcEndpoints vpce-old"
        ]
    );
}

#[test]
fn a_new_endpoint_the_provider_rejects_leaves_the_old_one_serving_and_says_why() {
    let p = plan(
        moved(),
        &seen(Some(new("rejected")), vec![old("available")], "10.0.0.5"),
    );
    assert!(p.writes.is_empty());
    let m = migration(&p);
    assert_eq!(
        (m.step, m.serving),
        (MoveStep::Connecting, Serving::Previous(0))
    );
    assert!(m.message.contains("rejected"), "{}", m.message);
}

#[test]
fn a_refused_or_removed_service_takes_old_and_new_endpoints_down() {
    for target in [
        Target::Refused("rejected by an operator".into()),
        Target::Missing("service billing is not in the catalog".into()),
    ] {
        let p = plan(
            target.clone(),
            &seen(Some(new("available")), vec![old("available")], "10.0.0.9"),
        );
        assert_eq!(
            steps(&p),
            ["DeleteVpcEndpoints vpce-new", "DeleteVpcEndpoints vpce-old"],
            "{target:?}"
        );
        assert!(p.unpublish);
        assert!(matches!(
            p.outcome,
            Outcome::Report {
                phase: Phase::Rejected | Phase::Waiting,
                ..
            }
        ));
    }
}

#[test]
fn an_endpoint_of_a_kind_pld_does_not_manage_fails_the_binding_and_nothing_is_made() {
    let mut lattice = old("available");
    lattice.kind = EndpointKind::ServiceNetwork;
    let s = seen(None, vec![lattice], "");
    let p = plan(moved(), &s);
    assert!(p.writes.is_empty(), "{:?}", steps(&p));
    match &p.outcome {
        Outcome::Report { phase, message, .. } => {
            assert_eq!(*phase, Phase::Failed);
            assert!(message.contains("vpce-old"), "{message}");
        }
        other => panic!("expected a failure, planned {other:?}"),
    }
}

#[test]
fn a_provider_with_nothing_to_offer_for_now_leaves_a_serving_endpoint_alone() {
    use crate::plan::endpoint::keep_while_waiting;
    let waiting = Target::Waiting("waiting for the provider".into());
    // With an endpoint: followed where it connects, not taken down.
    let target = keep_while_waiting(waiting.clone(), &[old("available")]);
    assert_eq!(
        target,
        Target::Service {
            name: OLD.into(),
            kind: None
        }
    );
    let p = plan(target, &seen(Some(old("available")), vec![], "10.0.0.5"));
    assert!(p.writes.is_empty(), "{:?}", steps(&p));
    assert_eq!(p.outcome, Outcome::Publish);
    // Without one: still waiting.
    assert_eq!(keep_while_waiting(waiting.clone(), &[]), waiting);
    // Other targets are what they are.
    assert_eq!(keep_while_waiting(moved(), &[old("available")]), moved());
}

#[test]
fn step_names_are_the_wire_names() {
    let names: Vec<&str> = [
        MoveStep::Creating,
        MoveStep::Connecting,
        MoveStep::Flipping,
        MoveStep::Draining,
        MoveStep::Retiring,
    ]
    .map(MoveStep::as_str)
    .to_vec();
    assert_eq!(
        names,
        ["creating", "connecting", "flipping", "draining", "retiring"]
    );
}
