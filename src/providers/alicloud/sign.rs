//! Alibaba Cloud request signing as pure functions over a canonical request:
//! ACS3-HMAC-SHA256 (the V3 scheme, default) and the legacy RPC V2
//! HMAC-SHA1. The emulator verifies with the same functions.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::providers::encoding::{
    canonical_query, canonical_request, percent_encode, signed_header_names,
};
use crate::providers::hash::{hmac_sha256_hex, sha256_hex};

pub const ACS3_ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// `yyyy-MM-ddTHH:mm:ssZ` in UTC: `x-acs-date` and the V2 `Timestamp`.
pub fn format_timestamp(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .expect("a UTC timestamp always formats")
}

pub fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    time::PrimitiveDateTime::parse(
        text,
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"),
    )
    .ok()
    .map(|t| t.assume_utc())
}

/// The request as ACS3 signs it. `signed_headers` holds exactly the headers
/// to sign, with lower-case names; see [`acs3_headers_to_sign`].
#[derive(Debug, Clone, Copy)]
pub struct Acs3Request<'a> {
    pub method: &'a str,
    /// `/` for RPC-style APIs.
    pub canonical_uri: &'a str,
    pub query: &'a [(String, String)],
    pub signed_headers: &'a [(String, String)],
    pub payload_sha256: &'a str,
}

/// Picks the headers ACS3 requires to be signed (`host`, `content-type` and
/// every `x-acs-*`), lower-cases names, trims values, joins repeated names
/// with `,` and sorts by name.
pub fn acs3_headers_to_sign(headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut picked: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_owned()))
        .filter(|(name, _)| name == "host" || name == "content-type" || name.starts_with("x-acs-"))
        .collect();
    picked.sort();
    let mut merged: Vec<(String, String)> = Vec::with_capacity(picked.len());
    for (name, value) in picked {
        match merged.last_mut() {
            Some((last, joined)) if *last == name => {
                joined.push(',');
                joined.push_str(&value);
            }
            _ => merged.push((name, value)),
        }
    }
    merged
}

pub fn acs3_canonical_request(request: &Acs3Request<'_>) -> String {
    canonical_request(
        request.method,
        request.canonical_uri,
        request.query,
        request.signed_headers,
        request.payload_sha256,
    )
}

