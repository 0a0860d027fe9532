//! Every provider call against the real emulator binary (a loopback HTTP
//! server that verifies signatures, keeps state and injects faults): the
//! answers, the state the emulator ends up in, and how many requests
//! reached it (its counters), which is how retries, backoff and "never
//! re-sent" are checked. Each test starts its own emulator; retry timings
//! are shortened through the clients' retry policy so the suite runs in
//! seconds.

// Closures here return the clients' `Result<_, ProviderError>`; the error's
// size is the providers module's choice (see its `allow`), not this file's.
#![allow(clippy::result_large_err)]

#[path = "support/emulator.rs"]
mod emulator;

use std::future::Future;
use std::time::{Duration, Instant};

use cloudrotate::providers::alicloud::dts::{DtsEndpoint, ModifyDtsJobPasswordRequest};
use cloudrotate::providers::alicloud::polardb::{
    DescribeAccountsRequest, ModifyAccountPasswordRequest,
};
use cloudrotate::providers::alicloud::{
    AlibabaClient, AlibabaConfig, AlibabaService, SignatureVersion,
};
use cloudrotate::providers::encoding::percent_encode;
use cloudrotate::providers::huaweicloud::dcs::UpdatePasswordRequest;
use cloudrotate::providers::huaweicloud::drs::{DrsEndpointType, DrsPasswordChange};
use cloudrotate::providers::huaweicloud::{HuaweiClient, HuaweiConfig, HuaweiService};
use cloudrotate::providers::retry::Jitter;
use cloudrotate::providers::{
    ConnectionOptions, Credentials, ErrorClass, ErrorKind, ProviderError, RetryPolicy, Secret,
    Service,
};
use emulator::{Emulator, fixture};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// Set-up

const STS_USER: &str = "sts-user";
const STS_AK: &str = "STS.NUtemporaryKey01";
const STS_SK: &str = "sts-secret-value-0001";
const STS_TOKEN: &str = "CAIS-test-security-token-0001";
const HW_TMP_AK: &str = "HWTEMPORARYKEY000001";
const HW_TMP_SK: &str = "huawei-temporary-secret-0001";
const HW_TOKEN: &str = "gQpjbi1ub3J0aC00-test-security-token";

/// Every secret the suite uses: none may ever show in an error.
const SECRETS: &[&str] = &[
    fixture::ALI_SK,
    fixture::HW_SK,
    fixture::INITIAL,
    STS_SK,
    STS_TOKEN,
    HW_TMP_SK,
    HW_TOKEN,
    "Other-Pass-1",
];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// The fixture plus temporary credentials for both clouds and the extra
/// DRS jobs and DCS instance some tests need.
fn start() -> Emulator {
    let emu = Emulator::start();
    emu.seed(fixture::seed());
    emu.seed(json!({
        "alicloud": {
            "users": [{ "name": STS_USER, "access_keys": [
                { "id": STS_AK, "secret": STS_SK, "security_token": STS_TOKEN }
            ]}]
        },
        "huaweicloud": {
            "users": [{ "id": "hw-user-temp", "name": "temp", "access_keys": [
                { "access": HW_TMP_AK, "secret": HW_TMP_SK, "security_token": HW_TOKEN }
            ]}],
            "drs_jobs": [
                { "id": "drsjob2", "project_id": fixture::PROJECT, "status": "CONFIGURATION",
                  "so": { "password": fixture::INITIAL }, "ta": { "password": "Other-Pass-1" } },
                { "id": "drsjob3", "project_id": fixture::PROJECT, "status": "STARTJOB_FAILED",
                  "so": { "password": fixture::INITIAL }, "ta": { "password": "Other-Pass-1" } },
                { "id": "drsjob4", "project_id": fixture::PROJECT, "status": "START_JOB_FAILED",
                  "so": { "password": fixture::INITIAL }, "ta": { "password": "Other-Pass-1" } }
            ],
            "dcs_instances": [
                { "id": "dcs-2", "project_id": fixture::PROJECT, "password": fixture::INITIAL }
            ]
        }
    }));
    emu
}

/// Short backoff: the suite must run in seconds.
fn fast(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        max_elapsed: Duration::from_secs(20),
        base_delay: ms(5),
        throttle_base_delay: ms(10),
        max_delay: ms(40),
        jitter: Jitter::seeded(7),
    }
}

fn options(endpoint: &str, region: &str) -> ConnectionOptions {
    let mut options = ConnectionOptions::new(region);
    options.endpoint = Some(endpoint.to_owned());
    options.request_timeout = Duration::from_secs(3);
    options.connect_timeout = Duration::from_secs(1);
    options.requests_per_second = None;
    options
}

fn ali_with(
    options: ConnectionOptions,
    credentials: Credentials,
    signature: SignatureVersion,
) -> AlibabaClient {
    AlibabaClient::new(AlibabaConfig {
        credentials,
        options,
        signature,
    })
    .unwrap()
    .with_retry_policy(fast(4))
}

fn ali(emu: &Emulator) -> AlibabaClient {
    ali_with(
        options(&emu.url, "cn-hangzhou"),
        Credentials::new(fixture::ALI_AK, fixture::ALI_SK),
        SignatureVersion::Acs3,
    )
}

fn hw_with(options: ConnectionOptions, credentials: Credentials) -> HuaweiClient {
    HuaweiClient::new(HuaweiConfig {
        credentials,
        options,
        project_id: fixture::PROJECT.to_owned(),
        domain_id: None,
    })
    .unwrap()
    .with_retry_policy(fast(4))
}

fn hw(emu: &Emulator) -> HuaweiClient {
    hw_with(
        options(&emu.url, "cn-north-4"),
        Credentials::new(fixture::HW_AK, fixture::HW_SK),
    )
}

/// No secret (raw, percent-encoded once or twice) in the error's Display
/// or Debug text.
fn assert_quiet(error: &ProviderError, extra: &[&str]) {
    let shown = format!("{error}\n{error:?}");
    for secret in SECRETS.iter().chain(extra) {
        let once = percent_encode(secret);
        for form in [secret.to_string(), once.clone(), percent_encode(&once)] {
            assert!(
                !shown.contains(&form),
                "the error text shows the secret {secret:?}: {shown}"
            );
        }
    }
}

/// How many requests for `api` reached the emulator during `run`.
fn calls_during<T>(emu: &Emulator, api: &str, run: impl FnOnce() -> T) -> (T, u64) {
    let before = emu.calls(api);
    let value = run();
    (value, emu.calls(api) - before)
}

fn outcome(emu: &Emulator, name: &str) -> u64 {
    emu.counters()["outcomes"][name].as_u64().unwrap()
}

fn polardb_change(password: &str) -> ModifyAccountPasswordRequest {
    ModifyAccountPasswordRequest {
        db_cluster_id: "pc-1".into(),
        account_name: "app".into(),
        new_password: Secret::new(password),
        password_type: None,
    }
}

fn dts_change(endpoint: DtsEndpoint, user: &str, password: &str) -> ModifyDtsJobPasswordRequest {
    ModifyDtsJobPasswordRequest {
        dts_job_id: "dtsjob1".into(),
        endpoint,
        user_name: user.into(),
        password: Secret::new(password),
        region_id: None,
        synchronization_direction: None,
    }
}

fn dcs_update(instance: &str, old: &str, new: &str) -> UpdatePasswordRequest {
    UpdatePasswordRequest {
        instance_id: instance.into(),
        old_password: Secret::new(old),
        new_password: Secret::new(new),
    }
}

