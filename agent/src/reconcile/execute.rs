//! The executor: makes a plan's calls in order, through the agent's cloud (the rate limiter
//! wraps it, and the AWS SDK's retries are the one retry layer), and stops at the first that
//! fails. Calls not made are not queued: the next pass observes again and plans afresh, so a
//! crash or an error after any call is just another state the planners start from. Each kind
//! of call has its crash point, where the failpoint tests stop the agent dead.

use pld_cloud::{CloudError, Endpoint, EndpointService, HostedZone};
use pld_core::aws::Call;
use pld_core::plan::front::Made;
use pld_core::plan::{Planned, Step};
use tracing::info;

use super::Reconciler;
use crate::crash_points::crash_point;

/// What a plan's execution did.
#[derive(Debug, Default)]
pub(super) struct Executed {
    /// The endpoint a CreateVpcEndpoint returned.
    pub created: Option<Endpoint>,
    /// The endpoint service a CreateVpcEndpointServiceConfiguration returned.
    pub created_service: Option<EndpointService>,
    /// The hosted zone a CreateHostedZone returned.
    pub created_zone: Option<HostedZone>,
    /// What the writes to a front made, as AWS answered them.
    pub front_made: Vec<Made>,
    /// The call that failed and its error; the calls after it were not made.
    pub failed: Option<(Planned, CloudError)>,
    /// The steps a failure stopped: the one that failed and those after it, which a status
    /// report lists as pending until a pass makes them.
    pub unmade: Vec<Step>,
}

impl Reconciler {
    /// Makes `writes`' calls in order until one fails. A delete of something already gone
    /// counts as done: it is gone either way.
    pub(super) async fn execute(&self, writes: &[Planned]) -> Executed {
        let mut done = Executed::default();
        for (i, write) in writes.iter().enumerate() {
            if let Err(e) = self.call(write, &mut done).await {
                done.failed = Some((write.clone(), e));
                done.unmade = writes[i..].iter().map(Planned::step).collect();
                break;
            }
        }
        done
    }

