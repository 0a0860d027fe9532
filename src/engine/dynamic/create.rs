//! A `creds/:name` read: a fresh account for one lease. In order:
//!
//! 1. render the name (a rule broken: 400) and generate the password;
//! 2. look the name up: taken means a new name (the WAL entry must name
//!    an account only this read creates, or its rollback could delete
//!    someone else's);
//! 3. write the WAL entry, then create the account: a definite refusal
//!    deletes the entry at once;
//! 4. wait (bounded, on the engine's clock) until the account is
//!    available, then grant each database;
//! 5. write the issued record, then delete the WAL entry; only then
//!    answer. A failure after step 3 deletes the account at once if it
//!    can (so it does not hold a place in the cluster's account quota);
//!    otherwise the WAL entry stays and the rollback deletes it.

// Provider errors are large (request ids, codes) and rare; see calls.rs.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, json};

use crate::framework::{Error, LeaseGrant, Request, Response, wal};
use crate::providers::{ErrorClass, ErrorKind, ProviderError};

use super::super::calls;
use super::super::cloud::{AccountInfo, AccountKind, NewAccount, lacks_acl_accounts};
use super::super::core::Engine;
use super::super::password;
use super::super::role::Target;
use super::super::username_template::{Template, TemplateData};
use super::role::{self, DynamicRole};
use super::{Account, GRACE, Issued, WAL_KIND, cleanup, no_acl_accounts, place};

/// The secret type of a dynamic account's lease, as Vault's database
/// engine names it.
pub const SECRET_TYPE: &str = "creds";

/// Renderings tried when a name is taken (a template with randomness
/// almost never collides; one without it always does).
const NAME_TRIES: usize = 3;

/// Passwords generated before a policy is blamed.
const PASSWORD_TRIES: usize = 10;

/// One `creds/:name` read.
pub async fn issue(
    engine: &Arc<Engine>,
    request: &Request,
    role_name: &str,
) -> Result<Response, Error> {
    let role = role::load(engine, role_name).await?.ok_or_else(|| {
        Error::bad_request(format!(
            "role {role_name:?} does not exist: create it with roles/{role_name}"
        ))
    })?;
    // A standby forwards the read: no provider call from here.
    engine.ensure_writable().await?;
    // The connection may have changed since the role was written.
    role.check_connection(engine, role_name).await?;
    let (ttl, max_ttl) = role.lease_ttls(engine).await?;
    let template = Template::parse(role.template()).map_err(|error| {
        Error::bad_request(format!(
            "role {role_name:?} has an invalid username_template ({error}): write roles/{role_name} again"
        ))
    })?;
    let name = fresh_name(engine, request, role_name, &role, &template).await?;
    let password = generate_password(engine, &role, &name).await?;
    let account = Account {
        name: name.clone(),
        role: role_name.to_owned(),
        target: role.target.clone(),
    };
    let now = engine.clock.now();
    let storage = engine.store.storage.as_ref();
    let wal_data = serde_json::to_value(&account)
        .map_err(|err| Error::internal(format!("cannot encode the WAL entry: {err}")))?;
    let wal_id = wal::put(storage, WAL_KIND, wal_data, now).await?;

    let new_account = NewAccount {
        name: name.clone(),
        password: password.clone().into(),
        kind: role.account_kind(),
        grants: role.grant_list(),
        description: Some(format!("Vault lease account of role {role_name}")),
    };
    let issued_at = match create_ready(engine, &role, &account, &new_account).await {
        Ok(()) => engine.clock.now(),
        Err(Failure::Refused(error)) => {
            // Nothing to undo. If the entry cannot be deleted, the
            // rollback finds no account and deletes it.
            if let Err(err) = wal::delete(storage, &wal_id).await {
                tracing::warn!(role = role_name, account = %name, error = %err, "could not delete the WAL entry of an account the cloud refused to create");
            }
            return Err(error);
        }
        Err(Failure::MaybeCreated(error)) => {
            return Err(undo_now(engine, &account, &wal_id, error).await);
        }
    };
    let max = time::Duration::try_from(max_ttl).unwrap_or(time::Duration::MAX);
    let issued = Issued {
        account,
        issued_at,
        deadline: issued_at.saturating_add(max).saturating_add(GRACE),
    };
    let recorded = match issued.save(engine).await {
        Ok(()) => wal::delete(storage, &wal_id).await,
        Err(err) => Err(err),
    };
    if let Err(err) = recorded {
        let error = Error::internal(format!(
            "creds for role {:?}: account {} was created but could not be recorded ({err})",
            role_name, issued.account.name
        ));
        return Err(undo_now(engine, &issued.account, &wal_id, error).await);
    }

    let mut internal = Map::new();
    internal.insert("username".into(), name.clone().into());
    internal.insert("role".into(), role_name.into());
    internal.insert("connection".into(), place_connection(&role.target).into());
    internal.insert("target".into(), json!(role.target));
    internal.insert("issued".into(), issued.key().into());
    internal.insert("issued_at".into(), issued_at.unix_timestamp().into());
    internal.insert("max_ttl".into(), max_ttl.as_secs().into());
    let mut response = Response::with_data(json!({ "username": name, "password": password }))
        .with_lease(LeaseGrant {
            secret_type: SECRET_TYPE.into(),
            internal_data: internal,
            ttl,
            max_ttl,
            renewable: true,
        });
    if let Some(warning) = cleanup::pending_warning(engine, role_name).await {
        response = response.warn(warning);
    }
    Ok(response)
}

