//! Alibaba Cloud RPC APIs: PolarDB (2017-08-01), DTS (2020-01-01) and RAM
//! (2015-05-01), told apart by `Version` / `x-acs-version` on `POST /` or
//! `GET /`. [`accounts`] holds the PolarDB account lifecycle.

mod accounts;

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::auth::{self, AliCaller};
use super::codes::{self, Code};
use super::faults::Scripted;
use super::http::{Handled, Reply, Request, param, parse_urlencoded};
use super::model::{AliKey, DtsJob, World};
use super::rules::POLARDB;
use super::{FaultReplies, Inner, count_auth_failure, format_time, random_string, run_call};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    PolarDb,
    Dts,
    Ram,
}

impl Service {
    fn from_version(version: &str) -> Option<Self> {
        match version {
            "2017-08-01" => Some(Self::PolarDb),
            "2020-01-01" => Some(Self::Dts),
            "2015-05-01" => Some(Self::Ram),
            _ => None,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Self::PolarDb => "polardb",
            Self::Dts => "dts",
            Self::Ram => "ram",
        }
    }

    fn product(self) -> &'static str {
        match self {
            Self::PolarDb => "polardb",
            Self::Dts => "Dts",
            Self::Ram => "Ram",
        }
    }

    fn actions(self) -> &'static [&'static str] {
        match self {
            Self::PolarDb => &[
                "ModifyAccountPassword",
                "ModifyAccountDescription",
                "DescribeAccounts",
                "DescribeDatabases",
                "DescribeRegions",
                "CreateAccount",
                "DeleteAccount",
                "GrantAccountPrivilege",
                "RevokeAccountPrivilege",
            ],
            Self::Dts => &[
                "ModifyDtsJobPassword",
                "DescribeDtsJobDetail",
                "DescribeDtsJobs",
            ],
            Self::Ram => &["CreateAccessKey", "DeleteAccessKey", "ListAccessKeys"],
        }
    }
}

/// DTS job states in which a password change is refused.
pub const DTS_REFUSING_STATES: &[&str] = &[
    "Modifying",
    "Locked",
    "Upgrade",
    "Downgrade",
    "Retrying",
    "NotConfigured",
    "Prechecking",
];

/// How one request's answers are shaped.
pub struct AliCtx {
    request_id: String,
    host: String,
    service: Option<Service>,
}

