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
/// Where the previous version of a file waits while its replacement is checked.
const PREVIOUS_ROOT: &str = "/var/lib/infra/previous";
/// Where the shadow tools' own backups (`/etc/passwd-` ...) are kept from before the first
/// package install.
const SHADOW_KEEP: &str = "/var/lib/infra/shadow-backups";

const COMMON: &str = r#"set -u
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
fail() { printf 'infra-failed\t%s\t%s\n' "$1" "$(printf '%s' "$2" | tr '\n\t' '  ' | cut -c1-2000)"; exit 3; }
"#;

/// Installs packages (after refreshing the package lists once), and reports the system users
/// and groups the packages created, so destroy can remove them too.
pub fn install_packages(packages: &[String]) -> String {
    let list: Vec<String> = packages.iter().map(|p| quote(p)).collect();
    let list = list.join(" ");
    format!(
        r#"{COMMON}users_before=" $(cut -d: -f1 /etc/passwd | tr '\n' ' ')"
groups_before=" $(cut -d: -f1 /etc/group | tr '\n' ' ')"
packages_before=" $(dpkg-query -W -f='${{Package}} ' 2>/dev/null)"
# Adding system users rewrites the shadow tools' backups (/etc/passwd- ...): keep the
# originals once, so destroy can put them back.
mkdir -p {SHADOW_KEEP}
for f in passwd- group- shadow- gshadow-; do
  [ -e /etc/$f ] && [ ! -e {SHADOW_KEEP}/$f ] && cp -p /etc/$f {SHADOW_KEEP}/$f
done
out=$(apt-get update -q 2>&1) || fail apt "apt-get update failed: $out"
out=$(apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold {list} 2>&1) || fail apt "$out"
for p in {list}; do printf 'installed\t%s\n' "$p"; done
for u in $(cut -d: -f1 /etc/passwd); do case "$users_before " in *" $u "*) ;; *) printf 'new-user\t%s\n' "$u" ;; esac; done
for g in $(cut -d: -f1 /etc/group); do case "$groups_before " in *" $g "*) ;; *) printf 'new-group\t%s\n' "$g" ;; esac; done
for p in $(dpkg-query -W -f='${{Package}} ' 2>/dev/null); do case "$packages_before " in *" $p "*) ;; *) printf 'new-package\t%s\n' "$p" ;; esac; done
"#
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
# The previous version is kept outside the file's folder while the new one is checked, so a
# folder that a program includes whole (Nginx's sites-enabled/*) never holds two copies.
previous() { printf '%s' "PREVIOUS_ROOT$1"; }
restore_previous() {
  if [ -e "$(previous "$1")" ]; then mv -f "$(previous "$1")" "$1"; else rm -f "$1"; fi
}
# put PATH MODE OWNER GROUP SHA256 CHECK BACKUP(yes|no), content (base64) on stdin.
# The new content goes to a hidden temporary file in the same folder (renamed into place
# atomically); globs like sites-enabled/* do not match hidden files.
put() {
  t="$(dirname "$1")/.$(basename "$1").infra-new"
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
  p=$(previous "$1")
  rm -f "$p"
  if [ -e "$1" ]; then mkdir -p "$(dirname "$p")" && cp -a "$1" "$p"; fi
  mv -f "$t" "$1" || { rm -f "$t"; fail "$1" "cannot rename into place"; }
  case "$6" in
    nginx) out=$(nginx -t 2>&1) || { restore_previous "$1"; fail "$1" "nginx -t: $out"; } ;;
    mariadb) out=$(mariadbd --help --verbose 2>&1 >/dev/null); r=$?
      if [ $r -ne 0 ] || printf '%s' "$out" | grep -q '\[ERROR\]'; then restore_previous "$1"; fail "$1" "mariadbd: $out"; fi ;;
    systemd_unit) out=$(systemd-analyze verify "$1" 2>&1) || { restore_previous "$1"; fail "$1" "systemd-analyze verify: $out"; } ;;
  esac
  rm -f "$p"
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
    script.push_str(
        &FILE_FUNCTIONS
            .replace("BACKUP_ROOT", BACKUP_ROOT)
            .replace("PREVIOUS_ROOT", PREVIOUS_ROOT),
    );
    for path in absent {
        let _ = writeln!(script, "absent {}", quote(path));
    }
    for file in files {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&file.content);
        let _ = writeln!(
            script,
            "put {path} {mode:o} {owner} {group} {sha} {check} {backup} <<'INFRA_CONTENT'",
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
         t=$(nft list table inet infra) && s=$(printf '%s\\n' \"$t\" | sha256sum) && f=$(sha256sum < {file}) && printf '%s %s\\n' \"${{s%% *}}\" \"${{f%% *}}\" > {record}\n\
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
         RESET SLAVE ALL;\n\
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
        "{COMMON}out=$(mariadb --batch --silent 2>&1 <<'INFRA_SQL'\n{sql}INFRA_SQL\n) || fail database \"mariadb: $(printf '%s\\n' \"$out\" | grep '^ERROR' | head -3)\"\nprintf 'database\\tdone\\n'\n"
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

/// Undoes what `infra` did on a host, from its record: services it enabled are stopped and
/// disabled, its firewall table removed, files it wrote removed (or the originals restored),
/// files it removed restored, folders it created removed when empty, packages it installed
/// purged (with the users and groups they created); with `delete_data`, the databases and
/// accounts it created are dropped first (MariaDB's data folder is kept by the purge).
pub fn destroy(
    record: &crate::state::HostRecord,
    delete_data: bool,
    database_role: Option<infra_plan::DatabaseRole>,
) -> String {
    let mut script = String::from(COMMON);
    script.push_str("set +e\n");
    if delete_data {
        let mut sql = String::new();
        if record.replication {
            sql.push_str("STOP SLAVE;\nRESET SLAVE ALL;\n");
        }
        if database_role == Some(infra_plan::DatabaseRole::Primary) {
            for database in &record.databases {
                let _ = writeln!(sql, "DROP DATABASE IF EXISTS `{database}`;");
            }
            for account in &record.database_users {
                if let Some((user, host)) = account.split_once('@') {
                    let _ = writeln!(sql, "DROP USER IF EXISTS '{user}'@'{host}';");
                }
            }
        }
        if !sql.is_empty() {
            let _ = write!(
                script,
                "if systemctl is-active --quiet mariadb.service; then out=$(mariadb --batch 2>&1 <<'INFRA_SQL'\n{sql}INFRA_SQL\n) || fail database \"mariadb: $out\"; printf 'dropped\\tdata\\n'; fi\n"
            );
        }
    }
    for unit in &record.services {
        let unit = quote(unit);
        let _ = writeln!(
            script,
            "systemctl disable --now {unit} >/dev/null 2>&1; printf 'disabled\\t%s\\n' {unit}"
        );
    }
    if record.firewall {
        let _ = writeln!(
            script,
            "nft delete table inet infra >/dev/null 2>&1; rm -f {}; printf 'firewall\\tremoved\\n'",
            quote(paths::FIREWALL_RECORD)
        );
    }
    for path in record.files.keys() {
        let backup = format!("{BACKUP_ROOT}{path}");
        let _ = writeln!(
            script,
            "if [ -e {b} ]; then mv -f {b} {p}; printf 'restored\\t%s\\n' {p}; else rm -f {p}; printf 'deleted\\t%s\\n' {p}; fi",
            b = quote(&backup),
            p = quote(path)
        );
    }
    for path in &record.removed {
        let backup = format!("{BACKUP_ROOT}{path}");
        let _ = writeln!(
            script,
            "if [ -e {b} ]; then mv -f {b} {p}; printf 'restored\\t%s\\n' {p}; fi",
            b = quote(&backup),
            p = quote(path)
        );
    }
    let mut directories: Vec<&String> = record.directories.iter().collect();
    directories.sort_by_key(|d| std::cmp::Reverse(d.len()));
    for directory in directories {
        let _ = writeln!(script, "rmdir {} 2>/dev/null", quote(directory));
    }
    let packages: Vec<String> = record.packages.iter().map(|p| quote(p)).collect();
    // Names checked by dpkg's rules when recorded; joined into one quoted word for the loop.
    let dependencies: Vec<&str> = record
        .dependencies
        .iter()
        .filter(|d| {
            !record.packages.contains(*d)
                && infra_topology::rules::is_package_name(d.split(':').next().unwrap_or(d))
        })
        .map(String::as_str)
        .collect();
    if !packages.is_empty() {
        // Purge what was asked for, then the dependencies that came with it: `dpkg --purge`
        // refuses to remove a package something installed still depends on, so passes repeat
        // until nothing more can go, and anything that is needed now stays.
        let _ = writeln!(
            script,
            "out=$(apt-get purge -y -q {list} 2>&1) || fail apt \"$out\"\n\
             left={deps}\n\
             while [ -n \"$left\" ]; do\n\
               progress=no; rest=''\n\
               for p in $left; do\n\
                 case \"$(dpkg-query -W -f='${{Status}}' \"$p\" 2>/dev/null)\" in\n\
                   *installed*|*config-files*) if dpkg --purge \"$p\" >/dev/null 2>&1; then progress=yes; else rest=\"$rest $p\"; fi ;;\n\
                 esac\n\
               done\n\
               left=$rest; [ $progress = yes ] || break\n\
             done\n\
             printf 'purged\\t%s\\n' {list}",
            list = packages.join(" "),
            deps = quote(&dependencies.join(" ")),
        );
    }
    if delete_data && record.packages.contains("mariadb-server") {
        // The server's data and its binary logs, which the package's purge keeps on purpose.
        let _ = writeln!(
            script,
            "rm -rf /var/lib/mysql /var/log/mysql /etc/mysql; printf 'dropped\\tdata-folders\\n'"
        );
    }
    for user in &record.users {
        let _ = writeln!(script, "userdel {} >/dev/null 2>&1", quote(user));
    }
    for group in &record.groups {
        let _ = writeln!(script, "groupdel {} >/dev/null 2>&1", quote(group));
    }
    let _ = writeln!(
        script,
        "for f in passwd- group- shadow- gshadow-; do [ -e {SHADOW_KEEP}/$f ] && cp -p {SHADOW_KEEP}/$f /etc/$f; done"
    );
    let _ = writeln!(
        script,
        "systemctl daemon-reload; rm -rf /var/lib/infra; rmdir /etc/infra 2>/dev/null; exit 0"
    );
    script
}
