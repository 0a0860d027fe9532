//! PolarDB (2017-08-01) account lifecycle: create an account, grant and
//! revoke its database privileges, delete it. Rules and values from the
//! official SDK models (`alibabacloud_polardb20170801` 9.2.1
//! `models/_create_account_request.py`, `_grant_account_privilege_request.py`,
//! `_revoke_account_privilege_request.py`, `_delete_account_request.py`) and
//! the API reference
//! <https://www.alibabacloud.com/help/en/polardb/api-polardb-2017-08-01-createaccount>.
//!
//! An account is created `Creating` and becomes `Available` later
//! (`DescribeAccounts`' `AccountStatus`); a deleted one is `Deleting` for a
//! while. Callers wait for `Available` before using or changing it.

use std::fmt;

use super::PolarDbClient;
use crate::providers::alicloud::AlibabaService;
use crate::providers::alicloud::client::RpcCall;
use crate::providers::{CallInfo, Idempotency, ProviderError, Secret};

/// `AccountType` of CreateAccount. Left out, PolarDB creates a `Super`
/// account, so the client always says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolarDbAccountType {
    /// A standard account: privileges are granted per database.
    Normal,
    /// A privileged account: all privileges on every database.
    Super,
}

impl PolarDbAccountType {
    pub fn as_str(self) -> &'static str {
        match self {
            PolarDbAccountType::Normal => "Normal",
            PolarDbAccountType::Super => "Super",
        }
    }
}

/// `AccountPrivilege` values, one per database of `DBName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountPrivilege {
    ReadWrite,
    ReadOnly,
    DmlOnly,
    DdlOnly,
    ReadIndex,
}

impl AccountPrivilege {
    pub const ALL: [AccountPrivilege; 5] = [
        AccountPrivilege::ReadWrite,
        AccountPrivilege::ReadOnly,
        AccountPrivilege::DmlOnly,
        AccountPrivilege::DdlOnly,
        AccountPrivilege::ReadIndex,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountPrivilege::ReadWrite => "ReadWrite",
            AccountPrivilege::ReadOnly => "ReadOnly",
            AccountPrivilege::DmlOnly => "DMLOnly",
            AccountPrivilege::DdlOnly => "DDLOnly",
            AccountPrivilege::ReadIndex => "ReadIndex",
        }
    }
}

impl fmt::Display for AccountPrivilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AccountPrivilege {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AccountPrivilege::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown account privilege {s:?}"))
    }
}

/// One database and the privilege an account gets on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseGrant {
    pub db_name: String,
    pub privilege: AccountPrivilege,
}

/// `DBName` and `AccountPrivilege`: comma-separated lists of equal length,
/// the n-th privilege for the n-th database.
fn grant_lists(grants: &[DatabaseGrant]) -> (String, String) {
    let names: Vec<&str> = grants.iter().map(|g| g.db_name.as_str()).collect();
    let privileges: Vec<&str> = grants.iter().map(|g| g.privilege.as_str()).collect();
    (names.join(","), privileges.join(","))
}

