//! The per-lease account calls of [`ProviderCloud`] against the emulator,
//! through the real clients and their signing, pacing and retries. The
//! emulator runs in this process (a lib test cannot start the binary), on
//! its own loopback port; its clock is moved instead of sleeping.

// The clients' one error type, by value, as everywhere in `cloud`.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use serde_json::{Value, json};
use time::Duration as Span;

use crate::emulator::faults::{FaultConfig, FaultEngine};
use crate::emulator::server::{bind, serve};
use crate::emulator::{Emulator, Startup};
use crate::providers::{ErrorClass, ErrorKind, Service};

use super::super::connection::{Connection, Provider};
use super::super::role::Target;
use super::fake::grants;
use super::{AccountInfo, AccountKind, AclRole, Cloud, NewAccount, ProviderCloud, Session};

const ALI_AK: &str = "LTAI-lease-test-1";
const ALI_SK: &str = "ali-lease-secret-value-1";
const HW_AK: &str = "HWLEASETESTKEY000001";
const HW_SK: &str = "huawei-lease-secret-value-01";
const PROJECT: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const PASSWORD: &str = "Lease-P@ss-9x";

/// Seconds an emulated account task (create, delete) takes.
const SETTLE: f64 = 5.0;

struct Clouds {
    emulator: Arc<Emulator>,
    polardb: Arc<dyn Session>,
    dcs: Arc<dyn Session>,
}

impl Clouds {
    /// Past every running account task.
    fn settle(&self) {
        self.emulator
            .clock()
            .advance(Span::milliseconds((SETTLE * 1000.0) as i64 + 1000));
    }

    fn calls(&self, api: &str) -> u64 {
        self.emulator
            .lock()
            .counters
            .calls
            .get(api)
            .copied()
            .unwrap_or(0)
    }

    fn faults(&self, faults: Value) {
        let config: FaultConfig = serde_json::from_value(faults).unwrap();
        config.validate().unwrap();
        self.emulator.lock().faults = FaultEngine::new(config);
    }
}

fn seed(extra_accounts: usize) -> Value {
    let accounts: Vec<Value> = (0..extra_accounts)
        .map(|n| json!({"name": format!("old_{n:03}"), "password": "Old-P@ss-1x"}))
        .collect();
    json!({
        "alicloud": {
            "users": [{"name": "vault", "access_keys": [{"id": ALI_AK, "secret": ALI_SK}]}],
            "polardb_clusters": [{"id": "pc-9", "region": "cn-hangzhou", "databases": ["db1", "db2"],
                "accounts": accounts, "account_limit": 400, "account_settle_seconds": SETTLE}]
        },
        "huaweicloud": {
            "users": [{"id": "hw-user-lease", "name": "vault", "access_keys": [{"access": HW_AK, "secret": HW_SK}]}],
            "projects": [PROJECT],
            "dcs_instances": [
                {"id": "dcs-9", "project_id": PROJECT, "password": "Initial-P@ss-1",
                 "account_settle_seconds": SETTLE},
                {"id": "dcs-old", "project_id": PROJECT, "password": "Initial-P@ss-1",
                 "engine_version": "3.0"}
            ]
        }
    })
}

fn connection(provider: Provider, url: &str) -> Connection {
    let mut connection = Connection::new(provider);
    connection.endpoint = Some(url.to_owned());
    connection.request_timeout_secs = 5;
    connection.max_retries = 2;
    // The pace of the connection is not what these tests look at.
    connection.requests_per_second = 1000;
    match provider {
        Provider::Alicloud => {
            connection.region = "cn-hangzhou".into();
            connection.access_key = ALI_AK.into();
            connection.secret_key = ALI_SK.into();
        }
        Provider::Huaweicloud => {
            connection.region = "cn-north-4".into();
            connection.access_key = HW_AK.into();
            connection.secret_key = HW_SK.into();
            connection.project_id = Some(PROJECT.into());
        }
    }
    connection
}

