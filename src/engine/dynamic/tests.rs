//! Dynamic roles through the mount's paths over the scripted cloud: every
//! failure of a `creds/` read, a crash at each of its steps and a lease the
//! host never recorded end with exactly the accounts that live leases hold
//! once the rollback and the periodic pass have run; renew, revoke and the
//! rollback's minimum age.

// Provider errors are large (request ids, codes); see calls.rs.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::engine::{Clock, ManualClock};
use crate::framework::{
    Backend, BackendConfig, Error, Existence, Framework, LeaseGrant, LeaseInfo, MemoryStorage,
    Operation, ReplicationState, Request, Response, SECRET_TYPE_KEY, StaticSystemView, Storage,
    StorageError, SystemView, wal,
};
use crate::providers::{ErrorClass, ErrorKind, ProviderError, Service};

use super::super::cloud::fake::{FakeCloud, FakeTarget, Op};
use super::super::connection::{Connection, Provider};
use super::super::core::Engine;
use super::super::role::Target;
use super::{ISSUED_PREFIX, list_issued};

const NOW: OffsetDateTime = datetime!(2026-12-08 09:00 UTC);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Storage that dies with the fake cloud: each write of a WAL entry or an
/// issued record is one of the cloud's steps, and nothing is written or
/// deleted once it crashed.
struct Crashing {
    inner: MemoryStorage,
    cloud: FakeCloud,
}

#[async_trait]
impl Storage for Crashing {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key).await
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        self.alive(key)?;
        self.inner.put(key, value).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.alive(key)?;
        self.inner.delete(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.inner.list(prefix).await
    }
}

impl Crashing {
    fn alive(&self, key: &str) -> Result<(), StorageError> {
        let step = key.starts_with(wal::PREFIX) || key.starts_with(ISSUED_PREFIX);
        let alive = if step {
            self.cloud.step()
        } else {
            !self.cloud.crashed()
        };
        if alive {
            Ok(())
        } else {
            Err(StorageError::Unavailable("crashed".into()))
        }
    }
}

/// The fixed system view, and a switch for the host's "this mount is being
/// disabled".
struct Host {
    fixed: StaticSystemView,
    tainted: AtomicBool,
}

#[async_trait]
impl SystemView for Host {
    async fn default_lease_ttl(&self) -> Result<Duration, Error> {
        self.fixed.default_lease_ttl().await
    }
    async fn max_lease_ttl(&self) -> Result<Duration, Error> {
        self.fixed.max_lease_ttl().await
    }
    async fn generate_password_from_policy(&self, policy: &str) -> Result<String, Error> {
        self.fixed.generate_password_from_policy(policy).await
    }
    async fn replication_state(&self) -> Result<ReplicationState, Error> {
        self.fixed.replication_state().await
    }
    async fn local_mount(&self) -> Result<bool, Error> {
        self.fixed.local_mount().await
    }
    async fn tainted(&self) -> Result<bool, Error> {
        Ok(self.tainted.load(Ordering::SeqCst))
    }
}

fn cluster() -> Target {
    Target::PolardbAccount {
        connection: "ali".into(),
        cluster_id: "pc-1".into(),
    }
}

fn instance() -> Target {
    Target::DcsInstance {
        connection: "hw".into(),
        instance_id: "dcs-1".into(),
    }
}

/// A mount (default lease TTL 1h, max 24h) with connections `ali` and
/// `hw`, over crashing storage, the fake cloud and a manual clock.
struct World {
    backend: Framework<Engine>,
    storage: Arc<Crashing>,
    cloud: FakeCloud,
    clock: Arc<ManualClock>,
    host: Arc<Host>,
}

impl World {
    async fn new() -> Self {
        let cloud = FakeCloud::default();
        let storage = Arc::new(Crashing {
            inner: MemoryStorage::new(),
            cloud: cloud.clone(),
        });
        let clock = Arc::new(ManualClock::new(NOW));
        let fixed = StaticSystemView {
            default_lease_ttl: HOUR,
            max_lease_ttl: 24 * HOUR,
            password_policies: HashMap::from([
                ("strong".to_owned(), "Policy-Pass-12".to_owned()),
                ("weak".to_owned(), "password".to_owned()),
            ]),
            ..StaticSystemView::default()
        };
        let host = Arc::new(Host {
            fixed,
            tainted: AtomicBool::new(false),
        });
        let options = [
            ("account_ready_wait", "60s"),
            ("account_ready_poll", "1s"),
            ("wal_rollback_min_age", "5m"),
        ];
        let config = BackendConfig {
            config: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            backend_uuid: "uuid".into(),
            storage: storage.clone(),
            system: host.clone(),
        };
        let backend = super::super::backend(config, clock.clone(), Arc::new(cloud.clone()));
        // What role writes read: cluster pc-1 and its databases, and DCS
        // instance dcs-1.
        cloud.add_cluster(&cluster(), &["appdb", "logs"]);
        let running = FakeTarget {
            status: Some("RUNNING".into()),
            ..FakeTarget::default()
        };
        cloud.add_target(&instance(), "", running);
        for (name, provider) in [("ali", Provider::Alicloud), ("hw", Provider::Huaweicloud)] {
            let mut connection = Connection::new(provider);
            connection.access_key = format!("AK-{name}");
            connection.allowed_roles = vec!["*".into()];
            backend
                .state
                .store
                .commit_connection(name, &connection)
                .await
                .expect("stored");
        }
        Self {
            backend,
            storage,
            cloud,
            clock,
            host,
        }
    }

