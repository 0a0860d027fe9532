//! DCS v2 ACL accounts: the extra users of a Redis instance besides its
//! `default` user (whose password is the instance password), read-only
//! or read-write. Paths, bodies and answers from the official SDK
//! (`huaweicloudsdkdcs` 3.1.219 `v2/dcs_client.py`, `v2/model/*acl*`) and
//! the API reference
//! <https://support.huaweicloud.com/intl/en-us/api-dcs/CreateAclAccount.html>,
//! <https://support.huaweicloud.com/api-dcs/ListAclAccounts.html>.
//!
//! Create, role changes, resets and deletes are tasks: the account shows
//! `CREATING`, `UPDATING` or `DELETING` until DCS finishes, then
//! `AVAILABLE` (or disappears); callers poll [`DcsClient::list_acl_accounts`].

use std::fmt;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    DcsClient, ResetPasswordResponse, UpdatePasswordResponse, check_password_change_answer,
    check_password_reset_answer,
};
use crate::providers::huaweicloud::HuaweiService;
use crate::providers::huaweicloud::client::{RestCall, path_segment};
use crate::providers::{CallInfo, Idempotency, ProviderError, Secret, Service, decode_body};

/// `account_role`: `read` (read-only) or `write` (read and write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclAccountRole {
    Read,
    Write,
}

impl AclAccountRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AclAccountRole::Read => "read",
            AclAccountRole::Write => "write",
        }
    }
}

impl fmt::Display for AclAccountRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AclAccountRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(AclAccountRole::Read),
            "write" => Ok(AclAccountRole::Write),
            other => Err(format!(
                "unknown ACL account role {other:?} (read or write)"
            )),
        }
    }
}

/// One item of ListAclAccounts (SDK `AclAccountResp`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AclAccount {
    pub account_id: String,
    pub account_name: String,
    /// `normal`, or `default` for the instance's default user.
    #[serde(default)]
    pub account_type: Option<String>,
    #[serde(default)]
    pub instance_id: Option<String>,
    /// `CREATING`, `AVAILABLE`, `CREATEFAILED`, `DELETED`, `DELETEFAILED`,
    /// `DELETING`, `UPDATING` or `ERROR`.
    #[serde(default)]
    pub status: Option<String>,
    /// `read` or `write`.
    #[serde(default)]
    pub account_role: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

impl AclAccount {
    pub fn is_available(&self) -> bool {
        self.status.as_deref() == Some("AVAILABLE")
    }

    /// The instance's `default` user (its password is the instance's).
    pub fn is_default(&self) -> bool {
        self.account_type.as_deref() == Some("default")
    }

