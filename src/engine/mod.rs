//! The secrets engine: connections, roles mapped to cloud targets and the
//! jobs that keep copies of their passwords, and the rotation machinery.

mod clock;
mod connection;
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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tokio::sync::{OnceCell, watch};

use crate::framework::{
    Backend, BackendConfig, BackendInfo, Error, Framework, Lifecycle, Path, SpecialPaths, Storage,
    StorageError, SystemView, get_json, put_json,
};
use crate::providers::ProviderError;

pub use clock::{Clock, ManualClock, SystemClock};
use connection::{Connection, Rejection};
use index::Index;
use locks::KeyedLocks;
use role::Role;
pub use rotation::DEFAULT_CONCURRENCY;
use rotation::Tuning;
use rotation::cloud::Clients;
use scheduler::{Job, Timetable};

const HELP: &str = "\
The cloudrotate secrets engine owns and rotates passwords of Alibaba Cloud PolarDB accounts and Huawei Cloud \
DCS (Redis) instances, and keeps every copy of them in DTS and DRS replication jobs in step, in one crash-safe \
rotation.";

pub struct Engine {
    storage: Arc<dyn Storage>,
    system: Arc<dyn SystemView>,
    clock: Arc<dyn Clock>,
    tuning: Tuning,
    locks: KeyedLocks,
    timetable: Timetable,
    index: OnceCell<Mutex<Index>>,
    clients: Mutex<HashMap<String, Arc<Clients>>>,
    /// Connections whose access key the cloud rejected, with what to do.
    rejected: Mutex<HashMap<String, String>>,
    /// This mount's id in ownership markers.
    owner: OnceCell<String>,
    backend_uuid: String,
    runner: Mutex<Option<watch::Sender<bool>>>,
}

impl Engine {
    /// Serialises writes that change which role owns which resource.
    const ROLES_LOCK: &'static str = "roles";
    /// Where the owner id is kept when the host gives no mount UUID.
    const OWNER_KEY: &'static str = "owner";

    pub fn new(
        storage: Arc<dyn Storage>,
        system: Arc<dyn SystemView>,
        clock: Arc<dyn Clock>,
        tuning: Tuning,
        backend_uuid: String,
    ) -> Self {
        Self {
            storage,
            system,
            clock,
            tuning,
            locks: KeyedLocks::default(),
            timetable: Timetable::default(),
            index: OnceCell::new(),
            clients: Mutex::new(HashMap::new()),
            rejected: Mutex::new(HashMap::new()),
            owner: OnceCell::new(),
            backend_uuid,
            runner: Mutex::new(None),
        }
    }

    /// This mount's owner id, the `<owner>` of its ownership markers: 16 hex
    /// characters derived from the mount's UUID, which the host keeps in its
    /// mount table. So it is the same after a restart, `secrets move` or a
    /// snapshot restore (even of a snapshot taken before the first marker),
    /// and different for every other mount, namespace and cluster. A host
    /// that gives no UUID gets a random id kept in the mount's storage.
    async fn owner_id(&self) -> Result<String, Error> {
        self.owner
            .get_or_try_init(|| async {
                if !self.backend_uuid.is_empty() {
                    let digest = Sha256::digest(format!("cloudrotate-owner:{}", self.backend_uuid));
                    return Ok(hex::encode(&digest[..8]));
                }
                if let Some(id) = get_json::<String>(self.storage.as_ref(), Self::OWNER_KEY).await?
                {
                    return Ok(id);
                }
                self.ensure_writable().await?;
                let id = marker::new_id();
                put_json(self.storage.as_ref(), Self::OWNER_KEY, &id).await?;
                Ok(id)
            })
            .await
            .cloned()
    }

    /// What to do about a connection whose key the cloud rejected, if it did.
    fn credentials_rejected(&self, connection: &str) -> Option<String> {
        self.rejected
            .lock()
            .expect("rejected lock")
            .get(connection)
            .cloned()
    }

    /// Stops every call through `connection` after the cloud rejected its
    /// key, and records why on the connection, until it is written again.
    /// A rejection of a key the connection no longer holds (a call that
    /// was in flight while rotate-root or a config write replaced it) says
    /// nothing about the current key and is ignored.
    async fn reject_credentials(&self, connection: &str, signed_with: &str, error: &ProviderError) {
        let message = format!(
            "the cloud rejected connection {connection:?}'s access key ({}: {}); if Vault's storage was restored from a snapshot older than the last rotate-root, that key was deleted by it; write the current key to config/{connection}, which resumes the roles using it",
            error.code.as_deref().unwrap_or("no code"),
            error.message
        );
        let _guard = self.locks.lock(&Self::connection_lock(connection)).await;
        let stored = match path_config::load(self, connection).await {
            Ok(Some(stored)) if stored.access_key == signed_with => stored,
            Ok(_) => return,
            Err(err) => {
                tracing::warn!(connection, error = %err, "could not read the connection whose key the cloud rejected");
                return;
            }
        };
        {
            let mut rejected = self.rejected.lock().expect("rejected lock");
            if rejected.contains_key(connection) {
                return;
            }
            rejected.insert(connection.to_owned(), message.clone());
        }
        tracing::warn!(connection, error = %error, "the cloud rejected the connection's access key; no more calls through it until config/<connection> is written");
        let mut stored = stored;
        stored.credentials_rejected = Some(Rejection {
            at: self.clock.now(),
            message,
        });
        if let Err(err) = path_config::store(self, connection, &stored).await {
            tracing::warn!(connection, error = %err, "could not record the rejected access key on the connection");
        }
    }

