//! The Huawei Cloud REST client: JSON bodies serialised once (the signed
//! hash is over exactly the bytes sent), signed with SDK-HMAC-SHA256 over
//! every header it sends, and every documented error shape read as a
//! classified failure. Sending, retries, pacing and redaction are the
//! shared loop's ([`crate::providers::send`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use reqwest::{Method, Url};
use serde_json::Value;
use time::OffsetDateTime;

use super::sign::{SignRequest, authorization, format_sdk_date, normalize_headers};
use super::{HuaweiService, endpoints};
use crate::providers::encoding::{canonical_query, percent_decode, percent_encode};
use crate::providers::error::{ErrorClass, ErrorKind, ProviderError};
use crate::providers::hash::{EMPTY_PAYLOAD_SHA256, sha256_hex};
use crate::providers::http::{
    HttpClient, IncomingResponse, OutgoingRequest, base_path, host_header, names, url_without_query,
};
use crate::providers::send::{self, Accepted, Answer, Call, Cloud, ErrorBody, Refusal, json_text};
use crate::providers::{
    CallInfo, ConnectionOptions, Credentials, Idempotency, RetryPolicy, Service,
};

#[derive(Debug, Clone)]
pub struct HuaweiConfig {
    pub credentials: Credentials,
    pub options: ConnectionOptions,
    /// The project of the region (DRS and DCS paths, `X-Project-Id`).
    pub project_id: String,
    /// The account (domain) id. IAM is a global service: its calls carry
    /// `X-Domain-Id` when this is set (the SDK's global credentials), else
    /// `X-Project-Id` of the project (its basic credentials).
    pub domain_id: Option<String>,
}

/// What a REST call sends. `path` is decoded and relative to the
/// service's base URL.
#[derive(Clone)]
pub struct RestRequest {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Serialised JSON, sent and hashed as is.
    pub body: Option<Vec<u8>>,
}

/// One REST call. `Debug` leaves out query values and the body.
pub type RestCall = Call<HuaweiService, RestRequest>;

impl RestCall {
    pub fn new(
        service: HuaweiService,
        action: &'static str,
        method: Method,
        path: String,
        idempotency: Idempotency,
    ) -> Self {
        Call {
            service,
            action,
            idempotency,
            secrets: Vec::new(),
            request: RestRequest {
                method,
                path,
                query: Vec::new(),
                body: None,
            },
        }
    }

    pub fn query(mut self, name: &str, value: impl Into<String>) -> Self {
        self.request.query.push((name.to_owned(), value.into()));
        self
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.request.body = Some(serde_json::to_vec(body).expect("a JSON value always serialises"));
        self
    }
}

/// Everything that goes into one signed request; the date is an input so
/// tests and the benchmark are deterministic. `Debug` leaves out query
/// values and the body.
#[derive(Clone, Copy)]
pub struct RestSigningInput<'a> {
    pub base: &'a Url,
    pub method: &'a Method,
    /// Decoded, relative to the base URL.
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub body: Option<&'a [u8]>,
    pub credentials: &'a Credentials,
    /// `X-Project-Id` (project-scoped services).
    pub project_id: Option<&'a str>,
    /// `X-Domain-Id` (global services).
    pub domain_id: Option<&'a str>,
    /// `YYYYMMDDTHHMMSSZ`.
    pub sdk_date: &'a str,
}

impl fmt::Debug for RestCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestCall")
            .field("service", &self.service)
            .field("action", &self.action)
            .field("method", &self.request.method)
            .field("path", &self.request.path)
            .field("query", &names(&self.request.query))
            .field("body_len", &self.request.body.as_ref().map(Vec::len))
            .field("idempotency", &self.idempotency)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RestSigningInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestSigningInput")
            .field("base", &url_without_query(self.base))
            .field("method", self.method)
            .field("path", &self.path)
            .field("query", &names(self.query))
            .field("body_len", &self.body.map(<[u8]>::len))
            .field("credentials", self.credentials)
            .field("project_id", &self.project_id)
            .field("domain_id", &self.domain_id)
            .field("sdk_date", &self.sdk_date)
            .finish()
    }
}