/// `6BE56E05-1A2B-4C3D-8E9F-FD90C4FFD581`: Alibaba's request id form.
pub fn ali_request_id(id: u128) -> String {
    let hex = format!("{id:032X}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl AliCtx {
    fn new(request: &Request, id: u128, service: Option<Service>) -> Self {
        Self {
            request_id: ali_request_id(id),
            host: request.header("host").unwrap_or_default().to_owned(),
            service,
        }
    }

    /// The common error body: `{RequestId, HostId, Code, Message, Recommend}`.
    pub fn error(&self, status: u16, code: Code, message: &str) -> Reply {
        self.error_text(status, code.as_str(), message)
    }

    fn error_text(&self, status: u16, code: &str, message: &str) -> Reply {
        let product = self.service.map_or("", Service::product);
        let body = json!({
            "RequestId": self.request_id,
            "HostId": self.host,
            "Code": code,
            "Message": message,
            "Recommend": format!(
                "https://api.alibabacloud.com/troubleshoot?q={code}&product={product}&requestId={}",
                self.request_id
            ),
        });
        Reply::json(status, &body).with_header("x-acs-request-id", self.request_id.clone())
    }

    /// A service error; DTS adds `Success:false, ErrCode, ErrMessage,
    /// DynamicMessage, HttpStatusCode` to the common body.
    fn service_error(&self, status: u16, code: Code, message: &str, dynamic: &str) -> Reply {
        self.service_error_text(status, code.as_str(), message, dynamic)
    }

    fn service_error_text(&self, status: u16, code: &str, message: &str, dynamic: &str) -> Reply {
        let mut reply = self.error_text(status, code, message);
        if self.service == Some(Service::Dts) {
            let mut body = reply.body_json();
            let map = body.as_object_mut().expect("error bodies are objects");
            map.insert("Success".into(), json!(false));
            map.insert("ErrCode".into(), json!(code));
            map.insert("ErrMessage".into(), json!(message));
            map.insert("DynamicMessage".into(), json!(dynamic));
            map.insert("HttpStatusCode".into(), json!(status));
            reply.body = serde_json::to_vec(&body).expect("JSON values always serialise");
        }
        reply
    }

    fn ok(&self, mut body: Value) -> Reply {
        body.as_object_mut()
            .expect("success bodies are objects")
            .insert("RequestId".into(), json!(self.request_id));
        Reply::json(200, &body).with_header("x-acs-request-id", self.request_id.clone())
    }
}

impl FaultReplies for AliCtx {
    fn throttled(&self, retry_after_ms: u64, _limit: Option<u32>) -> Reply {
        self.error(
            400,
            codes::THROTTLING_USER,
            "Request was denied due to user flow control.",
        )
        .with_header("x-acs-retry-after", retry_after_ms.to_string())
    }

    fn server_error(&self, variant: u8) -> Reply {
        if variant == 0 {
            self.error(
                500,
                codes::INTERNAL_ERROR,
                "The request processing has failed due to some unknown error, exception or failure.",
            )
        } else {
            self.error(
                503,
                codes::SERVICE_UNAVAILABLE,
                "The request has failed due to a temporary failure of the server.",
            )
        }
    }

    fn scripted(&self, entry: &Scripted) -> Reply {
        let status = entry.status.unwrap_or_else(|| {
            self.service
                .and_then(|service| codes::documented_status(service.prefix(), &entry.code))
                .unwrap_or(400)
        });
        let message = entry.message.as_deref().unwrap_or(&entry.code);
        self.service_error_text(status, &entry.code, message, "")
    }
}

fn is_form(request: &Request) -> bool {
    request
        .header("content-type")
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
}

pub fn handle(inner: &mut Inner, now: OffsetDateTime, request: &Request, id: u128) -> Handled {
    let query = request.query_params();
    let mut params = query.clone();
    if is_form(request) {
        params.extend(parse_urlencoded(&String::from_utf8_lossy(&request.body)));
    }
    let version = request
        .header("x-acs-version")
        .or_else(|| param(&params, "Version"));
    let action = request
        .header("x-acs-action")
        .or_else(|| param(&params, "Action"));
    let Some(service) = version.and_then(Service::from_version) else {
        let ctx = AliCtx::new(request, id, None);
        return Handled::reply(ctx.error(
            400,
            codes::INVALID_VERSION,
            "Specified parameter Version is not valid.",
        ));
    };
    let ctx = AliCtx::new(request, id, Some(service));
    let Some(action) = action.filter(|a| service.actions().contains(a)) else {
        return Handled::reply(ctx.error(
            404,
            codes::INVALID_ACTION_NOT_FOUND,
            "Specified api is not found, please check your url and method.",
        ));
    };
    let api = format!("{}.{action}", service.prefix());
    inner.counters.call(&api);
    let caller = match auth::verify_alicloud(
        &inner.world,
        &mut inner.nonces,
        now,
        request,
        &query,
        &params,
    ) {
        Ok(caller) => caller,
        Err(error) => {
            count_auth_failure(inner, error.locked);
            return Handled::reply(ctx.error(error.status, error.code, &error.message));
        }
    };
    run_call(inner, now, &api, &caller.access_key_id, &ctx, |inner| {
        let call = Call {
            ctx: &ctx,
            params: &params,
            caller: &caller,
            now,
        };
        call.dispatch(&mut inner.world, action)
            .unwrap_or_else(|error| error)
    })
}

struct Call<'a> {
    ctx: &'a AliCtx,
    params: &'a [(String, String)],
    caller: &'a AliCaller,
    now: OffsetDateTime,
}

type Answer = Result<Reply, Reply>;