    fn role_lock(name: &str) -> String {
        format!("role/{name}")
    }

    fn connection_lock(name: &str) -> String {
        format!("config/{name}")
    }

    async fn load_role(&self, name: &str) -> Result<Option<Role>, Error> {
        get_json(
            self.storage.as_ref(),
            &format!("{}{name}", role::STORAGE_PREFIX),
        )
        .await
    }

    async fn save_role(&self, name: &str, role: &Role) -> Result<(), Error> {
        put_json(
            self.storage.as_ref(),
            &format!("{}{name}", role::STORAGE_PREFIX),
            role,
        )
        .await
    }

    async fn delete_role(&self, name: &str) -> Result<(), Error> {
        self.storage
            .delete(&format!("{}{name}", role::STORAGE_PREFIX))
            .await?;
        history::delete(self.storage.as_ref(), name).await?;
        self.index().await?.lock().expect("index lock").remove(name);
        self.timetable.set(Job::Role(name.into()), None);
        Ok(())
    }

    /// Another node wrote or deleted `name` (the host says so on standbys
    /// and secondaries, which serve LIST and keep a schedule ready for
    /// promotion): bring the index and the timetable in line with storage.
    async fn refresh_role(&self, name: &str) -> Result<(), Error> {
        let Some(index) = self.index.get() else {
            // Not loaded yet: the first use reads storage as it is.
            return Ok(());
        };
        let role = self.load_role(name).await?;
        let mut index = index.lock().expect("index lock");
        match role {
            Some(role) => {
                index.insert(name, &role);
                self.timetable
                    .set(Job::Role(name.into()), due_time(&role, self.clock.now()));
            }
            None => {
                index.remove(name);
                self.timetable.set(Job::Role(name.into()), None);
            }
        }
        Ok(())
    }

    /// The index of all roles, loaded from storage on first use; loading
    /// also fills the timetable from the stored due times.
    async fn index(&self) -> Result<&Mutex<Index>, Error> {
        self.index.get_or_try_init(|| self.load_index()).await
    }

    async fn load_index(&self) -> Result<Mutex<Index>, Error> {
        let mut index = Index::default();
        let now = self.clock.now();
        for name in self.storage.list(role::STORAGE_PREFIX).await? {
            let Some(role) = self.load_role(&name).await? else {
                continue;
            };
            index.insert(&name, &role);
            self.timetable
                .set(Job::Role(name.into()), due_time(&role, now));
        }
        for name in self.storage.list(connection::STORAGE_PREFIX).await? {
            if let Some(connection) = path_config::load(self, &name).await? {
                if let Some(rejection) = &connection.credentials_rejected {
                    self.rejected
                        .lock()
                        .expect("rejected lock")
                        .insert(name.clone(), rejection.message.clone());
                }
                let due = if connection.root.in_flight.is_some() {
                    Some(now)
                } else {
                    connection.root.next_rotation
                };
                self.timetable.set(Job::Root(name.into()), due);
            }
        }
        index.shrink_to_fit();
        self.timetable.shrink_to_fit();
        tracing::info!(
            roles = index.len(),
            scheduled = self.timetable.len(),
            "loaded roles"
        );
        Ok(Mutex::new(index))
    }

