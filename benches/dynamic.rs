//! Dynamic credentials (issue 13), through the REAL plugin in OpenBao 2.7.2
//! against the emulator, every call answered in 50 ms:
//!
//! * credentials created per second at the pacing bound: `BENCH_CREDS`
//!   (300) `creds/` reads by 8 clients at once, on one Alibaba connection
//!   paced at 20 requests/s, with the emulator's flow control at 20
//!   requests/s per key and accounts available as soon as created. A read
//!   makes a fixed number of calls (look-up, create, status, one grant per
//!   database), so pacing bounds the rate at 20 / calls; the target is 90 %
//!   of that bound;
//! * time to a usable credential: `BENCH_CREDS_SERIAL` (60) reads one at a
//!   time on an unpaced connection, with accounts available 0.5 s after
//!   CreateAccount (PolarDB creates them asynchronously and publishes no
//!   figure) and the mount's default `account_ready_poll` (1 s). A read
//!   answers only once the account is available and granted; each one's
//!   account is then checked on the emulator (available, the password the
//!   read returned, the grant), outside the timing.
//!
//! Afterwards every lease is revoked and no account may be left.
//! `cargo bench --bench dynamic`; exits non-zero when the work itself goes
//! wrong (a read failing, an account not usable, an account left behind).

#[path = "../tests/support/emulator.rs"]
mod emulator;
#[path = "../tests/support/server.rs"]
mod server;
#[path = "support/mod.rs"]
mod support;
#[path = "../tests/support/tools.rs"]
mod tools;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use emulator::{Emulator, fixture};
use serde_json::{Value, json};
use server::{Options, Server};
use support::{Report, WRITERS, count, quantile};

const PACE: u32 = 20;
const LATENCY_MS: u64 = 50;
const PACED_CLUSTER: &str = "pc-paced";
const SERIAL_CLUSTER: &str = "pc-serial";

fn cluster(id: &str, settle_seconds: f64) -> Value {
    json!({ "id": id, "region": "cn-hangzhou", "engine": "MySQL", "databases": ["appdb"],
            "account_settle_seconds": settle_seconds })
}

/// Connection `name` to the emulator as the fixture's Alibaba user, paced
/// at `rps`.
fn connection(emulator: &Emulator, rps: u32) -> Value {
    let [(_, mut body), _] = fixture::connections(&emulator.url, "10s");
    body["requests_per_second"] = json!(rps);
    body
}

/// One `creds/` read: (username, password) and how long it took.
fn read_creds(
    http: &reqwest::blocking::Client,
    server: &Server,
    role: &str,
) -> (String, String, Duration) {
    let started = Instant::now();
    let body: Value = http
        .get(format!("{}/v1/database/creds/{role}", server.addr))
        .header("X-Vault-Token", &server.token)
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .unwrap_or_else(|e| panic!("read creds/{role}: {e}"));
    let took = started.elapsed();
    let text = |key: &str| body["data"][key].as_str().unwrap_or_default().to_owned();
    (text("username"), text("password"), took)
}

/// Whether the cluster holds `username` available, with `password` and
/// the role's grant.
fn usable(accounts: &Value, username: &str, password: &str) -> bool {
    accounts.as_array().into_iter().flatten().any(|account| {
        account["name"] == username
            && account["password"] == password
            && account["status"] == "Available"
            && account["privileges"]
                .as_array()
                .is_some_and(|grants| grants.iter().any(|g| g["db_name"] == "appdb"))
    })
}

fn account_calls(emulator: &Emulator) -> u64 {
    let counters = emulator.counters();
    [
        "polardb.DescribeAccounts",
        "polardb.CreateAccount",
        "polardb.GrantAccountPrivilege",
    ]
    .iter()
    .map(|api| counters["calls"][*api].as_u64().unwrap_or(0))
    .sum()
}

