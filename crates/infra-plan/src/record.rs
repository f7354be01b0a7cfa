//! What `infra` created on a host, kept on that host: its record.
//!
//! Every CI runner can reach the hosts, so the hosts keep the truth about what `infra` made
//! there, not a file in one working copy. The record lives at
//! `/var/lib/infra/record/<topology>` (root, 0600) as a journal of tab-separated lines, so a step
//! script can append to it with one `printf` in the same round trip as its change:
//!
//! ```text
//! infra-record    1    scale-up    <lineage>
//! serial          7
//! +package        haproxy
//! +file           /etc/haproxy/haproxy.cfg    <sha256>    plain
//! +owed           haproxy.service    reload
//! -owed           haproxy.service
//! intent          install    haproxy keepalived
//! done            install
//! ```
//!
//! A step appends what it is about to make *before* making it (so a crash in between never
//! leaves something of `infra`'s unrecorded) and the rest after. Reading replays the lines in
//! order; a last line without its line break (a crash in the middle of an append) is ignored.
//! Every value is checked by the same rules as the topology's, so a damaged or hand-edited
//! record cannot smuggle a hostile name into a later command.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use infra_topology::{AccountName, Name, PackageName, RemotePath, SqlAccount, SqlName, UnitName};
use serde::{Deserialize, Serialize};

use crate::desired::{Sensitivity, Trigger};
use crate::hash::Sha256;

/// The journal's format version.
pub const FORMAT: u32 = 1;

/// Where `infra` keeps its own things on a host.
pub const STATE_ROOT: &str = "/var/lib/infra";

/// What `infra` created or changed on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    /// The topology it belongs to.
    pub topology: Option<Name>,
    /// A random ID given when the record was first written; it never changes.
    pub lineage: String,
    /// Incremented by every run that changes the host.
    pub serial: u64,
    /// Packages `infra` installed that were not there before.
    pub packages: BTreeSet<PackageName>,
    /// Every package that arrived with them (dependencies included), for a clean removal.
    pub dependencies: BTreeSet<PackageName>,
    /// System users the packages `infra` installed created.
    pub users: BTreeSet<AccountName>,
    /// System groups the packages `infra` installed created.
    pub groups: BTreeSet<AccountName>,
    /// Folders `infra` created.
    pub directories: BTreeSet<RemotePath>,
    /// Files `infra` wrote, with the hash of what it wrote.
    pub files: BTreeMap<RemotePath, RecordedFile>,
    /// Files that existed before `infra` managed them and were backed up (to restore).
    pub backups: BTreeSet<RemotePath>,
    /// Files `infra` removed (kept in the backup folder, restored by destroy).
    pub removed: BTreeSet<RemotePath>,
    /// Services `infra` enabled.
    pub services: BTreeSet<UnitName>,
    /// Whether `infra` loaded its firewall table.
    pub firewall: bool,
    /// Databases `infra` created.
    pub databases: BTreeSet<SqlName>,
    /// Accounts `infra` created.
    pub accounts: BTreeSet<SqlAccount>,
    /// Whether `infra` configured replication here.
    pub replication: bool,
    /// Reloads and restarts owed: a file changed but the run stopped before the service step.
    pub owed: BTreeMap<UnitName, Trigger>,
    /// A package install that started and never recorded its end (a run killed in the
    /// middle): the packages it was installing.
    pub interrupted_install: Option<Vec<PackageName>>,
}

/// A file `infra` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedFile {
    /// SHA-256 of what `infra` wrote.
    pub sha256: Sha256,
    /// Whether it holds a secret (its redacted copy is kept beside the record).
    pub sensitivity: Sensitivity,
}