/// Builds and signs one request. Every header sent is signed (as the SDK
/// does), `Content-Type: application/json` included whatever the method,
/// the canonical URI gets its trailing `/`, the URL does not.
///
/// The base URL's path is already encoded (it was parsed as a URL), so only
/// the call's own path is encoded here. The path signed is the one the URL
/// really carries, decoded, as the gateway and the SDK derive it: the URL
/// parser may still rewrite what it was given (dot segments), and the
/// signature must cover what is sent.
pub fn build_rest_request(input: &RestSigningInput<'_>) -> OutgoingRequest {
    let encoded_path = format!(
        "{}{}",
        base_path(input.base),
        input
            .path
            .split('/')
            .map(percent_encode)
            .collect::<Vec<_>>()
            .join("/")
    );
    let mut url = input.base.clone();
    url.set_path(&encoded_path);
    let full_path = percent_decode(url.path());
    let query = canonical_query(input.query);
    url.set_query((!query.is_empty()).then_some(query.as_str()));

    let mut headers: Vec<(String, String)> = vec![
        ("Host".into(), host_header(input.base)),
        ("X-Sdk-Date".into(), input.sdk_date.to_owned()),
    ];
    // The SDK sends it on every call, GET and DELETE included.
    headers.push(("Content-Type".into(), "application/json".into()));
    if let Some(project) = input.project_id {
        headers.push(("X-Project-Id".into(), project.to_owned()));
    }
    if let Some(domain) = input.domain_id {
        headers.push(("X-Domain-Id".into(), domain.to_owned()));
    }
    if let Some(token) = &input.credentials.security_token {
        headers.push(("X-Security-Token".into(), token.expose().to_owned()));
    }
    let signed = normalize_headers(&headers);
    let payload_hash = match input.body {
        Some(body) if !body.is_empty() => sha256_hex(body),
        _ => EMPTY_PAYLOAD_SHA256.to_owned(),
    };
    let method = input.method.as_str();
    let auth = authorization(
        &SignRequest {
            method,
            path: &full_path,
            query: input.query,
            signed_headers: &signed,
            payload_sha256: &payload_hash,
        },
        input.sdk_date,
        &input.credentials.access_key,
        input.credentials.secret_key.expose(),
    );
    headers.push(("Authorization".into(), auth));
    OutgoingRequest {
        method: input.method.clone(),
        url,
        headers,
        body: input.body.map(<[u8]>::to_vec).unwrap_or_default(),
    }
}

/// Whether an identifier can stand as one path segment as it is: not
/// empty, no `/`, not `.` or `..` (which the URL would resolve away, so
/// the call would reach another resource).
pub fn is_path_segment(value: &str) -> bool {
    !value.is_empty() && !value.contains('/') && value != "." && value != ".."
}

/// `value` as one path segment of a call, or the error that refuses it
/// before anything is sent.
pub fn path_segment<'a>(
    service: HuaweiService,
    action: &str,
    what: &str,
    value: &'a str,
) -> Result<&'a str, ProviderError> {
    if is_path_segment(value) {
        Ok(value)
    } else {
        Err(ProviderError::new(
            ErrorClass::Permanent,
            ErrorKind::InvalidParameter,
            service.into(),
            action,
            &format!("{what} must be one path segment (not empty, no '/', not '.' or '..')"),
            &[],
        ))
    }
}

/// The client for one Huawei Cloud connection: one pooled HTTPS client and
/// one token bucket shared by its DRS, DCS and IAM handles.
#[derive(Debug, Clone)]
pub struct HuaweiClient {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    http: HttpClient,
    credentials: Credentials,
    project_id: String,
    domain_id: Option<String>,
    /// One for every Huawei service.
    bases: BTreeMap<HuaweiService, Url>,
}

impl HuaweiClient {
    /// The access key id this client signs with (not a secret).
    pub fn access_key_id(&self) -> &str {
        &self.inner.credentials.access_key
    }

