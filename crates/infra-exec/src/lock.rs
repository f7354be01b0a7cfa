//! The state lock: one plan-with-`--out`, apply or destroy at a time per topology.
//!
//! The lock is a file created exclusively (`O_EXCL`) beside the state, holding who took it,
//! when, and an ID for `infra force-unlock`. It is removed when the run ends, Ctrl-C included.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Who holds the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// The lock's ID (for `force-unlock`).
    pub id: String,
    /// `user@host`.
    pub who: String,
    /// The process ID.
    pub pid: u32,
    /// What it is doing (`apply`, `destroy`, `plan`).
    pub operation: String,
    /// Seconds since the Unix epoch when it was taken.
    pub since: u64,
}

/// Why the lock could not be taken or released.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone else holds it.
    #[error("the state is locked by {} (pid {}) for `{}` since {} (lock ID {})", .0.who, .0.pid, .0.operation, format_time(.0.since), .0.id)]
    Held(LockInfo),
    /// The lock file could not be read or written.
    #[error("cannot use the lock file `{}`", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `force-unlock` was given an ID that is not the lock's.
    #[error("the lock ID is `{held}`, not `{given}`")]
    WrongId {
        /// The lock's ID.
        held: String,
        /// The one given.
        given: String,
    },
    /// `force-unlock` found no lock.
    #[error("the state is not locked")]
    NotLocked,
}

impl LockError {
    /// What the user can do.
    pub fn hint(&self) -> Option<String> {
        match self {
            LockError::Held(info) if holder_is_gone(info) => Some(format!(
                "process {} no longer runs on this machine, so the lock was left behind: `infra force-unlock {}`",
                info.pid, info.id
            )),
            LockError::Held(info) => Some(format!(
                "wait for it, retry with `--lock-timeout 5m`, or if that run is gone: `infra force-unlock {}`",
                info.id
            )),
            _ => None,
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` from seconds since the Unix epoch.
fn format_time(seconds: u64) -> String {
    let days = i64::try_from(seconds / 86_400).unwrap_or(0);
    let rest = seconds % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    info: LockInfo,
}

/// The lock file of the state in `base_dir`.
pub fn lock_path(base_dir: &Path) -> PathBuf {
    base_dir.join(".infra").join("state.lock")
}

impl Lock {
    /// Takes the lock, waiting up to `timeout` (zero: fail at once if it is held).
    pub fn acquire(base_dir: &Path, operation: &str, timeout: Duration) -> Result<Lock, LockError> {
        let path = lock_path(base_dir);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            use std::os::unix::fs::DirBuilderExt as _;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(io)?;
        }
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let info = LockInfo {
            id: random_id(),
            who: who(),
            pid: std::process::id(),
            operation: operation.to_owned(),
            since,
        };
        let deadline = Instant::now() + timeout;
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(mut file) => {
                    let text = serde_json::to_string_pretty(&info).unwrap_or_default();
                    file.write_all(text.as_bytes()).map_err(io)?;
                    file.sync_all().map_err(io)?;
                    return Ok(Lock { path, info });
                }
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                    if Instant::now() >= deadline {
                        return Err(LockError::Held(read(&path)?));
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(source) => return Err(io(source)),
            }
        }
    }

    /// The lock's details.
    pub fn info(&self) -> &LockInfo {
        &self.info
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Remove only our own lock (a force-unlock may have replaced it).
        if read(&self.path).is_ok_and(|held| held.id == self.info.id) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn read(path: &Path) -> Result<LockInfo, LockError> {
    let text = std::fs::read_to_string(path).map_err(|source| LockError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(serde_json::from_str(&text).unwrap_or(LockInfo {
        id: "unknown".to_owned(),
        who: "unknown".to_owned(),
        pid: 0,
        operation: "unknown".to_owned(),
        since: 0,
    }))
}

/// Removes the lock if it is still the one with `id` (for a signal handler that must exit
/// without unwinding).
pub fn release(base_dir: &Path, id: &str) {
    let path = lock_path(base_dir);
    if read(&path).is_ok_and(|held| held.id == id) {
        let _ = std::fs::remove_file(&path);
    }
}

/// Whether the process holding a lock is gone (only knowable for a lock taken on this machine).
pub fn holder_is_gone(info: &LockInfo) -> bool {
    let here = who();
    info.who == here && info.pid != 0 && !Path::new(&format!("/proc/{}", info.pid)).exists()
}

/// Removes the lock whose ID is `id`.
pub fn force_unlock(base_dir: &Path, id: &str) -> Result<LockInfo, LockError> {
    let path = lock_path(base_dir);
    if !path.exists() {
        return Err(LockError::NotLocked);
    }
    let held = read(&path)?;
    if held.id != id {
        return Err(LockError::WrongId {
            held: held.id,
            given: id.to_owned(),
        });
    }
    std::fs::remove_file(&path).map_err(|source| LockError::Io { path, source })?;
    Ok(held)
}

fn who() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{user}@{}", host.trim())
}

fn random_id() -> String {
    let mut bytes = [0u8; 8];
    if let Ok(mut random) = std::fs::File::open("/dev/urandom") {
        use std::io::Read as _;
        let _ = random.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_times_read_as_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(1_795_372_695), "2026-11-22 18:38:15 UTC");
    }

    #[test]
    fn a_second_lock_fails_at_once_naming_the_holder_and_force_unlock_needs_the_id() {
        let dir = tempfile::tempdir().expect("dir");
        let first = Lock::acquire(dir.path(), "apply", Duration::ZERO).expect("first lock");
        let error = Lock::acquire(dir.path(), "destroy", Duration::ZERO).expect_err("held");
        let text = error.to_string();
        assert!(
            text.contains("for `apply`") && text.contains(&first.info().id),
            "{text}"
        );
        assert!(error.hint().is_some_and(|h| h.contains("force-unlock")));
        assert!(matches!(
            force_unlock(dir.path(), "nope"),
            Err(LockError::WrongId { .. })
        ));
        let id = first.info().id.clone();
        force_unlock(dir.path(), &id).expect("unlocked");
        drop(first);
        let again = Lock::acquire(dir.path(), "apply", Duration::ZERO).expect("free again");
        drop(again);
        assert!(!lock_path(dir.path()).exists(), "released on drop");
    }
}
