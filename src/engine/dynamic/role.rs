//! A dynamic role: where each lease's account is created (a PolarDB
//! cluster or a DCS instance, through one connection), what the account
//! may do (PolarDB grants per database; a DCS ACL role), how it is named,
//! and how long its leases last. Stored at `dynamic/<name>`, apart from
//! the `role/` records of static and leased roles.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::framework::{Error, FieldData, get_json, put_json};

use super::super::cloud::{AccountKind, AclRole};
use super::super::connection::Provider;
use super::super::core::Engine;
use super::super::role::{Target, TargetKind};
use super::super::username_template::{self, check_template};

pub const STORAGE_PREFIX: &str = "dynamic/";

/// PolarDB `AccountPrivilege` values a grant takes (CreateAccount /
/// GrantAccountPrivilege API reference), in its spelling.
pub const PRIVILEGES: [&str; 5] = ["ReadWrite", "ReadOnly", "DMLOnly", "DDLOnly", "ReadIndex"];

/// The targets a dynamic role can create accounts on.
pub const TARGETS: [&str; 2] = [
    TargetKind::PolardbAccount.as_str(),
    TargetKind::DcsInstance.as_str(),
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicRole {
    /// The cluster or instance, and the connection that reaches it.
    pub target: Target,
    /// DCS: the ACL role of each account, `read` or `write`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl_role: Option<String>,
    /// PolarDB: database -> privilege, one grant call each.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grants: BTreeMap<String, String>,
    /// `None`: the target's default template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_template: Option<String>,
    /// 0: the mount's default lease TTL.
    #[serde(default)]
    pub default_ttl_secs: u64,
    /// 0: the mount's max lease TTL.
    #[serde(default)]
    pub max_ttl_secs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_policy: Option<String>,
}

impl DynamicRole {
    /// What each lease's account is.
    pub fn account_kind(&self) -> AccountKind {
        match self.target {
            Target::DcsInstance { .. } => AccountKind::DcsAcl(
                // Checked when written; a record that lost it gets the
                // lesser role.
                self.acl_role
                    .as_deref()
                    .and_then(|role| role.parse().ok())
                    .unwrap_or(AclRole::Read),
            ),
            _ => AccountKind::PolardbNormal,
        }
    }

    /// The name rules the account's name must follow.
    pub fn name_kind(&self) -> username_template::AccountKind {
        match self.target {
            Target::DcsInstance { .. } => username_template::AccountKind::DcsAcl,
            _ => username_template::AccountKind::Polardb,
        }
    }

    /// The template names are rendered from: the role's, or the target's
    /// default.
    pub fn template(&self) -> &str {
        self.username_template
            .as_deref()
            .unwrap_or_else(|| self.name_kind().default_template())
    }

    pub fn grant_list(&self) -> Vec<(String, String)> {
        self.grants
            .iter()
            .map(|(database, privilege)| (database.clone(), privilege.clone()))
            .collect()
    }

    /// The lease TTL and max TTL of a new lease: the role's, or the
    /// mount's; never past the mount's max.
    pub async fn lease_ttls(&self, engine: &Engine) -> Result<(Duration, Duration), Error> {
        let mount_default = engine.system.default_lease_ttl().await?;
        let mount_max = engine.system.max_lease_ttl().await?;
        let max = match self.max_ttl_secs {
            0 => mount_max,
            secs => Duration::from_secs(secs).min(mount_max),
        };
        let ttl = match self.default_ttl_secs {
            0 => mount_default,
            secs => Duration::from_secs(secs),
        };
        Ok((ttl.min(max), max))
    }

    /// What a read shows: every setting, never a password.
    pub fn describe(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("target".into(), self.target.kind().as_str().into());
        let (connection, place_field, place) = place(&self.target);
        out.insert("connection".into(), connection.into());
        out.insert(place_field.into(), place.into());
        match self.account_kind() {
            AccountKind::PolardbNormal => {
                out.insert("account_type".into(), "Normal".into());
                out.insert("grants".into(), json!(self.grants));
            }
            AccountKind::DcsAcl(role) => {
                out.insert("account_type".into(), "acl".into());
                out.insert("acl_role".into(), role.as_str().into());
            }
        }
        out.insert("username_template".into(), self.template().into());
        out.insert("default_ttl".into(), self.default_ttl_secs.into());
        out.insert("max_ttl".into(), self.max_ttl_secs.into());
        out.insert(
            "password_policy".into(),
            self.password_policy.clone().unwrap_or_default().into(),
        );
        out
    }

    /// Applies the fields of a write to the stored role (or a new one),
    /// checking everything that needs neither storage nor a cloud.
    pub fn apply(existing: Option<Self>, data: &FieldData) -> Result<Self, Error> {
        let target = target(existing.as_ref(), data)?;
        let mut role = existing.unwrap_or_else(|| Self {
            target: target.clone(),
            acl_role: None,
            grants: BTreeMap::new(),
            username_template: None,
            default_ttl_secs: 0,
            max_ttl_secs: 0,
            password_policy: None,
        });
        role.target = target;
        let kind = role.target.kind();
        match kind {
            TargetKind::PolardbAccount => {
                refuse(data, "acl_role", kind)?;
                if data.provided("grants") {
                    role.grants = grants(data.map("grants").cloned().unwrap_or_default())?;
                }
                if role.grants.is_empty() {
                    return Err(Error::bad_request(
                        "a polardb-account role needs grants: the databases its accounts may use and the privilege on each, e.g. grants=\"appdb=ReadWrite,logs=ReadOnly\" (privileges: ReadWrite, ReadOnly, DMLOnly, DDLOnly, ReadIndex)",
                    ));
                }
            }
            _ => {
                refuse(data, "grants", kind)?;
                if let Some(acl_role) = non_empty(data, "acl_role") {
                    let parsed: AclRole = acl_role.parse().map_err(Error::BadRequest)?;
                    role.acl_role = Some(parsed.as_str().to_owned());
                }
                if role.acl_role.is_none() {
                    return Err(Error::bad_request(
                        "a dcs-instance role needs acl_role: read or write, the ACL role DCS gives each account",
                    ));
                }
            }
        }
        if data.provided("username_template") {
            role.username_template = non_empty(data, "username_template");
        }
        if data.provided("default_ttl") {
            role.default_ttl_secs = data.duration("default_ttl").unwrap_or_default().as_secs();
        }
        if data.provided("max_ttl") {
            role.max_ttl_secs = data.duration("max_ttl").unwrap_or_default().as_secs();
        }
        if role.default_ttl_secs > 0
            && role.max_ttl_secs > 0
            && role.default_ttl_secs > role.max_ttl_secs
        {
            return Err(Error::bad_request(format!(
                "default_ttl ({}s) must not be longer than max_ttl ({}s): shorten default_ttl or raise max_ttl",
                role.default_ttl_secs, role.max_ttl_secs
            )));
        }
        if data.provided("password_policy") {
            role.password_policy = non_empty(data, "password_policy");
        }
        if let Err(error) = check_template(role.name_kind(), role.template()) {
            let how = if role.username_template.is_some() {
                "fix username_template, or write it empty for the default"
            } else {
                "set username_template"
            };
            return Err(Error::bad_request(format!("{error}; {how}")));
        }
        Ok(role)
    }

    /// The role's connection exists, reaches its target's cloud and
    /// allows it.
    pub async fn check_connection(&self, engine: &Engine, name: &str) -> Result<(), Error> {
        let (connection, _, _) = place(&self.target);
        let (provider, what) = match self.target {
            Target::DcsInstance { .. } => (Provider::Huaweicloud, "dcs-instance roles"),
            _ => (Provider::Alicloud, "polardb-account roles"),
        };
        engine
            .check_connection(connection, provider, what, name)
            .await
    }

    /// Checks what needs storage or the host: the connection, the password
    /// policy. Gives warnings for the writer.
    pub async fn validate(&self, engine: &Engine, name: &str) -> Result<Vec<String>, Error> {
        self.check_connection(engine, name).await?;
        if let Some(policy) = &self.password_policy {
            engine.check_policy(policy, self.target.rules()).await?;
        }
        let mut warnings = Vec::new();
        let mount_max = engine.system.max_lease_ttl().await?;
        if self.max_ttl_secs > mount_max.as_secs() {
            warnings.push(format!(
                "max_ttl ({}s) is longer than the mount's max lease TTL ({}s): leases end at the mount's",
                self.max_ttl_secs,
                mount_max.as_secs()
            ));
        }
        Ok(warnings)
    }
}

/// Whether a dynamic role may take `name`: not while a static role (or a
/// leased role an earlier version stored) has it.
pub async fn refuse_static_name(engine: &Engine, name: &str) -> Result<(), Error> {
    if let Some(other) = engine.store.load_role(name).await? {
        return Err(Error::bad_request(format!(
            "name {name:?} is taken by {}/{name}; role names are unique across static-roles and roles: pick another name",
            other.kind.path()
        )));
    }
    Ok(())
}

/// The connection of a target, and the field and id of its cluster or
/// instance.
pub fn place(target: &Target) -> (&str, &'static str, &str) {
    match target {
        Target::PolardbAccount {
            connection,
            cluster_id,
        } => (connection, "cluster_id", cluster_id),
        Target::DcsInstance {
            connection,
            instance_id,
        } => (connection, "instance_id", instance_id),
        Target::External => ("", "", ""),
    }
}

/// The target a write asks for: a new one, or the stored one with the
/// connection, cluster or instance the write changes.
fn target(existing: Option<&DynamicRole>, data: &FieldData) -> Result<Target, Error> {
    let kind = match existing {
        Some(role) => {
            let kind = role.target.kind();
            if data.provided("target") && data.str("target") != Some(kind.as_str()) {
                return Err(Error::bad_request(format!(
                    "target cannot be changed (it is {kind}): delete the role and create it again"
                )));
            }
            kind
        }
        None => {
            let named = non_empty(data, "target").ok_or_else(|| {
                Error::bad_request(format!(
                    "missing target: where each lease's account is created, one of {}",
                    TARGETS.join(", ")
                ))
            })?;
            let kind: TargetKind = named.parse().map_err(Error::BadRequest)?;
            if kind == TargetKind::External {
                return Err(Error::bad_request(format!(
                    "a dynamic role creates an account for each lease, which an external target cannot hold: use one of {}",
                    TARGETS.join(", ")
                )));
            }
            kind
        }
    };
    let (old_connection, _, old_place) = existing.map_or(("", "", ""), |role| place(&role.target));
    let pick = |field: &str, old: &str| -> Result<String, Error> {
        match non_empty(data, field) {
            Some(value) => Ok(value),
            None if !old.is_empty() && !data.provided(field) => Ok(old.to_owned()),
            None => Err(Error::bad_request(format!("target {kind} needs {field}"))),
        }
    };
    let connection = pick("connection", old_connection)?;
    match kind {
        TargetKind::PolardbAccount => {
            refuse(data, "instance_id", kind)?;
            Ok(Target::PolardbAccount {
                connection,
                cluster_id: pick("cluster_id", old_place)?,
            })
        }
        _ => {
            refuse(data, "cluster_id", kind)?;
            Ok(Target::DcsInstance {
                connection,
                instance_id: pick("instance_id", old_place)?,
            })
        }
    }
}

/// PolarDB grants as written: database names and privileges in PolarDB's
/// spelling (any case is accepted).
fn grants(written: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for (database, privilege) in written {
        let valid_name = (1..=64).contains(&database.chars().count())
            && database
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            return Err(Error::bad_request(format!(
                "grants: {database:?} is not a database name (1-64 letters, digits, '_' and '-'); write grants as database=privilege pairs"
            )));
        }
        let Some(canonical) = PRIVILEGES
            .iter()
            .find(|known| known.eq_ignore_ascii_case(privilege.trim()))
        else {
            return Err(Error::bad_request(format!(
                "grants: {privilege:?} (database {database}) is not a PolarDB privilege; use one of {}",
                PRIVILEGES.join(", ")
            )));
        };
        out.insert(database, (*canonical).to_owned());
    }
    Ok(out)
}

