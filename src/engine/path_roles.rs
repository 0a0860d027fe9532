//! `static-roles/:name`: a password Vault owns and rotates on schedule,
//! mapped to its target and to every job that keeps a copy of it.
//! `static-roles/` lists them. [`accounts`] holds what a dual-account role
//! (`usernames`) needs when it is written. Library sets (`path_library`)
//! reuse the checks and the claim release made here for their service
//! accounts.

pub(super) mod accounts;

use std::sync::Arc;

use crate::framework::{
    Error, Field, FieldData, HandlerResult, Operation, Path, Request, Response,
};
use crate::handler;

use super::calls;
use super::cloud::TargetState;
use super::connection::Provider;
use super::core::Engine;
use super::marker;
use super::password;
use super::role::Trigger;
use super::role::{Dependent, DependentStatus, Phase, Role, RoleKind, Target, TargetKind};
use super::rotation::execute::{self, RotateRequest};
use super::rotation::plan::RunOutcome;
use super::schedule;
use super::store::LockKey;

fn common_fields() -> Vec<Field> {
    vec![
        Field::string("name", "Name of the role."),
        Field::string("target", "Where the password lives: polardb-account, dcs-instance or external. Cannot be changed.")
            .one_of(&TargetKind::NAMES)
            .required(),
        Field::string("connection", "Connection (config/:name) that reaches the target. Cannot be changed.").max_len(128),
        Field::string("cluster_id", "polardb-account: the PolarDB cluster id (pc-...). Cannot be changed.").max_len(128),
        Field::string(
            "username",
            "polardb-account: the account name (required unless usernames is given; cannot be changed). Others: the user name to hand out and the default user of DTS dependents.",
        )
        .max_len(128),
        Field::list(
            "usernames",
            "Static polardb-account and dcs-instance roles: two accounts that take turns, instead of username (a dual-account role). Both must exist with the same privileges (PolarDB: account type and database grants; DCS: ACL accounts, not default, with the same role, read or write, on an instance that has ACL accounts). External targets cannot have two. Each rotation changes the inactive account, then static-creds serves it while the other keeps working until the next rotation. Creating the role rotates both, one after the other; a DCS reset settles first, so the write may return before the second, which Vault then runs by itself. Cannot be changed, and a single-account role cannot become one. Limits: no password adoption, no DRS dependents, each DTS dependent names its account (/<username>) and holds that account's password, no dcs_change_method.",
        )
        .max_len(128),
        Field::string("instance_id", "dcs-instance: the DCS instance id. Cannot be changed.").max_len(128),
        Field::list(
            "dependents",
            "Copies of the password to keep in step: dts:<connection>/<dts_job_id>/<src|dest>[/<username>] or drs:<connection>/<job_id>/<so|ta>. A dual-account role takes DTS copies only, each naming its account (/<username>, required).",
        )
        .max_len(256),
        Field::string(
            "password",
            "The target's current password, to adopt it (write-only; 8-128 printable ASCII characters without whitespace). Needed with skip_import_rotation; accepted only before Vault first rotates the role (later, rotate-role password=... adopts).",
        )
        .sensitive()
        .max_len(256),
        Field::bool(
            "take_over",
            "When creating a role: take a polardb-account or dcs-instance target whose ownership marker names another Vault mount. That mount's role then reports claimed_elsewhere drift; delete it there.",
        )
        .default(false),
        Field::bool(
            "skip_import_rotation",
            "Do not rotate when the role is created (then password is required).",
        )
        .default(false),
        Field::string(
            "password_policy",
            "A Vault password policy to generate passwords with; it is checked against the target's rules when the role is written.",
        )
        .max_len(128),
        Field::string(
            "dcs_change_method",
            "dcs-instance: change the password with the old one (update, proves Vault held the live password) or without it (reset).",
        )
        .one_of(&["update", "reset"]),
    ]
}

fn static_fields() -> Vec<Field> {
    let mut fields = common_fields();
    fields.extend(schedule::fields());
    fields
}

