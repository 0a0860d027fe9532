//! The declarative path table: a pattern with named captures, typed fields,
//! per-operation handlers, an existence check and help text, side by side.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::error::Error;
use super::field::{Field, FieldData};
use super::operation::Operation;
use super::request::Request;
use super::response::Response;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
pub type HandlerResult = Result<Option<Response>, Error>;
pub type Handler<S> =
    for<'a> fn(&'a Arc<S>, &'a Request, &'a FieldData) -> BoxFuture<'a, HandlerResult>;
/// Captured path segments, by capture name.
pub type Captures = Vec<(&'static str, String)>;
pub type ExistenceCheck<S> =
    for<'a> fn(&'a Arc<S>, &'a Request, &'a FieldData) -> BoxFuture<'a, Result<bool, Error>>;

/// Wraps an `async fn(&Arc<S>, &Request, &FieldData) -> T` into the
/// function-pointer type the path table stores.
#[macro_export]
macro_rules! handler {
    ($f:path) => {
        |state, request, data| Box::pin($f(state, request, data))
    };
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(&'static str),
    Capture(&'static str),
}

pub struct OperationSpec<S> {
    pub operation: Operation,
    pub summary: &'static str,
    pub handler: Handler<S>,
}

pub struct Path<S> {
    pub pattern: &'static str,
    segments: Vec<Segment>,
    pub fields: Vec<Field>,
    pub operations: Vec<OperationSpec<S>>,
    pub existence_check: Option<ExistenceCheck<S>>,
    pub synopsis: &'static str,
    pub description: &'static str,
}

/// Names (of roles, connections...) as Vault's generic name rule allows.
pub const MAX_NAME_LEN: usize = 128;

pub fn validate_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let first = name.chars().next();
    let last = name.chars().last();
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || !name.chars().all(ok_char)
        || !first.is_some_and(|c| c.is_ascii_alphanumeric())
        || !last.is_some_and(|c| c.is_ascii_alphanumeric())
    {
        return Err(format!(
            "invalid name {}: use letters, digits, '-', '_' and '.', start and end with a letter or digit, at most {MAX_NAME_LEN} characters",
            super::field::quote(name)
        ));
    }
    Ok(())
}

impl<S> Path<S> {
    /// `pattern` is `/`-separated literals and `{capture}` segments; a
    /// trailing `/` marks a list path. Each capture needs a field.
    pub fn new(pattern: &'static str) -> Self {
        let segments = pattern
            .trim_end_matches('/')
            .split('/')
            .map(
                |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => Segment::Capture(name),
                    None => Segment::Literal(segment),
                },
            )
            .collect();
        Self {
            pattern,
            segments,
            fields: Vec::new(),
            operations: Vec::new(),
            existence_check: None,
            synopsis: "",
            description: "",
        }
    }

    pub fn fields(mut self, fields: impl IntoIterator<Item = Field>) -> Self {
        self.fields.extend(fields);
        self
    }

    pub fn on(mut self, operation: Operation, summary: &'static str, handler: Handler<S>) -> Self {
        self.operations.push(OperationSpec {
            operation,
            summary,
            handler,
        });
        self
    }

    pub fn existence(mut self, check: ExistenceCheck<S>) -> Self {
        self.existence_check = Some(check);
        self
    }

    pub fn help(mut self, synopsis: &'static str, description: &'static str) -> Self {
        self.synopsis = synopsis;
        self.description = description;
        self
    }

    pub fn captures(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Capture(name) => Some(*name),
            Segment::Literal(_) => None,
        })
    }

    /// The captured segments if `path` matches this pattern. A trailing
    /// slash on either side is ignored, as Vault's `?$` patterns do.
    pub fn matches(&self, path: &str) -> Option<Captures> {
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut captures = Vec::new();
        for (segment, part) in self.segments.iter().zip(parts) {
            match segment {
                Segment::Literal(literal) if *literal == part => {}
                Segment::Capture(name) if !part.is_empty() => {
                    captures.push((*name, part.to_owned()))
                }
                _ => return None,
            }
        }
        Some(captures)
    }

    pub fn operation(&self, operation: Operation) -> Option<&OperationSpec<S>> {
        self.operations
            .iter()
            .find(|spec| spec.operation == operation)
    }

    /// The path as OpenAPI writes it: `/config/{name}`.
    pub fn openapi_path(&self) -> String {
        format!("/{}", self.pattern)
    }

    pub fn is_list(&self) -> bool {
        self.pattern.ends_with('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_literals_captures_and_list_paths() {
        let named: Path<()> = Path::new("config/{name}");
        assert_eq!(
            named.matches("config/db1"),
            Some(vec![("name", "db1".to_owned())])
        );
        assert_eq!(
            named.matches("config/db1/"),
            Some(vec![("name", "db1".to_owned())])
        );
        assert_eq!(named.matches("config/"), None);
        assert_eq!(named.matches("config/a/b"), None);
        assert_eq!(named.matches("other/db1"), None);
        let list: Path<()> = Path::new("config/");
        assert_eq!(list.matches("config/"), Some(vec![]));
        assert_eq!(list.matches("config"), Some(vec![]));
        assert!(list.is_list() && !named.is_list());
        assert_eq!(named.captures().collect::<Vec<_>>(), vec!["name"]);
    }

    #[test]
    fn names_follow_the_generic_rule() {
        for good in ["a", "team-a_db.1", "A9"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "a-", "a b", "a/b", "é", &"a".repeat(129)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        // Found by tests/e2e_bad_input.rs: a 2000-character name came back
        // whole in the message.
        let long = validate_name(&"b".repeat(2000)).unwrap_err();
        assert!(
            long.len() < 300 && long.contains("(2000 characters)"),
            "{long}"
        );
    }
}
