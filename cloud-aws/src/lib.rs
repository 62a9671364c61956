//! [`Cloud`] on the AWS SDK: EC2 (VPCs, endpoint services, endpoints), ELBv2 (load balancers)
//! and Route 53 (private hosted zones).
//!
//! - Credentials from aws-config's default chain (environment, profile, web identity, instance
//!   metadata), optionally assuming a role (`assume_role_arn`) for cross-account work.
//! - `endpoint_url` sends every call to another endpoint (moto, or VPC endpoints for hosts
//!   without internet access).
//! - The SDK's adaptive retry mode; pagination on every list and describe; states compared
//!   ignoring case (the wire says `available`, the SDK enum `Available`); AWS error codes mapped
//!   to [`CloudError`] in [`error`].
//! - AZ IDs are used throughout; when a response carries only AZ names they are translated with
//!   DescribeAvailabilityZones, which differ per account.

pub mod error;
#[cfg(feature = "test-support")]
pub mod testing;

use std::collections::HashMap;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification, VpcEndpointType};
use aws_sdk_route53::types::{
    Change, ChangeAction as R53Action, ChangeBatch, HostedZoneConfig, ResourceRecord,
    ResourceRecordSet, RrType, VpcRegion,
};
use pld_cloud::*;
use tokio::sync::OnceCell;

/// How to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    pub region: String,
    /// Send every call here instead of AWS's public endpoints.
    pub endpoint_url: Option<String>,
    /// Assume this role for every call.
    pub assume_role_arn: Option<String>,
}

/// One account's view of one region, through the SDK.
pub struct AwsCloud {
    account: String,
    region: String,
    ec2: aws_sdk_ec2::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    r53: aws_sdk_route53::Client,
    az_ids: OnceCell<HashMap<String, String>>,
}

