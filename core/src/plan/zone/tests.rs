//! The zone planner over desired × observed, the states a crash leaves included: a zone
//! created but not tagged (found in the VPC by its caller reference, or returned by the create
//! retried after the crash), a reference spent on a zone since deleted, a zone that left the VPC.

use super::*;
use crate::aws::Action;

const NAME: &str = "pld.internal.";

fn own() -> Ownership {
    Ownership::new("blue", "vpc-1")
}

fn want(own: &Ownership, publish: bool) -> ZoneWant<'_> {
    ZoneWant {
        name: NAME,
        pinned: None,
        own,
        publish,
        generation: 7,
    }
}

fn zone(id: &str, reference: &str, vpcs: &[&str]) -> HostedZone {
    HostedZone {
        id: id.into(),
        name: NAME.into(),
        vpc_ids: vpcs.iter().map(|v| v.to_string()).collect(),
        comment: String::new(),
        caller_reference: reference.into(),
    }
}

/// The actions of a plan's writes, in order.
fn actions(plan: &ZonePlan) -> Vec<Action> {
    plan.writes.iter().map(|w| w.call.action()).collect()
}

fn use_zone(id: &str) -> ZoneOutcome {
    ZoneOutcome::Use(id.into())
}

#[test]
fn a_missing_zone_is_created_when_a_name_is_to_be_published_and_only_then() {
    let own = own();
    let plan = plan_zone(&want(&own, true), &ZoneSeen::InVpc(None));
    assert_eq!(plan.outcome, ZoneOutcome::Creating { attempt: 1 });
    assert_eq!(
        plan.writes,
        vec![Planned {
            call: Call::CreateHostedZone {
                name: NAME.into(),
                vpc_id: "vpc-1".into(),
                caller_reference: "pld/blue/vpc-1/7".into(),
                comment: "managed by pld cluster blue for vpc-1".into(),
            },
            reason: Reason::Missing,
        }]
    );
    // After a restart the agent only looks: nothing is created for no name.
    let find = plan_zone(&want(&own, false), &ZoneSeen::InVpc(None));
    assert_eq!(find, ZonePlan::only(ZoneOutcome::Absent(None)));
}

#[test]
fn a_created_zone_is_tagged_and_used() {
    let own = own();
    let made = zone("Z1", "pld/blue/vpc-1/7", &["vpc-1"]);
    let plan = plan_zone(&want(&own, true), &ZoneSeen::Created(made));
    assert_eq!(actions(&plan), vec![Action::ChangeTagsForResource]);
    assert_eq!(
        plan.writes[0].call,
        Call::TagHostedZone {
            zone_id: "Z1".into(),
            tags: own.mine()
        }
    );
    assert_eq!(plan.outcome, use_zone("Z1"));
}

#[test]
fn a_zone_in_the_vpc_is_used_if_ours_tagged_if_a_crash_left_it_untagged_and_else_refused() {
    let own = own();
    let ours = zone("Z1", "pld/blue/vpc-1/7", &["vpc-1"]);
    for publish in [true, false] {
        let w = want(&own, publish);
        let tagged = plan_zone(&w, &ZoneSeen::InVpc(Some((ours.clone(), own.mine()))));
        assert_eq!(tagged, ZonePlan::only(use_zone("Z1")), "publish {publish}");
        // CreateHostedZone done, the agent killed before ChangeTagsForResource.
        let untagged = plan_zone(&w, &ZoneSeen::InVpc(Some((ours.clone(), Tags::new()))));
        assert_eq!(actions(&untagged), vec![Action::ChangeTagsForResource]);
        assert_eq!(untagged.outcome, use_zone("Z1"));
    }
    let foreign = zone("Z9", "terraform-1", &["vpc-1"]);
    let seen = ZoneSeen::InVpc(Some((foreign, Tags::new())));
    let refused = plan_zone(&want(&own, true), &seen);
    assert!(refused.writes.is_empty());
    let ZoneOutcome::Refused(why) = &refused.outcome else {
        panic!("{refused:?}");
    };
    let why = why.to_string();
    assert!(
        why.contains("Z9") && why.contains("hosted_zone_id"),
        "{why}"
    );
    // Only looking: left alone, and said why.
    let left = plan_zone(&want(&own, false), &seen);
    assert!(left.writes.is_empty());
    assert!(matches!(&left.outcome, ZoneOutcome::Absent(Some(w)) if w.contains("Z9")));
}

