//! Deleting the accounts no lease holds, on the host's rollback tick:
//! the WAL rollback (an account whose `creds/` read failed or stopped half
//! way) and the periodic pass (an account whose issued record is past its
//! deadline: the host never recorded the lease). A cleanup that fails is
//! kept for the next tick, never dropped, and counted for `roles/:name`.

// Provider errors are large (request ids, codes) and rare; see calls.rs.
#![allow(clippy::result_large_err)]

use serde_json::Value;

use crate::framework::{Error, wal};

use super::super::calls;
use super::super::core::Engine;
use super::revoke::{delete_account, delete_failure};
use super::{Account, WAL_KIND, list_issued, load_issued, place, role};

/// Undoes one WAL entry of kind [`WAL_KIND`]; see [`undo`].
pub async fn roll_back(engine: &Engine, data: &Value) -> Result<(), Error> {
    let account: Account = serde_json::from_value(data.clone()).map_err(|err| {
        Error::internal(format!(
            "the entry does not name a dynamic account ({:?} error at line {} column {})",
            err.classify(),
            err.line(),
            err.column()
        ))
    })?;
    if undo(engine, &account).await? {
        tracing::warn!(role = %account.role, account = %account.name, "deleted an account whose creds read did not finish (WAL rollback)");
    }
    Ok(())
}

/// Deletes the account of a `creds/` read that did not answer (one that
/// was never created, or is gone, is done) and any issued record of it
/// (written just before the read failed: no lease holds it). An account
/// still being created refuses a delete: that is an error, to try later.
/// Whether there was an account to delete.
pub async fn undo(engine: &Engine, account: &Account) -> Result<bool, Error> {
    // Read first: most entries left behind name an account never created.
    let found = calls::on_target(&engine.store, &account.target, |session| {
        let (target, name) = (&account.target, &account.name);
        async move { session.account_status(target, name).await }
    })
    .await
    .map_err(|error| Error::internal(delete_failure(account, &error)))?;
    let existed = found.is_some();
    match found {
        None => {}
        Some(info)
            if info
                .status
                .as_deref()
                .is_some_and(|status| status.eq_ignore_ascii_case("creating")) =>
        {
            return Err(Error::internal(format!(
                "account {} on {} is still being created; it is deleted at a later tick",
                account.name,
                place(&account.target)
            )));
        }
        Some(_) => delete_account(engine, account)
            .await
            .map_err(|error| Error::internal(delete_failure(account, &error)))?,
    }
    for (key, _, name) in list_issued(engine).await? {
        if name == account.name {
            engine.store.storage.delete(&key).await?;
        }
    }
    Ok(existed)
}

/// The periodic pass: deletes each account whose issued record is past
/// its deadline, then the record. A failure keeps the record for the
/// next tick; the error names every one kept.
pub async fn sweep(engine: &Engine) -> Result<(), Error> {
    let now = engine.clock.now().unix_timestamp();
    let mut failures = Vec::new();
    for (key, deadline, _) in list_issued(engine).await? {
        if deadline > now {
            continue;
        }
        let issued = match load_issued(engine, &key).await {
            Ok(Some(issued)) => issued,
            // Revoked since the listing.
            Ok(None) => continue,
            Err(err) => {
                failures.push(format!("issued record {key} kept: {err}"));
                continue;
            }
        };
        let account = &issued.account;
        if let Err(error) = delete_account(engine, account).await {
            failures.push(format!(
                "issued record {key} kept: {}",
                delete_failure(account, &error)
            ));
            continue;
        }
        if let Err(err) = engine.store.storage.delete(&key).await {
            failures.push(format!(
                "account {} deleted, issued record {key} kept: {err}",
                account.name
            ));
            continue;
        }
        tracing::warn!(role = %account.role, account = %account.name, "deleted an account past its lease's deadline: the host never recorded the lease, or lost it");
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "dynamic accounts not deleted yet: {}",
            failures.join("; ")
        )))
    }
}

