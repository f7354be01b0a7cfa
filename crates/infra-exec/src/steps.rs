//! The remote scripts apply and destroy run, one per step and host. Each is sent on stdin to
//! `sh -s` as root; every value in it is shell-quoted (and was validated at load), secrets
//! travel only inside the script, never on a command line.
//!
//! Scripts report with tab-separated lines: `wrote PATH`, `backup PATH`, `removed PATH`,
//! `created-dir PATH`, `enabled UNIT`, and on failure `infra-failed PATH MESSAGE` (exit 3).

use std::fmt::Write as _;

use base64::Engine as _;
use infra_plan::paths;
use infra_plan::shell::quote;
use infra_plan::{Check, DatabaseObjects, Directory, ManagedFile};

/// Where files that existed before `infra` managed them are kept, under their own path.
pub const BACKUP_ROOT: &str = "/var/lib/infra/backup";

const COMMON: &str = r#"set -u
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
fail() { printf 'infra-failed\t%s\t%s\n' "$1" "$(printf '%s' "$2" | tr '\n\t' '  ' | cut -c1-2000)"; exit 3; }
"#;

/// Installs packages (after refreshing the package lists once).
pub fn install_packages(packages: &[String]) -> String {
    let list: Vec<String> = packages.iter().map(|p| quote(p)).collect();
    format!(
        "{COMMON}out=$(apt-get update -q 2>&1) || fail apt \"apt-get update failed: $out\"\n\
         out=$(apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold {} 2>&1) || fail apt \"$out\"\n\
         for p in {}; do printf 'installed\\t%s\\n' \"$p\"; done\n",
        list.join(" "),
        list.join(" ")
    )
}

/// Creates or fixes folders.
pub fn directories(directories: &[&Directory]) -> String {
    let mut script = String::from(COMMON);
    for directory in directories {
        let path = quote(&directory.path);
        let _ = writeln!(
            script,
            "[ -d {path} ] || printf 'created-dir\\t%s\\n' {path}\n\
             install -d -m {mode:o} -o {owner} -g {group} {path} || fail {path} 'cannot create the folder'",
            mode = directory.mode.0,
            owner = quote(&directory.owner),
            group = quote(&directory.group),
        );
    }
    script
}

const FILE_FUNCTIONS: &str = r#"backup() {
  b="BACKUP_ROOT$1"
  if [ -e "$1" ] && [ ! -e "$b" ]; then
    mkdir -p "$(dirname "$b")" && cp -a "$1" "$b" || fail "$1" "cannot back up"
    printf 'backup\t%s\n' "$1"
  fi
}
restore_previous() {
  if [ -e "$1.infra-prev" ]; then mv -f "$1.infra-prev" "$1"; else rm -f "$1"; fi
}
# put PATH MODE OWNER GROUP SHA256 CHECK BACKUP(yes|no), content (base64) on stdin
put() {
  t="$1.infra-new"
  base64 -d > "$t" || { rm -f "$t"; fail "$1" "cannot write the new content"; }
  chown "$3:$4" "$t" && chmod "$2" "$t" || { rm -f "$t"; fail "$1" "cannot set owner and mode"; }
  s=$(sha256sum < "$t") && s=${s%% *}
  [ "$s" = "$5" ] || { rm -f "$t"; fail "$1" "the content arrived damaged"; }
  sync "$t" 2>/dev/null || sync
  case "$6" in
    haproxy) out=$(haproxy -c -f "$t" 2>&1) || { rm -f "$t"; fail "$1" "haproxy -c: $out"; } ;;
    keepalived) out=$(keepalived -t -f "$t" 2>&1) || { rm -f "$t"; fail "$1" "keepalived -t: $out"; } ;;
    nftables) out=$(nft -c -f "$t" 2>&1) || { rm -f "$t"; fail "$1" "nft -c: $out"; } ;;
  esac
  [ "$7" = yes ] && backup "$1"
  rm -f "$1.infra-prev"
  if [ -e "$1" ]; then cp -a "$1" "$1.infra-prev"; fi
  mv -f "$t" "$1" || { rm -f "$t"; fail "$1" "cannot rename into place"; }
  case "$6" in
    nginx) out=$(nginx -t 2>&1) || { restore_previous "$1"; fail "$1" "nginx -t: $out"; } ;;
    mariadb) out=$(mariadbd --help --verbose 2>&1 >/dev/null); r=$?
      if [ $r -ne 0 ] || printf '%s' "$out" | grep -q '\[ERROR\]'; then restore_previous "$1"; fail "$1" "mariadbd: $out"; fi ;;
    systemd_unit) out=$(systemd-analyze verify "$1" 2>&1) || { restore_previous "$1"; fail "$1" "systemd-analyze verify: $out"; } ;;
  esac
  rm -f "$1.infra-prev"
  printf 'wrote\t%s\n' "$1"
}
# absent PATH: back it up once, then remove it
absent() {
  if [ -e "$1" ] || [ -L "$1" ]; then backup "$1"; rm -f "$1" || fail "$1" "cannot remove"; printf 'removed\t%s\n' "$1"; fi
}
"#;

