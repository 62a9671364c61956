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
        Ok(Vpc {
            id: vpc.vpc_id().unwrap_or_default().to_string(),
            account: vpc.owner_id().unwrap_or_default().to_string(),
            cidr: vpc.cidr_block().unwrap_or_default().to_string(),
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
                    cidr: s.cidr_block().unwrap_or_default().to_string(),
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
                });
            }
        }
        Ok(tables)
    }
}
