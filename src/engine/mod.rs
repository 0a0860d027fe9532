//! The secrets engine: connections, roles mapped to cloud targets and the
//! jobs that keep copies of their passwords, and the rotation machinery.

mod clock;
mod connection;
mod locks;
mod path_config;
mod schedule;

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::framework::{
    Backend, BackendConfig, BackendInfo, Error, Framework, Lifecycle, Path, SpecialPaths, Storage,
    SystemView,
};

pub use clock::{Clock, ManualClock, SystemClock};
use connection::Connection;
use locks::KeyedLocks;

const HELP: &str = "\
The cloudrotate secrets engine owns and rotates passwords of Alibaba Cloud PolarDB accounts and Huawei Cloud \
DCS (Redis) instances, and keeps every copy of them in DTS and DRS replication jobs in step, in one crash-safe \
rotation.";

pub struct Engine {
    storage: Arc<dyn Storage>,
    #[allow(dead_code)]
    system: Arc<dyn SystemView>,
    clock: Arc<dyn Clock>,
    locks: KeyedLocks,
}

impl Engine {
    pub fn new(
        storage: Arc<dyn Storage>,
        system: Arc<dyn SystemView>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            storage,
            system,
            clock,
            locks: KeyedLocks::default(),
        }
    }

    /// Drops cached provider clients of a connection after it changed.
    fn forget_clients(&self, _connection: &str) {}

    /// Names of the roles whose target or dependents use a connection.
    async fn roles_using_connection(&self, _connection: &str) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }

    /// Records when a connection's access key is next due for rotation.
    fn schedule_root(&self, _connection: &str, _due: Option<OffsetDateTime>) {}

    /// One cheap signed call with the connection's credentials.
    async fn verify_connection(&self, _connection: &Connection) -> Result<(), Error> {
        Err(Error::bad_request(
            "this build cannot verify connections yet; write the connection with verify_connection=false",
        ))
    }
}

#[async_trait]
impl Lifecycle for Engine {
    async fn initialize(self: Arc<Self>) -> Result<(), Error> {
        Ok(())
    }

    async fn periodic(self: Arc<Self>) -> Result<(), Error> {
        Ok(())
    }

    async fn cleanup(&self) {}

    async fn invalidate(&self, _key: &str) {}
}

pub fn paths() -> Vec<Path<Engine>> {
    path_config::paths()
}

pub fn info() -> BackendInfo {
    BackendInfo {
        title: "cloudrotate",
        help: HELP,
        version: format!("v{}", env!("CARGO_PKG_VERSION")),
    }
}

/// Builds the backend for one mount.
pub fn factory(config: BackendConfig) -> Result<Arc<dyn Backend>, Error> {
    let engine = Engine::new(config.storage, config.system, Arc::new(SystemClock));
    Ok(Arc::new(Framework {
        state: Arc::new(engine),
        info: info(),
        paths: paths(),
        secrets: Vec::new(),
        special_paths: SpecialPaths {
            seal_wrap_storage: vec!["config/*".into(), "role/*".into()],
            ..SpecialPaths::default()
        },
    }))
}
