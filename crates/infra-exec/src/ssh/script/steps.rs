//! A task's steps as one script. Each step prints `infra-step N ok`, or stops the script with
//! `infra-step N failed|rejected|stale <base64 message>`. Each step writes its record lines in
//! the same script: what it is about to make before making it, the rest after.

use std::fmt::Write as _;

use infra_plan::desired::{Check, CheckTarget, Display, Grant, HealthGate, Sensitivity, Trigger};
use infra_plan::plan::{Backup, Restore, SqlStep, StepKind};
use infra_plan::record::sensitivity_word;
use infra_plan::shell::quote;
use infra_plan::sql;
use infra_topology::{PackageName, RemotePath, SqlAccount};

use super::{decode_text, heredoc, prelude};
use crate::transport::{Expected, Job, JobReport, StepOutcome};

/// How long a run's lease on a host's lock lasts; every script renews it.
pub const LEASE_SECONDS: u64 = 120;

const JOB_FUNCTIONS: &str = r#"P="$R/previous"
B="$R/backup"
step=0
say() { printf 'infra-step\t%s\t%s\t%s\n' "$step" "$1" "$(printf '%s' "$2" | head -c 6000 | base64 -w0)"; }
ok() { printf 'infra-step\t%s\tok\t\n' "$step"; }
fail() { say failed "$1"; exit 3; }
reject() { say rejected "$1"; exit 3; }
stale() { say stale "$1"; exit 3; }
rec() { printf '%s\n' "$1" >> "$J" && sync "$J" 2>/dev/null || fail "cannot write infra's record $J"; }
journal() { journalctl -u "$1" -n 5 --no-pager 2>/dev/null; }
staged() { printf '%s/.%s.infra-new' "$(dirname "$1")" "$(basename "$1")"; }
state_of() {
  if [ -f "$1" ] && [ ! -L "$1" ]; then s=$(sha256sum < "$1") && printf '%s' "${s%% *}"
  elif [ -e "$1" ] || [ -L "$1" ]; then printf other
  else printf absent; fi
}
expect() { [ "$2" = any ] && return 0; [ "$(state_of "$1")" = "$2" ] || stale "$1 changed since the plan was made"; }
keep_previous() {
  p="$P$1"; rm -rf "$p" "$p.absent"; mkdir -p "$(dirname "$p")" || fail "cannot keep the previous $1"
  if [ -e "$1" ] || [ -L "$1" ]; then cp -a "$1" "$p" || fail "cannot keep the previous $1"; else : > "$p.absent"; fi
}
restore_previous() {
  p="$P$1"
  if [ -e "$p" ] || [ -L "$p" ]; then rm -rf "$1"; mv -f "$p" "$1" || fail "cannot put back $1"
  elif [ -e "$p.absent" ]; then rm -f "$1" "$p.absent"; fi
}
backup_once() {
  b="$B$1"
  if { [ -e "$1" ] || [ -L "$1" ]; } && [ ! -e "$b" ] && [ ! -L "$b" ]; then
    mkdir -p "$(dirname "$b")" && cp -a "$1" "$b" || fail "cannot back up $1"
    rec "$(printf '+backup\t%s' "$1")"
  fi
}
http_ok() {
  r=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n" "$2" "$3" >&3 && head -n 1 <&3' _ "$1" "$2" "$3" 2>/dev/null | tr -d '\r')
  case "$r" in "HTTP/1."[01]" "[23]*) return 0 ;; esac
  last="GET $2 on port $1: ${r:-no answer}"; return 1
}
mariadb_ok() { last=$(mariadb --connect-timeout=3 -e 'SELECT 1' 2>&1 >/dev/null); }
replica_ok() {
  s=$(mariadb --connect-timeout=3 -e 'SHOW SLAVE STATUS\G' 2>&1) || { last=$s; return 1; }
  io=$(printf '%s\n' "$s" | sed -n 's/^ *Slave_IO_Running: //p')
  sq=$(printf '%s\n' "$s" | sed -n 's/^ *Slave_SQL_Running: //p')
  [ "$io" = Yes ] && [ "$sq" = Yes ] && return 0
  last="replication threads: IO ${io:-none}, SQL ${sq:-none} $(printf '%s\n' "$s" | sed -n 's/^ *Last_[A-Z]*_Error: \(..*\)/\1/p' | head -n 1)"; return 1
}
wait_healthy() {
  u=$1; t=$2; shift 2; end=$(( $(date +%s) + t )); last=""
  while ! "$@"; do
    if [ "$(date +%s)" -ge "$end" ]; then fail "$u did not become healthy within $t s: $last
$(journalctl -u "$u" -n 15 --no-pager 2>/dev/null)"; fi
    sleep 0.5
  done
}
active_or_fail() { systemctl is-active --quiet "$1" || fail "$1 is not active: $(journal "$1")"; }
db_up() { systemctl is-active --quiet mariadb.service; }
run_sql() { out=$(mariadb --batch --silent 2>&1) || fail "mariadb: $(printf '%s\n' "$out" | grep '^ERROR' | head -3)"; }
# apt_waiting ARGS: apt-get that waits, up to 300 s, for a lock another process holds (dpkg's
# lock through DPkg::Lock::Timeout; the lists and archives locks, which that does not cover, by
# trying again: a run refused a lock has changed nothing).
apt_waiting() {
  end=$(( $(date +%s) + 300 ))
  while ! out=$(apt-get -o DPkg::Lock::Timeout=300 "$@" 2>&1); do
    case $out in
      *"Could not get lock"*|*"Unable to lock"*) [ "$(date +%s)" -lt "$end" ] || fail "apt-get $1 failed: $out"; sleep 2 ;;
      *) fail "apt-get $1 failed: $out" ;;
    esac
  done
}
installed_now() { dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 2>/dev/null | awk '$1 ~ /^ii/ { print $2 }'; }
finish_install() {
  if [ ! -f "$J.install-packages" ]; then rec "$(printf 'done\tinstall')"; return 0; fi
  wanted=$(sed -n 's/^intent\tinstall\t//p' "$J" | tail -n 1)
  for p in $(installed_now); do
    grep -qxF "$p" "$J.install-packages" && continue
    rec "$(printf '+dependency\t%s' "$p")"
    case " $wanted " in *" $p "*) rec "$(printf '+package\t%s' "$p")" ;; esac
  done
  for u in $(cut -d: -f1 /etc/passwd); do grep -qxF "$u" "$J.install-users" || rec "$(printf '+user\t%s' "$u")"; done
  for g in $(cut -d: -f1 /etc/group); do grep -qxF "$g" "$J.install-groups" || rec "$(printf '+group\t%s' "$g")"; done
  rec "$(printf 'done\tinstall')"
  rm -f "$J.install-packages" "$J.install-users" "$J.install-groups"
}
"#;

