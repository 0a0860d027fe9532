//! The contract between the plugin runtime and a secrets engine.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::error::Error;
use super::request::Request;
use super::response::Response;
use super::storage::Storage;
use super::system_view::SystemView;

/// Answer of an existence check, which decides whether a write is a
/// `create` or an `update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existence {
    /// The path has no existence check: the host treats the write as update.
    NoCheck,
    Exists(bool),
}

/// Paths with special handling by the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialPaths {
    /// Request paths; a `*` suffix makes a prefix.
    pub root: Vec<String>,
    pub unauthenticated: Vec<String>,
    /// Storage keys, matched as the Vault SDK documents: exact, or a
    /// prefix when the entry ends with `/` (no `*`).
    pub local_storage: Vec<String>,
    pub seal_wrap_storage: Vec<String>,
}

/// Everything a mount is created with.
#[derive(Clone)]
pub struct BackendConfig {
    /// Mount options plus `plugin_name`, `plugin_type`, `plugin_version`.
    pub config: HashMap<String, String>,
    /// Stable across restarts and reloads of this mount.
    pub backend_uuid: String,
    pub storage: Arc<dyn Storage>,
    pub system: Arc<dyn SystemView>,
}

#[async_trait]
pub trait Backend: Send + Sync {
    async fn handle_request(&self, request: Request) -> Result<Option<Response>, Error>;
    async fn existence_check(&self, request: &Request) -> Result<Existence, Error>;
    fn special_paths(&self) -> SpecialPaths;
    /// Called once the mount is set up: start background work here.
    async fn initialize(&self) -> Result<(), Error>;
    /// Stop background work. Called on unmount, reload and seal, possibly
    /// more than once.
    async fn cleanup(&self);
    /// A storage key changed under this node (replication, standby).
    async fn invalidate(&self, key: &str);
}

pub type Factory = fn(BackendConfig) -> Result<Arc<dyn Backend>, Error>;
