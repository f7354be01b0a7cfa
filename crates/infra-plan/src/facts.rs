//! What a host is like now: the facts a plan compares the desired state with, gathered in one
//! round trip per host. This module holds their shape and what to ask for; how they are asked
//! for (a shell script over SSH, or a fake host in tests) is `infra-exec`'s business.

use std::collections::BTreeMap;

use infra_topology::{Name, PackageName, RemotePath, SqlAccount, SqlName, UnitName};
use serde::{Deserialize, Serialize};

use crate::desired::{HostState, Sensitivity};
use crate::hash::Sha256;
use crate::lock::LockFact;
use crate::record::HostRecord;

/// Everything a plan needs to know about one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    /// `ID VERSION_ID` from /etc/os-release, e.g. `debian 12`.
    pub os: Option<String>,
    /// Packages asked about (and those `infra`'s record names).
    pub packages: BTreeMap<PackageName, PackageFact>,
    /// Folders asked about.
    pub directories: BTreeMap<RemotePath, DirectoryFact>,
    /// Files asked about.
    pub files: BTreeMap<RemotePath, FileFact>,
    /// Services asked about.
    pub services: BTreeMap<UnitName, ServiceFact>,
    /// `infra`'s nftables table.
    pub firewall: FirewallFact,
    /// Database objects, on hosts where MariaDB runs and was asked about.
    pub database: Option<DatabaseFacts>,
    /// What `infra` created on the host, if it ever did.
    pub record: Option<HostRecord>,
    /// Who holds the host's lock, if anyone.
    pub lock: Option<LockFact>,
    /// The edge certificate files asked about, as they are (the key included: it is read to
    /// be reused, never shown).
    pub certificate_files: BTreeMap<RemotePath, KeyMaterial>,
    /// What preflight reads (the clock, free space, apt's lock, the VIP's interface): it moves
    /// by itself, so it is no part of the state a saved plan expects.
    #[serde(default)]
    pub preflight: crate::preflight::PreflightFacts,
}

/// Bytes that hold a private key: never shown, never stored. Its `Debug` hides them, and its
/// JSON form (used only inside fingerprints) is their SHA-256.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeyMaterial(pub Vec<u8>);

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyMaterial((sensitive value))")
    }
}

impl Serialize for KeyMaterial {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(Sha256::of(&self.0).as_str())
    }
}

impl<'de> Deserialize<'de> for KeyMaterial {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Only its hash was written: the bytes are not read back.
        let _ = String::deserialize(deserializer)?;
        Ok(KeyMaterial::default())
    }
}

impl HostFacts {
    /// What the host is, without what it sent to show (which depends on what it was asked:
    /// two runners that render differently get different content back from the same host).
    /// This is what a plan's facts fingerprint covers.
    pub fn state_only(&self) -> HostFacts {
        let mut facts = self.clone();
        facts.preflight = crate::preflight::PreflightFacts::default();
        for fact in facts.files.values_mut() {
            if let FileFact::File { shown, .. } = fact {
                *shown = None;
            }
        }
        facts
    }
}

/// A package on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PackageFact {
    /// Installed, at this version.
    Installed {
        /// `dpkg`'s version string.
        version: String,
    },
    /// Not installed (or only its configuration is left).
    Absent,
}

/// Owner, group and mode of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    /// Owner user name.
    pub owner: String,
    /// Group name.
    pub group: String,
    /// Permission bits.
    pub mode: u32,
}

/// A folder on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DirectoryFact {
    /// Nothing there, or something that is not a folder.
    Absent,
    /// A folder.
    Present(Ownership),
}

/// A file on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FileFact {
    /// Nothing at that path.
    Absent,
    /// Something that is not a regular file (a folder, a link...).
    Other,
    /// A regular file.
    File {
        /// Owner, group, mode.
        ownership: Ownership,
        /// SHA-256 of its content.
        sha256: Sha256,
        /// What of its content may be shown, sent only when it differs from the wanted one.
        shown: Option<Shown>,
    },
}

/// The part of a file's current content that a host sends back for a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "text", rename_all = "snake_case")]
pub enum Shown {
    /// The content itself: the file holds no secret now and held none when `infra` wrote it.
    Content(Vec<u8>),
    /// The redacted copy `infra` kept when it wrote this (sensitive) file, still matching it.
    Redacted(String),
}