const STATIC_HELP: &str = "\
A static role maps a Vault role to the place its password lives (a PolarDB account, a DCS instance, or an external \
target) and to every DTS/DRS job endpoint that keeps a copy. Vault owns the password: creating the role rotates it \
(unless skip_import_rotation), then it rotates every rotation_period or on rotation_schedule, and each rotation \
updates the target and every dependent in one crash-safe saga. Vault marks PolarDB and DCS targets with an \
ownership marker in their description, which tells when the target holds a password Vault did not set (status \
drifted) and keeps a second mount from owning the same target. Reads show the settings, status, drift and drift \
check, last error and the state of each dependent; never a password (read static-creds/:name).";

pub fn paths() -> Vec<Path<Engine>> {
    vec![
        Path::new("static-roles/{name}")
            .fields(static_fields())
            .on(
                Operation::Create,
                "Create a static role.",
                handler!(write_static),
            )
            .on(
                Operation::Update,
                "Update a static role.",
                handler!(write_static),
            )
            .on(
                Operation::Read,
                "Read a static role, its status and dependents.",
                handler!(read_static),
            )
            .on(
                Operation::Delete,
                "Delete a static role (the password stays as it is).",
                handler!(delete_static),
            )
            .existence(handler!(exists_static))
            .help(
                "A password Vault owns, its target and its dependents.",
                STATIC_HELP,
            ),
        Path::new("static-roles/")
            .on(Operation::List, "List static roles.", handler!(list_static))
            .help(
                "List static roles.",
                "Returns the names of all static roles.",
            ),
    ]
}

async fn write_static(engine: &Arc<Engine>, request: &Request, data: &FieldData) -> HandlerResult {
    write(engine, request, data).await
}
async fn read_static(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
    read(engine, data).await
}
async fn delete_static(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
    delete(engine, data).await
}
async fn exists_static(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> Result<bool, Error> {
    exists(engine, data).await
}
async fn list_static(engine: &Arc<Engine>, _: &Request, _: &FieldData) -> HandlerResult {
    Ok(Some(Response::list(
        engine
            .store
            .index()
            .await?
            .lock()
            .expect("index lock")
            .names(RoleKind::Static),
    )))
}

/// The role of `kind` called `name`, if there is one.
pub async fn load_kind(engine: &Engine, name: &str, kind: RoleKind) -> Result<Option<Role>, Error> {
    Ok(engine
        .store
        .load_role(name)
        .await?
        .filter(|role| role.kind == kind))
}

async fn exists(engine: &Arc<Engine>, data: &FieldData) -> Result<bool, Error> {
    Ok(load_kind(
        engine,
        data.str("name").unwrap_or_default(),
        RoleKind::Static,
    )
    .await?
    .is_some())
}

async fn read(engine: &Arc<Engine>, data: &FieldData) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let Some(role) = load_kind(engine, name, RoleKind::Static).await? else {
        return Ok(None);
    };
    let mut out = role.describe(name);
    out.insert("mount_owner_id".into(), engine.owner_id().await?.into());
    Ok(Some(Response {
        data: out,
        ..Response::default()
    }))
}

async fn delete(engine: &Arc<Engine>, data: &FieldData) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let _roles = engine.store.lock(LockKey::Roles).await;
    let _role = engine.store.lock(LockKey::Role(name)).await;
    let Some(role) = load_kind(engine, name, RoleKind::Static).await? else {
        return Ok(None);
    };
    refuse_unfinished_rotation(name, &role)?;
    engine.store.delete_role(name).await?;
    drop((_role, _roles));
    Ok(release_claim(engine, name, &role)
        .await
        .map(|warning| Response::default().warn(warning)))
}

/// A role (or service account) whose rotation may already have set a new
/// password cannot be deleted: Vault would forget a password only it knows.
pub(super) fn refuse_unfinished_rotation(name: &str, role: &Role) -> Result<(), Error> {
    if let Some(flight) = role
        .state
        .in_flight
        .as_ref()
        .filter(|f| f.phase != Phase::Prepared)
    {
        return Err(Error::conflict(format!(
            "{} has a rotation in flight (started {}) whose new password may already be live; finish it with {} before deleting it, or Vault would forget a password only it knows",
            super::library::describe_role(name),
            super::clock::rfc3339(flight.started_at),
            super::library::rotate_hint(name)
        )));
    }
    Ok(())
}

