//! A simulated AWS region: what moto does not do and what `pld dev` needs, with AWS's
//! behaviour rather than a dictionary.
//!
//! Modelled on the EC2 and Route 53 API references:
//! - endpoint services start `Pending` and become `Available`; consumers' connections go
//!   `pendingAcceptance → pending → available` (or `rejected`), or straight to `pending` when
//!   acceptance is not required (CreateVpcEndpoint, AcceptVpcEndpointConnections);
//! - a service is invisible to accounts its allowed principals do not cover
//!   (DescribeVpcEndpointServices answers InvalidServiceName);
//! - an interface endpoint may only use subnets in AZs the service supports, one per AZ
//!   (`DuplicateSubnetsInSameZone`);
//! - `ClientToken` makes creates idempotent; the same token with other parameters is
//!   `IdempotentParameterMismatch`;
//! - a service with available or pending connections cannot be deleted;
//! - Route 53 changes are `PENDING` then `INSYNC`; CREATE of an existing record fails; a second
//!   change while one is pending is `PriorRequestNotComplete` (ChangeResourceRecordSets);
//! - ELBv2 (`elb.rs`, `target_groups.rs`, `listeners.rs`): creates idempotent by name, new
//!   load balancers `provisioning → active`, and the rules of an NLB in front of an ALB (one
//!   ALB per `alb` target group, on a port the ALB listens on, TCP only, HTTP(S) health checks,
//!   at most two NLBs per ALB, nothing in use deleted);
//! - per-account token buckets at AWS's published rates (optional, scalable);
//! - states on the wire in AWS's lower camel case, so callers must compare ignoring case;
//! - injectable faults: throttling, 5xx, stale describes.
//!
//! Time-driven transitions are computed when the state is read, from the configured latencies.

mod cloud;
mod dataplane;
mod ec2_network;
mod elb;
mod endpoint_services;
mod endpoints;
mod gate;
mod ids;
mod listeners;
mod route53;
mod service_quotas;
mod service_regions;
mod target_groups;
mod world;
mod zones;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::limiter::{ApiClass, Bucket};
use crate::types::*;
use crate::Action;

pub use cloud::SimCloud;
pub use dataplane::{echo_server, http_server};
pub use world::SimWorld;
use zones::id_base;
pub use zones::{az_name, region_az_ids, AZ_IDS};

/// How long transitions take.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    /// Endpoint service `Pending → Available`.
    pub service_available: Duration,
    /// Endpoint `pending → available` (after acceptance when required).
    pub endpoint_available: Duration,
    /// Route 53 change `PENDING → INSYNC`.
    pub change_insync: Duration,
    /// A load balancer created through the API, `provisioning → active`.
    pub load_balancer_active: Duration,
}

/// Faults to inject, each as a probability per call (0.0 to 1.0).
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Calls answered `RequestLimitExceeded`/`Throttling`.
    pub throttle: f64,
    /// Calls answered with a 5xx.
    pub server_error: f64,
    /// Connection state changes become visible to describes only after this long, as AWS's
    /// eventually consistent describes do.
    pub stale_describe: Duration,
}

/// Settings of a simulated region.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub region: String,
    pub latency: Latency,
    /// AWS's rate limits times this factor; `None` = no limits.
    pub rate_limit_scale: Option<f64>,
    /// Give interface endpoints loopback addresses that forward TCP to the load balancer's
    /// targets, so traffic really flows (`pld dev`).
    pub loopback_data_plane: bool,
}

impl SimConfig {
    /// A region with instant transitions and no limits.
    pub fn instant(region: &str) -> Self {
        SimConfig {
            region: region.to_string(),
            latency: Latency::default(),
            rate_limit_scale: None,
            loopback_data_plane: false,
        }
    }
}

/// A load balancer to create in the region.
pub struct NewLoadBalancer<'a> {
    pub account: &'a str,
    pub vpc_id: &'a str,
    pub kind: LoadBalancerKind,
    pub name: &'a str,
    /// AZ IDs it spans (an endpoint service supports exactly these).
    pub az_ids: &'a [&'a str],
    /// Listener ports.
    pub ports: &'a [u16],
    /// Where the loopback data plane sends connections.
    pub targets: &'a [SocketAddr],
}

