//! DRS: change source/target passwords of many jobs in one call (v3
//! `batch-modify-pwd`, the only API that does it; v5 has none), pre-check
//! job states with `batch-status`, check the credentials.
//!
//! A batch answers HTTP 200 even when some items failed: every item gets
//! its own outcome, and an item the answer does not mention is reported
//! as `OutcomeUnknown`.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::HuaweiService;
use super::client::{HuaweiClient, RestCall};
use crate::providers::{
    CallInfo, ErrorClass, ErrorKind, Idempotency, ProviderError, Secret, Service, Verified,
    decode_body,
};

/// Which side of the job the password belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DrsEndpointType {
    /// `so`
    Source,
    /// `ta`
    Target,
}

impl DrsEndpointType {
    pub fn as_str(self) -> &'static str {
        match self {
            DrsEndpointType::Source => "so",
            DrsEndpointType::Target => "ta",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DrsPasswordChange {
    pub job_id: String,
    pub end_point_type: DrsEndpointType,
    pub db_password: Secret,
}

/// The outcome of one item of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrsItemResult {
    pub job_id: String,
    pub end_point_type: DrsEndpointType,
    pub outcome: Result<(), ProviderError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchModifyPasswordResponse {
    /// One entry per requested change, in request order.
    pub results: Vec<DrsItemResult>,
    pub info: CallInfo,
}

impl BatchModifyPasswordResponse {
    pub fn all_succeeded(&self) -> bool {
        self.results.iter().all(|r| r.outcome.is_ok())
    }

    pub fn failures(&self) -> impl Iterator<Item = &DrsItemResult> {
        self.results.iter().filter(|r| r.outcome.is_err())
    }
}

/// The state of one job from `batch-status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrsJobStatus {
    pub job_id: String,
    pub status: Option<String>,
    /// The job's own failure: `error_code`/`error_message` beside a status
    /// (SDK `QueryJobStatusResp`), e.g. why a job is `INCRE_TRANSFER_FAILED`.
    /// It says nothing about whether the lookup worked.
    pub job_error: Option<DrsJobError>,
    /// DRS could not report this job: a result without a status (e.g. the
    /// job does not exist), or no result at all.
    pub lookup_error: Option<ProviderError>,
}

/// Why a DRS job failed, as `batch-status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrsJobError {
    pub code: String,
    pub message: Option<String>,
}

impl DrsJobStatus {
    pub fn accepts_password_change(&self) -> bool {
        self.lookup_error.is_none()
            && self
                .status
                .as_deref()
                .is_some_and(drs_status_accepts_password_change)
    }
}

/// `batch-status` pages its results: `per_page` defaults to 5 and is at
/// most 100 (SDK `PageReq`), so ids go 100 to a call, asking for all of
/// them on page 1.
pub const DRS_STATUS_PAGE: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchStatusResponse {
    pub jobs: Vec<DrsJobStatus>,
    pub info: CallInfo,
}

/// Job states in which `batch-modify-pwd` works. The constraint text
/// writes `STARTJOB_FAILED`, the SDK enums `START_JOB_FAILED`: both count.
pub const DRS_STATES_ACCEPTING_PASSWORD_CHANGE: [&str; 9] = [
    "STARTJOBING",
    "STARTJOB_FAILED",
    "START_JOB_FAILED",
    "FULL_TRANSFER_STARTED",
    "FULL_TRANSFER_FAILED",
    "FULL_TRANSFER_COMPLETE",
    "INCRE_TRANSFER_STARTED",
    "INCRE_TRANSFER_FAILED",
    "PAUSING",
];

pub fn drs_status_accepts_password_change(status: &str) -> bool {
    DRS_STATES_ACCEPTING_PASSWORD_CHANGE
        .iter()
        .any(|accepting| accepting.eq_ignore_ascii_case(status.trim()))
}

#[derive(Deserialize)]
struct ModifyItemWire {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    end_point_type: Option<String>,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    error_msg: Option<String>,
}

#[derive(Deserialize)]
struct BatchModifyWire {
    #[serde(default)]
    results: Vec<ModifyItemWire>,
}

#[derive(Deserialize)]
struct StatusItemWire {
    id: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default, alias = "error_msg")]
    error_message: Option<String>,
}

#[derive(Deserialize)]
struct BatchStatusWire {
    #[serde(default)]
    results: Vec<StatusItemWire>,
}

