//! The executor: runs a [`Plan`] exactly as written. It checks each step's precondition
//! against the facts it was given, sends each task to its host, and when a task stops short it
//! runs the undos of the steps that were done. It decides nothing about what runs: the waves,
//! the tasks, their order, their steps and their undos all come from the plan.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use infra_plan::facts::{FileFact, HostFacts};
use infra_plan::hash::{Fingerprint, Fingerprinter};
use infra_plan::lock::LockId;
use infra_plan::plan::{
    Action, Concurrency, ContentId, FileState, Plan, Precondition, Step, StepKind, Task, Wave,
};
use infra_plan::{Check, DesiredState, ManagedFile};
use infra_topology::{HostName, Name, RemotePath, Secret, SqlName};

use crate::hosts::for_each_host;
use crate::transport::{Expected, HostError, Job, JobReport, StepOutcome, Transport};

/// How many failed hosts a wave tolerates before the run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxFail {
    /// At most this many hosts.
    Count(usize),
    /// At most this percentage of the wave's hosts (rounded down).
    Percent(u8),
}

impl MaxFail {
    fn allowed(self, hosts: usize) -> usize {
        match self {
            MaxFail::Count(count) => count,
            MaxFail::Percent(percent) => hosts * usize::from(percent.min(100)) / 100,
        }
    }
}

/// Ctrl-C, as the executor sees it: once asked, no task starts; the tasks under way finish
/// their round trip (a safe point: the record holds what each did).
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicUsize>);

impl Cancel {
    /// Asks the run to stop; returns how many times it has been asked.
    pub fn request(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Whether the run was asked to stop.
    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }
}

/// Resources a host's run added, changed and destroyed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Created.
    pub added: usize,
    /// Changed in place.
    pub changed: usize,
    /// Removed.
    pub destroyed: usize,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.added += other.added;
        self.changed += other.changed;
        self.destroyed += other.destroyed;
    }
}

/// What happened during a run, as it happens.
#[derive(Debug, Clone)]
pub enum Event {
    /// A task starts on a host.
    TaskStarted {
        /// The host.
        host: HostName,
        /// The wave.
        wave: String,
        /// Its steps.
        steps: Vec<String>,
    },
    /// A task ended well.
    TaskDone {
        /// The host.
        host: HostName,
        /// The wave.
        wave: String,
    },
    /// A host finished its last task; what it changed.
    HostDone {
        /// The host.
        host: HostName,
        /// Its counts.
        counts: Counts,
    },
    /// A task failed.
    TaskFailed {
        /// The host.
        host: HostName,
        /// Why.
        error: String,
    },
    /// A failed task's done steps were undone.
    RolledBack {
        /// The host.
        host: HostName,
        /// How many undos ran.
        undone: usize,
        /// Why undoing stopped short, if it did.
        failed: Option<String>,
    },
    /// A task was not started.
    TaskSkipped {
        /// The host.
        host: HostName,
        /// Why.
        reason: String,
    },
}

/// Receives the run's events (progress bars, plain lines or JSON).
pub trait Reporter: Send + Sync {
    /// One event.
    fn event(&self, event: Event);
}

/// Why a task failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TaskError {
    /// A checker rejected a file; the previous files are back.
    #[error("`{path}` on `{host}` was rejected by `{}`; the previous file is back and no service was touched: {output}", check.command())]
    Rejected {
        /// The host.
        host: HostName,
        /// The file.
        path: RemotePath,
        /// The checker.
        check: Check,
        /// What it said.
        output: String,
    },
    /// The host changed since the plan was made.
    #[error("`{host}` changed since the plan was made: {detail}")]
    Stale {
        /// The host.
        host: HostName,
        /// What differs.
        detail: String,
    },
    /// A step failed.
    #[error("`{step}` failed on `{host}`: {message}")]
    Step {
        /// The host.
        host: HostName,
        /// The step.
        step: String,
        /// Why.
        message: String,
    },
    /// Someone took the lock away.
    #[error(
        "the lock on `{host}` is no longer this run's (was it forced?): nothing more was changed there"
    )]
    LockLost {
        /// The host.
        host: HostName,
    },
    /// The host could not be reached or the connection broke.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The host could not be planned.
    #[error("`{host}` could not be planned: {error}")]
    Unreachable {
        /// The host.
        host: HostName,
        /// Why.
        error: String,
    },
}

