//! Request authentication as the clouds' gateways do it, verified with the
//! very signing functions the clients use (`crate::providers::*::sign`).
//!
//! Alibaba: ACS3-HMAC-SHA256 (`Authorization` header) or RPC V2 HMAC-SHA1
//! (`Signature` parameter); a key seeded with a security token needs it;
//! clock skew over 15 minutes and reused nonces are refused.
//! Huawei: SDK-HMAC-SHA256 with `X-Sdk-Date`; 5 consecutive failures for one
//! AK lock it for 5 minutes.

use std::collections::{HashMap, HashSet, VecDeque};

use time::{Duration, OffsetDateTime};

use super::codes::{self, Code};
use super::http::{Request, param};
use super::model::{World, parse_ali_expiration, parse_hw_expires_at};
use crate::providers::alicloud::sign::{
    ACS3_ALGORITHM, Acs3Request, acs3_canonical_request, acs3_signature, acs3_string_to_sign,
    parse_acs3_authorization, parse_timestamp, v2_signature, v2_string_to_sign,
};
use crate::providers::encoding::percent_decode;
use crate::providers::hash::sha256_hex;
use crate::providers::huaweicloud::sign as hw;

/// Both clouds refuse requests signed more than 15 minutes from their clock.
pub const MAX_SKEW: Duration = Duration::minutes(15);
/// Nonces are remembered longer than the skew window on both sides of now,
/// so a replay inside the window is always caught.
pub const NONCE_MEMORY: Duration = Duration::minutes(31);
pub const HW_LOCK_AFTER: u32 = 5;
pub const HW_LOCK_FOR: Duration = Duration::minutes(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    pub status: u16,
    pub code: Code,
    pub message: String,
    /// Refused because the AK was locked (Huawei), not for this request.
    pub locked: bool,
}

fn ali_error(status: u16, code: Code, message: impl Into<String>) -> AuthError {
    AuthError {
        status,
        code,
        message: message.into(),
        locked: false,
    }
}

fn incomplete(detail: &str) -> AuthError {
    ali_error(
        400,
        codes::INCOMPLETE_SIGNATURE,
        format!("The request signature does not conform to Aliyun standards. {detail}"),
    )
}

/// Equality that does not stop at the first differing byte.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Recently used `(access key, nonce)` pairs.
#[derive(Debug, Default)]
pub struct NonceCache {
    seen: HashSet<String>,
    order: VecDeque<(OffsetDateTime, String)>,
}

