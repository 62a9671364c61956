//! The [`Cloud`] implementation of the simulated region, one account's view.

use std::sync::Arc;
use std::time::Instant;

use super::{dataplane, EndpointRec, ServiceRec, SimRegion, State, ZoneRec, AZ_IDS};
use crate::limiter::{ApiClass, Bucket};
use crate::types::*;
use crate::{Cloud, CloudError, CloudResult};

/// `account`'s client of a [`SimRegion`].
pub struct SimCloud {
    region: Arc<SimRegion>,
    account: String,
}

/// Next loopback ENI address of the loopback data plane.
static NEXT_LOOPBACK: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn not_found(what: &'static str, id: &str) -> CloudError {
    CloudError::NotFound {
        what,
        id: id.to_string(),
    }
}

fn has_tags(tags: &Tags, wanted: &Tags) -> bool {
    wanted.iter().all(|(k, v)| tags.get(k) == Some(v))
}

/// Whether `principals` allow `account` (`*`, the account's root, or any IAM ARN of it).
fn allows(principals: &std::collections::BTreeSet<String>, account: &str) -> bool {
    principals
        .iter()
        .any(|p| p == "*" || p.split(':').nth(4).is_some_and(|acct| acct == account))
}

impl SimCloud {
    pub(super) fn new(region: Arc<SimRegion>, account: &str) -> Self {
        SimCloud {
            region,
            account: account.to_string(),
        }
    }

