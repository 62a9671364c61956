//! Validation of catalog objects: names, AWS identifiers and sizes.
//!
//! Every check returns a [`FieldError`] naming the field, so an API caller learns exactly what is
//! wrong. The same checks run at the API boundary and inside the state machine (they are pure and
//! deterministic, so every replica reaches the same verdict).

use pld_proto::v1::{Agent, Binding, Service};

/// Most entries in `allowed_principals`.
pub const MAX_PRINCIPALS: usize = 100;
/// Most entries in `ports`.
pub const MAX_PORTS: usize = 64;
/// Longest description, status message or address, in bytes.
pub const MAX_TEXT: usize = 256;
/// Longest status message in bytes.
pub const MAX_STATUS_MESSAGE: usize = 1024;
/// Most pending steps a status report lists.
pub const MAX_PENDING_STEPS: usize = 16;
/// Most endpoint services a service's status lists as retiring.
pub const MAX_RETIRING: usize = 8;
/// Most other regions a service is offered to.
pub const MAX_SERVICE_REGIONS: usize = 32;
/// Most load balancer ARNs one status field lists.
pub const MAX_STATUS_ARNS: usize = 10;
/// Most subnets an agent record lists as its endpoints' (AWS's default quota is 200 subnets
/// per VPC).
pub const MAX_ENDPOINT_SUBNETS: usize = 256;
/// Longest lease an agent may ask for.
pub const MAX_LEASE_TTL_SECONDS: u32 = 3600;

/// A field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct FieldError {
    /// The field's name as in the API, e.g. `service.vpc_id`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

