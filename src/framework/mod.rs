//! Vault's logical model without transport: requests, responses, storage,
//! the system view, errors, and the declarative path table that routes
//! requests to handlers.

mod backend;
pub mod duration;
mod error;
mod field;
mod help;
mod openapi;
mod operation;
mod path;
mod request;
mod response;
mod router;
mod storage;
mod system_view;
pub mod wal;

pub use backend::{Backend, BackendConfig, Existence, Factory, SpecialPaths};
pub use error::{Error, Result};
pub use field::{Field, FieldData, FieldType, FieldValue};
pub use help::reference_markdown;
pub use operation::Operation;
pub use path::{BoxFuture, ExistenceCheck, Handler, HandlerResult, Path, validate_name};
pub use request::{ClientInfo, ClientToken, LeaseInfo, Request};
pub use response::{LeaseGrant, Response};
pub use router::{BackendInfo, Framework, Lifecycle, SECRET_TYPE_KEY, SecretType};
pub use storage::{MemoryStorage, Storage, StorageError, StorageOps, get_json, put_json};
pub use system_view::{ReplicationState, StaticSystemView, SystemView};
