//! The access rules the state machine enforces when it applies a command: an agent's commands
//! stay inside its VPC, and bindings need a principal the service allows. They are checked
//! against the catalog at apply time, so a change committed between an agent's request and its
//! own entry decides the outcome, the same on every replica.

use pld_core::catalog::{binding_key, Catalog, CatalogError};
use pld_core::command::{
    Command, DeleteOp, ExpireLeasesOp, KeepAliveOp, Op, PutOp, RestoreOp, Scope, SetClusterIdOp,
};
use pld_proto::v1::{
    object, report_status_request, Agent, Approval, Binding, Kind, Object, ReportStatusRequest,
    Service, ServiceStatus,
};

const NLB: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/demo/50dc6c495c0c9188";

fn scope(account: &str, vpc: &str) -> Option<Scope> {
    Some(Scope {
        account_id: account.into(),
        vpc_id: vpc.into(),
    })
}

fn service(name: &str, vpc: &str, principals: &[&str]) -> Object {
    Object {
        object: Some(object::Object::Service(Service {
            name: name.into(),
            vpc_id: vpc.into(),
            load_balancer_arn: NLB.into(),
            ports: vec![443],
            allowed_principals: principals.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        })),
    }
}

fn agent(vpc: &str, account: &str) -> Object {
    Object {
        object: Some(object::Object::Agent(Agent {
            vpc_id: vpc.into(),
            account_id: account.into(),
            region: "us-east-1".into(),
            lease_ttl_seconds: 60,
            ..Default::default()
        })),
    }
}

fn binding(service: &str, vpc: &str, approval: Approval) -> Object {
    Object {
        object: Some(object::Object::Binding(Binding {
            service: service.into(),
            consumer_vpc_id: vpc.into(),
            approval: approval as i32,
            ..Default::default()
        })),
    }
}

fn put(obj: Object) -> Command {
    Command::new(Op::Put(PutOp {
        object: Some(obj),
        expected_mod_revision: None,
        now_unix_ms: 1_000,
    }))
}

fn report_service(name: &str) -> Command {
    Command::new(Op::ReportStatus(ReportStatusRequest {
        kind: Kind::Service as i32,
        key: name.into(),
        status: Some(report_status_request::Status::Service(ServiceStatus {
            state: "available".into(),
            ..Default::default()
        })),
    }))
}

fn delete(kind: Kind, key: &str) -> Command {
    Command::new(Op::Delete(DeleteOp {
        kind: kind as i32,
        key: key.into(),
        expected_mod_revision: None,
    }))
}

#[track_caller]
fn forbidden(c: &mut Catalog, cmd: Command, says: &str) {
    let before = c.clone();
    match c.apply(&cmd) {
        Err(CatalogError::Forbidden(why)) => assert!(why.contains(says), "{why:?} vs {says:?}"),
        other => panic!("expected Forbidden({says:?}), got {other:?}"),
    }
    assert_eq!(*c, before, "a refused command changes nothing");
}

const A: &str = "vpc-aaaaaaaa";
const B: &str = "vpc-bbbbbbbb";

#[test]
fn a_status_report_is_judged_by_who_owns_the_service_when_it_applies() {
    let mut c = Catalog::default();
    c.apply(&put(service("web", A, &["*"])).within(scope("111111111111", A)))
        .unwrap();
    // A's report is proposed; before it applies, the service is deleted and B registers one
    // under the same name. A's entry must not write B's status.
    let reported_by_a = report_service("web").within(scope("111111111111", A));
    c.apply(&delete(Kind::Service, "web").within(scope("111111111111", A)))
        .unwrap();
    c.apply(&put(service("web", B, &["*"])).within(scope("222222222222", B)))
        .unwrap();
    forbidden(&mut c, reported_by_a, "belongs to vpc-bbbbbbbb");
    // Unscoped (an admin, or a controller without TLS) may.
    c.apply(&report_service("web")).unwrap();
}

