//! Translation between the wire messages and the framework's types: the
//! only place that knows both. Public so the fuzz targets can feed it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::proto::pb;
use crate::framework::{
    ClientInfo, ClientToken, Error, Existence, LeaseGrant, LeaseInfo, Operation, Request, Response,
    SECRET_TYPE_KEY, SpecialPaths,
};

/// Vault's `logical` error types, as `ProtoError.err_type` carries them.
mod err_type {
    pub const CODED: u32 = 3;
    pub const BAD_REQUEST: u32 = 4;
    pub const UNSUPPORTED_OPERATION: u32 = 5;
    pub const UNSUPPORTED_PATH: u32 = 6;
    pub const PERMISSION_DENIED: u32 = 8;
    pub const INTERNAL: u32 = 2;
    pub const USER: u32 = 1;
    pub const INVALID_REQUEST: u32 = 7;
}

/// The reply to a failed request. Bad input goes out the way Vault's own
/// plugins send it, as an error response plus "invalid request": the host
/// then answers 400 with exactly our message, not wrapped in a multi-error.
pub fn failure(err: &Error) -> (Option<pb::Response>, pb::ProtoError) {
    match err {
        Error::BadRequest(message) => {
            let mut data = Map::new();
            data.insert("error".into(), Value::from(message.as_str()));
            let response = pb::Response {
                data: json_text(data),
                ..Default::default()
            };
            let invalid = pb::ProtoError {
                err_type: err_type::INVALID_REQUEST,
                err_msg: message.clone(),
                err_code: 0,
            };
            (Some(response), invalid)
        }
        other => (None, error(other)),
    }
}

pub fn error(err: &Error) -> pb::ProtoError {
    let (err_type, err_code) = match err {
        Error::BadRequest(_) => (err_type::BAD_REQUEST, 0),
        Error::PermissionDenied => (err_type::PERMISSION_DENIED, 0),
        Error::UnsupportedPath => (err_type::UNSUPPORTED_PATH, 0),
        Error::UnsupportedOperation => (err_type::UNSUPPORTED_OPERATION, 0),
        Error::Coded { status, .. } => (err_type::CODED, i64::from(*status)),
        Error::Internal(_) => (err_type::INTERNAL, 0),
    };
    pb::ProtoError {
        err_type,
        err_msg: err.to_string(),
        err_code,
    }
}

/// An existence check that fails: the host replaces the message of every
/// error type but "user error" with `internal error`, so keep it readable.
pub fn existence_error(err: &Error) -> pb::ProtoError {
    pb::ProtoError {
        err_type: err_type::USER,
        err_msg: err.to_string(),
        err_code: 0,
    }
}

fn json_object(text: &str, what: &str) -> Result<Map<String, Value>, Error> {
    match text.trim() {
        "" | "null" => Ok(Map::new()),
        text => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(Value::Null) => Ok(Map::new()),
            Ok(_) => Err(Error::bad_request(format!("{what} must be a JSON object"))),
            // Valid JSON for the host can still be beyond what we read:
            // nesting deeper than serde_json's limit of 128 levels.
            Err(err) => Err(Error::bad_request(format!(
                "{what} cannot be read: {err}; send a JSON object whose values are strings, numbers, booleans or lists of them, nested at most 127 levels deep"
            ))),
        },
    }
}

fn nanos(value: i64) -> Duration {
    Duration::from_nanos(u64::try_from(value).unwrap_or(0))
}

fn to_nanos(value: Duration) -> i64 {
    i64::try_from(value.as_nanos()).unwrap_or(i64::MAX)
}

/// Go's zero `time.Time`, which the host sends for "not set".
const GO_ZERO_TIME: i64 = -62_135_596_800;

fn time(timestamp: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    let timestamp = timestamp.filter(|t| t.seconds > GO_ZERO_TIME)?;
    let seconds = u64::try_from(timestamp.seconds).ok()?;
    // Out-of-range parts mean "not set" rather than a panic: nanos past a
    // second would carry, and a far-future second overflows SystemTime.
    let nanos = u32::try_from(timestamp.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .unwrap_or(0);
    UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
}

fn timestamp(at: SystemTime) -> prost_types::Timestamp {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
    }
}

