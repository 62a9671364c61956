//! A provided service's endpoint service: created on its load balancer when missing, with
//! acceptance required (the agent decides each connection, so `auto` can still refuse a
//! principal the service does not allow); the flag turned back on when someone turned it off;
//! its allowed principals kept equal to the catalog's; and, when the service is gone, its live
//! connections rejected before it is deleted.

use crate::aws::types::{
    same_load_balancer, state_is, Connection, CreateEndpointService, EndpointService, Tags,
};
use crate::aws::Call;

use super::ownership::{client_token, token_params, Owner, TOKEN_ATTEMPTS};
use super::{Planned, Reason};

/// What a service wants of its endpoint service: from the catalog.
#[derive(Debug, Clone, Copy)]
pub struct ServiceWant<'a> {
    pub load_balancer_arn: &'a str,
    /// The other regions it is offered to (the service's `regions`).
    pub regions: &'a [String],
    pub owner: &'a Owner,
    /// Every tag the endpoint service is created with (ownership included).
    pub tags: &'a Tags,
    /// The service's generation, part of the create's client token.
    pub generation: u64,
    /// How many client tokens this pass found spent: the create was answered with the
    /// endpoint service the token made before, deleted since (the service moved off this load
    /// balancer and back). The next create uses the next token.
    pub spent_tokens: u32,
}

/// The writes that make the endpoint service (the one tagged as the service's, if any) what
/// the service wants. Principals are planned apart ([`plan_permissions`]): reading them costs
/// a call per service, so the agent reads them only when the service's principals changed.
///
/// # Errors
/// Why no endpoint service can be created: every client token of the service's generation
/// was answered with an endpoint service deleted since.
pub fn plan_endpoint_service(
    want: &ServiceWant,
    existing: Option<&EndpointService>,
) -> Result<Vec<Planned>, String> {
    let Some(es) = existing else {
        if want.spent_tokens >= TOKEN_ATTEMPTS {
            return Err(format!(
                "the first {TOKEN_ATTEMPTS} client tokens for an endpoint service on {} were \
                 each answered with one deleted since; deregistering and registering the \
                 service again starts a new series",
                want.load_balancer_arn
            ));
        }
        let params = token_params(want.load_balancer_arn, want.spent_tokens);
        let req = CreateEndpointService {
            load_balancer_arn: want.load_balancer_arn.to_string(),
            acceptance_required: true,
            supported_regions: want.regions.to_vec(),
            private_dns_name: None,
            client_token: client_token(want.owner, want.generation, &params),
            tags: want.tags.clone(),
        };
        return Ok(vec![Planned {
            call: Call::CreateEndpointService(req),
            reason: Reason::Missing,
        }]);
    };
    if es.acceptance_required {
        return Ok(Vec::new());
    }
    Ok(vec![Planned {
        call: Call::SetAcceptanceRequired {
            service_id: es.id.clone(),
            required: true,
        },
        reason: Reason::Drift(
            "it accepts connections without asking, so pld could not refuse a principal the \
             service does not allow"
                .into(),
        ),
    }])
}

/// The permission change that makes the principals allowed at AWS (`current`) those the
/// service lists (`wanted`), or `None` when they already are.
pub fn plan_permissions(
    service_id: &str,
    wanted: &[String],
    current: &[String],
) -> Option<Planned> {
    let add: Vec<String> = wanted
        .iter()
        .filter(|p| !current.contains(p))
        .cloned()
        .collect();
    let remove: Vec<String> = current
        .iter()
        .filter(|p| !wanted.contains(p))
        .cloned()
        .collect();
    if add.is_empty() && remove.is_empty() {
        return None;
    }
    let mut what = Vec::new();
    if !add.is_empty() {
        what.push(format!("the service allows {} too", add.join(", ")));
    }
    if !remove.is_empty() {
        what.push(format!("no longer {}", remove.join(", ")));
    }
    Some(Planned {
        call: Call::ModifyServicePermissions {
            service_id: service_id.to_string(),
            add,
            remove,
        },
        reason: Reason::Drift(what.join("; ")),
    })
}