pub fn acs3_string_to_sign(canonical_request: &str) -> String {
    format!(
        "{ACS3_ALGORITHM}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Lower-hex HMAC-SHA256 keyed with the raw secret (no `&` suffix).
pub fn acs3_signature(access_key_secret: &str, string_to_sign: &str) -> String {
    hmac_sha256_hex(access_key_secret, string_to_sign)
}

/// The full `Authorization` header value for a request.
pub fn acs3_authorization(
    request: &Acs3Request<'_>,
    access_key_id: &str,
    access_key_secret: &str,
) -> String {
    let signature = acs3_signature(
        access_key_secret,
        &acs3_string_to_sign(&acs3_canonical_request(request)),
    );
    format!(
        "{ACS3_ALGORITHM} Credential={access_key_id},SignedHeaders={},Signature={signature}",
        signed_header_names(request.signed_headers)
    )
}

/// The three parts of an ACS3 `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acs3Authorization {
    pub access_key_id: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

pub fn parse_acs3_authorization(header: &str) -> Option<Acs3Authorization> {
    let rest = header.strip_prefix(ACS3_ALGORITHM)?.strip_prefix(' ')?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (key, value) = part.trim().split_once('=')?;
        match key {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed = Some(value),
            "Signature" => signature = Some(value),
            _ => return None,
        }
    }
    Some(Acs3Authorization {
        access_key_id: credential?.to_owned(),
        signed_headers: signed?.split(';').map(str::to_owned).collect(),
        signature: signature?.to_owned(),
    })
}

/// V2: `METHOD&%2F&enc(canonical query)`. `params` are all request
/// parameters except `Signature`.
pub fn v2_string_to_sign(method: &str, params: &[(String, String)]) -> String {
    format!(
        "{method}&{}&{}",
        percent_encode("/"),
        percent_encode(&canonical_query(params))
    )
}

/// Base64 HMAC-SHA1 keyed with `secret + "&"`.
pub fn v2_signature(access_key_secret: &str, string_to_sign: &str) -> String {
    let key = format!("{access_key_secret}&");
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::hash::EMPTY_PAYLOAD_SHA256;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn v2_common(
        action: &str,
        version: &str,
        format: &str,
        nonce: &str,
        timestamp: &str,
    ) -> Vec<(String, String)> {
        pairs(&[
            ("AccessKeyId", "testid"),
            ("Action", action),
            ("Format", format),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", nonce),
            ("SignatureVersion", "1.0"),
            ("Timestamp", timestamp),
            ("Version", version),
        ])
    }

    #[test]
    fn v2_published_describe_dedicated_hosts() {
        let mut params = v2_common(
            "DescribeDedicatedHosts",
            "2014-05-26",
            "JSON",
            "edb2b34af0af9a6d14deaf7c1a5315eb",
            "2023-03-13T08:34:30Z",
        );
        params.extend(pairs(&[("RegionId", "cn-beijing")]));
        let sts = v2_string_to_sign("GET", &params);
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeDedicatedHosts%26Format%3DJSON%26RegionId%3Dcn-beijing%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3Dedb2b34af0af9a6d14deaf7c1a5315eb%26SignatureVersion%3D1.0%26Timestamp%3D2023-03-13T08%253A34%253A30Z%26Version%3D2014-05-26"
        );
        assert_eq!(
            v2_signature("testsecret", &sts),
            "9NaGiOspFP5UPcwX8Iwt2YJXXuk="
        );
    }

    #[test]
    fn v2_published_describe_regions_get_and_post() {
        let params = v2_common(
            "DescribeRegions",
            "2014-05-26",
            "XML",
            "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
            "2016-02-23T12:46:24Z",
        );
        assert_eq!(
            v2_signature("testsecret", &v2_string_to_sign("GET", &params)),
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        );
        assert_eq!(
            v2_signature("testsecret", &v2_string_to_sign("POST", &params)),
            "MxbnVAM4w6sft9xjVpe/GCKueuk="
        );
    }

    fn dts_v2_params() -> Vec<(String, String)> {
        let mut params = v2_common(
            "ModifyDtsJobPassword",
            "2020-01-01",
            "JSON",
            "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
            "2024-05-01T08:00:00Z",
        );
        params.extend(pairs(&[
            ("DtsJobId", "l3m1213ye7l****"),
            ("Endpoint", "src"),
            ("UserName", "dtstest"),
            ("Password", "N3w P@ss*~/+=&!"),
            ("RegionId", "cn-hangzhou"),
        ]));
        params
    }

    #[test]
    fn v2_dts_modify_password_vectors() {
        let params = dts_v2_params();
        let post = v2_string_to_sign("POST", &params);
        assert_eq!(
            post,
            "POST&%2F&AccessKeyId%3Dtestid%26Action%3DModifyDtsJobPassword%26DtsJobId%3Dl3m1213ye7l%252A%252A%252A%252A%26Endpoint%3Dsrc%26Format%3DJSON%26Password%3DN3w%2520P%2540ss%252A~%252F%252B%253D%2526%2521%26RegionId%3Dcn-hangzhou%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2024-05-01T08%253A00%253A00Z%26UserName%3Ddtstest%26Version%3D2020-01-01"
        );
        assert_eq!(
            v2_signature("testsecret", &post),
            "2WW9+SpBhIhWYFExcsibJpbbHj4="
        );
        assert_eq!(
            v2_signature("testsecret", &v2_string_to_sign("GET", &params)),
            "z2ivkHzfWwUnoVglx9ByX1al8Wo="
        );

        let mut with_token = params.clone();
        with_token.push(("SecurityToken".into(), "CAIS-test-security-token".into()));
        assert_eq!(
            v2_signature("testsecret", &v2_string_to_sign("POST", &with_token)),
            "egleblhn2JOiWrVMYOTzJdP27cU="
        );

        let mut sdk_core = params.clone();
        sdk_core.push(("SignatureType".into(), String::new()));
        assert_eq!(
            v2_signature("testsecret", &v2_string_to_sign("POST", &sdk_core)),
            "P/zDzN+4t4PjEQ05xWOe8vsHLc0="
        );

        let tea: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    if k == "Format" {
                        "json".into()
                    } else {
                        v.clone()
                    },
                )
            })
            .collect();
        assert_eq!(
            v2_signature("testsecret", &v2_string_to_sign("POST", &tea)),
            "e5tkEF55gouaGHIW6wsMr1ilXSw="
        );
    }

    fn acs3_headers(
        host: &str,
        action: &str,
        version: &str,
        date: &str,
        nonce: &str,
    ) -> Vec<(String, String)> {
        pairs(&[
            ("host", host),
            ("x-acs-action", action),
            ("x-acs-version", version),
            ("x-acs-date", date),
            ("x-acs-signature-nonce", nonce),
            ("x-acs-content-sha256", EMPTY_PAYLOAD_SHA256),
        ])
    }

    #[test]
    fn acs3_published_run_instances() {
        let query = pairs(&[
            (
                "ImageId",
                "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
            ),
            ("RegionId", "cn-shanghai"),
        ]);
        let headers = acs3_headers_to_sign(&acs3_headers(
            "ecs.cn-shanghai.aliyuncs.com",
            "RunInstances",
            "2014-05-26",
            "2023-10-26T10:22:32Z",
            "3156853299f313e23d1673dc12e1703d",
        ));
        let request = Acs3Request {
            method: "POST",
            canonical_uri: "/",
            query: &query,
            signed_headers: &headers,
            payload_sha256: EMPTY_PAYLOAD_SHA256,
        };
        let canonical = acs3_canonical_request(&request);
        assert_eq!(
            canonical,
            "POST\n/\nImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\nhost:ecs.cn-shanghai.aliyuncs.com\nx-acs-action:RunInstances\nx-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nx-acs-date:2023-10-26T10:22:32Z\nx-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\nx-acs-version:2014-05-26\n\nhost;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            acs3_string_to_sign(&canonical),
            "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        let authorization = acs3_authorization(&request, "YourAccessKeyId", "YourAccessKeySecret");
        assert_eq!(
            authorization,
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
        let parsed = parse_acs3_authorization(&authorization).unwrap();
        assert_eq!(parsed.access_key_id, "YourAccessKeyId");
        assert_eq!(parsed.signed_headers.len(), 6);
        assert_eq!(
            parsed.signature,
            "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
    }

    fn polardb_query() -> Vec<(String, String)> {
        pairs(&[
            ("DBClusterId", "pc-bp1234567890abcde"),
            ("AccountName", "testacc"),
            ("NewAccountPassword", "Pw!@#$%^&*()_+-=1a"),
            ("PasswordType", "Tair"),
        ])
    }

    fn signature_of(authorization: &str) -> &str {
        authorization.rsplit_once("Signature=").unwrap().1
    }

    #[test]
    fn acs3_polardb_modify_account_password_vectors() {
        let query = polardb_query();
        let base = acs3_headers(
            "polardb.aliyuncs.com",
            "ModifyAccountPassword",
            "2017-08-01",
            "2024-05-01T08:00:00Z",
            "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        );
        let headers = acs3_headers_to_sign(&base);
        let request = Acs3Request {
            method: "POST",
            canonical_uri: "/",
            query: &query,
            signed_headers: &headers,
            payload_sha256: EMPTY_PAYLOAD_SHA256,
        };
        assert_eq!(
            acs3_string_to_sign(&acs3_canonical_request(&request)),
            "ACS3-HMAC-SHA256\n1f4afb18c47d32683974677885c0f02a7de587b9ab519d96bbbd4d5cd76f90b7"
        );
        assert_eq!(
            acs3_authorization(&request, "testid", "testsecret"),
            "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=fe7df2286910add7f072aebb101ef9e5027b0febf7917e33f4003f3ea01434e3"
        );

        // B1s: with a security token.
        let mut with_token = base.clone();
        with_token.push((
            "x-acs-security-token".into(),
            "CAIS-test-security-token".into(),
        ));
        let headers = acs3_headers_to_sign(&with_token);
        let request = Acs3Request {
            signed_headers: &headers,
            ..request
        };
        assert_eq!(
            signature_of(&acs3_authorization(&request, "testid", "testsecret")),
            "7840442e80820683ef74b260b07b4db2d94e432033e85d129cd62044dfa8072d"
        );

        // B1f: parameters as a form body instead of the query.
        let body = "AccountName=testacc&DBClusterId=pc-bp1234567890abcde&NewAccountPassword=Pw%21%40%23%24%25%5E%26%2A%28%29_%2B-%3D1a&PasswordType=Tair";
        let body_hash = sha256_hex(body.as_bytes());
        assert_eq!(
            body_hash,
            "4639b5f24cc75730cb6eed3c4a52b80227f0f39aa83675ad3d821a7c5126013d"
        );
        let mut form = acs3_headers(
            "polardb.aliyuncs.com",
            "ModifyAccountPassword",
            "2017-08-01",
            "2024-05-01T08:00:00Z",
            "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        );
        form.retain(|(name, _)| name != "x-acs-content-sha256");
        form.push(("x-acs-content-sha256".into(), body_hash.clone()));
        form.push((
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        let headers = acs3_headers_to_sign(&form);
        let request = Acs3Request {
            method: "POST",
            canonical_uri: "/",
            query: &[],
            signed_headers: &headers,
            payload_sha256: &body_hash,
        };
        assert_eq!(
            acs3_authorization(&request, "testid", "testsecret"),
            "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=content-type;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=b0075e9f942f0d947fb80d0d7a221c12eeefb5123a5bb98a1ad2ce3d2d0121c6"
        );
    }

    #[test]
    fn acs3_dts_modify_password_vector() {
        let query = pairs(&[
            ("DtsJobId", "l3m1213ye7l****"),
            ("Endpoint", "src"),
            ("UserName", "dtstest"),
            ("Password", "N3w P@ss*~/+=&!"),
            ("RegionId", "cn-hangzhou"),
        ]);
        let headers = acs3_headers_to_sign(&acs3_headers(
            "dts.aliyuncs.com",
            "ModifyDtsJobPassword",
            "2020-01-01",
            "2024-05-01T08:00:00Z",
            "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        ));
        let request = Acs3Request {
            method: "POST",
            canonical_uri: "/",
            query: &query,
            signed_headers: &headers,
            payload_sha256: EMPTY_PAYLOAD_SHA256,
        };
        let canonical = acs3_canonical_request(&request);
        assert!(canonical.contains(
            "\nDtsJobId=l3m1213ye7l%2A%2A%2A%2A&Endpoint=src&Password=N3w%20P%40ss%2A~%2F%2B%3D%26%21&RegionId=cn-hangzhou&UserName=dtstest\n"
        ));
        assert_eq!(
            acs3_string_to_sign(&canonical),
            "ACS3-HMAC-SHA256\nd3d70d8a41195286a05b8e9b518fc26372905cffbf893b591f226672ef644881"
        );
        assert_eq!(
            signature_of(&acs3_authorization(&request, "testid", "testsecret")),
            "25c9f4987a64fe416f48ba6b1b58c0a028391679405838170355a96e10fa7d0b"
        );
    }

    /// B3/B3s/B4: what the official product SDKs send, with their extra
    /// signed headers and a pinned user-agent.
    #[test]
    fn acs3_full_sdk_requests() {
        let sdk_headers = |host: &str, action: &str, version: &str| {
            let mut headers = acs3_headers(
                host,
                action,
                version,
                "2024-05-01T08:00:00Z",
                "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
            );
            headers.push(("accept".into(), "application/json".into()));
            headers.push((
                "user-agent".into(),
                "AlibabaCloud (oracle) Python/fixed".into(),
            ));
            headers.push(("x-acs-credentials-provider".into(), "static_ak".into()));
            headers
        };
        // The SDK signs accept and user-agent too: sign exactly what it lists.
        let sign_all = |headers: &[(String, String)], query: &[(String, String)]| {
            let mut signed: Vec<(String, String)> = headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            signed.sort();
            let request = Acs3Request {
                method: "POST",
                canonical_uri: "/",
                query,
                signed_headers: &signed,
                payload_sha256: EMPTY_PAYLOAD_SHA256,
            };
            acs3_authorization(&request, "testid", "testsecret")
        };

        let polardb = sdk_headers(
            "polardb.aliyuncs.com",
            "ModifyAccountPassword",
            "2017-08-01",
        );
        assert_eq!(
            sign_all(&polardb, &polardb_query()),
            "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=ae3f52b4a22ed21e7ae35139f94311a004d9545b2cf5b55399f505e6a9b9d362"
        );

        let mut sts = polardb.clone();
        sts.retain(|(n, _)| n != "x-acs-credentials-provider");
        sts.push(("x-acs-credentials-provider".into(), "static_sts".into()));
        sts.push(("x-acs-accesskey-id".into(), "testid".into()));
        sts.push((
            "x-acs-security-token".into(),
            "CAIS-test-security-token".into(),
        ));
        let mut query = polardb_query();
        query.retain(|(k, _)| k != "PasswordType");
        assert_eq!(
            signature_of(&sign_all(&sts, &query)),
            "5116c01c2c96eb139b306ccebcafe3f0ebf31fb0ca86a8efe86456557eb5ebe6"
        );

        let dts = sdk_headers("dts.aliyuncs.com", "ModifyDtsJobPassword", "2020-01-01");
        let dts_query = pairs(&[
            ("DtsJobId", "l3m1213ye7l****"),
            ("Endpoint", "src"),
            ("UserName", "dtstest"),
            ("Password", "N3w P@ss*~/+=&!"),
            ("RegionId", "cn-hangzhou"),
        ]);
        assert_eq!(
            signature_of(&sign_all(&dts, &dts_query)),
            "736cec1cd274c6e649f799b87071907647955d5d994f6833404fc06eb1a04a1f"
        );
    }

    #[test]
    fn acs3_headers_are_picked_trimmed_and_merged() {
        let headers = pairs(&[
            ("Host", " example.com "),
            ("User-Agent", "x"),
            ("X-Acs-Foo", "b"),
            ("x-acs-foo", "a"),
            ("Content-Type", "application/json"),
        ]);
        assert_eq!(
            acs3_headers_to_sign(&headers),
            pairs(&[
                ("content-type", "application/json"),
                ("host", "example.com"),
                ("x-acs-foo", "a,b")
            ])
        );
    }

    #[test]
    fn timestamps_round_trip() {
        let at = time::macros::datetime!(2024-05-01 08:00:00 UTC);
        assert_eq!(format_timestamp(at), "2024-05-01T08:00:00Z");
        assert_eq!(parse_timestamp("2024-05-01T08:00:00Z"), Some(at));
        assert_eq!(parse_timestamp("2024-05-01 08:00:00"), None);
    }

    #[test]
    fn malformed_authorization_headers_are_rejected() {
        assert!(parse_acs3_authorization("ACS3-HMAC-SHA256 Credential=a").is_none());
        assert!(
            parse_acs3_authorization("SDK-HMAC-SHA256 Credential=a,SignedHeaders=b,Signature=c")
                .is_none()
        );
        assert!(
            parse_acs3_authorization(
                "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=b,Signature=c,Extra=d"
            )
            .is_none()
        );
    }
}
