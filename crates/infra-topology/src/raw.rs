//! The topology file exactly as written: serde types with positions, unknown keys denied.
//!
//! These types are the file format (and the JSON Schema). They are checked and turned into
//! the public [`crate::Topology`] by [`crate::validate`]; nothing else reads them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::model::{Algorithm, Become, Release, TlsMode};
use crate::source::Position;

/// A value with the position of the YAML node it came from.
#[derive(Debug, Clone)]
pub struct Sp<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub position: Position,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        Ok(Sp {
            position: Position::from_location(&spanned.referenced),
            value: spanned.value,
        })
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }

    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// The whole `infra.yaml`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "infra topology")]
pub struct RawTopology {
    /// Name of the topology: lowercase letters, digits and `-`. Used in lab container names,
    /// the Docker network and the names of generated files.
    pub name: Sp<String>,
    /// A folder (relative to this file) whose templates override the built-in ones by file name.
    pub templates: Option<Sp<String>>,
    /// Settings every host inherits unless it sets its own.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// Every machine, by name. Names are lowercase letters, digits and `-`.
    pub hosts: Sp<BTreeMap<Sp<String>, RawHost>>,
    /// The HAProxy load balancer cluster with its keepalived virtual IP.
    pub load_balancer: Option<Sp<RawLoadBalancer>>,
    /// The Nginx web tier.
    pub web: Option<Sp<RawWeb>>,
    /// The application tier: the user's app as a systemd service.
    pub app: Option<Sp<RawApp>>,
    /// The MariaDB tier: a primary and read-only replicas.
    pub database: Option<Sp<RawDatabase>>,
    /// Prometheus and its exporters: every host monitored, with alert rules.
    pub monitoring: Option<Sp<RawMonitoring>>,
    /// The nftables firewall on every host.
    #[serde(default)]
    pub firewall: RawFirewall,
    /// Settings for `infra lab`: the Docker network the lab hosts live on.
    #[serde(default)]
    pub lab: RawLab,
}

impl PartialEq for Sp<String> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
impl Eq for Sp<String> {}
impl PartialOrd for Sp<String> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Sp<String> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

/// Defaults applied to every host.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Defaults")]
pub struct RawDefaults {
    /// SSH settings for every host.
    #[serde(default)]
    pub ssh: RawSsh,
    /// How to become root on the hosts: `none` (log in as root) or `sudo` (`sudo -n`).
    #[serde(rename = "become")]
    pub become_method: Option<Sp<Become>>,
}

/// How to reach a host over SSH. Unset keys fall back to `defaults.ssh`, then to OpenSSH's own
/// configuration (`~/.ssh/config`).
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Ssh")]
pub struct RawSsh {
    /// Login user (default `root`).
    pub user: Option<Sp<String>>,
    /// SSH port (default 22).
    pub port: Option<Sp<u16>>,
    /// Private key file (`~` expands to the home directory). It is used for the jump hosts too.
    pub identity_file: Option<Sp<String>>,
    /// Bastions to jump through, as OpenSSH's `ProxyJump`: `[user@]host[:port]`, several
    /// separated by commas. The identity file above is used for them too.
    pub jump: Option<Sp<String>>,
}

/// One machine.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Host")]
pub struct RawHost {
    /// Its IPv4 or IPv6 address, or a DNS name resolved when the topology is read (to one
    /// IPv4 address, or one IPv6 address): the tiers, the firewall and the lab use the address.
    pub address: Sp<String>,
    /// Where `infra` connects over SSH when that is not `address` (for example a public address
    /// while the tiers talk on a private one): an IP address or a DNS name, resolved the same way,
    /// with `:PORT` when a port forward listens on another port than `ssh.port` (`[IPV6]:PORT`).
    pub ssh_address: Option<Sp<String>>,
    /// SSH settings for this host only.
    pub ssh: Option<RawSsh>,
    /// How to become root on this host: `none` or `sudo`.
    #[serde(rename = "become")]
    pub become_method: Option<Sp<Become>>,
}

