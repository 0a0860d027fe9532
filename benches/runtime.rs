//! The plugin runtime's costs, side by side with its Go peer: the reference
//! plugin of `tests/go/reference-plugin`, the smallest secrets engine the
//! official Vault SDK makes that stores static credentials and reads them
//! back (built into `.tools/bin` by `make bench`). Both run in one server
//! (OpenBao, or the host `CLOUDROTATE_TEST_HOST` names) and are measured
//! with the same client:
//!
//! * cold start: exec to the handshake line, same environment;
//! * read `static-creds/:name`, p50 and p99, interleaved rounds, with
//!   the server's builtin kv (v1) as the floor;
//! * resident memory idle (one mount, one entry) and with
//!   `BENCH_STORED_ENTRIES` (10,000) static roles stored.
//!
//! Targets: our read p50 at or below the Go plugin's, our cold start at
//! most a tenth of its, our RSS at most a third of its.

#[path = "../tests/support/server.rs"]
mod server;
#[path = "support/mod.rs"]
mod support;
#[path = "../tests/support/tools.rs"]
mod tools;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server::{Options, Server, plugin_binary, processes_of};
use support::{Report, count, mib, proc_kib, quantile, write_all};
use tools::Tool;

/// Where the Go peer is mounted and what it is called in the catalog.
const GO_MOUNT: &str = "go";
const GO_NAME: &str = "go-reference";
const PASSWORD: &str = "Bench-Password-1";

fn host_certificate_pem() -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.self_signed(&key).unwrap().pem()
}

/// Exec to the handshake line on stdout, once, as a host launches it.
fn cold_start(binary: &Path, pem: &str) -> Duration {
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .env(
            cloudrotate::plugin::COOKIE_KEY,
            cloudrotate::plugin::COOKIE_VALUE,
        )
        .env("PLUGIN_PROTOCOL_VERSIONS", "5")
        .env("PLUGIN_CLIENT_CERT", pem)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        line.starts_with("1|5|unix|"),
        "{}: {line:?}",
        binary.display()
    );
    child.kill().unwrap();
    child.wait().unwrap();
    elapsed
}

/// Median cold starts of ours and the Go plugin, alternating.
fn cold_starts(go: &Path, runs: usize) -> (Duration, Duration) {
    let pem = host_certificate_pem();
    let ours = plugin_binary();
    let ours = ours.as_path();
    // Page both binaries in.
    cold_start(ours, &pem);
    cold_start(go, &pem);
    let (mut our_starts, mut go_starts) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        our_starts.push(cold_start(ours, &pem));
        go_starts.push(cold_start(go, &pem));
    }
    (
        quantile(&mut our_starts, 0.5),
        quantile(&mut go_starts, 0.5),
    )
}

fn latencies(
    client: &reqwest::blocking::Client,
    url: &str,
    token: &str,
    n: usize,
) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let started = Instant::now();
            let response = client
                .get(url)
                .header("X-Vault-Token", token)
                .send()
                .unwrap();
            assert!(
                response.status().is_success(),
                "{url}: {}",
                response.status()
            );
            response.bytes().unwrap();
            started.elapsed()
        })
        .collect()
}

/// The one process of `binary`.
fn pid_of(binary: &Path) -> i32 {
    let pids = processes_of(binary);
    assert_eq!(pids.len(), 1, "{}: processes {pids:?}", binary.display());
    pids[0]
}

/// Our static role `name`: an external target holding a given password.
fn our_role(server: &Server, name: &str) {
    server
        .write(
            &format!("database/static-roles/{name}"),
            json!({ "target": "external", "username": "bench" }),
        )
        .data();
    let rotated = server.write(
        &format!("database/rotate-role/{name}"),
        json!({ "password": PASSWORD }),
    );
    assert_eq!(rotated.data()["status"], "ok", "{rotated:?}");
}

fn go_role(name: &str) -> (String, Value) {
    (
        format!("{GO_MOUNT}/static-roles/{name}"),
        json!({ "username": "bench", "password": PASSWORD }),
    )
}

