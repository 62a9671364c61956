//! The consumer's private hosted zone: finding it after a restart, creating and associating it
//! when a name is first published, deleting it when this agent made it and nothing of ours is
//! left, and submitting a pass's record changes to it as one batch.

use pld_cloud::{CloudError, RecordSet};
use tracing::info;

use super::records::DnsBatch;
use super::Reconciler;
use crate::crash_points::crash_point;

impl Reconciler {
    /// Remembers the zone if it exists already.
    pub(super) async fn find_zone(&self) -> Result<(), CloudError> {
        let id = match &self.cfg.dns.hosted_zone_id {
            Some(id) => Some(id.clone()),
            None => {
                let zone_name = self.cfg.zone_fqdn();
                self.cloud
                    .hosted_zones_of_vpc(&self.cfg.vpc_id)
                    .await?
                    .into_iter()
                    .find(|z| z.name == zone_name)
                    .map(|z| z.id)
            }
        };
        self.memory().zone_id = id;
        Ok(())
    }

    /// Finds or creates the private hosted zone and associates this VPC with it.
    pub(super) async fn ensure_zone(&self) -> Result<(), CloudError> {
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
            let existing = self.cloud.hosted_zones_of_vpc(&self.cfg.vpc_id).await?;
            match existing.into_iter().find(|z| z.name == zone_name) {
                Some(z) => z.id,
                None => {
                    // Route 53 refuses a caller reference used before, even for a zone since
                    // deleted, so each attempt has its own. A retry after a crash does not need
                    // the same one: it finds the zone by name first (above).
                    // (At most 128 characters: the VPC and the time are enough.)
                    let reference = format!(
                        "pld-{}-{}",
                        self.cfg.vpc_id,
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_millis())
                    );
                    match self
                        .cloud
                        .create_hosted_zone(
                            &zone_name,
                            &self.cfg.vpc_id,
                            &reference,
                            &self.zone_comment(),
                        )
                        .await
                    {
                        Ok(z) => {
                            crash_point!("consumer-zone-created");
                            info!(zone = %z.name, id = %z.id, "created private hosted zone");
                            z.id
                        }
                        Err(CloudError::AlreadyExists { id, .. }) => id,
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        self.memory().zone_id = Some(id);
        Ok(())
    }

    /// The comment a zone this agent creates carries: Route 53 cannot tag at create, so the
    /// comment is what tells "ours to delete" apart.
    fn zone_comment(&self) -> String {
        format!(
            "managed by pld cluster {} for {}",
            self.cfg.cluster_id, self.cfg.vpc_id
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
        if zone.comment != self.zone_comment() {
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
        crash_point!("consumer-dns-submitted");
        let mut memory = self.memory();
        for key in dns.keys {
            memory.in_sync.remove(&key);
            memory.changes.insert(key, change.clone());
        }
        Ok(true)
    }
}
