//! The consumer's private hosted zone: which zone the agent publishes into, the writes that
//! make it usable (created under a deterministic caller reference, associated with the VPC,
//! tagged as pld's), why a zone is refused, and when a zone pld made comes down.
//!
//! The agent observes in the order Route 53 lets it ([`ZoneSeen`]) and plans after each
//! observation, making the plan's writes before it looks again. A crash after any write is just
//! another observed state: a zone created but not tagged is recognised by its caller reference
//! and tagged; a create retried after a crash is refused by Route 53 for its reference, and the
//! zone it made is found by that reference rather than made twice.

use std::fmt;

use crate::aws::types::{HostedZone, RecordSet, Tags};
use crate::aws::Call;

use super::ownership::{Ownership, ZoneClaim, CLUSTER_TAG, VPC_TAG};
use super::{Planned, Reason};

/// How many caller references one binding generation may spend: each one past the first was
/// spent on a zone of ours deleted behind our back.
pub const REFERENCE_ATTEMPTS: u32 = 8;

/// What the agent wants of its zone: from its config and the binding that needs the zone.
#[derive(Debug, Clone, Copy)]
pub struct ZoneWant<'a> {
    /// The zone's name, with the trailing dot.
    pub name: &'a str,
    /// The zone id the config pins, if it does: used whoever made it, never created or deleted.
    pub pinned: Option<&'a str>,
    /// Whose the agent is (its cluster and VPC).
    pub own: &'a Ownership,
    /// Whether a name is to be published now, so the zone must exist and include the VPC.
    /// Without, the agent only finds a zone that is there (after a restart, to clean up
    /// records of endpoints that went while it was down) and creates nothing.
    pub publish: bool,
    /// The generation of the binding that first needs the zone: part of its caller reference.
    pub generation: u64,
}

/// What the agent observed of the zone, latest first: the plan for each says what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneSeen {
    /// The pinned zone, as GetHostedZone describes it.
    Pinned(HostedZone),
    /// The zone of the agent's name associated with its VPC (ListHostedZonesByVPC, then
    /// GetHostedZone and ListTagsForResource), if any: Route 53 lets no two private zones of
    /// one name share a VPC, so there is at most one.
    InVpc(Option<(HostedZone, Tags)>),
    /// CreateHostedZone returned this zone.
    Created(HostedZone),
    /// CreateHostedZone refused attempt `attempt`'s reference as used
    /// (`HostedZoneAlreadyExists`); `made` is the zone of our name created with it, if it
    /// still exists (ListHostedZonesByName, then GetHostedZone).
    ReferenceSpent {
        attempt: u32,
        made: Option<HostedZone>,
    },
    /// CreateHostedZone refused because a zone of the name is associated with the VPC
    /// (`ConflictingDomainExists`, with `error` its message): that zone, looked for again, if
    /// it is there now.
    Conflict {
        error: String,
        found: Option<(HostedZone, Tags)>,
    },
}

/// The writes that make the zone usable, and what then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZonePlan {
    /// Writes to make, in order.
    pub writes: Vec<Planned>,
    pub outcome: ZoneOutcome,
}

/// Where the zone stands once a plan's writes are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneOutcome {
    /// Publish into this zone.
    Use(String),
    /// No zone to publish into, and none needed yet; with why, when a zone of the name was
    /// found and left alone.
    Absent(Option<String>),
    /// The writes create the zone with attempt `attempt`'s reference: plan again from what the
    /// create returns ([`ZoneSeen::Created`]) or from why it was refused.
    Creating { attempt: u32 },
    /// No zone can be used, and the binding that needs one fails with why.
    Refused(ZoneRefusal),
}

/// Why no zone can be used: each says what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneRefusal {
    /// A zone of the name is associated with the VPC and is not pld's.
    Foreign {
        zone_id: String,
        name: String,
        vpc_id: String,
        cluster: String,
    },
    /// The pinned zone has another name.
    PinnedName {
        zone_id: String,
        is: String,
        want: String,
    },
    /// Route 53 refused the create for a zone of the name in the VPC that is not there when
    /// looked for again.
    Conflict(String),
    /// Every caller reference of the binding's generation was spent on zones since deleted.
    ReferencesSpent { first: String },
}

impl fmt::Display for ZoneRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZoneRefusal::Foreign {
                zone_id,
                name,
                vpc_id,
                cluster,
            } => write!(
                f,
                "hosted zone {zone_id} ({name}) is associated with {vpc_id} but is not pld's \
                 (no {CLUSTER_TAG}={cluster} and {VPC_TAG}={vpc_id} tags): set [dns] \
                 hosted_zone_id = \"{zone_id}\" to publish into it, or remove it"
            ),
            ZoneRefusal::PinnedName { zone_id, is, want } => {
                write!(f, "pinned hosted zone {zone_id} is {is}, not {want}")
            }
            ZoneRefusal::Conflict(error) => f.write_str(error),
            ZoneRefusal::ReferencesSpent { first } => write!(
                f,
                "every caller reference from {first} to attempt {REFERENCE_ATTEMPTS} was spent \
                 on hosted zones since deleted; deleting and creating the binding again starts \
                 a new series"
            ),
        }
    }
}

impl ZonePlan {
    fn only(outcome: ZoneOutcome) -> Self {
        ZonePlan {
            writes: Vec::new(),
            outcome,
        }
    }
}

