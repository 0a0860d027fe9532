//! Compiles the plugin protocol's .proto files with protox (a pure-Rust
//! protobuf compiler), so building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/sdk/plugin/pb/backend.proto",
        "proto/sdk/logical/version.proto",
        "proto/sdk/helper/pluginutil/multiplexing.proto",
        "proto/go-plugin/grpc_broker.proto",
        "proto/go-plugin/grpc_controller.proto",
        "proto/go-plugin/grpc_stdio.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
