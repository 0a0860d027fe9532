//! The engine in process (in-memory storage, fixed system view) against the
//! real emulator binary, through the real provider clients: what the
//! planner's tables (`src/engine/rotation/plan_tests.rs`, `execute_tests.rs`)
//! cannot show: signed calls reaching each target kind and dependent, dry
//! runs over real reads, leases, root rotation, claims, standbys and bad
//! input, checked through the emulator's view of the truth.

#[path = "support/emulator.rs"]
mod emulator;

use std::sync::Arc;
use std::time::Duration;

use cloudrotate::engine::{self, Clock, SystemClock};
use cloudrotate::framework::{
    Backend, BackendConfig, ClientToken, Error, Existence, LeaseGrant, LeaseInfo, MemoryStorage,
    Operation, ReplicationState, Request, Response, StaticSystemView,
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

/// `field` of each item of the list `list` of `value`.
fn column(value: &Value, list: &str, field: &str) -> Vec<Value> {
    value[list]
        .as_array()
        .unwrap_or_else(|| panic!("{list} in {value}"))
        .iter()
        .map(|item| item[field].clone())
        .collect()
}

/// After a dual role's two import rotations (app_green, then app_blue):
/// static-creds answers both accounts with the passwords `account` (the
/// emulator's view) says they hold, neither the seeded one.
fn both_imported(creds: &Value, account: &dyn Fn(&str) -> Value) {
    assert_eq!(creds["username"], "app_blue");
    assert_eq!(creds["last_username"], "app_green");
    assert_eq!(account("app_blue")["password"], creds["password"]);
    assert_eq!(account("app_green")["password"], creds["last_password"]);
    assert_ne!(creds["password"], fixture::INITIAL);
    assert_ne!(creds["last_password"], fixture::INITIAL);
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

/// A mount and the fixture with accounts pool_a and pool_b on cluster
/// pc-1: a library set's service accounts.
fn pool_setup() -> (Emulator, Mount) {
    let emulator = Emulator::start();
    emulator.seed(pool_seed());
    let mount = Mount::new(Arc::new(SystemClock));
    connections(&mount, &emulator);
    (emulator, mount)
}

/// The password PolarDB account `name` of pc-1 holds, as the emulator
/// knows it.
fn live_password(emulator: &Emulator, name: &str) -> String {
    emulator.get(&format!("polardb/pc-1/accounts/{name}"))["password"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn pool_seed() -> Value {
    let mut seed = fixture::seed();
    let cluster = &mut seed["alicloud"]["polardb_clusters"][0];
    for name in ["pool_a", "pool_b"] {
        cluster["accounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "name": name, "password": fixture::INITIAL }));
    }
    seed
}

/// A request as the host sends it for a caller with this entity (may be
/// empty) and this salted token.
fn as_caller(operation: Operation, path: &str, data: Value, entity: &str, token: &str) -> Request {
    let mut request = Request::new(operation, path).with_data(data);
    request.client.entity_id = entity.into();
    request.client.client_token = ClientToken::new(token);
    request
}

/// The lease of a check-out, as the host hands it back on renew (no id)
/// and revoke.
fn lease_of(out: &Response, increment: Duration) -> LeaseInfo {
    let lease = out.secret.clone().expect("a lease");
    let mut internal = lease.internal_data.clone();
    internal.insert("secret_type".into(), json!(lease.secret_type));
    LeaseInfo {
        lease_id: "database/library/team-pool/check-out/abc".into(),
        internal_data: internal,
        increment,
        ..Default::default()
    }
}

fn check_out_lease_request(operation: Operation, lease: &LeaseInfo) -> Request {
    let mut request = Request::new(operation, "library/team-pool/check-out");
    request.secret = Some(lease.clone());
    request
}

fn refused_with(result: Result<Option<Response>, Error>, status: u16, text: &str) {
    let message = match &result {
        Err(Error::BadRequest(message)) if status == 400 => message.clone(),
        Err(Error::Coded {
            status: got,
            message,
        }) if *got == status => message.clone(),
        other => panic!("expected a {status} saying {text:?}: {other:?}"),
    };
    assert!(message.contains(text), "{message}");
}

#[test]
fn a_library_set_lends_each_account_once_and_check_in_rotates_it() {
    let (emulator, mount) = pool_setup();
    let live = |name: &str| live_password(&emulator, name);
    mount.write_ok(
        "library/team-pool",
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                "service_account_names": ["pool_a", "pool_b"], "ttl": "1h", "max_ttl": "2h" }),
    );
    // Creating the set rotated both accounts.
    assert_ne!(live("pool_a"), fixture::INITIAL);
    assert_ne!(live("pool_b"), fixture::INITIAL);
    let set = mount.read("library/team-pool");
    assert_eq!(set["service_account_names"], json!(["pool_a", "pool_b"]));
    assert_eq!(set["ttl"], 3600);
    assert_eq!(set["max_ttl"], 7200);
    assert_eq!(set["disable_check_in_enforcement"], false);
    assert_eq!(set["service_accounts"]["pool_a"]["status"], "ok");
    assert!(
        !set.to_string().contains(&live("pool_a")),
        "no password in reads"
    );
    let listed = mount
        .request(Request::new(Operation::List, "library/"))
        .unwrap()
        .unwrap();
    assert_eq!(listed.data["keys"], json!(["team-pool"]));
    assert_eq!(
        mount.read("library/team-pool/status")["pool_a"],
        json!({ "available": true })
    );

    // Alice (an entity) gets the first account, Bob (a token) the second.
    let check_out = |entity: &str, token: &str| {
        mount.request(as_caller(
            Operation::Update,
            "library/team-pool/check-out",
            json!({}),
            entity,
            token,
        ))
    };
    let alice = check_out("ent-alice", "salted-alice").unwrap().unwrap();
    assert_eq!(alice.data["service_account_name"], "pool_a");
    assert_eq!(alice.data["password"], live("pool_a").as_str());
    let lease = alice.secret.clone().unwrap();
    assert_eq!(lease.secret_type, "checkout-creds");
    assert_eq!(lease.ttl, Duration::from_secs(3600));
    assert_eq!(lease.max_ttl, Duration::from_secs(7200));
    let bob = check_out("", "salted-bob").unwrap().unwrap();
    assert_eq!(bob.data["service_account_name"], "pool_b");
    let bobs_password = bob.data["password"].as_str().unwrap().to_owned();
    refused_with(
        check_out("ent-carol", "salted-carol"),
        400,
        "first lease ends at",
    );

    let status = mount.read("library/team-pool/status");
    assert_eq!(status["pool_a"]["available"], false);
    assert_eq!(status["pool_a"]["borrower_entity_id"], "ent-alice");
    assert!(status["pool_a"]["expires_at"].is_string());
    let hashed = status["pool_b"]["borrower_client_token"].as_str().unwrap();
    assert_eq!(hashed.len(), 64, "{status}");
    assert!(!status.to_string().contains("salted-bob"), "{status}");

    // Only the borrower checks in (or library/manage/).
    let check_in = |names: Value, entity: &str, token: &str| {
        mount.request(as_caller(
            Operation::Update,
            "library/team-pool/check-in",
            json!({ "service_account_names": names }),
            entity,
            token,
        ))
    };
    refused_with(
        check_in(json!(["pool_a"]), "", "salted-bob"),
        403,
        "only its borrower",
    );
    refused_with(
        check_in(json!(["nobody"]), "", "salted-bob"),
        400,
        "not a service account",
    );
    // Without names: the caller's own.
    let back = mount
        .request(as_caller(
            Operation::Update,
            "library/team-pool/check-in",
            json!({}),
            "",
            "salted-bob",
        ))
        .unwrap()
        .unwrap();
    assert_eq!(back.data["check_ins"], json!(["pool_b"]));
    assert_ne!(
        live("pool_b"),
        bobs_password,
        "the password lent stopped working"
    );
    // Again: already in, nothing to do.
    let again = check_in(json!(["pool_b"]), "", "salted-bob")
        .unwrap()
        .unwrap();
    assert_eq!(again.data["check_ins"], json!([]));
    // Alice with another token is still Alice.
    let back = check_in(json!(["pool_a"]), "ent-alice", "salted-other")
        .unwrap()
        .unwrap();
    assert_eq!(back.data["check_ins"], json!(["pool_a"]));
    assert_ne!(live("pool_a"), alice.data["password"].as_str().unwrap());
    let history = mount.read("library/team-pool/history");
    assert_eq!(
        column(&history["service_accounts"], "pool_a", "trigger"),
        ["check-in", "create"]
    );

    // Deleting is refused while an account is out; manage/ checks it in.
    let out = check_out("ent-dave", "salted-dave").unwrap().unwrap();
    assert_eq!(out.data["service_account_name"], "pool_a");
    refused_with(
        mount.request(Request::new(Operation::Delete, "library/team-pool")),
        409,
        "library/manage/team-pool/check-in",
    );
    let forced = mount
        .request(as_caller(
            Operation::Update,
            "library/manage/team-pool/check-in",
            json!({}),
            "ent-erin",
            "salted-erin",
        ))
        .unwrap()
        .unwrap();
    assert_eq!(forced.data["check_ins"], json!(["pool_a"]));
    mount
        .request(Request::new(Operation::Delete, "library/team-pool"))
        .unwrap();
    let listed = mount
        .request(Request::new(Operation::List, "library/"))
        .unwrap()
        .unwrap();
    assert_eq!(listed.data["keys"], json!([]));
    // Its accounts are free for a static role now, without take_over.
    mount.write_ok(
        "static-roles/team-a",
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "username": "pool_a" }),
    );
}

#[test]
fn a_stale_lease_changes_nothing_and_renew_stops_at_max_ttl() {
    let (emulator, mount) = pool_setup();
    let live = || live_password(&emulator, "pool_a");
    mount.write_ok(
        "library/team-pool",
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                "service_account_names": "pool_a", "ttl": "1h", "max_ttl": "2h" }),
    );
    let check_out = |entity: &str| {
        mount
            .request(as_caller(
                Operation::Update,
                "library/team-pool/check-out",
                json!({}),
                entity,
                "t",
            ))
            .unwrap()
            .unwrap()
    };
    let first = check_out("ent-alice");
    // Renew is capped by max_ttl (2 h from the check-out).
    let stale = lease_of(&first, Duration::from_secs(3 * 3600));
    let renewed = mount
        .request(check_out_lease_request(Operation::Renew, &stale))
        .unwrap()
        .unwrap();
    let ttl = renewed.secret.unwrap().ttl;
    assert!(
        ttl <= Duration::from_secs(7200) && ttl > Duration::from_secs(7100),
        "{ttl:?}"
    );

    // Checked in by hand, then lent to Bob: Alice's lease is stale.
    mount
        .request(as_caller(
            Operation::Update,
            "library/team-pool/check-in",
            json!({}),
            "ent-alice",
            "t",
        ))
        .unwrap();
    let second = check_out("ent-bob");
    let bobs = second.data["password"].as_str().unwrap().to_owned();
    assert_eq!(bobs, live());
    refused_with(
        mount.request(check_out_lease_request(Operation::Renew, &stale)),
        400,
        "already checked in",
    );
    mount
        .request(check_out_lease_request(Operation::Revoke, &stale))
        .unwrap();
    assert_eq!(live(), bobs, "the stale lease's end changed nothing");
    assert_eq!(
        mount.read("library/team-pool/status")["pool_a"]["borrower_entity_id"],
        "ent-bob"
    );

    // Bob's lease ends: the account rotates and is free again.
    mount
        .request(check_out_lease_request(
            Operation::Revoke,
            &lease_of(&second, Duration::ZERO),
        ))
        .unwrap();
    assert_ne!(live(), bobs);
    assert_eq!(
        mount.read("library/team-pool/status")["pool_a"],
        json!({ "available": true })
    );
    let history = mount.read("library/team-pool/history");
    assert_eq!(
        column(&history["service_accounts"], "pool_a", "trigger"),
        ["lease-end", "check-in", "create"]
    );
    // A shorter ttl asked for wins; a longer one is cut to the set's.
    let short = mount
        .request(as_caller(
            Operation::Update,
            "library/team-pool/check-out",
            json!({ "ttl": "10m" }),
            "ent-bob",
            "t",
        ))
        .unwrap()
        .unwrap();
    assert_eq!(short.secret.unwrap().ttl, Duration::from_secs(600));
}