fn drs_change(job: &str, side: DrsEndpointType, password: &str) -> DrsPasswordChange {
    DrsPasswordChange {
        job_id: job.into(),
        end_point_type: side,
        db_password: Secret::new(password),
    }
}

// ---------------------------------------------------------------------------
// Every call, the happy paths and the documented refusals

#[test]
fn polardb_modify_describe_and_verify_with_every_signature_and_token() {
    let emu = start();
    let acs3 = ali(&emu);
    let v2 = ali_with(
        options(&emu.url, "cn-hangzhou"),
        Credentials::new(fixture::ALI_AK, fixture::ALI_SK),
        SignatureVersion::V2,
    );
    let sts = |signature| {
        ali_with(
            options(&emu.url, "cn-hangzhou"),
            Credentials::new(STS_AK, STS_SK).with_security_token(STS_TOKEN),
            signature,
        )
    };
    let clients = [
        ("ACS3", acs3.clone(), "New-Pass-acs3"),
        ("V2", v2, "Pw!@#$%^&*()_+-=1a"),
        ("ACS3+STS", sts(SignatureVersion::Acs3), "New-Pass-sts3"),
        ("V2+STS", sts(SignatureVersion::V2), "New-Pass-sts2"),
    ];
    for (i, (name, client, password)) in clients.iter().enumerate() {
        let (changed, calls) = calls_during(&emu, "polardb.ModifyAccountPassword", || {
            block_on(
                client
                    .polardb()
                    .modify_account_password(&polardb_change(password)),
            )
        });
        let changed = changed.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(calls, 1, "{name}");
        assert_eq!(changed.info.attempts, 1);
        assert!(changed.info.request_id.is_some(), "{name}: request id kept");
        let truth = emu.get("polardb/pc-1/accounts/app");
        assert_eq!(truth["password"], *password, "{name}");
        assert_eq!(truth["changes"], i as u64 + 1);

        let accounts = block_on(
            client
                .polardb()
                .describe_accounts(&DescribeAccountsRequest {
                    db_cluster_id: "pc-1".into(),
                    account_name: None,
                }),
        )
        .unwrap();
        let names: Vec<&str> = accounts
            .accounts
            .iter()
            .map(|a| a.account_name.as_str())
            .collect();
        assert_eq!(names, ["app", "report"], "{name}");
        assert!(accounts.accounts.iter().all(|a| a.is_available()));
        let verified = block_on(client.polardb().verify()).unwrap();
        assert_eq!(verified.service, Service::Polardb);
        assert!(verified.info.request_id.is_some());
    }

    let one = block_on(acs3.polardb().describe_accounts(&DescribeAccountsRequest {
        db_cluster_id: "pc-1".into(),
        account_name: Some("report".into()),
    }))
    .unwrap();
    assert_eq!(one.accounts.len(), 1);

    // Documented refusals: permanent, sent once, quiet.
    let refusals = [
        (
            ModifyAccountPasswordRequest {
                db_cluster_id: "pc-nope".into(),
                ..polardb_change("Valid-Pass-1")
            },
            ErrorKind::NotFound,
            "InvalidDBClusterId.NotFound",
        ),
        (
            ModifyAccountPasswordRequest {
                account_name: "nobody".into(),
                ..polardb_change("Valid-Pass-1")
            },
            ErrorKind::NotFound,
            "InvalidAccountName.NotFound",
        ),
        (
            polardb_change("alllowercase1"),
            ErrorKind::InvalidParameter,
            "InvalidAccountPassword.Malformed",
        ),
    ];
    for (request, kind, code) in refusals {
        let (result, calls) = calls_during(&emu, "polardb.ModifyAccountPassword", || {
            block_on(acs3.polardb().modify_account_password(&request))
        });
        let error = result.unwrap_err();
        assert_eq!((error.class, error.kind), (ErrorClass::Permanent, kind));
        assert_eq!(error.code.as_deref(), Some(code));
        assert!(error.request_id.is_some(), "request id kept on errors");
        assert_eq!(calls, 1);
        assert_quiet(&error, &["alllowercase1", "Valid-Pass-1"]);
    }
    let missing = block_on(acs3.polardb().describe_accounts(&DescribeAccountsRequest {
        db_cluster_id: "pc-nope".into(),
        account_name: None,
    }))
    .unwrap_err();
    assert!(missing.is_not_found());
}

#[test]
fn dts_modify_detail_same_password_and_job_state() {
    let emu = start();
    let client = ali(&emu);
    let dts = client.dts();
    let detail = block_on(dts.describe_dts_job_detail("dtsjob1", None)).unwrap();
    assert_eq!(detail.status, "Synchronizing");
    assert!(detail.accepts_password_change(DtsEndpoint::Source));
    assert_eq!(
        detail
            .endpoint(DtsEndpoint::Source)
            .unwrap()
            .user_name
            .as_deref(),
        Some("app")
    );
    assert_eq!(
        detail
            .endpoint(DtsEndpoint::Destination)
            .unwrap()
            .user_name
            .as_deref(),
        Some("sink")
    );
    assert!(detail.info.request_id.is_some());

    let new = "N3w P@ss*~/+=&!";
    let (changed, calls) = calls_during(&emu, "dts.ModifyDtsJobPassword", || {
        block_on(dts.modify_dts_job_password(&dts_change(DtsEndpoint::Source, "app", new)))
    });
    assert!(changed.unwrap().info.request_id.is_some());
    assert_eq!(calls, 1);
    block_on(dts.modify_dts_job_password(&dts_change(
        DtsEndpoint::Destination,
        "sink",
        "Dest-Pass-2",
    )))
    .unwrap();
    let truth = emu.get("dts/dtsjob1");
    assert_eq!(truth["src"]["password"], new);
    assert_eq!(truth["dest"]["password"], "Dest-Pass-2");

    // DTS refuses the current password (the seed's InvalidParameter naming
    // Password): that is how a lost answer is confirmed.
    let again = block_on(dts.modify_dts_job_password(&dts_change(DtsEndpoint::Source, "app", new)))
        .unwrap_err();
    assert!(again.is_password_refused(), "{again}");
    assert_eq!(again.code.as_deref(), Some("InvalidParameter"));
    assert_eq!(again.class, ErrorClass::Permanent);
    assert_quiet(&again, &[new]);

    let wrong_user = block_on(dts.modify_dts_job_password(&dts_change(
        DtsEndpoint::Source,
        "intruder",
        "Another-Pass-3",
    )))
    .unwrap_err();
    assert_eq!(wrong_user.kind, ErrorKind::InvalidParameter);
    assert!(wrong_user.message.contains("UserName"), "{wrong_user}");

    emu.patch_status("dts/dtsjob1", "Modifying");
    let detail = block_on(dts.describe_dts_job_detail("dtsjob1", None)).unwrap();
    assert!(!detail.accepts_password_change(DtsEndpoint::Source));
    let (refused, calls) = calls_during(&emu, "dts.ModifyDtsJobPassword", || {
        block_on(dts.modify_dts_job_password(&dts_change(
            DtsEndpoint::Source,
            "app",
            "Another-Pass-3",
        )))
    });
    let refused = refused.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::InvalidState);
    assert_eq!(refused.code.as_deref(), Some("OperationDenied.JobStatus"));
    assert_eq!(calls, 1);

    let missing = block_on(dts.describe_dts_job_detail("nojob", None)).unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    assert!(
        missing.message.contains("nojob"),
        "DynamicMessage fills %s: {missing}"
    );
    assert!(block_on(dts.verify()).is_ok());
}

