//! An AWS write as a value: the operation ([`Action`]) with the arguments it is called with.
//! Planners return calls and the agent's executor makes them, so what a plan would do can be
//! shown, compared in tests and carried to `pld plan` before anything is sent.

use std::fmt;

use super::types::{
    CreateEndpoint, CreateEndpointService, CreateListener, CreateLoadBalancer, CreateTargetGroup,
    HealthCheck, Tags,
};
use super::Action;

/// One AWS write, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// CreateVpcEndpoint.
    CreateEndpoint(CreateEndpoint),
    /// ModifyVpcEndpoint, moving an endpoint between subnets.
    ModifyEndpointSubnets {
        id: String,
        add: Vec<String>,
        remove: Vec<String>,
    },
    /// DeleteVpcEndpoints, one endpoint (NotFound counts as done: it is gone either way).
    DeleteEndpoint { id: String },
    /// CreateVpcEndpointServiceConfiguration.
    CreateEndpointService(CreateEndpointService),
    /// ModifyVpcEndpointServiceConfiguration of the acceptance flag.
    SetAcceptanceRequired { service_id: String, required: bool },
    /// ModifyVpcEndpointServiceConfiguration of the regions offered (Add/RemoveSupportedRegions).
    ModifySupportedRegions {
        service_id: String,
        add: Vec<String>,
        remove: Vec<String>,
    },
    /// ModifyVpcEndpointServicePermissions: principals allowed and no longer allowed.
    ModifyServicePermissions {
        service_id: String,
        add: Vec<String>,
        remove: Vec<String>,
    },
    /// AcceptVpcEndpointConnections, several endpoints of one service in one call.
    AcceptConnections {
        service_id: String,
        endpoint_ids: Vec<String>,
    },
    /// RejectVpcEndpointConnections, likewise.
    RejectConnections {
        service_id: String,
        endpoint_ids: Vec<String>,
    },
    /// DeleteVpcEndpointServiceConfigurations, one service (NotFound counts as done).
    DeleteEndpointService { service_id: String },
    /// CreateHostedZone: a private zone, made associated with `vpc_id`.
    CreateHostedZone {
        /// With the trailing dot.
        name: String,
        vpc_id: String,
        /// Route 53 takes each reference once: a create retried is refused, not doubled.
        caller_reference: String,
        comment: String,
    },
    /// AssociateVPCWithHostedZone.
    AssociateVpc { zone_id: String, vpc_id: String },
    /// ChangeTagsForResource of a hosted zone, adding `tags`.
    TagHostedZone { zone_id: String, tags: Tags },
    /// DeleteHostedZone (NotFound counts as done).
    DeleteHostedZone { zone_id: String },
    /// CreateLoadBalancer: the NLB in front of an ALB.
    CreateLoadBalancer(CreateLoadBalancer),
    /// CreateTargetGroup: an `alb` group for one port.
    CreateTargetGroup(CreateTargetGroup),
    /// ModifyTargetGroup of a group's health check.
    ModifyTargetGroupHealth {
        arn: String,
        health_check: HealthCheck,
    },
    /// RegisterTargets: the ALB in its group.
    RegisterTargets {
        target_group_arn: String,
        target_ids: Vec<String>,
    },
    /// CreateListener: a TCP listener forwarding one port to its group.
    CreateListener(CreateListener),
    /// DeleteListener (NotFound counts as done).
    DeleteListener { arn: String },
    /// DeleteTargetGroup (NotFound counts as done).
    DeleteTargetGroup { arn: String },
    /// DeleteLoadBalancer (a load balancer that is gone counts as done).
    DeleteLoadBalancer { arn: String },
}

impl Call {
    /// The AWS operation the call makes.
    pub fn action(&self) -> Action {
        match self {
            Call::CreateEndpoint(_) => Action::CreateVpcEndpoint,
            Call::ModifyEndpointSubnets { .. } => Action::ModifyVpcEndpoint,
            Call::DeleteEndpoint { .. } => Action::DeleteVpcEndpoints,
            Call::CreateEndpointService(_) => Action::CreateVpcEndpointServiceConfiguration,
            Call::SetAcceptanceRequired { .. } | Call::ModifySupportedRegions { .. } => {
                Action::ModifyVpcEndpointServiceConfiguration
            }
            Call::ModifyServicePermissions { .. } => Action::ModifyVpcEndpointServicePermissions,
            Call::AcceptConnections { .. } => Action::AcceptVpcEndpointConnections,
            Call::RejectConnections { .. } => Action::RejectVpcEndpointConnections,
            Call::DeleteEndpointService { .. } => Action::DeleteVpcEndpointServiceConfigurations,
            Call::CreateHostedZone { .. } => Action::CreateHostedZone,
            Call::AssociateVpc { .. } => Action::AssociateVPCWithHostedZone,
            Call::TagHostedZone { .. } => Action::ChangeTagsForResource,
            Call::DeleteHostedZone { .. } => Action::DeleteHostedZone,
            Call::CreateLoadBalancer(_) => Action::CreateLoadBalancer,
            Call::CreateTargetGroup(_) => Action::CreateTargetGroup,
            Call::ModifyTargetGroupHealth { .. } => Action::ModifyTargetGroup,
            Call::RegisterTargets { .. } => Action::RegisterTargets,
            Call::CreateListener(_) => Action::CreateListener,
            Call::DeleteListener { .. } => Action::DeleteListener,
            Call::DeleteTargetGroup { .. } => Action::DeleteTargetGroup,
            Call::DeleteLoadBalancer { .. } => Action::DeleteLoadBalancer,
        }
    }

