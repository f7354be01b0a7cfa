//! The SSH transport: real hosts, one multiplexed connection each, one script per round trip.

mod config;
mod connection;
pub mod control;
pub mod script;

use std::sync::Arc;

use infra_plan::facts::{GatherRequest, HostFacts};
use infra_topology::{Become, Host, HostName};

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
        } else if let Some(refused) = sudo_refused(self.connection.become_method(), &output) {
            Err(HostError::Preflight {
                message: format!("`sudo -n` does not give root on `{}`: {refused}", self.host),
                hint: Some(
                    "let the login user run commands as root without a password (`USER ALL=(ALL) NOPASSWD: ALL` in /etc/sudoers.d/), or log in as root (`become: none`)"
                        .to_owned(),
                ),
            })
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

/// What sudo said when it refused to run the script (it printed nothing else and failed).
fn sudo_refused(become_method: Become, output: &ScriptOutput) -> Option<String> {
    if become_method != Become::Sudo || !output.stdout.is_empty() {
        return None;
    }
    // sudo's own refusals (a warning such as "unable to resolve host" is not one: it runs).
    const REFUSALS: [&str; 6] = [
        "a password is required",
        "a terminal is required",
        "is not in the sudoers file",
        "is not allowed to execute",
        "sudo: not found",
        "sudo: command not found",
    ];
    output
        .stderr
        .lines()
        .map(str::trim)
        .find(|line| REFUSALS.iter().any(|r| line.contains(r)))
        .map(str::to_owned)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn output(stdout: &str, stderr: &str) -> ScriptOutput {
        ScriptOutput {
            stdout: stdout.to_owned(),
            stderr: stderr.to_owned(),
            code: Some(1),
        }
    }

    #[test]
    fn sudo_refusing_is_told_apart_from_a_failing_script() {
        let refused = output("", "sudo: a password is required\n");
        assert_eq!(
            sudo_refused(Become::Sudo, &refused).as_deref(),
            Some("sudo: a password is required")
        );
        let missing = output("", "sh: 1: sudo: not found\n");
        assert!(sudo_refused(Become::Sudo, &missing).is_some());
        assert_eq!(sudo_refused(Become::None, &refused), None);
        assert_eq!(
            sudo_refused(Become::Sudo, &output("os\tdebian 12\n", "sudo: x\n")),
            None,
            "the script ran: it is its own failure"
        );
        assert_eq!(
            sudo_refused(Become::Sudo, &output("", "awk: syntax error\n")),
            None
        );
        assert_eq!(
            sudo_refused(
                Become::Sudo,
                &output(
                    "",
                    "sudo: unable to resolve host web1: Name or service not known\nsh: 3: x: not found\n"
                )
            ),
            None,
            "a warning of sudo's is not a refusal"
        );
    }
}
