//! The engine in process (in-memory storage, fixed system view) against the
//! real emulator binary: every target kind, dependents, deferral, faults,
//! leases, schedules, root rotation and bad input, checked through the
//! emulator's view of the truth.

#[path = "support/emulator.rs"]
mod emulator;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudrotate::engine::{self, Clock, ManualClock, SystemClock};
use cloudrotate::framework::{
    Backend, BackendConfig, Error, Existence, LeaseInfo, MemoryStorage, Operation,
    ReplicationState, Request, Response, StaticSystemView,
};
use emulator::{Emulator, fixture};
use serde_json::{Value, json};

/// One mount of the engine, driven like the host drives it.
struct Mount {
    runtime: tokio::runtime::Runtime,
    backend: Arc<dyn Backend>,
}

impl Mount {
    fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with(clock, &[], StaticSystemView::default())
    }

    /// With extra mount options and the host's view of this node.
    fn with(clock: Arc<dyn Clock>, extra: &[(&str, &str)], system: StaticSystemView) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let options = [
            ("retry_base", "50ms"),
            ("retry_cap", "400ms"),
            ("defer_retry", "100ms"),
            ("jitter", "0s"),
        ];
        let config = BackendConfig {
            config: options
                .iter()
                .chain(extra)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            backend_uuid: "test".into(),
            storage: Arc::new(MemoryStorage::new()),
            system: Arc::new(system),
        };
        let backend: Arc<dyn Backend> = Arc::new(engine::backend(
            config,
            clock,
            Arc::new(engine::ProviderCloud),
        ));
        runtime.block_on(backend.initialize()).unwrap();
        Self { runtime, backend }
    }

    fn request(&self, request: Request) -> Result<Option<Response>, Error> {
        self.runtime.block_on(self.backend.handle_request(request))
    }

    /// A write as the host sends it: existence check, then create or update.
    fn write(&self, path: &str, data: Value) -> Result<Option<Response>, Error> {
        let probe = Request::new(Operation::Update, path).with_data(data.clone());
        let operation = match self
            .runtime
            .block_on(self.backend.existence_check(&probe))?
        {
            Existence::Exists(false) => Operation::Create,
            _ => Operation::Update,
        };
        self.request(Request::new(operation, path).with_data(data))
    }

    fn write_ok(&self, path: &str, data: Value) -> Option<Response> {
        self.write(path, data)
            .unwrap_or_else(|e| panic!("write {path}: {e}"))
    }

    fn read(&self, path: &str) -> Value {
        let response = self
            .request(Request::new(Operation::Read, path))
            .unwrap_or_else(|e| panic!("read {path}: {e}"));
        Value::Object(
            response
                .unwrap_or_else(|| panic!("read {path}: not found"))
                .data,
        )
    }

    /// Polls until `check` holds on the read of `path`.
    fn wait_until(&self, path: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let value = self.read(path);
            if check(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {value}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn connections(mount: &Mount, emulator: &Emulator) {
    mount.write_ok(
        "config/ali",
        json!({
            "provider": "alicloud", "region": "cn-hangzhou", "access_key": fixture::ALI_AK, "secret_key": fixture::ALI_SK,
            "endpoint": emulator.url, "allowed_roles": "*", "iam_user": fixture::ALI_USER, "request_timeout": "2s",
        }),
    );
    mount.write_ok(
        "config/hw",
        json!({
            "provider": "huaweicloud", "region": "cn-north-4", "access_key": fixture::HW_AK, "secret_key": fixture::HW_SK,
            "project_id": fixture::PROJECT, "endpoint": emulator.url, "allowed_roles": ["team-*", "dcs-*"],
            "iam_user": fixture::HW_USER, "request_timeout": "2s",
        }),
    );
}

fn setup() -> (Emulator, Mount) {
    let emulator = Emulator::start();
    emulator.seed(fixture::seed());
    let mount = Mount::new(Arc::new(SystemClock));
    connections(&mount, &emulator);
    (emulator, mount)
}

fn password(mount: &Mount, role: &str) -> String {
    mount.read(&format!("static-creds/{role}"))["password"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn polardb_role_with_a_dts_dependent_ends_with_one_password_everywhere() {
    let (emulator, mount) = setup();
    let reply = mount.write_ok(
        "static-roles/team-app",
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "username": "app",
                "dependents": "dts:ali/dtsjob1/src", "rotation_period": "24h" }),
    );
    let warnings = reply.map(|r| r.warnings).unwrap_or_default();
    assert!(warnings.is_empty(), "{warnings:?}");
    let current = password(&mount, "team-app");
    assert_ne!(current, fixture::INITIAL);
    let account = emulator.get("polardb/pc-1/accounts/app");
    let job = emulator.get("dts/dtsjob1");
    assert_eq!(
        account["password"], current,
        "the account holds Vault's password"
    );
    assert_eq!(
        job["src"]["password"], current,
        "the DTS job's copy follows"
    );
    assert_eq!(
        job["dest"]["password"], "Other-Pass-1",
        "the other endpoint is untouched"
    );
    assert_eq!(account["changes"], 1);

    let role = mount.read("static-roles/team-app");
    assert_eq!(role["status"], "ok");
    assert_eq!(role["dependent_states"][0]["state"], "in_sync");
    assert!(
        role.get("password").is_none() && !role.to_string().contains(&current),
        "a role read never shows the password"
    );
    let creds = mount.read("static-creds/team-app");
    assert_eq!(creds["last_password"], "");
    assert!(creds["ttl"].as_i64().unwrap() > 86_000);

    mount.write_ok("rotate-role/team-app", json!({}));
    let rotated = password(&mount, "team-app");
    assert_ne!(rotated, current);
    assert_eq!(
        mount.read("static-creds/team-app")["last_password"],
        current
    );
    assert_eq!(
        emulator.get("polardb/pc-1/accounts/app")["password"],
        rotated
    );
    assert_eq!(emulator.get("dts/dtsjob1")["src"]["password"], rotated);

    let history = mount.read("history/team-app");
    let rotations = history["rotations"].as_array().unwrap();
    assert_eq!(rotations.len(), 2);
    assert_eq!(rotations[0]["trigger"], "manual");
    assert_eq!(rotations[1]["trigger"], "create");
    assert!(rotations.iter().all(|r| r["outcome"] == "succeeded"));
    assert_eq!(
        rotations[0]["dependents_updated"],
        json!(["dts:ali/dtsjob1/src/app"])
    );
    assert!(
        rotations[0]["request_ids"].as_array().unwrap().len() >= 2,
        "{history}"
    );
    assert!(!history.to_string().contains(&rotated));
}

#[test]
fn dcs_role_with_a_drs_dependent_defers_until_the_job_accepts_then_completes() {
    let (emulator, mount) = setup();
    emulator.patch_status("drs/drsjob1", "CREATING");
    let reply = mount.write_ok(
        "static-roles/dcs-cache",
        json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-1", "password": fixture::INITIAL,
                "dependents": ["drs:hw/drsjob1/so"], "disable_automated_rotation": true }),
    );
    let warnings = reply.map(|r| r.warnings).unwrap_or_default();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("deferred") && w.contains("CREATING")),
        "{warnings:?}"
    );
    let role = mount.read("static-roles/dcs-cache");
    assert_eq!(role["status"], "deferred");
    assert!(
        role["status_reason"]
            .as_str()
            .unwrap()
            .contains("drs:hw/drsjob1/so")
    );
    assert_eq!(
        emulator.get("dcs/dcs-1")["password"],
        fixture::INITIAL,
        "nothing was touched"
    );
    assert_eq!(
        emulator.get("drs/drsjob1")["so"]["password"],
        fixture::INITIAL
    );

    emulator.patch_status("drs/drsjob1", "INCRE_TRANSFER_STARTED");
    let role = mount.wait_until(
        "static-roles/dcs-cache",
        "the deferred rotation to finish",
        |r| r["status"] == "ok",
    );
    let current = password(&mount, "dcs-cache");
    assert_ne!(current, fixture::INITIAL);
    assert_eq!(emulator.get("dcs/dcs-1")["password"], current);
    assert_eq!(emulator.get("drs/drsjob1")["so"]["password"], current);
    assert_eq!(
        emulator.get("dcs/dcs-1")["changes"],
        1,
        "one rotation, one password"
    );
    assert_eq!(role["dependent_states"][0]["state"], "in_sync");
    let history = mount.read("history/dcs-cache");
    assert_eq!(
        history["rotations"].as_array().unwrap().len(),
        1,
        "the deferred rotation finished as itself"
    );
    assert_eq!(history["rotations"][0]["outcome"], "succeeded");
}