fn main() {
    let mut report = Report::new("runtime");
    let go = Tool::ReferencePlugin.path();
    let runs = count("BENCH_COLD_STARTS", 50);
    let (our_start, go_start) = cold_starts(&go, runs);
    report.duration(
        &format!("cold start, exec to handshake: ours (median of {runs})"),
        our_start,
        "<= 10 ms",
    );
    report.duration("cold start: Go SDK plugin", go_start, "");
    report.figure(
        "cold start ratio ours / Go",
        our_start.as_secs_f64() / go_start.as_secs_f64(),
        "x",
        "<= 0.1 x",
    );

    let server = Server::start_with(
        "bench-runtime",
        Options {
            log_level: "info",
            ..Options::default()
        },
    );
    let host = server.host().name();
    let installed_go = server.install_binary(&go, "reference-plugin");
    server.register_binary(GO_NAME, &installed_go);
    server.enable("database", &[]);
    our_role(&server, "bench");
    server.cli_ok(&["secrets", "enable", &format!("-path={GO_MOUNT}"), GO_NAME]);
    let (path, body) = go_role("bench");
    server.write(&path, body);
    assert!(
        server
            .write(
                "sys/mounts/kv",
                json!({ "type": "kv", "options": { "version": "1" } })
            )
            .status
            < 300
    );
    server.write(
        "kv/bench",
        json!({ "username": "bench", "password": PASSWORD }),
    );

    let client = reqwest::blocking::Client::new();
    let urls = [
        format!("{}/v1/database/static-creds/bench", server.addr),
        format!("{}/v1/{GO_MOUNT}/static-creds/bench", server.addr),
        format!("{}/v1/kv/bench", server.addr),
    ];
    let reads = count("BENCH_READS", 2000);
    for url in &urls {
        latencies(&client, url, &server.token, 200);
    }
    // Interleaved rounds, so drift on the machine hits all alike.
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..10 {
        for (url, samples) in urls.iter().zip(samples.iter_mut()) {
            samples.extend(latencies(&client, url, &server.token, reads / 10));
        }
    }
    let [ours, go_reads, kv] = &mut samples;
    let our_p50 = quantile(ours, 0.5);
    let go_p50 = quantile(go_reads, 0.5);
    let kv_p50 = quantile(kv, 0.5);
    report.duration(
        &format!("read static-creds/:name via {host}: ours p50 ({reads} reads)"),
        our_p50,
        "",
    );
    report.duration(
        "read static-creds/:name: ours p99",
        quantile(ours, 0.99),
        "",
    );
    report.duration("read static-creds/:name: Go SDK plugin p50", go_p50, "");
    report.duration(
        "read static-creds/:name: Go SDK plugin p99",
        quantile(go_reads, 0.99),
        "",
    );
    report.figure(
        "read p50 ratio ours / Go",
        our_p50.as_secs_f64() / go_p50.as_secs_f64(),
        "x",
        "<= 1 x",
    );
    report.duration("read builtin kv v1 p50", kv_p50, "");
    report.duration("read builtin kv v1 p99", quantile(kv, 0.99), "");
    report.figure(
        "read p50 ratio ours / kv",
        our_p50.as_secs_f64() / kv_p50.as_secs_f64(),
        "x",
        "<= 1.5 x",
    );

    let (our_pid, go_pid) = (pid_of(&server.plugin_path()), pid_of(&installed_go));
    let our_idle = proc_kib(our_pid, "VmRSS");
    let go_idle = proc_kib(go_pid, "VmRSS");
    report.figure("RSS idle, one mount: ours", mib(our_idle), "MiB", "");
    report.figure(
        "RSS idle, one mount: Go SDK plugin",
        mib(go_idle),
        "MiB",
        "",
    );
    report.figure(
        "RSS idle ratio ours / Go",
        our_idle as f64 / go_idle as f64,
        "x",
        "<= 0.333 x",
    );

    let entries = count("BENCH_STORED_ENTRIES", 10_000);
    let names: Vec<String> = (0..entries).map(|i| format!("e-{i:05}")).collect();
    write_all(
        &server.addr,
        &server.token,
        names
            .iter()
            .map(|name| {
                (
                    format!("database/static-roles/{name}"),
                    json!({ "target": "external", "username": "bench" }),
                )
            })
            .collect(),
    );
    write_all(
        &server.addr,
        &server.token,
        names.iter().map(|name| go_role(name)).collect(),
    );
    // Both read one back, so each has served its stored entries.
    let last = names.last().unwrap();
    server.read(&format!("database/static-roles/{last}")).data();
    server
        .read(&format!("{GO_MOUNT}/static-creds/{last}"))
        .data();
    let our_full = proc_kib(our_pid, "VmRSS");
    let go_full = proc_kib(go_pid, "VmRSS");
    report.figure(
        &format!("RSS with {entries} static roles stored: ours"),
        mib(our_full),
        "MiB",
        "",
    );
    report.figure(
        &format!("RSS with {entries} static roles stored: Go SDK plugin"),
        mib(go_full),
        "MiB",
        "",
    );
    report.figure(
        &format!("RSS with {entries} stored ratio ours / Go"),
        our_full as f64 / go_full as f64,
        "x",
        "<= 0.333 x",
    );
    report.save();
    // Go plugins do not exit when their host does: stop it with the
    // server. Found first: dropping the server deletes the binary, whose
    // path its processes are found by.
    let go_pids = processes_of(&installed_go);
    drop(server);
    for pid in go_pids {
        // SAFETY: plain kill(2) on a pid we just found.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}
