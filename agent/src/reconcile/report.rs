//! Status reports: what the agent found, written back to the catalog. A report is sent only
//! when it differs from the status the catalog holds, because every report is a catalog write
//! that wakes every watcher — this agent's own next pass included.

use std::time::Instant;

use pld_cloud::{Endpoint, EndpointService};
use pld_core::plan::report::{
    binding_status, service_status, to_send, RetiringFound, ServiceFound,
};
use pld_core::Phase;
use pld_proto::v1::{
    report_status_request, Binding, BindingMigration, Kind, ReportStatusRequest, Service,
};
use tracing::debug;

use super::Reconciler;

impl Reconciler {
    /// Reports a provided service's endpoint service (`state` as AWS spells it), those it moved
    /// off with their live connections, and the steps a failure left pending
    /// ([`super::Memory::service_pending`]).
    pub(super) async fn report_service(
        &self,
        service: &Service,
        state: &str,
        current: Option<&EndpointService>,
        retiring: &[RetiringFound<'_>],
        message: &str,
    ) {
        let pending = self
            .memory()
            .service_pending
            .get(&service.name)
            .cloned()
            .unwrap_or_default();
        let front = self.memory().alb_fronts.get(&service.name).cloned();
        let found = service_status(ServiceFound {
            state,
            current,
            retiring,
            message,
            pending: &pending,
            alb_front: front.as_ref(),
            regions: &service.regions,
        });
        let Some(status) = to_send(service.status.as_ref(), found) else {
            return;
        };
        self.report(
            Kind::Service,
            &service.name,
            report_status_request::Status::Service(status),
        )
        .await;
    }

    /// Reports a binding's phase, its endpoint (the one its name points at), the name it is
    /// published under, the steps its last plan left pending ([`super::Memory::pending`]), and
    /// its move when its service moved.
    pub(super) async fn report_binding(
        &self,
        b: &Binding,
        phase: Phase,
        ep: Option<&Endpoint>,
        dns_name: String,
        message: String,
        migration: Option<BindingMigration>,
    ) {
        let key = pld_core::catalog::binding_key(&b.service, &b.consumer_vpc_id);
        let pending = {
            let mut memory = self.memory();
            if matches!(phase, Phase::Ready | Phase::Rejected) {
                // Nothing is left to do: what was pending is done.
                memory.pending.remove(&key);
            }
            match phase {
                Phase::Migrating => {
                    memory
                        .moving_since
                        .entry(key.clone())
                        .or_insert_with(Instant::now);
                }
                Phase::Ready => {
                    if let Some(since) = memory.moving_since.remove(&key) {
                        self.metrics.record_move(since.elapsed());
                    }
                }
                // A write that failed mid-move (retried) or a refusal: the move goes on, or
                // its binding is dropped with the rest of its memory.
                _ => {}
            }
            memory.pending.get(&key).cloned().unwrap_or_default()
        };
        let found = binding_status(phase, ep, &dns_name, message, &pending, migration);
        let Some(status) = to_send(b.status.as_ref(), found) else {
            return;
        };
        self.report(
            Kind::Binding,
            &key,
            report_status_request::Status::Binding(status),
        )
        .await;
    }

    /// Sends one report; whether it got through. A report that does not is not retried here:
    /// the next pass compares again and sends it again.
    pub(super) async fn report(
        &self,
        kind: Kind,
        key: &str,
        status: report_status_request::Status,
    ) -> bool {
        let r = self
            .client
            .call(|mut s| {
                let req = ReportStatusRequest {
                    kind: kind as i32,
                    key: key.to_string(),
                    status: Some(status.clone()),
                };
                async move { s.catalog().report_status(req).await }
            })
            .await;
        if let Err(e) = &r {
            debug!(%key, error = %e, "status not reported");
        }
        r.is_ok()
    }
}
