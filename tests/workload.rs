//! An application in the loop (issue 12): client threads open fresh
//! connections with the credentials `bao agent` renders from
//! `static-creds` (a PostgreSQL login and `SELECT 1`, or Redis `AUTH` and
//! `PING`) while the roles rotate, and count the logins the servers refuse.
//! Four roles on one stack, all rotating every `WORKLOAD_PERIOD` seconds:
//! PolarDB (backed by PostgreSQL) and DCS (backed by Redis), each with one
//! account and with two that take turns. A dual-account role must cost no
//! failed login; the single-account figure is the baseline. A failed
//! login is the server refusing the credentials (PostgreSQL SQLSTATE 28P01,
//! Redis WRONGPASS); any other error is counted apart.
//!
//! Counts from the environment: `WORKLOAD_ROTATIONS` (every role rotates at
//! least this often; default 50, so the two dual roles give 100),
//! `WORKLOAD_CLIENTS` per role (4), `WORKLOAD_PERIOD` in seconds (5, the
//! plugin's minimum). `#[ignore]`d by plain `cargo test`; `make
//! reliability` runs it, CI with fewer rotations. Waits poll with deadlines.

#[path = "support/agent.rs"]
mod agent;
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

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use agent::Agent;
use cloudrotate::emulator::backing::redis::{Connection, RespValue};
use emulator::{Emulator, fixture};
use serde_json::{Value, json};
use server::Server;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const SEEDED: &str = "Seeded-Pass-1";
const DATABASE: &str = "appdb";
/// A client's pause between two logins: its rate.
const PAUSE: Duration = Duration::from_millis(50);
/// How often the roles are read to see their rotations.
const POLL: Duration = Duration::from_millis(200);

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Polls `check` until it holds, at most `within`.
fn wait_within(what: &str, within: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + within;
    loop {
        match check() {
            Ok(()) => return,
            Err(why) => assert!(
                Instant::now() < deadline,
                "timed out after {within:?} waiting for {what}: {why}"
            ),
        }
        std::thread::sleep(POLL);
    }
}

#[derive(Clone, Copy)]
enum Service {
    Postgres,
    Redis,
}

struct Role {
    name: &'static str,
    dual: bool,
    service: Service,
    port: u16,
    body: Value,
}

/// Fields are dropped in order: the server (and its rotations) goes first,
/// the real servers last.
struct Stack {
    server: Server,
    _emulator: Emulator,
    pg: postgres::Postgres,
    /// Behind the single-account DCS instance: `requirepass` rotates.
    redis_single: redis::Redis,
    /// Behind the dual-account DCS instance: two ACL users rotate.
    redis_dual: redis::Redis,
}

impl Stack {
    fn start() -> Self {
        let pg = postgres::Postgres::start();
        let redis_single = redis::Redis::start(SEEDED);
        let redis_dual = redis::Redis::start(SEEDED);
        let emulator = Emulator::start();
        emulator.seed(fixture::seed());
        let grants = json!([{ "db_name": DATABASE, "privilege": "ReadWrite" }]);
        let account = |name: &str| json!({ "name": name, "password": SEEDED, "type": "Normal", "privileges": grants });
        let acl = |name: &str| json!({ "name": name, "password": SEEDED, "role": "write" });
        // The dual DCS instance's ACL resets settle for 0.5 s, so every
        // rotation of it waits for the settle poll before it flips.
        emulator.seed(json!({
            "alicloud": { "polardb_clusters": [{
                "id": "pc-work", "region": "cn-hangzhou", "engine": "PostgreSQL",
                "databases": [DATABASE], "account_settle_seconds": 0.0, "backing": pg.backing(),
                "accounts": [account("app_single"), account("app_blue"), account("app_green")]
            }]},
            "huaweicloud": { "dcs_instances": [
                { "id": "dcs-single", "project_id": fixture::PROJECT, "password": SEEDED,
                  "engine_version": "6.0", "backing": redis_single.backing() },
                { "id": "dcs-dual", "project_id": fixture::PROJECT, "password": SEEDED,
                  "engine_version": "6.0", "account_settle_seconds": 0.5,
                  "backing": redis_dual.backing(), "acl_accounts": [acl("app_blue"), acl("app_green")] }
            ]}
        }));
        let server = Server::start("workload");
        // The product's tuning: its retry delays, jitter and settle polls.
        server.enable("database", &[]);
        for (name, body) in fixture::connections(&emulator.url, "5s") {
            server
                .write(&format!("database/config/{name}"), body)
                .data();
        }
        Self {
            server,
            _emulator: emulator,
            pg,
            redis_single,
            redis_dual,
        }
    }