#[test]
fn lost_dcs_answers_are_resolved_by_reset_without_spending_attempts() {
    let (emulator, mount) = setup();
    emulator.set_faults(json!({
        "seed": 7, "drop_after_apply_rate": 1.0, "drop_after_apply_hold_ms": 0, "apis": ["dcs.UpdatePassword"],
        "scripted": [{ "api": "drs.BatchResetPassword", "code": "APIGW.0308", "status": 429, "count": 1 }]
    }));
    mount.write_ok(
        "static-roles/dcs-cache",
        json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-1", "password": fixture::INITIAL,
                "dependents": "drs:hw/drsjob1/so" }),
    );
    mount.wait_until("static-roles/dcs-cache", "convergence", |r| {
        r["status"] == "ok"
    });
    let current = password(&mount, "dcs-cache");
    let instance = emulator.get("dcs/dcs-1");
    assert_eq!(instance["password"], current);
    assert_eq!(emulator.get("drs/drsjob1")["so"]["password"], current);
    assert_eq!(instance["locked"], false);
    assert_eq!(
        instance["retry_times_left"], 5,
        "no old-password attempt was spent"
    );
    assert_eq!(
        emulator.calls("dcs.UpdatePassword"),
        1,
        "a lost update is never re-sent"
    );
    assert!(
        emulator.calls("dcs.ResetPassword") >= 1,
        "the lost update was resolved by a reset"
    );
    assert_eq!(emulator.counters()["outcomes"]["dropped_after_apply"], 1);
    assert_eq!(
        mount.read("history/dcs-cache")["rotations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn lost_polardb_and_dts_answers_and_throttling_converge_on_one_password() {
    let (emulator, mount) = setup();
    emulator.set_faults(json!({
        "seed": 11, "drop_after_apply_rate": 0.5, "drop_after_apply_hold_ms": 0,
        "apis": ["polardb.ModifyAccountPassword", "dts.ModifyDtsJobPassword"],
        "scripted": [{ "api": "dts.ModifyDtsJobPassword", "code": "Throttling.User", "status": 400, "count": 2 }]
    }));
    for _ in 0..3 {
        mount
            .write(
                "static-roles/team-app",
                json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
            "username": "app", "dependents": "dts:ali/dtsjob1/src" }),
            )
            .unwrap();
        mount.wait_until("static-roles/team-app", "convergence", |r| {
            r["status"] == "ok"
        });
        let current = password(&mount, "team-app");
        assert_eq!(
            emulator.get("polardb/pc-1/accounts/app")["password"],
            current
        );
        assert_eq!(emulator.get("dts/dtsjob1")["src"]["password"], current);
        let _ = mount.write("rotate-role/team-app", json!({}));
    }
    mount.wait_until("static-roles/team-app", "convergence", |r| {
        r["status"] == "ok"
    });
    let current = password(&mount, "team-app");
    assert_eq!(emulator.get("dts/dtsjob1")["src"]["password"], current);
    let counters = emulator.counters();
    assert!(
        counters["outcomes"]["dropped_after_apply"]
            .as_u64()
            .unwrap()
            >= 2,
        "{counters}"
    );
    assert_eq!(
        counters["outcomes"]["scripted"], 2,
        "both throttling answers were met: {counters}"
    );
    let history = mount.read("history/team-app");
    let rotations = history["rotations"].as_array().unwrap();
    assert_eq!(
        rotations.len(),
        4,
        "one create and three manual rotations: {history}"
    );
    assert!(
        rotations.iter().all(|r| r["outcome"] == "succeeded"),
        "{history}"
    );
}