    /// Rate limits and injected faults, then the (refreshed) state.
    fn gate(&self, action: &'static str) -> CloudResult<std::sync::MutexGuard<'_, State>> {
        let faults = self.region.faults();
        if faults.throttle > 0.0 && rand::random::<f64>() < faults.throttle {
            return Err(CloudError::Throttled(action.into()));
        }
        if faults.server_error > 0.0 && rand::random::<f64>() < faults.server_error {
            return Err(CloudError::Transient(format!(
                "{action}: 503 Service Unavailable"
            )));
        }
        let mut st = self.region.state();
        if let Some(scale) = self.region.config.rate_limit_scale {
            let class = ApiClass::of(action);
            let bucket = st
                .buckets
                .entry((self.account.clone(), class))
                .or_insert_with(|| {
                    let (cap, refill) = class.aws_rate();
                    Bucket::new(cap, refill * scale)
                });
            if bucket.take(Instant::now()).is_err() {
                return Err(CloudError::Throttled(action.into()));
            }
        }
        self.refresh(&mut st);
        Ok(st)
    }

    /// Moves every time-driven state forward to now.
    fn refresh(&self, st: &mut State) {
        let now = Instant::now();
        let lat = self.region.config.latency;
        let stale = self.region.faults().stale_describe;
        for rec in st.services.values_mut() {
            if state_is(&rec.svc.state, "Pending") && now >= rec.created + lat.service_available {
                rec.svc.state = "Available".into();
            }
        }
        let mut became_available = Vec::new();
        for (id, rec) in st.endpoints.iter_mut() {
            if let Some(at) = rec.rejected {
                if now >= at + stale {
                    rec.ep.state = "rejected".into();
                }
                continue;
            }
            let started = if rec.acceptance_required {
                match rec.accepted {
                    Some(at) if now >= at + stale => {
                        if state_is(&rec.ep.state, "pendingAcceptance") {
                            rec.ep.state = "pending".into();
                        }
                        Some(at)
                    }
                    _ => None,
                }
            } else {
                Some(rec.created)
            };
            if let Some(t) = started {
                if state_is(&rec.ep.state, "pending") && now >= t + lat.endpoint_available {
                    rec.ep.state = "available".into();
                    became_available.push(id.clone());
                }
            }
        }
        if self.region.config.loopback_data_plane {
            for id in became_available {
                let targets = st
                    .endpoints
                    .get(&id)
                    .and_then(|e| e.service_id.clone())
                    .and_then(|sid| st.services.get(&sid))
                    .and_then(|s| s.svc.load_balancer_arns.first().cloned())
                    .and_then(|arn| st.lbs.get(&arn))
                    .map(|lb| (lb.lb.ports.clone(), lb.targets.clone()));
                if let (Some(rec), Some((ports, targets))) = (st.endpoints.get_mut(&id), targets) {
                    rec.dataplane =
                        dataplane::Forwarders::start(&rec.ep.addresses, &ports, &targets);
                }
            }
        }
    }

    fn new_id(st: &mut State, prefix: &str, width: usize) -> String {
        st.next_id += 1;
        let n = 0x0a1b_2c3d_0000_0000u64.wrapping_add(st.next_id * 7919);
        let id = format!("{n:0width$x}");
        format!("{prefix}{}", &id[id.len() - width..])
    }

    /// Idempotency: a known token with the same parameters returns the resource id.
    fn check_token(
        &self,
        st: &State,
        token: &str,
        fingerprint: &str,
    ) -> CloudResult<Option<String>> {
        if token.is_empty() {
            return Ok(None);
        }
        match st.tokens.get(&(self.account.clone(), token.to_string())) {
            Some((fp, id)) if fp == fingerprint => Ok(Some(id.clone())),
            Some(_) => Err(CloudError::IdempotentParameterMismatch(token.to_string())),
            None => Ok(None),
        }
    }

    fn own_service<'a>(&self, st: &'a mut State, id: &str) -> CloudResult<&'a mut ServiceRec> {
        st.services
            .get_mut(id)
            .filter(|s| s.owner == self.account)
            .ok_or_else(|| not_found("endpoint service", id))
    }

    fn next_address(st: &mut State, loopback: bool, subnet: &Subnet) -> String {
        if loopback {
            // Process-wide, so regions in one process (tests) never hand out the same address.
            let n = NEXT_LOOPBACK.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            return format!("127.77.{}.{}", n / 250, n % 250 + 1);
        }
        let host = st.next_host.entry(subnet.id.clone()).or_insert(3);
        *host += 1;
        let prefix: Vec<&str> = subnet.cidr.split('.').take(3).collect();
        format!("{}.{}", prefix.join("."), *host)
    }

    fn aws_service_kind(&self, name: &str) -> Option<EndpointKind> {
        let short = name.strip_prefix(&format!("com.amazonaws.{}.", self.region.config.region))?;
        if AWS_GATEWAY_SERVICES.contains(&short) {
            Some(EndpointKind::Gateway)
        } else if AWS_INTERFACE_SERVICES.contains(&short) {
            Some(EndpointKind::Interface)
        } else {
            None
        }
    }

    /// Applies a provider's decision to connections of its service; all ids are checked before
    /// any is changed.
    fn decide(
        &self,
        action: &'static str,
        service_id: &str,
        endpoint_ids: &[String],
        apply: impl Fn(&mut EndpointRec),
    ) -> CloudResult<()> {
        let mut st = self.gate(action)?;
        self.own_service(&mut st, service_id)?;
        let of_service = |e: &EndpointRec| e.service_id.as_deref() == Some(service_id);
        if let Some(missing) = endpoint_ids
            .iter()
            .find(|id| !st.endpoints.get(id.as_str()).is_some_and(of_service))
        {
            return Err(not_found("VPC endpoint connection", missing));
        }
        for id in endpoint_ids {
            if let Some(rec) = st.endpoints.get_mut(id) {
                apply(rec);
            }
        }
        Ok(())
    }

    fn zone<'a>(&self, st: &'a mut State, id: &str) -> CloudResult<&'a mut ZoneRec> {
        st.zones
            .get_mut(id)
            .filter(|z| z.owner == self.account)
            .ok_or_else(|| not_found("hosted zone", id))
    }
}

#[async_trait::async_trait]
impl Cloud for SimCloud {
    fn account(&self) -> &str {
        &self.account
    }

    fn region(&self) -> &str {
        &self.region.config.region
    }

    async fn describe_vpc(&self, vpc_id: &str) -> CloudResult<Vpc> {
        let st = self.gate("DescribeVpcs")?;
        st.vpcs
            .get(vpc_id)
            .filter(|v| v.account == self.account)
            .cloned()
            .ok_or_else(|| not_found("VPC", vpc_id))
    }

    async fn describe_subnets(&self, vpc_id: &str) -> CloudResult<Vec<Subnet>> {
        let st = self.gate("DescribeSubnets")?;
        Ok(st
            .subnets
            .values()
            .filter(|s| s.vpc_id == vpc_id)
            .cloned()
            .collect())
    }

