//! pld's gRPC API, generated from `pld/v1/*.proto`. The .proto comments are the reference.

pub mod codec;

/// Package `pld.v1`: catalog, watch, cluster and the internal raft transport.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("pld.v1");
}

/// Encoded `FileDescriptorSet` of every pld proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("pld_descriptor");

/// Trailing metadata keys of error statuses, shared by the controller that sets them and the
/// clients that read them (documented in catalog.proto and watch.proto).
pub mod metadata {
    /// On FAILED_PRECONDITION (compare-and-set mismatch): the object's current mod revision.
    pub const CURRENT_REVISION: &str = "pld-current-revision";
    /// On OUT_OF_RANGE (compacted watch): the oldest revision that can still be watched.
    pub const COMPACT_REVISION: &str = "pld-compact-revision";
    /// On UNAVAILABLE: the write was refused before it was proposed, so it certainly did not
    /// happen. Without it, a failed write's outcome is unknown.
    pub const NOT_PROPOSED: &str = "pld-not-proposed";
}
