//! The executor: converges hosts to a plan, tier by tier, recording what it did.
//!
//! Order: the database tier (primary, then replicas), the app tier, the web tier, then the
//! load balancers one at a time so the VIP keeps serving; hosts of other tiers in parallel up to
//! `parallelism`. Within a host: packages, directories, files, firewall, database objects,
//! services. Each step is one SSH round trip; the state is saved after each.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use infra_plan::plan::{Action, HostPlan, Plan, ResourceKind};
use infra_plan::{DatabaseRole, DesiredState, HostState, Trigger, paths};
use infra_topology::{Tier, Topology};
use tokio::sync::Semaphore;

use crate::ssh::{Connection, ScriptOutput, TransportError};
use crate::state::{self, HostRecord, State};
use crate::steps::{self, ServiceAction};

/// The steps of one host, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Packages,
    Directories,
    Files,
    Firewall,
    Database,
    Services,
}

impl Step {
    /// The step's name in progress events and errors.
    fn name(self) -> &'static str {
        match self {
            Step::Packages => "packages",
            Step::Directories => "directories",
            Step::Files => "files",
            Step::Firewall => "firewall",
            Step::Database => "database",
            Step::Services => "services",
        }
    }
}

/// How many failed hosts a tier tolerates before the apply stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxFail {
    /// At most this many hosts.
    Count(usize),
    /// At most this percentage of the tier's hosts (rounded down).
    Percent(u8),
}

impl MaxFail {
    fn allowed(self, tier_size: usize) -> usize {
        match self {
            MaxFail::Count(count) => count,
            MaxFail::Percent(percent) => tier_size * usize::from(percent.min(100)) / 100,
        }
    }
}

/// What happened during an apply, as it happens.
#[derive(Debug, Clone)]
pub enum Event {
    /// A host starts; it has `steps` steps.
    HostStarted {
        /// The host.
        host: String,
        /// How many steps it will run.
        steps: usize,
    },
    /// A step starts on a host.
    Step {
        /// The host.
        host: String,
        /// The step's name.
        step: &'static str,
        /// Steps done so far.
        done: usize,
    },
    /// A host finished.
    HostDone {
        /// The host.
        host: String,
        /// Resources it added, changed, destroyed.
        counts: (usize, usize, usize),
    },
    /// A host failed.
    HostFailed {
        /// The host.
        host: String,
        /// Why.
        error: String,
    },
    /// A host was not touched (nothing to do, or the apply stopped before it).
    HostSkipped {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
}

/// Receives apply events (the terminal's progress bars, plain lines, or JSON).
pub trait ApplyReporter: Send + Sync {
    /// One event.
    fn event(&self, event: Event);
}

/// Why a host's apply failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HostError {
    /// A config was rejected by its validator; the previous file is back, nothing reloaded.
    #[error(
        "`{path}` on `{host}` was rejected by its check; the previous file is kept and no service was touched: {message}"
    )]
    Invalid {
        /// The host.
        host: String,
        /// The file.
        path: String,
        /// The validator's message.
        message: String,
    },
    /// A step failed on the host.
    #[error("step `{step}` failed on `{host}` ({what}): {message}")]
    Step {
        /// The host.
        host: String,
        /// The step.
        step: &'static str,
        /// What the script was doing.
        what: String,
        /// Its message.
        message: String,
    },
    /// The host could not be reached or the connection broke.
    #[error("{0}")]
    Transport(String),
    /// The state could not be saved.
    #[error("{0}")]
    State(String),
}

impl HostError {
    /// The same error with every secret value replaced by `(sensitive value)`: a host may
    /// echo a failed command back, and nothing it says is shown before this.
    fn scrub(self, secrets: &[String]) -> HostError {
        let clean = |text: String| {
            secrets
                .iter()
                .filter(|s| s.len() >= 4)
                .fold(text, |text, secret| {
                    text.replace(secret.as_str(), infra_plan::PLACEHOLDER)
                })
        };
        match self {
            HostError::Invalid {
                host,
                path,
                message,
            } => HostError::Invalid {
                host,
                path,
                message: clean(message),
            },
            HostError::Step {
                host,
                step,
                what,
                message,
            } => HostError::Step {
                host,
                step,
                what: clean(what),
                message: clean(message),
            },
            HostError::Transport(message) => HostError::Transport(clean(message)),
            HostError::State(message) => HostError::State(clean(message)),
        }
    }
}

