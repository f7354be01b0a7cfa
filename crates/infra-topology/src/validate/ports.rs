//! Ports: none is 0, and no two services on one host (SSH included) want the same one.

use std::collections::BTreeMap;

use super::Checker;
use crate::model::{Host, LoadBalancer, Monitoring, TlsMode};
use crate::raw::{self, Sp};
use crate::source::Position;

/// Who wants a port on a host: the key, where it is written, and whether it was written out
/// (rather than a default).
struct PortUse {
    key: String,
    position: Position,
    explicit: bool,
}

/// Listening ports by (host, port), and the keys that ask for port 0.
#[derive(Default)]
struct Uses {
    ports: BTreeMap<(String, u16), Vec<PortUse>>,
    zero: Vec<(Position, String)>,
}

impl Uses {
    /// Records that `key` wants `port` (or `default`) on each of `hosts`.
    fn add(
        &mut self,
        hosts: &[&str],
        port: Option<&Sp<u16>>,
        default: u16,
        key: &str,
        fallback: Position,
    ) {
        let (value, position, explicit) =
            port.map_or((default, fallback, false), |p| (p.value, p.position, true));
        if value == 0 {
            self.zero.push((position, key.to_owned()));
            return;
        }
        for host in hosts {
            self.ports
                .entry(((*host).to_owned(), value))
                .or_default()
                .push(PortUse {
                    key: key.to_owned(),
                    position,
                    explicit,
                });
        }
    }
}

impl Checker<'_, '_> {
    pub(super) fn port_collisions(&mut self, raw: &raw::RawTopology, hosts: &[(Position, Host)]) {
        let mut uses = Uses::default();
        for (_, host) in hosts {
            let ssh_port = raw
                .hosts
                .value
                .iter()
                .find(|(n, _)| n.value == host.name.as_str());
            let position = ssh_port
                .and_then(|(_, h)| h.ssh.as_ref().and_then(|s| s.port.as_ref()))
                .or(raw.defaults.ssh.port.as_ref())
                .map_or(Position::UNKNOWN, |p| p.position);
            let explicit = position != Position::UNKNOWN;
            if host.ssh.port != 0 {
                uses.ports
                    .entry((host.name.to_string(), host.ssh.port))
                    .or_default()
                    .push(PortUse {
                        key: "ssh.port".to_owned(),
                        position,
                        explicit,
                    });
            }
        }
        let names = |list: &Sp<Vec<Sp<String>>>| -> Vec<String> {
            list.value.iter().map(|n| n.value.clone()).collect()
        };
        if let Some(lb) = &raw.load_balancer {
            let hosts = names(&lb.value.hosts);
            let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
            let at = lb.value.hosts.position;
            uses.add(&hosts, None, 80, "load_balancer (HTTP)", at);
            if lb
                .value
                .tls
                .mode
                .as_ref()
                .is_some_and(|m| m.value != TlsMode::Off)
            {
                uses.add(&hosts, None, 443, "load_balancer (HTTPS)", at);
            }
            if let Some(stats) = &lb.value.stats {
                uses.add(
                    &hosts,
                    stats.value.port.as_ref(),
                    LoadBalancer::DEFAULT_STATS_PORT,
                    "load_balancer.stats.port",
                    stats.position,
                );
            }
        }
        if let Some(web) = &raw.web {
            let hosts = names(&web.value.hosts);
            let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
            let at = web.value.hosts.position;
            uses.add(&hosts, web.value.port.as_ref(), 80, "web.port", at);
            uses.add(
                &hosts,
                web.value.status_port.as_ref(),
                8080,
                "web.status_port",
                at,
            );
            let passthrough = raw
                .load_balancer
                .as_ref()
                .and_then(|l| l.value.tls.mode.as_ref())
                .is_some_and(|m| m.value == TlsMode::Passthrough);
            if passthrough {
                uses.add(&hosts, web.value.tls_port.as_ref(), 443, "web.tls_port", at);
            } else if let Some(port) = web.value.tls_port.as_ref().filter(|p| p.value == 0) {
                uses.zero.push((port.position, "web.tls_port".to_owned()));
            }
        }
        if let Some(app) = &raw.app {
            let hosts = names(&app.value.hosts);
            let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
            uses.add(
                &hosts,
                app.value.port.as_ref(),
                8000,
                "app.port",
                app.value.hosts.position,
            );
        }
        if let Some(db) = &raw.database {
            let mut hosts = vec![db.value.primary.value.clone()];
            hosts.extend(
                db.value
                    .replicas
                    .iter()
                    .flat_map(|r| r.value.iter().map(|n| n.value.clone())),
            );
            hosts.sort();
            hosts.dedup();
            let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
            uses.add(
                &hosts,
                db.value.port.as_ref(),
                3306,
                "database.port",
                db.value.primary.position,
            );
        }
        if let Some(monitoring) = &raw.monitoring {
            monitoring_ports(raw, monitoring, &mut uses);
        }
        let Uses { ports, zero } = uses;
        for (position, key) in zero {
            self.error(position, format!("`{key}` is 0, which is not a port"))
                .expected("a port from 1 to 65535");
        }
        for ((host, port), users) in ports {
            let mut sites: Vec<&PortUse> = users.iter().collect();
            sites.dedup_by(|a, b| a.key == b.key);
            if sites.len() < 2 {
                continue;
            }
            let keys: Vec<String> = sites.iter().map(|u| format!("`{}`", u.key)).collect();
            // Point at a port the user wrote, if any: that is the one to change.
            let position = sites
                .iter()
                .filter(|u| u.explicit)
                .map(|u| u.position)
                .max()
                .or_else(|| sites.iter().map(|u| u.position).max())
                .unwrap_or_default();
            self.error(
                position,
                format!(
                    "port {port} on host `{host}` is wanted by {}",
                    keys.join(" and ")
                ),
            )
            .expected("a different port for each service on a host")
            .hint("move one of them to another port, or put the tiers on different hosts");
        }
    }
}

