//! The Alibaba Cloud RPC client: builds `POST /` with every parameter in
//! the query (as the official SDKs do), signs it with ACS3-HMAC-SHA256 or
//! V2 HMAC-SHA1 (per connection), and reads every documented answer shape
//! as a value or a classified failure. Sending, retries, pacing and
//! redaction are the shared loop's ([`crate::providers::send`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rand::Rng;
use reqwest::{Method, Url};
use serde_json::Value;
use time::OffsetDateTime;

use super::sign::{
    Acs3Request, acs3_authorization, acs3_headers_to_sign, format_timestamp, v2_signature,
    v2_string_to_sign,
};
use super::{AlibabaService, endpoints};
use crate::providers::encoding::canonical_query;
use crate::providers::error::{ErrorClass, ErrorKind, ProviderError};
use crate::providers::hash::EMPTY_PAYLOAD_SHA256;
use crate::providers::http::{
    HttpClient, IncomingResponse, OutgoingRequest, base_path, host_header, names, url_without_query,
};
use crate::providers::send::{self, Accepted, Answer, Call, Cloud, ErrorBody, Refusal, json_text};
use crate::providers::{
    CallInfo, ConnectionOptions, Credentials, Idempotency, RetryPolicy, Service,
};

/// How a connection signs its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureVersion {
    /// ACS3-HMAC-SHA256 (V3), what the current SDKs use.
    #[default]
    Acs3,
    /// The legacy RPC signature (HMAC-SHA1, `SignatureVersion=1.0`).
    V2,
}

#[derive(Debug, Clone)]
pub struct AlibabaConfig {
    pub credentials: Credentials,
    pub options: ConnectionOptions,
    pub signature: SignatureVersion,
}

/// The API version of each Alibaba service; the emulator tells services
/// apart by it.
pub fn api_version(service: AlibabaService) -> &'static str {
    match service {
        AlibabaService::Polardb => "2017-08-01",
        AlibabaService::Dts => "2020-01-01",
        AlibabaService::Ram => "2015-05-01",
    }
}

/// One RPC action; its request is its parameters. `Debug` shows parameter
/// names only.
pub type RpcCall = Call<AlibabaService, Vec<(String, String)>>;

impl RpcCall {
    pub fn new(service: AlibabaService, action: &'static str, idempotency: Idempotency) -> Self {
        Call {
            service,
            action,
            idempotency,
            secrets: Vec::new(),
            request: Vec::new(),
        }
    }

    pub fn param(mut self, name: &str, value: impl Into<String>) -> Self {
        self.request.push((name.to_owned(), value.into()));
        self
    }

    pub fn optional(self, name: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(value) => self.param(name, value),
            None => self,
        }
    }

    pub fn secret_param(self, name: &str, value: &str) -> Self {
        self.secret(value).param(name, value)
    }
}

/// Everything that goes into one signed request; time and nonce are
/// inputs so tests and the benchmark are deterministic. `Debug` shows
/// parameter names only.
#[derive(Clone, Copy)]
pub struct RpcSigningInput<'a> {
    pub base: &'a Url,
    pub version: &'a str,
    pub action: &'a str,
    pub params: &'a [(String, String)],
    pub credentials: &'a Credentials,
    pub signature: SignatureVersion,
    /// `yyyy-MM-ddTHH:mm:ssZ`.
    pub timestamp: &'a str,
    pub nonce: &'a str,
}

impl fmt::Debug for RpcCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcCall")
            .field("service", &self.service)
            .field("action", &self.action)
            .field("params", &names(&self.request))
            .field("idempotency", &self.idempotency)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RpcSigningInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcSigningInput")
            .field("base", &url_without_query(self.base))
            .field("version", &self.version)
            .field("action", &self.action)
            .field("params", &names(self.params))
            .field("credentials", self.credentials)
            .field("signature", &self.signature)
            .field("timestamp", &self.timestamp)
            .field("nonce", &self.nonce)
            .finish()
    }
}

