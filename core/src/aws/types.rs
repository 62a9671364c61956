//! What the agent reads and writes in the cloud, in AWS's terms.

use std::collections::BTreeMap;

mod elb;
pub use elb::*;

/// Resource tags.
pub type Tags = BTreeMap<String, String>;

/// The tag naming the pld cluster and object that owns a resource.
pub const OWNER_TAG: &str = "pld:owner";

/// Whether `have` carries every tag of `wanted` with the same value: the filter of every
/// describe by tag, in the sim and the AWS backend alike.
pub fn has_tags(have: &Tags, wanted: &Tags) -> bool {
    wanted.iter().all(|(k, v)| have.get(k) == Some(v))
}

/// A VPC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vpc {
    pub id: String,
    pub account: String,
    /// The primary IPv4 CIDR block.
    pub cidr: String,
    /// IPv4 CIDR blocks associated after the primary (`AssociateVpcCidrBlock`).
    pub secondary_cidrs: Vec<String>,
    pub ipv6_cidrs: Vec<String>,
}

/// A subnet, placed by AZ ID (never by AZ name, which differs per account).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub az_id: String,
    /// This account's name of the zone: reported to people, never placed by.
    pub az_name: String,
    pub cidr: String,
    pub ipv6_cidr: Option<String>,
}

/// A route in a route table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// A CIDR, or a prefix list id (`pl-...`) for gateway endpoints.
    pub destination: String,
    /// `local`, an endpoint id (`vpce-...`), ...
    pub target: String,
}

/// A route table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
    pub id: String,
    pub vpc_id: String,
    pub routes: Vec<Route>,
    /// The VPC's main route table, which subnets without an association of their own use.
    pub main: bool,
    /// Subnets associated with it explicitly.
    pub subnet_ids: Vec<String>,
}

/// A Service Quotas quota pld reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quota {
    /// Interface and Gateway Load Balancer endpoints per VPC (AWS PrivateLink quotas).
    InterfaceEndpointsPerVpc,
}

impl Quota {
    /// The service code Service Quotas files it under.
    pub fn service_code(self) -> &'static str {
        match self {
            Quota::InterfaceEndpointsPerVpc => "vpc",
        }
    }

    /// Its quota code.
    pub fn code(self) -> &'static str {
        match self {
            Quota::InterfaceEndpointsPerVpc => "L-29B6F2EB",
        }
    }

    /// AWS's published default ("AWS PrivateLink quotas": 50 interface and Gateway Load
    /// Balancer endpoints per VPC), for an account whose value cannot be read.
    pub fn aws_default(self) -> u32 {
        match self {
            Quota::InterfaceEndpointsPerVpc => 50,
        }
    }
}

/// Kinds of VPC endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointKind {
    /// ENIs in subnets: custom services behind an NLB and most AWS services.
    Interface,
    /// Route-table entries: S3 and DynamoDB.
    Gateway,
    /// ENIs that steer traffic to a GWLB appliance fleet.
    GatewayLoadBalancer,
    /// VPC Lattice resource endpoints: pld reads them as what they are and never touches them.
    Resource,
    /// VPC Lattice service-network endpoints: likewise never touched.
    ServiceNetwork,
    /// A type AWS added after this build: never taken for one pld manages.
    Unrecognised,
}

impl EndpointKind {
    /// AWS's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            EndpointKind::Interface => "Interface",
            EndpointKind::Gateway => "Gateway",
            EndpointKind::GatewayLoadBalancer => "GatewayLoadBalancer",
            EndpointKind::Resource => "Resource",
            EndpointKind::ServiceNetwork => "ServiceNetwork",
            EndpointKind::Unrecognised => "unrecognised",
        }
    }

    /// The kind AWS's `VpcEndpointType` or `ServiceType` names, ignoring case. Anything else,
    /// a missing type included, is [`EndpointKind::Unrecognised`], never a kind pld manages.
    pub fn from_aws(name: Option<&str>) -> EndpointKind {
        match name.map(str::to_ascii_lowercase).as_deref() {
            Some("interface") => EndpointKind::Interface,
            Some("gateway") => EndpointKind::Gateway,
            Some("gatewayloadbalancer") => EndpointKind::GatewayLoadBalancer,
            Some("resource") => EndpointKind::Resource,
            Some("servicenetwork") => EndpointKind::ServiceNetwork,
            _ => EndpointKind::Unrecognised,
        }
    }

    /// Whether pld creates, changes and deletes endpoints of this kind.
    pub fn is_managed(&self) -> bool {
        matches!(
            self,
            EndpointKind::Interface | EndpointKind::Gateway | EndpointKind::GatewayLoadBalancer
        )
    }
}

/// The provider's side of an endpoint service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointService {
    /// `vpce-svc-...`
    pub id: String,
    /// `com.amazonaws.vpce.REGION.vpce-svc-...`
    pub name: String,
    /// Pending, Available, Deleting, Deleted, Failed (compare ignoring case).
    pub state: String,
    pub acceptance_required: bool,
    pub load_balancer_arns: Vec<String>,
    pub az_ids: Vec<String>,
    /// The regions it is offered to (SupportedRegions), its own among them as AWS lists it.
    pub supported_regions: Vec<SupportedRegion>,
    pub tags: Tags,
}

