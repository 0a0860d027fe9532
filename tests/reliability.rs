//! `make reliability`: does the plugin lose or lock anything when processes
//! die, clouds misbehave and leaders change? Each test prints its figures.
//! Counts come from the environment (`RELIABILITY_ROTATIONS`,
//! `RELIABILITY_ROLES`, `RELIABILITY_HA_ROLES`) so CI runs a smaller
//! version; the tests are `#[ignore]`d by plain `cargo test`.

#[path = "support/chaos.rs"]
mod chaos;
#[path = "support/emulator.rs"]
mod emulator;
#[path = "support/server.rs"]
mod server;
#[path = "support/tools.rs"]
mod tools;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chaos::{env_count, print_table};
use emulator::Emulator;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use server::{Cluster, Options, Server};

const ALI_AK: &str = "LTAI-reliability-key";
const ALI_SK: &str = "reliability-alibaba-secret-key";
const HW_AK: &str = "HWRELIABILITYKEY0001";
const HW_SK: &str = "reliability-huawei-secret-key-0001";
const PROJECT: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const INITIAL: &str = "Initial-Pass-1";

/// What one role rotates and where its copies live.
#[derive(Clone, Debug)]
enum Kind {
    /// Account `acc-i` on cluster `pc-1`, copied in DTS job `dts-i` (src).
    Polardb,
    /// Instance `dcs-i`, copied in DRS job `drs-i` (so).
    Dcs,
    /// A password the operator gives, copied in `dts-i` (dest) and `drs-i` (ta).
    External,
    /// Instance `dcs-wide`, copied in the `so` side of [`WIDE_COPIES`] DRS
    /// jobs: more than batch-status's default page of 5, one of them a
    /// failed job (which still takes a password).
    DcsManyCopies,
}

/// The DRS copies of the [`Kind::DcsManyCopies`] role.
const WIDE_COPIES: usize = 7;

#[derive(Clone, Debug)]
struct RoleSpec {
    name: String,
    kind: Kind,
    index: usize,
}

fn roles(per_kind: usize) -> Vec<RoleSpec> {
    let mut out = Vec::new();
    for index in 0..per_kind {
        for (prefix, kind) in [
            ("pdb", Kind::Polardb),
            ("dcs", Kind::Dcs),
            ("ext", Kind::External),
        ] {
            out.push(RoleSpec {
                name: format!("{prefix}-{index}"),
                kind,
                index,
            });
        }
    }
    out.push(RoleSpec {
        name: "dcs-wide".into(),
        kind: Kind::DcsManyCopies,
        index: 0,
    });
    out
}

/// Resources for `per_kind` roles of each kind.
fn seed(per_kind: usize) -> Value {
    let accounts: Vec<Value> = (0..per_kind)
        .map(|i| json!({ "name": format!("acc-{i}"), "password": INITIAL }))
        .collect();
    let dts: Vec<Value> = (0..per_kind)
        .map(|i| {
            json!({ "id": format!("dts-{i}"), "status": "Synchronizing",
                    "src": { "user": format!("acc-{i}"), "password": INITIAL },
                    "dest": { "user": format!("sink-{i}"), "password": INITIAL } })
        })
        .collect();
    let mut dcs: Vec<Value> = (0..per_kind)
        .map(|i| json!({ "id": format!("dcs-{i}"), "project_id": PROJECT, "password": INITIAL }))
        .collect();
    dcs.push(json!({ "id": "dcs-wide", "project_id": PROJECT, "password": INITIAL }));
    let mut drs: Vec<Value> = (0..per_kind)
        .map(|i| {
            json!({ "id": format!("drs-{i}"), "project_id": PROJECT, "status": "INCRE_TRANSFER_STARTED",
                    "so": { "password": INITIAL }, "ta": { "password": INITIAL } })
        })
        .collect();
    drs.extend((0..WIDE_COPIES).map(|n| {
        let status = if n == WIDE_COPIES - 1 {
            "INCRE_TRANSFER_FAILED"
        } else {
            "INCRE_TRANSFER_STARTED"
        };
        json!({ "id": format!("drs-wide-{n}"), "project_id": PROJECT, "status": status,
                "so": { "password": INITIAL }, "ta": { "password": INITIAL } })
    }));
    json!({
        "alicloud": {
            "users": [{ "name": "vault", "access_keys": [{ "id": ALI_AK, "secret": ALI_SK }] }],
            "polardb_clusters": [{ "id": "pc-1", "region": "cn-hangzhou", "accounts": accounts }],
            "dts_jobs": dts
        },
        "huaweicloud": {
            "users": [{ "id": "hw-vault", "name": "vault", "access_keys": [{ "access": HW_AK, "secret": HW_SK }] }],
            "projects": [PROJECT],
            "dcs_instances": dcs,
            "drs_jobs": drs
        }
    })
}

