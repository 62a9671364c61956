//! Compiles `pld/v1/*.proto` with a vendored protoc, so a fresh machine needs nothing installed.
//! The protoc path is set for this build script only: exporting a newer protoc as `PROTOC` for
//! the whole build would break raft-proto's own protobuf-codec build.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let files = [
        "pld/v1/catalog.proto",
        "pld/v1/watch.proto",
        "pld/v1/cluster.proto",
        "pld/v1/raft.proto",
        "pld/v1/agent.proto",
        "pld/v1/plan.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    // Boxed so a service stays small inline (a command carries one in an enum with small
    // variants): both are set only for a service on an ALB.
    config.boxed(".pld.v1.Service.health_check");
    config.boxed(".pld.v1.ServiceStatus.alb_front");
    tonic_prost_build::configure()
        // Smaller call buffers than tonic's default; see src/codec.rs.
        .codec_path("crate::codec::PldCodec")
        .file_descriptor_set_path(out_dir.join("pld_descriptor.bin"))
        .compile_with_config(config, &files, &["."])?;
    Ok(())
}
