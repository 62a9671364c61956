//! AWS error codes → [`CloudError`], in one place.
//!
//! Codes come from the EC2, ELBv2 and Route 53 API references. An error without an AWS error
//! code and a 5xx status is not AWS talking (an emulator that lacks the operation answers 500
//! with HTML): that is [`CloudError::Unsupported`], so callers stop instead of retrying forever.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use pld_cloud::{Action, CloudError};

/// Maps an SDK error of `action`.
pub fn map<E>(action: Action, err: SdkError<E, HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            return CloudError::Transient(format!("{action}: {}", describe(&err)));
        }
        SdkError::ConstructionFailure(_) => {
            return CloudError::Client(format!("{action}: {}", describe(&err)));
        }
        _ => {}
    }
    let code = err.code().map(str::to_string);
    let message = err.message().unwrap_or_default().to_string();
    let text = || format!("{action}: {} {message}", code.clone().unwrap_or_default());
    match code.as_deref() {
        Some(
            "RequestLimitExceeded"
            | "Throttling"
            | "ThrottlingException"
            | "TooManyRequestsException",
        ) => CloudError::Throttled(action.to_string()),
        Some("PriorRequestNotComplete") => CloudError::PriorRequestNotComplete(message),
        Some("IdempotentParameterMismatch") => CloudError::IdempotentParameterMismatch(message),
        Some("DependencyViolation" | "HostedZoneNotEmpty") => {
            CloudError::DependencyViolation(text())
        }
        Some(
            "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" | "AuthFailure",
        ) => CloudError::Unauthorized(text()),
        Some("HostedZoneAlreadyExists" | "ConflictingDomainExists") => CloudError::AlreadyExists {
            what: "hosted zone",
            id: message,
        },
        Some(c)
            if c.ends_with(".NotFound")
                || c.starts_with("NoSuch")
                || c == "LoadBalancerNotFound"
                || c == "NotFound" =>
        {
            CloudError::NotFound {
                what: "resource",
                id: text(),
            }
        }
        Some("InternalError" | "InternalFailure" | "ServiceUnavailable" | "Unavailable") => {
            CloudError::Transient(text())
        }
        Some(_) => CloudError::InvalidParameter(text()),
        None if status.is_some_and(|s| s >= 500) => CloudError::Unsupported(format!(
            "{action} (HTTP {}, no AWS error in the response)",
            status.unwrap_or_default()
        )),
        None => CloudError::Transient(format!("{action}: {}", describe(&err))),
    }
}

fn describe<E: std::error::Error + 'static>(err: &SdkError<E, HttpResponse>) -> String {
    let mut out = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The outcome of a batch call: the first item AWS reported as unsuccessful, if any.
/// `fallback_id` names the resource when the item does not.
pub fn batch(
    action: Action,
    unsuccessful: &[aws_sdk_ec2::types::UnsuccessfulItem],
    fallback_id: &str,
) -> Result<(), CloudError> {
    match unsuccessful.first() {
        Some(item) => Err(unsuccessful_item(
            action,
            item.error().and_then(|e| e.code()),
            item.error().and_then(|e| e.message()),
            item.resource_id().unwrap_or(fallback_id),
        )),
        None => Ok(()),
    }
}

/// An item AWS reported as unsuccessful in a batch call.
fn unsuccessful_item(
    action: Action,
    code: Option<&str>,
    message: Option<&str>,
    id: &str,
) -> CloudError {
    let text = format!(
        "{action} {id}: {} {}",
        code.unwrap_or_default(),
        message.unwrap_or_default()
    );
    match code {
        Some(c) if c.ends_with(".NotFound") => CloudError::NotFound {
            what: "resource",
            id: id.to_string(),
        },
        Some("DependencyViolation") => CloudError::DependencyViolation(text),
        Some("UnauthorizedOperation") => CloudError::Unauthorized(text),
        _ => CloudError::InvalidParameter(text),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::operation::create_vpc_endpoint::CreateVpcEndpointError;
    use aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsError;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    fn response(status: u16) -> HttpResponse {
        HttpResponse::new(
            StatusCode::try_from(status).expect("valid status"),
            SdkBody::empty(),
        )
    }

    fn ec2_error(code: &str, status: u16) -> CloudError {
        let err = CreateVpcEndpointError::generic(
            ErrorMetadata::builder()
                .code(code)
                .message("from AWS")
                .build(),
        );
        map(
            Action::CreateVpcEndpoint,
            SdkError::service_error(err, response(status)),
        )
    }

    #[test]
    fn aws_error_codes_map_to_typed_errors() {
        assert_eq!(
            ec2_error("RequestLimitExceeded", 503),
            CloudError::Throttled("CreateVpcEndpoint".into())
        );
        assert!(ec2_error("RequestLimitExceeded", 503).is_retryable());
        assert!(matches!(
            ec2_error("IdempotentParameterMismatch", 400),
            CloudError::IdempotentParameterMismatch(_)
        ));
        assert!(matches!(
            ec2_error("InvalidVpcEndpointId.NotFound", 400),
            CloudError::NotFound { .. }
        ));
        assert!(matches!(
            ec2_error("DependencyViolation", 400),
            CloudError::DependencyViolation(_)
        ));
        assert!(matches!(
            ec2_error("UnauthorizedOperation", 403),
            CloudError::Unauthorized(_)
        ));
        assert!(matches!(
            ec2_error("InvalidParameter", 400),
            CloudError::InvalidParameter(_)
        ));
        assert!(ec2_error("InternalError", 500).is_retryable());
        let r53 = ChangeResourceRecordSetsError::generic(
            ErrorMetadata::builder()
                .code("PriorRequestNotComplete")
                .message("still applying")
                .build(),
        );
        let mapped = map(
            Action::ChangeResourceRecordSets,
            SdkError::service_error(r53, response(400)),
        );
        assert!(matches!(mapped, CloudError::PriorRequestNotComplete(_)));
        assert!(mapped.is_retryable());
        let throttled = ChangeResourceRecordSetsError::generic(
            ErrorMetadata::builder().code("Throttling").build(),
        );
        assert!(matches!(
            map(
                Action::ChangeResourceRecordSets,
                SdkError::service_error(throttled, response(400))
            ),
            CloudError::Throttled(_)
        ));
    }

    #[test]
    fn a_500_without_an_aws_error_is_unsupported_not_retried() {
        // moto answers operations it lacks with HTML and status 500.
        let err = CreateVpcEndpointError::generic(ErrorMetadata::builder().build());
        let mapped = map(
            Action::DescribeVpcEndpointConnections,
            SdkError::service_error(err, response(500)),
        );
        assert!(matches!(mapped, CloudError::Unsupported(_)), "{mapped:?}");
        assert!(!mapped.is_retryable());
    }
}
