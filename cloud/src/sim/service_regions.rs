//! Cross-region PrivateLink on the provider's side: the regions an endpoint service is offered
//! to (EC2 API reference: CreateVpcEndpointServiceConfiguration `SupportedRegions`,
//! ModifyVpcEndpointServiceConfiguration `AddSupportedRegions`/`RemoveSupportedRegions`,
//! DescribeVpcEndpointServiceConfigurations `SupportedRegions[{Region, ServiceState}]`).
//!
//! Modelled rules:
//! - the service's own region is always listed, `Available`, and cannot be removed;
//! - a region added is `Pending`, then `Available`; one removed is `Deleting`, then gone;
//! - only regions of the service's own partition can be named ("Cross-Region access": the
//!   endpoint service and its consumers are in the same partition), and only AWS regions;
//! - naming other regions takes the permission-only IAM action `vpce:AllowMultiRegion` besides
//!   the call's own (Service Authorization Reference, AWS PrivateLink): without it the call is
//!   refused with UnauthorizedOperation.

use std::time::{Duration, Instant};

use pld_core::regions;

use super::cloud::SimCloud;
use super::ServiceRec;
use crate::types::*;
use crate::{Action, CloudError, CloudResult};

impl SimCloud {
    /// Checks the regions `call` (a create or a modify) names, as AWS does before it changes
    /// anything.
    pub(super) fn check_supported_regions(
        &self,
        call: Action,
        named: &[String],
    ) -> CloudResult<()> {
        if named.is_empty() {
            return Ok(());
        }
        if self
            .region
            .is_denied(&self.account, Action::AllowMultiRegion)
        {
            return Err(self.unauthorized(call, Action::AllowMultiRegion));
        }
        let home = regions::lookup(&self.region.config.region).map(|r| r.partition);
        for r in named {
            match regions::lookup(r) {
                Some(region) if Some(region.partition) == home => {}
                Some(region) => {
                    return Err(CloudError::InvalidParameter(format!(
                        "InvalidParameterValue: {r} is in partition {}, not that of {}: an \
                         endpoint service is offered within its own partition",
                        region.partition, self.region.config.region
                    )))
                }
                None => {
                    return Err(CloudError::InvalidParameter(format!(
                        "InvalidParameterValue: {r} is not a valid region"
                    )))
                }
            }
        }
        Ok(())
    }

    /// The regions a new service is listed with: its own, available, then those it was
    /// created offered to, pending.
    pub(super) fn initial_regions(home: &str, named: &[String]) -> Vec<SupportedRegion> {
        let mut list = vec![SupportedRegion {
            region: home.to_string(),
            state: "Available".into(),
        }];
        for r in named.iter().filter(|r| r.as_str() != home) {
            if !list.iter().any(|s| &s.region == r) {
                list.push(SupportedRegion {
                    region: r.clone(),
                    state: "Pending".into(),
                });
            }
        }
        list
    }

    /// Moves the regions of `rec` on: `Pending` to `Available`, `Deleting` to gone, each
    /// `latency` after it changed.
    pub(super) fn settle_regions(rec: &mut ServiceRec, now: Instant, latency: Duration) {
        let since = &rec.region_since;
        let due = |r: &SupportedRegion| since.get(&r.region).is_none_or(|t| now >= *t + latency);
        rec.svc
            .supported_regions
            .retain(|r| !(state_is(&r.state, "Deleting") && due(r)));
        for r in rec.svc.supported_regions.iter_mut() {
            if state_is(&r.state, "Pending") && due(r) {
                r.state = "Available".into();
            }
        }
    }

    pub(super) async fn modify_supported_regions(
        &self,
        service_id: &str,
        add: &[String],
        remove: &[String],
    ) -> CloudResult<()> {
        let mut st = self.gate(Action::ModifyVpcEndpointServiceConfiguration)?;
        let named: Vec<String> = add.iter().chain(remove).cloned().collect();
        self.check_supported_regions(Action::ModifyVpcEndpointServiceConfiguration, &named)?;
        let home = self.region.config.region.clone();
        if remove.contains(&home) {
            return Err(CloudError::InvalidParameter(format!(
                "InvalidParameterValue: {home} is the service's own region and cannot be removed"
            )));
        }
        let rec = self.own_service(&mut st, service_id)?;
        let now = Instant::now();
        for r in remove {
            if let Some(s) = rec
                .svc
                .supported_regions
                .iter_mut()
                .find(|s| &s.region == r)
            {
                if !state_is(&s.state, "Deleting") {
                    s.state = "Deleting".into();
                    rec.region_since.insert(r.clone(), now);
                }
            }
        }
        for r in add.iter().filter(|r| **r != home) {
            match rec
                .svc
                .supported_regions
                .iter_mut()
                .find(|s| &s.region == r)
            {
                // Added back while it was being removed: pending again.
                Some(s) if state_is(&s.state, "Deleting") => {
                    s.state = "Pending".into();
                    rec.region_since.insert(r.clone(), now);
                }
                Some(_) => {}
                None => {
                    rec.svc.supported_regions.push(SupportedRegion {
                        region: r.clone(),
                        state: "Pending".into(),
                    });
                    rec.region_since.insert(r.clone(), now);
                }
            }
        }
        Ok(())
    }
}
