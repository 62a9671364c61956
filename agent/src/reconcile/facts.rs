//! The VPC's facts ([`pld_proto::v1::VpcFacts`]) for plans made without calling AWS: read on
//! the resync interval and after this agent created or deleted an endpoint (the count against
//! the quota moved), built and bounded by [`pld_core::facts`], and reported only when they
//! differ from what this process last reported. The zone the consumer pass found or made, the
//! names in it that are not pld's, and why a zone of our name is refused come from that pass's
//! own look, not another call.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use pld_cloud::{
    Action, CloudError, Listener, LoadBalancer, LoadBalancerKind, Quota, Tags, TargetType,
};
use pld_core::facts::{changed, vpc_facts, LoadBalancerReading, Observed, QuotaReading};
use pld_proto::v1::{report_status_request, Kind};
use tracing::debug;

use super::Reconciler;

/// Why the quota could not be read, for the note a plan shows; `None` when the error may pass
/// (the next look tries again).
pub fn quota_unreadable(e: &CloudError) -> Option<String> {
    unreadable(e, Action::GetServiceQuota, "Service Quotas")
}

/// Why `action` of `api` could not tell, for the note a plan shows; `None` when the error may
/// pass (the next look tries again).
fn unreadable(e: &CloudError, action: Action, api: &str) -> Option<String> {
    match e {
        CloudError::Unauthorized(_) => Some(format!(
            "this agent may not call {} ({e})",
            action.iam_action()
        )),
        CloudError::Unsupported(_) => Some(format!("the cloud endpoint has no {api} API ({e})")),
        e if e.is_retryable() => None,
        e => Some(format!("{api} answered: {e}")),
    }
}

/// The VPC's load balancers as read, or why they could not be.
enum LoadBalancersRead {
    Read {
        load_balancers: Vec<LoadBalancer>,
        listeners: BTreeMap<String, Vec<Listener>>,
        reached_by: BTreeMap<String, BTreeSet<String>>,
    },
    Unreadable(String),
}

impl LoadBalancersRead {
    fn reading(&self) -> LoadBalancerReading<'_> {
        match self {
            LoadBalancersRead::Read {
                load_balancers,
                listeners,
                reached_by,
            } => LoadBalancerReading::Read {
                load_balancers,
                listeners,
                reached_by,
            },
            LoadBalancersRead::Unreadable(why) => LoadBalancerReading::Unreadable { why },
        }
    }
}

impl Reconciler {
    /// Reads and reports the VPC's facts when they are due.
    ///
    /// # Errors
    /// The first describe that failed; nothing is reported then.
    pub(super) async fn facts_pass(&self) -> Result<(), CloudError> {
        let due = {
            let memory = self.memory();
            // The zone found or made since the last report is news too, and so is a zone
            // found refused.
            let zone_moved = memory.facts_reported.as_ref().is_some_and(|f| {
                f.zone_id != memory.zone_id.clone().unwrap_or_default()
                    || f.zone_refused != memory.zone_refused.clone().unwrap_or_default()
            });
            memory.facts_stale
                || zone_moved
                || memory
                    .facts_read_at
                    .is_none_or(|at| at.elapsed() >= self.cfg.resync())
        };
        if !due {
            return Ok(());
        }
        // A refused zone is looked at again on the resync: it may have been tagged as ours,
        // or removed, since (reads only; the zone is made when a binding needs it).
        let look_again = {
            let memory = self.memory();
            memory.zone_refused.is_some() && memory.zone_id.is_none()
        };
        if look_again {
            self.find_zone().await?;
        }
        let vpc_id = &self.cfg.vpc_id;
        let vpc = self.cloud.describe_vpc(vpc_id).await?;
        let subnets = self.cloud.describe_subnets(vpc_id).await?;
        let route_tables = self.cloud.describe_route_tables(vpc_id).await?;
        // Every endpoint of the VPC counts against its quota, not only pld's.
        let endpoints = self.cloud.describe_endpoints(vpc_id, &Tags::new()).await?;
        let quota = match self
            .cloud
            .service_quota(Quota::InterfaceEndpointsPerVpc)
            .await
        {
            Ok(n) => QuotaReading::Read(n),
            Err(e) => match quota_unreadable(&e) {
                Some(why) => QuotaReading::Default { why },
                None => return Err(e),
            },
        };
        let load_balancers = self.read_load_balancers().await?;
        let now_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let (zone_id, zone_names_not_ours, zone_refused) = {
            let memory = self.memory();
            (
                memory.zone_id.clone(),
                memory.zone_names_not_ours.clone(),
                memory.zone_refused.clone(),
            )
        };
        let facts = vpc_facts(
            Observed {
                vpc: &vpc,
                subnets: &subnets,
                route_tables: &route_tables,
                endpoints: &endpoints,
                quota: &quota,
                zone_id: zone_id.as_deref(),
                zone_names_not_ours: &zone_names_not_ours,
                zone_refused: zone_refused.as_deref(),
                load_balancers: load_balancers.reading(),
            },
            now_unix_ms,
        );
        let reported = self.memory().facts_reported.clone();
        let stale = {
            let mut memory = self.memory();
            memory.facts_read_at = Some(Instant::now());
            std::mem::take(&mut memory.facts_stale)
        };
        if !changed(reported.as_ref(), &facts) {
            return Ok(());
        }
        debug!(
            stale,
            endpoints = facts.endpoints,
            "reporting the VPC's facts"
        );
        if self
            .report(
                Kind::Agent,
                vpc_id,
                report_status_request::Status::Agent(facts.clone()),
            )
            .await
        {
            self.memory().facts_reported = Some(facts);
        } else {
            // Not through: look again on the next pass rather than a resync later.
            self.memory().facts_stale = true;
        }
        Ok(())
    }

    /// The VPC's load balancers; each ALB's listeners and the NLBs reaching it through `alb`
    /// target groups (read only when the VPC has an ALB). ELBv2 refusing the first call is a
    /// note in the facts, not a failed look.
    async fn read_load_balancers(&self) -> Result<LoadBalancersRead, CloudError> {
        let all = match self.cloud.describe_load_balancers().await {
            Ok(all) => all,
            Err(e) => {
                return match unreadable(&e, Action::DescribeLoadBalancers, "ELBv2") {
                    Some(why) => Ok(LoadBalancersRead::Unreadable(why)),
                    None => Err(e),
                }
            }
        };
        let load_balancers: Vec<LoadBalancer> = all
            .into_iter()
            .filter(|lb| lb.vpc_id == self.cfg.vpc_id)
            .collect();
        let albs: Vec<&LoadBalancer> = load_balancers
            .iter()
            .filter(|lb| lb.kind == LoadBalancerKind::Application)
            .collect();
        let mut listeners = BTreeMap::new();
        let mut reached_by: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        if !albs.is_empty() {
            for alb in &albs {
                listeners.insert(
                    alb.arn.clone(),
                    self.cloud.describe_listeners(&alb.arn).await?,
                );
            }
            let groups = self.cloud.describe_target_groups(None).await?;
            for group in groups.iter().filter(|g| {
                g.target_type == TargetType::Alb
                    && g.vpc_id == self.cfg.vpc_id
                    && !g.load_balancer_arns.is_empty()
            }) {
                for target in self.cloud.describe_target_health(&group.arn).await? {
                    if albs.iter().any(|a| a.arn == target.target_id) {
                        reached_by
                            .entry(target.target_id)
                            .or_default()
                            .extend(group.load_balancer_arns.iter().cloned());
                    }
                }
            }
        }
        Ok(LoadBalancersRead::Read {
            load_balancers,
            listeners,
            reached_by,
        })
    }
}
