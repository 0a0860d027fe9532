//! `library/:name` (create, update, read, delete) and `library/` (list):
//! a set's settings and its service accounts' records.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::OwnedMutexGuard;

use crate::framework::{Error, FieldData, HandlerResult, Operation, Request, Response};

use super::super::clock::rfc3339;
use super::super::core::Engine;
use super::super::library::{self, LibrarySet};
use super::super::path_roles;
use super::super::role::{Role, Status, Trigger};
use super::super::rotation::execute::{self, RotateRequest};
use super::super::store::LockKey;
use super::joining::check_joining;
use super::settings::{desired_set, member_record};
use super::{load_member, load_set, missing_set, outcome_warning};

pub(super) async fn set_exists(
    engine: &Arc<Engine>,
    _: &Request,
    data: &FieldData,
) -> Result<bool, Error> {
    let name = data.str("name").unwrap_or_default();
    Ok(load_set(engine, name).await?.is_some())
}

pub(super) async fn list_sets(engine: &Arc<Engine>, _: &Request, _: &FieldData) -> HandlerResult {
    Ok(Some(Response::list(
        library::list(engine.store.storage.as_ref()).await?,
    )))
}

/// The lock guards of the service accounts `accounts` of `set`, taken in
/// name order (so two writers never wait on each other).
async fn lock_members(
    engine: &Engine,
    set: &str,
    accounts: &[&String],
) -> Vec<OwnedMutexGuard<()>> {
    let mut names: Vec<String> = accounts
        .iter()
        .map(|account| library::member_role(set, account))
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut guards = Vec::with_capacity(names.len());
    for name in &names {
        guards.push(engine.store.lock(LockKey::Role(name)).await);
    }
    guards
}

/// A service account cannot leave its set (or the set be deleted) while it
/// is out or its rotation may have set a password only Vault knows.
fn refuse_leaving(set: &str, account: &str, role: &Role) -> Result<(), Error> {
    if let Some(checkout) = &role.state.checkout {
        return Err(Error::conflict(format!(
            "service account {account:?} of library set {set:?} is checked out (until {} unless renewed); its borrower checks it in with library/{set}/check-in, or library/manage/{set}/check-in does it for anyone, then try again",
            rfc3339(checkout.expires_at)
        )));
    }
    path_roles::refuse_unfinished_rotation(&library::member_role(set, account), role)
}

/// What a set write does to one of its service accounts' records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Create,
    Update,
    None,
}

pub(super) async fn write_set(
    engine: &Arc<Engine>,
    request: &Request,
    data: &FieldData,
) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let take_over = data.bool("take_over").unwrap_or(false);
    let storage = engine.store.storage.as_ref();
    // Checks with provider calls first, with no lock held.
    let existing = library::load(storage, name).await?;
    if request.operation == Operation::Update && existing.is_none() {
        return Err(missing_set(name));
    }
    let desired = desired_set(existing.as_ref(), data)?;
    let joining_names = |existing: Option<&LibrarySet>, desired: &LibrarySet| -> Vec<String> {
        desired
            .service_account_names
            .iter()
            .filter(|a| existing.is_none_or(|s| !s.service_account_names.contains(a)))
            .cloned()
            .collect()
    };
    let mut joining = check_joining(
        engine,
        name,
        &desired,
        &joining_names(existing.as_ref(), &desired),
        take_over,
    )
    .await?;

    let roles_guard = engine.store.lock(LockKey::Roles).await;
    // Again under the lock: another write may have come first.
    let existing = library::load(storage, name).await?;
    if request.operation == Operation::Update && existing.is_none() {
        return Err(missing_set(name));
    }
    let desired = desired_set(existing.as_ref(), data)?;
    let added = joining_names(existing.as_ref(), &desired);
    let late: Vec<String> = added
        .iter()
        .filter(|a| !joining.contains_key(*a))
        .cloned()
        .collect();
    if !late.is_empty() {
        joining.extend(check_joining(engine, name, &desired, &late, take_over).await?);
    }
    let removed: Vec<String> = existing
        .iter()
        .flat_map(|s| s.service_account_names.iter())
        .filter(|a| !desired.service_account_names.contains(a))
        .cloned()
        .collect();
    let everyone: Vec<&String> = desired
        .service_account_names
        .iter()
        .chain(&removed)
        .collect();
    let member_guards = lock_members(engine, name, &everyone).await;
    let mut leaving = Vec::new();
    for account in &removed {
        if let Some(role) = load_member(engine, name, account).await? {
            refuse_leaving(name, account, &role)?;
            leaving.push((account.clone(), role));
        }
    }
    let mut records = Vec::new();
    for account in &desired.service_account_names {
        let stored = load_member(engine, name, account).await?;
        let settings = |role: &Role| {
            let copies: Vec<String> = role.dependents.iter().map(ToString::to_string).collect();
            (role.password_policy.clone(), copies)
        };
        let before = stored.as_ref().map(settings);
        let role = member_record(&desired, account, stored);
        let change = match before {
            None => Change::Create,
            Some(before) if before != settings(&role) => Change::Update,
            Some(_) => Change::None,
        };
        path_roles::check_connections(engine, name, &role).await?;
        path_roles::check_owners(engine, &library::member_role(name, account), &role).await?;
        records.push((account.clone(), role, change));
    }
    if let Some((_, first, _)) = records.first() {
        path_roles::check_policy(engine, first).await?;
    }
    let connections: Vec<&str> = records
        .iter()
        .flat_map(|(_, role, _)| role.connections())
        .collect();
    let connection_guards = engine.store.lock_connections(&connections).await;
    // The set first: a crash before its accounts are written leaves a set
    // whose missing accounts the next write of it creates.
    library::save(storage, name, &desired).await?;
    for (account, _) in &leaving {
        engine
            .store
            .delete_role(&library::member_role(name, account))
            .await?;
    }
    let mut follow_ups = Vec::new();
    for (account, role, change) in &records {
        let member = library::member_role(name, account);
        if *change != Change::None {
            engine.store.commit_role(&member, role).await?;
        }
        let copies_behind = role.dependents.iter().any(|d| !role.copy_in_sync(d));
        if *change == Change::Create {
            follow_ups.push((account.clone(), Trigger::Create));
        } else if copies_behind
            && role.state.password.is_some()
            && role.state.in_flight.is_none()
            && role.state.status != Status::Drifted
        {
            follow_ups.push((account.clone(), Trigger::Propagate));
        }
    }
    drop((connection_guards, roles_guard));

    let mut warnings: Vec<String> = Vec::new();
    for (account, trigger) in follow_ups {
        let member = library::member_role(name, &account);
        let mut request = RotateRequest::new(trigger);
        if let Some(join) = joining.remove(&account) {
            warnings.extend(join.warnings);
            request.target = join.target;
        }
        let outcome = execute::run(engine, &member, request).await?;
        let what = if trigger == Trigger::Create {
            "its first rotation (Vault setting its password)"
        } else {
            "giving its password to the new dependents"
        };
        warnings.extend(outcome_warning(name, &account, what, &outcome));
    }
    drop(member_guards);
    for (account, role) in &leaving {
        warnings.extend(
            path_roles::release_claim(engine, &library::member_role(name, account), role).await,
        );
    }
    Ok(path_roles::warned(warnings))
}

