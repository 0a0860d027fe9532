//! The engine's figures against the limits, measured in one run:
//!
//! * through the REAL plugin in OpenBao 2.7.2 (figures about the process):
//!   plugin RSS idle after the first mount, with `BENCH_MOUNTS` (20) mounts
//!   served by one process, with `BENCH_IDLE_ROLES` (10,000) roles stored;
//!   then rotation throughput: `BENCH_ROLES` (1,000) DCS-instance roles,
//!   each with a DRS dependent, on one Huawei connection paced at 20
//!   requests/s, all due at the same instant, against the emulator at 50 ms
//!   fixed latency with a 20 requests/s flow-control limit per access key,
//!   on a mount with the engine's default `concurrency` (256; see
//!   `engine::DEFAULT_CONCURRENCY` for why);
//! * in process, on `MemoryStorage` with its op counters (figures about
//!   storage operations): storage operations per scheduler tick (`rollback`)
//!   with `BENCH_IDLE_ROLES` idle roles and with 100.
//!
//! How "all due at once" is made honest: the roles are created with
//! automated rotation disabled (adopting the instance's current password,
//! `skip_import_rotation`), then each is switched on with one
//! `rotation_schedule` naming a single minute (`M H D Mon *`, UTC) after the
//! switch-on is over, so every role's stored next rotation is that instant.
//! Time runs from that instant until the emulator shows every instance
//! changed once and every DRS copy equal to it. Each rotation makes two
//! calls of its own: the DCS `UpdatePassword` and the ownership marker's
//! `UpdateInstance`; pacing allows 2 x `BENCH_ROLES` of them at 20/s (100 s
//! for 1,000). The target reads (ListInstances), DRS prechecks and updates
//! are coalesced into batch calls that share the same bucket.
//!
//! `cargo bench --bench engine`. Exits non-zero when the work itself goes
//! wrong (a rotation missing or repeated, a copy out of step, two plugin
//! processes); a missed target is marked in the table.

#[path = "../tests/support/emulator.rs"]
mod emulator;
#[path = "../tests/support/server.rs"]
mod server;
#[path = "support/mod.rs"]
mod support;
#[path = "../tests/support/tools.rs"]
mod tools;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cloudrotate::engine::{self, SystemClock};
use cloudrotate::framework::{
    Backend, BackendConfig, MemoryStorage, Operation, Request, StaticSystemView,
};
use emulator::Emulator;
use serde_json::{Value, json};
use server::{Options, Server};
use support::{Report, WRITERS, count, mib, proc_kib, write_all};

const PROJECT: &str = "054ba152d480d55b2f5dc0069e7ddef0";
const INITIAL: &str = "Initial-Pass-1";
/// The throughput connection's user and key.
const HW_USER: &str = "hw-user-rotate";
const HW_AK: &str = "HWBENCHROTATEKEY0001";
const HW_SK: &str = "bench-rotate-secret-000000000000001";
/// The idle roles' connection (its own key, so flow control is per use).
const IDLE_USER: &str = "hw-user-idle";
const IDLE_AK: &str = "HWBENCHIDLEKEY000001";
const IDLE_SK: &str = "bench-idle-secret-00000000000000001";
/// The throughput connection's pace, and the provider's limit per key.
const PACE: u32 = 20;
const LATENCY_MS: u64 = 50;
/// Rollback ticks averaged per in-process figure.
const TICKS: u64 = 20;

/// The one plugin process serving every mount.
fn plugin_pid(server: &Server) -> i32 {
    let pids = server.plugin_pids();
    assert_eq!(pids.len(), 1, "expected one plugin process, found {pids:?}");
    pids[0]
}

/// Emulator resources: `n` DCS instances holding `INITIAL` and `n` DRS
/// jobs whose source copy holds it too, named `<prefix>-dcs-<i>` and
/// `<prefix>-drs-<i>`, plus the user owning `ak`.
fn seed(prefix: &str, n: usize, user: &str, ak: &str, sk: &str) -> Value {
    let instances: Vec<Value> = (0..n)
        .map(|i| json!({ "id": format!("{prefix}-dcs-{i:05}"), "project_id": PROJECT, "password": INITIAL }))
        .collect();
    let jobs: Vec<Value> = (0..n)
        .map(|i| {
            json!({ "id": format!("{prefix}-drs-{i:05}"), "project_id": PROJECT,
                    "status": "INCRE_TRANSFER_STARTED",
                    "so": { "password": INITIAL }, "ta": { "password": "Other-Pass-1" } })
        })
        .collect();
    json!({ "huaweicloud": {
        "users": [{ "id": user, "name": user, "access_keys": [{ "access": ak, "secret": sk }] }],
        "projects": [PROJECT],
        "dcs_instances": instances,
        "drs_jobs": jobs,
    }})
}