/// The framework request, or the error to answer with: operations this
/// engine never serves (`resolve-path`, `scan`, `header`...) are
/// "unsupported operation", which lets the host carry on.
pub fn request(request: pb::Request) -> Result<Request, Error> {
    let operation = Operation::parse(&request.operation).ok_or(Error::UnsupportedOperation)?;
    let data = json_object(&request.data, "the request data")?;
    let secret = request
        .secret
        .map(|secret| {
            let options = secret.lease_options.unwrap_or_default();
            Ok::<_, Error>(LeaseInfo {
                lease_id: secret.lease_id,
                internal_data: json_object(&secret.internal_data, "the lease's internal data")?,
                ttl: nanos(options.ttl),
                max_ttl: nanos(options.max_ttl),
                increment: nanos(options.increment),
                issue_time: time(options.issue_time.as_ref()),
                renewable: options.renewable,
            })
        })
        .transpose()?;
    Ok(Request {
        id: request.id,
        operation,
        path: request.path,
        data,
        secret,
        client: ClientInfo {
            display_name: request.display_name,
            entity_id: request.entity_id,
            token_accessor: request.client_token_accessor,
            mount_point: request.mount_point,
            remote_addr: request
                .connection
                .map(|c| c.remote_addr)
                .unwrap_or_default(),
            client_token: ClientToken::new(request.client_token),
        },
    })
}

fn json_text(map: Map<String, Value>) -> String {
    // Never an empty string: the host fails on it.
    serde_json::to_string(&Value::Object(map)).unwrap_or_else(|_| "{}".to_owned())
}

fn secret(grant: LeaseGrant, now: SystemTime) -> pb::Secret {
    let mut internal = grant.internal_data;
    internal.insert(SECRET_TYPE_KEY.into(), Value::from(grant.secret_type));
    pb::Secret {
        lease_options: Some(pb::LeaseOptions {
            ttl: to_nanos(grant.ttl),
            renewable: grant.renewable,
            increment: 0,
            // Required whenever lease options are present; the host
            // replaces it with its own.
            issue_time: Some(timestamp(now)),
            max_ttl: to_nanos(grant.max_ttl),
        }),
        internal_data: json_text(internal),
        lease_id: String::new(),
    }
}

/// The reply to `HandleRequest` for what the engine answered.
pub fn handle_request_reply(
    result: Result<Option<Response>, Error>,
    now: SystemTime,
) -> pb::HandleRequestReply {
    match result {
        Ok(response) => pb::HandleRequestReply {
            response: response.map(|r| self::response(r, now)),
            err: None,
        },
        Err(err) => {
            let (response, err) = failure(&err);
            pb::HandleRequestReply {
                response,
                err: Some(err),
            }
        }
    }
}

/// The reply to `HandleExistenceCheck` for what the engine answered.
pub fn existence_reply(result: Result<Existence, Error>) -> pb::HandleExistenceCheckReply {
    match result {
        Ok(Existence::NoCheck) => pb::HandleExistenceCheckReply::default(),
        Ok(Existence::Exists(exists)) => pb::HandleExistenceCheckReply {
            check_found: true,
            exists,
            err: None,
        },
        // Bad input and unknown paths: let the request itself go on,
        // so its handler answers with the right status and message.
        Err(Error::BadRequest(_) | Error::UnsupportedPath | Error::UnsupportedOperation) => {
            pb::HandleExistenceCheckReply::default()
        }
        Err(err) => pb::HandleExistenceCheckReply {
            err: Some(existence_error(&err)),
            ..Default::default()
        },
    }
}

pub fn response(response: Response, now: SystemTime) -> pb::Response {
    pb::Response {
        secret: response.secret.map(|grant| secret(grant, now)),
        data: json_text(response.data),
        warnings: response.warnings,
        ..Default::default()
    }
}

