//! The installation's cluster id: the name every agent puts in the `pld:cluster` tag of what it
//! creates, so two installations in one account never take each other's resources for their
//! own orphans.
//!
//! It is made once, by the first leader of a new cluster (or taken from the controller's config
//! when an operator pins it), kept in the catalog, and never changed: changing it would orphan
//! every resource already tagged. Agents read it from the catalog.

use super::{Catalog, CatalogError, Outcome};
use crate::command::{Command, Op, SetClusterIdOp};
use crate::validate;

/// The id every agent used before clusters had their own: a catalog without an id that was not
/// bootstrapped as a [`Catalog::new_cluster`] is from then, and its resources carry this.
pub const LEGACY_CLUSTER_ID: &str = "pld";

impl Catalog {
    /// A catalog to bootstrap a new cluster from: its first leader will make it a fresh id.
    pub fn new_cluster(history_limit: usize) -> Self {
        let mut catalog = Catalog::new(history_limit);
        catalog.new_cluster = true;
        catalog
    }

    /// Sets the cluster id once; setting the same id again is a no-op.
    pub(super) fn set_cluster_id(&mut self, requested: &str) -> Result<Outcome, CatalogError> {
        validate::dns_label("cluster_id", requested)?;
        match self.cluster_id() {
            Some(current) if current != requested => Err(CatalogError::ClusterIdMismatch {
                current: current.to_string(),
                requested: requested.to_string(),
            }),
            _ => {
                self.cluster_id = requested.to_string();
                self.new_cluster = false;
                Ok(Outcome::ClusterIdSet {
                    cluster_id: requested.to_string(),
                })
            }
        }
    }
}

/// What the leader proposes for a catalog without a cluster id: the id the config pins, else a
/// fresh one for a cluster bootstrapped as new, else [`LEGACY_CLUSTER_ID`] (the catalog was
/// made before ids existed). `None` once the catalog has an id.
///
/// Whether the catalog is new is what the bootstrap snapshot says, never whether it holds
/// objects: writes may reach a new cluster before its first leader proposes the id.
pub fn proposal(
    catalog: &Catalog,
    pinned: Option<&str>,
    fresh: impl FnOnce() -> String,
) -> Option<Command> {
    if catalog.cluster_id().is_some() {
        return None;
    }
    let cluster_id = match pinned {
        Some(id) => id.to_string(),
        None if catalog.new_cluster => fresh(),
        None => LEGACY_CLUSTER_ID.to_string(),
    };
    Some(Command::new(Op::SetClusterId(SetClusterIdOp {
        cluster_id,
    })))
}

/// Whether a configured pin disagrees with the catalog: the error to refuse service with.
pub fn check_pin(catalog: &Catalog, pinned: Option<&str>) -> Result<(), CatalogError> {
    match (catalog.cluster_id(), pinned) {
        (Some(current), Some(pin)) if current != pin => Err(CatalogError::ClusterIdMismatch {
            current: current.to_string(),
            requested: pin.to_string(),
        }),
        _ => Ok(()),
    }
}

/// A fresh cluster id from 50 random bits: `pld-` and ten base-32 characters, a DNS label.
pub fn fresh_id(random: u64) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let chars: String = (0..10)
        .map(|i| ALPHABET[((random >> (i * 5)) & 31) as usize] as char)
        .collect();
    format!("pld-{chars}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::PutOp;
    use pld_proto::v1::{object, Object, Service};

    fn id_of(cmd: Option<Command>) -> Option<String> {
        match cmd?.op? {
            Op::SetClusterId(op) => Some(op.cluster_id),
            _ => None,
        }
    }

    #[test]
    fn a_new_catalog_gets_a_fresh_id_or_the_pinned_one() {
        let mut catalog = Catalog::new_cluster(10);
        assert_eq!(
            id_of(proposal(&catalog, None, || "pld-fresh".into())),
            Some("pld-fresh".into())
        );
        assert_eq!(
            id_of(proposal(&catalog, Some("blue"), || unreachable!())),
            Some("blue".into())
        );
        // Writes that land before the first leader names it do not make it an old catalog.
        catalog.apply(&put_demo()).expect("put");
        assert_eq!(
            id_of(proposal(&catalog, None, || "pld-fresh".into())),
            Some("pld-fresh".into())
        );
        // The marker travels in snapshots (a follower may become the first leader to name it).
        let snapshot = Catalog::decode_snapshot(&catalog.encode_snapshot(), 10).expect("decode");
        assert_eq!(
            id_of(proposal(&snapshot, None, || "pld-fresh".into())),
            Some("pld-fresh".into())
        );
    }

    fn put_demo() -> Command {
        Command::new(Op::Put(PutOp {
            object: Some(Object {
                object: Some(object::Object::Service(Service {
                    name: "demo".into(),
                    vpc_id: "vpc-0a1b2c3d".into(),
                    load_balancer_arn: "arn:aws:elasticloadbalancing:us-east-1:111111111111:loadbalancer/net/demo/1".into(),
                    ports: vec![443],
                    ..Default::default()
                })),
            }),
            expected_mod_revision: None,
            now_unix_ms: 1,
        }))
    }

    #[test]
    fn a_catalog_from_before_ids_keeps_the_id_its_resources_carry() {
        // Decoded from a snapshot an earlier pld wrote: no id, no new-cluster marker.
        let mut catalog = Catalog::default();
        catalog.apply(&put_demo()).expect("put");
        assert_eq!(
            id_of(proposal(&catalog, None, || unreachable!())),
            Some(LEGACY_CLUSTER_ID.into())
        );
    }

    #[test]
    fn the_id_is_set_once_and_never_changes() {
        let mut catalog = Catalog::default();
        let set = |c: &mut Catalog, id: &str| {
            c.apply(&Command::new(Op::SetClusterId(SetClusterIdOp {
                cluster_id: id.into(),
            })))
        };
        assert!(set(&mut catalog, "Not A Label").is_err());
        assert_eq!(catalog.cluster_id(), None);
        set(&mut catalog, "blue").expect("first");
        set(&mut catalog, "blue").expect("same again");
        assert_eq!(
            set(&mut catalog, "green"),
            Err(CatalogError::ClusterIdMismatch {
                current: "blue".into(),
                requested: "green".into()
            })
        );
        assert_eq!(catalog.cluster_id(), Some("blue"));
        assert_eq!(proposal(&catalog, Some("green"), || unreachable!()), None);
        assert!(check_pin(&catalog, Some("green")).is_err());
        assert!(check_pin(&catalog, Some("blue")).is_ok());
        assert!(check_pin(&catalog, None).is_ok());
        // Snapshots and backups carry it.
        let back = Catalog::decode_snapshot(&catalog.encode_snapshot(), 10).expect("decode");
        assert_eq!(back.cluster_id(), Some("blue"));
        let mut restored = Catalog::default();
        restored
            .apply(&Command::new(Op::Restore(crate::command::RestoreOp {
                backup: catalog.encode_backup(),
            })))
            .expect("restore");
        assert_eq!(restored.cluster_id(), Some("blue"));
    }

    #[test]
    fn fresh_ids_are_dns_labels_that_differ() {
        let a = fresh_id(0x0123_4567_89ab_cdef);
        let b = fresh_id(0x0123_4567_89ab_cdee);
        assert_ne!(a, b);
        for id in [a, b, fresh_id(0), fresh_id(u64::MAX)] {
            assert_eq!(id.len(), 14, "{id}");
            validate::dns_label("cluster_id", &id).expect("a DNS label");
        }
    }
}
