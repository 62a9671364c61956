//! The consumer's side of PrivateLink in EC2: the services an account can connect to, and
//! VPC endpoints (interface, gateway, GWLB) with their network interfaces' addresses.

use std::collections::HashMap;

use aws_sdk_ec2::types::{ResourceType, VpcEndpointType};
use pld_cloud::{
    has_tags, state_is, Action, CloudError, CloudResult, CreateEndpoint, Endpoint, EndpointKind,
    ServiceDetail, Tags,
};

use crate::convert::{endpoint_kind, filter, tag_filters, tag_spec, tags_of};
use crate::error;
use crate::AwsCloud;

impl AwsCloud {
    /// Endpoints with their ENI addresses (one DescribeNetworkInterfaces for all of them).
    pub(crate) async fn endpoints_of(
        &self,
        eps: Vec<aws_sdk_ec2::types::VpcEndpoint>,
    ) -> CloudResult<Vec<Endpoint>> {
        // Deleted endpoints linger in describes (and their interfaces are gone).
        let eps: Vec<_> = eps
            .into_iter()
            .filter(|e| !e.state().is_some_and(|s| state_is(s.as_str(), "deleted")))
            .collect();
        let eni_ids: Vec<String> = eps
            .iter()
            .flat_map(|e| e.network_interface_ids().to_vec())
            .collect();
        let mut addresses: HashMap<String, String> = HashMap::new();
        if !eni_ids.is_empty() {
            match self
                .ec2
                .describe_network_interfaces()
                .set_network_interface_ids(Some(eni_ids))
                .send()
                .await
                .map_err(|e| error::map(Action::DescribeNetworkInterfaces, e))
            {
                Ok(out) => {
                    for ni in out.network_interfaces() {
                        if let (Some(id), Some(ip)) =
                            (ni.network_interface_id(), ni.private_ip_address())
                        {
                            addresses.insert(id.to_string(), ip.to_string());
                        }
                    }
                }
                // An endpoint being deleted takes its interfaces with it: no addresses then.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(eps.iter().map(|e| endpoint(e, &addresses)).collect())
    }

    pub(crate) async fn describe_service(&self, service_name: &str) -> CloudResult<ServiceDetail> {
        // A service of another region is found only when asked there (ServiceRegions).
        let remote = pld_cloud::service_region(service_name)
            .filter(|r| *r != self.region)
            .map(|r| vec![r.to_string()]);
        let out = self
            .ec2
            .describe_vpc_endpoint_services()
            .service_names(service_name)
            .set_service_regions(remote)
            .send()
            .await
            .map_err(|e| error::map(Action::DescribeVpcEndpointServices, e))?;
        let detail = out
            .service_details()
            .iter()
            .find(|d| d.service_name() == Some(service_name))
            .ok_or_else(|| CloudError::NotFound {
                what: "endpoint service",
                id: service_name.to_string(),
            })?;
        let kind = EndpointKind::from_aws(
            detail
                .service_type()
                .first()
                .and_then(|t| t.service_type())
                .map(|t| t.as_str()),
        );
        Ok(ServiceDetail {
            name: service_name.to_string(),
            kind,
            az_ids: self
                .az_ids_of(detail.availability_zone_ids(), detail.availability_zones())
                .await?,
            owner: detail.owner().unwrap_or_default().to_string(),
            acceptance_required: detail.acceptance_required().unwrap_or(false),
        })
    }

    pub(crate) async fn create_endpoint(&self, req: &CreateEndpoint) -> CloudResult<Endpoint> {
        let out = self
            .ec2
            .create_vpc_endpoint()
            .vpc_endpoint_type(VpcEndpointType::from(req.kind.as_str()))
            .vpc_id(&req.vpc_id)
            .service_name(&req.service_name)
            .set_subnet_ids((!req.subnet_ids.is_empty()).then(|| req.subnet_ids.clone()))
            .set_security_group_ids(
                (!req.security_group_ids.is_empty()).then(|| req.security_group_ids.clone()),
            )
            .set_route_table_ids(
                (!req.route_table_ids.is_empty()).then(|| req.route_table_ids.clone()),
            )
            .client_token(&req.client_token)
            .tag_specifications(tag_spec(ResourceType::VpcEndpoint, &req.tags))
            .set_service_region(req.service_region.clone())
            .send()
            .await
            .map_err(|e| {
                match (
                    error::map(Action::CreateVpcEndpoint, e),
                    &req.service_region,
                ) {
                    // AWS checks the permission-only vpce:AllowMultiRegion too: say so.
                    (CloudError::Unauthorized(why), Some(r)) => CloudError::Unauthorized(format!(
                        "{why} (an endpoint to a service in {r} also needs {})",
                        Action::AllowMultiRegion.iam_action()
                    )),
                    (other, _) => other,
                }
            })?;
        let ep = out
            .vpc_endpoint()
            .cloned()
            .ok_or_else(|| CloudError::Client("CreateVpcEndpoint returned no endpoint".into()))?;
        if ep.state().is_some_and(|s| state_is(s.as_str(), "deleted")) {
            // The token's endpoint, deleted since (AWS answers a token it has seen with what
            // it made then): returned as it is, so the caller moves on to another token.
            return Ok(endpoint(&ep, &HashMap::new()));
        }
        let mut eps = self.endpoints_of(vec![ep]).await?;
        eps.pop()
            .ok_or_else(|| CloudError::Client("CreateVpcEndpoint returned no endpoint".into()))
    }

    pub(crate) async fn modify_endpoint_subnets(
        &self,
        endpoint_id: &str,
        add: &[String],
        remove: &[String],
    ) -> CloudResult<()> {
        self.ec2
            .modify_vpc_endpoint()
            .vpc_endpoint_id(endpoint_id)
            .set_add_subnet_ids((!add.is_empty()).then(|| add.to_vec()))
            .set_remove_subnet_ids((!remove.is_empty()).then(|| remove.to_vec()))
            .send()
            .await
            .map_err(|e| error::map(Action::ModifyVpcEndpoint, e))?;
        Ok(())
    }

    pub(crate) async fn describe_endpoints(
        &self,
        vpc_id: &str,
        tags: &Tags,
    ) -> CloudResult<Vec<Endpoint>> {
        let mut filters = tag_filters(tags);
        filters.push(filter("vpc-id", vpc_id));
        let mut pages = self
            .ec2
            .describe_vpc_endpoints()
            .set_filters(Some(filters))
            .into_paginator()
            .send();
        let mut raw = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error::map(Action::DescribeVpcEndpoints, e))?;
            raw.extend(page.vpc_endpoints().iter().cloned());
        }
        let eps = self.endpoints_of(raw).await?;
        Ok(eps
            .into_iter()
            .filter(|e| e.vpc_id == vpc_id && has_tags(&e.tags, tags))
            .collect())
    }

