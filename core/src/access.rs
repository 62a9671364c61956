//! Who may change what, decided by the state machine itself.
//!
//! Two rules live here rather than in the API layer because they depend on the catalog's
//! state, and only the apply step sees that state with no write able to slip in between check
//! and change:
//!
//! - **Scope**: a command an agent sent (its certificate names an account and a VPC) may only
//!   touch that VPC's objects: its agent record, the services it provides, the bindings it
//!   consumes, and their status and lease. It may not approve or reject a binding.
//! - **Principals**: a binding to a catalog service is accepted only when the consumer VPC's
//!   account is one the service allows (`*`, an IAM ARN in that account, or the provider's own
//!   account), the same rule the provider's agent applies to connection requests and AWS
//!   applies to endpoint creation. The consumer's account comes from the agent's certificate,
//!   or else from the consumer VPC's registered agent.
//! - **Reads**: an agent sees every service (its hosts look them up to bind them), the
//!   bindings its VPC consumes and those to the services it provides (it accepts their
//!   connections), and its own agent record; nothing else of another VPC. [`may_read`] decides
//!   it from the key alone, so a refusal does not tell whether the object exists.

use pld_proto::v1::{object, report_status_request, Approval, Binding, Kind, Object};

use crate::catalog::object::{kind_name, parse_kind};
use crate::catalog::{Catalog, CatalogError};
use crate::command::{Op, Scope};

/// Whether a consumer in `consumer_account` may connect to a service allowing `principals`
/// whose provider is in `provider_account` (when known).
pub fn principals_allow(
    principals: &[String],
    provider_account: Option<&str>,
    consumer_account: &str,
) -> bool {
    provider_account == Some(consumer_account)
        || principals
            .iter()
            .any(|p| p == "*" || p.split(':').nth(4) == Some(consumer_account))
}

fn forbidden(scope: &Scope, what: String) -> CatalogError {
    CatalogError::Forbidden(format!(
        "the agent of {} (account {}) {what}",
        scope.vpc_id, scope.account_id
    ))
}

/// Whether the agent of `scope` may read object `key` of `kind` in `catalog` as it is now.
///
/// A binding is readable by its consumer (named in its key, `SERVICE/VPC`) and by the provider
/// of the catalog service it binds; a binding to a built-in AWS service or to a service not in
/// the catalog, by its consumer alone.
pub fn may_read(catalog: &Catalog, scope: &Scope, kind: Kind, key: &str) -> bool {
    match kind {
        Kind::Service => true,
        Kind::Agent => key == scope.vpc_id,
        Kind::Binding => match key.rsplit_once('/') {
            Some((service, consumer)) => {
                consumer == scope.vpc_id
                    || catalog
                        .service(service)
                        .is_some_and(|s| s.vpc_id == scope.vpc_id)
            }
            None => false,
        },
        Kind::Unspecified => false,
    }
}

/// Checks `op` against the catalog as it is now: the agent scope when there is one, and the
/// principal rule for every binding put.
///
/// # Errors
/// [`CatalogError::Forbidden`] saying who may not do what; the catalog is left unchanged.
pub fn check(catalog: &Catalog, op: &Op, scope: Option<&Scope>) -> Result<(), CatalogError> {
    if let Some(scope) = scope {
        confine(catalog, op, scope)?;
    }
    if let Op::Put(put) = op {
        if let Some(Object {
            object: Some(object::Object::Binding(b)),
        }) = &put.object
        {
            check_principals(catalog, b, scope)?;
        }
    }
    Ok(())
}

/// The VPC an existing object belongs to: a service's provider, a binding's consumer, an agent's.
fn owner<'a>(catalog: &'a Catalog, kind: Kind, key: &str) -> Option<&'a str> {
    match kind {
        Kind::Service => catalog.service(key).map(|s| s.vpc_id.as_str()),
        Kind::Binding => catalog.binding(key).map(|b| b.consumer_vpc_id.as_str()),
        Kind::Agent => catalog.agent(key).map(|a| a.vpc_id.as_str()),
        Kind::Unspecified => None,
    }
}

/// Refuses a change to an existing object of another VPC. A missing object passes: the
/// operation then fails as NOT_FOUND (or creates it, for a put whose spec was checked).
fn own_existing(
    catalog: &Catalog,
    kind: Kind,
    key: &str,
    scope: &Scope,
) -> Result<(), CatalogError> {
    match owner(catalog, kind, key) {
        Some(vpc) if vpc != scope.vpc_id => Err(forbidden(
            scope,
            format!(
                "cannot change {} {key:?}: it belongs to {vpc}",
                kind_name(kind)
            ),
        )),
        _ => Ok(()),
    }
}

