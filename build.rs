//! Compiles the plugin protocol's .proto files with protox (a pure-Rust
//! protobuf compiler), so building needs no system `protoc`; and links
//! GCC's unwinder statically (see `link_unwinder_statically`).

use std::path::PathBuf;
use std::process::Command;

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
    println!("cargo:rerun-if-changed=build.rs");
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    link_unwinder_statically();
    Ok(())
}

/// On linux-gnu, Rust's std links GCC's unwinder as the shared
/// libgcc_s.so.1. Loading it cost ~130 µs of the plugin's 2.1 ms cold
/// start on the bench VM: one more library to map and bind, and its
/// constructor probes the CPU with `cpuid`, which a hypervisor traps
/// (~8 µs per instruction there); the host starts a plugin process for
/// every mount and reload. Its static twin, libgcc_eh.a (what
/// `gcc -static-libgcc` links), has the same unwinder without the probe;
/// named here, it comes before std's `-lgcc_s` on the link line, so
/// `--as-needed` then drops libgcc_s. Panics and backtraces unwind as
/// before (it finds our unwind tables through dl_iterate_phdr). Where the
/// C compiler has no libgcc_eh.a (a clang-only system), the build keeps
/// libgcc_s.
fn link_unwinder_statically() {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let crt_static = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" || crt_static {
        return;
    }
    let target_cc = format!("CC_{}", var("TARGET").replace('-', "_"));
    println!("cargo:rerun-if-env-changed={target_cc}");
    println!("cargo:rerun-if-env-changed=CC");
    let cc = std::env::var(&target_cc)
        .or_else(|_| std::env::var("CC"))
        .unwrap_or_else(|_| "cc".to_owned());
    let Ok(output) = Command::new(&cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
    else {
        return;
    };
    let archive = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    // Without the file, the compiler prints the bare name back.
    if let (true, Some(dir)) = (archive.is_absolute() && archive.is_file(), archive.parent()) {
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    }
}
