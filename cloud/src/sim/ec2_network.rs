//! DescribeVpcs, DescribeSubnets and DescribeRouteTables over the region's VPCs.

use super::cloud::SimCloud;
use super::ids::not_found;
use crate::types::{RouteTable, Subnet, Vpc};
use crate::{Action, CloudResult};

impl SimCloud {
    pub(super) async fn describe_vpc(&self, vpc_id: &str) -> CloudResult<Vpc> {
        let st = self.gate(Action::DescribeVpcs)?;
        st.vpcs
            .get(vpc_id)
            .filter(|v| v.account == self.account)
            .cloned()
            .ok_or_else(|| not_found("VPC", vpc_id))
    }

    pub(super) async fn describe_subnets(&self, vpc_id: &str) -> CloudResult<Vec<Subnet>> {
        let st = self.gate(Action::DescribeSubnets)?;
        Ok(st
            .subnets
            .values()
            .filter(|s| s.vpc_id == vpc_id)
            .cloned()
            .collect())
    }

    pub(super) async fn describe_route_tables(&self, vpc_id: &str) -> CloudResult<Vec<RouteTable>> {
        let st = self.gate(Action::DescribeRouteTables)?;
        Ok(st
            .route_tables
            .values()
            .filter(|r| r.vpc_id == vpc_id)
            .cloned()
            .collect())
    }
}
