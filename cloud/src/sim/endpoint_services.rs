//! The provider's side: endpoint service configurations, permissions, and the decisions on
//! consumers' connections (EC2 API reference: CreateVpcEndpointServiceConfiguration,
//! ModifyVpcEndpointServicePermissions, Accept/RejectVpcEndpointConnections,
//! DeleteVpcEndpointServiceConfigurations).

use std::time::Instant;

use super::cloud::SimCloud;
use super::ids::not_found;
use super::{EndpointRec, ServiceRec, State};
use crate::types::*;
use crate::{Action, CloudError, CloudResult};

impl EndpointRec {
    /// The endpoint as its service's provider lists it (DescribeVpcEndpointConnections).
    pub(super) fn connection(&self) -> Connection {
        Connection {
            service_id: self.service_id.clone().unwrap_or_default(),
            endpoint_id: self.ep.id.clone(),
            owner: self.owner.clone(),
            state: self.ep.state.clone(),
        }
    }
}

impl SimCloud {
    pub(super) fn own_service<'a>(
        &self,
        st: &'a mut State,
        id: &str,
    ) -> CloudResult<&'a mut ServiceRec> {
        st.services
            .get_mut(id)
            .filter(|s| s.owner == self.account)
            .ok_or_else(|| not_found("endpoint service", id))
    }

    /// Applies a provider's decision to connections of its service; all ids are checked before
    /// any is changed.
    /// Endpoints of other regions (cross-region PrivateLink) are found in their regions, and
    /// an accepted one takes this region's targets for its data path along.
    pub(super) fn decide(
        &self,
        action: Action,
        service_id: &str,
        endpoint_ids: &[String],
        apply: impl Fn(&mut EndpointRec),
    ) -> CloudResult<()> {
        let mut st = self.gate(action)?;
        let lb = self
            .own_service(&mut st, service_id)?
            .svc
            .load_balancer_arns
            .first()
            .cloned()
            .unwrap_or_default();
        let forwarding = super::dataplane::forwarding(&st, &lb);
        let of_service = |e: &EndpointRec| e.service_id.as_deref() == Some(service_id);
        let remote: Vec<String> = endpoint_ids
            .iter()
            .filter(|id| !st.endpoints.get(id.as_str()).is_some_and(of_service))
            .cloned()
            .collect();
        drop(st);
        let found = self.remote_endpoints_of(service_id, &remote);
        if let Some(missing) = remote.iter().find(|id| !found.contains(*id)) {
            return Err(not_found("VPC endpoint connection", missing));
        }
        self.decide_remote(service_id, &found, Some(&forwarding), &apply);
        let mut st = self.region.state();
        for id in endpoint_ids {
            if let Some(rec) = st.endpoints.get_mut(id).filter(|e| of_service(e)) {
                apply(rec);
            }
        }
        Ok(())
    }

    pub(super) async fn create_endpoint_service(
        &self,
        req: &CreateEndpointService,
    ) -> CloudResult<EndpointService> {
        let mut st = self.gate(Action::CreateVpcEndpointServiceConfiguration)?;
        self.check_supported_regions(
            Action::CreateVpcEndpointServiceConfiguration,
            &req.supported_regions,
        )?;
        let fingerprint = format!(
            "{}|{}|{}",
            req.load_balancer_arn,
            req.acceptance_required,
            req.supported_regions.join(",")
        );
        if let Some(id) = self.check_token(&st, &req.client_token, &fingerprint)? {
            if let Some(s) = st.services.get(&id) {
                return Ok(s.svc.clone());
            }
            // As for endpoints: the token's deleted service comes back, deleted.
            if let Some(s) = st.deleted_services.get(&id) {
                return Ok(s.clone());
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
        // An endpoint service takes network or gateway load balancers (the EC2 API reference,
        // CreateVpcEndpointServiceConfiguration: `NetworkLoadBalancerArns`,
        // `GatewayLoadBalancerArns`); an ALB needs an NLB in front.
        if lb.kind == LoadBalancerKind::Application {
            return Err(CloudError::InvalidParameter(format!(
                "InvalidParameter: {} is an application load balancer; an endpoint service \
                 takes network or gateway load balancers",
                lb.arn
            )));
        }
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
        let home = self.region.config.region.clone();
        let now = Instant::now();
        let svc = EndpointService {
            name: format!("com.amazonaws.vpce.{home}.{id}"),
            id: id.clone(),
            state: "Pending".into(),
            acceptance_required: req.acceptance_required,
            load_balancer_arns: vec![lb.arn.clone()],
            az_ids: lb.az_ids.clone(),
            supported_regions: Self::initial_regions(&home, &req.supported_regions),
            tags: req.tags.clone(),
        };
        st.services.insert(
            id.clone(),
            ServiceRec {
                svc: svc.clone(),
                owner: self.account.clone(),
                principals: Default::default(),
                created: now,
                region_since: req
                    .supported_regions
                    .iter()
                    .map(|r| (r.clone(), now))
                    .collect(),
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

    pub(super) async fn describe_endpoint_services(
        &self,
        tags: &Tags,
    ) -> CloudResult<Vec<EndpointService>> {
        let st = self.gate(Action::DescribeVpcEndpointServiceConfigurations)?;
        Ok(st
            .services
            .values()
            .filter(|s| s.owner == self.account && has_tags(&s.svc.tags, tags))
            .map(|s| s.svc.clone())
            .collect())
    }

    pub(super) async fn set_acceptance_required(
        &self,
        service_id: &str,
        required: bool,
    ) -> CloudResult<()> {
        let mut st = self.gate(Action::ModifyVpcEndpointServiceConfiguration)?;
        self.own_service(&mut st, service_id)?
            .svc
            .acceptance_required = required;
        Ok(())
    }

    pub(super) async fn allowed_principals(&self, service_id: &str) -> CloudResult<Vec<String>> {
        let mut st = self.gate(Action::DescribeVpcEndpointServicePermissions)?;
        Ok(self
            .own_service(&mut st, service_id)?
            .principals
            .iter()
            .cloned()
            .collect())
    }

    pub(super) async fn modify_allowed_principals(
        &self,
        service_id: &str,
        add: &[String],
        remove: &[String],
    ) -> CloudResult<()> {
        let mut st = self.gate(Action::ModifyVpcEndpointServicePermissions)?;
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

    pub(super) async fn delete_endpoint_service(&self, service_id: &str) -> CloudResult<()> {
        let mut st = self.gate(Action::DeleteVpcEndpointServiceConfigurations)?;
        self.own_service(&mut st, service_id)?;
        let busy = st.endpoints.values().any(|e| {
            e.service_id.as_deref() == Some(service_id)
                && (state_is(&e.ep.state, "available")
                    || state_is(&e.ep.state, "pendingAcceptance")
                    || state_is(&e.ep.state, "pending"))
        });
        let remote_busy = || {
            self.remote_connections(
                &std::collections::BTreeSet::from([service_id.to_string()]),
                Some(service_id),
            )
            .iter()
            .any(|c| {
                ["available", "pendingAcceptance", "pending"]
                    .iter()
                    .any(|s| state_is(&c.state, s))
            })
        };
        // (Other regions are read without this one's lock held.)
        let busy = busy || {
            drop(st);
            let remote = remote_busy();
            st = self.region.state();
            remote
        };
        if busy {
            return Err(CloudError::DependencyViolation(format!(
                "endpoint service {service_id} has existing active VPC endpoint connections"
            )));
        }
        if let Some(rec) = st.services.remove(service_id) {
            let mut svc = rec.svc;
            svc.state = "Deleted".into();
            st.deleted_services.insert(service_id.to_string(), svc);
        }
        Ok(())
    }

    pub(super) async fn describe_connections(
        &self,
        service_id: Option<&str>,
    ) -> CloudResult<Vec<Connection>> {
        let mut st = self.gate(Action::DescribeVpcEndpointConnections)?;
        if let Some(id) = service_id {
            self.own_service(&mut st, id)?;
        }
        let owned: std::collections::BTreeSet<String> = st
            .services
            .values()
            .filter(|s| s.owner == self.account)
            .map(|s| s.svc.id.clone())
            .collect();
        let mut connections: Vec<Connection> = st
            .endpoints
            .values()
            .filter(|e| {
                e.service_id.as_ref().is_some_and(|sid| {
                    owned.contains(sid) && service_id.is_none_or(|want| want == sid)
                })
            })
            .map(EndpointRec::connection)
            .collect();
        drop(st);
        // And those from endpoints in other regions (cross-region PrivateLink).
        connections.extend(self.remote_connections(&owned, service_id));
        Ok(connections)
    }

    pub(super) async fn accept_connections(
        &self,
        service_id: &str,
        endpoint_ids: &[String],
    ) -> CloudResult<()> {
        self.decide(
            Action::AcceptVpcEndpointConnections,
            service_id,
            endpoint_ids,
            |rec| {
                if rec.accepted.is_none() && rec.rejected.is_none() {
                    rec.accepted = Some(Instant::now());
                }
            },
        )
    }

    pub(super) async fn reject_connections(
        &self,
        service_id: &str,
        endpoint_ids: &[String],
    ) -> CloudResult<()> {
        self.decide(
            Action::RejectVpcEndpointConnections,
            service_id,
            endpoint_ids,
            |rec| {
                rec.rejected = Some(Instant::now());
                rec.dataplane = None;
            },
        )
    }
}
