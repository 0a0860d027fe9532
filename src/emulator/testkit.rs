//! Helpers for tests and benchmarks: requests signed exactly as the clients
//! sign them (with `crate::providers::*::sign`), and a minimal blocking
//! HTTP/1.1 keep-alive client that speaks to the running binary.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;

use super::http::Request;
use crate::providers::alicloud::sign as ali;
use crate::providers::encoding::percent_encode;
use crate::providers::hash::{EMPTY_PAYLOAD_SHA256, sha256_hex};
use crate::providers::huaweicloud::sign as hw;

#[derive(Debug, Clone)]
pub struct Creds {
    pub id: String,
    pub secret: String,
    pub token: Option<String>,
}

impl Creds {
    pub fn new(id: &str, secret: &str) -> Self {
        Self {
            id: id.to_owned(),
            secret: secret.to_owned(),
            token: None,
        }
    }

    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }
}

fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `k=v&...` with every name and value percent-encoded.
pub fn encode_query(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// An Alibaba RPC call as the tea SDK sends it: `POST /`, parameters in
/// the query, empty body, ACS3-HMAC-SHA256.
pub fn alicloud_acs3(
    host: &str,
    version: &str,
    action: &str,
    params: &[(&str, &str)],
    creds: &Creds,
    at: OffsetDateTime,
    nonce: &str,
) -> Request {
    let query = owned(params);
    let mut headers = vec![
        ("host".to_owned(), host.to_owned()),
        ("x-acs-action".to_owned(), action.to_owned()),
        ("x-acs-version".to_owned(), version.to_owned()),
        ("x-acs-date".to_owned(), ali::format_timestamp(at)),
        ("x-acs-signature-nonce".to_owned(), nonce.to_owned()),
        (
            "x-acs-content-sha256".to_owned(),
            EMPTY_PAYLOAD_SHA256.to_owned(),
        ),
    ];
    if let Some(token) = &creds.token {
        headers.push(("x-acs-security-token".to_owned(), token.clone()));
    }
    let signed = ali::acs3_headers_to_sign(&headers);
    let authorization = ali::acs3_authorization(
        &ali::Acs3Request {
            method: "POST",
            canonical_uri: "/",
            query: &query,
            signed_headers: &signed,
            payload_sha256: EMPTY_PAYLOAD_SHA256,
        },
        &creds.id,
        &creds.secret,
    );
    headers.push(("authorization".to_owned(), authorization));
    Request {
        method: "POST".to_owned(),
        path: "/".to_owned(),
        query: encode_query(&query),
        headers,
        body: Bytes::new(),
    }
}

/// An Alibaba RPC call signed with V2 (HMAC-SHA1): `POST /`, everything in
/// the query, `Signature` last.
pub fn alicloud_v2(
    host: &str,
    version: &str,
    action: &str,
    params: &[(&str, &str)],
    creds: &Creds,
    at: OffsetDateTime,
    nonce: &str,
) -> Request {
    let timestamp = ali::format_timestamp(at);
    let mut query = owned(params);
    query.extend(owned(&[
        ("AccessKeyId", &creds.id),
        ("Action", action),
        ("Format", "JSON"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", nonce),
        ("SignatureVersion", "1.0"),
        ("Timestamp", &timestamp),
        ("Version", version),
    ]));
    if let Some(token) = &creds.token {
        query.push(("SecurityToken".to_owned(), token.clone()));
    }
    let signature = ali::v2_signature(&creds.secret, &ali::v2_string_to_sign("POST", &query));
    query.push(("Signature".to_owned(), signature));
    Request {
        method: "POST".to_owned(),
        path: "/".to_owned(),
        query: encode_query(&query),
        headers: vec![("host".to_owned(), host.to_owned())],
        body: Bytes::new(),
    }
}

/// A Huawei call signed with SDK-HMAC-SHA256 over `host`, `content-type`
/// (when there is a body), `x-project-id` (when given), `x-sdk-date` and
/// `x-security-token` (when the credentials have one).
#[allow(clippy::too_many_arguments)]
pub fn huawei(
    host: &str,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    body: &[u8],
    project: Option<&str>,
    creds: &Creds,
    at: OffsetDateTime,
) -> Request {
    let query = owned(query);
    let date = hw::format_sdk_date(at);
    let mut headers = vec![
        ("host".to_owned(), host.to_owned()),
        ("x-sdk-date".to_owned(), date.clone()),
    ];
    if !body.is_empty() {
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
    }
    if let Some(project) = project {
        headers.push(("x-project-id".to_owned(), project.to_owned()));
    }
    if let Some(token) = &creds.token {
        headers.push(("x-security-token".to_owned(), token.clone()));
    }
    let signed = hw::normalize_headers(&headers);
    let authorization = hw::authorization(
        &hw::SignRequest {
            method,
            path,
            query: &query,
            signed_headers: &signed,
            payload_sha256: &sha256_hex(body),
        },
        &date,
        &creds.id,
        &creds.secret,
    );
    headers.push(("authorization".to_owned(), authorization));
    Request {
        method: method.to_owned(),
        path: path
            .split('/')
            .map(percent_encode)
            .collect::<Vec<_>>()
            .join("/"),
        query: encode_query(&query),
        headers,
        body: Bytes::copy_from_slice(body),
    }
}

impl Request {
    /// The request as HTTP/1.1 bytes (keep-alive, `Content-Length` set).
    pub fn to_http1(&self) -> Vec<u8> {
        let target = if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        };
        let mut out = format!("{} {target} HTTP/1.1\r\n", self.method);
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str(&format!("content-length: {}\r\n\r\n", self.body.len()));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Self {
            reader: BufReader::new(stream),
        })
    }

    pub fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.reader.get_ref().set_read_timeout(Some(timeout))
    }

    /// Sends and reads the answer; an error when the server closed or reset
    /// the connection instead of answering.
    pub fn send(&mut self, request: &Request) -> io::Result<Response> {
        self.send_raw(&request.to_http1())
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<Response> {
        self.reader.get_mut().write_all(bytes)?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed without a response",
            ));
        }
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, line.clone()))?;
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':') {
                let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_owned());
                if name == "content-length" {
                    length = value.parse().unwrap_or(0);
                }
                headers.push((name, value));
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}
