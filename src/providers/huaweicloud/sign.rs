//! Huawei Cloud APIG signing (`SDK-HMAC-SHA256`) as pure functions over a
//! canonical request. The emulator verifies with the same functions.

use time::OffsetDateTime;
use time::macros::format_description;

use crate::providers::encoding::{self, percent_encode, signed_header_names};
use crate::providers::hash::{hmac_sha256_hex, sha256_hex};

pub const ALGORITHM: &str = "SDK-HMAC-SHA256";

/// `YYYYMMDDTHHMMSSZ` in UTC: the `X-Sdk-Date` header.
pub fn format_sdk_date(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.format(format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))
    .expect("a UTC timestamp always formats")
}

pub fn parse_sdk_date(text: &str) -> Option<OffsetDateTime> {
    time::PrimitiveDateTime::parse(
        text,
        format_description!("[year][month][day]T[hour][minute][second]Z"),
    )
    .ok()
    .map(|t| t.assume_utc())
}

/// Each segment of the (decoded) path encoded, always ending in `/`. The
/// URL actually sent has no trailing slash.
pub fn canonical_uri(decoded_path: &str) -> String {
    let mut out = decoded_path
        .split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/");
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// Lower-cases names, trims values and sorts: the form headers take in the
/// canonical request.
pub fn normalize_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    out.sort();
    out
}

#[derive(Debug, Clone, Copy)]
pub struct SignRequest<'a> {
    pub method: &'a str,
    /// The path as sent, decoded (no percent escapes).
    pub path: &'a str,
    pub query: &'a [(String, String)],
    /// Exactly the signed headers, normalised by [`normalize_headers`].
    pub signed_headers: &'a [(String, String)],
    /// Lower-hex SHA-256 of exactly the body bytes sent.
    pub payload_sha256: &'a str,
}

pub fn canonical_request(request: &SignRequest<'_>) -> String {
    encoding::canonical_request(
        request.method,
        &canonical_uri(request.path),
        request.query,
        request.signed_headers,
        request.payload_sha256,
    )
}