#[test]
fn an_agent_cannot_restore_expire_leases_or_name_the_cluster() {
    let mut c = Catalog::default();
    let s = scope("111111111111", A);
    forbidden(
        &mut c,
        Command::new(Op::SetClusterId(SetClusterIdOp {
            cluster_id: "mine".into(),
        }))
        .within(s.clone()),
        "name the cluster",
    );
    assert_eq!(c.cluster_id(), None);
    forbidden(
        &mut c,
        Command::new(Op::Restore(RestoreOp { backup: vec![] })).within(s.clone()),
        "cannot expire leases, restore the catalog or name the cluster",
    );
    forbidden(
        &mut c,
        Command::new(Op::ExpireLeases(ExpireLeasesOp { now_unix_ms: 5 })).within(s.clone()),
        "cannot expire leases, restore the catalog or name the cluster",
    );
    c.apply(&put(agent(A, "111111111111")).within(s.clone()))
        .unwrap();
    forbidden(
        &mut c,
        Command::new(Op::KeepAlive(KeepAliveOp {
            vpc_id: A.into(),
            now_unix_ms: 2_000,
        }))
        .within(scope("111111111111", B)),
        "cannot renew the lease of vpc-aaaaaaaa",
    );
}

#[test]
fn a_binding_keeps_its_approval_against_its_agent() {
    let mut c = Catalog::default();
    c.apply(&put(agent(B, "222222222222"))).unwrap();
    c.apply(&put(service("web", A, &["arn:aws:iam::222222222222:root"])))
        .unwrap();
    let b = scope("222222222222", B);
    c.apply(&put(binding("web", B, Approval::Unspecified)).within(b.clone()))
        .unwrap();
    c.apply(&put(binding("web", B, Approval::Rejected)))
        .unwrap();
    // Neither undoing the rejection nor approving itself.
    forbidden(
        &mut c,
        put(binding("web", B, Approval::Unspecified)).within(b.clone()),
        "cannot approve or reject",
    );
    forbidden(
        &mut c,
        put(binding("web", B, Approval::Accepted)).within(b.clone()),
        "cannot approve or reject",
    );
    // It can still withdraw it.
    c.apply(&delete(Kind::Binding, &binding_key("web", B)).within(b))
        .unwrap();
}

#[test]
fn principals_are_checked_against_the_accounts_the_catalog_knows() {
    let mut c = Catalog::default();
    c.apply(&put(agent(A, "111111111111"))).unwrap();
    c.apply(&put(agent(B, "222222222222"))).unwrap();
    c.apply(&put(service("web", A, &["arn:aws:iam::333333333333:root"])))
        .unwrap();
    forbidden(
        &mut c,
        put(binding("web", B, Approval::Unspecified)),
        "account 222222222222 is not among its allowed principals",
    );
    // The agent's certificate account counts, not a record someone else could have written.
    forbidden(
        &mut c,
        put(binding("web", B, Approval::Unspecified)).within(scope("222222222222", B)),
        "222222222222",
    );
    // The provider's account is allowed without being listed.
    c.apply(&put(binding("web", A, Approval::Unspecified)))
        .unwrap();
    // Built-in AWS services and services not in the catalog have nothing to check.
    c.apply(&put(binding("s3", B, Approval::Unspecified)))
        .unwrap();
    c.apply(&put(binding("later", B, Approval::Unspecified)))
        .unwrap();
}