impl EndpointService {
    /// The region it is in: its name is `com.amazonaws.vpce.REGION.vpce-svc-...`.
    pub fn region(&self) -> &str {
        service_region(&self.name).unwrap_or_default()
    }
}

/// A region an endpoint service is offered to, and AWS's ServiceState of it there (Pending,
/// Available, Deleting, Deleted, Failed, Closed: EC2 API reference, SupportedRegionDetail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportedRegion {
    pub region: String,
    pub state: String,
}

/// What a consumer can learn about a service it may connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDetail {
    pub name: String,
    pub kind: EndpointKind,
    pub az_ids: Vec<String>,
    pub owner: String,
    pub acceptance_required: bool,
}

/// A consumer endpoint's connection to an endpoint service, as its provider sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub service_id: String,
    pub endpoint_id: String,
    /// Account that owns the endpoint.
    pub owner: String,
    /// pendingAcceptance, pending, available, rejected, expired, failed, deleting, deleted.
    pub state: String,
}

/// A VPC endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `vpce-...`
    pub id: String,
    pub vpc_id: String,
    pub service_name: String,
    pub kind: EndpointKind,
    /// pendingAcceptance, pending, available, rejected, ... (compare ignoring case).
    pub state: String,
    pub subnet_ids: Vec<String>,
    pub route_table_ids: Vec<String>,
    /// Regional name first, then one per AZ.
    pub dns_names: Vec<String>,
    /// ENI addresses (interface and GWLB endpoints).
    pub addresses: Vec<String>,
    pub tags: Tags,
}

impl Endpoint {
    /// Whether it counts against [`Quota::InterfaceEndpointsPerVpc`]: an interface or Gateway
    /// Load Balancer endpoint that is not yet deleted. An idle, rejected or failed endpoint
    /// still exists and still bills, so it is counted too: better a plan that warns early
    /// than one that promises a create AWS refuses.
    pub fn counts_against_quota(&self) -> bool {
        matches!(
            self.kind,
            EndpointKind::Interface | EndpointKind::GatewayLoadBalancer
        ) && !state_is(&self.state, "deleted")
    }
}

/// Parameters of CreateVpcEndpointServiceConfiguration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateEndpointService {
    pub load_balancer_arn: String,
    pub acceptance_required: bool,
    pub supported_regions: Vec<String>,
    pub private_dns_name: Option<String>,
    pub client_token: String,
    pub tags: Tags,
}

/// The region of an endpoint service named `com.amazonaws.vpce.REGION.vpce-svc-...`; `None`
/// for any other name (an AWS service's is named for the consumer's region already).
pub fn service_region(name: &str) -> Option<&str> {
    let mut parts = name.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("com"), Some("amazonaws"), Some("vpce"), Some(region)) if !region.is_empty() => {
            Some(region)
        }
        _ => None,
    }
}

/// Parameters of CreateVpcEndpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateEndpoint {
    pub kind: EndpointKind,
    pub vpc_id: String,
    pub service_name: String,
    /// The service's region when it is not the caller's (cross-region PrivateLink).
    pub service_region: Option<String>,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    pub route_table_ids: Vec<String>,
    pub client_token: String,
    pub tags: Tags,
}

/// A Route 53 private hosted zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedZone {
    /// `Z...`
    pub id: String,
    /// With the trailing dot.
    pub name: String,
    pub vpc_ids: Vec<String>,
    /// HostedZoneConfig.Comment.
    pub comment: String,
    /// The CallerReference it was created with (empty where the API does not say:
    /// ListHostedZonesByVPC gives summaries without it).
    pub caller_reference: String,
}

/// A record set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSet {
    /// Fully qualified, with the trailing dot.
    pub name: String,
    /// A, TXT, CNAME...
    pub kind: String,
    pub ttl: u32,
    pub values: Vec<String>,
}

/// What to do with a record set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeAction {
    Create,
    Upsert,
    Delete,
}

/// One change in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordChange {
    pub action: ChangeAction,
    pub record: RecordSet,
}

/// GetChange's answer: a change is published only when every Route 53 server has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeStatus {
    Pending,
    InSync,
}

/// Compares AWS states ignoring case (the wire says `available`, SDK enums `Available`).
pub fn state_is(state: &str, expected: &str) -> bool {
    state.eq_ignore_ascii_case(expected)
}

/// Ensures a DNS name ends with a dot.
pub fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// AWS services reachable through interface endpoints (`com.amazonaws.REGION.NAME`), the subset
/// pld offers as built-ins.
pub const AWS_INTERFACE_SERVICES: &[&str] = &[
    "ssm",
    "ssmmessages",
    "ec2messages",
    "sts",
    "ecr.api",
    "ecr.dkr",
    "logs",
    "kms",
    "secretsmanager",
    "sqs",
    "sns",
    "monitoring",
    "elasticloadbalancing",
    "execute-api",
];

/// AWS services reached through gateway endpoints on route tables.
pub const AWS_GATEWAY_SERVICES: &[&str] = &["s3", "dynamodb"];