/// An emulator serving on a loopback port for the rest of the test.
async fn start(extra_accounts: usize) -> Clouds {
    let startup = Startup {
        seed: serde_json::from_value(seed(extra_accounts)).unwrap(),
        faults: FaultConfig::default(),
    };
    let bound = bind("127.0.0.1:0".parse().unwrap(), None, startup)
        .await
        .unwrap();
    let url = bound.url();
    let emulator = bound.emulator.clone();
    tokio::spawn(serve(bound.listener, bound.tls, bound.emulator));
    let open = |provider| ProviderCloud.open(&connection(provider, &url)).unwrap();
    Clouds {
        emulator,
        polardb: open(Provider::Alicloud),
        dcs: open(Provider::Huaweicloud),
    }
}

fn cluster(id: &str) -> Target {
    Target::PolardbAccount {
        connection: "ali".into(),
        cluster_id: id.into(),
    }
}

fn instance(id: &str) -> Target {
    Target::DcsInstance {
        connection: "hw".into(),
        instance_id: id.into(),
    }
}

fn lease(name: &str, kind: AccountKind) -> NewAccount {
    NewAccount {
        name: name.into(),
        password: PASSWORD.into(),
        kind,
        grants: Vec::new(),
        description: Some("vault lease of role app".into()),
    }
}

fn status(info: &Option<AccountInfo>) -> Option<&str> {
    info.as_ref().and_then(|info| info.status.as_deref())
}

#[tokio::test]
async fn a_polardb_lease_account_is_created_granted_per_database_and_deleted_twice() {
    let clouds = start(0).await;
    let (session, pc) = (&clouds.polardb, cluster("pc-9"));
    let account = lease("v_app_a1", AccountKind::PolardbNormal);
    let request_id = session.create_account(&pc, &account).await.unwrap();
    assert!(request_id.is_some());
    let creating = session.account_status(&pc, "v_app_a1").await.unwrap();
    assert_eq!(status(&creating), Some("Creating"));
    assert_eq!(creating.unwrap().kind.as_deref(), Some("Normal"));

    let two = grants(&[("db2", "ReadOnly"), ("db1", "ReadWrite")]);
    let early = session
        .grant_account(&pc, "v_app_a1", &two)
        .await
        .unwrap_err();
    assert_eq!(
        (early.code.as_deref(), early.class, early.kind),
        (
            Some("IncorrectDBClusterState"),
            ErrorClass::Permanent,
            ErrorKind::InvalidState
        ),
        "PolarDB refuses grants until the account is available"
    );

    clouds.settle();
    let available = session.account_status(&pc, "v_app_a1").await.unwrap();
    assert_eq!(status(&available), Some("Available"));
    let before = clouds.calls("polardb.GrantAccountPrivilege");
    session.grant_account(&pc, "v_app_a1", &two).await.unwrap();
    assert_eq!(clouds.calls("polardb.GrantAccountPrivilege") - before, 2);
    let granted = session.account_status(&pc, "v_app_a1").await.unwrap();
    assert_eq!(
        granted.unwrap().privileges,
        grants(&[("db1", "ReadWrite"), ("db2", "ReadOnly")])
    );

    session.delete_account(&pc, "v_app_a1").await.unwrap();
    let deleting = session.account_status(&pc, "v_app_a1").await.unwrap();
    assert_eq!(status(&deleting), Some("Deleting"));
    session.delete_account(&pc, "v_app_a1").await.unwrap();
    clouds.settle();
    assert_eq!(session.account_status(&pc, "v_app_a1").await.unwrap(), None);
    session
        .delete_account(&pc, "v_app_a1")
        .await
        .expect("InvalidAccountName.NotFound is already gone");
    assert_eq!(clouds.calls("polardb.DeleteAccount"), 3);
}

#[tokio::test]
async fn polardb_accounts_are_listed_across_pages() {
    let clouds = start(230).await;
    let listed = clouds
        .polardb
        .list_accounts(&cluster("pc-9"))
        .await
        .unwrap();
    assert_eq!(listed.len(), 230);
    assert_eq!(listed[229].name, "old_229");
    assert_eq!(clouds.calls("polardb.DescribeAccounts"), 3, "pages of 100");
}