#[test]
fn dry_run_shows_the_plan_and_changes_nothing() {
    let (emulator, mount) = setup();
    mount.write_ok(
        "static-roles/team-app",
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "username": "app",
                "dependents": "dts:ali/dtsjob1/src" }),
    );
    let before = password(&mount, "team-app");
    let calls_before = emulator.calls("polardb.ModifyAccountPassword");
    let plan = Value::Object(
        mount
            .write_ok("rotate-role/team-app", json!({ "dry_run": true }))
            .unwrap()
            .data,
    );
    assert_eq!(plan["dry_run"], true);
    let actions: Vec<&str> = plan["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "DescribeAccounts",
            "DescribeDtsJobDetail",
            "ModifyAccountPassword",
            "ModifyAccountDescription",
            "ModifyDtsJobPassword"
        ]
    );
    let target = &plan["prechecks"][0];
    assert_eq!(target["target"], "polardb-account");
    assert_eq!(target["state"], "Available");
    assert_eq!(target["marker"], "in_sync");
    assert_eq!(plan["prechecks"][1]["state"], "Synchronizing");
    assert_eq!(plan["prechecks"][1]["accepts_change"], true);
    assert_eq!(plan["would_defer"], false);
    assert_eq!(plan["would_end"], "ok");
    assert_eq!(password(&mount, "team-app"), before);
    assert_eq!(
        emulator.calls("polardb.ModifyAccountPassword"),
        calls_before
    );
    assert_eq!(
        mount.read("history/team-app")["rotations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn leased_check_out_is_exclusive_renews_and_rotates_when_revoked() {
    let (emulator, mount) = setup();
    mount.write_ok(
        "roles/team-report",
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "username": "report",
                "ttl": "1h", "max_ttl": "2h" }),
    );
    let out = mount
        .request(Request::new(Operation::Read, "creds/team-report"))
        .unwrap()
        .unwrap();
    let handed_out = out.data["password"].as_str().unwrap().to_owned();
    let lease = out.secret.clone().expect("a lease");
    assert_eq!(lease.ttl, Duration::from_secs(3600));
    assert_eq!(
        emulator.get("polardb/pc-1/accounts/report")["password"],
        handed_out
    );

    let second = mount
        .request(Request::new(Operation::Read, "creds/team-report"))
        .unwrap_err();
    assert!(
        matches!(&second, Error::Coded { status: 409, message } if message.contains("checked out until")),
        "{second}"
    );

    let mut internal = lease.internal_data.clone();
    internal.insert("secret_type".into(), json!(lease.secret_type));
    let lease_info = LeaseInfo {
        lease_id: "database/creds/team-report/abc".into(),
        internal_data: internal,
        increment: Duration::from_secs(7200),
        ..Default::default()
    };
    let mut renew = Request::new(Operation::Renew, "creds/team-report");
    renew.secret = Some(LeaseInfo {
        lease_id: String::new(),
        ..lease_info.clone()
    });
    let renewed = mount.request(renew).unwrap().unwrap().secret.unwrap();
    assert!(
        renewed.ttl <= Duration::from_secs(7200) && renewed.ttl > Duration::from_secs(7100),
        "{:?}",
        renewed.ttl
    );

    let mut revoke = Request::new(Operation::Revoke, "creds/team-report");
    revoke.secret = Some(lease_info);
    mount.request(revoke).unwrap();
    let now_live = emulator.get("polardb/pc-1/accounts/report")["password"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(now_live, handed_out, "the copy handed out stopped working");
    let again = mount
        .request(Request::new(Operation::Read, "creds/team-report"))
        .unwrap()
        .unwrap();
    assert_eq!(again.data["password"], now_live);
    let history = mount.read("history/team-report");
    assert_eq!(history["rotations"][0]["trigger"], "lease-end");
}

