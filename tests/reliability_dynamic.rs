//! `make reliability`, dynamic roles (issue 13): does any account outlive
//! its lease, or any lease lose its account, when the plugin and the server
//! are killed at random moments while clients create and revoke credentials
//! through a cloud that throttles, fails and loses answers?
//!
//! Clients read `creds/` of three roles (two PolarDB clusters and one DCS
//! instance), revoke about half of what they got and renew some; the other
//! leases end at their TTL. Meanwhile the plugin is SIGKILLed every second
//! or two and the server is stopped or SIGKILLed every dozen kills. Then,
//! faults off: every lease the server still holds for a client has its
//! account, with the password the client got (no lost lease); and once
//! every lease has ended and the host's rollback ticks have run, no account
//! is left on any cluster (no orphan). `DYNAMIC_CREATIONS` sets how many
//! credentials are created (default 300); the test is `#[ignore]`d by plain
//! `cargo test`.

#[path = "support/chaos.rs"]
mod chaos;
#[path = "support/emulator.rs"]
mod emulator;
#[path = "support/server.rs"]
mod server;
#[path = "support/tools.rs"]
mod tools;

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chaos::{env_count, print_table};
use emulator::{Emulator, fixture};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use server::{Options, Server};

/// Seconds a lease lives unless renewed, and at most.
const DEFAULT_TTL: u64 = 20;
const MAX_TTL: u64 = 60;

/// A dynamic role and where its accounts live.
struct Role {
    name: &'static str,
    /// `polardb/<cluster>` or `dcs/<instance>` on the emulator's admin API.
    place: &'static str,
    body: Value,
}

fn roles() -> Vec<Role> {
    let polardb = |cluster: &str| {
        json!({ "target": "polardb-account", "connection": "ali", "cluster_id": cluster,
                "grants": "appdb=ReadWrite", "default_ttl": format!("{DEFAULT_TTL}s"),
                "max_ttl": format!("{MAX_TTL}s") })
    };
    vec![
        Role {
            name: "orders",
            place: "polardb/pc-dyn-1",
            body: polardb("pc-dyn-1"),
        },
        Role {
            name: "billing",
            place: "polardb/pc-dyn-2",
            body: polardb("pc-dyn-2"),
        },
        Role {
            name: "cache",
            place: "dcs/dcs-dyn-1",
            body: json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-dyn-1",
                          "acl_role": "read", "default_ttl": format!("{DEFAULT_TTL}s"),
                          "max_ttl": format!("{MAX_TTL}s") }),
        },
    ]
}

fn seed() -> Value {
    let cluster = |id: &str| {
        json!({ "id": id, "region": "cn-hangzhou", "engine": "PostgreSQL", "databases": ["appdb"],
                "account_settle_seconds": 0.3 })
    };
    json!({
        "alicloud": { "polardb_clusters": [cluster("pc-dyn-1"), cluster("pc-dyn-2")] },
        "huaweicloud": { "dcs_instances": [{
            "id": "dcs-dyn-1", "project_id": fixture::PROJECT, "password": fixture::INITIAL,
            "engine_version": "6.0", "account_settle_seconds": 0.3
        }]}
    })
}

