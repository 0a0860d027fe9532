//! The programs `make tools` (and `make vault`, `make go-programs`) put
//! under `.tools/`, looked up in one place. A missing one fails the test
//! at once with one line that names the make target installing it: a
//! skipped test would prove nothing, and a test that started waiting on a
//! server that never ran would only time out.

#![allow(dead_code)] // each test binary uses a different part of it

use std::path::{Path, PathBuf};

/// The tools folder: `CLOUDROTATE_TOOLS` (the Makefile sets it), else the
/// repository's `.tools`.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("CLOUDROTATE_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    OpenBao,
    Vault,
    /// The venv's Python, with the official cloud SDKs the conformance
    /// tests compare against.
    Python,
    /// PostgreSQL's `pg_ctl`; `initdb` and `postgres` sit beside it.
    Postgres,
    RedisServer,
    /// go-plugin's own client in Vault's containerised-plugin mode (tests/go).
    Muxhost,
    /// The Go plugin the runtime bench compares with (tests/go).
    ReferencePlugin,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Self::OpenBao => "OpenBao",
            Self::Vault => "Vault",
            Self::Python => "Python with the official cloud SDKs",
            Self::Postgres => "PostgreSQL",
            Self::RedisServer => "redis-server",
            Self::Muxhost => "muxhost",
            Self::ReferencePlugin => "the Go reference plugin",
        }
    }

    fn relative_path(self) -> &'static str {
        match self {
            Self::OpenBao => "bin/bao",
            Self::Vault => "bin/vault",
            Self::Python => "venv/bin/python",
            Self::Postgres => "pginstall/bin/pg_ctl",
            Self::RedisServer => "bin/redis-server",
            Self::Muxhost => "bin/muxhost",
            Self::ReferencePlugin => "bin/reference-plugin",
        }
    }

    fn how_to_install(self) -> &'static str {
        match self {
            Self::OpenBao | Self::Python | Self::Postgres | Self::RedisServer => {
                "run `make tools` first (make test does it for you)"
            }
            Self::Vault => "run `make vault` first (make test-vault does it for you)",
            Self::Muxhost => "run `make go-programs` first (make test-vault does it for you)",
            Self::ReferencePlugin => "run `make go-programs` first (make bench does it for you)",
        }
    }

    /// Where the tool is; panics with one line saying how to install it
    /// when it is not there.
    pub fn path(self) -> PathBuf {
        let path = tools_dir().join(self.relative_path());
        if !path.exists() {
            // Shown relative to the crate when it is inside it, as the
            // Makefile's targets name it.
            let shown = path
                .strip_prefix(env!("CARGO_MANIFEST_DIR"))
                .unwrap_or(&path)
                .display();
            panic!(
                "{} not found at {shown}: {}",
                self.name(),
                self.how_to_install()
            );
        }
        path
    }
}
