//! ELBv2 in AWS's terms: load balancers, their listeners, target groups and the health of
//! their targets, and the parameters of the creates pld makes when it fronts an application
//! load balancer with a network load balancer of its own.

use std::fmt;

use super::Tags;

/// Kinds of load balancer (ELBv2 `Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoadBalancerKind {
    /// `network`: can back an endpoint service.
    Network,
    /// `gateway`: can back a GWLB endpoint service.
    Gateway,
    /// `application`: cannot back an endpoint service; pld puts an NLB of its own in front.
    Application,
}

impl LoadBalancerKind {
    /// The kind ELBv2 names `name` (ignoring case), if any.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "network" => Some(LoadBalancerKind::Network),
            "gateway" => Some(LoadBalancerKind::Gateway),
            "application" => Some(LoadBalancerKind::Application),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadBalancerKind::Network => "network",
            LoadBalancerKind::Gateway => "gateway",
            LoadBalancerKind::Application => "application",
        }
    }

    /// The ARN's path segment (`loadbalancer/net/NAME/ID`).
    pub fn arn_path(self) -> &'static str {
        match self {
            LoadBalancerKind::Network => "net",
            LoadBalancerKind::Gateway => "gwy",
            LoadBalancerKind::Application => "app",
        }
    }
}

/// A load balancer (DescribeLoadBalancers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancer {
    pub arn: String,
    pub name: String,
    pub kind: LoadBalancerKind,
    /// Scheme `internal` (true) or `internet-facing`.
    pub internal: bool,
    pub vpc_id: String,
    /// AZ IDs it spans (an endpoint service on it supports exactly these).
    pub az_ids: Vec<String>,
    /// One subnet per AZ it spans.
    pub subnet_ids: Vec<String>,
    /// `provisioning`, `active`, `active_impaired`, `failed` (compare ignoring case).
    pub state: String,
}

/// Listener and target group protocols (ELBv2 `ProtocolEnum`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Tls,
    Udp,
    TcpUdp,
    Http,
    Https,
    Geneve,
    /// A protocol this build does not know, as the wire spelled it.
    Other(String),
}

impl Protocol {
    /// The protocol `name` spells (ignoring case).
    pub fn parse(name: &str) -> Self {
        match name.to_ascii_uppercase().as_str() {
            "TCP" => Protocol::Tcp,
            "TLS" => Protocol::Tls,
            "UDP" => Protocol::Udp,
            "TCP_UDP" => Protocol::TcpUdp,
            "HTTP" => Protocol::Http,
            "HTTPS" => Protocol::Https,
            "GENEVE" => Protocol::Geneve,
            _ => Protocol::Other(name.to_string()),
        }
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Tls => "TLS",
            Protocol::Udp => "UDP",
            Protocol::TcpUdp => "TCP_UDP",
            Protocol::Http => "HTTP",
            Protocol::Https => "HTTPS",
            Protocol::Geneve => "GENEVE",
            Protocol::Other(name) => name,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A listener (DescribeListeners).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub arn: String,
    pub load_balancer_arn: String,
    pub port: u16,
    pub protocol: Protocol,
    /// The target group its default action forwards to; `None` for any other action (a
    /// redirect, a fixed response, a weighted forward to several groups).
    pub target_group_arn: Option<String>,
}

/// What a target group's targets are (ELBv2 `TargetTypeEnum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetType {
    Instance,
    Ip,
    Lambda,
    /// An application load balancer, registered by its ARN, behind a network load balancer.
    Alb,
}

impl TargetType {
    /// The type `name` spells (ignoring case).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "instance" => Some(TargetType::Instance),
            "ip" => Some(TargetType::Ip),
            "lambda" => Some(TargetType::Lambda),
            "alb" => Some(TargetType::Alb),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Instance => "instance",
            TargetType::Ip => "ip",
            TargetType::Lambda => "lambda",
            TargetType::Alb => "alb",
        }
    }
}