/// Whether a failed host was changed before it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// Some step changed it.
    Yes,
    /// Nothing changed there.
    No,
}

/// How one host ended.
#[derive(Debug, Clone)]
pub enum HostOutcome {
    /// Converged.
    Done(Counts),
    /// Failed.
    Failed(TaskError, Changed),
    /// Not started (an earlier failure, or Ctrl-C).
    Skipped(String),
}

/// How the run ended.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Per host, in the plan's order.
    pub hosts: Vec<(HostName, HostOutcome)>,
    /// Whether Ctrl-C stopped it.
    pub interrupted: bool,
}

impl Report {
    /// Resources added, changed, destroyed on hosts that completed.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for (_, outcome) in &self.hosts {
            if let HostOutcome::Done(done) = outcome {
                counts.add(*done);
            }
        }
        counts
    }

    /// Whether some host failed.
    pub fn failed(&self) -> bool {
        self.hosts
            .iter()
            .any(|(_, o)| matches!(o, HostOutcome::Failed(..)))
    }

    /// Whether some host changed (completed, or failed after changing something).
    pub fn changed_anything(&self) -> bool {
        self.hosts.iter().any(|(_, outcome)| match outcome {
            HostOutcome::Done(counts) => *counts != Counts::default(),
            HostOutcome::Failed(_, changed) => *changed == Changed::Yes,
            HostOutcome::Skipped(_) => false,
        })
    }

    /// The errors, one per failed host.
    pub fn errors(&self) -> Vec<&TaskError> {
        self.hosts
            .iter()
            .filter_map(|(_, o)| match o {
                HostOutcome::Failed(error, _) => Some(error),
                HostOutcome::Done(_) | HostOutcome::Skipped(_) => None,
            })
            .collect()
    }
}

/// Everything one run needs besides the transports.
pub struct Execution<'a> {
    /// The plan to run.
    pub plan: &'a Plan,
    /// The desired state the plan was made from (the contents its steps write).
    pub desired: &'a DesiredState,
    /// The passwords of the topology's database accounts.
    pub passwords: BTreeMap<SqlName, Secret>,
    /// The facts the run starts from (checked against the plan by the caller).
    pub facts: &'a BTreeMap<HostName, HostFacts>,
    /// Fingerprints, to match preconditions with facts.
    pub fingerprinter: &'a Fingerprinter,
    /// The lock this run holds on the hosts.
    pub lock: LockId,
    /// Tasks of a parallel wave run at once.
    pub parallelism: usize,
    /// Failures a wave tolerates.
    pub max_fail: MaxFail,
    /// Ctrl-C.
    pub cancel: Cancel,
    /// Where events go.
    pub reporter: Arc<dyn Reporter>,
}

struct Shared<'a> {
    execution: &'a Execution<'a>,
    contents: BTreeMap<ContentId, &'a ManagedFile>,
}

