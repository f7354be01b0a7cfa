//! The validated topology: what every later stage works from.
//!
//! Every value here has passed [`crate::validate`]: names and paths are safe to put in a
//! shell command or a file path, references point at declared hosts, and secrets are resolved.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

pub use crate::names::{
    AccountName, HostName, Name, PackageName, RemotePath, SqlAccount, SqlName, UnitName,
};
use crate::secret::Secret;

/// A checked topology.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The topology's name (safe as a file and container name).
    pub name: Name,
    /// The folder holding the topology file; relative paths in it start here.
    pub base_dir: PathBuf,
    /// Template override folder, if any.
    pub templates: Option<PathBuf>,
    /// Every host, sorted by name.
    pub hosts: Vec<Host>,
    /// The load balancer tier.
    pub load_balancer: Option<LoadBalancer>,
    /// The web tier.
    pub web: Option<Web>,
    /// The app tier.
    pub app: Option<App>,
    /// The database tier.
    pub database: Option<Database>,
    /// The monitoring tier.
    pub monitoring: Option<Monitoring>,
    /// The firewall settings.
    pub firewall: Firewall,
    /// Lab settings.
    pub lab: Lab,
}

impl Topology {
    /// The host called `name`.
    pub fn host(&self, name: &HostName) -> Option<&Host> {
        self.hosts.iter().find(|h| &h.name == name)
    }

    /// The hosts of `tier`, in the order the topology lists them.
    pub fn tier_hosts(&self, tier: Tier) -> Vec<&Host> {
        let names: Vec<&HostName> = match tier {
            Tier::LoadBalancer => self.load_balancer.iter().flat_map(|t| &t.hosts).collect(),
            Tier::Web => self.web.iter().flat_map(|t| &t.hosts).collect(),
            Tier::App => self.app.iter().flat_map(|t| &t.hosts).collect(),
            Tier::Database => self
                .database
                .iter()
                .flat_map(|d| std::iter::once(&d.primary).chain(&d.replicas))
                .collect(),
            Tier::Monitoring => self.monitoring.iter().flat_map(|m| &m.hosts).collect(),
        };
        names.into_iter().filter_map(|n| self.host(n)).collect()
    }

    /// Every secret the topology resolved, so output can be scrubbed of their values.
    pub fn secrets(&self) -> Vec<&Secret> {
        let mut secrets = Vec::new();
        if let Some(lb) = &self.load_balancer {
            secrets.extend(lb.vrrp_password.iter());
            secrets.extend(lb.stats.iter().map(|s| &s.password));
            match &lb.tls.certificate {
                CertificateSource::Files { key, .. } => secrets.push(key),
                CertificateSource::Generated => {}
            }
        }
        if let Some(app) = &self.app {
            secrets.extend(app.environment.iter().filter_map(|(_, v)| match v {
                EnvValue::Secret(secret) => Some(secret),
                EnvValue::Plain(_) => None,
            }));
        }
        secrets.extend(self.database_users().into_iter().map(|u| &u.password));
        secrets
    }

    /// Every database account the topology names (the app's, replication's and the
    /// monitoring exporter's), which SQL steps look passwords up in by name.
    pub fn database_users(&self) -> Vec<&DatabaseUser> {
        let mut users = Vec::new();
        if let Some(db) = &self.database {
            users.push(&db.app_user);
            users.extend(db.replication_user.iter());
            users.extend(
                self.monitoring
                    .iter()
                    .filter_map(|m| m.database_user.as_ref()),
            );
        }
        users
    }

    /// The tiers `host` belongs to.
    pub fn tiers_of(&self, host: &HostName) -> Vec<Tier> {
        Tier::ALL
            .into_iter()
            .filter(|tier| self.tier_hosts(*tier).iter().any(|h| &h.name == host))
            .collect()
    }
}

/// The tiers, in apply order (database first, monitoring last: what it watches is up by then).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// MariaDB primary and replicas.
    Database,
    /// The user's app.
    App,
    /// Nginx.
    Web,
    /// HAProxy + keepalived.
    LoadBalancer,
    /// Prometheus (every host of every tier also runs its exporters).
    Monitoring,
}

impl Tier {
    /// Every tier in apply order.
    pub const ALL: [Tier; 5] = [
        Tier::Database,
        Tier::App,
        Tier::Web,
        Tier::LoadBalancer,
        Tier::Monitoring,
    ];

