//! The steps of a plan: everything `apply` does on a host, decided here and only here.
//!
//! Each step says what it changes, what it expects to find (a file's state when the plan was
//! made), what undoes it where something can, and why it runs (shown in the plan). The
//! executor turns a host's steps into one script (or fake-host calls) and reports a typed
//! outcome per step; it never decides whether a step is needed.

use std::net::IpAddr;

use infra_topology::{AccountName, PackageName, RemotePath, SqlAccount, SqlName, UnitName};
use serde::{Deserialize, Serialize};

use crate::desired::{Check, CheckTarget, Grant, Mode, Notify, Sensitivity};
use crate::hash::Fingerprint;

/// One step on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// What it does.
    pub kind: StepKind,
    /// Why it runs, when that is worth saying (`changed: /etc/haproxy/haproxy.cfg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What it expects to find; a host that no longer matches stops the step (stale plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expects: Option<Precondition>,
    /// What undoes it when a later step of the same task fails (a validator's rejection, a
    /// failed reload): run after the failure, files first, then services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<StepKind>,
}

impl Step {
    /// A step with no precondition, no undo and no reason.
    pub fn new(kind: StepKind) -> Step {
        Step {
            kind,
            reason: None,
            expects: None,
            undo: None,
        }
    }

    /// The same step with a reason.
    pub fn because(mut self, reason: impl Into<String>) -> Step {
        self.reason = Some(reason.into());
        self
    }

    /// The same step with a precondition.
    pub fn expecting(mut self, precondition: Precondition) -> Step {
        self.expects = Some(precondition);
        self
    }

    /// The same step with an undo.
    pub fn undone_by(mut self, undo: StepKind) -> Step {
        self.undo = Some(undo);
        self
    }
}

