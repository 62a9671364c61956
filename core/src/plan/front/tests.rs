use super::*;
use crate::plan::ownership::Ownership;

const ACCOUNT: &str = "123456789012";
const ALB: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188";
const VPC: &str = "vpc-0a1b2c3d";

fn alb() -> LoadBalancer {
    LoadBalancer {
        arn: ALB.into(),
        name: "web".into(),
        kind: LoadBalancerKind::Application,
        internal: false,
        vpc_id: VPC.into(),
        az_ids: vec!["use1-az1".into(), "use1-az2".into()],
        subnet_ids: vec!["subnet-a".into(), "subnet-b".into()],
        state: "active".into(),
    }
}

fn alb_listener(port: u16, protocol: Protocol) -> Listener {
    Listener {
        arn: format!("arn:listener/app/web/{port}"),
        load_balancer_arn: ALB.into(),
        port,
        protocol,
        target_group_arn: Some("arn:targetgroup/web-targets".into()),
    }
}

struct Case {
    owner: Owner,
    tags: Tags,
    ports: Vec<u16>,
    health: HealthWanted,
    alb: LoadBalancer,
    alb_listeners: Vec<Listener>,
    built: FrontBuilt,
    reaching: Seen<BTreeSet<String>>,
}

impl Case {
    fn new() -> Self {
        let own = Ownership::new("c1", VPC);
        let owner = own.service("web");
        Case {
            tags: own.tags(&owner),
            owner,
            ports: vec![80, 443],
            health: HealthWanted::default(),
            alb: alb(),
            alb_listeners: vec![
                alb_listener(80, Protocol::Http),
                alb_listener(443, Protocol::Https),
            ],
            built: FrontBuilt::default(),
            reaching: Seen::Known(BTreeSet::new()),
        }
    }

    fn plan(&self) -> Front {
        let want = FrontWant {
            owner: &self.owner,
            tags: &self.tags,
            account: ACCOUNT,
            vpc_id: VPC,
            alb_arn: ALB,
            ports: &self.ports,
            health: &self.health,
        };
        let seen = FrontSeen {
            alb: &self.alb,
            alb_listeners: &self.alb_listeners,
            built: &self.built,
            reaching: &self.reaching,
        };
        plan_front(&want, &seen)
    }

    fn names(&self) -> FrontNames {
        front_names(&self.owner, ALB)
    }

    /// Applies a round's writes as AWS would, recording what each made.
    fn apply(&mut self, writes: &[Planned]) {
        for w in writes {
            let made = match &w.call {
                Call::CreateLoadBalancer(req) => Made::LoadBalancer(LoadBalancer {
                    arn: format!(
                        "arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/net/{}/1",
                        req.name
                    ),
                    name: req.name.clone(),
                    kind: req.kind,
                    internal: req.internal,
                    vpc_id: VPC.into(),
                    az_ids: vec![],
                    subnet_ids: req.subnet_ids.clone(),
                    state: "provisioning".into(),
                }),
                Call::CreateTargetGroup(req) => Made::Group(TargetGroup {
                    arn: format!("arn:targetgroup/{}", req.name),
                    name: req.name.clone(),
                    target_type: req.target_type,
                    protocol: req.protocol.clone(),
                    port: req.port,
                    vpc_id: req.vpc_id.clone(),
                    health_check: req.health_check.clone(),
                    load_balancer_arns: vec![],
                }),
                Call::RegisterTargets {
                    target_group_arn,
                    target_ids,
                } => Made::Registered {
                    target_group_arn: target_group_arn.clone(),
                    target_ids: target_ids.clone(),
                },
                Call::CreateListener(req) => Made::Listener(Listener {
                    arn: format!("arn:listener/net/{}", req.port),
                    load_balancer_arn: req.load_balancer_arn.clone(),
                    port: req.port,
                    protocol: req.protocol.clone(),
                    target_group_arn: Some(req.target_group_arn.clone()),
                }),
                Call::ModifyTargetGroupHealth { arn, health_check } => {
                    let mut group = self
                        .built
                        .groups
                        .iter()
                        .find(|g| &g.arn == arn)
                        .cloned()
                        .expect("a group to modify");
                    group.health_check = health_check.clone();
                    Made::HealthChanged(group)
                }
                Call::DeleteListener { arn } => Made::ListenerDeleted(arn.clone()),
                Call::DeleteTargetGroup { arn } => Made::GroupDeleted(arn.clone()),
                Call::DeleteLoadBalancer { .. } => {
                    self.built.load_balancer = None;
                    continue;
                }
                other => panic!("not a front call: {other:?}"),
            };
            self.built.record(made);
        }
    }

