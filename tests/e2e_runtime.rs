//! The plugin runtime end to end: a real server (OpenBao 2.7.2, or Vault
//! with `CLOUDROTATE_TEST_HOST=vault`) loads the release plugin binary
//! through its catalog and serves it over the real plugin protocol. Driven
//! with the host's CLI and plain HTTP.

#[path = "support/server.rs"]
mod server;
#[path = "support/tools.rs"]
mod tools;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server::{PLUGIN_NAME, PLUGIN_VERSION, Server, sha256_hex};

/// A connection that needs no cloud: verification off.
fn connection(region: &str) -> Value {
    json!({
        "provider": "alicloud",
        "region": region,
        "access_key": "LTAI-e2e-runtime",
        "secret_key": "runtime-secret-never-returned",
        "endpoint": "http://127.0.0.1:9",
        "verify_connection": false,
    })
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn registers_with_its_version_and_serves_stored_paths() {
    let server = Server::start("runtime-basics");
    let info = server.cli_ok(&[
        "plugin",
        "info",
        &format!("-version={PLUGIN_VERSION}"),
        "-format=json",
        "secret",
        PLUGIN_NAME,
    ]);
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["version"], PLUGIN_VERSION, "{info}");
    assert_eq!(info["name"], PLUGIN_NAME);

    server.cli_ok(&["secrets", "enable", "-path=database", PLUGIN_NAME]);
    let mounts = server.read("sys/mounts");
    assert_eq!(mounts.data()["database/"]["type"], PLUGIN_NAME);
    assert_eq!(
        mounts.data()["database/"]["running_plugin_version"],
        PLUGIN_VERSION
    );

    // Written through Vault storage, read, listed, deleted.
    server
        .write("database/config/ali", connection("cn-hangzhou"))
        .data();
    let read = server.read("database/config/ali");
    assert_eq!(read.data()["region"], "cn-hangzhou");
    assert_eq!(read.data()["access_key"], "LTAI-e2e-runtime");
    assert!(read.data().get("secret_key").is_none(), "{:?}", read.body);
    assert!(
        !read
            .body
            .to_string()
            .contains("runtime-secret-never-returned")
    );
    assert_eq!(
        server.list("database/config").data()["keys"],
        json!(["ali"])
    );
    // The CLI sends every value as a string; it is coerced like Vault does.
    server.cli_ok(&[
        "write",
        "database/config/ali",
        "max_retries=5",
        "request_timeout=1m",
    ]);
    let read = server.read("database/config/ali");
    assert_eq!(read.data()["max_retries"], 5);
    assert_eq!(read.data()["request_timeout"], 60);
    assert_eq!(server.delete("database/config/ali").status, 204);
    assert_eq!(server.read("database/config/ali").status, 404);
    assert_eq!(server.list("database/config").status, 404);

    // Bad input names the field; unknown paths and operations are refused.
    let bad = server.write(
        "database/config/bad",
        json!({ "provider": "alicloud", "max_retries": "many" }),
    );
    assert_eq!(bad.status, 400, "{bad:?}");
    assert!(bad.errors().contains("max_retries"), "{}", bad.errors());
    let typo = server.write(
        "database/config/bad",
        json!({ "provider": "alicloud", "regoin": "x" }),
    );
    assert_eq!(typo.status, 400);
    assert!(typo.errors().contains("regoin"), "{}", typo.errors());
    assert_eq!(server.read("database/no/such/path").status, 404);
    assert_eq!(server.delete("database/static-creds/x").status, 405);

    // Help and the OpenAPI document show our paths and their fields.
    let help = server.cli_ok(&["path-help", "database/"]);
    assert!(
        help.contains("static-roles/{name}") && help.contains("rotate-root/{name}"),
        "{help}"
    );
    let one = server.cli_ok(&["path-help", "database/config/x"]);
    assert!(
        one.contains("signature_version") && one.contains("allowed_roles"),
        "{one}"
    );
    let openapi = server.read("sys/internal/specs/openapi");
    assert_eq!(openapi.status, 200);
    let paths = &openapi.body["paths"];
    assert!(
        paths.get("/database/static-roles/{name}").is_some(),
        "{paths}"
    );
    let document = openapi.body.to_string();
    assert!(document.contains("dependents") && document.contains("rotation_schedule"));
}

#[test]
fn two_mounts_share_one_process_and_keep_their_own_data() {
    let server = Server::start("runtime-multiplex");
    server.enable("team-a", &[]);
    server.enable("team-b", &[]);
    server
        .write("team-a/config/one", connection("cn-hangzhou"))
        .data();
    server
        .write("team-b/config/two", connection("cn-shanghai"))
        .data();
    assert_eq!(server.list("team-a/config").data()["keys"], json!(["one"]));
    assert_eq!(server.list("team-b/config").data()["keys"], json!(["two"]));
    assert_eq!(server.read("team-b/config/one").status, 404);
    assert_eq!(
        server.plugin_pids().len(),
        1,
        "one process serves both mounts"
    );

    // Unmounting one leaves the other served by the same process.
    assert_eq!(server.delete("sys/mounts/team-a").status, 204);
    assert_eq!(
        server.read("team-b/config/two").data()["region"],
        "cn-shanghai"
    );
    assert_eq!(server.plugin_pids().len(), 1);
    // The last unmount shuts the process down.
    assert_eq!(server.delete("sys/mounts/team-b").status, 204);
    wait_for("the plugin process to exit", || {
        server.plugin_pids().is_empty()
    });
}

