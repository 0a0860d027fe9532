//! Real servers behind emulated resources (an option of the seed): a
//! PolarDB cluster may be backed by a PostgreSQL server, a DCS instance by
//! a Redis server. The emulator's rules decide every answer as before;
//! a call that changes a backed resource also changes the real server, and
//! succeeds only if the server applied the change (otherwise the resource
//! is put back and the cloud's internal error is answered).
//!
//! What each call does on the server:
//!
//! | call | PostgreSQL ([`postgres`]) | Redis ([`redis`]) |
//! |---|---|---|
//! | PolarDB CreateAccount | `CREATE ROLE name LOGIN PASSWORD <SCRAM verifier>` (`Super`: also `CREATEDB CREATEROLE`), then its grants | |
//! | PolarDB ModifyAccountPassword | `ALTER ROLE name PASSWORD <SCRAM verifier>` | |
//! | PolarDB GrantAccountPrivilege | the privilege's statements on each database ([`postgres::grant_statements`]) | |
//! | PolarDB RevokeAccountPrivilege | `REVOKE ALL` on each database, its `public` schema and tables | |
//! | PolarDB DeleteAccount | `REASSIGN OWNED` / `DROP OWNED` in each database, `DROP ROLE` | |
//! | DCS UpdatePassword / ResetPassword | | `CONFIG SET requirepass` (the `default` user's password) |
//! | DCS CreateAclAccount | | `ACL SETUSER name reset on ~* &* #<sha256> <role>` |
//! | DCS UpdateAclAccount (role) | | `ACL SETUSER name nocommands <role>` |
//! | DCS UpdateAclAccountPassWord / ResetAclAccountPassWord | | `ACL SETUSER name resetpass #<sha256>` |
//! | DCS DeleteAclAccount | | `ACL DELUSER name` |
//!
//! Passwords never reach the servers' logs in the clear: PostgreSQL gets a
//! SCRAM-SHA-256 verifier computed here, Redis ACL users a SHA-256 hash.
//! Only `requirepass` takes the password itself (Redis has no other way).
//!
//! [`logins`] is the other half: DTS and DRS jobs whose source is a backed
//! resource log in with their copy of the password and fail when it is
//! refused.

pub mod logins;
pub mod postgres;
pub mod redis;

use std::fmt;

use serde::{Deserialize, Serialize};

use super::http::Reply;
use super::model::{DcsInstance, PolarCluster, World};
use crate::providers::Secret;

fn loopback() -> String {
    "127.0.0.1".to_owned()
}
fn postgres_database() -> String {
    "postgres".to_owned()
}

/// How the emulator reaches a PostgreSQL server as an administrator (a
/// role that may create roles and grant on every database).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PostgresServer {
    #[serde(default = "loopback")]
    pub host: String,
    pub port: u16,
    pub admin_user: String,
    pub admin_password: String,
    /// The database jobs and the emulator connect to.
    #[serde(default = "postgres_database")]
    pub database: String,
}

/// How the emulator reaches a Redis server: an ACL user of its own with
/// every permission, so that changing `requirepass` never locks it out.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisServer {
    #[serde(default = "loopback")]
    pub host: String,
    pub port: u16,
    pub admin_user: String,
    pub admin_password: String,
}

impl fmt::Debug for PostgresServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresServer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("admin_user", &self.admin_user)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("admin_user", &self.admin_user)
            .finish_non_exhaustive()
    }
}

/// One statement's worth of change on a PostgreSQL server.
#[derive(Debug, Clone, PartialEq)]
pub enum PgChange {
    CreateDatabase {
        name: String,
    },
    /// Creates the role, or sets its password when it exists (seeds).
    CreateRole {
        name: String,
        password: Secret,
        privileged: bool,
    },
    SetPassword {
        name: String,
        password: Secret,
    },
    Grant {
        role: String,
        database: String,
        privilege: String,
    },
    Revoke {
        role: String,
        database: String,
    },
    /// Drops the role after dropping what it owns and was granted in
    /// `databases` (PostgreSQL refuses to drop a role that holds grants).
    DropRole {
        name: String,
        databases: Vec<String>,
    },
}