/// How one host ended.
#[derive(Debug, Clone)]
pub enum HostOutcome {
    /// Converged; the counts of its resources added, changed, destroyed.
    Done((usize, usize, usize)),
    /// Nothing to do.
    Unchanged,
    /// Failed (and whether it had changed anything before failing).
    Failed(HostError, bool),
    /// Not started: an earlier failure or an interrupt stopped the apply.
    Skipped,
    /// Stopped by Ctrl-C after a step; the state records what was done.
    Interrupted,
}

/// How the apply ended.
#[derive(Debug, Clone)]
pub struct ApplyReport {
    /// Per host, in apply order.
    pub hosts: Vec<(String, HostOutcome)>,
    /// Whether Ctrl-C stopped the run (hosts not started then are `Skipped`).
    pub cancelled: bool,
}

impl ApplyReport {
    /// Resources added, changed, destroyed on hosts that completed.
    pub fn counts(&self) -> (usize, usize, usize) {
        self.hosts
            .iter()
            .fold((0, 0, 0), |acc, (_, outcome)| match outcome {
                HostOutcome::Done((a, c, d)) => (acc.0 + a, acc.1 + c, acc.2 + d),
                _ => acc,
            })
    }

    /// Whether some host failed.
    pub fn failed(&self) -> bool {
        self.hosts
            .iter()
            .any(|(_, o)| matches!(o, HostOutcome::Failed(..)))
    }

    /// Whether some host changed (completed with changes, or failed after changing things).
    pub fn changed_anything(&self) -> bool {
        self.hosts.iter().any(|(_, o)| match o {
            HostOutcome::Done(counts) => *counts != (0, 0, 0),
            HostOutcome::Failed(_, changed) => *changed,
            HostOutcome::Interrupted => true,
            _ => false,
        })
    }

    /// Whether Ctrl-C stopped it.
    pub fn interrupted(&self) -> bool {
        self.hosts
            .iter()
            .any(|(_, o)| matches!(o, HostOutcome::Interrupted))
    }
}

/// Settings of one apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Hosts of a tier applied at once.
    pub parallelism: usize,
    /// Failures tolerated per tier.
    pub max_fail: MaxFail,
}

/// Shared by every host task.
struct Shared {
    /// Secret values: removed from any message a host sends back before it is shown.
    secrets: Vec<String>,
    state: Mutex<State>,
    /// Hosts whose packages the first phase installed (or found nothing to install).
    packages_done: Mutex<std::collections::BTreeSet<String>>,
    base_dir: std::path::PathBuf,
    cancel: Arc<AtomicBool>,
    reporter: Arc<dyn ApplyReporter>,
}

impl Shared {
    fn record(&self, host: &str, update: impl FnOnce(&mut HostRecord)) -> Result<(), HostError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| HostError::State("the state lock is poisoned".to_owned()))?;
        update(state.hosts.entry(host.to_owned()).or_default());
        state::save(&self.base_dir, &mut state).map_err(|e| HostError::State(e.to_string()))
    }
}

