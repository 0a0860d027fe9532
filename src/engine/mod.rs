//! The secrets engine: connections, roles mapped to cloud targets and the
//! jobs that keep copies of their passwords, library sets of service
//! accounts lent one borrower at a time, and the rotation machinery.

mod calls;
mod clock;
mod cloud;
mod connection;
mod core;
mod dynamic;
mod history;
mod index;
mod library;
mod locks;
mod marker;
mod password;
mod path_config;
mod path_creds;
mod path_dynamic;
mod path_history;
mod path_library;
mod path_roles;
mod path_rotate;
mod role;
mod rotation;
mod schedule;
mod scheduler;
mod store;
mod tuning;
pub(crate) mod username_template;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
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
        if !self.runs_background_work().await {
            return Ok(());
        }
        dynamic::cleanup::sweep(&self).await
    }

    async fn cleanup(&self) {
        self.stop_runner();
        // Also called on seal and reload, when the mount stays: only a
        // mount being disabled (tainted) gives up what it holds.
        if self.system.tainted().await.unwrap_or(false) {
            dynamic::cleanup::at_unmount(self).await;
        }
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

    async fn wal_rollback(self: Arc<Self>, kind: &str, data: &Value) -> Result<(), Error> {
        match kind {
            dynamic::WAL_KIND => dynamic::cleanup::roll_back(&self, data).await,
            other => Err(wal::unknown_kind(other)),
        }
    }

    fn wal_rollback_min_age(&self) -> Duration {
        self.tuning.wal_rollback_min_age
    }
}

pub fn paths() -> Vec<Path<Engine>> {
    let mut paths = path_config::paths();
    paths.extend(path_roles::paths());
    paths.extend(path_creds::paths());
    paths.extend(path_dynamic::paths());
    paths.extend(path_library::paths());
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
        secrets: path_library::secret_types()
            .into_iter()
            .chain(path_dynamic::secret_types())
            .collect(),
        special_paths: SpecialPaths {
            seal_wrap_storage: vec![
                "config/".into(),
                "role/".into(),
                library::BORROWER_KEY.into(),
                dynamic::role::STORAGE_PREFIX.into(),
            ],
            // Each cluster rolls back and cleans up the cloud objects it
            // created itself.
            local_storage: vec![wal::PREFIX.into(), dynamic::ISSUED_PREFIX.into()],
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