/// One change on a Redis server.
#[derive(Debug, Clone, PartialEq)]
pub enum RedisChange {
    /// `None`: password-free (the default user takes no password).
    SetInstancePassword(Option<Secret>),
    /// Creates or replaces an ACL user with its role and password.
    SetUser {
        name: String,
        password: Secret,
        role: String,
    },
    SetUserPassword {
        name: String,
        password: Secret,
    },
    SetUserRole {
        name: String,
        role: String,
    },
    DeleteUser {
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum BackingOp {
    Postgres(PostgresServer, PgChange),
    Redis(RedisServer, RedisChange),
}

/// What a resource looked like before a call changed it, to put it back
/// when the server refuses the change.
#[derive(Debug, Clone, PartialEq)]
pub enum Snapshot {
    Cluster(Box<PolarCluster>),
    Instance(Box<DcsInstance>),
}

/// The server side of one call: the operations, in order, what to put
/// back if one fails, and the answer to give then.
#[derive(Debug, Clone, PartialEq)]
pub struct BackingChange {
    pub ops: Vec<BackingOp>,
    pub undo: Option<Snapshot>,
    pub on_failure: Reply,
}

impl World {
    /// Queues the server side of a call that changed a backed resource.
    pub fn queue_backing(&mut self, change: BackingChange) {
        if !change.ops.is_empty() {
            self.pending_backing.push(change);
        }
    }

    /// Puts a resource back as it was before the call.
    pub fn restore(&mut self, snapshot: Snapshot) {
        match snapshot {
            Snapshot::Cluster(cluster) => {
                if let Some(slot) = self.polardb_cluster_mut(&cluster.id) {
                    *slot = *cluster;
                }
            }
            Snapshot::Instance(instance) => {
                if let Some(slot) = self.dcs_instance_mut(&instance.id) {
                    *slot = *instance;
                }
            }
        }
    }

    /// Whether any resource is backed by a real server.
    pub fn has_backing(&self) -> bool {
        self.seed
            .alicloud
            .polardb_clusters
            .iter()
            .any(|c| c.backing.is_some())
            || self
                .seed
                .huaweicloud
                .dcs_instances
                .iter()
                .any(|i| i.backing.is_some())
    }
}

/// The operations that make the servers hold what the seed says: the
/// cluster's databases and accounts (with their grants), the instance's
/// password and ACL accounts. Roles and users the seed does not name are
/// left alone.
pub fn reconcile_ops(world: &World) -> Vec<BackingOp> {
    let mut ops = Vec::new();
    for cluster in &world.seed.alicloud.polardb_clusters {
        let Some(server) = &cluster.backing else {
            continue;
        };
        let pg = |change| BackingOp::Postgres(server.clone(), change);
        for database in &cluster.databases {
            ops.push(pg(PgChange::CreateDatabase {
                name: database.clone(),
            }));
        }
        for account in &cluster.accounts {
            ops.push(pg(PgChange::CreateRole {
                name: account.name.clone(),
                password: Secret::new(account.password.clone()),
                privileged: account.account_type == "Super",
            }));
            for grant in &account.privileges {
                ops.push(pg(PgChange::Grant {
                    role: account.name.clone(),
                    database: grant.db_name.clone(),
                    privilege: grant.privilege.clone(),
                }));
            }
        }
    }
    for instance in &world.seed.huaweicloud.dcs_instances {
        let Some(server) = &instance.backing else {
            continue;
        };
        let redis = |change| BackingOp::Redis(server.clone(), change);
        ops.push(redis(RedisChange::SetInstancePassword(
            instance.password.clone().map(Secret::new),
        )));
        for account in &instance.acl_accounts {
            ops.push(redis(RedisChange::SetUser {
                name: account.name.clone(),
                password: Secret::new(account.password.clone()),
                role: account.role.clone(),
            }));
        }
    }
    ops
}

/// Applies operations in order; the first failure stops and is returned
/// (its text names the server and what failed, never a password).
pub async fn apply(ops: &[BackingOp]) -> Result<(), String> {
    for op in ops {
        match op {
            BackingOp::Postgres(server, change) => postgres::apply(server, change).await?,
            BackingOp::Redis(server, change) => redis::apply(server, change).await?,
        }
    }
    Ok(())
}
