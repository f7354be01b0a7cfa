//! What a host is like now: the facts `plan` compares the desired state with.
//!
//! Facts come from one script per host ([`gather_script`]), run in a single SSH round trip.
//! The script prints one record per line (fields separated by tabs, file contents in base64),
//! which [`parse`] turns into [`HostFacts`]. Both are pure, so they are tested without hosts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::desired::HostState;
use crate::paths;
use crate::shell::quote;

/// Everything `plan` needs to know about one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    /// `ID VERSION_ID` from /etc/os-release, e.g. `debian 12`.
    pub os: Option<String>,
    /// Managed packages and their installed version (`None`: not installed).
    pub packages: BTreeMap<String, Option<String>>,
    /// Managed files.
    pub files: BTreeMap<String, FileFact>,
    /// Managed directories.
    pub directories: BTreeMap<String, Option<Ownership>>,
    /// Managed services.
    pub services: BTreeMap<String, ServiceFact>,
    /// The firewall table.
    pub firewall: FirewallFact,
    /// Database objects, on database hosts where MariaDB runs.
    pub database: Option<DatabaseFacts>,
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

/// A managed file as it is on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileFact {
    /// Nothing at that path.
    Absent,
    /// Something that is not a regular file (a directory, a link...).
    Other,
    /// A regular file.
    File {
        /// Owner, group, mode.
        ownership: Ownership,
        /// SHA-256 of its content, hex.
        sha256: String,
        /// Its content, sent only when it differs from the desired content.
        #[serde(skip)]
        content: Option<Vec<u8>>,
    },
}

/// A service's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceFact {
    /// `systemctl is-enabled` (`enabled`, `disabled`, empty when the unit does not exist).
    pub enabled: String,
    /// `systemctl is-active` (`active`, `inactive`, `failed`...).
    pub active: String,
}

impl ServiceFact {
    /// Enabled and running.
    pub fn is_up(&self) -> bool {
        self.enabled == "enabled" && self.active == "active"
    }
}

/// The state of `infra`'s nftables table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallFact {
    /// Whether `nft` is installed.
    pub nft_installed: bool,
    /// SHA-256 of `nft list table inet infra` now, when the table exists.
    pub loaded_sha256: Option<String>,
    /// The same hash recorded by the last apply, when there was one.
    pub recorded_sha256: Option<String>,
    /// SHA-256 of the rules file that apply loaded then.
    pub recorded_file_sha256: Option<String>,
}

impl FirewallFact {
    /// The table is loaded and nobody changed it since `infra` loaded it.
    pub fn is_current(&self) -> bool {
        self.loaded_sha256.is_some() && self.loaded_sha256 == self.recorded_sha256
    }
}

/// MariaDB objects on a database host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseFacts {
    /// Whether the server answered at all.
    pub reachable: bool,
    /// Databases that exist, among the managed ones.
    pub databases: Vec<String>,
    /// Accounts `user@host` with their password hash (`authentication_string`).
    pub users: BTreeMap<String, String>,
    /// Accounts with all privileges on the managed database.
    pub database_grants: Vec<String>,
    /// Accounts with the replication privilege.
    pub replication_grants: Vec<String>,
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

/// The script that gathers `state`'s facts on its host, in one run of `sh -s`.
/// Every value in it is shell-quoted (and was validated when the topology was loaded).
pub fn gather_script(state: &HostState) -> String {
    let mut script = String::from(GATHER_FUNCTIONS);
    let packages: Vec<String> = state.packages.iter().map(|p| quote(p)).collect();
    if !packages.is_empty() {
        let _ = writeln!(script, "packages {}", packages.join(" "));
    }
    for directory in &state.directories {
        let _ = writeln!(script, "directory {}", quote(&directory.path));
    }
    for file in &state.files {
        let _ = writeln!(script, "file {} {}", quote(&file.path), quote(&file.sha256));
    }
    for path in &state.absent_files {
        let _ = writeln!(script, "file {} -", quote(path));
    }
    let units: Vec<String> = state.services.iter().map(|s| quote(&s.unit)).collect();
    if !units.is_empty() {
        let _ = writeln!(script, "services {}", units.join(" "));
    }
    let _ = writeln!(script, "firewall {}", quote(paths::FIREWALL_RECORD));
    if let Some(database) = &state.database {
        let mut users = Vec::new();
        for account in &database.users {
            users.push(quote(&account.name));
        }
        let _ = writeln!(
            script,
            "database {} {}",
            quote(&database.database),
            users.join(" ")
        );
    }
    script
}

