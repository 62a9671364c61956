//! gRPC server reflection limited to the services a daemon really serves, plus gRPC health and
//! reflection itself, so `grpcurl -plaintext HOST:PORT list` shows exactly what answers there.

use tonic_reflection::pb::v1::server_reflection_server::{
    ServerReflection, ServerReflectionServer,
};

const HEALTH: &str = "grpc.health.v1.Health";
const REFLECTION: &str = "grpc.reflection.v1.ServerReflection";

/// A reflection service over `file_descriptor_set` that lists `services` (fully qualified names),
/// health and reflection.
///
/// # Errors
/// When the descriptor set does not decode (a build problem, reported at start).
pub fn reflection(
    file_descriptor_set: &'static [u8],
    services: &[&str],
) -> Result<ServerReflectionServer<impl ServerReflection>, tonic_reflection::server::Error> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(file_descriptor_set)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    for name in services.iter().copied().chain([HEALTH, REFLECTION]) {
        builder = builder.with_service_name(name);
    }
    builder.build_v1()
}
