//! `rotate-root`: replace the connection's own access key using the
//! two-keys-per-user limit: create a second key, verify it works, store it,
//! delete the old one. Each step is recorded first, so a crash resumes;
//! a key whose creation answer was lost (its secret unknown) is deleted.

use std::sync::Arc;

use crate::framework::Error;
use crate::providers::{ErrorClass, ProviderError};

use super::super::calls;
use super::super::clock::rfc3339;
use super::super::connection::{Connection, RootPhase, RootRotation};
use super::super::core::Engine;
use super::super::role::Trigger;
use super::super::scheduler::Job;
use super::super::store::LockKey;

/// How many times a fresh key is tried before the attempt counts as failed
/// (clouds take a moment to accept a new key everywhere). Huawei locks an
/// access key for 5 minutes after 5 authentication failures in a row, so a
/// new key never gets more than 3.
const VERIFY_TRIES: u32 = 3;

/// The wait before try `n + 1` (n from 1): 1 s, then 2 s, so the key has
/// three seconds to spread before its last try.
fn verify_spacing(tries_made: u32) -> std::time::Duration {
    std::time::Duration::from_secs(u64::from(tries_made))
}

pub enum RootOutcome {
    Rotated { access_key: String },
    Retrying { message: String },
    Failed { message: String },
}

/// Scheduled rotation of a connection's key, if it is due.
pub async fn run_due(engine: &Arc<Engine>, name: &str) -> Result<(), Error> {
    let Some(_guard) = engine.store.try_lock(LockKey::Connection(name)) else {
        return Ok(());
    };
    let Some(connection) = engine.store.load_connection(name).await? else {
        engine.store.timetable.set(Job::Root(name.into()), None);
        return Ok(());
    };
    let due = connection
        .root
        .next_rotation
        .is_some_and(|due| due <= engine.clock.now());
    if due || connection.root.in_flight.is_some() {
        run(engine, name, Trigger::Schedule).await?;
    }
    Ok(())
}

