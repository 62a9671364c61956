//! The executor: makes a plan's calls in order, through the agent's cloud (the rate limiter
//! wraps it, and the AWS SDK's retries are the one retry layer), and stops at the first that
//! fails. Calls not made are not queued: the next pass observes again and plans afresh, so a
//! crash or an error after any call is just another state the planners start from. Each kind
//! of call has its crash point, where the failpoint tests stop the agent dead.

use pld_cloud::{CloudError, Endpoint, EndpointService, HostedZone};
use pld_core::aws::Call;
use pld_core::plan::Planned;
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
    /// The call that failed and its error; the calls after it were not made.
    pub failed: Option<(Planned, CloudError)>,
}

impl Reconciler {
    /// Makes `writes`' calls in order until one fails. A delete of something already gone
    /// counts as done: it is gone either way.
    pub(super) async fn execute(&self, writes: &[Planned]) -> Executed {
        let mut done = Executed::default();
        for write in writes {
            if let Err(e) = self.call(write, &mut done).await {
                done.failed = Some((write.clone(), e));
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
                self.cloud
                    .reject_connections(service_id, endpoint_ids)
                    .await?;
                info!(%step, "rejected connections");
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
        }
        Ok(())
    }
}
