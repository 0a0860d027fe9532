//! Log lines on stderr in hclog's JSON shape, which the host parses and
//! re-logs at the right level under its plugin logger: `@level`,
//! `@message`, `@timestamp` with exactly six fractional digits, then the
//! event's fields as key/value pairs.

use std::io::Write;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// `2006-01-02T15:04:05.000000Z07:00` in Go's notation, always UTC.
const TIMESTAMP: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// Where the level comes from: `CLOUDROTATE_LOG_LEVEL` (trace, debug,
/// info, warn, error). Unset, every line of ours is written and the host
/// keeps what its own `log_level` allows, as it does for Go plugins (the
/// Go SDK logs at trace): a host at debug shows our debug lines with no
/// setting here.
pub const LEVEL_ENV: &str = "CLOUDROTATE_LOG_LEVEL";

/// The crates whose events are ours; every other target is a library.
const OUR_TARGETS: [&str; 2] = ["cloudrotate", "vault_plugin_secrets_cloudrotate"];

/// What is written: our events down to `ours`, the libraries' (HTTP/2
/// frames, hyper, tonic, TLS, yamux) down to `libraries`.
#[derive(Debug, PartialEq, Eq)]
struct Levels {
    ours: LevelFilter,
    libraries: LevelFilter,
}

/// The libraries' debug events are per-frame transport traces (88% of all
/// lines at debug before they were kept back): they are written only when
/// the setting is `trace`, and then as trace lines (`reported_level`).
fn levels(setting: Option<&str>) -> Levels {
    match setting.and_then(|v| v.trim().parse::<LevelFilter>().ok()) {
        None => Levels {
            ours: LevelFilter::TRACE,
            libraries: LevelFilter::INFO,
        },
        Some(LevelFilter::TRACE) => Levels {
            ours: LevelFilter::TRACE,
            libraries: LevelFilter::TRACE,
        },
        Some(level) => Levels {
            ours: level,
            libraries: level.min(LevelFilter::INFO),
        },
    }
}

fn is_ours(target: &str) -> bool {
    OUR_TARGETS
        .iter()
        .any(|ours| target == *ours || target.starts_with(&format!("{ours}::")))
}

/// A library's debug event is a transport trace: reported at trace.
fn reported_level(target: &str, level: Level) -> Level {
    if level > Level::INFO && !is_ours(target) {
        Level::TRACE
    } else {
        level
    }
}

pub fn init() {
    let levels = levels(std::env::var(LEVEL_ENV).ok().as_deref());
    let filter = OUR_TARGETS.iter().fold(
        Targets::new().with_default(levels.libraries),
        |filter, ours| filter.with_target(*ours, levels.ours),
    );
    let _ = tracing_subscriber::registry()
        .with(Hclog.with_filter(filter))
        .try_init();
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "panic");
    }));
}

struct Hclog;

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    pairs: Map<String, Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_value(field, Value::from(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_value(field, Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_value(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record_value(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record_value(field, Value::from(value));
    }
}

impl Fields {
    fn record_value(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
        } else {
            self.pairs.insert(field.name().to_owned(), value);
        }
    }
}

/// One JSON line for `event` at `at`.
fn line(level: &Level, fields: Fields, at: OffsetDateTime) -> Vec<u8> {
    let mut entry = Map::new();
    entry.insert("@level".into(), level_name(level).into());
    entry.insert("@message".into(), fields.message.into());
    let timestamp = at.format(TIMESTAMP).unwrap_or_default();
    entry.insert("@timestamp".into(), timestamp.into());
    for (key, value) in fields.pairs {
        entry.entry(key).or_insert(value);
    }
    let mut bytes = serde_json::to_vec(&Value::Object(entry)).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

impl<S: Subscriber> Layer<S> for Hclog {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let metadata = event.metadata();
        let level = reported_level(metadata.target(), *metadata.level());
        let bytes = line(&level, fields, OffsetDateTime::now_utc());
        // One write per line, so concurrent events never interleave.
        let _ = std::io::stderr().lock().write_all(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn lines_have_hclog_keys_and_six_fraction_digits() {
        let mut fields = Fields {
            message: "mount set up".into(),
            ..Fields::default()
        };
        fields.pairs.insert("role".into(), "app".into());
        fields.pairs.insert("@level".into(), "spoofed".into());
        let at = datetime!(2026-12-01 21:07:53.1 UTC);
        let bytes = line(&Level::WARN, fields, at);
        assert_eq!(bytes.last(), Some(&b'\n'));
        let entry: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(entry["@level"], "warn");
        assert_eq!(entry["@message"], "mount set up");
        assert_eq!(entry["@timestamp"], "2026-12-01T21:07:53.100000Z");
        assert_eq!(entry["role"], "app");
    }

    #[test]
    fn unset_writes_all_of_ours_and_library_debug_only_at_trace() {
        let unset = levels(None);
        assert_eq!(
            unset.ours,
            LevelFilter::TRACE,
            "the host filters, as for Go plugins"
        );
        assert_eq!(unset.libraries, LevelFilter::INFO);
        assert_eq!(levels(Some("nonsense")), unset);
        let debug = levels(Some("debug"));
        assert_eq!(debug.ours, LevelFilter::DEBUG);
        assert_eq!(
            debug.libraries,
            LevelFilter::INFO,
            "no HTTP/2 frames at debug"
        );
        let trace = levels(Some(" trace "));
        assert_eq!(trace.libraries, LevelFilter::TRACE);
        let warn = levels(Some("warn"));
        assert_eq!(
            (warn.ours, warn.libraries),
            (LevelFilter::WARN, LevelFilter::WARN)
        );
    }

    #[test]
    fn library_debug_is_reported_as_trace_and_ours_keeps_its_level() {
        assert_eq!(
            reported_level("h2::codec::framed_write", Level::DEBUG),
            Level::TRACE
        );
        assert_eq!(
            reported_level("hyper_util::client", Level::TRACE),
            Level::TRACE
        );
        assert_eq!(reported_level("tonic::transport", Level::WARN), Level::WARN);
        assert_eq!(
            reported_level("cloudrotate::providers::retry", Level::DEBUG),
            Level::DEBUG
        );
        assert_eq!(reported_level("cloudrotate", Level::DEBUG), Level::DEBUG);
        // A library whose name merely starts like ours is still a library.
        assert_eq!(
            reported_level("cloudrotate_extra", Level::DEBUG),
            Level::TRACE
        );
    }
}
