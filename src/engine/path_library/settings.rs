//! What a write of `library/:name` asks for, from the stored set: every
//! check that needs neither storage nor a cloud, and each service
//! account's record as the set wants it.

use crate::framework::{Error, FieldData, validate_name};

use super::super::library::{self, LibrarySet};
use super::super::path_roles::{self, non_empty};
use super::super::role::{Dependent, DependentStatus, Role, RoleKind, Target, TargetKind};
use super::requested_accounts;

/// The target a create asks for, or the stored one checked against what
/// an update asks for.
fn set_target(existing: Option<&LibrarySet>, data: &FieldData) -> Result<Target, Error> {
    if let Some(set) = existing {
        path_roles::unchanged_target(&set.target, data, "set")?;
        return Ok(set.target.clone());
    }
    let kind: TargetKind = data
        .str("target")
        .unwrap_or_default()
        .parse()
        .map_err(Error::BadRequest)?;
    let require = |field: &str| {
        non_empty(data, field)
            .ok_or_else(|| Error::bad_request(format!("a {kind} library set needs {field}")))
    };
    match kind {
        TargetKind::PolardbAccount => {
            refuse(data, "instance_id", kind.as_str())?;
            Ok(Target::PolardbAccount {
                connection: require("connection")?,
                cluster_id: require("cluster_id")?,
            })
        }
        TargetKind::DcsInstance => {
            refuse(data, "cluster_id", kind.as_str())?;
            Ok(Target::DcsInstance {
                connection: require("connection")?,
                instance_id: require("instance_id")?,
            })
        }
        TargetKind::External => Err(Error::bad_request(
            "a library set lends accounts Vault rotates at check-in: use target polardb-account or dcs-instance",
        )),
    }
}

fn refuse(data: &FieldData, field: &str, kind: &str) -> Result<(), Error> {
    match non_empty(data, field) {
        Some(_) => Err(Error::bad_request(format!(
            "{field} does not apply to target {kind}"
        ))),
        None => Ok(()),
    }
}

fn accounts_of_set(data: &FieldData) -> Result<Vec<String>, Error> {
    let names = requested_accounts(data);
    if names.is_empty() {
        return Err(Error::bad_request(
            "service_account_names must name at least one account to lend",
        ));
    }
    let given = data
        .list("service_account_names")
        .unwrap_or_default()
        .iter()
        .filter(|n| !n.trim().is_empty())
        .count();
    if given != names.len() {
        return Err(Error::bad_request(
            "service_account_names lists an account twice; name each once",
        ));
    }
    for name in &names {
        validate_name(name)
            .map_err(|why| Error::bad_request(format!("service_account_names: {why}")))?;
    }
    Ok(names)
}

/// A dependent of the set, pinned to one of `accounts`.
fn parse_dependent(spec: &str, accounts: &[String]) -> Result<Dependent, Error> {
    let only = match accounts {
        [only] => Some(only.as_str()),
        _ => None,
    };
    let listed = accounts.join(" or /");
    let dependent = Dependent::parse(spec, only).map_err(|why| {
        if only.is_none() && Dependent::parse(spec, Some("")).is_ok() {
            Error::bad_request(format!(
                "dependent {spec:?} must name its service account: append /{listed} (a DTS job logs in as one account, and gets that account's password when it rotates)"
            ))
        } else {
            Error::BadRequest(why)
        }
    })?;
    match &dependent {
        Dependent::Drs { .. } if only.is_none() => Err(Error::bad_request(format!(
            "dependent {spec:?}: DRS copies need a set of one service account (DRS batch-modify-pwd sets the password of whatever user the job logs in as, which Vault can neither choose nor read); use a set of one, or a static role"
        ))),
        Dependent::Dts { username, .. } if !accounts.contains(username) => {
            Err(Error::bad_request(format!(
                "dependent {spec:?} is pinned to {username:?}, which is not one of this set's service_account_names; end it with /{listed}"
            )))
        }
        _ => Ok(dependent),
    }
}

/// The set a write asks for, from the stored one (if any): every check
/// that needs neither storage nor a cloud.
pub(super) fn desired_set(
    existing: Option<&LibrarySet>,
    data: &FieldData,
) -> Result<LibrarySet, Error> {
    let target = set_target(existing, data)?;
    let service_account_names = match existing {
        Some(set) if !data.provided("service_account_names") => set.service_account_names.clone(),
        _ => accounts_of_set(data)?,
    };
    let secs = |field: &str, stored: Option<u64>, default: u64| {
        if data.provided(field) {
            data.duration(field).unwrap_or_default().as_secs()
        } else {
            stored.unwrap_or(default)
        }
    };
    let ttl_secs = secs(
        "ttl",
        existing.map(|s| s.ttl_secs),
        library::DEFAULT_TTL_SECS,
    );
    let max_ttl_secs = secs(
        "max_ttl",
        existing.map(|s| s.max_ttl_secs),
        library::DEFAULT_MAX_TTL_SECS,
    );
    if ttl_secs > 0 && max_ttl_secs > 0 && max_ttl_secs < ttl_secs {
        return Err(Error::bad_request(format!(
            "max_ttl ({max_ttl_secs}s) must not be shorter than ttl ({ttl_secs}s)"
        )));
    }
    let disable_check_in_enforcement = if data.provided("disable_check_in_enforcement") {
        data.bool("disable_check_in_enforcement").unwrap_or(false)
    } else {
        existing.is_some_and(|s| s.disable_check_in_enforcement)
    };
    let password_policy = if data.provided("password_policy") {
        non_empty(data, "password_policy")
    } else {
        existing.and_then(|s| s.password_policy.clone())
    };
    let specs: Vec<String> = if data.provided("dependents") {
        data.list("dependents")
            .unwrap_or_default()
            .iter()
            .filter(|spec| !spec.trim().is_empty())
            .cloned()
            .collect()
    } else {
        // Kept as they are, but checked again: an account they pin may be
        // the one this write removes.
        existing
            .map(|s| s.dependents.iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    };
    let mut dependents: Vec<Dependent> = Vec::new();
    for spec in &specs {
        let dependent = parse_dependent(spec, &service_account_names)?;
        if dependents
            .iter()
            .any(|d| d.resource_id() == dependent.resource_id())
        {
            return Err(Error::bad_request(format!(
                "dependent {spec:?} is listed twice"
            )));
        }
        dependents.push(dependent);
    }
    Ok(LibrarySet {
        target,
        service_account_names,
        ttl_secs,
        max_ttl_secs,
        disable_check_in_enforcement,
        password_policy,
        dependents,
    })
}

/// Service account `account` as `set` wants it: the stored record with
/// the set's settings applied, or a new one. Copies it gains are pending.
pub(super) fn member_record(set: &LibrarySet, account: &str, stored: Option<Role>) -> Role {
    let mut role = stored.unwrap_or_else(|| {
        let mut role = Role::new(RoleKind::Library, set.target.clone());
        role.username = Some(account.to_owned());
        role.acl_account = set.is_acl_account(account);
        role
    });
    role.password_policy = set.password_policy.clone();
    let before: Vec<String> = role.dependents.iter().map(ToString::to_string).collect();
    role.dependents = set.dependents_of(account);
    for dependent in &role.dependents {
        let id = dependent.to_string();
        if !before.contains(&id) {
            role.state.dependents.entry(id).or_default().status = DependentStatus::Pending;
        }
    }
    role
}