/// Builds and signs one RPC request: `POST <base path>/?<params>`, empty
/// body. ACS3 signs `host`, every `x-acs-*` header and the query; V2 adds
/// the common parameters and `Signature` to the query.
pub fn build_rpc_request(input: &RpcSigningInput<'_>) -> OutgoingRequest {
    let host = host_header(input.base);
    let path = format!("{}/", base_path(input.base));
    let mut url = input.base.clone();
    url.set_path(&path);
    let mut headers: Vec<(String, String)> = vec![("accept".into(), "application/json".into())];
    let query = match input.signature {
        SignatureVersion::Acs3 => {
            let mut signed = vec![
                ("host".to_owned(), host),
                ("x-acs-action".to_owned(), input.action.to_owned()),
                ("x-acs-version".to_owned(), input.version.to_owned()),
                ("x-acs-date".to_owned(), input.timestamp.to_owned()),
                ("x-acs-signature-nonce".to_owned(), input.nonce.to_owned()),
                (
                    "x-acs-content-sha256".to_owned(),
                    EMPTY_PAYLOAD_SHA256.to_owned(),
                ),
            ];
            if let Some(token) = &input.credentials.security_token {
                signed.push(("x-acs-security-token".to_owned(), token.expose().to_owned()));
            }
            let signed = acs3_headers_to_sign(&signed);
            let authorization = acs3_authorization(
                &Acs3Request {
                    method: "POST",
                    canonical_uri: &path,
                    query: input.params,
                    signed_headers: &signed,
                    payload_sha256: EMPTY_PAYLOAD_SHA256,
                },
                &input.credentials.access_key,
                input.credentials.secret_key.expose(),
            );
            headers.extend(signed);
            headers.push(("authorization".into(), authorization));
            canonical_query(input.params)
        }
        SignatureVersion::V2 => {
            let mut params = input.params.to_vec();
            params.extend([
                (
                    "AccessKeyId".to_owned(),
                    input.credentials.access_key.clone(),
                ),
                ("Action".to_owned(), input.action.to_owned()),
                ("Format".to_owned(), "JSON".to_owned()),
                ("SignatureMethod".to_owned(), "HMAC-SHA1".to_owned()),
                ("SignatureNonce".to_owned(), input.nonce.to_owned()),
                ("SignatureVersion".to_owned(), "1.0".to_owned()),
                ("Timestamp".to_owned(), input.timestamp.to_owned()),
                ("Version".to_owned(), input.version.to_owned()),
            ]);
            if let Some(token) = &input.credentials.security_token {
                params.push(("SecurityToken".to_owned(), token.expose().to_owned()));
            }
            let signature = v2_signature(
                input.credentials.secret_key.expose(),
                &v2_string_to_sign("POST", &params),
            );
            params.push(("Signature".to_owned(), signature));
            headers.push(("host".into(), host));
            canonical_query(&params)
        }
    };
    if !query.is_empty() {
        url.set_query(Some(&query));
    }
    OutgoingRequest {
        method: Method::POST,
        url,
        headers,
        body: Vec::new(),
    }
}

/// 32 lower-case hex characters, like the tea SDK's nonce.
pub fn new_nonce() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}

/// The client for one Alibaba Cloud connection: one pooled HTTPS client,
/// one token bucket, shared by its PolarDB, DTS and RAM handles.
#[derive(Debug, Clone)]
pub struct AlibabaClient {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    http: HttpClient,
    credentials: Credentials,
    signature: SignatureVersion,
    /// One for every Alibaba service.
    bases: BTreeMap<AlibabaService, Url>,
    region: String,
}

impl AlibabaClient {
    /// The access key id this client signs with (not a secret).
    pub fn access_key_id(&self) -> &str {
        &self.inner.credentials.access_key
    }

    pub fn new(config: AlibabaConfig) -> Result<Self, ProviderError> {
        let http = HttpClient::new(&config.options)
            .map_err(|e| ProviderError::config(Service::Polardb, "connect", &e))?;
        let mut bases = BTreeMap::new();
        for service in AlibabaService::ALL {
            let base = endpoints::base_url(service, &config.options)
                .map_err(|e| ProviderError::config(service.into(), "connect", &e))?;
            bases.insert(service, base);
        }
        Ok(AlibabaClient {
            inner: Arc::new(Inner {
                http,
                credentials: config.credentials,
                signature: config.signature,
                bases,
                region: config.options.region,
            }),
        })
    }

    /// Replaces the retry policy (tests use a seeded jitter or no retries).
    pub fn with_retry_policy(self, retry: RetryPolicy) -> Self {
        let mut inner = (*self.inner).clone();
        inner.http.set_retry_policy(retry);
        AlibabaClient {
            inner: Arc::new(inner),
        }
    }

    pub fn region(&self) -> &str {
        &self.inner.region
    }

    pub fn base_url(&self, service: AlibabaService) -> &Url {
        &self.inner.bases[&service]
    }

    pub fn polardb(&self) -> super::polardb::PolarDbClient {
        super::polardb::PolarDbClient::new(self.clone())
    }

    pub fn dts(&self) -> super::dts::DtsClient {
        super::dts::DtsClient::new(self.clone())
    }

    pub fn ram(&self) -> super::ram::RamClient {
        super::ram::RamClient::new(self.clone())
    }

    /// Sends one RPC call with retries, returning the parsed JSON body.
    pub async fn call(&self, call: &RpcCall) -> Result<(Value, CallInfo), ProviderError> {
        let client = &*self.inner;
        send::send(&client.http, &client.credentials, client, call).await
    }
}

impl Cloud for Inner {
    type Service = AlibabaService;
    type Request = Vec<(String, String)>;

    fn sign(&self, call: &RpcCall) -> OutgoingRequest {
        build_rpc_request(&RpcSigningInput {
            base: &self.bases[&call.service],
            version: api_version(call.service),
            action: call.action,
            params: &call.request,
            credentials: &self.credentials,
            signature: self.signature,
            timestamp: &format_timestamp(OffsetDateTime::now_utc()),
            nonce: &new_nonce(),
        })
    }

