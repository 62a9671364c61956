//! ELBv2 target groups, their targets and their health, as the ELBv2 API reference and the
//! Network Load Balancers guide ("Use Application Load Balancers as targets") describe them.

use std::collections::BTreeSet;

use super::cloud::SimCloud;
use super::elb::check_name;
use super::ids::not_found;
use super::{State, TargetGroupRec};
use crate::types::{
    state_is, CreateTargetGroup, HealthCheck, LoadBalancerKind, Protocol, TargetGroup,
    TargetHealth, TargetType,
};
use crate::{Action, CloudError, CloudResult};

/// How many network load balancers may reach one ALB through `alb` target groups ("Use
/// Application Load Balancers as targets": an ALB can be the target of at most two NLBs).
pub(super) const MAX_NLBS_PER_ALB: usize = 2;

/// The network load balancers that reach the ALB `alb_arn` through `alb` target groups.
pub(super) fn nlbs_reaching(st: &State, alb_arn: &str) -> BTreeSet<String> {
    st.target_groups
        .values()
        .filter(|g| {
            g.group.target_type == TargetType::Alb && g.targets.iter().any(|t| t == alb_arn)
        })
        .flat_map(|g| g.group.load_balancer_arns.iter().cloned())
        .collect()
}

/// The health checks of an `alb` group reach the ALB's listener: HTTP or HTTPS only.
fn check_alb_health(check: &HealthCheck) -> CloudResult<()> {
    if matches!(check.protocol, Protocol::Http | Protocol::Https) {
        return Ok(());
    }
    Err(CloudError::InvalidParameter(format!(
        "ValidationError: health checks of a target group of type alb must use HTTP or HTTPS, \
         not {}",
        check.protocol
    )))
}

