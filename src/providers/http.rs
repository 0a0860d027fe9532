//! The HTTP layer both clouds share: one pooled `reqwest` client per
//! connection (rustls, certificate verification on, connect and request
//! timeouts, no redirects), paced by the connection's token bucket, and the
//! classification of transport failures:
//!
//! * nothing was sent (refused, DNS, TLS, connect timeout) -> `Retryable`
//!   (an untrusted certificate is `Permanent`: trying again cannot help);
//! * the request went out and no complete answer came back (timeout,
//!   connection lost) -> `OutcomeUnknown`.
//!
//! Transport messages never carry the URL: its query may hold a password.

use std::error::Error as _;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};

use super::error::{ErrorClass, ErrorKind, ProviderError};
use super::pacing::Pacer;
use super::{ConnectionOptions, RetryPolicy, Service};

pub const USER_AGENT: &str = concat!(
    "vault-plugin-secrets-cloudrotate/",
    env!("CARGO_PKG_VERSION")
);

/// A fully built, signed request. `Debug` shows no query, no header value
/// and no body: they carry passwords, signatures and tokens.
#[derive(Clone)]
pub struct OutgoingRequest {
    pub method: Method,
    pub url: Url,
    /// Headers in the order they were built; `host` is left to the HTTP
    /// stack, which derives the same value from the URL.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A complete answer (status, headers, body). `Debug` leaves the body out
/// (a created access key's secret comes in it).
#[derive(Clone)]
pub struct IncomingResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// The names of parameters or headers, for `Debug` output without values.
pub(crate) fn names(pairs: &[(String, String)]) -> Vec<&str> {
    pairs.iter().map(|(name, _)| name.as_str()).collect()
}

/// `scheme://host[:port]/path`, plus `?[redacted]` when there is a query.
pub(crate) fn url_without_query(url: &Url) -> String {
    let mut shown = format!("{}://{}{}", url.scheme(), host_header(url), url.path());
    if url.query().is_some() {
        shown.push_str("?[redacted]");
    }
    shown
}

impl fmt::Debug for OutgoingRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingRequest")
            .field("method", &self.method)
            .field("url", &url_without_query(&self.url))
            .field("headers", &names(&self.headers))
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl fmt::Debug for IncomingResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl IncomingResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// What the server asked us to wait: `x-acs-retry-after` (milliseconds,
    /// Alibaba) or `Retry-After` (seconds).
    pub fn retry_after(&self) -> Option<Duration> {
        if let Some(ms) = self
            .header("x-acs-retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|ms| *ms > 0)
        {
            return Some(Duration::from_millis(ms));
        }
        self.header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
    }
}

/// A transport failure, already classified and free of URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportFailure {
    pub class: ErrorClass,
    pub kind: ErrorKind,
    pub message: String,
}

impl TransportFailure {
    /// The provider error for this failure, redacted against `secrets`.
    pub fn into_error(self, service: Service, action: &str, secrets: &[String]) -> ProviderError {
        ProviderError::new(
            self.class,
            self.kind,
            service,
            action,
            &self.message,
            secrets,
        )
    }
}

/// One connection's HTTP machinery. Clones share the connection pool and
/// the token bucket.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    pacer: Arc<Pacer>,
    retry: RetryPolicy,
}

impl HttpClient {
    pub fn new(options: &ConnectionOptions) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            // Proxies come from HTTPS_PROXY / HTTP_PROXY / ALL_PROXY and
            // NO_PROXY (either case), read once here (corporate networks).
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(pem) = &options.extra_root_certificates_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| format!("extra_root_certificates_pem is not valid PEM: {e}"))?;
            if certs.is_empty() {
                return Err("extra_root_certificates_pem holds no certificate".into());
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build the HTTPS client: {}", chain(&e)))?;
        Ok(HttpClient {
            client,
            pacer: Arc::new(Pacer::new(options.requests_per_second, options.burst)),
            retry: options.retry_policy(),
        })
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    pub fn set_retry_policy(&mut self, retry: RetryPolicy) {
        self.retry = retry;
    }

    /// Waits for a pacing token, sends, and reads the whole answer.
    pub async fn send(
        &self,
        request: OutgoingRequest,
    ) -> Result<IncomingResponse, TransportFailure> {
        let mut headers = HeaderMap::with_capacity(request.headers.len());
        for (name, value) in &request.headers {
            if name.eq_ignore_ascii_case("host") {
                continue;
            }
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| config_failure("invalid header name"))?;
            let value =
                HeaderValue::from_str(value).map_err(|_| config_failure("invalid header value"))?;
            headers.append(name, value);
        }
        self.pacer.acquire().await;
        let response = self
            .client
            .request(request.method, request.url)
            .headers(headers)
            .body(request.body)
            .send()
            .await
            .map_err(|e| classify_reqwest_error(&e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| classify_reqwest_error(&e))?;
        Ok(IncomingResponse {
            status,
            headers,
            body: body.to_vec(),
        })
    }
}

