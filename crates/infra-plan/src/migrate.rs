//! The local state of earlier versions (`.infra/state.json` beside the topology), read once so
//! the next run can move it to the hosts' own records.

use std::collections::{BTreeMap, BTreeSet};

use infra_topology::{
    AccountName, HostName, PackageName, RemotePath, SqlAccount, SqlName, UnitName,
};
use serde::Deserialize;

use crate::desired::Trigger;
use crate::record::HostRecord;

/// The local state file's form (format 1).
#[derive(Debug, Deserialize)]
struct LocalState {
    version: u32,
    lineage: String,
    topology: String,
    hosts: BTreeMap<String, LocalRecord>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LocalRecord {
    packages: BTreeSet<String>,
    dependencies: BTreeSet<String>,
    users: BTreeSet<String>,
    groups: BTreeSet<String>,
    directories: BTreeSet<String>,
    files: BTreeMap<String, String>,
    backups: BTreeSet<String>,
    removed: BTreeSet<String>,
    services: BTreeSet<String>,
    firewall: bool,
    databases: BTreeSet<String>,
    database_users: BTreeSet<String>,
    replication: bool,
    pending: BTreeMap<String, Trigger>,
}

/// Why the local state cannot be moved.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// It is not JSON of the old form.
    #[error("the local state is not one `infra` can read: {0}")]
    Format(String),
    /// It is another topology's.
    #[error("the local state belongs to topology `{found}`, not `{wanted}`")]
    OtherTopology {
        /// Its topology.
        found: String,
        /// Ours.
        wanted: String,
    },
    /// An entry breaks a rule (every name is checked as the topology's are).
    #[error("host `{host}` in the local state: {reason}")]
    Entry {
        /// The host.
        host: String,
        /// What is wrong.
        reason: String,
    },
}

fn names<T: TryFrom<String, Error = String> + Ord>(
    host: &str,
    items: BTreeSet<String>,
) -> Result<BTreeSet<T>, MigrateError> {
    items
        .into_iter()
        .map(|item| {
            T::try_from(item).map_err(|reason| MigrateError::Entry {
                host: host.to_owned(),
                reason,
            })
        })
        .collect()
}

/// Reads an old local state: every host's record, each value checked by the same rules as
/// the topology's (a hand-edited file cannot smuggle a hostile name into a command). File
/// hashes are not taken over: the host's current content is recorded when the record moves.
pub fn read_local_state(
    text: &str,
    topology: &str,
) -> Result<BTreeMap<HostName, HostRecord>, MigrateError> {
    let state: LocalState =
        serde_json::from_str(text).map_err(|e| MigrateError::Format(e.to_string()))?;
    if state.version != 1 {
        return Err(MigrateError::Format(format!("version {}", state.version)));
    }
    if state.topology != topology {
        return Err(MigrateError::OtherTopology {
            found: state.topology,
            wanted: topology.to_owned(),
        });
    }
    let mut records = BTreeMap::new();
    for (host, local) in state.hosts {
        let entry = |reason: String| MigrateError::Entry {
            host: host.clone(),
            reason,
        };
        let name =
            HostName::new(host.clone()).ok_or_else(|| entry("not a host name".to_owned()))?;
        let accounts: BTreeSet<SqlAccount> = names(&host, local.database_users)?;
        let owed: BTreeMap<UnitName, Trigger> = local
            .pending
            .into_iter()
            .map(|(unit, trigger)| Ok((UnitName::try_from(unit).map_err(entry)?, trigger)))
            .collect::<Result<_, MigrateError>>()?;
        let files: BTreeSet<RemotePath> = names(&host, local.files.into_keys().collect())?;
        let record = HostRecord {
            topology: None,
            lineage: state.lineage.clone(),
            serial: 0,
            packages: names::<PackageName>(&host, local.packages)?,
            dependencies: names::<PackageName>(&host, local.dependencies)?,
            users: names::<AccountName>(&host, local.users)?,
            groups: names::<AccountName>(&host, local.groups)?,
            directories: names::<RemotePath>(&host, local.directories)?,
            files: files
                .into_iter()
                .map(|path| {
                    (
                        path,
                        crate::record::RecordedFile {
                            // Replaced by the host's current hash when the record moves.
                            sha256: crate::hash::Sha256::of(b""),
                            sensitivity: crate::desired::Sensitivity::Sensitive,
                        },
                    )
                })
                .collect(),
            backups: names::<RemotePath>(&host, local.backups)?,
            removed: names::<RemotePath>(&host, local.removed)?,
            services: names::<UnitName>(&host, local.services)?,
            firewall: local.firewall,
            databases: names::<SqlName>(&host, local.databases)?,
            accounts,
            replication: local.replication,
            owed,
            interrupted_install: None,
        };
        if !record.is_empty() {
            records.insert(name, record);
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_state_reads_into_records_and_hostile_entries_are_refused() {
        let text = r#"{"version":1,"serial":9,"lineage":"ab12","topology":"scale-up","hosts":{
            "web1":{"packages":["nginx"],"files":{"/etc/nginx/sites-enabled/scale-up":"00"},"services":["nginx.service"],"firewall":true,"pending":{"nginx.service":"reload"}}}}"#;
        let records = read_local_state(text, "scale-up").expect("reads");
        let web1 = &records[&HostName::new("web1").expect("name")];
        assert!(web1.firewall);
        assert_eq!(web1.owed.len(), 1);
        assert!(read_local_state(text, "other").is_err());
        let hostile = text.replace("\"nginx\"]", "\"nginx; reboot\"]");
        assert!(matches!(
            read_local_state(&hostile, "scale-up"),
            Err(MigrateError::Entry { .. })
        ));
        let sql = text.replace("\"firewall\":true", "\"database_users\":[\"x'@'%\"]");
        assert!(read_local_state(&sql, "scale-up").is_err());
    }
}
