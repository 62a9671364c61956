//! Any bytes as what a client sends: a put or a status report (validated the way the catalog
//! API does, then applied, unscoped and as the object's own agent would be), or a client
//! certificate and identity URI (read the way authorization does). Refused or served, never a
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pld_controller::authz::{Identity, TrustDomain};
use pld_core::catalog::{object_key, validate_object, Catalog};
use pld_core::command::{Command, Op, PutOp, Scope};
use pld_proto::v1::{object, PutRequest, ReportStatusRequest};
use prost::Message;

/// The scope an agent of the object's VPC would send it with.
fn own_scope(request: &PutRequest) -> Option<Scope> {
    let vpc_id = match request.object.as_ref()?.object.as_ref()? {
        object::Object::Service(s) => s.vpc_id.clone(),
        object::Object::Binding(b) => b.consumer_vpc_id.clone(),
        object::Object::Agent(a) => a.vpc_id.clone(),
    };
    Some(Scope {
        account_id: "111111111111".into(),
        vpc_id,
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            let Ok(request) = PutRequest::decode(rest) else {
                return;
            };
            let Some(object) = request.object.clone() else {
                return;
            };
            if validate_object(&object).is_err() || object_key(&object).is_err() {
                return;
            }
            let mut catalog = Catalog::default();
            for scope in [None, own_scope(&request)] {
                let put = Command::new(Op::Put(PutOp {
                    object: Some(object.clone()),
                    expected_mod_revision: request.expected_mod_revision,
                    now_unix_ms: 1,
                }))
                .within(scope);
                let _ = catalog.apply(&put);
            }
        }
        1 => {
            let Ok(request) = ReportStatusRequest::decode(rest) else {
                return;
            };
            let mut catalog = Catalog::default();
            let _ = catalog.apply(&Command::new(Op::ReportStatus(request)));
        }
        _ => {
            let domain = TrustDomain::default();
            let _ = Identity::from_certificate(rest, &domain);
            if let Ok(uri) = std::str::from_utf8(rest) {
                let _ = Identity::parse(uri, &domain);
                let _ = TrustDomain::new(uri);
            }
        }
    }
});
