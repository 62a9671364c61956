//! Client-side rate limiting at AWS's published rates, and call counting.
//!
//! EC2 throttles per account and region with a token bucket per API class; Route 53 per account.
//! Waiting for a token here costs less than being throttled (and backing off) there. The buckets
//! are shared by every caller that uses the same [`Limiter`], so give one limiter per account.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use pld_core::aws::{Action, ApiClass};

use crate::types::*;
use crate::{Cloud, CloudResult};

/// One token bucket.
#[derive(Debug)]
pub struct Bucket {
    capacity: f64,
    refill: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(capacity: f64, refill_per_second: f64) -> Self {
        Bucket {
            capacity,
            refill: refill_per_second,
            tokens: capacity,
            last: Instant::now(),
        }
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.refill).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.refill))
        }
    }
}

/// Calls and outcomes per action, and time spent waiting for tokens.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CallStats {
    /// action → (succeeded, failed)
    pub calls: BTreeMap<&'static str, (u64, u64)>,
    /// (action, outcome) → calls; the outcome is `ok` or [`crate::CloudError::kind_name`].
    pub outcomes: BTreeMap<(&'static str, &'static str), u64>,
    /// Throttling errors seen from the cloud.
    pub throttled: u64,
    /// Time callers waited for a token, per API class.
    pub waited_by_class: BTreeMap<ApiClass, Duration>,
}

impl CallStats {
    /// Calls of mutating actions ([`Action::is_mutating`]).
    pub fn mutating_calls(&self) -> u64 {
        self.calls
            .iter()
            .filter(|(a, _)| Action::named(a).is_some_and(Action::is_mutating))
            .map(|(_, (ok, err))| ok + err)
            .sum()
    }

    /// Every call.
    pub fn total_calls(&self) -> u64 {
        self.calls.values().map(|(ok, err)| ok + err).sum()
    }
}

/// Buckets per API class for one account, and its call statistics.
pub struct Limiter {
    buckets: Mutex<BTreeMap<ApiClass, Bucket>>,
    /// Multiplies AWS's rates (1.0 = AWS's; larger = faster). `None` turns limiting off.
    scale: Option<f64>,
    stats: Mutex<CallStats>,
}

impl Limiter {
    /// A limiter at AWS's rates times `scale`, or none at all.
    pub fn new(scale: Option<f64>) -> Arc<Self> {
        Arc::new(Limiter {
            buckets: Mutex::new(BTreeMap::new()),
            scale,
            stats: Mutex::new(CallStats::default()),
        })
    }

    /// Waits for a token of `class`.
    pub async fn acquire(&self, class: ApiClass) {
        let Some(scale) = self.scale else {
            return;
        };
        let started = Instant::now();
        loop {
            let wait = {
                let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
                let bucket = buckets.entry(class).or_insert_with(|| {
                    let (cap, refill) = class.aws_rate();
                    Bucket::new(cap, refill * scale)
                });
                bucket.take(Instant::now())
            };
            match wait {
                Ok(()) => break,
                Err(d) => tokio::time::sleep(d).await,
            }
        }
        let waited = started.elapsed();
        if waited > Duration::ZERO {
            let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            *stats.waited_by_class.entry(class).or_default() += waited;
        }
    }

    fn record<T>(&self, action: Action, result: &CloudResult<T>) {
        let action = action.name();
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let entry = stats.calls.entry(action).or_default();
        let outcome = match result {
            Ok(_) => {
                entry.0 += 1;
                "ok"
            }
            Err(e) => {
                entry.1 += 1;
                if matches!(e, crate::CloudError::Throttled(_)) {
                    stats.throttled += 1;
                }
                e.kind_name()
            }
        };
        *stats.outcomes.entry((action, outcome)).or_default() += 1;
    }

    /// A copy of the statistics so far.
    pub fn stats(&self) -> CallStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A [`Cloud`] whose calls wait for the limiter's tokens and are counted, and are retried a few
/// times when the error is retryable — unless the inner cloud retries its own calls
/// ([`Cloud::retries_calls`], as the AWS SDK does): one retry layer, never two, because a
/// second multiplies the first (four attempts inside four made 16 calls of one throttled
/// request).
pub struct Limited<C> {
    inner: C,
    limiter: Arc<Limiter>,
}

impl<C: Cloud> Limited<C> {
    /// Wraps `inner`.
    pub fn new(inner: C, limiter: Arc<Limiter>) -> Self {
        Limited { inner, limiter }
    }