/// The groups hosts are applied in: (hosts, one-at-a-time).
fn groups(topology: &Topology, desired: &DesiredState) -> Vec<(Vec<String>, bool)> {
    let mut seen: Vec<String> = Vec::new();
    let mut groups = Vec::new();
    let mut take = |names: Vec<String>, serial: bool, seen: &mut Vec<String>| {
        let fresh: Vec<String> = names.into_iter().filter(|n| !seen.contains(n)).collect();
        seen.extend(fresh.iter().cloned());
        if !fresh.is_empty() {
            groups.push((fresh, serial));
        }
    };
    if let Some(db) = &topology.database {
        take(vec![db.primary.to_string()], true, &mut seen);
        take(
            db.replicas.iter().map(ToString::to_string).collect(),
            false,
            &mut seen,
        );
    }
    for (tier, one_at_a_time) in [
        (Tier::App, false),
        (Tier::Web, false),
        (Tier::LoadBalancer, true),
    ] {
        let names = topology
            .tier_hosts(tier)
            .iter()
            .map(|h| h.name.to_string())
            .collect();
        take(names, one_at_a_time, &mut seen);
    }
    take(
        desired.hosts.iter().map(|h| h.name.to_string()).collect(),
        false,
        &mut seen,
    );
    groups
}

/// Applies `plan`, using the open `connections` (by host name).
#[expect(clippy::too_many_arguments, reason = "the inputs of one apply")]
pub async fn apply(
    topology: &Topology,
    desired: &DesiredState,
    plan: &Plan,
    connections: Vec<Connection>,
    state: State,
    options: &ApplyOptions,
    reporter: Arc<dyn ApplyReporter>,
    cancel: Arc<AtomicBool>,
) -> (ApplyReport, State) {
    let shared = Arc::new(Shared {
        secrets: topology
            .secrets()
            .iter()
            .map(|s| s.expose().to_owned())
            .collect(),
        state: Mutex::new(state),
        packages_done: Mutex::new(std::collections::BTreeSet::new()),
        base_dir: topology.base_dir.clone(),
        cancel,
        reporter,
    });
    let mut connections: BTreeMap<String, Connection> = connections
        .into_iter()
        .map(|c| (c.host().to_owned(), c))
        .collect();
    let mut outcomes: Vec<(String, HostOutcome)> = Vec::new();
    let package_failures =
        install_everywhere(plan, &mut connections, &shared, options.parallelism).await;
    let mut stop = false;
    for (names, serial) in groups(topology, desired) {
        let planned: Vec<&String> = names
            .iter()
            .filter(|n| {
                plan.hosts.iter().any(|h| &h.host == *n)
                    || plan.unreachable.iter().any(|u| &u.host == *n)
            })
            .collect();
        if planned.is_empty() {
            continue;
        }
        let allowed = options.max_fail.allowed(planned.len());
        let mut failures = 0;
        let limit = Arc::new(Semaphore::new(if serial {
            1
        } else {
            options.parallelism.max(1)
        }));
        let mut tasks = tokio::task::JoinSet::new();
        let stop_group = Arc::new(AtomicBool::new(stop));
        for name in planned {
            if let Some(unreachable) = plan.unreachable.iter().find(|u| &u.host == name) {
                failures += 1;
                let error = HostError::Transport(unreachable.error.clone());
                shared.reporter.event(Event::HostFailed {
                    host: name.clone(),
                    error: error.to_string(),
                });
                outcomes.push((name.clone(), HostOutcome::Failed(error, false)));
                if failures > allowed {
                    stop_group.store(true, Ordering::SeqCst);
                }
                continue;
            }
            if let Some(error) = package_failures.get(name.as_str()) {
                failures += 1;
                outcomes.push((name.clone(), HostOutcome::Failed(error.clone(), false)));
                if failures > allowed {
                    stop_group.store(true, Ordering::SeqCst);
                }
                continue;
            }
            let (Some(host_plan), Some(state_for_host)) = (
                plan.hosts.iter().find(|h| &h.host == name).cloned(),
                desired.host(name).cloned(),
            ) else {
                continue;
            };
            let connection = connections.remove(name.as_str());
            let shared = Arc::clone(&shared);
            let limit = Arc::clone(&limit);
            let stop_group = Arc::clone(&stop_group);
            let name = name.clone();
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                if stop_group.load(Ordering::SeqCst) || shared.cancel.load(Ordering::SeqCst) {
                    shared.reporter.event(Event::HostSkipped {
                        host: name.clone(),
                        reason: "an earlier failure or an interrupt stopped the apply".to_owned(),
                    });
                    return (name, HostOutcome::Skipped, connection);
                }
                let outcome = match &connection {
                    Some(connection) => {
                        apply_host(connection, &state_for_host, &host_plan, &shared).await
                    }
                    None => HostOutcome::Failed(
                        HostError::Transport(format!("no connection to `{name}`")),
                        false,
                    ),
                };
                if matches!(outcome, HostOutcome::Failed(..)) {
                    stop_group.store(true, Ordering::SeqCst);
                }
                (name, outcome, connection)
            });
        }
        let mut group_outcomes = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((name, outcome, connection)) = joined {
                if let Some(connection) = connection {
                    connections.insert(name.clone(), connection);
                }
                group_outcomes.push((name, outcome));
            }
        }
        failures += group_outcomes
            .iter()
            .filter(|(_, o)| matches!(o, HostOutcome::Failed(..)))
            .count();
        // A host that failed within the tolerance did not have to stop the others.
        outcomes.extend(group_outcomes);
        if failures > allowed || shared.cancel.load(Ordering::SeqCst) {
            stop = true;
        }
    }
    crate::gather::close_all(connections.into_values()).await;
    let order = |name: &str| desired.hosts.iter().position(|h| h.name.as_str() == name);
    outcomes.sort_by_key(|(name, _)| order(name));
    let cancelled = shared.cancel.load(Ordering::SeqCst);
    let state = match Arc::try_unwrap(shared) {
        Ok(shared) => shared.state.into_inner().unwrap_or_default(),
        Err(shared) => shared.state.lock().map(|s| s.clone()).unwrap_or_default(),
    };
    (
        ApplyReport {
            hosts: outcomes,
            cancelled,
        },
        state,
    )
}

