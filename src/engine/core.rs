//! The engine's state for one mount: its store, the host's system view,
//! the clock and tuning, and the background runner's stop switch. Paths
//! and the rotation machinery work through it; it knows neither.

use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::sync::{OnceCell, watch};

use crate::framework::{Error, Storage, StorageError, SystemView, get_json, put_json};

use super::calls;
use super::clock::Clock;
use super::cloud::Cloud;
use super::connection::{Connection, Provider};
use super::marker;
use super::password::{self, Rules};
use super::role::Role;
use super::store::{LockKey, Store};
use super::tuning::Tuning;

/// How many passwords a policy must generate, all fitting the target, to be
/// accepted.
const POLICY_SAMPLES: usize = 20;

pub struct Engine {
    pub store: Store,
    pub system: Arc<dyn SystemView>,
    pub clock: Arc<dyn Clock>,
    pub tuning: Tuning,
    /// This mount's id in ownership markers.
    owner: OnceCell<String>,
    /// The key borrowers' tokens are hashed with (library check-outs).
    borrower_key: OnceCell<Vec<u8>>,
    backend_uuid: String,
    runner: Mutex<Option<watch::Sender<bool>>>,
}

impl Engine {
    /// Where the owner id is kept when the host gives no mount UUID.
    const OWNER_KEY: &'static str = "owner";

