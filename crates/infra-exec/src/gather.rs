//! Fact gathering: one connection and one script run per host, hosts in parallel.

use std::sync::Arc;

use infra_plan::facts::{self, HostFacts};
use infra_plan::plan::Unreachable;
use infra_plan::{DesiredState, HostState};
use infra_topology::Topology;
use tokio::sync::Semaphore;

use crate::ssh::{ConnectOptions, Connection, TransportError};

/// Why one host's facts could not be had.
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    /// Connecting or running the script failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The script failed on the host.
    #[error("the fact script failed on `{host}` (exit {code:?}): {stderr}")]
    Script {
        /// The host.
        host: String,
        /// Its exit code.
        code: Option<i32>,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Its output could not be read.
    #[error("cannot read the facts of `{host}`")]
    Parse {
        /// The host.
        host: String,
        /// The cause.
        #[source]
        source: facts::FactsError,
    },
}

impl GatherError {
    /// What the user should do, when known.
    pub fn hint(&self) -> Option<String> {
        match self {
            GatherError::Transport(error) => error.hint(),
            _ => None,
        }
    }
}

/// Facts of every reachable host, and the errors of the others.
pub struct Gathered {
    /// Facts by host, in the desired state's order.
    pub facts: Vec<(String, HostFacts)>,
    /// Hosts that could not be gathered, with why.
    pub failed: Vec<(String, GatherError)>,
    /// The open connections, for apply to reuse (plan closes them).
    pub connections: Vec<Connection>,
}

impl Gathered {
    /// The failures in the plan's form.
    pub fn unreachable(&self) -> Vec<Unreachable> {
        self.failed
            .iter()
            .map(|(host, error)| {
                let mut text = error.to_string();
                let mut source = std::error::Error::source(error);
                while let Some(cause) = source {
                    text.push_str(": ");
                    text.push_str(&cause.to_string());
                    source = cause.source();
                }
                if let Some(hint) = error.hint() {
                    text.push_str(&format!(" (hint: {hint})"));
                }
                Unreachable {
                    host: host.clone(),
                    error: text,
                }
            })
            .collect()
    }

    /// SSH round trips (remote commands) made so far over the open connections.
    pub fn round_trips(&self) -> usize {
        self.connections.iter().map(Connection::round_trips).sum()
    }

    /// Closes every connection, all at once.
    pub async fn close(self) {
        close_all(self.connections).await;
    }
}

/// Closes connections concurrently (each close waits for its master to exit).
pub async fn close_all(connections: impl IntoIterator<Item = Connection>) {
    let mut tasks = tokio::task::JoinSet::new();
    for connection in connections {
        tasks.spawn(connection.close());
    }
    while tasks.join_next().await.is_some() {}
}

/// Gathers the facts of the hosts of `desired` named in `selected`, at most `parallelism` at
/// a time. A host that fails does not stop the others.
pub async fn gather(
    topology: &Topology,
    desired: &DesiredState,
    selected: &[String],
    options: &ConnectOptions,
    parallelism: usize,
) -> Gathered {
    let limit = Arc::new(Semaphore::new(parallelism.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for state in desired
        .hosts
        .iter()
        .filter(|h| selected.iter().any(|s| s == h.name.as_str()))
    {
        let Some(host) = topology.host(&state.name).cloned() else {
            continue;
        };
        let state: HostState = state.clone();
        let options = options.clone();
        let limit = Arc::clone(&limit);
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let name = host.name.to_string();
            let result = gather_one(&host, &state, &options).await;
            (name, result)
        });
    }
    let mut gathered = Gathered {
        facts: Vec::new(),
        failed: Vec::new(),
        connections: Vec::new(),
    };
    while let Some(joined) = tasks.join_next().await {
        let Ok((name, result)) = joined else {
            continue;
        };
        match result {
            Ok((facts, connection)) => {
                gathered.facts.push((name, facts));
                gathered.connections.push(connection);
            }
            Err(error) => gathered.failed.push((name, error)),
        }
    }
    let order = |name: &str| desired.hosts.iter().position(|h| h.name.as_str() == name);
    gathered.facts.sort_by_key(|(name, _)| order(name));
    gathered.failed.sort_by_key(|(name, _)| order(name));
    gathered
}

async fn gather_one(
    host: &infra_topology::Host,
    state: &HostState,
    options: &ConnectOptions,
) -> Result<(HostFacts, Connection), GatherError> {
    let connection = Connection::open(host, options).await?;
    let output = connection.run_script(&facts::gather_script(state)).await?;
    let name = host.name.to_string();
    if output.code != Some(0) {
        connection.close().await;
        return Err(GatherError::Script {
            host: name,
            code: output.code,
            stderr: crate::process::tail(&output.stderr, 4),
        });
    }
    match facts::parse(&output.stdout) {
        Ok(facts) => Ok((facts, connection)),
        Err(source) => {
            connection.close().await;
            Err(GatherError::Parse { host: name, source })
        }
    }
}
