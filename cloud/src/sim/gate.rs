//! The gate every simulated call passes first: injected faults (throttling, 5xx), AWS's
//! per-account token buckets, then the state moved forward to now — transitions are computed
//! when the state is read, from the configured latencies.

use std::time::Instant;

use super::cloud::SimCloud;
use super::{dataplane, State};
use crate::limiter::Bucket;
use crate::types::state_is;
use crate::Action;
use crate::{CloudError, CloudResult};

impl SimCloud {
    /// Rate limits and injected faults, then the (refreshed) state.
    pub(super) fn gate(&self, action: Action) -> CloudResult<std::sync::MutexGuard<'_, State>> {
        if self.region.is_denied(&self.account, action) {
            return Err(self.unauthorized(action, action));
        }
        let faults = self.region.faults();
        if faults.throttle > 0.0 && rand::random::<f64>() < faults.throttle {
            return Err(CloudError::Throttled(action.to_string()));
        }
        if faults.server_error > 0.0 && rand::random::<f64>() < faults.server_error {
            return Err(CloudError::Transient(format!(
                "{action}: 503 Service Unavailable"
            )));
        }
        let mut st = self.region.state();
        if let Some(scale) = self.region.config.rate_limit_scale {
            let class = action.bucket();
            let bucket = st
                .buckets
                .entry((self.account.clone(), class))
                .or_insert_with(|| {
                    let (cap, refill) = class.aws_rate();
                    Bucket::new(cap, refill * scale)
                });
            if bucket.take(Instant::now()).is_err() {
                return Err(CloudError::Throttled(action.to_string()));
            }
        }
        self.refresh(&mut st);
        Ok(st)
    }

    /// The refusal of `call` for want of the IAM permission `permission` (the call's own, or a
    /// permission-only action it needs). EC2 answers UnauthorizedOperation, Route 53
    /// AccessDenied and Service Quotas AccessDeniedException, 403, before any validation or
    /// rate limit, naming the IAM action (EC2 API reference, "Common client errors"; Route 53
    /// API reference, "Common errors"; Service Quotas API reference, GetServiceQuota "Errors").
    pub(super) fn unauthorized(&self, call: Action, permission: Action) -> CloudError {
        let code = match call.service() {
            pld_core::aws::AwsService::Route53 => "AccessDenied",
            pld_core::aws::AwsService::ServiceQuotas => "AccessDeniedException",
            _ => "UnauthorizedOperation",
        };
        CloudError::Unauthorized(format!(
            "{call}: {code} User: arn:aws:iam::{}:role/pld-agent is not authorized to \
             perform: {}",
            self.account,
            permission.iam_action()
        ))
    }

    /// Moves every time-driven state forward to now.
    pub(super) fn refresh(&self, st: &mut State) {
        let now = Instant::now();
        let lat = self.region.config.latency;
        let stale = self.region.faults().stale_describe;
        for rec in st.lbs.values_mut() {
            if state_is(&rec.lb.state, "provisioning")
                && now >= rec.created + lat.load_balancer_active
            {
                rec.lb.state = "active".into();
            }
        }
        for rec in st.services.values_mut() {
            if state_is(&rec.svc.state, "Pending") && now >= rec.created + lat.service_available {
                rec.svc.state = "Available".into();
            }
            Self::settle_regions(rec, now, lat.service_available);
        }
        let mut became_available = Vec::new();
        for (id, rec) in st.endpoints.iter_mut() {
            if let Some(at) = rec.rejected {
                if now >= at + stale {
                    rec.ep.state = "rejected".into();
                }
                continue;
            }
            let started = if rec.acceptance_required {
                match rec.accepted {
                    Some(at) if now >= at + stale => {
                        if state_is(&rec.ep.state, "pendingAcceptance") {
                            rec.ep.state = "pending".into();
                        }
                        Some(at)
                    }
                    _ => None,
                }
            } else {
                Some(rec.created)
            };
            if let Some(t) = started {
                if state_is(&rec.ep.state, "pending") && now >= t + lat.endpoint_available {
                    rec.ep.state = "available".into();
                    became_available.push(id.clone());
                }
            }
        }
        if self.region.config.loopback_data_plane {
            for id in became_available {
                // A remote service's targets were snapshotted from its region at acceptance.
                let remote = st
                    .endpoints
                    .get(&id)
                    .and_then(|e| e.remote_forwarding.clone());
                let forwarding = remote.or_else(|| {
                    st.endpoints
                        .get(&id)
                        .and_then(|e| e.service_id.clone())
                        .and_then(|sid| st.services.get(&sid))
                        .and_then(|s| s.svc.load_balancer_arns.first().cloned())
                        .map(|arn| dataplane::forwarding(st, &arn))
                });
                if let (Some(rec), Some((ports, targets))) = (st.endpoints.get_mut(&id), forwarding)
                {
                    rec.dataplane =
                        dataplane::Forwarders::start(&rec.ep.addresses, &ports, &targets);
                }
            }
        }
    }
}
