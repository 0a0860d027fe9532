//! The secrets engine end to end: a real server (OpenBao 2.7.2, or Vault
//! with `CLOUDROTATE_TEST_HOST=vault`) with the
//! release plugin mounted at `database/`, talking to the real emulator
//! binary. Every check of a password looks at the emulator's truth (the
//! target and each job copy) next to what Vault hands out.

#[path = "support/agent.rs"]
mod agent;
#[path = "support/emulator.rs"]
mod emulator;
#[path = "support/server.rs"]
mod server;
#[path = "support/tools.rs"]
mod tools;

use std::time::{Duration, Instant};

use agent::Agent;
use emulator::{Emulator, fixture};
use serde_json::{Value, json};
use server::Server;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Short retry and deferral delays, so failures converge in seconds.
const TUNING: &[(&str, &str)] = &[
    ("retry_base", "50ms"),
    ("retry_cap", "400ms"),
    ("defer_retry", "200ms"),
    ("jitter", "0s"),
];

struct Stack {
    emulator: Emulator,
    server: Server,
    /// Secrets the emulator never sees (tokens), for the leak check.
    tokens: std::cell::RefCell<Vec<String>>,
}

impl Stack {
    fn start(name: &str) -> Self {
        Self::start_with(name, &[])
    }

    /// With mount options on top of `TUNING`.
    fn start_with(name: &str, options: &[(&str, &str)]) -> Self {
        let emulator = Emulator::start();
        emulator.seed(fixture::seed());
        let server = Server::start(name);
        let options: Vec<(&str, &str)> = TUNING.iter().chain(options).copied().collect();
        server.enable("database", &options);
        let stack = Self {
            emulator,
            server,
            tokens: Default::default(),
        };
        stack.connections();
        stack
    }

    fn connections(&self) {
        for (name, body) in fixture::connections(&self.emulator.url, "2s") {
            self.server
                .write(&format!("database/config/{name}"), body)
                .data();
        }
    }

    fn password(&self, role: &str) -> String {
        self.server
            .read(&format!("database/static-creds/{role}"))
            .data()["password"]
            .as_str()
            .expect("a password")
            .to_owned()
    }

    fn truth(&self, path: &str) -> Value {
        self.emulator.get(path)
    }

    /// Polls a read until `check` holds (bounded).
    fn wait_until(&self, path: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let reply = self.server.read(path);
            if reply.status == 200 && check(&reply.body["data"]) {
                return reply.body["data"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {reply:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn rotations(&self, role: &str) -> Vec<Value> {
        self.server.read(&format!("database/history/{role}")).data()["rotations"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// Every test is also a leak test: no password, secret key or token the
/// clouds ever saw, nor the root token, may appear in the server log (which
/// carries the plugin's log lines) or the audit log.
impl Drop for Stack {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let mut secrets = self.emulator.secrets();
            secrets.push(self.server.token.clone());
            secrets.extend(self.tokens.borrow().iter().cloned());
            self.server.assert_no_leaks(secrets);
        }
    }
}

fn time_of(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().expect("a timestamp"), &Rfc3339).expect("RFC 3339")
}

#[test]
fn polardb_and_dcs_roles_keep_the_target_and_every_job_copy_in_step() {
    let stack = Stack::start("engine-copies");
    let server = &stack.server;
    // As an operator types it: the CLI sends every value as a string.
    server.cli_ok(&[
        "write",
        "database/static-roles/team-app",
        "target=polardb-account",
        "connection=ali",
        "cluster_id=pc-1",
        "username=app",
        "dependents=dts:ali/dtsjob1/src",
        "rotation_period=24h",
    ]);
    let created = stack.password("team-app");
    assert_ne!(created, fixture::INITIAL, "creating the role rotated it");
    assert_eq!(
        stack.truth("polardb/pc-1/accounts/app")["password"],
        created
    );
    assert_eq!(stack.truth("dts/dtsjob1")["src"]["password"], created);
    assert_eq!(
        stack.truth("dts/dtsjob1")["dest"]["password"],
        "Other-Pass-1"
    );

    server.cli_ok(&[
        "write",
        "database/static-roles/dcs-cache",
        "target=dcs-instance",
        "connection=hw",
        "instance_id=dcs-1",
        &format!("password={}", fixture::INITIAL),
        "dependents=drs:hw/drsjob1/so",
    ]);
    let cache = stack.password("dcs-cache");
    assert_ne!(cache, fixture::INITIAL);
    assert_eq!(stack.truth("dcs/dcs-1")["password"], cache);
    assert_eq!(stack.truth("drs/drsjob1")["so"]["password"], cache);

    // rotate-role rotates again, everywhere; the old one becomes last_password.
    server.cli_ok(&["write", "-f", "database/rotate-role/team-app"]);
    let rotated = stack.password("team-app");
    assert_ne!(rotated, created);
    let creds = server.read("database/static-creds/team-app");
    assert_eq!(creds.data()["last_password"], created);
    assert_eq!(creds.data()["username"], "app");
    assert!(creds.data()["ttl"].as_i64().unwrap() > 86_000);
    assert_eq!(
        stack.truth("polardb/pc-1/accounts/app")["password"],
        rotated
    );
    assert_eq!(stack.truth("dts/dtsjob1")["src"]["password"], rotated);

    // A role read shows the state of each copy, never a password.
    let role = server.read("database/static-roles/team-app");
    assert_eq!(role.data()["status"], "ok");
    assert_eq!(role.data()["dependent_states"][0]["state"], "in_sync");
    assert!(role.data()["next_vault_rotation"].is_string());
    assert!(!role.body.to_string().contains(&rotated) && !role.body.to_string().contains(&created));
    let history = server.read("database/history/team-app");
    assert!(!history.body.to_string().contains(&rotated));
    let triggers: Vec<&str> = history.data()["rotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(triggers, ["manual", "create"]);

    // A dry run shows every call and precheck, and changes nothing.
    let changes = stack.truth("polardb/pc-1/accounts/app")["changes"].clone();
    let plan = server.write("database/rotate-role/team-app", json!({ "dry_run": true }));
    let calls: Vec<&str> = plan.data()["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        calls,
        [
            "DescribeAccounts",
            "DescribeDtsJobDetail",
            "ModifyAccountPassword",
            "ModifyAccountDescription",
            "ModifyDtsJobPassword"
        ]
    );
    assert_eq!(plan.data()["prechecks"][0]["marker"], "in_sync");
    assert_eq!(plan.data()["prechecks"][1]["accepts_change"], true);
    assert_eq!(stack.password("team-app"), rotated);
    assert_eq!(stack.truth("polardb/pc-1/accounts/app")["changes"], changes);

    // Adopting a password without the import rotation touches nothing.
    server
        .write(
            "database/static-roles/team-report",
            json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                "username": "report", "password": fixture::INITIAL, "skip_import_rotation": true }),
        )
        .data();
    assert_eq!(stack.password("team-report"), fixture::INITIAL);
    assert_eq!(stack.truth("polardb/pc-1/accounts/report")["changes"], 0);
    assert_eq!(
        server.list("database/static-roles").data()["keys"],
        json!(["dcs-cache", "team-app", "team-report"])
    );

    // Deleting a role forgets it; the password stays where it is.
    assert_eq!(
        server.delete("database/static-roles/team-report").status,
        204
    );
    assert_eq!(server.read("database/static-creds/team-report").status, 404);
    assert_eq!(
        stack.truth("polardb/pc-1/accounts/report")["password"],
        fixture::INITIAL
    );
}

#[test]
fn a_rotation_defers_while_a_drs_job_refuses_changes_then_completes() {
    let stack = Stack::start("engine-defer");
    stack.emulator.patch_status("drs/drsjob1", "CREATING");
    let created = stack.server.write(
        "database/static-roles/dcs-cache",
        json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-1",
                "password": fixture::INITIAL, "dependents": ["drs:hw/drsjob1/so"] }),
    );
    assert!(created.status < 300, "{created:?}");
    assert!(
        created.body["warnings"].to_string().contains("CREATING"),
        "{created:?}"
    );
    let role = stack.server.read("database/static-roles/dcs-cache");
    assert_eq!(role.data()["status"], "deferred");
    assert!(
        role.data()["status_reason"]
            .as_str()
            .unwrap()
            .contains("drs:hw/drsjob1/so")
    );
    assert_eq!(
        stack.truth("dcs/dcs-1")["password"],
        fixture::INITIAL,
        "nothing touched"
    );
    assert_eq!(stack.truth("dcs/dcs-1")["changes"], 0);

    stack
        .emulator
        .patch_status("drs/drsjob1", "INCRE_TRANSFER_STARTED");
    stack.wait_until(
        "database/static-roles/dcs-cache",
        "the deferred rotation",
        |r| r["status"] == "ok",
    );
    let password = stack.password("dcs-cache");
    assert_eq!(stack.truth("dcs/dcs-1")["password"], password);
    assert_eq!(stack.truth("drs/drsjob1")["so"]["password"], password);
    assert_eq!(
        stack.truth("dcs/dcs-1")["changes"],
        1,
        "one rotation, one password"
    );
    let rotations = stack.rotations("dcs-cache");
    assert_eq!(
        rotations.len(),
        1,
        "the deferred rotation finished as itself"
    );
    assert_eq!(rotations[0]["outcome"], "succeeded");
}

#[test]
fn dropped_answers_and_throttling_converge_on_one_password_without_a_dcs_lockout() {
    let stack = Stack::start("engine-faults");
    // Changes are applied and their answers lost at random (seeded): a lost
    // DCS old-password change is resolved by a reset, never by a second
    // old-password try; a lost PolarDB change by applying the recorded
    // password again.
    stack.emulator.set_faults(json!({
        "seed": 1, "drop_after_apply_rate": 0.5, "drop_after_apply_hold_ms": 0,
        "apis": ["dcs.UpdatePassword", "polardb.ModifyAccountPassword", "dts.ModifyDtsJobPassword", "drs.BatchResetPassword"],
        "scripted": [
            { "api": "dts.ModifyDtsJobPassword", "code": "Throttling.User", "status": 400, "count": 2 },
            { "api": "drs.BatchResetPassword", "code": "APIGW.0308", "status": 429, "count": 2 }
        ]
    }));
    let server = &stack.server;
    for (role, body) in [
        (
            "team-app",
            json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                             "username": "app", "dependents": "dts:ali/dtsjob1/src" }),
        ),
        (
            "dcs-cache",
            json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-1",
                              "password": fixture::INITIAL, "dependents": "drs:hw/drsjob1/so" }),
        ),
    ] {
        let reply = server.write(&format!("database/static-roles/{role}"), body);
        assert!(reply.status < 300, "{role}: {reply:?}");
        stack.wait_until(
            &format!("database/static-roles/{role}"),
            "convergence",
            |r| r["status"] == "ok",
        );
    }
    let app = stack.password("team-app");
    assert_eq!(stack.truth("polardb/pc-1/accounts/app")["password"], app);
    assert_eq!(stack.truth("dts/dtsjob1")["src"]["password"], app);
    let cache = stack.password("dcs-cache");
    let instance = stack.truth("dcs/dcs-1");
    assert_eq!(instance["password"], cache);
    assert_eq!(stack.truth("drs/drsjob1")["so"]["password"], cache);
    assert_eq!(instance["locked"], false);
    assert_eq!(
        instance["retry_times_left"], 5,
        "no old-password attempt spent"
    );
    assert_eq!(
        stack.emulator.calls("dcs.UpdatePassword"),
        1,
        "a lost change is never re-sent blind"
    );
    let counters = stack.emulator.counters();
    assert_eq!(
        counters["outcomes"]["scripted"], 4,
        "every throttling answer was met: {counters}"
    );
    assert!(
        counters["outcomes"]["dropped_after_apply"]
            .as_u64()
            .unwrap()
            >= 2,
        "{counters}"
    );
    assert!(
        stack.emulator.calls("dcs.ResetPassword") >= 1,
        "the lost DCS answer was met: {counters}"
    );
    for role in ["team-app", "dcs-cache"] {
        let rotations = stack.rotations(role);
        assert_eq!(rotations.len(), 1, "{role}: {rotations:?}");
        assert_eq!(rotations[0]["outcome"], "succeeded");
    }
}