#[test]
fn scheduled_rotation_runs_when_due_and_not_before() {
    let emulator = Emulator::start();
    emulator.seed(fixture::seed());
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let mount = Mount::new(clock.clone());
    connections(&mount, &emulator);
    mount.write_ok(
        "static-roles/team-app",
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "username": "app", "rotation_period": "1h" }),
    );
    let first = password(&mount, "team-app");
    clock.advance(Duration::from_secs(59 * 60));
    mount
        .runtime
        .block_on(
            mount
                .backend
                .handle_request(Request::new(Operation::Rollback, "")),
        )
        .unwrap();
    assert_eq!(
        emulator.calls("polardb.ModifyAccountPassword"),
        1,
        "not due yet"
    );
    clock.advance(Duration::from_secs(2 * 60));
    mount
        .runtime
        .block_on(
            mount
                .backend
                .handle_request(Request::new(Operation::Rollback, "")),
        )
        .unwrap();
    mount.wait_until("history/team-app", "the scheduled rotation", |h| {
        h["rotations"].as_array().unwrap().len() == 2
    });
    assert_eq!(
        mount.read("history/team-app")["rotations"][0]["trigger"],
        "schedule"
    );
    assert_ne!(password(&mount, "team-app"), first);
    assert_eq!(emulator.calls("polardb.ModifyAccountPassword"), 2);
}