fn connection(emulator: &Emulator, ak: &str, sk: &str, user: &str, rps: u32) -> Value {
    json!({ "provider": "huaweicloud", "region": "cn-north-4", "access_key": ak, "secret_key": sk,
            "project_id": PROJECT, "endpoint": emulator.url, "iam_user": user, "allowed_roles": "*",
            "requests_per_second": rps, "verify_connection": false })
}

/// A DCS-instance role with a DRS dependent, adopting the current
/// password. `schedule` is merged in.
fn role(prefix: &str, connection: &str, i: usize, schedule: Value) -> Value {
    let mut body = json!({
        "target": "dcs-instance", "connection": connection,
        "instance_id": format!("{prefix}-dcs-{i:05}"),
        "dependents": [format!("drs:{connection}/{prefix}-drs-{i:05}/so")],
        "password": INITIAL, "skip_import_rotation": true,
    });
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, schedule) {
        body.extend(extra);
    }
    body
}

/// Reads `paths` with `WRITERS` parallel clients; the `data` of each.
fn read_all(server: &Server, paths: &[String]) -> Vec<Value> {
    let next = AtomicUsize::new(0);
    let out = std::sync::Mutex::new(vec![Value::Null; paths.len()]);
    std::thread::scope(|scope| {
        for _ in 0..WRITERS {
            scope.spawn(|| {
                let client = reqwest::blocking::Client::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(i) else { return };
                    let body: Value = client
                        .get(format!("{}/v1/{path}", server.addr))
                        .header("X-Vault-Token", &server.token)
                        .send()
                        .and_then(|r| r.error_for_status())
                        .and_then(|r| r.json())
                        .unwrap_or_else(|e| panic!("read {path}: {e}"));
                    out.lock().unwrap()[i] = body["data"].clone();
                }
            });
        }
    });
    out.into_inner().unwrap()
}

/// Per instance `(new passwords so far, password)` and per job the same
/// for its source copy, from the emulator's state.
struct Truth {
    instances: HashMap<String, (u64, String)>,
    jobs: HashMap<String, (u64, String)>,
    counters: Value,
}

fn truth(emulator: &Emulator) -> Truth {
    let state = emulator.get("state");
    let hw = &state["huaweicloud"];
    let entries =
        |key: &str, password: &dyn Fn(&Value) -> &Value| -> HashMap<String, (u64, String)> {
            hw[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|item| {
                    let holder = password(item);
                    (
                        item["id"].as_str().unwrap_or_default().to_owned(),
                        (
                            holder["new_passwords"].as_u64().unwrap_or(0),
                            holder["password"].as_str().unwrap_or_default().to_owned(),
                        ),
                    )
                })
                .collect()
        };
    Truth {
        instances: entries("dcs_instances", &|item| item),
        jobs: entries("drs_jobs", &|item| &item["so"]),
        counters: state["counters"].clone(),
    }
}

/// Roles `0..n` whose instance changed at least once and whose DRS copy
/// holds the instance's password.
fn rotated(truth: &Truth, prefix: &str, n: usize) -> usize {
    (0..n)
        .filter(|i| {
            let instance = &truth.instances[&format!("{prefix}-dcs-{i:05}")];
            let job = &truth.jobs[&format!("{prefix}-drs-{i:05}")];
            instance.0 >= 1 && job.1 == instance.1
        })
        .count()
}

/// The first whole minute (UTC) at least `lead` from now, and its
/// once-a-year cron expression.
fn minute_after(lead: Duration) -> (time::OffsetDateTime, String) {
    let earliest = time::OffsetDateTime::now_utc() + lead;
    let minute = earliest
        .replace_nanosecond(0)
        .unwrap()
        .replace_second(0)
        .unwrap()
        + time::Duration::minutes(1);
    let cron = format!(
        "{} {} {} {} *",
        minute.minute(),
        minute.hour(),
        minute.day(),
        u8::from(minute.month())
    );
    (minute, cron)
}