/// A token holding `policy` (HCL), and, with `entity`, logged in through
/// userpass as that user so the token has an entity.
fn token_with(stack: &Stack, name: &str, policy: &str, entity: bool) -> String {
    let server = &stack.server;
    assert_eq!(
        server
            .write(
                &format!("sys/policies/acl/{name}"),
                json!({ "policy": policy })
            )
            .status,
        204
    );
    let token = if entity {
        if server.read("sys/auth").data()["userpass/"].is_null() {
            assert_eq!(
                server
                    .write("sys/auth/userpass", json!({ "type": "userpass" }))
                    .status,
                204
            );
        }
        let password = format!("{name}-Login-Pass-1");
        assert_eq!(
            server
                .write(
                    &format!("auth/userpass/users/{name}"),
                    json!({ "password": password, "policies": [name] })
                )
                .status,
            204
        );
        stack.tokens.borrow_mut().push(password.clone());
        let login = server.write(
            &format!("auth/userpass/login/{name}"),
            json!({ "password": password }),
        );
        assert!(
            !login.body["auth"]["entity_id"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{login:?}"
        );
        login.body["auth"]["client_token"]
            .as_str()
            .unwrap()
            .to_owned()
    } else {
        let created = server.write(
            "auth/token/create",
            json!({ "policies": [name], "ttl": "10m" }),
        );
        created.body["auth"]["client_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    stack.tokens.borrow_mut().push(token.clone());
    token
}

#[test]
fn a_library_set_lends_an_account_to_one_borrower_at_a_time() {
    let stack = Stack::start("engine-library");
    let server = &stack.server;
    server
        .write(
            "database/library/team-pool",
            json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                "service_account_names": ["report"], "ttl": "1h", "max_ttl": "2h" }),
        )
        .data();
    let live = || {
        stack.truth("polardb/pc-1/accounts/report")["password"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_ne!(
        live(),
        fixture::INITIAL,
        "creating the set rotated its account"
    );
    let borrower = r#"
path "database/library/team-pool/check-out" { capabilities = ["update"] }
path "database/library/team-pool/check-in" { capabilities = ["update"] }
path "database/library/team-pool/status" { capabilities = ["read"] }
"#;
    let alice = token_with(&stack, "alice", borrower, true);
    let bob = token_with(&stack, "bob", borrower, false);
    let post = |token: &str, path: &str, body: Value| {
        server.call_as(
            token,
            reqwest::Method::POST,
            &format!("database/library/team-pool/{path}"),
            Some(body),
        )
    };

    let out = post(&alice, "check-out", json!({}));
    assert_eq!(out.data()["service_account_name"], "report");
    let lent = out.data()["password"].as_str().unwrap().to_owned();
    assert_eq!(lent, live());
    let lease_id = out.body["lease_id"].as_str().unwrap().to_owned();
    assert!(
        lease_id.starts_with("database/library/team-pool/check-out/"),
        "{lease_id}"
    );
    assert_eq!(out.body["lease_duration"], 3600);
    assert_eq!(out.body["renewable"], true);

    let none = post(&bob, "check-out", json!({}));
    assert_eq!(none.status, 400, "{none:?}");
    assert!(
        none.errors().contains("no service account"),
        "{}",
        none.errors()
    );
    let status = server.call_as(
        &bob,
        reqwest::Method::GET,
        "database/library/team-pool/status",
        None,
    );
    assert_eq!(status.data()["report"]["available"], false);
    assert!(
        status.data()["report"]["borrower_entity_id"].is_string(),
        "{status:?}"
    );
    // Only the borrower checks in; the manage path is for whom a policy allows.
    let theirs = post(
        &bob,
        "check-in",
        json!({ "service_account_names": ["report"] }),
    );
    assert_eq!(theirs.status, 403, "{theirs:?}");
    let forced = server.call_as(
        &bob,
        reqwest::Method::POST,
        "database/library/manage/team-pool/check-in",
        Some(json!({})),
    );
    assert_eq!(forced.status, 403, "{forced:?}");

    // Renew is capped by max_ttl (2 h from the check-out).
    let renewed = server.write(
        "sys/leases/renew",
        json!({ "lease_id": lease_id, "increment": "3h" }),
    );
    let ttl = renewed.body["lease_duration"].as_i64().unwrap();
    assert!((7100..=7200).contains(&ttl), "{renewed:?}");

    // Alice checks in: the password lent stops working.
    let back = post(&alice, "check-in", json!({}));
    assert_eq!(back.data()["check_ins"], json!(["report"]));
    let after_check_in = live();
    assert_ne!(after_check_in, lent);
    // Her lease is stale: renewing fails, revoking changes nothing.
    let stale = server.write("sys/leases/renew", json!({ "lease_id": lease_id }));
    assert_eq!(stale.status, 400, "{stale:?}");
    assert!(
        stale.errors().contains("already checked in"),
        "{}",
        stale.errors()
    );

    // Bob borrows it (a token without an entity is matched by its token).
    let bobs = post(&bob, "check-out", json!({}));
    assert_eq!(bobs.data()["password"], after_check_in.as_str());
    let status = server
        .read("database/library/team-pool/status")
        .data()
        .clone();
    let hashed = status["report"]["borrower_client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(hashed.len(), 64, "{status}");
    assert!(!status.to_string().contains(&bob));
    assert_eq!(
        server
            .write("sys/leases/revoke", json!({ "lease_id": lease_id }))
            .status,
        204
    );
    assert_eq!(
        live(),
        after_check_in,
        "the stale lease's end changed nothing"
    );

    // Revoking by prefix ends Bob's check-out: rotated, free again.
    assert_eq!(
        server
            .write(
                "sys/leases/revoke-prefix/database/library/team-pool",
                json!({})
            )
            .status,
        204
    );
    assert_ne!(live(), after_check_in);
    stack.wait_until(
        "database/library/team-pool/status",
        "the account back",
        |s| s["report"]["available"] == true,
    );
    let history = server.read("database/library/team-pool/history");
    let triggers: Vec<Value> = history.data()["service_accounts"]["report"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["trigger"].clone())
        .collect();
    assert_eq!(triggers, ["lease-end", "check-in", "create"]);
    assert_eq!(
        server.list("database/library").data()["keys"],
        json!(["team-pool"])
    );
    assert_eq!(server.delete("database/library/team-pool").status, 204);
    assert_eq!(server.read("database/library/team-pool").status, 404);
}

/// `secrets tune` changes what the plugin's system view answers: a set
/// with ttl=0 and max_ttl=0 lends for the tuned mount's TTLs, on the next
/// check-out.
#[test]
fn a_tuned_mount_lends_accounts_for_its_tuned_ttls() {
    let stack = Stack::start_with("engine-tune", &[("account_ready_poll", "100ms")]);
    let server = &stack.server;
    stack.emulator.seed(json!({"alicloud": {"polardb_clusters": [{
        "id": "pc-1", "region": "cn-hangzhou", "databases": ["appdb"], "account_settle_seconds": 0.2
    }]}}));
    server.cli_ok(&[
        "secrets",
        "tune",
        "-default-lease-ttl=20m",
        "-max-lease-ttl=30m",
        "database/",
    ]);
    server
        .write(
            "database/library/team-report",
            json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                "service_account_names": "report", "ttl": 0, "max_ttl": 0 }),
        )
        .data();
    let out = server.write("database/library/team-report/check-out", json!({}));
    assert_eq!(out.body["lease_duration"], 1200, "{out:?}");
    let lease_id = out.body["lease_id"].as_str().unwrap().to_owned();
    let renewed = server.write(
        "sys/leases/renew",
        json!({ "lease_id": lease_id, "increment": "1h" }),
    );
    let ttl = renewed.body["lease_duration"].as_i64().unwrap();
    assert!(
        (1700..=1800).contains(&ttl),
        "capped by the tuned max: {renewed:?}"
    );
}

#[test]
fn team_policies_decide_who_reads_and_rotates_what() {
    let stack = Stack::start("engine-policies");
    let server = &stack.server;
    for (role, username) in [("team-a-app", "app"), ("team-b-report", "report")] {
        server.write(
            &format!("database/static-roles/{role}"),
            json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "username": username }),
        )
        .data();
    }
    let policy = r#"
path "database/static-creds/team-a-*" { capabilities = ["read"] }
path "database/rotate-role/team-a-*" { capabilities = ["update"] }
"#;
    assert_eq!(
        server
            .write("sys/policies/acl/team-a", json!({ "policy": policy }))
            .status,
        204
    );
    let token = server.write(
        "auth/token/create",
        json!({ "policies": ["team-a"], "ttl": "10m" }),
    );
    let token = token.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    stack.tokens.borrow_mut().push(token.clone());
    let as_a =
        |method: reqwest::Method, path: &str| server.call_as(&token, method, path, Some(json!({})));

    assert_eq!(
        as_a(reqwest::Method::GET, "database/static-creds/team-a-app").status,
        200
    );
    assert_eq!(
        as_a(reqwest::Method::POST, "database/rotate-role/team-a-app").status,
        200
    );
    assert_eq!(
        as_a(reqwest::Method::GET, "database/static-creds/team-b-report").status,
        403
    );
    assert_eq!(
        as_a(reqwest::Method::POST, "database/rotate-role/team-b-report").status,
        403
    );
    assert_eq!(
        as_a(reqwest::Method::GET, "database/static-roles/team-a-app").status,
        403
    );
    assert_eq!(
        as_a(reqwest::Method::GET, "database/config/ali").status,
        403
    );
    assert_eq!(stack.rotations("team-a-app").len(), 2);
    assert_eq!(stack.rotations("team-b-report").len(), 1);
}