fn check_name(check: Option<Check>) -> &'static str {
    match check {
        None => "none",
        Some(Check::Haproxy) => "haproxy",
        Some(Check::Keepalived) => "keepalived",
        Some(Check::Nginx) => "nginx",
        Some(Check::Nftables) => "nftables",
        Some(Check::Mariadb) => "mariadb",
        Some(Check::SystemdUnit) => "systemd_unit",
    }
}

/// Writes files atomically (temporary file in the same folder, fsync, rename) with owner and
/// mode, each checked by its validator before it takes effect (or right after, with the
/// previous file put back on failure, for checks that read the whole tree); backs up files that
/// existed before `infra` managed them; removes files that must not exist.
/// `backup(path)` says whether a file that is there now predates `infra`.
pub fn files(files: &[&ManagedFile], absent: &[&str], backup: &dyn Fn(&str) -> bool) -> String {
    let mut script = String::from(COMMON);
    script.push_str(&FILE_FUNCTIONS.replace("BACKUP_ROOT", BACKUP_ROOT));
    for path in absent {
        let _ = writeln!(script, "absent {}", quote(path));
    }
    for file in files {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&file.content);
        let _ = write!(
            script,
            "put {path} {mode:o} {owner} {group} {sha} {check} {backup} <<'INFRA_CONTENT'\n",
            path = quote(&file.path),
            mode = file.mode.0,
            owner = quote(&file.owner),
            group = quote(&file.group),
            sha = quote(&file.sha256),
            check = check_name(file.check),
            backup = if backup(&file.path) { "yes" } else { "no" },
        );
        for chunk in encoded.as_bytes().chunks(76) {
            script.push_str(&String::from_utf8_lossy(chunk));
            script.push('\n');
        }
        script.push_str("INFRA_CONTENT\n");
    }
    script
}

/// Loads the firewall table from its file and records the loaded table's hash.
pub fn load_firewall() -> String {
    format!(
        "{COMMON}out=$(nft -f {file} 2>&1) || fail firewall \"nft -f: $out\"\n\
         mkdir -p /var/lib/infra\n\
         t=$(nft list table inet infra) && s=$(printf '%s\\n' \"$t\" | sha256sum) && printf '%s\\n' \"${{s%% *}}\" > {record}\n\
         printf 'firewall\\tloaded\\n'\n",
        file = quote(paths::FIREWALL_NFT),
        record = quote(paths::FIREWALL_RECORD),
    )
}

