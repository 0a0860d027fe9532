//! Rule tests for every state machine of the emulator, through real HTTP
//! against the running `cloudrotate-emulator` binary. Requests are signed
//! with the crate's own signing functions (`cloudrotate::emulator::testkit`
//! wraps `cloudrotate::providers::*::sign`) or tampered with after signing;
//! time-dependent rules move the emulator's clock through the admin API
//! instead of sleeping.

#[path = "support/emulator.rs"]
mod emulator;

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cloudrotate::emulator::http::Request;
use cloudrotate::emulator::testkit::{self, Client, Creds, Response};
use cloudrotate::providers::alicloud::sign::format_timestamp;
use emulator::{Emulator, fixture};
use serde_json::{Value, json};
use time::OffsetDateTime;

const POLARDB: (&str, &str) = ("polardb.aliyuncs.com", "2017-08-01");
const DTS: (&str, &str) = ("dts.aliyuncs.com", "2020-01-01");
const RAM: (&str, &str) = ("ram.aliyuncs.com", "2015-05-01");
const DCS_HOST: &str = "dcs.cn-north-4.myhuaweicloud.com";
const DRS_HOST: &str = "drs.cn-north-4.myhuaweicloud.com";
const IAM_HOST: &str = "iam.myhuaweicloud.com";
const P: &str = fixture::PROJECT;

const STS_AK: &str = "STS.rules-temporary";
const STS_SK: &str = "sts-rules-secret";
const STS_TOKEN: &str = "CAIS-rules-token";
const HW_TMP_AK: &str = "HWTEMPORARYKEY000001";
const HW_TMP_SK: &str = "huawei-temporary-secret-0001";
const HW_TOKEN: &str = "gQpjbi1ub3J0aC00-rules-token";

/// DTS states that must refuse, and some that must accept, a password change.
const DTS_REFUSING: &[&str] = &[
    "Modifying",
    "Locked",
    "Upgrade",
    "Downgrade",
    "Retrying",
    "NotConfigured",
    "Prechecking",
];
const DTS_ACCEPTING: &[&str] = &["Synchronizing", "synchronizing", "Failed", "Suspending"];

/// The DRS states the API documents as accepting a password change, and
/// every other state of the job-status enum.
const DRS_ACCEPTING: &[&str] = &[
    "STARTJOBING",
    "STARTJOB_FAILED",
    "START_JOB_FAILED",
    "FULL_TRANSFER_STARTED",
    "FULL_TRANSFER_FAILED",
    "FULL_TRANSFER_COMPLETE",
    "INCRE_TRANSFER_STARTED",
    "INCRE_TRANSFER_FAILED",
    "PAUSING",
];
const DRS_REFUSING: &[&str] = &[
    "CREATING",
    "CREATE_FAILED",
    "CONFIGURATION",
    "WAITING_FOR_START",
    "RELEASE_RESOURCE_STARTED",
    "RELEASE_RESOURCE_FAILED",
    "RELEASE_RESOURCE_COMPLETE",
    "REBUILD_NODE_STARTED",
    "REBUILD_NODE_FAILED",
    "CHANGE_JOB_STARTED",
    "CHANGE_JOB_FAILED",
    "DELETED",
];

fn ali_creds() -> Creds {
    Creds::new(fixture::ALI_AK, fixture::ALI_SK)
}

fn hw_creds() -> Creds {
    Creds::new(fixture::HW_AK, fixture::HW_SK)
}

fn nonce() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "rules-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A started, seeded emulator and one keep-alive connection to it.
struct Rig {
    emu: Emulator,
    client: Client,
}

impl Rig {
    fn new() -> Self {
        Self::with_args(&[])
    }

    fn with_args(args: &[&str]) -> Self {
        let emu = Emulator::start_with(args);
        emu.seed(fixture::seed());
        let client = Client::connect(emu.addr()).expect("connect");
        Self { emu, client }
    }

    fn reconnect(&mut self) {
        self.client = Client::connect(self.emu.addr()).expect("reconnect");
    }

    fn send(&mut self, request: &Request) -> Response {
        self.client.send(request).expect("an answer")
    }

    fn acs3(
        &self,
        (host, version): (&str, &str),
        action: &str,
        params: &[(&str, &str)],
        creds: &Creds,
    ) -> Request {
        testkit::alicloud_acs3(
            host,
            version,
            action,
            params,
            creds,
            self.emu.now(),
            &nonce(),
        )
    }

    fn v2(
        &self,
        (host, version): (&str, &str),
        action: &str,
        params: &[(&str, &str)],
        creds: &Creds,
    ) -> Request {
        testkit::alicloud_v2(
            host,
            version,
            action,
            params,
            creds,
            self.emu.now(),
            &nonce(),
        )
    }

    /// An ACS3 call with the fixture's key.
    fn ali(&mut self, service: (&str, &str), action: &str, params: &[(&str, &str)]) -> Response {
        let request = self.acs3(service, action, params, &ali_creds());
        self.send(&request)
    }

    fn hw_request(
        &self,
        host: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        creds: &Creds,
    ) -> Request {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        testkit::huawei(
            host,
            method,
            path,
            &[],
            body.as_bytes(),
            Some(P),
            creds,
            self.emu.now(),
        )
    }

    /// A Huawei call with the fixture's key.
    fn hw(&mut self, host: &str, method: &str, path: &str, body: Option<Value>) -> Response {
        let request = self.hw_request(host, method, path, body, &hw_creds());
        self.send(&request)
    }

    fn polardb_modify(&mut self, cluster: &str, account: &str, password: &str) -> Response {
        self.ali(
            POLARDB,
            "ModifyAccountPassword",
            &[
                ("DBClusterId", cluster),
                ("AccountName", account),
                ("NewAccountPassword", password),
            ],
        )
    }

    fn dts_modify(&mut self, job: &str, endpoint: &str, user: &str, password: &str) -> Response {
        self.ali(
            DTS,
            "ModifyDtsJobPassword",
            &[
                ("DtsJobId", job),
                ("Endpoint", endpoint),
                ("UserName", user),
                ("Password", password),
                ("RegionId", "cn-hangzhou"),
            ],
        )
    }

    fn drs_batch(&mut self, items: &[(&str, &str, &str)]) -> Response {
        let jobs: Vec<Value> = items
            .iter()
            .map(|(job, end_point, password)| {
                json!({"job_id": job, "end_point_type": end_point, "db_password": password})
            })
            .collect();
        self.hw(
            DRS_HOST,
            "PUT",
            &format!("/v3/{P}/jobs/batch-modify-pwd"),
            Some(json!({ "jobs": jobs })),
        )
    }

    fn dcs_update(&mut self, instance: &str, old: &str, new: &str) -> Response {
        self.hw(
            DCS_HOST,
            "PUT",
            &format!("/v2/{P}/instances/{instance}/password"),
            Some(json!({"old_password": old, "new_password": new})),
        )
    }

    fn dcs_reset(&mut self, instance: &str, body: Value) -> Response {
        self.hw(
            DCS_HOST,
            "POST",
            &format!("/v2/{P}/instances/{instance}/password/reset"),
            Some(body),
        )
    }

    fn dcs_show(&mut self) -> Response {
        self.hw(DCS_HOST, "GET", &format!("/v2/{P}/instances/dcs-1"), None)
    }
}

/// Asserts an Alibaba error: status, `Code`, and the common body shape.
#[track_caller]
fn assert_ali_error(response: &Response, status: u16, code: &str) -> Value {
    let body = response.json();
    assert_eq!(
        (response.status, body["Code"].as_str()),
        (status, Some(code)),
        "{body}"
    );
    for field in ["RequestId", "HostId", "Message", "Recommend"] {
        assert!(body[field].is_string(), "{field} missing: {body}");
    }
    assert_eq!(
        response.header("x-acs-request-id"),
        body["RequestId"].as_str()
    );
    body
}