/// The load balancer tier: HAProxy on every host, keepalived moving a virtual IP between them.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "LoadBalancer")]
pub struct RawLoadBalancer {
    /// The load balancer hosts; the first is the preferred VRRP master.
    pub hosts: Sp<Vec<Sp<String>>>,
    /// The virtual IP with its prefix length, e.g. `10.77.0.10/24`.
    pub vip: Sp<String>,
    /// The network interface that carries the VIP (default `eth0`).
    pub interface: Option<Sp<String>>,
    /// VRRP virtual router ID, 1-255 (default 51). Must be unique on the network.
    pub virtual_router_id: Option<Sp<u16>>,
    /// Secret used for VRRP authentication, as `${env:NAME}` or `${file:PATH}` (optional).
    ///
    /// Exactly 8 characters (keepalived uses no more), none of `! " # { }`.
    pub vrrp_password: Option<Sp<String>>,
    /// Whether the first host takes the VIP back when it returns (default true).
    pub preempt: Option<Sp<bool>>,
    /// HAProxy balancing algorithm: `roundrobin`, `leastconn` or `source` (default `roundrobin`).
    pub algorithm: Option<Sp<Algorithm>>,
    /// How HAProxy checks the web servers.
    #[serde(default)]
    pub health_check: RawHealthCheck,
    /// HAProxy's stats page and Prometheus endpoint.
    pub stats: Option<Sp<RawStats>>,
    /// TLS at the edge.
    #[serde(default)]
    pub tls: RawTls,
}

/// An HTTP health check against each web server.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "HealthCheck")]
pub struct RawHealthCheck {
    /// The path requested (default `/healthz`).
    pub path: Option<Sp<String>>,
    /// Milliseconds between checks (default 2000).
    pub interval_ms: Option<Sp<u32>>,
    /// Successful checks before a server is used again (default 2).
    pub rise: Option<Sp<u16>>,
    /// Failed checks before a server is taken out (default 3).
    pub fall: Option<Sp<u16>>,
}

/// HAProxy's statistics page (`/stats`) and Prometheus endpoint (`/metrics`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Stats")]
pub struct RawStats {
    /// Port of the stats listener (default 8404).
    pub port: Option<Sp<u16>>,
    /// User name for the stats page (default `admin`).
    pub user: Option<Sp<String>>,
    /// Password for the stats page, as `${env:NAME}` or `${file:PATH}`.
    ///
    /// 8-256 printable ASCII characters, none of `# " ' \` (HAProxy would cut or refuse them).
    pub password: Sp<String>,
    /// Addresses allowed to reach the stats port (CIDR, default: the admin sources).
    pub allow_from: Option<Sp<Vec<Sp<String>>>>,
}

/// TLS at the edge.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Tls")]
pub struct RawTls {
    /// `terminate` (HAProxy terminates TLS and redirects HTTP to HTTPS), `passthrough` (HAProxy
    /// forwards TLS untouched; Nginx terminates it) or `off` (default `off`).
    pub mode: Option<Sp<TlsMode>>,
    /// PEM certificate chain (relative to the topology file). Without it, `infra` generates a
    /// self-signed certificate for `server_name` and keeps it under `.infra/`.
    pub cert_file: Option<Sp<String>>,
    /// PEM private key, as `${file:PATH}` or `${env:NAME}`; required with `cert_file`.
    pub key_file: Option<Sp<String>>,
}

