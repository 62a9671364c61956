//! Status reports: what the agent found, written back to the catalog. A report is sent only
//! when it differs from the status the catalog holds, because every report is a catalog write
//! that wakes every watcher — this agent's own next pass included.

use pld_cloud::{Endpoint, EndpointService};
use pld_core::Phase;
use pld_proto::v1::{
    report_status_request, Binding, BindingStatus, Kind, ReportStatusRequest, Service,
    ServiceStatus,
};
use tracing::debug;

use super::Reconciler;

impl Reconciler {
    /// Reports a provided service's endpoint service (`state` as AWS spells it, lower case).
    pub(super) async fn report_service(
        &self,
        service: &Service,
        state: &str,
        es: Option<&EndpointService>,
        message: String,
    ) {
        let status = ServiceStatus {
            state: state.to_string(),
            endpoint_service_name: es.map(|e| e.name.clone()).unwrap_or_default(),
            az_ids: es.map(|e| e.az_ids.clone()).unwrap_or_default(),
            message,
        };
        if service.status.as_ref() == Some(&status) {
            return;
        }
        self.report(
            Kind::Service,
            &service.name,
            report_status_request::Status::Service(status),
        )
        .await;
    }

    /// Reports a binding's phase, its endpoint and the name it is published under.
    pub(super) async fn report_binding(
        &self,
        b: &Binding,
        phase: Phase,
        ep: Option<&Endpoint>,
        dns_name: String,
        message: String,
    ) {
        let key = pld_core::catalog::binding_key(&b.service, &b.consumer_vpc_id);
        // A settled binding has nothing pending; otherwise what the last plan left in flight.
        let pending = if phase.is_settled() {
            Vec::new()
        } else {
            self.memory()
                .pending
                .get(&key)
                .map(|steps| steps.iter().map(|s| s.to_proto()).collect())
                .unwrap_or_default()
        };
        let status = BindingStatus {
            phase: phase.to_string(),
            endpoint_id: ep.map(|e| e.id.clone()).unwrap_or_default(),
            dns_name: dns_name.trim_end_matches('.').to_string(),
            addresses: ep.map(|e| e.addresses.clone()).unwrap_or_default(),
            message,
            pending,
        };
        if b.status.as_ref() == Some(&status) {
            return;
        }
        self.report(
            Kind::Binding,
            &key,
            report_status_request::Status::Binding(status),
        )
        .await;
    }

    /// Sends one report. A report that does not get through is not retried here: the next
    /// pass compares again and sends it again.
    async fn report(&self, kind: Kind, key: &str, status: report_status_request::Status) {
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
        if let Err(e) = r {
            debug!(%key, error = %e, "status not reported");
        }
    }
}