/// The script of `job`.
pub fn script(job: &Job<'_>) -> String {
    let mut script = prelude(job.topology);
    script.push_str(JOB_FUNCTIONS);
    let _ = writeln!(
        script,
        "h=$(sed -n 's/^id\\t//p' \"$R/lock/holder\" 2>/dev/null)\n\
         if [ \"$h\" != {id} ]; then printf 'infra-lock\\tlost\\n'; exit 0; fi\n\
         exp=$(( $(date +%s) + {LEASE_SECONDS} )); sed \"s/^expires\\t.*/expires\\t$exp/\" \"$R/lock/holder\" > \"$R/lock/holder.new\" && mv -f \"$R/lock/holder.new\" \"$R/lock/holder\"",
        id = quote(job.lock.as_str())
    );
    for (index, step) in job.steps.iter().enumerate() {
        let _ = writeln!(script, "step={index}");
        compile(&mut script, job, &step.kind);
        script.push_str("ok\n");
    }
    script
}

/// A record line, quoted for `rec`.
fn line(fields: &[&str]) -> String {
    quote(&fields.join("\t"))
}

fn path(path: &RemotePath) -> String {
    quote(path.as_str())
}

fn packages(list: &[PackageName]) -> String {
    list.iter()
        .map(|p| quote(p.as_str()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn compile(script: &mut String, job: &Job<'_>, kind: &StepKind) {
    match kind {
        StepKind::BeginRun { lineage, serial } => {
            let _ = writeln!(
                script,
                "mkdir -p \"$R/record\" && chmod 700 \"$R\" \"$R/record\" || fail \"cannot make $R\"\n\
                 {{ printf 'infra-record\\t1\\t%s\\t%s\\n' \"$T\" {lineage}; printf 'serial\\t%s\\n' {serial}; \
                 if [ -f \"$J\" ]; then replay \"$J\"; fi; }} > \"$J.new\" && sync \"$J.new\" && mv -f \"$J.new\" \"$J\" || fail \"cannot write infra's record\"\n\
                 rm -rf \"$P\"",
                lineage = quote(lineage),
            );
        }
        StepKind::InstallPackages { packages: list } => {
            let names: Vec<&str> = list.iter().map(PackageName::as_str).collect();
            let _ = writeln!(
                script,
                "rec {intent}\n\
                 installed_now > \"$J.install-packages\"; cut -d: -f1 /etc/passwd > \"$J.install-users\"; cut -d: -f1 /etc/group > \"$J.install-groups\"\n\
                 mkdir -p \"$R/shadow-backups\"\n\
                 for f in passwd- group- shadow- gshadow-; do [ -e /etc/$f ] && [ ! -e \"$R/shadow-backups/$f\" ] && cp -p /etc/$f \"$R/shadow-backups/$f\"; done\n\
                 dpkg --configure -a >/dev/null 2>&1\n\
                 apt_waiting update -q\n\
                 apt_waiting install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold {list}\n\
                 finish_install",
                intent = line(&["intent", "install", &names.join(" ")]),
                list = packages(list),
            );
        }
        StepKind::FinishInterruptedInstall => script.push_str("finish_install\n"),
        StepKind::CreateDirectory {
            path: folder,
            owner,
            group,
            mode,
        } => {
            let p = path(folder);
            let _ = writeln!(
                script,
                "[ -d {p} ] || rec {record}\n\
                 install -d -m {mode:o} -o {owner} -g {group} {p} && chown {owner}:{group} {p} && chmod {mode:o} {p} || fail \"cannot create {shown}\"",
                record = line(&["+directory", folder.as_str()]),
                mode = mode.0,
                owner = quote(owner.as_str()),
                group = quote(group.as_str()),
                shown = folder,
            );
        }
        StepKind::FixDirectory {
            path: target,
            owner,
            group,
            mode,
        }
        | StepKind::FixFile {
            path: target,
            owner,
            group,
            mode,
        } => {
            let p = path(target);
            let _ = writeln!(
                script,
                "chown {owner}:{group} {p} && chmod {mode:o} {p} || fail \"cannot set the owner and mode of {target}\"",
                owner = quote(owner.as_str()),
                group = quote(group.as_str()),
                mode = mode.0,
            );
        }
        StepKind::StageFile {
            path: target,
            content,
            owner,
            group,
            mode,
        } => {
            let Some(file) = job.contents.get(content) else {
                let _ = writeln!(
                    script,
                    "fail 'the content of {target} is not known to this run'"
                );
                return;
            };
            let p = path(target);
            let _ = write!(
                script,
                "t=$(staged {p}); rm -f \"$t\"\n\
                 (set -C; : > \"$t\") 2>/dev/null || fail \"cannot create $t\"\n\
                 chown {owner}:{group} \"$t\" && chmod {mode:o} \"$t\" || {{ rm -f \"$t\"; fail \"cannot set the owner and mode of $t\"; }}\n\
                 base64 -d > \"$t\" ",
                owner = quote(owner.as_str()),
                group = quote(group.as_str()),
                mode = mode.0,
            );
            heredoc(script, &file.content);
            let _ = writeln!(
                script,
                "s=$(sha256sum < \"$t\"); [ \"${{s%% *}}\" = {sha} ] || {{ rm -f \"$t\"; fail \"the content of {target} arrived damaged\"; }}\n\
                 sync \"$t\" 2>/dev/null || sync",
                sha = quote(file.sha256.as_str()),
            );
        }
        StepKind::Check {
            check,
            path: target,
            target: read,
        } => compile_check(script, *check, target, *read),
        StepKind::CommitFile {
            path: target,
            content,
            sensitivity,
            backup,
            notify,
        } => {
            let p = path(target);
            expect(script, job, target);
            let Some(file) = job.contents.get(content) else {
                let _ = writeln!(
                    script,
                    "fail 'the content of {target} is not known to this run'"
                );
                return;
            };
            let _ = writeln!(
                script,
                "t=$(staged {p}); [ -f \"$t\" ] || fail \"nothing is staged for {target}\""
            );
            match backup {
                Backup::KeepOriginal => {
                    let _ = writeln!(script, "backup_once {p}");
                }
                Backup::Nothing => {}
            }
            let _ = writeln!(
                script,
                "keep_previous {p}\nrec {record}",
                record = line(&[
                    "+file",
                    target.as_str(),
                    file.sha256.as_str(),
                    sensitivity_word(*sensitivity)
                ]),
            );
            if let Some(notify) = notify {
                let _ = writeln!(
                    script,
                    "rec {}",
                    line(&["+owed", notify.unit.as_str(), notify.trigger.verb()])
                );
            }
            match (sensitivity, &file.display) {
                (Sensitivity::Sensitive, Display::Text(redacted)) => {
                    let _ = write!(
                        script,
                        "d=\"$D\"{p}; mkdir -p \"$(dirname \"$d\")\" && base64 -d > \"$d\" "
                    );
                    heredoc(script, redacted.as_bytes());
                }
                (Sensitivity::Sensitive, Display::Binary) | (Sensitivity::Plain, _) => {
                    let _ = writeln!(script, "rm -f \"$D\"{p}");
                }
            }
            let _ = writeln!(
                script,
                "mv -f \"$t\" {p} || fail \"cannot rename {target} into place\""
            );
        }
        StepKind::RemoveUnwantedFile { path: target } => {
            let p = path(target);
            expect(script, job, target);
            let _ = writeln!(
                script,
                "if [ -e {p} ] || [ -L {p} ]; then backup_once {p}; keep_previous {p}; rec {record}; rm -f {p} || fail \"cannot remove {target}\"; fi",
                record = line(&["+removed", target.as_str()]),
            );
        }
        StepKind::RemoveFile {
            path: target,
            restore,
        } => {
            let p = path(target);
            expect(script, job, target);
            let _ = writeln!(script, "keep_previous {p}");
            match restore {
                Restore::Original => {
                    // Without its backup (a run that stopped right after putting it back), the
                    // file there is the original: it stays.
                    let _ = writeln!(
                        script,
                        "b=\"$B\"{p}; if [ -e \"$b\" ] || [ -L \"$b\" ]; then rm -f {p}; mv -f \"$b\" {p} || fail \"cannot put back the original {target}\"; fi"
                    );
                }
                Restore::Nothing => {
                    let _ = writeln!(script, "rm -f {p} || fail \"cannot remove {target}\"");
                }
            }
            let _ = writeln!(
                script,
                "rm -f \"$D\"{p}\nrec {}\nrec {}",
                line(&["-file", target.as_str()]),
                line(&["-backup", target.as_str()]),
            );
        }
        StepKind::RestoreRemovedFile { path: target } => {
            let p = path(target);
            let _ = writeln!(
                script,
                "b=\"$B\"{p}; if [ -e \"$b\" ] || [ -L \"$b\" ]; then if [ -e {p} ] || [ -L {p} ]; then rm -f \"$b\"; else mkdir -p \"$(dirname {p})\" && mv -f \"$b\" {p} || fail \"cannot put back {target}\"; fi; fi\n\
                 rec {}\nrec {}",
                line(&["-removed", target.as_str()]),
                line(&["-backup", target.as_str()]),
            );
        }
        StepKind::RestorePrevious { path: target } => {
            let _ = writeln!(script, "restore_previous {}", path(target));
        }
        StepKind::DiscardStaged { path: target } => {
            let _ = writeln!(script, "rm -f \"$(staged {})\"", path(target));
        }
        StepKind::LoadFirewall => {
            let file = quote(infra_plan::paths::firewall_nft().as_str());
            let _ = writeln!(
                script,
                "rec {record}\n\
                 out=$(nft -f {file} 2>&1) || fail \"nft -f: $out\"\n\
                 t=$(nft list table inet infra) && s=$(printf '%s\\n' \"$t\" | sha256sum) && f=$(sha256sum < {file}) && printf '%s %s\\n' \"${{s%% *}}\" \"${{f%% *}}\" > \"$R/firewall.sha256\" || fail 'cannot record the loaded table'",
                record = line(&["+firewall"]),
            );
        }
        StepKind::RemoveFirewall => {
            let _ = writeln!(
                script,
                "nft delete table inet infra >/dev/null 2>&1; rm -f \"$R/firewall.sha256\"\nrec {}",
                line(&["-firewall"])
            );
        }
        StepKind::Sql(step) => compile_sql(script, job, step),
        StepKind::DaemonReload => {
            script.push_str("systemctl daemon-reload || fail 'systemctl daemon-reload failed'\n");
        }
        StepKind::EnableUnit { unit } => {
            let u = quote(unit.as_str());
            let _ = writeln!(
                script,
                "if [ \"$(systemctl is-enabled {u} 2>/dev/null)\" != enabled ]; then rec {record}; out=$(systemctl enable {u} 2>&1) || fail \"cannot enable {unit}: $out\"; fi",
                record = line(&["+service", unit.as_str()]),
            );
        }
        StepKind::DisableUnit { unit } => {
            let _ = writeln!(
                script,
                "systemctl disable --now {} >/dev/null 2>&1\nrec {}\nrec {}",
                quote(unit.as_str()),
                line(&["-service", unit.as_str()]),
                line(&["-owed", unit.as_str()]),
            );
        }
        StepKind::StartUnit { unit } => service(script, unit.as_str(), None),
        StepKind::ReloadUnit { unit } => service(script, unit.as_str(), Some(Trigger::Reload)),
        StepKind::RestartUnit { unit } => service(script, unit.as_str(), Some(Trigger::Restart)),
        StepKind::Migrate { migration } => {
            // As the app's unit runs it (its user, folder and environment), in a transient unit
            // of its own; stdin is not the script's (the shell reads the rest of it from there).
            let words: Vec<String> = migration.command.iter().map(|w| quote(w)).collect();
            let _ = writeln!(
                script,
                "out=$(systemd-run --quiet --wait --pipe --collect --unit={name} --service-type=exec -p DynamicUser=yes -p PrivateTmp=yes -p NoNewPrivileges=yes -p {env} -p {dir} -- {command} </dev/null 2>&1) || fail \"the migration failed: $out\"",
                name = quote(&format!(
                    "{}-migrate",
                    migration.unit.as_str().trim_end_matches(".service")
                )),
                env = quote(&format!("EnvironmentFile={}", migration.environment_file)),
                dir = quote(&format!("WorkingDirectory={}", migration.working_directory)),
                command = words.join(" "),
            );
        }
        StepKind::WaitHealthy {
            unit,
            gate,
            timeout_seconds,
        } => {
            let check = match gate {
                HealthGate::Http { port, path, host } => {
                    format!("http_ok {port} {} {}", quote(path), quote(host))
                }
                HealthGate::Mariadb => "mariadb_ok".to_owned(),
                HealthGate::Replication => "replica_ok".to_owned(),
            };
            let _ = writeln!(
                script,
                "wait_healthy {} {timeout_seconds} {check}",
                quote(unit.as_str())
            );
        }
        StepKind::RemoveDirectory { path: folder } => {
            let _ = writeln!(
                script,
                "rmdir {} 2>/dev/null\nrec {}",
                path(folder),
                line(&["-directory", folder.as_str()])
            );
        }
        StepKind::PurgePackages {
            packages: list,
            dependencies,
        } => {
            let deps: Vec<&str> = dependencies.iter().map(PackageName::as_str).collect();
            let _ = writeln!(
                script,
                "out=$(apt-get -o DPkg::Lock::Timeout=300 purge -y -q {list} 2>&1) || fail \"apt-get purge failed: $out\"\n\
                 for p in {list}; do rec \"$(printf '%s\\t%s' -package \"$p\")\"; done\n\
                 all={deps}\n\
                 left=$all\n\
                 while [ -n \"$left\" ]; do\n\
                   progress=no; rest=''\n\
                   for p in $left; do\n\
                     case \"$(dpkg-query -W -f='${{Status}}' \"$p\" 2>/dev/null)\" in\n\
                       *installed*|*config-files*) if dpkg --purge \"$p\" >/dev/null 2>&1; then progress=yes; else rest=\"$rest $p\"; fi ;;\n\
                     esac\n\
                   done\n\
                   left=$rest; [ $progress = yes ] || break\n\
                 done\n\
                 for p in $all; do case \"$(dpkg-query -W -f='${{Status}}' \"$p\" 2>/dev/null)\" in *installed*|*config-files*) ;; *) rec \"$(printf '%s\\t%s' -dependency \"$p\")\" ;; esac; done",
                list = packages(list),
                deps = quote(&deps.join(" ")),
            );
            for leftover in infra_plan::paths::LEFTOVERS
                .iter()
                .filter(|l| list.iter().any(|p| p.as_str() == l.package))
            {
                let folders: Vec<String> = leftover.folders.iter().map(|f| quote(f)).collect();
                let _ = writeln!(
                    script,
                    "if grep -qsF -- {marker} {file}; then rm -f {file}; rmdir {folders} 2>/dev/null; fi",
                    marker = quote(leftover.marker),
                    file = quote(leftover.path),
                    folders = folders.join(" "),
                );
            }
        }
        StepKind::RemoveAccounts { users, groups } => {
            for user in users {
                let _ = writeln!(
                    script,
                    "userdel {} >/dev/null 2>&1; rec {}",
                    quote(user.as_str()),
                    line(&["-user", user.as_str()])
                );
            }
            for group in groups {
                let _ = writeln!(
                    script,
                    "groupdel {} >/dev/null 2>&1; rec {}",
                    quote(group.as_str()),
                    line(&["-group", group.as_str()])
                );
            }
        }
        StepKind::RestoreShadowBackups => {
            script.push_str("for f in passwd- group- shadow- gshadow-; do [ -e \"$R/shadow-backups/$f\" ] && cp -p \"$R/shadow-backups/$f\" /etc/$f; done\n");
        }
        StepKind::DeleteDatabaseFiles => {
            script.push_str("rm -rf /var/lib/mysql /var/log/mysql /etc/mysql\n");
        }
        StepKind::ForgetRecord => {
            script.push_str(
                "rm -f \"$J\" \"$J.new\" \"$J\".install-*\nrm -rf \"$D\" \"$P\" \"$R/shadow-backups\"\n\
                 [ -d \"$B\" ] && find \"$B\" -depth -type d -empty -delete\n\
                 rmdir \"$R/record\" \"$R/display\" 2>/dev/null\n",
            );
        }
        StepKind::FinishRun => script.push_str("rm -rf \"$P\"\n"),
        StepKind::ImportRecord { record } => {
            let mut imported = (**record).clone();
            let files = std::mem::take(&mut imported.files);
            for line in infra_plan::record::resource_lines(&imported) {
                let _ = writeln!(script, "rec {}", quote(&line));
            }
            for (path, recorded) in files {
                let p = quote(path.as_str());
                let _ = writeln!(
                    script,
                    "if [ -f {p} ]; then s=$(sha256sum < {p}); rec \"$(printf '+file\\t%s\\t%s\\t%s' {p} \"${{s%% *}}\" {sensitivity})\"; fi",
                    sensitivity = sensitivity_word(recorded.sensitivity),
                );
            }
        }
        StepKind::Forget { entry } => {
            let _ = writeln!(script, "rec {}", quote(&entry.forget_line()));
        }
    }
}

/// The precondition of the file step at `target`, checked on the host.
fn expect(script: &mut String, job: &Job<'_>, target: &RemotePath) {
    let Some(expected) = job.expected.get(target) else {
        return;
    };
    let state = match expected {
        Expected::Absent => "absent".to_owned(),
        Expected::Other => "other".to_owned(),
        Expected::Content(sha) => sha.as_str().to_owned(),
        Expected::Any => "any".to_owned(),
    };
    let _ = writeln!(script, "expect {} {}", path(target), quote(&state));
}

fn compile_check(script: &mut String, check: Check, target: &RemotePath, read: CheckTarget) {
    let p = path(target);
    let file = match read {
        CheckTarget::Staged => "\"$(staged {p})\"".replace("{p}", &p),
        CheckTarget::Installed => p.clone(),
    };
    let line = match check {
        Check::Haproxy => format!("out=$(haproxy -c -f {file} 2>&1) || reject \"$out\""),
        Check::Keepalived => format!("out=$(keepalived -t -f {file} 2>&1) || reject \"$out\""),
        Check::Nftables => format!("out=$(nft -c -f {file} 2>&1) || reject \"$out\""),
        Check::Nginx => "out=$(nginx -t 2>&1) || reject \"$out\"".to_owned(),
        Check::Mariadb => "out=$(mariadbd --help --verbose 2>&1 >/dev/null); r=$?\n\
             if [ $r -ne 0 ] || printf '%s' \"$out\" | grep -q '\\[ERROR\\]'; then reject \"$out\"; fi"
            .to_owned(),
        Check::SystemdUnit => format!("out=$(systemd-analyze verify {file} 2>&1) || reject \"$out\""),
        Check::PrometheusConfig => {
            format!("out=$(promtool check config {file} 2>&1) || reject \"$out\"")
        }
        Check::PrometheusRules => {
            format!("out=$(promtool check rules {file} 2>&1) || reject \"$out\"")
        }
        Check::Blackbox => format!(
            "out=$(prometheus-blackbox-exporter --config.check --config.file={file} 2>&1) || reject \"$out\""
        ),
    };
    script.push_str(&line);
    script.push('\n');
}

fn service(script: &mut String, unit: &str, trigger: Option<Trigger>) {
    let u = quote(unit);
    // A unit that kept failing (a broken release restarting on its own) may have hit systemd's
    // start limit; putting the previous release back must still be able to start it.
    let _ = writeln!(script, "systemctl reset-failed {u} 2>/dev/null");
    let command = match trigger {
        None => format!(
            "if ! systemctl is-active --quiet {u}; then out=$(systemctl start {u} 2>&1) || fail \"cannot start {unit}: $out $(journal {u})\"; fi"
        ),
        Some(Trigger::Reload) => format!(
            "if systemctl is-active --quiet {u}; then out=$(systemctl reload {u} 2>&1) || fail \"cannot reload {unit}: $out $(journal {u})\"; \
             else out=$(systemctl start {u} 2>&1) || fail \"cannot start {unit}: $out $(journal {u})\"; fi"
        ),
        Some(Trigger::Restart) => format!(
            "out=$(systemctl restart {u} 2>&1) || fail \"cannot restart {unit}: $out $(journal {u})\""
        ),
    };
    let _ = writeln!(
        script,
        "{command}\nactive_or_fail {u}\nrec {}",
        line(&["-owed", unit])
    );
}

fn account(account: &SqlAccount) -> String {
    sql::account(account)
}

/// The password `of` names, or a `fail` line in the script when this run does not know it.
fn known<'a>(
    script: &mut String,
    job: &'a Job<'_>,
    of: &infra_plan::plan::PasswordOf,
) -> Option<&'a infra_topology::Secret> {
    let secret = job.passwords.get(&of.0);
    if secret.is_none() {
        let _ = writeln!(
            script,
            "fail 'the password of {} is not known to this run'",
            of.0
        );
    }
    secret
}

fn compile_sql(script: &mut String, job: &Job<'_>, step: &SqlStep) {
    let (record_before, statements, record_after, needs_server): (
        Option<String>,
        String,
        Option<String>,
        bool,
    ) = match step {
        SqlStep::CreateDatabase { database } => (
            Some(line(&["+database", database.as_str()])),
            format!(
                "CREATE DATABASE IF NOT EXISTS {};\n",
                sql::database(database)
            ),
            None,
            true,
        ),
        SqlStep::DropDatabase { database } => (
            None,
            format!("DROP DATABASE IF EXISTS {};\n", sql::database(database)),
            Some(line(&["-database", database.as_str()])),
            false,
        ),
        SqlStep::CreateAccount {
            account: who,
            password: of,
        } => {
            let Some(secret) = known(script, job, of) else {
                return;
            };
            let secret = sql::string(secret.expose());
            let a = account(who);
            (
                Some(line(&["+account", &who.to_string()])),
                format!(
                    "CREATE USER IF NOT EXISTS {a} IDENTIFIED BY {secret};\nALTER USER {a} IDENTIFIED BY {secret};\n"
                ),
                None,
                true,
            )
        }
        SqlStep::AddPassword {
            account: who,
            password: of,
        } => {
            let Some(secret) = known(script, job, of) else {
                return;
            };
            let hash = infra_plan::plan::mysql_native_password(secret.expose());
            (None, sql::add_password(who, &hash), None, true)
        }
        SqlStep::SetPassword {
            account: who,
            password: of,
        } => {
            let Some(secret) = known(script, job, of) else {
                return;
            };
            let secret = sql::string(secret.expose());
            (
                None,
                format!("ALTER USER {} IDENTIFIED BY {secret};\n", account(who)),
                None,
                true,
            )
        }
        SqlStep::Grant {
            account: who,
            grant,
        } => {
            let on = match grant {
                Grant::AllOn(database) => {
                    format!("ALL PRIVILEGES ON {}.*", sql::database(database))
                }
                Grant::Replication => "REPLICATION SLAVE ON *.*".to_owned(),
                Grant::Monitor => "PROCESS, SLAVE MONITOR ON *.*".to_owned(),
            };
            (
                None,
                format!("GRANT {on} TO {};\n", account(who)),
                None,
                true,
            )
        }
        SqlStep::DropAccount { account: who } => (
            None,
            format!("DROP USER IF EXISTS {};\n", account(who)),
            Some(line(&["-account", &who.to_string()])),
            false,
        ),
        SqlStep::DropCopiedAccount { account: who } => (
            None,
            format!(
                "SET SESSION sql_log_bin = 0;\nDROP USER IF EXISTS {};\n",
                account(who)
            ),
            None,
            false,
        ),
        SqlStep::Replicate {
            source,
            port,
            user,
            password: of,
            primary_tls,
        } => {
            let Some(secret) = known(script, job, of) else {
                return;
            };
            let secret = sql::string(secret.expose());
            // A primary without TLS (MariaDB 10.11, Debian 12): the replica is told so, as an
            // 11.8 replica (Debian 13) would otherwise demand TLS and never replicate. A 10.11
            // replica does this by default. The tier talks on its private addresses, and the
            // password is not sent in the clear (the server's challenge).
            let tls = if *primary_tls { "" } else { ", MASTER_SSL=0" };
            (
                Some(line(&["+replication"])),
                format!(
                    "STOP SLAVE;\nRESET SLAVE ALL;\nCHANGE MASTER TO MASTER_HOST={host}, MASTER_PORT={port}, MASTER_USER={user}, MASTER_PASSWORD={secret}, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=5{tls};\nSTART SLAVE;\n",
                    host = sql::string(&source.to_string()),
                    user = sql::string(user.as_str()),
                ),
                None,
                true,
            )
        }
        SqlStep::StopReplication => (
            None,
            "STOP SLAVE;\nRESET SLAVE ALL;\n".to_owned(),
            Some(line(&["-replication"])),
            false,
        ),
    };
    if needs_server {
        script.push_str("db_up || fail 'MariaDB is not running'\n");
    } else {
        // Dropping needs nothing when the server is gone already (its data goes with it).
        script.push_str("if db_up; then\n");
    }
    if let Some(record) = record_before {
        let _ = writeln!(script, "rec {record}");
    }
    script.push_str("run_sql <<'INFRA_SQL'\n");
    script.push_str(&statements);
    script.push_str("INFRA_SQL\n");
    if !needs_server {
        script.push_str("fi\n");
    }
    if let Some(record) = record_after {
        let _ = writeln!(script, "rec {record}");
    }
}

/// Reads a job script's answer.
pub fn parse(stdout: &str) -> Result<JobReport, String> {
    let mut outcomes = Vec::new();
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["infra-lock", "lost"] => {
                outcomes.push(StepOutcome::LockLost);
                break;
            }
            ["infra-step", index, verdict, message] => {
                let index: usize = index
                    .parse()
                    .map_err(|_| format!("a bad step number `{index}`"))?;
                if index != outcomes.len() {
                    return Err(format!("step {index} answered out of order"));
                }
                let message = || decode_text(message);
                outcomes.push(match *verdict {
                    "ok" => StepOutcome::Done,
                    "failed" => StepOutcome::Failed {
                        message: message()?,
                    },
                    "rejected" => StepOutcome::Rejected { output: message()? },
                    "stale" => StepOutcome::Stale { detail: message()? },
                    other => return Err(format!("an unknown verdict `{other}`")),
                });
            }
            // Anything else a command printed is not part of the answer.
            _ => {}
        }
    }
    Ok(JobReport { outcomes })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::process::Command;

    use infra_plan::desired::{Display, ManagedFile, Mode, Origin, Sensitivity};
    use infra_plan::hash::{Fingerprint, Sha256};
    use infra_plan::lock::LockId;
    use infra_plan::plan::{ContentId, Step, StepKind};
    use infra_topology::{AccountName, Name, RemotePath};

    use crate::transport::Job;

    fn id(flag: &str) -> String {
        let output = Command::new("id").arg(flag).output().expect("id runs");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// A staged file is created empty, given its owner and final mode, and only then receives
    /// its bytes: whatever umask `sh` was started with, no other user can read a secret while
    /// it is written. Runs the real script in `sh` on a private folder.
    #[test]
    fn a_staged_file_has_its_owner_and_mode_before_any_byte_is_written() {
        let dir = tempfile::tempdir().expect("dir");
        let state = dir.path().join("state");
        std::fs::create_dir_all(state.join("lock")).expect("lock folder");
        std::fs::create_dir_all(state.join("record")).expect("record folder");
        let lock = LockId::parse("00000000000000aa").expect("id");
        std::fs::write(
            state.join("lock/holder"),
            "id\t00000000000000aa\nexpires\t1\n",
        )
        .expect("holder");
        let target = dir.path().join("stats.cfg");
        let target = RemotePath::new(target.to_string_lossy().into_owned()).expect("path");
        let content = b"stats auth admin:s3cret-value\n".to_vec();
        let sha256 = Sha256::of(&content);
        let file = ManagedFile {
            path: target.clone(),
            owner: AccountName::new(id("-un")).expect("user"),
            group: AccountName::new(id("-gn")).expect("group"),
            mode: Mode(0o640),
            display: Display::Text("stats auth admin:(sensitive)\n".to_owned()),
            content,
            sensitivity: Sensitivity::Sensitive,
            sha256: sha256.clone(),
            origin: Origin::Template("haproxy.cfg.tera".to_owned()),
            check: None,
            notify: None,
            note: None,
        };
        let content_id = ContentId(Fingerprint::from(&sha256));
        let contents = BTreeMap::from([(content_id.clone(), &file)]);
        let steps = [Step {
            kind: StepKind::StageFile {
                path: target.clone(),
                content: content_id,
                owner: file.owner.clone(),
                group: file.group.clone(),
                mode: file.mode,
            },
            reason: None,
            expects: None,
            undo: None,
        }];
        let topology = Name::new("t").expect("name");
        let job = Job {
            topology: &topology,
            lock: &lock,
            steps: &steps,
            contents: &contents,
            passwords: &BTreeMap::new(),
            expected: &BTreeMap::new(),
        };
        let modes = dir.path().join("modes");
        // The state folder is ours, and `base64` notes the staged file's mode and owner at
        // the moment its output is about to be written into it.
        let script = super::script(&job).replacen(
            "R=/var/lib/infra\n",
            &format!(
                "R='{}'\nbase64() {{ stat -c '%a %U' \"$t\" >> '{}'; command base64 \"$@\"; }}\n",
                state.display(),
                modes.display()
            ),
            1,
        );
        assert!(script.starts_with("set -u\numask 077\n"), "{script}");
        let output = Command::new("sh")
            .arg("-c")
            .arg("umask 000; exec sh -s")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write as _;
                if let Some(mut stdin) = child.stdin.take() {
                    stdin.write_all(script.as_bytes())?;
                }
                child.wait_with_output()
            })
            .expect("sh runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("infra-step\t0\tok"),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let seen = std::fs::read_to_string(&modes).expect("base64 ran");
        assert_eq!(seen.trim(), format!("640 {}", id("-un")));
        let staged = dir.path().join(".stats.cfg.infra-new");
        assert_eq!(
            std::fs::read(&staged).expect("staged"),
            b"stats auth admin:s3cret-value\n"
        );
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&staged)
            .expect("staged")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
    }
}