    /// A world with role `app`: two databases on cluster pc-1, lease TTL
    /// 1h, max 2h.
    async fn with_app() -> Self {
        let world = Self::new().await;
        world
            .write(
                "roles/app",
                json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                        "grants": { "appdb": "ReadWrite", "logs": "readonly" },
                        "default_ttl": "1h", "max_ttl": "2h" }),
            )
            .await
            .expect("role written");
        world
    }

    async fn request(&self, request: Request) -> Result<Option<Response>, Error> {
        self.backend.handle_request(request).await
    }

    /// A write as the host sends it: existence check, then create or update.
    async fn write(&self, path: &str, data: Value) -> Result<Option<Response>, Error> {
        let probe = Request::new(Operation::Update, path).with_data(data.clone());
        let operation = match self.backend.existence_check(&probe).await? {
            Existence::Exists(false) => Operation::Create,
            _ => Operation::Update,
        };
        self.request(Request::new(operation, path).with_data(data))
            .await
    }

    async fn read(&self, path: &str) -> Result<Option<Response>, Error> {
        self.request(Request::new(Operation::Read, path)).await
    }

    async fn creds(&self, role: &str) -> Result<Response, Error> {
        let mut request = Request::new(Operation::Read, format!("creds/{role}"));
        request.client.display_name = "userpass-alice".into();
        Ok(self.request(request).await?.expect("an answer"))
    }

    fn lease_request(
        &self,
        operation: Operation,
        lease: &LeaseGrant,
        increment: Duration,
    ) -> Request {
        let mut internal = lease.internal_data.clone();
        internal.insert(SECRET_TYPE_KEY.into(), json!(lease.secret_type));
        let mut request = Request::new(operation, "creds/app");
        request.secret = Some(LeaseInfo {
            lease_id: "database/creds/app/xyz".into(),
            internal_data: internal,
            increment,
            ..LeaseInfo::default()
        });
        request
    }

    async fn renew(&self, lease: &LeaseGrant, increment: Duration) -> Result<LeaseGrant, Error> {
        let answer = self
            .request(self.lease_request(Operation::Renew, lease, increment))
            .await?;
        Ok(answer.and_then(|a| a.secret).expect("a lease"))
    }

    async fn revoke(&self, lease: &LeaseGrant) -> Result<Option<Response>, Error> {
        self.request(self.lease_request(Operation::Revoke, lease, Duration::ZERO))
            .await
    }

    /// The host's rollback tick.
    async fn tick(&self) -> Result<Option<Response>, Error> {
        self.request(Request::new(Operation::Rollback, "")).await
    }

    /// Ticks after `by`, as often as it takes the cloud to settle (the
    /// fake's tasks settle on reads).
    async fn ticks_after(&self, by: Duration) {
        self.clock.advance(by);
        for _ in 0..10 {
            let _ = self.tick().await;
        }
    }

    /// Accounts of `target` not being deleted, read without a call.
    fn accounts(&self, target: &Target) -> Vec<String> {
        self.cloud
            .account_names(target)
            .into_iter()
            .filter(|name| {
                self.cloud
                    .account(target, name)
                    .and_then(|a| a.status)
                    .is_none_or(|status| !status.eq_ignore_ascii_case("deleting"))
            })
            .collect()
    }

    async fn wal_entries(&self) -> usize {
        wal::list(self.storage.as_ref()).await.unwrap().len()
    }

    async fn issued(&self) -> usize {
        list_issued(&self.backend.state).await.unwrap().len()
    }
}

fn username(answer: &Response) -> String {
    answer.data["username"].as_str().unwrap().to_owned()
}

fn provider_error(
    class: ErrorClass,
    kind: ErrorKind,
    service: Service,
    action: &str,
    code: &str,
) -> ProviderError {
    ProviderError::new(class, kind, service, action, "scripted", &[]).with_code(Some(code.into()))
}

/// PolarDB refusing `action` to the connection's key.
fn ram_forbidden(action: &str) -> ProviderError {
    provider_error(
        ErrorClass::Permanent,
        ErrorKind::PermissionDenied,
        Service::Polardb,
        action,
        "Forbidden.RAM",
    )
}

