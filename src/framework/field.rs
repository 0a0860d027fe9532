//! Typed field schemas and the coercion of raw request values into them.
//! The CLI sends every value as a string (`ttl=24h`, `enabled=true`,
//! `dependents=a,b`), JSON clients send native types; both must land on the
//! same typed value, and anything else is a 400 that names the field.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{Map, Value};

use super::duration;
use super::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Bool,
    Int,
    /// Seconds, or a Go-style duration string.
    Duration,
    /// A list of strings; a single string is split on commas.
    StringList,
    /// A string-to-string map: a JSON object, `k=v` pairs, or a list of them.
    Map,
}

impl FieldType {
    pub fn describe(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Bool => "boolean",
            Self::Int => "integer",
            Self::Duration => "duration",
            Self::StringList => "list of strings",
            Self::Map => "map of strings",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: &'static str,
    pub kind: FieldType,
    pub description: &'static str,
    pub default: Option<Value>,
    /// Must be given when the object is created.
    pub required: bool,
    /// Write-only: shown masked in UIs and never returned.
    pub sensitive: bool,
    /// For strings: the only accepted values.
    pub allowed: &'static [&'static str],
    /// For strings: the longest accepted value, in characters.
    pub max_len: usize,
}

/// Generous default bound: long enough for any real value, short enough that
/// a hostile megabyte string is refused with a message.
pub const DEFAULT_MAX_LEN: usize = 4096;

impl Field {
    fn new(name: &'static str, kind: FieldType, description: &'static str) -> Self {
        Self {
            name,
            kind,
            description,
            default: None,
            required: false,
            sensitive: false,
            allowed: &[],
            max_len: DEFAULT_MAX_LEN,
        }
    }

    pub fn string(name: &'static str, description: &'static str) -> Self {
        Self::new(name, FieldType::String, description)
    }

    pub fn bool(name: &'static str, description: &'static str) -> Self {
        Self::new(name, FieldType::Bool, description)
    }

    pub fn int(name: &'static str, description: &'static str) -> Self {
        Self::new(name, FieldType::Int, description)
    }

    pub fn duration(name: &'static str, description: &'static str) -> Self {
        Self::new(name, FieldType::Duration, description)
    }

    pub fn list(name: &'static str, description: &'static str) -> Self {
        Self::new(name, FieldType::StringList, description)
    }

    pub fn map(name: &'static str, description: &'static str) -> Self {
        Self::new(name, FieldType::Map, description)
    }

    pub fn default(mut self, value: impl Into<Value>) -> Self {
        self.default = Some(value.into());
        self
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    pub fn one_of(mut self, allowed: &'static [&'static str]) -> Self {
        self.allowed = allowed;
        self
    }

    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Coerces a raw value to this field's type, or says what is wrong.
    pub fn coerce(&self, raw: &Value) -> Result<FieldValue, Error> {
        let value = match self.kind {
            FieldType::String => coerce_string(raw).map(FieldValue::Str),
            FieldType::Bool => coerce_bool(raw).map(FieldValue::Bool),
            FieldType::Int => coerce_int(raw).map(FieldValue::Int),
            FieldType::Duration => coerce_duration(raw).map(FieldValue::Duration),
            FieldType::StringList => coerce_list(raw).map(FieldValue::List),
            FieldType::Map => coerce_map(raw).map(FieldValue::Map),
        }
        .map_err(|problem| self.invalid(&problem))?;
        self.check_bounds(&value)?;
        Ok(value)
    }

    fn check_bounds(&self, value: &FieldValue) -> Result<(), Error> {
        let too_long = |s: &str| s.chars().count() > self.max_len;
        match value {
            FieldValue::Str(s) => {
                if too_long(s) {
                    return Err(
                        self.invalid(&format!("is longer than {} characters", self.max_len))
                    );
                }
                if !self.allowed.is_empty() && !self.allowed.contains(&s.as_str()) {
                    return Err(self.invalid(&format!(
                        "must be one of {}, got {}",
                        self.allowed.join(", "),
                        quote(s)
                    )));
                }
            }
            FieldValue::List(items)
                if items.iter().any(|s| too_long(s)) || items.len() > self.max_len =>
            {
                return Err(self.invalid(&format!(
                    "has an item longer than {} characters or too many items",
                    self.max_len
                )));
            }
            FieldValue::Map(map) if map.iter().any(|(k, v)| too_long(k) || too_long(v)) => {
                return Err(self.invalid(&format!(
                    "has an entry longer than {} characters",
                    self.max_len
                )));
            }
            _ => {}
        }
        Ok(())
    }

