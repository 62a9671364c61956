//! DescribeVpcs, DescribeSubnets and DescribeRouteTables over the region's VPCs.

use super::cloud::SimCloud;
use super::ids::not_found;
use super::SimRegion;
use crate::types::{Route, RouteTable, Subnet, Vpc};
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

impl SimRegion {
    /// Associates another CIDR block with a VPC, as its owner would with
    /// AssociateVpcCidrBlock (IPv4 or IPv6, told apart by the block), with the local route
    /// the main route table gains for it. `None` when the VPC does not exist.
    pub fn add_vpc_cidr(&self, vpc_id: &str, cidr: &str) -> Option<Vpc> {
        let mut st = self.state();
        let vpc = st.vpcs.get_mut(vpc_id)?;
        if cidr.contains(':') {
            vpc.ipv6_cidrs.push(cidr.to_string());
        } else {
            vpc.secondary_cidrs.push(cidr.to_string());
        }
        let vpc = vpc.clone();
        if let Some(main) = st
            .route_tables
            .values_mut()
            .find(|t| t.vpc_id == vpc_id && t.main)
        {
            main.routes.push(Route {
                destination: cidr.to_string(),
                target: "local".into(),
            });
        }
        Some(vpc)
    }
}
