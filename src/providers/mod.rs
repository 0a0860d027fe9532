//! Cloud clients that know nothing of Vault: signing, typed calls, one error
//! type whose class drives retries, shared pacing and backoff.
//!
//! Layout (after the `object_store` crate): one folder per cloud
//! (`alicloud`, `huaweicloud`), each with its signer, endpoint rules, a
//! client that builds, signs, sends and parses, and one file per service.
//! The pieces every cloud shares live here: [`error`] (the one error type),
//! [`http`] (pooled HTTPS with timeouts and transport-failure
//! classification), [`send`] (the one signed-send loop: pacing, retries,
//! answer reading and redaction), [`retry`] (backoff with full jitter),
//! [`pacing`] (a per-connection token bucket), [`hash`] and [`encoding`]
//! (what both signature schemes are built from).

// `ProviderError` is a flat struct with public fields (~136 bytes) that the
// engine matches on; it is returned once per network round-trip, so its
// size is irrelevant next to the call, and boxing it would only make every
// match site noisier.
#![allow(clippy::result_large_err)]

/// Declares one cloud's services: an enum whose variants are a subset of
/// [`Service`]'s, with the same names, so a call built for one cloud cannot
/// name another cloud's service. Each gets `ALL`, `as_str` (the name
/// [`Service`] gives it), `Display`, `FromStr` (refusing the other names,
/// listing the allowed ones) and `From` into [`Service`].
macro_rules! cloud_services {
    ($(#[$doc:meta])* $name:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: [$name; [$($name::$variant),+].len()] = [$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                $crate::providers::Service::from(self).as_str()
            }
        }

        impl From<$name> for $crate::providers::Service {
            fn from(service: $name) -> Self {
                match service {
                    $($name::$variant => Self::$variant),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(name: &str) -> Result<Self, Self::Err> {
                $crate::providers::parse_service_name(name, &$name::ALL)
            }
        }
    };
}

pub mod alicloud;
pub mod encoding;
pub mod error;
pub mod hash;
pub mod http;
pub mod huaweicloud;
pub mod pacing;
pub mod retry;
pub mod send;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use reqwest::Url;

pub use error::{ErrorClass, ErrorKind, ProviderError};
use http::parse_base_url;
pub use retry::{Idempotency, RetryPolicy};

/// A string that must never be printed: passwords, secret keys, tokens.
/// `Debug` and `Display` show `[redacted]`; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// An access key pair, with the security token of temporary (STS)
/// credentials. `Debug` shows the access key id only.
#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: Secret,
    pub security_token: Option<Secret>,
}

impl Credentials {
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<Secret>) -> Self {
        Credentials {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            security_token: None,
        }
    }

    pub fn with_security_token(mut self, token: impl Into<Secret>) -> Self {
        self.security_token = Some(token.into());
        self
    }

    /// The secret values a request signed with these credentials carries,
    /// for redaction.
    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut out = vec![self.secret_key.expose().to_owned()];
        if let Some(token) = &self.security_token {
            out.push(token.expose().to_owned());
        }
        out
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &self.secret_key)
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// The cloud services the clients talk to, whatever the cloud: what errors
/// and endpoint overrides name. A call is built with its cloud's own enum
/// ([`alicloud::AlibabaService`], [`huaweicloud::HuaweiService`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    /// Alibaba Cloud PolarDB (RPC, version 2017-08-01).
    Polardb,
    /// Alibaba Cloud Data Transmission Service (RPC, version 2020-01-01).
    Dts,
    /// Alibaba Cloud Resource Access Management (RPC, version 2015-05-01).
    Ram,
    /// Huawei Cloud Data Replication Service (v3/v5 REST).
    Drs,
    /// Huawei Cloud Distributed Cache Service (v2 REST).
    Dcs,
    /// Huawei Cloud Identity and Access Management (v3.0 REST).
    Iam,
}

impl Service {
    pub const ALL: [Service; 6] = [
        Service::Polardb,
        Service::Dts,
        Service::Ram,
        Service::Drs,
        Service::Dcs,
        Service::Iam,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Service::Polardb => "polardb",
            Service::Dts => "dts",
            Service::Ram => "ram",
            Service::Drs => "drs",
            Service::Dcs => "dcs",
            Service::Iam => "iam",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Service {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        parse_service_name(name, &Service::ALL)
    }
}

/// The service among `allowed` that `name` names (in any case); the error
/// lists the allowed names.
fn parse_service_name<S: Copy + Into<Service>>(name: &str, allowed: &[S]) -> Result<S, String> {
    let name_of = |service: S| service.into().as_str();
    allowed
        .iter()
        .copied()
        .find(|service| name_of(*service).eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let names: Vec<&str> = allowed.iter().copied().map(name_of).collect();
            format!(
                "unknown service {name:?}; expected one of: {}",
                names.join(", ")
            )
        })
}

