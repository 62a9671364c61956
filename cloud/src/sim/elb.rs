//! DescribeLoadBalancers over the load balancers a test or `pld dev` added.

use super::cloud::SimCloud;
use super::ids::not_found;
use crate::types::LoadBalancer;
use crate::{Action, CloudResult};

impl SimCloud {
    pub(super) async fn describe_load_balancer(&self, arn: &str) -> CloudResult<LoadBalancer> {
        let st = self.gate(Action::DescribeLoadBalancers)?;
        st.lbs
            .get(arn)
            .filter(|l| l.owner == self.account)
            .map(|l| l.lb.clone())
            .ok_or_else(|| not_found("load balancer", arn))
    }
}