pub fn special_paths(paths: SpecialPaths) -> pb::Paths {
    pb::Paths {
        root: paths.root,
        unauthenticated: paths.unauthenticated,
        local_storage: paths.local_storage,
        seal_wrap_storage: paths.seal_wrap_storage,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn errors_carry_the_type_the_host_maps_to_each_status() {
        let cases = [
            (Error::bad_request("ttl: bad"), 4, 0, "ttl: bad"),
            (Error::PermissionDenied, 8, 0, "permission denied"),
            (Error::UnsupportedPath, 6, 0, "unsupported path"),
            (Error::UnsupportedOperation, 5, 0, "unsupported operation"),
            (Error::conflict("busy"), 3, 409, "busy"),
            (Error::internal("boom"), 2, 0, "boom"),
        ];
        for (err, kind, code, message) in cases {
            let proto = error(&err);
            assert_eq!((proto.err_type, proto.err_code), (kind, code), "{err:?}");
            assert_eq!(proto.err_msg, message);
        }
    }

    #[test]
    fn bad_input_becomes_an_error_response() {
        let (response, err) = failure(&Error::bad_request("ttl: must not be negative"));
        assert_eq!(err.err_type, 7);
        let data: Value = serde_json::from_str(&response.unwrap().data).unwrap();
        assert_eq!(data, json!({ "error": "ttl: must not be negative" }));
        let (response, err) = failure(&Error::PermissionDenied);
        assert!(response.is_none());
        assert_eq!(err.err_type, 8);
    }

    #[test]
    fn requests_decode_data_leases_and_refuse_unknown_operations() {
        let wire = pb::Request {
            id: "req-1".into(),
            operation: "revoke".into(),
            path: "creds/app".into(),
            data: "null".into(),
            client_token: "hmac-of-the-token".into(),
            secret: Some(pb::Secret {
                lease_options: Some(pb::LeaseOptions {
                    ttl: 90_000_000_000,
                    max_ttl: 3_600_000_000_000,
                    increment: 0,
                    renewable: true,
                    issue_time: Some(prost_types::Timestamp {
                        seconds: GO_ZERO_TIME,
                        nanos: 0,
                    }),
                }),
                internal_data: r#"{"secret_type":"creds","role":"app"}"#.into(),
                lease_id: "database/creds/app/abc".into(),
            }),
            ..Default::default()
        };
        let decoded = request(wire.clone()).unwrap();
        assert_eq!(decoded.operation, Operation::Revoke);
        assert!(decoded.data.is_empty());
        // The salted token is kept to identify a borrower, never shown.
        assert_eq!(decoded.client.client_token.expose(), "hmac-of-the-token");
        let shown = format!("{:?}", decoded.client);
        assert!(!shown.contains("hmac-of-the-token"), "{shown}");
        let lease = decoded.secret.unwrap();
        assert_eq!(lease.ttl, Duration::from_secs(90));
        assert_eq!(lease.max_ttl, Duration::from_secs(3600));
        assert_eq!(lease.issue_time, None, "Go's zero time means unset");
        assert_eq!(lease.internal_data["role"], "app");
        assert_eq!(lease.lease_id, "database/creds/app/abc");

        for op in ["resolve-path", "scan", "header", "alias-lookahead"] {
            let wire = pb::Request {
                operation: op.into(),
                ..wire.clone()
            };
            assert_eq!(
                request(wire).unwrap_err(),
                Error::UnsupportedOperation,
                "{op}"
            );
        }
        let not_an_object = pb::Request {
            operation: "update".into(),
            data: "[1,2]".into(),
            ..wire
        };
        assert!(matches!(request(not_an_object), Err(Error::BadRequest(_))));
    }

    #[test]
    fn lease_issue_times_out_of_range_are_unset_not_a_panic() {
        // Found by tests/fuzz_decoding.rs: `issue_time` with seconds near
        // i64::MAX and nanos past one second panicked with "overflow when
        // adding duration to instant".
        let at = |seconds, nanos| time(Some(&prost_types::Timestamp { seconds, nanos }));
        assert_eq!(at(i64::MAX, i32::MAX), at(i64::MAX, 0));
        assert!(at(i64::MAX - 1, 999_999_999).is_some());
        let second = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(at(1_700_000_000, i32::MAX), Some(second));
        assert_eq!(at(1_700_000_000, -1), Some(second));
        assert_eq!(at(1_700_000_000, 5), Some(second + Duration::from_nanos(5)));
    }

    #[test]
    fn data_nested_too_deep_is_bad_input_that_says_so() {
        // Found by tests/e2e_bad_input.rs: `{"max_ttl": [[[...]]]}` with 200
        // levels is valid JSON for the host but beyond serde_json's limit;
        // the answer said the data "must be a JSON object", which it was.
        let deep = format!(r#"{{"max_ttl":{}{}}}"#, "[".repeat(200), "]".repeat(200));
        let wire = pb::Request {
            operation: "update".into(),
            path: "roles/app".into(),
            data: deep,
            ..Default::default()
        };
        let Err(Error::BadRequest(message)) = request(wire) else {
            panic!("expected bad input");
        };
        assert!(
            message.contains("recursion limit") && message.contains("127 levels"),
            "{message}"
        );
    }

    #[test]
    fn responses_always_carry_json_and_leases_an_issue_time() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let empty = response(Response::default(), now);
        assert_eq!(empty.data, "{}");
        assert!(empty.secret.is_none());

        let leased = Response::with_data(json!({ "password": "p" })).with_lease(LeaseGrant {
            secret_type: "creds".into(),
            internal_data: json!({ "role": "app" }).as_object().unwrap().clone(),
            ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(120),
            renewable: true,
        });
        let wire = response(leased, now);
        let secret = wire.secret.unwrap();
        let options = secret.lease_options.unwrap();
        assert_eq!(options.ttl, 60_000_000_000);
        assert_eq!(options.max_ttl, 120_000_000_000);
        assert_eq!(options.issue_time.unwrap().seconds, 1_800_000_000);
        let internal: Value = serde_json::from_str(&secret.internal_data).unwrap();
        assert_eq!(internal, json!({ "role": "app", "secret_type": "creds" }));
    }
}