/// A service's endpoint services (those tagged as its): the one on the load balancer the
/// service names, and those it moved away from, which still serve the consumers that have not
/// moved yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sides<'a> {
    pub current: Option<&'a EndpointService>,
    pub retiring: Vec<&'a EndpointService>,
}

/// Splits `owned` by whether it is on `load_balancer_arn`. AWS puts a load balancer behind
/// one endpoint service at most, so at most one is current.
pub fn sides<'a>(load_balancer_arn: &str, owned: &'a [EndpointService]) -> Sides<'a> {
    let mut sides = Sides::default();
    // One deleted is gone, whatever a describe still lists.
    for es in owned.iter().filter(|es| !state_is(&es.state, "deleted")) {
        let on_it = es
            .load_balancer_arns
            .iter()
            .any(|a| same_load_balancer(a, load_balancer_arn));
        if on_it && sides.current.is_none() {
            sides.current = Some(es);
        } else {
            sides.retiring.push(es);
        }
    }
    sides
}

/// The connections that keep an endpoint service in use: consumers connected, or about to be.
pub fn live_connections<'a>(
    es: &EndpointService,
    connections: &'a [Connection],
) -> Vec<&'a Connection> {
    connections
        .iter()
        .filter(|c| c.service_id == es.id)
        .filter(|c| {
            ["available", "pendingAcceptance", "pending"]
                .iter()
                .any(|s| state_is(&c.state, s))
        })
        .collect()
}

/// The delete of an endpoint service its service moved away from, once no consumer connects
/// to it any more: make before break, so a consumer still on it is never cut. `None` while
/// one is (each consumer's agent moves to the new endpoint service and takes its old endpoint
/// down), and for a service already going.
pub fn plan_drained(es: &EndpointService, connections: &[Connection]) -> Option<Planned> {
    let going = ["deleting", "deleted"]
        .iter()
        .any(|s| state_is(&es.state, s));
    if going || !live_connections(es, connections).is_empty() {
        return None;
    }
    Some(Planned {
        call: Call::DeleteEndpointService {
            service_id: es.id.clone(),
        },
        reason: Reason::Unwanted(format!(
            "the service moved off {}, and no consumer connects to it any more",
            es.load_balancer_arns.join(", ")
        )),
    })
}

/// The writes that retire an endpoint service a service moved off once its drain grace period
/// (`grace`) is over with consumers still on it: they are cut, as for a service that is gone,
/// and it is deleted. Bounded, so a consumer whose agent is down does not hold the old load
/// balancer forever.
pub fn plan_grace_over(
    es: &EndpointService,
    connections: &[Connection],
    grace: std::time::Duration,
) -> Vec<Planned> {
    let why = format!(
        "the service moved off {}, and the drain grace period ({} s) is over with consumers \
         still connected",
        es.load_balancer_arns.join(", "),
        grace.as_secs()
    );
    plan_retire(es, connections)
        .into_iter()
        .map(|mut p| {
            p.reason = Reason::Unwanted(why.clone());
            p
        })
        .collect()
}

