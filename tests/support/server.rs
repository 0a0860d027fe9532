//! A real server for end-to-end tests: OpenBao 2.7.2 by default, or
//! HashiCorp Vault with `CLOUDROTATE_TEST_HOST=vault` (`make test-vault`
//! builds it). Integrated (Raft) storage on disk in a fresh directory under
//! `target/e2e/` (OpenBao 2.7 has no `file` storage), a free loopback port,
//! initialised and unsealed, with the freshly built plugin binary in its
//! `plugin_directory` and registered by SHA-256; an audit device writes
//! `audit.log`. Driven with the host's CLI and plain HTTP. Every difference
//! between the two hosts lives in `Host`. The directory (server log
//! included) is kept when a test fails.

#![allow(dead_code)] // each test binary uses a different part of it

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::tools::Tool;

/// The plugin binary the servers run: `CLOUDROTATE_PLUGIN_BIN` (the `dist`
/// build, which `make test-vault` and `make bench` pass), or this build's.
pub fn plugin_binary() -> PathBuf {
    std::env::var_os("CLOUDROTATE_PLUGIN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_vault-plugin-secrets-cloudrotate")))
}
/// The catalog name, and the file name inside `plugin_directory`.
pub const PLUGIN_NAME: &str = "cloudrotate";
pub const PLUGIN_VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));
/// Which host the end-to-end suites run against: `openbao` or `vault`.
pub const HOST_ENV: &str = "CLOUDROTATE_TEST_HOST";

/// The server product the tests run, and how it differs from the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    OpenBao,
    Vault,
}

impl Host {
    /// From `CLOUDROTATE_TEST_HOST`; OpenBao when unset.
    pub fn selected() -> Self {
        match std::env::var(HOST_ENV).as_deref() {
            Err(_) | Ok("") | Ok("openbao") => Self::OpenBao,
            Ok("vault") => Self::Vault,
            Ok(other) => panic!("{HOST_ENV}={other:?}: use openbao or vault"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::OpenBao => "OpenBao",
            Self::Vault => "Vault",
        }
    }

    /// The CLI, which is also the server binary.
    pub fn cli(self) -> &'static str {
        match self {
            Self::OpenBao => "bao",
            Self::Vault => "vault",
        }
    }

    pub fn binary(self) -> PathBuf {
        match self {
            Self::OpenBao => Tool::OpenBao.path(),
            Self::Vault => Tool::Vault.path(),
        }
    }

    /// The CLI's address and token variables.
    fn cli_env(self) -> [&'static str; 2] {
        match self {
            Self::OpenBao => ["BAO_ADDR", "BAO_TOKEN"],
            Self::Vault => ["VAULT_ADDR", "VAULT_TOKEN"],
        }
    }

    /// OpenBao 2.7 declares audit devices in the configuration (and refuses
    /// `audit enable`); Vault has no such stanza and enables them over the
    /// API.
    fn audit_in_config(self) -> bool {
        self == Self::OpenBao
    }
}

/// Pids of running processes started from the file `binary`.
pub fn processes_of(binary: &Path) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if std::fs::read_link(entry.path().join("exe")).is_ok_and(|exe| exe == binary) {
            pids.push(pid);
        }
    }
    pids
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A new directory under `target/e2e/`, named after the test.
pub fn test_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("e2e")
        .join(format!(
            "{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test directory");
    dir
}

pub fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    hex::encode(Sha256::digest(bytes))
}

/// An HTTP answer from the server.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// The `data` of a successful answer; panics with the errors otherwise.
    pub fn data(&self) -> &Value {
        assert!(
            (200..300).contains(&self.status),
            "expected success, got {} {}",
            self.status,
            self.body
        );
        &self.body["data"]
    }

    /// The error messages, joined.
    pub fn errors(&self) -> String {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }
}

