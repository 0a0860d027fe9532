//! Fuzz targets, bounded in time, on the stable toolchain (proptest with a
//! fixed seed rather than cargo-fuzz):
//!
//! (a) arbitrary bytes decoded as `pb::HandleRequestArgs` and
//!     `pb::HandleExistenceCheckArgs` (random, and mutations of real
//!     encodings) and, when they decode, converted and dispatched to an
//!     in-process engine: never a panic;
//! (b) well-formed `pb::Request`s with random operation, path, JSON data
//!     and lease: never a panic, every error typed with a message;
//! (c) provider answers with random status, headers and bodies (shaped like
//!     each cloud's error and success bodies, and garbage) through the
//!     clients' classification: never a panic, always a body or a typed
//!     error with a class, and no secret of the request in the error.
//!
//! `FUZZ_CASES` sets the number of cases of every target (defaults below,
//! about a minute in all on two cores); `FUZZ_SEED` (a number) changes the
//! fixed seed.

#[path = "support/emulator.rs"]
mod emulator;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use cloudrotate::engine::{self, SystemClock};
use cloudrotate::framework::{
    Backend, BackendConfig, Error, Existence, MemoryStorage, Operation, Request, Response,
    StaticSystemView,
};
use cloudrotate::plugin::convert;
use cloudrotate::plugin::proto::pb;
use cloudrotate::providers::alicloud::{self, AlibabaService};
use cloudrotate::providers::http::IncomingResponse;
use cloudrotate::providers::huaweicloud::dcs;
use cloudrotate::providers::huaweicloud::drs::{self, DrsEndpointType, DrsPasswordChange};
use cloudrotate::providers::huaweicloud::{self, HuaweiService};
use cloudrotate::providers::{CallInfo, ErrorClass, ProviderError, Secret};
use emulator::{Emulator, fixture};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use prost::Message;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

const DEFAULT_BYTES_CASES: u32 = 100_000;
const DEFAULT_REQUEST_CASES: u32 = 100_000;
const DEFAULT_PROVIDER_CASES: u32 = 200_000;
/// Longest any single dispatch may take before it counts as a hang.
const DISPATCH_DEADLINE: Duration = Duration::from_secs(30);

fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runner(cases: u32, salt: u64) -> TestRunner {
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6675_7a7a_5f64_6563); // "fuzz_dec"
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(seed ^ salt).rotate_left(i as u32 * 16).to_le_bytes());
    }
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 500,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

fn report(target: &str, cases: u32, started: Instant, extra: &str) {
    println!(
        "fuzz {target}: {cases} cases in {:.1}s{extra}",
        started.elapsed().as_secs_f64()
    );
}

// ------------------------------------------------------------ the engine

/// One mount of the engine in process, set up against an emulator with
/// connections and roles, driven like the plugin service drives it: each
/// call in its own task, so a panic shows as a failed join.
struct Mount {
    runtime: tokio::runtime::Runtime,
    backend: Arc<dyn Backend>,
    _emulator: Emulator,
}

impl Mount {
    fn new() -> Self {
        let emulator = Emulator::start();
        emulator.seed(fixture::seed());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let options = [
            ("retry_base", "20ms"),
            ("retry_cap", "100ms"),
            ("jitter", "0s"),
        ];
        let config = BackendConfig {
            config: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            backend_uuid: "fuzz".into(),
            storage: Arc::new(MemoryStorage::new()),
            system: Arc::new(StaticSystemView::default()),
        };
        let backend: Arc<dyn Backend> = Arc::new(engine::backend(
            config,
            Arc::new(SystemClock),
            Arc::new(engine::ProviderCloud),
        ));
        runtime.block_on(backend.initialize()).unwrap();
        let mount = Self {
            runtime,
            backend,
            _emulator: emulator,
        };
        mount.set_up(&mount._emulator.url);
        mount
    }

