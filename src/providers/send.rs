//! The one signed-send loop both clouds use, as `object_store` shares one
//! `client/retry.rs` between its clouds: sign an attempt, wait for a pacing
//! token and send it ([`HttpClient::send`], which classifies transport
//! failures), read the answer, and retry with backoff as the error's class
//! and the call's idempotency allow ([`RetryPolicy::run`], which honours
//! `Retry-After`). Every error and request id is redacted here, against
//! every secret the request carries.
//!
//! A cloud supplies what differs through [`Cloud`]: how to sign one
//! attempt of a [`Call`] and how to read the answers.
//!
//! [`RetryPolicy::run`]: super::RetryPolicy::run

use std::borrow::Cow;
use std::time::Duration;

use serde_json::Value;

use super::error::{ErrorClass, ErrorKind, ProviderError, redact};
use super::http::{HttpClient, IncomingResponse, OutgoingRequest};
use super::{CallInfo, Credentials, Idempotency, Service};

/// One cloud's side of the loop, implemented by its client: how to sign an
/// attempt of a call and how to read the answers.
pub trait Cloud {
    type Service: Copy + Into<Service>;
    /// What a call's request is built from in this cloud.
    type Request;

    /// Builds and signs one attempt. Called again for every retry: the
    /// signature covers the time (and Alibaba's nonce), which must be fresh.
    fn sign(&self, call: &Call<Self::Service, Self::Request>) -> OutgoingRequest;

    /// Reads a 2xx answer: its body and request id, or the failure the
    /// body reports all the same.
    fn read_success(answer: Answer<'_>) -> Result<Accepted, Refusal>;

    /// Reads and classifies an answer that reports a failure.
    fn read_failure(answer: &Answer<'_>) -> Refusal;
}

/// One call: what the loop needs to know of it whatever the cloud, and the
/// cloud's own request (`R`).
#[derive(Clone)]
pub struct Call<S, R> {
    pub service: S,
    pub action: &'static str,
    pub idempotency: Idempotency,
    /// Secret values the request carries (new passwords), for redaction.
    pub secrets: Vec<String>,
    pub request: R,
}

impl<S, R> Call<S, R> {
    /// Marks `value`, sent somewhere in the request, as a secret.
    pub fn secret(mut self, value: &str) -> Self {
        self.secrets.push(value.to_owned());
        self
    }
}

/// An answer as both clouds start reading it.
pub struct Answer<'a> {
    pub response: &'a IncomingResponse,
    pub text: Cow<'a, str>,
    /// The body, when it is JSON.
    pub json: Option<Value>,
}

impl<'a> Answer<'a> {
    fn new(response: &'a IncomingResponse) -> Self {
        let text = String::from_utf8_lossy(&response.body);
        let json = serde_json::from_str(&text).ok();
        Answer {
            response,
            text,
            json,
        }
    }
}

/// A 2xx answer the cloud reports as done.
#[derive(Debug)]
pub struct Accepted {
    pub body: Value,
    pub request_id: Option<String>,
}

/// An answer that reports a failure, classified; redacted when it becomes
/// a [`ProviderError`].
#[derive(Debug)]
pub struct Refusal {
    pub class: ErrorClass,
    pub kind: ErrorKind,
    pub code: Option<String>,
    pub message: String,
    pub request_id: Option<String>,
    pub retry_after: Option<Duration>,
}

/// The error fields of an answer, whatever its shape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: Option<String>,
    pub message: Option<String>,
    pub request_id: Option<String>,
}

impl ErrorBody {
    /// The fields of an answer that is not JSON: the start of its text is
    /// the message (a gateway's page says what went wrong).
    pub fn from_text(text: &str) -> Self {
        ErrorBody {
            message: Some(text.trim().chars().take(300).collect()),
            ..ErrorBody::default()
        }
    }
}

/// A JSON field as text: a non-empty string, or a number.
pub fn json_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Sends `call` until it succeeds, fails in a way that must not be
/// retried, or `http`'s retry budget is spent; the error returned carries
/// the number of attempts made.
pub async fn send<C: Cloud>(
    http: &HttpClient,
    credentials: &Credentials,
    cloud: &C,
    call: &Call<C::Service, C::Request>,
) -> Result<(Value, CallInfo), ProviderError> {
    let service = call.service.into();
    let action = call.action;
    let secrets = &[credentials.secrets(), call.secrets.clone()].concat();
    http.retry_policy()
        .run(call.idempotency, |attempt| async move {
            let response = http
                .send(cloud.sign(call))
                .await
                .map_err(|failure| failure.into_error(service, action, secrets))?;
            let (body, mut info) = read_answer::<C>(service, action, &response, secrets)?;
            info.attempts = attempt;
            Ok((body, info))
        })
        .await
}