fn err(field: &str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// A DNS label: 1-63 characters of `a-z`, `0-9` and `-`, not starting or ending with `-`.
///
/// # Errors
/// Names the field and the offending character or length.
pub fn dns_label(field: &str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(err(field, "must not be empty"));
    }
    if value.len() > 63 {
        return Err(err(
            field,
            format!("{} characters, at most 63", value.len()),
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(err(
            field,
            format!("{value:?} contains {c:?}; use a-z, 0-9 and '-'"),
        ));
    }
    if value.starts_with('-') || value.ends_with('-') {
        return Err(err(
            field,
            format!("{value:?} must not start or end with '-'"),
        ));
    }
    Ok(())
}

fn is_lower_hex(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

/// A VPC id: `vpc-` and 8 or 17 lowercase hex digits.
///
/// # Errors
/// Names the field when the value has another shape.
pub fn vpc_id(field: &str, value: &str) -> Result<(), FieldError> {
    match value.strip_prefix("vpc-") {
        Some(hex) if (hex.len() == 8 || hex.len() == 17) && is_lower_hex(hex) => Ok(()),
        _ => Err(err(
            field,
            format!("{value:?} is not a VPC id (vpc- and 8 or 17 hex digits)"),
        )),
    }
}

/// A 12-digit AWS account id.
///
/// # Errors
/// Names the field when the value is not 12 digits.
pub fn account_id(field: &str, value: &str) -> Result<(), FieldError> {
    if value.len() == 12 && value.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(err(
            field,
            format!("{value:?} is not a 12-digit AWS account id"),
        ))
    }
}

/// An AWS region such as `us-east-1` or `us-gov-west-1`.
///
/// # Errors
/// Names the field when the value does not look like a region.
pub fn region(field: &str, value: &str) -> Result<(), FieldError> {
    let parts: Vec<&str> = value.split('-').collect();
    let ok = parts.len() >= 3
        && parts.len() <= 4
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty();
    if ok {
        Ok(())
    } else {
        Err(err(
            field,
            format!("{value:?} is not an AWS region (like us-east-1)"),
        ))
    }
}

/// The partition part of an ARN: `aws`, `aws-cn`, `aws-us-gov`...
fn partition_ok(p: &str) -> bool {
    p == "aws"
        || p.strip_prefix("aws-").is_some_and(|rest| {
            !rest.is_empty() && rest.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        })
}

/// An ELBv2 load balancer ARN of a network (`net/`) or gateway (`gwy/`) load balancer:
/// `arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/net/NAME/ID`.
///
/// # Errors
/// Names the field and which part of the ARN is wrong.
pub fn load_balancer_arn(field: &str, value: &str) -> Result<LoadBalancerType, FieldError> {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || !partition_ok(parts[1]) {
        return Err(err(field, format!("{value:?} is not an ARN")));
    }
    if parts[2] != "elasticloadbalancing" {
        return Err(err(
            field,
            format!("{value:?} is not an elasticloadbalancing ARN"),
        ));
    }
    region(field, parts[3])?;
    account_id(field, parts[4])?;
    let resource: Vec<&str> = parts[5].split('/').collect();
    let kind = match resource.as_slice() {
        ["loadbalancer", "net", name, id] if valid_lb_name(name) && is_lower_hex(id) => {
            LoadBalancerType::Network
        }
        ["loadbalancer", "gwy", name, id] if valid_lb_name(name) && is_lower_hex(id) => {
            LoadBalancerType::Gateway
        }
        ["loadbalancer", "app", name, id] if valid_lb_name(name) && is_lower_hex(id) => {
            LoadBalancerType::Application
        }
        _ => {
            return Err(err(
                field,
                format!("{value:?} is not a network (loadbalancer/net/NAME/ID), gateway (loadbalancer/gwy/NAME/ID) or application (loadbalancer/app/NAME/ID) load balancer"),
            ))
        }
    };
    Ok(kind)
}

fn valid_lb_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// What fronts an endpoint service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadBalancerType {
    /// An NLB: consumers get interface endpoints.
    Network,
    /// A GWLB: consumers get gateway load balancer endpoints.
    Gateway,
    /// An ALB: the provider's agent builds an NLB in front of it; consumers get interface
    /// endpoints.
    Application,
}

/// The longest health check path ELBv2 takes (CreateTargetGroup, `HealthCheckPath`).
pub const MAX_HEALTH_CHECK_PATH: usize = 1024;

/// Checks the health check of a service on an ALB: a path of '/' and at most 1024 printable
/// characters, and a matcher of HTTP codes ("200", "200,204") or one range ("200-299"), each
/// 200-499, as ELBv2 takes for `alb` target groups.
///
/// # Errors
/// The part found wrong.
pub fn health_check(field: &str, h: &pld_proto::v1::HealthCheck) -> Result<(), FieldError> {
    if pld_proto::v1::HealthCheckProtocol::try_from(h.protocol).is_err() {
        return Err(err(
            &format!("{field}.protocol"),
            format!("{} is not HTTP or HTTPS", h.protocol),
        ));
    }
    if !h.path.is_empty() {
        let printable = h.path.chars().all(|c| c.is_ascii_graphic());
        if !h.path.starts_with('/') || !printable || h.path.len() > MAX_HEALTH_CHECK_PATH {
            return Err(err(
                &format!("{field}.path"),
                format!(
                    "{:?} is not a path: it starts with '/' and has at most {MAX_HEALTH_CHECK_PATH} printable characters, no spaces",
                    h.path
                ),
            ));
        }
    }
    if !h.matcher.is_empty() && !http_codes(&h.matcher) {
        return Err(err(
            &format!("{field}.matcher"),
            format!(
                "{:?} is not HTTP codes: codes 200-499 separated by commas (\"200,204\") or one range (\"200-299\")",
                h.matcher
            ),
        ));
    }
    Ok(())
}

fn http_codes(matcher: &str) -> bool {
    let code = |s: &str| s.parse::<u16>().ok().filter(|c| (200..=499).contains(c));
    if let Some((low, high)) = matcher.split_once('-') {
        return matches!((code(low), code(high)), (Some(l), Some(h)) if l <= h);
    }
    matcher.split(',').all(|c| code(c).is_some())
}

/// A principal allowed to connect: `*` or an IAM ARN (`arn:aws:iam::123456789012:root`,
/// `...:role/NAME`, `...:user/NAME`).
///
/// # Errors
/// Names the field when the value is neither.
pub fn principal(field: &str, value: &str) -> Result<(), FieldError> {
    if value == "*" {
        return Ok(());
    }
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && partition_ok(parts[1])
        && parts[2] == "iam"
        && parts[3].is_empty()
        && account_id(field, parts[4]).is_ok()
        && (parts[5] == "root"
            || ["role/", "user/"]
                .iter()
                .any(|p| parts[5].strip_prefix(p).is_some_and(|n| !n.is_empty())))
        && value.len() <= MAX_TEXT;
    if ok {
        Ok(())
    } else {
        Err(err(
            field,
            format!("{value:?} is not \"*\" or an IAM principal ARN (arn:aws:iam::ACCOUNT:root|role/NAME|user/NAME)"),
        ))
    }
}

fn text(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.len() > max {
        Err(err(field, format!("{} bytes, at most {max}", value.len())))
    } else {
        Ok(())
    }
}

/// A `host:port` address (empty allowed where optional).
fn address(field: &str, value: &str) -> Result<(), FieldError> {
    text(field, value, MAX_TEXT)?;
    if value.is_empty() {
        return Ok(());
    }
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(())
        }
        _ => Err(err(field, format!("{value:?} is not host:port"))),
    }
}