impl Call<'_> {
    fn dispatch(&self, world: &mut World, action: &str) -> Answer {
        match action {
            "ModifyAccountPassword" => self.modify_account_password(world),
            "ModifyAccountDescription" => self.modify_account_description(world),
            "DescribeAccounts" => self.describe_accounts(world),
            "DescribeDatabases" => self.describe_databases(world),
            "DescribeRegions" => Ok(self.describe_regions(world)),
            "CreateAccount" => self.create_account(world),
            "DeleteAccount" => self.delete_account(world),
            "GrantAccountPrivilege" => self.grant_account_privilege(world),
            "RevokeAccountPrivilege" => self.revoke_account_privilege(world),
            "ModifyDtsJobPassword" => self.modify_dts_job_password(world),
            "DescribeDtsJobDetail" => self.describe_dts_job_detail(world),
            "DescribeDtsJobs" => Ok(self.describe_dts_jobs(world)),
            "CreateAccessKey" => self.create_access_key(world),
            "DeleteAccessKey" => self.delete_access_key(world),
            "ListAccessKeys" => self.list_access_keys(world),
            _ => unreachable!("actions are checked before dispatch"),
        }
    }

    fn param(&self, name: &str) -> Option<&str> {
        param(self.params, name).filter(|v| !v.is_empty())
    }

    /// A required parameter: `MissingParameter` (DTS: `InvalidParameter`
    /// naming it in `DynamicMessage`).
    fn required(&self, name: &str) -> Result<&str, Reply> {
        self.param(name).ok_or_else(|| {
            if self.ctx.service == Some(Service::Dts) {
                self.invalid_dts_parameter(name)
            } else {
                self.ctx.error(
                    400,
                    codes::MISSING_PARAMETER,
                    &format!("{name} is mandatory for this action."),
                )
            }
        })
    }

    // PolarDB

    fn modify_account_password(&self, world: &mut World) -> Answer {
        let cluster_id = self.required("DBClusterId")?;
        let account_name = self.required("AccountName")?;
        let password = self.required("NewAccountPassword")?;
        world.remember(password);
        let before = self.backed_cluster(world, cluster_id);
        let cluster = world
            .polardb_cluster_mut(cluster_id)
            .ok_or_else(|| self.cluster_not_found())?;
        let account = cluster
            .accounts
            .iter_mut()
            .find(|a| a.name == account_name)
            .ok_or_else(|| self.account_not_found())?;
        if POLARDB.check(password).is_err() {
            return Err(self.ctx.error(
                400,
                codes::INVALID_ACCOUNT_PASSWORD_MALFORMED,
                "The specified parameter AccountPassword is not valid.",
            ));
        }
        if account.status != "Available" {
            // PolarDB documents no account-state code for this action; the
            // cluster-state one is the documented refusal of its kind.
            return Err(self.ctx.error(
                403,
                codes::INCORRECT_DB_CLUSTER_STATE,
                "Current DB cluster state does not support this operation.",
            ));
        }
        account.new_passwords += u64::from(account.password != password);
        account.password = password.to_owned();
        account.changes += 1;
        self.queue_password_change(world, before, account_name, password);
        Ok(self.ctx.ok(json!({})))
    }

    /// `AccountDescription`: 2-256 characters, not starting with `http://`
    /// or `https://` (SDK `_modify_account_description_request.py`).
    fn modify_account_description(&self, world: &mut World) -> Answer {
        let cluster_id = self.required("DBClusterId")?;
        let account_name = self.required("AccountName")?;
        let description = self.required("AccountDescription")?;
        let length = description.chars().count();
        if !(2..=256).contains(&length)
            || description.starts_with("http://")
            || description.starts_with("https://")
        {
            return Err(self.ctx.error(
                400,
                codes::INVALID_ACCOUNT_DESCRIPTION_MALFORMED,
                "The specified parameter AccountDescription is not valid.",
            ));
        }
        let account = world
            .polardb_cluster_mut(cluster_id)
            .ok_or_else(|| self.cluster_not_found())?
            .accounts
            .iter_mut()
            .find(|a| a.name == account_name)
            .ok_or_else(|| self.account_not_found())?;
        account.description = description.to_owned();
        Ok(self.ctx.ok(json!({})))
    }

    fn account_not_found(&self) -> Reply {
        self.ctx.error(
            404,
            codes::INVALID_ACCOUNT_NAME_NOT_FOUND,
            "The specified account name does not exist.",
        )
    }

    fn cluster_not_found(&self) -> Reply {
        self.ctx.error(
            404,
            codes::INVALID_DB_CLUSTER_ID_NOT_FOUND,
            "The DBClusterId provided does not exist in our records.",
        )
    }

    fn describe_accounts(&self, world: &World) -> Answer {
        let cluster_id = self.required("DBClusterId")?;
        let cluster = world
            .polardb_cluster(cluster_id)
            .ok_or_else(|| self.cluster_not_found())?;
        let wanted = self.param("AccountName");
        let (page_size, page) = self.polardb_page();
        let accounts: Vec<Value> = cluster
            .accounts
            .iter()
            .filter(|a| wanted.is_none_or(|name| a.name == name))
            .skip((page - 1) * page_size)
            .take(page_size)
            .map(|a| {
                json!({
                    "AccountName": a.name,
                    "AccountStatus": a.status,
                    "AccountType": a.account_type,
                    "AccountDescription": a.description,
                    "AccountLockState": "UnLock",
                    "DatabasePrivileges": a.privileges.iter().map(|p| json!({
                        "DBName": p.db_name,
                        "AccountPrivilege": p.privilege,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        Ok(self.ctx.ok(json!({
            "Accounts": accounts,
            "PageNumber": page,
            "PageRecordCount": accounts.len(),
        })))
    }

    /// `PageSize` 30 (default), 50 or 100 and `PageNumber` from 1, as
    /// DescribeAccounts and DescribeDatabases take them (SDK
    /// `_describe_accounts_request.py`, `_describe_databases_request.py`).
    fn polardb_page(&self) -> (usize, usize) {
        let number = |name: &str, default: usize| {
            self.param(name)
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(default)
                .max(1)
        };
        (number("PageSize", 30).min(100), number("PageNumber", 1))
    }

    /// The cluster's databases, `DBName` picking one: `Databases.Database[]`
    /// with the SDK's fields (`_describe_databases_response_body.py`; API
    /// reference api-polardb-2017-08-01-describedatabases) that the model
    /// holds: `DBName`, `DBStatus` (always `Running`), `Engine`, and the
    /// `Accounts.Account[]` granted on it. No `DBDescription` or
    /// `CharacterSetName`: the model has none to give.
    fn describe_databases(&self, world: &World) -> Answer {
        let cluster_id = self.required("DBClusterId")?;
        let cluster = world
            .polardb_cluster(cluster_id)
            .ok_or_else(|| self.cluster_not_found())?;
        let wanted = self.param("DBName");
        let (page_size, page) = self.polardb_page();
        let databases: Vec<Value> = cluster
            .databases
            .iter()
            .filter(|name| wanted.is_none_or(|wanted| *name == wanted))
            .skip((page - 1) * page_size)
            .take(page_size)
            .map(|name| {
                let accounts: Vec<Value> = cluster
                    .accounts
                    .iter()
                    .filter_map(|account| {
                        let grant = account.privileges.iter().find(|p| p.db_name == *name)?;
                        Some(json!({
                            "AccountName": account.name,
                            "AccountPrivilege": grant.privilege,
                            "AccountStatus": account.status,
                        }))
                    })
                    .collect();
                json!({
                    "DBName": name,
                    "DBStatus": "Running",
                    "Engine": cluster.engine,
                    "Accounts": { "Account": accounts },
                })
            })
            .collect();
        Ok(self.ctx.ok(json!({
            "Databases": { "Database": databases },
            "PageNumber": page,
            "PageRecordCount": databases.len(),
        })))
    }

    fn describe_regions(&self, world: &World) -> Reply {
        let mut regions: Vec<&str> = world
            .seed
            .alicloud
            .polardb_clusters
            .iter()
            .map(|c| c.region.as_str())
            .collect();
        if regions.is_empty() {
            regions.push("cn-hangzhou");
        }
        regions.sort_unstable();
        regions.dedup();
        let regions: Vec<Value> = regions
            .iter()
            .map(|r| json!({"RegionId": r, "Zones": {"Zone": [{"ZoneId": format!("{r}-a")}]}}))
            .collect();
        self.ctx.ok(json!({ "Regions": { "Region": regions } }))
    }

    // DTS

    fn invalid_dts_parameter(&self, name: &str) -> Reply {
        self.ctx.service_error(
            400,
            codes::DTS_INVALID_PARAMETER,
            "The Value of Input Parameter %s is not valid.",
            name,
        )
    }

    fn dts_job<'w>(&self, world: &'w mut World) -> Result<&'w mut DtsJob, Reply> {
        let job_id = self.required("DtsJobId")?;
        let region = self.param("RegionId");
        world
            .dts_job_mut(job_id)
            .filter(|job| region.is_none_or(|r| r == job.region))
            .ok_or_else(|| {
                self.ctx.service_error(
                    404,
                    codes::DTS_INSTANCE_NOT_FOUND,
                    "The specified instance %s is not found.",
                    job_id,
                )
            })
    }

    fn modify_dts_job_password(&self, world: &mut World) -> Answer {
        if let Ok(password) = self.required("Password") {
            world.remember(password);
        }
        let job = self.dts_job(world)?;
        let is_src = match self.required("Endpoint")? {
            "src" => true,
            "dest" => false,
            _ => return Err(self.invalid_dts_parameter("Endpoint")),
        };
        let user = self.required("UserName")?;
        let password = self.required("Password")?;
        let refusing = DTS_REFUSING_STATES
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&job.status));
        let status = job.status.clone();
        let endpoint = if is_src { &mut job.src } else { &mut job.dest };
        if user != endpoint.user {
            return Err(self.invalid_dts_parameter("UserName"));
        }
        if refusing {
            return Err(self.ctx.service_error(
                403,
                codes::DTS_JOB_STATUS_DENIED,
                "The job status %s does not allow this operation.",
                &status,
            ));
        }
        if endpoint.password == password {
            // Documented ("cannot be the same as the current password"), its
            // answer not: the documented parameter error, naming Password.
            return Err(self.invalid_dts_parameter("Password"));
        }
        endpoint.new_passwords += u64::from(endpoint.password != password);
        endpoint.password = password.to_owned();
        endpoint.changes += 1;
        Ok(self
            .ctx
            .ok(json!({"HttpStatusCode": 200, "Success": true, "Code": "200"})))
    }

    fn dts_job_view(job: &DtsJob) -> Value {
        let endpoint = |user: &str, instance: &str| {
            json!({
                "UserName": user,
                "InstanceID": instance,
                "InstanceType": "POLARDB",
                "EngineName": "MySQL",
                "Region": job.region,
            })
        };
        json!({
            "DtsJobId": job.id,
            "DtsInstanceID": job.id,
            "DtsJobName": job.id,
            "Status": job.status,
            "JobType": "SYNC",
            "SourceEndpoint": endpoint(&job.src.user, &job.src.instance_id),
            "DestinationEndpoint": endpoint(&job.dest.user, &job.dest.instance_id),
            "ErrorMessage": job.login_failure.as_ref().map(|f| f.message.as_str()),
        })
    }

    fn describe_dts_job_detail(&self, world: &mut World) -> Answer {
        let job = self.dts_job(world)?;
        let mut body = Self::dts_job_view(job);
        let map = body.as_object_mut().expect("object");
        map.insert("HttpStatusCode".into(), json!(200));
        map.insert("Success".into(), json!(true));
        Ok(self.ctx.ok(body))
    }

    fn describe_dts_jobs(&self, world: &World) -> Reply {
        let region = self.param("RegionId");
        let page_size = self
            .param("PageSize")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(20)
            .max(1);
        let page = self
            .param("PageNumber")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let jobs: Vec<&DtsJob> = world
            .seed
            .alicloud
            .dts_jobs
            .iter()
            .filter(|job| region.is_none_or(|r| r == job.region))
            .collect();
        let listed: Vec<Value> = jobs
            .iter()
            .skip((page - 1) * page_size)
            .take(page_size)
            .map(|job| Self::dts_job_view(job))
            .collect();
        self.ctx.ok(json!({
            "HttpStatusCode": 200,
            "Success": true,
            "TotalRecordCount": jobs.len(),
            "PageNumber": page,
            "PageRecordCount": listed.len(),
            "DtsJobList": listed,
        }))
    }

    // RAM

    fn ram_user_name(&self) -> &str {
        self.param("UserName").unwrap_or(&self.caller.user)
    }

    fn user_not_found(&self) -> Reply {
        self.ctx
            .error(404, codes::RAM_USER_NOT_FOUND, "The user does not exist.")
    }

    fn create_access_key(&self, world: &mut World) -> Answer {
        let user = world
            .ali_user_mut(self.ram_user_name())
            .ok_or_else(|| self.user_not_found())?;
        if user.access_keys.len() >= 2 {
            return Err(self.ctx.error(
                409,
                codes::RAM_ACCESS_KEY_LIMIT,
                "The access key count of the user access keys beyond the current limits.",
            ));
        }
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let key = AliKey {
            id: format!("LTAI{}", random_string(20, ALNUM)),
            secret: random_string(30, ALNUM),
            security_token: None,
            expiration: None,
            status: "Active".into(),
            create_date: format_time(self.now),
        };
        let body = json!({"AccessKey": {
            "AccessKeyId": key.id,
            "AccessKeySecret": key.secret,
            "Status": key.status,
            "CreateDate": key.create_date,
        }});
        let secret = key.secret.clone();
        user.access_keys.push(key);
        world.remember(&secret);
        Ok(self.ctx.ok(body))
    }

    fn delete_access_key(&self, world: &mut World) -> Answer {
        let key_id = self.required("UserAccessKeyId")?;
        let user = world
            .ali_user_mut(self.ram_user_name())
            .ok_or_else(|| self.user_not_found())?;
        let before = user.access_keys.len();
        user.access_keys.retain(|key| key.id != key_id);
        if user.access_keys.len() == before {
            return Err(self.ctx.error(
                404,
                codes::RAM_ACCESS_KEY_NOT_FOUND,
                "The user access key does not exist.",
            ));
        }
        Ok(self.ctx.ok(json!({})))
    }

    fn list_access_keys(&self, world: &mut World) -> Answer {
        let user = world
            .ali_user_mut(self.ram_user_name())
            .ok_or_else(|| self.user_not_found())?;
        let keys: Vec<Value> = user
            .access_keys
            .iter()
            .map(|key| {
                json!({"AccessKeyId": key.id, "Status": key.status, "CreateDate": key.create_date})
            })
            .collect();
        Ok(self.ctx.ok(json!({"AccessKeys": {"AccessKey": keys}})))
    }
}
