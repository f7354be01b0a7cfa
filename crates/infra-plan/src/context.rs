//! The variables every template sees for one host.

use infra_topology::{EnvValue, Host, Monitoring, Secret, Tier, TlsMode, Topology};
use serde_json::{Value, json};

use crate::firewall;
use crate::paths;

/// Whether secrets appear in rendered files or are replaced by a placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// The real values (what `apply` writes).
    Reveal,
    /// [`PLACEHOLDER`] instead of each value (what `render` shows by default).
    Redact,
}

/// What stands in for a secret wherever it would be shown.
pub const PLACEHOLDER: &str = "(sensitive value)";

impl Secrets {
    fn show(self, secret: &Secret) -> String {
        match self {
            Secrets::Reveal => secret.expose().to_owned(),
            Secrets::Redact => PLACEHOLDER.to_owned(),
        }
    }
}

fn host_entry(host: &Host) -> Value {
    json!({ "name": host.name.as_str(), "address": host.address.to_string() })
}

/// Builds the template context for `host`. Every key is always present (as `null` where a
/// tier is absent), so templates can test `{% if app %}` without tripping strict mode.
pub fn for_host(topology: &Topology, host: &Host, secrets: Secrets) -> Value {
    let tiers = topology.tiers_of(&host.name);
    let lb = topology.load_balancer.as_ref().map(|lb| {
        let hosts = topology.tier_hosts(Tier::LoadBalancer);
        let count = hosts.len();
        let priority_of = |index: usize| 150_usize.saturating_sub(index * 10).max(1);
        let own_index = hosts.iter().position(|h| h.name == host.name).unwrap_or(0);
        json!({
            "hosts": hosts.iter().map(|h| host_entry(h)).collect::<Vec<_>>(),
            "peers": hosts.iter().filter(|h| h.name != host.name).map(|h| host_entry(h)).collect::<Vec<_>>(),
            "self": { "priority": priority_of(own_index) },
            "max_priority": priority_of(0),
            "count": count,
            "vip": lb.vip.to_string(),
            "vip_address": lb.vip.addr().to_string(),
            "interface": lb.interface,
            "virtual_router_id": lb.virtual_router_id,
            "vrrp_password": lb.vrrp_password.as_ref().map(|p| secrets.show(p)),
            "preempt": lb.preempt == infra_topology::Preempt::TakeBack,
            "algorithm": lb.algorithm.keyword(),
            "health": {
                "path": lb.health_check.path,
                "interval_ms": lb.health_check.interval_ms,
                "rise": lb.health_check.rise,
                "fall": lb.health_check.fall,
            },
            "stats_port": lb.metrics_port(),
            "metrics": topology.monitoring.as_ref().map(|_| json!({
                "sources": monitoring_addresses(topology),
            })),
            "stats": lb.stats.as_ref().map(|s| json!({
                "port": s.port,
                "user": s.user,
                "password": secrets.show(&s.password),
                "allow_from": s.allow_from.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })),
            "tls": {
                "mode": match lb.tls.mode {
                    TlsMode::Terminate => "terminate",
                    TlsMode::Passthrough => "passthrough",
                    TlsMode::Off => "off",
                },
                "pem_path": paths::haproxy_pem(topology),
            },
        })
    });
    let passthrough = topology
        .load_balancer
        .as_ref()
        .is_some_and(|lb| lb.tls.mode == TlsMode::Passthrough);
    let web = topology.web.as_ref().map(|web| {
        let status_sources: Vec<String> = topology
            .tier_hosts(Tier::LoadBalancer)
            .iter()
            .map(|h| h.address.to_string())
            .chain(std::iter::once("127.0.0.1".to_owned()))
            .collect();
        json!({
            "hosts": topology.tier_hosts(Tier::Web).iter().map(|h| host_entry(h)).collect::<Vec<_>>(),
            "server_name": web.server_name,
            "port": web.port,
            "tls_port": web.tls_port,
            "tls_passthrough": passthrough,
            "certificate_path": paths::nginx_certificate(topology),
            "certificate_key_path": paths::nginx_key(topology),
            "root": web.root,
            "app_path": web.app_path,
            "status_port": web.status_port,
            "status_sources": status_sources,
        })
    });
    let app = topology.app.as_ref().map(|app| {
        let environment: Vec<Value> = app
            .environment
            .iter()
            .map(|(name, value)| {
                let shown = match value {
                    EnvValue::Plain(text) => text.clone(),
                    EnvValue::Secret(secret) => secrets.show(secret),
                };
                json!({ "name": name, "value": shown })
            })
            .collect();
        json!({
            "hosts": topology.tier_hosts(Tier::App).iter().map(|h| host_entry(h)).collect::<Vec<_>>(),
            "name": app.name,
            "install_dir": app.install_dir,
            "command": app.command.join(" "),
            "port": app.port,
            "health_path": app.health_path,
            "environment": environment,
        })
    });
    let db = topology.database.as_ref().map(|db| {
        let all = topology.tier_hosts(Tier::Database);
        let server_id = all.iter().position(|h| h.name == host.name).map_or(0, |i| i + 1);
        let primary = topology.host(&db.primary).map(host_entry);
        json!({
            "primary": primary,
            "replicas": topology.tier_hosts(Tier::Database).iter().skip(1).map(|h| host_entry(h)).collect::<Vec<_>>(),
            "name": db.name,
            "port": db.port,
            "server_id": server_id,
            "app_user": db.app_user.name,
            "app_password": secrets.show(&db.app_user.password),
        })
    });
    let monitoring = monitoring(topology, secrets);
    let managed = topology.firewall.mode == infra_topology::FirewallMode::Managed;
    let rules = if managed {
        firewall::rules_for(topology, host)
    } else {
        Vec::new()
    };
    json!({
        "topology": { "name": topology.name },
        "host": {
            "name": host.name.as_str(),
            "address": host.address.to_string(),
            "tiers": tiers.iter().map(|t| t.key()).collect::<Vec<_>>(),
        },
        "lb": lb,
        "web": web,
        "app": app,
        "db": db,
        "monitoring": monitoring,
        "lb_health_path": topology.load_balancer.as_ref().map_or("/healthz".to_owned(), |lb| lb.health_check.path.clone()),
        "app_health_at_edge": match (&topology.app, &topology.web) {
            (Some(app), Some(web)) => Some(app.health_path_at_edge(web)),
            _ => None,
        },
        "firewall": { "enabled": managed, "rules": rules },
    })
}