/// Installs every host's missing packages at once, before the tier-ordered steps: installing
/// a package changes no running service's configuration, and apt is most of a cold apply.
/// Returns the hosts where it failed.
async fn install_everywhere(
    plan: &Plan,
    connections: &mut BTreeMap<String, Connection>,
    shared: &Arc<Shared>,
    parallelism: usize,
) -> BTreeMap<String, HostError> {
    let limit = Arc::new(Semaphore::new(parallelism.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for host_plan in &plan.hosts {
        let packages: Vec<String> = changes_of(host_plan, ResourceKind::Package)
            .map(|c| c.name.clone())
            .collect();
        if packages.is_empty() || shared.cancel.load(Ordering::SeqCst) {
            continue;
        }
        let Some(connection) = connections.remove(&host_plan.host) else {
            continue;
        };
        let shared = Arc::clone(shared);
        let limit = Arc::clone(&limit);
        let host = host_plan.host.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            shared.reporter.event(Event::Step {
                host: host.clone(),
                step: "packages",
                done: 0,
            });
            let result = install(&connection, &host, &packages, &shared).await;
            (host, result, connection)
        });
    }
    let mut failures = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let Ok((host, result, connection)) = joined else {
            continue;
        };
        match result {
            Ok(()) => {
                if let Ok(mut done) = shared.packages_done.lock() {
                    done.insert(host.clone());
                }
            }
            Err(error) => {
                let error = error.scrub(&shared.secrets);
                shared.reporter.event(Event::HostFailed {
                    host: host.clone(),
                    error: error.to_string(),
                });
                failures.insert(host.clone(), error);
            }
        }
        connections.insert(host, connection);
    }
    failures
}

/// Installs `packages` on `host` and records them, and the users and groups they created.
async fn install(
    connection: &Connection,
    host: &str,
    packages: &[String],
    shared: &Shared,
) -> Result<(), HostError> {
    let output = run_step(connection, "packages", &steps::install_packages(packages)).await?;
    let field = |tag: &str| -> Vec<String> {
        reported(&output, tag)
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    };
    let (installed, users, groups) = (field("installed"), field("new-user"), field("new-group"));
    let dependencies = field("new-package");
    // Only packages that were not there before are `infra`'s to remove.
    let installed: Vec<String> = installed
        .into_iter()
        .filter(|p| dependencies.contains(p))
        .collect();
    shared.record(host, |r| {
        r.packages.extend(installed);
        r.dependencies.extend(dependencies);
        r.users.extend(users);
        r.groups.extend(groups);
    })
}

