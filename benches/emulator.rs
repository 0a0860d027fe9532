//! The emulator's cold start and its throughput on one core.
//!
//! * Cold start: spawn the release binary until it prints its
//!   `listening on` line, 21 times; the median counts (target well under 1 s).
//! * Throughput: the emulator on ONE worker thread (`--threads 1`), pinned to
//!   CPU 0 with `taskset` when there is one; the client pinned to the other
//!   CPU, 16 keep-alive connections, each sending requests signed per call
//!   with the crate's signing functions: DCS ResetPassword, DTS
//!   ModifyDtsJobPassword (ACS3), DCS ShowInstance and PolarDB
//!   DescribeAccounts (RPC V2), round robin, for 3 s after 0.5 s of warm-up.
//!   Every answer must be a 200 and the emulator's own counters must match
//!   what was sent (target >= 2000 requests/s).
//!
//! Run: `cargo bench --bench emulator`. Exits non-zero when a request fails
//! or a target is missed.

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloudrotate::emulator::http::Request;
use cloudrotate::emulator::testkit::{self, Client, Creds};
use serde_json::json;
use time::OffsetDateTime;

use support::{Report, quantile};

const BINARY: &str = env!("CARGO_BIN_EXE_cloudrotate-emulator");
const STARTS: usize = 21;
const CONNECTIONS: usize = 16;
const WARM_UP: Duration = Duration::from_millis(500);
const MEASURE: Duration = Duration::from_secs(3);
const TARGET_RPS: f64 = 2000.0;
const TARGET_START: Duration = Duration::from_millis(1000);

const ALI_AK: &str = "LTAIbenchkey000000001";
const ALI_SK: &str = "bench-alibaba-secret-000001";
const HW_AK: &str = "HWBENCHKEY0000000001";
const HW_SK: &str = "bench-huawei-secret-0000000000000000001";
const PROJECT: &str = "054ba152d480d55b2f5dc0069e7ddef0";
const DCS: &str = "3f7e1c7e-8d3a-4b6e-9d0f-8f1e2a3b4c5d";
const DTS_JOB: &str = "benchdtsjob0001";

