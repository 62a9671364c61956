//! The consumer's side: the services an account may see (DescribeVpcEndpointServices) and VPC
//! endpoints (CreateVpcEndpoint, ModifyVpcEndpoint, DescribeVpcEndpoints,
//! DeleteVpcEndpoints), placed by AZ ID as AWS places them.

use std::time::Instant;

use super::cloud::SimCloud;
use super::ids::{hex_of, not_found};
use super::{region_az_ids, EndpointRec, ServiceRec, State};
use crate::types::*;
use crate::{Action, CloudError, CloudResult};

/// Whether `principals` allow `account` (`*`, the account's root, or any IAM ARN of it).
fn allows(principals: &std::collections::BTreeSet<String>, account: &str) -> bool {
    principals
        .iter()
        .any(|p| p == "*" || p.split(':').nth(4).is_some_and(|acct| acct == account))
}

impl SimCloud {
    /// An endpoint service this account may use (its own, or one whose principals allow it),
    /// and the kind of endpoint it takes (GWLB behind a Gateway Load Balancer, else interface).
    /// Any other is `InvalidServiceName`, as DescribeVpcEndpointServices and CreateVpcEndpoint
    /// answer it.
    pub(super) fn visible_service<'a>(
        &self,
        st: &'a State,
        service_name: &str,
    ) -> CloudResult<(&'a ServiceRec, EndpointKind)> {
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
        Ok((rec, kind))
    }

    pub(super) fn aws_service_kind(&self, name: &str) -> Option<EndpointKind> {
        let short = name.strip_prefix(&format!("com.amazonaws.{}.", self.region.config.region))?;
        if AWS_GATEWAY_SERVICES.contains(&short) {
            Some(EndpointKind::Gateway)
        } else if AWS_INTERFACE_SERVICES.contains(&short) {
            Some(EndpointKind::Interface)
        } else {
            None
        }
    }

    pub(super) async fn describe_service(&self, service_name: &str) -> CloudResult<ServiceDetail> {
        let st = self.gate(Action::DescribeVpcEndpointServices)?;
        if let Some(kind) = self.aws_service_kind(service_name) {
            return Ok(ServiceDetail {
                name: service_name.to_string(),
                kind,
                az_ids: region_az_ids(&self.region.config.region),
                owner: "amazon".into(),
                acceptance_required: false,
            });
        }
        // A service of another region (the backends ask with ServiceRegions for one), offered
        // here in every AZ of this region.
        if let Some(home) = service_region(service_name).filter(|r| *r != self.region.config.region)
        {
            drop(st);
            let remote = self.remote_service(home, service_name)?;
            return Ok(ServiceDetail {
                name: remote.name,
                kind: remote.kind,
                az_ids: region_az_ids(&self.region.config.region),
                owner: remote.owner,
                acceptance_required: remote.acceptance_required,
            });
        }
        let (rec, kind) = self.visible_service(&st, service_name)?;
        Ok(ServiceDetail {
            name: rec.svc.name.clone(),
            kind,
            az_ids: rec.svc.az_ids.clone(),
            owner: rec.owner.clone(),
            acceptance_required: rec.svc.acceptance_required,
        })
    }

    pub(super) async fn create_endpoint(&self, req: &CreateEndpoint) -> CloudResult<Endpoint> {
        let mut st = self.gate(Action::CreateVpcEndpoint)?;
        let fingerprint = format!(
            "{}|{}|{}|{:?}|{:?}|{:?}",
            req.kind.as_str(),
            req.vpc_id,
            req.service_name,
            req.subnet_ids,
            req.route_table_ids,
            req.service_region
        );
        if let Some(id) = self.check_token(&st, &req.client_token, &fingerprint)? {
            if let Some(e) = st.endpoints.get(&id) {
                return Ok(e.ep.clone());
            }
            // The token's endpoint is gone: AWS answers with it all the same, deleted, rather
            // than making a new one.
            if let Some(e) = st.deleted_endpoints.get(&id) {
                return Ok(e.clone());
            }
        }
        if st
            .vpcs
            .get(&req.vpc_id)
            .is_none_or(|v| v.account != self.account)
        {
            return Err(not_found("VPC", &req.vpc_id));
        }
        // A service of another region: the permission-only vpce:AllowMultiRegion is checked
        // besides CreateVpcEndpoint (Service Authorization Reference, AWS PrivateLink), and
        // only interface endpoints reach another region (EC2 API reference, CreateVpcEndpoint
        // `ServiceRegion`).
        if let Some(r) = req
            .service_region
            .as_deref()
            .filter(|r| *r != self.region.config.region)
        {
            if self
                .region
                .is_denied(&self.account, Action::AllowMultiRegion)
            {
                return Err(self.unauthorized(Action::CreateVpcEndpoint, Action::AllowMultiRegion));
            }
            if req.kind != EndpointKind::Interface {
                return Err(CloudError::InvalidParameter(format!(
                    "InvalidParameter: ServiceRegion {r} is for interface endpoints only"
                )));
            }
        }
        // Which service, and what it supports.
        let (service_id, kind, az_ids, acceptance_required, short) =
            if let Some(kind) = self.aws_service_kind(&req.service_name) {
                let short = req
                    .service_name
                    .rsplit('.')
                    .next()
                    .unwrap_or("aws")
                    .to_string();
                (
                    None,
                    kind,
                    region_az_ids(&self.region.config.region),
                    false,
                    short,
                )
            } else if let Some(home) =
                service_region(&req.service_name).filter(|r| *r != self.region.config.region)
            {
                // Without ServiceRegion AWS looks only here, and finds nothing of that name.
                if req.service_region.as_deref() != Some(home) {
                    return Err(CloudError::InvalidParameter(format!(
                        "InvalidServiceName: the VPC endpoint service {} does not exist in {} \
                         (it is in {home}: ask with ServiceRegion)",
                        req.service_name, self.region.config.region
                    )));
                }
                // Read from its region without holding this one's lock.
                drop(st);
                let remote = self.remote_service(home, &req.service_name)?;
                st = self.region.state();
                self.refresh(&mut st);
                (
                    Some(remote.id.clone()),
                    remote.kind,
                    region_az_ids(&self.region.config.region),
                    remote.acceptance_required,
                    remote.id,
                )
            } else {
                let (rec, kind) = self.visible_service(&st, &req.service_name)?;
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
        if kind != EndpointKind::Gateway {
            // Interface and GWLB endpoints share a per-VPC quota ("AWS PrivateLink quotas",
            // Service Quotas vpc L-29B6F2EB); a create beyond it is refused with
            // VpcEndpointLimitExceeded (EC2 API reference, "Error codes").
            let quota =
                super::service_quotas::value(&st, &self.account, Quota::InterfaceEndpointsPerVpc);
            let used = st
                .endpoints
                .values()
                .filter(|e| e.ep.vpc_id == req.vpc_id && e.ep.counts_against_quota())
                .count();
            if used >= quota as usize {
                return Err(CloudError::InvalidParameter(format!(
                    "CreateVpcEndpoint: VpcEndpointLimitExceeded You've reached the limit on \
                     the number of VPC endpoints that you can create ({used} of {quota} in {})",
                    req.vpc_id
                )));
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
                service_region: service_region(&req.service_name)
                    .filter(|r| *r != self.region.config.region)
                    .map(str::to_string),
                remote_forwarding: None,
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

    pub(super) async fn modify_endpoint_subnets(
        &self,
        endpoint_id: &str,
        add: &[String],
        remove: &[String],
    ) -> CloudResult<()> {
        let mut st = self.gate(Action::ModifyVpcEndpoint)?;
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
            None => region_az_ids(&self.region.config.region),
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

    pub(super) async fn describe_endpoints(
        &self,
        vpc_id: &str,
        tags: &Tags,
    ) -> CloudResult<Vec<Endpoint>> {
        let st = self.gate(Action::DescribeVpcEndpoints)?;
        Ok(st
            .endpoints
            .values()
            .filter(|e| {
                e.owner == self.account && e.ep.vpc_id == vpc_id && has_tags(&e.ep.tags, tags)
            })
            .map(|e| e.ep.clone())
            .collect())
    }

    pub(super) async fn delete_endpoint(&self, endpoint_id: &str) -> CloudResult<()> {
        let mut st = self.gate(Action::DeleteVpcEndpoints)?;
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
        if let Some(rec) = st.endpoints.remove(endpoint_id) {
            let mut ep = rec.ep;
            ep.state = "deleted".into();
            ep.addresses.clear();
            st.deleted_endpoints.insert(endpoint_id.to_string(), ep);
        }
        Ok(())
    }
}
