//! The catalog's two encodings: a raft snapshot of the whole state machine (membership and
//! watch history included), and a backup of the objects alone for `pld snapshot save` and
//! `restore`, with a header so a random file is refused rather than restored as empty.

use pld_proto::v1::{Agent, Binding, Event, Member, Service};
use prost::Message;

use super::object::binding_key;
use super::{Catalog, CatalogError};
use crate::validate;

/// Serialized form of the whole state machine, for raft snapshots.
#[derive(Clone, PartialEq, Message)]
struct SnapshotData {
    #[prost(uint64, tag = "1")]
    revision: u64,
    #[prost(message, repeated, tag = "2")]
    services: Vec<Service>,
    #[prost(message, repeated, tag = "3")]
    bindings: Vec<Binding>,
    #[prost(message, repeated, tag = "4")]
    agents: Vec<Agent>,
    #[prost(message, repeated, tag = "5")]
    members: Vec<Member>,
    #[prost(message, repeated, tag = "6")]
    history: Vec<Event>,
    #[prost(uint64, tag = "7")]
    compacted_through: u64,
    #[prost(string, tag = "8")]
    cluster_id: String,
    #[prost(bool, tag = "9")]
    new_cluster: bool,
}

/// A backup: the objects and revision, without membership or watch history.
#[derive(Clone, PartialEq, Message)]
pub(super) struct BackupData {
    /// Identifies the format, so a random file is refused rather than restored as empty.
    #[prost(string, tag = "1")]
    magic: String,
    #[prost(uint64, tag = "2")]
    pub(super) revision: u64,
    #[prost(message, repeated, tag = "3")]
    pub(super) services: Vec<Service>,
    #[prost(message, repeated, tag = "4")]
    pub(super) bindings: Vec<Binding>,
    #[prost(message, repeated, tag = "5")]
    pub(super) agents: Vec<Agent>,
    /// Empty in backups made before clusters had ids.
    #[prost(string, tag = "6")]
    pub(super) cluster_id: String,
}

const BACKUP_MAGIC: &str = "pld-catalog-backup-v1";

impl Catalog {
    /// Encodes the objects as a backup for `pld snapshot save`.
    pub fn encode_backup(&self) -> Vec<u8> {
        BackupData {
            magic: BACKUP_MAGIC.into(),
            revision: self.revision,
            services: self.services.values().cloned().collect(),
            bindings: self.bindings.values().cloned().collect(),
            agents: self.agents.values().cloned().collect(),
            cluster_id: self.cluster_id.clone(),
        }
        .encode_to_vec()
    }

    /// Encodes the whole state machine for a raft snapshot.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        SnapshotData {
            revision: self.revision,
            services: self.services.values().cloned().collect(),
            bindings: self.bindings.values().cloned().collect(),
            agents: self.agents.values().cloned().collect(),
            members: self
                .members
                .iter()
                .map(|(id, address)| Member {
                    id: *id,
                    address: address.clone(),
                })
                .collect(),
            history: self.history.iter().cloned().collect(),
            compacted_through: self.compacted_through,
            cluster_id: self.cluster_id.clone(),
            new_cluster: self.new_cluster,
        }
        .encode_to_vec()
    }

    /// Rebuilds a catalog from [`Catalog::encode_snapshot`] output.
    ///
    /// # Errors
    /// [`CatalogError::Corrupt`] when the bytes do not decode.
    pub fn decode_snapshot(data: &[u8], history_limit: usize) -> Result<Self, CatalogError> {
        let snap = SnapshotData::decode(data).map_err(|e| CatalogError::Corrupt(e.to_string()))?;
        let mut catalog = Catalog::new(history_limit);
        catalog.revision = snap.revision;
        catalog.services = snap
            .services
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        catalog.bindings = snap
            .bindings
            .into_iter()
            .map(|b| (binding_key(&b.service, &b.consumer_vpc_id), b))
            .collect();
        catalog.agents = snap
            .agents
            .into_iter()
            .map(|a| (a.vpc_id.clone(), a))
            .collect();
        catalog.members = snap
            .members
            .into_iter()
            .map(|m| (m.id, m.address))
            .collect();
        catalog.history = snap.history.into();
        catalog.compacted_through = snap.compacted_through;
        catalog.cluster_id = snap.cluster_id;
        catalog.new_cluster = snap.new_cluster;
        while catalog.history.len() > catalog.history_limit {
            if let Some(e) = catalog.history.pop_front() {
                catalog.compacted_through = e.revision;
            }
        }
        Ok(catalog)
    }
}

/// Checks that bytes are a backup made by [`Catalog::encode_backup`].
///
/// # Errors
/// [`CatalogError::Corrupt`] naming what is wrong.
pub fn check_backup(data: &[u8]) -> Result<(), CatalogError> {
    decode_backup(data).map(|_| ())
}

pub(super) fn decode_backup(data: &[u8]) -> Result<BackupData, CatalogError> {
    let backup = BackupData::decode(data)
        .map_err(|e| CatalogError::Corrupt(format!("not a pld catalog backup: {e}")))?;
    if backup.magic != BACKUP_MAGIC {
        return Err(CatalogError::Corrupt(
            "not a pld catalog backup (wrong header)".into(),
        ));
    }
    for s in &backup.services {
        validate::service(s)?;
    }
    for b in &backup.bindings {
        validate::binding(b)?;
    }
    for a in &backup.agents {
        validate::agent(a)?;
    }
    if !backup.cluster_id.is_empty() {
        validate::dns_label("cluster_id", &backup.cluster_id)?;
    }
    Ok(backup)
}