    pub fn new(config: HuaweiConfig) -> Result<Self, ProviderError> {
        let http = HttpClient::new(&config.options)
            .map_err(|e| ProviderError::config(Service::Drs, "connect", &e))?;
        if !is_path_segment(&config.project_id) {
            return Err(ProviderError::config(
                Service::Drs,
                "connect",
                "a valid project_id is required",
            ));
        }
        let mut bases = BTreeMap::new();
        for service in HuaweiService::ALL {
            let base = endpoints::base_url(service, &config.options)
                .map_err(|e| ProviderError::config(service.into(), "connect", &e))?;
            bases.insert(service, base);
        }
        Ok(HuaweiClient {
            inner: Arc::new(Inner {
                http,
                credentials: config.credentials,
                project_id: config.project_id,
                domain_id: config.domain_id,
                bases,
            }),
        })
    }

    /// Replaces the retry policy; the clone shares pool and pacing.
    pub fn with_retry_policy(self, retry: RetryPolicy) -> Self {
        let mut inner = (*self.inner).clone();
        inner.http.set_retry_policy(retry);
        HuaweiClient {
            inner: Arc::new(inner),
        }
    }

    pub fn project_id(&self) -> &str {
        &self.inner.project_id
    }

    pub fn base_url(&self, service: HuaweiService) -> &Url {
        &self.inner.bases[&service]
    }

    pub fn drs(&self) -> super::drs::DrsClient {
        super::drs::DrsClient::new(self.clone())
    }

    pub fn dcs(&self) -> super::dcs::DcsClient {
        super::dcs::DcsClient::new(self.clone())
    }

    pub fn iam(&self) -> super::iam::IamClient {
        super::iam::IamClient::new(self.clone())
    }

    /// Sends one call with retries; returns the JSON body (`Null` when
    /// empty) of a 2xx answer.
    pub async fn call(&self, call: &RestCall) -> Result<(Value, CallInfo), ProviderError> {
        let client = &*self.inner;
        send::send(&client.http, &client.credentials, client, call).await
    }
}

impl Cloud for Inner {
    type Service = HuaweiService;
    type Request = RestRequest;

    fn sign(&self, call: &RestCall) -> OutgoingRequest {
        let (project_id, domain_id) =
            scope_headers(call.service, &self.project_id, self.domain_id.as_deref());
        let request = &call.request;
        build_rest_request(&RestSigningInput {
            base: &self.bases[&call.service],
            method: &request.method,
            path: &request.path,
            query: &request.query,
            body: request.body.as_deref(),
            credentials: &self.credentials,
            project_id,
            domain_id,
            sdk_date: &format_sdk_date(OffsetDateTime::now_utc()),
        })
    }

    /// The JSON body, `Null` when empty. Service-level "200 but failed"
    /// checks live with each call.
    fn read_success(answer: Answer<'_>) -> Result<Accepted, Refusal> {
        let header_request_id = answer.response.header("x-request-id").map(str::to_owned);
        let body = match answer.json {
            Some(body) => body,
            None if answer.text.trim().is_empty() => Value::Null,
            None => {
                return Err(Refusal {
                    class: ErrorClass::Permanent,
                    kind: ErrorKind::InvalidResponse,
                    code: None,
                    message: "the answer is not JSON".to_owned(),
                    request_id: header_request_id,
                    retry_after: None,
                });
            }
        };
        let request_id = header_request_id.or_else(|| json_text(body.get("request_id")));
        Ok(Accepted { body, request_id })
    }

    fn read_failure(answer: &Answer<'_>) -> Refusal {
        let response = answer.response;
        let parsed = match &answer.json {
            Some(body) => parse_error_json(body),
            None => ErrorBody::from_text(&answer.text),
        };
        let message = parsed.message.unwrap_or_default();
        let (class, kind) = classify(response.status, parsed.code.as_deref(), &message);
        Refusal {
            class,
            kind,
            code: parsed.code,
            message,
            request_id: response
                .header("x-request-id")
                .map(str::to_owned)
                .or(parsed.request_id),
            retry_after: response.retry_after(),
        }
    }
}

