//! Dynamic roles end to end (issue 13): a real server (OpenBao by default,
//! see `support/server.rs`) with the release plugin mounted at
//! `database/`, the emulator binary, and real servers behind the emulated
//! resources (`make tools`): PostgreSQL behind a PolarDB cluster, Redis
//! behind a DCS instance. Each lease's account logs in while the lease
//! lives, may do what its role grants and no more, and stops existing when
//! the lease ends, however it ends: `lease revoke`, `lease revoke -prefix`,
//! disabling the mount; hvac's `generate_credentials` reads creds as it
//! reads Vault's database engine's; teams' policies decide whose creds a
//! token reads and whose leases it ends.

#[path = "support/emulator.rs"]
mod emulator;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/python.rs"]
mod python;
#[path = "support/redis.rs"]
mod redis;
#[path = "support/server.rs"]
mod server;
#[path = "support/tools.rs"]
mod tools;

use std::process::Command;
use std::time::{Duration, Instant};

use cloudrotate::emulator::backing::redis::RespValue;
use emulator::{Emulator, fixture};
use postgres::Postgres;
use redis::Redis;
use serde_json::{Value, json};
use server::Server;
use tools::Tool;

const CLUSTER: &str = "pc-dyn";
const INSTANCE: &str = "dcs-dyn";
/// The DCS instance password: Redis's `requirepass`, the `default` user's.
const INSTANCE_PASSWORD: &str = "Instance-Pass-1";

/// The emulator with the fixture's users and a PostgreSQL-backed cluster
/// with database `appdb`; the server with the plugin (see `mounted`) and
/// role `app` (ReadWrite on appdb, leases of 10 minutes, at most an hour).
fn stack(name: &str, pg: &Postgres, rollback_age: &str) -> (Emulator, Server) {
    let emulator = Emulator::start();
    emulator.seed(fixture::seed());
    emulator.seed(json!({"alicloud": {"polardb_clusters": [{
        "id": CLUSTER, "region": "cn-hangzhou", "engine": "PostgreSQL",
        "databases": ["appdb"], "account_settle_seconds": 0.5, "backing": pg.backing()
    }]}}));
    let server = mounted(name, &emulator, rollback_age);
    polardb_role(&server, "app");
    (emulator, server)
}

/// The server with the plugin at `database/` (the wait for an account
/// polls every 100 ms; the rollback takes a failed read's account once its
/// entry is `rollback_age` old) and both connections to `emulator`.
fn mounted(name: &str, emulator: &Emulator, rollback_age: &str) -> Server {
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
}

/// Dynamic role `name` on the cluster: ReadWrite on appdb, leases of 10
/// minutes, at most an hour.
fn polardb_role(server: &Server, name: &str) {
    server
        .write(
            &format!("database/roles/{name}"),
            json!({ "target": "polardb-account", "connection": "ali", "cluster_id": CLUSTER,
                    "grants": "appdb=ReadWrite", "default_ttl": "10m", "max_ttl": "1h" }),
        )
        .data();
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
    cli_json_as(server, &server.token, command, args)
}