fn sleep_until(at: time::OffsetDateTime) {
    let left = at - time::OffsetDateTime::now_utc();
    if left.is_positive() {
        std::thread::sleep(Duration::try_from(left).unwrap());
    }
}

fn calls(counters: &Value, api: &str) -> u64 {
    counters["calls"][api].as_u64().unwrap_or(0)
}

struct Throughput {
    seconds: f64,
    calls_per_rotation: f64,
    items_per_update_call: f64,
    items_per_status_call: f64,
    throttled: u64,
    rate_limited: u64,
}

/// 1,000 roles due at once on the `rotate` mount; see the module comment.
fn throughput(server: &Server, n: usize, problems: &mut Vec<String>) -> Throughput {
    let emulator = Emulator::start();
    emulator.seed(seed("t", n, HW_USER, HW_AK, HW_SK));
    server
        .write(
            "rotate/config/hw",
            connection(&emulator, HW_AK, HW_SK, HW_USER, PACE),
        )
        .data();
    // Creating a role with a dependent and an adopted password pushes that
    // password to the copy (it already holds it): one batched DRS update.
    let started = Instant::now();
    write_all(
        &server.addr,
        &server.token,
        (0..n)
            .map(|i| {
                (
                    format!("rotate/static-roles/t-{i:05}"),
                    role("t", "hw", i, json!({ "disable_automated_rotation": true })),
                )
            })
            .collect(),
    );
    eprintln!(
        "engine bench: created {n} roles in {:.1?}",
        started.elapsed()
    );

    // Time a few switch-ons to size the lead before the due minute.
    let switch_on = |range: std::ops::Range<usize>, cron: &str| {
        write_all(
            &server.addr,
            &server.token,
            range
                .map(|i| {
                    (
                        format!("rotate/static-roles/t-{i:05}"),
                        json!({ "rotation_schedule": cron, "disable_automated_rotation": false }),
                    )
                })
                .collect(),
        )
    };
    let probe = n.min(50);
    let (_, far_cron) = minute_after(Duration::from_secs(3600));
    let started = Instant::now();
    switch_on(0..probe, &far_cron);
    let estimate = started.elapsed().mul_f64(n as f64 / probe as f64);
    let lead = estimate * 3 + Duration::from_secs(5);
    let (due, cron) = minute_after(lead);
    eprintln!(
        "engine bench: all {n} roles due at {due} ({cron:?}); switch-on estimated {estimate:.1?}"
    );

    // The provider: 50 ms per call, flow control at the connection's pace.
    emulator.set_faults(json!({
        "latency_ms": { "fixed": LATENCY_MS },
        "rate_limit_per_key": { "requests_per_second": PACE },
    }));
    let (status, body) = emulator.try_admin(reqwest::Method::DELETE, "counters", None);
    assert_eq!(status, 200, "reset counters: {body}");
    switch_on(0..n, &cron);
    let switched = time::OffsetDateTime::now_utc();
    assert!(
        switched < due,
        "switching the schedules on ended at {switched}, after the due time {due}"
    );
    // Every role is now due at `due` and nothing rotated yet.
    let before = truth(&emulator);
    assert_eq!(rotated(&before, "t", n), 0, "rotations before the due time");
    for i in (0..n).step_by((n / 10).max(1)) {
        let read = server.read(&format!("rotate/static-roles/t-{i:05}"));
        let next = read.data()["next_vault_rotation"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let parsed =
            time::OffsetDateTime::parse(&next, &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|e| panic!("next_vault_rotation {next:?}: {e}"));
        assert_eq!(parsed, due, "role t-{i:05} is due at {next}");
    }

    sleep_until(due);
    let deadline = Instant::now() + Duration::from_secs((n as u64 / u64::from(PACE)) * 4 + 60);
    let done_at = loop {
        let now = time::OffsetDateTime::now_utc();
        let state = truth(&emulator);
        if rotated(&state, "t", n) == n {
            break now;
        }
        if Instant::now() > deadline {
            problems.push(format!(
                "only {} of {n} roles rotated within the deadline",
                rotated(&state, "t", n)
            ));
            break now;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let seconds = (done_at - due).as_seconds_f64();
    // Nothing rotates twice: look again a little later.
    std::thread::sleep(Duration::from_secs(2));
    let after = truth(&emulator);
    let twice = after
        .instances
        .values()
        .filter(|(changes, _)| *changes > 1)
        .count()
        + after
            .jobs
            .values()
            .filter(|(changes, _)| *changes > 1)
            .count();
    if twice > 0 {
        problems.push(format!(
            "{twice} instances or copies changed more than once"
        ));
    }
    // Vault agrees with the emulator, role by role.
    let creds = read_all(
        server,
        &(0..n)
            .map(|i| format!("rotate/static-creds/t-{i:05}"))
            .collect::<Vec<_>>(),
    );
    let disagree = (0..n)
        .filter(|i| {
            creds[*i]["password"].as_str() != Some(&after.instances[&format!("t-dcs-{i:05}")].1)
        })
        .count();
    if disagree > 0 {
        problems.push(format!(
            "{disagree} roles' static-creds differ from the instance"
        ));
    }
    let counters = &after.counters;
    let total_calls: u64 = counters["calls"]
        .as_object()
        .map(|calls| calls.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    let updates = calls(counters, "drs.BatchResetPassword").max(1);
    let statuses = calls(counters, "drs.BatchListJobStatus").max(1);
    eprintln!("engine bench: provider calls {}", counters["calls"]);
    Throughput {
        seconds,
        calls_per_rotation: total_calls as f64 / n as f64,
        items_per_update_call: n as f64 / updates as f64,
        items_per_status_call: n as f64 / statuses as f64,
        throttled: counters["outcomes"]["throttled"].as_u64().unwrap_or(0),
        rate_limited: counters["outcomes"]["rate_limited"].as_u64().unwrap_or(0),
    }
}

/// One in-process mount on `MemoryStorage`, driven like the host drives it.
struct InProcess {
    runtime: tokio::runtime::Runtime,
    backend: Arc<dyn Backend>,
    storage: Arc<MemoryStorage>,
    started: Instant,
}

impl InProcess {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let storage = Arc::new(MemoryStorage::new());
        let config = BackendConfig {
            config: Default::default(),
            backend_uuid: "bench".into(),
            storage: storage.clone(),
            system: Arc::new(StaticSystemView::default()),
        };
        let backend: Arc<dyn Backend> = Arc::new(engine::backend(
            config,
            Arc::new(SystemClock),
            Arc::new(engine::ProviderCloud),
        ));
        runtime.block_on(backend.initialize()).unwrap();
        Self {
            runtime,
            backend,
            storage,
            started: Instant::now(),
        }
    }

    fn create_all(&self, writes: Vec<(String, Value)>) {
        self.runtime.block_on(async {
            let permits = Arc::new(tokio::sync::Semaphore::new(64));
            let mut tasks = Vec::new();
            for (path, body) in writes {
                let permit = permits.clone().acquire_owned().await.unwrap();
                let backend = self.backend.clone();
                tasks.push(tokio::spawn(async move {
                    let reply = backend
                        .handle_request(Request::new(Operation::Create, &path).with_data(body))
                        .await
                        .unwrap_or_else(|e| panic!("create {path}: {e}"));
                    let warnings = reply.map(|r| r.warnings).unwrap_or_default();
                    assert!(warnings.is_empty(), "create {path}: {warnings:?}");
                    drop(permit);
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
        });
    }

    /// Storage operations per second with nothing happening, then per
    /// `rollback` (averaged over `TICKS` ticks spaced so the runner wakes
    /// and looks at its timetable after each).
    fn idle_and_per_tick(&self) -> (f64, f64) {
        // The drift check 2 s after the engine starts reads every role
        // once (then once per drift_check_interval, 1h): measure after it,
        // once storage has been quiet for half a second.
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut last = self.storage.ops().total();
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let now = self.storage.ops().total();
            if now == last && self.started.elapsed() > Duration::from_secs(3) {
                break;
            }
            assert!(Instant::now() < deadline, "storage never went quiet");
            last = now;
        }
        let quiet = Duration::from_millis(50 * TICKS);
        let start = self.storage.ops().total();
        std::thread::sleep(quiet);
        let before = self.storage.ops().total();
        for _ in 0..TICKS {
            self.runtime
                .block_on(
                    self.backend
                        .handle_request(Request::new(Operation::Rollback, "")),
                )
                .unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
        let after = self.storage.ops().total();
        (
            (before - start) as f64 / quiet.as_secs_f64(),
            (after - before) as f64 / TICKS as f64,
        )
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.runtime.block_on(self.backend.cleanup());
    }
}

/// Storage operations per second idle and per tick on an in-process mount
/// holding `n` idle roles (the same shape as above, against the idle
/// emulator).
fn ops_per_tick(emulator: &Emulator, n: usize) -> (f64, f64) {
    let mount = InProcess::new();
    let mut writes = vec![(
        "config/idle".to_owned(),
        connection(emulator, IDLE_AK, IDLE_SK, IDLE_USER, 1000),
    )];
    mount.create_all(std::mem::take(&mut writes));
    writes.extend((0..n).map(|i| {
        (
            format!("static-roles/i-{i:05}"),
            role("i", "idle", i, json!({ "rotation_period": "24h" })),
        )
    }));
    mount.create_all(writes);
    mount.idle_and_per_tick()
}

fn main() {
    let roles = count("BENCH_ROLES", 1000);
    let idle_roles = count("BENCH_IDLE_ROLES", 10_000);
    let mounts = count("BENCH_MOUNTS", 20).max(2);
    let concurrency = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .filter(|v| v.parse::<usize>().is_ok_and(|n| n > 0))
        .unwrap_or_else(|| cloudrotate::engine::DEFAULT_CONCURRENCY.to_string());
    let mut report = Report::new("engine");
    let mut problems = Vec::new();

    // The idle roles' provider: DRS jobs to receive the adopted password.
    let idle_emulator = Emulator::start();
    idle_emulator.seed(seed("i", idle_roles, IDLE_USER, IDLE_AK, IDLE_SK));

    // Storage operations per tick, in process.
    let small = 100.min(idle_roles);
    let (_, per_tick_small) = ops_per_tick(&idle_emulator, small);
    let (idle_large, per_tick_large) = ops_per_tick(&idle_emulator, idle_roles);
    report.figure(
        &format!("storage ops per scheduler tick, {small} idle roles"),
        per_tick_small,
        "ops",
        "",
    );
    let large = format!("storage ops per scheduler tick, {idle_roles} idle roles");
    report.figure(
        &large,
        per_tick_large,
        "ops",
        &format!("independent of the role count (= the {small}-role figure)"),
    );
    report.check(&large, per_tick_large == per_tick_small);
    report.figure(
        &format!("storage ops per second between ticks, {idle_roles} idle roles"),
        idle_large,
        "ops/s",
        "0",
    );
    // The in-process mounts marked the instances as theirs: the OpenBao
    // mount below is another mount, so it starts from unmarked instances.
    idle_emulator.reset();
    idle_emulator.seed(seed("i", idle_roles, IDLE_USER, IDLE_AK, IDLE_SK));

    // The real plugin in OpenBao.
    let server = Server::start_with(
        "bench-engine",
        Options {
            log_level: "info",
            ..Options::default()
        },
    );
    server.enable("idle", &[]);
    server
        .write(
            "idle/config/idle",
            connection(&idle_emulator, IDLE_AK, IDLE_SK, IDLE_USER, 1000),
        )
        .data();
    server.read("idle/config/idle").data();
    let pid = plugin_pid(&server);
    let idle_rss = proc_kib(pid, "VmRSS");
    report.figure("plugin RSS idle, one mount", mib(idle_rss), "MiB", "");

    // More mounts of the same plugin: `rotate` (the throughput run's, with
    // its options) and `m03`...; a connection written and read on each.
    let mut served = vec!["idle".to_owned(), "rotate".to_owned()];
    served.extend((3..=mounts).map(|m| format!("m{m:02}")));
    for path in &served[1..] {
        let options: Vec<(&str, &str)> = if path == "rotate" {
            vec![("concurrency", concurrency.as_str())]
        } else {
            vec![]
        };
        server.enable(path, &options);
        server
            .write(
                &format!("{path}/config/probe"),
                connection(&idle_emulator, IDLE_AK, IDLE_SK, IDLE_USER, 10),
            )
            .data();
    }
    for path in &served {
        let probe = if path == "idle" { "idle" } else { "probe" };
        assert_eq!(
            server.read(&format!("{path}/config/{probe}")).data()["provider"],
            "huaweicloud",
            "read on mount {path}"
        );
    }
    let pids = server.plugin_pids();
    if pids != vec![pid] {
        problems.push(format!(
            "{} mounts are served by plugin processes {pids:?}, not by {pid} alone",
            served.len()
        ));
    }
    let mounts_rss = proc_kib(pid, "VmRSS");
    report.figure(
        &format!("plugin processes serving {} mounts", served.len()),
        pids.len() as f64,
        "",
        "1",
    );
    report.figure(
        &format!("plugin RSS with {} mounts", served.len()),
        mib(mounts_rss),
        "MiB",
        "",
    );

    let started = Instant::now();
    write_all(
        &server.addr,
        &server.token,
        (0..idle_roles)
            .map(|i| {
                (
                    format!("idle/static-roles/i-{i:05}"),
                    role("i", "idle", i, json!({ "rotation_period": "24h" })),
                )
            })
            .collect(),
    );
    let created = started.elapsed();
    assert_eq!(
        server.list("idle/static-roles").data()["keys"]
            .as_array()
            .map_or(0, Vec::len),
        idle_roles
    );
    std::thread::sleep(Duration::from_secs(1));
    let roles_rss = proc_kib(pid, "VmRSS");
    report.figure(
        &format!("plugin RSS with {idle_roles} roles stored"),
        mib(roles_rss),
        "MiB",
        "",
    );
    report.figure(
        "plugin RSS growth per stored role",
        (roles_rss.saturating_sub(mounts_rss) * 1024) as f64 / idle_roles as f64,
        "bytes",
        "",
    );
    report.duration(
        &format!("create {idle_roles} roles through OpenBao ({WRITERS} clients)"),
        created,
        "",
    );

    // Rotation throughput.
    let run = throughput(&server, roles, &mut problems);
    // Two calls of its own per rotation: the change and the marker.
    let allowed = 2.0 * roles as f64 / f64::from(PACE);
    report.figure(
        &format!("{roles} roles due at once: due to all rotated ({PACE} req/s, {LATENCY_MS} ms)"),
        run.seconds,
        "s",
        &format!("<= {:.1} s ({allowed:.0} s + 10%)", allowed * 1.1),
    );
    report.figure(
        "mount concurrency (rotations at once)",
        concurrency.parse::<f64>().unwrap_or_default(),
        "",
        "",
    );
    report.figure(
        "provider calls per rotation",
        run.calls_per_rotation,
        "calls",
        "",
    );
    report.figure(
        "DRS updates per BatchResetPassword call",
        run.items_per_update_call,
        "items",
        "",
    );
    report.figure(
        "DRS prechecks per BatchListJobStatus call",
        run.items_per_status_call,
        "items",
        "",
    );
    report.figure("throttled provider answers", run.throttled as f64, "", "0");
    if run.rate_limited != run.throttled {
        eprintln!(
            "engine bench: {} of the throttled answers were the per-key limit",
            run.rate_limited
        );
    }
    report.figure(
        "plugin RSS after the rotations",
        mib(proc_kib(pid, "VmRSS")),
        "MiB",
        "",
    );
    report.figure(
        "plugin peak RSS over the run (VmHWM)",
        mib(proc_kib(pid, "VmHWM")),
        "MiB",
        "",
    );
    if server.plugin_pids() != vec![pid] {
        problems.push(format!(
            "plugin processes changed: {:?}",
            server.plugin_pids()
        ));
    }
    // No idle role rotated, in process or in OpenBao: they adopted their
    // passwords (skip_import_rotation) and are due in 24 h.
    let idle_counters = idle_emulator.counters();
    let changes =
        calls(&idle_counters, "dcs.UpdatePassword") + calls(&idle_counters, "dcs.ResetPassword");
    if changes > 0 {
        problems.push(format!(
            "{changes} DCS password changes for idle roles that adopted their passwords"
        ));
    }
    report.save();
    if !problems.is_empty() {
        eprintln!("engine bench failed: {}", problems.join("; "));
        std::process::exit(1);
    }
}