impl HostRecord {
    /// Whether the record holds nothing `infra` would have to undo.
    pub fn is_empty(&self) -> bool {
        let HostRecord {
            topology: _,
            lineage: _,
            serial: _,
            packages,
            dependencies,
            users,
            groups,
            directories,
            files,
            backups,
            removed,
            services,
            firewall,
            databases,
            accounts,
            replication,
            owed,
            interrupted_install,
        } = self;
        packages.is_empty()
            && dependencies.is_empty()
            && users.is_empty()
            && groups.is_empty()
            && directories.is_empty()
            && files.is_empty()
            && backups.is_empty()
            && removed.is_empty()
            && services.is_empty()
            && !firewall
            && databases.is_empty()
            && accounts.is_empty()
            && !replication
            && owed.is_empty()
            && interrupted_install.is_none()
    }

    /// How many resources the record holds, for `infra state list`.
    pub fn resource_count(&self) -> usize {
        self.packages.len()
            + self.directories.len()
            + self.files.len()
            + self.removed.len()
            + self.services.len()
            + usize::from(self.firewall)
            + self.databases.len()
            + self.accounts.len()
            + usize::from(self.replication)
    }
}

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} of `infra`'s record: {reason}")]
pub struct RecordError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Reads a journal. An empty text is no record at all (`Ok(None)`).
pub fn parse(text: &str) -> Result<Option<HostRecord>, RecordError> {
    // A last line without its line break was cut by a crash: it never happened.
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    if complete.trim().is_empty() {
        return Ok(None);
    }
    let mut record = HostRecord::default();
    for (index, line) in complete.lines().enumerate() {
        let number = index + 1;
        let bad = |reason: String| RecordError {
            line: number,
            reason,
        };
        let fields: Vec<&str> = line.split('\t').collect();
        apply_line(&mut record, &fields, number).map_err(bad)?;
    }
    if record.topology.is_none() {
        return Err(RecordError {
            line: 1,
            reason: "no `infra-record` header".to_owned(),
        });
    }
    Ok(Some(record))
}

fn checked<T: TryFrom<String, Error = String>>(text: &str) -> Result<T, String> {
    T::try_from(text.to_owned())
}

