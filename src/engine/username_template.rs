//! Username templates of dynamic accounts, in the syntax of Vault's
//! `sdk/helper/template` (Go `text/template` with Vault's helpers), so a
//! template from Vault's database engine works here unchanged.
//!
//! Supported: literal text; `{{ }}` actions with `{{- ` / ` -}}` trim
//! markers and `{{/* comments */}}`; the fields `.RoleName` and
//! `.DisplayName`; quoted strings (Go escapes, and raw `` `strings` ``),
//! decimal integers; calls, `( )` and pipelines `a | f x` (the value goes
//! last: `f x a`); `printf` with `%s`, `%d`, `%%`; and Vault's helpers
//! `random`, `truncate`, `truncate_sha256`, `uppercase`, `lowercase`,
//! `replace`, `sha256`, `base64`, `unix_time`, `unix_time_millis`,
//! `timestamp` and `uuid`. Control actions, variables and other Go
//! built-ins are refused with a message that says so.
//!
//! Pure: rendering takes the time and a random source, so tests are exact.
//! `accounts` holds the name rules of each target, the default templates
//! and the write-time check.

mod accounts;
mod layout;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::{OffsetDateTime, UtcOffset};

pub(crate) use accounts::{AccountKind, NameError, check_template};
// The engine renders through a parsed `Template` (parsed once per read).
#[cfg(test)]
pub(crate) use accounts::render_username;

/// What a template can read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TemplateData<'a> {
    pub role_name: &'a str,
    /// The request's `display_name` (a token's, e.g. `token` or
    /// `userpass-alice`): any text, so templates must tame it.
    pub display_name: &'a str,
}

/// A template that is not well formed, or calls something wrongly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParseError {
    /// Byte offset in the template.
    pub offset: usize,
    pub message: String,
    /// The template from `offset` on, shortened.
    excerpt: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (message, offset) = (&self.message, self.offset);
        if self.excerpt.is_empty() {
            write!(f, "{message} (at byte {offset}, the end of the template)")
        } else {
            write!(f, "{message} (at byte {offset}: {:?})", self.excerpt)
        }
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    fn new(src: &str, offset: usize, message: impl Into<String>) -> Self {
        let offset = offset.min(src.len());
        let rest = src.get(offset..).unwrap_or("");
        let mut excerpt: String = rest.chars().take(24).collect();
        if excerpt.len() < rest.len() {
            excerpt.push('…');
        }
        Self {
            offset,
            message: message.into(),
            excerpt,
        }
    }
}

/// Rendering failed. Types and lengths are checked when parsing, so only
/// runaway growth is left (e.g. `replace "" "xx"` in a chain).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RenderError {
    #[error("a value grew past {MAX_VALUE_LEN} bytes while rendering")]
    TooLong,
}

/// Bound on every value and on the result: names are at most 64
/// characters, and this keeps a template from building huge strings.
const MAX_VALUE_LEN: usize = 64 * 1024;

/// Why a template cannot name accounts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TemplateError {
    #[error("invalid username_template: {0}")]
    Parse(#[from] ParseError),
    #[error("username_template: {0}")]
    Render(#[from] RenderError),
    #[error("username_template {0}")]
    Name(#[from] NameError),
    /// The write-time check's sample that broke a rule.
    #[error("{error} (rendered for role name {role_name:?} and display name {display_name:?})")]
    Sample {
        role_name: String,
        display_name: String,
        error: Box<TemplateError>,
    },
}

/// A parsed, checked template.
#[derive(Clone, Debug)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

#[derive(Clone, Debug)]
enum Piece {
    Text(String),
    Value(Expr),
}

/// A string-valued expression; integers exist only as checked arguments.
#[derive(Clone, Debug)]
enum Expr {
    Lit(String),
    Field(Field),
    Call(Call),
    Printf(Vec<Fmt>),
}

#[derive(Clone, Copy, Debug)]
enum Field {
    RoleName,
    DisplayName,
}

/// A piece of printf's output, its value inlined.
#[derive(Clone, Debug)]
enum Fmt {
    Text(String),
    Str(Expr),
    Int(i64),
}

#[derive(Clone, Debug)]
enum Call {
    Random(usize),
    Truncate(usize, Box<Expr>),
    TruncateSha256(usize, Box<Expr>),
    Uppercase(Box<Expr>),
    Lowercase(Box<Expr>),
    Replace {
        find: Box<Expr>,
        with: Box<Expr>,
        value: Box<Expr>,
    },
    Sha256(Box<Expr>),
    Base64(Box<Expr>),
    UnixTime,
    UnixTimeMillis,
    Timestamp(Box<Expr>),
    Uuid,
}

impl Template {
    pub(crate) fn parse(src: &str) -> Result<Self, ParseError> {
        parse::parse(src).map(|pieces| Self { pieces })
    }

    /// The template's text for `data`. All time helpers of one rendering
    /// see the same instant, `now`, in UTC; `random` and `uuid` draw from
    /// `rng` (a CSPRNG outside tests).
    pub(crate) fn render(
        &self,
        data: &TemplateData<'_>,
        now: OffsetDateTime,
        rng: &mut dyn RngCore,
    ) -> Result<String, RenderError> {
        let mut env = Env {
            data,
            now: now.to_offset(UtcOffset::UTC),
            rng,
        };
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Value(expr) => out.push_str(&env.eval(expr)?),
            }
            bounded(&out)?;
        }
        Ok(out)
    }
}

