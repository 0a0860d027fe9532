//! `docs/reference.md` is generated from the engine's path table. This test
//! regenerates it and fails when the committed file differs, so no path,
//! field, default or description can change without the reference.
//!
//!   cargo test --test docs_reference                 check
//!   UPDATE_DOCS=1 cargo test --test docs_reference   rewrite the file

use std::path::Path;

use cloudrotate::{engine, framework};

const FIX: &str =
    "run `UPDATE_DOCS=1 cargo test --test docs_reference` and commit docs/reference.md";

#[test]
fn reference_matches_the_path_table() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reference.md");
    let generated = framework::reference_markdown(&engine::info(), &engine::paths());
    if std::env::var("UPDATE_DOCS").is_ok_and(|v| !v.is_empty() && v != "0") {
        std::fs::create_dir_all(file.parent().expect("docs/")).expect("create docs/");
        std::fs::write(&file, &generated).expect("write docs/reference.md");
        eprintln!("wrote {}", file.display());
        return;
    }
    let committed = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; {FIX}", file.display()));
    if committed == generated {
        return;
    }
    let (committed_lines, generated_lines): (Vec<&str>, Vec<&str>) =
        (committed.lines().collect(), generated.lines().collect());
    let line = committed_lines
        .iter()
        .zip(&generated_lines)
        .position(|(a, b)| a != b)
        .unwrap_or(committed_lines.len().min(generated_lines.len()));
    let shown = |lines: &[&str]| {
        lines
            .get(line)
            .map_or_else(|| "(end of file)".to_owned(), |l| (*l).to_owned())
    };
    panic!(
        "docs/reference.md is out of date with the path table (engine::paths()).\n\
         First difference at line {}:\n  committed: {}\n  generated: {}\n\
         To update it, {FIX}.",
        line + 1,
        shown(&committed_lines),
        shown(&generated_lines),
    );
}
