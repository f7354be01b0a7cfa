//! The topology as a diagram: tiers, hosts, the VIP, traffic and replication, firewall openings.

use std::fmt::Write as _;

use infra_topology::{Monitoring, Tier, TlsMode, Topology};

/// The diagram language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    /// Mermaid `flowchart` (renders on GitHub and in many editors).
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

/// A traffic edge between two tiers, labelled with what the firewall opens for it.
struct Flow {
    from: Tier,
    to: Tier,
    label: String,
}

fn flows(topology: &Topology) -> Vec<Flow> {
    let mut flows = Vec::new();
    let has = |tier: Tier| !topology.tier_hosts(tier).is_empty();
    if let (Some(web), true, true) = (&topology.web, has(Tier::LoadBalancer), has(Tier::Web)) {
        let passthrough = topology
            .load_balancer
            .as_ref()
            .is_some_and(|lb| lb.tls.mode == TlsMode::Passthrough);
        let label = if passthrough {
            format!(
                "HTTPS :{} (TLS passthrough), status :{}",
                web.tls_port, web.status_port
            )
        } else {
            format!("HTTP :{}, status :{}", web.port, web.status_port)
        };
        flows.push(Flow {
            from: Tier::LoadBalancer,
            to: Tier::Web,
            label,
        });
    }
    if let (Some(web), Some(app), true) = (
        &topology.web,
        &topology.app,
        has(Tier::Web) && has(Tier::App),
    ) {
        flows.push(Flow {
            from: Tier::Web,
            to: Tier::App,
            label: format!("{} -> :{}", web.app_path, app.port),
        });
    }
    if let (Some(db), true) = (&topology.database, has(Tier::App) && has(Tier::Database)) {
        flows.push(Flow {
            from: Tier::App,
            to: Tier::Database,
            label: format!("MariaDB :{}", db.port),
        });
    }
    flows
}

/// What the monitoring hosts read from each tier (every host also runs the node exporter).
fn scrapes(topology: &Topology) -> Vec<Flow> {
    if topology.monitoring.is_none() {
        return Vec::new();
    }
    let node = Monitoring::NODE_EXPORTER_PORT;
    let mut scrapes = Vec::new();
    let has = |tier: Tier| !topology.tier_hosts(tier).is_empty();
    if let (Some(lb), true) = (&topology.load_balancer, has(Tier::LoadBalancer)) {
        scrapes.push(Flow {
            from: Tier::Monitoring,
            to: Tier::LoadBalancer,
            label: format!(
                "HAProxy /metrics :{}, node :{node}, ping VIP {}",
                lb.metrics_port(),
                lb.vip.addr()
            ),
        });
    }
    if has(Tier::Web) {
        scrapes.push(Flow {
            from: Tier::Monitoring,
            to: Tier::Web,
            label: format!(
                "Nginx exporter :{}, node :{node}",
                Monitoring::NGINX_EXPORTER_PORT
            ),
        });
    }
    if let (Some(app), true) = (&topology.app, has(Tier::App)) {
        scrapes.push(Flow {
            from: Tier::Monitoring,
            to: Tier::App,
            label: format!("GET :{}{}, node :{node}", app.port, app.health_path),
        });
    }
    if has(Tier::Database) {
        scrapes.push(Flow {
            from: Tier::Monitoring,
            to: Tier::Database,
            label: format!(
                "MariaDB exporter :{}, node :{node}",
                Monitoring::MYSQLD_EXPORTER_PORT
            ),
        });
    }
    scrapes
}

/// The tiers in the order they are drawn, top to bottom.
const DRAWN: [Tier; 5] = [
    Tier::LoadBalancer,
    Tier::Web,
    Tier::App,
    Tier::Database,
    Tier::Monitoring,
];

fn tier_title(tier: Tier) -> &'static str {
    match tier {
        Tier::LoadBalancer => "load balancers: HAProxy + keepalived",
        Tier::Web => "web: Nginx",
        Tier::App => "app",
        Tier::Database => "database: MariaDB",
        Tier::Monitoring => "monitoring: Prometheus",
    }
}

fn edge_label(topology: &Topology) -> String {
    match topology.load_balancer.as_ref().map(|lb| lb.tls.mode) {
        Some(TlsMode::Terminate) => "HTTPS :443 (TLS terminated), HTTP :80 -> redirect".to_owned(),
        Some(TlsMode::Passthrough) => {
            "HTTPS :443 (passed through), HTTP :80 -> redirect".to_owned()
        }
        Some(TlsMode::Off) | None => "HTTP :80".to_owned(),
    }
}

fn host_label(topology: &Topology, name: &infra_topology::HostName, line_break: &str) -> String {
    let address = topology
        .host(name)
        .map(|h| h.address.to_string())
        .unwrap_or_default();
    let role = match &topology.database {
        Some(db) if &db.primary == name => format!("{line_break}primary"),
        Some(db) if db.replicas.contains(name) => format!("{line_break}replica, read-only"),
        _ => String::new(),
    };
    format!("{name}{line_break}{address}{role}")
}

/// Draws the topology.
pub fn render(topology: &Topology, format: GraphFormat) -> String {
    match format {
        GraphFormat::Mermaid => mermaid(topology),
        GraphFormat::Dot => dot(topology),
    }
}

fn node_id(name: &str) -> String {
    format!("h_{}", name.replace('-', "_"))
}

