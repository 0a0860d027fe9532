//! Real servers behind the emulator: a PolarDB cluster backed by
//! PostgreSQL 18 and a DCS instance backed by Redis 6.2 (both from `make
//! tools`). Calls go through the crate's provider clients to the emulator
//! binary; what a user would check is checked on the real server (a login
//! with the new password works, the old one fails, accounts and grants
//! are there), and DTS/DRS jobs that log in with a stale copy fail and
//! recover. Waits poll with a deadline; nothing sleeps to synchronise.

#![allow(clippy::result_large_err)]

#[path = "support/emulator.rs"]
mod emulator;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/redis.rs"]
mod redis;
#[path = "support/tools.rs"]
mod tools;

use std::time::{Duration, Instant};

use cloudrotate::emulator::backing::redis::RespValue;
use cloudrotate::providers::alicloud::dts::{DtsEndpoint, ModifyDtsJobPasswordRequest};
use cloudrotate::providers::alicloud::polardb::accounts::{
    AccountPrivilege, CreateAccountRequest, DatabaseGrant, DeleteAccountRequest,
    GrantAccountPrivilegeRequest, PolarDbAccountType, RevokeAccountPrivilegeRequest,
};
use cloudrotate::providers::alicloud::polardb::{
    DescribeAccountsRequest, ModifyAccountPasswordRequest,
};
use cloudrotate::providers::alicloud::{AlibabaClient, AlibabaConfig, SignatureVersion};
use cloudrotate::providers::huaweicloud::dcs::UpdatePasswordRequest;
use cloudrotate::providers::huaweicloud::dcs::acl::{
    AclAccountRole, CreateAclAccountRequest, UpdateAclAccountPasswordRequest,
};
use cloudrotate::providers::huaweicloud::drs::{DrsEndpointType, DrsPasswordChange};
use cloudrotate::providers::huaweicloud::{HuaweiClient, HuaweiConfig};
use cloudrotate::providers::{ConnectionOptions, Credentials, ErrorKind, RetryPolicy, Secret};
use emulator::{Emulator, fixture};
use serde_json::{Value, json};

const CLUSTER: &str = "pc-backed";
const INSTANCE: &str = "dcs-backed";
const OLD: &str = "Initial-Pass-1";
const NEW: &str = "Rotated-Pass-2";

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    postgres::runtime().block_on(future)
}

fn options(emu: &Emulator, region: &str) -> ConnectionOptions {
    let mut options = ConnectionOptions::new(region);
    options.endpoint = Some(emu.url.clone());
    options.requests_per_second = None;
    options.request_timeout = Duration::from_secs(10);
    options
}

/// One attempt per call: a refused backing change must come back as is.
fn no_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    }
}

fn ali(emu: &Emulator) -> AlibabaClient {
    AlibabaClient::new(AlibabaConfig {
        credentials: Credentials::new(fixture::ALI_AK, fixture::ALI_SK),
        options: options(emu, "cn-hangzhou"),
        signature: SignatureVersion::Acs3,
    })
    .unwrap()
    .with_retry_policy(no_retries())
}

fn hw(emu: &Emulator) -> HuaweiClient {
    HuaweiClient::new(HuaweiConfig {
        credentials: Credentials::new(fixture::HW_AK, fixture::HW_SK),
        options: options(emu, "cn-north-4"),
        project_id: fixture::PROJECT.to_owned(),
        domain_id: None,
    })
    .unwrap()
    .with_retry_policy(no_retries())
}

/// Polls `check` until it holds or `what` is overdue.
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The emulator with the fixture's users, checking job logins every 100 ms.
fn start(seed: Value) -> Emulator {
    let emu = Emulator::start_with(&["--job-login-interval-ms", "100"]);
    emu.seed(fixture::seed());
    emu.seed(seed);
    emu
}