    fn roles(&self, period: u64) -> Vec<Role> {
        let period = format!("{period}s");
        let polardb = json!({ "target": "polardb-account", "connection": "ali",
                              "cluster_id": "pc-work", "rotation_period": period });
        let dcs =
            json!({ "target": "dcs-instance", "connection": "hw", "rotation_period": period });
        let with = |base: &Value, extra: Value| {
            let mut body = base.clone();
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            body
        };
        vec![
            Role {
                name: "pg-single",
                dual: false,
                service: Service::Postgres,
                port: self.pg.port,
                body: with(&polardb, json!({ "username": "app_single" })),
            },
            Role {
                name: "pg-dual",
                dual: true,
                service: Service::Postgres,
                port: self.pg.port,
                body: with(&polardb, json!({ "usernames": "app_blue,app_green" })),
            },
            Role {
                name: "dcs-single",
                dual: false,
                service: Service::Redis,
                port: self.redis_single.port,
                body: with(
                    &dcs,
                    json!({ "instance_id": "dcs-single", "password": SEEDED }),
                ),
            },
            Role {
                name: "dcs-dual",
                dual: true,
                service: Service::Redis,
                port: self.redis_dual.port,
                body: with(
                    &dcs,
                    json!({ "instance_id": "dcs-dual", "usernames": "app_blue,app_green" }),
                ),
            },
        ]
    }

    /// Writes the role and waits for its first rotations to end.
    fn create(&self, role: &Role) {
        let path = format!("database/static-roles/{}", role.name);
        let reply = self.server.write_rotating(&path, role.body.clone());
        self.settled(role.name);
        // A DCS reset settles in the background: the write may end before
        // the import rotation does, and then says to run rotate-role once
        // it has (what an operator does).
        if reply.body["warnings"].to_string().contains("rotate-role") {
            self.server
                .write_rotating(&format!("database/rotate-role/{}", role.name), json!({}));
            self.settled(role.name);
        }
    }

    fn settled(&self, role: &str) {
        wait_within(
            &format!("role {role} to settle"),
            Duration::from_secs(60),
            || {
                let reply = self.server.read(&format!("database/static-roles/{role}"));
                let data = &reply.body["data"];
                if reply.status == 200
                    && data["rotation_in_progress"].is_null()
                    && data["status"] == "ok"
                {
                    Ok(())
                } else {
                    Err(format!("{} {}", reply.status, reply.body))
                }
            },
        );
    }

    /// `static-creds`: (username, password).
    fn creds(&self, role: &str) -> (String, String) {
        let reply = self.server.read(&format!("database/static-creds/{role}"));
        let data = reply.data();
        let field = |key: &str| data[key].as_str().unwrap_or_default().to_owned();
        (field("username"), field("password"))
    }
}

/// The rotations of one role seen since the workload started, from the
/// role's `last_vault_rotation`.
struct Timeline {
    last: Value,
    /// When each rotation took effect, and the account it left active.
    rotations: Vec<(OffsetDateTime, String)>,
}

impl Timeline {
    fn read(server: &Server, role: &str) -> Value {
        server
            .read(&format!("database/static-roles/{role}"))
            .data()
            .clone()
    }

    fn start(server: &Server, role: &str) -> Self {
        Self {
            last: Self::read(server, role)["last_vault_rotation"].clone(),
            rotations: Vec::new(),
        }
    }

    fn observe(&mut self, server: &Server, role: &str) {
        let data = Self::read(server, role);
        let last = &data["last_vault_rotation"];
        if *last != self.last {
            let at = OffsetDateTime::parse(last.as_str().unwrap_or_default(), &Rfc3339)
                .unwrap_or_else(|e| panic!("{role}'s last_vault_rotation {last}: {e}"));
            let active = data["username"].as_str().unwrap_or_default().to_owned();
            self.rotations.push((at, active));
            self.last = last.clone();
        }
    }

    /// The index of the first rotation after `at` (the number of
    /// rotations when there is none yet).
    fn first_after(&self, at: OffsetDateTime) -> usize {
        self.rotations.partition_point(|(t, _)| *t <= at)
    }
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Ok,
    /// The server refused the credentials: a failed login.
    Refused,
    /// Anything else (no connection, a timeout, a failed query).
    Other(String),
}

struct Attempt {
    at: OffsetDateTime,
    user: String,
    /// When the agent wrote the credentials used.
    written: SystemTime,
    outcome: Outcome,
}