    /// A 2xx answer that is not a JSON object with a `RequestId` (every
    /// Alibaba answer has one; a proxy's page does not) may or may not have
    /// come from the cloud: `OutcomeUnknown`.
    fn read_success(answer: Answer<'_>) -> Result<Accepted, Refusal> {
        if answer.json.as_ref().is_some_and(failed_on_2xx) {
            return Err(Self::read_failure(&answer));
        }
        let header_request_id = answer
            .response
            .header("x-acs-request-id")
            .map(str::to_owned);
        let unknown = |message: &str, request_id: Option<String>| Refusal {
            class: ErrorClass::OutcomeUnknown,
            kind: ErrorKind::InvalidResponse,
            code: None,
            message: message.to_owned(),
            request_id,
            retry_after: None,
        };
        let Some(body) = answer.json.filter(Value::is_object) else {
            return Err(unknown(
                "the answer is not a JSON object",
                header_request_id,
            ));
        };
        let Some(request_id) =
            string_field(&body, &["RequestId", "requestId"]).or(header_request_id)
        else {
            return Err(unknown("the answer has no RequestId", None));
        };
        Ok(Accepted {
            body,
            request_id: Some(request_id),
        })
    }

    /// Non-2xx answers, and 2xx bodies that report a failure (DTS).
    fn read_failure(answer: &Answer<'_>) -> Refusal {
        let response = answer.response;
        let parsed = match &answer.json {
            Some(body) => parse_error_json(body),
            None => {
                parse_error_xml(&answer.text).unwrap_or_else(|| ErrorBody::from_text(&answer.text))
            }
        };
        // A 2xx body that reports a failure without a code gives nothing
        // to classify by.
        let (mut class, mut kind) = if response.is_success() && parsed.code.is_none() {
            (ErrorClass::Permanent, ErrorKind::Other)
        } else {
            classify(response.status, parsed.code.as_deref())
        };
        if acs_retry_after(response).is_some()
            && !matches!(kind, ErrorKind::Auth | ErrorKind::PermissionDenied)
        {
            (class, kind) = (ErrorClass::Retryable, ErrorKind::Throttled);
        }
        Refusal {
            class,
            kind,
            code: parsed.code,
            message: parsed.message.unwrap_or_default(),
            request_id: parsed
                .request_id
                .or_else(|| response.header("x-acs-request-id").map(str::to_owned)),
            // `x-acs-retry-after` first, then `Retry-After`.
            retry_after: response.retry_after(),
        }
    }
}

fn string_field(value: &Value, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| json_text(value.get(*name)))
}

/// Reads `Code`/`code`, `Message`/`message`, `RequestId`/`requestId`, the
/// DTS `ErrCode`/`ErrMessage` (with `%s` filled from `DynamicMessage`) and
/// the permission detail of a 403.
pub fn parse_error_json(body: &Value) -> ErrorBody {
    let dts_code = string_field(body, &["ErrCode", "errCode"]);
    let code = dts_code.or_else(|| string_field(body, &["Code", "code"]));
    let mut message = match string_field(body, &["ErrMessage", "errMessage"]) {
        Some(template) => Some(
            match string_field(body, &["DynamicMessage", "dynamicMessage"]) {
                Some(dynamic) if template.contains("%s") => template.replacen("%s", &dynamic, 1),
                _ => template,
            },
        ),
        None => string_field(body, &["Message", "message"]),
    };
    let detail = body
        .get("AccessDeniedDetail")
        .or_else(|| body.get("accessDeniedDetail"));
    if let Some(action) = detail.and_then(|d| string_field(d, &["AuthAction"])) {
        let text = message.take().unwrap_or_default();
        message = Some(format!("{text} (denied action {action})").trim().to_owned());
    }
    ErrorBody {
        code,
        message,
        request_id: string_field(body, &["RequestId", "requestId"]),
    }
}

/// The `<Error>` XML answer (sent when `Format` is missing).
pub fn parse_error_xml(text: &str) -> Option<ErrorBody> {
    fn tag(text: &str, name: &str) -> Option<String> {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&close)? + start;
        let value = text[start..end].trim();
        (!value.is_empty()).then(|| value.to_owned())
    }
    if !text.contains("<Code>") {
        return None;
    }
    Some(ErrorBody {
        code: tag(text, "Code"),
        message: tag(text, "Message"),
        request_id: tag(text, "RequestId"),
    })
}

