//! Redis behind a DCS instance, over a small hand-written RESP client: the
//! emulator needs five commands (`AUTH`, `CONFIG SET`, `ACL SETUSER`,
//! `ACL DELUSER`, `PING`), which a full client crate would not make
//! shorter.
//!
//! ACL roles (DCS `account_role` -> Redis ACL rules, our model: DCS names
//! the roles read-only and read-write, not the rules):
//! `read` -> `~* &* +@read +@connection`, `write` -> `~* &* +@all -@admin`
//! (every command but administration: `CONFIG`, `ACL`, `DEBUG`, ...).
//! `&*` (channels) needs Redis 6.2 or later: the backing server is 6.2
//! (`make tools`) whatever `engine_version` the instance claims.
//! Passwords are set as `#<sha256 hex>` so the clear text never reaches
//! the server; `requirepass` (the `default` user) takes the password.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{RedisChange, RedisServer};

/// How long one connection may take to open or to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// One RESP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RespValue {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<RespValue>>),
}

/// One open connection to a Redis server.
pub struct Connection {
    stream: BufReader<TcpStream>,
}

impl Connection {
    pub async fn open(host: &str, port: u16) -> Result<Self, String> {
        let stream = tokio::time::timeout(TIMEOUT, TcpStream::connect((host, port)))
            .await
            .map_err(|_| format!("Redis {host}:{port}: connect timed out"))?
            .map_err(|e| format!("Redis {host}:{port}: {e}"))?;
        Ok(Connection {
            stream: BufReader::new(stream),
        })
    }

    /// Sends one command and reads its answer (an error answer is `Ok`:
    /// it is the server's, `RespValue::Error`).
    pub async fn command(&mut self, args: &[&[u8]]) -> Result<RespValue, String> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        tokio::time::timeout(TIMEOUT, async {
            self.stream
                .get_mut()
                .write_all(&out)
                .await
                .map_err(|e| e.to_string())?;
            read_value(&mut self.stream).await
        })
        .await
        .map_err(|_| "Redis did not answer in time".to_owned())?
    }

    /// `AUTH [user] password`: `Ok` when the server accepted it.
    pub async fn auth(&mut self, user: Option<&str>, password: &str) -> Result<(), String> {
        let answer = match user {
            Some(user) => {
                self.command(&[b"AUTH", user.as_bytes(), password.as_bytes()])
                    .await?
            }
            None => self.command(&[b"AUTH", password.as_bytes()]).await?,
        };
        expect_ok(answer, "AUTH")
    }
}

fn expect_ok(answer: RespValue, what: &str) -> Result<(), String> {
    match answer {
        RespValue::Error(message) => Err(format!("{what} refused: {message}")),
        _ => Ok(()),
    }
}

async fn read_line(stream: &mut BufReader<TcpStream>) -> Result<String, String> {
    let mut line = String::new();
    let n = stream
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("Redis closed the connection".into());
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn read_value(
    stream: &mut BufReader<TcpStream>,
) -> std::pin::Pin<Box<dyn Future<Output = Result<RespValue, String>> + Send + '_>> {
    Box::pin(async move {
        let line = read_line(stream).await?;
        let (kind, rest) = line.split_at(line.len().min(1));
        let number = || {
            rest.parse::<i64>()
                .map_err(|_| format!("unexpected RESP line {line:?}"))
        };
        Ok(match kind {
            "+" => RespValue::Simple(rest.to_owned()),
            "-" => RespValue::Error(rest.to_owned()),
            ":" => RespValue::Integer(number()?),
            "$" => match number()? {
                n if n < 0 => RespValue::Bulk(None),
                n => {
                    let mut data = vec![0; n as usize + 2];
                    stream
                        .read_exact(&mut data)
                        .await
                        .map_err(|e| e.to_string())?;
                    data.truncate(n as usize);
                    RespValue::Bulk(Some(data))
                }
            },
            "*" => match number()? {
                n if n < 0 => RespValue::Array(None),
                n => {
                    let mut items = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        items.push(read_value(stream).await?);
                    }
                    RespValue::Array(Some(items))
                }
            },
            _ => return Err(format!("unexpected RESP line {line:?}")),
        })
    })
}

