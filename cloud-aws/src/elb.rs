//! ELBv2: the load balancers behind endpoint services, and their listeners' ports.

use pld_cloud::{Action, CloudError, CloudResult, LoadBalancer, LoadBalancerKind};

use crate::error;
use crate::AwsCloud;

impl AwsCloud {
    /// The load balancer's ARN exactly as ELBv2 reports it. The catalog holds the documented
    /// shape (`loadbalancer/net/NAME/ID`); an endpoint that spells its ARNs otherwise (moto writes
    /// `app/` for NLBs) is matched by name and type instead.
    pub(crate) async fn load_balancer_arn_as_reported(&self, arn: &str) -> CloudResult<String> {
        match self
            .elb
            .describe_load_balancers()
            .load_balancer_arns(arn)
            .send()
            .await
        {
            Ok(_) => return Ok(arn.to_string()),
            Err(e) => {
                let e = error::map(Action::DescribeLoadBalancers, e);
                if !e.is_not_found() {
                    return Err(e);
                }
            }
        }
        let name = arn.rsplit('/').nth(1).unwrap_or_default();
        let out = self
            .elb
            .describe_load_balancers()
            .names(name)
            .send()
            .await
            .map_err(|e| error::map(Action::DescribeLoadBalancers, e))?;
        out.load_balancers()
            .iter()
            .filter(|lb| {
                lb.r#type()
                    .is_some_and(|t| matches!(t.as_str(), "network" | "gateway"))
            })
            .find_map(|lb| lb.load_balancer_arn().map(str::to_string))
            .ok_or_else(|| CloudError::NotFound {
                what: "load balancer",
                id: arn.to_string(),
            })
    }

    pub(crate) async fn describe_load_balancer(&self, arn: &str) -> CloudResult<LoadBalancer> {
        let out = self
            .elb
            .describe_load_balancers()
            .load_balancer_arns(arn)
            .send()
            .await
            .map_err(|e| error::map(Action::DescribeLoadBalancers, e))?;
        let lb = out
            .load_balancers()
            .first()
            .ok_or_else(|| CloudError::NotFound {
                what: "load balancer",
                id: arn.to_string(),
            })?;
        let kind = match lb.r#type().map(|t| t.as_str().to_ascii_lowercase()) {
            Some(t) if t == "gateway" => LoadBalancerKind::Gateway,
            _ => LoadBalancerKind::Network,
        };
        let names: Vec<String> = lb
            .availability_zones()
            .iter()
            .filter_map(|z| z.zone_name().map(str::to_string))
            .collect();
        let listeners = self
            .elb
            .describe_listeners()
            .load_balancer_arn(arn)
            .send()
            .await
            .map_err(|e| error::map(Action::DescribeListeners, e))?;
        Ok(LoadBalancer {
            arn: arn.to_string(),
            kind,
            vpc_id: lb.vpc_id().unwrap_or_default().to_string(),
            az_ids: self.az_ids_of(&[], &names).await?,
            ports: listeners
                .listeners()
                .iter()
                .filter_map(|l| l.port().and_then(|p| u16::try_from(p).ok()))
                .collect(),
        })
    }
}
