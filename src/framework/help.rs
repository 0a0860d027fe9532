//! Human-readable help for `path-help`, and the Markdown path reference.

use std::fmt::Write;

use super::field::Field;
use super::path::Path;
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

/// The reference of every path, its operations and fields, in Markdown.
pub fn reference_markdown<S>(info: &BackendInfo, paths: &[Path<S>]) -> String {
    let mut out = format!(
        "# API reference\n\n{}\n\nGenerated from the path table; a test keeps it in sync.\n",
        info.help.trim()
    );
    for path in paths {
        let operations: Vec<&str> = path
            .operations
            .iter()
            .map(|spec| spec.operation.as_str())
            .collect();
        let _ = write!(
            out,
            "\n## `{}`\n\n{}\n\nOperations: {}.\n\n{}\n",
            path.pattern,
            path.synopsis,
            operations.join(", "),
            path.description.trim()
        );
        if !path.fields.is_empty() {
            out.push_str("\n| field | type | notes | description |\n|---|---|---|---|\n");
            for field in &path.fields {
                let mut notes = Vec::new();
                if field.required {
                    notes.push("required on create".to_owned());
                }
                if field.sensitive {
                    notes.push("write-only".to_owned());
                }
                if let Some(default) = &field.default {
                    notes.push(format!("default `{default}`"));
                }
                if !field.allowed.is_empty() {
                    notes.push(format!("one of `{}`", field.allowed.join("`, `")));
                }
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {} |",
                    field.name,
                    field.kind.describe(),
                    notes.join("; "),
                    field.description.replace('|', "\\|").replace('\n', " ")
                );
            }
        }
    }
    out
}