#[derive(Default)]
struct ClientLog {
    attempts: Vec<Attempt>,
    /// New credentials the client picked up, and how many of them came in
    /// a file the agent rewrote in place (the same inode) instead of
    /// renaming a new one over it.
    renders: u64,
    in_place: u64,
    /// Reads that found no whole render: not logins, counted apart.
    incomplete: u64,
}

struct Client {
    role: usize,
    /// The credentials of the client's last successful login.
    last_ok: Arc<Mutex<Option<(String, String)>>>,
    thread: JoinHandle<ClientLog>,
}

async fn postgres_login(port: u16, user: &str, password: &str) -> Outcome {
    let describe = |e: tokio_postgres::Error| {
        e.as_db_error()
            .map_or_else(|| e.to_string(), |db| db.message().to_owned())
    };
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user(user)
        .password(password)
        .dbname(DATABASE)
        .connect_timeout(Duration::from_secs(5));
    let (client, connection) = match config.connect(tokio_postgres::NoTls).await {
        Ok(pair) => pair,
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD) => {
            return Outcome::Refused;
        }
        Err(e) => return Outcome::Other(describe(e)),
    };
    let connection = tokio::spawn(connection);
    let outcome = match client.simple_query("SELECT 1").await {
        Ok(_) => Outcome::Ok,
        Err(e) => Outcome::Other(describe(e)),
    };
    // Closes the session before the next login opens one.
    drop(client);
    let _ = connection.await;
    outcome
}

/// `AUTH [user] password` then `PING`; an empty user is the `default` one.
async fn redis_login(port: u16, user: &str, password: &str) -> Outcome {
    let mut connection = match Connection::open("127.0.0.1", port).await {
        Ok(connection) => connection,
        Err(e) => return Outcome::Other(e),
    };
    let mut auth: Vec<&[u8]> = vec![b"AUTH"];
    if !user.is_empty() {
        auth.push(user.as_bytes());
    }
    auth.push(password.as_bytes());
    match connection.command(&auth).await {
        Ok(RespValue::Error(message)) if message.starts_with("WRONGPASS") => Outcome::Refused,
        Ok(RespValue::Error(message)) => Outcome::Other(message),
        Err(e) => Outcome::Other(e),
        Ok(_) => match connection.command(&[b"PING"]).await {
            Ok(RespValue::Simple(pong)) if pong == "PONG" => Outcome::Ok,
            other => Outcome::Other(format!("PING: {other:?}")),
        },
    }
}

/// One application instance: reads the agent's file, logs in afresh,
/// pauses; no retries and no knowledge of rotations.
fn client_loop(
    service: Service,
    port: u16,
    file: PathBuf,
    stop: Arc<AtomicBool>,
    last_ok: Arc<Mutex<Option<(String, String)>>>,
) -> ClientLog {
    let runtime = postgres::runtime();
    let mut log = ClientLog::default();
    let mut seen: Option<agent::Render> = None;
    while !stop.load(Ordering::Relaxed) {
        let Some(render) = agent::read(&file) else {
            log.incomplete += 1;
            std::thread::sleep(PAUSE);
            continue;
        };
        if let Some(previous) = &seen
            && previous.password != render.password
        {
            log.renders += 1;
            log.in_place += u64::from(previous.inode == render.inode);
        }
        let at = OffsetDateTime::now_utc();
        let outcome = runtime.block_on(async {
            match service {
                Service::Postgres => postgres_login(port, &render.username, &render.password).await,
                Service::Redis => redis_login(port, &render.username, &render.password).await,
            }
        });
        if outcome == Outcome::Ok {
            *last_ok.lock().unwrap() = Some((render.username.clone(), render.password.clone()));
        }
        log.attempts.push(Attempt {
            at,
            user: render.username.clone(),
            written: render.written,
            outcome,
        });
        seen = Some(render);
        std::thread::sleep(PAUSE);
    }
    log
}

/// One role's figures over all its clients.
#[derive(Default)]
struct Figures {
    logins: usize,
    refused: usize,
    other: usize,
    /// From a client's first refused login to its next successful one.
    longest_window: Duration,
    /// From a rotation to a client's first login with what the agent
    /// rendered after it: a dual role fails no login while this stays
    /// under the period.
    longest_pickup: Duration,
    /// Refused logins per rotation: the first one after the render the
    /// login used, which made it stale (the last slot: none seen yet).
    /// Not the last one before the login: Vault notes the rotation's time
    /// a few milliseconds after the server took the new password.
    per_rotation: Vec<usize>,
    other_samples: Vec<String>,
}

