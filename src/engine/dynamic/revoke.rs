//! A dynamic account's lease: renew (no cloud call; never past the max
//! TTL the account was issued with, which the issued record's deadline
//! counts on) and revoke (delete the account, then its issued record).
//!
//! Revoke errors are plain errors, never "invalid request": the host takes
//! that for a revoke that can never work and gives the lease up at once
//! (irrevocable), while any other error is retried with backoff.

// Provider errors are large (request ids, codes) and rare; see calls.rs.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use crate::framework::{Error, LeaseGrant, Request, Response};
use crate::providers::{ErrorKind, ProviderError};

use super::super::calls;
use super::super::core::Engine;
use super::super::role::Target;
use super::create::SECRET_TYPE;
use super::{Account, place, role};

/// PolarDB refuses to delete an account that objects depend on.
const OBJECTS_DEPEND: &str = "AccountActionForbidden";

/// What a dynamic account's lease carries (its internal data).
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub account: Account,
    /// The issued record's key.
    pub issued: Option<String>,
    pub issued_at: OffsetDateTime,
    /// The max TTL it was issued with.
    pub max_ttl: Duration,
}

impl Lease {
    pub fn from_request(request: &Request) -> Result<Self, Error> {
        let internal = &request
            .secret
            .as_ref()
            .ok_or_else(|| Error::bad_request("no lease given"))?
            .internal_data;
        let text = |key: &str| internal.get(key).and_then(Value::as_str).map(str::to_owned);
        let number = |key: &str| internal.get(key).and_then(Value::as_i64);
        let target: Option<Target> = internal
            .get("target")
            .and_then(|value| serde_json::from_value(value.clone()).ok());
        let (Some(name), Some(role), Some(target), Some(issued_at), Some(max_ttl)) = (
            text("username"),
            text("role"),
            target,
            number("issued_at").and_then(|at| OffsetDateTime::from_unix_timestamp(at).ok()),
            number("max_ttl").and_then(|secs| u64::try_from(secs).ok()),
        ) else {
            return Err(Error::bad_request(
                "the lease's data is incomplete: it was not issued by this engine's creds/ path",
            ));
        };
        Ok(Self {
            account: Account { name, role, target },
            issued: text("issued"),
            issued_at,
            max_ttl: Duration::from_secs(max_ttl),
        })
    }
}

/// Deletes the account; one already gone (or going) is deleted.
pub async fn delete_account(engine: &Engine, account: &Account) -> Result<(), ProviderError> {
    calls::on_target(&engine.store, &account.target, |session| {
        let (target, name) = (&account.target, &account.name);
        async move { session.delete_account(target, name).await }
    })
    .await
}

/// Why an account could not be deleted, and what to do: for the host's
/// log and for whoever reads it.
pub fn delete_failure(account: &Account, error: &ProviderError) -> String {
    let place = place(&account.target);
    let (connection, _, _) = role::place(&account.target);
    let name = &account.name;
    if error.code.as_deref() == Some(OBJECTS_DEPEND) {
        return format!(
            "{place} refuses to delete account {name} while objects depend on it ({OBJECTS_DEPEND}): drop or reassign what it owns (tables, views, procedures); Vault tries again"
        );
    }
    match error.kind {
        ErrorKind::Config => format!(
            "account {name} on {place} cannot be deleted: {error}; write config/{connection} back (the connection it was created through) so Vault can delete it; Vault tries again"
        ),
        ErrorKind::Auth | ErrorKind::PermissionDenied => format!(
            "account {name} on {place} cannot be deleted: {error}; give connection {connection:?}'s key the {} permission (or write its current key to config/{connection}); Vault tries again",
            error.action
        ),
        _ => format!("account {name} on {place} was not deleted: {error}; Vault tries again"),
    }
}

pub async fn revoke(engine: &Arc<Engine>, request: &Request) -> Result<(), Error> {
    let lease = Lease::from_request(request)?;
    delete_account(engine, &lease.account)
        .await
        .map_err(|error| Error::internal(delete_failure(&lease.account, &error)))?;
    if let Some(key) = &lease.issued {
        engine.store.storage.delete(key).await.map_err(|err| {
            Error::internal(format!(
                "account {} was deleted, but its issued record was not ({err}); Vault tries again",
                lease.account.name
            ))
        })?;
    }
    tracing::info!(role = %lease.account.role, account = %lease.account.name, "lease ended; deleted its account");
    Ok(())
}

pub async fn renew(engine: &Arc<Engine>, request: &Request) -> Result<Response, Error> {
    let secret = request
        .secret
        .as_ref()
        .ok_or_else(|| Error::bad_request("no lease given"))?;
    let lease = Lease::from_request(request)?;
    let role_name = &lease.account.role;
    let role = role::load(engine, role_name).await?.ok_or_else(|| {
        Error::bad_request(format!(
            "role {role_name:?} was deleted, so its leases cannot be renewed: this one ends when it expires (revoke it to delete account {} now)",
            lease.account.name
        ))
    })?;
    let (ttl, role_max) = role.lease_ttls(engine).await?;
    // Never past what the account was issued with: its issued record's
    // deadline counts on it.
    let max = lease.max_ttl.min(role_max);
    let ends = lease.issued_at + max;
    let left = Duration::try_from(ends - engine.clock.now()).unwrap_or_default();
    if left.is_zero() {
        return Err(Error::bad_request(format!(
            "this lease is past its max TTL ({}s), so it cannot be renewed: read creds/{role_name} for a new account",
            max.as_secs()
        )));
    }
    let increment = Some(secret.increment)
        .filter(|increment| !increment.is_zero())
        .unwrap_or(ttl);
    Ok(Response::default().with_lease(LeaseGrant {
        secret_type: SECRET_TYPE.into(),
        internal_data: secret.internal_data.clone(),
        ttl: increment.min(left),
        max_ttl: max,
        renewable: true,
    }))
}