/// Removes this mount's ownership marker from a deleted role's target
/// (both accounts of a dual PolarDB role), so another mount may take it
/// without take_over. Best effort: a warning says when it could not.
pub(super) async fn release_claim(engine: &Engine, name: &str, role: &Role) -> Option<String> {
    let rule = role.marker_rule()?;
    let mut problems = Vec::new();
    for account in role.marked_accounts() {
        let read = calls::read_target(&engine.store, role, account).await?;
        let released = async {
            let owner = engine.owner_id().await.map_err(|e| e.to_string())?;
            let target = read.map_err(|e| e.to_string())?;
            match marker::release(&target.description, &owner, rule) {
                Some(description) => {
                    calls::write_description(&engine.store, role, account, &description)
                        .await
                        .map_err(|e| e.to_string())
                }
                None => Ok(()),
            }
        }
        .await;
        if let Err(why) = released {
            problems.push(if role.marked_accounts().len() > 1 {
                format!("account {account}: {why}")
            } else {
                why
            });
        }
    }
    if problems.is_empty() {
        return None;
    }
    let why = problems.join("; ");
    tracing::warn!(role = name, error = %why, "could not remove the ownership marker of a deleted role");
    Some(format!(
        "{} deleted, but its ownership marker stays on the target ({why}); another mount taking the target needs take_over=true",
        super::library::describe_role(name)
    ))
}

