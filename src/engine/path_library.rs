//! Library sets, as Vault's LDAP engine names them: `library/:name` (a
//! pool of service accounts on one PolarDB cluster or DCS instance),
//! `library/:name/check-out` (lend the first free one under a lease),
//! `library/:name/check-in` (the borrower gives it back; it rotates),
//! `library/manage/:name/check-in` (anyone the policy lets through),
//! `library/:name/status`, and ours: `library/:name/rotate` and
//! `library/:name/history`. `library/` lists the sets.
//!
//! Each service account is a role record (`library::member_role`), so its
//! rotation at check-in, lease end or `rotate` is the ordinary saga.

// Provider errors are large (request ids, codes) and rare; see providers.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::OwnedMutexGuard;

use crate::framework::{
    Error, Field, FieldData, HandlerResult, LeaseGrant, Operation, Path, Request, Response,
    SecretType, validate_name,
};
use crate::handler;
use crate::providers::ErrorKind;

use super::calls;
use super::clock::rfc3339;
use super::cloud::TargetState;
use super::core::Engine;
use super::history;
use super::library::{self, Borrower, LibrarySet};
use super::path_roles::{self, non_empty};
use super::role::{
    Dependent, DependentStatus, Role, RoleKind, Status, Target, TargetKind, Trigger,
};
use super::rotation::execute::{self, RotateRequest};
use super::rotation::plan::RunOutcome;
use super::store::LockKey;

/// The secret type of a check-out's lease (the LDAP engine's name).
pub const SECRET_TYPE: &str = "checkout-creds";

/// The targets a set can lend accounts of.
const TARGETS: [&str; 2] = [
    TargetKind::PolardbAccount.as_str(),
    TargetKind::DcsInstance.as_str(),
];

fn name_field() -> Field {
    Field::string("name", "Name of the library set.")
}

fn accounts_field(description: &'static str) -> Field {
    Field::list("service_account_names", description).max_len(128)
}

fn set_fields() -> Vec<Field> {
    vec![
        name_field(),
        Field::string("target", "Where the service accounts live: polardb-account (accounts of one PolarDB cluster) or dcs-instance (one DCS instance: ACL accounts, and default for the instance password). Cannot be changed.")
            .one_of(&TARGETS)
            .required(),
        Field::string("connection", "Connection (config/:name) that reaches the target; it must allow the set's name (allowed_roles). Cannot be changed.").max_len(128),
        Field::string("cluster_id", "polardb-account: the PolarDB cluster id (pc-...). Cannot be changed.").max_len(128),
        Field::string("instance_id", "dcs-instance: the DCS instance id. Cannot be changed.").max_len(128),
        accounts_field(
            "The service accounts to lend, in check-out order (the first free one is lent): PolarDB account names on the cluster, or DCS ACL account names on the instance, where default means the instance password (Redis's default user). Each must exist. Adding one rotates it (Vault sets its password); removing one leaves its password as it is and is refused while it is checked out.",
        )
        .required(),
        Field::duration("ttl", "How long a check-out lasts before it must be renewed (default 24h; 0: the mount's default lease TTL)."),
        Field::duration("max_ttl", "How long a check-out may last with renewals (default 24h; 0: the mount's max lease TTL, which also caps any value)."),
        Field::bool("disable_check_in_enforcement", "Let anyone who may write library/:name/check-in check in any service account, not only its borrower.")
            .default(false),
        Field::string("password_policy", "A Vault password policy to generate passwords with; it is checked against the target's rules when the set is written.").max_len(128),
        Field::list(
            "dependents",
            "Copies of a service account's password to keep in step: dts:<connection>/<dts_job_id>/<src|dest>/<service_account_name> (the account may be left out in a set of one), or, in a set of one only, drs:<connection>/<job_id>/<so|ta>.",
        )
        .max_len(256),
        Field::bool("take_over", "When adding service accounts: take those whose ownership marker names another Vault mount (that mount's role or set then reports claimed_elsewhere drift).")
            .default(false),
    ]
}

fn check_in_fields() -> Vec<Field> {
    vec![
        name_field(),
        accounts_field(
            "The service accounts to check in (default: the caller's own check-outs in this set). Accounts already in are skipped.",
        ),
    ]
}