/// `#<sha256 hex>`: an ACL password given by its hash.
fn hashed(password: &str) -> String {
    format!("#{}", hex::encode(Sha256::digest(password.as_bytes())))
}

/// The ACL rules of a DCS role (module documentation).
pub fn role_rules(role: &str) -> Result<&'static [&'static str], String> {
    match role {
        "read" => Ok(&["+@read", "+@connection"]),
        "write" => Ok(&["+@all", "-@admin"]),
        other => Err(format!("unknown ACL role {other:?}")),
    }
}

async fn admin(server: &RedisServer) -> Result<Connection, String> {
    let mut connection = Connection::open(&server.host, server.port).await?;
    connection
        .auth(Some(&server.admin_user), &server.admin_password)
        .await
        .map_err(|e| {
            format!(
                "Redis {}:{}: the emulator's login: {e}",
                server.host, server.port
            )
        })?;
    Ok(connection)
}

/// Applies one change as the emulator's administrator user.
pub async fn apply(server: &RedisServer, change: &RedisChange) -> Result<(), String> {
    let mut connection = admin(server).await?;
    let mut args: Vec<String> = Vec::new();
    let what;
    match change {
        RedisChange::SetInstancePassword(password) => {
            what = "CONFIG SET requirepass";
            let password = password.as_ref().map(|p| p.expose()).unwrap_or("");
            let answer = connection
                .command(&[b"CONFIG", b"SET", b"requirepass", password.as_bytes()])
                .await?;
            return expect_ok(answer, what)
                .map_err(|e| format!("Redis {}:{}: {e}", server.host, server.port));
        }
        RedisChange::SetUser {
            name,
            password,
            role,
        } => {
            what = "ACL SETUSER";
            args.extend(["ACL", "SETUSER", name, "reset", "on", "~*", "&*"].map(str::to_owned));
            args.push(hashed(password.expose()));
            args.extend(role_rules(role)?.iter().map(|r| (*r).to_owned()));
        }
        RedisChange::SetUserPassword { name, password } => {
            what = "ACL SETUSER (password)";
            args.extend(["ACL", "SETUSER", name, "resetpass"].map(str::to_owned));
            args.push(hashed(password.expose()));
        }
        RedisChange::SetUserRole { name, role } => {
            what = "ACL SETUSER (role)";
            args.extend(["ACL", "SETUSER", name, "nocommands"].map(str::to_owned));
            args.extend(role_rules(role)?.iter().map(|r| (*r).to_owned()));
        }
        RedisChange::DeleteUser { name } => {
            what = "ACL DELUSER";
            args.extend(["ACL", "DELUSER", name].map(str::to_owned));
        }
    }
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    let answer = connection.command(&args).await?;
    expect_ok(answer, what).map_err(|e| format!("Redis {}:{}: {e}", server.host, server.port))
}

/// Logs in as an application would (`AUTH [user] password`, then `PING`):
/// `Ok` when the server accepted the password.
pub async fn login(
    host: &str,
    port: u16,
    user: Option<&str>,
    password: &str,
) -> Result<(), String> {
    let mut connection = Connection::open(host, port).await?;
    connection.auth(user, password).await?;
    expect_ok(connection.command(&[b"PING"]).await?, "PING")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_go_as_hashes_and_roles_as_rules() {
        let hash = hashed("Secret-1");
        assert_eq!(hash.len(), 65);
        assert!(hash.starts_with('#') && !hash.contains("Secret"));
        assert_eq!(role_rules("read").unwrap(), &["+@read", "+@connection"]);
        assert!(role_rules("admin").is_err());
    }
}