    async fn describe_route_tables(&self, vpc_id: &str) -> CloudResult<Vec<RouteTable>> {
        let st = self.gate("DescribeRouteTables")?;
        Ok(st
            .route_tables
            .values()
            .filter(|r| r.vpc_id == vpc_id)
            .cloned()
            .collect())
    }

    async fn describe_load_balancer(&self, arn: &str) -> CloudResult<LoadBalancer> {
        let st = self.gate("DescribeLoadBalancers")?;
        st.lbs
            .get(arn)
            .filter(|l| l.owner == self.account)
            .map(|l| l.lb.clone())
            .ok_or_else(|| not_found("load balancer", arn))
    }

    async fn create_endpoint_service(
        &self,
        req: &CreateEndpointService,
    ) -> CloudResult<EndpointService> {
        let mut st = self.gate("CreateVpcEndpointServiceConfiguration")?;
        let fingerprint = format!("{}|{}", req.load_balancer_arn, req.acceptance_required);
        if let Some(id) = self.check_token(&st, &req.client_token, &fingerprint)? {
            if let Some(s) = st.services.get(&id) {
                return Ok(s.svc.clone());
            }
        }
        let lb = st
            .lbs
            .get(&req.load_balancer_arn)
            .filter(|l| l.owner == self.account)
            .map(|l| l.lb.clone())
            .ok_or_else(|| {
                CloudError::InvalidParameter(format!(
                    "load balancer {} not found in this account",
                    req.load_balancer_arn
                ))
            })?;
        if st
            .services
            .values()
            .any(|s| s.svc.load_balancer_arns.contains(&lb.arn))
        {
            return Err(CloudError::InvalidParameter(format!(
                "load balancer {} already backs an endpoint service",
                lb.arn
            )));
        }
        let id = Self::new_id(&mut st, "vpce-svc-", 17);
        let svc = EndpointService {
            name: format!("com.amazonaws.vpce.{}.{id}", self.region.config.region),
            id: id.clone(),
            state: "Pending".into(),
            acceptance_required: req.acceptance_required,
            load_balancer_arns: vec![lb.arn.clone()],
            az_ids: lb.az_ids.clone(),
            tags: req.tags.clone(),
        };
        st.services.insert(
            id.clone(),
            ServiceRec {
                svc: svc.clone(),
                owner: self.account.clone(),
                principals: Default::default(),
                created: Instant::now(),
            },
        );
        if !req.client_token.is_empty() {
            st.tokens.insert(
                (self.account.clone(), req.client_token.clone()),
                (fingerprint, id),
            );
        }
        Ok(svc)
    }

    async fn describe_endpoint_services(&self, tags: &Tags) -> CloudResult<Vec<EndpointService>> {
        let st = self.gate("DescribeVpcEndpointServiceConfigurations")?;
        Ok(st
            .services
            .values()
            .filter(|s| s.owner == self.account && has_tags(&s.svc.tags, tags))
            .map(|s| s.svc.clone())
            .collect())
    }

    async fn set_acceptance_required(&self, service_id: &str, required: bool) -> CloudResult<()> {
        let mut st = self.gate("ModifyVpcEndpointServiceConfiguration")?;
        self.own_service(&mut st, service_id)?
            .svc
            .acceptance_required = required;
        Ok(())
    }

    async fn allowed_principals(&self, service_id: &str) -> CloudResult<Vec<String>> {
        let mut st = self.gate("DescribeVpcEndpointServicePermissions")?;
        Ok(self
            .own_service(&mut st, service_id)?
            .principals
            .iter()
            .cloned()
            .collect())
    }

    async fn modify_allowed_principals(
        &self,
        service_id: &str,
        add: &[String],
        remove: &[String],
    ) -> CloudResult<()> {
        let mut st = self.gate("ModifyVpcEndpointServicePermissions")?;
        for p in add.iter().chain(remove) {
            if p != "*" && !p.starts_with("arn:") {
                return Err(CloudError::InvalidParameter(format!(
                    "principal {p:?} is not an ARN or \"*\""
                )));
            }
        }
        let svc = self.own_service(&mut st, service_id)?;
        for p in remove {
            svc.principals.remove(p);
        }
        svc.principals.extend(add.iter().cloned());
        Ok(())
    }

