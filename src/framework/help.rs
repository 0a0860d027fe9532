//! Human-readable help for `path-help`, and the Markdown path reference.

use std::fmt::Write;

use serde_json::Value;

use super::field::{DEFAULT_MAX_LEN, Field, FieldType};
use super::operation::Operation;
use super::path::{MAX_NAME_LEN, Path};
use super::router::BackendInfo;

pub fn backend_help<S>(info: &BackendInfo, paths: &[Path<S>]) -> String {
    let mut out = format!("## DESCRIPTION\n\n{}\n\n## PATHS\n\n", info.help.trim());
    for path in paths {
        let _ = writeln!(out, "    {}\n        {}\n", path.pattern, path.synopsis);
    }
    out
}

pub fn path_help<S>(path: &Path<S>) -> String {
    let mut out = format!(
        "Request:        {}\n\n{}\n\n## PARAMETERS\n\n",
        path.pattern, path.synopsis
    );
    for field in &path.fields {
        let _ = writeln!(out, "{}", field_line(field, "    "));
    }
    let operations: Vec<&str> = path
        .operations
        .iter()
        .map(|spec| spec.operation.as_str())
        .collect();
    let _ = write!(
        out,
        "\n## OPERATIONS\n\n    {}\n\n## DESCRIPTION\n\n{}\n",
        operations.join(", "),
        path.description.trim()
    );
    out
}

fn field_line(field: &Field, indent: &str) -> String {
    let mut notes = Vec::new();
    if field.required {
        notes.push("required on create".to_owned());
    }
    if field.sensitive {
        notes.push("write-only".to_owned());
    }
    if let Some(default) = &field.default {
        notes.push(format!("default: {default}"));
    }
    if !field.allowed.is_empty() {
        notes.push(format!("one of: {}", field.allowed.join(", ")));
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!("; {}", notes.join("; "))
    };
    format!(
        "{indent}{} ({}{notes})\n{indent}    {}\n",
        field.name,
        field.kind.describe(),
        field.description
    )
}

/// The reference of every path, its operations and fields, in Markdown:
/// what `docs/reference.md` holds (`tests/docs_reference.rs` keeps it in
/// sync). Everything in it comes from the path table and the framework's
/// own rules, so it cannot drift from what the engine accepts.
pub fn reference_markdown<S>(info: &BackendInfo, paths: &[Path<S>]) -> String {
    let mut out = format!(
        "# API reference\n\n\
         <!-- Generated from the path table by framework::reference_markdown; do not edit by hand. \
         Regenerate with: UPDATE_DOCS=1 cargo test --test docs_reference -->\n\n\
         {}\n\n\
         Plugin version {}. Every path, operation and field below is generated from the engine's path table \
         (`engine::paths()`), and a test fails when this file and the table disagree. Paths are relative to the \
         mount; these documents mount the engine at `database/`, so `config/{{name}}` is called as \
         `database/config/<name>`.\n",
        text(info.help.trim()),
        info.version
    );
    out.push_str(&conventions());
    out.push_str("\n## Paths\n\n| path | operations | what it is |\n|---|---|---|\n");
    for path in paths {
        let _ = writeln!(
            out,
            "| [`{}`](#{}) | {} | {} |",
            path.pattern,
            anchor(path.pattern),
            operation_names(path).join(", "),
            cell(path.synopsis)
        );
    }
    for path in paths {
        let _ = write!(
            out,
            "\n<a id=\"{}\"></a>\n\n## `{}`\n\n{}\n\n{}\n",
            anchor(path.pattern),
            path.pattern,
            text(path.synopsis),
            text(path.description.trim())
        );
        out.push_str("\n| operation | call | summary |\n|---|---|---|\n");
        for spec in &path.operations {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                spec.operation.as_str(),
                call(spec.operation),
                cell(spec.summary)
            );
        }
        if path.existence_check.is_some() {
            out.push_str(
                "\nA write is a create when the object does not exist yet (fields marked *required on create* \
                 must be given) and an update when it does (only the fields given change).\n",
            );
        }
        if !path.fields.is_empty() {
            let captures: Vec<&str> = path.captures().collect();
            out.push_str("\n| field | type | notes | description |\n|---|---|---|---|\n");
            for field in &path.fields {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {} |",
                    field.name,
                    field.kind.describe(),
                    reference_notes(field, captures.contains(&field.name)).join("; "),
                    cell(field.description)
                );
            }
        }
    }
    out
}

fn operation_names<S>(path: &Path<S>) -> Vec<&'static str> {
    path.operations
        .iter()
        .map(|spec| spec.operation.as_str())
        .collect()
}

/// A stable HTML anchor for a path: `config/{name}` -> `config-name`,
/// `config/` -> `config-list`.
fn anchor(pattern: &str) -> String {
    let mut anchor: String = pattern
        .trim_end_matches('/')
        .chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '_' => Some(c),
            'A'..='Z' => Some(c.to_ascii_lowercase()),
            '/' => Some('-'),
            _ => None,
        })
        .collect();
    if pattern.ends_with('/') {
        anchor.push_str("-list");
    }
    anchor
}

