//! What a handler returns.

use std::time::Duration;

use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    pub data: Map<String, Value>,
    pub secret: Option<LeaseGrant>,
    pub warnings: Vec<String>,
}

impl Response {
    pub fn with_data(data: Value) -> Self {
        match data {
            Value::Object(map) => Self {
                data: map,
                ..Self::default()
            },
            _ => Self::default(),
        }
    }

    /// The shape the host expects for a `list` operation.
    pub fn list(keys: Vec<String>) -> Self {
        let mut data = Map::new();
        data.insert("keys".into(), Value::from(keys));
        Self {
            data,
            ..Self::default()
        }
    }

    pub fn with_lease(mut self, lease: LeaseGrant) -> Self {
        self.secret = Some(lease);
        self
    }

    pub fn warn(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }
}

/// A secret handed out under a lease. `secret_type` selects the handlers
/// that renew and revoke it; the transport stores it in the lease's internal
/// data under `SECRET_TYPE_KEY`, and hands it back on renew and revoke.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseGrant {
    pub secret_type: String,
    pub internal_data: Map<String, Value>,
    pub ttl: Duration,
    pub max_ttl: Duration,
    pub renewable: bool,
}