/// What a dynamic role's write reads: a cluster's databases, a missing
/// cluster or instance by its code, an instance without ACL accounts.
#[tokio::test]
async fn the_places_a_dynamic_role_names_are_read_with_their_codes() {
    let clouds = start(0).await;
    let databases = clouds
        .polardb
        .list_databases(&cluster("pc-9"))
        .await
        .unwrap();
    assert_eq!(databases, ["db1", "db2"]);
    assert_eq!(clouds.calls("polardb.DescribeDatabases"), 1);
    let gone = clouds
        .polardb
        .list_databases(&cluster("pc-none"))
        .await
        .unwrap_err();
    assert_eq!(
        (gone.kind, gone.code.as_deref()),
        (ErrorKind::NotFound, Some("InvalidDBClusterId.NotFound"))
    );
    let gone = clouds
        .dcs
        .list_accounts(&instance("dcs-none"))
        .await
        .unwrap_err();
    assert_eq!(
        (gone.kind, gone.code.as_deref()),
        (ErrorKind::NotFound, Some("DCS.3022"))
    );
    let old = clouds
        .dcs
        .list_accounts(&instance("dcs-old"))
        .await
        .unwrap_err();
    assert_eq!(old.code.as_deref(), Some("DCS.4008"));
    let wrong = clouds.dcs.list_databases(&instance("dcs-9")).await;
    assert_eq!(wrong.unwrap_err().kind, ErrorKind::Config);
}

#[tokio::test]
async fn a_dcs_lease_account_has_its_role_and_is_deleted_by_its_listed_id() {
    let clouds = start(0).await;
    let (session, dcs) = (&clouds.dcs, instance("dcs-9"));
    let reader = lease("v-cache-r1", AccountKind::DcsAcl(AclRole::Read));
    session.create_account(&dcs, &reader).await.unwrap();
    let creating = session.account_status(&dcs, "v-cache-r1").await.unwrap();
    assert_eq!(status(&creating), Some("CREATING"));
    assert_eq!(
        creating.unwrap().privileges,
        grants(&[("*", "read")]),
        "the role is the grant"
    );
    session
        .grant_account(&dcs, "v-cache-r1", &[])
        .await
        .expect("nothing to grant");
    clouds.settle();
    let listed = session.list_accounts(&dcs).await.unwrap();
    let names: Vec<(&str, Option<&str>)> = listed
        .iter()
        .map(|a| (a.name.as_str(), a.status.as_deref()))
        .collect();
    assert_eq!(
        names,
        [("v-cache-r1", Some("AVAILABLE"))],
        "without the default user"
    );

    session.delete_account(&dcs, "v-cache-r1").await.unwrap();
    session.delete_account(&dcs, "v-cache-r1").await.unwrap();
    assert_eq!(
        clouds.calls("dcs.DeleteAclAccount"),
        1,
        "a DELETING account is not deleted again"
    );
    clouds.settle();
    assert_eq!(
        session.account_status(&dcs, "v-cache-r1").await.unwrap(),
        None
    );
    session.delete_account(&dcs, "v-cache-r1").await.unwrap();
    assert_eq!(clouds.calls("dcs.DeleteAclAccount"), 1);
    let default = session.delete_account(&dcs, "default").await.unwrap_err();
    assert_eq!(default.kind, ErrorKind::Config);
}

/// A create whose answer is lost after it applied: PolarDB's is re-sent
/// with its client token until the attempts run out, DCS's never; both are
/// then settled by finding the account.
#[tokio::test]
async fn a_lost_create_answer_is_settled_by_finding_the_account() {
    let clouds = start(0).await;
    clouds.faults(json!({"seed": 3, "gateway_error_after_apply_rate": 1.0,
        "apis": ["polardb.CreateAccount", "dcs.CreateAclAccount"]}));
    let pc = cluster("pc-9");
    let account = lease("v_app_lost", AccountKind::PolardbNormal);
    clouds.polardb.create_account(&pc, &account).await.unwrap();
    assert_eq!(clouds.calls("polardb.CreateAccount"), 3, "re-sent twice");
    let found = clouds.polardb.account_status(&pc, "v_app_lost").await;
    assert_eq!(status(&found.unwrap()), Some("Creating"));

    let dcs = instance("dcs-9");
    let writer = lease("v-cache-lost", AccountKind::DcsAcl(AclRole::Write));
    clouds.dcs.create_account(&dcs, &writer).await.unwrap();
    assert_eq!(clouds.calls("dcs.CreateAclAccount"), 1, "never re-sent");
    let found = clouds.dcs.account_status(&dcs, "v-cache-lost").await;
    assert_eq!(
        found.unwrap().unwrap().privileges,
        grants(&[("*", "write")])
    );
}

