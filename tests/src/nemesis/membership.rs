//! Membership change under the nemesis: a member is removed and a fresh node joins in its
//! place, while the clients run and before the next fault, so the next faults meet a node
//! still catching up (entries or a snapshot) and a configuration that just changed.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use pld_client::Client;
use pld_proto::v1::{ListMembersRequest, RemoveMemberRequest};
use tonic::Code;

use super::PORT;
use crate::netns::{Fabric, Host};
use crate::process::{Placement, ProcessCluster};
use crate::wait_until;

/// Which network slot (namespace and address) each member runs in. A replacement takes the
/// slot of the member it replaces, under a new id: raft ids are never reused, and the clients,
/// which know the slots' addresses, keep reaching the cluster.
pub(super) struct Slots {
    of: BTreeMap<u64, u64>,
    next_id: u64,
}

impl Slots {
    /// Members 1..=`nodes`, each in the slot of its own number.
    pub fn new(nodes: u64) -> Slots {
        Slots {
            of: (1..=nodes).map(|id| (id, id)).collect(),
            next_id: nodes + 1,
        }
    }

    /// Where member `id` runs, as the fabric names it.
    pub fn host(&self, id: u64) -> Host {
        Host::Node(self.of.get(&id).copied().unwrap_or(id))
    }

    /// The members, in id order.
    pub fn members(&self) -> Vec<u64> {
        self.of.keys().copied().collect()
    }
}

/// Removes `victim` (retrying until a member says it is gone), stops it, and starts a new
/// node in its slot that joins through another member. Does not wait for the newcomer to catch
/// up: that happens while the next faults run.
pub(super) async fn replace_member(
    cluster: &mut ProcessCluster,
    fabric: &Fabric,
    slots: &mut Slots,
    victim: u64,
) -> anyhow::Result<u64> {
    let ids = cluster.ids();
    let via = ids
        .iter()
        .copied()
        .find(|&id| id != victim)
        .context("no member left to join through")?;
    let addresses: Vec<String> = ids.iter().map(|&id| cluster.address(id)).collect();
    let client = Client::new(&addresses)?.with_deadline(Duration::from_secs(5));
    wait_until(
        Duration::from_secs(60),
        &format!("member {victim} to be removed"),
        || {
            let client = client.clone();
            async move {
                let removed = client
                    .call_mutation(|mut s| async move {
                        s.cluster()
                            .remove_member(RemoveMemberRequest { id: victim })
                            .await
                    })
                    .await;
                match removed {
                    // NOT_FOUND comes from a node that has applied the removal.
                    Ok(_) => Some(()),
                    Err(e) if e.code() == Code::NotFound => Some(()),
                    Err(_) => None,
                }
            }
        },
    )
    .await?;
    let slot = slots
        .of
        .remove(&victim)
        .with_context(|| format!("member {victim} has no slot"))?;
    cluster.forget(victim);
    let id = slots.next_id;
    slots.next_id += 1;
    slots.of.insert(id, slot);
    let host = Host::Node(slot);
    let via = cluster.address(via);
    cluster.add_joining(
        Placement {
            id,
            address: format!("{}:{PORT}", fabric.address(host)),
            prefix: fabric.exec_prefix(host),
        },
        &via,
    )?;
    Ok(id)
}

/// Waits until every running member lists exactly the members the nemesis made.
pub(super) async fn members_agree(cluster: &ProcessCluster, slots: &Slots) -> anyhow::Result<()> {
    let expected = slots.members();
    let last = RefCell::new(BTreeMap::new());
    wait_until(
        Duration::from_secs(60),
        &format!("every node to list members {expected:?}"),
        || {
            let (last, expected) = (&last, &expected);
            async move {
                for id in cluster.ids() {
                    let listed = cluster
                        .client_of(id)
                        .with_deadline(Duration::from_secs(2))
                        .call(|mut s| async move {
                            s.cluster().list_members(ListMembersRequest {}).await
                        })
                        .await
                        .ok()?;
                    let mut members: Vec<u64> = listed.members.iter().map(|m| m.id).collect();
                    members.sort_unstable();
                    last.borrow_mut().insert(id, members.clone());
                    if members != *expected {
                        return None;
                    }
                }
                Some(())
            }
        },
    )
    .await
    .with_context(|| format!("members as each node lists them: {:?}", last.borrow()))
}