const SET_HELP: &str = "\
A library set lends service accounts, one borrower at a time: POST library/:name/check-out gives the first free \
one with its password under a lease (renewable up to max_ttl); library/:name/check-in (its borrower) or \
library/manage/:name/check-in (anyone allowed there) gives it back, and so does the end of its lease. Every return \
rotates the account, so the password lent stops working. Creating the set, or adding an account, rotates that \
account; deleting it is refused while any account is out, and leaves the passwords as they are. Reads show the \
settings and each account's state (never a password).";

pub fn paths() -> Vec<Path<Engine>> {
    vec![
        // Before library/:name/..., as the LDAP engine orders them.
        Path::new("library/manage/{name}/check-in")
            .fields(check_in_fields())
            .on(Operation::Update, "Check in service accounts, whoever borrowed them.", handler!(manage_check_in))
            .help(
                "Check in service accounts of a set whoever borrowed them.",
                "The privileged check-in: no borrower check (a policy on library/manage/* decides who may). Without \
                 service_account_names it checks in the caller's own check-outs, else the one account out; name them \
                 when several are out. Each account checked in rotates. Returns check_ins.",
            ),
        Path::new("library/{name}/check-out")
            .fields([
                name_field(),
                Field::duration("ttl", "A shorter lending period than the set's ttl (a longer one is cut to it)."),
            ])
            .on(Operation::Update, "Check out a free service account of the set.", handler!(check_out))
            .help(
                "Check out a service account of a library set.",
                "Lends the first free service account of the set, with its password, under a lease of the set's ttl \
                 (or the shorter ttl asked for), renewable up to max_ttl. Returns service_account_name and password. \
                 When none is free: 400, saying when the first lease ends. The borrower is the caller's entity, or its \
                 token when it has none.",
            ),
        Path::new("library/{name}/check-in")
            .fields(check_in_fields())
            .on(Operation::Update, "Check in service accounts you borrowed.", handler!(check_in))
            .help(
                "Check in service accounts of a library set.",
                "Gives service accounts back: each rotates (the password lent stops working) and is free again. Only \
                 the borrower (the same entity, or the same token) may check an account in, unless the set has \
                 disable_check_in_enforcement; see library/manage/:name/check-in. Without service_account_names: the \
                 caller's own check-outs. Returns check_ins, the accounts this call checked in. The lease of an account \
                 checked in this way ends harmlessly: its revocation or expiry changes nothing, and it cannot be \
                 renewed.",
            ),
        Path::new("library/{name}/status")
            .fields([name_field()])
            .on(Operation::Read, "Read which service accounts are free.", handler!(status))
            .help(
                "Which service accounts of a set are free, and who has the others.",
                "One entry per service account: available, and for an account out borrower_entity_id or \
                 borrower_client_token (a hash of the borrower's token under a key of this mount, never the token) \
                 and expires_at; an account neither out nor available (being rotated, failed) shows status and \
                 status_reason.",
            ),
        Path::new("library/{name}/rotate")
            .fields([
                name_field(),
                accounts_field("The service accounts to rotate (default: every one not checked out)."),
            ])
            .on(Operation::Update, "Rotate service accounts that are not checked out.", handler!(rotate))
            .help(
                "Rotate service accounts of a set now.",
                "Runs the rotation saga on each service account named (default: all that are in), as a check-in \
                 would: the way out for an account whose rotation failed or whose target drifted. A checked-out \
                 account is refused when named (check it in instead, which rotates it). Returns rotated; an account \
                 whose rotation did not finish is named in a warning.",
            ),
        Path::new("library/{name}/history")
            .fields([name_field()])
            .on(Operation::Read, "Read the last rotations of each service account.", handler!(read_history))
            .help(
                "The last rotations of each service account of a set.",
                "service_accounts: for each account its last 20 rotations, newest first, as history/:name shows a \
                 role's (trigger create, check-in, lease-end, manual, propagate...). Never a password.",
            ),
        Path::new("library/{name}")
            .fields(set_fields())
            .on(Operation::Create, "Create a library set.", handler!(write_set))
            .on(Operation::Update, "Update a library set.", handler!(write_set))
            .on(Operation::Read, "Read a library set and its service accounts' state.", handler!(read_set))
            .on(Operation::Delete, "Delete a library set (no account may be checked out).", handler!(delete_set))
            .existence(handler!(set_exists))
            .help("Service accounts lent one borrower at a time.", SET_HELP),
        Path::new("library/")
            .on(Operation::List, "List library sets.", handler!(list_sets))
            .help("List library sets.", "Returns the names of all library sets."),
    ]
}

