//! Huawei Cloud APIs: DRS (v3 batch password change and status, v5 job
//! list), DCS (v2 change / reset password, show, list and update instances)
//! and IAM (v3.0 permanent access keys), routed by path. [`acl`] holds the
//! DCS ACL accounts.

mod acl;

pub use acl::AclOp;

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::auth::{self, HwCaller};
use super::codes::{self, Code};
use super::faults::Scripted;
use super::http::{Handled, Reply, Request, param};
use super::model::{DcsInstance, HwKey, World};
use super::rules::DCS;
use super::{FaultReplies, Inner, count_auth_failure, random_string, run_call};
use crate::providers::encoding::percent_decode;

/// DRS job states that accept a password change.
pub const DRS_ACCEPTING_STATES: &[&str] = &[
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

/// Wrong old passwords in a row before DCS locks password changes.
pub const DCS_MAX_TRIES: u32 = 5;
pub const DCS_LOCK_SECONDS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HwService {
    Drs,
    Dcs,
    Iam,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HwApi {
    DrsResetPassword {
        project: String,
    },
    DrsJobStatus {
        project: String,
    },
    DrsListJobs {
        project: String,
    },
    DcsUpdatePassword {
        project: String,
        instance: String,
    },
    DcsResetPassword {
        project: String,
        instance: String,
    },
    DcsShowInstance {
        project: String,
        instance: String,
    },
    DcsUpdateInstance {
        project: String,
        instance: String,
    },
    DcsListInstances {
        project: String,
    },
    DcsAcl {
        project: String,
        instance: String,
        account: Option<String>,
        op: AclOp,
    },
    IamCreateKey,
    IamListKeys,
    IamShowKey {
        access: String,
    },
    IamDeleteKey {
        access: String,
    },
}

impl HwApi {
    pub fn route(method: &str, path: &str) -> Option<Self> {
        let segments: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(percent_decode)
            .collect();
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        let owned = |v: &str| v.to_owned();
        Some(match (method, s.as_slice()) {
            ("PUT", ["v3", p, "jobs", "batch-modify-pwd"]) => {
                Self::DrsResetPassword { project: owned(p) }
            }
            ("POST", ["v3", p, "jobs", "batch-status"]) => Self::DrsJobStatus { project: owned(p) },
            ("GET", ["v5", p, "jobs"]) => Self::DrsListJobs { project: owned(p) },
            ("PUT", ["v2", p, "instances", i, "password"]) => Self::DcsUpdatePassword {
                project: owned(p),
                instance: owned(i),
            },
            ("POST", ["v2", p, "instances", i, "password", "reset"]) => Self::DcsResetPassword {
                project: owned(p),
                instance: owned(i),
            },
            ("GET", ["v2", p, "instances", i]) => Self::DcsShowInstance {
                project: owned(p),
                instance: owned(i),
            },
            ("PUT", ["v2", p, "instances", i]) => Self::DcsUpdateInstance {
                project: owned(p),
                instance: owned(i),
            },
            ("GET", ["v2", p, "instances"]) => Self::DcsListInstances { project: owned(p) },
            (method, ["v2", p, "instances", i, "accounts", rest @ ..]) => {
                let (account, op) = match (method, rest) {
                    ("GET", []) => (None, AclOp::List),
                    ("POST", []) => (None, AclOp::Create),
                    ("PUT", [a, "password", "modify"]) => (Some(owned(a)), AclOp::UpdatePassword),
                    ("PUT", [a, "password", "reset"]) => (Some(owned(a)), AclOp::ResetPassword),
                    ("PUT", [a, "role"]) => (Some(owned(a)), AclOp::UpdateRole),
                    ("DELETE", [a]) => (Some(owned(a)), AclOp::Delete),
                    _ => return None,
                };
                Self::DcsAcl {
                    project: owned(p),
                    instance: owned(i),
                    account,
                    op,
                }
            }
            ("POST", ["v3.0", "OS-CREDENTIAL", "credentials"]) => Self::IamCreateKey,
            ("GET", ["v3.0", "OS-CREDENTIAL", "credentials"]) => Self::IamListKeys,
            ("GET", ["v3.0", "OS-CREDENTIAL", "credentials", a]) => {
                Self::IamShowKey { access: owned(a) }
            }
            ("DELETE", ["v3.0", "OS-CREDENTIAL", "credentials", a]) => {
                Self::IamDeleteKey { access: owned(a) }
            }
            _ => return None,
        })
    }

    /// The API's name in counters and fault scopes (the SDK method names).
    pub fn name(&self) -> &'static str {
        match self {
            Self::DrsResetPassword { .. } => "drs.BatchResetPassword",
            Self::DrsJobStatus { .. } => "drs.BatchListJobStatus",
            Self::DrsListJobs { .. } => "drs.ListJobs",
            Self::DcsUpdatePassword { .. } => "dcs.UpdatePassword",
            Self::DcsResetPassword { .. } => "dcs.ResetPassword",
            Self::DcsShowInstance { .. } => "dcs.ShowInstance",
            Self::DcsUpdateInstance { .. } => "dcs.UpdateInstance",
            Self::DcsListInstances { .. } => "dcs.ListInstances",
            Self::DcsAcl { op, .. } => op.name(),
            Self::IamCreateKey => "iam.CreatePermanentAccessKey",
            Self::IamListKeys => "iam.ListPermanentAccessKeys",
            Self::IamShowKey { .. } => "iam.ShowPermanentAccessKey",
            Self::IamDeleteKey { .. } => "iam.DeletePermanentAccessKey",
        }
    }

    pub fn service(&self) -> HwService {
        match self {
            Self::DrsResetPassword { .. }
            | Self::DrsJobStatus { .. }
            | Self::DrsListJobs { .. } => HwService::Drs,
            Self::DcsUpdatePassword { .. }
            | Self::DcsResetPassword { .. }
            | Self::DcsShowInstance { .. }
            | Self::DcsUpdateInstance { .. }
            | Self::DcsListInstances { .. }
            | Self::DcsAcl { .. } => HwService::Dcs,
            _ => HwService::Iam,
        }
    }
}

pub struct HwCtx {
    request_id: String,
    service: Option<HwService>,
}

/// `batch-status` pages its results (SDK `PageReq`): 5 a page unless the
/// request says otherwise, at most 100, 0 for all.
pub const DRS_STATUS_DEFAULT_PER_PAGE: usize = 5;
pub const DRS_STATUS_MAX_PER_PAGE: usize = 100;

impl HwCtx {
    fn reply(&self, status: u16, body: &Value) -> Reply {
        Reply::json(status, body).with_header("x-request-id", self.request_id.clone())
    }

    /// The API gateway's error shape.
    pub fn gateway_error(&self, status: u16, code: Code, message: &str) -> Reply {
        self.gateway_error_text(status, code.as_str(), message)
    }

    fn gateway_error_text(&self, status: u16, code: &str, message: &str) -> Reply {
        self.reply(
            status,
            &json!({"error_msg": message, "error_code": code, "request_id": self.request_id}),
        )
    }

    /// The service's own error shape.
    fn error(&self, status: u16, code: Code, message: &str) -> Reply {
        self.error_text(status, code.as_str(), message)
    }

    fn error_text(&self, status: u16, code: &str, message: &str) -> Reply {
        let body = match self.service {
            Some(HwService::Dcs) => {
                json!({"error_code": code, "error_msg": message, "error_ext_msg": null})
            }
            _ => json!({"error_code": code, "error_msg": message}),
        };
        self.reply(status, &body)
    }

    /// IAM's documented answer to a third access key: no code of its own.
    fn iam_key_limit(&self) -> Reply {
        self.reply(
            400,
            &json!({"error": {"message": "akSkNumExceed", "code": 400,
                "title": "Bad Request", "error_msg": null, "error_code": null}}),
        )
    }
}

impl FaultReplies for HwCtx {
    fn throttled(&self, _retry_after_ms: u64, limit_per_minute: Option<u32>) -> Reply {
        self.gateway_error(
            429,
            codes::APIGW_THROTTLED,
            &format!(
                "The throttling threshold has been reached: policy user over ratelimit,limit:{},time:1 minute",
                limit_per_minute.unwrap_or(60)
            ),
        )
    }

    fn server_error(&self, variant: u8) -> Reply {
        if variant == 0 {
            self.gateway_error(502, codes::APIGW_BACKEND, "Backend unavailable")
        } else {
            self.gateway_error(504, codes::APIGW_BACKEND, "Backend timeout")
        }
    }

    fn scripted(&self, entry: &Scripted) -> Reply {
        let message = entry.message.as_deref().unwrap_or(&entry.code);
        let service = match self.service {
            Some(HwService::Drs) => "drs",
            Some(HwService::Dcs) => "dcs",
            _ => "iam",
        };
        let status = entry
            .status
            .or_else(|| codes::documented_status(service, &entry.code))
            .unwrap_or(400);
        if entry.code == "message: akSkNumExceed" {
            self.iam_key_limit()
        } else if entry.code.starts_with("APIGW.") || entry.code.starts_with("APIG.") {
            self.gateway_error_text(status, &entry.code, message)
        } else {
            self.error_text(status, &entry.code, message)
        }
    }
}

pub fn handle(inner: &mut Inner, now: OffsetDateTime, request: &Request, id: u128) -> Handled {
    let mut ctx = HwCtx {
        request_id: format!("{id:032x}"),
        service: None,
    };
    let Some(api) = HwApi::route(&request.method, &request.path) else {
        return Handled::reply(ctx.gateway_error(
            404,
            codes::APIGW_API_NOT_FOUND,
            "The API does not exist or has not been published in the environment",
        ));
    };
    ctx.service = Some(api.service());
    inner.counters.call(api.name());
    let caller = match auth::verify_huawei(&inner.world, &mut inner.hw_locks, now, request) {
        Ok(caller) => caller,
        Err(error) => {
            count_auth_failure(inner, error.locked);
            return Handled::reply(ctx.gateway_error(error.status, error.code, &error.message));
        }
    };
    if api.service() == HwService::Iam && !scoped(request) {
        // A global service: the SDK always sends one of the two, signed.
        return Handled::reply(ctx.gateway_error(
            401,
            codes::APIGW_AUTH,
            "Incorrect IAM authentication information: x-domain-id or x-project-id not found or not signed",
        ));
    }
    run_call(inner, now, api.name(), &caller.access, &ctx, |inner| {
        let call = Call {
            ctx: &ctx,
            request,
            caller: &caller,
            now,
        };
        call.dispatch(&mut inner.world, &api)
            .unwrap_or_else(|error| error)
    })
}

/// Whether an IAM call carries a signed `X-Domain-Id` or `X-Project-Id`.
fn scoped(request: &Request) -> bool {
    let signed = request
        .header("authorization")
        .and_then(crate::providers::huaweicloud::sign::parse_authorization)
        .map(|auth| auth.signed_headers)
        .unwrap_or_default();
    ["x-domain-id", "x-project-id"].iter().any(|name| {
        request.header(name).is_some_and(|v| !v.trim().is_empty())
            && signed.iter().any(|s| s == name)
    })
}

struct Call<'a> {
    ctx: &'a HwCtx,
    request: &'a Request,
    caller: &'a HwCaller,
    now: OffsetDateTime,
}

