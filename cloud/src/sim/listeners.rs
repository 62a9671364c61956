//! ELBv2 listeners, as the ELBv2 API reference (CreateListener, DescribeListeners,
//! DeleteListener) and the Network Load Balancers guide ("Use Application Load Balancers as
//! targets") describe them.

use super::cloud::SimCloud;
use super::ids::not_found;
use super::target_groups::{nlbs_reaching, MAX_NLBS_PER_ALB};
use super::ListenerRec;
use crate::types::{CreateListener, Listener, LoadBalancerKind, Protocol, TargetType};
use crate::{Action, CloudError, CloudResult};

impl SimCloud {
    pub(super) async fn describe_listeners(
        &self,
        load_balancer_arn: &str,
    ) -> CloudResult<Vec<Listener>> {
        let st = self.gate(Action::DescribeListeners)?;
        if self.own_lb(&st, load_balancer_arn).is_none() {
            return Err(not_found(
                "load balancer (LoadBalancerNotFound)",
                load_balancer_arn,
            ));
        }
        Ok(st
            .listeners
            .values()
            .filter(|l| l.listener.load_balancer_arn == load_balancer_arn)
            .map(|l| l.listener.clone())
            .collect())
    }

    pub(super) async fn create_listener(&self, req: &CreateListener) -> CloudResult<Listener> {
        let mut st = self.gate(Action::CreateListener)?;
        let lb = st
            .lbs
            .get(&req.load_balancer_arn)
            .filter(|l| l.owner == self.account)
            .map(|l| l.lb.clone())
            .ok_or_else(|| {
                not_found(
                    "load balancer (LoadBalancerNotFound)",
                    &req.load_balancer_arn,
                )
            })?;
        let group = st
            .target_groups
            .get(&req.target_group_arn)
            .filter(|g| g.owner == self.account)
            .map(|g| (g.group.clone(), g.targets.clone()))
            .ok_or_else(|| {
                not_found("target group (TargetGroupNotFound)", &req.target_group_arn)
            })?;
        let (group, targets) = group;
        if req.port == 0 {
            return Err(CloudError::InvalidParameter(
                "ValidationError: the listener port must be between 1 and 65535".into(),
            ));
        }
        // The same settings again are answered with the listener made before ("If you attempt
        // to create multiple listeners with the same settings, each call succeeds"); another
        // listener on the port is `DuplicateListener`.
        if let Some(existing) = st.listeners.values().find(|l| {
            l.listener.load_balancer_arn == req.load_balancer_arn && l.listener.port == req.port
        }) {
            let same = existing.listener.protocol == req.protocol
                && existing.listener.target_group_arn.as_deref() == Some(&req.target_group_arn);
            if same {
                return Ok(existing.listener.clone());
            }
            return Err(CloudError::AlreadyExists {
                what: "listener (DuplicateListener)",
                id: format!("{}:{}", req.load_balancer_arn, req.port),
            });
        }
        if group.vpc_id != lb.vpc_id {
            return Err(CloudError::InvalidParameter(format!(
                "InvalidConfigurationRequest: target group {} is in {}, the load balancer in {}",
                group.arn, group.vpc_id, lb.vpc_id
            )));
        }
        if group.target_type == TargetType::Alb {
            // Only a network load balancer's TCP listener forwards to an ALB.
            if lb.kind != LoadBalancerKind::Network || req.protocol != Protocol::Tcp {
                return Err(CloudError::InvalidParameter(format!(
                    "IncompatibleProtocols: a target group of type alb takes a TCP listener of \
                     a network load balancer, not {} on a {} load balancer",
                    req.protocol,
                    lb.kind.as_str()
                )));
            }
            // One load balancer per target group of type alb, and at most two NLBs per ALB.
            if group.load_balancer_arns.iter().any(|a| a != &lb.arn) {
                return Err(CloudError::InvalidParameter(format!(
                    "TargetGroupAssociationLimit: target group {} is already used by {}",
                    group.arn,
                    group.load_balancer_arns.join(", ")
                )));
            }
            for alb in &targets {
                let mut reaching = nlbs_reaching(&st, alb);
                reaching.insert(lb.arn.clone());
                if reaching.len() > MAX_NLBS_PER_ALB {
                    return Err(CloudError::InvalidParameter(format!(
                        "TargetGroupAssociationLimit: application load balancer {alb} is \
                         already the target of {MAX_NLBS_PER_ALB} network load balancers"
                    )));
                }
            }
        }
        let name_and_id = lb
            .arn
            .split_once(":loadbalancer/")
            .map_or("", |(_, rest)| rest)
            .to_string();
        let arn = self.elb_arn(&mut st, &format!("listener/{name_and_id}"));
        let listener = Listener {
            arn: arn.clone(),
            load_balancer_arn: lb.arn.clone(),
            port: req.port,
            protocol: req.protocol.clone(),
            target_group_arn: Some(group.arn.clone()),
        };
        if let Some(rec) = st.target_groups.get_mut(&group.arn) {
            if !rec.group.load_balancer_arns.contains(&lb.arn) {
                rec.group.load_balancer_arns.push(lb.arn.clone());
            }
        }
        st.listeners.insert(
            arn,
            ListenerRec {
                listener: listener.clone(),
                owner: self.account.clone(),
                tags: req.tags.clone(),
            },
        );
        Ok(listener)
    }

    pub(super) async fn delete_listener(&self, arn: &str) -> CloudResult<()> {
        let mut st = self.gate(Action::DeleteListener)?;
        let rec = st
            .listeners
            .get(arn)
            .filter(|l| l.owner == self.account)
            .ok_or_else(|| not_found("listener (ListenerNotFound)", arn))?;
        let (lb, group) = (
            rec.listener.load_balancer_arn.clone(),
            rec.listener.target_group_arn.clone(),
        );
        st.listeners.remove(arn);
        // The group stays associated while another listener of the load balancer uses it.
        let still_used = st
            .listeners
            .values()
            .any(|l| l.listener.load_balancer_arn == lb && l.listener.target_group_arn == group);
        if let (false, Some(group)) = (still_used, group) {
            if let Some(g) = st.target_groups.get_mut(&group) {
                g.group.load_balancer_arns.retain(|a| a != &lb);
            }
        }
        Ok(())
    }
}
