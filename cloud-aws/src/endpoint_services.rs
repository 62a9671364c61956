//! The provider's side of PrivateLink in EC2: endpoint service configurations, their
//! permissions (allowed principals) and the connections consumers' endpoints make to them.

use aws_sdk_ec2::types::ResourceType;
use pld_cloud::{
    has_tags, state_is, Action, CloudError, CloudResult, Connection, CreateEndpointService,
    EndpointService, SupportedRegion, Tags,
};

use crate::convert::{connection_of, filter, tag_filters, tag_spec, tags_of};

/// A refusal of a call that names other regions: AWS checks the permission-only
/// `vpce:AllowMultiRegion` besides the call's own action, and its message may name either, so
/// the error says both.
fn multi_region(e: CloudError, regions: &[String]) -> CloudError {
    match e {
        CloudError::Unauthorized(why) if !regions.is_empty() => CloudError::Unauthorized(format!(
            "{why} (naming other regions, {}, also needs {})",
            regions.join(", "),
            Action::AllowMultiRegion.iam_action()
        )),
        other => other,
    }
}
use crate::error;
use crate::AwsCloud;

impl AwsCloud {
    pub(crate) async fn service_of(
        &self,
        c: &aws_sdk_ec2::types::ServiceConfiguration,
    ) -> CloudResult<EndpointService> {
        Ok(EndpointService {
            id: c.service_id().unwrap_or_default().to_string(),
            name: c.service_name().unwrap_or_default().to_string(),
            state: c
                .service_state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            acceptance_required: c.acceptance_required().unwrap_or(false),
            // In the shape the catalog names them: an entry of NetworkLoadBalancerArns is an
            // NLB, whose ARN AWS spells `net/`, and one of GatewayLoadBalancerArns a GWLB
            // (`gwy/`); moto spells both `app/`, and a service would then never find its own
            // endpoint service by its load balancer.
            load_balancer_arns: c
                .network_load_balancer_arns()
                .iter()
                .map(|a| a.replace(":loadbalancer/app/", ":loadbalancer/net/"))
                .chain(
                    c.gateway_load_balancer_arns()
                        .iter()
                        .map(|a| a.replace(":loadbalancer/app/", ":loadbalancer/gwy/")),
                )
                .collect(),
            az_ids: self
                .az_ids_of(c.availability_zone_ids(), c.availability_zones())
                .await?,
            // AWS lists the service's own region too; moto lists only those it was given,
            // each Available. Both read the same through `plan::regions::offered`.
            supported_regions: c
                .supported_regions()
                .iter()
                .filter_map(|r| {
                    Some(SupportedRegion {
                        region: r.region()?.to_string(),
                        state: r.service_state().unwrap_or_default().to_string(),
                    })
                })
                .collect(),
            tags: tags_of(c.tags()),
        })
    }

    pub(crate) async fn create_endpoint_service(
        &self,
        req: &CreateEndpointService,
    ) -> CloudResult<EndpointService> {
        let lb_arn = self
            .load_balancer_arn_as_reported(&req.load_balancer_arn)
            .await?;
        let mut call = self
            .ec2
            .create_vpc_endpoint_service_configuration()
            .acceptance_required(req.acceptance_required)
            .client_token(&req.client_token)
            .tag_specifications(tag_spec(ResourceType::VpcEndpointService, &req.tags))
            .set_supported_regions(
                (!req.supported_regions.is_empty()).then(|| req.supported_regions.clone()),
            )
            .set_private_dns_name(req.private_dns_name.clone());
        call = if req.load_balancer_arn.contains(":loadbalancer/gwy/") {
            call.gateway_load_balancer_arns(&lb_arn)
        } else {
            call.network_load_balancer_arns(&lb_arn)
        };
        let out = call.send().await.map_err(|e| {
            multi_region(
                error::map(Action::CreateVpcEndpointServiceConfiguration, e),
                &req.supported_regions,
            )
        })?;
        let config = out.service_configuration().ok_or_else(|| {
            CloudError::Client(
                "CreateVpcEndpointServiceConfiguration returned no configuration".into(),
            )
        })?;
        self.service_of(config).await
    }