#[test]
fn an_agent_reads_services_and_its_own_vpc_objects_only() {
    const C: &str = "vpc-cccccccc";
    let mut c = Catalog::default();
    for obj in [
        agent(A, "111111111111"),
        agent(B, "222222222222"),
        service("billing", A, &["*"]),
        service("search", B, &["*"]),
        binding("billing", B, Approval::Unspecified),
        binding("search", C, Approval::Unspecified),
        binding("s3", C, Approval::Unspecified),
    ] {
        c.apply(&put(obj)).expect("put");
    }
    let reads = |vpc: &str, kind: Kind, key: &str| {
        let Some(s) = scope("111111111111", vpc) else {
            unreachable!("scope() always names one")
        };
        pld_core::access::may_read(&c, &s, kind, key)
    };
    // Every service: consumers look them up to bind them.
    assert!(reads(C, Kind::Service, "billing"));
    assert!(reads(C, Kind::Service, "no-such-service"));
    // A binding: its consumer, and the provider of the service it binds.
    assert!(
        reads(B, Kind::Binding, &binding_key("billing", B)),
        "consumer"
    );
    assert!(
        reads(A, Kind::Binding, &binding_key("billing", B)),
        "provider"
    );
    assert!(
        !reads(C, Kind::Binding, &binding_key("billing", B)),
        "bystander"
    );
    assert!(
        !reads(A, Kind::Binding, &binding_key("search", C)),
        "bystander"
    );
    // A built-in AWS service has no provider VPC: the consumer alone.
    assert!(reads(C, Kind::Binding, &binding_key("s3", C)));
    assert!(!reads(A, Kind::Binding, &binding_key("s3", C)));
    // The decision takes the key alone: a missing object is refused the same way.
    assert!(!reads(C, Kind::Binding, &binding_key("billing", A)));
    assert!(!reads(A, Kind::Binding, "no-slash"));
    // Agent records: its own.
    assert!(reads(A, Kind::Agent, A));
    assert!(!reads(A, Kind::Agent, B));
    assert!(!reads(A, Kind::Unspecified, A));
}

fn report_facts(vpc: &str) -> Command {
    Command::new(Op::ReportStatus(ReportStatusRequest {
        kind: Kind::Agent as i32,
        key: vpc.into(),
        status: Some(report_status_request::Status::Agent(
            pld_proto::v1::VpcFacts {
                ipv4_cidrs: vec!["10.1.0.0/16".into()],
                endpoint_quota: 50,
                ..Default::default()
            },
        )),
    }))
}

fn facts_of(c: &Catalog, vpc: &str) -> Option<pld_proto::v1::VpcFacts> {
    c.agent(vpc).and_then(|a| a.facts.clone())
}

#[test]
fn an_agent_reports_the_facts_of_its_own_vpc_only_and_a_registration_keeps_them() {
    let mut c = Catalog::default();
    c.apply(&put(agent(A, "111111111111")).within(scope("111111111111", A)))
        .unwrap();
    c.apply(&put(agent(B, "222222222222")).within(scope("222222222222", B)))
        .unwrap();
    forbidden(
        &mut c,
        report_facts(A).within(scope("222222222222", B)),
        "cannot change agent",
    );
    c.apply(&report_facts(A).within(scope("111111111111", A)))
        .unwrap();
    assert_eq!(
        facts_of(&c, A).map(|f| f.ipv4_cidrs),
        Some(vec!["10.1.0.0/16".to_string()])
    );
    // The agent restarts and registers again: its facts stay until it reports anew.
    c.apply(&put(agent(A, "111111111111")).within(scope("111111111111", A)))
        .unwrap();
    assert!(facts_of(&c, A).is_some());
    // Facts are an agent's, not a service's.
    let misfiled = Command::new(Op::ReportStatus(ReportStatusRequest {
        kind: Kind::Service as i32,
        ..match report_facts(A).op {
            Some(Op::ReportStatus(r)) => r,
            _ => unreachable!("built above"),
        }
    }));
    assert!(matches!(
        c.apply(&misfiled),
        Err(CatalogError::Invalid(e)) if e.field == "status"
    ));
    // Facts beyond the bounds are refused by the state machine too, naming the field.
    let mut huge = report_facts(A);
    if let Some(Op::ReportStatus(r)) = &mut huge.op {
        if let Some(report_status_request::Status::Agent(f)) = &mut r.status {
            f.ipv4_cidrs = vec!["10.1.0.0/16".into(); pld_core::facts::MAX_CIDRS + 1];
        }
    }
    assert!(matches!(
        c.apply(&huge),
        Err(CatalogError::Invalid(e)) if e.field == "facts.ipv4_cidrs"
    ));
}