#[test]
fn a_server_restart_rotates_due_roles_once_and_leaves_the_others() {
    let mut stack = Stack::start("engine-restart");
    let period = 10;
    for (role, username, rotation_period) in [
        ("due", "app", format!("{period}s")),
        ("idle", "report", "24h".into()),
    ] {
        stack
            .server
            .write(
                &format!("database/static-roles/{role}"),
                json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                        "username": username, "rotation_period": rotation_period }),
            )
            .data();
    }
    let due_before = stack.rotations("due").len();
    stack.server.stop();
    // Down for longer than the period: "due" is due when the server returns.
    let down_since = Instant::now();
    while down_since.elapsed() < Duration::from_secs(period + 2) {
        std::thread::sleep(Duration::from_millis(200));
    }
    // The due rotation may start while start_again still waits for the
    // node to report active: count from before the start.
    let starting = OffsetDateTime::now_utc();
    stack.server.start_again();
    let back = OffsetDateTime::now_utc();
    let role = stack.wait_until("database/static-roles/due", "the due rotation", |r| {
        r["status"] == "ok"
            && r["last_vault_rotation"]
                .as_str()
                .is_some_and(|t| time_of(&Value::from(t)) >= starting)
    });
    let rotated_at = time_of(&role["last_vault_rotation"]);
    assert!(
        rotated_at - back < time::Duration::seconds(5),
        "rotated {rotated_at} for a server back at {back}"
    );
    let since_restart: Vec<Value> = stack
        .rotations("due")
        .into_iter()
        .filter(|r| time_of(&r["started_at"]) >= starting)
        .collect();
    assert_eq!(
        since_restart.len(),
        1,
        "one rotation for the missed periods, no storm: {since_restart:?}"
    );
    assert_eq!(since_restart[0]["trigger"], "schedule");
    assert!(stack.rotations("due").len() > due_before);
    assert!(
        time_of(&role["next_vault_rotation"])
            > rotated_at + time::Duration::seconds(period as i64 - 1)
    );
    assert_eq!(
        stack.rotations("idle").len(),
        1,
        "the idle role is not due and did not rotate"
    );
    assert_eq!(
        stack.truth("polardb/pc-1/accounts/app")["password"],
        stack.password("due").as_str()
    );
}