fn apply_line(record: &mut HostRecord, fields: &[&str], number: usize) -> Result<(), String> {
    match fields {
        ["infra-record", format, topology, lineage] => {
            if number != 1 {
                return Err("a second header".to_owned());
            }
            if format.parse::<u32>() != Ok(FORMAT) {
                return Err(format!(
                    "format {format}, but this `infra` reads format {FORMAT}"
                ));
            }
            if lineage.is_empty() || !lineage.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err("a lineage that is not hex".to_owned());
            }
            record.topology = Some(checked(topology)?);
            record.lineage = (*lineage).to_owned();
        }
        _ if number == 1 => return Err("no `infra-record` header".to_owned()),
        ["serial", serial] => {
            record.serial = serial
                .parse()
                .map_err(|_| format!("serial `{serial}` is not a number"))?;
        }
        ["+package", name] => {
            record.packages.insert(checked(name)?);
        }
        ["-package", name] => {
            record.packages.remove(&checked::<PackageName>(name)?);
        }
        ["+dependency", name] => {
            record.dependencies.insert(checked(name)?);
        }
        ["-dependency", name] => {
            record.dependencies.remove(&checked::<PackageName>(name)?);
        }
        ["+user", name] => {
            record.users.insert(checked(name)?);
        }
        ["-user", name] => {
            record.users.remove(&checked::<AccountName>(name)?);
        }
        ["+group", name] => {
            record.groups.insert(checked(name)?);
        }
        ["-group", name] => {
            record.groups.remove(&checked::<AccountName>(name)?);
        }
        ["+directory", path] => {
            record.directories.insert(checked(path)?);
        }
        ["-directory", path] => {
            record.directories.remove(&checked::<RemotePath>(path)?);
        }
        ["+file", path, sha, sensitivity] => {
            let sha256 = Sha256::parse(sha).ok_or_else(|| format!("`{sha}` is not a SHA-256"))?;
            let sensitivity = match *sensitivity {
                "plain" => Sensitivity::Plain,
                "sensitive" => Sensitivity::Sensitive,
                other => return Err(format!("unknown sensitivity `{other}`")),
            };
            record.files.insert(
                checked(path)?,
                RecordedFile {
                    sha256,
                    sensitivity,
                },
            );
        }
        ["-file", path] => {
            record.files.remove(&checked::<RemotePath>(path)?);
        }
        ["+backup", path] => {
            record.backups.insert(checked(path)?);
        }
        ["-backup", path] => {
            record.backups.remove(&checked::<RemotePath>(path)?);
        }
        ["+removed", path] => {
            record.removed.insert(checked(path)?);
        }
        ["-removed", path] => {
            record.removed.remove(&checked::<RemotePath>(path)?);
        }
        ["+service", unit] => {
            record.services.insert(checked(unit)?);
        }
        ["-service", unit] => {
            record.services.remove(&checked::<UnitName>(unit)?);
        }
        ["+firewall"] => record.firewall = true,
        ["-firewall"] => record.firewall = false,
        ["+database", name] => {
            record.databases.insert(checked(name)?);
        }
        ["-database", name] => {
            record.databases.remove(&checked::<SqlName>(name)?);
        }
        ["+account", account] => {
            record.accounts.insert(checked(account)?);
        }
        ["-account", account] => {
            record.accounts.remove(&checked::<SqlAccount>(account)?);
        }
        ["+replication"] => record.replication = true,
        ["-replication"] => record.replication = false,
        ["+owed", unit, trigger] => {
            let trigger = match *trigger {
                "reload" => Trigger::Reload,
                "restart" => Trigger::Restart,
                other => return Err(format!("unknown trigger `{other}`")),
            };
            let unit: UnitName = checked(unit)?;
            let slot = record.owed.entry(unit).or_insert(trigger);
            *slot = (*slot).max(trigger);
        }
        ["-owed", unit] => {
            record.owed.remove(&checked::<UnitName>(unit)?);
        }
        ["intent", "install", packages] => {
            let packages: Result<Vec<PackageName>, String> = packages
                .split(' ')
                .filter(|p| !p.is_empty())
                .map(checked)
                .collect();
            record.interrupted_install = Some(packages?);
        }
        ["done", "install"] => record.interrupted_install = None,
        other => {
            return Err(format!(
                "unknown entry `{}`",
                infra_topology::text::visible_line(other.first().copied().unwrap_or_default())
            ));
        }
    }
    Ok(())
}

/// The record as a compact journal: the header, the serial, and one `+` line per resource.
pub fn format(record: &HostRecord) -> String {
    let mut out = String::new();
    let topology = record
        .topology
        .as_ref()
        .map_or_else(String::new, ToString::to_string);
    let _ = writeln!(
        out,
        "infra-record\t{FORMAT}\t{topology}\t{}",
        record.lineage
    );
    let _ = writeln!(out, "serial\t{}", record.serial);
    for line in resource_lines(record) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// One `+` line per resource of `record`.
pub fn resource_lines(record: &HostRecord) -> Vec<String> {
    let mut lines = Vec::new();
    lines.extend(record.packages.iter().map(|p| format!("+package\t{p}")));
    lines.extend(
        record
            .dependencies
            .iter()
            .map(|p| format!("+dependency\t{p}")),
    );
    lines.extend(record.users.iter().map(|u| format!("+user\t{u}")));
    lines.extend(record.groups.iter().map(|g| format!("+group\t{g}")));
    lines.extend(
        record
            .directories
            .iter()
            .map(|d| format!("+directory\t{d}")),
    );
    lines.extend(record.files.iter().map(|(path, file)| {
        format!(
            "+file\t{path}\t{}\t{}",
            file.sha256,
            sensitivity_word(file.sensitivity)
        )
    }));
    lines.extend(record.backups.iter().map(|p| format!("+backup\t{p}")));
    lines.extend(record.removed.iter().map(|p| format!("+removed\t{p}")));
    lines.extend(record.services.iter().map(|u| format!("+service\t{u}")));
    if record.firewall {
        lines.push("+firewall".to_owned());
    }
    lines.extend(record.databases.iter().map(|d| format!("+database\t{d}")));
    lines.extend(record.accounts.iter().map(|a| format!("+account\t{a}")));
    if record.replication {
        lines.push("+replication".to_owned());
    }
    lines.extend(
        record
            .owed
            .iter()
            .map(|(unit, trigger)| format!("+owed\t{unit}\t{}", trigger.verb())),
    );
    if let Some(packages) = &record.interrupted_install {
        let names: Vec<&str> = packages.iter().map(PackageName::as_str).collect();
        lines.push(format!("intent\tinstall\t{}", names.join(" ")));
    }
    lines
}

/// One resource of a record, as `infra state rm` names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum RecordEntry {
    /// A package `infra` installed.
    Package(PackageName),
    /// A folder `infra` created.
    Directory(RemotePath),
    /// A file `infra` wrote.
    File(RemotePath),
    /// A file `infra` removed.
    AbsentFile(RemotePath),
    /// A unit `infra` enabled.
    Service(UnitName),
    /// The firewall table.
    Firewall,
    /// A database `infra` created.
    Database(SqlName),
    /// An account `infra` created.
    DatabaseUser(SqlAccount),
    /// The replication `infra` configured.
    Replication,
}

