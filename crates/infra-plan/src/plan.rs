//! The diff between what a host is ([`HostFacts`]) and what the topology wants
//! ([`HostState`]): a list of resource changes in the order apply runs them.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::desired::{DatabaseRole, DesiredState, HostState, ManagedFile, Trigger, hex};
use crate::facts::{FileFact, HostFacts};
use crate::paths;

/// The version of the plan's JSON form; bumped on any incompatible change.
pub const FORMAT_VERSION: &str = "1.0";

/// What happens to a resource, as Terraform spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Nothing to do.
    NoOp,
    /// It will be created.
    Create,
    /// It will be changed in place.
    Update,
    /// It will be removed.
    Delete,
}

/// The kinds of resources `infra` manages, in apply order within a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// A Debian package.
    Package,
    /// A folder.
    Directory,
    /// A file `infra` writes.
    File,
    /// A file that must not exist.
    AbsentFile,
    /// The nftables table `inet infra`.
    Firewall,
    /// A MariaDB database.
    Database,
    /// A MariaDB account at one client address.
    DatabaseUser,
    /// A MariaDB account's privileges.
    DatabaseGrant,
    /// A replica's replication from the primary.
    Replication,
    /// A systemd service kept enabled and running.
    Service,
}

impl ResourceKind {
    /// The name used in addresses: `web1.file["/etc/..."]`.
    pub fn key(self) -> &'static str {
        match self {
            ResourceKind::Package => "package",
            ResourceKind::Directory => "directory",
            ResourceKind::File => "file",
            ResourceKind::AbsentFile => "absent_file",
            ResourceKind::Firewall => "firewall",
            ResourceKind::Database => "database",
            ResourceKind::DatabaseUser => "database_user",
            ResourceKind::DatabaseGrant => "database_grant",
            ResourceKind::Replication => "replication",
            ResourceKind::Service => "service",
        }
    }
}

/// One resource and what happens to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    /// `host.kind["name"]`.
    pub address: String,
    /// The host.
    pub host: String,
    /// Its kind.
    pub kind: ResourceKind,
    /// Its name (package, path, unit, account...).
    pub name: String,
    /// Terraform-style actions: `["create"]`, `["update"]`, `["delete"]`, `["no-op"]`.
    pub actions: Vec<Action>,
    /// Attributes now (`null` when absent). Sensitive attributes hold a placeholder.
    pub before: Value,
    /// Attributes wanted (`null` when it will be gone). Sensitive attributes hold a placeholder.
    pub after: Value,
    /// Which attributes are sensitive (`true` each), Terraform's `after_sensitive`.
    pub after_sensitive: Value,
    /// A unified diff of a file's content, secrets redacted.
    pub diff: Option<String>,
}

impl ResourceChange {
    /// The single action (plans never combine actions today).
    pub fn action(&self) -> Action {
        self.actions.first().copied().unwrap_or(Action::NoOp)
    }
}

/// A service that reloads or restarts because one of its files changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Triggered {
    /// The unit.
    pub unit: String,
    /// Reload or restart.
    pub trigger: Trigger,
    /// The files that cause it.
    pub because: Vec<String>,
}

/// Everything that happens on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostPlan {
    /// The host.
    pub host: String,
    /// SHA-256 of the facts the plan was made from (for the stale-plan check).
    pub facts_sha256: String,
    /// Every managed resource, in apply order, no-ops included.
    pub changes: Vec<ResourceChange>,
    /// Reloads and restarts that changed files cause, once each.
    pub triggered: Vec<Triggered>,
}

/// A host that could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreachable {
    /// The host.
    pub host: String,
    /// Why.
    pub error: String,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// [`FORMAT_VERSION`].
    pub format_version: String,
    /// The topology's name.
    pub topology: String,
    /// SHA-256 of the desired state (every host's files, packages, services...).
    pub desired_sha256: String,
    /// Hosts in apply order.
    pub hosts: Vec<HostPlan>,
    /// Hosts that could not be reached or read.
    pub unreachable: Vec<Unreachable>,
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

    /// True when some resource changes or some service must reload or restart.
    pub fn has_changes(&self) -> bool {
        self.summary() != Summary::default() || self.hosts.iter().any(|h| !h.triggered.is_empty())
    }
}

/// SHA-256 of a value's JSON form.
pub fn fingerprint<T: Serialize>(value: &T) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    hex(&Sha256::digest(bytes))
}

