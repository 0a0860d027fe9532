//! The Rust half of `tests/error_paths.json`: each error path, provoked
//! with the Rust clients against the emulator, gives the status and code
//! the official SDKs see (tests/python/test_error_paths.py checks those)
//! and the class and kind the file names.

#[path = "support/emulator.rs"]
mod emulator;

use cloudrotate::providers::alicloud::client::{AlibabaClient, AlibabaConfig, SignatureVersion};
use cloudrotate::providers::alicloud::dts::{DtsEndpoint, ModifyDtsJobPasswordRequest};
use cloudrotate::providers::alicloud::polardb::ModifyAccountPasswordRequest;
use cloudrotate::providers::huaweicloud::client::{HuaweiClient, HuaweiConfig};
use cloudrotate::providers::huaweicloud::drs::{DrsEndpointType, DrsPasswordChange};
use cloudrotate::providers::{ConnectionOptions, Credentials, ProviderError, RetryPolicy, Secret};
use emulator::{Emulator, fixture};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct Paths {
    paths: Vec<ErrorPath>,
}

#[derive(Deserialize)]
struct ErrorPath {
    path: String,
    status: u16,
    code: String,
    class: String,
    kind: String,
}

fn options(emu: &Emulator) -> ConnectionOptions {
    let mut options = ConnectionOptions::new("cn-hangzhou");
    options.endpoint = Some(emu.url.clone());
    options.requests_per_second = None;
    options
}

/// Both clouds' clients, sending every call once.
fn clients(emu: &Emulator) -> (AlibabaClient, HuaweiClient) {
    let ali = AlibabaClient::new(AlibabaConfig {
        credentials: Credentials::new(fixture::ALI_AK, fixture::ALI_SK),
        options: options(emu),
        signature: SignatureVersion::Acs3,
    })
    .unwrap()
    .with_retry_policy(RetryPolicy::none());
    let hw = HuaweiClient::new(HuaweiConfig {
        credentials: Credentials::new(fixture::HW_AK, fixture::HW_SK),
        options: options(emu),
        project_id: fixture::PROJECT.to_owned(),
        domain_id: Some("0a1b2c3d4e5f".into()),
    })
    .unwrap()
    .with_retry_policy(RetryPolicy::none());
    (ali, hw)
}

fn polardb_change(cluster: &str, password: &str) -> ModifyAccountPasswordRequest {
    ModifyAccountPasswordRequest {
        db_cluster_id: cluster.into(),
        account_name: "app".into(),
        new_password: Secret::new(password),
        password_type: None,
    }
}

fn dts_change(password: &str) -> ModifyDtsJobPasswordRequest {
    ModifyDtsJobPasswordRequest {
        dts_job_id: "dtsjob1".into(),
        endpoint: DtsEndpoint::Source,
        user_name: "app".into(),
        password: Secret::new(password),
        region_id: None,
        synchronization_direction: None,
    }
}

/// Puts the emulator in the state `path` needs. Apart from `provoke`: the
/// admin client blocks, which must not happen inside the runtime (reqwest
/// panics there in debug builds).
fn arrange(emu: &Emulator, path: &str) {
    match path {
        "polardb_service_unavailable" => emu
            .set_faults(json!({"scripted": [{"api": "polardb.ModifyAccountPassword",
                "code": "ServiceUnavailable", "count": 5}]})),
        "dts_job_state" => emu.patch_status("dts/dtsjob1", "Modifying"),
        "dcs_not_running" => emu.patch_status("dcs/dcs-1", "RESTARTING"),
        "dcs_gateway_timeout" => emu.set_faults(json!({"scripted": [{"api": "dcs.ShowInstance",
            "code": "APIGW.0201", "status": 504, "count": 5}]})),
        "drs_busy" => emu.set_faults(json!({"scripted": [{"api": "drs.BatchResetPassword",
            "code": "DRS.M01504", "count": 5}]})),
        _ => {}
    }
}

