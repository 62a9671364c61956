//! The consumer's private hosted zone: finding it after a restart, creating and associating it
//! when a name is first published, deleting it when this agent made it and nothing of ours is
//! left, and submitting a pass's record changes to it as one batch.

use pld_cloud::{CloudError, HostedZone, RecordSet, Tags};
use pld_core::plan::zone::{
    plan_zone, plan_zone_retire, zone_unused, ZoneOutcome, ZoneRefusal, ZoneSeen, ZoneWant,
    REFERENCE_ATTEMPTS,
};
use tracing::{info, warn};

use super::records::DnsBatch;
use super::Reconciler;
use crate::crash_points::crash_point;

impl Reconciler {
    /// What this agent wants of its zone; `publish` when a name is to go into it now, for the
    /// binding of generation `generation` (see [`super::ownership::Ownership::zone_reference`]).
    fn zone_want(&self, publish: bool, generation: u64) -> ZoneWant<'_> {
        ZoneWant {
            name: self.zone_name.as_str(),
            pinned: self.cfg.dns.hosted_zone_id.as_deref(),
            own: &self.own,
            publish,
            generation,
        }
    }

    /// The zone of this agent's name associated with its VPC, if any, with its tags.
    async fn zone_in_vpc(&self) -> Result<Option<(HostedZone, Tags)>, CloudError> {
        let Some(summary) = self
            .cloud
            .hosted_zones_of_vpc(&self.cfg.vpc_id)
            .await?
            .into_iter()
            .find(|z| z.name == self.zone_name)
        else {
            return Ok(None);
        };
        let zone = self.cloud.get_hosted_zone(&summary.id).await?;
        let tags = self.cloud.hosted_zone_tags(&summary.id).await?;
        Ok(Some((zone, tags)))
    }

    /// The zone of this agent's name created with `reference`, if it still exists.
    async fn zone_made_with(&self, reference: &str) -> Result<Option<HostedZone>, CloudError> {
        let made = self
            .cloud
            .hosted_zones_named(&self.zone_name)
            .await?
            .into_iter()
            .find(|z| z.caller_reference == reference);
        match made {
            // Listed with its reference; described for the VPCs it is associated with.
            Some(made) => Ok(Some(self.cloud.get_hosted_zone(&made.id).await?)),
            None => Ok(None),
        }
    }

    /// Observes the zone and makes the zone planner's writes until it says which zone to
    /// publish into (or that there is none yet, or why none can be used). Each round moves
    /// to a later state (created, or the next caller reference), so it ends.
    /// A write that fails leaves its unmade steps pending for binding `for_key`, if a binding
    /// needs the zone.
    async fn settle_zone(
        &self,
        want: &ZoneWant<'_>,
        for_key: Option<&str>,
    ) -> Result<Option<String>, CloudError> {
        let mut seen = match want.pinned {
            Some(id) => ZoneSeen::Pinned(self.cloud.get_hosted_zone(id).await?),
            None => ZoneSeen::InVpc(self.zone_in_vpc().await?),
        };
        for _ in 0..REFERENCE_ATTEMPTS * 2 + 2 {
            let plan = plan_zone(want, &seen);
            let mut done = self.execute(&plan.writes).await;
            if let Some((failed, e)) = done.failed.take() {
                // A create Route 53 refused tells what to look for; any other failure ends it.
                let (
                    ZoneOutcome::Creating { attempt },
                    pld_core::aws::Call::CreateHostedZone {
                        caller_reference, ..
                    },
                ) = (&plan.outcome, &failed.call)
                else {
                    if let Some(key) = for_key {
                        self.memory().pending.insert(key.to_string(), done.unmade);
                    }
                    return Err(e);
                };
                seen = match e {
                    CloudError::CallerReferenceUsed(_) => ZoneSeen::ReferenceSpent {
                        attempt: *attempt,
                        made: self.zone_made_with(caller_reference).await?,
                    },
                    CloudError::ConflictingDomain(error) => ZoneSeen::Conflict {
                        error,
                        found: self.zone_in_vpc().await?,
                    },
                    e => return Err(e),
                };
                continue;
            }
            match plan.outcome {
                ZoneOutcome::Use(id) => {
                    self.memory().zone_refused = None;
                    return Ok(Some(id));
                }
                ZoneOutcome::Absent(why) => {
                    if let Some(why) = &why {
                        warn!(%why, "leaving the hosted zone alone");
                    }
                    self.memory().zone_refused = why;
                    return Ok(None);
                }
                ZoneOutcome::Creating { .. } => match done.created_zone {
                    Some(zone) => seen = ZoneSeen::Created(zone),
                    None => break,
                },
                ZoneOutcome::Refused(why) => {
                    self.memory().zone_refused = Some(why.to_string());
                    return Err(refusal_error(why));
                }
            }
        }
        Err(CloudError::Client(format!(
            "the hosted zone {} did not settle: its planner kept asking for more writes",
            self.zone_name
        )))
    }

    /// Remembers the zone if it exists already and is ours (or pinned): after a restart, so
    /// records of endpoints that went while the agent was down can be cleaned up.
    pub(super) async fn find_zone(&self) -> Result<(), CloudError> {
        let id = self.settle_zone(&self.zone_want(false, 0), None).await?;
        self.memory().zone_id = id;
        Ok(())
    }

    /// Finds or creates the private hosted zone and associates this VPC with it, for the
    /// binding `key` of generation `generation` that first needs it.
    pub(super) async fn ensure_zone(&self, key: &str, generation: u64) -> Result<(), CloudError> {
        let want = self.zone_want(true, generation);
        let id = self.settle_zone(&want, Some(key)).await?;
        self.memory().zone_id = id;
        Ok(())
    }

    /// Deletes the zone when this agent created it and nothing of ours is left in it.
    pub(super) async fn maybe_delete_zone(
        &self,
        records: &[RecordSet],
    ) -> Result<bool, CloudError> {
        let want = self.zone_want(false, 0);
        let Some(zone_id) = self.memory().zone_id.clone() else {
            return Ok(false);
        };
        if !zone_unused(&want, records) {
            return Ok(false);
        }
        let zone = self.cloud.get_hosted_zone(&zone_id).await?;
        let tags = self.cloud.hosted_zone_tags(&zone_id).await?;
        let Some(delete) = plan_zone_retire(&want, &zone, &tags) else {
            return Ok(false);
        };
        match self.execute(&[delete]).await.failed {
            None => {
                self.memory().zone_id = None;
                Ok(false)
            }
            // A record was added since the listing: the zone stays.
            Some((_, CloudError::DependencyViolation(_))) => Ok(false),
            Some((_, e)) => Err(e),
        }
    }

    /// Sends a pass's record changes as one change; its bindings then wait on its id.
    pub(super) async fn submit_dns(
        &self,
        dns: DnsBatch,
        zone_id: Option<&str>,
    ) -> Result<bool, CloudError> {
        let Some(zone_id) = zone_id else {
            return Ok(false);
        };
        if dns.changes.is_empty() {
            return Ok(false);
        }
        let change = self.cloud.change_records(zone_id, &dns.changes).await?;
        for step in &dns.steps {
            info!(%step, change = %change, "submitted");
        }
        crash_point!("consumer-dns-submitted");
        let mut memory = self.memory();
        for key in dns.keys {
            memory.in_sync.remove(&key);
            memory.changes.insert(key, change.clone());
        }
        Ok(true)
    }
}

/// The error a binding that needs the zone fails with.
fn refusal_error(why: ZoneRefusal) -> CloudError {
    let text = why.to_string();
    match why {
        ZoneRefusal::Foreign { .. } | ZoneRefusal::Conflict(_) => {
            CloudError::ConflictingDomain(text)
        }
        ZoneRefusal::PinnedName { .. } => CloudError::InvalidParameter(text),
        ZoneRefusal::ReferencesSpent { .. } => CloudError::CallerReferenceUsed(text),
    }
}
