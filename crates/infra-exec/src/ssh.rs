//! The SSH transport: the system OpenSSH client with one multiplexed master connection per
//! host (the `openssh` crate, native mux), so `~/.ssh/config`, the agent, `ProxyJump` and
//! known_hosts work exactly as they do for `ssh`. Host keys are checked strictly by default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use infra_topology::{Become, Host};
use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder};
use tokio::io::AsyncWriteExt as _;

use crate::process;

/// What to do with a host key that is not in known_hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Refuse unknown and changed keys (`StrictHostKeyChecking=yes`).
    Strict,
    /// Trust an unknown key on first use and record it; still refuse a changed one.
    AcceptNew,
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Host key policy.
    pub host_keys: HostKeyPolicy,
    /// Limit for establishing a connection.
    pub connect_timeout: Duration,
    /// Limit for each remote command.
    pub command_timeout: Duration,
    /// An OpenSSH config file to use instead of `~/.ssh/config` (the lab's).
    pub config_file: Option<PathBuf>,
}

/// What went wrong reaching or using a host.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The host's key is not in known_hosts.
    #[error("the host key of `{host}` ({address}) is not known{}", fingerprint_text(.fingerprints))]
    UnknownHostKey {
        /// The host.
        host: String,
        /// Its address.
        address: String,
        /// The fingerprints it offers.
        fingerprints: Vec<String>,
    },
    /// The host's key differs from the one in known_hosts.
    #[error("the host key of `{host}` ({address}) has CHANGED since it was recorded{}", fingerprint_text(.fingerprints))]
    ChangedHostKey {
        /// The host.
        host: String,
        /// Its address.
        address: String,
        /// The fingerprints it offers now.
        fingerprints: Vec<String>,
    },
    /// Authentication failed.
    #[error("`{host}` ({address}) refused the login: {message}")]
    Authentication {
        /// The host.
        host: String,
        /// Its address.
        address: String,
        /// ssh's message.
        message: String,
    },
    /// The host could not be reached.
    #[error("cannot reach `{host}` ({address}): {message}")]
    Unreachable {
        /// The host.
        host: String,
        /// Its address.
        address: String,
        /// ssh's message.
        message: String,
    },
    /// A remote command could not be run or its connection broke.
    #[error("on `{host}`: {message}")]
    Command {
        /// The host.
        host: String,
        /// What happened.
        message: String,
    },
    /// A remote command did not finish in time.
    #[error("on `{host}`: a command did not finish within {seconds} s")]
    Timeout {
        /// The host.
        host: String,
        /// The limit.
        seconds: u64,
    },
}

fn fingerprint_text(fingerprints: &[String]) -> String {
    if fingerprints.is_empty() {
        String::new()
    } else {
        format!(": it offers {}", fingerprints.join(", "))
    }
}

impl TransportError {
    /// What the user should do.
    pub fn hint(&self) -> Option<String> {
        match self {
            TransportError::UnknownHostKey { address, .. } => Some(format!(
                "check the fingerprint out of band, then add it (`ssh-keyscan {address} >> ~/.ssh/known_hosts`), or pass `--accept-new-host-keys` to trust it on first use"
            )),
            TransportError::ChangedHostKey { address, .. } => Some(format!(
                "if the host was reinstalled, remove the old key (`ssh-keygen -R {address}`) and check the new one; otherwise someone may be intercepting the connection"
            )),
            TransportError::Authentication { .. } => Some(
                "check `ssh.user` and `ssh.identity_file`, or that your agent holds the key"
                    .to_owned(),
            ),
            TransportError::Unreachable { .. } => {
                Some("check the address, that sshd runs, and any `ssh.jump` host".to_owned())
            }
            _ => None,
        }
    }
}

/// The output of a remote script.
#[derive(Debug, Clone)]
pub struct ScriptOutput {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
}

/// A live connection to one host.
pub struct Connection {
    session: Session,
    round_trips: std::sync::atomic::AtomicUsize,
    host: String,
    become_method: Become,
    command_timeout: Duration,
}

/// A short folder for control sockets (their paths must stay under about 100 bytes).
fn control_directory() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt as _;
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    let dir = PathBuf::from(format!("/tmp/infra-ssh-{uid}"));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    Ok(dir)
}