#[tokio::test]
async fn cloud_errors_keep_their_class_and_never_show_the_password() {
    let clouds = start(0).await;
    let (polardb, dcs) = (&clouds.polardb, &clouds.dcs);
    let account = lease("v_app_e1", AccountKind::PolardbNormal);
    let quiet = |error: &crate::providers::ProviderError| {
        assert!(!error.to_string().contains(PASSWORD), "{error}");
        assert!(!format!("{error:?}").contains(PASSWORD), "{error:?}");
    };

    // A missing cluster is no missing account: every call says so.
    let gone = cluster("pc-none");
    let error = polardb.create_account(&gone, &account).await.unwrap_err();
    assert_eq!(
        (error.class, error.kind),
        (ErrorClass::Permanent, ErrorKind::NotFound)
    );
    quiet(&error);
    assert!(polardb.delete_account(&gone, "v_app_e1").await.is_err());
    assert!(polardb.account_status(&gone, "v_app_e1").await.is_err());
    assert!(polardb.list_accounts(&gone).await.is_err());

    let weak = NewAccount {
        password: "weak".into(),
        ..lease("v_app_e2", AccountKind::PolardbNormal)
    };
    let error = polardb
        .create_account(&cluster("pc-9"), &weak)
        .await
        .unwrap_err();
    assert_eq!(
        error.code.as_deref(),
        Some("InvalidAccountPassword.Malformed")
    );
    assert!(!error.to_string().contains("weak"), "{error}");

    clouds.faults(json!({"scripted": [{"api": "polardb.CreateAccount",
        "code": "Throttling.User", "count": 3}]}));
    let error = polardb
        .create_account(&cluster("pc-9"), &account)
        .await
        .unwrap_err();
    assert_eq!(
        (error.class, error.kind),
        (ErrorClass::Retryable, ErrorKind::Throttled)
    );
    assert_eq!(error.attempts, 3);
    quiet(&error);
    clouds.faults(json!({}));

    let before = clouds.calls("polardb.GrantAccountPrivilege");
    let error = polardb
        .grant_account(
            &cluster("pc-9"),
            "v_app_e1",
            &grants(&[("db1", "Everything")]),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidParameter);
    assert_eq!(
        clouds.calls("polardb.GrantAccountPrivilege"),
        before,
        "not sent"
    );

    let acl = lease("v-cache-e1", AccountKind::DcsAcl(AclRole::Read));
    let error = dcs
        .create_account(&instance("dcs-old"), &acl)
        .await
        .unwrap_err();
    assert_eq!(
        (error.code.as_deref(), error.service),
        (Some("DCS.4008"), Service::Dcs)
    );
    quiet(&error);
    let error = dcs
        .create_account(&cluster("pc-9"), &acl)
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Config, "the wrong cloud");
    let error = polardb
        .create_account(&cluster("pc-9"), &acl)
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Config, "the wrong kind");
}

/// DeleteAclAccount refused as a parameter error or answered with a lost
/// answer: the list decides whether the account is gone.
#[tokio::test]
async fn a_refused_or_lost_dcs_delete_is_settled_by_the_list() {
    let clouds = start(0).await;
    let dcs = instance("dcs-9");
    let writer = lease("v-cache-d1", AccountKind::DcsAcl(AclRole::Write));
    clouds.dcs.create_account(&dcs, &writer).await.unwrap();
    clouds.settle();

    clouds.faults(json!({"scripted": [{"api": "dcs.DeleteAclAccount", "code": "DCS.4800"}]}));
    let error = clouds
        .dcs
        .delete_account(&dcs, "v-cache-d1")
        .await
        .unwrap_err();
    assert_eq!(
        (error.code.as_deref(), error.kind),
        (Some("DCS.4800"), ErrorKind::InvalidParameter),
        "still listed AVAILABLE: the refusal stands"
    );

    clouds.faults(json!({"seed": 4, "gateway_error_after_apply_rate": 1.0,
        "apis": ["dcs.DeleteAclAccount"]}));
    clouds
        .dcs
        .delete_account(&dcs, "v-cache-d1")
        .await
        .expect("listed DELETING after the lost answers");
    let deleting = clouds.dcs.account_status(&dcs, "v-cache-d1").await.unwrap();
    assert_eq!(status(&deleting), Some("DELETING"));
}