fn item_error(
    action: &str,
    code: Option<String>,
    message: Option<String>,
    info: &CallInfo,
    secrets: &[String],
) -> ProviderError {
    let (class, kind) = super::client::classify(
        info.http_status,
        code.as_deref(),
        message.as_deref().unwrap_or(""),
    );
    // An item that failed for a reason we do not know is not retried blindly.
    let (class, kind) = if code.is_none() {
        (ErrorClass::Permanent, ErrorKind::Other)
    } else {
        (class, kind)
    };
    ProviderError::new(
        class,
        kind,
        Service::Drs,
        action,
        message.as_deref().unwrap_or("the item failed"),
        secrets,
    )
    .with_status(info.http_status)
    .with_code(code)
    .with_request_id(info.request_id.clone())
    .redacted(secrets)
}

/// Pairs each requested change with its result: by job id and endpoint
/// type, or by job id alone when the answer omits the type.
fn match_results(
    changes: &[DrsPasswordChange],
    items: Vec<ModifyItemWire>,
    info: &CallInfo,
    secrets: &[String],
) -> Vec<DrsItemResult> {
    const ACTION: &str = "BatchResetPassword";
    let mut items: Vec<Option<ModifyItemWire>> = items.into_iter().map(Some).collect();
    changes
        .iter()
        .map(|change| {
            let found = items.iter_mut().find(|slot| {
                slot.as_ref().is_some_and(|item| {
                    item.id.as_deref() == Some(change.job_id.as_str())
                        && item
                            .end_point_type
                            .as_deref()
                            .is_none_or(|t| t == change.end_point_type.as_str())
                })
            });
            let outcome = match found.and_then(Option::take) {
                Some(item) if item.status.as_deref() == Some("success") => Ok(()),
                Some(item) => Err(item_error(
                    ACTION,
                    item.error_code,
                    item.error_msg,
                    info,
                    secrets,
                )),
                None => Err(ProviderError::new(
                    ErrorClass::OutcomeUnknown,
                    ErrorKind::InvalidResponse,
                    Service::Drs,
                    ACTION,
                    "the answer has no result for this job",
                    secrets,
                )
                .with_status(info.http_status)
                .with_request_id(info.request_id.clone())),
            };
            DrsItemResult {
                job_id: change.job_id.clone(),
                end_point_type: change.end_point_type,
                outcome,
            }
        })
        .collect()
}

/// Reads a `batch-modify-pwd` answer into one result per requested change
/// (public for the fuzz targets, `tests/fuzz_decoding.rs`).
pub fn parse_batch_modify_answer(
    changes: &[DrsPasswordChange],
    body: serde_json::Value,
    info: &CallInfo,
    secrets: &[String],
) -> Result<Vec<DrsItemResult>, ProviderError> {
    let wire: BatchModifyWire = decode_body(Service::Drs, "BatchResetPassword", body, info)?;
    Ok(match_results(changes, wire.results, info, secrets))
}

/// Reads a `batch-status` answer into the state of each job (public for
/// the fuzz targets). A result with a status is the job's state, its
/// error fields the job's own failure; a result without a status is a
/// failed lookup.
pub fn parse_batch_status_answer(
    body: serde_json::Value,
    info: &CallInfo,
) -> Result<Vec<DrsJobStatus>, ProviderError> {
    const ACTION: &str = "BatchListJobStatus";
    let wire: BatchStatusWire = decode_body(Service::Drs, ACTION, body, info)?;
    Ok(wire
        .results
        .into_iter()
        .map(|item| {
            let status = item.status.filter(|s| !s.is_empty());
            let code = item.error_code.filter(|code| !code.is_empty());
            let (job_error, lookup_error) = match (&status, code) {
                (Some(_), code) => (
                    code.map(|code| DrsJobError {
                        code,
                        message: item.error_message,
                    }),
                    None,
                ),
                (None, code) => (
                    None,
                    Some(item_error(ACTION, code, item.error_message, info, &[])),
                ),
            };
            DrsJobStatus {
                job_id: item.id,
                status,
                job_error,
                lookup_error,
            }
        })
        .collect())
}

/// What a `batch-status` answer that left a job out says about it.
pub fn missing_from_answer(job_id: &str, info: &CallInfo) -> DrsJobStatus {
    DrsJobStatus {
        job_id: job_id.to_owned(),
        status: None,
        job_error: None,
        lookup_error: Some(
            ProviderError::new(
                ErrorClass::Retryable,
                ErrorKind::InvalidResponse,
                Service::Drs,
                "BatchListJobStatus",
                "the answer has no result for this job",
                &[],
            )
            .with_status(info.http_status)
            .with_request_id(info.request_id.clone()),
        ),
    }
}

/// DRS calls of one connection.
#[derive(Debug, Clone)]
pub struct DrsClient {
    client: HuaweiClient,
}

impl DrsClient {
    pub(crate) fn new(client: HuaweiClient) -> Self {
        DrsClient { client }
    }

