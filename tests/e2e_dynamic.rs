//! Dynamic roles end to end (issue 13): a real server (OpenBao by default,
//! see `support/server.rs`) with the release plugin mounted at
//! `database/`, the emulator binary, and a real PostgreSQL behind the
//! emulated PolarDB cluster (`make tools`). Each lease's account logs in
//! to PostgreSQL while the lease lives and stops existing when it ends,
//! however it ends: `lease revoke`, `lease revoke -prefix`, disabling the
//! mount; hvac's `generate_credentials` reads creds as it reads Vault's
//! database engine's.

#[path = "support/emulator.rs"]
mod emulator;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/python.rs"]
mod python;
#[path = "support/server.rs"]
mod server;
#[path = "support/tools.rs"]
mod tools;

use std::process::Command;
use std::time::{Duration, Instant};

use emulator::{Emulator, fixture};
use postgres::Postgres;
use serde_json::{Value, json};
use server::Server;
use tools::Tool;

const CLUSTER: &str = "pc-dyn";

/// The emulator with the fixture's users and a PostgreSQL-backed cluster
/// with database `appdb`; the server with the plugin (the wait for an
/// account polls every 100 ms; the rollback takes a failed read's account
/// once its entry is `rollback_age` old), both connections and role `app`
/// (ReadWrite on appdb, leases of 10 minutes, at most an hour).
fn stack(name: &str, pg: &Postgres, rollback_age: &str) -> (Emulator, Server) {
    let emulator = Emulator::start();
    emulator.seed(fixture::seed());
    emulator.seed(json!({"alicloud": {"polardb_clusters": [{
        "id": CLUSTER, "region": "cn-hangzhou", "engine": "PostgreSQL",
        "databases": ["appdb"], "account_settle_seconds": 0.5, "backing": pg.backing()
    }]}}));
    let server = Server::start(name);
    server.enable(
        "database",
        &[
            ("account_ready_poll", "100ms"),
            ("wal_rollback_min_age", rollback_age),
            ("jitter", "0s"),
        ],
    );
    for (name, body) in fixture::connections(&emulator.url, "5s") {
        server
            .write(&format!("database/config/{name}"), body)
            .data();
    }
    server
        .write(
            "database/roles/app",
            json!({ "target": "polardb-account", "connection": "ali", "cluster_id": CLUSTER,
                    "grants": "appdb=ReadWrite", "default_ttl": "10m", "max_ttl": "1h" }),
        )
        .data();
    (emulator, server)
}

