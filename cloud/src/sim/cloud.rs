//! The [`Cloud`] implementation of the simulated region, one account's view. Each operation
//! lives in the file of its API family (the same families as the AWS backend's files), as an
//! inherent method of the same name; the trait only hands over.

use std::sync::Arc;

use super::SimRegion;
use crate::types::*;
use crate::{Cloud, CloudResult};

/// `account`'s client of a [`SimRegion`].
pub struct SimCloud {
    pub(super) region: Arc<SimRegion>,
    pub(super) account: String,
}

impl SimCloud {
    pub(super) fn new(region: Arc<SimRegion>, account: &str) -> Self {
        SimCloud {
            region,
            account: account.to_string(),
        }
    }
}

#[async_trait::async_trait]
impl Cloud for SimCloud {
    fn account(&self) -> &str {
        &self.account
    }

    fn region(&self) -> &str {
        &self.region.config.region
    }

    async fn describe_vpc(&self, vpc_id: &str) -> CloudResult<Vpc> {
        SimCloud::describe_vpc(self, vpc_id).await
    }

    async fn describe_subnets(&self, vpc_id: &str) -> CloudResult<Vec<Subnet>> {
        SimCloud::describe_subnets(self, vpc_id).await
    }

    async fn describe_route_tables(&self, vpc_id: &str) -> CloudResult<Vec<RouteTable>> {
        SimCloud::describe_route_tables(self, vpc_id).await
    }

    async fn service_quota(&self, quota: Quota) -> CloudResult<u32> {
        SimCloud::service_quota(self, quota).await
    }

    async fn describe_load_balancer(&self, arn: &str) -> CloudResult<LoadBalancer> {
        SimCloud::describe_load_balancer(self, arn).await
    }

    async fn describe_load_balancers(&self) -> CloudResult<Vec<LoadBalancer>> {
        SimCloud::describe_load_balancers(self).await
    }

    async fn describe_listeners(&self, load_balancer_arn: &str) -> CloudResult<Vec<Listener>> {
        SimCloud::describe_listeners(self, load_balancer_arn).await
    }

    async fn describe_elb_tags(
        &self,
        arns: &[String],
    ) -> CloudResult<std::collections::BTreeMap<String, Tags>> {
        SimCloud::describe_elb_tags(self, arns).await
    }

    async fn describe_target_groups(
        &self,
        load_balancer_arn: Option<&str>,
    ) -> CloudResult<Vec<TargetGroup>> {
        SimCloud::describe_target_groups(self, load_balancer_arn).await
    }

    async fn describe_target_health(
        &self,
        target_group_arn: &str,
    ) -> CloudResult<Vec<TargetHealth>> {
        SimCloud::describe_target_health(self, target_group_arn).await
    }

    async fn create_load_balancer(&self, req: &CreateLoadBalancer) -> CloudResult<LoadBalancer> {
        SimCloud::create_load_balancer(self, req).await
    }

    async fn delete_load_balancer(&self, arn: &str) -> CloudResult<()> {
        SimCloud::delete_load_balancer(self, arn).await
    }

    async fn create_target_group(&self, req: &CreateTargetGroup) -> CloudResult<TargetGroup> {
        SimCloud::create_target_group(self, req).await
    }

    async fn modify_target_group_health(
        &self,
        arn: &str,
        check: &HealthCheck,
    ) -> CloudResult<TargetGroup> {
        SimCloud::modify_target_group_health(self, arn, check).await
    }

    async fn delete_target_group(&self, arn: &str) -> CloudResult<()> {
        SimCloud::delete_target_group(self, arn).await
    }

    async fn register_targets(
        &self,
        target_group_arn: &str,
        target_ids: &[String],
    ) -> CloudResult<()> {
        SimCloud::register_targets(self, target_group_arn, target_ids).await
    }

    async fn create_listener(&self, req: &CreateListener) -> CloudResult<Listener> {
        SimCloud::create_listener(self, req).await
    }

    async fn delete_listener(&self, arn: &str) -> CloudResult<()> {
        SimCloud::delete_listener(self, arn).await
    }

    async fn create_endpoint_service(
        &self,
        req: &CreateEndpointService,
    ) -> CloudResult<EndpointService> {
        SimCloud::create_endpoint_service(self, req).await
    }

    async fn describe_endpoint_services(&self, tags: &Tags) -> CloudResult<Vec<EndpointService>> {
        SimCloud::describe_endpoint_services(self, tags).await
    }