#[test]
fn rotate_root_replaces_the_connection_key_and_keeps_working() {
    let (emulator, mount) = setup();
    let rotated = Value::Object(mount.write_ok("rotate-root/ali", json!({})).unwrap().data);
    let new_key = rotated["access_key"].as_str().unwrap();
    assert_ne!(new_key, fixture::ALI_AK);
    assert!(!rotated.to_string().contains(fixture::ALI_SK) && rotated.get("secret_key").is_none());
    let state = emulator.get("state");
    let keys: Vec<&str> = state["alicloud"]["users"][0]["access_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(keys, [new_key], "the old key is deleted");
    let config = mount.read("config/ali");
    assert_eq!(config["access_key"], new_key);
    assert!(config["last_root_rotation"].is_string());
    mount.write_ok(
        "static-roles/team-app",
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "username": "app" }),
    );
    assert_eq!(
        emulator.get("polardb/pc-1/accounts/app")["password"],
        password(&mount, "team-app"),
        "the new key signs"
    );
}

#[test]
fn bad_input_is_refused_with_a_message_that_names_the_problem() {
    let (_emulator, mount) = setup();
    let polardb = |extra: Value| {
        let mut data = json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "username": "app" });
        data.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        data
    };
    let cases = [
        (
            "static-roles/r1",
            polardb(json!({ "rotation_period": "soon" })),
            "rotation_period",
        ),
        (
            "static-roles/r1",
            polardb(json!({ "rotation_schedule": "every day" })),
            "cron",
        ),
        (
            "static-roles/r1",
            polardb(json!({ "dependents": "dts:ali/job" })),
            "dts:<connection>",
        ),
        (
            "static-roles/r1",
            polardb(json!({ "connection": "missing" })),
            "does not exist",
        ),
        (
            "static-roles/r1",
            json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1" }),
            "needs username",
        ),
        ("static-roles/r1", json!({ "target": "mysql" }), "target"),
        (
            "static-roles/r1",
            polardb(json!({ "connection": "hw" })),
            "alicloud connection",
        ),
        ("static-roles/bad name", polardb(json!({})), "invalid name"),
        (
            "static-roles/r1",
            polardb(json!({ "skip_import_rotation": true })),
            "needs password",
        ),
        (
            "config/x",
            json!({ "provider": "aws", "region": "r", "access_key": "a", "secret_key": "s" }),
            "alicloud, huaweicloud",
        ),
        (
            "config/x",
            json!({ "provider": "huaweicloud", "region": "cn-north-4", "access_key": "a", "secret_key": "s", "verify_connection": false }),
            "project_id",
        ),
        (
            "config/x",
            json!({ "provider": "alicloud", "region": "cn-hangzhou", "access_key": "a", "secret_key": "s", "endpoint": "ftp://x", "verify_connection": false }),
            "base URL",
        ),
        (
            "config/x",
            json!({ "provider": "alicloud", "region": "cn-hangzhou", "access_key": "a", "secret_key": "s", "requests_per_second": 0, "verify_connection": false }),
            "requests_per_second",
        ),
        (
            "config/x",
            json!({ "provider": "alicloud", "region": "cn-hangzhou", "access_key": "nope", "secret_key": "s" }),
            "verification",
        ),
    ];
    for (path, data, expected) in cases {
        match mount.write(path, data.clone()) {
            Err(Error::BadRequest(message)) => {
                assert!(message.contains(expected), "{path} {data}: {message}")
            }
            other => panic!("{path} {data}: expected a 400 containing {expected:?}, got {other:?}"),
        }
    }
}

