//! An in-memory fake host: files, folders, packages, units, SQL objects, the record and the
//! lock, behind the same [`Transport`] as a real host. It runs every step kind the way the SSH
//! scripts do (the record lines before and after a change included), so the rules of ordering,
//! failures, rollbacks, interruptions and stale plans are tested without Docker. It is a test
//! double: real behaviour is proven on lab hosts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use infra_plan::desired::{Check, CheckTarget, Display, Grant, Sensitivity};
use infra_plan::facts::{
    DatabaseFacts, DirectoryFact, FileFact, GatherRequest, HostFacts, Ownership, PackageFact,
    ReplicationFact, ServiceFact, Shown, ShownRule, shown_rule,
};
use infra_plan::hash::Sha256;
use infra_plan::lock::{Lease, LockFact, LockHolder};
use infra_plan::plan::{Backup, Restore, SqlStep, StepKind};
use infra_plan::record::{self, sensitivity_word};
use infra_topology::{Host, HostName, PackageName, RemotePath, SqlAccount, SqlName, UnitName};

use crate::transport::{
    BoxFuture, Connector, Expected, HostError, Job, JobReport, LockAnswer, LockRequest,
    StepOutcome, Transport,
};

/// A file on a fake host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeFile {
    /// Its bytes.
    pub content: Vec<u8>,
    /// Owner, group and mode.
    pub ownership: Ownership,
}

/// A unit on a fake host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FakeUnit {
    /// Enabled at boot.
    pub enabled: bool,
    /// Running.
    pub active: bool,
}

/// Ways a fake host can misbehave.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// The host does not answer at all.
    pub unreachable: bool,
    /// The first step whose description contains this fails.
    pub fail_step: Option<String>,
    /// The connection drops after this many more steps (a host killed halfway).
    pub die_after_steps: Option<usize>,
    /// Services fail their health check while any file on the host holds this text (a
    /// broken release: putting the previous files back makes them healthy again).
    pub unhealthy_when: Option<String>,
}

/// One fake host's state.
#[derive(Debug, Clone, Default)]
pub struct FakeHost {
    /// `ID VERSION_ID` of its `/etc/os-release` (empty: `debian 12`).
    pub os: String,
    /// Installed packages and their versions.
    pub packages: BTreeMap<PackageName, String>,
    /// Regular files.
    pub files: BTreeMap<RemotePath, FakeFile>,
    /// Folders.
    pub directories: BTreeMap<RemotePath, Ownership>,
    /// Units that exist.
    pub units: BTreeMap<UnitName, FakeUnit>,
    /// System users and groups.
    pub accounts: BTreeSet<String>,
    /// Databases.
    pub databases: BTreeSet<SqlName>,
    /// The app migrations run here, in order.
    pub migrations: Vec<String>,
    /// Database accounts and their password hashes.
    pub sql_accounts: BTreeMap<SqlAccount, String>,
    /// Old password hashes still accepted beside the current ones (a rotation under way).
    pub retained_passwords: BTreeMap<SqlAccount, String>,
    /// Grants.
    pub grants: BTreeMap<SqlAccount, Grant>,
    /// Replication.
    pub replication: Option<ReplicationFact>,
    /// The loaded firewall table's hash, and the record of the last load.
    pub firewall: Option<Sha256>,
    /// (table, file) hashes recorded by the last load.
    pub firewall_record: Option<(Sha256, Sha256)>,
    /// `infra`'s record journal, as the SSH scripts write it.
    pub journal: String,
    /// Redacted copies of sensitive files.
    pub redacted: BTreeMap<RemotePath, String>,
    /// Originals kept for destroy.
    pub backups: BTreeMap<RemotePath, FakeFile>,
    /// Contents before this run changed them (`None`: absent).
    pub previous: BTreeMap<RemotePath, Option<FakeFile>>,
    /// Staged new contents.
    pub staged: BTreeMap<RemotePath, FakeFile>,
    /// The lock's holder, if any.
    pub lock: Option<LockHolder>,
    /// Misbehaviour.
    pub faults: Faults,
    /// What happened, in order: `reload nginx.service`, `write /etc/...`.
    pub log: Vec<String>,
}

/// Everything a package brings to a fake host.
struct Brings {
    dependencies: &'static [&'static str],
    unit: Option<(&'static str, FakeUnit)>,
    files: &'static [(&'static str, &'static str)],
    users: &'static [&'static str],
}

