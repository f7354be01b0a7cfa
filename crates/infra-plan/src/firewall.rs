//! Which traffic each host admits: the rules behind `firewall.nft`.

use std::net::IpAddr;

use infra_topology::{Host, Monitoring, Tier, TlsMode, Topology};
use ipnet::IpNet;
use serde::Serialize;

/// One opening in a host's firewall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Why it is there (shown as a comment and in `infra graph`).
    pub comment: String,
    /// The nftables match, e.g. `tcp dport 80` or `ip protocol vrrp`.
    #[serde(rename = "match")]
    pub matcher: String,
    /// True when any source is allowed.
    pub any: bool,
    /// Allowed IPv4 sources.
    pub v4: Vec<String>,
    /// Allowed IPv6 sources.
    pub v6: Vec<String>,
}

impl Rule {
    fn new(comment: String, matcher: String, sources: &[IpNet]) -> Rule {
        let any = sources.iter().any(|s| s.prefix_len() == 0);
        let (v4, v6) = if any {
            (Vec::new(), Vec::new())
        } else {
            (
                sources
                    .iter()
                    .filter(|s| matches!(s, IpNet::V4(_)))
                    .map(ToString::to_string)
                    .collect(),
                sources
                    .iter()
                    .filter(|s| matches!(s, IpNet::V6(_)))
                    .map(ToString::to_string)
                    .collect(),
            )
        };
        Rule {
            comment,
            matcher,
            any,
            v4,
            v6,
        }
    }

    /// True when the rule admits nothing (no source of either family).
    fn is_empty(&self) -> bool {
        !self.any && self.v4.is_empty() && self.v6.is_empty()
    }
}

fn hosts_of(topology: &Topology, tier: Tier) -> Vec<IpNet> {
    topology
        .tier_hosts(tier)
        .iter()
        .map(|h| IpNet::from(h.address))
        .collect()
}

fn net(address: IpAddr) -> IpNet {
    IpNet::from(address)
}

/// The rules for `host`: SSH from the admin sources always comes first, so no change to the
/// firewall can lock `infra` out.
pub fn rules_for(topology: &Topology, host: &Host) -> Vec<Rule> {
    let anywhere = [
        IpNet::V4(ipnet::Ipv4Net::default()),
        IpNet::V6(ipnet::Ipv6Net::default()),
    ];
    let mut rules = vec![Rule::new(
        "SSH from the admin sources".to_owned(),
        format!("tcp dport {}", host.ssh.port),
        &topology.firewall.admin_sources,
    )];
    let tiers = topology.tiers_of(&host.name);
    if let (true, Some(lb)) = (tiers.contains(&Tier::LoadBalancer), &topology.load_balancer) {
        rules.push(Rule::new(
            "HTTP from anywhere".to_owned(),
            "tcp dport 80".to_owned(),
            &anywhere,
        ));
        if lb.tls.mode != TlsMode::Off {
            rules.push(Rule::new(
                "HTTPS from anywhere".to_owned(),
                "tcp dport 443".to_owned(),
                &anywhere,
            ));
        }
        if let Some(stats) = &lb.stats {
            rules.push(Rule::new(
                "HAProxy stats and Prometheus metrics from the admin sources".to_owned(),
                format!("tcp dport {}", stats.port),
                &stats.allow_from,
            ));
        }
        let peers: Vec<IpNet> = topology
            .tier_hosts(Tier::LoadBalancer)
            .iter()
            .filter(|h| h.name != host.name)
            .map(|h| net(h.address))
            .collect();
        if !peers.is_empty() {
            rules.push(Rule::new(
                "VRRP (IP protocol 112) from the other load balancers".to_owned(),
                "meta l4proto 112".to_owned(),
                &peers,
            ));
        }
    }
    if let (true, Some(web)) = (tiers.contains(&Tier::Web), &topology.web) {
        let lbs = hosts_of(topology, Tier::LoadBalancer);
        rules.push(Rule::new(
            "HTTP from the load balancers".to_owned(),
            format!("tcp dport {}", web.port),
            &lbs,
        ));
        if topology
            .load_balancer
            .as_ref()
            .is_some_and(|lb| lb.tls.mode == TlsMode::Passthrough)
        {
            rules.push(Rule::new(
                "HTTPS (passthrough) from the load balancers".to_owned(),
                format!("tcp dport {}", web.tls_port),
                &lbs,
            ));
        }
        rules.push(Rule::new(
            "Nginx stub_status from the load balancers".to_owned(),
            format!("tcp dport {}", web.status_port),
            &lbs,
        ));
    }
    if let (true, Some(app)) = (tiers.contains(&Tier::App), &topology.app) {
        rules.push(Rule::new(
            "the app from the web tier".to_owned(),
            format!("tcp dport {}", app.port),
            &hosts_of(topology, Tier::Web),
        ));
    }
    if let (true, Some(db)) = (tiers.contains(&Tier::Database), &topology.database) {
        let mut sources = hosts_of(topology, Tier::App);
        sources.extend(
            topology
                .tier_hosts(Tier::Database)
                .iter()
                .filter(|h| h.name != host.name)
                .map(|h| net(h.address)),
        );
        rules.push(Rule::new(
            "MariaDB from the app tier and the other database hosts".to_owned(),
            format!("tcp dport {}", db.port),
            &sources,
        ));
    }
    if topology.monitoring.is_some() {
        monitoring_rules(topology, &tiers, &mut rules);
    }
    rules.retain(|r| !r.is_empty());
    rules
}

/// What the monitoring hosts read on `host` (every exporter admits them alone), and, on a
/// monitoring host, Prometheus's UI for the admin sources.
fn monitoring_rules(topology: &Topology, tiers: &[Tier], rules: &mut Vec<Rule>) {
    let Some(monitoring) = &topology.monitoring else {
        return;
    };
    if tiers.is_empty() {
        return;
    }
    let watchers = hosts_of(topology, Tier::Monitoring);
    let from_watchers = |what: &str, port: u16| {
        Rule::new(
            format!("{what} from the monitoring hosts"),
            format!("tcp dport {port}"),
            &watchers,
        )
    };
    rules.push(from_watchers(
        "the node exporter",
        Monitoring::NODE_EXPORTER_PORT,
    ));
    for tier in tiers {
        match tier {
            Tier::LoadBalancer => {
                if let Some(lb) = &topology.load_balancer {
                    rules.push(from_watchers("HAProxy's metrics", lb.metrics_port()));
                }
            }
            Tier::Web => rules.push(from_watchers(
                "the Nginx exporter",
                Monitoring::NGINX_EXPORTER_PORT,
            )),
            Tier::App => {
                if let Some(app) = &topology.app {
                    rules.push(from_watchers("the app's health check", app.port));
                }
            }
            Tier::Database => rules.push(from_watchers(
                "the MariaDB exporter",
                Monitoring::MYSQLD_EXPORTER_PORT,
            )),
            Tier::Monitoring => rules.push(Rule::new(
                "Prometheus's UI and API from the admin sources".to_owned(),
                format!("tcp dport {}", monitoring.port),
                &topology.firewall.admin_sources,
            )),
        }
    }
}