    async fn delete_endpoint_service(&self, service_id: &str) -> CloudResult<()> {
        let mut st = self.gate("DeleteVpcEndpointServiceConfigurations")?;
        self.own_service(&mut st, service_id)?;
        let busy = st.endpoints.values().any(|e| {
            e.service_id.as_deref() == Some(service_id)
                && (state_is(&e.ep.state, "available")
                    || state_is(&e.ep.state, "pendingAcceptance")
                    || state_is(&e.ep.state, "pending"))
        });
        if busy {
            return Err(CloudError::DependencyViolation(format!(
                "endpoint service {service_id} has existing active VPC endpoint connections"
            )));
        }
        st.services.remove(service_id);
        Ok(())
    }

    async fn describe_connections(&self, service_id: Option<&str>) -> CloudResult<Vec<Connection>> {
        let mut st = self.gate("DescribeVpcEndpointConnections")?;
        if let Some(id) = service_id {
            self.own_service(&mut st, id)?;
        }
        let owned: std::collections::BTreeSet<String> = st
            .services
            .values()
            .filter(|s| s.owner == self.account)
            .map(|s| s.svc.id.clone())
            .collect();
        Ok(st
            .endpoints
            .values()
            .filter(|e| {
                e.service_id.as_ref().is_some_and(|sid| {
                    owned.contains(sid) && service_id.is_none_or(|want| want == sid)
                })
            })
            .map(|e| Connection {
                service_id: e.service_id.clone().unwrap_or_default(),
                endpoint_id: e.ep.id.clone(),
                owner: e.owner.clone(),
                state: e.ep.state.clone(),
            })
            .collect())
    }

    async fn accept_connections(
        &self,
        service_id: &str,
        endpoint_ids: &[String],
    ) -> CloudResult<()> {
        self.decide(
            "AcceptVpcEndpointConnections",
            service_id,
            endpoint_ids,
            |rec| {
                if rec.accepted.is_none() && rec.rejected.is_none() {
                    rec.accepted = Some(Instant::now());
                }
            },
        )
    }

    async fn reject_connections(
        &self,
        service_id: &str,
        endpoint_ids: &[String],
    ) -> CloudResult<()> {
        self.decide(
            "RejectVpcEndpointConnections",
            service_id,
            endpoint_ids,
            |rec| {
                rec.rejected = Some(Instant::now());
                rec.dataplane = None;
            },
        )
    }

    async fn describe_service(&self, service_name: &str) -> CloudResult<ServiceDetail> {
        let st = self.gate("DescribeVpcEndpointServices")?;
        if let Some(kind) = self.aws_service_kind(service_name) {
            return Ok(ServiceDetail {
                name: service_name.to_string(),
                kind,
                az_ids: AZ_IDS.iter().map(|s| s.to_string()).collect(),
                owner: "amazon".into(),
                acceptance_required: false,
            });
        }
        let rec = st
            .services
            .values()
            .find(|s| s.svc.name == service_name)
            .filter(|s| s.owner == self.account || allows(&s.principals, &self.account))
            .ok_or_else(|| {
                CloudError::InvalidParameter(format!(
                    "InvalidServiceName: the VPC endpoint service {service_name} does not exist or you are not allowed to use it"
                ))
            })?;
        let kind = match st.lbs.get(
            rec.svc
                .load_balancer_arns
                .first()
                .map_or("", |s| s.as_str()),
        ) {
            Some(lb) if lb.lb.kind == LoadBalancerKind::Gateway => {
                EndpointKind::GatewayLoadBalancer
            }
            _ => EndpointKind::Interface,
        };
        Ok(ServiceDetail {
            name: rec.svc.name.clone(),
            kind,
            az_ids: rec.svc.az_ids.clone(),
            owner: rec.owner.clone(),
            acceptance_required: rec.svc.acceptance_required,
        })
    }