#[test]
fn without_enforcement_anyone_checks_in_and_sets_change_their_accounts() {
    let (emulator, mount) = pool_setup();
    mount.write_ok(
        "library/team-pool",
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                "service_account_names": ["pool_a"], "disable_check_in_enforcement": true }),
    );
    // LDAP's defaults: 24h each.
    let set = mount.read("library/team-pool");
    assert_eq!(
        (set["ttl"].clone(), set["max_ttl"].clone()),
        (json!(86400), json!(86400))
    );
    let out = mount
        .request(as_caller(
            Operation::Update,
            "library/team-pool/check-out",
            json!({}),
            "ent-alice",
            "a",
        ))
        .unwrap()
        .unwrap();
    assert_eq!(out.data["service_account_name"], "pool_a");
    // Adding an account imports it; removing one that is out is refused.
    mount.write_ok(
        "library/team-pool",
        json!({ "service_account_names": ["pool_a", "pool_b"] }),
    );
    assert_ne!(
        emulator.get("polardb/pc-1/accounts/pool_b")["password"],
        fixture::INITIAL
    );
    refused_with(
        mount.write(
            "library/team-pool",
            json!({ "service_account_names": ["pool_b"] }),
        ),
        409,
        "checks it in with library/team-pool/check-in",
    );
    let back = mount
        .request(as_caller(
            Operation::Update,
            "library/team-pool/check-in",
            json!({}),
            "ent-bob",
            "b",
        ))
        .unwrap()
        .unwrap();
    assert_eq!(back.data["check_ins"], json!(["pool_a"]));
    mount.write_ok(
        "library/team-pool",
        json!({ "service_account_names": ["pool_b"] }),
    );
    assert_eq!(
        mount.read("library/team-pool")["service_account_names"],
        json!(["pool_b"])
    );
    // pool_a left the set: its claim went with it.
    mount.write_ok(
        "static-roles/team-a",
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "username": "pool_a" }),
    );
    refused_with(
        mount.write(
            "library/team-pool",
            json!({ "service_account_names": ["pool_b", "pool_a"] }),
        ),
        400,
        "already belongs to role \"team-a\"",
    );

    // Bad input says what to do.
    let create = |body: Value| mount.write("library/team-bad", body);
    let base = |extra: Value| {
        let mut body =
            json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1" });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    for (body, text) in [
        (
            base(json!({ "service_account_names": ["ghost"] })),
            "does not exist on cluster pc-1",
        ),
        (
            base(json!({ "service_account_names": ["report"], "ttl": "2h", "max_ttl": "1h" })),
            "must not be shorter than ttl",
        ),
        (
            base(json!({ "service_account_names": ["report", "report"] })),
            "twice",
        ),
        (
            base(
                json!({ "service_account_names": ["report", "app"], "dependents": ["dts:ali/dtsjob1/src"] }),
            ),
            "must name its service account",
        ),
        (
            base(
                json!({ "service_account_names": ["report", "app"], "dependents": ["drs:hw/drsjob1/so"] }),
            ),
            "DRS copies need a set of one",
        ),
        (
            base(
                json!({ "service_account_names": ["report"], "dependents": ["dts:ali/dtsjob1/src/app"] }),
            ),
            "not one of this set's",
        ),
        (
            json!({ "target": "external", "service_account_names": ["x"] }),
            "must be one of polardb-account, dcs-instance",
        ),
        (
            base(json!({ "service_account_names": ["bad:name"] })),
            "invalid name",
        ),
    ] {
        refused_with(create(body.clone()), 400, text);
    }
    assert_eq!(
        mount
            .request(Request::new(Operation::List, "library/"))
            .unwrap()
            .unwrap()
            .data["keys"],
        json!(["team-pool"]),
        "nothing stored by refused writes"
    );
}

