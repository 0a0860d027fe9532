//! A request as the engine sees it: no protobuf, no gRPC.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::operation::Operation;

#[derive(Debug, Clone)]
pub struct Request {
    pub id: String,
    pub operation: Operation,
    /// Relative to the mount, without a leading slash.
    pub path: String,
    /// The raw request body or query, exactly as the client sent it. Handlers
    /// read typed values through `FieldData`, never from here.
    pub data: Map<String, Value>,
    /// Set for `renew` and `revoke`: the lease being acted on.
    pub secret: Option<LeaseInfo>,
    pub client: ClientInfo,
}

impl Request {
    pub fn new(operation: Operation, path: impl Into<String>) -> Self {
        Self {
            id: String::new(),
            operation,
            path: path.into(),
            data: Map::new(),
            secret: None,
            client: ClientInfo::default(),
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        if let Value::Object(map) = data {
            self.data = map;
        }
        self
    }
}

/// Who is calling, for history records, logs and the borrower of a
/// library check-out. Its `Debug` never shows the token.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub display_name: String,
    pub entity_id: String,
    pub token_accessor: String,
    pub mount_point: String,
    pub remote_addr: String,
    /// The host's HMAC-salted form of the caller's token (never the token
    /// itself), stable per token and mount.
    pub client_token: ClientToken,
}

/// The salted client token a host sends: an identity to compare, never
/// to show; `Debug` prints whether it is set, not its value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientToken(String);

impl ClientToken {
    pub fn new(salted: impl Into<String>) -> Self {
        Self(salted.into())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value, for hashing: never log or store it as it is.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "ClientToken(none)"
        } else {
            "ClientToken(<redacted>)"
        })
    }
}

/// The lease a `renew` or `revoke` refers to.
#[derive(Debug, Clone, Default)]
pub struct LeaseInfo {
    /// Empty on renew (the host does not send it), set on revoke.
    pub lease_id: String,
    /// What the engine stored with the lease when it was issued.
    pub internal_data: Map<String, Value>,
    pub ttl: Duration,
    pub max_ttl: Duration,
    /// The extension the client asked for on renew.
    pub increment: Duration,
    pub issue_time: Option<SystemTime>,
    pub renewable: bool,
}
