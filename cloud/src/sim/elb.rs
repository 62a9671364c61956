//! ELBv2 load balancers and their tags, as the ELBv2 API reference describes them
//! (CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer, DescribeTags).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::cloud::SimCloud;
use super::ids::not_found;
use super::{LbRec, State};
use crate::types::{CreateLoadBalancer, LoadBalancer, LoadBalancerKind, Tags, TargetType};
use crate::{Action, CloudError, CloudResult};

/// ELBv2 names (CreateLoadBalancer and CreateTargetGroup, `Name`): at most 32 characters,
/// only alphanumerics and hyphens, not beginning or ending with a hyphen. A load balancer's
/// name also must not begin with `internal-`. Refused with `ValidationError`.
pub(super) fn check_name(what: &str, name: &str, load_balancer: bool) -> CloudResult<()> {
    let valid = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && (!load_balancer || !name.starts_with("internal-"));
    if valid {
        Ok(())
    } else {
        Err(CloudError::InvalidParameter(format!(
            "ValidationError: the {what} name {name:?} must have at most 32 alphanumeric \
             characters or hyphens, and must not begin or end with a hyphen{}",
            if load_balancer {
                " or begin with \"internal-\""
            } else {
                ""
            }
        )))
    }
}

impl SimCloud {
    /// The load balancer `arn` if this account owns it.
    pub(super) fn own_lb<'a>(&self, st: &'a State, arn: &str) -> Option<&'a LbRec> {
        st.lbs.get(arn).filter(|l| l.owner == self.account)
    }

    /// The ARN of a new ELBv2 resource of this account: `loadbalancer/net/NAME/ID`,
    /// `targetgroup/NAME/ID`.
    pub(super) fn elb_arn(&self, st: &mut State, resource: &str) -> String {
        let id = Self::new_id(st, "", 16);
        format!(
            "arn:aws:elasticloadbalancing:{}:{}:{resource}/{id}",
            self.region.config.region, self.account
        )
    }

    pub(super) async fn describe_load_balancer(&self, arn: &str) -> CloudResult<LoadBalancer> {
        let st = self.gate(Action::DescribeLoadBalancers)?;
        st.lbs
            .get(arn)
            .filter(|l| l.owner == self.account)
            .map(|l| l.lb.clone())
            .ok_or_else(|| not_found("load balancer", arn))
    }

    pub(super) async fn describe_load_balancers(&self) -> CloudResult<Vec<LoadBalancer>> {
        let st = self.gate(Action::DescribeLoadBalancers)?;
        Ok(st
            .lbs
            .values()
            .filter(|l| l.owner == self.account)
            .map(|l| l.lb.clone())
            .collect())
    }

    pub(super) async fn create_load_balancer(
        &self,
        req: &CreateLoadBalancer,
    ) -> CloudResult<LoadBalancer> {
        let mut st = self.gate(Action::CreateLoadBalancer)?;
        check_name("load balancer", &req.name, true)?;
        if req.kind != LoadBalancerKind::Network {
            // Not AWS's limit but this region's: it models what pld creates. Add others with
            // `SimRegion::add_load_balancer`.
            return Err(CloudError::InvalidParameter(format!(
                "ValidationError: the simulated region creates only network load balancers, not {}",
                req.kind.as_str()
            )));
        }
        // Subnets (CreateLoadBalancer, `Subnets`): each must exist (`SubnetNotFound`), all in
        // one VPC, at most one per Availability Zone (`InvalidConfigurationRequest`).
        let mut vpcs = BTreeSet::new();
        let mut zones = BTreeMap::new();
        for id in &req.subnet_ids {
            let subnet = st.subnets.get(id).ok_or_else(|| {
                CloudError::InvalidParameter(format!(
                    "SubnetNotFound: the subnet ID '{id}' does not exist"
                ))
            })?;
            vpcs.insert(subnet.vpc_id.clone());
            if let Some(other) = zones.insert(subnet.az_id.clone(), id.clone()) {
                return Err(CloudError::InvalidParameter(format!(
                    "InvalidConfigurationRequest: subnets {other} and {id} are both in {}; \
                     specify one subnet per Availability Zone",
                    subnet.az_id
                )));
            }
        }
        let vpc_id = match (vpcs.len(), vpcs.into_iter().next()) {
            (1, Some(vpc)) => vpc,
            (0, _) => {
                return Err(CloudError::InvalidParameter(
                    "ValidationError: at least one subnet must be specified".into(),
                ))
            }
            _ => {
                return Err(CloudError::InvalidParameter(
                    "InvalidConfigurationRequest: the subnets must all be in one VPC".into(),
                ))
            }
        };
        let mut subnet_ids = req.subnet_ids.clone();
        subnet_ids.sort();
        // Idempotent by name: "If you attempt to create multiple load balancers with the same
        // settings, each call succeeds"; the same name with other settings is
        // `DuplicateLoadBalancerName`.
        if let Some(existing) = st
            .lbs
            .values()
            .find(|l| l.owner == self.account && l.lb.name == req.name)
        {
            let mut have = existing.lb.subnet_ids.clone();
            have.sort();
            if existing.lb.kind == req.kind
                && existing.lb.internal == req.internal
                && have == subnet_ids
            {
                return Ok(existing.lb.clone());
            }
            return Err(CloudError::AlreadyExists {
                what: "load balancer (DuplicateLoadBalancerName)",
                id: req.name.clone(),
            });
        }
        let arn = self.elb_arn(&mut st, &format!("loadbalancer/net/{}", req.name));
        let lb = LoadBalancer {
            arn: arn.clone(),
            name: req.name.clone(),
            kind: req.kind,
            internal: req.internal,
            vpc_id,
            az_ids: zones.keys().cloned().collect(),
            subnet_ids,
            state: "provisioning".into(),
        };
        st.lbs.insert(
            arn,
            LbRec {
                lb: lb.clone(),
                owner: self.account.clone(),
                targets: Vec::new(),
                tags: req.tags.clone(),
                created: Instant::now(),
                internet: None,
            },
        );
        Ok(lb)
    }

    pub(super) async fn delete_load_balancer(&self, arn: &str) -> CloudResult<()> {
        let mut st = self.gate(Action::DeleteLoadBalancer)?;
        // "If the load balancer does not exist or has already been deleted, the call succeeds."
        if self.own_lb(&st, arn).is_none() {
            return Ok(());
        }
        // An ALB registered as a target of a target group cannot be deleted (Application Load
        // Balancers guide, "Delete an Application Load Balancer": deregister it first).
        if let Some(group) = st
            .target_groups
            .values()
            .find(|g| g.group.target_type == TargetType::Alb && g.targets.iter().any(|t| t == arn))
        {
            return Err(CloudError::DependencyViolation(format!(
                "ResourceInUse: load balancer {arn} is registered as a target of target group {}",
                group.group.arn
            )));
        }
        // A load balancer behind an endpoint service cannot be deleted while the service
        // names it (PrivateLink guide: remove it from the endpoint service first).
        if let Some(service) = st
            .services
            .values()
            .find(|s| s.svc.load_balancer_arns.iter().any(|a| a == arn))
        {
            return Err(CloudError::DependencyViolation(format!(
                "ResourceInUse: load balancer {arn} cannot be deleted because it is currently \
                 associated with endpoint service {}",
                service.svc.id
            )));
        }
        // "Deleting a load balancer also deletes its listeners."
        st.listeners
            .retain(|_, l| l.listener.load_balancer_arn != arn);
        for group in st.target_groups.values_mut() {
            group.group.load_balancer_arns.retain(|a| a != arn);
        }
        st.lbs.remove(arn);
        Ok(())
    }

    pub(super) async fn describe_elb_tags(
        &self,
        arns: &[String],
    ) -> CloudResult<BTreeMap<String, Tags>> {
        let st = self.gate(Action::DescribeTags)?;
        // DescribeTags, `ResourceArns`: "Maximum number of 20 items."
        if arns.len() > 20 {
            return Err(CloudError::InvalidParameter(format!(
                "ValidationError: {} resource ARNs; DescribeTags takes at most 20",
                arns.len()
            )));
        }
        let mut out = BTreeMap::new();
        for arn in arns {
            let tags = if let Some(l) = st.lbs.get(arn).filter(|l| l.owner == self.account) {
                l.tags.clone()
            } else if let Some(g) = st
                .target_groups
                .get(arn)
                .filter(|g| g.owner == self.account)
            {
                g.tags.clone()
            } else if let Some(l) = st.listeners.get(arn).filter(|l| l.owner == self.account) {
                l.tags.clone()
            } else if arn.contains(":targetgroup/") {
                return Err(not_found("target group (TargetGroupNotFound)", arn));
            } else if arn.contains(":listener/") {
                return Err(not_found("listener (ListenerNotFound)", arn));
            } else {
                return Err(not_found("load balancer (LoadBalancerNotFound)", arn));
            };
            out.insert(arn.clone(), tags);
        }
        Ok(out)
    }
}
