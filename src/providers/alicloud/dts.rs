//! DTS (version 2020-01-01): change the source or destination password a
//! job uses, read the job, check the credentials.
//!
//! `ModifyDtsJobPassword` is not idempotent: DTS refuses a new password
//! equal to the current one. A lost answer is therefore returned to the
//! caller as `OutcomeUnknown`, and sending the same password again answers
//! [`ErrorKind::SamePassword`](crate::providers::ErrorKind::SamePassword),
//! which confirms the earlier change happened.

use serde::Deserialize;

use super::client::{AlibabaClient, RpcCall};
use crate::providers::{
    CallInfo, Idempotency, ProviderError, Secret, Service, Verified, decode_body,
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
    pub fn accepts_password_change(&self) -> bool {
        dts_status_accepts_password_change(&self.status)
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
            Service::Dts,
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
        let (_, info) = self.client.call(&call).await?;
        Ok(ModifyDtsJobPasswordResponse { info })
    }

    pub async fn describe_dts_job_detail(
        &self,
        dts_job_id: &str,
        region_id: Option<&str>,
    ) -> Result<DtsJobDetail, ProviderError> {
        let call = RpcCall::new(
            Service::Dts,
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
        let call = RpcCall::new(Service::Dts, "DescribeDtsJobs", Idempotency::Idempotent)
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

    #[test]
    fn job_detail_decodes() {
        let body: DtsJobDetailBody = decode_body(
            Service::Dts,
            "DescribeDtsJobDetail",
            serde_json::json!({
                "RequestId":"R","HttpStatusCode":200,"Success":true,"DtsJobId":"j1","Status":"Synchronizing",
                "SourceEndpoint":{"UserName":"dtstest","InstanceID":"rm-1","Port":"3306"},
                "DestinationEndpoint":{"UserName":"dst","InstanceID":"pc-2"}
            }),
            &CallInfo::default(),
        )
        .unwrap();
        assert_eq!(body.status.as_deref(), Some("Synchronizing"));
        let source = body.source_endpoint.unwrap();
        assert_eq!(source.user_name.as_deref(), Some("dtstest"));
        assert_eq!(source.instance_id.as_deref(), Some("rm-1"));
        assert_eq!(
            body.destination_endpoint.unwrap().user_name.as_deref(),
            Some("dst")
        );
    }
}