pub struct Server {
    pub dir: PathBuf,
    /// `http://127.0.0.1:PORT`
    pub addr: String,
    pub token: String,
    unseal_key: String,
    port: u16,
    cluster_port: u16,
    /// The host's binary: server and CLI.
    binary: PathBuf,
    child: Option<Child>,
    http: reqwest::blocking::Client,
    options: Options,
}

/// How a server is configured beyond the defaults.
#[derive(Clone)]
pub struct Options {
    /// The product; `Host::selected()` by default.
    pub host: Host,
    /// `trace`, `debug` (the default, for failing tests' logs) ... `error`.
    pub log_level: &'static str,
    /// Vault only: leave mlock on (`disable_mlock = false`, which also asks
    /// plugins to lock their memory). Off by default: Vault would lock its
    /// own Raft database maps too.
    pub mlock: bool,
    /// Register the plugin in the catalog at start (the default).
    pub register_plugin: bool,
    /// Extra lines for the server configuration.
    pub extra_config: String,
    /// API addresses of the other nodes of a Raft cluster.
    pub retry_join: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            host: Host::selected(),
            log_level: "debug",
            mlock: false,
            register_plugin: true,
            extra_config: String::new(),
            retry_join: Vec::new(),
        }
    }
}

impl Server {
    /// A server with the plugin registered (not mounted).
    pub fn start(name: &str) -> Self {
        Self::start_with(name, Options::default())
    }

    pub fn start_with(name: &str, options: Options) -> Self {
        // Looked up first: a missing host fails before anything is made.
        let binary = options.host.binary();
        let mut server = Self::node(test_dir(name), free_port(), binary, options);
        server.spawn();
        server.initialise();
        server.wait_until_active();
        server.enable_audit();
        if server.options.register_plugin {
            server.register_plugin();
        }
        server
    }

    pub fn host(&self) -> Host {
        self.options.host
    }

    /// A configured, not yet started server in `dir`, listening on `port`.
    fn node(dir: PathBuf, port: u16, binary: PathBuf, options: Options) -> Self {
        std::fs::create_dir_all(dir.join("plugins")).unwrap();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let server = Self {
            addr: format!("http://127.0.0.1:{port}"),
            dir,
            token: String::new(),
            unseal_key: String::new(),
            port,
            cluster_port: free_port(),
            binary,
            child: None,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
            options,
        };
        server.install_plugin();
        server
    }