impl RecordEntry {
    /// The journal line that forgets it.
    pub fn forget_line(&self) -> String {
        match self {
            RecordEntry::Package(name) => format!("-package\t{name}"),
            RecordEntry::Directory(path) => format!("-directory\t{path}"),
            RecordEntry::File(path) => format!("-file\t{path}"),
            RecordEntry::AbsentFile(path) => format!("-removed\t{path}"),
            RecordEntry::Service(unit) => format!("-service\t{unit}"),
            RecordEntry::Firewall => "-firewall".to_owned(),
            RecordEntry::Database(name) => format!("-database\t{name}"),
            RecordEntry::DatabaseUser(account) => format!("-account\t{account}"),
            RecordEntry::Replication => "-replication".to_owned(),
        }
    }

    /// Whether `record` holds it.
    pub fn is_in(&self, record: &HostRecord) -> bool {
        match self {
            RecordEntry::Package(name) => record.packages.contains(name),
            RecordEntry::Directory(path) => record.directories.contains(path),
            RecordEntry::File(path) => record.files.contains_key(path),
            RecordEntry::AbsentFile(path) => record.removed.contains(path),
            RecordEntry::Service(unit) => record.services.contains(unit),
            RecordEntry::Firewall => record.firewall,
            RecordEntry::Database(name) => record.databases.contains(name),
            RecordEntry::DatabaseUser(account) => record.accounts.contains(account),
            RecordEntry::Replication => record.replication,
        }
    }

    /// Reads `kind["name"]` (the resource part of a plan's address).
    pub fn parse(text: &str) -> Result<RecordEntry, String> {
        let (kind, rest) = text.split_once('[').unwrap_or((text, ""));
        let name = rest
            .strip_suffix(']')
            .map(|n| n.trim_matches('"').to_owned())
            .unwrap_or_default();
        let need = |what: &str| format!("`{kind}[\"...\"]` needs the {what} in brackets");
        let checked = |what: &str| -> Result<String, String> {
            if name.is_empty() {
                Err(need(what))
            } else {
                Ok(name.clone())
            }
        };
        Ok(match kind {
            "package" => RecordEntry::Package(PackageName::try_from(checked("package")?)?),
            "directory" => RecordEntry::Directory(RemotePath::try_from(checked("path")?)?),
            "file" => RecordEntry::File(RemotePath::try_from(checked("path")?)?),
            "absent_file" => RecordEntry::AbsentFile(RemotePath::try_from(checked("path")?)?),
            "service" => RecordEntry::Service(UnitName::try_from(checked("unit")?)?),
            "firewall" => RecordEntry::Firewall,
            "database" => RecordEntry::Database(SqlName::try_from(checked("database")?)?),
            "database_user" => {
                RecordEntry::DatabaseUser(SqlAccount::try_from(checked("account")?)?)
            }
            "replication" => RecordEntry::Replication,
            other => {
                return Err(format!(
                    "`{}` is not a resource kind of a record (package, directory, file, absent_file, service, firewall, database, database_user, replication)",
                    infra_topology::text::visible_line(other)
                ));
            }
        })
    }
}