/// What a step does. Every kind is handled by every executor (no wildcard arms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepKind {
    /// Opens the host's record for this run: writes it anew (compacted) with the next serial.
    BeginRun {
        /// The record's lineage (kept, or new for a host without a record).
        lineage: String,
        /// The serial this run gives the record.
        serial: u64,
    },
    /// `apt-get install` of packages that are missing; records them, the dependencies they
    /// brought and the system users and groups they created.
    InstallPackages {
        /// The packages.
        packages: Vec<PackageName>,
    },
    /// Records what a package install that was interrupted (a killed run) brought.
    FinishInterruptedInstall,
    /// Creates a folder (recorded: destroy removes it when empty).
    CreateDirectory {
        /// The folder.
        path: RemotePath,
        /// Owner.
        owner: AccountName,
        /// Group.
        group: AccountName,
        /// Mode.
        mode: Mode,
    },
    /// Sets a folder's owner, group and mode.
    FixDirectory {
        /// The folder.
        path: RemotePath,
        /// Owner.
        owner: AccountName,
        /// Group.
        group: AccountName,
        /// Mode.
        mode: Mode,
    },
    /// Writes a file's new content beside it (a hidden temporary file created with its final
    /// owner and mode before any byte is written), and checks its hash.
    StageFile {
        /// The file.
        path: RemotePath,
        /// Its content.
        content: ContentId,
        /// Owner.
        owner: AccountName,
        /// Group.
        group: AccountName,
        /// Mode.
        mode: Mode,
    },
    /// Runs a file's checker; a rejection is this step's outcome, with the checker's output.
    Check {
        /// The checker.
        check: Check,
        /// The file it is about.
        path: RemotePath,
        /// Whether it reads the staged file or the installed tree.
        target: CheckTarget,
    },
    /// Renames a staged file into place (atomically), keeping the previous content until the
    /// run ends; records the file (and the reload it owes) before the rename.
    CommitFile {
        /// The file.
        path: RemotePath,
        /// Its content.
        content: ContentId,
        /// Whether it holds a secret (then a redacted copy is kept beside the record).
        sensitivity: Sensitivity,
        /// Whether the file there now predates `infra` and is kept for destroy.
        backup: Backup,
        /// The service the change owes a reload or restart to.
        notify: Option<Notify>,
    },
    /// Sets a file's owner, group and mode (its content is already right).
    FixFile {
        /// The file.
        path: RemotePath,
        /// Owner.
        owner: AccountName,
        /// Group.
        group: AccountName,
        /// Mode.
        mode: Mode,
    },
    /// Removes a file that must not exist (Debian's default Nginx site), keeping it for
    /// destroy to put back.
    RemoveUnwantedFile {
        /// The file.
        path: RemotePath,
    },
    /// Removes a file `infra` wrote and no longer wants, putting back the original it replaced.
    RemoveFile {
        /// The file.
        path: RemotePath,
        /// Whether an original is put back.
        restore: Restore,
    },
    /// Puts back a file `infra` removed (from its backup).
    RestoreRemovedFile {
        /// The file.
        path: RemotePath,
    },
    /// Undo: puts back the content a file had before this run changed or removed it (or
    /// removes it when it did not exist).
    RestorePrevious {
        /// The file.
        path: RemotePath,
    },
    /// Undo: removes a staged file.
    DiscardStaged {
        /// The file it was staged for.
        path: RemotePath,
    },
    /// Loads `infra`'s table atomically with `nft -f` and records its hash.
    LoadFirewall,
    /// Deletes `infra`'s table (and no other).
    RemoveFirewall,
    /// A database change.
    Sql(SqlStep),
    /// `systemctl daemon-reload`, after unit files changed.
    DaemonReload,
    /// Enables a unit (recorded: destroy disables it).
    EnableUnit {
        /// The unit.
        unit: UnitName,
    },
    /// Stops and disables a unit `infra` enabled and no longer wants.
    DisableUnit {
        /// The unit.
        unit: UnitName,
    },
    /// Starts a unit that is not running.
    StartUnit {
        /// The unit.
        unit: UnitName,
    },
    /// Reloads a unit (starts it if it is not running); settles what it was owed.
    ReloadUnit {
        /// The unit.
        unit: UnitName,
    },
    /// Restarts a unit; settles what it was owed.
    RestartUnit {
        /// The unit.
        unit: UnitName,
    },
    /// Runs the app's migration once, as the app runs, with the new release's files and
    /// environment in place and before its unit restarts; a failure is the step's (the task is
    /// undone: the host keeps the old release, and so does every later host).
    Migrate {
        /// What to run and how.
        migration: crate::desired::Migration,
    },
    /// Waits until the host passes the service's health check, checking again until the time
    /// limit; a host that does not is this step's failure (and its task is undone).
    WaitHealthy {
        /// The unit the check is about.
        unit: UnitName,
        /// The check.
        gate: crate::desired::HealthGate,
        /// How long to keep trying.
        timeout_seconds: u32,
    },
    /// Removes a folder `infra` created, if it is empty.
    RemoveDirectory {
        /// The folder.
        path: RemotePath,
    },
    /// Purges packages `infra` installed, then the dependencies they brought that nothing
    /// needs any more (`dpkg --purge` refuses to remove a needed one).
    PurgePackages {
        /// The packages.
        packages: Vec<PackageName>,
        /// Their dependencies, tried after them.
        dependencies: Vec<PackageName>,
    },
    /// Removes the system users and groups the purged packages had created.
    RemoveAccounts {
        /// Users.
        users: Vec<AccountName>,
        /// Groups.
        groups: Vec<AccountName>,
    },
    /// Puts back the shadow tools' backups (`/etc/passwd-`...) kept before the first install.
    RestoreShadowBackups,
    /// Removes MariaDB's data, its binary logs and `/etc/mysql` (`destroy --delete-data`).
    DeleteDatabaseFiles,
    /// Removes the host's record and `infra`'s folders (destroy, when nothing is left).
    ForgetRecord,
    /// Ends the host's run: drops the previous contents kept for undo.
    FinishRun,
    /// Moves an earlier version's local record of the host to the host (once); each file's
    /// hash is taken on the host as it is now.
    ImportRecord {
        /// What the local record held.
        record: Box<crate::record::HostRecord>,
    },
    /// Forgets one resource of the record (`infra state rm`); nothing on the host changes.
    Forget {
        /// The resource.
        entry: crate::record::RecordEntry,
    },
}