/// DCS's answer to ListAclAccounts on an instance below Redis 4.0.
fn no_acl_accounts() -> ProviderError {
    provider_error(
        ErrorClass::Permanent,
        ErrorKind::InvalidParameter,
        Service::Dcs,
        "ListAclAccounts",
        "DCS.4008",
    )
}

fn status_of(error: &Error) -> u16 {
    match error {
        Error::BadRequest(_) => 400,
        Error::PermissionDenied => 403,
        Error::UnsupportedPath => 404,
        Error::UnsupportedOperation => 405,
        Error::Coded { status, .. } => *status,
        Error::Internal(_) => 500,
    }
}

#[tokio::test]
async fn a_read_creates_an_available_account_with_its_grants_under_a_lease() {
    let world = World::with_app().await;
    let answer = world.creds("app").await.unwrap();
    let name = username(&answer);
    assert!(name.starts_with("v_app_") && name.len() <= 16, "{name}");
    let password = answer.data["password"].as_str().unwrap();
    let account = world.cloud.account(&cluster(), &name).expect("created");
    assert_eq!(account.password, password);
    assert_eq!(account.status.as_deref(), Some("Available"));
    let mut grants = account.privileges.clone();
    grants.sort();
    assert_eq!(
        grants,
        [
            ("appdb".to_owned(), "ReadWrite".to_owned()),
            ("logs".to_owned(), "ReadOnly".to_owned())
        ]
    );
    let lease = answer.secret.clone().expect("a lease");
    assert_eq!(lease.secret_type, "creds");
    assert_eq!((lease.ttl, lease.max_ttl), (HOUR, 2 * HOUR));
    assert!(lease.renewable);
    for key in [
        "username",
        "role",
        "connection",
        "target",
        "issued",
        "issued_at",
        "max_ttl",
    ] {
        assert!(lease.internal_data.contains_key(key), "{key}");
    }
    assert!(
        !Value::Object(lease.internal_data.clone())
            .to_string()
            .contains(password),
        "the lease data holds no password"
    );
    assert_eq!(world.wal_entries().await, 0, "committed");
    assert_eq!(world.issued().await, 1);
    let calls: Vec<String> = world
        .cloud
        .calls()
        .into_iter()
        .map(|call| call.replace(&name, "NAME"))
        .collect();
    assert_eq!(
        calls,
        [
            "ListDatabases pc-1",
            "AccountStatus polardb:pc-1/NAME",
            "CreateAccount polardb:pc-1/NAME",
            "AccountStatus polardb:pc-1/NAME",
            "GrantAccount polardb:pc-1/NAME appdb:ReadWrite",
            "GrantAccount polardb:pc-1/NAME logs:ReadOnly",
        ],
        "the role write's check, then look up, create, wait, one grant per database"
    );
    // A second read: another account.
    let second = world.creds("app").await.unwrap();
    assert_ne!(username(&second), name);
    assert_eq!(world.accounts(&cluster()).len(), 2);
    // The role read shows no secret and nothing pending.
    let role = world.read("roles/app").await.unwrap().unwrap();
    assert_eq!(role.data["pending_cleanups"], 0);
    assert_eq!(
        role.data["grants"],
        json!({ "appdb": "ReadWrite", "logs": "ReadOnly" })
    );
    assert!(!Value::Object(role.data).to_string().contains(password));
}

#[tokio::test]
async fn revoke_deletes_the_account_and_twice_is_fine() {
    let world = World::with_app().await;
    let answer = world.creds("app").await.unwrap();
    let lease = answer.secret.unwrap();
    assert_eq!(world.revoke(&lease).await.unwrap(), None);
    assert!(world.accounts(&cluster()).is_empty());
    assert_eq!(world.issued().await, 0);
    assert_eq!(
        world.revoke(&lease).await.unwrap(),
        None,
        "gone counts as done"
    );
    // Past the deadline, nothing is left to clean up.
    world.ticks_after(3 * HOUR).await;
    assert!(world.tick().await.unwrap().is_none());
}

#[tokio::test]
async fn a_revoke_that_fails_is_a_plain_error_the_host_retries() {
    let world = World::with_app().await;
    let lease = world.creds("app").await.unwrap().secret.unwrap();
    let name = lease.internal_data["username"].as_str().unwrap().to_owned();
    world.cloud.fail(
        Op::DeleteAccount,
        provider_error(
            ErrorClass::Retryable,
            ErrorKind::Throttled,
            Service::Polardb,
            "DeleteAccount",
            "Throttling.User",
        ),
        false,
    );
    let error = world.revoke(&lease).await.unwrap_err();
    assert!(
        matches!(error, Error::Internal(_)),
        "never invalid request: {error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains(&name) && text.contains("Throttling.User") && text.contains("tries again"),
        "{text}"
    );
    assert_eq!(world.accounts(&cluster()), [name.as_str()]);
    assert_eq!(world.issued().await, 1, "kept for the retry");
    world.revoke(&lease).await.unwrap();
    assert!(world.accounts(&cluster()).is_empty());

    // Objects that depend on the account: the error says what to drop.
    let lease = world.creds("app").await.unwrap().secret.unwrap();
    world.cloud.fail(
        Op::DeleteAccount,
        provider_error(
            ErrorClass::Permanent,
            ErrorKind::InvalidState,
            Service::Polardb,
            "DeleteAccount",
            "AccountActionForbidden",
        ),
        false,
    );
    let error = world.revoke(&lease).await.unwrap_err();
    assert!(
        matches!(&error, Error::Internal(text) if text.contains("drop or reassign")),
        "{error:?}"
    );
}