pub fn secret_types() -> Vec<SecretType<Engine>> {
    vec![SecretType {
        name: SECRET_TYPE,
        renew: handler!(renew),
        revoke: handler!(revoke),
    }]
}

// ---------------------------------------------------------------------
// The set: settings.

fn missing_set(name: &str) -> Error {
    Error::bad_request(format!(
        "library set {name:?} does not exist (write library/{name} first)"
    ))
}

async fn load_set(engine: &Engine, name: &str) -> Result<Option<LibrarySet>, Error> {
    library::load(engine.store.storage.as_ref(), name).await
}

/// The record of `account` of `set`, if it is one.
async fn load_member(engine: &Engine, set: &str, account: &str) -> Result<Option<Role>, Error> {
    Ok(engine
        .store
        .load_role(&library::member_role(set, account))
        .await?
        .filter(|role| role.kind == RoleKind::Library))
}

async fn set_exists(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> Result<bool, Error> {
    let name = data.str("name").unwrap_or_default();
    Ok(load_set(engine, name).await?.is_some())
}

async fn list_sets(engine: &Arc<Engine>, _: &Request, _: &FieldData) -> HandlerResult {
    Ok(Some(Response::list(
        library::list(engine.store.storage.as_ref()).await?,
    )))
}

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

/// The account names a request gives (trimmed, blanks dropped, each once).
fn requested_accounts(data: &FieldData) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in data.list("service_account_names").unwrap_or_default() {
        let name = name.trim();
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
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
fn desired_set(existing: Option<&LibrarySet>, data: &FieldData) -> Result<LibrarySet, Error> {
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
fn member_record(set: &LibrarySet, account: &str, stored: Option<Role>) -> Role {
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

/// What a set write does to one of its service accounts' records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Create,
    Update,
    None,
}

/// What is learnt about a service account before it joins a set: the
/// target as read (for its import rotation), and warnings.
struct Joining {
    target: Option<TargetState>,
    warnings: Vec<String>,
}

/// The checks made before an account joins a set, with provider calls
/// and no lock held: it exists (else 400), and its target carries no other
/// mount's ownership marker (else 409, unless `take_over`).
async fn check_joining(
    engine: &Engine,
    set_name: &str,
    set: &LibrarySet,
    accounts: &[String],
    take_over: bool,
) -> Result<BTreeMap<String, Joining>, Error> {
    let mut out = BTreeMap::new();
    if accounts.is_empty() {
        return Ok(out);
    }
    let first = member_record(set, &accounts[0], None);
    path_roles::check_connections(engine, set_name, &first).await?;
    engine.ensure_writable().await?;
    // Each account exists (DCS: each ACL account; default always does).
    let listed: Vec<&str> = accounts
        .iter()
        .map(String::as_str)
        .filter(|account| {
            !matches!(set.target, Target::DcsInstance { .. }) || set.is_acl_account(account)
        })
        .collect();
    let mut warnings: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let described = if listed.is_empty() {
        None
    } else {
        calls::describe_accounts(&engine.store, &first, &listed).await
    };
    if let Some(described) = described {
        let place = match &set.target {
            Target::PolardbAccount { cluster_id, .. } => format!("cluster {cluster_id}"),
            Target::DcsInstance { instance_id, .. } => format!("DCS instance {instance_id}"),
            Target::External => String::new(),
        };
        for (account, result) in listed.iter().zip(described) {
            match result {
                Ok(_) => {}
                Err(error) if error.code.as_deref() == Some(DCS_NO_ACL) => {
                    return Err(Error::bad_request(format!(
                        "{place} has no ACL accounts (ListAclAccounts answered {DCS_NO_ACL}), so {account:?} cannot be lent: DCS ACL accounts need Redis 4.0 or later (per DCS's API reference); lend default (the instance password) instead"
                    )));
                }
                Err(error) if error.kind == ErrorKind::NotFound => {
                    return Err(Error::bad_request(format!(
                        "service account {account:?} does not exist on {place}: create it ({}), then write the set again",
                        if set.is_acl_account(account) {
                            "CreateAclAccount"
                        } else {
                            "CreateAccount"
                        }
                    )));
                }
                Err(error) => warnings.entry((*account).to_owned()).or_default().push(format!(
                    "service account {account:?} on {place} could not be read ({error}); it was added unchecked"
                )),
            }
        }
    }
    for account in accounts {
        let role = member_record(set, account, None);
        let target = path_roles::check_claim(engine, &role, take_over).await?;
        out.insert(
            account.clone(),
            Joining {
                target,
                warnings: warnings.remove(account).unwrap_or_default(),
            },
        );
    }
    Ok(out)
}

/// DCS's answer to ListAclAccounts on an instance without ACL accounts
/// (`docs/provider-errors.md`).
const DCS_NO_ACL: &str = "DCS.4008";

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

async fn write_set(engine: &Arc<Engine>, request: &Request, data: &FieldData) -> HandlerResult {
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

/// What a rotation run for a write or a check-in tells the caller.
fn outcome_warning(set: &str, account: &str, what: &str, outcome: &RunOutcome) -> Option<String> {
    path_roles::run_warning(
        &format!("service account {account:?} of library set {set:?}: "),
        what,
        outcome,
        ", and the account is lent again after that",
        &format!(
            "read library/{set} for its state, and run library/{set}/rotate service_account_names={account} once fixed"
        ),
    )
}

/// `response` with `warnings`.
fn with_warnings(response: Response, warnings: Vec<String>) -> Response {
    warnings
        .into_iter()
        .fold(response, |response, text| response.warn(text))
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

async fn read_set(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
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

async fn delete_set(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
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

// ---------------------------------------------------------------------
// Lending.

/// The lending period of a check-out and its cap: the set's (0: the
/// mount's default and max), never past the mount's max; a shorter `ttl`
/// asked for wins. Also whether a longer one was asked for.
async fn lending(
    engine: &Engine,
    set: &LibrarySet,
    asked: Option<Duration>,
) -> Result<(Duration, Duration, bool), Error> {
    let mount_default = engine.system.default_lease_ttl().await?;
    let mount_max = engine.system.max_lease_ttl().await?;
    let max = match set.max_ttl_secs {
        0 => mount_max,
        secs => Duration::from_secs(secs).min(mount_max),
    };
    let mut ttl = match set.ttl_secs {
        0 => mount_default,
        secs => Duration::from_secs(secs),
    };
    let mut cut = false;
    if let Some(asked) = asked.filter(|a| !a.is_zero()) {
        if asked < ttl {
            ttl = asked;
        } else if asked > ttl {
            cut = true;
        }
    }
    Ok((ttl.min(max), max, cut))
}

/// What a check-out finds looking at one service account.
enum Look {
    /// Lent: its password and the check-out's id.
    Lent(String, String),
    /// Out until then (unless renewed).
    Out(time::OffsetDateTime),
    /// Neither out nor ready: its status.
    NotReady(Status),
    /// No record (a set write was interrupted).
    Missing,
}

/// Lends `account` if it is free; the caller holds its lock.
async fn lend(
    engine: &Engine,
    set: &str,
    account: &str,
    (ttl, max_ttl): (Duration, Duration),
    borrower: &Borrower,
) -> Result<Look, Error> {
    let Some(mut role) = load_member(engine, set, account).await? else {
        return Ok(Look::Missing);
    };
    if let Some(checkout) = &role.state.checkout {
        return Ok(Look::Out(checkout.expires_at));
    }
    let ready = role.state.in_flight.is_none() && role.state.status == Status::Ok;
    let Some(password) = role.state.password.clone().filter(|_| ready) else {
        return Ok(Look::NotReady(role.state.status));
    };
    let checkout = library::checkout(engine.clock.now(), ttl, max_ttl, borrower);
    let id = checkout.id.clone();
    role.state.next_rotation = Some(checkout.max_expires_at);
    role.state.checkout = Some(checkout);
    engine
        .store
        .commit_role(&library::member_role(set, account), &role)
        .await?;
    Ok(Look::Lent(password, id))
}

async fn check_out(engine: &Arc<Engine>, request: &Request, data: &FieldData) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let set = load_set(engine, name)
        .await?
        .ok_or_else(|| missing_set(name))?;
    let key = engine.borrower_key().await?;
    let borrower = Borrower::of(&request.client, &key);
    let asked = data.duration("ttl").filter(|_| data.provided("ttl"));
    let (ttl, max_ttl, cut) = lending(engine, &set, asked).await?;
    // An account someone is working on (a check-out, a rotation) is passed
    // over at first, so a check-out never waits behind a rotation while
    // another account is free; those are looked at last, waiting.
    let mut passed: Vec<&String> = Vec::new();
    let mut looks: Vec<(&String, Look)> = Vec::new();
    for account in &set.service_account_names {
        let member = library::member_role(name, account);
        let Some(_guard) = engine.store.try_lock(LockKey::Role(&member)) else {
            passed.push(account);
            continue;
        };
        looks.push((
            account,
            lend(engine, name, account, (ttl, max_ttl), &borrower).await?,
        ));
        if matches!(looks.last(), Some((_, Look::Lent(..)))) {
            break;
        }
    }
    if !matches!(looks.last(), Some((_, Look::Lent(..)))) {
        for account in passed {
            let member = library::member_role(name, account);
            let _guard = engine.store.lock(LockKey::Role(&member)).await;
            looks.push((
                account,
                lend(engine, name, account, (ttl, max_ttl), &borrower).await?,
            ));
            if matches!(looks.last(), Some((_, Look::Lent(..)))) {
                break;
            }
        }
    }
    let mut first_back: Option<time::OffsetDateTime> = None;
    let mut out = 0usize;
    let mut busy = Vec::new();
    for (account, look) in looks {
        match look {
            Look::Lent(password, checkout_id) => {
                return Ok(Some(lent(
                    name,
                    account,
                    password,
                    checkout_id,
                    (ttl, max_ttl),
                    cut,
                    &borrower,
                )));
            }
            Look::Out(until) => {
                out += 1;
                first_back = Some(first_back.map_or(until, |t| t.min(until)));
            }
            Look::NotReady(status) => busy.push(format!("{account} ({})", status.as_str())),
            Look::Missing => busy.push(format!("{account} (missing)")),
        }
    }
    let mut why = vec![format!(
        "no service account of library set {name:?} is available for check-out"
    )];
    if let Some(back) = first_back {
        why.push(format!(
            "{out} checked out, the first lease ends at {} unless renewed (or sooner, at a check-in)",
            rfc3339(back)
        ));
    }
    if !busy.is_empty() {
        why.push(format!(
            "not ready: {} (being rotated after a check-in, or failed: read library/{name})",
            busy.join(", ")
        ));
    }
    Err(Error::bad_request(format!(
        "{}; try again then, or add service accounts to the set",
        why.join("; ")
    )))
}

/// The answer to a check-out: the account and its password under a lease
/// whose data names the set, the account and this check-out.
fn lent(
    set: &str,
    account: &str,
    password: String,
    checkout_id: String,
    (ttl, max_ttl): (Duration, Duration),
    cut: bool,
    borrower: &Borrower,
) -> Response {
    let mut internal = Map::new();
    internal.insert("set_name".into(), set.into());
    internal.insert("service_account_name".into(), account.into());
    internal.insert("checkout_id".into(), checkout_id.into());
    let mut response = Response::with_data(json!({
        "service_account_name": account,
        "password": password,
    }))
    .with_lease(LeaseGrant {
        secret_type: SECRET_TYPE.into(),
        internal_data: internal,
        ttl,
        max_ttl,
        renewable: true,
    });
    if cut {
        response = response.warn(format!(
            "the ttl asked for is longer than library set {set:?} lends for; the lease lasts {}s (renew it up to max_ttl)",
            ttl.as_secs()
        ));
    }
    if !borrower.is_known() {
        response = response.warn(
            "the request carried neither an entity nor a token, so only library/manage/<set>/check-in (or a set with disable_check_in_enforcement) can check this account in before its lease ends",
        );
    }
    response
}

/// The lease's set, account and check-out.
fn lease_fields(request: &Request) -> Result<(String, String, String), Error> {
    let lease = request
        .secret
        .as_ref()
        .ok_or_else(|| Error::bad_request("no lease given"))?;
    let field = |key: &str| {
        lease
            .internal_data
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match (
        field("set_name"),
        field("service_account_name"),
        field("checkout_id"),
    ) {
        (Some(set), Some(account), Some(checkout)) => Ok((set, account, checkout)),
        _ => Err(Error::bad_request(
            "the lease's data is incomplete (set_name, service_account_name, checkout_id)",
        )),
    }
}

async fn renew(engine: &Arc<Engine>, request: &Request, _: &FieldData) -> HandlerResult {
    let (set_name, account, checkout_id) = lease_fields(request)?;
    let member = library::member_role(&set_name, &account);
    let _guard = engine.store.lock(LockKey::Role(&member)).await;
    let gone = || {
        Error::bad_request(format!(
            "service account {account:?} is no longer in library set {set_name:?}; this check-out cannot be renewed"
        ))
    };
    let set = load_set(engine, &set_name).await?.ok_or_else(gone)?;
    let mut role = load_member(engine, &set_name, &account)
        .await?
        .ok_or_else(gone)?;
    let (ttl, _, _) = lending(engine, &set, None).await?;
    let now = engine.clock.now();
    let Some(checkout) = role.state.checkout.as_mut().filter(|c| c.id == checkout_id) else {
        return Err(Error::bad_request(format!(
            "service account {account:?} of library set {set_name:?} is already checked in (this check-out ended and its password was rotated); check out again with library/{set_name}/check-out"
        )));
    };
    let increment = request
        .secret
        .as_ref()
        .map(|lease| lease.increment)
        .filter(|i| !i.is_zero())
        .unwrap_or(ttl);
    let left = Duration::try_from(checkout.max_expires_at - now).unwrap_or_default();
    if left.is_zero() {
        return Err(Error::bad_request(format!(
            "this check-out of {account:?} reached its max_ttl at {}; check it in and out again",
            rfc3339(checkout.max_expires_at)
        )));
    }
    let granted = increment.min(left);
    checkout.expires_at = now + granted;
    let max_ttl =
        Duration::try_from(checkout.max_expires_at - checkout.issued_at).unwrap_or_default();
    let internal = request
        .secret
        .as_ref()
        .map(|lease| lease.internal_data.clone())
        .unwrap_or_default();
    engine.store.commit_role(&member, &role).await?;
    Ok(Some(Response::default().with_lease(LeaseGrant {
        secret_type: SECRET_TYPE.into(),
        internal_data: internal,
        ttl: granted,
        max_ttl,
        renewable: true,
    })))
}

/// The lease ended (revoke or expiry): its service account comes back and
/// rotates, unless that check-out already ended (checked in by hand, and
/// maybe lent again since): then nothing happens.
async fn revoke(engine: &Arc<Engine>, request: &Request, _: &FieldData) -> HandlerResult {
    let (set_name, account, checkout_id) = lease_fields(request)?;
    let member = library::member_role(&set_name, &account);
    let _guard = engine.store.lock(LockKey::Role(&member)).await;
    let Some(role) = load_member(engine, &set_name, &account).await? else {
        return Ok(None);
    };
    if role
        .state
        .checkout
        .as_ref()
        .is_none_or(|c| c.id != checkout_id)
    {
        return Ok(None);
    }
    let request = RotateRequest {
        end_checkout: Some(checkout_id),
        ..RotateRequest::new(Trigger::LeaseEnd)
    };
    let (outcome, _) = execute::rotate(engine, &member, role, request).await?;
    tracing::info!(set = %set_name, account = %account, outcome = outcome.status().as_str(), "check-out lease ended; rotated the service account");
    Ok(None)
}

async fn check_in(engine: &Arc<Engine>, request: &Request, data: &FieldData) -> HandlerResult {
    check_in_as(engine, request, data, false).await
}

async fn manage_check_in(
    engine: &Arc<Engine>,
    request: &Request,
    data: &FieldData,
) -> HandlerResult {
    check_in_as(engine, request, data, true).await
}

/// Checks service accounts in: each rotates, in the same write that ends
/// its check-out, and is lent again once the rotation finished.
async fn check_in_as(
    engine: &Arc<Engine>,
    request: &Request,
    data: &FieldData,
    manage: bool,
) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let set = load_set(engine, name)
        .await?
        .ok_or_else(|| missing_set(name))?;
    let key = engine.borrower_key().await?;
    let caller = Borrower::of(&request.client, &key);
    let enforced = !manage && !set.disable_check_in_enforcement;
    // Who has what now (read without locks; each is checked again under
    // its lock before it is checked in).
    let mut out: Vec<(String, String, bool)> = Vec::new();
    for account in &set.service_account_names {
        if let Some(checkout) = load_member(engine, name, account)
            .await?
            .and_then(|role| role.state.checkout)
        {
            out.push((
                account.clone(),
                checkout.id.clone(),
                caller.borrowed(&checkout),
            ));
        }
    }
    let asked = requested_accounts(data);
    let chosen: Vec<(String, String)> = if asked.is_empty() {
        let own: Vec<(String, String)> = out
            .iter()
            .filter(|(_, _, mine)| *mine)
            .map(|(a, id, _)| (a.clone(), id.clone()))
            .collect();
        if !own.is_empty() || enforced {
            own
        } else if out.len() > 1 {
            let names: Vec<&str> = out.iter().map(|(a, _, _)| a.as_str()).collect();
            return Err(Error::bad_request(format!(
                "several service accounts of library set {name:?} are checked out ({}) and none by the caller: say which to check in with service_account_names",
                names.join(", ")
            )));
        } else {
            out.iter()
                .map(|(a, id, _)| (a.clone(), id.clone()))
                .collect()
        }
    } else {
        let mut chosen = Vec::new();
        for account in &asked {
            if !set.service_account_names.contains(account) {
                return Err(Error::bad_request(format!(
                    "{account:?} is not a service account of library set {name:?} (its accounts: {})",
                    set.service_account_names.join(", ")
                )));
            }
            let Some((_, id, mine)) = out.iter().find(|(a, _, _)| a == account) else {
                // Already in: nothing to do, as the LDAP engine does.
                continue;
            };
            if enforced && !mine {
                return Err(Error::Coded {
                    status: 403,
                    message: format!(
                        "service account {account:?} of library set {name:?} was checked out by someone else: only its borrower (the same entity, or the same token) checks it in here; library/manage/{name}/check-in checks in anyone's, for whoever a policy lets write it"
                    ),
                });
            }
            chosen.push((account.clone(), id.clone()));
        }
        chosen
    };
    let mut check_ins = Vec::new();
    let mut warnings = Vec::new();
    for (account, checkout_id) in chosen {
        let member = library::member_role(name, &account);
        let _guard = engine.store.lock(LockKey::Role(&member)).await;
        let Some(role) = load_member(engine, name, &account).await? else {
            continue;
        };
        if role
            .state
            .checkout
            .as_ref()
            .is_none_or(|c| c.id != checkout_id)
        {
            // Its lease ended meanwhile: it is in already.
            continue;
        }
        let rotation = RotateRequest {
            end_checkout: Some(checkout_id),
            ..RotateRequest::new(Trigger::CheckIn)
        };
        let (outcome, _) = execute::rotate(engine, &member, role, rotation).await?;
        tracing::info!(set = %name, account = %account, forced = manage, outcome = outcome.status().as_str(), "checked in; rotated the service account");
        warnings.extend(outcome_warning(
            name,
            &account,
            "its rotation at check-in",
            &outcome,
        ));
        check_ins.push(account);
    }
    Ok(Some(with_warnings(
        Response::with_data(json!({ "check_ins": check_ins })),
        warnings,
    )))
}

async fn status(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let Some(set) = load_set(engine, name).await? else {
        return Ok(None);
    };
    let mut out = Map::new();
    for account in &set.service_account_names {
        let role = load_member(engine, name, account).await?;
        let mut entry = Map::new();
        match role.as_ref().and_then(|r| r.state.checkout.as_ref()) {
            Some(checkout) => {
                entry.insert("available".into(), false.into());
                if let Some(entity) = &checkout.borrower_entity_id {
                    entry.insert("borrower_entity_id".into(), entity.clone().into());
                }
                if let Some(token) = &checkout.borrower_client_token {
                    entry.insert("borrower_client_token".into(), token.clone().into());
                }
                entry.insert("expires_at".into(), rfc3339(checkout.expires_at).into());
            }
            None => {
                let ready = role.as_ref().is_some_and(|r| {
                    r.state.in_flight.is_none()
                        && r.state.status == Status::Ok
                        && r.state.password.is_some()
                });
                entry.insert("available".into(), ready.into());
                if !ready {
                    let (status, reason) = match &role {
                        Some(role) => (
                            role.state.status.as_str(),
                            role.state
                                .status_reason
                                .clone()
                                .unwrap_or_else(|| "waiting for its rotation to finish".to_owned()),
                        ),
                        None => (
                            "missing",
                            "its record is missing: write the set again to add it".to_owned(),
                        ),
                    };
                    entry.insert("status".into(), status.into());
                    entry.insert("status_reason".into(), reason.into());
                }
            }
        }
        out.insert(account.clone(), Value::Object(entry));
    }
    Ok(Some(Response {
        data: out,
        ..Response::default()
    }))
}

async fn rotate(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let set = load_set(engine, name)
        .await?
        .ok_or_else(|| missing_set(name))?;
    let asked = requested_accounts(data);
    for account in &asked {
        if !set.service_account_names.contains(account) {
            return Err(Error::bad_request(format!(
                "{account:?} is not a service account of library set {name:?} (its accounts: {})",
                set.service_account_names.join(", ")
            )));
        }
    }
    let accounts = if asked.is_empty() {
        set.service_account_names.clone()
    } else {
        asked.clone()
    };
    let mut rotated = Vec::new();
    let mut warnings = Vec::new();
    for account in accounts {
        let member = library::member_role(name, &account);
        let Some(_guard) = engine.store.try_lock(LockKey::Role(&member)) else {
            warnings.push(format!(
                "service account {account:?} is busy (being checked out, in or rotated); try again shortly"
            ));
            continue;
        };
        let Some(role) = load_member(engine, name, &account).await? else {
            continue;
        };
        if let Some(checkout) = &role.state.checkout {
            if asked.is_empty() {
                continue;
            }
            return Err(Error::conflict(format!(
                "service account {account:?} of library set {name:?} is checked out (until {} unless renewed): check it in instead, which rotates it",
                rfc3339(checkout.expires_at)
            )));
        }
        let (outcome, _) =
            execute::rotate(engine, &member, role, RotateRequest::new(Trigger::Manual)).await?;
        match outcome {
            RunOutcome::Rotated { .. } => rotated.push(account),
            other => warnings.extend(outcome_warning(name, &account, "its rotation", &other)),
        }
    }
    Ok(Some(with_warnings(
        Response::with_data(json!({ "rotated": rotated })),
        warnings,
    )))
}

async fn read_history(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let Some(set) = load_set(engine, name).await? else {
        return Ok(None);
    };
    let mut accounts = Map::new();
    for account in &set.service_account_names {
        let entries = history::load(
            engine.store.storage.as_ref(),
            &library::member_role(name, account),
        )
        .await?;
        let rotations: Vec<Value> = entries.iter().rev().map(history::Entry::describe).collect();
        accounts.insert(account.clone(), Value::from(rotations));
    }
    Ok(Some(Response::with_data(
        json!({ "service_accounts": accounts }),
    )))
}