/// A database change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "sql", rename_all = "snake_case")]
pub enum SqlStep {
    /// `CREATE DATABASE` (recorded).
    CreateDatabase {
        /// The database.
        database: SqlName,
    },
    /// `DROP DATABASE`.
    DropDatabase {
        /// The database.
        database: SqlName,
    },
    /// `CREATE USER ... IDENTIFIED BY` (recorded).
    CreateAccount {
        /// The account.
        account: SqlAccount,
        /// Whose password (resolved from the topology's secrets when the step runs).
        password: PasswordOf,
    },
    /// `ALTER USER ... IDENTIFIED VIA` the new password `OR` the current one: both work
    /// until [`SqlStep::SetPassword`] retires the old one, once every app host uses the new.
    AddPassword {
        /// The account.
        account: SqlAccount,
        /// Whose password.
        password: PasswordOf,
    },
    /// `ALTER USER ... IDENTIFIED BY`: the password, and only it.
    SetPassword {
        /// The account.
        account: SqlAccount,
        /// Whose password.
        password: PasswordOf,
    },
    /// `GRANT`.
    Grant {
        /// The account.
        account: SqlAccount,
        /// What it may do.
        grant: Grant,
    },
    /// `DROP USER`.
    DropAccount {
        /// The account.
        account: SqlAccount,
    },
    /// `DROP USER` on this server only, kept out of its binary log: a replica's copy of an
    /// account the primary created, where destroy keeps the replica's data (the primary's own
    /// drop may not reach a replica that is already gone).
    DropCopiedAccount {
        /// The account.
        account: SqlAccount,
    },
    /// Replicate from the primary by GTID (recorded).
    Replicate {
        /// The primary's address.
        source: IpAddr,
        /// Its port.
        port: u16,
        /// The replication account's name.
        user: SqlName,
        /// Whose password.
        password: PasswordOf,
        /// Whether the primary offers TLS (MariaDB 11.8, Debian 13), so the replica keeps its
        /// default. Otherwise (MariaDB 10.11, Debian 12, or a primary not read) the replica is
        /// told `MASTER_SSL=0`: an 11.8 replica would demand TLS a 10.11 primary does not offer.
        #[serde(default)]
        primary_tls: bool,
    },
    /// Stop replicating and forget the primary.
    StopReplication,
}

/// Whose password a SQL step uses: a database user of the topology. The password itself never
/// is in a plan; the executor takes it from the topology's secrets when it runs the step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordOf(pub SqlName);

/// The content of a file, by its identity: the SHA-256 of plain content, a keyed fingerprint of
/// sensitive content. The bytes come from the desired state when the step runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContentId(pub Fingerprint);

/// Whether a file that is there now is kept for destroy before `infra` replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backup {
    /// It predates `infra`: keep it under `/var/lib/infra/backup/`.
    KeepOriginal,
    /// It is `infra`'s, or nothing is there.
    Nothing,
}

/// What happens when `infra` removes a file it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Restore {
    /// The file it replaced is put back.
    Original,
    /// Nothing was there before: the file is just removed.
    Nothing,
}

/// What a step expects to find when it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "of", rename_all = "snake_case")]
pub enum Precondition {
    /// The file at the step's path is in this state.
    File {
        /// Its state when the plan was made.
        state: FileState,
    },
}

/// A file's state, as a precondition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "is", content = "fingerprint", rename_all = "snake_case")]
pub enum FileState {
    /// Nothing is there.
    Absent,
    /// Something that is not a regular file.
    Other,
    /// A regular file with this content (SHA-256 of plain content, keyed fingerprint of a
    /// sensitive file's).
    Content(Fingerprint),
    /// Whatever is there (a file a package installs in the same run).
    Any,
}

/// When an undo runs, relative to the others: files are put back first (newest first), then
/// services are reloaded or restarted on them (in their original order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum UndoPhase {
    /// Putting files back.
    Files,
    /// Making services read them again.
    Services,
}

impl StepKind {
    /// When this step runs as an undo.
    pub fn undo_phase(&self) -> UndoPhase {
        match self {
            StepKind::RestorePrevious { .. } | StepKind::DiscardStaged { .. } => UndoPhase::Files,
            StepKind::BeginRun { .. }
            | StepKind::InstallPackages { .. }
            | StepKind::FinishInterruptedInstall
            | StepKind::CreateDirectory { .. }
            | StepKind::FixDirectory { .. }
            | StepKind::StageFile { .. }
            | StepKind::Check { .. }
            | StepKind::CommitFile { .. }
            | StepKind::FixFile { .. }
            | StepKind::RemoveUnwantedFile { .. }
            | StepKind::RemoveFile { .. }
            | StepKind::RestoreRemovedFile { .. }
            | StepKind::LoadFirewall
            | StepKind::RemoveFirewall
            | StepKind::Sql(_)
            | StepKind::DaemonReload
            | StepKind::EnableUnit { .. }
            | StepKind::DisableUnit { .. }
            | StepKind::StartUnit { .. }
            | StepKind::ReloadUnit { .. }
            | StepKind::RestartUnit { .. }
            | StepKind::Migrate { .. }
            | StepKind::WaitHealthy { .. }
            | StepKind::RemoveDirectory { .. }
            | StepKind::PurgePackages { .. }
            | StepKind::RemoveAccounts { .. }
            | StepKind::RestoreShadowBackups
            | StepKind::DeleteDatabaseFiles
            | StepKind::ForgetRecord
            | StepKind::FinishRun
            | StepKind::ImportRecord { .. }
            | StepKind::Forget { .. } => UndoPhase::Services,
        }
    }