fn tags_of(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

fn tag_spec(kind: ResourceType, tags: &Tags) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

fn tag_filters(tags: &Tags) -> Vec<Filter> {
    tags.iter()
        .map(|(k, v)| Filter::builder().name(format!("tag:{k}")).values(v).build())
        .collect()
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// A connection as the provider sees it. The state keeps AWS's wire spelling
/// (`pendingAcceptance`, `available`): the SDK enum does not know every value.
fn connection_of(c: &aws_sdk_ec2::types::VpcEndpointConnection) -> Connection {
    Connection {
        service_id: c.service_id().unwrap_or_default().to_string(),
        endpoint_id: c.vpc_endpoint_id().unwrap_or_default().to_string(),
        owner: c.vpc_endpoint_owner().unwrap_or_default().to_string(),
        state: c
            .vpc_endpoint_state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
    }
}

fn strip_zone(id: &str) -> String {
    id.trim_start_matches("/hostedzone/").to_string()
}

fn endpoint_kind(t: Option<&VpcEndpointType>) -> EndpointKind {
    match t.map(|t| t.as_str().to_ascii_lowercase()) {
        Some(t) if t == "gateway" => EndpointKind::Gateway,
        Some(t) if t == "gatewayloadbalancer" => EndpointKind::GatewayLoadBalancer,
        _ => EndpointKind::Interface,
    }
}

impl AwsCloud {
    /// Clients for `account` with `settings`.
    ///
    /// # Errors
    /// When the region is empty.
    pub async fn connect(account: &str, settings: &AwsSettings) -> CloudResult<Self> {
        if settings.region.is_empty() {
            return Err(CloudError::Client("region is required".into()));
        }
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .retry_config(RetryConfig::adaptive().with_max_attempts(4));
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let mut config = loader.load().await;
        if let Some(role) = &settings.assume_role_arn {
            let provider = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name("pld-agent")
                .configure(&config)
                .build()
                .await;
            config = config
                .into_builder()
                .credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(provider),
                )
                .build();
        }
        Ok(AwsCloud {
            account: account.to_string(),
            region: settings.region.clone(),
            ec2: aws_sdk_ec2::Client::new(&config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
            r53: aws_sdk_route53::Client::new(&config),
            az_ids: OnceCell::new(),
        })
    }

    /// The load balancer's ARN exactly as ELBv2 reports it. The catalog holds the documented
    /// shape (`loadbalancer/net/NAME/ID`); an endpoint that spells its ARNs otherwise (moto writes
    /// `app/` for NLBs) is matched by name and type instead.
    async fn load_balancer_arn_as_reported(&self, arn: &str) -> CloudResult<String> {
        match self
            .elb
            .describe_load_balancers()
            .load_balancer_arns(arn)
            .send()
            .await
        {
            Ok(_) => return Ok(arn.to_string()),
            Err(e) => {
                let e = error::map("DescribeLoadBalancers", e);
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
            .map_err(|e| error::map("DescribeLoadBalancers", e))?;
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

    /// A backend over clients built elsewhere (custom HTTP settings, interceptors, tests).
    pub fn with_clients(
        account: &str,
        region: &str,
        ec2: aws_sdk_ec2::Client,
        elb: aws_sdk_elasticloadbalancingv2::Client,
        r53: aws_sdk_route53::Client,
    ) -> Self {
        AwsCloud {
            account: account.to_string(),
            region: region.to_string(),
            ec2,
            elb,
            r53,
            az_ids: OnceCell::new(),
        }
    }

    /// AZ name → AZ ID for this account.
    async fn az_map(&self) -> CloudResult<&HashMap<String, String>> {
        self.az_ids
            .get_or_try_init(|| async {
                let out = self
                    .ec2
                    .describe_availability_zones()
                    .send()
                    .await
                    .map_err(|e| error::map("DescribeAvailabilityZones", e))?;
                Ok(out
                    .availability_zones()
                    .iter()
                    .filter_map(|z| Some((z.zone_name()?.to_string(), z.zone_id()?.to_string())))
                    .collect())
            })
            .await
    }

    /// AZ IDs from a response that may carry IDs, names, or both.
    async fn az_ids_of(&self, ids: &[String], names: &[String]) -> CloudResult<Vec<String>> {
        if !ids.is_empty() {
            return Ok(ids.to_vec());
        }
        let map = self.az_map().await?;
        Ok(names
            .iter()
            .map(|n| map.get(n).cloned().unwrap_or_else(|| n.clone()))
            .collect())
    }

    async fn service_of(
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
            load_balancer_arns: c
                .network_load_balancer_arns()
                .iter()
                .chain(c.gateway_load_balancer_arns())
                .cloned()
                .collect(),
            az_ids: self
                .az_ids_of(c.availability_zone_ids(), c.availability_zones())
                .await?,
            tags: tags_of(c.tags()),
        })
    }

    /// Endpoints with their ENI addresses (one DescribeNetworkInterfaces for all of them).
    async fn endpoints_of(
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
                .map_err(|e| error::map("DescribeNetworkInterfaces", e))
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
        Ok(eps
            .into_iter()
            .filter(|e| !e.state().is_some_and(|s| state_is(s.as_str(), "deleted")))
            .map(|e| Endpoint {
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
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl Cloud for AwsCloud {
    fn account(&self) -> &str {
        &self.account
    }

    fn region(&self) -> &str {
        &self.region
    }

    async fn describe_vpc(&self, vpc_id: &str) -> CloudResult<Vpc> {
        let out = self
            .ec2
            .describe_vpcs()
            .vpc_ids(vpc_id)
            .send()
            .await
            .map_err(|e| error::map("DescribeVpcs", e))?;
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

    async fn describe_subnets(&self, vpc_id: &str) -> CloudResult<Vec<Subnet>> {
        let mut pages = self
            .ec2
            .describe_subnets()
            .filters(filter("vpc-id", vpc_id))
            .into_paginator()
            .send();
        let mut subnets = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error::map("DescribeSubnets", e))?;
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

    async fn describe_route_tables(&self, vpc_id: &str) -> CloudResult<Vec<RouteTable>> {
        let mut pages = self
            .ec2
            .describe_route_tables()
            .filters(filter("vpc-id", vpc_id))
            .into_paginator()
            .send();
        let mut tables = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error::map("DescribeRouteTables", e))?;
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

    async fn describe_load_balancer(&self, arn: &str) -> CloudResult<LoadBalancer> {
        let out = self
            .elb
            .describe_load_balancers()
            .load_balancer_arns(arn)
            .send()
            .await
            .map_err(|e| error::map("DescribeLoadBalancers", e))?;
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
            .map_err(|e| error::map("DescribeListeners", e))?;
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

    async fn create_endpoint_service(
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
        let out = call
            .send()
            .await
            .map_err(|e| error::map("CreateVpcEndpointServiceConfiguration", e))?;
        let config = out.service_configuration().ok_or_else(|| {
            CloudError::Client(
                "CreateVpcEndpointServiceConfiguration returned no configuration".into(),
            )
        })?;
        self.service_of(config).await
    }

    async fn describe_endpoint_services(&self, tags: &Tags) -> CloudResult<Vec<EndpointService>> {
        let mut pages = self
            .ec2
            .describe_vpc_endpoint_service_configurations()
            .set_filters(Some(tag_filters(tags)))
            .into_paginator()
            .send();
        let mut services = Vec::new();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| error::map("DescribeVpcEndpointServiceConfigurations", e))?;
            for c in page.service_configurations() {
                let s = self.service_of(c).await?;
                // Emulators may ignore tag filters; never act on what we do not own.
                if tags.iter().all(|(k, v)| s.tags.get(k) == Some(v))
                    && !state_is(&s.state, "Deleted")
                {
                    services.push(s);
                }
            }
        }
        Ok(services)
    }

    async fn set_acceptance_required(&self, service_id: &str, required: bool) -> CloudResult<()> {
        self.ec2
            .modify_vpc_endpoint_service_configuration()
            .service_id(service_id)
            .acceptance_required(required)
            .send()
            .await
            .map_err(|e| error::map("ModifyVpcEndpointServiceConfiguration", e))?;
        Ok(())
    }

    async fn allowed_principals(&self, service_id: &str) -> CloudResult<Vec<String>> {
        let mut pages = self
            .ec2
            .describe_vpc_endpoint_service_permissions()
            .service_id(service_id)
            .into_paginator()
            .send();
        let mut principals = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error::map("DescribeVpcEndpointServicePermissions", e))?;
            principals.extend(
                page.allowed_principals()
                    .iter()
                    .filter_map(|p| p.principal().map(str::to_string)),
            );
        }
        Ok(principals)
    }

    async fn modify_allowed_principals(
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
            .map_err(|e| error::map("ModifyVpcEndpointServicePermissions", e))?;
        Ok(())
    }

    async fn delete_endpoint_service(&self, service_id: &str) -> CloudResult<()> {
        let out = self
            .ec2
            .delete_vpc_endpoint_service_configurations()
            .service_ids(service_id)
            .send()
            .await
            .map_err(|e| error::map("DeleteVpcEndpointServiceConfigurations", e))?;
        error::batch(
            "DeleteVpcEndpointServiceConfigurations",
            out.unsuccessful(),
            service_id,
        )
    }

    async fn describe_connections(&self, service_id: Option<&str>) -> CloudResult<Vec<Connection>> {
        let mut pages = self
            .ec2
            .describe_vpc_endpoint_connections()
            .set_filters(service_id.map(|id| vec![filter("service-id", id)]))
            .into_paginator()
            .send();
        let mut connections = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error::map("DescribeVpcEndpointConnections", e))?;
            connections.extend(page.vpc_endpoint_connections().iter().map(connection_of));
        }
        Ok(connections)
    }

    async fn accept_connections(
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
            .map_err(|e| error::map("AcceptVpcEndpointConnections", e))?;
        error::batch(
            "AcceptVpcEndpointConnections",
            out.unsuccessful(),
            service_id,
        )
    }

    async fn reject_connections(
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
            .map_err(|e| error::map("RejectVpcEndpointConnections", e))?;
        error::batch(
            "RejectVpcEndpointConnections",
            out.unsuccessful(),
            service_id,
        )
    }

    async fn describe_service(&self, service_name: &str) -> CloudResult<ServiceDetail> {
        let out = self
            .ec2
            .describe_vpc_endpoint_services()
            .service_names(service_name)
            .send()
            .await
            .map_err(|e| error::map("DescribeVpcEndpointServices", e))?;
        let detail = out
            .service_details()
            .iter()
            .find(|d| d.service_name() == Some(service_name))
            .ok_or_else(|| CloudError::NotFound {
                what: "endpoint service",
                id: service_name.to_string(),
            })?;
        let kind = match detail
            .service_type()
            .first()
            .and_then(|t| t.service_type())
            .map(|t| t.as_str().to_ascii_lowercase())
        {
            Some(t) if t == "gateway" => EndpointKind::Gateway,
            Some(t) if t == "gatewayloadbalancer" => EndpointKind::GatewayLoadBalancer,
            _ => EndpointKind::Interface,
        };
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

    async fn create_endpoint(&self, req: &CreateEndpoint) -> CloudResult<Endpoint> {
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
            .send()
            .await
            .map_err(|e| error::map("CreateVpcEndpoint", e))?;
        let ep = out
            .vpc_endpoint()
            .cloned()
            .ok_or_else(|| CloudError::Client("CreateVpcEndpoint returned no endpoint".into()))?;
        let mut eps = self.endpoints_of(vec![ep]).await?;
        eps.pop().ok_or_else(|| {
            CloudError::Client("CreateVpcEndpoint returned a deleted endpoint".into())
        })
    }

    async fn modify_endpoint_subnets(
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
            .map_err(|e| error::map("ModifyVpcEndpoint", e))?;
        Ok(())
    }

    async fn describe_endpoints(&self, vpc_id: &str, tags: &Tags) -> CloudResult<Vec<Endpoint>> {
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
            let page = page.map_err(|e| error::map("DescribeVpcEndpoints", e))?;
            raw.extend(page.vpc_endpoints().iter().cloned());
        }
        let eps = self.endpoints_of(raw).await?;
        Ok(eps
            .into_iter()
            .filter(|e| e.vpc_id == vpc_id && tags.iter().all(|(k, v)| e.tags.get(k) == Some(v)))
            .collect())
    }

    async fn delete_endpoint(&self, endpoint_id: &str) -> CloudResult<()> {
        let out = self
            .ec2
            .delete_vpc_endpoints()
            .vpc_endpoint_ids(endpoint_id)
            .send()
            .await
            .map_err(|e| error::map("DeleteVpcEndpoints", e))?;
        error::batch("DeleteVpcEndpoints", out.unsuccessful(), endpoint_id)
    }

    async fn hosted_zones_of_vpc(&self, vpc_id: &str) -> CloudResult<Vec<HostedZone>> {
        let mut zones = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .r53
                .list_hosted_zones_by_vpc()
                .vpc_id(vpc_id)
                .vpc_region(VpcRegion::from(self.region.as_str()))
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| error::map("ListHostedZonesByVPC", e))?;
            for z in out.hosted_zone_summaries() {
                zones.push(HostedZone {
                    id: strip_zone(z.hosted_zone_id()),
                    name: fqdn(z.name()),
                    vpc_ids: vec![vpc_id.to_string()],
                    comment: String::new(),
                });
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(zones);
            }
        }
    }

    async fn get_hosted_zone(&self, zone_id: &str) -> CloudResult<HostedZone> {
        let out = self
            .r53
            .get_hosted_zone()
            .id(zone_id)
            .send()
            .await
            .map_err(|e| error::map("GetHostedZone", e))?;
        let zone = out.hosted_zone().ok_or_else(|| CloudError::NotFound {
            what: "hosted zone",
            id: zone_id.to_string(),
        })?;
        Ok(HostedZone {
            id: strip_zone(zone.id()),
            name: fqdn(zone.name()),
            vpc_ids: out
                .vpcs()
                .iter()
                .filter_map(|v| v.vpc_id().map(str::to_string))
                .collect(),
            comment: zone
                .config()
                .and_then(|c| c.comment())
                .unwrap_or_default()
                .to_string(),
        })
    }

    async fn create_hosted_zone(
        &self,
        name: &str,
        vpc_id: &str,
        caller_reference: &str,
        comment: &str,
    ) -> CloudResult<HostedZone> {
        let vpc = aws_sdk_route53::types::Vpc::builder()
            .vpc_id(vpc_id)
            .vpc_region(VpcRegion::from(self.region.as_str()))
            .build();
        let out = self
            .r53
            .create_hosted_zone()
            .name(name)
            .caller_reference(caller_reference)
            .hosted_zone_config(
                HostedZoneConfig::builder()
                    .private_zone(true)
                    .comment(comment)
                    .build(),
            )
            .vpc(vpc)
            .send()
            .await
            .map_err(|e| error::map("CreateHostedZone", e))?;
        let zone = out
            .hosted_zone()
            .ok_or_else(|| CloudError::Client("CreateHostedZone returned no zone".into()))?;
        Ok(HostedZone {
            id: strip_zone(zone.id()),
            name: fqdn(zone.name()),
            vpc_ids: vec![vpc_id.to_string()],
            comment: comment.to_string(),
        })
    }

    async fn associate_vpc(&self, zone_id: &str, vpc_id: &str) -> CloudResult<()> {
        let vpc = aws_sdk_route53::types::Vpc::builder()
            .vpc_id(vpc_id)
            .vpc_region(VpcRegion::from(self.region.as_str()))
            .build();
        self.r53
            .associate_vpc_with_hosted_zone()
            .hosted_zone_id(zone_id)
            .vpc(vpc)
            .send()
            .await
            .map_err(|e| error::map("AssociateVPCWithHostedZone", e))?;
        Ok(())
    }

    async fn delete_hosted_zone(&self, zone_id: &str) -> CloudResult<()> {
        self.r53
            .delete_hosted_zone()
            .id(zone_id)
            .send()
            .await
            .map_err(|e| error::map("DeleteHostedZone", e))?;
        Ok(())
    }

    async fn change_records(&self, zone_id: &str, changes: &[RecordChange]) -> CloudResult<String> {
        let mut batch = Vec::new();
        for c in changes {
            let action = match c.action {
                ChangeAction::Create => R53Action::Create,
                ChangeAction::Upsert => R53Action::Upsert,
                ChangeAction::Delete => R53Action::Delete,
            };
            let records: Result<Vec<ResourceRecord>, _> = c
                .record
                .values
                .iter()
                .map(|v| ResourceRecord::builder().value(v).build())
                .collect();
            let set = ResourceRecordSet::builder()
                .name(&c.record.name)
                .r#type(RrType::from(c.record.kind.as_str()))
                .ttl(i64::from(c.record.ttl))
                .set_resource_records(Some(
                    records.map_err(|e| CloudError::Client(e.to_string()))?,
                ))
                .build()
                .map_err(|e| CloudError::Client(e.to_string()))?;
            batch.push(
                Change::builder()
                    .action(action)
                    .resource_record_set(set)
                    .build()
                    .map_err(|e| CloudError::Client(e.to_string()))?,
            );
        }
        let out = self
            .r53
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(
                ChangeBatch::builder()
                    .set_changes(Some(batch))
                    .build()
                    .map_err(|e| CloudError::Client(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| error::map("ChangeResourceRecordSets", e))?;
        Ok(out
            .change_info()
            .map(|i| i.id().trim_start_matches("/change/").to_string())
            .unwrap_or_default())
    }

    async fn get_change(&self, change_id: &str) -> CloudResult<ChangeStatus> {
        let out = self
            .r53
            .get_change()
            .id(change_id)
            .send()
            .await
            .map_err(|e| error::map("GetChange", e))?;
        Ok(
            match out
                .change_info()
                .map(|i| i.status().as_str().to_ascii_uppercase())
            {
                Some(s) if s == "INSYNC" => ChangeStatus::InSync,
                _ => ChangeStatus::Pending,
            },
        )
    }

    async fn list_records(&self, zone_id: &str) -> CloudResult<Vec<RecordSet>> {
        let mut records = Vec::new();
        let mut start: Option<(String, RrType)> = None;
        loop {
            let (name, kind) = match &start {
                Some((n, k)) => (Some(n.clone()), Some(k.clone())),
                None => (None, None),
            };
            let out = self
                .r53
                .list_resource_record_sets()
                .hosted_zone_id(zone_id)
                .set_start_record_name(name)
                .set_start_record_type(kind)
                .send()
                .await
                .map_err(|e| error::map("ListResourceRecordSets", e))?;
            for r in out.resource_record_sets() {
                records.push(RecordSet {
                    name: fqdn(r.name()),
                    kind: r.r#type().as_str().to_string(),
                    ttl: r
                        .ttl()
                        .and_then(|t| u32::try_from(t).ok())
                        .unwrap_or_default(),
                    values: r
                        .resource_records()
                        .iter()
                        .map(|v| v.value().to_string())
                        .collect(),
                });
            }
            match (
                out.is_truncated(),
                out.next_record_name(),
                out.next_record_type(),
            ) {
                (true, Some(n), Some(k)) => start = Some((n.to_string(), k.clone())),
                _ => return Ok(records),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::{State, VpcEndpointConnection};

    use super::*;

    #[test]
    fn connection_states_keep_the_wire_spelling_and_compare_ignoring_case() {
        for wire in ["pendingAcceptance", "pending", "available", "rejected"] {
            let c = VpcEndpointConnection::builder()
                .service_id("vpce-svc-0123456789abcdef0")
                .vpc_endpoint_id("vpce-0123456789abcdef0")
                .vpc_endpoint_owner("210987654321")
                .vpc_endpoint_state(State::from(wire))
                .build();
            let conn = connection_of(&c);
            assert!(state_is(&conn.state, wire), "{wire} -> {}", conn.state);
            assert_eq!(conn.owner, "210987654321");
        }
        // The SDK's enum spells Available differently from the wire; both compare equal.
        let c = VpcEndpointConnection::builder()
            .vpc_endpoint_state(State::Available)
            .build();
        assert!(state_is(&connection_of(&c).state, "available"));
    }

    #[test]
    fn endpoint_kinds_parse_ignoring_case() {
        assert_eq!(
            endpoint_kind(Some(&VpcEndpointType::from("gateway"))),
            EndpointKind::Gateway
        );
        assert_eq!(
            endpoint_kind(Some(&VpcEndpointType::Gateway)),
            EndpointKind::Gateway
        );
        assert_eq!(
            endpoint_kind(Some(&VpcEndpointType::from("GatewayLoadBalancer"))),
            EndpointKind::GatewayLoadBalancer
        );
        assert_eq!(
            endpoint_kind(Some(&VpcEndpointType::Interface)),
            EndpointKind::Interface
        );
    }

    #[test]
    fn zone_ids_lose_their_path_prefix() {
        assert_eq!(strip_zone("/hostedzone/Z0123456789ABC"), "Z0123456789ABC");
        assert_eq!(strip_zone("Z0123456789ABC"), "Z0123456789ABC");
    }
}
