//! Helpers shared by the integration test modules.

use std::fs;
use std::path::PathBuf;

/// A fresh, empty temporary folder unique to this test process, `prefix`
/// and `name`.
pub fn tmp_dir(prefix: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}
