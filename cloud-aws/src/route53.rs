//! Route 53: private hosted zones, their VPC associations, record sets and change status.

use aws_sdk_route53::types::{
    Change, ChangeAction as R53Action, ChangeBatch, HostedZoneConfig, ResourceRecord,
    ResourceRecordSet, RrType, Tag as R53Tag, TagResourceType, VpcRegion,
};
use pld_cloud::{
    fqdn, Action, ChangeAction, ChangeStatus, CloudError, CloudResult, HostedZone, RecordChange,
    RecordSet, Tags,
};

use crate::convert::strip_zone;
use crate::error;
use crate::AwsCloud;

impl AwsCloud {
    pub(crate) async fn hosted_zones_of_vpc(&self, vpc_id: &str) -> CloudResult<Vec<HostedZone>> {
        let mut zones = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .r53
                .list_hosted_zones_by_vpc()
                .vpc_id(vpc_id)
                .vpc_region(VpcRegion::from(self.region.as_str()))
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| error::map(Action::ListHostedZonesByVPC, e))?;
            for z in out.hosted_zone_summaries() {
                zones.push(HostedZone {
                    id: strip_zone(z.hosted_zone_id()),
                    name: fqdn(z.name()),
                    vpc_ids: vec![vpc_id.to_string()],
                    comment: String::new(),
                    caller_reference: String::new(),
                });
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(zones);
            }
        }
    }

    pub(crate) async fn get_hosted_zone(&self, zone_id: &str) -> CloudResult<HostedZone> {
        let out = self
            .r53
            .get_hosted_zone()
            .id(zone_id)
            .send()
            .await
            .map_err(|e| error::map(Action::GetHostedZone, e))?;
        let zone = out.hosted_zone().ok_or_else(|| CloudError::NotFound {
            what: "hosted zone",
            id: zone_id.to_string(),
        })?;
        Ok(HostedZone {
            id: strip_zone(zone.id()),
            name: fqdn(zone.name()),
            vpc_ids: out
                .vpcs()
                .iter()
                .filter_map(|v| v.vpc_id().map(str::to_string))
                .collect(),
            comment: zone
                .config()
                .and_then(|c| c.comment())
                .unwrap_or_default()
                .to_string(),
            caller_reference: zone.caller_reference().to_string(),
        })
    }

    pub(crate) async fn hosted_zones_named(&self, name: &str) -> CloudResult<Vec<HostedZone>> {
        let name = fqdn(name);
        let mut zones = Vec::new();
        // The list is ordered by name and starts at `name`: read on only while the next page
        // still starts with zones of that name.
        let mut next_id: Option<String> = None;
        loop {
            let out = self
                .r53
                .list_hosted_zones_by_name()
                .dns_name(&name)
                .set_hosted_zone_id(next_id.clone())
                .send()
                .await
                .map_err(|e| error::map(Action::ListHostedZonesByName, e))?;
            for z in out.hosted_zones() {
                if fqdn(z.name()) != name {
                    return Ok(zones);
                }
                zones.push(HostedZone {
                    id: strip_zone(z.id()),
                    name: fqdn(z.name()),
                    vpc_ids: Vec::new(),
                    comment: z
                        .config()
                        .and_then(|c| c.comment())
                        .unwrap_or_default()
                        .to_string(),
                    caller_reference: z.caller_reference().to_string(),
                });
            }
            match (
                out.is_truncated(),
                out.next_dns_name(),
                out.next_hosted_zone_id(),
            ) {
                (true, Some(n), Some(id)) if fqdn(n) == name => next_id = Some(id.to_string()),
                _ => return Ok(zones),
            }
        }
    }

    pub(crate) async fn tag_hosted_zone(&self, zone_id: &str, tags: &Tags) -> CloudResult<()> {
        let tags: Vec<R53Tag> = tags
            .iter()
            .map(|(k, v)| R53Tag::builder().key(k).value(v).build())
            .collect();
        self.r53
            .change_tags_for_resource()
            .resource_type(TagResourceType::Hostedzone)
            .resource_id(zone_id)
            .set_add_tags(Some(tags))
            .send()
            .await
            .map_err(|e| error::map(Action::ChangeTagsForResource, e))?;
        Ok(())
    }

    pub(crate) async fn hosted_zone_tags(&self, zone_id: &str) -> CloudResult<Tags> {
        let out = self
            .r53
            .list_tags_for_resource()
            .resource_type(TagResourceType::Hostedzone)
            .resource_id(zone_id)
            .send()
            .await
            .map_err(|e| error::map(Action::ListTagsForResource, e))?;
        Ok(out
            .resource_tag_set()
            .map(|set| {
                set.tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                    .collect()
            })
            .unwrap_or_default())
    }

    pub(crate) async fn create_hosted_zone(
        &self,
        name: &str,
        vpc_id: &str,
        caller_reference: &str,
        comment: &str,
    ) -> CloudResult<HostedZone> {
        let vpc = aws_sdk_route53::types::Vpc::builder()
            .vpc_id(vpc_id)
            .vpc_region(VpcRegion::from(self.region.as_str()))
            .build();
        let out = self
            .r53
            .create_hosted_zone()
            .name(name)
            .caller_reference(caller_reference)
            .hosted_zone_config(
                HostedZoneConfig::builder()
                    .private_zone(true)
                    .comment(comment)
                    .build(),
            )
            .vpc(vpc)
            .send()
            .await
            .map_err(|e| error::map(Action::CreateHostedZone, e))?;
        let zone = out
            .hosted_zone()
            .ok_or_else(|| CloudError::Client("CreateHostedZone returned no zone".into()))?;
        Ok(HostedZone {
            id: strip_zone(zone.id()),
            name: fqdn(zone.name()),
            vpc_ids: vec![vpc_id.to_string()],
            comment: comment.to_string(),
            caller_reference: caller_reference.to_string(),
        })
    }

    pub(crate) async fn associate_vpc(&self, zone_id: &str, vpc_id: &str) -> CloudResult<()> {
        let vpc = aws_sdk_route53::types::Vpc::builder()
            .vpc_id(vpc_id)
            .vpc_region(VpcRegion::from(self.region.as_str()))
            .build();
        self.r53
            .associate_vpc_with_hosted_zone()
            .hosted_zone_id(zone_id)
            .vpc(vpc)
            .send()
            .await
            .map_err(|e| error::map(Action::AssociateVPCWithHostedZone, e))?;
        Ok(())
    }

    pub(crate) async fn delete_hosted_zone(&self, zone_id: &str) -> CloudResult<()> {
        self.r53
            .delete_hosted_zone()
            .id(zone_id)
            .send()
            .await
            .map_err(|e| error::map(Action::DeleteHostedZone, e))?;
        Ok(())
    }

    pub(crate) async fn change_records(
        &self,
        zone_id: &str,
        changes: &[RecordChange],
    ) -> CloudResult<String> {
        let mut batch = Vec::new();
        for c in changes {
            let action = match c.action {
                ChangeAction::Create => R53Action::Create,
                ChangeAction::Upsert => R53Action::Upsert,
                ChangeAction::Delete => R53Action::Delete,
            };
            let records: Result<Vec<ResourceRecord>, _> = c
                .record
                .values
                .iter()
                .map(|v| ResourceRecord::builder().value(v).build())
                .collect();
            let set = ResourceRecordSet::builder()
                .name(&c.record.name)
                .r#type(RrType::from(c.record.kind.as_str()))
                .ttl(i64::from(c.record.ttl))
                .set_resource_records(Some(
                    records.map_err(|e| CloudError::Client(e.to_string()))?,
                ))
                .build()
                .map_err(|e| CloudError::Client(e.to_string()))?;
            batch.push(
                Change::builder()
                    .action(action)
                    .resource_record_set(set)
                    .build()
                    .map_err(|e| CloudError::Client(e.to_string()))?,
            );
        }
        let out = self
            .r53
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(
                ChangeBatch::builder()
                    .set_changes(Some(batch))
                    .build()
                    .map_err(|e| CloudError::Client(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| error::map(Action::ChangeResourceRecordSets, e))?;
        Ok(out
            .change_info()
            .map(|i| i.id().trim_start_matches("/change/").to_string())
            .unwrap_or_default())
    }

    pub(crate) async fn get_change(&self, change_id: &str) -> CloudResult<ChangeStatus> {
        let out = self
            .r53
            .get_change()
            .id(change_id)
            .send()
            .await
            .map_err(|e| error::map(Action::GetChange, e))?;
        Ok(
            match out
                .change_info()
                .map(|i| i.status().as_str().to_ascii_uppercase())
            {
                Some(s) if s == "INSYNC" => ChangeStatus::InSync,
                _ => ChangeStatus::Pending,
            },
        )
    }

    pub(crate) async fn list_records(&self, zone_id: &str) -> CloudResult<Vec<RecordSet>> {
        let mut records = Vec::new();
        let mut start: Option<(String, RrType)> = None;
        loop {
            let (name, kind) = match &start {
                Some((n, k)) => (Some(n.clone()), Some(k.clone())),
                None => (None, None),
            };
            let out = self
                .r53
                .list_resource_record_sets()
                .hosted_zone_id(zone_id)
                .set_start_record_name(name)
                .set_start_record_type(kind)
                .send()
                .await
                .map_err(|e| error::map(Action::ListResourceRecordSets, e))?;
            for r in out.resource_record_sets() {
                records.push(RecordSet {
                    name: fqdn(r.name()),
                    kind: r.r#type().as_str().to_string(),
                    ttl: r
                        .ttl()
                        .and_then(|t| u32::try_from(t).ok())
                        .unwrap_or_default(),
                    values: r
                        .resource_records()
                        .iter()
                        .map(|v| v.value().to_string())
                        .collect(),
                });
            }
            match (
                out.is_truncated(),
                out.next_record_name(),
                out.next_record_type(),
            ) {
                (true, Some(n), Some(k)) => start = Some((n.to_string(), k.clone())),
                _ => return Ok(records),
            }
        }
    }
}