    /// What the call acts on, as a person would name it: the resource's id, or for a create
    /// the service the new resource is for.
    pub fn target(&self) -> String {
        match self {
            Call::CreateEndpoint(req) => format!("endpoint for {}", req.service_name),
            Call::ModifyEndpointSubnets { id, .. } | Call::DeleteEndpoint { id } => id.clone(),
            Call::CreateEndpointService(req) => {
                format!("endpoint service on {}", req.load_balancer_arn)
            }
            Call::SetAcceptanceRequired { service_id, .. }
            | Call::ModifySupportedRegions { service_id, .. }
            | Call::ModifyServicePermissions { service_id, .. }
            | Call::DeleteEndpointService { service_id } => service_id.clone(),
            Call::AcceptConnections {
                service_id,
                endpoint_ids,
            }
            | Call::RejectConnections {
                service_id,
                endpoint_ids,
            } => format!("{} to {service_id}", endpoint_ids.join(", ")),
            Call::CreateHostedZone { name, vpc_id, .. } => format!("zone {name} in {vpc_id}"),
            Call::AssociateVpc { zone_id, vpc_id } => format!("{vpc_id} with {zone_id}"),
            Call::TagHostedZone { zone_id, .. } | Call::DeleteHostedZone { zone_id } => {
                zone_id.clone()
            }
            Call::CreateLoadBalancer(req) => format!("network load balancer {}", req.name),
            Call::CreateTargetGroup(req) => format!("target group {}", req.name),
            Call::RegisterTargets {
                target_group_arn,
                target_ids,
            } => format!("{} in {target_group_arn}", target_ids.join(", ")),
            Call::CreateListener(req) => {
                format!("port {} of {}", req.port, req.load_balancer_arn)
            }
            Call::ModifyTargetGroupHealth { arn, .. }
            | Call::DeleteListener { arn }
            | Call::DeleteTargetGroup { arn }
            | Call::DeleteLoadBalancer { arn } => arn.clone(),
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.action(), self.target())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::types::EndpointKind;

    #[test]
    fn each_call_names_its_operation_and_target() {
        let create = Call::CreateEndpoint(CreateEndpoint {
            kind: EndpointKind::Interface,
            vpc_id: "vpc-1".into(),
            service_name: "com.amazonaws.vpce.us-east-1.vpce-svc-1".into(),
            service_region: None,
            subnet_ids: vec![],
            security_group_ids: vec![],
            route_table_ids: vec![],
            client_token: String::new(),
            tags: Default::default(),
        });
        assert_eq!(
            create.to_string(),
            "CreateVpcEndpoint endpoint for com.amazonaws.vpce.us-east-1.vpce-svc-1"
        );
        let modify = Call::ModifyEndpointSubnets {
            id: "vpce-1".into(),
            add: vec!["subnet-b".into()],
            remove: vec!["subnet-a".into()],
        };
        assert_eq!(modify.to_string(), "ModifyVpcEndpoint vpce-1");
        assert_eq!(
            Call::DeleteEndpoint {
                id: "vpce-1".into()
            }
            .action(),
            Action::DeleteVpcEndpoints
        );
        let zone = Call::CreateHostedZone {
            name: "pld.internal.".into(),
            vpc_id: "vpc-1".into(),
            caller_reference: "pld/blue/vpc-1/7".into(),
            comment: String::new(),
        };
        assert_eq!(
            zone.to_string(),
            "CreateHostedZone zone pld.internal. in vpc-1"
        );
        let associate = Call::AssociateVpc {
            zone_id: "Z1".into(),
            vpc_id: "vpc-1".into(),
        };
        assert_eq!(
            associate.to_string(),
            "AssociateVPCWithHostedZone vpc-1 with Z1"
        );
    }
}