    pub fn invalid(&self, problem: &str) -> Error {
        Error::bad_request(format!(
            "invalid value for field {:?} ({}): {problem}",
            self.name,
            self.kind.describe()
        ))
    }
}

/// A value coerced to its field's type.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Str(String),
    Bool(bool),
    Int(i64),
    Duration(Duration),
    List(Vec<String>),
    Map(BTreeMap<String, String>),
}

impl FieldValue {
    pub fn to_json(&self) -> Value {
        match self {
            Self::Str(s) => Value::from(s.as_str()),
            Self::Bool(b) => Value::from(*b),
            Self::Int(i) => Value::from(*i),
            Self::Duration(d) => Value::from(d.as_secs()),
            Self::List(items) => Value::from(items.clone()),
            Self::Map(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect(),
            ),
        }
    }
}

/// Longest part of a value an error message quotes, in characters.
const QUOTED_CHARS: usize = 64;
/// Most unknown keys an error message names.
const MAX_QUOTED_KEYS: usize = 10;

/// A value as error messages quote it: cut to its start, so a hostile
/// megabyte is not echoed back to the client and into the host's logs.
pub(crate) fn quote(value: &str) -> String {
    let count = value.chars().count();
    if count <= QUOTED_CHARS {
        return format!("{value:?}");
    }
    let start: String = value.chars().take(QUOTED_CHARS).collect();
    format!("{start:?}... ({count} characters)")
}

fn kind_of(raw: &Value) -> &'static str {
    match raw {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn coerce_string(raw: &Value) -> Result<String, String> {
    match raw {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("expected a string, got {}", kind_of(other))),
    }
}

fn coerce_bool(raw: &Value) -> Result<bool, String> {
    match raw {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        Value::String(s) => match s.trim() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            _ => Err(format!("expected true or false, got {}", quote(s))),
        },
        other => Err(format!("expected true or false, got {}", kind_of(other))),
    }
}

fn coerce_int(raw: &Value) -> Result<i64, String> {
    match raw {
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(i),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
            _ => Err(format!("expected a whole number, got {n}")),
        },
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("expected a whole number, got {}", quote(s))),
        other => Err(format!("expected a whole number, got {}", kind_of(other))),
    }
}

fn coerce_duration(raw: &Value) -> Result<Duration, String> {
    let explain = |problem: String| {
        format!("{problem}; use seconds (3600) or a duration such as 90s, 30m, 24h, 7d")
    };
    match raw {
        Value::Number(_) => duration::from_seconds(coerce_int(raw)?).map_err(explain),
        Value::String(s) => duration::parse(s).map_err(|p| explain(format!("{} {p}", quote(s)))),
        other => Err(explain(format!(
            "expected a duration, got {}",
            kind_of(other)
        ))),
    }
}

fn coerce_list(raw: &Value) -> Result<Vec<String>, String> {
    match raw {
        Value::String(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.trim().to_owned()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(format!(
                    "expected a list of strings, found {} in it",
                    kind_of(other)
                )),
            })
            .filter(|item| !matches!(item, Ok(s) if s.is_empty()))
            .collect(),
        Value::Null => Ok(Vec::new()),
        other => Err(format!(
            "expected a list or a comma-separated string, got {}",
            kind_of(other)
        )),
    }
}

fn coerce_map(raw: &Value) -> Result<BTreeMap<String, String>, String> {
    fn pairs<'a>(items: impl Iterator<Item = &'a str>) -> Result<BTreeMap<String, String>, String> {
        let mut map = BTreeMap::new();
        for item in items.map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got {}", quote(item)))?;
            map.insert(key.trim().to_owned(), value.trim().to_owned());
        }
        Ok(map)
    }
    match raw {
        Value::Object(object) => object
            .iter()
            .map(|(k, v)| {
                coerce_string(v)
                    .map(|v| (k.clone(), v))
                    .map_err(|e| format!("entry {}: {e}", quote(k)))
            })
            .collect(),
        Value::String(s) if s.trim_start().starts_with('{') => {
            let parsed: Value =
                serde_json::from_str(s).map_err(|e| format!("not a valid JSON object: {e}"))?;
            coerce_map(&parsed)
        }
        Value::String(s) => pairs(s.split(',')),
        Value::Array(items) => {
            let strings: Result<Vec<&str>, String> = items
                .iter()
                .map(|item| {
                    item.as_str().ok_or_else(|| {
                        format!("expected key=value strings, found {}", kind_of(item))
                    })
                })
                .collect();
            pairs(strings?.into_iter())
        }
        Value::Null => Ok(BTreeMap::new()),
        other => Err(format!(
            "expected an object or key=value pairs, got {}",
            kind_of(other)
        )),
    }
}

