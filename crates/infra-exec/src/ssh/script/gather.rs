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
use infra_plan::record::sensitivity_word;
use infra_plan::shell::quote;
use infra_topology::{PackageName, RemotePath, SqlAccount, SqlName, UnitName};

use super::{decode, decode_text, prelude};

/// Content larger than this is not sent for a diff.
const SHOWN_LIMIT: u64 = 256 * 1024;

const FUNCTIONS: &str = r#"tab=$(printf '\t')
PKG='^[a-z0-9][a-z0-9+.-]+$'
PATHS='^/[A-Za-z0-9/._-]+$'
UNIT='^[A-Za-z0-9][A-Za-z0-9@._-]*[.](service|socket|timer|target)$'
ACCOUNT='^[A-Za-z0-9_]{1,32}@[0-9a-fA-F.:]+$'

. /etc/os-release 2>/dev/null && printf 'os\t%s %s\n' "${ID:-}" "${VERSION_ID:-}"
current=""
if [ -f "$J" ]; then
  printf 'record\t%s\n' "$(base64 -w0 < "$J")"
  current=$(complete "$J" | replay)
fi
if [ -d "$R/lock" ]; then
  h=$(cat "$R/lock/holder" 2>/dev/null)
  e=$(printf '%s\n' "$h" | sed -n 's/^expires\t//p')
  lease=live; case "$e" in ''|*[!0-9]*) ;; *) [ "$(date +%s)" -gt "$e" ] && lease=expired ;; esac
  printf 'lock\t%s\t%s\n' "$(printf '%s' "$h" | base64 -w0)" "$lease"
