//! The one diff: a host's desired state against its facts (what is there, and what `infra`'s
//! record says it made), for apply and for destroy alike. Destroy is the same function with
//! every host's desired state "absent": whatever the record holds that is no longer wanted is
//! removed, in apply (a renamed app's old unit) as in destroy (everything).

mod database;

pub use database::mysql_native_password;
mod files;
mod packages;
mod services;

use std::collections::BTreeMap;

use infra_topology::{HostName, UnitName};

use super::change::Changes;
use super::order::TierOrder;
use super::{
    ContentId, Expectation, FORMAT_VERSION, HostPlan, Plan, PlanMode, Step, StepKind, Task,
    Unreachable, Wave,
};
use crate::desired::RestartEffect;
use crate::desired::{DesiredState, HostState, ManagedFile, Sensitivity, Trigger};
use crate::facts::HostFacts;
use crate::hash::{Fingerprint, Fingerprinter};
use crate::record::HostRecord;

/// Everything a plan is made from.
pub struct PlanInput<'a> {
    /// Apply or destroy.
    pub mode: PlanMode,
    /// The topology's desired state (destroy plans from its hosts, each wanting nothing).
    pub desired: &'a DesiredState,
    /// The facts of every host that answered.
    pub facts: &'a [(HostName, HostFacts)],
    /// The hosts that did not.
    pub unreachable: Vec<Unreachable>,
    /// The tier order.
    pub order: &'a TierOrder,
    /// Fingerprints for anything that could reveal a secret.
    pub fingerprinter: &'a Fingerprinter,
    /// The lineage given to a record this run creates.
    pub new_lineage: String,
    /// Records an earlier version kept in `.infra/state.json`, for hosts without a record of
    /// their own: planned from, and moved to the hosts.
    pub local_records: &'a BTreeMap<HostName, HostRecord>,
}

/// The content identity of a file: its SHA-256 when it holds no secret, a keyed fingerprint
/// of its bytes when it does.
pub fn content_id(fingerprinter: &Fingerprinter, file: &ManagedFile) -> ContentId {
    match file.sensitivity {
        Sensitivity::Plain => ContentId(Fingerprint::from(&file.sha256)),
        Sensitivity::Sensitive => ContentId(fingerprinter.full(&file.content)),
    }
}