/// The plan for the zone from what was last observed of it.
pub fn plan_zone(want: &ZoneWant, seen: &ZoneSeen) -> ZonePlan {
    match seen {
        ZoneSeen::Pinned(zone) => {
            if zone.name != want.name {
                return ZonePlan::only(ZoneOutcome::Refused(ZoneRefusal::PinnedName {
                    zone_id: zone.id.clone(),
                    is: zone.name.clone(),
                    want: want.name.to_string(),
                }));
            }
            let mut writes = Vec::new();
            if want.publish {
                writes.extend(associate(want, zone));
            }
            ZonePlan {
                writes,
                outcome: ZoneOutcome::Use(zone.id.clone()),
            }
        }
        ZoneSeen::InVpc(None) if want.publish => create(want, 1),
        ZoneSeen::InVpc(None) => ZonePlan::only(ZoneOutcome::Absent(None)),
        ZoneSeen::InVpc(Some((zone, tags))) => adopt(want, zone, tags),
        ZoneSeen::Created(zone) => ZonePlan {
            writes: vec![tag(want, zone, "made by this agent, not yet tagged")],
            outcome: ZoneOutcome::Use(zone.id.clone()),
        },
        ZoneSeen::ReferenceSpent {
            attempt,
            made: Some(zone),
        } => {
            // Made by this agent with that reference: its own earlier attempt, whose tags a
            // crash may have kept it from writing. Made associated with this VPC; one that has
            // left it is still ours to use.
            let mut writes: Vec<Planned> = associate(want, zone).into_iter().collect();
            writes.push(tag(
                want,
                zone,
                &format!(
                    "made by this agent with caller reference {}",
                    want.own.zone_reference(want.generation, *attempt)
                ),
            ));
            ZonePlan {
                writes,
                outcome: ZoneOutcome::Use(zone.id.clone()),
            }
        }
        ZoneSeen::ReferenceSpent {
            attempt,
            made: None,
        } if *attempt < REFERENCE_ATTEMPTS => create(want, attempt + 1),
        ZoneSeen::ReferenceSpent { .. } => {
            ZonePlan::only(ZoneOutcome::Refused(ZoneRefusal::ReferencesSpent {
                first: want.own.zone_reference(want.generation, 1),
            }))
        }
        ZoneSeen::Conflict {
            found: Some((zone, tags)),
            ..
        } => adopt(want, zone, tags),
        ZoneSeen::Conflict { error, found: None } => {
            ZonePlan::only(ZoneOutcome::Refused(ZoneRefusal::Conflict(error.clone())))
        }
    }
}

/// Whether a zone this agent made has nothing of ours left in it, so it may come down: only
/// its SOA and NS, and not pinned (a pinned zone is the operator's).
pub fn zone_unused(want: &ZoneWant, records: &[RecordSet]) -> bool {
    want.pinned.is_none() && records.iter().all(|r| r.kind == "SOA" || r.kind == "NS")
}

/// The delete of an unused zone (see [`zone_unused`]), if it is ours: a zone of the name
/// someone else made in the VPC is never deleted.
pub fn plan_zone_retire(want: &ZoneWant, zone: &HostedZone, tags: &Tags) -> Option<Planned> {
    if want.pinned.is_some() || want.own.zone_claim(zone, tags) == ZoneClaim::Foreign {
        return None;
    }
    Some(Planned {
        call: Call::DeleteHostedZone {
            zone_id: zone.id.clone(),
        },
        reason: Reason::Unwanted("no name of ours is left in it".into()),
    })
}

/// A zone of the name found in the VPC: used if ours (tagged first if it is not yet),
/// refused when publishing needs it and it is someone else's.
fn adopt(want: &ZoneWant, zone: &HostedZone, tags: &Tags) -> ZonePlan {
    match want.own.zone_claim(zone, tags) {
        ZoneClaim::Ours => ZonePlan::only(ZoneOutcome::Use(zone.id.clone())),
        ZoneClaim::OursUntagged => ZonePlan {
            writes: vec![tag(
                want,
                zone,
                "made by this agent (its caller reference says so), not yet tagged",
            )],
            outcome: ZoneOutcome::Use(zone.id.clone()),
        },
        ZoneClaim::Foreign => {
            let refusal = ZoneRefusal::Foreign {
                zone_id: zone.id.clone(),
                name: zone.name.clone(),
                vpc_id: want.own.vpc().to_string(),
                cluster: want.own.cluster().to_string(),
            };
            // Until a name is to be published, a foreign zone is only left alone.
            ZonePlan::only(if want.publish {
                ZoneOutcome::Refused(refusal)
            } else {
                ZoneOutcome::Absent(Some(refusal.to_string()))
            })
        }
    }
}

fn create(want: &ZoneWant, attempt: u32) -> ZonePlan {
    ZonePlan {
        writes: vec![Planned {
            call: Call::CreateHostedZone {
                name: want.name.to_string(),
                vpc_id: want.own.vpc().to_string(),
                caller_reference: want.own.zone_reference(want.generation, attempt),
                comment: want.own.zone_comment(),
            },
            reason: if attempt == 1 {
                Reason::Missing
            } else {
                Reason::Drift(format!(
                    "caller reference attempt {} was spent on a zone since deleted",
                    attempt - 1
                ))
            },
        }],
        outcome: ZoneOutcome::Creating { attempt },
    }
}

fn associate(want: &ZoneWant, zone: &HostedZone) -> Option<Planned> {
    let vpc = want.own.vpc();
    (!zone.vpc_ids.iter().any(|v| v == vpc)).then(|| Planned {
        call: Call::AssociateVpc {
            zone_id: zone.id.clone(),
            vpc_id: vpc.to_string(),
        },
        reason: Reason::Drift(format!("{} is not associated with {vpc}", zone.id)),
    })
}

fn tag(want: &ZoneWant, zone: &HostedZone, why: &str) -> Planned {
    Planned {
        call: Call::TagHostedZone {
            zone_id: zone.id.clone(),
            tags: want.own.mine(),
        },
        reason: Reason::Drift(why.to_string()),
    }
}

#[cfg(test)]
mod tests;