/// How a read failed once its WAL entry was written.
enum Failure {
    /// The cloud refused to create the account: there is none.
    Refused(Error),
    /// The account may exist.
    MaybeCreated(Error),
}

/// Steps 3 (after the WAL entry) and 4: create, wait, grant.
async fn create_ready(
    engine: &Engine,
    role: &DynamicRole,
    account: &Account,
    new_account: &NewAccount,
) -> Result<(), Failure> {
    let created = calls::on_target(&engine.store, &role.target, |session| {
        let target = &role.target;
        async move { session.create_account(target, new_account).await }
    })
    .await;
    if let Err(error) = created {
        let maybe_created = !matches!(
            error.class,
            ErrorClass::Retryable | ErrorClass::Permanent | ErrorClass::Lockout { .. }
        );
        let error = failed(account, "create", &error);
        return Err(if maybe_created {
            Failure::MaybeCreated(error)
        } else {
            Failure::Refused(error)
        });
    }
    wait_available(engine, account)
        .await
        .map_err(Failure::MaybeCreated)?;
    calls::on_target(&engine.store, &role.target, |session| {
        let grants = &new_account.grants;
        let (target, name) = (&role.target, &account.name);
        async move { session.grant_account(target, name, grants).await }
    })
    .await
    .map_err(|error| Failure::MaybeCreated(failed(account, "grant", &error)))
}

/// A read failed after its account may have been created: deletes the
/// account now if it can, and says on `error` what became of it. What
/// cannot be deleted now (the cloud still creating it, or failing) stays
/// with the WAL entry for the rollback.
async fn undo_now(engine: &Engine, account: &Account, wal_id: &str, error: Error) -> Error {
    match cleanup::undo(engine, account).await {
        Ok(existed) => {
            if existed {
                tracing::info!(role = %account.role, account = %account.name, "deleted the account of a creds read that failed");
            }
            if let Err(err) = wal::delete(engine.store.storage.as_ref(), wal_id).await {
                // The rollback finds no account and deletes the entry.
                tracing::warn!(role = %account.role, account = %account.name, error = %err, "could not delete the WAL entry of a deleted account");
            }
            error.with_note(if existed {
                "the account was deleted"
            } else {
                "no account was left"
            })
        }
        Err(_) => error.with_note(&left_to_rollback(engine)),
    }
}

fn place_connection(target: &Target) -> &str {
    role::place(target).0
}

/// A name the role's template renders that no account of the target has
/// yet. The lookup also proves, before anything is written, that the
/// connection reaches the cluster or instance.
async fn fresh_name(
    engine: &Engine,
    request: &Request,
    role_name: &str,
    role: &DynamicRole,
    template: &Template,
) -> Result<String, Error> {
    let data = TemplateData {
        role_name,
        display_name: &request.client.display_name,
    };
    let mut taken = Vec::new();
    for _ in 0..NAME_TRIES {
        let now = engine.clock.now();
        let name = template
            .username(role.name_kind(), &data, now, &mut rand::rng())
            .map_err(|error| {
                Error::bad_request(format!(
                    "role {role_name:?}: {error}; fix username_template with roles/{role_name}"
                ))
            })?;
        let looked_up = calls::on_target(&engine.store, &role.target, |session| {
            let (target, name) = (&role.target, &name);
            async move { session.account_status(target, name).await }
        })
        .await;
        let probe = Account {
            name: name.clone(),
            role: role_name.to_owned(),
            target: role.target.clone(),
        };
        match looked_up {
            Ok(None) => return Ok(name),
            Ok(Some(_)) => taken.push(name),
            Err(error) => return Err(failed(&probe, "look-up", &error)),
        }
    }
    Err(Error::conflict(format!(
        "role {role_name:?}: the names its username_template rendered are taken on {} ({}): make the template give a fresh name each time (add random), with roles/{role_name}",
        place(&role.target),
        taken.join(", ")
    )))
}

/// A password from the role's policy or the built-in generator that the
/// target takes (a DCS ACL password must not hold the account's name).
async fn generate_password(
    engine: &Engine,
    role: &DynamicRole,
    name: &str,
) -> Result<String, Error> {
    let rules = role.target.rules();
    let dcs = matches!(role.account_kind(), AccountKind::DcsAcl(_));
    for _ in 0..PASSWORD_TRIES {
        let candidate = match &role.password_policy {
            Some(policy) => engine.system.generate_password_from_policy(policy).await?,
            None => rules.generate(),
        };
        let fits = rules.check(&candidate).is_ok()
            && (!dcs || password::check_account_name(name, &candidate).is_ok());
        if fits {
            return Ok(candidate);
        }
    }
    Err(Error::bad_request(format!(
        "password policy {:?} did not produce a password the target takes in {PASSWORD_TRIES} tries: fix the policy",
        role.password_policy.clone().unwrap_or_default()
    )))
}