    /// Changes many passwords in one call. Idempotent in effect (setting a
    /// password again is accepted), so a lost answer is retried. The whole
    /// call fails only when DRS refused the request itself; item failures
    /// are in [`BatchModifyPasswordResponse::results`].
    pub async fn batch_modify_password(
        &self,
        changes: &[DrsPasswordChange],
    ) -> Result<BatchModifyPasswordResponse, ProviderError> {
        const ACTION: &str = "BatchResetPassword";
        if changes.is_empty() {
            return Err(ProviderError::new(
                ErrorClass::Permanent,
                ErrorKind::InvalidParameter,
                Service::Drs,
                ACTION,
                "a batch needs at least one job",
                &[],
            ));
        }
        let jobs: Vec<_> = changes
            .iter()
            .map(|c| {
                json!({
                    "db_password": c.db_password.expose(),
                    "end_point_type": c.end_point_type.as_str(),
                    "job_id": c.job_id,
                })
            })
            .collect();
        let mut call = RestCall::new(
            HuaweiService::Drs,
            ACTION,
            Method::PUT,
            format!("/v3/{}/jobs/batch-modify-pwd", self.client.project_id()),
            Idempotency::Idempotent,
        )
        .json(&json!({ "jobs": jobs }));
        for change in changes {
            call = call.secret(change.db_password.expose());
        }
        let (body, info) = self.client.call(&call).await?;
        let results = parse_batch_modify_answer(changes, body, &info, &call.secrets)?;
        Ok(BatchModifyPasswordResponse { results, info })
    }

    /// The state of each job, to check before changing passwords, in the
    /// order asked; a job the answers leave out gets a lookup error.
    pub async fn batch_status(
        &self,
        job_ids: &[&str],
    ) -> Result<BatchStatusResponse, ProviderError> {
        const ACTION: &str = "BatchListJobStatus";
        let mut jobs = Vec::with_capacity(job_ids.len());
        let mut info = CallInfo::default();
        for chunk in job_ids.chunks(DRS_STATUS_PAGE) {
            let call = RestCall::new(
                HuaweiService::Drs,
                ACTION,
                Method::POST,
                format!("/v3/{}/jobs/batch-status", self.client.project_id()),
                Idempotency::Idempotent,
            )
            .json(&json!({
                "jobs": chunk,
                "page_req": {"cur_page": 1, "per_page": DRS_STATUS_PAGE},
            }));
            let (body, chunk_info) = self.client.call(&call).await?;
            let answered = parse_batch_status_answer(body, &chunk_info)?;
            // A job may be asked for twice (its source and its target).
            jobs.extend(chunk.iter().map(|id| {
                answered
                    .iter()
                    .find(|job| job.job_id == *id)
                    .cloned()
                    .unwrap_or_else(|| missing_from_answer(id, &chunk_info))
            }));
            info = chunk_info;
        }
        Ok(BatchStatusResponse { jobs, info })
    }