/// Prometheus and its blackbox exporter on the monitoring hosts; the exporters on every host
/// they watch (their ports are Debian's defaults, which other tiers must leave free).
fn monitoring_ports(raw: &raw::RawTopology, monitoring: &Sp<raw::RawMonitoring>, uses: &mut Uses) {
    let names = |list: Option<&Sp<Vec<Sp<String>>>>| -> Vec<String> {
        list.iter()
            .flat_map(|l| l.value.iter().map(|n| n.value.clone()))
            .collect()
    };
    let own = names(Some(&monitoring.value.hosts));
    let web = names(raw.web.as_ref().map(|w| &w.value.hosts));
    let mut database = names(
        raw.database
            .as_ref()
            .and_then(|d| d.value.replicas.as_ref()),
    );
    database.extend(raw.database.as_ref().map(|d| d.value.primary.value.clone()));
    let mut watched: Vec<String> = own.clone();
    watched.extend(names(raw.load_balancer.as_ref().map(|l| &l.value.hosts)));
    watched.extend(web.iter().cloned());
    watched.extend(names(raw.app.as_ref().map(|a| &a.value.hosts)));
    watched.extend(database.iter().cloned());
    for list in [&mut watched, &mut database] {
        list.sort();
        list.dedup();
    }
    let at = monitoring.value.hosts.position;
    let add = |uses: &mut Uses, hosts: &[String], port: Option<&Sp<u16>>, default, key: &str| {
        let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        uses.add(&hosts, port, default, key, at);
    };
    add(
        uses,
        &own,
        monitoring.value.port.as_ref(),
        9090,
        "monitoring.port",
    );
    add(
        uses,
        &own,
        None,
        Monitoring::BLACKBOX_EXPORTER_PORT,
        "monitoring (blackbox exporter)",
    );
    add(
        uses,
        &watched,
        None,
        Monitoring::NODE_EXPORTER_PORT,
        "monitoring (node exporter)",
    );
    if let Some(lb) = raw
        .load_balancer
        .as_ref()
        .filter(|l| l.value.stats.is_none())
    {
        let hosts = names(Some(&lb.value.hosts));
        add(
            uses,
            &hosts,
            None,
            LoadBalancer::DEFAULT_STATS_PORT,
            "monitoring (HAProxy metrics)",
        );
    }
    add(
        uses,
        &web,
        None,
        Monitoring::NGINX_EXPORTER_PORT,
        "monitoring (Nginx exporter)",
    );
    add(
        uses,
        &database,
        None,
        Monitoring::MYSQLD_EXPORTER_PORT,
        "monitoring (MariaDB exporter)",
    );
}