/// `(X-Project-Id, X-Domain-Id)` of a call: the global IAM service takes
/// the account's domain when it is known (the SDK's global credentials),
/// every call otherwise the project (its basic credentials).
pub fn scope_headers<'a>(
    service: HuaweiService,
    project_id: &'a str,
    domain_id: Option<&'a str>,
) -> (Option<&'a str>, Option<&'a str>) {
    match (service, domain_id) {
        (HuaweiService::Iam, Some(domain)) => (None, Some(domain)),
        _ => (Some(project_id), None),
    }
}

/// Like the SDK's exception handler (`DefaultExceptionHandler`): the first
/// of `error_code`+`error_msg`, `errorCode`+`errorMsg`, `code`+`message`
/// present in an object, else the same inside nested objects. Unlike the
/// SDK, a pair whose values are both null does not end the search: IAM's
/// documented key-limit answer nests `"error_code": null, "error_msg": null`
/// beside the `code`/`message` that say what happened.
pub fn parse_error_json(body: &Value) -> ErrorBody {
    fn find(body: &Value, depth: usize) -> Option<(Option<String>, Option<String>)> {
        let object = body.as_object()?;
        for (code, message) in [
            ("error_code", "error_msg"),
            ("errorCode", "errorMsg"),
            ("code", "message"),
        ] {
            if object.contains_key(code) && object.contains_key(message) {
                let pair = (json_text(object.get(code)), json_text(object.get(message)));
                if pair.0.is_some() || pair.1.is_some() {
                    return Some(pair);
                }
            }
        }
        if depth >= 4 {
            return None;
        }
        object.values().find_map(|nested| find(nested, depth + 1))
    }
    let (code, message) = find(body, 0).unwrap_or_default();
    ErrorBody {
        code,
        message,
        request_id: json_text(body.get("request_id")),
    }
}

/// The class and kind of a Huawei error, from the codes the services
/// document (docs/provider-errors.md names the source of each). The
/// message matters for one answer only: IAM reports a full key quota as
/// the message `akSkNumExceed` with no code of its own.
///
/// Every 5xx may come after the backend applied the call (APIG's 502/504
/// "backend unavailable / timeout" included): outcome unknown, which the
/// retry layer re-sends only for idempotent calls.
pub fn classify(status: u16, code: Option<&str>, message: &str) -> (ErrorClass, ErrorKind) {
    use ErrorClass::{OutcomeUnknown, Permanent, Retryable};
    let code = code.unwrap_or("");
    // Some documents write `APIG.` for `APIGW.`.
    let code = code
        .strip_prefix("APIG.")
        .map_or(code.to_owned(), |rest| format!("APIGW.{rest}"));
    // HTTP 429 is throttling whatever code comes with it (the SDK's HTTP
    // layer retries exactly that status).
    if status == 429 {
        return (Retryable, ErrorKind::Throttled);
    }
    if message.trim() == "akSkNumExceed" {
        return (Permanent, ErrorKind::LimitExceeded);
    }
    match code.as_str() {
        "APIGW.0301" | "APIGW.0307" | "IAM.0001" | "DRS.M00100" | "DRS.M00103" => {
            return (Permanent, ErrorKind::Auth);
        }
        "APIGW.0302" | "IAM.0002" | "IAM.0003" | "DRS.M00101" | "DRS.M00102" | "DRS.M00105" => {
            return (Permanent, ErrorKind::PermissionDenied);
        }
        "APIGW.0308" => return (Retryable, ErrorKind::Throttled),
        "APIGW.0201" if status >= 500 => return (OutcomeUnknown, ErrorKind::ServerError),
        "APIGW.0201" => return (Permanent, ErrorKind::InvalidParameter),
        "APIGW.0101" | "DCS.4001" => return (Permanent, ErrorKind::Config),
        "DRS.M00004" => return (OutcomeUnknown, ErrorKind::ServerError),
        "DRS.M00007" | "DRS.M00200" | "DRS.M00201" | "DRS.M00202" | "DRS-M00201" | "DRS-M00202"
        | "DCS.4019" | "DCS.4845" => {
            return (Permanent, ErrorKind::InvalidParameter);
        }
        "DRS.M00304" | "DCS.4049" | "DCS.4850" => return (Permanent, ErrorKind::InvalidState),
        "DRS.M01504" | "DCS.4115" | "DCS.4026" => return (Retryable, ErrorKind::Busy),
        "DRS.M05003" | "DRS.M05004" | "DRS.10000010" | "DRS-K02000" | "DCS.3022" | "IAM.0004" => {
            return (Permanent, ErrorKind::NotFound);
        }
        // The appendix's generic "quota limit has been reached" (e.g. an
        // instance's 18 ACL accounts).
        "DCS.4039" => return (Permanent, ErrorKind::LimitExceeded),
        "DCS.4080" => {
            return (
                ErrorClass::Lockout {
                    retry_times_left: None,
                    lock_time_left_minutes: None,
                },
                ErrorKind::PasswordLockout,
            );
        }
        _ => {}
    }
    match status {
        500..=599 => (OutcomeUnknown, ErrorKind::ServerError),
        401 => (Permanent, ErrorKind::Auth),
        403 => (Permanent, ErrorKind::PermissionDenied),
        404 => (Permanent, ErrorKind::NotFound),
        409 => (Permanent, ErrorKind::InvalidState),
        400 | 422 => (Permanent, ErrorKind::InvalidParameter),
        _ => (Permanent, ErrorKind::Other),
    }
}

