//! The provider checks made before a service account joins a set.

use std::collections::BTreeMap;

use crate::framework::Error;
use crate::providers::ErrorKind;

use super::super::calls;
use super::super::cloud::{DCS_NO_ACL, TargetState, lacks_acl_accounts};
use super::super::core::Engine;
use super::super::library::LibrarySet;
use super::super::path_roles;
use super::super::role::Target;
use super::settings::member_record;

/// What is learnt about a service account before it joins a set: the
/// target as read (for its import rotation), and warnings.
pub(super) struct Joining {
    pub(super) target: Option<TargetState>,
    pub(super) warnings: Vec<String>,
}

/// The checks made before an account joins a set, with provider calls
/// and no lock held: it exists (else 400), and its target carries no other
/// mount's ownership marker (else 409, unless `take_over`).
pub(super) async fn check_joining(
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
                Err(error) if lacks_acl_accounts(&error) => {
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
