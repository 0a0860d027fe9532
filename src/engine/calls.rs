//! The engine's calls to the clouds, over the sessions the store keeps:
//! a connection whose key the cloud rejected sends nothing more until it
//! is written again (Huawei locks an AK/SK after 5 failures), dependents
//! are grouped per connection (so DRS changes go in batches), and a
//! session that cannot be had keeps the class of why (a storage error is
//! retryable, a missing connection is for the operator to fix).

// Provider errors are large (request ids, codes) and rare; see providers.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::providers::{ErrorClass, ErrorKind, ProviderError, Service};

use super::cloud::{AccountInfo, ChangeMethod, JobState, Session, TargetState};
use super::connection::{Connection, Rejection};
use super::role::{Dependent, Role, Target};
use super::store::{LockKey, SessionError, Store};

/// The code of a call refused before it was sent because the connection's
/// key was rejected earlier.
const NOT_SENT: &str = "NotSent.CredentialsRejected";

fn session_error(service: Service, error: SessionError) -> ProviderError {
    match error {
        SessionError::Storage(error) => ProviderError::new(
            ErrorClass::Retryable,
            ErrorKind::Connect,
            service,
            "connect",
            &error.to_string(),
            &[],
        ),
        SessionError::Missing(name) => ProviderError::config(
            service,
            "connect",
            &format!("connection {name:?} does not exist"),
        ),
        SessionError::Cloud(error) => error,
    }
}

/// A connection's session, unless the cloud rejected its key.
async fn session(
    store: &Store,
    connection: &str,
    service: Service,
) -> Result<Arc<dyn Session>, ProviderError> {
    if let Some(rejection) = store.rejection(connection) {
        return Err(ProviderError::new(
            ErrorClass::Permanent,
            ErrorKind::Auth,
            service,
            "connect",
            &rejection,
            &[],
        )
        .with_code(Some(NOT_SENT.to_owned())));
    }
    store
        .session(connection)
        .await
        .map_err(|error| session_error(service, error))
}

/// Runs `call` with the connection's session; an authentication failure
/// marks the key it was signed with rejected, which stops every call
/// through the connection.
async fn with_session<T, F, Fut>(
    store: &Store,
    connection: &str,
    service: Service,
    call: F,
) -> Result<T, ProviderError>
where
    F: FnOnce(Arc<dyn Session>) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let session = session(store, connection, service).await?;
    let signed_with = session.access_key_id().to_owned();
    let result = call(session).await;
    if let Err(error) = &result {
        noted(store, connection, &signed_with, error).await;
    }
    result
}

async fn noted(store: &Store, connection: &str, signed_with: &str, error: &ProviderError) {
    if error.kind == ErrorKind::Auth && error.code.as_deref() != Some(NOT_SENT) {
        reject_credentials(store, connection, signed_with, error).await;
    }
}

/// Stops every call through `connection` after the cloud rejected its
/// key, and records why on the connection, until it is written again. A
/// rejection of a key the connection no longer holds (a call that was in
/// flight while rotate-root or a config write replaced it) says nothing
/// about the current key and is ignored.
async fn reject_credentials(
    store: &Store,
    connection: &str,
    signed_with: &str,
    error: &ProviderError,
) {
    let message = format!(
        "the cloud rejected connection {connection:?}'s access key ({}: {}); if Vault's storage was restored from a snapshot older than the last rotate-root, that key was deleted by it; write the current key to config/{connection}, which resumes the roles using it",
        error.code.as_deref().unwrap_or("no code"),
        error.message
    );
    let _guard = store.lock(LockKey::Connection(connection)).await;
    let mut stored = match store.load_connection(connection).await {
        Ok(Some(stored)) if stored.access_key == signed_with => stored,
        Ok(_) => return,
        Err(err) => {
            tracing::warn!(connection, error = %err, "could not read the connection whose key the cloud rejected");
            return;
        }
    };
    if !store.note_rejection(connection, &message) {
        return;
    }
    tracing::warn!(connection, error = %error, "the cloud rejected the connection's access key; no more calls through it until config/<connection> is written");
    stored.credentials_rejected = Some(Rejection {
        at: store.now(),
        message,
    });
    if let Err(err) = store.commit_connection(connection, &stored).await {
        tracing::warn!(connection, error = %err, "could not record the rejected access key on the connection");
    }
}

fn target_service(target: &Target) -> Service {
    match target {
        Target::DcsInstance { .. } => Service::Dcs,
        _ => Service::Polardb,
    }
}

fn dependent_service(dependent: &Dependent) -> Service {
    match dependent {
        Dependent::Dts { .. } => Service::Dts,
        Dependent::Drs { .. } => Service::Drs,
    }
}