fn main() {
    let paced_reads = count("BENCH_CREDS", 300);
    let serial_reads = count("BENCH_CREDS_SERIAL", 60);
    let mut report = Report::new("dynamic");
    let mut problems = Vec::new();

    let emulator = Emulator::start();
    emulator.seed(fixture::seed());
    emulator.seed(json!({ "alicloud": { "polardb_clusters": [
        cluster(PACED_CLUSTER, 0.0), cluster(SERIAL_CLUSTER, 0.5)
    ]}}));
    let server = Server::start_with(
        "bench-dynamic",
        Options {
            log_level: "info",
            ..Options::default()
        },
    );
    server.enable("database", &[]);
    server
        .write("database/config/paced", connection(&emulator, PACE))
        .data();
    server
        .write("database/config/free", connection(&emulator, 1000))
        .data();
    for (role, connection, cluster) in [
        ("paced", "paced", PACED_CLUSTER),
        ("serial", "free", SERIAL_CLUSTER),
    ] {
        server
            .write(
                &format!("database/roles/{role}"),
                json!({ "target": "polardb-account", "connection": connection, "cluster_id": cluster,
                        "grants": "appdb=ReadOnly", "default_ttl": "1h" }),
            )
            .data();
    }
    emulator.set_faults(json!({
        "latency_ms": { "fixed": LATENCY_MS },
        "rate_limit_per_key": { "requests_per_second": PACE },
    }));

    // At the pacing bound.
    let calls_before = account_calls(&emulator);
    let next = AtomicUsize::new(0);
    let issued = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..WRITERS {
            scope.spawn(|| {
                let http = reqwest::blocking::Client::new();
                while next.fetch_add(1, Ordering::Relaxed) < paced_reads {
                    let (username, password, _) = read_creds(&http, &server, "paced");
                    issued.lock().unwrap().push((username, password));
                }
            });
        }
    });
    let paced_time = started.elapsed();
    let calls_per_credential =
        (account_calls(&emulator) - calls_before) as f64 / paced_reads as f64;
    let paced = issued.into_inner().unwrap();
    let accounts = emulator.get(&format!("polardb/{PACED_CLUSTER}"))["accounts"].clone();
    let unusable = paced
        .iter()
        .filter(|(username, password)| !usable(&accounts, username, password))
        .count();
    if unusable > 0 {
        problems.push(format!(
            "{unusable} of {paced_reads} paced credentials not usable"
        ));
    }
    let rate = paced_reads as f64 / paced_time.as_secs_f64();
    let bound = f64::from(PACE) / calls_per_credential;
    let name = format!("creds created per second ({PACE} req/s pacing, {WRITERS} clients)");
    report.figure(
        &name,
        rate,
        "creds/s",
        &format!(
            ">= {:.2} (90% of the bound {PACE} / {calls_per_credential:.2} calls)",
            0.9 * bound
        ),
    );
    report.check(&name, rate >= 0.9 * bound);
    report.figure(
        "provider calls per credential",
        calls_per_credential,
        "calls",
        "",
    );
    report.figure(
        "throttled provider answers",
        emulator.counters()["outcomes"]["throttled"]
            .as_f64()
            .unwrap_or(0.0),
        "",
        "0",
    );

    // One at a time, to a usable credential.
    let http = reqwest::blocking::Client::new();
    let mut times = Vec::with_capacity(serial_reads);
    let mut serial = Vec::with_capacity(serial_reads);
    for _ in 0..serial_reads {
        let (username, password, took) = read_creds(&http, &server, "serial");
        times.push(took);
        serial.push((username, password));
    }
    let accounts = emulator.get(&format!("polardb/{SERIAL_CLUSTER}"))["accounts"].clone();
    let unusable = serial
        .iter()
        .filter(|(username, password)| !usable(&accounts, username, password))
        .count();
    if unusable > 0 {
        problems.push(format!(
            "{unusable} of {serial_reads} credentials not usable"
        ));
    }
    let p50 = quantile(&mut times, 0.5);
    let p95 = quantile(&mut times, 0.95);
    report.duration(
        "time to a usable credential p50 (created +0.5 s, 1 s poll)",
        p50,
        "<= 1,500 ms (0.5 s creation + 1 s poll)",
    );
    report.check(
        "time to a usable credential p50 (created +0.5 s, 1 s poll)",
        p50 <= Duration::from_millis(1500),
    );
    report.duration("time to a usable credential p95", p95, "");

    // Every lease revoked: no account left.
    emulator.set_faults(json!({}));
    let revoked = server.write(
        "sys/leases/revoke-prefix/database/creds",
        json!({ "sync": true }),
    );
    if revoked.status >= 300 {
        problems.push(format!("revoke-prefix answered {revoked:?}"));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let left = loop {
        let left: usize = [PACED_CLUSTER, SERIAL_CLUSTER]
            .iter()
            .map(|cluster| {
                emulator.get(&format!("polardb/{cluster}"))["accounts"]
                    .as_array()
                    .map_or(0, |accounts| {
                        accounts
                            .iter()
                            .filter(|a| a["status"] != "Deleting")
                            .count()
                    })
            })
            .sum();
        if left == 0 || Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if left > 0 {
        problems.push(format!(
            "{left} accounts left after every lease was revoked"
        ));
    }
    report.save();
    if !problems.is_empty() {
        eprintln!("dynamic bench failed: {}", problems.join("; "));
        std::process::exit(1);
    }
}