#[test]
fn drs_batch_with_partial_failure_and_both_failed_start_spellings() {
    let emu = start();
    let client = hw(&emu);
    let drs = client.drs();
    let status =
        block_on(drs.batch_status(&["drsjob1", "drsjob2", "drsjob3", "drsjob4", "missing"]))
            .unwrap();
    let by_id = |id: &str| status.jobs.iter().find(|j| j.job_id == id).unwrap();
    assert_eq!(
        by_id("drsjob1").status.as_deref(),
        Some("INCRE_TRANSFER_STARTED")
    );
    assert!(by_id("drsjob1").accepts_password_change());
    assert!(!by_id("drsjob2").accepts_password_change(), "CONFIGURATION");
    assert_eq!(by_id("drsjob3").status.as_deref(), Some("STARTJOB_FAILED"));
    assert!(by_id("drsjob3").accepts_password_change());
    assert_eq!(by_id("drsjob4").status.as_deref(), Some("START_JOB_FAILED"));
    assert!(by_id("drsjob4").accepts_password_change());
    let missing = by_id("missing");
    assert!(!missing.accepts_password_change());
    assert!(missing.lookup_error.as_ref().unwrap().is_not_found());
    assert!(status.info.request_id.is_some());

    let changes = [
        drs_change("drsjob1", DrsEndpointType::Source, "So-New-Pass-1"),
        drs_change("drsjob1", DrsEndpointType::Target, "Ta-New-Pass-1"),
        drs_change("drsjob2", DrsEndpointType::Source, "So-New-Pass-2"),
        drs_change("missing", DrsEndpointType::Target, "Ta-New-Pass-9"),
        drs_change("drsjob3", DrsEndpointType::Source, "So-New-Pass-3"),
        drs_change("drsjob4", DrsEndpointType::Target, "Ta-New-Pass-4"),
    ];
    let (batch, calls) = calls_during(&emu, "drs.BatchResetPassword", || {
        block_on(drs.batch_modify_password(&changes))
    });
    let batch = batch.unwrap();
    assert_eq!(calls, 1, "the whole batch is one request");
    assert_eq!(batch.results.len(), changes.len());
    assert!(!batch.all_succeeded());
    let outcomes: Vec<bool> = batch.results.iter().map(|r| r.outcome.is_ok()).collect();
    assert_eq!(outcomes, [true, true, false, false, true, true]);
    let state = batch.results[2].outcome.as_ref().unwrap_err();
    assert_eq!(state.kind, ErrorKind::InvalidState);
    assert_eq!(state.code.as_deref(), Some("DRS.M00304"));
    assert!(state.request_id.is_some());
    let gone = batch.results[3].outcome.as_ref().unwrap_err();
    assert!(gone.is_not_found());
    for failure in batch.failures() {
        assert_quiet(
            failure.outcome.as_ref().unwrap_err(),
            &["So-New-Pass-2", "Ta-New-Pass-9"],
        );
    }
    assert_eq!(emu.get("drs/drsjob1")["so"]["password"], "So-New-Pass-1");
    assert_eq!(emu.get("drs/drsjob1")["ta"]["password"], "Ta-New-Pass-1");
    assert_eq!(emu.get("drs/drsjob2")["so"]["password"], fixture::INITIAL);
    assert_eq!(emu.get("drs/drsjob3")["so"]["password"], "So-New-Pass-3");
    assert_eq!(emu.get("drs/drsjob4")["ta"]["password"], "Ta-New-Pass-4");
    assert!(block_on(drs.verify()).is_ok());
    assert!(block_on(drs.batch_modify_password(&[])).is_err());
}

#[test]
fn dcs_update_counts_tries_locks_and_reset_needs_no_old_password() {
    let emu = start();
    let client = hw(&emu);
    let dcs = client.dcs();
    let instance = block_on(dcs.show_instance("dcs-1")).unwrap();
    assert!(instance.is_running());
    assert!(!instance.no_password_access);
    assert!(block_on(dcs.verify()).is_ok());

    let (ok, calls) = calls_during(&emu, "dcs.UpdatePassword", || {
        block_on(dcs.update_password(&dcs_update("dcs-1", fixture::INITIAL, "Dcs-New-P@ss1")))
    });
    assert!(ok.unwrap().info.request_id.is_some());
    assert_eq!(calls, 1);
    assert_eq!(emu.get("dcs/dcs-1")["password"], "Dcs-New-P@ss1");

    // Wrong old passwords: each one is sent once, and the class carries
    // the tries left, then the lock.
    for left in (1..=4).rev() {
        let (wrong, calls) = calls_during(&emu, "dcs.UpdatePassword", || {
            block_on(dcs.update_password(&dcs_update("dcs-1", "Wrong-Old-P@ss", "Dcs-Next-P@ss2")))
        });
        let wrong = wrong.unwrap_err();
        assert_eq!(calls, 1, "never retried: every try brings the lock closer");
        assert!(
            matches!(
                wrong.class,
                ErrorClass::Lockout { retry_times_left: Some(n), .. } if n == left
            ),
            "{wrong}"
        );
        assert_eq!(wrong.kind, ErrorKind::PasswordLockout);
        assert_eq!(wrong.code.as_deref(), Some("passwordFailed"));
        assert!(wrong.to_string().contains(&format!("{left} tries left")));
        assert_quiet(
            &wrong,
            &["Wrong-Old-P@ss", "Dcs-Next-P@ss2", "Dcs-New-P@ss1"],
        );
    }
    let locked =
        block_on(dcs.update_password(&dcs_update("dcs-1", "Wrong-Old-P@ss", "Dcs-Next-P@ss2")))
            .unwrap_err();
    assert_eq!(
        locked.class,
        ErrorClass::Lockout {
            retry_times_left: Some(0),
            lock_time_left_minutes: Some(5)
        },
        "{locked}"
    );
    assert_eq!(locked.code.as_deref(), Some("locked"));
    assert_eq!(emu.get("dcs/dcs-1")["locked"], true);
    // Locked: even the right old password is refused.
    let still =
        block_on(dcs.update_password(&dcs_update("dcs-1", "Dcs-New-P@ss1", "Dcs-Next-P@ss2")))
            .unwrap_err();
    assert!(still.is_lockout());
    assert_quiet(&still, &["Dcs-New-P@ss1", "Dcs-Next-P@ss2"]);

    // Reset needs no old password.
    let (reset, calls) = calls_during(&emu, "dcs.ResetPassword", || {
        block_on(dcs.reset_password("dcs-2", &Secret::new("Reset-P@ss-3")))
    });
    assert!(reset.unwrap().info.request_id.is_some());
    assert_eq!(calls, 1);
    assert_eq!(emu.get("dcs/dcs-2")["password"], "Reset-P@ss-3");
    let locked_reset = block_on(dcs.reset_password("dcs-1", &Secret::new("Reset-P@ss-4")));
    assert!(locked_reset.unwrap_err().is_lockout(), "code 3: locked");

    let refused = block_on(dcs.reset_password("dcs-2", &Secret::new("short"))).unwrap_err();
    assert_eq!(refused.kind, ErrorKind::InvalidParameter);
    assert_eq!(refused.code.as_deref(), Some("DCS.4019"));
    let missing = block_on(dcs.show_instance("dcs-404")).unwrap_err();
    assert!(missing.is_not_found());
    let traversal = block_on(dcs.reset_password("..", &Secret::new("Reset-P@ss-5"))).unwrap_err();
    assert_eq!(traversal.kind, ErrorKind::InvalidParameter);
}