#[derive(Debug, Clone)]
pub struct CreateAccountRequest {
    pub db_cluster_id: String,
    /// 2-16 characters: lower-case letters, digits and `_`, starting with a
    /// lower-case letter, ending with a letter or digit; not a reserved
    /// name such as `root` or `admin`.
    pub account_name: String,
    pub account_password: Secret,
    pub account_type: PolarDbAccountType,
    /// 2-256 characters, not starting with `http://` or `https://`.
    pub account_description: Option<String>,
    /// Privileges granted with the account (standard accounts).
    pub grants: Vec<DatabaseGrant>,
    /// Up to 64 ASCII characters, unique per request: with it PolarDB
    /// answers a repeated request as the first, so a lost answer may be
    /// re-sent. Without it a re-send fails with `InvalidAccountName.Duplicate`.
    pub client_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantAccountPrivilegeRequest {
    pub db_cluster_id: String,
    pub account_name: String,
    pub grants: Vec<DatabaseGrant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeAccountPrivilegeRequest {
    pub db_cluster_id: String,
    /// A standard account (privileged ones are refused).
    pub account_name: String,
    pub db_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteAccountRequest {
    pub db_cluster_id: String,
    pub account_name: String,
}

impl PolarDbClient {
    /// Sends a call whose answer carries nothing but its request id.
    async fn send(&self, call: &RpcCall) -> Result<CallInfo, ProviderError> {
        let (_, info) = self.client.call(call).await?;
        Ok(info)
    }

    /// Creates an account (`Creating`, later `Available`). Re-sent after a
    /// lost answer only when the request carries a client token.
    pub async fn create_account(
        &self,
        request: &CreateAccountRequest,
    ) -> Result<CallInfo, ProviderError> {
        let idempotency = match request.client_token {
            Some(_) => Idempotency::Idempotent,
            None => Idempotency::NonIdempotent,
        };
        let (db_names, privileges) = grant_lists(&request.grants);
        let call = RpcCall::new(AlibabaService::Polardb, "CreateAccount", idempotency)
            .param("DBClusterId", &request.db_cluster_id)
            .param("AccountName", &request.account_name)
            .secret_param("AccountPassword", request.account_password.expose())
            .param("AccountType", request.account_type.as_str())
            .optional("AccountDescription", request.account_description.as_deref())
            .optional("DBName", (!db_names.is_empty()).then_some(db_names))
            .optional(
                "AccountPrivilege",
                (!privileges.is_empty()).then_some(privileges),
            )
            .optional("ClientToken", request.client_token.as_deref());
        self.send(&call).await
    }

    /// Grants privileges on databases. Idempotent: granting again changes
    /// nothing.
    pub async fn grant_account_privilege(
        &self,
        request: &GrantAccountPrivilegeRequest,
    ) -> Result<CallInfo, ProviderError> {
        let (db_names, privileges) = grant_lists(&request.grants);
        let call = RpcCall::new(
            AlibabaService::Polardb,
            "GrantAccountPrivilege",
            Idempotency::Idempotent,
        )
        .param("DBClusterId", &request.db_cluster_id)
        .param("AccountName", &request.account_name)
        .param("DBName", db_names)
        .param("AccountPrivilege", privileges);
        self.send(&call).await
    }

    /// Revokes every privilege on the databases. Idempotent.
    pub async fn revoke_account_privilege(
        &self,
        request: &RevokeAccountPrivilegeRequest,
    ) -> Result<CallInfo, ProviderError> {
        let call = RpcCall::new(
            AlibabaService::Polardb,
            "RevokeAccountPrivilege",
            Idempotency::Idempotent,
        )
        .param("DBClusterId", &request.db_cluster_id)
        .param("AccountName", &request.account_name)
        .param("DBName", request.db_names.join(","));
        self.send(&call).await
    }

    /// Deletes an account (`Deleting`, then gone). Re-sent after a lost
    /// answer: a re-sent delete that finds nothing answers
    /// `InvalidAccountName.NotFound`, which means the account is gone.
    pub async fn delete_account(
        &self,
        request: &DeleteAccountRequest,
    ) -> Result<CallInfo, ProviderError> {
        let call = RpcCall::new(
            AlibabaService::Polardb,
            "DeleteAccount",
            Idempotency::Idempotent,
        )
        .param("DBClusterId", &request.db_cluster_id)
        .param("AccountName", &request.account_name);
        self.send(&call).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_become_two_lists_of_equal_length() {
        let grants = [
            DatabaseGrant {
                db_name: "db1".into(),
                privilege: AccountPrivilege::ReadWrite,
            },
            DatabaseGrant {
                db_name: "db2".into(),
                privilege: AccountPrivilege::ReadOnly,
            },
        ];
        assert_eq!(
            grant_lists(&grants),
            ("db1,db2".to_owned(), "ReadWrite,ReadOnly".to_owned())
        );
        assert_eq!(grant_lists(&[]), (String::new(), String::new()));
        for privilege in AccountPrivilege::ALL {
            assert_eq!(
                privilege.as_str().parse::<AccountPrivilege>(),
                Ok(privilege)
            );
        }
        assert!("readwrite".parse::<AccountPrivilege>().is_err());
    }

    #[test]
    fn requests_do_not_print_passwords() {
        let request = CreateAccountRequest {
            db_cluster_id: "pc-1".into(),
            account_name: "app_blue".into(),
            account_password: Secret::new("Sup3r-Secret!"),
            account_type: PolarDbAccountType::Normal,
            account_description: None,
            grants: Vec::new(),
            client_token: None,
        };
        assert!(!format!("{request:?}").contains("Sup3r"));
    }
}
