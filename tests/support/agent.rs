//! `bao agent` (or `vault agent`) rendering `static-creds` of roles into
//! files, logged in with the root token through a token file; killed on
//! drop. Each role's file holds two lines, username then password, from
//! one read of the secret.

#![allow(dead_code)] // each test binary uses a different part of it

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::server::Server;

pub struct Agent {
    child: std::process::Child,
    dir: PathBuf,
}

/// One complete render of a role's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Render {
    pub username: String,
    pub password: String,
    /// Of the file read: a new file per render (the agent renames it into
    /// place) has a new inode.
    pub inode: u64,
    /// When the agent wrote it (it leaves an unchanged render alone).
    pub written: SystemTime,
}

/// The render in the file at `path`: `None` while there is none, or when
/// what was read is not a whole render (both lines, each ending in a
/// newline).
pub fn read(path: &Path) -> Option<Render> {
    let mut file = std::fs::File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut file, &mut text).ok()?;
    let (username, password) = text.strip_suffix('\n')?.split_once('\n')?;
    if password.is_empty() || password.contains('\n') {
        return None;
    }
    Some(Render {
        username: username.to_owned(),
        password: password.to_owned(),
        inode: meta.ino(),
        written: meta.modified().ok()?,
    })
}

impl Agent {
    /// Renders `database/static-creds/<role>` into `<dir>/<role>.txt` for
    /// each role, re-reading secrets without a lease every `interval`.
    pub fn start(server: &Server, roles: &[&str], interval: &str) -> Self {
        let dir = server.dir.join("agent");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), &server.token).unwrap();
        let templates: String = roles
            .iter()
            .map(|role| {
                format!(
                    "template {{\n  destination = \"{dest}\"\n  contents = \"{{{{ with secret \\\"database/static-creds/{role}\\\" }}}}{{{{ .Data.username }}}}\\n{{{{ .Data.password }}}}\\n{{{{ end }}}}\"\n}}\n",
                    dest = dir.join(format!("{role}.txt")).display()
                )
            })
            .collect();
        let config = format!(
            "vault {{\n  address = \"{addr}\"\n}}\nauto_auth {{\n  method \"token_file\" {{\n    config = {{\n      token_file_path = \"{token}\"\n    }}\n  }}\n}}\ntemplate_config {{\n  static_secret_render_interval = \"{interval}\"\n}}\n{templates}",
            addr = server.addr,
            token = dir.join("token").display(),
        );
        std::fs::write(dir.join("agent.hcl"), config).unwrap();
        let log = std::fs::File::create(dir.join("agent.log")).unwrap();
        let child = std::process::Command::new(server.host().binary())
            .args(["agent", "-config"])
            .arg(dir.join("agent.hcl"))
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the agent");
        Self { child, dir }
    }

    /// The file the agent renders `role` into.
    pub fn path(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{role}.txt"))
    }

    /// What the agent rendered for `role` (`None` before the first render).
    pub fn render(&self, role: &str) -> Option<Render> {
        read(&self.path(role))
    }

    /// The password rendered for `role` (empty before the first render).
    pub fn password(&self, role: &str) -> String {
        self.render(role).map(|r| r.password).unwrap_or_default()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    /// Polls until the file of `role` holds `password` (bounded).
    pub fn wait_for(&self, role: &str, password: &str, within: Duration) -> Duration {
        let started = Instant::now();
        while self.password(role) != password {
            assert!(
                started.elapsed() < within,
                "the agent did not render {role}'s password within {within:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        started.elapsed()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