    pub fn new(
        storage: Arc<dyn Storage>,
        system: Arc<dyn SystemView>,
        clock: Arc<dyn Clock>,
        cloud: Arc<dyn Cloud>,
        tuning: Tuning,
        backend_uuid: String,
    ) -> Self {
        Self {
            store: Store::new(storage, clock.clone(), cloud),
            system,
            clock,
            tuning,
            owner: OnceCell::new(),
            borrower_key: OnceCell::new(),
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
    pub async fn owner_id(&self) -> Result<String, Error> {
        self.owner
            .get_or_try_init(|| async {
                if !self.backend_uuid.is_empty() {
                    let digest = Sha256::digest(format!("cloudrotate-owner:{}", self.backend_uuid));
                    return Ok(hex::encode(&digest[..8]));
                }
                let storage = self.store.storage.as_ref();
                if let Some(id) = get_json::<String>(storage, Self::OWNER_KEY).await? {
                    return Ok(id);
                }
                self.ensure_writable().await?;
                let id = marker::new_id();
                put_json(storage, Self::OWNER_KEY, &id).await?;
                Ok(id)
            })
            .await
            .cloned()
    }

    /// The mount's random key for hashing the tokens of library borrowers,
    /// made on first use and kept in storage (`borrower-key`), so a check-in
    /// after a restart still recognises its borrower. Never shown.
    pub async fn borrower_key(&self) -> Result<Vec<u8>, Error> {
        self.borrower_key
            .get_or_try_init(|| async {
                let storage = self.store.storage.as_ref();
                if let Some(key) = get_json::<String>(storage, super::library::BORROWER_KEY).await?
                    && let Ok(bytes) = hex::decode(&key)
                    && !bytes.is_empty()
                {
                    return Ok(bytes);
                }
                self.ensure_writable().await?;
                let key: [u8; 32] = rand::random();
                put_json(storage, super::library::BORROWER_KEY, &hex::encode(key)).await?;
                Ok(key.to_vec())
            })
            .await
            .cloned()
    }

    /// After a connection with a rejected key is written again: calls go
    /// through it again, and the roles it stopped try at once.
    pub async fn resume_after_rejection(&self, connection: &str) -> Result<(), Error> {
        self.store.forget_rejection(connection);
        let now = self.clock.now();
        for name in self.store.roles_using_connection(connection).await? {
            let Some(_guard) = self.store.try_lock(LockKey::Role(&name)) else {
                continue;
            };
            let Some(mut role) = self.store.load_role(&name).await? else {
                continue;
            };
            if role.state.stopped_by_rejected_credentials() {
                role.state.next_rotation = Some(now);
                self.store.commit_role(&name, &role).await?;
            }
        }
        Ok(())
    }

    pub async fn verify_connection(&self, connection: &Connection) -> Result<(), Error> {
        calls::verify(&self.store, connection)
            .await
            .map_err(|error| {
                Error::bad_request(format!(
                    "the connection failed verification: {error}; fix the credentials or endpoint, or write it with verify_connection=false"
                ))
            })
    }

    /// Connection `name` exists, is a `provider` connection (which `what`
    /// needs, e.g. "dcs-instance targets") and allows `role`.
    pub async fn check_connection(
        &self,
        name: &str,
        provider: Provider,
        what: &str,
        role: &str,
    ) -> Result<(), Error> {
        // A name no config/ path can take ("." or "a/b") is no storage key
        // either: the host refuses it with a 500.
        crate::framework::validate_name(name).map_err(|why| {
            Error::bad_request(format!("connection: {why} (the name of a config/:name)"))
        })?;
        let connection = self.store.load_connection(name).await?.ok_or_else(|| {
            Error::bad_request(format!(
                "connection {name:?} does not exist (write config/{name} first)"
            ))
        })?;
        if connection.provider != provider {
            return Err(Error::bad_request(format!(
                "{what} need a {} connection; {name:?} is {}",
                provider.as_str(),
                connection.provider.as_str()
            )));
        }
        if !connection.allows_role(role) {
            return Err(Error::bad_request(format!(
                "connection {name:?} does not allow role {role:?}: add it (or a glob matching it) to the connection's allowed_roles"
            )));
        }
        Ok(())
    }

    /// Password policy `policy` generates passwords that fit `rules`, in
    /// every one of a few samples.
    pub async fn check_policy(&self, policy: &str, rules: Rules) -> Result<(), Error> {
        for _ in 0..POLICY_SAMPLES {
            let sample = self
                .system
                .generate_password_from_policy(policy)
                .await
                .map_err(|err| {
                    Error::bad_request(format!(
                        "password policy {policy:?} cannot generate passwords: {err}"
                    ))
                })?;
            if let Err(problem) = rules.check(&sample) {
                return Err(Error::bad_request(format!(
                    "password policy {policy:?} generates passwords the target rejects: {problem}; fix the policy or drop password_policy to use the built-in generator"
                )));
            }
        }
        Ok(())
    }

    /// A password for the role's next rotation: from its policy or the
    /// built-in generator, always fitting the target, never the current one.
    pub async fn generate_password(&self, role: &Role) -> Result<String, Error> {
        let rules = role.target.rules();
        for _ in 0..10 {
            let candidate = match &role.password_policy {
                Some(policy) => self.system.generate_password_from_policy(policy).await?,
                None => rules.generate(),
            };
            if fits(role, &candidate) {
                return Ok(candidate);
            }
        }
        Err(Error::bad_request(format!(
            "password policy {:?} did not produce a password that fits the target in 10 tries; fix the policy",
            role.password_policy.clone().unwrap_or_default()
        )))
    }

    /// Background work runs only where storage may be written.
    pub async fn runs_background_work(&self) -> bool {
        let state = self.system.replication_state().await.unwrap_or_default();
        let local = self.system.local_mount().await.unwrap_or(false);
        state.runs_background_work(local)
    }

    /// Refuses work that would reach a cloud on a node that cannot record
    /// it (an OpenBao standby serving a forwarded-later write): the host
    /// forwards a request failing with this error to the active node, so
    /// only the active node ever calls a provider to change anything.
    pub async fn ensure_writable(&self) -> Result<(), Error> {
        if self.runs_background_work().await {
            Ok(())
        } else {
            Err(StorageError::ReadOnly.into())
        }
    }

    /// Installs the stop switch of a newly started runner, stopping the
    /// previous one.
    pub fn replace_runner(&self, stop: watch::Sender<bool>) {
        if let Some(previous) = self.runner.lock().expect("runner lock").replace(stop) {
            let _ = previous.send(true);
        }
    }

    pub fn stop_runner(&self) {
        if let Some(stop) = self.runner.lock().expect("runner lock").take() {
            let _ = stop.send(true);
        }
    }
}

/// Whether a generated `candidate` can be the role's next password: it
/// fits the target and is not the current one; on a dual role it is not
/// the inactive account's either (a DTS job pinned to it refuses the
/// password it holds) and, on DCS, contains neither account's name
/// forwards or backwards (the ACL password rule).
fn fits(role: &Role, candidate: &str) -> bool {
    let state = &role.state;
    role.target.rules().check(candidate).is_ok()
        && state.password.as_deref() != Some(candidate)
        && !(role.is_dual() && state.last_password.as_deref() == Some(candidate))
        && !(role.uses_acl_accounts()
            && role
                .usernames
                .iter()
                .chain(role.username.iter())
                .any(|name| password::check_account_name(name, candidate).is_err()))
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop_runner();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::role::{RoleKind, Target};

    fn role(target: Target, dual: bool) -> Role {
        let mut role = Role::new(RoleKind::Static, target);
        if dual {
            role.usernames = vec!["app_a".into(), "app_b".into()];
        } else {
            role.username = Some("app_a".into());
        }
        role.state.password = Some("Current-pass-1".into());
        role.state.last_password = Some("Inactive-pass-1".into());
        role
    }

    #[test]
    fn a_generated_password_avoids_what_the_accounts_and_jobs_refuse() {
        let polardb = || Target::PolardbAccount {
            connection: "ali".into(),
            cluster_id: "pc-1".into(),
        };
        let dcs = || Target::DcsInstance {
            connection: "hw".into(),
            instance_id: "dcs-1".into(),
        };
        // (target, dual, candidate, fits)
        let cases = [
            (polardb(), false, "Fresh-pass-12", true),
            (polardb(), false, "Current-pass-1", false),
            (polardb(), false, "Inactive-pass-1", true),
            (polardb(), true, "Current-pass-1", false),
            (polardb(), true, "Inactive-pass-1", false),
            (polardb(), true, "Xapp_a-pass-12", true),
            (dcs(), false, "Xapp_a-pass-12", true),
            (dcs(), true, "Xapp_a-pass-12", false),
            (dcs(), true, "XB_PPA-pass-12", false),
            (dcs(), true, "Inactive-pass-1", false),
            (dcs(), true, "Fresh-pass-12", true),
        ];
        for (target, dual, candidate, expected) in &cases {
            let role = role(target.clone(), *dual);
            assert_eq!(
                fits(&role, candidate),
                *expected,
                "{} dual={dual} {candidate}",
                target.kind().as_str()
            );
        }
        assert_eq!(cases.len(), 11);
        // A library set's ACL account: the ACL rule for its one name.
        let mut acl = role(dcs(), false);
        acl.acl_account = true;
        assert!(!fits(&acl, "Xapp_a-pass-12"));
        assert!(fits(&acl, "Fresh-pass-12"));
    }
}
