//! Generates the gRPC server and client for KEDA's external scaler protocol from
//! `proto/externalscaler.proto`. `protox` compiles the proto in pure Rust, so no `protoc`
//! binary is needed; tonic-prost-build turns the descriptors into Rust.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/externalscaler.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // The client needs no transport of its own: tests hand it a channel.
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
