//! DCS (Redis) v2: change the instance password (needs the old one and
//! counts wrong tries toward a 5-minute lock), reset it (needs no old one,
//! never counts, idempotent in effect), read and list instances, set an
//! instance's description, check the credentials. [`acl`] manages the
//! instance's ACL accounts.

pub mod acl;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::HuaweiService;
use super::client::{HuaweiClient, RestCall, path_segment};
use crate::providers::{
    CallInfo, ErrorClass, ErrorKind, Idempotency, ProviderError, Secret, Service, Verified,
    decode_body,
};

#[derive(Debug, Clone)]
pub struct UpdatePasswordRequest {
    pub instance_id: String,
    pub old_password: Secret,
    pub new_password: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatePasswordResponse {
    pub message: Option<String>,
    pub info: CallInfo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetPasswordResponse {
    pub message: Option<String>,
    pub info: CallInfo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcsInstance {
    pub instance_id: String,
    pub name: Option<String>,
    /// `RUNNING`, `CREATING`, `RESTARTING`, ...
    pub status: Option<String>,
    /// Free text, at most 1024 characters (SDK `show_instance_response.py`,
    /// `instance_list_info.py`).
    pub description: Option<String>,
    pub no_password_access: bool,
    pub info: CallInfo,
}

/// The most instances one ListInstances page holds (`limit` 1-1000, SDK
/// `list_instances_request.py`).
pub const MAX_INSTANCES_PAGE: usize = 1000;

/// Longest instance description (SDK `modify_instance_body.py`).
pub const MAX_DESCRIPTION_CHARS: usize = 1024;

/// One page of the project's instances and how many there are in all
/// (`instance_num`, SDK `list_instances_response.py`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcsInstancePage {
    pub total: usize,
    pub instances: Vec<DcsInstance>,
}

impl DcsInstance {
    /// The console guide: the password can only be changed while running.
    pub fn is_running(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("RUNNING"))
    }
}

/// DCS sends counts as strings ("5"), sometimes as numbers or null.
fn count(value: Option<&Value>) -> Option<u32> {
    match value? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn flag(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn failure(
    action: &str,
    class: ErrorClass,
    kind: ErrorKind,
    code: &str,
    message: &str,
    info: &CallInfo,
    secrets: &[String],
) -> ProviderError {
    ProviderError::new(class, kind, Service::Dcs, action, message, secrets)
        .with_status(info.http_status)
        .with_code(Some(code.to_owned()))
        .with_request_id(info.request_id.clone())
        .redacted(secrets)
}

/// Checks an UpdatePassword answer: HTTP 200 with `result` other than
/// `success` is a failure; `passwordFailed` and `locked` carry the counts.
pub fn check_update_answer(
    body: &Value,
    info: &CallInfo,
    secrets: &[String],
) -> Result<UpdatePasswordResponse, ProviderError> {
    check_password_change_answer("UpdatePassword", body, info, secrets)
}

/// The `result` answer of an old -> new password change (the instance's
/// UpdatePassword, an ACL account's UpdateAclAccountPassWord).
pub(crate) fn check_password_change_answer(
    action: &str,
    body: &Value,
    info: &CallInfo,
    secrets: &[String],
) -> Result<UpdatePasswordResponse, ProviderError> {
    let result = text(body.get("result")).unwrap_or_default();
    let message = text(body.get("message"));
    let shown = message.as_deref().unwrap_or(result.as_str());
    let lockout = || ErrorClass::Lockout {
        retry_times_left: count(body.get("retry_times_left")),
        lock_time_left_minutes: count(body.get("lock_time_left")),
    };
    match result.as_str() {
        "success" => Ok(UpdatePasswordResponse {
            message,
            info: info.clone(),
        }),
        "passwordFailed" | "locked" => Err(failure(
            action,
            lockout(),
            ErrorKind::PasswordLockout,
            &result,
            shown,
            info,
            secrets,
        )),
        "" => Err(failure(
            action,
            ErrorClass::Permanent,
            ErrorKind::InvalidResponse,
            "missing-result",
            "the answer has no result",
            info,
            secrets,
        )),
        other => Err(failure(
            action,
            ErrorClass::Permanent,
            ErrorKind::Other,
            other,
            shown,
            info,
            secrets,
        )),
    }
}

/// Checks a ResetPassword answer: `code` 1 is success, 3 means locked.
pub fn check_reset_answer(
    body: &Value,
    info: &CallInfo,
    secrets: &[String],
) -> Result<ResetPasswordResponse, ProviderError> {
    check_password_reset_answer("ResetPassword", body, info, secrets)
}

/// The `code` answer of a password reset (the instance's ResetPassword,
/// an ACL account's ResetAclAccountPassWord).
pub(crate) fn check_password_reset_answer(
    action: &str,
    body: &Value,
    info: &CallInfo,
    secrets: &[String],
) -> Result<ResetPasswordResponse, ProviderError> {
    let code = text(body.get("code")).unwrap_or_default();
    let message = text(body.get("message"));
    let shown = message.as_deref().unwrap_or("reset failed");
    match code.as_str() {
        "1" => Ok(ResetPasswordResponse {
            message,
            info: info.clone(),
        }),
        "3" => Err(failure(
            action,
            ErrorClass::Lockout {
                retry_times_left: count(body.get("retry_times_left")),
                lock_time_left_minutes: count(body.get("lock_time_left")),
            },
            ErrorKind::PasswordLockout,
            &code,
            shown,
            info,
            secrets,
        )),
        "" => Err(failure(
            action,
            ErrorClass::Permanent,
            ErrorKind::InvalidResponse,
            "missing-code",
            "the answer has no code",
            info,
            secrets,
        )),
        other => Err(failure(
            action,
            ErrorClass::Permanent,
            ErrorKind::Other,
            other,
            shown,
            info,
            secrets,
        )),
    }
}

#[derive(Deserialize)]
struct InstanceWire {
    #[serde(default)]
    instance_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    no_password_access: Option<Value>,
}

impl InstanceWire {
    fn into_instance(self, asked_id: &str, info: CallInfo) -> DcsInstance {
        DcsInstance {
            instance_id: self.instance_id.unwrap_or_else(|| asked_id.to_owned()),
            name: self.name,
            status: self.status,
            description: self.description,
            no_password_access: flag(self.no_password_access.as_ref()),
            info,
        }
    }
}

#[derive(Deserialize)]
struct InstanceListWire {
    #[serde(default)]
    instance_num: Option<usize>,
    #[serde(default)]
    instances: Vec<InstanceWire>,
}

/// DCS calls of one connection.
#[derive(Debug, Clone)]
pub struct DcsClient {
    client: HuaweiClient,
}

impl DcsClient {
    pub(crate) fn new(client: HuaweiClient) -> Self {
        DcsClient { client }
    }

    fn instance_path(&self, action: &str, instance_id: &str) -> Result<String, ProviderError> {
        let instance_id = path_segment(HuaweiService::Dcs, action, "instance_id", instance_id)?;
        Ok(format!(
            "/v2/{}/instances/{instance_id}",
            self.client.project_id()
        ))
    }

    /// Old -> new. Not idempotent: after a success, the same call fails
    /// with `passwordFailed` and burns a try, so a lost answer is returned
    /// as `OutcomeUnknown` and never re-sent here.
    pub async fn update_password(
        &self,
        request: &UpdatePasswordRequest,
    ) -> Result<UpdatePasswordResponse, ProviderError> {
        let call = RestCall::new(
            HuaweiService::Dcs,
            "UpdatePassword",
            Method::PUT,
            format!(
                "{}/password",
                self.instance_path("UpdatePassword", &request.instance_id)?
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
        check_update_answer(&body, &info, &call.secrets)
    }

    /// Sets a new password without the old one. Idempotent in effect.
    pub async fn reset_password(
        &self,
        instance_id: &str,
        new_password: &Secret,
    ) -> Result<ResetPasswordResponse, ProviderError> {
        let call = RestCall::new(
            HuaweiService::Dcs,
            "ResetPassword",
            Method::POST,
            format!(
                "{}/password/reset",
                self.instance_path("ResetPassword", instance_id)?
            ),
            Idempotency::Idempotent,
        )
        .json(&json!({
            "new_password": new_password.expose(),
            "no_password_access": false,
        }))
        .secret(new_password.expose());
        let (body, info) = self.client.call(&call).await?;
        check_reset_answer(&body, &info, &call.secrets)
    }

    pub async fn show_instance(&self, instance_id: &str) -> Result<DcsInstance, ProviderError> {
        let call = RestCall::new(
            HuaweiService::Dcs,
            "ShowInstance",
            Method::GET,
            self.instance_path("ShowInstance", instance_id)?,
            Idempotency::Idempotent,
        );
        let (body, info) = self.client.call(&call).await?;
        let wire: InstanceWire = decode_body(Service::Dcs, call.action, body, &info)?;
        Ok(wire.into_instance(instance_id, info))
    }

    /// One page of the project's instances, from `offset`, at most
    /// [`MAX_INSTANCES_PAGE`] (`GET /v2/{project_id}/instances`, SDK
    /// `dcs_client.py` list_instances).
    pub async fn list_instances(&self, offset: usize) -> Result<DcsInstancePage, ProviderError> {
        let call = RestCall::new(
            HuaweiService::Dcs,
            "ListInstances",
            Method::GET,
            format!("/v2/{}/instances", self.client.project_id()),
            Idempotency::Idempotent,
        )
        .query("offset", offset.to_string())
        .query("limit", MAX_INSTANCES_PAGE.to_string());
        let (body, info) = self.client.call(&call).await?;
        let wire: InstanceListWire = decode_body(Service::Dcs, call.action, body, &info)?;
        let instances: Vec<DcsInstance> = wire
            .instances
            .into_iter()
            .map(|instance| instance.into_instance("", info.clone()))
            .collect();
        Ok(DcsInstancePage {
            total: wire.instance_num.unwrap_or(offset + instances.len()),
            instances,
        })
    }

    /// Sets the instance's description (`PUT /v2/{project_id}/instances/
    /// {instance_id}` with `ModifyInstanceBody{description}`, answered 204
    /// without a body; SDK `dcs_client.py` update_instance,
    /// `modify_instance_body.py`). Idempotent: the same text again changes
    /// nothing.
    pub async fn update_instance_description(
        &self,
        instance_id: &str,
        description: &str,
    ) -> Result<CallInfo, ProviderError> {
        let call = RestCall::new(
            HuaweiService::Dcs,
            "UpdateInstance",
            Method::PUT,
            self.instance_path("UpdateInstance", instance_id)?,
            Idempotency::Idempotent,
        )
        .json(&json!({ "description": description }));
        let (_, info) = self.client.call(&call).await?;
        Ok(info)
    }

    /// A cheap authenticated call: list one instance.
    pub async fn verify(&self) -> Result<Verified, ProviderError> {
        let call = RestCall::new(
            HuaweiService::Dcs,
            "ListInstances",
            Method::GET,
            format!("/v2/{}/instances", self.client.project_id()),
            Idempotency::Idempotent,
        )
        .query("limit", "1");
        let (_, info) = self.client.call(&call).await?;
        Ok(Verified {
            service: Service::Dcs,
            action: call.action,
            info,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> CallInfo {
        CallInfo {
            request_id: Some("req".into()),
            http_status: 200,
            attempts: 1,
        }
    }

    /// The seed's example answer (shared/seeds/004).
    #[test]
    fn update_success() {
        let body = json!({"lock_time":"0","result":"success","lock_time_left":"0","retry_times_left":"5","message":"Modify DCSInstance password success."});
        let ok = check_update_answer(&body, &info(), &[]).unwrap();
        assert_eq!(ok.info.request_id.as_deref(), Some("req"));
    }

    #[test]
    fn wrong_old_password_reports_tries_left() {
        let body = json!({"lock_time":null,"result":"passwordFailed","lock_time_left":null,"retry_times_left":"3","message":"Password authentication failed."});
        let error = check_update_answer(&body, &info(), &[]).unwrap_err();
        assert_eq!(
            error.class,
            ErrorClass::Lockout {
                retry_times_left: Some(3),
                lock_time_left_minutes: None
            }
        );
        assert_eq!(error.code.as_deref(), Some("passwordFailed"));
        assert_eq!(error.http_status, Some(200));
        assert!(error.is_lockout());
    }

    #[test]
    fn locked_reports_minutes_left() {
        let body = json!({"lock_time":"5","result":"locked","lock_time_left":4,"retry_times_left":"0","message":"locked"});
        let error = check_update_answer(&body, &info(), &[]).unwrap_err();
        assert_eq!(
            error.class,
            ErrorClass::Lockout {
                retry_times_left: Some(0),
                lock_time_left_minutes: Some(4)
            }
        );
    }

    #[test]
    fn failed_and_missing_results() {
        let error = check_update_answer(&json!({"result":"failed","message":"x"}), &info(), &[])
            .unwrap_err();
        assert_eq!(error.class, ErrorClass::Permanent);
        let error = check_update_answer(&json!({}), &info(), &[]).unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidResponse);
    }

    #[test]
    fn reset_codes() {
        let ok = json!({"retry_times_left":"5","lock_time":"0","lock_time_left":"0","code":"1","message":"success","ext_message":null});
        assert!(check_reset_answer(&ok, &info(), &[]).is_ok());
        let locked = json!({"retry_times_left":"5","lock_time":"0","lock_time_left":"3","code":"3","message":"instance is locked"});
        let error = check_reset_answer(&locked, &info(), &[]).unwrap_err();
        assert!(error.is_lockout());
        assert_eq!(error.message, "instance is locked");
        let numeric = json!({"code":1,"message":"success"});
        assert!(check_reset_answer(&numeric, &info(), &[]).is_ok());
        assert!(check_reset_answer(&json!({"code":"2"}), &info(), &[]).is_err());
    }

    #[test]
    fn a_message_echoing_the_password_is_redacted() {
        let body = json!({"result":"failed","message":"new password Sup3r-Secret! rejected"});
        let error = check_update_answer(&body, &info(), &["Sup3r-Secret!".to_owned()]).unwrap_err();
        assert!(!error.to_string().contains("Sup3r"));
    }

    #[test]
    fn a_result_code_echoing_the_password_is_redacted() {
        // Found by tests/fuzz_decoding.rs: the code is shown as it came.
        let body = json!({"result":"Sup3r-Secret! is weak"});
        let error = check_update_answer(&body, &info(), &["Sup3r-Secret!".to_owned()]).unwrap_err();
        assert!(!error.to_string().contains("Sup3r"), "{error}");
        let body = json!({"code":"Sup3r-Secret!"});
        let error = check_reset_answer(&body, &info(), &["Sup3r-Secret!".to_owned()]).unwrap_err();
        assert!(!error.to_string().contains("Sup3r"), "{error}");
    }
}