#[test]
fn a_dcs_set_lends_the_instance_password_and_acl_accounts() {
    let (emulator, mount) = acl_setup();
    let instance_password = || {
        emulator.get("dcs/dcs-acl")["password"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let acl_password = || {
        emulator.get("dcs/dcs-acl/accounts/app_blue")["password"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let reply = mount.write_ok(
        "library/dcs-pool",
        json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-acl",
                "service_account_names": ["default", "app_blue"] }),
    );
    // The ACL reset settles for 0.3 s: the write may return before.
    let warnings = reply.map(|r| r.warnings).unwrap_or_default();
    assert!(
        warnings
            .iter()
            .all(|w| w.contains("retries continue in the background")),
        "{warnings:?}"
    );
    let wait_available = |account: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let status = mount.read("library/dcs-pool/status");
            if status[account]["available"] == true {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{account} not free in 20 s: {status}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_available("default");
    wait_available("app_blue");
    assert_ne!(instance_password(), fixture::INITIAL);
    assert_ne!(acl_password(), fixture::INITIAL);
    let set = mount.read("library/dcs-pool");
    assert_eq!(
        set["service_accounts"]["app_blue"]["drift_check"]["state"],
        "not_applicable"
    );
    assert_eq!(
        set["service_accounts"]["default"]["dcs_change_method"],
        "update"
    );

    let check_out = || {
        mount
            .request(as_caller(
                Operation::Update,
                "library/dcs-pool/check-out",
                json!({}),
                "ent-alice",
                "t",
            ))
            .unwrap()
            .unwrap()
    };
    let first = check_out();
    assert_eq!(first.data["service_account_name"], "default");
    assert_eq!(first.data["password"], instance_password().as_str());
    let second = check_out();
    assert_eq!(second.data["service_account_name"], "app_blue");
    let lent = acl_password();
    assert_eq!(second.data["password"], lent.as_str());
    let back = mount
        .request(as_caller(
            Operation::Update,
            "library/dcs-pool/check-in",
            json!({ "service_account_names": ["app_blue"] }),
            "ent-alice",
            "t",
        ))
        .unwrap()
        .unwrap();
    assert_eq!(back.data["check_ins"], json!(["app_blue"]));
    wait_available("app_blue");
    assert_ne!(
        acl_password(),
        lent,
        "the ACL account was reset at check-in"
    );
    // The instance password is the set's: no static role may take it,
    // while another instance's is free.
    refused_with(
        mount.write(
            "static-roles/dcs-other",
            json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-acl" }),
        ),
        400,
        "service account \"default\" of library set \"dcs-pool\"",
    );
    // Nor may a dual role take its ACL account.
    refused_with(
        mount.write(
            "static-roles/dcs-dual",
            json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-acl",
            "usernames": ["app_blue", "app_green"] }),
        ),
        400,
        "already belongs to",
    );
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
fn a_resource_belongs_to_one_role() {
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
    let cross_kind = mount.write("roles/team-a", json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "grants": "appdb=ReadOnly" }));
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

/// The fixture with accounts app_blue and app_green on cluster pc-1, with
/// the same grants on appdb: the two accounts of a dual role.
fn dual_seed() -> Value {
    let mut seed = fixture::seed();
    let cluster = &mut seed["alicloud"]["polardb_clusters"][0];
    cluster["databases"] = json!(["appdb"]);
    let grants = json!([{ "db_name": "appdb", "privilege": "ReadWrite" }]);
    for name in ["app_blue", "app_green"] {
        cluster["accounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "name": name, "password": fixture::INITIAL, "privileges": grants }));
    }
    seed
}

#[test]
fn a_dual_polardb_role_rotates_both_accounts_at_create_and_takes_turns() {
    let emulator = Emulator::start();
    let mut seed = dual_seed();
    let cluster = &mut seed["alicloud"]["polardb_clusters"][0];
    cluster["accounts"].as_array_mut().unwrap().push(json!({
        "name": "app_ro", "password": fixture::INITIAL,
        "privileges": [{ "db_name": "appdb", "privilege": "ReadOnly" }]
    }));
    for name in ["app_blue", "app_green"] {
        seed["alicloud"]["dts_jobs"]
            .as_array_mut()
            .unwrap()
            .push(json!({
                "id": format!("dts-{name}"), "region": "cn-hangzhou", "status": "Synchronizing",
                "src": { "user": name, "password": fixture::INITIAL, "instance_id": "pc-1" },
                "dest": { "user": "sink", "password": "Other-Pass-1" }
            }));
    }
    emulator.seed(seed);
    let mount = Mount::new(Arc::new(SystemClock));
    connections(&mount, &emulator);
    let account = |name: &str| emulator.get(&format!("polardb/pc-1/accounts/{name}"));

    let role = |usernames: Value| {
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                "usernames": usernames, "rotation_period": "24h" })
    };
    let refused = |body: Value, expected: &str| match mount.write("static-roles/team-dual", body) {
        Err(Error::BadRequest(message)) => assert!(message.contains(expected), "{message}"),
        other => panic!("{other:?}"),
    };
    refused(
        role(json!(["app_blue", "app_gone"])),
        "account app_gone does not exist on cluster pc-1",
    );
    refused(role(json!(["app_blue", "app_ro"])), "different privileges");

    let reply = mount.write_ok(
        "static-roles/team-dual",
        role(json!(["app_blue", "app_green"])),
    );
    let warnings = reply.map(|r| r.warnings).unwrap_or_default();
    assert!(warnings.is_empty(), "{warnings:?}");
    // Two import rotations, green then blue: Vault knows both passwords.
    let creds = mount.read("static-creds/team-dual");
    both_imported(&creds, &account);

    let mut previous = creds;
    for (active, inactive) in [("app_green", "app_blue"), ("app_blue", "app_green")] {
        mount.write_ok("rotate-role/team-dual", json!({}));
        let creds = mount.read("static-creds/team-dual");
        assert_eq!(creds["username"], active);
        assert_eq!(creds["last_username"], inactive);
        assert_eq!(
            creds["last_password"], previous["password"],
            "the account clients used keeps its password"
        );
        assert_ne!(creds["password"], previous["last_password"]);
        assert_eq!(account(active)["password"], creds["password"]);
        assert_eq!(account(inactive)["password"], creds["last_password"]);
        previous = creds;
    }
    let role = mount.read("static-roles/team-dual");
    assert_eq!(role["status"], "ok");
    assert_eq!(role["usernames"], json!(["app_blue", "app_green"]));
    let history = mount.read("history/team-dual");
    assert_eq!(
        history["rotations"].as_array().unwrap().len(),
        4,
        "{history}"
    );

    // A write that adds a copy pinned to each account gives each its own
    // account's password, the inactive one's included; nothing flips.
    let reply = mount.write_ok(
        "static-roles/team-dual",
        json!({ "dependents": ["dts:ali/dts-app_blue/src/app_blue", "dts:ali/dts-app_green/src/app_green"] }),
    );
    let warnings = reply.map(|r| r.warnings).unwrap_or_default();
    assert!(warnings.is_empty(), "{warnings:?}");
    let creds = mount.read("static-creds/team-dual");
    for field in ["username", "password", "last_username", "last_password"] {
        assert_eq!(creds[field], previous[field], "no rotation: {field}");
    }
    let job = |name: &str| emulator.get(&format!("dts/dts-{name}"))["src"]["password"].clone();
    assert_eq!(job("app_blue"), creds["password"]);
    assert_eq!(job("app_green"), creds["last_password"]);
    let role = mount.read("static-roles/team-dual");
    let states = column(&role, "dependent_states", "state");
    assert_eq!(states, ["in_sync", "in_sync"], "{role}");
    let history = mount.read("history/team-dual");
    let pushes: Vec<(&Value, &Value)> = history["rotations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["trigger"] == "propagate")
        .map(|r| (&r["account"], &r["active_after"]))
        .collect();
    assert_eq!(pushes.len(), 2, "{history}");
    assert!(pushes.iter().all(|(_, after)| **after == creds["username"]));

    // A dry run reads and names the account the next rotation changes,
    // and finds a healthy role healthy.
    let plan = Value::Object(
        mount
            .write_ok("rotate-role/team-dual", json!({ "dry_run": true }))
            .unwrap()
            .data,
    );
    let inactive = creds["last_username"].as_str().unwrap();
    assert_eq!(plan["calls"][0]["resource"], format!("pc-1/{inactive}"));
    assert_eq!(plan["prechecks"][0]["marker"], "in_sync", "{plan}");
    let checked: Vec<&Value> = plan["prechecks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.get("dependent"))
        .collect();
    assert_eq!(
        checked,
        [&json!(format!("dts:ali/dts-{inactive}/src/{inactive}"))]
    );
    assert_eq!(plan["would_end"], "ok");
}

/// The fixture plus DCS instance dcs-acl (Redis 6.0) with ACL accounts
/// app_blue and app_green, whose resets settle for 0.3 s; a mount that
/// looks again every 100 ms.
fn acl_setup() -> (Emulator, Mount) {
    let emulator = Emulator::start();
    let mut seed = fixture::seed();
    let acl = |name: &str| json!({ "name": name, "password": fixture::INITIAL, "role": "write" });
    seed["huaweicloud"]["dcs_instances"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "id": "dcs-acl", "project_id": fixture::PROJECT, "password": fixture::INITIAL,
            "engine_version": "6.0", "account_settle_seconds": 0.3,
            "acl_accounts": [acl("app_blue"), acl("app_green")]
        }));
    emulator.seed(seed);
    let mount = Mount::with(
        Arc::new(SystemClock),
        &[("settle_poll", "100ms")],
        StaticSystemView::default(),
    );
    connections(&mount, &emulator);
    (emulator, mount)
}