#[test]
fn a_cron_schedule_rotates_at_its_slot_inside_the_window() {
    let stack = Stack::start("engine-schedule");
    let server = &stack.server;
    server.write(
        "database/static-roles/team-app",
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "username": "app",
                "rotation_schedule": "* * * * *", "rotation_window": "1h" }),
    )
    .data();
    let role = server.read("database/static-roles/team-app");
    let next = time_of(&role.data()["next_vault_rotation"]);
    assert_eq!(
        next.second(),
        0,
        "a cron slot is on a minute boundary: {next}"
    );
    assert_eq!(role.data()["rotation_schedule"], "* * * * *");
    assert_eq!(role.data()["rotation_window"], 3600);
    let created = stack.password("team-app");
    let role = stack.wait_until(
        "database/static-roles/team-app",
        "the slot's rotation",
        // Finished, not only applied: the marker step comes in between.
        |r| {
            r["status"] == "ok"
                && r["last_vault_rotation"]
                    .as_str()
                    .is_some_and(|t| time_of(&Value::from(t)) >= next)
        },
    );
    let rotated_at = time_of(&role["last_vault_rotation"]);
    assert!(
        rotated_at - next < time::Duration::seconds(5),
        "slot {next}, rotated {rotated_at}"
    );
    assert_eq!(stack.rotations("team-app")[0]["trigger"], "schedule");
    assert_ne!(stack.password("team-app"), created);
    assert_eq!(
        time_of(&role["next_vault_rotation"]),
        next + time::Duration::minutes(1)
    );
}

#[test]
fn rotate_root_replaces_the_access_key_and_the_external_target_propagates() {
    let stack = Stack::start("engine-root-external");
    let server = &stack.server;
    let rotated = server.write("database/rotate-root/ali", json!({}));
    assert!(rotated.status < 300, "{rotated:?}");
    assert!(!rotated.body.to_string().contains(fixture::ALI_SK));
    let config = server.read("database/config/ali");
    let new_key = config.data()["access_key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, fixture::ALI_AK);
    assert!(config.data()["last_root_rotation"].is_string());
    assert!(config.data().get("secret_key").is_none());
    let state = stack.truth("state");
    let keys: Vec<&str> = state["alicloud"]["users"][0]["access_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(keys, [new_key.as_str()], "the old key is deleted");

    // The new key signs: an external target propagates through both clouds.
    server
        .write(
            "database/static-roles/team-ext",
            json!({ "target": "external", "username": "sink",
                "dependents": ["dts:ali/dtsjob1/dest", "drs:hw/drsjob1/ta"] }),
        )
        .data();
    let given = "Given-By-Operator-9";
    let out = server.write(
        "database/rotate-role/team-ext",
        json!({ "password": given }),
    );
    assert_eq!(out.data()["status"], "ok", "{out:?}");
    assert_eq!(stack.truth("dts/dtsjob1")["dest"]["password"], given);
    assert_eq!(stack.truth("drs/drsjob1")["ta"]["password"], given);
    assert_eq!(stack.password("team-ext"), given);
    assert_eq!(stack.rotations("team-ext")[0]["trigger"], "propagate");
}

#[test]
fn bad_values_get_a_400_that_names_the_field() {
    let stack = Stack::start("engine-bad-input");
    let server = &stack.server;
    let role = |extra: Value| {
        let mut body = json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "username": "app" });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let cases = [
        (
            "database/static-roles/r",
            role(json!({ "rotation_period": "soon" })),
            "rotation_period",
        ),
        (
            "database/static-roles/r",
            role(json!({ "rotation_schedule": "every day" })),
            "rotation_schedule",
        ),
        (
            "database/static-roles/r",
            role(json!({ "dependents": "dts:ali/job" })),
            "dependents",
        ),
        (
            "database/static-roles/r",
            role(json!({ "connection": "missing" })),
            "missing",
        ),
        (
            "database/static-roles/r",
            role(json!({ "target": "mysql" })),
            "target",
        ),
        (
            "database/library/r",
            json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                    "service_account_names": ["report"], "ttl": "-1h" }),
            "ttl",
        ),
        (
            "database/config/x",
            json!({ "provider": "aws" }),
            "provider",
        ),
        (
            "database/config/x",
            json!({ "provider": "alicloud", "region": "cn-hangzhou", "access_key": "a",
                                     "secret_key": "s", "signature_version": "v9", "verify_connection": false }),
            "signature_version",
        ),
    ];
    for (path, body, field) in cases {
        let reply = server.write(path, body.clone());
        assert_eq!(reply.status, 400, "{path} {body}: {reply:?}");
        assert!(
            reply.errors().contains(field),
            "{path} {body}: {}",
            reply.errors()
        );
    }
    // Nothing half-written stays behind.
    assert_eq!(server.list("database/static-roles").status, 404);
    assert_eq!(server.list("database/roles").status, 404);
}

#[test]
fn concurrent_rotate_role_calls_never_run_two_rotations_at_once() {
    let stack = Stack::start("engine-concurrent");
    stack
        .server
        .write(
            "database/static-roles/team-app",
            json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                    "username": "app", "dependents": "dts:ali/dtsjob1/src" }),
        )
        .data();
    // Slow calls make the requests overlap.
    stack
        .emulator
        .set_faults(json!({ "seed": 1, "latency_ms": { "fixed": 150 } }));
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    stack
                        .server
                        .write("database/rotate-role/team-app", json!({}))
                        .status
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let succeeded = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!(succeeded + refused, statuses.len(), "{statuses:?}");
    assert!(
        succeeded >= 1 && refused >= 1,
        "the calls overlapped: {statuses:?}"
    );
    let account = stack.truth("polardb/pc-1/accounts/app");
    assert_eq!(
        account["new_passwords"].as_u64().unwrap() as usize,
        1 + succeeded,
        "one new password per rotation that ran: {statuses:?}"
    );
    let copy = &stack.truth("dts/dtsjob1")["src"];
    assert_eq!(copy["new_passwords"], account["new_passwords"]);
    assert_eq!(copy["password"], stack.password("team-app").as_str());
    assert_eq!(stack.rotations("team-app").len(), 1 + succeeded);
}

