//! What makes a resource this agent's: the tags it puts on everything it creates, the owner
//! those tags name, and the client tokens that make creates idempotent.
//!
//! An owner tag reads `CLUSTER/KIND/KEY` (`pld/service/billing`,
//! `pld/binding/billing/vpc-0a1b`). It is written once at create and read back on every pass, so
//! its format is stable: changing it would orphan every resource already tagged.

use std::fmt;
use std::str::FromStr;

use crate::aws::types::{HostedZone, Tags, OWNER_TAG};

/// The tag naming the pld installation, on everything the agent creates.
pub const CLUSTER_TAG: &str = "pld:cluster";
/// The tag naming the VPC whose agent created the resource.
pub const VPC_TAG: &str = "pld:vpc";

/// What kind of catalog object a resource was created for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    /// An endpoint service, for a service this VPC provides.
    Service,
    /// An endpoint, for a binding of this VPC.
    Binding,
}

impl OwnerKind {
    fn as_str(self) -> &'static str {
        match self {
            OwnerKind::Service => "service",
            OwnerKind::Binding => "binding",
        }
    }
}

/// The catalog object a resource belongs to, as its owner tag names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub cluster: String,
    pub kind: OwnerKind,
    /// The object's catalog key: a service name, or `SERVICE/CONSUMER_VPC` for a binding.
    pub key: String,
}

impl Owner {
    /// The service this owner concerns: the service itself, or the one a binding uses.
    pub fn service(&self) -> &str {
        match self.kind {
            OwnerKind::Service => &self.key,
            OwnerKind::Binding => self.key.split_once('/').map_or("", |(s, _)| s),
        }
    }

    /// The consumer VPC of a binding's owner.
    pub fn consumer_vpc(&self) -> Option<&str> {
        match self.kind {
            OwnerKind::Service => None,
            OwnerKind::Binding => self.key.split_once('/').map(|(_, vpc)| vpc),
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.cluster, self.kind.as_str(), self.key)
    }
}

/// An owner tag that is not `CLUSTER/KIND/KEY` with a kind pld knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("owner tag {0:?} is not CLUSTER/service/NAME or CLUSTER/binding/SERVICE/VPC")]
pub struct BadOwner(pub String);

impl FromStr for Owner {
    type Err = BadOwner;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadOwner(s.to_string());
        // Cluster ids are DNS labels and service names and VPC ids hold no '/', so the first
        // two slashes end the cluster and the kind.
        let mut parts = s.splitn(3, '/');
        let (Some(cluster), Some(kind), Some(key)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let kind = match kind {
            "service" => OwnerKind::Service,
            "binding" if key.split_once('/').is_some() => OwnerKind::Binding,
            _ => return Err(bad()),
        };
        if cluster.is_empty() || key.is_empty() {
            return Err(bad());
        }
        Ok(Owner {
            cluster: cluster.to_string(),
            kind,
            key: key.to_string(),
        })
    }
}

/// One agent's claim on resources: its installation and its VPC.
#[derive(Debug, Clone)]
pub struct Ownership {
    cluster: String,
    vpc: String,
}

impl Ownership {
    pub fn new(cluster: &str, vpc: &str) -> Self {
        Ownership {
            cluster: cluster.to_string(),
            vpc: vpc.to_string(),
        }
    }

    /// The installation's cluster id.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The VPC whose agent this is.
    pub fn vpc(&self) -> &str {
        &self.vpc
    }

    /// The comment a hosted zone this agent creates carries, for people reading the console
    /// (the tags, not the comment, say whose it is; zones of an earlier pld had only this).
    pub fn zone_comment(&self) -> String {
        format!("managed by pld cluster {} for {}", self.cluster, self.vpc)
    }

    /// The owner of the endpoint service for `service`.
    pub fn service(&self, service: &str) -> Owner {
        Owner {
            cluster: self.cluster.clone(),
            kind: OwnerKind::Service,
            key: service.to_string(),
        }
    }

    /// The owner of the endpoint for the binding with catalog key `key`.
    pub fn binding(&self, key: &str) -> Owner {
        Owner {
            cluster: self.cluster.clone(),
            kind: OwnerKind::Binding,
            key: key.to_string(),
        }
    }

    /// Whether `owner` is a binding of this installation whose consumer is this VPC: the only
    /// bindings whose records this agent may clean up.
    pub fn is_our_binding(&self, owner: &Owner) -> bool {
        owner.cluster == self.cluster
            && owner.kind == OwnerKind::Binding
            && owner.consumer_vpc() == Some(self.vpc.as_str())
    }

