//! Built-in catalog entries for AWS services: no endpoint service, no provider agent.
//!
//! `s3` and `dynamodb` get gateway endpoints on the VPC's route tables; `aws-NAME` gets an
//! interface endpoint to `com.amazonaws.REGION.NAME` (dots in NAME written as '-', so
//! `aws-ecr-api` is `ecr.api`).

use crate::aws::types::{EndpointKind, AWS_GATEWAY_SERVICES, AWS_INTERFACE_SERVICES};

/// Whether `service` names a built-in, in any region.
pub fn is_builtin(service: &str) -> bool {
    lookup(service, "us-east-1").is_some()
}

/// A built-in service: its AWS service name and endpoint kind.
pub fn lookup(service: &str, region: &str) -> Option<(String, EndpointKind)> {
    match service {
        gw if AWS_GATEWAY_SERVICES.contains(&gw) => Some((
            format!("com.amazonaws.{region}.{service}"),
            EndpointKind::Gateway,
        )),
        other => {
            let name = other.strip_prefix("aws-")?;
            AWS_INTERFACE_SERVICES
                .iter()
                .find(|s| s.replace('.', "-") == name)
                .map(|s| {
                    (
                        format!("com.amazonaws.{region}.{s}"),
                        EndpointKind::Interface,
                    )
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_map_to_aws_service_names() {
        assert_eq!(
            lookup("s3", "us-east-1"),
            Some(("com.amazonaws.us-east-1.s3".into(), EndpointKind::Gateway))
        );
        assert_eq!(
            lookup("aws-ecr-api", "eu-west-1"),
            Some((
                "com.amazonaws.eu-west-1.ecr.api".into(),
                EndpointKind::Interface
            ))
        );
        assert_eq!(lookup("billing", "us-east-1"), None);
        assert_eq!(lookup("aws-nope", "us-east-1"), None);
    }
}