/// Runs `call` with the session of `target`'s connection; `None` for an
/// external target, which has no cloud to call.
async fn with_target<T, F, Fut>(
    store: &Store,
    target: &Target,
    call: F,
) -> Option<Result<T, ProviderError>>
where
    F: FnOnce(Arc<dyn Session>) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let connection = target.connection()?;
    Some(with_session(store, connection, target_service(target), call).await)
}

/// The target's status and description as account `username` sees it (a
/// PolarDB account's own; a DCS instance's, whatever the account),
/// coalesced with the reads of other rotations on the same connection.
/// `None` for external targets.
pub async fn read_target(
    store: &Store,
    role: &Role,
    username: &str,
) -> Option<Result<TargetState, ProviderError>> {
    with_target(store, &role.target, |session| async move {
        session.read_target(&role.target, username).await
    })
    .await
}

/// The target plus account `username`'s status (a DCS ACL account's),
/// for a dual-account rotation waiting for its reset to settle. `None`
/// for external targets.
pub async fn read_account(
    store: &Store,
    role: &Role,
    username: &str,
) -> Option<Result<TargetState, ProviderError>> {
    with_target(store, &role.target, |session| async move {
        session.read_account(&role.target, username).await
    })
    .await
}

/// The named accounts of a dual-account role's target, in order (write-
/// time checks); `None` for external targets. Each failed read counts
/// toward the connection's rejected key as any other call does.
pub async fn describe_accounts(
    store: &Store,
    role: &Role,
    usernames: &[&str],
) -> Option<Vec<Result<AccountInfo, ProviderError>>> {
    let connection = role.target.connection()?;
    let service = target_service(&role.target);
    let session = match session(store, connection, service).await {
        Ok(session) => session,
        Err(error) => return Some(usernames.iter().map(|_| Err(error.clone())).collect()),
    };
    let signed_with = session.access_key_id().to_owned();
    let described = session.describe_accounts(&role.target, usernames).await;
    if let Some(error) = described.iter().find_map(|r| r.as_ref().err()) {
        noted(store, connection, &signed_with, error).await;
    }
    Some(described)
}

/// Changes account `username`'s password; gives the provider's request id.
pub async fn change_target(
    store: &Store,
    role: &Role,
    username: &str,
    method: ChangeMethod,
    old_password: Option<&str>,
    new_password: &str,
) -> Result<Option<String>, ProviderError> {
    with_target(store, &role.target, |session| async move {
        session
            .change_target(&role.target, username, method, old_password, new_password)
            .await
    })
    .await
    .unwrap_or(Ok(None))
}

/// Sets the description of account `username` (a DCS instance's, whatever
/// the account), which carries the ownership marker.
pub async fn write_description(
    store: &Store,
    role: &Role,
    username: &str,
    description: &str,
) -> Result<(), ProviderError> {
    with_target(store, &role.target, |session| async move {
        session
            .write_description(&role.target, username, description)
            .await
    })
    .await
    .unwrap_or(Ok(()))
}

/// Runs `call` with the session of `target`'s connection: the calls on
/// per-lease accounts (create, wait, grant, delete), which name a target
/// rather than a role. An external target has no cloud to call.
pub async fn on_target<T, F, Fut>(
    store: &Store,
    target: &Target,
    call: F,
) -> Result<T, ProviderError>
where
    F: FnOnce(Arc<dyn Session>) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    with_target(store, target, call).await.unwrap_or_else(|| {
        Err(ProviderError::config(
            target_service(target),
            "connect",
            "an external target has no account to create or delete",
        ))
    })
}

/// `dependents` grouped by connection, each keeping its position.
fn by_connection(dependents: &[Dependent]) -> BTreeMap<&str, Vec<(usize, &Dependent)>> {
    let mut groups: BTreeMap<&str, Vec<(usize, &Dependent)>> = BTreeMap::new();
    for (at, dependent) in dependents.iter().enumerate() {
        groups
            .entry(dependent.connection())
            .or_default()
            .push((at, dependent));
    }
    groups
}

/// Runs `call` once per connection with its dependents; gives each
/// dependent's answer in the order of `dependents`.
async fn per_connection<T, F, Fut>(
    store: &Store,
    dependents: &[Dependent],
    call: F,
) -> Vec<Result<T, ProviderError>>
where
    T: Clone,
    F: Fn(Arc<dyn Session>, Vec<Dependent>) -> Fut,
    Fut: Future<Output = Vec<Result<T, ProviderError>>>,
{
    let mut answers: Vec<Option<Result<T, ProviderError>>> = vec![None; dependents.len()];
    for (connection, group) in by_connection(dependents) {
        let service = dependent_service(group[0].1);
        let (positions, members): (Vec<usize>, Vec<Dependent>) = group
            .into_iter()
            .map(|(at, dependent)| (at, dependent.clone()))
            .unzip();
        let results = match session(store, connection, service).await {
            Ok(session) => {
                let signed_with = session.access_key_id().to_owned();
                let results = call(session, members).await;
                for error in results.iter().filter_map(|r| r.as_ref().err()) {
                    noted(store, connection, &signed_with, error).await;
                }
                results
            }
            Err(error) => positions.iter().map(|_| Err(error.clone())).collect(),
        };
        for (at, result) in positions.into_iter().zip(results) {
            answers[at] = Some(result);
        }
    }
    answers
        .into_iter()
        .map(|answer| answer.expect("every dependent has an answer"))
        .collect()
}