/// What exists in the region, for tests that check nothing was left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub endpoint_services: Vec<String>,
    pub endpoints: Vec<String>,
    pub hosted_zones: Vec<String>,
    /// Records other than SOA and NS.
    pub records: Vec<String>,
    /// Load balancers, target groups and listeners: those tests added and those created
    /// through the API.
    pub load_balancers: Vec<String>,
    pub target_groups: Vec<String>,
    pub listeners: Vec<String>,
}

#[derive(Debug)]
struct ServiceRec {
    svc: EndpointService,
    owner: String,
    principals: BTreeSet<String>,
    created: Instant,
    /// When each other region's state last changed (`Pending` or `Deleting` since then).
    region_since: HashMap<String, Instant>,
}

#[derive(Debug)]
struct EndpointRec {
    ep: Endpoint,
    owner: String,
    /// The custom service it connects to.
    service_id: Option<String>,
    acceptance_required: bool,
    created: Instant,
    accepted: Option<Instant>,
    /// When a rejection happened (visible after the stale-describe delay).
    rejected: Option<Instant>,
    dataplane: Option<dataplane::Forwarders>,
    /// For an endpoint to a service of another region: that region.
    service_region: Option<String>,
    /// Where the loopback data plane sends its connections, for an endpoint to a service of
    /// another region: snapshotted from that region when the provider accepts it.
    remote_forwarding: Option<(Vec<u16>, Vec<SocketAddr>)>,
}

#[derive(Debug)]
struct ZoneRec {
    zone: HostedZone,
    owner: String,
    records: BTreeMap<(String, String), RecordSet>,
    last_change: Option<String>,
    tags: Tags,
}

#[derive(Debug)]
struct LbRec {
    lb: LoadBalancer,
    owner: String,
    /// Where the loopback data plane sends connections to it (a load balancer added by a
    /// test); empty for one created through the API, whose listeners say where.
    targets: Vec<SocketAddr>,
    tags: Tags,
    created: Instant,
    /// An internet-facing load balancer's own address in the loopback data plane, and the
    /// forwarding from it to its targets.
    internet: Option<(String, dataplane::Forwarders)>,
}

#[derive(Debug)]
struct ListenerRec {
    listener: Listener,
    owner: String,
    tags: Tags,
}

#[derive(Debug)]
struct TargetGroupRec {
    group: TargetGroup,
    owner: String,
    tags: Tags,
    /// Registered target ids (instance ids, addresses, an ALB's ARN).
    targets: Vec<String>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    vpcs: BTreeMap<String, Vpc>,
    subnets: BTreeMap<String, Subnet>,
    route_tables: BTreeMap<String, RouteTable>,
    lbs: BTreeMap<String, LbRec>,
    listeners: BTreeMap<String, ListenerRec>,
    target_groups: BTreeMap<String, TargetGroupRec>,
    services: BTreeMap<String, ServiceRec>,
    endpoints: BTreeMap<String, EndpointRec>,
    /// (account, token) → (fingerprint of the parameters, resource id)
    tokens: HashMap<(String, String), (String, String)>,
    /// Deleted endpoints and endpoint services, as a create retried with their client token
    /// gets them back (EC2 "Ensuring idempotency": a retry returns the original result, with
    /// updated information such as the current state).
    deleted_endpoints: HashMap<String, Endpoint>,
    deleted_services: HashMap<String, EndpointService>,
    zones: BTreeMap<String, ZoneRec>,
    /// (account, caller reference) → zone id
    caller_refs: HashMap<(String, String), String>,
    changes: HashMap<String, Instant>,
    /// (account, quota) → the account's value where it differs from AWS's default.
    quotas: HashMap<(String, Quota), u32>,
    buckets: HashMap<(String, ApiClass), Bucket>,
    /// Next host number per subnet.
    next_host: HashMap<String, u32>,
}