/// Polls `check` until it holds (bounded by `limit`).
fn wait_within(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `<cli> <command...> -format=json <args...>`, parsed.
fn cli_json(server: &Server, command: &[&str], args: &[&str]) -> Value {
    let args: Vec<&str> = command
        .iter()
        .chain(&["-format=json"])
        .chain(args)
        .copied()
        .collect();
    let out = server.cli_ok(&args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// One lease's account: (username, password, lease id).
fn read_creds(server: &Server) -> (String, String, String) {
    let out = cli_json(server, &["read"], &["database/creds/app"]);
    let text = |value: &Value| value.as_str().unwrap_or_else(|| panic!("{out}")).to_owned();
    assert_eq!(out["lease_duration"], 600, "{out}");
    assert_eq!(out["renewable"], true, "{out}");
    (
        text(&out["data"]["username"]),
        text(&out["data"]["password"]),
        text(&out["lease_id"]),
    )
}

/// The account logs in to PostgreSQL and may connect to appdb.
fn logs_in(pg: &Postgres, user: &str, password: &str) {
    pg.login(user, password)
        .unwrap_or_else(|e| panic!("{user} logs in: {e}"));
    let granted = pg.column(
        "appdb",
        &format!("SELECT has_database_privilege('{user}', 'appdb', 'CONNECT')"),
    );
    assert_eq!(granted, ["t"], "{user} may connect to appdb");
}

/// The account is gone (within `limit`): from the emulated cluster and
/// from PostgreSQL.
fn gone_within(limit: Duration, emulator: &Emulator, pg: &Postgres, user: &str) {
    wait_within(limit, &format!("account {user} to be deleted"), || {
        let listed = emulator.get(&format!("polardb/{CLUSTER}"))["accounts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .any(|a| a["name"] == user && a["status"] != "Deleting");
        !listed && !pg.has_role(user)
    });
}

fn gone(emulator: &Emulator, pg: &Postgres, user: &str) {
    gone_within(Duration::from_secs(60), emulator, pg, user);
}

#[test]
fn dynamic_accounts_log_in_while_their_lease_lives_and_go_when_it_ends() {
    let pg = Postgres::start();
    // No rollback tick deletes a failed read's account in this test's
    // time: disabling the mount must.
    let (emulator, server) = stack("dynamic-leases", &pg, "1h");

    // read, renew, revoke.
    let (user, password, lease_id) = read_creds(&server);
    logs_in(&pg, &user, &password);
    let renewed = cli_json(&server, &["lease", "renew"], &["-increment=30m", &lease_id]);
    assert_eq!(renewed["lease_duration"], 1800, "{renewed}");
    let capped = cli_json(&server, &["lease", "renew"], &["-increment=5h", &lease_id]);
    let capped = capped["lease_duration"].as_i64().unwrap();
    assert!(
        (3500..=3600).contains(&capped),
        "capped at max_ttl: {capped}"
    );
    logs_in(&pg, &user, &password);
    server.cli_ok(&["lease", "revoke", &lease_id]);
    gone(&emulator, &pg, &user);
    assert!(pg.login(&user, &password).is_err(), "no login after revoke");

    // revoke -prefix: every lease of the role.
    let accounts: Vec<(String, String, String)> = (0..3).map(|_| read_creds(&server)).collect();
    for (user, password, _) in &accounts {
        logs_in(&pg, user, password);
    }
    server.cli_ok(&["lease", "revoke", "-prefix", "database/creds/app"]);
    for (user, _, _) in &accounts {
        gone(&emulator, &pg, user);
    }

    // hvac, as users of Vault's database engine call it.
    let out = Command::new(Tool::Python.path())
        .arg(python::script("hvac_dynamic_creds.py"))
        .args([&server.addr, &server.token, "database", "app", "1200"])
        .output()
        .expect("run the hvac script");
    assert!(
        out.status.success(),
        "hvac: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hvac: Value = serde_json::from_slice(&out.stdout).expect("the script's JSON");
    assert_eq!(hvac["lease_duration"], 600, "{hvac}");
    assert_eq!(hvac["renewed_duration"], 1200, "{hvac}");
    let user = hvac["username"].as_str().unwrap().to_owned();
    logs_in(&pg, &user, hvac["password"].as_str().unwrap());

    // Disabling the mount revokes every lease, which deletes the accounts,
    // and deletes the account of a read that failed a moment before.
    let (last, _, _) = read_creds(&server);
    emulator.set_faults(json!({"scripted": [{
        "api": "polardb.GrantAccountPrivilege", "code": "Forbidden.RAM", "status": 403
    }]}));
    assert_eq!(server.read("database/creds/app").status, 403);
    let failed = emulator.get(&format!("polardb/{CLUSTER}"))["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .find(|name| ![user.as_str(), last.as_str()].contains(name))
        .expect("the failed read's account")
        .to_owned();
    assert!(pg.has_role(&failed));
    server.cli_ok(&["secrets", "disable", "database/"]);
    for user in [user, last, failed] {
        gone(&emulator, &pg, &user);
    }
    // No account of any lease is left (the last ones may still be listed
    // while PolarDB finishes deleting them).
    let left = emulator.get(&format!("polardb/{CLUSTER}"))["accounts"].clone();
    assert!(
        left.as_array()
            .unwrap()
            .iter()
            .all(|account| account["status"] == "Deleting"),
        "{left}"
    );
    server.assert_no_leaks(emulator.secrets());
}

#[test]
fn dynamic_creds_say_why_the_cloud_refused() {
    let pg = Postgres::start();
    // The rollback takes a failed read's account at the host's next tick.
    let (emulator, server) = stack("dynamic-refusals", &pg, "1s");
    emulator.patch_status(&format!("polardb/{CLUSTER}"), "Stopped");
    let stopped = server.read("database/creds/app");
    assert_eq!(stopped.status, 503, "{stopped:?}");
    assert!(
        stopped.errors().contains("OperationDenied.DBClusterStatus"),
        "{}",
        stopped.errors()
    );
    emulator.patch_status(&format!("polardb/{CLUSTER}"), "Running");
    emulator.seed(json!({"alicloud": {"polardb_clusters": [{
        "id": CLUSTER, "region": "cn-hangzhou", "engine": "PostgreSQL", "account_limit": 1,
        "account_settle_seconds": 0.5
    }]}}));
    let (user, password, _) = read_creds(&server);
    logs_in(&pg, &user, &password);
    let full = server.read("database/creds/app");
    assert_eq!(full.status, 429, "{full:?}");
    assert!(
        full.errors().contains("QuotaExceeded.AccountName"),
        "{}",
        full.errors()
    );
    assert_eq!(
        server.read("database/roles/app").data()["pending_cleanups"],
        0
    );

    // A read that fails after the account was created (a refused grant)
    // leaves it to the host's rollback tick (about once a minute).
    emulator.seed(json!({"alicloud": {"polardb_clusters": [{
        "id": CLUSTER, "region": "cn-hangzhou", "engine": "PostgreSQL", "account_settle_seconds": 0.5
    }]}}));
    emulator.set_faults(json!({"scripted": [{
        "api": "polardb.GrantAccountPrivilege", "code": "Forbidden.RAM", "status": 403
    }]}));
    let refused = server.read("database/creds/app");
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(
        refused.errors().contains("Forbidden.RAM"),
        "{}",
        refused.errors()
    );
    let accounts = emulator.get(&format!("polardb/{CLUSTER}"))["accounts"].clone();
    let orphan = accounts
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .find(|name| *name != user)
        .unwrap_or_else(|| panic!("the created account: {accounts}"))
        .to_owned();
    assert!(pg.has_role(&orphan));
    gone_within(Duration::from_secs(150), &emulator, &pg, &orphan);
    assert_eq!(
        server.read("database/roles/app").data()["pending_cleanups"],
        0
    );
    logs_in(&pg, &user, &password);
}
