//! Hostile input through the real server: generated requests to every path
//! of `engine::paths()` and every write/read/list/delete it serves, with
//! bodies built from the path's own field schema (wrong types, empty and
//! huge strings, unicode and control characters, negative and absurd
//! durations, malformed cron and dependent strings, unknown fields, nested
//! objects where scalars belong, names that break the naming rule). Every
//! answer must be 2xx or 4xx, every 4xx must say what is wrong, and the
//! plugin process must survive the whole run without a panic.
//!
//! `BAD_INPUT_CASES` (default 15000, about 100 s, as the library paths
//! rotate for real) sets the number of requests, `BAD_INPUT_SEED` (a
//! number) changes the fixed seed, and
//! `BAD_INPUT_TRACE=<file>` writes every request and answer to that file;
//! `BAD_INPUT_KEEP_GOING=1` lists every violation instead of stopping at
//! the first and shrinking it.

#[path = "support/emulator.rs"]
mod emulator;
#[path = "support/server.rs"]
mod server;
#[path = "support/tools.rs"]
mod tools;

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use cloudrotate::engine;
use cloudrotate::framework::{Field, FieldType, Operation};
use emulator::{Emulator, fixture};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{Value, json};
use server::Server;

const DEFAULT_CASES: u32 = 15_000;
const MOUNT: &str = "database";
const PROJECT: &str = fixture::PROJECT;
/// Huawei locks an access key after five failed signatures; the fuzzer
/// signs with wrong secrets on purpose, so it gets a user and key of its
/// own and never locks the key of the connection that rotations use.
const HW_FUZZ_USER: &str = "hw-user-fuzz";
const HW_FUZZ_AK: &str = "HWFUZZACCESSKEY00001";
const HW_FUZZ_SK: &str = "huawei-fuzz-secret-key-0001";
/// The longest 4xx message accepted: enough to say what is wrong and list
/// the valid fields, never an echo of a hostile megabyte.
const MAX_MESSAGE: usize = 2048;

// ---------------------------------------------------------------- names

/// Names the fuzzer may rewrite or delete, per path. Roles and connections
/// that `rotate-role` / `rotate-root` act on are kept out of these pools:
/// a rotation through a connection the fuzzer has pointed at a wrong key is
/// a real upstream failure (502), not bad input.
const CONFIG_WRITE_NAMES: &[&str] = &["cf-a", "cf-h", "cf-new1", "cf-new2"];
const CONFIG_READ_NAMES: &[&str] = &["ali", "hw", "cf-a", "cf-h", "cf-missing"];
const ROOT_ROTATE_NAMES: &[&str] = &["ali", "hw", "cf-missing"];
const STATIC_WRITE_NAMES: &[&str] = &[
    "upd-pol",
    "upd-dcs",
    "upd-ext",
    "new-a",
    "new-b",
    "new-c",
    "upd-lease",
];
/// Dynamic roles: `rot-lease` is read (creds), `upd-lease` and the new
/// ones are rewritten and deleted.
const DYNAMIC_WRITE_NAMES: &[&str] = &["upd-lease", "new-l1", "new-l2", "upd-pol"];
const ROLE_READ_NAMES: &[&str] = &[
    "rot-pol", "rot-dcs", "rot-ext", "upd-pol", "upd-dcs", "upd-ext", "new-a", "missing",
];
/// Library sets: `rot-lib` lends and rotates (check-out, check-in,
/// rotate), `upd-lib` and the new ones are rewritten and deleted.
const LIBRARY_WRITE_NAMES: &[&str] = &["upd-lib", "new-s1", "new-s2", "rot-pol"];
const LIBRARY_NAMES: &[&str] = &["rot-lib", "upd-lib", "new-s1", "missing"];
const ROLE_ROTATE_NAMES: &[&str] = &["rot-pol", "rot-dcs", "rot-ext", "missing"];

/// Names that break the naming rule or the URL: empty, edges, spaces,
/// separators, unicode, control characters, too long.
fn bad_names() -> Vec<String> {
    [
        "",
        "-a",
        "a-",
        "_a",
        "a b",
        " a",
        "a\tb",
        "é",
        "名前",
        "a/b",
        "a%b",
        "a?b",
        "a#b",
        "a\u{0}b",
        "a\nb",
        "\u{202e}abc",
        "a\\b",
        "a:b",
        "a;b",
        "a,b",
        "*",
        "a*",
        "~a",
        ".a",
        "a'b",
        "a\"b",
        "<a>",
        "a+b",
        "\u{feff}a",
        "a\u{a0}b",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(["a".repeat(129), "b".repeat(2000)])
    .collect()
}

/// Names at the edge of the rule that it allows.
fn odd_names() -> Vec<String> {
    ["a..b", "a.", "CON", "A", "0", "a_-.b"]
        .iter()
        .map(|s| s.to_string())
        .chain(["x".repeat(128)])
        .collect()
}

/// `pool`, names that break the rule and, where the path may create
/// what it names, names at the edge of the rule.
fn name_strategy(pool: &'static [&'static str], creates: bool) -> BoxedStrategy<String> {
    let mut others = bad_names();
    if creates {
        others.extend(odd_names());
    }
    prop_oneof![
        3 => select(pool).prop_map(String::from),
        1 => select(others),
    ]
    .boxed()
}

// ---------------------------------------------------------------- values

/// JSON text of one value: most of them hostile, some valid, so that
/// validation past the first field gets exercised too.
fn lit(values: &[&str]) -> BoxedStrategy<String> {
    select(values.iter().map(|s| s.to_string()).collect::<Vec<_>>()).boxed()
}