type Answer = Result<Reply, Reply>;

fn str_field<'v>(value: &'v Value, name: &str) -> Option<&'v str> {
    value.get(name).and_then(Value::as_str)
}

fn page(request: &Request, default_limit: usize) -> (usize, usize) {
    let query = request.query_params();
    let number = |name: &str| param(&query, name).and_then(|v| v.parse::<usize>().ok());
    (
        number("offset").unwrap_or(0),
        number("limit").unwrap_or(default_limit),
    )
}

impl Call<'_> {
    fn dispatch(&self, world: &mut World, api: &HwApi) -> Answer {
        match api {
            HwApi::DrsResetPassword { project } => self.drs_reset_password(world, project),
            HwApi::DrsJobStatus { project } => self.drs_job_status(world, project),
            HwApi::DrsListJobs { project } => Ok(self.drs_list_jobs(world, project)),
            HwApi::DcsUpdatePassword { project, instance } => {
                self.remember_body_secrets(world, &["old_password", "new_password"]);
                self.dcs_update_password(world, project, instance)
            }
            HwApi::DcsResetPassword { project, instance } => {
                self.remember_body_secrets(world, &["new_password"]);
                self.dcs_reset_password(world, project, instance)
            }
            HwApi::DcsShowInstance { project, instance } => {
                let found = self.dcs_instance(world, project, instance)?;
                Ok(self.ctx.reply(200, &dcs_view(found)))
            }
            HwApi::DcsUpdateInstance { project, instance } => {
                self.dcs_update_instance(world, project, instance)
            }
            HwApi::DcsListInstances { project } => Ok(self.dcs_list_instances(world, project)),
            HwApi::DcsAcl {
                project,
                instance,
                account,
                op,
            } => self.dcs_acl(world, project, instance, account.as_deref(), *op),
            HwApi::IamCreateKey => self.iam_create_key(world),
            HwApi::IamListKeys => self.iam_list_keys(world),
            HwApi::IamShowKey { access } => self.iam_show_key(world, access),
            HwApi::IamDeleteKey { access } => self.iam_delete_key(world, access),
        }
    }

    fn body(&self, invalid_code: Code) -> Result<Value, Reply> {
        serde_json::from_slice::<Value>(&self.request.body)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| {
                self.ctx.error(
                    400,
                    invalid_code,
                    "The request body is not a valid JSON object.",
                )
            })
    }

    // DRS

    fn drs_id_list<'v>(&self, body: &'v Value) -> Result<&'v Vec<Value>, Reply> {
        body.get("jobs")
            .and_then(Value::as_array)
            .filter(|jobs| !jobs.is_empty())
            .ok_or_else(|| {
                self.ctx.error(
                    400,
                    codes::DRS_PARAMETER_EMPTY,
                    "The parameter jobs is empty.",
                )
            })
    }

    fn drs_reset_password(&self, world: &mut World, project: &str) -> Answer {
        let body = self.body(codes::DRS_INVALID_REQUEST)?;
        let items = self.drs_id_list(&body)?;
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            let job_id = str_field(item, "job_id").unwrap_or_default();
            let end_point = str_field(item, "end_point_type").unwrap_or_default();
            let password = str_field(item, "db_password").unwrap_or_default();
            world.remember(password);
            let outcome = drs_change_one(world, project, job_id, end_point, password);
            let (status, code, message) = match outcome {
                Ok(()) => ("success", Value::Null, Value::Null),
                Err((code, message)) => ("failed", json!(code.as_str()), json!(message)),
            };
            results.push(json!({
                "id": job_id,
                "status": status,
                "end_point_type": end_point,
                "error_code": code,
                "error_msg": message,
            }));
        }
        Ok(self
            .ctx
            .reply(200, &json!({"count": results.len(), "results": results})))
    }

    /// One page of job states (SDK `BatchQueryJobReqPage`): `page_req`
    /// defaults to page 1 of 5; `per_page` 0 means all (page 0 or 1 only).
    /// A job DRS cannot find has no status; a failed job has its status
    /// and its error.
    fn drs_job_status(&self, world: &mut World, project: &str) -> Answer {
        let body = self.body(codes::DRS_INVALID_REQUEST)?;
        let ids = self.drs_id_list(&body)?;
        let page = body.get("page_req");
        let number = |name: &str, default: usize| match page.and_then(|p| p.get(name)) {
            None | Some(Value::Null) => Some(default),
            Some(value) => value.as_u64().and_then(|n| usize::try_from(n).ok()),
        };
        let (Some(cur_page), Some(per_page)) = (
            number("cur_page", 1),
            number("per_page", DRS_STATUS_DEFAULT_PER_PAGE),
        ) else {
            return Err(self.ctx.error(
                400,
                codes::DRS_PAGE_INVALID,
                "The value of Page is invalid, cur_page and per_page must be whole numbers",
            ));
        };
        if per_page > DRS_STATUS_MAX_PER_PAGE {
            return Err(self.ctx.error(
                400,
                codes::DRS_PAGE_TOO_LARGE,
                "The value of Page exceeds the upper limit.",
            ));
        }
        let wanted: Vec<&Value> = if per_page == 0 {
            if cur_page > 1 {
                return Err(self.ctx.error(
                    400,
                    codes::DRS_PAGE_INVALID,
                    "The value of Page is invalid, cur_page must be 0 or 1 when per_page is 0",
                ));
            }
            ids.iter().collect()
        } else {
            let last_page = ids.len().div_ceil(per_page);
            if cur_page > last_page {
                return Err(self.ctx.error(
                    400,
                    codes::DRS_PAGE_INVALID,
                    &format!("The value of Page is invalid, cur_page exceeds {last_page}"),
                ));
            }
            ids.iter()
                .skip(cur_page.saturating_sub(1) * per_page)
                .take(per_page)
                .collect()
        };
        let results: Vec<Value> = wanted
            .into_iter()
            .map(|id| {
                let id = id.as_str().unwrap_or_default();
                match world
                    .drs_job_mut(id)
                    .filter(|job| job.project_id == project)
                {
                    Some(job) if job.status.ends_with("_FAILED") => json!({
                        "id": id, "status": job.status,
                        "error_code": codes::DRS_SERVICE_ABNORMAL.as_str(),
                        "error_message": "service LOGMANAGER failed, cause by: Unable to connect to DBMS",
                    }),
                    Some(job) => json!({"id": id, "status": job.status}),
                    None => json!({"id": id,
                        "error_code": codes::DRS_JOB_NOT_EXIST.as_str(),
                        "error_message": "Job does not exist, please check job ID."}),
                }
            })
            .collect();
        Ok(self
            .ctx
            .reply(200, &json!({"count": results.len(), "results": results})))
    }

    fn drs_list_jobs(&self, world: &World, project: &str) -> Reply {
        let (offset, limit) = page(self.request, 10);
        let jobs: Vec<_> = world
            .seed
            .huaweicloud
            .drs_jobs
            .iter()
            .filter(|job| job.project_id == project)
            .collect();
        let listed: Vec<Value> = jobs
            .iter()
            .skip(offset)
            .take(limit)
            .map(|job| {
                json!({"id": job.id, "name": if job.name.is_empty() { &job.id } else { &job.name },
                    "status": job.status, "engine_type": "mysql-to-mysql", "job_type": "migration"})
            })
            .collect();
        // The v5 SDK model (`ListJobsResponse`): `total_count` and `jobs`.
        self.ctx
            .reply(200, &json!({"total_count": jobs.len(), "jobs": listed}))
    }

    // DCS

    fn dcs_instance<'w>(
        &self,
        world: &'w mut World,
        project: &str,
        instance: &str,
    ) -> Result<&'w mut DcsInstance, Reply> {
        world
            .dcs_instance_mut(instance)
            .filter(|i| i.project_id == project)
            .ok_or_else(|| {
                self.ctx.error(
                    400,
                    codes::DCS_INSTANCE_NOT_FOUND,
                    "The instance does not exist.",
                )
            })
    }

    fn running<'w>(&self, instance: &'w mut DcsInstance) -> Result<&'w mut DcsInstance, Reply> {
        if instance.status == "RUNNING" {
            Ok(instance)
        } else {
            Err(self.ctx.error(
                400,
                codes::DCS_NOT_RUNNING,
                &format!("The instance is not running (it is {}).", instance.status),
            ))
        }
    }

    fn check_new_password(&self, password: Option<&str>) -> Result<String, Reply> {
        let password = password.unwrap_or_default();
        DCS.check(password)
            .map(|()| password.to_owned())
            .map_err(|reason| {
                self.ctx.error(
                    400,
                    codes::DCS_INVALID_PASSWORD,
                    &format!("Invalid password: {reason}."),
                )
            })
    }

    /// Seconds left of a running lock (clearing a lapsed one).
    fn lock_left(&self, instance: &mut DcsInstance) -> Option<i64> {
        let now = self.now.unix_timestamp();
        match instance.locked_until {
            Some(until) if until > now => Some(until - now),
            Some(_) => {
                instance.locked_until = None;
                instance.failed_attempts = 0;
                None
            }
            None => None,
        }
    }

    /// Records the passwords a request carries, even one it will refuse.
    fn remember_body_secrets(&self, world: &mut World, fields: &[&str]) {
        if let Ok(body) = serde_json::from_slice::<Value>(&self.request.body) {
            for field in fields {
                if let Some(secret) = str_field(&body, field) {
                    world.remember(secret);
                }
            }
        }
    }

    fn dcs_update_password(&self, world: &mut World, project: &str, id: &str) -> Answer {
        let before = self.backed_instance(world, id);
        let instance = self.running(self.dcs_instance(world, project, id)?)?;
        let body = self.body(codes::DCS_INVALID_PASSWORD)?;
        let old = str_field(&body, "old_password").unwrap_or_default();
        if instance.no_password_access {
            return Err(self.ctx.error(
                400,
                codes::DCS_PASSWORD_FREE,
                "The instance is password-free: reset its password instead.",
            ));
        }
        let new = self.check_new_password(str_field(&body, "new_password"))?;
        if new == old {
            return Err(self.ctx.error(
                400,
                codes::DCS_INVALID_PASSWORD,
                "Invalid password: the new password must differ from the old one.",
            ));
        }
        let answer = |result: &str, left: u32, lock_secs: Option<i64>, message: &str| {
            self.password_change_reply(result, left, lock_secs, message)
        };
        if let Some(left) = self.lock_left(instance) {
            return Ok(answer(
                "locked",
                0,
                Some(left),
                "Password operations are locked after too many wrong passwords.",
            ));
        }
        if instance.password.as_deref() != Some(old) {
            instance.failed_attempts += 1;
            instance.wrong_old_passwords += 1;
            if instance.failed_attempts >= DCS_MAX_TRIES {
                instance.failed_attempts = 0;
                instance.locked_until = Some(self.now.unix_timestamp() + DCS_LOCK_SECONDS);
                return Ok(answer(
                    "locked",
                    0,
                    Some(DCS_LOCK_SECONDS),
                    "The old password is incorrect; password operations are locked for 5 minutes.",
                ));
            }
            return Ok(answer(
                "passwordFailed",
                DCS_MAX_TRIES - instance.failed_attempts,
                None,
                "The old password is incorrect.",
            ));
        }
        instance.new_passwords += u64::from(instance.password.as_deref() != Some(new.as_str()));
        instance.password = Some(new);
        instance.failed_attempts = 0;
        instance.changes += 1;
        let password = instance.password.clone();
        self.queue_instance_password(world, before, password.as_deref());
        Ok(answer(
            "success",
            DCS_MAX_TRIES,
            None,
            "Password changed successfully.",
        ))
    }

    fn dcs_reset_password(&self, world: &mut World, project: &str, id: &str) -> Answer {
        let before = self.backed_instance(world, id);
        let instance = self.running(self.dcs_instance(world, project, id)?)?;
        let body = self.body(codes::DCS_INVALID_PASSWORD)?;
        let answer = |code: &str, message: &str| {
            self.ctx.reply(
                200,
                &json!({"retry_times_left": "5", "lock_time": "0", "lock_time_left": "0",
                    "code": code, "message": message, "ext_message": null}),
            )
        };
        if self.lock_left(instance).is_some() {
            return Ok(answer("3", "instance is locked"));
        }
        let password_free = body
            .get("no_password_access")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let new = if password_free {
            None
        } else {
            Some(self.check_new_password(str_field(&body, "new_password"))?)
        };
        instance.new_passwords += u64::from(instance.password != new);
        instance.password = new;
        instance.no_password_access = password_free;
        // A new password ends the run of wrong old passwords.
        instance.failed_attempts = 0;
        instance.changes += 1;
        let password = instance.password.clone();
        self.queue_instance_password(world, before, password.as_deref());
        Ok(answer("1", "success"))
    }

    /// `ModifyInstanceBody`: only the description is emulated; the answer
    /// is 204 without a body (SDK `update_instance_response.py` has no
    /// fields).
    fn dcs_update_instance(&self, world: &mut World, project: &str, id: &str) -> Answer {
        let body = self.body(codes::DCS_INVALID_BODY)?;
        let instance = self.dcs_instance(world, project, id)?;
        if let Some(description) = str_field(&body, "description") {
            instance.description = description.to_owned();
        }
        Ok(Reply::empty(204).with_header("x-request-id", self.ctx.request_id.clone()))
    }

    fn dcs_list_instances(&self, world: &World, project: &str) -> Reply {
        // `limit` is 1-1000 (SDK `list_instances_request.py`).
        let (offset, limit) = page(self.request, 10);
        let limit = limit.clamp(1, 1000);
        let instances: Vec<&DcsInstance> = world
            .seed
            .huaweicloud
            .dcs_instances
            .iter()
            .filter(|i| i.project_id == project)
            .collect();
        let listed: Vec<Value> = instances
            .iter()
            .skip(offset)
            .take(limit)
            .map(|i| dcs_view(i))
            .collect();
        self.ctx.reply(
            200,
            &json!({"instance_num": instances.len(), "instances": listed}),
        )
    }

    // IAM

    fn user_not_found(&self) -> Reply {
        self.ctx
            .error(404, codes::IAM_NOT_FOUND, "Could not find user.")
    }

    fn iam_create_key(&self, world: &mut World) -> Answer {
        let body = self.body(codes::IAM_INVALID_BODY)?;
        let credential = body.get("credential").cloned().unwrap_or(Value::Null);
        let user_id = str_field(&credential, "user_id").unwrap_or(&self.caller.user_id);
        let description = str_field(&credential, "description").unwrap_or_default();
        let user = world
            .hw_user_mut(user_id)
            .ok_or_else(|| self.user_not_found())?;
        if user.access_keys.len() >= 2 {
            return Err(self.ctx.iam_key_limit());
        }
        const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let key = HwKey {
            access: random_string(20, UPPER),
            secret: random_string(40, ALNUM),
            security_token: None,
            expires_at: None,
            status: "active".into(),
            create_time: iam_time(self.now),
            description: description.to_owned(),
        };
        let mut view = key_view(&user.id, &key);
        view["secret"] = json!(key.secret);
        let secret = key.secret.clone();
        user.access_keys.push(key);
        world.remember(&secret);
        Ok(self.ctx.reply(201, &json!({"credential": view})))
    }

    fn iam_list_keys(&self, world: &mut World) -> Answer {
        let query = self.request.query_params();
        let user_id = param(&query, "user_id").unwrap_or(&self.caller.user_id);
        let user = world
            .hw_user_mut(user_id)
            .ok_or_else(|| self.user_not_found())?;
        let keys: Vec<Value> = user
            .access_keys
            .iter()
            .map(|key| key_view(&user.id, key))
            .collect();
        Ok(self.ctx.reply(200, &json!({"credentials": keys})))
    }

    fn key_not_found(&self) -> Reply {
        self.ctx
            .error(404, codes::IAM_NOT_FOUND, "Could not find credential.")
    }

    fn iam_show_key(&self, world: &World, access: &str) -> Answer {
        let (user, key) = world.hw_key(access).ok_or_else(|| self.key_not_found())?;
        Ok(self
            .ctx
            .reply(200, &json!({"credential": key_view(&user.id, key)})))
    }

    fn iam_delete_key(&self, world: &mut World, access: &str) -> Answer {
        for user in &mut world.seed.huaweicloud.users {
            let before = user.access_keys.len();
            user.access_keys.retain(|key| key.access != access);
            if user.access_keys.len() != before {
                return Ok(
                    Reply::empty(204).with_header("x-request-id", self.ctx.request_id.clone())
                );
            }
        }
        Err(self.key_not_found())
    }
}

