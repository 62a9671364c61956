//! The status report: what a pass found, as the status the catalog should hold, and whether it
//! has to be sent. Every report is a catalog write that wakes every watcher (the reporting
//! agent's own next pass included), so one is sent only when it differs from what the catalog
//! holds; and a status lists the steps still pending only while there is something left to do.
//! A status is cut to the sizes the controller accepts (an AWS error message or a list of
//! endpoint ids can be longer), so a report is never refused for its length and lost.

use pld_proto::v1::{
    AlbFront, BindingMigration, BindingStatus, RetiringEndpointService, ServiceStatus,
};

use crate::aws::types::{Endpoint, EndpointService};
use crate::validate::{
    MAX_PENDING_STEPS, MAX_RETIRING, MAX_STATUS_ARNS, MAX_STATUS_MESSAGE, MAX_TEXT,
};
use crate::Phase;

use super::Step;

/// A binding's status. `pending` are the steps its agent's last plan has still to make (a
/// failure stopped them) or to see confirmed (a Route 53 change not yet in sync): dropped once
/// the binding is ready or rejected, when nothing is left to do.
pub fn binding_status(
    phase: Phase,
    endpoint: Option<&Endpoint>,
    dns_name: &str,
    message: String,
    pending: &[Step],
    migration: Option<BindingMigration>,
) -> BindingStatus {
    let done = matches!(phase, Phase::Ready | Phase::Rejected);
    BindingStatus {
        migration,
        phase: phase.to_string(),
        endpoint_id: endpoint.map(|e| e.id.clone()).unwrap_or_default(),
        dns_name: dns_name.trim_end_matches('.').to_string(),
        addresses: endpoint.map(|e| e.addresses.clone()).unwrap_or_default(),
        message: clip(message, MAX_STATUS_MESSAGE),
        pending: if done { Vec::new() } else { proto(pending) },
    }
}

/// What a provider's pass found of one service.
#[derive(Debug, Clone, Copy)]
pub struct ServiceFound<'a> {
    /// As AWS spells the current endpoint service's state (any case), or `failed`.
    pub state: &'a str,
    /// The endpoint service on the load balancer the service names.
    pub current: Option<&'a EndpointService>,
    /// Endpoint services it moved away from.
    pub retiring: &'a [RetiringFound<'a>],
    pub message: &'a str,
    pub pending: &'a [Step],
    /// For a service on an ALB: the network load balancer pld built in front of it.
    pub alb_front: Option<&'a AlbFront>,
    /// The other regions the service lists.
    pub regions: &'a [String],
}

/// An endpoint service a service moved away from, as a provider's pass found it.
#[derive(Debug, Clone, Copy)]
pub struct RetiringFound<'a> {
    pub endpoint_service: &'a EndpointService,
    /// Consumers still connected or connecting to it.
    pub connections: usize,
    /// When the provider stops waiting for them (0: not known).
    pub grace_ends_unix_ms: u64,
}

/// A provided service's status: `state` in lower case; `pending` as for a binding, dropped
/// once the service is available.
pub fn service_status(found: ServiceFound) -> ServiceStatus {
    let state = found.state.to_ascii_lowercase();
    let done = state == "available" && found.message.is_empty();
    let current = found.current;
    ServiceStatus {
        endpoint_service_name: current.map(|e| e.name.clone()).unwrap_or_default(),
        az_ids: current.map(|e| e.az_ids.clone()).unwrap_or_default(),
        message: clip(found.message.to_string(), MAX_STATUS_MESSAGE),
        pending: if done {
            Vec::new()
        } else {
            proto(found.pending)
        },
        load_balancer_arns: current
            .map(|e| arns(&e.load_balancer_arns))
            .unwrap_or_default(),
        retiring: found
            .retiring
            .iter()
            .take(MAX_RETIRING)
            .map(|r| RetiringEndpointService {
                endpoint_service_name: r.endpoint_service.name.clone(),
                load_balancer_arns: arns(&r.endpoint_service.load_balancer_arns),
                connections: u32::try_from(r.connections).unwrap_or(u32::MAX),
                grace_ends_unix_ms: r.grace_ends_unix_ms,
            })
            .collect(),
        alb_front: found.alb_front.cloned().map(Box::new),
        regions: current
            .map(|e| super::regions::region_states(e, found.regions))
            .unwrap_or_default()
            .into_iter()
            .take(2 * crate::validate::MAX_SERVICE_REGIONS)
            .map(|r| pld_proto::v1::ServiceRegionState {
                region: r.region,
                state: r.state,
            })
            .collect(),
        state,
    }
}

/// The first ARNs a status field takes.
fn arns(arns: &[String]) -> Vec<String> {
    arns.iter()
        .take(MAX_STATUS_ARNS)
        .map(|a| clip(a.clone(), MAX_TEXT))
        .collect()
}

/// The status to send, or `None` when the catalog holds it already.
pub fn to_send<T: PartialEq>(held: Option<&T>, found: T) -> Option<T> {
    (held != Some(&found)).then_some(found)
}