fn quoted(values: &[&str]) -> BoxedStrategy<String> {
    select(
        values
            .iter()
            .map(|s| Value::from(*s).to_string())
            .collect::<Vec<_>>(),
    )
    .boxed()
}

fn json_string(s: String) -> String {
    Value::String(s).to_string()
}

/// Strings of any kind: unicode, control characters, bidi overrides,
/// surrogates written as escapes, boundary and huge lengths.
fn hostile_string(max_len: usize) -> BoxedStrategy<String> {
    prop_oneof![
        4 => "\\PC{0,40}".prop_map(json_string),
        2 => "[\\x00-\\x1f\\x7f\u{202e}\u{feff}\u{fffd}\u{200b}é😀a/ ]{1,24}".prop_map(json_string),
        1 => lit(&[
            r#""""#, r#"" ""#, r#""\u0000""#, r#""\ud800""#, r#""\udfff\ud800""#, r#""{\"a\":1}""#,
            r#""[1,2]""#, r#""%s%n%x""#, r#""${jndi:ldap://x}""#, r#""../../etc/passwd""#,
            r#""null""#, r#""true""#, r#""\r\n\r\n""#,
        ]),
        1 => select(vec![max_len, max_len + 1, 4097, 1 << 20])
            .prop_map(|n| json_string("x".repeat(n))),
        1 => select(vec![max_len, max_len + 1]).prop_map(|n| json_string("é".repeat(n))),
    ]
    .boxed()
}

/// Values of the wrong shape for any field: other types, nesting, huge
/// collections, numbers serde cannot hold.
fn hostile_shape() -> BoxedStrategy<String> {
    prop_oneof![
        6 => lit(&[
            "null", "true", "false", "0", "-0", "-1", "1.5", "1e308", "1e400", "-1e400", "1E999",
            "18446744073709551616", "9223372036854775807", "-9223372036854775808",
            "[]", "{}", "[1,2]", r#"["a",null]"#, r#"[["a"]]"#, "[{}]", r#"{"a":{"b":[1,{"c":null}]}}"#,
            r#"{"":""}"#, r#"[true,1.5,"x"]"#,
        ]),
        1 => (1usize..400).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth))),
        1 => (1usize..400).prop_map(|depth| format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))),
        1 => select(vec![1000usize, 20_000]).prop_map(|n| {
            Value::from((0..n).map(|i| format!("item-{i}")).collect::<Vec<_>>()).to_string()
        }),
        1 => Just(
            Value::Object((0..5000).map(|i| (format!("k{i}"), Value::from(i))).collect()).to_string()
        ),
    ]
    .boxed()
}