    async fn create_endpoint(&self, req: &CreateEndpoint) -> CloudResult<Endpoint> {
        let mut st = self.gate("CreateVpcEndpoint")?;
        let fingerprint = format!(
            "{}|{}|{}|{:?}|{:?}",
            req.kind.as_str(),
            req.vpc_id,
            req.service_name,
            req.subnet_ids,
            req.route_table_ids
        );
        if let Some(id) = self.check_token(&st, &req.client_token, &fingerprint)? {
            if let Some(e) = st.endpoints.get(&id) {
                return Ok(e.ep.clone());
            }
        }
        if st
            .vpcs
            .get(&req.vpc_id)
            .is_none_or(|v| v.account != self.account)
        {
            return Err(not_found("VPC", &req.vpc_id));
        }
        // Which service, and what it supports.
        let (service_id, kind, az_ids, acceptance_required, short) = if let Some(kind) =
            self.aws_service_kind(&req.service_name)
        {
            let short = req
                .service_name
                .rsplit('.')
                .next()
                .unwrap_or("aws")
                .to_string();
            (
                None,
                kind,
                AZ_IDS.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                false,
                short,
            )
        } else {
            let rec = st
                    .services
                    .values()
                    .find(|s| s.svc.name == req.service_name)
                    .filter(|s| s.owner == self.account || allows(&s.principals, &self.account))
                    .ok_or_else(|| {
                        CloudError::InvalidParameter(format!(
                            "InvalidServiceName: the VPC endpoint service {} does not exist or you are not allowed to use it",
                            req.service_name
                        ))
                    })?;
            let kind = match st.lbs.get(
                rec.svc
                    .load_balancer_arns
                    .first()
                    .map_or("", |s| s.as_str()),
            ) {
                Some(lb) if lb.lb.kind == LoadBalancerKind::Gateway => {
                    EndpointKind::GatewayLoadBalancer
                }
                _ => EndpointKind::Interface,
            };
            (
                Some(rec.svc.id.clone()),
                kind,
                rec.svc.az_ids.clone(),
                rec.svc.acceptance_required,
                rec.svc.id.clone(),
            )
        };
        if kind != req.kind {
            return Err(CloudError::InvalidParameter(format!(
                "service {} takes {} endpoints, not {}",
                req.service_name,
                kind.as_str(),
                req.kind.as_str()
            )));
        }
        let mut subnets = Vec::new();
        if kind == EndpointKind::Gateway {
            for rt in &req.route_table_ids {
                if st
                    .route_tables
                    .get(rt)
                    .is_none_or(|r| r.vpc_id != req.vpc_id)
                {
                    return Err(not_found("route table", rt));
                }
            }
        } else {
            if req.subnet_ids.is_empty() {
                return Err(CloudError::InvalidParameter(
                    "at least one subnet is required".into(),
                ));
            }
            if kind == EndpointKind::GatewayLoadBalancer && req.subnet_ids.len() > 1 {
                return Err(CloudError::InvalidParameter(
                    "a Gateway Load Balancer endpoint takes exactly one subnet".into(),
                ));
            }
            let mut seen = std::collections::BTreeSet::new();
            for id in &req.subnet_ids {
                let subnet = st
                    .subnets
                    .get(id)
                    .filter(|s| s.vpc_id == req.vpc_id)
                    .cloned()
                    .ok_or_else(|| not_found("subnet", id))?;
                if !az_ids.contains(&subnet.az_id) {
                    return Err(CloudError::InvalidParameter(format!(
                        "the VPC endpoint service {} does not support the availability zone of the subnet {} ({})",
                        req.service_name, subnet.id, subnet.az_id
                    )));
                }
                if !seen.insert(subnet.az_id.clone()) {
                    return Err(CloudError::InvalidParameter(format!(
                        "DuplicateSubnetsInSameZone: two subnets in {}",
                        subnet.az_id
                    )));
                }
                subnets.push(subnet);
            }
        }
        let id = Self::new_id(&mut st, "vpce-", 17);
        let loopback = self.region.config.loopback_data_plane && kind != EndpointKind::Gateway;
        let addresses: Vec<String> = subnets
            .iter()
            .map(|s| Self::next_address(&mut st, loopback, s))
            .collect();
        let suffix = Self::new_id(&mut st, "", 8);
        let region = self.region.config.region.clone();
        let mut dns_names = Vec::new();
        if kind == EndpointKind::Interface {
            let base = format!("{short}.{region}.vpce.amazonaws.com");
            dns_names.push(format!("{id}-{suffix}.{base}"));
            for s in &subnets {
                dns_names.push(format!("{id}-{suffix}-{}.{base}", s.az_id));
            }
        }
        let ep = Endpoint {
            id: id.clone(),
            vpc_id: req.vpc_id.clone(),
            service_name: req.service_name.clone(),
            kind,
            state: if acceptance_required {
                "pendingAcceptance"
            } else {
                "pending"
            }
            .into(),
            subnet_ids: req.subnet_ids.clone(),
            route_table_ids: req.route_table_ids.clone(),
            dns_names,
            addresses,
            tags: req.tags.clone(),
        };
        if kind == EndpointKind::Gateway {
            let prefix_list = format!("pl-{}", &hex_of(&short));
            for rt in &req.route_table_ids {
                if let Some(table) = st.route_tables.get_mut(rt) {
                    table.routes.push(Route {
                        destination: prefix_list.clone(),
                        target: id.clone(),
                    });
                }
            }
        }
        st.endpoints.insert(
            id.clone(),
            EndpointRec {
                ep: ep.clone(),
                owner: self.account.clone(),
                service_id,
                acceptance_required,
                created: Instant::now(),
                accepted: None,
                rejected: None,
                dataplane: None,
            },
        );
        if !req.client_token.is_empty() {
            st.tokens.insert(
                (self.account.clone(), req.client_token.clone()),
                (fingerprint, id),
            );
        }
        Ok(ep)
    }

