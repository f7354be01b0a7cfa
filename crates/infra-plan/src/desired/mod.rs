//! The desired state of every host: what `apply` converges to and `render` shows. For
//! `destroy`, every host's desired state is [`HostState::absent`].

mod build;
mod tiers;
mod upload;

use std::fmt;
use std::net::IpAddr;

use infra_topology::{
    AccountName, HostName, Name, PackageName, RemotePath, Secret, SqlAccount, SqlName, Tier,
    UnitName,
};
use serde::{Deserialize, Serialize};

pub use build::{EdgeCertificate, desired_state};

use crate::hash::Sha256;

/// Every host's desired state, in apply order of tiers (database first).
#[derive(Debug, Clone, Serialize)]
pub struct DesiredState {
    /// The topology's name.
    pub topology: Name,
    /// One entry per host, sorted by tier order then name.
    pub hosts: Vec<HostState>,
}

impl DesiredState {
    /// The host called `name`.
    pub fn host(&self, name: &HostName) -> Option<&HostState> {
        self.hosts.iter().find(|h| &h.name == name)
    }

    /// The same hosts, each wanting nothing: what `destroy` converges to. The monitoring
    /// exporter's database accounts are named, for destroy drops them even when it keeps the
    /// data: they belong to the monitoring tier, which goes.
    pub fn absent(&self) -> DesiredState {
        DesiredState {
            topology: self.topology.clone(),
            hosts: self
                .hosts
                .iter()
                .map(|h| HostState {
                    dropped_with_tiers: h
                        .database
                        .iter()
                        .flat_map(|d| &d.users)
                        .filter(|u| u.grant == Grant::Monitor)
                        .flat_map(DatabaseAccount::accounts)
                        .collect(),
                    ..HostState::absent(h.name.clone(), h.address)
                })
                .collect(),
        }
    }
}

/// What one host should look like.
#[derive(Debug, Clone, Serialize)]
pub struct HostState {
    /// The host.
    pub name: HostName,
    /// Its address.
    pub address: IpAddr,
    /// The tiers it serves.
    pub tiers: Vec<Tier>,
    /// Debian packages that must be installed.
    pub packages: Vec<PackageName>,
    /// Folders that must exist.
    pub directories: Vec<Directory>,
    /// Files `infra` writes, in the order they are applied.
    pub files: Vec<ManagedFile>,
    /// Files that must not exist (Nginx's default site); destroy puts them back.
    pub absent_files: Vec<AbsentFile>,
    /// Services and what happens to them.
    pub services: Vec<Service>,
    /// Whether `infra`'s firewall table is loaded (from [`crate::paths::FIREWALL_NFT`]).
    pub firewall: FirewallWanted,
    /// Database objects, on database hosts.
    pub database: Option<DatabaseObjects>,
    /// Where the edge certificate (and its key) lives on this host, when it holds one.
    pub edge_certificate: Option<CertificateFiles>,
    /// On app hosts: the migration a new release runs once, before any app host restarts.
    pub migration: Option<Migration>,
    /// For destroy: database accounts dropped even when the data is kept (the monitoring
    /// exporter's, on the primary).
    pub dropped_with_tiers: Vec<SqlAccount>,
}

/// An app's migration: run as the app runs (a transient unit with the app's user, folder and
/// environment file), before the app's unit restarts onto a new release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    /// The app's unit (the one whose restart it comes before).
    pub unit: UnitName,
    /// The command, split into words.
    pub command: Vec<String>,
    /// The app's folder.
    pub working_directory: RemotePath,
    /// The app's environment file.
    pub environment_file: RemotePath,
    /// The app's unit file.
    pub unit_file: RemotePath,
}

/// The files that hold the edge certificate on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CertificateFiles {
    /// One PEM file with the chain and the key (HAProxy).
    Bundle {
        /// The file.
        path: RemotePath,
    },
    /// The chain and the key in two files (Nginx).
    Pair {
        /// The chain.
        chain: RemotePath,
        /// The key.
        key: RemotePath,
    },
}

impl CertificateFiles {
    /// The files.
    pub fn paths(&self) -> Vec<&RemotePath> {
        match self {
            CertificateFiles::Bundle { path } => vec![path],
            CertificateFiles::Pair { chain, key } => vec![chain, key],
        }
    }
}

