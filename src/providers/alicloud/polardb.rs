//! PolarDB (version 2017-08-01): change an account's password and
//! description, read the accounts and the databases, check the
//! credentials; [`accounts`] creates, grants and deletes them.

pub mod accounts;

use serde::Deserialize;

use super::AlibabaService;
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
    /// `UnLock` or `Lock`.
    #[serde(default)]
    pub account_lock_state: Option<String>,
    /// The databases the account may use and how (SDK
    /// `_describe_accounts_response_body.py`: `DatabasePrivileges`, items
    /// `DBName` and `AccountPrivilege`).
    #[serde(default, deserialize_with = "privilege_list")]
    pub database_privileges: Vec<DatabasePrivilege>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DatabasePrivilege {
    #[serde(rename = "DBName")]
    pub db_name: String,
    pub account_privilege: String,
}

/// `DatabasePrivileges` as a plain list or, as some RDS-family answers
/// have it, wrapped in `{"DatabasePrivilege": [...]}`; null is empty.
fn privilege_list<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<DatabasePrivilege>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shape {
        List(Vec<DatabasePrivilege>),
        Wrapped {
            #[serde(rename = "DatabasePrivilege", default)]
            database_privilege: Vec<DatabasePrivilege>,
        },
    }
    Ok(match Option::<Shape>::deserialize(deserializer)? {
        Some(Shape::List(list)) => list,
        Some(Shape::Wrapped { database_privilege }) => database_privilege,
        None => Vec::new(),
    })
}

impl PolarDbAccount {
    /// Terraform waits for `Available` before changing a password.
    pub fn is_available(&self) -> bool {
        self.account_status.as_deref() == Some("Available")
    }