/// How a file's sensitivity is written in the journal.
pub fn sensitivity_word(sensitivity: Sensitivity) -> &'static str {
    match sensitivity {
        Sensitivity::Plain => "plain",
        Sensitivity::Sensitive => "sensitive",
    }
}

/// A new random lineage (16 bytes of the kernel's randomness, hex).
pub fn new_lineage() -> String {
    crate::hash::hex(&crate::hash::random_bytes::<16>())
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOURNAL: &str = "infra-record\t1\tscale-up\tab12\n\
        serial\t3\n\
        +package\thaproxy\n+dependency\tlibx\n+user\thaproxy\n\
        +file\t/etc/haproxy/haproxy.cfg\t0000000000000000000000000000000000000000000000000000000000000000\tsensitive\n\
        +owed\thaproxy.service\treload\n-owed\thaproxy.service\n\
        +owed\tnginx.service\treload\n+owed\tnginx.service\trestart\n\
        +account\tcounter@10.0.0.31\n\
        intent\tinstall\thaproxy keepalived\n\
        serial\t4\n";

    #[test]
    fn a_journal_replays_to_its_record_and_formats_back() {
        let record = parse(JOURNAL).expect("parses").expect("a record");
        assert_eq!(record.serial, 4);
        assert_eq!(record.topology.as_ref().map(Name::as_str), Some("scale-up"));
        assert!(record.packages.iter().any(|p| p.as_str() == "haproxy"));
        assert_eq!(record.owed.len(), 1, "{:?}", record.owed);
        assert_eq!(record.owed.values().next(), Some(&Trigger::Restart));
        assert_eq!(record.interrupted_install.as_ref().map(Vec::len), Some(2));
        let again = parse(&format(&record)).expect("parses").expect("a record");
        assert_eq!(again, record);
    }

    #[test]
    fn a_cut_last_line_never_happened() {
        let cut = format!("{JOURNAL}+package\tngi");
        let record = parse(&cut).expect("parses").expect("a record");
        assert!(!record.packages.iter().any(|p| p.as_str() == "ngi"));
    }

    #[test]
    fn state_rm_names_are_checked() {
        assert_eq!(
            RecordEntry::parse("package[\"haproxy\"]")
                .expect("parses")
                .forget_line(),
            "-package\thaproxy"
        );
        assert!(
            RecordEntry::parse("file[\"/etc/x\ty\"]").is_err(),
            "no tab can split a line"
        );
        assert!(RecordEntry::parse("package[\"x\n+package\ty\"]").is_err());
        assert!(RecordEntry::parse("bogus[\"x\"]").is_err());
        assert_eq!(
            RecordEntry::parse("firewall").expect("parses"),
            RecordEntry::Firewall
        );
    }

    #[test]
    fn hostile_or_damaged_lines_are_refused_with_their_line() {
        let hostile = "infra-record\t1\tt\tab\n+package\tx; reboot\n";
        assert_eq!(parse(hostile).expect_err("refused").line, 2);
        let account = "infra-record\t1\tt\tab\n+account\tx'@'%\n";
        assert!(parse(account).is_err());
        let path = "infra-record\t1\tt\tab\n+file\t/etc/../root/.ssh/x\t00\tplain\n";
        assert!(parse(path).is_err());
        assert!(parse("+package\thaproxy\n").is_err(), "no header");
        assert!(parse("infra-record\t9\tt\tab\n").is_err(), "a newer format");
        assert_eq!(parse("").expect("empty"), None);
    }
}