fn mermaid(topology: &Topology) -> String {
    let mut out = String::from("flowchart TB\n");
    let _ = writeln!(out, "    clients((clients))");
    for tier in DRAWN {
        let hosts = topology.tier_hosts(tier);
        if hosts.is_empty() {
            continue;
        }
        let _ = writeln!(out, "    subgraph {}[\"{}\"]", tier.key(), tier_title(tier));
        if tier == Tier::LoadBalancer
            && let Some(lb) = &topology.load_balancer
        {
            let _ = writeln!(
                out,
                "        vip{{{{\"VIP {}<br/>VRRP id {}\"}}}}",
                lb.vip, lb.virtual_router_id
            );
        }
        for host in hosts {
            let _ = writeln!(
                out,
                "        {}[\"{}\"]",
                node_id(host.name.as_str()),
                host_label(topology, &host.name, "<br/>")
            );
        }
        let _ = writeln!(out, "    end");
    }
    if let Some(lb) = &topology.load_balancer {
        let _ = writeln!(out, "    clients -->|\"{}\"| vip", edge_label(topology));
        for (index, name) in lb.hosts.iter().enumerate() {
            let arrow = if index == 0 {
                "-->|master|"
            } else {
                "-.->|backup|"
            };
            let _ = writeln!(out, "    vip {arrow} {}", node_id(name.as_str()));
        }
    } else if let Some(first) = [Tier::Web, Tier::App]
        .into_iter()
        .find(|t| !topology.tier_hosts(*t).is_empty())
    {
        let _ = writeln!(out, "    clients --> {}", first.key());
    }
    for flow in flows(topology) {
        let _ = writeln!(
            out,
            "    {} -->|\"{}\"| {}",
            flow.from.key(),
            flow.label,
            flow.to.key()
        );
    }
    if let Some(db) = &topology.database {
        for replica in &db.replicas {
            let _ = writeln!(
                out,
                "    {} ==>|\"GTID replication\"| {}",
                node_id(db.primary.as_str()),
                node_id(replica.as_str())
            );
        }
    }
    for scrape in scrapes(topology) {
        let _ = writeln!(
            out,
            "    {} -.->|\"{}\"| {}",
            scrape.from.key(),
            scrape.label,
            scrape.to.key()
        );
    }
    if topology.firewall.mode == infra_topology::FirewallMode::Managed {
        let sources: Vec<String> = topology
            .firewall
            .admin_sources
            .iter()
            .map(ToString::to_string)
            .collect();
        let tiers: Vec<&str> = DRAWN
            .into_iter()
            .filter(|t| !topology.tier_hosts(*t).is_empty())
            .map(Tier::key)
            .collect();
        if !tiers.is_empty() {
            let _ = writeln!(
                out,
                "    admin([\"admin: {}\"]) -.->|\"SSH :22 (firewall: admin sources only)\"| {}",
                sources.join(", "),
                tiers.join(" & ")
            );
        }
        if let Some(monitoring) = &topology.monitoring {
            let _ = writeln!(
                out,
                "    admin -.->|\"Prometheus :{} (firewall: admin sources only)\"| monitoring",
                monitoring.port
            );
        }
    }
    out
}

fn dot(topology: &Topology) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n    rankdir=TB;\n    node [shape=box, fontname=\"sans-serif\"];\n",
        topology.name
    );
    let _ = writeln!(out, "    clients [shape=ellipse];");
    for tier in DRAWN {
        let hosts = topology.tier_hosts(tier);
        if hosts.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "    subgraph cluster_{} {{\n        label=\"{}\";",
            tier.key(),
            tier_title(tier)
        );
        if tier == Tier::LoadBalancer
            && let Some(lb) = &topology.load_balancer
        {
            let _ = writeln!(
                out,
                "        vip [shape=hexagon, label=\"VIP {}\\nVRRP id {}\"];",
                lb.vip, lb.virtual_router_id
            );
        }
        for host in hosts {
            let _ = writeln!(
                out,
                "        {} [label=\"{}\"];",
                node_id(host.name.as_str()),
                host_label(topology, &host.name, "\\n")
            );
        }
        let _ = writeln!(out, "    }}");
    }
    if let Some(lb) = &topology.load_balancer {
        let _ = writeln!(
            out,
            "    clients -> vip [label=\"{}\"];",
            edge_label(topology)
        );
        for (index, name) in lb.hosts.iter().enumerate() {
            let style = if index == 0 {
                "label=\"master\""
            } else {
                "label=\"backup\", style=dashed"
            };
            let _ = writeln!(out, "    vip -> {} [{style}];", node_id(name.as_str()));
        }
    }
    for flow in flows(topology) {
        dot_edges(&mut out, topology, &flow, "");
    }
    if let Some(db) = &topology.database {
        for replica in &db.replicas {
            let _ = writeln!(
                out,
                "    {} -> {} [label=\"GTID replication\", style=bold];",
                node_id(db.primary.as_str()),
                node_id(replica.as_str())
            );
        }
    }
    for scrape in scrapes(topology) {
        dot_edges(&mut out, topology, &scrape, ", style=dotted");
    }
    out.push_str("}\n");
    out
}

/// `flow` as DOT edges from every host of its tier to every host of the other, with more
/// `attributes` after the label.
fn dot_edges(out: &mut String, topology: &Topology, flow: &Flow, attributes: &str) {
    for from in topology.tier_hosts(flow.from) {
        for to in topology.tier_hosts(flow.to) {
            let _ = writeln!(
                out,
                "    {} -> {} [label=\"{}\"{attributes}];",
                node_id(from.name.as_str()),
                node_id(to.name.as_str()),
                flow.label
            );
        }
    }
}