/// Fingerprint of the desired state, content hashes included (no secret in clear).
pub fn desired_fingerprint(desired: &DesiredState) -> String {
    fingerprint(desired)
}

fn address(host: &str, kind: ResourceKind, name: &str) -> String {
    format!("{host}.{}[\"{name}\"]", kind.key())
}

struct Builder<'a> {
    host: &'a str,
    changes: Vec<ResourceChange>,
}

impl Builder<'_> {
    fn push(
        &mut self,
        kind: ResourceKind,
        name: &str,
        action: Action,
        before: Value,
        after: Value,
        diff: Option<String>,
    ) {
        self.push_sensitive(kind, name, action, before, after, json!({}), diff);
    }

    #[expect(clippy::too_many_arguments, reason = "one record's fields")]
    fn push_sensitive(
        &mut self,
        kind: ResourceKind,
        name: &str,
        action: Action,
        before: Value,
        after: Value,
        after_sensitive: Value,
        diff: Option<String>,
    ) {
        self.changes.push(ResourceChange {
            address: address(self.host, kind, name),
            host: self.host.to_owned(),
            kind,
            name: name.to_owned(),
            actions: vec![action],
            before,
            after,
            after_sensitive,
            diff,
        });
    }
}

/// Reloads and restarts owed from an earlier run that stopped before its service step.
pub type Pending = std::collections::BTreeMap<String, Vec<(String, Trigger)>>;