/// Runs the plan over `transports` (by host).
pub async fn execute(
    execution: &Execution<'_>,
    transports: &BTreeMap<HostName, Arc<dyn Transport>>,
) -> Report {
    let plan = execution.plan;
    let mut contents: BTreeMap<ContentId, &ManagedFile> = BTreeMap::new();
    for host in &execution.desired.hosts {
        for file in &host.files {
            contents.insert(
                infra_plan::plan::content_id(execution.fingerprinter, file),
                file,
            );
        }
    }
    let shared = Shared {
        execution,
        contents,
    };
    let mut outcomes: BTreeMap<HostName, HostOutcome> = BTreeMap::new();
    let mut changed: BTreeMap<HostName, Changed> = BTreeMap::new();
    let last_task: BTreeMap<&HostName, usize> = plan
        .waves
        .iter()
        .enumerate()
        .flat_map(|(index, wave)| wave.tasks.iter().map(move |t| (&t.host, index)))
        .collect();
    let mut stopped = false;
    for (index, wave) in plan.waves.iter().enumerate() {
        // A rollout stops at its first failed host whatever `--max-fail` says; hosts that
        // cannot be reached only make its batches smaller.
        let (allowed, limit) = match wave.concurrency {
            Concurrency::Rolling {
                batch,
                max_unavailable,
            } => (
                wave.unreachable.len(),
                batch.min(max_unavailable.saturating_sub(wave.unreachable.len())),
            ),
            Concurrency::OneAtATime => (
                execution
                    .max_fail
                    .allowed(wave.tasks.len() + wave.unreachable.len()),
                1,
            ),
            Concurrency::Parallel => (
                execution
                    .max_fail
                    .allowed(wave.tasks.len() + wave.unreachable.len()),
                execution.parallelism,
            ),
        };
        let mut failures = 0;
        for host in &wave.unreachable {
            failures += 1;
            if let Some(unreachable) = plan.unreachable.iter().find(|u| &u.host == host) {
                outcomes.entry(host.clone()).or_insert(HostOutcome::Failed(
                    TaskError::Unreachable {
                        host: host.clone(),
                        error: unreachable.error.clone(),
                    },
                    Changed::No,
                ));
            }
        }
        let skip_reason = if execution.cancel.is_requested() {
            Some("interrupted before it started".to_owned())
        } else if stopped || failures > allowed {
            Some("an earlier failure stopped the run".to_owned())
        } else if limit == 0 {
            Some(format!(
                "the rollout would take too many {} hosts out of service: {} cannot be reached",
                wave.label,
                wave.unreachable.len()
            ))
        } else {
            None
        };
        if let Some(reason) = skip_reason {
            stopped = true;
            for task in &wave.tasks {
                skip(execution, &mut outcomes, &task.host, &reason);
            }
            continue;
        }
        let budget = Budget {
            limit,
            failures,
            allowed,
        };
        let results = run_wave(
            &shared, wave, index, &last_task, transports, &outcomes, budget,
        )
        .await;
        for (host, result) in results {
            match result {
                Ok(WaveResult::Done(did_change)) => {
                    if did_change == Changed::Yes {
                        changed.insert(host.clone(), Changed::Yes);
                    }
                }
                Ok(WaveResult::HostDone(did_change, counts)) => {
                    if did_change == Changed::Yes {
                        changed.insert(host.clone(), Changed::Yes);
                    }
                    outcomes.insert(host, HostOutcome::Done(counts));
                }
                Ok(WaveResult::Skipped(reason)) => skip(execution, &mut outcomes, &host, &reason),
                Ok(WaveResult::Failed(error, did_change)) => {
                    failures += 1;
                    let changed_before = changed.get(&host).copied().unwrap_or(Changed::No);
                    let changed = if did_change == Changed::Yes {
                        Changed::Yes
                    } else {
                        changed_before
                    };
                    outcomes.insert(host, HostOutcome::Failed(error, changed));
                }
                Err(error) => {
                    failures += 1;
                    execution.reporter.event(Event::TaskFailed {
                        host: host.clone(),
                        error: error.to_string(),
                    });
                    let changed = changed.get(&host).copied().unwrap_or(Changed::No);
                    outcomes.insert(host, HostOutcome::Failed(error.into(), changed));
                }
            }
        }
        if failures > allowed {
            stopped = true;
        }
    }
    let order: Vec<&HostName> = plan
        .hosts
        .iter()
        .map(|h| &h.host)
        .chain(plan.unreachable.iter().map(|u| &u.host))
        .collect();
    let mut hosts = Vec::new();
    for host in order {
        if let Some(outcome) = outcomes.remove(host) {
            hosts.push((host.clone(), outcome));
        }
    }
    Report {
        hosts,
        interrupted: execution.cancel.is_requested(),
    }
}

fn skip(
    execution: &Execution<'_>,
    outcomes: &mut BTreeMap<HostName, HostOutcome>,
    host: &HostName,
    reason: &str,
) {
    if outcomes.contains_key(host) {
        return;
    }
    execution.reporter.event(Event::TaskSkipped {
        host: host.clone(),
        reason: reason.to_owned(),
    });
    outcomes.insert(host.clone(), HostOutcome::Skipped(reason.to_owned()));
}

