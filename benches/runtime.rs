//! The plugin runtime's costs: cold start (exec to handshake line) and the
//! latency of a trivial read through OpenBao, against OpenBao's builtin kv
//! (v1) on the same server with the same keep-alive client.

#[path = "../tests/support/server.rs"]
mod server;
#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use server::{Options, PLUGIN_BINARY, Server};
use support::{Report, quantile};

fn count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn host_certificate_pem() -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.self_signed(&key).unwrap().pem()
}

/// Exec to the handshake line on stdout, once.
fn cold_start(pem: &str) -> Duration {
    let started = Instant::now();
    let mut child = Command::new(PLUGIN_BINARY)
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
    assert!(line.starts_with("1|5|unix|"), "{line:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    elapsed
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
            assert!(response.status().is_success());
            response.bytes().unwrap();
            started.elapsed()
        })
        .collect()
}

fn main() {
    let mut report = Report::new("runtime");
    let pem = host_certificate_pem();
    let runs = count("BENCH_COLD_STARTS", 50);
    cold_start(&pem); // page the binary in
    let mut starts: Vec<Duration> = (0..runs).map(|_| cold_start(&pem)).collect();
    report.duration(
        &format!("cold start, exec to handshake (median of {runs})"),
        quantile(&mut starts, 0.5),
        "<= 10 ms",
    );

    let server = Server::start_with(
        "bench-runtime",
        Options {
            log_level: "info",
            ..Options::default()
        },
    );
    server.enable("database", &[]);
    server
        .write(
            "database/config/bench",
            json!({ "provider": "alicloud", "region": "cn-hangzhou", "access_key": "AK",
                "secret_key": "SK", "verify_connection": false }),
        )
        .data();
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
        json!({ "region": "cn-hangzhou", "access_key": "AK" }),
    );

    let client = reqwest::blocking::Client::new();
    let plugin_url = format!("{}/v1/database/config/bench", server.addr);
    let kv_url = format!("{}/v1/kv/bench", server.addr);
    let reads = count("BENCH_READS", 2000);
    latencies(&client, &plugin_url, &server.token, 200);
    latencies(&client, &kv_url, &server.token, 200);
    // Interleaved rounds, so drift on the machine hits both alike.
    let (mut plugin, mut kv) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        plugin.extend(latencies(&client, &plugin_url, &server.token, reads / 10));
        kv.extend(latencies(&client, &kv_url, &server.token, reads / 10));
    }
    let plugin_p50 = quantile(&mut plugin, 0.5);
    let kv_p50 = quantile(&mut kv, 0.5);
    report.duration(
        &format!("read config/:name via OpenBao p50 ({reads} reads)"),
        plugin_p50,
        "",
    );
    report.duration(
        "read config/:name via OpenBao p99",
        quantile(&mut plugin, 0.99),
        "",
    );
    report.duration("read builtin kv v1 p50", kv_p50, "");
    report.duration("read builtin kv v1 p99", quantile(&mut kv, 0.99), "");
    report.figure(
        "read p50 ratio plugin / kv",
        plugin_p50.as_secs_f64() / kv_p50.as_secs_f64(),
        "x",
        "<= 1.5 x",
    );
    report.save();
}