    pub(crate) async fn delete_endpoint(&self, endpoint_id: &str) -> CloudResult<()> {
        let out = self
            .ec2
            .delete_vpc_endpoints()
            .vpc_endpoint_ids(endpoint_id)
            .send()
            .await
            .map_err(|e| error::map(Action::DeleteVpcEndpoints, e))?;
        error::batch(Action::DeleteVpcEndpoints, out.unsuccessful(), endpoint_id)
    }
}

/// An SDK endpoint as pld's, its interfaces' addresses looked up in `addresses`.
fn endpoint(e: &aws_sdk_ec2::types::VpcEndpoint, addresses: &HashMap<String, String>) -> Endpoint {
    Endpoint {
        id: e.vpc_endpoint_id().unwrap_or_default().to_string(),
        vpc_id: e.vpc_id().unwrap_or_default().to_string(),
        service_name: e.service_name().unwrap_or_default().to_string(),
        kind: endpoint_kind(e.vpc_endpoint_type()),
        state: e
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        subnet_ids: e.subnet_ids().to_vec(),
        route_table_ids: e.route_table_ids().to_vec(),
        dns_names: e
            .dns_entries()
            .iter()
            .filter_map(|d| d.dns_name().map(str::to_string))
            .collect(),
        addresses: e
            .network_interface_ids()
            .iter()
            .filter_map(|id| addresses.get(id).cloned())
            .collect(),
        tags: tags_of(e.tags()),
    }
}
