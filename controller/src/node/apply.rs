//! Applying committed entries: commands to the catalog (answering the callers waiting on this
//! node), membership changes to raft, the store and the transport; then a snapshot every
//! [`super::NodeConfig::snapshot_every`] entries, stored and the log compacted by the
//! [`super::compactor`].

use pld_core::command::Envelope;
use pld_core::{Catalog, CatalogError, Outcome};
use prost::Message as _;
use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeType, ConfState, Entry, EntryType, Snapshot};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::compactor::Job;
use super::message::ConfChangeContext;
use super::{Applied, Node, NodeError};
use crate::crash_points::crash_point;
use crate::storage::StoreError;

/// A raft snapshot of catalog `data` at `index`/`term`.
pub(super) fn snapshot(data: Vec<u8>, index: u64, term: u64, conf_state: ConfState) -> Snapshot {
    let mut snap = Snapshot {
        data: data.into(),
        ..Default::default()
    };
    let meta = snap.mut_metadata();
    meta.index = index;
    meta.term = term;
    meta.set_conf_state(conf_state);
    snap
}

impl Node {
    /// Proposes adding or removing a member; the caller hears when the change is applied.
    pub(super) fn propose_conf_change(
        &mut self,
        change: ConfChangeType,
        node_id: u64,
        address: String,
        reply: oneshot::Sender<Result<(), NodeError>>,
    ) {
        if !self.leader_known() {
            let _ = reply.send(Err(NodeError::NoLeader));
            return;
        }
        let nonce = self.nonce();
        let cc = ConfChange {
            change_type: change,
            node_id,
            context: ConfChangeContext {
                address,
                proposer: self.id,
                nonce,
            }
            .encode_to_vec()
            .into(),
            ..Default::default()
        };
        match self.raw.propose_conf_change(vec![], cc) {
            Ok(()) => {
                self.pending_conf.insert(nonce, reply);
            }
            Err(raft::Error::ProposalDropped) => {
                let _ = reply.send(Err(NodeError::NoLeader));
            }
            Err(e) => {
                let _ = reply.send(Err(NodeError::Raft(e.to_string())));
            }
        }
    }

    pub(super) fn apply_committed(&mut self, entries: Vec<Entry>) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        // The lock is held for the whole run of entries; a clone of the Arc lets the entries'
        // handlers borrow the node mutably meanwhile.
        let lock = self.catalog.clone();
        let mut catalog = lock.write().unwrap_or_else(|p| p.into_inner());
        for entry in entries {
            self.applied_index = entry.index;
            if entry.data.is_empty() {
                // A new leader's empty entry.
                continue;
            }
            match entry.get_entry_type() {
                EntryType::EntryNormal => self.apply_commands(&mut catalog, &entry)?,
                EntryType::EntryConfChange => self.apply_conf_change(&mut catalog, &entry)?,
                EntryType::EntryConfChangeV2 => {
                    warn!(
                        node = self.id,
                        index = entry.index,
                        "joint configuration changes are not used; entry skipped"
                    );
                }
            }
        }
        Ok(())
    }

    /// Applies an entry's command or batch of commands and answers their callers.
    fn apply_commands(&mut self, catalog: &mut Catalog, entry: &Entry) -> Result<(), StoreError> {
        crash_point!("apply-entry");
        let env = Envelope::decode_bytes(&entry.data).map_err(|e| {
            StoreError::Io(format!(
                "committed entry {} is not a command: {e}",
                entry.index
            ))
        })?;
        // Every replica applies every command; only the proposer has callers waiting.
        let waiting = if env.proposer == self.id {
            self.inflight.remove(&env.nonce);
            self.pending.remove(&env.nonce).unwrap_or_default()
        } else {
            Vec::new()
        };
        let results: Vec<Result<Outcome, CatalogError>> = match &env.command {
            Some(cmd) => vec![catalog.apply(cmd)],
            None if !env.commands.is_empty() => {
                env.commands.iter().map(|cmd| catalog.apply(cmd)).collect()
            }
            None => vec![Err(CatalogError::Corrupt("empty command".into()))],
        };
        for (tx, result) in waiting.into_iter().zip(results) {
            let _ = tx.send(result.map_err(NodeError::Rejected));
        }
        Ok(())
    }

    /// Applies a membership change to raft, the store, the catalog's member list and the
    /// transport, and answers its proposer.
    fn apply_conf_change(
        &mut self,
        catalog: &mut Catalog,
        entry: &Entry,
    ) -> Result<(), StoreError> {
        let cc = ConfChange::parse_from_bytes(&entry.data).map_err(|e| {
            StoreError::Io(format!(
                "committed entry {} is not a conf change: {e}",
                entry.index
            ))
        })?;
        let ctx = ConfChangeContext::decode(cc.context.as_ref()).unwrap_or_default();
        let result = match self.raw.apply_conf_change(&cc) {
            Ok(cs) => {
                self.store.persist(&[], None, Some(&cs), true)?;
                crash_point!("conf-change-persisted");
                self.conf_state = cs;
                match cc.get_change_type() {
                    ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                        catalog.set_member(cc.node_id, ctx.address.clone());
                    }
                    ConfChangeType::RemoveNode => catalog.remove_member(cc.node_id),
                }
                self.transport.set_peers(catalog.members());
                info!(node = self.id, change = ?cc.get_change_type(), member = cc.node_id, address = %ctx.address, "membership changed");
                if cc.get_change_type() == ConfChangeType::RemoveNode && cc.node_id == self.id {
                    warn!(node = self.id, "this node was removed from the cluster");
                }
                Ok(())
            }
            Err(e) => {
                warn!(node = self.id, error = %e, "configuration change refused");
                Err(NodeError::Raft(e.to_string()))
            }
        };
        if ctx.proposer == self.id {
            if let Some(tx) = self.pending_conf.remove(&ctx.nonce) {
                let _ = tx.send(result);
            }
        }
        Ok(())
    }

    pub(super) fn after_apply(&mut self) -> Result<(), StoreError> {
        let revision = self.catalog.read().map(|c| c.revision()).unwrap_or(0);
        let applied = Applied {
            index: self.applied_index,
            revision,
        };
        if *self.applied_tx.borrow() != applied {
            self.applied_tx.send_replace(applied);
        }
        let applied_index = self.applied_index;
        self.release_reads();
        self.compactor.check()?;
        if self.compactor.busy() {
            // A request for a fresh snapshot stays pending until this one is stored.
            return Ok(());
        }
        let snap_index = self.store.first_index()? - 1;
        let requested = self.raw.store().take_snapshot_request();
        if self.compactor.due(applied_index, snap_index)
            || (requested && applied_index > snap_index)
        {
            self.make_snapshot()?;
        }
        Ok(())
    }

    /// Copies the catalog at the applied index (here: the raft thread owns it and applies on)
    /// and hands it to the compactor, which encodes and stores it.
    fn make_snapshot(&mut self) -> Result<(), StoreError> {
        let index = self.applied_index;
        let term = self.store.term(index)?;
        let started = std::time::Instant::now();
        let catalog = self
            .catalog
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        debug!(node = self.id, index, copied_in = ?started.elapsed(), "snapshot taken");
        self.compactor.submit(Job {
            catalog,
            index,
            term,
            conf_state: self.conf_state.clone(),
        })
    }
}