    async fn modify_endpoint_subnets(
        &self,
        endpoint_id: &str,
        add: &[String],
        remove: &[String],
    ) -> CloudResult<()> {
        let mut st = self.gate("ModifyVpcEndpoint")?;
        let (vpc_id, service_id, kind, mut subnets) = {
            let rec = st
                .endpoints
                .get(endpoint_id)
                .filter(|e| e.owner == self.account)
                .ok_or_else(|| not_found("VPC endpoint", endpoint_id))?;
            (
                rec.ep.vpc_id.clone(),
                rec.service_id.clone(),
                rec.ep.kind,
                rec.ep.subnet_ids.clone(),
            )
        };
        if kind == EndpointKind::Gateway {
            return Err(CloudError::InvalidParameter(
                "gateway endpoints have no subnets".into(),
            ));
        }
        let az_ids: Vec<String> = match service_id.as_ref().and_then(|id| st.services.get(id)) {
            Some(s) => s.svc.az_ids.clone(),
            None => AZ_IDS.iter().map(|s| s.to_string()).collect(),
        };
        subnets.retain(|s| !remove.contains(s));
        let mut seen = std::collections::BTreeSet::new();
        for id in subnets.iter().chain(add) {
            let subnet = st
                .subnets
                .get(id)
                .filter(|s| s.vpc_id == vpc_id)
                .ok_or_else(|| not_found("subnet", id))?;
            if !az_ids.contains(&subnet.az_id) {
                return Err(CloudError::InvalidParameter(format!(
                    "the service does not support the availability zone of the subnet {id} ({})",
                    subnet.az_id
                )));
            }
            if !seen.insert(subnet.az_id.clone()) {
                return Err(CloudError::InvalidParameter(format!(
                    "DuplicateSubnetsInSameZone: two subnets in {}",
                    subnet.az_id
                )));
            }
        }
        let loopback = self.region.config.loopback_data_plane;
        let mut added = Vec::new();
        for id in add {
            if let Some(subnet) = st.subnets.get(id).cloned() {
                added.push(Self::next_address(&mut st, loopback, &subnet));
            }
        }
        subnets.extend(add.iter().cloned());
        if let Some(rec) = st.endpoints.get_mut(endpoint_id) {
            // Addresses follow the subnets: one per subnet, in order.
            let mut addresses: Vec<String> = rec
                .ep
                .subnet_ids
                .iter()
                .zip(rec.ep.addresses.iter())
                .filter(|(s, _)| !remove.contains(s))
                .map(|(_, a)| a.clone())
                .collect();
            addresses.extend(added);
            rec.ep.subnet_ids = subnets;
            rec.ep.addresses = addresses;
        }
        Ok(())
    }

    async fn describe_endpoints(&self, vpc_id: &str, tags: &Tags) -> CloudResult<Vec<Endpoint>> {
        let st = self.gate("DescribeVpcEndpoints")?;
        Ok(st
            .endpoints
            .values()
            .filter(|e| {
                e.owner == self.account && e.ep.vpc_id == vpc_id && has_tags(&e.ep.tags, tags)
            })
            .map(|e| e.ep.clone())
            .collect())
    }