#[test]
fn ram_access_keys_create_list_delete_and_the_new_key_works() {
    let emu = start();
    let client = ali(&emu);
    let ram = client.ram();
    let listed = block_on(ram.list_access_keys(None)).unwrap();
    assert_eq!(listed.access_keys.len(), 1);
    assert_eq!(listed.access_keys[0].access_key_id, fixture::ALI_AK);
    assert!(listed.access_keys[0].is_active());

    let (created, calls) = calls_during(&emu, "ram.CreateAccessKey", || {
        block_on(ram.create_access_key(None))
    });
    let created = created.unwrap();
    assert_eq!(calls, 1);
    assert!(!created.access_key_secret.is_empty());
    assert!(!format!("{created:?}").contains(created.access_key_secret.expose()));
    let listed = block_on(ram.list_access_keys(Some(fixture::ALI_USER))).unwrap();
    assert_eq!(listed.access_keys.len(), 2);

    // The new key signs requests of its own.
    let fresh = ali_with(
        options(&emu.url, "cn-hangzhou"),
        Credentials::new(
            created.access_key_id.clone(),
            created.access_key_secret.clone(),
        ),
        SignatureVersion::Acs3,
    );
    assert!(block_on(fresh.ram().verify(None)).is_ok());

    let full = block_on(ram.create_access_key(None)).unwrap_err();
    assert_eq!(full.kind, ErrorKind::LimitExceeded);
    assert_eq!(full.class, ErrorClass::Permanent);

    block_on(ram.delete_access_key(None, &created.access_key_id)).unwrap();
    let again = block_on(ram.delete_access_key(None, &created.access_key_id)).unwrap_err();
    assert!(again.is_not_found(), "{again}");
    let gone = block_on(fresh.ram().verify(None)).unwrap_err();
    assert!(gone.is_auth(), "{gone}");
    assert_quiet(&gone, &[created.access_key_secret.expose()]);
    assert_eq!(
        block_on(ram.list_access_keys(None))
            .unwrap()
            .access_keys
            .len(),
        1
    );
    assert!(block_on(ram.verify(None)).is_ok());
    let nobody = block_on(ram.list_access_keys(Some("nobody"))).unwrap_err();
    assert!(nobody.is_not_found());
}

#[test]
fn iam_access_keys_create_list_delete_and_the_new_key_works() {
    let emu = start();
    let client = hw(&emu);
    let iam = client.iam();
    let listed = block_on(iam.list_access_keys(fixture::HW_USER)).unwrap();
    assert_eq!(listed.access_keys.len(), 1);
    assert_eq!(listed.access_keys[0].access, fixture::HW_AK);
    assert!(listed.access_keys[0].is_active());

    let (created, calls) = calls_during(&emu, "iam.CreatePermanentAccessKey", || {
        block_on(iam.create_access_key(fixture::HW_USER, Some("rotated by vault")))
    });
    let created = created.unwrap();
    assert_eq!(calls, 1);
    assert_eq!(created.info.http_status, 201);
    assert!(!format!("{created:?}").contains(created.secret.expose()));
    let listed = block_on(iam.list_access_keys(fixture::HW_USER)).unwrap();
    assert_eq!(listed.access_keys.len(), 2);

    let fresh = hw_with(
        options(&emu.url, "cn-north-4"),
        Credentials::new(created.access.clone(), created.secret.clone()),
    );
    assert!(block_on(fresh.iam().verify(fixture::HW_USER)).is_ok());

    let full = block_on(iam.create_access_key(fixture::HW_USER, None)).unwrap_err();
    assert_eq!(full.kind, ErrorKind::LimitExceeded, "{full}");

    let deleted = block_on(iam.delete_access_key(&created.access)).unwrap();
    assert_eq!(deleted.info.http_status, 204);
    assert!(deleted.info.request_id.is_some());
    let again = block_on(iam.delete_access_key(&created.access)).unwrap_err();
    assert!(again.is_not_found(), "{again}");
    let gone = block_on(fresh.iam().verify(fixture::HW_USER)).unwrap_err();
    assert!(gone.is_auth(), "{gone}");
    assert_quiet(&gone, &[created.secret.expose()]);
    assert!(block_on(iam.verify(fixture::HW_USER)).is_ok());

    // Temporary credentials sign X-Security-Token.
    let temporary = hw_with(
        options(&emu.url, "cn-north-4"),
        Credentials::new(HW_TMP_AK, HW_TMP_SK).with_security_token(HW_TOKEN),
    );
    assert!(block_on(temporary.dcs().verify()).is_ok());
    assert!(block_on(temporary.drs().verify()).is_ok());
}

// ---------------------------------------------------------------------------
// Retries, backoff and pacing

#[test]
fn throttling_is_retried_with_backoff_until_it_succeeds() {
    let emu = start();
    emu.set_faults(json!({"scripted": [
        {"api": "polardb.ModifyAccountPassword", "code": "Throttling.User", "count": 2},
        {"api": "dts.ModifyDtsJobPassword", "code": "Throttling", "count": 1},
        {"api": "dcs.ResetPassword", "code": "APIGW.0308", "count": 2},
        {"api": "drs.BatchResetPassword", "code": "APIGW.0308", "count": 3}
    ]}));
    let ali = ali(&emu);
    let hw = hw(&emu);

    let (changed, calls) = calls_during(&emu, "polardb.ModifyAccountPassword", || {
        block_on(
            ali.polardb()
                .modify_account_password(&polardb_change("Throttled-Pass-1")),
        )
    });
    assert_eq!(changed.unwrap().info.attempts, 3);
    assert_eq!(calls, 3);
    assert_eq!(emu.get("polardb/pc-1/accounts/app")["changes"], 1);

    // Throttling means nothing was applied: even the non-idempotent call
    // goes again.
    let (changed, calls) = calls_during(&emu, "dts.ModifyDtsJobPassword", || {
        block_on(ali.dts().modify_dts_job_password(&dts_change(
            DtsEndpoint::Source,
            "app",
            "Throttled-Pass-2",
        )))
    });
    assert_eq!(changed.unwrap().info.attempts, 2);
    assert_eq!(calls, 2);

    let (reset, calls) = calls_during(&emu, "dcs.ResetPassword", || {
        block_on(
            hw.dcs()
                .reset_password("dcs-2", &Secret::new("Throttled-P@ss3")),
        )
    });
    assert_eq!(reset.unwrap().info.attempts, 3);
    assert_eq!(calls, 3, "HTTP 429 APIGW.0308 is retried");

    let (batch, calls) = calls_during(&emu, "drs.BatchResetPassword", || {
        block_on(hw.drs().batch_modify_password(&[drs_change(
            "drsjob1",
            DrsEndpointType::Source,
            "Throttled-Pass-4",
        )]))
    });
    let batch = batch.unwrap();
    assert!(batch.all_succeeded());
    assert_eq!(batch.info.attempts, 4);
    assert_eq!(calls, 4);
    assert_eq!(outcome(&emu, "scripted"), 8);

    // The budget is bounded: throttled for good, the last error comes back.
    emu.set_faults(json!({"scripted": [
        {"api": "polardb.DescribeAccounts", "code": "Throttling.Api", "count": 50}
    ]}));
    let (given_up, calls) = calls_during(&emu, "polardb.DescribeAccounts", || {
        block_on(ali.polardb().describe_accounts(&DescribeAccountsRequest {
            db_cluster_id: "pc-1".into(),
            account_name: None,
        }))
    });
    let given_up = given_up.unwrap_err();
    assert!(given_up.is_throttled() && given_up.is_retryable());
    assert_eq!(given_up.attempts, 4);
    assert_eq!(calls, 4);
    assert!(given_up.to_string().contains("after 4 attempts"));
}