    fn set_up(&self, url: &str) {
        let writes = [
            (
                "config/ali",
                json!({"provider": "alicloud", "region": "cn-hangzhou", "access_key": fixture::ALI_AK,
                    "secret_key": fixture::ALI_SK, "endpoint": url, "allowed_roles": "*",
                    "iam_user": fixture::ALI_USER, "request_timeout": "2s", "max_retries": 0}),
            ),
            (
                "config/hw",
                json!({"provider": "huaweicloud", "region": "cn-north-4", "access_key": fixture::HW_AK,
                    "secret_key": fixture::HW_SK, "project_id": fixture::PROJECT, "endpoint": url,
                    "allowed_roles": "*", "iam_user": fixture::HW_USER, "request_timeout": "2s", "max_retries": 0}),
            ),
            (
                "static-roles/pol",
                json!({"target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                    "username": "app", "dependents": ["dts:ali/dtsjob1/src"], "rotation_period": "24h"}),
            ),
            (
                "static-roles/dcs",
                json!({"target": "dcs-instance", "connection": "hw", "instance_id": "dcs-1",
                    "dependents": "drs:hw/drsjob1/so"}),
            ),
            // A dynamic role on a cluster the emulator does not have: a
            // creds read fails at its first call, fast (the in-process and
            // end-to-end suites run the whole creation).
            (
                "library/lease",
                json!({"target": "polardb-account", "connection": "ali", "cluster_id": "pc-1",
                    "service_account_names": "report", "ttl": "1h"}),
            ),
        ];
        for (path, data) in writes {
            let request = Request::new(Operation::Create, path).with_data(data);
            let result = self.dispatch(request.clone(), false).unwrap();
            assert!(result.is_ok(), "set up {path}: {result:?}");
        }
    }

    /// Runs one request (or its existence check) in a task, as the service
    /// does; `Err` when the task panicked or hung.
    fn dispatch(
        &self,
        request: Request,
        existence: bool,
    ) -> Result<Result<Dispatched, Error>, String> {
        let backend = self.backend.clone();
        self.runtime.block_on(async move {
            let task = tokio::spawn(async move {
                if existence {
                    backend
                        .existence_check(&request)
                        .await
                        .map(Dispatched::Existence)
                } else {
                    backend
                        .handle_request(request)
                        .await
                        .map(Dispatched::Response)
                }
            });
            match tokio::time::timeout(DISPATCH_DEADLINE, task).await {
                Ok(Ok(result)) => Ok(result),
                Ok(Err(join)) if join.is_panic() => Err(format!("the handler panicked: {join}")),
                Ok(Err(join)) => Err(format!("the handler task failed: {join}")),
                Err(_) => Err(format!("no answer within {DISPATCH_DEADLINE:?}")),
            }
        })
    }
}

#[derive(Debug)]
enum Dispatched {
    Response(Option<Response>),
    Existence(Existence),
}

/// What the service would send back, encoded as it would be: must not
/// panic either.
fn reply_bytes(result: &Result<Dispatched, Error>) -> usize {
    match result {
        Ok(Dispatched::Existence(existence)) => convert::existence_reply(Ok(*existence))
            .encode_to_vec()
            .len(),
        Ok(Dispatched::Response(response)) => {
            convert::handle_request_reply(Ok(response.clone()), SystemTime::now())
                .encode_to_vec()
                .len()
        }
        Err(err) => {
            let request =
                convert::handle_request_reply(Err(err.clone()), SystemTime::now()).encode_to_vec();
            let existence = convert::existence_reply(Err(err.clone())).encode_to_vec();
            request.len() + existence.len()
        }
    }
}

/// An error must say what it is: a non-empty message, a status that is an
/// error status.
fn typed(err: &Error) -> Result<&'static str, String> {
    let kind = match err {
        Error::BadRequest(message) if message.trim().is_empty() => {
            return Err("bad request without a message".into());
        }
        Error::BadRequest(_) => "bad_request",
        Error::PermissionDenied => "permission_denied",
        Error::UnsupportedPath => "unsupported_path",
        Error::UnsupportedOperation => "unsupported_operation",
        Error::Coded { status, message } if !(400..=599).contains(status) || message.is_empty() => {
            return Err(format!("coded error {status} {message:?}"));
        }
        Error::Coded { status, .. } if *status < 500 => "coded_4xx",
        Error::Coded { .. } => "coded_5xx",
        Error::Internal(message) if message.is_empty() => {
            return Err("internal error without a message".into());
        }
        Error::Internal(_) => "internal",
    };
    Ok(kind)
}

// ------------------------------------------------------- wire requests

const OPERATIONS: &[&str] = &[
    "create", "update", "read", "delete", "list", "help", "rollback", "renew", "revoke",
];
const OTHER_OPERATIONS: &[&str] = &[
    "patch",
    "resolve-path",
    "scan",
    "header",
    "alias-lookahead",
    "",
    "CREATE",
    "x",
];

const NAMES: &[&str] = &[
    "pol", "dcs", "lease", "ali", "hw", "new", "missing", "", "-a", "a b", "é", "a/b", "..", ".",
    "a\u{0}b", "x",
];

/// A path and data for it: mostly one of the engine's patterns with data
/// drawn from that path's own field names, sometimes anything.
fn path_and_data() -> BoxedStrategy<(String, String)> {
    let mut per_path: Vec<(u32, BoxedStrategy<(String, String)>)> = engine::paths()
        .iter()
        .map(|path| {
            let pattern = path.pattern.to_owned();
            let mut names: Vec<String> = path.fields.iter().map(|f| f.name.to_owned()).collect();
            names.extend(["unknown", "name"].map(String::from));
            let data = prop_oneof![
                4 => proptest::collection::btree_map(select(names), json_value(), 0..7)
                    .prop_map(|m| Value::Object(m.into_iter().collect()).to_string()),
                1 => data(),
            ];
            let strategy = (select(NAMES), data)
                .prop_map(move |(name, data)| (pattern.replace("{name}", name), data))
                .boxed();
            (4, strategy)
        })
        .collect();
    per_path.push((3, ("\\PC{0,30}", data()).boxed()));
    let odd = vec![
        "",
        "/",
        "config",
        "config/a/b",
        "//",
        "config//",
        "static-roles/a/",
        "library/manage/lease",
        "library/lease/check-out/x",
    ];
    per_path.push((2, (select(odd).prop_map(String::from), data()).boxed()));
    proptest::strategy::Union::new_weighted(per_path).boxed()
}

fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,20}".prop_map(Value::from),
        select(vec![
            "24h",
            "-1s",
            "99999999999h",
            "1e400",
            "0 3 * * *",
            "61 * * * *",
            "0 0 31 2 *",
            "dts:ali/dtsjob1/src",
            "drs:hw/x/so",
            "dts:ali//src",
            "alicloud",
            "huaweicloud",
            "polardb-account",
            "dcs-instance",
            "external",
            "pc-1",
            "dcs-1",
            "app",
            "ali",
            "hw",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            proptest::collection::btree_map("\\PC{0,8}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Request data: an object of the schema's field names (and some others)
/// with random values, or text that is not such an object.
fn data() -> BoxedStrategy<String> {
    let mut names: Vec<String> = engine::paths()
        .iter()
        .flat_map(|p| p.fields.iter().map(|f| f.name.to_owned()))
        .collect();
    names.sort();
    names.dedup();
    names.extend(["requestResponsePrefix", "unknown", ""].map(String::from));
    prop_oneof![
        6 => proptest::collection::btree_map(select(names), json_value(), 0..6)
            .prop_map(|m| Value::Object(m.into_iter().collect()).to_string()),
        1 => json_value().prop_map(|v| v.to_string()),
        1 => select(vec![
            "", "null", "{", "[1,2]", "\"x\"", "1e400", "{\"a\":1e400}", "{\"a\":1}x", "\u{feff}{}",
        ])
        .prop_map(String::from),
        1 => (1usize..300).prop_map(|d| format!("{{\"a\":{}{}}}", "[".repeat(d), "]".repeat(d))),
    ]
    .boxed()
}

fn timestamp() -> BoxedStrategy<Option<prost_types::Timestamp>> {
    proptest::option::of(
        (
            prop_oneof![
                Just(i64::MAX),
                Just(i64::MIN),
                Just(-62_135_596_800i64),
                Just(-62_135_596_799i64),
                Just(253_402_300_799i64),
                Just(0i64),
                any::<i64>(),
                0i64..4_000_000_000,
            ],
            prop_oneof![
                Just(0i32),
                Just(999_999_999i32),
                Just(i32::MAX),
                Just(-1i32),
                any::<i32>()
            ],
        )
            .prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
    )
    .boxed()
}

fn secret() -> BoxedStrategy<Option<pb::Secret>> {
    let internal = prop_oneof![
        Just(r#"{"secret_type":"checkout-creds","set_name":"lease","service_account_name":"report","checkout_id":"0011223344556677"}"#.to_owned()),
        Just(r#"{"secret_type":"checkout-creds","set_name":"pol","service_account_name":"app","checkout_id":"x"}"#.to_owned()),
        Just(r#"{"secret_type":"checkout-creds","set_name":"lease","service_account_name":7}"#.to_owned()),
        Just(r#"{"secret_type":"checkout-creds"}"#.to_owned()),
        Just(r#"{"secret_type":"creds"}"#.to_owned()),
        Just(r#"{"secret_type":"other"}"#.to_owned()),
        Just(r#"{"secret_type":7}"#.to_owned()),
        data(),
    ];
    let duration = prop_oneof![
        Just(0i64),
        Just(-1i64),
        Just(i64::MAX),
        Just(i64::MIN),
        any::<i64>()
    ];
    proptest::option::weighted(
        0.3,
        (
            internal,
            proptest::option::of((
                duration.clone(),
                duration.clone(),
                duration,
                any::<bool>(),
                timestamp(),
            )),
            "\\PC{0,20}",
        )
            .prop_map(|(internal_data, options, lease_id)| pb::Secret {
                lease_options: options.map(|(ttl, max_ttl, increment, renewable, issue_time)| {
                    pb::LeaseOptions {
                        ttl,
                        renewable,
                        increment,
                        issue_time,
                        max_ttl,
                    }
                }),
                internal_data,
                lease_id,
            }),
    )
    .boxed()
}

fn wire_request() -> BoxedStrategy<pb::Request> {
    (
        prop_oneof![5 => select(OPERATIONS), 1 => select(OTHER_OPERATIONS)],
        path_and_data(),
        secret(),
        ("\\PC{0,12}", "\\PC{0,12}", "\\PC{0,12}", "\\PC{0,12}"),
        proptest::option::of("\\PC{0,20}"),
    )
        .prop_map(
            |(
                operation,
                (path, data),
                secret,
                (id, display_name, entity_id, mount_point),
                remote,
            )| {
                pb::Request {
                    id,
                    operation: operation.to_owned(),
                    path,
                    data,
                    secret,
                    display_name,
                    entity_id,
                    mount_point,
                    connection: remote.map(|remote_addr| pb::Connection {
                        remote_addr,
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            },
        )
        .boxed()
}

/// Counts of what the dispatched requests answered.
#[derive(Default)]
struct Tally {
    outcomes: BTreeMap<&'static str, u64>,
}

impl Tally {
    fn add(&mut self, what: &'static str) {
        *self.outcomes.entry(what).or_default() += 1;
    }
}

/// Dispatches a converted request and its existence check; what is wrong,
/// if anything.
fn exercise(mount: &Mount, request: Request, tally: &Mutex<Tally>) -> Result<(), String> {
    let operation = request.operation;
    let lease_operation = matches!(operation, Operation::Renew | Operation::Revoke);
    for existence in [true, false] {
        if existence && !matches!(operation, Operation::Create | Operation::Update) {
            continue;
        }
        let result = mount.dispatch(request.clone(), existence)?;
        reply_bytes(&result);
        let what = match &result {
            Ok(Dispatched::Response(Some(_))) => "ok: a response",
            Ok(Dispatched::Response(None)) => "ok: no response",
            Ok(Dispatched::Existence(_)) => "ok: existence checked",
            Err(err) => typed(err)?,
        };
        // Storage is in memory and cannot fail: an internal error is a bug,
        // except for a lease whose internal data the engine never issued
        // (the host only hands back what the engine gave it).
        if let Err(Error::Internal(message)) = &result
            && !(lease_operation && message.starts_with("lease has unknown secret type"))
        {
            return Err(format!("internal error for {operation:?}: {message}"));
        }
        tally.lock().unwrap().add(what);
    }
    Ok(())
}

#[test]
fn wire_requests_of_any_shape_never_panic_and_errors_are_typed() {
    let mount = Mount::new();
    let cases = cases(DEFAULT_REQUEST_CASES);
    let tally = Mutex::new(Tally::default());
    let started = Instant::now();
    let result = runner(cases, 0xb).run(&wire_request(), |wire| {
        let converted =
            std::panic::catch_unwind(AssertUnwindSafe(|| convert::request(wire.clone())))
                .map_err(|_| TestCaseError::fail(format!("conversion panicked on {wire:?}")))?;
        match converted {
            Ok(request) => exercise(&mount, request, &tally)
                .map_err(|problem| TestCaseError::fail(format!("{problem}\n  for {wire:?}")))?,
            Err(err) => {
                let what = typed(&err).map_err(TestCaseError::fail)?;
                reply_bytes(&Err(err));
                tally.lock().unwrap().add(match what {
                    "bad_request" => "refused by conversion (bad request)",
                    "unsupported_operation" => "refused by conversion (unsupported operation)",
                    _ => "refused by conversion (other)",
                });
            }
        }
        Ok(())
    });
    report(
        "wire requests",
        cases,
        started,
        &format!(", outcomes {:?}", tally.lock().unwrap().outcomes),
    );
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

// ---------------------------------------------------------------- bytes

/// Real encodings of `HandleRequestArgs` / `HandleExistenceCheckArgs`
/// (the same message layout), then damaged: bytes flipped, cut, inserted.
fn damaged_encoding() -> BoxedStrategy<Vec<u8>> {
    let edits =
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 0..5);
    (wire_request(), any::<u32>(), edits)
        .prop_map(|(request, storage_id, edits)| {
            let mut bytes = pb::HandleRequestArgs {
                storage_id,
                request: Some(request),
            }
            .encode_to_vec();
            for (at, byte, edit) in edits {
                if bytes.is_empty() {
                    bytes.push(byte);
                    continue;
                }
                let i = at.index(bytes.len());
                match edit {
                    0 => bytes[i] ^= byte | 1,
                    1 => bytes.truncate(i),
                    2 => bytes.insert(i, byte),
                    _ => {
                        let piece = bytes[i..].to_vec();
                        bytes.extend_from_slice(&piece);
                    }
                }
            }
            bytes
        })
        .boxed()
}

fn arbitrary_bytes() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        2 => proptest::collection::vec(any::<u8>(), 0..300),
        // A field-2 (request) header with a random length, then noise.
        1 => (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..200))
            .prop_map(|(len, mut rest)| { rest.insert(0, len); rest.insert(0, 0x12); rest }),
        5 => damaged_encoding(),
    ]
    .boxed()
}

#[test]
fn arbitrary_bytes_as_request_messages_never_panic() {
    let mount = Mount::new();
    let cases = cases(DEFAULT_BYTES_CASES);
    let tally = Mutex::new(Tally::default());
    let started = Instant::now();
    let result = runner(cases, 0xa).run(&arbitrary_bytes(), |bytes| {
        for existence in [false, true] {
            let decoded = std::panic::catch_unwind(AssertUnwindSafe(|| {
                // Decoded and converted as the service does.
                if existence {
                    pb::HandleExistenceCheckArgs::decode(bytes.as_slice())
                        .map(|args| convert::request(args.request.unwrap_or_default()))
                } else {
                    pb::HandleRequestArgs::decode(bytes.as_slice())
                        .map(|args| convert::request(args.request.unwrap_or_default()))
                }
            }))
            .map_err(|_| TestCaseError::fail("decoding panicked"))?;
            match decoded {
                Err(_) => tally.lock().unwrap().add("not a message"),
                Ok(Err(err)) => {
                    typed(&err).map_err(TestCaseError::fail)?;
                    reply_bytes(&Err(err));
                    tally.lock().unwrap().add("refused by conversion");
                }
                Ok(Ok(request)) => {
                    exercise(&mount, request, &tally).map_err(TestCaseError::fail)?;
                }
            }
        }
        Ok(())
    });
    report(
        "request bytes",
        cases,
        started,
        &format!(", outcomes {:?}", tally.lock().unwrap().outcomes),
    );
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

// ------------------------------------------------------------ providers

/// A secret planted in answers, to check that errors never show it.
const PLANTED: &str = "Planted-Secret-42!";

fn text_value() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => "\\PC{0,30}".prop_map(Value::from),
        2 => select(vec![
            "Throttling.User", "Throttling", "InternalError", "SignatureDoesNotMatch",
            "InvalidAccessKeyId.NotFound", "InvalidParameter.Password", "Forbidden.RAM",
            "OperationDenied.JobStatus", "EntityNotExist.User", "LimitExceeded.AccessKey",
            "APIGW.0301", "APIGW.0308", "APIG.0201", "DRS.M00004", "DCS.4013", "1110", "",
            "%s", "%s%s%s", "server string to sign is:POST&%2F&Password%3DPlanted-Secret-42%2521",
            "the new password is the same as the current password",
            "see https://x.example/?Password=Planted-Secret-42! for help",
            "password=Planted-Secret-42! db_password=Planted-Secret-42!",
            "Planted-Secret-42!", "Planted-Secret-42%21", "Planted-Secret-42%2521",
            "\u{0}\u{1b}[31m", "é😀\u{202e}",
        ])
        .prop_map(Value::from),
        1 => prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            Just(json!([1, "a"])),
            Just(json!({"nested": {"code": "x", "message": "y"}})),
            Just(Value::from("x".repeat(5000))),
        ],
    ]
    .boxed()
}

/// JSON bodies shaped like each cloud's answers: a random subset of the
/// keys they use, with random values, sometimes nested.
fn shaped_body() -> BoxedStrategy<Value> {
    let keys = select(vec![
        "Code",
        "code",
        "Message",
        "message",
        "RequestId",
        "requestId",
        "HostId",
        "Recommend",
        "ErrCode",
        "errCode",
        "ErrMessage",
        "errMessage",
        "DynamicMessage",
        "dynamicMessage",
        "Success",
        "success",
        "HttpStatusCode",
        "AccessDeniedDetail",
        "accessDeniedDetail",
        "AuthAction",
        "error_code",
        "error_msg",
        "errorCode",
        "errorMsg",
        "request_id",
        "error",
        "result",
        "retry_times_left",
        "lock_time_left",
        "results",
        "jobs",
        "id",
        "status",
        "end_point_type",
        "error_message",
        "DtsJobId",
        "Status",
        "SourceEndpoint",
    ]);
    let flat = proptest::collection::btree_map(keys.clone(), text_value(), 0..8)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
    flat.prop_recursive(3, 16, 4, move |inner| {
        prop_oneof![
            proptest::collection::btree_map(keys.clone(), inner.clone(), 0..4).prop_map(|m| {
                Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
            proptest::collection::vec(inner, 0..4).prop_map(Value::from),
        ]
    })
    .boxed()
}

fn body_bytes() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        6 => shaped_body().prop_map(|v| v.to_string().into_bytes()),
        1 => (text_value(), text_value(), text_value()).prop_map(|(c, m, r)| {
            let t = |v: Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            format!("<?xml version='1.0'?><Error><Code>{}</Code><Message>{}</Message><RequestId>{}</RequestId></Error>", t(c), t(m), t(r)).into_bytes()
        }),
        1 => select(vec![
            "", " ", "null", "[]", "<html>502 Bad Gateway</html>", "<Code>", "<Code></Code>",
            "<Code>x</Code><Message>", "{", "{\"Code\":", "\u{feff}{}",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 0..200),
    ]
    .boxed()
}

fn headers() -> BoxedStrategy<Vec<(&'static str, String)>> {
    let name = select(vec![
        "x-acs-request-id",
        "x-request-id",
        "x-acs-retry-after",
        "retry-after",
        "content-type",
        "X-Request-Id",
    ]);
    let value = prop_oneof![
        "[ -~]{0,20}",
        select(vec![
            "0",
            "1",
            "1000",
            "-1",
            "18446744073709551616",
            "abc",
            " 5 ",
            "application/json"
        ])
        .prop_map(String::from),
    ];
    proptest::collection::vec((name, value), 0..4).boxed()
}

fn status() -> BoxedStrategy<u16> {
    prop_oneof![
        select(vec![
            200u16, 201, 204, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 504
        ]),
        100u16..600,
        any::<u16>(),
    ]
    .boxed()
}

fn response(status: u16, headers: &[(&str, String)], body: Vec<u8>) -> IncomingResponse {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.append(name, value);
        }
    }
    IncomingResponse {
        status,
        headers: map,
        body,
    }
}

/// A typed error: a class, a message that names the call, no secret.
fn check_error(error: &ProviderError, secrets: &[String]) -> Result<(), String> {
    let shown = error.to_string();
    if shown.is_empty() || !shown.contains(&error.action) {
        return Err(format!("error without context: {shown:?}"));
    }
    for secret in secrets {
        for form in [
            secret.clone(),
            cloudrotate::providers::encoding::percent_encode(secret),
        ] {
            if shown.contains(&form) || error.message.contains(&form) {
                return Err(format!("the error shows a secret: {shown}"));
            }
        }
    }
    match error.class {
        ErrorClass::Retryable
        | ErrorClass::OutcomeUnknown
        | ErrorClass::Permanent
        | ErrorClass::Lockout { .. } => Ok(()),
    }
}

fn drs_changes() -> Vec<DrsPasswordChange> {
    ["drsjob1", "j1", "j2"]
        .iter()
        .zip([
            DrsEndpointType::Source,
            DrsEndpointType::Target,
            DrsEndpointType::Source,
        ])
        .map(|(job, side)| DrsPasswordChange {
            job_id: job.to_string(),
            end_point_type: side,
            db_password: Secret::new(PLANTED),
        })
        .collect()
}

#[test]
fn provider_answers_of_any_shape_classify_without_panic() {
    let cases = cases(DEFAULT_PROVIDER_CASES);
    let secrets = vec![PLANTED.to_owned()];
    let changes = drs_changes();
    let tally = Mutex::new(BTreeMap::<String, u64>::new());
    let count = |what: String| *tally.lock().unwrap().entry(what).or_default() += 1;
    let started = Instant::now();
    let strategy = (
        status(),
        headers(),
        body_bytes(),
        select(AlibabaService::ALL.to_vec()),
        select(HuaweiService::ALL.to_vec()),
    );
    let result = runner(cases, 0xc).run(&strategy, |(status, headers, body, ali, hw)| {
        let answer = response(status, &headers, body);
        let fail = |what: &str, problem: String| {
            TestCaseError::fail(format!(
                "{what}: {problem}\n  status {status}, headers {headers:?}, body {:?}",
                String::from_utf8_lossy(&answer.body)
            ))
        };
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            (
                alicloud::client::parse_response(ali, "Action", &answer, &secrets),
                huaweicloud::client::parse_response(hw, "Action", &answer, &secrets),
            )
        }))
        .map_err(|_| fail("parse_response panicked", String::new()))?;
        for (cloud, parsed) in [("alicloud", outcome.0), ("huaweicloud", outcome.1)] {
            match parsed {
                Ok((body, info)) => {
                    if info.http_status != status {
                        return Err(fail(cloud, format!("status {} reported", info.http_status)));
                    }
                    count(format!("{cloud}: body"));
                    // Success bodies go on to the per-call checks.
                    let info = CallInfo {
                        request_id: info.request_id,
                        http_status: status,
                        attempts: 1,
                    };
                    let checked = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        (
                            dcs::check_update_answer(&body, &info, &secrets).err(),
                            dcs::check_reset_answer(&body, &info, &secrets).err(),
                            drs::parse_batch_modify_answer(&changes, body.clone(), &info, &secrets),
                            drs::parse_batch_status_answer(body.clone(), &info).err(),
                        )
                    }))
                    .map_err(|_| fail("a per-call check panicked", format!("{body}")))?;
                    let (update, reset, modify, status_err) = checked;
                    for error in [update, reset, status_err].into_iter().flatten() {
                        check_error(&error, &secrets).map_err(|p| fail("per-call check", p))?;
                    }
                    match modify {
                        Ok(items) => {
                            if items.len() != changes.len() {
                                return Err(fail("drs batch", format!("{} results", items.len())));
                            }
                            for item in items {
                                if let Err(error) = &item.outcome {
                                    check_error(error, &secrets)
                                        .map_err(|p| fail("drs item", p))?;
                                }
                            }
                        }
                        Err(error) => {
                            check_error(&error, &secrets).map_err(|p| fail("drs batch", p))?
                        }
                    }
                }
                Err(error) => {
                    check_error(&error, &secrets).map_err(|p| fail(cloud, p))?;
                    if error.http_status != Some(status) {
                        return Err(fail(
                            cloud,
                            format!("status {:?} reported", error.http_status),
                        ));
                    }
                    let class = match error.class {
                        ErrorClass::Retryable => "retryable",
                        ErrorClass::OutcomeUnknown => "outcome unknown",
                        ErrorClass::Permanent => "permanent",
                        ErrorClass::Lockout { .. } => "lockout",
                    };
                    count(format!("{cloud}: {class}"));
                }
            }
        }
        Ok(())
    });
    report(
        "provider answers",
        cases,
        started,
        &format!(", outcomes {:?}", tally.lock().unwrap()),
    );
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