    pub fn audit_log_path(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    /// Fails if any of `secrets` appears in the server log (which carries
    /// the plugin's log lines too) or the audit log, or if the audit device
    /// wrote nothing. Names the secret only by its length and first two
    /// characters.
    pub fn assert_no_leaks(&self, secrets: impl IntoIterator<Item = String>) {
        assert!(
            !self.audit_log().is_empty(),
            "the audit device wrote nothing"
        );
        let secrets: Vec<String> = secrets.into_iter().collect();
        self.assert_logs_hold_none_of(&secrets);
    }

    fn audit_log(&self) -> String {
        std::fs::read_to_string(self.audit_log_path()).unwrap_or_default()
    }

    fn assert_logs_hold_none_of(&self, secrets: &[String]) {
        let files = [
            ("server log", self.server_log()),
            ("audit log", self.audit_log()),
        ];
        let mut checked = 0;
        for secret in secrets.iter().filter(|s| s.len() >= 6) {
            checked += 1;
            for (name, text) in &files {
                assert!(
                    !text.contains(secret.as_str()),
                    "a secret ({} characters, starting {:?}) appears in the {name} under {}",
                    secret.len(),
                    &secret[..2],
                    self.dir.display()
                );
            }
        }
        assert!(checked > 0, "no secrets to look for");
    }

    pub fn plugin_path(&self) -> PathBuf {
        self.dir.join("plugins").join(PLUGIN_NAME)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn install_plugin(&self) {
        let binary = plugin_binary();
        std::fs::copy(&binary, self.plugin_path())
            .unwrap_or_else(|e| panic!("copy {}: {e}", binary.display()));
    }

    fn write_config(&self) {
        let host_specific = match self.host() {
            // Values in the audit log are HMAC'd by design: no raw secret may
            // appear. Relative to the node's directory: the audit table is
            // replicated, so every node of a cluster must declare the same path.
            Host::OpenBao => {
                "audit \"file\" \"file\" {\n  options {\n    file_path = \"audit.log\"\n  }\n}"
                    .to_owned()
            }
            Host::Vault => format!("disable_mlock = {}", !self.options.mlock),
        };
        let config = format!(
            r#"storage "raft" {{
  path = "{data}"
  node_id = "node-{port}"
{retry_join}}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{port}"
cluster_addr = "https://127.0.0.1:{cluster_port}"
plugin_directory = "{plugins}"
log_level = "{log_level}"
{host_specific}
{extra}
"#,
            data = self.dir.join("data").display(),
            plugins = self.dir.join("plugins").display(),
            port = self.port,
            cluster_port = self.cluster_port,
            log_level = self.options.log_level,
            retry_join = self
                .options
                .retry_join
                .iter()
                .map(|leader| format!(
                    "  retry_join {{\n    leader_api_addr = \"{leader}\"\n  }}\n"
                ))
                .collect::<String>(),
            extra = self.options.extra_config,
        );
        std::fs::write(self.dir.join("config.hcl"), config).unwrap();
    }

    fn spawn(&mut self) {
        self.write_config();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = Command::new(&self.binary)
            .args(["server", "-config"])
            .arg(self.dir.join("config.hcl"))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the server");
        self.child = Some(child);
        self.wait_for_listener();
    }

    /// Polls until the HTTP listener answers at all.
    fn wait_for_listener(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self
                .http
                .get(format!("{}/v1/sys/seal-status", self.addr))
                .send()
                .is_ok()
            {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("the server exited with {status}:\n{}", self.server_log());
            }
            assert!(
                Instant::now() < deadline,
                "the server did not listen:\n{}",
                self.server_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn initialise(&mut self) {
        let init = self.call(
            reqwest::Method::PUT,
            "sys/init",
            Some(json!({ "secret_shares": 1, "secret_threshold": 1 })),
        );
        assert_eq!(init.status, 200, "init: {:?}", init.body);
        self.unseal_key = init.body["keys_base64"][0].as_str().unwrap().to_owned();
        self.token = init.body["root_token"].as_str().unwrap().to_owned();
        self.unseal();
    }

    /// Unseals and waits until this node serves, as active or standby.
    fn unseal(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let reply = self.call(
                reqwest::Method::PUT,
                "sys/unseal",
                Some(json!({ "key": self.unseal_key })),
            );
            // A joining Raft node answers 5xx until it reached the leader.
            if reply.status == 200 && reply.body["sealed"] == false {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "unseal: {reply:?}\n{}",
                self.server_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.wait_for_health("unsealed", |status| matches!(status, 200 | 429));
    }

    /// `sys/health`: 200 active, 429 standby, 503 sealed, none when down.
    pub fn health(&self) -> Option<u16> {
        self.http
            .get(format!("{}/v1/sys/health", self.addr))
            .timeout(Duration::from_secs(5))
            .send()
            .map(|r| r.status().as_u16())
            .ok()
    }

    fn wait_for_health(&self, what: &str, done: impl Fn(u16) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = self.health();
            if status.is_some_and(&done) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not become {what} ({status:?}):\n{}",
                self.server_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls `sys/health` until this node is unsealed and active.
    pub fn wait_until_active(&self) {
        self.wait_for_health("active", |status| status == 200);
    }

    fn register_plugin(&self) {
        self.register_binary(PLUGIN_NAME, &self.plugin_path());
    }

    /// Registers `binary`, a file in the plugin directory, as secrets
    /// plugin `name`, under the version it reports.
    pub fn register_binary(&self, name: &str, binary: &Path) {
        let file = binary.file_name().and_then(|f| f.to_str()).unwrap();
        self.cli_ok(&[
            "plugin",
            "register",
            &format!("-sha256={}", sha256_hex(binary)),
            &format!("-command={file}"),
            "secret",
            name,
        ]);
    }

    /// Copies `binary` into the plugin directory as `file`; its new path.
    pub fn install_binary(&self, binary: &Path, file: &str) -> PathBuf {
        let installed = self.dir.join("plugins").join(file);
        std::fs::copy(binary, &installed)
            .unwrap_or_else(|e| panic!("copy {} into the plugins: {e}", binary.display()));
        installed
    }

    /// A file audit device writing `audit.log` in the node's directory,
    /// where the host takes it over the API (see `Host::audit_in_config`).
    fn enable_audit(&self) {
        if self.host().audit_in_config() {
            return;
        }
        let reply = self.write(
            "sys/audit/file",
            json!({ "type": "file", "options": { "file_path": "audit.log" } }),
        );
        assert!(reply.status < 300, "enable the audit device: {reply:?}");
    }

    /// Runs the host's CLI against this server as root.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_as(&self.token, args)
    }

    /// Runs the host's CLI against this server with `token`.
    pub fn cli_as(&self, token: &str, args: &[&str]) -> Output {
        let [addr, token_var] = self.host().cli_env();
        Command::new(&self.binary)
            .args(args)
            .env_remove("BAO_ADDR")
            .env_remove("BAO_TOKEN")
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .env(addr, &self.addr)
            .env(token_var, token)
            .output()
            .expect("run the CLI")
    }

    /// Runs the CLI and returns its stdout; panics with stderr on failure.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        self.cli_ok_as(&self.token, args)
    }

    /// `cli_ok` with `token`.
    pub fn cli_ok_as(&self, token: &str, args: &[&str]) -> String {
        let output = self.cli_as(token, args);
        assert!(
            output.status.success(),
            "{} {}: {}\n{}",
            self.host().cli(),
            args.join(" "),
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        self.call_as(&self.token, method, path, body)
    }

    pub fn call_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self
            .http
            .request(method.clone(), format!("{}/v1/{path}", self.addr));
        if !token.is_empty() {
            request = request.header("X-Vault-Token", token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply { status, body }
    }

    pub fn write(&self, path: &str, body: Value) -> Reply {
        self.call(reqwest::Method::POST, path, Some(body))
    }

    /// A write that starts a rotation: a success, or the plugin's answer
    /// for a rotation that goes on in the background (a DCS reset still
    /// settling); anything else fails the test.
    pub fn write_rotating(&self, path: &str, body: Value) -> Reply {
        let reply = self.write(path, body);
        assert!(
            (200..300).contains(&reply.status)
                || reply
                    .errors()
                    .contains("retries continue in the background"),
            "{path}: {} {}",
            reply.status,
            reply.body
        );
        reply
    }

    pub fn read(&self, path: &str) -> Reply {
        self.call(reqwest::Method::GET, path, None)
    }

    pub fn list(&self, path: &str) -> Reply {
        self.call(reqwest::Method::GET, &format!("{path}?list=true"), None)
    }

    pub fn delete(&self, path: &str) -> Reply {
        self.call(reqwest::Method::DELETE, path, None)
    }

    /// Mounts the plugin at `path`, with mount options.
    pub fn enable(&self, path: &str, options: &[(&str, &str)]) {
        let options: serde_json::Map<String, Value> = options
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect();
        let reply = self.write(
            &format!("sys/mounts/{path}"),
            json!({ "type": PLUGIN_NAME, "options": options }),
        );
        assert!(reply.status < 300, "mount {path}: {reply:?}");
    }

    /// Pids of running processes of this server's plugin binary.
    pub fn plugin_pids(&self) -> Vec<i32> {
        processes_of(&self.plugin_path())
    }

    /// SIGKILLs every process of the plugin binary; returns how many.
    pub fn kill_plugin(&self) -> usize {
        let pids = self.plugin_pids();
        for pid in &pids {
            // SAFETY: plain kill(2) on a pid we just found.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        pids.len()
    }

    pub fn server_pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the server (SIGTERM, then waits), as an operator would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }

    /// SIGKILLs the server: no shutdown of any kind.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the stopped server again on the same storage and unseals it;
    /// a single node is then active again.
    pub fn start_again(&mut self) {
        self.start_node_again();
        if self.options.retry_join.is_empty() {
            self.wait_until_active();
        }
    }

    fn start_node_again(&mut self) {
        assert!(self.child.is_none(), "stop the server first");
        self.spawn();
        self.unseal();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.crash();
        // Plugin processes exit on their own once orphaned; do not wait.
        self.kill_plugin();
        if std::thread::panicking() {
            eprintln!("kept the server's directory: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A Raft cluster of nodes on loopback, the plugin binary in every
/// node's plugin directory, registered once (the catalog is replicated).
pub struct Cluster {
    pub nodes: Vec<Server>,
}

impl Cluster {
    pub fn start(name: &str, size: usize, log_level: &'static str) -> Self {
        let options = Options {
            log_level,
            ..Options::default()
        };
        // Looked up first: a missing host fails before anything is made.
        let binary = options.host.binary();
        let root = test_dir(name);
        let ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let mut nodes: Vec<Server> = ports
            .iter()
            .enumerate()
            .map(|(i, port)| {
                let others = ports
                    .iter()
                    .filter(|p| *p != port)
                    .map(|p| format!("http://127.0.0.1:{p}"))
                    .collect();
                let options = Options {
                    retry_join: others,
                    ..options.clone()
                };
                Server::node(
                    root.join(format!("node-{i}")),
                    *port,
                    binary.clone(),
                    options,
                )
            })
            .collect();
        let first = &mut nodes[0];
        first.spawn();
        first.initialise();
        first.wait_until_active();
        first.enable_audit();
        first.register_plugin();
        // Joined nodes vote only once autopilot deems them stable (10 s by
        // default); a cluster without voters cannot survive its leader.
        let autopilot = first.write(
            "sys/storage/raft/autopilot/configuration",
            json!({ "server_stabilization_time": "2s" }),
        );
        assert!(autopilot.status < 300, "{autopilot:?}");
        let (token, key) = (first.token.clone(), first.unseal_key.clone());
        for node in nodes.iter_mut().skip(1) {
            node.token = token.clone();
            node.unseal_key = key.clone();
            node.spawn();
            node.unseal();
        }
        let cluster = Self { nodes };
        let deadline = Instant::now() + Duration::from_secs(60);
        while cluster.raft_voters().len() < size {
            assert!(
                Instant::now() < deadline,
                "nodes did not become voters: {:?}",
                cluster.raft_voters()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        cluster
    }

    /// The index of the active node, waiting (bounded) for an election.
    pub fn active(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(i) = self.nodes.iter().position(|n| n.health() == Some(200)) {
                return i;
            }
            assert!(Instant::now() < deadline, "no active node");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Restarts a stopped or crashed node and unseals it; it rejoins as a standby.
    pub fn restart(&mut self, index: usize) {
        self.nodes[index].start_node_again();
    }

    /// `Server::assert_no_leaks` for the whole cluster. Only nodes that
    /// handled requests audit them: Vault's standbys forward every request
    /// (OpenBao's serve reads themselves), so at least one audit log, not
    /// each, must have lines.
    pub fn assert_no_leaks(&self, secrets: impl IntoIterator<Item = String>) {
        assert!(
            self.nodes.iter().any(|node| !node.audit_log().is_empty()),
            "no audit device wrote anything"
        );
        let secrets: Vec<String> = secrets.into_iter().collect();
        for node in &self.nodes {
            node.assert_logs_hold_none_of(&secrets);
        }
    }

    /// Voters in the Raft configuration, as the active node reports them.
    pub fn raft_voters(&self) -> Vec<String> {
        let active = &self.nodes[self.active()];
        let config = active.read("sys/storage/raft/configuration");
        config.data()["config"]["servers"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .filter(|s| s["voter"] == true)
            .map(|s| s["node_id"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}