#[test]
fn x_acs_retry_after_is_honoured() {
    let emu = start();
    // One request per 400 ms per key: the second request of a quick pair
    // is throttled with `x-acs-retry-after` (milliseconds).
    emu.set_faults(json!({"rate_limit_per_key": {"requests_per_second": 2.5, "burst": 1}}));
    let client = ali(&emu);
    let rt = runtime();
    rt.block_on(client.polardb().verify()).unwrap();
    let started = Instant::now();
    let (verified, calls) = calls_during(&emu, "polardb.DescribeRegions", || {
        rt.block_on(client.polardb().verify())
    });
    let waited = started.elapsed();
    let verified = verified.unwrap();
    // Our own backoff (5 ms base) would have tried again at once and been
    // throttled several times; the server's wait makes the second try pass.
    assert_eq!(verified.info.attempts, 2, "{verified:?}");
    assert_eq!(calls, 2);
    assert!(waited >= ms(350), "waited only {waited:?}");
    assert_eq!(outcome(&emu, "rate_limited"), 1);
}

/// A 5xx may come after the backend acted: outcome unknown, re-sent only
/// by idempotent calls (and within the budget).
#[test]
fn server_errors_are_resent_only_by_idempotent_calls_and_bounded() {
    let emu = start();
    emu.set_faults(json!({"scripted": [
        {"api": "polardb.ModifyAccountPassword", "code": "InternalError", "count": 1},
        {"api": "polardb.ModifyAccountPassword", "code": "ServiceUnavailable", "count": 1},
        {"api": "drs.BatchResetPassword", "code": "APIGW.0201", "status": 502, "count": 1},
        {"api": "drs.BatchResetPassword", "code": "APIGW.0201", "status": 504, "count": 1},
        {"api": "dcs.ShowInstance", "code": "DCS.5000", "status": 500, "count": 20}
    ]}));
    let ali = ali(&emu);
    let hw = hw(&emu);
    let (changed, calls) = calls_during(&emu, "polardb.ModifyAccountPassword", || {
        block_on(
            ali.polardb()
                .modify_account_password(&polardb_change("Recovered-Pass-1")),
        )
    });
    assert_eq!(changed.unwrap().info.attempts, 3);
    assert_eq!(calls, 3);
    let (batch, calls) = calls_during(&emu, "drs.BatchResetPassword", || {
        block_on(hw.drs().batch_modify_password(&[drs_change(
            "drsjob1",
            DrsEndpointType::Target,
            "Recovered-Pass-2",
        )]))
    });
    assert!(batch.unwrap().all_succeeded());
    assert_eq!(calls, 3);

    let (failed, calls) = calls_during(&emu, "dcs.ShowInstance", || {
        block_on(hw.dcs().show_instance("dcs-1"))
    });
    let failed = failed.unwrap_err();
    assert_eq!(
        (failed.class, failed.kind),
        (ErrorClass::OutcomeUnknown, ErrorKind::ServerError)
    );
    assert_eq!(failed.http_status, Some(500));
    assert_eq!(failed.code.as_deref(), Some("DCS.5000"));
    assert!(failed.request_id.is_some(), "X-Request-Id kept");
    assert_eq!((failed.attempts, calls), (4, 4));

    // Random 5xx from a seeded fault mix: every call still succeeds.
    emu.set_faults(
        json!({"seed": 11, "server_error_rate": 0.5, "apis": ["polardb.DescribeAccounts"]}),
    );
    let client = ali.clone().with_retry_policy(fast(10));
    for _ in 0..10 {
        block_on(
            client
                .polardb()
                .describe_accounts(&DescribeAccountsRequest {
                    db_cluster_id: "pc-1".into(),
                    account_name: None,
                }),
        )
        .unwrap();
    }
    assert!(outcome(&emu, "server_error") > 0);
}

/// The emulator's applied-then-gateway-error fault: each changing call
/// that is not idempotent is sent once and reported as outcome unknown,
/// while the change did happen.
#[test]
fn a_change_answered_with_a_gateway_error_after_it_applied_is_outcome_unknown() {
    let emu = start();
    emu.set_faults(json!({"seed": 3, "gateway_error_after_apply_rate": 1.0,
        "apis": ["dcs.UpdatePassword", "dts.ModifyDtsJobPassword", "iam.CreatePermanentAccessKey", "ram.CreateAccessKey"]}));
    let (updated, calls) = calls_during(&emu, "dcs.UpdatePassword", || {
        block_on(hw(&emu).dcs().update_password(&dcs_update(
            "dcs-1",
            fixture::INITIAL,
            "Applied-P@ss-504",
        )))
    });
    let updated = updated.unwrap_err();
    assert!(updated.is_outcome_unknown(), "{updated}");
    assert!(matches!(updated.http_status, Some(502 | 504)));
    assert_eq!(updated.code.as_deref(), Some("APIGW.0201"));
    assert_eq!(calls, 1, "never re-sent: it would burn a DCS try");
    assert_eq!(emu.get("dcs/dcs-1")["password"], "Applied-P@ss-504");

    let (changed, calls) = calls_during(&emu, "dts.ModifyDtsJobPassword", || {
        block_on(ali(&emu).dts().modify_dts_job_password(&dts_change(
            DtsEndpoint::Source,
            "app",
            "Applied-P@ss-503",
        )))
    });
    let changed = changed.unwrap_err();
    assert!(changed.is_outcome_unknown(), "{changed}");
    assert!(matches!(
        changed.code.as_deref(),
        Some("InternalError" | "ServiceUnavailable")
    ));
    assert_eq!(calls, 1);
    assert_eq!(
        emu.get("dts/dtsjob1")["src"]["password"],
        "Applied-P@ss-503"
    );
    assert_eq!(outcome(&emu, "gateway_error_after_apply"), 2);
}

