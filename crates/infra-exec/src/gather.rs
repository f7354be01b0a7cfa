//! Fact gathering: one connection and one round trip per host, hosts in parallel.

use std::collections::BTreeMap;
use std::sync::Arc;

use infra_plan::facts::{GatherRequest, HostFacts};
use infra_plan::plan::Unreachable;
use infra_plan::preflight::{self, Finding, Severity};
use infra_topology::{Host, HostName};

use crate::hosts::{HostRequest, for_each_host};
use crate::transport::{Connector, HostError, Transport};

/// Facts of every host that answered, the errors of the others, and the open connections.
#[derive(Default)]
pub struct Gathered {
    /// Facts by host, in the order asked.
    pub facts: Vec<(HostName, HostFacts)>,
    /// Hosts that could not be gathered, with why.
    pub failed: Vec<(HostName, HostError)>,
    /// The open connections (for the run that follows; closed by [`close_all`]). Empty when
    /// they were closed as soon as each host answered ([`Connections::Close`]).
    pub transports: BTreeMap<HostName, Arc<dyn Transport>>,
    /// Remote commands run to gather (each one SSH round trip).
    pub round_trips: usize,
    /// What preflight found that does not stop a host (apt's lock held), by host.
    pub warnings: Vec<(HostName, String)>,
}

/// What to do with each connection once its host's facts are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connections {
    /// Keep it open for the run that follows (apply, destroy).
    Keep,
    /// Close it at once, while other hosts are still being gathered (plan).
    Close,
}

impl Gathered {
    /// The failures in the plan's form: the error and what to do about it.
    pub fn unreachable(&self) -> Vec<Unreachable> {
        self.failed
            .iter()
            .map(|(host, error)| Unreachable {
                host: host.clone(),
                error: match error.hint() {
                    Some(hint) => format!("{error} (hint: {hint})"),
                    None => error.to_string(),
                },
            })
            .collect()
    }

    /// The facts by host.
    pub fn facts_by_host(&self) -> BTreeMap<HostName, HostFacts> {
        self.facts.iter().cloned().collect()
    }
}

/// Connects to each of `hosts` and gathers what `requests` asks of it, `parallelism` hosts at
/// a time. A host that fails does not stop the others.
pub async fn gather(
    connector: Arc<dyn Connector>,
    hosts: Vec<(Host, GatherRequest)>,
    parallelism: usize,
    connections: Connections,
) -> Gathered {
    let items: Vec<(HostName, (Host, GatherRequest))> = hosts
        .into_iter()
        .map(|(host, request)| (host.name.clone(), (host, request)))
        .collect();
    let results = for_each_host(items, parallelism, |_, (host, request)| {
        let connector = Arc::clone(&connector);
        async move {
            let transport = connector.connect(&host).await?;
            let facts = judged(&*transport, &host, &request).await;
            let round_trips = transport.round_trips();
            match facts {
                Ok(facts) if connections == Connections::Keep => {
                    Ok((facts, Some(transport), round_trips))
                }
                Ok(facts) => {
                    transport.close().await;
                    Ok((facts, None, round_trips))
                }
                Err(error) => {
                    transport.close().await;
                    Err(error)
                }
            }
        }
    })
    .await;
    let mut gathered = Gathered::default();
    for (host, result) in results {
        match result {
            Ok(((facts, warns), transport, round_trips)) => {
                gathered
                    .warnings
                    .extend(warns.into_iter().map(|w| (host.clone(), w.message)));
                gathered.facts.push((host.clone(), facts));
                gathered.round_trips += round_trips;
                if let Some(transport) = transport {
                    gathered.transports.insert(host, transport);
                }
            }
            Err(error) => gathered.failed.push((host, error)),
        }
    }
    gathered
}

/// Gathers `request` over `transport` and judges the preflight it asks for: the facts with
/// what only warns, or the host's error when something stops it.
async fn judged(
    transport: &dyn Transport,
    host: &Host,
    request: &GatherRequest,
) -> Result<(HostFacts, Vec<Finding>), HostError> {
    let sent = now();
    let facts = transport.gather(request).await?;
    let asked = preflight::Asked {
        sent,
        answered: now(),
    };
    let findings = match request.preflight {
        Some(_) => preflight::check(&host.name, host.address, &facts, asked),
        None => Vec::new(),
    };
    let (stops, warns): (Vec<Finding>, Vec<Finding>) = findings
        .into_iter()
        .partition(|f| f.severity == Severity::Stops);
    if stops.is_empty() {
        Ok((facts, warns))
    } else {
        Err(HostError::Preflight {
            message: stops
                .iter()
                .map(|f| f.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            hint: stops.iter().find_map(|f| f.hint.clone()),
        })
    }
}

/// This machine's clock, in seconds since the epoch.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Closes connections, all at once.
pub async fn close_all(transports: impl IntoIterator<Item = Arc<dyn Transport>>) {
    let mut tasks = tokio::task::JoinSet::new();
    for transport in transports {
        tasks.spawn(async move { transport.close().await });
    }
    while tasks.join_next().await.is_some() {}
}

/// Gathers again over the connections already open (after another run changed the hosts),
/// judging preflight again as [`gather`] does.
pub async fn refresh(
    gathered: Gathered,
    requests: Vec<(Host, GatherRequest)>,
    parallelism: usize,
) -> Gathered {
    let Gathered {
        facts: _,
        mut failed,
        transports,
        round_trips,
        warnings: _,
    } = gathered;
    let items: Vec<HostRequest<(Host, GatherRequest)>> = requests
        .into_iter()
        .filter_map(|(host, request)| {
            let transport = Arc::clone(transports.get(&host.name)?);
            Some((host.name.clone(), (transport, (host, request))))
        })
        .collect();
    let results = for_each_host(
        items,
        parallelism,
        |_, (transport, (host, request))| async move { judged(&*transport, &host, &request).await },
    )
    .await;
    let round_trips = round_trips + results.len();
    let mut facts = Vec::new();
    let mut warnings = Vec::new();
    for (host, result) in results {
        match result {
            Ok((host_facts, warns)) => {
                warnings.extend(warns.into_iter().map(|w| (host.clone(), w.message)));
                facts.push((host, host_facts));
            }
            Err(error) => failed.push((host, error)),
        }
    }
    Gathered {
        facts,
        failed,
        transports,
        round_trips,
        warnings,
    }
}
