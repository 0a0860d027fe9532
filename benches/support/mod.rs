//! What every benchmark binary shares: figures are collected into one
//! `Report`, printed as table rows and written to
//! `bench-results/<bench>.json`, which `make bench` merges into one table.

#![allow(dead_code)] // each bench binary uses a different part of it

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};

pub struct Report {
    bench: &'static str,
    figures: Map<String, Value>,
}

impl Report {
    pub fn new(bench: &'static str) -> Self {
        Self {
            bench,
            figures: Map::new(),
        }
    }

    /// Records one figure; `target` is the goal it is measured against, in
    /// words (`"<= 10 ms"`), or empty when there is none.
    pub fn figure(&mut self, name: &str, value: f64, unit: &str, target: &str) {
        println!(
            "{:<12} {:<58} {:>14} {:<8} {}",
            self.bench,
            name,
            format_value(value),
            unit,
            target
        );
        // `order` keeps the bench's order in the merged table (the JSON
        // object itself is written sorted by name).
        let order = self.figures.len();
        self.figures.insert(
            name.to_owned(),
            json!({ "value": value, "unit": unit, "target": target, "order": order }),
        );
    }

    /// Marks whether figure `name` met its target, for a target that the
    /// report script cannot check from its words.
    pub fn check(&mut self, name: &str, met: bool) {
        if let Some(Value::Object(figure)) = self.figures.get_mut(name) {
            figure.insert("met".to_owned(), Value::Bool(met));
        }
    }

    pub fn duration(&mut self, name: &str, value: Duration, target: &str) {
        self.figure(name, value.as_secs_f64() * 1e3, "ms", target);
    }

    /// Writes `bench-results/<bench>.json` at the crate root.
    pub fn save(self) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench-results");
        std::fs::create_dir_all(&dir).expect("create bench-results/");
        let path = dir.join(format!("{}.json", self.bench));
        let body = serde_json::to_vec_pretty(&Value::Object(self.figures)).expect("encode");
        std::fs::write(&path, body).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

fn format_value(value: f64) -> String {
    if value.abs() >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

/// The `q`-quantile (0..=1) of `samples`, which it sorts.
pub fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    assert!(!samples.is_empty(), "no samples");
    samples.sort_unstable();
    let rank = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[rank]
}

/// A count from the environment (`BENCH_*`), or `default`.
pub fn count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A `/proc/<pid>/status` field in kB (`VmRSS`, `VmHWM`).
pub fn proc_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Parallel HTTP clients for bulk writes.
pub const WRITERS: usize = 8;

/// Sends every `(path, body)` write to the server at `addr` with `WRITERS`
/// keep-alive clients in parallel; panics on the first failure or warning.
pub fn write_all(addr: &str, token: &str, writes: Vec<(String, Value)>) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..WRITERS {
            scope.spawn(|| {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(120))
                    .build()
                    .unwrap();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((path, body)) = writes.get(i) else {
                        return;
                    };
                    let response = client
                        .post(format!("{addr}/v1/{path}"))
                        .header("X-Vault-Token", token)
                        .json(body)
                        .send()
                        .unwrap_or_else(|e| panic!("write {path}: {e}"));
                    let status = response.status().as_u16();
                    let text = response.text().unwrap_or_default();
                    assert!(
                        status < 300 && !text.contains("\"warnings\":["),
                        "write {path}: {status} {text}"
                    );
                }
            });
        }
    });
}
