//! [`Cloud`] on the AWS SDK: EC2 (VPCs, endpoint services, endpoints), ELBv2 (load balancers),
//! Route 53 (private hosted zones) and Service Quotas (the endpoints a VPC may have).
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

mod az;
mod client;
mod convert;
mod ec2_network;
mod elb;
mod endpoint_services;
mod endpoints;
pub mod error;
mod listeners;
mod route53;
mod service_quotas;
mod target_groups;
#[cfg(feature = "test-support")]
pub mod testing;

pub use client::{AwsCloud, AwsSettings, SdkClients};
use pld_cloud::*;

// Each operation lives in the file of its API family, as an inherent method of the same name;
// the trait only hands over.
#[async_trait::async_trait]
impl Cloud for AwsCloud {
    fn account(&self) -> &str {
        &self.account
    }

    fn region(&self) -> &str {
        &self.region
    }

    /// The SDK's retry mode (adaptive, four attempts) is the one retry layer.
    fn retries_calls(&self) -> bool {
        true
    }

    async fn describe_vpc(&self, vpc_id: &str) -> CloudResult<Vpc> {
        AwsCloud::describe_vpc(self, vpc_id).await
    }

    async fn describe_subnets(&self, vpc_id: &str) -> CloudResult<Vec<Subnet>> {
        AwsCloud::describe_subnets(self, vpc_id).await
    }

    async fn describe_route_tables(&self, vpc_id: &str) -> CloudResult<Vec<RouteTable>> {
        AwsCloud::describe_route_tables(self, vpc_id).await
    }

    async fn service_quota(&self, quota: Quota) -> CloudResult<u32> {
        AwsCloud::service_quota(self, quota).await
    }

    async fn describe_load_balancer(&self, arn: &str) -> CloudResult<LoadBalancer> {
        AwsCloud::describe_load_balancer(self, arn).await
    }

    async fn describe_load_balancers(&self) -> CloudResult<Vec<LoadBalancer>> {
        AwsCloud::describe_load_balancers(self).await
    }

    async fn describe_listeners(&self, load_balancer_arn: &str) -> CloudResult<Vec<Listener>> {
        AwsCloud::describe_listeners(self, load_balancer_arn).await
    }

    async fn describe_elb_tags(
        &self,
        arns: &[String],
    ) -> CloudResult<std::collections::BTreeMap<String, Tags>> {
        AwsCloud::describe_elb_tags(self, arns).await
    }

    async fn describe_target_groups(
        &self,
        load_balancer_arn: Option<&str>,
    ) -> CloudResult<Vec<TargetGroup>> {
        AwsCloud::describe_target_groups(self, load_balancer_arn).await
    }

    async fn describe_target_health(
        &self,
        target_group_arn: &str,
    ) -> CloudResult<Vec<TargetHealth>> {
        AwsCloud::describe_target_health(self, target_group_arn).await
    }

    async fn create_load_balancer(&self, req: &CreateLoadBalancer) -> CloudResult<LoadBalancer> {
        AwsCloud::create_load_balancer(self, req).await
    }

    async fn delete_load_balancer(&self, arn: &str) -> CloudResult<()> {
        AwsCloud::delete_load_balancer(self, arn).await
    }

    async fn create_target_group(&self, req: &CreateTargetGroup) -> CloudResult<TargetGroup> {
        AwsCloud::create_target_group(self, req).await
    }

    async fn modify_target_group_health(
        &self,
        arn: &str,
        check: &HealthCheck,
    ) -> CloudResult<TargetGroup> {
        AwsCloud::modify_target_group_health(self, arn, check).await
    }

    async fn delete_target_group(&self, arn: &str) -> CloudResult<()> {
        AwsCloud::delete_target_group(self, arn).await
    }

    async fn register_targets(
        &self,
        target_group_arn: &str,
        target_ids: &[String],
    ) -> CloudResult<()> {
        AwsCloud::register_targets(self, target_group_arn, target_ids).await
    }

    async fn create_listener(&self, req: &CreateListener) -> CloudResult<Listener> {
        AwsCloud::create_listener(self, req).await
    }

    async fn delete_listener(&self, arn: &str) -> CloudResult<()> {
        AwsCloud::delete_listener(self, arn).await
    }

    async fn create_endpoint_service(
        &self,
        req: &CreateEndpointService,
    ) -> CloudResult<EndpointService> {
        AwsCloud::create_endpoint_service(self, req).await
    }

    async fn describe_endpoint_services(&self, tags: &Tags) -> CloudResult<Vec<EndpointService>> {
        AwsCloud::describe_endpoint_services(self, tags).await
    }