/// The class and kind of an Alibaba error code (with the HTTP status for
/// codes we do not know), from the codes the services document
/// (docs/provider-errors.md names the source of each).
///
/// `InternalError`, `UnknownError`, `ServiceUnavailable` and every 5xx may
/// come after the service applied the call: outcome unknown, which the
/// retry layer re-sends only for idempotent calls.
pub fn classify(status: u16, code: Option<&str>) -> (ErrorClass, ErrorKind) {
    use ErrorClass::{OutcomeUnknown, Permanent, Retryable};
    let code = code.unwrap_or("");
    let starts = |prefix: &str| code.starts_with(prefix);
    let family = |name: &str| code == name || code.starts_with(&format!("{name}."));
    // HTTP 429 is throttling whatever code comes with it.
    if family("Throttling") || code == "Rejected.Throttling" || status == 429 {
        return (Retryable, ErrorKind::Throttled);
    }
    if matches!(
        code,
        "InternalError" | "UnknownError" | "ServiceUnavailable"
    ) {
        return (OutcomeUnknown, ErrorKind::ServerError);
    }
    if matches!(code, "LockTimeout" | "ConcurrentTaskExceeded") {
        // The change never got its lock or task slot.
        return (Retryable, ErrorKind::Busy);
    }
    if code == "SignatureNonceUsed" {
        // Rejected before anything happened; the next attempt has a new nonce.
        return (Retryable, ErrorKind::Other);
    }
    if [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidTimeStamp",
        "IllegalTimestamp",
        "InvalidSecurityToken",
    ]
    .iter()
    .any(|name| family(name))
    {
        return (Permanent, ErrorKind::Auth);
    }
    if matches!(
        code,
        "InvalidApi.NotFound" | "InvalidAction.NotFound" | "InvalidProduct.NotFound"
    ) {
        return (Permanent, ErrorKind::Config);
    }
    if code == "Forbidden.InstanceNotFound"
        || code.ends_with(".NotFound")
        || family("EntityNotExist")
    {
        return (Permanent, ErrorKind::NotFound);
    }
    // `AccountActionForbidden` comes with HTTP 401 but says objects depend
    // on the account; read as Auth it would stop the whole connection.
    if family("OperationDenied")
        || family("IncorrectDBClusterState")
        || family("EngineMigration")
        || code == "AccountActionForbidden"
    {
        return (Permanent, ErrorKind::InvalidState);
    }
    if starts("Forbidden") || matches!(code, "NoPermission" | "InsufficientBalance") {
        return (Permanent, ErrorKind::PermissionDenied);
    }
    // RAM's `LimitExceeded.*`; PolarDB's `QuotaExceeded.*` (e.g.
    // `QuotaExceeded.AccountName`, a 403 that is no permission problem).
    if family("LimitExceeded") || family("QuotaExceeded") {
        return (Permanent, ErrorKind::LimitExceeded);
    }
    if starts("Invalid") || starts("Missing") || code.ends_with(".Malformed") {
        return (Permanent, ErrorKind::InvalidParameter);
    }
    match status {
        500..=599 => (OutcomeUnknown, ErrorKind::ServerError),
        401 => (Permanent, ErrorKind::Auth),
        403 => (Permanent, ErrorKind::PermissionDenied),
        404 => (Permanent, ErrorKind::NotFound),
        400 | 409 | 422 => (Permanent, ErrorKind::InvalidParameter),
        _ => (Permanent, ErrorKind::Other),
    }
}

fn is_false(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => !b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("false"),
        _ => false,
    }
}

/// A 2xx body that still reports a failure: DTS `Success: false`, or (when
/// `Success` is absent) an `ErrCode` or an `HttpStatusCode` of 400 or more.
fn failed_on_2xx(body: &Value) -> bool {
    if let Some(success) = body.get("Success").or_else(|| body.get("success")) {
        return is_false(Some(success));
    }
    let err_code = string_field(body, &["ErrCode", "errCode"]);
    let status = match body.get("HttpStatusCode") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    err_code.is_some() || status.is_some_and(|s| s >= 400)
}