fn connections(server: &Server, emulator: &Emulator) {
    for body in [
        json!({ "provider": "alicloud", "region": "cn-hangzhou", "access_key": ALI_AK, "secret_key": ALI_SK,
                "endpoint": emulator.url, "allowed_roles": "*", "request_timeout": "3s",
                "requests_per_second": 200 }),
        json!({ "provider": "huaweicloud", "region": "cn-north-4", "access_key": HW_AK, "secret_key": HW_SK,
                "project_id": PROJECT, "endpoint": emulator.url, "allowed_roles": "*", "request_timeout": "3s",
                "requests_per_second": 200 }),
    ] {
        let name = if body["provider"] == "alicloud" {
            "ali"
        } else {
            "hw"
        };
        server
            .write(&format!("database/config/{name}"), body)
            .data();
    }
}

fn role_body(role: &RoleSpec, schedule: Option<&str>, adopt: bool) -> Value {
    let i = role.index;
    let mut body = match role.kind {
        Kind::Polardb => {
            json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                                 "username": format!("acc-{i}"), "dependents": format!("dts:ali/dts-{i}/src") })
        }
        Kind::Dcs => {
            json!({ "target": "dcs-instance", "connection": "hw", "instance_id": format!("dcs-{i}"),
                             "password": INITIAL, "dependents": format!("drs:hw/drs-{i}/so") })
        }
        Kind::External => json!({ "target": "external", "username": format!("sink-{i}"),
                                  "dependents": [format!("dts:ali/dts-{i}/dest"), format!("drs:hw/drs-{i}/ta")] }),
        Kind::DcsManyCopies => {
            let dependents: Vec<String> = (0..WIDE_COPIES)
                .map(|n| format!("drs:hw/drs-wide-{n}/so"))
                .collect();
            json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-wide",
                    "password": INITIAL, "dependents": dependents })
        }
    };
    let object = body.as_object_mut().unwrap();
    if let (Some(period), false) = (schedule, matches!(role.kind, Kind::External)) {
        object.insert("rotation_period".into(), json!(period));
    }
    if adopt && !matches!(role.kind, Kind::External) {
        object.insert("password".into(), json!(INITIAL));
        object.insert("skip_import_rotation".into(), json!(true));
    }
    body
}

/// A password for an external role, as an operator would set it.
fn operator_password(rng: &mut impl Rng) -> String {
    format!("Op-{:012x}-9a", rng.random::<u64>() & 0xffff_ffff_ffff)
}

/// A raw HTTP client for the load threads (the server may be down).
struct Client {
    http: reqwest::blocking::Client,
    addr: String,
    token: String,
}

impl Client {
    fn new(addr: &str, token: &str) -> Self {
        Self {
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            addr: addr.to_owned(),
            token: token.to_owned(),
        }
    }

    /// The status, or 0 when the server did not answer.
    fn post(&self, path: &str, body: Value) -> u16 {
        self.http
            .post(format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.token)
            .json(&body)
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }
}

/// Rotations applied so far, counted by the emulator: each rotation gives
/// the authoritative copy (the target, or an external role's first job
/// copy) exactly one new password.
fn rotations_applied(emulator: &Emulator, roles: &[RoleSpec]) -> u64 {
    let state = emulator.get("state");
    roles
        .iter()
        .map(|role| {
            authoritative(&state, role)["new_passwords"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum()
}

fn find<'a>(list: &'a Value, key: &str, id: &str) -> &'a Value {
    list.as_array()
        .and_then(|items| items.iter().find(|item| item[key] == id))
        .unwrap_or(&Value::Null)
}

/// The copy whose password is the truth for `role`.
fn authoritative<'a>(state: &'a Value, role: &RoleSpec) -> &'a Value {
    let i = role.index;
    match role.kind {
        Kind::Polardb => find(
            &state["alicloud"]["polardb_clusters"][0]["accounts"],
            "name",
            &format!("acc-{i}"),
        ),
        Kind::Dcs => find(
            &state["huaweicloud"]["dcs_instances"],
            "id",
            &format!("dcs-{i}"),
        ),
        Kind::External => &find(&state["alicloud"]["dts_jobs"], "id", &format!("dts-{i}"))["dest"],
        Kind::DcsManyCopies => find(&state["huaweicloud"]["dcs_instances"], "id", "dcs-wide"),
    }
}