#[test]
fn a_resource_belongs_to_one_role_and_names_are_unique_across_kinds() {
    let (_emulator, mount) = setup();
    mount.write_ok("static-roles/team-a", json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "username": "app" }));
    let same_account = mount.write("static-roles/team-b", json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "username": "app" }));
    assert!(
        matches!(&same_account, Err(Error::BadRequest(m)) if m.contains("team-a")),
        "{same_account:?}"
    );
    let same_job = mount.write(
        "static-roles/team-c",
        json!({ "target": "external", "dependents": "dts:ali/dtsjob1/src/app" }),
    );
    assert!(same_job.is_ok(), "{same_job:?}");
    let taken_dependent = mount.write(
        "static-roles/team-d",
        json!({ "target": "external", "dependents": "dts:ali/dtsjob1/src/app" }),
    );
    assert!(
        matches!(&taken_dependent, Err(Error::BadRequest(m)) if m.contains("team-c")),
        "{taken_dependent:?}"
    );
    let cross_kind = mount.write("roles/team-a", json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "username": "report" }));
    assert!(
        matches!(&cross_kind, Err(Error::BadRequest(m)) if m.contains("static-roles/team-a")),
        "{cross_kind:?}"
    );
}

#[test]
fn external_target_propagates_the_given_password_to_every_copy() {
    let (emulator, mount) = setup();
    mount.write_ok("static-roles/team-ext", json!({ "target": "external", "username": "sink", "dependents": ["dts:ali/dtsjob1/dest", "drs:hw/drsjob1/ta"] }));
    let given = "Given-By-Operator-9";
    let out = Value::Object(
        mount
            .write_ok("rotate-role/team-ext", json!({ "password": given }))
            .unwrap()
            .data,
    );
    assert_eq!(out["status"], "ok");
    assert_eq!(emulator.get("dts/dtsjob1")["dest"]["password"], given);
    assert_eq!(emulator.get("drs/drsjob1")["ta"]["password"], given);
    assert_eq!(password(&mount, "team-ext"), given);
    assert_eq!(
        mount.read("history/team-ext")["rotations"][0]["trigger"],
        "propagate"
    );
    let refused = mount.write("rotate-role/team-ext", json!({}));
    assert!(
        matches!(&refused, Err(Error::BadRequest(m)) if m.contains("password=")),
        "{refused:?}"
    );
}

#[test]
fn a_scheduled_role_that_gave_up_tries_again_at_its_next_cycle() {
    let emulator = Emulator::start();
    emulator.seed(fixture::seed());
    let start = time::OffsetDateTime::now_utc();
    let clock = Arc::new(ManualClock::new(start));
    let mount = Mount::with(
        clock.clone(),
        &[("max_failures", "2")],
        StaticSystemView::default(),
    );
    connections(&mount, &emulator);
    mount.write_ok(
        "static-roles/team-app",
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "username": "app",
                "rotation_period": "1h" }),
    );
    let first = password(&mount, "team-app");
    // The next scheduled rotation meets a PolarDB that keeps failing.
    emulator.set_faults(
        json!({ "seed": 1, "server_error_rate": 1.0, "apis": ["polardb.ModifyAccountPassword"] }),
    );
    // Each retry waits for a backoff of the (manual) clock to pass.
    clock.advance(Duration::from_secs(3601));
    let deadline = Instant::now() + Duration::from_secs(30);
    let role = loop {
        mount
            .request(Request::new(Operation::Rollback, ""))
            .unwrap();
        let role = mount.read("static-roles/team-app");
        if role["status"] == "failed" {
            break role;
        }
        assert!(Instant::now() < deadline, "did not give up: {role}");
        clock.advance(Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(20));
    };
    let next = time::OffsetDateTime::parse(
        role["next_vault_rotation"]
            .as_str()
            .expect("a next rotation, not a wait for rotate-role"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let now = clock.now();
    assert!(
        next > now && next - now <= time::Duration::hours(1),
        "next cycle {next}, now {now}"
    );
    // The cloud recovers; at the next cycle the same role rotates by itself.
    emulator.set_faults(json!({}));
    clock.advance(Duration::from_secs(3601));
    mount
        .request(Request::new(Operation::Rollback, ""))
        .unwrap();
    mount.wait_until("static-roles/team-app", "the next cycle", |r| {
        r["status"] == "ok"
    });
    let rotated = password(&mount, "team-app");
    assert_ne!(rotated, first);
    assert_eq!(
        emulator.get("polardb/pc-1/accounts/app")["password"],
        rotated
    );
}

#[test]
fn a_standby_never_calls_a_provider_and_asks_the_host_to_forward() {
    let emulator = Emulator::start();
    emulator.seed(fixture::seed());
    let active = Mount::new(Arc::new(SystemClock));
    connections(&active, &emulator);
    let standby = Mount::with(
        Arc::new(SystemClock),
        &[],
        StaticSystemView {
            // What OpenBao reports on a standby node.
            replication_state: ReplicationState(ReplicationState::PERFORMANCE_STANDBY | (1 << 13)),
            ..StaticSystemView::default()
        },
    );
    connections(&standby, &emulator);
    let calls = |e: &Emulator| {
        e.counters()["calls"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>()
    };
    let before = calls(&emulator);
    let refused = standby.write(
        "static-roles/team-app",
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "username": "app" }),
    );
    let Err(err) = refused else {
        panic!("a standby rotated: {refused:?}")
    };
    assert!(
        err.to_string().contains("cannot write to readonly storage"),
        "{err}"
    );
    assert_eq!(
        calls(&emulator),
        before,
        "no provider call from the standby"
    );
}