fn available(info: &AccountInfo) -> bool {
    info.status
        .as_deref()
        .is_some_and(|status| status.eq_ignore_ascii_case("available"))
}

/// Statuses an account never leaves for available.
fn dead_end(info: &AccountInfo) -> bool {
    info.status.as_deref().is_some_and(|status| {
        [
            "createfailed",
            "error",
            "deleting",
            "deleted",
            "deletefailed",
        ]
        .contains(&status.to_ascii_lowercase().as_str())
    })
}

/// Polls the account until it is available, for at most the mount's
/// `account_ready_wait`, on the engine's clock.
async fn wait_available(engine: &Engine, account: &Account) -> Result<(), Error> {
    let wait = engine.tuning.account_ready_wait;
    let poll = engine
        .tuning
        .account_ready_poll
        .max(Duration::from_millis(10));
    let deadline = engine.clock.now() + wait;
    loop {
        let read = calls::on_target(&engine.store, &account.target, |session| {
            let (target, name) = (&account.target, &account.name);
            async move { session.account_status(target, name).await }
        })
        .await;
        let seen = match read {
            Ok(Some(info)) if available(&info) => return Ok(()),
            Ok(Some(info)) if dead_end(&info) => {
                return Err(Error::Coded {
                    status: 502,
                    message: format!(
                        "creds for role {:?}: account {} on {} became {} instead of available",
                        account.role,
                        account.name,
                        place(&account.target),
                        info.status.unwrap_or_default(),
                    ),
                });
            }
            Ok(Some(info)) => info.status.unwrap_or_else(|| "without a status".into()),
            Ok(None) => "not listed yet".into(),
            // A read that may work next time: keep waiting.
            Err(error)
                if !matches!(
                    error.class,
                    ErrorClass::Permanent | ErrorClass::Lockout { .. }
                ) =>
            {
                format!("unreadable ({error})")
            }
            Err(error) => return Err(failed(account, "wait", &error)),
        };
        if engine.clock.now() >= deadline {
            return Err(Error::unavailable(format!(
                "creds for role {:?}: account {} on {} was still {seen} after {}s (mount option account_ready_wait); try again",
                account.role,
                account.name,
                place(&account.target),
                wait.as_secs(),
            )));
        }
        engine.clock.sleep(poll).await;
    }
}

fn left_to_rollback(engine: &Engine) -> String {
    format!(
        "Vault deletes the account by itself within about {}s (rollback)",
        engine.tuning.wal_rollback_min_age.as_secs() + 60
    )
}

/// What the caller of a `creds/` read learns of a failed cloud call
/// `step` (look-up, create, wait, grant): a status that says whose move it
/// is, the cloud's code, and what to do.
pub fn failed(account: &Account, step: &str, error: &ProviderError) -> Error {
    let place = place(&account.target);
    let connection = place_connection(&account.target);
    let code = error.code.as_deref().unwrap_or("no code");
    let (status, advice) = match error.kind {
        // Whatever its HTTP status makes of it.
        _ if lacks_acl_accounts(error) => (400, no_acl_accounts(&place)),
        ErrorKind::LimitExceeded => (
            429,
            format!(
                "{place} holds as many accounts as it may ({code}): revoke leases no longer needed (or raise the limit), then read creds again"
            ),
        ),
        ErrorKind::InvalidState => (
            503,
            format!(
                "{place} does not take account changes in its current state ({code}): try again once it is running"
            ),
        ),
        ErrorKind::PermissionDenied => (
            403,
            format!(
                "the access key of connection {connection:?} may not call {} ({code}): grant it that action, then read creds again",
                error.action
            ),
        ),
        ErrorKind::Auth => (
            403,
            format!(
                "the cloud rejected the access key of connection {connection:?} ({code}): write the current key to config/{connection}"
            ),
        ),
        ErrorKind::NotFound => (
            400,
            format!(
                "something the role names was not found ({code}): check its cluster_id or instance_id, its grants' databases and the region of connection {connection:?}"
            ),
        ),
        ErrorKind::InvalidParameter | ErrorKind::PasswordRefused => (
            400,
            format!(
                "the cloud refused the account's parameters ({code}): check the role's username_template, password_policy and {}",
                if matches!(account.target, Target::DcsInstance { .. }) {
                    "acl_role"
                } else {
                    "grants"
                }
            ),
        ),
        _ if !matches!(error.class, ErrorClass::Permanent) => (
            503,
            "the cloud did not complete the call: try again shortly".to_owned(),
        ),
        _ => (500, format!("({code})")),
    };
    let message = format!(
        "creds for role {:?}: the {step} of account {} on {place} failed: {error}; {advice}",
        account.role, account.name
    );
    if status == 500 {
        Error::internal(message)
    } else if status == 400 {
        Error::bad_request(message)
    } else {
        Error::Coded { status, message }
    }
}
