//! Resource changes: what a plan changes, resource by resource, as a person or a pipeline
//! reads it (Terraform's `resource_changes`). Made by the same diff as the steps.

use infra_topology::HostName;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// The kinds of resources `infra` manages.
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

    /// Every kind, for parsing addresses (`infra state rm`).
    pub const ALL: [ResourceKind; 10] = [
        ResourceKind::Package,
        ResourceKind::Directory,
        ResourceKind::File,
        ResourceKind::AbsentFile,
        ResourceKind::Firewall,
        ResourceKind::Database,
        ResourceKind::DatabaseUser,
        ResourceKind::DatabaseGrant,
        ResourceKind::Replication,
        ResourceKind::Service,
    ];
}

/// One resource and what happens to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    /// `host.kind["name"]`.
    pub address: String,
    /// The host.
    pub host: HostName,
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
    /// A unified diff of a file's content, secrets kept out.
    pub diff: Option<String>,
    /// Why, when it is not obvious (`nginx installs it in this run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ResourceChange {
    /// The single action (plans never combine actions today).
    pub fn action(&self) -> Action {
        self.actions.first().copied().unwrap_or(Action::NoOp)
    }
}

/// `host.kind["name"]`.
pub fn address(host: &HostName, kind: ResourceKind, name: &str) -> String {
    format!("{host}.{}[\"{name}\"]", kind.key())
}

/// Collects one host's resource changes.
pub(crate) struct Changes {
    host: HostName,
    pub(crate) list: Vec<ResourceChange>,
}

impl Changes {
    pub(crate) fn new(host: HostName) -> Changes {
        Changes {
            host,
            list: Vec::new(),
        }
    }

    /// Adds a change; `sensitive` lists the attributes whose values are hidden.
    pub(crate) fn push(&mut self, change: Change) {
        let Change {
            kind,
            name,
            action,
            before,
            after,
            sensitive,
            diff,
            note,
        } = change;
        let after_sensitive: serde_json::Map<String, Value> = sensitive
            .iter()
            .map(|key| ((*key).to_owned(), Value::Bool(true)))
            .collect();
        self.list.push(ResourceChange {
            address: address(&self.host, kind, &name),
            host: self.host.clone(),
            kind,
            name,
            actions: vec![action],
            before,
            after,
            after_sensitive: Value::Object(after_sensitive),
            diff,
            note,
        });
    }
}

/// One change, before it gets its address.
pub(crate) struct Change {
    pub kind: ResourceKind,
    pub name: String,
    pub action: Action,
    pub before: Value,
    pub after: Value,
    pub sensitive: &'static [&'static str],
    pub diff: Option<String>,
    pub note: Option<String>,
}

impl Change {
    pub(crate) fn new(kind: ResourceKind, name: impl Into<String>, action: Action) -> Change {
        Change {
            kind,
            name: name.into(),
            action,
            before: Value::Null,
            after: Value::Null,
            sensitive: &[],
            diff: None,
            note: None,
        }
    }

    pub(crate) fn before(mut self, value: Value) -> Change {
        self.before = value;
        self
    }

    pub(crate) fn after(mut self, value: Value) -> Change {
        self.after = value;
        self
    }

    pub(crate) fn sensitive(mut self, keys: &'static [&'static str]) -> Change {
        self.sensitive = keys;
        self
    }

    pub(crate) fn diff(mut self, diff: Option<String>) -> Change {
        self.diff = diff;
        self
    }

    pub(crate) fn note(mut self, note: impl Into<String>) -> Change {
        self.note = Some(note.into());
        self
    }
}