    async fn roles_using_connection(&self, connection: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .index()
            .await?
            .lock()
            .expect("index lock")
            .roles_using(connection))
    }

    fn schedule_root(&self, connection: &str, due: Option<time::OffsetDateTime>) {
        self.timetable.set(Job::Root(connection.into()), due);
    }

    /// The provider clients of a connection, built once and reused (one
    /// pooled HTTP client and one pacing bucket per connection).
    async fn clients(&self, name: &str) -> Result<Arc<Clients>, Error> {
        if let Some(clients) = self.clients.lock().expect("clients lock").get(name) {
            return Ok(clients.clone());
        }
        let connection = path_config::load(self, name)
            .await?
            .ok_or_else(|| Error::bad_request(format!("connection {name:?} does not exist")))?;
        let clients =
            Arc::new(Clients::build(&connection).map_err(|e| Error::bad_request(e.to_string()))?);
        self.clients
            .lock()
            .expect("clients lock")
            .insert(name.to_owned(), clients.clone());
        Ok(clients)
    }

    fn forget_rejection(&self, connection: &str) {
        self.rejected
            .lock()
            .expect("rejected lock")
            .remove(connection);
    }

    /// After a connection with a rejected key is written again: calls go
    /// through it again, and the roles it stopped try at once.
    async fn resume_after_rejection(&self, connection: &str) -> Result<(), Error> {
        self.forget_rejection(connection);
        let now = self.clock.now();
        for name in self.roles_using_connection(connection).await? {
            let Some(_guard) = self.locks.try_lock(&Self::role_lock(&name)) else {
                continue;
            };
            let Some(mut role) = self.load_role(&name).await? else {
                continue;
            };
            if role.state.stopped_by_rejected_credentials() {
                role.state.next_rotation = Some(now);
                self.save_role(&name, &role).await?;
                self.timetable
                    .set(scheduler::Job::Role(name.into()), role.state.next_rotation);
            }
        }
        Ok(())
    }

    fn forget_clients(&self, connection: &str) {
        self.clients
            .lock()
            .expect("clients lock")
            .remove(connection);
    }

    async fn verify_connection(&self, connection: &Connection) -> Result<(), Error> {
        rotation::cloud::verify(connection).await.map_err(|error| {
            Error::bad_request(format!(
                "the connection failed verification: {error}; fix the credentials or endpoint, or write it with verify_connection=false"
            ))
        })
    }

    /// A password for the role's next rotation: from its policy or the
    /// built-in generator, always fitting the target, never the current one.
    async fn generate_password(&self, role: &Role) -> Result<String, Error> {
        let rules = role.target.rules();
        for _ in 0..10 {
            let candidate = match &role.password_policy {
                Some(policy) => self.system.generate_password_from_policy(policy).await?,
                None => rules.generate(),
            };
            if rules.check(&candidate).is_ok()
                && role.state.password.as_deref() != Some(candidate.as_str())
            {
                return Ok(candidate);
            }
        }
        Err(Error::bad_request(format!(
            "password policy {:?} did not produce a password that fits the target in 10 tries; fix the policy",
            role.password_policy.clone().unwrap_or_default()
        )))
    }

    /// Background work runs only where storage may be written.
    async fn runs_background_work(&self) -> bool {
        let state = self.system.replication_state().await.unwrap_or_default();
        let local = self.system.local_mount().await.unwrap_or(false);
        state.runs_background_work(local)
    }

    /// Refuses work that would reach a cloud on a node that cannot record
    /// it (an OpenBao standby serving a forwarded-later write): the host
    /// forwards a request failing with this error to the active node, so
    /// only the active node ever calls a provider to change anything.
    async fn ensure_writable(&self) -> Result<(), Error> {
        if self.runs_background_work().await {
            Ok(())
        } else {
            Err(StorageError::ReadOnly.into())
        }
    }

    fn stop_runner(&self) {
        if let Some(stop) = self.runner.lock().expect("runner lock").take() {
            let _ = stop.send(true);
        }
    }
}

#[async_trait]
impl Lifecycle for Engine {
    async fn initialize(self: Arc<Self>) -> Result<(), Error> {
        let (stop, stopped) = watch::channel(false);
        if let Some(previous) = self.runner.lock().expect("runner lock").replace(stop) {
            let _ = previous.send(true);
        }
        tokio::spawn(rotation::runner::run(self.clone(), stopped));
        Ok(())
    }

    async fn periodic(self: Arc<Self>) -> Result<(), Error> {
        self.timetable.wake();
        Ok(())
    }

    async fn cleanup(&self) {
        self.stop_runner();
    }

    async fn invalidate(&self, key: &str) {
        if let Some(name) = key.strip_prefix(connection::STORAGE_PREFIX) {
            self.forget_clients(name);
        }
        if let Some(name) = key.strip_prefix(role::STORAGE_PREFIX)
            && let Err(err) = self.refresh_role(name).await
        {
            tracing::warn!(role = name, error = %err, "could not refresh a role another node changed");
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop_runner();
    }
}

/// When a stored role is next due: a rotation left in flight resumes at
/// once.
fn due_time(role: &Role, now: time::OffsetDateTime) -> Option<time::OffsetDateTime> {
    if role.state.in_flight.is_some() {
        Some(role.state.next_rotation.map_or(now, |d| d.min(now)))
    } else {
        role.state.next_rotation
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
pub fn backend(config: BackendConfig, clock: Arc<dyn Clock>) -> Framework<Engine> {
    let tuning = Tuning::from_options(&config.config);
    Framework {
        state: Arc::new(Engine::new(
            config.storage,
            config.system,
            clock,
            tuning,
            config.backend_uuid,
        )),
        info: info(),
        paths: paths(),
        secrets: path_creds::secret_types(),
        special_paths: SpecialPaths {
            seal_wrap_storage: vec!["config/".into(), "role/".into()],
            ..SpecialPaths::default()
        },
    }
}

/// Builds the backend for one mount.
pub fn factory(config: BackendConfig) -> Result<Arc<dyn Backend>, Error> {
    Ok(Arc::new(backend(config, Arc::new(SystemClock))))
}