impl Figures {
    fn add(&mut self, log: &ClientLog, timeline: &Timeline) {
        self.per_rotation.resize(timeline.rotations.len() + 1, 0);
        let mut window_from = None;
        for attempt in &log.attempts {
            self.logins += 1;
            match &attempt.outcome {
                Outcome::Ok => {
                    if let Some(from) = window_from.take() {
                        let window: time::Duration = attempt.at - from;
                        self.longest_window = self.longest_window.max(window.unsigned_abs());
                    }
                }
                Outcome::Refused => {
                    self.refused += 1;
                    self.per_rotation
                        [timeline.first_after(OffsetDateTime::from(attempt.written))] += 1;
                    window_from.get_or_insert(attempt.at);
                }
                Outcome::Other(message) => {
                    self.other += 1;
                    if self.other_samples.len() < 5 {
                        self.other_samples.push(message.clone());
                    }
                }
            }
        }
        // Renders only move forward, so a client's attempts are in order
        // of when their credentials were written.
        for (rotated, _) in &timeline.rotations {
            let first = log
                .attempts
                .partition_point(|a| OffsetDateTime::from(a.written) < *rotated);
            if let Some(attempt) = log.attempts.get(first) {
                let pickup: time::Duration = attempt.at - *rotated;
                self.longest_pickup = self.longest_pickup.max(pickup.unsigned_abs());
            }
        }
    }
}