impl HostState {
    /// A host that should hold nothing of `infra`'s.
    pub fn absent(name: HostName, address: IpAddr) -> HostState {
        HostState {
            name,
            address,
            tiers: Vec::new(),
            packages: Vec::new(),
            directories: Vec::new(),
            files: Vec::new(),
            absent_files: Vec::new(),
            services: Vec::new(),
            firewall: FirewallWanted::Absent,
            database: None,
            edge_certificate: None,
            dropped_with_tiers: Vec::new(),
            migration: None,
        }
    }

    /// The file at `path`, if `infra` manages one there.
    pub fn file(&self, path: &RemotePath) -> Option<&ManagedFile> {
        self.files.iter().find(|f| &f.path == path)
    }
}

/// Whether `infra`'s nftables table should be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FirewallWanted {
    /// Loaded from `firewall.nft`.
    Loaded,
    /// Not there (firewall not managed, or destroy).
    Absent,
}

/// A folder with its owner and mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directory {
    /// Absolute path.
    pub path: RemotePath,
    /// Owner user.
    pub owner: AccountName,
    /// Owner group.
    pub group: AccountName,
    /// Permission bits.
    pub mode: Mode,
}

/// Unix permission bits, printed in octal.
#[derive(Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Mode(pub u32);

impl fmt::Debug for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

/// Where a file's content came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Origin {
    /// Rendered from the named template.
    Template(String),
    /// Copied from a local file (path relative to the topology).
    Upload(String),
    /// Generated by `infra` (e.g. the edge certificate).
    Generated(String),
}

/// The program that checks a file on its host before it takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// `haproxy -c -f FILE`.
    Haproxy,
    /// `keepalived -t -f FILE`.
    Keepalived,
    /// `nginx -t` (the whole configuration tree).
    Nginx,
    /// `nft -c -f FILE`.
    Nftables,
    /// `mariadbd --help --verbose`: fails on an unknown option in any option file.
    Mariadb,
    /// `systemd-analyze verify FILE`.
    SystemdUnit,
    /// `promtool check config FILE` (the rule files it names included).
    PrometheusConfig,
    /// `promtool check rules FILE`.
    PrometheusRules,
    /// `prometheus-blackbox-exporter --config.check --config.file=FILE`.
    Blackbox,
}

impl Check {
    /// Whether the check reads one file (checked before it is renamed into place) or the
    /// whole installed tree (checked right after, with the previous file put back on failure).
    pub fn target(self) -> CheckTarget {
        match self {
            Check::Haproxy
            | Check::Keepalived
            | Check::Nftables
            | Check::PrometheusConfig
            | Check::PrometheusRules
            | Check::Blackbox => CheckTarget::Staged,
            Check::Nginx | Check::Mariadb | Check::SystemdUnit => CheckTarget::Installed,
        }
    }

    /// The command, as the plan shows it.
    pub fn command(self) -> &'static str {
        match self {
            Check::Haproxy => "haproxy -c",
            Check::Keepalived => "keepalived -t",
            Check::Nginx => "nginx -t",
            Check::Nftables => "nft -c",
            Check::Mariadb => "mariadbd --help --verbose",
            Check::SystemdUnit => "systemd-analyze verify",
            Check::PrometheusConfig => "promtool check config",
            Check::PrometheusRules => "promtool check rules",
            Check::Blackbox => "prometheus-blackbox-exporter --config.check",
        }
    }
}

/// What a check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckTarget {
    /// The new file, before it replaces the old one.
    Staged,
    /// Everything installed, the new file included.
    Installed,
}

/// What a service needs when one of its files changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// `systemctl reload`: no connection is dropped.
    Reload,
    /// `systemctl restart`.
    Restart,
}

impl Trigger {
    /// The verb, as the plan shows it.
    pub fn verb(self) -> &'static str {
        match self {
            Trigger::Reload => "reload",
            Trigger::Restart => "restart",
        }
    }
}

/// Whether a file holds a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// No secret: its content may be shown.
    Plain,
    /// It holds a secret: only its redacted form is ever shown, and it is readable by its
    /// owner only.
    Sensitive,
}

/// A service that a file change notifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Notify {
    /// The unit.
    pub unit: UnitName,
    /// Reload or restart.
    pub trigger: Trigger,
}

/// How a file's content may be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Display {
    /// As text, with every secret replaced by [`crate::PLACEHOLDER`].
    Text(String),
    /// Not at all: not UTF-8 text.
    Binary,
}