#[test]
fn password_policies_are_checked_against_the_target_rules_when_the_role_is_written() {
    let stack = Stack::start("engine-password-policy");
    let server = &stack.server;
    let fits = r#"
length = 24
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 1
}
rule "charset" {
  charset = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
  min-chars = 1
}
rule "charset" {
  charset = "0123456789"
  min-chars = 1
}
"#;
    let lowercase_only = r#"
length = 12
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
}
"#;
    for (name, policy) in [("fits-polardb", fits), ("lowercase", lowercase_only)] {
        let reply = server.write(
            &format!("sys/policies/password/{name}"),
            json!({ "policy": policy }),
        );
        assert!(reply.status < 300, "{name}: {reply:?}");
    }
    let role = |policy: &str| {
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                "username": "app", "password_policy": policy })
    };
    let refused = server.write("database/static-roles/team-app", role("lowercase"));
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(
        refused.errors().contains("password_policy")
            || refused.errors().contains("password policy"),
        "{}",
        refused.errors()
    );
    let missing = server.write("database/static-roles/team-app", role("no-such-policy"));
    assert_eq!(missing.status, 400, "{missing:?}");
    assert!(
        missing.errors().contains("no-such-policy"),
        "{}",
        missing.errors()
    );
    assert_eq!(
        stack.truth("polardb/pc-1/accounts/app")["changes"],
        0,
        "nothing was rotated"
    );

    server
        .write("database/static-roles/team-app", role("fits-polardb"))
        .data();
    let password = stack.password("team-app");
    assert_eq!(password.len(), 24, "generated by the policy");
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(
        stack.truth("polardb/pc-1/accounts/app")["password"],
        password.as_str()
    );
}

#[test]
fn provider_tls_is_verified_and_a_private_ca_can_be_trusted() {
    // The emulator serves HTTPS with a certificate no public root signs.
    let dir = server::test_dir("engine-tls-certs");
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let certificate = params.self_signed(&key).unwrap().pem();
    std::fs::write(dir.join("cert.pem"), &certificate).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    let cert_path = dir.join("cert.pem").display().to_string();
    let key_path = dir.join("key.pem").display().to_string();
    let emulator = Emulator::start_trusting(
        &["--tls-cert", &cert_path, "--tls-key", &key_path],
        Some(&certificate),
    );
    emulator.seed(fixture::seed());
    assert!(emulator.url.starts_with("https://"), "{}", emulator.url);
    let server = Server::start("engine-tls");
    server.enable("database", TUNING);
    let connection = |extra: Value| {
        let mut body = json!({ "provider": "alicloud", "region": "cn-hangzhou", "access_key": fixture::ALI_AK,
                               "secret_key": fixture::ALI_SK, "endpoint": emulator.url, "allowed_roles": "*" });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let untrusted = server.write("database/config/ali", connection(json!({})));
    assert_eq!(untrusted.status, 400, "{untrusted:?}");
    assert!(
        untrusted.errors().contains("certificate"),
        "{}",
        untrusted.errors()
    );
    assert!(!untrusted.body.to_string().contains(fixture::ALI_SK));
    assert_eq!(
        emulator.calls("polardb.DescribeRegions"),
        0,
        "nothing reached the server"
    );

    server
        .write(
            "database/config/ali",
            connection(json!({ "ca_certificate": certificate })),
        )
        .data();
    server.write(
        "database/static-roles/team-app",
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "username": "app" }),
    )
    .data();
    let password = server.read("database/static-creds/team-app").data()["password"].clone();
    assert_eq!(
        emulator.get("polardb/pc-1/accounts/app")["password"],
        password
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A short drift check interval, so a test sees drift within seconds.
const DRIFT_CHECK: (&str, &str) = ("drift_check_interval", "2s");

/// DCS old-password attempts DCS refused on an instance, ever.
fn wrong_attempts(stack: &Stack, instance: &str) -> u64 {
    stack.truth(&format!("dcs/{instance}"))["wrong_old_passwords"]
        .as_u64()
        .expect("the emulator counts wrong old passwords")
}

/// `bao operator raft snapshot save` into the server's directory.
fn save_snapshot(server: &Server) -> String {
    let file = server.dir.join("before.snap").display().to_string();
    server.cli_ok(&["operator", "raft", "snapshot", "save", &file]);
    file
}

/// `bao operator raft snapshot restore`, then waits until the server is
/// active and the mount answers again.
fn restore_snapshot(server: &Server, file: &str) {
    server.cli_ok(&["operator", "raft", "snapshot", "restore", file]);
    server.wait_until_active();
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.read("database/config/hw").status != 200 {
        assert!(Instant::now() < deadline, "the mount did not come back");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_snapshot_restore_is_reported_as_drift_and_each_way_out_repairs_it() {
    let stack = Stack::start_with("engine-restore", &[DRIFT_CHECK]);
    stack.emulator.seed(json!({ "huaweicloud": {
        "dcs_instances": [{ "id": "dcs-2", "project_id": fixture::PROJECT, "password": fixture::INITIAL }],
        "drs_jobs": [{ "id": "drsjob2", "project_id": fixture::PROJECT, "status": "INCRE_TRANSFER_STARTED",
                       "so": { "password": fixture::INITIAL }, "ta": { "password": "Other-Pass-1" } }]
    }}));
    let server = &stack.server;
    // Each kind of target, with a copy, once per way out.
    let roles = [
        (
            "polar-repair",
            json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
            "username": "app", "dependents": "dts:ali/dtsjob1/src", "rotation_period": "1h" }),
        ),
        (
            "polar-adopt",
            json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
            "username": "report", "rotation_period": "1h" }),
        ),
        (
            "dcs-repair",
            json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-1",
            "password": fixture::INITIAL, "dependents": "drs:hw/drsjob1/so", "rotation_period": "1h" }),
        ),
        (
            "dcs-adopt",
            json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-2",
            "password": fixture::INITIAL, "dependents": "drs:hw/drsjob2/so", "rotation_period": "1h" }),
        ),
    ];
    for (name, body) in &roles {
        server
            .write(&format!("database/static-roles/{name}"), body.clone())
            .data();
    }
    let truth_of = |name: &str| match name {
        "polar-repair" => stack.truth("polardb/pc-1/accounts/app")["password"].clone(),
        "polar-adopt" => stack.truth("polardb/pc-1/accounts/report")["password"].clone(),
        "dcs-repair" => stack.truth("dcs/dcs-1")["password"].clone(),
        _ => stack.truth("dcs/dcs-2")["password"].clone(),
    };
    for (name, _) in &roles {
        stack.wait_until(
            &format!("database/static-roles/{name}"),
            "the marker",
            |r| r["drift_check"]["state"] == "in_sync",
        );
    }
    let file = save_snapshot(server);
    for _ in 0..3 {
        for (name, _) in &roles {
            server
                .write(&format!("database/rotate-role/{name}"), json!({}))
                .data();
        }
    }
    for (name, _) in &roles {
        assert_eq!(truth_of(name), stack.password(name).as_str());
    }
    let updates_before = stack.emulator.calls("dcs.UpdatePassword");

    let restored = Instant::now();
    restore_snapshot(server, &file);
    let back = Instant::now();
    for (name, _) in &roles {
        let stale = stack.password(name);
        assert_ne!(
            truth_of(name),
            stale.as_str(),
            "{name}: Vault holds the snapshot's password"
        );
        let role = stack.wait_until(
            &format!("database/static-roles/{name}"),
            "drift after the restore",
            |r| r["status"] == "drifted",
        );
        assert_eq!(role["drift"]["kind"], "newer_password", "{role}");
        assert!(
            role["drift"]["what_to_do"]
                .as_str()
                .unwrap()
                .contains(&format!("rotate-role/{name}")),
            "{role}"
        );
        assert!(
            role["next_vault_rotation"].is_null(),
            "automated rotation stops: {role}"
        );
    }
    let detected = restored.elapsed();
    eprintln!(
        "drift of every role reported {:.1} s after the restore began, {:.1} s after the mount answered again",
        detected.as_secs_f64(),
        (detected - (back - restored)).as_secs_f64()
    );
    assert!(detected < Duration::from_secs(30), "{detected:?}");
    let creds = server.read("database/static-creds/dcs-repair");
    assert_eq!(creds.data()["status"], "drifted");
    assert!(creds.data().get("ttl").is_none() && creds.data().get("rotation_period").is_none());
    assert!(
        creds.body["warnings"]
            .to_string()
            .contains("rotate-role/dcs-repair"),
        "{creds:?}"
    );

    // Way out 1: a reset-based rotation. Way out 2: adopt what the target holds.
    for name in ["polar-repair", "dcs-repair"] {
        let repaired = server.write(&format!("database/rotate-role/{name}"), json!({}));
        assert_eq!(repaired.data()["status"], "ok", "{name}: {repaired:?}");
    }
    for name in ["polar-adopt", "dcs-adopt"] {
        let held = truth_of(name).as_str().unwrap().to_owned();
        let adopted = server.write(
            &format!("database/rotate-role/{name}"),
            json!({ "password": held }),
        );
        assert_eq!(adopted.data()["status"], "ok", "{name}: {adopted:?}");
        assert_eq!(stack.password(name), held);
    }
    for ((name, _), trigger) in roles.iter().zip(["repair", "adopt", "repair", "adopt"]) {
        let role = server.read(&format!("database/static-roles/{name}"));
        assert_eq!(role.data()["status"], "ok", "{name}");
        assert!(role.data()["drift"].is_null());
        assert_eq!(role.data()["drift_check"]["state"], "in_sync", "{name}");
        assert!(role.data()["next_vault_rotation"].is_string());
        let password = stack.password(name);
        assert_eq!(truth_of(name), password.as_str(), "{name}");
        let history = stack.rotations(name);
        assert_eq!(history[0]["trigger"], trigger, "{name}: {history:?}");
        assert_eq!(
            history.last().unwrap()["trigger"],
            "create",
            "history kept: {history:?}"
        );
    }
    assert_eq!(
        stack.truth("dts/dtsjob1")["src"]["password"],
        stack.password("polar-repair").as_str()
    );
    assert_eq!(
        stack.truth("drs/drsjob1")["so"]["password"],
        stack.password("dcs-repair").as_str()
    );
    assert_eq!(
        stack.truth("drs/drsjob2")["so"]["password"],
        stack.password("dcs-adopt").as_str()
    );
    assert_eq!(
        stack.emulator.calls("dcs.UpdatePassword"),
        updates_before,
        "no old password offered after the restore"
    );
    for instance in ["dcs-1", "dcs-2"] {
        assert_eq!(wrong_attempts(&stack, instance), 0, "{instance}");
    }
    // Back to normal: the adopted DCS role rotates with its old password.
    server
        .write("database/rotate-role/dcs-adopt", json!({}))
        .data();
    assert_eq!(
        stack.emulator.calls("dcs.UpdatePassword"),
        updates_before + 1
    );
    assert_eq!(wrong_attempts(&stack, "dcs-2"), 0);
    assert_eq!(truth_of("dcs-adopt"), stack.password("dcs-adopt").as_str());
}