    /// The privilege the account holds on `db_name`, if any.
    pub fn privilege_on(&self, db_name: &str) -> Option<&str> {
        self.database_privileges
            .iter()
            .find(|p| p.db_name == db_name)
            .map(|p| p.account_privilege.as_str())
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

/// The most databases one DescribeDatabases page holds (`PageSize` takes
/// 30, 50 or 100; SDK `alibabacloud_polardb20170801`
/// `models/_describe_databases_request.py`).
pub const MAX_DATABASES_PAGE: u32 = 100;

/// One page of a cluster's databases (`PageNumber` from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeDatabasesPage {
    pub db_cluster_id: String,
    pub page_number: u32,
}

/// A database as DescribeDatabases lists it: `Databases.Database[]`, of
/// whose fields only these are read (SDK
/// `models/_describe_databases_response_body.py`; API reference
/// <https://www.alibabacloud.com/help/en/polardb/api-polardb-2017-08-01-describedatabases>).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PolarDbDatabase {
    #[serde(rename = "DBName")]
    pub db_name: String,
    /// `Creating`, `Running` or `Deleting`.
    #[serde(rename = "DBStatus", default)]
    pub db_status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeDatabasesResponse {
    pub databases: Vec<PolarDbDatabase>,
    pub info: CallInfo,
}

#[derive(Deserialize)]
struct DescribeDatabasesBody {
    /// `{"Database": [...]}` as the SDK reads it; null or absent is empty.
    #[serde(rename = "Databases", default)]
    databases: Option<DatabaseList>,
}

#[derive(Deserialize)]
struct DatabaseList {
    #[serde(rename = "Database", default)]
    database: Vec<PolarDbDatabase>,
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
            AlibabaService::Polardb,
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
            AlibabaService::Polardb,
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
            AlibabaService::Polardb,
            "DescribeAccounts",
            Idempotency::Idempotent,
        )
        .param("DBClusterId", &page.db_cluster_id)
        .param("PageSize", MAX_ACCOUNTS_PAGE.to_string())
        .param("PageNumber", page.page_number.to_string());
        self.accounts(&call).await
    }

    /// One page of `MAX_DATABASES_PAGE` databases of a cluster; a page
    /// holding fewer is the last (the answer carries `PageRecordCount`, no
    /// total). A cluster that does not exist answers
    /// `InvalidDBClusterId.NotFound`.
    pub async fn describe_databases_page(
        &self,
        page: &DescribeDatabasesPage,
    ) -> Result<DescribeDatabasesResponse, ProviderError> {
        let call = RpcCall::new(
            AlibabaService::Polardb,
            "DescribeDatabases",
            Idempotency::Idempotent,
        )
        .param("DBClusterId", &page.db_cluster_id)
        .param("PageSize", MAX_DATABASES_PAGE.to_string())
        .param("PageNumber", page.page_number.to_string());
        let (body, info) = self.client.call(&call).await?;
        let body: DescribeDatabasesBody = decode_body(Service::Polardb, call.action, body, &info)?;
        let databases = body.databases.map(|list| list.database).unwrap_or_default();
        Ok(DescribeDatabasesResponse { databases, info })
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
            AlibabaService::Polardb,
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
        let call = RpcCall::new(
            AlibabaService::Polardb,
            "DescribeRegions",
            Idempotency::Idempotent,
        );
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

    /// The seed's example answer (shared/seeds/003) and its documented
    /// error codes.
    #[test]
    fn the_seed_answers_parse() {
        use crate::providers::alicloud::client::parse_response;
        use crate::providers::http::IncomingResponse;
        use crate::providers::{ErrorClass, ErrorKind};
        let answer = |status: u16, body: &str| {
            parse_response(
                AlibabaService::Polardb,
                "ModifyAccountPassword",
                &IncomingResponse {
                    status,
                    headers: Default::default(),
                    body: body.as_bytes().to_vec(),
                },
                &[],
            )
        };
        let (_, info) = answer(
            200,
            r#"{"RequestId": "2FED790E-FB61-4721-8C1C-07C627******"}"#,
        )
        .unwrap();
        assert_eq!(
            info.request_id.as_deref(),
            Some("2FED790E-FB61-4721-8C1C-07C627******")
        );
        for (status, code, class, kind) in [
            (
                400,
                "EngineMigration.ActionDisabled",
                ErrorClass::Permanent,
                ErrorKind::InvalidState,
            ),
            (400, "LockTimeout", ErrorClass::Retryable, ErrorKind::Busy),
            (
                400,
                "InvalidAccountPassword.Malformed",
                ErrorClass::Permanent,
                ErrorKind::InvalidParameter,
            ),
            (
                404,
                "InvalidDBCluster.NotFound",
                ErrorClass::Permanent,
                ErrorKind::NotFound,
            ),
            (
                404,
                "InvalidDBClusterId.Malformed",
                ErrorClass::Permanent,
                ErrorKind::InvalidParameter,
            ),
            (
                404,
                "InvalidDBClusterId.NotFound",
                ErrorClass::Permanent,
                ErrorKind::NotFound,
            ),
        ] {
            let body = format!(r#"{{"RequestId":"R","Code":"{code}","Message":"m"}}"#);
            let error = answer(status, &body).unwrap_err();
            assert_eq!((error.class, error.kind), (class, kind), "{code}");
        }
    }

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
    fn databases_decode_as_the_sdk_reads_them() {
        let info = CallInfo::default();
        let decode = |body: serde_json::Value| -> Vec<PolarDbDatabase> {
            let body: DescribeDatabasesBody =
                decode_body(Service::Polardb, "DescribeDatabases", body, &info).unwrap();
            body.databases.map(|list| list.database).unwrap_or_default()
        };
        let listed = decode(
            serde_json::json!({"RequestId": "R", "PageNumber": 1, "PageRecordCount": 2,
            "Databases": {"Database": [
                {"DBName": "appdb", "DBStatus": "Running", "Engine": "MySQL", "Accounts": {"Account": []}},
                {"DBName": "logs", "DBStatus": "Creating"}]}}),
        );
        let names: Vec<&str> = listed.iter().map(|d| d.db_name.as_str()).collect();
        assert_eq!(names, ["appdb", "logs"]);
        assert_eq!(listed[1].db_status.as_deref(), Some("Creating"));
        assert!(
            decode(serde_json::json!({"RequestId": "R", "Databases": {"Database": []}})).is_empty()
        );
        assert!(decode(serde_json::json!({"RequestId": "R"})).is_empty());
    }

    #[test]
    fn database_privileges_decode_in_every_shape() {
        let account = |privileges: serde_json::Value| -> PolarDbAccount {
            serde_json::from_value(serde_json::json!({
                "AccountName": "app", "DatabasePrivileges": privileges
            }))
            .unwrap()
        };
        let listed = account(serde_json::json!([
            {"DBName": "db1", "AccountPrivilege": "ReadWrite"},
            {"DBName": "db2", "AccountPrivilege": "ReadOnly"}
        ]));
        assert_eq!(listed.privilege_on("db2"), Some("ReadOnly"));
        assert_eq!(listed.privilege_on("db3"), None);
        let wrapped = account(serde_json::json!({"DatabasePrivilege": [
            {"DBName": "db1", "AccountPrivilege": "ReadWrite"}]}));
        assert_eq!(wrapped.privilege_on("db1"), Some("ReadWrite"));
        assert!(
            account(serde_json::Value::Null)
                .database_privileges
                .is_empty()
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
