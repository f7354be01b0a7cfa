//! The order hosts are worked on: one place for apply's tier order and destroy's reverse.

use infra_topology::{HostName, Rollout, Tier, Topology};

use super::{Concurrency, PlanMode};

/// The hosts of each tier, from the topology.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TierOrder {
    primary: Vec<HostName>,
    replicas: Vec<HostName>,
    app: Vec<HostName>,
    web: Vec<HostName>,
    load_balancers: Vec<HostName>,
    monitoring: Vec<HostName>,
    others: Vec<HostName>,
    /// How restarts go through the replicas, the app tier and the web tier.
    rollouts: [Option<Rollout>; 3],
}

/// Which of a host's tasks a group runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Its main task.
    Main,
    /// Retiring old database passwords, once the app tier uses the new ones.
    RetirePasswords,
}

/// One group of hosts in order: its label, how its hosts run, and the hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Which task of each host it runs.
    pub part: Part,
    /// The wave's label.
    pub label: &'static str,
    /// One at a time or in parallel.
    pub concurrency: Concurrency,
    /// How a wave of this group that restarts its service goes instead, if it has a rollout.
    pub rollout: Option<Concurrency>,
    /// The hosts, as the topology lists them.
    pub hosts: Vec<HostName>,
}

impl TierOrder {
    /// The order of `topology`'s hosts. A host in several tiers goes with the first of them
    /// (database, app, web, load balancers, monitoring); hosts in no tier come last.
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
        let monitoring = take(names(Tier::Monitoring));
        let others = take(topology.hosts.iter().map(|h| h.name.clone()).collect());
        let rollouts = [
            topology.database.as_ref().map(|d| d.rollout),
            topology.app.as_ref().map(|a| a.rollout),
            topology.web.as_ref().map(|w| w.rollout),
        ];
        TierOrder {
            primary,
            replicas,
            app,
            web,
            load_balancers,
            monitoring,
            others,
            rollouts,
        }
    }

    /// The groups in the order `mode` works through them: apply goes database primary,
    /// replicas, app, web, load balancers (one at a time, so the VIP keeps a working holder),
    /// monitoring (once what it watches is up), then hosts in no tier; destroy goes the other
    /// way round.
    pub fn groups(&self, mode: PlanMode) -> Vec<Group> {
        let group = |label, concurrency, hosts: &Vec<HostName>| Group {
            part: Part::Main,
            label,
            concurrency,
            rollout: None,
            hosts: hosts.clone(),
        };
        let rolling = |label, hosts: &Vec<HostName>, rollout: Option<Rollout>| Group {
            rollout: match mode {
                PlanMode::Apply => rollout.map(|r| Concurrency::Rolling {
                    batch: r.batch_of(hosts.len()),
                    max_unavailable: r.max_unavailable_of(hosts.len()),
                }),
                PlanMode::Destroy(_) => None,
            },
            ..group(label, Concurrency::Parallel, hosts)
        };
        let [replica_rollout, app_rollout, web_rollout] = self.rollouts;
        let mut groups = vec![
            group("database primary", Concurrency::OneAtATime, &self.primary),
            rolling("database replicas", &self.replicas, replica_rollout),
            rolling("app", &self.app, app_rollout),
            Group {
                part: Part::RetirePasswords,
                ..group(
                    "database primary: old passwords retired",
                    Concurrency::OneAtATime,
                    &self.primary,
                )
            },
            rolling("web", &self.web, web_rollout),
            group(
                "load balancers",
                Concurrency::OneAtATime,
                &self.load_balancers,
            ),
            group("monitoring", Concurrency::Parallel, &self.monitoring),
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