fn catalog(package: &str) -> Brings {
    let running = FakeUnit {
        enabled: true,
        active: true,
    };
    match package {
        "nginx" => Brings {
            dependencies: &["nginx-common"],
            unit: Some(("nginx.service", running)),
            files: &[(
                "/etc/nginx/sites-enabled/default",
                "server { listen 80 default_server; }\n",
            )],
            users: &[],
        },
        "haproxy" => Brings {
            dependencies: &["liblua5.3-0"],
            unit: Some(("haproxy.service", running)),
            files: &[("/etc/haproxy/haproxy.cfg", "global\n    daemon\n")],
            users: &["haproxy"],
        },
        "keepalived" => Brings {
            dependencies: &[],
            unit: Some((
                "keepalived.service",
                FakeUnit {
                    enabled: true,
                    active: false,
                },
            )),
            files: &[],
            users: &[],
        },
        "mariadb-server" => Brings {
            dependencies: &["mariadb-client", "mariadb-common"],
            unit: Some(("mariadb.service", running)),
            files: &[],
            users: &["mysql"],
        },
        _ => Brings {
            dependencies: &[],
            unit: None,
            files: &[],
            users: &[],
        },
    }
}

fn root(mode: u32) -> Ownership {
    Ownership {
        owner: "root".to_owned(),
        group: "root".to_owned(),
        mode,
    }
}

/// Why a step stopped.
enum Stop {
    Outcome(StepOutcome),
    Died,
}

impl FakeHost {
    fn rec(&mut self, line: &str) {
        self.journal.push_str(line);
        self.journal.push('\n');
    }