/// Runs or resumes a root rotation. The caller holds the connection lock.
pub async fn run(engine: &Arc<Engine>, name: &str, trigger: Trigger) -> Result<RootOutcome, Error> {
    engine.ensure_writable().await?;
    let mut connection = engine
        .store
        .load_connection(name)
        .await?
        .ok_or_else(|| Error::bad_request(format!("connection {name:?} does not exist")))?;
    let Some(user) = connection.iam_user.clone() else {
        return Err(Error::bad_request(format!(
            "connection {name:?} has no iam_user: set it to the RAM user name (alicloud) or IAM user id (huaweicloud) that owns access key {}",
            connection.access_key
        )));
    };
    if connection.security_token.is_some() {
        return Err(Error::bad_request(
            "temporary credentials (security_token) cannot be rotated: they expire on their own",
        ));
    }
    if connection.root.in_flight.is_none() {
        let keys = match list_access_keys(engine, name, &connection, &user).await {
            Ok(keys) => keys,
            Err(error) => return failed(engine, name, &mut connection, &error).await,
        };
        if !keys.contains(&connection.access_key) {
            return Err(Error::bad_request(format!(
                "access key {} is not one of {user:?}'s keys ({}): iam_user must name the key's owner",
                connection.access_key,
                keys.join(", ")
            )));
        }
        if keys.len() >= 2 {
            let other: Vec<&String> = keys
                .iter()
                .filter(|k| **k != connection.access_key)
                .collect();
            return Err(Error::bad_request(format!(
                "{user:?} already has two access keys, the most a user may have; delete the unused key {} first",
                other
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        connection.root.in_flight = Some(RootRotation {
            started_at: engine.clock.now(),
            trigger,
            old_access_key: connection.access_key.clone(),
            keys_before: keys,
            phase: RootPhase::Creating,
        });
        engine.store.commit_connection(name, &connection).await?;
    }
    loop {
        let flight = connection
            .root
            .in_flight
            .clone()
            .expect("a root rotation in flight");
        match flight.phase {
            RootPhase::Creating => {
                if let Err(error) = delete_orphans(engine, name, &connection, &user, &flight).await
                {
                    return failed(engine, name, &mut connection, &error).await;
                }
                let created = async {
                    calls::key_session(&engine.store, name, &connection)
                        .await?
                        .create_access_key(&user)
                        .await
                }
                .await;
                let created = match created {
                    Ok(created) => created,
                    Err(error) => return failed(engine, name, &mut connection, &error).await,
                };
                set_phase(
                    &mut connection,
                    RootPhase::Created {
                        access_key: created.0,
                        secret_key: created.1,
                    },
                );
                engine.store.commit_connection(name, &connection).await?;
            }
            RootPhase::Created {
                access_key,
                secret_key,
            } => {
                let mut candidate = connection.clone();
                candidate.access_key = access_key.clone();
                candidate.secret_key = secret_key.clone();
                if let Err(error) = verify_new_key(engine, &candidate).await {
                    return failed(engine, name, &mut connection, &error).await;
                }
                connection.access_key = access_key;
                connection.secret_key = secret_key;
                set_phase(&mut connection, RootPhase::Swapped);
                engine.store.commit_connection(name, &connection).await?;
            }
            RootPhase::Swapped => {
                match delete_key(engine, name, &connection, &user, &flight.old_access_key).await {
                    Ok(()) => {}
                    Err(error) if error.is_not_found() => {}
                    Err(error) => return failed(engine, name, &mut connection, &error).await,
                }
                let now = engine.clock.now();
                connection.root.in_flight = None;
                connection.root.last_rotation = Some(now);
                connection.root.last_error = None;
                connection.root.failures = 0;
                connection.root.next_rotation = connection.schedule.next_after(Some(now), now);
                engine.store.commit_connection(name, &connection).await?;
                tracing::info!(
                    connection = name,
                    trigger = flight.trigger.as_str(),
                    "rotated the connection's access key"
                );
                return Ok(RootOutcome::Rotated {
                    access_key: connection.access_key,
                });
            }
        }
    }
}

fn set_phase(connection: &mut Connection, phase: RootPhase) {
    if let Some(flight) = connection.root.in_flight.as_mut() {
        flight.phase = phase;
    }
}

/// Keys that appeared after the rotation started but are not recorded are
/// ours from a creation whose answer was lost: nobody has their secret.
async fn delete_orphans(
    engine: &Engine,
    name: &str,
    connection: &Connection,
    user: &str,
    flight: &RootRotation,
) -> Result<(), ProviderError> {
    let keys = list_access_keys(engine, name, connection, user).await?;
    for key in keys.iter().filter(|key| !flight.keys_before.contains(key)) {
        tracing::warn!(access_key = %key, "deleting an access key created by an interrupted rotation");
        match delete_key(engine, name, connection, user, key).await {
            Ok(()) => {}
            Err(error) if error.is_not_found() => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

async fn list_access_keys(
    engine: &Engine,
    name: &str,
    connection: &Connection,
    user: &str,
) -> Result<Vec<String>, ProviderError> {
    calls::key_session(&engine.store, name, connection)
        .await?
        .list_access_keys(user)
        .await
}

async fn delete_key(
    engine: &Engine,
    name: &str,
    connection: &Connection,
    user: &str,
    key: &str,
) -> Result<(), ProviderError> {
    calls::key_session(&engine.store, name, connection)
        .await?
        .delete_access_key(user, key)
        .await
}

async fn verify_new_key(engine: &Engine, candidate: &Connection) -> Result<(), ProviderError> {
    let mut tries = 1;
    loop {
        match calls::verify(&engine.store, candidate).await {
            Ok(()) => return Ok(()),
            Err(error) if tries >= VERIFY_TRIES => return Err(error),
            Err(_) => {
                tokio::time::sleep(verify_spacing(tries)).await;
                tries += 1;
            }
        }
    }
}

async fn failed(
    engine: &Arc<Engine>,
    name: &str,
    connection: &mut Connection,
    error: &ProviderError,
) -> Result<RootOutcome, Error> {
    let now = engine.clock.now();
    let root = &mut connection.root;
    root.failures += 1;
    root.last_error = Some(format!("{}: {error}", rfc3339(now)));
    let gave_up = root.failures >= engine.tuning.max_failures;
    root.next_rotation = if gave_up {
        root.failures = 0;
        connection.schedule.next_after(Some(now), now)
    } else if connection.schedule.is_automatic() || root.in_flight.is_some() {
        Some(
            now + engine
                .tuning
                .backoff(root.failures)
                .max(error.retry_after.unwrap_or_default()),
        )
    } else {
        None
    };
    engine.store.commit_connection(name, connection).await?;
    let message = error.to_string();
    tracing::warn!(connection = name, error = %message, "access key rotation failed");
    Ok(match (gave_up, error.class) {
        (false, ErrorClass::Retryable | ErrorClass::OutcomeUnknown) => {
            RootOutcome::Retrying { message }
        }
        _ => RootOutcome::Failed { message },
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::engine::ManualClock;
    use crate::engine::cloud::fake::{FakeCloud, Op};
    use crate::engine::connection::Provider;
    use crate::engine::store::LockKey;
    use crate::engine::tuning::Tuning;
    use crate::framework::{MemoryStorage, StaticSystemView};
    use crate::providers::{ErrorKind, Service};

    /// rotate-root runs under the connection's lock; a rejected key must
    /// end it as a failure, not wait for that lock to note the rejection.
    #[tokio::test]
    async fn a_rejected_key_during_rotate_root_fails_it_without_waiting_on_its_own_lock() {
        let cloud = FakeCloud::default();
        let engine = Arc::new(Engine::new(
            Arc::new(MemoryStorage::default()),
            Arc::new(StaticSystemView::default()),
            Arc::new(ManualClock::new(
                time::macros::datetime!(2026-12-07 10:00 UTC),
            )),
            Arc::new(cloud.clone()),
            Tuning::default(),
            "uuid".into(),
        ));
        let mut connection = Connection::new(Provider::Alicloud);
        connection.access_key = "AK".into();
        connection.iam_user = Some("vault".into());
        engine
            .store
            .commit_connection("c1", &connection)
            .await
            .unwrap();
        cloud.fail(
            Op::ListAccessKeys,
            ProviderError::new(
                ErrorClass::Permanent,
                ErrorKind::Auth,
                Service::Ram,
                "ListAccessKeys",
                "InvalidAccessKeyId.NotFound",
                &[],
            ),
            false,
        );
        let _guard = engine.store.lock(LockKey::Connection("c1")).await;
        let outcome =
            tokio::time::timeout(Duration::from_secs(5), run(&engine, "c1", Trigger::Manual))
                .await
                .expect("rotate-root returned instead of waiting on the lock it holds")
                .unwrap();
        assert!(
            matches!(outcome, RootOutcome::Failed { ref message } if message.contains("InvalidAccessKeyId")),
            "{}",
            match outcome {
                RootOutcome::Failed { message } | RootOutcome::Retrying { message } => message,
                RootOutcome::Rotated { access_key } => access_key,
            }
        );
    }
}