/// A simulated region shared by any number of accounts.
pub struct SimRegion {
    config: SimConfig,
    faults: Mutex<Faults>,
    /// (account, operation) pairs an IAM policy does not allow: see [`SimRegion::deny`].
    denied: Mutex<BTreeSet<(String, Action)>>,
    state: Mutex<State>,
    /// The world it belongs to, whose other regions its calls may reach (cross-region
    /// PrivateLink); unset for a region on its own.
    world: std::sync::OnceLock<std::sync::Weak<world::SimWorld>>,
}

fn hex(n: u64, width: usize) -> String {
    format!("{n:0width$x}")
}

impl SimRegion {
    /// A new, empty region.
    pub fn new(config: SimConfig) -> Arc<Self> {
        let next_id = id_base(&config.region);
        Arc::new(SimRegion {
            config,
            faults: Mutex::new(Faults::default()),
            denied: Mutex::new(Default::default()),
            state: Mutex::new(State {
                next_id,
                ..State::default()
            }),
            world: std::sync::OnceLock::new(),
        })
    }

    /// The region's name.
    pub fn name(&self) -> &str {
        &self.config.region
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A client acting as `account`.
    pub fn client(self: &Arc<Self>, account: &str) -> SimCloud {
        SimCloud::new(self.clone(), account)
    }

    /// Sets the faults to inject from now on.
    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
    }

    fn faults(&self) -> Faults {
        *self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `action` out of `account`'s IAM policy (`denied`) or puts it back: while out, its
    /// calls are then refused as AWS refuses an action the caller's policy lacks.
    pub fn deny(&self, account: &str, action: Action, denied: bool) {
        let mut set = self.denied.lock().unwrap_or_else(|p| p.into_inner());
        let key = (account.to_string(), action);
        if denied {
            set.insert(key);
        } else {
            set.remove(&key);
        }
    }

    fn is_denied(&self, account: &str, action: Action) -> bool {
        self.denied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&(account.to_string(), action))
    }

    /// Creates a VPC of `account` with one subnet per AZ ID and a main route table.
    pub fn add_vpc(&self, account: &str, cidr: &str) -> Vpc {
        let mut st = self.state();
        st.next_id += 1;
        let n = st.next_id;
        let vpc = Vpc {
            id: format!("vpc-{}", hex(0xa000_0000 + n, 8)),
            account: account.to_string(),
            cidr: cidr.to_string(),
            ..Vpc::default()
        };
        let base: Vec<&str> = cidr
            .split('/')
            .next()
            .unwrap_or("10.0.0.0")
            .split('.')
            .collect();
        for (i, az) in region_az_ids(&self.config.region).iter().enumerate() {
            st.next_id += 1;
            let id = format!("subnet-{}", hex(0xb000_0000 + st.next_id, 8));
            let subnet_cidr = format!(
                "{}.{}.{}.0/24",
                base.first().unwrap_or(&"10"),
                base.get(1).unwrap_or(&"0"),
                i + 1
            );
            st.subnets.insert(
                id.clone(),
                Subnet {
                    id,
                    vpc_id: vpc.id.clone(),
                    az_id: az.to_string(),
                    az_name: az_name(&self.config.region, account, az),
                    cidr: subnet_cidr,
                    ipv6_cidr: None,
                },
            );
        }
        st.next_id += 1;
        let rt = format!("rtb-{}", hex(0xc000_0000 + st.next_id, 8));
        st.route_tables.insert(
            rt.clone(),
            RouteTable {
                id: rt,
                vpc_id: vpc.id.clone(),
                routes: vec![Route {
                    destination: cidr.to_string(),
                    target: "local".into(),
                }],
                main: true,
                subnet_ids: Vec::new(),
            },
        );
        st.vpcs.insert(vpc.id.clone(), vpc.clone());
        vpc
    }

