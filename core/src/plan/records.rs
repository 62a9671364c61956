//! The pure part of publishing names: which record changes make a zone's records say what the
//! bindings want, without taking a name pld does not own.
//!
//! Every name pld publishes has an A record and a TXT record `"pld-owner=OWNER"` beside it
//! (external-dns's TXT registry): pld updates or deletes a name only where that TXT names the
//! binding, so records someone else made are never touched.

use std::collections::BTreeSet;

use crate::aws::types::{ChangeAction, RecordChange, RecordSet};
use crate::aws::Action;

use super::ownership::{Owner, Ownership};
use super::{Reason, Step};

/// TTL of published records unless the agent's config says otherwise (`[dns] ttl_seconds`).
pub const RECORD_TTL: u32 = 30;

/// Record changes of one pass, sent as one Route 53 batch (a zone takes one change at a time).
#[derive(Debug)]
pub struct DnsBatch {
    /// The TTL records are published with: how long resolvers may keep an old answer.
    pub ttl: u32,
    pub changes: Vec<RecordChange>,
    /// One step per name the changes touch, saying why: what the batch does, for people.
    pub steps: Vec<Step>,
    /// The bindings whose records the batch changes: they wait on its change id.
    pub keys: Vec<String>,
    /// Names already queued for deletion, so a name is never deleted twice in one batch.
    removed: BTreeSet<String>,
}

impl Default for DnsBatch {
    fn default() -> Self {
        DnsBatch::with_ttl(RECORD_TTL)
    }
}

impl DnsBatch {
    /// An empty batch whose records carry `ttl`.
    pub fn with_ttl(ttl: u32) -> Self {
        DnsBatch {
            ttl,
            changes: Vec::new(),
            steps: Vec::new(),
            keys: Vec::new(),
            removed: BTreeSet::new(),
        }
    }

    fn owner_value(owner: &Owner) -> String {
        format!("\"pld-owner={owner}\"")
    }

    /// The records pld keeps for a binding's `name`: A with its endpoint's `addresses`, and the
    /// TXT naming `owner`. What a zone holds for a binding its agent published.
    pub fn records_for(&self, name: &str, addresses: &[String], owner: &Owner) -> Vec<RecordSet> {
        vec![
            RecordSet {
                name: name.to_string(),
                kind: "A".into(),
                ttl: self.ttl,
                values: addresses.to_vec(),
            },
            RecordSet {
                name: name.to_string(),
                kind: "TXT".into(),
                ttl: self.ttl,
                values: vec![Self::owner_value(owner)],
            },
        ]
    }

    /// (name, owner) of every record pld marked as its own; a TXT naming no owner pld
    /// writes is nobody's.
    pub fn owners(records: &[RecordSet]) -> Vec<(String, Owner)> {
        records
            .iter()
            .filter(|r| r.kind == "TXT")
            .flat_map(|r| {
                r.values.iter().filter_map(|v| {
                    let owner = v.strip_prefix("\"pld-owner=")?.strip_suffix('"')?;
                    Some((r.name.clone(), owner.parse().ok()?))
                })
            })
            .collect()
    }

