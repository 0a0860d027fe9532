//! PolarDB (version 2017-08-01): change an account's password and
//! description, read the accounts, check the credentials.

use serde::Deserialize;

use super::client::{AlibabaClient, RpcCall};
use crate::providers::{
    CallInfo, Idempotency, ProviderError, Secret, Service, Verified, decode_body,
};

#[derive(Debug, Clone)]
pub struct ModifyAccountPasswordRequest {
    pub db_cluster_id: String,
    pub account_name: String,
    pub new_password: Secret,
    /// Undocumented pass-through (the only documented value is `Tair`);
    /// leave unset.
    pub password_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModifyAccountPasswordResponse {
    pub info: CallInfo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModifyAccountDescriptionRequest {
    pub db_cluster_id: String,
    pub account_name: String,
    pub account_description: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeAccountsRequest {
    pub db_cluster_id: String,
    pub account_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolarDbAccount {
    pub account_name: String,
    #[serde(default)]
    pub account_status: Option<String>,
    #[serde(default)]
    pub account_type: Option<String>,
    #[serde(default)]
    pub account_description: Option<String>,
}

impl PolarDbAccount {
    /// Terraform waits for `Available` before changing a password.
    pub fn is_available(&self) -> bool {
        self.account_status.as_deref() == Some("Available")
    }
}

/// The most accounts one DescribeAccounts page holds (`PageSize` takes 30,
/// 50 or 100; SDK `_describe_accounts_request.py`).
pub const MAX_ACCOUNTS_PAGE: u32 = 100;

/// One page of a cluster's accounts (`PageNumber` from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeAccountsPage {
    pub db_cluster_id: String,
    pub page_number: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeAccountsResponse {
    pub accounts: Vec<PolarDbAccount>,
    pub info: CallInfo,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AccountList {
    List(Vec<PolarDbAccount>),
    /// `{"DBAccount":[...]}`, the shape some RDS-family APIs use.
    Wrapped {
        #[serde(rename = "DBAccount", default)]
        db_account: Vec<PolarDbAccount>,
    },
}

#[derive(Deserialize)]
struct DescribeAccountsBody {
    #[serde(rename = "Accounts")]
    accounts: Option<AccountList>,
}

/// PolarDB calls of one connection.
#[derive(Debug, Clone)]
pub struct PolarDbClient {
    client: AlibabaClient,
}

impl PolarDbClient {
    pub(crate) fn new(client: AlibabaClient) -> Self {
        PolarDbClient { client }
    }

    /// Sets a new password; needs no old one. Idempotent in effect:
    /// setting the same password again is accepted, so a lost answer is
    /// retried.
    pub async fn modify_account_password(
        &self,
        request: &ModifyAccountPasswordRequest,
    ) -> Result<ModifyAccountPasswordResponse, ProviderError> {
        let call = RpcCall::new(
            Service::Polardb,
            "ModifyAccountPassword",
            Idempotency::Idempotent,
        )
        .param("DBClusterId", &request.db_cluster_id)
        .param("AccountName", &request.account_name)
        .secret_param("NewAccountPassword", request.new_password.expose())
        .optional("PasswordType", request.password_type.as_deref());
        let (_, info) = self.client.call(&call).await?;
        Ok(ModifyAccountPasswordResponse { info })
    }

    pub async fn describe_accounts(
        &self,
        request: &DescribeAccountsRequest,
    ) -> Result<DescribeAccountsResponse, ProviderError> {
        let call = RpcCall::new(
            Service::Polardb,
            "DescribeAccounts",
            Idempotency::Idempotent,
        )
        .param("DBClusterId", &request.db_cluster_id)
        .optional("AccountName", request.account_name.as_deref());
        self.accounts(&call).await
    }

    async fn accounts(&self, call: &RpcCall) -> Result<DescribeAccountsResponse, ProviderError> {
        let (body, info) = self.client.call(call).await?;
        let body: DescribeAccountsBody = decode_body(Service::Polardb, call.action, body, &info)?;
        let accounts = match body.accounts {
            Some(AccountList::List(list)) => list,
            Some(AccountList::Wrapped { db_account }) => db_account,
            None => Vec::new(),
        };
        Ok(DescribeAccountsResponse { accounts, info })
    }

    /// One page of `MAX_ACCOUNTS_PAGE` accounts of a cluster; a page holding
    /// fewer is the last. The answer carries no total, only
    /// `PageRecordCount` (SDK `_describe_accounts_response_body.py`).
    pub async fn describe_accounts_page(
        &self,
        page: &DescribeAccountsPage,
    ) -> Result<DescribeAccountsResponse, ProviderError> {
        let call = RpcCall::new(
            Service::Polardb,
            "DescribeAccounts",
            Idempotency::Idempotent,
        )
        .param("DBClusterId", &page.db_cluster_id)
        .param("PageSize", MAX_ACCOUNTS_PAGE.to_string())
        .param("PageNumber", page.page_number.to_string());
        self.accounts(&call).await
    }

    /// Sets an account's description: `AccountDescription` is required,
    /// 2-256 characters, not starting with `http://` or `https://` (SDK
    /// `_modify_account_description_request.py`; API reference
    /// https://www.alibabacloud.com/help/en/polardb/api-polardb-2017-08-01-modifyaccountdescription).
    /// Idempotent: setting the same text again changes nothing.
    pub async fn modify_account_description(
        &self,
        request: &ModifyAccountDescriptionRequest,
    ) -> Result<CallInfo, ProviderError> {
        let call = RpcCall::new(
            Service::Polardb,
            "ModifyAccountDescription",
            Idempotency::Idempotent,
        )
        .param("DBClusterId", &request.db_cluster_id)
        .param("AccountName", &request.account_name)
        .param("AccountDescription", &request.account_description);
        let (_, info) = self.client.call(&call).await?;
        Ok(info)
    }

    /// A cheap authenticated call: `DescribeRegions`.
    pub async fn verify(&self) -> Result<Verified, ProviderError> {
        let call = RpcCall::new(Service::Polardb, "DescribeRegions", Idempotency::Idempotent);
        let (_, info) = self.client.call(&call).await?;
        Ok(Verified {
            service: Service::Polardb,
            action: call.action,
            info,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_decode_in_both_shapes() {
        let info = CallInfo::default();
        let list: DescribeAccountsBody = decode_body(
            Service::Polardb,
            "DescribeAccounts",
            serde_json::json!({"RequestId":"R","Accounts":[{"AccountName":"app","AccountStatus":"Available","AccountType":"Normal","AccountDescription":""}]}),
            &info,
        )
        .unwrap();
        match list.accounts {
            Some(AccountList::List(accounts)) => {
                assert_eq!(accounts[0].account_name, "app");
                assert!(accounts[0].is_available());
            }
            _ => panic!("a plain list"),
        }
        let wrapped: DescribeAccountsBody = decode_body(
            Service::Polardb,
            "DescribeAccounts",
            serde_json::json!({"Accounts":{"DBAccount":[{"AccountName":"x","AccountStatus":"Creating"}]}}),
            &info,
        )
        .unwrap();
        assert!(
            matches!(wrapped.accounts, Some(AccountList::Wrapped { ref db_account }) if !db_account[0].is_available())
        );
    }

    #[test]
    fn requests_do_not_print_passwords() {
        let request = ModifyAccountPasswordRequest {
            db_cluster_id: "pc-1".into(),
            account_name: "app".into(),
            new_password: Secret::new("Sup3r-Secret!"),
            password_type: None,
        };
        assert!(!format!("{request:?}").contains("Sup3r"));
    }
}