    fn current_record(&self) -> record::HostRecord {
        record::parse(&self.journal)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn state_of(&self, path: &RemotePath) -> Expected {
        if let Some(file) = self.files.get(path) {
            Expected::Content(Sha256::of(&file.content))
        } else if self.directories.contains_key(path) {
            Expected::Other
        } else {
            Expected::Absent
        }
    }

    fn keep_previous(&mut self, path: &RemotePath) {
        let now = self.files.get(path).cloned();
        self.previous.insert(path.clone(), now);
    }

    fn backup_once(&mut self, path: &RemotePath) {
        if let Some(file) = self.files.get(path).cloned()
            && !self.backups.contains_key(path)
        {
            self.backups.insert(path.clone(), file);
            self.rec(&format!("+backup\t{path}"));
        }
    }

    fn unit(&mut self, unit: &UnitName) -> &mut FakeUnit {
        self.units.entry(unit.clone()).or_default()
    }

    fn gather(&self, request: &GatherRequest, now: u64) -> HostFacts {
        let record = self.current_record();
        let mut facts = HostFacts {
            os: Some(if self.os.is_empty() {
                "debian 12".to_owned()
            } else {
                self.os.clone()
            }),
            record: record::parse(&self.journal).ok().flatten(),
            ..HostFacts::default()
        };
        let packages = request
            .packages
            .iter()
            .chain(&record.packages)
            .chain(&record.dependencies);
        for package in packages {
            let fact = match self.packages.get(package) {
                Some(version) => PackageFact::Installed {
                    version: version.clone(),
                },
                None => PackageFact::Absent,
            };
            facts.packages.insert(package.clone(), fact);
        }
        for path in request.directories.iter().chain(&record.directories) {
            let fact = match self.directories.get(path) {
                Some(ownership) => DirectoryFact::Present(ownership.clone()),
                None => DirectoryFact::Absent,
            };
            facts.directories.insert(path.clone(), fact);
        }
        let queries: Vec<(RemotePath, Option<&infra_plan::facts::FileQuery>)> = request
            .files
            .iter()
            .map(|q| (q.path.clone(), Some(q)))
            .chain(
                record
                    .files
                    .keys()
                    .filter(|p| !request.files.iter().any(|q| &q.path == *p))
                    .map(|p| (p.clone(), None)),
            )
            .collect();
        for (path, query) in queries {
            let fact = match self.files.get(&path) {
                Some(file) => {
                    let sha = Sha256::of(&file.content);
                    let shown = match shown_rule(query, record.files.get(&path), &sha) {
                        ShownRule::Nothing => None,
                        ShownRule::Content => Some(Shown::Content(file.content.clone())),
                        ShownRule::RedactedCopy => {
                            self.redacted.get(&path).cloned().map(Shown::Redacted)
                        }
                    };
                    FileFact::File {
                        ownership: file.ownership.clone(),
                        sha256: sha,
                        shown,
                    }
                }
                None if self.directories.contains_key(&path) => FileFact::Other,
                None => FileFact::Absent,
            };
            facts.files.insert(path, fact);
        }
        for unit in request.units.iter().chain(&record.services) {
            let fact = match self.units.get(unit) {
                Some(state) => ServiceFact {
                    enabled: if state.enabled { "enabled" } else { "disabled" }.to_owned(),
                    active: if state.active { "active" } else { "inactive" }.to_owned(),
                },
                None => ServiceFact {
                    enabled: String::new(),
                    active: "inactive".to_owned(),
                },
            };
            facts.services.insert(unit.clone(), fact);
        }
        facts.firewall.nft_installed = self.packages.keys().any(|p| p.as_str() == "nftables");
        facts.firewall.loaded = self.firewall.clone();
        if let Some((table, file)) = &self.firewall_record {
            facts.firewall.recorded = Some(table.clone());
            facts.firewall.recorded_file = Some(file.clone());
        }
        if request.database.is_some() || !record.accounts.is_empty() || !record.databases.is_empty()
        {
            facts.database = Some(self.database_facts());
        }
        if let Some(files) = &request.certificate {
            for path in files.paths() {
                if let Some(file) = self.files.get(path) {
                    facts.certificate_files.insert(
                        path.clone(),
                        infra_plan::facts::KeyMaterial(file.content.clone()),
                    );
                }
            }
        }
        facts.lock = self.lock.as_ref().map(|holder| LockFact {
            holder: Some(holder.clone()),
            lease: if now > holder.expires {
                Lease::Expired
            } else {
                Lease::Live
            },
        });
        facts
    }

    fn database_up(&self) -> bool {
        self.units
            .get(&infra_plan::paths::unit("mariadb.service"))
            .is_some_and(|u| u.active)
    }

    fn database_facts(&self) -> DatabaseFacts {
        if !self.database_up() {
            return DatabaseFacts::default();
        }
        DatabaseFacts {
            reachable: true,
            databases: self.databases.iter().cloned().collect(),
            users: self.sql_accounts.clone(),
            retained: self.retained_passwords.keys().cloned().collect(),
            database_grants: self
                .grants
                .iter()
                .filter(|(_, g)| matches!(g, Grant::AllOn(_)))
                .map(|(a, _)| a.clone())
                .collect(),
            replication_grants: self
                .grants
                .iter()
                .filter(|(_, g)| matches!(g, Grant::Replication))
                .map(|(a, _)| a.clone())
                .collect(),
            monitor_grants: self
                .grants
                .iter()
                .filter(|(_, g)| matches!(g, Grant::Monitor))
                .map(|(a, _)| a.clone())
                .collect(),
            read_only: None,
            replication: self.replication.clone(),
        }
    }

    /// Runs one step; `Err` stops the job.
    fn step(&mut self, job: &Job<'_>, kind: &StepKind) -> Result<(), Stop> {
        if let Some(fail) = &self.faults.fail_step
            && kind.describe().contains(fail.as_str())
        {
            return Err(Stop::Outcome(StepOutcome::Failed {
                message: format!("injected failure at `{}`", kind.describe()),
            }));
        }
        if let Some(left) = self.faults.die_after_steps {
            if left == 0 {
                return Err(Stop::Died);
            }
            self.faults.die_after_steps = Some(left - 1);
        }
        self.log.push(kind.describe());
        let expect = |host: &FakeHost, path: &RemotePath| -> Result<(), Stop> {
            match job.expected.get(path) {
                None | Some(Expected::Any) => Ok(()),
                Some(expected) if host.state_of(path) == *expected => Ok(()),
                Some(_) => Err(Stop::Outcome(StepOutcome::Stale {
                    detail: format!("{path} changed since the plan was made"),
                })),
            }
        };
        match kind {
            StepKind::BeginRun { lineage, serial } => {
                let record = self.current_record();
                let topology = job.topology;
                let mut compacted = record::HostRecord {
                    topology: Some(topology.clone()),
                    lineage: lineage.clone(),
                    serial: *serial,
                    ..record
                };
                compacted.lineage.clone_from(lineage);
                self.journal = record::format(&compacted);
                self.previous.clear();
            }
            StepKind::InstallPackages { packages } => {
                let names: Vec<&str> = packages.iter().map(PackageName::as_str).collect();
                self.rec(&format!("intent\tinstall\t{}", names.join(" ")));
                let before: BTreeSet<PackageName> = self.packages.keys().cloned().collect();
                let users_before = self.accounts.clone();
                for package in packages {
                    self.install(package);
                }
                for package in self.packages.keys().cloned().collect::<Vec<_>>() {
                    if !before.contains(&package) {
                        self.rec(&format!("+dependency\t{package}"));
                        if packages.contains(&package) {
                            self.rec(&format!("+package\t{package}"));
                        }
                    }
                }
                for user in self.accounts.clone() {
                    if !users_before.contains(&user) {
                        self.rec(&format!("+user\t{user}"));
                        self.rec(&format!("+group\t{user}"));
                    }
                }
                self.rec("done\tinstall");
            }
            StepKind::FinishInterruptedInstall => self.rec("done\tinstall"),
            StepKind::CreateDirectory {
                path,
                owner,
                group,
                mode,
            } => {
                if !self.directories.contains_key(path) {
                    self.rec(&format!("+directory\t{path}"));
                }
                self.directories.insert(
                    path.clone(),
                    Ownership {
                        owner: owner.to_string(),
                        group: group.to_string(),
                        mode: mode.0,
                    },
                );
            }
            StepKind::FixDirectory {
                path,
                owner,
                group,
                mode,
            } => {
                self.directories.insert(
                    path.clone(),
                    Ownership {
                        owner: owner.to_string(),
                        group: group.to_string(),
                        mode: mode.0,
                    },
                );
            }
            StepKind::FixFile {
                path,
                owner,
                group,
                mode,
            } => {
                if let Some(file) = self.files.get_mut(path) {
                    file.ownership = Ownership {
                        owner: owner.to_string(),
                        group: group.to_string(),
                        mode: mode.0,
                    };
                }
            }
            StepKind::StageFile {
                path,
                content,
                owner,
                group,
                mode,
            } => {
                let file = job.contents.get(content).ok_or_else(|| {
                    Stop::Outcome(StepOutcome::Failed {
                        message: format!("the content of {path} is not known to this run"),
                    })
                })?;
                self.staged.insert(
                    path.clone(),
                    FakeFile {
                        content: file.content.clone(),
                        ownership: Ownership {
                            owner: owner.to_string(),
                            group: group.to_string(),
                            mode: mode.0,
                        },
                    },
                );
            }
            StepKind::Check {
                check,
                path,
                target,
            } => {
                let content = match target {
                    CheckTarget::Staged => self.staged.get(path).map(|f| f.content.clone()),
                    CheckTarget::Installed => self.files.get(path).map(|f| f.content.clone()),
                };
                let text = String::from_utf8_lossy(&content.unwrap_or_default()).into_owned();
                if text.contains("no_such_option") {
                    return Err(Stop::Outcome(StepOutcome::Rejected {
                        output: format!("{}: unknown keyword 'no_such_option'", check_name(*check)),
                    }));
                }
            }
            StepKind::CommitFile {
                path,
                content,
                sensitivity,
                backup,
                notify,
            } => {
                expect(self, path)?;
                let staged = self.staged.remove(path).ok_or_else(|| {
                    Stop::Outcome(StepOutcome::Failed {
                        message: format!("nothing is staged for {path}"),
                    })
                })?;
                match backup {
                    Backup::KeepOriginal => self.backup_once(path),
                    Backup::Nothing => {}
                }
                self.keep_previous(path);
                let sha = Sha256::of(&staged.content);
                self.rec(&format!(
                    "+file\t{path}\t{sha}\t{}",
                    sensitivity_word(*sensitivity)
                ));
                if let Some(notify) = notify {
                    self.rec(&format!(
                        "+owed\t{}\t{}",
                        notify.unit,
                        notify.trigger.verb()
                    ));
                }
                match (sensitivity, job.contents.get(content).map(|f| &f.display)) {
                    (Sensitivity::Sensitive, Some(Display::Text(text))) => {
                        self.redacted.insert(path.clone(), text.clone());
                    }
                    (Sensitivity::Sensitive, Some(Display::Binary) | None)
                    | (Sensitivity::Plain, _) => {
                        self.redacted.remove(path);
                    }
                }
                self.files.insert(path.clone(), staged);
            }
            StepKind::RemoveUnwantedFile { path } => {
                expect(self, path)?;
                if self.files.contains_key(path) {
                    self.backup_once(path);
                    self.keep_previous(path);
                    self.rec(&format!("+removed\t{path}"));
                    self.files.remove(path);
                }
            }
            StepKind::RemoveFile { path, restore } => {
                expect(self, path)?;
                self.keep_previous(path);
                match restore {
                    Restore::Original => {
                        if let Some(original) = self.backups.remove(path) {
                            self.files.insert(path.clone(), original);
                        }
                    }
                    Restore::Nothing => {
                        self.files.remove(path);
                    }
                }
                self.redacted.remove(path);
                self.rec(&format!("-file\t{path}"));
                self.rec(&format!("-backup\t{path}"));
            }
            StepKind::RestoreRemovedFile { path } => {
                if let Some(original) = self.backups.remove(path) {
                    self.files.entry(path.clone()).or_insert(original);
                }
                self.rec(&format!("-removed\t{path}"));
                self.rec(&format!("-backup\t{path}"));
            }
            StepKind::RestorePrevious { path } => match self.previous.remove(path) {
                Some(Some(file)) => {
                    self.files.insert(path.clone(), file);
                }
                Some(None) => {
                    self.files.remove(path);
                }
                None => {}
            },
            StepKind::DiscardStaged { path } => {
                self.staged.remove(path);
            }
            StepKind::LoadFirewall => {
                self.rec("+firewall");
                let file = self
                    .files
                    .get(&infra_plan::paths::firewall_nft())
                    .map(|f| Sha256::of(&f.content))
                    .ok_or_else(|| {
                        Stop::Outcome(StepOutcome::Failed {
                            message: "nft -f: no rules file".to_owned(),
                        })
                    })?;
                let table = Sha256::of(format!("table from {file}").as_bytes());
                self.firewall = Some(table.clone());
                self.firewall_record = Some((table, file));
            }
            StepKind::RemoveFirewall => {
                self.firewall = None;
                self.firewall_record = None;
                self.rec("-firewall");
            }
            StepKind::Sql(sql) => self.sql(job, sql)?,
            StepKind::DaemonReload => {}
            StepKind::EnableUnit { unit } => {
                if !self.units.get(unit).is_some_and(|u| u.enabled) {
                    self.rec(&format!("+service\t{unit}"));
                    self.unit(unit).enabled = true;
                }
            }
            StepKind::DisableUnit { unit } => {
                if let Some(state) = self.units.get_mut(unit) {
                    *state = FakeUnit::default();
                }
                self.rec(&format!("-service\t{unit}"));
                self.rec(&format!("-owed\t{unit}"));
            }
            StepKind::StartUnit { unit }
            | StepKind::ReloadUnit { unit }
            | StepKind::RestartUnit { unit } => {
                self.unit(unit).active = true;
                self.rec(&format!("-owed\t{unit}"));
            }
            StepKind::Migrate { migration } => {
                self.migrations.push(migration.command.join(" "));
            }
            StepKind::WaitHealthy { unit, gate, .. } => {
                let broken = self.faults.unhealthy_when.as_ref().is_some_and(|text| {
                    self.files
                        .values()
                        .any(|f| String::from_utf8_lossy(&f.content).contains(text.as_str()))
                });
                if broken || !self.units.get(unit).is_some_and(|u| u.active) {
                    return Err(Stop::Outcome(StepOutcome::Failed {
                        message: format!(
                            "{unit} did not become healthy ({}): no answer",
                            gate.describe()
                        ),
                    }));
                }
            }
            StepKind::RemoveDirectory { path } => {
                let empty = !self.files.keys().any(|f| f.starts_with(path) && f != path)
                    && !self
                        .directories
                        .keys()
                        .any(|d| d.starts_with(path) && d != path);
                if empty {
                    self.directories.remove(path);
                }
                self.rec(&format!("-directory\t{path}"));
            }
            StepKind::PurgePackages {
                packages,
                dependencies,
            } => {
                for package in packages.iter().chain(dependencies) {
                    self.purge(package);
                    self.rec(&format!("-package\t{package}"));
                    self.rec(&format!("-dependency\t{package}"));
                }
            }
            StepKind::RemoveAccounts { users, groups } => {
                for user in users {
                    self.accounts.remove(user.as_str());
                    self.rec(&format!("-user\t{user}"));
                }
                for group in groups {
                    self.rec(&format!("-group\t{group}"));
                }
            }
            StepKind::RestoreShadowBackups => {}
            StepKind::DeleteDatabaseFiles => {
                self.databases.clear();
                self.sql_accounts.clear();
                self.grants.clear();
            }
            StepKind::ForgetRecord => {
                self.journal.clear();
                self.redacted.clear();
                self.previous.clear();
            }
            StepKind::FinishRun => self.previous.clear(),
            StepKind::Forget { entry } => self.rec(&entry.forget_line()),
            StepKind::ImportRecord { record } => {
                let mut imported = (**record).clone();
                let files = std::mem::take(&mut imported.files);
                for line in record::resource_lines(&imported) {
                    self.rec(&line);
                }
                for (path, recorded) in files {
                    if let Some(file) = self.files.get(&path) {
                        let line = format!(
                            "+file\t{path}\t{}\t{}",
                            Sha256::of(&file.content),
                            sensitivity_word(recorded.sensitivity)
                        );
                        self.rec(&line);
                    }
                }
            }
        }
        Ok(())
    }

    fn install(&mut self, package: &PackageName) {
        let brings = catalog(package.as_str());
        self.packages.insert(package.clone(), "1.0".to_owned());
        for dependency in brings.dependencies {
            if let Some(name) = PackageName::new(*dependency) {
                self.packages
                    .entry(name)
                    .or_insert_with(|| "1.0".to_owned());
            }
        }
        if let Some((unit, state)) = brings.unit
            && let Some(unit) = UnitName::new(unit)
        {
            self.units.entry(unit).or_insert(state);
        }
        for (path, content) in brings.files {
            if let Some(path) = RemotePath::new(*path) {
                self.files.entry(path).or_insert(FakeFile {
                    content: content.as_bytes().to_vec(),
                    ownership: root(0o644),
                });
            }
        }
        for user in brings.users {
            self.accounts.insert((*user).to_owned());
        }
    }

    fn purge(&mut self, package: &PackageName) {
        self.packages.remove(package);
        let brings = catalog(package.as_str());
        if let Some((unit, _)) = brings.unit
            && let Some(unit) = UnitName::new(unit)
        {
            self.units.remove(&unit);
        }
        for (path, _) in brings.files {
            if let Some(path) = RemotePath::new(*path) {
                self.files.remove(&path);
            }
        }
    }

    fn sql(&mut self, job: &Job<'_>, sql: &SqlStep) -> Result<(), Stop> {
        let up = self.database_up();
        let down = || {
            Stop::Outcome(StepOutcome::Failed {
                message: "MariaDB is not running".to_owned(),
            })
        };
        let password = |of: &infra_plan::plan::PasswordOf| -> Result<String, Stop> {
            job.passwords
                .get(&of.0)
                .map(|s| infra_plan::plan::mysql_native_password(s.expose()))
                .ok_or_else(|| {
                    Stop::Outcome(StepOutcome::Failed {
                        message: format!("the password of {} is not known to this run", of.0),
                    })
                })
        };
        match sql {
            SqlStep::CreateDatabase { database } => {
                if !up {
                    return Err(down());
                }
                self.rec(&format!("+database\t{database}"));
                self.databases.insert(database.clone());
            }
            SqlStep::DropDatabase { database } => {
                if up {
                    self.databases.remove(database);
                }
                self.rec(&format!("-database\t{database}"));
            }
            SqlStep::CreateAccount {
                account,
                password: of,
            } => {
                if !up {
                    return Err(down());
                }
                let hash = password(of)?;
                self.rec(&format!("+account\t{account}"));
                self.sql_accounts.insert(account.clone(), hash);
            }
            SqlStep::AddPassword {
                account,
                password: of,
            } => {
                if !up {
                    return Err(down());
                }
                let hash = password(of)?;
                if let Some(old) = self.sql_accounts.insert(account.clone(), hash) {
                    self.retained_passwords.insert(account.clone(), old);
                }
            }
            SqlStep::SetPassword {
                account,
                password: of,
            } => {
                if !up {
                    return Err(down());
                }
                let hash = password(of)?;
                self.sql_accounts.insert(account.clone(), hash);
                self.retained_passwords.remove(account);
            }
            SqlStep::Grant { account, grant } => {
                if !up {
                    return Err(down());
                }
                self.grants.insert(account.clone(), grant.clone());
            }
            SqlStep::DropAccount { account } => {
                if up {
                    self.sql_accounts.remove(account);
                    self.grants.remove(account);
                }
                self.rec(&format!("-account\t{account}"));
            }
            SqlStep::DropCopiedAccount { account } => {
                if up {
                    self.sql_accounts.remove(account);
                    self.grants.remove(account);
                }
            }
            SqlStep::Replicate {
                source,
                port,
                user,
                password: of,
                ..
            } => {
                if !up {
                    return Err(down());
                }
                password(of)?;
                self.rec("+replication");
                self.replication = Some(ReplicationFact {
                    source_host: source.to_string(),
                    source_port: port.to_string(),
                    user: user.to_string(),
                    io_running: "Yes".to_owned(),
                    sql_running: "Yes".to_owned(),
                    using_gtid: "Slave_Pos".to_owned(),
                });
            }
            SqlStep::StopReplication => {
                self.replication = None;
                self.rec("-replication");
            }
        }
        Ok(())
    }
}

fn check_name(check: Check) -> &'static str {
    check.command()
}

