//! The fact-gathering script: one round trip per host. It reads the host's record first and
//! asks about everything the record names as well as everything the desired state names, and
//! it applies [`infra_plan::facts::shown_rule`] on the host, so the content of a file that is
//! or was sensitive never leaves it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use infra_plan::facts::{
    DatabaseFacts, DirectoryFact, FileFact, GatherRequest, HostFacts, Ownership, PackageFact,
    ReplicationFact, ServiceFact, Shown,
};
use infra_plan::hash::Sha256;
use infra_plan::lock::{Lease, LockFact, LockHolder};
use infra_plan::preflight::InterfaceFact;
use infra_plan::record::sensitivity_word;
use infra_plan::shell::quote;
use infra_topology::{PackageName, RemotePath, SqlAccount, SqlName, UnitName};

use super::{decode, decode_text, prelude};

/// Content larger than this is not sent for a diff.
const SHOWN_LIMIT: u64 = 256 * 1024;

// Forks are what a gather costs a host (tens of hosts share a controller's and a hypervisor's
// cores), so the script runs few programs: one pass over the record in the shell itself, one
// `dpkg-query`, one `stat` per kind, one `sha256sum`, one `systemctl show`, one `nft`; the
// controller reads their raw output. Names read from the record are checked against their
// kind's form with `case` before they reach a command line.
const FUNCTIONS: &str = r#"tab='	'
. /etc/os-release 2>/dev/null && printf 'os\t%s %s\n' "${ID:-}" "${VERSION_ID:-}"
# Preflight: the clock, free space in /var, and who holds apt's and dpkg's locks.
# (three programs, no subshell: their raw output is read by the controller)
printf 'clock\t'; date +%s
printf 'df\n'; df -Pk /var 2>/dev/null; printf 'df-end\n'
printf 'locks\n'; lslocks -rn -o COMMAND,PID,PATH 2>/dev/null; printf 'locks-end\n'
current=""
if [ -f "$J" ]; then
  current=$(replay "$J" compact)
  [ -z "$current" ] || printf '%s\n' "$current"
fi
if [ -d "$R/lock" ]; then
  h=$(cat "$R/lock/holder" 2>/dev/null)
  e=$(printf '%s\n' "$h" | sed -n 's/^expires\t//p')
  lease=live; case "$e" in ''|*[!0-9]*) ;; *) [ "$(date +%s)" -gt "$e" ] && lease=expired ;; esac
  printf 'lock\t%s\t%s\n' "$(printf '%s' "$h" | base64 -w0)" "$lease"
fi
is_package() { case $1 in [a-z0-9]?*) ;; *) return 1 ;; esac; case $1 in *[!a-z0-9+.-]*) return 1 ;; esac; }
is_path() { case $1 in /?*) ;; *) return 1 ;; esac; case $1 in *[!A-Za-z0-9/._-]*) return 1 ;; esac; }
is_unit() {
  case $1 in [A-Za-z0-9]*.service|[A-Za-z0-9]*.socket|[A-Za-z0-9]*.timer|[A-Za-z0-9]*.target) ;; *) return 1 ;; esac
  case $1 in *[!A-Za-z0-9@._-]*) return 1 ;; esac
}
is_sql() { case $1 in ?*) ;; *) return 1 ;; esac; case $1 in *[!A-Za-z0-9_]*) return 1 ;; esac; [ ${#1} -le 32 ]; }
is_account() {
  u=${1%%@*}; a=${1#*@}
  [ "$u@$a" = "$1" ] && is_sql "$u" || return 1
  case $a in ?*) ;; *) return 1 ;; esac; case $a in *[!0-9a-fA-F.:]*) return 1 ;; esac
}
# The record's names by kind (each checked: the record is root's, but a name that slipped past
# its rules must not reach a command line).
rpackages=; rdirectories=; rfiles=; runits=; raccounts=; rdatabase=
while IFS="$tab" read -r tag kind name rest; do
  case "$kind" in
    +package|+dependency) is_package "$name" && rpackages="$rpackages $name" ;;
    +directory) is_path "$name" && rdirectories="$rdirectories $name" ;;
    +file) is_path "$name" && rfiles="$rfiles $name" ;;
    +service) is_unit "$name" && runits="$runits $name" ;;
    +account) is_account "$name" && raccounts="$raccounts ${name%%@*}" ;;
    +database) is_sql "$name" && [ -z "$rdatabase" ] && rdatabase=$name ;;
  esac
