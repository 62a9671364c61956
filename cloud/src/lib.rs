//! The cloud pld's agent reconciles against.
//!
//! - [`Cloud`]: the operations the agent needs, in AWS's terms, for one account and region.
//! - [`CloudError`]: typed errors with [`CloudError::is_retryable`].
//! - [`sim`]: a simulated AWS region with AWS's behaviour (states, acceptance, principals, AZ
//!   placement, client tokens, Route 53 propagation, rate limits, injected faults).
//! - [`conformance`]: the suite every implementation must pass.
//! - [`limiter`]: client-side token buckets per account and API class, at AWS's published rates,
//!   and a wrapper that applies them and counts calls.

pub mod conformance;
pub mod error;
pub mod limiter;
pub mod sim;
/// The value types live in pld-core, where the planners that reason about them are.
pub use pld_core::aws::types;

pub use error::{CloudError, CloudResult};
pub use pld_core::aws::{Action, ApiClass};
pub use types::*;

/// One account's view of one region.
#[async_trait::async_trait]
pub trait Cloud: Send + Sync {
    /// The account calls act as.
    fn account(&self) -> &str;
    /// The region calls go to.
    fn region(&self) -> &str;
    /// Calls made so far by action and outcome, and time spent waiting for rate-limit tokens,
    /// when this cloud counts them (the [`limiter::Limited`] wrapper does).
    fn call_stats(&self) -> Option<limiter::CallStats> {
        None
    }
    /// Whether this cloud retries its own failed calls (the AWS SDK does), so that no layer
    /// above it retries them again.
    fn retries_calls(&self) -> bool {
        false
    }

    /// DescribeVpcs for one VPC.
    async fn describe_vpc(&self, vpc_id: &str) -> CloudResult<Vpc>;
    /// DescribeSubnets of a VPC.
    async fn describe_subnets(&self, vpc_id: &str) -> CloudResult<Vec<Subnet>>;
    /// DescribeRouteTables of a VPC.
    async fn describe_route_tables(&self, vpc_id: &str) -> CloudResult<Vec<RouteTable>>;
    /// Service Quotas GetServiceQuota: the account's value of `quota` in this region.
    async fn service_quota(&self, quota: Quota) -> CloudResult<u32>;
    /// DescribeLoadBalancers for one ARN.
    async fn describe_load_balancer(&self, arn: &str) -> CloudResult<LoadBalancer>;
    /// DescribeLoadBalancers: every load balancer of this account.
    async fn describe_load_balancers(&self) -> CloudResult<Vec<LoadBalancer>>;
    /// DescribeListeners of one load balancer.
    async fn describe_listeners(&self, load_balancer_arn: &str) -> CloudResult<Vec<Listener>>;
    /// DescribeTags of at most 20 ELBv2 resources (load balancers, target groups, listeners),
    /// by ARN.
    async fn describe_elb_tags(
        &self,
        arns: &[String],
    ) -> CloudResult<std::collections::BTreeMap<String, Tags>>;
    /// DescribeTargetGroups: every target group of this account, or (`Some`) those a load
    /// balancer's listeners forward to.
    async fn describe_target_groups(
        &self,
        load_balancer_arn: Option<&str>,
    ) -> CloudResult<Vec<TargetGroup>>;
    /// DescribeTargetHealth of one target group's targets.
    async fn describe_target_health(
        &self,
        target_group_arn: &str,
    ) -> CloudResult<Vec<TargetHealth>>;
    /// CreateLoadBalancer (idempotent on the name and settings).
    async fn create_load_balancer(&self, req: &CreateLoadBalancer) -> CloudResult<LoadBalancer>;
    /// DeleteLoadBalancer, with its listeners (a load balancer that is gone counts as done).
    async fn delete_load_balancer(&self, arn: &str) -> CloudResult<()>;
    /// CreateTargetGroup (idempotent on the name and settings).
    async fn create_target_group(&self, req: &CreateTargetGroup) -> CloudResult<TargetGroup>;
    /// ModifyTargetGroup: the group's health check.
    async fn modify_target_group_health(
        &self,
        arn: &str,
        check: &HealthCheck,
    ) -> CloudResult<TargetGroup>;
    /// DeleteTargetGroup.
    async fn delete_target_group(&self, arn: &str) -> CloudResult<()>;
    /// RegisterTargets: targets by id (for a group of type `alb`, the ALB's ARN) on the
    /// group's port.
    async fn register_targets(
        &self,
        target_group_arn: &str,
        target_ids: &[String],
    ) -> CloudResult<()>;
    /// CreateListener forwarding to one target group (idempotent on the same settings).
    async fn create_listener(&self, req: &CreateListener) -> CloudResult<Listener>;
    /// DeleteListener.
    async fn delete_listener(&self, arn: &str) -> CloudResult<()>;