#[test]
fn a_plugin_reload_cutting_in_flight_dcs_changes_spends_no_old_password_attempt() {
    const ROLES: usize = 20;
    let stack = Stack::start("engine-reload-cut");
    let server = &stack.server;
    let instances: Vec<String> = (0..ROLES).map(|i| format!("dcs-r{i:02}")).collect();
    stack
        .emulator
        .seed(json!({ "huaweicloud": { "dcs_instances": instances.iter()
        .map(|id| json!({ "id": id, "project_id": fixture::PROJECT, "password": fixture::INITIAL }))
        .collect::<Vec<_>>() }}));
    // Long enough for the slow answers below: they are cut, not timed out.
    server
        .write("database/config/hw", json!({ "request_timeout": "60s" }))
        .data();
    // DCS applies each change at once and answers 60 s later.
    stack.emulator.set_faults(json!({
        "latency_ms": { "fixed": 60_000 }, "apis": ["dcs.UpdatePassword"]
    }));
    // Scheduled rotations: OpenBao waits for requests before a reload, not
    // for the plugin's background work, which the reload cuts.
    for (i, instance) in instances.iter().enumerate() {
        server.write(
            &format!("database/static-roles/r{i:02}"),
            json!({ "target": "dcs-instance", "connection": "hw", "instance_id": instance,
                    "password": fixture::INITIAL, "skip_import_rotation": true, "rotation_period": "5s" }),
        )
        .data();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while stack.emulator.calls("dcs.UpdatePassword") < ROLES as u64 {
        assert!(Instant::now() < deadline, "the changes were not all sent");
        std::thread::sleep(Duration::from_millis(50));
    }
    for i in 0..ROLES {
        let role = server.read(&format!("database/static-roles/r{i:02}"));
        assert_eq!(
            role.data()["rotation_in_progress"]["phase"],
            "prepared",
            "r{i:02}"
        );
    }
    let reload = Instant::now();
    server.cli_ok(&["plugin", "reload", "-plugin", server::PLUGIN_NAME]);
    assert!(
        reload.elapsed() < Duration::from_secs(30),
        "the reload waited for the changes"
    );
    stack.emulator.set_faults(json!({}));
    for i in 0..ROLES {
        // No rotation after the resumed one, so every call can be counted.
        server
            .write(
                &format!("database/static-roles/r{i:02}"),
                json!({ "disable_automated_rotation": true }),
            )
            .data();
    }
    for (i, instance) in instances.iter().enumerate() {
        let role = format!("r{i:02}");
        let read = stack.wait_until(
            &format!("database/static-roles/{role}"),
            "the resumed rotation",
            |r| r["status"] == "ok" && r["rotation_in_progress"].is_null(),
        );
        let password = stack.password(&role);
        assert_ne!(password, fixture::INITIAL, "{role} rotated");
        assert_eq!(
            stack.truth(&format!("dcs/{instance}"))["password"],
            password.as_str()
        );
        assert_eq!(wrong_attempts(&stack, instance), 0, "{instance}");
        assert_eq!(
            read["dcs_attempts_left"],
            Value::Null,
            "no refusal reported"
        );
        // The cut rotation, finished by its second attempt; the adoption.
        let rotations = stack.rotations(&role);
        let triggers: Vec<&str> = rotations
            .iter()
            .map(|r| r["trigger"].as_str().unwrap())
            .collect();
        assert_eq!(triggers, ["schedule", "adopt"], "{role}: {rotations:?}");
        assert_eq!(
            rotations[0]["outcome"], "succeeded",
            "{role}: {rotations:?}"
        );
        assert_eq!(rotations[0]["attempts"], 2, "{role}: {rotations:?}");
    }
    assert_eq!(
        stack.emulator.calls("dcs.UpdatePassword"),
        ROLES as u64,
        "an UpdatePassword whose outcome was cut is never sent again"
    );
    assert_eq!(stack.emulator.calls("dcs.ResetPassword"), ROLES as u64);
}

#[test]
fn a_second_mount_cannot_silently_own_a_target_and_a_take_over_is_reported_as_drift() {
    let stack = Stack::start_with("engine-claims", &[DRIFT_CHECK]);
    let server = &stack.server;
    let options: Vec<(&str, &str)> = TUNING.iter().copied().chain([DRIFT_CHECK]).collect();
    server.enable("team-b", &options);
    for (name, connection) in [("ali", "alicloud"), ("hw", "huaweicloud")] {
        let mut body = server
            .read(&format!("database/config/{name}"))
            .data()
            .clone();
        body["secret_key"] = json!(if connection == "alicloud" {
            fixture::ALI_SK
        } else {
            fixture::HW_SK
        });
        body.as_object_mut().unwrap().retain(|k, _| {
            [
                "provider",
                "region",
                "access_key",
                "secret_key",
                "project_id",
                "endpoint",
                "allowed_roles",
            ]
            .contains(&k.as_str())
        });
        body["project_id"] = json!(if connection == "huaweicloud" {
            fixture::PROJECT
        } else {
            ""
        });
        server.write(&format!("team-b/config/{name}"), body).data();
    }
    let dcs = json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-1",
                      "dependents": "drs:hw/drsjob1/so", "rotation_period": "1h" });
    let polardb = json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                          "username": "app", "rotation_period": "1h" });
    server
        .write("database/static-roles/cache", dcs.clone())
        .data();
    server
        .write("database/static-roles/app", polardb.clone())
        .data();
    let owner_a = server.read("database/static-roles/cache").data()["mount_owner_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The second mount is refused, for either kind of target.
    for (name, body) in [("cache", &dcs), ("app", &polardb)] {
        let refused = server.write(&format!("team-b/static-roles/{name}"), body.clone());
        assert_eq!(refused.status, 409, "{name}: {refused:?}");
        let message = refused.errors();
        assert!(
            message.contains(&owner_a) && message.contains("take_over=true"),
            "{message}"
        );
        assert_eq!(
            server.read(&format!("team-b/static-roles/{name}")).status,
            404
        );
    }
    let changes = stack.truth("dcs/dcs-1")["changes"].clone();

    // Taking over: team-b owns the instance; the first mount is told.
    let mut take_over = dcs.clone();
    take_over["take_over"] = json!(true);
    server.write("team-b/static-roles/cache", take_over).data();
    let owner_b = server.read("team-b/static-roles/cache").data()["mount_owner_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(owner_a, owner_b);
    let held_by_b = server.read("team-b/static-creds/cache").data()["password"].clone();
    assert_eq!(stack.truth("dcs/dcs-1")["password"], held_by_b);
    let role = stack.wait_until("database/static-roles/cache", "claimed_elsewhere", |r| {
        r["status"] == "drifted"
    });
    assert_eq!(role["drift"]["kind"], "claimed_elsewhere", "{role}");
    assert!(
        role["drift"]["detail"].as_str().unwrap().contains(&owner_b),
        "{role}"
    );
    assert!(role["next_vault_rotation"].is_null(), "{role}");
    assert_ne!(stack.truth("dcs/dcs-1")["changes"], changes);
    assert_eq!(wrong_attempts(&stack, "dcs-1"), 0);
    // The untouched PolarDB role stays in sync.
    assert_eq!(
        server.read("database/static-roles/app").data()["status"],
        "ok"
    );

    // Deleting team-b's role removes its marker: the instance is free.
    server.delete("team-b/static-roles/cache");
    let description = stack.truth("dcs/dcs-1")["description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!description.contains(&owner_b), "{description:?}");
}

#[test]
fn busy_targets_defer_and_given_passwords_are_checked_before_anything_is_pushed() {
    let stack = Stack::start("engine-busy-given");
    let server = &stack.server;
    server
        .write(
            "database/static-roles/cache",
            json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-1",
                "password": fixture::INITIAL, "dependents": "drs:hw/drsjob1/so" }),
        )
        .data();
    server.write(
        "database/static-roles/app",
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "username": "app" }),
    )
    .data();

    // A restarting instance and an account being created defer, untouched.
    for (role, truth, busy, ready) in [
        ("cache", "dcs/dcs-1", "RESTARTING", "RUNNING"),
        ("app", "polardb/pc-1/accounts/app", "Creating", "Available"),
    ] {
        let before = stack.truth(truth);
        stack.emulator.patch_status(truth, busy);
        let deferred = server.write(&format!("database/rotate-role/{role}"), json!({}));
        assert_eq!(
            deferred.data()["status"],
            "deferred",
            "{role}: {deferred:?}"
        );
        assert!(
            deferred.data()["reason"].as_str().unwrap().contains(busy),
            "{deferred:?}"
        );
        assert_eq!(
            stack.truth(truth)["changes"],
            before["changes"],
            "{role}: untouched"
        );
        stack.emulator.patch_status(truth, ready);
        stack.wait_until(
            &format!("database/static-roles/{role}"),
            "the deferred rotation",
            |r| r["status"] == "ok",
        );
        assert_eq!(
            stack.truth(truth)["password"],
            stack.password(role).as_str()
        );
        let rotations = stack.rotations(role);
        assert_eq!(rotations[0]["trigger"], "manual", "{rotations:?}");
        assert_eq!(rotations[0]["outcome"], "succeeded", "{rotations:?}");
    }
    assert_eq!(
        stack.truth("drs/drsjob1")["so"]["password"],
        stack.password("cache").as_str()
    );
    // A stuck instance fails with what to check, and nothing changes.
    stack.emulator.patch_status("dcs/dcs-1", "FROZEN");
    let failed = server.write("database/rotate-role/cache", json!({}));
    assert_eq!(failed.status, 502, "{failed:?}");
    assert!(
        failed.errors().contains("FROZEN") && failed.errors().contains("console"),
        "{}",
        failed.errors()
    );
    stack.emulator.patch_status("dcs/dcs-1", "RUNNING");

    // Given passwords break no dependent's rule before anything is pushed.
    server
        .write(
            "database/static-roles/ext",
            json!({ "target": "external", "username": "sink",
                "dependents": ["dts:ali/dtsjob1/dest", "drs:hw/drsjob1/ta"] }),
        )
        .data();
    let copies = || {
        (
            stack.truth("dts/dtsjob1")["dest"]["changes"].clone(),
            stack.truth("drs/drsjob1")["ta"]["changes"].clone(),
        )
    };
    let untouched = copies();
    for (given, rule) in [
        ("short", "8-128"),
        (
            "Bad pw with spaces and é",
            "printable ASCII without whitespace",
        ),
    ] {
        let refused = server.write("database/rotate-role/ext", json!({ "password": given }));
        assert_eq!(refused.status, 400, "{refused:?}");
        let message = refused.errors();
        assert!(
            message.contains(rule) && message.contains("dts:ali/dtsjob1/dest"),
            "{message}"
        );
        assert!(
            !message.contains(given),
            "the password is never quoted: {message}"
        );
    }
    assert_eq!(copies(), untouched, "nothing pushed");
    let given = "Given-By-Operator-9";
    server
        .write("database/rotate-role/ext", json!({ "password": given }))
        .data();
    assert_eq!(stack.truth("dts/dtsjob1")["dest"]["password"], given);
    let again = server.write("database/rotate-role/ext", json!({ "password": given }));
    assert_eq!(again.status, 400, "{again:?}");
    assert!(
        again.errors().contains("ModifyDtsJobPassword"),
        "{}",
        again.errors()
    );
    // An adopted password must be one the target can hold.
    let adopt = server.write(
        "database/rotate-role/app",
        json!({ "password": "only-lower-case" }),
    );
    assert_eq!(adopt.status, 400, "{adopt:?}");
    assert!(adopt.errors().contains("PolarDB"), "{}", adopt.errors());
}

