//! What the engine asks of the clouds, in its own terms: targets,
//! dependents and access keys, never a provider's request types. The
//! engine is built with a [`Cloud`]; [`ProviderCloud`] implements it over
//! the provider clients (the only module that names them), and tests
//! script it. Provider errors pass through unchanged: their class drives
//! the rotation planner.
//!
//! Per-lease accounts (issue 13) are addressed by the role's [`Target`]
//! (its cluster or instance) and the account's name; the provider's own
//! ids (DCS ACL account ids) are looked up by name when a call needs one.

// Provider errors are large (request ids, codes) and rare; see providers.
#![allow(clippy::result_large_err)]

mod batch;
#[cfg(test)]
pub mod fake;
mod providers;
#[cfg(test)]
mod providers_tests;
mod readers;

use std::sync::Arc;

use async_trait::async_trait;

use crate::providers::{ProviderError, Secret};

use super::connection::Connection;
use super::role::{Dependent, Target};

/// DCS's answer on an instance without ACL accounts
/// (`docs/provider-errors.md`).
pub const DCS_NO_ACL: &str = "DCS.4008";

/// Whether `error` says the DCS instance has no ACL accounts.
pub fn lacks_acl_accounts(error: &ProviderError) -> bool {
    error.code.as_deref() == Some(DCS_NO_ACL)
}

pub use providers::ProviderCloud;

/// Opens sessions: one per connection, kept by the engine until the
/// connection changes.
pub trait Cloud: Send + Sync {
    /// A session signing with `connection`'s key. Fails (permanently) only
    /// when the connection cannot be used at all (bad endpoint, bad CA).
    fn open(&self, connection: &Connection) -> Result<Arc<dyn Session>, ProviderError>;
}

/// How a target's password is changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeMethod {
    /// PolarDB `ModifyAccountPassword`.
    Modify,
    /// DCS `UpdatePassword`, offering the old password.
    DcsUpdate,
    /// DCS `ResetPassword`, without the old password.
    DcsReset,
    /// DCS `ResetAclAccountPassWord`: an ACL account's password, without
    /// the old one (no wrong tries to count, safe to send again).
    AclReset,
}

impl ChangeMethod {
    /// The provider call, as dry runs and the docs name it.
    pub fn action(self) -> &'static str {
        match self {
            Self::Modify => "ModifyAccountPassword",
            Self::DcsUpdate => "UpdatePassword",
            Self::DcsReset => "ResetPassword",
            Self::AclReset => "ResetAclAccountPassWord",
        }
    }
}

/// What Vault needs to know about a target before changing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetState {
    /// DCS instance `status`; PolarDB `AccountStatus`.
    pub status: Option<String>,
    pub description: String,
    /// DCS dual-account roles: the ACL account's status (`AVAILABLE`,
    /// `UPDATING`, ...); `None` otherwise.
    pub account_status: Option<String>,
}

/// One account as its provider lists it: for the checks made when a
/// dual-account role is written, and for per-lease accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    pub name: String,
    /// PolarDB `AccountStatus`; DCS ACL `status`.
    pub status: Option<String>,
    /// PolarDB `AccountType`; DCS `account_type`.
    pub kind: Option<String>,
    /// Sorted, so two accounts' grants compare with `==`: PolarDB
    /// `(DBName, AccountPrivilege)`; DCS `("*", account_role)`.
    pub privileges: Vec<(String, String)>,
}

impl AccountInfo {
    /// An account as a provider (or the fake) lists it, its privileges
    /// sorted.
    pub fn new(
        name: String,
        status: Option<String>,
        kind: Option<String>,
        mut privileges: Vec<(String, String)>,
    ) -> Self {
        privileges.sort();
        Self {
            name,
            status,
            kind,
            privileges,
        }
    }
}

/// A DCS ACL account's role: DCS grants nothing finer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclRole {
    Read,
    Write,
}

impl AclRole {
    /// DCS's `account_role`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

impl std::str::FromStr for AclRole {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            other => Err(format!("unknown ACL role {other:?}; use read or write")),
        }
    }
}

/// What a per-lease account is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// A PolarDB standard (`Normal`) account with per-database grants.
    /// Never `Super`: PolarDB for MySQL allows one privileged account per
    /// cluster.
    PolardbNormal,
    /// A DCS ACL account.
    DcsAcl(AclRole),
}

/// An account to create for one lease. `Debug` hides the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub name: String,
    pub password: Secret,
    pub kind: AccountKind,
    /// PolarDB: `(database, privilege)`, privilege one of `ReadWrite`,
    /// `ReadOnly`, `DMLOnly`, `DDLOnly`, `ReadIndex`; given to
    /// [`Session::grant_account`] once the account is available. DCS: empty
    /// (the role is all there is).
    pub grants: Vec<(String, String)>,
    /// Shown beside the account by the provider, so an operator can tell
    /// whose it is.
    pub description: Option<String>,
}

/// A dependent's job as its provider describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    pub status: String,
    pub accepts_password_change: bool,
}