/// Checks a service spec (status and meta are not part of the spec).
///
/// # Errors
/// The first field found wrong.
pub fn service(s: &Service) -> Result<(), FieldError> {
    dns_label("service.name", &s.name)?;
    vpc_id("service.vpc_id", &s.vpc_id)?;
    load_balancer_arn("service.load_balancer_arn", &s.load_balancer_arn)?;
    if s.ports.is_empty() {
        return Err(err("service.ports", "at least one port is required"));
    }
    if s.ports.len() > MAX_PORTS {
        return Err(err(
            "service.ports",
            format!("{} ports, at most {MAX_PORTS}", s.ports.len()),
        ));
    }
    for (i, p) in s.ports.iter().enumerate() {
        if *p == 0 || *p > 65535 {
            return Err(err("service.ports", format!("{p} is not a port (1-65535)")));
        }
        if s.ports[..i].contains(p) {
            return Err(err("service.ports", format!("port {p} is listed twice")));
        }
    }
    if pld_proto::v1::Acceptance::try_from(s.acceptance).is_err() {
        return Err(err(
            "service.acceptance",
            format!("{} is not an acceptance mode", s.acceptance),
        ));
    }
    if s.allowed_principals.len() > MAX_PRINCIPALS {
        return Err(err(
            "service.allowed_principals",
            format!(
                "{} principals, at most {MAX_PRINCIPALS}",
                s.allowed_principals.len()
            ),
        ));
    }
    for p in &s.allowed_principals {
        principal("service.allowed_principals", p)?;
    }
    text("service.description", &s.description, MAX_TEXT)?;
    if let Some(h) = &s.health_check {
        health_check("service.health_check", h)?;
    }
    service_regions(s)
}

/// A service's other regions: each an AWS region of the load balancer's partition (an endpoint
/// service is offered within its partition only), not the load balancer's own (always
/// offered), none twice.
fn service_regions(s: &Service) -> Result<(), FieldError> {
    const FIELD: &str = "service.regions";
    if s.regions.len() > MAX_SERVICE_REGIONS {
        return Err(err(
            FIELD,
            format!("{} regions, at most {MAX_SERVICE_REGIONS}", s.regions.len()),
        ));
    }
    // The ARN was checked first: its partition and region are there.
    let parts: Vec<&str> = s.load_balancer_arn.splitn(6, ':').collect();
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    let (partition_name, home) = (part(1), part(3));
    let partition = crate::regions::Partition::named(partition_name);
    for (i, r) in s.regions.iter().enumerate() {
        let Some(region) = crate::regions::lookup(r) else {
            let known: Vec<&str> = partition
                .map(|p| p.regions().map(|r| r.code).collect())
                .unwrap_or_default();
            return Err(err(
                FIELD,
                format!(
                    "{r:?} is not an AWS region pld knows (the regions of partition \
                     {partition_name}: {})",
                    known.join(", ")
                ),
            ));
        };
        if Some(region.partition) != partition {
            return Err(err(
                FIELD,
                format!(
                    "{r} is in partition {}, and the load balancer in {partition_name}: an \
                     endpoint service is offered to regions of its own partition only",
                    region.partition
                ),
            ));
        }
        if r == home {
            return Err(err(
                FIELD,
                format!(
                    "{r} is the load balancer's own region, where the service is always \
                     offered: list only other regions"
                ),
            ));
        }
        if s.regions[..i].contains(r) {
            return Err(err(FIELD, format!("{r} is listed twice")));
        }
    }
    Ok(())
}

/// Checks a binding spec.
///
/// # Errors
/// The first field found wrong.
pub fn binding(b: &Binding) -> Result<(), FieldError> {
    dns_label("binding.service", &b.service)?;
    vpc_id("binding.consumer_vpc_id", &b.consumer_vpc_id)
}

