//! Compiles the etcd API subset with a vendored protoc (clients only).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/etcd.proto");
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .build_server(false)
        // The same codec as pld's own clients, so both clients cost the same per call.
        .codec_path("pld_proto::codec::PldCodec")
        .compile_with_config(config, &["proto/etcd.proto"], &["proto"])?;
    Ok(())
}