    /// The content a step writes (staging or committing a file).
    pub fn content(&self) -> Option<&ContentId> {
        match self {
            StepKind::StageFile { content, .. } | StepKind::CommitFile { content, .. } => {
                Some(content)
            }
            StepKind::BeginRun { .. }
            | StepKind::InstallPackages { .. }
            | StepKind::FinishInterruptedInstall
            | StepKind::CreateDirectory { .. }
            | StepKind::FixDirectory { .. }
            | StepKind::Check { .. }
            | StepKind::FixFile { .. }
            | StepKind::RemoveUnwantedFile { .. }
            | StepKind::RemoveFile { .. }
            | StepKind::RestoreRemovedFile { .. }
            | StepKind::RestorePrevious { .. }
            | StepKind::DiscardStaged { .. }
            | StepKind::LoadFirewall
            | StepKind::RemoveFirewall
            | StepKind::Sql(_)
            | StepKind::DaemonReload
            | StepKind::EnableUnit { .. }
            | StepKind::DisableUnit { .. }
            | StepKind::StartUnit { .. }
            | StepKind::ReloadUnit { .. }
            | StepKind::RestartUnit { .. }
            | StepKind::Migrate { .. }
            | StepKind::WaitHealthy { .. }
            | StepKind::RemoveDirectory { .. }
            | StepKind::PurgePackages { .. }
            | StepKind::RemoveAccounts { .. }
            | StepKind::RestoreShadowBackups
            | StepKind::DeleteDatabaseFiles
            | StepKind::ForgetRecord
            | StepKind::FinishRun
            | StepKind::ImportRecord { .. }
            | StepKind::Forget { .. } => None,
        }
    }

    /// The file whose state a step's precondition is about.
    pub fn precondition_path(&self) -> Option<&RemotePath> {
        match self {
            StepKind::CommitFile { path, .. }
            | StepKind::RemoveFile { path, .. }
            | StepKind::RemoveUnwantedFile { path } => Some(path),
            StepKind::BeginRun { .. }
            | StepKind::InstallPackages { .. }
            | StepKind::FinishInterruptedInstall
            | StepKind::CreateDirectory { .. }
            | StepKind::FixDirectory { .. }
            | StepKind::StageFile { .. }
            | StepKind::Check { .. }
            | StepKind::FixFile { .. }
            | StepKind::RestoreRemovedFile { .. }
            | StepKind::RestorePrevious { .. }
            | StepKind::DiscardStaged { .. }
            | StepKind::LoadFirewall
            | StepKind::RemoveFirewall
            | StepKind::Sql(_)
            | StepKind::DaemonReload
            | StepKind::EnableUnit { .. }
            | StepKind::DisableUnit { .. }
            | StepKind::StartUnit { .. }
            | StepKind::ReloadUnit { .. }
            | StepKind::RestartUnit { .. }
            | StepKind::Migrate { .. }
            | StepKind::WaitHealthy { .. }
            | StepKind::RemoveDirectory { .. }
            | StepKind::PurgePackages { .. }
            | StepKind::RemoveAccounts { .. }
            | StepKind::RestoreShadowBackups
            | StepKind::DeleteDatabaseFiles
            | StepKind::ForgetRecord
            | StepKind::FinishRun
            | StepKind::ImportRecord { .. }
            | StepKind::Forget { .. } => None,
        }
    }

    /// The unit this step reloads or restarts, and which of the two.
    pub fn service_action(&self) -> Option<(&UnitName, crate::desired::Trigger)> {
        if let StepKind::ReloadUnit { unit } = self {
            Some((unit, crate::desired::Trigger::Reload))
        } else if let StepKind::RestartUnit { unit } = self {
            Some((unit, crate::desired::Trigger::Restart))
        } else {
            None
        }
    }

    /// Whether the step is bookkeeping only (opening or closing a run) rather than a change.
    pub fn is_bookkeeping(&self) -> bool {
        matches!(self, StepKind::BeginRun { .. } | StepKind::FinishRun)
    }