/// Checks an agent registration.
///
/// # Errors
/// The first field found wrong.
pub fn agent(a: &Agent) -> Result<(), FieldError> {
    vpc_id("agent.vpc_id", &a.vpc_id)?;
    account_id("agent.account_id", &a.account_id)?;
    region("agent.region", &a.region)?;
    address("agent.address", &a.address)?;
    text("agent.dns_zone", &a.dns_zone, 253)?;
    if a.endpoint_subnet_ids.len() > MAX_ENDPOINT_SUBNETS {
        return Err(err(
            "agent.endpoint_subnet_ids",
            format!("at most {MAX_ENDPOINT_SUBNETS} subnets"),
        ));
    }
    for s in &a.endpoint_subnet_ids {
        text("agent.endpoint_subnet_ids", s, 64)?;
    }
    if a.lease_ttl_seconds == 0 || a.lease_ttl_seconds > MAX_LEASE_TTL_SECONDS {
        return Err(err(
            "agent.lease_ttl_seconds",
            format!(
                "{} is out of range 1-{MAX_LEASE_TTL_SECONDS}",
                a.lease_ttl_seconds
            ),
        ));
    }
    Ok(())
}

/// Checks a service status report.
///
/// # Errors
/// The first field found wrong.
pub fn service_status(s: &pld_proto::v1::ServiceStatus) -> Result<(), FieldError> {
    text("status.state", &s.state, 64)?;
    text(
        "status.endpoint_service_name",
        &s.endpoint_service_name,
        MAX_TEXT,
    )?;
    if s.az_ids.len() > 32 {
        return Err(err("status.az_ids", "at most 32 AZ ids"));
    }
    for az in &s.az_ids {
        text("status.az_ids", az, 32)?;
    }
    pending_steps(&s.pending)?;
    arns("status.load_balancer_arns", &s.load_balancer_arns)?;
    // The regions offered, and those being left: twice the most a service lists.
    if s.regions.len() > 2 * MAX_SERVICE_REGIONS {
        return Err(err(
            "status.regions",
            format!("at most {} regions", 2 * MAX_SERVICE_REGIONS),
        ));
    }
    for r in &s.regions {
        text("status.regions.region", &r.region, 32)?;
        text("status.regions.state", &r.state, 32)?;
    }
    if s.retiring.len() > MAX_RETIRING {
        return Err(err(
            "status.retiring",
            format!("at most {MAX_RETIRING} endpoint services"),
        ));
    }
    for r in &s.retiring {
        text(
            "status.retiring.endpoint_service_name",
            &r.endpoint_service_name,
            MAX_TEXT,
        )?;
        arns("status.retiring.load_balancer_arns", &r.load_balancer_arns)?;
    }
    text("status.message", &s.message, MAX_STATUS_MESSAGE)
}

/// Load balancer ARNs in a status report: a few, each of an ARN's length.
fn arns(field: &str, arns: &[String]) -> Result<(), FieldError> {
    if arns.len() > MAX_STATUS_ARNS {
        return Err(err(field, format!("at most {MAX_STATUS_ARNS} ARNs")));
    }
    arns.iter().try_for_each(|a| text(field, a, MAX_TEXT))
}

/// Checks a binding status report.
///
/// # Errors
/// The first field found wrong.
pub fn binding_status(s: &pld_proto::v1::BindingStatus) -> Result<(), FieldError> {
    text("status.phase", &s.phase, 64)?;
    text("status.endpoint_id", &s.endpoint_id, 64)?;
    text("status.dns_name", &s.dns_name, MAX_TEXT)?;
    if s.addresses.len() > 32 {
        return Err(err("status.addresses", "at most 32 addresses"));
    }
    for a in &s.addresses {
        text("status.addresses", a, 64)?;
    }
    pending_steps(&s.pending)?;
    if let Some(m) = &s.migration {
        text("status.migration.from_endpoint_id", &m.from_endpoint_id, 64)?;
        text("status.migration.to_endpoint_id", &m.to_endpoint_id, 64)?;
        text("status.migration.step", &m.step, 64)?;
    }
    text("status.message", &s.message, MAX_STATUS_MESSAGE)
}

/// The pending steps a status report lists: bounded in number and length.
fn pending_steps(steps: &[pld_proto::v1::PlannedStep]) -> Result<(), FieldError> {
    if steps.len() > MAX_PENDING_STEPS {
        return Err(err(
            "status.pending",
            format!("at most {MAX_PENDING_STEPS} steps"),
        ));
    }
    for step in steps {
        text("status.pending.action", &step.action, 64)?;
        text("status.pending.target", &step.target, MAX_TEXT)?;
        text("status.pending.reason", &step.reason, MAX_STATUS_MESSAGE)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