#[test]
fn a_change_applied_whose_answer_is_lost_is_outcome_unknown_and_not_sent_again() {
    let emu = start();
    let ali_client = ali(&emu);
    let hw_client = {
        let mut options = options(&emu.url, "cn-north-4");
        options.request_timeout = ms(400);
        hw_with(options, Credentials::new(fixture::HW_AK, fixture::HW_SK))
    };

    // The connection closes after the change was applied.
    emu.set_faults(json!({"drop_after_apply_rate": 1.0, "apis": [
        "dts.ModifyDtsJobPassword", "ram.CreateAccessKey", "polardb.ModifyAccountPassword",
        "iam.CreatePermanentAccessKey"
    ]}));
    let (lost, calls) = calls_during(&emu, "dts.ModifyDtsJobPassword", || {
        block_on(ali_client.dts().modify_dts_job_password(&dts_change(
            DtsEndpoint::Source,
            "app",
            "Lost-Answer-P@ss1",
        )))
    });
    let lost = lost.unwrap_err();
    assert_eq!(lost.class, ErrorClass::OutcomeUnknown, "{lost}");
    assert_eq!(lost.kind, ErrorKind::ConnectionLost);
    assert_eq!(calls, 1, "a non-idempotent call is never re-sent");
    assert_eq!(lost.attempts, 1);
    assert_eq!(
        emu.get("dts/dtsjob1")["src"]["password"],
        "Lost-Answer-P@ss1"
    );
    assert_quiet(&lost, &["Lost-Answer-P@ss1"]);

    let (created, calls) = calls_during(&emu, "ram.CreateAccessKey", || {
        block_on(ali_client.ram().create_access_key(None))
    });
    assert!(created.unwrap_err().is_outcome_unknown());
    assert_eq!(calls, 1);
    assert_eq!(
        block_on(ali_client.ram().list_access_keys(None))
            .unwrap()
            .access_keys
            .len(),
        2,
        "the key exists: the caller must find and delete it"
    );
    let (created, calls) = calls_during(&emu, "iam.CreatePermanentAccessKey", || {
        block_on(hw_client.iam().create_access_key(fixture::HW_USER, None))
    });
    assert!(created.unwrap_err().is_outcome_unknown());
    assert_eq!(calls, 1);

    // PolarDB's change is idempotent: it goes again, every answer is lost.
    let (idempotent, calls) = calls_during(&emu, "polardb.ModifyAccountPassword", || {
        block_on(
            ali_client
                .polardb()
                .modify_account_password(&polardb_change("Lost-Answer-P@ss2")),
        )
    });
    let idempotent = idempotent.unwrap_err();
    assert!(idempotent.is_outcome_unknown());
    assert_eq!((idempotent.attempts, calls), (4, 4));

    // Held open past the client's timeout: the same, as a timeout.
    emu.set_faults(
        json!({"drop_after_apply_rate": 1.0, "drop_after_apply_hold_ms": 1500,
        "apis": ["dcs.UpdatePassword"]}),
    );
    let started = Instant::now();
    let (timed_out, calls) = calls_during(&emu, "dcs.UpdatePassword", || {
        block_on(hw_client.dcs().update_password(&dcs_update(
            "dcs-1",
            fixture::INITIAL,
            "Lost-Answer-P@ss3",
        )))
    });
    let timed_out = timed_out.unwrap_err();
    assert!(started.elapsed() < ms(1400), "the request timeout cut it");
    assert_eq!(
        (timed_out.class, timed_out.kind),
        (ErrorClass::OutcomeUnknown, ErrorKind::Timeout),
        "{timed_out}"
    );
    assert_eq!(calls, 1, "never re-sent: it would burn a DCS try");
    assert_eq!(emu.get("dcs/dcs-1")["password"], "Lost-Answer-P@ss3");
    assert_quiet(&timed_out, &["Lost-Answer-P@ss3"]);

    // The caller checks: DTS refuses the password now current.
    emu.set_faults(json!({}));
    let check = block_on(ali_client.dts().modify_dts_job_password(&dts_change(
        DtsEndpoint::Source,
        "app",
        "Lost-Answer-P@ss1",
    )))
    .unwrap_err();
    assert!(check.is_password_refused());
}

#[test]
fn auth_and_signature_errors_are_permanent_and_sent_exactly_once() {
    let emu = start();
    let new = "Never-Shown-P@ss1";
    let with = |credentials: Credentials, signature| {
        ali_with(options(&emu.url, "cn-hangzhou"), credentials, signature)
    };
    let cases = [
        (
            "wrong secret, ACS3",
            with(
                Credentials::new(fixture::ALI_AK, "not-the-secret"),
                SignatureVersion::Acs3,
            ),
            "SignatureDoesNotMatch",
        ),
        (
            "wrong secret, V2",
            with(
                Credentials::new(fixture::ALI_AK, "not-the-secret"),
                SignatureVersion::V2,
            ),
            "SignatureDoesNotMatch",
        ),
        (
            "unknown key",
            with(
                Credentials::new("LTAI-unknown", fixture::ALI_SK),
                SignatureVersion::Acs3,
            ),
            "InvalidAccessKeyId.NotFound",
        ),
        (
            "wrong token",
            with(
                Credentials::new(STS_AK, STS_SK).with_security_token("CAIS-forged-token"),
                SignatureVersion::Acs3,
            ),
            "InvalidSecurityToken.Malformed",
        ),
        (
            "missing token",
            with(Credentials::new(STS_AK, STS_SK), SignatureVersion::V2),
            "InvalidSecurityToken.Malformed",
        ),
    ];
    for (name, client, code) in cases {
        // PolarDB's change is idempotent and would be retried if the class allowed it.
        let (error, calls) = calls_during(&emu, "polardb.ModifyAccountPassword", || {
            block_on(
                client
                    .polardb()
                    .modify_account_password(&polardb_change(new)),
            )
        });
        let error = error.unwrap_err();
        assert_eq!(calls, 1, "{name}: sent exactly once");
        assert_eq!(
            (error.class, error.kind),
            (ErrorClass::Permanent, ErrorKind::Auth),
            "{name}: {error}"
        );
        assert_eq!(error.code.as_deref(), Some(code), "{name}");
        assert_quiet(&error, &[new, "not-the-secret", "CAIS-forged-token"]);
        if name == "wrong secret, V2" {
            // The server echoes its string to sign, with the new password in it.
            assert!(
                error
                    .message
                    .contains("server string to sign is: [redacted]"),
                "{error}"
            );
            assert!(!error.message.contains("NewAccountPassword"), "{error}");
        }
    }
    assert_eq!(emu.get("polardb/pc-1/accounts/app")["changes"], 0);

    // A skewed clock is an auth error too.
    set_clock_offset(&emu, 20.0 * 60.0);
    let (skewed, calls) = calls_during(&emu, "polardb.DescribeRegions", || {
        block_on(ali(&emu).polardb().verify())
    });
    let skewed = skewed.unwrap_err();
    assert_eq!(calls, 1);
    assert_eq!(skewed.code.as_deref(), Some("InvalidTimeStamp.Expired"));
    assert!(skewed.is_auth());
    let (skewed, calls) = calls_during(&emu, "dcs.ListInstances", || {
        block_on(hw(&emu).dcs().verify())
    });
    assert_eq!(skewed.unwrap_err().code.as_deref(), Some("APIGW.0301"));
    assert_eq!(calls, 1);
    set_clock_offset(&emu, 0.0);

    // Huawei: a wrong SK. Never retried (five failures lock the AK/SK).
    let wrong = hw_with(
        options(&emu.url, "cn-north-4"),
        Credentials::new(fixture::HW_AK, "not-the-secret"),
    );
    let (error, calls) = calls_during(&emu, "drs.BatchResetPassword", || {
        block_on(wrong.drs().batch_modify_password(&[drs_change(
            "drsjob1",
            DrsEndpointType::Source,
            new,
        )]))
    });
    let error = error.unwrap_err();
    assert_eq!(calls, 1);
    assert_eq!(
        (error.class, error.kind, error.code.as_deref()),
        (ErrorClass::Permanent, ErrorKind::Auth, Some("APIGW.0301")),
        "{error}"
    );
    assert_eq!(error.http_status, Some(401));
    assert!(error.request_id.is_some());
    assert_quiet(&error, &[new, "not-the-secret"]);
    let (error, calls) = calls_during(&emu, "dcs.UpdatePassword", || {
        block_on(
            wrong
                .dcs()
                .update_password(&dcs_update("dcs-1", fixture::INITIAL, new)),
        )
    });
    assert!(error.unwrap_err().is_auth());
    assert_eq!(calls, 1);
    assert_eq!(outcome(&emu, "auth_failed"), 9);
    assert_eq!(outcome(&emu, "locked"), 0, "the AK/SK was not locked");

    // Permission refusals are permanent as well.
    emu.set_faults(json!({"scripted": [
        {"api": "dts.ModifyDtsJobPassword", "code": "Forbidden.RAM", "count": 1},
        {"api": "dcs.ResetPassword", "code": "APIGW.0302", "count": 1}
    ]}));
    let (denied, calls) = calls_during(&emu, "dts.ModifyDtsJobPassword", || {
        block_on(ali(&emu).dts().modify_dts_job_password(&dts_change(
            DtsEndpoint::Source,
            "app",
            new,
        )))
    });
    let denied = denied.unwrap_err();
    assert_eq!(
        (denied.class, denied.kind, calls),
        (ErrorClass::Permanent, ErrorKind::PermissionDenied, 1)
    );
    let (denied, calls) = calls_during(&emu, "dcs.ResetPassword", || {
        block_on(hw(&emu).dcs().reset_password("dcs-2", &Secret::new(new)))
    });
    let denied = denied.unwrap_err();
    assert_eq!(
        (denied.kind, denied.http_status, calls),
        (ErrorKind::PermissionDenied, Some(403), 1)
    );
}

