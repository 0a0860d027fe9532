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

/// Who is calling, for history records and logs. Never holds a token.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub display_name: String,
    pub entity_id: String,
    pub token_accessor: String,
    pub mount_point: String,
    pub remote_addr: String,
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