    /// Creates a load balancer as its owner would have, active, with a listener per port: TCP
    /// for a network, GENEVE for a gateway and HTTP for an application load balancer, which
    /// is internet-facing and forwards to an `ip` target group holding `targets`, as the ALB a
    /// team already serves the internet through.
    pub fn add_load_balancer(&self, spec: NewLoadBalancer<'_>) -> LoadBalancer {
        let mut st = self.state();
        st.next_id += 1;
        let lb_id = hex(0x50dc_6c49_5c0c_0000 + st.next_id, 16);
        let arn = format!(
            "arn:aws:elasticloadbalancing:{}:{}:loadbalancer/{}/{}/{lb_id}",
            self.config.region,
            spec.account,
            spec.kind.arn_path(),
            spec.name,
        );
        let subnet_ids = st
            .subnets
            .values()
            .filter(|s| s.vpc_id == spec.vpc_id && spec.az_ids.contains(&s.az_id.as_str()))
            .map(|s| s.id.clone())
            .collect();
        let lb = LoadBalancer {
            arn: arn.clone(),
            name: spec.name.to_string(),
            kind: spec.kind,
            internal: spec.kind != LoadBalancerKind::Application,
            vpc_id: spec.vpc_id.to_string(),
            az_ids: spec.az_ids.iter().map(|s| s.to_string()).collect(),
            subnet_ids,
            state: "active".into(),
        };
        let (protocol, group) = match spec.kind {
            LoadBalancerKind::Network => (Protocol::Tcp, None),
            LoadBalancerKind::Gateway => (Protocol::Geneve, None),
            LoadBalancerKind::Application => {
                st.next_id += 1;
                let group_arn = format!(
                    "arn:aws:elasticloadbalancing:{}:{}:targetgroup/{}-targets/{}",
                    self.config.region,
                    spec.account,
                    spec.name,
                    hex(0x7a3e_0000_0000_0000 + st.next_id, 16)
                );
                let group = TargetGroup {
                    arn: group_arn.clone(),
                    name: format!("{}-targets", spec.name),
                    target_type: TargetType::Ip,
                    protocol: Protocol::Http,
                    port: spec.ports.first().copied().unwrap_or(80),
                    vpc_id: spec.vpc_id.to_string(),
                    health_check: HealthCheck {
                        protocol: Protocol::Http,
                        path: "/".into(),
                        matcher: "200".into(),
                    },
                    load_balancer_arns: vec![arn.clone()],
                };
                st.target_groups.insert(
                    group_arn.clone(),
                    TargetGroupRec {
                        group,
                        owner: spec.account.to_string(),
                        tags: Tags::new(),
                        targets: spec.targets.iter().map(|t| t.ip().to_string()).collect(),
                    },
                );
                (Protocol::Http, Some(group_arn))
            }
        };
        for port in spec.ports {
            st.next_id += 1;
            let listener_arn = format!(
                "arn:aws:elasticloadbalancing:{}:{}:listener/{}/{}/{lb_id}/{}",
                self.config.region,
                spec.account,
                spec.kind.arn_path(),
                spec.name,
                hex(0x1157_0000_0000_0000 + st.next_id, 16)
            );
            st.listeners.insert(
                listener_arn.clone(),
                ListenerRec {
                    listener: Listener {
                        arn: listener_arn,
                        load_balancer_arn: arn.clone(),
                        port: *port,
                        protocol: protocol.clone(),
                        target_group_arn: group.clone(),
                    },
                    owner: spec.account.to_string(),
                    tags: Tags::new(),
                },
            );
        }
        // An internet-facing ALB answers its clients at an address of its own, as the
        // team's service does before and after pld offers it over PrivateLink.
        let internet = (spec.kind == LoadBalancerKind::Application
            && self.config.loopback_data_plane)
            .then(ids::next_internet_address)
            .and_then(|address| {
                let forwarders = dataplane::Forwarders::start(
                    std::slice::from_ref(&address),
                    spec.ports,
                    spec.targets,
                )?;
                Some((address, forwarders))
            });
        st.lbs.insert(
            arn,
            LbRec {
                lb: lb.clone(),
                owner: spec.account.to_string(),
                targets: spec.targets.to_vec(),
                tags: Tags::new(),
                created: Instant::now(),
                internet,
            },
        );
        lb
    }

