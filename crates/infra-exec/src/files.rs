//! Local files written the safe way: a new temporary file (never an existing one, never
//! through a link) created with its final mode before any byte is written, synced, then
//! renamed over the target (which replaces a link instead of following it).

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::Path;

/// `O_NOFOLLOW` on Linux (x86-64 and arm64).
const O_NOFOLLOW: i32 = 0o400000;

/// Writes `bytes` to `path` through a temporary file in the same folder, fsync and rename,
/// with `mode`; the folder is created (0700) if missing.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    write(path, bytes, mode, Durability::Synced)
}

/// Like [`write_atomic`] without the fsyncs: for a file that lives only as long as this run
/// (an SSH connection's configuration), where a crash loses nothing and 50 connections would
/// otherwise wait on 100 disk flushes.
pub fn write_transient(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    write(path, bytes, mode, Durability::Transient)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Durability {
    Synced,
    Transient,
}

fn write(path: &Path, bytes: &[u8], mode: u32, durability: Durability) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(O_NOFOLLOW)
        .open(&temporary)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| match durability {
            Durability::Synced => file.sync_all(),
            Durability::Transient => Ok(()),
        })
        .and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written?;
    if durability == Durability::Synced
        && let Some(parent) = path.parent()
        && let Ok(dir) = std::fs::File::open(parent)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_link_at_the_target_is_replaced_not_followed() {
        let dir = tempfile::tempdir().expect("dir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").expect("write");
        let target = dir.path().join("out");
        std::os::unix::fs::symlink(&victim, &target).expect("link");
        write_atomic(&target, b"secret", 0o600).expect("written");
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "secret");
        let mode = std::fs::symlink_metadata(&target)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