/// Reads one answer as `C`'s cloud writes them: the body of a success,
/// else the error. Request id, code and message are redacted against
/// `secrets`: an answer may echo anything it was sent.
pub fn read_answer<C: Cloud>(
    service: Service,
    action: &str,
    response: &IncomingResponse,
    secrets: &[String],
) -> Result<(Value, CallInfo), ProviderError> {
    let answer = Answer::new(response);
    let read = if response.is_success() {
        C::read_success(answer)
    } else {
        Err(C::read_failure(&answer))
    };
    match read {
        Ok(accepted) => Ok((
            accepted.body,
            CallInfo {
                request_id: accepted.request_id.map(|id| redact(&id, secrets)),
                http_status: response.status,
                attempts: 1,
            },
        )),
        Err(refusal) => Err(ProviderError::new(
            refusal.class,
            refusal.kind,
            service,
            action,
            &refusal.message,
            secrets,
        )
        .with_status(response.status)
        .with_code(refusal.code)
        .with_request_id(refusal.request_id)
        .with_retry_after(refusal.retry_after)
        .redacted(secrets)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use reqwest::{Method, Url};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::providers::retry::Jitter;
    use crate::providers::{ConnectionOptions, RetryPolicy};

    const SECRET_KEY: &str = "Secret-Key-1";
    const NEW_PASSWORD: &str = "New-Password-1";

    /// A cloud whose 503s are retryable and every other failure permanent,
    /// counting how often it signed.
    struct Counted {
        url: Url,
        signed: AtomicU32,
    }

    impl Cloud for Counted {
        type Service = Service;
        type Request = ();

        fn sign(&self, _: &Call<Service, ()>) -> OutgoingRequest {
            self.signed.fetch_add(1, Ordering::SeqCst);
            OutgoingRequest {
                method: Method::POST,
                url: self.url.clone(),
                headers: Vec::new(),
                body: Vec::new(),
            }
        }

        fn read_success(answer: Answer<'_>) -> Result<Accepted, Refusal> {
            Ok(Accepted {
                body: answer.json.unwrap_or_default(),
                request_id: answer.response.header("x-request-id").map(str::to_owned),
            })
        }

        fn read_failure(answer: &Answer<'_>) -> Refusal {
            let class = match answer.response.status {
                503 => ErrorClass::Retryable,
                _ => ErrorClass::Permanent,
            };
            Refusal {
                class,
                kind: ErrorKind::ServerError,
                code: Some(format!("Code-{SECRET_KEY}")),
                message: answer.text.to_string(),
                request_id: None,
                retry_after: answer.response.retry_after(),
            }
        }
    }

    /// A server on loopback giving `answers` (status, extra header, body)
    /// to one connection each, in order.
    async fn serve(answers: Vec<(u16, &'static str, &'static str)>) -> Url {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            for (status, header, body) in answers {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let answer = format!(
                    "HTTP/1.1 {status} X\r\n{header}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(answer.as_bytes()).await.unwrap();
                let _ = socket.shutdown().await;
            }
        });
        url
    }

    async fn run(
        answers: Vec<(u16, &'static str, &'static str)>,
    ) -> (Result<(Value, CallInfo), ProviderError>, u32) {
        let cloud = Counted {
            url: serve(answers).await,
            signed: AtomicU32::new(0),
        };
        let mut http = HttpClient::new(&ConnectionOptions::new("x")).unwrap();
        http.set_retry_policy(RetryPolicy {
            base_delay: Duration::from_millis(1),
            jitter: Jitter::seeded(1),
            ..RetryPolicy::default()
        });
        let credentials = Credentials::new("AK", SECRET_KEY);
        let call = Call {
            service: Service::Dcs,
            action: "ResetPassword",
            idempotency: Idempotency::NonIdempotent,
            secrets: Vec::new(),
            request: (),
        }
        .secret(NEW_PASSWORD);
        let result = send(&http, &credentials, &cloud, &call).await;
        (result, cloud.signed.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn every_attempt_is_signed_afresh_and_request_ids_are_redacted() {
        let (result, signed) = run(vec![
            (503, "", "busy"),
            (200, "x-request-id: id-New-Password-1\r\n", r#"{"ok":true}"#),
        ])
        .await;
        let (body, info) = result.unwrap();
        assert_eq!(signed, 2);
        assert_eq!(info.attempts, 2);
        assert_eq!(info.http_status, 200);
        assert_eq!(info.request_id.as_deref(), Some("id-[redacted]"));
        assert_eq!(body["ok"], Value::Bool(true));
    }

    #[tokio::test]
    async fn failures_are_redacted_and_permanent_ones_not_retried() {
        let (result, signed) = run(vec![(
            400,
            "retry-after: 2\r\n",
            "echo Secret-Key-1 and New-Password-1",
        )])
        .await;
        let error = result.unwrap_err();
        assert_eq!(signed, 1);
        assert_eq!(error.attempts, 1);
        assert_eq!(
            (error.class, error.kind, error.http_status),
            (ErrorClass::Permanent, ErrorKind::ServerError, Some(400))
        );
        assert_eq!(error.message, "echo [redacted] and [redacted]");
        assert_eq!(error.code.as_deref(), Some("Code-[redacted]"));
        assert_eq!(error.retry_after, Some(Duration::from_secs(2)));
        assert_eq!(
            (error.service, error.action.as_str()),
            (Service::Dcs, "ResetPassword")
        );
    }
}