/// What a host sends back of a file's content, by one rule for every gatherer: the content
/// of a file that is or was sensitive never leaves the host; only the redacted copy `infra`
/// wrote beside it, and only while the file is still what `infra` wrote.
pub fn shown_rule(
    wanted: Option<&FileQuery>,
    recorded: Option<&crate::record::RecordedFile>,
    current: &Sha256,
) -> ShownRule {
    let wanted_sha = wanted.and_then(|q| q.wanted.as_ref());
    if wanted_sha.is_none_or(|w| w == current) {
        return ShownRule::Nothing;
    }
    let sensitive_now = wanted.is_some_and(|q| q.sensitivity == Sensitivity::Sensitive);
    let sensitive_before = recorded.is_some_and(|r| r.sensitivity == Sensitivity::Sensitive);
    if sensitive_now || sensitive_before {
        if recorded.is_some_and(|r| &r.sha256 == current && r.sensitivity == Sensitivity::Sensitive)
        {
            ShownRule::RedactedCopy
        } else {
            ShownRule::Nothing
        }
    } else {
        ShownRule::Content
    }
}

/// What [`shown_rule`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShownRule {
    /// Send nothing.
    Nothing,
    /// Send the content.
    Content,
    /// Send the redacted copy kept beside the record.
    RedactedCopy,
}

/// A service's state, as systemd words it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceFact {
    /// `UnitFileState` (`enabled`, `disabled`, empty when the unit does not exist).
    pub enabled: String,
    /// `ActiveState` (`active`, `inactive`, `failed`...).
    pub active: String,
}

impl ServiceFact {
    /// The unit file exists.
    pub fn exists(&self) -> bool {
        !self.enabled.is_empty() && self.enabled != "not-found"
    }

    /// Enabled at boot.
    pub fn is_enabled(&self) -> bool {
        self.enabled == "enabled"
    }

    /// Running.
    pub fn is_active(&self) -> bool {
        self.active == "active"
    }
}

/// The state of `infra`'s nftables table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallFact {
    /// Whether `nft` is installed.
    pub nft_installed: bool,
    /// SHA-256 of `nft list table inet infra` now, when the table exists.
    pub loaded: Option<Sha256>,
    /// The same hash recorded by the last load, when there was one.
    pub recorded: Option<Sha256>,
    /// SHA-256 of the rules file that was loaded then.
    pub recorded_file: Option<Sha256>,
}

impl FirewallFact {
    /// The table is loaded and nobody changed it since `infra` loaded it.
    pub fn is_current(&self) -> bool {
        self.loaded.is_some() && self.loaded == self.recorded
    }
}

/// MariaDB objects on a database host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseFacts {
    /// Whether the server answered at all.
    pub reachable: bool,
    /// Databases that exist, among those asked about.
    pub databases: Vec<SqlName>,
    /// Accounts with their password hash (`authentication_string`).
    pub users: BTreeMap<SqlAccount, String>,
    /// Accounts that still accept a retained second password (a rotation not finished).
    #[serde(default)]
    pub retained: Vec<SqlAccount>,
    /// Accounts with all privileges on the managed database.
    pub database_grants: Vec<SqlAccount>,
    /// Accounts with the replication privilege.
    pub replication_grants: Vec<SqlAccount>,
    /// Accounts with the exporter's privileges (`PROCESS` and `SLAVE MONITOR`).
    #[serde(default)]
    pub monitor_grants: Vec<SqlAccount>,
    /// `@@read_only`.
    pub read_only: Option<bool>,
    /// Replication, on a replica that has it configured.
    pub replication: Option<ReplicationFact>,
}

/// `SHOW REPLICA STATUS`, the fields that matter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationFact {
    /// `Master_Host`.
    pub source_host: String,
    /// `Master_Port`.
    pub source_port: String,
    /// `Master_User`.
    pub user: String,
    /// `Slave_IO_Running`.
    pub io_running: String,
    /// `Slave_SQL_Running`.
    pub sql_running: String,
    /// `Using_Gtid`.
    pub using_gtid: String,
}

