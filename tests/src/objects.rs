//! Catalog objects and calls for tests.

use pld_client::{Client, ClientError};
use pld_proto::v1::{object, Acceptance, Kind, Object, Service};

/// An NLB ARN that validates.
pub const NLB: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/demo/50dc6c495c0c9188";

/// A valid service named `name`, open to every principal (so any VPC may bind to it).
pub fn service(name: &str) -> Service {
    Service {
        name: name.into(),
        vpc_id: "vpc-0123abcd".into(),
        load_balancer_arn: NLB.into(),
        ports: vec![443],
        acceptance: Acceptance::Auto as i32,
        allowed_principals: vec!["*".into()],
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
    Ok(client.put(service_object(name), None).await?.revision)
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
    let found = if stale {
        client.get_local(Kind::Service, name).await?
    } else {
        client.get(Kind::Service, name).await?
    };
    Ok(match found.and_then(|o| o.object) {
        Some(object::Object::Service(s)) => Some(s),
        _ => None,
    })
}

/// Deletes an object.
///
/// # Errors
/// The client's error (NOT_FOUND included).
pub async fn delete(client: &Client, kind: Kind, key: &str) -> Result<(), ClientError> {
    client.delete(kind, key, None).await?;
    Ok(())
}

/// Puts a binding of `vpc_id` to `service` with an operator decision.
///
/// # Errors
/// The client's error.
pub async fn put_binding(
    client: &Client,
    service: &str,
    vpc_id: &str,
    approval: pld_proto::v1::Approval,
) -> Result<(), ClientError> {
    let object = Object {
        object: Some(object::Object::Binding(pld_proto::v1::Binding {
            service: service.into(),
            consumer_vpc_id: vpc_id.into(),
            approval: approval as i32,
            ..Default::default()
        })),
    };
    client.put(object, None).await?;
    Ok(())
}

/// The status the agent reported for `vpc_id`'s binding to `service` (local read), if any.
pub async fn binding_status(
    client: &Client,
    service: &str,
    vpc_id: &str,
) -> Option<pld_proto::v1::BindingStatus> {
    let key = pld_core::catalog::binding_key(service, vpc_id);
    match client.get_local(Kind::Binding, &key).await.ok()??.object? {
        object::Object::Binding(b) => b.status,
        _ => None,
    }
}

/// The status the provider's agent reported for service `name` (local read), if any.
pub async fn service_status(client: &Client, name: &str) -> Option<pld_proto::v1::ServiceStatus> {
    get_service(client, name, true).await.ok().flatten()?.status
}

/// The facts the agent of `vpc_id` reported of its VPC (local read), if any.
pub async fn agent_facts(client: &Client, vpc_id: &str) -> Option<pld_proto::v1::VpcFacts> {
    match client.get_local(Kind::Agent, vpc_id).await.ok()??.object? {
        object::Object::Agent(a) => a.facts,
        _ => None,
    }
}