    async fn set_acceptance_required(&self, service_id: &str, required: bool) -> CloudResult<()> {
        AwsCloud::set_acceptance_required(self, service_id, required).await
    }

    async fn modify_supported_regions(
        &self,
        service_id: &str,
        add: &[String],
        remove: &[String],
    ) -> CloudResult<()> {
        AwsCloud::modify_supported_regions(self, service_id, add, remove).await
    }

    async fn allowed_principals(&self, service_id: &str) -> CloudResult<Vec<String>> {
        AwsCloud::allowed_principals(self, service_id).await
    }

    async fn modify_allowed_principals(
        &self,
        service_id: &str,
        add: &[String],
        remove: &[String],
    ) -> CloudResult<()> {
        AwsCloud::modify_allowed_principals(self, service_id, add, remove).await
    }

    async fn delete_endpoint_service(&self, service_id: &str) -> CloudResult<()> {
        AwsCloud::delete_endpoint_service(self, service_id).await
    }

    async fn describe_connections(&self, service_id: Option<&str>) -> CloudResult<Vec<Connection>> {
        AwsCloud::describe_connections(self, service_id).await
    }

    async fn accept_connections(
        &self,
        service_id: &str,
        endpoint_ids: &[String],
    ) -> CloudResult<()> {
        AwsCloud::accept_connections(self, service_id, endpoint_ids).await
    }

    async fn reject_connections(
        &self,
        service_id: &str,
        endpoint_ids: &[String],
    ) -> CloudResult<()> {
        AwsCloud::reject_connections(self, service_id, endpoint_ids).await
    }

    async fn describe_service(&self, service_name: &str) -> CloudResult<ServiceDetail> {
        AwsCloud::describe_service(self, service_name).await
    }

    async fn create_endpoint(&self, req: &CreateEndpoint) -> CloudResult<Endpoint> {
        AwsCloud::create_endpoint(self, req).await
    }

    async fn modify_endpoint_subnets(
        &self,
        endpoint_id: &str,
        add: &[String],
        remove: &[String],
    ) -> CloudResult<()> {
        AwsCloud::modify_endpoint_subnets(self, endpoint_id, add, remove).await
    }

    async fn describe_endpoints(&self, vpc_id: &str, tags: &Tags) -> CloudResult<Vec<Endpoint>> {
        AwsCloud::describe_endpoints(self, vpc_id, tags).await
    }

    async fn delete_endpoint(&self, endpoint_id: &str) -> CloudResult<()> {
        AwsCloud::delete_endpoint(self, endpoint_id).await
    }

    async fn hosted_zones_of_vpc(&self, vpc_id: &str) -> CloudResult<Vec<HostedZone>> {
        AwsCloud::hosted_zones_of_vpc(self, vpc_id).await
    }

    async fn hosted_zones_named(&self, name: &str) -> CloudResult<Vec<HostedZone>> {
        AwsCloud::hosted_zones_named(self, name).await
    }

    async fn tag_hosted_zone(&self, zone_id: &str, tags: &Tags) -> CloudResult<()> {
        AwsCloud::tag_hosted_zone(self, zone_id, tags).await
    }

    async fn hosted_zone_tags(&self, zone_id: &str) -> CloudResult<Tags> {
        AwsCloud::hosted_zone_tags(self, zone_id).await
    }

    async fn get_hosted_zone(&self, zone_id: &str) -> CloudResult<HostedZone> {
        AwsCloud::get_hosted_zone(self, zone_id).await
    }

    async fn create_hosted_zone(
        &self,
        name: &str,
        vpc_id: &str,
        caller_reference: &str,
        comment: &str,
    ) -> CloudResult<HostedZone> {
        AwsCloud::create_hosted_zone(self, name, vpc_id, caller_reference, comment).await
    }

    async fn associate_vpc(&self, zone_id: &str, vpc_id: &str) -> CloudResult<()> {
        AwsCloud::associate_vpc(self, zone_id, vpc_id).await
    }

    async fn delete_hosted_zone(&self, zone_id: &str) -> CloudResult<()> {
        AwsCloud::delete_hosted_zone(self, zone_id).await
    }

    async fn change_records(&self, zone_id: &str, changes: &[RecordChange]) -> CloudResult<String> {
        AwsCloud::change_records(self, zone_id, changes).await
    }

    async fn get_change(&self, change_id: &str) -> CloudResult<ChangeStatus> {
        AwsCloud::get_change(self, change_id).await
    }

    async fn list_records(&self, zone_id: &str) -> CloudResult<Vec<RecordSet>> {
        AwsCloud::list_records(self, zone_id).await
    }
}
