//! Local folders copied to the hosts: the web tier's static files and the app's source.
//!
//! What is copied is served (static files) or run (the app), so the walk is strict: it stays
//! inside the topology's folder, never copies a dotfile or dot-folder (`.infra/`, `.git/`,
//! `.env`...) except `.well-known/`, follows a link only to a file inside the topology's
//! folder, and refuses anything but regular files.

use std::path::{Path, PathBuf};

use infra_topology::{RemotePath, Topology, UnitName};

use super::build::{FileSpec, directory, managed_file};
use super::{Display, HostState, Origin, Sensitivity, Trigger};
use crate::RenderError;

/// The largest file `infra` uploads.
const FILE_LIMIT: u64 = 64 * 1024 * 1024;

/// Adds every file under `local` as a file under `remote`, and its folders.
pub(super) fn upload(
    topology: &Topology,
    local: &Path,
    remote: &RemotePath,
    notify: Option<(UnitName, Trigger)>,
    state: &mut HostState,
) -> Result<(), RenderError> {
    let base = canonical(&topology.base_dir)?;
    state.directories.push(directory(remote.clone(), 0o755));
    let mut pending = vec![(local.to_path_buf(), remote.clone())];
    while let Some((dir, target)) = pending.pop() {
        let read = fs_err::read_dir(&dir).map_err(|source| RenderError::Read {
            path: dir.clone(),
            source,
        })?;
        let mut entries: Vec<PathBuf> = read.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with('.') && name != ".well-known" {
                continue;
            }
            let Some(remote_path) = target.join(&name) else {
                return Err(RenderError::UnsafeUploadName { path });
            };
            let metadata = fs_err::symlink_metadata(&path).map_err(|source| RenderError::Read {
                path: path.clone(),
                source,
            })?;
            let (real, metadata) = if metadata.file_type().is_symlink() {
                let real = canonical(&path)?;
                if !real.starts_with(&base) || real.starts_with(base.join(".infra")) {
                    return Err(RenderError::UploadOutside { path, target: real });
                }
                let metadata = fs_err::metadata(&real).map_err(|source| RenderError::Read {
                    path: real.clone(),
                    source,
                })?;
                if metadata.is_dir() {
                    // A link to a folder could make a cycle; the folder is uploaded where it is.
                    return Err(RenderError::UploadLinkedFolder { path });
                }
                (real, metadata)
            } else {
                (path.clone(), metadata)
            };
            if metadata.is_dir() {
                state
                    .directories
                    .push(directory(remote_path.clone(), 0o755));
                pending.push((real, remote_path));
            } else if metadata.is_file() {
                if metadata.len() > FILE_LIMIT {
                    return Err(RenderError::UploadTooLarge { path });
                }
                let content = fs_err::read(&real).map_err(|source| RenderError::Read {
                    path: real.clone(),
                    source,
                })?;
                let display = match String::from_utf8(content.clone()) {
                    Ok(text) => Display::Text(text),
                    Err(_) => Display::Binary,
                };
                let relative = path.strip_prefix(&base).unwrap_or(&path);
                let mode = if is_executable(&metadata) {
                    0o755
                } else {
                    0o644
                };
                state.files.push(managed_file(
                    FileSpec {
                        path: remote_path,
                        mode,
                        check: None,
                        notify: notify.clone(),
                    },
                    content,
                    display,
                    Origin::Upload(relative.display().to_string()),
                    Sensitivity::Plain,
                ));
            } else {
                return Err(RenderError::UploadNotAFile { path });
            }
        }
    }
    Ok(())
}

fn canonical(path: &Path) -> Result<PathBuf, RenderError> {
    path.canonicalize().map_err(|source| RenderError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn is_executable(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o111 != 0
}
