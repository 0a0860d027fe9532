//! A `cloudrotate-emulator` process for tests: started on a free loopback
//! port, seeded and inspected through its admin API, killed on drop.

#![allow(dead_code)] // each test binary uses a different part of it

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

pub const EMULATOR_BINARY: &str = env!("CARGO_BIN_EXE_cloudrotate-emulator");

pub struct Emulator {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    client: reqwest::blocking::Client,
}

impl Emulator {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Self {
        Self::start_trusting(args, None)
    }

    /// Started with `args`; the admin client trusts `ca_pem` (for an
    /// emulator serving HTTPS with `--tls-cert`).
    pub fn start_trusting(args: &[&str], ca_pem: Option<&str>) -> Self {
        let mut client = reqwest::blocking::Client::builder();
        if let Some(pem) = ca_pem {
            client = client.add_root_certificate(
                reqwest::Certificate::from_pem(pem.as_bytes()).expect("a PEM certificate"),
            );
        }
        let mut child = Command::new(EMULATOR_BINARY)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the emulator");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the emulator's first line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self {
            child,
            url,
            client: client.build().expect("an HTTP client"),
        }
    }

    fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method.clone(), format!("{}/_emulator/{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = request
            .send()
            .unwrap_or_else(|e| panic!("{method} /_emulator/{path}: {e}"));
        let status = reply.status();
        let body: Value = reply.json().unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "{method} /_emulator/{path}: {status} {body}"
        );
        body
    }

    pub fn seed(&self, seed: Value) {
        self.admin(reqwest::Method::POST, "seed", Some(seed));
    }

    pub fn get(&self, path: &str) -> Value {
        self.admin(reqwest::Method::GET, path, None)
    }

    pub fn patch_status(&self, path: &str, status: &str) {
        self.admin(
            reqwest::Method::PATCH,
            path,
            Some(json!({ "status": status })),
        );
    }

    pub fn set_faults(&self, faults: Value) {
        self.admin(reqwest::Method::PUT, "faults", Some(faults));
    }

    /// Every password, secret key and token the emulator ever held or was
    /// sent, for leak checks.
    pub fn secrets(&self) -> Vec<String> {
        serde_json::from_value(self.get("secrets")).expect("a list of strings")
    }

    pub fn counters(&self) -> Value {
        self.get("counters")
    }

    /// Calls of one API (`polardb.ModifyAccountPassword`) so far.
    pub fn calls(&self, api: &str) -> u64 {
        self.counters()["calls"][api].as_u64().unwrap_or(0)
    }

    /// The loopback address the emulator listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.url
            .trim_start_matches("http://")
            .parse()
            .unwrap_or_else(|e| panic!("address of {}: {e}", self.url))
    }

    /// An admin call that may fail: its status and JSON body.
    pub fn try_admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method.clone(), format!("{}/_emulator/{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = request
            .send()
            .unwrap_or_else(|e| panic!("{method} /_emulator/{path}: {e}"));
        let status = reply.status().as_u16();
        (status, reply.json().unwrap_or(Value::Null))
    }

    pub fn reset(&self) {
        self.admin(reqwest::Method::POST, "reset", None);
    }

    /// The emulator's own time (wall time plus the offset the admin API set).
    pub fn now(&self) -> time::OffsetDateTime {
        let now = self.get("clock")["now"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        cloudrotate::providers::alicloud::sign::parse_timestamp(&now)
            .unwrap_or_else(|| panic!("clock now {now:?}"))
    }

    /// Moves the emulator's clock forward, as if `seconds` had passed.
    pub fn advance_clock(&self, seconds: f64) {
        self.admin(
            reqwest::Method::PUT,
            "clock",
            Some(json!({ "advance_seconds": seconds })),
        );
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Credentials and resources most suites start from: one Alibaba user with
/// a PolarDB account and a DTS job keeping its password, one Huawei user
/// with a DCS instance and a DRS job keeping its password.
pub mod fixture {
    use serde_json::{Value, json};

    pub const ALI_USER: &str = "vault";
    pub const ALI_AK: &str = "LTAI-test-key-1";
    pub const ALI_SK: &str = "ali-secret-key-value-1";
    pub const HW_USER: &str = "hw-user-vault";
    pub const HW_AK: &str = "HWTESTACCESSKEY00001";
    pub const HW_SK: &str = "huawei-secret-key-value-0001";
    pub const PROJECT: &str = "054ba152d480d55b2f5dc0069e7ddef0";
    pub const INITIAL: &str = "Initial-Pass-1";

    pub fn seed() -> Value {
        json!({
            "alicloud": {
                "users": [{ "name": ALI_USER, "access_keys": [{ "id": ALI_AK, "secret": ALI_SK }] }],
                "polardb_clusters": [{ "id": "pc-1", "region": "cn-hangzhou", "accounts": [
                    { "name": "app", "password": INITIAL },
                    { "name": "report", "password": INITIAL }
                ]}],
                "dts_jobs": [{ "id": "dtsjob1", "region": "cn-hangzhou", "status": "Synchronizing",
                    "src": { "user": "app", "password": INITIAL }, "dest": { "user": "sink", "password": "Other-Pass-1" } }]
            },
            "huaweicloud": {
                "users": [{ "id": HW_USER, "name": "vault", "access_keys": [{ "access": HW_AK, "secret": HW_SK }] }],
                "projects": [PROJECT],
                "dcs_instances": [{ "id": "dcs-1", "project_id": PROJECT, "password": INITIAL }],
                "drs_jobs": [{ "id": "drsjob1", "project_id": PROJECT, "status": "INCRE_TRANSFER_STARTED",
                    "so": { "password": INITIAL }, "ta": { "password": "Other-Pass-1" } }]
            }
        })
    }

    /// The mount's connections to the emulator at `url` as the fixture's
    /// users: `(name, body)` for `config/ali` and `config/hw`.
    pub fn connections(url: &str, request_timeout: &str) -> [(&'static str, Value); 2] {
        [
            (
                "ali",
                json!({
                    "provider": "alicloud", "region": "cn-hangzhou", "access_key": ALI_AK,
                    "secret_key": ALI_SK, "endpoint": url, "allowed_roles": "*",
                    "iam_user": ALI_USER, "request_timeout": request_timeout,
                }),
            ),
            (
                "hw",
                json!({
                    "provider": "huaweicloud", "region": "cn-north-4", "access_key": HW_AK,
                    "secret_key": HW_SK, "project_id": PROJECT, "endpoint": url,
                    "allowed_roles": "*", "iam_user": HW_USER, "request_timeout": request_timeout,
                }),
            ),
        ]
    }
}
