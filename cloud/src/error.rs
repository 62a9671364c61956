//! Errors any cloud implementation can return, split into what the cloud said and what went
//! wrong on our side, each saying whether a retry can help.

/// A cloud call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// The resource does not exist (or is not visible to this account).
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// A resource with this identity exists already.
    #[error("{what} {id} already exists")]
    AlreadyExists { what: &'static str, id: String },
    /// Route 53 `HostedZoneAlreadyExists`: a zone was created with this caller reference
    /// before. Route 53 never takes a reference twice, even once its zone is deleted, so the
    /// zone it names may be gone. The message is AWS's; it holds no zone id.
    #[error("hosted zone caller reference already used: {0}")]
    CallerReferenceUsed(String),
    /// Route 53 `ConflictingDomainExists`: a private zone of this name is already associated
    /// with the VPC.
    #[error("conflicting hosted zone: {0}")]
    ConflictingDomain(String),
    /// A parameter was refused; the message says which and why.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// The API's rate limit was hit (EC2 `RequestLimitExceeded`, Route 53 `Throttling`).
    #[error("throttled on {0}")]
    Throttled(String),
    /// Other resources still depend on this one.
    #[error("dependency violation: {0}")]
    DependencyViolation(String),
    /// The credentials may not do this.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// A client token was reused with different parameters.
    #[error("client token {0} was used with other parameters")]
    IdempotentParameterMismatch(String),
    /// Route 53 is still applying an earlier change to the zone.
    #[error("a previous change to zone {0} is not complete")]
    PriorRequestNotComplete(String),
    /// A server-side failure that may pass (5xx, timeouts).
    #[error("transient cloud error: {0}")]
    Transient(String),
    /// The endpoint does not implement this operation (e.g. an emulator).
    #[error("operation {0} is not supported by this cloud endpoint")]
    Unsupported(String),
    /// Our side failed: bad configuration, credentials, an unparseable response.
    #[error("cloud client error: {0}")]
    Client(String),
    /// AWS answered with an error code pld does not know: not retried, and named as AWS spelt
    /// it rather than passed off as a known kind.
    #[error("{action}: AWS error {code}: {message}")]
    UnknownCode {
        action: String,
        code: String,
        message: String,
    },
}

impl CloudError {
    /// A short name of the kind of error, for metrics labels.
    pub fn kind_name(&self) -> &'static str {
        match self {
            CloudError::NotFound { .. } => "not_found",
            CloudError::AlreadyExists { .. } => "already_exists",
            CloudError::CallerReferenceUsed(_) => "caller_reference_used",
            CloudError::ConflictingDomain(_) => "conflicting_domain",
            CloudError::InvalidParameter(_) => "invalid_parameter",
            CloudError::Throttled(_) => "throttled",
            CloudError::DependencyViolation(_) => "dependency_violation",
            CloudError::Unauthorized(_) => "unauthorized",
            CloudError::IdempotentParameterMismatch(_) => "idempotent_parameter_mismatch",
            CloudError::PriorRequestNotComplete(_) => "prior_request_not_complete",
            CloudError::Transient(_) => "transient",
            CloudError::Unsupported(_) => "unsupported",
            CloudError::Client(_) => "client",
            CloudError::UnknownCode { .. } => "unknown_code",
        }
    }

    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CloudError::Throttled(_)
                | CloudError::Transient(_)
                | CloudError::PriorRequestNotComplete(_)
        )
    }

    /// Whether this is a not-found, which cleanup treats as done.
    pub fn is_not_found(&self) -> bool {
        matches!(self, CloudError::NotFound { .. })
    }
}

/// Result of cloud calls.
pub type CloudResult<T> = Result<T, CloudError>;