/// SQL for the primary: the database, accounts and grants (idempotent statements).
/// Identifiers and passwords were validated to safe characters at load.
pub fn primary_objects(objects: &DatabaseObjects) -> String {
    let mut sql = format!("CREATE DATABASE IF NOT EXISTS `{}`;\n", objects.database);
    for account in &objects.users {
        for client in &account.hosts {
            let password = account.password.expose();
            let _ = writeln!(
                sql,
                "CREATE USER IF NOT EXISTS '{user}'@'{client}' IDENTIFIED BY '{password}';\n\
                 ALTER USER '{user}'@'{client}' IDENTIFIED BY '{password}';\n\
                 GRANT {privileges} ON {on} TO '{user}'@'{client}';",
                user = account.name,
                privileges = account.privileges,
                on = if account.on == "*.*" {
                    "*.*".to_owned()
                } else {
                    format!("`{}`.*", objects.database)
                },
            );
        }
    }
    sql_script(&sql)
}

/// SQL for a replica: replicate from the primary by GTID.
pub fn replication(source: &infra_plan::ReplicationSource) -> String {
    let sql = format!(
        "STOP SLAVE;\n\
         CHANGE MASTER TO MASTER_HOST='{host}', MASTER_PORT={port}, MASTER_USER='{user}', MASTER_PASSWORD='{password}', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=5;\n\
         START SLAVE;\n",
        host = source.host,
        port = source.port,
        user = source.user,
        password = source.password.expose(),
    );
    sql_script(&sql)
}

fn sql_script(sql: &str) -> String {
    format!(
        "{COMMON}out=$(mariadb --batch 2>&1 <<'INFRA_SQL'\n{sql}INFRA_SQL\n) || fail database \"mariadb: $out\"\nprintf 'database\\tdone\\n'\n"
    )
}

/// What to do with one service.
#[derive(Debug, Clone)]
pub struct ServiceAction {
    /// The unit.
    pub unit: String,
    /// Restart, reload, or neither (just make sure it is enabled and running).
    pub trigger: Option<infra_plan::Trigger>,
}

/// Enables and starts services, reloads or restarts those whose files changed (once each),
/// and checks that each ends up active.
pub fn services(actions: &[ServiceAction], daemon_reload: bool) -> String {
    let mut script = String::from(COMMON);
    if daemon_reload {
        script.push_str("systemctl daemon-reload || fail systemd 'daemon-reload failed'\n");
    }
    for action in actions {
        let unit = quote(&action.unit);
        let _ = writeln!(
            script,
            "if [ \"$(systemctl is-enabled {unit} 2>/dev/null)\" != enabled ]; then systemctl enable {unit} >/dev/null 2>&1 || fail {unit} 'cannot enable'; printf 'enabled\\t%s\\n' {unit}; fi"
        );
        let command = match action.trigger {
            Some(infra_plan::Trigger::Restart) => format!("systemctl restart {unit}"),
            Some(infra_plan::Trigger::Reload) => {
                format!(
                    "if systemctl is-active --quiet {unit}; then systemctl reload {unit}; else systemctl start {unit}; fi"
                )
            }
            None => format!("systemctl is-active --quiet {unit} || systemctl start {unit}"),
        };
        let _ = writeln!(
            script,
            "out=$({command} 2>&1) || fail {unit} \"$out $(journalctl -u {unit} -n 5 --no-pager 2>/dev/null)\"\n\
             systemctl is-active --quiet {unit} || fail {unit} \"not active after start: $(journalctl -u {unit} -n 5 --no-pager 2>/dev/null)\""
        );
    }
    script
}

/// Restarts one unit now (`restart`), or starts it if it is not running (a database whose
/// config changed, or that an earlier failed run left stopped, before its objects are set up).
pub fn restart_or_start(unit: &str, restart: bool) -> String {
    let unit = quote(unit);
    let command = if restart {
        format!("systemctl restart {unit}")
    } else {
        format!("systemctl is-active --quiet {unit} || systemctl start {unit}")
    };
    format!(
        "{COMMON}out=$({command} 2>&1) || fail {unit} \"$out $(journalctl -u {unit} -n 5 --no-pager 2>/dev/null)\"\n"
    )
}