#[test]
fn a_refused_reference_finds_the_zone_it_made_or_moves_on_to_the_next() {
    let own = own();
    let w = want(&own, true);
    // The create retried after a crash: the zone exists, still in the VPC, untagged.
    let in_vpc = zone("Z1", "pld/blue/vpc-1/7", &["vpc-1"]);
    let seen = ZoneSeen::ReferenceSpent {
        attempt: 1,
        made: Some(in_vpc),
    };
    let plan = plan_zone(&w, &seen);
    assert_eq!(actions(&plan), vec![Action::ChangeTagsForResource]);
    assert_eq!(plan.outcome, use_zone("Z1"));
    // A zone of ours that has left the VPC is associated again.
    let left = zone("Z1", "pld/blue/vpc-1/7", &["vpc-2"]);
    let seen = ZoneSeen::ReferenceSpent {
        attempt: 1,
        made: Some(left),
    };
    let plan = plan_zone(&w, &seen);
    assert_eq!(
        actions(&plan),
        vec![
            Action::AssociateVPCWithHostedZone,
            Action::ChangeTagsForResource
        ]
    );
    assert_eq!(plan.outcome, use_zone("Z1"));
    // The reference was spent on a zone since deleted: the next one.
    let next = plan_zone(
        &w,
        &ZoneSeen::ReferenceSpent {
            attempt: 3,
            made: None,
        },
    );
    assert_eq!(next.outcome, ZoneOutcome::Creating { attempt: 4 });
    assert!(matches!(
        &next.writes[0].call,
        Call::CreateHostedZone { caller_reference, .. } if caller_reference == "pld/blue/vpc-1/7/4"
    ));
    // Every one spent: refused, naming the series.
    let spent = plan_zone(
        &w,
        &ZoneSeen::ReferenceSpent {
            attempt: REFERENCE_ATTEMPTS,
            made: None,
        },
    );
    assert!(spent.writes.is_empty());
    assert!(
        matches!(&spent.outcome, ZoneOutcome::Refused(r) if r.to_string().contains("pld/blue/vpc-1/7"))
    );
}

#[test]
fn a_conflict_on_create_uses_the_zone_that_appeared_if_ours() {
    let own = own();
    let w = want(&own, true);
    let ours = zone("Z1", "pld/blue/vpc-1/7", &["vpc-1"]);
    let found = plan_zone(
        &w,
        &ZoneSeen::Conflict {
            error: "ConflictingDomainExists".into(),
            found: Some((ours, own.mine())),
        },
    );
    assert_eq!(found, ZonePlan::only(use_zone("Z1")));
    let gone = plan_zone(
        &w,
        &ZoneSeen::Conflict {
            error: "ConflictingDomainExists: pld.internal.".into(),
            found: None,
        },
    );
    assert_eq!(
        gone.outcome,
        ZoneOutcome::Refused(ZoneRefusal::Conflict(
            "ConflictingDomainExists: pld.internal.".into()
        ))
    );
}

#[test]
fn a_pinned_zone_is_checked_by_name_and_associated_only_to_publish() {
    let own = own();
    let pinned = |publish| ZoneWant {
        pinned: Some("Z5"),
        ..want(&own, publish)
    };
    let elsewhere = zone("Z5", "made-by-hand", &["vpc-2"]);
    let publish = plan_zone(&pinned(true), &ZoneSeen::Pinned(elsewhere.clone()));
    assert_eq!(actions(&publish), vec![Action::AssociateVPCWithHostedZone]);
    assert_eq!(publish.outcome, use_zone("Z5"));
    // Whoever made it, a pinned zone is never tagged.
    let find = plan_zone(&pinned(false), &ZoneSeen::Pinned(elsewhere));
    assert_eq!(find, ZonePlan::only(use_zone("Z5")));
    let wrong = HostedZone {
        name: "other.internal.".into(),
        ..zone("Z5", "", &["vpc-1"])
    };
    let refused = plan_zone(&pinned(true), &ZoneSeen::Pinned(wrong));
    assert_eq!(
        refused.outcome,
        ZoneOutcome::Refused(ZoneRefusal::PinnedName {
            zone_id: "Z5".into(),
            is: "other.internal.".into(),
            want: NAME.into()
        })
    );
}

#[test]
fn only_an_unused_zone_of_ours_comes_down() {
    let own = own();
    let w = want(&own, false);
    let record = |kind: &str| RecordSet {
        name: NAME.into(),
        kind: kind.into(),
        ttl: 60,
        values: vec![],
    };
    assert!(zone_unused(&w, &[record("SOA"), record("NS")]));
    assert!(!zone_unused(
        &w,
        &[record("SOA"), record("NS"), record("A")]
    ));
    let pinned = ZoneWant {
        pinned: Some("Z1"),
        ..w
    };
    assert!(!zone_unused(&pinned, &[record("SOA")]));

    let ours = zone("Z1", "pld/blue/vpc-1/7", &["vpc-1"]);
    let delete = plan_zone_retire(&w, &ours, &own.mine()).expect("ours comes down");
    assert_eq!(
        delete.call,
        Call::DeleteHostedZone {
            zone_id: "Z1".into()
        }
    );
    assert_eq!(plan_zone_retire(&pinned, &ours, &own.mine()), None);
    let foreign = zone("Z9", "terraform-1", &["vpc-1"]);
    assert_eq!(plan_zone_retire(&w, &foreign, &Tags::new()), None);
}
