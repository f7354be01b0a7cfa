//! The folder for SSH control sockets and the SSH config `infra` writes for each connection.
//!
//! Whoever can write into it can stand in for a control socket and receive every script of
//! root's apply, secrets included. So it is made race-free (`mkdir` with mode 0700, never
//! `mkdir -p` over someone else's folder) and an existing one is used only if it is a real
//! folder (not a link), owned by this user, with mode 0700; anything else is refused.

use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Why the control folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ControlDirError {
    /// It exists but belongs to someone else.
    #[error("the SSH control folder `{}` belongs to user {owner}, not to this user ({uid}): refusing to use it", path.display())]
    NotOurs {
        /// The folder.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our user.
        uid: u32,
    },
    /// Others can read or write it.
    #[error("the SSH control folder `{}` has mode {mode:04o}, not 0700: refusing to use it", path.display())]
    Open {
        /// The folder.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// It is a link or not a folder.
    #[error("`{}` is not a folder (a link or a file is in its place): refusing to use it", path.display())]
    NotAFolder {
        /// The path.
        path: PathBuf,
    },
    /// It could not be made or read.
    #[error("cannot make the SSH control folder `{}`", path.display())]
    Io {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl ControlDirError {
    /// What the user can do.
    pub fn hint(&self) -> String {
        match self {
            ControlDirError::NotOurs { path, .. }
            | ControlDirError::Open { path, .. }
            | ControlDirError::NotAFolder { path } => format!(
                "another local user may have made it to intercept SSH sessions: inspect and remove `{}`, or set XDG_RUNTIME_DIR to a private folder",
                path.display()
            ),
            ControlDirError::Io { .. } => {
                "check that /tmp (or XDG_RUNTIME_DIR) is writable".to_owned()
            }
        }
    }
}

/// The control folder: `$XDG_RUNTIME_DIR/infra-ssh` when the runtime folder is given (it is
/// private by definition, but is checked too), else `/tmp/infra-ssh-<uid>`.
pub fn control_directory(runtime_dir: Option<&Path>, uid: u32) -> Result<PathBuf, ControlDirError> {
    let path = match runtime_dir {
        Some(runtime) => {
            check_private(runtime, uid)?;
            runtime.join("infra-ssh")
        }
        None => PathBuf::from(format!("/tmp/infra-ssh-{uid}")),
    };
    private_folder(&path, uid)?;
    Ok(path)
}

/// Makes `path` a folder of `uid`'s with mode 0700, or checks that the one there is.
pub fn private_folder(path: &Path, uid: u32) -> Result<(), ControlDirError> {
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {
            // The mode was subject to the umask: set it exactly.
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(
                |source| ControlDirError::Io {
                    path: path.to_path_buf(),
                    source,
                },
            )?;
            check_private(path, uid)
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => check_private(path, uid),
        Err(source) => Err(ControlDirError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn check_private(path: &Path, uid: u32) -> Result<(), ControlDirError> {
    let metadata = std::fs::symlink_metadata(path).map_err(|source| ControlDirError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !metadata.file_type().is_dir() {
        return Err(ControlDirError::NotAFolder {
            path: path.to_path_buf(),
        });
    }
    if metadata.uid() != uid {
        return Err(ControlDirError::NotOurs {
            path: path.to_path_buf(),
            owner: metadata.uid(),
            uid,
        });
    }
    let mode = metadata.permissions().mode() & 0o7777;
    if mode != 0o700 {
        return Err(ControlDirError::Open {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// This process's user ID (the owner of `/proc/self`).
pub fn current_uid() -> u32 {
    std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_folder_is_made_private() {
        let parent = tempfile::tempdir().expect("dir");
        let path = parent.path().join("ssh");
        private_folder(&path, current_uid()).expect("made");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        private_folder(&path, current_uid()).expect("reused when it is ours and private");
    }

    #[test]
    fn a_folder_others_can_open_is_refused() {
        let parent = tempfile::tempdir().expect("dir");
        let path = parent.path().join("ssh");
        std::fs::create_dir(&path).expect("made by someone first");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).expect("mode");
        let error = private_folder(&path, current_uid()).expect_err("refused");
        assert!(
            matches!(error, ControlDirError::Open { mode: 0o777, .. }),
            "{error}"
        );
        assert!(error.hint().contains("remove"));
    }

    #[test]
    fn a_folder_of_another_user_is_refused() {
        let parent = tempfile::tempdir().expect("dir");
        let path = parent.path().join("ssh");
        std::fs::create_dir(&path).expect("made");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).expect("mode");
        // Seen from another user's side: the folder (ours) is not theirs.
        let error = private_folder(&path, current_uid() + 1).expect_err("refused");
        assert!(matches!(error, ControlDirError::NotOurs { .. }), "{error}");
    }

    #[test]
    fn a_link_in_its_place_is_refused() {
        let parent = tempfile::tempdir().expect("dir");
        let elsewhere = parent.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).expect("made");
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).expect("mode");
        let path = parent.path().join("ssh");
        std::os::unix::fs::symlink(&elsewhere, &path).expect("link");
        let error = private_folder(&path, current_uid()).expect_err("refused");
        assert!(
            matches!(error, ControlDirError::NotAFolder { .. }),
            "{error}"
        );
    }
}
