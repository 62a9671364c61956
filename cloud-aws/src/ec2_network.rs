//! EC2's view of the network an agent works in: its VPC, subnets and route tables.

use pld_cloud::{Action, CloudError, CloudResult, Route, RouteTable, Subnet, Vpc};

use crate::convert::filter;
use crate::error;
use crate::AwsCloud;

impl AwsCloud {
    pub(crate) async fn describe_vpc(&self, vpc_id: &str) -> CloudResult<Vpc> {
        let out = self
            .ec2
            .describe_vpcs()
            .vpc_ids(vpc_id)
            .send()
            .await
            .map_err(|e| error::map(Action::DescribeVpcs, e))?;
        let vpc = out.vpcs().first().ok_or_else(|| CloudError::NotFound {
            what: "VPC",
            id: vpc_id.to_string(),
        })?;
        let cidr = vpc.cidr_block().unwrap_or_default().to_string();
        // Blocks being disassociated or refused are not the VPC's any more (or yet).
        let associated = |state: Option<&str>| state.is_some_and(|s| s == "associated");
        Ok(Vpc {
            id: vpc.vpc_id().unwrap_or_default().to_string(),
            account: vpc.owner_id().unwrap_or_default().to_string(),
            secondary_cidrs: vpc
                .cidr_block_association_set()
                .iter()
                .filter(|a| {
                    associated(
                        a.cidr_block_state()
                            .and_then(|s| s.state())
                            .map(|s| s.as_str()),
                    )
                })
                .filter_map(|a| a.cidr_block())
                .filter(|c| *c != cidr)
                .map(str::to_string)
                .collect(),
            ipv6_cidrs: vpc
                .ipv6_cidr_block_association_set()
                .iter()
                .filter(|a| {
                    associated(
                        a.ipv6_cidr_block_state()
                            .and_then(|s| s.state())
                            .map(|s| s.as_str()),
                    )
                })
                .filter_map(|a| a.ipv6_cidr_block())
                .map(str::to_string)
                .collect(),
            cidr,
        })
    }

    pub(crate) async fn describe_subnets(&self, vpc_id: &str) -> CloudResult<Vec<Subnet>> {
        let mut pages = self
            .ec2
            .describe_subnets()
            .filters(filter("vpc-id", vpc_id))
            .into_paginator()
            .send();
        let mut subnets = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error::map(Action::DescribeSubnets, e))?;
            for s in page.subnets() {
                subnets.push(Subnet {
                    id: s.subnet_id().unwrap_or_default().to_string(),
                    vpc_id: s.vpc_id().unwrap_or_default().to_string(),
                    az_id: s.availability_zone_id().unwrap_or_default().to_string(),
                    az_name: s.availability_zone().unwrap_or_default().to_string(),
                    cidr: s.cidr_block().unwrap_or_default().to_string(),
                    ipv6_cidr: s
                        .ipv6_cidr_block_association_set()
                        .iter()
                        .find(|a| {
                            a.ipv6_cidr_block_state()
                                .and_then(|s| s.state())
                                .is_some_and(|s| s.as_str() == "associated")
                        })
                        .and_then(|a| a.ipv6_cidr_block())
                        .map(str::to_string),
                });
            }
        }
        Ok(subnets)
    }

    pub(crate) async fn describe_route_tables(&self, vpc_id: &str) -> CloudResult<Vec<RouteTable>> {
        let mut pages = self
            .ec2
            .describe_route_tables()
            .filters(filter("vpc-id", vpc_id))
            .into_paginator()
            .send();
        let mut tables = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error::map(Action::DescribeRouteTables, e))?;
            for t in page.route_tables() {
                tables.push(RouteTable {
                    id: t.route_table_id().unwrap_or_default().to_string(),
                    vpc_id: t.vpc_id().unwrap_or_default().to_string(),
                    routes: t
                        .routes()
                        .iter()
                        .map(|r| Route {
                            destination: r
                                .destination_cidr_block()
                                .or(r.destination_prefix_list_id())
                                .unwrap_or_default()
                                .to_string(),
                            target: r.gateway_id().unwrap_or_default().to_string(),
                        })
                        .collect(),
                    main: t.associations().iter().any(|a| a.main() == Some(true)),
                    subnet_ids: t
                        .associations()
                        .iter()
                        .filter_map(|a| a.subnet_id())
                        .map(str::to_string)
                        .collect(),
                });
            }
        }
        Ok(tables)
    }
}