    /// The tags that make a resource this agent's: its installation and its VPC. Several VPCs
    /// of one account each have an agent, and none may take another's resources for orphans.
    pub fn mine(&self) -> Tags {
        Tags::from([
            (CLUSTER_TAG.to_string(), self.cluster.clone()),
            (VPC_TAG.to_string(), self.vpc.clone()),
        ])
    }

    /// The CallerReference of the hosted zone this agent creates for a binding of catalog
    /// generation `generation`: `pld/CLUSTER/VPC/GENERATION`, and `/ATTEMPT` after the first
    /// attempt. Route 53 never takes a reference twice, so a create retried after a crash is
    /// refused and the zone found by its reference; a reference spent on a zone since deleted
    /// moves on to the next attempt. ('/' is in no cluster id or VPC id, so the parts cannot
    /// run into each other; at most 4 + 63 + 21 + 20 + 11 characters, under Route 53's 128.)
    pub fn zone_reference(&self, generation: u64, attempt: u32) -> String {
        let base = format!("pld/{}/{}/{generation}", self.cluster, self.vpc);
        match attempt {
            0 | 1 => base,
            n => format!("{base}/{n}"),
        }
    }

    /// Whether this agent may treat a hosted zone as its own, from what Route 53 says of it.
    pub fn zone_claim(&self, zone: &HostedZone, tags: &Tags) -> ZoneClaim {
        let mine = self.mine();
        if mine.iter().all(|(k, v)| tags.get(k) == Some(v)) {
            return ZoneClaim::Ours;
        }
        // A CallerReference is fixed at create: ours means this agent made the zone and
        // stopped before tagging it.
        let made_here = zone
            .caller_reference
            .starts_with(&format!("pld/{}/{}/", self.cluster, self.vpc));
        // Before zones were tagged, pld marked them by comment and made references
        // `pld-VPC-MILLIS`: both must match.
        let made_by_earlier_pld = zone.comment == self.zone_comment()
            && zone
                .caller_reference
                .starts_with(&format!("pld-{}-", self.vpc));
        if made_here || made_by_earlier_pld {
            ZoneClaim::OursUntagged
        } else {
            ZoneClaim::Foreign
        }
    }

    /// Every tag a resource created for `owner` carries.
    pub fn tags(&self, owner: &Owner) -> Tags {
        let mut tags = self.mine();
        tags.insert(OWNER_TAG.to_string(), owner.to_string());
        tags
    }
}

/// Whose a hosted zone is, as far as this agent is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneClaim {
    /// Tagged with this agent's cluster and VPC.
    Ours,
    /// Made by this agent (its caller reference says so) but not tagged yet: a crash came
    /// between CreateHostedZone and ChangeTagsForResource, or an earlier pld made it.
    OursUntagged,
    /// Someone else's: never written to or deleted unless the config pins it.
    Foreign,
}

/// A client token that is the same for the same owner, generation and parameters, so a create
/// retried after a crash finds the resource the first attempt made.
///
/// The generation is the catalog object's create revision: an object deleted and created
/// again is a new generation, so its create is not answered, from AWS's idempotency window,
/// with the resource deleted for the old one.
pub fn client_token(owner: &Owner, generation: u64, params: &str) -> String {
    format!(
        "pld-{:016x}-{:016x}",
        fnv(&owner.to_string()),
        fnv(&format!("{generation}|{params}"))
    )
}

/// How many client tokens one catalog object's generation may spend on resources deleted
/// since: AWS answers a token it has seen with what it made then, even once that is gone, so a
/// resource taken down while its object stays (a binding refused for a while, a service moved
/// back to a load balancer it left) is made again under the next token.
pub const TOKEN_ATTEMPTS: u32 = 8;

/// The parameters of the create that follows `spent` tokens answered with deleted resources:
/// `params` alone for the first (as before attempts were counted, so a create retried across
/// an upgrade finds its resource), then `params|attempt N`.
pub fn token_params(params: &str, spent: u32) -> String {
    match spent {
        0 => params.to_string(),
        spent => format!("{params}|attempt {}", spent + 1),
    }
}

/// The generation of a catalog object: its create revision (0 before it has one).
pub fn generation(meta: Option<&pld_proto::v1::Meta>) -> u64 {
    meta.map_or(0, |m| m.create_revision)
}