    async fn call(&self, write: &Planned, done: &mut Executed) -> Result<(), CloudError> {
        let step = write.step();
        match &write.call {
            Call::CreateEndpoint(req) => {
                let ep = self.cloud.create_endpoint(req).await?;
                crash_point!("consumer-endpoint-created");
                info!(%step, id = %ep.id, "created endpoint");
                self.memory().facts_stale = true;
                done.created = Some(ep);
            }
            Call::ModifyEndpointSubnets { id, add, remove } => {
                self.cloud.modify_endpoint_subnets(id, add, remove).await?;
                info!(%step, ?add, ?remove, "moved endpoint to the configured subnets");
            }
            Call::DeleteEndpoint { id } => match self.cloud.delete_endpoint(id).await {
                Ok(()) => {
                    crash_point!("consumer-endpoint-deleted");
                    info!(%step, "deleted endpoint");
                    self.memory().facts_stale = true;
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            },
            Call::CreateEndpointService(req) => {
                let es = self.cloud.create_endpoint_service(req).await?;
                crash_point!("provider-service-created");
                info!(%step, id = %es.id, "created endpoint service");
                done.created_service = Some(es);
            }
            Call::SetAcceptanceRequired {
                service_id,
                required,
            } => {
                self.cloud
                    .set_acceptance_required(service_id, *required)
                    .await?;
                info!(%step, "set acceptance");
            }
            Call::ModifySupportedRegions {
                service_id,
                add,
                remove,
            } => {
                self.cloud
                    .modify_supported_regions(service_id, add, remove)
                    .await?;
                info!(%step, ?add, ?remove, "changed the regions offered");
            }
            Call::ModifyServicePermissions {
                service_id,
                add,
                remove,
            } => {
                self.cloud
                    .modify_allowed_principals(service_id, add, remove)
                    .await?;
                info!(%step, "changed allowed principals");
            }
            Call::AcceptConnections {
                service_id,
                endpoint_ids,
            } => {
                self.cloud
                    .accept_connections(service_id, endpoint_ids)
                    .await?;
                crash_point!("provider-connections-accepted");
                info!(%step, "accepted connections");
            }
            Call::RejectConnections {
                service_id,
                endpoint_ids,
            } => {
                match self
                    .cloud
                    .reject_connections(service_id, endpoint_ids)
                    .await
                {
                    Ok(()) => info!(%step, "rejected connections"),
                    // An endpoint deleted since it was listed (its consumer took it down on
                    // seeing the same refusal): it connects to nothing either way.
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
            Call::DeleteEndpointService { service_id } => {
                crash_point!("provider-service-deleting");
                match self.cloud.delete_endpoint_service(service_id).await {
                    Ok(()) => info!(%step, "deleted endpoint service"),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
            Call::CreateHostedZone {
                name,
                vpc_id,
                caller_reference,
                comment,
            } => {
                let zone = self
                    .cloud
                    .create_hosted_zone(name, vpc_id, caller_reference, comment)
                    .await?;
                crash_point!("consumer-zone-created");
                info!(%step, id = %zone.id, "created private hosted zone");
                done.created_zone = Some(zone);
            }
            Call::AssociateVpc { zone_id, vpc_id } => {
                self.cloud.associate_vpc(zone_id, vpc_id).await?;
                info!(%step, "associated the VPC with the hosted zone");
            }
            Call::TagHostedZone { zone_id, tags } => {
                self.cloud.tag_hosted_zone(zone_id, tags).await?;
                info!(%step, "tagged the hosted zone as pld's");
            }
            Call::DeleteHostedZone { zone_id } => {
                match self.cloud.delete_hosted_zone(zone_id).await {
                    Ok(()) => info!(%step, "deleted private hosted zone"),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
            Call::CreateLoadBalancer(req) => {
                let lb = self.cloud.create_load_balancer(req).await?;
                crash_point!("provider-front-load-balancer-created");
                info!(%step, arn = %lb.arn, "created network load balancer");
                done.front_made.push(Made::LoadBalancer(lb));
            }
            Call::CreateTargetGroup(req) => {
                let group = self.cloud.create_target_group(req).await?;
                crash_point!("provider-front-target-group-created");
                info!(%step, arn = %group.arn, "created target group");
                done.front_made.push(Made::Group(group));
            }
            Call::ModifyTargetGroupHealth { arn, health_check } => {
                let group = self
                    .cloud
                    .modify_target_group_health(arn, health_check)
                    .await?;
                info!(%step, "changed the target group's health check");
                done.front_made.push(Made::HealthChanged(group));
            }
            Call::RegisterTargets {
                target_group_arn,
                target_ids,
            } => {
                self.cloud
                    .register_targets(target_group_arn, target_ids)
                    .await?;
                crash_point!("provider-front-targets-registered");
                info!(%step, "registered the ALB");
                done.front_made.push(Made::Registered {
                    target_group_arn: target_group_arn.clone(),
                    target_ids: target_ids.clone(),
                });
            }
            Call::CreateListener(req) => {
                let listener = self.cloud.create_listener(req).await?;
                crash_point!("provider-front-listener-created");
                info!(%step, arn = %listener.arn, "created listener");
                done.front_made.push(Made::Listener(listener));
            }
            Call::DeleteListener { arn } => {
                match self.cloud.delete_listener(arn).await {
                    Ok(()) => {
                        crash_point!("provider-front-listener-deleted");
                        info!(%step, "deleted listener");
                    }
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
                done.front_made.push(Made::ListenerDeleted(arn.clone()));
            }
            Call::DeleteTargetGroup { arn } => {
                match self.cloud.delete_target_group(arn).await {
                    Ok(()) => {
                        crash_point!("provider-front-target-group-deleted");
                        info!(%step, "deleted target group");
                    }
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
                done.front_made.push(Made::GroupDeleted(arn.clone()));
            }
            // Gone counts as done (DeleteLoadBalancer succeeds for a load balancer that is).
            Call::DeleteLoadBalancer { arn } => {
                self.cloud.delete_load_balancer(arn).await?;
                info!(%step, "deleted network load balancer");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use pld_client::Client;
    use pld_cloud::sim::{SimConfig, SimRegion};
    use pld_cloud::{Action, Cloud};
    use pld_core::plan::Reason;
    use pld_telemetry::Metrics;

    use super::*;
    use crate::config::AgentConfig;
    use crate::metrics::AgentMetrics;
    use crate::view::CatalogView;

    const ACCOUNT: &str = "111111111111";

    fn planned(call: Call) -> Planned {
        Planned {
            call,
            reason: Reason::Missing,
        }
    }

    /// A reconciler on `region` whose controller is never called (the executor reports
    /// nothing).
    fn reconciler(
        region: &Arc<SimRegion>,
        vpc_id: &str,
    ) -> Result<Reconciler, Box<dyn std::error::Error>> {
        let controllers = vec!["127.0.0.1:9".to_string()];
        let cfg = AgentConfig::simulated(ACCOUNT, "us-east-1", vpc_id, controllers, "pld.test");
        Ok(Reconciler::new(
            Arc::new(cfg),
            "blue",
            Arc::new(region.client(ACCOUNT)),
            Client::new(&["127.0.0.1:9".to_string()])?,
            CatalogView::new(),
            AgentMetrics::new(&Metrics::new(), Duration::from_secs(60), false),
        ))
    }

    #[tokio::test]
    async fn calls_are_made_in_order_until_one_fails_and_those_after_it_are_not(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let region = SimRegion::new(SimConfig::instant("us-east-1"));
        let vpc = region.add_vpc(ACCOUNT, "10.0.0.0/16");
        let other = region.add_vpc(ACCOUNT, "10.1.0.0/16");
        let r = reconciler(&region, &vpc.id)?;
        let create = planned(Call::CreateHostedZone {
            name: "pld.test.".into(),
            vpc_id: vpc.id.clone(),
            caller_reference: "pld/blue/test/1".into(),
            comment: String::new(),
        });
        let done = r.execute(std::slice::from_ref(&create)).await;
        let zone = done.created_zone.expect("the create returns its zone");
        assert!(done.failed.is_none() && done.unmade.is_empty());

        // The agent's role may not associate zones: the tag after the association is not made.
        region.deny(ACCOUNT, Action::AssociateVPCWithHostedZone, true);
        let writes = [
            // Already gone counts as done, and the plan goes on.
            planned(Call::DeleteHostedZone {
                zone_id: "Z0000000000000000GONE".into(),
            }),
            planned(Call::AssociateVpc {
                zone_id: zone.id.clone(),
                vpc_id: other.id.clone(),
            }),
            planned(Call::TagHostedZone {
                zone_id: zone.id.clone(),
                tags: r.own.mine(),
            }),
        ];
        let done = r.execute(&writes).await;
        let (failed, error) = done.failed.expect("the association fails");
        assert_eq!(failed, writes[1]);
        assert!(matches!(error, CloudError::Unauthorized(_)), "{error}");
        assert_eq!(done.unmade, vec![writes[1].step(), writes[2].step()]);
        let cloud = region.client(ACCOUNT);
        assert!(cloud.hosted_zone_tags(&zone.id).await?.is_empty());
        assert_eq!(cloud.get_hosted_zone(&zone.id).await?.vpc_ids, vec![vpc.id]);
        Ok(())
    }
}
