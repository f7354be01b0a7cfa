//! The plan: the program `apply` runs. Everything `apply` and `destroy` do on a host is
//! described here, as typed steps grouped into ordered waves of per-host tasks; the text and
//! JSON views are derived from it and never read back.

mod change;
mod diff;
mod order;
mod step;

use infra_topology::{HostName, Name};
use serde::{Deserialize, Serialize};

pub use change::{Action, ResourceChange, ResourceKind, address};
pub use diff::{PlanInput, content_id, make, mysql_native_password};
pub use order::TierOrder;
pub use step::{
    Backup, ContentId, FileState, PasswordOf, Precondition, Restore, SqlStep, Step, StepKind,
    UndoPhase,
};

use crate::hash::Fingerprint;

/// The version of the plan's saved and JSON forms; bumped on any incompatible change.
pub const FORMAT_VERSION: &str = "2.0";

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// [`FORMAT_VERSION`].
    pub format_version: String,
    /// Converging to the topology, or removing what `infra` made.
    pub mode: PlanMode,
    /// The topology's name.
    pub topology: Name,
    /// Keyed fingerprint of the desired state (for the stale-plan check).
    pub desired: Fingerprint,
    /// Every planned host, in the order of the tiers.
    pub hosts: Vec<HostPlan>,
    /// The program: waves in order; a wave's tasks run one at a time or in parallel.
    pub waves: Vec<Wave>,
    /// Hosts that could not be reached or read.
    pub unreachable: Vec<Unreachable>,
    /// The DNS names the topology gives for hosts, and what each resolved to when the plan was
    /// made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<ResolvedName>,
}

/// A host's DNS name and the address it resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedName {
    /// The host.
    pub host: HostName,
    /// Which of its keys gave the name: `address` or `ssh_address`.
    pub key: String,
    /// The name.
    pub name: String,
    /// What it resolved to.
    pub address: std::net::IpAddr,
}

impl ResolvedName {
    /// Every name `topology` gives for a host, as resolved when it was read.
    pub fn of(topology: &infra_topology::Topology) -> Vec<ResolvedName> {
        topology
            .hosts
            .iter()
            .flat_map(|host| {
                host.resolved_names()
                    .into_iter()
                    .map(|(key, name, address)| ResolvedName {
                        host: host.name.clone(),
                        key: key.to_owned(),
                        name: name.to_owned(),
                        address,
                    })
            })
            .collect()
    }
}

/// What a plan converges to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", content = "data", rename_all = "snake_case")]
pub enum PlanMode {
    /// The topology.
    Apply,
    /// Nothing of `infra`'s: destroy.
    Destroy(DataPolicy),
}

/// Whether destroy drops the databases and accounts `infra` created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataPolicy {
    /// Keep them (the default).
    Keep,
    /// Drop them, and MariaDB's data folders (`--delete-data`).
    Delete,
}

/// One host's part of the plan, as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostPlan {
    /// The host.
    pub host: HostName,
    /// What the host must still be when the plan is applied.
    pub expects: Expectation,
    /// Every resource, no-ops included.
    pub changes: Vec<ResourceChange>,
    /// Things worth saying about the host (no record to destroy, an interrupted install...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What a host must still be when a saved plan is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectation {
    /// Keyed fingerprint of the host's facts when the plan was made.
    pub facts: Fingerprint,
    /// The serial of its record then (`None`: it had none). Every run that changes the host
    /// raises it, so a plan made before another run is refused.
    pub serial: Option<u64>,
}

/// A group of tasks: they start after every task of the previous wave ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wave {
    /// What the wave does (`packages`, `load_balancer`...).
    pub label: String,
    /// Whether its tasks run one at a time (load balancers) or in parallel.
    pub concurrency: Concurrency,
    /// One task per host.
    pub tasks: Vec<Task>,
    /// Hosts of this wave's tier that could not be planned: they count as failed hosts of the
    /// wave for `--max-fail`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreachable: Vec<HostName>,
}

/// How a wave's tasks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Concurrency {
    /// As many at once as `--parallelism` allows.
    Parallel,
    /// One after the other (load balancers, so the VIP always has a working holder).
    OneAtATime,
    /// A rollout: at most `batch` hosts at once, each passing its health check before the
    /// next starts; the first host that fails stops it, and hosts that cannot be reached
    /// count against `max_unavailable`.
    Rolling {
        /// Hosts at once.
        batch: usize,
        /// The most hosts of the tier out of service at once.
        max_unavailable: usize,
    },
}

/// A host's steps in one wave: one round trip, stopping at the first step that does not
/// succeed (and then undoing what can be undone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// The host.
    pub host: HostName,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// A host that could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreachable {
    /// The host.
    pub host: HostName,
    /// Why.
    pub error: String,
}

/// Counts of a plan, as its summary line says them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Resources to create.
    pub add: usize,
    /// Resources to update.
    pub change: usize,
    /// Resources to delete.
    pub destroy: usize,
}

/// A service that reloads or restarts in the plan, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Triggered {
    /// The host.
    pub host: HostName,
    /// The unit.
    pub unit: infra_topology::UnitName,
    /// `reload` or `restart`.
    pub action: crate::desired::Trigger,
    /// Why.
    pub because: String,
}

impl Plan {
    /// How many resources each action touches.
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for change in self.hosts.iter().flat_map(|h| &h.changes) {
            match change.action() {
                Action::Create => summary.add += 1,
                Action::Update => summary.change += 1,
                Action::Delete => summary.destroy += 1,
                Action::NoOp => {}
            }
        }
        summary
    }

    /// Whether the plan does anything to any host.
    pub fn has_changes(&self) -> bool {
        self.waves
            .iter()
            .flat_map(|w| &w.tasks)
            .flat_map(|t| &t.steps)
            .any(|s| !s.kind.is_bookkeeping())
    }

    /// The host's part, if it was planned.
    pub fn host(&self, host: &HostName) -> Option<&HostPlan> {
        self.hosts.iter().find(|h| &h.host == host)
    }

    /// Every step of `host`, in the order they run.
    pub fn steps_of<'a>(&'a self, host: &'a HostName) -> impl Iterator<Item = &'a Step> + 'a {
        self.waves
            .iter()
            .flat_map(|w| &w.tasks)
            .filter(move |t| &t.host == host)
            .flat_map(|t| &t.steps)
    }

    /// Hosts with at least one task.
    pub fn changed_hosts(&self) -> Vec<&HostName> {
        let mut hosts: Vec<&HostName> = Vec::new();
        for task in self.waves.iter().flat_map(|w| &w.tasks) {
            if !hosts.contains(&&task.host) {
                hosts.push(&task.host);
            }
        }
        hosts
    }

    /// Every reload and restart, with its reason, in the order they run.
    pub fn triggered(&self) -> Vec<Triggered> {
        let mut triggered = Vec::new();
        for task in self.waves.iter().flat_map(|w| &w.tasks) {
            for step in &task.steps {
                let Some((unit, action)) = step.kind.service_action() else {
                    continue;
                };
                triggered.push(Triggered {
                    host: task.host.clone(),
                    unit: unit.clone(),
                    action,
                    because: step.reason.clone().unwrap_or_default(),
                });
            }
        }
        triggered
    }
}