    pub fn role(&self) -> Option<AclAccountRole> {
        self.account_role.as_deref()?.parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListAclAccountsResponse {
    pub accounts: Vec<AclAccount>,
    pub info: CallInfo,
}

impl ListAclAccountsResponse {
    pub fn by_name(&self, name: &str) -> Option<&AclAccount> {
        self.accounts.iter().find(|a| a.account_name == name)
    }
}

#[derive(Deserialize)]
struct ListWire {
    #[serde(default)]
    accounts: Option<Vec<AclAccount>>,
}

#[derive(Debug, Clone)]
pub struct CreateAclAccountRequest {
    pub instance_id: String,
    /// 1-64 characters: letters, digits, `-` and `_`, starting with a letter.
    pub account_name: String,
    pub account_role: AclAccountRole,
    /// 8-64 characters, three of lower, upper, digits and specials, no
    /// `:`, not the account name forwards or backwards.
    pub account_password: Secret,
    /// Up to 1,024 characters.
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct UpdateAclAccountPasswordRequest {
    pub instance_id: String,
    pub account_id: String,
    pub old_password: Secret,
    pub new_password: Secret,
}

/// UpdateAclAccount's answer: the task that changes the role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateAclAccountRoleResponse {
    pub job_id: Option<String>,
    pub info: CallInfo,
}

#[derive(Deserialize)]
struct RoleWire {
    #[serde(default)]
    job_id: Option<String>,
}

impl DcsClient {
    fn accounts_path(&self, action: &str, instance_id: &str) -> Result<String, ProviderError> {
        Ok(format!(
            "{}/accounts",
            self.instance_path(action, instance_id)?
        ))
    }

    fn account_path(
        &self,
        action: &str,
        instance_id: &str,
        account_id: &str,
    ) -> Result<String, ProviderError> {
        let account_id = path_segment(HuaweiService::Dcs, action, "account_id", account_id)?;
        Ok(format!(
            "{}/{account_id}",
            self.accounts_path(action, instance_id)?
        ))
    }

    /// Every ACL account of the instance, its `default` user included.
    pub async fn list_acl_accounts(
        &self,
        instance_id: &str,
    ) -> Result<ListAclAccountsResponse, ProviderError> {
        let call = RestCall::new(
            HuaweiService::Dcs,
            "ListAclAccounts",
            Method::GET,
            self.accounts_path("ListAclAccounts", instance_id)?,
            Idempotency::Idempotent,
        );
        let (body, info) = self.client.call(&call).await?;
        let wire: ListWire = decode_body(Service::Dcs, call.action, body, &info)?;
        Ok(ListAclAccountsResponse {
            accounts: wire.accounts.unwrap_or_default(),
            info,
        })
    }

    /// Starts creating an account (`CREATING`, then `AVAILABLE`); the
    /// answer carries no id: find it by name in the list. Not re-sent after
    /// a lost answer: a second create of the name is refused.
    pub async fn create_acl_account(
        &self,
        request: &CreateAclAccountRequest,
    ) -> Result<CallInfo, ProviderError> {
        let mut body = json!({
            "account_name": request.account_name,
            "account_role": request.account_role.as_str(),
            "account_password": request.account_password.expose(),
        });
        if let Some(description) = &request.description {
            body["description"] = json!(description);
        }
        let call = RestCall::new(
            HuaweiService::Dcs,
            "CreateAclAccount",
            Method::POST,
            self.accounts_path("CreateAclAccount", &request.instance_id)?,
            Idempotency::NonIdempotent,
        )
        .json(&body)
        .secret(request.account_password.expose());
        let (_, info) = self.client.call(&call).await?;
        Ok(info)
    }

    /// Old -> new, answered like the instance's UpdatePassword (`result`,
    /// `retry_times_left`, `lock_time_left`): a wrong old password counts
    /// toward a lock, so the call is never re-sent here.
    pub async fn update_acl_account_password(
        &self,
        request: &UpdateAclAccountPasswordRequest,
    ) -> Result<UpdatePasswordResponse, ProviderError> {
        const ACTION: &str = "UpdateAclAccountPassWord";
        let call = RestCall::new(
            HuaweiService::Dcs,
            ACTION,
            Method::PUT,
            format!(
                "{}/password/modify",
                self.account_path(ACTION, &request.instance_id, &request.account_id)?
            ),
            Idempotency::NonIdempotent,
        )
        .json(&json!({
            "old_password": request.old_password.expose(),
            "new_password": request.new_password.expose(),
        }))
        .secret(request.old_password.expose())
        .secret(request.new_password.expose());
        let (body, info) = self.client.call(&call).await?;
        check_password_change_answer(ACTION, &body, &info, &call.secrets)
    }

    /// Sets a new password without the old one, answered like the
    /// instance's ResetPassword (`code`). Idempotent in effect.
    pub async fn reset_acl_account_password(
        &self,
        instance_id: &str,
        account_id: &str,
        new_password: &Secret,
    ) -> Result<ResetPasswordResponse, ProviderError> {
        const ACTION: &str = "ResetAclAccountPassWord";
        let call = RestCall::new(
            HuaweiService::Dcs,
            ACTION,
            Method::PUT,
            format!(
                "{}/password/reset",
                self.account_path(ACTION, instance_id, account_id)?
            ),
            Idempotency::Idempotent,
        )
        .json(&json!({ "new_password": new_password.expose() }))
        .secret(new_password.expose());
        let (body, info) = self.client.call(&call).await?;
        check_password_reset_answer(ACTION, &body, &info, &call.secrets)
    }

    /// Changes the account's role (SDK `UpdateAclAccount`). Idempotent.
    pub async fn update_acl_account_role(
        &self,
        instance_id: &str,
        account_id: &str,
        role: AclAccountRole,
    ) -> Result<UpdateAclAccountRoleResponse, ProviderError> {
        const ACTION: &str = "UpdateAclAccount";
        let call = RestCall::new(
            HuaweiService::Dcs,
            ACTION,
            Method::PUT,
            format!(
                "{}/role",
                self.account_path(ACTION, instance_id, account_id)?
            ),
            Idempotency::Idempotent,
        )
        .json(&json!({ "account_role": role.as_str() }));
        let (body, info) = self.client.call(&call).await?;
        let wire: RoleWire = match body {
            Value::Null => RoleWire { job_id: None },
            body => decode_body(Service::Dcs, call.action, body, &info)?,
        };
        Ok(UpdateAclAccountRoleResponse {
            job_id: wire.job_id,
            info,
        })
    }

    /// Starts deleting an account (`DELETING`, then gone). Re-sent after a
    /// lost answer. DCS documents no not-found code for an ACL account: a
    /// re-send that finds nothing is refused as a parameter error (the
    /// emulator answers `DCS.4961`, the ACL calls' documented one), so
    /// whether the account is gone is read from
    /// [`DcsClient::list_acl_accounts`], not the error.
    pub async fn delete_acl_account(
        &self,
        instance_id: &str,
        account_id: &str,
    ) -> Result<CallInfo, ProviderError> {
        const ACTION: &str = "DeleteAclAccount";
        let call = RestCall::new(
            HuaweiService::Dcs,
            ACTION,
            Method::DELETE,
            self.account_path(ACTION, instance_id, account_id)?,
            Idempotency::Idempotent,
        );
        let (_, info) = self.client.call(&call).await?;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_items_decode_with_the_sdk_fields() {
        let wire: ListWire = serde_json::from_value(json!({"accounts": [
            {"account_id": "a1", "account_name": "default", "account_type": "default",
             "instance_id": "i", "status": "AVAILABLE", "account_role": "write",
             "description": null, "error_code": null},
            {"account_id": "a2", "account_name": "reader", "account_type": "normal",
             "status": "CREATING", "account_role": "read"}
        ]}))
        .unwrap();
        let accounts = wire.accounts.unwrap();
        assert!(accounts[0].is_default() && accounts[0].is_available());
        assert_eq!(accounts[1].role(), Some(AclAccountRole::Read));
        assert!(!accounts[1].is_available());
    }

    #[test]
    fn roles_parse_and_print_as_dcs_spells_them() {
        for role in [AclAccountRole::Read, AclAccountRole::Write] {
            assert_eq!(role.as_str().parse::<AclAccountRole>(), Ok(role));
        }
        assert!("readonly".parse::<AclAccountRole>().is_err());
    }

    #[test]
    fn acl_password_answers_are_read_like_the_instance_ones() {
        let info = CallInfo {
            request_id: None,
            http_status: 200,
            attempts: 1,
        };
        let failed = json!({"result": "passwordFailed", "retry_times_left": "2", "message": "m"});
        let error = check_password_change_answer("UpdateAclAccountPassWord", &failed, &info, &[])
            .unwrap_err();
        assert!(error.is_lockout());
        assert_eq!(error.action, "UpdateAclAccountPassWord");
        let reset = json!({"code": "1", "message": "success"});
        assert!(check_password_reset_answer("ResetAclAccountPassWord", &reset, &info, &[]).is_ok());
    }

    #[test]
    fn requests_do_not_print_passwords() {
        let request = UpdateAclAccountPasswordRequest {
            instance_id: "i".into(),
            account_id: "a".into(),
            old_password: Secret::new("Old-Secret-1"),
            new_password: Secret::new("New-Secret-1"),
        };
        let shown = format!("{request:?}");
        assert!(!shown.contains("Old-Secret") && !shown.contains("New-Secret"));
    }
}