/// The web tier: Nginx serving static files and proxying the app path to the app tier.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Web")]
pub struct RawWeb {
    /// The web hosts.
    pub hosts: Sp<Vec<Sp<String>>>,
    /// The site's host name (default `localhost`); also the generated certificate's name.
    pub server_name: Option<Sp<String>>,
    /// The HTTP port Nginx listens on (default 80).
    pub port: Option<Sp<u16>>,
    /// The HTTPS port Nginx listens on with `tls.mode: passthrough` (default 443).
    pub tls_port: Option<Sp<u16>>,
    /// Local folder of static files (relative to this file) uploaded to `root`.
    pub static_dir: Option<Sp<String>>,
    /// Where the static files live on the web hosts (default `/var/www/<topology name>`).
    pub root: Option<Sp<String>>,
    /// URL path proxied to the app tier (default `/api/`); it starts and ends with `/` and is not `/`.
    pub app_path: Option<Sp<String>>,
    /// Port of Nginx's `stub_status` endpoint, reachable from the load balancers only (default 8080).
    pub status_port: Option<Sp<u16>>,
    /// How a restart of Nginx goes through the tier (default: one host at a time, 30 s).
    pub rollout: Option<Sp<RawRollout>>,
}

/// The app tier: the user's program as a systemd service.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "App")]
pub struct RawApp {
    /// The app hosts.
    pub hosts: Sp<Vec<Sp<String>>>,
    /// The service name: the systemd unit `<name>.service`, `/etc/<name>/` and `/opt/<name>`.
    ///
    /// It may not be a name Debian or `infra` already uses (`ssh`, `nginx`, `mysql`, `infra-...`).
    pub name: Sp<String>,
    /// Local folder (relative to this file) uploaded to `install_dir`.
    pub source: Option<Sp<String>>,
    /// Where the app is installed (default `/opt/<name>`).
    pub install_dir: Option<Sp<String>>,
    /// Debian packages the app needs.
    #[serde(default)]
    pub packages: Vec<Sp<String>>,
    /// The command that starts the app (absolute path first; run without a shell).
    pub command: Sp<String>,
    /// A command that migrates the app's data for a new release (absolute path first; run
    /// without a shell, as the app runs: its user, folder and environment). It runs once per
    /// apply that changes the app, on the first app host that changes, alone, with the new
    /// release's files and environment in place, before any app host restarts; if it fails, the apply
    /// stops and every host keeps the old release. It must leave the data usable by the old
    /// release too (add a column, do not drop one), and running it twice must be harmless.
    pub migrate: Option<Sp<String>>,
    /// The TCP port the app listens on (default 8000).
    pub port: Option<Sp<u16>>,
    /// The path that answers 200 when the app is healthy (default `/health`).
    pub health_path: Option<Sp<String>>,
    /// Extra environment variables; values may be `${env:NAME}` or `${file:PATH}` secrets. `PORT`
    /// and names starting with `DB_` are set by `infra`.
    #[serde(default)]
    pub environment: BTreeMap<Sp<String>, Sp<String>>,
    /// How a restart of the app goes through the tier (default: one host at a time, 60 s).
    pub rollout: Option<Sp<RawRollout>>,
}

/// The database tier: MariaDB with GTID replication.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Database")]
pub struct RawDatabase {
    /// The primary's host.
    pub primary: Sp<String>,
    /// Read-only replicas of the primary.
    #[serde(default)]
    pub replicas: Option<Sp<Vec<Sp<String>>>>,
    /// The app's database (not a system schema such as `mysql`).
    pub name: Sp<String>,
    /// The MariaDB port (default 3306).
    pub port: Option<Sp<u16>>,
    /// The user the app connects as; allowed only from app hosts.
    pub app_user: RawDatabaseUser,
    /// The user replicas connect as; allowed only from replica hosts.
    pub replication_user: Option<RawDatabaseUser>,
    /// How a restart of MariaDB goes through the replicas (default: one at a time, 120 s).
    pub rollout: Option<Sp<RawRollout>>,
}