#[test]
fn a_dual_dcs_role_sets_both_accounts_by_itself_after_create() {
    let (emulator, mount) = acl_setup();
    let account = |name: &str| emulator.get(&format!("dcs/dcs-acl/accounts/{name}"));

    let reply = mount.write_ok(
        "static-roles/dcs-dual",
        json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-acl",
                "usernames": ["app_blue", "app_green"], "rotation_period": "24h" }),
    );
    // The reset settles for 0.3 s: the write returns while the first
    // import rotation (app_green) is settling, and says what comes next.
    let warnings = reply.map(|r| r.warnings).unwrap_or_default().join(" ");
    assert!(
        warnings.contains(r#"then rotates "app_blue" by itself"#),
        "{warnings}"
    );

    // No operator action: the engine finishes both import rotations.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let creds = loop {
        let role = mount.read("static-roles/dcs-dual");
        // No password at all until the first import rotation finishes.
        let creds = mount
            .request(Request::new(Operation::Read, "static-creds/dcs-dual"))
            .map(|r| Value::Object(r.map(|r| r.data).unwrap_or_default()));
        if let Ok(creds) = &creds
            && creds["last_password"] != ""
            && role["rotation_in_progress"].is_null()
        {
            break creds.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "both accounts not set by Vault in 20 s: {creds:?} {role}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    both_imported(&creds, &account);
    let history = mount.read("history/dcs-dual");
    let triggers = column(&history, "rotations", "trigger");
    assert_eq!(triggers, ["create", "create"], "{history}");
}

#[test]
fn deleting_a_dual_role_releases_both_accounts() {
    let emulator = Emulator::start();
    emulator.seed(dual_seed());
    let mount = Mount::new(Arc::new(SystemClock));
    connections(&mount, &emulator);
    let description = |name: &str| {
        emulator.get(&format!("polardb/pc-1/accounts/{name}"))["description"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let body = json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                       "usernames": ["app_blue", "app_green"], "rotation_period": "24h" });
    let delete = || {
        mount
            .request(Request::new(Operation::Delete, "static-roles/team-dual"))
            .expect("deleted")
            .map(|r| r.warnings)
            .unwrap_or_default()
    };

    mount.write_ok("static-roles/team-dual", body.clone());
    let owner = mount.read("static-roles/team-dual")["mount_owner_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let marked = |name: &str| description(name).contains(&owner);
    assert!(marked("app_blue") && marked("app_green"), "both marked");
    assert_eq!(delete(), Vec::<String>::new());
    assert!(!marked("app_blue") && !marked("app_green"), "both released");

    // One account's marker cannot be removed: said, the other released.
    mount.write_ok("static-roles/team-dual", body);
    emulator.set_faults(json!({"scripted": [{
        "api": "polardb.ModifyAccountDescription", "code": "IncorrectDBClusterState"
    }]}));
    let warnings = delete();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("its ownership marker stays on the target (account app_blue: ")
            && warnings[0].contains("take_over=true"),
        "{warnings:?}"
    );
    assert!(marked("app_blue") && !marked("app_green"));
}

// ------------------------------------------------------- dynamic roles

/// A mount for dynamic roles: the wait for an account polls every 100 ms,
/// and the rollback takes WAL entries of any age.
fn dynamic_setup() -> (Emulator, Mount) {
    let emulator = Emulator::start();
    emulator.seed(fixture::seed());
    emulator.seed(json!({ "alicloud": { "polardb_clusters": [
        { "id": "pc-dyn", "region": "cn-hangzhou", "databases": ["appdb", "logs"] }
    ]}}));
    let mount = Mount::with(
        Arc::new(SystemClock),
        &[
            ("account_ready_poll", "100ms"),
            ("wal_rollback_min_age", "0s"),
        ],
        StaticSystemView::default(),
    );
    connections(&mount, &emulator);
    mount.write_ok(
        "roles/team-dyn",
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-dyn",
                "grants": { "appdb": "ReadWrite", "logs": "ReadOnly" },
                "default_ttl": "1h", "max_ttl": "2h" }),
    );
    (emulator, mount)
}

