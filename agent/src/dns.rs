//! The agent's DNS responder (hickory): answers A queries for `SERVICE.ZONE` of this VPC's
//! bindings whose name serves (ready, or migrating: the endpoint that serves during a move), REFUSED outside the zone, NXDOMAIN for names it does not know.

use std::net::Ipv4Addr;
use std::sync::Arc;

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::{rdata::A, Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use crate::view::CatalogView;
use pld_core::Phase;

/// Longest TTL of answers: short, since endpoints can move. Shorter when the records' TTL
/// (`[dns] ttl_seconds`) is: a move waits that long after its flip before it deletes the old
/// endpoint, for this responder's answers as for Route 53's.
pub const MAX_TTL: u32 = 5;

/// Answers from the catalog view.
pub struct Responder {
    vpc_id: String,
    /// Lowercase, with the trailing dot.
    zone: String,
    view: Arc<CatalogView>,
    /// Of every answer.
    ttl: u32,
}

impl Responder {
    /// A responder for `zone` in `vpc_id`, answering with at most `record_ttl` (the TTL of
    /// the names the agent publishes).
    pub fn new(vpc_id: String, zone: String, view: Arc<CatalogView>, record_ttl: u32) -> Self {
        Responder {
            vpc_id,
            zone,
            view,
            ttl: record_ttl.min(MAX_TTL),
        }
    }

    /// The addresses `name` resolves to: `None` when the name is outside the zone, an empty
    /// list when no binding that serves has it.
    pub fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
        let name = name.to_ascii_lowercase();
        let service = name.strip_suffix(&format!(".{}", self.zone))?;
        let serving = self
            .view
            .binding(service, &self.vpc_id)
            .and_then(|b| b.status)
            .filter(|s| Phase::of(&s.phase).is_some_and(Phase::serves));
        Some(
            serving
                .map(|s| s.addresses.iter().filter_map(|a| a.parse().ok()).collect())
                .unwrap_or_default(),
        )
    }
}

#[async_trait::async_trait]
impl RequestHandler for Responder {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let builder = MessageResponseBuilder::from_message_request(request);
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let Ok(info) = request.request_info() else {
            metadata.response_code = ResponseCode::FormErr;
            return send(
                &mut response_handle,
                builder.build_no_records(metadata),
                request,
            )
            .await;
        };
        let qname = info.query.name().to_string();
        let qtype = info.query.query_type();
        match self.lookup(&qname) {
            None => {
                metadata.response_code = ResponseCode::Refused;
                send(
                    &mut response_handle,
                    builder.build_no_records(metadata),
                    request,
                )
                .await
            }
            Some(addrs) if addrs.is_empty() => {
                metadata.authoritative = true;
                metadata.response_code = ResponseCode::NXDomain;
                send(
                    &mut response_handle,
                    builder.build_no_records(metadata),
                    request,
                )
                .await
            }
            Some(addrs) => {
                metadata.authoritative = true;
                let name = Name::from(info.query.name().clone());
                let records: Vec<Record> = if qtype == RecordType::A || qtype == RecordType::ANY {
                    addrs
                        .into_iter()
                        .map(|ip| Record::from_rdata(name.clone(), self.ttl, RData::A(A(ip))))
                        .collect()
                } else {
                    Vec::new()
                };
                let response = builder.build(metadata, records.iter(), [], [], []);
                send(&mut response_handle, response, request).await
            }
        }
    }
}

async fn send<'a, R: ResponseHandler>(
    handle: &mut R,
    response: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    request: &Request,
) -> ResponseInfo {
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(_) => {
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            })
        }
    }
}