/// The first steps, as many as a report carries, each cut to the sizes it takes.
fn proto(steps: &[Step]) -> Vec<pld_proto::v1::PlannedStep> {
    steps
        .iter()
        .take(MAX_PENDING_STEPS)
        .map(|step| {
            let mut p = step.to_proto();
            p.target = clip(p.target, MAX_TEXT);
            p.reason = clip(p.reason, MAX_STATUS_MESSAGE);
            p
        })
        .collect()
}

/// `text` cut to at most `max` bytes on a character boundary, ending in `…` when cut.
fn clip(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    const MORE: &str = "…";
    let mut end = max - MORE.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MORE}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Action;
    use crate::plan::Reason;

    fn found<'a>(state: &'a str, message: &'a str, pending: &'a [Step]) -> ServiceFound<'a> {
        ServiceFound {
            alb_front: None,
            regions: &[],
            state,
            current: None,
            retiring: &[],
            message,
            pending,
        }
    }

    fn step() -> Step {
        Step {
            action: Action::CreateVpcEndpoint,
            target: "endpoint for com.amazonaws.vpce.us-east-1.vpce-svc-1".into(),
            reason: Reason::Missing,
        }
    }

    #[test]
    fn pending_steps_are_reported_until_nothing_is_left_to_do() {
        let pending = [step()];
        for phase in [Phase::Failed, Phase::Publishing, Phase::Creating] {
            let status = binding_status(phase, None, "", "throttled".into(), &pending, None);
            assert_eq!(status.pending, vec![step().to_proto()], "{phase}");
        }
        for phase in [Phase::Ready, Phase::Rejected] {
            let status = binding_status(
                phase,
                None,
                "billing.pld.internal.",
                String::new(),
                &pending,
                None,
            );
            assert!(status.pending.is_empty(), "{phase}");
            assert_eq!(status.dns_name, "billing.pld.internal");
        }
        let failed = service_status(found("failed", "refused", &pending));
        assert_eq!(failed.pending.len(), 1);
        let available = service_status(found("Available", "", &pending));
        assert_eq!(available.state, "available");
        assert!(available.pending.is_empty());
    }

    #[test]
    fn a_status_too_long_for_the_controller_is_cut_to_fit_not_refused() {
        let endpoints: Vec<String> = (0..40).map(|i| format!("vpce-{i:017x}")).collect();
        let accept = Step {
            action: Action::AcceptVpcEndpointConnections,
            target: format!("{} to vpce-svc-1", endpoints.join(", ")),
            reason: Reason::Decided("é".repeat(MAX_STATUS_MESSAGE)),
        };
        let many = vec![accept; MAX_PENDING_STEPS + 5];
        let message = "ü".repeat(MAX_STATUS_MESSAGE);
        let binding = binding_status(Phase::Failed, None, "", message.clone(), &many, None);
        assert!(crate::validate::binding_status(&binding).is_ok());
        assert_eq!(binding.pending.len(), MAX_PENDING_STEPS);
        assert!(binding.pending[0].target.ends_with('…'));
        assert!(binding.message.starts_with("üü") && binding.message.ends_with('…'));
        let service = service_status(found("failed", &message, &many));
        assert!(crate::validate::service_status(&service).is_ok());
        // Short text is left as it is.
        assert_eq!(clip("throttled".into(), 9), "throttled");
    }

    #[test]
    fn a_moved_service_names_its_load_balancer_and_what_still_serves_the_rest() {
        let es = |id: &str, lb: &str| EndpointService {
            id: id.into(),
            name: format!("com.amazonaws.vpce.us-east-1.{id}"),
            state: "Available".into(),
            acceptance_required: true,
            load_balancer_arns: vec![lb.into()],
            az_ids: vec!["use1-az1".into()],
            supported_regions: Vec::new(),
            tags: Default::default(),
        };
        let new = es("vpce-svc-new", "arn:nlb-b");
        let old = es("vpce-svc-old", "arn:nlb-a");
        let status = service_status(ServiceFound {
            alb_front: None,
            current: Some(&new),
            retiring: &[RetiringFound {
                endpoint_service: &old,
                connections: 2,
                grace_ends_unix_ms: 1_700_000_000_000,
            }],
            ..found("Available", "", &[])
        });
        assert_eq!(status.load_balancer_arns, ["arn:nlb-b"]);
        assert_eq!(
            status.endpoint_service_name,
            "com.amazonaws.vpce.us-east-1.vpce-svc-new"
        );
        assert_eq!(
            status.retiring,
            [RetiringEndpointService {
                endpoint_service_name: "com.amazonaws.vpce.us-east-1.vpce-svc-old".into(),
                load_balancer_arns: vec!["arn:nlb-a".into()],
                connections: 2,
                grace_ends_unix_ms: 1_700_000_000_000,
            }]
        );
        assert!(crate::validate::service_status(&status).is_ok());
    }

    #[test]
    fn a_status_the_catalog_holds_is_not_sent_again() {
        let found = binding_status(Phase::Creating, None, "", String::new(), &[step()], None);
        assert_eq!(to_send(Some(&found), found.clone()), None);
        assert_eq!(to_send(None, found.clone()), Some(found.clone()));
        let older = binding_status(Phase::Creating, None, "", String::new(), &[], None);
        assert_eq!(to_send(Some(&older), found.clone()), Some(found));
    }
}
