//! The catalog state machine against a reference model, plus its documented edge cases.

use std::collections::BTreeMap;

use pld_core::catalog::{binding_key, Catalog, CatalogError, Outcome};
use pld_core::command::{Command, DeleteOp, ExpireLeasesOp, KeepAliveOp, Op, PutOp, RestoreOp};
use pld_proto::v1::{
    object, report_status_request, Agent, AgentState, Binding, BindingStatus, EventType, Kind,
    Object, ReportStatusRequest, Service,
};
use proptest::prelude::*;

const NLB: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/demo/50dc6c495c0c9188";

fn service(name: &str, port: u32) -> Object {
    Object {
        object: Some(object::Object::Service(Service {
            name: name.into(),
            vpc_id: "vpc-0123abcd".into(),
            load_balancer_arn: NLB.into(),
            ports: vec![port],
            ..Default::default()
        })),
    }
}

fn agent(vpc: &str, ttl: u32) -> Object {
    Object {
        object: Some(object::Object::Agent(Agent {
            vpc_id: vpc.into(),
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            lease_ttl_seconds: ttl,
            ..Default::default()
        })),
    }
}

fn put(obj: Object, expected: Option<u64>) -> Command {
    Command::new(Op::Put(PutOp {
        object: Some(obj),
        expected_mod_revision: expected,
        now_unix_ms: 1_000,
    }))
}

fn delete(kind: Kind, key: &str, expected: Option<u64>) -> Command {
    Command::new(Op::Delete(DeleteOp {
        kind: kind as i32,
        key: key.into(),
        expected_mod_revision: expected,
    }))
}

#[test]
fn create_only_put_fails_with_the_current_revision_when_the_object_exists() {
    let mut c = Catalog::default();
    c.apply(&put(service("web", 80), Some(0))).unwrap();
    let err = c.apply(&put(service("web", 81), Some(0))).unwrap_err();
    assert_eq!(
        err,
        CatalogError::RevisionMismatch {
            kind: "service",
            key: "web".into(),
            expected: 0,
            current: 1
        }
    );
    assert_eq!(c.revision(), 1, "a refused command changes nothing");
}

#[test]
fn invalid_objects_are_refused_naming_the_field() {
    let mut c = Catalog::default();
    let err = c.apply(&put(service("Web!", 80), None)).unwrap_err();
    match err {
        CatalogError::Invalid(f) => assert_eq!(f.field, "service.name"),
        other => panic!("unexpected {other:?}"),
    }
    let err = c.apply(&put(service("web", 0), None)).unwrap_err();
    assert!(matches!(err, CatalogError::Invalid(f) if f.field == "service.ports"));
    assert_eq!(c.revision(), 0);
}

#[test]
fn put_keeps_the_status_the_agent_reported() {
    let mut c = Catalog::default();
    c.apply(&put(
        Object {
            object: Some(object::Object::Binding(Binding {
                service: "web".into(),
                consumer_vpc_id: "vpc-0badcafe".into(),
                ..Default::default()
            })),
        },
        None,
    ))
    .unwrap();
    let key = binding_key("web", "vpc-0badcafe");
    c.apply(&Command::new(Op::ReportStatus(ReportStatusRequest {
        kind: Kind::Binding as i32,
        key: key.clone(),
        status: Some(report_status_request::Status::Binding(BindingStatus {
            phase: "ready".into(),
            ..Default::default()
        })),
    })))
    .unwrap();
    c.apply(&put(
        Object {
            object: Some(object::Object::Binding(Binding {
                service: "web".into(),
                consumer_vpc_id: "vpc-0badcafe".into(),
                ..Default::default()
            })),
        },
        Some(2),
    ))
    .unwrap();
    let Some(object::Object::Binding(b)) = c.get(Kind::Binding, &key).unwrap().object else {
        panic!("not a binding")
    };
    assert_eq!(b.status.unwrap().phase, "ready");
    let meta = b.meta.unwrap();
    assert_eq!(
        (meta.create_revision, meta.mod_revision, meta.version),
        (1, 3, 3)
    );
}

#[test]
fn leases_expire_only_when_due_and_renewal_revives() {
    let mut c = Catalog::default();
    c.apply(&put(agent("vpc-0123abcd", 10), None)).unwrap();
    assert_eq!(c.next_lease_expiry(), Some(11_000));
    let expire = |now| Command::new(Op::ExpireLeases(ExpireLeasesOp { now_unix_ms: now }));
    assert_eq!(
        c.apply(&expire(10_999)).unwrap(),
        Outcome::LeasesExpired { count: 0 }
    );
    // A renewal is not a catalog change.
    let renewed = c
        .apply(&Command::new(Op::KeepAlive(KeepAliveOp {
            vpc_id: "vpc-0123abcd".into(),
            now_unix_ms: 5_000,
        })))
        .unwrap();
    assert_eq!(
        renewed,
        Outcome::LeaseRenewed {
            expires_unix_ms: 15_000
        }
    );
    assert_eq!(c.revision(), 1);
    assert_eq!(
        c.apply(&expire(15_000)).unwrap(),
        Outcome::LeasesExpired { count: 1 }
    );
    assert_eq!(c.revision(), 2);
    let Some(object::Object::Agent(a)) = c.get(Kind::Agent, "vpc-0123abcd").unwrap().object else {
        panic!()
    };
    assert_eq!(a.state, AgentState::Expired as i32);
    assert_eq!(c.next_lease_expiry(), None);
    c.apply(&Command::new(Op::KeepAlive(KeepAliveOp {
        vpc_id: "vpc-0123abcd".into(),
        now_unix_ms: 20_000,
    })))
    .unwrap();
    assert_eq!(c.revision(), 3, "reviving an expired agent is a change");
}