impl NonceCache {
    /// Records the nonce; false when it was already used.
    pub fn check_and_record(&mut self, access_key: &str, nonce: &str, now: OffsetDateTime) -> bool {
        while let Some((expires, _)) = self.order.front() {
            if *expires > now {
                break;
            }
            let (_, key) = self.order.pop_front().expect("front exists");
            self.seen.remove(&key);
        }
        let key = format!("{access_key}\n{nonce}");
        if self.seen.contains(&key) {
            return false;
        }
        self.seen.insert(key.clone());
        self.order.push_back((now + NONCE_MEMORY, key));
        true
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliCaller {
    pub access_key_id: String,
    pub user: String,
}

/// Verifies an Alibaba RPC request. `params` are the query parameters plus
/// any form-body parameters (V2 signs both; ACS3 covers the body by hash).
pub fn verify_alicloud(
    world: &World,
    nonces: &mut NonceCache,
    now: OffsetDateTime,
    request: &Request,
    query: &[(String, String)],
    params: &[(String, String)],
) -> Result<AliCaller, AuthError> {
    match request.header("authorization") {
        Some(header) if header.starts_with(ACS3_ALGORITHM) => {
            verify_acs3(world, nonces, now, request, query, header)
        }
        Some(_) => Err(incomplete(
            "The Authorization header uses an unknown algorithm.",
        )),
        None if param(params, "Signature").is_some() => {
            verify_v2(world, nonces, now, request, params)
        }
        None => Err(ali_error(
            400,
            codes::MISSING_ACCESS_KEY_ID,
            "AccessKeyId is mandatory for this action.",
        )),
    }
}

/// Checks the key's state and its security token.
fn check_ali_key(
    world: &World,
    access_key_id: &str,
    token: Option<&str>,
    now: OffsetDateTime,
) -> Result<AliCaller, AuthError> {
    let Some((user, key)) = world.ali_key(access_key_id) else {
        return Err(ali_error(
            404,
            codes::INVALID_ACCESS_KEY_ID_NOT_FOUND,
            "Specified access key is not found.",
        ));
    };
    if key.status != "Active" {
        return Err(ali_error(
            400,
            codes::INVALID_ACCESS_KEY_ID_INACTIVE,
            "Specified access key is disabled.",
        ));
    }
    match (&key.security_token, token) {
        (None, None) => {}
        (Some(expected), Some(given)) if same_secret(expected, given) => {}
        (Some(_), None) => {
            return Err(ali_error(
                400,
                codes::INVALID_SECURITY_TOKEN_MALFORMED,
                "The security token is missing: temporary credentials must send it.",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(ali_error(
                400,
                codes::INVALID_SECURITY_TOKEN_MALFORMED,
                "The security token you provided is invalid.",
            ));
        }
        (None, Some(_)) => {
            return Err(ali_error(
                400,
                codes::INVALID_SECURITY_TOKEN_MALFORMED,
                "The security token you provided does not belong to the access key.",
            ));
        }
    }
    if let Some(expiration) = key.expiration.as_deref().and_then(parse_ali_expiration)
        && expiration <= now
    {
        return Err(ali_error(
            400,
            codes::INVALID_SECURITY_TOKEN_EXPIRED,
            "Specified SecurityToken is expired.",
        ));
    }
    Ok(AliCaller {
        access_key_id: access_key_id.to_owned(),
        user: user.name.clone(),
    })
}

fn check_ali_time(text: &str, now: OffsetDateTime) -> Result<(), AuthError> {
    let Some(at) = parse_timestamp(text) else {
        return Err(ali_error(
            400,
            codes::INVALID_TIMESTAMP_FORMAT,
            "Specified time stamp or date value is not well formatted.",
        ));
    };
    if (now - at).abs() > MAX_SKEW {
        return Err(ali_error(
            400,
            codes::INVALID_TIMESTAMP_EXPIRED,
            format!(
                "Specified time stamp or date value is expired. The server time is {}.",
                crate::providers::alicloud::sign::format_timestamp(now)
            ),
        ));
    }
    Ok(())
}

fn mismatch(string_to_sign: &str) -> AuthError {
    ali_error(
        400,
        codes::SIGNATURE_DOES_NOT_MATCH,
        format!(
            "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
        ),
    )
}

fn check_nonce(
    nonces: &mut NonceCache,
    access_key_id: &str,
    nonce: &str,
    now: OffsetDateTime,
) -> Result<(), AuthError> {
    if nonces.check_and_record(access_key_id, nonce, now) {
        Ok(())
    } else {
        Err(ali_error(
            400,
            codes::SIGNATURE_NONCE_USED,
            "Specified signature nonce was used already.",
        ))
    }
}

fn verify_acs3(
    world: &World,
    nonces: &mut NonceCache,
    now: OffsetDateTime,
    request: &Request,
    query: &[(String, String)],
    header: &str,
) -> Result<AliCaller, AuthError> {
    let auth = parse_acs3_authorization(header)
        .ok_or_else(|| incomplete("The Authorization header is malformed."))?;
    let required = |name: &str| {
        request
            .header(name)
            .ok_or_else(|| incomplete(&format!("The header {name} is required.")))
    };
    let date = required("x-acs-date")?;
    let nonce = required("x-acs-signature-nonce")?;
    let content_sha256 = required("x-acs-content-sha256")?;
    let signed: HashSet<&str> = auth.signed_headers.iter().map(String::as_str).collect();
    if !signed.contains("host") {
        return Err(incomplete("The header host must be signed."));
    }
    if let Some((name, _)) = request
        .headers
        .iter()
        .find(|(name, _)| name.starts_with("x-acs-") && !signed.contains(name.as_str()))
    {
        return Err(incomplete(&format!(
            "The header {name} is sent but not signed."
        )));
    }
    let caller = check_ali_key(
        world,
        &auth.access_key_id,
        request.header("x-acs-security-token"),
        now,
    )?;
    check_ali_time(date, now)?;
    if content_sha256 != sha256_hex(&request.body) {
        return Err(ali_error(
            400,
            codes::SIGNATURE_DOES_NOT_MATCH,
            "The x-acs-content-sha256 header does not match the request body.",
        ));
    }
    let mut signed_headers = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let mut values: Vec<&str> = request.header_values(name).map(str::trim).collect();
        if values.is_empty() {
            return Err(incomplete(&format!("The signed header {name} is missing.")));
        }
        values.sort_unstable();
        signed_headers.push((name.clone(), values.join(",")));
    }
    let canonical = acs3_canonical_request(&Acs3Request {
        method: &request.method,
        canonical_uri: &request.path,
        query,
        signed_headers: &signed_headers,
        payload_sha256: content_sha256,
    });
    let string_to_sign = acs3_string_to_sign(&canonical);
    let (_, key) = world.ali_key(&auth.access_key_id).expect("checked above");
    if !same_secret(
        &acs3_signature(&key.secret, &string_to_sign),
        &auth.signature,
    ) {
        return Err(mismatch(&string_to_sign));
    }
    check_nonce(nonces, &caller.access_key_id, nonce, now)?;
    Ok(caller)
}

fn verify_v2(
    world: &World,
    nonces: &mut NonceCache,
    now: OffsetDateTime,
    request: &Request,
    params: &[(String, String)],
) -> Result<AliCaller, AuthError> {
    let missing = |name: &'static str, code: Code| {
        param(params, name)
            .ok_or_else(|| ali_error(400, code, format!("{name} is mandatory for this action.")))
    };
    let signature = missing("Signature", codes::INCOMPLETE_SIGNATURE)?;
    let access_key_id = missing("AccessKeyId", codes::MISSING_ACCESS_KEY_ID)?;
    let timestamp = missing("Timestamp", codes::MISSING_TIMESTAMP)?;
    let nonce = missing("SignatureNonce", codes::MISSING_SIGNATURE_NONCE)?;
    if param(params, "SignatureMethod") != Some("HMAC-SHA1") {
        return Err(incomplete("SignatureMethod must be HMAC-SHA1."));
    }
    if param(params, "SignatureVersion") != Some("1.0") {
        return Err(incomplete("SignatureVersion must be 1.0."));
    }
    let caller = check_ali_key(world, access_key_id, param(params, "SecurityToken"), now)?;
    check_ali_time(timestamp, now)?;
    let signed: Vec<(String, String)> = params
        .iter()
        .filter(|(name, _)| name != "Signature")
        .cloned()
        .collect();
    let string_to_sign = v2_string_to_sign(&request.method, &signed);
    let (_, key) = world.ali_key(access_key_id).expect("checked above");
    if !same_secret(&v2_signature(&key.secret, &string_to_sign), signature) {
        return Err(mismatch(&string_to_sign));
    }
    check_nonce(nonces, access_key_id, nonce, now)?;
    Ok(caller)
}

/// Consecutive failures and lock deadline per Huawei AK.
#[derive(Debug, Default)]
pub struct HwLocks {
    by_key: HashMap<String, (u32, Option<OffsetDateTime>)>,
}

impl HwLocks {
    fn locked_until(&mut self, access: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let entry = self.by_key.get_mut(access)?;
        match entry.1 {
            Some(until) if until > now => Some(until),
            Some(_) => {
                *entry = (0, None);
                None
            }
            None => None,
        }
    }

    fn fail(&mut self, access: &str, now: OffsetDateTime) {
        let entry = self.by_key.entry(access.to_owned()).or_default();
        entry.0 += 1;
        if entry.0 >= HW_LOCK_AFTER {
            *entry = (0, Some(now + HW_LOCK_FOR));
        }
    }

    fn succeed(&mut self, access: &str) {
        self.by_key.remove(access);
    }
}

fn hw_error(detail: impl std::fmt::Display) -> AuthError {
    AuthError {
        status: 401,
        code: codes::APIGW_AUTH,
        message: format!("Incorrect IAM authentication information: {detail}"),
        locked: false,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HwCaller {
    pub access: String,
    pub user_id: String,
}

pub fn verify_huawei(
    world: &World,
    locks: &mut HwLocks,
    now: OffsetDateTime,
    request: &Request,
) -> Result<HwCaller, AuthError> {
    let Some(header) = request.header("authorization") else {
        return Err(hw_error(if request.header("x-auth-token").is_some() {
            "decrypt token fail"
        } else {
            "x-auth-token not found"
        }));
    };
    let auth = hw::parse_authorization(header)
        .ok_or_else(|| hw_error("unsupported authorization method"))?;
    if let Some(until) = locks.locked_until(&auth.access_key, now) {
        let mut error = hw_error(format!(
            "the access key is locked after {HW_LOCK_AFTER} consecutive authentication failures; try again in {} seconds",
            (until - now).whole_seconds().max(1)
        ));
        error.locked = true;
        return Err(error);
    }
    match verify_huawei_signature(world, now, request, &auth) {
        Ok(caller) => {
            locks.succeed(&auth.access_key);
            Ok(caller)
        }
        Err(detail) => {
            locks.fail(&auth.access_key, now);
            Err(hw_error(detail))
        }
    }
}

fn verify_huawei_signature(
    world: &World,
    now: OffsetDateTime,
    request: &Request,
    auth: &hw::ParsedAuthorization,
) -> Result<HwCaller, &'static str> {
    let (user, key) = world
        .hw_key(&auth.access_key)
        .ok_or("access key not found")?;
    if key.status != "active" {
        return Err("access key is inactive");
    }
    let date = request.header("x-sdk-date").ok_or("x-sdk-date not found")?;
    if !auth.signed_headers.iter().any(|name| name == "x-sdk-date") {
        return Err("x-sdk-date is not signed");
    }
    let at = hw::parse_sdk_date(date).ok_or("x-sdk-date is malformed")?;
    if (now - at).abs() > MAX_SKEW {
        return Err("signature expired");
    }
    match (&key.security_token, request.header("x-security-token")) {
        (None, None) => {}
        (Some(expected), Some(given)) if same_secret(expected, given) => {}
        (Some(_), None) => return Err("security token not found"),
        _ => return Err("invalid security token"),
    }
    if let Some(expires) = key.expires_at.as_deref().and_then(parse_hw_expires_at)
        && expires <= now
    {
        return Err("token expires");
    }
    let mut signed_headers = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let value = request.header(name).ok_or("a signed header is missing")?;
        signed_headers.push((name.clone(), value.trim().to_owned()));
    }
    let payload = match request.header("x-sdk-content-sha256") {
        Some("UNSIGNED-PAYLOAD") => "UNSIGNED-PAYLOAD".to_owned(),
        _ => sha256_hex(&request.body),
    };
    let path = percent_decode(&request.path);
    let query = request.query_params();
    let canonical = hw::canonical_request(&hw::SignRequest {
        method: &request.method,
        path: &path,
        query: &query,
        signed_headers: &signed_headers,
        payload_sha256: &payload,
    });
    let expected = hw::signature(&key.secret, &hw::string_to_sign(date, &canonical));
    if !same_secret(&expected, &auth.signature) {
        return Err("verify aksk signature fail");
    }
    Ok(HwCaller {
        access: key.access.clone(),
        user_id: user.id.clone(),
    })
}