pub(super) fn non_empty(data: &FieldData, name: &str) -> Option<String> {
    data.str(name)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A write to an existing role or library set (`what`) leaves its target
/// as it is: the same kind, connection, cluster or instance.
pub(super) fn unchanged_target(target: &Target, data: &FieldData, what: &str) -> Result<(), Error> {
    let changed = |field: &str, old: &str| match non_empty(data, field) {
        Some(new) if data.provided(field) && !old.is_empty() && new != old => {
            Err(Error::bad_request(format!(
                "{field} cannot be changed (it is {old:?}); delete the {what} and create it again"
            )))
        }
        _ => Ok(()),
    };
    if data.provided("target") && data.str("target") != Some(target.kind().as_str()) {
        return Err(Error::bad_request(format!(
            "target cannot be changed (it is {}); delete the {what} and create it again",
            target.kind()
        )));
    }
    let (connection, cluster_id, instance_id) = target.fields();
    changed("connection", connection)?;
    changed("cluster_id", cluster_id)?;
    changed("instance_id", instance_id)
}

/// The target a create asks for, or the stored one checked against what an
/// update asks for.
fn target(existing: Option<&Role>, data: &FieldData) -> Result<Target, Error> {
    if let Some(role) = existing {
        unchanged_target(&role.target, data, "role")?;
        if let (Target::PolardbAccount { .. }, Some(old), Some(new)) = (
            &role.target,
            role.username.as_deref(),
            non_empty(data, "username").filter(|_| data.provided("username")),
        ) && old != new
        {
            return Err(Error::bad_request(format!(
                "username cannot be changed (it is {old:?}); delete the role and create it again"
            )));
        }
        return Ok(role.target.clone());
    }
    let require = |field: &str, kind: &str| {
        non_empty(data, field)
            .ok_or_else(|| Error::bad_request(format!("target {kind} needs {field}")))
    };
    let refuse = |field: &str, kind: &str| match non_empty(data, field) {
        Some(_) => Err(Error::bad_request(format!(
            "{field} does not apply to target {kind}"
        ))),
        None => Ok(()),
    };
    let kind: TargetKind = data
        .str("target")
        .unwrap_or_default()
        .parse()
        .map_err(Error::BadRequest)?;
    let kind_name = kind.as_str();
    match kind {
        TargetKind::PolardbAccount => {
            let kind = kind_name;
            refuse("instance_id", kind)?;
            if accounts::requested_usernames(data).is_empty() {
                require("username", kind)?;
            }
            Ok(Target::PolardbAccount {
                connection: require("connection", kind)?,
                cluster_id: require("cluster_id", kind)?,
            })
        }
        TargetKind::DcsInstance => {
            let kind = kind_name;
            refuse("cluster_id", kind)?;
            Ok(Target::DcsInstance {
                connection: require("connection", kind)?,
                instance_id: require("instance_id", kind)?,
            })
        }
        TargetKind::External => {
            let kind = kind_name;
            refuse("connection", kind)?;
            refuse("cluster_id", kind)?;
            refuse("instance_id", kind)?;
            Ok(Target::External)
        }
    }
}

/// Applies the fields of a write to the stored role (or a new one).
fn apply(existing: Option<Role>, data: &FieldData) -> Result<Role, Error> {
    let target = target(existing.as_ref(), data)?;
    let creating = existing.is_none();
    let mut role = existing.unwrap_or_else(|| Role::new(RoleKind::Static, target.clone()));
    accounts::apply_usernames(&mut role, creating, data)?;
    if data.provided("username") && !role.is_dual() {
        role.username = non_empty(data, "username");
    }
    if data.provided("dependents") {
        let mut dependents = Vec::new();
        for spec in data.list("dependents").unwrap_or_default() {
            let dependent = if role.is_dual() {
                accounts::parse_dependent(spec, &role.usernames)?
            } else {
                Dependent::parse(spec, role.username.as_deref()).map_err(Error::BadRequest)?
            };
            if dependents
                .iter()
                .any(|d: &Dependent| d.resource_id() == dependent.resource_id())
            {
                return Err(Error::bad_request(format!(
                    "dependent {spec:?} is listed twice"
                )));
            }
            dependents.push(dependent);
        }
        role.dependents = dependents;
    }
    if data.provided("password_policy") {
        role.password_policy = non_empty(data, "password_policy");
    }
    if data.provided("dcs_change_method") {
        accounts::refuse_dcs_change_method(&role)?;
        if !matches!(role.target, Target::DcsInstance { .. }) {
            return Err(Error::bad_request(
                "dcs_change_method applies to dcs-instance targets only",
            ));
        }
        role.dcs_reset = data.str("dcs_change_method") == Some("reset");
    }
    role.schedule.update_from(data)?;
    if role.target == Target::External && role.schedule.is_automatic() {
        return Err(Error::bad_request(
            "external targets rotate only when you give a password to rotate-role; drop rotation_period/rotation_schedule",
        ));
    }
    accounts::refuse_adoption(&role, data)?;
    Ok(role)
}

/// Checks what needs storage or the host: connections, owners, policy.
async fn validate(engine: &Engine, name: &str, role: &Role) -> Result<(), Error> {
    check_connections(engine, name, role).await?;
    validate_owners_and_policy(engine, name, role).await
}

/// Every connection the role names exists, is of the right cloud and
/// allows the role (a library set's service accounts: the set's name).
pub(super) async fn check_connections(
    engine: &Engine,
    name: &str,
    role: &Role,
) -> Result<(), Error> {
    let mut uses: Vec<(&str, Provider, &'static str)> = Vec::new();
    match &role.target {
        Target::PolardbAccount { connection, .. } => {
            uses.push((connection, Provider::Alicloud, "polardb-account targets"))
        }
        Target::DcsInstance { connection, .. } => {
            uses.push((connection, Provider::Huaweicloud, "dcs-instance targets"))
        }
        Target::External => {}
    }
    for dependent in &role.dependents {
        match dependent {
            Dependent::Dts { connection, .. } => {
                uses.push((connection, Provider::Alicloud, "dts dependents"))
            }
            Dependent::Drs { connection, .. } => {
                uses.push((connection, Provider::Huaweicloud, "drs dependents"))
            }
        }
    }
    for (connection, provider, what) in uses {
        engine
            .check_connection(connection, provider, what, name)
            .await?;
    }
    Ok(())
}

async fn validate_owners_and_policy(engine: &Engine, name: &str, role: &Role) -> Result<(), Error> {
    check_owners(engine, name, role).await?;
    check_policy(engine, role).await
}

/// Nothing the role claims belongs to another role (or service account).
pub(super) async fn check_owners(engine: &Engine, name: &str, role: &Role) -> Result<(), Error> {
    if let Some((resource, owner)) = engine
        .store
        .index()
        .await?
        .lock()
        .expect("index lock")
        .conflict(name, role)
    {
        return Err(Error::bad_request(format!(
            "{resource} already belongs to {}; a target or dependent can belong to one role or library service account only",
            super::library::describe_role(&owner)
        )));
    }
    Ok(())
}

/// The role's password policy makes passwords its target takes.
pub(super) async fn check_policy(engine: &Engine, role: &Role) -> Result<(), Error> {
    if let Some(policy) = &role.password_policy {
        engine.check_policy(policy, role.target.rules()).await?;
    }
    Ok(())
}

async fn write(engine: &Arc<Engine>, request: &Request, data: &FieldData) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let take_over = data.bool("take_over").unwrap_or(false);
    // A new role's claim check reads its target before the global lock:
    // no provider call holds every role write up, and the reads of
    // concurrent creations are coalesced.
    let mut warnings = Vec::new();
    let early_claim = match (request.operation, engine.store.load_role(name).await?) {
        (Operation::Create, None) => {
            let provisional = apply(None, data)?;
            check_connections(engine, name, &provisional).await?;
            let read = check_claim(engine, &provisional, take_over).await?;
            warnings = accounts::check(engine, &provisional).await?;
            Some(read)
        }
        _ => None,
    };
    let roles_guard = engine.store.lock(LockKey::Roles).await;
    let _role_guard = engine.store.lock(LockKey::Role(name)).await;
    let existing = engine.store.load_role(name).await?;
    if existing.is_none() {
        super::dynamic::role::refuse_taken(engine, name).await?;
    }
    if existing
        .as_ref()
        .is_some_and(|role| role.kind != RoleKind::Static)
    {
        return Err(Error::bad_request(format!(
            "name {name:?} is taken by a leased role an earlier version stored; leased roles became library sets (see the CHANGELOG): delete it with that version, or choose another name"
        )));
    }
    if request.operation == Operation::Update && existing.is_none() {
        return Err(Error::bad_request(format!("role {name:?} does not exist")));
    }
    let creating = existing.is_none();
    let old_schedule = existing.as_ref().map(|role| role.schedule.clone());
    let old_dependents: Vec<String> = existing
        .iter()
        .flat_map(|r| r.dependents.iter().map(ToString::to_string))
        .collect();
    let mut role = apply(existing, data)?;
    if take_over && !creating {
        return Err(Error::bad_request(
            "take_over applies when creating a role; an existing role takes its target back with rotate-role (read its drift for the way out)",
        ));
    }
    let target_read = match (creating, early_claim) {
        (true, Some(read)) => read,
        // Deleted between the first look and the lock. Read before the
        // connections are locked: a rejected key records itself under the
        // connection's lock.
        (true, None) => {
            warnings = accounts::check(engine, &role).await?;
            check_claim(engine, &role, take_over).await?
        }
        (false, _) => None,
    };
    // Held until the role is stored: a connection it names cannot be
    // deleted between the check and the write. No cloud call while held.
    let connection_guards = engine.store.lock_connections(&role.connections()).await;
    validate(engine, name, &role).await?;

    let skip_import = data.bool("skip_import_rotation").unwrap_or(false);
    if data.provided("password") {
        let password = non_empty(data, "password")
            .ok_or_else(|| Error::bad_request("password must not be empty"))?;
        if role.state.last_vault_rotation.is_some() || role.state.in_flight.is_some() {
            return Err(Error::bad_request(
                "password can only be given before Vault first rotates the role; Vault owns it now (use rotate-role)",
            ));
        }
        if let Err(why) = password::EXTERNAL.check(&password) {
            return Err(Error::bad_request(format!(
                "password refused: {why} (the plugin's rule for a password it adopts and copies into jobs)"
            )));
        }
        role.state.password = Some(password);
    }
    if creating && skip_import && role.target != Target::External && role.state.password.is_none() {
        return Err(Error::bad_request(
            "skip_import_rotation needs password: the target's current password, or Vault would have nothing to hand out",
        ));
    }
    let now = engine.clock.now();
    let schedule_changed = old_schedule.as_ref() != Some(&role.schedule);
    if role.state.in_flight.is_none() && (creating || schedule_changed) {
        let since = role.state.last_vault_rotation.or(Some(now));
        role.state.next_rotation = role.schedule.next_after(since, now);
    }
    let added: Vec<String> = role
        .dependents
        .iter()
        .map(ToString::to_string)
        .filter(|id| !old_dependents.contains(id))
        .collect();
    let added_dependents = !added.is_empty();
    // A new copy holds no password Vault set until a run gives it one.
    for id in added {
        role.state.dependents.entry(id).or_default().status = DependentStatus::Pending;
    }
    engine.store.commit_role(name, &role).await?;
    drop((connection_guards, roles_guard));

    let follow_up = if creating && !skip_import && role.target != Target::External {
        Some(RotateRequest::new(Trigger::Create))
    } else if creating && role.target != Target::External && role.state.password.is_some() {
        // The adopted password: marked on the target, pushed to the copies.
        Some(RotateRequest::new(Trigger::Adopt))
    } else if added_dependents && role.state.password.is_some() && role.state.in_flight.is_none() {
        Some(RotateRequest::new(Trigger::Propagate))
    } else {
        None
    };
    let Some(mut follow_up) = follow_up else {
        return Ok(warned(warnings));
    };
    follow_up.target = target_read;
    let trigger = follow_up.trigger;
    let outcome = execute::run(engine, name, follow_up).await?;
    warnings.extend(warning(name, trigger, &outcome));
    if role.is_dual() {
        warnings.extend(accounts::follow_up(engine, name, trigger, &outcome).await?);
    }
    Ok(warned(warnings))
}

pub(super) fn warned(warnings: Vec<String>) -> Option<Response> {
    if warnings.is_empty() {
        return None;
    }
    Some(
        warnings
            .into_iter()
            .fold(Response::default(), |response, text| response.warn(text)),
    )
}

/// Refuses a new role whose target carries another mount's ownership
/// marker, unless `take_over`. A target whose marker cannot be read is
/// accepted: the role's drift check says why.
/// Gives the target as read, for the rotation or adoption that follows.
pub(super) async fn check_claim(
    engine: &Engine,
    role: &Role,
    take_over: bool,
) -> Result<Option<TargetState>, Error> {
    if role.marker_rule().is_none() {
        return Ok(None);
    }
    // A standby forwards the write: no provider call from here.
    engine.ensure_writable().await?;
    let Some(Ok(target)) = calls::read_target(&engine.store, role, role.acting_account()).await
    else {
        return Ok(None);
    };
    let owner = engine.owner_id().await?;
    match marker::find(&target.description) {
        Some(theirs) if theirs.owner != owner && !take_over => Err(Error::conflict(format!(
            "the target is claimed by another Vault mount (owner {}; this mount is {owner}): two mounts rotating it would invalidate each other's password; delete the role in the other mount (which removes its marker), or write this role with take_over=true",
            theirs.owner
        ))),
        _ => Ok(Some(target)),
    }
}

/// What a rotation run as part of a write tells the writer.
fn warning(name: &str, trigger: Trigger, outcome: &RunOutcome) -> Option<String> {
    let what = match trigger {
        Trigger::Create => "the import rotation",
        Trigger::Adopt => "marking the target and pushing the adopted password to the dependents",
        _ => "propagating the password to the new dependents",
    };
    warning_about(name, what, outcome)
}

/// What run `what` of a write tells the writer.
fn warning_about(name: &str, what: &str, outcome: &RunOutcome) -> Option<String> {
    run_warning(
        &format!("role {name:?} saved, but "),
        what,
        outcome,
        "",
        &format!("read static-roles/{name} for its status and run rotate-role/{name} once fixed"),
    )
}

/// What a run (`what`) that did not finish tells the caller: `subject`
/// begins the sentence, `then` follows a deferral or a retry, `fix`
/// follows a failure.
pub(super) fn run_warning(
    subject: &str,
    what: &str,
    outcome: &RunOutcome,
    then: &str,
    fix: &str,
) -> Option<String> {
    match outcome {
        RunOutcome::Rotated { .. } | RunOutcome::NotDue => None,
        RunOutcome::Drifted { message } => Some(format!("{subject}{what} stopped: {message}")),
        RunOutcome::Deferred { reason } => Some(format!(
            "{subject}{what} is deferred: {reason}; it completes automatically once the jobs accept changes{then}"
        )),
        RunOutcome::Retrying { message, .. } => Some(format!(
            "{subject}{what} did not finish: {message}; retries continue in the background{then}"
        )),
        RunOutcome::Failed { message } => Some(format!("{subject}{what} failed: {message}; {fix}")),
    }
}