#[test]
fn watch_window_reports_compaction() {
    let mut c = Catalog::new(3);
    for port in 1..=5 {
        c.apply(&put(service("web", port), None)).unwrap();
    }
    assert_eq!(c.oldest_watchable(), 3);
    assert_eq!(
        c.events_since(2, 100).unwrap_err(),
        CatalogError::Compacted {
            requested: 2,
            oldest: 3
        }
    );
    let revs: Vec<u64> = c
        .events_since(3, 100)
        .unwrap()
        .iter()
        .map(|e| e.revision)
        .collect();
    assert_eq!(revs, vec![3, 4, 5]);
    assert!(c.events_since(6, 100).unwrap().is_empty());
}

#[test]
fn backup_restores_objects_and_moves_revision_forward() {
    let mut a = Catalog::default();
    a.apply(&put(service("web", 80), None)).unwrap();
    a.apply(&put(service("db", 5432), None)).unwrap();
    let backup = a.encode_backup();
    a.apply(&delete(Kind::Service, "db", None)).unwrap();
    let out = a
        .apply(&Command::new(Op::Restore(RestoreOp { backup })))
        .unwrap();
    assert_eq!(out, Outcome::Restored { revision: 4 });
    assert!(a.get(Kind::Service, "db").is_some());
    assert!(matches!(
        a.events_since(4, 10),
        Err(CatalogError::Compacted { .. })
    ));
    let err = a
        .apply(&Command::new(Op::Restore(RestoreOp {
            backup: b"garbage".to_vec(),
        })))
        .unwrap_err();
    assert!(matches!(err, CatalogError::Corrupt(_)));
}

/// Operations the property test draws from: keys from a small set so they collide.
#[derive(Debug, Clone)]
enum ModelOp {
    Put {
        key: u8,
        port: u32,
        cas: Option<u64>,
    },
    Delete {
        key: u8,
        cas: Option<u64>,
    },
}

fn model_op() -> impl Strategy<Value = ModelOp> {
    let cas = prop_oneof![Just(None), (0u64..12).prop_map(Some)];
    prop_oneof![
        (0u8..4, 1u32..100, cas.clone()).prop_map(|(key, port, cas)| ModelOp::Put {
            key,
            port,
            cas
        }),
        (0u8..4, cas).prop_map(|(key, cas)| ModelOp::Delete { key, cas }),
    ]
}

proptest! {
    /// The catalog agrees with a map of (port, mod revision) on every outcome, its revision counts
    /// exactly the successful changes, its event window is contiguous, and a snapshot round trip
    /// reproduces it exactly.
    #[test]
    fn catalog_matches_reference_model(ops in proptest::collection::vec(model_op(), 1..60)) {
        let mut c = Catalog::new(16);
        let mut model: BTreeMap<String, (u32, u64)> = BTreeMap::new();
        let mut revision = 0u64;
        for op in ops {
            match op {
                ModelOp::Put { key, port, cas } => {
                    let name = format!("svc-{key}");
                    let current = model.get(&name).map_or(0, |v| v.1);
                    let result = c.apply(&put(service(&name, port), cas));
                    if cas.is_some_and(|e| e != current) {
                        let is_mismatch = matches!(result, Err(CatalogError::RevisionMismatch { current: cur, .. }) if cur == current);
                        prop_assert!(is_mismatch);
                    } else {
                        revision += 1;
                        let ok = matches!(result, Ok(Outcome::Put { revision: r, .. }) if r == revision);
                        prop_assert!(ok);
                        model.insert(name, (port, revision));
                    }
                }
                ModelOp::Delete { key, cas } => {
                    let name = format!("svc-{key}");
                    let current = model.get(&name).map_or(0, |v| v.1);
                    let result = c.apply(&delete(Kind::Service, &name, cas));
                    if cas.is_some_and(|e| e != current) {
                        let ok = matches!(result, Err(CatalogError::RevisionMismatch { .. }));
                        prop_assert!(ok);
                    } else if current == 0 {
                        let ok = matches!(result, Err(CatalogError::NotFound { .. }));
                        prop_assert!(ok);
                    } else {
                        revision += 1;
                        let ok = matches!(result, Ok(Outcome::Deleted { revision: r, .. }) if r == revision);
                        prop_assert!(ok);
                        model.remove(&name);
                    }
                }
            }
            prop_assert_eq!(c.revision(), revision);
        }
        let listed: BTreeMap<String, (u32, u64)> = c
            .list(Kind::Service, "", "", "")
            .into_iter()
            .map(|o| match o.object {
                Some(object::Object::Service(s)) => (s.name, (s.ports[0], s.meta.unwrap().mod_revision)),
                _ => unreachable!(),
            })
            .collect();
        prop_assert_eq!(&listed, &model);
        let from = c.oldest_watchable();
        let events = c.events_since(from, usize::MAX).unwrap();
        for (i, e) in events.iter().enumerate() {
            prop_assert_eq!(e.revision, from + i as u64);
            prop_assert!(e.r#type == EventType::Put as i32 || e.r#type == EventType::Delete as i32);
        }
        if let Some(last) = events.last() {
            prop_assert_eq!(last.revision, revision);
        }
        let restored = Catalog::decode_snapshot(&c.encode_snapshot(), 16).unwrap();
        prop_assert_eq!(restored, c);
    }
}
