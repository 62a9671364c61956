//! Route 53 private hosted zones: zones and their VPC associations, record sets, and changes
//! that are `PENDING` before `INSYNC` (ChangeResourceRecordSets, GetChange).

use std::time::Instant;

use super::cloud::SimCloud;
use super::ids::not_found;
use super::{State, ZoneRec};
use crate::types::*;
use crate::{Action, CloudError, CloudResult};

impl SimCloud {
    pub(super) fn zone<'a>(&self, st: &'a mut State, id: &str) -> CloudResult<&'a mut ZoneRec> {
        st.zones
            .get_mut(id)
            .filter(|z| z.owner == self.account)
            .ok_or_else(|| not_found("hosted zone", id))
    }

    pub(super) async fn hosted_zones_of_vpc(&self, vpc_id: &str) -> CloudResult<Vec<HostedZone>> {
        let st = self.gate(Action::ListHostedZonesByVPC)?;
        Ok(st
            .zones
            .values()
            .filter(|z| z.zone.vpc_ids.iter().any(|v| v == vpc_id))
            .map(|z| z.zone.clone())
            .collect())
    }

    pub(super) async fn get_hosted_zone(&self, zone_id: &str) -> CloudResult<HostedZone> {
        let mut st = self.gate(Action::GetHostedZone)?;
        Ok(self.zone(&mut st, zone_id)?.zone.clone())
    }

    pub(super) async fn create_hosted_zone(
        &self,
        name: &str,
        vpc_id: &str,
        caller_reference: &str,
        comment: &str,
    ) -> CloudResult<HostedZone> {
        let mut st = self.gate(Action::CreateHostedZone)?;
        // CreateHostedZone, Errors: HostedZoneAlreadyExists (HTTP 409) when the CallerReference
        // was used before. References are kept past their zone's delete (`caller_refs` is never
        // pruned), and the error names no zone: the caller must find it itself.
        if st
            .caller_refs
            .contains_key(&(self.account.clone(), caller_reference.to_string()))
        {
            return Err(CloudError::CallerReferenceUsed(format!(
                "CreateHostedZone: HostedZoneAlreadyExists The hosted zone you're trying to create already exists. Amazon Route 53 returns this error when a hosted zone has already been created with the specified CallerReference ({caller_reference})."
            )));
        }
        if !st.vpcs.contains_key(vpc_id) {
            return Err(CloudError::InvalidParameter(format!(
                "InvalidVPCId: {vpc_id}"
            )));
        }
        let name = fqdn(name);
        conflicting_domain(&st, Action::CreateHostedZone, &name, vpc_id)?;
        st.next_id += 1;
        let id = format!("Z{:019X}", 0x0000_1000_0000_0000u64 + st.next_id);
        let zone = HostedZone {
            id: id.clone(),
            name: name.clone(),
            vpc_ids: vec![vpc_id.to_string()],
            comment: comment.to_string(),
            caller_reference: caller_reference.to_string(),
        };
        let mut records = std::collections::BTreeMap::new();
        records.insert(
            (name.clone(), "SOA".to_string()),
            RecordSet {
                name: name.clone(),
                kind: "SOA".into(),
                ttl: 900,
                values: vec!["ns-1536.awsdns-00.co.uk. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400".into()],
            },
        );
        records.insert(
            (name.clone(), "NS".to_string()),
            RecordSet {
                name: name.clone(),
                kind: "NS".into(),
                ttl: 172800,
                values: vec!["ns-1536.awsdns-00.co.uk.".into()],
            },
        );
        st.zones.insert(
            id.clone(),
            ZoneRec {
                zone: zone.clone(),
                owner: self.account.clone(),
                records,
                last_change: None,
                tags: Tags::new(),
            },
        );
        st.caller_refs
            .insert((self.account.clone(), caller_reference.to_string()), id);
        Ok(zone)
    }

    pub(super) async fn associate_vpc(&self, zone_id: &str, vpc_id: &str) -> CloudResult<()> {
        let mut st = self.gate(Action::AssociateVPCWithHostedZone)?;
        let vpc_owner = st.vpcs.get(vpc_id).map(|v| v.account.clone());
        let account = self.account.clone();
        let zone = st
            .zones
            .get_mut(zone_id)
            .ok_or_else(|| not_found("hosted zone", zone_id))?;
        if vpc_owner.as_deref() != Some(account.as_str()) && zone.owner != account {
            return Err(CloudError::Unauthorized(format!(
                "associating {vpc_id} with {zone_id} needs CreateVPCAssociationAuthorization by the zone owner"
            )));
        }
        if zone.zone.vpc_ids.iter().any(|v| v == vpc_id) {
            return Ok(());
        }
        let name = zone.zone.name.clone();
        conflicting_domain(&st, Action::AssociateVPCWithHostedZone, &name, vpc_id)?;
        if let Some(zone) = st.zones.get_mut(zone_id) {
            zone.zone.vpc_ids.push(vpc_id.to_string());
        }
        Ok(())
    }

    /// ListHostedZonesByName: the zones of this account (never another's) with this name.
    pub(super) async fn hosted_zones_named(&self, name: &str) -> CloudResult<Vec<HostedZone>> {
        let st = self.gate(Action::ListHostedZonesByName)?;
        let name = fqdn(name);
        Ok(st
            .zones
            .values()
            .filter(|z| z.owner == self.account && z.zone.name == name)
            // The real answer is a list of HostedZone, which carries no VPCs.
            .map(|z| HostedZone {
                vpc_ids: Vec::new(),
                ..z.zone.clone()
            })
            .collect())
    }

    /// ChangeTagsForResource on a hosted zone.
    pub(super) async fn tag_hosted_zone(&self, zone_id: &str, tags: &Tags) -> CloudResult<()> {
        let mut st = self.gate(Action::ChangeTagsForResource)?;
        // ChangeTagsForResource, AddTags: "Array Members: Minimum number of 1 item. Maximum
        // number of 10 items."; Tag Key at most 128 characters, Value at most 256.
        if tags.is_empty() || tags.len() > 10 {
            return Err(CloudError::InvalidParameter(format!(
                "ChangeTagsForResource: InvalidInput AddTags holds 1 to 10 tags, not {}",
                tags.len()
            )));
        }
        if let Some((k, _)) = tags.iter().find(|(k, v)| k.len() > 128 || v.len() > 256) {
            return Err(CloudError::InvalidParameter(format!(
                "ChangeTagsForResource: InvalidInput tag {k:?} is longer than Route 53 allows"
            )));
        }
        let zone = self.zone(&mut st, zone_id)?;
        // "You can associate up to 50 tags with a resource" (Route 53 tagging limits).
        let mut merged = zone.tags.clone();
        merged.extend(tags.clone());
        if merged.len() > 50 {
            return Err(CloudError::InvalidParameter(format!(
                "ChangeTagsForResource: InvalidInput {zone_id} would have {} tags, more than 50",
                merged.len()
            )));
        }
        zone.tags = merged;
        Ok(())
    }

    /// ListTagsForResource of a hosted zone.
    pub(super) async fn hosted_zone_tags(&self, zone_id: &str) -> CloudResult<Tags> {
        let mut st = self.gate(Action::ListTagsForResource)?;
        Ok(self.zone(&mut st, zone_id)?.tags.clone())
    }

    pub(super) async fn delete_hosted_zone(&self, zone_id: &str) -> CloudResult<()> {
        let mut st = self.gate(Action::DeleteHostedZone)?;
        let zone = self.zone(&mut st, zone_id)?;
        if zone
            .records
            .values()
            .any(|r| r.kind != "SOA" && r.kind != "NS")
        {
            return Err(CloudError::DependencyViolation(format!(
                "HostedZoneNotEmpty: {zone_id} still has records"
            )));
        }
        st.zones.remove(zone_id);
        Ok(())
    }

    pub(super) async fn change_records(
        &self,
        zone_id: &str,
        changes: &[RecordChange],
    ) -> CloudResult<String> {
        let mut st = self.gate(Action::ChangeResourceRecordSets)?;
        let now = Instant::now();
        let insync = self.region.config.latency.change_insync;
        let pending_change = {
            let zone = self.zone(&mut st, zone_id)?;
            zone.last_change.clone()
        };
        if let Some(change) = pending_change {
            if st.changes.get(&change).is_some_and(|t| now < *t + insync) {
                return Err(CloudError::PriorRequestNotComplete(zone_id.to_string()));
            }
        }
        if changes.is_empty() || changes.len() > 1000 {
            return Err(CloudError::InvalidParameter(format!(
                "a change batch holds 1 to 1000 changes, not {}",
                changes.len()
            )));
        }
        let zone = self.zone(&mut st, zone_id)?;
        // Validate the whole batch against a copy, then commit it: batches are atomic.
        let mut records = zone.records.clone();
        for c in changes {
            let name = fqdn(&c.record.name);
            if !(name == zone.zone.name || name.ends_with(&format!(".{}", zone.zone.name))) {
                return Err(CloudError::InvalidParameter(format!(
                    "InvalidChangeBatch: {name} is not in zone {}",
                    zone.zone.name
                )));
            }
            let key = (name.clone(), c.record.kind.clone());
            let mut record = c.record.clone();
            record.name = name.clone();
            let cname_conflict = records
                .keys()
                .any(|(n, k)| n == &name && (k == "CNAME") != (c.record.kind == "CNAME"));
            match c.action {
                ChangeAction::Create => {
                    if records.contains_key(&key) {
                        return Err(CloudError::InvalidParameter(format!(
                            "InvalidChangeBatch: tried to create resource record set {name} type {} but it already exists",
                            c.record.kind
                        )));
                    }
                    if cname_conflict {
                        return Err(CloudError::InvalidParameter(format!(
                            "InvalidChangeBatch: RRSet of type CNAME with DNS name {name} is not permitted as it conflicts with other records with the same DNS name"
                        )));
                    }
                    records.insert(key, record);
                }
                ChangeAction::Upsert => {
                    if cname_conflict {
                        return Err(CloudError::InvalidParameter(format!(
                            "InvalidChangeBatch: RRSet of type CNAME with DNS name {name} conflicts with other records"
                        )));
                    }
                    records.insert(key, record);
                }
                ChangeAction::Delete => match records.get(&key) {
                    Some(existing) if existing.values == record.values && existing.ttl == record.ttl => {
                        records.remove(&key);
                    }
                    _ => {
                        return Err(CloudError::InvalidParameter(format!(
                            "InvalidChangeBatch: tried to delete resource record set {name} type {} but it was not found or its values do not match",
                            c.record.kind
                        )))
                    }
                },
            }
        }
        zone.records = records;
        let change_id = format!("C{:019X}", rand::random::<u64>() >> 2);
        zone.last_change = Some(change_id.clone());
        st.changes.insert(change_id.clone(), now);
        Ok(change_id)
    }

    pub(super) async fn get_change(&self, change_id: &str) -> CloudResult<ChangeStatus> {
        let st = self.gate(Action::GetChange)?;
        let at = st
            .changes
            .get(change_id)
            .ok_or_else(|| not_found("change", change_id))?;
        Ok(
            if Instant::now() >= *at + self.region.config.latency.change_insync {
                ChangeStatus::InSync
            } else {
                ChangeStatus::Pending
            },
        )
    }

    pub(super) async fn list_records(&self, zone_id: &str) -> CloudResult<Vec<RecordSet>> {
        let mut st = self.gate(Action::ListResourceRecordSets)?;
        Ok(self
            .zone(&mut st, zone_id)?
            .records
            .values()
            .cloned()
            .collect())
    }
}

/// CreateHostedZone and AssociateVPCWithHostedZone, Errors: ConflictingDomainExists when "a
/// hosted zone with the specified name already exists and is already associated with the
/// Amazon VPC that you specified" (private zones of one name may coexist, never in one VPC).
fn conflicting_domain(st: &State, action: Action, name: &str, vpc_id: &str) -> CloudResult<()> {
    match st
        .zones
        .values()
        .find(|z| z.zone.name == name && z.zone.vpc_ids.iter().any(|v| v == vpc_id))
    {
        Some(z) => Err(CloudError::ConflictingDomain(format!(
            "{action}: ConflictingDomainExists The VPC {vpc_id} is already associated with hosted zone {} named {name}",
            z.zone.id
        ))),
        None => Ok(()),
    }
}
