//! `pld.v1.Watch`: streams the catalog's change events in revision order.
//!
//! Each stream is a task that reads the replicated event window from the node's applied catalog
//! and then sleeps until the node applies more. A slow client only slows its own stream (the
//! channel is bounded); if it falls behind the window it gets OUT_OF_RANGE ("compacted").

use std::pin::Pin;

use futures::Stream;
use pld_core::access;
use pld_core::catalog::{parse_kind, Catalog};
use pld_core::command::Scope;
use pld_proto::v1::watch_server::Watch;
use pld_proto::v1::{Event, WatchRequest, WatchResponse};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{debug, instrument};

use super::{catalog_status, invalid};
use crate::authz::Authz;
use crate::node::NodeHandle;

/// Most events read from the window at a time.
const READ_BATCH: usize = 512;
/// Messages buffered per stream before the stream task waits for the client.
const STREAM_BUFFER: usize = 16;

/// Serves watches from a node.
pub struct WatchService {
    node: NodeHandle,
    stopping: watch::Receiver<bool>,
    authz: Authz,
}

impl WatchService {
    /// A service over `node`. Streams end (UNAVAILABLE) when `stopping` turns true, so a
    /// draining server is not held open by watchers.
    pub fn new(node: NodeHandle, stopping: watch::Receiver<bool>, authz: Authz) -> Self {
        WatchService {
            node,
            stopping,
            authz,
        }
    }
}

struct Filter {
    kinds: Vec<i32>,
    prefix: String,
    /// An agent's VPC: its stream carries only what it may read, judged against the catalog
    /// when the event is read (a delete event carries the removed object's key).
    scope: Option<Scope>,
}

impl Filter {
    fn matches(&self, catalog: &Catalog, e: &Event) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&e.kind))
            && e.key.starts_with(&self.prefix)
            && self.scope.as_ref().is_none_or(|scope| {
                parse_kind(e.kind).is_ok_and(|kind| access::may_read(catalog, scope, kind, &e.key))
            })
    }
}

/// Counts an open stream in `pld_catalog_watchers` for as long as it lives.
struct WatcherCount(metrics::Gauge);

impl WatcherCount {
    fn open(node: &NodeHandle) -> Self {
        let gauge = node.metrics().watchers.clone();
        gauge.increment(1.0);
        WatcherCount(gauge)
    }
}

impl Drop for WatcherCount {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = WatchStream;

    #[instrument(skip_all, fields(node = self.node.id()))]
    async fn watch(
        &self,
        req: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let caller = self.authz.caller(&req)?;
        let req = req.into_inner();
        for k in &req.kinds {
            parse_kind(*k).map_err(invalid)?;
        }
        let filter = Filter {
            kinds: req.kinds,
            prefix: req.prefix,
            scope: caller.read_scope().cloned(),
        };
        let mut applied = self.node.applied();
        let (mut next, current) = {
            let catalog = self.node.catalog();
            let current = catalog.revision();
            let next = if req.start_revision == 0 {
                current + 1
            } else {
                req.start_revision
            };
            // Refuse a compacted start before the stream opens.
            catalog.events_since(next, 0).map_err(catalog_status)?;
            (next, current)
        };
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let node = self.node.clone();
        let mut stopping = self.stopping.clone();
        tokio::spawn(async move {
            let _counted = WatcherCount::open(&node);
            let hello = WatchResponse {
                events: Vec::new(),
                revision: current,
            };
            if tx.send(Ok(hello)).await.is_err() {
                return;
            }
            loop {
                applied.borrow_and_update();
                let batch = {
                    let catalog = node.catalog();
                    catalog.events_since(next, READ_BATCH).map(|events| {
                        let seen = events.last().map(|e| e.revision + 1);
                        let events: Vec<Event> = events
                            .into_iter()
                            .filter(|e| filter.matches(&catalog, e))
                            .collect();
                        (seen, events, catalog.revision())
                    })
                };
                match batch {
                    Err(e) => {
                        let _ = tx.send(Err(catalog_status(e))).await;
                        return;
                    }
                    Ok((Some(seen), events, revision)) => {
                        next = seen;
                        if !events.is_empty()
                            && tx
                                .send(Ok(WatchResponse { events, revision }))
                                .await
                                .is_err()
                        {
                            return;
                        }
                    }
                    Ok(_) => {
                        // Decide inside select, act outside: the borrow `wait_for` returns
                        // must not live across an await.
                        let stop = tokio::select! {
                            changed = applied.changed() => changed
                                .is_err()
                                .then_some("the node stopped; resume the watch on another node"),
                            _ = stopping.wait_for(|s| *s) => {
                                Some("the node is shutting down; resume the watch on another node")
                            }
                            _ = tx.closed() => {
                                debug!("watch client went away");
                                return;
                            }
                        };
                        if let Some(why) = stop {
                            let _ = tx.send(Err(Status::unavailable(why))).await;
                            return;
                        }
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
