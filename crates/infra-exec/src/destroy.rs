//! Destroy: undo what the state says `infra` created, host by host, in reverse tier order
//! (load balancers one at a time, then web, app, and the database tier, replicas first).
//! It is a diff against "absent" over the state, so it never touches what `infra` did not make.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use infra_plan::DatabaseRole;
use infra_plan::plan::{Action, FORMAT_VERSION, HostPlan, Plan, ResourceChange, ResourceKind};
use infra_topology::Topology;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::apply::{ApplyReport, ApplyReporter, Event, HostError, HostOutcome};
use crate::ssh::{ConnectOptions, Connection};
use crate::state::{self, HostRecord, State};

fn delete(host: &str, kind: ResourceKind, name: &str, before: Value) -> ResourceChange {
    ResourceChange {
        address: format!("{host}.{}[\"{name}\"]", kind.key()),
        host: host.to_owned(),
        kind,
        name: name.to_owned(),
        actions: vec![Action::Delete],
        before,
        after: Value::Null,
        after_sensitive: json!({}),
        diff: None,
    }
}

/// The removals destroy will make, from the state, in the order it makes them.
pub fn plan(topology: &Topology, state: &State, delete_data: bool) -> Plan {
    let mut hosts = Vec::new();
    for name in order(topology) {
        let Some(record) = state.hosts.get(&name) else {
            continue;
        };
        let mut changes = Vec::new();
        if delete_data {
            for database in &record.databases {
                changes.push(delete(
                    &name,
                    ResourceKind::Database,
                    database,
                    json!({ "exists": true }),
                ));
            }
            for account in &record.database_users {
                changes.push(delete(
                    &name,
                    ResourceKind::DatabaseUser,
                    account,
                    json!({ "exists": true }),
                ));
            }
            if record.replication {
                changes.push(delete(
                    &name,
                    ResourceKind::Replication,
                    "primary",
                    json!({ "configured": true }),
                ));
            }
        }
        for unit in &record.services {
            changes.push(delete(
                &name,
                ResourceKind::Service,
                unit,
                json!({ "enabled": "enabled" }),
            ));
        }
        if record.firewall {
            changes.push(delete(
                &name,
                ResourceKind::Firewall,
                "inet infra",
                json!({ "loaded": true }),
            ));
        }
        for (path, sha) in &record.files {
            let what = if record.backups.contains(path) {
                "restore the original"
            } else {
                "remove"
            };
            changes.push(delete(
                &name,
                ResourceKind::File,
                path,
                json!({ "sha256": sha, "then": what }),
            ));
        }
        for path in &record.removed {
            changes.push(delete(
                &name,
                ResourceKind::AbsentFile,
                path,
                json!({ "then": "restore the original" }),
            ));
        }
        for directory in &record.directories {
            changes.push(delete(
                &name,
                ResourceKind::Directory,
                directory,
                json!({ "exists": true }),
            ));
        }
        for package in &record.packages {
            changes.push(delete(
                &name,
                ResourceKind::Package,
                package,
                json!({ "installed_by": "infra" }),
            ));
        }
        if !changes.is_empty() {
            hosts.push(HostPlan {
                host: name.clone(),
                facts_sha256: String::new(),
                changes,
                triggered: Vec::new(),
            });
        }
    }
    Plan {
        format_version: FORMAT_VERSION.to_owned(),
        topology: topology.name.clone(),
        desired_sha256: String::new(),
        hosts,
        unreachable: Vec::new(),
    }
}

/// Host names in destroy order: the reverse of apply's tiers.
fn order(topology: &Topology) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut push = |name: String| {
        if !names.contains(&name) {
            names.push(name);
        }
    };
    for host in topology.tier_hosts(infra_topology::Tier::LoadBalancer) {
        push(host.name.to_string());
    }
    for host in topology.tier_hosts(infra_topology::Tier::Web) {
        push(host.name.to_string());
    }
    for host in topology.tier_hosts(infra_topology::Tier::App) {
        push(host.name.to_string());
    }
    if let Some(db) = &topology.database {
        for replica in &db.replicas {
            push(replica.to_string());
        }
        push(db.primary.to_string());
    }
    for host in &topology.hosts {
        push(host.name.to_string());
    }
    names
}