#[cfg(test)]
mod replication {
    use std::collections::BTreeMap;

    use infra_plan::lock::LockId;
    use infra_plan::plan::{PasswordOf, SqlStep, Step, StepKind};
    use infra_topology::{Name, Secret, SecretSource, SqlName};

    /// The replica's `CHANGE MASTER TO` for a primary with or without TLS.
    fn statement(primary_tls: bool) -> String {
        let user = SqlName::new("repl").expect("name");
        let steps = [Step::new(StepKind::Sql(SqlStep::Replicate {
            source: "10.0.0.41".parse().expect("address"),
            port: 3306,
            user: user.clone(),
            password: PasswordOf(user.clone()),
            primary_tls,
        }))];
        let secret = Secret::new(SecretSource::Env("PW".to_owned()), "pw".to_owned());
        let passwords = BTreeMap::from([(user, secret)]);
        let lock = LockId::parse("00000000000000aa").expect("id");
        let topology = Name::new("t").expect("name");
        let job = crate::transport::Job {
            topology: &topology,
            lock: &lock,
            steps: &steps,
            contents: &BTreeMap::new(),
            passwords: &passwords,
            expected: &BTreeMap::new(),
        };
        let script = super::script(&job);
        script
            .lines()
            .find(|l| l.contains("CHANGE MASTER TO"))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no CHANGE MASTER in:\n{script}"))
    }

    #[test]
    fn a_replica_of_a_primary_without_tls_is_told_so_and_of_one_with_tls_keeps_it() {
        assert!(
            statement(false).ends_with("MASTER_CONNECT_RETRY=5, MASTER_SSL=0;"),
            "{}",
            statement(false)
        );
        assert!(
            statement(true).ends_with("MASTER_CONNECT_RETRY=5;"),
            "{}",
            statement(true)
        );
    }
}
