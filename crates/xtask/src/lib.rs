//! Developer chores of `infra`, run as `cargo xtask ...`: the fleet generator and the
//! benchmark on lab hosts.

pub mod bench;
pub mod fleet;
pub mod report;

use std::path::PathBuf;

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map_or_else(|| manifest.clone(), PathBuf::from)
}