/// The lines a script printed that start with `tag`, second field.
fn reported<'a>(output: &'a ScriptOutput, tag: &str) -> Vec<&'a str> {
    output
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix(tag)?.strip_prefix('\t'))
        .collect()
}

async fn run_step(
    connection: &Connection,
    step: &'static str,
    script: &str,
) -> Result<ScriptOutput, HostError> {
    let output = run_raw(connection, script).await?;
    check(connection, step, &output)?;
    Ok(output)
}

async fn run_raw(connection: &Connection, script: &str) -> Result<ScriptOutput, HostError> {
    connection
        .run_script(script)
        .await
        .map_err(|e: TransportError| HostError::Transport(e.to_string()))
}

/// Turns a script's failure report into an error (a validator's rejection is told apart).
fn check(
    connection: &Connection,
    step: &'static str,
    output: &ScriptOutput,
) -> Result<(), HostError> {
    if output.code == Some(0) {
        return Ok(());
    }
    let host = connection.host().to_owned();
    if let Some(line) = output
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("infra-failed\t"))
    {
        let (what, message) = line.split_once('\t').unwrap_or((line, ""));
        let validator = [
            "haproxy -c:",
            "keepalived -t:",
            "nft -c:",
            "nginx -t:",
            "mariadbd:",
            "systemd-analyze verify:",
        ];
        if step == "files" && validator.iter().any(|v| message.starts_with(v)) {
            return Err(HostError::Invalid {
                host,
                path: what.to_owned(),
                message: message.to_owned(),
            });
        }
        return Err(HostError::Step {
            host,
            step,
            what: what.to_owned(),
            message: message.to_owned(),
        });
    }
    Err(HostError::Step {
        host,
        step,
        what: format!("exit {:?}", output.code),
        message: crate::process::tail(&output.stderr, 4),
    })
}

fn changes_of(
    plan: &HostPlan,
    kind: ResourceKind,
) -> impl Iterator<Item = &infra_plan::plan::ResourceChange> {
    plan.changes
        .iter()
        .filter(move |c| c.kind == kind && c.action() != Action::NoOp)
}

