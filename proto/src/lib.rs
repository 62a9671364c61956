//! pld's gRPC API, generated from `pld/v1/*.proto`. The .proto comments are the reference.

/// Package `pld.v1`: catalog, watch, cluster and the internal raft transport.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("pld.v1");
}

/// Encoded `FileDescriptorSet` of every pld proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("pld_descriptor");
