//! The secrets engine: connections, roles mapped to cloud targets and the
//! jobs that keep copies of their passwords, and the rotation machinery.

mod calls;
mod clock;
mod cloud;
mod connection;
mod core;
mod history;
mod index;
mod locks;
mod marker;
mod password;
mod path_config;
mod path_creds;
mod path_history;
mod path_roles;
mod path_rotate;
mod role;
mod rotation;
mod schedule;
mod scheduler;
mod store;
mod tuning;
// Dynamic credentials will name accounts with it; only tests call it yet.
#[cfg_attr(not(test), allow(dead_code, unused_imports))]
pub(crate) mod username_template;

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::framework::{
    Backend, BackendConfig, BackendInfo, Error, Framework, Lifecycle, Path, SpecialPaths, Storage,
    wal,
};

pub use clock::{Clock, ManualClock, SystemClock};
pub use cloud::{Cloud, ProviderCloud};
pub use core::Engine;
pub use tuning::DEFAULT_CONCURRENCY;
use tuning::Tuning;

const HELP: &str = "\
The cloudrotate secrets engine owns and rotates passwords of Alibaba Cloud PolarDB accounts and Huawei Cloud \
DCS (Redis) instances, and keeps every copy of them in DTS and DRS replication jobs in step, in one crash-safe \
rotation.";

#[async_trait]
impl Lifecycle for Engine {
    async fn initialize(self: Arc<Self>) -> Result<(), Error> {
        let (stop, stopped) = watch::channel(false);
        self.replace_runner(stop);
        tokio::spawn(rotation::runner::run(self.clone(), stopped));
        Ok(())
    }

    async fn periodic(self: Arc<Self>) -> Result<(), Error> {
        self.store.timetable.wake();
        Ok(())
    }

    async fn cleanup(&self) {
        self.stop_runner();
    }

    async fn invalidate(&self, key: &str) {
        if let Err(err) = self.store.refresh(key).await {
            tracing::warn!(key, error = %err, "could not refresh what another node changed");
        }
    }

    fn storage(&self) -> &dyn Storage {
        self.store.storage.as_ref()
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

pub fn paths() -> Vec<Path<Engine>> {
    let mut paths = path_config::paths();
    paths.extend(path_roles::paths());
    paths.extend(path_creds::paths());
    paths.extend(path_rotate::paths());
    paths.extend(path_history::paths());
    paths
}

pub fn info() -> BackendInfo {
    BackendInfo {
        title: "cloudrotate",
        help: HELP,
        version: format!("v{}", env!("CARGO_PKG_VERSION")),
    }
}

/// The backend of one mount, with the clock and tuning given.
pub fn backend(
    config: BackendConfig,
    clock: Arc<dyn Clock>,
    cloud: Arc<dyn Cloud>,
) -> Framework<Engine> {
    let tuning = Tuning::from_options(&config.config);
    Framework {
        state: Arc::new(Engine::new(
            config.storage,
            config.system,
            clock,
            cloud,
            tuning,
            config.backend_uuid,
        )),
        info: info(),
        paths: paths(),
        secrets: path_creds::secret_types(),
        special_paths: SpecialPaths {
            seal_wrap_storage: vec!["config/".into(), "role/".into()],
            // Each cluster rolls back the cloud objects it created itself.
            local_storage: vec![wal::PREFIX.into()],
            ..SpecialPaths::default()
        },
    }
}

/// Builds the backend for one mount.
pub fn factory(config: BackendConfig) -> Result<Arc<dyn Backend>, Error> {
    Ok(Arc::new(backend(
        config,
        Arc::new(SystemClock),
        Arc::new(ProviderCloud),
    )))
}
