//! The consumer's private hosted zone: finding it after a restart, creating and associating it
//! when a name is first published, deleting it when this agent made it and nothing of ours is
//! left, and submitting a pass's record changes to it as one batch.

use pld_cloud::{CloudError, HostedZone, RecordSet};
use tracing::{info, warn};

use super::ownership::{ZoneClaim, CLUSTER_TAG, VPC_TAG};
use super::records::DnsBatch;
use super::Reconciler;
use crate::crash_points::crash_point;

/// How many caller references one binding generation may spend before giving up: each one
/// past the first was spent on a zone of ours deleted behind our back.
const REFERENCE_ATTEMPTS: u32 = 8;

impl Reconciler {
    /// The zone of this agent's name associated with its VPC, if any, and whose it is. Route 53
    /// lets no two zones of one name share a VPC, so there is at most one.
    async fn observe_zone(&self) -> Result<Option<(HostedZone, ZoneClaim)>, CloudError> {
        let zone_name = self.cfg.zone_fqdn();
        let Some(summary) = self
            .cloud
            .hosted_zones_of_vpc(&self.cfg.vpc_id)
            .await?
            .into_iter()
            .find(|z| z.name == zone_name)
        else {
            return Ok(None);
        };
        let zone = self.cloud.get_hosted_zone(&summary.id).await?;
        let tags = self.cloud.hosted_zone_tags(&summary.id).await?;
        let claim = self.own.zone_claim(&zone, &tags);
        Ok(Some((zone, claim)))
    }

    /// The id of a zone found in the VPC if it is ours (tagging it if it is not yet), or an
    /// error naming it if it is not.
    async fn adopt(&self, zone: HostedZone, claim: ZoneClaim) -> Result<String, CloudError> {
        match claim {
            ZoneClaim::Ours => Ok(zone.id),
            ZoneClaim::OursUntagged => {
                self.cloud
                    .tag_hosted_zone(&zone.id, &self.own.mine())
                    .await?;
                info!(zone = %zone.name, id = %zone.id, "tagged the private hosted zone this agent made");
                Ok(zone.id)
            }
            ZoneClaim::Foreign => Err(CloudError::ConflictingDomain(format!(
                "hosted zone {} ({}) is associated with {} but is not pld's (no {}={} and {}={} \
                 tags): set [dns] hosted_zone_id = \"{}\" to publish into it, or remove it",
                zone.id,
                zone.name,
                self.cfg.vpc_id,
                CLUSTER_TAG,
                self.own.cluster(),
                VPC_TAG,
                self.cfg.vpc_id,
                zone.id
            ))),
        }
    }

    /// Remembers the zone if it exists already and is ours (or pinned).
    pub(super) async fn find_zone(&self) -> Result<(), CloudError> {
        let id = match &self.cfg.dns.hosted_zone_id {
            Some(id) => Some(id.clone()),
            None => match self.observe_zone().await? {
                None => None,
                Some((zone, ZoneClaim::Foreign)) => {
                    warn!(zone = %zone.name, id = %zone.id, "a hosted zone of our name is in this VPC but is not pld's: leaving it alone");
                    None
                }
                Some((zone, claim)) => Some(self.adopt(zone, claim).await?),
            },
        };
        self.memory().zone_id = id;
        Ok(())
    }

    /// Finds or creates the private hosted zone and associates this VPC with it.
    /// `generation` is that of the binding that first needs it (see [`super::ownership::Ownership::zone_reference`]).
    pub(super) async fn ensure_zone(&self, generation: u64) -> Result<(), CloudError> {
        let zone_name = self.cfg.zone_fqdn();
        let id = if let Some(id) = &self.cfg.dns.hosted_zone_id {
            let zone = self.cloud.get_hosted_zone(id).await?;
            if zone.name != zone_name {
                return Err(CloudError::InvalidParameter(format!(
                    "pinned hosted zone {id} is {}, not {zone_name}",
                    zone.name
                )));
            }
            if !zone.vpc_ids.contains(&self.cfg.vpc_id) {
                self.cloud.associate_vpc(id, &self.cfg.vpc_id).await?;
            }
            id.clone()
        } else {
            match self.observe_zone().await? {
                Some((zone, claim)) => self.adopt(zone, claim).await?,
                None => self.create_zone(generation).await?,
            }
        };
        self.memory().zone_id = Some(id);
        Ok(())
    }

