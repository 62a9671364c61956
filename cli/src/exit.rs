//! Exit codes, documented in the README so scripts can branch on them:
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | failure not listed below (config, data dir, I/O) |
//! | 2 | bad command line (from clap) |
//! | 3 | the object does not exist |
//! | 4 | conflict: compare-and-set mismatch, or the object exists |
//! | 5 | no controller answered, or the cluster has no leader |
//! | 6 | the request is invalid (checked locally or by the controller) |
//! | 7 | permission denied: the certificate's identity may not do this |
//! | 8 | `pld plan`: the plan has errors (applying the change would leave something failed) |

use pld_client::ClientError;
use tonic::Code;

pub const FAILURE: u8 = 1;
pub const NOT_FOUND: u8 = 3;
pub const CONFLICT: u8 = 4;
pub const UNAVAILABLE: u8 = 5;
pub const INVALID: u8 = 6;
pub const DENIED: u8 = 7;
pub const PLAN_HAS_ERRORS: u8 = 8;

/// A plan was made and printed, and it has errors: not a failure of the command, but a
/// finding scripts branch on (Terraform's `plan -detailed-exitcode` keeps the same split).
#[derive(Debug, thiserror::Error)]
#[error("the plan has {0} error(s): applying it would leave something failed")]
pub struct PlanHasErrors(pub usize);

fn client_error(e: &anyhow::Error) -> Option<&ClientError> {
    e.chain().find_map(|c| c.downcast_ref::<ClientError>())
}

/// The exit code for an error.
pub fn code_for(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<PlanHasErrors>().is_some() {
        return PLAN_HAS_ERRORS;
    }
    if e.chain()
        .any(|c| c.downcast_ref::<pld_core::validate::FieldError>().is_some())
    {
        return INVALID;
    }
    match client_error(e).map(ClientError::code) {
        Some(Code::NotFound) => NOT_FOUND,
        Some(Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted) => CONFLICT,
        Some(Code::Unavailable | Code::DeadlineExceeded) => UNAVAILABLE,
        Some(Code::InvalidArgument | Code::OutOfRange | Code::ResourceExhausted) => INVALID,
        Some(Code::PermissionDenied | Code::Unauthenticated) => DENIED,
        _ => FAILURE,
    }
}

/// Whether the call failed because the connection closed under it, with nothing else said.
/// Which words tonic uses depends on when the hang-up lands: during the call it is a
/// cancellation, between connecting and the first frame a bare "transport error" (a refused
/// connection says "tcp connect error" instead).
fn closed_by_the_controller(s: &tonic::Status) -> bool {
    let text = error_text(s);
    text.trim() == "transport error"
        || [
            "operation was canceled",
            "connection closed",
            "connection reset",
            "broken pipe",
        ]
        .iter()
        .any(|w| text.contains(w))
}

/// A status's message and the messages of its source chain, lower case.
fn error_text(s: &tonic::Status) -> String {
    let mut text = s.message().to_ascii_lowercase();
    let mut source = std::error::Error::source(s);
    while let Some(e) = source {
        text.push(' ');
        text.push_str(&e.to_string().to_ascii_lowercase());
        source = e.source();
    }
    text
}

/// Whether a failed call looks like one side speaking TLS and the other not, or a certificate
/// the other side refused: tonic reports these as bare protocol errors or cancellations, with
/// the cause only in the source chain.
fn looks_like_tls_trouble(s: &tonic::Status) -> bool {
    let text = error_text(s);
    [
        "h2 protocol error",
        "certificate",
        "tls",
        "alert",
        "handshake",
        "corrupt message",
        "invalidcontenttype",
    ]
    .iter()
    .any(|w| text.contains(w))
}

/// One line saying what went wrong and, where it helps, what to do next.
pub fn describe(e: &anyhow::Error) -> String {
    let mut line = format!("{e:#}");
    if let Some(ClientError::Status(s)) = client_error(e) {
        if s.code() == Code::PermissionDenied {
            // The controller named the identity and who may; only the way to another one is left.
            line.push_str(
                " (the identity is the URI SAN of --tls-cert; deploy/INSTALL.md shows how to issue one)",
            );
            return line;
        }
        if closed_by_the_controller(s) {
            // A TLS controller hangs up on a plaintext client, often before any byte the client
            // could read as a TLS alert; a controller going down looks the same.
            line.push_str(
                " (the controller closed the connection: a cluster with [tls] needs --tls-ca, \
                 --tls-cert and --tls-key signed by its CA; otherwise check that a majority of \
                 members is up)",
            );
            return line;
        }
        if looks_like_tls_trouble(s) {
            line.push_str(
                " (a TLS mismatch or a refused certificate: a cluster with [tls] needs --tls-ca, \
                 --tls-cert and --tls-key signed by its CA; one without needs none)",
            );
            return line;
        }
        match s.code() {
            Code::Unavailable => line.push_str(
                " (check that a controller runs at --controller / PLD_CONTROLLER and that a majority of members is up)",
            ),
            Code::FailedPrecondition => {
                if let Some(rev) = s.metadata().get(pld_controller::api::CURRENT_REVISION_KEY) {
                    if let Ok(rev) = rev.to_str() {
                        line.push_str(&format!(" (current mod revision: {rev}; re-read and retry)"));
                    }
                }
            }
            Code::NotFound => {
                // The controller says "<kind> \"key\" not found"; point at the matching list.
                let kind = ["service", "binding", "agent"]
                    .into_iter()
                    .find(|k| s.message().starts_with(k));
                if let Some(kind) = kind {
                    line.push_str(&format!(" (see what exists with `pld {kind}s list`)"));
                }
            }
            Code::OutOfRange => {
                if let Some(rev) = s.metadata().get(pld_controller::api::COMPACT_REVISION_KEY) {
                    if let Ok(rev) = rev.to_str() {
                        line.push_str(&format!(
                            " (history before revision {rev} is compacted; start from a later revision or list again)"
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(status: tonic::Status) -> String {
        describe(&anyhow::Error::from(ClientError::Status(status)))
    }

    #[test]
    fn a_connection_closed_under_the_call_points_at_tls_and_at_the_members() {
        for status in [
            tonic::Status::unknown("operation was canceled"),
            // A TLS controller hanging up on a plaintext client before its first frame.
            tonic::Status::unavailable("transport error"),
            tonic::Status::unknown("connection reset by peer"),
        ] {
            let line = described(status);
            assert!(
                line.contains("needs --tls-ca") && line.contains("majority"),
                "{line}"
            );
        }
    }

    #[test]
    fn a_refused_connection_points_at_the_address_only() {
        let line = described(tonic::Status::unavailable("tcp connect error"));
        assert!(!line.contains("--tls-ca"), "{line}");
        assert!(line.contains("--controller"), "{line}");
    }
}
