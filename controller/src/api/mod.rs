//! The gRPC services a controller serves, and the one place node and catalog errors become
//! gRPC statuses.

pub mod catalog;
pub mod cluster;
pub mod plan;
pub mod raft;
pub mod watch;

use pld_core::validate::FieldError;
use pld_core::CatalogError;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::node::NodeError;

pub use pld_proto::metadata::{
    COMPACT_REVISION as COMPACT_REVISION_KEY, CURRENT_REVISION as CURRENT_REVISION_KEY,
    NOT_PROPOSED as NOT_PROPOSED_KEY,
};

fn with_metadata(code: Code, message: String, key: &'static str, value: u64) -> Status {
    let mut status = Status::new(code, message);
    if let Ok(v) = MetadataValue::try_from(value.to_string()) {
        status.metadata_mut().insert(key, v);
    }
    status
}

/// Maps a catalog refusal to a status.
pub fn catalog_status(e: CatalogError) -> Status {
    match e {
        CatalogError::Invalid(f) => Status::invalid_argument(f.to_string()),
        CatalogError::NotFound { .. } => Status::not_found(e.to_string()),
        CatalogError::RevisionMismatch { current, .. } => with_metadata(
            Code::FailedPrecondition,
            e.to_string(),
            CURRENT_REVISION_KEY,
            current,
        ),
        CatalogError::Compacted { oldest, .. } => with_metadata(
            Code::OutOfRange,
            format!("compacted: {e}"),
            COMPACT_REVISION_KEY,
            oldest,
        ),
        CatalogError::Corrupt(_) => Status::invalid_argument(e.to_string()),
        CatalogError::Forbidden(_) => Status::permission_denied(e.to_string()),
        CatalogError::ClusterIdMismatch { .. } => Status::failed_precondition(e.to_string()),
    }
}

/// Maps a node error to a status.
pub fn node_status(e: NodeError) -> Status {
    match e {
        NodeError::Rejected(c) => catalog_status(c),
        // Refused before proposing: tell clients a retry cannot double the write.
        NodeError::NoLeader => with_metadata(Code::Unavailable, e.to_string(), NOT_PROPOSED_KEY, 1),
        NodeError::Timeout(_) | NodeError::Stopped(_) => Status::unavailable(e.to_string()),
        NodeError::Raft(_) => Status::failed_precondition(e.to_string()),
    }
}

/// Maps a field error to INVALID_ARGUMENT.
pub fn invalid(e: FieldError) -> Status {
    Status::invalid_argument(e.to_string())
}