    /// Plans and applies rounds until the front is no longer building; the rounds' actions.
    fn converge(&mut self) -> (Vec<Vec<String>>, Front) {
        let mut rounds = Vec::new();
        for _ in 0..5 {
            match self.plan() {
                Front::Build(writes) => {
                    rounds.push(writes.iter().map(|w| w.call.to_string()).collect());
                    self.apply(&writes);
                }
                other => return (rounds, other),
            }
        }
        panic!("no convergence in 5 rounds: {rounds:?}");
    }
}

fn actions(front: &Front) -> Vec<String> {
    match front {
        Front::Build(writes) => writes.iter().map(|w| w.call.action().to_string()).collect(),
        other => panic!("expected writes, got {other:?}"),
    }
}

fn refused(front: Front, words: &str) {
    match front {
        Front::Refused(why) => assert!(why.contains(words), "{words:?} not in {why:?}"),
        other => panic!("expected a refusal with {words:?}, got {other:?}"),
    }
}

#[test]
fn names_are_stable_short_and_name_their_port() {
    let case = Case::new();
    let names = case.names();
    assert_eq!(
        names,
        front_names(&case.owner, ALB),
        "the same for the same service and ALB"
    );
    assert_ne!(names, front_names(&case.owner, &ALB.replace("web", "api")));
    assert!(names.load_balancer.len() <= 32 && names.group(65535).len() <= 32);
    assert_eq!(names.port_of_group(&names.group(443)), Some(443));
    assert_eq!(names.port_of_group(&format!("{}x", names.group(443))), None);
    assert!(may_be_pld_built(&names.load_balancer));
    assert!(may_be_pld_built(&names.group(80)));
    assert!(!may_be_pld_built("web"));
    assert!(!may_be_pld_built("pld-notahexnumber-at-all"));
}