fn pg_seed(pg: &postgres::Postgres) -> Value {
    json!({"alicloud": {
        "polardb_clusters": [{
            "id": CLUSTER, "engine": "PostgreSQL", "databases": ["appdb"],
            "account_settle_seconds": 0.0, "backing": pg.backing(),
            "accounts": [{"name": "app", "password": OLD, "type": "Normal",
                "privileges": [{"db_name": "appdb", "privilege": "ReadWrite"}]}]
        }],
        "dts_jobs": [{"id": "dts-backed", "status": "Synchronizing",
            "src": {"user": "app", "password": OLD, "instance_id": CLUSTER},
            "dest": {"user": "sink", "password": "Other-Pass-1"}}]
    }})
}

fn dts_status(emu: &Emulator) -> String {
    emu.get("dts/dts-backed")["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_polardb_password_change_reaches_postgres_and_a_stale_dts_copy_fails_then_recovers() {
    let pg = postgres::Postgres::start();
    let emu = start(pg_seed(&pg));
    // The seed reached the server: the account logs in with its password.
    pg.login("app", OLD).expect("the seeded account logs in");
    assert_eq!(dts_status(&emu), "Synchronizing");

    let polardb = ali(&emu).polardb();
    block_on(
        polardb.modify_account_password(&ModifyAccountPasswordRequest {
            db_cluster_id: CLUSTER.into(),
            account_name: "app".into(),
            new_password: Secret::new(NEW),
            password_type: None,
        }),
    )
    .unwrap();
    pg.login("app", NEW).expect("the new password works");
    let refused = pg.login("app", OLD).unwrap_err();
    assert!(
        refused.contains("password authentication failed"),
        "{refused}"
    );

    // The job still holds the old password: its next login fails it.
    wait_for("the DTS job to fail", || dts_status(&emu) == "Failed");
    let dts = ali(&emu).dts();
    let detail = block_on(dts.describe_dts_job_detail("dts-backed", None)).unwrap();
    assert_eq!(detail.status, "Failed");
    block_on(dts.modify_dts_job_password(&ModifyDtsJobPasswordRequest {
        dts_job_id: "dts-backed".into(),
        endpoint: DtsEndpoint::Source,
        user_name: "app".into(),
        password: Secret::new(NEW),
        region_id: None,
        synchronization_direction: None,
    }))
    .unwrap();
    wait_for("the DTS job to recover", || {
        dts_status(&emu) == "Synchronizing"
    });
    assert!(emu.get("dts/dts-backed").get("login_failure").is_none());
}

#[test]
fn polardb_accounts_and_grants_show_up_in_postgres() {
    let pg = postgres::Postgres::start();
    let emu = start(pg_seed(&pg));
    pg.execute("appdb", "CREATE TABLE orders (id int)");
    let polardb = ali(&emu).polardb();
    block_on(polardb.create_account(&CreateAccountRequest {
        db_cluster_id: CLUSTER.into(),
        account_name: "reporter".into(),
        account_password: Secret::new("Report-Pass-3"),
        account_type: PolarDbAccountType::Normal,
        account_description: Some("lease 42".into()),
        grants: vec![DatabaseGrant {
            db_name: "appdb".into(),
            privilege: AccountPrivilege::ReadOnly,
        }],
        client_token: Some("token-1".into()),
    }))
    .unwrap();
    assert!(pg.has_role("reporter"));
    pg.login("reporter", "Report-Pass-3")
        .expect("the new account logs in");
    let can = |privilege: &str| {
        pg.column(
            "appdb",
            &format!("SELECT has_table_privilege('reporter', 'orders', '{privilege}')"),
        ) == ["t"]
    };
    assert!(can("SELECT") && !can("INSERT"), "read-only on appdb");

    // Creating -> Available (this cluster settles at once), privileges shown.
    let accounts = block_on(polardb.describe_accounts(&DescribeAccountsRequest {
        db_cluster_id: CLUSTER.into(),
        account_name: Some("reporter".into()),
    }))
    .unwrap()
    .accounts;
    assert!(accounts[0].is_available());
    assert_eq!(accounts[0].privilege_on("appdb"), Some("ReadOnly"));

    block_on(
        polardb.grant_account_privilege(&GrantAccountPrivilegeRequest {
            db_cluster_id: CLUSTER.into(),
            account_name: "reporter".into(),
            grants: vec![DatabaseGrant {
                db_name: "appdb".into(),
                privilege: AccountPrivilege::ReadWrite,
            }],
        }),
    )
    .unwrap();
    assert!(can("INSERT"), "read-write after the grant");
    block_on(
        polardb.revoke_account_privilege(&RevokeAccountPrivilegeRequest {
            db_cluster_id: CLUSTER.into(),
            account_name: "reporter".into(),
            db_names: vec!["appdb".into()],
        }),
    )
    .unwrap();
    assert!(!can("SELECT"), "nothing after the revoke");

    block_on(polardb.delete_account(&DeleteAccountRequest {
        db_cluster_id: CLUSTER.into(),
        account_name: "reporter".into(),
    }))
    .unwrap();
    assert!(!pg.has_role("reporter"), "the role is dropped");
    assert!(pg.login("reporter", "Report-Pass-3").is_err());
}

#[test]
fn a_change_postgres_refuses_is_undone_and_answered_as_an_internal_error() {
    let pg = postgres::Postgres::start();
    let emu = start(pg_seed(&pg));
    // Behind the emulator's back, the role disappears.
    pg.execute(
        "appdb",
        "REASSIGN OWNED BY app TO postgres; DROP OWNED BY app",
    );
    pg.execute("postgres", "DROP OWNED BY app; DROP ROLE app");
    let error = block_on(ali(&emu).polardb().modify_account_password(
        &ModifyAccountPasswordRequest {
            db_cluster_id: CLUSTER.into(),
            account_name: "app".into(),
            new_password: Secret::new(NEW),
            password_type: None,
        },
    ))
    .unwrap_err();
    assert_eq!(error.http_status, Some(500));
    assert_eq!(error.code.as_deref(), Some("InternalError"));
    assert!(error.is_outcome_unknown());
    let account = emu.get(&format!("polardb/{CLUSTER}/accounts/app"));
    assert_eq!(
        account["password"], OLD,
        "the emulator's account is put back"
    );
}

fn redis_seed(redis: &redis::Redis) -> Value {
    json!({"huaweicloud": {
        "dcs_instances": [{"id": INSTANCE, "project_id": fixture::PROJECT,
            "password": OLD, "engine_version": "6.0", "account_settle_seconds": 0.0,
            "backing": redis.backing()}],
        "drs_jobs": [{"id": "drs-backed", "project_id": fixture::PROJECT,
            "status": "INCRE_TRANSFER_STARTED",
            "so": {"password": OLD, "instance_id": INSTANCE},
            "ta": {"password": "Other-Pass-1"}}]
    }})
}

fn drs_status(emu: &Emulator) -> String {
    emu.get("drs/drs-backed")["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_dcs_password_change_reaches_redis_and_a_stale_drs_copy_fails_then_recovers() {
    let redis = redis::Redis::start("Seed-Pass-0");
    let emu = start(redis_seed(&redis));
    // The seed set requirepass to the instance's password.
    redis.login(None, OLD).expect("the seeded password works");
    let dcs = hw(&emu).dcs();
    block_on(dcs.update_password(&UpdatePasswordRequest {
        instance_id: INSTANCE.into(),
        old_password: Secret::new(OLD),
        new_password: Secret::new(NEW),
    }))
    .unwrap();
    redis.login(None, NEW).expect("the new password works");
    let refused = redis.login(None, OLD).unwrap_err();
    assert!(refused.contains("WRONGPASS"), "{refused}");

    wait_for("the DRS job to fail", || {
        drs_status(&emu) == "INCRE_TRANSFER_FAILED"
    });
    let drs = hw(&emu).drs();
    block_on(drs.batch_modify_password(&[DrsPasswordChange {
        job_id: "drs-backed".into(),
        end_point_type: DrsEndpointType::Source,
        db_password: Secret::new(NEW),
    }]))
    .unwrap();
    wait_for("the DRS job to recover", || {
        drs_status(&emu) == "INCRE_TRANSFER_STARTED"
    });
    // A reset (no old password) reaches the server too.
    block_on(dcs.reset_password(INSTANCE, &Secret::new("Reset-Pass-4"))).unwrap();
    redis
        .login(None, "Reset-Pass-4")
        .expect("the reset password works");
}

#[test]
fn dcs_acl_accounts_are_redis_acl_users_with_their_role() {
    let redis = redis::Redis::start(OLD);
    let emu = start(redis_seed(&redis));
    let dcs = hw(&emu).dcs();
    block_on(dcs.create_acl_account(&CreateAclAccountRequest {
        instance_id: INSTANCE.into(),
        account_name: "reader".into(),
        account_role: AclAccountRole::Read,
        account_password: Secret::new("Acl-Pass-1x"),
        description: None,
    }))
    .unwrap();
    assert!(redis.acl_users().contains(&"reader".to_owned()));
    let list = block_on(dcs.list_acl_accounts(INSTANCE)).unwrap();
    let reader = list.by_name("reader").expect("listed").clone();
    assert!(list.by_name("default").is_some_and(|d| d.is_default()));
    redis
        .login(Some("reader"), "Acl-Pass-1x")
        .expect("the ACL user logs in");
    let as_reader = |args: &[&str], password: &str| {
        redis
            .command_as(Some("reader"), password, args)
            .expect("an answer")
    };
    assert!(matches!(
        as_reader(&["GET", "k"], "Acl-Pass-1x"),
        RespValue::Bulk(None)
    ));
    assert!(
        matches!(as_reader(&["SET", "k", "v"], "Acl-Pass-1x"), RespValue::Error(ref e) if e.starts_with("NOPERM")),
        "read-only"
    );

    block_on(dcs.update_acl_account_role(INSTANCE, &reader.account_id, AclAccountRole::Write))
        .unwrap();
    assert_eq!(
        as_reader(&["SET", "k", "v"], "Acl-Pass-1x"),
        RespValue::Simple("OK".into()),
        "read-write after the role change"
    );

    block_on(
        dcs.update_acl_account_password(&UpdateAclAccountPasswordRequest {
            instance_id: INSTANCE.into(),
            account_id: reader.account_id.clone(),
            old_password: Secret::new("Acl-Pass-1x"),
            new_password: Secret::new("Acl-Pass-2y"),
        }),
    )
    .unwrap();
    redis
        .login(Some("reader"), "Acl-Pass-2y")
        .expect("the new password works");
    assert!(
        redis.login(Some("reader"), "Acl-Pass-1x").is_err(),
        "the old fails"
    );

    block_on(dcs.reset_acl_account_password(
        INSTANCE,
        &reader.account_id,
        &Secret::new("Acl-Pass-3z"),
    ))
    .unwrap();
    redis
        .login(Some("reader"), "Acl-Pass-3z")
        .expect("the reset password works");

    block_on(dcs.delete_acl_account(INSTANCE, &reader.account_id)).unwrap();
    assert!(!redis.acl_users().contains(&"reader".to_owned()));
    assert!(redis.login(Some("reader"), "Acl-Pass-3z").is_err());
    // The account is gone from the list once its task settled.
    wait_for("the deleted account to leave the list", || {
        block_on(dcs.list_acl_accounts(INSTANCE))
            .unwrap()
            .by_name("reader")
            .is_none()
    });
    // DCS documents no not-found code for ACL accounts: a second delete is
    // refused as a parameter error (`DCS.4961`); the list above is the truth.
    let missing = block_on(dcs.delete_acl_account(INSTANCE, &reader.account_id)).unwrap_err();
    assert_eq!(
        (missing.code.as_deref(), missing.kind),
        (Some("DCS.4961"), ErrorKind::InvalidParameter)
    );
}