/// Makes the plan.
pub fn make(input: PlanInput<'_>) -> Plan {
    let absent;
    let desired = match input.mode {
        PlanMode::Apply => input.desired,
        PlanMode::Destroy(_) => {
            absent = input.desired.absent();
            &absent
        }
    };
    let mut hosts = Vec::new();
    let mut package_tasks: Vec<Task> = Vec::new();
    let mut main_tasks: BTreeMap<HostName, Vec<Step>> = BTreeMap::new();
    let mut retire_tasks: BTreeMap<HostName, Vec<Step>> = BTreeMap::new();
    for state in &desired.hosts {
        let Some((_, facts)) = input.facts.iter().find(|(name, _)| name == &state.name) else {
            continue;
        };
        let mut diff = HostDiff::new(&input, state, facts);
        diff.run();
        let HostDiff {
            changes,
            packages,
            notes,
            ..
        } = &diff;
        let main = diff.main_steps();
        let [mut packages, mut main, retire] =
            bracket(&input, facts, [packages.clone(), main, diff.retire.clone()]);
        if let Some(local) = diff.imported() {
            let import = Step::new(StepKind::ImportRecord {
                record: Box::new(local),
            });
            match (packages.is_empty(), main.is_empty()) {
                (false, _) => packages.insert(1, import),
                (true, false) => main.insert(1, import),
                (true, true) => {
                    main = vec![import, Step::new(StepKind::FinishRun)];
                    let (lineage, serial) = (input.new_lineage.clone(), 1);
                    main.insert(0, Step::new(StepKind::BeginRun { lineage, serial }));
                }
            }
        }
        if !packages.is_empty() {
            package_tasks.push(Task {
                host: state.name.clone(),
                steps: packages,
            });
        }
        if !main.is_empty() {
            main_tasks.insert(state.name.clone(), main);
        }
        if !retire.is_empty() {
            retire_tasks.insert(state.name.clone(), retire);
        }
        hosts.push(HostPlan {
            host: state.name.clone(),
            expects: Expectation {
                facts: input.fingerprinter.of_json(&facts.state_only()),
                serial: facts.record.as_ref().map(|r| r.serial),
            },
            changes: changes.list.clone(),
            notes: notes.clone(),
        });
    }
    let mut waves = Vec::new();
    if !package_tasks.is_empty() {
        waves.push(Wave {
            label: "packages".to_owned(),
            concurrency: super::Concurrency::Parallel,
            tasks: package_tasks,
            unreachable: Vec::new(),
        });
    }
    let mut migrated = false;
    for group in input.order.groups(input.mode) {
        let source = match group.part {
            super::order::Part::Main => &mut main_tasks,
            super::order::Part::RetirePasswords => &mut retire_tasks,
        };
        let mut tasks: Vec<Task> = group
            .hosts
            .iter()
            .filter_map(|host| {
                source.remove(host).map(|steps| Task {
                    host: host.clone(),
                    steps,
                })
            })
            .collect();
        let unreachable: Vec<HostName> = group
            .hosts
            .iter()
            .filter(|_| group.part == super::order::Part::Main)
            .filter(|host| input.unreachable.iter().any(|u| &u.host == *host))
            .cloned()
            .collect();
        // The host that migrates goes alone, in a wave of its own before the others (which
        // would otherwise start the new release beside it, or go on after it failed).
        if !migrated && let Some((index, command)) = insert_migration(desired, &mut tasks) {
            migrated = true;
            let task = tasks.remove(index);
            if let Some(plan) = hosts.iter_mut().find(|h| h.host == task.host) {
                plan.notes.push(format!(
                    "the app's migration `{command}` runs here with the new release, before any other app host changes"
                ));
            }
            // One host, within what the tier may have out of service (its unreachable hosts
            // count), and a failure stops the run whatever `--max-fail` says.
            let max_unavailable = match group.rollout {
                Some(super::Concurrency::Rolling {
                    max_unavailable, ..
                }) => max_unavailable,
                Some(super::Concurrency::Parallel | super::Concurrency::OneAtATime) | None => 1,
            };
            waves.push(Wave {
                label: format!("{} (migration)", group.label),
                concurrency: super::Concurrency::Rolling {
                    batch: 1,
                    max_unavailable,
                },
                tasks: vec![task],
                unreachable: unreachable.clone(),
            });
        }
        // A wave that restarts its tier's service rolls through it when the tier says how (an
        // exporter's restart takes nothing out of service).
        let takes_hosts_out = |host: &HostName, unit: &UnitName| {
            desired.host(host).is_some_and(|state| {
                state
                    .services
                    .iter()
                    .any(|s| &s.unit == unit && s.restart == RestartEffect::TakesHostOut)
            })
        };
        let restarts = tasks.iter().any(|t| {
            t.steps.iter().any(|s| {
                matches!(&s.kind, StepKind::RestartUnit { unit } if takes_hosts_out(&t.host, unit))
            })
        }) && tasks
            .iter()
            .flat_map(|t| &t.steps)
            .any(|w| matches!(w.kind, StepKind::WaitHealthy { .. }));
        let concurrency = match group.rollout {
            Some(rolling) if restarts => rolling,
            Some(_) | None => group.concurrency,
        };
        if !tasks.is_empty() || !unreachable.is_empty() {
            waves.push(Wave {
                label: group.label.to_owned(),
                concurrency,
                tasks,
                unreachable,
            });
        }
    }
    let content: Vec<(&HostName, Vec<ContentId>)> = desired
        .hosts
        .iter()
        .map(|h| {
            (
                &h.name,
                h.files
                    .iter()
                    .map(|f| content_id(input.fingerprinter, f))
                    .collect(),
            )
        })
        .collect();
    Plan {
        format_version: FORMAT_VERSION.to_owned(),
        mode: input.mode,
        topology: desired.topology.clone(),
        desired: input.fingerprinter.of_json(&(desired, content)),
        hosts,
        waves,
        unreachable: input.unreachable,
        resolved: Vec::new(),
    }
}