#[test]
fn a_front_is_built_in_three_rounds_and_ready_once_the_nlb_is_active() {
    let mut case = Case::new();
    let first = case.plan();
    assert_eq!(
        actions(&first),
        [
            "CreateLoadBalancer",
            "CreateTargetGroup",
            "CreateTargetGroup"
        ]
    );
    let Front::Build(writes) = &first else {
        unreachable!()
    };
    match &writes[0].call {
        Call::CreateLoadBalancer(req) => {
            assert!(req.internal, "internal");
            assert_eq!(req.kind, LoadBalancerKind::Network);
            assert_eq!(
                req.subnet_ids,
                ["subnet-a", "subnet-b"],
                "the ALB's subnets, so its AZs"
            );
            assert_eq!(req.tags, case.tags, "tagged at create");
        }
        other => panic!("{other:?}"),
    }
    let checks: Vec<(u16, Protocol)> = writes
        .iter()
        .filter_map(|w| match &w.call {
            Call::CreateTargetGroup(req) => {
                assert_eq!(req.target_type, TargetType::Alb);
                assert_eq!(req.protocol, Protocol::Tcp);
                assert_eq!(req.health_check.path, "/");
                assert_eq!(req.health_check.matcher, DEFAULT_MATCHER);
                Some((req.port, req.health_check.protocol.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        checks,
        [(80, Protocol::Http), (443, Protocol::Https)],
        "each port's checks speak its ALB listener's protocol"
    );
    case.apply(&writes.clone());
    assert_eq!(
        actions(&case.plan()),
        [
            "RegisterTargets",
            "CreateListener",
            "RegisterTargets",
            "CreateListener"
        ]
    );
    let (_, waiting) = case.converge();
    assert!(
        matches!(waiting, Front::Waiting(ref w) if w.contains("provisioning")),
        "{waiting:?}"
    );
    if let Some(nlb) = &mut case.built.load_balancer {
        nlb.state = "active".into();
    }
    let nlb = case.built.load_balancer.clone().unwrap();
    assert_eq!(
        case.plan(),
        Front::Ready {
            load_balancer_arn: nlb.arn
        }
    );
}

#[test]
fn a_crash_between_any_two_writes_converges_to_the_same_front() {
    let mut whole = Case::new();
    let (rounds, _) = whole.converge();
    let all: Vec<String> = rounds.concat();
    for cut in 0..all.len() {
        let mut case = Case::new();
        // Apply the first `cut` writes of the rounds, as a crash would leave them.
        let mut made = 0;
        while made < cut {
            let Front::Build(writes) = case.plan() else {
                break;
            };
            let take = (cut - made).min(writes.len());
            case.apply(&writes[..take]);
            made += take;
        }
        let (_, end) = case.converge();
        assert!(
            matches!(end, Front::Waiting(_)),
            "after {cut} writes: {end:?}"
        );
        assert_eq!(case.built.groups.len(), 2, "after {cut} writes");
        assert_eq!(case.built.listeners.len(), 2, "after {cut} writes");
    }
}

#[test]
fn refusals_come_before_anything_is_created() {
    let mut case = Case::new();
    case.ports = vec![80, 8443];
    refused(
        case.plan(),
        "no listener on port 8443 (it listens on 80, 443)",
    );

    let mut case = Case::new();
    case.alb.vpc_id = "vpc-0ther".into();
    refused(case.plan(), "is in VPC vpc-0ther, not the service's VPC");

    let mut case = Case::new();
    case.alb.kind = LoadBalancerKind::Network;
    refused(case.plan(), "not an application load balancer");

    let case = Case::new();
    let want = FrontWant {
        owner: &case.owner,
        tags: &case.tags,
        account: "210987654321",
        vpc_id: VPC,
        alb_arn: ALB,
        ports: &case.ports,
        health: &case.health,
    };
    let seen = FrontSeen {
        alb: &case.alb,
        alb_listeners: &case.alb_listeners,
        built: &case.built,
        reaching: &case.reaching,
    };
    refused(plan_front(&want, &seen), "is in account 123456789012");

    let mut case = Case::new();
    case.reaching = Seen::Known(BTreeSet::from([
        "arn:nlb-1".to_string(),
        "arn:nlb-2".to_string(),
    ]));
    refused(
        case.plan(),
        "already the target of 2 network load balancers (arn:nlb-1, arn:nlb-2)",
    );
}

#[test]
fn the_two_nlb_limit_counts_pld_s_own_nlb_once() {
    let mut case = Case::new();
    let (_, _) = case.converge();
    let ours = case.built.load_balancer.clone().unwrap().arn;
    // A new port to add, with pld's NLB and one other reaching the ALB: allowed.
    case.ports = vec![80];
    case.built.groups.retain(|g| g.port == 80);
    case.built.listeners.clear();
    case.reaching = Seen::Known(BTreeSet::from([ours, "arn:nlb-other".to_string()]));
    assert_eq!(actions(&case.plan()), ["CreateListener"]);
    // Not knowing which NLBs reach the ALB, nothing is created.
    case.reaching = Seen::Unknown("not looked".into());
    assert!(matches!(case.plan(), Front::Waiting(_)));
}

#[test]
fn a_listener_pld_did_not_create_on_a_wanted_port_is_refused_and_never_touched() {
    let mut case = Case::new();
    case.converge();
    let nlb = case.built.load_balancer.clone().unwrap();
    case.built.listeners.retain(|(l, _)| l.port != 443);
    case.built.listeners.push((
        Listener {
            arn: "arn:listener/net/theirs".into(),
            load_balancer_arn: nlb.arn.clone(),
            port: 443,
            protocol: Protocol::Tls,
            target_group_arn: Some("arn:targetgroup/theirs".into()),
        },
        false,
    ));
    refused(
        case.plan(),
        "taken by listener arn:listener/net/theirs, which pld did not create",
    );
    // Not wanted, it stays, and the NLB it is on is never deleted.
    case.ports = vec![80];
    let plan = case.plan();
    let Front::Build(writes) = plan else {
        panic!("{plan:?}")
    };
    assert!(
        writes
            .iter()
            .all(|w| !w.call.to_string().contains("theirs")),
        "{writes:?}"
    );
    let teardown = plan_teardown(&case.built, &Reason::Orphan);
    assert!(teardown.iter().all(
        |w| w.call.action() != crate::aws::Action::DeleteLoadBalancer
            && !w.call.to_string().contains("theirs")
    ));
}

#[test]
fn a_port_change_adds_the_new_port_before_removing_the_old() {
    let mut case = Case::new();
    case.converge();
    case.ports = vec![80];
    case.alb_listeners.push(alb_listener(8080, Protocol::Http));
    case.ports.push(8080);
    let round = case.plan();
    assert_eq!(
        actions(&round),
        ["CreateTargetGroup", "DeleteListener", "DeleteTargetGroup"]
    );
    let (_, _) = case.converge();
    let ports: Vec<u16> = case.built.listeners.iter().map(|(l, _)| l.port).collect();
    assert_eq!(ports, [80, 8080]);
    assert_eq!(case.built.groups.len(), 2);
}

#[test]
fn a_changed_health_check_is_modified_in_place() {
    let mut case = Case::new();
    case.converge();
    case.health = HealthWanted {
        protocol: Some(Protocol::Http),
        path: "/healthz".into(),
        matcher: "200".into(),
    };
    let round = case.plan();
    assert_eq!(actions(&round), ["ModifyTargetGroup", "ModifyTargetGroup"]);
    let Front::Build(writes) = &round else {
        unreachable!()
    };
    assert!(writes[1]
        .reason
        .to_string()
        .contains("HTTPS / 200-399 instead of HTTP /healthz 200"));
    case.converge();
    assert!(case
        .built
        .groups
        .iter()
        .all(|g| g.health_check.path == "/healthz"));
}

#[test]
fn teardown_goes_listeners_then_groups_then_the_nlb() {
    let mut case = Case::new();
    case.converge();
    let order: Vec<String> = plan_teardown(&case.built, &Reason::Orphan)
        .iter()
        .map(|w| w.call.action().to_string())
        .collect();
    assert_eq!(
        order,
        [
            "DeleteListener",
            "DeleteListener",
            "DeleteTargetGroup",
            "DeleteTargetGroup",
            "DeleteLoadBalancer"
        ]
    );
}

#[test]
fn health_settings_come_from_the_catalog_with_defaults() {
    use pld_proto::v1::{HealthCheck as Proto, HealthCheckProtocol};
    assert_eq!(HealthWanted::from_proto(None), HealthWanted::default());
    let h = HealthWanted::from_proto(Some(&Proto {
        protocol: HealthCheckProtocol::Https as i32,
        path: "/ping".into(),
        matcher: String::new(),
    }));
    assert_eq!(h.protocol, Some(Protocol::Https));
    assert_eq!(h.path, "/ping");
    assert_eq!(h.matcher, DEFAULT_MATCHER);
}