/// Runs the destroy `plan` made from `state`. Load balancers go one at a time; other hosts
/// of a tier in parallel. The state is saved after each host.
#[expect(clippy::too_many_arguments, reason = "the inputs of one destroy")]
pub async fn destroy(
    topology: &Topology,
    plan: &Plan,
    mut state: State,
    delete_data: bool,
    options: &ConnectOptions,
    parallelism: usize,
    reporter: Arc<dyn ApplyReporter>,
    cancel: Arc<AtomicBool>,
) -> (ApplyReport, State) {
    let lbs: Vec<String> = topology
        .tier_hosts(infra_topology::Tier::LoadBalancer)
        .iter()
        .map(|h| h.name.to_string())
        .collect();
    let mut outcomes = Vec::new();
    let planned: Vec<&HostPlan> = plan.hosts.iter().collect();
    let (serial, parallel): (Vec<&HostPlan>, Vec<&HostPlan>) =
        planned.into_iter().partition(|h| lbs.contains(&h.host));
    let primary = topology.database.as_ref().map(|d| d.primary.to_string());
    let (last, parallel): (Vec<&HostPlan>, Vec<&HostPlan>) = parallel
        .into_iter()
        .partition(|h| Some(&h.host) == primary.as_ref());
    let limit_for = |group: &[&HostPlan]| {
        if group.iter().all(|h| lbs.contains(&h.host)) {
            1
        } else {
            parallelism.max(1)
        }
    };
    for group in [serial, parallel, last] {
        if group.is_empty() {
            continue;
        }
        let limit = Arc::new(Semaphore::new(limit_for(&group)));
        let mut tasks = tokio::task::JoinSet::new();
        for host_plan in group {
            let Some(host) = topology
                .hosts
                .iter()
                .find(|h| h.name.as_str() == host_plan.host)
                .cloned()
            else {
                continue;
            };
            let record = state
                .hosts
                .get(&host_plan.host)
                .cloned()
                .unwrap_or_default();
            let role = topology.database.as_ref().and_then(|d| {
                if d.primary == host.name {
                    Some(DatabaseRole::Primary)
                } else if d.replicas.contains(&host.name) {
                    Some(DatabaseRole::Replica)
                } else {
                    None
                }
            });
            let counts = (0, 0, host_plan.changes.len());
            let options = options.clone();
            let limit = Arc::clone(&limit);
            let reporter = Arc::clone(&reporter);
            let cancel = Arc::clone(&cancel);
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let name = host.name.to_string();
                if cancel.load(Ordering::SeqCst) {
                    return (name, HostOutcome::Skipped, record);
                }
                reporter.event(Event::HostStarted {
                    host: name.clone(),
                    steps: 1,
                });
                reporter.event(Event::Step {
                    host: name.clone(),
                    step: "destroy",
                    done: 0,
                });
                let result = destroy_host(&host, &record, delete_data, role, &options).await;
                match result {
                    Ok(()) => {
                        reporter.event(Event::HostDone {
                            host: name.clone(),
                            counts,
                        });
                        (name, HostOutcome::Done(counts), record)
                    }
                    Err(error) => {
                        reporter.event(Event::HostFailed {
                            host: name.clone(),
                            error: error.to_string(),
                        });
                        (name, HostOutcome::Failed(error, false), record)
                    }
                }
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let Ok((name, outcome, record)) = joined else {
                continue;
            };
            if matches!(outcome, HostOutcome::Done(_)) {
                // With the data kept, what destroy left on purpose stays recorded.
                let kept = kept_after(&record, delete_data);
                if kept == HostRecord::default() {
                    state.hosts.remove(&name);
                } else {
                    state.hosts.insert(name.clone(), kept);
                }
                let _ = state::save(&topology.base_dir, &mut state);
            }
            outcomes.push((name, outcome));
        }
    }
    let cancelled = cancel.load(Ordering::SeqCst);
    (
        ApplyReport {
            hosts: outcomes,
            cancelled,
        },
        state,
    )
}

/// What remains recorded after a successful destroy: the databases and accounts kept when
/// the data is kept, so a later `destroy --delete-data` can still drop them.
fn kept_after(record: &HostRecord, delete_data: bool) -> HostRecord {
    if delete_data {
        return HostRecord::default();
    }
    HostRecord {
        databases: record.databases.clone(),
        database_users: record.database_users.clone(),
        ..HostRecord::default()
    }
}

async fn destroy_host(
    host: &infra_topology::Host,
    record: &HostRecord,
    delete_data: bool,
    role: Option<DatabaseRole>,
    options: &ConnectOptions,
) -> Result<(), HostError> {
    let connection = Connection::open(host, options)
        .await
        .map_err(|e| HostError::Transport(e.to_string()))?;
    let output = connection
        .run_script(&crate::steps::destroy(record, delete_data, role))
        .await
        .map_err(|e| HostError::Transport(e.to_string()));
    connection.close().await;
    let output = output?;
    if output.code == Some(0) {
        return Ok(());
    }
    let line = output
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("infra-failed\t"))
        .unwrap_or("");
    Err(HostError::Step {
        host: host.name.to_string(),
        step: "destroy",
        what: line.split('\t').next().unwrap_or("script").to_owned(),
        message: if line.is_empty() {
            crate::process::tail(&output.stderr, 4)
        } else {
            line.to_owned()
        },
    })
}
