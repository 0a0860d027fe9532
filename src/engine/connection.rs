//! A cloud connection (`config/:name`): credentials, endpoints, pacing and
//! the schedule of its own access-key rotation.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::providers::alicloud::AlibabaService;
use crate::providers::huaweicloud::HuaweiService;

use super::clock::rfc3339;
use super::role::Trigger;
use super::schedule::Schedule;

pub const STORAGE_PREFIX: &str = "config/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Alicloud,
    Huaweicloud,
}

impl Provider {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "alicloud" => Some(Self::Alicloud),
            "huaweicloud" => Some(Self::Huaweicloud),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alicloud => "alicloud",
            Self::Huaweicloud => "huaweicloud",
        }
    }

    /// The canonical name of a service whose base URL `endpoints` may
    /// override, or why `name` is none of this cloud's.
    pub fn service(self, name: &str) -> Result<&'static str, String> {
        match self {
            Self::Alicloud => name.parse::<AlibabaService>().map(AlibabaService::as_str),
            Self::Huaweicloud => name.parse::<HuaweiService>().map(HuaweiService::as_str),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureVersion {
    #[default]
    V3,
    V2,
}

/// The plugin's own access key being replaced (`rotate-root`). Written
/// before each step so a crash resumes instead of leaking or losing a key.
#[derive(Clone, Serialize, Deserialize)]
pub struct RootRotation {
    pub started_at: OffsetDateTime,
    /// `manual` or `schedule`.
    pub trigger: Trigger,
    pub old_access_key: String,
    /// Keys the user had before we created one: any other key found on
    /// resume is ours, and its secret is lost, so it is deleted.
    pub keys_before: Vec<String>,
    pub phase: RootPhase,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum RootPhase {
    /// About to create the new key.
    Creating,
    /// The new key exists; its secret is held here until it is verified
    /// and becomes the connection's key.
    Created {
        access_key: String,
        secret_key: String,
    },
    /// The connection uses the new key; the old one is being deleted.
    Swapped,
}

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct RootState {
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_rotation: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_rotation: Option<OffsetDateTime>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub failures: u32,
    #[serde(default)]
    pub in_flight: Option<RootRotation>,
}

/// The cloud refused the connection's key: no call goes through it until
/// the connection is written again.
#[derive(Clone, Serialize, Deserialize)]
pub struct Rejection {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub message: String,
}

/// Stored at `config/<name>`. Deliberately not `Debug`: it holds secrets.
#[derive(Clone, Serialize, Deserialize)]
pub struct Connection {
    pub provider: Provider,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    #[serde(default)]
    pub security_token: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    /// Huawei account (domain) id: scopes the global IAM service's calls.
    #[serde(default)]
    pub domain_id: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub endpoints: BTreeMap<String, String>,
    #[serde(default)]
    pub signature_version: SignatureVersion,
    #[serde(default)]
    pub iam_user: Option<String>,
    #[serde(default)]
    pub allowed_roles: Vec<String>,
    pub verify_connection: bool,
    pub max_retries: u32,
    pub request_timeout_secs: u64,
    pub requests_per_second: u32,
    #[serde(default)]
    pub ca_certificate: Option<String>,
    #[serde(default)]
    pub schedule: Schedule,
    #[serde(default)]
    pub root: RootState,
    #[serde(default)]
    pub credentials_rejected: Option<Rejection>,
}

impl Connection {
    /// A connection to `provider` with every setting at its default.
    pub fn new(provider: Provider) -> Self {
        Self {
            provider,
            region: String::new(),
            access_key: String::new(),
            secret_key: String::new(),
            security_token: None,
            project_id: None,
            domain_id: None,
            endpoint: None,
            endpoints: Default::default(),
            signature_version: SignatureVersion::V3,
            iam_user: None,
            allowed_roles: Vec::new(),
            verify_connection: true,
            max_retries: 3,
            request_timeout_secs: 30,
            requests_per_second: 10,
            ca_certificate: None,
            schedule: Schedule::default(),
            root: RootState::default(),
            credentials_rejected: None,
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// Whether `role` may use this connection (Vault's glob rule: `*`
    /// matches anything; an empty list allows nothing).
    pub fn allows_role(&self, role: &str) -> bool {
        self.allowed_roles
            .iter()
            .any(|pattern| glob_match(pattern, role))
    }

    /// What `read config/:name` shows: never a secret.
    pub fn describe(&self) -> Map<String, Value> {
        let mut out = json!({
            "provider": self.provider.as_str(),
            "region": self.region,
            "access_key": self.access_key,
            "security_token_set": self.security_token.is_some(),
            "project_id": self.project_id.clone().unwrap_or_default(),
            "domain_id": self.domain_id.clone().unwrap_or_default(),
            "endpoint": self.endpoint.clone().unwrap_or_default(),
            "endpoints": self.endpoints,
            "signature_version": match self.signature_version { SignatureVersion::V3 => "v3", SignatureVersion::V2 => "v2" },
            "iam_user": self.iam_user.clone().unwrap_or_default(),
            "allowed_roles": self.allowed_roles,
            "verify_connection": self.verify_connection,
            "max_retries": self.max_retries,
            "request_timeout": self.request_timeout_secs,
            "requests_per_second": self.requests_per_second,
            "ca_certificate": self.ca_certificate.clone().unwrap_or_default(),
            "last_root_rotation": self.root.last_rotation.map(rfc3339),
            "next_root_rotation": self.root.next_rotation.map(rfc3339),
            "root_rotation_in_progress": self.root.in_flight.is_some(),
            "last_root_rotation_error": self.root.last_error,
            "credentials_rejected": self.credentials_rejected.as_ref().map(|r| json!({
                "at": rfc3339(r.at),
                "message": r.message,
            })),
        });
        let mut map = out.as_object_mut().map(std::mem::take).unwrap_or_default();
        map.extend(self.schedule.describe());
        map
    }
}

/// `*` matches any run of characters; everything else is literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first)
        || !text[first.len()..].ends_with(last)
        || text.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_vault() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("team-a-*", "team-a-db"));
        assert!(!glob_match("team-a-*", "team-b-db"));
        assert!(glob_match("*-db", "team-a-db"));
        assert!(glob_match("a*b*c", "a-x-b-y-c"));
        assert!(!glob_match("a*b*c", "a-x-c"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("ab*ba", "aba"));
    }
}