/// The calls through one connection. Targets and dependents given to a
/// session are those whose `connection` is this session's.
#[async_trait]
pub trait Session: Send + Sync {
    /// The access key id the session signs with.
    fn access_key_id(&self) -> &str;

    /// One cheap signed call; an authenticated "not allowed" passes (it
    /// proves the key and signature work).
    async fn verify(&self) -> Result<(), ProviderError>;

    /// Status and description of a PolarDB account or DCS instance.
    async fn read_target(
        &self,
        target: &Target,
        username: &str,
    ) -> Result<TargetState, ProviderError>;

    /// The target as `read_target` gives it plus account `username`'s
    /// status: PolarDB reads the account (its status is the target's);
    /// DCS reads the instance and its ACL accounts.
    async fn read_account(
        &self,
        target: &Target,
        username: &str,
    ) -> Result<TargetState, ProviderError>;

    /// The named accounts of the target, in order; one that does not exist
    /// is `ErrorKind::NotFound`. A DCS instance without ACL accounts
    /// answers DCS.4008, passed through.
    async fn describe_accounts(
        &self,
        target: &Target,
        usernames: &[&str],
    ) -> Vec<Result<AccountInfo, ProviderError>>;

    /// Sets the target's password (with `AclReset`, that of the DCS ACL
    /// account `username`); gives the provider's request id.
    async fn change_target(
        &self,
        target: &Target,
        username: &str,
        method: ChangeMethod,
        old_password: Option<&str>,
        new_password: &str,
    ) -> Result<Option<String>, ProviderError>;

    /// Sets the target's description (which carries the ownership marker).
    async fn write_description(
        &self,
        target: &Target,
        username: &str,
        description: &str,
    ) -> Result<(), ProviderError>;

    /// Each dependent's job state, in order.
    async fn describe_jobs(
        &self,
        dependents: &[&Dependent],
    ) -> Vec<Result<JobState, ProviderError>>;

    /// Sends the password to each dependent; each gets its request id or
    /// why not, in order.
    async fn update_jobs(
        &self,
        dependents: &[&Dependent],
        password: &str,
    ) -> Vec<Result<Option<String>, ProviderError>>;

    /// Starts creating `account` in the target's cluster or instance: it is
    /// `Creating` / `CREATING` until the provider finishes (poll
    /// [`Session::account_status`]). Gives the provider's request id. An
    /// answer lost on the way is settled by looking for the account: listed
    /// means created (names are fresh per lease and the WAL entry names
    /// this one), otherwise the error is returned.
    async fn create_account(
        &self,
        target: &Target,
        account: &NewAccount,
    ) -> Result<Option<String>, ProviderError>;

    /// Grants `grants` (see [`NewAccount::grants`]) to an available
    /// account: PolarDB refuses grants while the account is being created,
    /// so they are not sent with the create. One call per database, so a
    /// failure belongs to one database; granting again changes nothing. DCS
    /// takes no grants (an empty list does nothing).
    async fn grant_account(
        &self,
        target: &Target,
        name: &str,
        grants: &[(String, String)],
    ) -> Result<(), ProviderError>;

    /// Account `name` as its provider lists it; `None` when it does not
    /// exist (DCS: or is listed `DELETED`). A missing cluster or instance
    /// is an error, never `None`.
    async fn account_status(
        &self,
        target: &Target,
        name: &str,
    ) -> Result<Option<AccountInfo>, ProviderError>;

    /// Starts deleting account `name`; it may be listed `Deleting` /
    /// `DELETING` for a while. An account already gone or being deleted is
    /// `Ok`: the session, not its callers, reads the provider's "not found"
    /// (PolarDB `InvalidAccountName.NotFound`; DCS has no code for it, so
    /// the list decides). A missing cluster or instance stays an error: a
    /// wrong region or endpoint looks the same, and the account may live on.
    async fn delete_account(&self, target: &Target, name: &str) -> Result<(), ProviderError>;

    /// Every account of the target, every page, in the provider's order;
    /// DCS without its `default` user (the instance password's) and without
    /// accounts listed `DELETED`. A DCS instance that does not exist is
    /// `ErrorKind::NotFound`; one without ACL accounts answers DCS.4008,
    /// passed through.
    async fn list_accounts(&self, target: &Target) -> Result<Vec<AccountInfo>, ProviderError>;

    /// The names of every database of a PolarDB cluster, every page of
    /// DescribeDatabases, in the provider's order: what a dynamic role's
    /// grants may name. A cluster that does not exist is
    /// `ErrorKind::NotFound`; a DCS instance has no databases (an error).
    async fn list_databases(&self, target: &Target) -> Result<Vec<String>, ProviderError>;

    async fn list_access_keys(&self, user: &str) -> Result<Vec<String>, ProviderError>;

    /// Creates a key for `user`: `(access key, secret)`.
    async fn create_access_key(&self, user: &str) -> Result<(String, String), ProviderError>;

    async fn delete_access_key(&self, user: &str, key: &str) -> Result<(), ProviderError>;
}
