//! PostgreSQL behind a PolarDB cluster: accounts are roles. The emulator
//! connects as the server's administrator (tokio-postgres: the wire
//! protocol and SCRAM-SHA-256 login) and runs one change at a time.
//!
//! Privileges (PolarDB `AccountPrivilege` -> PostgreSQL, our model; PolarDB
//! for PostgreSQL documents the names, not the statements):
//!
//! | privilege | database | schema `public` | tables (sequences) in `public` |
//! |---|---|---|---|
//! | `ReadWrite` | `CONNECT, TEMPORARY` | `USAGE, CREATE` | `SELECT, INSERT, UPDATE, DELETE` (`USAGE, SELECT`) |
//! | `ReadOnly`, `ReadIndex` | `CONNECT` | `USAGE` | `SELECT` |
//! | `DMLOnly` | `CONNECT` | `USAGE` | `SELECT, INSERT, UPDATE, DELETE` (`USAGE, SELECT`) |
//! | `DDLOnly` | `CONNECT` | `USAGE, CREATE` | none |
//!
//! (PostgreSQL has no index privilege: `ReadIndex` is read-only here.)

use std::time::Duration;

use tokio_postgres::{Client, Config, NoTls};

use super::{PgChange, PostgresServer};

/// `"name"` with inner quotes doubled: any role or database name is one
/// identifier.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` with inner quotes doubled (standard_conforming_strings is on
/// by default since PostgreSQL 9.1, so backslashes are plain).
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A SCRAM-SHA-256 verifier of the password: what `PASSWORD` stores, so
/// the password itself never reaches the server (or its statement log).
fn verifier(password: &str) -> String {
    quote_literal(&postgres_protocol::password::scram_sha_256(
        password.as_bytes(),
    ))
}

/// The statements that give `role` `privilege` on `database` (the table
/// in the module documentation), run while connected to `database`.
pub fn grant_statements(
    role: &str,
    database: &str,
    privilege: &str,
) -> Result<Vec<String>, String> {
    let r = quote_identifier(role);
    let d = quote_identifier(database);
    let (on_database, on_schema, on_tables, on_sequences) = match privilege {
        "ReadWrite" => (
            "CONNECT, TEMPORARY",
            "USAGE, CREATE",
            Some("SELECT, INSERT, UPDATE, DELETE"),
            Some("USAGE, SELECT"),
        ),
        "ReadOnly" | "ReadIndex" => ("CONNECT", "USAGE", Some("SELECT"), None),
        "DMLOnly" => (
            "CONNECT",
            "USAGE",
            Some("SELECT, INSERT, UPDATE, DELETE"),
            Some("USAGE, SELECT"),
        ),
        "DDLOnly" => ("CONNECT", "USAGE, CREATE", None, None),
        other => return Err(format!("unknown privilege {other:?}")),
    };
    let mut statements = vec![
        format!("GRANT {on_database} ON DATABASE {d} TO {r}"),
        format!("GRANT {on_schema} ON SCHEMA public TO {r}"),
    ];
    if let Some(tables) = on_tables {
        statements.push(format!(
            "GRANT {tables} ON ALL TABLES IN SCHEMA public TO {r}"
        ));
    }
    if let Some(sequences) = on_sequences {
        statements.push(format!(
            "GRANT {sequences} ON ALL SEQUENCES IN SCHEMA public TO {r}"
        ));
    }
    Ok(statements)
}

fn revoke_statements(role: &str, database: &str) -> Vec<String> {
    let r = quote_identifier(role);
    vec![
        format!("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {r}"),
        format!("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {r}"),
        format!("REVOKE ALL ON SCHEMA public FROM {r}"),
        format!(
            "REVOKE ALL ON DATABASE {} FROM {r}",
            quote_identifier(database)
        ),
    ]
}

