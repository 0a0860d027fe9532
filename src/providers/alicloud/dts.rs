//! DTS (version 2020-01-01): change the source or destination password a
//! job uses, read the job, check the credentials.
//!
//! `ModifyDtsJobPassword` is not idempotent: DTS documents that the
//! password "cannot be the same as the current password", but not the
//! answer it gives. A lost answer is therefore returned to the caller as
//! `OutcomeUnknown`; sending the same password again is either accepted or
//! refused with an `InvalidParameter` about `Password`, which this client
//! reports as [`ErrorKind::PasswordRefused`] whatever its wording.

use serde::Deserialize;

use super::AlibabaService;
use super::client::{AlibabaClient, RpcCall};
use crate::providers::{
    CallInfo, ErrorKind, Idempotency, ProviderError, Secret, Service, Verified, decode_body,
};

/// Which side of the job the password belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtsEndpoint {
    /// `src`
    Source,
    /// `dest`
    Destination,
}

impl DtsEndpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            DtsEndpoint::Source => "src",
            DtsEndpoint::Destination => "dest",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ModifyDtsJobPasswordRequest {
    pub dts_job_id: String,
    pub endpoint: DtsEndpoint,
    /// Must be the endpoint's current database account.
    pub user_name: String,
    pub password: Secret,
    /// Defaults to the connection's region.
    pub region_id: Option<String>,
    /// `Forward` (default) or `Reverse`, for two-way synchronisation only.
    pub synchronization_direction: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModifyDtsJobPasswordResponse {
    pub info: CallInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DtsEndpointDetail {
    pub user_name: Option<String>,
    #[serde(rename = "InstanceID", alias = "InstanceId")]
    pub instance_id: Option<String>,
    pub instance_type: Option<String>,
    pub engine_name: Option<String>,
    pub region: Option<String>,
    pub ip: Option<String>,
    pub port: Option<serde_json::Value>,
    pub database_name: Option<String>,
    /// Whether DTS accepts a password change for this endpoint now (SDK
    /// `DescribeDtsJobDetailResponseBodySourceEndpoint.can_modify_password`).
    pub can_modify_password: Option<serde_json::Value>,
}

impl DtsEndpointDetail {
    /// `CanModifyPassword` when the answer has it (a boolean, or its text).
    pub fn can_modify_password(&self) -> Option<bool> {
        match self.can_modify_password.as_ref()? {
            serde_json::Value::Bool(flag) => Some(*flag),
            serde_json::Value::String(text) => text.trim().parse().ok(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtsJobDetail {
    pub dts_job_id: String,
    pub status: String,
    pub source_endpoint: Option<DtsEndpointDetail>,
    pub destination_endpoint: Option<DtsEndpointDetail>,
    pub info: CallInfo,
}

impl DtsJobDetail {
    /// The endpoint's own `CanModifyPassword` when DTS reports it, else what
    /// the job's status allows.
    pub fn accepts_password_change(&self, which: DtsEndpoint) -> bool {
        self.endpoint(which)
            .and_then(DtsEndpointDetail::can_modify_password)
            .unwrap_or_else(|| dts_status_accepts_password_change(&self.status))
    }

    pub fn endpoint(&self, which: DtsEndpoint) -> Option<&DtsEndpointDetail> {
        match which {
            DtsEndpoint::Source => self.source_endpoint.as_ref(),
            DtsEndpoint::Destination => self.destination_endpoint.as_ref(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DtsJobDetailBody {
    #[serde(default)]
    dts_job_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    source_endpoint: Option<DtsEndpointDetail>,
    #[serde(default)]
    destination_endpoint: Option<DtsEndpointDetail>,
}

/// Job states in which DTS refuses a password change (answering
/// `OperationDenied.JobStatus`); every other state accepts it.
pub const DTS_STATES_REFUSING_PASSWORD_CHANGE: [&str; 7] = [
    "Modifying",
    "Locked",
    "Upgrade",
    "Downgrade",
    "Retrying",
    "NotConfigured",
    "Prechecking",
];

pub fn dts_status_accepts_password_change(status: &str) -> bool {
    !DTS_STATES_REFUSING_PASSWORD_CHANGE
        .iter()
        .any(|refusing| refusing.eq_ignore_ascii_case(status))
}

/// An `InvalidParameter` answer (any code of that family) whose code or
/// message names the password becomes [`ErrorKind::PasswordRefused`]. DTS
/// names the offending parameter in `DynamicMessage`, which fills the `%s`
/// of `ErrMessage`; the wording around it is not relied on.
pub fn mark_password_refusal(mut error: ProviderError) -> ProviderError {
    let about_password = error
        .code
        .as_deref()
        .is_some_and(|code| code.to_ascii_lowercase().contains("password"))
        || error.message.to_ascii_lowercase().contains("password");
    let invalid_parameter = error
        .code
        .as_deref()
        .is_some_and(|code| code == "InvalidParameter" || code.starts_with("InvalidParameter."));
    if invalid_parameter && about_password {
        error.kind = ErrorKind::PasswordRefused;
    }
    error
}

/// DTS calls of one connection.
#[derive(Debug, Clone)]
pub struct DtsClient {
    client: AlibabaClient,
}

impl DtsClient {
    pub(crate) fn new(client: AlibabaClient) -> Self {
        DtsClient { client }
    }

    fn region<'a>(&'a self, explicit: Option<&'a str>) -> &'a str {
        explicit.unwrap_or(self.client.region())
    }

    /// Not idempotent: never re-sent after `OutcomeUnknown`.
    pub async fn modify_dts_job_password(
        &self,
        request: &ModifyDtsJobPasswordRequest,
    ) -> Result<ModifyDtsJobPasswordResponse, ProviderError> {
        let call = RpcCall::new(
            AlibabaService::Dts,
            "ModifyDtsJobPassword",
            Idempotency::NonIdempotent,
        )
        .param("DtsJobId", &request.dts_job_id)
        .param("Endpoint", request.endpoint.as_str())
        .param("UserName", &request.user_name)
        .secret_param("Password", request.password.expose())
        .param("RegionId", self.region(request.region_id.as_deref()))
        .optional(
            "SynchronizationDirection",
            request.synchronization_direction.as_deref(),
        );
        let (_, info) = self
            .client
            .call(&call)
            .await
            .map_err(mark_password_refusal)?;
        Ok(ModifyDtsJobPasswordResponse { info })
    }

    pub async fn describe_dts_job_detail(
        &self,
        dts_job_id: &str,
        region_id: Option<&str>,
    ) -> Result<DtsJobDetail, ProviderError> {
        let call = RpcCall::new(
            AlibabaService::Dts,
            "DescribeDtsJobDetail",
            Idempotency::Idempotent,
        )
        .param("DtsJobId", dts_job_id)
        .param("RegionId", self.region(region_id));
        let (body, info) = self.client.call(&call).await?;
        let body: DtsJobDetailBody = decode_body(Service::Dts, call.action, body, &info)?;
        Ok(DtsJobDetail {
            dts_job_id: body.dts_job_id.unwrap_or_else(|| dts_job_id.to_owned()),
            status: body.status.unwrap_or_default(),
            source_endpoint: body.source_endpoint,
            destination_endpoint: body.destination_endpoint,
            info,
        })
    }

    /// A cheap authenticated call: `DescribeDtsJobs` with one item per page.
    pub async fn verify(&self) -> Result<Verified, ProviderError> {
        let call = RpcCall::new(
            AlibabaService::Dts,
            "DescribeDtsJobs",
            Idempotency::Idempotent,
        )
        .param("RegionId", self.client.region())
        .param("PageSize", "1")
        .param("PageNumber", "1");
        let (_, info) = self.client.call(&call).await?;
        Ok(Verified {
            service: Service::Dts,
            action: call.action,
            info,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusing_states() {
        for state in DTS_STATES_REFUSING_PASSWORD_CHANGE {
            assert!(!dts_status_accepts_password_change(state));
        }
        for state in [
            "Synchronizing",
            "synchronizing",
            "Migrating",
            "Failed",
            "Suspending",
            "Finished",
        ] {
            assert!(dts_status_accepts_password_change(state), "{state}");
        }
    }

    fn refusal(code: &str, message: &str) -> ProviderError {
        mark_password_refusal(
            ProviderError::new(
                crate::providers::ErrorClass::Permanent,
                ErrorKind::InvalidParameter,
                Service::Dts,
                "ModifyDtsJobPassword",
                message,
                &[],
            )
            .with_code(Some(code.to_owned())),
        )
    }

    /// Any `InvalidParameter` about the password counts, whatever its
    /// wording; other parameters and other codes do not.
    #[test]
    fn password_refusals_are_recognised_by_parameter_not_wording() {
        for (code, message) in [
            (
                "InvalidParameter",
                "The Value of Input Parameter Password is not valid.",
            ),
            ("InvalidParameter.Password", "anything at all"),
            (
                "InvalidParameter",
                "The new password cannot be the same as the current password.",
            ),
        ] {
            assert!(refusal(code, message).is_password_refused(), "{code}");
        }
        for (code, message) in [
            (
                "InvalidParameter",
                "The Value of Input Parameter DtsJobId is not valid.",
            ),
            ("InvalidParameter.UserName", "bad user"),
            ("Forbidden.RAM", "no Password permission"),
        ] {
            assert!(!refusal(code, message).is_password_refused(), "{code}");
        }
    }

    #[test]
    fn can_modify_password_wins_over_the_status_rule() {
        let detail = |status: &str, can: Option<serde_json::Value>| DtsJobDetail {
            dts_job_id: "j".into(),
            status: status.into(),
            source_endpoint: Some(DtsEndpointDetail {
                can_modify_password: can,
                ..DtsEndpointDetail::default()
            }),
            destination_endpoint: None,
            info: CallInfo::default(),
        };
        let source = DtsEndpoint::Source;
        assert!(!detail("Synchronizing", Some(false.into())).accepts_password_change(source));
        assert!(detail("Modifying", Some(true.into())).accepts_password_change(source));
        assert!(detail("Synchronizing", Some("true".into())).accepts_password_change(source));
        assert!(detail("Synchronizing", None).accepts_password_change(source));
        assert!(!detail("Modifying", None).accepts_password_change(source));
        let no_endpoint = detail("Locked", Some(true.into()));
        assert!(!no_endpoint.accepts_password_change(DtsEndpoint::Destination));
    }

    /// The seed's example answer (shared/seeds/000) parses as a success.
    #[test]
    fn the_seed_success_answer_parses() {
        use crate::providers::alicloud::client::parse_response;
        use crate::providers::http::IncomingResponse;
        let body = r#"{"RequestId":"8C498360-7892-433C-847A-BA71A850****","HttpStatusCode":200,"Success":true}"#;
        let response = IncomingResponse {
            status: 200,
            headers: Default::default(),
            body: body.as_bytes().to_vec(),
        };
        let (_, info) =
            parse_response(AlibabaService::Dts, "ModifyDtsJobPassword", &response, &[]).unwrap();
        assert_eq!(
            info.request_id.as_deref(),
            Some("8C498360-7892-433C-847A-BA71A850****")
        );
    }

    #[test]
    fn job_detail_decodes() {
        let body: DtsJobDetailBody = decode_body(
            Service::Dts,
            "DescribeDtsJobDetail",
            serde_json::json!({
                "RequestId":"R","HttpStatusCode":200,"Success":true,"DtsJobId":"j1","Status":"Synchronizing",
                "SourceEndpoint":{"UserName":"dtstest","InstanceID":"rm-1","Port":"3306","CanModifyPassword":true},
                "DestinationEndpoint":{"UserName":"dst","InstanceID":"pc-2"}
            }),
            &CallInfo::default(),
        )
        .unwrap();
        assert_eq!(body.status.as_deref(), Some("Synchronizing"));
        let source = body.source_endpoint.unwrap();
        assert_eq!(source.user_name.as_deref(), Some("dtstest"));
        assert_eq!(source.instance_id.as_deref(), Some("rm-1"));
        assert_eq!(source.can_modify_password(), Some(true));
        assert_eq!(
            body.destination_endpoint.unwrap().user_name.as_deref(),
            Some("dst")
        );
    }
}