/// Monitoring: Prometheus on its own hosts, scraping an exporter on every host of the
/// topology, with alert rules of its own.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Monitoring")]
pub struct RawMonitoring {
    /// The hosts that run Prometheus (each scrapes every target on its own).
    pub hosts: Sp<Vec<Sp<String>>>,
    /// Port of Prometheus's UI and API, reachable from `firewall.admin_sources` only
    /// (default 9090).
    pub port: Option<Sp<u16>>,
    /// Seconds between two scrapes of a target, 1-120 (default 15): the alerts look at
    /// 5-minute windows, which need a few samples.
    pub scrape_interval_seconds: Option<Sp<u32>>,
    /// Days of history Prometheus keeps, 1-3650 (default 15).
    pub retention_days: Option<Sp<u32>>,
    /// The account MariaDB's exporter connects as, from the database host itself
    /// (`127.0.0.1`) with `PROCESS` and `SLAVE MONITOR` only. Required with a database tier.
    /// Its password may not hold `"`, `\` or `?` (it goes into a systemd environment file,
    /// inside the exporter's data source name).
    pub database_user: Option<RawDatabaseUser>,
    /// When the shipped alert rules fire.
    #[serde(default)]
    pub alerts: RawAlerts,
}

/// Thresholds of the shipped alert rules.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Alerts")]
pub struct RawAlerts {
    /// Seconds a condition must hold before its alert fires (Prometheus's `for:`), 0-3600
    /// (default 60).
    pub for_seconds: Option<Sp<u32>>,
    /// A replica further behind its primary than this many seconds alerts (default 30).
    pub replica_lag_seconds: Option<Sp<u32>>,
    /// A filesystem fuller than this percentage alerts, 1-99 (default 90).
    pub disk_used_percent: Option<Sp<u8>>,
    /// The share of requests answered with a 5xx status, in percent, above which the app
    /// alerts, 1-99 (default 5).
    pub app_5xx_percent: Option<Sp<u8>>,
}

/// How a change that restarts a tier's service goes through its hosts: a batch at a time,
/// each host waiting until its health check passes before the next batch starts.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Rollout")]
pub struct RawRollout {
    /// Hosts restarted at once: a count (`1`, `2`) or a share of the tier's hosts (`"25%"`,
    /// rounded down, at least 1). Default 1.
    pub batch: Option<Sp<RawCount>>,
    /// The most hosts of the tier out of service at once, counting hosts that cannot be
    /// reached; it must leave at least one host serving. Default: the batch.
    pub max_unavailable: Option<Sp<u32>>,
    /// Seconds a restarted host has to pass its health check (default 60; Nginx 30;
    /// MariaDB 120).
    pub timeout_seconds: Option<Sp<u32>>,
}

/// A count or a percentage.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawCount {
    /// A number of hosts.
    Hosts(u32),
    /// A share of the tier's hosts, `"N%"`.
    Share(String),
}

/// A database account.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DatabaseUser")]
pub struct RawDatabaseUser {
    /// User name.
    pub name: Sp<String>,
    /// Password, as `${env:NAME}` or `${file:PATH}`.
    ///
    /// 8-256 printable ASCII characters; the app account's may not hold `"` or `\`, as it also
    /// goes into the app's environment file.
    pub password: Sp<String>,
}

/// The nftables firewall. `infra` owns one table (`inet infra`) and never touches others.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Firewall")]
pub struct RawFirewall {
    /// Whether `infra` manages a firewall (default true).
    pub enabled: Option<Sp<bool>>,
    /// Networks (CIDR) allowed to reach SSH and the monitoring endpoints (default: anywhere).
    pub admin_sources: Option<Sp<Vec<Sp<String>>>>,
}

/// Settings for `infra lab`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Lab")]
pub struct RawLab {
    /// The Docker network's subnet (CIDR); must hold every host address and the VIP.
    pub subnet: Option<Sp<String>>,
    /// The Debian release of the lab's hosts: `bookworm` (12, the default) or `trixie` (13).
    pub release: Option<Sp<Release>>,
    /// Settings of single lab hosts, by host name: `{ db2: { release: trixie } }`.
    pub hosts: Option<Sp<BTreeMap<Sp<String>, RawLabHost>>>,
}

/// One host's lab settings.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "LabHost")]
pub struct RawLabHost {
    /// The Debian release of this host's container.
    pub release: Option<Sp<Release>>,
}