/// Applies one DRS item, or says why it failed.
fn drs_change_one(
    world: &mut World,
    project: &str,
    job_id: &str,
    end_point: &str,
    password: &str,
) -> Result<(), (Code, &'static str)> {
    let job = world
        .drs_job_mut(job_id)
        .filter(|job| job.project_id == project)
        .ok_or((
            codes::DRS_JOB_NOT_EXIST,
            "Job does not exist, please check job ID.",
        ))?;
    if !matches!(end_point, "so" | "ta") {
        return Err((
            codes::DRS_PARAMETER_INVALID,
            "The value of parameter end_point_type is invalid.",
        ));
    }
    if password.is_empty() {
        return Err((
            codes::DRS_PARAMETER_EMPTY,
            "The parameter db_password is empty.",
        ));
    }
    if !DRS_ACCEPTING_STATES.contains(&job.status.as_str()) {
        return Err((
            codes::DRS_JOB_STATUS,
            "The API cannot be called in the current job status.",
        ));
    }
    let endpoint = if end_point == "so" {
        &mut job.so
    } else {
        &mut job.ta
    };
    endpoint.new_passwords += u64::from(endpoint.password != password);
    endpoint.password = password.to_owned();
    endpoint.changes += 1;
    Ok(())
}

fn dcs_view(instance: &DcsInstance) -> Value {
    json!({
        "instance_id": instance.id,
        "name": if instance.name.is_empty() { &instance.id } else { &instance.name },
        "status": instance.status,
        "description": instance.description,
        "engine": instance.engine,
        "engine_version": instance.engine_version,
        "cache_mode": instance.cache_mode,
        "no_password_access": instance.no_password_access.to_string(),
    })
}

fn key_view(user_id: &str, key: &HwKey) -> Value {
    json!({
        "user_id": user_id,
        "access": key.access,
        "status": key.status,
        "create_time": key.create_time,
        "description": key.description,
    })
}

/// `2020-01-20T06:26:08.123059Z`, IAM's timestamp form.
fn iam_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{}.{:06}Z",
        super::format_time(at).trim_end_matches('Z'),
        at.microsecond()
    )
}
