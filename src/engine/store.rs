//! The one place roles and connections are read and written, with what the
//! engine keeps in memory about them: the role index, the timetable, the
//! open cloud sessions and the rejected keys. Committing a role writes it
//! and reschedules it (and re-indexes it when its settings changed);
//! committing a connection drops its session; `refresh` brings memory in
//! line after another node wrote a key.

// Provider errors are large (request ids, codes) and rare; see providers.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;
use tokio::sync::{OnceCell, OwnedMutexGuard};

use crate::framework::{Error, Storage, get_json, put_json};
use crate::providers::ProviderError;

use super::clock::Clock;
use super::cloud::{Cloud, Session};
use super::connection::{self, Connection};
use super::history;
use super::index::Index;
use super::locks::KeyedLocks;
use super::role::{self, Role};
use super::scheduler::{Job, Timetable};

/// What a lock serialises.
#[derive(Debug, Clone, Copy)]
pub enum LockKey<'a> {
    /// Everything that changes the role: rotations, writes, check-outs.
    Role(&'a str),
    /// The connection's record, its key rotation, and every role write
    /// that names it (so a role never lands on a deleted connection).
    Connection(&'a str),
    /// Writes that change which role owns which resource.
    Roles,
}

impl LockKey<'_> {
    fn key(self) -> String {
        match self {
            Self::Role(name) => format!("{}{name}", role::STORAGE_PREFIX),
            Self::Connection(name) => format!("{}{name}", connection::STORAGE_PREFIX),
            Self::Roles => "roles".into(),
        }
    }
}

pub struct Store {
    pub storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    cloud: Arc<dyn Cloud>,
    locks: KeyedLocks,
    index: OnceCell<Mutex<Index>>,
    pub timetable: Timetable,
    sessions: Mutex<HashMap<String, Arc<dyn Session>>>,
    /// Connections whose access key the cloud rejected, with what to do.
    rejected: Mutex<HashMap<String, String>>,
}

fn role_key(name: &str) -> String {
    format!("{}{name}", role::STORAGE_PREFIX)
}

fn connection_key(name: &str) -> String {
    format!("{}{name}", connection::STORAGE_PREFIX)
}

/// When a stored role is next due: a rotation left in flight (by a crash,
/// or on another node) resumes at once.
fn due_time(role: &Role, now: OffsetDateTime) -> Option<OffsetDateTime> {
    if role.state.in_flight.is_some() {
        Some(role.state.next_rotation.map_or(now, |d| d.min(now)))
    } else {
        role.state.next_rotation
    }
}

/// When a stored connection's key rotation is next due.
fn root_due_time(connection: &Connection, now: OffsetDateTime) -> Option<OffsetDateTime> {
    if connection.root.in_flight.is_some() {
        Some(now)
    } else {
        connection.root.next_rotation
    }
}