    /// The limiter (for its statistics).
    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }
}

/// Attempts per call where this is the retry layer, as the AWS SDKs' standard retry mode makes.
const ATTEMPTS: u32 = 4;

/// Each attempt waits for a token of its action's bucket and is counted with its outcome;
/// attempts are retried with jittered exponential backoff while the error is retryable
/// (throttling, 5xx, a pending Route 53 change) and the inner cloud does not retry itself.
macro_rules! limited {
    ($self:ident, $action:expr, $call:expr) => {{
        let attempts = if $self.inner.retries_calls() {
            1
        } else {
            ATTEMPTS
        };
        let mut attempt = 0;
        loop {
            $self.limiter.acquire($action.bucket()).await;
            let result = $call.await;
            $self.limiter.record($action, &result);
            attempt += 1;
            match &result {
                Err(e) if e.is_retryable() && attempt < attempts => {
                    let base = Duration::from_millis(50 * (1 << attempt));
                    tokio::time::sleep(base.mul_f64(0.5 + rand::random::<f64>())).await;
                }
                _ => break result,
            }
        }
    }};
}

#[async_trait::async_trait]
impl<C: Cloud> Cloud for Limited<C> {
    fn call_stats(&self) -> Option<CallStats> {
        Some(self.limiter.stats())
    }

    fn retries_calls(&self) -> bool {
        true
    }