    /// The address an internet-facing load balancer answers at in the loopback data plane
    /// (`None` for an internal one, or without the loopback data plane).
    pub fn internet_address(&self, arn: &str) -> Option<String> {
        let st = self.state();
        st.lbs
            .get(arn)
            .and_then(|l| l.internet.as_ref())
            .map(|(address, _)| address.clone())
    }

    /// Creates an endpoint that pld does not own (no tags), as a user's hand-made resource.
    pub fn add_foreign_endpoint(&self, account: &str, vpc_id: &str, service_name: &str) -> String {
        self.add_endpoint_made_elsewhere(
            account,
            vpc_id,
            service_name,
            EndpointKind::Interface,
            Tags::new(),
        )
    }

    /// Creates an available endpoint of `kind` with `tags`, as made by a person or another
    /// tool (VPC Lattice's `Resource` and `ServiceNetwork` endpoints, say).
    pub fn add_endpoint_made_elsewhere(
        &self,
        account: &str,
        vpc_id: &str,
        service_name: &str,
        kind: EndpointKind,
        tags: Tags,
    ) -> String {
        let mut st = self.state();
        st.next_id += 1;
        let id = format!("vpce-{}", hex(0xf000_0000_0000 + st.next_id, 17));
        st.endpoints.insert(
            id.clone(),
            EndpointRec {
                ep: Endpoint {
                    id: id.clone(),
                    vpc_id: vpc_id.to_string(),
                    service_name: service_name.to_string(),
                    kind,
                    state: "available".into(),
                    subnet_ids: Vec::new(),
                    route_table_ids: Vec::new(),
                    dns_names: Vec::new(),
                    addresses: Vec::new(),
                    tags,
                },
                owner: account.to_string(),
                service_id: None,
                acceptance_required: false,
                created: Instant::now(),
                accepted: None,
                rejected: None,
                dataplane: None,
                service_region: None,
                remote_forwarding: None,
            },
        );
        id
    }

    /// What exists now.
    pub fn inventory(&self) -> Inventory {
        let st = self.state();
        Inventory {
            endpoint_services: st.services.keys().cloned().collect(),
            endpoints: st.endpoints.keys().cloned().collect(),
            hosted_zones: st.zones.keys().cloned().collect(),
            records: st
                .zones
                .values()
                .flat_map(|z| z.records.values())
                .filter(|r| r.kind != "SOA" && r.kind != "NS")
                .map(|r| format!("{} {}", r.name, r.kind))
                .collect(),
            load_balancers: st.lbs.keys().cloned().collect(),
            target_groups: st.target_groups.keys().cloned().collect(),
            listeners: st.listeners.keys().cloned().collect(),
        }
    }

    /// Every A record holding an address of no available endpoint, as `NAME -> ADDRESSES`:
    /// what pld's invariant "DNS never points at an endpoint that is not available" forbids.
    /// (States are as of the last API call; an endpoint only ever leaves `available` by being
    /// deleted or rejected, which takes effect at once.)
    pub fn dangling_records(&self) -> Vec<String> {
        let st = self.state();
        let serving: BTreeSet<&str> = st
            .endpoints
            .values()
            .filter(|e| state_is(&e.ep.state, "available"))
            .flat_map(|e| e.ep.addresses.iter().map(String::as_str))
            .collect();
        st.zones
            .values()
            .flat_map(|z| z.records.values())
            .filter(|r| r.kind == "A" && r.values.iter().any(|v| !serving.contains(v.as_str())))
            .map(|r| format!("{} -> {}", r.name, r.values.join(",")))
            .collect()
    }

    /// Routes of a route table (tests check gateway endpoints' routes).
    pub fn routes(&self, route_table_id: &str) -> Vec<Route> {
        self.state()
            .route_tables
            .get(route_table_id)
            .map(|rt| rt.routes.clone())
            .unwrap_or_default()
    }
}