    /// Creates the zone under a deterministic caller reference, then tags it. A create that
    /// Route 53 refuses for its reference is either our own earlier attempt (found by that
    /// reference) or a reference spent on a zone since deleted (the next one is tried).
    async fn create_zone(&self, generation: u64) -> Result<String, CloudError> {
        let zone_name = self.cfg.zone_fqdn();
        for attempt in 1..=REFERENCE_ATTEMPTS {
            let reference = self.own.zone_reference(generation, attempt);
            let created = self
                .cloud
                .create_hosted_zone(
                    &zone_name,
                    &self.cfg.vpc_id,
                    &reference,
                    &self.zone_comment(),
                )
                .await;
            match created {
                Ok(zone) => {
                    crash_point!("consumer-zone-created");
                    info!(zone = %zone.name, id = %zone.id, "created private hosted zone");
                    self.cloud
                        .tag_hosted_zone(&zone.id, &self.own.mine())
                        .await?;
                    return Ok(zone.id);
                }
                Err(CloudError::CallerReferenceUsed(_)) => {
                    let made = self
                        .cloud
                        .hosted_zones_named(&zone_name)
                        .await?
                        .into_iter()
                        .find(|z| z.caller_reference == reference);
                    let Some(made) = made else { continue };
                    // Made associated with this VPC; a zone it has left is still ours to use.
                    let zone = self.cloud.get_hosted_zone(&made.id).await?;
                    if !zone.vpc_ids.contains(&self.cfg.vpc_id) {
                        self.cloud.associate_vpc(&zone.id, &self.cfg.vpc_id).await?;
                    }
                    return self.adopt(zone, ZoneClaim::OursUntagged).await;
                }
                Err(conflict @ CloudError::ConflictingDomain(_)) => {
                    // A zone of this name joined the VPC since we looked: ours, or refused.
                    return match self.observe_zone().await? {
                        Some((zone, claim)) => self.adopt(zone, claim).await,
                        None => Err(conflict),
                    };
                }
                Err(e) => return Err(e),
            }
        }
        Err(CloudError::CallerReferenceUsed(format!(
            "every caller reference from {} to attempt {REFERENCE_ATTEMPTS} was spent on hosted \
             zones since deleted; deleting and creating the binding again starts a new series",
            self.own.zone_reference(generation, 1)
        )))
    }

    /// The comment a zone this agent creates carries, for people reading the console (the
    /// tags, not the comment, say whose it is).
    fn zone_comment(&self) -> String {
        format!(
            "managed by pld cluster {} for {}",
            self.own.cluster(),
            self.cfg.vpc_id
        )
    }

    /// Deletes the zone when this agent created it and nothing of ours is left in it.
    pub(super) async fn maybe_delete_zone(
        &self,
        records: &[RecordSet],
    ) -> Result<bool, CloudError> {
        let Some(zone_id) = self.memory().zone_id.clone() else {
            return Ok(false);
        };
        if self.cfg.dns.hosted_zone_id.is_some()
            || records.iter().any(|r| r.kind != "SOA" && r.kind != "NS")
        {
            return Ok(false);
        }
        let zone = self.cloud.get_hosted_zone(&zone_id).await?;
        let tags = self.cloud.hosted_zone_tags(&zone_id).await?;
        if self.own.zone_claim(&zone, &tags) == ZoneClaim::Foreign {
            return Ok(false);
        }
        match self.cloud.delete_hosted_zone(&zone_id).await {
            Ok(()) | Err(CloudError::NotFound { .. }) => {
                info!(zone = %zone.name, "deleted private hosted zone");
                self.memory().zone_id = None;
                Ok(false)
            }
            Err(CloudError::DependencyViolation(_)) => Ok(false),
            Err(e) => Err(e),
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