impl SimCloud {
    fn own_group<'a>(&self, st: &'a State, arn: &str) -> CloudResult<&'a TargetGroupRec> {
        st.target_groups
            .get(arn)
            .filter(|g| g.owner == self.account)
            .ok_or_else(|| not_found("target group (TargetGroupNotFound)", arn))
    }

    pub(super) async fn describe_target_groups(
        &self,
        load_balancer_arn: Option<&str>,
    ) -> CloudResult<Vec<TargetGroup>> {
        let st = self.gate(Action::DescribeTargetGroups)?;
        if let Some(lb) = load_balancer_arn {
            if self.own_lb(&st, lb).is_none() {
                return Err(not_found("load balancer (LoadBalancerNotFound)", lb));
            }
        }
        Ok(st
            .target_groups
            .values()
            .filter(|g| g.owner == self.account)
            .filter(|g| {
                load_balancer_arn
                    .is_none_or(|lb| g.group.load_balancer_arns.iter().any(|a| a == lb))
            })
            .map(|g| g.group.clone())
            .collect())
    }

    pub(super) async fn create_target_group(
        &self,
        req: &CreateTargetGroup,
    ) -> CloudResult<TargetGroup> {
        let mut st = self.gate(Action::CreateTargetGroup)?;
        check_name("target group", &req.name, false)?;
        let own_vpc = st
            .vpcs
            .get(&req.vpc_id)
            .filter(|v| v.account == self.account);
        if own_vpc.is_none() {
            return Err(CloudError::InvalidParameter(format!(
                "ValidationError: the VPC ID '{}' is not found",
                req.vpc_id
            )));
        }
        if req.target_type == TargetType::Alb {
            // "Use Application Load Balancers as targets": the target group's protocol is TCP,
            // and its health checks are HTTP or HTTPS (they reach the ALB's listener).
            if req.protocol != Protocol::Tcp {
                return Err(CloudError::InvalidParameter(format!(
                    "ValidationError: a target group of type alb must use protocol TCP, not {}",
                    req.protocol
                )));
            }
            check_alb_health(&req.health_check)?;
        }
        // Idempotent by name, as CreateTargetGroup says: the same settings are answered with
        // the group made before; other settings are `DuplicateTargetGroupName`.
        if let Some(existing) = st
            .target_groups
            .values()
            .find(|g| g.owner == self.account && g.group.name == req.name)
        {
            let same = existing.group.target_type == req.target_type
                && existing.group.protocol == req.protocol
                && existing.group.port == req.port
                && existing.group.vpc_id == req.vpc_id
                && existing.group.health_check == req.health_check;
            if same {
                return Ok(existing.group.clone());
            }
            return Err(CloudError::AlreadyExists {
                what: "target group (DuplicateTargetGroupName)",
                id: req.name.clone(),
            });
        }
        let arn = self.elb_arn(&mut st, &format!("targetgroup/{}", req.name));
        let group = TargetGroup {
            arn: arn.clone(),
            name: req.name.clone(),
            target_type: req.target_type,
            protocol: req.protocol.clone(),
            port: req.port,
            vpc_id: req.vpc_id.clone(),
            health_check: req.health_check.clone(),
            load_balancer_arns: Vec::new(),
        };
        st.target_groups.insert(
            arn,
            TargetGroupRec {
                group: group.clone(),
                owner: self.account.clone(),
                tags: req.tags.clone(),
                targets: Vec::new(),
            },
        );
        Ok(group)
    }

    pub(super) async fn modify_target_group_health(
        &self,
        arn: &str,
        check: &HealthCheck,
    ) -> CloudResult<TargetGroup> {
        let mut st = self.gate(Action::ModifyTargetGroup)?;
        let group = self.own_group(&st, arn)?;
        if group.group.target_type == TargetType::Alb {
            check_alb_health(check)?;
        }
        let rec = st
            .target_groups
            .get_mut(arn)
            .ok_or_else(|| not_found("target group (TargetGroupNotFound)", arn))?;
        rec.group.health_check = check.clone();
        Ok(rec.group.clone())
    }

    pub(super) async fn delete_target_group(&self, arn: &str) -> CloudResult<()> {
        let mut st = self.gate(Action::DeleteTargetGroup)?;
        let group = self.own_group(&st, arn)?;
        // DeleteTargetGroup: "You can delete a target group if it is not referenced by any
        // actions" (`ResourceInUse`).
        if let Some(lb) = group.group.load_balancer_arns.first() {
            return Err(CloudError::DependencyViolation(format!(
                "ResourceInUse: target group {arn} is currently in use by a listener of {lb}"
            )));
        }
        st.target_groups.remove(arn);
        Ok(())
    }

    pub(super) async fn register_targets(
        &self,
        target_group_arn: &str,
        target_ids: &[String],
    ) -> CloudResult<()> {
        let mut st = self.gate(Action::RegisterTargets)?;
        let group = self.own_group(&st, target_group_arn)?.group.clone();
        if group.target_type == TargetType::Alb {
            for id in target_ids {
                self.check_alb_target(&st, &group, id)?;
            }
            let mut wanted: BTreeSet<&String> = target_ids.iter().collect();
            let registered = &st.target_groups[target_group_arn].targets;
            wanted.extend(registered.iter());
            // One ALB per target group of type alb.
            if wanted.len() > 1 {
                return Err(CloudError::InvalidParameter(format!(
                    "TooManyTargets: target group {target_group_arn} of type alb can hold one \
                     application load balancer"
                )));
            }
            // An NLB already forwarding here would reach the ALB: the two-NLB limit holds.
            for id in target_ids {
                let mut reaching = nlbs_reaching(&st, id);
                reaching.extend(group.load_balancer_arns.iter().cloned());
                if reaching.len() > MAX_NLBS_PER_ALB {
                    return Err(CloudError::InvalidParameter(format!(
                        "TargetGroupAssociationLimit: application load balancer {id} is \
                         already the target of {MAX_NLBS_PER_ALB} network load balancers"
                    )));
                }
            }
        }
        if let Some(rec) = st.target_groups.get_mut(target_group_arn) {
            for id in target_ids {
                if !rec.targets.contains(id) {
                    rec.targets.push(id.clone());
                }
            }
        }
        Ok(())
    }

    /// An `alb` target group's target ("Use Application Load Balancers as targets"): an ALB
    /// of this account, in the group's VPC, with a listener on the group's port; otherwise
    /// `InvalidTarget`.
    fn check_alb_target(&self, st: &State, group: &TargetGroup, id: &str) -> CloudResult<()> {
        let invalid =
            |why: String| CloudError::InvalidParameter(format!("InvalidTarget: {id}: {why}"));
        let alb = st
            .lbs
            .get(id)
            .filter(|l| l.owner == self.account)
            .ok_or_else(|| invalid("not an application load balancer of this account".into()))?;
        if alb.lb.kind != LoadBalancerKind::Application {
            return Err(invalid(format!(
                "a target group of type alb takes application load balancers, not {}",
                alb.lb.kind.as_str()
            )));
        }
        if alb.lb.vpc_id != group.vpc_id {
            return Err(invalid(format!(
                "the load balancer is in {}, the target group in {}",
                alb.lb.vpc_id, group.vpc_id
            )));
        }
        let has_port = st
            .listeners
            .values()
            .any(|l| l.listener.load_balancer_arn == id && l.listener.port == group.port);
        if !has_port {
            return Err(invalid(format!(
                "the load balancer has no listener on the target group's port {}",
                group.port
            )));
        }
        Ok(())
    }

    pub(super) async fn describe_target_health(
        &self,
        target_group_arn: &str,
    ) -> CloudResult<Vec<TargetHealth>> {
        let st = self.gate(Action::DescribeTargetHealth)?;
        let group = self.own_group(&st, target_group_arn)?;
        Ok(group
            .targets
            .iter()
            .map(|id| target_health(&st, &group.group, id))
            .collect())
    }
}

/// A target's health as DescribeTargetHealth reports it ("Target health status"): `unused`
/// while no load balancer forwards to the group; an ALB is `healthy` while it is active and
/// listens on the group's port, else `unhealthy`; any other target is `healthy` (the sim runs
/// no checks against addresses).
fn target_health(st: &State, group: &TargetGroup, id: &str) -> TargetHealth {
    let (state, reason) = if group.load_balancer_arns.is_empty() {
        ("unused", "Target.NotInUse")
    } else if group.target_type == TargetType::Alb {
        let listening = st
            .lbs
            .get(id)
            .is_some_and(|l| state_is(&l.lb.state, "active"))
            && st
                .listeners
                .values()
                .any(|l| l.listener.load_balancer_arn == id && l.listener.port == group.port);
        if listening {
            ("healthy", "")
        } else {
            ("unhealthy", "Target.FailedHealthChecks")
        }
    } else {
        ("healthy", "")
    };
    TargetHealth {
        target_id: id.to_string(),
        port: group.port,
        state: state.into(),
        reason: reason.into(),
    }
}
