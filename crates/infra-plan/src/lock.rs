//! The lock every host keeps for `infra`: who holds it, and whether its holder is alive.
//!
//! A run that changes hosts takes the lock on each of them (`/var/lib/infra/lock/`, made with
//! one atomic rename, so two runs can never both get it). The holder's file says who took it,
//! from where, when, for what, and until when its lease runs: the holder renews the lease while
//! it works, so a lock whose lease ran out belongs to a run that died.

use std::fmt;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// A lock's ID: 16 hex digits, given by the run that takes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LockId(String);

impl LockId {
    /// A new random ID.
    pub fn random() -> LockId {
        LockId(crate::hash::hex(&crate::hash::random_bytes::<8>()))
    }

    /// An ID given by a user (`infra force-unlock ID`), if it has the form of one.
    pub fn parse(text: &str) -> Option<LockId> {
        (!text.is_empty() && text.len() <= 32 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| LockId(text.to_ascii_lowercase()))
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for LockId {
    type Error = String;
    fn try_from(text: String) -> Result<LockId, String> {
        LockId::parse(&text).ok_or_else(|| "not a lock ID".to_owned())
    }
}

impl From<LockId> for String {
    fn from(id: LockId) -> String {
        id.0
    }
}

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// The lock's ID (for `infra force-unlock`).
    pub id: LockId,
    /// The user that ran `infra`.
    pub user: String,
    /// The machine it ran on.
    pub controller: String,
    /// Its process ID there.
    pub pid: u32,
    /// What it is doing (`apply`, `destroy`, `state rm`).
    pub operation: String,
    /// The topology it works on.
    pub topology: String,
    /// The CI run, when one was detected (`github: owner/repo run 42`...).
    pub ci: Option<String>,
    /// When it took the lock, in seconds since the Unix epoch (the host's clock).
    pub since: u64,
    /// When its lease runs out unless renewed (the host's clock).
    pub expires: u64,
}

impl LockHolder {
    /// The holder file's text: one `key<TAB>value` line per field. Values are made one line
    /// and tab-free, since some (the CI run, the user) come from the environment.
    pub fn to_file(&self) -> String {
        let clean = |text: &str| -> String {
            text.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(200)
                .collect()
        };
        let mut out = String::new();
        let _ = writeln!(out, "id\t{}", self.id);
        let _ = writeln!(out, "user\t{}", clean(&self.user));
        let _ = writeln!(out, "controller\t{}", clean(&self.controller));
        let _ = writeln!(out, "pid\t{}", self.pid);
        let _ = writeln!(out, "operation\t{}", clean(&self.operation));
        let _ = writeln!(out, "topology\t{}", clean(&self.topology));
        if let Some(ci) = &self.ci {
            let _ = writeln!(out, "ci\t{}", clean(ci));
        }
        let _ = writeln!(out, "since\t{}", self.since);
        let _ = writeln!(out, "expires\t{}", self.expires);
        out
    }

    /// Reads a holder file; `None` when it is not one (a damaged lock still shows as held).
    pub fn from_file(text: &str) -> Option<LockHolder> {
        let field = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('\t'))
                .map(str::to_owned)
        };
        Some(LockHolder {
            id: LockId::parse(&field("id")?)?,
            user: field("user").unwrap_or_default(),
            controller: field("controller").unwrap_or_default(),
            pid: field("pid")?.parse().ok()?,
            operation: field("operation").unwrap_or_default(),
            topology: field("topology").unwrap_or_default(),
            ci: field("ci"),
            since: field("since")?.parse().ok()?,
            expires: field("expires")?.parse().ok()?,
        })
    }
}

/// A host's lock as gathered: its holder, and whether the lease ran out (by the host's clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockFact {
    /// Who holds it (`None`: the holder file is unreadable).
    pub holder: Option<LockHolder>,
    /// The lease ran out: the holder stopped renewing it.
    pub lease: Lease,
}

/// Whether a lock's holder still renews its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lease {
    /// Renewed in time.
    Live,
    /// Ran out: the holder is gone (killed, or its machine lost).
    Expired,
}

/// `YYYY-MM-DD HH:MM:SS UTC` from seconds since the Unix epoch.
pub fn format_time(seconds: u64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_times_read_as_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(1_795_372_695), "2026-11-22 18:38:15 UTC");
    }

    #[test]
    fn a_holder_file_reads_back_and_cannot_break_its_lines() {
        let holder = LockHolder {
            id: LockId::parse("00ff00ff00ff00ff").expect("id"),
            user: "ci\nid\tdeadbeef".to_owned(),
            controller: "runner-1".to_owned(),
            pid: 42,
            operation: "apply".to_owned(),
            topology: "scale-up".to_owned(),
            ci: Some("github: o/r run 7".to_owned()),
            since: 100,
            expires: 220,
        };
        let read = LockHolder::from_file(&holder.to_file()).expect("reads back");
        assert_eq!(read.id, holder.id);
        assert_eq!(read.user, "ci id deadbeef");
        assert_eq!(read.ci.as_deref(), Some("github: o/r run 7"));
        assert!(LockId::parse("not hex!").is_none());
    }
}