/// Asserts a Huawei API-gateway error: status, code, body and request id.
#[track_caller]
fn assert_apigw(response: &Response, status: u16, code: &str) -> String {
    let body = response.json();
    assert_eq!(
        (response.status, body["error_code"].as_str()),
        (status, Some(code)),
        "{body}"
    );
    assert!(body["request_id"].is_string(), "{body}");
    assert_eq!(response.header("x-request-id"), body["request_id"].as_str());
    body["error_msg"].as_str().unwrap_or_default().to_owned()
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

// --- Alibaba authentication --------------------------------------------------

#[test]
fn alibaba_acs3_and_v2_signed_calls_are_accepted() {
    let mut rig = Rig::new();
    let accounts = rig.ali(POLARDB, "DescribeAccounts", &[("DBClusterId", "pc-1")]);
    assert_eq!(accounts.status, 200, "{}", accounts.json());
    let body = accounts.json();
    assert_eq!(body["Accounts"].as_array().unwrap().len(), 2);
    let request_id = body["RequestId"].as_str().unwrap();
    assert_eq!(request_id.len(), 36, "{request_id}");
    assert_eq!(request_id.matches('-').count(), 4);

    let v2 = rig.v2(
        POLARDB,
        "DescribeAccounts",
        &[("DBClusterId", "pc-1")],
        &ali_creds(),
    );
    assert_eq!(rig.send(&v2).status, 200);
    assert_eq!(rig.emu.calls("polardb.DescribeAccounts"), 2);
}

#[test]
fn alibaba_bad_signatures_are_refused_with_the_string_to_sign() {
    let mut rig = Rig::new();
    let wrong = Creds::new(fixture::ALI_AK, "not-the-secret");
    let params = [("DBClusterId", "pc-1")];
    for request in [
        rig.acs3(POLARDB, "DescribeAccounts", &params, &wrong),
        rig.v2(POLARDB, "DescribeAccounts", &params, &wrong),
    ] {
        let body = assert_ali_error(&rig.send(&request), 400, "SignatureDoesNotMatch");
        assert!(
            body["Message"]
                .as_str()
                .unwrap()
                .contains("server string to sign is:"),
            "{body}"
        );
    }

    // Signed right, then one parameter changed on the way.
    let mut tampered = rig.acs3(
        POLARDB,
        "ModifyAccountPassword",
        &[
            ("DBClusterId", "pc-1"),
            ("AccountName", "app"),
            ("NewAccountPassword", "Tampered-Pass-1"),
        ],
        &ali_creds(),
    );
    tampered.query = tampered.query.replace("Tampered-Pass-1", "Tampered-Pass-2");
    assert_ali_error(&rig.send(&tampered), 400, "SignatureDoesNotMatch");
    let mut v2 = rig.v2(POLARDB, "DescribeAccounts", &params, &ali_creds());
    v2.query = v2.query.replace("pc-1", "pc-2");
    assert_ali_error(&rig.send(&v2), 400, "SignatureDoesNotMatch");

    // A body that does not match its signed hash.
    let mut body_swap = rig.acs3(POLARDB, "DescribeAccounts", &params, &ali_creds());
    body_swap.body = bytes::Bytes::from_static(b"DBClusterId=pc-2");
    assert_ali_error(&rig.send(&body_swap), 400, "SignatureDoesNotMatch");

    // An x-acs-* header sent but not signed.
    let mut unsigned = rig.acs3(POLARDB, "DescribeAccounts", &params, &ali_creds());
    unsigned
        .headers
        .push(("x-acs-extra".to_owned(), "1".to_owned()));
    assert_ali_error(&rig.send(&unsigned), 400, "IncompleteSignature");

    assert_eq!(
        rig.emu.get("polardb/pc-1/accounts/app")["changes"],
        0,
        "nothing refused was applied"
    );
    assert_eq!(rig.emu.counters()["outcomes"]["auth_failed"], 6);
}

#[test]
fn alibaba_unknown_and_disabled_keys_are_refused() {
    let mut rig = Rig::new();
    let unknown = Creds::new("LTAI-unknown", "whatever");
    for request in [
        rig.acs3(POLARDB, "DescribeRegions", &[], &unknown),
        rig.v2(POLARDB, "DescribeRegions", &[], &unknown),
    ] {
        assert_ali_error(&rig.send(&request), 404, "InvalidAccessKeyId.NotFound");
    }
    rig.emu.seed(
        json!({"alicloud": {"users": [{"name": fixture::ALI_USER, "access_keys": [
        {"id": "LTAI-disabled", "secret": "s", "status": "Inactive"}]}]}}),
    );
    let request = rig.acs3(
        POLARDB,
        "DescribeRegions",
        &[],
        &Creds::new("LTAI-disabled", "s"),
    );
    assert_ali_error(&rig.send(&request), 400, "InvalidAccessKeyId.Inactive");
}

#[test]
fn alibaba_clock_skew_over_15_minutes_is_refused() {
    let mut rig = Rig::new();
    let now = rig.emu.now();
    let minutes = time::Duration::minutes;
    for (offset, ok) in [
        (minutes(-16), false),
        (minutes(16), false),
        (minutes(-14), true),
        (minutes(14), true),
    ] {
        for v2 in [false, true] {
            let sign = if v2 {
                testkit::alicloud_v2
            } else {
                testkit::alicloud_acs3
            };
            let request = sign(
                POLARDB.0,
                POLARDB.1,
                "DescribeRegions",
                &[],
                &ali_creds(),
                now + offset,
                &nonce(),
            );
            let response = rig.send(&request);
            if ok {
                assert_eq!(
                    response.status,
                    200,
                    "{offset} v2={v2}: {}",
                    response.json()
                );
            } else {
                let body = assert_ali_error(&response, 400, "InvalidTimeStamp.Expired");
                assert!(
                    body["Message"]
                        .as_str()
                        .unwrap()
                        .contains(&format_timestamp(now)[..10])
                );
            }
        }
    }
    let mut garbled = rig.acs3(POLARDB, "DescribeRegions", &[], &ali_creds());
    for (name, value) in &mut garbled.headers {
        if name == "x-acs-date" {
            *value = "yesterday".to_owned();
        }
    }
    assert_ali_error(&rig.send(&garbled), 400, "InvalidTimeStamp.Format");
}

#[test]
fn alibaba_reused_nonce_is_refused_but_a_refused_request_does_not_burn_it() {
    let mut rig = Rig::new();
    let now = rig.emu.now();
    for sign in [testkit::alicloud_acs3, testkit::alicloud_v2] {
        let once = nonce();
        let bad = sign(
            POLARDB.0,
            POLARDB.1,
            "DescribeRegions",
            &[],
            &Creds::new(fixture::ALI_AK, "wrong"),
            now,
            &once,
        );
        assert_ali_error(&rig.send(&bad), 400, "SignatureDoesNotMatch");
        let good = sign(
            POLARDB.0,
            POLARDB.1,
            "DescribeRegions",
            &[],
            &ali_creds(),
            now,
            &once,
        );
        assert_eq!(rig.send(&good).status, 200);
        assert_ali_error(&rig.send(&good), 400, "SignatureNonceUsed");
    }
}

#[test]
fn alibaba_temporary_credentials_need_their_token_until_they_expire() {
    let mut rig = Rig::new();
    let expiration = format_timestamp(rig.emu.now() + time::Duration::minutes(10));
    rig.emu.seed(json!({"alicloud": {"users": [{"name": fixture::ALI_USER, "access_keys": [
        {"id": STS_AK, "secret": STS_SK, "security_token": STS_TOKEN, "expiration": expiration}]}]}}));
    let sts = Creds::new(STS_AK, STS_SK).with_token(STS_TOKEN);
    for v2 in [false, true] {
        let call = |rig: &Rig, creds: &Creds| {
            if v2 {
                rig.v2(POLARDB, "DescribeRegions", &[], creds)
            } else {
                rig.acs3(POLARDB, "DescribeRegions", &[], creds)
            }
        };
        let ok = call(&rig, &sts);
        assert_eq!(rig.send(&ok).status, 200, "v2={v2}");
        let missing = call(&rig, &Creds::new(STS_AK, STS_SK));
        assert_ali_error(&rig.send(&missing), 400, "InvalidSecurityToken.Malformed");
        let forged = call(&rig, &Creds::new(STS_AK, STS_SK).with_token("CAIS-forged"));
        assert_ali_error(&rig.send(&forged), 400, "InvalidSecurityToken.Malformed");
        let stray = call(&rig, &ali_creds().with_token(STS_TOKEN));
        assert_ali_error(&rig.send(&stray), 400, "InvalidSecurityToken.Malformed");
    }
    rig.emu.advance_clock(11.0 * 60.0);
    let expired = rig.acs3(POLARDB, "DescribeRegions", &[], &sts);
    assert_ali_error(&rig.send(&expired), 400, "InvalidSecurityToken.Expired");
}

// --- Huawei authentication ---------------------------------------------------

#[test]
fn huawei_signature_key_and_skew_failures_are_apigw_0301() {
    let mut rig = Rig::new();
    assert_eq!(rig.dcs_show().status, 200);

    let wrong = rig.hw_request(
        DCS_HOST,
        "GET",
        &format!("/v2/{P}/instances/dcs-1"),
        None,
        &Creds::new(fixture::HW_AK, "wrong"),
    );
    let message = assert_apigw(&rig.send(&wrong), 401, "APIGW.0301");
    assert!(message.contains("verify aksk signature fail"), "{message}");

    let unknown = rig.hw_request(
        DCS_HOST,
        "GET",
        &format!("/v2/{P}/instances/dcs-1"),
        None,
        &Creds::new("HWUNKNOWNKEY00000000", "x"),
    );
    assert_apigw(&rig.send(&unknown), 401, "APIGW.0301");

    let mut tampered = rig.hw_request(
        DCS_HOST,
        "POST",
        &format!("/v2/{P}/instances/dcs-1/password/reset"),
        Some(json!({"new_password": "Tampered-P@ss1"})),
        &hw_creds(),
    );
    tampered.body = bytes::Bytes::from(
        String::from_utf8(tampered.body.to_vec())
            .unwrap()
            .replace("P@ss1", "P@ss2"),
    );
    assert_apigw(&rig.send(&tampered), 401, "APIGW.0301");
    assert_eq!(rig.emu.get("dcs/dcs-1")["changes"], 0);

    let now = rig.emu.now();
    for (minutes, ok) in [(-16, false), (16, false), (-14, true), (14, true)] {
        let request = testkit::huawei(
            DCS_HOST,
            "GET",
            &format!("/v2/{P}/instances/dcs-1"),
            &[],
            b"",
            Some(P),
            &hw_creds(),
            now + time::Duration::minutes(minutes),
        );
        let response = rig.send(&request);
        if ok {
            assert_eq!(response.status, 200, "{minutes} min: {}", response.json());
        } else {
            let message = assert_apigw(&response, 401, "APIGW.0301");
            assert!(message.contains("signature expired"), "{message}");
        }
    }

    let mut unsigned_date = rig.hw_request(
        DCS_HOST,
        "GET",
        &format!("/v2/{P}/instances/dcs-1"),
        None,
        &hw_creds(),
    );
    unsigned_date
        .headers
        .retain(|(name, _)| name != "x-sdk-date");
    assert_apigw(&rig.send(&unsigned_date), 401, "APIGW.0301");

    let mut none = rig.hw_request(
        DCS_HOST,
        "GET",
        &format!("/v2/{P}/instances/dcs-1"),
        None,
        &hw_creds(),
    );
    none.headers.retain(|(name, _)| name != "authorization");
    assert_apigw(&rig.send(&none), 401, "APIGW.0301");
}

#[test]
fn huawei_temporary_credentials_need_their_token_until_they_expire() {
    let mut rig = Rig::new();
    let expires = rfc3339(rig.emu.now() + time::Duration::minutes(15));
    rig.emu.seed(json!({"huaweicloud": {"users": [{"id": fixture::HW_USER, "access_keys": [
        {"access": HW_TMP_AK, "secret": HW_TMP_SK, "security_token": HW_TOKEN, "expires_at": expires}]}]}}));
    let path = format!("/v2/{P}/instances/dcs-1");
    let tmp = Creds::new(HW_TMP_AK, HW_TMP_SK).with_token(HW_TOKEN);
    let ok = rig.hw_request(DCS_HOST, "GET", &path, None, &tmp);
    assert_eq!(rig.send(&ok).status, 200);
    for creds in [
        Creds::new(HW_TMP_AK, HW_TMP_SK),
        Creds::new(HW_TMP_AK, HW_TMP_SK).with_token("forged"),
    ] {
        let request = rig.hw_request(DCS_HOST, "GET", &path, None, &creds);
        assert_apigw(&rig.send(&request), 401, "APIGW.0301");
    }
    rig.emu.advance_clock(16.0 * 60.0);
    let expired = rig.hw_request(DCS_HOST, "GET", &path, None, &tmp);
    let message = assert_apigw(&rig.send(&expired), 401, "APIGW.0301");
    assert!(message.contains("token expires"), "{message}");
}

#[test]
fn huawei_locks_an_access_key_for_5_minutes_after_5_consecutive_failures() {
    let mut rig = Rig::new();
    let path = format!("/v2/{P}/instances/dcs-1");
    let bad = Creds::new(fixture::HW_AK, "wrong");
    let fail = |rig: &mut Rig| {
        let request = rig.hw_request(DCS_HOST, "GET", &path, None, &bad);
        let message = assert_apigw(&rig.send(&request), 401, "APIGW.0301");
        assert!(!message.contains("locked"), "{message}");
    };

    // Four failures, then a success: the run starts again.
    for _ in 0..4 {
        fail(&mut rig);
    }
    assert_eq!(rig.dcs_show().status, 200);
    for _ in 0..4 {
        fail(&mut rig);
    }
    assert_eq!(
        rig.dcs_show().status,
        200,
        "4 + 4 failures are not 5 in a row"
    );

    for _ in 0..5 {
        fail(&mut rig);
    }
    let locked = rig.dcs_show();
    let message = assert_apigw(&locked, 401, "APIGW.0301");
    assert!(message.contains("locked"), "{message}");
    // Another key of the same user is not locked.
    rig.emu.seed(
        json!({"huaweicloud": {"users": [{"id": fixture::HW_USER, "access_keys": [
        {"access": "HWSECONDKEY000000001", "secret": "second-secret"}]}]}}),
    );
    let other = rig.hw_request(
        DCS_HOST,
        "GET",
        &path,
        None,
        &Creds::new("HWSECONDKEY000000001", "second-secret"),
    );
    assert_eq!(rig.send(&other).status, 200);

    rig.emu.advance_clock(4.0 * 60.0);
    assert_apigw(&rig.dcs_show(), 401, "APIGW.0301");
    rig.emu.advance_clock(61.0);
    assert_eq!(rig.dcs_show().status, 200, "the lock lasts 5 minutes");
    let outcomes = rig.emu.counters()["outcomes"].clone();
    assert_eq!(outcomes["locked"], 2, "{outcomes}");
    assert_eq!(outcomes["auth_failed"], 13, "{outcomes}");
}

// --- PolarDB -----------------------------------------------------------------

#[test]
fn polardb_password_rules_and_unknown_targets() {
    let mut rig = Rig::new();
    let malformed = [
        "Ab1!Ab1",    // 7 characters
        "abcdefgh12", // two classes
        "ABCDEFGH!!", // two classes
        "ABCDEF12",   // two classes
        "Passw0rd~",  // ~ is not a PolarDB special
        "Pass w0rd!", // space
        "Pässw0rd!",  // not ASCII
        "Passw0rd:",  // :
    ];
    for password in malformed {
        let response = rig.polardb_modify("pc-1", "app", password);
        assert_ali_error(&response, 400, "InvalidAccountPassword.Malformed");
    }
    let too_long = "Ab1!".repeat(8) + "x";
    assert_ali_error(
        &rig.polardb_modify("pc-1", "app", &too_long),
        400,
        "InvalidAccountPassword.Malformed",
    );
    assert_eq!(rig.emu.get("polardb/pc-1/accounts/app")["changes"], 0);

    for password in [
        "Abcdef1!",
        &"Ab1!".repeat(8)[..],
        "Pw!@#$%^&*()_+-=1a",
        "abcdef12!",
        "ABCDEF12!",
    ] {
        let response = rig.polardb_modify("pc-1", "app", password);
        assert_eq!(response.status, 200, "{password}: {}", response.json());
        assert!(response.json()["RequestId"].is_string());
        assert_eq!(
            rig.emu.get("polardb/pc-1/accounts/app")["password"],
            password
        );
    }
    assert_eq!(rig.emu.get("polardb/pc-1/accounts/app")["changes"], 5);
    assert_eq!(
        rig.emu.get("polardb/pc-1/accounts/report")["password"],
        fixture::INITIAL
    );

    assert_ali_error(
        &rig.polardb_modify("pc-nope", "app", "Abcdef1!"),
        404,
        "InvalidDBClusterId.NotFound",
    );
    assert_ali_error(
        &rig.polardb_modify("pc-1", "nobody", "Abcdef1!"),
        404,
        "InvalidAccountName.NotFound",
    );
    let missing = rig.ali(
        POLARDB,
        "ModifyAccountPassword",
        &[("DBClusterId", "pc-1"), ("AccountName", "app")],
    );
    let body = assert_ali_error(&missing, 400, "MissingParameter");
    assert!(
        body["Message"]
            .as_str()
            .unwrap()
            .contains("NewAccountPassword")
    );
    let unknown_action = rig.ali(POLARDB, "DropEverything", &[]);
    assert_ali_error(&unknown_action, 404, "InvalidAction.NotFound");

    rig.emu
        .patch_status("polardb/pc-1/accounts/app", "Creating");
    assert_ali_error(
        &rig.polardb_modify("pc-1", "app", "Abcdef1!x"),
        403,
        "IncorrectDBClusterState",
    );
}

// --- DTS ---------------------------------------------------------------------

#[test]
fn dts_rejects_the_same_password_and_wrong_users() {
    let mut rig = Rig::new();
    let response = rig.dts_modify("dtsjob1", "src", "app", "N3w P@ss*~/+=&!");
    assert_eq!(response.status, 200, "{}", response.json());
    let body = response.json();
    assert_eq!(
        (&body["Success"], &body["HttpStatusCode"]),
        (&json!(true), &json!(200))
    );
    let truth = rig.emu.get("dts/dtsjob1");
    assert_eq!(truth["src"]["password"], "N3w P@ss*~/+=&!");
    assert_eq!(truth["dest"]["password"], "Other-Pass-1");

    // The seed's documented parameter error, naming Password.
    let same = rig.dts_modify("dtsjob1", "src", "app", "N3w P@ss*~/+=&!");
    let body = assert_ali_error(&same, 400, "InvalidParameter");
    assert_eq!(body["Success"], false);
    assert_eq!(body["ErrCode"], "InvalidParameter");
    assert_eq!(body["HttpStatusCode"], 400);
    assert_eq!(
        (&body["ErrMessage"], &body["DynamicMessage"]),
        (
            &json!("The Value of Input Parameter %s is not valid."),
            &json!("Password")
        )
    );
    // The destination still has its own password, so the same value there is new.
    assert_eq!(
        rig.dts_modify("dtsjob1", "dest", "sink", "N3w P@ss*~/+=&!")
            .status,
        200
    );
    let same_dest = rig.dts_modify("dtsjob1", "dest", "sink", "N3w P@ss*~/+=&!");
    let body = assert_ali_error(&same_dest, 400, "InvalidParameter");
    assert_eq!(body["DynamicMessage"], "Password");

    let body = assert_ali_error(
        &rig.dts_modify("dtsjob1", "src", "sink", "Another-1"),
        400,
        "InvalidParameter",
    );
    assert_eq!(body["DynamicMessage"], "UserName");
    let bad_endpoint = rig.dts_modify("dtsjob1", "both", "app", "Another-1");
    let body = assert_ali_error(&bad_endpoint, 400, "InvalidParameter");
    assert_eq!(body["DynamicMessage"], "Endpoint");
    let missing = rig.dts_modify("nojob", "src", "app", "Another-1");
    let body = assert_ali_error(&missing, 404, "Forbidden.InstanceNotFound");
    assert_eq!(body["Success"], false);
    let other_region = rig.ali(
        DTS,
        "ModifyDtsJobPassword",
        &[
            ("DtsJobId", "dtsjob1"),
            ("Endpoint", "src"),
            ("UserName", "app"),
            ("Password", "Another-1"),
            ("RegionId", "cn-beijing"),
        ],
    );
    assert_ali_error(&other_region, 404, "Forbidden.InstanceNotFound");
    assert_eq!(rig.emu.get("dts/dtsjob1")["changes"], 2);
}

#[test]
fn dts_jobs_in_unsuitable_states_refuse() {
    let mut rig = Rig::new();
    let mut n = 0;
    for state in DTS_REFUSING {
        rig.emu.patch_status("dts/dtsjob1", state);
        let response = rig.dts_modify("dtsjob1", "src", "app", &format!("Refused-{n}"));
        n += 1;
        let body = assert_ali_error(&response, 403, "OperationDenied.JobStatus");
        assert_eq!(body["DynamicMessage"], *state);
    }
    assert_eq!(rig.emu.get("dts/dtsjob1")["changes"], 0);
    for state in DTS_ACCEPTING {
        rig.emu.patch_status("dts/dtsjob1", state);
        let response = rig.dts_modify("dtsjob1", "src", "app", &format!("Accepted-{n}"));
        n += 1;
        assert_eq!(response.status, 200, "{state}: {}", response.json());
    }
    assert_eq!(
        rig.emu.get("dts/dtsjob1")["changes"],
        DTS_ACCEPTING.len() as u64
    );
    let detail = rig.ali(
        DTS,
        "DescribeDtsJobDetail",
        &[("DtsJobId", "dtsjob1"), ("RegionId", "cn-hangzhou")],
    );
    assert_eq!(detail.json()["Status"], *DTS_ACCEPTING.last().unwrap());
}

// --- DRS ---------------------------------------------------------------------

#[test]
fn drs_only_documented_states_accept_and_results_are_per_item() {
    let mut rig = Rig::new();
    let states: Vec<&str> = DRS_ACCEPTING.iter().chain(DRS_REFUSING).copied().collect();
    let jobs: Vec<Value> = states
        .iter()
        .map(|state| {
            json!({"id": format!("job-{state}"), "project_id": P, "status": state,
                "so": {"password": "So-Old-1"}, "ta": {"password": "Ta-Old-1"}})
        })
        .collect();
    rig.emu.seed(json!({"huaweicloud": {"drs_jobs": jobs}}));

    let ids: Vec<String> = states.iter().map(|s| format!("job-{s}")).collect();
    let mut items: Vec<(&str, &str, &str)> = ids
        .iter()
        .map(|id| (id.as_str(), "ta", "New-Ta-P@ss1"))
        .collect();
    items.push(("no-such-job", "so", "New-So-P@ss1"));
    items.push(("drsjob1", "xx", "New-So-P@ss1"));
    items.push(("drsjob1", "so", ""));
    items.push(("drsjob1", "so", "New-So-P@ss1"));
    let response = rig.drs_batch(&items);
    assert_eq!(response.status, 200, "{}", response.json());
    let body = response.json();
    let results = body["results"].as_array().unwrap();
    assert_eq!(body["count"], items.len());
    assert_eq!(results.len(), items.len());
    for (result, (id, end_point, _)) in results.iter().zip(&items) {
        assert_eq!(result["id"], *id);
        assert_eq!(result["end_point_type"], *end_point);
    }
    for (i, state) in states.iter().enumerate() {
        let result = &results[i];
        let truth = rig.emu.get(&format!("drs/job-{state}"));
        if DRS_ACCEPTING.contains(state) {
            assert_eq!(result["status"], "success", "{state}: {result}");
            assert_eq!(truth["ta"]["password"], "New-Ta-P@ss1");
            assert_eq!(truth["so"]["password"], "So-Old-1");
        } else {
            assert_eq!(result["status"], "failed", "{state}: {result}");
            assert_eq!(result["error_code"], "DRS.M00304", "{state}");
            assert!(result["error_msg"].is_string());
            assert_eq!(truth["ta"]["password"], "Ta-Old-1", "{state}");
            assert_eq!(truth["changes"], 0);
        }
    }
    let tail = &results[states.len()..];
    assert_eq!(tail[0]["error_code"], "DRS.10000010");
    assert_eq!(tail[1]["error_code"], "DRS.M00202");
    assert_eq!(tail[2]["error_code"], "DRS.M00201");
    assert_eq!(tail[3]["status"], "success");
    assert_eq!(rig.emu.get("drs/drsjob1")["so"]["password"], "New-So-P@ss1");

    let empty = rig.drs_batch(&[]);
    assert_eq!(
        (empty.status, empty.json()["error_code"].clone()),
        (400, json!("DRS.M00201"))
    );
    let status = rig.hw(
        DRS_HOST,
        "POST",
        &format!("/v3/{P}/jobs/batch-status"),
        Some(json!({"jobs": ["job-PAUSING", "nope"]})),
    );
    let results = status.json()["results"].clone();
    assert_eq!(results[0]["status"], "PAUSING");
    assert_eq!(results[0]["error_code"], Value::Null);
    // A job DRS cannot find has no status: a failed lookup.
    assert_eq!(results[1]["error_code"], "DRS.10000010");
    assert_eq!(results[1]["status"], Value::Null);
}

// --- DCS ---------------------------------------------------------------------

#[test]
fn dcs_wrong_old_passwords_count_down_then_lock_for_5_minutes() {
    let mut rig = Rig::new();
    let ok = rig.dcs_update("dcs-1", fixture::INITIAL, "Second-P@ss1");
    let body = ok.json();
    assert_eq!(
        (ok.status, &body["result"], &body["retry_times_left"]),
        (200, &json!("success"), &json!("5")),
        "{body}"
    );

    // A success ends a run of wrong passwords.
    let failed = rig.dcs_update("dcs-1", "Wrong-P@ss1", "Third-P@ss1").json();
    assert_eq!(
        (&failed["result"], &failed["retry_times_left"]),
        (&json!("passwordFailed"), &json!("4"))
    );
    assert_eq!(
        rig.dcs_update("dcs-1", "Second-P@ss1", "Third-P@ss1")
            .json()["result"],
        "success"
    );
    for left in ["4", "3", "2", "1"] {
        let failed = rig.dcs_update("dcs-1", "Wrong-P@ss1", "Fourth-P@ss1");
        let body = failed.json();
        assert_eq!(failed.status, 200);
        assert_eq!(
            (&body["result"], &body["retry_times_left"]),
            (&json!("passwordFailed"), &json!(left)),
            "{body}"
        );
    }
    let admin = rig.emu.get("dcs/dcs-1");
    assert_eq!(
        (&admin["retry_times_left"], &admin["locked"]),
        (&json!(1), &json!(false))
    );

    let locked = rig
        .dcs_update("dcs-1", "Wrong-P@ss1", "Fourth-P@ss1")
        .json();
    assert_eq!(
        (
            &locked["result"],
            &locked["lock_time"],
            &locked["lock_time_left"]
        ),
        (&json!("locked"), &json!("5"), &json!("5")),
        "{locked}"
    );
    assert_eq!(locked["retry_times_left"], "0");
    // Locked even for the right old password; reset is refused too.
    let right = rig
        .dcs_update("dcs-1", "Third-P@ss1", "Fourth-P@ss1")
        .json();
    assert_eq!(right["result"], "locked");
    let reset = rig
        .dcs_reset("dcs-1", json!({"new_password": "Reset-P@ss1"}))
        .json();
    assert_eq!(
        (&reset["code"], &reset["message"]),
        (&json!("3"), &json!("instance is locked"))
    );
    assert_eq!(rig.emu.get("dcs/dcs-1")["password"], "Third-P@ss1");

    rig.emu.advance_clock(4.0 * 60.0);
    let still = rig
        .dcs_update("dcs-1", "Third-P@ss1", "Fourth-P@ss1")
        .json();
    assert_eq!(still["result"], "locked");
    assert_eq!(still["lock_time_left"], "1");
    rig.emu.advance_clock(61.0);
    let after = rig
        .dcs_update("dcs-1", "Third-P@ss1", "Fourth-P@ss1")
        .json();
    assert_eq!(after["result"], "success", "{after}");
    let failed = rig.dcs_update("dcs-1", "Wrong-P@ss1", "Fifth-P@ss1").json();
    assert_eq!(failed["retry_times_left"], "4", "the lock cleared the run");
    let truth = rig.emu.get("dcs/dcs-1");
    assert_eq!(
        (&truth["password"], &truth["changes"]),
        (&json!("Fourth-P@ss1"), &json!(3))
    );
}

#[test]
fn dcs_reset_needs_no_old_password_and_both_calls_apply_the_rules() {
    let mut rig = Rig::new();
    let failed = rig.dcs_update("dcs-1", "Wrong-P@ss1", "Other-P@ss1").json();
    assert_eq!(failed["retry_times_left"], "4");
    let reset = rig.dcs_reset(
        "dcs-1",
        json!({"new_password": "Reset-P@ss1", "no_password_access": false}),
    );
    let body = reset.json();
    assert_eq!(reset.status, 200);
    assert_eq!(
        body,
        json!({"retry_times_left": "5", "lock_time": "0", "lock_time_left": "0",
            "code": "1", "message": "success", "ext_message": null})
    );
    assert_eq!(rig.emu.get("dcs/dcs-1")["password"], "Reset-P@ss1");
    // Reset is idempotent in effect: the same password again is fine.
    assert_eq!(
        rig.dcs_reset("dcs-1", json!({"new_password": "Reset-P@ss1"}))
            .json()["code"],
        "1"
    );
    let failed = rig.dcs_update("dcs-1", "Wrong-P@ss1", "Other-P@ss1").json();
    assert_eq!(failed["retry_times_left"], "4", "the reset ended the run");

    for bad in [
        "Short1!",
        "alllower1",
        "Passw0rd%",
        "Passw0rd:",
        "Pass w0rd!",
    ] {
        for response in [
            rig.dcs_update("dcs-1", "Reset-P@ss1", bad),
            rig.dcs_reset("dcs-1", json!({ "new_password": bad })),
        ] {
            let body = response.json();
            assert_eq!(
                (response.status, &body["error_code"]),
                (400, &json!("DCS.4019")),
                "{bad}: {body}"
            );
            assert!(body["error_msg"].is_string());
            assert_eq!(body["error_ext_msg"], Value::Null);
        }
    }
    let too_long = "Ab1!".repeat(8) + "x";
    assert_eq!(
        rig.dcs_reset("dcs-1", json!({ "new_password": too_long }))
            .status,
        400
    );
    let same = rig.dcs_update("dcs-1", "Reset-P@ss1", "Reset-P@ss1");
    assert_eq!(
        (same.status, same.json()["error_code"].clone()),
        (400, json!("DCS.4019"))
    );
    let ok = rig.dcs_update("dcs-1", "Reset-P@ss1", "{Curly}<Angle>|1");
    assert_eq!(ok.json()["result"], "success");

    let missing = rig.dcs_reset("dcs-404", json!({"new_password": "Reset-P@ss1"}));
    assert_eq!(
        (missing.status, missing.json()["error_code"].clone()),
        (400, json!("DCS.3022"))
    );
    rig.emu.patch_status("dcs/dcs-1", "RESTARTING");
    let stopped = rig.dcs_reset("dcs-1", json!({"new_password": "Reset-P@ss2"}));
    assert_eq!(
        (stopped.status, stopped.json()["error_code"].clone()),
        (400, json!("DCS.4049"))
    );
    rig.emu.patch_status("dcs/dcs-1", "RUNNING");

    let free = rig
        .dcs_reset("dcs-1", json!({"no_password_access": true}))
        .json();
    assert_eq!(free["code"], "1");
    let truth = rig.emu.get("dcs/dcs-1");
    assert_eq!(
        (&truth["password"], &truth["no_password_access"]),
        (&Value::Null, &json!(true))
    );
    let refused = rig.dcs_update("dcs-1", "{Curly}<Angle>|1", "Other-P@ss1");
    assert_eq!(refused.status, 400);
    assert_eq!(rig.dcs_show().json()["no_password_access"], "true");
}

// --- RAM and IAM -------------------------------------------------------------

#[test]
fn ram_keys_are_at_most_two_and_a_deleted_key_stops_at_once() {
    let mut rig = Rig::new();
    let user = fixture::ALI_USER;
    let created = rig.ali(RAM, "CreateAccessKey", &[("UserName", user)]);
    assert_eq!(created.status, 200, "{}", created.json());
    let key = created.json()["AccessKey"].clone();
    let (id, secret) = (
        key["AccessKeyId"].as_str().unwrap(),
        key["AccessKeySecret"].as_str().unwrap(),
    );
    assert_eq!(key["Status"], "Active");
    assert_ali_error(
        &rig.ali(RAM, "CreateAccessKey", &[("UserName", user)]),
        409,
        "LimitExceeded.User.AccessKey",
    );
    let listed = rig.ali(RAM, "ListAccessKeys", &[("UserName", user)]).json();
    let ids: Vec<&str> = listed["AccessKeys"]["AccessKey"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["AccessKeyId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![fixture::ALI_AK, id]);
    assert!(
        !listed.to_string().contains(secret),
        "lists never show secrets"
    );

    // The new key works; once deleted it does not, on the very next call.
    let fresh = Creds::new(id, secret);
    let with_new = rig.acs3(POLARDB, "DescribeRegions", &[], &fresh);
    assert_eq!(rig.send(&with_new).status, 200);
    let deleted = rig.ali(
        RAM,
        "DeleteAccessKey",
        &[("UserName", user), ("UserAccessKeyId", id)],
    );
    assert_eq!(deleted.status, 200);
    let after = rig.acs3(POLARDB, "DescribeRegions", &[], &fresh);
    assert_ali_error(&rig.send(&after), 404, "InvalidAccessKeyId.NotFound");
    assert_ali_error(
        &rig.ali(
            RAM,
            "DeleteAccessKey",
            &[("UserName", user), ("UserAccessKeyId", id)],
        ),
        404,
        "EntityNotExist.User.AccessKey",
    );
    assert_ali_error(
        &rig.ali(RAM, "ListAccessKeys", &[("UserName", "nobody")]),
        404,
        "EntityNotExist.User",
    );
    // A key may delete itself; it is refused from then on.
    let own = Creds::new(fixture::ALI_AK, fixture::ALI_SK);
    let request = rig.acs3(
        RAM,
        "DeleteAccessKey",
        &[("UserAccessKeyId", fixture::ALI_AK)],
        &own,
    );
    assert_eq!(rig.send(&request).status, 200);
    let request = rig.acs3(RAM, "ListAccessKeys", &[], &own);
    assert_ali_error(&rig.send(&request), 404, "InvalidAccessKeyId.NotFound");
}

#[test]
fn iam_keys_are_at_most_two_and_a_deleted_key_stops_at_once() {
    let mut rig = Rig::new();
    let base = "/v3.0/OS-CREDENTIAL/credentials";
    let create = json!({"credential": {"user_id": fixture::HW_USER, "description": "rotated"}});
    let created = rig.hw(IAM_HOST, "POST", base, Some(create.clone()));
    assert_eq!(created.status, 201, "{}", created.json());
    let credential = created.json()["credential"].clone();
    let (access, secret) = (
        credential["access"].as_str().unwrap().to_owned(),
        credential["secret"].as_str().unwrap().to_owned(),
    );
    assert_eq!((access.len(), secret.len()), (20, 40));
    assert_eq!(credential["status"], "active");
    // IAM's documented key-limit answer (iam_03_0001).
    let limit = rig.hw(IAM_HOST, "POST", base, Some(create));
    assert_eq!(limit.status, 400);
    assert_eq!(
        limit.json(),
        json!({"error": {"message": "akSkNumExceed", "code": 400, "title": "Bad Request",
            "error_msg": null, "error_code": null}})
    );

    let listed = rig.hw(IAM_HOST, "GET", base, None).json();
    let keys: Vec<&str> = listed["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["access"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec![fixture::HW_AK, access.as_str()]);
    assert!(!listed.to_string().contains(&secret));

    let fresh = Creds::new(&access, &secret);
    let path = format!("/v2/{P}/instances/dcs-1");
    let with_new = rig.hw_request(DCS_HOST, "GET", &path, None, &fresh);
    assert_eq!(rig.send(&with_new).status, 200);
    let deleted = rig.hw(IAM_HOST, "DELETE", &format!("{base}/{access}"), None);
    assert_eq!(deleted.status, 204);
    let after = rig.hw_request(DCS_HOST, "GET", &path, None, &fresh);
    assert_apigw(&rig.send(&after), 401, "APIGW.0301");
    let gone = rig.hw(IAM_HOST, "DELETE", &format!("{base}/{access}"), None);
    assert_eq!(
        (gone.status, gone.json()["error_code"].clone()),
        (404, json!("IAM.0004"))
    );
}

/// IAM is global: an OS-CREDENTIAL call needs a signed X-Domain-Id or
/// X-Project-Id, as the SDK always sends.
#[test]
fn iam_calls_need_a_signed_scope_header() {
    let mut rig = Rig::new();
    let base = "/v3.0/OS-CREDENTIAL/credentials";
    let now = rig.emu.now();
    let unscoped = testkit::huawei(IAM_HOST, "GET", base, &[], b"", None, &hw_creds(), now);
    assert_apigw(&rig.send(&unscoped), 401, "APIGW.0301");
    assert_eq!(
        rig.send(&unscoped).json()["error_msg"]
            .as_str()
            .map(|m| m.contains("x-domain-id")),
        Some(true)
    );
    // Sent but not signed does not count.
    let mut unsigned = unscoped.clone();
    unsigned.headers.push(("x-domain-id".into(), "d1".into()));
    assert_apigw(&rig.send(&unsigned), 401, "APIGW.0301");
    let by_project = rig.hw(IAM_HOST, "GET", base, None);
    assert_eq!(by_project.status, 200, "{}", by_project.json());
    assert_eq!(rig.emu.get("counters")["outcomes"]["locked"], 0);
}

/// batch-status pages like the service: 5 results unless page_req says
/// otherwise, 0 for all, at most 100.
#[test]
fn drs_batch_status_pages_its_results() {
    let mut rig = Rig::new();
    let ids: Vec<String> = (0..12).map(|n| format!("nope-{n:02}")).collect();
    let path = format!("/v3/{P}/jobs/batch-status");
    let mut ask = |page: Value| {
        let mut body = json!({ "jobs": ids });
        if !page.is_null() {
            body["page_req"] = page;
        }
        rig.hw(DRS_HOST, "POST", &path, Some(body))
    };
    let answered = |response: &Response| -> Vec<String> {
        response.json()["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let default = ask(Value::Null);
    assert_eq!(answered(&default), ids[..5]);
    assert_eq!(default.json()["count"], 5);
    let third = ask(json!({"cur_page": 3, "per_page": 5}));
    assert_eq!(answered(&third), ids[10..]);
    assert_eq!(answered(&ask(json!({"cur_page": 1, "per_page": 0}))), ids);
    assert_eq!(answered(&ask(json!({"cur_page": 1, "per_page": 100}))), ids);
    let too_big = ask(json!({"cur_page": 1, "per_page": 101}));
    assert_eq!(
        (too_big.status, too_big.json()["error_code"].clone()),
        (400, json!("DRS.M00211"))
    );
    let past_end = ask(json!({"cur_page": 4, "per_page": 5}));
    assert_eq!(
        (past_end.status, past_end.json()["error_code"].clone()),
        (400, json!("DRS.M00210"))
    );
}

/// A failed job is reported with its status and its own error; it is no
/// lookup failure.
#[test]
fn drs_batch_status_reports_a_failed_job_with_its_status_and_error() {
    let mut rig = Rig::new();
    rig.emu.patch_status("drs/drsjob1", "INCRE_TRANSFER_FAILED");
    let status = rig.hw(
        DRS_HOST,
        "POST",
        &format!("/v3/{P}/jobs/batch-status"),
        Some(json!({"jobs": ["drsjob1"]})),
    );
    let result = status.json()["results"][0].clone();
    assert_eq!(result["status"], "INCRE_TRANSFER_FAILED");
    assert!(result["error_code"].as_str().unwrap().starts_with("DRS."));
    assert!(result["error_message"].is_string());
}

// --- Faults ------------------------------------------------------------------

#[test]
fn throttling_and_server_errors_use_each_clouds_codes() {
    let mut rig = Rig::new();
    rig.emu.set_faults(json!({"seed": 1, "throttle_rate": 1.0}));
    let throttled = rig.ali(POLARDB, "DescribeRegions", &[]);
    assert_ali_error(&throttled, 400, "Throttling.User");
    assert_eq!(throttled.header("x-acs-retry-after"), Some("1000"));
    assert_apigw(&rig.dcs_show(), 429, "APIGW.0308");

    rig.emu
        .set_faults(json!({"seed": 1, "server_error_rate": 1.0}));
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..16 {
        let ali = rig.ali(POLARDB, "DescribeRegions", &[]);
        let code = ali.json()["Code"].as_str().unwrap().to_owned();
        match ali.status {
            500 => assert_eq!(code, "InternalError"),
            503 => assert_eq!(code, "ServiceUnavailable"),
            other => panic!("status {other}"),
        }
        seen.insert(ali.status);
        let hw = rig.dcs_show();
        assert!(matches!(hw.status, 502 | 504), "{}", hw.status);
        assert_eq!(hw.json()["error_code"], "APIGW.0201");
        seen.insert(hw.status);
    }
    assert_eq!(seen.len(), 4, "both variants of both clouds: {seen:?}");
    let outcomes = rig.emu.counters()["outcomes"].clone();
    assert_eq!(
        (&outcomes["throttled"], &outcomes["server_error"]),
        (&json!(2), &json!(32))
    );

    // Scoped faults leave other APIs alone.
    rig.emu
        .set_faults(json!({"throttle_rate": 1.0, "apis": ["dcs.ShowInstance"]}));
    assert_eq!(rig.ali(POLARDB, "DescribeRegions", &[]).status, 200);
    assert_eq!(rig.dcs_show().status, 429);
    // Scripted errors answer in the service's own shape, then run out.
    rig.emu.set_faults(json!({"scripted": [
        {"api": "polardb.ModifyAccountPassword", "code": "ConcurrentTaskExceeded", "count": 2}]}));
    for _ in 0..2 {
        assert_ali_error(
            &rig.polardb_modify("pc-1", "app", "Abcdef1!"),
            403,
            "ConcurrentTaskExceeded",
        );
    }
    assert_eq!(rig.polardb_modify("pc-1", "app", "Abcdef1!").status, 200);
}

fn is_reset(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::ConnectionReset
}

#[test]
fn connection_reset_fault_resets_the_connection_and_applies_nothing() {
    let mut rig = Rig::new();
    rig.emu
        .set_faults(json!({"seed": 3, "reset_rate": 1.0, "apis": ["dts"]}));
    let request = rig.acs3(
        DTS,
        "ModifyDtsJobPassword",
        &[
            ("DtsJobId", "dtsjob1"),
            ("Endpoint", "src"),
            ("UserName", "app"),
            ("Password", "Reset-1"),
        ],
        &ali_creds(),
    );
    let error = rig
        .client
        .send(&request)
        .expect_err("a reset, not an answer");
    assert!(is_reset(&error), "{error:?}");
    assert_eq!(rig.emu.get("dts/dtsjob1")["changes"], 0);
    assert_eq!(rig.emu.counters()["outcomes"]["reset"], 1);
}

#[test]
fn apply_then_drop_changes_the_target_and_the_client_times_out() {
    let mut rig = Rig::new();
    rig.emu
        .set_faults(json!({"seed": 3, "drop_after_apply_rate": 1.0,
        "drop_after_apply_hold_ms": 2000, "apis": ["dcs.ResetPassword"]}));
    let request = rig.hw_request(
        DCS_HOST,
        "POST",
        &format!("/v2/{P}/instances/dcs-1/password/reset"),
        Some(json!({"new_password": "Dropped-P@ss1"})),
        &hw_creds(),
    );
    rig.client
        .set_read_timeout(Duration::from_millis(300))
        .unwrap();
    let started = Instant::now();
    let error = rig.client.send(&request).expect_err("no answer");
    assert!(
        matches!(
            error.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        "{error:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    let truth = rig.emu.get("dcs/dcs-1");
    assert_eq!(
        (&truth["password"], &truth["changes"]),
        (&json!("Dropped-P@ss1"), &json!(1))
    );
    assert_eq!(rig.emu.counters()["outcomes"]["dropped_after_apply"], 1);

    // Without a hold the connection just closes (no reset): EOF, change applied.
    rig.emu
        .set_faults(json!({"drop_after_apply_rate": 1.0, "apis": ["dcs.ResetPassword"]}));
    rig.reconnect();
    let request = rig.hw_request(
        DCS_HOST,
        "POST",
        &format!("/v2/{P}/instances/dcs-1/password/reset"),
        Some(json!({"new_password": "Dropped-P@ss2"})),
        &hw_creds(),
    );
    let error = rig.client.send(&request).expect_err("no answer");
    assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{error:?}");
    assert_eq!(rig.emu.get("dcs/dcs-1")["password"], "Dropped-P@ss2");
}

#[test]
fn latency_is_added_before_the_answer() {
    let mut rig = Rig::new();
    rig.emu
        .set_faults(json!({"latency_ms": {"fixed": 150}, "apis": ["dcs"]}));
    let started = Instant::now();
    assert_eq!(rig.dcs_show().status, 200);
    let slow = started.elapsed();
    assert!(slow >= Duration::from_millis(150), "{slow:?}");
    let started = Instant::now();
    assert_eq!(rig.ali(POLARDB, "DescribeRegions", &[]).status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "out of scope: no latency"
    );

    rig.emu
        .set_faults(json!({"seed": 9, "latency_ms": {"min": 20, "max": 60}}));
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(rig.dcs_show().status, 200);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(20), "{took:?}");
    }
    let (status, body) = rig.emu.try_admin(
        reqwest::Method::PUT,
        "faults",
        Some(json!({"latency_ms": {"median": 50, "p99": 10}})),
    );
    assert_eq!(status, 400, "{body}");
}

#[test]
fn per_key_rate_limits_answer_with_the_clouds_throttling_code() {
    let mut rig = Rig::new();
    // 12 a minute, 2 at once: a token comes back every 5 s.
    rig.emu
        .set_faults(json!({"rate_limit_per_key": {"requests_per_second": 0.2, "burst": 2}}));
    for _ in 0..2 {
        assert_eq!(rig.ali(POLARDB, "DescribeRegions", &[]).status, 200);
    }
    let limited = rig.ali(POLARDB, "DescribeRegions", &[]);
    assert_ali_error(&limited, 400, "Throttling.User");
    let retry_after: u64 = limited
        .header("x-acs-retry-after")
        .unwrap()
        .parse()
        .unwrap();
    assert!((4000..=5000).contains(&retry_after), "{retry_after}");

    // The bucket is per key: the Huawei key has its own.
    for _ in 0..2 {
        assert_eq!(rig.dcs_show().status, 200);
    }
    let message = assert_apigw(&rig.dcs_show(), 429, "APIGW.0308");
    assert!(message.contains("limit:12,time:1 minute"), "{message}");

    rig.emu.advance_clock(5.0);
    assert_eq!(
        rig.ali(POLARDB, "DescribeRegions", &[]).status,
        200,
        "refilled"
    );
    assert_eq!(rig.dcs_show().status, 200);
    let outcomes = rig.emu.counters()["outcomes"].clone();
    assert_eq!(
        (&outcomes["rate_limited"], &outcomes["throttled"]),
        (&json!(2), &json!(2))
    );
}

/// What one request came to, as the client sees it.
fn outcome(result: io::Result<Response>) -> String {
    match result {
        Ok(response) => {
            let body = response.json();
            let code = body["error_code"]
                .as_str()
                .or(body["Code"].as_str())
                .unwrap_or("-");
            format!("{} {code}", response.status)
        }
        Err(error) if is_reset(&error) => "reset".to_owned(),
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => "dropped".to_owned(),
        Err(error) => format!("error {:?}", error.kind()),
    }
}

/// Sends the same 80 requests (DCS resets and shows, PolarDB describes)
/// and returns what each came to.
fn fault_sequence(rig: &mut Rig) -> Vec<String> {
    (0..80)
        .map(|i| {
            let request = match i % 3 {
                0 => rig.hw_request(
                    DCS_HOST,
                    "POST",
                    &format!("/v2/{P}/instances/dcs-1/password/reset"),
                    Some(json!({ "new_password": format!("Seq-P@ss{i}") })),
                    &hw_creds(),
                ),
                1 => rig.hw_request(
                    DCS_HOST,
                    "GET",
                    &format!("/v2/{P}/instances/dcs-1"),
                    None,
                    &hw_creds(),
                ),
                _ => rig.acs3(POLARDB, "DescribeRegions", &[], &ali_creds()),
            };
            let result = rig.client.send(&request);
            if result.is_err() {
                rig.reconnect();
            }
            outcome(result)
        })
        .collect()
}

#[test]
fn same_seed_and_same_requests_give_the_same_faults() {
    let dir = std::env::temp_dir().join(format!("emulator-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let faults = dir.join("faults.json");
    std::fs::write(
        &faults,
        json!({"seed": 42, "latency_ms": {"min": 0, "max": 2}, "throttle_rate": 0.15,
            "server_error_rate": 0.15, "reset_rate": 0.1, "drop_after_apply_rate": 0.15})
        .to_string(),
    )
    .unwrap();
    let args = ["--faults-file", faults.to_str().unwrap()];

    let mut first = Rig::with_args(&args);
    let a = fault_sequence(&mut first);
    let mut second = Rig::with_args(&args);
    let b = fault_sequence(&mut second);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(a, b, "two processes, one seed");
    for kind in [
        "200 -",
        "400 Throttling.User",
        "429 APIGW.0308",
        "reset",
        "dropped",
    ] {
        assert!(a.iter().any(|o| o == kind), "{kind} never happened: {a:?}");
    }
    assert!(a.iter().any(|o| o.starts_with("50")), "{a:?}");

    // Reset returns to the startup faults: the sequence starts over.
    first.emu.reset();
    first.emu.seed(fixture::seed());
    first.reconnect();
    assert_eq!(fault_sequence(&mut first), a, "after reset");
    assert_eq!(
        first.emu.get("dcs/dcs-1")["password"],
        second.emu.get("dcs/dcs-1")["password"],
        "the same changes were applied"
    );

    // Another seed, another sequence.
    let mut other: Value = first.emu.get("faults");
    other["seed"] = json!(43);
    first.emu.set_faults(other);
    first.reconnect();
    assert_ne!(fault_sequence(&mut first), a);
}

// --- Admin API ---------------------------------------------------------------

#[test]
fn admin_api_seeds_reads_the_truth_counts_and_resets() {
    let mut rig = Rig::new();
    let state = rig.emu.get("state");
    assert_eq!(
        state["alicloud"]["polardb_clusters"][0]["accounts"][0]["password"],
        fixture::INITIAL
    );
    assert_eq!(
        state["huaweicloud"]["dcs_instances"][0]["password"],
        fixture::INITIAL
    );
    assert_eq!(
        rig.emu.get("dts/dtsjob1")["src"]["password"],
        fixture::INITIAL
    );
    assert_eq!(rig.emu.get("drs/drsjob1")["ta"]["password"], "Other-Pass-1");
    let (status, _) = rig.emu.try_admin(reqwest::Method::GET, "dcs/nope", None);
    assert_eq!(status, 404);

    assert_eq!(
        rig.polardb_modify("pc-1", "app", "Changed-Pass-1").status,
        200
    );
    assert_eq!(
        rig.dcs_reset("dcs-1", json!({"new_password": "Changed-P@ss1"}))
            .status,
        200
    );
    assert_eq!(
        rig.drs_batch(&[("drsjob1", "so", "Changed-P@ss1")]).status,
        200
    );
    rig.dcs_show();
    let wrong = rig.hw_request(
        DCS_HOST,
        "GET",
        &format!("/v2/{P}/instances/dcs-1"),
        None,
        &Creds::new(fixture::HW_AK, "x"),
    );
    rig.send(&wrong);
    let counters = rig.emu.counters();
    assert_eq!(counters["calls"]["polardb.ModifyAccountPassword"], 1);
    assert_eq!(counters["calls"]["dcs.ResetPassword"], 1);
    assert_eq!(counters["calls"]["drs.BatchResetPassword"], 1);
    assert_eq!(
        counters["calls"]["dcs.ShowInstance"], 2,
        "refused calls count too"
    );
    assert_eq!(
        (
            &counters["outcomes"]["ok"],
            &counters["outcomes"]["auth_failed"]
        ),
        (&json!(4), &json!(1))
    );
    assert_eq!(
        rig.emu.get("polardb/pc-1/accounts/app")["password"],
        "Changed-Pass-1"
    );
    assert_eq!(
        rig.emu.get("drs/drsjob1")["so"]["password"],
        "Changed-P@ss1"
    );

    let (status, body) = rig.emu.try_admin(
        reqwest::Method::PUT,
        "faults",
        Some(json!({"throttle_rate": 2.0})),
    );
    assert_eq!(status, 400, "{body}");
    let (status, _) = rig
        .emu
        .try_admin(reqwest::Method::PUT, "faults", Some(json!({"bogus": 1})));
    assert_eq!(status, 400);
    let bad_expiry = json!({"huaweicloud": {"users": [{"id": "u", "access_keys": [
        {"access": "HWTMP", "secret": "s", "security_token": "t", "expires_at": "in ten minutes"}]}]}});
    let (status, body) = rig
        .emu
        .try_admin(reqwest::Method::POST, "seed", Some(bad_expiry));
    assert_eq!(status, 400, "{body}");
    rig.emu.set_faults(json!({"seed": 7, "throttle_rate": 0.5}));
    assert_eq!(rig.emu.get("faults")["throttle_rate"], 0.5);

    rig.emu.advance_clock(3600.0);
    assert!(rig.emu.get("clock")["offset_seconds"].as_f64().unwrap() >= 3600.0);
    let (status, _) = rig.emu.try_admin(reqwest::Method::DELETE, "counters", None);
    assert_eq!(status, 200);
    assert_eq!(rig.emu.counters()["calls"], json!({}));

    rig.emu.reset();
    let state = rig.emu.get("state");
    assert_eq!(
        state["alicloud"]["users"],
        json!([]),
        "back to the (empty) startup seed"
    );
    assert_eq!(state["clock"]["offset_seconds"], 0.0);
    assert_eq!(rig.emu.get("faults")["throttle_rate"], 0.0);
    assert_eq!(rig.emu.counters()["outcomes"]["ok"], 0);
}

#[test]
fn startup_seed_file_is_what_reset_returns_to() {
    let dir = std::env::temp_dir().join(format!("emulator-rules-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seed = dir.join("seed.json");
    std::fs::write(&seed, fixture::seed().to_string()).unwrap();
    let emu = Emulator::start_with(&["--seed-file", seed.to_str().unwrap(), "--threads", "1"]);
    std::fs::remove_dir_all(&dir).unwrap();
    let mut client = Client::connect(emu.addr()).unwrap();
    let request = testkit::alicloud_acs3(
        POLARDB.0,
        POLARDB.1,
        "ModifyAccountPassword",
        &[
            ("DBClusterId", "pc-1"),
            ("AccountName", "app"),
            ("NewAccountPassword", "Seeded-Pass-1"),
        ],
        &ali_creds(),
        emu.now(),
        &nonce(),
    );
    assert_eq!(client.send(&request).unwrap().status, 200);
    assert_eq!(
        emu.get("polardb/pc-1/accounts/app")["password"],
        "Seeded-Pass-1"
    );
    emu.reset();
    assert_eq!(
        emu.get("polardb/pc-1/accounts/app")["password"],
        fixture::INITIAL
    );
}

// --- PolarDB accounts ----------------------------------------------------------

/// Asserts a DCS service error: status and `error_code`.
#[track_caller]
fn assert_dcs_error(response: &Response, status: u16, code: &str) {
    let body = response.json();
    assert_eq!(
        (response.status, body["error_code"].as_str()),
        (status, Some(code)),
        "{body}"
    );
}

impl Rig {
    fn polardb(&mut self, action: &str, params: &[(&str, &str)]) -> Response {
        let mut all = vec![("DBClusterId", "pc-acc")];
        all.extend_from_slice(params);
        self.ali(POLARDB, action, &all)
    }

    fn polardb_account(&mut self, name: &str) -> Value {
        let body = self
            .polardb("DescribeAccounts", &[("AccountName", name)])
            .json();
        body["Accounts"][0].clone()
    }

    fn acl(&mut self, method: &str, rest: &str, body: Option<Value>) -> Response {
        let path = format!("/v2/{P}/instances/dcs-acl/accounts{rest}");
        self.hw(DCS_HOST, method, &path, body)
    }

    fn acl_account(&mut self, name: &str) -> Value {
        let list = self.acl("GET", "", None).json();
        list["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["account_name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    }
}

fn account_rig() -> Rig {
    let rig = Rig::new();
    rig.emu.seed(json!({
        "alicloud": {"polardb_clusters": [{"id": "pc-acc", "databases": ["db1", "db2"],
            "account_limit": 3, "account_settle_seconds": 5.0,
            "accounts": [{"name": "owner", "password": "Owner-Pass-1", "type": "Super"}]}]},
        "huaweicloud": {"dcs_instances": [
            {"id": "dcs-acl", "project_id": P, "password": "Inst-Pass-1",
             "acl_account_limit": 2, "account_settle_seconds": 5.0},
            {"id": "dcs-old", "project_id": P, "password": "Inst-Pass-1", "engine_version": "3.0"}
        ]}
    }));
    rig
}

#[test]
fn polardb_create_account_follows_the_naming_password_and_quota_rules() {
    let mut rig = account_rig();
    let create = |rig: &mut Rig, name: &str, password: &str, extra: &[(&str, &str)]| {
        let mut params = vec![("AccountName", name), ("AccountPassword", password)];
        params.extend_from_slice(extra);
        rig.polardb("CreateAccount", &params)
    };
    for bad in ["Bad", "1abc", "abc_", "a", "root", "admin", "has-dash"] {
        let response = create(&mut rig, bad, "Good-Pass-1", &[]);
        assert_ali_error(&response, 400, "InvalidAccountName.Malformed");
    }
    assert_ali_error(
        &create(&mut rig, "app_blue", "weakpassword", &[]),
        400,
        "InvalidAccountPassword.Malformed",
    );
    for extra in [
        [("AccountType", "DynamoDB")],
        [("AccountDescription", "http://x")],
        [("AccountPrivilege", "ReadOnly")],
    ] {
        let response = create(&mut rig, "app_blue", "Good-Pass-1", &extra);
        assert_ali_error(&response, 400, "InvalidParameter");
    }
    assert_ali_error(
        &create(&mut rig, "app_blue", "Good-Pass-1", &[("DBName", "nodb")]),
        404,
        "InvalidDBName.NotFound",
    );

    let token = [
        ("AccountType", "Normal"),
        ("DBName", "db1,db2"),
        ("AccountPrivilege", "ReadWrite,ReadOnly"),
        ("ClientToken", "tok-1"),
    ];
    assert_eq!(
        create(&mut rig, "app_blue", "Good-Pass-1", &token).status,
        200
    );
    // The same client token is answered like the first request.
    assert_eq!(
        create(&mut rig, "app_blue", "Good-Pass-1", &token).status,
        200
    );
    assert_ali_error(
        &create(&mut rig, "app_blue", "Good-Pass-1", &[]),
        400,
        "InvalidAccountName.Duplicate",
    );
    let account = rig.polardb_account("app_blue");
    assert_eq!(account["AccountStatus"], "Creating");
    assert_eq!(account["AccountType"], "Normal");
    assert_eq!(
        account["DatabasePrivileges"],
        json!([{"DBName": "db1", "AccountPrivilege": "ReadWrite"},
               {"DBName": "db2", "AccountPrivilege": "ReadOnly"}])
    );
    // Creating refuses changes until the task settles.
    let modify = rig.polardb_modify("pc-acc", "app_blue", "Other-Pass-2");
    assert_ali_error(&modify, 403, "IncorrectDBClusterState");
    rig.emu.advance_clock(6.0);
    assert_eq!(
        rig.polardb_account("app_blue")["AccountStatus"],
        "Available"
    );
    assert_eq!(
        rig.polardb_modify("pc-acc", "app_blue", "Other-Pass-2")
            .status,
        200
    );

    // Without AccountType the account is privileged; the third fills the quota.
    assert_eq!(
        create(&mut rig, "app_green", "Good-Pass-1", &[]).status,
        200
    );
    assert_eq!(rig.polardb_account("app_green")["AccountType"], "Super");
    assert_ali_error(
        &create(&mut rig, "app_red", "Good-Pass-1", &[]),
        403,
        "QuotaExceeded.AccountName",
    );
}

/// Standard account `reader` on pc-acc, with the `extra` parameters.
fn create_reader(rig: &mut Rig, extra: &[(&str, &str)]) {
    let mut params = vec![
        ("AccountName", "reader"),
        ("AccountPassword", "Good-Pass-1"),
        ("AccountType", "Normal"),
    ];
    params.extend_from_slice(extra);
    assert_eq!(rig.polardb("CreateAccount", &params).status, 200);
}

#[test]
fn polardb_grants_revokes_and_deletes_follow_the_account_state() {
    let mut rig = account_rig();
    create_reader(&mut rig, &[]);
    let grant = |rig: &mut Rig, name: &str, privilege: &str| {
        rig.polardb(
            "GrantAccountPrivilege",
            &[
                ("AccountName", name),
                ("DBName", "db1"),
                ("AccountPrivilege", privilege),
            ],
        )
    };
    assert_ali_error(
        &grant(&mut rig, "reader", "ReadOnly"),
        403,
        "IncorrectDBClusterState",
    );
    rig.emu.advance_clock(6.0);
    assert_ali_error(
        &grant(&mut rig, "owner", "ReadOnly"),
        403,
        "OperationDenied.AccountType",
    );
    assert_ali_error(&grant(&mut rig, "reader", "Admin"), 400, "InvalidParameter");
    assert_ali_error(
        &grant(&mut rig, "nobody", "ReadOnly"),
        404,
        "InvalidAccountName.NotFound",
    );
    assert_eq!(grant(&mut rig, "reader", "ReadOnly").status, 200);
    assert_eq!(grant(&mut rig, "reader", "DMLOnly").status, 200, "replaces");
    assert_eq!(
        rig.polardb_account("reader")["DatabasePrivileges"],
        json!([{"DBName": "db1", "AccountPrivilege": "DMLOnly"}])
    );
    let revoke = rig.polardb(
        "RevokeAccountPrivilege",
        &[("AccountName", "reader"), ("DBName", "db1")],
    );
    assert_eq!(revoke.status, 200);
    assert_eq!(
        rig.polardb_account("reader")["DatabasePrivileges"],
        json!([])
    );

    let delete = |rig: &mut Rig, name: &str| rig.polardb("DeleteAccount", &[("AccountName", name)]);
    assert_eq!(delete(&mut rig, "reader").status, 200);
    assert_eq!(rig.polardb_account("reader")["AccountStatus"], "Deleting");
    assert_eq!(delete(&mut rig, "reader").status, 200, "a repeated delete");
    rig.emu.advance_clock(6.0);
    assert!(rig.polardb_account("reader").is_null(), "gone once settled");
    assert_ali_error(
        &delete(&mut rig, "reader"),
        404,
        "InvalidAccountName.NotFound",
    );
}

// --- DCS ACL accounts ----------------------------------------------------------

#[test]
fn dcs_acl_create_follows_the_name_password_role_and_quota_rules() {
    let mut rig = account_rig();
    let create = |rig: &mut Rig, name: &str, role: &str, password: &str| {
        rig.acl(
            "POST",
            "",
            Some(json!({"account_name": name, "account_role": role, "account_password": password})),
        )
    };
    for bad in ["1abc", "has space", "dot.name", ""] {
        assert_dcs_error(
            &create(&mut rig, bad, "read", "Good-Pass-1"),
            400,
            "DCS.4961",
        );
    }
    assert_dcs_error(
        &create(&mut rig, "reader", "admin", "Good-Pass-1"),
        400,
        "DCS.4961",
    );
    for bad in [
        "Good:Pass-1",
        "xReader-99",
        "xredaer-99",
        "short1A",
        "alllowercase",
    ] {
        assert_dcs_error(&create(&mut rig, "reader", "read", bad), 400, "DCS.4019");
    }
    assert_dcs_error(
        &create(&mut rig, "default", "read", "Good-Pass-1"),
        400,
        "DCS.4961",
    );
    assert_eq!(
        create(&mut rig, "reader", "read", "Good-Pass-1").status,
        200
    );
    assert_dcs_error(
        &create(&mut rig, "reader", "read", "Good-Pass-1"),
        400,
        "DCS.4961",
    );
    assert_eq!(
        create(&mut rig, "writer", "write", "Good-Pass-1").status,
        200
    );
    assert_dcs_error(
        &create(&mut rig, "third", "read", "Good-Pass-1"),
        400,
        "DCS.4039",
    );

    let list = rig.acl("GET", "", None).json();
    let names: Vec<&str> = list["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["account_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "reader", "writer"]);
    assert_eq!(list["accounts"][0]["account_type"], "default");
    let reader = rig.acl_account("reader");
    assert_eq!(
        (reader["status"].as_str(), reader["account_role"].as_str()),
        (Some("CREATING"), Some("read"))
    );
    rig.emu.advance_clock(6.0);
    assert_eq!(rig.acl_account("reader")["status"], "AVAILABLE");

    // ACL accounts need Redis 4.0 or later, and a running instance.
    let old = rig.hw(
        DCS_HOST,
        "GET",
        &format!("/v2/{P}/instances/dcs-old/accounts"),
        None,
    );
    assert_dcs_error(&old, 400, "DCS.4008");
    rig.emu.patch_status("dcs/dcs-acl", "RESTARTING");
    assert_dcs_error(
        &create(&mut rig, "late", "read", "Good-Pass-1"),
        400,
        "DCS.4049",
    );
}

#[test]
fn dcs_acl_password_changes_count_wrong_old_passwords_and_lock_the_account() {
    let mut rig = account_rig();
    rig.emu.seed(json!({"huaweicloud": {"dcs_instances": [
        {"id": "dcs-acl", "project_id": P, "password": "Inst-Pass-1", "account_settle_seconds": 5.0,
         "acl_accounts": [{"name": "app", "password": "App-Pass-1", "role": "write"}]}]}}));
    let id = rig.acl_account("app")["account_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let modify = |rig: &mut Rig, old: &str, new: &str| {
        rig.acl(
            "PUT",
            &format!("/{id}/password/modify"),
            Some(json!({"old_password": old, "new_password": new})),
        )
        .json()
    };
    for left in ["4", "3", "2", "1"] {
        let answer = modify(&mut rig, "Wrong-Pass-1", "New-Pass-22");
        assert_eq!(
            (
                answer["result"].as_str(),
                answer["retry_times_left"].as_str()
            ),
            (Some("passwordFailed"), Some(left))
        );
    }
    assert_eq!(
        modify(&mut rig, "Wrong-Pass-1", "New-Pass-22")["result"],
        "locked"
    );
    assert_eq!(
        modify(&mut rig, "App-Pass-1", "New-Pass-22")["result"],
        "locked",
        "even the right one"
    );
    let reset = |rig: &mut Rig, new: &str| {
        rig.acl(
            "PUT",
            &format!("/{id}/password/reset"),
            Some(json!({"new_password": new})),
        )
        .json()
    };
    assert_eq!(reset(&mut rig, "New-Pass-22")["code"], "3");
    rig.emu.advance_clock(301.0);
    assert_eq!(
        modify(&mut rig, "App-Pass-1", "New-Pass-22")["result"],
        "success"
    );
    let truth = rig.emu.get("dcs/dcs-acl");
    assert_eq!(truth["acl_accounts"][0]["password"], "New-Pass-22");

    assert_eq!(reset(&mut rig, "Reset-Pass-33")["code"], "1");
    assert_eq!(rig.acl_account("app")["status"], "UPDATING");
    let busy = rig.acl(
        "PUT",
        &format!("/{id}/role"),
        Some(json!({"account_role": "read"})),
    );
    assert_dcs_error(&busy, 400, "DCS.4026");
    rig.emu.advance_clock(6.0);
    let role = rig.acl(
        "PUT",
        &format!("/{id}/role"),
        Some(json!({"account_role": "read"})),
    );
    assert_eq!(role.status, 200);
    assert!(role.json()["job_id"].is_string());

    // The default user is listed but changed through the instance calls only.
    let default_id = rig.acl_account("default")["account_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = rig.acl("DELETE", &format!("/{default_id}"), None);
    assert_dcs_error(&response, 400, "DCS.4961");
    let response = rig.acl("DELETE", "/no-such-account", None);
    assert_dcs_error(&response, 400, "DCS.4961");
}

// --- Account rules of dynamic credentials ----------------------------------------

impl Rig {
    fn create_polardb_account(&mut self, name: &str, extra: &[(&str, &str)]) -> Response {
        let mut params = vec![
            ("AccountName", name),
            ("AccountPassword", "Good-Pass-1"),
            ("AccountType", "Normal"),
        ];
        params.extend_from_slice(extra);
        self.polardb("CreateAccount", &params)
    }

    fn create_acl_account(&mut self, instance: &str, name: &str) -> Response {
        let path = format!("/v2/{P}/instances/{instance}/accounts");
        let body = json!({"account_name": name, "account_role": "read",
            "account_password": "Good-Pass-1"});
        self.hw(DCS_HOST, "POST", &path, Some(body))
    }
}

#[test]
fn polardb_databases_are_listed_with_the_accounts_granted_on_them() {
    let mut rig = account_rig();
    create_reader(
        &mut rig,
        &[("DBName", "db2"), ("AccountPrivilege", "ReadOnly")],
    );
    let listed = rig.polardb("DescribeDatabases", &[]).json();
    let databases = &listed["Databases"]["Database"];
    let names: Vec<&str> = databases
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["DBName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db1", "db2"]);
    assert_eq!(listed["PageRecordCount"], 2);
    assert_eq!(databases[0]["DBStatus"], "Running");
    assert_eq!(databases[0]["Accounts"]["Account"], json!([]));
    assert_eq!(
        databases[1]["Accounts"]["Account"][0]["AccountName"], "reader",
        "the account granted on db2"
    );
    assert_eq!(
        databases[1]["Accounts"]["Account"][0]["AccountPrivilege"],
        "ReadOnly"
    );
    let one = rig
        .polardb("DescribeDatabases", &[("DBName", "db2")])
        .json();
    assert_eq!(one["Databases"]["Database"].as_array().unwrap().len(), 1);
    let past = rig
        .polardb("DescribeDatabases", &[("PageNumber", "2")])
        .json();
    assert_eq!(past["Databases"]["Database"], json!([]));
    assert_ali_error(
        &rig.ali(POLARDB, "DescribeDatabases", &[("DBClusterId", "pc-none")]),
        404,
        "InvalidDBClusterId.NotFound",
    );
}

#[test]
fn polardb_account_changes_need_a_running_cluster() {
    let mut rig = account_rig();
    assert_eq!(rig.emu.get("polardb/pc-acc")["status"], "Running");
    assert_eq!(rig.create_polardb_account("reader", &[]).status, 200);
    rig.emu.advance_clock(6.0);

    for status in ["Stopped", "Rebooting", "ClassChanging", "INS_MAINTAINING"] {
        rig.emu.patch_status("polardb/pc-acc", status);
        // Refused before any other rule: even a malformed name.
        for name in ["writer", "Bad-Name"] {
            assert_ali_error(
                &rig.create_polardb_account(name, &[]),
                403,
                "OperationDenied.DBClusterStatus",
            );
        }
        let grant = rig.polardb(
            "GrantAccountPrivilege",
            &[
                ("AccountName", "reader"),
                ("DBName", "db1"),
                ("AccountPrivilege", "ReadOnly"),
            ],
        );
        assert_ali_error(&grant, 403, "OperationDenied.DBClusterStatus");
        let delete = rig.polardb("DeleteAccount", &[("AccountName", "reader")]);
        assert_ali_error(&delete, 403, "OperationDenied.DBClusterStatus");
        // Reading is not a change.
        assert_eq!(rig.polardb_account("reader")["AccountStatus"], "Available");
    }
    let truth = rig.emu.get("polardb/pc-acc");
    let names: Vec<&str> = truth["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["owner", "reader"], "nothing was applied");

    // Only the statuses PolarDB documents can be set.
    let (status, body) = rig.emu.try_admin(
        reqwest::Method::PATCH,
        "polardb/pc-acc",
        Some(json!({"status": "Paused"})),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = rig.emu.try_admin(
        reqwest::Method::POST,
        "seed",
        Some(json!({"alicloud": {"polardb_clusters": [{"id": "pc-x", "status": "running"}]}})),
    );
    assert_eq!(status, 400, "{body}");

    rig.emu.patch_status("polardb/pc-acc", "Running");
    assert_eq!(rig.create_polardb_account("writer", &[]).status, 200);
    let delete = rig.polardb("DeleteAccount", &[("AccountName", "reader")]);
    assert_eq!(delete.status, 200);
}

#[test]
fn polardb_accounts_stay_creating_until_the_task_settles() {
    let mut rig = account_rig();
    assert_eq!(rig.create_polardb_account("reader", &[]).status, 200);
    for _ in 0..3 {
        assert_eq!(rig.polardb_account("reader")["AccountStatus"], "Creating");
        let delete = rig.polardb("DeleteAccount", &[("AccountName", "reader")]);
        assert_ali_error(&delete, 403, "IncorrectDBClusterState");
        rig.emu.advance_clock(1.5);
    }
    rig.emu.advance_clock(1.0);
    assert_eq!(rig.polardb_account("reader")["AccountStatus"], "Available");
    let delete = rig.polardb("DeleteAccount", &[("AccountName", "reader")]);
    assert_eq!(delete.status, 200);
}

#[test]
fn polardb_clusters_have_no_account_limit_unless_the_seed_sets_one() {
    let mut rig = Rig::new();
    for i in 0..12 {
        let name = format!("user_{i}");
        let response = rig.ali(
            POLARDB,
            "CreateAccount",
            &[
                ("DBClusterId", "pc-1"),
                ("AccountName", &name),
                ("AccountPassword", "Good-Pass-1"),
                ("AccountType", "Normal"),
            ],
        );
        assert_eq!(response.status, 200, "{}", response.json());
    }
    let truth = rig.emu.get("polardb/pc-1");
    assert_eq!(truth["accounts"].as_array().unwrap().len(), 14);
    assert!(truth.get("account_limit").is_none(), "{truth}");
}

#[test]
fn polardb_account_names_follow_the_documented_rules() {
    let mut rig = account_rig();
    // The same cluster without its limit.
    rig.emu.seed(json!({"alicloud": {"polardb_clusters": [
        {"id": "pc-acc", "databases": ["db1", "db2"], "account_settle_seconds": 5.0}]}}));
    for bad in [
        "a",
        "abcdefghijklmnopq",
        "Upper",
        "9lives",
        "_lead",
        "trail_",
        "dash-name",
        "dot.name",
        "root",
        "admin",
    ] {
        let response = rig.create_polardb_account(bad, &[]);
        assert_ali_error(&response, 400, "InvalidAccountName.Malformed");
    }
    for good in ["ab", "abcdefghijklmnop", "a_1", "r2d2"] {
        assert_eq!(rig.create_polardb_account(good, &[]).status, 200, "{good}");
    }
    rig.emu.advance_clock(6.0);
    assert_ali_error(
        &rig.create_polardb_account("a_1", &[]),
        400,
        "InvalidAccountName.Duplicate",
    );
}

#[test]
fn dcs_acl_rules_use_the_acl_parameter_code() {
    let mut rig = account_rig();
    rig.emu.seed(json!({"huaweicloud": {"dcs_instances": [
        {"id": "dcs-colon", "project_id": P, "password": "Inst:Pass-1"},
        {"id": "dcs-single", "project_id": P, "password": "Inst:Pass-1", "cache_mode": "single"},
        {"id": "dcs-proxy", "project_id": P, "password": "Inst:Pass-1", "cache_mode": "proxy"},
        {"id": "dcs-wide", "project_id": P, "password": "Inst-Pass-1", "acl_account_limit": 18}]}}));
    // Names the password does not contain (the password rules' own check).
    let long = format!("x{}", "y".repeat(63));
    for bad in [
        "",
        "9lives",
        "-dash",
        "_under",
        "has space",
        "dot.name",
        "default",
    ] {
        assert_dcs_error(&rig.create_acl_account("dcs-wide", bad), 400, "DCS.4961");
    }
    assert_dcs_error(
        &rig.create_acl_account("dcs-wide", &format!("{long}c")),
        400,
        "DCS.4961",
    );
    for good in [long.as_str(), "x", "Mixed-Case_1"] {
        assert_eq!(
            rig.create_acl_account("dcs-wide", good).status,
            200,
            "{good}"
        );
    }
    assert_dcs_error(&rig.create_acl_account("dcs-wide", "x"), 400, "DCS.4961");

    // The default user's password holds ':': no normal users on single-node
    // and master/standby instances; a Proxy Cluster is not named.
    assert_eq!(rig.emu.get("dcs/dcs-colon")["cache_mode"], "ha");
    for instance in ["dcs-colon", "dcs-single"] {
        assert_dcs_error(&rig.create_acl_account(instance, "reader"), 400, "DCS.4961");
    }
    assert_eq!(rig.create_acl_account("dcs-proxy", "reader").status, 200);
    let shown = rig.hw(
        DCS_HOST,
        "GET",
        &format!("/v2/{P}/instances/dcs-proxy"),
        None,
    );
    assert_eq!(shown.json()["cache_mode"], "proxy");
}

#[test]
fn dcs_acl_accounts_stay_creating_until_the_task_settles() {
    let mut rig = account_rig();
    assert_eq!(rig.create_acl_account("dcs-acl", "reader").status, 200);
    let id = rig.acl_account("reader")["account_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..3 {
        assert_eq!(rig.acl_account("reader")["status"], "CREATING");
        let delete = rig.acl("DELETE", &format!("/{id}"), None);
        assert_dcs_error(&delete, 400, "DCS.4026");
        rig.emu.advance_clock(1.5);
    }
    rig.emu.advance_clock(1.0);
    assert_eq!(rig.acl_account("reader")["status"], "AVAILABLE");
    assert_eq!(rig.acl("DELETE", &format!("/{id}"), None).status, 200);
    assert_eq!(rig.acl_account("reader")["status"], "DELETING");
    assert_eq!(
        rig.acl("DELETE", &format!("/{id}"), None).status,
        200,
        "a repeated delete"
    );
    rig.emu.advance_clock(6.0);
    assert!(rig.acl_account("reader").is_null());
    assert_dcs_error(&rig.acl("DELETE", &format!("/{id}"), None), 400, "DCS.4961");
}

#[test]
fn account_calls_can_be_applied_with_their_answer_lost() {
    let mut rig = account_rig();
    // PolarDB: applied, then a server error; the same client token again
    // is answered like the first request.
    rig.emu
        .set_faults(json!({"seed": 5, "gateway_error_after_apply_rate": 1.0,
        "apis": ["polardb.CreateAccount"]}));
    let token = [("ClientToken", "lost-answer-1")];
    let lost = rig.create_polardb_account("reader", &token);
    assert!(matches!(lost.status, 500 | 503), "{}", lost.status);
    assert_eq!(rig.polardb_account("reader")["AccountStatus"], "Creating");
    rig.emu.set_faults(json!({}));
    assert_eq!(rig.create_polardb_account("reader", &token).status, 200);
    rig.emu.advance_clock(6.0);

    // PolarDB: applied, then the connection closes.
    rig.emu.set_faults(
        json!({"drop_after_apply_rate": 1.0, "apis": ["polardb.GrantAccountPrivilege"]}),
    );
    let request = rig.acs3(
        POLARDB,
        "GrantAccountPrivilege",
        &[
            ("DBClusterId", "pc-acc"),
            ("AccountName", "reader"),
            ("DBName", "db2"),
            ("AccountPrivilege", "ReadOnly"),
        ],
        &ali_creds(),
    );
    let error = rig.client.send(&request).expect_err("no answer");
    assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{error:?}");
    rig.reconnect();
    assert_eq!(
        rig.polardb_account("reader")["DatabasePrivileges"],
        json!([{"DBName": "db2", "AccountPrivilege": "ReadOnly"}])
    );
    rig.emu
        .set_faults(json!({"drop_after_apply_rate": 1.0, "apis": ["polardb.DeleteAccount"]}));
    let request = rig.acs3(
        POLARDB,
        "DeleteAccount",
        &[("DBClusterId", "pc-acc"), ("AccountName", "reader")],
        &ali_creds(),
    );
    rig.client.send(&request).expect_err("no answer");
    rig.reconnect();
    rig.emu.set_faults(json!({}));
    assert_eq!(rig.polardb_account("reader")["AccountStatus"], "Deleting");

    // DCS: create and delete applied, answers lost.
    rig.emu
        .set_faults(json!({"seed": 9, "gateway_error_after_apply_rate": 1.0,
        "apis": ["dcs.CreateAclAccount", "dcs.DeleteAclAccount"]}));
    let lost = rig.create_acl_account("dcs-acl", "writer");
    assert!(matches!(lost.status, 502 | 504), "{}", lost.status);
    assert_eq!(lost.json()["error_code"], "APIGW.0201");
    assert_eq!(rig.acl_account("writer")["status"], "CREATING");
    rig.emu.advance_clock(6.0);
    let id = rig.acl_account("writer")["account_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let lost = rig.acl("DELETE", &format!("/{id}"), None);
    assert!(matches!(lost.status, 502 | 504), "{}", lost.status);
    assert_eq!(rig.acl_account("writer")["status"], "DELETING");
    let outcomes = rig.emu.counters()["outcomes"].clone();
    assert_eq!(
        (
            &outcomes["gateway_error_after_apply"],
            &outcomes["dropped_after_apply"]
        ),
        (&json!(3), &json!(2))
    );

    // Scripted answers: documented codes only, nothing applied.
    rig.emu.set_faults(json!({"scripted": [
        {"api": "polardb.CreateAccount", "code": "OperationDenied.DBClusterStatus"},
        {"api": "dcs.CreateAclAccount", "code": "DCS.4961"}]}));
    assert_ali_error(
        &rig.create_polardb_account("scripted", &[]),
        403,
        "OperationDenied.DBClusterStatus",
    );
    assert_dcs_error(
        &rig.create_acl_account("dcs-acl", "scripted"),
        400,
        "DCS.4961",
    );
    assert!(rig.polardb_account("scripted").is_null());
    assert!(rig.acl_account("scripted").is_null());
    let (status, body) = rig.emu.try_admin(
        reqwest::Method::PUT,
        "faults",
        Some(json!({"scripted": [{"api": "polardb.DeleteAccount", "code": "AccountGone"}]})),
    );
    assert_eq!(status, 400, "{body}");
}