/// A target group's health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub protocol: Protocol,
    /// The path an HTTP or HTTPS check asks for (`/` by default).
    pub path: String,
    /// The HTTP codes a healthy target answers, e.g. `200-399` or `200,204`.
    pub matcher: String,
}

/// A target group (DescribeTargetGroups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroup {
    pub arn: String,
    pub name: String,
    pub target_type: TargetType,
    pub protocol: Protocol,
    pub port: u16,
    pub vpc_id: String,
    pub health_check: HealthCheck,
    /// The load balancers whose listeners forward to it.
    pub load_balancer_arns: Vec<String>,
}

/// One target's health (DescribeTargetHealth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    /// An instance id, an address, a Lambda or an ALB ARN.
    pub target_id: String,
    pub port: u16,
    /// `initial`, `healthy`, `unhealthy`, `unused`, `draining`, `unavailable`.
    pub state: String,
    /// Why, when not healthy: `Target.FailedHealthChecks`, `Elb.RegistrationInProgress`, ...
    pub reason: String,
}

/// Parameters of CreateLoadBalancer. pld creates only internal network load balancers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateLoadBalancer {
    /// Unique per account and region; the same name with the same settings is answered with
    /// the load balancer made before (ELBv2's creates are idempotent by name).
    pub name: String,
    pub kind: LoadBalancerKind,
    pub internal: bool,
    pub subnet_ids: Vec<String>,
    pub tags: Tags,
}

/// Parameters of CreateTargetGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTargetGroup {
    /// Unique per account and region, idempotent by name as load balancers are.
    pub name: String,
    pub target_type: TargetType,
    pub protocol: Protocol,
    pub port: u16,
    pub vpc_id: String,
    pub health_check: HealthCheck,
    pub tags: Tags,
}

/// Parameters of CreateListener, forwarding to one target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateListener {
    pub load_balancer_arn: String,
    pub protocol: Protocol,
    pub port: u16,
    pub target_group_arn: String,
    pub tags: Tags,
}

/// Whether two load balancer ARNs name the same load balancer: the same partition, region,
/// account, name and id, whatever the type segment says (moto spells NLB ARNs `app/`, and the
/// backend reports endpoint services' in AWS's `net/`).
pub fn same_load_balancer(a: &str, b: &str) -> bool {
    fn key(arn: &str) -> Option<(&str, &str)> {
        let (prefix, resource) = arn.split_once(":loadbalancer/")?;
        let (_kind, name_and_id) = resource.split_once('/')?;
        Some((prefix, name_and_id))
    }
    match (key(a), key(b)) {
        (Some(ka), Some(kb)) => ka == kb,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_parse_ignoring_case_and_round_trip() {
        for kind in [
            LoadBalancerKind::Network,
            LoadBalancerKind::Gateway,
            LoadBalancerKind::Application,
        ] {
            assert_eq!(LoadBalancerKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(
            LoadBalancerKind::parse("Application"),
            Some(LoadBalancerKind::Application)
        );
        assert_eq!(LoadBalancerKind::parse("classic"), None);
        assert_eq!(Protocol::parse("tcp"), Protocol::Tcp);
        assert_eq!(Protocol::parse("TCP_UDP").as_str(), "TCP_UDP");
        assert_eq!(Protocol::parse("QUIC"), Protocol::Other("QUIC".into()));
        assert_eq!(TargetType::parse("ALB"), Some(TargetType::Alb));
        assert_eq!(TargetType::parse("vpc"), None);
    }

    #[test]
    fn load_balancer_arns_match_whatever_their_type_segment_says() {
        let net = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/pld-1/abc";
        let app = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/pld-1/abc";
        assert!(same_load_balancer(net, app));
        assert!(!same_load_balancer(net, &net.replace("abc", "abd")));
        assert!(!same_load_balancer(
            net,
            &net.replace("123456789012", "210987654321")
        ));
        assert!(same_load_balancer("arn:nlb", "arn:nlb"));
        assert!(!same_load_balancer("arn:nlb", "arn:nlb-b"));
    }
}