/// A file `infra` manages.
#[derive(Debug, Clone, Serialize)]
pub struct ManagedFile {
    /// Absolute path on the host.
    pub path: RemotePath,
    /// Owner user.
    pub owner: AccountName,
    /// Owner group.
    pub group: AccountName,
    /// Permission bits.
    pub mode: Mode,
    /// The exact bytes to write.
    #[serde(skip)]
    pub content: Vec<u8>,
    /// The content as it may be shown.
    #[serde(skip)]
    pub display: Display,
    /// Whether the content holds a secret.
    pub sensitivity: Sensitivity,
    /// SHA-256 of `content` (never shown or stored for a sensitive file: see [`crate::hash`]).
    #[serde(skip)]
    pub sha256: Sha256,
    /// Where the content came from.
    pub origin: Origin,
    /// How the host checks the file before it takes effect.
    pub check: Option<Check>,
    /// The service notified when the file changes, and how.
    pub notify: Option<Notify>,
    /// Why it changes, when the plan should say (a certificate's renewal).
    #[serde(skip)]
    pub note: Option<String>,
}

/// A file that must not exist while `infra` manages the host (Nginx's default site).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AbsentFile {
    /// The path.
    pub path: RemotePath,
    /// The package that brings it (so its removal is planned when that package is installed
    /// in the same run).
    pub brought_by: PackageName,
    /// The service to reload once it is gone.
    pub reload: UnitName,
}

/// A systemd service `infra` keeps enabled and running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    /// The unit name, e.g. `haproxy.service`.
    pub unit: UnitName,
    /// What a config change needs.
    pub on_change: Trigger,
    /// How the host shows the service works again after a restart, and for how long to wait.
    pub health: Option<Health>,
    /// What its restart means for the tier.
    pub restart: RestartEffect,
}

/// What a restart of a service means for its tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartEffect {
    /// The host serves less while it restarts: a wave that restarts it rolls through the tier
    /// when the tier says how (`rollout:`).
    TakesHostOut,
    /// Nothing the tier serves stops (an exporter): hosts restart it all at once.
    Unnoticed,
}

/// A health check with its time limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// The check.
    pub gate: HealthGate,
    /// Seconds to keep trying.
    pub timeout_seconds: u32,
}

/// How a host shows that a service works, checked on the host itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum HealthGate {
    /// `GET path` on `127.0.0.1:port`, with `Host: host`, answers 2xx or 3xx.
    Http {
        /// Port.
        port: u16,
        /// Path (checked by the topology's rules).
        path: String,
        /// The `Host` header.
        host: String,
    },
    /// MariaDB answers a query.
    Mariadb,
    /// MariaDB answers and both replication threads run.
    Replication,
}

impl HealthGate {
    /// A short description (`GET :8000/health`).
    pub fn describe(&self) -> String {
        match self {
            HealthGate::Http { port, path, .. } => format!("GET :{port}{path}"),
            HealthGate::Mariadb => "MariaDB answers".to_owned(),
            HealthGate::Replication => "replication running".to_owned(),
        }
    }
}

/// Database objects on a database host.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseObjects {
    /// Primary or replica.
    pub role: DatabaseRole,
    /// The app's database (created on the primary, replicated).
    pub database: SqlName,
    /// Accounts, with the hosts they may connect from.
    pub users: Vec<DatabaseAccount>,
    /// For a replica: where it replicates from.
    pub replication_source: Option<ReplicationSource>,
}

/// The role of a database host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseRole {
    /// Takes writes.
    Primary,
    /// Read-only copy.
    Replica,
}

/// What an account may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "database", rename_all = "snake_case")]
pub enum Grant {
    /// `ALL PRIVILEGES ON db.*`.
    AllOn(SqlName),
    /// `REPLICATION SLAVE ON *.*`.
    Replication,
    /// What MariaDB's exporter reads: `PROCESS, SLAVE MONITOR ON *.*`.
    Monitor,
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grant::AllOn(database) => write!(f, "ALL PRIVILEGES ON {database}.*"),
            Grant::Replication => f.write_str("REPLICATION SLAVE ON *.*"),
            Grant::Monitor => f.write_str("PROCESS, SLAVE MONITOR ON *.*"),
        }
    }
}

/// A database account and where it may connect from.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseAccount {
    /// User name.
    pub name: SqlName,
    /// Client addresses allowed (one account per address, as MariaDB keys them).
    pub hosts: Vec<IpAddr>,
    /// What it may do.
    pub grant: Grant,
    /// The password itself (never serialized).
    #[serde(skip)]
    pub password: Secret,
}

/// Where a replica replicates from.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicationSource {
    /// The primary's address.
    pub host: IpAddr,
    /// Its port.
    pub port: u16,
    /// The replication user.
    pub user: SqlName,
}