/// `x-acs-retry-after` as the tea SDK reads it: a positive integer of
/// milliseconds; with it, any error is a throttling answer.
fn acs_retry_after(response: &IncomingResponse) -> Option<std::time::Duration> {
    response
        .header("x-acs-retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(std::time::Duration::from_millis)
}

/// Reads one answer: its JSON body, or the error of a non-2xx status, of
/// a 2xx body that reports a failure (DTS) or of a 2xx answer that is no
/// Alibaba answer.
pub fn parse_response(
    service: AlibabaService,
    action: &str,
    response: &IncomingResponse,
    secrets: &[String],
) -> Result<(Value, CallInfo), ProviderError> {
    send::read_answer::<Inner>(service.into(), action, response, secrets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::alicloud::sign::{acs3_canonical_request, parse_acs3_authorization};
    use crate::providers::encoding::percent_decode;
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

    fn response(status: u16, body: &str, headers: &[(&str, &str)]) -> IncomingResponse {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        IncomingResponse {
            status,
            headers: map,
            body: body.as_bytes().to_vec(),
        }
    }

    fn error_of(status: u16, body: &str) -> ProviderError {
        parse_response(
            AlibabaService::Dts,
            "ModifyDtsJobPassword",
            &response(status, body, &[]),
            &[],
        )
        .unwrap_err()
    }

    #[test]
    fn common_json_error() {
        let error = error_of(
            404,
            r#"{"RequestId":"6BE56E05-XXXX","HostId":"ecs.ap-southeast-3.aliyuncs.com","Code":"InvalidImageId.NotFound","Message":"The specified ImageId does not exist.","Recommend":"https://api.alibabacloud.com/troubleshoot?q=InvalidImageId.NotFound&requestId=6BE56E05"}"#,
        );
        assert_eq!(error.code.as_deref(), Some("InvalidImageId.NotFound"));
        assert_eq!(error.message, "The specified ImageId does not exist.");
        assert_eq!(error.request_id.as_deref(), Some("6BE56E05-XXXX"));
        assert_eq!(error.kind, ErrorKind::NotFound);
        assert_eq!(error.class, ErrorClass::Permanent);
        assert_eq!(error.http_status, Some(404));
    }

    #[test]
    fn lower_case_fields_and_access_denied_detail() {
        let error = error_of(
            403,
            r#"{"requestId":"R-2","code":"Forbidden.RAM","message":"User not authorized to operate on the specified resource.","AccessDeniedDetail":{"AuthAction":"dts:ModifyDtsJobPassword","EncodedDiagnosticMessage":"abc"}}"#,
        );
        assert_eq!(error.code.as_deref(), Some("Forbidden.RAM"));
        assert_eq!(error.request_id.as_deref(), Some("R-2"));
        assert!(
            error
                .message
                .contains("denied action dts:ModifyDtsJobPassword")
        );
        assert_eq!(error.kind, ErrorKind::PermissionDenied);
    }

    #[test]
    fn dts_success_false_on_http_200_is_a_failure() {
        let error = error_of(
            200,
            r#"{"RequestId":"R-3","HttpStatusCode":200,"Success":false,"ErrCode":"InvalidParameter","ErrMessage":"The Value of Input Parameter %s is not valid.","DynamicMessage":"DtsJobId","Code":"InvalidParameter"}"#,
        );
        assert_eq!(error.code.as_deref(), Some("InvalidParameter"));
        assert_eq!(
            error.message,
            "The Value of Input Parameter DtsJobId is not valid."
        );
        assert_eq!(error.http_status, Some(200));
        assert_eq!(error.kind, ErrorKind::InvalidParameter);
        assert_eq!(error.request_id.as_deref(), Some("R-3"));
        let string_false = error_of(200, r#"{"RequestId":"R-4","Success":"false"}"#);
        assert_eq!(string_false.class, ErrorClass::Permanent);
    }

    /// The seed's DTS failure fields: `ErrMessage`'s `%s` is filled from
    /// `DynamicMessage`, `ErrCode` wins over the retiring `Code`.
    #[test]
    fn dts_error_fields_from_the_seed() {
        let error = error_of(
            400,
            r#"{"RequestId":"R-5","HttpStatusCode":400,"Success":false,"Code":"InvalidParameter","ErrCode":"InvalidParameter","ErrMessage":"The Value of Input Parameter %s is not valid.","DynamicMessage":"DtsJobId"}"#,
        );
        assert_eq!(error.code.as_deref(), Some("InvalidParameter"));
        assert_eq!(
            error.message,
            "The Value of Input Parameter DtsJobId is not valid."
        );
        assert_eq!(error.kind, ErrorKind::InvalidParameter);
        assert_eq!(error.class, ErrorClass::Permanent);
    }

    #[test]
    fn xml_error_body() {
        let error = error_of(
            400,
            "<?xml version='1.0' encoding='UTF-8'?><Error><RequestId>R-6</RequestId><HostId>dts.aliyuncs.com</HostId><Code>Throttling.User</Code><Message>Request was denied due to user flow control.</Message></Error>",
        );
        assert_eq!(error.code.as_deref(), Some("Throttling.User"));
        assert_eq!(error.request_id.as_deref(), Some("R-6"));
        assert!(error.is_throttled());
        assert!(error.is_retryable());
    }

    #[test]
    fn non_json_gateway_answer() {
        let error = error_of(502, "<html><body>Bad Gateway</body></html>");
        assert_eq!(error.class, ErrorClass::OutcomeUnknown);
        assert_eq!(error.kind, ErrorKind::ServerError);
        assert!(error.message.contains("Bad Gateway"));
    }

    #[test]
    fn throttling_keeps_retry_after() {
        let error = parse_response(
            AlibabaService::Polardb,
            "ModifyAccountPassword",
            &response(
                400,
                r#"{"Code":"Throttling.User","Message":"flow control","RequestId":"R"}"#,
                &[("x-acs-retry-after", "2500")],
            ),
            &[],
        )
        .unwrap_err();
        assert_eq!(
            error.retry_after,
            Some(std::time::Duration::from_millis(2500))
        );
    }

    #[test]
    fn v2_signature_echo_never_reaches_the_error() {
        let error = parse_response(
            AlibabaService::Polardb,
            "ModifyAccountPassword",
            &response(
                400,
                r#"{"RequestId":"R-7","Code":"SignatureDoesNotMatch","Message":"Specified signature is not matched with our calculation. server string to sign is:POST&%2F&AccessKeyId%3Dtestid%26NewAccountPassword%3DPw%2521New-Secret-9"}"#,
                &[],
            ),
            &["Pw!New-Secret-9".to_owned()],
        )
        .unwrap_err();
        let shown = error.to_string();
        assert!(!shown.contains("New-Secret-9"), "{shown}");
        assert!(!shown.contains("AccessKeyId%3D"), "{shown}");
        assert!(shown.contains("server string to sign is: [redacted]"));
        assert_eq!(error.kind, ErrorKind::Auth);
        assert!(!error.is_retryable());
    }

    #[test]
    fn dts_failure_on_http_200_without_a_success_field() {
        let error = error_of(
            200,
            r#"{"RequestId":"R-8","HttpStatusCode":400,"ErrCode":"InvalidParameter","ErrMessage":"The Value of Input Parameter %s is not valid.","DynamicMessage":"Endpoint"}"#,
        );
        assert_eq!(error.code.as_deref(), Some("InvalidParameter"));
        assert_eq!(error.kind, ErrorKind::InvalidParameter);
        assert_eq!(error.request_id.as_deref(), Some("R-8"));
        assert!(error.message.contains("Endpoint"));
        let error = error_of(200, r#"{"RequestId":"R-9","HttpStatusCode":"500"}"#);
        assert_eq!(error.class, ErrorClass::Permanent);
        // Plain successes stay successes.
        for body in [
            r#"{"RequestId":"R","HttpStatusCode":200,"Success":true}"#,
            r#"{"RequestId":"R","HttpStatusCode":200}"#,
            r#"{"RequestId":"R","ErrCode":""}"#,
        ] {
            assert!(
                parse_response(AlibabaService::Dts, "X", &response(200, body, &[]), &[]).is_ok(),
                "{body}"
            );
        }
    }

    #[test]
    fn a_2xx_that_is_not_an_alibaba_answer_is_outcome_unknown() {
        for body in ["<html>captive portal</html>", "[]", r#"{"ok":true}"#] {
            let error = parse_response(
                AlibabaService::Polardb,
                "ModifyAccountPassword",
                &response(200, body, &[]),
                &[],
            )
            .unwrap_err();
            assert_eq!(
                (error.class, error.kind),
                (ErrorClass::OutcomeUnknown, ErrorKind::InvalidResponse),
                "{body}"
            );
        }
        let (_, info) = parse_response(
            AlibabaService::Polardb,
            "ModifyAccountPassword",
            &response(200, "{}", &[("x-acs-request-id", "HDR-1")]),
            &[],
        )
        .unwrap();
        assert_eq!(info.request_id.as_deref(), Some("HDR-1"));
    }

    #[test]
    fn http_429_and_x_acs_retry_after_mean_throttling_whatever_the_code() {
        let error = error_of(
            429,
            r#"{"RequestId":"R","Code":"InvalidParameter","Message":"m"}"#,
        );
        assert_eq!(
            (error.class, error.kind),
            (ErrorClass::Retryable, ErrorKind::Throttled)
        );
        let error = parse_response(
            AlibabaService::Dts,
            "ModifyDtsJobPassword",
            &response(
                400,
                r#"{"RequestId":"R","Code":"Flowcontrol.Exceeded","Message":"m"}"#,
                &[("x-acs-retry-after", "800"), ("retry-after", "9")],
            ),
            &[],
        )
        .unwrap_err();
        assert_eq!(
            (error.class, error.kind),
            (ErrorClass::Retryable, ErrorKind::Throttled)
        );
        assert_eq!(
            error.retry_after,
            Some(std::time::Duration::from_millis(800))
        );
        // ...but never turns an auth failure into something retried.
        let error = parse_response(
            AlibabaService::Dts,
            "ModifyDtsJobPassword",
            &response(
                400,
                r#"{"RequestId":"R","Code":"SignatureDoesNotMatch","Message":"m"}"#,
                &[("x-acs-retry-after", "800")],
            ),
            &[],
        )
        .unwrap_err();
        assert_eq!(error.kind, ErrorKind::Auth);
        assert!(!error.is_retryable());
    }

    #[test]
    fn success_keeps_the_request_id() {
        let (body, info) = parse_response(
            AlibabaService::Dts,
            "ModifyDtsJobPassword",
            &response(
                200,
                r#"{"RequestId":"8C498360","HttpStatusCode":200,"Success":true}"#,
                &[],
            ),
            &[],
        )
        .unwrap();
        assert_eq!(info.request_id.as_deref(), Some("8C498360"));
        assert_eq!(body["Success"], Value::Bool(true));
    }

    #[test]
    fn codes_and_request_ids_echoing_a_secret_are_redacted() {
        // Found by tests/fuzz_decoding.rs: code and request id were shown
        // as the answer gave them, unlike the message.
        let secret = "Pl4nted-Secret!".to_owned();
        let echo = r#"{"Code":"Pl4nted-Secret!","Message":"m","RequestId":"id Pl4nted-Secret!"}"#;
        let xml = "<Error><Code>see https://x/?Password=Pl4nted-Secret!</Code></Error>";
        for (status, body) in [(400, echo), (300, xml)] {
            let answer = response(status, body, &[]);
            let error = parse_response(
                AlibabaService::Dts,
                "ModifyDtsJobPassword",
                &answer,
                std::slice::from_ref(&secret),
            )
            .unwrap_err();
            assert!(!error.to_string().contains("Pl4nted"), "{error}");
        }
        let answer = response(200, r#"{"RequestId":"Pl4nted-Secret!"}"#, &[]);
        let (_, info) =
            parse_response(AlibabaService::Dts, "DescribeDtsJobs", &answer, &[secret]).unwrap();
        assert_eq!(info.request_id.as_deref(), Some("[redacted]"));
    }

    /// Every code the contract and reference name, with the class it must get.
    #[test]
    fn classification_table() {
        use ErrorClass::*;
        let table: &[(u16, &str, ErrorClass, ErrorKind)] = &[
            (400, "Throttling", Retryable, ErrorKind::Throttled),
            (400, "Throttling.User", Retryable, ErrorKind::Throttled),
            (400, "Throttling.Api", Retryable, ErrorKind::Throttled),
            (400, "Rejected.Throttling", Retryable, ErrorKind::Throttled),
            (
                503,
                "ServiceUnavailable",
                OutcomeUnknown,
                ErrorKind::ServerError,
            ),
            (500, "InternalError", OutcomeUnknown, ErrorKind::ServerError),
            (500, "UnknownError", OutcomeUnknown, ErrorKind::ServerError),
            (403, "ConcurrentTaskExceeded", Retryable, ErrorKind::Busy),
            (400, "LockTimeout", Retryable, ErrorKind::Busy),
            (400, "SignatureNonceUsed", Retryable, ErrorKind::Other),
            (
                404,
                "InvalidAccessKeyId.NotFound",
                Permanent,
                ErrorKind::Auth,
            ),
            (
                400,
                "InvalidAccessKeyId.Inactive",
                Permanent,
                ErrorKind::Auth,
            ),
            (400, "SignatureDoesNotMatch", Permanent, ErrorKind::Auth),
            (400, "IncompleteSignature", Permanent, ErrorKind::Auth),
            (400, "InvalidTimeStamp.Expired", Permanent, ErrorKind::Auth),
            (400, "InvalidTimeStamp.Format", Permanent, ErrorKind::Auth),
            (400, "IllegalTimestamp", Permanent, ErrorKind::Auth),
            (
                400,
                "InvalidSecurityToken.Expired",
                Permanent,
                ErrorKind::Auth,
            ),
            (
                400,
                "InvalidSecurityToken.Malformed",
                Permanent,
                ErrorKind::Auth,
            ),
            (403, "Forbidden.RAM", Permanent, ErrorKind::PermissionDenied),
            (403, "Forbidden", Permanent, ErrorKind::PermissionDenied),
            (403, "NoPermission", Permanent, ErrorKind::PermissionDenied),
            (
                403,
                "QuotaExceeded.AccountName",
                Permanent,
                ErrorKind::LimitExceeded,
            ),
            (
                403,
                "Forbidden.RiskControl",
                Permanent,
                ErrorKind::PermissionDenied,
            ),
            (
                400,
                "InvalidAccountPassword.Malformed",
                Permanent,
                ErrorKind::InvalidParameter,
            ),
            (
                404,
                "InvalidDBClusterId.Malformed",
                Permanent,
                ErrorKind::InvalidParameter,
            ),
            (
                404,
                "InvalidDBClusterId.NotFound",
                Permanent,
                ErrorKind::NotFound,
            ),
            (
                404,
                "InvalidDBCluster.NotFound",
                Permanent,
                ErrorKind::NotFound,
            ),
            (
                404,
                "InvalidAccountName.NotFound",
                Permanent,
                ErrorKind::NotFound,
            ),
            (
                404,
                "Forbidden.InstanceNotFound",
                Permanent,
                ErrorKind::NotFound,
            ),
            (404, "EntityNotExist.User", Permanent, ErrorKind::NotFound),
            (
                404,
                "EntityNotExist.User.AccessKey",
                Permanent,
                ErrorKind::NotFound,
            ),
            (
                403,
                "OperationDenied.JobStatus",
                Permanent,
                ErrorKind::InvalidState,
            ),
            (
                400,
                "EngineMigration.ActionDisabled",
                Permanent,
                ErrorKind::InvalidState,
            ),
            (
                400,
                "InvalidParameter.UserName",
                Permanent,
                ErrorKind::InvalidParameter,
            ),
            (
                400,
                "MissingParameter",
                Permanent,
                ErrorKind::InvalidParameter,
            ),
            (
                409,
                "LimitExceeded.User.AccessKey",
                Permanent,
                ErrorKind::LimitExceeded,
            ),
            (
                403,
                "IncorrectDBClusterState",
                Permanent,
                ErrorKind::InvalidState,
            ),
            (
                401,
                "AccountActionForbidden",
                Permanent,
                ErrorKind::InvalidState,
            ),
            (404, "InvalidApi.NotFound", Permanent, ErrorKind::Config),
            (502, "", OutcomeUnknown, ErrorKind::ServerError),
            (504, "SomethingNew", OutcomeUnknown, ErrorKind::ServerError),
            (429, "", Retryable, ErrorKind::Throttled),
            (404, "", Permanent, ErrorKind::NotFound),
        ];
        for (status, code, class, kind) in table {
            let code = (!code.is_empty()).then_some(*code);
            assert_eq!(
                classify(*status, code),
                (*class, *kind),
                "{status} {code:?}"
            );
        }
    }

    fn creds(token: bool) -> Credentials {
        let creds = Credentials::new("testid", "testsecret");
        if token {
            creds.with_security_token("CAIS-test-security-token")
        } else {
            creds
        }
    }

    fn dts_params() -> Vec<(String, String)> {
        [
            ("DtsJobId", "l3m1213ye7l****"),
            ("Endpoint", "src"),
            ("UserName", "dtstest"),
            ("Password", "N3w P@ss*~/+=&!"),
            ("RegionId", "cn-hangzhou"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The client's own request builder reproduces the reference vectors
    /// B2 (ACS3) and A1/A1s (V2) byte for byte.
    #[test]
    fn request_builder_reproduces_reference_vectors() {
        let base = Url::parse("https://dts.aliyuncs.com").unwrap();
        let params = dts_params();
        let build = |signature, token| {
            build_rpc_request(&RpcSigningInput {
                base: &base,
                version: "2020-01-01",
                action: "ModifyDtsJobPassword",
                params: &params,
                credentials: &creds(token),
                signature,
                timestamp: "2024-05-01T08:00:00Z",
                nonce: "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
            })
        };
        let acs3 = build(SignatureVersion::Acs3, false);
        let auth = acs3
            .headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .map(|(_, v)| v.clone())
            .unwrap();
        assert_eq!(
            auth,
            "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=25c9f4987a64fe416f48ba6b1b58c0a028391679405838170355a96e10fa7d0b"
        );
        assert_eq!(
            acs3.url.query(),
            Some(
                "DtsJobId=l3m1213ye7l%2A%2A%2A%2A&Endpoint=src&Password=N3w%20P%40ss%2A~%2F%2B%3D%26%21&RegionId=cn-hangzhou&UserName=dtstest"
            )
        );
        assert_eq!(acs3.method, Method::POST);
        assert!(acs3.body.is_empty());

        let v2 = build(SignatureVersion::V2, false);
        let query = v2.url.query().unwrap();
        assert!(
            query.ends_with("&Version=2020-01-01")
                || query.contains("Signature=2WW9%2BSpBhIhWYFExcsibJpbbHj4%3D")
        );
        let signature = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("Signature="))
            .map(percent_decode)
            .unwrap();
        assert_eq!(signature, "2WW9+SpBhIhWYFExcsibJpbbHj4=");
        let v2s = build(SignatureVersion::V2, true);
        let signature = v2s
            .url
            .query()
            .unwrap()
            .split('&')
            .find_map(|kv| kv.strip_prefix("Signature="))
            .map(percent_decode)
            .unwrap();
        assert_eq!(signature, "egleblhn2JOiWrVMYOTzJdP27cU=");
    }

    #[test]
    fn acs3_with_token_signs_the_token_header_and_base_path() {
        let base = Url::parse("http://127.0.0.1:8080/gw").unwrap();
        let params = dts_params();
        let request = build_rpc_request(&RpcSigningInput {
            base: &base,
            version: "2020-01-01",
            action: "ModifyDtsJobPassword",
            params: &params,
            credentials: &creds(true),
            signature: SignatureVersion::Acs3,
            timestamp: "2024-05-01T08:00:00Z",
            nonce: "n",
        });
        assert_eq!(request.url.path(), "/gw/");
        assert_eq!(request.url.scheme(), "http");
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(header("host"), "127.0.0.1:8080");
        assert_eq!(header("x-acs-security-token"), "CAIS-test-security-token");
        let parsed = parse_acs3_authorization(&header("authorization")).unwrap();
        assert!(
            parsed
                .signed_headers
                .contains(&"x-acs-security-token".to_owned())
        );
        // The server recomputes the same signature from what was sent.
        let sent: Vec<(String, String)> = request.headers.clone();
        let signed = acs3_headers_to_sign(&sent);
        let canonical = acs3_canonical_request(&Acs3Request {
            method: "POST",
            canonical_uri: "/gw/",
            query: &params,
            signed_headers: &signed,
            payload_sha256: EMPTY_PAYLOAD_SHA256,
        });
        assert!(canonical.contains("\n/gw/\n"));
    }

    #[test]
    fn debug_output_names_parameters_without_values() {
        let call = RpcCall::new(
            AlibabaService::Dts,
            "ModifyDtsJobPassword",
            Idempotency::NonIdempotent,
        )
        .param("DtsJobId", "j1")
        .secret_param("Password", "Secret-Pass-1");
        let shown = format!("{call:?}");
        assert!(!shown.contains("Secret-Pass-1"), "{shown}");
        assert!(shown.contains("Password") && shown.contains("DtsJobId"));
        let base = Url::parse("https://dts.aliyuncs.com").unwrap();
        let creds = creds(true);
        let input = RpcSigningInput {
            base: &base,
            version: "2020-01-01",
            action: "ModifyDtsJobPassword",
            params: &call.request,
            credentials: &creds,
            signature: SignatureVersion::V2,
            timestamp: "2024-05-01T08:00:00Z",
            nonce: "n",
        };
        let shown = format!("{input:?} {:?}", build_rpc_request(&input));
        for secret in ["Secret-Pass-1", "testsecret", "CAIS-test-security-token"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn nonces_are_fresh_hex() {
        let a = new_nonce();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_nonce());
    }
}