    /// The tier's key in the topology file.
    pub fn key(self) -> &'static str {
        match self {
            Tier::Database => "database",
            Tier::App => "app",
            Tier::Web => "web",
            Tier::LoadBalancer => "load_balancer",
            Tier::Monitoring => "monitoring",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// One machine.
#[derive(Debug, Clone)]
pub struct Host {
    /// Its name.
    pub name: HostName,
    /// Its address: where the tiers reach it (and the firewall admits it from).
    pub address: IpAddr,
    /// The DNS name `address` was resolved from, when the topology gives a name.
    pub address_name: Option<String>,
    /// How to reach it.
    pub ssh: Ssh,
    /// How to become root there.
    pub become_method: Become,
}

impl Host {
    /// Where `infra` connects over SSH: `ssh_address` when the topology gives one, else
    /// `address`.
    pub fn ssh_address(&self) -> IpAddr {
        self.ssh.address.unwrap_or(self.address)
    }

    /// The port `infra` connects to: the one `ssh_address` names, else `ssh.port` (where sshd
    /// listens, and what the firewall opens).
    pub fn ssh_port(&self) -> u16 {
        self.ssh.address_port.unwrap_or(self.ssh.port)
    }

    /// The DNS names the topology gives for this host, each with what it is for and the
    /// address it resolved to.
    pub fn resolved_names(&self) -> Vec<(&'static str, &str, IpAddr)> {
        let mut names = Vec::new();
        if let Some(name) = &self.address_name {
            names.push(("address", name.as_str(), self.address));
        }
        if let (Some(name), Some(address)) = (&self.ssh.address_name, self.ssh.address) {
            names.push(("ssh_address", name.as_str(), address));
        }
        names
    }
}

/// SSH settings after defaults are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ssh {
    /// Login user.
    pub user: String,
    /// Port.
    pub port: u16,
    /// Private key, if one is named (otherwise OpenSSH's own configuration decides). It is used
    /// for the jump hosts too.
    pub identity_file: Option<PathBuf>,
    /// `ProxyJump` hops, each checked (`[user@]host[:port]`).
    pub jump: Vec<String>,
    /// Where to connect, when the topology gives an `ssh_address` (else the host's address).
    pub address: Option<IpAddr>,
    /// The DNS name `address` was resolved from, when the topology gives a name.
    pub address_name: Option<String>,
    /// The port to connect to when `ssh_address` names one (a port forward to `port`).
    pub address_port: Option<u16>,
}

/// How commands get root on a host.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Become {
    /// The login user is root.
    None,
    /// `sudo -n` (no password prompt, no tty).
    Sudo,
}

/// HAProxy's balancing algorithm.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// In turn.
    Roundrobin,
    /// Fewest connections.
    Leastconn,
    /// By client address (sticky).
    Source,
}

impl Algorithm {
    /// The HAProxy keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Algorithm::Roundrobin => "roundrobin",
            Algorithm::Leastconn => "leastconn",
            Algorithm::Source => "source",
        }
    }
}

/// The load balancer tier.
#[derive(Debug, Clone)]
pub struct LoadBalancer {
    /// Hosts, the preferred master first.
    pub hosts: Vec<HostName>,
    /// The virtual IP with its prefix.
    pub vip: IpNet,
    /// Interface for the VIP.
    pub interface: String,
    /// VRRP router ID.
    pub virtual_router_id: u8,
    /// VRRP authentication secret (exactly 8 characters: keepalived uses no more).
    pub vrrp_password: Option<Secret>,
    /// Whether the preferred master takes the VIP back.
    pub preempt: Preempt,
    /// Balancing algorithm.
    pub algorithm: Algorithm,
    /// Health check of the web servers.
    pub health_check: HealthCheck,
    /// Stats and Prometheus endpoint.
    pub stats: Option<Stats>,
    /// TLS at the edge.
    pub tls: Tls,
}

impl LoadBalancer {
    /// The stats port when `stats:` does not name one.
    pub const DEFAULT_STATS_PORT: u16 = 8404;

    /// Where HAProxy serves `/metrics`: the stats listener (its default port without
    /// `stats:`, when the monitoring tier needs it).
    pub fn metrics_port(&self) -> u16 {
        self.stats
            .as_ref()
            .map_or(LoadBalancer::DEFAULT_STATS_PORT, |s| s.port)
    }
}

/// Whether the preferred VRRP master takes the VIP back when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preempt {
    /// The first host takes the VIP back.
    TakeBack,
    /// The VIP stays where it is (`nopreempt`).
    Stay,
}

/// How a restart goes through a tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rollout {
    /// Hosts restarted at once.
    pub batch: Batch,
    /// The most hosts of the tier out of service at once (unreachable ones included).
    pub max_unavailable: Option<u32>,
    /// Seconds a restarted host has to pass its health check.
    pub timeout_seconds: u32,
}