    async fn delete_endpoint(&self, endpoint_id: &str) -> CloudResult<()> {
        let mut st = self.gate("DeleteVpcEndpoints")?;
        let rec = st
            .endpoints
            .get(endpoint_id)
            .filter(|e| e.owner == self.account)
            .ok_or_else(|| not_found("VPC endpoint", endpoint_id))?;
        let route_tables = rec.ep.route_table_ids.clone();
        for rt in route_tables {
            if let Some(table) = st.route_tables.get_mut(&rt) {
                table.routes.retain(|r| r.target != endpoint_id);
            }
        }
        st.endpoints.remove(endpoint_id);
        Ok(())
    }

    async fn hosted_zones_of_vpc(&self, vpc_id: &str) -> CloudResult<Vec<HostedZone>> {
        let st = self.gate("ListHostedZonesByVPC")?;
        Ok(st
            .zones
            .values()
            .filter(|z| z.zone.vpc_ids.iter().any(|v| v == vpc_id))
            .map(|z| z.zone.clone())
            .collect())
    }

    async fn get_hosted_zone(&self, zone_id: &str) -> CloudResult<HostedZone> {
        let mut st = self.gate("GetHostedZone")?;
        Ok(self.zone(&mut st, zone_id)?.zone.clone())
    }

    async fn create_hosted_zone(
        &self,
        name: &str,
        vpc_id: &str,
        caller_reference: &str,
        comment: &str,
    ) -> CloudResult<HostedZone> {
        let mut st = self.gate("CreateHostedZone")?;
        if let Some(id) = st
            .caller_refs
            .get(&(self.account.clone(), caller_reference.to_string()))
        {
            return Err(CloudError::AlreadyExists {
                what: "hosted zone with this caller reference",
                id: id.clone(),
            });
        }
        if !st.vpcs.contains_key(vpc_id) {
            return Err(CloudError::InvalidParameter(format!(
                "InvalidVPCId: {vpc_id}"
            )));
        }
        st.next_id += 1;
        let id = format!("Z{:019X}", 0x0000_1000_0000_0000u64 + st.next_id);
        let name = fqdn(name);
        let zone = HostedZone {
            id: id.clone(),
            name: name.clone(),
            vpc_ids: vec![vpc_id.to_string()],
            comment: comment.to_string(),
        };
        let mut records = std::collections::BTreeMap::new();
        records.insert(
            (name.clone(), "SOA".to_string()),
            RecordSet {
                name: name.clone(),
                kind: "SOA".into(),
                ttl: 900,
                values: vec!["ns-1536.awsdns-00.co.uk. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400".into()],
            },
        );
        records.insert(
            (name.clone(), "NS".to_string()),
            RecordSet {
                name: name.clone(),
                kind: "NS".into(),
                ttl: 172800,
                values: vec!["ns-1536.awsdns-00.co.uk.".into()],
            },
        );
        st.zones.insert(
            id.clone(),
            ZoneRec {
                zone: zone.clone(),
                owner: self.account.clone(),
                records,
                last_change: None,
            },
        );
        st.caller_refs
            .insert((self.account.clone(), caller_reference.to_string()), id);
        Ok(zone)
    }

    async fn associate_vpc(&self, zone_id: &str, vpc_id: &str) -> CloudResult<()> {
        let mut st = self.gate("AssociateVPCWithHostedZone")?;
        let vpc_owner = st.vpcs.get(vpc_id).map(|v| v.account.clone());
        let account = self.account.clone();
        let zone = st
            .zones
            .get_mut(zone_id)
            .ok_or_else(|| not_found("hosted zone", zone_id))?;
        if vpc_owner.as_deref() != Some(account.as_str()) && zone.owner != account {
            return Err(CloudError::Unauthorized(format!(
                "associating {vpc_id} with {zone_id} needs CreateVPCAssociationAuthorization by the zone owner"
            )));
        }
        if !zone.zone.vpc_ids.iter().any(|v| v == vpc_id) {
            zone.zone.vpc_ids.push(vpc_id.to_string());
        }
        Ok(())
    }

