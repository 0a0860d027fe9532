//! The one error every provider call returns. Its [`ErrorClass`] drives
//! every decision (retry, surface as unknown, give up, stop before a
//! lockout); its [`ErrorKind`] names the cases the engine reacts to.
//!
//! Messages are redacted when the error is built: the Alibaba V2
//! "server string to sign is:" echo, URL queries, known secret-bearing
//! parameters and every secret value the request carried never reach
//! `Display`.

use std::fmt;
use std::time::Duration;

use super::Service;
use super::encoding::percent_encode;

/// What the caller may do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Nothing was applied (throttling, busy, connection failed before the
    /// request was sent): sending again is safe.
    Retryable,
    /// The request may or may not have been applied (timeout, connection
    /// lost after sending, a 5xx or gateway error that may come after the
    /// backend acted): check before acting again.
    OutcomeUnknown,
    /// Retrying cannot help (auth, signature, permission, validation, not
    /// found, state).
    Permanent,
    /// Huawei DCS: the old password was wrong or the instance is locked.
    /// Another wrong try brings the lock closer; counts as sent by DCS.
    Lockout {
        retry_times_left: Option<u32>,
        lock_time_left_minutes: Option<u32>,
    },
}

impl ErrorClass {
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorClass::Retryable)
    }
}

impl ErrorClass {
    /// The class's name, without a lockout's counts (the form of
    /// `docs/provider-errors.md`).
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Retryable => "retryable",
            ErrorClass::OutcomeUnknown => "outcome unknown",
            ErrorClass::Permanent => "permanent",
            ErrorClass::Lockout { .. } => "lockout",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorClass::Retryable | ErrorClass::OutcomeUnknown | ErrorClass::Permanent => {
                f.write_str(self.name())
            }
            ErrorClass::Lockout {
                retry_times_left,
                lock_time_left_minutes,
            } => {
                f.write_str("lockout risk")?;
                if let Some(left) = retry_times_left {
                    write!(f, ", {left} tries left")?;
                }
                if let Some(minutes) = lock_time_left_minutes {
                    write!(f, ", locked for {minutes} more minutes")?;
                }
                Ok(())
            }
        }
    }
}

/// Recognisable cases, independent of the cloud's own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// DTS refused the `Password` parameter (an `InvalidParameter` answer
    /// about it). DTS documents one reason a password that meets the rules
    /// is refused: it equals the current one. For a password the engine
    /// checked against the rules, this means an earlier change was applied.
    PasswordRefused,
    /// The resource (cluster, account, job, instance, key, user) does not exist.
    NotFound,
    /// Provider flow control.
    Throttled,
    /// Bad or unknown key, signature, expired token, skewed clock. Never
    /// retried: Huawei locks an AK/SK after 5 failures.
    Auth,
    /// Authenticated but not allowed.
    PermissionDenied,
    /// A parameter the provider refuses (password policy, malformed id).
    InvalidParameter,
    /// The resource is in a state that refuses the operation.
    InvalidState,
    /// A quota is full (e.g. two access keys already).
    LimitExceeded,
    /// Another operation on the resource is in progress (DRS `DRS.M01504`,
    /// DCS `DCS.4115`): try again later.
    Busy,
    /// DCS: wrong old password or locked instance.
    PasswordLockout,
    /// The provider failed (5xx, internal error, a transient lock).
    ServerError,
    /// Could not connect (refused, DNS); nothing was sent.
    Connect,
    /// TLS failed (untrusted certificate, handshake); nothing was sent.
    Tls,
    /// No answer in time.
    Timeout,
    /// The connection broke after the request went out.
    ConnectionLost,
    /// The answer could not be understood.
    InvalidResponse,
    /// Our own configuration is wrong (bad base URL, bad root certificate).
    Config,
    /// Anything else.
    Other,
}

/// The error of every provider call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    pub class: ErrorClass,
    pub kind: ErrorKind,
    pub service: Service,
    pub action: String,
    pub http_status: Option<u16>,
    /// The provider's error code (`Throttling.User`, `APIGW.0301`, ...).
    pub code: Option<String>,
    /// Redacted at construction.
    pub message: String,
    pub request_id: Option<String>,
    /// Server-requested wait before the next try (`x-acs-retry-after`,
    /// `Retry-After`).
    pub retry_after: Option<Duration>,
    /// Attempts made before this error was returned.
    pub attempts: u32,
}