/// `cli_json` with `token`.
fn cli_json_as(server: &Server, token: &str, command: &[&str], args: &[&str]) -> Value {
    let args: Vec<&str> = command
        .iter()
        .chain(&["-format=json"])
        .chain(args)
        .copied()
        .collect();
    let out = server.cli_ok_as(token, &args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// One lease's account of role `app`: (username, password, lease id).
fn read_creds(server: &Server) -> (String, String, String) {
    read_creds_as(server, &server.token, "app")
}

/// One lease's account of `role`, read with `token`.
fn read_creds_as(server: &Server, token: &str, role: &str) -> (String, String, String) {
    let out = cli_json_as(
        server,
        token,
        &["read"],
        &[&format!("database/creds/{role}")],
    );
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
    // and deletes the account of a read that failed a moment before (and
    // could not delete it itself).
    let (last, _, _) = read_creds(&server);
    emulator.set_faults(json!({"scripted": [
        { "api": "polardb.GrantAccountPrivilege", "code": "Forbidden.RAM", "status": 403 },
        { "api": "polardb.DeleteAccount", "code": "Forbidden.RAM", "status": 403 }
    ]}));
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
    // deletes it before answering.
    emulator.seed(json!({"alicloud": {"polardb_clusters": [{
        "id": CLUSTER, "region": "cn-hangzhou", "engine": "PostgreSQL", "account_settle_seconds": 0.5
    }]}}));
    let refused_grant = json!({
        "api": "polardb.GrantAccountPrivilege", "code": "Forbidden.RAM", "status": 403
    });
    emulator.set_faults(json!({ "scripted": [refused_grant] }));
    let refused = server.read("database/creds/app");
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(
        refused.errors().contains("Forbidden.RAM")
            && refused.errors().contains("the account was deleted"),
        "{}",
        refused.errors()
    );
    let live = |emulator: &Emulator| -> Vec<String> {
        emulator.get(&format!("polardb/{CLUSTER}"))["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["status"] != "Deleting")
            .filter_map(|a| a["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(live(&emulator), std::slice::from_ref(&user));

    // One whose delete is refused too leaves it to the host's rollback
    // tick (about once a minute).
    emulator.set_faults(json!({"scripted": [refused_grant, {
        "api": "polardb.DeleteAccount", "code": "Forbidden.RAM", "status": 403
    }]}));
    let refused = server.read("database/creds/app");
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(
        refused.errors().contains("deletes the account by itself"),
        "{}",
        refused.errors()
    );
    let orphan = live(&emulator)
        .into_iter()
        .find(|name| *name != user)
        .expect("the created account");
    assert!(pg.has_role(&orphan));
    gone_within(Duration::from_secs(150), &emulator, &pg, &orphan);
    assert_eq!(
        server.read("database/roles/app").data()["pending_cleanups"],
        0
    );
    logs_in(&pg, &user, &password);
}

/// A key every account reads, and its value before anyone writes.
const KEY: &str = "greeting";
const VALUE: &str = "hello";

/// The emulator with the fixture's users and a Redis 6.0 DCS instance
/// backed by `redis` (ACL tasks settle in 0.5 s); the server with the
/// plugin (see `mounted`) and two roles on the instance: `cache-ro` (ACL
/// role read) and `cache-rw` (write), leases of 10 minutes, at most an
/// hour.
fn dcs_stack(redis: &Redis) -> (Emulator, Server) {
    let emulator = Emulator::start();
    emulator.seed(fixture::seed());
    emulator.seed(json!({"huaweicloud": {"dcs_instances": [{
        "id": INSTANCE, "project_id": fixture::PROJECT, "password": INSTANCE_PASSWORD,
        "engine_version": "6.0", "account_settle_seconds": 0.5, "backing": redis.backing()
    }]}}));
    let server = mounted("dynamic-dcs", &emulator, "1h");
    for (role, acl_role) in [("cache-ro", "read"), ("cache-rw", "write")] {
        server
            .write(
                &format!("database/roles/{role}"),
                json!({ "target": "dcs-instance", "connection": "hw", "instance_id": INSTANCE,
                        "acl_role": acl_role, "default_ttl": "10m", "max_ttl": "1h" }),
            )
            .data();
    }
    (emulator, server)
}

/// The instance's ACL account `user` as the emulated DCS lists it.
fn acl_account(emulator: &Emulator, user: &str) -> Option<Value> {
    emulator.get(&format!("dcs/{INSTANCE}"))["acl_accounts"]
        .as_array()?
        .iter()
        .find(|account| account["name"] == user)
        .cloned()
}

/// The lease's ACL account exists on the instance with `acl_role`, and
/// Redis has the user.
fn acl_user_exists(emulator: &Emulator, redis: &Redis, user: &str, acl_role: &str) {
    let account = acl_account(emulator, user).unwrap_or_else(|| panic!("{user} on the instance"));
    assert_eq!(account["role"], acl_role, "{account}");
    assert_eq!(account["status"], "AVAILABLE", "{account}");
    assert!(
        redis.acl_users().iter().any(|name| name == user),
        "{user} in ACL USERS"
    );
}

/// `GET KEY` as the account answers `value`.
fn reads(redis: &Redis, user: &str, password: &str, value: &str) {
    let got = redis.command_as(Some(user), password, &["GET", KEY]);
    assert_eq!(
        got,
        Ok(RespValue::Bulk(Some(value.into()))),
        "GET as {user}"
    );
}

/// `SET KEY value` as the account: Redis's answer.
fn set(redis: &Redis, user: &str, password: &str, value: &str) -> RespValue {
    redis
        .command_as(Some(user), password, &["SET", KEY, value])
        .unwrap_or_else(|e| panic!("SET as {user}: {e}"))
}

/// The account is gone (within a minute): from the emulated instance and
/// from Redis, which refuses its password.
fn acl_user_gone(emulator: &Emulator, redis: &Redis, user: &str, password: &str) {
    wait_within(
        Duration::from_secs(60),
        &format!("ACL user {user} to be deleted"),
        || {
            let listed = acl_account(emulator, user).is_some_and(|a| a["status"] != "DELETING");
            !listed && !redis.acl_users().iter().any(|name| name == user)
        },
    );
    let refused = redis
        .login(Some(user), password)
        .expect_err("no login once the lease ended");
    assert!(refused.contains("WRONGPASS"), "{refused}");
}

#[test]
fn dynamic_dcs_acl_accounts_do_what_their_role_allows_while_their_lease_lives() {
    let redis = Redis::start(INSTANCE_PASSWORD);
    assert_eq!(
        redis.admin(&["SET", KEY, VALUE]),
        Ok(RespValue::Simple("OK".into()))
    );
    let (emulator, server) = dcs_stack(&redis);

    // A read-only account: logs in, reads, may not write.
    let (reader, reader_password, reader_lease) = read_creds_as(&server, &server.token, "cache-ro");
    assert!(reader.starts_with("v-cache-ro-"), "{reader}");
    acl_user_exists(&emulator, &redis, &reader, "read");
    redis
        .login(Some(&reader), &reader_password)
        .expect("the read-only account logs in");
    reads(&redis, &reader, &reader_password, VALUE);
    let refused = set(&redis, &reader, &reader_password, "changed");
    assert!(
        matches!(&refused, RespValue::Error(e) if e.starts_with("NOPERM")),
        "{refused:?}"
    );
    reads(&redis, &reader, &reader_password, VALUE);

    // A read-write account: writes what the other reads.
    let (writer, writer_password, writer_lease) = read_creds_as(&server, &server.token, "cache-rw");
    assert!(writer.starts_with("v-cache-rw-"), "{writer}");
    acl_user_exists(&emulator, &redis, &writer, "write");
    assert_eq!(
        set(&redis, &writer, &writer_password, "written"),
        RespValue::Simple("OK".into())
    );
    reads(&redis, &writer, &writer_password, "written");
    reads(&redis, &reader, &reader_password, "written");

    // Renewing extends the lease up to max_ttl and changes nothing in Redis.
    let renewed = cli_json(
        &server,
        &["lease", "renew"],
        &["-increment=30m", &reader_lease],
    );
    assert_eq!(renewed["lease_duration"], 1800, "{renewed}");
    let capped = cli_json(
        &server,
        &["lease", "renew"],
        &["-increment=5h", &reader_lease],
    );
    let capped = capped["lease_duration"].as_i64().unwrap();
    assert!(
        (3500..=3600).contains(&capped),
        "capped at max_ttl: {capped}"
    );
    reads(&redis, &reader, &reader_password, "written");

    // Revoking one lease deletes its account and only its account.
    server.cli_ok(&["lease", "revoke", &reader_lease]);
    acl_user_gone(&emulator, &redis, &reader, &reader_password);
    reads(&redis, &writer, &writer_password, "written");

    // revoke -prefix: every lease of the read-only role, none of the other.
    let readers: Vec<(String, String, String)> = (0..3)
        .map(|_| read_creds_as(&server, &server.token, "cache-ro"))
        .collect();
    for (user, password, _) in &readers {
        acl_user_exists(&emulator, &redis, user, "read");
        reads(&redis, user, password, "written");
    }
    server.cli_ok(&["lease", "revoke", "-prefix", "database/creds/cache-ro"]);
    for (user, password, _) in &readers {
        acl_user_gone(&emulator, &redis, user, password);
    }
    reads(&redis, &writer, &writer_password, "written");
    let lease = cli_json(&server, &["lease", "lookup"], &[&writer_lease]);
    assert_eq!(lease["data"]["id"], writer_lease.as_str(), "{lease}");

    // Disabling the mount ends the last lease and deletes its account.
    server.cli_ok(&["secrets", "disable", "database/"]);
    acl_user_gone(&emulator, &redis, &writer, &writer_password);
    let left = emulator.get(&format!("dcs/{INSTANCE}"))["acl_accounts"].clone();
    assert!(
        left.as_array()
            .is_none_or(|accounts| accounts.iter().all(|a| a["status"] == "DELETING")),
        "{left}"
    );
    let mut users = redis.acl_users();
    users.sort();
    assert_eq!(users, ["default", redis::ADMIN_USER], "ACL users left");
    // The instance password (the default user) was never touched.
    redis
        .login(None, INSTANCE_PASSWORD)
        .expect("requirepass unchanged");
    server.assert_no_leaks(emulator.secrets());
}

/// Team `team`'s policy, written through `sys/policies/acl`, and a token
/// holding only it. The team reads creds of its role `role`, renews and
/// revokes leases of that role, and nothing else: no roles, no
/// `revoke-prefix`. `lease revoke <id>` puts the lease id in the path
/// (`sys/leases/revoke/<id>`), so a path glob confines it to the role's
/// leases; `lease renew` sends it in the body of `sys/leases/renew`, so
/// `allowed_parameters` does.
fn team_token(server: &Server, team: &str, role: &str) -> String {
    let policy = format!(
        r#"
path "database/creds/{role}" {{
  capabilities = ["read"]
}}
path "sys/leases/renew" {{
  capabilities = ["update"]
  allowed_parameters = {{
    "lease_id" = ["database/creds/{role}/*"]
    "increment" = []
  }}
}}
path "sys/leases/revoke/database/creds/{role}/*" {{
  capabilities = ["update"]
}}
"#
    );
    let written = server.write(
        &format!("sys/policies/acl/{team}"),
        json!({ "policy": policy }),
    );
    assert_eq!(written.status, 204, "{written:?}");
    let token = server.write(
        "auth/token/create",
        json!({ "policies": [team], "no_default_policy": true, "ttl": "1h" }),
    );
    token.body["auth"]["client_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{token:?}"))
        .to_owned()
}

/// The reply is a 403 naming the denied permission.
fn denied(reply: &server::Reply, what: &str) {
    assert_eq!(reply.status, 403, "{what}: {reply:?}");
    assert!(
        reply.errors().contains("permission denied"),
        "{what}: {reply:?}"
    );
}

/// The CLI failed with permission denied.
fn cli_denied(server: &Server, token: &str, args: &[&str]) {
    let output = server.cli_as(token, args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{args:?} succeeded");
    assert!(stderr.contains("permission denied"), "{args:?}: {stderr}");
}

/// Accounts the cluster lists.
fn cluster_accounts(emulator: &Emulator) -> usize {
    emulator.get(&format!("polardb/{CLUSTER}"))["accounts"]
        .as_array()
        .map_or(0, Vec::len)
}

#[test]
fn team_policies_decide_whose_creds_a_token_reads_and_whose_leases_it_ends() {
    use reqwest::Method;

    let pg = Postgres::start();
    let (emulator, server) = stack("dynamic-teams", &pg, "1h");
    for role in ["app-a", "app-b"] {
        polardb_role(&server, role);
    }
    let teams = [
        (team_token(&server, "team-a", "app-a"), "app-a", "app-b"),
        (team_token(&server, "team-b", "app-b"), "app-b", "app-a"),
    ];

    let mut leases = Vec::new();
    for (token, own, other) in &teams {
        // Its own creds: a lease whose account logs in.
        let (user, password, lease_id) = read_creds_as(&server, token, own);
        logs_in(&pg, &user, &password);
        // The other team's: refused before any account is made.
        let before = cluster_accounts(&emulator);
        let read = server.call_as(token, Method::GET, &format!("database/creds/{other}"), None);
        denied(&read, &format!("{own}'s team reads creds/{other}"));
        assert_eq!(
            cluster_accounts(&emulator),
            before,
            "no account for a denied read"
        );
        // No role writes: its own role, the other team's, a new one.
        for role in [*own, *other, "new-role"] {
            let write = server.call_as(
                token,
                Method::POST,
                &format!("database/roles/{role}"),
                Some(json!({ "default_ttl": "1h" })),
            );
            denied(&write, &format!("{own}'s team writes roles/{role}"));
        }
        leases.push((user, password, lease_id));
    }
    // The denied writes changed nothing.
    assert_eq!(
        server.read("database/roles/app-a").data()["default_ttl"],
        600
    );

    // Each team renews and revokes its own leases, not the other's.
    let [(a_user, a_password, a_lease), (b_user, b_password, b_lease)] =
        <[_; 2]>::try_from(leases).unwrap();
    let (a_token, b_token) = (&teams[0].0, &teams[1].0);
    cli_denied(&server, a_token, &["lease", "revoke", &b_lease]);
    cli_denied(&server, a_token, &["lease", "renew", &b_lease]);
    cli_denied(
        &server,
        a_token,
        &["lease", "revoke", "-prefix", "database/creds/app-b"],
    );
    let in_body = server.call_as(
        a_token,
        Method::PUT,
        "sys/leases/revoke",
        Some(json!({ "lease_id": b_lease })),
    );
    denied(&in_body, "sys/leases/revoke with the other team's lease id");
    logs_in(&pg, &b_user, &b_password);

    let renewed = cli_json_as(
        &server,
        a_token,
        &["lease", "renew"],
        &["-increment=30m", &a_lease],
    );
    assert_eq!(renewed["lease_duration"], 1800, "{renewed}");
    server.cli_ok_as(a_token, &["lease", "revoke", &a_lease]);
    gone(&emulator, &pg, &a_user);
    assert!(
        pg.login(&a_user, &a_password).is_err(),
        "no login after revoke"
    );
    logs_in(&pg, &b_user, &b_password);

    server.cli_ok_as(b_token, &["lease", "revoke", &b_lease]);
    gone(&emulator, &pg, &b_user);
    server.assert_no_leaks(emulator.secrets());
}
