//! What makes a resource this agent's: the tags it puts on everything it creates, the owner
//! those tags name, and the client tokens that make creates idempotent.
//!
//! An owner tag reads `CLUSTER/KIND/KEY` (`pld/service/billing`,
//! `pld/binding/billing/vpc-0a1b`). It is written once at create and read back on every pass, so
//! its format is stable: changing it would orphan every resource already tagged.

use std::fmt;
use std::str::FromStr;

use pld_cloud::{Tags, OWNER_TAG};

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

    /// Every tag a resource created for `owner` carries.
    pub fn tags(&self, owner: &Owner) -> Tags {
        let mut tags = self.mine();
        tags.insert(OWNER_TAG.to_string(), owner.to_string());
        tags
    }
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

/// The generation of a catalog object: its create revision (0 before it has one).
pub fn generation(meta: Option<&pld_proto::v1::Meta>) -> u64 {
    meta.map_or(0, |m| m.create_revision)
}

/// FNV-1a: stable across builds and platforms, unlike std's hasher.
fn fnv(s: &str) -> u64 {
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