fn confine(catalog: &Catalog, op: &Op, scope: &Scope) -> Result<(), CatalogError> {
    match op {
        Op::Put(put) => match put.object.as_ref().and_then(|o| o.object.as_ref()) {
            Some(object::Object::Service(s)) => {
                if s.vpc_id != scope.vpc_id {
                    return Err(forbidden(
                        scope,
                        format!("cannot register service {:?} for {}", s.name, s.vpc_id),
                    ));
                }
                own_existing(catalog, Kind::Service, &s.name, scope)
            }
            Some(object::Object::Binding(b)) => {
                if b.consumer_vpc_id != scope.vpc_id {
                    return Err(forbidden(
                        scope,
                        format!(
                            "cannot bind {} to service {:?}",
                            b.consumer_vpc_id, b.service
                        ),
                    ));
                }
                let key = crate::catalog::binding_key(&b.service, &b.consumer_vpc_id);
                let current = catalog
                    .binding(&key)
                    .map_or(Approval::Unspecified as i32, |old| old.approval);
                if b.approval != current {
                    return Err(forbidden(
                        scope,
                        "cannot approve or reject a binding (an operator runs `pld bindings \
                         accept|reject`)"
                            .to_string(),
                    ));
                }
                Ok(())
            }
            Some(object::Object::Agent(a)) => {
                if a.vpc_id != scope.vpc_id || a.account_id != scope.account_id {
                    return Err(forbidden(
                        scope,
                        format!(
                            "cannot register the agent of {} (account {})",
                            a.vpc_id, a.account_id
                        ),
                    ));
                }
                Ok(())
            }
            // Malformed: the put itself names the missing field.
            None => Ok(()),
        },
        Op::Delete(delete) => match parse_kind(delete.kind) {
            Ok(kind) => own_existing(catalog, kind, &delete.key, scope),
            Err(_) => Ok(()),
        },
        Op::ReportStatus(report) => {
            let kind = match report.status {
                Some(report_status_request::Status::Service(_)) => Kind::Service,
                Some(report_status_request::Status::Binding(_)) => Kind::Binding,
                Some(report_status_request::Status::Agent(_)) => Kind::Agent,
                None => return Ok(()),
            };
            own_existing(catalog, kind, &report.key, scope)
        }
        Op::KeepAlive(k) if k.vpc_id != scope.vpc_id => Err(forbidden(
            scope,
            format!("cannot renew the lease of {}", k.vpc_id),
        )),
        Op::KeepAlive(_) => Ok(()),
        Op::ExpireLeases(_) | Op::Restore(_) | Op::SetClusterId(_) => Err(forbidden(
            scope,
            "cannot expire leases, restore the catalog or name the cluster".to_string(),
        )),
    }
}

fn check_principals(
    catalog: &Catalog,
    binding: &Binding,
    scope: Option<&Scope>,
) -> Result<(), CatalogError> {
    // Built-in AWS services and services not (yet) in the catalog have nothing to check here;
    // the provider's agent applies the same rule when the connection request arrives.
    let Some(service) = catalog.service(&binding.service) else {
        return Ok(());
    };
    let account_of = |vpc: &str| catalog.agent(vpc).map(|a| a.account_id.as_str());
    let provider_account = account_of(&service.vpc_id);
    let consumer_account = match scope {
        Some(s) => Some(s.account_id.as_str()),
        None => account_of(&binding.consumer_vpc_id),
    };
    let refuse = |why: String| {
        Err(CatalogError::Forbidden(format!(
            "binding {} to service {:?} refused: {why}",
            binding.consumer_vpc_id, binding.service
        )))
    };
    match consumer_account {
        Some(account)
            if principals_allow(&service.allowed_principals, provider_account, account) =>
        {
            Ok(())
        }
        Some(account) => refuse(format!(
            "account {account} is not among its allowed principals [{}]",
            service.allowed_principals.join(", ")
        )),
        None if service.allowed_principals.iter().any(|p| p == "*")
            || binding.consumer_vpc_id == service.vpc_id =>
        {
            Ok(())
        }
        None => refuse(format!(
            "it allows only [{}], and the account of {} is unknown until that VPC's agent \
             registers",
            service.allowed_principals.join(", "),
            binding.consumer_vpc_id
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::principals_allow;

    fn p(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn principals() {
        let consumer = "222222222222";
        assert!(principals_allow(&p(&["*"]), None, consumer));
        assert!(principals_allow(
            &p(&["arn:aws:iam::222222222222:root"]),
            None,
            consumer
        ));
        assert!(principals_allow(
            &p(&["arn:aws:iam::222222222222:role/app"]),
            None,
            consumer
        ));
        assert!(
            principals_allow(&[], Some(consumer), consumer),
            "same account"
        );
        assert!(!principals_allow(&[], None, consumer));
        assert!(!principals_allow(
            &p(&["arn:aws:iam::333333333333:root"]),
            Some("111111111111"),
            consumer
        ));
    }
}
