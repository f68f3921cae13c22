//! Where the harness finds the repository's files and the daemon binary.
//!
//! Paths are absolute so that tests can hand them to processes running in other directories
//! (SIPp runs in the scenarios directory, the daemon reads its config from a temp dir).

use std::path::{Path, PathBuf};

/// Environment variable that points the harness at a specific `trunkgate` binary, e.g. a
/// release build or an installed package.
pub const TRUNKGATE_BIN_ENV: &str = "TRUNKGATE_BIN";

/// Environment variable that overrides [`repo_root`], for running the harness from a crate
/// outside the workspace.
pub const REPO_ROOT_ENV: &str = "TRUNKGATE_REPO_ROOT";

/// The repository root (the directory holding the workspace `Cargo.toml`), or
/// `$TRUNKGATE_REPO_ROOT` when set.
pub fn repo_root() -> PathBuf {
    if let Some(root) = std::env::var_os(REPO_ROOT_ENV) {
        return PathBuf::from(root);
    }
    // CARGO_MANIFEST_DIR is integration-tests/, fixed at compile time; its parent is the root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration-tests/ always has a parent directory")
        .to_path_buf()
}

/// `prompts/`: the IVR prompts the example config and the tests use.
pub fn prompts_dir() -> PathBuf {
    repo_root().join("prompts")
}

/// The WAV file of prompt `name` (as written in a config: `welcome`, `digit-7`, …).
pub fn prompt_path(name: &str) -> PathBuf {
    prompts_dir().join(format!("{name}.wav"))
}

/// `integration-tests/scenarios/`: SIPp scenarios; SIPp runs with this as working directory so
/// the scenarios' relative `pcap/…` paths resolve.
pub fn scenarios_dir() -> PathBuf {
    repo_root().join("integration-tests").join("scenarios")
}

/// The daemon binary: `$TRUNKGATE_BIN` if set, else `trunkgate` in the cargo profile directory
/// this test executable was built into (`target/<profile>/deps/test-HASH` → `target/<profile>/`).
///
/// Panics with instructions when the binary does not exist, since no test can run without it.
pub fn trunkgate_bin() -> PathBuf {
    if let Some(path) = std::env::var_os(TRUNKGATE_BIN_ENV) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{TRUNKGATE_BIN_ENV}={} does not name a file",
            path.display()
        );
        return path;
    }
    let exe = std::env::current_exe().expect("the running test executable has a path");
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(3)
        .map(|dir| dir.join(format!("trunkgate{}", std::env::consts::EXE_SUFFIX)))
        .collect();
    if let Some(found) = candidates.iter().find(|path| path.is_file()) {
        return found.clone();
    }
    panic!(
        "trunkgate binary not found (looked at {}); build it first with \
         `cargo build --bin trunkgate` (same profile as the tests) or set {TRUNKGATE_BIN_ENV}",
        candidates
            .iter()
            .map(|path| path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}