/// The counts of `host`'s changes in the plan.
fn counts_of(plan: &Plan, host: &HostName) -> Counts {
    let mut counts = Counts::default();
    for change in plan
        .host(host)
        .map(|h| h.changes.as_slice())
        .unwrap_or_default()
    {
        match change.action() {
            Action::Create => counts.added += 1,
            Action::Update => counts.changed += 1,
            Action::Delete => counts.destroyed += 1,
            Action::NoOp => {}
        }
    }
    counts
}

enum WaveResult {
    Done(Changed),
    HostDone(Changed, Counts),
    Skipped(String),
    Failed(TaskError, Changed),
}

/// How many of a wave's tasks run at once, and how many failures it has had and tolerates.
#[derive(Debug, Clone, Copy)]
struct Budget {
    limit: usize,
    failures: usize,
    allowed: usize,
}

async fn run_wave(
    shared: &Shared<'_>,
    wave: &Wave,
    index: usize,
    last_task: &BTreeMap<&HostName, usize>,
    transports: &BTreeMap<HostName, Arc<dyn Transport>>,
    outcomes: &BTreeMap<HostName, HostOutcome>,
    budget: Budget,
) -> Vec<(HostName, Result<WaveResult, HostError>)> {
    let execution = shared.execution;
    let Budget {
        limit,
        failures: failures_so_far,
        allowed,
    } = budget;
    let failures = Arc::new(AtomicUsize::new(failures_so_far));
    let stop = Arc::new(AtomicBool::new(false));
    // Tasks borrow the plan and the transports; they are driven here, not detached.
    let prepared: Vec<(HostName, Prepared)> = wave
        .tasks
        .iter()
        .map(|task| {
            let last = last_task.get(&task.host) == Some(&index);
            (
                task.host.clone(),
                prepare(shared, task, last, transports, outcomes),
            )
        })
        .collect();
    let wave_label = wave.label.clone();
    let reporter = Arc::clone(&execution.reporter);
    let cancel = execution.cancel.clone();
    for_each_host(prepared, limit, move |host, prepared| {
        let failures = Arc::clone(&failures);
        let stop = Arc::clone(&stop);
        let reporter = Arc::clone(&reporter);
        let cancel = cancel.clone();
        let wave = wave_label.clone();
        async move {
            if cancel.is_requested() {
                return Ok(WaveResult::Skipped(
                    "interrupted before it started".to_owned(),
                ));
            }
            if stop.load(Ordering::SeqCst) {
                return Ok(WaveResult::Skipped(
                    "an earlier failure stopped the run".to_owned(),
                ));
            }
            let result = prepared.run(&host, &wave, reporter.as_ref()).await;
            if matches!(result, Ok(WaveResult::Failed(..)) | Err(_)) {
                let now = failures.fetch_add(1, Ordering::SeqCst) + 1;
                if now > allowed {
                    stop.store(true, Ordering::SeqCst);
                }
            }
            result
        }
    })
    .await
}

/// A task with everything it needs resolved, ready to be sent (owned, so it can be spawned).
enum Prepared {
    /// Send it.
    Ready(Box<ReadyTask>),
    /// Do not: why.
    Skip(String),
    /// It cannot run: the host changed since the plan, or it has no connection.
    Fail(TaskError),
}

struct ReadyTask {
    /// Set on the host's last task: what the host's run changed, reported when it ends well.
    last: Option<Counts>,
    transport: Arc<dyn Transport>,
    topology: Name,
    lock: LockId,
    steps: Vec<Step>,
    contents: BTreeMap<ContentId, ManagedFile>,
    passwords: BTreeMap<SqlName, Secret>,
    expected: BTreeMap<RemotePath, Expected>,
}