/// A fleet of fake hosts, and a clock for their locks' leases.
#[derive(Debug, Clone, Default)]
pub struct FakeFleet {
    hosts: Arc<Mutex<BTreeMap<HostName, FakeHost>>>,
    clock: Arc<AtomicU64>,
    /// Every step run on any host, in order: `host: step`.
    log: Arc<Mutex<Vec<String>>>,
    /// Hosts with a task under way now (package installs, which run everywhere at once, are
    /// not counted).
    in_flight: Arc<Mutex<BTreeSet<HostName>>>,
    /// Every set of hosts that had tasks under way at the same time.
    overlaps: Arc<Mutex<Vec<BTreeSet<HostName>>>>,
}

impl FakeFleet {
    /// A fleet of fresh hosts.
    pub fn new(hosts: impl IntoIterator<Item = HostName>) -> FakeFleet {
        let fleet = FakeFleet::default();
        if let Ok(mut map) = fleet.hosts.lock() {
            for host in hosts {
                map.insert(host, FakeHost::default());
            }
        }
        fleet.clock.store(1_800_000_000, Ordering::SeqCst);
        fleet
    }

    /// Changes one host.
    pub fn with_host<T>(
        &self,
        host: &HostName,
        change: impl FnOnce(&mut FakeHost) -> T,
    ) -> Option<T> {
        let mut hosts = self.hosts.lock().ok()?;
        hosts.get_mut(host).map(change)
    }