/// What to ask a host about. The gatherer adds everything the host's own record names, so a
/// plan also sees what `infra` made there earlier and no longer wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatherRequest {
    /// The topology (whose record to read).
    pub topology: Name,
    /// Packages.
    pub packages: Vec<PackageName>,
    /// Folders.
    pub directories: Vec<RemotePath>,
    /// Files, with the wanted content's hash.
    pub files: Vec<FileQuery>,
    /// Units.
    pub units: Vec<UnitName>,
    /// Database objects, on database hosts.
    pub database: Option<DatabaseQuery>,
    /// The edge certificate's files, to read back the certificate in use.
    #[serde(default)]
    pub certificate: Option<crate::desired::CertificateFiles>,
    /// Whether the host is judged fit before it is planned, and what that asks beyond what
    /// every host is asked (`None`: it is only read, as `infra state` does).
    #[serde(default)]
    pub preflight: Option<crate::preflight::PreflightRequest>,
}

/// A file to ask about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileQuery {
    /// The path.
    pub path: RemotePath,
    /// The wanted content's hash (`None`: the file should not be there).
    pub wanted: Option<Sha256>,
    /// Whether the wanted content holds a secret.
    pub sensitivity: Sensitivity,
}

/// Database objects to ask about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseQuery {
    /// The app's database.
    pub database: SqlName,
    /// The account names.
    pub users: Vec<SqlName>,
}

impl GatherRequest {
    /// What to ask about `state` on its host.
    pub fn for_host(topology: &Name, state: &HostState) -> GatherRequest {
        let mut packages = state.packages.clone();
        packages.extend(state.absent_files.iter().map(|a| a.brought_by.clone()));
        packages.sort();
        packages.dedup();
        let mut files: Vec<FileQuery> = state
            .files
            .iter()
            .map(|f| FileQuery {
                path: f.path.clone(),
                wanted: Some(f.sha256.clone()),
                sensitivity: f.sensitivity,
            })
            .collect();
        files.extend(state.absent_files.iter().map(|a| FileQuery {
            path: a.path.clone(),
            wanted: None,
            sensitivity: Sensitivity::Plain,
        }));
        GatherRequest {
            topology: topology.clone(),
            packages,
            directories: state.directories.iter().map(|d| d.path.clone()).collect(),
            files,
            units: state.services.iter().map(|s| s.unit.clone()).collect(),
            database: state.database.as_ref().map(|db| DatabaseQuery {
                database: db.database.clone(),
                users: db.users.iter().map(|u| u.name.clone()).collect(),
            }),
            certificate: state.edge_certificate.clone(),
            preflight: Some(crate::preflight::PreflightRequest::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordedFile;

    fn query(sensitivity: Sensitivity) -> FileQuery {
        FileQuery {
            path: RemotePath::new("/etc/x").expect("path"),
            wanted: Some(Sha256::of(b"new")),
            sensitivity,
        }
    }

    #[test]
    fn the_content_of_a_sensitive_file_never_leaves_the_host() {
        let old = Sha256::of(b"old");
        let recorded = |sensitivity| RecordedFile {
            sha256: old.clone(),
            sensitivity,
        };
        assert_eq!(
            shown_rule(Some(&query(Sensitivity::Plain)), None, &old),
            ShownRule::Content
        );
        assert_eq!(
            shown_rule(Some(&query(Sensitivity::Sensitive)), None, &old),
            ShownRule::Nothing,
            "sensitive now, not written by infra: nothing"
        );
        assert_eq!(
            shown_rule(
                Some(&query(Sensitivity::Plain)),
                Some(&recorded(Sensitivity::Sensitive)),
                &old
            ),
            ShownRule::RedactedCopy,
            "sensitive before: the redacted copy"
        );
        assert_eq!(
            shown_rule(
                Some(&query(Sensitivity::Sensitive)),
                Some(&recorded(Sensitivity::Sensitive)),
                &Sha256::of(b"edited by hand")
            ),
            ShownRule::Nothing,
            "changed since infra wrote it: its copy no longer matches"
        );
        assert_eq!(
            shown_rule(Some(&query(Sensitivity::Plain)), None, &Sha256::of(b"new")),
            ShownRule::Nothing,
            "unchanged"
        );
    }
}