/// Puts the app's migration into the first task that (re)starts the app onto a new release,
/// right before that (re)start (its files and environment are in place by then): the task's
/// index, with the command, when it did. It runs once per plan: the hosts after it find their data migrated.
fn insert_migration(desired: &DesiredState, tasks: &mut [Task]) -> Option<(usize, String)> {
    for (position, task) in tasks.iter_mut().enumerate() {
        let Some(migration) = desired.host(&task.host).and_then(|s| s.migration.clone()) else {
            continue;
        };
        // A new release: one of the app's own files (its code, environment or unit) changes.
        let releases = task.steps.iter().any(|s| {
            matches!(&s.kind, StepKind::CommitFile { path, .. } | StepKind::RemoveFile { path, .. }
                if path.starts_with(&migration.working_directory)
                    || *path == migration.environment_file
                    || *path == migration.unit_file)
        });
        // Right before the app (re)starts onto it.
        let restart = task.steps.iter().position(|s| {
            matches!(&s.kind, StepKind::RestartUnit { unit } | StepKind::StartUnit { unit } if *unit == migration.unit)
        });
        if let (true, Some(index)) = (releases, restart) {
            let command = migration.command.join(" ");
            task.steps.insert(
                index,
                Step::new(StepKind::Migrate { migration })
                    .because("a new release of the app: its data is migrated before any other app host changes"),
            );
            return Some((position, command));
        }
    }
    None
}

/// Puts the record's bookkeeping around a host's tasks (packages, main, retiring old
/// passwords): `BeginRun` first in whichever comes first, `FinishRun` last in whichever comes
/// last. A host with nothing to do gets neither.
fn bracket(input: &PlanInput<'_>, facts: &HostFacts, mut tasks: [Vec<Step>; 3]) -> [Vec<Step>; 3] {
    let Some(first) = tasks.iter().position(|t| !t.is_empty()) else {
        return tasks;
    };
    let last = tasks.iter().rposition(|t| !t.is_empty()).unwrap_or(first);
    let (lineage, serial) = match &facts.record {
        Some(record) => (record.lineage.clone(), record.serial + 1),
        None => (input.new_lineage.clone(), 1),
    };
    let ends_with_forget = tasks[last]
        .last()
        .is_some_and(|s| matches!(s.kind, StepKind::ForgetRecord));
    if !ends_with_forget {
        tasks[last].push(Step::new(StepKind::FinishRun));
    }
    tasks[first].insert(0, Step::new(StepKind::BeginRun { lineage, serial }));
    tasks
}

/// One host's diff, section by section; the main task is the sections in order.
pub(super) struct HostDiff<'a> {
    input: &'a PlanInput<'a>,
    wanted: &'a HostState,
    facts: &'a HostFacts,
    record: HostRecord,
    changes: Changes,
    notes: Vec<String>,
    /// The packages wave's task.
    packages: Vec<Step>,
    /// Units stopped first (no longer wanted; destroy: all, after the data is dropped).
    stop: Vec<Step>,
    /// Folders created or fixed.
    directories: Vec<Step>,
    /// Files written, removed or put back.
    files: Vec<Step>,
    /// `daemon-reload`, the firewall.
    after_files: Vec<Step>,
    /// MariaDB started or restarted, then SQL.
    database: Vec<Step>,
    /// Units enabled, started, reloaded, restarted.
    services: Vec<Step>,
    /// Folders, packages and accounts removed; the record forgotten.
    cleanup: Vec<Step>,
    /// Old database passwords retired, in a task of its own after the app tier.
    retire: Vec<Step>,
    /// What each unit is owed by this plan's changes, and why.
    triggers: BTreeMap<UnitName, (Trigger, Vec<String>)>,
    /// Packages installed in this run.
    installing: Vec<infra_topology::PackageName>,
}

