//! Signing and request building, in nanoseconds per request, for each
//! scheme: the client's builders (canonical query, headers, signature,
//! URL: everything before the socket) and the bare signing functions.
//!
//! Each figure is the median over many timed batches, after a warm-up, of
//! the mean time per request within a batch. `cargo bench --bench signing`.

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use cloudrotate::providers::Credentials;
use cloudrotate::providers::alicloud::client::{
    RpcSigningInput, SignatureVersion, build_rpc_request,
};
use cloudrotate::providers::alicloud::sign as ali;
use cloudrotate::providers::hash::{EMPTY_PAYLOAD_SHA256, sha256_hex};
use cloudrotate::providers::huaweicloud::client::{RestSigningInput, build_rest_request};
use cloudrotate::providers::huaweicloud::sign as hw;
use reqwest::{Method, Url};
use serde_json::json;

const WARM_UP: usize = 3_000;
const BATCHES: usize = 300;
const PER_BATCH: usize = 100;

/// One request built and signed per call.
type Bench = Box<dyn FnMut()>;

/// Median over batches of the mean ns per call of `f`.
fn ns_per_request(mut f: impl FnMut()) -> f64 {
    for _ in 0..WARM_UP {
        f();
    }
    let mut samples: Vec<Duration> = (0..BATCHES)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..PER_BATCH {
                f();
            }
            started.elapsed()
        })
        .collect();
    support::quantile(&mut samples, 0.5).as_nanos() as f64 / PER_BATCH as f64
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn main() {
    let mut report = support::Report::new("signing");
    let timestamp = "2024-05-01T08:00:00Z";
    let nonce = "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf";
    let ali_creds: &'static Credentials =
        Box::leak(Box::new(Credentials::new("testid", "testsecret")));
    let ali_sts: &'static Credentials = Box::leak(Box::new(
        ali_creds
            .clone()
            .with_security_token("CAIS-test-security-token"),
    ));
    let polardb = Url::parse("https://polardb.aliyuncs.com").unwrap();
    let dts = Url::parse("https://dts.aliyuncs.com").unwrap();
    let polardb_params: &'static [(String, String)] = pairs(&[
        ("DBClusterId", "pc-bp1234567890abcde"),
        ("AccountName", "testacc"),
        ("NewAccountPassword", "Pw!@#$%^&*()_+-=1a"),
    ])
    .leak();
    let dts_params: &'static [(String, String)] = pairs(&[
        ("DtsJobId", "l3m1213ye7l****"),
        ("Endpoint", "src"),
        ("UserName", "dtstest"),
        ("Password", "N3w P@ss*~/+=&!"),
        ("RegionId", "cn-hangzhou"),
    ])
    .leak();
    let rpc = |base: &Url,
               version: &'static str,
               action: &'static str,
               params: &'static [(String, String)],
               credentials: &'static Credentials,
               signature: SignatureVersion| {
        let base = base.clone();
        move || {
            black_box(build_rpc_request(&RpcSigningInput {
                base: black_box(&base),
                version,
                action,
                params,
                credentials,
                signature,
                timestamp,
                nonce,
            }));
        }
    };
    let figures: Vec<(&str, Bench)> = vec![
        (
            "ACS3 PolarDB ModifyAccountPassword, build + sign",
            Box::new(rpc(
                &polardb,
                "2017-08-01",
                "ModifyAccountPassword",
                polardb_params,
                ali_creds,
                SignatureVersion::Acs3,
            )),
        ),
        (
            "ACS3 PolarDB ModifyAccountPassword + STS token, build + sign",
            Box::new(rpc(
                &polardb,
                "2017-08-01",
                "ModifyAccountPassword",
                polardb_params,
                ali_sts,
                SignatureVersion::Acs3,
            )),
        ),
        (
            "ACS3 DTS ModifyDtsJobPassword, build + sign",
            Box::new(rpc(
                &dts,
                "2020-01-01",
                "ModifyDtsJobPassword",
                dts_params,
                ali_creds,
                SignatureVersion::Acs3,
            )),
        ),
        (
            "V2 DTS ModifyDtsJobPassword, build + sign",
            Box::new(rpc(
                &dts,
                "2020-01-01",
                "ModifyDtsJobPassword",
                dts_params,
                ali_creds,
                SignatureVersion::V2,
            )),
        ),
        (
            "V2 DTS ModifyDtsJobPassword + STS token, build + sign",
            Box::new(rpc(
                &dts,
                "2020-01-01",
                "ModifyDtsJobPassword",
                dts_params,
                ali_sts,
                SignatureVersion::V2,
            )),
        ),
    ];
    let mut results: Vec<(&str, f64)> = Vec::new();
    for (name, mut f) in figures {
        results.push((name, ns_per_request(&mut f)));
    }

    // Huawei: the JSON body is serialised once per request, then hashed
    // and signed with every header.
    let hw_creds = Credentials::new(
        "QTWAOYTTINDUT2QVKYUC",
        "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
    );
    let hw_sts = hw_creds
        .clone()
        .with_security_token("gQpjbi1ub3J0aC00-test-security-token");
    let project = "054ba152d480d55b2f5dc0069e7ddef0";
    let drs = Url::parse("https://drs.cn-north-4.myhuaweicloud.com").unwrap();
    let dcs = Url::parse("https://dcs.cn-north-4.myhuaweicloud.com").unwrap();
    let drs_path = format!("/v3/{project}/jobs/batch-modify-pwd");
    let dcs_path = format!("/v2/{project}/instances/3f7e1c7e-8d3a-4b6e-9d0f-8f1e2a3b4c5d/password");
    let rest =
        |base: &Url, method: Method, path: &str, body: serde_json::Value, creds: &Credentials| {
            let (base, path, creds) = (base.clone(), path.to_owned(), creds.clone());
            move || {
                let body = serde_json::to_vec(black_box(&body)).unwrap();
                black_box(build_rest_request(&RestSigningInput {
                    base: black_box(&base),
                    method: &method,
                    path: &path,
                    query: &[],
                    body: Some(&body),
                    credentials: &creds,
                    project_id: Some(project),
                    domain_id: None,
                    sdk_date: "20240501T080000Z",
                }));
            }
        };
    let drs_one = json!({"jobs": [{"db_password": "N3w-P@ss!", "end_point_type": "so",
        "job_id": "140b5236-88ad-43c8-811c-1268453jb101"}]});
    let drs_twenty = json!({"jobs": (0..20).map(|i| json!({"db_password": "N3w-P@ss!",
        "end_point_type": if i % 2 == 0 { "so" } else { "ta" },
        "job_id": format!("140b5236-88ad-43c8-811c-1268453jb{i:03}")})).collect::<Vec<_>>()});
    let dcs_body = json!({"old_password": "Old-P@ss1", "new_password": "New-P@ss2"});
    let mut huawei: Vec<(&str, Bench)> = vec![
        (
            "Huawei DRS batch-modify-pwd (1 job), build + sign",
            Box::new(rest(&drs, Method::PUT, &drs_path, drs_one, &hw_creds)),
        ),
        (
            "Huawei DRS batch-modify-pwd (20 jobs), build + sign",
            Box::new(rest(&drs, Method::PUT, &drs_path, drs_twenty, &hw_creds)),
        ),
        (
            "Huawei DCS UpdatePassword, build + sign",
            Box::new(rest(
                &dcs,
                Method::PUT,
                &dcs_path,
                dcs_body.clone(),
                &hw_creds,
            )),
        ),
        (
            "Huawei DCS UpdatePassword + security token, build + sign",
            Box::new(rest(&dcs, Method::PUT, &dcs_path, dcs_body, &hw_sts)),
        ),
    ];
    for (name, f) in huawei.iter_mut() {
        results.push((name, ns_per_request(f)));
    }

    // The bare signing functions over a ready canonical request.
    let acs3_headers = ali::acs3_headers_to_sign(&pairs(&[
        ("host", "polardb.aliyuncs.com"),
        ("x-acs-action", "ModifyAccountPassword"),
        ("x-acs-version", "2017-08-01"),
        ("x-acs-date", timestamp),
        ("x-acs-signature-nonce", nonce),
        ("x-acs-content-sha256", EMPTY_PAYLOAD_SHA256),
    ]));
    results.push((
        "ACS3 authorization only (canonical request + HMAC)",
        ns_per_request(|| {
            black_box(ali::acs3_authorization(
                &ali::Acs3Request {
                    method: "POST",
                    canonical_uri: "/",
                    query: black_box(polardb_params),
                    signed_headers: &acs3_headers,
                    payload_sha256: EMPTY_PAYLOAD_SHA256,
                },
                "testid",
                "testsecret",
            ));
        }),
    ));
    let mut v2_params = dts_params.to_vec();
    v2_params.extend(pairs(&[
        ("AccessKeyId", "testid"),
        ("Action", "ModifyDtsJobPassword"),
        ("Format", "JSON"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", nonce),
        ("SignatureVersion", "1.0"),
        ("Timestamp", timestamp),
        ("Version", "2020-01-01"),
    ]));
    results.push((
        "V2 signature only (string to sign + HMAC-SHA1)",
        ns_per_request(|| {
            black_box(ali::v2_signature(
                "testsecret",
                &ali::v2_string_to_sign("POST", black_box(&v2_params)),
            ));
        }),
    ));
    let hw_headers = hw::normalize_headers(&pairs(&[
        ("Content-Type", "application/json"),
        ("Host", "drs.cn-north-4.myhuaweicloud.com"),
        ("X-Project-Id", project),
        ("X-Sdk-Date", "20240501T080000Z"),
    ]));
    let body_hash = sha256_hex(br#"{"jobs":[]}"#);
    results.push((
        "Huawei authorization only (canonical request + HMAC)",
        ns_per_request(|| {
            black_box(hw::authorization(
                &hw::SignRequest {
                    method: "PUT",
                    path: black_box(&drs_path),
                    query: &[],
                    signed_headers: &hw_headers,
                    payload_sha256: &body_hash,
                },
                "20240501T080000Z",
                "QTWAOYTTINDUT2QVKYUC",
                "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
            ));
        }),
    ));

    for (name, ns) in results {
        report.figure(name, ns, "ns/req", "");
    }
    report.save();
}