/// A renew or revoke of `lease` as the host sends it.
fn dynamic_lease_request(operation: Operation, lease: &LeaseGrant, increment: Duration) -> Request {
    let mut internal = lease.internal_data.clone();
    internal.insert("secret_type".into(), json!(lease.secret_type));
    let mut request = Request::new(operation, "creds/team-dyn");
    request.secret = Some(LeaseInfo {
        lease_id: "database/creds/team-dyn/abc".into(),
        internal_data: internal,
        increment,
        ..Default::default()
    });
    request
}

fn issue(mount: &Mount, role: &str) -> Result<Response, Error> {
    Ok(mount
        .request(Request::new(Operation::Read, format!("creds/{role}")))?
        .expect("an answer"))
}

/// Whether the emulator still has account `name` of cluster pc-dyn, other
/// than being deleted.
fn polardb_account_live(emulator: &Emulator, name: &str) -> bool {
    emulator.get("polardb/pc-dyn")["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|account| account["name"] == name && account["status"] != "Deleting")
}

#[test]
fn dynamic_polardb_accounts_live_as_long_as_their_leases() {
    let (emulator, mount) = dynamic_setup();
    let out = issue(&mount, "team-dyn").unwrap();
    let username = out.data["username"].as_str().unwrap().to_owned();
    let lease = out.secret.clone().expect("a lease");
    assert_eq!(
        (lease.ttl, lease.max_ttl),
        (Duration::from_secs(3600), Duration::from_secs(7200))
    );
    let account = emulator.get(&format!("polardb/pc-dyn/accounts/{username}"));
    assert_eq!(account["password"], out.data["password"]);
    assert_eq!(account["status"], "Available");
    assert_eq!(account["type"], "Normal");
    assert_eq!(
        account["privileges"],
        json!([{ "db_name": "appdb", "privilege": "ReadWrite" }, { "db_name": "logs", "privilege": "ReadOnly" }])
    );
    let role = mount.read("roles/team-dyn");
    assert_eq!(role["pending_cleanups"], 0);
    assert!(
        !role
            .to_string()
            .contains(out.data["password"].as_str().unwrap())
    );

    let calls = emulator.counters()["calls"].clone();
    let renewed = mount
        .request(dynamic_lease_request(
            Operation::Renew,
            &lease,
            Duration::from_secs(3 * 3600),
        ))
        .unwrap()
        .unwrap()
        .secret
        .unwrap();
    assert!(renewed.ttl <= Duration::from_secs(7200) && renewed.ttl > Duration::from_secs(7100));
    assert_eq!(
        emulator.counters()["calls"],
        calls,
        "renew makes no cloud call"
    );

    mount
        .request(dynamic_lease_request(
            Operation::Revoke,
            &lease,
            Duration::ZERO,
        ))
        .unwrap();
    assert!(!polardb_account_live(&emulator, &username), "deleted");
    mount
        .request(dynamic_lease_request(
            Operation::Revoke,
            &lease,
            Duration::ZERO,
        ))
        .expect("a second revoke finds it gone, which is done");
}

#[test]
fn dynamic_creds_name_the_cloud_code_of_a_stopped_or_full_cluster() {
    let (emulator, mount) = dynamic_setup();
    emulator.patch_status("polardb/pc-dyn", "Stopped");
    let stopped = issue(&mount, "team-dyn").unwrap_err();
    assert!(
        matches!(&stopped, Error::Coded { status: 503, message } if message.contains("OperationDenied.DBClusterStatus")),
        "{stopped:?}"
    );
    emulator.patch_status("polardb/pc-dyn", "Running");
    emulator.seed(json!({ "alicloud": { "polardb_clusters": [
        { "id": "pc-dyn", "region": "cn-hangzhou", "account_limit": 1 }
    ]}}));
    let first = issue(&mount, "team-dyn").unwrap();
    let full = issue(&mount, "team-dyn").unwrap_err();
    assert!(
        matches!(&full, Error::Coded { status: 429, message } if message.contains("QuotaExceeded.AccountName")),
        "{full:?}"
    );
    // Neither refusal left an account or a cleanup behind.
    let accounts = emulator.get("polardb/pc-dyn")["accounts"].clone();
    assert_eq!(accounts.as_array().unwrap().len(), 1, "{accounts}");
    assert_eq!(accounts[0]["name"], first.data["username"]);
    assert_eq!(mount.read("roles/team-dyn")["pending_cleanups"], 0);
}

#[test]
fn dynamic_creds_whose_grant_fails_delete_the_account_at_once_or_at_the_rollback() {
    let (emulator, mount) = dynamic_setup();
    let refused_grant = json!({
        "api": "polardb.GrantAccountPrivilege", "code": "Forbidden.RAM", "status": 403
    });
    emulator.set_faults(json!({ "scripted": [refused_grant] }));
    let refused = issue(&mount, "team-dyn").unwrap_err();
    assert!(
        matches!(&refused, Error::Coded { status: 403, message }
            if message.contains("Forbidden.RAM") && message.contains("GrantAccountPrivilege")
                && message.contains("the account was deleted")),
        "{refused:?}"
    );
    let accounts = emulator.get("polardb/pc-dyn")["accounts"].clone();
    let first = accounts[0]["name"].as_str().unwrap().to_owned();
    assert!(!polardb_account_live(&emulator, &first));
    assert_eq!(mount.read("roles/team-dyn")["pending_cleanups"], 0);

    // The delete is refused too: the account waits for the rollback.
    emulator.set_faults(json!({ "scripted": [refused_grant, {
        "api": "polardb.DeleteAccount", "code": "Forbidden.RAM", "status": 403
    }]}));
    let refused = issue(&mount, "team-dyn").unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("deletes the account by itself"),
        "{refused:?}"
    );
    let accounts = emulator.get("polardb/pc-dyn")["accounts"].clone();
    let second = accounts
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|account| account["name"].as_str())
        .find(|name| *name != first)
        .unwrap()
        .to_owned();
    assert!(polardb_account_live(&emulator, &second));
    assert_eq!(mount.read("roles/team-dyn")["pending_cleanups"], 1);
    // The host's rollback tick.
    mount
        .request(Request::new(Operation::Rollback, ""))
        .unwrap();
    assert!(!polardb_account_live(&emulator, &second));
    assert_eq!(mount.read("roles/team-dyn")["pending_cleanups"], 0);
}