fn prepare(
    shared: &Shared<'_>,
    task: &Task,
    last: bool,
    transports: &BTreeMap<HostName, Arc<dyn Transport>>,
    outcomes: &BTreeMap<HostName, HostOutcome>,
) -> Prepared {
    let execution = shared.execution;
    if let Some(outcome) = outcomes.get(&task.host) {
        return match outcome {
            HostOutcome::Failed(..) => Prepared::Skip("it failed in an earlier wave".to_owned()),
            HostOutcome::Skipped(reason) => Prepared::Skip(reason.clone()),
            HostOutcome::Done(_) => Prepared::Skip("already done".to_owned()),
        };
    }
    let Some(transport) = transports.get(&task.host) else {
        return Prepared::Fail(TaskError::Host(HostError::Transport {
            message: format!("no connection to `{}`", task.host),
            hint: None,
        }));
    };
    let facts = execution.facts.get(&task.host);
    let mut expected = BTreeMap::new();
    for step in &task.steps {
        let (Some(Precondition::File { state }), Some(path)) =
            (&step.expects, step.kind.precondition_path())
        else {
            continue;
        };
        match resolve(execution.fingerprinter, state, facts, path) {
            Ok(resolved) => {
                expected.insert(path.clone(), resolved);
            }
            Err(detail) => {
                return Prepared::Fail(TaskError::Stale {
                    host: task.host.clone(),
                    detail,
                });
            }
        }
    }
    let contents = task
        .steps
        .iter()
        .filter_map(|s| s.kind.content())
        .filter_map(|id| shared.contents.get(id).map(|f| (id.clone(), (*f).clone())))
        .collect();
    Prepared::Ready(Box::new(ReadyTask {
        last: last.then(|| counts_of(execution.plan, &task.host)),
        transport: Arc::clone(transport),
        topology: execution.plan.topology.clone(),
        lock: execution.lock.clone(),
        steps: task.steps.clone(),
        contents,
        passwords: execution.passwords.clone(),
        expected,
    }))
}

/// The file state a precondition names, as the host must show it now.
fn resolve(
    fingerprinter: &Fingerprinter,
    state: &FileState,
    facts: Option<&HostFacts>,
    path: &RemotePath,
) -> Result<Expected, String> {
    let fact = facts
        .and_then(|f| f.files.get(path))
        .unwrap_or(&FileFact::Absent);
    let mismatch = || format!("{path} is not what it was when the plan was made");
    match (state, fact) {
        (FileState::Any, _) => Ok(Expected::Any),
        (FileState::Absent, FileFact::Absent) => Ok(Expected::Absent),
        (FileState::Other, FileFact::Other) => Ok(Expected::Other),
        (FileState::Content(fingerprint), FileFact::File { sha256, .. }) => {
            let plain = Fingerprint::from(sha256);
            let keyed = fingerprinter.full(sha256.as_str().as_bytes());
            if *fingerprint == plain || *fingerprint == keyed {
                Ok(Expected::Content(sha256.clone()))
            } else {
                Err(mismatch())
            }
        }
        (FileState::Absent | FileState::Other | FileState::Content(_), _) => Err(mismatch()),
    }
}

