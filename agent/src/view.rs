//! The agent's local copy of the catalog's services and bindings, kept current by a watch.
//!
//! The copy starts from a list and then applies watch events; when the watch cannot resume (its
//! revision was compacted) it lists again. Every change bumps a version that reconcilers and
//! host queries wait on.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use pld_client::Client;
use pld_proto::v1::{object, Binding, EventType, Kind, ListRequest, Service, WatchRequest};
use tokio::sync::watch;
use tracing::{debug, warn};

#[derive(Default)]
struct Objects {
    services: BTreeMap<String, Service>,
    bindings: BTreeMap<String, Binding>,
    /// Revision each kind was listed at: older events of that kind are already in the list.
    listed: BTreeMap<i32, u64>,
}

/// The catalog as this agent last saw it.
pub struct CatalogView {
    objects: RwLock<Objects>,
    version: watch::Sender<u64>,
}

impl CatalogView {
    /// An empty view.
    pub fn new() -> Arc<Self> {
        Arc::new(CatalogView {
            objects: RwLock::new(Objects::default()),
            version: watch::channel(0).0,
        })
    }

    /// A receiver that changes on every change of the view.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// A service by name.
    pub fn service(&self, name: &str) -> Option<Service> {
        self.read().services.get(name).cloned()
    }

    /// Services of a provider VPC.
    pub fn services_of(&self, vpc_id: &str) -> Vec<Service> {
        self.read()
            .services
            .values()
            .filter(|s| s.vpc_id == vpc_id)
            .cloned()
            .collect()
    }

    /// Bindings of a consumer VPC.
    pub fn bindings_of(&self, vpc_id: &str) -> Vec<Binding> {
        self.read()
            .bindings
            .values()
            .filter(|b| b.consumer_vpc_id == vpc_id)
            .cloned()
            .collect()
    }

    /// Bindings to a service.
    pub fn bindings_to(&self, service: &str) -> Vec<Binding> {
        self.read()
            .bindings
            .values()
            .filter(|b| b.service == service)
            .cloned()
            .collect()
    }

    /// One binding.
    pub fn binding(&self, service: &str, vpc_id: &str) -> Option<Binding> {
        self.read()
            .bindings
            .get(&pld_core::catalog::binding_key(service, vpc_id))
            .cloned()
    }

    /// Whether the view has listed the catalog at least once (it may lag since, by the watch).
    pub fn synced(&self) -> bool {
        self.read().listed.len() >= 2
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Objects> {
        self.objects.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Objects> {
        self.objects.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Lists services and bindings; returns the lowest listed revision.
    async fn relist(&self, client: &Client) -> Result<u64, pld_client::ClientError> {
        let mut lowest = u64::MAX;
        for kind in [Kind::Service, Kind::Binding] {
            let r = client
                .call(|mut s| async move {
                    s.catalog()
                        .list(ListRequest {
                            kind: kind as i32,
                            ..Default::default()
                        })
                        .await
                })
                .await?;
            let mut objects = self.write();
            match kind {
                Kind::Service => {
                    objects.services = r
                        .objects
                        .into_iter()
                        .filter_map(|o| match o.object? {
                            object::Object::Service(s) => Some((s.name.clone(), s)),
                            _ => None,
                        })
                        .collect();
                }
                _ => {
                    objects.bindings = r
                        .objects
                        .into_iter()
                        .filter_map(|o| match o.object? {
                            object::Object::Binding(b) => Some((
                                pld_core::catalog::binding_key(&b.service, &b.consumer_vpc_id),
                                b,
                            )),
                            _ => None,
                        })
                        .collect();
                }
            }
            objects.listed.insert(kind as i32, r.revision);
            lowest = lowest.min(r.revision);
        }
        self.bump();
        Ok(lowest)
    }

    fn apply(&self, event: pld_proto::v1::Event) {
        let mut objects = self.write();
        if objects
            .listed
            .get(&event.kind)
            .is_some_and(|r| event.revision <= *r)
        {
            return;
        }
        let put = event.r#type == EventType::Put as i32;
        match event.object.and_then(|o| o.object) {
            Some(object::Object::Service(s)) => {
                if put {
                    objects.services.insert(event.key, s);
                } else {
                    objects.services.remove(&event.key);
                }
            }
            Some(object::Object::Binding(b)) => {
                if put {
                    objects.bindings.insert(event.key, b);
                } else {
                    objects.bindings.remove(&event.key);
                }
            }
            _ => return,
        }
        drop(objects);
        self.bump();
    }

    /// Keeps the view current until `stop` turns true: list, watch, list again when the watch
    /// cannot resume.
    pub async fn follow(self: Arc<Self>, client: Client, mut stop: watch::Receiver<bool>) {
        loop {
            let start = match self.relist(&client).await {
                Ok(r) => r + 1,
                Err(e) => {
                    warn!(error = %e, "cannot list the catalog; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            };
            let mut events = Box::pin(client.watch(WatchRequest {
                start_revision: start,
                kinds: vec![Kind::Service as i32, Kind::Binding as i32],
                prefix: String::new(),
            }));
            loop {
                let next = tokio::select! {
                    next = events.next() => next,
                    _ = stop.wait_for(|s| *s) => return,
                };
                match next {
                    Some(Ok(event)) => self.apply(event),
                    Some(Err(e)) => {
                        debug!(error = %e, "catalog watch ended; listing again");
                        break;
                    }
                    None => break,
                }
            }
        }
    }
}
