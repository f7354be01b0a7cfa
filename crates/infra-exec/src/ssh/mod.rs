//! The SSH transport: real hosts, one multiplexed connection each, one script per round trip.

mod config;
mod connection;
pub mod control;
pub mod script;

use std::sync::Arc;

use infra_plan::facts::{GatherRequest, HostFacts};
use infra_topology::{Host, HostName};

pub use config::{ClientConfig, ConfigError};
pub use connection::{
    ConnectOptions, Connection, HostKeyPolicy, LabAccess, ScriptOutput, TransportError,
};

use crate::transport::{
    BoxFuture, Connector, HostError, Job, JobReport, LockAnswer, LockRequest, Transport,
};

impl From<TransportError> for HostError {
    fn from(error: TransportError) -> HostError {
        HostError::Transport {
            hint: error.hint(),
            message: error.to_string(),
        }
    }
}

/// Connects over SSH with the given options.
#[derive(Debug, Clone)]
pub struct SshConnector {
    /// How to connect.
    pub options: ConnectOptions,
}

impl Connector for SshConnector {
    fn connect<'a>(
        &'a self,
        host: &'a Host,
    ) -> BoxFuture<'a, Result<Arc<dyn Transport>, HostError>> {
        Box::pin(async move {
            let connection = Connection::open(host, &self.options).await?;
            let transport: Arc<dyn Transport> = Arc::new(SshTransport {
                host: host.name.clone(),
                connection,
            });
            Ok(transport)
        })
    }
}

/// One host over SSH.
pub struct SshTransport {
    host: HostName,
    connection: Connection,
}

impl SshTransport {
    /// Runs `script` and fails unless it exits 0.
    async fn run_checked(&self, script: &str) -> Result<ScriptOutput, HostError> {
        let output = self.connection.run_script(script).await?;
        if output.code == Some(0) {
            Ok(output)
        } else {
            Err(HostError::Script {
                host: self.host.clone(),
                message: format!(
                    "exit {}: {}",
                    output
                        .code
                        .map_or_else(|| "by a signal".to_owned(), |c| c.to_string()),
                    crate::process::tail(&output.stderr, 4)
                ),
            })
        }
    }

    /// The connection, for `infra status`.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }
}

impl Transport for SshTransport {
    fn host(&self) -> &HostName {
        &self.host
    }

    fn gather<'a>(
        &'a self,
        request: &'a GatherRequest,
    ) -> BoxFuture<'a, Result<HostFacts, HostError>> {
        Box::pin(async move {
            let output = self.run_checked(&script::gather::script(request)).await?;
            script::gather::parse(&output.stdout).map_err(|message| HostError::Answer {
                host: self.host.clone(),
                message,
            })
        })
    }

    fn run<'a>(&'a self, job: &'a Job<'a>) -> BoxFuture<'a, Result<JobReport, HostError>> {
        Box::pin(async move {
            let output = self
                .connection
                .run_script(&script::steps::script(job))
                .await?;
            let report =
                script::steps::parse(&output.stdout).map_err(|message| HostError::Answer {
                    host: self.host.clone(),
                    message,
                })?;
            // A script that ended without saying why (killed, or a shell error) reports that.
            if report.outcomes.len() < job.steps.len()
                && report
                    .outcomes
                    .iter()
                    .all(|o| *o == crate::transport::StepOutcome::Done)
                && output.code != Some(0)
            {
                return Err(HostError::Script {
                    host: self.host.clone(),
                    message: format!(
                        "it stopped at step {} of {}: {}",
                        report.outcomes.len() + 1,
                        job.steps.len(),
                        crate::process::tail(&output.stderr, 4)
                    ),
                });
            }
            Ok(report)
        })
    }

    fn lock<'a>(
        &'a self,
        request: &'a LockRequest,
    ) -> BoxFuture<'a, Result<LockAnswer, HostError>> {
        Box::pin(async move {
            let output = self.run_checked(&script::lock::script(request)).await?;
            script::lock::parse(&output.stdout).map_err(|message| HostError::Answer {
                host: self.host.clone(),
                message,
            })
        })
    }

    fn round_trips(&self) -> usize {
        self.connection.round_trips()
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.connection.close())
    }
}