fn set_clock_offset(emu: &Emulator, seconds: f64) {
    let reply = reqwest::blocking::Client::new()
        .put(format!("{}/_emulator/clock", emu.url))
        .json(&json!({ "offset_seconds": seconds }))
        .send()
        .unwrap();
    assert!(reply.status().is_success());
}

#[test]
fn pacing_keeps_a_burst_of_calls_under_the_provider_limit() {
    let emu = start();
    emu.set_faults(json!({"rate_limit_per_key": {"requests_per_second": 10.0, "burst": 2}}));
    let burst = |client: AlibabaClient| -> Vec<Result<u32, ProviderError>> {
        runtime().block_on(async move {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let client = client.clone();
                    tokio::spawn(async move {
                        client
                            .polardb()
                            .describe_accounts(&DescribeAccountsRequest {
                                db_cluster_id: "pc-1".into(),
                                account_name: None,
                            })
                            .await
                            .map(|r| r.info.attempts)
                    })
                })
                .collect();
            let mut results = Vec::new();
            for handle in handles {
                results.push(handle.await.unwrap());
            }
            results
        })
    };

    let mut paced = options(&emu.url, "cn-hangzhou");
    paced.requests_per_second = Some(8.0);
    paced.burst = 1;
    let client = ali_with(
        paced,
        Credentials::new(fixture::ALI_AK, fixture::ALI_SK),
        SignatureVersion::Acs3,
    )
    .with_retry_policy(RetryPolicy::none());
    let started = Instant::now();
    let results = burst(client);
    let took = started.elapsed();
    assert!(
        results.iter().all(|r| matches!(r, Ok(1))),
        "every paced call passes at the first try: {results:?}"
    );
    assert_eq!(outcome(&emu, "rate_limited"), 0);
    assert!(
        took >= ms(800),
        "8 calls at 8/s take ~875 ms, took {took:?}"
    );

    // The same burst unpaced trips the limit: the pacing is what helps.
    std::thread::sleep(ms(500));
    let unpaced = ali(&emu).with_retry_policy(RetryPolicy::none());
    let results = burst(unpaced);
    let throttled = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.is_throttled()))
        .count();
    assert!(throttled >= 3, "{results:?}");
    assert_eq!(outcome(&emu, "rate_limited"), throttled as u64);
}

#[test]
fn timeouts_and_refused_connections_are_classified() {
    let emu = start();
    // A slow answer to an idempotent read: outcome unknown, and retried.
    emu.set_faults(json!({"latency_ms": {"fixed": 1000}, "apis": ["polardb.DescribeAccounts"]}));
    let mut slow = options(&emu.url, "cn-hangzhou");
    slow.request_timeout = ms(200);
    let client = ali_with(
        slow,
        Credentials::new(fixture::ALI_AK, fixture::ALI_SK),
        SignatureVersion::Acs3,
    )
    .with_retry_policy(fast(2));
    let (timed_out, calls) = calls_during(&emu, "polardb.DescribeAccounts", || {
        block_on(
            client
                .polardb()
                .describe_accounts(&DescribeAccountsRequest {
                    db_cluster_id: "pc-1".into(),
                    account_name: None,
                }),
        )
    });
    let timed_out = timed_out.unwrap_err();
    assert_eq!(
        (timed_out.class, timed_out.kind),
        (ErrorClass::OutcomeUnknown, ErrorKind::Timeout)
    );
    assert_eq!((timed_out.attempts, calls), (2, 2));
    assert!(
        !timed_out.to_string().contains("127.0.0.1"),
        "no URL: {timed_out}"
    );

    // Nothing listens: nothing was sent, so even a non-idempotent call is retried.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let closed = ali_with(
        options(&format!("http://127.0.0.1:{port}"), "cn-hangzhou"),
        Credentials::new(fixture::ALI_AK, fixture::ALI_SK),
        SignatureVersion::Acs3,
    );
    let refused = block_on(closed.dts().modify_dts_job_password(&dts_change(
        DtsEndpoint::Source,
        "app",
        "Refused-P@ss-1",
    )))
    .unwrap_err();
    assert_eq!(
        (refused.class, refused.kind),
        (ErrorClass::Retryable, ErrorKind::Connect)
    );
    assert_eq!(refused.attempts, 4);
    assert_quiet(&refused, &["Refused-P@ss-1"]);
    let closed_hw = hw_with(
        options(&format!("http://127.0.0.1:{port}"), "cn-north-4"),
        Credentials::new(fixture::HW_AK, fixture::HW_SK),
    );
    let refused = block_on(closed_hw.dcs().verify()).unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Connect);
}

#[test]
fn plain_http_only_when_the_base_url_says_so() {
    let emu = start();
    let bare = emu.url.trim_start_matches("http://").to_owned();
    let ali_bare = ali_with(
        options(&bare, "cn-hangzhou"),
        Credentials::new(fixture::ALI_AK, fixture::ALI_SK),
        SignatureVersion::Acs3,
    )
    .with_retry_policy(fast(1));
    let hw_bare = hw_with(
        options(&bare, "cn-north-4"),
        Credentials::new(fixture::HW_AK, fixture::HW_SK),
    )
    .with_retry_policy(fast(1));
    for service in AlibabaService::ALL {
        assert_eq!(ali_bare.base_url(service).scheme(), "https");
        assert_eq!(ali(&emu).base_url(service).scheme(), "http");
    }
    for service in HuaweiService::ALL {
        assert_eq!(hw_bare.base_url(service).scheme(), "https");
        assert_eq!(hw(&emu).base_url(service).scheme(), "http");
    }
    // The emulator speaks plain HTTP: a TLS client gets nowhere, and no
    // request (so no password) ever reaches it.
    let error = block_on(
        ali_bare
            .polardb()
            .modify_account_password(&polardb_change("Tls-Only-P@ss-1")),
    )
    .unwrap_err();
    assert_eq!(
        (error.class, error.kind),
        (ErrorClass::Retryable, ErrorKind::Tls),
        "{error}"
    );
    let error = block_on(hw_bare.dcs().verify()).unwrap_err();
    assert_eq!(
        (error.class, error.kind),
        (ErrorClass::Retryable, ErrorKind::Tls),
        "{error}"
    );
    let calls = emu.counters()["calls"].clone();
    assert_eq!(calls, json!({}), "nothing reached the emulator: {calls}");

    // Default endpoints are HTTPS hosts of the region.
    let mut no_endpoint = ConnectionOptions::new("cn-shenzhen");
    no_endpoint.requests_per_second = None;
    let defaults = ali_with(
        no_endpoint,
        Credentials::new(fixture::ALI_AK, fixture::ALI_SK),
        SignatureVersion::Acs3,
    );
    assert_eq!(
        defaults.base_url(AlibabaService::Polardb).as_str(),
        "https://polardb.cn-shenzhen.aliyuncs.com/"
    );
    assert_eq!(
        defaults.base_url(AlibabaService::Dts).as_str(),
        "https://dts.aliyuncs.com/"
    );
}

