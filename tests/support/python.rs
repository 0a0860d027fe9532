//! The Python scripts of `tests/python`, run with the Python of `make
//! tools` (`Tool::Python`), which has the official SDKs pinned in
//! `tests/python/requirements.txt`. Without it the test fails: the SDKs
//! are the oracle, and a skipped oracle proves nothing.

use std::path::PathBuf;

/// `tests/python/<name>`.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("python")
        .join(name)
}
