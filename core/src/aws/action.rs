//! Every AWS operation pld calls, spelled once.

/// The AWS service an operation belongs to: its IAM prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AwsService {
    Ec2,
    ElasticLoadBalancing,
    Route53,
    ServiceQuotas,
    /// AWS PrivateLink's own prefix: permission-only actions, no operations.
    Vpce,
}

impl AwsService {
    /// The service prefix of IAM action names.
    pub fn iam_prefix(self) -> &'static str {
        match self {
            AwsService::Ec2 => "ec2",
            AwsService::ElasticLoadBalancing => "elasticloadbalancing",
            AwsService::Route53 => "route53",
            AwsService::ServiceQuotas => "servicequotas",
            AwsService::Vpce => "vpce",
        }
    }
}

/// API classes with their own token bucket: EC2 throttles per account and region with a
/// bucket per class (EC2 API reference, "Request throttling"), Route 53 per account
/// (Route 53 developer guide, "Quotas on API requests").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApiClass {
    /// CreateVpcEndpoint, ModifyVpcEndpoint, DeleteVpcEndpoints: 4 burst, 0.3/s.
    EndpointMutation,
    /// Endpoint service create/modify/delete, accept/reject connections: 10 burst, 1/s.
    ServiceMutation,
    /// Other mutating EC2 calls: 50 burst, 5/s.
    OtherMutation,
    /// Describe*: 100 burst, 20/s.
    Describe,
    /// Every Route 53 call: 50 burst, 10/s.
    Route53,
    /// ELBv2 Describe*: 40 burst, 10/s (Elastic Load Balancing user guide, "Request throttling
    /// for the Elastic Load Balancing API": ELBv2 has buckets of its own, apart from EC2's).
    ElbDescribe,
    /// ELBv2 creates, deletes and registrations. The same page publishes their figures per
    /// action, which could not be read where this was written: 10 burst, 2/s is a deliberately
    /// low assumption, so the limiter is not kinder than AWS; replace it with the published
    /// figures when they are at hand.
    ElbMutation,
    /// Service Quotas reads. Its API reference publishes no per-operation rate where this was
    /// written: 5 burst, 1/s is a deliberately low assumption (an agent reads one quota per
    /// resync), so the limiter is not kinder than AWS.
    ServiceQuotas,
}

impl ApiClass {
    /// The class's name, for metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            ApiClass::EndpointMutation => "endpoint_mutation",
            ApiClass::ServiceMutation => "service_mutation",
            ApiClass::OtherMutation => "other_mutation",
            ApiClass::Describe => "describe",
            ApiClass::Route53 => "route53",
            ApiClass::ElbDescribe => "elb_describe",
            ApiClass::ElbMutation => "elb_mutation",
            ApiClass::ServiceQuotas => "service_quotas",
        }
    }

    /// (burst, refill per second) as AWS publishes them.
    pub fn aws_rate(self) -> (f64, f64) {
        match self {
            ApiClass::EndpointMutation => (4.0, 0.3),
            ApiClass::ServiceMutation => (10.0, 1.0),
            ApiClass::OtherMutation => (50.0, 5.0),
            ApiClass::Describe => (100.0, 20.0),
            ApiClass::Route53 => (50.0, 10.0),
            ApiClass::ElbDescribe => (40.0, 10.0),
            ApiClass::ElbMutation => (10.0, 2.0),
            ApiClass::ServiceQuotas => (5.0, 1.0),
        }
    }
}

/// Declares [`Action`] from one table: variant, service, rate class. The variant's name is
/// the operation's name in the API reference and in IAM.
macro_rules! actions {
    ($($variant:ident: $service:ident, $class:ident;)+) => {
        /// An AWS operation pld calls.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action {
            $($variant,)+
        }

        impl Action {
            /// Every operation pld calls.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)+];

            /// The operation's name, as the API reference and error messages spell it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Action::$variant => stringify!($variant),)+
                }
            }

            /// The service the operation belongs to.
            pub fn service(self) -> AwsService {
                match self {
                    $(Action::$variant => AwsService::$service,)+
                }
            }

            /// The token bucket the operation draws from.
            pub fn bucket(self) -> ApiClass {
                match self {
                    $(Action::$variant => ApiClass::$class,)+
                }
            }
        }
    };
}