/// The shell functions the gather script calls; each prints records.
const GATHER_FUNCTIONS: &str = r#"set -u
export LC_ALL=C
tab=$(printf '\t')
. /etc/os-release 2>/dev/null && printf 'os\t%s %s\n' "${ID:-}" "${VERSION_ID:-}"
packages() {
  dpkg-query -W -f='${Package}\t${db:Status-Abbrev}\t${Version}\n' "$@" 2>/dev/null | while IFS="$tab" read -r p status version; do
    case "$status" in
      ii*) printf 'package\t%s\t%s\n' "$p" "$version" ;;
      *) printf 'package\t%s\t-\n' "$p" ;;
    esac
  done
}
ownership() { stat --printf '%U\t%G\t%a' "$1"; }
directory() {
  if [ -d "$1" ] && [ ! -L "$1" ]; then printf 'directory\t%s\t%s\n' "$1" "$(ownership "$1")"
  else printf 'directory\t%s\t-\n' "$1"; fi
}
file() {
  if [ -f "$1" ] && [ ! -L "$1" ]; then
    s=$(sha256sum < "$1") && s=${s%% *}
    printf 'file\t%s\t%s\t%s\n' "$1" "$(ownership "$1")" "$s"
    if [ "$2" != "-" ] && [ "$s" != "$2" ]; then
      printf 'content\t%s\t' "$1"; base64 -w0 < "$1"; printf '\n'
    fi
  elif [ -e "$1" ] || [ -L "$1" ]; then printf 'file\t%s\tother\n' "$1"
  else printf 'file\t%s\t-\n' "$1"; fi
}
services() {
  systemctl show --property=Id,UnitFileState,ActiveState "$@" 2>/dev/null | awk -F= '
    /^Id=/ { id = substr($0, 4) }
    /^UnitFileState=/ { enabled = substr($0, 15) }
    /^ActiveState=/ { active = substr($0, 13) }
    /^$/ { if (id != "") printf "service\t%s\t%s\t%s\n", id, enabled, active; id = ""; enabled = ""; active = "" }
    END { if (id != "") printf "service\t%s\t%s\t%s\n", id, enabled, active }'
}
firewall() {
  if command -v nft >/dev/null 2>&1; then
    if t=$(nft list table inet infra 2>/dev/null); then
      s=$(printf '%s\n' "$t" | sha256sum) && printf 'firewall\tloaded\t%s\n' "${s%% *}"
    else printf 'firewall\tnot-loaded\n'; fi
  else printf 'firewall\tno-nft\n'; fi
  if [ -f "$1" ]; then printf 'firewall\trecorded\t%s\n' "$(cat "$1")"; fi
}
database() {
  db=$1; shift
  if ! command -v mariadb >/dev/null 2>&1 || ! systemctl is-active --quiet mariadb.service; then
    printf 'db\tdown\n'; return 0
  fi
  list=""
  for u in "$@"; do list="$list${list:+,}'$u'"; done
  q="SELECT 'db', 'up';
SELECT 'db', 'database', SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '$db';
SELECT 'db', 'user', CONCAT(User, '@', Host), authentication_string FROM mysql.user WHERE User IN ($list);
SELECT 'db', 'grant', CONCAT(User, '@', Host) FROM mysql.db WHERE Db = '$db' AND Select_priv = 'Y' AND Insert_priv = 'Y' AND Update_priv = 'Y' AND Delete_priv = 'Y' AND Create_priv = 'Y' AND Drop_priv = 'Y' AND Alter_priv = 'Y' AND Index_priv = 'Y' AND User IN ($list);
SELECT 'db', 'replication-grant', CONCAT(User, '@', Host) FROM mysql.user WHERE Repl_slave_priv = 'Y' AND User IN ($list);
SELECT 'db', 'read-only', @@read_only;"
  mariadb --batch --skip-column-names -e "$q" 2>/dev/null || { printf 'db\tdown\n'; return 0; }
  mariadb --batch --vertical -e 'SHOW REPLICA STATUS' 2>/dev/null | awk -F': ' '
    { key = $1; sub(/^ +/, "", key); value = substr($0, index($0, ": ") + 2) }
    key ~ /^(Master_Host|Master_Port|Master_User|Slave_IO_Running|Slave_SQL_Running|Using_Gtid)$/ { printf "db\treplica\t%s\t%s\n", key, value }'
}
"#;