fn config_failure(message: &str) -> TransportFailure {
    TransportFailure {
        class: ErrorClass::Permanent,
        kind: ErrorKind::Config,
        message: message.to_owned(),
    }
}

/// The error and its sources joined with ": ", without the URL.
fn chain(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = error.source();
    while let Some(err) = current {
        let text = err.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        current = err.source();
    }
    parts.join(": ")
}

/// The rustls error behind a transport failure, if any. It hides deep:
/// hyper-rustls wraps the `io::Error` tokio-rustls made of it in another
/// `io::Error`, and `io::Error::source` skips the wrapped error itself, so
/// every `io::Error` is opened with `get_ref` as well as `source`.
fn find_tls_error(error: &reqwest::Error) -> Option<&rustls::Error> {
    let mut pending: Vec<&(dyn std::error::Error + 'static)> = vec![error];
    while let Some(err) = pending.pop() {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            pending.push(inner);
        }
        if let Some(source) = err.source() {
            pending.push(source);
        }
    }
    None
}

pub fn classify_reqwest_error(error: &reqwest::Error) -> TransportFailure {
    let detail = chain(error);
    let (class, kind, what) = if let Some(tls) = find_tls_error(error) {
        let permanent = matches!(
            tls,
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
        );
        let class = if permanent {
            ErrorClass::Permanent
        } else {
            ErrorClass::Retryable
        };
        return TransportFailure {
            class,
            kind: ErrorKind::Tls,
            message: format!("TLS handshake failed, nothing was sent: {tls}"),
        };
    } else if error.is_connect() {
        (
            ErrorClass::Retryable,
            ErrorKind::Connect,
            "could not connect, nothing was sent",
        )
    } else if error.is_timeout() {
        (
            ErrorClass::OutcomeUnknown,
            ErrorKind::Timeout,
            "no answer in time after the request was sent",
        )
    } else if error.is_builder() {
        (ErrorClass::Permanent, ErrorKind::Config, "invalid request")
    } else if error.is_redirect() {
        (
            ErrorClass::Permanent,
            ErrorKind::InvalidResponse,
            "unexpected redirect",
        )
    } else {
        (
            ErrorClass::OutcomeUnknown,
            ErrorKind::ConnectionLost,
            "connection lost after the request was sent",
        )
    };
    TransportFailure {
        class,
        kind,
        message: if detail.is_empty() {
            what.to_owned()
        } else {
            format!("{what}: {detail}")
        },
    }
}

/// Checks extra trusted roots the way [`HttpClient::new`] uses them, so a
/// connection can refuse a certificate no client could be built with.
pub fn check_root_certificates(pem: &str) -> Result<(), String> {
    let mut options = ConnectionOptions::new("");
    options.extra_root_certificates_pem = Some(pem.to_owned());
    HttpClient::new(&options).map(|_| ())
}