fn bounded(value: &str) -> Result<(), RenderError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(RenderError::TooLong);
    }
    Ok(())
}

struct Env<'e, 'd> {
    data: &'e TemplateData<'d>,
    now: OffsetDateTime,
    rng: &'e mut dyn RngCore,
}

impl Env<'_, '_> {
    fn eval(&mut self, expr: &Expr) -> Result<String, RenderError> {
        let value = match expr {
            Expr::Lit(text) => text.clone(),
            Expr::Field(Field::RoleName) => self.data.role_name.to_owned(),
            Expr::Field(Field::DisplayName) => self.data.display_name.to_owned(),
            Expr::Call(call) => self.call(call)?,
            Expr::Printf(pieces) => {
                let mut out = String::new();
                for piece in pieces {
                    match piece {
                        Fmt::Text(text) => out.push_str(text),
                        Fmt::Str(expr) => out.push_str(&self.eval(expr)?),
                        Fmt::Int(n) => out.push_str(&n.to_string()),
                    }
                }
                out
            }
        };
        bounded(&value)?;
        Ok(value)
    }

    fn call(&mut self, call: &Call) -> Result<String, RenderError> {
        Ok(match call {
            Call::Random(n) => random(*n, self.rng),
            Call::Truncate(n, value) => truncate(*n, &self.eval(value)?).to_owned(),
            Call::TruncateSha256(n, value) => truncate_sha256(*n, &self.eval(value)?),
            // Unicode case mapping, as Go's; the two differ only on rare
            // letters (Rust's 'ß' upper-cases to "SS"), none of which a
            // valid account name holds.
            Call::Uppercase(value) => self.eval(value)?.to_uppercase(),
            Call::Lowercase(value) => self.eval(value)?.to_lowercase(),
            Call::Replace { find, with, value } => {
                let (find, with) = (self.eval(find)?, self.eval(with)?);
                let value = self.eval(value)?;
                // Each match can add `with`: bound the result before
                // building it (an empty `find` matches between characters).
                let matches = if find.is_empty() {
                    value.chars().count() + 1
                } else {
                    value.matches(find.as_str()).count()
                };
                if value.len() + matches.saturating_mul(with.len()) > MAX_VALUE_LEN {
                    return Err(RenderError::TooLong);
                }
                value.replace(find.as_str(), &with)
            }
            Call::Sha256(value) => hex::encode(Sha256::digest(self.eval(value)?)),
            Call::Base64(value) => {
                base64::engine::general_purpose::STANDARD.encode(self.eval(value)?)
            }
            Call::UnixTime => self.now.unix_timestamp().to_string(),
            // Go divides nanoseconds, truncating toward zero, as Rust does.
            Call::UnixTimeMillis => (self.now.unix_timestamp_nanos() / 1_000_000).to_string(),
            Call::Timestamp(layout) => layout::format(&self.eval(layout)?, self.now),
            Call::Uuid => uuid(self.rng),
        })
    }
}

/// Vault's base62 alphabet, in its order.
const BASE62: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `n` characters of base62 without bias: bytes from 248 (4 x 62) up are
/// dropped. Drawn in batches of n + n/4 bytes as Vault does, so the same
/// random bytes give Vault's string.
fn random(n: usize, rng: &mut dyn RngCore) -> String {
    let mut out = String::with_capacity(n);
    let mut batch = vec![0u8; n + n / 4];
    while out.len() < n {
        rng.fill_bytes(&mut batch);
        for &byte in &batch {
            if byte < 248 {
                out.push(char::from(BASE62[usize::from(byte % 62)]));
                if out.len() == n {
                    break;
                }
            }
        }
    }
    out
}

/// At most `n` bytes, as Vault counts, but never half a character: the
/// cut moves back to the last whole one, so the result may be shorter.
fn truncate(n: usize, value: &str) -> &str {
    &value[..value.floor_char_boundary(n)]
}

/// Vault's rule: a value longer than `n` bytes keeps its first n-8 and
/// ends with the first 8 hex digits of the SHA-256 of the rest. The cut
/// moves back to a character boundary, and the hash covers all it cut.
fn truncate_sha256(n: usize, value: &str) -> String {
    if value.len() <= n {
        return value.to_owned();
    }
    let cut = value.floor_char_boundary(n - 8);
    let hash = hex::encode(Sha256::digest(&value[cut..]));
    format!("{}{}", &value[..cut], &hash[..8])
}

/// A version 4 UUID. Vault's (`go-uuid`) leaves the version and variant
/// bits random; setting them keeps the shape and makes it a true v4.
fn uuid(rng: &mut dyn RngCore) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