/// How one connection (one set of credentials against one cloud) reaches
/// and paces its services.
#[derive(Debug, Clone)]
pub struct ConnectionOptions {
    pub region: String,
    /// One base URL for every service (a private gateway, the emulator).
    /// `http://` is used only when written here explicitly; a bare host
    /// means `https://`.
    pub endpoint: Option<String>,
    /// Per-service base URLs; they win over `endpoint`.
    pub endpoints: BTreeMap<Service, String>,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Retries after the first attempt (so `max_retries + 1` attempts).
    pub max_retries: u32,
    /// The whole call, every attempt and backoff included, gives up after
    /// this long.
    pub max_elapsed: Duration,
    /// Token-bucket rate for this connection; `None` or `<= 0` disables pacing.
    pub requests_per_second: Option<f64>,
    /// Bucket size (how many requests may go at once after a quiet spell).
    pub burst: u32,
    /// Extra trusted roots in PEM, added to the system roots (private
    /// gateways, tests). Verification stays on.
    pub extra_root_certificates_pem: Option<String>,
}

impl ConnectionOptions {
    pub fn new(region: impl Into<String>) -> Self {
        ConnectionOptions {
            region: region.into(),
            endpoint: None,
            endpoints: BTreeMap::new(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_retries: 4,
            max_elapsed: Duration::from_secs(120),
            requests_per_second: Some(5.0),
            burst: 5,
            extra_root_certificates_pem: None,
        }
    }

    /// The configured base URL for `service`, if any.
    pub fn base_url_for(&self, service: Service) -> Option<&str> {
        self.endpoints
            .get(&service)
            .or(self.endpoint.as_ref())
            .map(String::as_str)
    }

    /// The base URL for `service`: the configured one, else `https://` +
    /// the host `default_host` gives for the region (the cloud's SDK rule).
    pub fn base_url(
        &self,
        service: Service,
        default_host: impl FnOnce(&str) -> String,
    ) -> Result<Url, String> {
        if let Some(base) = self.base_url_for(service) {
            return parse_base_url(base);
        }
        let valid_region = !self.region.is_empty()
            && self
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_region {
            return Err(format!("invalid region {:?}", self.region));
        }
        parse_base_url(&format!("https://{}", default_host(&self.region)))
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_retries.saturating_add(1),
            max_elapsed: self.max_elapsed,
            ..RetryPolicy::default()
        }
    }
}

/// What every successful call reports besides its payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallInfo {
    /// The provider's request id (Alibaba body `RequestId`, Huawei header
    /// `X-Request-Id`), kept for rotation history.
    pub request_id: Option<String>,
    pub http_status: u16,
    /// How many attempts the call took (1 when nothing was retried).
    pub attempts: u32,
}

/// The result of a credential check: the cheap authenticated call answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub service: Service,
    pub action: &'static str,
    pub info: CallInfo,
}

/// Decodes a success body into its typed form. The error never quotes the
/// body (it may hold a new secret key): only where decoding stopped.
pub(crate) fn decode_body<T: serde::de::DeserializeOwned>(
    service: Service,
    action: &str,
    body: serde_json::Value,
    info: &CallInfo,
) -> Result<T, ProviderError> {
    serde_json::from_value(body).map_err(|e| {
        ProviderError::new(
            ErrorClass::Permanent,
            ErrorKind::InvalidResponse,
            service,
            action,
            &if e.to_string().starts_with("missing field") {
                format!("unexpected answer shape: {e}")
            } else {
                format!("unexpected answer shape ({:?} error)", e.classify())
            },
            &[],
        )
        .with_status(info.http_status)
        .with_request_id(info.request_id.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let creds = Credentials::new("AKID", "very-secret-key").with_security_token("tok-123456");
        let shown = format!("{creds:?}");
        assert!(shown.contains("AKID"));
        assert!(!shown.contains("very-secret-key"));
        assert!(!shown.contains("tok-123456"));
        assert_eq!(format!("{}", Secret::new("pw")), "[redacted]");
    }

    #[test]
    fn each_cloud_parses_only_its_own_service_names() {
        use alicloud::AlibabaService;
        use huaweicloud::HuaweiService;
        assert_eq!("DTS".parse::<AlibabaService>(), Ok(AlibabaService::Dts));
        assert_eq!("iam".parse::<HuaweiService>(), Ok(HuaweiService::Iam));
        assert_eq!(
            "drs".parse::<AlibabaService>().unwrap_err(),
            r#"unknown service "drs"; expected one of: polardb, dts, ram"#
        );
        assert_eq!(
            "polardb".parse::<HuaweiService>().unwrap_err(),
            r#"unknown service "polardb"; expected one of: drs, dcs, iam"#
        );
        let mut names = Vec::new();
        for service in AlibabaService::ALL {
            assert_eq!(service.as_str().parse(), Ok(service));
            names.push(Service::from(service));
        }
        for service in HuaweiService::ALL {
            assert_eq!(service.to_string().parse(), Ok(service));
            names.push(Service::from(service));
        }
        assert_eq!(names, Service::ALL, "the clouds share out every service");
    }

    #[test]
    fn per_service_endpoint_wins() {
        let mut options = ConnectionOptions::new("cn-hangzhou");
        options.endpoint = Some("http://127.0.0.1:1".into());
        options
            .endpoints
            .insert(Service::Dts, "https://dts.example".into());
        assert_eq!(
            options.base_url_for(Service::Dts),
            Some("https://dts.example")
        );
        assert_eq!(
            options.base_url_for(Service::Polardb),
            Some("http://127.0.0.1:1")
        );
        assert_eq!(
            "DCS".parse::<Service>().unwrap(),
            Service::Dcs,
            "service names parse case-insensitively"
        );
    }
}
