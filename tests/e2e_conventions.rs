//! What an operator of Vault (or OpenBao) does with an external plugin,
//! done on a real server: the host comes from `CLOUDROTATE_TEST_HOST`, so
//! `make test` checks these on OpenBao and `make test-vault` on Vault.
//! Registration with and without `-version`, a mount pinned with
//! `-plugin-version`, the run-by-hand instructions followed as printed, and
//! memory locking where the host asks for it.

#[path = "support/server.rs"]
mod server;
#[path = "support/tools.rs"]
mod tools;

use std::process::Command;

use serde_json::{Value, json};
use server::{Host, Options, PLUGIN_NAME, PLUGIN_VERSION, Server, plugin_binary, sha256_hex};

fn connection() -> Value {
    json!({
        "provider": "alicloud",
        "region": "cn-hangzhou",
        "access_key": "LTAI-e2e-conventions",
        "secret_key": "conventions-secret-never-returned",
        "endpoint": "http://127.0.0.1:9",
        "verify_connection": false,
    })
}

fn without_plugin(name: &str) -> Server {
    Server::start_with(
        name,
        Options {
            register_plugin: false,
            ..Options::default()
        },
    )
}

#[test]
fn registers_with_and_without_a_version_and_mounts_a_pinned_version() {
    let server = without_plugin("conventions-register");
    let sha = format!("-sha256={}", sha256_hex(&server.plugin_path()));
    // Without -version the host files it under the version it reports.
    server.cli_ok(&["plugin", "register", &sha, "secret", PLUGIN_NAME]);
    let info: Value = serde_json::from_str(&server.cli_ok(&[
        "plugin",
        "info",
        "-format=json",
        &format!("-version={PLUGIN_VERSION}"),
        "secret",
        PLUGIN_NAME,
    ]))
    .unwrap();
    assert_eq!(info["version"], PLUGIN_VERSION, "{info}");

    // With -version: the same version is accepted, another is refused.
    let same = format!("-version={PLUGIN_VERSION}");
    server.cli_ok(&["plugin", "register", &sha, &same, "secret", PLUGIN_NAME]);
    let other = server.cli(&[
        "plugin",
        "register",
        &sha,
        "-version=v9.9.9",
        "secret",
        PLUGIN_NAME,
    ]);
    assert!(
        !other.status.success(),
        "a version the plugin does not report"
    );
    let refusal = String::from_utf8_lossy(&other.stderr);
    assert!(refusal.contains("v9.9.9"), "{refusal}");

    // A mount pinned to the version runs it; an unknown version is refused.
    server.cli_ok(&[
        "secrets",
        "enable",
        "-path=pinned",
        &format!("-plugin-version={PLUGIN_VERSION}"),
        PLUGIN_NAME,
    ]);
    let mounts = server.read("sys/mounts");
    let mount = &mounts.data()["pinned/"];
    assert_eq!(mount["plugin_version"], PLUGIN_VERSION, "{mount}");
    assert_eq!(mount["running_plugin_version"], PLUGIN_VERSION, "{mount}");
    server.write("pinned/config/ali", connection()).data();
    assert_eq!(
        server.read("pinned/config/ali").data()["region"],
        "cn-hangzhou"
    );
    let unknown = server.cli(&[
        "secrets",
        "enable",
        "-path=unknown",
        "-plugin-version=v9.9.9",
        PLUGIN_NAME,
    ]);
    assert!(!unknown.status.success());
    assert!(server.read("sys/mounts").data().get("unknown/").is_none());
}

/// The commands a person is shown when starting the binary by hand,
/// pasted into a shell in the plugin directory as printed (with `bao` for
/// `vault` on OpenBao, as the message says).
#[test]
fn the_run_by_hand_instructions_register_and_mount_as_printed() {
    let server = without_plugin("conventions-by-hand");
    let binary = plugin_binary();
    let file = binary.file_name().and_then(|f| f.to_str()).unwrap();
    let installed = server.install_binary(&binary, file);
    let by_hand = Command::new(&installed).env_clear().output().unwrap();
    assert!(!by_hand.status.success());
    let message = String::from_utf8_lossy(&by_hand.stderr);
    let commands: Vec<String> = message
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("vault "))
        .map(|line| match server.host() {
            Host::Vault => line.to_owned(),
            Host::OpenBao => line.replacen("vault ", "bao ", 1),
        })
        .collect();
    assert_eq!(commands.len(), 2, "{message}");
    for command in &commands {
        let cli_dir = server.host().binary().parent().unwrap().to_owned();
        let output = Command::new("sh")
            .args(["-c", command])
            .current_dir(installed.parent().unwrap())
            .env(
                "PATH",
                format!("{}:{}", cli_dir.display(), std::env::var("PATH").unwrap()),
            )
            .env("VAULT_ADDR", &server.addr)
            .env("VAULT_TOKEN", &server.token)
            .env("BAO_ADDR", &server.addr)
            .env("BAO_TOKEN", &server.token)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mounts = server.read("sys/mounts");
    assert_eq!(
        mounts.data()["database/"]["type"],
        PLUGIN_NAME,
        "{mounts:?}"
    );
    server.write("database/config/ali", connection()).data();
    assert_eq!(
        server.read("database/config/ali").data()["region"],
        "cn-hangzhou"
    );
}

/// `VmLck` of every process of the plugin, in kB.
fn locked_kib(server: &Server) -> Vec<u64> {
    server
        .plugin_pids()
        .iter()
        .map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmLck:"))
                .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap()
        })
        .collect()
}

/// Vault with mlock on (its default) asks plugins to lock their memory;
/// OpenBao never does.
#[test]
fn plugin_memory_is_locked_where_the_host_asks() {
    let server = Server::start_with(
        "conventions-mlock",
        Options {
            mlock: true,
            ..Options::default()
        },
    );
    server.enable("database", &[]);
    server.write("database/config/ali", connection()).data();
    let locked = locked_kib(&server);
    assert_eq!(locked.len(), 1, "one plugin process");
    match server.host() {
        Host::Vault => assert!(locked[0] > 0, "VmLck {} kB", locked[0]),
        Host::OpenBao => assert_eq!(locked[0], 0),
    }
}