    /// Every step run so far, in order (`host: step`).
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Forgets the log.
    pub fn clear_log(&self) {
        if let Ok(mut log) = self.log.lock() {
            log.clear();
        }
    }

    /// Every set of two or more hosts that had tasks under way at the same moment.
    pub fn overlaps(&self) -> Vec<BTreeSet<HostName>> {
        self.overlaps.lock().map(|o| o.clone()).unwrap_or_default()
    }

    fn enter(&self, host: &HostName) {
        if let (Ok(mut in_flight), Ok(mut overlaps)) = (self.in_flight.lock(), self.overlaps.lock())
        {
            in_flight.insert(host.clone());
            if in_flight.len() > 1 {
                overlaps.push(in_flight.clone());
            }
        }
    }

    fn leave(&self, host: &HostName) {
        if let Ok(mut in_flight) = self.in_flight.lock() {
            in_flight.remove(host);
        }
    }

    /// Moves the fleet's clock on (for lease expiry).
    pub fn advance(&self, seconds: u64) {
        self.clock.fetch_add(seconds, Ordering::SeqCst);
    }

    fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }
}

impl Connector for FakeFleet {
    fn connect<'a>(
        &'a self,
        host: &'a Host,
    ) -> BoxFuture<'a, Result<Arc<dyn Transport>, HostError>> {
        Box::pin(async move {
            let known = self
                .with_host(&host.name, |h| !h.faults.unreachable)
                .unwrap_or(false);
            if !known {
                return Err(HostError::Transport {
                    message: format!(
                        "cannot reach `{}` ({}): no route to host",
                        host.name, host.address
                    ),
                    hint: Some(
                        "check the address, that sshd runs, and any `ssh.jump` host".to_owned(),
                    ),
                });
            }
            let transport: Arc<dyn Transport> = Arc::new(FakeTransport {
                host: host.name.clone(),
                fleet: self.clone(),
                round_trips: AtomicUsize::new(0),
            });
            Ok(transport)
        })
    }
}