/// Converges one host. Returns how it ended; the state is saved after each step.
async fn apply_host(
    connection: &Connection,
    desired: &HostState,
    plan: &HostPlan,
    shared: &Shared,
) -> HostOutcome {
    let host = desired.name.to_string();
    let counts = {
        let mut counts = (0, 0, 0);
        for change in &plan.changes {
            match change.action() {
                Action::Create => counts.0 += 1,
                Action::Update => counts.1 += 1,
                Action::Delete => counts.2 += 1,
                Action::NoOp => {}
            }
        }
        counts
    };
    let packages: Vec<String> = changes_of(plan, ResourceKind::Package)
        .map(|c| c.name.clone())
        .collect();
    let directories: Vec<&infra_plan::Directory> = desired
        .directories
        .iter()
        .filter(|d| changes_of(plan, ResourceKind::Directory).any(|c| c.name == d.path))
        .collect();
    let files: Vec<&infra_plan::ManagedFile> = desired
        .files
        .iter()
        .filter(|f| changes_of(plan, ResourceKind::File).any(|c| c.name == f.path))
        .collect();
    let firewall = changes_of(plan, ResourceKind::Firewall).next().is_some();
    let database = changes_of(plan, ResourceKind::Database)
        .chain(changes_of(plan, ResourceKind::DatabaseUser))
        .chain(changes_of(plan, ResourceKind::DatabaseGrant))
        .next()
        .is_some();
    let replication = changes_of(plan, ResourceKind::Replication).next().is_some();
    let services_change =
        changes_of(plan, ResourceKind::Service).next().is_some() || !plan.triggered.is_empty();
    // Absent files are enforced whenever anything else changes: installing a package can bring
    // one back (Nginx's default site).
    let anything = counts != (0, 0, 0) || !plan.triggered.is_empty();
    if !anything {
        shared.reporter.event(Event::HostSkipped {
            host: host.clone(),
            reason: "no changes".to_owned(),
        });
        return HostOutcome::Unchanged;
    }
    let mut steps: Vec<Step> = Vec::new();
    let packages_done = shared
        .packages_done
        .lock()
        .map(|done| done.contains(&host))
        .unwrap_or(false);
    if !packages.is_empty() && !packages_done {
        steps.push(Step::Packages);
    }
    if !directories.is_empty() {
        steps.push(Step::Directories);
    }
    steps.push(Step::Files);
    if firewall || files.iter().any(|f| f.path == paths::FIREWALL_NFT) {
        steps.push(Step::Firewall);
    }
    if database || replication {
        steps.push(Step::Database);
    }
    if services_change || !files.is_empty() || !packages.is_empty() {
        steps.push(Step::Services);
    }
    shared.reporter.event(Event::HostStarted {
        host: host.clone(),
        steps: steps.len(),
    });
    let mut changed = false;
    let mut triggered: Vec<(String, Trigger)> = plan
        .triggered
        .iter()
        .map(|t| (t.unit.clone(), t.trigger))
        .collect();
    for (done, step) in steps.iter().copied().enumerate() {
        if shared.cancel.load(Ordering::SeqCst) {
            return HostOutcome::Interrupted;
        }
        shared.reporter.event(Event::Step {
            host: host.clone(),
            step: step.name(),
            done,
        });
        let result = run_host_step(
            connection,
            desired,
            plan,
            shared,
            step,
            &packages,
            &directories,
            &files,
            &mut triggered,
        )
        .await;
        match result {
            Ok(()) => changed = true,
            Err(error) => {
                let error = error.scrub(&shared.secrets);
                let _ = shared.record(&host, |r| r.complete = false);
                shared.reporter.event(Event::HostFailed {
                    host: host.clone(),
                    error: error.to_string(),
                });
                return HostOutcome::Failed(error, changed);
            }
        }
    }
    if let Err(error) = shared.record(&host, |r| r.complete = true) {
        return HostOutcome::Failed(error, changed);
    }
    shared.reporter.event(Event::HostDone { host, counts });
    HostOutcome::Done(counts)
}

