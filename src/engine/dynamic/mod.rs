//! Dynamic credentials (issue 13): a role (`roles/:name`, [`role`]) says
//! where and how to create accounts; each `creds/:name` read creates a
//! fresh PolarDB account or DCS ACL account ([`create`]) that lives as
//! long as its lease: renew extends the lease without a cloud call, revoke
//! deletes the account ([`revoke`]).
//!
//! No account outlives its lease, whatever fails or stops:
//!
//! * a write-ahead entry (kind [`WAL_KIND`]) names the account before it
//!   is created, and is deleted only once the account is recorded as
//!   issued; an entry left behind (a failed or crashed read) outlives the
//!   rollback's minimum age and the rollback deletes its account;
//! * the issued record (`issued/<deadline>-<name>`) stands for the lease
//!   from the answer on: revoke deletes the account, then the record; a
//!   record past its deadline (issue + max TTL + [`GRACE`]) means the host
//!   never recorded the lease (it stopped between our answer and its
//!   write), and the periodic pass deletes the account ([`cleanup`]);
//! * a cleanup that fails is kept and tried again every tick, never
//!   dropped; `roles/:name` counts them (`pending_cleanups`) and `creds/`
//!   reads warn while any exist.

pub mod check;
pub mod cleanup;
pub mod create;
pub mod revoke;
pub mod role;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::framework::{Error, get_json, put_json};

use super::cloud::DCS_NO_ACL;
use super::core::Engine;
use super::role::Target;

/// The kind of the WAL entries that guard an account being created.
pub const WAL_KIND: &str = "dynamic-account";

/// Where issued records live (local storage: each cluster cleans up the
/// accounts it created, as with the WAL).
pub const ISSUED_PREFIX: &str = "issued/";

/// Added to an issued record's deadline, so the periodic pass never races
/// the host's own revoke at the end of the max TTL.
pub const GRACE: time::Duration = time::Duration::minutes(1);

/// One account created for one lease, as its WAL entry, its issued record
/// and its lease name it. Holds no password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The account's name on its cluster or instance.
    pub name: String,
    /// The role it was created for (which may be deleted since).
    pub role: String,
    /// Where it lives, and the connection that reaches it.
    pub target: Target,
}

/// The record of an account handed out under a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    #[serde(flatten)]
    pub account: Account,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// Past it, no lease can hold the account: the periodic pass deletes it.
    #[serde(with = "time::serde::rfc3339")]
    pub deadline: OffsetDateTime,
}

impl Issued {
    /// The record's key: its deadline comes first, so the periodic pass
    /// finds the records past theirs from one listing, without reading
    /// the others.
    pub fn key(&self) -> String {
        format!(
            "{ISSUED_PREFIX}{}-{}",
            self.deadline.unix_timestamp(),
            self.account.name
        )
    }

    pub async fn save(&self, engine: &Engine) -> Result<(), Error> {
        put_json(engine.store.storage.as_ref(), &self.key(), self).await
    }
}

/// A listed issued record: its deadline (unix seconds) and account name.
/// `None` for a name that is no issued record's.
pub fn parse_issued(listed: &str) -> Option<(i64, &str)> {
    let (deadline, name) = listed.split_once('-')?;
    let deadline = deadline.parse().ok()?;
    (!name.is_empty()).then_some((deadline, name))
}

/// The issued records listed, with their deadline and account name.
pub async fn list_issued(engine: &Engine) -> Result<Vec<(String, i64, String)>, Error> {
    let listed = engine.store.storage.list(ISSUED_PREFIX).await?;
    Ok(listed
        .iter()
        .filter_map(|entry| {
            let (deadline, name) = parse_issued(entry)?;
            Some((format!("{ISSUED_PREFIX}{entry}"), deadline, name.to_owned()))
        })
        .collect())
}

pub async fn load_issued(engine: &Engine, key: &str) -> Result<Option<Issued>, Error> {
    get_json(engine.store.storage.as_ref(), key).await
}

/// Why a dynamic role cannot use `place` (an instance without ACL
/// accounts), and what to do.
pub fn no_acl_accounts(place: &str) -> String {
    format!(
        "{place} has no ACL accounts ({DCS_NO_ACL}); dynamic DCS roles need Redis 4.0 or 5.0 (6.0 on request to Huawei Cloud): use an instance that has them"
    )
}

/// The cluster or instance of a target, in words.
pub fn place(target: &Target) -> String {
    match target {
        Target::PolardbAccount { cluster_id, .. } => format!("PolarDB cluster {cluster_id}"),
        Target::DcsInstance { instance_id, .. } => format!("DCS instance {instance_id}"),
        Target::External => "an external target".to_owned(),
    }
}