struct Running {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn has_taskset() -> bool {
    Command::new("taskset")
        .args(["-c", "0", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Spawns the emulator and waits for its first line; the time that took.
fn start(args: &[&str], pin_to_cpu0: bool) -> (Running, Duration) {
    let mut command = if pin_to_cpu0 {
        let mut command = Command::new("taskset");
        command.args(["-c", "0", BINARY]);
        command
    } else {
        Command::new(BINARY)
    };
    command
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let mut child = command.spawn().expect("spawn the emulator");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the first line");
    let took = started.elapsed();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("an address");
    (Running { child, addr }, took)
}

fn seed_file() -> std::path::PathBuf {
    let seed = json!({
        "alicloud": {
            "users": [{"name": "bench", "access_keys": [{"id": ALI_AK, "secret": ALI_SK}]}],
            "polardb_clusters": [{"id": "pc-bench", "accounts": [
                {"name": "app", "password": "Initial-Pass-1"}]}],
            "dts_jobs": [{"id": DTS_JOB, "src": {"user": "app", "password": "Initial-Pass-1"},
                "dest": {"user": "sink", "password": "Initial-Pass-1"}}]
        },
        "huaweicloud": {
            "users": [{"id": "bench-user", "access_keys": [{"access": HW_AK, "secret": HW_SK}]}],
            "dcs_instances": [{"id": DCS, "project_id": PROJECT, "password": "Initial-P@ss1"}]
        }
    });
    let path =
        std::env::temp_dir().join(format!("emulator-bench-seed-{}.json", std::process::id()));
    std::fs::write(&path, seed.to_string()).expect("write the seed");
    path
}

/// Pins the calling thread to `cpu` (best effort).
fn pin_thread(cpu: usize) {
    // SAFETY: `set` is a zeroed, properly sized cpu_set_t that CPU_SET only
    // writes inside; pid 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The `n`-th request of connection `conn`: a realistic mix, signed now.
fn request(conn: usize, n: u64) -> Request {
    let at = OffsetDateTime::now_utc();
    let ali = Creds::new(ALI_AK, ALI_SK);
    let hw = Creds::new(HW_AK, HW_SK);
    let nonce = format!("bench-{conn}-{n}");
    match n % 4 {
        0 => {
            let body = json!({"new_password": format!("Bench-P@ss{conn}x{n}"), "no_password_access": false});
            testkit::huawei(
                "dcs.cn-north-4.myhuaweicloud.com",
                "POST",
                &format!("/v2/{PROJECT}/instances/{DCS}/password/reset"),
                &[],
                body.to_string().as_bytes(),
                Some(PROJECT),
                &hw,
                at,
            )
        }
        1 => testkit::alicloud_acs3(
            "dts.aliyuncs.com",
            "2020-01-01",
            "ModifyDtsJobPassword",
            &[
                ("DtsJobId", DTS_JOB),
                ("Endpoint", "src"),
                ("UserName", "app"),
                ("Password", &format!("Bench-Pass-{conn}-{n}")),
                ("RegionId", "cn-hangzhou"),
            ],
            &ali,
            at,
            &nonce,
        ),
        2 => testkit::huawei(
            "dcs.cn-north-4.myhuaweicloud.com",
            "GET",
            &format!("/v2/{PROJECT}/instances/{DCS}"),
            &[],
            b"",
            Some(PROJECT),
            &hw,
            at,
        ),
        _ => testkit::alicloud_v2(
            "polardb.aliyuncs.com",
            "2017-08-01",
            "DescribeAccounts",
            &[("DBClusterId", "pc-bench")],
            &ali,
            at,
            &nonce,
        ),
    }
}

struct Load {
    requests: u64,
    failures: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// Drives `addr` from CPU 1 with `CONNECTIONS` keep-alive connections.
fn drive(addr: SocketAddr) -> Load {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|conn| {
            let (measuring, stop, requests, failures, latencies) = (
                measuring.clone(),
                stop.clone(),
                requests.clone(),
                failures.clone(),
                latencies.clone(),
            );
            std::thread::spawn(move || {
                pin_thread(1);
                let mut client = Client::connect(addr).expect("connect");
                let mut mine = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let request = request(conn, n);
                    n += 1;
                    let sent = Instant::now();
                    let ok = match client.send(&request) {
                        Ok(response) => response.status == 200,
                        Err(_) => {
                            client = Client::connect(addr).expect("reconnect");
                            false
                        }
                    };
                    if measuring.load(Ordering::Relaxed) {
                        mine.push(sent.elapsed());
                        requests.fetch_add(1, Ordering::Relaxed);
                        if !ok {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    } else if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                latencies.lock().unwrap().extend(mine);
            })
        })
        .collect();
    std::thread::sleep(WARM_UP);
    let before = requests.load(Ordering::Relaxed);
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    std::thread::sleep(MEASURE);
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let during = requests.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("a client thread");
    }
    let latencies = std::mem::take(&mut *latencies.lock().unwrap());
    Load {
        requests: during,
        failures: failures.load(Ordering::Relaxed),
        elapsed,
        latencies,
    }
}

/// The emulator's count of authenticated, answered calls.
fn answered_calls(addr: SocketAddr) -> u64 {
    let mut client = Client::connect(addr).expect("connect");
    let response = client
        .send(&Request {
            method: "GET".to_owned(),
            path: "/_emulator/counters".to_owned(),
            query: String::new(),
            headers: vec![("host".to_owned(), addr.to_string())],
            body: Bytes::new(),
        })
        .expect("counters");
    let counters = response.json();
    let calls: u64 = counters["calls"]
        .as_object()
        .expect("calls")
        .values()
        .filter_map(|v| v.as_u64())
        .sum();
    assert_eq!(
        counters["outcomes"]["ok"].as_u64(),
        Some(calls),
        "every call succeeded: {counters}"
    );
    calls
}

fn main() {
    // `cargo bench` passes `--bench`; there are no options to read.
    let mut report = Report::new("emulator");
    let mut missed = Vec::new();

    let mut starts: Vec<Duration> = (0..STARTS).map(|_| start(&[], false).1).collect();
    let median = quantile(&mut starts, 0.5);
    let slowest = quantile(&mut starts, 1.0);
    report.duration(
        "cold start to 'listening on', median of 21",
        median,
        "well under 1 s",
    );
    report.duration("cold start, slowest of 21", slowest, "");
    if median >= TARGET_START {
        missed.push(format!("cold start median {median:?}"));
    }

    let pinned = has_taskset();
    if !pinned {
        eprintln!("emulator bench: taskset not found; the server is not pinned to one CPU");
    }
    let seed = seed_file();
    let (server, _) = start(
        &[
            "--threads",
            "1",
            "--seed-file",
            seed.to_str().expect("utf-8 path"),
        ],
        pinned,
    );
    let _ = std::fs::remove_file(&seed);
    let load = drive(server.addr);
    let calls = answered_calls(server.addr);
    let rps = load.requests as f64 / load.elapsed.as_secs_f64();
    let mut latencies = load.latencies;
    report.figure(
        &format!(
            "throughput, 1 server thread{}, {CONNECTIONS} keep-alive conns",
            if pinned { " on CPU 0" } else { "" }
        ),
        rps,
        "req/s",
        ">= 2000",
    );
    report.duration(
        "request latency under that load, p50",
        quantile(&mut latencies, 0.5),
        "",
    );
    report.duration(
        "request latency under that load, p99",
        quantile(&mut latencies, 0.99),
        "",
    );
    report.figure("failed requests", load.failures as f64, "", "0");
    report.save();

    if load.failures > 0 {
        missed.push(format!("{} requests failed", load.failures));
    }
    if calls < load.requests {
        missed.push(format!(
            "the emulator counted {calls} calls, fewer than the {} measured",
            load.requests
        ));
    }
    if rps < TARGET_RPS {
        missed.push(format!("throughput {rps:.0} req/s"));
    }
    drop(server);
    if !missed.is_empty() {
        eprintln!("emulator bench missed: {}", missed.join("; "));
        std::process::exit(1);
    }
}