    pub(crate) async fn describe_endpoint_services(
        &self,
        tags: &Tags,
    ) -> CloudResult<Vec<EndpointService>> {
        let mut pages = self
            .ec2
            .describe_vpc_endpoint_service_configurations()
            .set_filters(Some(tag_filters(tags)))
            .into_paginator()
            .send();
        let mut services = Vec::new();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| error::map(Action::DescribeVpcEndpointServiceConfigurations, e))?;
            for c in page.service_configurations() {
                let s = self.service_of(c).await?;
                // Emulators may ignore tag filters; never act on what we do not own.
                if has_tags(&s.tags, tags) && !state_is(&s.state, "Deleted") {
                    services.push(s);
                }
            }
        }
        Ok(services)
    }

    pub(crate) async fn modify_supported_regions(
        &self,
        service_id: &str,
        add: &[String],
        remove: &[String],
    ) -> CloudResult<()> {
        self.ec2
            .modify_vpc_endpoint_service_configuration()
            .service_id(service_id)
            .set_add_supported_regions((!add.is_empty()).then(|| add.to_vec()))
            .set_remove_supported_regions((!remove.is_empty()).then(|| remove.to_vec()))
            .send()
            .await
            .map_err(|e| {
                let named: Vec<String> = add.iter().chain(remove).cloned().collect();
                multi_region(
                    error::map(Action::ModifyVpcEndpointServiceConfiguration, e),
                    &named,
                )
            })?;
        Ok(())
    }

    pub(crate) async fn set_acceptance_required(
        &self,
        service_id: &str,
        required: bool,
    ) -> CloudResult<()> {
        self.ec2
            .modify_vpc_endpoint_service_configuration()
            .service_id(service_id)
            .acceptance_required(required)
            .send()
            .await
            .map_err(|e| error::map(Action::ModifyVpcEndpointServiceConfiguration, e))?;
        Ok(())
    }

    pub(crate) async fn allowed_principals(&self, service_id: &str) -> CloudResult<Vec<String>> {
        let mut pages = self
            .ec2
            .describe_vpc_endpoint_service_permissions()
            .service_id(service_id)
            .into_paginator()
            .send();
        let mut principals = Vec::new();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| error::map(Action::DescribeVpcEndpointServicePermissions, e))?;
            principals.extend(
                page.allowed_principals()
                    .iter()
                    .filter_map(|p| p.principal().map(str::to_string)),
            );
        }
        Ok(principals)
    }

    pub(crate) async fn modify_allowed_principals(
        &self,
        service_id: &str,
        add: &[String],
        remove: &[String],
    ) -> CloudResult<()> {
        self.ec2
            .modify_vpc_endpoint_service_permissions()
            .service_id(service_id)
            .set_add_allowed_principals((!add.is_empty()).then(|| add.to_vec()))
            .set_remove_allowed_principals((!remove.is_empty()).then(|| remove.to_vec()))
            .send()
            .await
            .map_err(|e| error::map(Action::ModifyVpcEndpointServicePermissions, e))?;
        Ok(())
    }

    pub(crate) async fn delete_endpoint_service(&self, service_id: &str) -> CloudResult<()> {
        let out = self
            .ec2
            .delete_vpc_endpoint_service_configurations()
            .service_ids(service_id)
            .send()
            .await
            .map_err(|e| error::map(Action::DeleteVpcEndpointServiceConfigurations, e))?;
        error::batch(
            Action::DeleteVpcEndpointServiceConfigurations,
            out.unsuccessful(),
            service_id,
        )
    }

    pub(crate) async fn describe_connections(
        &self,
        service_id: Option<&str>,
    ) -> CloudResult<Vec<Connection>> {
        let mut pages = self
            .ec2
            .describe_vpc_endpoint_connections()
            .set_filters(service_id.map(|id| vec![filter("service-id", id)]))
            .into_paginator()
            .send();
        let mut connections = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error::map(Action::DescribeVpcEndpointConnections, e))?;
            connections.extend(page.vpc_endpoint_connections().iter().map(connection_of));
        }
        Ok(connections)
    }

    pub(crate) async fn accept_connections(
        &self,
        service_id: &str,
        endpoint_ids: &[String],
    ) -> CloudResult<()> {
        let out = self
            .ec2
            .accept_vpc_endpoint_connections()
            .service_id(service_id)
            .set_vpc_endpoint_ids(Some(endpoint_ids.to_vec()))
            .send()
            .await
            .map_err(|e| error::map(Action::AcceptVpcEndpointConnections, e))?;
        error::batch(
            Action::AcceptVpcEndpointConnections,
            out.unsuccessful(),
            service_id,
        )
    }

    pub(crate) async fn reject_connections(
        &self,
        service_id: &str,
        endpoint_ids: &[String],
    ) -> CloudResult<()> {
        let out = self
            .ec2
            .reject_vpc_endpoint_connections()
            .service_id(service_id)
            .set_vpc_endpoint_ids(Some(endpoint_ids.to_vec()))
            .send()
            .await
            .map_err(|e| error::map(Action::RejectVpcEndpointConnections, e))?;
        error::batch(
            Action::RejectVpcEndpointConnections,
            out.unsuccessful(),
            service_id,
        )
    }
}
