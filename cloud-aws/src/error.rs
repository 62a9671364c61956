//! AWS error codes → [`CloudError`], in one place.
//!
//! Codes come from the EC2, ELBv2 and Route 53 API references. An error without an AWS error
//! code and a 5xx status is AWS (or something in front of it) failing for now: transient, and
//! retried. The exception is an HTML page: no AWS API answers in HTML, but an emulator that
//! lacks the operation does (moto: 500 with a Werkzeug page), and that is
//! [`CloudError::Unsupported`], so callers stop instead of retrying forever. A code pld does not
//! know is [`CloudError::UnknownCode`], named as AWS spelt it.

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
    let html = err.raw_response().is_some_and(|r| {
        r.headers()
            .get("content-type")
            .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/html"))
    });
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
        // ELBv2's ResourceInUse: a target group a listener forwards to, an ALB registered as
        // a target, a load balancer an endpoint service names.
        Some("DependencyViolation" | "HostedZoneNotEmpty" | "ResourceInUse") => {
            CloudError::DependencyViolation(text())
        }
        // ELBv2 creates are idempotent by name only for the same settings.
        Some("DuplicateLoadBalancerName" | "DuplicateTargetGroupName" | "DuplicateListener") => {
            CloudError::AlreadyExists {
                what: "ELBv2 resource",
                id: text(),
            }
        }
        // DryRunOperation is what a call with DryRun set gets when it would have been allowed:
        // pld never sets it, so it is a permission answer out of place, never a success.
        Some(
            "UnauthorizedOperation"
            | "AccessDenied"
            | "AccessDeniedException"
            | "NotAuthorizedException"
            | "AuthFailure"
            | "DryRunOperation",
        ) => CloudError::Unauthorized(text()),
        // Neither names a zone: the message is prose, never an id to use.
        Some("HostedZoneAlreadyExists") => CloudError::CallerReferenceUsed(text()),
        Some("ConflictingDomainExists") => CloudError::ConflictingDomain(text()),
        Some(c)
            if c.ends_with(".NotFound")
                || c.starts_with("NoSuch")
                || c == "LoadBalancerNotFound"
                || c == "TargetGroupNotFound"
                || c == "ListenerNotFound"
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
        Some(c) if is_invalid_parameter(c) => CloudError::InvalidParameter(text()),
        Some(c) => CloudError::UnknownCode {
            action: action.to_string(),
            code: c.to_string(),
            message,
        },
        None if html && status.is_some_and(|s| s >= 500) => CloudError::Unsupported(format!(
            "{action} (HTTP {} with an HTML page, not an AWS error: the endpoint lacks the operation)",
            status.unwrap_or_default()
        )),
        None if status.is_some_and(|s| s >= 500) => CloudError::Transient(format!(
            "{action}: HTTP {} without an AWS error code",
            status.unwrap_or_default()
        )),
        None => CloudError::Transient(format!("{action}: {}", describe(&err))),
    }
}