/// Compares one host's desired state with its facts; `pending` are reloads or restarts an
/// earlier, interrupted run still owes on this host.
pub fn diff_host(state: &HostState, facts: &HostFacts, pending: &[(String, Trigger)]) -> HostPlan {
    let host = state.name.as_str();
    let mut builder = Builder {
        host,
        changes: Vec::new(),
    };
    for package in &state.packages {
        let installed = facts.packages.get(package).cloned().flatten();
        let action = if installed.is_some() {
            Action::NoOp
        } else {
            Action::Create
        };
        let before = installed
            .as_ref()
            .map_or(Value::Null, |v| json!({ "version": v }));
        builder.push(
            ResourceKind::Package,
            package,
            action,
            before,
            json!({ "installed": true }),
            None,
        );
    }
    for directory in &state.directories {
        let now = facts.directories.get(&directory.path).cloned().flatten();
        let after = json!({ "owner": directory.owner, "group": directory.group, "mode": directory.mode.to_string() });
        let (action, before) = match &now {
            None => (Action::Create, Value::Null),
            Some(o) => {
                let before = json!({ "owner": o.owner, "group": o.group, "mode": format!("{:04o}", o.mode) });
                let same = o.owner == directory.owner
                    && o.group == directory.group
                    && o.mode == directory.mode.0;
                (if same { Action::NoOp } else { Action::Update }, before)
            }
        };
        builder.push(
            ResourceKind::Directory,
            &directory.path,
            action,
            before,
            after,
            None,
        );
    }
    let mut changed_files = Vec::new();
    for file in &state.files {
        let (action, before, diff) = file_change(file, facts.files.get(&file.path));
        if action != Action::NoOp && file.content_differs(facts.files.get(&file.path)) {
            changed_files.push(file);
        }
        let after = json!({
            "owner": file.owner, "group": file.group, "mode": file.mode.to_string(),
            "sha256": file.sha256, "content": if file.sensitive { crate::PLACEHOLDER.to_owned() } else { "(see diff)".to_owned() },
        });
        let sensitive = if file.sensitive {
            json!({ "content": true })
        } else {
            json!({})
        };
        builder.push_sensitive(
            ResourceKind::File,
            &file.path,
            action,
            before,
            after,
            sensitive,
            diff,
        );
    }
    for path in &state.absent_files {
        let present = matches!(
            facts.files.get(path),
            Some(FileFact::File { .. } | FileFact::Other)
        );
        let action = if present {
            Action::Delete
        } else {
            Action::NoOp
        };
        let before = if present {
            json!({ "exists": true })
        } else {
            Value::Null
        };
        builder.push(
            ResourceKind::AbsentFile,
            path,
            action,
            before,
            Value::Null,
            None,
        );
    }
    if let Some(rules) = state.files.iter().find(|f| f.path == paths::FIREWALL_NFT) {
        let fact = &facts.firewall;
        // The file changes now, or it changed earlier but was never loaded (a run that stopped).
        let firewall_file_changes = changed_files.iter().any(|f| f.path == paths::FIREWALL_NFT)
            || fact.recorded_file_sha256.as_deref() != Some(rules.sha256.as_str());
        let action = if fact.loaded_sha256.is_none() {
            Action::Create
        } else if !fact.is_current() || firewall_file_changes {
            Action::Update
        } else {
            Action::NoOp
        };
        let before = match (&fact.loaded_sha256, fact.is_current()) {
            (None, _) => Value::Null,
            (Some(_), true) => json!({ "loaded": true, "changed_since_apply": false }),
            (Some(_), false) => json!({ "loaded": true, "changed_since_apply": true }),
        };
        builder.push(
            ResourceKind::Firewall,
            "inet infra",
            action,
            before,
            json!({ "loaded": true, "from": paths::FIREWALL_NFT }),
            None,
        );
    }
    if let Some(objects) = &state.database {
        let db = facts.database.clone().unwrap_or_default();
        let reachable = db.reachable;
        let present = |yes: bool| if yes { Action::NoOp } else { Action::Create };
        if objects.role == DatabaseRole::Primary {
            let exists = reachable && db.databases.contains(&objects.database);
            builder.push(
                ResourceKind::Database,
                &objects.database,
                present(exists),
                if exists {
                    json!({ "exists": true })
                } else {
                    Value::Null
                },
                json!({ "exists": true }),
                None,
            );
            for account in &objects.users {
                for client in &account.hosts {
                    let name = format!("{}@{}", account.name, client);
                    let want = mysql_native_password(account.password.expose());
                    let action = match db.users.get(&name) {
                        None => Action::Create,
                        Some(hash) if hash.eq_ignore_ascii_case(&want) => Action::NoOp,
                        Some(_) => Action::Update,
                    };
                    let before = if db.users.contains_key(&name) {
                        json!({ "password": crate::PLACEHOLDER })
                    } else {
                        Value::Null
                    };
                    builder.push_sensitive(
                        ResourceKind::DatabaseUser,
                        &name,
                        action,
                        before,
                        json!({ "password": crate::PLACEHOLDER }),
                        json!({ "password": true }),
                        None,
                    );
                    let granted = if account.on == "*.*" {
                        db.replication_grants.contains(&name)
                    } else {
                        db.database_grants.contains(&name)
                    };
                    builder.push(
                        ResourceKind::DatabaseGrant,
                        &name,
                        present(granted),
                        if granted {
                            json!({ "privileges": account.privileges, "on": account.on })
                        } else {
                            Value::Null
                        },
                        json!({ "privileges": account.privileges, "on": account.on }),
                        None,
                    );
                }
            }
        }
        if let Some(source) = &objects.replication_source {
            let now = db.replication.as_ref();
            let right = now.is_some_and(|r| {
                r.source_host == source.host
                    && r.user == source.user
                    && r.source_port == source.port.to_string()
                    && r.using_gtid.eq_ignore_ascii_case("Slave_Pos")
            });
            let running = now.is_some_and(|r| r.io_running == "Yes" && r.sql_running == "Yes");
            let action = match (now, right && running) {
                (None, _) => Action::Create,
                (Some(_), true) => Action::NoOp,
                (Some(_), false) => Action::Update,
            };
            let before = now.map_or(Value::Null, |r| {
                json!({ "source": format!("{}:{}", r.source_host, r.source_port), "user": r.user, "gtid": r.using_gtid, "io_running": r.io_running, "sql_running": r.sql_running })
            });
            builder.push(
                ResourceKind::Replication,
                &source.host,
                action,
                before,
                json!({ "source": format!("{}:{}", source.host, source.port), "user": source.user, "gtid": "Slave_Pos", "io_running": "Yes", "sql_running": "Yes" }),
                None,
            );
        }
    }
    for service in &state.services {
        let fact = facts
            .services
            .get(&service.unit)
            .cloned()
            .unwrap_or_default();
        let action = if fact.enabled.is_empty() || fact.enabled == "not-found" {
            Action::Create
        } else if fact.is_up() {
            Action::NoOp
        } else {
            Action::Update
        };
        let before = if fact.enabled.is_empty() {
            Value::Null
        } else {
            json!({ "enabled": fact.enabled, "active": fact.active })
        };
        builder.push(
            ResourceKind::Service,
            &service.unit,
            action,
            before,
            json!({ "enabled": "enabled", "active": "active" }),
            None,
        );
    }
    let mut triggered: Vec<Triggered> = Vec::new();
    for file in changed_files {
        if let Some((unit, trigger)) = &file.notify {
            match triggered.iter_mut().find(|t| &t.unit == unit) {
                Some(existing) => {
                    existing.trigger = existing.trigger.max(*trigger);
                    existing.because.push(file.path.clone());
                }
                None => triggered.push(Triggered {
                    unit: unit.clone(),
                    trigger: *trigger,
                    because: vec![file.path.clone()],
                }),
            }
        }
    }
    for (unit, trigger) in pending {
        if !state.services.iter().any(|s| &s.unit == unit) {
            continue;
        }
        match triggered.iter_mut().find(|t| &t.unit == unit) {
            Some(existing) => existing.trigger = existing.trigger.max(*trigger),
            None => triggered.push(Triggered {
                unit: unit.clone(),
                trigger: *trigger,
                because: vec!["owed by an earlier apply that stopped".to_owned()],
            }),
        }
    }
    HostPlan {
        host: host.to_owned(),
        facts_sha256: fingerprint(facts),
        changes: builder.changes,
        triggered,
    }
}