/// How an operation is called over HTTP and with the CLI.
fn call(operation: Operation) -> &'static str {
    match operation {
        Operation::Create | Operation::Update => "`POST`/`PUT`, `bao write`",
        Operation::Read => "`GET`, `bao read`",
        Operation::Delete => "`DELETE`, `bao delete`",
        Operation::List => "`LIST` (or `GET ?list=true`), `bao list`",
        Operation::Patch => "`PATCH`, `bao patch`",
        Operation::Renew => "`bao lease renew`",
        Operation::Revoke => "`bao lease revoke`",
        Operation::Help => "`bao path-help`",
        Operation::Rollback => "sent by the host",
    }
}

/// Prose from the path table as Markdown shows it literally: `<connection>`
/// is not an HTML tag and `team-a-*` starts no emphasis.
fn text(prose: &str) -> String {
    prose
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('*', "\\*")
}

/// Text for one table cell: no line breaks, pipes escaped.
fn cell(prose: &str) -> String {
    text(&prose.split_whitespace().collect::<Vec<_>>().join(" ")).replace('|', "\\|")
}

fn reference_notes(field: &Field, captured: bool) -> Vec<String> {
    if captured {
        return vec!["path parameter".to_owned()];
    }
    let mut notes = Vec::new();
    if field.required {
        notes.push("**required on create**".to_owned());
    }
    if field.sensitive {
        notes.push("**write-only**, never returned".to_owned());
    }
    if let Some(default) = &field.default {
        let shown = match (field.kind, default) {
            (FieldType::Duration, Value::Number(seconds)) => format!("{seconds}s"),
            (_, Value::String(text)) => text.clone(),
            (_, other) => other.to_string(),
        };
        notes.push(format!("default `{shown}`"));
    }
    if !field.allowed.is_empty() {
        notes.push(format!("one of `{}`", field.allowed.join("`, `")));
    }
    if field.max_len != DEFAULT_MAX_LEN {
        notes.push(match field.kind {
            FieldType::StringList => format!(
                "at most {} items of {} characters",
                field.max_len, field.max_len
            ),
            FieldType::Map => format!("entries of at most {} characters", field.max_len),
            _ => format!("at most {} characters", field.max_len),
        });
    }
    notes
}

/// The rules every path shares, from the framework itself.
fn conventions() -> String {
    format!(
        "\n## Conventions\n\n\
         - **Calls.** Writes (`create`, `update`) carry their fields in the body (JSON, or `key=value` \
         arguments to `bao write`, or `bao write -f` for none); reads, lists and deletes take only the path parameters. A write with a field \
         the path does not have is refused with a 400 that lists the valid fields, and a bad value is refused \
         with a 400 that names the field.\n\
         - **Names** (`{{name}}` segments): letters, digits, `-`, `_` and `.`, starting and ending with a letter \
         or digit, at most {MAX_NAME_LEN} characters.\n\
         - **Types.** The CLI sends every value as a string and JSON clients send native values; both are \
         accepted:\n\
         \x20\x20- *{bool}*: `true`/`false` (also `1`/`0`, `t`/`f`);\n\
         \x20\x20- *{int}*: a whole number;\n\
         \x20\x20- *{duration}*: seconds (`3600`) or a duration such as `90s`, `30m`, `24h`, `1h30m`, `7d`; reads \
         return seconds;\n\
         \x20\x20- *{list}*: a JSON array or a comma-separated string (`a,b`);\n\
         \x20\x20- *{map}*: a JSON object, comma-separated `key=value` pairs, or the same JSON as text.\n\
         - **Strings** are at most {DEFAULT_MAX_LEN} characters unless a field says otherwise.\n\
         - **Write-only** fields are stored but never returned by any read (OpenAPI marks them \
         `x-vault-displaySensitive`).\n",
        bool = FieldType::Bool.describe(),
        int = FieldType::Int.describe(),
        duration = FieldType::Duration.describe(),
        list = FieldType::StringList.describe(),
        map = FieldType::Map.describe(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_shows_what_a_reader_needs_of_each_field() {
        let paths: Vec<Path<()>> = vec![
            Path::new("things/{name}")
                .fields([
                    Field::string("name", "Name."),
                    Field::string("kind", "Kind: <a|b>.")
                        .one_of(&["a", "b"])
                        .required(),
                    Field::string("secret", "Secret.").sensitive().max_len(64),
                    Field::duration("timeout", "Timeout.").default(30),
                    Field::list("globs", "Globs such as team-a-*."),
                ])
                .help("Things.", "All about <things>."),
            Path::new("things/").help("List things.", "Names."),
        ];
        let info = BackendInfo {
            title: "t",
            help: "Test engine.",
            version: "v9.9.9".into(),
        };
        let doc = reference_markdown(&info, &paths);
        assert!(doc.contains("Plugin version v9.9.9"), "{doc}");
        assert!(doc.contains("[`things/{name}`](#things-name)") && doc.contains("(#things-list)"));
        assert!(doc.contains("<a id=\"things-name\"></a>"));
        assert!(
            doc.contains("| `name` | string | path parameter | Name. |"),
            "{doc}"
        );
        assert!(doc.contains(
            "| `kind` | string | **required on create**; one of `a`, `b` | Kind: &lt;a\\|b&gt;. |"
        ));
        assert!(doc.contains("**write-only**, never returned; at most 64 characters"));
        assert!(doc.contains("| `timeout` | duration | default `30s` |"));
        assert!(doc.contains("team-a-\\*"));
        assert!(doc.contains("All about &lt;things&gt;."));
    }
}