impl Connection {
    /// Opens the master connection to `host`.
    pub async fn open(host: &Host, options: &ConnectOptions) -> Result<Connection, TransportError> {
        let address = host.address.to_string();
        let mut builder = SessionBuilder::default();
        builder
            .user(host.ssh.user.clone())
            .port(host.ssh.port)
            .known_hosts_check(match options.host_keys {
                HostKeyPolicy::Strict => KnownHosts::Strict,
                HostKeyPolicy::AcceptNew => KnownHosts::Add,
            })
            .connect_timeout(options.connect_timeout)
            .server_alive_interval(Duration::from_secs(10))
            .control_persist(ControlPersist::IdleFor(
                std::num::NonZeroUsize::MIN.saturating_add(59),
            ));
        if let Ok(dir) = control_directory() {
            builder.control_directory(dir);
        }
        if let Some(identity) = &host.ssh.identity_file {
            builder.keyfile(identity);
        }
        if let Some(jump) = &host.ssh.jump {
            builder.jump_hosts([jump.as_str()]);
        }
        if let Some(config) = &options.config_file {
            builder.config_file(config);
        }
        let destination = if address.contains(':') {
            format!("[{address}]")
        } else {
            address.clone()
        };
        match builder.connect_mux(destination).await {
            Ok(session) => Ok(Connection {
                session,
                round_trips: std::sync::atomic::AtomicUsize::new(0),
                host: host.name.to_string(),
                become_method: host.become_method,
                command_timeout: options.command_timeout,
            }),
            Err(error) => Err(classify(host, &error, options.config_file.as_deref()).await),
        }
    }

    /// How many commands ran over this connection (each one SSH round trip).
    pub fn round_trips(&self) -> usize {
        self.round_trips.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The host's name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Runs `script` with `sh -s` as root (`sudo -n` when the login user is not root), the
    /// script on stdin (never on the command line, where it could show in process lists).
    pub async fn run_script(&self, script: &str) -> Result<ScriptOutput, TransportError> {
        self.round_trips
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut command = match self.become_method {
            Become::None => {
                let mut c = self.session.command("sh");
                c.arg("-s");
                c
            }
            Become::Sudo => {
                let mut c = self.session.command("sudo");
                c.args(["-n", "--", "sh", "-s"]);
                c
            }
        };
        command
            .stdin(openssh::Stdio::piped())
            .stdout(openssh::Stdio::piped())
            .stderr(openssh::Stdio::piped());
        let run = async {
            let mut child = command.spawn().await.map_err(|e| self.command_error(&e))?;
            if let Some(mut stdin) = child.stdin().take() {
                stdin
                    .write_all(script.as_bytes())
                    .await
                    .map_err(|e| self.command_error(&e))?;
                // Dropping stdin sends EOF; a shutdown alone does not.
                drop(stdin);
            }
            child
                .wait_with_output()
                .await
                .map_err(|e| self.command_error(&e))
        };
        let output = tokio::time::timeout(self.command_timeout, run)
            .await
            .map_err(|_| TransportError::Timeout {
                host: self.host.clone(),
                seconds: self.command_timeout.as_secs(),
            })??;
        Ok(ScriptOutput {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            code: output.status.code(),
        })
    }

    fn command_error(&self, error: &dyn std::fmt::Display) -> TransportError {
        TransportError::Command {
            host: self.host.clone(),
            message: error.to_string(),
        }
    }

    /// Closes the master connection.
    pub async fn close(self) {
        let _ = self.session.close().await;
    }
}

/// Turns ssh's complaint into an error that says what happened, with the host key's
/// fingerprint when the key is the problem.
async fn classify(host: &Host, error: &openssh::Error, config: Option<&Path>) -> TransportError {
    let message = error_text(error);
    let address = host.address.to_string();
    let name = host.name.to_string();
    if message.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || message.contains("Host key for") && message.contains("has changed")
    {
        return TransportError::ChangedHostKey {
            fingerprints: fingerprints(host, config).await,
            host: name,
            address,
        };
    }
    if message.contains("Host key verification failed") || message.contains("host key is known") {
        return TransportError::UnknownHostKey {
            fingerprints: fingerprints(host, config).await,
            host: name,
            address,
        };
    }
    if message.contains("Permission denied") {
        return TransportError::Authentication {
            host: name,
            address,
            message: process::tail(&message, 1),
        };
    }
    TransportError::Unreachable {
        host: name,
        address,
        message: process::tail(&message, 2),
    }
}

fn error_text(error: &openssh::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push('\n');
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The fingerprints the host offers now (`ssh-keyscan | ssh-keygen -lf -`).
async fn fingerprints(host: &Host, _config: Option<&Path>) -> Vec<String> {
    let port = host.ssh.port.to_string();
    let address = host.address.to_string();
    let Ok(scan) = process::run(
        "ssh-keyscan",
        ["-T", "5", "-p", port.as_str(), address.as_str()],
        None,
        Duration::from_secs(10),
    )
    .await
    else {
        return Vec::new();
    };
    let Ok(listed) = process::run(
        "ssh-keygen",
        ["-l", "-f", "-"],
        Some(scan.stdout.as_bytes()),
        Duration::from_secs(10),
    )
    .await
    else {
        return Vec::new();
    };
    listed
        .stdout
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let _bits = parts.next()?;
            let fingerprint = parts.next()?;
            let kind = parts.last()?.trim_matches(|c| c == '(' || c == ')');
            Some(format!("{kind} {fingerprint}"))
        })
        .collect()
}
