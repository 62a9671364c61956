//! Simulated regions that reach each other: cross-region PrivateLink (an interface endpoint in
//! one region connected to an endpoint service in another of the same partition). Each region
//! keeps its own state, rate buckets and AZ IDs; a call that crosses regions never holds two
//! regions' locks at once: it reads what it needs of the other region (a snapshot), lets go,
//! then changes its own.
//!
//! A remote endpoint lives in the consumer's region, as at AWS (DescribeVpcEndpoints there lists
//! it, its addresses are in that VPC's subnets), naming the service's region; the provider's
//! region finds it when it lists or decides its connections.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};

use super::cloud::SimCloud;
use super::{EndpointRec, SimConfig, SimRegion};
use crate::types::*;
use crate::{CloudError, CloudResult};

/// Regions that reach each other.
#[derive(Default)]
pub struct SimWorld {
    regions: Mutex<BTreeMap<String, Weak<SimRegion>>>,
}

impl SimWorld {
    /// An empty world.
    pub fn new() -> Arc<SimWorld> {
        Arc::new(SimWorld::default())
    }

    /// A new region of this world, `config.region` by name.
    ///
    /// # Panics
    /// When the world has that region already: a test set up wrong.
    pub fn region(self: &Arc<Self>, config: SimConfig) -> Arc<SimRegion> {
        let name = config.region.clone();
        let region = SimRegion::new(config);
        // A region made here has no world set yet: set_world cannot fail.
        let _ = region.world.set(Arc::downgrade(self));
        let mut regions = self.regions.lock().unwrap_or_else(|p| p.into_inner());
        assert!(
            regions.get(&name).is_none_or(|w| w.upgrade().is_none()),
            "the world has {name} already"
        );
        regions.insert(name, Arc::downgrade(&region));
        region
    }

    /// The region `name`, if the world has it.
    pub(super) fn get(&self, name: &str) -> Option<Arc<SimRegion>> {
        self.regions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .and_then(Weak::upgrade)
    }

    /// Every region but `name`.
    pub(super) fn others(&self, name: &str) -> Vec<Arc<SimRegion>> {
        self.regions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(n, _)| n.as_str() != name)
            .filter_map(|(_, w)| w.upgrade())
            .collect()
    }
}

impl SimRegion {
    /// Region `name` of this region's world (`None` alone, or when the world has none).
    pub(super) fn peer(&self, name: &str) -> Option<Arc<SimRegion>> {
        self.world.get()?.upgrade()?.get(name)
    }

    /// The other regions of this region's world.
    pub(super) fn peers(&self) -> Vec<Arc<SimRegion>> {
        self.world
            .get()
            .and_then(Weak::upgrade)
            .map(|w| w.others(&self.config.region))
            .unwrap_or_default()
    }
}

/// An endpoint service of another region, as a consumer's call in this one found it.
pub(super) struct RemoteService {
    pub id: String,
    pub name: String,
    pub kind: EndpointKind,
    pub owner: String,
    pub acceptance_required: bool,
}

impl SimCloud {
    /// Endpoint service `name` of region `home`, as this account may reach it from this region
    /// (DescribeVpcEndpointServices `ServiceRegions`, CreateVpcEndpoint `ServiceRegion`): it
    /// must allow the account and list this region `Available` among its SupportedRegions, and
    /// take interface endpoints; otherwise AWS answers InvalidServiceName, as for a name that
    /// does not exist.
    pub(super) fn remote_service(&self, home: &str, name: &str) -> CloudResult<RemoteService> {
        let here = self.region.config.region.clone();
        let unknown = || {
            CloudError::InvalidParameter(format!(
                "InvalidServiceName: the VPC endpoint service {name} does not exist in {home} \
                 or is not offered to {here} or you are not allowed to use it"
            ))
        };
        let peer = self.region.peer(home).ok_or_else(unknown)?;
        let there = peer.client(&self.account);
        let mut st = peer.state();
        there.refresh(&mut st);
        let (rec, kind) = there.visible_service(&st, name).map_err(|_| unknown())?;
        let offered = rec
            .svc
            .supported_regions
            .iter()
            .any(|r| r.region == here && state_is(&r.state, "Available"));
        if !offered || kind != EndpointKind::Interface {
            return Err(unknown());
        }
        Ok(RemoteService {
            id: rec.svc.id.clone(),
            name: rec.svc.name.clone(),
            kind,
            owner: rec.owner.clone(),
            acceptance_required: rec.svc.acceptance_required,
        })
    }
}

impl SimCloud {
    /// The endpoints of other regions connected or connecting to this account's services here
    /// (`owned`, or only `service_id`), as DescribeVpcEndpointConnections lists them.
    pub(super) fn remote_connections(
        &self,
        owned: &BTreeSet<String>,
        service_id: Option<&str>,
    ) -> Vec<Connection> {
        let here = self.region.config.region.clone();
        let mut found = Vec::new();
        for peer in self.region.peers() {
            let there = peer.client(&self.account);
            let mut st = peer.state();
            there.refresh(&mut st);
            found.extend(
                st.endpoints
                    .values()
                    .filter(|e| e.service_region.as_deref() == Some(here.as_str()))
                    .filter(|e| {
                        e.service_id.as_deref().is_some_and(|sid| {
                            owned.contains(sid) && service_id.is_none_or(|want| want == sid)
                        })
                    })
                    .map(EndpointRec::connection),
            );
        }
        found
    }

    /// Which of `endpoint_ids` are endpoints of other regions connected to `service_id` here.
    pub(super) fn remote_endpoints_of(
        &self,
        service_id: &str,
        endpoint_ids: &[String],
    ) -> BTreeSet<String> {
        let owned = BTreeSet::from([service_id.to_string()]);
        self.remote_connections(&owned, Some(service_id))
            .into_iter()
            .map(|c| c.endpoint_id)
            .filter(|id| endpoint_ids.contains(id))
            .collect()
    }

    /// Applies a provider's decision to endpoints of other regions (`endpoint_ids`, checked
    /// to be of `service_id` first); `forwarding` is what an accepted one's data path sends
    /// to (this region's load balancer targets, read before).
    pub(super) fn decide_remote(
        &self,
        service_id: &str,
        endpoint_ids: &BTreeSet<String>,
        forwarding: Option<&(Vec<u16>, Vec<SocketAddr>)>,
        apply: &dyn Fn(&mut EndpointRec),
    ) {
        if endpoint_ids.is_empty() {
            return;
        }
        let here = self.region.config.region.clone();
        for peer in self.region.peers() {
            let mut st = peer.state();
            for rec in st.endpoints.values_mut().filter(|e| {
                endpoint_ids.contains(&e.ep.id)
                    && e.service_region.as_deref() == Some(here.as_str())
                    && e.service_id.as_deref() == Some(service_id)
            }) {
                apply(rec);
                if rec.remote_forwarding.is_none() {
                    rec.remote_forwarding = forwarding.cloned();
                }
            }
        }
    }
}