/// The state of a service account as a set read shows it (never a
/// password).
fn describe_member(member: &str, role: Option<&Role>) -> Value {
    let Some(role) = role else {
        return json!({ "status": "missing", "status_reason": "its record is missing (a write of the set was interrupted): write the set again to add it" });
    };
    const SHOWN: [&str; 10] = [
        "status",
        "status_reason",
        "last_vault_rotation",
        "last_error",
        "rotation_in_progress",
        "drift",
        "drift_check",
        "dependent_states",
        "checked_out",
        "checkout_expires_at",
    ];
    let mut all = role.describe(member);
    let mut shown = Map::new();
    for key in SHOWN {
        if let Some(value) = all.remove(key) {
            shown.insert(key.into(), value);
        }
    }
    for key in ["dcs_change_method", "dcs_attempts_left"] {
        if let Some(value) = all.remove(key) {
            shown.insert(key.into(), value);
        }
    }
    Value::Object(shown)
}

pub(super) async fn read_set(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let Some(set) = load_set(engine, name).await? else {
        return Ok(None);
    };
    let (connection, cluster_id, instance_id) = set.target.fields();
    let mut accounts = Map::new();
    for account in &set.service_account_names {
        let member = library::member_role(name, account);
        let role = load_member(engine, name, account).await?;
        accounts.insert(account.clone(), describe_member(&member, role.as_ref()));
    }
    Ok(Some(Response::with_data(json!({
        "target": set.target.kind().as_str(),
        "connection": connection,
        "cluster_id": cluster_id,
        "instance_id": instance_id,
        "service_account_names": set.service_account_names,
        "ttl": set.ttl_secs,
        "max_ttl": set.max_ttl_secs,
        "disable_check_in_enforcement": set.disable_check_in_enforcement,
        "password_policy": set.password_policy.clone().unwrap_or_default(),
        "dependents": set.dependents.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "service_accounts": accounts,
        "mount_owner_id": engine.owner_id().await?,
    }))))
}

pub(super) async fn delete_set(
    engine: &Arc<Engine>,
    _: &Request,
    data: &FieldData,
) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let storage = engine.store.storage.as_ref();
    let roles_guard = engine.store.lock(LockKey::Roles).await;
    let Some(set) = library::load(storage, name).await? else {
        return Ok(None);
    };
    let accounts: Vec<&String> = set.service_account_names.iter().collect();
    let member_guards = lock_members(engine, name, &accounts).await;
    let mut members = Vec::new();
    let mut out = Vec::new();
    for account in &set.service_account_names {
        let Some(role) = load_member(engine, name, account).await? else {
            continue;
        };
        if role.state.checkout.is_some() {
            out.push(account.as_str());
        }
        members.push((account.clone(), role));
    }
    if !out.is_empty() {
        return Err(Error::conflict(format!(
            "library set {name:?} has service accounts checked out ({}); their borrowers check them in with library/{name}/check-in, or library/manage/{name}/check-in does it for anyone, then delete the set",
            out.join(", ")
        )));
    }
    for (account, role) in &members {
        path_roles::refuse_unfinished_rotation(&library::member_role(name, account), role)?;
    }
    for (account, _) in &members {
        engine
            .store
            .delete_role(&library::member_role(name, account))
            .await?;
    }
    library::delete(storage, name).await?;
    drop((member_guards, roles_guard));
    let mut warnings = Vec::new();
    for (account, role) in &members {
        warnings.extend(
            path_roles::release_claim(engine, &library::member_role(name, account), role).await,
        );
    }
    Ok(path_roles::warned(warnings))
}