/// The writes that retire an endpoint service whose service is gone: its live connections
/// rejected (AWS refuses to delete a service with any), then the service deleted.
pub fn plan_retire(es: &EndpointService, connections: &[Connection]) -> Vec<Planned> {
    let live: Vec<String> = live_connections(es, connections)
        .into_iter()
        .map(|c| c.endpoint_id.clone())
        .collect();
    let mut writes = Vec::new();
    if !live.is_empty() {
        writes.push(Planned {
            call: Call::RejectConnections {
                service_id: es.id.clone(),
                endpoint_ids: live,
            },
            reason: Reason::Unwanted(
                "their service is gone, and AWS deletes no endpoint service with live \
                 connections"
                    .into(),
            ),
        });
    }
    writes.push(Planned {
        call: Call::DeleteEndpointService {
            service_id: es.id.clone(),
        },
        reason: Reason::Orphan,
    });
    writes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ownership::Ownership;

    fn es(acceptance_required: bool) -> EndpointService {
        EndpointService {
            id: "vpce-svc-1".into(),
            name: "com.amazonaws.vpce.us-east-1.vpce-svc-1".into(),
            state: "Available".into(),
            acceptance_required,
            load_balancer_arns: vec!["arn:nlb".into()],
            az_ids: vec!["use1-az1".into()],
            supported_regions: Vec::new(),
            tags: Tags::new(),
        }
    }

    fn steps(writes: &[Planned]) -> Vec<String> {
        writes.iter().map(|w| w.step().to_string()).collect()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_missing_endpoint_service_is_created_requiring_acceptance() {
        let own = Ownership::new("pld-test", "vpc-p");
        let owner = own.service("billing");
        let tags = own.tags(&owner);
        let want = ServiceWant {
            load_balancer_arn: "arn:nlb",
            regions: &[],
            owner: &owner,
            tags: &tags,
            generation: 3,
            spent_tokens: 0,
        };
        fn plan(want: &ServiceWant, existing: Option<&EndpointService>) -> Vec<Planned> {
            plan_endpoint_service(want, existing).expect("a token left")
        }
        let writes = plan(&want, None);
        assert_eq!(
            steps(&writes),
            ["CreateVpcEndpointServiceConfiguration endpoint service on arn:nlb: missing"]
        );
        let Call::CreateEndpointService(req) = &writes[0].call else {
            panic!("not a create");
        };
        assert!(req.acceptance_required);
        assert_eq!(req.tags, tags);
        // A retry after a crash sends the same token; a new generation another, and so does
        // a token spent on an endpoint service deleted since.
        assert_eq!(writes, plan(&want, None));
        let again = ServiceWant {
            generation: 4,
            ..want
        };
        assert_ne!(writes, plan(&again, None));
        let next = ServiceWant {
            spent_tokens: 1,
            ..want
        };
        assert_ne!(writes, plan(&next, None));
        let spent = ServiceWant {
            spent_tokens: TOKEN_ATTEMPTS,
            ..want
        };
        let refused = plan_endpoint_service(&spent, None).expect_err("every token spent");
        assert!(
            refused.contains("registering the service again"),
            "{refused}"
        );
        // Created, as it should be: nothing to do. Acceptance turned off: turned on again.
        assert!(plan(&want, Some(&es(true))).is_empty());
        assert_eq!(
            plan(&want, Some(&es(false)))[0].call,
            Call::SetAcceptanceRequired {
                service_id: "vpce-svc-1".into(),
                required: true
            }
        );
    }

    #[test]
    fn permissions_are_changed_by_the_difference_only() {
        let wanted = strings(&[
            "arn:aws:iam::222222222222:root",
            "arn:aws:iam::333333333333:root",
        ]);
        assert_eq!(plan_permissions("vpce-svc-1", &wanted, &wanted), None);
        let current = strings(&[
            "arn:aws:iam::222222222222:root",
            "arn:aws:iam::444444444444:root",
        ]);
        let change = plan_permissions("vpce-svc-1", &wanted, &current).expect("a change");
        assert_eq!(
            change.call,
            Call::ModifyServicePermissions {
                service_id: "vpce-svc-1".into(),
                add: strings(&["arn:aws:iam::333333333333:root"]),
                remove: strings(&["arn:aws:iam::444444444444:root"]),
            }
        );
        assert_eq!(
            change.reason.to_string(),
            "differs: the service allows arn:aws:iam::333333333333:root too; no longer \
             arn:aws:iam::444444444444:root"
        );
    }

    fn on(id: &str, lb: &str) -> EndpointService {
        EndpointService {
            id: id.into(),
            load_balancer_arns: vec![lb.into()],
            ..es(true)
        }
    }

    fn conn(endpoint: &str, service: &str, state: &str) -> Connection {
        Connection {
            service_id: service.into(),
            endpoint_id: endpoint.into(),
            owner: "222222222222".into(),
            state: state.into(),
        }
    }

    #[test]
    fn a_service_on_another_load_balancer_keeps_the_old_endpoint_service_until_it_drains() {
        let owned = [
            on("vpce-svc-old", "arn:nlb-a"),
            on("vpce-svc-new", "arn:nlb-b"),
        ];
        let split = sides("arn:nlb-b", &owned);
        assert_eq!(split.current.map(|e| e.id.as_str()), Some("vpce-svc-new"));
        assert_eq!(
            split
                .retiring
                .iter()
                .map(|e| e.id.as_str())
                .collect::<Vec<_>>(),
            ["vpce-svc-old"]
        );
        // One deleted is gone, even if a describe still lists it.
        let deleted = EndpointService {
            state: "Deleted".into(),
            ..on("vpce-svc-gone", "arn:nlb-b")
        };
        let listed = [deleted, owned[0].clone()];
        let split = sides("arn:nlb-b", &listed);
        assert_eq!(split.current, None);
        assert_eq!(split.retiring.len(), 1);
        // Nothing on the new load balancer yet: it is created, the old one kept.
        let before = sides("arn:nlb-c", &owned);
        assert_eq!(before.current, None);
        assert_eq!(before.retiring.len(), 2);

        let old = &owned[0];
        // A consumer still connected, or about to be: the old one stays.
        for state in ["available", "pendingAcceptance", "pending"] {
            let connections = [conn("vpce-a", "vpce-svc-old", state)];
            assert_eq!(plan_drained(old, &connections), None, "{state}");
        }
        // Every consumer moved (their old endpoints gone or rejected): deleted, saying why.
        let connections = [
            conn("vpce-a", "vpce-svc-old", "rejected"),
            conn("vpce-b", "vpce-svc-new", "available"),
        ];
        let delete = plan_drained(old, &connections).expect("drained");
        assert_eq!(
            delete.step().to_string(),
            "DeleteVpcEndpointServiceConfigurations vpce-svc-old: no longer wanted: the service \
             moved off arn:nlb-a, and no consumer connects to it any more"
        );
        // Already going: not deleted again.
        let going = EndpointService {
            state: "Deleting".into(),
            ..old.clone()
        };
        assert_eq!(plan_drained(&going, &[]), None);
    }

    #[test]
    fn a_drain_grace_period_over_cuts_the_consumers_left_and_deletes() {
        let old = on("vpce-svc-old", "arn:nlb-a");
        let connections = [
            conn("vpce-a", "vpce-svc-old", "available"),
            conn("vpce-b", "vpce-svc-new", "available"),
        ];
        let steps: Vec<String> =
            plan_grace_over(&old, &connections, std::time::Duration::from_secs(3600))
                .iter()
                .map(|p| p.step().to_string())
                .collect();
        let why = "no longer wanted: the service moved off arn:nlb-a, and the drain grace \
                   period (3600 s) is over with consumers still connected";
        assert_eq!(
            steps,
            [
                format!("RejectVpcEndpointConnections vpce-a to vpce-svc-old: {why}"),
                format!("DeleteVpcEndpointServiceConfigurations vpce-svc-old: {why}"),
            ]
        );
    }

    #[test]
    fn a_retired_service_rejects_its_live_connections_before_it_is_deleted() {
        let connections = [
            conn("vpce-a", "vpce-svc-1", "available"),
            conn("vpce-b", "vpce-svc-1", "pendingAcceptance"),
            conn("vpce-c", "vpce-svc-1", "rejected"),
            conn("vpce-d", "vpce-svc-2", "available"),
        ];
        assert_eq!(
            steps(&plan_retire(&es(true), &connections))
                .iter()
                .map(|s| s.split(':').next().unwrap_or_default())
                .collect::<Vec<_>>(),
            [
                "RejectVpcEndpointConnections vpce-a, vpce-b to vpce-svc-1",
                "DeleteVpcEndpointServiceConfigurations vpce-svc-1"
            ]
        );
        // A crash after the rejection: the next plan only deletes.
        let rejected = [conn("vpce-a", "vpce-svc-1", "rejected")];
        assert_eq!(plan_retire(&es(true), &rejected).len(), 1);
    }
}