    /// Whether the step changes what the host runs or serves. Opening the record, staging a
    /// file beside its target, checking it and waiting for health do not; nor does the app's
    /// migration (it changes the data, which the release still running must keep using).
    pub fn changes_host(&self) -> bool {
        !self.is_bookkeeping()
            && !matches!(
                self,
                StepKind::StageFile { .. }
                    | StepKind::Check { .. }
                    | StepKind::WaitHealthy { .. }
                    | StepKind::Migrate { .. }
            )
    }

    /// A short description, for progress lines and errors.
    pub fn describe(&self) -> String {
        match self {
            StepKind::BeginRun { serial, .. } => format!("open the record (serial {serial})"),
            StepKind::InstallPackages { packages } => format!("install {}", names(packages)),
            StepKind::FinishInterruptedInstall => "record an interrupted install".to_owned(),
            StepKind::CreateDirectory { path, .. } => format!("create {path}"),
            StepKind::FixDirectory { path, .. } => format!("fix owner and mode of {path}"),
            StepKind::StageFile { path, .. } => format!("stage {path}"),
            StepKind::Check { check, path, .. } => {
                format!("check {path} with `{}`", check.command())
            }
            StepKind::CommitFile { path, .. } => format!("write {path}"),
            StepKind::FixFile { path, .. } => format!("fix owner and mode of {path}"),
            StepKind::RemoveUnwantedFile { path } => format!("remove {path}"),
            StepKind::RemoveFile { path, restore } => match restore {
                Restore::Original => format!("put back the original {path}"),
                Restore::Nothing => format!("remove {path}"),
            },
            StepKind::RestoreRemovedFile { path } => format!("put back {path}"),
            StepKind::RestorePrevious { path } => format!("put back the previous {path}"),
            StepKind::DiscardStaged { path } => format!("discard the staged {path}"),
            StepKind::LoadFirewall => "load the firewall".to_owned(),
            StepKind::RemoveFirewall => "remove the firewall table".to_owned(),
            StepKind::Sql(sql) => sql.describe(),
            StepKind::DaemonReload => "systemctl daemon-reload".to_owned(),
            StepKind::EnableUnit { unit } => format!("enable {unit}"),
            StepKind::DisableUnit { unit } => format!("stop and disable {unit}"),
            StepKind::StartUnit { unit } => format!("start {unit}"),
            StepKind::ReloadUnit { unit } => format!("reload {unit}"),
            StepKind::RestartUnit { unit } => format!("restart {unit}"),
            StepKind::Migrate { migration } => {
                format!("migrate: {}", migration.command.join(" "))
            }
            StepKind::WaitHealthy {
                unit,
                gate,
                timeout_seconds,
            } => format!(
                "wait until {unit} is healthy ({}, up to {timeout_seconds} s)",
                gate.describe()
            ),
            StepKind::RemoveDirectory { path } => format!("remove {path}"),
            StepKind::PurgePackages { packages, .. } => format!("purge {}", names(packages)),
            StepKind::RemoveAccounts { .. } => "remove the packages' system accounts".to_owned(),
            StepKind::RestoreShadowBackups => "put back the shadow backups".to_owned(),
            StepKind::DeleteDatabaseFiles => "delete MariaDB's data".to_owned(),
            StepKind::ForgetRecord => "remove the record".to_owned(),
            StepKind::FinishRun => "finish".to_owned(),
            StepKind::ImportRecord { .. } => "move the local record to the host".to_owned(),
            StepKind::Forget { entry } => format!(
                "forget {}",
                entry
                    .forget_line()
                    .trim_start_matches('-')
                    .replace('\t', " ")
            ),
        }
    }
}

impl SqlStep {
    /// A short description.
    pub fn describe(&self) -> String {
        match self {
            SqlStep::CreateDatabase { database } => format!("create database {database}"),
            SqlStep::DropDatabase { database } => format!("drop database {database}"),
            SqlStep::CreateAccount { account, .. } => format!("create account {account}"),
            SqlStep::AddPassword { account, .. } => {
                format!("add the new password of {account} beside the current one")
            }
            SqlStep::SetPassword { account, .. } => format!("set the password of {account}"),
            SqlStep::Grant { account, grant } => format!("grant {grant} to {account}"),
            SqlStep::DropAccount { account } => format!("drop account {account}"),
            SqlStep::DropCopiedAccount { account } => {
                format!("drop this replica's copy of account {account}")
            }
            SqlStep::Replicate { source, port, .. } => format!("replicate from {source}:{port}"),
            SqlStep::StopReplication => "stop replication".to_owned(),
        }
    }
}

fn names(packages: &[PackageName]) -> String {
    packages
        .iter()
        .map(PackageName::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}