/// Codes that say a parameter was refused: the request is wrong, retrying will not help.
/// (EC2 "Error codes for the Amazon EC2 API": the `Invalid*` family, `MissingParameter`, the
/// `*LimitExceeded` quotas; ELBv2 and Route 53 spell theirs `Invalid…` too.)
fn is_invalid_parameter(code: &str) -> bool {
    code.starts_with("Invalid")
        || code.starts_with("Malformed")
        || code == "MissingParameter"
        || code == "UnknownParameter"
        || code == "ValidationError"
        || code == "DuplicateSubnetsInSameZone"
        || code == "OperationNotPermitted"
        || code == "UnsupportedOperation"
        || (code.ends_with("LimitExceeded") && code != "RequestLimitExceeded")
        || code == "ConflictingTypes"
        // ELBv2 (API reference, each operation's Errors): a target that cannot be registered,
        // a listener that cannot forward to the group; and the `TooMany…` quotas of ELBv2 and
        // Route 53 (`TooManyHostedZones`, `TooManyVPCsAssociatedWithHostedZone`).
        || code == "SubnetNotFound"
        || code == "IncompatibleProtocols"
        || code == "TargetGroupAssociationLimit"
        || code.starts_with("TooMany")
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
        Some(c) if is_invalid_parameter(c) => CloudError::InvalidParameter(text),
        Some(c) => CloudError::UnknownCode {
            action: action.to_string(),
            code: c.to_string(),
            message: format!("{id}: {}", message.unwrap_or_default()),
        },
        None => CloudError::Transient(text),
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

    fn html_response(status: u16) -> HttpResponse {
        let mut r = response(status);
        r.headers_mut()
            .insert("Content-Type", "text/html; charset=utf-8");
        r
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
    fn zone_conflicts_keep_aws_prose_out_of_ids() {
        let zone_error = |code: &str| {
            let err = ChangeResourceRecordSetsError::generic(
                ErrorMetadata::builder()
                    .code(code)
                    .message("A hosted zone has already been created with the specified caller reference.")
                    .build(),
            );
            map(
                Action::CreateHostedZone,
                SdkError::service_error(err, response(409)),
            )
        };
        let used = zone_error("HostedZoneAlreadyExists");
        assert!(
            matches!(&used, CloudError::CallerReferenceUsed(m) if m.contains("caller reference")),
            "{used:?}"
        );
        assert!(!used.is_retryable());
        let conflict = zone_error("ConflictingDomainExists");
        assert!(
            matches!(conflict, CloudError::ConflictingDomain(_)),
            "{conflict:?}"
        );
    }

    #[test]
    fn a_500_html_page_is_unsupported_not_retried() {
        // moto answers operations it lacks with an HTML page and status 500.
        let err = CreateVpcEndpointError::generic(ErrorMetadata::builder().build());
        let mapped = map(
            Action::DescribeVpcEndpointConnections,
            SdkError::service_error(err, html_response(500)),
        );
        assert!(matches!(mapped, CloudError::Unsupported(_)), "{mapped:?}");
        assert!(!mapped.is_retryable());
    }

    #[test]
    fn a_5xx_without_an_error_code_is_transient_and_retried() {
        for status in [500, 502, 503] {
            let err = CreateVpcEndpointError::generic(ErrorMetadata::builder().build());
            let mapped = map(
                Action::CreateVpcEndpoint,
                SdkError::service_error(err, response(status)),
            );
            assert!(
                matches!(mapped, CloudError::Transient(_)) && mapped.is_retryable(),
                "{status}: {mapped:?}"
            );
        }
    }

    #[test]
    fn permission_answers_name_the_action() {
        for code in [
            "UnauthorizedOperation",
            "AccessDenied",
            "AccessDeniedException",
            "NotAuthorizedException",
            "DryRunOperation",
        ] {
            let mapped = ec2_error(code, 403);
            assert!(
                matches!(mapped, CloudError::Unauthorized(_)),
                "{code}: {mapped:?}"
            );
            assert!(mapped.to_string().contains("CreateVpcEndpoint"), "{mapped}");
            assert!(!mapped.is_retryable());
        }
    }

    #[test]
    fn an_unknown_code_is_named_not_passed_off_as_invalid_parameter() {
        let mapped = ec2_error("VpcEndpointLimitOfTheUniverse", 400);
        assert_eq!(
            mapped,
            CloudError::UnknownCode {
                action: "CreateVpcEndpoint".into(),
                code: "VpcEndpointLimitOfTheUniverse".into(),
                message: "from AWS".into(),
            }
        );
        assert!(mapped.to_string().contains("VpcEndpointLimitOfTheUniverse"));
        assert!(!mapped.is_retryable());
        // Codes that do say a parameter was refused still say so.
        for code in [
            "InvalidSubnet",
            "MissingParameter",
            "VpcEndpointLimitExceeded",
        ] {
            assert!(
                matches!(ec2_error(code, 400), CloudError::InvalidParameter(_)),
                "{code}"
            );
        }
    }
}