impl<'a> HostDiff<'a> {
    fn new(input: &'a PlanInput<'a>, wanted: &'a HostState, facts: &'a HostFacts) -> Self {
        let record = match (&facts.record, input.local_records.get(&wanted.name)) {
            (Some(record), _) => record.clone(),
            (None, Some(local)) => local.clone(),
            (None, None) => HostRecord::default(),
        };
        HostDiff {
            input,
            wanted,
            facts,
            record,
            changes: Changes::new(wanted.name.clone()),
            notes: Vec::new(),
            packages: Vec::new(),
            stop: Vec::new(),
            directories: Vec::new(),
            files: Vec::new(),
            after_files: Vec::new(),
            database: Vec::new(),
            services: Vec::new(),
            cleanup: Vec::new(),
            retire: Vec::new(),
            triggers: BTreeMap::new(),
            installing: Vec::new(),
        }
    }

    /// The local record this host's plan moves to the host, if it has none of its own.
    fn imported(&self) -> Option<HostRecord> {
        if self.facts.record.is_some() {
            return None;
        }
        let mut local = self.input.local_records.get(&self.wanted.name)?.clone();
        // A file the topology wants plain is recorded plain; every other one, sensitive
        // (its content then never leaves the host, whatever it holds).
        for (path, recorded) in &mut local.files {
            if let Some(file) = self.wanted.file(path) {
                recorded.sensitivity = file.sensitivity;
            }
        }
        Some(local)
    }

    fn run(&mut self) {
        if self.input.local_records.contains_key(&self.wanted.name) && self.facts.record.is_none() {
            self.notes.push(
                "its record moves from the local `.infra/state.json` of an earlier version to the host".to_owned(),
            );
        }
        if matches!(self.input.mode, PlanMode::Destroy(_))
            && self.facts.record.is_none()
            && !self.input.local_records.contains_key(&self.wanted.name)
        {
            self.notes
                .push("no record of `infra` on this host: nothing to destroy".to_owned());
            return;
        }
        self.packages();
        self.owed();
        self.directories();
        self.files();
        self.firewall();
        self.database();
        self.services();
        self.removed_packages();
        self.forget();
    }

    /// The steps of the main task, in order.
    fn main_steps(&self) -> Vec<Step> {
        [
            &self.stop,
            &self.directories,
            &self.files,
            &self.after_files,
            &self.database,
            &self.services,
            &self.cleanup,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
    }

    /// Notes that `unit` must reload or restart, and why.
    fn trigger(&mut self, unit: &UnitName, trigger: Trigger, because: String) {
        let entry = self
            .triggers
            .entry(unit.clone())
            .or_insert((trigger, Vec::new()));
        entry.0 = entry.0.max(trigger);
        if !entry.1.contains(&because) {
            entry.1.push(because);
        }
    }

    /// The reason text of `unit`'s trigger.
    fn trigger_reason(&self, unit: &UnitName) -> Option<(Trigger, String)> {
        self.triggers
            .get(unit)
            .map(|(trigger, because)| (*trigger, because.join(", ")))
    }

    /// Whether the whole host goes away (destroy).
    fn destroying(&self) -> bool {
        matches!(self.input.mode, PlanMode::Destroy(_))
    }

    /// Whether destroy drops the data.
    fn deleting_data(&self) -> bool {
        matches!(
            self.input.mode,
            PlanMode::Destroy(super::DataPolicy::Delete)
        )
    }

    /// Ends a destroy by forgetting the record when nothing of it is left.
    fn forget(&mut self) {
        if !self.destroying() {
            return;
        }
        let keeps_data = !self.deleting_data()
            && (!self.record.databases.is_empty() || !self.record.accounts.is_empty());
        if keeps_data {
            self.notes.push(
                "the databases and accounts `infra` created are kept, and stay in its record (`infra destroy --delete-data` drops them)".to_owned(),
            );
        } else {
            self.cleanup.push(Step::new(StepKind::ForgetRecord));
        }
    }
}