impl Store {
    pub fn new(storage: Arc<dyn Storage>, clock: Arc<dyn Clock>, cloud: Arc<dyn Cloud>) -> Self {
        Self {
            storage,
            clock,
            cloud,
            locks: KeyedLocks::default(),
            index: OnceCell::new(),
            timetable: Timetable::default(),
            sessions: Mutex::new(HashMap::new()),
            rejected: Mutex::new(HashMap::new()),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub async fn lock(&self, key: LockKey<'_>) -> OwnedMutexGuard<()> {
        self.locks.lock(&key.key()).await
    }

    /// `None` when someone else holds the lock.
    pub fn try_lock(&self, key: LockKey<'_>) -> Option<OwnedMutexGuard<()>> {
        self.locks.try_lock(&key.key())
    }

    /// Locks every connection in `names`, in sorted order (so two writers
    /// never wait on each other).
    pub async fn lock_connections(&self, names: &[&str]) -> Vec<OwnedMutexGuard<()>> {
        let mut sorted = names.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut guards = Vec::with_capacity(sorted.len());
        for name in sorted {
            guards.push(self.lock(LockKey::Connection(name)).await);
        }
        guards
    }

    pub async fn load_role(&self, name: &str) -> Result<Option<Role>, Error> {
        get_json(self.storage.as_ref(), &role_key(name)).await
    }

    /// Writes the role, schedules its next run as its state says, and
    /// re-indexes it if what it claims or uses changed.
    pub async fn commit_role(&self, name: &str, role: &Role) -> Result<(), Error> {
        put_json(self.storage.as_ref(), &role_key(name), role).await?;
        self.index()
            .await?
            .lock()
            .expect("index lock")
            .insert(name, role);
        self.timetable
            .set(Job::Role(name.into()), role.state.next_rotation);
        Ok(())
    }

    pub async fn delete_role(&self, name: &str) -> Result<(), Error> {
        self.storage.delete(&role_key(name)).await?;
        history::delete(self.storage.as_ref(), name).await?;
        self.index().await?.lock().expect("index lock").remove(name);
        self.timetable.set(Job::Role(name.into()), None);
        Ok(())
    }

    pub async fn load_connection(&self, name: &str) -> Result<Option<Connection>, Error> {
        get_json(self.storage.as_ref(), &connection_key(name)).await
    }

    /// Writes the connection, drops its session (the next call signs with
    /// what was written) and schedules its key rotation.
    pub async fn commit_connection(
        &self,
        name: &str,
        connection: &Connection,
    ) -> Result<(), Error> {
        put_json(self.storage.as_ref(), &connection_key(name), connection).await?;
        self.forget_session(name);
        self.timetable
            .set(Job::Root(name.into()), connection.root.next_rotation);
        Ok(())
    }

    pub async fn delete_connection(&self, name: &str) -> Result<(), Error> {
        self.storage.delete(&connection_key(name)).await?;
        self.forget_session(name);
        self.forget_rejection(name);
        self.timetable.set(Job::Root(name.into()), None);
        Ok(())
    }

    pub async fn list_connections(&self) -> Result<Vec<String>, Error> {
        Ok(self.storage.list(connection::STORAGE_PREFIX).await?)
    }

    /// Another node wrote or deleted `key` (the host says so on standbys
    /// and secondaries, which serve LIST and keep a schedule ready for
    /// promotion): bring memory in line with storage.
    pub async fn refresh(&self, key: &str) -> Result<(), Error> {
        if let Some(name) = key.strip_prefix(connection::STORAGE_PREFIX) {
            self.forget_session(name);
            return Ok(());
        }
        let Some(name) = key.strip_prefix(role::STORAGE_PREFIX) else {
            return Ok(());
        };
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
    /// also fills the timetable and the rejected keys.
    pub async fn index(&self) -> Result<&Mutex<Index>, Error> {
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
        for name in self.list_connections().await? {
            let Some(connection) = self.load_connection(&name).await? else {
                continue;
            };
            if let Some(rejection) = &connection.credentials_rejected {
                self.rejected
                    .lock()
                    .expect("rejected lock")
                    .insert(name.clone(), rejection.message.clone());
            }
            self.timetable
                .set(Job::Root(name.into()), root_due_time(&connection, now));
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

    pub async fn roles_using_connection(&self, connection: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .index()
            .await?
            .lock()
            .expect("index lock")
            .roles_using(connection))
    }

    /// The session of a connection, opened once and reused (one pooled
    /// HTTP client and one pacing bucket per connection).
    pub async fn session(&self, name: &str) -> Result<Arc<dyn Session>, SessionError> {
        if let Some(session) = self.sessions.lock().expect("sessions lock").get(name) {
            return Ok(session.clone());
        }
        let connection = self
            .load_connection(name)
            .await
            .map_err(SessionError::Storage)?
            .ok_or_else(|| SessionError::Missing(name.to_owned()))?;
        let session = self.cloud.open(&connection).map_err(SessionError::Cloud)?;
        self.sessions
            .lock()
            .expect("sessions lock")
            .insert(name.to_owned(), session.clone());
        Ok(session)
    }

    /// A session signing with a connection that is not stored (yet): a
    /// write being verified, a new key being tried.
    pub fn open(&self, connection: &Connection) -> Result<Arc<dyn Session>, ProviderError> {
        self.cloud.open(connection)
    }

    fn forget_session(&self, connection: &str) {
        self.sessions
            .lock()
            .expect("sessions lock")
            .remove(connection);
    }

    /// What to do about a connection whose key the cloud rejected, if it did.
    pub fn rejection(&self, connection: &str) -> Option<String> {
        self.rejected
            .lock()
            .expect("rejected lock")
            .get(connection)
            .cloned()
    }

    /// Records a rejection; `false` if one was recorded already.
    pub fn note_rejection(&self, connection: &str, message: &str) -> bool {
        let mut rejected = self.rejected.lock().expect("rejected lock");
        if rejected.contains_key(connection) {
            return false;
        }
        rejected.insert(connection.to_owned(), message.to_owned());
        true
    }

    pub fn forget_rejection(&self, connection: &str) {
        self.rejected
            .lock()
            .expect("rejected lock")
            .remove(connection);
    }
}

/// Why no session could be had for a connection.
#[derive(Debug)]
pub enum SessionError {
    /// Storage failed, or this node cannot read it now: nothing was sent.
    Storage(Error),
    /// The connection does not exist.
    Missing(String),
    /// The connection cannot be used (bad endpoint, bad CA certificate).
    Cloud(ProviderError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ManualClock;
    use crate::engine::cloud::fake::FakeCloud;
    use crate::engine::role::{RoleKind, Target};
    use crate::framework::MemoryStorage;
    use time::macros::datetime;

    /// A node that serves reads but does not write (a standby) hears of
    /// another node's writes only through `invalidate`: the role appears
    /// in its list and its schedule, and leaves both when deleted.
    async fn listed(store: &Store) -> Vec<String> {
        store
            .index()
            .await
            .unwrap()
            .lock()
            .unwrap()
            .names(RoleKind::Static)
    }

    #[tokio::test]
    async fn a_role_written_by_another_node_is_listed_and_scheduled_after_refresh() {
        let now = datetime!(2026-12-07 10:00 UTC);
        let storage = Arc::new(MemoryStorage::default());
        let store = Store::new(
            storage.clone(),
            Arc::new(ManualClock::new(now)),
            Arc::new(FakeCloud::default()),
        );
        assert!(listed(&store).await.is_empty());
        let mut role = Role::new(RoleKind::Static, Target::External);
        let due = now + time::Duration::hours(1);
        role.state.next_rotation = Some(due);
        put_json(storage.as_ref(), "role/app", &role).await.unwrap();
        assert!(
            listed(&store).await.is_empty(),
            "nothing told this node yet"
        );
        store.refresh("role/app").await.unwrap();
        assert_eq!(listed(&store).await, ["app"]);
        assert_eq!(store.timetable.due_at(&Job::Role("app".into())), Some(due));
        storage.delete("role/app").await.unwrap();
        store.refresh("role/app").await.unwrap();
        assert!(listed(&store).await.is_empty());
        assert_eq!(store.timetable.due_at(&Job::Role("app".into())), None);
    }
}