fn durations() -> BoxedStrategy<String> {
    prop_oneof![
        3 => lit(&[
            r#""-1s""#, "-1", r#""-1""#, r#""99999999999h""#, r#""1e400""#, "1e400", r#""1.5h""#,
            "1.5", r#""""#, r#""0""#, "0", r#""5 parsecs""#, r#""1h-1m""#, r#""1.2.3s""#, r#""h""#,
            r#""+5m""#, r#""5m3""#, r#""1µs""#, r#""0.5s""#, r#""P1D""#, "18446744073709551615",
            "3153600001", r#""3153600001""#, r#""36500d""#, r#""36501d""#, r#""1ｓ""#, r#""٣s""#,
            r#""9999999999999999999999999s""#, r#""1.99999999999999999999999999h""#, "-9223372036854775808",
            r#""-0s""#, r#"" 24h ""#, r#""24H""#, r#""1h1h1h""#, r#""4s""#, r#""5s""#, "59", "3599",
        ]),
        2 => lit(&[r#""24h""#, "3600", r#""90s""#, r#""1h""#, r#""2h""#, r#""7d""#, r#""30m""#]),
        1 => Just(json_string("9".repeat(5000))),
    ]
    .boxed()
}

fn ints() -> BoxedStrategy<String> {
    lit(&[
        r#""many""#,
        r#""3.5""#,
        "3.5",
        "-1",
        "0",
        "1",
        "5",
        "10",
        "11",
        "1000",
        "1001",
        "-9223372036854775808",
        "9223372036854775807",
        r#""99999999999999999999""#,
        "1e400",
        r#""0x10""#,
        r#"" 5 ""#,
        "true",
        r#""""#,
        "4294967296",
        "4294967297",
        "1e15",
        "1e16",
        r#""-0""#,
        "2.0",
    ])
}

fn bools() -> BoxedStrategy<String> {
    lit(&[
        r#""maybe""#,
        "2",
        r#""yes""#,
        r#""""#,
        "null",
        r#""TRUE""#,
        "1",
        "0",
        "-0",
        "0.0",
        r#""t""#,
        "[true]",
        "true",
        "false",
        r#""false""#,
    ])
}

fn cron() -> BoxedStrategy<String> {
    quoted(&[
        "* * * *",
        "0 0 0 * * *",
        "61 * * * *",
        "* * 32 * *",
        "0 0 31 2 *",
        "0 0 30 2 *",
        "@reboot",
        "@yearly",
        "@every 5m",
        "@",
        "0 3 * * SUN",
        "0 3 * * 8",
        "*/0 * * * *",
        "0-59/1000 * * * *",
        "L * * * *",
        "0 0 L * *",
        "0 0 * * 5#6",
        "0 0 ? * *",
        "0 0 W * *",
        "0 0 15W * *",
        "0 0 * * 7L",
        "a b c d e",
        "1-0 * * * *",
        "9999999999 * * * *",
        "-1 * * * *",
        "0 0 29 2 1",
        "0 0 29 2 *",
        "* * * * * * *",
        "",
        "   ",
        "0\t3\t*\t*\t*",
        "0 3 * * MON-SUN",
        "0 3 * JAN-DEC *",
        "0 3 * FOO *",
        "*/61 * * * *",
        "0,,1 * * * *",
        "0 3 * * 1-7/0",
        "0 0 1 1 * 2099",
        "*/1 */1 */1 */1 */1",
        "0 3 1-31/2 * *",
        "0 3 * * *",
        "*/5 * * * *",
        "0 0 1 * *",
        "0 0 L 2 *",
        "0 0 LW * *",
        "0 0 * * L",
        "0 0 * * 0#5",
        "0 0 1W * *",
        "0 0 31W 2 *",
        "0 0 * * 5L",
        "0 0 ? ? ?",
    ])
}

fn urls(emulator: &str) -> BoxedStrategy<String> {
    let mut values = vec![
        "http://127.0.0.1:1",
        "ftp://x",
        "http://",
        "https://[::1",
        "http://a@b",
        "http://é.com",
        "http://x:99999",
        "http://x/?q=1",
        "http://x/#f",
        "http://x y",
        "https://x\n",
        "x",
        "//x",
        "https://",
        "http:// ",
        "https://x:0",
        "https://x:-1",
        "javascript:alert(1)",
        "http://[::1]:1",
        "HTTP://X",
        "http://%00",
        "http://x/%zz",
    ]
    .into_iter()
    .map(|s| s.to_owned())
    .collect::<Vec<_>>();
    values.push(emulator.to_owned());
    values.push(format!("{emulator}/"));
    values.push(format!("{emulator}/sub/path"));
    select(values.into_iter().map(json_string).collect::<Vec<_>>()).boxed()
}

fn endpoint_maps(emulator: &str) -> BoxedStrategy<String> {
    let emulator = emulator.to_owned();
    prop_oneof![
        3 => lit(&[
            r#""polardb""#, r#""polardb=""#, r#""=x""#, r#""{bad json""#, r#""{\"a\":{\"b\":1}}""#,
            r#"{"polardb":1}"#, r#"{"unknown":"http://x"}"#, r#"{"polardb":"ftp://x"}"#,
            r#"{"polardb":"http://"}"#, r#"{"polardb":"http://a b"}"#, r#"{"dcs":{"x":1}}"#,
            r#"["polardb=http://x","=="]"#, r#"[1]"#, r#""polardb=http://x,dts""#,
            r#"{"polardb":null}"#, r#""{}""#, r#"{"":""}"#, r#"{"DTS":"http://x"}"#,
        ]),
        1 => Just(emulator.clone()).prop_map(|e| json!({"polardb": e, "dts": e, "ram": e}).to_string()),
        1 => Just(emulator).prop_map(|e| json!({"dcs": e, "drs": e, "iam": e}).to_string()),
    ]
    .boxed()
}

fn dependent_specs() -> BoxedStrategy<String> {
    select(
        [
            "dts:",
            "dts:ali",
            "dts:ali/job",
            "dts:ali/job/src/u/extra",
            "drs:hw/j/xx",
            "ftp:a/b/c",
            "dts:ali//src",
            "dts: ali/j/src",
            "DTS:ali/j/src",
            "dts:ali/j/src/",
            "dts:ali/j/SRC",
            "dts:ali/jöb/src",
            "drs:hw/job/so/extra",
            "drs:",
            ":",
            "::::",
            "dts:ali/j/src/u\u{0}",
            "dts:nope/j/src",
            "drs:ali/j/so",
            "dts:hw/j/src/u",
            "dts:ali/dtsjob1/src",
            "dts:ali/dtsjob-fz/src",
            "dts:ali/dtsjob-fz/dest/sink2",
            "drs:hw/drsjob-fz/ta",
            "drs:hw/drsjob1/so",
            "drs:hw/drsjob-missing/so",
            "dts:ali/dtsjob-missing/dest/u",
            "dts:cf-a/dtsjob-fz/src/u1",
            "nocolon",
            "dts:a/b/c/d/e/f",
            "dts:ali/\u{202e}j/src",
            "dts:-bad/j/src",
            "drs:hw/ j/so",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([
            format!("dts:ali/{}/src", "j".repeat(129)),
            format!("dts:ali/{}/src", "j".repeat(128)),
            format!("drs:{}/j/so", "c".repeat(300)),
        ])
        .collect::<Vec<_>>(),
    )
    .boxed()
}

fn dependents() -> BoxedStrategy<String> {
    prop_oneof![
        3 => proptest::collection::vec(dependent_specs(), 0..4)
            .prop_map(|specs| Value::from(specs).to_string()),
        2 => proptest::collection::vec(dependent_specs(), 1..4)
            .prop_map(|specs| json_string(specs.join(","))),
        1 => dependent_specs().prop_map(|spec| json!([spec, spec]).to_string()),
        1 => lit(&[r#"[{"dts":"ali"}]"#, r#"[["dts:ali/dtsjob-fz/src"]]"#, r#"{"a":"dts:ali/j/src"}"#, "[null]", r#"",,,""#]),
    ]
    .boxed()
}

/// Valid and invalid values for fields whose meaning the schema type does
/// not tell.
fn by_name(name: &str, emulator: &str) -> Option<BoxedStrategy<String>> {
    let long = |n: usize| "a".repeat(n);
    Some(match name {
        "rotation_schedule" => cron(),
        "endpoint" => urls(emulator),
        "endpoints" => endpoint_maps(emulator),
        "dependents" => dependents(),
        "region" => quoted(&[
            "cn-hangzhou",
            "cn-north-4",
            "CN-HANGZHOU",
            "",
            "  ",
            "cn hangzhou",
            "cn-hangzhou\n",
            "é",
            &long(65),
            "cn_hangzhou",
            "../x",
        ]),
        "connection" => quoted(&[
            "ali",
            "hw",
            "cf-a",
            "cf-h",
            "missing",
            "",
            "-bad",
            "ali/x",
            &long(129),
            "ALI",
            "hw ",
        ]),
        "cluster_id" => quoted(&[
            "pc-1",
            "pc-fz",
            "pc-missing",
            "",
            "pc-1/../x",
            &long(129),
            "pc-1?x=1",
            "pc-1 ",
        ]),
        "instance_id" => quoted(&[
            "dcs-1",
            "dcs-fz1",
            "dcs-fz2",
            "dcs-missing",
            "../../v3",
            "dcs-1/x",
            "%2e%2e",
            "a b",
            "",
        ]),
        "username" => quoted(&[
            "u1",
            "u2",
            "u3",
            "u4",
            "u5",
            "u6",
            "app",
            "report",
            "",
            "a b",
            "名前",
            &long(129),
            "x\u{0}",
            "nobody",
        ]),
        "password" => quoted(&[
            "",
            "short",
            "Valid-Pass-123",
            "Other-Pass-456",
            "\u{0}ctrl",
            &long(256),
            &long(257),
            "密码Pass1!",
            "pass word",
            "Aa1!Aa1!Aa1!Aa1!Aa1!Aa1!Aa1!Aa1!Aa1!",
            "\u{7f}Del-Pass-1",
        ]),
        "password_policy" => quoted(&["missing-policy", "", "a b", &long(129), "../x", "名前"]),
        "ca_certificate" => quoted(&[
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----",
            "not pem",
            "",
        ]),
        "project_id" => quoted(&[PROJECT, "", "../x", &long(65), "p/q", "é"]),
        "access_key" => quoted(&[
            fixture::ALI_AK,
            HW_FUZZ_AK,
            "",
            " ",
            "é",
            &long(257),
            "wrong-key",
        ]),
        "secret_key" | "security_token" => quoted(&[
            fixture::ALI_SK,
            HW_FUZZ_SK,
            "",
            " ",
            "é",
            &long(257),
            "wrong-secret",
        ]),
        "iam_user" => quoted(&[fixture::ALI_USER, HW_FUZZ_USER, "", "nobody", &long(129)]),
        "allowed_roles" => lit(&[
            r#""*""#,
            r#""""#,
            r#""team-*""#,
            r#""[""#,
            r#""**""#,
            r#""*a*b*""#,
            r#"["*",""]"#,
            r#"["new-*","upd-*","rot-*"]"#,
            r#"[{"a":1}]"#,
            r#""a,,b, ,c""#,
        ]),
        _ => return None,
    })
}

fn by_type(field: &Field) -> BoxedStrategy<String> {
    let typed = match field.kind {
        FieldType::String if !field.allowed.is_empty() => {
            let mut values: Vec<String> = field.allowed.iter().map(|s| s.to_string()).collect();
            values.extend(field.allowed.iter().map(|s| s.to_uppercase()));
            values.extend(field.allowed.iter().map(|s| format!(" {s} ")));
            values.extend([
                "".into(),
                "аlicloud".into(),
                "v4".into(),
                "reset\u{0}".into(),
            ]);
            select(values.into_iter().map(json_string).collect::<Vec<_>>()).boxed()
        }
        FieldType::String => hostile_string(field.max_len),
        FieldType::Bool => bools(),
        FieldType::Int => ints(),
        FieldType::Duration => durations(),
        FieldType::StringList => prop_oneof![
            lit(&[
                r#""a,b,,c""#,
                "[]",
                r#"[""]"#,
                "[null]",
                "[1]",
                "[[]]",
                "[{}]",
                r#"",""#
            ]),
            proptest::collection::vec("\\PC{0,12}", 0..5).prop_map(|v| Value::from(v).to_string()),
        ]
        .boxed(),
        FieldType::Map => lit(&[
            r#""k""#,
            r#""k=v""#,
            r#""k=v,=""#,
            "{}",
            r#"{"k":{"a":1}}"#,
            r#"["k=v", 1]"#,
        ]),
    };
    prop_oneof![4 => typed, 1 => hostile_string(field.max_len), 1 => hostile_shape()].boxed()
}

fn field_value(field: &Field, emulator: &str) -> BoxedStrategy<String> {
    match by_name(field.name, emulator) {
        Some(special) => prop_oneof![4 => special, 1 => by_type(field)].boxed(),
        None => by_type(field),
    }
}

// ---------------------------------------------------------------- cases

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Method {
    Write,
    Read,
    List,
    Delete,
}

impl Method {
    fn of(operation: Operation) -> Option<Self> {
        match operation {
            Operation::Create | Operation::Update => Some(Self::Write),
            Operation::Read => Some(Self::Read),
            Operation::List => Some(Self::List),
            Operation::Delete => Some(Self::Delete),
            _ => None,
        }
    }
}

/// A body: a JSON object built key by key from raw JSON texts (so numbers
/// serde cannot hold travel as sent), or a whole raw body.
#[derive(Clone, Debug)]
enum Body {
    Fields(Vec<(String, String)>),
    Raw(String),
}

impl Body {
    fn text(&self) -> String {
        match self {
            Body::Raw(text) => text.clone(),
            Body::Fields(fields) => {
                let members: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{}:{v}", Value::from(k.as_str())))
                    .collect();
                format!("{{{}}}", members.join(","))
            }
        }
    }

    /// The query string a GET or DELETE carries: strings as they are,
    /// other values as JSON text; huge values left out (they would hit the
    /// HTTP server's header limit, not the plugin).
    fn query(&self) -> String {
        let Body::Fields(fields) = self else {
            return String::new();
        };
        fields
            .iter()
            .filter(|(k, v)| k.len() + v.len() < 8192)
            .map(|(k, v)| {
                let value = match serde_json::from_str::<Value>(v) {
                    Ok(Value::String(s)) => s,
                    _ => v.clone(),
                };
                format!("{}={}", encode(k), encode(&value))
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

#[derive(Clone)]
struct Case {
    method: Method,
    /// The path pattern, for the report.
    pattern: &'static str,
    /// The path under the mount, names not yet encoded.
    segments: Vec<String>,
    body: Body,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut body = self.body.text();
        if body.len() > 600 {
            let cut = body.char_indices().nth(600).map_or(body.len(), |(i, _)| i);
            body = format!("{}... ({} bytes)", &body[..cut], body.len());
        }
        write!(
            f,
            "{:?} {} {:?} body={body}",
            self.method, self.pattern, self.segments
        )
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A valid body per write path, which the fuzzer then damages one to three
/// fields at a time, so that every validation step gets its turn.
fn template(pattern: &str, emulator: &str) -> Vec<Vec<(String, String)>> {
    let obj = |v: Value| -> Vec<(String, String)> {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect()
    };
    match pattern {
        "config/{name}" => vec![
            obj(json!({
                "provider": "alicloud", "region": "cn-hangzhou", "access_key": fixture::ALI_AK,
                "secret_key": fixture::ALI_SK, "endpoint": emulator, "allowed_roles": "*",
                "iam_user": fixture::ALI_USER, "verify_connection": false, "request_timeout": "5s",
            })),
            obj(json!({
                "provider": "huaweicloud", "region": "cn-north-4", "access_key": HW_FUZZ_AK,
                "secret_key": HW_FUZZ_SK, "project_id": PROJECT, "endpoint": emulator,
                "allowed_roles": ["*"], "iam_user": HW_FUZZ_USER, "request_timeout": "5s",
            })),
        ],
        "static-roles/{name}" => vec![
            obj(json!({
                "target": "polardb-account", "connection": "ali", "cluster_id": "pc-fz",
                "username": "u3", "rotation_period": "24h",
            })),
            obj(json!({
                "target": "dcs-instance", "connection": "hw", "instance_id": "dcs-fz2",
                "rotation_schedule": "0 3 * * *", "rotation_window": "2h",
                "dependents": ["drs:hw/drsjob-fz/ta"],
            })),
            obj(
                json!({ "target": "external", "username": "ext-new", "disable_automated_rotation": true }),
            ),
        ],
        "roles/{name}" => vec![obj(json!({
            "target": "polardb-account", "connection": "ali", "cluster_id": "pc-fz",
            "grants": { "appdb": "ReadWrite" }, "default_ttl": "1h", "max_ttl": "24h",
        }))],
        "library/{name}" => vec![obj(json!({
            "target": "polardb-account", "connection": "ali", "cluster_id": "pc-fz",
            "service_account_names": ["u4", "u5"], "ttl": "1h", "max_ttl": "24h",
            "dependents": ["dts:ali/dtsjob-fz/dest/u5"],
        }))],
        "library/{name}/check-out" => vec![obj(json!({ "ttl": "10m" })), vec![]],
        "library/{name}/check-in" | "library/manage/{name}/check-in" | "library/{name}/rotate" => {
            vec![obj(json!({ "service_account_names": ["report"] })), vec![]]
        }
        "rotate-role/{name}" => vec![obj(json!({ "dry_run": true })), vec![]],
        _ => vec![vec![]],
    }
}

/// Which names a (path, method) may use.
fn names_for(pattern: &str, method: Method) -> &'static [&'static str] {
    match (pattern, method) {
        ("config/{name}", Method::Write | Method::Delete) => CONFIG_WRITE_NAMES,
        ("config/{name}", _) => CONFIG_READ_NAMES,
        ("rotate-root/{name}", _) => ROOT_ROTATE_NAMES,
        ("static-roles/{name}", Method::Write | Method::Delete) => STATIC_WRITE_NAMES,
        ("roles/{name}", Method::Write | Method::Delete) => DYNAMIC_WRITE_NAMES,
        ("library/{name}", Method::Write | Method::Delete) => LIBRARY_WRITE_NAMES,
        (pattern, _) if pattern.starts_with("library/") => LIBRARY_NAMES,
        ("rotate-role/{name}", _) => ROLE_ROTATE_NAMES,
        // A dynamic role the fuzzer never rewrites: a read creates an
        // account through connections it keeps intact (one it pointed at a
        // wrong key or endpoint would fail upstream, a 5xx, not bad input).
        ("creds/{name}", _) => &["rot-lease", "rot-pol", "missing"],
        _ => ROLE_READ_NAMES,
    }
}

const UNKNOWN_KEYS: &[&str] = &[
    "regoin",
    "ttl_",
    "Name",
    "",
    " ",
    "é",
    "a.b",
    "provider ",
    "__proto__",
    "PROVIDER",
    "\u{0}",
    "password\n",
    "data",
    "options",
];

fn body_strategy(pattern: &'static str, fields: Vec<Field>, emulator: &str) -> BoxedStrategy<Body> {
    let templates = template(pattern, emulator);
    let field_values: Vec<BoxedStrategy<(String, String)>> = fields
        .iter()
        .map(|field| {
            let name = field.name.to_owned();
            field_value(field, emulator)
                .prop_map(move |value| (name.clone(), value))
                .boxed()
        })
        .collect();
    let any_field: BoxedStrategy<(String, String)> = if field_values.is_empty() {
        (select(UNKNOWN_KEYS), hostile_shape())
            .prop_map(|(k, v)| (k.to_owned(), v))
            .boxed()
    } else {
        proptest::strategy::Union::new(field_values).boxed()
    };
    let unknown = (
        select(UNKNOWN_KEYS),
        prop_oneof![hostile_shape(), hostile_string(64)],
    )
        .prop_map(|(k, v)| (k.to_owned(), v));
    let field_names: Vec<String> = fields.iter().map(|f| f.name.to_owned()).collect();

    // A template with one to three fields changed, dropped or added.
    let damaged = (
        select(templates),
        proptest::collection::vec(any_field.clone(), 1..4),
        proptest::option::weighted(0.15, unknown.clone()),
        proptest::option::weighted(
            0.2,
            select(if field_names.is_empty() {
                vec!["name".to_owned()]
            } else {
                field_names
            }),
        ),
    )
        .prop_map(|(mut body, changes, extra, dropped)| {
            for (key, value) in changes {
                body.retain(|(k, _)| *k != key);
                body.push((key, value));
            }
            if let Some(dropped) = dropped {
                body.retain(|(k, _)| *k != dropped);
            }
            body.extend(extra);
            Body::Fields(body)
        });
    // Fields drawn from the schema alone, valid or not.
    let random = proptest::collection::vec(prop_oneof![5 => any_field, 1 => unknown], 0..6)
        .prop_map(Body::Fields);
    let raw = lit(&[
        "",
        "null",
        "[]",
        "[1,2]",
        r#""text""#,
        "{",
        r#"{"a":1}garbage"#,
        r#"{"a":1,"a":2}"#,
        "\u{feff}{}",
        "{}",
        "1e400",
        r#"{"a":"\ud800"}"#,
        "{\"a\":\"\u{0}\"}",
    ])
    .prop_map(Body::Raw);
    prop_oneof![6 => damaged, 3 => random, 1 => raw].boxed()
}

fn case_strategy(emulator: &str) -> BoxedStrategy<Case> {
    let mut choices: Vec<(u32, BoxedStrategy<Case>)> = Vec::new();
    for path in engine::paths() {
        let pattern = path.pattern;
        let captures: Vec<&str> = path.captures().collect();
        let mut methods: Vec<Method> = path
            .operations
            .iter()
            .filter_map(|spec| Method::of(spec.operation))
            .collect();
        methods.sort();
        methods.dedup();
        for method in methods {
            let body = body_strategy(pattern, path.fields.clone(), emulator);
            let literal: Vec<String> = pattern
                .trim_end_matches('/')
                .split('/')
                .map(str::to_owned)
                .collect();
            let segments = if captures.is_empty() {
                Just(literal).boxed()
            } else {
                let rotates = pattern.starts_with("rotate-");
                name_strategy(names_for(pattern, method), !rotates)
                    .prop_map(move |name| {
                        literal
                            .iter()
                            .map(|s| {
                                if s.starts_with('{') {
                                    name.clone()
                                } else {
                                    s.clone()
                                }
                            })
                            .collect()
                    })
                    .boxed()
            };
            let weight = if method == Method::Write { 3 } else { 1 };
            let strategy = (segments, body)
                .prop_map(move |(segments, body)| Case {
                    method,
                    pattern,
                    segments,
                    body,
                })
                .boxed();
            choices.push((weight, strategy));
        }
    }
    proptest::strategy::Union::new_weighted(choices).boxed()
}

// ---------------------------------------------------------------- server

struct Client {
    http: reqwest::blocking::Client,
    addr: String,
    token: String,
}

struct Answer {
    status: u16,
    body: Value,
    text: String,
}

impl Client {
    fn send(&self, case: &Case) -> Answer {
        let path: Vec<String> = case.segments.iter().map(|s| encode(s)).collect();
        let url = format!("{}/v1/{MOUNT}/{}", self.addr, path.join("/"));
        let query = case.body.query();
        let request = match case.method {
            Method::Write => self
                .http
                .post(&url)
                .header("Content-Type", "application/json")
                .body(case.body.text()),
            Method::Read => self.http.get(format!("{url}?{query}")),
            Method::List => self.http.get(format!("{url}?list=true&{query}")),
            Method::Delete => self.http.delete(format!("{url}?{query}")),
        };
        let response = request
            .header("X-Vault-Token", &self.token)
            .send()
            .unwrap_or_else(|e| panic!("{case:?}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, body, text }
    }
}

fn write_ok(server: &Server, path: &str, body: Value) {
    let reply = server.write(&format!("{MOUNT}/{path}"), body);
    assert!(reply.status < 300, "setup write {path}: {reply:?}");
}

fn seed() -> Value {
    let mut seed = fixture::seed();
    let accounts: Vec<Value> = (1..=6)
        .map(|i| json!({ "name": format!("u{i}"), "password": fixture::INITIAL }))
        .collect();
    seed["alicloud"]["polardb_clusters"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "id": "pc-fz", "region": "cn-hangzhou", "databases": ["appdb"], "accounts": accounts }));
    // Dynamic role rot-lease's accounts: available at once, so each creds
    // read takes milliseconds.
    seed["alicloud"]["polardb_clusters"]
        .as_array_mut()
        .unwrap()
        .push(
            json!({ "id": "pc-lease", "region": "cn-hangzhou", "databases": ["appdb"],
                      "account_settle_seconds": 0.0 }),
        );
    seed["alicloud"]["dts_jobs"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "id": "dtsjob-fz", "region": "cn-hangzhou", "status": "Synchronizing",
            "src": { "user": "u1", "password": fixture::INITIAL },
            "dest": { "user": "sink2", "password": "Other-Pass-1" }
        }));
    seed["huaweicloud"]["users"].as_array_mut().unwrap().push(json!({
        "id": HW_FUZZ_USER, "name": "fuzz", "access_keys": [{ "access": HW_FUZZ_AK, "secret": HW_FUZZ_SK }]
    }));
    let dcs = seed["huaweicloud"]["dcs_instances"].as_array_mut().unwrap();
    for id in ["dcs-fz1", "dcs-fz2", "dcs-fz3"] {
        dcs.push(json!({ "id": id, "project_id": PROJECT, "password": fixture::INITIAL }));
    }
    seed["huaweicloud"]["drs_jobs"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "id": "drsjob-fz", "project_id": PROJECT, "status": "INCRE_TRANSFER_STARTED",
            "so": { "password": fixture::INITIAL }, "ta": { "password": "Other-Pass-1" }
        }));
    seed
}

/// Connections to the emulator and a few valid roles of every kind, so
/// role writes get past "connection does not exist" and updates have
/// something to update.
fn set_up(server: &Server, emulator: &Emulator) {
    let ali = |key: &str, secret: &str| {
        json!({
            "provider": "alicloud", "region": "cn-hangzhou", "access_key": key, "secret_key": secret,
            "endpoint": emulator.url, "allowed_roles": "*", "iam_user": fixture::ALI_USER,
            // A creds read of a dynamic role makes four calls; the default
            // pacing (10/s) would make the run wait on them.
            "request_timeout": "5s", "requests_per_second": 1000,
        })
    };
    let hw = |user: &str, key: &str, secret: &str| {
        json!({
            "provider": "huaweicloud", "region": "cn-north-4", "access_key": key,
            "secret_key": secret, "project_id": PROJECT, "endpoint": emulator.url,
            "allowed_roles": "*", "iam_user": user, "request_timeout": "5s",
        })
    };
    write_ok(server, "config/ali", ali(fixture::ALI_AK, fixture::ALI_SK));
    write_ok(
        server,
        "config/hw",
        hw(fixture::HW_USER, fixture::HW_AK, fixture::HW_SK),
    );
    write_ok(server, "config/cf-a", ali(fixture::ALI_AK, fixture::ALI_SK));
    write_ok(
        server,
        "config/cf-h",
        hw(HW_FUZZ_USER, HW_FUZZ_AK, HW_FUZZ_SK),
    );
    let roles = [
        (
            "static-roles/rot-pol",
            json!({"target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "username": "app", "dependents": ["dts:ali/dtsjob1/src"], "rotation_period": "24h"}),
        ),
        (
            "static-roles/rot-dcs",
            json!({"target": "dcs-instance", "connection": "hw", "instance_id": "dcs-1", "dependents": "drs:hw/drsjob1/so", "rotation_schedule": "0 3 * * *"}),
        ),
        (
            "static-roles/rot-ext",
            json!({"target": "external", "username": "ext-user", "skip_import_rotation": true, "password": "Adopted-Pass-1"}),
        ),
        (
            "library/rot-lib",
            json!({"target": "polardb-account", "connection": "ali", "cluster_id": "pc-1", "service_account_names": "report", "ttl": "1h", "max_ttl": "24h"}),
        ),
        (
            "static-roles/upd-pol",
            json!({"target": "polardb-account", "connection": "ali", "cluster_id": "pc-fz", "username": "u1", "rotation_period": "1h"}),
        ),
        (
            "static-roles/upd-dcs",
            json!({"target": "dcs-instance", "connection": "hw", "instance_id": "dcs-fz1", "dcs_change_method": "reset"}),
        ),
        (
            "static-roles/upd-ext",
            json!({"target": "external", "username": "ext-upd"}),
        ),
        (
            "library/upd-lib",
            json!({"target": "polardb-account", "connection": "ali", "cluster_id": "pc-fz", "service_account_names": ["u2"]}),
        ),
        (
            "roles/rot-lease",
            json!({"target": "polardb-account", "connection": "ali", "cluster_id": "pc-lease", "grants": "appdb=ReadOnly", "default_ttl": "1h", "max_ttl": "24h"}),
        ),
        (
            "roles/upd-lease",
            json!({"target": "polardb-account", "connection": "ali", "cluster_id": "pc-fz", "grants": "appdb=ReadWrite"}),
        ),
    ];
    for (path, body) in roles {
        write_ok(server, path, body);
    }
}

fn cases() -> u32 {
    std::env::var("BAD_INPUT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

fn run_seed() -> u64 {
    std::env::var("BAD_INPUT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6261_645f_696e_7075) // "bad_inpu"
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(seed.rotate_left(i as u32 * 16)).to_le_bytes());
    }
    bytes
}

/// Characters OpenBao refuses in a request path (Go's `!unicode.IsPrint`:
/// controls, whitespace other than the ASCII space, format characters),
/// with an empty 400 for every mount alike: the plugin never sees them.
fn host_refuses(c: char) -> bool {
    c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

fn host_refused_path(case: &Case, answer: &Answer) -> bool {
    answer.status == 400
        && answer.text.is_empty()
        && case.segments.iter().any(|s| s.chars().any(host_refuses))
}

/// An empty name inside a path (`library//status`) makes `//`, which the
/// host's HTTP server cleans with a redirect before any mount sees it.
fn host_cleaned_path(case: &Case, answer: &Answer) -> bool {
    matches!(answer.status, 301 | 307 | 308)
        && case
            .segments
            .iter()
            .rev()
            .skip(1)
            .any(|segment| segment.is_empty())
}

/// What is wrong with an answer, if anything.
fn check(case: &Case, answer: &Answer) -> Result<(), String> {
    let status = answer.status;
    if host_cleaned_path(case, answer) {
        return Ok(());
    }
    if !((200..300).contains(&status) || (400..500).contains(&status)) {
        return Err(format!("status {status}: {}", answer.text));
    }
    if (400..500).contains(&status) {
        let messages: Vec<&str> = answer.body["errors"]
            .as_array()
            .map(|errors| errors.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let has_message = messages.iter().any(|m| !m.trim().is_empty());
        // Vault's convention for "nothing there": a read or list of a
        // missing object is 404 with an empty error list.
        let absent = status == 404
            && matches!(case.method, Method::Read | Method::List)
            && answer.body == json!({ "errors": [] });
        if !has_message && !absent && !host_refused_path(case, answer) {
            return Err(format!(
                "status {status} without a message: {}",
                answer.text
            ));
        }
        if let Some(long) = messages.iter().find(|m| m.chars().count() > MAX_MESSAGE) {
            let start: String = long.chars().take(200).collect();
            return Err(format!(
                "status {status} with a {}-character message: {start}...",
                long.chars().count()
            ));
        }
    }
    Ok(())
}

#[test]
fn hostile_requests_to_every_path_get_2xx_or_4xx_with_a_message() {
    let emulator = Emulator::start();
    emulator.seed(seed());
    let server = Server::start("bad-input");
    server.enable(MOUNT, &[("account_ready_poll", "20ms")]);
    set_up(&server, &emulator);
    let pids = server.plugin_pids();
    assert_eq!(pids.len(), 1, "one plugin process: {pids:?}");

    let client = Client {
        http: reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        addr: server.addr.clone(),
        token: server.token.clone(),
    };
    let cases = cases();
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(run_seed())),
    );
    let histogram = std::cell::RefCell::new(BTreeMap::<u16, u64>::new());
    let per_path = std::cell::RefCell::new(BTreeMap::<String, u64>::new());
    let absent = std::cell::Cell::new(0u64);
    let refused = std::cell::Cell::new(0u64);
    let sent = std::cell::Cell::new(0u64);
    // BAD_INPUT_TRACE=file writes every request and answer there.
    let trace = std::cell::RefCell::new(
        std::env::var_os("BAD_INPUT_TRACE").map(|path| std::fs::File::create(path).unwrap()),
    );
    // BAD_INPUT_KEEP_GOING=1 collects every violation instead of stopping
    // at the first one and shrinking it.
    let keep_going = std::env::var_os("BAD_INPUT_KEEP_GOING").is_some();
    let violations = std::cell::RefCell::new(Vec::<String>::new());
    let started = Instant::now();
    let result = runner.run(&case_strategy(&emulator.url), |case| {
        let answer = client.send(&case);
        sent.set(sent.get() + 1);
        if let Some(trace) = trace.borrow_mut().as_mut() {
            use std::io::Write;
            let text: String = answer.text.chars().take(300).collect();
            let _ = writeln!(trace, "{case:?}\n  -> {} {text}", answer.status);
        }
        *histogram.borrow_mut().entry(answer.status).or_default() += 1;
        *per_path
            .borrow_mut()
            .entry(format!("{:?} {}", case.method, case.pattern))
            .or_default() += 1;
        if answer.status == 404 && answer.body == json!({ "errors": [] }) {
            absent.set(absent.get() + 1);
        }
        if host_refused_path(&case, &answer) {
            refused.set(refused.get() + 1);
        }
        match check(&case, &answer) {
            Err(problem) if keep_going => {
                violations
                    .borrow_mut()
                    .push(format!("{problem}\n  for {case:?}"));
                Ok(())
            }
            other => other.map_err(TestCaseError::fail),
        }
    });
    let elapsed = started.elapsed();

    println!(
        "bad input: {} requests in {:.1}s ({} generated cases, seed {:#x})",
        sent.get(),
        elapsed.as_secs_f64(),
        cases,
        run_seed()
    );
    println!("status histogram: {:?}", histogram.borrow());
    println!(
        "of the 404s, {} are reads/lists of a missing object (empty error list, as Vault answers)",
        absent.get()
    );
    println!(
        "of the 400s, {} are OpenBao's own empty answer to a path with a non-printable character",
        refused.get()
    );
    println!("requests per path and method: {:?}", per_path.borrow());
    let violations = violations.into_inner();
    assert!(
        violations.is_empty(),
        "{} violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
    if let Err(failure) = result {
        panic!("{failure}\nserver log: {}", server.log_path().display());
    }

    // The same process served everything, and nothing panicked in it.
    assert_eq!(
        server.plugin_pids(),
        pids,
        "the plugin process was restarted"
    );
    let log = server.server_log();
    let panics: Vec<&str> = log
        .lines()
        .filter(|line| line.to_ascii_lowercase().contains("panic"))
        .collect();
    assert!(
        panics.is_empty(),
        "panics in the server log:\n{}",
        panics.join("\n")
    );
    // Every operation of every path got its share.
    let per_path = per_path.into_inner();
    for path in engine::paths() {
        for spec in &path.operations {
            if let Some(method) = Method::of(spec.operation) {
                let key = format!("{method:?} {}", path.pattern);
                assert!(
                    per_path.get(&key).is_some_and(|n| *n >= 10),
                    "{key} got {:?} requests",
                    per_path.get(&key)
                );
            }
        }
    }
    // And it still serves the roles it was set up with.
    for role in ["rot-pol", "rot-dcs", "rot-ext"] {
        let reply = server.read(&format!("{MOUNT}/static-roles/{role}"));
        assert_eq!(reply.status, 200, "{role}: {reply:?}");
    }
}