/// FNV-1a: stable across builds and platforms, unlike std's hasher.
pub(crate) fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_tags_round_trip() {
        let own = Ownership::new("pld", "vpc-0a1b");
        for owner in [own.service("billing"), own.binding("billing/vpc-0a1b")] {
            assert_eq!(owner.to_string().parse::<Owner>(), Ok(owner.clone()));
            assert_eq!(owner.service(), "billing");
        }
        assert_eq!(
            own.binding("billing/vpc-0a1b").to_string(),
            "pld/binding/billing/vpc-0a1b"
        );
    }

    #[test]
    fn malformed_owner_tags_are_refused() {
        for bad in [
            "",
            "pld",
            "pld/service",
            "pld/service/",
            "pld/endpoint/x",
            "pld/binding/x",
            "/service/x",
        ] {
            assert!(bad.parse::<Owner>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn only_this_installations_bindings_of_this_vpc_are_ours() {
        let own = Ownership::new("pld", "vpc-1");
        let parse = |s: &str| s.parse::<Owner>().unwrap();
        assert!(own.is_our_binding(&parse("pld/binding/demo/vpc-1")));
        assert!(!own.is_our_binding(&parse("pld/binding/demo/vpc-2")));
        assert!(!own.is_our_binding(&parse("other/binding/demo/vpc-1")));
        assert!(!own.is_our_binding(&parse("pld/service/demo")));
    }

    fn zone(reference: &str, comment: &str) -> HostedZone {
        HostedZone {
            id: "Z1".into(),
            name: "pld.internal.".into(),
            vpc_ids: vec!["vpc-1".into()],
            comment: comment.into(),
            caller_reference: reference.into(),
        }
    }

    #[test]
    fn a_zone_is_ours_by_tags_or_by_the_reference_we_made_it_with() {
        let own = Ownership::new("blue", "vpc-1");
        let reference = own.zone_reference(42, 1);
        assert_eq!(reference, "pld/blue/vpc-1/42");
        assert_eq!(own.zone_reference(42, 3), "pld/blue/vpc-1/42/3");
        let untagged = zone(&reference, "");
        assert_eq!(
            own.zone_claim(&untagged, &Tags::new()),
            ZoneClaim::OursUntagged
        );
        assert_eq!(own.zone_claim(&untagged, &own.mine()), ZoneClaim::Ours);
        let foreign = zone("terraform-2024", "made by hand");
        assert_eq!(own.zone_claim(&foreign, &Tags::new()), ZoneClaim::Foreign);
        assert_eq!(own.zone_claim(&foreign, &own.mine()), ZoneClaim::Ours);
        // Another cluster's, or another VPC's agent's, zone is not ours, whatever its name.
        for other in [
            Ownership::new("green", "vpc-1"),
            Ownership::new("blue", "vpc-2"),
        ] {
            assert_eq!(
                other.zone_claim(&untagged, &Tags::new()),
                ZoneClaim::Foreign
            );
            assert_eq!(other.zone_claim(&untagged, &own.mine()), ZoneClaim::Foreign);
        }
        // A cluster id that begins like ours plus a VPC id does not pass for ours.
        let sneaky = Ownership::new("blue-vpc-1", "vpc-2").zone_reference(1, 1);
        assert_eq!(
            own.zone_claim(&zone(&sneaky, ""), &Tags::new()),
            ZoneClaim::Foreign
        );
    }

    #[test]
    fn zones_an_earlier_pld_made_are_recognised_by_comment_and_reference_together() {
        let own = Ownership::new("pld", "vpc-1");
        let comment = "managed by pld cluster pld for vpc-1";
        let legacy = zone("pld-vpc-1-1764979200000", comment);
        assert_eq!(
            own.zone_claim(&legacy, &Tags::new()),
            ZoneClaim::OursUntagged
        );
        // A comment anyone can edit is not enough alone.
        let copied = zone("by-hand", comment);
        assert_eq!(own.zone_claim(&copied, &Tags::new()), ZoneClaim::Foreign);
    }

    #[test]
    fn tokens_are_stable_and_differ_by_owner_generation_and_parameters() {
        let own = Ownership::new("pld", "vpc-1");
        let a = own.service("a");
        assert_eq!(client_token(&a, 7, "x"), client_token(&a, 7, "x"));
        assert_ne!(client_token(&a, 7, "x"), client_token(&a, 7, "y"));
        assert_ne!(client_token(&a, 7, "x"), client_token(&a, 8, "x"));
        assert_ne!(
            client_token(&a, 7, "x"),
            client_token(&own.service("b"), 7, "x")
        );
        // AWS takes at most 64 characters.
        assert!(client_token(&a, u64::MAX, "x").len() <= 64);
    }
}
