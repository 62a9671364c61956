//! Conversions between the SDK's types and pld_cloud's: tags, filters, connections, endpoint
//! kinds, zone ids. States keep AWS's wire spelling and are compared with
//! [`pld_cloud::state_is`], ignoring case.

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification, VpcEndpointType};
use pld_cloud::{Connection, EndpointKind, Tags};

pub(crate) fn tags_of(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

pub(crate) fn tag_spec(kind: ResourceType, tags: &Tags) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

pub(crate) fn tag_filters(tags: &Tags) -> Vec<Filter> {
    tags.iter()
        .map(|(k, v)| Filter::builder().name(format!("tag:{k}")).values(v).build())
        .collect()
}

pub(crate) fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// A connection as the provider sees it. The state keeps AWS's wire spelling
/// (`pendingAcceptance`, `available`): the SDK enum does not know every value.
pub(crate) fn connection_of(c: &aws_sdk_ec2::types::VpcEndpointConnection) -> Connection {
    Connection {
        service_id: c.service_id().unwrap_or_default().to_string(),
        endpoint_id: c.vpc_endpoint_id().unwrap_or_default().to_string(),
        owner: c.vpc_endpoint_owner().unwrap_or_default().to_string(),
        state: c
            .vpc_endpoint_state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
    }
}

pub(crate) fn strip_zone(id: &str) -> String {
    id.trim_start_matches("/hostedzone/").to_string()
}

pub(crate) fn endpoint_kind(t: Option<&VpcEndpointType>) -> EndpointKind {
    EndpointKind::from_aws(t.map(VpcEndpointType::as_str))
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::{State, VpcEndpointConnection};
    use pld_cloud::state_is;

    use super::*;

    #[test]
    fn connection_states_keep_the_wire_spelling_and_compare_ignoring_case() {
        for wire in ["pendingAcceptance", "pending", "available", "rejected"] {
            let c = VpcEndpointConnection::builder()
                .service_id("vpce-svc-0123456789abcdef0")
                .vpc_endpoint_id("vpce-0123456789abcdef0")
                .vpc_endpoint_owner("210987654321")
                .vpc_endpoint_state(State::from(wire))
                .build();
            let conn = connection_of(&c);
            assert!(state_is(&conn.state, wire), "{wire} -> {}", conn.state);
            assert_eq!(conn.owner, "210987654321");
        }
        // The SDK's enum spells Available differently from the wire; both compare equal.
        let c = VpcEndpointConnection::builder()
            .vpc_endpoint_state(State::Available)
            .build();
        assert!(state_is(&connection_of(&c).state, "available"));
    }

    #[test]
    fn endpoint_kinds_parse_ignoring_case() {
        assert_eq!(
            endpoint_kind(Some(&VpcEndpointType::from("gateway"))),
            EndpointKind::Gateway
        );
        assert_eq!(
            endpoint_kind(Some(&VpcEndpointType::Gateway)),
            EndpointKind::Gateway
        );
        assert_eq!(
            endpoint_kind(Some(&VpcEndpointType::from("GatewayLoadBalancer"))),
            EndpointKind::GatewayLoadBalancer
        );
        assert_eq!(
            endpoint_kind(Some(&VpcEndpointType::Interface)),
            EndpointKind::Interface
        );
        // Types pld does not manage are read as what they are, never as Interface.
        assert_eq!(
            endpoint_kind(Some(&VpcEndpointType::Resource)),
            EndpointKind::Resource
        );
        assert_eq!(
            endpoint_kind(Some(&VpcEndpointType::ServiceNetwork)),
            EndpointKind::ServiceNetwork
        );
        for unknown in [Some(&VpcEndpointType::from("Satellite")), None] {
            let kind = endpoint_kind(unknown);
            assert_eq!(kind, EndpointKind::Unrecognised);
            assert!(!kind.is_managed());
        }
    }

    #[test]
    fn zone_ids_lose_their_path_prefix() {
        assert_eq!(strip_zone("/hostedzone/Z0123456789ABC"), "Z0123456789ABC");
        assert_eq!(strip_zone("Z0123456789ABC"), "Z0123456789ABC");
    }
}
