//! Where a binding points and whether its service lets it connect, decided from the catalog
//! alone: the consumer's agent plans its endpoint with these, and `pld plan` in the controller
//! runs the same decisions on the same catalog.

use pld_proto::v1::{Approval, Binding, Service};

use super::builtin;
use super::endpoint::Target;
use crate::access::principals_allow;

/// Where `binding` points: the endpoint service of `service` (its catalog service, `None` when
/// it is not registered), a built-in AWS service named for `region` (the consumer's), or why
/// it cannot point anywhere yet.
pub fn target(binding: &Binding, service: Option<&Service>, region: &str) -> Target {
    if binding.approval == Approval::Rejected as i32 {
        return Target::Refused(format!(
            "rejected by an operator (pld bindings reject); `pld bindings accept {} --vpc {}` \
             lets it connect",
            binding.service, binding.consumer_vpc_id
        ));
    }
    if let Some((name, kind)) = builtin::lookup(&binding.service, region) {
        return Target::Service {
            name,
            kind: Some(kind),
        };
    }
    let Some(s) = service else {
        return Target::Missing(format!(
            "waiting for service {} to be registered (it is not in the catalog)",
            binding.service
        ));
    };
    match s
        .status
        .as_ref()
        .map(|st| st.endpoint_service_name.as_str())
    {
        Some(name) if !name.is_empty() => Target::Service {
            name: name.to_string(),
            kind: None,
        },
        _ => Target::Waiting(format!(
            "waiting for the provider of {} to create its endpoint service",
            binding.service
        )),
    }
}

/// Why `service`'s allowed principals do not name `account`, if they do not. The provider's
/// own account is allowed whatever the list says, which only AWS's description of the service
/// tells: the endpoint planner asks before it refuses.
pub fn unlisted(service: Option<&Service>, account: &str) -> Option<String> {
    let s = service?;
    (!principals_allow(&s.allowed_principals, None, account)).then(|| {
        format!(
            "service {} does not allow account {account} (its allowed principals: {}); its \
             endpoint is removed until it does",
            s.name,
            if s.allowed_principals.is_empty() {
                "none".to_string()
            } else {
                s.allowed_principals.join(", ")
            }
        )
    })
}