/// Connects to `database` as `user`. The connection task ends with the
/// client.
async fn connect(
    server: &PostgresServer,
    database: &str,
    user: &str,
    password: &str,
) -> Result<Client, tokio_postgres::Error> {
    let mut config = Config::new();
    config
        .host(&server.host)
        .port(server.port)
        .user(user)
        .password(password)
        .dbname(database)
        .application_name("cloudrotate-emulator")
        .connect_timeout(Duration::from_secs(5));
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

async fn admin(server: &PostgresServer, database: &str) -> Result<Client, String> {
    connect(server, database, &server.admin_user, &server.admin_password)
        .await
        .map_err(|e| describe(server, "connect", &e))
}

/// The error of one step, naming the server and the step. PostgreSQL's own
/// message is kept (it names roles and databases, never a password: the
/// statements carry verifiers only).
fn describe(server: &PostgresServer, step: &str, error: &tokio_postgres::Error) -> String {
    let detail = error
        .as_db_error()
        .map(|db| db.message().to_owned())
        .unwrap_or_else(|| error.to_string());
    format!(
        "PostgreSQL {}:{} refused {step}: {detail}",
        server.host, server.port
    )
}

async fn run(
    server: &PostgresServer,
    client: &Client,
    statements: &[String],
) -> Result<(), String> {
    for statement in statements {
        let verb: String = statement
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        client
            .batch_execute(statement)
            .await
            .map_err(|e| describe(server, &verb, &e))?;
    }
    Ok(())
}

async fn exists(
    server: &PostgresServer,
    client: &Client,
    query: &str,
    name: &str,
) -> Result<bool, String> {
    client
        .query_opt(query, &[&name])
        .await
        .map(|row| row.is_some())
        .map_err(|e| describe(server, "a lookup", &e))
}

const ROLE_EXISTS: &str = "SELECT 1 FROM pg_roles WHERE rolname = $1";
const DATABASE_EXISTS: &str = "SELECT 1 FROM pg_database WHERE datname = $1";

/// Applies one change as the administrator.
pub async fn apply(server: &PostgresServer, change: &PgChange) -> Result<(), String> {
    match change {
        PgChange::CreateDatabase { name } => {
            let client = admin(server, &server.database).await?;
            if !exists(server, &client, DATABASE_EXISTS, name).await? {
                run(
                    server,
                    &client,
                    &[format!("CREATE DATABASE {}", quote_identifier(name))],
                )
                .await?;
            }
            Ok(())
        }
        PgChange::CreateRole {
            name,
            password,
            privileged,
        } => {
            let client = admin(server, &server.database).await?;
            let verb = if exists(server, &client, ROLE_EXISTS, name).await? {
                "ALTER"
            } else {
                "CREATE"
            };
            let extra = if *privileged {
                " CREATEDB CREATEROLE"
            } else {
                ""
            };
            run(
                server,
                &client,
                &[format!(
                    "{verb} ROLE {} LOGIN{extra} PASSWORD {}",
                    quote_identifier(name),
                    verifier(password.expose())
                )],
            )
            .await
        }
        PgChange::SetPassword { name, password } => {
            let client = admin(server, &server.database).await?;
            run(
                server,
                &client,
                &[format!(
                    "ALTER ROLE {} PASSWORD {}",
                    quote_identifier(name),
                    verifier(password.expose())
                )],
            )
            .await
        }
        PgChange::Grant {
            role,
            database,
            privilege,
        } => {
            let client = admin(server, database).await?;
            run(
                server,
                &client,
                &grant_statements(role, database, privilege)?,
            )
            .await
        }
        PgChange::Revoke { role, database } => {
            let client = admin(server, database).await?;
            run(server, &client, &revoke_statements(role, database)).await
        }
        PgChange::DropRole { name, databases } => {
            let client = admin(server, &server.database).await?;
            if !exists(server, &client, ROLE_EXISTS, name).await? {
                return Ok(());
            }
            let role = quote_identifier(name);
            let mut all: Vec<&str> = vec![server.database.as_str()];
            all.extend(
                databases
                    .iter()
                    .map(String::as_str)
                    .filter(|d| *d != server.database),
            );
            for database in all {
                let client = admin(server, database).await?;
                run(
                    server,
                    &client,
                    &[
                        format!("REASSIGN OWNED BY {role} TO CURRENT_USER"),
                        format!("DROP OWNED BY {role}"),
                    ],
                )
                .await?;
            }
            run(server, &client, &[format!("DROP ROLE IF EXISTS {role}")]).await
        }
    }
}

/// Logs in as `user` (what a DTS job or an application does): `Ok` when
/// the server accepted the password and answered a query.
pub async fn login(server: &PostgresServer, user: &str, password: &str) -> Result<(), String> {
    let client = connect(server, &server.database, user, password)
        .await
        .map_err(|e| describe(server, &format!("the login of {user}"), &e))?;
    client
        .simple_query("SELECT 1")
        .await
        .map(|_| ())
        .map_err(|e| describe(server, "a query", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(quote_identifier("app"), "\"app\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        let quoted = verifier("Secret-1");
        assert!(quoted.starts_with("'SCRAM-SHA-256$4096:"), "{quoted}");
        assert!(!quoted.contains("Secret-1"));
    }

    #[test]
    fn every_privilege_maps_to_statements() {
        for privilege in crate::emulator::accounts::POLARDB_PRIVILEGES {
            let statements = grant_statements("app", "appdb", privilege).unwrap();
            assert!(statements[0].starts_with("GRANT CONNECT"), "{statements:?}");
            assert!(statements.iter().all(|s| s.ends_with("TO \"app\"")));
        }
        let read_only = grant_statements("app", "appdb", "ReadOnly").unwrap();
        assert!(read_only.iter().all(|s| !s.contains("INSERT")));
        assert!(grant_statements("app", "appdb", "Everything").is_err());
    }
}
