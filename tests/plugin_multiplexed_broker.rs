//! Vault's containerised-plugin mode, played by go-plugin's own client
//! (`tests/go/muxhost`, built into `.tools/bin` by `make test-vault`):
//! gRPC broker multiplexing over one connection (`PLUGIN_MULTIPLEX_GRPC`)
//! and a socket shared with the host's group (`PLUGIN_UNIX_SOCKET_GROUP`).
//! The host mounts the plugin with the Vault SDK's backend client over an
//! in-memory storage, so a write that lands there crossed the multiplexed
//! broker: in this mode the only way back to the host is a stream the
//! plugin opens after knocking.

#[path = "support/tools.rs"]
mod tools;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use tools::Tool;

/// A group the test process is not in, so the socket's group shows that
/// the plugin set it.
const SOCKET_GROUP: u32 = 54_321;

/// The `dist` build that `make test-vault` passes, or this build's.
fn plugin() -> PathBuf {
    std::env::var_os("CLOUDROTATE_PLUGIN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_vault-plugin-secrets-cloudrotate")))
}

#[test]
#[ignore = "needs the Go programs of tests/go: run with make test-vault"]
fn go_plugins_own_client_mounts_the_plugin_over_a_multiplexed_broker() {
    let output = Command::new(Tool::Muxhost.path())
        .arg(plugin())
        .arg(SOCKET_GROUP.to_string())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "muxhost failed:\n{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("muxhost printed no report ({e}):\n{stderr}"));

    // The write reached the host's storage through the brokered stream,
    // and the read came back through the plugin.
    let stored = report["stored_keys"].to_string();
    assert!(stored.contains("config/"), "{report}");
    assert_eq!(report["read"]["region"], "cn-hangzhou", "{report}");
    assert_eq!(report["read"]["access_key"], "LTAI-muxhost", "{report}");
    assert!(report["read"].get("secret_key").is_none(), "{report}");

    // One socket, in the directory the host named, owned by its group.
    let sockets = report["sockets"].as_array().unwrap();
    assert_eq!(sockets.len(), 1, "{report}");
    assert_eq!(sockets[0]["gid"], SOCKET_GROUP, "{report}");
    assert_eq!(sockets[0]["mode"], "0660", "{report}");

    // The host's graceful stop ended the process well within go-plugin's
    // two seconds before a kill.
    assert_eq!(report["plugin_exited"], true, "{report}");
    let stop = report["stop_seconds"].as_f64().unwrap();
    assert!(stop < 1.5, "the plugin took {stop} s to stop:\n{stderr}");
}