#[test]
fn adopting_a_password_with_a_dependent_propagates_it_and_does_not_rotate() {
    let (emulator, mount) = setup();
    mount.write_ok(
        "static-roles/dcs-adopted",
        json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-1",
                "password": fixture::INITIAL, "skip_import_rotation": true,
                "dependents": "drs:hw/drsjob1/so", "rotation_period": "1h" }),
    );
    let role = mount.read("static-roles/dcs-adopted");
    assert_eq!(role["status"], "ok", "{role}");
    let next = time::OffsetDateTime::parse(
        role["next_vault_rotation"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        next > time::OffsetDateTime::now_utc() + Duration::from_secs(59 * 60),
        "the adopted password is due a period from now, not at once: {role}"
    );
    assert_eq!(emulator.calls("dcs.UpdatePassword"), 0);
    assert_eq!(emulator.calls("dcs.ResetPassword"), 0);
    assert_eq!(emulator.get("dcs/dcs-1")["password"], fixture::INITIAL);
    assert_eq!(
        emulator.get("drs/drsjob1")["so"]["password"],
        fixture::INITIAL
    );
    assert_eq!(password(&mount, "dcs-adopted"), fixture::INITIAL);
}

/// Every changing call may be answered with a gateway error after it was
/// applied (the emulator's applied-then-502/504 fault). PolarDB, DTS, DCS
/// and DRS (seven copies on one job list, more than batch-status's default
/// page of 5) all converge to `ok` with one password everywhere, and a DCS
/// old-password change is never sent twice.
#[test]
fn changes_answered_with_a_gateway_error_after_applying_converge() {
    let (emulator, mount) = setup();
    let jobs: Vec<Value> = (1..=7)
        .map(|n| {
            json!({ "id": format!("drs-many-{n}"), "project_id": fixture::PROJECT,
                "status": if n == 7 { "INCRE_TRANSFER_FAILED" } else { "INCRE_TRANSFER_STARTED" },
                "so": { "password": fixture::INITIAL }, "ta": { "password": fixture::INITIAL } })
        })
        .collect();
    emulator.seed(json!({ "huaweicloud": { "drs_jobs": jobs } }));
    emulator.set_faults(json!({
        "seed": 5, "gateway_error_after_apply_rate": 0.5,
        "apis": ["polardb.ModifyAccountPassword", "dts.ModifyDtsJobPassword", "dcs.UpdatePassword",
                 "dcs.ResetPassword", "drs.BatchResetPassword"]
    }));
    let many: Vec<String> = (1..=7).map(|n| format!("drs:hw/drs-many-{n}/so")).collect();
    mount.write_ok(
        "static-roles/dcs-cache",
        json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-1",
                "password": fixture::INITIAL, "dependents": many }),
    );
    mount.write_ok(
        "static-roles/team-app",
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                "username": "app", "dependents": "dts:ali/dtsjob1/src" }),
    );
    for _ in 0..3 {
        for role in ["dcs-cache", "team-app"] {
            mount.wait_until(&format!("static-roles/{role}"), "convergence", |r| {
                r["status"] == "ok"
            });
        }
        let dcs = password(&mount, "dcs-cache");
        assert_eq!(emulator.get("dcs/dcs-1")["password"], dcs);
        assert_eq!(emulator.get("dcs/dcs-1")["retry_times_left"], 5);
        for n in 1..=7 {
            assert_eq!(
                emulator.get(&format!("drs/drs-many-{n}"))["so"]["password"],
                dcs
            );
        }
        let app = password(&mount, "team-app");
        assert_eq!(emulator.get("polardb/pc-1/accounts/app")["password"], app);
        assert_eq!(emulator.get("dts/dtsjob1")["src"]["password"], app);
        for role in ["dcs-cache", "team-app"] {
            let _ = mount.write(&format!("rotate-role/{role}"), json!({}));
        }
    }
    let counters = emulator.counters();
    assert!(
        counters["outcomes"]["gateway_error_after_apply"]
            .as_u64()
            .unwrap()
            >= 3,
        "{counters}"
    );
    assert!(
        emulator.calls("dcs.UpdatePassword") <= 4,
        "an update answered with a gateway error is never re-sent: {counters}"
    );
}

