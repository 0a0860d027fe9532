//! Vault's logical model without transport: requests, responses, storage,
//! the system view, errors, and the declarative path table that routes
//! requests to handlers.

mod backend;
mod error;
mod operation;
mod request;
mod response;
mod storage;
mod system_view;

pub use backend::{Backend, BackendConfig, Existence, Factory, SpecialPaths};
pub use error::{Error, Result};
pub use operation::Operation;
pub use request::{ClientInfo, LeaseInfo, Request};
pub use response::{LeaseGrant, Response};
pub use storage::{MemoryStorage, Storage, StorageError, StorageOps, get_json, put_json};
pub use system_view::{ReplicationState, StaticSystemView, SystemView};