fn refuse(data: &FieldData, field: &str, kind: TargetKind) -> Result<(), Error> {
    let given =
        non_empty(data, field).is_some() || data.map(field).is_some_and(|map| !map.is_empty());
    if given {
        return Err(Error::bad_request(format!(
            "{field} does not apply to target {kind}"
        )));
    }
    Ok(())
}

fn non_empty(data: &FieldData, name: &str) -> Option<String> {
    data.str(name)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn key(name: &str) -> String {
    format!("{STORAGE_PREFIX}{name}")
}

pub async fn load(engine: &Engine, name: &str) -> Result<Option<DynamicRole>, Error> {
    get_json(engine.store.storage.as_ref(), &key(name)).await
}

pub async fn save(engine: &Engine, name: &str, role: &DynamicRole) -> Result<(), Error> {
    put_json(engine.store.storage.as_ref(), &key(name), role).await
}

pub async fn delete(engine: &Engine, name: &str) -> Result<(), Error> {
    Ok(engine.store.storage.delete(&key(name)).await?)
}

pub async fn list(engine: &Engine) -> Result<Vec<String>, Error> {
    Ok(engine.store.storage.list(STORAGE_PREFIX).await?)
}

/// Whether a static or leased role may take `name`: not while a dynamic
/// role has it.
pub async fn refuse_taken(engine: &Engine, name: &str) -> Result<(), Error> {
    if load(engine, name).await?.is_some() {
        return Err(Error::bad_request(format!(
            "name {name:?} is taken by the dynamic role roles/{name}; role names are unique across static-roles and roles: pick another name"
        )));
    }
    Ok(())
}