/// The accounts on a cluster or instance that are not being deleted:
/// name -> password.
fn accounts(emulator: &Emulator, place: &str) -> BTreeMap<String, String> {
    let state = emulator.get(place);
    let list = if place.starts_with("dcs/") {
        &state["acl_accounts"]
    } else {
        &state["accounts"]
    };
    list.as_array()
        .into_iter()
        .flatten()
        .filter(|account| {
            !account["status"]
                .as_str()
                .unwrap_or_default()
                .eq_ignore_ascii_case("deleting")
        })
        .map(|account| {
            (
                account["name"].as_str().unwrap_or_default().to_owned(),
                account["password"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// A credential a client received.
#[derive(Clone)]
struct Lease {
    id: String,
    role: usize,
    username: String,
    password: String,
    /// The client asked for its revocation (whatever the answer was).
    revoke_asked: bool,
}

#[derive(Default)]
struct Tally {
    leases: Vec<Lease>,
    /// creds/ answers by status (0 = no answer).
    reads: BTreeMap<u16, u64>,
    revokes: BTreeMap<u16, u64>,
    renews: BTreeMap<u16, u64>,
    /// The first error answered per request kind and status.
    samples: BTreeMap<(&'static str, u16), String>,
}

impl Tally {
    fn sample(&mut self, kind: &'static str, status: u16, body: &Value) {
        if status >= 400 {
            self.samples
                .entry((kind, status))
                .or_insert_with(|| body["errors"].to_string());
        }
    }
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

    /// The status (0 when the server did not answer) and the body.
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}/v1/{path}", self.addr);
        let request = match method {
            "GET" => self.http.get(url),
            "LIST" => self.http.get(format!("{url}?list=true")),
            _ => self.http.put(url).json(&body.unwrap_or(Value::Null)),
        };
        match request.header("X-Vault-Token", &self.token).send() {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.json().unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }
}

/// One client: reads creds of random roles, revokes about half of the
/// leases it got and renews some, until `stop`.
fn client_loop(
    client: &Client,
    seed: u64,
    role_names: &[&str],
    tally: &Mutex<Tally>,
    stop: &AtomicBool,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut mine: Vec<usize> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let role = rng.random_range(0..role_names.len());
        let (status, body) =
            client.send("GET", &format!("database/creds/{}", role_names[role]), None);
        let mut book = tally.lock().unwrap();
        *book.reads.entry(status).or_default() += 1;
        book.sample("creds", status, &body);
        if status == 200 {
            let text = |key: &str| body["data"][key].as_str().unwrap_or_default().to_owned();
            book.leases.push(Lease {
                id: body["lease_id"].as_str().unwrap_or_default().to_owned(),
                role,
                username: text("username"),
                password: text("password"),
                revoke_asked: false,
            });
            mine.push(book.leases.len() - 1);
        }
        drop(book);
        if !mine.is_empty() && rng.random_bool(0.5) {
            let index = mine.swap_remove(rng.random_range(0..mine.len()));
            let id = {
                let mut book = tally.lock().unwrap();
                book.leases[index].revoke_asked = true;
                book.leases[index].id.clone()
            };
            let (status, body) =
                client.send("PUT", "sys/leases/revoke", Some(json!({ "lease_id": id })));
            let mut book = tally.lock().unwrap();
            *book.revokes.entry(status).or_default() += 1;
            book.sample("revoke", status, &body);
        } else if !mine.is_empty() && rng.random_bool(0.2) {
            let id = tally.lock().unwrap().leases[mine[rng.random_range(0..mine.len())]]
                .id
                .clone();
            let (status, _) = client.send(
                "PUT",
                "sys/leases/renew",
                Some(json!({ "lease_id": id, "increment": 40 })),
            );
            *tally.lock().unwrap().renews.entry(status).or_default() += 1;
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(20..150)));
    }
}

/// What [`check_held`] has seen so far.
#[derive(Default)]
struct Checks {
    /// Leases found holding their account with the client's password.
    verified: HashSet<String>,
    /// Leases the server no longer holds (never looked up again).
    ended: HashSet<String>,
    rounds: u64,
    /// Leases whose account was gone or had another password.
    lost: Vec<String>,
}

/// No lost lease: each lease a client holds and has not asked to revoke,
/// and that the server says lives 10 s more (so no expiry revokes it
/// meanwhile), has its account with the client's password.
fn check_held(
    client: &Client,
    emulator: &Emulator,
    roles: &[Role],
    tally: &Mutex<Tally>,
    checks: &mut Checks,
) {
    let held: Vec<(usize, Lease)> = {
        let book = tally.lock().unwrap();
        book.leases
            .iter()
            .enumerate()
            .filter(|(_, lease)| !lease.revoke_asked && !checks.ended.contains(&lease.id))
            .map(|(index, lease)| (index, lease.clone()))
            .collect()
    };
    let mut alive = Vec::new();
    for (index, lease) in held {
        let (status, body) = client.send(
            "PUT",
            "sys/leases/lookup",
            Some(json!({ "lease_id": lease.id })),
        );
        match status {
            200 if body["data"]["ttl"].as_i64().unwrap_or(0) >= 10 => alive.push((index, lease)),
            // Not found: it ended (expired, or revoked with a lost answer).
            400 => {
                checks.ended.insert(lease.id);
            }
            // About to end, or the server is down or restarting.
            _ => {}
        }
    }
    if alive.is_empty() {
        return;
    }
    let on_clusters: Vec<BTreeMap<String, String>> = roles
        .iter()
        .map(|role| accounts(emulator, role.place))
        .collect();
    let book = tally.lock().unwrap();
    for (index, lease) in alive {
        // A revoke asked while the accounts were read may have run.
        if book.leases[index].revoke_asked {
            continue;
        }
        match on_clusters[lease.role].get(&lease.username) {
            Some(password) if *password == lease.password => {
                checks.verified.insert(lease.id);
            }
            found => checks.lost.push(format!(
                "lease {} of {} holds account {}, which is {}",
                lease.id,
                roles[lease.role].name,
                lease.username,
                if found.is_some() {
                    "there with another password"
                } else {
                    "gone"
                }
            )),
        }
    }
    checks.rounds += 1;
}

/// Lease ids the server holds for a role.
fn live_leases(server: &Server, role: &str) -> Vec<String> {
    let reply = server.list(&format!("sys/leases/lookup/database/creds/{role}/"));
    reply.body["data"]["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|key| key.as_str())
        .map(|key| format!("database/creds/{role}/{key}"))
        .collect()
}

#[test]
#[ignore = "long: run with make reliability"]
fn dynamic_accounts_match_leases_after_kills_restarts_and_faults() {
    let target = env_count("DYNAMIC_CREATIONS", 300);
    let roles = roles();
    let emulator = Emulator::start();
    emulator.seed(fixture::seed());
    emulator.seed(seed());
    let server = Server::start_with(
        "reliability-dynamic",
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
            ("jitter", "0s"),
            ("account_ready_poll", "100ms"),
            ("account_ready_wait", "10s"),
            // Longer than a read may take, so the rollback never takes
            // the account of a read still waiting for it.
            ("wal_rollback_min_age", "20s"),
        ],
    );
    for (name, body) in fixture::connections(&emulator.url, "3s") {
        server
            .write(&format!("database/config/{name}"), body)
            .data();
    }
    for role in &roles {
        server
            .write(&format!("database/roles/{}", role.name), role.body.clone())
            .data();
    }
    // Every account call may be throttled, fail, or be applied with its
    // answer lost.
    emulator.set_faults(json!({
        "seed": 13, "throttle_rate": 0.15, "server_error_rate": 0.1, "drop_after_apply_rate": 0.05,
        "drop_after_apply_hold_ms": 0, "gateway_error_after_apply_rate": 0.05
    }));

    let stop = AtomicBool::new(false);
    let tally: Mutex<Tally> = Default::default();
    let mut checks = Checks::default();
    let started = Instant::now();
    let deadline = Duration::from_secs(env_count("RELIABILITY_MINUTES", 20) as u64 * 60);
    let chaos::Chaos {
        server,
        plugin_kills: kills,
        graceful_restarts: graceful,
        crash_restarts: crashes,
    } = std::thread::scope(|scope| {
        for n in 0..2u64 {
            let client = Client::new(&server.addr, &server.token);
            let names: Vec<&str> = roles.iter().map(|role| role.name).collect();
            let (stop, tally) = (&stop, &tally);
            scope.spawn(move || client_loop(&client, 100 + n, &names, tally, stop));
        }
        let checker = Client::new(&server.addr, &server.token);
        let chaos = scope.spawn(|| chaos::run(server, 1313, &stop));
        // Until enough credentials were created (or a lease was lost),
        // check the leases clients hold.
        while tally.lock().unwrap().leases.len() < target
            && checks.lost.is_empty()
            && started.elapsed() < deadline
        {
            check_held(&checker, &emulator, &roles, &tally, &mut checks);
            std::thread::sleep(Duration::from_millis(500));
        }
        stop.store(true, Ordering::Relaxed);
        chaos.join().unwrap()
    });
    let chaos_time = started.elapsed();
    let faults = emulator.counters();
    emulator.set_faults(json!({}));
    let chaos_checks = (checks.rounds, checks.verified.len());
    let checker = Client::new(&server.addr, &server.token);
    check_held(&checker, &emulator, &roles, &tally, &mut checks);
    assert!(checks.lost.is_empty(), "lost leases: {:?}", checks.lost);
    let tally = tally.into_inner().unwrap();
    assert!(
        tally.leases.len() >= target,
        "only {} credentials created in {chaos_time:?}",
        tally.leases.len()
    );
    let on_clusters: Vec<BTreeMap<String, String>> = roles
        .iter()
        .map(|role| accounts(&emulator, role.place))
        .collect();
    let live: Vec<Vec<String>> = roles
        .iter()
        .map(|role| live_leases(&server, role.name))
        .collect();
    let known: HashSet<&str> = tally.leases.iter().map(|lease| lease.id.as_str()).collect();
    let unanswered = live
        .iter()
        .flatten()
        .filter(|id| !known.contains(id.as_str()))
        .count();
    let live_total: usize = live.iter().map(Vec::len).sum();
    let accounts_total: usize = on_clusters.iter().map(BTreeMap::len).sum();

    // No orphan: once every lease has ended (MAX_TTL) and the host's
    // rollback ticks (about a minute apart) have run the WAL rollback and
    // the sweep of accounts whose lease was never recorded, no account is
    // left, and no role counts a cleanup still to do.
    let settle_started = Instant::now();
    let settle_limit = Duration::from_secs(MAX_TTL + 60 + 4 * 60);
    loop {
        let leases_left: usize = roles
            .iter()
            .map(|role| live_leases(&server, role.name).len())
            .sum();
        let accounts_left: usize = roles
            .iter()
            .map(|role| accounts(&emulator, role.place).len())
            .sum();
        let pending: u64 = roles
            .iter()
            .map(|role| {
                let reply = server.read(&format!("database/roles/{}", role.name));
                reply.data()["pending_cleanups"]
                    .as_u64()
                    .unwrap_or(u64::MAX)
            })
            .sum();
        if leases_left == 0 && accounts_left == 0 && pending == 0 {
            break;
        }
        assert!(
            settle_started.elapsed() < settle_limit,
            "after {settle_limit:?}: {leases_left} leases, {accounts_left} accounts and \
             {pending} pending cleanups left: {:?}",
            roles
                .iter()
                .map(|role| (
                    role.place,
                    accounts(&emulator, role.place).into_keys().collect()
                ))
                .collect::<Vec<(&str, Vec<String>)>>()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let settle_time = settle_started.elapsed();
    for ((kind, status), errors) in &tally.samples {
        println!("first {kind} answer with status {status}: {errors}");
    }

    let mut secrets = emulator.secrets();
    secrets.extend(tally.leases.iter().map(|lease| lease.password.clone()));
    secrets.push(server.token.clone());
    server.assert_no_leaks(secrets);

    let calls = &faults["calls"];
    let outcomes = &faults["outcomes"];
    let call_count = |apis: &[&str]| -> u64 {
        apis.iter()
            .map(|api| calls[*api].as_u64().unwrap_or(0))
            .sum()
    };
    print_table(
        "dynamic roles under crashes: figures",
        &[
            (
                "roles (PolarDB clusters + DCS instance)",
                format!("{} (2 + 1)", roles.len()),
            ),
            (
                "credentials created (creds/ answered 200)",
                tally.leases.len().to_string(),
            ),
            (
                "  creds/ reads by status (0 = no answer)",
                format!("{:?}", tally.reads),
            ),
            (
                "  revocations asked, by status",
                format!("{:?}", tally.revokes),
            ),
            ("  renewals, by status", format!("{:?}", tally.renews)),
            ("chaos phase", format!("{:.0} s", chaos_time.as_secs_f64())),
            ("plugin processes SIGKILLed", kills.to_string()),
            (
                "server restarts (SIGTERM / SIGKILL)",
                format!("{graceful} / {crashes}"),
            ),
            (
                "CreateAccount calls (PolarDB + DCS)",
                call_count(&["polardb.CreateAccount", "dcs.CreateAclAccount"]).to_string(),
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
            (
                "lease checks while the chaos ran: rounds, leases",
                format!(
                    "{} rounds, {} distinct leases with their account and password",
                    chaos_checks.0, chaos_checks.1
                ),
            ),
            (
                "leases checked in all (chaos and after)",
                checks.verified.len().to_string(),
            ),
            (
                "at chaos end: live leases (never answered)",
                format!("{live_total} ({unanswered})"),
            ),
            (
                "at chaos end: accounts on the clusters",
                accounts_total.to_string(),
            ),
            (
                "until no lease and no account was left",
                format!("{:.0} s", settle_time.as_secs_f64()),
            ),
            ("lost leases; orphaned accounts", "0; 0".into()),
            ("secrets found in logs", "0".into()),
        ],
    );
}