impl ProviderError {
    /// Builds an error whose message is redacted against `secrets`.
    pub fn new(
        class: ErrorClass,
        kind: ErrorKind,
        service: Service,
        action: impl Into<String>,
        message: &str,
        secrets: &[String],
    ) -> Self {
        ProviderError {
            class,
            kind,
            service,
            action: action.into(),
            http_status: None,
            code: None,
            message: redact(message, secrets),
            request_id: None,
            retry_after: None,
            attempts: 0,
        }
    }

    pub fn config(service: Service, action: impl Into<String>, message: &str) -> Self {
        ProviderError::new(
            ErrorClass::Permanent,
            ErrorKind::Config,
            service,
            action,
            message,
            &[],
        )
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    pub fn with_code(mut self, code: Option<String>) -> Self {
        self.code = code;
        self
    }

    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }

    /// Redacts what the provider filled in besides the message (its code
    /// and request id) against `secrets`, as `new` does for the message: an
    /// answer may echo anything it was sent.
    pub fn redacted(mut self, secrets: &[String]) -> Self {
        self.code = self.code.map(|code| redact(&code, secrets));
        self.request_id = self.request_id.map(|id| redact(&id, secrets));
        self
    }

    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    pub fn is_retryable(&self) -> bool {
        self.class.is_retryable()
    }

    pub fn is_outcome_unknown(&self) -> bool {
        self.class == ErrorClass::OutcomeUnknown
    }

    pub fn is_password_refused(&self) -> bool {
        self.kind == ErrorKind::PasswordRefused
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    pub fn is_throttled(&self) -> bool {
        self.kind == ErrorKind::Throttled
    }

    pub fn is_auth(&self) -> bool {
        matches!(self.kind, ErrorKind::Auth | ErrorKind::PermissionDenied)
    }

    pub fn is_lockout(&self) -> bool {
        matches!(self.class, ErrorClass::Lockout { .. })
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} failed", self.service, self.action)?;
        if let Some(code) = &self.code {
            write!(f, ": {code}")?;
        }
        if let Some(status) = self.http_status {
            write!(f, " (HTTP {status})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        write!(f, " [{}", self.class)?;
        if self.attempts > 1 {
            write!(f, ", after {} attempts", self.attempts)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, ", request id {id}")?;
        }
        f.write_str("]")
    }
}

impl std::error::Error for ProviderError {}

const REDACTED: &str = "[redacted]";
const MAX_MESSAGE_CHARS: usize = 600;
/// Parameter names whose values are secrets wherever they appear as
/// `name=value` (query strings echoed in messages).
const SECRET_PARAMS: [&str; 8] = [
    "password",
    "newaccountpassword",
    "accountpassword",
    "accesskeysecret",
    "securitytoken",
    "signature",
    "db_password",
    "secret",
];

/// Removes everything that may carry a secret from a provider or transport
/// message: the V2 string-to-sign echo, URL queries, `name=value` pairs of
/// secret-bearing parameters and every known secret value (raw,
/// percent-encoded once and twice). Long messages are cut.
pub fn redact(message: &str, secrets: &[String]) -> String {
    let mut out = cut_string_to_sign_echo(message);
    out = redact_url_queries(&out);
    out = redact_secret_params(&out);
    for secret in secrets {
        out = redact_value(&out, secret);
    }
    if out.chars().count() > MAX_MESSAGE_CHARS {
        out = out.chars().take(MAX_MESSAGE_CHARS).collect::<String>() + "...";
    }
    out
}

/// Alibaba V2 signature errors end in `server string to sign is:<sts>`,
/// which holds the percent-encoded parameters, the new password included.
fn cut_string_to_sign_echo(message: &str) -> String {
    const MARKER: &str = "string to sign is:";
    match message.to_ascii_lowercase().find(MARKER) {
        Some(at) => format!("{} {REDACTED}", &message[..at + MARKER.len()]),
        None => message.to_owned(),
    }
}

/// `scheme://host/path?query` -> `scheme://host/path?[redacted]`.
pub fn redact_url_queries(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_url(rest) {
        out.push_str(&rest[..start]);
        let url_and_after = &rest[start..];
        let end = url_and_after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')'))
            .unwrap_or(url_and_after.len());
        let url = &url_and_after[..end];
        match url.find('?') {
            Some(q) => {
                out.push_str(&url[..=q]);
                out.push_str(REDACTED);
            }
            None => out.push_str(url),
        }
        rest = &url_and_after[end..];
    }
    out.push_str(rest);
    out
}

fn find_url(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    [lower.find("https://"), lower.find("http://")]
        .into_iter()
        .flatten()
        .min()
}