impl Rollout {
    /// The default for a tier whose health check may take `timeout_seconds`.
    pub fn one_at_a_time(timeout_seconds: u32) -> Rollout {
        Rollout {
            batch: Batch::Hosts(1),
            max_unavailable: None,
            timeout_seconds,
        }
    }

    /// How many of `hosts` hosts restart at once (at least 1).
    pub fn batch_of(&self, hosts: usize) -> usize {
        let size = match self.batch {
            Batch::Hosts(n) => usize::try_from(n).unwrap_or(usize::MAX),
            Batch::Percent(p) => hosts.saturating_mul(usize::from(p)) / 100,
        };
        size.clamp(1, hosts.max(1))
    }

    /// The most hosts of `hosts` out of service at once.
    pub fn max_unavailable_of(&self, hosts: usize) -> usize {
        match self.max_unavailable {
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            None => self.batch_of(hosts),
        }
    }
}

/// A batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Batch {
    /// This many hosts.
    Hosts(u32),
    /// This share of the tier's hosts, in percent (1-100).
    Percent(u8),
}

/// An HTTP health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Path requested.
    pub path: String,
    /// Milliseconds between checks.
    pub interval_ms: u32,
    /// Successes before a server is used.
    pub rise: u16,
    /// Failures before a server is dropped.
    pub fall: u16,
}

/// HAProxy stats and Prometheus endpoint.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Listener port.
    pub port: u16,
    /// Stats user.
    pub user: String,
    /// Stats password.
    pub password: Secret,
    /// Networks allowed to reach it.
    pub allow_from: Vec<IpNet>,
}

/// Where TLS is terminated.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// HAProxy terminates TLS and redirects HTTP to HTTPS.
    Terminate,
    /// HAProxy forwards TLS; Nginx terminates it.
    Passthrough,
    /// Plain HTTP only.
    Off,
}

impl TlsMode {
    /// The mode as the topology writes it.
    pub fn key(self) -> &'static str {
        match self {
            TlsMode::Terminate => "terminate",
            TlsMode::Passthrough => "passthrough",
            TlsMode::Off => "off",
        }
    }
}

/// TLS settings.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The mode.
    pub mode: TlsMode,
    /// The certificate.
    pub certificate: CertificateSource,
}

/// Where the edge certificate comes from.
#[derive(Debug, Clone)]
pub enum CertificateSource {
    /// `infra` generates a self-signed one once and then reads it back from the hosts.
    Generated,
    /// Given by the user.
    Files {
        /// PEM chain (public, read from this local path).
        cert: PathBuf,
        /// PEM private key.
        key: Secret,
    },
}

/// The web tier.
#[derive(Debug, Clone)]
pub struct Web {
    /// Hosts.
    pub hosts: Vec<HostName>,
    /// Site name.
    pub server_name: String,
    /// HTTP port.
    pub port: u16,
    /// HTTPS port (passthrough mode).
    pub tls_port: u16,
    /// Local static files folder (inside the topology's folder).
    pub static_dir: Option<PathBuf>,
    /// Remote document root.
    pub root: RemotePath,
    /// Path proxied to the app tier, starting and ending with `/`, never `/` alone.
    pub app_path: String,
    /// `stub_status` port.
    pub status_port: u16,
    /// How a restart of Nginx goes through the tier.
    pub rollout: Rollout,
}

/// A value of the app's environment.
#[derive(Debug, Clone)]
pub enum EnvValue {
    /// Written in the topology.
    Plain(String),
    /// A secret.
    Secret(Secret),
}

/// The app tier.
#[derive(Debug, Clone)]
pub struct App {
    /// Hosts.
    pub hosts: Vec<HostName>,
    /// Service name (never one Debian or `infra` already uses).
    pub name: Name,
    /// Local source folder (inside the topology's folder).
    pub source: Option<PathBuf>,
    /// Remote install folder.
    pub install_dir: RemotePath,
    /// Debian packages it needs.
    pub packages: Vec<PackageName>,
    /// The start command, split into words.
    pub command: Vec<String>,
    /// The migration command, split into words.
    pub migrate: Option<Vec<String>>,
    /// Listening port.
    pub port: u16,
    /// Health path.
    pub health_path: String,
    /// Extra environment, sorted by name.
    pub environment: Vec<(String, EnvValue)>,
    /// How a restart of the app goes through the tier.
    pub rollout: Rollout,
}

impl App {
    /// Where the app's health check answers at the edge: the web tier's app path with the
    /// health path appended (`/api/` and `/health` give `/api/health`); the web tier passes it
    /// to the app's own health path.
    pub fn health_path_at_edge(&self, web: &Web) -> String {
        format!(
            "{}/{}",
            web.app_path.trim_end_matches('/'),
            self.health_path.trim_start_matches('/')
        )
    }