    /// Names in `records` holding records that no binding of `own`'s VPC marked as its own:
    /// none of its bindings may publish there ([`DnsBatch::upsert`] refuses the name).
    pub fn names_not_ours(records: &[RecordSet], own: &Ownership) -> Vec<String> {
        let ours: BTreeSet<String> = Self::owners(records)
            .into_iter()
            .filter(|(_, owner)| own.is_our_binding(owner))
            .map(|(name, _)| name)
            .collect();
        let mut names: Vec<String> = records
            .iter()
            .filter(|r| matches!(r.kind.as_str(), "A" | "AAAA" | "TXT" | "CNAME"))
            .filter(|r| !ours.contains(&r.name))
            .map(|r| r.name.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The addresses `name`'s A record holds when pld owns it for `owner`; empty otherwise.
    pub fn published(name: &str, records: &[RecordSet], owner: &Owner) -> Vec<String> {
        let ours = records.iter().any(|r| {
            r.name == name && r.kind == "TXT" && r.values.contains(&Self::owner_value(owner))
        });
        records
            .iter()
            .filter(|r| ours && r.name == name && r.kind == "A")
            .flat_map(|r| r.values.clone())
            .collect()
    }

    /// Queues A and ownership TXT records for `name`; Ok(false) when they are already right
    /// (unless `again`: then they are queued anyway), Err when the name holds records pld does
    /// not own.
    pub fn upsert(
        &mut self,
        name: &str,
        addresses: &[String],
        records: &[RecordSet],
        owner: &Owner,
        again: bool,
    ) -> Result<bool, String> {
        let txt = records.iter().find(|r| r.name == name && r.kind == "TXT");
        let a = records.iter().find(|r| r.name == name && r.kind == "A");
        let ours = txt.is_some_and(|t| t.values.contains(&Self::owner_value(owner)));
        if !ours
            && (a.is_some()
                || txt.is_some()
                || records.iter().any(|r| r.name == name && r.kind == "CNAME"))
        {
            return Err(format!("{name} already has records that pld does not own; remove them or pick another zone"));
        }
        let mut wanted: Vec<String> = addresses.to_vec();
        wanted.sort();
        let have: Option<Vec<String>> = a.map(|a| {
            let mut have = a.values.clone();
            have.sort();
            have
        });
        let ttl = a.map(|a| a.ttl);
        let reason = match &have {
            None => Reason::Missing,
            Some(_) if !ours => Reason::Missing,
            Some(have) if *have != wanted => Reason::Drift(format!(
                "A is {}, the endpoint's addresses are {}",
                have.join(","),
                wanted.join(",")
            )),
            Some(_) if ttl != Some(self.ttl) => Reason::Drift(format!(
                "the TTL is {}s, the config says {}s",
                ttl.unwrap_or_default(),
                self.ttl
            )),
            Some(_) if again => Reason::Unconfirmed,
            Some(_) => return Ok(false),
        };
        self.steps.push(Step {
            action: Action::ChangeResourceRecordSets,
            target: name.to_string(),
            reason,
        });
        self.changes.push(RecordChange {
            action: ChangeAction::Upsert,
            record: RecordSet {
                name: name.to_string(),
                kind: "A".into(),
                ttl: self.ttl,
                values: wanted,
            },
        });
        self.changes.push(RecordChange {
            action: ChangeAction::Upsert,
            record: RecordSet {
                name: name.to_string(),
                kind: "TXT".into(),
                ttl: self.ttl,
                values: vec![Self::owner_value(owner)],
            },
        });
        Ok(true)
    }

    /// Queues deletion of `name`'s records when pld owns them.
    pub fn remove(&mut self, name: &str, records: &[RecordSet], owner: &Owner) {
        let ours = records.iter().any(|r| {
            r.name == name && r.kind == "TXT" && r.values.contains(&Self::owner_value(owner))
        });
        if !ours || !self.removed.insert(name.to_string()) {
            return;
        }
        self.steps.push(Step {
            action: Action::ChangeResourceRecordSets,
            target: name.to_string(),
            reason: Reason::Orphan,
        });
        for r in records
            .iter()
            .filter(|r| r.name == name && (r.kind == "A" || r.kind == "TXT"))
        {
            self.changes.push(RecordChange {
                action: ChangeAction::Delete,
                record: r.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ownership::Ownership;

    const NAME: &str = "demo.pld.internal.";

    fn record(kind: &str, values: &[&str]) -> RecordSet {
        RecordSet {
            name: NAME.into(),
            kind: kind.into(),
            ttl: RECORD_TTL,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn owner() -> Owner {
        Ownership::new("pld", "vpc-1").binding("demo/vpc-1")
    }

    #[test]
    fn records_carry_the_configured_ttl_and_follow_a_change_of_it() {
        let txt = format!("\"pld-owner={}\"", owner());
        let records = [record("A", &["10.0.0.5"]), record("TXT", &[&txt])];
        let addresses = ["10.0.0.5".to_string()];
        // As published: nothing to do.
        let mut same = DnsBatch::default();
        assert_eq!(
            same.upsert(NAME, &addresses, &records, &owner(), false),
            Ok(false)
        );
        // A shorter TTL configured: both records are written again with it.
        let mut short = DnsBatch::with_ttl(5);
        assert_eq!(
            short.upsert(NAME, &addresses, &records, &owner(), false),
            Ok(true)
        );
        assert!(short.changes.iter().all(|c| c.record.ttl == 5));
        assert_eq!(
            short.steps[0].reason.to_string(),
            "differs: the TTL is 30s, the config says 5s"
        );
    }

    #[test]
    fn a_free_name_gets_an_a_and_an_owner_txt() {
        let mut dns = DnsBatch::default();
        let addrs = ["10.0.0.2".to_string(), "10.0.0.1".to_string()];
        assert_eq!(dns.upsert(NAME, &addrs, &[], &owner(), false), Ok(true));
        let kinds: Vec<&str> = dns.changes.iter().map(|c| c.record.kind.as_str()).collect();
        assert_eq!(kinds, ["A", "TXT"]);
        assert_eq!(dns.changes[0].record.values, ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(
            DnsBatch::owners(&[dns.changes[1].record.clone()]),
            [(NAME.to_string(), owner())]
        );
        assert_eq!(reasons(&dns), [Reason::Missing]);
    }

    fn reasons(dns: &DnsBatch) -> Vec<Reason> {
        dns.steps.iter().map(|s| s.reason.clone()).collect()
    }

    /// Desired addresses × observed records → the reason of the one step planned, if any.
    #[test]
    fn each_step_says_why() {
        let txt = DnsBatch::owner_value(&owner());
        let ours = |a: &[&str]| vec![record("A", a), record("TXT", &[&txt])];
        let cases: Vec<(&str, Vec<RecordSet>, bool, Option<Reason>)> = vec![
            ("a free name", vec![], false, Some(Reason::Missing)),
            // A crash after the TXT went in but before the A did (Route 53 applies a batch
            // whole, but another writer may have deleted one).
            (
                "our TXT without its A",
                vec![record("TXT", &[&txt])],
                false,
                Some(Reason::Missing),
            ),
            (
                "the endpoint's addresses moved",
                ours(&["10.0.0.9"]),
                false,
                Some(Reason::Drift(
                    "A is 10.0.0.9, the endpoint's addresses are 10.0.0.1".into(),
                )),
            ),
            ("already right", ours(&["10.0.0.1"]), false, None),
            // Written before a restart, never seen INSYNC: once more, to wait on.
            (
                "right but unconfirmed",
                ours(&["10.0.0.1"]),
                true,
                Some(Reason::Unconfirmed),
            ),
        ];
        for (case, have, again, want) in cases {
            let mut dns = DnsBatch::default();
            let planned = dns.upsert(NAME, &["10.0.0.1".into()], &have, &owner(), again);
            assert_eq!(planned, Ok(want.is_some()), "{case}");
            assert_eq!(
                reasons(&dns),
                want.into_iter().collect::<Vec<_>>(),
                "{case}"
            );
            // Every planned step is an A and a TXT change, never more.
            assert_eq!(dns.changes.len(), 2 * dns.steps.len(), "{case}");
        }
        let mut dns = DnsBatch::default();
        dns.remove(NAME, &ours(&["10.0.0.1"]), &owner());
        assert_eq!(reasons(&dns), [Reason::Orphan]);
        assert_eq!(
            dns.steps[0].to_string(),
            format!("ChangeResourceRecordSets {NAME}: its catalog object is gone")
        );
    }

    #[test]
    fn records_already_right_are_left_alone_unless_asked_again() {
        let txt = DnsBatch::owner_value(&owner());
        let have = [record("A", &["10.0.0.1"]), record("TXT", &[&txt])];
        assert_eq!(DnsBatch::published(NAME, &have, &owner()), ["10.0.0.1"]);
        let mut dns = DnsBatch::default();
        assert_eq!(
            dns.upsert(NAME, &["10.0.0.1".into()], &have, &owner(), false),
            Ok(false)
        );
        assert!(dns.changes.is_empty());
        assert_eq!(
            dns.upsert(NAME, &["10.0.0.1".into()], &have, &owner(), true),
            Ok(true)
        );
    }

    #[test]
    fn a_name_someone_else_holds_is_neither_taken_nor_deleted() {
        let have = [record("A", &["192.0.2.1"])];
        assert!(DnsBatch::published(NAME, &have, &owner()).is_empty());
        let mut dns = DnsBatch::default();
        assert!(dns
            .upsert(NAME, &["10.0.0.1".into()], &have, &owner(), false)
            .is_err());
        dns.remove(NAME, &have, &owner());
        assert!(dns.changes.is_empty());
    }

    #[test]
    fn an_owned_name_is_deleted_once_per_batch() {
        let txt = DnsBatch::owner_value(&owner());
        let have = [record("A", &["10.0.0.1"]), record("TXT", &[&txt])];
        let mut dns = DnsBatch::default();
        dns.remove(NAME, &have, &owner());
        dns.remove(NAME, &have, &owner());
        assert_eq!(dns.changes.len(), 2);
        assert!(dns.changes.iter().all(|c| c.action == ChangeAction::Delete));
    }
}