    /// A cheap authenticated call: list one job (v5).
    pub async fn verify(&self) -> Result<Verified, ProviderError> {
        let call = RestCall::new(
            HuaweiService::Drs,
            "ListJobs",
            Method::GET,
            format!("/v5/{}/jobs", self.client.project_id()),
            Idempotency::Idempotent,
        )
        .query("limit", "1")
        .query("offset", "0");
        let (_, info) = self.client.call(&call).await?;
        Ok(Verified {
            service: Service::Drs,
            action: call.action,
            info,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(job: &str, side: DrsEndpointType) -> DrsPasswordChange {
        DrsPasswordChange {
            job_id: job.into(),
            end_point_type: side,
            db_password: Secret::new("N3w-P@ss!"),
        }
    }

    fn info() -> CallInfo {
        CallInfo {
            request_id: Some("r".into()),
            http_status: 200,
            attempts: 1,
        }
    }

    #[test]
    fn both_spellings_of_the_failed_start_state_accept() {
        assert!(drs_status_accepts_password_change("STARTJOB_FAILED"));
        assert!(drs_status_accepts_password_change("START_JOB_FAILED"));
        assert!(drs_status_accepts_password_change("INCRE_TRANSFER_STARTED"));
        for refusing in [
            "CREATING",
            "CONFIGURATION",
            "WAITING_FOR_START",
            "RELEASE_RESOURCE_COMPLETE",
            "DELETED",
            "",
        ] {
            assert!(!drs_status_accepts_password_change(refusing), "{refusing}");
        }
    }

    #[test]
    fn per_item_results_are_matched_and_classified() {
        let changes = vec![
            change("j1", DrsEndpointType::Source),
            change("j1", DrsEndpointType::Target),
            change("j2", DrsEndpointType::Source),
            change("j3", DrsEndpointType::Target),
            change("j4", DrsEndpointType::Source),
        ];
        let wire: BatchModifyWire = serde_json::from_value(json!({
            "count": 4,
            "results": [
                {"id":"j1","status":"success","end_point_type":"ta"},
                {"id":"j1","status":"success","end_point_type":"so"},
                {"id":"j2","status":"failed","end_point_type":"so","error_code":"DRS.M00304","error_msg":"The API cannot be called in the current job status."},
                {"id":"j3","status":"failed","end_point_type":"ta","error_code":"DRS.10000010","error_msg":"Job does not exist, please check job ID."}
            ]
        }))
        .unwrap();
        let results = match_results(&changes, wire.results, &info(), &[]);
        assert_eq!(results.len(), 5);
        assert!(results[0].outcome.is_ok() && results[1].outcome.is_ok());
        let state = results[2].outcome.as_ref().unwrap_err();
        assert_eq!(state.kind, ErrorKind::InvalidState);
        assert_eq!(state.code.as_deref(), Some("DRS.M00304"));
        assert_eq!(state.request_id.as_deref(), Some("r"));
        assert!(results[3].outcome.as_ref().unwrap_err().is_not_found());
        let missing = results[4].outcome.as_ref().unwrap_err();
        assert_eq!(missing.class, ErrorClass::OutcomeUnknown);
        let response = BatchModifyPasswordResponse {
            results,
            info: info(),
        };
        assert!(!response.all_succeeded());
        assert_eq!(response.failures().count(), 3);
    }

    /// A status with error fields is a failed job (it may still take a
    /// password); only a result without a status is a failed lookup.
    #[test]
    fn a_failed_job_is_not_a_failed_lookup() {
        let jobs = parse_batch_status_answer(
            json!({"count": 3, "results": [
                {"id":"j1","status":"INCRE_TRANSFER_FAILED","error_code":"DRS.M00004","error_message":"Service is abnormal."},
                {"id":"j2","error_code":"DRS.10000010","error_message":"Job does not exist, please check job ID."},
                {"id":"j3","status":"INCRE_TRANSFER_STARTED"}
            ]}),
            &info(),
        )
        .unwrap();
        assert!(jobs[0].accepts_password_change());
        assert_eq!(jobs[0].job_error.as_ref().unwrap().code, "DRS.M00004");
        assert!(jobs[0].lookup_error.is_none());
        let lookup = jobs[1].lookup_error.as_ref().unwrap();
        assert!(lookup.is_not_found());
        assert!(!jobs[1].accepts_password_change());
        assert!(jobs[2].accepts_password_change() && jobs[2].job_error.is_none());
        let missing = missing_from_answer("j4", &info());
        assert!(missing.lookup_error.unwrap().is_retryable());
    }

    /// The seeds' example answer (shared/seeds/001, 002) parses.
    #[test]
    fn the_seed_example_answer_parses() {
        let job = "8d0e8e36-a618-490d-8a46-8c61ac9jb502";
        let changes = vec![
            change(job, DrsEndpointType::Source),
            change(job, DrsEndpointType::Target),
        ];
        let body = json!({
          "results" : [ {"id" : job, "status" : "success", "end_point_type" : "so"},
                        {"id" : job, "status" : "success", "end_point_type" : "ta"} ],
          "count" : 2
        });
        let results = parse_batch_modify_answer(&changes, body, &info(), &[]).unwrap();
        assert!(results.iter().all(|r| r.outcome.is_ok()));
    }

    #[test]
    fn items_without_end_point_type_match_by_job() {
        let changes = vec![change("j1", DrsEndpointType::Source)];
        let wire: BatchModifyWire =
            serde_json::from_value(json!({"results":[{"id":"j1","status":"success"}]})).unwrap();
        assert!(
            match_results(&changes, wire.results, &info(), &[])[0]
                .outcome
                .is_ok()
        );
        let failed: BatchModifyWire =
            serde_json::from_value(json!({"results":[{"id":"j1","status":"failed"}]})).unwrap();
        let outcome = &match_results(&changes, failed.results, &info(), &[])[0].outcome;
        assert_eq!(outcome.as_ref().unwrap_err().class, ErrorClass::Permanent);
    }

    #[test]
    fn the_request_body_matches_the_reference_bytes() {
        let body = serde_json::to_vec(&json!({"jobs":[json!({
            "db_password": "N3w-P@ss!",
            "end_point_type": "so",
            "job_id": "140b5236-88ad-43c8-811c-1268453jb101",
        })]}))
        .unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"jobs":[{"db_password":"N3w-P@ss!","end_point_type":"so","job_id":"140b5236-88ad-43c8-811c-1268453jb101"}]}"#
        );
    }
}