fn show(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// Each refused login of a role, with the render it used and the
/// rotations since that render: what tells agent lag from a flip that came
/// too early.
fn explain_refusals(name: &str, clients: &[(usize, &ClientLog)], timeline: &Timeline) {
    for (number, log) in clients {
        for attempt in log
            .attempts
            .iter()
            .filter(|a| a.outcome == Outcome::Refused)
        {
            let written = OffsetDateTime::from(attempt.written);
            let since: Vec<String> = timeline.rotations[timeline.first_after(written)..]
                .iter()
                .take(3)
                .map(|(t, active)| {
                    format!(
                        "{} -> {active} (the login began {:+} ms from it)",
                        show(*t),
                        (attempt.at - *t).whole_milliseconds()
                    )
                })
                .collect();
            println!(
                "  {name} client {number}: refused at {} as {}, with a render written at {} ({} ms before); rotations since that render: {}",
                show(attempt.at),
                attempt.user,
                show(written),
                (attempt.at - written).whole_milliseconds(),
                since.join(", ")
            );
        }
    }
}

/// The figures per role, then what the clients saw of the agent's files
/// and a few of the other errors.
fn print_table(
    roles: &[Role],
    timelines: &[Timeline],
    figures: &[Figures],
    logs: &[(usize, ClientLog)],
) {
    println!(
        "  {:<11} {:<8} {:>9} {:>7} {:>13} {:>12} {:>16} {:>19} {:>19} {:>12}",
        "role",
        "accounts",
        "rotations",
        "logins",
        "failed logins",
        "failed/rot.",
        "most in one rot.",
        "longest window (ms)",
        "longest pickup (ms)",
        "other errors"
    );
    for ((role, timeline), f) in roles.iter().zip(timelines).zip(figures) {
        let rotations = timeline.rotations.len();
        println!(
            "  {:<11} {:<8} {:>9} {:>7} {:>13} {:>12.2} {:>16} {:>19} {:>19} {:>12}",
            role.name,
            if role.dual { "dual" } else { "single" },
            rotations,
            f.logins,
            f.refused,
            f.refused as f64 / rotations as f64,
            f.per_rotation.iter().max().copied().unwrap_or(0),
            f.longest_window.as_millis(),
            f.longest_pickup.as_millis(),
            f.other
        );
    }
    let total = |field: fn(&ClientLog) -> u64| logs.iter().map(|(_, log)| field(log)).sum::<u64>();
    println!(
        "  new credentials picked up by clients: {}, of them read from a file rewritten in place: {}; \
         reads that found no whole render: {}",
        total(|l| l.renders),
        total(|l| l.in_place),
        total(|l| l.incomplete)
    );
    for (role, f) in roles.iter().zip(figures) {
        for sample in &f.other_samples {
            println!("  {} other error: {sample}", role.name);
        }
    }
}

#[test]
#[ignore = "long: run with make reliability"]
fn dual_account_roles_cost_no_failed_login_while_single_account_roles_do() {
    let target = env_count("WORKLOAD_ROTATIONS", 50);
    let per_role = env_count("WORKLOAD_CLIENTS", 4);
    let period = env_count("WORKLOAD_PERIOD", 5);
    let began = Instant::now();
    let stack = Stack::start();
    let server = &stack.server;
    let roles = stack.roles(period);
    for role in &roles {
        stack.create(role);
    }
    let names: Vec<&str> = roles.iter().map(|r| r.name).collect();
    let agent = Agent::start(server, &names, "1m");
    wait_within(
        "the agent to render every role's current credentials",
        Duration::from_secs(60),
        || {
            for name in &names {
                let rendered = agent.render(name).map(|r| (r.username, r.password));
                if rendered != Some(stack.creds(name)) {
                    return Err(format!("{name} not rendered yet:\n{}", agent.log()));
                }
            }
            Ok(())
        },
    );
    let setup = began.elapsed();

    let mut timelines: Vec<Timeline> = names.iter().map(|n| Timeline::start(server, n)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<Client> = roles
        .iter()
        .enumerate()
        .flat_map(|(index, role)| (0..per_role).map(move |_| (index, role)))
        .map(|(index, role)| {
            let last_ok = Arc::new(Mutex::new(None));
            let (service, port, file) = (role.service, role.port, agent.path(role.name));
            let (stop, shared) = (stop.clone(), last_ok.clone());
            Client {
                role: index,
                last_ok,
                thread: std::thread::spawn(move || client_loop(service, port, file, stop, shared)),
            }
        })
        .collect();
    let running = Instant::now();
    let observe = |timelines: &mut Vec<Timeline>| {
        for (timeline, name) in timelines.iter_mut().zip(&names) {
            timeline.observe(server, name);
        }
    };

    let within = Duration::from_secs(target * (period + 10) + 60);
    wait_within(
        &format!("every role to rotate {target} times"),
        within,
        || {
            observe(&mut timelines);
            let counts: Vec<usize> = timelines.iter().map(|t| t.rotations.len()).collect();
            if counts.iter().all(|&n| n as u64 >= target) {
                Ok(())
            } else {
                Err(format!("rotations so far {counts:?} ({names:?})"))
            }
        },
    );
    // Nothing left broken: every client has logged in with the
    // credentials its role hands out now.
    wait_within(
        "every client to log in with its role's current credentials",
        Duration::from_secs(3 * period + 30),
        || {
            observe(&mut timelines);
            let current: Vec<(String, String)> = names.iter().map(|n| stack.creds(n)).collect();
            for (number, client) in clients.iter().enumerate() {
                let last_ok = client.last_ok.lock().unwrap().clone();
                if last_ok.as_ref() != Some(&current[client.role]) {
                    return Err(format!(
                        "client {number} of {} last logged in as {:?}",
                        names[client.role],
                        last_ok.map(|(user, _)| user)
                    ));
                }
            }
            Ok(())
        },
    );
    stop.store(true, Ordering::Relaxed);
    let logs: Vec<(usize, ClientLog)> = clients
        .into_iter()
        .map(|c| (c.role, c.thread.join().expect("a client thread")))
        .collect();
    let wall = running.elapsed();

    let mut figures: Vec<Figures> = roles.iter().map(|_| Figures::default()).collect();
    for (role, log) in &logs {
        figures[*role].add(log, &timelines[*role]);
    }
    println!(
        "\nworkload: {per_role} clients per role, each logging in afresh every {} ms plus the login; \
         rotation_period {period}s; at least {target} rotations per role ({} over the two dual roles); \
         {:.0?} of workload after {:.0?} of setup",
        PAUSE.as_millis(),
        timelines
            .iter()
            .zip(&roles)
            .filter(|(_, r)| r.dual)
            .map(|(t, _)| t.rotations.len())
            .sum::<usize>(),
        wall,
        setup
    );
    print_table(&roles, &timelines, &figures, &logs);

    for ((index, role), f) in roles.iter().enumerate().zip(&figures) {
        if role.dual && f.refused > 0 {
            let mine: Vec<(usize, &ClientLog)> = logs
                .iter()
                .filter(|(r, _)| *r == index)
                .map(|(_, log)| log)
                .enumerate()
                .collect();
            explain_refusals(role.name, &mine, &timelines[index]);
        }
    }
    for ((role, f), timeline) in roles.iter().zip(&figures).zip(&timelines) {
        assert!(
            !role.dual || f.refused == 0,
            "{}: {} failed logins with two accounts",
            role.name,
            f.refused
        );
        // Rotations are a period apart and read five times a second, so
        // each one seen must have moved a dual role to its other account.
        assert!(
            !role.dual || timeline.rotations.windows(2).all(|w| w[0].1 != w[1].1),
            "{}: a rotation that kept the active account: {:?}",
            role.name,
            timeline.rotations
        );
        let history = server.read(&format!("database/history/{}", role.name));
        let rotations = history.data()["rotations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            rotations.iter().all(|r| r["outcome"] == "succeeded"),
            "{}: a rotation that did not succeed: {}",
            role.name,
            history.body
        );
    }
}
