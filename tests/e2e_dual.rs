//! Dual-account static roles end to end (issue 12): a real server (OpenBao
//! by default, see `support/server.rs`) with the release plugin mounted at
//! `database/`, the emulator binary, and real servers behind the emulated
//! resources: a PolarDB cluster backed by PostgreSQL and a DCS instance
//! backed by Redis (`make tools`). What a user would check is checked with
//! real logins: the account `static-creds` hands out logs in, the previous
//! account keeps working until the next rotation, and then its old
//! password stops working. Waits poll with a deadline.

#[path = "support/emulator.rs"]
mod emulator;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/redis.rs"]
mod redis;
#[path = "support/server.rs"]
mod server;
#[path = "support/tools.rs"]
mod tools;

use std::time::{Duration, Instant};

use emulator::{Emulator, fixture};
use serde_json::{Value, json};
use server::Server;

/// Short retry and deferral delays, so settling tasks converge in seconds.
const TUNING: &[(&str, &str)] = &[
    ("retry_base", "50ms"),
    ("retry_cap", "400ms"),
    ("defer_retry", "200ms"),
    ("jitter", "0s"),
];
const CLUSTER: &str = "pc-dual";
const INSTANCE: &str = "dcs-dual";
const SEEDED: &str = "Seeded-Pass-1";
const BLUE: &str = "app_blue";
const GREEN: &str = "app_green";

/// The emulator (jobs log in every 100 ms) seeded with the fixture's users
/// and `seed`, and the server with the plugin and both connections.
fn stack(name: &str, seed: Value) -> (Emulator, Server) {
    let emulator = Emulator::start_with(&["--job-login-interval-ms", "100"]);
    emulator.seed(fixture::seed());
    emulator.seed(seed);
    let server = Server::start(name);
    server.enable("database", TUNING);
    for (name, body) in fixture::connections(&emulator.url, "5s") {
        server
            .write(&format!("database/config/{name}"), body)
            .data();
    }
    (emulator, server)
}