#[test]
fn a_restore_across_rotate_root_stops_the_connection_and_says_how_to_recover() {
    let stack = Stack::start_with("engine-restore-root", &[DRIFT_CHECK]);
    let server = &stack.server;
    server
        .write(
            "database/static-roles/cache",
            json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-1",
                "password": fixture::INITIAL, "rotation_period": "1h" }),
        )
        .data();
    let file = save_snapshot(server);
    server.write("database/rotate-root/hw", json!({})).data();
    let state = stack.truth("state");
    let current = &state["huaweicloud"]["users"][0]["access_keys"][0];
    assert_ne!(current["access"], fixture::HW_AK, "the old key is deleted");
    restore_snapshot(server, &file);
    assert_eq!(
        server.read("database/config/hw").data()["access_key"],
        fixture::HW_AK
    );

    // The drift check's read is the first call with the deleted key.
    let config = stack.wait_until("database/config/hw", "the rejected key", |c| {
        !c["credentials_rejected"].is_null()
    });
    let message = config["credentials_rejected"]["message"].as_str().unwrap();
    assert!(
        message.contains("rotate-root") && message.contains("config/hw"),
        "{message}"
    );
    // The check that met the rejection records it on the role, then lets go.
    stack.wait_until("database/static-roles/cache", "the failed check", |r| {
        r["drift_check"]["state"] == "unavailable"
    });
    let refused = server.write("database/rotate-role/cache", json!({}));
    assert_eq!(refused.status, 502, "{refused:?}");
    assert!(
        refused.errors().contains("config/hw"),
        "{}",
        refused.errors()
    );
    assert!(
        !refused.errors().contains("refused the change"),
        "{}",
        refused.errors()
    );
    let role = server.read("database/static-roles/cache");
    assert_eq!(role.data()["status"], "failed");
    assert!(
        role.data()["next_vault_rotation"].is_null(),
        "retries stop: {role:?}"
    );
    assert!(
        role.data()["status_reason"]
            .as_str()
            .unwrap()
            .contains("config/hw"),
        "{role:?}"
    );
    // Nothing more is sent with the rejected key, whatever runs.
    let rejected = stack.emulator.counters()["outcomes"]["auth_failed"].clone();
    assert_eq!(rejected, 1, "one refusal, then no more calls");
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(5) {
        assert_eq!(
            stack.emulator.counters()["outcomes"]["auth_failed"],
            rejected
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Writing the current key resumes the role.
    server
        .write(
            "database/config/hw",
            json!({ "access_key": current["access"], "secret_key": current["secret"] }),
        )
        .data();
    assert!(server.read("database/config/hw").data()["credentials_rejected"].is_null());
    stack.wait_until("database/static-roles/cache", "the resumed rotation", |r| {
        r["status"] == "ok"
    });
    assert_eq!(
        stack.truth("dcs/dcs-1")["password"],
        stack.password("cache").as_str()
    );
    assert_eq!(wrong_attempts(&stack, "dcs-1"), 0);
}

/// Responses to reads of `path` in the server's audit log.
fn audited_reads(server: &Server, path: &str) -> usize {
    std::fs::read_to_string(server.audit_log_path())
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| entry["type"] == "response" && entry["request"]["path"] == path)
        .count()
}