#[expect(clippy::too_many_arguments, reason = "one step's inputs")]
async fn run_host_step(
    connection: &Connection,
    desired: &HostState,
    plan: &HostPlan,
    shared: &Shared,
    step: Step,
    packages: &[String],
    directories: &[&infra_plan::Directory],
    files: &[&infra_plan::ManagedFile],
    triggered: &mut Vec<(String, Trigger)>,
) -> Result<(), HostError> {
    let host = desired.name.as_str();
    match step {
        Step::Packages => install(connection, host, packages, shared).await,
        Step::Directories => {
            let output =
                run_step(connection, step.name(), &steps::directories(directories)).await?;
            let created: Vec<String> = reported(&output, "created-dir")
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
            shared.record(host, |r| r.directories.extend(created))
        }
        Step::Files => {
            let known: Vec<String> = shared
                .state
                .lock()
                .map(|s| {
                    s.hosts
                        .get(host)
                        .map(|r| r.files.keys().cloned().collect())
                        .unwrap_or_default()
                })
                .unwrap_or_default();
            let existed_before = |path: &str| {
                !known.iter().any(|k| k == path)
                    && plan.changes.iter().any(|c| {
                        c.kind == ResourceKind::File && c.name == path && !c.before.is_null()
                    })
            };
            let absent: Vec<&str> = desired.absent_files.iter().map(String::as_str).collect();
            // Record what was written even when a later file fails its check, and owe the
            // reloads those files need, so a re-run performs them.
            let output =
                run_raw(connection, &steps::files(files, &absent, &existed_before)).await?;
            let wrote: Vec<String> = reported(&output, "wrote")
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
            let backups: Vec<String> = reported(&output, "backup")
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
            let removed: Vec<String> = reported(&output, "removed")
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
            // A file removed here (e.g. a default site a package brought) reloads its service.
            let removal_reload = removed
                .iter()
                .any(|path| path.starts_with("/etc/nginx/"))
                .then(|| ("nginx.service".to_owned(), Trigger::Reload));
            if let Some(reload) = &removal_reload
                && !triggered.iter().any(|(u, _)| *u == reload.0)
            {
                triggered.push(reload.clone());
            }
            let written: Vec<&&infra_plan::ManagedFile> =
                files.iter().filter(|f| wrote.contains(&f.path)).collect();
            let hashes: Vec<(String, String)> = written
                .iter()
                .map(|f| (f.path.clone(), f.sha256.clone()))
                .collect();
            let owed: Vec<(String, Trigger)> = written
                .iter()
                .filter_map(|f| f.notify.clone())
                .chain(removal_reload)
                .collect();
            shared.record(host, |r| {
                r.files.extend(hashes);
                r.backups.extend(backups);
                r.removed.extend(removed);
                for (unit, trigger) in owed {
                    let slot = r.pending.entry(unit).or_insert(trigger);
                    *slot = (*slot).max(trigger);
                }
            })?;
            check(connection, step.name(), &output)
        }
        Step::Firewall => {
            run_step(connection, step.name(), &steps::load_firewall()).await?;
            triggered.retain(|(unit, _)| {
                unit != "infra-firewall.service"
                    || files.iter().any(|f| f.path == paths::FIREWALL_UNIT)
            });
            shared.record(host, |r| r.firewall = true)
        }
        Step::Database => {
            let Some(objects) = &desired.database else {
                return Ok(());
            };
            // The server must run its new config (server_id, binary log) before replication.
            // An earlier, failed run may have left it stopped: start it if it is not running.
            let restart = match triggered
                .iter()
                .position(|(unit, _)| unit == "mariadb.service")
            {
                Some(index) => {
                    triggered.remove(index);
                    true
                }
                None => false,
            };
            run_step(
                connection,
                step.name(),
                &steps::restart_or_start("mariadb.service", restart),
            )
            .await?;
            shared.record(host, |r| {
                r.pending.remove("mariadb.service");
            })?;
            if objects.role == DatabaseRole::Primary {
                run_step(connection, step.name(), &steps::primary_objects(objects)).await?;
                let databases: Vec<String> = changes_of(plan, ResourceKind::Database)
                    .filter(|c| c.action() == Action::Create)
                    .map(|c| c.name.clone())
                    .collect();
                let users: Vec<String> = changes_of(plan, ResourceKind::DatabaseUser)
                    .filter(|c| c.action() == Action::Create)
                    .map(|c| c.name.clone())
                    .collect();
                shared.record(host, |r| {
                    r.databases.extend(databases);
                    r.database_users.extend(users);
                })?;
            }
            if let Some(source) = &objects.replication_source {
                run_step(connection, step.name(), &steps::replication(source)).await?;
                shared.record(host, |r| r.replication = true)?;
            }
            Ok(())
        }
        Step::Services => {
            let actions: Vec<ServiceAction> = desired
                .services
                .iter()
                .map(|service| ServiceAction {
                    unit: service.unit.clone(),
                    trigger: triggered
                        .iter()
                        .find(|(unit, _)| *unit == service.unit)
                        .map(|(_, t)| *t),
                })
                .collect();
            let daemon_reload = files
                .iter()
                .any(|f| f.path.starts_with("/etc/systemd/system/"));
            let output = run_step(
                connection,
                step.name(),
                &steps::services(&actions, daemon_reload),
            )
            .await?;
            let enabled: Vec<String> = reported(&output, "enabled")
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
            shared.record(host, |r| {
                r.services.extend(enabled);
                r.pending.clear();
            })
        }
    }
}
