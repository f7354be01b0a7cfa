//! The order hosts are worked on: one place for apply's tier order and destroy's reverse.

use infra_topology::{HostName, Tier, Topology};

use super::{Concurrency, PlanMode};

/// The hosts of each tier, from the topology.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TierOrder {
    primary: Vec<HostName>,
    replicas: Vec<HostName>,
    app: Vec<HostName>,
    web: Vec<HostName>,
    load_balancers: Vec<HostName>,
    others: Vec<HostName>,
}

/// One group of hosts in order: its label, how its hosts run, and the hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The wave's label.
    pub label: &'static str,
    /// One at a time or in parallel.
    pub concurrency: Concurrency,
    /// The hosts, as the topology lists them.
    pub hosts: Vec<HostName>,
}

impl TierOrder {
    /// The order of `topology`'s hosts. A host in several tiers goes with the first of them
    /// (database, app, web, load balancers); hosts in no tier come last.
    pub fn of(topology: &Topology) -> TierOrder {
        let mut seen: Vec<HostName> = Vec::new();
        let mut take = |names: Vec<HostName>| -> Vec<HostName> {
            let fresh: Vec<HostName> = names.into_iter().filter(|n| !seen.contains(n)).collect();
            seen.extend(fresh.iter().cloned());
            fresh
        };
        let names = |tier: Tier| -> Vec<HostName> {
            topology
                .tier_hosts(tier)
                .iter()
                .map(|h| h.name.clone())
                .collect()
        };
        let primary = take(
            topology
                .database
                .iter()
                .map(|d| d.primary.clone())
                .collect(),
        );
        let replicas = take(
            topology
                .database
                .iter()
                .flat_map(|d| d.replicas.iter().cloned())
                .collect(),
        );
        let app = take(names(Tier::App));
        let web = take(names(Tier::Web));
        let load_balancers = take(names(Tier::LoadBalancer));
        let others = take(topology.hosts.iter().map(|h| h.name.clone()).collect());
        TierOrder {
            primary,
            replicas,
            app,
            web,
            load_balancers,
            others,
        }
    }

    /// The groups in the order `mode` works through them: apply goes database primary,
    /// replicas, app, web, load balancers (one at a time, so the VIP keeps a working holder),
    /// then hosts in no tier; destroy goes the other way round.
    pub fn groups(&self, mode: PlanMode) -> Vec<Group> {
        let group = |label, concurrency, hosts: &Vec<HostName>| Group {
            label,
            concurrency,
            hosts: hosts.clone(),
        };
        let mut groups = vec![
            group("database primary", Concurrency::OneAtATime, &self.primary),
            group("database replicas", Concurrency::Parallel, &self.replicas),
            group("app", Concurrency::Parallel, &self.app),
            group("web", Concurrency::Parallel, &self.web),
            group(
                "load balancers",
                Concurrency::OneAtATime,
                &self.load_balancers,
            ),
            group("hosts in no tier", Concurrency::Parallel, &self.others),
        ];
        match mode {
            PlanMode::Apply => {}
            PlanMode::Destroy(_) => groups.reverse(),
        }
        groups.retain(|g| !g.hosts.is_empty());
        groups
    }
}