    /// CreateVpcEndpointServiceConfiguration (idempotent on `client_token`).
    async fn create_endpoint_service(
        &self,
        req: &CreateEndpointService,
    ) -> CloudResult<EndpointService>;
    /// DescribeVpcEndpointServiceConfigurations of this account carrying every tag in `tags`.
    async fn describe_endpoint_services(&self, tags: &Tags) -> CloudResult<Vec<EndpointService>>;
    /// ModifyVpcEndpointServiceConfiguration: acceptance.
    async fn set_acceptance_required(&self, service_id: &str, required: bool) -> CloudResult<()>;
    /// ModifyVpcEndpointServiceConfiguration: AddSupportedRegions and RemoveSupportedRegions.
    async fn modify_supported_regions(
        &self,
        service_id: &str,
        add: &[String],
        remove: &[String],
    ) -> CloudResult<()>;
    /// DescribeVpcEndpointServicePermissions.
    async fn allowed_principals(&self, service_id: &str) -> CloudResult<Vec<String>>;
    /// ModifyVpcEndpointServicePermissions.
    async fn modify_allowed_principals(
        &self,
        service_id: &str,
        add: &[String],
        remove: &[String],
    ) -> CloudResult<()>;
    /// DeleteVpcEndpointServiceConfigurations for one service.
    async fn delete_endpoint_service(&self, service_id: &str) -> CloudResult<()>;
    /// DescribeVpcEndpointConnections: of one service, or (None) of every service this account
    /// owns, in one call.
    async fn describe_connections(&self, service_id: Option<&str>) -> CloudResult<Vec<Connection>>;
    /// AcceptVpcEndpointConnections.
    async fn accept_connections(
        &self,
        service_id: &str,
        endpoint_ids: &[String],
    ) -> CloudResult<()>;
    /// RejectVpcEndpointConnections.
    async fn reject_connections(
        &self,
        service_id: &str,
        endpoint_ids: &[String],
    ) -> CloudResult<()>;

    /// DescribeVpcEndpointServices for one name, as this account sees it (NotFound when the
    /// service does not allow this account).
    async fn describe_service(&self, service_name: &str) -> CloudResult<ServiceDetail>;
    /// CreateVpcEndpoint (idempotent on `client_token`: a token used before is answered with
    /// the endpoint it made then, in state `deleted` if it is gone since).
    async fn create_endpoint(&self, req: &CreateEndpoint) -> CloudResult<Endpoint>;
    /// ModifyVpcEndpoint: move an interface or GWLB endpoint into other subnets.
    async fn modify_endpoint_subnets(
        &self,
        endpoint_id: &str,
        add: &[String],
        remove: &[String],
    ) -> CloudResult<()>;
    /// DescribeVpcEndpoints of a VPC carrying every tag in `tags`.
    async fn describe_endpoints(&self, vpc_id: &str, tags: &Tags) -> CloudResult<Vec<Endpoint>>;
    /// DeleteVpcEndpoints for one endpoint.
    async fn delete_endpoint(&self, endpoint_id: &str) -> CloudResult<()>;

    /// ListHostedZonesByVPC (private zones associated with the VPC).
    async fn hosted_zones_of_vpc(&self, vpc_id: &str) -> CloudResult<Vec<HostedZone>>;
    /// ListHostedZonesByName: every zone (public or private, of any VPC) named `name`, with
    /// its caller reference and comment but not its VPCs.
    async fn hosted_zones_named(&self, name: &str) -> CloudResult<Vec<HostedZone>>;
    /// GetHostedZone.
    async fn get_hosted_zone(&self, zone_id: &str) -> CloudResult<HostedZone>;
    /// CreateHostedZone, private, associated with `vpc_id` (idempotent on `caller_reference`).
    async fn create_hosted_zone(
        &self,
        name: &str,
        vpc_id: &str,
        caller_reference: &str,
        comment: &str,
    ) -> CloudResult<HostedZone>;
    /// AssociateVPCWithHostedZone.
    async fn associate_vpc(&self, zone_id: &str, vpc_id: &str) -> CloudResult<()>;
    /// ChangeTagsForResource: adds `tags` to a hosted zone (Route 53 cannot tag at create).
    async fn tag_hosted_zone(&self, zone_id: &str, tags: &Tags) -> CloudResult<()>;
    /// ListTagsForResource of a hosted zone.
    async fn hosted_zone_tags(&self, zone_id: &str) -> CloudResult<Tags>;
    /// DeleteHostedZone (only when it holds no records but SOA and NS).
    async fn delete_hosted_zone(&self, zone_id: &str) -> CloudResult<()>;
    /// ChangeResourceRecordSets; returns the change id.
    async fn change_records(&self, zone_id: &str, changes: &[RecordChange]) -> CloudResult<String>;
    /// GetChange.
    async fn get_change(&self, change_id: &str) -> CloudResult<ChangeStatus>;
    /// ListResourceRecordSets.
    async fn list_records(&self, zone_id: &str) -> CloudResult<Vec<RecordSet>>;
}