/// The mount is being disabled: the host has revoked every lease it
/// recorded (each revoke deleted its account and issued record) and will
/// delete this mount's storage next. What is left has no lease and would
/// be forgotten: the account of every WAL entry, however young, and of
/// every issued record, whatever its deadline. Failures are logged: after
/// this, nothing remembers them.
pub async fn at_unmount(engine: &Engine) {
    let storage = engine.store.storage.as_ref();
    let ids = wal::list(storage).await.unwrap_or_else(|err| {
        tracing::error!(error = %err, "mount disabled: cannot list the WAL; dynamic accounts may be left behind");
        Vec::new()
    });
    for id in ids {
        let Ok(Some(entry)) = wal::get(storage, &id).await else {
            continue;
        };
        if entry.kind != WAL_KIND {
            continue;
        }
        match roll_back(engine, &entry.data).await {
            Ok(()) => {
                let _ = wal::delete(storage, &id).await;
            }
            Err(err) => {
                tracing::error!(entry = %id, error = %err, "mount disabled: a dynamic account whose creds read did not finish could not be deleted; delete it by hand");
            }
        }
    }
    let issued = list_issued(engine).await.unwrap_or_else(|err| {
        tracing::error!(error = %err, "mount disabled: cannot list the issued accounts; dynamic accounts may be left behind");
        Vec::new()
    });
    for (key, _, name) in issued {
        let Ok(Some(issued)) = load_issued(engine, &key).await else {
            continue;
        };
        match delete_account(engine, &issued.account).await {
            Ok(()) => {
                tracing::warn!(role = %issued.account.role, account = %name, "mount disabled: deleted an account whose lease the host never recorded");
                let _ = engine.store.storage.delete(&key).await;
            }
            Err(error) => tracing::error!(
                role = %issued.account.role,
                error = %delete_failure(&issued.account, &error),
                "mount disabled: an account whose lease the host never recorded could not be deleted; delete it by hand"
            ),
        }
    }
}

/// The accounts of `role` waiting for a cleanup: a WAL entry at least the
/// rollback's minimum age old (its read failed or stopped), or an issued
/// record past its deadline. Each is tried again every tick.
pub async fn pending(engine: &Engine, role: &str) -> Result<Vec<String>, Error> {
    let storage = engine.store.storage.as_ref();
    let now = engine.clock.now().unix_timestamp();
    let min_age = i64::try_from(engine.tuning.wal_rollback_min_age.as_secs()).unwrap_or(i64::MAX);
    let mut names = Vec::new();
    for id in wal::list(storage).await? {
        let Some(entry) = wal::get(storage, &id).await? else {
            continue;
        };
        if entry.kind != WAL_KIND || now.saturating_sub(entry.created_at) < min_age {
            continue;
        }
        if let Ok(account) = serde_json::from_value::<Account>(entry.data)
            && account.role == role
        {
            names.push(account.name);
        }
    }
    for (key, deadline, _) in list_issued(engine).await? {
        if deadline > now {
            continue;
        }
        if let Some(issued) = load_issued(engine, &key).await?
            && issued.account.role == role
        {
            names.push(issued.account.name);
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// The warning a `creds/` read carries while accounts of its role wait
/// for a cleanup.
pub async fn pending_warning(engine: &Engine, role: &str) -> Option<String> {
    match pending(engine, role).await {
        Ok(names) if names.is_empty() => None,
        Ok(names) => Some(format!(
            "{} account(s) of role {role:?} are waiting to be deleted ({}): Vault tries again every minute; the host's log says why (rollback), and roles/{role} counts them as pending_cleanups",
            names.len(),
            names.join(", ")
        )),
        Err(err) => {
            tracing::warn!(role, error = %err, "could not count the accounts waiting for a cleanup");
            None
        }
    }
}

/// What still needs connection `name`: dynamic roles that name it, and
/// accounts (leased, or waiting for a cleanup) that only it can delete.
pub async fn connection_users(engine: &Engine, name: &str) -> Result<Vec<String>, Error> {
    let mut users = Vec::new();
    for role_name in role::list(engine).await? {
        if let Some(dynamic) = role::load(engine, &role_name).await?
            && role::place(&dynamic.target).0 == name
        {
            users.push(format!("dynamic role {role_name}"));
        }
    }
    let storage = engine.store.storage.as_ref();
    let mut accounts = Vec::new();
    for id in wal::list(storage).await? {
        if let Some(entry) = wal::get(storage, &id).await?
            && entry.kind == WAL_KIND
            && let Ok(account) = serde_json::from_value::<Account>(entry.data)
            && role::place(&account.target).0 == name
        {
            accounts.push(account.name);
        }
    }
    for (key, _, _) in list_issued(engine).await? {
        if let Some(issued) = load_issued(engine, &key).await?
            && role::place(&issued.account.target).0 == name
        {
            accounts.push(issued.account.name);
        }
    }
    if !accounts.is_empty() {
        users.push(format!(
            "{} dynamic account(s) not deleted yet ({})",
            accounts.len(),
            accounts.join(", ")
        ));
    }
    Ok(users)
}