#[test]
fn dynamic_creds_survive_a_lost_create_answer() {
    let (emulator, mount) = dynamic_setup();
    emulator.set_faults(json!({
        "gateway_error_after_apply_rate": 1.0, "apis": ["polardb.CreateAccount"]
    }));
    let out = issue(&mount, "team-dyn").unwrap();
    let username = out.data["username"].as_str().unwrap();
    assert!(polardb_account_live(&emulator, username), "looked up");
    // Re-sent with the same client token, which PolarDB answers like the
    // first: one account, however many answers were lost.
    let accounts = emulator.get("polardb/pc-dyn")["accounts"].clone();
    assert_eq!(accounts.as_array().unwrap().len(), 1, "{accounts}");
}

#[test]
fn dynamic_dcs_acl_accounts_take_the_role_and_go_with_the_lease() {
    let (emulator, mount) = dynamic_setup();
    mount.write_ok(
        "roles/dcs-dyn",
        json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-1", "acl_role": "read",
                "default_ttl": "10m" }),
    );
    let out = issue(&mount, "dcs-dyn").unwrap();
    let username = out.data["username"].as_str().unwrap().to_owned();
    let account = emulator.get(&format!("dcs/dcs-1/accounts/{username}"));
    assert_eq!(account["role"], "read");
    assert_eq!(account["status"], "AVAILABLE");
    assert_eq!(account["password"], out.data["password"]);
    let lease = out.secret.unwrap();
    assert_eq!(lease.ttl, Duration::from_secs(600));
    mount
        .request(dynamic_lease_request(
            Operation::Revoke,
            &lease,
            Duration::ZERO,
        ))
        .unwrap();
    let gone = emulator.get("dcs/dcs-1")["acl_accounts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .all(|a| a["name"] != username.as_str() || a["status"] == "DELETING");
    assert!(gone, "deleted");

    // Redis 3.0 has no ACL accounts: said when the role is written.
    emulator.seed(json!({ "huaweicloud": { "dcs_instances": [
        { "id": "dcs-old", "project_id": fixture::PROJECT, "password": fixture::INITIAL, "engine_version": "3.0" }
    ]}}));
    let old = mount.write(
        "roles/dcs-old",
        json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-old", "acl_role": "write" }),
    );
    assert!(
        matches!(&old, Err(Error::BadRequest(message)) if message.contains("DCS.4008") && message.contains("Redis 4.0 or 5.0")),
        "{old:?}"
    );
    assert!(issue(&mount, "dcs-old").is_err(), "not stored");
}