/// Polls `check` until it holds (bounded by 60 s).
fn wait_for(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match check() {
            Ok(()) => return,
            Err(why) => assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {why}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The role once no rotation is in flight and its status is `ok`.
fn settled(server: &Server, role: &str) -> Value {
    let mut shown = Value::Null;
    wait_for(&format!("role {role} to settle"), || {
        let reply = server.read(&format!("database/static-roles/{role}"));
        shown = reply.body["data"].clone();
        if reply.status == 200 && shown["rotation_in_progress"].is_null() && shown["status"] == "ok"
        {
            Ok(())
        } else {
            Err(format!("{} {}", reply.status, reply.body))
        }
    });
    shown
}

/// `static-creds`: (username, password, last_username, last_password).
fn creds(server: &Server, role: &str) -> [String; 4] {
    let data = server
        .read(&format!("database/static-creds/{role}"))
        .data()
        .clone();
    ["username", "password", "last_username", "last_password"].map(|key| {
        data[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in {data}"))
            .to_owned()
    })
}

/// `rotate-role`, then waits for the rotation to finish.
fn rotate(server: &Server, role: &str) -> Value {
    server.write_rotating(&format!("database/rotate-role/{role}"), json!({}));
    settled(server, role)
}

/// The history's rotations (newest first) oldest first, as (active_before, active_after).
fn flips(server: &Server, role: &str) -> Vec<(Value, Value)> {
    let history = server
        .read(&format!("database/history/{role}"))
        .data()
        .clone();
    let mut rotations: Vec<Value> = history["rotations"]
        .as_array()
        .unwrap_or_else(|| panic!("rotations in {history}"))
        .clone();
    for rotation in &rotations {
        assert_eq!(rotation["outcome"], "succeeded", "{history}");
    }
    rotations.reverse(); // newest first
    rotations
        .iter()
        .map(|r| (r["active_before"].clone(), r["active_after"].clone()))
        .collect()
}

/// The checks both clouds share: `login(user, password)` is a real login.
fn takes_turns(
    server: &Server,
    role: &str,
    login: &dyn Fn(&str, &str) -> Result<(), String>,
    settle: &dyn Fn(),
) {
    let shown = settled(server, role);
    assert_eq!(shown["usernames"], json!([BLUE, GREEN]), "{shown}");
    // Creating the role rotated both accounts: Vault knows both passwords
    // and both log in.
    let [u1, p1, last_user, last_password] = creds(server, role);
    assert_eq!(shown["active_username"], u1.as_str());
    assert_eq!(shown["inactive_username"], last_user.as_str());
    assert_ne!(u1, last_user);
    assert_ne!(p1, SEEDED);
    assert_ne!(last_password, SEEDED);
    login(&u1, &p1).expect("the active account logs in");
    login(&last_user, &last_password).expect("the inactive account logs in");
    assert!(login(&u1, SEEDED).is_err(), "the seeded password is gone");

    // First rotation: the other account becomes active with a new
    // password; the account clients used keeps working.
    let shown = rotate(server, role);
    settle();
    let [u2, p2, last_user, last_password] = creds(server, role);
    assert_ne!(u2, u1);
    assert_eq!(
        (last_user.as_str(), last_password.as_str()),
        (u1.as_str(), p1.as_str())
    );
    assert_eq!(shown["active_username"], u2.as_str());
    assert_eq!(shown["inactive_username"], u1.as_str());
    login(&u2, &p2).expect("the newly active account logs in");
    login(&u1, &p1).expect("the previous account still logs in with its password");

    // Second rotation: back to the first account, with a new password.
    let shown = rotate(server, role);
    settle();
    let [u3, p3, last_user, last_password] = creds(server, role);
    assert_eq!(u3, u1);
    assert_ne!(p3, p1);
    assert_eq!(
        (last_user.as_str(), last_password.as_str()),
        (u2.as_str(), p2.as_str())
    );
    assert_eq!(shown["active_username"], u1.as_str());
    assert_eq!(shown["inactive_username"], u2.as_str());
    login(&u1, &p3).expect("the active account logs in with its new password");
    let refused = login(&u1, &p1).expect_err("the first account's old password is changed");
    assert!(!refused.is_empty());
    login(&u2, &p2).expect("the previous account still logs in");

    // History: two import rotations at create, then the two flips.
    let flips = flips(server, role);
    let tail = &flips[flips.len().saturating_sub(2)..];
    assert_eq!(
        tail,
        [(json!(u1), json!(u2)), (json!(u2), json!(u1)),],
        "{flips:?}"
    );
    assert_eq!(flips.len(), 4, "{flips:?}");
}

#[test]
fn a_dual_polardb_role_hands_out_accounts_that_log_in_to_postgres() {
    let pg = postgres::Postgres::start();
    let grants = json!([{ "db_name": "appdb", "privilege": "ReadWrite" }]);
    let (emulator, server) = stack(
        "dual-polardb",
        json!({"alicloud": {
            "polardb_clusters": [{
                "id": CLUSTER, "region": "cn-hangzhou", "engine": "PostgreSQL",
                "databases": ["appdb"], "account_settle_seconds": 0.0, "backing": pg.backing(),
                "accounts": [
                    { "name": BLUE, "password": SEEDED, "type": "Normal", "privileges": grants },
                    { "name": GREEN, "password": SEEDED, "type": "Normal", "privileges": grants }
                ]
            }],
            "dts_jobs": [{ "id": "dts-green", "region": "cn-hangzhou", "status": "Synchronizing",
                "src": { "user": GREEN, "password": SEEDED, "instance_id": CLUSTER },
                "dest": { "user": "sink", "password": "Other-Pass-1" } }]
        }}),
    );
    // The seed reached PostgreSQL: both accounts log in.
    pg.login(BLUE, SEEDED).expect("app_blue seeded");
    pg.login(GREEN, SEEDED).expect("app_green seeded");

    let reply = server.write(
        "database/static-roles/dual",
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": CLUSTER,
                "usernames": format!("{BLUE},{GREEN}"), "rotation_period": "24h",
                "dependents": format!("dts:ali/dts-green/src/{GREEN}") }),
    );
    reply.data();
    assert!(reply.body["warnings"].is_null(), "{}", reply.body);

    // The DTS job pinned to app_green ends with app_green's password and
    // running (it logs in to PostgreSQL with its copy).
    let dts_in_step = || {
        wait_for("the DTS job to follow app_green", || {
            let [user, password, last_user, last_password] = creds(&server, "dual");
            let green = if user == GREEN {
                password
            } else {
                last_password
            };
            assert!(user == GREEN || last_user == GREEN);
            let job = emulator.get("dts/dts-green");
            if job["src"]["password"] == green.as_str() && job["status"] == "Synchronizing" {
                Ok(())
            } else {
                Err(job.to_string())
            }
        })
    };
    dts_in_step();
    takes_turns(
        &server,
        "dual",
        &|user, password| pg.login(user, password),
        &dts_in_step,
    );
}

#[test]
fn a_dual_dcs_role_hands_out_acl_users_that_log_in_to_redis() {
    let redis = redis::Redis::start(SEEDED);
    let (_emulator, server) = stack(
        "dual-dcs",
        json!({"huaweicloud": {
            "dcs_instances": [{
                "id": INSTANCE, "project_id": fixture::PROJECT, "password": SEEDED,
                "engine_version": "6.0", "account_settle_seconds": 0.5,
                "backing": redis.backing(),
                "acl_accounts": [
                    { "name": BLUE, "password": SEEDED, "role": "write" },
                    { "name": GREEN, "password": SEEDED, "role": "write" }
                ]
            }]
        }}),
    );
    redis.login(Some(BLUE), SEEDED).expect("app_blue seeded");
    redis.login(Some(GREEN), SEEDED).expect("app_green seeded");

    let reply = server.write_rotating(
        "database/static-roles/dual",
        json!({ "target": "dcs-instance", "connection": "hw", "instance_id": INSTANCE,
                "usernames": format!("{BLUE},{GREEN}"), "rotation_period": "24h" }),
    );
    // A reset settles for 0.5 s, so the write returns before the first
    // import rotation finishes and says Vault runs the second by itself:
    // with no operator action both accounts get passwords Vault set.
    let warnings = reply.body["warnings"].to_string();
    assert!(
        warnings.contains(&format!(r#"then rotates \"{BLUE}\" by itself"#)),
        "{warnings}"
    );
    wait_for("both import rotations", || {
        let reply = server.read("database/static-creds/dual");
        let known = reply.status == 200 && reply.body["data"]["last_password"] != "";
        let role = server.read("database/static-roles/dual").body["data"].clone();
        if known && role["rotation_in_progress"].is_null() && role["status"] == "ok" {
            Ok(())
        } else {
            Err(format!("{} {role}", reply.status))
        }
    });
    takes_turns(
        &server,
        "dual",
        &|user, password| redis.login(Some(user), password),
        &|| {},
    );
    // The instance password (the default user) was never touched.
    redis.login(None, SEEDED).expect("requirepass unchanged");
}
