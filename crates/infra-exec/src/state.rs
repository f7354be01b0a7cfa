//! `.infra/state.json`: what `infra` created on each host, so destroy removes exactly that.
//!
//! Written atomically (temporary file, fsync, rename; mode 0600) after every host step, so a
//! crash loses nothing. It holds hashes, never a secret.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The state file's format version.
pub const STATE_VERSION: u32 = 1;

/// Everything `infra` created, by host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// Incremented on every write.
    pub serial: u64,
    /// A random ID given when the state was first created; it never changes.
    pub lineage: String,
    /// The topology's name.
    pub topology: String,
    /// Per host.
    pub hosts: BTreeMap<String, HostRecord>,
}

/// What `infra` created or changed on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    /// Packages `infra` installed that were not there before.
    pub packages: BTreeSet<String>,
    /// Every package that arrived with them (dependencies included), for a clean removal.
    #[serde(default)]
    pub dependencies: BTreeSet<String>,
    /// System users the packages `infra` installed created.
    #[serde(default)]
    pub users: BTreeSet<String>,
    /// System groups the packages `infra` installed created.
    #[serde(default)]
    pub groups: BTreeSet<String>,
    /// Folders `infra` created.
    pub directories: BTreeSet<String>,
    /// Files `infra` wrote: path -> SHA-256 of what it wrote.
    pub files: BTreeMap<String, String>,
    /// Files that existed before `infra` managed them and were backed up (to restore).
    pub backups: BTreeSet<String>,
    /// Files `infra` removed (kept in the backup folder, restored by destroy).
    pub removed: BTreeSet<String>,
    /// Services `infra` enabled.
    pub services: BTreeSet<String>,
    /// Whether the firewall table is `infra`'s.
    pub firewall: bool,
    /// Databases `infra` created.
    pub databases: BTreeSet<String>,
    /// Accounts `infra` created, `user@host`.
    pub database_users: BTreeSet<String>,
    /// Whether `infra` configured replication here.
    pub replication: bool,
    /// Reloads and restarts owed: a file changed but the run stopped before the service step.
    /// The next run performs them even when no file changes any more.
    #[serde(default)]
    pub pending: BTreeMap<String, infra_plan::Trigger>,
    /// Whether the last apply of this host completed.
    pub complete: bool,
}

impl State {
    /// The reloads and restarts owed on each host.
    pub fn pending(&self) -> BTreeMap<String, Vec<(String, infra_plan::Trigger)>> {
        self.hosts
            .iter()
            .filter(|(_, record)| !record.pending.is_empty())
            .map(|(host, record)| {
                (
                    host.clone(),
                    record
                        .pending
                        .iter()
                        .map(|(u, t)| (u.clone(), *t))
                        .collect(),
                )
            })
            .collect()
    }
}

/// Where the state lives: `<topology dir>/.infra/state.json`.
pub fn state_path(base_dir: &Path) -> PathBuf {
    base_dir.join(".infra").join("state.json")
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("cannot access the state `{}`", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a state we can read.
    #[error("the state `{}` is damaged or from another version", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The state belongs to another topology.
    #[error("the state `{}` belongs to topology `{found}`, not `{wanted}`", path.display())]
    OtherTopology {
        /// The file.
        path: PathBuf,
        /// Its topology.
        found: String,
        /// Ours.
        wanted: String,
    },
}

/// Reads the state, or a new empty one when there is none.
pub fn load(base_dir: &Path, topology: &str) -> Result<State, StateError> {
    let path = state_path(base_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(State {
                version: STATE_VERSION,
                serial: 0,
                lineage: new_lineage(),
                topology: topology.to_owned(),
                hosts: BTreeMap::new(),
            });
        }
        Err(source) => return Err(StateError::Io { path, source }),
    };
    let state: State = serde_json::from_str(&text).map_err(|source| StateError::Format {
        path: path.clone(),
        source,
    })?;
    if state.topology != topology {
        return Err(StateError::OtherTopology {
            path,
            found: state.topology,
            wanted: topology.to_owned(),
        });
    }
    Ok(state)
}

/// Writes the state atomically, bumping its serial.
pub fn save(base_dir: &Path, state: &mut State) -> Result<(), StateError> {
    state.serial += 1;
    let path = state_path(base_dir);
    let text = serde_json::to_string_pretty(state).map_err(|source| StateError::Format {
        path: path.clone(),
        source,
    })?;
    crate::files::write_atomic(&path, text.as_bytes(), 0o600)
        .map_err(|source| StateError::Io { path, source })
}

fn new_lineage() -> String {
    let mut bytes = [0u8; 16];
    if let Ok(mut random) = std::fs::File::open("/dev/urandom") {
        use std::io::Read as _;
        let _ = random.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