#[test]
fn a_dynamic_role_write_names_the_missing_cluster_or_database() {
    let (emulator, mount) = dynamic_setup();
    let missing = mount.write(
        "roles/no-db",
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-dyn",
                "grants": { "appdb": "ReadWrite", "billing": "ReadOnly" } }),
    );
    assert!(
        matches!(&missing, Err(Error::BadRequest(message))
            if message.contains("database billing does not exist on PolarDB cluster pc-dyn (DescribeDatabases lists: appdb, logs)")),
        "{missing:?}"
    );
    let no_cluster = mount.write(
        "roles/no-cluster",
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-404",
                "grants": { "appdb": "ReadWrite" } }),
    );
    assert!(
        matches!(&no_cluster, Err(Error::BadRequest(message))
            if message.contains("PolarDB cluster pc-404 does not exist") && message.contains("InvalidDBClusterId.NotFound")),
        "{no_cluster:?}"
    );
    let no_instance = mount.write(
        "roles/dcs-none",
        json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-404", "acl_role": "read" }),
    );
    assert!(
        matches!(&no_instance, Err(Error::BadRequest(message))
            if message.contains("DCS instance dcs-404 does not exist") && message.contains("DCS.3022")),
        "{no_instance:?}"
    );
    // A server error that lasts past the retries: saved, with a warning.
    emulator.set_faults(json!({
        "scripted": [{ "api": "polardb.DescribeDatabases", "code": "ServiceUnavailable", "status": 503, "count": 10 }]
    }));
    let saved = mount
        .write_ok(
            "roles/unchecked",
            json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-dyn",
                    "grants": { "appdb": "ReadWrite" } }),
        )
        .expect("warnings");
    assert!(
        saved.warnings.iter().any(|w| w.contains("saved unchecked")),
        "{:?}",
        saved.warnings
    );
}

#[test]
fn a_connection_name_no_config_path_can_take_is_a_400_everywhere() {
    let (_emulator, mount) = setup();
    let writes = [
        (
            "static-roles/bad-conn",
            json!({ "target": "polardb-account", "connection": ".", "cluster_id": "pc-1", "username": "app" }),
        ),
        (
            "library/bad-conn",
            json!({ "target": "polardb-account", "connection": "a/b", "cluster_id": "pc-1", "service_account_names": "report" }),
        ),
        (
            "roles/bad-conn",
            json!({ "target": "polardb-account", "connection": "..", "cluster_id": "pc-1", "grants": "appdb=ReadOnly" }),
        ),
    ];
    for (path, body) in writes {
        match mount.write(path, body) {
            Err(Error::BadRequest(message)) => {
                assert!(
                    message.contains("connection: invalid name"),
                    "{path}: {message}"
                )
            }
            other => panic!("{path}: {other:?}"),
        }
    }
}