    async fn delete_hosted_zone(&self, zone_id: &str) -> CloudResult<()> {
        let mut st = self.gate("DeleteHostedZone")?;
        let zone = self.zone(&mut st, zone_id)?;
        if zone
            .records
            .values()
            .any(|r| r.kind != "SOA" && r.kind != "NS")
        {
            return Err(CloudError::DependencyViolation(format!(
                "HostedZoneNotEmpty: {zone_id} still has records"
            )));
        }
        st.zones.remove(zone_id);
        Ok(())
    }

    async fn change_records(&self, zone_id: &str, changes: &[RecordChange]) -> CloudResult<String> {
        let mut st = self.gate("ChangeResourceRecordSets")?;
        let now = Instant::now();
        let insync = self.region.config.latency.change_insync;
        let pending_change = {
            let zone = self.zone(&mut st, zone_id)?;
            zone.last_change.clone()
        };
        if let Some(change) = pending_change {
            if st.changes.get(&change).is_some_and(|t| now < *t + insync) {
                return Err(CloudError::PriorRequestNotComplete(zone_id.to_string()));
            }
        }
        if changes.is_empty() || changes.len() > 1000 {
            return Err(CloudError::InvalidParameter(format!(
                "a change batch holds 1 to 1000 changes, not {}",
                changes.len()
            )));
        }
        let zone = self.zone(&mut st, zone_id)?;
        // Validate the whole batch against a copy, then commit it: batches are atomic.
        let mut records = zone.records.clone();
        for c in changes {
            let name = fqdn(&c.record.name);
            if !(name == zone.zone.name || name.ends_with(&format!(".{}", zone.zone.name))) {
                return Err(CloudError::InvalidParameter(format!(
                    "InvalidChangeBatch: {name} is not in zone {}",
                    zone.zone.name
                )));
            }
            let key = (name.clone(), c.record.kind.clone());
            let mut record = c.record.clone();
            record.name = name.clone();
            let cname_conflict = records
                .keys()
                .any(|(n, k)| n == &name && (k == "CNAME") != (c.record.kind == "CNAME"));
            match c.action {
                ChangeAction::Create => {
                    if records.contains_key(&key) {
                        return Err(CloudError::InvalidParameter(format!(
                            "InvalidChangeBatch: tried to create resource record set {name} type {} but it already exists",
                            c.record.kind
                        )));
                    }
                    if cname_conflict {
                        return Err(CloudError::InvalidParameter(format!(
                            "InvalidChangeBatch: RRSet of type CNAME with DNS name {name} is not permitted as it conflicts with other records with the same DNS name"
                        )));
                    }
                    records.insert(key, record);
                }
                ChangeAction::Upsert => {
                    if cname_conflict {
                        return Err(CloudError::InvalidParameter(format!(
                            "InvalidChangeBatch: RRSet of type CNAME with DNS name {name} conflicts with other records"
                        )));
                    }
                    records.insert(key, record);
                }
                ChangeAction::Delete => match records.get(&key) {
                    Some(existing) if existing.values == record.values && existing.ttl == record.ttl => {
                        records.remove(&key);
                    }
                    _ => {
                        return Err(CloudError::InvalidParameter(format!(
                            "InvalidChangeBatch: tried to delete resource record set {name} type {} but it was not found or its values do not match",
                            c.record.kind
                        )))
                    }
                },
            }
        }
        zone.records = records;
        let change_id = format!("C{:019X}", rand::random::<u64>() >> 2);
        zone.last_change = Some(change_id.clone());
        st.changes.insert(change_id.clone(), now);
        Ok(change_id)
    }

    async fn get_change(&self, change_id: &str) -> CloudResult<ChangeStatus> {
        let st = self.gate("GetChange")?;
        let at = st
            .changes
            .get(change_id)
            .ok_or_else(|| not_found("change", change_id))?;
        Ok(
            if Instant::now() >= *at + self.region.config.latency.change_insync {
                ChangeStatus::InSync
            } else {
                ChangeStatus::Pending
            },
        )
    }

    async fn list_records(&self, zone_id: &str) -> CloudResult<Vec<RecordSet>> {
        let mut st = self.gate("ListResourceRecordSets")?;
        Ok(self
            .zone(&mut st, zone_id)?
            .records
            .values()
            .cloned()
            .collect())
    }
}

/// A stable pseudo prefix-list id for a gateway service.
fn hex_of(s: &str) -> String {
    let h = s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{:08x}", h as u32)
}