/// The job copies that must follow it.
fn copies<'a>(state: &'a Value, role: &RoleSpec) -> Vec<(&'static str, &'a Value)> {
    let i = role.index;
    let dts = find(&state["alicloud"]["dts_jobs"], "id", &format!("dts-{i}"));
    let drs = find(&state["huaweicloud"]["drs_jobs"], "id", &format!("drs-{i}"));
    match role.kind {
        Kind::Polardb => vec![("dts src", &dts["src"])],
        Kind::Dcs => vec![("drs so", &drs["so"])],
        Kind::External => vec![("drs ta", &drs["ta"])],
        Kind::DcsManyCopies => (0..WIDE_COPIES)
            .map(|n| {
                let job = find(
                    &state["huaweicloud"]["drs_jobs"],
                    "id",
                    &format!("drs-wide-{n}"),
                );
                ("drs-wide so", &job["so"])
            })
            .collect(),
    }
}

/// Whether the target and every copy of `role` hold Vault's password.
fn every_copy_right(server: &Server, emulator: &Emulator, role: &RoleSpec) -> bool {
    let password = server
        .read(&format!("database/static-creds/{}", role.name))
        .body["data"]["password"]
        .clone();
    let state = emulator.get("state");
    authoritative(&state, role)["password"] == password
        && copies(&state, role)
            .iter()
            .all(|(_, copy)| copy["password"] == password)
}

/// What settling took: manual resumes of roles that gave up, and how many
/// of those had given up although the target and every copy already held
/// Vault's password (the engine must never leave a role so).
struct Settled {
    resumes: usize,
    failed_while_right: usize,
}