pub fn string_to_sign(sdk_date: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{sdk_date}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Lower-hex HMAC-SHA256 keyed with the raw secret key.
pub fn signature(secret_key: &str, string_to_sign: &str) -> String {
    hmac_sha256_hex(secret_key, string_to_sign)
}

/// The `Authorization` header for a request signed at `sdk_date` (which
/// must also be among the signed headers as `x-sdk-date`).
pub fn authorization(
    request: &SignRequest<'_>,
    sdk_date: &str,
    access_key: &str,
    secret_key: &str,
) -> String {
    let signature = signature(
        secret_key,
        &string_to_sign(sdk_date, &canonical_request(request)),
    );
    format!(
        "{ALGORITHM} Access={access_key}, SignedHeaders={}, Signature={signature}",
        signed_header_names(request.signed_headers)
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    pub access_key: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

pub fn parse_authorization(header: &str) -> Option<ParsedAuthorization> {
    let rest = header.strip_prefix(ALGORITHM)?.strip_prefix(' ')?;
    let (mut access, mut signed, mut signature) = (None, None, None);
    for part in rest.split(", ") {
        let (key, value) = part.split_once('=')?;
        match key {
            "Access" => access = Some(value),
            "SignedHeaders" => signed = Some(value),
            "Signature" => signature = Some(value),
            _ => return None,
        }
    }
    Some(ParsedAuthorization {
        access_key: access?.to_owned(),
        signed_headers: signed?.split(';').map(str::to_owned).collect(),
        signature: signature?.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AK: &str = "QTWAOYTTINDUT2QVKYUC";
    const SK: &str = "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc";
    const PROJECT: &str = "054ba152d480d55b2f5dc0069e7ddef0";
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sha256(data: &str) -> String {
        sha256_hex(data.as_bytes())
    }

    #[test]
    fn published_vpc_list_vector() {
        let query = pairs(&[
            ("limit", "2"),
            ("marker", "13551d6b-755d-4757-b956-536f674975c0"),
        ]);
        let headers = normalize_headers(&pairs(&[
            ("Content-Type", "application/json"),
            ("Host", "service.region.example.com"),
            ("X-Sdk-Date", "20191115T033655Z"),
        ]));
        let request = SignRequest {
            method: "GET",
            path: "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs",
            query: &query,
            signed_headers: &headers,
            payload_sha256: EMPTY,
        };
        let canonical = canonical_request(&request);
        assert_eq!(
            canonical,
            "GET\n/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs/\nlimit=2&marker=13551d6b-755d-4757-b956-536f674975c0\ncontent-type:application/json\nhost:service.region.example.com\nx-sdk-date:20191115T033655Z\n\ncontent-type;host;x-sdk-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            string_to_sign("20191115T033655Z", &canonical),
            "SDK-HMAC-SHA256\n20191115T033655Z\nb25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a"
        );
        let header = authorization(&request, "20191115T033655Z", AK, SK);
        assert_eq!(
            header,
            "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
        );
        let parsed = parse_authorization(&header).unwrap();
        assert_eq!(parsed.access_key, AK);
        assert_eq!(
            parsed.signed_headers,
            vec!["content-type", "host", "x-sdk-date"]
        );
    }

    fn drs_request_authorization(body: &str, extra: &[(&str, &str)], minimal: bool) -> String {
        let mut headers = pairs(&[
            ("host", "drs.cn-north-4.myhuaweicloud.com"),
            ("x-sdk-date", "20240501T080000Z"),
        ]);
        if !minimal {
            headers.extend(pairs(&[
                ("content-type", "application/json"),
                ("x-project-id", PROJECT),
            ]));
        }
        headers.extend(pairs(extra));
        let headers = normalize_headers(&headers);
        let hash = sha256(body);
        let path = format!("/v3/{PROJECT}/jobs/batch-modify-pwd");
        let request = SignRequest {
            method: "PUT",
            path: &path,
            query: &[],
            signed_headers: &headers,
            payload_sha256: &hash,
        };
        authorization(&request, "20240501T080000Z", AK, SK)
    }

    #[test]
    fn drs_batch_modify_password_vectors() {
        let body = r#"{"jobs":[{"db_password":"N3w-P@ss!","end_point_type":"so","job_id":"140b5236-88ad-43c8-811c-1268453jb101"}]}"#;
        assert_eq!(
            sha256(body),
            "9475d5fbad9b3925e628b49d05344f39de8a3ee138596233c940f201f50b9f9b"
        );
        assert_eq!(
            drs_request_authorization(body, &[], false),
            "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=23f4a9c3c42d92b039e697e3995d29958dc4d6f325f73f75835f6beed540ed5c"
        );
        assert_eq!(
            drs_request_authorization(body, &[], true),
            "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=host;x-sdk-date, Signature=b379e89c18b6936cfcb6ffc287becf4f0f929067af2381d38eae92bb0fabc6c8"
        );
        assert_eq!(
            drs_request_authorization(
                body,
                &[("X-Security-Token", "gQpjbi1ub3J0aC00-test-security-token")],
                false
            ),
            "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-project-id;x-sdk-date;x-security-token, Signature=3ebe449cb1b72ba09131d93f8f5e51e11996873e24676f360c87d382b9e86110"
        );
        let sdk_body = r#"{"jobs": [{"db_password": "N3w-P@ss!", "end_point_type": "so", "job_id": "140b5236-88ad-43c8-811c-1268453jb101"}]}"#;
        assert!(
            drs_request_authorization(
                sdk_body,
                &[("User-Agent", "huaweicloud-usdk-python/3.0; oracle-fixed")],
                false
            )
            .ends_with(
                "Signature=4bff12d3e1fe116d09e4f728d6be57123bcdcb2d09c701b60d3aaa93bc373266"
            )
        );
    }

    fn dcs_authorization(body: &str, content_type: &str, extra: &[(&str, &str)]) -> String {
        let mut headers = pairs(&[
            ("Content-Type", content_type),
            ("Host", "dcs.cn-north-4.myhuaweicloud.com"),
            ("X-Project-Id", PROJECT),
            ("X-Sdk-Date", "20240501T080000Z"),
        ]);
        headers.extend(pairs(extra));
        let headers = normalize_headers(&headers);
        let hash = sha256(body);
        let path = format!("/v2/{PROJECT}/instances/3f7e1c7e-8d3a-4b6e-9d0f-8f1e2a3b4c5d/password");
        let request = SignRequest {
            method: "PUT",
            path: &path,
            query: &[],
            signed_headers: &headers,
            payload_sha256: &hash,
        };
        authorization(&request, "20240501T080000Z", AK, SK)
    }

    #[test]
    fn dcs_update_password_vectors() {
        let body = r#"{"old_password":"Old-P@ss1","new_password":"New-P@ss2"}"#;
        assert_eq!(
            sha256(body),
            "caaa08c2b66c6ec9afe8dd50d013fd5abf7bac8a9184770464d39ecba0e95329"
        );
        assert_eq!(
            dcs_authorization(body, "application/json;charset=UTF-8", &[]),
            "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=bf537175e1e37e554286d35a6e5fbdbfd08c3d197e983558b09702248bd3fd79"
        );
        let sdk_body = r#"{"old_password": "Old-P@ss1", "new_password": "New-P@ss2"}"#;
        let agent = ("User-Agent", "huaweicloud-usdk-python/3.0; oracle-fixed");
        assert!(
            dcs_authorization(sdk_body, "application/json;charset=utf-8", &[agent]).ends_with(
                "Signature=6dbd5736674b79e8c2ca1c2db15b808fff796927227ab9c33cabc20140c90822"
            )
        );
        assert!(
            dcs_authorization(
                sdk_body,
                "application/json;charset=utf-8",
                &[
                    agent,
                    ("X-Security-Token", "gQpjbi1ub3J0aC00-test-security-token")
                ]
            )
            .ends_with(
                "Signature=053cfbb36f6e23bf6abf3571dc53289b8d222b0e38c091ea680e5f5873e008ea"
            )
        );
    }

    #[test]
    fn encoding_corner_case_vector() {
        let query = pairs(&[("name", "x y*~é"), ("a", "1")]);
        let headers = normalize_headers(&pairs(&[
            ("Host", "drs.cn-north-4.myhuaweicloud.com"),
            ("X-Sdk-Date", "20240501T080000Z"),
        ]));
        let path = format!("/v3/{PROJECT}/jobs/a b");
        let request = SignRequest {
            method: "GET",
            path: &path,
            query: &query,
            signed_headers: &headers,
            payload_sha256: EMPTY,
        };
        let canonical = canonical_request(&request);
        assert!(canonical.contains(&format!(
            "\n/v3/{PROJECT}/jobs/a%20b/\na=1&name=x%20y%2A~%C3%A9\n"
        )));
        assert_eq!(
            authorization(&request, "20240501T080000Z", AK, SK),
            "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=host;x-sdk-date, Signature=feb4616c35ebc8f87376881e42d3142ce56b858177b25dafd36dc830f13d306b"
        );
    }

    #[test]
    fn sdk_dates_round_trip() {
        let at = time::macros::datetime!(2019-11-15 03:36:55 UTC);
        assert_eq!(format_sdk_date(at), "20191115T033655Z");
        assert_eq!(parse_sdk_date("20191115T033655Z"), Some(at));
        assert_eq!(parse_sdk_date("2019-11-15T03:36:55Z"), None);
    }

    #[test]
    fn malformed_authorization_headers_are_rejected() {
        assert!(
            parse_authorization("SDK-HMAC-SHA256 Access=a,SignedHeaders=b,Signature=c").is_none()
        );
        assert!(parse_authorization("SDK-HMAC-SHA256 Access=a, SignedHeaders=b").is_none());
        assert!(
            parse_authorization("ACS3-HMAC-SHA256 Access=a, SignedHeaders=b, Signature=c")
                .is_none()
        );
    }
}