/// The typed values of a request, per the path's schema: what handlers read.
#[derive(Debug, Clone, Default)]
pub struct FieldData {
    values: HashMap<&'static str, FieldValue>,
    provided: Vec<&'static str>,
    /// The schema's field names, so debug builds catch a handler asking for
    /// a field its path never declared (a typo would otherwise read as absent).
    declared: Vec<&'static str>,
}

impl FieldData {
    /// Coerces `raw` against `schema`. Captured path segments are given in
    /// `captures` and win over body values of the same name. With
    /// `reject_unknown`, a key outside the schema is a 400 (a typo in a
    /// write must not be silently ignored).
    pub fn parse(
        schema: &[Field],
        raw: &Map<String, Value>,
        captures: &[(&'static str, String)],
        reject_unknown: bool,
    ) -> Result<Self, Error> {
        if reject_unknown {
            let mut unknown: Vec<&str> = raw
                .keys()
                .map(String::as_str)
                .filter(|k| !schema.iter().any(|f| f.name == *k))
                .collect();
            if !unknown.is_empty() {
                unknown.sort_unstable();
                let valid: Vec<&str> = schema.iter().map(|f| f.name).collect();
                let mut named: Vec<String> = unknown
                    .iter()
                    .take(MAX_QUOTED_KEYS)
                    .map(|k| quote(k))
                    .collect();
                if unknown.len() > MAX_QUOTED_KEYS {
                    named.push(format!("and {} more", unknown.len() - MAX_QUOTED_KEYS));
                }
                return Err(Error::bad_request(format!(
                    "unknown field(s) {}; valid fields here are: {}",
                    named.join(", "),
                    valid.join(", ")
                )));
            }
        }
        let mut data = Self {
            declared: schema.iter().map(|f| f.name).collect(),
            ..Self::default()
        };
        for field in schema {
            let captured = captures.iter().find(|(name, _)| *name == field.name);
            let value = match (captured, raw.get(field.name)) {
                (Some((_, segment)), _) => Some(field.coerce(&Value::from(segment.as_str()))?),
                (None, Some(raw_value)) => Some(field.coerce(raw_value)?),
                (None, None) => None,
            };
            match value {
                Some(value) => {
                    data.provided.push(field.name);
                    data.values.insert(field.name, value);
                }
                None => {
                    if let Some(default) = &field.default {
                        data.values.insert(field.name, field.coerce(default)?);
                    }
                }
            }
        }
        Ok(data)
    }

    /// Whether the request itself carried this field (defaults do not count).
    pub fn provided(&self, name: &str) -> bool {
        self.assert_declared(name);
        self.provided.contains(&name)
    }

    pub fn value(&self, name: &str) -> Option<&FieldValue> {
        self.assert_declared(name);
        self.values.get(name)
    }

    fn assert_declared(&self, name: &str) {
        debug_assert!(
            self.declared.contains(&name),
            "handler reads field {name:?}, which its path does not declare (declared: {:?})",
            self.declared
        );
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        match self.value(name) {
            Some(FieldValue::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.value(name) {
            Some(FieldValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        match self.value(name) {
            Some(FieldValue::Int(i)) => Some(*i),
            _ => None,
        }
    }

    pub fn duration(&self, name: &str) -> Option<Duration> {
        match self.value(name) {
            Some(FieldValue::Duration(d)) => Some(*d),
            _ => None,
        }
    }

    pub fn list(&self, name: &str) -> Option<&[String]> {
        match self.value(name) {
            Some(FieldValue::List(items)) => Some(items),
            _ => None,
        }
    }

    pub fn map(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        match self.value(name) {
            Some(FieldValue::Map(map)) => Some(map),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Vec<Field> {
        vec![
            Field::string("name", "the name"),
            Field::string("provider", "cloud").one_of(&["alicloud", "huaweicloud"]),
            Field::bool("verify", "verify").default(true),
            Field::int("retries", "retries").default(3),
            Field::duration("period", "period"),
            Field::list("roles", "roles"),
            Field::map("endpoints", "endpoints"),
        ]
    }

    fn parse(raw: Value) -> Result<FieldData, Error> {
        FieldData::parse(&schema(), raw.as_object().unwrap(), &[], true)
    }

    #[test]
    fn cli_strings_coerce_like_json_values() {
        let from_cli = parse(json!({
            "verify": "false", "retries": "5", "period": "24h", "roles": "a, b,,c",
            "endpoints": "polardb=http://x:1,dts=http://y:2"
        }))
        .unwrap();
        let from_json = parse(json!({
            "verify": false, "retries": 5, "period": 86400, "roles": ["a", "b", "c"],
            "endpoints": {"polardb": "http://x:1", "dts": "http://y:2"}
        }))
        .unwrap();
        for data in [&from_cli, &from_json] {
            assert_eq!(data.bool("verify"), Some(false));
            assert_eq!(data.int("retries"), Some(5));
            assert_eq!(data.duration("period"), Some(Duration::from_secs(86_400)));
            assert_eq!(data.list("roles").unwrap(), ["a", "b", "c"]);
            assert_eq!(data.map("endpoints").unwrap()["dts"], "http://y:2");
        }
        let repeated_cli_key =
            parse(json!({"endpoints": ["polardb=http://x:1", "dts=http://y:2"]})).unwrap();
        assert_eq!(
            repeated_cli_key.map("endpoints"),
            from_json.map("endpoints")
        );
        let json_text = parse(json!({"endpoints": "{\"dts\": \"http://y:2\"}"})).unwrap();
        assert_eq!(json_text.map("endpoints").unwrap()["dts"], "http://y:2");
    }

    #[test]
    fn defaults_fill_in_but_do_not_count_as_provided() {
        let data = parse(json!({"period": "90s"})).unwrap();
        assert_eq!(data.bool("verify"), Some(true));
        assert!(!data.provided("verify"));
        assert!(data.provided("period"));
        assert_eq!(data.str("provider"), None);
    }

    #[test]
    fn bad_values_name_the_field_and_the_fix() {
        let message = |raw: Value| parse(raw).unwrap_err().to_string();
        let m = message(json!({"verify": "maybe"}));
        assert!(
            m.contains("\"verify\"") && m.contains("true or false"),
            "{m}"
        );
        let m = message(json!({"retries": "3.5"}));
        assert!(
            m.contains("\"retries\"") && m.contains("whole number"),
            "{m}"
        );
        let m = message(json!({"period": "-5m"}));
        assert!(m.contains("\"period\"") && m.contains("negative"), "{m}");
        let m = message(json!({"period": "5 parsecs"}));
        assert!(m.contains("\"period\"") && m.contains("24h"), "{m}");
        let m = message(json!({"provider": "aws"}));
        assert!(m.contains("alicloud, huaweicloud"), "{m}");
        let m = message(json!({"name": "x".repeat(5000)}));
        assert!(m.contains("longer than 4096"), "{m}");
        let m = message(json!({"endpoints": "polardb"}));
        assert!(m.contains("key=value"), "{m}");
        let m = message(json!({"roles": {"a": 1}}));
        assert!(m.contains("\"roles\""), "{m}");
        assert!(matches!(
            parse(json!({"name": "x".repeat(5000)})),
            Err(Error::BadRequest(_))
        ));
    }

    #[test]
    fn messages_quote_only_the_start_of_huge_values() {
        // Found by tests/e2e_bad_input.rs: a 1 MB string in a boolean field
        // came back whole in the 400 message (and in the host's logs).
        let huge = "x".repeat(1 << 20);
        for raw in [
            json!({ "verify": huge }),
            json!({ "retries": huge }),
            json!({ "period": huge }),
            json!({ "provider": huge }),
            json!({ "endpoints": huge }),
        ] {
            let m = parse(raw).unwrap_err().to_string();
            assert!(m.len() < 400, "{} bytes: {}", m.len(), &m[..200]);
            assert!(
                m.contains("(1048576 characters)") || m.contains("longer than"),
                "{m}"
            );
        }
        let many: Map<String, Value> = (0..5000).map(|i| (format!("k{i}"), json!(1))).collect();
        let m = FieldData::parse(&schema(), &many, &[], true)
            .unwrap_err()
            .to_string();
        assert!(m.len() < 400 && m.contains("and 4990 more"), "{m}");
    }

    #[test]
    fn unknown_fields_are_rejected_with_the_valid_list() {
        let m = parse(json!({"perod": "1h"})).unwrap_err().to_string();
        assert!(m.contains("\"perod\"") && m.contains("period"), "{m}");
        let lenient = FieldData::parse(
            &schema(),
            json!({"perod": "1h"}).as_object().unwrap(),
            &[],
            false,
        );
        assert!(lenient.is_ok());
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "handler reads field \"perod\", which its path does not declare")]
    fn reading_an_undeclared_field_fails_in_debug_builds() {
        let data = parse(json!({"period": "1h"})).unwrap();
        data.duration("perod");
    }

    #[test]
    fn captures_win_over_body_values() {
        let data = FieldData::parse(
            &schema(),
            json!({"name": "from-body"}).as_object().unwrap(),
            &[("name", "from-path".to_owned())],
            true,
        )
        .unwrap();
        assert_eq!(data.str("name"), Some("from-path"));
    }
}
