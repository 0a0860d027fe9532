//! Startup configuration: flags, optionally a JSON file, flags winning.
//!
//! ```text
//! cloudrotate-emulator [--config FILE] [--listen 127.0.0.1:PORT] [--seed-file FILE]
//!                      [--faults-file FILE] [--tls-cert PEM --tls-key PEM] [--threads N]
//!                      [--job-login-interval-ms MS]
//! ```
//! The file: `{"listen": "127.0.0.1:8787", "seed_file": "seed.json", "seed": {...},
//! "faults": {...}, "tls": {"cert": "cert.pem", "key": "key.pem"}, "threads": 1,
//! "job_login_interval_ms": 2000}`
//! (every field optional; `seed` and `seed_file` both apply, `seed` first;
//! relative paths are taken from the config file's folder).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::Startup;
use super::faults::FaultConfig;
use super::model::{Seed, World};

pub const USAGE: &str = "\
usage: cloudrotate-emulator [options]
  --config FILE       JSON config: {listen, seed_file, seed, faults, tls:{cert,key}, threads}
  --listen ADDR       loopback address to listen on (default 127.0.0.1:0; port 0 picks one)
  --seed-file FILE    JSON seed, the shape of POST /_emulator/seed
  --faults-file FILE  JSON faults, the shape of PUT /_emulator/faults
  --tls-cert FILE     PEM certificate chain (serve HTTPS; needs --tls-key)
  --tls-key FILE      PEM private key
  --threads N         worker threads (1 = single-threaded runtime; default 2)
  --job-login-interval-ms MS
                      how often DTS/DRS jobs with a backed source log in (default 2000)
The first line on stdout is `listening on http(s)://ADDR`.";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    seed_file: Option<PathBuf>,
    seed: Option<Seed>,
    faults: Option<FaultConfig>,
    tls: Option<TlsFiles>,
    threads: Option<usize>,
    job_login_interval_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    pub threads: usize,
    pub startup: Startup,
    /// How often jobs whose source is a backed resource log in.
    pub job_login_interval: Duration,
}

/// Jobs with a backed source log in this often unless told otherwise.
pub const DEFAULT_JOB_LOGIN_INTERVAL: Duration = Duration::from_secs(2);

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path, what: &str) -> Result<T, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("invalid {what} {}: {e}", path.display()))
}

impl Config {
    /// Parses the arguments after the program name. `Ok(None)`: `--help`.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Option<Self>, String> {
        let mut args = args.into_iter();
        let mut flags: Vec<(String, String)> = Vec::new();
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Ok(None);
            }
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => {
                    let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
                    (flag, value)
                }
            };
            flags.push((name, value));
        }
        let flag = |name: &str| {
            flags
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        if let Some((unknown, _)) = flags.iter().find(|(n, _)| {
            ![
                "--config",
                "--listen",
                "--seed-file",
                "--faults-file",
                "--tls-cert",
                "--tls-key",
                "--threads",
                "--job-login-interval-ms",
            ]
            .contains(&n.as_str())
        }) {
            return Err(format!("unknown option {unknown}\n{USAGE}"));
        }

        let (file, base) = match flag("--config") {
            Some(path) => {
                let path = PathBuf::from(path);
                let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
                (read_json::<FileConfig>(&path, "config")?, base)
            }
            None => (FileConfig::default(), PathBuf::new()),
        };
        let from_file = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let listen = flag("--listen")
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:0".to_owned());
        let listen: SocketAddr = listen
            .parse()
            .map_err(|e| format!("invalid --listen {listen}: {e}"))?;
        if !listen.ip().is_loopback() {
            return Err(format!(
                "refusing to listen on {listen}: the emulator (and its unauthenticated admin API) serves loopback only"
            ));
        }

        let mut seeds: Vec<Seed> = file.seed.into_iter().collect();
        let seed_file = flag("--seed-file")
            .map(PathBuf::from)
            .or(file.seed_file.map(from_file));
        if let Some(path) = seed_file {
            seeds.push(read_json(&path, "seed file")?);
        }
        let mut world = World::default();
        for seed in seeds {
            seed.validate()?;
            world.merge(seed, "");
        }

        let faults = match flag("--faults-file") {
            Some(path) => read_json(Path::new(&path), "faults file")?,
            None => file.faults.unwrap_or_default(),
        };
        faults.validate()?;

        let tls = match (flag("--tls-cert"), flag("--tls-key")) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.into(),
                key: key.into(),
            }),
            (None, None) => file.tls.map(|t| TlsFiles {
                cert: from_file(t.cert),
                key: from_file(t.key),
            }),
            _ => return Err("--tls-cert and --tls-key go together".to_owned()),
        };

        let threads = match flag("--threads") {
            Some(n) => n
                .parse::<usize>()
                .map_err(|e| format!("invalid --threads {n}: {e}"))?,
            None => file.threads.unwrap_or(2),
        }
        .max(1);

        let job_login_interval = match flag("--job-login-interval-ms") {
            Some(ms) => Duration::from_millis(
                ms.parse::<u64>()
                    .map_err(|e| format!("invalid --job-login-interval-ms {ms}: {e}"))?,
            ),
            None => file
                .job_login_interval_ms
                .map_or(DEFAULT_JOB_LOGIN_INTERVAL, Duration::from_millis),
        }
        .max(Duration::from_millis(10));

        Ok(Some(Self {
            listen,
            tls,
            threads,
            job_login_interval,
            startup: Startup {
                seed: world.seed,
                faults,
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn defaults_and_flags() {
        let config = Config::from_args(args(&[])).unwrap().unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:0");
        assert_eq!(config.threads, 2);
        assert!(config.tls.is_none());
        assert_eq!(config.job_login_interval, DEFAULT_JOB_LOGIN_INTERVAL);
        let config = Config::from_args(args(&["--listen=127.0.0.1:9000", "--threads", "1"]))
            .unwrap()
            .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.threads, 1);
        let config = Config::from_args(args(&["--job-login-interval-ms", "150"]))
            .unwrap()
            .unwrap();
        assert_eq!(config.job_login_interval, Duration::from_millis(150));
        assert!(Config::from_args(args(&["--help"])).unwrap().is_none());
    }

    #[test]
    fn refuses_bad_input() {
        assert!(Config::from_args(args(&["--listen", "0.0.0.0:80"])).is_err());
        assert!(Config::from_args(args(&["--bogus", "1"])).is_err());
        assert!(Config::from_args(args(&["--tls-cert", "x"])).is_err());
        assert!(Config::from_args(args(&["--listen"])).is_err());
    }

    #[test]
    fn config_file_with_inline_seed_and_faults() {
        let dir = std::env::temp_dir().join(format!("emu-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        std::fs::write(
            &path,
            r#"{"listen":"127.0.0.1:0","threads":1,
                "seed":{"alicloud":{"users":[{"name":"u","access_keys":[{"id":"a","secret":"s"}]}]}},
                "faults":{"seed":3,"throttle_rate":0.5}}"#,
        )
        .unwrap();
        let config = Config::from_args(args(&["--config", path.to_str().unwrap()]))
            .unwrap()
            .unwrap();
        assert_eq!(config.threads, 1);
        assert_eq!(config.startup.seed.alicloud.users[0].name, "u");
        assert_eq!(config.startup.faults.seed, 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