#[test]
fn reload_kill_and_restart_keep_serving_the_same_data() {
    let mut server = Server::start("runtime-lifecycle");
    server.enable("database", &[]);
    server
        .write("database/config/ali", connection("cn-hangzhou"))
        .data();
    let first = server.plugin_pids();
    assert_eq!(first.len(), 1);

    server.cli_ok(&["plugin", "reload", &format!("-plugin={PLUGIN_NAME}")]);
    assert_eq!(
        server.read("database/config/ali").data()["region"],
        "cn-hangzhou"
    );
    let reloaded = server.plugin_pids();
    assert_eq!(reloaded.len(), 1);
    assert_ne!(reloaded, first, "reload starts a new process");

    // kill -9: once the host has noticed (it logs the exit), it restarts
    // the plugin. go-plugin logs the exit a moment before it marks the
    // client exited, so a request in between can still dial the dead
    // socket: the write is retried until a new process serves it.
    assert_eq!(server.kill_plugin(), 1);
    let killed = reloaded[0];
    wait_for("the host to notice the killed plugin", || {
        server
            .server_log()
            .lines()
            .any(|l| l.contains("plugin process exited") && l.contains(&format!("id={killed}")))
    });
    wait_for("a restarted plugin to serve a write", || {
        server
            .write("database/config/after-kill", connection("cn-beijing"))
            .status
            < 300
    });
    let restarted = server.plugin_pids();
    assert!(
        !restarted.is_empty() && !restarted.contains(&killed),
        "{restarted:?}"
    );
    assert_eq!(
        server.read("database/config/after-kill").data()["region"],
        "cn-beijing"
    );

    // A server restart with file storage keeps the mount and its data.
    server.stop();
    wait_for("the plugin to exit with its host", || {
        server.plugin_pids().is_empty()
    });
    server.start_again();
    assert_eq!(
        server.read("database/config/ali").data()["region"],
        "cn-hangzhou"
    );
    assert_eq!(
        server.list("database/config").data()["keys"],
        json!(["after-kill", "ali"])
    );
}

#[test]
fn plugin_logs_reach_the_server_log_at_their_level() {
    // The harness runs the server at log level debug.
    let server = Server::start("runtime-logs");
    server.enable("database", &[]);
    server
        .write("database/config/ali", connection("cn-hangzhou"))
        .data();
    // The same binary under a second name whose catalog entry asks for
    // debug lines, as an operator chasing a problem would.
    let catalog = server.write(
        "sys/plugins/catalog/secret/cloudrotate-debug",
        json!({ "sha256": sha256_hex(&server.plugin_path()), "command": PLUGIN_NAME,
                "env": ["CLOUDROTATE_LOG_LEVEL=debug"] }),
    );
    assert!(catalog.status < 300, "{catalog:?}");
    server.cli_ok(&["secrets", "enable", "-path=debugged", "cloudrotate-debug"]);
    server
        .write("debugged/config/ali", connection("cn-hangzhou"))
        .data();
    let log = server.server_log();
    let ours = |mount_type: &str| -> Vec<&str> {
        let logger = format!("secrets.{mount_type}.");
        log.lines().filter(|l| l.contains(&logger)).collect()
    };
    // hclog JSON lines are re-logged under the plugin's logger at their
    // level, not demoted to raw DEBUG lines.
    let plain = ours(PLUGIN_NAME);
    let set_up = plain.iter().find(|l| l.contains("mount set up"));
    assert!(
        set_up.is_some_and(|l| l.contains("[INFO]")),
        "no INFO line from the plugin:\n{log}"
    );
    // With no setting of ours, the host's debug level shows our debug
    // lines, as it does a Go plugin's.
    assert!(
        plain
            .iter()
            .any(|l| l.contains("[DEBUG]") && l.contains("connected to the host's storage")),
        "no DEBUG line from the plugin:\n{log}"
    );
    // Asking for debug shows ours, never HTTP/2 frames (h2 logs each
    // frame sent and received at debug; they are trace lines now).
    let debugged = ours("cloudrotate-debug");
    assert!(
        debugged.iter().any(|l| l.contains("plugin address")),
        "{log}"
    );
    let frames: Vec<&&str> = debugged.iter().filter(|l| l.contains("frame=")).collect();
    assert!(
        frames.is_empty(),
        "HTTP/2 frame traces at debug: {frames:#?}"
    );
    assert!(!log.contains("runtime-secret-never-returned"));
}