impl ManagedFile {
    /// Whether the bytes on the host differ from the desired content (not only the mode).
    fn content_differs(&self, fact: Option<&FileFact>) -> bool {
        !matches!(fact, Some(FileFact::File { sha256, .. }) if *sha256 == self.sha256)
    }
}

fn file_change(file: &ManagedFile, fact: Option<&FileFact>) -> (Action, Value, Option<String>) {
    match fact {
        None | Some(FileFact::Absent) => {
            let diff = file
                .display
                .as_ref()
                .filter(|_| matches!(file.origin, crate::Origin::Template(_)))
                .map(|text| crate::diff::unified(&file.path, "", text));
            (Action::Create, Value::Null, diff)
        }
        Some(FileFact::Other) => (
            Action::Update,
            json!({ "type": "not a regular file" }),
            None,
        ),
        Some(FileFact::File {
            ownership,
            sha256,
            content,
        }) => {
            let before = json!({
                "owner": ownership.owner, "group": ownership.group, "mode": format!("{:04o}", ownership.mode), "sha256": sha256,
            });
            let same_meta = ownership.owner == file.owner
                && ownership.group == file.group
                && ownership.mode == file.mode.0;
            if *sha256 == file.sha256 {
                return (
                    if same_meta {
                        Action::NoOp
                    } else {
                        Action::Update
                    },
                    before,
                    None,
                );
            }
            let diff = match (content, &file.display) {
                (Some(old), Some(new)) => {
                    let old = String::from_utf8_lossy(old);
                    let old = if file.sensitive {
                        crate::diff::redact_old(&old, file)
                    } else {
                        old.into_owned()
                    };
                    Some(crate::diff::unified(&file.path, &old, new))
                }
                _ => None,
            };
            (Action::Update, before, diff)
        }
    }
}

/// MariaDB's `mysql_native_password` hash: `*` and the upper-case hex of SHA1(SHA1(password)).
pub fn mysql_native_password(password: &str) -> String {
    use sha1::Digest as _;
    let once = sha1::Sha1::digest(password.as_bytes());
    let twice = sha1::Sha1::digest(once);
    format!("*{}", hex(&twice).to_uppercase())
}

/// Plans every host whose facts are given, in the desired state's order.
pub fn diff(
    desired: &DesiredState,
    facts: &[(String, HostFacts)],
    pending: &Pending,
    unreachable: Vec<Unreachable>,
) -> Plan {
    let hosts = desired
        .hosts
        .iter()
        .filter_map(|state| {
            let (_, host_facts) = facts.iter().find(|(name, _)| name == state.name.as_str())?;
            let owed = pending
                .get(state.name.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default();
            Some(diff_host(state, host_facts, owed))
        })
        .collect();
    Plan {
        format_version: FORMAT_VERSION.to_owned(),
        topology: desired.topology.clone(),
        desired_sha256: desired_fingerprint(desired),
        hosts,
        unreachable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_native_password_hash_matches_mariadb() {
        // SELECT PASSWORD('password') in MariaDB.
        assert_eq!(
            mysql_native_password("password"),
            "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
        );
    }
}
