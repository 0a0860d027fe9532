//! The Python of `make tools` (`$CLOUDROTATE_TOOLS/venv/bin/python`, by
//! default `.tools/venv/bin/python` in the crate), with the official SDKs
//! pinned in `tests/python/requirements.txt`. Without it the test fails:
//! the SDKs are the oracle, and a skipped oracle proves nothing.

use std::path::PathBuf;

pub fn python() -> PathBuf {
    let tools = std::env::var_os("CLOUDROTATE_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools"));
    let python = tools.join("venv").join("bin").join("python");
    assert!(
        python.exists(),
        "{} not found: run `make tools` first (it installs the pinned official SDKs)",
        python.display()
    );
    python
}

/// `tests/python/<name>`.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("python")
        .join(name)
}