/// One connection to a fake host.
pub struct FakeTransport {
    host: HostName,
    fleet: FakeFleet,
    round_trips: AtomicUsize,
}

impl FakeTransport {
    fn lost(&self) -> HostError {
        HostError::Transport {
            message: format!("on `{}`: the connection was lost", self.host),
            hint: None,
        }
    }
}

impl Transport for FakeTransport {
    fn host(&self) -> &HostName {
        &self.host
    }

    fn gather<'a>(
        &'a self,
        request: &'a GatherRequest,
    ) -> BoxFuture<'a, Result<HostFacts, HostError>> {
        self.round_trips.fetch_add(1, Ordering::SeqCst);
        let now = self.fleet.now();
        let facts = self.fleet.with_host(&self.host, |h| {
            (!h.faults.unreachable).then(|| h.gather(request, now))
        });
        let result = facts.flatten().ok_or_else(|| self.lost());
        Box::pin(async move { result })
    }

    fn run<'a>(&'a self, job: &'a Job<'a>) -> BoxFuture<'a, Result<JobReport, HostError>> {
        Box::pin(async move {
            self.round_trips.fetch_add(1, Ordering::SeqCst);
            // A round trip takes time: other tasks may run meanwhile, as they would over SSH.
            let installs = job
                .steps
                .iter()
                .any(|s| matches!(s.kind, StepKind::InstallPackages { .. }));
            if !installs {
                self.fleet.enter(&self.host);
            }
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            let result = self.run_now(job);
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            if !installs {
                self.fleet.leave(&self.host);
            }
            result
        })
    }

    fn lock<'a>(
        &'a self,
        request: &'a LockRequest,
    ) -> BoxFuture<'a, Result<LockAnswer, HostError>> {
        let result = self.lock_now(request);
        Box::pin(async move { result })
    }

    fn round_trips(&self) -> usize {
        self.round_trips.load(Ordering::SeqCst)
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

impl FakeTransport {
    fn run_now(&self, job: &Job<'_>) -> Result<JobReport, HostError> {
        let result = self
            .fleet
            .with_host(&self.host, |h| {
                if h.faults.unreachable {
                    return Err(());
                }
                if h.lock.as_ref().map(|l| &l.id) != Some(job.lock) {
                    return Ok(JobReport {
                        outcomes: vec![StepOutcome::LockLost],
                    });
                }
                let mut outcomes = Vec::new();
                for step in job.steps {
                    match h.step(job, &step.kind) {
                        Ok(()) => outcomes.push(StepOutcome::Done),
                        Err(Stop::Outcome(outcome)) => {
                            outcomes.push(outcome);
                            break;
                        }
                        Err(Stop::Died) => {
                            h.faults.unreachable = true;
                            return Err(());
                        }
                    }
                }
                Ok(JobReport { outcomes })
            })
            .unwrap_or(Err(()));
        if let Ok(report) = &result {
            let done = report
                .outcomes
                .iter()
                .filter(|o| **o == StepOutcome::Done)
                .count();
            if let Ok(mut log) = self.fleet.log.lock() {
                for step in job.steps.iter().take(done) {
                    log.push(format!("{}: {}", self.host, step.kind.describe()));
                }
            }
        }
        result.map_err(|()| self.lost())
    }

    fn lock_now(&self, request: &LockRequest) -> Result<LockAnswer, HostError> {
        self.round_trips.fetch_add(1, Ordering::SeqCst);
        let now = self.fleet.now();
        let fact = |holder: &LockHolder| LockFact {
            holder: Some(holder.clone()),
            lease: if now > holder.expires {
                Lease::Expired
            } else {
                Lease::Live
            },
        };
        let answer = self.fleet.with_host(&self.host, |h| {
            if h.faults.unreachable {
                return None;
            }
            Some(match request {
                LockRequest::Acquire {
                    holder,
                    lease,
                    serial,
                    ..
                } => match &h.lock {
                    Some(other) => LockAnswer::Held(fact(other)),
                    None => {
                        let now_serial = h.current_record_serial();
                        if serial.is_some_and(|s| s != now_serial) {
                            LockAnswer::SerialMoved { now: now_serial }
                        } else {
                            h.lock = Some(LockHolder {
                                since: now,
                                expires: now + lease,
                                ..holder.clone()
                            });
                            LockAnswer::Acquired
                        }
                    }
                },
                LockRequest::Renew { id, lease } => match &mut h.lock {
                    Some(held) if &held.id == id => {
                        held.expires = now + lease;
                        LockAnswer::Acquired
                    }
                    Some(other) => LockAnswer::NotHolder(Some(fact(other))),
                    None => LockAnswer::NotHolder(None),
                },
                LockRequest::Release { id } => match &h.lock {
                    Some(held) if &held.id == id => {
                        h.lock = None;
                        LockAnswer::Released
                    }
                    Some(other) => LockAnswer::NotHolder(Some(fact(other))),
                    None => LockAnswer::NotHolder(None),
                },
            })
        });
        answer.flatten().ok_or_else(|| self.lost())
    }
}

impl FakeHost {
    fn current_record_serial(&self) -> Option<u64> {
        record::parse(&self.journal)
            .ok()
            .flatten()
            .map(|r| r.serial)
    }
}