#[test]
fn bao_agent_follows_rotations_as_documented_and_reads_idle_roles_once_per_render_interval() {
    const INTERVAL: u64 = 5;
    let stack = Stack::start("engine-agent");
    let server = &stack.server;
    server
        .write(
            "database/static-roles/scheduled",
            json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                "username": "app", "rotation_period": "20s" }),
        )
        .data();
    server
        .write(
            "database/static-roles/manual",
            json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-1",
                "password": fixture::INITIAL, "rotation_period": "45s" }),
        )
        .data();
    server
        .write(
            "database/static-roles/idle",
            json!({ "target": "external", "username": "sink" }),
        )
        .data();
    server
        .write(
            "database/rotate-role/idle",
            json!({ "password": "Given-By-Operator-9" }),
        )
        .data();
    let idle = server.read("database/static-creds/idle");
    assert!(idle.data().get("ttl").is_none() && idle.data().get("rotation_period").is_none());

    let manual_next =
        time_of(&server.read("database/static-roles/manual").data()["next_vault_rotation"]);
    let agent = Agent::start(
        server,
        &["scheduled", "manual", "idle"],
        &format!("{INTERVAL}s"),
    );
    let started = Instant::now();
    for role in ["scheduled", "manual", "idle"] {
        agent.wait_for(role, &stack.password(role), Duration::from_secs(30));
    }
    let reads_at_start = audited_reads(server, "database/static-creds/idle");

    // A manual rotation is picked up when the TTL the agent last saw ends,
    // not before.
    let before_manual = stack.password("manual");
    server
        .write("database/rotate-role/manual", json!({}))
        .data();
    let after_manual = stack.password("manual");
    assert_ne!(after_manual, before_manual);
    let window = Instant::now();
    while OffsetDateTime::now_utc() < manual_next - time::Duration::seconds(2)
        && window.elapsed() < Duration::from_secs(3)
    {
        assert_eq!(
            agent.password("manual"),
            before_manual,
            "picked up before its TTL ended"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let waited = agent.wait_for("manual", &after_manual, Duration::from_secs(70));
    let at = OffsetDateTime::now_utc();
    assert!(
        at >= manual_next,
        "rendered at {at}, before the TTL ended at {manual_next}"
    );

    // A scheduled rotation is followed: rendered right after it happened.
    // One read gives both the password and when it was set: reading them
    // apart could pair the new password with the previous rotation's time.
    let first = stack.password("scheduled");
    let creds = stack.wait_until(
        "database/static-creds/scheduled",
        "the scheduled rotation",
        |c| c["password"] != first.as_str(),
    );
    let rotated_at = time_of(&creds["last_vault_rotation"]);
    let rotated = creds["password"].as_str().expect("a password").to_owned();
    agent.wait_for("scheduled", &rotated, Duration::from_secs(30));
    let lag = OffsetDateTime::now_utc() - rotated_at;
    eprintln!(
        "agent rendered the scheduled rotation {lag} after it; the manual one {waited:?} after it"
    );
    assert!(lag < time::Duration::seconds(10), "{lag}");

    // The idle role: one read per render interval (the agent staggers it
    // to 85-95% of the interval), where it read every second before.
    let elapsed = started.elapsed().as_secs_f64();
    let reads = audited_reads(server, "database/static-creds/idle") - reads_at_start;
    let allowed = (elapsed / (0.85 * INTERVAL as f64)).ceil() as usize;
    eprintln!(
        "agent reads of a role with no next rotation: {reads} in {elapsed:.0} s ({:.1} per minute, render interval {INTERVAL} s)",
        reads as f64 * 60.0 / elapsed
    );
    assert!(reads <= allowed, "{reads} reads in {elapsed:.0} s");
}