/// The state of each dependent's job, in the order of `dependents`; one
/// DRS call per connection.
pub async fn describe_dependents(
    store: &Store,
    dependents: &[Dependent],
) -> Vec<Result<JobState, ProviderError>> {
    per_connection(store, dependents, |session, members| async move {
        session
            .describe_jobs(&members.iter().collect::<Vec<_>>())
            .await
    })
    .await
}

/// Sends the password to every dependent (DRS batched per connection);
/// each gets its request id or why not, in the order of `dependents`.
pub async fn update_dependents(
    store: &Store,
    dependents: &[Dependent],
    password: &str,
) -> Vec<Result<Option<String>, ProviderError>> {
    per_connection(store, dependents, |session, members| async move {
        session
            .update_jobs(&members.iter().collect::<Vec<_>>(), password)
            .await
    })
    .await
}

/// One cheap signed call with a connection that is not stored (yet).
pub async fn verify(store: &Store, connection: &Connection) -> Result<(), ProviderError> {
    store.open(connection)?.verify().await
}

fn key_service(connection: &Connection) -> Service {
    match connection.provider {
        super::connection::Provider::Alicloud => Service::Ram,
        super::connection::Provider::Huaweicloud => Service::Iam,
    }
}

/// The session for a connection's own access-key calls (rotate-root).
/// Its failures are not noted as a rejected key: the caller holds the
/// connection's lock, which noting takes, and records its failures on the
/// connection itself.
pub async fn key_session(
    store: &Store,
    name: &str,
    connection: &Connection,
) -> Result<Arc<dyn Session>, ProviderError> {
    session(store, name, key_service(connection)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{Error, StorageError};

    #[test]
    fn only_a_connection_the_operator_must_fix_is_a_permanent_session_error() {
        let missing = session_error(Service::Dcs, SessionError::Missing("hw".into()));
        assert_eq!(
            (missing.class, missing.kind),
            (ErrorClass::Permanent, ErrorKind::Config)
        );
        for transient in [
            Error::from(StorageError::ReadOnly),
            Error::internal("storage error: timeout"),
        ] {
            let error = session_error(Service::Dcs, SessionError::Storage(transient));
            assert_eq!(
                (error.class, error.kind),
                (ErrorClass::Retryable, ErrorKind::Connect)
            );
        }
    }

    #[tokio::test]
    async fn a_rejection_of_a_key_the_connection_no_longer_holds_is_ignored() {
        use crate::engine::ManualClock;
        use crate::engine::cloud::fake::FakeCloud;
        use crate::engine::connection::Provider;
        use crate::framework::MemoryStorage;

        let store = Store::new(
            Arc::new(MemoryStorage::default()),
            Arc::new(ManualClock::new(
                time::macros::datetime!(2026-12-07 10:00 UTC),
            )),
            Arc::new(FakeCloud::default()),
        );
        let mut connection = Connection::new(Provider::Alicloud);
        connection.access_key = "AK-NEW".into();
        store.commit_connection("c1", &connection).await.unwrap();
        let refusal = ProviderError::new(
            ErrorClass::Permanent,
            ErrorKind::Auth,
            Service::Polardb,
            "DescribeAccounts",
            "Specified access key is not found.",
            &[],
        );
        // Signed with the key rotate-root just replaced.
        reject_credentials(&store, "c1", "AK-OLD", &refusal).await;
        assert_eq!(store.rejection("c1"), None);
        let stored = store.load_connection("c1").await.unwrap().unwrap();
        assert!(stored.credentials_rejected.is_none());
        // Signed with the key it holds: every call through it stops.
        reject_credentials(&store, "c1", "AK-NEW", &refusal).await;
        assert!(store.rejection("c1").is_some());
        let stored = store.load_connection("c1").await.unwrap().unwrap();
        assert!(stored.credentials_rejected.is_some());
        let refused = session(&store, "c1", Service::Polardb).await.err().unwrap();
        assert_eq!(refused.code.as_deref(), Some(NOT_SENT));
    }
}