impl Prepared {
    async fn run(
        self,
        host: &HostName,
        wave: &str,
        reporter: &dyn Reporter,
    ) -> Result<WaveResult, HostError> {
        let task = match self {
            Prepared::Ready(task) => task,
            Prepared::Skip(reason) => return Ok(WaveResult::Skipped(reason)),
            Prepared::Fail(error) => {
                reporter.event(Event::TaskFailed {
                    host: host.clone(),
                    error: error.to_string(),
                });
                return Ok(WaveResult::Failed(error, Changed::No));
            }
        };
        reporter.event(Event::TaskStarted {
            host: host.clone(),
            wave: wave.to_owned(),
            steps: task.steps.iter().map(|s| s.kind.describe()).collect(),
        });
        let contents: BTreeMap<ContentId, &ManagedFile> = task
            .contents
            .iter()
            .map(|(id, f)| (id.clone(), f))
            .collect();
        let job = Job {
            topology: &task.topology,
            lock: &task.lock,
            steps: &task.steps,
            contents: &contents,
            passwords: &task.passwords,
            expected: &task.expected,
        };
        let report = task.transport.run(&job).await?;
        let done = report
            .outcomes
            .iter()
            .take_while(|o| **o == StepOutcome::Done)
            .count();
        let done_steps = &task.steps[..done.min(task.steps.len())];
        let changed = changed_by(done_steps.iter());
        let Some(error) = task_error(host, &task.steps, &report) else {
            reporter.event(Event::TaskDone {
                host: host.clone(),
                wave: wave.to_owned(),
            });
            if let Some(counts) = task.last {
                reporter.event(Event::HostDone {
                    host: host.clone(),
                    counts,
                });
                return Ok(WaveResult::HostDone(changed, counts));
            }
            return Ok(WaveResult::Done(changed));
        };
        reporter.event(Event::TaskFailed {
            host: host.clone(),
            error: error.to_string(),
        });
        let mut changed = changed;
        if !matches!(error, TaskError::LockLost { .. }) {
            // The failed step may have done part of its work (a restart that did not come
            // back): its own undo runs too, with the undos of the steps done before it.
            // A stale step found the host changed by hand and touched nothing.
            let failed_step = usize::from(!matches!(error, TaskError::Stale { .. }));
            let tried = &task.steps[..(done + failed_step).min(task.steps.len())];
            let undo = undo_steps(tried);
            if !undo.is_empty() {
                let expected = BTreeMap::new();
                let job = Job {
                    steps: &undo,
                    expected: &expected,
                    ..job
                };
                let failed = match task.transport.run(&job).await {
                    Ok(report) => report
                        .outcomes
                        .iter()
                        .find(|o| **o != StepOutcome::Done)
                        .map(StepOutcome::describe),
                    Err(error) => Some(error.to_string()),
                };
                if failed.is_none() {
                    // Everything with an undo was put back; what is left is what had none.
                    changed = changed_by(done_steps.iter().filter(|s| s.undo.is_none()));
                }
                reporter.event(Event::RolledBack {
                    host: host.clone(),
                    undone: undo.len(),
                    failed,
                });
            }
        }
        Ok(WaveResult::Failed(error, changed))
    }
}

/// What a report says went wrong, if anything.
fn task_error(host: &HostName, steps: &[Step], report: &JobReport) -> Option<TaskError> {
    let (index, outcome) = report
        .outcomes
        .iter()
        .enumerate()
        .find(|(_, o)| **o != StepOutcome::Done)
        .map_or_else(
            || {
                // Fewer outcomes than steps, all done: the script ended early.
                (report.outcomes.len() < steps.len()).then(|| {
                    (
                        report.outcomes.len(),
                        StepOutcome::Failed {
                            message: "the host stopped answering before the step ended".to_owned(),
                        },
                    )
                })
            },
            |(i, o)| Some((i, o.clone())),
        )?;
    let step = steps.get(index)?;
    Some(match outcome {
        StepOutcome::Done => return None,
        StepOutcome::Rejected { output } => match &step.kind {
            StepKind::Check { check, path, .. } => TaskError::Rejected {
                host: host.clone(),
                path: path.clone(),
                check: *check,
                output,
            },
            other => TaskError::Step {
                host: host.clone(),
                step: other.describe(),
                message: output,
            },
        },
        StepOutcome::Stale { detail } => TaskError::Stale {
            host: host.clone(),
            detail,
        },
        StepOutcome::Failed { message } => TaskError::Step {
            host: host.clone(),
            step: step.kind.describe(),
            message,
        },
        StepOutcome::LockLost => TaskError::LockLost { host: host.clone() },
    })
}

/// Whether any of these steps, all done, changed the host.
fn changed_by<'a>(mut done: impl Iterator<Item = &'a Step>) -> Changed {
    if done.any(|s| s.kind.changes_host()) {
        Changed::Yes
    } else {
        Changed::No
    }
}

/// The undos of the steps tried: files put back first (newest first), then services told to
/// read them again (in their original order).
fn undo_steps(done: &[Step]) -> Vec<Step> {
    let undos: Vec<StepKind> = done.iter().filter_map(|s| s.undo.clone()).collect();
    let mut files: Vec<Step> = Vec::new();
    let mut services: Vec<Step> = Vec::new();
    for undo in undos {
        match undo.undo_phase() {
            infra_plan::plan::UndoPhase::Files => files.push(Step::new(undo)),
            infra_plan::plan::UndoPhase::Services => services.push(Step::new(undo)),
        }
    }
    files.reverse();
    files.extend(services);
    files
}
