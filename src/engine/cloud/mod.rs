//! What the engine asks of the clouds, in its own terms: targets,
//! dependents and access keys, never a provider's request types. The
//! engine is built with a [`Cloud`]; [`ProviderCloud`] implements it over
//! the provider clients (the only module that names them), and tests
//! script it. Provider errors pass through unchanged: their class drives
//! the rotation planner.

// Provider errors are large (request ids, codes) and rare; see providers.
#![allow(clippy::result_large_err)]

mod batch;
#[cfg(test)]
pub mod fake;
mod providers;
mod readers;

use std::sync::Arc;

use async_trait::async_trait;

use crate::providers::ProviderError;

use super::connection::Connection;
use super::role::{Dependent, Target};

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

/// One account as its provider lists it, for the checks made when a
/// dual-account role is written.
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

    async fn list_access_keys(&self, user: &str) -> Result<Vec<String>, ProviderError>;

    /// Creates a key for `user`: `(access key, secret)`.
    async fn create_access_key(&self, user: &str) -> Result<(String, String), ProviderError>;

    async fn delete_access_key(&self, user: &str, key: &str) -> Result<(), ProviderError>;
}