/// Turns off schedules, waits until every role is `ok` (manually resuming
/// the ones that gave up, as an operator would).
fn settle(server: &Server, emulator: &Emulator, roles: &[RoleSpec]) -> Settled {
    for role in roles {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let reply = server.write(
                &format!("database/static-roles/{}", role.name),
                json!({ "disable_automated_rotation": true }),
            );
            if reply.status < 300 {
                break;
            }
            assert!(Instant::now() < deadline, "{}: {reply:?}", role.name);
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let mut settled = Settled {
        resumes: 0,
        failed_while_right: 0,
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let mut pending = Vec::new();
        for role in roles {
            let state = server.read(&format!("database/static-roles/{}", role.name));
            let status = state.body["data"]["status"]
                .as_str()
                .unwrap_or("unreadable")
                .to_owned();
            if status == "failed" || status == "deferred" {
                if status == "failed" && every_copy_right(server, emulator, role) {
                    println!(
                        "{} gave up although every copy is right: {state:?}",
                        role.name
                    );
                    settled.failed_while_right += 1;
                }
                server.write(&format!("database/rotate-role/{}", role.name), json!({}));
                settled.resumes += 1;
            }
            if status != "ok" {
                pending.push(format!("{}={status}", role.name));
            }
        }
        if pending.is_empty() {
            return settled;
        }
        assert!(
            Instant::now() < deadline,
            "roles did not settle: {pending:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The invariants every role must meet once settled. Returns the count of
/// failed outcomes found in history.
fn verify(server: &Server, emulator: &Emulator, roles: &[RoleSpec]) -> usize {
    let state = emulator.get("state");
    let mut failed_outcomes = 0;
    for role in roles {
        let name = &role.name;
        let read = server.read(&format!("database/static-roles/{name}"));
        assert_eq!(read.data()["status"], "ok", "{name}: {read:?}");
        assert!(
            read.data()["rotation_in_progress"].is_null(),
            "{name}: {read:?}"
        );
        let password = server.read(&format!("database/static-creds/{name}")).data()["password"]
            .as_str()
            .unwrap()
            .to_owned();
        let truth = authoritative(&state, role);
        assert_eq!(
            truth["password"],
            password.as_str(),
            "{name}: the target holds Vault's password"
        );
        for (what, copy) in copies(&state, role) {
            assert_eq!(
                copy["password"],
                password.as_str(),
                "{name}: the {what} copy follows"
            );
            assert_eq!(
                copy["new_passwords"], truth["new_passwords"],
                "{name}: as many new passwords in the {what} copy as in the target: no rotation generated a second password"
            );
        }
        if matches!(role.kind, Kind::Dcs) {
            assert_eq!(truth["locked_until"], Value::Null, "{name}: never locked");
        }
        let history = server.read(&format!("database/history/{name}"));
        let mut last_outcome: HashMap<String, String> = HashMap::new();
        for entry in history.data()["rotations"].as_array().unwrap().iter().rev() {
            last_outcome.insert(
                entry["rotation_id"].as_str().unwrap().to_owned(),
                entry["outcome"].as_str().unwrap().to_owned(),
            );
        }
        for (id, outcome) in &last_outcome {
            assert!(
                outcome == "succeeded" || outcome == "failed",
                "{name}: rotation {id} ended as {outcome:?}"
            );
            failed_outcomes += usize::from(outcome == "failed");
        }
    }
    failed_outcomes
}

/// Once settled, every PolarDB and DCS target carries this mount's marker
/// for the password Vault holds (a marker write that failed under the
/// faults is redone by the next drift check). Returns the wrong old
/// passwords DCS refused, over all instances and all time.
fn markers_in_sync_and_dcs_attempts_spent(
    server: &Server,
    emulator: &Emulator,
    roles: &[RoleSpec],
) -> u64 {
    for role in roles.iter().filter(|r| !matches!(r.kind, Kind::External)) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let read = server.read(&format!("database/static-roles/{}", role.name));
            assert_eq!(read.data()["status"], "ok", "{}: {read:?}", role.name);
            if read.data()["drift_check"]["state"] == "in_sync" {
                break;
            }
            assert!(Instant::now() < deadline, "{}: {read:?}", role.name);
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    roles
        .iter()
        .filter(|r| matches!(r.kind, Kind::Dcs))
        .map(|r| {
            emulator.get(&format!("dcs/dcs-{}", r.index))["wrong_old_passwords"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum()
}

#[test]
#[ignore = "long: run with make reliability"]
fn crash_safety_under_kills_restarts_and_faults() {
    let target = env_count("RELIABILITY_ROTATIONS", 300) as u64;
    let per_kind = env_count("RELIABILITY_ROLES", 8);
    let roles = roles(per_kind);
    let emulator = Emulator::start();
    emulator.seed(seed(per_kind));
    let server = Server::start_with(
        "reliability-crash",
        Options {
            log_level: "info",
            ..Options::default()
        },
    );
    server.enable(
        "database",
        &[
            ("retry_base", "200ms"),
            ("retry_cap", "2s"),
            ("defer_retry", "1s"),
            ("jitter", "200ms"),
            // Drift checks run through the chaos too: none may be false.
            ("drift_check_interval", "3s"),
        ],
    );
    connections(&server, &emulator);
    let mut rng = StdRng::seed_from_u64(20261201);
    for role in &roles {
        server
            .write(
                &format!("database/static-roles/{}", role.name),
                role_body(role, Some("5s"), false),
            )
            .data();
        if matches!(role.kind, Kind::External) {
            let given = operator_password(&mut rng);
            let reply = server.write(
                &format!("database/rotate-role/{}", role.name),
                json!({ "password": given }),
            );
            assert_eq!(reply.data()["status"], "ok", "{reply:?}");
        }
    }
    emulator.set_faults(json!({
        "seed": 42, "throttle_rate": 0.2, "server_error_rate": 0.1, "drop_after_apply_rate": 0.05,
        "drop_after_apply_hold_ms": 0, "gateway_error_after_apply_rate": 0.05
    }));

    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let statuses: Arc<std::sync::Mutex<BTreeMap<u16, u64>>> = Default::default();
    let started = Instant::now();
    let driver = {
        let (stop, requests, statuses) = (stop.clone(), requests.clone(), statuses.clone());
        let client = Client::new(&server.addr, &server.token);
        let roles = roles.clone();
        std::thread::spawn(move || {
            let mut rng = StdRng::seed_from_u64(7);
            while !stop.load(Ordering::Relaxed) {
                let role = &roles[rng.random_range(0..roles.len())];
                let path = format!("database/rotate-role/{}", role.name);
                let mut status = if matches!(role.kind, Kind::External) {
                    client.post(&path, json!({ "password": operator_password(&mut rng) }))
                } else {
                    client.post(&path, json!({}))
                };
                if status == 409 {
                    // An earlier rotation of it is unfinished: let it complete.
                    status = client.post(&path, json!({}));
                }
                requests.fetch_add(1, Ordering::Relaxed);
                *statuses.lock().unwrap().entry(status).or_default() += 1;
                std::thread::sleep(Duration::from_millis(rng.random_range(50..250)));
            }
        })
    };
    let chaos = {
        let stop = stop.clone();
        std::thread::spawn(move || chaos::run(server, 99, &stop))
    };
    let deadline = Duration::from_secs(env_count("RELIABILITY_MINUTES", 20) as u64 * 60);
    let mut applied = 0;
    while started.elapsed() < deadline {
        applied = rotations_applied(&emulator, &roles);
        if applied >= target {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    stop.store(true, Ordering::Relaxed);
    driver.join().unwrap();
    let chaos::Chaos {
        server,
        plugin_kills: kills,
        graceful_restarts: graceful,
        crash_restarts: crashes,
    } = chaos.join().unwrap();
    let chaos_time = started.elapsed();
    assert!(
        applied >= target,
        "only {applied} rotations in {chaos_time:?}"
    );
    let faults = emulator.counters();
    emulator.set_faults(json!({}));

    let settled = settle(&server, &emulator, &roles);
    let failed_outcomes = verify(&server, &emulator, &roles);
    let wrong_attempts = markers_in_sync_and_dcs_attempts_spent(&server, &emulator, &roles);
    assert_eq!(wrong_attempts, 0, "DCS old passwords refused");
    let final_rotations = rotations_applied(&emulator, &roles);
    let locked = faults["outcomes"]["locked"].as_u64().unwrap_or(0);
    assert_eq!(locked, 0, "a DCS instance was locked");
    assert_eq!(
        settled.failed_while_right, 0,
        "a role gave up although every copy held its password"
    );
    let mut secrets = emulator.secrets();
    secrets.push(server.token.clone());
    server.assert_no_leaks(secrets);

    let outcomes = &faults["outcomes"];
    print_table(
        "crash safety: figures",
        &[
            (
                "roles (polardb + dcs + external + wide dcs)",
                format!(
                    "{} ({per_kind} of each, 1 dcs with {WIDE_COPIES} DRS copies)",
                    roles.len()
                ),
            ),
            (
                "rotations applied (emulator count)",
                final_rotations.to_string(),
            ),
            ("chaos phase", format!("{:.0} s", chaos_time.as_secs_f64())),
            ("plugin processes SIGKILLed", kills.to_string()),
            (
                "server restarts (SIGTERM / SIGKILL)",
                format!("{graceful} / {crashes}"),
            ),
            (
                "rotate-role requests sent",
                requests.load(Ordering::Relaxed).to_string(),
            ),
            (
                "  by status (0 = no answer)",
                format!("{:?}", statuses.lock().unwrap()),
            ),
            (
                "throttled / 5xx / applied-then-dropped / applied-then-5xx",
                format!(
                    "{} / {} / {} / {}",
                    outcomes["throttled"],
                    outcomes["server_error"],
                    outcomes["dropped_after_apply"],
                    outcomes["gateway_error_after_apply"]
                ),
            ),
            ("manual resumes while settling", settled.resumes.to_string()),
            (
                "roles given up although every copy was right",
                settled.failed_while_right.to_string(),
            ),
            (
                "rotations that ended failed (then resumed)",
                failed_outcomes.to_string(),
            ),
            ("roles with target != Vault != copies", "0".into()),
            ("roles stuck in rotating", "0".into()),
            ("DCS lockouts", locked.to_string()),
            (
                "DCS old passwords refused; roles drifted",
                format!("{wrong_attempts}; 0"),
            ),
            ("secrets found in logs", "0".into()),
        ],
    );
}

#[test]
#[ignore = "long: run with make reliability"]
fn high_availability_failover_during_a_rotation_storm() {
    let per_kind = env_count("RELIABILITY_HA_ROLES", 10);
    let roles: Vec<RoleSpec> = roles(per_kind)
        .into_iter()
        .filter(|r| !matches!(r.kind, Kind::External))
        .collect();
    let emulator = Emulator::start();
    emulator.seed(seed(per_kind));
    let mut cluster = Cluster::start("reliability-ha", 3, "info");
    let first = cluster.active();
    let server = &cluster.nodes[first];
    server.enable(
        "database",
        &[
            ("retry_base", "200ms"),
            ("retry_cap", "2s"),
            ("jitter", "300ms"),
        ],
    );
    connections(server, &emulator);
    // A standby that serves reads has loaded its role list before the
    // roles exist (Vault's standbys forward reads; OpenBao's serve them).
    let standby = &cluster.nodes[(first + 1) % cluster.nodes.len()];
    let listed = |node: &Server| -> Vec<String> {
        let reply = node.list("database/static-roles");
        let mut keys: Vec<String> =
            serde_json::from_value(reply.body["data"]["keys"].clone()).unwrap_or_default();
        keys.sort();
        keys
    };
    assert!(listed(standby).is_empty());
    // Every role adopts its current password and is due in 5 s: a storm.
    for role in &roles {
        server
            .write(
                &format!("database/static-roles/{}", role.name),
                role_body(role, Some("5s"), true),
            )
            .data();
    }
    let mut expected: Vec<String> = roles.iter().map(|r| r.name.clone()).collect();
    expected.sort();
    let deadline = Instant::now() + Duration::from_secs(30);
    while listed(standby) != expected {
        assert!(
            Instant::now() < deadline,
            "the standby lists {:?}, the active node wrote {expected:?}",
            listed(standby)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Slow calls keep the storm in flight when the leader dies.
    emulator.set_faults(json!({ "seed": 3, "latency_ms": { "min": 20, "max": 120 } }));
    let storm = Instant::now() + Duration::from_secs(60);
    while rotations_applied(&emulator, &roles) < roles.len() as u64 / 3 {
        assert!(Instant::now() < storm, "the storm did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let applied_before = rotations_applied(&emulator, &roles);
    cluster.nodes[first].crash();
    let killed_at = Instant::now();
    let next = cluster.active();
    assert_ne!(next, first);
    let failover = killed_at.elapsed();
    // The new leader finishes the storm (and the next cycles).
    let server = &cluster.nodes[next];
    let deadline = Instant::now() + Duration::from_secs(120);
    while rotations_applied(&emulator, &roles) < 2 * roles.len() as u64 {
        assert!(Instant::now() < deadline, "the new leader did not rotate");
        std::thread::sleep(Duration::from_millis(100));
    }
    emulator.set_faults(json!({}));
    let settled = settle(server, &emulator, &roles);
    assert_eq!(
        settled.failed_while_right, 0,
        "a role gave up although every copy held its password"
    );
    let failed_outcomes = verify(server, &emulator, &roles);
    let applied = rotations_applied(&emulator, &roles);

    // The old leader comes back and rejoins as a standby.
    cluster.restart(first);
    assert_eq!(
        cluster.nodes[first].health(),
        Some(429),
        "the old leader is a standby now"
    );
    let voters = cluster.raft_voters();
    assert_eq!(voters.len(), 3, "{voters:?}");
    // Standbys serve reads from their own replica: it catches up.
    let creds = format!("database/static-creds/{}", roles[0].name);
    let live = cluster.nodes[next].read(&creds).data()["password"].clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.nodes[first].read(&creds).body["data"]["password"] != live {
        assert!(
            Instant::now() < deadline,
            "the old leader's replica did not catch up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Writes through a standby are forwarded to the active node.
    let rotate = cluster.nodes[first].write(
        &format!("database/rotate-role/{}", roles[0].name),
        json!({}),
    );
    assert_eq!(rotate.status, 200, "{rotate:?}");
    let rotated = cluster.nodes[next].read(&creds).data()["password"].clone();
    assert_ne!(rotated, live, "the forwarded rotation happened");
    let mut secrets = emulator.secrets();
    secrets.push(cluster.nodes[next].token.clone());
    cluster.assert_no_leaks(secrets);
    print_table(
        "high availability: figures",
        &[
            ("nodes", "3 (Raft, loopback)".into()),
            ("roles due at once", roles.len().to_string()),
            (
                "rotations applied before the leader was killed",
                applied_before.to_string(),
            ),
            (
                "failover (SIGKILL to a new active node)",
                format!("{:.1} s", failover.as_secs_f64()),
            ),
            ("rotations applied in all", applied.to_string()),
            ("manual resumes while settling", settled.resumes.to_string()),
            (
                "rotations that ended failed (then resumed)",
                failed_outcomes.to_string(),
            ),
            ("passwords generated twice for one rotation", "0".into()),
            (
                "old leader rejoined as standby; raft voters",
                voters.len().to_string(),
            ),
        ],
    );
}