fi
# recorded KIND PATTERN: the record's names of a kind, only those of the kind's safe form (the
# record is root's, but a name that slipped past its rules must not reach a command line).
recorded() { printf '%s\n' "$current" | awk -F'\t' -v k="$1" '$1 == k { print $2 }' | grep -E "$2"; }
packages() {
  [ $# -gt 0 ] || return 0
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
# file PATH WANTED(sha|-) SENSITIVITY(plain|sensitive)
file() {
  if [ -f "$1" ] && [ ! -L "$1" ]; then
    s=$(sha256sum < "$1") && s=${s%% *}
    printf 'file\t%s\t%s\t%s\n' "$1" "$(ownership "$1")" "$s"
    if [ "$2" != - ] && [ "$s" != "$2" ]; then
      r=$(printf '%s\n' "$current" | awk -F'\t' -v p="$1" '$1 == "+file" && $2 == p { print $3 " " $4 }')
      rs=${r%% *}; rsens=${r#* }
      if [ "$3" = sensitive ] || [ "$rsens" = sensitive ]; then
        if [ "$rsens" = sensitive ] && [ "$rs" = "$s" ] && [ -f "$D$1" ]; then
          printf 'redacted\t%s\t%s\n' "$1" "$(base64 -w0 < "$D$1")"
        fi
      elif [ "$(stat -c %s "$1")" -le SHOWN_LIMIT ]; then
        printf 'content\t%s\t' "$1"; base64 -w0 < "$1"; printf '\n'
      fi
    fi
  elif [ -e "$1" ] || [ -L "$1" ]; then printf 'file\t%s\tother\n' "$1"
  else printf 'file\t%s\t-\n' "$1"; fi
}
services() {
  [ $# -gt 0 ] || return 0
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
  if [ -f "$R/firewall.sha256" ]; then printf 'firewall\trecorded\t%s\n' "$(cat "$R/firewall.sha256")"; fi
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
SELECT 'db', 'read-only', @@read_only;"
  mariadb --batch --skip-column-names -e "$q" 2>/dev/null || { printf 'db\tdown\n'; return 0; }
  mariadb --batch --vertical -e 'SHOW REPLICA STATUS' 2>/dev/null | awk -F': ' '
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
        "packages {} $(recorded +package \"$PKG\") $(recorded +dependency \"$PKG\")",
        words(request.packages.iter().map(PackageName::as_str).collect())
    );
    let _ = writeln!(
        script,
        "for d in {} $(recorded +directory \"$PATHS\"); do directory \"$d\"; done",
        words(request.directories.iter().map(RemotePath::as_str).collect())
    );
    for query in &request.files {
        let wanted = query.wanted.as_ref().map_or("-", Sha256::as_str);
        let _ = writeln!(
            script,
            "file {} {} {}",
            quote(query.path.as_str()),
            quote(wanted),
            sensitivity_word(query.sensitivity)
        );
    }
    let asked: Vec<&str> = request.files.iter().map(|q| q.path.as_str()).collect();
    let _ = writeln!(
        script,
        "asked=\"$(printf '%s\\n' {})\"\n\
         printf '%s\\n' \"$current\" | awk -F'\\t' '$1 == \"+file\" {{ print $2 }}' | grep -E \"$PATHS\" | while IFS= read -r p; do\n\
           printf '%s\\n' \"$asked\" | grep -qxF \"$p\" || file \"$p\" - plain\n\
         done",
        words(asked)
    );
    let _ = writeln!(
        script,
        "services {} $(recorded +service \"$UNIT\")",
        words(request.units.iter().map(UnitName::as_str).collect())
    );
    script.push_str("firewall\n");
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
                "database {} {} $(recorded +account \"$ACCOUNT\" | cut -d@ -f1)",
                quote(query.database.as_str()),
                words(users)
            );
        }
        None => {
            script.push_str(
                "a=$(recorded +account \"$ACCOUNT\" | cut -d@ -f1); d=$(recorded +database '^[A-Za-z0-9_]{1,32}$' | head -n 1)\n\
                 if [ -n \"$a$d\" ]; then database \"${d:-none}\" $a; fi\n",
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

/// Reads the script's answer.
pub fn parse(output: &str) -> Result<HostFacts, String> {
    let mut facts = HostFacts::default();
    let mut shown: BTreeMap<RemotePath, Shown> = BTreeMap::new();
    let mut replication = ReplicationFact::default();
    let mut saw_replication = false;
    for (index, line) in output.lines().enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        let at = |reason: String| format!("line {}: {reason}", index + 1);
        parse_line(
            &mut facts,
            &mut shown,
            &mut replication,
            &mut saw_replication,
            &fields,
        )
        .map_err(at)?;
    }
    for (path, content) in shown {
        if let Some(FileFact::File { shown, .. }) = facts.files.get_mut(&path) {
            *shown = Some(content);
        }
    }
    if saw_replication && let Some(database) = &mut facts.database {
        database.replication = Some(replication);
    }
    Ok(facts)
}

fn parse_line(
    facts: &mut HostFacts,
    shown: &mut BTreeMap<RemotePath, Shown>,
    replication: &mut ReplicationFact,
    saw_replication: &mut bool,
    fields: &[&str],
) -> Result<(), String> {
    match fields {
        ["os", rest] => facts.os = Some((*rest).trim().to_owned()),
        ["record", data] => {
            let text = decode_text(data)?;
            facts.record = infra_plan::record::parse(&text).map_err(|e| e.to_string())?;
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
        ["package", name, "-"] => {
            facts.packages.insert(checked(name)?, PackageFact::Absent);
        }
        ["package", name, version] => {
            facts.packages.insert(
                checked(name)?,
                PackageFact::Installed {
                    version: (*version).to_owned(),
                },
            );
        }
        ["directory", path, "-"] => {
            facts
                .directories
                .insert(checked(path)?, DirectoryFact::Absent);
        }
        ["directory", path, owner, group, mode] => {
            facts.directories.insert(
                checked(path)?,
                DirectoryFact::Present(ownership(owner, group, mode)?),
            );
        }
        ["file", path, "-"] => {
            facts.files.insert(checked(path)?, FileFact::Absent);
        }
        ["file", path, "other"] => {
            facts.files.insert(checked(path)?, FileFact::Other);
        }
        ["file", path, owner, group, mode, sha] => {
            facts.files.insert(
                checked(path)?,
                FileFact::File {
                    ownership: ownership(owner, group, mode)?,
                    sha256: Sha256::parse(sha)
                        .ok_or_else(|| format!("`{sha}` is not a SHA-256"))?,
                    shown: None,
                },
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
        ["service", unit, enabled, active] => {
            facts.services.insert(
                checked(unit)?,
                ServiceFact {
                    enabled: (*enabled).to_owned(),
                    active: (*active).to_owned(),
                },
            );
        }
        ["firewall", "loaded", sha] => {
            facts.firewall.nft_installed = true;
            facts.firewall.loaded = Sha256::parse(sha);
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
    fn every_record_kind_parses() {
        let sha = "a".repeat(64);
        let output = format!(
            "os\tdebian 12\n\
            package\thaproxy\t2.6.12-1\npackage\tnginx\t-\n\
            directory\t/etc/infra\troot\troot\t755\ndirectory\t/var/www/x\t-\n\
            file\t/etc/a\troot\troot\t644\t{sha}\ncontent\t/etc/a\taGVsbG8=\n\
            file\t/etc/b\t-\nfile\t/etc/c\tother\n\
            service\tnginx.service\tenabled\tactive\nservice\tx.service\t\tinactive\n\
            firewall\tloaded\t{sha}\nfirewall\trecorded\t{sha} {sha}\n\
            db\tup\ndb\tdatabase\tscaleup\ndb\tuser\tapp@10.0.0.1\t*ABC\tretained\ndb\tuser\tapp@10.0.0.2\t*DEF\tsingle\ndb\tgrant\tapp@10.0.0.1\n\
            db\treplication-grant\trepl@10.0.0.2\ndb\tread-only\t1\n\
            db\treplica\tMaster_Host\t10.0.0.1\ndb\treplica\tSlave_IO_Running\tYes\n"
        );
        let facts = parse(&output).expect("parses");
        assert_eq!(facts.os.as_deref(), Some("debian 12"));
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
        assert!(facts.firewall.is_current());
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
        assert!(parse("directory\t/x\troot\troot\tzz\n").is_err());
        assert!(
            parse("package\tx; reboot\t1\n").is_err(),
            "a name no rule allows"
        );
        assert!(parse("file\t/etc/../root\t-\n").is_err());
        assert!(parse("content\t/x\t!!!\n").is_err());
    }
}