#[test]
fn provider_messages_echoing_secrets_or_urls_are_redacted() {
    let emu = start();
    let password = "Echoed-P@ss-123";
    let message = format!(
        "NewAccountPassword={password} rejected; see https://help.example/q?Password={}&a=b for {}",
        percent_encode(password),
        fixture::ALI_SK
    );
    emu.set_faults(json!({"scripted": [
        {"api": "polardb.ModifyAccountPassword", "code": "InvalidAccountPassword.Malformed", "message": message},
        {"api": "dcs.ResetPassword", "code": "DCS.4019", "message": format!("password {password} is weak")}
    ]}));
    let error = block_on(
        ali(&emu)
            .polardb()
            .modify_account_password(&polardb_change(password)),
    )
    .unwrap_err();
    assert_quiet(&error, &[password]);
    assert!(
        error.message.contains("https://help.example/q?[redacted]"),
        "{error}"
    );
    let error = block_on(
        hw(&emu)
            .dcs()
            .reset_password("dcs-2", &Secret::new(password)),
    )
    .unwrap_err();
    assert_quiet(&error, &[password]);
    assert_eq!(error.code.as_deref(), Some("DCS.4019"));
    let shown: Value = json!(error.to_string());
    assert!(shown.as_str().unwrap().contains("[redacted]"));
}

// ---------------------------------------------------------------------------
// Account lifecycles (PolarDB accounts, DCS ACL accounts)

/// CreateAccount with a client token is idempotent: after an applied
/// change answered with a server error, the client sends it again and the
/// emulator answers the repeat like the first. Without a token the same
/// fault comes back as outcome unknown after one request.
#[test]
fn polardb_create_account_is_resent_only_with_a_client_token() {
    use cloudrotate::providers::alicloud::polardb::accounts::{
        AccountPrivilege, CreateAccountRequest, DatabaseGrant, DeleteAccountRequest,
        PolarDbAccountType,
    };
    let emu = start();
    emu.seed(
        json!({"alicloud": {"polardb_clusters": [{"id": "pc-1", "databases": ["db1"],
        "account_settle_seconds": 0.0}]}}),
    );
    let create = |name: &str, token: Option<&str>| CreateAccountRequest {
        db_cluster_id: "pc-1".into(),
        account_name: name.into(),
        account_password: Secret::new("Lease-P@ss-1"),
        account_type: PolarDbAccountType::Normal,
        account_description: None,
        grants: vec![DatabaseGrant {
            db_name: "db1".into(),
            privilege: AccountPrivilege::ReadWrite,
        }],
        client_token: token.map(str::to_owned),
    };
    emu.set_faults(json!({"seed": 5, "gateway_error_after_apply_rate": 1.0,
        "apis": ["polardb.CreateAccount"]}));
    let polardb = ali(&emu).with_retry_policy(fast(2)).polardb();
    let (created, calls) = calls_during(&emu, "polardb.CreateAccount", || {
        block_on(polardb.create_account(&create("lease_a", Some("lease-a-token"))))
    });
    let error = created.unwrap_err();
    assert_eq!((calls, error.attempts), (2, 2), "re-sent with its token");
    assert!(error.is_outcome_unknown());
    emu.set_faults(json!({}));
    block_on(polardb.create_account(&create("lease_a", Some("lease-a-token"))))
        .expect("the same token is answered like the first request");

    emu.set_faults(json!({"seed": 5, "gateway_error_after_apply_rate": 1.0,
        "apis": ["polardb.CreateAccount"]}));
    let (created, calls) = calls_during(&emu, "polardb.CreateAccount", || {
        block_on(polardb.create_account(&create("lease_b", None)))
    });
    assert!(created.unwrap_err().is_outcome_unknown());
    assert_eq!(calls, 1, "no token: never re-sent");
    emu.set_faults(json!({}));
    let duplicate = block_on(polardb.create_account(&create("lease_b", None))).unwrap_err();
    assert_eq!(
        duplicate.code.as_deref(),
        Some("InvalidAccountName.Duplicate")
    );
    assert_eq!(duplicate.kind, ErrorKind::InvalidParameter);
    assert_quiet(&duplicate, &["Lease-P@ss-1"]);

    let accounts = block_on(polardb.describe_accounts(&DescribeAccountsRequest {
        db_cluster_id: "pc-1".into(),
        account_name: Some("lease_a".into()),
    }))
    .unwrap()
    .accounts;
    assert!(accounts[0].is_available());
    assert_eq!(accounts[0].privilege_on("db1"), Some("ReadWrite"));
    let delete = DeleteAccountRequest {
        db_cluster_id: "pc-1".into(),
        account_name: "lease_a".into(),
    };
    block_on(polardb.delete_account(&delete)).unwrap();
    emu.advance_clock(1.0);
    let gone = block_on(polardb.delete_account(&delete)).unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
}

/// DCS ACL accounts through the client: create (no id in the answer: the
/// list has it), a wrong old password is a lockout-class error never sent
/// twice, reset needs no old password, a busy account is retried as busy.
#[test]
fn dcs_acl_accounts_through_the_client() {
    use cloudrotate::providers::huaweicloud::dcs::acl::{
        AclAccountRole, CreateAclAccountRequest, UpdateAclAccountPasswordRequest,
    };
    let emu = start();
    let dcs = hw(&emu).dcs();
    block_on(dcs.create_acl_account(&CreateAclAccountRequest {
        instance_id: "dcs-1".into(),
        account_name: "app_green".into(),
        account_role: AclAccountRole::Write,
        account_password: Secret::new("Green-P@ss-1"),
        description: Some("issue 12".into()),
    }))
    .unwrap();
    let list = block_on(dcs.list_acl_accounts("dcs-1")).unwrap();
    let account = list.by_name("app_green").unwrap().clone();
    assert_eq!(account.status.as_deref(), Some("CREATING"));
    assert_eq!(account.role(), Some(AclAccountRole::Write));
    let (busy, calls) = calls_during(&emu, "dcs.ResetAclAccountPassWord", || {
        block_on(dcs.reset_acl_account_password(
            "dcs-1",
            &account.account_id,
            &Secret::new("Green-P@ss-2"),
        ))
    });
    let busy = busy.unwrap_err();
    assert_eq!(
        (busy.code.as_deref(), busy.kind),
        (Some("DCS.4026"), ErrorKind::Busy)
    );
    assert_eq!(calls, 4, "busy is retried");
    emu.advance_clock(2.0);
    let change = |old: &str| UpdateAclAccountPasswordRequest {
        instance_id: "dcs-1".into(),
        account_id: account.account_id.clone(),
        old_password: Secret::new(old),
        new_password: Secret::new("Green-P@ss-3"),
    };
    let (wrong, calls) = calls_during(&emu, "dcs.UpdateAclAccountPassWord", || {
        block_on(dcs.update_acl_account_password(&change("Wrong-P@ss-9")))
    });
    let wrong = wrong.unwrap_err();
    assert_eq!(
        wrong.class,
        ErrorClass::Lockout {
            retry_times_left: Some(4),
            lock_time_left_minutes: Some(0)
        }
    );
    assert_eq!(calls, 1);
    assert_quiet(&wrong, &["Wrong-P@ss-9", "Green-P@ss-1", "Green-P@ss-3"]);
    block_on(dcs.update_acl_account_password(&change("Green-P@ss-1"))).unwrap();
    block_on(dcs.reset_acl_account_password(
        "dcs-1",
        &account.account_id,
        &Secret::new("Green-P@ss-4"),
    ))
    .unwrap();
    assert_eq!(
        emu.get("dcs/dcs-1/accounts/app_green")["password"],
        "Green-P@ss-4"
    );
}