    async fn set_acceptance_required(&self, service_id: &str, required: bool) -> CloudResult<()> {
        SimCloud::set_acceptance_required(self, service_id, required).await
    }

    async fn modify_supported_regions(
        &self,
        service_id: &str,
        add: &[String],
        remove: &[String],
    ) -> CloudResult<()> {
        SimCloud::modify_supported_regions(self, service_id, add, remove).await
    }

    async fn allowed_principals(&self, service_id: &str) -> CloudResult<Vec<String>> {
        SimCloud::allowed_principals(self, service_id).await
    }

    async fn modify_allowed_principals(
        &self,
        service_id: &str,
        add: &[String],
        remove: &[String],
    ) -> CloudResult<()> {
        SimCloud::modify_allowed_principals(self, service_id, add, remove).await
    }

    async fn delete_endpoint_service(&self, service_id: &str) -> CloudResult<()> {
        SimCloud::delete_endpoint_service(self, service_id).await
    }

    async fn describe_connections(&self, service_id: Option<&str>) -> CloudResult<Vec<Connection>> {
        SimCloud::describe_connections(self, service_id).await
    }

    async fn accept_connections(
        &self,
        service_id: &str,
        endpoint_ids: &[String],
    ) -> CloudResult<()> {
        SimCloud::accept_connections(self, service_id, endpoint_ids).await
    }

    async fn reject_connections(
        &self,
        service_id: &str,
        endpoint_ids: &[String],
    ) -> CloudResult<()> {
        SimCloud::reject_connections(self, service_id, endpoint_ids).await
    }

    async fn describe_service(&self, service_name: &str) -> CloudResult<ServiceDetail> {
        SimCloud::describe_service(self, service_name).await
    }

    async fn create_endpoint(&self, req: &CreateEndpoint) -> CloudResult<Endpoint> {
        SimCloud::create_endpoint(self, req).await
    }

    async fn modify_endpoint_subnets(
        &self,
        endpoint_id: &str,
        add: &[String],
        remove: &[String],
    ) -> CloudResult<()> {
        SimCloud::modify_endpoint_subnets(self, endpoint_id, add, remove).await
    }

    async fn describe_endpoints(&self, vpc_id: &str, tags: &Tags) -> CloudResult<Vec<Endpoint>> {
        SimCloud::describe_endpoints(self, vpc_id, tags).await
    }

    async fn delete_endpoint(&self, endpoint_id: &str) -> CloudResult<()> {
        SimCloud::delete_endpoint(self, endpoint_id).await
    }

    async fn hosted_zones_of_vpc(&self, vpc_id: &str) -> CloudResult<Vec<HostedZone>> {
        SimCloud::hosted_zones_of_vpc(self, vpc_id).await
    }

    async fn hosted_zones_named(&self, name: &str) -> CloudResult<Vec<HostedZone>> {
        SimCloud::hosted_zones_named(self, name).await
    }

    async fn tag_hosted_zone(&self, zone_id: &str, tags: &Tags) -> CloudResult<()> {
        SimCloud::tag_hosted_zone(self, zone_id, tags).await
    }

    async fn hosted_zone_tags(&self, zone_id: &str) -> CloudResult<Tags> {
        SimCloud::hosted_zone_tags(self, zone_id).await
    }

    async fn get_hosted_zone(&self, zone_id: &str) -> CloudResult<HostedZone> {
        SimCloud::get_hosted_zone(self, zone_id).await
    }

    async fn create_hosted_zone(
        &self,
        name: &str,
        vpc_id: &str,
        caller_reference: &str,
        comment: &str,
    ) -> CloudResult<HostedZone> {
        SimCloud::create_hosted_zone(self, name, vpc_id, caller_reference, comment).await
    }

    async fn associate_vpc(&self, zone_id: &str, vpc_id: &str) -> CloudResult<()> {
        SimCloud::associate_vpc(self, zone_id, vpc_id).await
    }

    async fn delete_hosted_zone(&self, zone_id: &str) -> CloudResult<()> {
        SimCloud::delete_hosted_zone(self, zone_id).await
    }

    async fn change_records(&self, zone_id: &str, changes: &[RecordChange]) -> CloudResult<String> {
        SimCloud::change_records(self, zone_id, changes).await
    }

    async fn get_change(&self, change_id: &str) -> CloudResult<ChangeStatus> {
        SimCloud::get_change(self, change_id).await
    }

    async fn list_records(&self, zone_id: &str) -> CloudResult<Vec<RecordSet>> {
        SimCloud::list_records(self, zone_id).await
    }
}
