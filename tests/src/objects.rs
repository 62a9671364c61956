//! Catalog objects and calls for tests.

use pld_client::{Client, ClientError};
use pld_proto::v1::{object, Acceptance, GetRequest, Kind, Object, PutRequest, Service};

/// An NLB ARN that validates.
pub const NLB: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/demo/50dc6c495c0c9188";

/// A valid service named `name`.
pub fn service(name: &str) -> Service {
    Service {
        name: name.into(),
        vpc_id: "vpc-0123abcd".into(),
        load_balancer_arn: NLB.into(),
        ports: vec![443],
        acceptance: Acceptance::Auto as i32,
        ..Default::default()
    }
}

/// Wraps a service as an object.
pub fn service_object(name: &str) -> Object {
    Object {
        object: Some(object::Object::Service(service(name))),
    }
}

/// Puts service `name` through `client`; returns the catalog revision of the write.
///
/// # Errors
/// The client's error.
pub async fn put_service(client: &Client, name: &str) -> Result<u64, ClientError> {
    let object = service_object(name);
    let r = client
        .call(|mut s| {
            let req = PutRequest {
                object: Some(object.clone()),
                expected_mod_revision: None,
            };
            async move { s.catalog().put(req).await }
        })
        .await?;
    Ok(r.revision)
}

/// Reads service `name` (linearizable unless `stale`); `None` when it does not exist.
///
/// # Errors
/// Any error other than NOT_FOUND.
pub async fn get_service(
    client: &Client,
    name: &str,
    stale: bool,
) -> Result<Option<Service>, ClientError> {
    let r = client
        .call(|mut s| {
            let req = GetRequest {
                kind: Kind::Service as i32,
                key: name.into(),
                stale,
            };
            async move { s.catalog().get(req).await }
        })
        .await;
    match r {
        Ok(r) => Ok(match r.object.and_then(|o| o.object) {
            Some(object::Object::Service(s)) => Some(s),
            _ => None,
        }),
        Err(e) if e.code() == tonic::Code::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
