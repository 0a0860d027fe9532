//! A dynamic role's target as the cloud sees it, read when a write sets
//! or changes where the accounts go (a new role, another connection,
//! cluster or instance, other grants): the PolarDB cluster exists and
//! holds every database the grants name (DescribeDatabases), or the DCS
//! instance exists and has ACL accounts (ListAclAccounts, which answers
//! DCS.4008 below the versions that have them).
//!
//! What is missing is a 400 that says how to fix it. A read that fails
//! for any other reason (throttling, a 5xx, a missing permission, a
//! rejected key) gives a warning and the role is saved unchecked, as
//! library sets and dual-account roles are: cloud trouble is never taken
//! for a missing cluster, and `creds/` reads say what is wrong later.

// Provider errors are large (request ids, codes) and rare; see calls.rs.
#![allow(clippy::result_large_err)]

use crate::framework::Error;
use crate::providers::{ErrorKind, ProviderError};

use super::super::calls;
use super::super::cloud::lacks_acl_accounts;
use super::super::core::Engine;
use super::super::role::Target;
use super::role::{DynamicRole, place as fields};
use super::{no_acl_accounts, place};

/// Database names a message lists before it says how many there are.
const LISTED: usize = 20;

/// Reads the role's cluster or instance unless the write keeps the
/// target and grants of `stored`; gives the writer's warnings.
pub async fn check_target(
    engine: &Engine,
    name: &str,
    role: &DynamicRole,
    stored: Option<&DynamicRole>,
) -> Result<Vec<String>, Error> {
    if stored.is_some_and(|old| old.target == role.target && old.grants == role.grants) {
        return Ok(Vec::new());
    }
    // A missing or foreign connection says so, rather than a failed read.
    role.check_connection(engine, name).await?;
    // A standby forwards the write: no provider call from here.
    engine.ensure_writable().await?;
    let target = &role.target;
    match target {
        Target::PolardbAccount { .. } => {
            let listed = calls::on_target(&engine.store, target, |session| async move {
                session.list_databases(target).await
            })
            .await;
            let wanted: Vec<&str> = role.grants.keys().map(String::as_str).collect();
            judge_databases(target, &wanted, listed)
        }
        Target::DcsInstance { .. } => {
            let listed = calls::on_target(&engine.store, target, |session| async move {
                session.list_accounts(target).await
            })
            .await;
            judge_instance(target, listed.map(drop))
        }
        Target::External => Ok(Vec::new()),
    }
}

/// The cluster exists and lists every database of `wanted`.
fn judge_databases(
    target: &Target,
    wanted: &[&str],
    listed: Result<Vec<String>, ProviderError>,
) -> Result<Vec<String>, Error> {
    let cluster = place(target);
    let databases = match listed {
        Ok(databases) => databases,
        Err(error) => {
            return missing_place(target, "DescribeDatabases", "cluster_id", &error).map(|()| {
                vec![format!(
                    "{cluster} could not be read ({error}); the role is saved unchecked: make sure the cluster exists and holds database(s) {}",
                    wanted.join(", ")
                )]
            });
        }
    };
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|database| !databases.iter().any(|listed| listed == database))
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let (what, them) = match missing.as_slice() {
        [one] => (format!("database {one} does not exist"), "it"),
        several => (
            format!("databases {} do not exist", several.join(", ")),
            "them",
        ),
    };
    Err(Error::bad_request(format!(
        "{what} on {cluster} (DescribeDatabases lists: {}); create {them} or fix grants",
        listing(&databases)
    )))
}

/// The instance exists and has ACL accounts.
fn judge_instance(
    target: &Target,
    listed: Result<(), ProviderError>,
) -> Result<Vec<String>, Error> {
    let Err(error) = listed else {
        return Ok(Vec::new());
    };
    let instance = place(target);
    if lacks_acl_accounts(&error) {
        return Err(Error::bad_request(no_acl_accounts(&instance)));
    }
    missing_place(target, "ListAclAccounts", "instance_id", &error).map(|()| {
        vec![format!(
            "{instance} could not be read ({error}); the role is saved unchecked: make sure the instance exists and has ACL accounts (Redis 4.0 or later)"
        )]
    })
}

/// A 400 when `error` says the cluster or instance does not exist.
fn missing_place(
    target: &Target,
    action: &str,
    field: &str,
    error: &ProviderError,
) -> Result<(), Error> {
    if error.kind != ErrorKind::NotFound {
        return Ok(());
    }
    let (connection, _, _) = fields(target);
    let region = match target {
        Target::DcsInstance { .. } => "project and region",
        _ => "region",
    };
    Err(Error::bad_request(format!(
        "{} does not exist ({action} through connection {connection:?} answered {}): fix {field}, or the {region} of connection {connection:?}",
        place(target),
        error.code.as_deref().unwrap_or("not found")
    )))
}

/// Names for a message: all of them, or the first [`LISTED`] and how
/// many there are.
fn listing(names: &[String]) -> String {
    match names.len() {
        0 => "none".to_owned(),
        n if n <= LISTED => names.join(", "),
        n => format!("{}, ... ({n} in all)", names[..LISTED].join(", ")),
    }
}