/// Provokes `path` (arranged) and returns the error the Rust client reports.
async fn provoke(emu: &Emulator, path: &str) -> ProviderError {
    let (ali, hw) = clients(emu);
    let expect_error = |what: &str| format!("{path}: {what} succeeded");
    match path {
        "polardb_password_malformed" => ali
            .polardb()
            .modify_account_password(&polardb_change("pc-1", "short"))
            .await
            .expect_err(&expect_error("the change")),
        "polardb_cluster_missing" => ali
            .polardb()
            .modify_account_password(&polardb_change("pc-nope", "Valid-P@ss-1"))
            .await
            .expect_err(&expect_error("the change")),
        "polardb_service_unavailable" => ali
            .polardb()
            .modify_account_password(&polardb_change("pc-1", "Valid-P@ss-1"))
            .await
            .expect_err(&expect_error("the change")),
        "dts_same_password" => {
            ali.dts()
                .modify_dts_job_password(&dts_change("Same-P@ss-1"))
                .await
                .unwrap();
            ali.dts()
                .modify_dts_job_password(&dts_change("Same-P@ss-1"))
                .await
                .expect_err(&expect_error("the second change"))
        }
        "dts_job_missing" => ali
            .dts()
            .describe_dts_job_detail("nojob", None)
            .await
            .expect_err(&expect_error("the lookup")),
        "dts_job_state" => ali
            .dts()
            .modify_dts_job_password(&dts_change("Valid-P@ss-1"))
            .await
            .expect_err(&expect_error("the change")),
        "ram_key_limit" => {
            ali.ram()
                .create_access_key(Some(fixture::ALI_USER))
                .await
                .unwrap();
            ali.ram()
                .create_access_key(Some(fixture::ALI_USER))
                .await
                .expect_err(&expect_error("a third key"))
        }
        "dcs_invalid_password" => hw
            .dcs()
            .reset_password("dcs-1", &Secret::new("short"))
            .await
            .expect_err(&expect_error("the reset")),
        "dcs_instance_missing" => hw
            .dcs()
            .show_instance("nope")
            .await
            .expect_err(&expect_error("the lookup")),
        "dcs_not_running" => hw
            .dcs()
            .reset_password("dcs-1", &Secret::new("Valid-P@ss-1"))
            .await
            .expect_err(&expect_error("the reset")),
        "dcs_gateway_timeout" => hw
            .dcs()
            .show_instance("dcs-1")
            .await
            .expect_err(&expect_error("the lookup")),
        "drs_busy" => hw
            .drs()
            .batch_modify_password(&[DrsPasswordChange {
                job_id: "drsjob1".into(),
                end_point_type: DrsEndpointType::Source,
                db_password: Secret::new("Valid-P@ss-1"),
            }])
            .await
            .expect_err(&expect_error("the batch")),
        "iam_key_limit" => {
            hw.iam()
                .create_access_key(fixture::HW_USER, None)
                .await
                .unwrap();
            hw.iam()
                .create_access_key(fixture::HW_USER, None)
                .await
                .expect_err(&expect_error("a third key"))
        }
        "iam_key_missing" => hw
            .iam()
            .delete_access_key("NOSUCHACCESSKEY00001")
            .await
            .expect_err(&expect_error("the deletion")),
        other => panic!("tests/error_paths.json names an unknown path {other:?}"),
    }
}

#[test]
fn every_error_path_gives_the_status_code_and_class_the_sdks_see() {
    let paths: Paths =
        serde_json::from_str(include_str!("error_paths.json")).expect("error_paths.json parses");
    assert!(paths.paths.len() >= 10);
    let emu = Emulator::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for expected in &paths.paths {
        emu.reset();
        emu.seed(fixture::seed());
        arrange(&emu, &expected.path);
        let error = runtime.block_on(provoke(&emu, &expected.path));
        let seen = (
            error.http_status,
            error.code.clone(),
            error.class.name().to_owned(),
            format!("{:?}", error.kind),
        );
        assert_eq!(
            seen,
            (
                Some(expected.status),
                Some(expected.code.clone()),
                expected.class.clone(),
                expected.kind.clone()
            ),
            "{}: {error}",
            expected.path
        );
    }
}