/// Why the script's output could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable fact record on line {line}: {reason}")]
pub struct FactsError {
    /// 1-based line of the output.
    pub line: usize,
    /// What was wrong.
    pub reason: String,
}

fn ownership(owner: &str, group: &str, mode: &str, line: usize) -> Result<Ownership, FactsError> {
    Ok(Ownership {
        owner: owner.to_owned(),
        group: group.to_owned(),
        mode: u32::from_str_radix(mode, 8).map_err(|_| FactsError {
            line,
            reason: format!("mode `{mode}` is not octal"),
        })?,
    })
}

/// Reads the gather script's output.
pub fn parse(output: &str) -> Result<HostFacts, FactsError> {
    let mut facts = HostFacts::default();
    let mut contents: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut replication = ReplicationFact::default();
    let mut saw_replication = false;
    for (index, line) in output.lines().enumerate() {
        let number = index + 1;
        let fields: Vec<&str> = line.split('\t').collect();
        let bad = |reason: &str| FactsError {
            line: number,
            reason: reason.to_owned(),
        };
        match fields.as_slice() {
            ["os", rest] => facts.os = Some((*rest).trim().to_owned()),
            ["package", name, "-"] => {
                facts.packages.insert((*name).to_owned(), None);
            }
            ["package", name, version] => {
                facts
                    .packages
                    .insert((*name).to_owned(), Some((*version).to_owned()));
            }
            ["directory", path, "-"] => {
                facts.directories.insert((*path).to_owned(), None);
            }
            ["directory", path, owner, group, mode] => {
                facts.directories.insert(
                    (*path).to_owned(),
                    Some(ownership(owner, group, mode, number)?),
                );
            }
            ["file", path, "-"] => {
                facts.files.insert((*path).to_owned(), FileFact::Absent);
            }
            ["file", path, "other"] => {
                facts.files.insert((*path).to_owned(), FileFact::Other);
            }
            ["file", path, owner, group, mode, sha256] => {
                facts.files.insert(
                    (*path).to_owned(),
                    FileFact::File {
                        ownership: ownership(owner, group, mode, number)?,
                        sha256: (*sha256).to_owned(),
                        content: None,
                    },
                );
            }
            ["content", path, data] => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data.trim())
                    .map_err(|_| bad("content is not base64"))?;
                contents.insert((*path).to_owned(), bytes);
            }
            ["content", path] => {
                contents.insert((*path).to_owned(), Vec::new());
            }
            ["service", unit, enabled, active] => {
                facts.services.insert(
                    (*unit).to_owned(),
                    ServiceFact {
                        enabled: (*enabled).to_owned(),
                        active: (*active).to_owned(),
                    },
                );
            }
            ["firewall", "loaded", sha] => {
                facts.firewall.nft_installed = true;
                facts.firewall.loaded_sha256 = Some((*sha).to_owned());
            }
            ["firewall", "not-loaded"] => facts.firewall.nft_installed = true,
            ["firewall", "no-nft"] => facts.firewall.nft_installed = false,
            ["firewall", "recorded", record] => {
                let mut parts = record.split_whitespace();
                facts.firewall.recorded_sha256 = parts.next().map(str::to_owned);
                facts.firewall.recorded_file_sha256 = parts.next().map(str::to_owned);
            }
            ["db", "down"] => facts.database = Some(DatabaseFacts::default()),
            ["db", rest @ ..] => {
                let database = facts.database.get_or_insert_with(DatabaseFacts::default);
                match rest {
                    ["up"] => database.reachable = true,
                    ["database", name] => database.databases.push((*name).to_owned()),
                    ["user", account, hash] => {
                        database
                            .users
                            .insert((*account).to_owned(), (*hash).to_owned());
                    }
                    ["grant", account] => database.database_grants.push((*account).to_owned()),
                    ["replication-grant", account] => {
                        database.replication_grants.push((*account).to_owned())
                    }
                    ["read-only", value] => database.read_only = Some(*value == "1"),
                    ["replica", key, value] => {
                        saw_replication = true;
                        let value = (*value).to_owned();
                        match *key {
                            "Master_Host" => replication.source_host = value,
                            "Master_Port" => replication.source_port = value,
                            "Master_User" => replication.user = value,
                            "Slave_IO_Running" => replication.io_running = value,
                            "Slave_SQL_Running" => replication.sql_running = value,
                            "Using_Gtid" => replication.using_gtid = value,
                            _ => {}
                        }
                    }
                    _ => return Err(bad("unknown database record")),
                }
            }
            [""] => {}
            _ => {
                return Err(bad(&format!(
                    "unknown record `{}`",
                    fields.first().copied().unwrap_or_default()
                )));
            }
        }
    }
    for (path, bytes) in contents {
        if let Some(FileFact::File { content, .. }) = facts.files.get_mut(&path) {
            *content = Some(bytes);
        }
    }
    if saw_replication && let Some(database) = &mut facts.database {
        database.replication = Some(replication);
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_kind_parses() {
        let output = "os\tdebian 12\n\
            package\thaproxy\t2.6.12-1\npackage\tnginx\t-\n\
            directory\t/etc/infra\troot\troot\t755\ndirectory\t/var/www/x\t-\n\
            file\t/etc/a\troot\troot\t644\tabc\ncontent\t/etc/a\taGVsbG8=\n\
            file\t/etc/b\t-\nfile\t/etc/c\tother\n\
            service\tnginx.service\tenabled\tactive\nservice\tx.service\t\tinactive\n\
            firewall\tloaded\t111\nfirewall\trecorded\t111\n\
            db\tup\ndb\tdatabase\tscaleup\ndb\tuser\tapp@10.0.0.1\t*ABC\ndb\tgrant\tapp@10.0.0.1\n\
            db\treplication-grant\trepl@10.0.0.2\ndb\tread-only\t1\n\
            db\treplica\tMaster_Host\t10.0.0.1\ndb\treplica\tSlave_IO_Running\tYes\n";
        let facts = parse(output).expect("parses");
        assert_eq!(facts.os.as_deref(), Some("debian 12"));
        assert_eq!(facts.packages["haproxy"].as_deref(), Some("2.6.12-1"));
        assert_eq!(facts.packages["nginx"], None);
        assert_eq!(
            facts.directories["/etc/infra"].as_ref().map(|o| o.mode),
            Some(0o755)
        );
        match &facts.files["/etc/a"] {
            FileFact::File {
                content, ownership, ..
            } => {
                assert_eq!(content.as_deref(), Some(&b"hello"[..]));
                assert_eq!(ownership.mode, 0o644);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(facts.files["/etc/b"], FileFact::Absent);
        assert!(facts.services["nginx.service"].is_up());
        assert!(!facts.services["x.service"].is_up());
        assert!(facts.firewall.is_current());
        let db = facts.database.expect("database facts");
        assert!(db.reachable);
        assert_eq!(db.read_only, Some(true));
        assert_eq!(db.replication.expect("replica").io_running, "Yes");
    }

    #[test]
    fn garbage_is_an_error_with_its_line() {
        let error = parse("os\tdebian 12\nbogus\tx\n").expect_err("bogus");
        assert_eq!(error.line, 2);
        assert!(parse("directory\t/x\troot\troot\tzz\n").is_err());
        assert!(parse("content\t/x\t!!!\n").is_err());
    }
}