done <<RECORD
$current
RECORD
packages() {
  [ $# -gt 0 ] || return 0
  dpkg-query -W -f='package\t${Package}\t${db:Status-Abbrev}\t${Version}\n' "$@" 2>/dev/null
}
# stats FOLDER... / FILE...: type, owner, group and mode of the paths that exist (links not
# followed); `/`, which is never one of them, parts the folders from the files
stats() { stat --printf='stat\t%n\t%F\t%U\t%G\t%a\n' -- "$@" 2>/dev/null; }
# hashes PATH...: the SHA-256 of each regular file (never a FIFO or a link's target)
hashes() {
  for f in "$@"; do shift; if [ -f "$f" ] && [ ! -L "$f" ]; then set -- "$@" "$f"; fi; done
  [ $# -gt 0 ] || return 0
  sha256sum --tag -- "$@" 2>/dev/null
}
# shown PATH WANTED(sha|-) SENSITIVITY(plain|sensitive): what the shown rule lets leave the host
# of a file whose hash is not the wanted one
shown() {
  [ "$2" != - ] || return 0
  s=
  while read -r tag p eq sum; do [ "$p" = "($1)" ] && s=$sum; done <<SUMS
$sums
SUMS
  [ -n "$s" ] && [ "$s" != "$2" ] || return 0
  r=$(printf '%s\n' "$current" | awk -F'\t' -v p="$1" '$2 == "+file" && $3 == p { print $4 " " $5 }')
  rs=${r%% *}; rsens=${r#* }
  if [ "$3" = sensitive ] || [ "$rsens" = sensitive ]; then
    if [ "$rsens" = sensitive ] && [ "$rs" = "$s" ] && [ -f "$D$1" ]; then
      printf 'redacted\t%s\t%s\n' "$1" "$(base64 -w0 < "$D$1")"
    fi
  elif [ "$(stat -c %s "$1")" -le SHOWN_LIMIT ]; then
    printf 'content\t%s\t' "$1"; base64 -w0 < "$1"; printf '\n'
  fi
}
services() {
  [ $# -gt 0 ] || return 0
  printf 'services\n'
  systemctl show --property=Id,UnitFileState,ActiveState -- "$@" 2>/dev/null
  printf '\nservices-end\n'
}
firewall() {
  if command -v nft >/dev/null 2>&1; then
    if t=$(nft list table inet infra 2>/dev/null); then
      printf 'firewall\tbegin\n%s\nfirewall\tend\n' "$t"
    else printf 'firewall\tnot-loaded\n'; fi
  else printf 'firewall\tno-nft\n'; fi
  if [ -f "$R/firewall.sha256" ]; then
    fw=; { IFS= read -r fw || [ -n "$fw" ]; } < "$R/firewall.sha256"
    printf 'firewall\trecorded\t%s\n' "$fw"
  fi
}
# database DB USER...: names were checked (SQL identifiers), so they sit in quotes as they are.
database() {
  db=$1; shift
  if ! command -v mariadb >/dev/null 2>&1 || ! systemctl is-active --quiet mariadb.service; then
    printf 'db\tdown\n'; return 0
  fi
  list="''"
  for u in "$@"; do list="$list,'$u'"; done
  q="SELECT 'db', 'up';
SELECT 'db', 'database', SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '$db';
SELECT 'db', 'user', CONCAT(u.User, '@', u.Host), u.authentication_string, IF(IFNULL(JSON_LENGTH(g.Priv, '\$.auth_or'), 0) > 1, 'retained', 'single') FROM mysql.user u LEFT JOIN mysql.global_priv g ON g.User = u.User AND g.Host = u.Host WHERE u.User IN ($list);
SELECT 'db', 'grant', CONCAT(User, '@', Host) FROM mysql.db WHERE Db = '$db' AND Select_priv = 'Y' AND Insert_priv = 'Y' AND Update_priv = 'Y' AND Delete_priv = 'Y' AND Create_priv = 'Y' AND Drop_priv = 'Y' AND Alter_priv = 'Y' AND Index_priv = 'Y' AND User IN ($list);
SELECT 'db', 'replication-grant', CONCAT(User, '@', Host) FROM mysql.user WHERE Repl_slave_priv = 'Y' AND User IN ($list);
SELECT 'db', 'monitor-grant', CONCAT(u.User, '@', u.Host) FROM mysql.user u WHERE u.Process_priv = 'Y' AND u.User IN ($list) AND EXISTS (SELECT 1 FROM information_schema.USER_PRIVILEGES p WHERE p.GRANTEE = CONCAT('''', u.User, '''@''', u.Host, '''') AND p.PRIVILEGE_TYPE = 'SLAVE MONITOR');
SELECT 'db', 'read-only', @@read_only;"
  mariadb --connect-timeout=10 --batch --skip-column-names -e "$q" 2>/dev/null || { printf 'db\tdown\n'; return 0; }
  mariadb --connect-timeout=10 --batch --vertical -e 'SHOW REPLICA STATUS' 2>/dev/null | awk -F': ' '
    { key = $1; sub(/^ +/, "", key); value = substr($0, index($0, ": ") + 2) }
    key ~ /^(Master_Host|Master_Port|Master_User|Slave_IO_Running|Slave_SQL_Running|Using_Gtid)$/ { printf "db\treplica\t%s\t%s\n", key, value }'
}
"#;

/// The script that gathers `request`'s facts.
pub fn script(request: &GatherRequest) -> String {
    let mut script = prelude(&request.topology);
    script.push_str(&FUNCTIONS.replace("SHOWN_LIMIT", &SHOWN_LIMIT.to_string()));
    let words = |items: Vec<&str>| items.into_iter().map(quote).collect::<Vec<_>>().join(" ");
    let _ = writeln!(
        script,
        "packages {} $rpackages",
        words(request.packages.iter().map(PackageName::as_str).collect())
    );
    // Files the record names that this run does not ask about are looked at too (plainly).
    let asked: Vec<&str> = request.files.iter().map(|q| q.path.as_str()).collect();
    let _ = writeln!(
        script,
        "asked={}\n\
         files=; for f in $rfiles; do case \"$asked\" in *\" $f \"*) ;; *) files=\"$files $f\" ;; esac; done\n\
         stats {} $rdirectories / {list} $files\n\
         sums=$(hashes {list} $files)\n\
         [ -z \"$sums\" ] || printf '%s\\n' \"$sums\"",
        quote(&format!(" {} ", asked.join(" "))),
        words(request.directories.iter().map(RemotePath::as_str).collect()),
        list = words(asked.clone()),
    );
    for query in &request.files {
        if let Some(wanted) = &query.wanted {
            let _ = writeln!(
                script,
                "shown {} {} {}",
                quote(query.path.as_str()),
                quote(wanted.as_str()),
                sensitivity_word(query.sensitivity)
            );
        }
    }
    let _ = writeln!(
        script,
        "services {} $runits",
        words(request.units.iter().map(UnitName::as_str).collect())
    );
    script.push_str("firewall\n");
    if let Some(interface) = request
        .preflight
        .as_ref()
        .and_then(|p| p.interface.as_ref())
    {
        let name = quote(interface);
        let _ = writeln!(
            script,
            "if [ -e /sys/class/net/{name} ]; then printf 'interface\\t%s\\tpresent\\t%s\\n' {name} \"$(ip -o addr show dev {name} 2>/dev/null | tr '\\n' '\\001')\"\n\
             else n=; for d in /sys/class/net/*; do n=\"$n ${{d##*/}}\"; done; printf 'interface\\t%s\\tmissing\\t%s\\n' {name} \"$n\"; fi"
        );
    }
    if let Some(files) = &request.certificate {
        for path in files.paths() {
            let p = quote(path.as_str());
            let _ = writeln!(
                script,
                "if [ -f {p} ] && [ ! -L {p} ]; then printf 'certificate\\t%s\\t%s\\n' {p} \"$(base64 -w0 < {p})\"; fi"
            );
        }
    }
    let database = request.database.as_ref();
    let users: Vec<&str> = database
        .map(|d| d.users.iter().map(SqlName::as_str).collect())
        .unwrap_or_default();
    match database {
        Some(query) => {
            let _ = writeln!(
                script,
                "database {} {} $raccounts",
                quote(query.database.as_str()),
                words(users)
            );
        }
        None => {
            script.push_str(
                "if [ -n \"$raccounts$rdatabase\" ]; then database \"${rdatabase:-none}\" $raccounts; fi\n",
            );
        }
    }
    script
}

fn ownership(owner: &str, group: &str, mode: &str) -> Result<Ownership, String> {
    Ok(Ownership {
        owner: owner.to_owned(),
        group: group.to_owned(),
        mode: u32::from_str_radix(mode, 8).map_err(|_| format!("mode `{mode}` is not octal"))?,
    })
}

fn checked<T: TryFrom<String, Error = String>>(text: &str) -> Result<T, String> {
    T::try_from(text.to_owned())
}

/// What the answer says of a path before its hash is joined to it.
#[derive(Default)]
struct Paths {
    /// Past the `/` line of `stat`'s answer: the paths are files now, not folders.
    past_folders: bool,
    /// `stat` of each asked file that exists: its type and ownership.
    files: BTreeMap<RemotePath, (String, Ownership)>,
    /// `sha256sum --tag` of each regular file.
    sums: BTreeMap<RemotePath, Sha256>,
}

/// A block of raw program output inside the answer.
enum Block {
    /// `systemctl show`: `Key=value` lines, units separated by blank lines.
    Services(BTreeMap<String, String>),
    /// `nft list table inet infra`, hashed here as the apply script hashes it.
    Firewall(Vec<String>),
    /// `df -Pk /var`: a header, then the filesystem's line.
    Df,
    /// `lslocks -rn -o COMMAND,PID,PATH`: one lock a line.
    Locks,
}

/// The available KiB of a `df -P` line (none for its header).
fn free_kib(line: &str) -> Option<u64> {
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Notes the holder of one of apt's or dpkg's locks, from an `lslocks -r` line (`COMMAND PID
/// PATH`, a space in the command written `\x20`).
fn apt_lock(facts: &mut HostFacts, line: &str) {
    let mut words = line.split_whitespace();
    let (Some(command), Some(pid), Some(path)) = (words.next(), words.next(), words.next()) else {
        return;
    };
    let apt = path.starts_with("/var/lib/dpkg/lock")
        || path == "/var/lib/apt/lists/lock"
        || path == "/var/cache/apt/archives/lock";
    let holder = format!("`{}` (pid {pid})", command.replace("\\x20", " "));
    if apt && !facts.preflight.dpkg_lock.contains(&holder) {
        facts.preflight.dpkg_lock.push(holder);
    }
}

/// Reads the script's answer.
pub fn parse(output: &str) -> Result<HostFacts, String> {
    let mut facts = HostFacts::default();
    let mut shown: BTreeMap<RemotePath, Shown> = BTreeMap::new();
    let mut paths = Paths::default();
    let mut replication = ReplicationFact::default();
    let mut saw_replication = false;
    let mut block: Option<Block> = None;
    let mut record = String::new();
    // Lines end at `\n` only: a `\r` is part of a line (the firewall table is hashed as is).
    for (index, line) in output.split('\n').enumerate() {
        let at = |reason: String| format!("line {}: {reason}", index + 1);
        match &mut block {
            Some(Block::Services(unit)) => {
                if line == "services-end" {
                    service(&mut facts, unit).map_err(at)?;
                    block = None;
                } else if line.is_empty() {
                    service(&mut facts, unit).map_err(at)?;
                } else if let Some((key, value)) = line.split_once('=') {
                    unit.insert(key.to_owned(), value.to_owned());
                }
                continue;
            }
            Some(Block::Df) => {
                if line == "df-end" {
                    block = None;
                } else if let Some(free) = free_kib(line) {
                    // `Filesystem 1024-blocks Used Available Capacity Mounted-on`
                    facts.preflight.var_free_kib = Some(free);
                }
                continue;
            }
            Some(Block::Locks) => {
                if line == "locks-end" {
                    block = None;
                } else {
                    apt_lock(&mut facts, line);
                }
                continue;
            }
            Some(Block::Firewall(lines)) => {
                if line == "firewall\tend" {
                    let mut table = lines.join("\n");
                    table.push('\n');
                    facts.firewall.nft_installed = true;
                    facts.firewall.loaded = Some(Sha256::of(table.as_bytes()));
                    block = None;
                } else {
                    lines.push(line.to_owned());
                }
                continue;
            }
            None => {}
        }
        if let Some(line) = line.strip_prefix("record\t") {
            record.push_str(line);
            record.push('\n');
            continue;
        }
        match line {
            "services" => block = Some(Block::Services(BTreeMap::new())),
            "firewall\tbegin" => block = Some(Block::Firewall(Vec::new())),
            "df" => block = Some(Block::Df),
            "locks" => block = Some(Block::Locks),
            _ => {
                if let Some(tagged) = line.strip_prefix("SHA256 (") {
                    let (path, sum) = tagged
                        .rsplit_once(") = ")
                        .ok_or_else(|| at("a hash line without its hash".to_owned()))?;
                    let sum = Sha256::parse(sum)
                        .ok_or_else(|| at(format!("`{sum}` is not a SHA-256")))?;
                    paths.sums.insert(checked(path).map_err(at)?, sum);
                    continue;
                }
                let fields: Vec<&str> = line.split('\t').collect();
                parse_line(
                    &mut facts,
                    &mut shown,
                    &mut paths,
                    &mut replication,
                    &mut saw_replication,
                    &fields,
                )
                .map_err(at)?;
            }
        }
    }
    if block.is_some() {
        return Err("the answer ended inside a block of program output".to_owned());
    }
    facts.record = infra_plan::record::parse(&record).map_err(|e| format!("the record: {e}"))?;
    for (path, (kind, ownership)) in paths.files {
        let fact = match kind.as_str() {
            "regular file" | "regular empty file" => match paths.sums.get(&path) {
                Some(sha256) => FileFact::File {
                    ownership,
                    sha256: sha256.clone(),
                    shown: shown.remove(&path),
                },
                // Unreadable (or removed between `stat` and `sha256sum`): never taken for
                // absent, which would plan to create it or leave it in place.
                None => return Err(format!("`{path}` is a file that could not be read")),
            },
            _ => FileFact::Other,
        };
        facts.files.insert(path, fact);
    }
    if saw_replication && let Some(database) = &mut facts.database {
        database.replication = Some(replication);
    }
    Ok(facts)
}

/// Takes one unit's `systemctl show` lines (none is fine: the blank line that ends the block).
fn service(facts: &mut HostFacts, unit: &mut BTreeMap<String, String>) -> Result<(), String> {
    let mut unit = std::mem::take(unit);
    let Some(id) = unit.remove("Id") else {
        return Ok(());
    };
    facts.services.insert(
        checked(&id)?,
        ServiceFact {
            enabled: unit.remove("UnitFileState").unwrap_or_default(),
            active: unit.remove("ActiveState").unwrap_or_default(),
        },
    );
    Ok(())
}

fn parse_line(
    facts: &mut HostFacts,
    shown: &mut BTreeMap<RemotePath, Shown>,
    paths: &mut Paths,
    replication: &mut ReplicationFact,
    saw_replication: &mut bool,
    fields: &[&str],
) -> Result<(), String> {
    match fields {
        ["os", rest] => facts.os = Some((*rest).trim().to_owned()),
        ["clock", seconds] => facts.preflight.clock = seconds.trim().parse().ok(),
        ["interface", name, "present", list] => {
            // `2: eth0    inet 10.0.0.11/24 brd ... scope global eth0\ ...`
            let addresses = list
                .split('\u{1}')
                .filter_map(|line| {
                    let mut words = line.split_whitespace().skip(2);
                    matches!(words.next(), Some("inet" | "inet6")).then(|| words.next())?
                })
                .map(str::to_owned)
                .collect();
            facts.preflight.interface = Some(InterfaceFact::Present {
                name: (*name).to_owned(),
                addresses,
            });
        }
        ["interface", name, "missing", list] => {
            facts.preflight.interface = Some(InterfaceFact::Missing {
                name: (*name).to_owned(),
                present: list.split_whitespace().map(str::to_owned).collect(),
            });
        }
        ["lock", data, lease] => {
            let text = decode_text(data)?;
            facts.lock = Some(LockFact {
                holder: LockHolder::from_file(&text),
                lease: if *lease == "expired" {
                    Lease::Expired
                } else {
                    Lease::Live
                },
            });
        }
        ["package", name, status, version] => {
            let fact = if status.starts_with("ii") {
                PackageFact::Installed {
                    version: (*version).to_owned(),
                }
            } else {
                PackageFact::Absent
            };
            facts.packages.insert(checked(name)?, fact);
        }
        ["stat", "/", ..] => paths.past_folders = true,
        ["stat", path, kind, owner, group, mode] if !paths.past_folders => {
            let fact = if *kind == "directory" {
                DirectoryFact::Present(ownership(owner, group, mode)?)
            } else {
                DirectoryFact::Absent
            };
            facts.directories.insert(checked(path)?, fact);
        }
        ["stat", path, kind, owner, group, mode] => {
            paths.files.insert(
                checked(path)?,
                ((*kind).to_owned(), ownership(owner, group, mode)?),
            );
        }
        ["content", path, data] => {
            shown.insert(checked(path)?, Shown::Content(decode(data)?));
        }
        ["content", path] => {
            shown.insert(checked(path)?, Shown::Content(Vec::new()));
        }
        ["certificate", path, data] => {
            facts.certificate_files.insert(
                checked(path)?,
                infra_plan::facts::KeyMaterial(decode(data)?),
            );
        }
        ["redacted", path, data] => {
            shown.insert(checked(path)?, Shown::Redacted(decode_text(data)?));
        }
        ["firewall", "not-loaded"] => facts.firewall.nft_installed = true,
        ["firewall", "no-nft"] => facts.firewall.nft_installed = false,
        ["firewall", "recorded", record] => {
            let mut parts = record.split_whitespace();
            facts.firewall.recorded = parts.next().and_then(Sha256::parse);
            facts.firewall.recorded_file = parts.next().and_then(Sha256::parse);
        }
        ["db", "down"] => facts.database = Some(DatabaseFacts::default()),
        ["db", rest @ ..] => {
            let database = facts.database.get_or_insert_with(DatabaseFacts::default);
            match rest {
                ["up"] => database.reachable = true,
                ["database", name] => database.databases.push(checked(name)?),
                ["user", account, hash, passwords] => {
                    if let Ok(account) = checked::<SqlAccount>(account) {
                        if *passwords == "retained" {
                            database.retained.push(account.clone());
                        }
                        database.users.insert(account, (*hash).to_owned());
                    }
                }
                ["grant", account] => {
                    if let Ok(account) = checked::<SqlAccount>(account) {
                        database.database_grants.push(account);
                    }
                }
                ["replication-grant", account] => {
                    if let Ok(account) = checked::<SqlAccount>(account) {
                        database.replication_grants.push(account);
                    }
                }
                ["monitor-grant", account] => {
                    if let Ok(account) = checked::<SqlAccount>(account) {
                        database.monitor_grants.push(account);
                    }
                }
                ["read-only", value] => database.read_only = Some(*value == "1"),
                ["replica", key, value] => {
                    *saw_replication = true;
                    let value = (*value).to_owned();
                    match *key {
                        "Master_Host" => replication.source_host = value,
                        "Master_Port" => replication.source_port = value,
                        "Master_User" => replication.user = value,
                        "Slave_IO_Running" => replication.io_running = value,
                        "Slave_SQL_Running" => replication.sql_running = value,
                        "Using_Gtid" => replication.using_gtid = value,
                        other => return Err(format!("unknown replica field `{other}`")),
                    }
                }
                _ => return Err("an unknown database record".to_owned()),
            }
        }
        [""] => {}
        other => {
            return Err(format!(
                "an unknown record `{}`",
                infra_topology::text::visible_line(other.first().copied().unwrap_or_default())
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preflight_lines_parse() {
        let output = "os\tdebian 12\nclock\t1795475500\n\
            df\nFilesystem     1024-blocks    Used Available Capacity Mounted on\n/dev/vda1      61202244 1775880   56284720       4% /\ndf-end\n\
            locks\nperl 812 /var/lib/dpkg/lock-frontend\nperl 812 /var/lib/dpkg/lock\ncron 90 /run/crond.pid\n\
            (undefined) -1\napt\\x20get 91 /var/lib/apt/lists/lock\nlocks-end\n\
            interface\teth0\tpresent\t2: eth0    inet 10.0.0.11/24 brd 10.0.0.255 scope global eth0\\       valid_lft forever\u{1}2: eth0    inet 10.0.0.10/24 scope global secondary eth0\u{1}\n";
        let facts = parse(output).expect("parses");
        let preflight = &facts.preflight;
        assert_eq!(preflight.clock, Some(1_795_475_500));
        assert_eq!(preflight.var_free_kib, Some(56_284_720));
        assert_eq!(
            preflight.dpkg_lock,
            ["`perl` (pid 812)", "`apt get` (pid 91)"]
        );
        assert_eq!(
            preflight.interface,
            Some(InterfaceFact::Present {
                name: "eth0".to_owned(),
                addresses: vec!["10.0.0.11/24".to_owned(), "10.0.0.10/24".to_owned()],
            })
        );
        let missing = parse("interface\teth9\tmissing\t eth0 lo\n").expect("parses");
        assert_eq!(
            missing.preflight.interface,
            Some(InterfaceFact::Missing {
                name: "eth9".to_owned(),
                present: vec!["eth0".to_owned(), "lo".to_owned()],
            })
        );
    }

    #[test]
    fn every_record_kind_parses() {
        let sha = "a".repeat(64);
        let table = "table inet infra {\n\tchain input {\n\t}\n}";
        let loaded = Sha256::of(format!("{table}\n").as_bytes());
        let output = format!(
            "os\tdebian 12\n\
            record\tinfra-record\t1\tfleet\tab\nrecord\tserial\t4\nrecord\t+package\tnginx\n\
            package\thaproxy\tii \t2.6.12-1\npackage\tnginx\tun \t\n\
            stat\t/etc/infra\tdirectory\troot\troot\t755\nstat\t/var/www/x\tregular file\troot\troot\t644\n\
            stat\t/\tdirectory\troot\troot\t755\n\
            stat\t/etc/a\tregular file\troot\troot\t644\nstat\t/etc/c\tfifo\troot\troot\t600\n\
            SHA256 (/etc/a) = {sha}\ncontent\t/etc/a\taGVsbG8=\n\
            services\nId=nginx.service\nActiveState=active\nUnitFileState=enabled\n\nUnitFileState=\nId=x.service\nActiveState=inactive\n\nservices-end\n\
            firewall\tbegin\n{table}\nfirewall\tend\nfirewall\trecorded\t{loaded} {sha}\n\
            db\tup\ndb\tdatabase\tscaleup\ndb\tuser\tapp@10.0.0.1\t*ABC\tretained\ndb\tuser\tapp@10.0.0.2\t*DEF\tsingle\ndb\tgrant\tapp@10.0.0.1\n\
            db\treplication-grant\trepl@10.0.0.2\ndb\tread-only\t1\n\
            db\treplica\tMaster_Host\t10.0.0.1\ndb\treplica\tSlave_IO_Running\tYes\n"
        );
        let facts = parse(&output).expect("parses");
        assert_eq!(facts.os.as_deref(), Some("debian 12"));
        let record = facts.record.as_ref().expect("a record");
        assert_eq!(record.serial, 4);
        assert_eq!(record.packages.len(), 1);
        let a = RemotePath::new("/etc/a").expect("path");
        match &facts.files[&a] {
            FileFact::File {
                shown, ownership, ..
            } => {
                assert_eq!(shown, &Some(Shown::Content(b"hello".to_vec())));
                assert_eq!(ownership.mode, 0o644);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            facts.firewall.is_current(),
            "the table is hashed as apply hashes it"
        );
        let path = |p: &str| RemotePath::new(p).expect("path");
        assert_eq!(
            facts.files[&path("/etc/c")],
            FileFact::Other,
            "a FIFO is no file"
        );
        assert!(
            !facts.files.contains_key(&path("/etc/b")),
            "absent: not listed"
        );
        assert!(matches!(
            facts.packages[&PackageName::new("haproxy").expect("name")],
            PackageFact::Installed { .. }
        ));
        assert_eq!(
            facts.packages[&PackageName::new("nginx").expect("name")],
            PackageFact::Absent,
            "known to dpkg but not installed"
        );
        assert_eq!(
            facts.directories[&path("/var/www/x")],
            DirectoryFact::Absent,
            "a file where a folder should be"
        );
        assert_eq!(facts.services.len(), 2);
        let x = &facts.services[&UnitName::new("x.service").expect("unit")];
        assert_eq!((x.enabled.as_str(), x.active.as_str()), ("", "inactive"));
        let db = facts.database.expect("database facts");
        assert!(db.reachable);
        assert_eq!(db.read_only, Some(true));
        assert_eq!(db.users.len(), 2);
        let retained: Vec<String> = db.retained.iter().map(ToString::to_string).collect();
        assert_eq!(retained, ["app@10.0.0.1"], "a rotation under way is seen");
        assert_eq!(db.replication.expect("replica").io_running, "Yes");
    }

    #[test]
    fn hostile_or_garbage_answers_are_errors() {
        assert!(parse("bogus\tx\n").is_err());
        assert!(parse("stat\t/x\tdirectory\troot\troot\tzz\n").is_err());
        assert!(
            parse("record\tinfra-record\t1\tt\tab\nrecord\tdamaged\t1\n").is_err(),
            "a damaged record"
        );
        assert!(
            parse(
                "stat\t/\tdirectory\troot\troot\t755\nstat\t/etc/a\tregular file\troot\troot\t600\n"
            )
            .is_err(),
            "a regular file without its hash (unreadable) is not taken for absent"
        );
        assert!(
            parse("services\nId=nginx.service\n").is_err(),
            "an answer cut inside a block"
        );
        assert!(parse("SHA256 (/etc/../x) = 00\n").is_err());
        assert!(
            parse("package\tx; reboot\tii \t1\n").is_err(),
            "a name no rule allows"
        );
        assert!(parse("file\t/etc/../root\t-\n").is_err());
        assert!(parse("content\t/x\t!!!\n").is_err());
    }
}