#[tokio::test]
async fn renew_extends_up_to_the_max_ttl_without_a_cloud_call() {
    let world = World::with_app().await;
    let lease = world.creds("app").await.unwrap().secret.unwrap();
    let calls = world.cloud.calls().len();
    world.clock.advance(30 * MINUTE);
    let renewed = world.renew(&lease, Duration::ZERO).await.unwrap();
    assert_eq!(
        (renewed.ttl, renewed.max_ttl),
        (HOUR, 2 * HOUR),
        "the role's default_ttl"
    );
    world.clock.advance(60 * MINUTE);
    let capped = world.renew(&lease, 5 * HOUR).await.unwrap();
    assert_eq!(capped.ttl, 30 * MINUTE, "never past issue + max_ttl");
    // Raising the role's max_ttl does not stretch a lease already issued:
    // its account's deadline counts on the max it was issued with.
    world
        .write("roles/app", json!({ "max_ttl": "10h" }))
        .await
        .unwrap();
    let still = world.renew(&lease, 5 * HOUR).await.unwrap();
    assert_eq!(still.ttl, 30 * MINUTE);
    world.clock.advance(31 * MINUTE);
    let past = world.renew(&lease, HOUR).await.unwrap_err();
    assert!(past.to_string().contains("past its max TTL"), "{past}");
    assert_eq!(world.cloud.calls().len(), calls, "no cloud call");
    // A deleted role's leases are not renewed (but still revoked).
    let world = World::with_app().await;
    let lease = world.creds("app").await.unwrap().secret.unwrap();
    let deleted = world
        .request(Request::new(Operation::Delete, "roles/app"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        deleted.warnings[0].contains("1 of its accounts still have leases"),
        "{:?}",
        deleted.warnings
    );
    let refused = world.renew(&lease, HOUR).await.unwrap_err();
    assert!(refused.to_string().contains("was deleted"), "{refused}");
    world.revoke(&lease).await.unwrap();
    assert!(world.accounts(&cluster()).is_empty());
}

#[tokio::test]
async fn a_lease_the_host_never_recorded_loses_its_account_after_the_deadline() {
    let world = World::with_app().await;
    // The host stops between our answer and its lease write.
    let _ = world.creds("app").await.unwrap();
    world.ticks_after(2 * HOUR).await;
    assert_eq!(
        world.accounts(&cluster()).len(),
        1,
        "not before max_ttl + grace"
    );
    world.ticks_after(2 * MINUTE).await;
    assert!(world.accounts(&cluster()).is_empty());
    assert_eq!(world.issued().await, 0);
}

#[tokio::test]
async fn the_rollback_waits_its_minimum_age_and_keeps_what_it_cannot_delete() {
    let world = World::with_app().await;
    // The create's answer is lost after PolarDB created the account.
    world.cloud.fail(
        Op::CreateAccount,
        provider_error(
            ErrorClass::OutcomeUnknown,
            ErrorKind::Timeout,
            Service::Polardb,
            "CreateAccount",
            "timeout",
        ),
        true,
    );
    // The read's own attempt to delete it is refused too.
    world
        .cloud
        .fail(Op::DeleteAccount, ram_forbidden("DeleteAccount"), false);
    let error = world.creds("app").await.unwrap_err();
    assert_eq!(status_of(&error), 503, "{error}");
    assert!(
        error.to_string().contains("deletes the account by itself"),
        "{error}"
    );
    assert_eq!(world.accounts(&cluster()).len(), 1);
    assert_eq!(world.wal_entries().await, 1);
    world.clock.advance(4 * MINUTE);
    world.tick().await.unwrap();
    assert_eq!(
        world.accounts(&cluster()).len(),
        1,
        "younger than 5 minutes"
    );
    world.clock.advance(MINUTE);
    // The delete fails: the entry stays, counted and warned about.
    world
        .cloud
        .fail(Op::DeleteAccount, ram_forbidden("DeleteAccount"), false);
    let failed = world.tick().await.unwrap_err().to_string();
    assert!(
        failed.contains("Forbidden.RAM") && failed.contains("kept"),
        "{failed}"
    );
    assert_eq!(world.wal_entries().await, 1);
    let role = world.read("roles/app").await.unwrap().unwrap();
    assert_eq!(role.data["pending_cleanups"], 1);
    let warned = world.creds("app").await.unwrap();
    assert!(
        warned
            .warnings
            .iter()
            .any(|w| w.contains("waiting to be deleted")),
        "{:?}",
        warned.warnings
    );
    world.tick().await.unwrap();
    assert_eq!(world.wal_entries().await, 0);
    assert_eq!(
        world.accounts(&cluster()),
        [username(&warned)],
        "only the leased one"
    );
    let role = world.read("roles/app").await.unwrap().unwrap();
    assert_eq!(role.data["pending_cleanups"], 0);
}

#[tokio::test]
async fn cloud_refusals_reach_the_caller_with_their_code() {
    let polardb = |kind, code: &str, class| {
        provider_error(class, kind, Service::Polardb, "CreateAccount", code)
    };
    use ErrorClass::{Permanent, Retryable};
    // (fault, status, text, WAL left for the rollback)
    let cases = [
        (
            polardb(
                ErrorKind::LimitExceeded,
                "QuotaExceeded.AccountName",
                Permanent,
            ),
            429,
            "QuotaExceeded.AccountName",
            false,
        ),
        (
            polardb(
                ErrorKind::InvalidState,
                "OperationDenied.DBClusterStatus",
                Permanent,
            ),
            503,
            "OperationDenied.DBClusterStatus",
            false,
        ),
        (
            polardb(ErrorKind::PermissionDenied, "Forbidden.RAM", Permanent),
            403,
            "may not call CreateAccount",
            false,
        ),
        (
            polardb(ErrorKind::Throttled, "Throttling.User", Retryable),
            503,
            "try again shortly",
            false,
        ),
        (
            polardb(
                ErrorKind::InvalidParameter,
                "InvalidAccountName.Duplicate",
                Permanent,
            ),
            400,
            "InvalidAccountName.Duplicate",
            false,
        ),
    ];
    for (fault, status, text, left) in cases {
        let world = World::with_app().await;
        world.cloud.fail(Op::CreateAccount, fault, false);
        let error = world.creds("app").await.unwrap_err();
        assert_eq!(status_of(&error), status, "{error}");
        assert!(error.to_string().contains(text), "{error}");
        assert_eq!(
            world.wal_entries().await,
            usize::from(left),
            "{text}: a refusal undoes its WAL entry"
        );
        assert!(world.accounts(&cluster()).is_empty());
    }
    // A grant refused: the account exists; the read deletes it at once.
    let world = World::with_app().await;
    world.cloud.fail(
        Op::GrantAccount,
        provider_error(
            Permanent,
            ErrorKind::NotFound,
            Service::Polardb,
            "GrantAccountPrivilege",
            "InvalidDBName.NotFound",
        ),
        false,
    );
    let error = world.creds("app").await.unwrap_err();
    assert_eq!(status_of(&error), 400, "{error}");
    assert!(
        error.to_string().contains("InvalidDBName.NotFound")
            && error.to_string().contains("the account was deleted"),
        "{error}"
    );
    assert!(world.accounts(&cluster()).is_empty());
    assert_eq!(world.wal_entries().await, 0);
}

#[tokio::test]
async fn an_account_not_available_in_time_is_a_503_and_rolled_back_later() {
    let world = World::with_app().await;
    // 61 reads in the 60 s wait and the read's own attempt to delete it,
    // then three rollback ticks find it still being created: each keeps
    // the entry.
    world.cloud.account_task_reads(65);
    let started = world.clock.now();
    let error = world.creds("app").await.unwrap_err();
    assert_eq!(status_of(&error), 503, "{error}");
    assert!(
        error.to_string().contains("still Creating after 60s"),
        "{error}"
    );
    assert_eq!(
        world.clock.now() - started,
        time::Duration::seconds(60),
        "waited on the engine's clock"
    );
    world.clock.advance(5 * MINUTE);
    for _ in 0..3 {
        let kept = world.tick().await.unwrap_err().to_string();
        assert!(kept.contains("still being created"), "{kept}");
    }
    world.tick().await.unwrap();
    assert!(world.accounts(&cluster()).is_empty());
    assert_eq!(world.wal_entries().await, 0);
}

/// Runs a read crashed before each of its steps (cloud calls, WAL and
/// issued-record writes), restarts, and checks that the rollback and the
/// periodic pass leave exactly the account a live lease holds: the read's
/// if it answered, none otherwise; and none once a lease the host never
/// recorded is past its deadline. Gives the number of steps.
async fn crash_at_each_step(task_reads: u32) -> usize {
    for steps in 0.. {
        let world = World::with_app().await;
        world.cloud.account_task_reads(task_reads);
        world.cloud.crash_after(Some(steps));
        let answer = world.creds("app").await;
        if !world.cloud.crashed() {
            assert!(answer.is_ok(), "{answer:?}");
            return steps;
        }
        let context = format!("crash before step {steps} (task reads {task_reads})");
        world.cloud.crash_after(None);
        world.ticks_after(6 * MINUTE).await;
        let live: Vec<String> = answer.iter().map(username).collect();
        assert_eq!(world.accounts(&cluster()), live, "{context}: {answer:?}");
        assert_eq!(world.wal_entries().await, 0, "{context}");
        world.ticks_after(3 * HOUR).await;
        assert!(
            world.accounts(&cluster()).is_empty(),
            "{context}: after the deadline"
        );
        assert_eq!(world.issued().await, 0, "{context}");
    }
    unreachable!()
}

#[tokio::test]
async fn a_read_crashed_at_each_step_leaves_no_orphan() {
    // Look-up, WAL, create, one wait read, two grants, issued record, WAL
    // delete.
    assert_eq!(crash_at_each_step(0).await, 8);
    // Three wait reads.
    assert_eq!(crash_at_each_step(2).await, 10);
}

#[tokio::test]
async fn a_dcs_role_creates_acl_accounts_with_its_role() {
    let world = World::new().await;
    world
        .write(
            "roles/cache",
            json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-1", "acl_role": "read" }),
        )
        .await
        .unwrap();
    let answer = world.creds("cache").await.unwrap();
    let name = username(&answer);
    assert!(name.starts_with("v-cache-"), "{name}");
    let account = world.cloud.account(&instance(), &name).unwrap();
    assert_eq!(account.status.as_deref(), Some("AVAILABLE"));
    assert_eq!(account.privileges, [("*".to_owned(), "read".to_owned())]);
    let password = answer.data["password"].as_str().unwrap();
    assert!(
        !password
            .to_ascii_lowercase()
            .contains(&name.to_ascii_lowercase())
    );
    assert!(
        !world
            .cloud
            .calls()
            .iter()
            .any(|c| c.starts_with("GrantAccount"))
    );
    world.revoke(&answer.secret.unwrap()).await.unwrap();
    assert!(world.accounts(&instance()).is_empty());
    // An instance without ACL accounts.
    world
        .cloud
        .fail(Op::AccountStatus, no_acl_accounts(), false);
    let error = world.creds("cache").await.unwrap_err();
    assert_eq!(status_of(&error), 400);
    assert!(error.to_string().contains("Redis 4.0 or 5.0"), "{error}");
    assert_eq!(world.wal_entries().await, 0, "refused before the WAL");
}

#[tokio::test]
async fn a_role_write_says_what_is_wrong() {
    let world = World::new().await;
    let polardb = |extra: Value| {
        let mut base = json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                               "grants": "appdb=ReadWrite" });
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base
    };
    let cases = [
        (
            json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1" }),
            "needs grants",
        ),
        (
            polardb(json!({ "grants": "appdb=Owner" })),
            "not a PolarDB privilege",
        ),
        (
            polardb(json!({ "grants": "app db=ReadOnly" })),
            "not a database name",
        ),
        (
            polardb(json!({ "acl_role": "read" })),
            "acl_role does not apply",
        ),
        (
            polardb(json!({ "instance_id": "dcs-1" })),
            "instance_id does not apply",
        ),
        (
            polardb(json!({ "default_ttl": "3h", "max_ttl": "2h" })),
            "must not be longer than max_ttl",
        ),
        (
            polardb(json!({ "username_template": "{{.DisplayName}}" })),
            "not a valid PolarDB account name",
        ),
        (
            polardb(json!({ "username_template": "{{ if }}" })),
            "invalid username_template",
        ),
        (
            polardb(json!({ "connection": "nope" })),
            "write config/nope first",
        ),
        (
            polardb(json!({ "connection": "hw" })),
            "need a alicloud connection",
        ),
        (
            polardb(json!({ "password_policy": "weak" })),
            "generates passwords the target rejects",
        ),
        (
            json!({ "target": "external" }),
            "must be one of polardb-account, dcs-instance",
        ),
        (
            json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-1" }),
            "needs acl_role",
        ),
        (
            json!({ "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-1", "acl_role": "read",
                 "grants": "a=ReadOnly" }),
            "grants does not apply",
        ),
        // What hvac's secrets.database.create_role sends.
        (
            json!({ "db_name": "ali", "creation_statements": ["CREATE USER ..."],
                    "default_ttl": "1h", "max_ttl": "24h" }),
            "db_name",
        ),
    ];
    for (body, expected) in cases {
        let error = world
            .write("roles/bad", body.clone())
            .await
            .expect_err(&body.to_string());
        assert_eq!(status_of(&error), 400, "{body}: {error}");
        assert!(error.to_string().contains(expected), "{body}: {error}");
    }
    assert!(
        world.read("roles/bad").await.unwrap().is_none(),
        "nothing stored"
    );
    // A policy that fits, and a role that may change its connection but not
    // its target.
    world
        .write("roles/ok", polardb(json!({ "password_policy": "strong" })))
        .await
        .unwrap();
    let change = world
        .write("roles/ok", json!({ "target": "dcs-instance" }))
        .await
        .unwrap_err();
    assert!(
        change.to_string().contains("target cannot be changed"),
        "{change}"
    );
    let listed = world
        .request(Request::new(Operation::List, "roles/"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(listed.data["keys"], json!(["ok"]));
    let answer = world.creds("ok").await.unwrap();
    assert_eq!(answer.data["password"], "Policy-Pass-12");
    // An unknown role.
    let unknown = world.creds("nope").await.unwrap_err();
    assert!(
        unknown.to_string().contains("create it with roles/nope"),
        "{unknown}"
    );
}

fn polardb_role(cluster_id: &str, grants: Value) -> Value {
    json!({ "target": "polardb-account", "connection": "ali", "cluster_id": cluster_id, "grants": grants })
}

fn dcs_role(instance_id: &str) -> Value {
    json!({ "target": "dcs-instance", "connection": "hw", "instance_id": instance_id, "acl_role": "read" })
}

#[tokio::test]
async fn a_role_write_names_the_cluster_instance_or_database_that_is_missing() {
    let world = World::new().await;
    let refusals = [
        (
            polardb_role("pc-404", json!({ "appdb": "ReadWrite" })),
            "PolarDB cluster pc-404 does not exist (DescribeDatabases through connection \"ali\" answered InvalidDBClusterId.NotFound): fix cluster_id, or the region of connection \"ali\"",
        ),
        (
            polardb_role(
                "pc-1",
                json!({ "appdb": "ReadWrite", "billing": "ReadOnly" }),
            ),
            "database billing does not exist on PolarDB cluster pc-1 (DescribeDatabases lists: appdb, logs); create it or fix grants",
        ),
        (
            polardb_role(
                "pc-1",
                json!({ "billing": "ReadWrite", "audit": "ReadOnly" }),
            ),
            "databases audit, billing do not exist on PolarDB cluster pc-1",
        ),
        (
            dcs_role("dcs-404"),
            "DCS instance dcs-404 does not exist (ListAclAccounts through connection \"hw\" answered DCS.3022): fix instance_id, or the project and region of connection \"hw\"",
        ),
    ];
    for (body, expected) in refusals {
        let error = world.write("roles/new", body.clone()).await.unwrap_err();
        assert_eq!(status_of(&error), 400, "{body}: {error}");
        assert!(error.to_string().contains(expected), "{body}: {error}");
    }
    // An instance without ACL accounts: below Redis 4.0, DCS answers
    // DCS.4008 to ListAclAccounts.
    world.cloud.fail(Op::ListAccounts, no_acl_accounts(), false);
    let error = world
        .write("roles/new", dcs_role("dcs-1"))
        .await
        .unwrap_err();
    assert_eq!(status_of(&error), 400, "{error}");
    let text = error.to_string();
    assert!(
        text.contains("DCS instance dcs-1 has no ACL accounts (DCS.4008)")
            && text.contains("Redis 4.0 or 5.0"),
        "{text}"
    );
    assert!(
        world.read("roles/new").await.unwrap().is_none(),
        "nothing stored"
    );
    // An update that moves a stored role is read again; one that keeps its
    // target and grants reads nothing.
    world
        .write(
            "roles/new",
            polardb_role("pc-1", json!({ "appdb": "ReadOnly" })),
        )
        .await
        .unwrap();
    let moved = world
        .write("roles/new", json!({ "grants": { "billing": "ReadOnly" } }))
        .await
        .unwrap_err();
    assert!(
        moved
            .to_string()
            .contains("database billing does not exist"),
        "{moved}"
    );
    let calls = world.cloud.calls().len();
    world
        .write(
            "roles/new",
            json!({ "max_ttl": "3h", "grants": { "appdb": "ReadOnly" } }),
        )
        .await
        .unwrap();
    assert_eq!(world.cloud.calls().len(), calls, "no cloud call");
}

#[tokio::test]
async fn cloud_trouble_at_write_time_saves_the_role_with_a_warning() {
    let troubles = [
        (
            Op::ListDatabases,
            provider_error(
                ErrorClass::Retryable,
                ErrorKind::Throttled,
                Service::Polardb,
                "DescribeDatabases",
                "Throttling.User",
            ),
            polardb_role("pc-1", json!({ "appdb": "ReadWrite" })),
            "PolarDB cluster pc-1 could not be read",
        ),
        (
            Op::ListDatabases,
            provider_error(
                ErrorClass::OutcomeUnknown,
                ErrorKind::ServerError,
                Service::Polardb,
                "DescribeDatabases",
                "ServiceUnavailable",
            ),
            polardb_role("pc-1", json!({ "appdb": "ReadWrite" })),
            "make sure the cluster exists and holds database(s) appdb",
        ),
        (
            Op::ListDatabases,
            ram_forbidden("DescribeDatabases"),
            polardb_role("pc-1", json!({ "appdb": "ReadWrite" })),
            "Forbidden.RAM",
        ),
        (
            Op::ListAccounts,
            provider_error(
                ErrorClass::OutcomeUnknown,
                ErrorKind::ServerError,
                Service::Dcs,
                "ListAclAccounts",
                "DCS.5000",
            ),
            dcs_role("dcs-1"),
            "DCS instance dcs-1 could not be read",
        ),
    ];
    for (op, fault, body, expected) in troubles {
        let world = World::new().await;
        world.cloud.fail(op, fault, false);
        let answer = world
            .write("roles/app", body.clone())
            .await
            .unwrap_or_else(|error| panic!("{body}: {error}"))
            .expect("a warning");
        assert!(
            answer
                .warnings
                .iter()
                .any(|w| w.contains(expected) && w.contains("saved unchecked")),
            "{body}: {:?}",
            answer.warnings
        );
        assert!(
            world.read("roles/app").await.unwrap().is_some(),
            "{body}: saved"
        );
        world.creds("app").await.unwrap();
    }
}

#[tokio::test]
async fn names_are_unique_across_static_and_dynamic_roles_and_connections_stay_while_needed() {
    let world = World::with_app().await;
    let taken = world
        .write("static-roles/app", json!({ "target": "external" }))
        .await
        .unwrap_err();
    assert!(
        taken
            .to_string()
            .contains("taken by the dynamic role roles/app"),
        "{taken}"
    );
    world
        .write("static-roles/ext", json!({ "target": "external" }))
        .await
        .unwrap();
    let clash = world
        .write(
            "roles/ext",
            json!({ "target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "grants": "a=ReadOnly" }),
        )
        .await
        .unwrap_err();
    assert!(
        clash.to_string().contains("taken by static-roles/ext"),
        "{clash}"
    );

    let lease = world.creds("app").await.unwrap().secret.unwrap();
    let delete_ali = || world.request(Request::new(Operation::Delete, "config/ali"));
    let refused = delete_ali().await.unwrap_err().to_string();
    assert!(refused.contains("dynamic role app"), "{refused}");
    world
        .request(Request::new(Operation::Delete, "roles/app"))
        .await
        .unwrap();
    let refused = delete_ali().await.unwrap_err().to_string();
    assert!(
        refused.contains("1 dynamic account(s) not deleted yet"),
        "{refused}"
    );
    world.revoke(&lease).await.unwrap();
    delete_ali().await.unwrap();
}

#[tokio::test]
async fn a_check_out_lease_of_an_earlier_leased_role_ends_without_a_call() {
    let world = World::new().await;
    let mut internal = Map::new();
    internal.insert("role".into(), json!("old"));
    internal.insert("checkout".into(), json!("abc"));
    let lease = LeaseGrant {
        secret_type: "creds".into(),
        internal_data: internal,
        ttl: HOUR,
        max_ttl: HOUR,
        renewable: true,
    };
    let renewed = world.renew(&lease, HOUR).await.unwrap_err();
    assert!(
        renewed.to_string().contains("library/<set>/check-out"),
        "{renewed}"
    );
    assert_eq!(world.revoke(&lease).await.unwrap(), None);
}

#[tokio::test]
async fn disabling_the_mount_leaves_no_account_behind() {
    let world = World::with_app().await;
    let recorded = world.creds("app").await.unwrap().secret.unwrap();
    // Answered, but the host never recorded the lease.
    let _lost = world.creds("app").await.unwrap();
    // A read whose grant failed a moment ago, and whose attempt to
    // delete the account failed too: its WAL entry is young.
    world.cloud.fail(
        Op::GrantAccount,
        ram_forbidden("GrantAccountPrivilege"),
        false,
    );
    world
        .cloud
        .fail(Op::DeleteAccount, ram_forbidden("DeleteAccount"), false);
    world.creds("app").await.unwrap_err();
    assert_eq!(world.accounts(&cluster()).len(), 3);
    // A reload or seal keeps everything.
    world.backend.cleanup().await;
    assert_eq!(world.accounts(&cluster()).len(), 3);
    // The host disables the mount: taints it, ticks once (the entry is too
    // young), revokes the leases it recorded, then cleans up.
    world.host.tainted.store(true, Ordering::SeqCst);
    world.tick().await.unwrap();
    assert_eq!(world.accounts(&cluster()).len(), 3);
    world.revoke(&recorded).await.unwrap();
    assert_eq!(world.accounts(&cluster()).len(), 2);
    world.backend.cleanup().await;
    assert!(world.accounts(&cluster()).is_empty());
    assert_eq!((world.wal_entries().await, world.issued().await), (0, 0));
}