    fn account(&self) -> &str {
        self.inner.account()
    }
    fn region(&self) -> &str {
        self.inner.region()
    }
    async fn describe_vpc(&self, vpc_id: &str) -> CloudResult<Vpc> {
        limited!(self, Action::DescribeVpcs, self.inner.describe_vpc(vpc_id))
    }
    async fn describe_subnets(&self, vpc_id: &str) -> CloudResult<Vec<Subnet>> {
        limited!(
            self,
            Action::DescribeSubnets,
            self.inner.describe_subnets(vpc_id)
        )
    }
    async fn describe_route_tables(&self, vpc_id: &str) -> CloudResult<Vec<RouteTable>> {
        limited!(
            self,
            Action::DescribeRouteTables,
            self.inner.describe_route_tables(vpc_id)
        )
    }
    async fn service_quota(&self, quota: Quota) -> CloudResult<u32> {
        limited!(
            self,
            Action::GetServiceQuota,
            self.inner.service_quota(quota)
        )
    }
    async fn describe_load_balancer(&self, arn: &str) -> CloudResult<LoadBalancer> {
        limited!(
            self,
            Action::DescribeLoadBalancers,
            self.inner.describe_load_balancer(arn)
        )
    }
    async fn describe_load_balancers(&self) -> CloudResult<Vec<LoadBalancer>> {
        limited!(
            self,
            Action::DescribeLoadBalancers,
            self.inner.describe_load_balancers()
        )
    }
    async fn describe_listeners(&self, load_balancer_arn: &str) -> CloudResult<Vec<Listener>> {
        limited!(
            self,
            Action::DescribeListeners,
            self.inner.describe_listeners(load_balancer_arn)
        )
    }
    async fn describe_elb_tags(
        &self,
        arns: &[String],
    ) -> CloudResult<std::collections::BTreeMap<String, Tags>> {
        limited!(
            self,
            Action::DescribeTags,
            self.inner.describe_elb_tags(arns)
        )
    }
    async fn describe_target_groups(
        &self,
        load_balancer_arn: Option<&str>,
    ) -> CloudResult<Vec<TargetGroup>> {
        limited!(
            self,
            Action::DescribeTargetGroups,
            self.inner.describe_target_groups(load_balancer_arn)
        )
    }
    async fn describe_target_health(
        &self,
        target_group_arn: &str,
    ) -> CloudResult<Vec<TargetHealth>> {
        limited!(
            self,
            Action::DescribeTargetHealth,
            self.inner.describe_target_health(target_group_arn)
        )
    }
    async fn create_load_balancer(&self, req: &CreateLoadBalancer) -> CloudResult<LoadBalancer> {
        limited!(
            self,
            Action::CreateLoadBalancer,
            self.inner.create_load_balancer(req)
        )
    }
    async fn delete_load_balancer(&self, arn: &str) -> CloudResult<()> {
        limited!(
            self,
            Action::DeleteLoadBalancer,
            self.inner.delete_load_balancer(arn)
        )
    }
    async fn create_target_group(&self, req: &CreateTargetGroup) -> CloudResult<TargetGroup> {
        limited!(
            self,
            Action::CreateTargetGroup,
            self.inner.create_target_group(req)
        )
    }
    async fn modify_target_group_health(
        &self,
        arn: &str,
        check: &HealthCheck,
    ) -> CloudResult<TargetGroup> {
        limited!(
            self,
            Action::ModifyTargetGroup,
            self.inner.modify_target_group_health(arn, check)
        )
    }
    async fn delete_target_group(&self, arn: &str) -> CloudResult<()> {
        limited!(
            self,
            Action::DeleteTargetGroup,
            self.inner.delete_target_group(arn)
        )
    }
    async fn register_targets(
        &self,
        target_group_arn: &str,
        target_ids: &[String],
    ) -> CloudResult<()> {
        limited!(
            self,
            Action::RegisterTargets,
            self.inner.register_targets(target_group_arn, target_ids)
        )
    }
    async fn create_listener(&self, req: &CreateListener) -> CloudResult<Listener> {
        limited!(
            self,
            Action::CreateListener,
            self.inner.create_listener(req)
        )
    }
    async fn delete_listener(&self, arn: &str) -> CloudResult<()> {
        limited!(
            self,
            Action::DeleteListener,
            self.inner.delete_listener(arn)
        )
    }
    async fn create_endpoint_service(
        &self,
        req: &CreateEndpointService,
    ) -> CloudResult<EndpointService> {
        limited!(
            self,
            Action::CreateVpcEndpointServiceConfiguration,
            self.inner.create_endpoint_service(req)
        )
    }
    async fn describe_endpoint_services(&self, tags: &Tags) -> CloudResult<Vec<EndpointService>> {
        limited!(
            self,
            Action::DescribeVpcEndpointServiceConfigurations,
            self.inner.describe_endpoint_services(tags)
        )
    }
    async fn set_acceptance_required(&self, service_id: &str, required: bool) -> CloudResult<()> {
        limited!(
            self,
            Action::ModifyVpcEndpointServiceConfiguration,
            self.inner.set_acceptance_required(service_id, required)
        )
    }
    async fn modify_supported_regions(
        &self,
        service_id: &str,
        add: &[String],
        remove: &[String],
    ) -> CloudResult<()> {
        limited!(
            self,
            Action::ModifyVpcEndpointServiceConfiguration,
            self.inner.modify_supported_regions(service_id, add, remove)
        )
    }
    async fn allowed_principals(&self, service_id: &str) -> CloudResult<Vec<String>> {
        limited!(
            self,
            Action::DescribeVpcEndpointServicePermissions,
            self.inner.allowed_principals(service_id)
        )
    }
    async fn modify_allowed_principals(
        &self,
        service_id: &str,
        add: &[String],
        remove: &[String],
    ) -> CloudResult<()> {
        limited!(
            self,
            Action::ModifyVpcEndpointServicePermissions,
            self.inner
                .modify_allowed_principals(service_id, add, remove)
        )
    }
    async fn delete_endpoint_service(&self, service_id: &str) -> CloudResult<()> {
        limited!(
            self,
            Action::DeleteVpcEndpointServiceConfigurations,
            self.inner.delete_endpoint_service(service_id)
        )
    }
    async fn describe_connections(&self, service_id: Option<&str>) -> CloudResult<Vec<Connection>> {
        limited!(
            self,
            Action::DescribeVpcEndpointConnections,
            self.inner.describe_connections(service_id)
        )
    }
    async fn accept_connections(
        &self,
        service_id: &str,
        endpoint_ids: &[String],
    ) -> CloudResult<()> {
        limited!(
            self,
            Action::AcceptVpcEndpointConnections,
            self.inner.accept_connections(service_id, endpoint_ids)
        )
    }
    async fn reject_connections(
        &self,
        service_id: &str,
        endpoint_ids: &[String],
    ) -> CloudResult<()> {
        limited!(
            self,
            Action::RejectVpcEndpointConnections,
            self.inner.reject_connections(service_id, endpoint_ids)
        )
    }
    async fn describe_service(&self, service_name: &str) -> CloudResult<ServiceDetail> {
        limited!(
            self,
            Action::DescribeVpcEndpointServices,
            self.inner.describe_service(service_name)
        )
    }
    async fn create_endpoint(&self, req: &CreateEndpoint) -> CloudResult<Endpoint> {
        limited!(
            self,
            Action::CreateVpcEndpoint,
            self.inner.create_endpoint(req)
        )
    }
    async fn modify_endpoint_subnets(
        &self,
        endpoint_id: &str,
        add: &[String],
        remove: &[String],
    ) -> CloudResult<()> {
        limited!(
            self,
            Action::ModifyVpcEndpoint,
            self.inner.modify_endpoint_subnets(endpoint_id, add, remove)
        )
    }
    async fn describe_endpoints(&self, vpc_id: &str, tags: &Tags) -> CloudResult<Vec<Endpoint>> {
        limited!(
            self,
            Action::DescribeVpcEndpoints,
            self.inner.describe_endpoints(vpc_id, tags)
        )
    }
    async fn delete_endpoint(&self, endpoint_id: &str) -> CloudResult<()> {
        limited!(
            self,
            Action::DeleteVpcEndpoints,
            self.inner.delete_endpoint(endpoint_id)
        )
    }
    async fn hosted_zones_of_vpc(&self, vpc_id: &str) -> CloudResult<Vec<HostedZone>> {
        limited!(
            self,
            Action::ListHostedZonesByVPC,
            self.inner.hosted_zones_of_vpc(vpc_id)
        )
    }
    async fn hosted_zones_named(&self, name: &str) -> CloudResult<Vec<HostedZone>> {
        limited!(
            self,
            Action::ListHostedZonesByName,
            self.inner.hosted_zones_named(name)
        )
    }
    async fn tag_hosted_zone(&self, zone_id: &str, tags: &Tags) -> CloudResult<()> {
        limited!(
            self,
            Action::ChangeTagsForResource,
            self.inner.tag_hosted_zone(zone_id, tags)
        )
    }
    async fn hosted_zone_tags(&self, zone_id: &str) -> CloudResult<Tags> {
        limited!(
            self,
            Action::ListTagsForResource,
            self.inner.hosted_zone_tags(zone_id)
        )
    }
    async fn get_hosted_zone(&self, zone_id: &str) -> CloudResult<HostedZone> {
        limited!(
            self,
            Action::GetHostedZone,
            self.inner.get_hosted_zone(zone_id)
        )
    }
    async fn create_hosted_zone(
        &self,
        name: &str,
        vpc_id: &str,
        caller_reference: &str,
        comment: &str,
    ) -> CloudResult<HostedZone> {
        limited!(
            self,
            Action::CreateHostedZone,
            self.inner
                .create_hosted_zone(name, vpc_id, caller_reference, comment)
        )
    }
    async fn associate_vpc(&self, zone_id: &str, vpc_id: &str) -> CloudResult<()> {
        limited!(
            self,
            Action::AssociateVPCWithHostedZone,
            self.inner.associate_vpc(zone_id, vpc_id)
        )
    }
    async fn delete_hosted_zone(&self, zone_id: &str) -> CloudResult<()> {
        limited!(
            self,
            Action::DeleteHostedZone,
            self.inner.delete_hosted_zone(zone_id)
        )
    }
    async fn change_records(&self, zone_id: &str, changes: &[RecordChange]) -> CloudResult<String> {
        limited!(
            self,
            Action::ChangeResourceRecordSets,
            self.inner.change_records(zone_id, changes)
        )
    }
    async fn get_change(&self, change_id: &str) -> CloudResult<ChangeStatus> {
        limited!(self, Action::GetChange, self.inner.get_change(change_id))
    }
    async fn list_records(&self, zone_id: &str) -> CloudResult<Vec<RecordSet>> {
        limited!(
            self,
            Action::ListResourceRecordSets,
            self.inner.list_records(zone_id)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut b = Bucket::new(4.0, 0.3);
        let t0 = Instant::now();
        for _ in 0..4 {
            assert!(b.take(t0).is_ok());
        }
        let wait = b.take(t0).unwrap_err();
        assert!(
            wait > Duration::from_secs(3) && wait < Duration::from_secs(4),
            "{wait:?}"
        );
        assert!(b.take(t0 + Duration::from_secs(4)).is_ok());
    }
}