/// Parses a configured base URL: `http://` only when written; a bare host
/// means `https://`. No query, fragment or user info.
pub fn parse_base_url(base: &str) -> Result<Url, String> {
    let base = base.trim();
    let with_scheme = if base.contains("://") {
        base.to_owned()
    } else {
        format!("https://{base}")
    };
    let url = Url::parse(&with_scheme).map_err(|e| format!("invalid base URL {base:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "base URL {base:?}: only http and https are supported"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("base URL {base:?} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "base URL {base:?} must not have a query or fragment"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a base URL must not carry credentials".into());
    }
    Ok(url)
}

/// `host[:port]` as the HTTP stack sends it in the `Host` header (the port
/// only when it is not the scheme's default).
pub fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// The base URL's path without its trailing `/` (empty for the root).
pub fn base_path(url: &Url) -> &str {
    url.path().trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_default_to_https() {
        let url = parse_base_url("polardb.aliyuncs.com").unwrap();
        assert_eq!(url.as_str(), "https://polardb.aliyuncs.com/");
        assert_eq!(host_header(&url), "polardb.aliyuncs.com");
        let url = parse_base_url("http://127.0.0.1:8443/gw/").unwrap();
        assert_eq!(url.scheme(), "http");
        assert_eq!(host_header(&url), "127.0.0.1:8443");
        assert_eq!(base_path(&url), "/gw");
        assert_eq!(
            host_header(&parse_base_url("https://x.example:443").unwrap()),
            "x.example"
        );
        assert!(parse_base_url("ftp://x").is_err());
        assert!(parse_base_url("https://x/?a=1").is_err());
        assert!(parse_base_url("https://u:p@x/").is_err());
    }

    fn response(headers: &[(&str, &str)]) -> IncomingResponse {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        IncomingResponse {
            status: 400,
            headers: map,
            body: Vec::new(),
        }
    }

    #[test]
    fn retry_after_headers() {
        assert_eq!(
            response(&[("x-acs-retry-after", "1500")]).retry_after(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            response(&[("Retry-After", "3")]).retry_after(),
            Some(Duration::from_secs(3))
        );
        assert_eq!(response(&[("x-acs-retry-after", "0")]).retry_after(), None);
        assert_eq!(
            response(&[("x-acs-retry-after", "soon")]).retry_after(),
            None
        );
        assert_eq!(response(&[]).retry_after(), None);
    }

    #[tokio::test]
    async fn refused_connection_is_retryable_and_names_no_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = HttpClient::new(&ConnectionOptions::new("x")).unwrap();
        let url = Url::parse(&format!("http://127.0.0.1:{port}/?Password=Secret-123")).unwrap();
        let failure = client
            .send(OutgoingRequest {
                method: Method::POST,
                url,
                headers: vec![],
                body: vec![],
            })
            .await
            .unwrap_err();
        assert_eq!(failure.class, ErrorClass::Retryable);
        assert_eq!(failure.kind, ErrorKind::Connect);
        assert!(
            !failure.message.contains("Secret-123"),
            "{}",
            failure.message
        );
        assert!(
            !failure.message.contains("127.0.0.1"),
            "{}",
            failure.message
        );
    }

    #[tokio::test]
    async fn timeout_after_sending_is_outcome_unknown() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (read_tx, read_rx) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = socket.read(&mut buf).await.unwrap();
            read_tx.send(n).unwrap();
            // Hold the connection open without answering until the client gives up.
            let _ = socket.read(&mut buf).await;
        });
        let mut options = ConnectionOptions::new("x");
        options.request_timeout = Duration::from_millis(300);
        let client = HttpClient::new(&options).unwrap();
        let failure = client
            .send(OutgoingRequest {
                method: Method::PUT,
                url: Url::parse(&format!("http://127.0.0.1:{port}/x")).unwrap(),
                headers: vec![],
                body: b"{}".to_vec(),
            })
            .await
            .unwrap_err();
        assert!(
            read_rx.await.unwrap() > 0,
            "the server received the request"
        );
        assert_eq!(failure.class, ErrorClass::OutcomeUnknown);
        assert_eq!(failure.kind, ErrorKind::Timeout);
        server.abort();
    }

    #[tokio::test]
    async fn connection_closed_after_sending_is_outcome_unknown() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await.unwrap();
            drop(socket);
        });
        let client = HttpClient::new(&ConnectionOptions::new("x")).unwrap();
        let failure = client
            .send(OutgoingRequest {
                method: Method::POST,
                url: Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap(),
                headers: vec![],
                body: vec![],
            })
            .await
            .unwrap_err();
        server.await.unwrap();
        assert_eq!(failure.class, ErrorClass::OutcomeUnknown);
        assert_eq!(failure.kind, ErrorKind::ConnectionLost);
    }

    /// A TLS server on loopback with a fresh self-signed certificate for
    /// `localhost`, answering every request with `200 {}`. Returns the
    /// port and the certificate's PEM.
    async fn tls_server() -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let pem = certified.cert.pem();
        let key = rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der())
            .unwrap();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let mut buf = [0u8; 4096];
                    let _ = tls.read(&mut buf).await;
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        (port, pem)
    }

    fn get(port: u16) -> OutgoingRequest {
        OutgoingRequest {
            method: Method::GET,
            url: Url::parse(&format!("https://localhost:{port}/?Password=Secret-123")).unwrap(),
            headers: vec![],
            body: vec![],
        }
    }

    /// Regression: the rustls error was not found under hyper-rustls's
    /// double `io::Error`, so an untrusted certificate came back as a
    /// retryable connect failure.
    #[tokio::test]
    async fn untrusted_certificates_are_refused_for_good() {
        let (port, _) = tls_server().await;
        let client = HttpClient::new(&ConnectionOptions::new("x")).unwrap();
        let failure = client.send(get(port)).await.unwrap_err();
        assert_eq!(failure.kind, ErrorKind::Tls, "{}", failure.message);
        assert_eq!(failure.class, ErrorClass::Permanent, "{}", failure.message);
        assert!(!failure.message.contains("Secret-123"));
    }

    #[tokio::test]
    async fn extra_roots_are_trusted_with_verification_on() {
        let (port, pem) = tls_server().await;
        let mut options = ConnectionOptions::new("x");
        options.extra_root_certificates_pem = Some(pem);
        let client = HttpClient::new(&options).unwrap();
        let response = client.send(get(port)).await.unwrap();
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, &b"{}"[..])
        );
        // The name is verified too: the certificate is for localhost only.
        let mut wrong_name = get(port);
        wrong_name.url = Url::parse(&format!("https://127.0.0.1:{port}/")).unwrap();
        let failure = client.send(wrong_name).await.unwrap_err();
        assert_eq!(
            (failure.class, failure.kind),
            (ErrorClass::Permanent, ErrorKind::Tls),
            "{}",
            failure.message
        );
    }

    #[tokio::test]
    async fn a_plain_http_server_behind_https_is_a_tls_failure_before_sending() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let _ = socket
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        });
        let client = HttpClient::new(&ConnectionOptions::new("x")).unwrap();
        let failure = client.send(get(port)).await.unwrap_err();
        assert_eq!(failure.kind, ErrorKind::Tls, "{}", failure.message);
        assert_eq!(failure.class, ErrorClass::Retryable);
    }

    #[test]
    fn debug_output_carries_no_query_header_value_or_body() {
        let request = OutgoingRequest {
            method: Method::POST,
            url: Url::parse("https://dts.aliyuncs.com:8443/?Password=Secret-123").unwrap(),
            headers: vec![("authorization".into(), "ACS3 Signature=abcdef-sig".into())],
            body: b"{\"db_password\":\"Secret-456\"}".to_vec(),
        };
        let shown = format!("{request:?}");
        for secret in ["Secret-123", "abcdef-sig", "Secret-456"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(
            shown.contains("https://dts.aliyuncs.com:8443/?[redacted]"),
            "{shown}"
        );
        assert!(shown.contains("authorization"));
        let mut answer = response(&[("x-acs-request-id", "R-1")]);
        answer.body = br#"{"AccessKey":{"AccessKeySecret":"Secret-789"}}"#.to_vec();
        let shown = format!("{answer:?}");
        assert!(
            !shown.contains("Secret-789") && shown.contains("R-1"),
            "{shown}"
        );
    }

    #[test]
    fn bad_extra_roots_are_a_config_error() {
        let mut options = ConnectionOptions::new("x");
        options.extra_root_certificates_pem = Some("not pem".into());
        assert!(HttpClient::new(&options).is_err());
        // PEM armour around bytes that are no certificate.
        let armoured = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----";
        assert!(check_root_certificates(armoured).is_err());
        assert!(check_root_certificates("not pem").is_err());
    }
}