    /// The app's systemd unit, `<name>.service`.
    pub fn unit(&self) -> UnitName {
        UnitName::service(&self.name)
    }
}

/// The database tier.
#[derive(Debug, Clone)]
pub struct Database {
    /// The primary.
    pub primary: HostName,
    /// Read-only replicas.
    pub replicas: Vec<HostName>,
    /// The app's database.
    pub name: SqlName,
    /// Port.
    pub port: u16,
    /// The app's account.
    pub app_user: DatabaseUser,
    /// The replication account (present when there are replicas).
    pub replication_user: Option<DatabaseUser>,
    /// How a restart of MariaDB goes through the replicas.
    pub rollout: Rollout,
}

/// A database account.
#[derive(Debug, Clone)]
pub struct DatabaseUser {
    /// User name.
    pub name: SqlName,
    /// Password.
    pub password: Secret,
}

/// The monitoring tier: Prometheus scraping an exporter on every host.
#[derive(Debug, Clone)]
pub struct Monitoring {
    /// Hosts running Prometheus.
    pub hosts: Vec<HostName>,
    /// Prometheus's UI and API port.
    pub port: u16,
    /// Seconds between scrapes.
    pub scrape_interval_seconds: u32,
    /// Days of history kept.
    pub retention_days: u32,
    /// The account of MariaDB's exporter (present when there is a database tier).
    pub database_user: Option<DatabaseUser>,
    /// When the shipped alerts fire.
    pub alerts: Alerts,
}

impl Monitoring {
    /// `prometheus-node-exporter`'s port, on every monitored host.
    pub const NODE_EXPORTER_PORT: u16 = 9100;
    /// `prometheus-nginx-exporter`'s port, on web hosts.
    pub const NGINX_EXPORTER_PORT: u16 = 9113;
    /// `prometheus-mysqld-exporter`'s port, on database hosts.
    pub const MYSQLD_EXPORTER_PORT: u16 = 9104;
    /// `prometheus-blackbox-exporter`'s port, on monitoring hosts (it probes the app's health
    /// and the VIP).
    pub const BLACKBOX_EXPORTER_PORT: u16 = 9115;
}

/// Thresholds of the shipped alert rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alerts {
    /// Seconds a condition holds before its alert fires.
    pub for_seconds: u32,
    /// Replication lag, in seconds, that alerts.
    pub replica_lag_seconds: u32,
    /// Percentage of a filesystem used that alerts.
    pub disk_used_percent: u8,
    /// Percentage of 5xx answers that alerts.
    pub app_5xx_percent: u8,
}

/// Whether `infra` manages a firewall on every host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirewallMode {
    /// `infra` loads its own nftables table on every host.
    Managed,
    /// `infra` leaves the firewall alone.
    Unmanaged,
}

/// Firewall settings.
#[derive(Debug, Clone)]
pub struct Firewall {
    /// Whether `infra` manages the firewall.
    pub mode: FirewallMode,
    /// Networks allowed to SSH and to reach monitoring endpoints.
    pub admin_sources: Vec<IpNet>,
}

/// Lab settings.
#[derive(Debug, Clone, Default)]
pub struct Lab {
    /// The lab network's subnet.
    pub subnet: Option<IpNet>,
    /// The Debian release of the lab's hosts.
    pub release: Release,
    /// Hosts that run another release than `release`.
    pub releases: BTreeMap<HostName, Release>,
}

impl Lab {
    /// The Debian release `host`'s lab container runs.
    pub fn release_of(&self, host: &HostName) -> Release {
        self.releases.get(host).copied().unwrap_or(self.release)
    }
}

/// A Debian release `infra` converges (and its lab can build).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Release {
    /// Debian 12.
    #[default]
    Bookworm,
    /// Debian 13.
    Trixie,
}

impl Release {
    /// Every supported release, oldest first.
    pub const ALL: [Release; 2] = [Release::Bookworm, Release::Trixie];

    /// The code name, e.g. `bookworm`.
    pub fn codename(self) -> &'static str {
        match self {
            Release::Bookworm => "bookworm",
            Release::Trixie => "trixie",
        }
    }

    /// `VERSION_ID` in `/etc/os-release`, e.g. `12`.
    pub fn version(self) -> &'static str {
        match self {
            Release::Bookworm => "12",
            Release::Trixie => "13",
        }
    }

    /// How people name it, e.g. `Debian 12 (bookworm)`.
    pub fn title(self) -> String {
        format!("Debian {} ({})", self.version(), self.codename())
    }
}