/// The monitoring hosts' addresses (what the exporters admit).
fn monitoring_addresses(topology: &Topology) -> Vec<String> {
    topology
        .tier_hosts(Tier::Monitoring)
        .iter()
        .map(|h| h.address.to_string())
        .collect()
}

/// Everything Prometheus scrapes and probes, and the alert thresholds.
fn monitoring(topology: &Topology, secrets: Secrets) -> Option<Value> {
    let monitoring = topology.monitoring.as_ref()?;
    let targets = |tier: Tier, port: u16| -> Vec<Value> {
        topology
            .tier_hosts(tier)
            .iter()
            .map(|h| json!({ "name": h.name.as_str(), "target": socket(h.address, port) }))
            .collect()
    };
    let node: Vec<Value> = topology
        .hosts
        .iter()
        .filter_map(|h| {
            let tiers = topology.tiers_of(&h.name);
            (!tiers.is_empty()).then(|| {
                json!({
                    "name": h.name.as_str(),
                    "target": socket(h.address, Monitoring::NODE_EXPORTER_PORT),
                    "tiers": tiers.iter().map(|t| t.key()).collect::<Vec<_>>().join(","),
                })
            })
        })
        .collect();
    let database: Vec<Value> = topology
        .database
        .iter()
        .flat_map(|db| {
            std::iter::once((&db.primary, "primary"))
                .chain(db.replicas.iter().map(|r| (r, "replica")))
        })
        .filter_map(|(name, role)| {
            let host = topology.host(name)?;
            Some(json!({
                "name": name.as_str(),
                "role": role,
                "target": socket(host.address, Monitoring::MYSQLD_EXPORTER_PORT),
            }))
        })
        .collect();
    let app_health: Vec<Value> = topology
        .app
        .iter()
        .flat_map(|app| {
            topology.tier_hosts(Tier::App).into_iter().map(move |h| {
                json!({
                    "name": h.name.as_str(),
                    "url": format!("http://{}{}", socket(h.address, app.port), app.health_path),
                })
            })
        })
        .collect();
    let lb = topology.load_balancer.as_ref();
    Some(json!({
        "hosts": topology.tier_hosts(Tier::Monitoring).iter().map(|h| host_entry(h)).collect::<Vec<_>>(),
        "sources": monitoring_addresses(topology),
        "port": monitoring.port,
        "scrape_interval": format!("{}s", monitoring.scrape_interval_seconds),
        "retention": format!("{}d", monitoring.retention_days),
        "blackbox_port": Monitoring::BLACKBOX_EXPORTER_PORT,
        "node": node,
        "haproxy": lb.map(|lb| targets(Tier::LoadBalancer, lb.metrics_port())).unwrap_or_default(),
        "haproxy_http": lb.is_some_and(|lb| lb.tls.mode != TlsMode::Passthrough),
        "vip": lb.map(|lb| lb.vip.addr().to_string()),
        "nginx": targets(Tier::Web, Monitoring::NGINX_EXPORTER_PORT),
        "nginx_status_url": topology.web.as_ref().map(|w| format!("http://127.0.0.1:{}/nginx_status", w.status_port)),
        "database": database,
        "database_port": topology.database.as_ref().map(|db| db.port),
        "database_user": monitoring.database_user.as_ref().map(|u| u.name.as_str()),
        "database_password": monitoring.database_user.as_ref().map(|u| secrets.show(&u.password)),
        "app_health": app_health,
        "alerts": {
            "for": format!("{}s", monitoring.alerts.for_seconds),
            "replica_lag_seconds": monitoring.alerts.replica_lag_seconds,
            "disk_used_percent": monitoring.alerts.disk_used_percent,
            "app_5xx_percent": monitoring.alerts.app_5xx_percent,
        },
    }))
}

/// `address:port`, IPv6 addresses in brackets.
fn socket(address: std::net::IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(address, port).to_string()
}