fn redact_secret_params(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for name in SECRET_PARAMS {
        let mut from = 0;
        while let Some(found) = lower[from..].find(name) {
            let name_start = from + found;
            let name_end = name_start + name.len();
            from = name_end;
            let preceded_by_word = lower[..name_start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            if preceded_by_word && name != "password" && name != "secret" {
                continue;
            }
            let value_start = match lower[name_end..].chars().next() {
                Some('=') => name_end + 1,
                _ => continue,
            };
            let value_end = lower[value_start..]
                .find(|c: char| c == '&' || c == '"' || c.is_whitespace())
                .map_or(lower.len(), |i| value_start + i);
            if value_end > value_start {
                spans.push((value_start, value_end));
            }
        }
    }
    if spans.is_empty() {
        return text.to_owned();
    }
    spans.sort();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in spans {
        if start < at {
            continue;
        }
        out.push_str(&text[at..start]);
        out.push_str(REDACTED);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

fn redact_value(text: &str, secret: &str) -> String {
    // Very short values would redact ordinary words; no real secret is
    // this short (passwords are 8+ characters).
    if secret.chars().count() < 4 {
        return text.to_owned();
    }
    let once = percent_encode(secret);
    let twice = percent_encode(&once);
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json_inner = json.trim_matches('"').to_owned();
    let mut out = text.to_owned();
    for form in [secret, once.as_str(), twice.as_str(), json_inner.as_str()] {
        if !form.is_empty() && out.contains(form) {
            out = out.replace(form, REDACTED);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_string_to_sign_echo_is_cut() {
        let message = "Specified signature is not matched with our calculation. server string to sign is:POST&%2F&AccessKeyId%3Dtestid%26Password%3DN3w%2520P%2540ss";
        let redacted = redact(message, &[]);
        assert_eq!(
            redacted,
            "Specified signature is not matched with our calculation. server string to sign is: [redacted]"
        );
        let other = "The request signature does not conform to Aliyun standards. server string to sign is:GET&%2F&x";
        assert!(!redact(other, &[]).contains("GET&"));
    }

    #[test]
    fn url_queries_are_cut() {
        let message = "error sending request for url (https://dts.aliyuncs.com/?Action=ModifyDtsJobPassword&Password=hunter2hunter) after 3s";
        let redacted = redact(message, &[]);
        assert_eq!(
            redacted,
            "error sending request for url (https://dts.aliyuncs.com/?[redacted]) after 3s"
        );
        assert_eq!(
            redact("see http://x.example/a/b for help", &[]),
            "see http://x.example/a/b for help"
        );
    }

    #[test]
    fn secret_parameters_and_values_are_removed() {
        let message = "bad NewAccountPassword=Pw%21abc&DBClusterId=pc-1 and db_password=x1y2z3";
        let redacted = redact(message, &[]);
        assert!(!redacted.contains("Pw%21abc"), "{redacted}");
        assert!(!redacted.contains("x1y2z3"), "{redacted}");
        assert!(redacted.contains("DBClusterId=pc-1"));

        let secret = "N3w P@ss*~/+=&!".to_owned();
        for form in [
            secret.clone(),
            percent_encode(&secret),
            percent_encode(&percent_encode(&secret)),
        ] {
            let text = format!("the value {form} is wrong");
            let redacted = redact(&text, std::slice::from_ref(&secret));
            assert_eq!(redacted, "the value [redacted] is wrong");
        }
        let json = r#"{"db_password":"quote\"d-secret"}"#;
        assert!(!redact(json, &["quote\"d-secret".to_owned()]).contains("d-secret"));
    }

    #[test]
    fn display_shows_context_not_secrets() {
        let error = ProviderError::new(
            ErrorClass::Permanent,
            ErrorKind::Auth,
            Service::Dts,
            "ModifyDtsJobPassword",
            "Specified signature is not matched with our calculation. server string to sign is:POST&%2F&Password%3DTopSecret1",
            &["TopSecret1".to_owned()],
        )
        .with_status(400)
        .with_code(Some("SignatureDoesNotMatch".into()))
        .with_request_id(Some("REQ-1".into()));
        let shown = error.to_string();
        assert_eq!(
            shown,
            "dts ModifyDtsJobPassword failed: SignatureDoesNotMatch (HTTP 400): Specified signature is not matched with our calculation. server string to sign is: [redacted] [permanent, request id REQ-1]"
        );
        assert!(error.is_auth());
        assert!(!error.is_retryable());
    }

    #[test]
    fn lockout_class_shows_counts() {
        let class = ErrorClass::Lockout {
            retry_times_left: Some(3),
            lock_time_left_minutes: None,
        };
        assert_eq!(class.to_string(), "lockout risk, 3 tries left");
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "x".repeat(5000);
        assert!(redact(&long, &[]).chars().count() <= MAX_MESSAGE_CHARS + 3);
    }
}