/// A key creation answered with a gateway error after it was applied: the
/// key whose secret never arrived is deleted by the next attempt, which
/// rotates cleanly; Huawei's calls carry the connection's X-Domain-Id.
#[test]
fn a_key_created_behind_a_gateway_error_is_cleaned_up_by_the_next_root_rotation() {
    let (emulator, mount) = setup();
    mount.write_ok("config/hw", json!({ "domain_id": "0a1b2c3d4e5f" }));
    assert_eq!(mount.read("config/hw")["domain_id"], "0a1b2c3d4e5f");
    emulator.set_faults(json!({
        "seed": 1, "gateway_error_after_apply_rate": 1.0,
        "apis": ["ram.CreateAccessKey", "iam.CreatePermanentAccessKey"]
    }));
    let keys = |cloud: &str, field: &str| -> Vec<String> {
        emulator.get("state")[cloud]["users"][0]["access_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k[field].as_str().unwrap().to_owned())
            .collect()
    };
    for (connection, cloud, field, old) in [
        ("ali", "alicloud", "id", fixture::ALI_AK),
        ("hw", "huaweicloud", "access", fixture::HW_AK),
    ] {
        let refused = mount.write(&format!("rotate-root/{connection}"), json!({}));
        assert!(
            refused.is_err(),
            "{connection}: the creation's outcome is unknown"
        );
        assert_eq!(
            keys(cloud, field).len(),
            2,
            "{connection}: the orphan exists"
        );
        emulator.set_faults(json!({}));
        let rotated = Value::Object(
            mount
                .write_ok(&format!("rotate-root/{connection}"), json!({}))
                .unwrap()
                .data,
        );
        let new_key = rotated["access_key"].as_str().unwrap().to_owned();
        assert_ne!(new_key, old);
        assert_eq!(
            keys(cloud, field),
            [new_key],
            "{connection}: orphan and old key deleted"
        );
        emulator.set_faults(json!({
            "seed": 1, "gateway_error_after_apply_rate": 1.0,
            "apis": ["ram.CreateAccessKey", "iam.CreatePermanentAccessKey"]
        }));
    }
}

/// DCS.4080 (password verification failed) is a wrong old password: the
/// rotation never offers the old password again and resets instead.
#[test]
fn a_dcs_password_verification_failure_switches_to_reset() {
    let (emulator, mount) = setup();
    emulator.set_faults(json!({
        "scripted": [{ "api": "dcs.UpdatePassword", "code": "DCS.4080", "count": 1 }]
    }));
    mount.write_ok(
        "static-roles/dcs-cache",
        json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-1",
                "password": fixture::INITIAL }),
    );
    mount.wait_until("static-roles/dcs-cache", "convergence", |r| {
        r["status"] == "ok"
    });
    assert_eq!(
        emulator.get("dcs/dcs-1")["password"],
        password(&mount, "dcs-cache")
    );
    assert_eq!(emulator.calls("dcs.UpdatePassword"), 1);
    assert_eq!(emulator.calls("dcs.ResetPassword"), 1);
}