/// Reads one answer: its JSON body (`Null` for an empty 2xx body), or
/// the error. Service-level "200 but failed" checks live with each call.
pub fn parse_response(
    service: HuaweiService,
    action: &str,
    response: &IncomingResponse,
    secrets: &[String],
) -> Result<(Value, CallInfo), ProviderError> {
    send::read_answer::<Inner>(service.into(), action, response, secrets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::huaweicloud::sign::parse_authorization;
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
            HuaweiService::Dcs,
            "UpdatePassword",
            &response(status, body, &[("X-Request-Id", "hdr-id")]),
            &[],
        )
        .unwrap_err()
    }

    #[test]
    fn apig_gateway_error() {
        let error = error_of(
            401,
            r#"{"error_msg":"Incorrect IAM authentication information: verify aksk signature fail","error_code":"APIGW.0301","request_id":"body-id"}"#,
        );
        assert_eq!(error.code.as_deref(), Some("APIGW.0301"));
        assert_eq!(error.kind, ErrorKind::Auth);
        assert_eq!(error.class, ErrorClass::Permanent);
        assert_eq!(
            error.request_id.as_deref(),
            Some("hdr-id"),
            "the header wins"
        );
        assert!(error.message.contains("verify aksk signature fail"));
    }

    #[test]
    fn dcs_service_error() {
        let error = error_of(
            400,
            r#"{"error_msg":"Invalid password.","error_code":"DCS.4019","error_ext_msg":null}"#,
        );
        assert_eq!(error.code.as_deref(), Some("DCS.4019"));
        assert_eq!(error.kind, ErrorKind::InvalidParameter);
    }

    #[test]
    fn drs_service_error() {
        let error = error_of(
            400,
            r#"{"error_code":"DRS.M00007","error_msg":"Invalid request parameter."}"#,
        );
        assert_eq!(error.code.as_deref(), Some("DRS.M00007"));
        assert_eq!(error.kind, ErrorKind::InvalidParameter);
    }

    /// IAM's documented answer to a third key: the message is the reason,
    /// the nested `error_code`/`error_msg` are null. The SDK reports the
    /// HTTP status as the code; so does this client.
    #[test]
    fn iam_key_limit_answer() {
        let error = error_of(
            400,
            r#"{"error":{"message":"akSkNumExceed","code":400,"title":"Bad Request","error_msg":null,"error_code":null}}"#,
        );
        assert_eq!(error.code.as_deref(), Some("400"));
        assert_eq!(error.message, "akSkNumExceed");
        assert_eq!(error.kind, ErrorKind::LimitExceeded);
        assert_eq!(error.class, ErrorClass::Permanent);
        let error = error_of(
            404,
            r#"{"error_msg":"Could not find credential.","error_code":"IAM.0004"}"#,
        );
        assert!(error.is_not_found());
    }

    #[test]
    fn camel_case_and_deeper_nesting() {
        let error = error_of(
            403,
            r#"{"errorCode":"APIG.0302","errorMsg":"The IAM user is not authorized"}"#,
        );
        assert_eq!(error.kind, ErrorKind::PermissionDenied);
        let parsed = parse_error_json(
            &serde_json::json!({"outer":{"inner":{"error_code":"DCS.4001","error_msg":"no"}}}),
        );
        assert_eq!(parsed.code.as_deref(), Some("DCS.4001"));
    }

    #[test]
    fn throttling_is_retryable_and_backend_errors_outcome_unknown() {
        let error = error_of(
            429,
            r#"{"error_msg":"The throttling threshold has been reached: policy user over ratelimit,limit:60,time:1 minute","error_code":"APIGW.0308","request_id":"x"}"#,
        );
        assert!(error.is_throttled() && error.is_retryable());
        let error = error_of(
            502,
            r#"{"error_msg":"Backend unavailable","error_code":"APIGW.0201"}"#,
        );
        assert!(error.is_outcome_unknown(), "the backend may have acted");
        let error = error_of(
            400,
            r#"{"error_msg":"API request error","error_code":"APIGW.0201"}"#,
        );
        assert!(!error.is_retryable());
        let error = error_of(500, "Internal Server Error");
        assert!(error.is_outcome_unknown());
        assert_eq!(error.message, "Internal Server Error");
    }

    #[test]
    fn empty_success_body_is_null() {
        let (body, info) = parse_response(
            HuaweiService::Iam,
            "DeleteAccessKey",
            &response(204, "", &[("X-Request-Id", "r1")]),
            &[],
        )
        .unwrap();
        assert_eq!(body, Value::Null);
        assert_eq!(info.request_id.as_deref(), Some("r1"));
        assert_eq!(info.http_status, 204);
    }

    #[test]
    fn codes_and_request_ids_echoing_a_secret_are_redacted() {
        // Found by tests/fuzz_decoding.rs: code and request id were shown
        // as the answer gave them, unlike the message.
        let secrets = ["Pl4nted-Secret!".to_owned()];
        let answer = response(
            400,
            r#"{"error_code":"Pl4nted-Secret!","error_msg":"m"}"#,
            &[("X-Request-Id", "Pl4nted-Secret!")],
        );
        let error =
            parse_response(HuaweiService::Dcs, "UpdatePassword", &answer, &secrets).unwrap_err();
        assert!(!error.to_string().contains("Pl4nted"), "{error}");
        let answer = response(200, r#"{"request_id":"Pl4nted-Secret!"}"#, &[]);
        let (_, info) =
            parse_response(HuaweiService::Dcs, "UpdatePassword", &answer, &secrets).unwrap();
        assert_eq!(info.request_id.as_deref(), Some("[redacted]"));
    }

    #[test]
    fn classification_table() {
        use ErrorClass::*;
        let table: &[(u16, &str, ErrorClass, ErrorKind)] = &[
            // Every documented code is checked against docs/provider-errors.md
            // (tests/provider_errors_doc.rs); these are the structural cases.
            (401, "APIG.0301", Permanent, ErrorKind::Auth),
            (429, "APIG.0308", Retryable, ErrorKind::Throttled),
            (504, "APIGW.0201", OutcomeUnknown, ErrorKind::ServerError),
            (502, "APIG.0201", OutcomeUnknown, ErrorKind::ServerError),
            (413, "APIGW.0201", Permanent, ErrorKind::InvalidParameter),
            (500, "DCS.5000", OutcomeUnknown, ErrorKind::ServerError),
            (503, "", OutcomeUnknown, ErrorKind::ServerError),
            (401, "", Permanent, ErrorKind::Auth),
            (429, "", Retryable, ErrorKind::Throttled),
            (429, "DRS.M00007", Retryable, ErrorKind::Throttled),
            (429, "SomeService.0001", Retryable, ErrorKind::Throttled),
            (400, "1109", Permanent, ErrorKind::InvalidParameter),
            (404, "1110", Permanent, ErrorKind::NotFound),
        ];
        for (status, code, class, kind) in table {
            let code = (!code.is_empty()).then_some(*code);
            assert_eq!(
                classify(*status, code, ""),
                (*class, *kind),
                "{status} {code:?}"
            );
        }
    }

    /// The client's own builder reproduces the reference DRS vector C1 and
    /// C1s byte for byte.
    #[test]
    fn request_builder_reproduces_reference_vectors() {
        let base = Url::parse("https://drs.cn-north-4.myhuaweicloud.com").unwrap();
        let body = br#"{"jobs":[{"db_password":"N3w-P@ss!","end_point_type":"so","job_id":"140b5236-88ad-43c8-811c-1268453jb101"}]}"#;
        let path = "/v3/054ba152d480d55b2f5dc0069e7ddef0/jobs/batch-modify-pwd";
        let build = |credentials: &Credentials| {
            build_rest_request(&RestSigningInput {
                base: &base,
                method: &Method::PUT,
                path,
                query: &[],
                body: Some(body),
                credentials,
                project_id: Some("054ba152d480d55b2f5dc0069e7ddef0"),
                domain_id: None,
                sdk_date: "20240501T080000Z",
            })
        };
        let creds = Credentials::new(
            "QTWAOYTTINDUT2QVKYUC",
            "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
        );
        let request = build(&creds);
        let auth = |r: &OutgoingRequest| {
            r.headers
                .iter()
                .find(|(n, _)| n == "Authorization")
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(
            auth(&request),
            "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=23f4a9c3c42d92b039e697e3995d29958dc4d6f325f73f75835f6beed540ed5c"
        );
        assert_eq!(request.url.path(), path, "no trailing slash on the wire");
        assert_eq!(request.body, body.to_vec());
        let with_token = build(
            &creds
                .clone()
                .with_security_token("gQpjbi1ub3J0aC00-test-security-token"),
        );
        assert!(auth(&with_token).ends_with(
            "Signature=3ebe449cb1b72ba09131d93f8f5e51e11996873e24676f360c87d382b9e86110"
        ));
        let parsed = parse_authorization(&auth(&with_token)).unwrap();
        assert!(
            parsed
                .signed_headers
                .contains(&"x-security-token".to_owned())
        );
    }

    /// Regression (found by tests/providers_sign_differential.rs): the
    /// base URL's path was encoded a second time (`%20` went out as
    /// `%2520`), and dot segments the URL parser removes were still
    /// signed, so the gateway computed another signature.
    #[test]
    fn the_signed_path_is_the_path_sent() {
        let creds = Credentials::new("AK", "SK");
        let build = |base: &str, path: &str| {
            let base = Url::parse(base).unwrap();
            build_rest_request(&RestSigningInput {
                base: &base,
                method: &Method::GET,
                path,
                query: &[],
                body: None,
                credentials: &creds,
                project_id: None,
                domain_id: None,
                sdk_date: "20240501T080000Z",
            })
        };
        let signed_path = |request: &OutgoingRequest| {
            let headers: Vec<(String, String)> = request
                .headers
                .iter()
                .filter(|(n, _)| n != "Authorization")
                .cloned()
                .collect();
            let path = percent_decode(request.url.path());
            let expected = authorization(
                &SignRequest {
                    method: "GET",
                    path: &path,
                    query: &[],
                    signed_headers: &normalize_headers(&headers),
                    payload_sha256: EMPTY_PAYLOAD_SHA256,
                },
                "20240501T080000Z",
                "AK",
                "SK",
            );
            let sent = &request
                .headers
                .iter()
                .find(|(n, _)| n == "Authorization")
                .unwrap()
                .1;
            assert_eq!(sent, &expected, "signed {path:?}");
        };
        let escaped = build("https://gw.example/a%20b", "/v2/p/x y");
        assert_eq!(escaped.url.path(), "/a%20b/v2/p/x%20y");
        signed_path(&escaped);
        let dots = build("https://gw.example", "/v2/p/instances/../x/./y");
        assert_eq!(dots.url.path(), "/v2/p/x/y");
        signed_path(&dots);
    }

    #[test]
    fn iam_is_scoped_by_domain_when_known_else_by_project() {
        assert_eq!(
            scope_headers(HuaweiService::Iam, "p", Some("d")),
            (None, Some("d"))
        );
        assert_eq!(
            scope_headers(HuaweiService::Iam, "p", None),
            (Some("p"), None)
        );
        assert_eq!(
            scope_headers(HuaweiService::Dcs, "p", Some("d")),
            (Some("p"), None)
        );
    }

    #[test]
    fn identifiers_that_would_change_the_path_are_refused() {
        for bad in ["", ".", "..", "a/b", "/"] {
            assert!(!is_path_segment(bad), "{bad:?}");
            let error =
                path_segment(HuaweiService::Dcs, "ResetPassword", "instance_id", bad).unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidParameter);
        }
        for good in [
            "dcs-1",
            "...",
            "a b",
            "é",
            "3f7e1c7e-8d3a-4b6e-9d0f-8f1e2a3b4c5d",
        ] {
            assert_eq!(
                path_segment(HuaweiService::Dcs, "x", "id", good).unwrap(),
                good
            );
        }
        let config = HuaweiConfig {
            credentials: Credentials::new("AK", "SK"),
            options: ConnectionOptions::new("cn-north-4"),
            project_id: "..".into(),
            domain_id: None,
        };
        assert_eq!(
            HuaweiClient::new(config).unwrap_err().kind,
            ErrorKind::Config
        );
    }

    #[test]
    fn debug_output_carries_no_body_or_query_value() {
        let call = RestCall::new(
            HuaweiService::Dcs,
            "UpdatePassword",
            Method::PUT,
            "/v2/p/instances/i/password".into(),
            Idempotency::NonIdempotent,
        )
        .query("marker", "Secret-Query-1")
        .json(&serde_json::json!({"old_password": "Secret-Old-1", "new_password": "Secret-New-1"}))
        .secret("Secret-Old-1")
        .secret("Secret-New-1");
        let base = Url::parse("https://dcs.cn-north-4.myhuaweicloud.com").unwrap();
        let creds = Credentials::new("AK", "SK-Secret-1").with_security_token("Token-Secret-1");
        let input = RestSigningInput {
            base: &base,
            method: &call.request.method,
            path: &call.request.path,
            query: &call.request.query,
            body: call.request.body.as_deref(),
            credentials: &creds,
            project_id: Some("p"),
            domain_id: None,
            sdk_date: "20240501T080000Z",
        };
        let shown = format!("{call:?} {input:?} {:?}", build_rest_request(&input));
        for secret in [
            "Secret-Query-1",
            "Secret-Old-1",
            "Secret-New-1",
            "SK-Secret-1",
            "Token-Secret-1",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("marker") && shown.contains("/v2/p/instances/i/password"));
    }

    #[test]
    fn paths_and_queries_are_encoded_for_the_wire() {
        let base = Url::parse("http://127.0.0.1:9000/prefix/").unwrap();
        let query = vec![("user_id".to_owned(), "a b".to_owned())];
        let request = build_rest_request(&RestSigningInput {
            base: &base,
            method: &Method::GET,
            path: "/v3.0/OS-CREDENTIAL/credentials",
            query: &query,
            body: None,
            credentials: &Credentials::new("AK", "SK"),
            project_id: None,
            domain_id: Some("dom"),
            sdk_date: "20240501T080000Z",
        });
        assert_eq!(
            request.url.as_str(),
            "http://127.0.0.1:9000/prefix/v3.0/OS-CREDENTIAL/credentials?user_id=a%20b"
        );
        let names: Vec<&str> = request.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"X-Domain-Id") && names.contains(&"Content-Type"));
        let host = request.headers.iter().find(|(n, _)| n == "Host").unwrap();
        assert_eq!(host.1, "127.0.0.1:9000");
    }
}
