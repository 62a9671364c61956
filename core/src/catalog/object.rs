//! Objects as the wire carries them: their kinds, keys, revisions and validation.

use pld_proto::v1::{object, Kind, Meta, Object};

use crate::validate::{self, FieldError};

/// The name of a kind in messages.
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Service => "service",
        Kind::Binding => "binding",
        Kind::Agent => "agent",
        Kind::Unspecified => "object",
    }
}

/// The key of a binding: `service/consumer_vpc_id`.
pub fn binding_key(service: &str, consumer_vpc_id: &str) -> String {
    format!("{service}/{consumer_vpc_id}")
}

/// The kind of an object, without building its key.
///
/// # Errors
/// When the object is empty.
pub fn object_kind(obj: &Object) -> Result<Kind, FieldError> {
    match &obj.object {
        Some(object::Object::Service(_)) => Ok(Kind::Service),
        Some(object::Object::Binding(_)) => Ok(Kind::Binding),
        Some(object::Object::Agent(_)) => Ok(Kind::Agent),
        None => Err(empty_object()),
    }
}

/// The kind and key of an object.
///
/// # Errors
/// When the object is empty.
pub fn object_key(obj: &Object) -> Result<(Kind, String), FieldError> {
    match &obj.object {
        Some(object::Object::Service(s)) => Ok((Kind::Service, s.name.clone())),
        Some(object::Object::Binding(b)) => {
            Ok((Kind::Binding, binding_key(&b.service, &b.consumer_vpc_id)))
        }
        Some(object::Object::Agent(a)) => Ok((Kind::Agent, a.vpc_id.clone())),
        None => Err(empty_object()),
    }
}

pub(super) fn empty_object() -> FieldError {
    FieldError {
        field: "object".into(),
        reason: "must hold a service, binding or agent".into(),
    }
}

/// Validates an object's spec.
///
/// # Errors
/// The first field found wrong.
pub fn validate_object(obj: &Object) -> Result<(), FieldError> {
    match &obj.object {
        Some(object::Object::Service(s)) => validate::service(s),
        Some(object::Object::Binding(b)) => validate::binding(b),
        Some(object::Object::Agent(a)) => validate::agent(a),
        None => object_key(obj).map(|_| ()),
    }
}

/// Parses a wire kind, refusing unknown and unspecified values.
///
/// # Errors
/// Names the `kind` field.
pub fn parse_kind(kind: i32) -> Result<Kind, FieldError> {
    match Kind::try_from(kind) {
        Ok(Kind::Unspecified) | Err(_) => Err(FieldError {
            field: "kind".into(),
            reason: format!("{kind} is not a kind (service, binding or agent)"),
        }),
        Ok(k) => Ok(k),
    }
}

fn meta_of(obj: &Object) -> Option<&Meta> {
    match &obj.object {
        Some(object::Object::Service(s)) => s.meta.as_ref(),
        Some(object::Object::Binding(b)) => b.meta.as_ref(),
        Some(object::Object::Agent(a)) => a.meta.as_ref(),
        None => None,
    }
}

/// The mod revision of an object (0 when it has no meta).
pub fn mod_revision(obj: &Object) -> u64 {
    meta_of(obj).map_or(0, |m| m.mod_revision)
}