actions! {
    // EC2: the network an agent works in.
    DescribeVpcs: Ec2, Describe;
    DescribeSubnets: Ec2, Describe;
    DescribeRouteTables: Ec2, Describe;
    DescribeAvailabilityZones: Ec2, Describe;
    DescribeNetworkInterfaces: Ec2, Describe;
    // ELBv2: the load balancers behind endpoint services, and the network load balancer
    // pld builds in front of an application load balancer.
    DescribeLoadBalancers: ElasticLoadBalancing, ElbDescribe;
    DescribeListeners: ElasticLoadBalancing, ElbDescribe;
    DescribeTags: ElasticLoadBalancing, ElbDescribe;
    DescribeTargetGroups: ElasticLoadBalancing, ElbDescribe;
    DescribeTargetHealth: ElasticLoadBalancing, ElbDescribe;
    CreateLoadBalancer: ElasticLoadBalancing, ElbMutation;
    DeleteLoadBalancer: ElasticLoadBalancing, ElbMutation;
    CreateTargetGroup: ElasticLoadBalancing, ElbMutation;
    ModifyTargetGroup: ElasticLoadBalancing, ElbMutation;
    DeleteTargetGroup: ElasticLoadBalancing, ElbMutation;
    RegisterTargets: ElasticLoadBalancing, ElbMutation;
    CreateListener: ElasticLoadBalancing, ElbMutation;
    DeleteListener: ElasticLoadBalancing, ElbMutation;
    // EC2: the provider's endpoint services, permissions and connections.
    CreateVpcEndpointServiceConfiguration: Ec2, ServiceMutation;
    DescribeVpcEndpointServiceConfigurations: Ec2, Describe;
    ModifyVpcEndpointServiceConfiguration: Ec2, ServiceMutation;
    DescribeVpcEndpointServicePermissions: Ec2, Describe;
    ModifyVpcEndpointServicePermissions: Ec2, OtherMutation;
    DeleteVpcEndpointServiceConfigurations: Ec2, ServiceMutation;
    DescribeVpcEndpointConnections: Ec2, Describe;
    AcceptVpcEndpointConnections: Ec2, ServiceMutation;
    RejectVpcEndpointConnections: Ec2, ServiceMutation;
    // EC2: the consumer's view of services, and its endpoints.
    DescribeVpcEndpointServices: Ec2, Describe;
    CreateVpcEndpoint: Ec2, EndpointMutation;
    ModifyVpcEndpoint: Ec2, EndpointMutation;
    DescribeVpcEndpoints: Ec2, Describe;
    DeleteVpcEndpoints: Ec2, EndpointMutation;
    // Route 53: private hosted zones and their records.
    ListHostedZonesByVPC: Route53, Route53;
    ListHostedZonesByName: Route53, Route53;
    GetHostedZone: Route53, Route53;
    CreateHostedZone: Route53, Route53;
    AssociateVPCWithHostedZone: Route53, Route53;
    DeleteHostedZone: Route53, Route53;
    ChangeTagsForResource: Route53, Route53;
    ListTagsForResource: Route53, Route53;
    ChangeResourceRecordSets: Route53, Route53;
    GetChange: Route53, Route53;
    ListResourceRecordSets: Route53, Route53;
    // Service Quotas: the endpoints a VPC may have, for plans.
    GetServiceQuota: ServiceQuotas, ServiceQuotas;
    // A permission-only action (Service Authorization Reference, "Actions, resources, and
    // condition keys for AWS PrivateLink"): AWS checks it on the endpoint service calls that
    // name other regions (SupportedRegions, Add/RemoveSupportedRegions) and on a
    // CreateVpcEndpoint with a ServiceRegion. Never sent, so it draws from no bucket; the class
    // is that of the calls it guards.
    AllowMultiRegion: Vpce, ServiceMutation;
}

impl Action {
    /// The operation of this name, as [`Action::name`] spells it.
    pub fn named(name: &str) -> Option<Action> {
        Action::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// The IAM action that allows the operation, e.g. `ec2:CreateVpcEndpoint`.
    pub fn iam_action(self) -> String {
        format!("{}:{}", self.service().iam_prefix(), self.name())
    }

    /// Whether the operation changes anything (anything but Describe*, Get* and List*).
    pub fn is_mutating(self) -> bool {
        if self.is_permission_only() {
            return false;
        }
        let name = self.name();
        !(name.starts_with("Describe") || name.starts_with("Get") || name.starts_with("List"))
    }
}

impl Action {
    /// Whether it is a permission AWS checks rather than an operation anyone calls.
    pub fn is_permission_only(self) -> bool {
        self.service() == AwsService::Vpce
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_map_to_the_buckets_aws_publishes() {
        assert_eq!(
            Action::CreateVpcEndpoint.bucket(),
            ApiClass::EndpointMutation
        );
        assert_eq!(
            Action::AcceptVpcEndpointConnections.bucket(),
            ApiClass::ServiceMutation
        );
        assert_eq!(
            Action::ModifyVpcEndpointServicePermissions.bucket(),
            ApiClass::OtherMutation
        );
        assert_eq!(Action::ChangeResourceRecordSets.bucket(), ApiClass::Route53);
        for a in Action::ALL {
            if a.name().starts_with("Describe") {
                let describe = match a.service() {
                    AwsService::ElasticLoadBalancing => ApiClass::ElbDescribe,
                    _ => ApiClass::Describe,
                };
                assert_eq!(a.bucket(), describe, "{a}");
            }
            if a.service() == AwsService::Route53 {
                assert_eq!(a.bucket(), ApiClass::Route53, "{a}");
            }
        }
    }

    #[test]
    fn iam_actions_carry_their_service_prefix() {
        assert_eq!(
            Action::CreateVpcEndpoint.iam_action(),
            "ec2:CreateVpcEndpoint"
        );
        assert_eq!(
            Action::DescribeListeners.iam_action(),
            "elasticloadbalancing:DescribeListeners"
        );
        assert_eq!(Action::GetChange.iam_action(), "route53:GetChange");
        assert_eq!(
            Action::AllowMultiRegion.iam_action(),
            "vpce:AllowMultiRegion"
        );
        assert!(Action::AllowMultiRegion.is_permission_only());
        assert!(!Action::AllowMultiRegion.is_mutating());
    }

    #[test]
    fn every_action_is_found_by_its_name() {
        for a in Action::ALL {
            assert_eq!(Action::named(a.name()), Some(*a));
        }
        assert_eq!(Action::named("CreateVpc"), None);
    }

    #[test]
    fn reads_are_not_mutations() {
        assert!(!Action::ListHostedZonesByVPC.is_mutating());
        assert!(!Action::GetChange.is_mutating());
        assert!(Action::CreateHostedZone.is_mutating());
        assert!(Action::ALL.iter().filter(|a| a.is_mutating()).count() > 10);
    }
}
